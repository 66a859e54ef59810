/* The resync worker's side of the group throttle (throttle.h): after each
 * batch, charge the group's bucket with what the batch copied and the client
 * write latency seen on this member's production disk since the last batch,
 * then wait as long as the bucket says (docs/design/replication.md "Resync
 * throttle"). A pair in no group is not throttled. */
#include "engine/internal.h"
#include "engine/throttle.h"

void resync_pace(struct mirror *m, uint64_t data_bytes, uint64_t sync_bytes)
{
        /* Worker-thread state: only this member's worker reads the counters
         * through here, and one worker runs per mirror. */
        struct throttle *t = fence_group_throttle(m);
        uint64_t lat = atomic_load(&m->wlat_usec), n = atomic_load(&m->wlat_n);
        uint64_t dl = lat - atomic_exchange(&m->wlat_seen_usec, lat);
        uint64_t dn = n - atomic_exchange(&m->wlat_seen_n, n);

        if (t)
                throttle_pace(t, data_bytes, sync_bytes, dl, dn, &m->worker_stop);
}
