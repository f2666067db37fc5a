/* The admin socket ("stats socket" in global): a unix socket served by its own thread, one
 * command per line, HAProxy's command names where the meaning is the same. docs/admin.md lists
 * the commands; the transport and its threading are described at the top of src/admin/cli.c, the
 * commands (and how to add one) in src/admin/cli-cmd.c. */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

#include <stddef.h>

#include <keel/cli-t.h>
#include <keel/sbuf.h>

/* Runs one line (several commands separated by ';', no newline) and appends their answers to o.
 * Every error is one line starting with "error: ". Returns the number of commands that failed. */
int cli_exec_line(struct cli_ctx *c, const char *line, size_t len, struct sbuf *o);
/* Appends the error line "error: MESSAGE" to o; returns ERR. */
int cli_err(struct sbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs the command named by the first words of argv (argc >= 1, argv[argc] NULL) if c's level
 * allows it: OK, or ERR with one error line appended to o (unknown, not allowed or failed). */
int cli_cmd_run(struct cli_ctx *c, int argc, char **argv, struct sbuf *o);
/* Appends the list of commands ("help"), marking those above c's level. */
void cli_cmd_list(const struct cli_ctx *c, struct sbuf *o);

/* Creates the socket of global.cli_path (removing a stale one), applies its mode and owner.
 * Called while still privileged (before chroot and the user switch); no-op without a socket.
 * inherited (may be NULL): in a process started by a reload, the socket the previous process
 * passed on for a path (-1: none), taken instead of a new one. */
int cli_bind(int (*inherited)(const char *path), char **err);
/* Starts the admin thread (after the health state exists). */
int cli_start(char **err);
/* The listening socket (-1: none), which a reload passes on to the new process. */
int cli_listen_fd(void);
/* Stops the thread, closes the socket and removes its file when it is still ours, unless
 * keep_file (a reload handed it over: the new process serves the same file). */
void cli_stop(bool keep_file);
/* What the "reload" command runs: the process layer's keel_reload() (OK with the new pid, or
 * ERR with *err malloc'd). Unset, "reload" answers an error. Set before cli_start(). */
void cli_set_reload(int (*fn)(int *newpid, char **err));

#endif
