/* Growable output string types (include/keel/sbuf.h). */
#ifndef KEEL_SBUF_T_H
#define KEEL_SBUF_T_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char *p;      /* NUL-terminated when len > 0; owned, free() it */
	size_t len, cap;
	bool oom;
};

#endif
