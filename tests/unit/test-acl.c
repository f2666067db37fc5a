/* Unit tests for src/proxy/acl.c: ACL matching by method (str, beg, end, sub, reg, dir, dom, len,
 * int, ip), networks, and if/unless conditions evaluated on a hand-built session. ACLs are built
 * the way keel builds them: by loading a configuration. */
#include <arpa/inet.h>
#include <string.h>

#include <keel/acl.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/http.h>
#include <keel/proxy.h>
#include <keel/stream-t.h>

#include "cfgload.h"
#include "unit.h"

static struct proxy *fe;

/* Loads "frontend fe" with the given body, plus a backend for use_backend rules. */
static bool load_fe(const char *body)
{
	char text[8192];

	snprintf(text, sizeof(text),
		 "frontend fe\n bind :8080\n%s\n default_backend be\n"
		 "backend be\n server s 127.0.0.1:1\n",
		 body);
	cfg_reset();
	cfg_silent = true;
	if (cfg_load_string("acl.cfg", text, strlen(text)) != OK) {
		fe = NULL;
		return FAIL("configuration rejected:\n%s", text);
	}
	fe = proxy_by_name("fe", PR_CAP_FE);
	return fe != NULL;
}

static struct acl *acl_named(const char *name)
{
	struct list *l;

	for (l = fe->acls.next; l != &fe->acls; l = l->next) {
		struct acl *a = list_entry(l, struct acl, list);

		if (!strcmp(a->name, name))
			return a;
	}
	FAIL("no acl named '%s'", name);
	return NULL;
}

static struct sample str_smp(const char *s)
{
	struct sample smp;

	memset(&smp, 0, sizeof(smp));
	smp.str = s;
	smp.len = (uint32_t)strlen(s);
	return smp;
}

static struct sample int_smp(int64_t v)
{
	struct sample smp;

	memset(&smp, 0, sizeof(smp));
	smp.num = v;
	return smp;
}

static struct sample ip_smp(const char *ip)
{
	struct sample smp;

	memset(&smp, 0, sizeof(smp));
	smp.is_ip = 1;
	if (inet_pton(AF_INET, ip, smp.ip) == 1)
		smp.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, smp.ip) == 1)
		smp.family = AF_INET6;
	else
		FAIL("bad test address %s", ip);
	return smp;
}

/* Expects acl NAME to match (or not) a string sample. */
static bool str_is(const char *name, const char *v, bool want)
{
	struct acl *a = acl_named(name);
	struct sample smp = str_smp(v);

	if (!a)
		return false;
	if (acl_match(a, &smp) != want)
		return FAIL("acl %s on \"%s\": expected %s", name, v, want ? "match" : "no match");
	return true;
}

static bool int_is(const char *name, int64_t v, bool want)
{
	struct acl *a = acl_named(name);
	struct sample smp = int_smp(v);

	if (!a)
		return false;
	if (acl_match(a, &smp) != want)
		return FAIL("acl %s on %lld: expected %s", name, (long long)v,
			    want ? "match" : "no match");
	return true;
}

static bool ip_is(const char *name, const char *ip, bool want)
{
	struct acl *a = acl_named(name);
	struct sample smp = ip_smp(ip);

	if (!a)
		return false;
	if (acl_match(a, &smp) != want)
		return FAIL("acl %s on %s: expected %s", name, ip, want ? "match" : "no match");
	return true;
}

/* ---- match methods ---- */

TEST(match_str)
{
	if (!load_fe(" acl s path /exact /other\n"
		     " acl si path -i /Exact\n"
		     " acl sm path -m str /x\n"))
		return;
	CHECK_EQ_INT(acl_named("s")->match, ACL_M_STR);
	CHECK_EQ_INT(acl_named("s")->npats, 2);
	str_is("s", "/exact", true);
	str_is("s", "/other", true);
	str_is("s", "/exact2", false);
	str_is("s", "/exac", false);
	str_is("s", "/EXACT", false);
	str_is("s", "", false);
	str_is("si", "/exact", true);
	str_is("si", "/EXACT", true);
	str_is("si", "/exactx", false);
	str_is("sm", "/x", true);
	cfg_reset();
}

TEST(match_beg_end_sub)
{
	if (!load_fe(" acl b path_beg /api /v2/\n"
		     " acl bi path_beg -i /API\n"
		     " acl e path_end .css .js\n"
		     " acl ei path -i -m end .PNG\n"
		     " acl u path_sub admin\n"
		     " acl ui path_sub -i ADMIN\n"))
		return;
	CHECK_EQ_INT(acl_named("b")->match, ACL_M_BEG);
	str_is("b", "/api", true);
	str_is("b", "/api/users", true);
	str_is("b", "/v2/x", true);
	str_is("b", "/ap", false);
	str_is("b", "/API", false);
	str_is("b", "x/api", false);
	str_is("bi", "/Api/x", true);
	str_is("bi", "/ap", false);
	str_is("e", "/a.css", true);
	str_is("e", "/x/y.js", true);
	str_is("e", "/a.cs", false);
	str_is("e", "css", false);
	str_is("e", "/a.CSS", false);
	str_is("ei", "/img/a.png", true);
	str_is("ei", "/img/a.PnG", true);
	str_is("u", "/x/admin/y", true);
	str_is("u", "admin", true);
	str_is("u", "/adm", false);
	str_is("u", "/ADMIN", false);
	str_is("ui", "/x/Admin", true);
	cfg_reset();
}

TEST(match_reg)
{
	if (!load_fe(" acl r path_reg ^/img/[0-9]+\\.png$\n"
		     " acl ri path_reg -i ^/IMG/\n"
		     " acl rm url -m reg [?&]debug=1\n"))
		return;
	CHECK_EQ_INT(acl_named("r")->match, ACL_M_REG);
	str_is("r", "/img/12.png", true);
	str_is("r", "/img/x.png", false);
	str_is("r", "/img/12.pngx", false);
	str_is("r", "/IMG/12.png", false);
	str_is("ri", "/img/a", true);
	str_is("ri", "/Img/a", true);
	str_is("ri", "/x/img/", false);
	str_is("rm", "/p?a=b&debug=1", true);
	str_is("rm", "/p?nodebug=1", false);
	/* The sample is a view: the regex must not read past its length. */
	{
		struct acl *a = acl_named("r");
		struct sample smp = str_smp("/img/12.png/trailing");

		smp.len = 11;
		CHECK(a && acl_match(a, &smp));
	}
	cfg_reset();
}

TEST(match_dir_dom)
{
	if (!load_fe(" acl d path_dir api\n"
		     " acl di path_dir -i API\n"
		     " acl m hdr_dom(host) example\n"
		     " acl m2 hdr_dom(host) www.example.com\n"))
		return;
	CHECK_EQ_INT(acl_named("d")->match, ACL_M_DIR);
	str_is("d", "/api", true);
	str_is("d", "/api/", true);
	str_is("d", "/v1/api/x", true);
	str_is("d", "api", true);
	str_is("d", "/apix", false);
	str_is("d", "/x-api/y", false);
	str_is("d", "/API", false);
	str_is("di", "/v1/Api/x", true);
	CHECK_EQ_INT(acl_named("m")->match, ACL_M_DOM);
	str_is("m", "www.example.com", true);
	str_is("m", "example", true);
	str_is("m", "example.org:8080", true);
	str_is("m", "notexample.com", false);
	str_is("m", "www.examples.com", false);
	str_is("m2", "www.example.com", true);
	str_is("m2", "www.example.com:443", true);
	str_is("m2", "wwwxexample.com", false);
	cfg_reset();
}

TEST(match_len)
{
	if (!load_fe(" acl l5 path_len 5\n"
		     " acl lgt path_len gt 10\n"
		     " acl lr path -m len 2:4\n"))
		return;
	CHECK_EQ_INT(acl_named("l5")->match, ACL_M_LEN);
	str_is("l5", "/abcd", true);
	str_is("l5", "/abc", false);
	str_is("l5", "/abcde", false);
	str_is("lgt", "/0123456789", true);
	str_is("lgt", "/012345678", false);
	str_is("lr", "/a", true);
	str_is("lr", "/abc", true);
	str_is("lr", "/", false);
	str_is("lr", "/abcd", false);
	cfg_reset();
}

TEST(match_int)
{
	if (!load_fe(" acl p src_port 80 443\n"
		     " acl hi src_port 1024:65535\n"
		     " acl lo src_port :1023\n"
		     " acl from dst_port 8000:\n"
		     " acl gt src_port gt 100\n"
		     " acl ge src_port ge 100\n"
		     " acl lt src_port lt 100\n"
		     " acl le src_port le 100\n"
		     " acl eq src_port eq 100\n"
		     " acl neg hdr(x-n) -m int -5 -1:1\n"
		     " acl hgt hdr(x-n) -m int gt 5\n"))
		return;
	CHECK_EQ_INT(acl_named("p")->match, ACL_M_INT);
	int_is("p", 80, true);
	int_is("p", 443, true);
	int_is("p", 8080, false);
	int_is("hi", 1024, true);
	int_is("hi", 65535, true);
	int_is("hi", 1023, false);
	int_is("lo", 1023, true);
	int_is("lo", 0, true);
	int_is("lo", 1024, false);
	int_is("from", 8000, true);
	int_is("from", 2000000000, true);
	int_is("from", 7999, false);
	int_is("gt", 101, true);
	int_is("gt", 100, false);
	int_is("ge", 100, true);
	int_is("ge", 99, false);
	int_is("lt", 99, true);
	int_is("lt", 100, false);
	int_is("le", 100, true);
	int_is("le", 101, false);
	int_is("eq", 100, true);
	int_is("eq", 101, false);
	/* Integer patterns against text samples (header values). */
	str_is("neg", "-5", true);
	str_is("neg", "0", true);
	str_is("neg", "-1", true);
	str_is("neg", "2", false);
	str_is("neg", "abc", false);
	str_is("hgt", "6", true);
	str_is("hgt", "5", false);
	str_is("hgt", "", false);
	cfg_reset();
}

TEST(match_ip)
{
	if (!load_fe(" acl net src 10.0.0.0/8 192.168.1.1 172.16.0.0/12 2001:db8::/32\n"
		     " acl mask src 10.0.0.0/255.255.0.0\n"
		     " acl any4 src 0.0.0.0/0\n"
		     " acl v6host src ::1\n"))
		return;
	CHECK_EQ_INT(acl_named("net")->match, ACL_M_IP);
	ip_is("net", "10.1.2.3", true);
	ip_is("net", "10.255.255.255", true);
	ip_is("net", "11.0.0.1", false);
	ip_is("net", "9.255.255.255", false);
	ip_is("net", "192.168.1.1", true);
	ip_is("net", "192.168.1.2", false);
	ip_is("net", "172.16.0.1", true);
	ip_is("net", "172.31.255.255", true);
	ip_is("net", "172.32.0.0", false);
	ip_is("net", "172.15.255.255", false);
	ip_is("net", "2001:db8::1", true);
	ip_is("net", "2001:db8:ffff::1", true);
	ip_is("net", "2001:db9::1", false);
	/* An IPv4-mapped IPv6 client matches IPv4 patterns. */
	ip_is("net", "::ffff:10.9.9.9", true);
	ip_is("net", "::ffff:192.168.1.1", true);
	ip_is("net", "::ffff:11.0.0.1", false);
	ip_is("net", "::10.9.9.9", false); /* IPv4-compatible is not IPv4-mapped */
	ip_is("mask", "10.0.200.1", true);
	ip_is("mask", "10.1.0.1", false);
	ip_is("any4", "1.2.3.4", true);
	ip_is("any4", "::1", false);
	ip_is("v6host", "::1", true);
	ip_is("v6host", "::2", false);
	ip_is("v6host", "127.0.0.1", false);
	/* A text sample is not an address. */
	str_is("net", "10.1.2.3", false);
	cfg_reset();
}

TEST(same_name_acls_are_ored)
{
	struct acl *a;
	struct sample s1 = str_smp("/a/x"), s2 = str_smp("/b/x");

	if (!load_fe(" acl ab path_beg /a\n acl ab path_beg /b\n"))
		return;
	a = acl_named("ab");
	if (!CHECK(a != NULL))
		return;
	if (CHECK(a->alt != NULL)) {
		CHECK(acl_match(a, &s1));
		CHECK(acl_match(a->alt, &s2));
		CHECK(!acl_match(a, &s2));
	}
	cfg_reset();
}

TEST(acl_config_errors)
{
	static const char *const bad[] = {
	    " acl x path_reg ^(unclosed\n",
	    " acl x src 10.0.0.0/33\n",
	    " acl x src not-an-ip\n",
	    " acl x src 10.0.0.0/255.0.255.0\n",
	    " acl x src_port abc\n",
	    " acl x src_port 1:abc\n",
	    " acl x src_port gt\n",
	    " acl x path\n",
	    " acl x nosuchfetch foo\n",
	    " acl x hdr foo\n",
	    " acl x path -m nosuchmatch foo\n",
	    " acl bad/name path /a\n",
	    " acl x\n",
	    " use_backend be if\n",
	    " use_backend be if or x\n",
	    " acl a path /a\n use_backend be if a or\n",
	    " use_backend be if { path /a\n",
	    " use_backend be if undeclared\n",
	    " use_backend be when TRUE\n",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		char text[512];

		snprintf(text, sizeof(text),
			 "frontend fe\n bind :8080\n%s default_backend be\n"
			 "backend be\n server s 127.0.0.1:1\n",
			 bad[i]);
		cfg_reset();
		cfg_silent = true;
		if (cfg_load_string("acl.cfg", text, strlen(text)) == OK)
			FAIL("accepted: %s", bad[i]);
	}
	cfg_reset();
}

/* ---- networks ---- */

TEST(parse_net)
{
	int fam = 0;
	uint8_t addr[16], pfx = 0;

	CHECK_EQ_INT(acl_parse_net("10.0.0.0/8", &fam, addr, &pfx), OK);
	CHECK_EQ_INT(fam, AF_INET);
	CHECK_EQ_INT(pfx, 8);
	CHECK_EQ_INT(addr[0], 10);
	CHECK_EQ_INT(acl_parse_net("192.168.1.7", &fam, addr, &pfx), OK);
	CHECK_EQ_INT(pfx, 32);
	CHECK_EQ_INT(addr[3], 7);
	CHECK_EQ_INT(acl_parse_net("10.0.0.0/255.255.240.0", &fam, addr, &pfx), OK);
	CHECK_EQ_INT(pfx, 20);
	CHECK_EQ_INT(acl_parse_net("2001:db8::/48", &fam, addr, &pfx), OK);
	CHECK_EQ_INT(fam, AF_INET6);
	CHECK_EQ_INT(pfx, 48);
	CHECK_EQ_INT(addr[1], 0x01);
	CHECK_EQ_INT(acl_parse_net("::", &fam, addr, &pfx), OK);
	CHECK_EQ_INT(pfx, 128);
	CHECK_EQ_INT(acl_parse_net("::/0", &fam, addr, &pfx), OK);
	CHECK_EQ_INT(pfx, 0);
	CHECK_EQ_INT(acl_parse_net("", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("/8", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("10.0.0.0/", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("10.0.0.0/33", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("10.0.0.0/-1", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("10.0.0.0/8x", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("10.0.0.0/255.0.255.0", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("2001:db8::/129", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("10.0.0", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(acl_parse_net("example.com", &fam, addr, &pfx), ERR);
	CHECK_EQ_INT(
	    acl_parse_net("1111:2222:3333:4444:5555:6666:7777:8888:9999/64", &fam, addr, &pfx),
	    ERR);
}

static bool net(const char *ip, const char *pattern)
{
	int fam, pfam;
	uint8_t a[16], p[16], alen, plen;

	if (acl_parse_net(ip, &fam, a, &alen) || acl_parse_net(pattern, &pfam, p, &plen)) {
		FAIL("bad test input %s / %s", ip, pattern);
		return false;
	}
	return acl_net_match(fam, a, pfam, p, plen);
}

TEST(net_match)
{
	CHECK(net("10.1.2.3", "10.0.0.0/8"));
	CHECK(!net("11.1.2.3", "10.0.0.0/8"));
	CHECK(net("10.1.2.3", "10.1.2.3"));
	CHECK(!net("10.1.2.4", "10.1.2.3"));
	CHECK(net("10.1.2.3", "10.1.2.0/31") == false);
	CHECK(net("10.1.2.3", "10.1.2.2/31"));
	CHECK(net("10.1.2.3", "10.1.2.0/30"));
	CHECK(net("10.1.2.3", "0.0.0.0/0"));
	CHECK(net("255.255.255.255", "255.255.255.254/31"));
	CHECK(net("2001:db8::1", "2001:db8::/32"));
	CHECK(net("2001:db8:8000::1", "2001:db8:8000::/33"));
	CHECK(!net("2001:db8::1", "2001:db8:8000::/33"));
	CHECK(net("fe80::1", "::/0"));
	/* Families do not mix, except an IPv4-mapped client against an IPv4 pattern. */
	CHECK(!net("10.0.0.1", "::/0"));
	CHECK(!net("::1", "0.0.0.0/0"));
	CHECK(net("::ffff:10.0.0.1", "10.0.0.0/8"));
	CHECK(net("::ffff:10.0.0.1", "0.0.0.0/0"));
	CHECK(!net("::ffff:11.0.0.1", "10.0.0.0/8"));
	CHECK(!net("64:ff9b::10.0.0.1", "10.0.0.0/8"));
}

/* ---- conditions on a session ---- */

static struct stream sess;
static struct session cli; /* the stream's client connection: its addresses */
static struct txn txn;
static struct http_head rq;
static struct http_hdr rqh[64];
static char rqbuf[4096];

/* Sets up sess with a parsed request from a client address. */
static bool request(const char *raw, const char *client)
{
	size_t len = strlen(raw);

	memset(&sess, 0, sizeof(sess));
	memset(&cli, 0, sizeof(cli));
	memset(&txn, 0, sizeof(txn));
	memset(&rq, 0, sizeof(rq));
	memcpy(rqbuf, raw, len + 1);
	rq.hdr = rqh;
	rq.maxhdr = ARRAY_SIZE(rqh);
	if (http_parse_head(&txn.req_p, HTTP_REQUEST, rqbuf, (uint32_t)len, &rq) != OK)
		return FAIL("request rejected (%d %s): %s", rq.err_status, rq.err, raw);
	txn.req_head = &rq;
	sess.txn = &txn;
	sess.sess = &cli;
	sess.fe = fe;
	sess.be = fe;
	if (inet_pton(AF_INET, client, &cli.addr.in.sin_addr) == 1) {
		cli.addr.in.sin_family = AF_INET;
		cli.addr.in.sin_port = htons(40000);
	} else {
		cli.addr.in6.sin6_family = AF_INET6;
		inet_pton(AF_INET6, client, &cli.addr.in6.sin6_addr);
		cli.addr.in6.sin6_port = htons(40000);
	}
	cli.local.in.sin_family = AF_INET;
	cli.local.in.sin_port = htons(8080);
	inet_pton(AF_INET, "127.0.0.1", &cli.local.in.sin_addr);
	return true;
}

static struct acl_cond *cond_at(int idx)
{
	struct list *l;

	for (l = fe->switching.next; l != &fe->switching; l = l->next) {
		if (idx-- == 0) {
			struct switching_rule *r = list_entry(l, struct switching_rule, list);

			return r->cond;
		}
	}
	FAIL("no rule %d", idx);
	return NULL;
}

/* Expected results of rules 0..n-1 for the current request, as a string of 0/1 (spaces are
 * ignored: they group rules for the reader). */
static bool rules_give(const char *what, const char *want_spaced)
{
	char got[64], want[64];
	size_t i, n = 0;

	for (i = 0; want_spaced[i] && n < sizeof(want) - 1; i++)
		if (want_spaced[i] != ' ')
			want[n++] = want_spaced[i];
	want[n] = '\0';
	for (i = 0; i < n; i++) {
		struct acl_cond *c = cond_at((int)i);

		got[i] = c && acl_cond_eval(c, &sess) ? '1' : '0';
	}
	got[i] = '\0';
	if (strcmp(got, want))
		return FAIL("%s: rules gave %s, expected %s", what, got, want);
	return true;
}

static const char cond_cfg[] =
    " acl api path_beg /api\n"
    " acl ex hdr(host) -i example.com\n"
    " acl lan src 10.0.0.0/8\n"
    " use_backend be if api ex\n"		  /* 0: implicit AND */
    " use_backend be if api or ex\n"		  /* 1: or */
    " use_backend be if api || lan\n"		  /* 2: || */
    " use_backend be if !api\n"			  /* 3: negation */
    " use_backend be unless api\n"		  /* 4: unless */
    " use_backend be unless api ex\n"		  /* 5: unless (a and b) */
    " use_backend be if { path_end .css .js }\n"  /* 6: anonymous */
    " use_backend be if !{ path_end .css } lan\n" /* 7: negated anonymous */
    " use_backend be if api !ex or lan !api\n"	  /* 8: precedence */
    " use_backend be if ! api\n"		  /* 9: "!" as its own word */
    " use_backend be if TRUE\n"			  /* 10: predefined */
    " use_backend be if FALSE or METH_POST\n"	  /* 11 */
    " use_backend be if LOCALHOST\n"		  /* 12 */
    " use_backend be if !!api\n";		  /* 13: double negation */

TEST(conditions)
{
	if (!load_fe(cond_cfg))
		return;
	if (request("GET /api/x HTTP/1.1\r\nHost: Example.com\r\n\r\n", "10.1.1.1"))
		rules_give("api+ex+lan", "1110000 100 100 1");
	if (request("GET /api/x HTTP/1.1\r\nHost: other.org\r\n\r\n", "192.0.2.1"))
		rules_give("api only", "0110010 010 100 1");
	if (request("GET /a.css HTTP/1.1\r\nHost: example.com\r\n\r\n", "10.1.1.1"))
		rules_give("ex+lan, css", "0111111 011 100 0");
	if (request("POST /x.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "127.0.0.1"))
		rules_give("nothing, js, POST, localhost", "0001111 001 111 0");
	if (request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "::ffff:10.2.3.4"))
		rules_give("mapped lan", "0011110 111 100 0");
	cfg_reset();
}

TEST(null_condition_is_true)
{
	CHECK(acl_cond_eval(NULL, &sess));
}

TEST(header_acls_on_sessions)
{
	if (!load_fe(" acl tok hdr(accept-encoding) -i gzip\n"
		     " acl has hdr(x-debug) -m found\n"
		     " acl first hdr(x-a,1) one\n"
		     " use_backend be if tok\n"
		     " use_backend be if has\n"
		     " use_backend be if first\n"))
		return;
	if (request("GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: deflate, GZIP\r\n"
		    "X-A: one\r\nX-A: two\r\n\r\n",
		    "10.0.0.1"))
		rules_give("gzip listed, no x-debug", "101");
	if (request("GET / HTTP/1.1\r\nHost: a\r\nX-Debug:\r\nX-A: two\r\n\r\n", "10.0.0.1"))
		rules_give("x-debug empty but present", "010");
	cfg_reset();
}

/* Regression (was a bug in src/proxy/sample.c, sample_fetch SMP_HDR): HAProxy's hdr(name,occ) counts negative
 * occurrences from the end with -1 the last one; keel computes all[cnt - 1 + occ], so -1 gives
 * the one before the last, and a single header never matches hdr(name,-1). */
TEST(hdr_negative_occurrence)
{
	if (!load_fe(" acl last hdr(x-a,-1) two\n"
		     " acl prev hdr(x-a,-2) one\n"
		     " use_backend be if last\n"
		     " use_backend be if prev\n"))
		return;
	if (request("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\nX-A: two\r\n\r\n", "10.0.0.1"))
		rules_give("two X-A headers", "11");
	cfg_reset();
}

TEST(sample_fetches_in_conditions)
{
	if (!load_fe(" acl q query -m sub debug\n"
		     " acl p url_param(id) 42\n"
		     " acl c req.cook(session) abc\n"
		     " acl m method PUT\n"
		     " acl v req.ver 1.0\n"
		     " acl d dst_port 8080\n"
		     " acl s src_port 40000\n"
		     " acl f fe_name fe\n"
		     " use_backend be if q\n"
		     " use_backend be if p\n"
		     " use_backend be if c\n"
		     " use_backend be if m\n"
		     " use_backend be if v\n"
		     " use_backend be if d s f\n"))
		return;
	if (request("PUT /x?a=1&id=42&debug HTTP/1.0\r\nCookie: a=b; session=abc\r\n\r\n",
		    "10.0.0.1"))
		rules_give("all", "111111");
	if (request("GET /x?id=421 HTTP/1.1\r\nHost: h\r\nCookie: session=abcd\r\n\r\n",
		    "10.0.0.1"))
		rules_give("none but ports", "000001");
	cfg_reset();
}

UNIT_RUN()
