/* Health (src/check/health.c): the one place where a server's operational state, its admin
 * state, its weight and its checks switch change; passive detection from live traffic, latency
 * awareness, slowstart, the per-try timeout and its retry budget, and the operators' view.
 * health-kw.c parses its keywords. docs/internals/health.md. */
#ifndef KEEL_HEALTH_H
#define KEEL_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/check-t.h>
#include <keel/drain-t.h>
#include <keel/proxy-t.h>

/* The keywords of passive health, per-try timeouts and the retry budget, and their part in the
 * proxy sections (health-kw.c; registered at start, src/process/modules.c). */
extern const struct cfg_module health_module;
extern const struct proxy_hooks health_hooks;

/* Period of the health tick (latency windows, slowstart, ejection expiry, budget windows). */
#define HEALTH_TICK_MS 500

/* Allocates every server's and backend's health state (after the config is loaded, before the
 * workers start). Servers with checks start down until their first check passes, except the
 * first check round which decides straight away (rise is not waited for at start-up). */
int health_init(int nthreads, char **err);
/* One server's health state (health_init() does every configured server; "add server" calls it
 * before publishing the server). OK or ERR (out of memory). */
int health_srv_init(struct server *srv);
void health_deinit(void);

/* The check runner reports here (any worker thread). */
void health_check_result(struct server *srv, const struct chk_result *r);
void health_agent_result(struct server *srv, const struct agent_result *r);
/* What the runner should do next, and after how many ms. */
enum chk_plan health_check_plan(struct server *srv, uint32_t *delay_ms);

/* Live traffic (any worker thread). elapsed_us: how long the failed attempt took (0: unknown);
 * why: detail for the logs, or NULL. */
void health_event(struct server *srv, enum health_event ev, uint64_t elapsed_us, const char *why);
/* A response head arrived after ttfb_us: records latency and clears the error streak. */
void health_response(struct server *srv, uint64_t ttfb_us, int status);
/* Whether a per-try retry fits in the budget; takes it when it does. */
bool health_retry_allowed(struct proxy *be);
/* The per-try timeout for a request to be, in ms; 0 when per-try timeouts are off. */
uint32_t health_pertry_ms(const struct proxy *be);

/* Whether be fails open now: every server is down and "all-servers-down fail-open" (default)
 * lets every server not in maintenance take traffic. */
bool health_fail_open(const struct proxy *be);
/* Whether srv was taken out by its health (ejected, or down and the backend does not fail open):
 * requests waiting on it leave (or fail) rather than wait for timeout server. Admin states
 * (drain, maintenance) do not count: their requests in progress finish. */
bool health_srv_out(const struct server *srv);
/* When srv last answered anything, monotonic us (ms precision): a response head on live traffic
 * or an HTTP check's status. A frozen server's port still accepts, but it answers nothing. */
uint64_t health_alive_us(const struct server *srv);

/* Subscribes fn to the health tick: called on worker 0 at the end of every tick (the stats
 * page's history subscribes). At start, before the workers. */
void health_on_tick(void (*fn)(void));
/* The periodic tick: health_thread_start() arms it on worker 0 (a no-op on the others). */
void health_tick(void);
void health_thread_start(void);
void health_thread_stop(void);

/* Runtime control (agent, admin socket, stats page): the one place where a server's admin state,
 * its weight and its checks change at runtime. who names the origin of the change for the log
 * line. health_set_weight() returns ERR when w is out of 0..256. */
void health_set_admin(struct server *srv, enum srv_admin st, const char *who);
/* Puts srv in drain with its own limits (an unset one keeps the configured value); a server in
 * drain already keeps its start and gets the new limits. The drain's start, which drain-idle and
 * drain-deadline count from, is recorded by both (and cleared when the state leaves drain). */
void health_set_drain(struct server *srv, const struct drain_limits *lim, const char *who);
int health_set_weight(struct server *srv, int w, const char *who);
void health_set_checks(struct server *srv, bool on, const char *who);
const char *srv_admin_name(enum srv_admin st);

/* A consistent copy of srv's health (state name, reasons, latency) for operators. */
void health_view(struct server *srv, struct health_view *v);
const char *chk_code_str(enum chk_code c);

/* Latency buckets, exposed for unit tests. Bucket b counts response times below
 * lat_bucket_us(b) and at or above lat_bucket_us(b - 1) (0 for b = 0); the last bucket also
 * takes everything longer. */
int lat_bucket(uint64_t us);
uint64_t lat_bucket_us(int b);
/* srv's response-time histogram since start (TTFB of the response heads that health_response()
 * sampled), summed over the worker threads: out[b] = count of bucket b. Lock-free, any thread. */
void health_lat_counts(const struct server *srv, uint64_t out[LAT_BUCKETS]);

#endif
