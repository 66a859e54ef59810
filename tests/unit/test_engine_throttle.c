/* Unit tests of the resync throttle (engine/throttle.h) with an injected
 * clock, no sleeps: the token bucket holds a simulated copy to its ceiling
 * (within one batch), a limit changed while a worker waits applies at once,
 * the rate is measured and reads 0 when idle (the sync rate is kept), and
 * the adaptive controller halves the limit when client write latency rises
 * above its baseline, never below the floor, and climbs back to the
 * ceiling when it falls. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine/throttle.h"

#define MIB (1024ull * 1024)

static int64_t g_now = 1000000;

static int64_t fake_clock(void *ctx)
{
        (void)ctx;
        return g_now;
}

/* A worker copying batch bytes at copy_bps (instantly when 0) for
 * duration_usec, sleeping as the throttle says; returns the bytes copied.
 * lat_us: mean client write latency reported per batch (8 writes). */
static uint64_t simulate(struct throttle *t, uint64_t batch, uint64_t copy_bps,
                         int64_t duration_usec, uint64_t lat_us)
{
        int64_t end = g_now + duration_usec;
        uint64_t total = 0;

        while (g_now < end) {
                uint64_t w;

                if (copy_bps)
                        g_now += (int64_t)(batch * 1000000 / copy_bps);
                total += batch;
                w = throttle_charge(t, batch, batch, lat_us * 8, 8);
                while (w > 0) { /* sleeps in slices, as throttle_pace does */
                        g_now += (int64_t)(w < 20000 ? w : 20000);
                        w = throttle_wait_usec(t);
                }
        }
        return total;
}

static void test_unlimited(void **state)
{
        struct throttle *t = throttle_new(fake_clock, NULL);
        struct throttle_state st;

        (void)state;
        assert_int_equal(throttle_charge(t, 64 * MIB, 64 * MIB, 0, 0), 0);
        simulate(t, 16 * MIB, 400 * MIB, 3000000, 0);
        throttle_get(t, &st);
        assert_int_equal(st.limit_bps, 0);
        /* measured: 400 MiB/s, within a batch per window */
        assert_true(st.rate_bps > 360 * MIB && st.rate_bps < 440 * MIB);
        assert_true(st.sync_rate_bps > 360 * MIB);
        throttle_free(t);
}

static void test_ceiling(void **state)
{
        static const uint64_t ceilings[] = {5 * MIB, 50 * MIB, 300 * MIB};
        static const uint64_t copy[] = {0, 100 * MIB, 1000 * MIB};

        (void)state;
        for (size_t i = 0; i < sizeof(ceilings) / sizeof(*ceilings); i++)
                for (size_t k = 0; k < sizeof(copy) / sizeof(*copy); k++) {
                        struct throttle *t = throttle_new(fake_clock, NULL);
                        struct throttle_cfg cfg = {.max_bps = ceilings[i]};
                        struct throttle_state st;
                        uint64_t got, want;
                        int64_t t0 = g_now;

                        assert_int_equal(throttle_set(t, &cfg), 0);
                        got = simulate(t, 16 * MIB, copy[k], 20000000, 0);
                        /* rate: min(ceiling, copy speed), within one batch (the
                         * first, and the credit of an idle bucket) */
                        want = copy[k] && copy[k] < ceilings[i] ? copy[k] : ceilings[i];
                        want = want * (uint64_t)(g_now - t0) / 1000000;
                        assert_true(got <= want + 2 * 16 * MIB);
                        assert_true(got + 16 * MIB >= want * 95 / 100);
                        throttle_get(t, &st);
                        assert_int_equal(st.limit_bps, ceilings[i]);
                        throttle_free(t);
                }
}

static void test_change_while_waiting(void **state)
{
        struct throttle *t = throttle_new(fake_clock, NULL);
        struct throttle_cfg slow = {.max_bps = 1 * MIB}, fast = {.max_bps = 100 * MIB}, none = {0};
        uint64_t w;

        (void)state;
        assert_int_equal(throttle_set(t, &slow), 0);
        w = throttle_charge(t, 16 * MIB, 16 * MIB, 0, 0);
        assert_true(w >= 15 * 1000000ull); /* ~16 s at 1 MiB/s */
        g_now += 100000;
        assert_int_equal(throttle_set(t, &fast), 0);
        w = throttle_wait_usec(t);
        assert_true(w > 0 && w < 200000); /* the debt at 100 MiB/s: ~0.16 s */
        assert_int_equal(throttle_set(t, &none), 0);
        assert_int_equal(throttle_wait_usec(t), 0);
        throttle_free(t);
}

/* An idle bucket holds one batch of credit, not more: a short run after a
 * long idle stays at its ceiling. */
static void test_idle_credit(void **state)
{
        struct throttle *t = throttle_new(fake_clock, NULL);
        struct throttle_cfg cfg = {.max_bps = 100 * MIB};
        uint64_t got;
        int64_t t0;

        (void)state;
        assert_int_equal(throttle_set(t, &cfg), 0);
        simulate(t, 16 * MIB, 0, 1000000, 0);
        g_now += 60 * 1000000ll; /* idle for a minute */
        t0 = g_now;
        got = simulate(t, 16 * MIB, 0, 5000000, 0);
        /* 5 s at 100 MiB/s, plus at most one batch of credit and one batch in flight */
        assert_true(got <= 100 * MIB * (uint64_t)(g_now - t0) / 1000000 + 2 * 16 * MIB);
        throttle_free(t);
}

static void test_bad_cfg(void **state)
{
        struct throttle *t = throttle_new(fake_clock, NULL);
        struct throttle_cfg bad = {.max_bps = 5 * MIB, .min_bps = 10 * MIB};
        struct throttle_cfg floor_only = {.min_bps = 10 * MIB, .adaptive = true};

        (void)state;
        assert_int_equal(throttle_set(t, &bad), -EINVAL);
        assert_int_equal(throttle_set(t, &floor_only), 0);
        throttle_free(t);
}

static void test_idle_rate(void **state)
{
        struct throttle *t = throttle_new(fake_clock, NULL);
        struct throttle_state st;

        (void)state;
        simulate(t, 4 * MIB, 80 * MIB, 2000000, 0);
        throttle_get(t, &st);
        assert_true(st.rate_bps > 0);
        g_now += THROTTLE_IDLE_USEC + 1;
        throttle_get(t, &st);
        assert_int_equal(st.rate_bps, 0);
        assert_true(st.sync_rate_bps > 70 * MIB && st.sync_rate_bps < 90 * MIB);
        throttle_free(t);
}

static void test_adaptive(void **state)
{
        struct throttle *t = throttle_new(fake_clock, NULL);
        struct throttle_cfg cfg = {.max_bps = 100 * MIB, .min_bps = 10 * MIB, .adaptive = true};
        struct throttle_state st;
        uint64_t prev;

        (void)state;
        assert_int_equal(throttle_set(t, &cfg), 0);
        /* calm: 100 us writes, the limit stays at the ceiling */
        simulate(t, 4 * MIB, 0, 3000000, 100);
        throttle_get(t, &st);
        assert_int_equal(st.limit_bps, 100 * MIB);
        assert_true(st.lat_baseline_usec >= 90 && st.lat_baseline_usec <= 110);
        /* client latency x10: the limit halves window after window ... */
        simulate(t, 1 * MIB, 0, THROTTLE_WINDOW_USEC + 100000, 1000);
        throttle_get(t, &st);
        assert_true(st.limit_bps <= 50 * MIB);
        prev = st.limit_bps;
        /* ... and stops at the floor; the baseline did not follow */
        simulate(t, 1 * MIB, 0, 10000000, 1000);
        throttle_get(t, &st);
        assert_true(st.limit_bps < prev);
        assert_int_equal(st.limit_bps, 10 * MIB);
        assert_true(st.lat_baseline_usec <= 110);
        assert_int_equal(st.lat_recent_usec, 1000);
        /* latency back to normal: up again, to the ceiling and no further */
        simulate(t, 1 * MIB, 0, 20000000, 100);
        throttle_get(t, &st);
        assert_int_equal(st.limit_bps, 100 * MIB);
        throttle_free(t);
}

static void test_adaptive_no_ceiling(void **state)
{
        struct throttle *t = throttle_new(fake_clock, NULL);
        struct throttle_cfg cfg = {.adaptive = true}; /* floor: 1 MiB/s */
        struct throttle_state st;

        (void)state;
        assert_int_equal(throttle_set(t, &cfg), 0);
        simulate(t, 4 * MIB, 200 * MIB, 2000000, 50);
        throttle_get(t, &st);
        assert_int_equal(st.limit_bps, 0);
        simulate(t, 4 * MIB, 200 * MIB, 5000000, 5000);
        throttle_get(t, &st);
        assert_true(st.limit_bps > 0 && st.limit_bps < 100 * MIB);
        assert_true(st.limit_bps >= 1 * MIB);
        /* calm again: the limit grows until it no longer binds, then none */
        simulate(t, 4 * MIB, 200 * MIB, 30000000, 50);
        throttle_get(t, &st);
        assert_int_equal(st.limit_bps, 0);
        throttle_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_unlimited),
            cmocka_unit_test(test_ceiling),
            cmocka_unit_test(test_change_while_waiting),
            cmocka_unit_test(test_idle_credit),
            cmocka_unit_test(test_bad_cfg),
            cmocka_unit_test(test_idle_rate),
            cmocka_unit_test(test_adaptive),
            cmocka_unit_test(test_adaptive_no_ceiling),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
