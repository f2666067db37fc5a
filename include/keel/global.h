/* The global section (src/cfg/global.c): process-wide settings and their keywords. */
#ifndef KEEL_GLOBAL_H
#define KEEL_GLOBAL_H

#include <keel/global-t.h>

extern struct global global;

/* Registers the global section's keywords with the configuration loader. */
void global_register(void);

#endif
