/* Proxy, server and listener types. A proxy is a frontend, a backend or both (listen). Fields under
 * "config" are set while loading and never change afterwards; fields under "runtime" are shared by
 * the worker threads and only touched through atomics or per-thread slots. */
#ifndef KEEL_PROXY_T_H
#define KEEL_PROXY_T_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <keel/acl-t.h>
#include <keel/check-t.h>
#include <keel/cookie-t.h>
#include <keel/drain-t.h>
#include <keel/global-t.h>
#include <keel/http-t.h>
#include <keel/list.h>
#include <keel/log-t.h>
#include <keel/sample-t.h>
#include <keel/stick-t.h>

struct cfg_ctx;
struct chash;
struct http_service;
struct mux_ops;
struct xprt_ops;

/* Durations in milliseconds; 0 means "unset" until defaults are applied at validation time. */
struct timeouts {
	uint32_t connect, client, server, http_request, http_keep_alive, queue, tunnel;
	uint32_t client_fin, server_fin, check;
};

/* Counters kept per thread (one writer each, so updates need no locked instruction) and summed
 * when read. Relaxed atomics keep the cross-thread reads free of undefined behaviour. */
struct counters {
	_Atomic uint64_t conn_tot;     /* connections (frontend) or connection attempts (server) */
	_Atomic uint64_t req_tot;      /* HTTP requests */
	_Atomic uint64_t rsp[6];       /* responses by class: other, 1xx..5xx */
	_Atomic uint64_t bytes_in;     /* from the clients */
	_Atomic uint64_t bytes_out;    /* to the clients */
	_Atomic uint64_t denied_req;
	_Atomic uint64_t failed_req;   /* invalid requests */
	_Atomic uint64_t failed_conn;  /* server connection errors */
	_Atomic uint64_t failed_rsp;   /* invalid or aborted responses */
	_Atomic uint64_t retries;
	_Atomic uint64_t redispatches;
	_Atomic uint64_t timeouts;     /* server response / connect timeouts */
	_Atomic uint64_t queued_tot;
	_Atomic uint64_t queue_timeouts;
	_Atomic uint64_t cli_aborts;
	_Atomic uint64_t srv_aborts;
	_Atomic uint64_t sticky_moves; /* server: persistence-cookie users sent elsewhere */
	_Atomic uint64_t reclaim_idle; /* frontend: idle keep-alive connections closed at maxconn */
	_Atomic uint64_t reclaim_heads; /* frontend: incomplete request heads closed at maxconn */
} __attribute__((aligned(64)));

#define CTR_ADD(c, v)                                                                              \
	atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (v),        \
			      memory_order_relaxed)
#define CTR_INC(c) CTR_ADD(c, 1)

enum srv_admin {
	SRV_ADMIN_READY = 0,
	SRV_ADMIN_DRAIN, /* no new users, existing ones finish */
	SRV_ADMIN_MAINT, /* no traffic */
};

enum srv_oper {
	SRV_OPER_UP = 0,
	SRV_OPER_DOWN,
};

enum lb_algo {
	LB_ROUNDROBIN = 0,
	LB_STATIC_RR,
	LB_LEASTCONN,
	LB_RANDOM,
	LB_FIRST,
	LB_SOURCE,
	LB_URI,
	LB_HDR,
	LB_URL_PARAM,
};

enum hash_type {
	HASH_MAP = 0,
	HASH_CONSISTENT,
};

/* A server's address as published at runtime ("set server B/S addr"): immutable once published
 * through server.paddr; replaced ones are kept until exit (docs/internals/dynamic-servers.md). */
struct srv_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned gen;            /* bumped on each change: idle connections of an older gen are closed */
	bool port_from_client;   /* no port: the port the client connected to */
	char str[64];            /* "IP:PORT" or "IP" */
};

struct server {
	/* config */
	char *name;
	int id;                  /* position in the backend, from 0 */
	struct proxy *be;
	char *addr_str;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool port_from_client;   /* no port given: use the port the client connected to */
	int weight;              /* configured weight, 0..256 */
	int maxconn;             /* 0: unlimited */
	int maxqueue;            /* 0: unlimited */
	bool backup;
	bool disabled;           /* starts in maintenance */
	const struct xprt_ops *xprt; /* transport to the server: raw TCP or TLS ("ssl") */
	void *xprt_conf;             /* what the transport's init() takes (TLS: struct ssl_server) */
	struct chk_srv_conf chk; /* checks, agent, passive detection */
	char *cookie;
	uint32_t pool_purge_ms;  /* idle server connections are closed after this */
	uint32_t drain_idle_ms;  /* "drain-idle": in drain, a sticky user idle this long is gone (0: kept) */
	uint32_t drain_deadline_ms; /* "drain-deadline": in drain this long, all sticky users move */
	const char *file;
	int line;
	/* runtime */
	atomic_int admin;        /* enum srv_admin */
	atomic_int oper;         /* enum srv_oper */
	atomic_int cur_sess;     /* requests holding a slot (being served) */
	atomic_int max_sess;     /* highest cur_sess seen */
	atomic_int nbpend;       /* requests queued for this server specifically */
	atomic_int eweight;      /* effective weight used by the balancers (health.c sets it) */
	_Atomic uint8_t expect;  /* enum srv_expect */
	_Atomic uint64_t no_reuse_until; /* monotonic us: its connections are not reused before
				  * then (it sent bytes after a response: backend_stray_bytes()) */
	struct srv_health *hl;   /* health state, see check-t.h */
	struct counters *ctr;    /* one per thread */
	struct srv_drain drain;  /* admin drain: its start, limits and cookie users (drain-t.h) */
	/* dynamic servers (src/proxy/server.c) */
	_Atomic(struct srv_addr *) paddr; /* NULL: the configured addr/addrlen (gen 0) */
	atomic_bool deleted;     /* "del server": hidden, never picked, checks stopped; slot not reused */
	bool dynamic;            /* added by "add server" */
	char **dyn_argv;         /* its address and options as given, for the state file */
	int dyn_argc;
};

enum proxy_cap {
	PR_CAP_FE = 1,
	PR_CAP_BE = 2,
};

/* Proxy options (option X / no option X). */
enum proxy_opt {
	PO_HTTPLOG = 1u << 0,
	PO_DONTLOGNULL = 1u << 1,
	PO_FORWARDFOR = 1u << 2,
	PO_HTTP_SERVER_CLOSE = 1u << 3,
	PO_HTTPCLOSE = 1u << 4,
	PO_REDISPATCH = 1u << 5,
	PO_HTTPCHK = 1u << 6,
	PO_PERSIST = 1u << 7,
	PO_ALLBACKUPS = 1u << 8,
	PO_ORIGINALTO = 1u << 9,
	PO_LOGJSON = 1u << 10,
	PO_NOLINGER = 1u << 11,
	PO_TCPLOG = 1u << 12,
	PO_DONTLOG_NORMAL = 1u << 13,
	PO_LOG_SEPARATE_ERRORS = 1u << 14,
	PO_PREFER_LAST_SERVER = 1u << 15,
	PO_TCPCHK = 1u << 16,
	PO_SPLICE_RSP = 1u << 17,  /* option splice-response: splice(2) large response bodies */
	PO_SPLICE_AUTO = 1u << 18, /* option splice-auto: the same in keel (responses only) */
	PO_EXPECT_CONTINUE = 1u << 19, /* option http-expect-continue (default): a request body
					* goes to a server once it answered 100 (stream.c) */
};

/* What a server does with "Expect: 100-continue", learnt from its answers (stream.c). */
enum srv_expect {
	SRV_EXPECT_UNKNOWN,
	SRV_EXPECT_100,  /* it answered 100: a request body waits for its 100 */
	SRV_EXPECT_NONE, /* it answered without a 100, or 417: bodies go at once */
};

struct bind_conf {
	struct list list;
	char *str;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *name;
	const char *file;
	int line;
	const struct xprt_ops *xprt; /* the clients' transport: raw TCP or TLS ("ssl") */
	void *xprt_conf;             /* what the transport's init() takes (TLS: struct ssl_bind) */
	const struct mux_ops *mux;   /* what their bytes carry: HTTP/1 (HTTP/2 later) */
	int fds[KEEL_MAX_THREADS]; /* one SO_REUSEPORT socket per worker thread */
};

enum http_rule_action {
	HRA_SET_HDR,
	HRA_ADD_HDR,
	HRA_DEL_HDR,
	HRA_DENY,
	HRA_ALLOW,
	HRA_REDIRECT,
	HRA_RETURN,
	HRA_SET_PATH,
	HRA_AUTH,
	HRA_USE_SERVICE, /* use-service NAME: a registered service (the metrics page) answers */
};

struct http_rule {
	struct list list;
	enum http_rule_action action;
	const struct http_service *svc; /* use-service: what answers (include/keel/service.h) */
	char *name;               /* header name */
	uint32_t namelen;
	struct logformat value;   /* header value / path / redirect location */
	int status;               /* deny / return / redirect status */
	char *body;               /* return: content */
	char *content_type;
	int redir_kind;           /* 0 location, 1 prefix, 2 scheme */
	char *realm;
	struct acl_cond *cond;
	const char *file;
	int line;
};

struct switching_rule {
	struct list list;
	char *be_name;
	struct proxy *be;
	struct acl_cond *cond;
	const char *file;
	int line;
};

struct stats_user {
	char *user;
	char *pass;
};

struct stats_conf {
	bool enabled;
	char *uri;               /* prefix that selects the stats page */
	char *prom_uri;          /* "stats prometheus-uri": exact path of the metrics page */
	char *realm;
	struct stats_user *users;
	int nusers;
	uint32_t refresh_s;
	bool hide_version;
	struct acl_cond *admin;  /* stats admin if ...: Ready/Drain/Maint buttons (stats-admin.c) */
	bool admin_set;
};

struct capture {
	char *name;
	uint32_t namelen;
	uint32_t len;
};

struct proxy {
	/* config */
	char *name;
	unsigned cap;            /* enum proxy_cap */
	int id;
	const char *file;
	int line;
	bool disabled;
	uint32_t opts;           /* enum proxy_opt */
	uint32_t opts_set;       /* options explicitly set or unset here (for defaults inheritance) */
	struct timeouts to;
	int retries;
	int maxconn;             /* frontend: concurrent client connections */
	enum lb_algo lb;
	enum hash_type hash_type;
	char *lb_arg;            /* hdr(NAME) / url_param NAME */
	uint32_t lb_arglen;
	bool uri_whole;          /* balance uri whole */
	struct list binds;       /* struct bind_conf */
	struct server **srv;     /* srv_cap slots; the pointer never changes after start-up */
	atomic_int nsrv;         /* published servers: grows only ("add server" stores it with release) */
	int srv_cap;             /* room for servers: configured + tune.spare-servers */
	struct server defsrv;    /* default-server parameters */
	/* The "sni" expression of its TLS servers when it reads the request (they share it):
	 * evaluated during the request's analysis, while the head is at hand (txn.sni). */
	const struct sample_expr *srv_sni;
	struct list acls;        /* struct acl */
	struct list switching;   /* struct switching_rule (use_backend) */
	char *defbe_name;
	struct proxy *defbe;
	struct list req_rules;   /* http-request */
	struct list rsp_rules;   /* http-response */
	struct stats_conf stats;
	char *monitor_uri;
	struct errmsg errmsg[KEEL_ERR_CODES];
	struct log_targets logs;
	bool log_global;
	struct logformat logfmt;
	bool logfmt_set;
	struct capture req_cap[8];
	int nreq_cap;
	struct capture rsp_cap[8];
	int nrsp_cap;
	/* option forwardfor */
	char *fwdfor_hdr;
	uint32_t fwdfor_hdrlen;
	bool fwdfor_ifnone;
	bool fwdfor_except_set;
	int fwdfor_except_family;
	uint8_t fwdfor_except[16];
	uint8_t fwdfor_except_prefix;
	struct chk_proxy_conf chk; /* health checks, per-try timeout, retry budget */
	struct cookie_conf ck;   /* "cookie": persistence (src/sticky/cookie.c) */
	struct stick_conf stk;   /* "stick-table", "stick": stick tables (src/sticky/stick.c) */
	/* runtime */
	uint8_t svc_mask;        /* frontend: services answered at their own URIs (service.h) */
	atomic_int feconn;       /* frontend: current client connections */
	atomic_int rc_asked;     /* frontend: connections to close at its maxconn for a worker that
				  * has none to close (session_reclaim_ask()) */
	atomic_int beconn;       /* backend: requests being served */
	atomic_int nbpend;       /* backend: requests queued, all threads */
	atomic_uint srv_gen;     /* bumped on any change that affects balancing */
	_Atomic(struct chash *) chash; /* consistent-hashing ring (hash-type consistent); replaced
				  * rings are kept until exit */
	struct be_health *hl;
	atomic_uint rr_seq;      /* round-robin position, shared by the threads */
	struct counters *ctr;    /* one per thread */
	struct list list;        /* in keel_proxies */
};

/* A runtime module's part in the proxy sections. Every hook may be NULL; hooks run in
 * registration order. */
struct proxy_hooks {
	/* Sets the module's defaults in a new defaults section (p is zeroed). */
	void (*init_defaults)(struct proxy *p);
	/* A server option at argv[*i]: 1 when consumed (*i advanced past its value), 0 when not the
	 * module's, ERR (reported through c) on error. */
	int (*server_param)(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i);
	/* Validates a backend once the whole file is read (its server array has its final room);
	 * resolves what was left unset. OK or ERR (reported). */
	int (*check_backend)(struct cfg_ctx *c, struct proxy *p);
	/* The same for one server added at runtime ("add server"). */
	int (*check_server)(struct cfg_ctx *c, struct proxy *p, struct server *s);
	/* A bind option at argv[*i], into b, the template every address of the line copies: as
	 * server_param. */
	int (*bind_param)(struct cfg_ctx *c, struct bind_conf *b, int argc, char **argv, int *i);
	/* Validates a frontend's bind once the whole file is read. OK or ERR (reported). */
	int (*check_bind)(struct cfg_ctx *c, struct proxy *p, struct bind_conf *b);
};

#endif
