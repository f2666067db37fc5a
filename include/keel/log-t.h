/* Log types: where log lines go. */
#ifndef KEEL_LOG_T_H
#define KEEL_LOG_T_H

#include <stdint.h>
#include <sys/socket.h>

/* syslog severities */
enum { LOG_LVL_EMERG, LOG_LVL_ALERT, LOG_LVL_CRIT, LOG_LVL_ERR, LOG_LVL_WARNING, LOG_LVL_NOTICE,
       LOG_LVL_INFO, LOG_LVL_DEBUG };

enum log_target_kind {
	LOG_T_UDP,   /* syslog over UDP (RFC 3164 framing) */
	LOG_T_UNIX,  /* syslog over a unix datagram socket (/dev/log) */
	LOG_T_FD,    /* stdout / stderr: one line per message, no syslog header */
	LOG_T_FILE,  /* file@PATH: appended lines, no syslog header */
};

enum log_format_kind {
	LOG_FMT_RFC3164,
	LOG_FMT_RAW,     /* just the message */
	LOG_FMT_SHORT,   /* "<PRI>message" */
};

struct log_target {
	enum log_target_kind kind;
	enum log_format_kind format;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *path;
	int facility;     /* 0..23 */
	int level;        /* max level sent (syslog severity, 0 = emerg .. 7 = debug) */
	int minlevel;
	int fd;           /* opened at start, before chroot */
};

/* A set of targets (global's, or a proxy's own). */
struct log_targets {
	struct log_target *t;
	int n;
};

#endif
