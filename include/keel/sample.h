/* Samples (values taken from a request) and log-format strings. */
#ifndef KEEL_SAMPLE_H
#define KEEL_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/cfg-t.h>
#include <keel/sample-t.h>

struct stream;

/* Parses a fetch name such as "src", "path", "hdr(host)", "req.hdr(x-y,1)". On success *rest points
 * after the expression. Returns OK or ERR with *err (malloc'd). */
int sample_expr_parse(const char *s, struct sample_expr *e, const char **rest, char **err);
/* Fetches a sample from the session's current transaction. Returns false when absent. */
bool sample_fetch(struct stream *s, const struct sample_expr *e, struct sample *out);
/* Renders a sample as text into out; returns the length written (truncated to cap). */
size_t sample_to_str(const struct sample *smp, char *out, size_t cap);

/* Compiles a log-format string (%ci, %[src], ...). Returns OK or ERR (reported through c). */
int logformat_parse(struct cfg_ctx *c, const char *s, struct logformat *lf);
/* Renders a log-format for a session into out (NUL-terminated); returns the length. */
size_t logformat_render(const struct logformat *lf, struct stream *s, char *out, size_t cap);

/* The formats behind "option httplog" and "option logjson". */
extern const char *const LOGFMT_HTTPLOG;
extern const char *const LOGFMT_CLF;

#endif
