/* Cookie persistence (src/sticky/cookie.c): the "cookie" keyword, the Cookie / Set-Cookie text
 * helpers used by the head rewrite (src/proxy/http-ana.c), and the "sticky user moved" report.
 * The text helpers are pure functions over (pointer, length) views: no allocation, no state. */
#ifndef KEEL_COOKIE_H
#define KEEL_COOKIE_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/cfg-t.h>
#include <keel/cookie-t.h>
#include <keel/proxy-t.h>

/* The "cookie" keyword (registered at start, src/process/modules.c). */
extern const struct cfg_module cookie_module;
/* "cookie NAME [insert|rewrite|prefix] [options]" in defaults, backend or listen. */
int cookie_kw(struct cfg_ctx *c, int argc, char **argv);

/* Finds the first cookie named name in a Cookie header value v[0..len): true with its value in
 * *val (offset and length within v, surrounding blanks trimmed). */
bool cookie_find(const char *v, uint32_t len, const char *name, uint32_t nlen, uint32_t *val_off,
		 uint32_t *val_len);

/* Rewrites a Cookie header value for the server: cookies named name are removed (strip false)
 * or lose their "SRV~" prefix (strip true, prefix mode); the others are kept, joined by "; ".
 * out must hold len + len / 2 + 2 bytes ("a=1;b=2" gains a blank per pair). Returns the new length (0: nothing left). */
uint32_t cookie_req_rewrite(const char *v, uint32_t len, const char *name, uint32_t nlen, bool strip,
			    char *out);

/* Splits a persistence cookie value into the server part and, in insert mode, its dates
 * (VALUE|last|first, hex seconds since the epoch; 0 when absent or invalid). */
void cookie_split(const struct cookie_conf *ck, const char *v, uint32_t len, uint32_t *srvlen,
		  uint32_t *last, uint32_t *first);

/* Whether the cookie's dates still allow persistence at now_s (maxidle, maxlife; a cookie without
 * a date is accepted, as in HAProxy, and refreshed by the response). */
bool cookie_dates_ok(const struct cookie_conf *ck, uint32_t last, uint32_t first, uint32_t now_s);

/* The server of be whose "cookie" value is v[0..len), or NULL. */
struct server *cookie_server(const struct proxy *be, const char *v, uint32_t len);

/* Where a request pinned to srv goes (see enum ck_verdict): the one decision for the persistence
 * cookie and the stick tables. seen_us: the user's last request to srv (monotonic us; a stick
 * entry's last use, or when a cookie user was last seen during the drain), 0 when not known (a
 * cookie user not seen since the drain began). Only a draining server looks at it, with now_us. */
enum ck_verdict cookie_verdict(const struct server *srv, bool persist, uint64_t seen_us);
/* The part of a Cookie header value v[0..len) that tells users apart while a server drains: a
 * hash of its cookies other than name (the persistence cookie, whose dates change), whatever
 * their order. Sums of several headers combine. */
uint64_t cookie_user_hash(const char *v, uint32_t len, const char *name, uint32_t nlen);

/* Whether a Set-Cookie header value v[0..len) sets the cookie name: true with the value span
 * (up to the first ';', trimmed). */
bool cookie_setcookie_match(const char *v, uint32_t len, const char *name, uint32_t nlen,
			    uint32_t *val_off, uint32_t *val_len);

/* Formats the Set-Cookie value keel inserts: "NAME=VALUE[|last[|first]]; path=/[; domain=D]
 * [; HttpOnly][; Secure][; attr]", or with value NULL the one that deletes the client's cookie
 * ("NAME=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/..."). Returns the length, 0 when it
 * does not fit in cap. */
uint32_t cookie_format(const struct cookie_conf *ck, const char *value, uint32_t now_s,
		       uint32_t first, char *out, uint32_t cap);

/* Reports a sticky user moved from one server to another: counts it on from (per thread tid) and
 * logs one line, at most one per second per backend (the others are counted in the next line).
 * drained: the verdict was CKV_GONE (the reason logged is the drain's). */
void cookie_report_moved(struct server *from, const struct server *to, bool drained, int tid);

#endif
