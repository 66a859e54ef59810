/* Unit tests of the mirror links' credentials and endpoints
 * (cluster/link.c; docs/design/multi-site.md "Remote DR links"). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster.h"
#include "common/util.h"

/* HMAC-SHA256(cluster key, "nbd-link:" + node), checked against values
 * computed independently (Python's hmac module, key = bytes 0..31). */
static void test_psk_derive(void **state)
{
        uint8_t key[CLUSTER_KEY_BYTES], out[CLUSTER_LINK_PSK_BYTES];
        char hex[2 * CLUSTER_LINK_PSK_BYTES + 1];
        char longname[STORE_NODE_NAME_LEN + 8];

        (void)state;
        for (int i = 0; i < CLUSTER_KEY_BYTES; i++)
                key[i] = (uint8_t)i;
        assert_int_equal(cluster_link_psk_derive(key, "node-a", out), 0);
        util_hex(out, sizeof(out), hex);
        assert_string_equal(hex,
                            "26ee16636724a8bd888ae53dfded9af8a8b1ca7697ebb95943b71c83b16fe0ad");
        assert_int_equal(cluster_link_psk_derive(key, "node-b", out), 0);
        util_hex(out, sizeof(out), hex);
        assert_string_equal(hex,
                            "ec598cc0f44eb1f16fa07b45e20e19f06bfc909cf61497af2b8c9b77d75f9330");
        /* Another key, another PSK. */
        key[0] ^= 1;
        assert_int_equal(cluster_link_psk_derive(key, "node-a", out), 0);
        util_hex(out, sizeof(out), hex);
        assert_string_not_equal(hex,
                                "26ee16636724a8bd888ae53dfded9af8a8b1ca7697ebb95943b71c83b16fe0ad");
        assert_int_equal(cluster_link_psk_derive(key, "", out), -EINVAL);
        assert_int_equal(cluster_link_psk_derive(key, NULL, out), -EINVAL);
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(cluster_link_psk_derive(key, longname, out), -EINVAL);
        /* No cluster key loaded in this process: no link key either. */
        assert_true(cluster_link_psk("node-a", out, sizeof(out)) < 0);
}

static void test_endpoint_split(void **state)
{
        char host[64], port[16];

        (void)state;
        assert_int_equal(
            cluster_endpoint_split("127.0.0.22:10809", host, sizeof(host), port, sizeof(port)), 0);
        assert_string_equal(host, "127.0.0.22");
        assert_string_equal(port, "10809");
        assert_int_equal(
            cluster_endpoint_split("[::1]:10810", host, sizeof(host), port, sizeof(port)), 0);
        assert_string_equal(host, "::1");
        assert_string_equal(port, "10810");
        assert_int_equal(
            cluster_endpoint_split("dr.example:1", host, sizeof(host), port, sizeof(port)), 0);
        assert_string_equal(host, "dr.example");
        const char *bad[] = {
            "", "host", ":10809", "host:", "host:12x", "[::1]10809", "[::1", "[]:1"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(
                    cluster_endpoint_split(bad[i], host, sizeof(host), port, sizeof(port)),
                    -EINVAL);
        assert_int_equal(
            cluster_endpoint_split("h:123456789012345678", host, sizeof(host), port, sizeof(port)),
            -EINVAL);
        assert_int_equal(cluster_endpoint_split("abcdef:1", host, 4, port, sizeof(port)), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_psk_derive),
            cmocka_unit_test(test_endpoint_split),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
