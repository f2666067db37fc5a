/* A bind line's certificates: loading them ("crt" files and folders, "crt-list" files), one
 * OpenSSL context per set of names, and the choice of a context for the name a client asks
 * for (SNI). Certificates of different key types for the same names (ECDSA and RSA) share a
 * context: OpenSSL then serves each client the one its signature algorithms accept.
 * Everything here runs at configuration load, before chroot and the change of user. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <keel/arena.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/ssl.h>

/* A modern set for TLS 1.2 (forward secrecy, AEAD only), as Mozilla's "intermediate" profile
 * without the DHE suites (they need parameters keel does not ship). TLS 1.3 suites are
 * OpenSSL's defaults, all of them AEAD. */
#define SSL_DEFAULT_CIPHERS                                                                        \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"  \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define SSL_DEFAULT_CURVES "X25519:P-256:P-384"
#define SSL_MAX_NAMES 256    /* names one certificate may serve */
#define SSL_MAX_FILE (1 << 20) /* a PEM file larger than this is refused */

enum ssl_key_kind {
	SSL_KEY_RSA = 1u << 0,
	SSL_KEY_EC = 1u << 1,
	SSL_KEY_OTHER = 1u << 2,
};

/* The OpenSSL error queue as one line (the last error), for messages. */
static const char *ssl_errstr(void)
{
	static char buf[256];
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* ---- settings ---- */

static int opt_int(int v, int dflt, int fallback)
{
	return v ? v : dflt ? dflt : fallback;
}

static const char *opt_str(const char *v, const char *dflt, const char *fallback)
{
	return v ? v : dflt ? dflt : fallback;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	const struct ssl_bind *b = arg;
	struct ssl_cert_ctx *cc = ssl_bind_select(b, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));

	if (!cc) {
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	if (cc->ctx != SSL_get_SSL_CTX(ssl) && !SSL_set_SSL_CTX(ssl, cc->ctx))
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

/* The bind's protocols in its order of preference; none in common: no ALPN at all (the client
 * then speaks HTTP/1.1 as it would without ALPN). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct ssl_bind *b = arg;
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, b->alpn, b->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int load_client_ca(SSL_CTX *ctx, const struct ssl_bind *b, char **err)
{
	STACK_OF(X509_NAME) *names;

	if (!SSL_CTX_load_verify_locations(ctx, b->ca_file, NULL)) {
		*err = strfmt("ca-file '%s': %s", b->ca_file, ssl_errstr());
		return ERR;
	}
	/* The names of the accepted issuers, sent to the client with the certificate request. */
	names = SSL_load_client_CA_file(b->ca_file);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	if (b->crl_file) {
		X509_STORE *st = SSL_CTX_get_cert_store(ctx);

		if (!X509_STORE_load_file(st, b->crl_file)) {
			*err = strfmt("crl-file '%s': %s", b->crl_file, ssl_errstr());
			return ERR;
		}
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	return OK;
}

/* A new context with b's settings (d: the global defaults), no certificate yet. */
static SSL_CTX *new_ctx(struct ssl_bind *b, const struct ssl_defaults *d, char **err)
{
	static const unsigned char sid_ctx[] = "keel";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const struct ssl_opts *o = &b->o, *g = &d->o;
	int mode;

	if (!ctx) {
		*err = strfmt("cannot create a TLS context: %s", ssl_errstr());
		return NULL;
	}
	/* No renegotiation (a client could make the server do handshakes for free), no
	 * compression (CRIME), and a peer that closes without close_notify is an EOF: HTTP
	 * says where a message ends. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_SINGLE_ECDH_USE |
					 (o->no_ver | g->no_ver));
	if (o->no_tickets || g->no_tickets)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (!(o->prefer_client || g->prefer_client))
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Partial writes: the stream sends what it has and comes back; idle connections give
	 * their buffers back (an idle TLS connection then costs a few kB). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (!SSL_CTX_set_min_proto_version(ctx, opt_int(o->min_ver, g->min_ver, TLS1_2_VERSION)) ||
	    !SSL_CTX_set_max_proto_version(ctx, opt_int(o->max_ver, g->max_ver, 0))) {
		*err = strfmt("unsupported TLS version bounds");
		goto out_free;
	}
	if (!SSL_CTX_set_cipher_list(ctx, opt_str(o->ciphers, g->ciphers, SSL_DEFAULT_CIPHERS))) {
		*err = strfmt("ciphers '%s': %s", opt_str(o->ciphers, g->ciphers, SSL_DEFAULT_CIPHERS),
			      ssl_errstr());
		goto out_free;
	}
	if (opt_str(o->ciphersuites, g->ciphersuites, NULL) &&
	    !SSL_CTX_set_ciphersuites(ctx, opt_str(o->ciphersuites, g->ciphersuites, NULL))) {
		*err = strfmt("ciphersuites '%s': %s", opt_str(o->ciphersuites, g->ciphersuites, NULL),
			      ssl_errstr());
		goto out_free;
	}
	if (!SSL_CTX_set1_groups_list(ctx, opt_str(o->curves, g->curves, SSL_DEFAULT_CURVES))) {
		*err = strfmt("curves '%s': %s", opt_str(o->curves, g->curves, SSL_DEFAULT_CURVES),
			      ssl_errstr());
		goto out_free;
	}
	/* Needed by the session cache whenever client certificates may be asked for. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, b);
	if (b->alpn)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, b);
	if (b->ca_file && load_client_ca(ctx, b, err) != OK)
		goto out_free;
	mode = SSL_VERIFY_NONE;
	if (b->verify == SSL_VFY_OPTIONAL)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
	else if (b->verify == SSL_VFY_REQUIRED)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- one certificate file ---- */

/* A certificate with its chain and key: from path, the key from path itself or from
 * "path.key" (HAProxy's convention for split files). */
struct pem {
	X509 *x;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
};

static void pem_free(struct pem *p)
{
	X509_free(p->x);
	sk_X509_pop_free(p->chain, X509_free);
	EVP_PKEY_free(p->key);
}

static EVP_PKEY *read_key(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *k;

	if (!bio)
		return NULL;
	/* PEM_read_bio_PrivateKey() skips the certificate blocks before the key. */
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	return k;
}

static int pem_load(struct pem *p, const char *path, char **err)
{
	struct stat st;
	BIO *bio;
	X509 *ca;

	memset(p, 0, sizeof(*p));
	if (stat(path, &st) == -1) {
		*err = strfmt("certificate '%s': %s", path, strerror(errno));
		return ERR;
	}
	if (st.st_size > SSL_MAX_FILE) {
		*err = strfmt("certificate '%s': larger than %d bytes", path, SSL_MAX_FILE);
		return ERR;
	}
	bio = BIO_new_file(path, "r");
	if (!bio) {
		*err = strfmt("certificate '%s': %s", path, strerror(errno));
		return ERR;
	}
	p->x = PEM_read_bio_X509_AUX(bio, NULL, NULL, (void *)"");
	if (!p->x) {
		BIO_free(bio);
		*err = strfmt("certificate '%s': no PEM certificate in it", path);
		return ERR;
	}
	p->chain = sk_X509_new_null();
	while (p->chain && (ca = PEM_read_bio_X509(bio, NULL, NULL, (void *)"")))
		sk_X509_push(p->chain, ca);
	BIO_free(bio);
	ERR_clear_error(); /* the read that ended the chain */
	p->key = read_key(path);
	if (!p->key) {
		char *kp = strfmt("%s.key", path);

		ERR_clear_error();
		p->key = read_key(kp);
		free(kp);
	}
	if (!p->key) {
		*err = strfmt("certificate '%s': no private key in it (nor in '%s.key')", path, path);
		goto out_free;
	}
	if (!X509_check_private_key(p->x, p->key)) {
		*err = strfmt("certificate '%s': the private key does not match the certificate",
			      path);
		goto out_free;
	}
	ERR_clear_error();
	return OK;
out_free:
	ERR_clear_error();
	pem_free(p);
	return ERR;
}

static enum ssl_key_kind key_kind(EVP_PKEY *k)
{
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		return SSL_KEY_RSA;
	case EVP_PKEY_EC:
		return SSL_KEY_EC;
	default:
		return SSL_KEY_OTHER;
	}
}

static char *lower_dup(const char *s, size_t n)
{
	char *d = arena_strndup(&cfg_arena, s, n);
	size_t i;

	for (i = 0; i < n; i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	return d;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The DNS names of x's subjectAltName, or its CN when it has none. Returns the count. */
static int cert_names(X509 *x, const char **names, int max)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int i, n = 0;

	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n < max; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int len;

		if (g->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(g->d.dNSName);
		len = ASN1_STRING_length(g->d.dNSName);
		if (len > 0 && !memchr(d, 0, (size_t)len))
			names[n++] = lower_dup((const char *)d, (size_t)len);
	}
	GENERAL_NAMES_free(gens);
	if (n == 0) {
		char cn[256];
		int len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
						    sizeof(cn));

		if (len > 0)
			names[n++] = lower_dup(cn, (size_t)len);
	}
	return n;
}

static bool same_names(const struct ssl_cert_ctx *cc, const char **names, int n)
{
	int i;

	if (cc->nnames != n)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(cc->names[i], names[i]))
			return false;
	return true;
}

/* Adds name -> cc to b's tables (a wildcard as ".rest"); a name already served by an earlier
 * certificate context stays with it. */
static void add_sni(struct ssl_bind *b, const char *name, struct ssl_cert_ctx *cc)
{
	bool wild = name[0] == '*' && name[1] == '.';
	struct ssl_sni **tab = wild ? &b->wild : &b->exact;
	int *n = wild ? &b->nwild : &b->nexact, i;

	if (wild)
		name++;
	for (i = 0; i < *n; i++)
		if (!strcmp((*tab)[i].name, name))
			return;
	*tab = arena_grow(&cfg_arena, *tab, (size_t)*n, (size_t)*n + 1, sizeof(**tab));
	(*tab)[*n].name = name;
	(*tab)[*n].cc = cc;
	(*n)++;
}

/* Loads one certificate file into b: into the context that serves the same names with another
 * key type, or a new one. filters (from a crt-list line) replace the certificate's own names. */
static int load_cert(struct ssl_bind *b, const struct ssl_defaults *d, const char *path,
		     const char **filters, int nfilters, char **err)
{
	const char *names[SSL_MAX_NAMES];
	struct ssl_cert_ctx *cc = NULL;
	enum ssl_key_kind kind;
	struct pem p;
	int n, i;

	if (pem_load(&p, path, err) != OK)
		return ERR;
	kind = key_kind(p.key);
	if (nfilters) {
		for (n = 0; n < nfilters && n < SSL_MAX_NAMES; n++)
			names[n] = lower_dup(filters[n], strlen(filters[n]));
	} else {
		n = cert_names(p.x, names, SSL_MAX_NAMES);
	}
	qsort(names, (size_t)n, sizeof(*names), cmp_name);
	for (i = 0; i < b->nccs; i++)
		if (same_names(&b->ccs[i], names, n) && !(b->ccs[i].keys & kind)) {
			cc = &b->ccs[i];
			break;
		}
	if (!cc) {
		SSL_CTX *ctx = new_ctx(b, d, err);

		if (!ctx)
			goto out_free;
		b->ccs = arena_grow(&cfg_arena, b->ccs, (size_t)b->nccs, (size_t)b->nccs + 1,
				    sizeof(*b->ccs));
		cc = &b->ccs[b->nccs++];
		cc->ctx = ctx;
		cc->first = arena_strdup(&cfg_arena, path);
		cc->names = arena_alloc(&cfg_arena, sizeof(*cc->names) * (size_t)(n ? n : 1));
		memcpy(cc->names, names, sizeof(*names) * (size_t)n);
		cc->nnames = n;
	}
	if (!SSL_CTX_use_cert_and_key(cc->ctx, p.x, p.key, p.chain, 1)) {
		*err = strfmt("certificate '%s': %s", path, ssl_errstr());
		goto out_free;
	}
	cc->keys |= kind;
	pem_free(&p);
	return OK;
out_free:
	pem_free(&p);
	return ERR;
}

/* ---- crt folders and crt-list files ---- */

/* Files next to a certificate that are not certificates (HAProxy's conventions). */
static bool not_a_cert(const char *name)
{
	static const char *const ext[] = {".key", ".ocsp", ".issuer", ".sctl", ".crl"};
	size_t i, n = strlen(name), e;

	if (name[0] == '.')
		return true;
	for (i = 0; i < ARRAY_SIZE(ext); i++) {
		e = strlen(ext[i]);
		if (n > e && !strcmp(name + n - e, ext[i]))
			return true;
	}
	return false;
}

static int load_dir(struct ssl_bind *b, const struct ssl_defaults *d, const char *dir, char **err)
{
	struct dirent **ents;
	int n, i, r = OK, loaded = 0;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		*err = strfmt("crt '%s': %s", dir, strerror(errno));
		return ERR;
	}
	for (i = 0; i < n; i++) {
		char *path;
		struct stat st;

		if (r == OK && !not_a_cert(ents[i]->d_name)) {
			path = strfmt("%s/%s", dir, ents[i]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				r = load_cert(b, d, path, NULL, 0, err);
				loaded++;
			}
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
	if (r == OK && !loaded) {
		*err = strfmt("crt '%s': no certificate in this folder", dir);
		r = ERR;
	}
	return r;
}

char *ssl_base_path(const char *base, const char *path)
{
	char *tmp, *out;

	if (!base || path[0] == '/')
		return arena_strdup(&cfg_arena, path);
	tmp = strfmt("%s/%s", base, path);
	out = arena_strdup(&cfg_arena, tmp);
	free(tmp);
	return out;
}

/* One crt-list line: "PATH [ [options] ] [SNI filter...]". Options in brackets would need a
 * context of their own per line; they are refused for now (docs/configuration.md). */
static int crt_list_line(struct ssl_bind *b, const struct ssl_defaults *d, const char *list,
			 int lineno, char *line, char **err)
{
	const char *filters[SSL_MAX_NAMES];
	char *tok, *save = NULL, *path;
	int n = 0;

	tok = strtok_r(line, " \t", &save);
	if (!tok)
		return OK;
	path = ssl_base_path(d->crt_base, tok);
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (tok[0] == '[') {
			*err = strfmt("crt-list '%s' line %d: per-certificate options in brackets are "
				      "not supported yet", list, lineno);
			return ERR;
		}
		if (tok[0] == '!')
			continue; /* a negative filter: the name is simply not added */
		if (n == SSL_MAX_NAMES) {
			*err = strfmt("crt-list '%s' line %d: more than %d names", list, lineno,
				      SSL_MAX_NAMES);
			return ERR;
		}
		filters[n++] = tok;
	}
	return load_cert(b, d, path, filters, n, err);
}

static int load_list(struct ssl_bind *b, const struct ssl_defaults *d, const char *list,
		     char **err)
{
	FILE *f = fopen(list, "r");
	char line[4096];
	int lineno = 0, r = OK;

	if (!f) {
		*err = strfmt("crt-list '%s': %s", list, strerror(errno));
		return ERR;
	}
	while (r == OK && fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		char *p = line;

		lineno++;
		if (n && line[n - 1] != '\n' && !feof(f)) {
			*err = strfmt("crt-list '%s' line %d: longer than %zu bytes", list, lineno,
				      sizeof(line) - 2);
			r = ERR;
			break;
		}
		line[strcspn(line, "#\r\n")] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p)
			r = crt_list_line(b, d, list, lineno, p, err);
	}
	fclose(f);
	if (r == OK && b->nccs == 0) {
		*err = strfmt("crt-list '%s': no certificate in it", list);
		r = ERR;
	}
	return r;
}

/* ---- the bind ---- */

static int cmp_sni(const void *a, const void *b)
{
	return strcmp(((const struct ssl_sni *)a)->name, ((const struct ssl_sni *)b)->name);
}

int ssl_bind_build(struct ssl_bind *b, const struct ssl_defaults *d, char **err)
{
	int i;

	if (b->built)
		return OK;
	b->built = true; /* even when it fails: ssl_bind_free() frees what was made */
	for (i = 0; i < b->ncrt; i++) {
		const struct ssl_crt_src *src = &b->crt[i];
		struct stat st;
		int r;

		if (src->is_list)
			r = load_list(b, d, src->path, err);
		else if (stat(src->path, &st) == 0 && S_ISDIR(st.st_mode))
			r = load_dir(b, d, src->path, err);
		else
			r = load_cert(b, d, src->path, NULL, 0, err);
		if (r != OK)
			return ERR;
	}
	if (!b->nccs) {
		*err = strfmt("'ssl' needs at least one certificate ('crt' or 'crt-list')");
		return ERR;
	}
	b->def = &b->ccs[0];
	for (i = 0; i < b->nccs; i++) {
		int k;

		for (k = 0; k < b->ccs[i].nnames; k++)
			add_sni(b, b->ccs[i].names[k], &b->ccs[i]);
	}
	qsort(b->exact, (size_t)b->nexact, sizeof(*b->exact), cmp_sni);
	qsort(b->wild, (size_t)b->nwild, sizeof(*b->wild), cmp_sni);
	return OK;
}

void ssl_bind_free(struct ssl_bind *b)
{
	int i;

	for (i = 0; i < b->nccs; i++)
		SSL_CTX_free(b->ccs[i].ctx);
	b->nccs = 0;
	b->built = false;
}

static struct ssl_cert_ctx *find(const struct ssl_sni *tab, int n, const char *name)
{
	struct ssl_sni key = {.name = name};
	const struct ssl_sni *e = n ? bsearch(&key, tab, (size_t)n, sizeof(*tab), cmp_sni) : NULL;

	return e ? e->cc : NULL;
}

struct ssl_cert_ctx *ssl_bind_select(const struct ssl_bind *b, const char *name)
{
	char low[256];
	struct ssl_cert_ctx *cc;
	const char *dot;
	size_t i, n;

	if (!name || (n = strlen(name)) >= sizeof(low))
		return b->strict_sni ? NULL : b->def;
	for (i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	if ((cc = find(b->exact, b->nexact, low)))
		return cc;
	/* A wildcard covers exactly one label: "a.example.org" matches "*.example.org". */
	dot = strchr(low, '.');
	if (dot && dot != low && (cc = find(b->wild, b->nwild, dot)))
		return cc;
	return b->strict_sni ? NULL : b->def;
}
