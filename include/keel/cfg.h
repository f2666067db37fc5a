/* Configuration loading: HAProxy's section syntax, table-driven keywords. */
#ifndef KEEL_CFG_H
#define KEEL_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/arena.h>
#include <keel/list.h>
#include <keel/proxy-t.h>

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

/* The loaded configuration. All config objects are allocated from cfg_arena. */
extern struct global global;
extern struct list keel_proxies;
extern struct arena cfg_arena;
/* Set by the fuzzer and unit tests: no messages on stderr. */
extern bool cfg_silent;

/* Loads a configuration file. Prints every error and warning ("[ALERT] file:line: ...") and
 * returns OK when the configuration is usable. */
int cfg_load_file(const char *path);
/* Same from memory; name is used in messages. */
int cfg_load_string(const char *name, const char *text, size_t len);
/* Frees everything a load allocated and resets the globals. */
void cfg_reset(void);

/* Messages with file:line, counted in the context. */
void cfg_err(struct cfg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cfg_warn(struct cfg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cfg_alert(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The first error printed while loading ("file:line: message"; "" when none). */
const char *cfg_first_alert(void);
void cfg_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/* The keyword tables (one per module) and the lookup used by the nearest-keyword hint. */
extern const struct cfg_kw cfg_kw_global[];
extern const struct cfg_kw cfg_kw_proxy[];
const char *cfg_nearest(const char *word, const char *const *cands, size_t n);

void cfg_global_defaults(void);

/* Health keywords. kw-check.c: active checks and agent ("check", "inter", "option httpchk",
 * "http-check", "tcp-check"...); kw-health.c: passive detection, per-try timeouts, retry budget,
 * slowstart, all-servers-down. The server-parameter hooks return 1 when they consumed
 * argv[*i] (and advance *i past its value), 0 when the word is not theirs, ERR on error. */
int kw_check_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i);
int kw_health_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i);
void kw_check_defaults(struct proxy *p);
void kw_health_defaults(struct proxy *p);
/* "option httpchk ...", "option tcp-check": argv[i] is the first word after the option name. */
int kw_opt_httpchk(struct cfg_ctx *c, int argc, char **argv, int i);
int kw_opt_tcpchk(struct cfg_ctx *c, int argc, char **argv, int i);
int kw_http_check(struct cfg_ctx *c, int argc, char **argv);
int kw_tcp_check(struct cfg_ctx *c, int argc, char **argv);
int kw_pertry_timeout(struct cfg_ctx *c, int argc, char **argv);
int kw_retry_budget(struct cfg_ctx *c, int argc, char **argv);
int kw_all_servers_down(struct cfg_ctx *c, int argc, char **argv);
int kw_max_eject_percent(struct cfg_ctx *c, int argc, char **argv);
int kw_slow_server(struct cfg_ctx *c, int argc, char **argv);
/* Validation of a backend's health settings (after defaults are applied). */
int chk_validate(struct cfg_ctx *c, struct proxy *p);
/* One server's check settings, as chk_validate() does them ("add server"). */
int chk_validate_server(struct cfg_ctx *c, struct proxy *p, struct server *s);
/* Parses "server NAME ADDR [options]" (argv[0] is "server") into a new server of p that is not
 * yet in p->srv (id = the next slot). NULL with the error reported through c. */
struct server *cfg_server_parse(struct cfg_ctx *c, struct proxy *p, int argc, char **argv);
int health_validate(struct cfg_ctx *c, struct proxy *p);
/* Parses "log ..." arguments (after the keyword) into a target list. */
int cfg_parse_log(struct cfg_ctx *c, struct log_targets *lt, int argc, char **argv);

/* Proxy construction helpers (kw-proxy.c). */
struct proxy *cfg_new_proxy(struct cfg_ctx *c, const char *name, unsigned cap);
void cfg_init_defaults(struct proxy *p);
/* Final checks and default values after the whole file is read (validate.c). */
int cfg_validate(void);
struct proxy *proxy_by_name(const char *name, unsigned cap);

#endif
