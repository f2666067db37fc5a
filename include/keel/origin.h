/* The controllable origin server used by the system tests, the benchmarks and the demo. */
#ifndef KEEL_ORIGIN_H
#define KEEL_ORIGIN_H

struct origin_opts {
	const char *name;  /* sent as X-Origin and in bodies */
	int listen_fds[8]; /* listening sockets (nonblocking) */
	int nlisten;
	int quiet;
	const char *id_log; /* NULL, or a file the X-Req-Id of every POST is appended to */
};

/* Opens a listening socket on "IP:PORT" or "[IPv6]:PORT". Returns the fd, or -1 with *err set
 * (malloc'd). */
int origin_listen(const char *addr, char **err);
/* Serves forever on one thread; returns nonzero on a fatal error. */
int origin_run(const struct origin_opts *o);

#endif
