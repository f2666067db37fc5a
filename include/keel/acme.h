/* ACME (RFC 8555) in src/ssl: keel obtains and renews the certificates of "crt FILE acme NAME
 * domains LIST" itself. The "acme" sections and their keywords (acme-kw.c); the client, a thread
 * of its own that talks to the authority with blocking sockets and writes each certificate file
 * (certificate, chain and key, 0600) with a rename, which the certificate watcher then loads;
 * the HTTP-01 answers, served by every HTTP frontend (acme.c). docs/configuration.md, "ACME". */
#ifndef KEEL_ACME_H
#define KEEL_ACME_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/acme-t.h>
#include <keel/cfg-t.h>
#include <keel/proxy-t.h>
#include <keel/service-t.h>

/* The "acme" section and the httpclient.ssl.* global keywords; the bind options "acme" and
 * "domains" (acme_hooks: register them before the TLS module's, whose check loads the files);
 * the service that answers /.well-known/acme-challenge/TOKEN. */
extern const struct cfg_module acme_module;
extern const struct proxy_hooks acme_hooks;
extern const struct http_service acme_http01;

/* Starts the client thread when the configuration keeps certificates (after the change of
 * user: files it writes belong to that user). OK, or ERR with *err. */
int acme_start(char **err);
/* Stops it (an exchange in progress is cut). Idempotent; any thread but the client's. */
void acme_stop(void);

/* ---- shared within src/ssl ---- */

/* The loaded configuration: sections, certificates, client settings. */
struct acme_sect *acme_sects(void);
struct acme_cert *acme_certs(void);
const struct acme_client_conf *acme_client_conf(void);

/* A temporary self-signed certificate (ECDSA P-256, 90 days) for c's domains, written to
 * c->path (0600, a rename): what the bind serves until the authority's arrives. OK or ERR. */
int acme_write_selfsigned(const struct acme_cert *c, char **err);
/* Writes data (len bytes) to path atomically: a temporary file in the same folder, mode 0600,
 * fsync, rename(2). OK or ERR (*err). */
int acme_write_file(const char *path, const char *data, size_t len, char **err);

/* The HTTP-01 answers the workers serve: token -> key authorization, under a lock. */
int acme_token_add(const char *token, const char *keyauth);
void acme_token_del(const char *token);
/* Copies the key authorization for token (tlen bytes) into out (cap bytes): its length, or -1. */
int acme_token_find(const char *token, size_t tlen, char *out, size_t cap);

#endif
