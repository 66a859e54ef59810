/* Tokens file: creation on first start, lookup, malformed files, modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture_tmpdir.h"

#include "auth/auth.h"

static char g_dir[FIXTURE_TMPDIR_CAP];
static char g_path[256];

static int setup(void **state)
{
        (void)state;
        if (fixture_tmpdir_make(g_dir, sizeof(g_dir), "auth") != 0)
                return -1;
        snprintf(g_path, sizeof(g_path), "%s/tokens", g_dir);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        fixture_tmpdir_remove(g_dir);
        return 0;
}

static void write_file(const char *text)
{
        FILE *f = fopen(g_path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        assert_int_equal(chmod(g_path, 0600), 0); /* the daemon refuses anything wider */
}

static void test_first_start_creates(void **state)
{
        char tok[AUTH_TOKEN_MAX], proj[AUTH_PROJECT_MAX], err[256], tok2[AUTH_TOKEN_MAX],
            proj2[AUTH_PROJECT_MAX];
        struct auth *a = NULL;
        bool created = false;
        struct stat st;

        (void)state;
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            0);
        assert_true(created);
        assert_int_equal(strlen(tok), 64);
        assert_int_equal(strlen(proj), 32);
        assert_int_equal(stat(g_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_string_equal(auth_lookup(a, tok), proj);
        assert_null(auth_lookup(a, ""));
        tok[10] ^= 1;
        assert_null(auth_lookup(a, tok));
        tok[10] ^= 1;
        tok[63] = '\0'; /* a prefix of a valid token is not valid */
        assert_null(auth_lookup(a, tok));
        auth_close(a);

        /* Second start: same token, nothing created. */
        assert_int_equal(auth_open(g_path, &a, tok2, sizeof(tok2), proj2, sizeof(proj2), &created,
                                   err, sizeof(err)),
                         0);
        assert_false(created);
        assert_string_equal(proj2, proj);
        auth_close(a);
}

static void test_several_projects(void **state)
{
        char tok[AUTH_TOKEN_MAX], proj[AUTH_PROJECT_MAX], err[256];
        struct auth *a = NULL;
        bool created;

        (void)state;
        write_file("# comment\n\naaaa p1\nbbbb p2\n  cccc   p3  \n");
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            0);
        assert_false(created);
        assert_string_equal(tok, "aaaa");
        assert_string_equal(auth_lookup(a, "bbbb"), "p2");
        assert_string_equal(auth_lookup(a, "cccc"), "p3");
        assert_null(auth_lookup(a, "dddd"));
        auth_close(a);
}

static void test_malformed(void **state)
{
        char tok[AUTH_TOKEN_MAX], proj[AUTH_PROJECT_MAX], err[256];
        struct auth *a = NULL;
        bool created;

        (void)state;
        write_file("aaaa p1\nlonely\n");
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            -EINVAL);
        assert_non_null(strstr(err, "line 2"));
        write_file("aaaa p1 extra\n");
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            -EINVAL);
        write_file("aaaa p1 operator extra\n");
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            -EINVAL);
}

static void test_operator_role(void **state)
{
        char tok[AUTH_TOKEN_MAX], proj[AUTH_PROJECT_MAX], err[256];
        struct auth *a = NULL;
        bool created, op = true;

        (void)state;
        write_file("aaaa p1\nbbbb p2 operator\n");
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            0);
        assert_string_equal(auth_lookup_role(a, "aaaa", &op), "p1");
        assert_false(op);
        assert_string_equal(auth_lookup_role(a, "bbbb", &op), "p2");
        assert_true(op);
        assert_null(auth_lookup_role(a, "cccc", &op));
        assert_false(op);
        auth_close(a);
}

/* A tokens file that group or others may read or write is refused, with a
 * message that says how to fix it; 0600 and 0400 are accepted. */
static void test_mode_refused(void **state)
{
        static const mode_t bad[] = {0640, 0620, 0610, 0604, 0602, 0601, 0644, 0666};
        char tok[AUTH_TOKEN_MAX], proj[AUTH_PROJECT_MAX], err[512], fix[300];
        struct auth *a = NULL;
        bool created = true;

        (void)state;
        snprintf(fix, sizeof(fix), "chmod 600 %s", g_path);
        write_file("aaaa p1\n");
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(chmod(g_path, bad[i]), 0);
                assert_int_equal(auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj),
                                           &created, err, sizeof(err)),
                                 -EPERM);
                assert_non_null(strstr(err, fix));
                assert_false(created);
        }
        /* An empty file with a wide mode is refused too, not filled with a
         * new token others could read. */
        write_file("");
        assert_int_equal(chmod(g_path, 0644), 0);
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            -EPERM);
        assert_false(created);
        write_file("aaaa p1\n");
        assert_int_equal(chmod(g_path, 0400), 0);
        assert_int_equal(
            auth_open(g_path, &a, tok, sizeof(tok), proj, sizeof(proj), &created, err, sizeof(err)),
            0);
        assert_string_equal(auth_lookup(a, "aaaa"), "p1");
        auth_close(a);
        assert_int_equal(chmod(g_path, 0600), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_first_start_creates, setup, teardown),
            cmocka_unit_test_setup_teardown(test_several_projects, setup, teardown),
            cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_operator_role, setup, teardown),
            cmocka_unit_test_setup_teardown(test_mode_refused, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
