/* Process types (include/keel/process.h): the command-line options keel_run() starts with. */
#ifndef KEEL_PROCESS_T_H
#define KEEL_PROCESS_T_H

#include <stdbool.h>

struct keel_opts {
	bool foreground;   /* -d / -db: never detach */
	bool force_daemon; /* -D */
	const char *pidfile; /* -p overrides the config */
	bool quiet;
	char **argv; /* the command line, run again by a reload */
};

#endif
