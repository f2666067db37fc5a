/* Logging: per-request lines and process messages, sent to the configured targets by a dedicated
 * logger thread so that no worker ever blocks on a disk or a full socket. Workers hand lines over
 * through per-thread single-producer rings; a full ring drops the line and counts it. */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/log-t.h>
#include <keel/proxy-t.h>

/* syslog severities */
enum { LOG_LVL_EMERG, LOG_LVL_ALERT, LOG_LVL_CRIT, LOG_LVL_ERR, LOG_LVL_WARNING, LOG_LVL_NOTICE,
       LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Opens every target of the configuration (call before chroot). Returns OK or ERR with *err. */
int log_open_targets(char **err);
/* Starts the logger thread; before that, messages are written synchronously. nrings = workers. */
int log_start(int nrings, char **err);
/* Flushes what is queued and stops the logger thread. */
void log_stop(void);
/* Whether process messages also go to stderr (foreground and not quiet). */
void log_set_stderr(int on);

/* A request log line for frontend fe (sent to fe's targets and, with "log global", the global
 * ones). ring is the calling worker's index. */
void log_request(int ring, const struct proxy *fe, int level, const char *line, size_t len);
/* A process message (state changes, errors): global targets and stderr. Any thread. */
void keel_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t log_dropped(void);

#endif
