/* Statistics types (include/keel/stats.h). */
#ifndef KEEL_STATS_T_H
#define KEEL_STATS_T_H

#include <stdint.h>

/* The per-thread counters of a proxy or server, summed (relaxed reads: each cell is a
 * snapshot, the sum is not atomic as a whole, which is fine for monotonic counters). */
struct stats_sums {
	uint64_t conn_tot, req_tot, rsp[6], bytes_in, bytes_out, denied_req, failed_req;
	uint64_t failed_conn, failed_rsp, retries, redispatches, timeouts, queued_tot;
	uint64_t queue_timeouts, cli_aborts, srv_aborts, sticky_moves;
	uint64_t reclaim_idle, reclaim_heads;
};

#endif
