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
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <keel/arena.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/log.h>
#include <keel/sbuf.h>
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

const char *ssl_errstr(void)
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
	SSL_CTX *ctx;

	if (!cc) {
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	ctx = atomic_load(&cc->ctx);
	if (ctx != SSL_get_SSL_CTX(ssl) && !SSL_set_SSL_CTX(ssl, ctx))
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

	/* OpenSSL would only say "system lib". */
	if (access(b->ca_file, R_OK) != 0) {
		*err = strfmt("ca-file '%s': %s", b->ca_file, strerror(errno));
		return ERR;
	}
	if (b->crl_file && access(b->crl_file, R_OK) != 0) {
		*err = strfmt("crl-file '%s': %s", b->crl_file, strerror(errno));
		return ERR;
	}

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

int ssl_ctx_apply_opts(SSL_CTX *ctx, const struct ssl_opts *o, const struct ssl_opts *g, char **err)
{
	const char *ciphers = opt_str(o->ciphers, g->ciphers, SSL_DEFAULT_CIPHERS);
	const char *suites = opt_str(o->ciphersuites, g->ciphersuites, NULL);
	const char *curves = opt_str(o->curves, g->curves, SSL_DEFAULT_CURVES);

	/* No renegotiation (a peer could make keel do handshakes for free), no compression
	 * (CRIME), and a peer that closes without close_notify is an EOF: HTTP says where a
	 * message ends. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF | (o->no_ver | g->no_ver));
	if (o->no_tickets || g->no_tickets)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (!SSL_CTX_set_min_proto_version(ctx, opt_int(o->min_ver, g->min_ver, TLS1_2_VERSION)) ||
	    !SSL_CTX_set_max_proto_version(ctx, opt_int(o->max_ver, g->max_ver, 0))) {
		*err = strfmt("unsupported TLS version bounds");
		return ERR;
	}
	if (!SSL_CTX_set_cipher_list(ctx, ciphers)) {
		*err = strfmt("ciphers '%s': %s", ciphers, ssl_errstr());
		return ERR;
	}
	if (suites && !SSL_CTX_set_ciphersuites(ctx, suites)) {
		*err = strfmt("ciphersuites '%s': %s", suites, ssl_errstr());
		return ERR;
	}
	if (!SSL_CTX_set1_groups_list(ctx, curves)) {
		*err = strfmt("curves '%s': %s", curves, ssl_errstr());
		return ERR;
	}
	return OK;
}

/* A new context with b's settings (d: the global defaults), no certificate yet. */
static SSL_CTX *new_ctx(struct ssl_bind *b, const struct ssl_defaults *d, char **err)
{
	static const unsigned char sid_ctx[] = "keel";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int mode;

	if (!ctx) {
		*err = strfmt("cannot create a TLS context: %s", ssl_errstr());
		return NULL;
	}
	if (ssl_ctx_apply_opts(ctx, &b->o, &d->o, err) != OK)
		goto out_free;
	/* Session tickets with keys that outlive the process (ssl-tickets.c). */
	if (!(b->o.no_tickets || d->o.no_tickets) && ssl_tickets_ctx(ctx, b->tickets, err) != OK)
		goto out_free;
	if (!(b->o.prefer_client || d->o.prefer_client))
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Partial writes: the stream sends what it has and comes back; idle connections give
	 * their buffers back (an idle TLS connection then costs a few kB). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/* Needed by the session cache whenever client certificates may be asked for. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* One TLS 1.3 ticket per handshake (OpenSSL sends two after a full one): a client resumes
	 * its next connection with it and gets a new one then (ssl-tickets.c), so the second
	 * ticket would cost an encryption per full handshake for the few clients that open two
	 * connections at once before their first resumes. */
	SSL_CTX_set_num_tickets(ctx, 1);
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

/* A certificate with its chain and key, parsed from PEM text, and the OCSP response to staple
 * with it (DER, from "FILE.ocsp"; NULL: none). */
struct pem {
	X509 *x;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	unsigned char *ocsp;
	size_t ocsp_len;
};

static void pem_free(struct pem *p)
{
	X509_free(p->x);
	sk_X509_pop_free(p->chain, X509_free);
	EVP_PKEY_free(p->key);
	free(p->ocsp);
	memset(p, 0, sizeof(*p));
}

/* The whole of a file (at most SSL_MAX_FILE bytes), malloc'd; dirfd: AT_FDCWD, or the folder
 * opened before chroot (the watcher). NULL with *err set. */
static char *read_all(int dirfd, const char *path, size_t *len, char **err)
{
	const char *name = dirfd == AT_FDCWD ? path : strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	struct stat st;
	ssize_t n;

	if (fd == -1 || fstat(fd, &st) == -1) {
		*err = strfmt("'%s': %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size > SSL_MAX_FILE) {
		*err = strfmt("'%s': larger than %d bytes", path, SSL_MAX_FILE);
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		*err = strfmt("'%s': short read", path);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = (size_t)n;
out:
	if (fd != -1)
		close(fd);
	return buf;
}

static EVP_PKEY *parse_key(const char *buf, size_t len)
{
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	EVP_PKEY *k;

	if (!bio)
		return NULL;
	/* PEM_read_bio_PrivateKey() skips the certificate blocks before the key. */
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	ERR_clear_error();
	return k;
}

/* Parses buf: the certificate first, then its chain, the key anywhere in it or in keybuf (a
 * split "NAME.key" file; may be NULL). name is for the messages. */
static int pem_parse(struct pem *p, const char *buf, size_t len, const char *keybuf, size_t keylen,
		     const char *name, char **err)
{
	BIO *bio;
	X509 *ca;

	memset(p, 0, sizeof(*p));
	if (len > SSL_MAX_FILE || !(bio = BIO_new_mem_buf(buf, (int)len))) {
		*err = strfmt("certificate '%s': too large", name);
		return ERR;
	}
	p->x = PEM_read_bio_X509_AUX(bio, NULL, NULL, (void *)"");
	if (!p->x) {
		BIO_free(bio);
		ERR_clear_error();
		*err = strfmt("certificate '%s': no PEM certificate in it", name);
		return ERR;
	}
	p->chain = sk_X509_new_null();
	while (p->chain && (ca = PEM_read_bio_X509(bio, NULL, NULL, (void *)"")))
		sk_X509_push(p->chain, ca);
	BIO_free(bio);
	ERR_clear_error(); /* the read that ended the chain */
	p->key = parse_key(buf, len);
	if (!p->key && keybuf)
		p->key = parse_key(keybuf, keylen);
	if (!p->key) {
		*err = strfmt("certificate '%s': no private key in it (nor in '%s.key')", name, name);
		goto out_free;
	}
	if (!X509_check_private_key(p->x, p->key)) {
		ERR_clear_error();
		*err = strfmt("certificate '%s': the private key does not match the certificate",
			      name);
		goto out_free;
	}
	return OK;
out_free:
	pem_free(p);
	return ERR;
}

/* Whether der is a good OCSP response for p's certificate: successful, about it (its issuer
 * is in the chain), and current. NULL when it is, else why not. */
static const char *ocsp_check(const struct pem *p, const unsigned char *der, size_t len)
{
	const unsigned char *q = der;
	OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &q, (long)len);
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *id = NULL;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	const char *why = NULL;
	X509 *issuer = NULL;
	int i, status, reason;

	if (!r || OCSP_response_status(r) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    !(bs = OCSP_response_get1_basic(r))) {
		why = "not a successful OCSP response";
		goto out;
	}
	for (i = 0; i < sk_X509_num(p->chain); i++)
		if (X509_check_issued(sk_X509_value(p->chain, i), p->x) == X509_V_OK)
			issuer = sk_X509_value(p->chain, i);
	if (!issuer) {
		why = "the certificate's issuer is not in its chain: the response cannot be checked";
		goto out;
	}
	id = OCSP_cert_to_id(NULL, p->x, issuer);
	if (!id || !OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd)) {
		why = "the response is about another certificate";
		goto out;
	}
	if (status != V_OCSP_CERTSTATUS_GOOD)
		why = "the response does not say the certificate is good";
	else if (!OCSP_check_validity(thisupd, nextupd, 300, -1))
		why = "the response is out of date";
out:
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(r);
	ERR_clear_error();
	return why;
}

/* p's OCSP response from "path.ocsp" when there is one; a bad one is reported and left out
 * (the certificate serves without stapling). */
static void ocsp_load(struct pem *p, const char *path, int dirfd)
{
	char *op = strfmt("%s.ocsp", path), *der, *e = NULL;
	const char *base = strrchr(op, '/') ? strrchr(op, '/') + 1 : op, *why;
	struct stat st;
	size_t len;

	if (fstatat(dirfd, dirfd == AT_FDCWD ? op : base, &st, 0) != 0) {
		free(op);
		return;
	}
	der = read_all(dirfd, op, &len, &e);
	why = der ? ocsp_check(p, (unsigned char *)der, len) : e;
	if (why) {
		keel_log(LOG_LVL_WARNING, "OCSP response '%s' not stapled: %s", op, why);
		free(der);
	} else {
		p->ocsp = (unsigned char *)der;
		p->ocsp_len = len;
	}
	free(e);
	free(op);
}

/* Reads and parses the file of f (the key from it or from "path.key", HAProxy's convention for
 * split files), and its OCSP response from "path.ocsp". */
static int pem_load_file(struct pem *p, struct ssl_cert_file *f, int dirfd, char **err)
{
	size_t len, keylen = 0;
	char *buf = read_all(dirfd, f->path, &len, err), *keybuf = NULL, *kp, *kerr = NULL;
	struct stat st;
	int r;

	if (!buf) {
		char *e = *err;

		*err = strfmt("certificate %s", e);
		free(e);
		return ERR;
	}
	kp = strfmt("%s.key", f->path);
	if (fstatat(dirfd, dirfd == AT_FDCWD ? kp : strrchr(kp, '/') ? strrchr(kp, '/') + 1 : kp, &st,
		    0) == 0)
		keybuf = read_all(dirfd, kp, &keylen, &kerr);
	free(kerr);
	free(kp);
	r = pem_parse(p, buf, len, keybuf, keylen, f->path, err);
	if (r == OK)
		ocsp_load(p, f->path, dirfd);
	if (keybuf)
		OPENSSL_cleanse(keybuf, keylen);
	OPENSSL_cleanse(buf, len);
	free(keybuf);
	free(buf);
	return r;
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

/* The names x serves: the DNS names of its subjectAltName and its CN (HAProxy takes both).
 * Returns the count. */
static int cert_names(X509 *x, const char **names, int max)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	char cn[256];
	int i, n = 0, len;

	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n < max; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;

		if (g->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(g->d.dNSName);
		len = ASN1_STRING_length(g->d.dNSName);
		if (len > 0 && !memchr(d, 0, (size_t)len))
			names[n++] = lower_dup((const char *)d, (size_t)len);
	}
	GENERAL_NAMES_free(gens);
	len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	if (len > 0 && n < max && !memchr(cn, ' ', (size_t)len)) {
		const char *low = lower_dup(cn, (size_t)len);

		for (i = 0; i < n && strcmp(names[i], low); i++)
			;
		if (i == n)
			names[n++] = low;
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

/* Every certificate file loaded (all binds), for the watcher and the admin socket. */
static struct ssl_cert_file **files;
static int nfiles, files_cap;
/* Contexts replaced at runtime: a worker may still be between reading the pointer and taking
 * its own reference (SSL_new()), so they are freed at the next configuration reset only (a few
 * kB each; certificates change rarely). */
static SSL_CTX **retired;
static int nretired, retired_cap;
/* Replacements come from the admin thread and the main thread's watcher. */
static pthread_mutex_t replace_lock = PTHREAD_MUTEX_INITIALIZER;

/* The OCSP responses a context staples, by certificate: made with the context, unchanged while
 * it serves (a new response builds a new context). Freed at the configuration reset. */
struct ocsp_set {
	int n;
	struct {
		X509 *x;
		unsigned char *der;
		size_t len;
	} e[SSL_CC_MAX_FILES];
};

static struct ocsp_set **ocsp_sets;
static int nocsp_sets, ocsp_sets_cap;

static int status_cb(SSL *ssl, void *arg)
{
	const struct ocsp_set *os = arg;
	X509 *x = SSL_get_certificate(ssl);
	int i;

	for (i = 0; os && i < os->n; i++)
		if (os->e[i].x == x) {
			unsigned char *copy = OPENSSL_malloc(os->e[i].len);

			if (!copy)
				return SSL_TLSEXT_ERR_NOACK;
			memcpy(copy, os->e[i].der, os->e[i].len);
			SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)os->e[i].len); /* OpenSSL's now */
			return SSL_TLSEXT_ERR_OK;
		}
	return SSL_TLSEXT_ERR_NOACK;
}

/* ctx staples p's OCSP response (taken from p) with p's certificate. */
static void staple(SSL_CTX *ctx, struct pem *p)
{
	struct ocsp_set *os = NULL;

	if (!p->ocsp)
		return;
	SSL_CTX_get_tlsext_status_arg(ctx, (void **)&os);
	if (!os) {
		os = xcalloc(1, sizeof(*os));
		if (nocsp_sets == ocsp_sets_cap) {
			ocsp_sets_cap = ocsp_sets_cap ? 2 * ocsp_sets_cap : 8;
			ocsp_sets = xrealloc(ocsp_sets, sizeof(*ocsp_sets) * (size_t)ocsp_sets_cap);
		}
		ocsp_sets[nocsp_sets++] = os;
		SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
		SSL_CTX_set_tlsext_status_arg(ctx, os);
	}
	if (os->n == SSL_CC_MAX_FILES)
		return;
	X509_up_ref(p->x);
	os->e[os->n].x = p->x;
	os->e[os->n].der = p->ocsp;
	os->e[os->n].len = p->ocsp_len;
	os->n++;
	p->ocsp = NULL;
}

static void note_served(struct ssl_cert_file *f, X509 *x)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	BIO *mem = BIO_new(BIO_s_mem());

	X509_NAME_oneline(X509_get_subject_name(x), f->subject, sizeof(f->subject));
	snprintf(f->serial, sizeof(f->serial), "%s", hex ? hex : "?");
	f->not_after[0] = '\0';
	if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(x))) {
		int n = BIO_read(mem, f->not_after, sizeof(f->not_after) - 1);

		f->not_after[n > 0 ? n : 0] = '\0';
	}
	BIO_free(mem);
	OPENSSL_free(hex);
	BN_free(bn);
}

/* What the file is now (fstatat through its folder once the watcher prepared it): false when
 * it cannot be seen. */
static bool file_sig(const struct ssl_cert_file *f, struct stat *st)
{
	const char *base = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;

	if (f->dirfd >= 0)
		return fstatat(f->dirfd, base, st, 0) == 0;
	return stat(f->path, st) == 0;
}

/* What f's "FILE.ocsp" is now: 0 when there is none. */
static int64_t ocsp_sig(const struct ssl_cert_file *f)
{
	char *op = strfmt("%s.ocsp", f->path);
	const char *base = strrchr(op, '/') ? strrchr(op, '/') + 1 : op;
	struct stat st;
	int r = f->dirfd >= 0 ? fstatat(f->dirfd, base, &st, 0) : stat(op, &st);

	free(op);
	if (r != 0)
		return 0;
	return ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec) ^
	       ((int64_t)st.st_ino << 20) ^ (int64_t)st.st_size;
}

static void note_sig(struct ssl_cert_file *f, const struct stat *st)
{
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	f->ocsp_sig = ocsp_sig(f);
}

/* Loads one certificate file into b: into the context that serves the same names with another
 * key type, or a new one. filters (from a crt-list line) replace the certificate's own names. */
static int load_cert(struct ssl_bind *b, const struct ssl_defaults *d, const char *path,
		     const char **filters, int nfilters, char **err)
{
	const char *names[SSL_MAX_NAMES];
	struct ssl_cert_file *f = arena_alloc(&cfg_arena, sizeof(*f));
	struct ssl_cert_ctx *cc = NULL;
	enum ssl_key_kind kind;
	struct stat st;
	struct pem p;
	int n, i;

	f->path = arena_strdup(&cfg_arena, path);
	f->b = b;
	f->dirfd = -1;
	if (file_sig(f, &st))
		note_sig(f, &st);
	if (pem_load_file(&p, f, AT_FDCWD, err) != OK)
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
		if (same_names(&b->ccs[i], names, n) && !(b->ccs[i].keys & kind) &&
		    b->ccs[i].nfiles < SSL_CC_MAX_FILES) {
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
		atomic_init(&cc->ctx, ctx);
		cc->first = f->path;
		cc->names = arena_alloc(&cfg_arena, sizeof(*cc->names) * (size_t)(n ? n : 1));
		memcpy(cc->names, names, sizeof(*names) * (size_t)n);
		cc->nnames = n;
	}
	if (!SSL_CTX_use_cert_and_key(atomic_load(&cc->ctx), p.x, p.key, p.chain, 1)) {
		*err = strfmt("certificate '%s': %s", path, ssl_errstr());
		goto out_free;
	}
	staple(atomic_load(&cc->ctx), &p);
	cc->keys |= kind;
	f->cc = (int)(cc - b->ccs);
	cc->files[cc->nfiles++] = f;
	note_served(f, p.x);
	if (nfiles == files_cap) {
		files_cap = files_cap ? 2 * files_cap : 16;
		files = xrealloc(files, sizeof(*files) * (size_t)files_cap);
	}
	files[nfiles++] = f;
	pem_free(&p);
	return OK;
out_free:
	pem_free(&p);
	return ERR;
}

int ssl_ctx_use_pem(SSL_CTX *ctx, const char *path, char **err)
{
	struct ssl_cert_file f = {.path = path, .dirfd = -1};
	struct pem p;
	int r = OK;

	if (pem_load_file(&p, &f, AT_FDCWD, err) != OK)
		return ERR;
	if (!SSL_CTX_use_cert_and_key(ctx, p.x, p.key, p.chain, 1)) {
		*err = strfmt("certificate '%s': %s", path, ssl_errstr());
		r = ERR;
	}
	pem_free(&p);
	return r;
}

/* ---- replacing a certificate at runtime ---- */

/* A new context for changed's context: changed's certificate from text (or from its file when
 * text is NULL), the context's other certificates (another key type) from their files. The
 * names it serves stay those of the configuration. Swapped in once complete. */
static int replace(struct ssl_cert_file *changed, const char *text, size_t len, char **err)
{
	struct ssl_bind *b = changed->b;
	struct ssl_cert_ctx *cc = &b->ccs[changed->cc];
	struct pem ps[SSL_CC_MAX_FILES];
	SSL_CTX *ctx, *old;
	int i, r = ERR;

	memset(ps, 0, sizeof(ps));
	for (i = 0; i < cc->nfiles; i++) {
		struct ssl_cert_file *f = cc->files[i];

		if (f == changed && text)
			r = pem_parse(&ps[i], text, len, NULL, 0, f->path, err);
		else
			r = pem_load_file(&ps[i], f, f->dirfd >= 0 ? f->dirfd : AT_FDCWD, err);
		if (r != OK)
			goto out;
	}
	r = ERR;
	ctx = new_ctx(b, &b->d, err);
	if (!ctx)
		goto out;
	for (i = 0; i < cc->nfiles; i++)
		if (!SSL_CTX_use_cert_and_key(ctx, ps[i].x, ps[i].key, ps[i].chain, 1)) {
			*err = strfmt("certificate '%s': %s", cc->files[i]->path, ssl_errstr());
			SSL_CTX_free(ctx);
			goto out;
		} else {
			staple(ctx, &ps[i]);
		}
	old = atomic_exchange(&cc->ctx, ctx);
	if (nretired == retired_cap) {
		retired_cap = retired_cap ? 2 * retired_cap : 8;
		retired = xrealloc(retired, sizeof(*retired) * (size_t)retired_cap);
	}
	retired[nretired++] = old;
	for (i = 0; i < cc->nfiles; i++)
		note_served(cc->files[i], ps[i].x);
	r = OK;
out:
	for (i = 0; i < cc->nfiles; i++)
		pem_free(&ps[i]);
	return r;
}

static struct ssl_cert_file *file_by_path(const char *path)
{
	int i;

	for (i = 0; i < nfiles; i++)
		if (!strcmp(files[i]->path, path))
			return files[i];
	return NULL;
}

int ssl_cert_set(const char *path, const char *text, size_t len, char **err)
{
	struct ssl_cert_file *f;
	struct pem p;
	int r = ERR;

	pthread_mutex_lock(&replace_lock);
	f = file_by_path(path);
	if (!f) {
		*err = strfmt("no certificate loaded from '%s' (\"show ssl cert\" lists them)", path);
		goto out;
	}
	/* Checked now, so that the operator learns at once. */
	if (pem_parse(&p, text, len, NULL, 0, path, err) != OK)
		goto out;
	pem_free(&p);
	if (f->pending) {
		OPENSSL_cleanse(f->pending, f->pending_len);
		free(f->pending);
	}
	f->pending = xmalloc(len + 1);
	memcpy(f->pending, text, len);
	f->pending[len] = '\0';
	f->pending_len = len;
	r = OK;
out:
	pthread_mutex_unlock(&replace_lock);
	return r;
}

static void drop_pending(struct ssl_cert_file *f)
{
	OPENSSL_cleanse(f->pending, f->pending_len);
	free(f->pending);
	f->pending = NULL;
	f->pending_len = 0;
}

int ssl_cert_commit(const char *path, bool abort, char **err)
{
	struct ssl_cert_file *f;
	int r = ERR;

	pthread_mutex_lock(&replace_lock);
	f = file_by_path(path);
	if (!f || !f->pending) {
		*err = strfmt("no change waiting for '%s' (\"set ssl cert\" first)", path);
		goto out;
	}
	r = abort ? OK : replace(f, f->pending, f->pending_len, err);
	if (r == OK)
		drop_pending(f);
out:
	pthread_mutex_unlock(&replace_lock);
	return r;
}

void ssl_cert_show(const char *path, struct sbuf *o)
{
	int i;

	pthread_mutex_lock(&replace_lock);
	for (i = 0; i < nfiles; i++) {
		struct ssl_cert_file *f = files[i];
		struct ssl_cert_ctx *cc = &f->b->ccs[f->cc];
		int k;

		if (path && strcmp(path, f->path))
			continue;
		sbuf_printf(o, "Filename: %s%s\n", f->path, f->pending ? " (change waiting: commit ssl cert)" : "");
		sbuf_printf(o, "Bind: %s:%d\n", f->b->file, f->b->line);
		sbuf_printf(o, "Subject: %s\nSerial: %s\nNot After: %s\nNames:", f->subject, f->serial,
			    f->not_after);
		for (k = 0; k < cc->nnames; k++)
			sbuf_printf(o, " %s", cc->names[k]);
		sbuf_printf(o, "\n\n");
	}
	pthread_mutex_unlock(&replace_lock);
}

/* The length of path's folder part (0: the current folder). */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) + (slash == path) : 0;
}

int ssl_watch_prepare(char **err)
{
	int i, k;

	for (i = 0; i < nfiles; i++) {
		struct ssl_cert_file *f = files[i];
		size_t n = dir_len(f->path);
		char *dir;

		/* One descriptor per folder: files of the same folder share it. */
		for (k = 0; k < i; k++)
			if (dir_len(files[k]->path) == n && !strncmp(files[k]->path, f->path, n))
				break;
		if (k < i) {
			f->dirfd = files[k]->dirfd;
			continue;
		}
		dir = n ? xstrndup(f->path, n) : xstrdup(".");
		f->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (f->dirfd == -1) {
			*err = strfmt("certificate folder '%s': %s", dir, strerror(errno));
			free(dir);
			return ERR;
		}
		free(dir);
	}
	return OK;
}

void ssl_watch(void)
{
	int i;

	pthread_mutex_lock(&replace_lock);
	for (i = 0; i < nfiles; i++) {
		struct ssl_cert_file *f = files[i];
		struct stat st;
		char *err = NULL;

		if (!file_sig(f, &st) || (st.st_dev == f->dev && st.st_ino == f->ino &&
					  st.st_size == f->size &&
					  (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec ==
						  f->mtime_ns && ocsp_sig(f) == f->ocsp_sig))
			continue;
		/* Tried once per version of the file: a bad one is reported once. */
		note_sig(f, &st);
		if (replace(f, NULL, 0, &err) == OK) {
			keel_log(LOG_LVL_NOTICE, "certificate '%s' (or its OCSP response) changed on disk: now serving it (%s, until %s)",
				 f->path, f->subject, f->not_after);
		} else {
			keel_log(LOG_LVL_ALERT, "certificate '%s' changed on disk but cannot be used, the previous one keeps serving: %s",
				 f->path, err);
			free(err);
		}
	}
	pthread_mutex_unlock(&replace_lock);
}

void ssl_cert_reset(void)
{
	int i;

	for (i = 0; i < nfiles; i++) {
		struct ssl_cert_file *f = files[i];
		int k;

		if (f->pending)
			drop_pending(f);
		/* close each shared folder descriptor once */
		for (k = i + 1; k < nfiles; k++)
			if (files[k]->dirfd == f->dirfd)
				files[k]->dirfd = -1;
		if (f->dirfd >= 0)
			close(f->dirfd);
	}
	for (i = 0; i < nretired; i++)
		SSL_CTX_free(retired[i]);
	for (i = 0; i < nocsp_sets; i++) {
		int k;

		for (k = 0; k < ocsp_sets[i]->n; k++) {
			X509_free(ocsp_sets[i]->e[k].x);
			free(ocsp_sets[i]->e[k].der);
		}
		free(ocsp_sets[i]);
	}
	free(ocsp_sets);
	ocsp_sets = NULL;
	nocsp_sets = ocsp_sets_cap = 0;
	free(files);
	free(retired);
	files = NULL;
	retired = NULL;
	nfiles = files_cap = nretired = retired_cap = 0;
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

int ssl_crtlist_split(char *line, char **path, const char **filters, int max, int *n, char **err)
{
	char *tok, *save = NULL;

	*n = 0;
	*path = strtok_r(line, " \t", &save);
	if (!*path)
		return OK;
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (tok[0] == '[') {
			*err = strfmt("per-certificate options in brackets are not supported yet");
			return ERR;
		}
		if (tok[0] == '!')
			continue; /* a negative filter: the name is simply not added */
		if (*n == max) {
			*err = strfmt("more than %d names", max);
			return ERR;
		}
		filters[(*n)++] = tok;
	}
	return OK;
}

/* One crt-list line (see ssl_crtlist_split()). */
static int crt_list_line(struct ssl_bind *b, const struct ssl_defaults *d, const char *list,
			 int lineno, char *line, char **err)
{
	const char *filters[SSL_MAX_NAMES];
	char *path, *e = NULL;
	int n;

	if (ssl_crtlist_split(line, &path, filters, SSL_MAX_NAMES, &n, &e) != OK) {
		*err = strfmt("crt-list '%s' line %d: %s", list, lineno, e);
		free(e);
		return ERR;
	}
	if (!path)
		return OK;
	return load_cert(b, d, ssl_base_path(d->crt_base, path), filters, n, err);
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
	b->d = *d;
	/* Read even with no-tls-tickets: a broken file is an error either way, as in HAProxy. */
	if (b->ticket_file && ssl_tickets_load(b->ticket_file, &b->tickets, err) != OK)
		return ERR;
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
	/* qsort() of NULL is undefined even for 0 elements (UBSan stops there) */
	if (b->nexact)
		qsort(b->exact, (size_t)b->nexact, sizeof(*b->exact), cmp_sni);
	if (b->nwild)
		qsort(b->wild, (size_t)b->nwild, sizeof(*b->wild), cmp_sni);
	return OK;
}

void ssl_bind_free(struct ssl_bind *b)
{
	int i;

	for (i = 0; i < b->nccs; i++)
		SSL_CTX_free(atomic_load(&b->ccs[i].ctx));
	b->nccs = 0;
	ssl_tickets_free(b->tickets);
	b->tickets = NULL;
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
