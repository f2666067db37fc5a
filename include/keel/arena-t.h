/* Arena types (include/keel/arena.h). */
#ifndef KEEL_ARENA_T_H
#define KEEL_ARENA_T_H

struct arena_block;
struct arena_cleanup;

struct arena {
	struct arena_block *blocks;
	struct arena_cleanup *cleanups;
};

#endif
