/* The stats page's admin actions (admin/stats-admin.c): "stats admin if COND" gives each server row
 * Ready / Drain / Maint buttons that POST to the stats URI.
 *
 * CSRF protection: the form carries a token = SipHash-2-4 keyed by a per-process random secret
 * (getrandom()) over (frontend name, Basic-auth user), 128 bits, compared in constant time. A page
 * from another origin cannot read the token (no CORS), so it cannot forge the POST. On top of it,
 * an Origin (or, without it, a Referer) header must name the request's Host. */
#ifndef KEEL_STATS_ADMIN_H
#define KEEL_STATS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/http-t.h>

struct stream;
struct proxy;

#define STATS_TOKEN_LEN 32       /* hex characters */
#define STATS_ADMIN_BODY_MAX 1024 /* the largest form body accepted */

/* The CSRF token of user (NULL or "": no auth) on frontend fe, as STATS_TOKEN_LEN hex characters
 * and a NUL into out. */
void stats_admin_token(const struct proxy *fe, const char *user, char out[STATS_TOKEN_LEN + 1]);

/* Handles a POST to the stats URI of s->fe: checks admin (the "stats admin" condition, evaluated
 * by the caller), the Origin/Referer, the token and the form, applies the change through
 * health_set_admin() and answers 303 to the stats page. Answers 403 (no admin, bad token or
 * origin), 400 (bad form, unknown server), 413 (body too large). user: the authenticated user or
 * "". */
void stats_admin_post(struct stream *s, const struct http_head *h, bool admin, const char *user);

/* Parses "a=1&b=x%20y" and copies the decoded value of name into out (cap bytes with the NUL).
 * Returns true when found and it fits. Exposed for unit tests. */
bool stats_form_get(const char *body, size_t len, const char *name, char *out, size_t cap);
/* Whether an Origin or Referer value (scheme://authority[/...]) names host. Exposed for tests. */
bool stats_origin_matches(const char *v, size_t vlen, const char *host, size_t hlen);

#endif
