/* What the answer evaluators (check-http.c, check-tcp.c) share: the regex match of the expect
 * rules, and the wording of a result's reason, which quotes patterns and received bytes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>

#include <keel/check.h>
#include <keel/common.h>

const char *chk_show(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i, n = MIN(len, MIN(cap - 1, (size_t)CHK_SHOW_MAX));

	for (i = 0; i < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '.';
	dst[n] = '\0';
	return dst;
}

void chk_set_res(struct chk_result *r, bool ok, enum chk_code code, const char *f, ...)
{
	va_list ap;

	r->ok = ok;
	r->code = code;
	va_start(ap, f);
	vsnprintf(r->reason, sizeof(r->reason), f, ap);
	va_end(ap);
}

bool chk_re_match(void *re, const char *s, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	int rc;

	/* Checks are seconds apart: a match block per match keeps this thread-agnostic. */
	if (!md)
		return false;
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}
