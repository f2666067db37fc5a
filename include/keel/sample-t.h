/* Sample types: values fetched from a request (its source address, path, a header...) for ACLs,
 * balancing keys, header rewrites and log lines. */
#ifndef KEEL_SAMPLE_T_H
#define KEEL_SAMPLE_T_H

#include <stdint.h>

enum sample_fetch {
	SMP_SRC,        /* client address */
	SMP_SRC_PORT,
	SMP_DST,        /* local address the client connected to */
	SMP_DST_PORT,
	SMP_METHOD,
	SMP_PATH,       /* path without the query */
	SMP_URL,        /* the request target as received */
	SMP_QUERY,      /* after '?', without it */
	SMP_HDR,        /* a request header (arg: name), last occurrence for lists */
	SMP_RES_HDR,    /* a response header (arg: name) */
	SMP_STATUS,     /* response status */
	SMP_BE_NAME,
	SMP_FE_NAME,
	SMP_SRV_NAME,
	SMP_REQ_VER,    /* "1.1" */
	SMP_ALWAYS_TRUE,
	SMP_ALWAYS_FALSE,
	SMP_URL_PARAM,  /* value of a query parameter (arg: name) */
	SMP_COOKIE,     /* value of a request cookie (arg: name) */
	SMP_RES_COOKIE, /* value of a cookie the response sets (arg: name): first Set-Cookie */
	SMP_STR,        /* str(text): the text itself */
	SMP_SSL_FC,     /* bool: the client connection is TLS */
	SMP_SSL_FC_SNI, /* the name the client asked for (SNI) */
	SMP_SSL_FC_PROTOCOL, /* "TLSv1.3" */
	SMP_SSL_FC_CIPHER,   /* "TLS_AES_256_GCM_SHA384" */
	SMP_SSL_FC_ALPN,     /* the protocol chosen by ALPN */
	SMP_SSL_C_USED,      /* bool: the client presented a certificate */
	SMP_SSL_C_VERIFY,    /* its check result: 0 when valid (X509_V_OK) */
	SMP_SSL_C_S_DN,      /* its subject, "/C=../CN=.." */
};

/* A fetch plus its argument, e.g. hdr(host). */
struct sample_expr {
	enum sample_fetch fetch;
	char *arg;      /* header / parameter name, or NULL */
	uint32_t arglen;
	int occ;        /* hdr(name,occ): which occurrence (0 = last, like HAProxy for single values) */
};

/* A value: either a string view or an address. */
struct sample {
	const char *str;
	uint32_t len;
	int is_ip;      /* str/len unused; ip holds a sockaddr-style address */
	int family;
	uint8_t ip[16];
	int64_t num;
};

/* Compiled log-format string: a list of literal or variable nodes. */
enum lf_kind {
	LF_LIT,
	LF_SAMPLE,       /* %[fetch] */
	LF_CLIENT_IP,    /* %ci */
	LF_CLIENT_PORT,  /* %cp */
	LF_FRONT_IP,     /* %fi */
	LF_FRONT_PORT,   /* %fp */
	LF_BACK_SRC_IP,  /* %bi */
	LF_BACK_SRC_PORT, /* %bp */
	LF_SRV_IP,       /* %si */
	LF_SRV_PORT,     /* %sp */
	LF_DATE,         /* %t: accept date */
	LF_DATE_TR,      /* %tr: request date */
	LF_TS,           /* %Ts: accept date as a Unix timestamp */
	LF_MS,           /* %ms: milliseconds of the accept date */
	LF_FRONTEND,     /* %f */
	LF_FRONTEND_XPRT, /* %ft: the frontend, with '~' after it on a TLS connection */
	LF_BACKEND,      /* %b */
	LF_SERVER,       /* %s */
	LF_STATUS,       /* %ST */
	LF_BYTES,        /* %B: bytes sent to the client */
	LF_BYTES_UP,     /* %U: bytes received from the client */
	LF_TQ,           /* %Tq / %TR: time to receive the request head */
	LF_TW,           /* %Tw: time in queue */
	LF_TC,           /* %Tc: time to connect */
	LF_TR,           /* %Tr: server response time (head) */
	LF_TA,           /* %Ta: active time of the request */
	LF_TT,           /* %Tt: total session time */
	LF_TH,           /* %Th: handshake time (0: no TLS) */
	LF_TI,           /* %Ti: idle time before the request */
	LF_REQ_LINE,     /* %r */
	LF_METHOD,       /* %HM */
	LF_URI,          /* %HU */
	LF_PATH,         /* %HP */
	LF_VERSION,      /* %HV */
	LF_TERM,         /* %ts: termination state */
	LF_TERM_COOKIE,  /* %tsc */
	LF_CAP_REQ,      /* %hr */
	LF_CAP_RES,      /* %hs */
	LF_CONN_ACT,     /* %ac */
	LF_CONN_FE,      /* %fc */
	LF_CONN_BE,      /* %bc */
	LF_CONN_SRV,     /* %sc */
	LF_RETRIES,      /* %rc */
	LF_QUEUE_SRV,    /* %sq */
	LF_QUEUE_BE,     /* %bq */
	LF_PID,          /* %pid */
	LF_REQ_COUNTER,  /* %rt */
	LF_HOSTNAME,     /* %H */
	LF_UNIQUE_ID,    /* %ID: not implemented, prints "-" */
	LF_SSL_CIPHER,   /* %sslc: the client connection's TLS cipher ("-" without TLS) */
	LF_SSL_VERSION,  /* %sslv: its TLS version */
};

struct lf_node {
	enum lf_kind kind;
	int quote;       /* +Q: quote the value */
	char *lit;       /* LF_LIT */
	uint32_t litlen;
	struct sample_expr smp; /* LF_SAMPLE */
};

struct logformat {
	char *src;       /* the source string, for diagnostics */
	struct lf_node *nodes;
	int n;
	int json;        /* render as a JSON object */
	int empty_missing; /* a sample that finds nothing renders as nothing (header values, as
			    * HAProxy), not as "-" (log lines) */
};

#endif
