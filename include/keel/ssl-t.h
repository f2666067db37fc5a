/* TLS types (include/keel/ssl.h): a bind line's TLS settings and the certificates it serves. */
#ifndef KEEL_SSL_T_H
#define KEEL_SSL_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <keel/global-t.h>

/* OpenSSL's types stay opaque outside src/ssl. */
struct ssl_ctx_st;
struct ssl_session_st;
struct sample_expr;
/* A set of session ticket keys (src/ssl/ssl-tickets.c): a bind's tls-ticket-keys file. */
struct ssl_ticket_keys;

/* Client certificate checking (bind "verify"). */
enum ssl_verify {
	SSL_VFY_UNSET = 0, /* none, unless a default says otherwise */
	SSL_VFY_NONE,
	SSL_VFY_OPTIONAL,
	SSL_VFY_REQUIRED,
};

/* Protocol options that several lines can set: a bind line, a crt-list line, or the global
 * ssl-default-bind-* lines (what a bind leaves unset comes from there). */
struct ssl_opts {
	int min_ver, max_ver;  /* TLS1_2_VERSION...; 0: unset */
	unsigned long no_ver;  /* protocols turned off one by one (no-tlsv1x): SSL_OP_NO_* */
	const char *ciphers;   /* TLS 1.2 and below; NULL: unset */
	const char *ciphersuites; /* TLS 1.3 */
	const char *curves;
	bool no_tickets;       /* no-tls-tickets */
	bool prefer_client;    /* prefer-client-ciphers */
};

/* The global ssl-default-bind-* settings and the base folders of relative paths. */
struct ssl_defaults {
	struct ssl_opts o;
	const char *crt_base, *ca_base;
};

/* Where a bind's certificates come from: a "crt" (file or directory) or a "crt-list" file. */
struct ssl_crt_src {
	const char *path;
	bool is_list;
};

#define SSL_MAX_CRT_SRC 16

struct ssl_bind;

#define SSL_CC_MAX_FILES 4 /* certificates of one context: one per key type */

/* A certificate file as loaded, for the watcher (a file replaced on disk is loaded again) and
 * the admin socket (set/commit/show ssl cert). */
struct ssl_cert_file {
	const char *path;
	struct ssl_bind *b;
	int cc;                /* its context: b->ccs[cc] */
	int dirfd;             /* its folder, opened before chroot (-1 until ssl_watch_prepare()) */
	/* what the file was when last loaded or last tried: a change is what the watcher sees */
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	int64_t ocsp_sig;      /* what its "FILE.ocsp" was (0: none) */
	/* the certificate served (for "show ssl cert"), updated with each replacement */
	char subject[256];
	char not_after[32];
	char serial[64];
	/* "set ssl cert" text waiting for "commit ssl cert" (the admin thread only) */
	char *pending;
	size_t pending_len;
};

/* One certificate context: the certificates served for one set of names (an ECDSA and an RSA
 * one may share it: OpenSSL picks by what the client supports). Replacing a certificate at
 * runtime builds a new context and swaps ctx: the workers read it atomically. */
struct ssl_cert_ctx {
	_Atomic(struct ssl_ctx_st *) ctx;
	const char *first;     /* the first file loaded into it (messages) */
	unsigned keys;         /* key types loaded (enum ssl_key_kind bits) */
	const char **names;    /* the names it serves, sorted, lower case */
	int nnames;
	struct ssl_cert_file *files[SSL_CC_MAX_FILES];
	int nfiles;
};

/* A name served by a certificate context. Wildcards ("*.example.org") are kept as ".example.org"
 * in their own table. */
struct ssl_sni {
	const char *name;      /* lower case */
	struct ssl_cert_ctx *cc;
};

/* A bind line's TLS: what the configuration says, then (once checked) the contexts. All the
 * addresses of one bind line share it. */
struct ssl_bind {
	/* configuration */
	const char *file;
	int line;
	struct ssl_crt_src crt[SSL_MAX_CRT_SRC];
	int ncrt;
	struct ssl_opts o;
	uint8_t *alpn;         /* wire format (length-prefixed names); NULL: no ALPN */
	unsigned alpn_len;
	const char *ca_file;
	const char *crl_file;
	enum ssl_verify verify;
	bool strict_sni;       /* no certificate for the name: refuse, not the default one */
	const char *ticket_file; /* tls-ticket-keys; NULL: the process's rotated keys */

	/* built by the check (ssl_bind_build()) */
	bool built;
	struct ssl_defaults d;      /* the global defaults it was built with (replacements) */
	struct ssl_ticket_keys *tickets; /* the keys of ticket_file */
	struct ssl_cert_ctx *def;   /* the first certificate: a client without a known name */
	struct ssl_cert_ctx *ccs;   /* every context, in loading order */
	int nccs;
	struct ssl_sni *exact, *wild; /* sorted by name, for bsearch() */
	int nexact, nwild;
};

/* What a server line says about TLS to that server (origination), and its context. */
struct ssl_server {
	bool enabled;          /* "ssl": requests go over TLS */
	bool check_ssl;        /* "check-ssl": the health checks too (they do with "ssl" alone) */
	enum ssl_verify verify; /* NONE or REQUIRED; UNSET: ssl-server-verify (default required) */
	const char *ca_file;
	const char *crt;       /* a client certificate to present */
	const char *verifyhost; /* the name the certificate must carry; NULL: the SNI when set */
	struct sample_expr *sni; /* the name to ask for, per request; NULL: none */
	const char *check_sni;  /* the name the checks ask for */
	bool no_reuse;         /* no-ssl-reuse: every connection does a full handshake */
	uint8_t *alpn;
	unsigned alpn_len;
	struct ssl_opts o;

	/* built by the check (ssl_server_build()) */
	struct ssl_ctx_st *ctx;
	/* The last session each worker got from this server, offered on its next connection that
	 * asks for the same name (a worker touches only its own slot). */
	struct ssl_session_st *reuse[KEEL_MAX_THREADS];
	uint64_t reuse_name[KEEL_MAX_THREADS]; /* the hash of the name it was for (0: none) */
};

#endif
