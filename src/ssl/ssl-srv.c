/* TLS to servers (origination): the server line's options (ssl, verify, ca-file, sni,
 * check-ssl...), the global ssl-server-verify and ssl-default-server-* lines, each server's
 * OpenSSL context, the sessions kept to resume with it, and the name asked for per request.
 * HAProxy's names and meanings (docs/configuration.md, "TLS to servers"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <keel/arena.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/lb.h>
#include <keel/proxy.h>
#include <keel/sample.h>
#include <keel/stream-t.h>
#include <keel/ssl.h>
#include <keel/worker.h>

/* The global settings of every server line. */
static struct ssl_opts srv_defaults;
static enum ssl_verify srv_verify_default = SSL_VFY_REQUIRED;

/* Every server's struct ssl_server, to free their contexts and sessions at cfg_reset(). */
static struct ssl_server **servers;
static int nservers, servers_cap;

/* ---- configuration ---- */

int ssl_srv_global(struct cfg_ctx *c, int argc, char **argv)
{
	int i;

	if (!strcmp(argv[0], "ssl-server-verify")) {
		if (argc != 2 || (strcmp(argv[1], "none") && strcmp(argv[1], "required"))) {
			cfg_err(c, "'ssl-server-verify' expects none or required");
			return ERR;
		}
		srv_verify_default = !strcmp(argv[1], "none") ? SSL_VFY_NONE : SSL_VFY_REQUIRED;
		return OK;
	}
	if (!strcmp(argv[0], "ssl-default-server-options")) {
		for (i = 1; i < argc; i++) {
			int r = ssl_opts_param(c, &srv_defaults, argc, argv, &i);

			if (r == ERR)
				return ERR;
			if (r == 0)
				cfg_warn(c, "ssl-default-server-options: '%s' is not supported; ignored",
					 argv[i]);
		}
		return OK;
	}
	/* ssl-default-server-ciphers / -ciphersuites / -curves X: "ciphers X" on every server */
	if (cfg_need_args(c, argc, argv, 1, "a list"))
		return ERR;
	{
		char *fake[3] = {strrchr(argv[0], '-') + 1, argv[1], NULL};

		i = 0;
		return ssl_opts_param(c, &srv_defaults, 2, fake, &i) == 1 ? OK : ERR;
	}
}

void ssl_srv_reset(void)
{
	int i, k;

	for (i = 0; i < nservers; i++) {
		for (k = 0; k < KEEL_MAX_THREADS; k++)
			SSL_SESSION_free(servers[i]->reuse[k]);
		SSL_CTX_free(servers[i]->ctx);
	}
	free(servers);
	servers = NULL;
	nservers = servers_cap = 0;
	memset(&srv_defaults, 0, sizeof(srv_defaults));
	srv_verify_default = SSL_VFY_REQUIRED;
}

/* s's TLS settings, its own copy: a server inherits default-server's by struct copy, and each
 * server needs its own sessions. */
static struct ssl_server *srv_ssl(struct server *s, bool own)
{
	struct ssl_server *ss = s->xprt_conf;

	if (ss && !own)
		return ss;
	ss = arena_alloc(&cfg_arena, sizeof(*ss));
	if (s->xprt_conf)
		*ss = *(struct ssl_server *)s->xprt_conf;
	s->xprt_conf = ss;
	return ss;
}

static int srv_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i)
{
	const char *kw = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	struct ssl_server *ss;
	struct ssl_opts tmp;
	int r;

	if (!strcmp(kw, "ssl") || !strcmp(kw, "no-ssl")) {
		srv_ssl(s, false)->enabled = kw[0] == 's';
		s->xprt = kw[0] == 's' ? &xprt_ssl_srv : &xprt_raw;
		return 1;
	}
	if (!strcmp(kw, "check-ssl") || !strcmp(kw, "no-ssl-reuse") || !strcmp(kw, "ssl-reuse")) {
		ss = srv_ssl(s, false);
		if (!strcmp(kw, "check-ssl"))
			ss->check_ssl = true;
		else
			ss->no_reuse = kw[0] == 'n';
		return 1;
	}
	if (!strcmp(kw, "verify") || !strcmp(kw, "ca-file") || !strcmp(kw, "crt") ||
	    !strcmp(kw, "sni") || !strcmp(kw, "check-sni") || !strcmp(kw, "verifyhost") ||
	    !strcmp(kw, "alpn")) {
		if (!val) {
			cfg_err(c, "server option '%s' expects a value", kw);
			return ERR;
		}
		ss = srv_ssl(s, false);
		(*i)++;
		if (!strcmp(kw, "verify")) {
			if (strcmp(val, "none") && strcmp(val, "required")) {
				cfg_err(c, "server option 'verify' expects none or required");
				return ERR;
			}
			ss->verify = !strcmp(val, "none") ? SSL_VFY_NONE : SSL_VFY_REQUIRED;
		} else if (!strcmp(kw, "ca-file")) {
			ss->ca_file = ssl_base_path(ssl_ca_base(), val);
		} else if (!strcmp(kw, "crt")) {
			ss->crt = ssl_base_path(ssl_crt_base(), val);
		} else if (!strcmp(kw, "verifyhost")) {
			ss->verifyhost = arena_strdup(&cfg_arena, val);
		} else if (!strcmp(kw, "check-sni")) {
			ss->check_sni = arena_strdup(&cfg_arena, val);
		} else if (!strcmp(kw, "alpn")) {
			if (ssl_parse_alpn(c, val, &ss->alpn, &ss->alpn_len) != OK)
				return ERR;
		} else {
			const char *rest;
			char *err = NULL;

			ss->sni = arena_alloc(&cfg_arena, sizeof(*ss->sni));
			if (sample_expr_parse(val, ss->sni, &rest, &err) != OK || *rest) {
				cfg_err(c, "server option 'sni': %s", err ? err : "unexpected characters");
				free(err);
				return ERR;
			}
		}
		return 1;
	}
	ss = s->xprt_conf;
	tmp = ss ? ss->o : (struct ssl_opts){0};
	r = ssl_opts_param(c, &tmp, argc, argv, i);
	if (r == 1)
		srv_ssl(s, false)->o = tmp;
	return r;
}

/* ---- contexts ---- */

/* A new session from the server (TLS 1.3 sends them after the handshake, as it reads): kept
 * for the worker's next connection to it. */
static uint64_t name_hash(const char *name)
{
	return name ? lb_hash(name, strlen(name)) | 1 : 0;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct ssl_server *ss = SSL_get_app_data(ssl);
	int w = this_worker ? this_worker->id : 0;

	if (!ss)
		return 0;
	SSL_SESSION_free(ss->reuse[w]);
	ss->reuse[w] = sess;
	ss->reuse_name[w] = name_hash(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	return 1; /* ours now */
}

static int srv_build(struct server *s, struct ssl_server *ss, char **err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		*err = strfmt("cannot create a TLS context: %s", ssl_errstr());
		return ERR;
	}
	ss->ctx = ctx;
	if (ssl_ctx_apply_opts(ctx, &ss->o, &srv_defaults, err) != OK)
		return ERR;
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (ss->verify == SSL_VFY_UNSET)
		ss->verify = srv_verify_default;
	if (ss->verify == SSL_VFY_REQUIRED) {
		if (!ss->ca_file) {
			*err = strfmt("server '%s': certificates are verified (ssl-server-verify "
				      "required, the default) but no 'ca-file' is given; add 'ca-file' "
				      "or, on a network you trust, 'verify none'", s->name);
			return ERR;
		}
		if (access(ss->ca_file, R_OK) != 0) {
			*err = strfmt("server '%s': ca-file '%s': %s", s->name, ss->ca_file,
				      strerror(errno));
			return ERR;
		}
		if (!SSL_CTX_load_verify_locations(ctx, ss->ca_file, NULL)) {
			*err = strfmt("server '%s': ca-file '%s': %s", s->name, ss->ca_file,
				      ssl_errstr());
			return ERR;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (ss->crt && ssl_ctx_use_pem(ctx, ss->crt, err) != OK)
		return ERR;
	if (ss->alpn && SSL_CTX_set_alpn_protos(ctx, ss->alpn, ss->alpn_len) != 0) {
		*err = strfmt("server '%s': alpn: %s", s->name, ssl_errstr());
		return ERR;
	}
	if (!ss->no_reuse) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
							    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	}
	return OK;
}

/* Builds s's context when it speaks TLS (to serve requests or checks). */
static int srv_check(struct cfg_ctx *c, struct proxy *p, struct server *s)
{
	struct ssl_server *ss = s->xprt_conf;
	char *err = NULL;

	if (!ss || !(ss->enabled || ss->check_ssl))
		return OK;
	if (ss->enabled && ss->sni && ss->sni->fetch != SMP_STR) {
		const struct sample_expr *e = p->srv_sni;

		if (!e) {
			p->srv_sni = ss->sni;
		} else if (e->fetch != ss->sni->fetch || e->arglen != ss->sni->arglen ||
			   e->occ != ss->sni->occ || (e->arglen && memcmp(e->arg, ss->sni->arg, e->arglen))) {
			cfg_err(c, "server '%s': the servers of a backend that take 'sni' from the request "
				   "must all use the same expression", s->name);
			return ERR;
		}
	}
	ss = srv_ssl(s, true); /* its own copy, whatever default-server gave */
	if (nservers == servers_cap) {
		servers_cap = servers_cap ? 2 * servers_cap : 16;
		servers = xrealloc(servers, sizeof(*servers) * (size_t)servers_cap);
	}
	servers[nservers++] = ss;
	if (srv_build(s, ss, &err) != OK) {
		cfg_err(c, "%s", err);
		free(err);
		return ERR;
	}
	return OK;
}

static int srv_check_backend(struct cfg_ctx *c, struct proxy *p)
{
	int i, r = OK;

	for (i = 0; i < p->nsrv; i++)
		if (srv_check(c, p, p->srv[i]) != OK)
			r = ERR;
	return r;
}

const struct proxy_hooks ssl_srv_hooks = {
	.server_param = srv_param,
	.check_backend = srv_check_backend,
	.check_server = srv_check,
};

/* ---- per connection ---- */

int ssl_srv_sni(struct stream *s, const struct server *srv, char *buf, size_t len)
{
	const struct ssl_server *ss = srv->xprt_conf;
	size_t n;

	if (!ss || !ss->sni || !len)
		return -1;
	/* A constant, or what the analysis took from the request (http-ana.c, be->srv_sni). */
	if (ss->sni->fetch == SMP_STR) {
		n = MIN((size_t)ss->sni->arglen, len - 1);
		memcpy(buf, ss->sni->arg, n);
	} else {
		n = MIN((size_t)s->txn->sni_len, len - 1);
		memcpy(buf, s->txn->sni, n);
	}
	/* A Host header's port is not part of the name. */
	if (n && buf[0] != '[') {
		char *colon = memchr(buf, ':', n);

		if (colon)
			n = (size_t)(colon - buf);
	}
	buf[n] = '\0';
	return n ? (int)n : -1;
}

void ssl_srv_set_name(struct conn *c, const char *sni)
{
	SSL *ssl = c->xprt == &xprt_ssl_srv ? c->xprt_ctx : NULL;
	const struct ssl_server *ss = ssl ? SSL_get_app_data(ssl) : NULL;
	const char *host;

	if (!ssl)
		return;
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	/* A session is resumed only with the name it was made for: the server chose its
	 * certificate by that name, and a resumption skips the certificate's check. */
	if (!ss->no_reuse) {
		int w = this_worker ? this_worker->id : 0;

		if (ss->reuse[w] && ss->reuse_name[w] == name_hash(sni))
			SSL_set_session(ssl, ss->reuse[w]);
	}
	/* The certificate must name what was asked for (or verifyhost). */
	host = ss->verifyhost ? ss->verifyhost : sni;
	if (ss->verify == SSL_VFY_REQUIRED && host) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(ssl, host);
	}
}
