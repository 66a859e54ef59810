/* Unit tests of the engine's in-memory dirty bitmap (engine/bitmap.h): random
 * operation sequences checked against a naive model (one bool per bit), exact
 * nset after every operation, clamping at nbits, recount and grow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/bitmap.h"

static const uint64_t sizes[] = {1, 2, 63, 64, 65, 127, 128, 129, 1000, 4097};

struct model {
        bool *bits;
        uint64_t nbits;
        uint64_t cap;
};

static uint64_t rnd(uint64_t n)
{
        uint64_t r = ((uint64_t)random() << 31) ^ (uint64_t)random();

        return n ? r % n : 0;
}

static void model_init(struct model *md, uint64_t nbits, uint64_t cap)
{
        md->bits = calloc(cap, sizeof(bool));
        assert_non_null(md->bits);
        md->nbits = nbits;
        md->cap = cap;
}

static uint64_t model_count(const struct model *md, uint64_t first, uint64_t count)
{
        uint64_t n = 0;

        for (uint64_t i = first; i < md->nbits && i - first < count; i++)
                n += md->bits[i];
        return n;
}

static uint64_t model_fill(struct model *md, uint64_t first, uint64_t count, bool v)
{
        uint64_t n = 0;

        for (uint64_t i = first; i < md->nbits && i - first < count; i++) {
                if (md->bits[i] != v) {
                        md->bits[i] = v;
                        n++;
                }
        }
        return n;
}

static uint64_t model_next(const struct model *md, uint64_t from, bool v)
{
        for (uint64_t i = from; i < md->nbits; i++)
                if (md->bits[i] == v)
                        return i;
        return md->nbits;
}

/* Full comparison: nbits, nset, every bit, and the padding of the last word. */
static void check_equal(const struct bitmap *bm, const struct model *md)
{
        uint64_t nw = bitmap_nwords(bm->nbits);

        assert_int_equal(bm->nbits, md->nbits);
        assert_int_equal(bm->nset, model_count(md, 0, md->nbits));
        for (uint64_t i = 0; i < md->nbits; i++) {
                bool w = (bm->words[i / 64] >> (i % 64)) & 1;

                if (w != md->bits[i] || bitmap_test(bm, i) != md->bits[i])
                        fail_msg("bit %llu: word %d test %d model %d", (unsigned long long)i, w,
                                 bitmap_test(bm, i), md->bits[i]);
        }
        if (bm->nbits % 64)
                assert_int_equal(bm->words[nw - 1] >> (bm->nbits % 64), 0);
}

/* A range start/length that often crosses words and sometimes runs past nbits. */
static void pick_range(uint64_t nbits, uint64_t *first, uint64_t *count)
{
        switch (rnd(8)) {
        case 0: /* single bit */
                *first = rnd(nbits);
                *count = 1;
                break;
        case 1: /* empty */
                *first = rnd(nbits + 2);
                *count = 0;
                break;
        case 2: /* runs past the end */
                *first = rnd(nbits + 70);
                *count = nbits + rnd(200);
                break;
        case 3: /* to the end, huge count */
                *first = rnd(nbits + 1);
                *count = rnd(2) ? UINT64_MAX - *first : UINT64_MAX; /* first + count may wrap */
                break;
        case 4: /* word aligned */
                *first = rnd(nbits / 64 + 1) * 64;
                *count = 64 * (1 + rnd(3));
                break;
        default:
                *first = rnd(nbits);
                *count = 1 + rnd(nbits < 300 ? nbits : 300);
                break;
        }
}

static void run_random(uint64_t nbits0, unsigned seed, unsigned nops)
{
        struct bitmap bm;
        struct model md;
        uint64_t cap = nbits0 + 2000;

        srandom(seed);
        assert_int_equal(bitmap_init(&bm, nbits0), 0);
        assert_int_equal(bm.nset, 0);
        model_init(&md, nbits0, cap);
        check_equal(&bm, &md);

        for (unsigned op = 0; op < nops; op++) {
                uint64_t first, count, n = md.nbits;
                unsigned kind = (unsigned)rnd(100);

                if (kind < 25) {
                        pick_range(n, &first, &count);
                        uint64_t want = model_fill(&md, first, count, true);
                        uint64_t got = bitmap_set_range(&bm, first, count);
                        if (got != want)
                                fail_msg("seed %u op %u set_range(%llu, %llu) nbits %llu: "
                                         "returned %llu, model %llu",
                                         seed, op, (unsigned long long)first,
                                         (unsigned long long)count, (unsigned long long)n,
                                         (unsigned long long)got, (unsigned long long)want);
                } else if (kind < 45) {
                        pick_range(n, &first, &count);
                        uint64_t want = model_fill(&md, first, count, false);
                        uint64_t got = bitmap_clear_range(&bm, first, count);
                        if (got != want)
                                fail_msg("seed %u op %u clear_range(%llu, %llu) nbits %llu: "
                                         "returned %llu, model %llu",
                                         seed, op, (unsigned long long)first,
                                         (unsigned long long)count, (unsigned long long)n,
                                         (unsigned long long)got, (unsigned long long)want);
                } else if (kind < 60) {
                        pick_range(n, &first, &count);
                        uint64_t want = model_count(&md, first, count);
                        uint64_t got = bitmap_count_range(&bm, first, count);
                        if (got != want)
                                fail_msg("seed %u op %u count_range(%llu, %llu) nbits %llu: "
                                         "returned %llu, model %llu",
                                         seed, op, (unsigned long long)first,
                                         (unsigned long long)count, (unsigned long long)n,
                                         (unsigned long long)got, (unsigned long long)want);
                } else if (kind < 70) {
                        first = rnd(n + 3);
                        uint64_t want = model_next(&md, first, true);
                        uint64_t got = bitmap_next_set(&bm, first);
                        if (got != want)
                                fail_msg("seed %u op %u next_set(%llu) nbits %llu: %llu, model "
                                         "%llu",
                                         seed, op, (unsigned long long)first, (unsigned long long)n,
                                         (unsigned long long)got, (unsigned long long)want);
                } else if (kind < 80) {
                        first = rnd(n + 3);
                        uint64_t want = model_next(&md, first, false);
                        uint64_t got = bitmap_next_clear(&bm, first);
                        if (got != want)
                                fail_msg("seed %u op %u next_clear(%llu) nbits %llu: %llu, "
                                         "model %llu",
                                         seed, op, (unsigned long long)first, (unsigned long long)n,
                                         (unsigned long long)got, (unsigned long long)want);
                        /* bounded: the first clear bit before end, else end
                         * (end past nbits reads as nbits) */
                        uint64_t end = first + rnd(200);
                        uint64_t lim = end < n ? end : n;
                        uint64_t bwant = want < lim ? want : lim;
                        if (first >= lim)
                                bwant = lim;
                        got = bitmap_next_clear_before(&bm, first, end);
                        if (got != bwant)
                                fail_msg("seed %u op %u next_clear_before(%llu, %llu) nbits %llu: "
                                         "%llu, model %llu",
                                         seed, op, (unsigned long long)first,
                                         (unsigned long long)end, (unsigned long long)n,
                                         (unsigned long long)got, (unsigned long long)bwant);
                } else if (kind < 90) {
                        first = rnd(n);
                        if (bitmap_test(&bm, first) != md.bits[first])
                                fail_msg("seed %u op %u test(%llu)", seed, op,
                                         (unsigned long long)first);
                } else if (kind < 93) {
                        /* grow (sometimes by 0, sometimes a "shrink" that must not) */
                        uint64_t to;

                        if (rnd(4) == 0)
                                to = n - rnd(n + 1) / 2;
                        else
                                to = n + rnd(md.cap - n < 150 ? md.cap - n + 1 : 150);
                        assert_int_equal(bitmap_grow(&bm, to), 0);
                        if (to > md.nbits)
                                md.nbits = to; /* the model's new bits are already false */
                        check_equal(&bm, &md);
                } else {
                        /* fill with a dense random pattern so runs of words are full */
                        uint64_t a = rnd(n), b = a + rnd(n - a) + 1;
                        bool v = rnd(2);
                        assert_int_equal(v ? bitmap_set_range(&bm, a, b - a)
                                           : bitmap_clear_range(&bm, a, b - a),
                                         model_fill(&md, a, b - a, v));
                }
                if (bm.nset != model_count(&md, 0, md.nbits))
                        fail_msg("seed %u op %u (kind %u): nset %llu, model %llu", seed, op, kind,
                                 (unsigned long long)bm.nset,
                                 (unsigned long long)model_count(&md, 0, md.nbits));
                if (op % 64 == 0)
                        check_equal(&bm, &md);
        }
        check_equal(&bm, &md);
        bitmap_free(&bm);
        free(md.bits);
}

static void test_random_ops(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                for (unsigned seed = 1; seed <= 12; seed++)
                        run_random(sizes[i], seed + 100 * (unsigned)i, 1500);
}

static void test_init_empty(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                struct bitmap bm;
                uint64_t n = sizes[i];

                assert_int_equal(bitmap_init(&bm, n), 0);
                assert_int_equal(bm.nbits, n);
                assert_int_equal(bm.nset, 0);
                assert_non_null(bm.words);
                for (uint64_t w = 0; w < bitmap_nwords(n); w++)
                        assert_int_equal(bm.words[w], 0);
                assert_int_equal(bitmap_next_set(&bm, 0), n);
                assert_int_equal(bitmap_next_clear(&bm, 0), 0);
                assert_int_equal(bitmap_count_range(&bm, 0, n), 0);
                bitmap_free(&bm);
        }
}

static void test_full_and_edges(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                struct bitmap bm;
                uint64_t n = sizes[i], nw = bitmap_nwords(n);

                assert_int_equal(bitmap_init(&bm, n), 0);
                /* set everything, way past the end */
                assert_int_equal(bitmap_set_range(&bm, 0, n + 1000), n);
                assert_int_equal(bm.nset, n);
                if (n % 64)
                        assert_int_equal(bm.words[nw - 1], (UINT64_C(1) << (n % 64)) - 1);
                else
                        assert_int_equal(bm.words[nw - 1], UINT64_MAX);
                assert_int_equal(bitmap_set_range(&bm, 0, UINT64_MAX), 0);
                assert_int_equal(bitmap_next_set(&bm, 0), 0);
                assert_int_equal(bitmap_next_set(&bm, n - 1), n - 1);
                assert_int_equal(bitmap_next_clear(&bm, 0), n);
                assert_int_equal(bitmap_next_set(&bm, n), n);
                assert_int_equal(bitmap_next_clear(&bm, n), n);
                assert_int_equal(bitmap_next_set(&bm, n + 100), n);
                assert_int_equal(bitmap_count_range(&bm, 0, UINT64_MAX), n);
                assert_int_equal(bitmap_count_range(&bm, n - 1, 5), 1);
                assert_int_equal(bitmap_count_range(&bm, n - 1, UINT64_MAX), 1);
                assert_int_equal(bitmap_count_range(&bm, n, UINT64_MAX), 0);
                assert_int_equal(bitmap_count_range(&bm, n, 5), 0);
                /* ranges starting at or past nbits change nothing */
                assert_int_equal(bitmap_set_range(&bm, n, 10), 0);
                assert_int_equal(bitmap_clear_range(&bm, n, 10), 0);
                assert_int_equal(bitmap_clear_range(&bm, n + 64, 10), 0);
                assert_int_equal(bm.nset, n);
                /* empty ranges */
                assert_int_equal(bitmap_clear_range(&bm, 0, 0), 0);
                assert_int_equal(bm.nset, n);
                /* the last bit alone */
                assert_int_equal(bitmap_clear_range(&bm, n - 1, 1), 1);
                assert_false(bitmap_test(&bm, n - 1));
                assert_int_equal(bitmap_next_clear(&bm, 0), n - 1);
                assert_int_equal(bm.nset, n - 1);
                assert_int_equal(bitmap_clear_range(&bm, n - 1, 1), 0);
                assert_int_equal(bitmap_set_range(&bm, n - 1, 1), 1);
                /* a count so large that first + count wraps: still "to the end" */
                assert_int_equal(bitmap_clear_range(&bm, n - 1, UINT64_MAX), 1);
                assert_int_equal(bitmap_set_range(&bm, n - 1, UINT64_MAX), 1);
                assert_int_equal(bm.nset, n);
                /* clear everything with a huge count */
                assert_int_equal(bitmap_clear_range(&bm, 0, UINT64_MAX), n);
                assert_int_equal(bm.nset, 0);
                for (uint64_t w = 0; w < nw; w++)
                        assert_int_equal(bm.words[w], 0);
                assert_int_equal(bitmap_next_set(&bm, 0), n);
                bitmap_free(&bm);
        }
}

static void test_word_boundaries(void **state)
{
        struct bitmap bm;

        (void)state;
        assert_int_equal(bitmap_init(&bm, 4097), 0);
        /* [63, 65) straddles words 0 and 1 */
        assert_int_equal(bitmap_set_range(&bm, 63, 2), 2);
        assert_int_equal(bm.words[0], UINT64_C(1) << 63);
        assert_int_equal(bm.words[1], 1);
        assert_int_equal(bitmap_next_set(&bm, 0), 63);
        assert_int_equal(bitmap_next_set(&bm, 64), 64);
        assert_int_equal(bitmap_next_set(&bm, 65), 4097);
        assert_int_equal(bitmap_next_clear(&bm, 63), 65);
        /* a range covering whole words in the middle */
        assert_int_equal(bitmap_set_range(&bm, 100, 3000), 3000);
        assert_int_equal(bm.nset, 3002);
        assert_int_equal(bitmap_count_range(&bm, 0, 4097), 3002);
        assert_int_equal(bitmap_count_range(&bm, 64, 64), 1 + 28);
        assert_int_equal(bitmap_count_range(&bm, 128, 64), 64);
        assert_int_equal(bitmap_next_clear(&bm, 100), 3100);
        assert_int_equal(bitmap_next_set(&bm, 65), 100);
        /* clearing a part that is half set reports only the set bits */
        assert_int_equal(bitmap_clear_range(&bm, 3000, 1000), 100);
        assert_int_equal(bitmap_clear_range(&bm, 0, 64), 1);
        assert_int_equal(bm.nset, 3002 - 101);
        /* the last bit (4096) is alone in word 64 */
        assert_int_equal(bitmap_set_range(&bm, 4090, 100), 7);
        assert_int_equal(bm.words[64], 1);
        assert_int_equal(bitmap_next_set(&bm, 4096), 4096);
        assert_int_equal(bitmap_next_clear(&bm, 4090), 4097);
        bitmap_free(&bm);
}

/* Words changed behind the bitmap's back (as when loaded from disk): recount
 * fixes nset and clears bits past nbits. */
static void test_recount(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                for (unsigned seed = 1; seed <= 20; seed++) {
                        struct bitmap bm;
                        uint64_t n = sizes[i], nw = bitmap_nwords(n), want = 0;

                        srandom(seed * 7919 + (unsigned)i);
                        assert_int_equal(bitmap_init(&bm, n), 0);
                        bitmap_set_range(&bm, 0, n);
                        /* zeroing the words directly */
                        memset(bm.words, 0, nw * sizeof(uint64_t));
                        bitmap_recount(&bm);
                        assert_int_equal(bm.nset, 0);
                        assert_int_equal(bitmap_next_set(&bm, 0), n);
                        /* random words, garbage past nbits included */
                        for (uint64_t w = 0; w < nw; w++) {
                                switch (rnd(4)) {
                                case 0:
                                        bm.words[w] = 0;
                                        break;
                                case 1:
                                        bm.words[w] = UINT64_MAX;
                                        break;
                                default:
                                        bm.words[w] = ((uint64_t)random() << 33) ^
                                                      ((uint64_t)random() << 11) ^
                                                      (uint64_t)random();
                                        break;
                                }
                        }
                        if (seed == 1)
                                bm.words[nw - 1] = UINT64_MAX;
                        for (uint64_t b = 0; b < n; b++)
                                want += (bm.words[b / 64] >> (b % 64)) & 1;
                        bm.nset = 12345; /* stale */
                        bitmap_recount(&bm);
                        assert_int_equal(bm.nset, want);
                        if (n % 64)
                                assert_int_equal(bm.words[nw - 1] >> (n % 64), 0);
                        assert_int_equal(bitmap_count_range(&bm, 0, n), want);
                        /* operations stay exact after a recount */
                        assert_int_equal(bitmap_set_range(&bm, 0, n), n - want);
                        assert_int_equal(bm.nset, n);
                        bitmap_free(&bm);
                }
        }
}

/* Grow keeps the old bits, the new bits are clear, padding stays zero, and a
 * smaller size never shrinks. */
static void test_grow(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                static const uint64_t add[] = {0, 1, 2, 63, 64, 65, 1000, 5000};

                for (size_t j = 0; j < sizeof(add) / sizeof(add[0]); j++) {
                        struct bitmap bm;
                        uint64_t n = sizes[i], to = n + add[j];

                        assert_int_equal(bitmap_init(&bm, n), 0);
                        /* all bits set: padding bits must not leak into the new range */
                        assert_int_equal(bitmap_set_range(&bm, 0, n), n);
                        assert_int_equal(bitmap_grow(&bm, to), 0);
                        assert_int_equal(bm.nbits, to);
                        assert_int_equal(bm.nset, n);
                        assert_int_equal(bitmap_count_range(&bm, 0, to), n);
                        assert_int_equal(bitmap_next_clear(&bm, 0), n < to ? n : to);
                        assert_int_equal(bitmap_next_set(&bm, n), to);
                        for (uint64_t b = 0; b < to; b++)
                                assert_int_equal(bitmap_test(&bm, b), b < n);
                        if (to % 64)
                                assert_int_equal(bm.words[bitmap_nwords(to) - 1] >> (to % 64), 0);
                        for (uint64_t w = bitmap_nwords(n); w < bitmap_nwords(to); w++)
                                assert_true(w * 64 >= n && bm.words[w] == 0);
                        /* the new bits work like the old ones */
                        assert_int_equal(bitmap_set_range(&bm, 0, UINT64_MAX), to - n);
                        assert_int_equal(bm.nset, to);
                        /* never shrinks */
                        bitmap_grow(&bm, n > 1 ? n / 2 : 0);
                        assert_int_equal(bm.nbits, to);
                        assert_int_equal(bm.nset, to);
                        assert_int_equal(bitmap_count_range(&bm, 0, to), to);
                        bitmap_free(&bm);
                }
        }
}

/* Many grows in a row from 1 bit, the last bit set before each grow. */
static void test_grow_steps(void **state)
{
        struct bitmap bm;
        uint64_t n = 1, want = 0;

        (void)state;
        assert_int_equal(bitmap_init(&bm, 1), 0);
        srandom(42);
        while (n < 20000) {
                uint64_t to = n + 1 + rnd(300);

                want += bitmap_set_range(&bm, n - 1, 1);
                assert_int_equal(bitmap_grow(&bm, to), 0);
                assert_int_equal(bm.nbits, to);
                assert_int_equal(bm.nset, want);
                assert_int_equal(bitmap_next_set(&bm, n), to);
                assert_false(bitmap_test(&bm, to - 1));
                if (to % 64)
                        assert_int_equal(bm.words[bitmap_nwords(to) - 1] >> (to % 64), 0);
                n = to;
        }
        assert_int_equal(bitmap_count_range(&bm, 0, n), want);
        bitmap_free(&bm);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_init_empty),
            cmocka_unit_test(test_full_and_edges),
            cmocka_unit_test(test_word_boundaries),
            cmocka_unit_test(test_recount),
            cmocka_unit_test(test_grow),
            cmocka_unit_test(test_grow_steps),
            cmocka_unit_test(test_random_ops),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
