/* Configuration reader: splits the file into lines and arguments, tracks sections and dispatches
 * each line to the keyword tables the modules registered (cfg_register()); the value parsers
 * every keyword table uses (times, sizes, addresses, log targets) and the messages. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/global.h>

struct arena cfg_arena;
bool cfg_silent;

/* The first error of the load, for a reload's answer (cfg_first_alert()). */
static char first_alert[512];

const char *cfg_first_alert(void)
{
	return first_alert;
}

static void vmsg(const char *tag, struct cfg_ctx *c, const char *fmt, va_list ap)
{
	if (c && c->msg) {
		/* Runtime parsing ("add server"): the caller reports the first error. */
		if (!strcmp(tag, "ALERT") && !c->msg[0])
			vsnprintf(c->msg, c->msgcap, fmt, ap);
		return;
	}
	if (cfg_silent)
		return;
	if (!strcmp(tag, "ALERT") && !first_alert[0]) {
		va_list aq;
		int n = c && c->file ? snprintf(first_alert, sizeof(first_alert), "%s:%d: ",
						c->file, c->line) : 0;

		va_copy(aq, ap);
		vsnprintf(first_alert + n, sizeof(first_alert) - (size_t)n, fmt, aq);
		va_end(aq);
	}
	if (c && c->file)
		fprintf(stderr, "[%s] %s:%d: ", tag, c->file, c->line);
	else
		fprintf(stderr, "[%s] ", tag);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cfg_err(struct cfg_ctx *c, const char *fmt, ...)
{
	va_list ap;

	c->nerr++;
	va_start(ap, fmt);
	vmsg("ALERT", c, fmt, ap);
	va_end(ap);
}

void cfg_warn(struct cfg_ctx *c, const char *fmt, ...)
{
	va_list ap;

	c->nwarn++;
	va_start(ap, fmt);
	vmsg("WARNING", c, fmt, ap);
	va_end(ap);
}

void cfg_alert(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("ALERT", NULL, fmt, ap);
	va_end(ap);
}

void cfg_notice(const char *fmt, ...)
{
	va_list ap;

	if (global.quiet)
		return;
	va_start(ap, fmt);
	vmsg("NOTICE", NULL, fmt, ap);
	va_end(ap);
}

/* Copies the value of ${NAME} into out. Returns the bytes consumed from s (0 if s is not a
 * reference), or (size_t)-1 when the value does not fit in what is left of out. */
static size_t expand_env(const char *s, size_t len, char *out, size_t *olen, size_t ocap)
{
	char name[256];
	const char *v;
	size_t i, n;

	if (len < 3 || s[0] != '$' || s[1] != '{')
		return 0;
	for (i = 2; i < len && s[i] != '}'; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	if (i >= len || i - 2 >= sizeof(name) || i == 2)
		return 0;
	memcpy(name, s + 2, i - 2);
	name[i - 2] = '\0';
	v = getenv(name);
	if (v) {
		n = strlen(v);
		if (n > ocap - *olen)
			return (size_t)-1;
		memcpy(out + *olen, v, n);
		*olen += n;
	}
	return i + 1;
}

int cfg_tokenize(const char *line, size_t len, char *out, size_t outcap, char **argv, int maxargs,
		 const char **err)
{
	size_t i = 0, o = 0;
	int argc = 0;

	if (!outcap) {
		*err = "no room for the arguments";
		return -1;
	}
	/* Every write below keeps one byte for the argument's terminating NUL. */
	outcap--;
	for (;;) {
		int quote = 0;

		while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
			i++;
		if (i >= len || line[i] == '#')
			break;
		if (argc >= maxargs) {
			*err = "too many arguments on one line";
			return -1;
		}
		argv[argc] = out + o;
		for (; i < len; i++) {
			char ch = line[i];

			if (ch == '\0') {
				*err = "NUL byte in configuration";
				return -1;
			}
			if (quote == '\'') {
				if (ch == '\'') {
					quote = 0;
					continue;
				}
				goto put;
			}
			if (!quote && (ch == ' ' || ch == '\t' || ch == '\r' || ch == '#'))
				break;
			if (ch == '"') {
				quote = quote ? 0 : '"';
				continue;
			}
			if (!quote && ch == '\'') {
				quote = '\'';
				continue;
			}
			if (ch == '$') {
				size_t used = expand_env(line + i, len - i, out, &o, outcap);

				if (used == (size_t)-1)
					goto too_long;
				if (used) {
					i += used - 1;
					continue;
				}
			}
			if (ch == '\\') {
				int h1, h2;

				if (i + 1 >= len) {
					*err = "backslash at end of line";
					return -1;
				}
				ch = line[++i];
				switch (ch) {
				case 'n': ch = '\n'; break;
				case 'r': ch = '\r'; break;
				case 't': ch = '\t'; break;
				case 'x':
					if (i + 2 >= len || (h1 = hexval(line[i + 1])) < 0 ||
					    (h2 = hexval(line[i + 2])) < 0) {
						*err = "invalid \\x escape";
						return -1;
					}
					ch = (char)(h1 * 16 + h2);
					i += 2;
					break;
				default:
					break; /* \\ \" \' \# \space and others: the character itself */
				}
			}
		put:
			if (o >= outcap)
				goto too_long;
			out[o++] = ch;
		}
		if (quote) {
			*err = "unterminated quote";
			return -1;
		}
		out[o++] = '\0'; /* the byte kept aside, or freed by the previous argument */
		if (o > outcap)
			outcap = o; /* never reached: o <= outcap + 1 by construction */
		argc++;
		if (i < len && line[i] == '#')
			break;
	}
	return argc;
too_long:
	*err = "line too long after ${VAR} expansion";
	return -1;
}

int cfg_parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!*s)
		return ERR;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return ERR;
	*out = v;
	return OK;
}

int cfg_parse_time(const char *s, uint32_t *ms, const char **err)
{
	char *end;
	unsigned long long v, mult = 1, div = 1;

	if (!isdigit((unsigned char)*s)) {
		*err = "expects a number with an optional unit (us, ms, s, m, h, d)";
		return ERR;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v > 0xFFFFFFFFull) {
		*err = "value out of range";
		return ERR;
	}
	if (!*end || !strcmp(end, "ms"))
		mult = 1;
	else if (!strcmp(end, "us"))
		div = 1000;
	else if (!strcmp(end, "s"))
		mult = 1000;
	else if (!strcmp(end, "m"))
		mult = 60000;
	else if (!strcmp(end, "h"))
		mult = 3600000;
	else if (!strcmp(end, "d"))
		mult = 86400000;
	else {
		*err = "unknown time unit (expects us, ms, s, m, h or d)";
		return ERR;
	}
	{
		unsigned long long raw = v;

		v = v * mult / div;
		if (v > 0x7FFFFFFFull) {
			*err = "value out of range (max 24 days)";
			return ERR;
		}
		/* 500us is not "no timeout": round a non-zero sub-millisecond value up. */
		if (v == 0 && raw != 0)
			v = 1;
	}
	*ms = (uint32_t)v;
	return OK;
}

int cfg_parse_size(const char *s, uint32_t *out, const char **err)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s)) {
		*err = "expects a size";
		return ERR;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno) {
		*err = "value out of range";
		return ERR;
	}
	if (v > 0x7FFFFFFFull) {
		*err = "value out of range";
		return ERR;
	}
	if (!strcasecmp(end, "k"))
		v <<= 10;
	else if (!strcasecmp(end, "m"))
		v <<= 20;
	else if (!strcasecmp(end, "g"))
		v <<= 30;
	else if (*end) {
		*err = "unknown size unit (expects k, m or g)";
		return ERR;
	}
	if (v > 0x7FFFFFFFull) {
		*err = "value out of range";
		return ERR;
	}
	*out = (uint32_t)v;
	return OK;
}

int cfg_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, bool port_opt,
		   bool *no_port, char **err)
{
	char host[256];
	const char *port = NULL, *p;
	int family = AF_UNSPEC;
	long portv = 0;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (no_port)
		*no_port = false;
	if (!strncmp(s, "ipv4@", 5)) {
		family = AF_INET;
		s += 5;
	} else if (!strncmp(s, "ipv6@", 5)) {
		family = AF_INET6;
		s += 5;
	} else if (!strncmp(s, "unix@", 5) || s[0] == '/' || !strncmp(s, "abns@", 5) ||
		   !strncmp(s, "fd@", 3) || !strncmp(s, "sockpair@", 9)) {
		*err = strfmt("'%s': unix socket and fd addresses are not supported here yet", s);
		return ERR;
	}
	if (s[0] == '[') {
		p = strchr(s, ']');
		if (!p) {
			*err = strfmt("'%s': missing ']'", s);
			return ERR;
		}
		hl = (size_t)(p - s - 1);
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (p[1] == ':')
			port = p + 2;
		else if (p[1])
			goto bad;
		family = AF_INET6;
	} else {
		p = strrchr(s, ':');
		/* "::1:80" style (several colons) is IPv6 with the port after the last colon. */
		if (p) {
			hl = (size_t)(p - s);
			port = p + 1;
		} else {
			hl = strlen(s);
		}
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (port && *port) {
		if (cfg_parse_int(port, 1, 65535, &portv)) {
			*err = strfmt("'%s': invalid port '%s' (expects 1-65535)", s, port);
			return ERR;
		}
	} else if (!port_opt) {
		*err = strfmt("'%s': missing port (expects ADDRESS:PORT)", s);
		return ERR;
	} else if (no_port) {
		*no_port = true;
	}
	if (!host[0] || !strcmp(host, "*") || !strcmp(host, "0.0.0.0")) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)portv);
			in6->sin6_addr = in6addr_any;
			*len = sizeof(*in6);
			return OK;
		}
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)portv);
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		*len = sizeof(*in);
		return OK;
	}
	if (family != AF_INET6 && inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)portv);
		*len = sizeof(struct sockaddr_in);
		return OK;
	}
	if (family != AF_INET &&
	    inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)portv);
		*len = sizeof(struct sockaddr_in6);
		return OK;
	}
	{
		/* A host name: resolved once, at load time (start-up may block; the loops never do). */
		struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM}, *res;
		int rc = getaddrinfo(host, NULL, &hints, &res);

		if (rc) {
			*err = strfmt("'%s': cannot resolve '%s': %s", s, host, gai_strerror(rc));
			return ERR;
		}
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)portv);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)portv);
		freeaddrinfo(res);
		return OK;
	}
bad:
	*err = strfmt("'%s': invalid address", s);
	return ERR;
}

/* ---- log targets ---- */

static const char *const facilities[] = {
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
};

static const char *const levels[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

static int lookup(const char *s, const char *const *tab, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, tab[i]))
			return i;
	return -1;
}

int cfg_parse_log(struct cfg_ctx *c, struct log_targets *lt, int argc, char **argv)
{
	struct log_target t;
	int *lvl[] = {&t.level, &t.minlevel};
	const char *dst;
	size_t k;
	int i = 1;

	memset(&t, 0, sizeof(t));
	t.fd = -1;
	t.level = 7;
	t.minlevel = 0;
	t.format = LOG_FMT_RFC3164;
	if (argc < 2) {
		cfg_err(c, "'log' expects an address or 'global'");
		return ERR;
	}
	dst = argv[i++];
	/* Optional "len N", "format F", "sample R:S" before the facility. */
	while (i + 1 < argc) {
		if (!strcmp(argv[i], "len")) {
			i += 2;
		} else if (!strcmp(argv[i], "format")) {
			if (!strcmp(argv[i + 1], "raw"))
				t.format = LOG_FMT_RAW;
			else if (!strcmp(argv[i + 1], "short"))
				t.format = LOG_FMT_SHORT;
			else if (!strcmp(argv[i + 1], "rfc3164") || !strcmp(argv[i + 1], "local"))
				t.format = LOG_FMT_RFC3164;
			else
				cfg_warn(c, "log format '%s' is not implemented; using rfc3164", argv[i + 1]);
			i += 2;
		} else if (!strcmp(argv[i], "sample")) {
			cfg_warn(c, "log 'sample' is not implemented; every line is logged");
			i += 2;
		} else {
			break;
		}
	}
	if (i >= argc) {
		cfg_err(c, "'log %s' expects a facility (e.g. local0)", dst);
		return ERR;
	}
	t.facility = lookup(argv[i], facilities, (int)ARRAY_SIZE(facilities));
	if (t.facility < 0) {
		const char *near = cfg_nearest(argv[i], facilities, ARRAY_SIZE(facilities));

		cfg_err(c, "unknown log facility '%s'%s%s%s", argv[i], near ? "; did you mean '" : "",
			near ? near : "", near ? "'?" : "");
		return ERR;
	}
	i++;
	/* Then, optionally, the highest level sent and the lowest. */
	for (k = 0; k < ARRAY_SIZE(lvl) && i < argc; k++, i++) {
		*lvl[k] = lookup(argv[i], levels, (int)ARRAY_SIZE(levels));
		if (*lvl[k] < 0) {
			cfg_err(c, "unknown log level '%s' (expects emerg..debug)", argv[i]);
			return ERR;
		}
	}
	if (!strcmp(dst, "stdout") || !strcmp(dst, "stderr")) {
		t.kind = LOG_T_FD;
		t.fd = !strcmp(dst, "stdout") ? 1 : 2;
		if (t.format == LOG_FMT_RFC3164)
			t.format = LOG_FMT_RAW;
	} else if (!strncmp(dst, "file@", 5)) {
		t.kind = LOG_T_FILE;
		t.path = arena_strdup(&cfg_arena, dst + 5);
		if (!t.path[0]) {
			cfg_err(c, "'log file@' expects a path");
			return ERR;
		}
		if (t.format == LOG_FMT_RFC3164)
			t.format = LOG_FMT_RAW;
	} else if (dst[0] == '/' || !strncmp(dst, "unix@", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&t.addr;
		const char *path = dst[0] == '/' ? dst : dst + 5;

		if (strlen(path) >= sizeof(un->sun_path)) {
			cfg_err(c, "log socket path too long: '%s'", path);
			return ERR;
		}
		t.kind = LOG_T_UNIX;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		t.addrlen = sizeof(*un);
		t.path = arena_strdup(&cfg_arena, path);
	} else if (!strncmp(dst, "ring@", 5) || !strncmp(dst, "fd@", 3)) {
		cfg_warn(c, "log target '%s' is not implemented; ignored", dst);
		return OK;
	} else {
		char *err = NULL;
		bool noport;
		const char *a = !strncmp(dst, "udp@", 4) ? dst + 4 : dst;

		if (cfg_parse_addr(a, &t.addr, &t.addrlen, true, &noport, &err)) {
			cfg_err(c, "log: %s", err);
			free(err);
			return ERR;
		}
		if (noport) {
			if (t.addr.ss_family == AF_INET)
				((struct sockaddr_in *)&t.addr)->sin_port = htons(514);
			else
				((struct sockaddr_in6 *)&t.addr)->sin6_port = htons(514);
		}
		t.kind = LOG_T_UDP;
	}
	lt->t = arena_grow(&cfg_arena, lt->t, (size_t)lt->n, (size_t)lt->n + 1, sizeof(t));
	lt->t[lt->n++] = t;
	return OK;
}

static size_t levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t prev = row[0], tmp;

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);

			tmp = row[j];
			row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1), prev + cost);
			prev = tmp;
		}
	}
	return row[lb];
}

const char *cfg_nearest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bestd = (size_t)-1, i;

	for (i = 0; i < n; i++) {
		size_t d = levenshtein(word, cands[i]);

		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	/* Only suggest something that is plausibly a typo. */
	if (best && bestd > MAX(2, strlen(word) / 2))
		return NULL;
	return best;
}

/* ---- the registry ---- */

#define CFG_MAX_MODULES 16

static const struct cfg_module *modules[CFG_MAX_MODULES];
static int nmodules;

void cfg_register(const struct cfg_module *m)
{
	REGISTER(modules, nmodules, m);
}

/* Sections that HAProxy knows and keel does not implement: accepted, with a warning, and skipped.
 * A module that implements one registers it (struct cfg_sect) and it leaves this list. */
static const char *const ignored_sections[] = {
	"peers", "resolvers", "mailers", "cache", "program", "ring", "http-errors",
};

static const char *sect_name(enum cfg_section s)
{
	switch (s) {
	case CFG_S_GLOBAL: return "global";
	case CFG_S_DEFAULTS: return "defaults";
	case CFG_S_FRONTEND: return "frontend";
	case CFG_S_BACKEND: return "backend";
	case CFG_S_LISTEN: return "listen";
	case CFG_S_USERLIST: return "userlist";
	case CFG_S_ACME: return "acme";
	default: return "ignored";
	}
}

static void suggest_unknown(struct cfg_ctx *c, const char *word)
{
	const char *cands[1024];
	const struct cfg_kw *k;
	const struct cfg_sect *sc;
	const char *near;
	size_t n = 0, i;
	int m;

	cands[n++] = "global";
	for (m = 0; m < nmodules; m++)
		for (sc = modules[m]->sections; sc && sc->name && n < ARRAY_SIZE(cands); sc++)
			cands[n++] = sc->name;
	for (i = 0; i < ARRAY_SIZE(ignored_sections); i++)
		cands[n++] = ignored_sections[i];
	for (m = 0; m < nmodules; m++)
		for (k = modules[m]->keywords; k && k->name && n < ARRAY_SIZE(cands); k++)
			if (k->sections & c->sect)
				cands[n++] = k->name;
	near = cfg_nearest(word, cands, n);
	if (near)
		cfg_err(c, "unknown keyword '%s' in '%s' section; did you mean '%s'?", word,
			sect_name(c->sect), near);
	else
		cfg_err(c, "unknown keyword '%s'", word);
}

/* Returns true when argv[0] opened a new section. */
static bool start_section(struct cfg_ctx *c, int argc, char **argv)
{
	const struct cfg_sect *sc;
	size_t i;
	int m;

	if (!strcmp(argv[0], "global")) {
		c->sect = CFG_S_GLOBAL;
		c->cur = NULL;
		return true;
	}
	for (m = 0; m < nmodules; m++)
		for (sc = modules[m]->sections; sc && sc->name; sc++)
			if (!strcmp(argv[0], sc->name)) {
				sc->open(c, argc, argv);
				return true;
			}
	for (i = 0; i < ARRAY_SIZE(ignored_sections); i++)
		if (!strcmp(argv[0], ignored_sections[i])) {
			c->sect = CFG_S_IGNORED;
			c->cur = NULL;
			cfg_warn(c, "'%s' sections are not implemented by keel yet; the section is ignored",
				 argv[0]);
			return true;
		}
	return false;
}

static void dispatch(struct cfg_ctx *c, int argc, char **argv)
{
	const struct cfg_kw *k;
	const char *kw = argv[0];
	bool found_elsewhere = false;
	int m;

	if (c->sect == CFG_S_IGNORED || c->sect == CFG_S_USERLIST)
		return;
	if (c->sect == CFG_S_NONE) {
		cfg_err(c, "'%s' outside of any section (expects global, defaults, frontend, backend or listen first)", kw);
		return;
	}
	if ((c->sect & CFG_S_PROXY) && !c->cur)
		return; /* the section header was invalid: already reported */
	for (m = 0; m < nmodules; m++) {
		for (k = modules[m]->keywords; k && k->name; k++) {
			/* The global section and the proxy sections have separate vocabularies: a
			 * proxy keyword in global is unknown there, not misplaced. */
			if (strcmp(k->name, kw) ||
			    !(k->sections & CFG_S_GLOBAL) != !(c->sect & CFG_S_GLOBAL))
				continue;
			if (!(k->sections & c->sect)) {
				found_elsewhere = true;
				continue;
			}
			if (k->flags & KW_UNIMPL) {
				cfg_warn(c, "'%s' is accepted but not implemented yet%s%s; it has no effect",
					 kw, k->why ? ": " : "", k->why ? k->why : "");
				return;
			}
			if (k->flags & KW_IGNORE)
				return;
			k->parse(c, argc, argv);
			return;
		}
	}
	if (found_elsewhere) {
		cfg_err(c, "'%s' is not allowed in a '%s' section", kw, sect_name(c->sect));
		return;
	}
	suggest_unknown(c, kw);
}

int cfg_need_args(struct cfg_ctx *c, int argc, char **argv, int n, const char *usage)
{
	if (argc < n + 1) {
		cfg_err(c, "'%s' expects %s", argv[0], usage);
		return ERR;
	}
	return OK;
}

static int load_text(const char *name, const char *text, size_t len)
{
	struct cfg_ctx c = {.file = name, .line = 0, .sect = CFG_S_NONE};
	char *argv[CFG_MAX_ARGS + 1];
	char *out = NULL;
	size_t outcap = 0;
	size_t pos = 0;
	int m;

	for (m = 0; m < nmodules; m++)
		if (modules[m]->begin)
			modules[m]->begin(&c);
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;
		const char *why = NULL;
		int argc;

		pos += ll + (nl ? 1 : 0);
		c.line++;
		/* Room for the line plus ${VAR} expansions. */
		if (ll + 65536 > outcap) {
			outcap = ll + 65536;
			out = xrealloc(out, outcap);
		}
		argc = cfg_tokenize(line, ll, out, outcap, argv, CFG_MAX_ARGS, &why);
		if (argc < 0) {
			cfg_err(&c, "%s", why);
			continue;
		}
		if (argc == 0)
			continue;
		argv[argc] = NULL;
		if (start_section(&c, argc, argv))
			continue;
		dispatch(&c, argc, argv);
	}
	free(out);
	if (!c.nerr)
		for (m = 0; m < nmodules; m++)
			if (modules[m]->parsed)
				modules[m]->parsed(&c);
	if (c.nerr) {
		if (!cfg_silent)
			fprintf(stderr, "[ALERT] %s: %d error(s), %d warning(s): configuration rejected\n",
				name, c.nerr, c.nwarn);
		return ERR;
	}
	/* Validation reports against the file, not the last line read. */
	c.line = 0;
	c.sect = CFG_S_NONE;
	c.cur = NULL;
	for (m = 0; m < nmodules; m++)
		if (modules[m]->check)
			modules[m]->check(&c);
	return c.nerr ? ERR : OK;
}

int cfg_load_string(const char *name, const char *text, size_t len)
{
	return load_text(name, text, len);
}

int cfg_load_file(const char *path)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	char *text;
	size_t n;
	int rc;

	if (!f) {
		cfg_alert("cannot open configuration file '%s': %s", path, strerror(errno));
		return ERR;
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
		cfg_alert("'%s' is not a regular file of at most 64 MB", path);
		fclose(f);
		return ERR;
	}
	text = xmalloc((size_t)st.st_size + 1);
	n = fread(text, 1, (size_t)st.st_size, f);
	fclose(f);
	rc = load_text(arena_strdup(&cfg_arena, path), text, n);
	free(text);
	return rc;
}

void cfg_reset(void)
{
	int m;

	/* The modules first: their resets free what hangs from objects in the arena (TLS
	 * contexts and ticket keys of bind lines). */
	for (m = 0; m < nmodules; m++)
		if (modules[m]->reset)
			modules[m]->reset();
	arena_free(&cfg_arena);
}
