/* ACLs. "acl NAME FETCH[_MATCH] [-i] [-m MATCH] [-f FILE] [--] PATTERNS..." builds a named test;
 * conditions combine them: terms separated by spaces are ANDed, "or"/"||" separates alternatives,
 * "!" negates, "{ ... }" declares an anonymous ACL in place. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <keel/acl.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/http.h>
#include <keel/sample.h>
#include <keel/stream-t.h>

int acl_parse_net(const char *s, int *family, uint8_t addr[16], uint8_t *prefix)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	long pl;

	if (hl >= sizeof(tmp) || hl == 0)
		return ERR;
	memcpy(tmp, s, hl);
	tmp[hl] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, tmp, addr) == 1) {
		*family = AF_INET;
		*prefix = 32;
	} else if (inet_pton(AF_INET6, tmp, addr) == 1) {
		*family = AF_INET6;
		*prefix = 128;
	} else {
		return ERR;
	}
	if (slash) {
		/* "/24" or a dotted netmask "/255.255.255.0" */
		if (strchr(slash + 1, '.') && *family == AF_INET) {
			struct in_addr m;
			uint32_t v;
			int bits = 0;

			if (inet_pton(AF_INET, slash + 1, &m) != 1)
				return ERR;
			v = ntohl(m.s_addr);
			while (v & 0x80000000u) {
				bits++;
				v <<= 1;
			}
			if (v)
				return ERR; /* non-contiguous mask */
			*prefix = (uint8_t)bits;
		} else {
			if (cfg_parse_int(slash + 1, 0, *family == AF_INET ? 32 : 128, &pl))
				return ERR;
			*prefix = (uint8_t)pl;
		}
	}
	return OK;
}

bool acl_net_match(int family, const uint8_t *addr, int pfamily, const uint8_t *paddr,
		   uint8_t prefix)
{
	uint8_t mapped[16];
	int full, rem;

	/* An IPv4-mapped IPv6 client matches IPv4 patterns. */
	if (family == AF_INET6 && pfamily == AF_INET) {
		static const uint8_t v4pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(addr, v4pfx, 12))
			return false;
		memcpy(mapped, addr + 12, 4);
		addr = mapped;
		family = AF_INET;
	}
	if (family != pfamily)
		return false;
	full = prefix / 8;
	rem = prefix % 8;
	if (memcmp(addr, paddr, (size_t)full))
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xff << (8 - rem));

		if ((addr[full] & mask) != (paddr[full] & mask))
			return false;
	}
	return true;
}

/* The match methods, by their "-m" name; all but int and bool are also criterion suffixes
 * ("path_beg" is "path -m beg"). */
static const struct {
	const char *name;
	enum acl_match match;
	bool suffix;
} match_names[] = {
	{"str", ACL_M_STR, true},     {"beg", ACL_M_BEG, true},     {"end", ACL_M_END, true},
	{"sub", ACL_M_SUB, true},     {"reg", ACL_M_REG, true},     {"dir", ACL_M_DIR, true},
	{"dom", ACL_M_DOM, true},     {"ip", ACL_M_IP, true},       {"int", ACL_M_INT, false},
	{"found", ACL_M_FOUND, true}, {"len", ACL_M_LEN, true},     {"bool", ACL_M_BOOL, false},
};

static enum acl_match default_match(enum sample_fetch f)
{
	switch (f) {
	case SMP_SRC:
	case SMP_DST:
		return ACL_M_IP;
	case SMP_SRC_PORT:
	case SMP_DST_PORT:
	case SMP_STATUS:
	case SMP_SSL_C_VERIFY:
		return ACL_M_INT;
	case SMP_ALWAYS_TRUE:
	case SMP_ALWAYS_FALSE:
	case SMP_SSL_FC:
	case SMP_SSL_C_USED:
		return ACL_M_BOOL;
	default:
		return ACL_M_STR;
	}
}

/* Splits "path_beg" / "hdr_beg(host)" into a fetch and a match. */
static int parse_criterion(struct cfg_ctx *c, const char *crit, struct acl *acl)
{
	char base[128];
	const char *paren = strchr(crit, '(');
	size_t nlen = paren ? (size_t)(paren - crit) : strlen(crit);
	const char *rest;
	char *err = NULL;
	size_t i;
	bool has_suffix = false;

	if (nlen >= 64) {
		cfg_err(c, "acl '%s': criterion too long", acl->name);
		return ERR;
	}
	acl->match = ACL_M_STR;
	for (i = 0; i < ARRAY_SIZE(match_names); i++) {
		size_t sl = strlen(match_names[i].name) + 1; /* with its '_' */

		if (match_names[i].suffix && nlen > sl && crit[nlen - sl] == '_' &&
		    !strncmp(crit + nlen - sl + 1, match_names[i].name, sl - 1)) {
			/* Keep the fetch name and its arguments, drop the suffix. */
			snprintf(base, sizeof(base), "%.*s%s", (int)(nlen - sl), crit,
				 paren ? paren : "");
			acl->match = match_names[i].match;
			has_suffix = true;
			break;
		}
	}
	if (!has_suffix)
		snprintf(base, sizeof(base), "%s", crit);
	if (sample_expr_parse(base, &acl->expr, &rest, &err)) {
		cfg_err(c, "acl '%s': %s", acl->name, err);
		free(err);
		return ERR;
	}
	if (*rest) {
		cfg_err(c, "acl '%s': unexpected '%s' after the criterion", acl->name, rest);
		return ERR;
	}
	if (!has_suffix)
		acl->match = default_match(acl->expr.fetch);
	return OK;
}

static void free_re(void *p)
{
	pcre2_code_free(p);
}

static int add_pattern(struct cfg_ctx *c, struct acl *acl, const char *v)
{
	struct acl_pattern pat;

	memset(&pat, 0, sizeof(pat));
	pat.str = arena_strdup(&cfg_arena, v);
	pat.len = (uint32_t)strlen(v);
	switch (acl->match) {
	case ACL_M_REG: {
		int ec;
		PCRE2_SIZE eo;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)v, PCRE2_ZERO_TERMINATED,
					       acl->icase ? PCRE2_CASELESS : 0, &ec, &eo, NULL);

		if (!re) {
			PCRE2_UCHAR msg[128];

			pcre2_get_error_message(ec, msg, sizeof(msg));
			cfg_err(c, "acl '%s': invalid regex '%s' at offset %zu: %s", acl->name, v,
				(size_t)eo, (const char *)msg);
			return ERR;
		}
		arena_on_free(&cfg_arena, free_re, re);
		pat.re = re;
		break;
	}
	case ACL_M_IP:
		if (acl_parse_net(v, &pat.family, pat.addr, &pat.prefix)) {
			cfg_err(c, "acl '%s': invalid address or network '%s'", acl->name, v);
			return ERR;
		}
		break;
	case ACL_M_INT:
	case ACL_M_LEN: {
		long lo, hi;
		const char *colon = strchr(v, ':');

		pat.op = ACL_OP_EQ;
		if (!strcmp(v, "eq") || !strcmp(v, "ge") || !strcmp(v, "gt") || !strcmp(v, "le") ||
		    !strcmp(v, "lt")) {
			cfg_err(c, "acl '%s': operator '%s' must be followed by a value", acl->name, v);
			return ERR;
		}
		if (colon) {
			char a[32], b[32];
			size_t al = (size_t)(colon - v);

			if (al >= sizeof(a) || strlen(colon + 1) >= sizeof(b))
				goto bad_int;
			memcpy(a, v, al);
			a[al] = '\0';
			strcpy(b, colon + 1);
			lo = 0;
			hi = 0x7fffffffl;
			if ((*a && cfg_parse_int(a, -0x7fffffffl, 0x7fffffffl, &lo)) ||
			    (*b && cfg_parse_int(b, -0x7fffffffl, 0x7fffffffl, &hi)))
				goto bad_int;
			pat.op = ACL_OP_RANGE;
			pat.lo = lo;
			pat.hi = hi;
		} else {
			if (cfg_parse_int(v, -0x7fffffffl, 0x7fffffffl, &lo))
				goto bad_int;
			pat.lo = pat.hi = lo;
		}
		break;
	bad_int:
		cfg_err(c, "acl '%s': invalid integer or range '%s'", acl->name, v);
		return ERR;
	}
	default:
		break;
	}
	acl->pats = arena_grow(&cfg_arena, acl->pats, (size_t)acl->npats, (size_t)acl->npats + 1,
			       sizeof(pat));
	acl->pats[acl->npats++] = pat;
	return OK;
}

static int load_pattern_file(struct cfg_ctx *c, struct acl *acl, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int rc = OK;

	struct stat st;

	if (!f) {
		cfg_err(c, "acl '%s': cannot open pattern file '%s': %s", acl->name, path,
			strerror(errno));
		return ERR;
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
		cfg_err(c, "acl '%s': pattern file '%s' must be a regular file of at most 64 MB",
			acl->name, path);
		fclose(f);
		return ERR;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);
		char *p = line;

		while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' '))
			line[--l] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (add_pattern(c, acl, p)) {
			rc = ERR;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* Builds an ACL from "CRITERION [flags] PATTERNS" (argv[0] is the criterion). */
static struct acl *build_acl(struct cfg_ctx *c, const char *name, int argc, char **argv)
{
	struct acl *acl = arena_alloc(&cfg_arena, sizeof(*acl));
	int i = 1;

	acl->name = arena_strdup(&cfg_arena, name);
	acl->file = c->file;
	acl->line = c->line;
	if (argc < 1) {
		cfg_err(c, "acl '%s' expects a criterion", name);
		return NULL;
	}
	if (parse_criterion(c, argv[0], acl))
		return NULL;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *f = argv[i];

		if (!strcmp(f, "--")) {
			i++;
			break;
		} else if (!strcmp(f, "-i")) {
			acl->icase = true;
		} else if (!strcmp(f, "-n")) {
			/* no-dup: irrelevant here */
		} else if (!strcmp(f, "-m") && i + 1 < argc) {
			size_t k;
			bool ok = false;

			for (k = 0; k < ARRAY_SIZE(match_names); k++)
				if (!strcmp(argv[i + 1], match_names[k].name)) {
					acl->match = match_names[k].match;
					ok = true;
				}
			if (!ok) {
				cfg_err(c, "acl '%s': unknown match method '%s'", name, argv[i + 1]);
				return NULL;
			}
			i++;
		} else if (!strcmp(f, "-f") && i + 1 < argc) {
			if (load_pattern_file(c, acl, argv[i + 1]))
				return NULL;
			i++;
		} else if (!strcmp(f, "-M") || !strcmp(f, "-u")) {
			cfg_warn(c, "acl '%s': flag '%s' is not implemented; ignored", name, f);
			if (i + 1 < argc && !strcmp(f, "-u"))
				i++;
		} else {
			break; /* a negative number pattern, e.g. "-1" */
		}
	}
	/* Integer operators: "gt 5", "le 10" */
	if ((acl->match == ACL_M_INT || acl->match == ACL_M_LEN) && i + 1 < argc &&
	    (!strcmp(argv[i], "eq") || !strcmp(argv[i], "ge") || !strcmp(argv[i], "gt") ||
	     !strcmp(argv[i], "le") || !strcmp(argv[i], "lt"))) {
		const char *op = argv[i];
		struct acl_pattern *p;

		if (add_pattern(c, acl, argv[i + 1]))
			return NULL;
		p = &acl->pats[acl->npats - 1];
		p->op = !strcmp(op, "eq") ? ACL_OP_EQ : !strcmp(op, "ge") ? ACL_OP_GE
			: !strcmp(op, "gt") ? ACL_OP_GT : !strcmp(op, "le") ? ACL_OP_LE : ACL_OP_LT;
		i += 2;
	}
	for (; i < argc; i++)
		if (add_pattern(c, acl, argv[i]))
			return NULL;
	if (!acl->npats && acl->match != ACL_M_FOUND && acl->match != ACL_M_BOOL) {
		cfg_err(c, "acl '%s' has no pattern (use '-m found' to test presence)", name);
		return NULL;
	}
	return acl;
}

int acl_parse(struct cfg_ctx *c, struct proxy *px, int argc, char **argv)
{
	struct acl *acl;
	const char *n;

	if (argc < 3) {
		cfg_err(c, "'acl' expects a name and a criterion");
		return ERR;
	}
	for (n = argv[1]; *n; n++)
		if (!(isalnum((unsigned char)*n) || *n == '_' || *n == '-' || *n == '.' || *n == ':')) {
			cfg_err(c, "invalid acl name '%s'", argv[1]);
			return ERR;
		}
	acl = build_acl(c, argv[1], argc - 2, argv + 2);
	if (!acl)
		return ERR;
	/* Declaring the same name again adds an alternative (HAProxy ORs same-named ACLs). */
	{
		struct list *l;

		list_for_each(l, &px->acls) {
			struct acl *first = list_entry(l, struct acl, list);

			if (!strcmp(first->name, acl->name)) {
				while (first->alt)
					first = first->alt;
				first->alt = acl;
				return OK;
			}
		}
	}
	list_add_tail(&px->acls, &acl->list);
	return OK;
}

static struct acl *predefined(const char *name)
{
	static const struct {
		const char *name;
		const char *crit;
		const char *pat;
	} tab[] = {
		{"TRUE", "always_true", NULL},    {"FALSE", "always_false", NULL},
		{"HTTP", "always_true", NULL},    {"METH_GET", "method", "GET"},
		{"METH_POST", "method", "POST"},  {"METH_HEAD", "method", "HEAD"},
		{"METH_PUT", "method", "PUT"},    {"METH_DELETE", "method", "DELETE"},
		{"METH_OPTIONS", "method", "OPTIONS"}, {"METH_TRACE", "method", "TRACE"},
		{"HTTP_1.0", "req.ver", "1.0"},   {"HTTP_1.1", "req.ver", "1.1"},
		{"LOCALHOST", "src", "127.0.0.1/8"},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tab); i++) {
		struct cfg_ctx quiet = {0};
		char *argv[2];
		int argc = 1;

		if (strcmp(name, tab[i].name))
			continue;
		argv[0] = (char *)tab[i].crit;
		if (tab[i].pat)
			argv[argc++] = (char *)tab[i].pat;
		return build_acl(&quiet, name, argc, argv);
	}
	return NULL;
}

/* Collects every ACL of that name (same-named declarations are alternatives) into one. */
static struct acl *find_acl(struct proxy *px, const char *name)
{
	struct list *l;

	list_for_each(l, &px->acls) {
		struct acl *a = list_entry(l, struct acl, list);

		if (!strcmp(a->name, name))
			return a;
	}
	return predefined(name);
}

struct acl_cond *acl_cond_parse(struct cfg_ctx *c, struct proxy *px, int argc, char **argv)
{
	struct acl_cond *cond = arena_alloc(&cfg_arena, sizeof(*cond));
	struct acl_group *g;
	int i;

	if (!strcmp(argv[0], "unless"))
		cond->unless = true;
	else if (strcmp(argv[0], "if")) {
		cfg_err(c, "expects 'if' or 'unless', got '%s'", argv[0]);
		return NULL;
	}
	if (argc < 2) {
		cfg_err(c, "'%s' expects a condition", argv[0]);
		return NULL;
	}
	cond->groups = arena_alloc(&cfg_arena, sizeof(*cond->groups) * (size_t)argc);
	g = &cond->groups[0];
	g->terms = arena_alloc(&cfg_arena, sizeof(*g->terms) * (size_t)argc);
	cond->ngroups = 1;
	for (i = 1; i < argc; i++) {
		const char *w = argv[i];
		bool neg = false;
		struct acl *acl;

		if (!strcmp(w, "or") || !strcmp(w, "||")) {
			if (!g->nterms) {
				cfg_err(c, "'or' without a term before it");
				return NULL;
			}
			g = &cond->groups[cond->ngroups++];
			g->terms = arena_alloc(&cfg_arena, sizeof(*g->terms) * (size_t)argc);
			continue;
		}
		while (*w == '!') {
			neg = !neg;
			w++;
		}
		if (!*w && i + 1 < argc)
			w = argv[++i]; /* "! name" */
		if (!strcmp(w, "{")) {
			int j = i + 1, depth = 1;

			while (j < argc && depth) {
				if (!strcmp(argv[j], "}"))
					depth--;
				if (depth)
					j++;
			}
			if (j >= argc) {
				cfg_err(c, "missing '}' in anonymous acl");
				return NULL;
			}
			acl = build_acl(c, "anonymous", j - i - 1, argv + i + 1);
			if (!acl)
				return NULL;
			i = j;
		} else {
			acl = find_acl(px, w);
			if (!acl) {
				cfg_err(c, "unknown acl '%s' (ACLs must be declared before use)", w);
				return NULL;
			}
		}
		g->terms[g->nterms].acl = acl;
		g->terms[g->nterms].neg = neg;
		g->nterms++;
	}
	if (!g->nterms) {
		cfg_err(c, "condition ends with 'or'");
		return NULL;
	}
	return cond;
}

static __thread pcre2_match_data *tl_md;

void acl_thread_cleanup(void)
{
	pcre2_match_data_free(tl_md);
	tl_md = NULL;
}

static bool str_match(const struct acl *acl, const struct acl_pattern *p, const char *s,
		      uint32_t len)
{
	int (*cmp)(const char *, const char *, size_t) = acl->icase ? strncasecmp : strncmp;
	uint32_t i;

	switch (acl->match) {
	case ACL_M_STR:
		return len == p->len && !cmp(s, p->str, len);
	case ACL_M_BEG:
		return len >= p->len && !cmp(s, p->str, p->len);
	case ACL_M_END:
		return len >= p->len && !cmp(s + len - p->len, p->str, p->len);
	case ACL_M_SUB:
		if (p->len == 0)
			return true;
		for (i = 0; i + p->len <= len; i++)
			if (!cmp(s + i, p->str, p->len))
				return true;
		return false;
	case ACL_M_DIR:
	case ACL_M_DOM: {
		char sep = acl->match == ACL_M_DIR ? '/' : '.';

		for (i = 0; i + p->len <= len; i++) {
			bool left = i == 0 || s[i - 1] == sep || s[i - 1] == '/';
			bool right = i + p->len == len || s[i + p->len] == sep || s[i + p->len] == '/' ||
				     (acl->match == ACL_M_DOM && s[i + p->len] == ':');

			if (left && right && !cmp(s + i, p->str, p->len))
				return true;
		}
		return false;
	}
	case ACL_M_REG:
		if (!tl_md)
			tl_md = pcre2_match_data_create(16, NULL);
		if (!tl_md)
			return false;
		return pcre2_match(p->re, (PCRE2_SPTR)s, len, 0, 0, tl_md, NULL) >= 0;
	case ACL_M_LEN:
		break;
	default:
		break;
	}
	return false;
}

static bool int_match(const struct acl_pattern *p, int64_t v)
{
	switch (p->op) {
	case ACL_OP_EQ: return v == p->lo;
	case ACL_OP_GE: return v >= p->lo;
	case ACL_OP_GT: return v > p->lo;
	case ACL_OP_LE: return v <= p->lo;
	case ACL_OP_LT: return v < p->lo;
	case ACL_OP_RANGE: return v >= p->lo && v <= p->hi;
	}
	return false;
}

bool acl_match(const struct acl *acl, const struct sample *smp)
{
	int i;

	if (acl->match == ACL_M_FOUND)
		return true;
	/* As HAProxy: zero (false) does not match, any other value does. */
	if (acl->match == ACL_M_BOOL)
		return smp->str || smp->is_ip ? true : smp->num != 0;
	for (i = 0; i < acl->npats; i++) {
		const struct acl_pattern *p = &acl->pats[i];

		switch (acl->match) {
		case ACL_M_IP:
			if (smp->is_ip && acl_net_match(smp->family, smp->ip, p->family, p->addr, p->prefix))
				return true;
			break;
		case ACL_M_INT:
			if (!smp->str && !smp->is_ip && int_match(p, smp->num))
				return true;
			if (smp->str) {
				char tmp[24];
				long v;
				size_t l = MIN((size_t)smp->len, sizeof(tmp) - 1);

				memcpy(tmp, smp->str, l);
				tmp[l] = '\0';
				if (!cfg_parse_int(tmp, -0x7fffffffl, 0x7fffffffl, &v) && int_match(p, v))
					return true;
			}
			break;
		case ACL_M_LEN:
			if (int_match(p, smp->str ? smp->len : 0))
				return true;
			break;
		default:
			if (smp->str && str_match(acl, p, smp->str, smp->len))
				return true;
			if (smp->is_ip) {
				char tmp[64];
				size_t l = sample_to_str(smp, tmp, sizeof(tmp));

				if (str_match(acl, p, tmp, (uint32_t)l))
					return true;
			}
			break;
		}
	}
	return false;
}

/* Header fetches test every occurrence and every comma-separated value, like HAProxy's hdr(). */
static bool eval_hdr_acl(const struct acl *acl, const struct http_head *h)
{
	int i = -1;

	while ((i = http_hdr_find(h, acl->expr.arg, acl->expr.arglen, i + 1)) >= 0) {
		const char *v = http_ptr(h, h->hdr[i].value);
		uint32_t vl = h->hdr[i].value.len, k = 0;
		struct sample smp = {0};

		if (acl->match == ACL_M_FOUND)
			return true;
		/* The whole value first (a Host header never has commas; a date does). */
		smp.str = v;
		smp.len = vl;
		if (acl_match(acl, &smp))
			return true;
		while (k < vl) {
			uint32_t s, e;

			while (k < vl && (v[k] == ' ' || v[k] == ','))
				k++;
			s = k;
			while (k < vl && v[k] != ',')
				k++;
			e = k;
			while (e > s && v[e - 1] == ' ')
				e--;
			if (s == 0 && e == vl)
				continue;
			smp.str = v + s;
			smp.len = e - s;
			if (e > s && acl_match(acl, &smp))
				return true;
		}
	}
	return false;
}

static bool eval_acl(const struct acl *acl, struct stream *s)
{
	const struct acl *a;
	struct sample smp;

	for (a = acl; a; a = a->alt) {
		bool hit;

		if ((a->expr.fetch == SMP_HDR || a->expr.fetch == SMP_RES_HDR) && a->expr.occ == 0) {
			const struct http_head *h = a->expr.fetch == SMP_HDR ? s->txn->req_head
									      : s->txn->rsp_head;

			hit = h && eval_hdr_acl(a, h);
		} else {
			hit = sample_fetch(s, &a->expr, &smp) && acl_match(a, &smp);
		}
		if (hit)
			return true;
	}
	return false;
}

bool acl_cond_eval(const struct acl_cond *cond, struct stream *s)
{
	int g, t;
	bool res = false;

	if (!cond)
		return true;
	for (g = 0; g < cond->ngroups && !res; g++) {
		const struct acl_group *grp = &cond->groups[g];

		res = true;
		for (t = 0; t < grp->nterms && res; t++) {
			bool v = eval_acl(grp->terms[t].acl, s);

			if (grp->terms[t].neg)
				v = !v;
			res = v;
		}
	}
	return cond->unless ? !res : res;
}
