/* Prometheus metrics (text exposition format 0.0.4), served on "stats prometheus-uri <path>" and
 * by "http-request use-service prometheus-exporter". The list of metrics, their types and labels
 * is in docs/metrics.md.
 *
 * The page is built in one pass on the worker that got the request, off the hot path: counters
 * are relaxed reads of the per-thread cells, each server's health comes from health_view() (its
 * mutex is held for a copy, never across I/O), the latency histograms from health_lat_counts()
 * (lock-free). Every server adds a fixed number of lines, so the page grows linearly with the
 * number of servers and nothing waits. */
#include <string.h>
#include <time.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/prom.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/stats.h>
#include <keel/stream-t.h>
#include <keel/worker.h>


/* What one server shows, copied once per page (health_view() takes the server's mutex). */
struct prom_srv {
	struct server *srv;
	struct health_view v;
	struct stats_sums c;
	struct sticky_count sticky; /* drain_sticky_count() */
	const char *state;   /* stats_state_word() */
};

static const char *const code_label[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const state_label[] = {"up", "down", "ejected", "drain", "maint"};

void prom_label(struct sbuf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '"')
			esc = "\\\"";
		else if (*s == '\n')
			esc = "\\n";
		else if ((unsigned char)*s >= 0x80)
			esc = "?";
		if (!esc)
			continue;
		sbuf_put(b, run, (size_t)(s - run));
		sbuf_put(b, esc, strlen(esc));
		run = s + 1;
	}
	sbuf_put(b, run, (size_t)(s - run));
}

/* The HELP and TYPE lines of a family (HELP texts are constants without '\' or newline). */
static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* key="value", the value escaped. */
static void label(struct sbuf *b, const char *key, const char *val)
{
	sbuf_printf(b, "%s=\"", key);
	prom_label(b, val);
	sbuf_put(b, "\"", 1);
}

static void srv_labels(struct sbuf *b, const struct server *s)
{
	label(b, "backend", s->be->name);
	sbuf_put(b, ",", 1);
	label(b, "server", s->name);
}

/* Coarse buckets of keel_server_ttfb_seconds: the label, and the bound in microseconds. */
static const struct {
	const char *le;
	uint64_t us;
} coarse[] = {
	{"0.001", 1000},     {"0.005", 5000},     {"0.01", 10000},     {"0.025", 25000},
	{"0.05", 50000},     {"0.1", 100000},     {"0.25", 250000},    {"0.5", 500000},
	{"1", 1000000},      {"2.5", 2500000},    {"5", 5000000},      {"10", 10000000},
};

void prom_histogram(struct sbuf *b, const char *name, const char *labels,
		    const uint64_t fine[LAT_BUCKETS])
{
	uint64_t cum = 0, total = 0;
	double sum_us = 0;
	int f = 0, k, i;

	for (i = 0; i < LAT_BUCKETS; i++) {
		uint64_t lo = i ? lat_bucket_us(i - 1) : 0;

		total += fine[i];
		/* The midpoint of the fine bucket stands for its samples (see docs/metrics.md). */
		sum_us += (double)fine[i] * (double)(lo + lat_bucket_us(i)) / 2;
	}
	/* A fine bucket counts under le when all its values are below le: its upper bound is at
	 * most le. The last fine bucket is open-ended and only counts under +Inf. */
	for (k = 0; k < (int)ARRAY_SIZE(coarse); k++) {
		while (f < LAT_BUCKETS - 1 && lat_bucket_us(f) <= coarse[k].us)
			cum += fine[f++];
		sbuf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, *labels ? "," : "",
			    coarse[k].le, (unsigned long long)cum);
	}
	sbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
		    (unsigned long long)total);
	sbuf_printf(b, "%s_sum{%s} %.6f\n", name, labels, sum_us / 1e6);
	sbuf_printf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)total);
}

/* What a family shows of each proxy or server. */
enum prom_val {
	/* counters of struct stats_sums (sum_value()) */
	V_CONN_TOT, V_REQ_TOT, V_DENIED_REQ, V_FAILED_REQ, V_FAILED_CONN, V_FAILED_RSP, V_RETRIES,
	V_REDISPATCHES, V_TIMEOUTS, V_STICKY_MOVES, V_BYTES_IN, V_BYTES_OUT, V_RECLAIM_IDLE,
	V_RECLAIM_HEADS,
	V_RSP, /* one line per status class */
	/* of the proxy (px_lines()) */
	V_FECONN, V_BECONN, V_BE_QUEUE, V_UP_SERVERS,
	/* of the server (srv_lines()) */
	V_UP, V_STATE, V_WEIGHT, V_CUR, V_MAX, V_QUEUE, V_STICKY, V_PENDING, V_EJECT, V_CONSEC,
	V_CHECK_UP, V_CHECK_DUR, V_TTFB,
};

struct prom_family {
	const char *name, *type, *help;
	enum prom_val val;
};

/* In the order of the page (docs/metrics.md). */
static const struct prom_family fe_families[] = {
	{"keel_frontend_current_connections", "gauge", "Client connections open on the frontend.",
	 V_FECONN},
	{"keel_frontend_connections_total", "counter",
	 "Client connections accepted by the frontend.", V_CONN_TOT},
	{"keel_frontend_requests_total", "counter", "HTTP requests received by the frontend.",
	 V_REQ_TOT},
	{"keel_frontend_responses_total", "counter",
	 "HTTP responses sent by the frontend, by status class.", V_RSP},
	{"keel_frontend_denied_requests_total", "counter", "Requests denied by http-request rules.",
	 V_DENIED_REQ},
	{"keel_frontend_invalid_requests_total", "counter", "Requests rejected as invalid.",
	 V_FAILED_REQ},
	{"keel_frontend_bytes_in_total", "counter", "Bytes received from clients.", V_BYTES_IN},
	{"keel_frontend_bytes_out_total", "counter", "Bytes sent to clients.", V_BYTES_OUT},
	{"keel_frontend_maxconn_idle_closed_total", "counter",
	 "Idle keep-alive client connections closed at maxconn to accept new ones.",
	 V_RECLAIM_IDLE},
	{"keel_frontend_maxconn_heads_closed_total", "counter",
	 "Client connections with an incomplete request head closed at maxconn to accept new ones.",
	 V_RECLAIM_HEADS},
};

static const struct prom_family be_families[] = {
	{"keel_backend_requests_total", "counter", "HTTP requests handled by the backend.",
	 V_REQ_TOT},
	{"keel_backend_responses_total", "counter",
	 "HTTP responses from the backend, by status class.", V_RSP},
	{"keel_backend_connection_errors_total", "counter",
	 "Failed connections to the backend's servers.", V_FAILED_CONN},
	{"keel_backend_response_errors_total", "counter",
	 "Invalid or aborted responses from the backend's servers.", V_FAILED_RSP},
	{"keel_backend_retries_total", "counter", "Requests sent again after a failed try.",
	 V_RETRIES},
	{"keel_backend_redispatches_total", "counter", "Requests moved to another server.",
	 V_REDISPATCHES},
	{"keel_backend_timeouts_total", "counter", "Server connect or response timeouts.",
	 V_TIMEOUTS},
	{"keel_backend_current_sessions", "gauge", "Requests being served by the backend.",
	 V_BECONN},
	{"keel_backend_queue", "gauge", "Requests waiting in the backend's queue.", V_BE_QUEUE},
	{"keel_backend_up_servers", "gauge", "Servers of the backend that take new traffic now.",
	 V_UP_SERVERS},
};

static const struct prom_family srv_families[] = {
	{"keel_server_requests_total", "counter", "HTTP requests sent to the server.", V_REQ_TOT},
	{"keel_server_responses_total", "counter",
	 "HTTP responses from the server, by status class.", V_RSP},
	{"keel_server_up", "gauge", "1 when the server takes new traffic (state up), else 0.",
	 V_UP},
	{"keel_server_state", "gauge",
	 "The server's state: 1 for the current one (up, down, ejected, drain, maint).", V_STATE},
	{"keel_server_weight", "gauge",
	 "Effective weight of the server (after agent, slowstart and latency).", V_WEIGHT},
	{"keel_server_current_sessions", "gauge", "Requests being served by the server.", V_CUR},
	{"keel_server_max_sessions", "gauge",
	 "Highest number of concurrent requests seen on the server.", V_MAX},
	{"keel_server_queue", "gauge", "Requests waiting for this server specifically.", V_QUEUE},
	{"keel_server_connection_errors_total", "counter", "Failed connections to the server.",
	 V_FAILED_CONN},
	{"keel_server_response_errors_total", "counter",
	 "Invalid or aborted responses from the server.", V_FAILED_RSP},
	{"keel_server_retries_total", "counter", "Tries on this server that were sent again.",
	 V_RETRIES},
	{"keel_server_timeouts_total", "counter", "Connect or response timeouts on the server.",
	 V_TIMEOUTS},
	{"keel_server_sticky_moves_total", "counter",
	 "Users whose persistence cookie named this server, sent to another one.", V_STICKY_MOVES},
	{"keel_server_sticky_users", "gauge",
	 "Users still bound to the server (stick table entries; for a draining server, "
	 "those and the cookie users seen, within drain-idle).",
	 V_STICKY},
	{"keel_server_sticky_users_pending_seconds", "gauge",
	 "Draining server with cookie persistence: for how long cookie users not seen since "
	 "the drain began may still come back and stay (+Inf: kept for ever).",
	 V_PENDING},
	{"keel_server_ejections_total", "counter", "Times passive detection ejected the server.",
	 V_EJECT},
	{"keel_server_consecutive_errors", "gauge",
	 "Current streak of live-traffic errors on the server.", V_CONSEC},
	{"keel_server_bytes_in_total", "counter",
	 "Request bytes sent to the server (received from clients).", V_BYTES_IN},
	{"keel_server_bytes_out_total", "counter",
	 "Response bytes received from the server (sent to clients).", V_BYTES_OUT},
	{"keel_server_check_up", "gauge",
	 "1 when the server's last health check passed, else 0 (servers with a check result).",
	 V_CHECK_UP},
	{"keel_server_check_duration_seconds", "gauge",
	 "Duration of the server's last health check.", V_CHECK_DUR},
	{"keel_server_ttfb_seconds", "histogram",
	 "Time to the first byte of the server's response heads since start.", V_TTFB},
};

static uint64_t sum_value(const struct stats_sums *c, enum prom_val v)
{
	switch (v) {
	case V_CONN_TOT: return c->conn_tot;
	case V_REQ_TOT: return c->req_tot;
	case V_DENIED_REQ: return c->denied_req;
	case V_FAILED_REQ: return c->failed_req;
	case V_FAILED_CONN: return c->failed_conn;
	case V_FAILED_RSP: return c->failed_rsp;
	case V_RETRIES: return c->retries;
	case V_REDISPATCHES: return c->redispatches;
	case V_TIMEOUTS: return c->timeouts;
	case V_STICKY_MOVES: return c->sticky_moves;
	case V_BYTES_IN: return c->bytes_in;
	case V_BYTES_OUT: return c->bytes_out;
	case V_RECLAIM_IDLE: return c->reclaim_idle;
	case V_RECLAIM_HEADS: return c->reclaim_heads;
	default: return 0;
	}
}

/* The lines of a counter family for one proxy or server, whose labels are lab. */
static void sum_lines(struct sbuf *b, const struct prom_family *f, const char *lab,
		      const struct stats_sums *c)
{
	int k;

	if (f->val != V_RSP) {
		sbuf_printf(b, "%s{%s} %llu\n", f->name, lab,
			    (unsigned long long)sum_value(c, f->val));
		return;
	}
	/* 1xx..5xx, then other */
	for (k = 1; k <= 6; k++)
		sbuf_printf(b, "%s{%s,code=\"%s\"} %llu\n", f->name, lab, code_label[k % 6],
			    (unsigned long long)c->rsp[k % 6]);
}

/* The lines of family f for proxy p, whose labels are lab. */
static void px_lines(struct sbuf *b, const struct prom_family *f, const struct proxy *p,
		     const char *lab)
{
	struct stats_sums c;
	int v;

	switch (f->val) {
	case V_FECONN: v = atomic_load(&p->feconn); break;
	case V_BECONN: v = atomic_load(&p->beconn); break;
	case V_BE_QUEUE: v = atomic_load(&p->nbpend); break;
	case V_UP_SERVERS: v = stats_usable_servers(p); break;
	default:
		stats_sum(p->ctr, &c);
		sum_lines(b, f, lab, &c);
		return;
	}
	sbuf_printf(b, "%s{%s} %d\n", f->name, lab, v);
}

/* The lines of family f for a server, whose labels are lab (none for a check family when the
 * server has no check result). */
static void srv_lines(struct sbuf *b, const struct prom_family *f, const struct prom_srv *ps,
		      const char *lab)
{
	uint64_t fine[LAT_BUCKETS];
	long long v;
	size_t k;

	switch (f->val) {
	case V_UP: v = !strcmp(ps->state, "up"); break;
	case V_WEIGHT: v = atomic_load(&ps->srv->eweight); break;
	case V_CUR: v = atomic_load(&ps->srv->cur_sess); break;
	case V_MAX: v = atomic_load(&ps->srv->max_sess); break;
	case V_QUEUE: v = atomic_load(&ps->srv->nbpend); break;
	case V_STICKY: v = ps->sticky.users; break;
	case V_EJECT: v = (long long)ps->v.ejections_tot; break;
	case V_CONSEC: v = ps->v.consec_err; break;
	case V_STATE:
		for (k = 0; k < ARRAY_SIZE(state_label); k++)
			sbuf_printf(b, "%s{%s,state=\"%s\"} %d\n", f->name, lab, state_label[k],
				    !strcmp(ps->state, state_label[k]));
		return;
	case V_PENDING:
		if (ps->sticky.pending_ms < 0)
			sbuf_printf(b, "%s{%s} +Inf\n", f->name, lab);
		else
			sbuf_printf(b, "%s{%s} %.3f\n", f->name, lab,
				    ps->sticky.pending_ms / 1000.0);
		return;
	case V_CHECK_UP:
		if (ps->v.has_chk)
			sbuf_printf(b, "%s{%s} %d\n", f->name, lab, ps->v.last_chk.ok);
		return;
	case V_CHECK_DUR:
		if (ps->v.has_chk)
			sbuf_printf(b, "%s{%s} %.3f\n", f->name, lab,
				    ps->v.last_chk.dur_ms / 1000.0);
		return;
	case V_TTFB:
		health_lat_counts(ps->srv, fine);
		prom_histogram(b, f->name, lab, fine);
		return;
	default:
		sum_lines(b, f, lab, &ps->c);
		return;
	}
	sbuf_printf(b, "%s{%s} %lld\n", f->name, lab, v);
}

static void render_process(struct sbuf *b, const struct proxy *fe)
{
	family(b, "keel_process_start_time_seconds", "gauge",
	       "Start time of the keel process since the Unix epoch in seconds.");
	sbuf_printf(b, "keel_process_start_time_seconds %llu\n",
		    (unsigned long long)keel_start_wall);
	family(b, "keel_build_info", "gauge", "keel build information (always 1).");
	sbuf_printf(b, "keel_build_info{version=\"");
	prom_label(b, fe && fe->stats.hide_version ? "" : KEEL_VERSION);
	sbuf_printf(b, "\"} 1\n");
	family(b, "keel_process_current_connections", "gauge",
	       "Client connections open on the whole process.");
	sbuf_printf(b, "keel_process_current_connections %d\n", atomic_load(&keel_actconn));
	family(b, "keel_process_max_connections", "gauge", "The global maxconn.");
	sbuf_printf(b, "keel_process_max_connections %d\n", global.maxconn);
}

/* The families of fams, each with one line (or several) per proxy of side cap (PR_CAP_FE: the
 * frontends, PR_CAP_BE: the backends). lab: scratch for the labels. */
static void render_proxies(struct sbuf *b, struct sbuf *lab, unsigned cap,
			   const struct prom_family *fams, size_t nfams)
{
	const char *key = cap == PR_CAP_FE ? "frontend" : "backend";
	struct list *l;
	size_t f;

	for (f = 0; f < nfams; f++) {
		family(b, fams[f].name, fams[f].type, fams[f].help);
		list_for_each(l, &keel_proxies) {
			struct proxy *p = list_entry(l, struct proxy, list);

			if (!(p->cap & cap))
				continue;
			lab->len = 0;
			label(lab, key, p->name);
			if (lab->oom)
				return;
			px_lines(b, &fams[f], p, lab->p);
		}
	}
}

static void render_servers(struct sbuf *b, struct sbuf *lab, const struct prom_srv *ps, int n)
{
	size_t f;
	int i;

	for (f = 0; f < ARRAY_SIZE(srv_families); f++) {
		family(b, srv_families[f].name, srv_families[f].type, srv_families[f].help);
		for (i = 0; i < n; i++) {
			lab->len = 0;
			srv_labels(lab, ps[i].srv);
			if (lab->oom)
				return;
			srv_lines(b, &srv_families[f], &ps[i], lab->p);
		}
	}
}

void prom_render(struct sbuf *b, const struct proxy *fe)
{
	struct sbuf lab = {0}; /* one proxy's or server's labels, for each of its lines */
	struct prom_srv *ps;
	struct list *l;
	int n = 0, i, cap;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_BE)
			n += MAX(p->srv_cap, p->nsrv); /* "add server" may publish more meanwhile */
	}
	cap = n;
	ps = calloc((size_t)n + 1, sizeof(*ps));
	if (!ps) {
		b->oom = true;
		return;
	}
	n = 0;
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_BE))
			continue;
		for (i = 0; i < p->nsrv && n < cap; i++, n++) {
			if (server_deleted(p->srv[i])) { /* "del server" */
				n--;
				continue;
			}
			ps[n].srv = p->srv[i];
			health_view(p->srv[i], &ps[n].v);
			stats_sum(p->srv[i]->ctr, &ps[n].c);
			drain_sticky_count(p->srv[i], drain_clock_us(), &ps[n].sticky);
			ps[n].state = stats_state_word(ps[n].v.state);
		}
	}
	render_process(b, fe);
	render_proxies(b, &lab, PR_CAP_FE, fe_families, ARRAY_SIZE(fe_families));
	render_proxies(b, &lab, PR_CAP_BE, be_families, ARRAY_SIZE(be_families));
	render_servers(b, &lab, ps, n);
	if (lab.oom)
		b->oom = true;
	free(lab.p);
	free(ps);
}

void prom_serve(struct stream *s)
{
	struct sbuf body = {0};

	prom_render(&body, s->fe);
	stats_reply(s, &body, "text/plain; version=0.0.4; charset=utf-8");
}
