/* Machine-readable statistics: the stats page's JSON variant (admin/stats-json.c) and the
 * Prometheus exposition (admin/prom.c), with the counter sums they share (admin/stats-common.c).
 * The HTML and CSV pages are in admin/stats.c (entry points in session.h). */
#ifndef KEEL_STATS_H
#define KEEL_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/check-t.h>
#include <keel/proxy-t.h>
#include <keel/sbuf.h>

struct session;

/* The per-thread counters of a proxy or server, summed (relaxed reads: each cell is a
 * snapshot, the sum is not atomic as a whole, which is fine for monotonic counters). */
struct stats_sums {
	uint64_t conn_tot, req_tot, rsp[6], bytes_in, bytes_out, denied_req, failed_req;
	uint64_t failed_conn, failed_rsp, retries, redispatches, timeouts, queued_tot;
	uint64_t queue_timeouts, cli_aborts, srv_aborts, sticky_moves;
};

/* Sums c[0..keel_nloops-1] into s (zeroes s when c is NULL). */
void stats_sum(const struct counters *c, struct stats_sums *s);
/* How many of p's servers take traffic now (srv_usable()). */
int stats_usable_servers(const struct proxy *p);
/* The first word of a health_view state, lower case: "up", "down", "ejected", "drain" or
 * "maint". */
const char *stats_state_word(const char *state);

/* Answers s with a 200 carrying body (no body for HEAD), or a 500 when rendering ran out of
 * memory; takes body's storage. */
void stats_reply(struct session *s, struct sbuf *body, const char *ctype);

/* The ";json" stats page: one JSON document (see docs/metrics.md). fe: the frontend serving it
 * (for "stats hide-version"). */
void stats_json_render(struct sbuf *b, const struct proxy *fe);

/* Answers s with the Prometheus metrics page (text format 0.0.4); for "stats prometheus-uri"
 * and "http-request use-service prometheus-exporter". */
void prom_serve(struct session *s);
/* The whole metrics page; fe (may be NULL): the frontend serving it, whose "stats
 * hide-version" empties the version label. */
void prom_render(struct sbuf *b, const struct proxy *fe);
/* One histogram (the _bucket lines, _sum and _count) of name{labels,le=...} from fine: the
 * cumulative counts of the LAT_BUCKETS latency buckets (check.h), folded into coarse buckets in
 * seconds. labels is already escaped ("backend=\"b\",server=\"s\""). Exposed for unit tests. */
void prom_histogram(struct sbuf *b, const char *name, const char *labels,
		    const uint64_t fine[LAT_BUCKETS]);
/* Appends s escaped as a Prometheus label value (without the quotes): '\', '"' and newline are
 * escaped, bytes >= 0x80 become '?' (label values must be valid UTF-8). */
void prom_label(struct sbuf *b, const char *s);

#endif
