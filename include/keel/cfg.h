/* Configuration loading, the ground layer of it: HAProxy's section syntax, the lexer, the typed
 * value parsers, messages with file:line, and the registry through which the modules above
 * declare their sections and keywords (docs/internals/architecture.md, "Adding a keyword").
 * cfg knows no module: the process layer registers them at start (src/process/modules.c). */
#ifndef KEEL_CFG_H
#define KEEL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <keel/arena.h>
#include <keel/list.h>
#include <keel/log-t.h>

struct proxy;

enum cfg_section {
	CFG_S_NONE = 0,
	CFG_S_GLOBAL = 1u << 0,
	CFG_S_DEFAULTS = 1u << 1,
	CFG_S_FRONTEND = 1u << 2,
	CFG_S_BACKEND = 1u << 3,
	CFG_S_LISTEN = 1u << 4,
	CFG_S_IGNORED = 1u << 5, /* a section keel accepts but does not implement (peers, ...) */
	CFG_S_USERLIST = 1u << 6,
};

#define CFG_S_PROXY (CFG_S_DEFAULTS | CFG_S_FRONTEND | CFG_S_BACKEND | CFG_S_LISTEN)
#define CFG_S_FE (CFG_S_DEFAULTS | CFG_S_FRONTEND | CFG_S_LISTEN)
#define CFG_S_BE (CFG_S_DEFAULTS | CFG_S_BACKEND | CFG_S_LISTEN)
#define CFG_S_FE_ONLY (CFG_S_FRONTEND | CFG_S_LISTEN)
#define CFG_S_BE_ONLY (CFG_S_BACKEND | CFG_S_LISTEN)
#define CFG_S_NODEF (CFG_S_FRONTEND | CFG_S_BACKEND | CFG_S_LISTEN)

#define CFG_MAX_ARGS 64

/* Parsing context, passed to every keyword handler. */
struct cfg_ctx {
	const char *file;
	int line;
	enum cfg_section sect;
	struct proxy *cur;      /* proxy being parsed (the defaults template in a defaults section) */
	struct proxy *defaults; /* what new proxies inherit */
	int nerr, nwarn;
	char *msg;              /* set: the first error goes here (not stderr), warnings are dropped */
	size_t msgcap;
};

/* Keyword flags. */
enum cfg_kw_flags {
	KW_UNIMPL = 1u << 0, /* accepted with a warning: keel does not implement it yet */
	KW_IGNORE = 1u << 1, /* accepted silently: has no meaning for keel (e.g. quiet) */
};

struct cfg_kw {
	const char *name;
	unsigned sections;   /* where the keyword is allowed */
	int (*parse)(struct cfg_ctx *c, int argc, char **argv);
	unsigned flags;
	const char *why;     /* for KW_UNIMPL: which issue or what to use instead */
};

#define CFG_UNIMPL(name, sects, why) {name, sects, NULL, KW_UNIMPL, why}
#define CFG_KW_END {NULL, 0, NULL, 0, NULL}

/* A section a module opens ("frontend NAME"): open() sets c->sect and c->cur from the section
 * line, reporting errors through c. */
struct cfg_sect {
	const char *name;
	void (*open)(struct cfg_ctx *c, int argc, char **argv);
};

/* What a module brings to the configuration. Every hook may be NULL. Modules are registered once,
 * before the first load; hooks run in registration order. */
struct cfg_module {
	const char *name;
	const struct cfg_kw *keywords;    /* terminated by a row with a NULL name */
	const struct cfg_sect *sections;  /* same */
	/* Before the first line of a load: the module's settings back to their defaults. */
	void (*begin)(struct cfg_ctx *c);
	/* After the last line, before the error count is final ("nothing to do"). */
	void (*parsed)(struct cfg_ctx *c);
	/* When the file parsed without error: validation and derived defaults, in order. */
	void (*check)(struct cfg_ctx *c);
	/* cfg_reset(): forget what the loads built (their memory is in cfg_arena). */
	void (*reset)(void);
};

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
