/* Unit tests for src/cfg/kw-check.c: the check and agent server words, option httpchk and
 * tcp-check, http-check and tcp-check rules, inheritance from defaults, and chk_validate()'s
 * defaults, warnings and errors. Every keyword has a good and a bad case. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/proxy.h>

#include "cfgload.h"
#include "unit.h"

/* Loads "backend be" with the given lines (and an optional defaults section before it). */
static struct proxy *be_with(const char *defaults, const char *body)
{
	char text[4096];

	snprintf(text, sizeof(text), "%s%s\nbackend be\n%s\n", defaults ? "defaults\n" : "",
		 defaults ? defaults : "", body);
	if (load(text) != OK) {
		FAIL("configuration rejected:\n%s", text);
		return NULL;
	}
	return proxy_by_name("be", PR_CAP_BE);
}

static struct server *srv_with(const char *params)
{
	char body[1024];
	struct proxy *p;

	snprintf(body, sizeof(body), " server s 127.0.0.1:8080 %s", params);
	p = be_with(NULL, body);
	return p && p->nsrv == 1 ? p->srv[0] : NULL;
}

/* The backend lines must be rejected, with a message containing want. */
static void reject_be(const char *body, const char *want)
{
	char text[4096], msgs[4096];

	snprintf(text, sizeof(text), "backend be\n%s\n", body);
	if (load_msgs(text, msgs, sizeof(msgs)) == OK)
		FAIL("accepted: %s", body);
	else if (want && !strstr(msgs, want))
		FAIL("'%s': message lacks '%s':\n%s", body, want, msgs);
	cfg_reset();
}

/* Accepted, with a warning containing want. */
static void warn_be(const char *body, const char *want)
{
	char text[4096], msgs[4096];

	snprintf(text, sizeof(text), "backend be\n%s\n", body);
	if (load_msgs(text, msgs, sizeof(msgs)) != OK)
		FAIL("rejected: %s\n%s", body, msgs);
	else if (!strstr(msgs, "[WARNING]") || !strstr(msgs, want))
		FAIL("'%s': no warning with '%s':\n%s", body, want, msgs);
	cfg_reset();
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
					       : ((const struct sockaddr_in *)ss)->sin_port);
}

/* ---- server words ---- */

TEST(server_defaults)
{
	struct server *s = srv_with("check");

	if (!CHECK(s != NULL))
		return;
	CHECK(s->chk.enabled);
	CHECK_EQ_INT(s->chk.inter, 2000);
	CHECK_EQ_INT(s->chk.fastinter, 1000); /* min(inter, 1 s) */
	CHECK_EQ_INT(s->chk.downinter, 2000); /* inter */
	CHECK_EQ_INT(s->chk.rise, 2);
	CHECK_EQ_INT(s->chk.fall, 3);
	CHECK_EQ_INT(s->chk.port, 0);
	CHECK(!s->chk.has_addr);
	CHECK(!s->chk.agent);
	CHECK_EQ_INT(s->be->chk.kind, CHK_KIND_TCP);
	cfg_reset();
}

TEST(server_check_no_check)
{
	struct server *s = srv_with("check no-check");

	if (CHECK(s != NULL))
		CHECK(!s->chk.enabled);
	s = srv_with("");
	if (CHECK(s != NULL))
		CHECK(!s->chk.enabled);
	cfg_reset();
}

TEST(server_intervals)
{
	struct server *s = srv_with("check inter 10s fastinter 300ms downinter 1m");

	if (CHECK(s != NULL)) {
		CHECK_EQ_INT(s->chk.inter, 10000);
		CHECK_EQ_INT(s->chk.fastinter, 300);
		CHECK_EQ_INT(s->chk.downinter, 60000);
	}
	/* fastinter follows a short inter; downinter follows inter */
	s = srv_with("check inter 500");
	if (CHECK(s != NULL)) {
		CHECK_EQ_INT(s->chk.fastinter, 500);
		CHECK_EQ_INT(s->chk.downinter, 500);
	}
	s = srv_with("check inter 10s");
	if (CHECK(s != NULL)) {
		CHECK_EQ_INT(s->chk.fastinter, 1000);
		CHECK_EQ_INT(s->chk.downinter, 10000);
	}
	reject_be(" server s 127.0.0.1:1 inter", "'inter' expects a time");
	reject_be(" server s 127.0.0.1:1 inter 5x", "unknown time unit");
	reject_be(" server s 127.0.0.1:1 inter 0", "must be greater than 0");
	reject_be(" server s 127.0.0.1:1 fastinter abc", "'fastinter abc'");
	reject_be(" server s 127.0.0.1:1 downinter -1s", "'downinter -1s'");
	cfg_reset();
}

TEST(server_rise_fall)
{
	struct server *s = srv_with("check rise 5 fall 1");

	if (CHECK(s != NULL)) {
		CHECK_EQ_INT(s->chk.rise, 5);
		CHECK_EQ_INT(s->chk.fall, 1);
	}
	reject_be(" server s 127.0.0.1:1 rise 0", "'rise' expects a number from 1");
	reject_be(" server s 127.0.0.1:1 fall -2", "'fall' expects a number from 1");
	reject_be(" server s 127.0.0.1:1 rise", "'rise' expects a number");
	reject_be(" server s 127.0.0.1:1 fall two", "'fall' expects a number");
	cfg_reset();
}

TEST(server_port_addr)
{
	struct server *s = srv_with("check port 9000 addr 127.0.0.2");

	if (CHECK(s != NULL)) {
		CHECK_EQ_INT(s->chk.port, 9000);
		CHECK(s->chk.has_addr);
		CHECK_EQ_INT(s->chk.addr.ss_family, AF_INET);
		CHECK_EQ_INT(port_of(&s->chk.addr), 0);
	}
	s = srv_with("check addr [::1]:81");
	if (CHECK(s != NULL)) {
		CHECK_EQ_INT(s->chk.addr.ss_family, AF_INET6);
		CHECK_EQ_INT(port_of(&s->chk.addr), 81);
	}
	reject_be(" server s 127.0.0.1:1 port 0", "'port' expects a number from 1 to 65535");
	reject_be(" server s 127.0.0.1:1 port 70000", "'port' expects");
	reject_be(" server s 127.0.0.1:1 port", "'port' expects");
	reject_be(" server s 127.0.0.1:1 addr", "'addr' expects an address");
	reject_be(" server s 127.0.0.1:1 addr 127.0.0.1:99999", "invalid port");
	reject_be(" server s 127.0.0.1:1 addr /tmp/sock", "unix socket");
	cfg_reset();
}

TEST(server_agent)
{
	struct server *s = srv_with("agent-check agent-port 5555 agent-inter 3s "
				    "agent-addr 127.0.0.3 agent-send \"hello\\n\"");

	if (CHECK(s != NULL)) {
		CHECK(s->chk.agent);
		CHECK(!s->chk.enabled);
		CHECK_EQ_INT(s->chk.agent_port, 5555);
		CHECK_EQ_INT(s->chk.agent_inter, 3000);
		CHECK(s->chk.has_agent_addr);
		CHECK_STR(s->chk.agent_send, "hello\n");
	}
	/* agent-inter follows inter */
	s = srv_with("check inter 4s agent-check agent-port 1");
	if (CHECK(s != NULL))
		CHECK_EQ_INT(s->chk.agent_inter, 4000);
	s = srv_with("agent-check no-agent-check");
	if (CHECK(s != NULL))
		CHECK(!s->chk.agent);
	/* the port may come with agent-addr */
	s = srv_with("agent-check agent-addr 127.0.0.1:7000");
	if (CHECK(s != NULL))
		CHECK_EQ_INT(port_of(&s->chk.agent_addr), 7000);
	reject_be(" server s 127.0.0.1:1 agent-check", "has 'agent-check' but no 'agent-port'");
	reject_be(" server s 127.0.0.1:1 agent-port x", "'agent-port' expects");
	reject_be(" server s 127.0.0.1:1 agent-inter 0", "must be greater than 0");
	reject_be(" server s 127.0.0.1:1 agent-addr", "'agent-addr' expects an address");
	reject_be(" server s 127.0.0.1:1 agent-send", "'agent-send' expects a string");
	warn_be(" server s 127.0.0.1:1 agent-port 5", "agent settings without 'agent-check'");
	cfg_reset();
}

TEST(server_words_of_others_are_not_consumed)
{
	/* kw-health.c's words reach their own parser (here: accepted) */
	struct server *s = srv_with("check slowstart 10s error-limit 5 observe layer7 weight 3");

	if (CHECK(s != NULL)) {
		CHECK(s->chk.enabled);
		CHECK_EQ_INT(s->weight, 3);
		CHECK_EQ_INT(s->chk.slowstart, 10000);
		CHECK_EQ_INT(s->chk.error_limit, 5);
	}
	cfg_reset();
}

TEST(default_server_inherited)
{
	struct proxy *p =
	    be_with(NULL, " default-server check inter 3s rise 4 fall 5 port 81\n"
			  " server a 127.0.0.1:1\n server b 127.0.0.1:2 no-check rise 1");

	if (!CHECK(p != NULL) || !CHECK_EQ_INT(p->nsrv, 2))
		return;
	CHECK(p->srv[0]->chk.enabled);
	CHECK_EQ_INT(p->srv[0]->chk.inter, 3000);
	CHECK_EQ_INT(p->srv[0]->chk.rise, 4);
	CHECK_EQ_INT(p->srv[0]->chk.fall, 5);
	CHECK_EQ_INT(p->srv[0]->chk.port, 81);
	CHECK(!p->srv[1]->chk.enabled);
	CHECK_EQ_INT(p->srv[1]->chk.rise, 1);
	/* from a defaults section too */
	p = be_with(" default-server inter 7s fall 9", " server a 127.0.0.1:1 check");
	if (CHECK(p != NULL)) {
		CHECK_EQ_INT(p->srv[0]->chk.inter, 7000);
		CHECK_EQ_INT(p->srv[0]->chk.fall, 9);
	}
	cfg_reset();
}

/* ---- validation ---- */

TEST(validate_check_needs_a_port)
{
	struct proxy *p;

	reject_be(" server s 127.0.0.1 check", "has 'check' but its address has no port");
	p = be_with(NULL, " server s 127.0.0.1 check port 80");
	if (CHECK(p != NULL))
		CHECK_EQ_INT(p->srv[0]->chk.port, 80);
	p = be_with(NULL, " server s 127.0.0.1 check addr 127.0.0.2:81");
	CHECK(p != NULL);
	/* without check, no port is fine */
	p = be_with(NULL, " server s 127.0.0.1");
	CHECK(p != NULL);
	cfg_reset();
}

TEST(validate_warns_short_inter)
{
	warn_be(" server s 127.0.0.1:1 check inter 50ms", "below 100 ms");
}

TEST(validate_rules_without_option)
{
	warn_be(" http-check expect status 200\n server s 127.0.0.1:1 check",
		"'http-check' rules are ignored without 'option httpchk'");
	warn_be(" tcp-check send PING\n server s 127.0.0.1:1 check",
		"'tcp-check' rules are ignored without 'option tcp-check'");
	warn_be(" option httpchk GET / HTTP/2\n server s 127.0.0.1:1 check", "is not HTTP/1.x");
}

TEST(validate_kind_follows_the_flags)
{
	struct proxy *p =
	    be_with(NULL, " option httpchk\n no option httpchk\n server s 127.0.0.1:1 check");

	if (CHECK(p != NULL))
		CHECK_EQ_INT(p->chk.kind, CHK_KIND_TCP);
	p = be_with(" option httpchk /health", " server s 127.0.0.1:1 check");
	if (CHECK(p != NULL)) {
		CHECK_EQ_INT(p->chk.kind, CHK_KIND_HTTP);
		CHECK_STR(p->chk.uri, "/health");
	}
	/* the last of httpchk and tcp-check wins */
	p = be_with(NULL, " option httpchk\n option tcp-check\n server s 127.0.0.1:1 check");
	if (CHECK(p != NULL)) {
		CHECK_EQ_INT(p->chk.kind, CHK_KIND_TCP);
		CHECK(!(p->opts & PO_HTTPCHK));
		CHECK(p->opts & PO_TCPCHK);
	}
	p = be_with(NULL, " option tcp-check\n option httpchk\n server s 127.0.0.1:1 check");
	if (CHECK(p != NULL)) {
		CHECK_EQ_INT(p->chk.kind, CHK_KIND_HTTP);
		CHECK(!(p->opts & PO_TCPCHK));
	}
	cfg_reset();
}

/* ---- option httpchk ---- */

TEST(httpchk_forms)
{
	struct proxy *p = be_with(NULL, " option httpchk");

	if (CHECK(p != NULL)) {
		CHECK_EQ_INT(p->chk.kind, CHK_KIND_HTTP);
		CHECK_STR(p->chk.method, "OPTIONS");
		CHECK_STR(p->chk.uri, "/");
		CHECK_STR(p->chk.version, "HTTP/1.0");
		CHECK(p->chk.hdrs == NULL);
	}
	p = be_with(NULL, " option httpchk /ping");
	if (CHECK(p != NULL)) {
		CHECK_STR(p->chk.method, "OPTIONS");
		CHECK_STR(p->chk.uri, "/ping");
	}
	p = be_with(NULL, " option httpchk GET /status");
	if (CHECK(p != NULL)) {
		CHECK_STR(p->chk.method, "GET");
		CHECK_STR(p->chk.uri, "/status");
		CHECK_STR(p->chk.version, "HTTP/1.0");
	}
	p = be_with(NULL, " option httpchk HEAD /s HTTP/1.1");
	if (CHECK(p != NULL))
		CHECK_STR(p->chk.version, "HTTP/1.1");
	cfg_reset();
}

TEST(httpchk_old_headers_in_version)
{
	struct proxy *p = be_with(NULL, " option httpchk GET /uri HTTP/1.1\\r\\nHost:\\ www");

	if (CHECK(p != NULL)) {
		CHECK_STR(p->chk.version, "HTTP/1.1");
		CHECK_STR(p->chk.hdrs, "Host: www\r\n");
	}
	p = be_with(NULL, " option httpchk GET / \"HTTP/1.1\\r\\nHost: a\\r\\nX-A: 1\\r\\n\"");
	if (CHECK(p != NULL)) {
		CHECK_STR(p->chk.version, "HTTP/1.1");
		CHECK_STR(p->chk.hdrs, "Host: a\r\nX-A: 1\r\n");
	}
	cfg_reset();
}

TEST(httpchk_bad)
{
	reject_be(" option httpchk GET / HTTP/1.1 extra",
		  "expects [URI] or [METHOD URI [VERSION]]");
	reject_be(" option httpchk \"GET X\" /", "invalid method or URI");
	reject_be(" option httpchk GET \"\"", "invalid method or URI");
	reject_be(" option httpchk GET / \"\\r\\nHost: x\"", "invalid HTTP version");
	reject_be(" option tcp-check now", "takes no argument");
}

/* ---- http-check ---- */

TEST(http_check_send)
{
	struct proxy *p =
	    be_with(NULL, " option httpchk\n http-check send meth GET uri /h ver HTTP/1.1 "
			  "hdr Host example.com hdr X-Check yes body \"ping\"");

	if (!CHECK(p != NULL))
		return;
	CHECK_STR(p->chk.method, "GET");
	CHECK_STR(p->chk.uri, "/h");
	CHECK_STR(p->chk.version, "HTTP/1.1");
	CHECK_STR(p->chk.hdrs, "Host: example.com\r\nX-Check: yes\r\n");
	CHECK_STR(p->chk.body, "ping");
	/* later send lines change only what they name; hdr replaces the headers */
	p = be_with(NULL, " option httpchk GET /a\n http-check send hdr A 1\n"
			  " http-check send uri /b hdr B 2");
	if (CHECK(p != NULL)) {
		CHECK_STR(p->chk.method, "GET");
		CHECK_STR(p->chk.uri, "/b");
		CHECK_STR(p->chk.hdrs, "B: 2\r\n");
	}
	reject_be(" http-check send meth", "'http-check send meth' expects a value");
	reject_be(" http-check send hdr Host", "expects a name and a value");
	reject_be(" http-check send hdr \"Bad Name\" v", "invalid header");
	reject_be(" http-check send hdr X \"a\\r\\nInjected: 1\"", "invalid header");
	reject_be(" http-check send uri \"/a b\"", "invalid value");
	reject_be(" http-check send uri-lf /x", "'http-check send uri-lf' is not implemented");
	reject_be(" http-check send body-lf x", "not implemented");
}

TEST(http_check_expect)
{
	struct proxy *p = be_with(NULL, " option httpchk\n http-check expect status 200-399\n"
					" http-check expect ! string ERROR\n"
					" http-check expect rstring ^ok\n"
					" http-check expect rstatus ^2\n"
					" http-check expect status 200,204");

	if (!CHECK(p != NULL) || !CHECK_EQ_INT(p->chk.nexpect, 5))
		return;
	CHECK_EQ_INT(p->chk.expect[0].type, CHK_EXP_STATUS);
	CHECK_STR(p->chk.expect[0].arg, "200-399");
	CHECK(!p->chk.expect[0].negate);
	CHECK_EQ_INT(p->chk.expect[1].type, CHK_EXP_STRING);
	CHECK(p->chk.expect[1].negate);
	CHECK_STR(p->chk.expect[1].arg, "ERROR");
	CHECK_EQ_INT(p->chk.expect[2].type, CHK_EXP_RSTRING);
	CHECK(p->chk.expect[2].re != NULL);
	CHECK_EQ_INT(p->chk.expect[3].type, CHK_EXP_RSTATUS);
	CHECK(p->chk.expect[3].re != NULL);
	CHECK_STR(p->chk.expect[4].arg, "200,204");
	cfg_reset();
}

TEST(http_check_expect_bad)
{
	reject_be(" http-check expect", "expects [!] status|rstatus|string|rstring");
	reject_be(" http-check expect status", "expects [!] status");
	reject_be(" http-check expect !", "expects [!]");
	reject_be(" http-check expect status abc", "expects status codes or ranges");
	reject_be(" http-check expect status 99", "expects status codes");
	reject_be(" http-check expect status 600", "expects status codes");
	reject_be(" http-check expect status 300-200", "expects status codes");
	reject_be(" http-check expect status 200,", "expects status codes");
	reject_be(" http-check expect status 200-", "expects status codes");
	reject_be(" http-check expect rstring (unclosed", "invalid regex '(unclosed'");
	reject_be(" http-check expect rstatus [", "invalid regex");
	reject_be(" http-check expect string \"\"", "non-empty string");
	reject_be(" http-check expect hdr name x", "'http-check expect hdr' is not implemented");
	reject_be(" http-check expect binary 00", "not implemented");
	reject_be(" http-check expect status 200 extra", "unexpected 'extra'");
	reject_be(" http-check expect status 200\n http-check expect status 200\n"
		  " http-check expect status 200\n http-check expect status 200\n"
		  " http-check expect status 200\n http-check expect status 200\n"
		  " http-check expect status 200\n http-check expect status 200\n"
		  " http-check expect status 200",
		  "at most 8 rules");
}

TEST(http_check_others)
{
	warn_be(" http-check disable-on-404",
		"'http-check disable-on-404' is accepted but not implemented");
	warn_be(" http-check send-state", "'http-check send-state'");
	warn_be(" http-check comment hello", "'http-check comment'");
	warn_be(" http-check connect port 80", "'http-check connect'");
	reject_be(" http-check", "'http-check ' is not implemented");
	reject_be(" http-check set-var(a) 1", "'http-check set-var(a)' is not implemented");
}

TEST(http_check_rules_inherited_then_replaced)
{
	struct proxy *p = be_with(" option httpchk GET /d\n http-check expect status 200\n"
				  " http-check expect string ok",
				  " server s 127.0.0.1:1 check");

	if (CHECK(p != NULL)) {
		CHECK_EQ_INT(p->chk.nexpect, 2);
		CHECK_STR(p->chk.uri, "/d");
	}
	/* a backend's own expect replaces the inherited list, and the next ones add to it */
	p = be_with(" option httpchk GET /d\n http-check expect status 200\n"
		    " http-check expect string ok",
		    " http-check expect status 204\n http-check expect string yes\n"
		    " server s 127.0.0.1:1 check");
	if (CHECK(p != NULL) && CHECK_EQ_INT(p->chk.nexpect, 2)) {
		CHECK_STR(p->chk.expect[0].arg, "204");
		CHECK_STR(p->chk.expect[1].arg, "yes");
	}
	cfg_reset();
}

/* ---- tcp-check ---- */

TEST(tcp_check_rules)
{
	struct proxy *p = be_with(NULL, " option tcp-check\n tcp-check connect port 6379\n"
					" tcp-check send \"PING\\r\\n\"\n"
					" tcp-check expect string +PONG\n"
					" tcp-check send-binary 0a0B00ff\n"
					" tcp-check expect ! rstring ^-ERR\n"
					" tcp-check expect binary 0d0a\n"
					" tcp-check comment \"a label\"\n"
					" tcp-check connect");

	if (!CHECK(p != NULL) || !CHECK_EQ_INT(p->chk.nsteps, 7))
		return;
	CHECK(p->opts & PO_TCPCHK);
	CHECK_EQ_INT(p->chk.kind, CHK_KIND_TCP);
	CHECK_EQ_INT(p->chk.steps[0].type, TCPCHK_CONNECT);
	CHECK_EQ_INT(p->chk.steps[0].port, 6379);
	/* the tokenizer decodes \r \n (and \t \\ \xHH) as HAProxy's parser does */
	CHECK_EQ_INT(p->chk.steps[1].type, TCPCHK_SEND);
	CHECK_EQ_INT(p->chk.steps[1].len, 6);
	CHECK(!memcmp(p->chk.steps[1].data, "PING\r\n", 6));
	CHECK_EQ_INT(p->chk.steps[2].type, TCPCHK_EXPECT);
	CHECK_EQ_INT(p->chk.steps[2].exp.type, CHK_EXP_STRING);
	CHECK_EQ_INT(p->chk.steps[2].len, 5);
	CHECK_EQ_INT(p->chk.steps[3].len, 4);
	CHECK(!memcmp(p->chk.steps[3].data, "\x0a\x0b\x00\xff", 4));
	CHECK(p->chk.steps[4].exp.negate);
	CHECK_EQ_INT(p->chk.steps[4].exp.type, CHK_EXP_RSTRING);
	CHECK(p->chk.steps[4].exp.re != NULL);
	CHECK_EQ_INT(p->chk.steps[5].len, 2);
	CHECK(!memcmp(p->chk.steps[5].data, "\r\n", 2));
	CHECK_STR(p->chk.steps[5].exp.arg, "0d0a");
	CHECK_EQ_INT(p->chk.steps[6].type, TCPCHK_CONNECT);
	CHECK_EQ_INT(p->chk.steps[6].port, 0);
	/* \x escapes reach send too */
	p = be_with(NULL, " tcp-check send \"a\\x41\\tb\"");
	if (CHECK(p != NULL))
		CHECK_STR(p->chk.steps[0].data, "aA\tb");
	cfg_reset();
}

TEST(tcp_check_bad)
{
	reject_be(" tcp-check connect port 0", "expects a port from 1 to 65535");
	reject_be(" tcp-check connect port", "expects a port");
	reject_be(" tcp-check connect ssl", "'tcp-check connect ssl' is not implemented");
	reject_be(" tcp-check send", "expects one string");
	reject_be(" tcp-check send a b", "expects one string");
	reject_be(" tcp-check send \"\"", "non-empty string");
	reject_be(" tcp-check send-binary 0g", "even number of hexadecimal digits");
	reject_be(" tcp-check send-binary abc", "even number of hexadecimal digits");
	reject_be(" tcp-check expect string", "expects [!] string|rstring|binary");
	reject_be(" tcp-check expect status 200", "'tcp-check expect status' is not implemented");
	reject_be(" tcp-check expect rstring (", "invalid regex");
	reject_be(" tcp-check expect binary 1", "even number");
	reject_be(" tcp-check expect string a b", "unexpected 'b'");
	reject_be(" tcp-check send-lf x", "'tcp-check send-lf' is not implemented");
	reject_be(" tcp-check set-var(x) 1", "not implemented");
	reject_be(" tcp-check", "'tcp-check ' is not implemented");
	{
		char body[2048] = "";
		int i;

		for (i = 0; i < 17; i++)
			strcat(body, " tcp-check send x\n");
		reject_be(body, "at most 16 rules");
	}
}

TEST(tcp_check_rules_inherited_then_replaced)
{
	struct proxy *p =
	    be_with(" option tcp-check\n tcp-check connect port 80\n tcp-check send a",
		    " server s 127.0.0.1:1 check");

	if (CHECK(p != NULL))
		CHECK_EQ_INT(p->chk.nsteps, 2);
	/* identical-looking own rules still replace, then extend */
	p = be_with(" option tcp-check\n tcp-check connect port 80\n tcp-check send a",
		    " tcp-check connect port 80\n tcp-check send b\n server s 127.0.0.1:1 check");
	if (CHECK(p != NULL) && CHECK_EQ_INT(p->chk.nsteps, 2)) {
		CHECK_EQ_INT(p->chk.steps[0].type, TCPCHK_CONNECT);
		CHECK_STR(p->chk.steps[1].data, "b");
	}
	cfg_reset();
}

UNIT_RUN()
