/* Durability work kept out of the group fence (design:
 * docs/design/replication.md, "What a pause answer waits for" and
 * "Reverse and failover: flush before the fence").
 *
 * A pause hands each switched member to its own settle thread
 * (mirror_settle_start, mirror.h) and answers; a swap flushes every member
 * in parallel before raising its fences, so the flushes inside the fence
 * only write what arrived in between. */
#ifndef EVSREP_ENGINE_SETTLE_H
#define EVSREP_ENGINE_SETTLE_H

#include "engine/fence.h"

#include <stdbool.h>
#include <stddef.h>

/* For every member with a mirror, all at once: join its settle, stop its
 * resync worker, flush production, and (dr) the DR link. Errors are not
 * returned: the fenced preflight flushes again and decides. No fence may be
 * raised by the caller. */
void settle_preflush(const struct fence_member *fm, size_t n, bool dr);

#endif
