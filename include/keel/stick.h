/* Stick tables (src/sticky/stick.c): a bounded key → server map shared by the worker threads,
 * with the "stick-table" and "stick" keywords and the request / response hooks that pin and
 * learn. docs/configuration.md ("stick-table", "stick") describes the behaviour. */
#ifndef KEEL_STICK_H
#define KEEL_STICK_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/cfg-t.h>
#include <keel/stick-t.h>

struct sbuf;
struct stream;

/* The "stick-table" and "stick" keywords and the backend check (registered at start,
 * src/process/modules.c). */
extern const struct cfg_module stick_module;
extern const struct proxy_hooks stick_hooks;
/* "stick-table type ip|integer|string [len N] size N [expire T] ..." in a backend or listen. */
int stick_table_kw(struct cfg_ctx *c, int argc, char **argv);
/* "stick on|match|store-request|store-response SAMPLE [table NAME] [if|unless COND]". */
int stick_kw(struct cfg_ctx *c, int argc, char **argv);
/* Resolves p's rules' tables and sizes its table's per-server counts (after srv_cap is known).
 * Errors are reported through c. */
int stick_validate(struct cfg_ctx *c, struct proxy *p);

/* Sets up t's runtime part for t->size entries of at most t->keylen bytes and srv_cap servers.
 * The entries are allocated per shard on its first store. OK, or ERR when out of memory. */
int stick_table_init(struct stktable *t, int srv_cap);
/* Frees what stick_table_init() and the stores allocated. */
void stick_table_free(struct stktable *t);

/* Converts a sample to t's key type into key[t->keylen]: false when it does not convert (a
 * string that is not an address for an ip table, an empty string...). */
bool stick_key(const struct stktable *t, const struct sample *smp, uint8_t *key, uint16_t *klen);
/* Same from text (the admin socket's "clear table NAME key K"). */
bool stick_key_text(const struct stktable *t, const char *s, uint8_t *key, uint16_t *klen);
/* The server id stored for key, or -1 (absent or expired). A hit refreshes the entry's expiry
 * and its LRU position. now_ms: monotonic. */
int stick_lookup(struct stktable *t, const uint8_t *key, uint16_t klen, uint64_t now_ms);
/* Same, and *seen_ms gets the time of the entry's last lookup or store before this one (set only
 * on a hit): a draining server's sticky user idle for drain-idle is gone (cookie_verdict()). */
int stick_lookup_seen(struct stktable *t, const uint8_t *key, uint16_t klen, uint64_t now_ms,
		      uint64_t *seen_ms);
/* Stores key → srv_id (insert or update), evicting the least recently used entry of the shard
 * when it is full. OK, or ERR (out of memory). */
int stick_store(struct stktable *t, const uint8_t *key, uint16_t klen, int srv_id, uint64_t now_ms);
/* Removes key; true when it was there. */
bool stick_remove(struct stktable *t, const uint8_t *key, uint16_t klen);
/* Removes every entry. */
void stick_clear(struct stktable *t);
/* Entries in t (expired ones not yet purged included). */
unsigned stick_used(const struct stktable *t);
/* Removes expired entries. */
void stick_purge(struct stktable *t, uint64_t now_ms);
/* Entries of srv's backend's table naming srv (expired ones purged first): "sticky users". */
int stick_count_for(const struct server *srv);
/* The entries naming srv used (looked up or stored) within idle_ms of now_ms (monotonic), exact up
 * to the workers' clock skew; idle_ms 0: stick_count_for(). Walks each shard's most recent
 * entries under its lock: the admin socket and the stats page, for a draining server. */
int stick_count_recent(const struct server *srv, uint64_t now_ms, uint64_t idle_ms);
/* Writes "# table: NAME, type: T, size:N, used:M" and, with entries, one line per entry
 * "key=K server_id=N server_name=S exp=MS" (exp 0: never). */
void stick_dump(struct stktable *t, bool entries, struct sbuf *o);
/* The state file (src/admin/state.c). stick_foreach() calls fn for every live entry, least
 * recently used first, under each shard's lock in turn: fn must be quick and must not call into
 * the table. left_ms: until it expires, 0 never. stick_restore() stores an entry read back,
 * keeping its remaining lifetime left_ms when shorter than the table's "expire". */
void stick_foreach(struct stktable *t, stick_entry_fn fn, void *arg);
int stick_restore(struct stktable *t, const uint8_t *key, uint16_t klen, int srv_id,
		  uint64_t left_ms);
/* The stick table of backend name, or NULL. */
struct stktable *stick_table_by_name(const char *name);

/* Request side: runs the match and store-request rules of s->be (the parsed head is in
 * s->txn->req_head). A hit on a usable server sets TX_STK_PINNED | TX_CK_PINNED and
 * s->txn->stk.srv; a hit on an unusable one leaves stk.srv set without the flags (the user moves).
 */
void stick_request(struct stream *s);
/* Response side (the head is in s->txn->rsp_head): reports a moved user, applies the pending
 * request stores and the store-response rules with the server that answered. tid: the worker. */
void stick_response(struct stream *s, int tid);

#endif
