/* Logging: per-request lines and process messages, sent to the configured targets by a dedicated
 * logger thread so that no worker ever blocks on a disk or a full socket. Workers hand lines over
 * through per-thread single-producer rings; a full ring drops the line and counts it. */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/log-t.h>

/* Opens the targets of lt not opened yet (call before chroot, for the global targets and each
 * proxy's). Returns OK or ERR with *err. */
int log_open_targets(struct log_targets *lt, char **err);
/* Starts the logger thread; before that, messages are written synchronously. nrings = workers. */
int log_start(int nrings, char **err);
/* Flushes what is queued and stops the logger thread. */
void log_stop(void);
/* Whether process messages also go to stderr (foreground and not quiet). */
void log_set_stderr(int on);

/* A request log line, sent to own (a frontend's targets) and, when global_too ("log global"),
 * the global ones. own must stay valid until exit (configuration memory). ring is the calling
 * worker's index. */
void log_request(int ring, const struct log_targets *own, bool global_too, int level,
		 const char *line, size_t len);
/* A process message (state changes, errors): global targets and stderr. Any thread. */
void keel_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t log_dropped(void);

#endif
