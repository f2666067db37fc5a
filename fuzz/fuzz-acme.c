/* libFuzzer target: what the ACME client parses of the network (src/ssl/acme.c): an HTTP
 * response from the authority (status line, headers, Content-Length or chunked body), a URL
 * from a directory or a Location header, and the HTTP-01 request path. JSON is jansson's.
 * Input: the bytes of a response; its first line also serves as the URL. */
#include "../src/ssl/acme.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsp r = {0};
	struct url u;
	char *err = NULL, *line;
	size_t n;

	if (size > 65536)
		return 0;
	r.raw = malloc(size + 1);
	if (!r.raw)
		return 0;
	memcpy(r.raw, data, size);
	r.raw[size] = '\0';
	if (rsp_parse(&r, size, &err) == OK) {
		/* the body stays inside the input and is NUL-terminated */
		if (r.body < r.raw || r.body + r.len > r.raw + size || r.body[r.len] != '\0')
			abort();
		if (strlen(r.location) >= sizeof(r.location) || strlen(r.nonce) >= sizeof(r.nonce))
			abort();
	}
	free(err);
	err = NULL;
	free(r.raw);

	{
		const uint8_t *nl = memchr(data, '\n', size);

		n = nl ? (size_t)(nl - data) : size;
	}
	line = strndup((const char *)data, n);
	if (line) {
		if (url_parse(line, &u, &err) == OK &&
		    (!u.host[0] || !u.port[0] || u.path[0] != '/' ||
		     strlen(u.host) >= sizeof(u.host)))
			abort();
		free(err);
		{
			struct http_head h = {.base = line, .path = {0, (uint32_t)strlen(line)}};
			size_t tl = 0;
			const char *t = http01_token(&h, &tl);

			if (t && (t < line || t + tl > line + h.path.len || !tl))
				abort();
		}
		free(line);
	}
	return 0;
}
