/* Loading configuration text in unit tests: quietly (load), or with the messages printed on
 * stderr captured (load_msgs), for tests that check a warning or an error's wording. Including
 * it registers keel's modules (their keywords) before the first test runs, as main() does. */
#ifndef KEEL_TEST_CFGLOAD_H
#define KEEL_TEST_CFGLOAD_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/modules.h>

__attribute__((constructor)) static void cfgload_register_modules(void)
{
	keel_modules_register();
}

static inline int load(const char *text)
{
	cfg_reset();
	cfg_silent = true;
	return cfg_load_string("test.cfg", text, strlen(text));
}

/* Loads with messages on; what was printed on stderr goes to out (cap bytes, NUL-terminated). */
static inline int load_msgs(const char *text, char *out, size_t cap)
{
	FILE *tmp = tmpfile();
	int saved, rc;
	size_t n;

	out[0] = '\0';
	if (!tmp)
		return load(text);
	fflush(stderr);
	saved = dup(2);
	dup2(fileno(tmp), 2);
	cfg_reset();
	cfg_silent = false;
	rc = cfg_load_string("test.cfg", text, strlen(text));
	cfg_silent = true;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, cap - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return rc;
}

#endif
