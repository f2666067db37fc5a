/* Durable runtime state ("state-file PATH" in global): the admin state, runtime weight and check
 * switch of every server, saved to a file by a dedicated writer thread and restored at start, so
 * that they survive a reload, a restart and a kill -9. Format and rules: docs/admin.md, "Durable
 * state". The lifecycle and the writer thread are in src/admin/state.c, the reading of a state
 * image in state-read.c, its writing in state-write.c. */
#ifndef KEEL_STATE_H
#define KEEL_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <keel/proxy-t.h>
#include <keel/state-t.h>

struct sbuf;

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

/* ---- shared by src/admin/state.c, state-read.c and state-write.c, not for other modules ---- */

/* Appends s to o with %XX escapes for what splits a record's tokens (space, '=', '#', '%'). */
void state_enc(struct sbuf *o, const char *s);
/* The "type=" word of a stick record, indexed by enum stick_type. */
extern const char *const state_stick_types[];
/* The admin state srv's configuration gives it: what "cfg-admin" records. */
enum srv_admin state_cfg_admin(const struct server *srv);
/* Wall-clock ms since the epoch: the clock of a stick record's "exp". */
uint64_t state_wall_ms(void);
/* Clears the stick tables' "changed" and "touched" flags: what follows is in this write. */
void state_sticks_taken(void);
/* Writes all of buf with wr: 0, or the errno of the failure (ENOSPC for a write of nothing). */
int state_write_all(ssize_t (*wr)(int, const void *, size_t), int fd, const char *buf, size_t len);

#endif
