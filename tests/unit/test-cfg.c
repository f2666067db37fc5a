/* Unit tests for src/cfg: the tokenizer, value parsers, addresses, the keyword hint, and loading
 * whole configurations (the seed HAProxy config, defaults inheritance, backend resolution and the
 * errors that must reject a configuration). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/proxy.h>

#include "cfgload.h"
#include "unit.h"

static struct proxy *px(const char *name, unsigned cap)
{
	return proxy_by_name(name, cap);
}

static int nproxies(void)
{
	struct list *l;
	int n = 0;

	for (l = keel_proxies.next; l != &keel_proxies; l = l->next)
		n++;
	return n;
}

static int nbinds(const struct proxy *p)
{
	struct list *l;
	int n = 0;

	for (l = p->binds.next; l != &p->binds; l = l->next)
		n++;
	return n;
}

static struct switching_rule *rule_at(struct proxy *p, int idx)
{
	struct list *l;

	for (l = p->switching.next; l != &p->switching; l = l->next)
		if (idx-- == 0)
			return list_entry(l, struct switching_rule, list);
	return NULL;
}

/* Tokenizes a line into static storage; returns argc. */
static char tok_out[1024];
static char *tok_argv[CFG_MAX_ARGS + 1];
static const char *tok_err;

static int tok(const char *line)
{
	size_t len = strlen(line);

	tok_err = NULL;
	memset(tok_out, 0x5a, sizeof(tok_out));
	if (len + 1 > sizeof(tok_out))
		return -2;
	return cfg_tokenize(line, len, tok_out, sizeof(tok_out), tok_argv, CFG_MAX_ARGS, &tok_err);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
					       : ((const struct sockaddr_in *)ss)->sin_port);
}

static bool is_v4(const struct sockaddr_storage *ss, const char *ip)
{
	struct in_addr a;

	inet_pton(AF_INET, ip, &a);
	return ss->ss_family == AF_INET &&
	       ((const struct sockaddr_in *)ss)->sin_addr.s_addr == a.s_addr;
}

static bool is_v6(const struct sockaddr_storage *ss, const char *ip)
{
	struct in6_addr a;

	inet_pton(AF_INET6, ip, &a);
	return ss->ss_family == AF_INET6 &&
	       !memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, &a, sizeof(a));
}

/* ---- tokenizer ---- */

TEST(tokenize_words_and_whitespace)
{
	if (CHECK_EQ_INT(tok("  server\twebA   127.0.0.1:9001 \t check\r"), 4)) {
		CHECK_STR(tok_argv[0], "server");
		CHECK_STR(tok_argv[1], "webA");
		CHECK_STR(tok_argv[2], "127.0.0.1:9001");
		CHECK_STR(tok_argv[3], "check");
	}
	CHECK_EQ_INT(tok(""), 0);
	CHECK_EQ_INT(tok("   \t  "), 0);
	CHECK_EQ_INT(tok("# a comment"), 0);
	CHECK_EQ_INT(tok("   # indented comment"), 0);
}

TEST(tokenize_quotes)
{
	if (CHECK_EQ_INT(tok("log-format \"%ci %[src] x\" 'single \"q\"' end"), 4)) {
		CHECK_STR(tok_argv[1], "%ci %[src] x");
		CHECK_STR(tok_argv[2], "single \"q\"");
		CHECK_STR(tok_argv[3], "end");
	}
	/* Quotes glue to the surrounding word; an empty pair is an empty argument. */
	if (CHECK_EQ_INT(tok("a\"b c\"d \"\" e"), 3)) {
		CHECK_STR(tok_argv[0], "ab cd");
		CHECK_STR(tok_argv[1], "");
		CHECK_STR(tok_argv[2], "e");
	}
	/* '#' inside quotes is not a comment. */
	if (CHECK_EQ_INT(tok("x \"a#b\" 'c#d' # real comment"), 3)) {
		CHECK_STR(tok_argv[1], "a#b");
		CHECK_STR(tok_argv[2], "c#d");
	}
	CHECK_EQ_INT(tok("x \"unterminated"), -1);
	CHECK(tok_err != NULL);
	CHECK_EQ_INT(tok("x 'unterminated"), -1);
	CHECK(tok_err != NULL);
}

TEST(tokenize_escapes)
{
	if (CHECK_EQ_INT(tok("a\\ b c\\\"d \\x41\\x62 e\\#f \\\\ \"q\\\"q\""), 6)) {
		CHECK_STR(tok_argv[0], "a b");
		CHECK_STR(tok_argv[1], "c\"d");
		CHECK_STR(tok_argv[2], "Ab");
		CHECK_STR(tok_argv[3], "e#f");
		CHECK_STR(tok_argv[4], "\\");
		CHECK_STR(tok_argv[5], "q\"q");
	}
	if (CHECK_EQ_INT(tok("x \\n\\r\\t"), 2))
		CHECK_STR(tok_argv[1], "\n\r\t");
	/* No escapes inside single quotes. */
	if (CHECK_EQ_INT(tok("'a\\nb'"), 1))
		CHECK_STR(tok_argv[0], "a\\nb");
	CHECK_EQ_INT(tok("x \\"), -1);
	CHECK(tok_err != NULL);
	CHECK_EQ_INT(tok("x \\xZ1"), -1);
	CHECK_EQ_INT(tok("x \\x4"), -1);
}

TEST(tokenize_comments)
{
	if (CHECK_EQ_INT(tok("bind :80 # the public side"), 2))
		CHECK_STR(tok_argv[1], ":80");
	if (CHECK_EQ_INT(tok("bind :80#glued"), 2))
		CHECK_STR(tok_argv[1], ":80");
}

TEST(tokenize_env)
{
	setenv("KEEL_UT_X", "hello", 1);
	setenv("KEEL_UT_EMPTY", "", 1);
	unsetenv("KEEL_UT_UNSET");
	if (CHECK_EQ_INT(tok("a${KEEL_UT_X}b \"${KEEL_UT_X} w\" '${KEEL_UT_X}' ${KEEL_UT_UNSET}z"),
			 4)) {
		CHECK_STR(tok_argv[0], "ahellob");
		CHECK_STR(tok_argv[1], "hello w");
		CHECK_STR(tok_argv[2], "${KEEL_UT_X}");
		CHECK_STR(tok_argv[3], "z");
	}
	/* An argument made only of an empty expansion is still an argument. */
	if (CHECK_EQ_INT(tok("x ${KEEL_UT_EMPTY} y"), 3))
		CHECK_STR(tok_argv[1], "");
	/* Not references: kept as they are. */
	if (CHECK_EQ_INT(tok("$KEEL_UT_X ${} ${bad-name} $"), 4)) {
		CHECK_STR(tok_argv[0], "$KEEL_UT_X");
		CHECK_STR(tok_argv[1], "${}");
		CHECK_STR(tok_argv[2], "${bad-name}");
		CHECK_STR(tok_argv[3], "$");
	}
}

/* Regression (was a bug in src/cfg/cfg.c, cfg_tokenize/expand_env): the output capacity is the length of the line
 * (cap = len), so an expansion longer than what remains of the line is silently truncated:
 * "stats uri ${URI}" with a 40-character URI gives a 15-character one (load_text allocates 4096
 * bytes but still passes len). Worse, once an expansion filled out[] to cap, the next literal
 * character and the terminating NUL are written past len+1 bytes (heap overflow of the caller's
 * buffer), and a second expansion computes n = ocap - *olen with *olen > ocap: a memcpy of
 * SIZE_MAX bytes. "stats uri ${LONG}a${LONG}" in a config file crashes keel at load. */
TEST(tokenize_env_longer_than_line)
{
	const char *v = "/a/much/longer/path/than/the/line/itself";
	static const char *const lines[] = {"${KEEL_UT_URI}a b", "${KEEL_UT_URI}a${KEEL_UT_URI}"};
	char cfgtext[256];
	size_t i;

	setenv("KEEL_UT_URI", v, 1);
	if (CHECK_EQ_INT(tok("x ${KEEL_UT_URI}"), 2))
		CHECK_STR(tok_argv[1], v);
	snprintf(cfgtext, sizeof(cfgtext),
		 "listen l\n bind :8080\n stats uri ${KEEL_UT_URI}\n server s 127.0.0.1:1\n");
	if (CHECK_EQ_INT(load(cfgtext), OK))
		CHECK_STR(px("l", PR_CAP_FE)->stats.uri, v);
	cfg_reset();
	/* Exactly the documented len+1 bytes: AddressSanitizer sees the writes past the end. */
	for (i = 0; i < ARRAY_SIZE(lines); i++) {
		size_t len = strlen(lines[i]);
		char *out = malloc(len + 1);
		char *argv[4];
		const char *err = NULL;

		if (out)
			/* too long for len+1 bytes after expansion: a clean error, no overflow */
			CHECK_EQ_INT(cfg_tokenize(lines[i], len, out, len + 1, argv, 4, &err), -1);
		free(out);
	}
}

TEST(tokenize_limits)
{
	char line[512];
	int i, o = 0;
	char *argv4[5];
	char out[64];
	const char *err = NULL;

	for (i = 0; i < CFG_MAX_ARGS + 1; i++)
		o += snprintf(line + o, sizeof(line) - (size_t)o, "a ");
	CHECK_EQ_INT(tok(line), -1);
	CHECK(tok_err != NULL);
	CHECK_EQ_INT(cfg_tokenize("a b c d", 7, out, sizeof(out), argv4, 4, &err), 4);
	CHECK_EQ_INT(cfg_tokenize("a b c d e", 9, out, sizeof(out), argv4, 4, &err), -1);
	/* A NUL inside the line is an error, not the end of the line. */
	CHECK_EQ_INT(cfg_tokenize("ab\0cd", 5, out, sizeof(out), argv4, 4, &err), -1);
	CHECK(err != NULL);
}

/* ---- values ---- */

static bool time_is(const char *s, uint32_t want)
{
	uint32_t ms = 0xdeadbeef;
	const char *err = NULL;

	if (cfg_parse_time(s, &ms, &err) != OK)
		return FAIL("cfg_parse_time(\"%s\") failed: %s", s, err ? err : "?");
	if (ms != want)
		return FAIL("cfg_parse_time(\"%s\") = %u, expected %u", s, ms, want);
	return true;
}

static bool time_bad(const char *s)
{
	uint32_t ms = 0;
	const char *err = NULL;

	if (cfg_parse_time(s, &ms, &err) == OK)
		return FAIL("cfg_parse_time(\"%s\") accepted (%u)", s, ms);
	if (!err)
		return FAIL("cfg_parse_time(\"%s\") gave no reason", s);
	return true;
}

TEST(parse_time)
{
	time_is("0", 0);
	time_is("10", 10);
	time_is("100ms", 100);
	time_is("5s", 5000);
	time_is("1m", 60000);
	time_is("2h", 7200000);
	time_is("1d", 86400000);
	time_is("24d", 2073600000);
	time_is("1500us", 1);
	time_is("500us", 1); /* a non-zero time never rounds down to "no timeout" */
	time_bad("");
	time_bad("s");
	time_bad("abc");
	time_bad("-5");
	time_bad("5x");
	time_bad("5 s");
	time_bad("5sec");
	time_bad("25d");
	time_bad("99999999999");
	time_bad("18446744073709551616");
}

/* Regression (was a bug in minor, src/cfg/cfg.c, cfg_parse_time): the round-up of sub-millisecond values compares
 * the whole string with "0", so "0us" (and "0000us") gives 1 ms instead of 0. */
TEST(parse_time_zero_us)
{
	time_is("0us", 0);
}

static bool size_is(const char *s, uint32_t want)
{
	uint32_t v = 0xdeadbeef;
	const char *err = NULL;

	if (cfg_parse_size(s, &v, &err) != OK)
		return FAIL("cfg_parse_size(\"%s\") failed: %s", s, err ? err : "?");
	if (v != want)
		return FAIL("cfg_parse_size(\"%s\") = %u, expected %u", s, v, want);
	return true;
}

static bool size_bad(const char *s)
{
	uint32_t v = 0;
	const char *err = NULL;

	if (cfg_parse_size(s, &v, &err) == OK)
		return FAIL("cfg_parse_size(\"%s\") accepted (%u)", s, v);
	return err ? true : FAIL("no reason for \"%s\"", s);
}

TEST(parse_size)
{
	size_is("0", 0);
	size_is("16384", 16384);
	size_is("16k", 16384);
	size_is("16K", 16384);
	size_is("1m", 1048576);
	size_is("1g", 1073741824);
	size_bad("");
	size_bad("k");
	size_bad("5x");
	size_bad("5kb");
	size_bad("-1");
	size_bad("2g");
	size_bad("4294967296");
	size_bad("99999999999999999999999");
}

/* Regression (was a bug in src/cfg/cfg.c, cfg_parse_size): the unit shift is done in 64 bits without an overflow
 * check, so a huge number wraps: "18014398509481984k" (2^54 << 10 = 2^64) is accepted as 0 and
 * "18014398509481985k" as 1024, e.g. "tune.bufsize 18014398509481985k" loads as 1024. */
TEST(parse_size_overflow)
{
	size_bad("18014398509481984k");
	size_bad("18014398509481985k");
	size_bad("17179869184g");
}

TEST(parse_int)
{
	long v = 0;

	CHECK_EQ_INT(cfg_parse_int("42", 0, 100, &v), OK);
	CHECK_EQ_INT(v, 42);
	CHECK_EQ_INT(cfg_parse_int("-3", -5, 5, &v), OK);
	CHECK_EQ_INT(v, -3);
	CHECK_EQ_INT(cfg_parse_int("101", 0, 100, &v), ERR);
	CHECK_EQ_INT(cfg_parse_int("", 0, 100, &v), ERR);
	CHECK_EQ_INT(cfg_parse_int("4x", 0, 100, &v), ERR);
	CHECK_EQ_INT(cfg_parse_int("99999999999999999999", 0, 100, &v), ERR);
}

/* ---- addresses ---- */

TEST(parse_addr)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	bool no_port = true;
	char *err = NULL;

	if (CHECK_EQ_INT(cfg_parse_addr("*:80", &ss, &len, false, &no_port, &err), OK)) {
		CHECK(is_v4(&ss, "0.0.0.0"));
		CHECK_EQ_INT(port_of(&ss), 80);
		CHECK_EQ_INT(len, sizeof(struct sockaddr_in));
		CHECK(!no_port);
	}
	if (CHECK_EQ_INT(cfg_parse_addr(":8443", &ss, &len, false, NULL, &err), OK)) {
		CHECK(is_v4(&ss, "0.0.0.0"));
		CHECK_EQ_INT(port_of(&ss), 8443);
	}
	if (CHECK_EQ_INT(cfg_parse_addr("127.0.0.1:8080", &ss, &len, false, NULL, &err), OK)) {
		CHECK(is_v4(&ss, "127.0.0.1"));
		CHECK_EQ_INT(port_of(&ss), 8080);
	}
	if (CHECK_EQ_INT(cfg_parse_addr("[::1]:80", &ss, &len, false, NULL, &err), OK)) {
		CHECK(is_v6(&ss, "::1"));
		CHECK_EQ_INT(port_of(&ss), 80);
		CHECK_EQ_INT(len, sizeof(struct sockaddr_in6));
	}
	if (CHECK_EQ_INT(cfg_parse_addr("[2001:db8::5]:65535", &ss, &len, false, NULL, &err), OK)) {
		CHECK(is_v6(&ss, "2001:db8::5"));
		CHECK_EQ_INT(port_of(&ss), 65535);
	}
	if (CHECK_EQ_INT(cfg_parse_addr("ipv6@:80", &ss, &len, false, NULL, &err), OK))
		CHECK(is_v6(&ss, "::"));
	if (CHECK_EQ_INT(cfg_parse_addr("ipv4@10.1.2.3:81", &ss, &len, false, NULL, &err), OK))
		CHECK(is_v4(&ss, "10.1.2.3"));
	/* Servers may omit the port (the client's port is used). */
	if (CHECK_EQ_INT(cfg_parse_addr("10.0.0.1", &ss, &len, true, &no_port, &err), OK)) {
		CHECK(no_port);
		CHECK(is_v4(&ss, "10.0.0.1"));
	}
	if (CHECK_EQ_INT(cfg_parse_addr("[::1]", &ss, &len, true, &no_port, &err), OK)) {
		CHECK(no_port);
		CHECK(is_v6(&ss, "::1"));
	}
}

static bool addr_bad(const char *s, bool port_opt)
{
	struct sockaddr_storage ss;
	socklen_t len;
	bool np;
	char *err = NULL;

	if (cfg_parse_addr(s, &ss, &len, port_opt, &np, &err) == OK)
		return FAIL("cfg_parse_addr(\"%s\") accepted", s);
	if (!err)
		return FAIL("cfg_parse_addr(\"%s\") gave no reason", s);
	free(err);
	return true;
}

TEST(parse_addr_errors)
{
	addr_bad("127.0.0.1", false); /* missing port */
	addr_bad("[::1]", false);
	addr_bad("127.0.0.1:", false);
	addr_bad("127.0.0.1:0", false);
	addr_bad("127.0.0.1:65536", false);
	addr_bad("127.0.0.1:http", false);
	addr_bad("127.0.0.1:-1", false);
	addr_bad("[::1:80", false);
	addr_bad("[::1]x80", false);
	addr_bad("unix@/tmp/sock", false);
	addr_bad("/tmp/sock", false);
	addr_bad("ipv4@::1:80", false);
	addr_bad("ipv6@127.0.0.1:80", false);
}

TEST(nearest_keyword)
{
	static const char *const kws[] = {"bind", "balance", "backend", "server", "timeout"};

	CHECK_STR(cfg_nearest("bnd", kws, ARRAY_SIZE(kws)), "bind");
	CHECK_STR(cfg_nearest("BIND", kws, ARRAY_SIZE(kws)), "bind");
	CHECK_STR(cfg_nearest("severs", kws, ARRAY_SIZE(kws)), "server");
	CHECK_STR(cfg_nearest("timeot", kws, ARRAY_SIZE(kws)), "timeout");
	CHECK_STR(cfg_nearest("xyzzyqw", kws, ARRAY_SIZE(kws)), NULL);
	CHECK_STR(cfg_nearest("bind", kws, 0), NULL);
	/* With the real tables, the way the loader calls it. */
	{
		const char *c[512];
		size_t n = 0, i;

		for (i = 0; proxy_kw[i].name && n < ARRAY_SIZE(c); i++)
			c[n++] = proxy_kw[i].name;
		CHECK_STR(cfg_nearest("bnd", c, n), "bind");
		CHECK_STR(cfg_nearest("default_backnd", c, n), "default_backend");
	}
}

/* ---- whole configurations ---- */

/* Opens tests/unit/data/NAME: $UNIT_DATA_DIR, next to this source file (the Makefile compiles
 * from the top of the tree), or three levels above the binary (build/<name>/tests/). */
static FILE *open_data(const char *name)
{
	const char *file = __FILE__, *slash = strrchr(file, '/'), *env = getenv("UNIT_DATA_DIR");
	char path[1024], exe[900];
	ssize_t n;
	FILE *f = NULL;

	if (env) {
		snprintf(path, sizeof(path), "%s/%s", env, name);
		f = fopen(path, "r");
	}
	if (!f) {
		snprintf(path, sizeof(path), "%.*sdata/%s", slash ? (int)(slash - file + 1) : 0,
			 file, name);
		f = fopen(path, "r");
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (!f && n > 0) {
		int up = 0;

		exe[n] = '\0';
		while (up < 4 && (slash = strrchr(exe, '/')) != NULL) {
			exe[slash - exe] = '\0';
			up++;
		}
		snprintf(path, sizeof(path), "%s/tests/unit/data/%s", exe, name);
		f = fopen(path, "r");
	}
	return f;
}

static char *read_data(const char *name, size_t *len)
{
	FILE *f = open_data(name);
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

TEST(seed_config)
{
	size_t len = 0;
	char *text = read_data("seed-haproxy.cfg", &len);
	struct proxy *p;
	struct bind_conf *b;

	if (!CHECK(text != NULL)) {
		FAIL("tests/unit/data/seed-haproxy.cfg not found (set UNIT_DATA_DIR)");
		return;
	}
	cfg_reset();
	cfg_silent = true;
	if (!CHECK_EQ_INT(cfg_load_string("seed-haproxy.cfg", text, len), OK))
		goto out;
	/* global */
	CHECK_EQ_INT(global.maxconn, 4096);
	CHECK_EQ_INT(global.ulimit_n, 8250);
	CHECK_STR(global.chroot, "/var/lib/keel-example");
	CHECK_STR(global.user, "nobody");
	CHECK_STR(global.group, "nogroup");
	CHECK(global.daemon);
	CHECK(global.quiet);
	CHECK_STR(global.pidfile, "/tmp/keel-example.pid");
	if (CHECK_EQ_INT(global.logs.n, 1)) {
		CHECK(is_v4(&global.logs.t[0].addr, "127.0.0.1"));
		CHECK_EQ_INT(port_of(&global.logs.t[0].addr), 514);
		CHECK_EQ_INT(global.logs.t[0].facility, 18); /* local2 */
		CHECK_EQ_INT(global.logs.t[0].level, 6);     /* info */
	}
	/* listen www */
	CHECK_EQ_INT(nproxies(), 1);
	p = px("www", PR_CAP_FE);
	if (!CHECK(p != NULL))
		goto out;
	CHECK(p == px("www", PR_CAP_BE));
	CHECK_EQ_INT(p->cap, PR_CAP_FE | PR_CAP_BE);
	if (CHECK_EQ_INT(nbinds(p), 1)) {
		b = list_first(&p->binds, struct bind_conf, list);
		CHECK(is_v4(&b->addr, "127.0.0.1"));
		CHECK_EQ_INT(port_of(&b->addr), 8080);
	}
	CHECK_EQ_INT(p->lb, LB_ROUNDROBIN);
	CHECK(p->opts & PO_FORWARDFOR);
	CHECK(p->opts & PO_HTTPLOG);
	CHECK(p->opts & PO_DONTLOGNULL);
	CHECK(p->opts & PO_REDISPATCH);
	CHECK(p->opts & PO_HTTPCHK);
	CHECK_STR(p->chk.method, "GET");
	CHECK_STR(p->chk.uri, "/@api/host/test");
	CHECK(p->stats.enabled);
	CHECK_STR(p->stats.uri, "/haproxy-status");
	if (CHECK_EQ_INT(p->stats.nusers, 1)) {
		CHECK_STR(p->stats.users[0].user, "username");
		CHECK_STR(p->stats.users[0].pass, "password");
	}
	CHECK_EQ_INT(p->to.connect, 5000);
	CHECK_EQ_INT(p->to.client, 60000);
	CHECK_EQ_INT(p->to.server, 60000);
	CHECK_EQ_INT(p->retries, 3);
	CHECK_EQ_INT(p->maxconn, 2000);
	CHECK(p->log_global);
	if (CHECK_EQ_INT(p->nsrv, 2)) {
		CHECK_STR(p->srv[0]->name, "webA");
		CHECK_STR(p->srv[1]->name, "webB");
		CHECK(is_v4(&p->srv[0]->addr, "127.0.0.1"));
		CHECK_EQ_INT(port_of(&p->srv[0]->addr), 9001);
		CHECK_EQ_INT(port_of(&p->srv[1]->addr), 9002);
		CHECK(p->srv[0]->chk.enabled);
		CHECK_EQ_INT(p->srv[0]->weight, 1);
		CHECK_EQ_INT(p->srv[0]->id, 0);
		CHECK_EQ_INT(p->srv[1]->id, 1);
		CHECK(p->srv[0]->be == p);
		CHECK(!p->srv[0]->backup);
	}
out:
	cfg_reset();
	free(text);
}

TEST(reset_between_loads)
{
	CHECK_EQ_INT(load("backend a\n server s 127.0.0.1:1\n"), OK);
	CHECK(px("a", PR_CAP_BE) != NULL);
	cfg_reset();
	CHECK(list_empty(&keel_proxies));
	CHECK(px("a", PR_CAP_BE) == NULL);
	/* The same names load again. */
	CHECK_EQ_INT(load("backend a\n server s 127.0.0.1:1\n"), OK);
	CHECK_EQ_INT(nproxies(), 1);
	cfg_reset();
}

TEST(defaults_inheritance)
{
	const char *cfg = "defaults\n"
			  "  mode http\n"
			  "  timeout connect 3s\n"
			  "  timeout client 20s\n"
			  "  timeout server 30s\n"
			  "  option forwardfor\n"
			  "  option http-server-close\n"
			  "  retries 5\n"
			  "  balance leastconn\n"
			  "  default-server weight 7 maxconn 10\n"
			  "frontend fe\n"
			  "  bind :8080\n"
			  "  default_backend be\n"
			  "backend be\n"
			  "  no option http-server-close\n"
			  "  server a 127.0.0.1:1\n"
			  "  server b 127.0.0.1:2 weight 3\n"
			  "defaults second\n"
			  "  timeout connect 7s\n"
			  "backend be2\n"
			  "  server a 127.0.0.1:1\n";
	struct proxy *fe, *be, *be2;

	if (!CHECK_EQ_INT(load(cfg), OK))
		return;
	fe = px("fe", PR_CAP_FE);
	be = px("be", PR_CAP_BE);
	be2 = px("be2", PR_CAP_BE);
	if (!CHECK(fe && be && be2))
		goto out;
	CHECK_EQ_INT(fe->to.client, 20000);
	CHECK(fe->opts & PO_FORWARDFOR);
	CHECK_EQ_INT(be->to.connect, 3000);
	CHECK_EQ_INT(be->to.server, 30000);
	CHECK_EQ_INT(be->lb, LB_LEASTCONN);
	CHECK_EQ_INT(be->retries, 5);
	CHECK(be->opts & PO_FORWARDFOR);
	CHECK(!(be->opts & PO_HTTP_SERVER_CLOSE));
	CHECK(fe->opts & PO_HTTP_SERVER_CLOSE);
	if (CHECK_EQ_INT(be->nsrv, 2)) {
		CHECK_EQ_INT(be->srv[0]->weight, 7);
		CHECK_EQ_INT(be->srv[0]->maxconn, 10);
		CHECK_EQ_INT(be->srv[1]->weight, 3);
		CHECK_EQ_INT(be->srv[1]->maxconn, 10);
	}
	/* A new defaults section starts from scratch. */
	CHECK_EQ_INT(be2->to.connect, 7000);
	CHECK_EQ_INT(be2->to.server, 60000); /* keel's default */
	CHECK_EQ_INT(be2->lb, LB_ROUNDROBIN);
	CHECK_EQ_INT(be2->retries, 3);
	CHECK(!(be2->opts & PO_FORWARDFOR));
	if (CHECK_EQ_INT(be2->nsrv, 1))
		CHECK_EQ_INT(be2->srv[0]->weight, 1);
	/* Unset timeouts get keel's defaults at validation. */
	CHECK_EQ_INT(be2->to.client, 60000);
	CHECK_EQ_INT(be2->to.http_request, 10000);
	CHECK_EQ_INT(be2->to.queue, 5000);
	CHECK_EQ_INT(fe->to.http_request, 10000);
	CHECK_EQ_INT(fe->to.http_keep_alive, fe->to.http_request);
out:
	cfg_reset();
}

TEST(backend_resolution)
{
	const char *cfg = "frontend fe\n"
			  "  bind 127.0.0.1:8080\n"
			  "  acl is_api path_beg /api\n"
			  "  use_backend api if is_api\n"
			  "  use_backend static if { path_end .css .js }\n"
			  "  default_backend web\n"
			  "backend api\n"
			  "  server a 127.0.0.1:1\n"
			  "backend web\n"
			  "  server b 127.0.0.1:2\n"
			  "backend static\n"
			  "  server c 127.0.0.1:3\n";
	struct proxy *fe;
	struct switching_rule *r;

	if (!CHECK_EQ_INT(load(cfg), OK))
		return;
	fe = px("fe", PR_CAP_FE);
	if (!CHECK(fe != NULL))
		goto out;
	CHECK(fe->defbe == px("web", PR_CAP_BE));
	CHECK(fe->defbe != NULL);
	r = rule_at(fe, 0);
	if (CHECK(r != NULL)) {
		CHECK(r->be == px("api", PR_CAP_BE));
		CHECK(r->be != NULL);
		CHECK(r->cond != NULL);
	}
	r = rule_at(fe, 1);
	if (CHECK(r != NULL))
		CHECK(r->be == px("static", PR_CAP_BE));
	CHECK(rule_at(fe, 2) == NULL);
	/* A frontend name is not a backend. */
	CHECK(px("fe", PR_CAP_BE) == NULL);
out:
	cfg_reset();
}

TEST(old_listen_syntax_and_crlf)
{
	struct proxy *p;

	if (!CHECK_EQ_INT(load("listen app 127.0.0.1:8081\r\n  server s 127.0.0.1:1\r\n"), OK))
		return;
	p = px("app", PR_CAP_FE);
	if (CHECK(p != NULL) && CHECK_EQ_INT(nbinds(p), 1)) {
		CHECK_EQ_INT(port_of(&list_first(&p->binds, struct bind_conf, list)->addr), 8081);
		CHECK_STR(p->srv[0]->name, "s");
	}
	/* A listen section without bind is a backend only. */
	if (CHECK_EQ_INT(load("listen app\n server s 127.0.0.1:1\n"), OK))
		CHECK_EQ_INT(px("app", PR_CAP_BE)->cap, PR_CAP_BE);
	cfg_reset();
}

/* Configurations that must be rejected. */
static void reject(const char *what, const char *cfg)
{
	if (load(cfg) == OK)
		FAIL("%s: configuration accepted", what);
	cfg_reset();
}

TEST(rejected_configs)
{
	reject("unknown keyword", "frontend fe\n bnd :80\n");
	reject("unknown keyword in backend", "backend be\n servr s 127.0.0.1:1\n");
	reject("unknown keyword in global",
	       "global\n maxcon 10\nbackend b\n server s 127.0.0.1:1\n");
	reject("unknown default_backend", "frontend fe\n bind :80\n default_backend nope\n");
	reject("unknown use_backend", "frontend fe\n bind :80\n use_backend nope if TRUE\nbackend "
				      "b\n server s 127.0.0.1:1\n");
	reject("use_backend naming a frontend", "frontend fe\n bind :80\n default_backend fe2\n"
						"frontend fe2\n bind :81\n default_backend b\n"
						"backend b\n server s 127.0.0.1:1\n");
	reject("mode tcp", "defaults\n mode tcp\nbackend b\n server s 127.0.0.1:1\n");
	reject("mode tcp in backend", "backend b\n mode tcp\n server s 127.0.0.1:1\n");
	reject("server in frontend", "frontend fe\n bind :80\n server s 127.0.0.1:1\n");
	reject("bind in backend", "backend b\n bind :80\n server s 127.0.0.1:1\n");
	reject("unknown option", "backend b\n option forwardfour\n server s 127.0.0.1:1\n");
	reject("unknown balance", "backend b\n balance roundrobbin\n server s 127.0.0.1:1\n");
	reject("bad timeout value", "backend b\n timeout server 5x\n server s 127.0.0.1:1\n");
	reject("unknown timeout", "backend b\n timeout srever 5s\n server s 127.0.0.1:1\n");
	reject("server without port on bind", "frontend fe\n bind 127.0.0.1\n");
	reject("bad server address", "backend b\n server s 127.0.0.1:99999\n");
	reject("bad weight", "backend b\n server s 127.0.0.1:1 weight 1000\n");
	reject("unknown server option", "backend b\n server s 127.0.0.1:1 chek\n");
	reject("duplicate server", "backend b\n server s 127.0.0.1:1\n server s 127.0.0.1:2\n");
	reject("duplicate backend", "backend b\n server s 127.0.0.1:1\nbackend b\n");
	reject("frontend without bind", "frontend fe\n default_backend b\nbackend b\n");
	reject("keyword outside a section", "bind :80\nbackend b\n");
	reject("section without name", "backend\n server s 127.0.0.1:1\n");
	reject("nothing to do", "global\n daemon\n");
	reject("empty file", "");
	reject("unterminated quote", "backend b\n server s \"127.0.0.1:1\n");
	reject("unknown acl in condition", "frontend fe\n bind :80\n use_backend b if nope\n"
					   "backend b\n");
	reject("TLS bind option", "frontend fe\n bind :443 ssl crt /x.pem\n");
	reject("reqadd (removed from HAProxy)", "frontend fe\n bind :80\n reqadd X-A:\\ 1\n");
}

TEST(messages_name_file_line_and_suggest)
{
	static char msg[4096];

	CHECK_EQ_INT(load_msgs("frontend fe\n bnd :80\n", msg, sizeof(msg)), ERR);
	CHECK(strstr(msg, "[ALERT] test.cfg:2:") != NULL);
	CHECK(strstr(msg, "'bnd'") != NULL);
	CHECK(strstr(msg, "did you mean 'bind'") != NULL);
	CHECK_EQ_INT(
	    load_msgs("backend b\n server s 127.0.0.1:1\n use-server s if TRUE\n", msg,
		      sizeof(msg)),
	    OK);
	CHECK(strstr(msg, "[WARNING] test.cfg:3:") != NULL);
	CHECK(strstr(msg, "use-server") != NULL);
	CHECK(strstr(msg, "ALERT") == NULL);
	CHECK_EQ_INT(load_msgs("backend b\n server s 127.0.0.1:1\n", msg, sizeof(msg)), OK);
	CHECK(strstr(msg, "ALERT") == NULL);
	/* cfg_silent: nothing at all. */
	cfg_reset();
	cfg_silent = true;
	{
		FILE *tmp = tmpfile();
		int saved = dup(2);
		long size;

		if (tmp && saved >= 0) {
			fflush(stderr);
			dup2(fileno(tmp), 2);
			cfg_load_string("test.cfg", "frontend fe\n bnd :80\n", 21);
			fflush(stderr);
			dup2(saved, 2);
			fseek(tmp, 0, SEEK_END);
			size = ftell(tmp);
			CHECK_EQ_INT(size, 0);
		}
		if (tmp)
			fclose(tmp);
		if (saved >= 0)
			close(saved);
	}
	cfg_reset();
}

TEST(unimplemented_keywords_only_warn)
{
	CHECK_EQ_INT(load("backend b\n cookie SRV insert indirect nocache\n"
			  " server s 127.0.0.1:1 cookie s1\n"),
		     OK);
	CHECK_EQ_INT(load("backend b\n stick-table type ip size 1m\n server s 127.0.0.1:1\n"), OK);
	CHECK_EQ_INT(load("backend b\n option abortonclose\n server s 127.0.0.1:1\n"), OK);
	CHECK_EQ_INT(load("global\n tune.ssl.default-dh-param 2048\n"
			  "backend b\n server s 127.0.0.1:1\n"),
		     OK);
	CHECK_EQ_INT(load("peers p\n peer a 127.0.0.1:1024\nbackend b\n server s 127.0.0.1:1\n"),
		     OK);
	cfg_reset();
}

TEST(global_strict_limits)
{
	char msgs[2048];

	/* HAProxy's "no strict-limits" is what keel always does (it warns, never fails, when the
	 * descriptor limit is too low for maxconn): accepted without a message. */
	CHECK_EQ_INT(load_msgs("global\n maxconn 100\n no strict-limits\n"
			       "backend b\n server s 127.0.0.1:1\n",
			       msgs, sizeof(msgs)),
		     OK);
	CHECK(strstr(msgs, "strict-limits") == NULL);
	/* "strict-limits" asks for what keel does not do: accepted with a warning. */
	CHECK_EQ_INT(load_msgs("global\n strict-limits\nbackend b\n server s 127.0.0.1:1\n", msgs,
			       sizeof(msgs)),
		     OK);
	CHECK(strstr(msgs, "'strict-limits' is accepted but not implemented") != NULL);
	reject("no with another global keyword",
	       "global\n no daemon\nbackend b\n server s 127.0.0.1:1\n");
	reject("no alone", "global\n no\nbackend b\n server s 127.0.0.1:1\n");
	reject("no strict-limits with an argument",
	       "global\n no strict-limits 1\nbackend b\n server s 127.0.0.1:1\n");
	cfg_reset();
}

TEST(global_tunables)
{
	if (CHECK_EQ_INT(load("global\n nbthread 3\n tune.bufsize 32k\n tune.http.maxhdr 50\n"
			      " hard-stop-after 10s\nbackend b\n server s 127.0.0.1:1\n"),
			 OK)) {
		CHECK_EQ_INT(global.nbthread, 3);
		CHECK_EQ_INT(global.bufsize, 32768);
		CHECK_EQ_INT(global.maxhdr, 50);
		CHECK_EQ_INT(global.hard_stop_after, 10000);
	}
	reject("nbthread 0", "global\n nbthread 0\nbackend b\n");
	reject("tiny bufsize", "global\n tune.bufsize 100\nbackend b\n");
	/* Defaults when nothing is said. */
	if (CHECK_EQ_INT(load("backend b\n server s 127.0.0.1:1\n"), OK)) {
		CHECK_EQ_INT(global.bufsize, 16384);
		CHECK_EQ_INT(global.maxhdr, 101);
		CHECK(global.nbthread >= 1);
	}
	cfg_reset();
}

UNIT_RUN()
