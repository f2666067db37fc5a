/* ACME keywords: the "acme NAME" section (HAProxy 3.2's names and meanings, plus two of keel's
 * own: renew-before and retry-delay), the global httpclient.ssl.* lines that set how the client
 * checks the authority's certificate, and the bind options "acme NAME domains LIST" that give a
 * "crt FILE" of the same line to a section. docs/configuration.md, "ACME". */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <keel/acme.h>
#include <keel/arena.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/ssl.h>

#define ACME_MAX_DOMAINS 100 /* Let's Encrypt's limit of names per certificate */

static struct acme_sect *sects, *cur;
static struct acme_cert *certs;
static struct acme_client_conf client;

struct acme_sect *acme_sects(void)
{
	return sects;
}

struct acme_cert *acme_certs(void)
{
	return certs;
}

const struct acme_client_conf *acme_client_conf(void)
{
	return &client;
}

static struct acme_sect *sect_find(const char *name)
{
	struct acme_sect *s;

	for (s = sects; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

/* ---- the "acme" section ---- */

static void open_acme(struct cfg_ctx *c, int argc, char **argv)
{
	struct acme_sect *s;

	c->sect = CFG_S_ACME;
	c->cur = NULL;
	cur = NULL;
	if (argc < 2) {
		cfg_err(c, "'acme' expects a name");
		return;
	}
	if (sect_find(argv[1])) {
		cfg_err(c, "acme section '%s' is declared twice", argv[1]);
		return;
	}
	s = arena_alloc(&cfg_arena, sizeof(*s));
	s->name = arena_strdup(&cfg_arena, argv[1]);
	s->file = c->file;
	s->line = c->line;
	s->bits = 2048;
	s->curve = "P-384";
	s->retry_delay = 60;
	/* HAProxy's default account key name. */
	{
		char *p = strfmt("%s.account.key", argv[1]);

		s->account_key = arena_strdup(&cfg_arena, p);
		free(p);
	}
	s->next = sects;
	sects = s;
	cur = s;
}

/* The section the keyword belongs to, or NULL when its header was refused (reported). */
static struct acme_sect *sect_cur(struct cfg_ctx *c, int argc, char **argv, const char *usage)
{
	if (!cur)
		return NULL;
	if (usage && cfg_need_args(c, argc, argv, 1, usage))
		return NULL;
	return cur;
}

static int kw_directory(struct cfg_ctx *c, int argc, char **argv)
{
	struct acme_sect *s = sect_cur(c, argc, argv, "a URL");

	if (!s)
		return ERR;
	if (strncmp(argv[1], "https://", 8) || !argv[1][8]) {
		cfg_err(c, "'directory' expects an https:// URL (the authority's directory)");
		return ERR;
	}
	s->directory = arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

static int kw_str(struct cfg_ctx *c, int argc, char **argv)
{
	struct acme_sect *s = sect_cur(c, argc, argv, "a value");

	if (!s)
		return ERR;
	if (!strcmp(argv[0], "account-key"))
		s->account_key = arena_strdup(&cfg_arena, argv[1]);
	else
		s->contact = arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

static int kw_challenge(struct cfg_ctx *c, int argc, char **argv)
{
	if (!sect_cur(c, argc, argv, "HTTP-01"))
		return ERR;
	if (!strcasecmp(argv[1], "HTTP-01"))
		return OK;
	if (!strcasecmp(argv[1], "DNS-01"))
		cfg_err(c, "'challenge DNS-01' is not implemented yet (keel answers HTTP-01 only)");
	else
		cfg_err(c, "'challenge' expects HTTP-01 (or DNS-01, not implemented yet)");
	return ERR;
}

static int kw_keytype(struct cfg_ctx *c, int argc, char **argv)
{
	struct acme_sect *s = sect_cur(c, argc, argv, "RSA or ECDSA");

	if (!s)
		return ERR;
	if (!strcasecmp(argv[1], "RSA"))
		s->keytype = ACME_KEY_RSA;
	else if (!strcasecmp(argv[1], "ECDSA"))
		s->keytype = ACME_KEY_ECDSA;
	else {
		cfg_err(c, "'keytype' expects RSA or ECDSA");
		return ERR;
	}
	return OK;
}

static int kw_bits(struct cfg_ctx *c, int argc, char **argv)
{
	struct acme_sect *s = sect_cur(c, argc, argv, "a number of bits");
	long v;

	if (!s)
		return ERR;
	if (cfg_parse_int(argv[1], 2048, 8192, &v) != OK) {
		cfg_err(c, "'bits' expects a number from 2048 to 8192");
		return ERR;
	}
	s->bits = (int)v;
	return OK;
}

static int kw_curves(struct cfg_ctx *c, int argc, char **argv)
{
	struct acme_sect *s = sect_cur(c, argc, argv, "P-256 or P-384");

	if (!s)
		return ERR;
	if (!strcmp(argv[1], "P-256") || !strcmp(argv[1], "prime256v1"))
		s->curve = "P-256";
	else if (!strcmp(argv[1], "P-384") || !strcmp(argv[1], "secp384r1"))
		s->curve = "P-384";
	else {
		cfg_err(c, "'curves' expects P-256 or P-384");
		return ERR;
	}
	return OK;
}

static int kw_map(struct cfg_ctx *c, int argc, char **argv)
{
	if (!sect_cur(c, argc, argv, "a map name"))
		return ERR;
	cfg_warn(c, "'map' is ignored: keel answers the HTTP-01 challenges on its HTTP frontends "
		    "itself (no http-request rule needed)");
	return OK;
}

static int kw_time(struct cfg_ctx *c, int argc, char **argv)
{
	struct acme_sect *s = sect_cur(c, argc, argv, "a time");
	const char *why = NULL;
	uint32_t ms;

	if (!s)
		return ERR;
	if (cfg_parse_time(argv[1], &ms, &why) != OK || ms < 1000) {
		cfg_err(c, "'%s': %s", argv[0], why ? why : "expects 1s or more");
		return ERR;
	}
	*(!strcmp(argv[0], "renew-before") ? &s->renew_before : &s->retry_delay) = ms / 1000;
	return OK;
}

/* ---- global ---- */

static int kw_httpclient_ca(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "a file"))
		return ERR;
	client.ca_file = ssl_base_path(ssl_ca_base(), argv[1]);
	return OK;
}

static int kw_httpclient_verify(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "none or required"))
		return ERR;
	if (!strcmp(argv[1], "none"))
		client.verify_none = true;
	else if (!strcmp(argv[1], "required"))
		client.verify_none = false;
	else {
		cfg_err(c, "'%s' expects none or required", argv[0]);
		return ERR;
	}
	return OK;
}

static const struct cfg_kw acme_kw[] = {
    {"directory", CFG_S_ACME, kw_directory, 0, NULL},
    {"account-key", CFG_S_ACME, kw_str, 0, NULL},
    {"contact", CFG_S_ACME, kw_str, 0, NULL},
    {"challenge", CFG_S_ACME, kw_challenge, 0, NULL},
    {"keytype", CFG_S_ACME, kw_keytype, 0, NULL},
    {"bits", CFG_S_ACME, kw_bits, 0, NULL},
    {"curves", CFG_S_ACME, kw_curves, 0, NULL},
    {"map", CFG_S_ACME, kw_map, 0, NULL},
    {"renew-before", CFG_S_ACME, kw_time, 0, NULL}, /* keel's */
    {"retry-delay", CFG_S_ACME, kw_time, 0, NULL},  /* keel's */
    CFG_UNIMPL("provider-name", CFG_S_ACME, "used by DNS-01, which keel does not implement"),
    CFG_UNIMPL("acme-vars", CFG_S_ACME, "used by DNS-01, which keel does not implement"),
    CFG_UNIMPL("reuse-key", CFG_S_ACME, "keel makes a new key for each certificate"),
    {"httpclient.ssl.ca-file", CFG_S_GLOBAL, kw_httpclient_ca, 0, NULL},
    {"httpclient.ssl.verify", CFG_S_GLOBAL, kw_httpclient_verify, 0, NULL},
    CFG_UNIMPL("httpclient.resolvers.id", CFG_S_GLOBAL, "keel's client uses the system's resolver"),
    CFG_UNIMPL("httpclient.resolvers.prefer", CFG_S_GLOBAL,
	       "keel's client uses the system's resolver"),
    CFG_UNIMPL("httpclient.resolvers.disabled", CFG_S_GLOBAL,
	       "keel's client uses the system's resolver"),
    /* HAProxy 3.2 asks for it before an "acme" section; keel's ACME is not experimental. */
    {"expose-experimental-directives", CFG_S_GLOBAL, NULL, KW_IGNORE, NULL},
    CFG_KW_END,
};

static const struct cfg_sect acme_sections[] = {
    {"acme", open_acme},
    {NULL, NULL},
};

static void acme_kw_reset(void)
{
	sects = cur = NULL;
	certs = NULL;
	memset(&client, 0, sizeof(client));
}

static void acme_kw_begin(struct cfg_ctx *c)
{
	(void)c;
	acme_kw_reset();
}

/* Sections that no bind uses still have to be complete: a typo would otherwise go unseen. */
static void acme_kw_check(struct cfg_ctx *c)
{
	struct acme_sect *s;

	for (s = sects; s; s = s->next)
		if (!s->directory)
			cfg_err(c, "acme section '%s' (%s:%d) has no 'directory'", s->name, s->file,
				s->line);
}

const struct cfg_module acme_module = {
    .name = "acme",
    .keywords = acme_kw,
    .sections = acme_sections,
    .begin = acme_kw_begin,
    .check = acme_kw_check,
    .reset = acme_kw_reset,
};

/* ---- bind options ---- */

/* The acme certificate of b's last "crt", created on its first acme/domains word. */
static struct acme_cert *bind_cert(struct cfg_ctx *c, struct bind_conf *b, const char *kw)
{
	struct ssl_bind *sb = b->xprt_conf;
	struct acme_cert *ac;
	const char *path;

	if (!sb || !sb->ncrt || sb->crt[sb->ncrt - 1].is_list) {
		cfg_err(c, "bind option '%s' must follow a 'crt FILE' (the file ACME keeps)", kw);
		return NULL;
	}
	path = sb->crt[sb->ncrt - 1].path;
	for (ac = certs; ac; ac = ac->next)
		if (ac->sb == sb && !strcmp(ac->path, path))
			return ac;
	ac = arena_alloc(&cfg_arena, sizeof(*ac));
	ac->path = path;
	ac->sb = sb;
	ac->file = c->file;
	ac->line = c->line;
	ac->next = certs;
	certs = ac;
	return ac;
}

static int parse_domains(struct cfg_ctx *c, struct acme_cert *ac, const char *list)
{
	char *copy = arena_strdup(&cfg_arena, list), *tok, *save = NULL, *p;

	ac->domains = arena_alloc(&cfg_arena, sizeof(*ac->domains) * ACME_MAX_DOMAINS);
	ac->ndomains = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);

		if (ac->ndomains == ACME_MAX_DOMAINS) {
			cfg_err(c, "'domains': more than %d names", ACME_MAX_DOMAINS);
			return ERR;
		}
		if (tok[0] == '*') {
			cfg_err(c,
				"'domains': '%s': wildcard names need the DNS-01 challenge, not "
				"implemented yet",
				tok);
			return ERR;
		}
		for (p = tok; *p; p++) {
			*p = (char)tolower((unsigned char)*p);
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
				break;
		}
		if (*p || n == 0 || n > 253 || tok[0] == '.' || tok[0] == '-' ||
		    tok[n - 1] == '.') {
			cfg_err(c, "'domains': '%s' is not a DNS name", tok);
			return ERR;
		}
		ac->domains[ac->ndomains++] = tok;
	}
	if (!ac->ndomains) {
		cfg_err(c, "'domains' expects a list of names (a.example.org,b.example.org)");
		return ERR;
	}
	return OK;
}

static int acme_bind_param(struct cfg_ctx *c, struct bind_conf *b, int argc, char **argv, int *i)
{
	const char *kw = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	struct acme_cert *ac;

	if (strcmp(kw, "acme") && strcmp(kw, "domains"))
		return 0;
	if (!val) {
		cfg_err(c, "bind option '%s' expects %s", kw,
			!strcmp(kw, "acme") ? "the name of an acme section" : "a list of names");
		return ERR;
	}
	ac = bind_cert(c, b, kw);
	if (!ac)
		return ERR;
	(*i)++;
	if (!strcmp(kw, "acme")) {
		ac->sect_name = arena_strdup(&cfg_arena, val);
		return 1;
	}
	return parse_domains(c, ac, val) == OK ? 1 : ERR;
}

/* Resolves the acme certificates of b's line and, for a file that does not exist yet, writes a
 * temporary self-signed certificate so that the TLS module's check (which runs next) loads it. */
static int acme_check_bind(struct cfg_ctx *c, struct proxy *p, struct bind_conf *b)
{
	struct acme_cert *ac, *o;
	struct stat st;
	char *err = NULL;

	(void)p;
	for (ac = certs; ac; ac = ac->next) {
		if (ac->sb != b->xprt_conf || ac->sect)
			continue;
		if (!ac->sect_name) {
			cfg_err(c, "bind '%s': 'domains' without 'acme NAME' for '%s'", b->str,
				ac->path);
			return ERR;
		}
		if (!ac->ndomains) {
			cfg_err(c, "bind '%s': 'acme %s' needs 'domains LIST' (the names of '%s')",
				b->str, ac->sect_name, ac->path);
			return ERR;
		}
		ac->sect = sect_find(ac->sect_name);
		if (!ac->sect) {
			cfg_err(c, "bind '%s': no acme section named '%s'", b->str, ac->sect_name);
			return ERR;
		}
		if (!ac->sect->directory)
			return ERR; /* reported by the section's check */
		if (global.chroot) {
			cfg_err(
			    c,
			    "bind '%s': 'acme' does not work with 'chroot' yet (its client writes "
			    "the certificate and key files after the change of root)",
			    b->str);
			return ERR;
		}
		for (o = certs; o; o = o->next) {
			if (o == ac || !o->sect || o->dup || strcmp(o->path, ac->path))
				continue;
			if (o->sect != ac->sect) {
				cfg_err(c, "bind '%s': '%s' is already kept by acme '%s' (%s:%d)",
					b->str, ac->path, o->sect_name, o->file, o->line);
				return ERR;
			}
			ac->dup = true; /* another bind line serves the same file: one client */
		}
		if (stat(ac->path, &st) == -1 && errno == ENOENT) {
			if (acme_write_selfsigned(ac, &err) != OK) {
				cfg_err(c, "bind '%s': %s", b->str, err);
				free(err);
				return ERR;
			}
			cfg_notice(
			    "acme %s: '%s' did not exist: a temporary self-signed certificate "
			    "for %s serves until the authority's arrives",
			    ac->sect_name, ac->path, ac->domains[0]);
		}
	}
	return OK;
}

const struct proxy_hooks acme_hooks = {
    .bind_param = acme_bind_param,
    .check_bind = acme_check_bind,
};
