/* Health types: what the configuration asks for (active checks, agent, passive detection,
 * latency awareness, per-try timeouts) and the per-server health state built from it.
 *
 * A server's operational state is derived in one place (health.c) from three inputs: the active
 * check verdict (rise/fall), the passive ejection (live traffic), and the agent's word. Every
 * input keeps the reason of its last change, so the stats page and the logs can say why a
 * server is in or out. */
#ifndef KEEL_CHECK_T_H
#define KEEL_CHECK_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct server;
struct proxy;

/* ---- configuration ---- */

enum chk_kind {
	CHK_KIND_TCP = 0, /* connect only (or the tcp-check rules) */
	CHK_KIND_HTTP,    /* option httpchk */
};

enum chk_expect_type {
	CHK_EXP_STATUS = 0, /* status code list or ranges: "200", "200-399", "200,301" */
	CHK_EXP_RSTATUS,    /* regex on the status code */
	CHK_EXP_STRING,     /* substring of the body (or of the received bytes for tcp-check) */
	CHK_EXP_RSTRING,    /* regex on the body */
};

struct chk_expect {
	enum chk_expect_type type;
	bool negate;        /* "!" before the type */
	char *arg;
	void *re;           /* pcre2_code for the regex types */
};

enum tcpchk_step_type {
	TCPCHK_CONNECT = 0,
	TCPCHK_SEND,
	TCPCHK_EXPECT,
};

struct tcpchk_step {
	enum tcpchk_step_type type;
	char *data;         /* send: bytes to send (escapes decoded); expect: see exp */
	uint32_t len;
	int port;           /* connect: 0 = the check port */
	struct chk_expect exp;
};

#define CHK_MAX_EXPECT 8
#define CHK_MAX_STEPS 16

/* Per backend (inherited from defaults). */
struct chk_proxy_conf {
	enum chk_kind kind;
	char *method, *uri, *version; /* option httpchk / http-check send meth|uri|ver */
	char *hdrs;                   /* "Name: value\r\n"..., from http-check send hdr */
	char *body;                   /* http-check send body */
	struct chk_expect expect[CHK_MAX_EXPECT]; /* all must pass; none: 2xx or 3xx */
	int nexpect;
	struct tcpchk_step steps[CHK_MAX_STEPS];  /* option tcp-check rules */
	int nsteps;
	/* Per-try timeout: "per-try-timeout auto|off|<time> [min <t>] [max <t>]". */
	bool pertry_off;
	uint32_t pertry_fixed_ms;     /* 0: adaptive */
	uint32_t pertry_min_ms, pertry_max_ms;
	/* Retries triggered by per-try timeouts: at most pct % of the requests of the last 10 s,
	 * plus min per window ("retry-budget <pct> [min <n>]"). */
	uint32_t budget_pct, budget_min;
	bool fail_open;               /* all-servers-down fail-open (default) | maintenance */
	uint32_t max_eject_pct;       /* passive ejections leave at least 1 server and this cap */
	/* Latency awareness: "slow-server off | factor <f> floor <t>". */
	bool slow_off;
	uint32_t slow_factor;         /* x the healthy peers' median p90 */
	uint32_t slow_floor_ms;
};

/* Per server (inherited from default-server). */
struct chk_srv_conf {
	bool enabled;                 /* "check" */
	uint32_t inter, fastinter, downinter; /* ms */
	int rise, fall;
	int port;                     /* 0: the server's port */
	bool has_addr;
	struct sockaddr_storage addr; /* "addr": check another address */
	socklen_t addrlen;
	bool agent;                   /* "agent-check" */
	int agent_port;
	uint32_t agent_inter;
	bool has_agent_addr;
	struct sockaddr_storage agent_addr;
	socklen_t agent_addrlen;
	char *agent_send;
	uint32_t slowstart;           /* ms, 0: none */
	int error_limit;              /* consecutive live-traffic errors that eject */
	bool observe_l7;              /* 5xx responses count as errors ("observe layer7") */
	bool observe_off;             /* "observe none": no passive detection for this server */
	uint32_t eject_ms;            /* first ejection length; doubles on each repeat */
};

/* ---- results ---- */

/* Short result codes, shown on the stats page (HAProxy's names where they exist). */
enum chk_code {
	CHK_C_NONE = 0,
	CHK_C_L4OK,    /* connected (tcp check passed) */
	CHK_C_L4CON,   /* connection refused or failed */
	CHK_C_L4TOUT,  /* connect timeout */
	CHK_C_SOCKERR, /* socket error (no fd...) */
	CHK_C_L7OK,    /* expected answer */
	CHK_C_L7TOUT,  /* no complete answer in time */
	CHK_C_L7RSP,   /* invalid or closed answer */
	CHK_C_L7STS,   /* unexpected status */
	CHK_C_L7BODY,  /* body did not match */
	CHK_C_AGENT,   /* agent answer */
	CHK_C_L6RSP,   /* TLS handshake failed (check-ssl, or a server with ssl) */
	CHK_C_L6TOUT,  /* TLS handshake timeout */
};

#define CHK_REASON_LEN 192

struct chk_result {
	bool ok;
	enum chk_code code;
	int status;                   /* HTTP status, 0 when none */
	uint32_t dur_ms;
	char reason[CHK_REASON_LEN];  /* "connection refused", "status 500", "timeout after 2000 ms" */
};

/* What the agent said. */
enum agent_word {
	AGENT_NONE = 0,
	AGENT_UP, AGENT_DOWN, AGENT_READY, AGENT_DRAIN, AGENT_MAINT, AGENT_FAIL, AGENT_STOPPED,
};

struct agent_result {
	bool ok;                      /* got an answer */
	int weight_pct;               /* -1: no weight in the answer */
	enum agent_word word;         /* AGENT_NONE: no state word */
	char reason[CHK_REASON_LEN];  /* the answer (or the failure) for the logs */
};

/* What the check runner should do next for a server (health_check_plan()). */
enum chk_plan {
	CHK_PLAN_IDLE = 0, /* nothing: ask again after the delay */
	CHK_PLAN_CHECK,    /* run the configured check */
	CHK_PLAN_PROBE,    /* an HTTP probe of a server ejected from live traffic */
};

/* Passive events from live traffic. */
enum health_event {
	HEV_CONN_FAIL = 0, /* connect refused / failed / timed out */
	HEV_RESET,         /* closed or reset before a complete response */
	HEV_PROTO,         /* broke HTTP: bytes after its response (a late or unasked answer) */
	HEV_TIMEOUT,       /* no response head within the (per-try or server) timeout */
	HEV_5XX,           /* 5xx response (counted with "observe layer7") */
	HEV_COUNT,
};

/* ---- runtime ---- */

/* Latency histogram: 4 buckets per power of two of microseconds, 64 us to ~1 hour. */
#define LAT_BUCKETS 104
#define LAT_SLOTS 10 /* health ticks kept: the window is LAT_SLOTS x HEALTH_TICK_MS */

struct lat_hist {
	_Atomic uint32_t b[LAT_BUCKETS];
};

/* Per server, shared by the threads. Transitions take the mutex (they are rare); the hot path
 * only reads atomics. */
struct srv_health {
	pthread_mutex_t lock;
	/* active checks */
	int health;                   /* 0..rise+fall-1: up when >= rise (HAProxy's counter) */
	bool chk_up;
	bool checked;                 /* a check result arrived (the first one decides at once) */
	bool probing;                 /* the runner is probing an ejected server */
	struct chk_result last_chk;
	uint64_t last_chk_wall;       /* ms since the epoch */
	/* agent */
	struct agent_result last_agent;
	int agent_weight_pct;         /* 100 unless the agent said otherwise */
	bool agent_down;
	/* passive */
	atomic_int consec_err;        /* consecutive live-traffic errors */
	atomic_uint errs;             /* live-traffic errors, cumulative (error rate) */
	uint32_t err_snap, err_slot[LAT_SLOTS], werrs; /* the tick's window of errs */
	atomic_uint r5xx;             /* 5xx responses, cumulative (relative 5xx outliers) */
	uint32_t r5_snap, r5_slot[LAT_SLOTS], w5xx; /* the tick's window of r5xx */
	int rate5;                    /* % of 5xx in the window, -1: too few responses */
	enum health_event last_ev;
	char ev_reason[CHK_REASON_LEN];
	atomic_bool ejected;          /* read by other servers' ejection decisions */
	_Atomic uint64_t alive_us;    /* monotonic us of its last answer (health_alive_us()) */
	bool cap_logged;              /* "kept despite errors" logged for this streak */
	bool eject_latency;           /* ejected for latency (not errors) */
	uint64_t eject_until;         /* monotonic us; probes start after it */
	uint32_t nejections;
	uint64_t ejections_tot;
	/* latency: per-thread cumulative histograms, windowed at each health tick */
	struct lat_hist *th_hist;     /* one per worker thread */
	uint32_t snap[LAT_BUCKETS];   /* cumulative sum at the last tick */
	uint32_t slot[LAT_SLOTS][LAT_BUCKETS];
	int slot_pos;
	atomic_uint p50_us, p90_us, p99_us; /* over the window; 0 when too few samples */
	atomic_uint p95_us;           /* same window (the dashboard shows p50/p95/p99) */
	/* The per-try estimate's sample: accumulates ticks until it holds LAT_EST_SAMPLES, so a
	 * quiet backend still gets an estimate (over a longer time), then starts again. */
	uint32_t acc[LAT_BUCKETS], acc_n;
	atomic_uint p99_est_us;       /* p99 of the last complete sample, 0: none yet */
	atomic_uint nsamples;
	bool slow;                    /* weight reduced for latency */
	int slow_ticks;
	/* weight */
	int uweight;                  /* the weight set by the configuration or at runtime */
	bool checks_off;              /* "disable health": checks paused, their verdict ignored */
	uint64_t up_since;            /* monotonic us, for slowstart */
	/* state shown to operators */
	char why[CHK_REASON_LEN];     /* why the server is in its current state */
	uint64_t since_wall;          /* ms since the epoch, last state change */
};

struct be_tick;

/* A consistent copy of a server's health for the stats page and the admin socket. */
struct health_view {
	char state[32];               /* "UP", "DOWN", "EJECTED", "UP 2/3", "MAINT"... */
	char why[CHK_REASON_LEN];
	char ev_reason[CHK_REASON_LEN];
	struct chk_result last_chk;
	bool has_chk;
	uint32_t p50_us, p90_us, p95_us, p99_us;
	int consec_err;
	uint64_t ejections_tot;
	int uweight;                  /* the weight asked for (config or runtime) */
	int slowstart_pct;            /* slowstart progress 0..99, -1: no ramp running */
	uint64_t since_wall;          /* ms since the epoch, last state change (0: none) */
};

/* Per backend runtime: retry budget and the adaptive per-try deadline. The tick (worker 0)
 * writes allowance/retries_base from the request counters of the last 10 s; the workers take
 * retries with one atomic increment, only when a per-try timeout fires. */
struct be_health {
	atomic_uint pertry_ms;        /* current adaptive per-try timeout */
	atomic_uint p99_us;           /* the typical server's TTFB p99 over the window */
	_Atomic uint64_t retries;     /* per-try retries taken, cumulative */
	_Atomic uint64_t retries_base;/* retries at the start of the budget window */
	_Atomic uint64_t allowance;   /* retries allowed in the window */
	_Atomic uint64_t budget_denied;
	atomic_bool all_down;         /* no server up: fail open or 503 */
	struct be_tick *tick;         /* the tick's private history */
};

#endif
