/* TLS types (include/keel/ssl.h): a bind line's TLS settings and the certificates it serves. */
#ifndef KEEL_SSL_T_H
#define KEEL_SSL_T_H

#include <stdbool.h>
#include <stdint.h>

/* OpenSSL's types stay opaque outside src/ssl. */
struct ssl_ctx_st;

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

/* One certificate context: the certificates served for one set of names (an ECDSA and an RSA
 * one may share it: OpenSSL picks by what the client supports). */
struct ssl_cert_ctx {
	struct ssl_ctx_st *ctx;
	const char *first;     /* the first file loaded into it (messages) */
	unsigned keys;         /* key types loaded (enum ssl_key_kind bits) */
	const char **names;    /* the names it serves, sorted, lower case */
	int nnames;
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

	/* built by the check (ssl_bind_build()) */
	bool built;
	struct ssl_cert_ctx *def;   /* the first certificate: a client without a known name */
	struct ssl_cert_ctx *ccs;   /* every context, in loading order */
	int nccs;
	struct ssl_sni *exact, *wild; /* sorted by name, for bsearch() */
	int nexact, nwild;
};

/* What a server line says about TLS to that server (origination). */
struct ssl_server {
	bool enabled;          /* "ssl" */
	bool check_ssl;        /* "check-ssl": the health checks use TLS too */
	enum ssl_verify verify; /* SSL_VFY_NONE or SSL_VFY_REQUIRED (default: global ssl-server-verify) */
	const char *ca_file;
	const char *sni;       /* a sample expression ("str(name)", "req.hdr(host)"); NULL: none */
	const char *crt;       /* a client certificate to present */
	uint8_t *alpn;
	unsigned alpn_len;
	struct ssl_opts o;
	struct ssl_ctx_st *ctx;
};

#endif
