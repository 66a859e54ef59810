/* The idempotent pause's memo (docs/design/control-plane.md "The
 * idempotent pause on the pool thread"): the part of the "already paused,
 * nothing to do" decision that comes from store rows (the group is the
 * project's, its status is the pause's target, the pause is allowed with
 * its members' statuses, which pairs are members), kept with the state
 * generation read before those rows were read (common/replygen.h). While
 * the generation has not moved, the same reads would give the same rows,
 * so the pool thread skips them; the members' locks and mirror modes are
 * still read at every request, as before.
 *
 * A small direct-mapped table under one mutex (a leaf: held only to copy
 * an entry in or out). */
#ifndef EVSREP_SERVICE_PAUSE_MEMO_H
#define EVSREP_SERVICE_PAUSE_MEMO_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pause_memo;

struct pause_memo *pause_memo_new(void);
void pause_memo_free(struct pause_memo *pm);

/* true when (project, group_id) was memoised at generation gen: its max
 * or fewer member ids copied to ids, their count to *n. */
bool pause_memo_get(struct pause_memo *pm, const char *project, const char *group_id, uint64_t gen,
                    char (*ids)[STORE_ID_LEN], size_t max, size_t *n);
/* Inline pauses holding stripe k now (k: the stripe's index): another one
 * that finds the stripe locked waits for them (microseconds) instead of
 * giving up, as GETs do for a pair's lock (pairs.c, live_readers). */
void pause_memo_hold(struct pause_memo *pm, size_t k, int delta);
int pause_memo_holders(struct pause_memo *pm, size_t k);
/* Remember that the store's part held at generation gen (read before the
 * rows were), with these n member ids. */
void pause_memo_put(struct pause_memo *pm, const char *project, const char *group_id, uint64_t gen,
                    const char (*ids)[STORE_ID_LEN], size_t n);

#endif
