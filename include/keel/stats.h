/* Statistics pages: the HTML and CSV pages (admin/stats.c), the JSON variant
 * (admin/stats-json.c) and the counter sums they share with the Prometheus exposition
 * (admin/stats-common.c; the metrics page itself: prom.h). */
#ifndef KEEL_STATS_H
#define KEEL_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/check-t.h>
#include <keel/http-t.h>
#include <keel/proxy-t.h>
#include <keel/sbuf.h>
#include <keel/stats-t.h>

struct stream;

/* Sums c[0..keel_nworkers-1] into s (zeroes s when c is NULL). */
void stats_sum(const struct counters *c, struct stats_sums *s);
/* How many of p's servers take traffic now (srv_usable()). */
int stats_usable_servers(const struct proxy *p);
/* The first word of a health_view state, lower case: "up", "down", "ejected", "drain" or
 * "maint". */
const char *stats_state_word(const char *state);

/* Answers s with a 200 carrying body (no body for HEAD), or a 500 when rendering ran out of
 * memory; takes body's storage. */
void stats_reply(struct stream *s, struct sbuf *body, const char *ctype);

/* The ";json" stats page: one JSON document (see docs/metrics.md). fe: the frontend serving it
 * (for "stats hide-version"). */
void stats_json_render(struct sbuf *b, const struct proxy *fe);

/* The HTML stats page (admin/stats.c): answers a request to the stats URI. */
void stats_serve(struct stream *s, const struct http_head *h);
/* The ";json" variant of the stats page (admin/stats-json.c). */
void stats_json_serve(struct stream *s);
/* The stats CSV (the ";csv" page) as a malloc'd string of *len bytes, NULL when out of memory
 * (the admin socket's "show stat"). */
char *stats_csv(size_t *len);
/* Constant-time check of a Basic Authorization header against the proxy's stats users. */
bool stats_check_auth(const struct proxy *p, const struct http_head *h);

#endif
