/* Cookie persistence types ("cookie NAME insert|rewrite|prefix ..." in a backend, src/sticky/cookie.c). */
#ifndef KEEL_COOKIE_T_H
#define KEEL_COOKIE_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum ck_mode {
	CK_OFF = 0,  /* no "cookie" keyword */
	CK_PASSIVE,  /* "cookie NAME": the application sets NAME=<server cookie> itself */
	CK_INSERT,   /* keel adds Set-Cookie: NAME=<server cookie> */
	CK_REWRITE,  /* the server's Set-Cookie NAME=x becomes NAME=<server cookie> */
	CK_PREFIX,   /* the server's Set-Cookie NAME=x becomes NAME=<server cookie>~x */
};

enum ck_opt {
	CKO_INDIRECT = 1u << 0,
	CKO_NOCACHE = 1u << 1,
	CKO_POSTONLY = 1u << 2,
	CKO_PRESERVE = 1u << 3,
	CKO_HTTPONLY = 1u << 4,
	CKO_SECURE = 1u << 5,
	CKO_NO_MOVED_HDR = 1u << 6, /* keel: no X-Keel-Moved-From to the new server */
};

/* What a persistence cookie naming a server means for the request (cookie_verdict()). */
enum ck_verdict {
	CKV_GO = 0, /* send the request there (usable, draining, or down with "option persist") */
	CKV_DOWN,   /* down or ejected: the user moves to another server */
	CKV_MAINT,  /* in maintenance (or deleted): the user moves, even with "option persist" */
	CKV_GONE,   /* in drain, and the user was idle for drain-idle or the drain-deadline passed:
		     * it moves as from maintenance */
};

#define CK_DATE_DELIM '|' /* insert mode with maxidle/maxlife: VALUE|last|first (hex seconds) */
#define CK_PREFIX_DELIM '~'
#define CK_REFRESH_S 4    /* a dated cookie is re-sent when its last date is older than this */
#define CK_FUTURE_S 86400 /* dates further in the future than this are ignored (as HAProxy) */

struct cookie_conf {
	/* config */
	char *name;              /* NULL: no cookie persistence */
	uint32_t namelen;
	uint8_t mode;            /* enum ck_mode */
	uint32_t opts;           /* enum ck_opt */
	char *domains;           /* "; domain=a; domain=b" ready to append, or NULL */
	char *attrs;             /* "; SameSite=Lax; ..." ready to append, or NULL */
	uint32_t maxidle_s, maxlife_s; /* 0: off */
	/* runtime: the "sticky user moved" log lines are limited to one per second per backend */
	_Atomic uint64_t log_next_us;
	atomic_uint log_skipped;
};

#endif
