/* The stats page: an HTML table of frontends, backends and servers with their state and counters,
 * and the same as CSV (";csv", HAProxy's column order for the columns keel has). */
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/http.h>
#include <keel/session.h>

extern atomic_int keel_actconn;
extern int keel_nloops;
extern uint64_t keel_start_wall;

/* A growable output string (the stats page is not on the hot path). */
struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap + (size_t)n + 1) * 2;
			char *p = realloc(b->p, cap);

			if (!p) {
				b->oom = true;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

/* HTML-escapes names (they come from the config, but a page must never trust its input). */
static void sb_html(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': sb_printf(b, "&lt;"); break;
		case '>': sb_printf(b, "&gt;"); break;
		case '&': sb_printf(b, "&amp;"); break;
		case '"': sb_printf(b, "&quot;"); break;
		default: sb_printf(b, "%c", *s);
		}
	}
}

/* A CSV field: quoted, with quotes doubled (reasons may hold commas). */
static void sb_csv(struct sbuf *b, const char *s)
{
	sb_printf(b, "\"");
	for (; *s; s++)
		sb_printf(b, *s == '"' ? "\"\"" : "%c", *s);
	sb_printf(b, "\"");
}

struct sums {
	uint64_t conn_tot, req_tot, rsp[6], bytes_in, bytes_out, denied_req, failed_req;
	uint64_t failed_conn, failed_rsp, retries, redispatches, timeouts, queued_tot;
	uint64_t queue_timeouts, cli_aborts, srv_aborts;
};

static uint64_t rd(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void sum(const struct counters *c, struct sums *s)
{
	int t, k;

	memset(s, 0, sizeof(*s));
	if (!c)
		return;
	for (t = 0; t < keel_nloops; t++) {
		s->conn_tot += rd(&c[t].conn_tot);
		s->req_tot += rd(&c[t].req_tot);
		for (k = 0; k < 6; k++)
			s->rsp[k] += rd(&c[t].rsp[k]);
		s->bytes_in += rd(&c[t].bytes_in);
		s->bytes_out += rd(&c[t].bytes_out);
		s->denied_req += rd(&c[t].denied_req);
		s->failed_req += rd(&c[t].failed_req);
		s->failed_conn += rd(&c[t].failed_conn);
		s->failed_rsp += rd(&c[t].failed_rsp);
		s->retries += rd(&c[t].retries);
		s->redispatches += rd(&c[t].redispatches);
		s->timeouts += rd(&c[t].timeouts);
		s->queued_tot += rd(&c[t].queued_tot);
		s->queue_timeouts += rd(&c[t].queue_timeouts);
		s->cli_aborts += rd(&c[t].cli_aborts);
		s->srv_aborts += rd(&c[t].srv_aborts);
	}
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

static int be_state_up(const struct proxy *p)
{
	int i, up = 0;

	for (i = 0; i < p->nsrv; i++)
		up += srv_usable(p->srv[i]);
	return up;
}

static void csv_row(struct sbuf *b, const char *px, const char *sv, int scur, int smax,
		    int slim, const struct sums *c, const char *status, int weight, int type,
		    int qcur, int act, int bck, const struct health_view *v)
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
	sb_printf(b,
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
	/* keel's own columns, after HAProxy's: why the server is in its state, its latency. */
	if (v) {
		sb_csv(b, v->why);
		sb_printf(b, ",%u,%u,%d,%llu\n", v->p50_us / 1000, v->p99_us / 1000, v->consec_err,
			  (unsigned long long)v->ejections_tot);
	} else {
		sb_printf(b, ",,,,\n");
	}
}

static void render_csv(struct sbuf *b)
{
	struct list *l;
	struct sums c;
	struct health_view v;
	int i;

	sb_printf(b, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,"
		     "eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,"
		     "qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,"
		     "check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,"
		     "hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,"
		     "keel_reason,keel_ttfb_p50_ms,keel_ttfb_p99_ms,keel_consec_err,keel_ejections\n");
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_FE) {
			sum(p->ctr, &c);
			csv_row(b, p->name, "FRONTEND", atomic_load(&p->feconn), 0,
				p->maxconn ? p->maxconn : global.maxconn, &c, "OPEN", 0, 0, 0, 0, 0, NULL);
		}
		if (!(p->cap & PR_CAP_BE))
			continue;
		for (i = 0; i < p->nsrv; i++) {
			struct server *s = p->srv[i];

			sum(s->ctr, &c);
			health_view(s, &v);
			csv_row(b, p->name, s->name, atomic_load(&s->cur_sess),
				atomic_load(&s->max_sess), s->maxconn, &c, v.state,
				atomic_load(&s->eweight), 2, atomic_load(&s->nbpend), !s->backup,
				s->backup, &v);
		}
		sum(p->ctr, &c);
		csv_row(b, p->name, "BACKEND", atomic_load(&p->beconn), 0, 0, &c,
			be_state_up(p) ? "UP" : "DOWN", 0, 1, atomic_load(&p->nbpend), be_state_up(p), 0,
			NULL);
	}
}

static void html_counts(struct sbuf *b, const struct sums *c)
{
	sb_printf(b, "<td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>"
		     "<td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>",
		  (unsigned long long)c->req_tot, (unsigned long long)c->rsp[2],
		  (unsigned long long)c->rsp[3], (unsigned long long)c->rsp[4],
		  (unsigned long long)c->rsp[5], (unsigned long long)c->failed_conn,
		  (unsigned long long)c->failed_rsp, (unsigned long long)c->retries,
		  (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
}

/* Why a server is in or out: latency, error streak, last check and the last state change. */
/* Why a server is in or out: latency, error streak, last check and the last state change. */
static void html_health(struct sbuf *b, const struct server *s, const struct health_view *v)
{
	sb_printf(b, "<td>%.1f / %.1f</td><td>%d</td><td>%llu</td><td class=n>",
		  v->p50_us / 1000.0, v->p99_us / 1000.0, v->consec_err,
		  (unsigned long long)v->ejections_tot);
	if (v->has_chk) {
		sb_printf(b, "%s ", chk_code_str(v->last_chk.code));
		sb_html(b, v->last_chk.reason);
		sb_printf(b, " (%u ms)", v->last_chk.dur_ms);
	} else {
		sb_printf(b, "%s", s->chk.enabled ? "pending" : "no check");
	}
	sb_printf(b, "</td><td class=n>");
	sb_html(b, v->why);
	if (v->ev_reason[0]) {
		sb_printf(b, "; ");
		sb_html(b, v->ev_reason);
	}
	sb_printf(b, "</td>");
}

static void render_html(struct sbuf *b, const struct proxy *fe)
{
	struct list *l;
	struct sums c;
	int i;

	sb_printf(b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
		     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
	if (fe->stats.refresh_s)
		sb_printf(b, "<meta http-equiv=\"refresh\" content=\"%u\">", fe->stats.refresh_s);
	sb_printf(b, "<title>keel statistics</title><style>"
		     "body{font:14px system-ui,sans-serif;margin:1em;color:#222}"
		     "table{border-collapse:collapse;margin:0 0 1.5em;width:100%%;overflow-x:auto;display:block}"
		     "th,td{border:1px solid #ccc;padding:.3em .5em;text-align:right;white-space:nowrap}"
		     "th{background:#eee}td.n{text-align:left}"
		     ".UP{background:#cfc}.DOWN{background:#fcc}.EJECTED{background:#fc9}"
		     ".MAINT{background:#ccf}.DRAIN{background:#ffc}"
		     "caption{text-align:left;font-weight:bold;padding:.3em 0}"
		     "</style></head><body><h1>keel statistics</h1>");
	sb_printf(b, "<p>%s%s pid %d, %d threads, %d active connections, maxconn %d</p>",
		  fe->stats.hide_version ? "" : "keel ", fe->stats.hide_version ? "" : KEEL_VERSION,
		  (int)getpid(), keel_nloops, atomic_load(&keel_actconn), global.maxconn);
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		sb_printf(b, "<table><caption>");
		sb_html(b, p->name);
		sb_printf(b, "</caption><tr><th>name</th><th>state</th><th>weight</th><th>cur</th>"
			     "<th>max</th><th>limit</th><th>queue</th><th>requests</th><th>2xx</th>"
			     "<th>3xx</th><th>4xx</th><th>5xx</th><th>conn err</th><th>resp err</th>"
			     "<th>retries</th><th>bytes in</th><th>bytes out</th><th>TTFB p50/p99 ms</th>"
			     "<th>errors</th><th>ejections</th><th>last check</th><th>why</th></tr>");
		if (p->cap & PR_CAP_FE) {
			sum(p->ctr, &c);
			sb_printf(b, "<tr><td class=n>FRONTEND</td><td class=UP>OPEN</td><td></td>"
				     "<td>%d</td><td></td><td>%d</td><td></td>",
				  atomic_load(&p->feconn), p->maxconn ? p->maxconn : global.maxconn);
			html_counts(b, &c);
			sb_printf(b, "</tr>");
		}
		if (p->cap & PR_CAP_BE) {
			for (i = 0; i < p->nsrv; i++) {
				struct server *s = p->srv[i];
				struct health_view v;

				sum(s->ctr, &c);
				health_view(s, &v);
				sb_printf(b, "<tr><td class=n>");
				sb_html(b, s->name);
				sb_printf(b, "%s</td><td class=%s>%s</td><td>%d</td><td>%d</td><td>%d</td>"
					     "<td>%d</td><td>%d</td>",
					  s->backup ? " (backup)" : "", state_class(v.state), v.state,
					  atomic_load(&s->eweight), atomic_load(&s->cur_sess),
					  atomic_load(&s->max_sess), s->maxconn, atomic_load(&s->nbpend));
				html_counts(b, &c);
				html_health(b, s, &v);
				sb_printf(b, "</tr>");
			}
			sum(p->ctr, &c);
			sb_printf(b, "<tr><td class=n>BACKEND</td><td class=%s>%s</td><td></td><td>%d</td>"
				     "<td></td><td></td><td>%d</td>",
				  be_state_up(p) ? "UP" : "DOWN", be_state_up(p) ? "UP" : "DOWN",
				  atomic_load(&p->beconn), atomic_load(&p->nbpend));
			html_counts(b, &c);
			sb_printf(b, "</tr>");
		}
		sb_printf(b, "</table>");
	}
	sb_printf(b, "</body></html>\n");
}

void stats_serve(struct session *s, const struct http_head *h)
{
	struct sbuf body = {0}, out = {0};
	const char *u = http_ptr(h, h->uri);
	bool csv = h->uri.len >= 4 && !memcmp(u + h->uri.len - 4, ";csv", 4);

	if (csv)
		render_csv(&body);
	else
		render_html(&body, s->fe);
	if (body.oom) {
		free(body.p);
		session_error(s, 500, "out of memory rendering the stats page", "PR");
		return;
	}
	sb_printf(&out, "HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
			"cache-control: no-cache\r\n\r\n",
		  csv ? "text/plain" : "text/html; charset=utf-8", body.len);
	if (!out.oom && (s->txn->flags & TX_HEAD_REQ) == 0)
		sb_printf(&out, "%.*s", (int)body.len, body.p);
	free(body.p);
	if (out.oom) {
		free(out.p);
		session_error(s, 500, "out of memory rendering the stats page", "PR");
		return;
	}
	session_reply_heap(s, out.p, (uint32_t)out.len, 200, false);
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
