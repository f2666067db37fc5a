/* Health: active checks and agent (check.c runs them; check-http.c, check-tcp.c and
 * check-agent.c judge their answers, with what they share in check-eval.c), passive detection,
 * latency awareness, slowstart and the per-try timeout with its retry budget (health.c). */
#ifndef KEEL_CHECK_H
#define KEEL_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/cfg.h>
#include <keel/check-t.h>
#include <keel/proxy-t.h>

/* ---- configuration (check-kw.c, health-kw.c) ---- */

/* Registers the keywords, server options, defaults and backend checks of active checks
 * (check_register()) and of passive health, per-try timeouts and the retry budget
 * (health_register()). */
void check_register(void);
void health_register(void);
/* "option httpchk ...", "option tcp-check": argv[i] is the first word after the option name
 * (the proxy module's "option" keyword calls them). */
int kw_opt_httpchk(struct cfg_ctx *c, int argc, char **argv, int i);
int kw_opt_tcpchk(struct cfg_ctx *c, int argc, char **argv, int i);

/* Period of the health tick (latency windows, slowstart, ejection expiry, budget windows). */
#define HEALTH_TICK_MS 500

/* ---- health.c: the one place where a server's operational state changes ---- */

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

/* ---- check.c: the active check and agent runner ---- */

/* Starts the checks of the servers this worker thread owns (a server belongs to thread
 * (server index over all backends) % nthreads). */
int check_thread_start(char **err);
/* Stops them and closes their connections (soft stop, exit). */
void check_thread_stop(void);

/* ---- check-http.c, check-tcp.c, check-agent.c: what is sent, and the answers ---- */

/* The answer evaluators are pure functions of the bytes received (unit tests,
 * fuzz/fuzz-check.c). fin says whether more bytes may come: CHK_FIN_NO (they may), CHK_FIN_EOF
 * (the peer closed), CHK_FIN_FULL (the buffer is full: the body is truncated). */
#define CHK_FIN_NO 0
#define CHK_FIN_EOF 1
#define CHK_FIN_FULL 2
/* An HTTP check (probe: a live-traffic probe, which passes on any valid status below 500) of a
 * backend's servers. Returns AGAIN when more bytes are needed (only when fin is CHK_FIN_NO),
 * else OK with r filled (r->dur_ms left alone). May rewrite buf (chunked bodies are decoded in
 * place). */
int chk_http_eval(const struct proxy *be, bool probe, char *buf, size_t len, int fin,
		  struct chk_result *r);
/* s's check request, or its probe: malloc'd (the caller frees), length in *len; NULL: no memory. */
char *chk_http_req(const struct server *s, uint32_t *len);
char *chk_probe_req(const struct server *s, uint32_t *len);
/* One tcp-check expect step (number idx, for the reason): OK (passed), ERR (r filled) or AGAIN. */
int chk_tcp_expect(const struct tcpchk_step *st, int idx, const char *buf, size_t len, int fin,
		   struct chk_result *r);
/* r (failed, L7TOUT) for the deadline (ms) hit while expect step st (number idx) waited on buf. */
void chk_tcp_timeout(const struct tcpchk_step *st, int idx, const char *buf, size_t len,
		     uint32_t ms, struct chk_result *r);
/* Parses an agent's answer (up to the first LF) into ar. */
void chk_agent_parse(const char *s, size_t len, struct agent_result *ar);

/* ---- check-eval.c: what the evaluators share ---- */

#define CHK_SHOW_MAX 24 /* bytes of a pattern or an answer quoted in a reason */

/* Copies at most CHK_SHOW_MAX bytes of s, control and non-ASCII bytes as '.', for a reason. */
const char *chk_show(char *dst, size_t cap, const char *s, size_t len);
/* Sets r's verdict, code and reason (cut at its size); r->status and r->dur_ms are left alone. */
void chk_set_res(struct chk_result *r, bool ok, enum chk_code code, const char *f, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether the compiled expect regex re (a pcre2_code) matches in s; false when out of memory. */
bool chk_re_match(void *re, const char *s, size_t len);

/* An ASCII digit, whatever the locale. */
static inline bool chk_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

#endif
