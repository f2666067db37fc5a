/* The controllable origin server used by the system tests, the benchmarks and the demo. */
#ifndef KEEL_ORIGIN_H
#define KEEL_ORIGIN_H

#include <keel/origin-t.h>

/* Opens a listening socket on "IP:PORT" or "[IPv6]:PORT". Returns the fd, or -1 with *err set
 * (malloc'd). */
int origin_listen(const char *addr, char **err);
/* Serves forever on one thread; returns nonzero on a fatal error. */
int origin_run(const struct origin_opts *o);

#endif
