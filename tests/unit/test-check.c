/* Unit tests for the check answer evaluators in src/check/: the HTTP answer evaluator
 * (check-http.c: status line, interim responses, framing, expects, truncation, garbage), the
 * tcp-check expect rule (check-tcp.c) and the agent's answer (check-agent.c). The runner itself
 * (check.c: sockets, timers) is covered by tests/system/test_checks.py. */
#include <string.h>

#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/common.h>
#include <keel/proxy.h>

#include "cfgload.h"
#include "unit.h"

static struct proxy *be;

static bool setup(const char *body)
{
	char text[4096];

	cfg_reset();
	snprintf(text, sizeof(text), "backend be\n%s\n server s 127.0.0.1:1 check\n", body);
	cfg_silent = true;
	if (cfg_load_string("check.cfg", text, strlen(text)) != OK)
		return FAIL("configuration rejected:\n%s", text);
	be = proxy_by_name("be", PR_CAP_BE);
	return be != NULL;
}

/* Evaluates a whole answer (copied: the evaluator may rewrite it). */
static int eval(const char *rsp, size_t len, int fin, bool probe, struct chk_result *r)
{
	char buf[8192];

	memset(r, 0, sizeof(*r));
	if (len == (size_t)-1)
		len = strlen(rsp);
	memcpy(buf, rsp, len);
	buf[len] = '\0';
	return chk_http_eval(be, probe, buf, len, fin, r);
}

/* A final answer must pass (ok) or fail with a reason containing why. */
static void expect_res(const char *rsp, int fin, bool ok, const char *why)
{
	struct chk_result r;

	if (eval(rsp, (size_t)-1, fin, false, &r) != OK) {
		FAIL("not decided: %s", rsp);
		return;
	}
	if (r.ok != ok)
		FAIL("'%s': ok=%d (%s), expected %d", rsp, r.ok, r.reason, ok);
	if (why && !strstr(r.reason, why))
		FAIL("'%s': reason '%s' lacks '%s'", rsp, r.reason, why);
}

TEST(http_default_rule_2xx_3xx)
{
	struct chk_result r;

	if (!setup(" option httpchk"))
		return;
	expect_res("HTTP/1.1 200 OK\r\n\r\n", CHK_FIN_NO, true, "status 200");
	expect_res("HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n", CHK_FIN_NO, true, "status 302");
	expect_res("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", CHK_FIN_NO, false,
		   "status 500 (expected 2xx/3xx)");
	expect_res("HTTP/1.1 404 Not Found\r\n\r\n", CHK_FIN_NO, false, "status 404");
	/* without a body rule the head is enough: the body is not waited for */
	CHECK_EQ_INT(eval("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab", (size_t)-1,
			  CHK_FIN_NO, false, &r),
		     OK);
	CHECK(r.ok);
	CHECK_EQ_INT(r.code, CHK_C_L7OK);
	CHECK_EQ_INT(r.status, 200);
	/* LF-only line ends are tolerated */
	expect_res("HTTP/1.1 204 No Content\n\n", CHK_FIN_NO, true, "status 204");
	cfg_reset();
}

TEST(http_incomplete_heads)
{
	struct chk_result r;

	if (!setup(" option httpchk"))
		return;
	CHECK_EQ_INT(eval("", 0, CHK_FIN_NO, false, &r), AGAIN);
	CHECK_EQ_INT(eval("HTT", (size_t)-1, CHK_FIN_NO, false, &r), AGAIN);
	CHECK_EQ_INT(eval("HTTP/1.1 200 OK\r\n", (size_t)-1, CHK_FIN_NO, false, &r), AGAIN);
	CHECK_EQ_INT(eval("HTTP/1.1 200 OK\r\nA: b\r\n\r", (size_t)-1, CHK_FIN_NO, false, &r),
		     AGAIN);
	expect_res("", CHK_FIN_EOF, false, "connection closed before a response");
	expect_res("HTTP/1.1 20", CHK_FIN_EOF, false, "connection closed in the status line");
	expect_res("HTTP/1.1 200 OK\r\nA: b\r\n", CHK_FIN_EOF, false,
		   "connection closed in the response head");
	expect_res("HTTP/1.1 200 OK\r\nA: b\r\n", CHK_FIN_FULL, false, "response head larger than");
	cfg_reset();
}

TEST(http_garbage)
{
	struct chk_result r;

	if (!setup(" option httpchk"))
		return;
	/* decided as soon as the first bytes cannot be a status line */
	CHECK_EQ_INT(eval("SSH-2.0", (size_t)-1, CHK_FIN_NO, false, &r), OK);
	CHECK(!r.ok);
	CHECK_EQ_INT(r.code, CHK_C_L7RSP);
	CHECK(strstr(r.reason, "invalid response 'SSH-2.0'") != NULL);
	expect_res("HTTP/1.1 2x0 OK\r\n\r\n", CHK_FIN_NO, false, "invalid response");
	expect_res("HTTP/1.1 099 Low\r\n\r\n", CHK_FIN_NO, false, "invalid status 099");
	expect_res("HTTP/1.1 200OK\r\n\r\n", CHK_FIN_NO, false, "invalid response");
	expect_res("\x01\x02\xff\r\n", CHK_FIN_NO, false, "invalid response '.....'");
	expect_res("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", CHK_FIN_NO,
		   false, "invalid Content-Length");
	cfg_reset();
}

TEST(http_interim_responses_skipped)
{
	struct chk_result r;

	if (!setup(" option httpchk"))
		return;
	expect_res("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\n\r\n", CHK_FIN_NO, false,
		   "status 503");
	CHECK_EQ_INT(eval("HTTP/1.1 100 Continue\r\n\r\n", (size_t)-1, CHK_FIN_NO, false, &r),
		     AGAIN);
	expect_res("HTTP/1.1 100 Continue\r\n\r\n", CHK_FIN_EOF, false, "interim 100");
	cfg_reset();
}

TEST(http_expect_status)
{
	if (!setup(" option httpchk\n http-check expect status 200,204,300-310"))
		return;
	expect_res("HTTP/1.1 204 No\r\n\r\n", CHK_FIN_NO, true, NULL);
	expect_res("HTTP/1.1 305 X\r\n\r\n", CHK_FIN_NO, true, NULL);
	expect_res("HTTP/1.1 302 X\r\n\r\n", CHK_FIN_NO, true, NULL);
	expect_res("HTTP/1.1 311 X\r\n\r\n", CHK_FIN_NO, false,
		   "status 311 (expected 200,204,300-310)");
	/* the configured rule replaces the 2xx/3xx default */
	if (!setup(" option httpchk\n http-check expect status 503"))
		return;
	expect_res("HTTP/1.1 503 X\r\n\r\n", CHK_FIN_NO, true, NULL);
	expect_res("HTTP/1.1 200 X\r\n\r\n", CHK_FIN_NO, false, "expected 503");
	if (!setup(" option httpchk\n http-check expect ! status 500-599"))
		return;
	expect_res("HTTP/1.1 404 X\r\n\r\n", CHK_FIN_NO, true, NULL);
	expect_res("HTTP/1.1 502 X\r\n\r\n", CHK_FIN_NO, false, "expected not 500-599");
	if (!setup(" option httpchk\n http-check expect rstatus ^2[0-9]{2}$"))
		return;
	expect_res("HTTP/1.1 201 X\r\n\r\n", CHK_FIN_NO, true, NULL);
	expect_res("HTTP/1.1 301 X\r\n\r\n", CHK_FIN_NO, false, "expected to match '^2[0-9]{2}$'");
	cfg_reset();
}

TEST(http_expect_string_waits_for_the_body)
{
	struct chk_result r;
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
	char buf[256];

	if (!setup(" option httpchk\n http-check expect string OK"))
		return;
	snprintf(buf, sizeof(buf), "%shello", head);
	CHECK_EQ_INT(eval(buf, (size_t)-1, CHK_FIN_NO, false, &r), AGAIN);
	snprintf(buf, sizeof(buf), "%shello OK!!!", head);
	CHECK_EQ_INT(eval(buf, (size_t)-1, CHK_FIN_NO, false, &r), OK);
	CHECK(r.ok);
	/* bytes beyond Content-Length are not body */
	snprintf(buf, sizeof(buf), "%shello there OK", head);
	expect_res(buf, CHK_FIN_NO, false, "body did not contain 'OK'");
	/* closed early: judged on what came */
	snprintf(buf, sizeof(buf), "%sOK", head);
	expect_res(buf, CHK_FIN_EOF, true, NULL);
	/* close-delimited body */
	CHECK_EQ_INT(eval("HTTP/1.0 200 OK\r\n\r\nall OK", (size_t)-1, CHK_FIN_NO, false, &r),
		     AGAIN);
	expect_res("HTTP/1.0 200 OK\r\n\r\nall OK", CHK_FIN_EOF, true, NULL);
	/* truncated by the buffer */
	expect_res("HTTP/1.0 200 OK\r\n\r\naaaa", CHK_FIN_FULL, false, "(body truncated)");
	/* the string rule alone does not look at the status (HAProxy) */
	expect_res("HTTP/1.1 500 X\r\nContent-Length: 2\r\n\r\nOK", CHK_FIN_NO, true, NULL);
	/* 204 and 304 have no body */
	expect_res("HTTP/1.1 204 X\r\n\r\n", CHK_FIN_NO, false, "did not contain");
	cfg_reset();
}

TEST(http_expect_chunked_body)
{
	struct chk_result r;

	if (!setup(" option httpchk\n http-check expect string HELLO"))
		return;
	/* the needle spans two chunks: it is found in the decoded body */
	CHECK_EQ_INT(eval("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nHEL\r\n",
			  (size_t)-1, CHK_FIN_NO, false, &r),
		     AGAIN);
	expect_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nHEL\r\n"
		   "2;ext=1\r\nLO\r\n0\r\n\r\n",
		   CHK_FIN_NO, true, NULL);
	/* broken framing ends the wait */
	expect_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", CHK_FIN_NO, false,
		   "did not contain 'HELLO'");
	/* chunk sizes are not body */
	if (!setup(" option httpchk\n http-check expect ! string 5"))
		return;
	expect_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n",
		   CHK_FIN_NO, true, NULL);
	cfg_reset();
}

TEST(http_expect_all_must_pass)
{
	if (!setup(" option httpchk\n http-check expect status 200\n"
		   " http-check expect rstring ^ready\n http-check expect ! string maintenance"))
		return;
	expect_res("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nready ok", CHK_FIN_NO, true, NULL);
	expect_res("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot read", CHK_FIN_NO, false,
		   "body did not match '^ready'");
	expect_res("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\nready maintenance", CHK_FIN_NO,
		   false, "body contained 'maintenance'");
	expect_res("HTTP/1.1 503 OK\r\nContent-Length: 5\r\n\r\nready", CHK_FIN_NO, false,
		   "status 503 (expected 200)");
	cfg_reset();
}

TEST(http_head_method_has_no_body)
{
	struct chk_result r;

	if (!setup(" option httpchk HEAD /\n http-check expect ! string x"))
		return;
	CHECK_EQ_INT(eval("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", (size_t)-1, CHK_FIN_NO,
			  false, &r),
		     OK);
	CHECK(r.ok);
	cfg_reset();
}

TEST(http_probe)
{
	struct chk_result r;

	if (!setup(" option httpchk\n http-check expect status 200"))
		return;
	/* a probe ignores the check rules: any valid head below 500 */
	CHECK_EQ_INT(eval("HTTP/1.1 404 No\r\n\r\n", (size_t)-1, CHK_FIN_NO, true, &r), OK);
	CHECK(r.ok);
	CHECK_EQ_INT(eval("HTTP/1.1 503 No\r\n\r\n", (size_t)-1, CHK_FIN_NO, true, &r), OK);
	CHECK(!r.ok);
	CHECK(strstr(r.reason, "status 503") != NULL);
	CHECK_EQ_INT(eval("garbage", (size_t)-1, CHK_FIN_NO, true, &r), OK);
	CHECK(!r.ok);
	CHECK_EQ_INT(eval("HTTP/1.1 200 OK\r\n", (size_t)-1, CHK_FIN_NO, true, &r), AGAIN);
	cfg_reset();
}

/* ---- tcp-check expect ---- */

static const struct tcpchk_step *step(int i)
{
	return &be->chk.steps[i];
}

TEST(tcp_expect_string_and_binary)
{
	struct chk_result r;

	if (!setup(" option tcp-check\n tcp-check expect string +PONG\n"
		   " tcp-check expect binary 00ff\n tcp-check expect ! string -ERR\n"
		   " tcp-check expect rstring \"^ok [0-9]+\""))
		return;
	CHECK_EQ_INT(chk_tcp_expect(step(0), 1, "+PO", 3, CHK_FIN_NO, &r), AGAIN);
	CHECK_EQ_INT(chk_tcp_expect(step(0), 1, "+PONG\r\n", 7, CHK_FIN_NO, &r), OK);
	CHECK_EQ_INT(chk_tcp_expect(step(0), 1, "-ERR no", 7, CHK_FIN_EOF, &r), ERR);
	CHECK(strstr(r.reason, "step 1: expected '+PONG', received '-ERR no'") != NULL);
	CHECK_EQ_INT(chk_tcp_expect(step(0), 1, "", 0, CHK_FIN_EOF, &r), ERR);
	CHECK(strstr(r.reason, "connection closed before '+PONG'") != NULL);
	CHECK_EQ_INT(chk_tcp_expect(step(1), 2, "a\0\xff", 3, CHK_FIN_NO, &r), OK);
	CHECK_EQ_INT(chk_tcp_expect(step(1), 2, "a\0\xfe", 3, CHK_FIN_FULL, &r), ERR);
	CHECK(strstr(r.reason, "expected '00ff', received 'a..'") != NULL);
	/* negated: decided on the first bytes */
	CHECK_EQ_INT(chk_tcp_expect(step(2), 3, "", 0, CHK_FIN_NO, &r), AGAIN);
	CHECK_EQ_INT(chk_tcp_expect(step(2), 3, "+OK", 3, CHK_FIN_NO, &r), OK);
	CHECK_EQ_INT(chk_tcp_expect(step(2), 3, "-ERR", 4, CHK_FIN_NO, &r), ERR);
	CHECK(strstr(r.reason, "received '-ERR', expected no '-ERR'") != NULL);
	CHECK_EQ_INT(chk_tcp_expect(step(2), 3, "", 0, CHK_FIN_EOF, &r), ERR);
	CHECK_EQ_INT(chk_tcp_expect(step(3), 4, "ok 12", 5, CHK_FIN_NO, &r), OK);
	CHECK_EQ_INT(chk_tcp_expect(step(3), 4, "ok x", 4, CHK_FIN_NO, &r), AGAIN);
	cfg_reset();
}

/* ---- agent ---- */

TEST(agent_answers)
{
	struct agent_result ar;

	chk_agent_parse("75%\n", 4, &ar);
	CHECK(ar.ok);
	CHECK_EQ_INT(ar.weight_pct, 75);
	CHECK_EQ_INT(ar.word, AGENT_NONE);
	CHECK_STR(ar.reason, "75%");
	chk_agent_parse("up 50%,ready\r\n", 14, &ar);
	CHECK_EQ_INT(ar.weight_pct, 50);
	CHECK_EQ_INT(ar.word, AGENT_READY);
	chk_agent_parse("DRAIN", 5, &ar);
	CHECK_EQ_INT(ar.word, AGENT_DRAIN);
	CHECK_EQ_INT(ar.weight_pct, -1);
	chk_agent_parse("maint", 5, &ar);
	CHECK_EQ_INT(ar.word, AGENT_MAINT);
	chk_agent_parse("stopped", 7, &ar);
	CHECK_EQ_INT(ar.word, AGENT_STOPPED);
	chk_agent_parse("fail # disk full\n", 17, &ar);
	CHECK_EQ_INT(ar.word, AGENT_FAIL);
	CHECK_STR(ar.reason, "fail # disk full");
	/* the word that takes the most traffic away wins */
	chk_agent_parse("up drain down", 13, &ar);
	CHECK_EQ_INT(ar.word, AGENT_DOWN);
	chk_agent_parse("ready maint", 11, &ar);
	CHECK_EQ_INT(ar.word, AGENT_MAINT);
	/* words after '#' are a comment */
	chk_agent_parse("up #down 0%", 11, &ar);
	CHECK_EQ_INT(ar.word, AGENT_UP);
	CHECK_EQ_INT(ar.weight_pct, -1);
	/* only the first line counts */
	chk_agent_parse("up\ndown\n", 8, &ar);
	CHECK_EQ_INT(ar.word, AGENT_UP);
	CHECK_STR(ar.reason, "up");
}

TEST(agent_odd_answers)
{
	struct agent_result ar;
	char big[600];

	chk_agent_parse("\n", 1, &ar);
	CHECK(ar.ok);
	CHECK_EQ_INT(ar.word, AGENT_NONE);
	CHECK_STR(ar.reason, "(empty answer)");
	chk_agent_parse("hello %% 1x% 12345678% -5%", 26, &ar);
	CHECK_EQ_INT(ar.weight_pct, -1);
	CHECK_EQ_INT(ar.word, AGENT_NONE);
	chk_agent_parse("0%", 2, &ar);
	CHECK_EQ_INT(ar.weight_pct, 0);
	chk_agent_parse("up\x01\xff", 4, &ar);
	CHECK_STR(ar.reason, "up..");
	CHECK_EQ_INT(ar.word, AGENT_NONE); /* "up\x01\xff" is one unknown word */
	memset(big, 'a', sizeof(big));
	chk_agent_parse(big, sizeof(big), &ar);
	CHECK_EQ_INT(strlen(ar.reason), CHK_REASON_LEN - 1);
}

UNIT_RUN()
