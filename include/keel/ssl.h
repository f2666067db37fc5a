/* TLS with OpenSSL (src/ssl): the transport under client connections of "bind ... ssl" lines
 * (xprt-ssl.c), their certificates and SNI (ssl-cert.c), the keywords (ssl-kw.c) and what the
 * samples read of a TLS connection. docs/configuration.md, "TLS". */
#ifndef KEEL_SSL_H
#define KEEL_SSL_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/cfg-t.h>
#include <keel/conn-t.h>
#include <keel/proxy-t.h>
#include <keel/ssl-t.h>

/* The TLS transport. Its init() takes the struct ssl_bind of the bind line. */
extern const struct xprt_ops xprt_ssl;

/* The global ssl-default-bind-* keywords and the TLS bind options. */
extern const struct cfg_module ssl_module;
extern const struct proxy_hooks ssl_hooks;

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

#endif
