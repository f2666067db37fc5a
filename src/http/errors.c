/* Built-in error pages: complete HTTP/1.1 responses, each closing the connection, built once at
 * start-up so that answering an error never allocates. */
#include <stdio.h>
#include <string.h>

#include <keel/common.h>
#include <keel/errors.h>
#include <keel/http.h>

static const int codes[KEEL_ERR_CODES] = {200, 400, 401, 403, 404, 405, 407, 408, 410,
					  413, 425, 429, 500, 501, 502, 503, 504};

static const char *const explain[KEEL_ERR_CODES] = {
	"Service ready.",
	"Your browser sent an invalid request.",
	"This page requires authentication.",
	"Request forbidden by administrative rules.",
	"The requested URL was not found.",
	"This method is not allowed here.",
	"Proxy authentication required.",
	"Your browser didn't send a complete request in time.",
	"The requested resource is no longer available.",
	"The request body is too large.",
	"Too early.",
	"Too many requests: please slow down.",
	"An internal error occurred.",
	"This feature is not implemented.",
	"The server returned an invalid or incomplete response.",
	"No server is available to handle this request.",
	"The server didn't respond in time.",
};

static char builtin[KEEL_ERR_CODES][512];
static uint32_t builtin_len[KEEL_ERR_CODES];
static char other[3][512]; /* 414, 431, 505: not customisable */

int http_err_index(int code)
{
	int i;

	for (i = 0; i < KEEL_ERR_CODES; i++)
		if (codes[i] == code)
			return i;
	return -1;
}

static uint32_t build(char *out, size_t cap, int code, const char *text)
{
	char body[256];
	int blen, n;

	blen = snprintf(body, sizeof(body), "<html><body><h1>%d %s</h1>\n%s\n</body></html>\n", code,
			http_reason(code), text);
	n = snprintf(out, cap,
		     "HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
		     "content-type: text/html\r\nconnection: close\r\n\r\n%s",
		     code, http_reason(code), blen, body);
	return (uint32_t)n;
}

static const char *builtin_for(int status, uint32_t *len)
{
	static uint32_t other_len[3];
	int i = http_err_index(status);

	if (!builtin_len[0]) {
		for (i = 0; i < KEEL_ERR_CODES; i++)
			builtin_len[i] = build(builtin[i], sizeof(builtin[i]), codes[i], explain[i]);
		other_len[0] = build(other[0], sizeof(other[0]), 414, "The request line is too long.");
		other_len[1] = build(other[1], sizeof(other[1]), 431, "The request headers are too large.");
		other_len[2] = build(other[2], sizeof(other[2]), 505, "This HTTP version is not supported.");
		i = http_err_index(status);
	}
	if (i >= 0) {
		*len = builtin_len[i];
		return builtin[i];
	}
	i = status == 414 ? 0 : status == 431 ? 1 : status == 505 ? 2 : -1;
	if (i < 0) {
		i = http_err_index(500);
		*len = builtin_len[i];
		return builtin[i];
	}
	*len = other_len[i];
	return other[i];
}

const char *http_err_response(const struct errmsg *fe, const struct errmsg *be, int status,
			      uint32_t *len)
{
	int i = http_err_index(status);

	if (i >= 0) {
		if (be && be[i].data) {
			*len = be[i].len;
			return be[i].data;
		}
		if (fe && fe[i].data) {
			*len = fe[i].len;
			return fe[i].data;
		}
	}
	return builtin_for(status, len);
}
