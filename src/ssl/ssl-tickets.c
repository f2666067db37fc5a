/* TLS session resumption with tickets that survive reloads (docs/configuration.md, "Session
 * resumption"; docs/internals/reload.md, "TLS ticket keys").
 *
 * OpenSSL's own ticket keys are random per context and die with the process: after a reload
 * every returning client would pay a full handshake. So keel encrypts the tickets itself
 * (SSL_CTX_set_tlsext_ticket_key_evp_cb), with one of two sets of keys:
 * - the process's ring, for every bind without tls-ticket-keys: random keys, oldest first, up
 *   to two previous ones (decrypt only), the current one (encrypts) and the next one (decrypts;
 *   it encrypts after the next rotation). The main thread rotates the ring every
 *   tune.ssl.ticket-rotate (1 h): a ticket lives two periods and its key stays in the ring two to
 *   three periods, so every ticket can be read for its whole life. A reload passes the ring to
 *   the new process through a pipe (never a file, never the environment). Because the next key
 *   is already in the ring, an old process that rotates while the new one starts encrypts with
 *   a key the new one knows.
 * - a bind's tls-ticket-keys file, with HAProxy's format and meaning: base64 keys of 48 bytes
 *   (AES-128) or 80 bytes (AES-256), one a line; the last three are used, the penultimate
 *   encrypts. Whoever writes the file rotates it; a reload reads it again.
 * A ticket is AES-CBC with HMAC-SHA256 under a 16-byte key name, as HAProxy makes them, so that
 * HAProxy and keel sharing a key file read each other's tickets.
 *
 * Workers read a set of keys for each ticket they make or open, under the set's read lock;
 * rotation takes the write lock for a copy of 80 bytes. The lock prefers writers: handshakes on
 * every thread never keep a rotation waiting. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/log.h>
#include <keel/ssl.h>

#define TK_NAME_LEN 16
#define TK_RING 4	       /* the process's ring: two previous keys, current, next */
#define TK_FILE_KEYS 3	       /* keys used from a file (HAProxy's TLS_TICKETS_NO) */
#define TK_MAX_FILE (64 << 10) /* a larger tls-ticket-keys file is refused */
#define TK_MAX_LINE 256
#define TK_ROTATE_DEFAULT_MS (3600u * 1000u)
#define TK_ROTATE_MIN_MS 1000u
/* Tickets live twice the period: under TLS 1.3's limit of 7 days. */
#define TK_ROTATE_MAX_MS (3u * 86400u * 1000u)
#define TK_RETRY_MS 60000u /* a rotation that found no random bytes is tried again */

/* One key in HAProxy's 80-byte layout; a 48-byte key uses the first 16 bytes of aes and hmac. */
struct tk_key {
	unsigned char name[TK_NAME_LEN];
	unsigned char aes[32];
	unsigned char hmac[32];
};

struct ssl_ticket_keys {
	pthread_rwlock_t lock;
	int n;	  /* keys, oldest first: the one at n - 2 encrypts, all of them decrypt */
	int bits; /* 128 or 256: the AES key size, and the HMAC key's */
	struct tk_key k[TK_RING];
};

/* What a reload sends the new process: the ring and when it rotates next. Native byte order:
 * both processes run on the same machine. A new version of the layout gets a new magic (an
 * unknown one is replaced by new keys). */
#define TK_WIRE_MAGIC "keeltk1"
struct tk_wire {
	char magic[8];
	uint32_t n;
	uint32_t rotate_in_ms;
	struct tk_key k[TK_RING];
};

static struct ssl_ticket_keys ring = {
    .lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP,
    .bits = 256,
};
static uint64_t rotate_at_ms; /* CLOCK_MONOTONIC; written under ring.lock (write) */
static uint32_t rotate_ms = TK_ROTATE_DEFAULT_MS;
static bool ring_started;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int ex_index = -1; /* the SSL_CTX's set of keys; NULL: the ring */
static EVP_CIPHER *aes128, *aes256;

static void init_once(void)
{
	ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	/* Fetched once: an implicit fetch per ticket would search the provider store each time. */
	aes128 = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
	aes256 = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- tickets ---- */

static int key_init(const struct ssl_ticket_keys *tk, struct tk_key *k, unsigned char *iv,
		    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac, (size_t)tk->bits / 8),
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};

	if (!EVP_CipherInit_ex(cctx, tk->bits == 128 ? aes128 : aes256, NULL, k->aes, iv, enc))
		return ERR;
	return EVP_MAC_CTX_set_params(hctx, params) ? OK : ERR;
}

/* OpenSSL's ticket callback, on a worker thread. enc: the key that encrypts and a fresh IV
 * (1), or none to send no ticket (0). Else: the key named in the ticket, 1 when it is the one
 * that encrypts, 2 when it is another (the client then gets a new ticket), 0 when unknown (a
 * full handshake). -1 on an internal error. */
static int ticket_cb(SSL *s, unsigned char name[TK_NAME_LEN], unsigned char *iv,
		     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct ssl_ticket_keys *tk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), ex_index);
	int i, r = 0;

	if (!tk)
		tk = &ring;
	pthread_rwlock_rdlock(&tk->lock);
	if (enc) {
		struct tk_key *k;

		if (tk->n < 2) /* the ring is not started (a tool that only loads configurations) */
			goto out;
		k = &tk->k[tk->n - 2];
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(tk->bits == 128 ? aes128 : aes256)) !=
		    1) {
			r = -1;
			goto out;
		}
		memcpy(name, k->name, TK_NAME_LEN);
		r = key_init(tk, k, iv, cctx, hctx, 1) == OK ? 1 : -1;
		goto out;
	}
	for (i = 0; i < tk->n; i++)
		if (!CRYPTO_memcmp(name, tk->k[i].name, TK_NAME_LEN))
			break;
	if (i < tk->n)
		r = key_init(tk, &tk->k[i], iv, cctx, hctx, 0) != OK ? -1 : i == tk->n - 2 ? 1 : 2;
out:
	pthread_rwlock_unlock(&tk->lock);
	return r;
}

int ssl_tickets_ctx(struct ssl_ctx_st *ctx, struct ssl_ticket_keys *keys, char **err)
{
	pthread_once(&once, init_once);
	if (ex_index < 0 || !aes128 || !aes256) {
		*err = strfmt("TLS session tickets: AES-CBC is not available from OpenSSL");
		return ERR;
	}
	if (!SSL_CTX_set_ex_data(ctx, ex_index, keys) ||
	    !SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb)) {
		*err = strfmt("TLS session tickets: cannot set the ticket callback");
		return ERR;
	}
	/* The lifetime announced to clients (and the end of a resumed session): two periods,
	 * which the ring's keys always outlive. A key file keeps OpenSSL's 2 hours: keel does
	 * not know how its writer rotates it. */
	if (!keys)
		SSL_CTX_set_timeout(ctx, (long)(rotate_ms / 1000u) * 2);
	return OK;
}

/* ---- tls-ticket-keys files ---- */

void ssl_tickets_free(struct ssl_ticket_keys *keys)
{
	if (!keys)
		return;
	pthread_rwlock_destroy(&keys->lock);
	OPENSSL_cleanse(keys, sizeof(*keys));
	free(keys);
}

/* One base64 line into out (size out_cap): the decoded length, or -1 when it is not base64. */
static int b64_decode(const char *line, size_t len, unsigned char *out, int out_cap)
{
	EVP_ENCODE_CTX *e = EVP_ENCODE_CTX_new();
	int n = 0, m = 0;

	if (!e || len > (size_t)out_cap) /* base64 never decodes to more bytes than it has */
		goto fail;
	EVP_DecodeInit(e);
	if (EVP_DecodeUpdate(e, out, &n, (const unsigned char *)line, (int)len) < 0 ||
	    EVP_DecodeFinal(e, out + n, &m) != 1)
		goto fail;
	EVP_ENCODE_CTX_free(e);
	return n + m;
fail:
	EVP_ENCODE_CTX_free(e);
	return -1;
}

/* Reads the whole file (at most TK_MAX_FILE bytes) into a buffer the caller wipes and frees. */
static char *read_small_file(const char *path, size_t *len, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t n = 0;

	if (fd == -1) {
		*err = strfmt("tls-ticket-keys '%s': %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > TK_MAX_FILE) {
		*err = strfmt("tls-ticket-keys '%s': %s", path,
			      !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 64 kB");
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
out:
	close(fd);
	return buf;
}

int ssl_tickets_load(const char *path, struct ssl_ticket_keys **out, char **err)
{
	struct tk_key last[TK_FILE_KEYS]; /* the last keys read, as a circle */
	unsigned char raw[TK_MAX_LINE];
	struct ssl_ticket_keys *tk;
	size_t len = 0;
	char *buf = read_small_file(path, &len, err), *line, *next;
	int lineno = 0, count = 0, size = 0, r = ERR, i;

	if (!buf)
		return ERR;
	memset(last, 0, sizeof(last));
	for (line = buf; line && line < buf + len; line = next) {
		size_t l;
		int d;

		next = memchr(line, '\n', (size_t)(buf + len - line));
		l = next ? (size_t)(next - line) : strlen(line);
		if (next)
			next++;
		lineno++;
		while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
			l--;
		while (l && (*line == ' ' || *line == '\t')) {
			line++;
			l--;
		}
		/* HAProxy refuses blank lines and comments: accepting them refuses no valid file */
		if (!l || *line == '#')
			continue;
		if (l >= TK_MAX_LINE) {
			*err = strfmt("tls-ticket-keys '%s' line %d: longer than %d characters",
				      path, lineno, TK_MAX_LINE - 1);
			goto out;
		}
		d = b64_decode(line, l, raw, sizeof(raw));
		if (d < 0) {
			*err = strfmt("tls-ticket-keys '%s' line %d: not base64", path, lineno);
			goto out;
		}
		if (d != 48 && d != 80) {
			*err = strfmt(
			    "tls-ticket-keys '%s' line %d: a key of %d bytes (expects 48 or 80: "
			    "'openssl rand -base64 80')",
			    path, lineno, d);
			goto out;
		}
		if (size && d != size) {
			*err = strfmt(
			    "tls-ticket-keys '%s' line %d: a key of %d bytes after keys of %d "
			    "(all keys of a file have the same size)",
			    path, lineno, d, size);
			goto out;
		}
		size = d;
		{
			struct tk_key *k = &last[count % TK_FILE_KEYS];
			size_t half = (size_t)(d - TK_NAME_LEN) / 2;

			memcpy(k->name, raw, TK_NAME_LEN);
			memcpy(k->aes, raw + TK_NAME_LEN, half);
			memcpy(k->hmac, raw + TK_NAME_LEN + half, half);
		}
		count++;
	}
	if (count < TK_FILE_KEYS) {
		*err = strfmt(
		    "tls-ticket-keys '%s': %d key%s; at least %d are needed (the last one is "
		    "the next, the penultimate encrypts, the one before still decrypts)",
		    path, count, count == 1 ? "" : "s", TK_FILE_KEYS);
		goto out;
	}
	tk = xcalloc(1, sizeof(*tk));
	pthread_rwlock_init(&tk->lock, NULL);
	tk->bits = size == 48 ? 128 : 256;
	tk->n = TK_FILE_KEYS;
	for (i = 0; i < TK_FILE_KEYS; i++)
		tk->k[i] = last[(count + i) % TK_FILE_KEYS];
	*out = tk;
	r = OK;
out:
	OPENSSL_cleanse(last, sizeof(last));
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(buf, len);
	free(buf);
	return r;
}

/* ---- the process's ring ---- */

int ssl_tickets_kw_rotate(struct cfg_ctx *c, int argc, char **argv)
{
	const char *e = NULL;
	uint32_t ms;

	if (cfg_need_args(c, argc, argv, 1, "a time such as 1h"))
		return ERR;
	if (cfg_parse_time(argv[1], &ms, &e) != OK || ms < TK_ROTATE_MIN_MS ||
	    ms > TK_ROTATE_MAX_MS) {
		cfg_err(c, "'%s' expects a time from 1s to 3d", argv[0]);
		return ERR;
	}
	rotate_ms = ms;
	return OK;
}

void ssl_tickets_reset_settings(void)
{
	rotate_ms = TK_ROTATE_DEFAULT_MS;
}

static int new_key(struct tk_key *k)
{
	return RAND_priv_bytes((unsigned char *)k, sizeof(*k)) == 1 ? OK : ERR;
}

/* Appends k as the next key (the next one becomes current), dropping the oldest beyond
 * TK_RING. Under the write lock. */
static void ring_push(const struct tk_key *k)
{
	if (ring.n == TK_RING) {
		memmove(&ring.k[0], &ring.k[1], sizeof(ring.k[0]) * (TK_RING - 1));
		ring.n--;
	}
	ring.k[ring.n++] = *k;
	OPENSSL_cleanse(&ring.k[ring.n], sizeof(ring.k[0]) * (size_t)(TK_RING - ring.n));
}

/* The ring sent by the previous process, from fd (closed). OK when it was whole and valid. */
static int ring_receive(int fd)
{
	struct tk_wire w;
	size_t n = 0;
	int r = ERR;

	/* The sender wrote everything and closed its end before the exec: the reads do not wait. */
	while (n < sizeof(w)) {
		ssize_t got = read(fd, (char *)&w + n, sizeof(w) - n);

		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (n == sizeof(w) && !memcmp(w.magic, TK_WIRE_MAGIC, sizeof(w.magic)) && w.n >= 2 &&
	    w.n <= TK_RING) {
		pthread_rwlock_wrlock(&ring.lock);
		memcpy(ring.k, w.k, sizeof(ring.k));
		ring.n = (int)w.n;
		/* The old process's schedule, unless this configuration rotates sooner. */
		rotate_at_ms = mono_ms() + MIN(w.rotate_in_ms, rotate_ms);
		pthread_rwlock_unlock(&ring.lock);
		r = OK;
	}
	OPENSSL_cleanse(&w, sizeof(w));
	return r;
}

int ssl_tickets_start(int fd, char **err)
{
	struct tk_key k;
	int i;

	if (fd >= 0 && ring_receive(fd) == OK) {
		ring_started = true;
		return OK;
	}
	if (fd >= 0)
		keel_log(LOG_LVL_WARNING,
			 "reload: the previous process's TLS ticket keys were not "
			 "received; new keys (returning clients do a full handshake once)");
	/* A fresh ring: the current key and the next one. */
	for (i = 0; i < 2; i++) {
		if (new_key(&k) != OK) {
			*err = strfmt("TLS session tickets: no random bytes from OpenSSL");
			OPENSSL_cleanse(&k, sizeof(k));
			return ERR;
		}
		pthread_rwlock_wrlock(&ring.lock);
		ring_push(&k);
		rotate_at_ms = mono_ms() + rotate_ms;
		pthread_rwlock_unlock(&ring.lock);
	}
	OPENSSL_cleanse(&k, sizeof(k));
	ring_started = true;
	return OK;
}

void ssl_tickets_tick(void)
{
	uint64_t now = mono_ms();
	struct tk_key k;

	/* rotate_at_ms is written by this thread only: reading it needs no lock. */
	if (!ring_started || now < rotate_at_ms)
		return;
	/* The random bytes are drawn outside the lock: readers wait only for the copy. */
	if (new_key(&k) != OK) {
		keel_log(LOG_LVL_WARNING, "TLS session tickets: no random bytes for a new key; the "
					  "current one stays for another minute");
		pthread_rwlock_wrlock(&ring.lock);
		rotate_at_ms = now + TK_RETRY_MS;
		pthread_rwlock_unlock(&ring.lock);
		return;
	}
	pthread_rwlock_wrlock(&ring.lock);
	ring_push(&k);
	rotate_at_ms = now + rotate_ms;
	pthread_rwlock_unlock(&ring.lock);
	OPENSSL_cleanse(&k, sizeof(k));
}

void ssl_tickets_stop(void)
{
	pthread_rwlock_wrlock(&ring.lock);
	OPENSSL_cleanse(ring.k, sizeof(ring.k));
	ring.n = 0;
	pthread_rwlock_unlock(&ring.lock);
	ring_started = false;
}

int ssl_tickets_handover_fd(char **err)
{
	struct tk_wire w;
	int p[2];
	ssize_t r;
	uint64_t now = mono_ms();

	if (!ring_started) {
		*err = strfmt("no TLS ticket keys to pass on");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		*err = strfmt("pipe: %s", strerror(errno));
		return -1;
	}
	memset(&w, 0, sizeof(w));
	memcpy(w.magic, TK_WIRE_MAGIC, sizeof(w.magic));
	pthread_rwlock_rdlock(&ring.lock);
	w.n = (uint32_t)ring.n;
	w.rotate_in_ms = rotate_at_ms > now ? (uint32_t)MIN(rotate_at_ms - now, UINT32_MAX) : 0;
	memcpy(w.k, ring.k, sizeof(w.k));
	pthread_rwlock_unlock(&ring.lock);
	/* An empty pipe takes at least 4 kB at once: this write neither blocks nor splits. */
	do
		r = write(p[1], &w, sizeof(w));
	while (r == -1 && errno == EINTR);
	OPENSSL_cleanse(&w, sizeof(w));
	close(p[1]);
	if (r != (ssize_t)sizeof(w)) {
		*err = strfmt("pipe: %s", r == -1 ? strerror(errno) : "short write");
		close(p[0]);
		return -1;
	}
	return p[0];
}
