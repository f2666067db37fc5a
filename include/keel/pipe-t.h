/* Kernel pipe types for splice(2) (include/keel/pipe.h). */
#ifndef KEEL_PIPE_T_H
#define KEEL_PIPE_T_H

#include <stdint.h>

struct kpipe {
	int rd, wr;	    /* read and write ends, non-blocking */
	uint32_t len;	    /* bytes in the pipe (the splices in minus the splices out) */
	struct kpipe *next; /* in the loop's cache */
};

/* What a pipe holds at most, in bytes: the kernel's default pipe size (16 pages). */
#define PIPE_CAP (16u * 4096u)

#endif
