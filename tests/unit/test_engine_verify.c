/* Unit tests of the online verify's throttle maths (engine/verify.h,
 * verify_pace_usec): how long to wait before the next batch so that the
 * bytes verified since the start stay within max_bps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine/verify.h"

#define MIB (1024ull * 1024)

static void test_unlimited(void **state)
{
        (void)state;
        assert_int_equal(verify_pace_usec(1ull << 40, 0, 0), 0);
        assert_int_equal(verify_pace_usec(0, 0, 1), 0);
}

static void test_ahead_waits(void **state)
{
        (void)state;
        /* 10 MiB at 10 MiB/s is due at 1 s; at 0.25 s wait 0.75 s. */
        assert_int_equal(verify_pace_usec(10 * MIB, 250000, 10 * MIB), 750000);
        /* 1 MiB at 3 MiB/s: due at 333333.33 us, rounded down. */
        assert_int_equal(verify_pace_usec(MIB, 0, 3 * MIB), 333333);
}

static void test_behind_goes_on(void **state)
{
        (void)state;
        assert_int_equal(verify_pace_usec(10 * MIB, 1000000, 10 * MIB), 0);
        assert_int_equal(verify_pace_usec(10 * MIB, 5000000, 10 * MIB), 0);
}

static void test_no_overflow(void **state)
{
        (void)state;
        /* 2^60 bytes at 1 MiB/s: 2^40 s due; bytes * 1e6 would overflow. */
        assert_true(verify_pace_usec(1ull << 60, 0, MIB) == (1ull << 40) * 1000000ull);
        /* 2^63 bytes at 2^63 B/s: 1 s. */
        assert_int_equal(verify_pace_usec(1ull << 63, 0, 1ull << 63), 1000000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_unlimited),
            cmocka_unit_test(test_ahead_waits),
            cmocka_unit_test(test_behind_goes_on),
            cmocka_unit_test(test_no_overflow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
