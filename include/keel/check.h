/* Active checks and the agent: check.c runs them; check-http.c, check-tcp.c and check-agent.c
 * judge their answers, with what they share in check-eval.c; check-kw.c parses their keywords.
 * Their results go to health.c (health.h), which owns every decision. */
#ifndef KEEL_CHECK_H
#define KEEL_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/cfg-t.h>
#include <keel/check-t.h>
#include <keel/proxy-t.h>

/* ---- configuration (check-kw.c) ---- */

/* Active checks' keywords, and their part in the proxy sections: server options, defaults,
 * backend checks (registered at start, src/process/modules.c). */
extern const struct cfg_module check_module;
extern const struct proxy_hooks check_hooks;
/* "option httpchk ...", "option tcp-check": argv[i] is the first word after the option name
 * (the proxy module's "option" keyword calls them). */
int kw_opt_httpchk(struct cfg_ctx *c, int argc, char **argv, int i);
int kw_opt_tcpchk(struct cfg_ctx *c, int argc, char **argv, int i);

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
