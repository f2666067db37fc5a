/* Configuration types (include/keel/cfg.h): sections, parsing context, keywords, modules. */
#ifndef KEEL_CFG_T_H
#define KEEL_CFG_T_H

#include <stddef.h>

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
	CFG_S_ACME = 1u << 7,     /* "acme NAME" (src/ssl/acme-kw.c) */
};

#define CFG_S_PROXY (CFG_S_DEFAULTS | CFG_S_FRONTEND | CFG_S_BACKEND | CFG_S_LISTEN)
#define CFG_S_FE (CFG_S_DEFAULTS | CFG_S_FRONTEND | CFG_S_LISTEN)
#define CFG_S_BE (CFG_S_DEFAULTS | CFG_S_BACKEND | CFG_S_LISTEN)
#define CFG_S_FE_ONLY (CFG_S_FRONTEND | CFG_S_LISTEN)
#define CFG_S_BE_ONLY (CFG_S_BACKEND | CFG_S_LISTEN)
#define CFG_S_NODEF (CFG_S_FRONTEND | CFG_S_BACKEND | CFG_S_LISTEN)

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

#endif
