/* Unit tests for src/sticky/cookie.c: the "cookie" keyword, the Cookie / Set-Cookie text helpers and
 * the formatting of inserted cookies. */
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/cookie.h>
#include <keel/proxy.h>

#include "cfgload.h"
#include "unit.h"

static struct proxy *be(const char *name)
{
	return proxy_by_name(name, PR_CAP_BE);
}

TEST(find_first_cookie_of_that_name)
{
	const char *v = "a=1; SRV=web1 ;  b = 2;SRV=web2";
	uint32_t off, len;

	CHECK(cookie_find(v, (uint32_t)strlen(v), "SRV", 3, &off, &len));
	CHECK_EQ_INT(len, 4);
	CHECK(!memcmp(v + off, "web1", 4));
	CHECK(cookie_find(v, (uint32_t)strlen(v), "b", 1, &off, &len));
	CHECK(len == 1 && v[off] == '2');
	/* names are case-sensitive; a prefix of a name is not the name */
	CHECK(!cookie_find(v, (uint32_t)strlen(v), "srv", 3, &off, &len));
	CHECK(!cookie_find("SRVX=1", 6, "SRV", 3, &off, &len));
	CHECK(!cookie_find("", 0, "SRV", 3, &off, &len));
	CHECK(cookie_find("SRV=", 4, "SRV", 3, &off, &len) && len == 0);
}

TEST(request_rewrite_removes_or_strips)
{
	char out[128];
	const char *v = "a=1; SRV=web1;b=2; flag";
	uint32_t n;

	n = cookie_req_rewrite(v, (uint32_t)strlen(v), "SRV", 3, false, out);
	out[n] = 0;
	CHECK_STR(out, "a=1; b=2; flag");
	n = cookie_req_rewrite("SRV=web1", 8, "SRV", 3, false, out);
	CHECK_EQ_INT(n, 0);
	v = "JSESSIONID=s1~abc; x=";
	n = cookie_req_rewrite(v, (uint32_t)strlen(v), "JSESSIONID", 10, true, out);
	out[n] = 0;
	CHECK_STR(out, "JSESSIONID=abc; x=");
	/* a bare name is kept as it is; the output never exceeds len + len / 2 + 2 */
	n = cookie_req_rewrite("SRV;S;S;S", 9, "S", 1, true, out);
	out[n] = 0;
	CHECK_STR(out, "SRV; S; S; S");
	CHECK(n <= 9 + 9 / 2 + 2);
	/* no prefix: kept as it is */
	n = cookie_req_rewrite("JSESSIONID=abc", 14, "JSESSIONID", 10, true, out);
	out[n] = 0;
	CHECK_STR(out, "JSESSIONID=abc");
}

TEST(split_values_by_mode)
{
	struct cookie_conf ck = {.mode = CK_INSERT};
	uint32_t srvlen, last, first;

	cookie_split(&ck, "web1|65f0a0b1|65f00000", 22, &srvlen, &last, &first);
	CHECK_EQ_INT(srvlen, 4);
	CHECK(last == 0x65f0a0b1 && first == 0x65f00000);
	cookie_split(&ck, "web1|zz", 7, &srvlen, &last, &first);
	CHECK(srvlen == 4 && last == 0 && first == 0);
	cookie_split(&ck, "web1", 4, &srvlen, &last, &first);
	CHECK(srvlen == 4 && last == 0);
	ck.mode = CK_PREFIX;
	cookie_split(&ck, "web1~abc", 8, &srvlen, &last, &first);
	CHECK_EQ_INT(srvlen, 4);
	cookie_split(&ck, "abc", 3, &srvlen, &last, &first);
	CHECK_EQ_INT(srvlen, 0);
	ck.mode = CK_REWRITE;
	cookie_split(&ck, "web1|x", 6, &srvlen, &last, &first);
	CHECK_EQ_INT(srvlen, 6);
}

TEST(dates_maxidle_maxlife)
{
	struct cookie_conf ck = {.mode = CK_INSERT, .maxidle_s = 60, .maxlife_s = 3600};
	uint32_t now = 1700000000;

	CHECK(cookie_dates_ok(&ck, now - 10, now - 100, now));
	CHECK(!cookie_dates_ok(&ck, now - 61, now - 100, now));
	CHECK(!cookie_dates_ok(&ck, now - 10, now - 3601, now));
	/* no date: accepted (and refreshed by the response), as in HAProxy */
	CHECK(cookie_dates_ok(&ck, 0, 0, now));
	/* more than a day in the future: ignored */
	CHECK(!cookie_dates_ok(&ck, now + 90000, 0, now));
	CHECK(cookie_dates_ok(&ck, now + 100, 0, now));
}

TEST(set_cookie_match)
{
	const char *v = "SRV=abc; Path=/; HttpOnly";
	uint32_t off, len;

	CHECK(cookie_setcookie_match(v, (uint32_t)strlen(v), "SRV", 3, &off, &len));
	CHECK(len == 3 && !memcmp(v + off, "abc", 3));
	CHECK(!cookie_setcookie_match(v, (uint32_t)strlen(v), "Path", 4, &off, &len));
	CHECK(!cookie_setcookie_match("SRV; x", 6, "SRV", 3, &off, &len));
}

TEST(keyword_and_format)
{
	struct proxy *p;
	char out[256];
	uint32_t n;

	if (!CHECK_EQ_INT(load("defaults\n mode http\n cookie SRV insert indirect nocache httponly secure"
			       " domain .example.com attr SameSite=Lax maxidle 30m maxlife 8h\n"
			       "backend b\n server s1 127.0.0.1:1 cookie web1\n"),
			  OK))
		return;
	p = be("b");
	if (!CHECK(p && p->ck.name))
		return;
	CHECK_STR(p->ck.name, "SRV");
	CHECK_EQ_INT(p->ck.mode, CK_INSERT);
	CHECK_EQ_INT(p->ck.opts, CKO_INDIRECT | CKO_NOCACHE | CKO_HTTPONLY | CKO_SECURE);
	CHECK_EQ_INT(p->ck.maxidle_s, 1800);
	CHECK_EQ_INT(p->ck.maxlife_s, 28800);
	n = cookie_format(&p->ck, "web1", 0x10, 0, out, sizeof(out));
	CHECK(n > 0);
	CHECK_STR(out, "SRV=web1|10|10; path=/; domain=.example.com; HttpOnly; Secure; SameSite=Lax");
	n = cookie_format(&p->ck, "web1", 0x20, 0x10, out, sizeof(out));
	CHECK(n > 0 && !strncmp(out, "SRV=web1|20|10;", 15));
	n = cookie_format(&p->ck, NULL, 0x20, 0, out, sizeof(out));
	CHECK(n > 0 && !strncmp(out, "SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/", 51));
	CHECK_EQ_INT(cookie_format(&p->ck, "web1", 1, 0, out, 10), 0);
	CHECK(cookie_server(p, "web1", 4) == p->srv[0]);
	CHECK(cookie_server(p, "web", 3) == NULL);
	CHECK(cookie_server(p, "", 0) == NULL);

	CHECK_EQ_INT(load("backend b\n cookie JSESSIONID prefix\n server s1 127.0.0.1:1 cookie a\n"),
		     OK);
	CHECK_EQ_INT(be("b")->ck.mode, CK_PREFIX);
	CHECK_EQ_INT(load("backend b\n cookie SRV\n server s1 127.0.0.1:1\n"), OK);
	CHECK_EQ_INT(be("b")->ck.mode, CK_PASSIVE);
	n = cookie_format(&(struct cookie_conf){.name = "S", .mode = CK_INSERT}, "x", 5, 0, out,
			  sizeof(out));
	CHECK_STR(out, "S=x; path=/");
	/* errors */
	CHECK_EQ_INT(load("backend b\n cookie SRV insert prefix\n server s 127.0.0.1:1\n"), ERR);
	CHECK_EQ_INT(load("backend b\n cookie SRV rewrite maxidle 1m\n server s 127.0.0.1:1\n"), ERR);
	CHECK_EQ_INT(load("backend b\n cookie SRV insert bogus\n server s 127.0.0.1:1\n"), ERR);
	CHECK_EQ_INT(load("backend b\n cookie\n server s 127.0.0.1:1\n"), ERR);
	CHECK_EQ_INT(load("backend b\n cookie A;B insert\n server s 127.0.0.1:1\n"), ERR);
	CHECK_EQ_INT(load("backend b\n cookie SRV insert attr a;b\n server s 127.0.0.1:1\n"), ERR);
	CHECK_EQ_INT(load("frontend f\n bind :0\n cookie SRV insert\n"), ERR);
	cfg_reset();
}

UNIT_RUN()
