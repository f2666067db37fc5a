/* The stats page: an HTML table of frontends, backends and servers with their state and counters,
 * and the same as CSV (";csv", HAProxy's column order for the columns keel has). */
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <time.h>

#include <keel/acl.h>
#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/history.h>
#include <keel/http.h>
#include <keel/proxy.h>
#include <keel/sbuf.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/stats-admin.h>
#include <keel/stats.h>
#include <keel/stick.h>
#include <keel/stream-t.h>
#include <keel/worker.h>


/* HTML-escapes names (they come from the config, but a page must never trust its input). */
static void sb_html(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': sbuf_printf(b, "&lt;"); break;
		case '>': sbuf_printf(b, "&gt;"); break;
		case '&': sbuf_printf(b, "&amp;"); break;
		case '"': sbuf_printf(b, "&quot;"); break;
		default: sbuf_printf(b, "%c", *s);
		}
	}
}

/* A CSV field: quoted, with quotes doubled (reasons may hold commas). */
static void sb_csv(struct sbuf *b, const char *s)
{
	sbuf_printf(b, "\"");
	for (; *s; s++)
		sbuf_printf(b, *s == '"' ? "\"\"" : "%c", *s);
	sbuf_printf(b, "\"");
}


/* The CSS class of a state: its first word. */
static const char *state_class(const char *st)
{
	static const char *const cls[] = {"MAINT", "EJECTED", "DOWN", "DRAIN", "UP"};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cls); i++)
		if (!strncmp(st, cls[i], strlen(cls[i])))
			return cls[i];
	return "UP";
}

static void csv_row(struct sbuf *b, const char *px, const char *sv, int scur, int smax,
		    int slim, const struct stats_sums *c, const char *status, int weight, int type,
		    int qcur, int act, int bck, const struct health_view *v, struct server *srv)
{
	char code[16] = "", dur[16] = "";

	if (v && v->has_chk) {
		if (v->last_chk.status)
			snprintf(code, sizeof(code), "%d", v->last_chk.status);
		snprintf(dur, sizeof(dur), "%u", v->last_chk.dur_ms);
	}
	/* pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,
	 * wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,
	 * throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,
	 * check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,
	 * req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt */
	sbuf_printf(b,
		  "%s,%s,%d,,%d,%d,%s%d,%llu,%llu,%llu,%llu,,%llu,%llu,%llu,%llu,%llu,%s,%d,%d,%d,"
		  ",,,,,,1,,,,,%d,,,,%s,%s,%s,%llu,%llu,%llu,%llu,%llu,%llu,,,,%llu,%llu,%llu,",
		  px, sv, qcur, scur, smax, slim ? "" : "", slim,
		  (unsigned long long)(type == 2 ? c->req_tot : c->conn_tot),
		  (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
		  (unsigned long long)c->denied_req, (unsigned long long)c->failed_req,
		  (unsigned long long)c->failed_conn, (unsigned long long)c->failed_rsp,
		  (unsigned long long)c->retries, (unsigned long long)c->redispatches, status,
		  weight, act, bck, type, v && v->has_chk ? chk_code_str(v->last_chk.code) : "",
		  code, dur, (unsigned long long)c->rsp[1],
		  (unsigned long long)c->rsp[2], (unsigned long long)c->rsp[3],
		  (unsigned long long)c->rsp[4], (unsigned long long)c->rsp[5],
		  (unsigned long long)c->rsp[0], (unsigned long long)c->req_tot,
		  (unsigned long long)c->cli_aborts, (unsigned long long)c->srv_aborts);
	/* keel's own columns, after HAProxy's: why the server is in its state, its latency, its
	 * sticky users (drain.c counts them). */
	if (v) {
		struct sticky_count sc = {0};

		if (srv)
			drain_sticky_count(srv, drain_clock_us(), &sc);
		sb_csv(b, v->why);
		sbuf_printf(b, ",%u,%u,%d,%llu,%llu,%d,%lld\n", v->p50_us / 1000, v->p99_us / 1000,
			  v->consec_err, (unsigned long long)v->ejections_tot,
			  (unsigned long long)c->sticky_moves, sc.users, (long long)sc.pending_ms);
	} else {
		sbuf_printf(b, ",,,,,,,\n");
	}
}

static void render_csv(struct sbuf *b)
{
	struct list *l;
	struct stats_sums c;
	struct health_view v;
	int i;

	sbuf_printf(b, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,"
		     "eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,"
		     "qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,"
		     "check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,"
		     "hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,"
		     "keel_reason,keel_ttfb_p50_ms,keel_ttfb_p99_ms,keel_consec_err,keel_ejections,"
		     "keel_sticky_moves,keel_sticky_users,keel_sticky_pending_ms\n");
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_FE) {
			stats_sum(p->ctr, &c);
			csv_row(b, p->name, "FRONTEND", atomic_load(&p->feconn), 0,
				p->maxconn ? p->maxconn : global.maxconn, &c, "OPEN", 0, 0, 0, 0, 0, NULL,
				NULL);
		}
		if (!(p->cap & PR_CAP_BE))
			continue;
		for (i = 0; i < p->nsrv; i++) {
			struct server *s = p->srv[i];

			if (server_deleted(s)) /* "del server" */
				continue;
			stats_sum(s->ctr, &c);
			health_view(s, &v);
			csv_row(b, p->name, s->name, atomic_load(&s->cur_sess),
				atomic_load(&s->max_sess), s->maxconn, &c, v.state,
				atomic_load(&s->eweight), 2, atomic_load(&s->nbpend), !s->backup,
				s->backup, &v, s);
		}
		stats_sum(p->ctr, &c);
		csv_row(b, p->name, "BACKEND", atomic_load(&p->beconn), 0, 0, &c,
			stats_usable_servers(p) ? "UP" : "DOWN", 0, 1, atomic_load(&p->nbpend), stats_usable_servers(p), 0,
			NULL, NULL);
	}
}

char *stats_csv(size_t *len)
{
	/* Starts with room: sbuf_printf() must not compute an offset from a NULL pointer. */
	struct sbuf b = {.p = malloc(16384), .cap = 16384};

	if (!b.p)
		return NULL;
	render_csv(&b);
	if (b.oom || !b.p) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* ---- the HTML dashboard ----
 *
 * One self-contained page (no external asset): a summary of the servers' states, then per proxy a
 * table of its frontend, servers and backend with state and why, rates of the last 5 s, TTFB,
 * connections, queue, bytes, a 10-minute sparkline (inline SVG drawn here, so it works without
 * JavaScript) and, with "stats admin", Ready / Drain / Maint buttons. A few lines of JavaScript
 * fetch the same URL every refresh period and swap #dash, so the page updates without reloading;
 * without JavaScript the "stats refresh" meta refresh (in <noscript>) reloads it. Under 760 px the
 * rows become cards (each cell labelled by its data-l attribute). */

struct page {
	const struct proxy *fe;
	bool admin;                         /* "stats admin" matched: buttons */
	char token[STATS_TOKEN_LEN + 1];    /* the CSRF token of the buttons' forms */
	int n_state[5];                     /* servers per state class, for the summary */
};

static const char *const state_cls[5] = {"UP", "DRAIN", "DOWN", "EJECTED", "MAINT"};

static void fmt_bytes(char *buf, size_t n, uint64_t v)
{
	static const char *const unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	double d = (double)v;
	int u = 0;

	while (d >= 1000 && u < (int)ARRAY_SIZE(unit) - 1) {
		d /= 1000;
		u++;
	}
	if (!u)
		snprintf(buf, n, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, n, "%.*f %s", d < 10 ? 1 : 0, d, unit[u]);
}

static void fmt_age(char *buf, size_t n, uint64_t s)
{
	if (s < 60)
		snprintf(buf, n, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, n, "%llum%02llus", (unsigned long long)s / 60, (unsigned long long)s % 60);
	else if (s < 86400)
		snprintf(buf, n, "%lluh%02llum", (unsigned long long)s / 3600,
			 (unsigned long long)s % 3600 / 60);
	else
		snprintf(buf, n, "%llud%02lluh", (unsigned long long)s / 86400,
			 (unsigned long long)s % 86400 / 3600);
}

static void sb_ms(struct sbuf *b, uint32_t us)
{
	if (!us)
		sbuf_printf(b, "&ndash;");
	else if (us < 10000)
		sbuf_printf(b, "%.1f", us / 1000.0);
	else
		sbuf_printf(b, "%u", (us + 500) / 1000);
}

/* Requests/s and error % of the newest sample, or dashes before the first one. */
static void html_rates(struct sbuf *b, const struct hist_view *hv, uint64_t req_tot)
{
	double secs = hv->interval_ms / 1000.0;

	if (hv->n) {
		const struct hist_sample *s = &hv->s[hv->n - 1];
		double pct = s->req ? 100.0 * s->err / s->req : (s->err ? 100.0 : 0.0);

		sbuf_printf(b, "<td data-l=\"req/s\">%.1f<br><small>%llu total</small></td>",
			  s->req / secs, (unsigned long long)req_tot);
		sbuf_printf(b, "<td data-l=\"errors\"%s>%.1f%%", pct >= 1.0 ? " class=bad" : "",
			  pct > 100 ? 100.0 : pct);
	} else {
		sbuf_printf(b, "<td data-l=\"req/s\">&ndash;<br><small>%llu total</small></td>",
			  (unsigned long long)req_tot);
		sbuf_printf(b, "<td data-l=\"errors\">&ndash;");
	}
}

/* The detail line under the error rate: cumulative counts (the zero ones left out but in the
 * tooltip). */
static void html_errs(struct sbuf *b, const struct stats_sums *c)
{
	sbuf_printf(b, "<br><small title=\"since start: %llu 5xx, %llu 4xx, %llu connection errors, %llu "
		     "response errors, %llu retries\">5xx %llu",
		  (unsigned long long)c->rsp[5], (unsigned long long)c->rsp[4],
		  (unsigned long long)c->failed_conn, (unsigned long long)c->failed_rsp,
		  (unsigned long long)c->retries, (unsigned long long)c->rsp[5]);
	if (c->failed_conn)
		sbuf_printf(b, " &middot; conn %llu", (unsigned long long)c->failed_conn);
	if (c->failed_rsp)
		sbuf_printf(b, " &middot; resp %llu", (unsigned long long)c->failed_rsp);
	if (c->retries)
		sbuf_printf(b, " &middot; retr %llu", (unsigned long long)c->retries);
	sbuf_printf(b, "</small></td>");
}

/* A sparkline of the history: requests/s (line), TTFB p99 (dashed line, own scale) and errors
 * (red bars on the requests' scale: their height is their share of the traffic, at least 2 px).
 * The newest sample is at the right edge; the width holds the samples there are, at least
 * SPARK_MIN_SAMPLES (2.5 minutes), at most HIST_SAMPLES (10 minutes). */
#define SPARK_MIN_SAMPLES 30
static void html_spark(struct sbuf *b, const struct hist_view *hv)
{
	const double W = 120, H = 30;
	uint32_t maxr = 0, maxp = 0, maxe = 0;
	uint64_t errs = 0;
	double secs = hv->interval_ms / 1000.0, step = W / (MAX(hv->n, SPARK_MIN_SAMPLES) - 1);
	int i;

	sbuf_printf(b, "<td data-l=\"last 10 min\" class=sp>");
	if (hv->n < 2) {
		sbuf_printf(b, "<small>collecting&hellip;</small></td>");
		return;
	}
	for (i = 0; i < hv->n; i++) {
		maxr = MAX(maxr, hv->s[i].req);
		maxp = MAX(maxp, hv->s[i].p99_us);
		maxe = MAX(maxe, hv->s[i].err);
		errs += hv->s[i].err;
	}
	sbuf_printf(b, "<svg class=spark viewBox=\"0 0 120 30\" width=120 height=30 "
		     "preserveAspectRatio=none role=img "
		     "aria-label=\"last %d min: up to %.1f req/s, p99 up to %.1f ms, %llu errors\">"
		     "<title>last %.0f s: requests/s up to %.1f (blue), TTFB p99 up to %.1f ms "
		     "(purple, dashed), %llu errors (red)</title>",
		  (int)((hv->n * secs + 59) / 60), maxr / secs, maxp / 1000.0,
		  (unsigned long long)errs, hv->n * secs, maxr / secs, maxp / 1000.0,
		  (unsigned long long)errs);
	if (maxe) {
		for (i = 0; i < hv->n; i++) {
			double h;

			if (!hv->s[i].err)
				continue;
			h = (H - 3) * hv->s[i].err / MAX(maxr, maxe);
			h = MAX(h, 2);
			sbuf_printf(b, "<rect class=e x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
				  W - (hv->n - 1 - i) * step - MAX(step, 1.5), H - h, MAX(step, 1.5), h);
		}
	}
	sbuf_printf(b, "<polyline class=r points=\"");
	for (i = 0; i < hv->n; i++)
		sbuf_printf(b, "%.1f,%.1f ", W - (hv->n - 1 - i) * step,
			  H - 1.5 - (maxr ? (H - 3) * hv->s[i].req / maxr : 0));
	sbuf_printf(b, "\"/>");
	if (maxp) {
		sbuf_printf(b, "<polyline class=p points=\"");
		for (i = 0; i < hv->n; i++)
			sbuf_printf(b, "%.1f,%.1f ", W - (hv->n - 1 - i) * step,
				  H - 1.5 - (H - 3) * hv->s[i].p99_us / maxp);
		sbuf_printf(b, "\"/>");
	}
	sbuf_printf(b, "</svg></td>");
}

static void html_bytes(struct sbuf *b, const struct stats_sums *c)
{
	char in[32], out[32];

	fmt_bytes(in, sizeof(in), c->bytes_in);
	fmt_bytes(out, sizeof(out), c->bytes_out);
	sbuf_printf(b, "<td data-l=\"bytes in/out\">%s<br><small>%s</small></td>", in, out);
}

/* A draining server's sticky users: "5 sticky users", "5+ ..." while cookie users not seen
 * since the drain began may still come back. */
static void html_sticky(struct sbuf *b, const struct sticky_count *sc)
{
	sbuf_printf(b, "<br><small title=\"users still bound to this server: stick table entries "
		       "and cookie users seen within drain-idle");
	if (sc->pending_ms > 0)
		sbuf_printf(b,
			    "; cookie users not seen since the drain began may come back for %lld "
			    "s more",
			    (long long)(sc->pending_ms + 999) / 1000);
	else if (sc->pending_ms < 0)
		sbuf_printf(b, "; cookie users are kept for ever (drain-idle 0)");
	sbuf_printf(b, "\">%d%s sticky user%s</small>", sc->users, sc->pending_ms ? "+" : "",
		    sc->users == 1 && !sc->pending_ms ? "" : "s");
}

/* The state cell and the why cell of a server. */
static void html_srv_state(struct sbuf *b, struct page *pg, const struct server *s,
			   const struct health_view *v, const struct sticky_count *sc)
{
	const char *cls = state_class(v->state);
	char age[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(state_cls); i++)
		if (!strcmp(cls, state_cls[i]))
			pg->n_state[i]++;
	sbuf_printf(b, "<td data-l=\"state\" class=l><span class=\"st %s\">%s</span>", cls, v->state);
	if (v->slowstart_pct >= 0)
		sbuf_printf(b, "<br><small>slowstart %d%%</small>", v->slowstart_pct);
	if (atomic_load(&s->admin) == SRV_ADMIN_DRAIN)
		html_sticky(b, sc);
	if (v->since_wall && wall_us / 1000 >= v->since_wall) {
		fmt_age(age, sizeof(age), (wall_us / 1000 - v->since_wall) / 1000);
		sbuf_printf(b, "<br><small>for %s</small>", age);
	}
	sbuf_printf(b, "</td><td data-l=\"why\" class=\"l why\">");
	sb_html(b, v->why);
	if (v->ev_reason[0]) {
		sbuf_printf(b, "; ");
		sb_html(b, v->ev_reason);
	}
	sbuf_printf(b, "<br><small>check: ");
	if (v->has_chk) {
		sbuf_printf(b, "%s, ", chk_code_str(v->last_chk.code));
		sb_html(b, v->last_chk.reason);
		sbuf_printf(b, ", %u ms", v->last_chk.dur_ms);
	} else {
		sbuf_printf(b, "%s", s->chk.enabled ? "pending" : "none");
	}
	if (v->consec_err || v->ejections_tot)
		sbuf_printf(b, " &middot; error streak %d &middot; ejected %llu&times;", v->consec_err,
			  (unsigned long long)v->ejections_tot);
	sbuf_printf(b, "</small></td>");
}

static void html_actions(struct sbuf *b, const struct page *pg, const struct server *s)
{
	static const char *const act[] = {"ready", "drain", "maint"};
	static const char *const label[] = {"Ready", "Drain", "Maint"};
	int cur = atomic_load(&s->admin), i;

	sbuf_printf(b, "<td data-l=\"admin\" class=\"l adm\"><form method=post action=\"");
	sb_html(b, pg->fe->stats.uri);
	sbuf_printf(b, "\"><input type=hidden name=b value=\"");
	sb_html(b, s->be->name);
	sbuf_printf(b, "\"><input type=hidden name=s value=\"");
	sb_html(b, s->name);
	sbuf_printf(b, "\"><input type=hidden name=token value=\"%s\">", pg->token);
	for (i = 0; i < 3; i++) {
		bool on = (cur == SRV_ADMIN_READY && i == 0) || (cur == SRV_ADMIN_DRAIN && i == 1) ||
			  (cur == SRV_ADMIN_MAINT && i == 2);

		sbuf_printf(b, "<button name=action value=%s class=\"%s%s\" aria-pressed=%s>%s</button>",
			  act[i], act[i], on ? " on" : "", on ? "true" : "false", label[i]);
	}
	sbuf_printf(b, "</form></td>");
}

static void html_srv_row(struct sbuf *b, struct page *pg, struct server *s)
{
	struct health_view v;
	struct hist_view *hv = malloc(sizeof(*hv));
	struct stats_sums c;
	struct sticky_count sc = {0};
	int ew = atomic_load(&s->eweight);

	if (!hv) {
		b->oom = true;
		return;
	}
	stats_sum(s->ctr, &c);
	health_view(s, &v);
	if (atomic_load(&s->admin) == SRV_ADMIN_DRAIN) /* shown for a draining server only */
		drain_sticky_count(s, drain_clock_us(), &sc);
	history_read(s, HIST_SRV, hv);
	sbuf_printf(b, "<tr><td class=\"l name\">");
	sb_html(b, s->name);
	sbuf_printf(b, "%s</td>", s->backup ? " <small>backup</small>" : "");
	html_srv_state(b, pg, s, &v, &sc);
	sbuf_printf(b, "<td data-l=\"weight\" title=\"effective / configured\">%d<small>/%d</small></td>",
		  ew, v.uweight);
	html_rates(b, hv, c.req_tot);
	html_errs(b, &c);
	sbuf_printf(b, "<td data-l=\"TTFB p50/p95/p99 ms\">");
	sb_ms(b, v.p50_us);
	sbuf_printf(b, " / ");
	sb_ms(b, v.p95_us);
	sbuf_printf(b, " / <b>");
	sb_ms(b, v.p99_us);
	sbuf_printf(b, "</b></td><td data-l=\"conns cur/max\">%d / %d<br><small>",
		  atomic_load(&s->cur_sess), atomic_load(&s->max_sess));
	if (s->maxconn)
		sbuf_printf(b, "maxconn %d", s->maxconn);
	else
		sbuf_printf(b, "no maxconn");
	sbuf_printf(b, "</small></td><td data-l=\"queue\">%d</td>", atomic_load(&s->nbpend));
	html_bytes(b, &c);
	html_spark(b, hv);
	if (pg->admin)
		html_actions(b, pg, s);
	sbuf_printf(b, "</tr>");
	free(hv);
}

static void html_fe_row(struct sbuf *b, const struct page *pg, struct proxy *p)
{
	struct hist_view *hv = malloc(sizeof(*hv));
	struct stats_sums c;

	if (!hv) {
		b->oom = true;
		return;
	}
	stats_sum(p->ctr, &c);
	history_read(p, HIST_FE, hv);
	sbuf_printf(b, "<tr class=tot><td class=\"l name\">Frontend</td><td data-l=\"state\" class=l>"
		     "<span class=\"st UP\">OPEN</span></td><td data-l=\"why\" class=\"l why\"></td>"
		     "<td data-l=\"weight\"></td>");
	html_rates(b, hv, c.req_tot);
	html_errs(b, &c);
	sbuf_printf(b, "<td data-l=\"TTFB\"></td><td data-l=\"conns cur\">%d<br><small>maxconn %d</small>"
		     "</td><td data-l=\"queue\"></td>",
		  atomic_load(&p->feconn), p->maxconn ? p->maxconn : global.maxconn);
	html_bytes(b, &c);
	html_spark(b, hv);
	if (pg->admin && (p->cap & PR_CAP_BE))
		sbuf_printf(b, "<td class=noa></td>");
	sbuf_printf(b, "</tr>");
	free(hv);
}

static void html_be_row(struct sbuf *b, const struct page *pg, struct proxy *p)
{
	struct hist_view *hv = malloc(sizeof(*hv));
	struct stats_sums c;
	int up = stats_usable_servers(p), ew = 0, i;
	const char *why = "";

	if (!hv) {
		b->oom = true;
		return;
	}
	for (i = 0; i < p->nsrv; i++)
		ew += atomic_load(&p->srv[i]->eweight);
	if (!up)
		why = p->hl && health_fail_open(p)
			      ? "no server up: failing open (servers not in maintenance take traffic)"
			      : "no server usable";
	stats_sum(p->ctr, &c);
	history_read(p, HIST_BE, hv);
	sbuf_printf(b, "<tr class=tot><td class=\"l name\">Backend</td><td data-l=\"state\" class=l>"
		     "<span class=\"st %s\">%s</span><br><small>%d/%d usable</small></td>"
		     "<td data-l=\"why\" class=\"l why\">%s</td>"
		     "<td data-l=\"weight\">%d</td>",
		  up ? "UP" : "DOWN", up ? "UP" : "DOWN", up, p->nsrv, why, ew);
	html_rates(b, hv, c.rsp[0] + c.rsp[1] + c.rsp[2] + c.rsp[3] + c.rsp[4] + c.rsp[5]);
	html_errs(b, &c);
	sbuf_printf(b, "<td data-l=\"TTFB p99 ms\" title=\"the typical server's p99\">");
	sb_ms(b, p->hl ? atomic_load(&p->hl->p99_us) : 0);
	sbuf_printf(b, "</td><td data-l=\"conns cur\">%d</td><td data-l=\"queue\">%d</td>",
		  atomic_load(&p->beconn), atomic_load(&p->nbpend));
	html_bytes(b, &c);
	html_spark(b, hv);
	if (pg->admin)
		sbuf_printf(b, "<td class=noa></td>");
	sbuf_printf(b, "</tr>");
	free(hv);
}

static const char html_css[] =
	":root{--bg:#f5f6f8;--fg:#1c2330;--mut:#687180;--card:#fff;--line:#e2e5ea;"
	"--up:#17692f;--upb:#d9f3e1;--dn:#a8201a;--dnb:#fde0dd;--ej:#9a4a05;--ejb:#fde8cf;"
	"--dr:#7a5e00;--drb:#fff3bf;--mt:#3444a8;--mtb:#e1e5fb;--r:#2563eb;--p:#9333ea;--e:#dc2626}"
	"@media(prefers-color-scheme:dark){:root{--bg:#0e1115;--fg:#e5e7ea;--mut:#98a1ac;"
	"--card:#161a20;--line:#2a3038;--up:#7ee2a0;--upb:#133a22;--dn:#ffa39a;--dnb:#4b1814;"
	"--ej:#ffc27a;--ejb:#47290b;--dr:#ffe17a;--drb:#3d3308;--mt:#aab6ff;--mtb:#1f2652;"
	"--r:#6ea1ff;--p:#c08bff;--e:#ff6b6b}}"
	"*{box-sizing:border-box}"
	"body{margin:0;font:14px/1.35 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
	"background:var(--bg);color:var(--fg)}"
	"header{display:flex;flex-wrap:wrap;gap:.2em 1.2em;align-items:baseline;padding:.6em 1em;"
	"background:var(--card);border-bottom:1px solid var(--line)}"
	"h1{font-size:1.25em;margin:0}small,.mut{color:var(--mut);font-size:.82em}"
	"main{padding:.8em 1em;max-width:1800px}"
	".sum{display:flex;flex-wrap:wrap;gap:.4em;align-items:center;margin:0 0 .8em}"
	".sum .st{font-size:1.05em;padding:.2em .7em}"
	"section{background:var(--card);border:1px solid var(--line);border-radius:8px;"
	"margin:0 0 1em;overflow-x:auto}"
	"h2{font-size:1.05em;margin:0;padding:.5em .8em;border-bottom:1px solid var(--line)}"
	"table{border-collapse:collapse;width:100%}"
	"th,td{padding:.35em .45em;border-bottom:1px solid var(--line);text-align:right;"
	"vertical-align:top;white-space:nowrap;font-variant-numeric:tabular-nums}"
	"th{font-size:.75em;text-transform:uppercase;letter-spacing:.03em;color:var(--mut);"
	"font-weight:600}"
	".l{text-align:left}td.why{white-space:normal;min-width:12em;max-width:30em}"
	"td.name{font-weight:600}tr.tot td{background:rgba(128,128,128,.07)}"
	".st{display:inline-block;padding:.05em .5em;border-radius:4px;font-weight:700}"
	".UP{background:var(--upb);color:var(--up)}.DOWN{background:var(--dnb);color:var(--dn)}"
	".EJECTED{background:var(--ejb);color:var(--ej)}.DRAIN{background:var(--drb);color:var(--dr)}"
	".MAINT{background:var(--mtb);color:var(--mt)}.bad{color:var(--dn);font-weight:700}"
	".spark{display:block}.spark .r{fill:none;stroke:var(--r);stroke-width:1.5;"
	"vector-effect:non-scaling-stroke}.spark .p{fill:none;stroke:var(--p);stroke-width:1;"
	"stroke-dasharray:3 2;vector-effect:non-scaling-stroke}"
	".spark .e{fill:var(--e)}"
	"form{display:flex;gap:.3em;margin:0}"
	"button{font:inherit;font-size:.85em;padding:.25em .6em;border:1px solid var(--line);"
	"border-radius:4px;background:var(--bg);color:var(--fg);cursor:pointer}"
	"button:hover{border-color:var(--mut)}"
	"button.on{font-weight:700;border-color:currentColor}"
	"button.drain.on{background:var(--drb);color:var(--dr)}"
	"button.maint.on{background:var(--mtb);color:var(--mt)}"
	"button.ready.on{background:var(--upb);color:var(--up)}"
	/* Phones: each row becomes a card, two cells per line, labelled from data-l. */
	"@media(max-width:760px){main{padding:.5em}thead{display:none}table,tbody{display:block}"
	"tr{display:grid;grid-template-columns:1fr 1fr;gap:.15em .8em;padding:.5em .8em;"
	"border-bottom:2px solid var(--line)}"
	"td{display:block;border:0;padding:.1em 0;white-space:normal;text-align:left;min-width:0}"
	"td:empty,td.noa{display:none}td::before{content:attr(data-l);display:block;"
	"color:var(--mut);font-size:.7em;text-transform:uppercase;letter-spacing:.03em}"
	"td.name,td.why,td.sp,td.adm{grid-column:1/-1;max-width:none}td.name::before{display:none}"
	"td.name{font-size:1.1em}.spark{width:100%;height:36px}"
	"button{padding:.5em 1.1em;font-size:.95em}}";

/* Refreshes #dash from the same URL every data-refresh seconds while the tab is visible (not
 * while a button has the focus: the swap would take it away). */
static const char html_js[] =
	"(function(){var d=document.getElementById('dash'),l=document.getElementById('live'),"
	"t=+d.getAttribute('data-refresh')||5,busy=0;if(!window.fetch||!window.DOMParser)return;"
	"function say(m){if(l)l.textContent=m}"
	"function tick(){if(busy||document.hidden)return;busy=1;"
	"fetch(location.href,{credentials:'same-origin',cache:'no-store'})"
	".then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text()})"
	".then(function(h){var n=new DOMParser().parseFromString(h,'text/html')"
	".getElementById('dash');if(!n)throw new Error('no #dash');"
	"var a=document.activeElement;if(a&&a.form&&d.contains(a))return;"
	"d.innerHTML=n.innerHTML;say('live, every '+t+' s')})"
	".catch(function(e){say('update failed ('+e.message+'), retrying')})"
	".then(function(){busy=0})}"
	"say('live, every '+t+' s');setInterval(tick,t*1000)})();";

#define SUMMARY_ROOM 400 /* bytes kept for the state summary, written after the tables */

static void render_html(struct sbuf *b, struct page *pg)
{
	const struct proxy *fe = pg->fe;
	struct list *l;
	size_t mark;
	char upt[32], when[64];
	struct tm tm;
	time_t now = time(NULL);
	unsigned i;

	sbuf_printf(b, "<!DOCTYPE html><html lang=en><head><meta charset=\"utf-8\">"
		     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
	/* Without JavaScript the meta refresh reloads the page; with it, the script refreshes the
	 * tables in place (a meta refresh cannot be cancelled once parsed, hence <noscript>). */
	if (fe->stats.refresh_s)
		sbuf_printf(b, "<noscript><meta http-equiv=\"refresh\" content=\"%u\"></noscript>",
			  fe->stats.refresh_s);
	sbuf_printf(b, "<title>keel statistics</title><style>%s</style></head><body><header>"
		     "<h1>keel statistics</h1><span class=mut>",
		  html_css);
	if (!fe->stats.hide_version)
		sbuf_printf(b, "keel %s &middot; ", KEEL_VERSION);
	fmt_age(upt, sizeof(upt),
		keel_start_wall && (uint64_t)now > keel_start_wall ? (uint64_t)now - keel_start_wall : 0);
	sbuf_printf(b, "pid %d &middot; %d threads &middot; up %s</span>"
		     "<span class=mut id=live>%s</span></header>",
		  (int)getpid(), keel_nworkers, upt,
		  fe->stats.refresh_s ? "" : "static page: reload to update");
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
	sbuf_printf(b, "<main id=dash data-refresh=\"%u\"><div class=sum>",
		  fe->stats.refresh_s ? fe->stats.refresh_s : 5);
	/* The summary counts the states while the tables render: it is written afterwards into
	 * this room (spaces, harmless in HTML). */
	mark = b->len;
	sbuf_printf(b, "%*s</div>", SUMMARY_ROOM, "");
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);
		int k;

		sbuf_printf(b, "<section><h2>");
		sb_html(b, p->name);
		sbuf_printf(b, " <small>%s</small></h2><table><thead><tr><th class=l>name</th>"
			     "<th class=l>state</th><th class=l>why &middot; last check</th>"
			     "<th>weight</th><th>req/s</th><th>errors</th>"
			     "<th>TTFB ms p50/95/99</th><th>conns</th><th>queue</th>"
			     "<th>bytes in/out</th><th>last 10 min</th>%s</tr></thead><tbody>",
			  (p->cap & PR_CAP_FE) && (p->cap & PR_CAP_BE) ? "listen"
			  : (p->cap & PR_CAP_FE)                        ? "frontend"
									: "backend",
			  pg->admin && (p->cap & PR_CAP_BE) ? "<th class=l>admin</th>" : "");
		if (p->cap & PR_CAP_FE)
			html_fe_row(b, pg, p);
		if (p->cap & PR_CAP_BE) {
			for (k = 0; k < p->nsrv; k++)
				if (!server_deleted(p->srv[k])) /* "del server" */
					html_srv_row(b, pg, p->srv[k]);
			html_be_row(b, pg, p);
		}
		sbuf_printf(b, "</tbody></table></section>");
	}
	sbuf_printf(b, "<p class=mut>maxconn %d &middot; %d active connections &middot; rendered %s "
		     "&middot; rates over the last 5 s, history over 10 min (blue: requests/s, "
		     "purple: TTFB p99, red: errors)</p></main><script>%s</script></body></html>\n",
		  global.maxconn, atomic_load(&keel_actconn), when, html_js);
	if (!b->oom) {
		char sum[SUMMARY_ROOM + 1];
		int n = 0;

		for (i = 0; i < ARRAY_SIZE(state_cls); i++)
			if (pg->n_state[i] && n < SUMMARY_ROOM)
				n += snprintf(sum + n, sizeof(sum) - (size_t)n,
					      "<span class=\"st %s\">%d %s</span>", state_cls[i],
					      pg->n_state[i], state_cls[i]);
		if (!n)
			n = snprintf(sum, sizeof(sum), "<span class=mut>no server</span>");
		memcpy(b->p + mark, sum, (size_t)MIN(n, SUMMARY_ROOM));
	}
}

#define AUTH_USER_MAX 256
static void auth_user(const struct proxy *p, const struct http_head *h, char *user, size_t cap);

/* Whether "stats admin if COND" is set and COND holds for this request. */
static bool admin_allowed(struct stream *s)
{
	return s->fe->stats.admin_set && acl_cond_eval(s->fe->stats.admin, s);
}

void stats_serve(struct stream *s, const struct http_head *h)
{
	struct sbuf body = {0};
	const char *u = http_ptr(h, h->uri);
	bool csv = h->uri.len >= 4 && !memcmp(u + h->uri.len - 4, ";csv", 4);

	if (h->uri.len >= 5 && !memcmp(u + h->uri.len - 5, ";json", 5)) {
		stats_json_serve(s); /* stats-json.c */
		return;
	}
	if (h->meth == HTTP_METH_POST) {
		char user[AUTH_USER_MAX];

		auth_user(s->fe, h, user, sizeof(user));
		stats_admin_post(s, h, admin_allowed(s), user); /* stats-admin.c */
		return;
	}
	if (csv) {
		render_csv(&body);
	} else {
		struct page pg = {.fe = s->fe};
		char user[AUTH_USER_MAX];

		pg.admin = admin_allowed(s);
		if (pg.admin) {
			auth_user(s->fe, h, user, sizeof(user));
			stats_admin_token(s->fe, user, pg.token);
		}
		render_html(&body, &pg);
	}
	stats_reply(s, &body, csv ? "text/plain" : "text/html; charset=utf-8");
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int b64decode(const char *in, size_t len, char *out, size_t cap)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (i = 0; i < len; i++) {
		int v;

		if (in[i] == '=')
			break;
		v = b64val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (int)o;
}

/* Compares in time that depends only on the lengths, never on where the bytes differ. */
static bool ct_equal(const char *a, size_t al, const char *b, size_t bl)
{
	unsigned char diff = (unsigned char)(al != bl);
	size_t i, n = al > bl ? al : bl;

	for (i = 0; i < n; i++) {
		unsigned char x = i < al ? (unsigned char)a[i] : 0;
		unsigned char y = i < bl ? (unsigned char)b[i] : 0;

		diff |= (unsigned char)(x ^ y);
	}
	return diff == 0;
}

bool stats_check_auth(const struct proxy *p, const struct http_head *h)
{
	char dec[512];
	const char *v, *colon;
	int i, k, n;
	bool ok = false;

	if (!p->stats.nusers)
		return true;
	k = http_hdr_find(h, "authorization", 13, 0);
	if (k < 0)
		return false;
	v = http_ptr(h, h->hdr[k].value);
	if (h->hdr[k].value.len < 7 || strncasecmp(v, "Basic ", 6))
		return false;
	v += 6;
	n = h->hdr[k].value.len - 6;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	n = b64decode(v, (size_t)n, dec, sizeof(dec));
	if (n <= 0)
		return false;
	colon = memchr(dec, ':', (size_t)n);
	if (!colon)
		return false;
	/* Check every user (no early exit) so timing does not reveal which user matched. */
	for (i = 0; i < p->stats.nusers; i++) {
		const struct stats_user *u = &p->stats.users[i];
		/* '&' on ints, not '&&': both comparisons always run. */
		int m = (int)ct_equal(dec, (size_t)(colon - dec), u->user, strlen(u->user)) &
			(int)ct_equal(colon + 1, (size_t)(dec + n - colon - 1), u->pass, strlen(u->pass));

		ok = ok || m;
	}
	return ok;
}

/* The user name of the request's Basic credentials (already checked by stats_check_auth()), or ""
 * when the page has no users. */
static void auth_user(const struct proxy *p, const struct http_head *h, char *user, size_t cap)
{
	char dec[512];
	const char *v, *colon;
	int k, n;

	user[0] = 0;
	if (!p->stats.nusers)
		return;
	k = http_hdr_find(h, "authorization", 13, 0);
	if (k < 0 || h->hdr[k].value.len < 7)
		return;
	v = http_ptr(h, h->hdr[k].value) + 6;
	n = h->hdr[k].value.len - 6;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	n = b64decode(v, (size_t)n, dec, sizeof(dec));
	colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
	if (colon && (size_t)(colon - dec) < cap) {
		memcpy(user, dec, (size_t)(colon - dec));
		user[colon - dec] = 0;
	}
}
