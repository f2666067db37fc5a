/* Process-wide settings: the global section's values, read by every layer (src/cfg/global.c
 * parses them; the admin layer keeps its own settings apart). */
#ifndef KEEL_GLOBAL_T_H
#define KEEL_GLOBAL_T_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/log-t.h>

#define KEEL_MAX_THREADS 64

struct global {
	bool daemon;
	bool quiet;
	char *pidfile;
	char *chroot;
	char *user, *group;
	int uid, gid;            /* -1: unset */
	int nbthread;            /* 0: one per CPU */
	int maxconn;             /* 0: derived from the file descriptor limit */
	int ulimit_n;
	uint32_t bufsize;
	uint32_t bufsize_stream;  /* tune.bufsize.stream: buffer of a body in transit (0: off) */
	bool nosplice;           /* "nosplice": no splice(2) whatever the proxies ask */
	int maxpipes;            /* "maxpipes": pipes for splice(2) (0: maxconn / 4) */
	uint32_t maxrewrite;
	int maxhdr;
	uint32_t hard_stop_after;/* ms */
	struct log_targets logs;
	char *node;
	char *log_tag;
	char *state_file;        /* "state-file": durable runtime state (admin/state.c), NULL: off */
	int spare_servers;       /* tune.spare-servers: room per backend for "add server" (16) */
	const char *file;        /* the config file, for messages */
	/* stats socket (admin/cli.c) */
	char *cli_path;          /* NULL: no admin socket */
	int cli_mode;            /* file mode, default 0600 */
	int cli_level;           /* enum cli_level, default admin */
	char *cli_user, *cli_group; /* owner of the socket file, NULL: unchanged */
	int cli_uid, cli_gid;    /* -1: unset */
	uint32_t cli_timeout;    /* ms an idle client may stay connected ("stats timeout") */
};

#endif
