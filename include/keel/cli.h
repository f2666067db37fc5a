/* The admin socket ("stats socket" in global): a unix socket served by its own thread, one
 * command per line, HAProxy's command names where the meaning is the same. docs/admin.md lists
 * the commands; the threading is described at the top of src/admin/cli.c. */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/sbuf.h>

/* What a connection may do: user reads, operator also changes servers' state and weight,
 * admin everything. */
enum cli_level {
	CLI_LVL_USER = 0,
	CLI_LVL_OPER,
	CLI_LVL_ADMIN,
};

/* Longest command line accepted, newline included. */
#define CLI_LINE_MAX 4096

/* The state of one client across its lines. */
struct cli_ctx {
	enum cli_level level;
	bool interactive; /* "prompt" toggles it: the connection stays open between lines */
	bool quit;	  /* "quit": close after this answer */
};

/* Runs one line (several commands separated by ';', no newline) and appends their answers to o.
 * Every error is one line starting with "error: ". Returns the number of commands that failed. */
int cli_exec_line(struct cli_ctx *c, const char *line, size_t len, struct sbuf *o);

/* Creates the socket of global.cli_path (removing a stale one), applies its mode and owner.
 * Called while still privileged (before chroot and the user switch); no-op without a socket. */
int cli_bind(char **err);
/* Starts the admin thread (after the health state exists). */
int cli_start(char **err);
/* The listening socket (-1: none), which a reload passes on to the new process. */
int cli_listen_fd(void);
/* Stops the thread, closes the socket and removes its file when it is still ours (not after a
 * reload handed it over). */
void cli_stop(void);

#endif
