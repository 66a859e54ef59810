/* In-memory dirty bitmap: one bit per chunk. Not thread-safe: the mirror
 * serialises access with its mutex. Persistence is meta.c's job.
 *
 * Layout matches the meta file's bitmap area: bit i is bit (i % 64) of
 * 64-bit word i / 64. Bits past nbits in the last word are always zero. */
#ifndef EVSREP_ENGINE_BITMAP_H
#define EVSREP_ENGINE_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

struct bitmap {
        uint64_t *words;
        uint64_t nbits;
        uint64_t nset; /* number of set bits, kept exact */
};

static inline uint64_t bitmap_nwords(uint64_t nbits)
{
        return (nbits + 63) / 64;
}

int bitmap_init(struct bitmap *bm, uint64_t nbits);
void bitmap_free(struct bitmap *bm);
/* Grow to nbits (never shrinks); the new bits are clear. */
int bitmap_grow(struct bitmap *bm, uint64_t nbits);
/* Recount nset after words were loaded from disk (and clear bits past nbits). */
void bitmap_recount(struct bitmap *bm);

bool bitmap_test(const struct bitmap *bm, uint64_t bit);
/* Set / clear [first, first + count) (clamped to nbits). Return how many bits
 * changed. */
uint64_t bitmap_set_range(struct bitmap *bm, uint64_t first, uint64_t count);
uint64_t bitmap_clear_range(struct bitmap *bm, uint64_t first, uint64_t count);
/* Number of set bits in [first, first + count). */
uint64_t bitmap_count_range(const struct bitmap *bm, uint64_t first, uint64_t count);
/* First set (clear) bit at or after from, or nbits when none. */
uint64_t bitmap_next_set(const struct bitmap *bm, uint64_t from);
uint64_t bitmap_next_clear(const struct bitmap *bm, uint64_t from);
/* First clear bit in [from, end), or end when there is none (end clamped to
 * nbits). Reads at most the words of that range: a batch of a resync asks
 * for the end of a dirty run no longer than the batch, and an unbounded
 * bitmap_next_clear on an all-dirty bitmap (an initial sync) read every word
 * to the end for every batch, quadratic in the volume size (bench/scale.sh,
 * "size": 95% of a 16 TiB pair's creation). */
uint64_t bitmap_next_clear_before(const struct bitmap *bm, uint64_t from, uint64_t end);

#endif
