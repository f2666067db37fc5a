/* Unit tests for src/ssl/ssl-tickets.c: tls-ticket-keys files (HAProxy's format: which keys are
 * kept, which one encrypts, every error), the process's ring (rotation, the reload's pipe), and
 * real TLS 1.2 and 1.3 handshakes in memory that resume a session after the ring went through
 * the pipe into a "new process" (the ring wiped and read back). */
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "../../src/ssl/ssl-tickets.c"
#include "unit.h"

static char tmpdir[] = "/tmp/keel-unit-tickets.XXXXXX";
static bool have_tmpdir;

/* A file with these lines; its path (static buffer). */
static const char *file_with(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	if (!have_tmpdir)
		have_tmpdir = mkdtemp(tmpdir) != NULL;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* n keys of size bytes, key i filled with the byte 'A' + i, one base64 line each. */
static char *key_lines(int n, int size, char *out, size_t cap)
{
	unsigned char raw[80];
	size_t off = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		memset(raw, 'A' + i, sizeof(raw));
		off += (size_t)EVP_EncodeBlock((unsigned char *)out + off, raw, size);
		off += (size_t)snprintf(out + off, cap - off, "\n");
	}
	return out;
}

static void load_rejects(const char *text, const char *want)
{
	struct ssl_ticket_keys *k = NULL;
	char *err = NULL;

	if (!CHECK(ssl_tickets_load(file_with("bad.keys", text), &k, &err) == ERR))
		return;
	CHECK(k == NULL);
	if (!strstr(err, want))
		FAIL("message '%s' lacks '%s'", err, want);
	free(err);
}

TEST(file_keeps_last_three_penultimate_encrypts)
{
	struct ssl_ticket_keys *k = NULL;
	char text[2048], *err = NULL;

	key_lines(5, 80, text, sizeof(text));
	if (!CHECK(ssl_tickets_load(file_with("k80", text), &k, &err) == OK))
		return;
	CHECK_EQ_INT(k->n, 3);
	CHECK_EQ_INT(k->bits, 256);
	/* keys C, D, E kept, oldest first; D (index n - 2) encrypts */
	CHECK_EQ_INT(k->k[0].name[0], 'C');
	CHECK_EQ_INT(k->k[1].name[0], 'D');
	CHECK_EQ_INT(k->k[2].name[0], 'E');
	CHECK_EQ_INT(k->k[1].aes[31], 'D');
	CHECK_EQ_INT(k->k[1].hmac[31], 'D');
	ssl_tickets_free(k);
}

TEST(file_48_byte_keys_comments_blank_lines_crlf)
{
	struct ssl_ticket_keys *k = NULL;
	char keys[1024], text[2048], *err = NULL, *p;

	key_lines(3, 48, keys, sizeof(keys));
	snprintf(text, sizeof(text), "# keys\n\n%s", keys);
	for (p = strchr(text + 9, '\n'); p; p = strchr(p + 2, '\n')) { /* CRLF line ends */
		memmove(p + 1, p, strlen(p) + 1);
		*p = '\r';
	}
	if (!CHECK(ssl_tickets_load(file_with("k48", text), &k, &err) == OK)) {
		FAIL("%s", err);
		return;
	}
	CHECK_EQ_INT(k->bits, 128);
	CHECK_EQ_INT(k->k[1].name[0], 'B');
	/* 16 bytes of AES key, then 16 of HMAC key; the rest stays zero */
	CHECK_EQ_INT(k->k[1].aes[15], 'B');
	CHECK_EQ_INT(k->k[1].aes[16], 0);
	CHECK_EQ_INT(k->k[1].hmac[15], 'B');
	ssl_tickets_free(k);
}

TEST(file_errors)
{
	char text[2048], two[1024];
	struct ssl_ticket_keys *k = NULL;
	char *err = NULL;

	CHECK(ssl_tickets_load("/nonexistent/keel.keys", &k, &err) == ERR);
	CHECK(err && strstr(err, "No such file"));
	free(err);
	load_rejects("not base64!\n", "line 1: not base64");
	load_rejects("QUJD\n", "line 1: a key of 3 bytes");
	key_lines(2, 80, two, sizeof(two));
	load_rejects(two, "2 keys; at least 3");
	load_rejects("", "0 keys; at least 3");
	key_lines(1, 48, text, sizeof(text));
	strcat(text, two);
	load_rejects(text, "line 2: a key of 80 bytes after keys of 48");
	memset(text, 'Q', 400);
	text[400] = '\n';
	text[401] = '\0';
	load_rejects(text, "line 1: longer than");
}

TEST(ring_rotation)
{
	unsigned char cur[TK_NAME_LEN], next[TK_NAME_LEN];
	char *err = NULL;
	int i;

	ssl_tickets_stop();
	if (!CHECK(ssl_tickets_start(-1, &err) == OK))
		return;
	CHECK_EQ_INT(ring.n, 2);
	memcpy(cur, ring.k[0].name, TK_NAME_LEN);
	memcpy(next, ring.k[1].name, TK_NAME_LEN);
	ssl_tickets_tick(); /* not due */
	CHECK_EQ_INT(ring.n, 2);
	rotate_at_ms = 0;
	ssl_tickets_tick();
	/* the next key now encrypts; the former current one still decrypts */
	CHECK_EQ_INT(ring.n, 3);
	CHECK(!memcmp(ring.k[ring.n - 2].name, next, TK_NAME_LEN));
	CHECK(!memcmp(ring.k[0].name, cur, TK_NAME_LEN));
	CHECK(rotate_at_ms > mono_ms() + rotate_ms - 1000);
	for (i = 0; i < 2; i++) {
		rotate_at_ms = 0;
		ssl_tickets_tick();
	}
	/* three rotations: the first current key is gone, the ring holds four */
	CHECK_EQ_INT(ring.n, TK_RING);
	for (i = 0; i < ring.n; i++)
		CHECK(memcmp(ring.k[i].name, cur, TK_NAME_LEN));
	ssl_tickets_stop();
	CHECK_EQ_INT(ring.n, 0);
}

TEST(handover_pipe_round_trip)
{
	struct ssl_ticket_keys saved;
	char *err = NULL;
	int fd;

	ssl_tickets_stop();
	CHECK(ssl_tickets_handover_fd(&err) == -1); /* nothing to pass */
	free(err);
	err = NULL;
	ssl_tickets_start(-1, &err);
	rotate_at_ms = 0;
	ssl_tickets_tick();
	rotate_at_ms = mono_ms() + 5000;
	saved = ring;
	fd = ssl_tickets_handover_fd(&err);
	if (!CHECK(fd >= 0))
		return;
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ssl_tickets_stop();
	CHECK(ssl_tickets_start(fd, &err) == OK);
	CHECK(fcntl(fd, F_GETFD) == -1); /* closed */
	CHECK_EQ_INT(ring.n, 3);
	CHECK(!memcmp(ring.k, saved.k, sizeof(ring.k)));
	/* the old schedule goes on */
	CHECK(rotate_at_ms <= mono_ms() + 5000 && rotate_at_ms > mono_ms() + 4000);
	OPENSSL_cleanse(&saved, sizeof(saved));
}

TEST(handover_garbage_gives_new_keys)
{
	unsigned char before[TK_NAME_LEN];
	char *err = NULL;
	int p[2];

	ssl_tickets_stop();
	ssl_tickets_start(-1, &err);
	memcpy(before, ring.k[0].name, TK_NAME_LEN);
	ssl_tickets_stop();
	if (!CHECK(pipe(p) == 0))
		return;
	CHECK(write(p[1], "keeltk9 and more", 16) == 16);
	close(p[1]);
	CHECK(ssl_tickets_start(p[0], &err) == OK);
	CHECK_EQ_INT(ring.n, 2);
	CHECK(memcmp(ring.k[0].name, before, TK_NAME_LEN));
}

/* ---- handshakes in memory ---- */

static EVP_PKEY *pkey;
static X509 *cert;

static void make_cert(void)
{
	X509_NAME *name;

	if (cert)
		return;
	pkey = EVP_EC_gen("P-256");
	cert = X509_new();
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, pkey);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509_sign(cert, pkey, EVP_sha256());
}

/* A server context as new_ctx() makes one, its tickets from keys (NULL: the ring). */
static SSL_CTX *server_ctx(int ver, struct ssl_ticket_keys *keys)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char *err = NULL;

	make_cert();
	SSL_CTX_use_certificate(ctx, cert);
	SSL_CTX_use_PrivateKey(ctx, pkey);
	SSL_CTX_set_min_proto_version(ctx, ver);
	SSL_CTX_set_max_proto_version(ctx, ver);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"keel", 4);
	if (ssl_tickets_ctx(ctx, keys, &err) != OK) {
		FAIL("%s", err);
		free(err);
	}
	return ctx;
}

/* One connection: a handshake, a byte from the server (TLS 1.3 tickets come after the
 * handshake), the session the client keeps (*out, may be NULL). Returns whether it resumed, -1
 * when the handshake failed. */
static int connect_once(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *sess, SSL_SESSION **out)
{
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *bs, *bc;
	int i, r = -1, sdone = 0, cdone = 0;
	char byte;

	BIO_new_bio_pair(&bs, 0, &bc, 0);
	SSL_set_bio(s, bs, bs);
	SSL_set_bio(c, bc, bc);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (sess)
		SSL_set_session(c, sess);
	for (i = 0; i < 50 && !(sdone && cdone); i++) {
		if (!cdone)
			cdone = SSL_do_handshake(c) == 1;
		if (!sdone)
			sdone = SSL_do_handshake(s) == 1;
	}
	if (sdone && cdone && SSL_write(s, "x", 1) == 1 && SSL_read(c, &byte, 1) == 1) {
		r = SSL_session_reused(c);
		if (out)
			*out = SSL_get1_session(c);
		/* a connection freed without close_notify marks its session not resumable */
		SSL_shutdown(c);
		SSL_shutdown(s);
	}
	SSL_free(s);
	SSL_free(c);
	return r;
}

static void resume_after_reload(int ver)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method()), *old, *new, *other;
	SSL_SESSION *sess = NULL;
	char *err = NULL;
	int fd;

	SSL_CTX_set_min_proto_version(cctx, ver);
	SSL_CTX_set_max_proto_version(cctx, ver);
	ssl_tickets_stop();
	ssl_tickets_start(-1, &err);
	old = server_ctx(ver, NULL);
	CHECK_EQ_INT(connect_once(old, cctx, NULL, &sess), 0);
	if (!CHECK(sess && SSL_SESSION_has_ticket(sess)))
		goto out;
	CHECK_EQ_INT(connect_once(old, cctx, sess, NULL), 1);
	/* "reload": the ring through the pipe, wiped here, read back; a new context */
	fd = ssl_tickets_handover_fd(&err);
	ssl_tickets_stop();
	CHECK(ssl_tickets_start(fd, &err) == OK);
	new = server_ctx(ver, NULL);
	CHECK_EQ_INT(connect_once(new, cctx, sess, NULL), 1);
	/* a rotation later the key still decrypts */
	rotate_at_ms = 0;
	ssl_tickets_tick();
	CHECK_EQ_INT(connect_once(new, cctx, sess, NULL), 1);
	/* new keys (no pipe): a full handshake */
	ssl_tickets_stop();
	ssl_tickets_start(-1, &err);
	other = server_ctx(ver, NULL);
	CHECK_EQ_INT(connect_once(other, cctx, sess, NULL), 0);
	SSL_CTX_free(new);
	SSL_CTX_free(other);
out:
	SSL_SESSION_free(sess);
	SSL_CTX_free(old);
	SSL_CTX_free(cctx);
}

TEST(tls12_resumes_after_reload)
{
	resume_after_reload(TLS1_2_VERSION);
}

TEST(tls13_resumes_after_reload)
{
	resume_after_reload(TLS1_3_VERSION);
}

/* Two contexts with the same key file (two processes) read each other's tickets, with AES-128
 * keys and with AES-256 keys. */
static void file_shared(int size)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method()), *a, *b;
	struct ssl_ticket_keys *ka = NULL, *kb = NULL;
	SSL_SESSION *sess = NULL;
	char text[2048], *err = NULL;

	key_lines(4, size, text, sizeof(text));
	CHECK(ssl_tickets_load(file_with("shared", text), &ka, &err) == OK);
	CHECK(ssl_tickets_load(file_with("shared", text), &kb, &err) == OK);
	a = server_ctx(TLS1_3_VERSION, ka);
	b = server_ctx(TLS1_3_VERSION, kb);
	CHECK_EQ_INT(connect_once(a, cctx, NULL, &sess), 0);
	CHECK_EQ_INT(connect_once(b, cctx, sess, NULL), 1);
	SSL_SESSION_free(sess);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	SSL_CTX_free(cctx);
	ssl_tickets_free(ka);
	ssl_tickets_free(kb);
}

TEST(file_keys_shared_by_two_contexts)
{
	file_shared(48);
	file_shared(80);
}

TEST(cleanup)
{
	char cmd[300];

	ssl_tickets_stop();
	X509_free(cert);
	EVP_PKEY_free(pkey);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (have_tmpdir)
		CHECK(system(cmd) == 0);
}

UNIT_RUN()
