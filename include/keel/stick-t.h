/* Stick table types ("stick-table" and "stick on|match|store-request|store-response" in a backend,
 * src/sticky/stick.c). The table's shards and entries are private to stick.c. */
#ifndef KEEL_STICK_T_H
#define KEEL_STICK_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <keel/sample-t.h>

enum stick_type {
	STK_IP = 0,  /* IPv4 and IPv6 addresses, stored as 16 bytes (IPv4 v4-mapped) */
	STK_INTEGER, /* 64-bit signed */
	STK_STRING,  /* up to "len" bytes, longer samples truncated (as HAProxy) */
};

#define STICK_SHARDS 64	   /* lock stripes of a large table */
#define STICK_SHARD_MIN 16 /* smaller than STICK_SHARDS * this: one shard, an exact LRU */
#define STICK_STR_LEN 32   /* default "len" of a string table */
#define STICK_STR_MAX 256  /* largest "len" */
#define STICK_SIZE_MAX (1u << 26)
#define STICK_MAX_PENDING 4 /* request-side stores one request can carry to its response */
#define STICK_TXN_KEYS 512  /* their key bytes */

struct stick_shard;
struct proxy;
struct acl_cond;

struct stktable {
	/* config */
	char *name;	    /* the backend's name */
	struct proxy *be;   /* the backend that declares it (server ids are its servers') */
	uint8_t type;	    /* enum stick_type */
	uint16_t keylen;    /* largest key in bytes: 16 (ip), 8 (integer), len (string) */
	uint32_t size;	    /* entries at most */
	uint32_t expire_ms; /* 0: entries never expire (only the LRU evicts them) */
	/* runtime (stick_table_init) */
	int nshards;
	struct stick_shard *shards;
	atomic_int *srv_count; /* entries per server id of be, srv_cap slots */
	int srv_cap;
	atomic_uint used;
	_Atomic uint64_t evictions;
	/* for the state file's writer, which clears them: an entry added, re-pointed or removed
	 * (saved within a second), or only an expiry refreshed (saved less often) */
	atomic_bool changed, touched;
};

enum stick_rule_kind {
	STKR_MATCH = 1u << 0,	  /* "stick match": look up, pin on a hit */
	STKR_STORE_REQ = 1u << 1, /* "stick store-request": learn the server that answers */
	STKR_ON = STKR_MATCH | STKR_STORE_REQ,
	STKR_STORE_RSP = 1u << 2, /* "stick store-response": the key comes from the response */
};

struct stick_rule {
	uint8_t kind; /* enum stick_rule_kind */
	struct sample_expr expr;
	char *table_name;      /* "table NAME", NULL: the backend's own */
	struct stktable *t;    /* resolved by stick_validate() */
	struct acl_cond *cond; /* if/unless, or NULL */
	const char *file;
	int line;
};

/* A backend's stick configuration (struct proxy.stk). */
struct stick_conf {
	struct stktable *table; /* its "stick-table", or NULL */
	struct stick_rule *rules;
	int nrules;
};

/* A request's stick state (struct txn), reset with the transaction. The key bytes live in the
 * transaction's stk_keys[STICK_TXN_KEYS]. */
struct stick_txn {
	struct server *srv; /* the server a matched entry named (usable or not) */
	uint8_t n;	    /* pending stores */
	uint16_t used;	    /* key bytes used */
	struct {
		struct stktable *t;
		uint16_t off, len;
		bool moved; /* an entry a match found on an unusable server: re-pointed */
	} st[STICK_MAX_PENDING];
};

/* What stick_foreach() calls for each live entry of a table (the state file): its key, the id of
 * the server it names, and left_ms until it expires (0: never). */
typedef void (*stick_entry_fn)(void *arg, const uint8_t *key, uint16_t klen, int srv_id,
			       uint64_t left_ms);

#endif
