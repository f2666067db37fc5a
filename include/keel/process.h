/* The process: turning a loaded configuration into running worker threads, privileges, signals,
 * and stopping (soft and hard). */
#ifndef KEEL_PROCESS_H
#define KEEL_PROCESS_H

#include <keel/process-t.h>

/* Runs the loaded configuration until stopped. Returns the process exit code. */
int keel_run(const struct keel_opts *o);

/* Starts the soft stop in every worker and waits (2 s at most) until none accepts any more: a
 * reload answers after this, so that a connection made after the answer reaches the new
 * process. Any thread. */
void keel_stop_accepting(void);

#endif
