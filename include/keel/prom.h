/* The Prometheus metrics page (src/admin/prom.c, docs/metrics.md). */
#ifndef KEEL_PROM_H
#define KEEL_PROM_H

#include <stdint.h>

#include <keel/check-t.h>
#include <keel/proxy-t.h>
#include <keel/sbuf.h>

struct stream;

/* Answers s with the Prometheus metrics page (text format 0.0.4); for "stats prometheus-uri"
 * and "http-request use-service prometheus-exporter". */
void prom_serve(struct stream *s);
/* The whole metrics page; fe (may be NULL): the frontend serving it, whose "stats
 * hide-version" empties the version label. */
void prom_render(struct sbuf *b, const struct proxy *fe);
/* One histogram (the _bucket lines, _sum and _count) of name{labels,le=...} from fine: the
 * cumulative counts of the LAT_BUCKETS latency buckets (check.h), folded into coarse buckets in
 * seconds. labels is already escaped ("backend=\"b\",server=\"s\""). Exposed for unit tests. */
void prom_histogram(struct sbuf *b, const char *name, const char *labels,
		    const uint64_t fine[LAT_BUCKETS]);
/* Appends s escaped as a Prometheus label value (without the quotes): '\', '"' and newline are
 * escaped, bytes >= 0x80 become '?' (label values must be valid UTF-8). */
void prom_label(struct sbuf *b, const char *s);

#endif
