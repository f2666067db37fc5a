/* Kernel pipes for splice(2): a response body can go from the server socket to the client socket
 * through a pipe without being copied to user space (docs/configuration.md, "Splicing";
 * docs/internals/architecture.md, "Buffers"). A pipe belongs to one transaction while it holds its
 * bytes; empty pipes are kept in a small per-thread cache. The number of pipes in the process is
 * capped by "maxpipes": each one costs two file descriptors. */
#ifndef KEEL_PIPE_H
#define KEEL_PIPE_H

#include <stdbool.h>

#include <keel/pipe-t.h>

struct loop;

/* An empty pipe from the thread's cache or a new one. Returns NULL when maxpipes pipes exist,
 * or descriptors or memory are short: the caller then copies through its buffer instead. */
struct kpipe *pipe_get(void);
/* Gives p back: an empty pipe goes to the cache, one holding bytes (an aborted transfer) is
 * closed. NULL is ignored. */
void pipe_put(struct kpipe *p);
/* Closes the pipes cached by l (at worker exit). */
void pipe_flush(struct loop *l);
/* The cap on pipes in the process, in use or cached ("maxpipes", default maxconn / 4). */
int pipe_max(void);
/* File descriptors the pipes may need at most: 0 unless splicing (a proxy asks for splice(2)),
 * for the descriptor limit raised at start, before maxconn is final (an unset maxconn counts as
 * 100000). */
int pipe_fds_wanted(bool splicing);

#endif
