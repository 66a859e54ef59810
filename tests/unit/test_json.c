/* Declarative JSON validation (json/jcheck). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "json/jcheck.h"

static const struct jfield g_fields[] = {
    {"size", JT_INT, true, 1, 32768},
    {"name", JT_STRING, false, 0, 255},
    {"flag", JT_BOOL, false, 0, 0},
    {"md", JT_OBJECT, false, 0, 0},
};

static int check(const char *text, char *msg, size_t len)
{
        json_t *root = NULL;
        json_t *v = jcheck_parse_top(text, strlen(text), "volume", &root, msg, len);
        int rc = v ? jcheck_object(v, "volume", g_fields, ARRAY_SIZE(g_fields), msg, len) : -EINVAL;

        json_decref(root);
        return rc;
}

static void expect_bad(const char *text, const char *needle)
{
        char msg[512] = "";

        assert_int_equal(check(text, msg, sizeof(msg)), -EINVAL);
        if (!strstr(msg, needle))
                fail_msg("message '%s' lacks '%s' for %s", msg, needle, text);
}

static void test_valid(void **state)
{
        char msg[512];

        (void)state;
        assert_int_equal(check("{\"volume\": {\"size\": 1}}", msg, sizeof(msg)), 0);
        assert_int_equal(check("{\"volume\": {\"size\": 32768, \"name\": null, \"flag\": true, "
                               "\"md\": {}, \"extra\": 1}}",
                               msg, sizeof(msg)),
                         0);
}

static void test_invalid(void **state)
{
        char name[300];

        (void)state;
        expect_bad("", "JSON body");
        expect_bad("nope", "not valid JSON");
        expect_bad("{\"volume\": {\"size\": 1}, \"x\": 1}", "single key");
        expect_bad("{\"vol\": {\"size\": 1}}", "single key");
        expect_bad("{\"volume\": {\"size\": 1, \"size\": 2}}", "not valid JSON");
        expect_bad("{\"volume\": 3}", "must be an object");
        expect_bad("{\"volume\": {}}", "volume.size is required");
        expect_bad("{\"volume\": {\"size\": null}}", "volume.size is required");
        expect_bad("{\"volume\": {\"size\": \"1\"}}", "volume.size must be an integer");
        expect_bad("{\"volume\": {\"size\": 1.0}}", "volume.size must be an integer");
        expect_bad("{\"volume\": {\"size\": 0}}", "between 1 and 32768");
        expect_bad("{\"volume\": {\"size\": 32769}}", "between 1 and 32768");
        expect_bad("{\"volume\": {\"size\": 1, \"name\": 5}}", "volume.name must be a string");
        expect_bad("{\"volume\": {\"size\": 1, \"flag\": \"yes\"}}",
                   "volume.flag must be a boolean");
        expect_bad("{\"volume\": {\"size\": 1, \"md\": []}}", "volume.md must be an object");
        expect_bad("{\"volume\": {\"size\": 1, \"name\": \"a\\u0000b\"}}", "not allowed");
        memset(name, 'x', 256);
        name[256] = '\0';
        char body[400];
        snprintf(body, sizeof(body), "{\"volume\": {\"size\": 1, \"name\": \"%s\"}}", name);
        expect_bad(body, "at most 255 bytes");
        name[255] = '\0';
        snprintf(body, sizeof(body), "{\"volume\": {\"size\": 1, \"name\": \"%s\"}}", name);
        char msg[512];
        assert_int_equal(check(body, msg, sizeof(msg)), 0);
}

static void test_utf8(void **state)
{
        (void)state;
        assert_true(util_utf8_valid("h\xc3\xa9llo", 6));
        assert_true(util_utf8_valid("\xf0\x9f\x98\x80", 4));
        assert_false(util_utf8_valid("\xc3", 1));
        assert_false(util_utf8_valid("\xc0\xaf", 2));         /* overlong */
        assert_false(util_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(util_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        assert_false(util_utf8_valid("a\0b", 3));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_valid),
            cmocka_unit_test(test_invalid),
            cmocka_unit_test(test_utf8),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
