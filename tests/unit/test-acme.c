/* Unit tests for src/ssl/acme.c and acme-kw.c: the client's URL and HTTP response parsing, the
 * token table and the HTTP-01 path, base64url, the JWS signature (checked with OpenSSL), the
 * files (0600, atomic) and the "acme" section's keywords. The exchange with an authority is
 * tested against pebble in tests/system/test_acme.py. */
#include "../../src/ssl/acme.c"

#include <keel/cfg.h>

#include "cfgload.h"
#include "unit.h"

static int parse(const char *raw, struct rsp *r)
{
	char *err = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	r->raw = xstrdup(raw);
	rc = rsp_parse(r, strlen(raw), &err);
	free(err);
	if (rc != OK)
		rsp_free(r); /* as http_do() does */
	return rc;
}

TEST(url_parse_forms)
{
	struct url u;
	char *err = NULL;

	CHECK(url_parse("https://acme.example/dir", &u, &err) == OK);
	CHECK_STR(u.host, "acme.example");
	CHECK_STR(u.port, "443");
	CHECK_STR(u.path, "/dir");
	CHECK(url_parse("https://127.0.0.1:14000", &u, &err) == OK);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_STR(u.port, "14000");
	CHECK_STR(u.path, "/");
	CHECK(url_parse("https://[::1]:8443/a?b", &u, &err) == OK);
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.port, "8443");
	CHECK_STR(u.path, "/a?b");
	CHECK(url_parse("http://a/b", &u, &err) == ERR);
	free(err), err = NULL;
	CHECK(url_parse("https:///x", &u, &err) == ERR);
	free(err), err = NULL;
	CHECK(url_parse("https://a:/x", &u, &err) == ERR);
	free(err), err = NULL;
	CHECK(url_parse("https://[::1/x", &u, &err) == ERR);
	free(err), err = NULL;
	CHECK(url_parse("https://a?x", &u, &err) == ERR);
	free(err), err = NULL;
	CHECK(url_parse("https://a b/x", &u, &err) == ERR);
	free(err);
}

TEST(response_headers_and_lengths)
{
	struct rsp r;

	CHECK(parse("HTTP/1.1 201 Created\r\nlocation: https://a/o/1\r\nReplay-Nonce:  abc \r\n"
		    "Content-Length: 2\r\nRetry-After: 3\r\n\r\n{}junk",
		    &r) == OK);
	CHECK_EQ_INT(r.status, 201);
	CHECK_STR(r.location, "https://a/o/1");
	CHECK_STR(r.nonce, "abc");
	CHECK_EQ_INT(r.retry_after, 3);
	CHECK_EQ_INT((int)r.len, 2);
	CHECK_STR(r.body, "{}");
	rsp_free(&r);
	CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
		    &r) == OK);
	CHECK_STR(r.body, "abcde");
	rsp_free(&r);
	/* until the close */
	CHECK(parse("HTTP/1.0 200 OK\r\n\r\nhello", &r) == OK);
	CHECK_STR(r.body, "hello");
	rsp_free(&r);
}

TEST(response_malformed)
{
	struct rsp r;

	CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", &r) == ERR);
	CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", &r) == ERR);
	CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &r) == ERR);
	CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n", &r) ==
	      ERR);
	CHECK(parse("SSH-2.0\r\n\r\n", &r) == ERR);
	CHECK(parse("HTTP/1.1 200 OK\r\n", &r) == ERR);
}

TEST(base64url)
{
	char *s;

	s = b64url((const unsigned char *)"\xfb\xff", 2);
	CHECK_STR(s, "-_8");
	free(s);
	s = b64url_str("");
	CHECK_STR(s, "");
	free(s);
	s = b64url_str("{\"a\":1}");
	CHECK_STR(s, "eyJhIjoxfQ");
	free(s);
}

static struct http_head head(const char *line)
{
	struct http_head h = {.base = line};
	const char *sp = strchr(line, ' '), *end = strchr(sp + 1, ' ');

	h.path.off = (uint32_t)(sp + 1 - line);
	h.path.len = (uint32_t)(end - sp - 1);
	return h;
}

TEST(tokens_and_the_challenge_path)
{
	char out[256];
	struct http_head h;

	CHECK(acme_token_add("tok-1", "tok-1.thumb") == OK);
	CHECK(acme_token_add("tok-2", "tok-2.thumb") == OK);
	CHECK_EQ_INT(acme_token_find("tok-1", 5, out, sizeof(out)), 11);
	CHECK_STR(out, "tok-1.thumb");
	CHECK_EQ_INT(acme_token_find("tok-", 4, out, sizeof(out)), -1);
	CHECK_EQ_INT(acme_token_find("tok-1", 5, out, 4), -1); /* does not fit */
	h = head("GET /.well-known/acme-challenge/tok-2 HTTP/1.1");
	CHECK(http01_claims(NULL, &h));
	h = head("GET /.well-known/acme-challenge/tok-2?x=1 HTTP/1.1");
	CHECK(http01_claims(NULL, &h));
	h = head("GET /.well-known/acme-challenge/tok-3 HTTP/1.1");
	CHECK(!http01_claims(NULL, &h)); /* unknown: left to the servers */
	h = head("GET /.well-known/acme-challenge/ HTTP/1.1");
	CHECK(!http01_claims(NULL, &h));
	h = head("GET /tok-2 HTTP/1.1");
	CHECK(!http01_claims(NULL, &h));
	acme_token_del("tok-2");
	h = head("GET /.well-known/acme-challenge/tok-2 HTTP/1.1");
	CHECK(!http01_claims(NULL, &h));
	acme_token_del("tok-1");
	CHECK_EQ_INT(ntokens, 0);
}

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
	static char p[128];

	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/keel-acme-XXXXXX");
		if (!mkdtemp(tmpdir))
			abort();
	}
	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	return p;
}

/* An account key is made when missing, 0600; a JWS signature verifies with its public key. */
static void check_sig(const char *curve_file, int sig_len)
{
	struct acme_sect s = {.name = "t", .account_key = tmp_path(curve_file)};
	struct acct a = {.s = &s};
	char *err = NULL, *sig;
	struct stat st;

	if (!CHECK(acct_key(&a, &err) == OK))
		return;
	CHECK(stat(s.account_key, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_EQ_INT(a.sig_len, sig_len);
	CHECK(strlen(a.thumb) == 43); /* SHA-256 in base64url */
	sig = jws_sign(&a, "eyJhIjoxfQ.e30");
	if (CHECK(sig != NULL)) {
		/* r||s back to DER, verified by OpenSSL */
		unsigned char raw[96], *der = NULL;
		size_t i, n = strlen(sig);
		char *b = xmalloc(n + 4);
		int len, dl;
		ECDSA_SIG *es = ECDSA_SIG_new();
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		for (i = 0; i < n; i++)
			b[i] = sig[i] == '-' ? '+' : sig[i] == '_' ? '/' : sig[i];
		while (i % 4)
			b[i++] = '=';
		b[i] = '\0';
		len = EVP_DecodeBlock(raw, (unsigned char *)b, (int)i);
		CHECK(len >= 2 * sig_len);
		ECDSA_SIG_set0(es, BN_bin2bn(raw, sig_len, NULL),
			       BN_bin2bn(raw + sig_len, sig_len, NULL));
		dl = i2d_ECDSA_SIG(es, &der);
		CHECK(EVP_DigestVerifyInit(md, NULL, a.md, NULL, a.key) == 1);
		CHECK(EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)"eyJhIjoxfQ.e30",
				       14) == 1);
		OPENSSL_free(der);
		ECDSA_SIG_free(es);
		EVP_MD_CTX_free(md);
		free(b);
	}
	free(sig);
	EVP_PKEY_free(a.key);
	json_decref(a.jwk);
	free(a.thumb);
}

TEST(account_key_and_signature)
{
	check_sig("acct.key", 32);
}

TEST(write_file_is_0600_and_atomic)
{
	const char *p = tmp_path("f.pem");
	char *err = NULL, buf[16] = "";
	struct stat st;
	FILE *f;

	CHECK(acme_write_file(p, "one", 3, &err) == OK);
	chmod(p, 0644);
	CHECK(acme_write_file(p, "two", 3, &err) == OK);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
	f = fopen(p, "r");
	if (CHECK(f)) {
		CHECK(fgets(buf, sizeof(buf), f) != NULL);
		fclose(f);
	}
	CHECK_STR(buf, "two");
	CHECK(acme_write_file("/nonexistent/dir/x", "a", 1, &err) == ERR);
	CHECK(err && strstr(err, "/nonexistent/dir/x"));
	free(err);
}

TEST(section_and_bind_options)
{
	char cfg[1024];
	const char *crt = tmp_path("site.pem");
	struct acme_cert *c;
	struct acme_sect *s;
	struct job jb = {0};
	const char *why;

	unlink(crt);
	snprintf(cfg, sizeof(cfg),
		 "acme LE\n directory https://acme.example/dir\n account-key /k.key\n"
		 " contact a@example.org\n challenge http-01\n keytype RSA\n bits 3072\n"
		 " renew-before 10d\n retry-delay 2m\n"
		 "frontend fe\n mode http\n bind 127.0.0.1:8443 ssl crt %s acme LE domains "
		 "A.test,b.test\n"
		 " default_backend be\nbackend be\n server s 127.0.0.1:1\n",
		 crt);
	if (!CHECK(load(cfg) == 0))
		return;
	s = acme_sects();
	c = acme_certs();
	if (!CHECK(s && c))
		return;
	CHECK_STR(s->directory, "https://acme.example/dir");
	CHECK_STR(s->account_key, "/k.key");
	CHECK_STR(s->contact, "a@example.org");
	CHECK(s->keytype == ACME_KEY_RSA && s->bits == 3072);
	CHECK_EQ_INT(s->renew_before, 864000);
	CHECK_EQ_INT(s->retry_delay, 120);
	CHECK(c->sect == s && c->ndomains == 2);
	CHECK_STR(c->domains[0], "a.test");
	CHECK_STR(c->path, crt);
	/* the temporary certificate: there, and due at once */
	jb.c = c;
	CHECK(due(&jb, &why) == 0);
	CHECK_STR(why, "temporary self-signed certificate");
	/* defaults: HAProxy's account key name, ECDSA P-384, one minute */
	snprintf(cfg, sizeof(cfg),
		 "acme LE\n directory https://acme.example/dir\n"
		 "frontend fe\n mode http\n bind 127.0.0.1:8443 ssl crt %s acme LE domains a.test\n"
		 " default_backend be\nbackend be\n server s 127.0.0.1:1\n",
		 crt);
	if (!CHECK(load(cfg) == 0))
		return;
	s = acme_sects();
	CHECK_STR(s->account_key, "LE.account.key");
	CHECK(s->keytype == ACME_KEY_ECDSA && !strcmp(s->curve, "P-384"));
	CHECK_EQ_INT(s->retry_delay, 60);
	CHECK_EQ_INT(s->renew_before, 0);
}

TEST(config_errors)
{
	char msg[2048], cfg[1024];

	CHECK(load_msgs("acme LE\n directory https://a/d\nacme LE\n directory https://a/d\n", msg,
			sizeof(msg)) != 0);
	CHECK(strstr(msg, "declared twice"));
	CHECK(load_msgs("acme\n", msg, sizeof(msg)) != 0);
	CHECK(strstr(msg, "'acme' expects a name"));
	CHECK(load_msgs("acme LE\n directory https://a/d\n bits 512\n", msg, sizeof(msg)) != 0);
	CHECK(strstr(msg, "'bits' expects a number from 2048 to 8192"));
	CHECK(load_msgs("acme LE\n directory https://a/d\n curves P-521\n", msg, sizeof(msg)) != 0);
	CHECK(strstr(msg, "'curves' expects P-256 or P-384"));
	CHECK(load_msgs("frontend fe\n mode http\n bind :8443 acme LE\n", msg, sizeof(msg)) != 0);
	CHECK(strstr(msg, "must follow a 'crt FILE'"));
	snprintf(cfg, sizeof(cfg),
		 "global\n chroot /var/empty\nacme LE\n directory https://a/d\n"
		 "frontend fe\n mode http\n bind 127.0.0.1:8443 ssl crt %s acme LE domains a\n"
		 " default_backend be\nbackend be\n server s 127.0.0.1:1\n",
		 tmp_path("chroot.pem"));
	CHECK(load_msgs(cfg, msg, sizeof(msg)) != 0);
	CHECK(strstr(msg, "does not work with 'chroot'"));
	CHECK(access(tmp_path("chroot.pem"), F_OK) == -1); /* refused before any file is made */
}

TEST(cleanup)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	CHECK(!tmpdir[0] || system(cmd) == 0);
}

UNIT_RUN()
