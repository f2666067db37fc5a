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
#include <keel/health.h>
#include <keel/common.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/prom.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/stream-t.h>
#include <keel/stats.h>
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

static void fe_labels(struct sbuf *b, const struct proxy *p)
{
	sbuf_put(b, "frontend=\"", 10);
	prom_label(b, p->name);
	sbuf_put(b, "\"", 1);
}

static void be_labels(struct sbuf *b, const struct proxy *p)
{
	sbuf_put(b, "backend=\"", 9);
	prom_label(b, p->name);
	sbuf_put(b, "\"", 1);
}

static void srv_labels(struct sbuf *b, const struct server *s)
{
	be_labels(b, s->be);
	sbuf_put(b, ",server=\"", 9);
	prom_label(b, s->name);
	sbuf_put(b, "\"", 1);
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

/* Field getters for the per-proxy and per-server families below. */
typedef uint64_t (*sum_get)(const struct stats_sums *c);
#define SUM_GETTER(field)                                                                          \
	static uint64_t get_##field(const struct stats_sums *c)                                    \
	{                                                                                          \
		return c->field;                                                                   \
	}
SUM_GETTER(conn_tot)
SUM_GETTER(req_tot)
SUM_GETTER(bytes_in)
SUM_GETTER(bytes_out)
SUM_GETTER(denied_req)
SUM_GETTER(failed_req)
SUM_GETTER(failed_conn)
SUM_GETTER(failed_rsp)
SUM_GETTER(retries)
SUM_GETTER(redispatches)
SUM_GETTER(timeouts)
SUM_GETTER(sticky_moves)

/* A counter family over the frontends (cap PR_CAP_FE) or backends (PR_CAP_BE). */
static void px_counter(struct sbuf *b, unsigned cap, const char *name, const char *help,
		       sum_get get)
{
	struct list *l;
	struct stats_sums c;

	family(b, name, "counter", help);
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & cap))
			continue;
		stats_sum(p->ctr, &c);
		sbuf_printf(b, "%s{", name);
		if (cap == PR_CAP_FE)
			fe_labels(b, p);
		else
			be_labels(b, p);
		sbuf_printf(b, "} %llu\n", (unsigned long long)get(&c));
	}
}

static void px_responses(struct sbuf *b, unsigned cap, const char *name, const char *help)
{
	struct list *l;
	struct stats_sums c;
	int k;

	family(b, name, "counter", help);
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & cap))
			continue;
		stats_sum(p->ctr, &c);
		for (k = 1; k <= 6; k++) {
			sbuf_printf(b, "%s{", name);
			if (cap == PR_CAP_FE)
				fe_labels(b, p);
			else
				be_labels(b, p);
			/* 1xx..5xx, then other */
			sbuf_printf(b, ",code=\"%s\"} %llu\n", code_label[k % 6],
				    (unsigned long long)c.rsp[k % 6]);
		}
	}
}

static void srv_counter(struct sbuf *b, const struct prom_srv *ps, int n, const char *name,
			const char *help, sum_get get)
{
	int i;

	family(b, name, "counter", help);
	for (i = 0; i < n; i++) {
		sbuf_printf(b, "%s{", name);
		srv_labels(b, ps[i].srv);
		sbuf_printf(b, "} %llu\n", (unsigned long long)get(&ps[i].c));
	}
}

/* The server gauges that are plain integers. */
enum srv_gauge { SG_UP, SG_WEIGHT, SG_CUR, SG_MAX, SG_QUEUE, SG_CONSEC, SG_EJECT, SG_STICKY };

static long long srv_gauge_val(const struct prom_srv *ps, enum srv_gauge g)
{
	switch (g) {
	case SG_UP: return !strcmp(ps->state, "up");
	case SG_WEIGHT: return atomic_load(&ps->srv->eweight);
	case SG_CUR: return atomic_load(&ps->srv->cur_sess);
	case SG_MAX: return atomic_load(&ps->srv->max_sess);
	case SG_QUEUE: return atomic_load(&ps->srv->nbpend);
	case SG_CONSEC: return ps->v.consec_err;
	case SG_EJECT: return (long long)ps->v.ejections_tot;
	case SG_STICKY: return ps->sticky.users;
	}
	return 0;
}

static void srv_gauge(struct sbuf *b, const struct prom_srv *ps, int n, const char *name,
		      const char *type, const char *help, enum srv_gauge g)
{
	int i;

	family(b, name, type, help);
	for (i = 0; i < n; i++) {
		sbuf_printf(b, "%s{", name);
		srv_labels(b, ps[i].srv);
		sbuf_printf(b, "} %lld\n", srv_gauge_val(&ps[i], g));
	}
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

static void render_proxies(struct sbuf *b)
{
	struct list *l;

	family(b, "keel_frontend_current_connections", "gauge",
	       "Client connections open on the frontend.");
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_FE))
			continue;
		sbuf_printf(b, "keel_frontend_current_connections{");
		fe_labels(b, p);
		sbuf_printf(b, "} %d\n", atomic_load(&p->feconn));
	}
	px_counter(b, PR_CAP_FE, "keel_frontend_connections_total",
		   "Client connections accepted by the frontend.", get_conn_tot);
	px_counter(b, PR_CAP_FE, "keel_frontend_requests_total",
		   "HTTP requests received by the frontend.", get_req_tot);
	px_responses(b, PR_CAP_FE, "keel_frontend_responses_total",
		     "HTTP responses sent by the frontend, by status class.");
	px_counter(b, PR_CAP_FE, "keel_frontend_denied_requests_total",
		   "Requests denied by http-request rules.", get_denied_req);
	px_counter(b, PR_CAP_FE, "keel_frontend_invalid_requests_total",
		   "Requests rejected as invalid.", get_failed_req);
	px_counter(b, PR_CAP_FE, "keel_frontend_bytes_in_total",
		   "Bytes received from clients.", get_bytes_in);
	px_counter(b, PR_CAP_FE, "keel_frontend_bytes_out_total",
		   "Bytes sent to clients.", get_bytes_out);

	px_counter(b, PR_CAP_BE, "keel_backend_requests_total",
		   "HTTP requests handled by the backend.", get_req_tot);
	px_responses(b, PR_CAP_BE, "keel_backend_responses_total",
		     "HTTP responses from the backend, by status class.");
	px_counter(b, PR_CAP_BE, "keel_backend_connection_errors_total",
		   "Failed connections to the backend's servers.", get_failed_conn);
	px_counter(b, PR_CAP_BE, "keel_backend_response_errors_total",
		   "Invalid or aborted responses from the backend's servers.", get_failed_rsp);
	px_counter(b, PR_CAP_BE, "keel_backend_retries_total",
		   "Requests sent again after a failed try.", get_retries);
	px_counter(b, PR_CAP_BE, "keel_backend_redispatches_total",
		   "Requests moved to another server.", get_redispatches);
	px_counter(b, PR_CAP_BE, "keel_backend_timeouts_total",
		   "Server connect or response timeouts.", get_timeouts);
	family(b, "keel_backend_current_sessions", "gauge", "Requests being served by the backend.");
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_BE))
			continue;
		sbuf_printf(b, "keel_backend_current_sessions{");
		be_labels(b, p);
		sbuf_printf(b, "} %d\n", atomic_load(&p->beconn));
	}
	family(b, "keel_backend_queue", "gauge", "Requests waiting in the backend's queue.");
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_BE))
			continue;
		sbuf_printf(b, "keel_backend_queue{");
		be_labels(b, p);
		sbuf_printf(b, "} %d\n", atomic_load(&p->nbpend));
	}
	family(b, "keel_backend_up_servers", "gauge",
	       "Servers of the backend that take new traffic now.");
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_BE))
			continue;
		sbuf_printf(b, "keel_backend_up_servers{");
		be_labels(b, p);
		sbuf_printf(b, "} %d\n", stats_usable_servers(p));
	}
}

static void render_servers(struct sbuf *b, const struct prom_srv *ps, int n)
{
	uint64_t fine[LAT_BUCKETS];
	struct sbuf lab = {0};
	size_t k;
	int i;

	srv_counter(b, ps, n, "keel_server_requests_total", "HTTP requests sent to the server.",
		    get_req_tot);
	family(b, "keel_server_responses_total", "counter",
	       "HTTP responses from the server, by status class.");
	for (i = 0; i < n; i++) {
		int c;

		for (c = 1; c <= 6; c++) {
			sbuf_printf(b, "keel_server_responses_total{");
			srv_labels(b, ps[i].srv);
			sbuf_printf(b, ",code=\"%s\"} %llu\n", code_label[c % 6],
				    (unsigned long long)ps[i].c.rsp[c % 6]);
		}
	}
	srv_gauge(b, ps, n, "keel_server_up", "gauge",
		  "1 when the server takes new traffic (state up), else 0.", SG_UP);
	family(b, "keel_server_state", "gauge",
	       "The server's state: 1 for the current one (up, down, ejected, drain, maint).");
	for (i = 0; i < n; i++) {
		for (k = 0; k < ARRAY_SIZE(state_label); k++) {
			sbuf_printf(b, "keel_server_state{");
			srv_labels(b, ps[i].srv);
			sbuf_printf(b, ",state=\"%s\"} %d\n", state_label[k],
				    !strcmp(ps[i].state, state_label[k]));
		}
	}
	srv_gauge(b, ps, n, "keel_server_weight", "gauge",
		  "Effective weight of the server (after agent, slowstart and latency).", SG_WEIGHT);
	srv_gauge(b, ps, n, "keel_server_current_sessions", "gauge",
		  "Requests being served by the server.", SG_CUR);
	srv_gauge(b, ps, n, "keel_server_max_sessions", "gauge",
		  "Highest number of concurrent requests seen on the server.", SG_MAX);
	srv_gauge(b, ps, n, "keel_server_queue", "gauge",
		  "Requests waiting for this server specifically.", SG_QUEUE);
	srv_counter(b, ps, n, "keel_server_connection_errors_total",
		    "Failed connections to the server.", get_failed_conn);
	srv_counter(b, ps, n, "keel_server_response_errors_total",
		    "Invalid or aborted responses from the server.", get_failed_rsp);
	srv_counter(b, ps, n, "keel_server_retries_total",
		    "Tries on this server that were sent again.", get_retries);
	srv_counter(b, ps, n, "keel_server_timeouts_total",
		    "Connect or response timeouts on the server.", get_timeouts);
	srv_counter(b, ps, n, "keel_server_sticky_moves_total",
		    "Users whose persistence cookie named this server, sent to another one.",
		    get_sticky_moves);
	srv_gauge(b, ps, n, "keel_server_sticky_users", "gauge",
		  "Users still bound to the server (stick table entries; for a draining server, "
		  "those and the cookie users seen, within drain-idle).", SG_STICKY);
	family(b, "keel_server_sticky_users_pending_seconds", "gauge",
	       "Draining server with cookie persistence: for how long cookie users not seen since "
	       "the drain began may still come back and stay (+Inf: kept for ever).");
	for (i = 0; i < n; i++) {
		int64_t p = ps[i].sticky.pending_ms;

		sbuf_printf(b, "keel_server_sticky_users_pending_seconds{");
		srv_labels(b, ps[i].srv);
		if (p < 0)
			sbuf_printf(b, "} +Inf\n");
		else
			sbuf_printf(b, "} %.3f\n", p / 1000.0);
	}
	srv_gauge(b, ps, n, "keel_server_ejections_total", "counter",
		  "Times passive detection ejected the server.", SG_EJECT);
	srv_gauge(b, ps, n, "keel_server_consecutive_errors", "gauge",
		  "Current streak of live-traffic errors on the server.", SG_CONSEC);
	srv_counter(b, ps, n, "keel_server_bytes_in_total",
		    "Request bytes sent to the server (received from clients).", get_bytes_in);
	srv_counter(b, ps, n, "keel_server_bytes_out_total",
		    "Response bytes received from the server (sent to clients).", get_bytes_out);
	family(b, "keel_server_check_up", "gauge",
	       "1 when the server's last health check passed, else 0 (servers with a check result).");
	for (i = 0; i < n; i++) {
		if (!ps[i].v.has_chk)
			continue;
		sbuf_printf(b, "keel_server_check_up{");
		srv_labels(b, ps[i].srv);
		sbuf_printf(b, "} %d\n", ps[i].v.last_chk.ok);
	}
	family(b, "keel_server_check_duration_seconds", "gauge",
	       "Duration of the server's last health check.");
	for (i = 0; i < n; i++) {
		if (!ps[i].v.has_chk)
			continue;
		sbuf_printf(b, "keel_server_check_duration_seconds{");
		srv_labels(b, ps[i].srv);
		sbuf_printf(b, "} %.3f\n", ps[i].v.last_chk.dur_ms / 1000.0);
	}
	family(b, "keel_server_ttfb_seconds", "histogram",
	       "Time to the first byte of the server's response heads since start.");
	for (i = 0; i < n; i++) {
		lab.len = 0;
		srv_labels(&lab, ps[i].srv);
		if (lab.oom)
			break;
		health_lat_counts(ps[i].srv, fine);
		prom_histogram(b, "keel_server_ttfb_seconds", lab.len ? lab.p : "", fine);
	}
	if (lab.oom)
		b->oom = true;
	free(lab.p);
}

void prom_render(struct sbuf *b, const struct proxy *fe)
{
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
	render_proxies(b);
	render_servers(b, ps, n);
	free(ps);
}

void prom_serve(struct stream *s)
{
	struct sbuf body = {0};

	prom_render(&body, s->fe);
	stats_reply(s, &body, "text/plain; version=0.0.4; charset=utf-8");
}
