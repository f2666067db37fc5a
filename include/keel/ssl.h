/* TLS with OpenSSL (src/ssl): the transport under client connections of "bind ... ssl" lines
 * (xprt-ssl.c), their certificates and SNI (ssl-cert.c), the keywords (ssl-kw.c) and what the
 * samples read of a TLS connection. docs/configuration.md, "TLS". */
#ifndef KEEL_SSL_H
#define KEEL_SSL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/cfg-t.h>
#include <keel/conn-t.h>
#include <keel/proxy-t.h>
#include <keel/ssl-t.h>

struct stream;
struct ssl_ctx_st;

/* The TLS transport: xprt_ssl for client connections (its init() takes the bind line's
 * struct ssl_bind), xprt_ssl_srv for connections to servers (struct ssl_server). */
extern const struct xprt_ops xprt_ssl;
extern const struct xprt_ops xprt_ssl_srv;

/* The global TLS keywords (ssl-default-*, ssl-server-verify, crt-base, ca-base); the TLS
 * options of bind lines (ssl_hooks) and of server lines (ssl_srv_hooks). */
extern const struct cfg_module ssl_module;
extern const struct proxy_hooks ssl_hooks;
extern const struct proxy_hooks ssl_srv_hooks;

/* The name to ask srv for on a connection for s's request (its "sni" expression), into buf
 * (len bytes, NUL-terminated, a Host header's port left out): its length, or -1 for none. */
int ssl_srv_sni(struct stream *s, const struct server *srv, char *buf, size_t len);
/* Asks for name sni (NULL: none) on c, a new connection to a TLS server, and checks that its
 * certificate carries it (or the server's verifyhost) when certificates are verified. */
void ssl_srv_set_name(struct conn *c, const char *sni);

/* Loads b's certificates and builds its contexts (once for every address of its bind line).
 * Before chroot and the change of user: keys are read here only. OK, or ERR with *err set. */
int ssl_bind_build(struct ssl_bind *b, const struct ssl_defaults *d, char **err);
/* path under base when it is relative and base is set (crt-base, ca-base), in cfg_arena. */
char *ssl_base_path(const char *base, const char *path);
/* Frees what ssl_bind_build() built (cfg_reset()). */
void ssl_bind_free(struct ssl_bind *b);
/* The certificate context for the name a client asked for (SNI, any case; NULL: none given):
 * an exact name, else a wildcard one label up, else the default one (NULL with strict-sni). */
struct ssl_cert_ctx *ssl_bind_select(const struct ssl_bind *b, const char *name);

/* What a connection's TLS says, for the samples (ssl_fc_*, ssl_c_*) and the logs. Each is safe
 * on a connection of another transport (false, NULL, -1). */
bool ssl_conn_used(const struct conn *c);
const char *ssl_conn_sni(const struct conn *c);
const char *ssl_conn_protocol(const struct conn *c);
const char *ssl_conn_cipher(const struct conn *c);
/* The ALPN protocol chosen, into *len bytes; NULL when none. */
const char *ssl_conn_alpn(const struct conn *c, unsigned *len);
bool ssl_conn_client_cert(const struct conn *c);
/* The client certificate's check result (X509_V_OK 0); -1 without TLS. */
long ssl_conn_verify(const struct conn *c);
/* The client certificate's subject as "/C=../CN=..", into buf (len bytes, NUL-terminated): its
 * length, or -1 when there is none. */
int ssl_conn_client_dn(const struct conn *c, char *buf, size_t len);

/* Certificates at runtime. ssl_cert_set() checks text (PEM: certificate, chain, key) for the
 * certificate loaded from path and keeps it waiting; ssl_cert_commit() swaps it in for new
 * connections (abort: drops it). OK, or ERR with *err. The admin thread calls them. */
int ssl_cert_set(const char *path, const char *text, size_t len, char **err);
int ssl_cert_commit(const char *path, bool abort, char **err);
/* Appends what each loaded certificate (or the one from path) serves, for "show ssl cert". */
struct sbuf;
void ssl_cert_show(const char *path, struct sbuf *o);
/* Opens the folder of every certificate file (before chroot), so that ssl_watch() sees them. */
int ssl_watch_prepare(char **err);
/* Loads again each certificate file that changed on disk since it was last loaded (called
 * about once a second by the main thread); a file that does not load is reported, the
 * certificate it should have replaced keeps serving. */
void ssl_watch(void);
/* Frees the runtime side of the loaded certificates (cfg_reset()). */
void ssl_cert_reset(void);

/* Splits one crt-list line (comments already cut): "PATH [SNI-FILTER...]", "!name" filters
 * skipped; *path NULL for an empty line. filters point into line (at most max). OK, or ERR with
 * *err (options in brackets, too many names). Exposed for the fuzzer. */
int ssl_crtlist_split(char *line, char **path, const char **filters, int max, int *n, char **err);

/* ---- shared within src/ssl ---- */

/* The last OpenSSL error as text (the queue cleared), for messages. */
const char *ssl_errstr(void);
/* A protocol option at argv[*i] (ssl-min-ver, no-tlsv11, ciphers...), the forms bind lines,
 * server lines and the ssl-default-* lines share: 1 consumed, 0 not one, ERR on error. */
int ssl_opts_param(struct cfg_ctx *c, struct ssl_opts *o, int argc, char **argv, int *i);
/* Applies o, what it leaves unset from g, then keel's defaults, to ctx. OK or ERR (*err). */
int ssl_ctx_apply_opts(struct ssl_ctx_st *ctx, const struct ssl_opts *o, const struct ssl_opts *g,
		       char **err);
/* Loads a PEM certificate, its chain and its key (from path or path.key) into ctx. */
int ssl_ctx_use_pem(struct ssl_ctx_st *ctx, const char *path, char **err);
/* "h2,http/1.1" in ALPN's wire format, in cfg_arena. keel speaks HTTP/1.x only: other
 * protocols are left out with a warning, so that no peer is told to speak one keel cannot. */
int ssl_parse_alpn(struct cfg_ctx *c, const char *list, uint8_t **out, unsigned *len);
/* The global crt-base and ca-base (NULL when unset). */
const char *ssl_crt_base(void);
const char *ssl_ca_base(void);
/* The global server lines' keywords (ssl-server-verify, ssl-default-server-*); their reset. */
int ssl_srv_global(struct cfg_ctx *c, int argc, char **argv);
void ssl_srv_reset(void);

/* Session tickets (ssl-tickets.c; docs/configuration.md, "Session resumption";
 * docs/internals/reload.md, "TLS ticket keys"). Keys are never logged and are wiped
 * (OPENSSL_cleanse) wherever keel drops a copy.
 * ssl_tickets_ctx(): ctx encrypts its tickets with keys (a tls-ticket-keys file), or with the
 * process's ring when keys is NULL; at configuration load. OK, or ERR with *err set.
 * ssl_tickets_load(): reads a tls-ticket-keys file (HAProxy's format); ssl_tickets_free() wipes
 * and frees it. */
int ssl_tickets_ctx(struct ssl_ctx_st *ctx, struct ssl_ticket_keys *keys, char **err);
int ssl_tickets_load(const char *path, struct ssl_ticket_keys **out, char **err);
void ssl_tickets_free(struct ssl_ticket_keys *keys);
/* The global tune.ssl.ticket-rotate keyword (keel's own), and its default back (at each load). */
int ssl_tickets_kw_rotate(struct cfg_ctx *c, int argc, char **argv);
void ssl_tickets_reset_settings(void);
/* The process's ring, main thread only. ssl_tickets_start(): before the workers start, from the
 * previous process's keys when fd >= 0 (what ssl_tickets_handover_fd() gave it at a reload;
 * closed here), else from new random keys; unreadable keys are replaced by new ones with a
 * warning (clients then do one full handshake). ERR only when no random bytes can be had.
 * ssl_tickets_tick(): rotates when due (call it every 100 ms or so). ssl_tickets_stop(): wipes
 * the ring (at exit). */
int ssl_tickets_start(int fd, char **err);
void ssl_tickets_tick(void);
void ssl_tickets_stop(void);
/* For a reload (any thread, one at a time): the read end of a pipe (close-on-exec) holding the
 * ring for the new process, its write end already closed; -1 with *err set on failure. */
int ssl_tickets_handover_fd(char **err);

#endif
