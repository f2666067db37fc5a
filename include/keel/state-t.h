/* Durable runtime state types and constants ("state-file PATH" in global, src/admin/state*.c):
 * the format version, the limits of a state file, the writer's retry delay, and what a restore
 * did. Format and rules: docs/admin.md, "Durable state". */
#ifndef KEEL_STATE_T_H
#define KEEL_STATE_T_H

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

#endif
