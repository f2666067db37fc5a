/* Configuration loading, the ground layer of it: HAProxy's section syntax, the lexer, the typed
 * value parsers, messages with file:line, and the registry through which the modules above
 * declare their sections and keywords (docs/internals/architecture.md, "Where to add").
 * cfg knows no module: the process layer registers them at start (src/process/modules.c). */
#ifndef KEEL_CFG_H
#define KEEL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <keel/arena.h>
#include <keel/cfg-t.h>
#include <keel/list.h>
#include <keel/log-t.h>

/* Adds a module (the process layer calls this for each module at start; a second registration
 * of the same module is ignored). */
void cfg_register(const struct cfg_module *m);

/* All configuration objects are allocated from cfg_arena. */
extern struct arena cfg_arena;
/* Set by the fuzzer and unit tests: no messages on stderr. */
extern bool cfg_silent;

/* Loads a configuration file. Prints every error and warning ("[ALERT] file:line: ...") and
 * returns OK when the configuration is usable. */
int cfg_load_file(const char *path);
/* Same from memory; name is used in messages. */
int cfg_load_string(const char *name, const char *text, size_t len);
/* Frees everything a load allocated and resets the modules' settings. */
void cfg_reset(void);

/* Messages with file:line, counted in the context. */
void cfg_err(struct cfg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cfg_warn(struct cfg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cfg_alert(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The first error printed while loading ("file:line: message"; "" when none). */
const char *cfg_first_alert(void);
void cfg_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ERR with "'KW' expects USAGE" reported when argv has fewer than n arguments after the keyword. */
int cfg_need_args(struct cfg_ctx *c, int argc, char **argv, int n, const char *usage);

#define CFG_MAX_ARGS 64 /* arguments on one line, the keyword included */

/* Splits one line into arguments (quotes, escapes, ${ENV}, comments). Returns argc, or -1 with
 * *err pointing to a static message (also when the arguments, after expansion, do not fit in
 * outcap bytes). Arguments point into out. */
int cfg_tokenize(const char *line, size_t len, char *out, size_t outcap, char **argv, int maxargs,
		 const char **err);

/* Value parsers shared by the keyword tables. */
int cfg_parse_time(const char *s, uint32_t *ms, const char **err);  /* "5s", "100ms", "1m", "10" */
int cfg_parse_size(const char *s, uint32_t *out, const char **err); /* "16k", "1m" */
int cfg_parse_int(const char *s, long min, long max, long *out);
/* Parses "ip:port", "*:port", ":port", "[v6]:port", "ipv4@...", "ipv6@...". port_opt allows a
 * missing port (*no_port set). Resolves host names at load time. */
int cfg_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, bool port_opt,
		   bool *no_port, char **err);
/* Parses "log ..." arguments (after the keyword) into a target list. */
int cfg_parse_log(struct cfg_ctx *c, struct log_targets *lt, int argc, char **argv);
/* The candidate nearest to word (edit distance), for "did you mean" hints; NULL when none is near. */
const char *cfg_nearest(const char *word, const char *const *cands, size_t n);

#endif
