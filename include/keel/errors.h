/* Error responses keel generates itself (400, 502, 503...), replaceable with errorfile. */
#ifndef KEEL_ERRORS_H
#define KEEL_ERRORS_H

#include <stdint.h>

#include <keel/http-t.h>

#define HTTP_ERR_CODES_STR "200 400 401 403 404 405 407 408 410 413 425 429 500 501 502 503 504"

/* Index of a status in an errmsg table (struct proxy's), or -1 when it cannot be customised. */
int http_err_index(int code);

/* The response to send for status: the backend's errorfile if it has one (be: its errmsg table,
 * or NULL), then the frontend's, else keel's built-in page. The returned bytes are static or
 * owned by the configuration. */
const char *http_err_response(const struct errmsg *fe, const struct errmsg *be, int status,
			      uint32_t *len);

#endif
