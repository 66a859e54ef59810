/* Dirty bitmap arithmetic. See bitmap.h. */
#include "engine/bitmap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bitmap_init(struct bitmap *bm, uint64_t nbits)
{
        uint64_t nw = bitmap_nwords(nbits);

        memset(bm, 0, sizeof(*bm));
        bm->words = calloc(nw ? nw : 1, sizeof(uint64_t));
        if (!bm->words)
                return -ENOMEM;
        bm->nbits = nbits;
        return 0;
}

void bitmap_free(struct bitmap *bm)
{
        free(bm->words);
        memset(bm, 0, sizeof(*bm));
}

int bitmap_grow(struct bitmap *bm, uint64_t nbits)
{
        uint64_t old_nw = bitmap_nwords(bm->nbits), nw = bitmap_nwords(nbits);
        uint64_t *w;

        if (nbits <= bm->nbits)
                return 0;
        if (nw > old_nw) {
                w = realloc(bm->words, nw * sizeof(uint64_t));
                if (!w)
                        return -ENOMEM;
                memset(w + old_nw, 0, (nw - old_nw) * sizeof(uint64_t));
                bm->words = w;
        }
        bm->nbits = nbits; /* bits past the old end were kept zero */
        return 0;
}

void bitmap_recount(struct bitmap *bm)
{
        uint64_t nw = bitmap_nwords(bm->nbits), n = 0;

        if (bm->nbits % 64)
                bm->words[nw - 1] &= (1ULL << (bm->nbits % 64)) - 1;
        for (uint64_t i = 0; i < nw; i++)
                n += (uint64_t)__builtin_popcountll(bm->words[i]);
        bm->nset = n;
}

bool bitmap_test(const struct bitmap *bm, uint64_t bit)
{
        if (bit >= bm->nbits)
                return false;
        return (bm->words[bit / 64] >> (bit % 64)) & 1;
}

/* Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64. */
static uint64_t mask(unsigned lo, unsigned hi)
{
        uint64_t m = hi == 64 ? ~0ULL : (1ULL << hi) - 1;
        return m & ~((1ULL << lo) - 1);
}

/* Apply op to [first, first+count) word by word; returns bits changed. */
static uint64_t walk(struct bitmap *bm, uint64_t first, uint64_t count, int op)
{
        uint64_t end, changed = 0;

        if (first >= bm->nbits || count == 0)
                return 0;
        end = count > bm->nbits - first ? bm->nbits : first + count;
        while (first < end) {
                uint64_t wi = first / 64;
                unsigned lo = first % 64;
                unsigned hi = (end - wi * 64) >= 64 ? 64 : (unsigned)(end - wi * 64);
                uint64_t m = mask(lo, hi), w = bm->words[wi];

                switch (op) {
                case 0: /* set */
                        changed += (uint64_t)__builtin_popcountll(~w & m);
                        bm->words[wi] = w | m;
                        break;
                case 1: /* clear */
                        changed += (uint64_t)__builtin_popcountll(w & m);
                        bm->words[wi] = w & ~m;
                        break;
                default: /* count */
                        changed += (uint64_t)__builtin_popcountll(w & m);
                        break;
                }
                first = wi * 64 + hi;
        }
        return changed;
}

uint64_t bitmap_set_range(struct bitmap *bm, uint64_t first, uint64_t count)
{
        uint64_t n = walk(bm, first, count, 0);

        bm->nset += n;
        assert(bm->nset <= bm->nbits);
        return n;
}

uint64_t bitmap_clear_range(struct bitmap *bm, uint64_t first, uint64_t count)
{
        uint64_t n = walk(bm, first, count, 1);

        assert(bm->nset >= n);
        bm->nset -= n;
        return n;
}

uint64_t bitmap_count_range(const struct bitmap *bm, uint64_t first, uint64_t count)
{
        return walk((struct bitmap *)bm, first, count, 2);
}

static uint64_t next(const struct bitmap *bm, uint64_t from, bool set)
{
        uint64_t nw = bitmap_nwords(bm->nbits);

        if (from >= bm->nbits)
                return bm->nbits;
        for (uint64_t wi = from / 64; wi < nw; wi++) {
                uint64_t w = set ? bm->words[wi] : ~bm->words[wi];

                if (wi == from / 64)
                        w &= ~0ULL << (from % 64);
                if (w) {
                        uint64_t bit = wi * 64 + (uint64_t)__builtin_ctzll(w);
                        return bit < bm->nbits ? bit : bm->nbits;
                }
        }
        return bm->nbits;
}

uint64_t bitmap_next_set(const struct bitmap *bm, uint64_t from)
{
        return next(bm, from, true);
}

uint64_t bitmap_next_clear(const struct bitmap *bm, uint64_t from)
{
        return next(bm, from, false);
}

uint64_t bitmap_next_clear_before(const struct bitmap *bm, uint64_t from, uint64_t end)
{
        if (end > bm->nbits)
                end = bm->nbits;
        if (from >= end)
                return end;
        for (uint64_t wi = from / 64; wi <= (end - 1) / 64; wi++) {
                uint64_t w = ~bm->words[wi];

                if (wi == from / 64)
                        w &= ~0ULL << (from % 64);
                if (w) {
                        uint64_t bit = wi * 64 + (uint64_t)__builtin_ctzll(w);
                        return bit < end ? bit : end;
                }
        }
        return end;
}
