/* Configuration reader: splits the file into lines and arguments, tracks sections and dispatches
 * each line to the keyword table of its section. */
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

struct global global;
struct list keel_proxies = LIST_HEAD_INIT(keel_proxies);
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

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
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

static const char *const section_names[] = {
	"global", "defaults", "frontend", "backend", "listen", "userlist",
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
	default: return "ignored";
	}
}

static void suggest_unknown(struct cfg_ctx *c, const char *word)
{
	const char *cands[512];
	const struct cfg_kw *tab = c->sect == CFG_S_GLOBAL ? cfg_kw_global : cfg_kw_proxy;
	const char *near;
	size_t n = 0, i;

	for (i = 0; i < ARRAY_SIZE(section_names); i++)
		cands[n++] = section_names[i];
	for (i = 0; tab[i].name && n < ARRAY_SIZE(cands); i++)
		if (tab[i].sections & c->sect)
			cands[n++] = tab[i].name;
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
	const char *kw = argv[0];
	unsigned cap = 0;
	enum cfg_section s;

	if (!strcmp(kw, "global")) {
		c->sect = CFG_S_GLOBAL;
		c->cur = NULL;
		return true;
	}
	if (!strcmp(kw, "defaults")) {
		c->sect = CFG_S_DEFAULTS;
		/* Each defaults section starts from scratch and applies to the proxies that follow. */
		c->defaults = arena_alloc(&cfg_arena, sizeof(*c->defaults));
		cfg_init_defaults(c->defaults);
		c->defaults->name = arena_strdup(&cfg_arena, argc > 1 ? argv[1] : "");
		c->cur = c->defaults;
		if (argc > 2 && strcmp(argv[2], "from"))
			cfg_warn(c, "defaults: extra arguments after the name are ignored");
		return true;
	}
	if (!strcmp(kw, "frontend")) {
		s = CFG_S_FRONTEND;
		cap = PR_CAP_FE;
	} else if (!strcmp(kw, "backend")) {
		s = CFG_S_BACKEND;
		cap = PR_CAP_BE;
	} else if (!strcmp(kw, "listen")) {
		s = CFG_S_LISTEN;
		cap = PR_CAP_FE | PR_CAP_BE;
	} else if (!strcmp(kw, "userlist")) {
		c->sect = CFG_S_USERLIST;
		c->cur = NULL;
		cfg_warn(c, "'userlist' sections are not implemented yet; its users are ignored (use 'stats auth USER:PASS')");
		return true;
	} else {
		size_t i;

		for (i = 6; i < ARRAY_SIZE(section_names); i++)
			if (!strcmp(kw, section_names[i])) {
				c->sect = CFG_S_IGNORED;
				c->cur = NULL;
				cfg_warn(c, "'%s' sections are not implemented by keel yet; the section is ignored", kw);
				return true;
			}
		return false;
	}
	c->sect = s;
	if (argc < 2) {
		cfg_err(c, "'%s' needs a name", kw);
		c->cur = NULL;
		c->sect = CFG_S_IGNORED;
		return true;
	}
	c->cur = cfg_new_proxy(c, argv[1], cap);
	/* The old "listen NAME ADDR:PORT" form carries its bind address on the section line. */
	if (c->cur && argc > 2) {
		if (s != CFG_S_FRONTEND && s != CFG_S_LISTEN) {
			cfg_err(c, "'%s %s': unexpected argument '%s'", kw, argv[1], argv[2]);
		} else {
			char *bargv[3] = {"bind", argv[2], NULL};
			const struct cfg_kw *k;

			for (k = cfg_kw_proxy; k->name; k++)
				if (!strcmp(k->name, "bind"))
					k->parse(c, 2, bargv);
			if (argc > 3)
				cfg_warn(c, "'%s %s': arguments after the address are ignored", kw, argv[1]);
		}
	}
	return true;
}

static void dispatch(struct cfg_ctx *c, int argc, char **argv)
{
	const struct cfg_kw *tab = c->sect == CFG_S_GLOBAL ? cfg_kw_global : cfg_kw_proxy;
	const struct cfg_kw *k;
	const char *kw = argv[0];
	bool found_elsewhere = false;

	if (c->sect == CFG_S_IGNORED || c->sect == CFG_S_USERLIST)
		return;
	if (c->sect == CFG_S_NONE) {
		cfg_err(c, "'%s' outside of any section (expects global, defaults, frontend, backend or listen first)", kw);
		return;
	}
	if (c->sect != CFG_S_GLOBAL && !c->cur)
		return; /* the section header was invalid: already reported */
	for (k = tab; k->name; k++) {
		if (strcmp(k->name, kw))
			continue;
		if (!(k->sections & c->sect)) {
			found_elsewhere = true;
			continue;
		}
		if (k->flags & KW_UNIMPL) {
			cfg_warn(c, "'%s' is accepted but not implemented yet%s%s; it has no effect", kw,
				 k->why ? ": " : "", k->why ? k->why : "");
			return;
		}
		if (k->flags & KW_IGNORE)
			return;
		k->parse(c, argc, argv);
		return;
	}
	if (found_elsewhere) {
		cfg_err(c, "'%s' is not allowed in a '%s' section", kw, sect_name(c->sect));
		return;
	}
	suggest_unknown(c, kw);
}

static int load_text(const char *name, const char *text, size_t len)
{
	struct cfg_ctx c = {.file = name, .line = 0, .sect = CFG_S_NONE};
	char *argv[CFG_MAX_ARGS + 1];
	char *out = NULL;
	size_t outcap = 0;
	size_t pos = 0;
	int rc;

	cfg_global_defaults();
	global.file = name;
	c.defaults = arena_alloc(&cfg_arena, sizeof(*c.defaults));
	cfg_init_defaults(c.defaults);
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
	if (!c.nerr && list_empty(&keel_proxies)) {
		cfg_err(&c, "no frontend, backend or listen section: nothing to do");
	}
	if (c.nerr) {
		if (!cfg_silent)
			fprintf(stderr, "[ALERT] %s: %d error(s), %d warning(s): configuration rejected\n",
				name, c.nerr, c.nwarn);
		return ERR;
	}
	rc = cfg_validate();
	return rc;
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
	arena_free(&cfg_arena);
	memset(&global, 0, sizeof(global));
	list_init(&keel_proxies);
}
