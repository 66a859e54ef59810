/* The unit tests' scratch-directory fixture (fixture_tmpdir.h): a fresh
 * private directory per call, and a removal that takes everything below
 * it, never what a symbolic link in it points to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture_tmpdir.h"

static void touch(const char *dir, const char *name)
{
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        assert_non_null(f = fopen(path, "w"));
        fputs("x", f);
        fclose(f);
}

static void test_make(void **state)
{
        char a[FIXTURE_TMPDIR_CAP], b[FIXTURE_TMPDIR_CAP];
        struct stat st;

        (void)state;
        assert_int_equal(fixture_tmpdir_make(a, sizeof(a), "fxt"), 0);
        assert_int_equal(fixture_tmpdir_make(b, sizeof(b), "fxt"), 0);
        assert_int_equal(strncmp(a, "/tmp/evsrep-fxt-", 16), 0);
        assert_string_not_equal(a, b);
        assert_int_equal(stat(a, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
        assert_int_equal(fixture_tmpdir_remove(a), 0);
        assert_int_equal(fixture_tmpdir_remove(b), 0);
        /* too long a tag for the buffer: refused, the buffer emptied */
        assert_int_equal(fixture_tmpdir_make(a, 24, "a-tag-that-does-not-fit"), -1);
        assert_string_equal(a, "");
        assert_int_equal(fixture_tmpdir_remove(a), -1); /* "" is never removed */
}

/* Files, a nested directory, a leftover ".tmp", and a symbolic link to a
 * directory outside: all gone but the link's target. */
static void test_remove_tree(void **state)
{
        char dir[FIXTURE_TMPDIR_CAP], out[FIXTURE_TMPDIR_CAP], sub[128], lnk[128], kept[160];

        (void)state;
        assert_int_equal(fixture_tmpdir_make(dir, sizeof(dir), "fxt"), 0);
        assert_int_equal(fixture_tmpdir_make(out, sizeof(out), "fxt-out"), 0);
        touch(out, "kept");
        touch(dir, "pair-test.meta");
        touch(dir, "pair-test.drcow.tmp");
        snprintf(sub, sizeof(sub), "%s/sub", dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        touch(sub, "deep");
        snprintf(lnk, sizeof(lnk), "%s/link", dir);
        assert_int_equal(symlink(out, lnk), 0);

        assert_int_equal(fixture_tmpdir_remove(dir), 0);
        assert_int_equal(access(dir, F_OK), -1);
        snprintf(kept, sizeof(kept), "%s/kept", out);
        assert_int_equal(access(kept, F_OK), 0); /* the link was not followed */
        assert_int_equal(fixture_tmpdir_remove(out), 0);
        assert_int_equal(access(out, F_OK), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_make),
            cmocka_unit_test(test_remove_tree),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
