/* What the machine-readable stats pages (stats-json.c, prom.c) share. */
#include <stdlib.h>
#include <string.h>

#include <keel/backend.h>
#include <keel/common.h>
#include <keel/session.h>
#include <keel/stats.h>
#include <keel/stream.h>
#include <keel/worker.h>


static uint64_t rd(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

void stats_sum(const struct counters *c, struct stats_sums *s)
{
	int t, k;

	memset(s, 0, sizeof(*s));
	if (!c)
		return;
	for (t = 0; t < keel_nworkers; t++) {
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
		s->sticky_moves += rd(&c[t].sticky_moves);
		s->reclaim_idle += rd(&c[t].reclaim_idle);
		s->reclaim_heads += rd(&c[t].reclaim_heads);
	}
}

int stats_usable_servers(const struct proxy *p)
{
	int i, up = 0;

	for (i = 0; i < p->nsrv; i++)
		up += srv_usable(p->srv[i]);
	return up;
}

const char *stats_state_word(const char *state)
{
	/* health_view() names: "MAINT", "EJECTED", "DOWN[ n/m]", "DRAIN", "UP[ n/m| (slow)]". */
	static const char *const words[][2] = {
		{"MAINT", "maint"}, {"EJECTED", "ejected"}, {"DOWN", "down"}, {"DRAIN", "drain"},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(words); i++)
		if (!strncmp(state, words[i][0], strlen(words[i][0])))
			return words[i][1];
	return "up";
}

void stats_reply(struct stream *s, struct sbuf *body, const char *ctype)
{
	struct sbuf out = {0};
	bool oom = body->oom;

	if (!oom) {
		sbuf_printf(&out, "HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
				  "cache-control: no-cache\r\n\r\n",
			    ctype, body->len);
		if ((s->txn->flags & TX_HEAD_REQ) == 0)
			sbuf_put(&out, body->p ? body->p : "", body->len);
	}
	free(body->p);
	*body = (struct sbuf){0};
	if (oom || out.oom || !out.p) {
		free(out.p);
		stream_error(s, 500, "out of memory rendering a statistics page", "PR");
		return;
	}
	stream_reply_heap(s, out.p, (uint32_t)out.len, 200, false);
}
