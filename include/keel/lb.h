/* Balancing (src/proxy/lb.c): picking a server of a backend for a request, and the hashing
 * behind the hash-based algorithms and consistent hashing. */
#ifndef KEEL_LB_H
#define KEEL_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/backend-t.h>
#include <keel/stream-t.h>

/* Picks a server for s (not avoid, if another is usable). Returns NULL when none is usable. The
 * slot is not taken. */
struct server *lb_pick(struct stream *s, struct be_tctx *bt, const struct server *avoid);
/* Builds the consistent-hashing rings (start-up, main thread). */
void lb_build_rings(void);
/* (Re)builds one backend's consistent-hashing ring and publishes it (release); the previous ring
 * stays allocated until exit. "add server" and "del server" call it (admin thread). */
void lb_build_ring(struct proxy *be);
uint64_t lb_hash(const void *data, size_t len);
/* The balancing key of s's request for hash-based algorithms (source, uri, hdr, url_param).
 * Needs the parsed request head; false when the algorithm has no key or the key is absent. */
bool lb_hash_key(struct stream *s, struct proxy *be, uint64_t *h);
/* Exposed for unit tests: chooses among a backend's servers for a hash. */
struct server *lb_hash_pick(struct proxy *be, struct be_tctx *bt, uint64_t h);

#endif
