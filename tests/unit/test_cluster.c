/* Unit tests of the cluster key file and the internal channel's request
 * check (cluster/node.c, cluster/forward.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture_tmpdir.h"

#include "cluster/cluster.h"
#include "common/util.h"

static char g_dir[FIXTURE_TMPDIR_CAP];

static void path_in(char *out, size_t cap, const char *leaf)
{
        snprintf(out, cap, "%s/%s", g_dir, leaf);
}

/* Created when missing (0600, 64 hex digits), read back identical; refused
 * when group/others can read it, or when it is not 64 hex digits. */
static void test_key_file(void **state)
{
        uint8_t k1[CLUSTER_KEY_BYTES], k2[CLUSTER_KEY_BYTES];
        char path[128], err[256];
        bool created;
        struct stat sb;
        FILE *f;

        (void)state;
        path_in(path, sizeof(path), "key");
        assert_int_equal(cluster_key_load(path, k1, &created, err, sizeof(err)), 0);
        assert_true(created);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_int_equal(sb.st_size, 65);
        assert_int_equal(cluster_key_load(path, k2, &created, err, sizeof(err)), 0);
        assert_false(created);
        assert_memory_equal(k1, k2, sizeof(k1));

        chmod(path, 0640);
        assert_int_equal(cluster_key_load(path, k2, &created, err, sizeof(err)), -EPERM);
        assert_non_null(strstr(err, "chmod 600"));
        chmod(path, 0600);
        f = fopen(path, "w");
        fputs("abcd\n", f);
        fclose(f);
        assert_int_equal(cluster_key_load(path, k2, &created, err, sizeof(err)), -EINVAL);
        f = fopen(path, "w");
        for (int i = 0; i < 64; i++)
                fputc(i == 10 ? 'g' : 'a', f);
        fclose(f);
        assert_int_equal(cluster_key_load(path, k2, &created, err, sizeof(err)), -EINVAL);
        unlink(path);
}

static void sign(const char *ts, const char *nonce, const char *body, char sig[65])
{
        assert_int_equal(cluster_forward_sign("POST", "/v2/p/volumes", ts, nonce, body,
                                              strlen(body), "p", "member", "node-a", sig),
                         0);
}

/* A signed request passes once; a replay, a changed body, path, project or
 * role, a stale or future timestamp, or a missing header does not. */
static void test_verify(void **state)
{
        uint8_t key[CLUSTER_KEY_BYTES];
        char sig[65], ts[24], old[24], sig_old[65], msg[160];
        const char *body = "{\"volume\":{}}";
        const char *nonce = "00112233445566778899aabbccddeeff";
        const char *nonce2 = "ffeeddccbbaa99887766554433221100";
        struct cluster_auth_hdrs h;

        (void)state;
        memset(key, 7, sizeof(key));
        cluster_forward_set_key(key, "node-a");
        snprintf(ts, sizeof(ts), "%lld", (long long)(util_now_usec() / 1000000));
        sign(ts, nonce, body, sig);
        h = (struct cluster_auth_hdrs){"node-a", ts, nonce, "p", "member", sig};

        /* Tampered fields (checked before the nonce is taken). */
        assert_int_equal(
            cluster_forward_verify("POST", "/v2/p/volumes", "{}", 2, &h, msg, sizeof(msg)),
            -EACCES);
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes/x", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        h.project = "q";
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        h.project = "p";
        h.role = "operator";
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        h.role = "member";
        h.node = "node-b";
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        h.node = "node-a";
        h.signature = NULL;
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        h.signature = sig;

        /* Once, then a replay. */
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         0);
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        assert_non_null(strstr(msg, "replayed"));

        /* 31 s old, and 31 s ahead: refused even when signed right. */
        snprintf(old, sizeof(old), "%lld", (long long)(util_now_usec() / 1000000 - 31));
        sign(old, nonce2, body, sig_old);
        h = (struct cluster_auth_hdrs){"node-a", old, nonce2, "p", "member", sig_old};
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        assert_non_null(strstr(msg, "stale"));
        snprintf(old, sizeof(old), "%lld", (long long)(util_now_usec() / 1000000 + 31));
        sign(old, nonce2, body, sig_old);
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
        /* Another key signs differently. */
        memset(key, 8, sizeof(key));
        cluster_forward_set_key(key, "node-a");
        snprintf(ts, sizeof(ts), "%lld", (long long)(util_now_usec() / 1000000));
        h = (struct cluster_auth_hdrs){"node-a", ts, nonce2, "p", "member", sig_old};
        assert_int_equal(cluster_forward_verify("POST", "/v2/p/volumes", body, strlen(body), &h,
                                                msg, sizeof(msg)),
                         -EACCES);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_key_file),
            cmocka_unit_test(test_verify),
        };
        int rc;

        if (fixture_tmpdir_make(g_dir, sizeof(g_dir), "cluster") != 0)
                return 1;
        rc = cmocka_run_group_tests(tests, NULL, NULL);
        fixture_tmpdir_remove(g_dir);
        return rc;
}
