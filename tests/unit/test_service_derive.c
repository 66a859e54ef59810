/* semantics.md "Group actions": a group's replication_status derived from
 * its pairs' (any error -> error; any copying -> copying; all active ->
 * active; all active-stopped or none -> active-stopped; else inactive). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "service/service.h"

#define D(...)                                                                                     \
        service_group_derive((const char *const[]){__VA_ARGS__},                                   \
                             sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

static void test_derive(void **state)
{
        (void)state;
        assert_string_equal(service_group_derive(NULL, 0), "active-stopped");
        assert_string_equal(D("active"), "active");
        assert_string_equal(D("active", "active"), "active");
        assert_string_equal(D("active", "copying"), "copying");
        assert_string_equal(D("copying", "error"), "error");
        assert_string_equal(D("active-stopped", "error", "active"), "error");
        assert_string_equal(D("active-stopped", "active-stopped"), "active-stopped");
        assert_string_equal(D("active-stopped", "inactive"), "inactive");
        assert_string_equal(D("active-stopped", "active"), "inactive");
        assert_string_equal(D("inactive", "copying"), "copying");
        assert_string_equal(D("inactive"), "inactive");
}

int main(void)
{
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_derive)};
        return cmocka_run_group_tests(tests, NULL, NULL);
}
