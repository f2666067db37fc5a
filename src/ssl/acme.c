/* The ACME client (RFC 8555): one thread of its own obtains and renews the certificates that
 * "acme" sections keep, and the HTTP frontends answer the authority's HTTP-01 requests.
 *
 * The thread talks to the authority with blocking sockets and OpenSSL as a client (the
 * authority's certificate is checked against httpclient.ssl.ca-file, or the system's trusted
 * authorities); it never touches a connection of the workers. For each certificate it:
 * reads the file, and when it is missing, self-signed (the temporary one written at start), does
 * not carry every configured name, or expires within the renewal threshold: makes an order,
 * publishes the key authorization of each HTTP-01 challenge in the token table, asks the
 * authority to validate, waits for the authorizations, finalizes with a CSR for a new key, and
 * downloads the chain. The chain and the key are written to the certificate's file (a temporary
 * file in the same folder, 0600, fsync, rename): the certificate watcher of src/ssl then loads
 * it into the running contexts, without a reload. A failure is logged and retried after
 * retry-delay, doubled at each failure up to ACME_RETRY_MAX.
 *
 * The workers only read the token table (acme_token_find()), under its mutex, for requests whose
 * path starts with /.well-known/acme-challenge/: a lock per such request, none otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <keel/acme.h>
#include <keel/common.h>
#include <keel/http.h>
#include <keel/log.h>
#include <keel/ssl.h>
#include <keel/stream.h>

#define ACME_RETRY_MAX (6 * 3600)   /* seconds: the longest delay between two failed tries */
#define ACME_RENEW_MAX (30 * 86400) /* seconds: the default threshold is at most this */
#define ACME_IO_TIMEOUT 15	    /* seconds: connect, each read, each write */
#define ACME_POLL_TRIES 120	    /* an authorization or an order is polled this many times */
#define ACME_MAX_RSP (4 << 20)	    /* a larger response is refused */
#define ACME_MAX_TOKENS 128
#define ACME_CHALLENGE "/.well-known/acme-challenge/"

/* ---- the token table, shared with the workers ---- */

struct token {
	char token[128];
	char keyauth[256];
};

static pthread_mutex_t tok_lock = PTHREAD_MUTEX_INITIALIZER;
static struct token tokens[ACME_MAX_TOKENS];
static int ntokens;

int acme_token_add(const char *token, const char *keyauth)
{
	int r = ERR;

	if (strlen(token) >= sizeof(tokens[0].token) ||
	    strlen(keyauth) >= sizeof(tokens[0].keyauth))
		return ERR;
	pthread_mutex_lock(&tok_lock);
	if (ntokens < ACME_MAX_TOKENS) {
		snprintf(tokens[ntokens].token, sizeof(tokens[0].token), "%s", token);
		snprintf(tokens[ntokens].keyauth, sizeof(tokens[0].keyauth), "%s", keyauth);
		ntokens++;
		r = OK;
	}
	pthread_mutex_unlock(&tok_lock);
	return r;
}

void acme_token_del(const char *token)
{
	int i;

	pthread_mutex_lock(&tok_lock);
	for (i = 0; i < ntokens; i++)
		if (!strcmp(tokens[i].token, token)) {
			tokens[i] = tokens[--ntokens];
			break;
		}
	pthread_mutex_unlock(&tok_lock);
}

int acme_token_find(const char *token, size_t tlen, char *out, size_t cap)
{
	int i, r = -1;

	pthread_mutex_lock(&tok_lock);
	for (i = 0; i < ntokens; i++)
		if (strlen(tokens[i].token) == tlen && !memcmp(tokens[i].token, token, tlen)) {
			r = snprintf(out, cap, "%s", tokens[i].keyauth);
			if (r >= (int)cap)
				r = -1;
			break;
		}
	pthread_mutex_unlock(&tok_lock);
	return r;
}

/* ---- the HTTP-01 service ---- */

static bool http01_on(const struct proxy *fe)
{
	(void)fe;
	return acme_certs() != NULL;
}

/* The token of a request for /.well-known/acme-challenge/TOKEN (*len bytes), or NULL. */
static const char *http01_token(const struct http_head *h, size_t *len)
{
	const char *p = http_ptr(h, h->path);
	size_t n = h->path.len, pl = sizeof(ACME_CHALLENGE) - 1, i;

	if (n <= pl || memcmp(p, ACME_CHALLENGE, pl))
		return NULL;
	p += pl;
	n -= pl;
	for (i = 0; i < n && p[i] != '?'; i++)
		;
	*len = i;
	return i ? p : NULL;
}

/* Only the tokens of a challenge in progress are claimed: other requests under the same path
 * (another ACME client behind keel) still go to the servers. */
static bool http01_claims(const struct proxy *fe, const struct http_head *h)
{
	char ka[256];
	size_t len;
	const char *t = http01_token(h, &len);

	(void)fe;
	return t && acme_token_find(t, len, ka, sizeof(ka)) >= 0;
}

static void http01_serve(struct stream *s, const struct http_head *h)
{
	char ka[256];
	size_t len;
	const char *t = http01_token(h, &len);
	int n = t ? acme_token_find(t, len, ka, sizeof(ka)) : -1;
	char *r;

	if (n < 0) {
		/* The challenge ended between the claim and now. */
		stream_error(s, 404, "ACME challenge token unknown", "PR");
		return;
	}
	r = strfmt("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
		   "content-length: %d\r\ncache-control: no-cache\r\n\r\n%s",
		   n, (s->txn->flags & TX_HEAD_REQ) ? "" : ka);
	stream_reply_heap(s, r, (uint32_t)strlen(r), 200, false);
}

const struct http_service acme_http01 = {NULL, http01_on, http01_claims, http01_serve};

/* ---- files and keys ---- */

int acme_write_file(const char *path, const char *data, size_t len, char **err)
{
	char *tmp = strfmt("%s.tmp.%d", path, (int)getpid());
	size_t off = 0;
	int fd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		*err = strfmt("cannot create '%s': %s", tmp, strerror(errno));
		free(tmp);
		return ERR;
	}
	/* An existing temporary file keeps its mode through O_TRUNC. */
	if (fchmod(fd, 0600) == -1)
		goto out_err;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			goto out_err;
		}
		off += (size_t)w;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto out_err;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto out_err;
	free(tmp);
	return OK;
out_err:
	*err = strfmt("cannot write '%s': %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	return ERR;
}

static EVP_PKEY *key_new(enum acme_keytype type, int bits, const char *curve)
{
	return type == ACME_KEY_RSA ? EVP_RSA_gen((unsigned)bits) : EVP_EC_gen(curve);
}

/* PEM text of the certificates in chain (may be NULL) followed by key, into a heap string. */
static char *pem_bundle(const char *chain, X509 *x, EVP_PKEY *key, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long n;

	if (!bio)
		return NULL;
	if (chain)
		BIO_puts(bio, chain);
	if ((!x || PEM_write_bio_X509(bio, x)) &&
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		n = BIO_get_mem_data(bio, &p);
		out = xmalloc((size_t)n + 1);
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
		*len = (size_t)n;
	}
	BIO_free(bio);
	return out;
}

static X509_EXTENSION *san_ext(const char **domains, int n)
{
	size_t cap = 16;
	char *list;
	X509_EXTENSION *e;
	int i;

	for (i = 0; i < n; i++)
		cap += strlen(domains[i]) + 5;
	list = xmalloc(cap);
	list[0] = '\0';
	for (i = 0; i < n; i++) {
		strcat(list, i ? ",DNS:" : "DNS:");
		strcat(list, domains[i]);
	}
	e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, list);
	free(list);
	return e;
}

int acme_write_selfsigned(const struct acme_cert *c, char **err)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	char *pem = NULL;
	size_t len = 0;
	int r = ERR;

	if (!key || !x)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(time(NULL) & 0x7fffffff));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 90L * 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(
	    name, "O", MBSTRING_ASC,
	    (const unsigned char *)"keel temporary certificate (ACME pending)", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)c->domains[0],
				   -1, -1, 0);
	X509_set_issuer_name(x, name);
	ext = san_ext(c->domains, c->ndomains);
	if (!ext || !X509_add_ext(x, ext, -1) || !X509_sign(x, key, EVP_sha256()))
		goto out;
	pem = pem_bundle(NULL, x, key, &len);
	if (!pem)
		goto out;
	r = acme_write_file(c->path, pem, len, err);
	free(pem);
	EVP_PKEY_free(key);
	X509_free(x);
	X509_EXTENSION_free(ext);
	return r;
out:
	*err = strfmt("cannot make a temporary certificate for '%s': %s", c->path, ssl_errstr());
	EVP_PKEY_free(key);
	X509_free(x);
	X509_EXTENSION_free(ext);
	return r;
}

/* ---- base64url ---- */

static char *b64url(const unsigned char *d, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, d, (int)n), i;

	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (i = 0; i < len; i++)
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	return out;
}

static char *b64url_str(const char *s)
{
	return b64url((const unsigned char *)s, strlen(s));
}

static char *b64url_bn(const EVP_PKEY *k, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;
	char *out = NULL;

	if (!EVP_PKEY_get_bn_param(k, param, &bn))
		return NULL;
	n = pad ? pad : BN_num_bytes(bn);
	if (n <= (int)sizeof(buf) && BN_bn2binpad(bn, buf, n) == n)
		out = b64url(buf, (size_t)n);
	BN_free(bn);
	return out;
}

/* ---- the runtime state (the client thread's alone) ---- */

/* An account: one per section. */
struct acct {
	struct acme_sect *s;
	EVP_PKEY *key;
	const char *alg; /* ES256, ES384, RS256 */
	const EVP_MD *md;
	int sig_len; /* ECDSA: the length of r and s each */
	json_t *jwk;
	char *thumb; /* the JWK thumbprint, base64url */
	char *kid;   /* the account URL, once registered */
	char *new_nonce, *new_account, *new_order;
	char nonce[256];
};

struct job {
	struct acme_cert *c;
	struct acct *a;
	time_t next; /* when to look at it again */
	int fails;   /* in a row */
};

static pthread_t thread;
static bool started;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cond;
static atomic_bool stopping;
static int cur_fd = -1; /* the socket of the exchange in progress, for acme_stop() */
static SSL_CTX *cli_ctx;
static struct acct *accts;
static int naccts;
static struct job *jobs;
static int njobs;

/* Waits secs seconds, or less when keel stops: false then. */
static bool nap(double secs)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&run_lock);
	while (!stopping && pthread_cond_timedwait(&run_cond, &run_lock, &ts) != ETIMEDOUT)
		;
	stop = stopping;
	pthread_mutex_unlock(&run_lock);
	return !stop;
}

/* ---- a small HTTPS client (one connection per request: a few requests a day) ---- */

struct rsp {
	int status;
	char *raw; /* the whole response; body points into it */
	char *body;
	size_t len;
	char location[2048];
	char nonce[256];
	char ctype[128];
	int retry_after;
};

static void rsp_free(struct rsp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

struct url {
	char host[256];
	char port[8];
	const char *path;
};

static int url_parse(const char *u, struct url *o, char **err)
{
	const char *h, *end, *colon;
	size_t hl;

	if (strncasecmp(u, "https://", 8)) {
		*err = strfmt("'%s': only https:// URLs are supported", u);
		return ERR;
	}
	h = u + 8;
	end = h + strcspn(h, "/?#");
	if (*end && *end != '/') {
		*err = strfmt("'%s': the host must be followed by a path", u);
		return ERR;
	}
	o->path = *end ? end : "/";
	snprintf(o->port, sizeof(o->port), "443");
	if (*h == '[') {
		colon = memchr(h, ']', (size_t)(end - h));
		if (!colon) {
			*err = strfmt("'%s': bad address", u);
			return ERR;
		}
		hl = (size_t)(colon - h - 1);
		h++;
		colon = colon + 1 < end && colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon ? colon : end) - h);
	}
	if (hl == 0 || hl >= sizeof(o->host)) {
		*err = strfmt("'%s': bad host", u);
		return ERR;
	}
	memcpy(o->host, h, hl);
	o->host[hl] = '\0';
	if (strspn(o->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
	    hl) {
		*err = strfmt("'%s': bad host", u);
		return ERR;
	}
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);

		if (pl == 0 || pl >= sizeof(o->port)) {
			*err = strfmt("'%s': bad port", u);
			return ERR;
		}
		memcpy(o->port, colon + 1, pl);
		o->port[pl] = '\0';
		if (strspn(o->port, "0123456789") != pl) {
			*err = strfmt("'%s': bad port", u);
			return ERR;
		}
	}
	return OK;
}

static int tcp_connect(const struct url *u, char **err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	struct timeval tv = {ACME_IO_TIMEOUT, 0};
	int fd = -1, e;

	e = getaddrinfo(u->host, u->port, &hints, &res);
	if (e) {
		*err = strfmt("cannot resolve '%s': %s", u->host, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
			   sizeof(tv)); /* also bounds connect() */
		pthread_mutex_lock(&run_lock);
		if (stopping) {
			pthread_mutex_unlock(&run_lock);
			close(fd);
			fd = -1;
			break;
		}
		cur_fd = fd;
		pthread_mutex_unlock(&run_lock);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		pthread_mutex_lock(&run_lock);
		cur_fd = -1;
		close(fd);
		pthread_mutex_unlock(&run_lock);
		fd = -1;
		errno = e;
	}
	if (fd == -1)
		*err = strfmt("cannot connect to %s:%s: %s", u->host, u->port,
			      stopping ? "stopping" : strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static void tcp_close(int fd)
{
	pthread_mutex_lock(&run_lock);
	cur_fd = -1;
	close(fd);
	pthread_mutex_unlock(&run_lock);
}

/* The value of header name in the head [p, end), copied into out (cap bytes); false if absent. */
static bool header(const char *p, const char *end, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1;
			size_t n;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			n = (size_t)(eol - v);
			while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			if (n >= cap)
				n = cap - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		p = eol + 2;
	}
	return false;
}

/* Decodes a chunked body in place: its length, or -1 when malformed. */
static long dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *end;
		unsigned long n;
		const char *eol = memmem(b + in, len - in, "\r\n", 2);

		if (!eol)
			return -1;
		errno = 0;
		n = strtoul(b + in, &end, 16);
		if (errno || end == b + in || n > len)
			return -1;
		in = (size_t)(eol - b) + 2;
		if (n == 0)
			return (long)out;
		if (in + n + 2 > len || memcmp(b + in + n, "\r\n", 2))
			return -1;
		memmove(b + out, b + in, n);
		out += n;
		in += n + 2;
	}
}

/* Parses the response in r->raw (len bytes). OK or ERR. */
static int rsp_parse(struct rsp *r, size_t len, char **err)
{
	char *eoh = memmem(r->raw, len, "\r\n\r\n", 4), *line_end, te[64], cl[32], ra[32];
	size_t hlen;

	if (!eoh || strncmp(r->raw, "HTTP/1.", 7) || len < 12) {
		*err = strfmt("malformed HTTP response");
		return ERR;
	}
	r->status = atoi(r->raw + 9);
	line_end = memmem(r->raw, len, "\r\n", 2);
	hlen = (size_t)(eoh - r->raw) + 4;
	header(line_end + 2, eoh + 2, "Location", r->location, sizeof(r->location));
	header(line_end + 2, eoh + 2, "Replay-Nonce", r->nonce, sizeof(r->nonce));
	header(line_end + 2, eoh + 2, "Content-Type", r->ctype, sizeof(r->ctype));
	if (header(line_end + 2, eoh + 2, "Retry-After", ra, sizeof(ra)))
		r->retry_after = atoi(ra);
	r->body = r->raw + hlen;
	r->len = len - hlen;
	if (header(line_end + 2, eoh + 2, "Transfer-Encoding", te, sizeof(te)) &&
	    strcasestr(te, "chunked")) {
		long n = dechunk(r->body, r->len);

		if (n < 0) {
			*err = strfmt("malformed chunked response body");
			return ERR;
		}
		r->len = (size_t)n;
	} else if (header(line_end + 2, eoh + 2, "Content-Length", cl, sizeof(cl))) {
		unsigned long n = strtoul(cl, NULL, 10);

		if (n > r->len) {
			*err = strfmt("truncated response body");
			return ERR;
		}
		r->len = n;
	}
	r->body[r->len] = '\0';
	return OK;
}

/* One request: method on url, with body (ctype) when not NULL. OK (r filled, whatever its
 * status) or ERR (*err). */
static int http_do(const char *method, const char *url, const char *ctype, const char *body,
		   struct rsp *r, char **err)
{
	struct url u;
	SSL *ssl = NULL;
	char *req = NULL;
	size_t cap = 16384, len = 0;
	int fd, n, ret = ERR;

	memset(r, 0, sizeof(*r));
	if (url_parse(url, &u, err) != OK)
		return ERR;
	fd = tcp_connect(&u, err);
	if (fd == -1)
		return ERR;
	ssl = SSL_new(cli_ctx);
	/* No SNI for an address (RFC 6066); SSL_set1_host() checks an address against the
	 * certificate's IP names. */
	if (!ssl || !SSL_set_fd(ssl, fd) ||
	    (!strchr(u.host, ':') && strspn(u.host, "0123456789.") != strlen(u.host) &&
	     !SSL_set_tlsext_host_name(ssl, u.host)) ||
	    (!acme_client_conf()->verify_none && !SSL_set1_host(ssl, u.host))) {
		*err = strfmt("TLS setup: %s", ssl_errstr());
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);

		*err = v != X509_V_OK ? strfmt("TLS handshake with %s: certificate: %s", u.host,
					       X509_verify_cert_error_string(v))
				      : strfmt("TLS handshake with %s: %s", u.host, ssl_errstr());
		goto out;
	}
	req = strfmt("%s %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: keel-acme\r\n"
		     "Accept: application/json\r\nConnection: close\r\n"
		     "%s%s%sContent-Length: %zu\r\n\r\n%s",
		     method, u.path, u.host, strcmp(u.port, "443") ? ":" : "",
		     strcmp(u.port, "443") ? u.port : "", ctype ? "Content-Type: " : "",
		     ctype ? ctype : "", ctype ? "\r\n" : "", body ? strlen(body) : 0,
		     body ? body : "");
	if (SSL_write(ssl, req, (int)strlen(req)) != (int)strlen(req)) {
		*err = strfmt("cannot send to %s: %s", u.host, ssl_errstr());
		goto out;
	}
	r->raw = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= ACME_MAX_RSP) {
				*err = strfmt("response from %s larger than %d bytes", u.host,
					      ACME_MAX_RSP);
				goto out;
			}
			cap *= 2;
			r->raw = xrealloc(r->raw, cap);
		}
		n = SSL_read(ssl, r->raw + len, (int)(cap - len - 1));
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (n < 0 && SSL_get_error(ssl, n) != SSL_ERROR_ZERO_RETURN && !len) {
		*err = strfmt("cannot read from %s: %s", u.host, ssl_errstr());
		goto out;
	}
	r->raw[len] = '\0';
	ret = rsp_parse(r, len, err);
out:
	ERR_clear_error();
	if (ret != OK)
		rsp_free(r);
	free(req);
	SSL_free(ssl);
	tcp_close(fd);
	return ret;
}

/* ---- JSON helpers ---- */

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *rsp_json(const struct rsp *r, char **err)
{
	json_error_t je;
	json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);

	if (!j || !json_is_object(j)) {
		*err = strfmt("HTTP %d: not a JSON object (%s)", r->status, j ? "" : je.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The problem document of an error response as text, into a heap string. */
static char *problem(const struct rsp *r)
{
	json_error_t je;
	json_t *j = json_loadb(r->body, r->len, 0, &je);
	const char *type = j ? jstr(j, "type") : NULL, *detail = j ? jstr(j, "detail") : NULL;
	char *out = strfmt("HTTP %d %s%s%s", r->status, type ? type : "", detail ? ": " : "",
			   detail ? detail : "");

	json_decref(j);
	return out;
}

/* "WHAT: HTTP 400 TYPE: DETAIL" for an answer the client did not expect, malloc'd. */
static char *refused(const struct rsp *r, const char *what)
{
	char *p = problem(r), *out = strfmt("%s: %s", what, p);

	free(p);
	return out;
}

/* ---- the account ---- */

static EVP_PKEY *read_key_file(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *k;

	if (!bio)
		return NULL;
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	return k;
}

/* Loads the account key, created (ECDSA P-256, 0600) when the file does not exist. */
static int acct_key(struct acct *a, char **err)
{
	struct acme_sect *s = a->s;
	struct stat st;
	char curve[64] = "";
	char *x = NULL, *y = NULL, *n = NULL, *e = NULL, *tp;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned dl;

	if (a->key)
		return OK;
	if (stat(s->account_key, &st) == -1 && errno == ENOENT) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		size_t len;
		char *pem = k ? pem_bundle(NULL, NULL, k, &len) : NULL;

		if (!pem || acme_write_file(s->account_key, pem, len, err) != OK) {
			if (!pem)
				*err = strfmt("cannot make an account key: %s", ssl_errstr());
			free(pem);
			EVP_PKEY_free(k);
			return ERR;
		}
		free(pem);
		EVP_PKEY_free(k);
		keel_log(LOG_LVL_NOTICE, "acme %s: new account key in '%s'", s->name,
			 s->account_key);
	} else if (st.st_mode & 077) {
		keel_log(LOG_LVL_WARNING,
			 "acme %s: the account key '%s' can be read by others (mode %o)", s->name,
			 s->account_key, (unsigned)(st.st_mode & 0777));
	}
	a->key = read_key_file(s->account_key);
	if (!a->key) {
		*err = strfmt("account key '%s': %s", s->account_key, ssl_errstr());
		return ERR;
	}
	if (EVP_PKEY_get_base_id(a->key) == EVP_PKEY_RSA) {
		a->alg = "RS256";
		a->md = EVP_sha256();
		n = b64url_bn(a->key, OSSL_PKEY_PARAM_RSA_N, 0);
		e = b64url_bn(a->key, OSSL_PKEY_PARAM_RSA_E, 0);
		if (!n || !e)
			goto out_bad;
		a->jwk = json_pack("{s:s, s:s, s:s}", "e", e, "kty", "RSA", "n", n);
		tp = strfmt("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, n);
	} else if (EVP_PKEY_get_base_id(a->key) == EVP_PKEY_EC &&
		   EVP_PKEY_get_group_name(a->key, curve, sizeof(curve), NULL)) {
		const char *crv;

		if (!strcmp(curve, "prime256v1")) {
			crv = "P-256", a->alg = "ES256", a->md = EVP_sha256(), a->sig_len = 32;
		} else if (!strcmp(curve, "secp384r1")) {
			crv = "P-384", a->alg = "ES384", a->md = EVP_sha384(), a->sig_len = 48;
		} else {
			goto out_bad;
		}
		x = b64url_bn(a->key, OSSL_PKEY_PARAM_EC_PUB_X, a->sig_len);
		y = b64url_bn(a->key, OSSL_PKEY_PARAM_EC_PUB_Y, a->sig_len);
		if (!x || !y)
			goto out_bad;
		a->jwk = json_pack("{s:s, s:s, s:s, s:s}", "crv", crv, "kty", "EC", "x", x, "y", y);
		/* RFC 7638: the required members, in lexicographic order, no white space. */
		tp = strfmt("{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", crv, x, y);
	} else {
		goto out_bad;
	}
	EVP_Digest(tp, strlen(tp), dg, &dl, EVP_sha256(), NULL);
	free(tp);
	a->thumb = b64url(dg, dl);
	free(x), free(y), free(n), free(e);
	return OK;
out_bad:
	*err = strfmt("account key '%s': RSA, ECDSA P-256 or P-384 expected", s->account_key);
	free(x), free(y), free(n), free(e);
	EVP_PKEY_free(a->key);
	a->key = NULL;
	return ERR;
}

/* Signs "protected.payload" (JWS, RFC 7515) with the account key: base64url. */
static char *jws_sign(struct acct *a, const char *input)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024], raw[132];
	size_t sl = sizeof(sig);
	char *out = NULL;

	if (!md || EVP_DigestSignInit(md, NULL, a->md, NULL, a->key) != 1 ||
	    EVP_DigestSign(md, sig, &sl, (const unsigned char *)input, strlen(input)) != 1)
		goto out;
	if (a->sig_len) {
		/* JWS wants ECDSA's r and s as two fixed-size numbers, not DER. */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
		const BIGNUM *r, *s;

		if (!es)
			goto out;
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, raw, a->sig_len) == a->sig_len &&
		    BN_bn2binpad(s, raw + a->sig_len, a->sig_len) == a->sig_len)
			out = b64url(raw, (size_t)a->sig_len * 2);
		ECDSA_SIG_free(es);
	} else {
		out = b64url(sig, sl);
	}
out:
	EVP_MD_CTX_free(md);
	return out;
}

static int get_nonce(struct acct *a, char **err)
{
	struct rsp r;

	if (a->nonce[0])
		return OK;
	if (http_do("HEAD", a->new_nonce, NULL, NULL, &r, err) != OK)
		return ERR;
	snprintf(a->nonce, sizeof(a->nonce), "%s", r.nonce);
	rsp_free(&r);
	if (!a->nonce[0]) {
		*err = strfmt("no Replay-Nonce from '%s'", a->new_nonce);
		return ERR;
	}
	return OK;
}

/* A signed POST of payload (NULL: POST-as-GET, an empty payload) to url; with the account's
 * key as a JWK until the account is known (kid). A refused nonce is retried with the new one. */
static int post(struct acct *a, const char *url, const char *payload, struct rsp *r, char **err)
{
	int tries;

	for (tries = 0; tries < 5; tries++) {
		json_t *prot;
		char *ps, *p64, *pl64, *in, *sig, *body;
		int rc;

		if (get_nonce(a, err) != OK)
			return ERR;
		prot = a->kid ? json_pack("{s:s, s:s, s:s, s:s}", "alg", a->alg, "kid", a->kid,
					  "nonce", a->nonce, "url", url)
			      : json_pack("{s:s, s:O, s:s, s:s}", "alg", a->alg, "jwk", a->jwk,
					  "nonce", a->nonce, "url", url);
		a->nonce[0] = '\0'; /* used */
		ps = json_dumps(prot, JSON_COMPACT);
		json_decref(prot);
		p64 = b64url_str(ps);
		pl64 = b64url_str(payload ? payload : "");
		in = strfmt("%s.%s", p64, pl64);
		sig = jws_sign(a, in);
		if (!sig) {
			*err = strfmt("cannot sign with the account key: %s", ssl_errstr());
			free(ps), free(p64), free(pl64), free(in);
			return ERR;
		}
		body = strfmt("{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", p64,
			      pl64, sig);
		free(ps), free(p64), free(pl64), free(in), free(sig);
		rc = http_do("POST", url, "application/jose+json", body, r, err);
		free(body);
		if (rc != OK)
			return ERR;
		snprintf(a->nonce, sizeof(a->nonce), "%s", r->nonce);
		if (r->status == 400 && strstr(r->body, "urn:ietf:params:acme:error:badNonce")) {
			rsp_free(r);
			continue;
		}
		return OK;
	}
	*err = strfmt("'%s': the authority refused 5 nonces in a row", url);
	return ERR;
}

/* The directory and the account (registered, or found by its key). */
static int acct_ready(struct acct *a, char **err)
{
	struct acme_sect *s = a->s;
	struct rsp r;
	json_t *j, *pl;
	char *pls;
	int rc;

	if (acct_key(a, err) != OK)
		return ERR;
	if (!a->new_order) {
		if (http_do("GET", s->directory, NULL, NULL, &r, err) != OK)
			return ERR;
		if (r.status != 200 || !(j = rsp_json(&r, err))) {
			if (r.status != 200)
				*err = strfmt("directory '%s': HTTP %d", s->directory, r.status);
			rsp_free(&r);
			return ERR;
		}
		rsp_free(&r);
		if (!jstr(j, "newNonce") || !jstr(j, "newAccount") || !jstr(j, "newOrder")) {
			*err = strfmt("directory '%s': newNonce, newAccount or newOrder missing",
				      s->directory);
			json_decref(j);
			return ERR;
		}
		a->new_nonce = xstrdup(jstr(j, "newNonce"));
		a->new_account = xstrdup(jstr(j, "newAccount"));
		a->new_order = xstrdup(jstr(j, "newOrder"));
		json_decref(j);
	}
	if (a->kid)
		return OK;
	pl = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	if (s->contact) {
		char *m = strfmt("mailto:%s", s->contact);

		json_object_set_new(pl, "contact", json_pack("[s]", m));
		free(m);
	}
	pls = json_dumps(pl, JSON_COMPACT);
	json_decref(pl);
	rc = post(a, a->new_account, pls, &r, err);
	free(pls);
	if (rc != OK)
		return ERR;
	if ((r.status != 200 && r.status != 201) || !r.location[0]) {
		*err = refused(&r, "new account");
		rsp_free(&r);
		return ERR;
	}
	a->kid = xstrdup(r.location);
	keel_log(LOG_LVL_NOTICE, "acme %s: account %s (%s)", s->name, a->kid,
		 r.status == 201 ? "created" : "existing");
	rsp_free(&r);
	return OK;
}

/* ---- an order ---- */

/* POST-as-GET of url into a JSON object; expects HTTP 200. */
static json_t *fetch(struct acct *a, const char *url, char **err)
{
	struct rsp r;
	json_t *j;

	if (post(a, url, NULL, &r, err) != OK)
		return NULL;
	if (r.status != 200) {
		char *p = problem(&r);

		*err = strfmt("'%s': %s", url, p);
		free(p);
		rsp_free(&r);
		return NULL;
	}
	j = rsp_json(&r, err);
	rsp_free(&r);
	return j;
}

/* Validates one authorization by HTTP-01. */
static int authorize(struct acct *a, const char *url, char **err)
{
	json_t *az = fetch(a, url, err), *chs, *ch, *http = NULL;
	const char *st, *token, *curl, *name;
	char *ka = NULL;
	size_t i;
	int tries, rc = ERR;
	struct rsp r;

	if (!az)
		return ERR;
	st = jstr(az, "status");
	name = jstr(json_object_get(az, "identifier"), "value");
	if (st && !strcmp(st, "valid")) {
		json_decref(az);
		return OK;
	}
	chs = json_object_get(az, "challenges");
	json_array_foreach(chs, i, ch) if (jstr(ch, "type") && !strcmp(jstr(ch, "type"), "http-01"))
	    http = ch;
	token = http ? jstr(http, "token") : NULL;
	curl = http ? jstr(http, "url") : NULL;
	if (!token || !curl ||
	    strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789-_") != strlen(token)) {
		*err = strfmt("%s: no usable http-01 challenge offered", name ? name : url);
		goto out;
	}
	ka = strfmt("%s.%s", token, a->thumb);
	if (acme_token_add(token, ka) != OK) {
		*err = strfmt("%s: too many challenges at once", name ? name : url);
		goto out;
	}
	if (post(a, curl, "{}", &r, err) != OK)
		goto out_del;
	if (r.status != 200) {
		char *p = problem(&r);

		*err = strfmt("%s: challenge refused: %s", name ? name : url, p);
		free(p);
		rsp_free(&r);
		goto out_del;
	}
	rsp_free(&r);
	for (tries = 0; tries < ACME_POLL_TRIES; tries++) {
		json_t *cur;

		if (!nap(tries ? 1.0 : 0.5)) {
			*err = strfmt("stopping");
			goto out_del;
		}
		cur = fetch(a, url, err);
		if (!cur)
			goto out_del;
		st = jstr(cur, "status");
		if (st && !strcmp(st, "valid")) {
			json_decref(cur);
			rc = OK;
			goto out_del;
		}
		if (!st || strcmp(st, "pending")) {
			json_t *c2, *e = NULL;

			json_array_foreach(json_object_get(cur, "challenges"), i,
					   c2) if (json_object_get(c2, "error")) e =
			    json_object_get(c2, "error");
			*err = strfmt("%s: authorization %s%s%s", name ? name : url, st ? st : "?",
				      e && jstr(e, "detail") ? ": " : "",
				      e && jstr(e, "detail") ? jstr(e, "detail") : "");
			json_decref(cur);
			goto out_del;
		}
		json_decref(cur);
	}
	*err = strfmt("%s: authorization still pending after %d tries", name ? name : url,
		      ACME_POLL_TRIES);
out_del:
	acme_token_del(token);
out:
	free(ka);
	json_decref(az);
	return rc;
}

/* A CSR for key and c's names, DER in base64url. */
static char *make_csr(const struct acme_cert *c, EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san = san_ext(c->domains, c->ndomains);
	unsigned char *der = NULL;
	char *out = NULL;
	int len;

	if (!req || !exts || !san || !X509_REQ_set_version(req, 0) ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
					(const unsigned char *)c->domains[0], -1, -1, 0) ||
	    !X509_REQ_set_pubkey(req, key) || !sk_X509_EXTENSION_push(exts, san))
		goto out;
	san = NULL; /* owned by exts */
	if (!X509_REQ_add_extensions(req, exts) || !X509_REQ_sign(req, key, EVP_sha256()))
		goto out;
	len = i2d_X509_REQ(req, &der);
	if (len > 0)
		out = b64url(der, (size_t)len);
	OPENSSL_free(der);
out:
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return out;
}

/* Polls the order at url until its status leaves "pending"/"processing"; returns it. */
static json_t *order_wait(struct acct *a, const char *url, json_t *o, const char *until, char **err)
{
	int tries;

	for (tries = 0; tries < ACME_POLL_TRIES; tries++) {
		const char *st = jstr(o, "status");

		if (st && !strcmp(st, until))
			return o;
		if (!st ||
		    (strcmp(st, "pending") && strcmp(st, "processing") && strcmp(st, "ready"))) {
			json_t *e = json_object_get(o, "error");

			*err = strfmt("order %s%s%s", st ? st : "without status",
				      e && jstr(e, "detail") ? ": " : "",
				      e && jstr(e, "detail") ? jstr(e, "detail") : "");
			json_decref(o);
			return NULL;
		}
		json_decref(o);
		if (!nap(1.0)) {
			*err = strfmt("stopping");
			return NULL;
		}
		o = fetch(a, url, err);
		if (!o)
			return NULL;
	}
	*err = strfmt("order not %s after %d tries", until, ACME_POLL_TRIES);
	json_decref(o);
	return NULL;
}

/* Obtains a certificate for j's names and writes its file. */
static int issue(struct job *jb, char **err)
{
	struct acct *a = jb->a;
	struct acme_cert *c = jb->c;
	struct acme_sect *s = a->s;
	json_t *ids = json_array(), *pl, *o = NULL, *az;
	char *pls, *order_url = NULL, *csr = NULL, *pem = NULL, *chain = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	struct rsp r;
	size_t i, len;
	int k, rc = ERR;

	if (acct_ready(a, err) != OK) {
		json_decref(ids);
		return ERR;
	}
	for (k = 0; k < c->ndomains; k++)
		json_array_append_new(
		    ids, json_pack("{s:s, s:s}", "type", "dns", "value", c->domains[k]));
	pl = json_pack("{s:o}", "identifiers", ids);
	pls = json_dumps(pl, JSON_COMPACT);
	json_decref(pl);
	k = post(a, a->new_order, pls, &r, err);
	free(pls);
	if (k != OK)
		return ERR;
	if (r.status != 201 || !r.location[0]) {
		*err = refused(&r, "new order");
		/* The account may be gone (another key, deactivated): register again next time. */
		if (r.status == 400 || r.status == 401 || r.status == 403) {
			free(a->kid);
			a->kid = NULL;
		}
		rsp_free(&r);
		return ERR;
	}
	order_url = xstrdup(r.location);
	o = rsp_json(&r, err);
	rsp_free(&r);
	if (!o)
		goto out;
	json_array_foreach(json_object_get(o, "authorizations"), i, az)
	{
		if (!json_is_string(az)) {
			*err = strfmt("order: bad authorizations");
			goto out;
		}
		if (authorize(a, json_string_value(az), err) != OK)
			goto out;
	}
	/* The order is "ready" once every authorization is valid. */
	json_decref(o);
	o = fetch(a, order_url, err);
	if (!o || !(o = order_wait(a, order_url, o, "ready", err)))
		goto out;
	key = key_new(s->keytype, s->bits, s->curve);
	csr = key ? make_csr(c, key) : NULL;
	if (!csr || !jstr(o, "finalize")) {
		*err = strfmt("%s",
			      !csr ? "cannot make the key or the CSR" : "order: no finalize URL");
		goto out;
	}
	pls = strfmt("{\"csr\":\"%s\"}", csr);
	k = post(a, jstr(o, "finalize"), pls, &r, err);
	free(pls);
	if (k != OK)
		goto out;
	if (r.status != 200) {
		*err = refused(&r, "finalize");
		rsp_free(&r);
		goto out;
	}
	json_decref(o);
	o = rsp_json(&r, err);
	rsp_free(&r);
	if (!o || !(o = order_wait(a, order_url, o, "valid", err)))
		goto out;
	if (!jstr(o, "certificate")) {
		*err = strfmt("order valid without a certificate URL");
		goto out;
	}
	if (post(a, jstr(o, "certificate"), NULL, &r, err) != OK)
		goto out;
	if (r.status != 200) {
		*err = refused(&r, "certificate download");
		rsp_free(&r);
		goto out;
	}
	chain = xstrdup(r.body);
	rsp_free(&r);
	/* Check what came before it replaces a certificate that works. */
	bio = BIO_new_mem_buf(chain, -1);
	x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (!x || !X509_check_private_key(x, key)) {
		*err = strfmt("the downloaded certificate %s",
			      x ? "does not match the key" : "is not PEM");
		goto out;
	}
	for (k = 0; k < c->ndomains; k++)
		if (X509_check_host(x, c->domains[k], 0, 0, NULL) != 1) {
			*err =
			    strfmt("the downloaded certificate does not carry %s", c->domains[k]);
			goto out;
		}
	pem = pem_bundle(chain, NULL, key, &len);
	if (!pem || acme_write_file(c->path, pem, len, err) != OK) {
		if (!pem)
			*err = strfmt("cannot write the key: %s", ssl_errstr());
		goto out;
	}
	{
		ASN1_INTEGER *sn = X509_get_serialNumber(x);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		keel_log(LOG_LVL_NOTICE, "acme %s: new certificate for %s in '%s' (serial %s)",
			 s->name, c->domains[0], c->path, hex ? hex : "?");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	rc = OK;
out:
	ERR_clear_error();
	BIO_free(bio);
	X509_free(x);
	free(pem);
	free(chain);
	free(csr);
	EVP_PKEY_free(key);
	json_decref(o);
	free(order_url);
	return rc;
}

/* ---- the schedule ---- */

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

/* When c's file needs a new certificate: 0 for now, else the time. why says why now. */
static time_t due(const struct job *jb, const char **why)
{
	const struct acme_cert *c = jb->c;
	BIO *bio = BIO_new_file(c->path, "r");
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, (void *)"") : NULL;
	time_t nb, na, th, now = time(NULL);
	int k;

	BIO_free(bio);
	ERR_clear_error();
	*why = NULL;
	if (!x) {
		*why = "no certificate in the file";
		return 0;
	}
	if (X509_check_issued(x, x) == X509_V_OK) {
		*why = "temporary self-signed certificate";
		X509_free(x);
		return 0;
	}
	for (k = 0; k < c->ndomains; k++)
		if (X509_check_host(x, c->domains[k], 0, 0, NULL) != 1) {
			*why = "a configured name is missing from the certificate";
			X509_free(x);
			return 0;
		}
	nb = asn1_time(X509_get0_notBefore(x));
	na = asn1_time(X509_get0_notAfter(x));
	X509_free(x);
	th = jb->a->s->renew_before;
	if (!th)
		th = MIN((time_t)ACME_RENEW_MAX, (na - nb) / 3);
	if (na - th <= now) {
		*why = "expires soon";
		return 0;
	}
	return na - th;
}

static void run_job(struct job *jb)
{
	const char *why;
	char *err = NULL;
	time_t when = due(jb, &why), now = time(NULL);
	long delay;

	if (when) {
		jb->next = when;
		return;
	}
	keel_log(LOG_LVL_NOTICE, "acme %s: ordering a certificate for %s (%s)", jb->a->s->name,
		 jb->c->domains[0], why);
	if (issue(jb, &err) == OK) {
		jb->fails = 0;
		when = due(jb, &why);
		/* A certificate that is due at once (renew-before longer than its life) is not
		 * ordered again in a loop: the retry delay paces it. */
		jb->next = when ? when : now + (time_t)jb->a->s->retry_delay;
		return;
	}
	if (stopping) {
		free(err);
		return;
	}
	jb->fails++;
	delay = (long)jb->a->s->retry_delay;
	for (int i = 1; i < jb->fails && delay < ACME_RETRY_MAX; i++)
		delay *= 2;
	delay = MIN(delay, (long)ACME_RETRY_MAX);
	jb->next = now + delay;
	keel_log(LOG_LVL_WARNING, "acme %s: %s: %s; retrying in %ld s (failure %d)", jb->a->s->name,
		 jb->c->domains[0], err ? err : "failed", delay, jb->fails);
	free(err);
}

static void *acme_main(void *arg)
{
	(void)arg;
	while (!stopping) {
		time_t now = time(NULL), next = now + 3600;
		int i;

		for (i = 0; i < njobs && !stopping; i++) {
			if (jobs[i].next <= now)
				run_job(&jobs[i]);
			now = time(NULL);
		}
		for (i = 0; i < njobs; i++)
			next = MIN(next, jobs[i].next);
		/* Wake up at least hourly: the clock may have jumped, a file may have changed. */
		if (next > now && !nap((double)(next - now)))
			break;
	}
	return NULL;
}

static struct acct *acct_for(struct acme_sect *s)
{
	int i;

	for (i = 0; i < naccts; i++)
		if (accts[i].s == s)
			return &accts[i];
	accts[naccts].s = s;
	return &accts[naccts++];
}

int acme_start(char **err)
{
	const struct acme_client_conf *cc = acme_client_conf();
	struct acme_cert *c;
	struct acme_sect *s;
	pthread_condattr_t ca;
	int n = 0, ns = 0, e;

	for (c = acme_certs(); c; c = c->next)
		n += !c->dup;
	if (!n)
		return OK;
	for (s = acme_sects(); s; s = s->next)
		ns++;
	cli_ctx = SSL_CTX_new(TLS_client_method());
	if (!cli_ctx) {
		*err = strfmt("acme: cannot create a TLS context: %s", ssl_errstr());
		return ERR;
	}
	SSL_CTX_set_min_proto_version(cli_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(cli_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (cc->verify_none) {
		SSL_CTX_set_verify(cli_ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(cli_ctx, SSL_VERIFY_PEER, NULL);
		if (cc->ca_file ? !SSL_CTX_load_verify_locations(cli_ctx, cc->ca_file, NULL)
				: !SSL_CTX_set_default_verify_paths(cli_ctx)) {
			*err = strfmt("acme: httpclient.ssl.ca-file '%s': %s",
				      cc->ca_file ? cc->ca_file : "(system)", ssl_errstr());
			goto out_free;
		}
	}
	accts = xcalloc((size_t)ns, sizeof(*accts));
	jobs = xcalloc((size_t)n, sizeof(*jobs));
	naccts = njobs = 0;
	for (c = acme_certs(); c; c = c->next)
		if (!c->dup) {
			jobs[njobs].c = c;
			jobs[njobs].a = acct_for(c->sect);
			njobs++;
		}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&run_cond, &ca);
	pthread_condattr_destroy(&ca);
	stopping = false;
	e = pthread_create(&thread, NULL, acme_main, NULL);
	if (e) {
		*err = strfmt("acme: cannot start its thread: %s", strerror(e));
		goto out_free;
	}
	started = true;
	return OK;
out_free:
	SSL_CTX_free(cli_ctx);
	cli_ctx = NULL;
	return ERR;
}

void acme_stop(void)
{
	int i;

	if (!started)
		return;
	pthread_mutex_lock(&run_lock);
	stopping = true;
	if (cur_fd != -1)
		shutdown(cur_fd, SHUT_RDWR);
	pthread_cond_broadcast(&run_cond);
	pthread_mutex_unlock(&run_lock);
	pthread_join(thread, NULL);
	started = false;
	for (i = 0; i < naccts; i++) {
		struct acct *a = &accts[i];

		EVP_PKEY_free(a->key);
		json_decref(a->jwk);
		free(a->thumb), free(a->kid), free(a->new_nonce), free(a->new_account),
		    free(a->new_order);
	}
	free(accts);
	free(jobs);
	accts = NULL;
	jobs = NULL;
	naccts = njobs = 0;
	SSL_CTX_free(cli_ctx);
	cli_ctx = NULL;
	pthread_mutex_lock(&tok_lock);
	ntokens = 0;
	pthread_mutex_unlock(&tok_lock);
}
