/* Shared vocabulary: status codes, assertions and small helpers used by every module. */
#ifndef KEEL_COMMON_H
#define KEEL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define KEEL_VERSION "0.1.0"

/* The one status vocabulary: functions return OK, ERR or AGAIN; I/O functions return bytes done. */
#define OK 0
#define ERR (-1)
#define AGAIN (-2)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A macro's value as a string literal ("64" for KEEL_MAX_THREADS). */
#define KEEL_STR(x) KEEL_STR_(x)
#define KEEL_STR_(x) #x
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* BUG_ON() guards impossible states. It is always on: a balancer that keeps running in a state its
 * authors proved impossible is worse than one that stops and gets restarted. */
#define BUG_ON(cond)                                                                               \
	do {                                                                                       \
		if (unlikely(cond))                                                                \
			keel_bug(__FILE__, __LINE__, #cond);                                       \
	} while (0)

_Noreturn void keel_bug(const char *file, int line, const char *cond);

/* Appends item to the array tab, whose first n entries are in use, unless it is there already:
 * the registries that modules fill at start (keywords, hooks, services). A full one is a bug,
 * their sizes are constants of the code, not of the configuration. */
#define REGISTER(tab, n, item)                                                                     \
	do {                                                                                       \
		int reg_i_ = 0;                                                                    \
		while (reg_i_ < (n) && (tab)[reg_i_] != (item))                                    \
			reg_i_++;                                                                  \
		if (reg_i_ == (n)) {                                                               \
			BUG_ON((n) == (int)ARRAY_SIZE(tab));                                       \
			(tab)[(n)++] = (item);                                                     \
		}                                                                                  \
	} while (0)

/* The value of a hexadecimal digit, or -1: any byte, whatever the locale. */
static inline int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Allocation failures at config time are fatal; at run time callers use plain malloc and handle NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Formats into a freshly malloc'd string (used for error messages returned through char **err). */
char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct sockaddr_storage;
/* The port of an IPv4/IPv6 address in host order (0 for other families), and setting it. */
int sockaddr_port(const struct sockaddr_storage *ss);
void sockaddr_set_port(struct sockaddr_storage *ss, int port);

#endif
