/* tcp-check ("option tcp-check" and its connect/send/expect rules): the verdict of an expect rule
 * on the bytes received so far, and the reason given when the deadline ends a run waiting on one.
 * The runner (check.c) walks the rules, since connect and send steps need its sockets and timer. */
#include <string.h>

#include <keel/check.h>
#include <keel/common.h>

int chk_tcp_expect(const struct tcpchk_step *st, int idx, const char *buf, size_t len, int fin,
		   struct chk_result *r)
{
	const struct chk_expect *e = &st->exp;
	char pat[CHK_SHOW_MAX + 1], got[CHK_SHOW_MAX + 1];
	bool m;

	m = e->type == CHK_EXP_RSTRING ? chk_re_match(e->re, buf, len)
				       : len && st->len && memmem(buf, len, st->data, st->len);
	chk_show(pat, sizeof(pat), e->arg, strlen(e->arg));
	chk_show(got, sizeof(got), buf, len);
	r->status = 0;
	if (m) {
		if (!e->negate)
			return OK;
		chk_set_res(r, false, CHK_C_L7RSP, "step %d: received '%s', expected no '%s'", idx,
			    got, pat);
		return ERR;
	}
	/* A negated expect is decided on the first bytes received (a server that keeps its
	 * connection open would otherwise always take the whole timeout). */
	if (e->negate && len)
		return OK;
	if (fin == CHK_FIN_NO)
		return AGAIN;
	if (!len)
		chk_set_res(r, false, CHK_C_L7RSP, "step %d: connection closed before '%s'", idx,
			    pat);
	else
		chk_set_res(r, false, CHK_C_L7RSP, "step %d: expected '%s', received '%s'", idx,
			    pat, got);
	return ERR;
}

void chk_tcp_timeout(const struct tcpchk_step *st, int idx, const char *buf, size_t len,
		     uint32_t ms, struct chk_result *r)
{
	struct chk_result er;
	char pat[CHK_SHOW_MAX + 1];

	r->status = 0;
	/* Like HAProxy, a mismatch waits for more bytes until the end: say what came. */
	if (len && chk_tcp_expect(st, idx, buf, len, CHK_FIN_EOF, &er) == ERR)
		chk_set_res(r, false, CHK_C_L7TOUT, "%s (timeout after %u ms)", er.reason, ms);
	else
		chk_set_res(r, false, CHK_C_L7TOUT, "step %d: timeout after %u ms waiting for '%s'",
			    idx, ms, chk_show(pat, sizeof(pat), st->exp.arg, strlen(st->exp.arg)));
}
