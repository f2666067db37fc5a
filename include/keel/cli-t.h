/* Admin socket types, shared by its transport (src/admin/cli.c) and its commands
 * (src/admin/cli-cmd.c). */
#ifndef KEEL_CLI_T_H
#define KEEL_CLI_T_H

#include <stdbool.h>

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
	/* A command line ending with "<<" takes the lines after it, up to an empty line, as its
	 * payload (HAProxy's syntax: "set ssl cert FILE <<"); NULL for the others. */
	const char *payload;
	size_t payload_len;
};

#define CLI_PAYLOAD_MAX (256 * 1024) /* a certificate with its chain and key fits */

#endif
