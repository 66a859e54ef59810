/* Activity log, in-memory part: which extents are hot (may have a mirrored
 * write in flight), with a reference count per extent and LRU replacement.
 * Pure bookkeeping, no I/O and no locking: the mirror calls it under its meta
 * I/O mutex and writes the block (meta.c) whenever the set changes.
 * See replication.md, invariant A1. */
#ifndef EVSREP_ENGINE_ACTLOG_H
#define EVSREP_ENGINE_ACTLOG_H

#include <stdbool.h>
#include <stdint.h>

#define AL_MAX_SLOTS 505 /* what fits in one 4 KiB AL block */
#define AL_NONE      UINT64_MAX

struct al_slot {
        uint64_t extent; /* AL_NONE when free */
        uint32_t refs;   /* writes in flight in this extent */
        uint64_t used;   /* LRU tick of the last reference */
};

struct actlog {
        struct al_slot slots[AL_MAX_SLOTS];
        unsigned nslots; /* capacity in use, 1..AL_MAX_SLOTS */
        uint64_t tick;
};

void actlog_init(struct actlog *al, unsigned nslots);
/* Take a reference when extent is hot: true. False when it is not hot. */
bool actlog_ref(struct actlog *al, uint64_t extent);
/* Make extent hot with one reference. Returns the slot used (>= 0) and sets
 * *evicted to the extent that slot held (AL_NONE if it was free), or -EAGAIN
 * when every slot has writes in flight. extent must not be hot already. */
int actlog_insert(struct actlog *al, uint64_t extent, uint64_t *evicted);
/* Undo an insert whose AL write failed: slot goes back to holding old
 * (AL_NONE: free) with no reference, when it still holds extent with only
 * the inserter's reference; else the reference is just dropped. */
void actlog_undo_insert(struct actlog *al, int slot, uint64_t extent, uint64_t old);
/* Drop one reference (extent must be hot with refs > 0). */
void actlog_unref(struct actlog *al, uint64_t extent);
bool actlog_hot(const struct actlog *al, uint64_t extent);
/* Copy the hot extents into out (>= AL_MAX_SLOTS entries); returns how many. */
unsigned actlog_extents(const struct actlog *al, uint64_t *out);
/* Forget every extent (all refs must be 0). */
void actlog_clear(struct actlog *al);

#endif
