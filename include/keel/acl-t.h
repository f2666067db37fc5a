/* ACL types: named tests on samples, combined into if/unless conditions. */
#ifndef KEEL_ACL_T_H
#define KEEL_ACL_T_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/list.h>
#include <keel/sample-t.h>

enum acl_match {
	ACL_M_STR,   /* exact string */
	ACL_M_BEG,   /* prefix */
	ACL_M_END,   /* suffix */
	ACL_M_SUB,   /* substring */
	ACL_M_DIR,   /* a '/'-delimited component */
	ACL_M_DOM,   /* a '.'- or '/'-delimited component */
	ACL_M_REG,   /* regular expression (PCRE2) */
	ACL_M_IP,    /* address or CIDR network */
	ACL_M_INT,   /* integer, with ranges and operators */
	ACL_M_FOUND, /* the sample exists */
	ACL_M_LEN,   /* length of the sample */
	ACL_M_BOOL,  /* always-true / always-false */
};

enum acl_int_op { ACL_OP_EQ, ACL_OP_GE, ACL_OP_GT, ACL_OP_LE, ACL_OP_LT, ACL_OP_RANGE };

struct acl_pattern {
	char *str;
	uint32_t len;
	void *re;          /* pcre2_code * for ACL_M_REG */
	int family;        /* ACL_M_IP: AF_INET / AF_INET6 */
	uint8_t addr[16];
	uint8_t prefix;    /* mask length in bits */
	enum acl_int_op op;
	int64_t lo, hi;
};

struct acl {
	struct list list;  /* in proxy->acls (first declaration of a name only) */
	struct acl *alt;   /* a later declaration with the same name: an alternative (OR) */
	char *name;
	struct sample_expr expr;
	enum acl_match match;
	bool icase;
	struct acl_pattern *pats;
	int npats;
	const char *file;
	int line;
};

/* One term of a condition: an ACL, possibly negated. Terms in a group are ANDed; groups are ORed. */
struct acl_term {
	struct acl *acl;
	bool neg;
};

struct acl_group {
	struct acl_term *terms;
	int nterms;
};

struct acl_cond {
	bool unless;
	struct acl_group *groups;
	int ngroups;
};

#endif
