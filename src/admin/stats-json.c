/* The stats page as one JSON document (";json" after the stats URI): the process, then every
 * frontend and backend with its servers. Field names and units are in docs/metrics.md. Strings
 * go through sbuf_json_str(), so the document is valid JSON whatever the names and reasons hold. */
#include <time.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/stats.h>
#include <keel/stream-t.h>
#include <keel/worker.h>


static void json_counters(struct sbuf *b, const struct stats_sums *c)
{
	sbuf_printf(b,
		    "\"counters\":{\"connections\":%llu,\"requests\":%llu,\"responses\":{"
		    "\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,\"5xx\":%llu,\"other\":%llu},"
		    "\"denied_requests\":%llu,\"invalid_requests\":%llu,\"connection_errors\":%llu,"
		    "\"response_errors\":%llu,\"retries\":%llu,\"redispatches\":%llu,"
		    "\"timeouts\":%llu,\"queued\":%llu,\"queue_timeouts\":%llu,"
		    "\"client_aborts\":%llu,\"server_aborts\":%llu,\"bytes_in\":%llu,"
		    "\"bytes_out\":%llu}",
		    (unsigned long long)c->conn_tot, (unsigned long long)c->req_tot,
		    (unsigned long long)c->rsp[1], (unsigned long long)c->rsp[2],
		    (unsigned long long)c->rsp[3], (unsigned long long)c->rsp[4],
		    (unsigned long long)c->rsp[5], (unsigned long long)c->rsp[0],
		    (unsigned long long)c->denied_req, (unsigned long long)c->failed_req,
		    (unsigned long long)c->failed_conn, (unsigned long long)c->failed_rsp,
		    (unsigned long long)c->retries, (unsigned long long)c->redispatches,
		    (unsigned long long)c->timeouts, (unsigned long long)c->queued_tot,
		    (unsigned long long)c->queue_timeouts, (unsigned long long)c->cli_aborts,
		    (unsigned long long)c->srv_aborts, (unsigned long long)c->bytes_in,
		    (unsigned long long)c->bytes_out);
}

static void json_server(struct sbuf *b, struct server *s)
{
	struct health_view v;
	struct stats_sums c;
	struct sticky_count sc;

	health_view(s, &v);
	stats_sum(s->ctr, &c);
	drain_sticky_count(s, drain_clock_us(), &sc);
	sbuf_printf(b, "{\"name\":");
	sbuf_json_str(b, s->name);
	sbuf_printf(b, ",\"backup\":%s,\"state\":", s->backup ? "true" : "false");
	sbuf_json_str(b, v.state);
	sbuf_printf(b, ",\"state_word\":\"%s\",\"admin\":\"%s\",\"reason\":",
		    stats_state_word(v.state), srv_admin_name(atomic_load(&s->admin)));
	sbuf_json_str(b, v.why);
	sbuf_printf(b, ",\"event_reason\":");
	sbuf_json_str(b, v.ev_reason);
	sbuf_printf(b,
		    ",\"weight\":%d,\"configured_weight\":%d,\"cur_sessions\":%d,"
		    "\"max_sessions\":%d,\"session_limit\":%d,\"queue\":%d,",
		    atomic_load(&s->eweight), s->weight, atomic_load(&s->cur_sess),
		    atomic_load(&s->max_sess), s->maxconn, atomic_load(&s->nbpend));
	json_counters(b, &c);
	sbuf_printf(b, ",\"check\":");
	if (v.has_chk) {
		sbuf_printf(b, "{\"ok\":%s,\"code\":\"%s\",\"status\":%d,\"duration_ms\":%u,\"reason\":",
			    v.last_chk.ok ? "true" : "false", chk_code_str(v.last_chk.code),
			    v.last_chk.status, v.last_chk.dur_ms);
		sbuf_json_str(b, v.last_chk.reason);
		sbuf_printf(b, "}");
	} else {
		sbuf_printf(b, "null");
	}
	sbuf_printf(b,
		    ",\"checks_enabled\":%s,\"ttfb_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f},"
		    "\"consecutive_errors\":%d,\"ejections\":%llu,\"sticky_users\":%d,"
		    "\"sticky_users_pending_ms\":%lld}",
		    s->chk.enabled ? "true" : "false", v.p50_us / 1000.0, v.p90_us / 1000.0,
		    v.p99_us / 1000.0, v.consec_err, (unsigned long long)v.ejections_tot, sc.users,
		    (long long)sc.pending_ms);
}

void stats_json_render(struct sbuf *b, const struct proxy *fe)
{
	struct list *l;
	struct stats_sums c;
	bool first, sfirst;
	int i;

	sbuf_printf(b, "{\"process\":{\"name\":\"keel\",\"version\":");
	sbuf_json_str(b, fe && fe->stats.hide_version ? "" : KEEL_VERSION);
	sbuf_printf(b,
		    ",\"pid\":%d,\"threads\":%d,\"start_time\":%llu,\"uptime_s\":%llu,"
		    "\"active_connections\":%d,\"maxconn\":%d},\"frontends\":[",
		    (int)getpid(), keel_nworkers, (unsigned long long)keel_start_wall,
		    (unsigned long long)(time(NULL) - (time_t)keel_start_wall),
		    atomic_load(&keel_actconn), global.maxconn);
	first = true;
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_FE))
			continue;
		stats_sum(p->ctr, &c);
		sbuf_printf(b, "%s{\"name\":", first ? "" : ",");
		sbuf_json_str(b, p->name);
		sbuf_printf(b, ",\"state\":\"%s\",\"cur_sessions\":%d,\"session_limit\":%d,",
			    p->disabled ? "STOP" : "OPEN", atomic_load(&p->feconn),
			    p->maxconn ? p->maxconn : global.maxconn);
		json_counters(b, &c);
		sbuf_printf(b, ",\"maxconn_idle_closed\":%llu,\"maxconn_heads_closed\":%llu}",
			    (unsigned long long)c.reclaim_idle,
			    (unsigned long long)c.reclaim_heads);
		first = false;
	}
	sbuf_printf(b, "],\"backends\":[");
	first = true;
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);
		int up;

		if (!(p->cap & PR_CAP_BE))
			continue;
		up = stats_usable_servers(p);
		stats_sum(p->ctr, &c);
		sbuf_printf(b, "%s{\"name\":", first ? "" : ",");
		sbuf_json_str(b, p->name);
		sbuf_printf(b,
			    ",\"state\":\"%s\",\"usable_servers\":%d,\"servers_total\":%d,"
			    "\"cur_sessions\":%d,\"queue\":%d,\"ttfb_p99_ms\":%.3f,"
			    "\"per_try_timeout_ms\":%u,",
			    up ? "UP" : "DOWN", up, p->nsrv, atomic_load(&p->beconn),
			    atomic_load(&p->nbpend),
			    p->hl ? atomic_load(&p->hl->p99_us) / 1000.0 : 0.0,
			    p->hl ? health_pertry_ms(p) : 0);
		json_counters(b, &c);
		sbuf_printf(b, ",\"servers\":[");
		for (i = 0, sfirst = true; i < p->nsrv; i++) {
			if (server_deleted(p->srv[i])) /* "del server" */
				continue;
			if (!sfirst)
				sbuf_printf(b, ",");
			sfirst = false;
			json_server(b, p->srv[i]);
		}
		sbuf_printf(b, "]}");
		first = false;
	}
	sbuf_printf(b, "]}\n");
}

void stats_json_serve(struct stream *s)
{
	struct sbuf body = {0};

	stats_json_render(&body, s->fe);
	stats_reply(s, &body, "application/json");
}
