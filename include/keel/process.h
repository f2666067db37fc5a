/* The process: turning a loaded configuration into running worker threads, privileges, signals,
 * and stopping (soft and hard). */
#ifndef KEEL_PROCESS_H
#define KEEL_PROCESS_H

#include <stdbool.h>

struct keel_opts {
	bool foreground;   /* -d / -db: never detach */
	bool force_daemon; /* -D */
	const char *pidfile; /* -p overrides the config */
	bool quiet;
};

/* Runs the loaded configuration until stopped. Returns the process exit code. */
int keel_run(const struct keel_opts *o);
/* Prepares shared runtime state (counters, server states, hash rings). Also used by tests. */
void keel_runtime_init(int nbthread);

#endif
