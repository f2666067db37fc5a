/* The agent's answer: one line of words (a state, a weight in percent), read by the runner
 * (check.c) from the agent port every agent-inter and turned here into an agent_result for
 * health.c. */
#include <string.h>
#include <strings.h>

#include <keel/check.h>
#include <keel/common.h>

static enum agent_word agent_word(const char *w, size_t n)
{
	static const struct {
		const char *name;
		enum agent_word word;
	} words[] = {
	    {"up", AGENT_UP},		{"down", AGENT_DOWN},	{"ready", AGENT_READY},
	    {"drain", AGENT_DRAIN},	{"maint", AGENT_MAINT}, {"fail", AGENT_FAIL},
	    {"stopped", AGENT_STOPPED},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(words); i++)
		if (strlen(words[i].name) == n && !strncasecmp(w, words[i].name, n))
			return words[i].word;
	return AGENT_NONE;
}

/* agent_result carries one state word: when an answer has several, the one that takes the most
 * traffic away wins (down/fail/stopped, then maint, drain, ready, up). */
static int word_rank(enum agent_word w)
{
	switch (w) {
	case AGENT_DOWN:
	case AGENT_FAIL:
	case AGENT_STOPPED:
		return 5;
	case AGENT_MAINT:
		return 4;
	case AGENT_DRAIN:
		return 3;
	case AGENT_READY:
		return 2;
	case AGENT_UP:
		return 1;
	default:
		return 0;
	}
}

void chk_agent_parse(const char *s, size_t len, struct agent_result *ar)
{
	const char *lf = memchr(s, '\n', len), *p, *end;
	size_t n = lf ? (size_t)(lf - s) : len, i, o = 0;

	memset(ar, 0, sizeof(*ar));
	ar->ok = true;
	ar->weight_pct = -1;
	while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	/* The answer itself goes to the logs, made printable. */
	for (i = 0; i < n && o < sizeof(ar->reason) - 1; i++)
		ar->reason[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '.';
	ar->reason[o] = '\0';
	if (!n)
		snprintf(ar->reason, sizeof(ar->reason), "(empty answer)");
	end = memchr(s, '#', n);
	end = end ? end : s + n;
	for (p = s; p < end;) {
		const char *w;
		size_t wl;

		while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
			p++;
		for (w = p; p < end && *p != ' ' && *p != ',' && *p != '\t'; p++)
			;
		wl = (size_t)(p - w);
		if (wl >= 2 && wl <= 7 && w[wl - 1] == '%') {
			long v = 0;

			for (i = 0; i < wl - 1 && chk_is_digit(w[i]); i++)
				v = v * 10 + (w[i] - '0');
			if (i == wl - 1)
				ar->weight_pct = (int)v;
		} else if (wl) {
			enum agent_word aw = agent_word(w, wl);

			if (word_rank(aw) > word_rank(ar->word))
				ar->word = aw;
		}
	}
}
