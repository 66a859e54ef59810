/* Unit tests of the evsrepd configuration: defaults, INI, flags, finalize. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "config/config.h"

static int parse(struct evsrep_config *c, const char *text, char *err, size_t errlen)
{
        return config_parse_ini(c, text, strlen(text), err, errlen);
}

/* Parse text over defaults and expect failure with every needle in err. */
static void expect_error(const char *text, const char *needle1, const char *needle2)
{
        struct evsrep_config c, before;
        char err[512] = "";

        config_defaults(&c);
        memcpy(&before, &c, sizeof(c)); /* bytes, padding included */
        assert_int_equal(parse(&c, text, err, sizeof(err)), -EINVAL);
        if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
                fail_msg("error '%s' lacks '%s' / '%s'", err, needle1, needle2 ? needle2 : "");
        /* A failed parse leaves the config untouched. */
        assert_memory_equal(&c, &before, sizeof(c));
}

static void test_defaults(void **state)
{
        struct evsrep_config c;
        char err[256];

        (void)state;
        config_defaults(&c);
        assert_string_equal(c.data_dir, "./data");
        assert_string_equal(c.listen_host, "127.0.0.1");
        assert_int_equal(c.listen_port, 8776);
        assert_int_equal(c.nsites, 2);
        assert_string_equal(c.sites[0].name, "az1");
        assert_string_equal(c.sites[0].nbd_host, "127.0.0.1");
        assert_int_equal(c.sites[0].nbd_port, 10809);
        assert_string_equal(c.sites[1].name, "az2");
        assert_int_equal(c.sites[1].nbd_port, 10810);
        assert_int_equal(c.chunk_bytes, 65536);
        assert_int_equal(c.http_threads, 8);
        assert_int_equal(c.nbd_threads, 16);
        assert_false(c.metrics_public);
        assert_int_equal(c.log_level, LOG_LVL_INFO);
        assert_string_equal(c.db_path, "");
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_string_equal(c.db_path, "./data/evsrep.db");
        assert_string_equal(c.tokens_path, "./data/tokens");
        assert_string_equal(c.sites[0].dir, "./data/az1");
        assert_string_equal(c.sites[1].dir, "./data/az2");
        assert_ptr_equal(config_site(&c, "az2"), &c.sites[1]);
        assert_null(config_site(&c, "az3"));
        assert_null(config_site(&c, NULL));
}

static void test_full_ini(void **state)
{
        struct evsrep_config c;
        char err[256] = "";
        const char *ini = "\xEF\xBB\xBF; evsrepd example\r\n"
                          "# comment\n"
                          "\n"
                          "[DEFAULT]\n"
                          "data_dir = /var/lib/evsrep        ; inline comment\n"
                          "listen=0.0.0.0:9776\n"
                          "  availability_zones =  east , west ,dr-3  \n"
                          "chunk_size = 4096\n"
                          "http_threads = 1\n"
                          "nbd_threads = 256\n"
                          "metrics_public = yes\n"
                          "log_level = debug\n"
                          "db = /db/x.db\n"
                          "[az:west]\n"
                          "nbd_listen = [::1]:20000\n"
                          "dir = /srv/west#1\n"
                          "[ az:east ]   # spaces inside the brackets are trimmed\n"
                          "nbd_listen = 10.0.0.1:20001";

        (void)state;
        config_defaults(&c);
        assert_int_equal(parse(&c, ini, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_string_equal(c.data_dir, "/var/lib/evsrep");
        assert_string_equal(c.listen_host, "0.0.0.0");
        assert_int_equal(c.listen_port, 9776);
        assert_int_equal(c.nsites, 3);
        assert_string_equal(c.sites[0].name, "east");
        assert_string_equal(c.sites[0].nbd_host, "10.0.0.1");
        assert_int_equal(c.sites[0].nbd_port, 20001);
        assert_string_equal(c.sites[1].name, "west");
        assert_string_equal(c.sites[1].nbd_host, "::1");
        assert_int_equal(c.sites[1].nbd_port, 20000);
        assert_string_equal(c.sites[1].dir, "/srv/west#1"); /* '#' not after space */
        assert_string_equal(c.sites[2].name, "dr-3");
        assert_string_equal(c.sites[2].nbd_host, "127.0.0.1");
        assert_int_equal(c.sites[2].nbd_port, 10811); /* 10809 + index */
        assert_int_equal(c.chunk_bytes, 4096);
        assert_int_equal(c.http_threads, 1);
        assert_int_equal(c.nbd_threads, 256);
        assert_true(c.metrics_public);
        assert_int_equal(c.log_level, LOG_LVL_DEBUG);
        assert_string_equal(c.db_path, "/db/x.db");
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_string_equal(c.db_path, "/db/x.db"); /* explicit path kept */
        assert_string_equal(c.tokens_path, "/var/lib/evsrep/tokens");
        assert_string_equal(c.sites[0].dir, "/var/lib/evsrep/east");
        assert_string_equal(c.sites[1].dir, "/srv/west#1");
        assert_string_equal(c.sites[2].dir, "/var/lib/evsrep/dr-3");
}

static void test_az_section_before_default(void **state)
{
        struct evsrep_config c;
        char err[256] = "";

        (void)state;
        /* Section order does not matter: the AZ set is known first. */
        config_defaults(&c);
        assert_int_equal(parse(&c,
                               "[az:x]\nnbd_listen = 127.0.0.1:7000\n"
                               "[DEFAULT]\navailability_zones = x, y\n",
                               err, sizeof(err)),
                         0);
        assert_int_equal(c.sites[0].nbd_port, 7000);
        assert_int_equal(c.sites[1].nbd_port, 10810);
}

static void test_empty_and_comment_only(void **state)
{
        struct evsrep_config c, d;
        char err[64];

        (void)state;
        config_defaults(&c);
        memcpy(&d, &c, sizeof(c));
        assert_int_equal(config_parse_ini(&c, "", 0, err, sizeof(err)), 0);
        assert_int_equal(config_parse_ini(&c, NULL, 0, err, sizeof(err)), 0);
        assert_int_equal(parse(&c, "; nothing\n\n   # here\n[DEFAULT]\n", err, sizeof(err)), 0);
        assert_memory_equal(&c, &d, sizeof(c));
}

static void test_bool_values(void **state)
{
        static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};
        struct evsrep_config c;
        char text[128], err[256];

        (void)state;
        for (int i = 0; i < 3; i++) {
                config_defaults(&c);
                snprintf(text, sizeof(text), "[DEFAULT]\nmetrics_public = %s\n", yes[i]);
                assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
                assert_true(c.metrics_public);
                snprintf(text, sizeof(text), "[DEFAULT]\nmetrics_public = %s\n", no[i]);
                assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
                assert_false(c.metrics_public);
        }
}

static void test_errors_syntax(void **state)
{
        (void)state;
        expect_error("data_dir = /x\n", "line 1", "outside any section");
        expect_error("[DEFAULT]\n[nova]\n", "line 2", "unknown section [nova]");
        expect_error("[DEFAULT\n", "line 1", "malformed section header");
        expect_error("[]\n", "line 1", "malformed section header");
        expect_error("[DEFAULT]\njust words\n", "line 2", "expected 'key = value'");
        expect_error("[DEFAULT]\n = 1\n", "line 2", "missing key");
        expect_error("[DEFAULT]\ndata_dri = /x\n", "line 2", "unknown key 'data_dri' in [DEFAULT]");
        expect_error("[az:az1]\nlisten = 1.2.3.4:5\n", "line 2", "unknown key 'listen'");
        expect_error("[DEFAULT]\nhttp_threads = 2\n\nhttp_threads = 3\n", "line 4",
                     "first on line 2");
        expect_error("[DEFAULT]\n[DEFAULT]\n", "line 2", "appears twice");
        expect_error("[az:az1]\ndir=/a\n[az:az1]\n", "line 3", "appears twice");
        expect_error("[az:az1]\ndir=/a\ndir=/b\n", "line 3", "set twice in [az:az1]");
        expect_error("[az:az9]\ndir = /a\n", "line 1", "not in availability_zones");
        expect_error("[az:AZ1]\n", "line 1", "not a valid availability zone name");
}

static void test_errors_nul_and_long_lines(void **state)
{
        struct evsrep_config c;
        char err[256];
        static const char nul[] = "[DEFAULT]\nlog_level = in\0fo\n";
        char *big;

        (void)state;
        config_defaults(&c);
        assert_int_equal(config_parse_ini(&c, nul, sizeof(nul) - 1, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "line 2: contains a NUL byte"));

        big = malloc(20000);
        memcpy(big, "[DEFAULT]\ndata_dir = ", 21);
        memset(big + 21, 'x', 20000 - 21);
        assert_int_equal(config_parse_ini(&c, big, 20000, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "line 2: longer than"));
        /* A path over the path limit, on a line within the line limit. */
        assert_int_equal(config_parse_ini(&c, big, 5000, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "path is longer than"));
        free(big);

        /* Tiny and absent error buffers are fine. */
        assert_int_equal(parse(&c, "[bogus]\n", err, 5), -EINVAL);
        assert_int_equal(strlen(err), 4);
        assert_int_equal(parse(&c, "[bogus]\n", NULL, 0), -EINVAL);
}

static void test_errors_values(void **state)
{
        (void)state;
        expect_error("[DEFAULT]\nlisten = 127.0.0.1\n", "line 2", "key 'listen'");
        expect_error("[DEFAULT]\nlisten = 127.0.0.1:65536\n", "line 2", "port in 0..65535");
        expect_error("[DEFAULT]\nlisten = :80\n", "line 2", "HOST:PORT");
        expect_error("[DEFAULT]\nchunk_size = 65535\n", "key 'chunk_size'", "power of two");
        expect_error("[DEFAULT]\nchunk_size = 2048\n", "key 'chunk_size'", "power of two");
        expect_error("[DEFAULT]\nchunk_size = 134217728\n", "key 'chunk_size'", "power of two");
        expect_error("[DEFAULT]\nchunk_size = 64k\n", "key 'chunk_size'", "'64k'");
        expect_error("[DEFAULT]\nchunk_size = 99999999999999999999999\n", "key 'chunk_size'", NULL);
        expect_error("[DEFAULT]\nchunk_size = -4096\n", "key 'chunk_size'", NULL);
        expect_error("[DEFAULT]\nhttp_threads = 0\n", "key 'http_threads'", "1..256");
        expect_error("[DEFAULT]\nnbd_threads = 257\n", "key 'nbd_threads'", "1..256");
        expect_error("[DEFAULT]\nnbd_threads = +3\n", "key 'nbd_threads'", NULL);
        expect_error("[DEFAULT]\nnbd_threads =\n", "key 'nbd_threads'", NULL);
        expect_error("[DEFAULT]\nmetrics_public = maybe\n", "key 'metrics_public'", "boolean");
        expect_error("[DEFAULT]\nlog_level = verbose\n", "key 'log_level'", "debug, info");
        expect_error("[DEFAULT]\ndata_dir =\n", "key 'data_dir'", "path is empty");
        expect_error("[DEFAULT]\navailability_zones = a,,b\n", "availability_zones", "empty");
        expect_error("[DEFAULT]\navailability_zones =\n", "availability_zones", "empty");
        expect_error("[DEFAULT]\navailability_zones = a, A\n", "availability_zones",
                     "not a valid availability zone name");
        expect_error("[DEFAULT]\navailability_zones = a b\n", "availability_zones", NULL);
        expect_error("[DEFAULT]\navailability_zones = a, b, a\n", "availability_zones",
                     "listed twice");
        expect_error("[DEFAULT]\navailability_zones = a,b,c,d,e,f,g,h,i\n", "availability_zones",
                     "more than 8");
        expect_error("[DEFAULT]\navailability_zones = "
                     "a234567890123456789012345678901234567890123456789012345678901234\n",
                     "availability_zones", "not a valid");
        expect_error("[az:az2]\nnbd_listen = 127.0.0.1:x\n", "line 2",
                     "key 'nbd_listen' in [az:az2]");
}

/* HTTP hardening keys: defaults, parsing, and the checks of the whole. */
static void test_http_hardening_keys(void **state)
{
        struct evsrep_config c;
        char err[512];
        const char *text = "[DEFAULT]\nhttp_max_connections = 100\n"
                           "http_max_connections_per_ip = 100\nhttp_connection_timeout = 5\n"
                           "tls_cert = /etc/c.pem\ntls_key = /etc/k.pem\n";

        (void)state;
        config_defaults(&c);
        assert_int_equal(c.http_max_conns, 2048);
        assert_int_equal(c.http_max_conns_per_ip, 64);
        assert_int_equal(c.http_timeout_sec, 30);
        assert_string_equal(c.tls_cert, "");
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_int_equal(c.http_max_conns, 100);
        assert_int_equal(c.http_max_conns_per_ip, 100);
        assert_int_equal(c.http_timeout_sec, 5);
        assert_string_equal(c.tls_cert, "/etc/c.pem");
        assert_string_equal(c.tls_key, "/etc/k.pem");

        expect_error("[DEFAULT]\nhttp_max_connections = 0\n", "key 'http_max_connections'",
                     "1..65536");
        expect_error("[DEFAULT]\nhttp_max_connections_per_ip = 65537\n",
                     "key 'http_max_connections_per_ip'", "1..65536");
        expect_error("[DEFAULT]\nhttp_connection_timeout = 0\n", "key 'http_connection_timeout'",
                     "1..3600");
        expect_error("[DEFAULT]\nhttp_connection_timeout = 1h\n", "key 'http_connection_timeout'",
                     NULL);
        expect_error("[DEFAULT]\ntls_key =\n", "key 'tls_key'", "path is empty");

        /* per address above the total; one TLS file without the other */
        config_defaults(&c);
        text = "[DEFAULT]\nhttp_max_connections = 10\nhttp_max_connections_per_ip = 11\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "http_max_connections_per_ip (11)"));
        config_defaults(&c);
        text = "[DEFAULT]\nhttp_threads = 8\nhttp_max_connections = 4\n"
               "http_max_connections_per_ip = 2\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "at least http_threads (8)"));
        config_defaults(&c);
        text = "[DEFAULT]\ntls_cert = /etc/c.pem\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "set both"));
}

/* NBD TLS: the default follows the listeners; `on` off loopback is refused. */
static void test_nbd_tls_keys(void **state)
{
        struct evsrep_config c;
        char err[512];
        const char *text;

        (void)state;
        config_defaults(&c);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_int_equal(c.nbd_tls, NBD_TLS_CFG_ON); /* loopback listeners */
        config_defaults(&c);
        text = "[az:az1]\nnbd_listen = 0.0.0.0:10809\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_int_equal(c.nbd_tls, NBD_TLS_CFG_REQUIRE);
        config_defaults(&c);
        text = "[DEFAULT]\nnbd_tls = on\n[az:az1]\nnbd_listen = 10.0.0.1:10809\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "nbd_tls = require"));
        config_defaults(&c);
        text = "[DEFAULT]\nnbd_tls = off\n[az:az1]\nnbd_listen = 10.0.0.1:10809\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_int_equal(c.nbd_tls, NBD_TLS_CFG_OFF);
        config_defaults(&c);
        text = "[DEFAULT]\nnbd_tls_cert = /etc/c.pem\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "both or neither"));
        config_defaults(&c);
        text = "[DEFAULT]\nnbd_tls_verify_peer = true\n";
        assert_int_equal(config_parse_ini(&c, text, strlen(text), err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "nbd_tls_ca"));
        expect_error("[DEFAULT]\nnbd_tls = maybe\n", "key 'nbd_tls'", "off, on or require");
}

static void test_quota_keys(void **state)
{
        struct evsrep_config c;
        char err[256] = "";

        (void)state;
        config_defaults(&c);
        assert_int_equal(c.quota_volumes, 1000);
        assert_int_equal(c.quota_gigabytes, 102400);
        assert_true(c.capacity_overcommit == 20.0);
        assert_int_equal(parse(&c,
                               "[DEFAULT]\nquota_volumes = 10\nquota_gigabytes = 0\n"
                               "capacity_overcommit = 1.5\n",
                               err, sizeof(err)),
                         0);
        assert_int_equal(c.quota_volumes, 10);
        assert_int_equal(c.quota_gigabytes, 0);
        assert_true(c.capacity_overcommit == 1.5);
        assert_int_equal(
            parse(&c, "[DEFAULT]\nquota_volumes = -1\ncapacity_overcommit = 0\n", err, sizeof(err)),
            0);
        assert_int_equal(c.quota_volumes, -1);
        assert_true(c.capacity_overcommit == 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        expect_error("[DEFAULT]\nquota_volumes = -2\n", "key 'quota_volumes'", "-1 (unlimited)");
        expect_error("[DEFAULT]\nquota_gigabytes = 1.5\n", "key 'quota_gigabytes'", "'1.5'");
        expect_error("[DEFAULT]\nquota_gigabytes = 99999999999999999999\n", "key 'quota_gigabytes'",
                     NULL);
        expect_error("[DEFAULT]\ncapacity_overcommit = -1\n", "key 'capacity_overcommit'",
                     "0..1000");
        expect_error("[DEFAULT]\ncapacity_overcommit = nan\n", "key 'capacity_overcommit'", NULL);
        expect_error("[DEFAULT]\ncapacity_overcommit = inf\n", "key 'capacity_overcommit'", NULL);
        expect_error("[DEFAULT]\ncapacity_overcommit = 2x\n", "key 'capacity_overcommit'", NULL);
}

/* Node keys: defaults (internal_url derived from listen, the key file in
 * data_dir), explicit values, and their ranges. */
/* availability_zones = none: an API-only node, only on a shared store. */
static void test_api_only_node(void **state)
{
        struct evsrep_config c;
        char err[256] = "";

        (void)state;
        config_defaults(&c);
        assert_int_equal(parse(&c,
                               "[DEFAULT]\navailability_zones = none\n"
                               "db = postgresql://evsrep@127.0.0.2:5432/x\n",
                               err, sizeof(err)),
                         0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_int_equal(c.nsites, 0);
        assert_null(config_site(&c, "az1"));

        config_defaults(&c);
        assert_int_equal(parse(&c, "[DEFAULT]\navailability_zones = none\n", err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "needs a shared store"));
        /* "none" is a whole value, not a zone in a list. */
        expect_error("[DEFAULT]\navailability_zones = az1, none\n", "availability_zones",
                     "stands alone");
}

static void test_node_keys(void **state)
{
        struct evsrep_config c;
        char err[256] = "";

        (void)state;
        config_defaults(&c);
        assert_string_equal(c.node_name, "local");
        assert_int_equal(c.lease_ms, 12000);
        assert_int_equal(config_set(&c, "data_dir", "/tmp/evs", err, sizeof(err)), 0);
        assert_int_equal(config_set(&c, "listen", "127.0.0.2:9000", err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_string_equal(c.cluster_key_path, "/tmp/evs/cluster.key");
        assert_string_equal(c.internal_url, "http://127.0.0.2:9000");
        assert_true(c.internal_url_auto);

        config_defaults(&c);
        assert_int_equal(parse(&c,
                               "[DEFAULT]\nnode_name = node-b.1\ncluster_key_file = /etc/k\n"
                               "internal_url = https://b.example:8776/\nlease_ms = 3000\n",
                               err, sizeof(err)),
                         0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_string_equal(c.node_name, "node-b.1");
        assert_string_equal(c.cluster_key_path, "/etc/k");
        assert_string_equal(c.internal_url, "https://b.example:8776"); /* no trailing '/' */
        assert_false(c.internal_url_auto);
        assert_int_equal(c.lease_ms, 3000);
        assert_int_equal(config_set(&c, "lease_ms", "600000", err, sizeof(err)), 0);

        expect_error("[DEFAULT]\nlease_ms = 2999\n", "key 'lease_ms'", "3000..600000");
        expect_error("[DEFAULT]\nlease_ms = 600001\n", "key 'lease_ms'", NULL);
        expect_error("[DEFAULT]\nnode_name = \n", "key 'node_name'", NULL);
        expect_error("[DEFAULT]\nnode_name = -a\n", "key 'node_name'", NULL);
        expect_error("[DEFAULT]\nnode_name = a b\n", "key 'node_name'", NULL);
        expect_error("[DEFAULT]\nnode_name = "
                     "a123456789012345678901234567890123456789012345678901234567890123\n",
                     "key 'node_name'", NULL);
        expect_error("[DEFAULT]\ninternal_url = ftp://x\n", "key 'internal_url'", "http://");
        expect_error("[DEFAULT]\ninternal_url = http://\n", "key 'internal_url'", NULL);

        config_defaults(&c);
        assert_int_equal(config_set(&c, "data_dir", "/tmp/evs", err, sizeof(err)), 0);
        assert_int_equal(config_set(&c, "cluster_key_file", "/tmp/evs/tokens", err, sizeof(err)),
                         0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "cluster_key_file"));
        config_defaults(&c);
        c.lease_ms = 100; /* filled by code, not the parser */
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "lease_ms"));
}

/* NBD bounds: defaults, every key, ranges, and the total >= per-connection
 * rule of finalize. */
static void test_nbd_bounds(void **state)
{
        struct evsrep_config c;
        char err[512];

        (void)state;
        config_defaults(&c);
        assert_int_equal(c.nbd_conn_budget_bytes, 64u << 20);
        assert_int_equal(c.nbd_total_budget_bytes, 512u << 20);
        assert_int_equal(c.nbd_handshake_timeout_sec, 30);
        assert_int_equal(c.nbd_idle_timeout_sec, 0);
        assert_int_equal(c.nbd_send_timeout_sec, 60);
        assert_int_equal(c.nbd_max_conns, 1024);
        assert_int_equal(c.nbd_max_conns_per_addr, 128);
        assert_int_equal(parse(&c,
                               "[DEFAULT]\nnbd_connection_budget = 1048576\n"
                               "nbd_total_budget = 2097152\nnbd_handshake_timeout = 0\n"
                               "nbd_idle_timeout = 600\nnbd_send_timeout = 5\n"
                               "nbd_max_connections = 10\n"
                               "nbd_max_connections_per_address = 2\n",
                               err, sizeof(err)),
                         0);
        assert_int_equal(c.nbd_conn_budget_bytes, 1u << 20);
        assert_int_equal(c.nbd_total_budget_bytes, 2u << 20);
        assert_int_equal(c.nbd_handshake_timeout_sec, 0);
        assert_int_equal(c.nbd_idle_timeout_sec, 600);
        assert_int_equal(c.nbd_send_timeout_sec, 5);
        assert_int_equal(c.nbd_max_conns, 10);
        assert_int_equal(c.nbd_max_conns_per_addr, 2);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_int_equal(config_set(&c, "nbd_total_budget", "1048575", err, sizeof(err)), -EINVAL);
        assert_int_equal(config_set(&c, "nbd_connection_budget", "4194304", err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "nbd_total_budget"));

        expect_error("[DEFAULT]\nnbd_connection_budget = 1048575\n", "key 'nbd_connection_budget'",
                     "1048576..");
        expect_error("[DEFAULT]\nnbd_total_budget = 64M\n", "key 'nbd_total_budget'", "'64M'");
        expect_error("[DEFAULT]\nnbd_handshake_timeout = -1\n", "key 'nbd_handshake_timeout'",
                     "0..604800");
        expect_error("[DEFAULT]\nnbd_idle_timeout = 604801\n", "key 'nbd_idle_timeout'", NULL);
        expect_error("[DEFAULT]\nnbd_send_timeout = \n", "key 'nbd_send_timeout'", NULL);
        expect_error("[DEFAULT]\nnbd_max_connections = 0\n", "key 'nbd_max_connections'",
                     "1..65536");
        expect_error("[DEFAULT]\nnbd_max_connections_per_address = 65537\n",
                     "key 'nbd_max_connections_per_address'", "1..65536");
}

static void test_az_name_limits(void **state)
{
        struct evsrep_config c;
        char err[256];

        (void)state;
        config_defaults(&c);
        assert_int_equal(
            parse(&c,
                  "[DEFAULT]\navailability_zones = "
                  "a23456789012345678901234567890123456789012345678901234567890123, 0_-z\n",
                  err, sizeof(err)),
            0);
        assert_int_equal(strlen(c.sites[0].name), 63);
        assert_string_equal(c.sites[1].name, "0_-z");
}

static void test_flags_override_file(void **state)
{
        struct evsrep_config c;
        char err[256] = "";

        (void)state;
        config_defaults(&c);
        assert_int_equal(parse(&c,
                               "[DEFAULT]\nlisten = 127.0.0.1:9000\nhttp_threads = 4\n"
                               "[az:az2]\nnbd_listen = 127.0.0.1:11000\n",
                               err, sizeof(err)),
                         0);
        assert_int_equal(config_set(&c, "listen", "127.0.0.1:9001", err, sizeof(err)), 0);
        assert_int_equal(c.listen_port, 9001);
        assert_int_equal(c.http_threads, 4);
        assert_int_equal(config_set(&c, "nbd_listen", "az2=127.0.0.1:12345", err, sizeof(err)), 0);
        assert_int_equal(c.sites[1].nbd_port, 12345);
        assert_int_equal(config_set(&c, "dir", "az1=/fast/az1", err, sizeof(err)), 0);
        assert_string_equal(c.sites[0].dir, "/fast/az1");
        assert_int_equal(config_set(&c, "log_level", "warn", err, sizeof(err)), 0);
        assert_int_equal(c.log_level, LOG_LVL_WARN);
        assert_int_equal(config_set(&c, "data_dir", "/tmp/d", err, sizeof(err)), 0);

        /* Replacing the AZ set keeps explicit per-site settings of AZs that
         * stay, and gives the others the default for their new index. */
        assert_int_equal(config_set(&c, "availability_zones", "az3, az2", err, sizeof(err)), 0);
        assert_int_equal(c.nsites, 2);
        assert_string_equal(c.sites[0].name, "az3");
        assert_int_equal(c.sites[0].nbd_port, 10809);
        assert_string_equal(c.sites[0].dir, "");
        assert_string_equal(c.sites[1].name, "az2");
        assert_int_equal(c.sites[1].nbd_port, 12345);

        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_string_equal(c.db_path, "/tmp/d/evsrep.db");
        assert_string_equal(c.sites[0].dir, "/tmp/d/az3");
}

static void test_flag_errors(void **state)
{
        struct evsrep_config c, before;
        char err[256] = "";

        (void)state;
        config_defaults(&c);
        memcpy(&before, &c, sizeof(c)); /* bytes, padding included */
        assert_int_equal(config_set(&c, "nbd_listen", "az3=127.0.0.1:1", err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "unknown availability zone 'az3'"));
        assert_int_equal(config_set(&c, "nbd_listen", "127.0.0.1:1", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "expected AZ=HOST:PORT"));
        assert_int_equal(config_set(&c, "nbd_listen", "az1=127.0.0.1:99999", err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "nbd_listen:"));
        assert_int_equal(config_set(&c, "dir", "az1=", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "path is empty"));
        assert_int_equal(config_set(&c, "bogus", "1", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "unknown setting 'bogus'"));
        assert_int_equal(config_set(&c, "chunk_size", "3", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "chunk_size:"));
        assert_int_equal(config_set(&c, "availability_zones", "a,a", err, sizeof(err)), -EINVAL);
        assert_int_equal(config_set(&c, NULL, "1", err, sizeof(err)), -EINVAL);
        assert_int_equal(config_set(&c, "listen", NULL, err, sizeof(err)), -EINVAL);
        assert_memory_equal(&c, &before, sizeof(c)); /* failed flags change nothing */
}

static void test_finalize_errors(void **state)
{
        struct evsrep_config c;
        char err[256] = "";

        (void)state;
        config_defaults(&c);
        assert_int_equal(config_set(&c, "nbd_listen", "az2=127.0.0.1:10809", err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "port 10809 is also used by [az:az1]"));

        config_defaults(&c);
        assert_int_equal(config_set(&c, "nbd_listen", "az1=0.0.0.0:8776", err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "also the HTTP listen port"));

        config_defaults(&c);
        assert_int_equal(config_set(&c, "dir", "az1=/same", err, sizeof(err)), 0);
        assert_int_equal(config_set(&c, "dir", "az2=/same", err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "dir: /same is also the directory of [az:az1]"));

        config_defaults(&c);
        c.data_dir[0] = '\0';
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "data_dir"));

        config_defaults(&c);
        memset(c.data_dir, 'd', CONFIG_PATH_LEN - 5);
        c.data_dir[CONFIG_PATH_LEN - 5] = '\0';
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "data_dir is too long"));

        config_defaults(&c);
        assert_int_equal(config_set(&c, "db", "/x/same", err, sizeof(err)), 0);
        assert_int_equal(config_set(&c, "tokens", "/x/same", err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "same file"));

        /* Fields set by code, not by the parser, are checked too. */
        config_defaults(&c);
        c.chunk_bytes = 5000;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        config_defaults(&c);
        c.http_threads = 0;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        config_defaults(&c);
        c.nsites = 0;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        config_defaults(&c);
        c.nsites = CONFIG_MAX_SITES + 1;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        config_defaults(&c);
        snprintf(c.sites[1].name, sizeof(c.sites[1].name), "az1");
        c.sites[1].nbd_port = 20000;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "listed twice"));
        config_defaults(&c);
        c.log_level = 9;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        config_defaults(&c);
        c.sites[0].nbd_port = -1;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), -EINVAL);
        /* Port 0 (any free port) is allowed, also for several listeners. */
        config_defaults(&c);
        c.listen_port = 0;
        c.sites[0].nbd_port = 0;
        c.sites[1].nbd_port = 0;
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
}

static void test_load_file(void **state)
{
        struct evsrep_config c;
        char path[] = "/tmp/evsrep-config-XXXXXX";
        char err[512] = "";
        int fd;

        (void)state;
        config_defaults(&c);
        assert_int_equal(config_load_file(&c, "/nonexistent/evsrep.conf", err, sizeof(err)),
                         -ENOENT);
        assert_non_null(strstr(err, "/nonexistent/evsrep.conf"));
        assert_int_equal(config_load_file(&c, "/tmp", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "not a regular file"));

        fd = mkstemp(path);
        assert_true(fd >= 0);
        const char *ok = "[DEFAULT]\nhttp_threads = 3\n";
        assert_int_equal(write(fd, ok, strlen(ok)), (ssize_t)strlen(ok));
        assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
        assert_int_equal(c.http_threads, 3);
        const char *bad = "oops\n";
        assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
        assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -EINVAL);
        /* The message names the file and the line. */
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "line 3"));
        close(fd);
        unlink(path);
}

/* db may name a PostgreSQL database: kept verbatim (never joined to
 * data_dir), and shown without its password. */
static void test_db_postgresql_uri(void **state)
{
        struct evsrep_config c;
        char err[256], shown[CONFIG_PATH_LEN];
        static const char ini[] = "[DEFAULT]\n"
                                  "data_dir = /var/lib/evsrep\n"
                                  "db = postgresql://evsrep:s3cret@10.0.0.5:5432/evsrep\n";

        (void)state;
        config_defaults(&c);
        assert_int_equal(parse(&c, ini, err, sizeof(err)), 0);
        assert_int_equal(config_finalize(&c, err, sizeof(err)), 0);
        assert_string_equal(c.db_path, "postgresql://evsrep:s3cret@10.0.0.5:5432/evsrep");
        config_db_display(c.db_path, shown, sizeof(shown));
        assert_string_equal(shown, "postgresql://evsrep:***@10.0.0.5:5432/evsrep");
        config_db_display("postgres://evsrep@h/db?sslmode=require", shown, sizeof(shown));
        assert_string_equal(shown, "postgres://evsrep@h/db?sslmode=require");
        config_db_display("/var/lib/evsrep/evsrep.db", shown, sizeof(shown));
        assert_string_equal(shown, "/var/lib/evsrep/evsrep.db");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_full_ini),
            cmocka_unit_test(test_az_section_before_default),
            cmocka_unit_test(test_empty_and_comment_only),
            cmocka_unit_test(test_bool_values),
            cmocka_unit_test(test_errors_syntax),
            cmocka_unit_test(test_errors_nul_and_long_lines),
            cmocka_unit_test(test_errors_values),
            cmocka_unit_test(test_nbd_bounds),
            cmocka_unit_test(test_az_name_limits),
            cmocka_unit_test(test_flags_override_file),
            cmocka_unit_test(test_flag_errors),
            cmocka_unit_test(test_finalize_errors),
            cmocka_unit_test(test_load_file),
            cmocka_unit_test(test_http_hardening_keys),
            cmocka_unit_test(test_quota_keys),
            cmocka_unit_test(test_nbd_tls_keys),
            cmocka_unit_test(test_db_postgresql_uri),
            cmocka_unit_test(test_node_keys),
            cmocka_unit_test(test_api_only_node),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
