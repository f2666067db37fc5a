/* ACME types (include/keel/acme.h): "acme" sections and the certificates they keep. */
#ifndef KEEL_ACME_T_H
#define KEEL_ACME_T_H

#include <stdbool.h>
#include <stdint.h>

struct ssl_bind;

enum acme_keytype {
	ACME_KEY_ECDSA = 0, /* HAProxy's default: P-384 */
	ACME_KEY_RSA,
};

/* An "acme NAME" section: a certificate authority and the account keel has there. */
struct acme_sect {
	const char *name;
	const char *file; /* where it was declared (messages) */
	int line;
	const char *directory;	   /* the directory URL (https) */
	const char *account_key;   /* PEM file, created (ECDSA P-256, 0600) when missing */
	const char *contact;	   /* an e-mail address, or NULL */
	enum acme_keytype keytype; /* of the certificates' keys */
	int bits;		   /* RSA */
	const char *curve;	   /* ECDSA: "P-256" or "P-384" */
	uint32_t renew_before;	   /* seconds; 0: a third of the lifetime, at most 30 days */
	uint32_t retry_delay;	   /* seconds: the first delay after a failure, doubled each time */
	struct acme_sect *next;
};

/* A certificate file kept by a section: "crt FILE acme NAME domains LIST" on a bind line. */
struct acme_cert {
	const char *path;
	const char *sect_name;
	struct acme_sect *sect; /* resolved once the whole file is read */
	const char **domains;	/* lower case; the first is the subject's CN */
	int ndomains;
	const struct ssl_bind *sb; /* the bind line that names it (the first one) */
	const char *file;	   /* where it was named (messages) */
	int line;
	bool dup; /* another bind line names the same file first: not kept twice */
	struct acme_cert *next;
};

/* The client's TLS settings (HAProxy's global httpclient.ssl.* keywords). */
struct acme_client_conf {
	const char *ca_file; /* NULL: the system's trusted authorities */
	bool verify_none;    /* httpclient.ssl.verify none */
};

#endif
