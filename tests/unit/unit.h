/* A tiny unit test harness: no framework, one header.
 *
 *	#include "unit.h"
 *
 *	TEST(adds) {
 *		CHECK(1 + 1 == 2);
 *		CHECK_EQ_INT(add(2, 2), 4);
 *		CHECK_STR(name(), "keel");
 *	}
 *
 *	UNIT_RUN()
 *
 * TEST() registers the function from a constructor, so tests run in the order of the file. A failed
 * check prints "file:line: test: what failed" and the test goes on; the binary ends with exactly
 * "N passed, N failed" (counting tests) and exits 1 when a test failed. Every CHECK* is an
 * expression that yields whether it held, so a test can stop early: if (!CHECK(p)) return;
 * Arguments on the command line run only the tests of those names (known-bug tests included). */
#ifndef KEEL_UNIT_H
#define KEEL_UNIT_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNIT_MAX_TESTS 1024

struct unit_test {
	const char *name;
	void (*fn)(void);
	bool known_bug;
};

static struct unit_test unit_tests[UNIT_MAX_TESTS];
static int unit_ntests;
static const char *unit_cur;  /* test being run */
static int unit_cur_failures; /* failed checks in the current test */

static inline void unit_register(const char *name, void (*fn)(void), bool known_bug)
{
	if (unit_ntests >= UNIT_MAX_TESTS) {
		fprintf(stderr, "unit.h: more than %d tests in one file\n", UNIT_MAX_TESTS);
		exit(2);
	}
	unit_tests[unit_ntests].name = name;
	unit_tests[unit_ntests].fn = fn;
	unit_tests[unit_ntests].known_bug = known_bug;
	unit_ntests++;
}

#define UNIT_DEFINE(name, bug)                                                                     \
	static void unit_test_##name(void);                                                        \
	__attribute__((constructor)) static void unit_register_##name(void)                        \
	{                                                                                          \
		unit_register(#name, unit_test_##name, bug);                                       \
	}                                                                                          \
	static void unit_test_##name(void)

#define TEST(name) UNIT_DEFINE(name, false)
/* A test that shows a known, reported bug of the code under test: skipped (and not counted)
 * unless UNIT_KNOWN_BUGS=1 is set in the environment, so the suite stays green while the bug is
 * open. When the bug is fixed, the test passes with UNIT_KNOWN_BUGS=1: make it a TEST. */
#define TEST_BUG(name) UNIT_DEFINE(name, true)

__attribute__((format(printf, 3, 4))) static inline bool unit_fail(const char *file, int line,
								   const char *fmt, ...)
{
	va_list ap;

	unit_cur_failures++;
	printf("%s:%d: %s: ", file, line, unit_cur ? unit_cur : "?");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return false;
}

static inline bool unit_check(bool ok, const char *file, int line, const char *expr)
{
	return ok ? true : unit_fail(file, line, "CHECK(%s) failed", expr);
}

static inline bool unit_check_int(long long a, long long b, const char *ea, const char *eb,
				  const char *file, int line)
{
	if (a == b)
		return true;
	return unit_fail(file, line, "CHECK_EQ_INT(%s, %s) failed: %lld != %lld", ea, eb, a, b);
}

static inline bool unit_check_u64(uint64_t a, uint64_t b, const char *ea, const char *eb,
				  const char *file, int line)
{
	if (a == b)
		return true;
	return unit_fail(file, line, "CHECK_EQ_U64(%s, %s) failed: %" PRIu64 " != %" PRIu64, ea, eb,
			 a, b);
}

static inline bool unit_check_str(const char *a, const char *b, const char *ea, const char *eb,
				  const char *file, int line)
{
	if ((!a && !b) || (a && b && !strcmp(a, b)))
		return true;
	return unit_fail(file, line, "CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"", ea, eb,
			 a ? a : "(null)", b ? b : "(null)");
}

/* A (pointer, length) view against a C string. */
static inline bool unit_check_strn(const char *a, size_t alen, const char *b, const char *ea,
				   const char *eb, const char *file, int line)
{
	if (a && b && alen == strlen(b) && !memcmp(a, b, alen))
		return true;
	return unit_fail(file, line, "CHECK_STRN(%s, %s) failed: \"%.*s\" != \"%s\"", ea, eb,
			 a ? (int)alen : 6, a ? a : "(null)", b ? b : "(null)");
}

#define CHECK(cond) unit_check(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(a, b)                                                                         \
	unit_check_int((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_EQ_U64(a, b) unit_check_u64((uint64_t)(a), (uint64_t)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(a, b) unit_check_str((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_STRN(p, len, s) unit_check_strn((p), (size_t)(len), (s), #p, #s, __FILE__, __LINE__)
/* Records a failure with a formatted message. */
#define FAIL(...) unit_fail(__FILE__, __LINE__, __VA_ARGS__)

static inline bool unit_selected(int argc, char **argv, const char *name)
{
	int i;

	if (argc < 2)
		return true;
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

/* Known bugs may crash: run them in a child so that the other tests still report. */
static inline void unit_run_isolated(void (*fn)(void))
{
	pid_t pid;
	int st;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == -1) {
		fn();
		return;
	}
	if (pid == 0) {
		fn();
		fflush(stdout);
		_exit(unit_cur_failures ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (WIFSIGNALED(st))
			unit_fail(__FILE__, __LINE__, "crashed with signal %d", WTERMSIG(st));
		else if (WIFEXITED(st) && WEXITSTATUS(st) != 1)
			unit_fail(__FILE__, __LINE__, "child exited with status %d",
				  WEXITSTATUS(st));
		else
			unit_cur_failures++; /* the child printed its failed checks */
	}
}

static inline int unit_main(int argc, char **argv)
{
	int i, passed = 0, failed = 0, skipped = 0;
	const char *kb = getenv("UNIT_KNOWN_BUGS");
	bool run_bugs = kb && *kb && strcmp(kb, "0");

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < unit_ntests; i++) {
		if (!unit_selected(argc, argv, unit_tests[i].name))
			continue;
		if (unit_tests[i].known_bug && !run_bugs && argc < 2) {
			skipped++;
			continue;
		}
		unit_cur = unit_tests[i].name;
		unit_cur_failures = 0;
		if (getenv("UNIT_VERBOSE"))
			fprintf(stderr, "running %s\n", unit_cur);
		if (unit_tests[i].known_bug)
			unit_run_isolated(unit_tests[i].fn);
		else
			unit_tests[i].fn();
		if (unit_cur_failures)
			failed++;
		else
			passed++;
		if (unit_tests[i].known_bug)
			fprintf(stderr, "known-bug test %s: %s\n", unit_cur,
				unit_cur_failures ? "still fails" : "PASSES now: make it a TEST");
	}
	unit_cur = NULL;
	if (skipped)
		fprintf(stderr, "%d known-bug test(s) skipped (UNIT_KNOWN_BUGS=1 runs them)\n",
			skipped);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define UNIT_RUN()                                                                                 \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return unit_main(argc, argv);                                                      \
	}

#endif
