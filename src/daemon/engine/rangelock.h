/* Exclusive locks on ranges of chunks [first, last]. A holder of a range
 * excludes every overlapping range; disjoint ranges proceed in parallel.
 * Used by client writes and resync copies (replication.md, R1). A thread
 * holds at most one range at a time, so there is no lock-order problem
 * between ranges. */
#ifndef EVSREP_ENGINE_RANGELOCK_H
#define EVSREP_ENGINE_RANGELOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct rl_range {
        uint64_t first, last;
};

struct rangelock {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct rl_range *held;
        size_t n, cap;
        unsigned waiters;
};

int rangelock_init(struct rangelock *rl);
void rangelock_destroy(struct rangelock *rl);
/* Block until [first, last] overlaps no held range, then hold it.
 * Returns 0 or -ENOMEM. */
int rangelock_acquire(struct rangelock *rl, uint64_t first, uint64_t last);
/* Non-blocking: 0 when acquired, -EBUSY when it overlaps a held range. */
int rangelock_try(struct rangelock *rl, uint64_t first, uint64_t last);
void rangelock_release(struct rangelock *rl, uint64_t first, uint64_t last);
/* Number of ranges held now (tests, asserts). */
size_t rangelock_held(struct rangelock *rl);

#endif
