/* Origin server types (include/keel/origin.h). */
#ifndef KEEL_ORIGIN_T_H
#define KEEL_ORIGIN_T_H

struct origin_opts {
	const char *name;  /* sent as X-Origin and in bodies */
	int listen_fds[8]; /* listening sockets (nonblocking) */
	int nlisten;
	int quiet;
	const char *id_log; /* NULL, or a file the X-Req-Id of every POST is appended to */
};

#endif
