/* Unit tests of the engine's range locks (engine/rangelock.h): try/acquire/
 * release semantics, blocking until an overlapping holder leaves, and a
 * multithreaded stress test that detects any two holders of one slot. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/rangelock.h"

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

static void test_init_destroy(void **state)
{
        struct rangelock rl;

        (void)state;
        assert_int_equal(rangelock_init(&rl), 0);
        assert_int_equal(rangelock_held(&rl), 0);
        rangelock_destroy(&rl);
}

static void test_try_overlap(void **state)
{
        struct rangelock rl;

        (void)state;
        assert_int_equal(rangelock_init(&rl), 0);
        assert_int_equal(rangelock_try(&rl, 0, 4), 0);
        /* adjacent ranges are disjoint */
        assert_int_equal(rangelock_try(&rl, 5, 9), 0);
        assert_int_equal(rangelock_held(&rl), 2);
        /* every kind of overlap is refused */
        assert_int_equal(rangelock_try(&rl, 0, 4), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 0, 0), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 4, 4), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 4, 5), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 2, 3), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 9, 20), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 0, 100), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 3, 6), -EBUSY);
        assert_int_equal(rangelock_held(&rl), 2);
        /* disjoint */
        assert_int_equal(rangelock_try(&rl, 10, 10), 0);
        assert_int_equal(rangelock_try(&rl, 11, UINT64_MAX), 0);
        assert_int_equal(rangelock_try(&rl, UINT64_MAX, UINT64_MAX), -EBUSY);
        assert_int_equal(rangelock_held(&rl), 4);
        /* release opens exactly the released range */
        rangelock_release(&rl, 0, 4);
        assert_int_equal(rangelock_held(&rl), 3);
        assert_int_equal(rangelock_try(&rl, 4, 5), -EBUSY);
        assert_int_equal(rangelock_try(&rl, 3, 3), 0);
        assert_int_equal(rangelock_try(&rl, 0, 2), 0);
        assert_int_equal(rangelock_try(&rl, 4, 4), 0);
        assert_int_equal(rangelock_held(&rl), 6);
        rangelock_release(&rl, 5, 9);
        rangelock_release(&rl, 11, UINT64_MAX);
        rangelock_release(&rl, 3, 3);
        assert_int_equal(rangelock_try(&rl, 5, 9), 0);
        assert_int_equal(rangelock_acquire(&rl, 12, 1000), 0);
        rangelock_release(&rl, 0, 2);
        rangelock_release(&rl, 4, 4);
        rangelock_release(&rl, 10, 10);
        rangelock_release(&rl, 5, 9);
        rangelock_release(&rl, 12, 1000);
        assert_int_equal(rangelock_held(&rl), 0);
        assert_int_equal(rangelock_try(&rl, 0, UINT64_MAX), 0);
        rangelock_release(&rl, 0, UINT64_MAX);
        assert_int_equal(rangelock_held(&rl), 0);
        rangelock_destroy(&rl);
}

/* Many disjoint ranges at once (the table has to grow), released in a
 * different order than taken. */
static void test_many_disjoint(void **state)
{
        struct rangelock rl;
        enum { N = 1000 };

        (void)state;
        assert_int_equal(rangelock_init(&rl), 0);
        for (uint64_t i = 0; i < N; i++)
                assert_int_equal(rangelock_try(&rl, 3 * i, 3 * i + 1), 0);
        assert_int_equal(rangelock_held(&rl), N);
        for (uint64_t i = 0; i < N; i++) {
                assert_int_equal(rangelock_try(&rl, 3 * i + 1, 3 * i + 2), -EBUSY);
                assert_int_equal(rangelock_try(&rl, 3 * i + 2, 3 * i + 2), 0);
        }
        assert_int_equal(rangelock_held(&rl), 2 * N);
        for (uint64_t i = 0; i < N; i += 2)
                rangelock_release(&rl, 3 * i, 3 * i + 1);
        assert_int_equal(rangelock_held(&rl), 2 * N - N / 2);
        for (uint64_t i = 0; i < N; i++) {
                if (i % 2 == 0)
                        assert_int_equal(rangelock_try(&rl, 3 * i, 3 * i + 1), 0);
                else
                        assert_int_equal(rangelock_try(&rl, 3 * i, 3 * i), -EBUSY);
        }
        for (uint64_t i = N; i-- > 0;) {
                rangelock_release(&rl, 3 * i, 3 * i + 1);
                rangelock_release(&rl, 3 * i + 2, 3 * i + 2);
        }
        assert_int_equal(rangelock_held(&rl), 0);
        rangelock_destroy(&rl);
}

struct waiter {
        struct rangelock *rl;
        uint64_t first, last;
        atomic_int got;
        atomic_int done;
        int rc;
};

static void *waiter_main(void *arg)
{
        struct waiter *w = arg;

        /* no cmocka asserts off the main thread: report rc instead */
        w->rc = rangelock_acquire(w->rl, w->first, w->last);
        if (w->rc != 0)
                return NULL;
        atomic_store(&w->got, 1);
        while (!atomic_load(&w->done))
                sleep_ms(1);
        rangelock_release(w->rl, w->first, w->last);
        return NULL;
}

/* acquire blocks while an overlapping range is held, and wakes on release;
 * a disjoint acquire never waits. */
static void test_acquire_blocks(void **state)
{
        struct rangelock rl;
        struct waiter w[3] = {
            {.first = 15, .last = 25}, /* overlaps [10, 20] */
            {.first = 20, .last = 20}, /* overlaps [10, 20] and w[0] */
            {.first = 21, .last = 30}, /* overlaps w[0] only */
        };
        pthread_t th[3];

        (void)state;
        assert_int_equal(rangelock_init(&rl), 0);
        assert_int_equal(rangelock_acquire(&rl, 10, 20), 0);
        for (int i = 0; i < 3; i++) {
                w[i].rl = &rl;
                atomic_init(&w[i].got, 0);
                atomic_init(&w[i].done, 0);
        }
        /* w[0] waits on [10, 20] */
        assert_int_equal(pthread_create(&th[0], NULL, waiter_main, &w[0]), 0);
        sleep_ms(100);
        assert_int_equal(atomic_load(&w[0].got), 0);
        assert_int_equal(rangelock_held(&rl), 1);
        /* a disjoint range does not wait behind the waiter */
        assert_int_equal(rangelock_acquire(&rl, 0, 9), 0);
        assert_int_equal(rangelock_try(&rl, 26, 40), 0);
        rangelock_release(&rl, 0, 9);
        rangelock_release(&rl, 26, 40);
        rangelock_release(&rl, 10, 20);
        for (int t = 0; t < 5000 && !atomic_load(&w[0].got); t++)
                sleep_ms(1);
        assert_int_equal(atomic_load(&w[0].got), 1);
        assert_int_equal(rangelock_try(&rl, 25, 25), -EBUSY);
        /* two more waiters behind w[0] */
        assert_int_equal(pthread_create(&th[1], NULL, waiter_main, &w[1]), 0);
        assert_int_equal(pthread_create(&th[2], NULL, waiter_main, &w[2]), 0);
        sleep_ms(100);
        assert_int_equal(atomic_load(&w[1].got), 0);
        assert_int_equal(atomic_load(&w[2].got), 0);
        atomic_store(&w[0].done, 1);
        assert_int_equal(pthread_join(th[0], NULL), 0);
        /* both get in (they are disjoint from each other) */
        for (int t = 0; t < 5000 && !(atomic_load(&w[1].got) && atomic_load(&w[2].got)); t++)
                sleep_ms(1);
        assert_int_equal(atomic_load(&w[1].got), 1);
        assert_int_equal(atomic_load(&w[2].got), 1);
        assert_int_equal(rangelock_held(&rl), 2);
        atomic_store(&w[1].done, 1);
        atomic_store(&w[2].done, 1);
        assert_int_equal(pthread_join(th[1], NULL), 0);
        assert_int_equal(pthread_join(th[2], NULL), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(w[i].rc, 0);
        assert_int_equal(rangelock_held(&rl), 0);
        rangelock_destroy(&rl);
}

/* Stress: NTHREADS threads take random small ranges over NSLOTS slots (by
 * acquire or by try). While holding, each slot's owner count must go 0 -> 1
 * and back; a plain (non-atomic) per-slot counter is incremented under the
 * lock, so a broken lock also shows up as lost updates. */
enum { NTHREADS = 8, NITER = 2000, NSLOTS = 64 };

struct stress {
        struct rangelock rl;
        atomic_int owner[NSLOTS];
        unsigned long plain[NSLOTS];
        atomic_ulong violations;
        atomic_ulong busy;
        atomic_int go;
};

struct worker {
        struct stress *s;
        unsigned seed;
        unsigned long mine[NSLOTS];
};

static void *stress_main(void *arg)
{
        struct worker *w = arg;
        struct stress *s = w->s;
        unsigned seed = w->seed;

        while (!atomic_load(&s->go))
                ;
        for (int it = 0; it < NITER; it++) {
                uint64_t first = (uint64_t)rand_r(&seed) % NSLOTS;
                uint64_t len = 1 + (uint64_t)rand_r(&seed) % 6;
                uint64_t last = first + len - 1 < NSLOTS ? first + len - 1 : NSLOTS - 1;
                bool use_try = rand_r(&seed) % 4 == 0;

                if (use_try) {
                        int rc = rangelock_try(&s->rl, first, last);

                        if (rc == -EBUSY) {
                                atomic_fetch_add(&s->busy, 1);
                                continue;
                        }
                        if (rc != 0) {
                                atomic_fetch_add(&s->violations, 1);
                                continue;
                        }
                } else if (rangelock_acquire(&s->rl, first, last) != 0) {
                        atomic_fetch_add(&s->violations, 1);
                        continue;
                }
                for (uint64_t i = first; i <= last; i++)
                        if (atomic_fetch_add(&s->owner[i], 1) != 0)
                                atomic_fetch_add(&s->violations, 1);
                for (uint64_t i = first; i <= last; i++) {
                        unsigned long v = s->plain[i];

                        if (rand_r(&seed) % 8 == 0)
                                sched_yield();
                        s->plain[i] = v + 1;
                        w->mine[i]++;
                }
                for (uint64_t i = first; i <= last; i++)
                        if (atomic_fetch_sub(&s->owner[i], 1) != 1)
                                atomic_fetch_add(&s->violations, 1);
                rangelock_release(&s->rl, first, last);
        }
        return NULL;
}

static void test_stress(void **state)
{
        struct stress *s = calloc(1, sizeof(*s));
        struct worker *w = calloc(NTHREADS, sizeof(*w));
        pthread_t th[NTHREADS];

        (void)state;
        assert_non_null(s);
        assert_non_null(w);
        assert_int_equal(rangelock_init(&s->rl), 0);
        for (int i = 0; i < NSLOTS; i++)
                atomic_init(&s->owner[i], 0);
        atomic_init(&s->violations, 0);
        atomic_init(&s->busy, 0);
        atomic_init(&s->go, 0);
        for (int t = 0; t < NTHREADS; t++) {
                w[t].s = s;
                w[t].seed = 1000u + (unsigned)t;
                assert_int_equal(pthread_create(&th[t], NULL, stress_main, &w[t]), 0);
        }
        atomic_store(&s->go, 1);
        for (int t = 0; t < NTHREADS; t++)
                assert_int_equal(pthread_join(th[t], NULL), 0);

        assert_int_equal(atomic_load(&s->violations), 0);
        for (int i = 0; i < NSLOTS; i++) {
                unsigned long want = 0;

                for (int t = 0; t < NTHREADS; t++)
                        want += w[t].mine[i];
                assert_int_equal(atomic_load(&s->owner[i]), 0);
                if (s->plain[i] != want)
                        fail_msg("slot %d: %lu increments seen, %lu made (lost updates)", i,
                                 s->plain[i], want);
        }
        assert_int_equal(rangelock_held(&s->rl), 0);
        assert_int_equal(rangelock_try(&s->rl, 0, NSLOTS - 1), 0);
        rangelock_release(&s->rl, 0, NSLOTS - 1);
        assert_int_equal(rangelock_held(&s->rl), 0);
        rangelock_destroy(&s->rl);
        free(w);
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_init_destroy),  cmocka_unit_test(test_try_overlap),
            cmocka_unit_test(test_many_disjoint), cmocka_unit_test(test_acquire_blocks),
            cmocka_unit_test(test_stress),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
