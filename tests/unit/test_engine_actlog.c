/* Unit tests of the activity log's in-memory part (engine/actlog.h): random
 * ref/insert/unref sequences against a naive model (extent -> refs, capacity
 * nslots, LRU among the unreferenced), plus small deterministic LRU cases. */
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

#include "engine/actlog.h"

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* actlog_extents returns exactly want[0..n) (any order). */
static void check_extents(const struct actlog *al, const uint64_t *want, unsigned n)
{
        uint64_t got[AL_MAX_SLOTS], w[AL_MAX_SLOTS];
        unsigned k = actlog_extents(al, got);

        assert_int_equal(k, n);
        memcpy(w, want, n * sizeof(uint64_t));
        qsort(got, k, sizeof(uint64_t), cmp_u64);
        qsort(w, n, sizeof(uint64_t), cmp_u64);
        for (unsigned i = 0; i < n; i++)
                assert_int_equal(got[i], w[i]);
}

static int insert(struct actlog *al, uint64_t extent, uint64_t *evicted)
{
        *evicted = 12345; /* must be overwritten on success */
        return actlog_insert(al, extent, evicted);
}

static void test_basic(void **state)
{
        struct actlog al;
        uint64_t ev, ext[AL_MAX_SLOTS];
        int slot;

        (void)state;
        actlog_init(&al, 4);
        assert_int_equal(al.nslots, 4);
        assert_int_equal(actlog_extents(&al, ext), 0);
        assert_false(actlog_hot(&al, 7));
        assert_false(actlog_ref(&al, 7));
        assert_false(actlog_hot(&al, 7));
        slot = insert(&al, 7, &ev);
        assert_true(slot >= 0 && slot < 4);
        assert_int_equal(ev, AL_NONE);
        assert_int_equal(al.slots[slot].extent, 7);
        assert_int_equal(al.slots[slot].refs, 1);
        assert_true(actlog_hot(&al, 7));
        assert_false(actlog_hot(&al, 8));
        assert_true(actlog_ref(&al, 7));
        assert_int_equal(al.slots[slot].refs, 2);
        actlog_unref(&al, 7);
        actlog_unref(&al, 7);
        assert_int_equal(al.slots[slot].refs, 0);
        /* an unreferenced extent stays hot until it is evicted */
        assert_true(actlog_hot(&al, 7));
        check_extents(&al, (uint64_t[]){7}, 1);
        /* extent 0 and huge extents are ordinary extents */
        assert_true(insert(&al, 0, &ev) >= 0);
        assert_int_equal(ev, AL_NONE);
        assert_true(insert(&al, UINT64_MAX - 1, &ev) >= 0);
        assert_int_equal(ev, AL_NONE);
        assert_true(actlog_hot(&al, 0));
        assert_true(actlog_hot(&al, UINT64_MAX - 1));
        check_extents(&al, (uint64_t[]){7, 0, UINT64_MAX - 1}, 3);
        actlog_unref(&al, 0);
        actlog_unref(&al, UINT64_MAX - 1);
        actlog_clear(&al);
        assert_int_equal(actlog_extents(&al, ext), 0);
        assert_false(actlog_hot(&al, 7));
        assert_false(actlog_hot(&al, 0));
        assert_false(actlog_ref(&al, 7));
}

/* Free slots are used before anything is evicted; then the least recently
 * referenced extent goes. */
static void test_lru_order(void **state)
{
        struct actlog al;
        uint64_t ev;
        int sa, sb, sc, s;

        (void)state;
        actlog_init(&al, 3);
        sa = insert(&al, 100, &ev);
        assert_int_equal(ev, AL_NONE);
        actlog_unref(&al, 100);
        sb = insert(&al, 200, &ev);
        assert_int_equal(ev, AL_NONE);
        actlog_unref(&al, 200);
        sc = insert(&al, 300, &ev);
        assert_int_equal(ev, AL_NONE);
        actlog_unref(&al, 300);
        assert_true(sa >= 0 && sb >= 0 && sc >= 0);
        assert_true(sa != sb && sb != sc && sa != sc);
        assert_true(sa < 3 && sb < 3 && sc < 3);
        check_extents(&al, (uint64_t[]){100, 200, 300}, 3);

        /* 100 referenced again: now 200 is the least recently used */
        assert_true(actlog_ref(&al, 100));
        actlog_unref(&al, 100);
        s = insert(&al, 400, &ev);
        assert_int_equal(ev, 200);
        assert_int_equal(s, sb);
        assert_false(actlog_hot(&al, 200));
        assert_true(actlog_hot(&al, 400));
        actlog_unref(&al, 400);
        check_extents(&al, (uint64_t[]){100, 300, 400}, 3);

        /* 300 referenced: order is now 100, 400, 300 */
        assert_true(actlog_ref(&al, 300));
        actlog_unref(&al, 300);
        s = insert(&al, 500, &ev);
        assert_int_equal(ev, 100);
        assert_int_equal(s, sa);
        actlog_unref(&al, 500);
        s = insert(&al, 600, &ev);
        assert_int_equal(ev, 400);
        assert_int_equal(s, sb);
        actlog_unref(&al, 600);
        s = insert(&al, 700, &ev);
        assert_int_equal(ev, 300);
        assert_int_equal(s, sc);
        actlog_unref(&al, 700);
        check_extents(&al, (uint64_t[]){500, 600, 700}, 3);
        /* an evicted extent comes back like a new one */
        assert_false(actlog_ref(&al, 100));
        s = insert(&al, 100, &ev);
        assert_int_equal(ev, 500);
        assert_int_equal(s, sa);
}

/* Extents with writes in flight are never evicted, even when they are the
 * least recently used; when all are in flight, insert says -EAGAIN. */
static void test_held_not_evicted(void **state)
{
        struct actlog al;
        uint64_t ev;
        int sb, sd, s;

        (void)state;
        actlog_init(&al, 3);
        assert_true(insert(&al, 1, &ev) >= 0); /* held from here on */
        sb = insert(&al, 2, &ev);
        actlog_unref(&al, 2);
        assert_true(insert(&al, 3, &ev) >= 0);
        actlog_unref(&al, 3);
        sd = insert(&al, 4, &ev); /* 1 is oldest but held: 2 goes */
        assert_int_equal(ev, 2);
        assert_int_equal(sd, sb);
        assert_true(insert(&al, 5, &ev) >= 0); /* only 3 is free of writes */
        assert_int_equal(ev, 3);
        check_extents(&al, (uint64_t[]){1, 4, 5}, 3);

        /* 1, 4, 5 all have writes in flight */
        assert_int_equal(actlog_insert(&al, 6, &ev), -EAGAIN);
        assert_false(actlog_hot(&al, 6));
        check_extents(&al, (uint64_t[]){1, 4, 5}, 3);
        assert_true(actlog_ref(&al, 4)); /* 4: refs 2 */
        actlog_unref(&al, 4);
        assert_int_equal(actlog_insert(&al, 6, &ev), -EAGAIN);
        actlog_unref(&al, 4); /* 4: refs 0 */
        s = insert(&al, 6, &ev);
        assert_int_equal(ev, 4);
        assert_int_equal(s, sd);
        assert_int_equal(al.slots[s].extent, 6);
        assert_int_equal(al.slots[s].refs, 1);
        assert_int_equal(actlog_insert(&al, 7, &ev), -EAGAIN);
        actlog_unref(&al, 1);
        actlog_unref(&al, 5);
        actlog_unref(&al, 6);
        /* 1 was referenced first (at its insert), long before 5 and 6 */
        assert_true(insert(&al, 7, &ev) >= 0);
        assert_int_equal(ev, 1);
}

static void test_one_slot(void **state)
{
        struct actlog al;
        uint64_t ev;

        (void)state;
        actlog_init(&al, 1);
        assert_int_equal(insert(&al, 10, &ev), 0);
        assert_int_equal(ev, AL_NONE);
        assert_int_equal(actlog_insert(&al, 11, &ev), -EAGAIN);
        assert_true(actlog_ref(&al, 10));
        actlog_unref(&al, 10);
        assert_int_equal(actlog_insert(&al, 11, &ev), -EAGAIN);
        actlog_unref(&al, 10);
        assert_int_equal(insert(&al, 11, &ev), 0);
        assert_int_equal(ev, 10);
        assert_false(actlog_hot(&al, 10));
        assert_true(actlog_hot(&al, 11));
        check_extents(&al, (uint64_t[]){11}, 1);
}

static void test_max_slots(void **state)
{
        struct actlog al;
        uint64_t ev, want[AL_MAX_SLOTS];
        bool used[AL_MAX_SLOTS] = {false};

        (void)state;
        actlog_init(&al, AL_MAX_SLOTS);
        for (unsigned i = 0; i < AL_MAX_SLOTS; i++) {
                int s = insert(&al, 1000 + 3 * (uint64_t)i, &ev);

                assert_true(s >= 0 && s < AL_MAX_SLOTS);
                assert_false(used[s]);
                used[s] = true;
                assert_int_equal(ev, AL_NONE);
                want[i] = 1000 + 3 * (uint64_t)i;
        }
        check_extents(&al, want, AL_MAX_SLOTS);
        assert_int_equal(actlog_insert(&al, 1, &ev), -EAGAIN);
        actlog_unref(&al, 1000 + 3 * 77);
        assert_true(insert(&al, 1, &ev) >= 0);
        assert_int_equal(ev, 1000 + 3 * 77);
        for (unsigned i = 0; i < AL_MAX_SLOTS; i++)
                if (i != 77)
                        actlog_unref(&al, 1000 + 3 * (uint64_t)i);
        actlog_unref(&al, 1);
        actlog_clear(&al);
        assert_int_equal(actlog_extents(&al, want), 0);
        /* after clear every slot is free again */
        for (unsigned i = 0; i < AL_MAX_SLOTS; i++) {
                assert_true(insert(&al, i, &ev) >= 0);
                assert_int_equal(ev, AL_NONE);
        }
}

/* ---- random sequences against a naive model ---- */

struct ment {
        uint64_t extent;
        uint32_t refs;
        uint64_t t_ref;   /* tick of the last ref/insert */
        uint64_t t_touch; /* tick of the last ref/insert/unref */
        int slot;
};

struct mdl {
        struct ment e[AL_MAX_SLOTS];
        unsigned n, cap;
        uint64_t tick;
};

static int mdl_find(const struct mdl *m, uint64_t extent)
{
        for (unsigned i = 0; i < m->n; i++)
                if (m->e[i].extent == extent)
                        return (int)i;
        return -1;
}

static void mdl_remove(struct mdl *m, int i)
{
        m->e[i] = m->e[--m->n];
}

static uint64_t ext_of(uint64_t idx, int variant)
{
        uint64_t e = variant ? idx * UINT64_C(0x9E3779B97F4A7C15) : idx;

        assert_true(e != AL_NONE);
        return e;
}

static void check_model(const struct actlog *al, const struct mdl *m, uint64_t universe,
                        int variant)
{
        uint64_t want[AL_MAX_SLOTS];

        assert_true(m->n <= m->cap);
        for (unsigned i = 0; i < m->n; i++) {
                const struct ment *x = &m->e[i];

                want[i] = x->extent;
                assert_true(actlog_hot(al, x->extent));
                assert_int_equal(al->slots[x->slot].extent, x->extent);
                assert_int_equal(al->slots[x->slot].refs, x->refs);
        }
        check_extents(al, want, m->n);
        for (uint64_t u = 0; u < universe; u++) {
                uint64_t e = ext_of(u, variant);

                assert_int_equal(actlog_hot(al, e), mdl_find(m, e) >= 0);
        }
}

static void run_random(unsigned nslots, unsigned seed, int variant, unsigned nops)
{
        struct actlog al;
        struct mdl *m = calloc(1, sizeof(*m));
        uint64_t universe = 2 * (uint64_t)nslots + 3;
        unsigned eagain = 0, evictions = 0;

        assert_non_null(m);
        srandom(seed);
        actlog_init(&al, nslots);
        m->cap = nslots;
        for (unsigned op = 0; op < nops; op++) {
                uint64_t e = ext_of((uint64_t)random() % universe, variant), ev;
                int i = mdl_find(m, e);
                unsigned r = (unsigned)(random() % 100);

                m->tick++;
                if (random() % (8 * nslots + 92) == 0) {
                        /* drain and clear */
                        for (unsigned k = 0; k < m->n; k++)
                                while (m->e[k].refs) {
                                        actlog_unref(&al, m->e[k].extent);
                                        m->e[k].refs--;
                                }
                        actlog_clear(&al);
                        m->n = 0;
                } else if (r >= 85 && m->n > 0) {
                        /* a write in flight somewhere completes */
                        unsigned k = (unsigned)(random() % m->n);

                        if (m->e[k].refs > 0) {
                                actlog_unref(&al, m->e[k].extent);
                                m->e[k].refs--;
                                m->e[k].t_touch = m->tick;
                        }
                } else if (i >= 0 && m->e[i].refs > 0 && r < 55) {
                        actlog_unref(&al, e);
                        m->e[i].refs--;
                        m->e[i].t_touch = m->tick;
                } else if (i >= 0) {
                        if (m->e[i].refs >= 4) {
                                actlog_unref(&al, e);
                                m->e[i].refs--;
                                m->e[i].t_touch = m->tick;
                        } else {
                                if (!actlog_ref(&al, e))
                                        fail_msg("seed %u op %u: ref(%llu) false on a hot "
                                                 "extent",
                                                 seed, op, (unsigned long long)e);
                                m->e[i].refs++;
                                m->e[i].t_ref = m->e[i].t_touch = m->tick;
                        }
                } else if (r < 10) {
                        if (actlog_ref(&al, e))
                                fail_msg("seed %u op %u: ref(%llu) true on a cold extent", seed, op,
                                         (unsigned long long)e);
                } else {
                        bool all_held = m->n == m->cap;
                        int lru_ref = -1, lru_touch = -1;

                        for (unsigned k = 0; k < m->n; k++) {
                                if (m->e[k].refs)
                                        continue;
                                all_held = false;
                                if (lru_ref < 0 || m->e[k].t_ref < m->e[lru_ref].t_ref)
                                        lru_ref = (int)k;
                                if (lru_touch < 0 || m->e[k].t_touch < m->e[lru_touch].t_touch)
                                        lru_touch = (int)k;
                        }
                        int s = insert(&al, e, &ev);

                        if (all_held) {
                                if (s != -EAGAIN)
                                        fail_msg("seed %u op %u: insert(%llu) = %d with every "
                                                 "slot in flight, want -EAGAIN",
                                                 seed, op, (unsigned long long)e, s);
                                eagain++;
                                assert_false(actlog_hot(&al, e));
                        } else {
                                if (s < 0 || s >= (int)nslots)
                                        fail_msg("seed %u op %u: insert(%llu) = %d (hot %u of "
                                                 "%u)",
                                                 seed, op, (unsigned long long)e, s, m->n, m->cap);
                                if (m->n < m->cap) {
                                        /* a free slot exists: nothing is evicted */
                                        if (ev != AL_NONE)
                                                fail_msg("seed %u op %u: insert evicted %llu "
                                                         "with %u of %u slots used",
                                                         seed, op, (unsigned long long)ev, m->n,
                                                         m->cap);
                                        for (unsigned k = 0; k < m->n; k++)
                                                assert_int_not_equal(m->e[k].slot, s);
                                } else {
                                        int j = mdl_find(m, ev);

                                        if (j < 0)
                                                fail_msg("seed %u op %u: evicted %llu was not "
                                                         "hot",
                                                         seed, op, (unsigned long long)ev);
                                        if (m->e[j].refs != 0)
                                                fail_msg("seed %u op %u: evicted %llu had %u "
                                                         "refs",
                                                         seed, op, (unsigned long long)ev,
                                                         m->e[j].refs);
                                        if (j != lru_ref && j != lru_touch)
                                                fail_msg("seed %u op %u: evicted %llu, LRU is "
                                                         "%llu",
                                                         seed, op, (unsigned long long)ev,
                                                         (unsigned long long)m->e[lru_ref].extent);
                                        assert_int_equal(m->e[j].slot, s);
                                        assert_false(actlog_hot(&al, ev));
                                        mdl_remove(m, j);
                                        evictions++;
                                }
                                m->e[m->n++] = (struct ment){.extent = e,
                                                             .refs = 1,
                                                             .t_ref = m->tick,
                                                             .t_touch = m->tick,
                                                             .slot = s};
                        }
                }
                if (nslots <= 8 || op % (nslots >= 256 ? 256u : 8u) == 0)
                        check_model(&al, m, universe, variant);
        }
        check_model(&al, m, universe, variant);
        if (getenv("AL_STATS"))
                printf("nslots %u seed %u: %u evictions, %u -EAGAIN\n", nslots, seed, evictions,
                       eagain);
        /* both paths were exercised */
        if (nops >= 5000) {
                assert_true(evictions > 0);
                if (nslots <= 8)
                        assert_true(eagain > 0);
        }
        free(m);
}

static void test_random(void **state)
{
        static const unsigned slots[] = {1, 2, 3, 8, 64, AL_MAX_SLOTS};

        (void)state;
        for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
                for (unsigned seed = 1; seed <= 6; seed++)
                        run_random(slots[i], seed + 50 * (unsigned)i, (int)(seed % 2), 20000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_basic),
            cmocka_unit_test(test_lru_order),
            cmocka_unit_test(test_held_not_evicted),
            cmocka_unit_test(test_one_slot),
            cmocka_unit_test(test_max_slots),
            cmocka_unit_test(test_random),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
