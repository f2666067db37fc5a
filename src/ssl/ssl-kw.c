/* TLS keywords: the global ssl-default-bind-* lines, crt-base and ca-base, and the TLS options of
 * bind lines (HAProxy's names and meanings; docs/configuration.md, "TLS"). The certificates are
 * loaded by the check of each bind, once the whole file is read. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include <keel/arena.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/ssl.h>

static struct ssl_defaults defaults;

/* Every struct ssl_bind of the loaded configuration, to free their contexts at cfg_reset(). */
static struct ssl_bind **binds;
static int nbinds, binds_cap;

/* ---- option values shared by bind lines and ssl-default-bind-options ---- */

static const struct {
	const char *name;
	const char *no_kw; /* the option that turns it off */
	int ver;
	unsigned long no;  /* SSL_OP_NO_* */
} versions[] = {
	{"SSLv3", "no-sslv3", SSL3_VERSION, SSL_OP_NO_SSLv3},
	{"TLSv1.0", "no-tlsv10", TLS1_VERSION, SSL_OP_NO_TLSv1},
	{"TLSv1.1", "no-tlsv11", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
	{"TLSv1.2", "no-tlsv12", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
	{"TLSv1.3", "no-tlsv13", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
};

static int parse_ver(struct cfg_ctx *c, const char *kw, const char *v)
{
	size_t i;

	for (i = 0; v && i < ARRAY_SIZE(versions); i++)
		if (!strcmp(v, versions[i].name))
			return versions[i].ver;
	cfg_err(c, "'%s' expects SSLv3, TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", kw);
	return ERR;
}

int ssl_opts_param(struct cfg_ctx *c, struct ssl_opts *o, int argc, char **argv, int *i)
{
	const char *kw = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	size_t k;

	if (!strcmp(kw, "ssl-min-ver") || !strcmp(kw, "ssl-max-ver")) {
		int v = parse_ver(c, kw, val);

		if (v == ERR)
			return ERR;
		*(!strcmp(kw, "ssl-min-ver") ? &o->min_ver : &o->max_ver) = v;
		(*i)++;
		return 1;
	}
	for (k = 0; k < ARRAY_SIZE(versions); k++)
		if (!strcmp(kw, versions[k].no_kw)) {
			o->no_ver |= versions[k].no;
			return 1;
		}
	if (!strcmp(kw, "no-tls-tickets")) {
		o->no_tickets = true;
		return 1;
	}
	if (!strcmp(kw, "prefer-client-ciphers")) {
		o->prefer_client = true;
		return 1;
	}
	if (!strcmp(kw, "ciphers") || !strcmp(kw, "ciphersuites") || !strcmp(kw, "curves") ||
	    !strcmp(kw, "ecdhe")) {
		if (!val) {
			cfg_err(c, "'%s' expects a list", kw);
			return ERR;
		}
		if (!strcmp(kw, "ciphersuites"))
			o->ciphersuites = arena_strdup(&cfg_arena, val);
		else if (!strcmp(kw, "ciphers"))
			o->ciphers = arena_strdup(&cfg_arena, val);
		else
			o->curves = arena_strdup(&cfg_arena, val); /* ecdhe: one curve */
		(*i)++;
		return 1;
	}
	return 0;
}

/* ---- global ---- */

static int kw_default_bind_str(struct cfg_ctx *c, int argc, char **argv)
{
	int i = 0;
	char *fake[3] = {NULL, argv[1], NULL};

	if (cfg_need_args(c, argc, argv, 1, "a list"))
		return ERR;
	/* "ssl-default-bind-ciphers X" is "ciphers X" for every bind. */
	fake[0] = strrchr(argv[0], '-') + 1;
	return ssl_opts_param(c, &defaults.o, 2, fake, &i) == 1 ? OK : ERR;
}

static int kw_default_bind_options(struct cfg_ctx *c, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		int r = ssl_opts_param(c, &defaults.o, argc, argv, &i);

		if (r == ERR)
			return ERR;
		if (r == 0)
			cfg_warn(c, "ssl-default-bind-options: '%s' is not supported; ignored", argv[i]);
	}
	return OK;
}

const char *ssl_crt_base(void)
{
	return defaults.crt_base;
}

const char *ssl_ca_base(void)
{
	return defaults.ca_base;
}

static int kw_base(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "a folder"))
		return ERR;
	*(!strcmp(argv[0], "crt-base") ? &defaults.crt_base : &defaults.ca_base) =
		arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

static const struct cfg_kw ssl_kw[] = {
	{"ssl-default-bind-ciphers", CFG_S_GLOBAL, kw_default_bind_str, 0, NULL},
	{"ssl-default-bind-ciphersuites", CFG_S_GLOBAL, kw_default_bind_str, 0, NULL},
	{"ssl-default-bind-curves", CFG_S_GLOBAL, kw_default_bind_str, 0, NULL},
	{"ssl-default-bind-options", CFG_S_GLOBAL, kw_default_bind_options, 0, NULL},
	{"ssl-server-verify", CFG_S_GLOBAL, ssl_srv_global, 0, NULL},
	{"ssl-default-server-options", CFG_S_GLOBAL, ssl_srv_global, 0, NULL},
	{"ssl-default-server-ciphers", CFG_S_GLOBAL, ssl_srv_global, 0, NULL},
	{"ssl-default-server-ciphersuites", CFG_S_GLOBAL, ssl_srv_global, 0, NULL},
	{"ssl-default-server-curves", CFG_S_GLOBAL, ssl_srv_global, 0, NULL},
	{"crt-base", CFG_S_GLOBAL, kw_base, 0, NULL},
	{"ca-base", CFG_S_GLOBAL, kw_base, 0, NULL},
	/* keel offers no DHE suites: no parameters to size. */
	{"tune.ssl.default-dh-param", CFG_S_GLOBAL, NULL, KW_IGNORE, NULL},
	{"tune.ssl.cachesize", CFG_S_GLOBAL, NULL, KW_UNIMPL, "OpenSSL's own session cache is used"},
	{"tune.ssl.lifetime", CFG_S_GLOBAL, NULL, KW_UNIMPL, "OpenSSL's own session cache is used"},
	{"tune.ssl.ticket-rotate", CFG_S_GLOBAL, ssl_tickets_kw_rotate, 0, NULL}, /* keel's own */
	CFG_KW_END,
};

static void ssl_reset(void)
{
	int i;

	for (i = 0; i < nbinds; i++)
		ssl_bind_free(binds[i]);
	free(binds);
	binds = NULL;
	nbinds = binds_cap = 0;
	memset(&defaults, 0, sizeof(defaults));
	ssl_srv_reset();
	ssl_cert_reset();
	ssl_tickets_reset_settings();
}

static void ssl_begin(struct cfg_ctx *c)
{
	(void)c;
	ssl_reset();
}

const struct cfg_module ssl_module = {
	.name = "ssl",
	.keywords = ssl_kw,
	.begin = ssl_begin,
	.reset = ssl_reset,
};

/* ---- bind lines ---- */

static struct ssl_bind *bind_ssl(struct cfg_ctx *c, struct bind_conf *b)
{
	struct ssl_bind *sb = b->xprt_conf;

	if (sb)
		return sb;
	sb = arena_alloc(&cfg_arena, sizeof(*sb));
	sb->file = c->file;
	sb->line = c->line;
	b->xprt_conf = sb;
	return sb;
}

int ssl_parse_alpn(struct cfg_ctx *c, const char *list, uint8_t **out, unsigned *len)
{
	char *copy = arena_strdup(&cfg_arena, list), *tok, *save = NULL;
	uint8_t *w = arena_alloc(&cfg_arena, strlen(list) + 1);
	unsigned n = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t l = strlen(tok);

		if (l == 0 || l > 255) {
			cfg_err(c, "'alpn': invalid protocol name '%s'", tok);
			return ERR;
		}
		if (strcmp(tok, "http/1.1") && strcmp(tok, "http/1.0")) {
			cfg_warn(c, "'alpn': keel does not speak '%s' yet; not offered", tok);
			continue;
		}
		w[n++] = (uint8_t)l;
		memcpy(w + n, tok, l);
		n += (unsigned)l;
	}
	*out = n ? w : NULL;
	*len = n;
	return OK;
}

static int ssl_bind_param(struct cfg_ctx *c, struct bind_conf *b, int argc, char **argv, int *i)
{
	const char *kw = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	struct ssl_bind *sb;
	int r;

	if (!strcmp(kw, "ssl")) {
		bind_ssl(c, b);
		b->xprt = &xprt_ssl;
		return 1;
	}
	if (!strcmp(kw, "crt") || !strcmp(kw, "crt-list") || !strcmp(kw, "ca-file") ||
	    !strcmp(kw, "crl-file") || !strcmp(kw, "alpn") || !strcmp(kw, "verify") ||
	    !strcmp(kw, "tls-ticket-keys")) {
		if (!val) {
			cfg_err(c, "bind option '%s' expects a value", kw);
			return ERR;
		}
		sb = bind_ssl(c, b);
		(*i)++;
		if (!strcmp(kw, "alpn"))
			return ssl_parse_alpn(c, val, &sb->alpn, &sb->alpn_len) == OK ? 1 : ERR;
		if (!strcmp(kw, "verify")) {
			if (!strcmp(val, "none"))
				sb->verify = SSL_VFY_NONE;
			else if (!strcmp(val, "optional"))
				sb->verify = SSL_VFY_OPTIONAL;
			else if (!strcmp(val, "required"))
				sb->verify = SSL_VFY_REQUIRED;
			else {
				cfg_err(c, "'verify' expects none, optional or required");
				return ERR;
			}
			return 1;
		}
		if (!strcmp(kw, "tls-ticket-keys")) {
			sb->ticket_file = arena_strdup(&cfg_arena, val); /* read by the check */
			return 1;
		}
		if (!strcmp(kw, "ca-file") || !strcmp(kw, "crl-file")) {
			*(!strcmp(kw, "ca-file") ? &sb->ca_file : &sb->crl_file) =
				ssl_base_path(defaults.ca_base, val);
			return 1;
		}
		if (sb->ncrt == SSL_MAX_CRT_SRC) {
			cfg_err(c, "more than %d 'crt' and 'crt-list' on one bind line", SSL_MAX_CRT_SRC);
			return ERR;
		}
		sb->crt[sb->ncrt].path = ssl_base_path(defaults.crt_base, val);
		sb->crt[sb->ncrt++].is_list = !strcmp(kw, "crt-list");
		return 1;
	}
	if (!strcmp(kw, "strict-sni")) {
		bind_ssl(c, b)->strict_sni = true;
		return 1;
	}
	if (!strcmp(kw, "npn")) {
		cfg_warn(c, "bind option 'npn' is obsolete (ALPN replaced it); ignored");
		if (val)
			(*i)++;
		return 1;
	}
	if (!strcmp(kw, "allow-0rtt") || !strcmp(kw, "ca-ignore-err") ||
	    !strcmp(kw, "crt-ignore-err") || !strcmp(kw, "generate-certificates") ||
	    !strcmp(kw, "ca-sign-file") || !strcmp(kw, "ocsp-update")) {
		cfg_err(c, "bind option '%s' is not implemented yet", kw);
		return ERR;
	}
	sb = b->xprt_conf;
	{
		struct ssl_opts tmp = sb ? sb->o : (struct ssl_opts){0};

		r = ssl_opts_param(c, &tmp, argc, argv, i);
		if (r == 1)
			bind_ssl(c, b)->o = tmp;
	}
	return r;
}

static int ssl_check_bind(struct cfg_ctx *c, struct proxy *p, struct bind_conf *b)
{
	struct ssl_bind *sb = b->xprt_conf;
	char *err = NULL;

	if (!sb)
		return OK;
	if (b->xprt != &xprt_ssl) {
		if (sb->ncrt) {
			cfg_err(c, "bind '%s' has 'crt' but not 'ssl'", b->str);
			return ERR;
		}
		return OK; /* TLS options without TLS, as HAProxy: unused */
	}
	if (sb->built)
		return sb->def ? OK : ERR; /* another address of the same line */
	if (nbinds == binds_cap) {
		binds_cap = binds_cap ? 2 * binds_cap : 8;
		binds = xrealloc(binds, sizeof(*binds) * (size_t)binds_cap);
	}
	binds[nbinds++] = sb;
	if (sb->crl_file && !sb->ca_file) {
		cfg_err(c, "bind '%s': 'crl-file' needs 'ca-file'", b->str);
		return ERR;
	}
	if (sb->verify > SSL_VFY_NONE && !sb->ca_file) {
		cfg_err(c, "bind '%s': 'verify %s' needs 'ca-file' (the accepted issuers)", b->str,
			sb->verify == SSL_VFY_REQUIRED ? "required" : "optional");
		return ERR;
	}
	if (ssl_bind_build(sb, &defaults, &err) != OK) {
		cfg_err(c, "bind '%s': %s", b->str, err);
		free(err);
		return ERR;
	}
	(void)p;
	return OK;
}

const struct proxy_hooks ssl_hooks = {
	.bind_param = ssl_bind_param,
	.check_bind = ssl_check_bind,
};
