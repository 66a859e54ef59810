/* The status page's file table (src/daemon/api/ui.c): which request paths
 * name an embedded file, and that nothing else does (the routes and the
 * headers are checked against the real daemon by tests/func/t_ui.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/internal.h"
#include "api/ui_assets.h"

static void test_embedded_files(void **state)
{
        (void)state;
        assert_int_equal(ui_assets_count, 3);
        for (unsigned i = 0; i < ui_assets_count; i++) {
                assert_true(ui_assets[i].len > 0);
                assert_null(strchr(ui_assets[i].name, '/'));
                assert_int_equal(ui_assets[i].data[ui_assets[i].len], 0);
                /* the page's text files hold no NUL of their own */
                assert_int_equal(strlen((const char *)ui_assets[i].data), ui_assets[i].len);
        }
}

static void test_find(void **state)
{
        const struct ui_asset *a;

        (void)state;
        assert_non_null(a = ui_asset_find("/ui/"));
        assert_string_equal(a->name, "index.html");
        assert_ptr_equal(ui_asset_find("/ui/index.html"), a);
        assert_string_equal(ui_asset_find("/ui/app.js")->name, "app.js");
        assert_string_equal(ui_asset_find("/ui/style.css")->name, "style.css");
        assert_true(strstr((const char *)a->data, "<script src=\"app.js\"") != NULL);
}

static void test_nothing_else(void **state)
{
        static const char *const bad[] = {
            "/",
            "/ui",
            "",
            "/ui/nope",
            "/ui/app.jsx",
            "/ui/app.js/",
            "/ui//app.js",
            "/ui/./app.js",
            "/ui/../tokens",
            "/ui/..",
            "/ui/../",
            "/ui/%2e%2e/tokens",
            "/ui/..%2ftokens",
            "/ui/..\\tokens",
            "/UI/app.js",
            "/ui/APP.JS",
            "/ui/ app.js",
            "/ui/app.js ",
            "/x/ui/app.js",
            "/ui/index.html/..",
            "/ui/.",
            "/ui/tokens",
            "/v2/ui/app.js",
            "ui/app.js",
        };

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (ui_asset_find(bad[i]))
                        fail_msg("'%s' named an embedded file", bad[i]);
        }
}

static void test_paths_without_token(void **state)
{
        (void)state;
        assert_true(api_ui_path("/"));
        assert_true(api_ui_path("/ui"));
        assert_true(api_ui_path("/ui/"));
        assert_true(api_ui_path("/ui/../v2/p/volumes")); /* then 404, never routed */
        assert_false(api_ui_path("/uix"));
        assert_false(api_ui_path("/v2/p/volumes"));
        assert_false(api_ui_path("/metrics"));
        assert_false(api_ui_path("//"));
        assert_false(api_ui_path(""));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_embedded_files),
            cmocka_unit_test(test_find),
            cmocka_unit_test(test_nothing_else),
            cmocka_unit_test(test_paths_without_token),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
