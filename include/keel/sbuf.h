/* A growable output string for pages built off the hot path (stats JSON, Prometheus metrics).
 * Allocation failures are sticky: after one, every call is a no-op and oom stays set, so a
 * renderer checks once at the end. */
#ifndef KEEL_SBUF_H
#define KEEL_SBUF_H

#include <stddef.h>

#include <keel/sbuf-t.h>

/* Appends the formatted text. */
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends len bytes. */
void sbuf_put(struct sbuf *b, const char *s, size_t len);
/* Appends s as a JSON string, quotes included: '"', '\' and control characters are escaped,
 * and bytes >= 0x80 become \u00XX (read as Latin-1), so the output is valid JSON and valid UTF-8
 * whatever the input (reasons may quote bytes a server sent). */
void sbuf_json_str(struct sbuf *b, const char *s);

#endif
