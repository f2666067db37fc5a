/* The stats page's admin actions: a POST of "action=ready|drain|maint&b=BACKEND&s=SERVER&token=T"
 * to the stats URI, allowed by "stats admin if COND", protected against CSRF (see
 * include/keel/stats-admin.h), applied through health_set_admin(), answered by a 303 back to the
 * page (post/redirect/get: reloading the page does not repeat the action).
 *
 * The body is read from the request buffer as it is when the head has been parsed: a form of at
 * most STATS_ADMIN_BODY_MAX bytes sent together with its head (browsers and curl send a small form
 * in one write) is accepted; a body that has not arrived yet gets a 400 rather than a new state in
 * the session machine. After the answer the client connection is closed (the session never
 * consumed the body), which browsers handle transparently. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/http.h>
#include <keel/log.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/stats-admin.h>
#include <keel/stream.h>

/* ---- the token ---- */

static uint8_t secret[32]; /* two SipHash keys */
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void secret_init(void)
{
	size_t got = 0;

	while (got < sizeof(secret)) {
		ssize_t n = getrandom(secret + got, sizeof(secret) - got, 0);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			/* No entropy source at all (very old kernel): still unpredictable enough to
			 * an attacker who cannot read the process, and logged. */
			struct timespec ts;
			size_t i;

			keel_log(LOG_LVL_WARNING,
				 "stats page: getrandom() failed, CSRF secret from the clock");
			clock_gettime(CLOCK_MONOTONIC, &ts);
			for (i = 0; i < sizeof(secret); i++)
				secret[i] ^= (uint8_t)((uint64_t)ts.tv_nsec >> (i % 8 * 8)) ^
					     (uint8_t)getpid();
			return;
		}
		got += (size_t)n;
	}
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                          \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                             \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                             \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                          \
	} while (0)

/* SipHash-2-4 (Aumasson and Bernstein): a keyed PRF, 64-bit output. */
static uint64_t siphash24(const uint8_t key[16], const uint8_t *in, size_t len)
{
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, j;

	for (i = 0; i + 8 <= len; i += 8) {
		m = le64(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void stats_admin_token(const struct proxy *fe, const char *user, char out[STATS_TOKEN_LEN + 1])
{
	char msg[1024];
	int n;

	pthread_once(&secret_once, secret_init);
	/* Two 64-bit PRFs with independent keys: 128 bits. The NUL separates the fields. */
	n = snprintf(msg, sizeof(msg), "keel-stats-csrf%c%s%c%s", 0, fe->name, 0, user ? user : "");
	if (n < 0)
		n = 0;
	n = MIN(n, (int)sizeof(msg) - 1);
	snprintf(out, STATS_TOKEN_LEN + 1, "%016llx%016llx",
		 (unsigned long long)siphash24(secret, (const uint8_t *)msg, (size_t)n),
		 (unsigned long long)siphash24(secret + 16, (const uint8_t *)msg, (size_t)n));
}

/* Time depends on the lengths only. */
static bool ct_eq(const char *a, size_t al, const char *b, size_t bl)
{
	unsigned char d = (unsigned char)(al != bl);
	size_t i, n = MAX(al, bl);

	for (i = 0; i < n; i++)
		d |= (unsigned char)((i < al ? (unsigned char)a[i] : 0) ^
				     (i < bl ? (unsigned char)b[i] : 0));
	return d == 0;
}

/* ---- the form ---- */

bool stats_form_get(const char *body, size_t len, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		const char *amp = memchr(body + i, '&', len - i);
		size_t end, eq;

		end = amp ? (size_t)(amp - body) : len;
		eq = i;
		while (eq < end && body[eq] != '=')
			eq++;
		if (eq - i == nl && !memcmp(body + i, name, nl)) {
			size_t o = 0, k;

			for (k = eq + 1; k < end; k++) {
				int c = (unsigned char)body[k];

				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					int hi, lo;

					if (k + 2 >= end)
						return false;
					hi = hexval((unsigned char)body[k + 1]);
					lo = hexval((unsigned char)body[k + 2]);
					if (hi < 0 || lo < 0)
						return false;
					c = hi * 16 + lo;
					k += 2;
				}
				if (c == 0 || o + 1 >= cap)
					return false;
				out[o++] = (char)c;
			}
			out[o] = 0;
			return true;
		}
		i = end + 1;
	}
	return false;
}

bool stats_origin_matches(const char *v, size_t vlen, const char *host, size_t hlen)
{
	const char *a, *end;
	size_t skip;

	if (vlen >= 7 && !strncasecmp(v, "http://", 7))
		skip = 7;
	else if (vlen >= 8 && !strncasecmp(v, "https://", 8))
		skip = 8;
	else
		return false; /* "null" (a sandboxed or file: page) and anything else */
	a = v + skip;
	end = a;
	while (end < v + vlen && *end != '/' && *end != '?' && *end != '#')
		end++;
	return hlen && (size_t)(end - a) == hlen && !strncasecmp(a, host, hlen);
}

static struct server *find_server(const char *bname, const char *sname)
{
	struct list *l;
	int i;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_BE) || strcmp(p->name, bname))
			continue;
		for (i = 0; i < p->nsrv; i++)
			if (!server_deleted(p->srv[i]) && !strcmp(p->srv[i]->name, sname))
				return p->srv[i];
	}
	return NULL;
}

/* The Origin, or without it the Referer, must name the Host the request was sent to. Requests
 * with neither (curl, scripts) rely on the token alone. */
static bool origin_ok(const struct http_head *h)
{
	int o = http_hdr_find(h, "origin", 6, 0), r = http_hdr_find(h, "referer", 7, 0);
	int k = o >= 0 ? o : r, hk;
	const char *host = NULL;
	size_t hlen = 0;

	if (k < 0)
		return true;
	hk = http_hdr_find(h, "host", 4, 0);
	if (hk >= 0) {
		host = http_ptr(h, h->hdr[hk].value);
		hlen = h->hdr[hk].value.len;
	} else if (h->flags & HM_ABS_URI) {
		host = http_ptr(h, h->authority);
		hlen = h->authority.len;
	}
	return host && stats_origin_matches(http_ptr(h, h->hdr[k].value), h->hdr[k].value.len, host,
					    hlen);
}

void stats_admin_post(struct stream *s, const struct http_head *h, bool admin, const char *user)
{
	const struct buf *rb = &s->req.b;
	const char *body = h->base + h->len;
	size_t avail, cl;
	char action[16], bname[256], sname[256], tok[STATS_TOKEN_LEN + 8];
	char want[STATS_TOKEN_LEN + 1], who[128], *r;
	enum srv_admin st;
	struct server *srv;

	if (!admin) {
		stream_error(s, 403, "stats page: POST without 'stats admin'", "PR");
		return;
	}
	if (h->flags & HM_CHUNKED) {
		stream_error(s, 400, "stats page: chunked form body", "PR");
		return;
	}
	cl = (h->flags & HM_HAS_CL) ? (size_t)h->content_length : 0;
	if (cl > STATS_ADMIN_BODY_MAX) {
		stream_error(s, 413, "stats page: form body too large", "PR");
		return;
	}
	avail = (size_t)(rb->data + rb->tail - body);
	if (!cl || avail < cl) {
		stream_error(s, 400, "stats page: the form did not arrive with the request head", "PR");
		return;
	}
	if (!origin_ok(h)) {
		stream_error(s, 403, "stats page: Origin/Referer does not match Host", "PR");
		return;
	}
	stats_admin_token(s->fe, user, want);
	if (!stats_form_get(body, cl, "token", tok, sizeof(tok)) ||
	    !ct_eq(tok, strlen(tok), want, STATS_TOKEN_LEN)) {
		stream_error(s, 403, "stats page: missing or invalid token", "PR");
		return;
	}
	if (!stats_form_get(body, cl, "action", action, sizeof(action)) ||
	    !stats_form_get(body, cl, "b", bname, sizeof(bname)) ||
	    !stats_form_get(body, cl, "s", sname, sizeof(sname))) {
		stream_error(s, 400, "stats page: the form needs action, b and s", "PR");
		return;
	}
	if (!strcmp(action, "ready"))
		st = SRV_ADMIN_READY;
	else if (!strcmp(action, "drain"))
		st = SRV_ADMIN_DRAIN;
	else if (!strcmp(action, "maint"))
		st = SRV_ADMIN_MAINT;
	else {
		stream_error(s, 400, "stats page: unknown action", "PR");
		return;
	}
	srv = find_server(bname, sname);
	if (!srv) {
		stream_error(s, 400, "stats page: unknown backend or server", "PR");
		return;
	}
	if (user && *user)
		snprintf(who, sizeof(who), "stats page, user %s", user);
	else
		snprintf(who, sizeof(who), "stats page");
	health_set_admin(srv, st, who);
	r = strfmt("HTTP/1.1 303 See Other\r\nlocation: %s\r\ncontent-length: 0\r\n"
		   "cache-control: no-cache\r\nconnection: close\r\n\r\n",
		   s->fe->stats.uri);
	stream_reply_heap(s, r, (uint32_t)strlen(r), 303, true);
}
