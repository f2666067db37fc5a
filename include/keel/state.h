/* Durable runtime state ("state-file PATH" in global): the admin state, runtime weight and check
 * switch of every server, saved to a file by a dedicated writer thread and restored at start, so
 * that they survive a reload, a restart and a kill -9. Format and rules: docs/admin.md, "Durable
 * state". */
#ifndef KEEL_STATE_H
#define KEEL_STATE_H

#include <stddef.h>
#include <sys/types.h>

#include <keel/proxy-t.h>

/* The format version this keel writes and the newest it reads. A file with a higher version is
 * refused as a whole (keel starts from the configuration). */
#define STATE_VERSION 1

/* Largest state file read at start, and longest line. */
#define STATE_MAX_FILE (256u << 20) /* stick tables can be large */
#define STATE_MAX_LINE 4096

/* Seconds between retries after a failed write (a change retries at once). */
#define STATE_RETRY_S 5

/* What a restore did, for the logs and the tests. */
struct state_report {
	int applied;   /* server records applied (at least partly) */
	int added;     /* servers added at runtime, added again */
	int deleted;   /* configured servers deleted at runtime, deleted again */
	int sticks;    /* stick table entries restored */
	int stick_dropped; /* entries whose table, server or key type is gone, or expired */
	int unknown;   /* records of servers not in the configuration */
	int malformed; /* lines skipped as malformed (each logged with its line number) */
	int conflicts; /* fields where the configuration changed since the save: config wins */
	int skipped;   /* unknown record types and fields (newer minor additions) */
	int refused;   /* 1: the whole file was refused (not a state file, newer version) */
};

/* Checks "state-file PATH" at load time (also with -c): the directory must exist. Returns OK,
 * or ERR with *err (malloc'd). */
int state_check_path(const char *path, char **err);

/* Start-up, in this order (src/core/process.c). state_open(): before chroot and the user
 * switch, opens the state file's directory (the path is resolved outside the chroot, relative to
 * the working directory at start); a no-op without "state-file". state_restore(): after
 * health_init(), reads the file and applies it through health_set_*() (who = "state file").
 * state_start(): starts the writer thread. state_stop(): writes what is pending and joins it
 * (before health_deinit()). Only state_open() can fail (ERR with *err). */
int state_open(char **err);
void state_restore(struct state_report *rep);
int state_start(char **err);
void state_stop(void);

/* Reload (src/core/reload.c). state_handover_fd(): the old process's current state in a memfd
 * (close-on-exec; ERR -1 with *err). state_restore_fd(): the new process applies it instead of
 * reading the file (between health_init() and state_start(); with a state file, the file is then
 * rewritten once). state_detach(): the old process, once the new one serves, stops its writer
 * without a last save, so that it never overwrites the new process's file. */
int state_handover_fd(char **err);
void state_restore_fd(int fd, struct state_report *rep);
void state_detach(void);

/* The hook health.c calls after a server's admin state, weight or check switch changed (any
 * thread, the server's health mutex may be held). Never does I/O: marks the state dirty and
 * wakes the writer, which coalesces bursts. */
void state_note_change(struct server *srv);

/* ---- the parts below are pure or take a directory: unit tests and fuzz/fuzz-state.c ---- */

/* Parses a state file image and applies it to the loaded configuration (servers need their
 * health state: health_init() done). name is used in log lines. Never fails: problems are
 * logged and counted in rep. */
void state_apply_buf(const char *name, const char *buf, size_t len, struct state_report *rep);
/* Serialises the current state of every server. Returns a malloc'd, NUL-terminated image. */
char *state_dump(size_t *len);
/* Writes buf to dirfd/name atomically: name.tmp, fsync, rename, fsync of the directory. On
 * failure the previous file is untouched, name.tmp is removed, and ERR is returned with *err
 * (malloc'd, with errno's text). */
int state_write_file(int dirfd, const char *name, const char *buf, size_t len, char **err);
/* The write(2) state_write_file() uses: tests replace it to inject ENOSPC and short writes. */
extern ssize_t (*state_write_fn)(int fd, const void *buf, size_t n);

#endif
