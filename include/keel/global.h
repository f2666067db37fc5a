/* The global section (src/cfg/global.c): process-wide settings and their keywords. */
#ifndef KEEL_GLOBAL_H
#define KEEL_GLOBAL_H

#include <keel/cfg-t.h>
#include <keel/global-t.h>

extern struct global global;

/* The global section's keywords (registered at start, src/process/modules.c). */
extern const struct cfg_module global_module;

#endif
