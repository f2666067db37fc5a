/* libFuzzer target: the Cookie / Set-Cookie helpers of cookie persistence (src/sticky/cookie.c).
 * Input: a Cookie header value. Each helper runs over it for the cookie name "SRV" and checks
 * that what it reports stays inside the input and that a rewrite never grows past its bound. */
#include <stdlib.h>
#include <string.h>

#include <keel/cookie.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cookie_conf modes[] = {
		{.name = "SRV", .namelen = 3, .mode = CK_INSERT, .maxidle_s = 60, .maxlife_s = 600},
		{.name = "SRV", .namelen = 3, .mode = CK_PREFIX},
		{.name = "SRV", .namelen = 3, .mode = CK_REWRITE},
	};
	const char *v = (const char *)data;
	uint32_t len = (uint32_t)size, off, vl, srvlen, last, first, n;
	char *out;
	size_t i;

	if (size > 65536)
		return 0;
	out = malloc(size + size / 2 + 2);
	if (!out)
		return 0;
	if (cookie_find(v, len, "SRV", 3, &off, &vl)) {
		if (off + vl > len)
			abort();
		for (i = 0; i < 3; i++) {
			cookie_split(&modes[i], v + off, vl, &srvlen, &last, &first);
			if (srvlen > vl)
				abort();
			(void)cookie_dates_ok(&modes[i], last, first, 1700000000u);
		}
	}
	n = cookie_req_rewrite(v, len, "SRV", 3, false, out);
	if (n > len + len / 2 + 2)
		abort();
	n = cookie_req_rewrite(v, len, "SRV", 3, true, out);
	if (n > len + len / 2 + 2)
		abort();
	if (cookie_setcookie_match(v, len, "SRV", 3, &off, &vl) && off + vl > len)
		abort();
	free(out);
	return 0;
}
