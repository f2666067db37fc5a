/* The muxes (include/keel/mux-t.h): HTTP/1 (src/proxy/mux-h1.c). */
#ifndef KEEL_MUX_H
#define KEEL_MUX_H

#include <keel/mux-t.h>

/* HTTP/1.x on a client connection: one stream at a time, keep-alive and pipelining. */
extern const struct mux_ops mux_h1;

/* The calling worker's HTTP/1 connection pool: set up, and freed at the worker's exit. */
void mux_h1_thread_init(void);
void mux_h1_thread_exit(void);

#endif
