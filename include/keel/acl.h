/* ACLs: parsing "acl NAME FETCH [flags] PATTERNS..." and if/unless conditions, and evaluation. */
#ifndef KEEL_ACL_H
#define KEEL_ACL_H

#include <stdbool.h>

#include <keel/acl-t.h>
#include <keel/cfg-t.h>

struct stream;

/* Parses an acl line (argv[0] == "acl") into px->acls. Returns OK or ERR (reported). */
int acl_parse(struct cfg_ctx *c, struct proxy *px, int argc, char **argv);
/* Parses a condition starting at argv[0] ("if" or "unless"). Returns NULL (reported) on error. */
struct acl_cond *acl_cond_parse(struct cfg_ctx *c, struct proxy *px, int argc, char **argv);
/* Evaluates a condition; a NULL condition is true. */
bool acl_cond_eval(const struct acl_cond *cond, struct stream *s);
/* Frees the calling thread's regex match data (at worker exit). */
void acl_thread_cleanup(void);
/* Matches one sample against an ACL's patterns (exposed for unit tests). */
bool acl_match(const struct acl *acl, const struct sample *smp);
/* Parses "ADDR[/PREFIX]" into a pattern (used by ACLs and option forwardfor except). */
int acl_parse_net(const char *s, int *family, uint8_t addr[16], uint8_t *prefix);
bool acl_net_match(int family, const uint8_t *addr, int pfamily, const uint8_t *paddr,
		   uint8_t prefix);

#endif
