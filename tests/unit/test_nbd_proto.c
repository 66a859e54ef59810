/* Pure NBD parsers and the errno map: no sockets, no volumes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nbd/proto.h"

#define TFLAGS                                                                                     \
        (NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |       \
         NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN)

static void req_bytes(uint8_t *b, uint16_t flags, uint16_t type, uint64_t off, uint32_t len)
{
        nbd_put32(b, NBD_MAGIC_REQUEST);
        nbd_put16(b + 4, flags);
        nbd_put16(b + 6, type);
        nbd_put64(b + 8, 0x1122334455667788ull);
        nbd_put64(b + 16, off);
        nbd_put32(b + 24, len);
}

static void test_request_parse_fields(void **state)
{
        uint8_t b[NBD_REQUEST_LEN];
        struct nbd_request r;

        (void)state;
        req_bytes(b, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 0x0102030405060708ull, 4096);
        assert_int_equal(nbd_request_parse(b, sizeof(b), &r), 0);
        assert_int_equal(r.flags, NBD_CMD_FLAG_FUA);
        assert_int_equal(r.type, NBD_CMD_WRITE);
        assert_true(r.cookie == 0x1122334455667788ull);
        assert_true(r.off_bytes == 0x0102030405060708ull);
        assert_int_equal(r.len_bytes, 4096);
}

static void test_request_parse_bad_magic(void **state)
{
        uint8_t b[NBD_REQUEST_LEN];
        struct nbd_request r;

        (void)state;
        req_bytes(b, 0, NBD_CMD_READ, 0, 512);
        b[0] ^= 1;
        assert_int_equal(nbd_request_parse(b, sizeof(b), &r), -EPROTO);
}

static void test_request_parse_short(void **state)
{
        uint8_t b[NBD_REQUEST_LEN];
        struct nbd_request r;

        (void)state;
        req_bytes(b, 0, NBD_CMD_READ, 0, 512);
        assert_int_equal(nbd_request_parse(b, sizeof(b) - 1, &r), -EINVAL);
}

static void test_request_parse_write_too_big(void **state)
{
        uint8_t b[NBD_REQUEST_LEN];
        struct nbd_request r;

        (void)state;
        req_bytes(b, 0, NBD_CMD_WRITE, 0, NBD_MAX_PAYLOAD + 1);
        assert_int_equal(nbd_request_parse(b, sizeof(b), &r), -EMSGSIZE);
        req_bytes(b, 0, NBD_CMD_WRITE, 0, NBD_MAX_PAYLOAD);
        assert_int_equal(nbd_request_parse(b, sizeof(b), &r), 0);
        /* A big READ is not fatal: no payload follows it. */
        req_bytes(b, 0, NBD_CMD_READ, 0, 0xffffffffu);
        assert_int_equal(nbd_request_parse(b, sizeof(b), &r), 0);
        assert_int_equal(nbd_request_check(&r, UINT64_MAX, TFLAGS), -EINVAL);
}

static int check(uint16_t flags, uint16_t type, uint64_t off, uint32_t len, uint64_t size)
{
        struct nbd_request r = {flags, type, 7, off, len};

        return nbd_request_check(&r, size, TFLAGS);
}

static void test_request_check_commands(void **state)
{
        (void)state;
        assert_int_equal(check(0, NBD_CMD_READ, 0, 512, 1024), 0);
        assert_int_equal(check(0, NBD_CMD_WRITE, 512, 512, 1024), 0);
        assert_int_equal(check(0, NBD_CMD_FLUSH, 0, 0, 1024), 0);
        assert_int_equal(check(0, NBD_CMD_TRIM, 0, 1024, 1024), 0);
        assert_int_equal(check(0, NBD_CMD_WRITE_ZEROES, 0, 1024, 1024), 0);
        assert_int_equal(check(0, NBD_CMD_CACHE, 0, 512, 1024), -EINVAL);
        assert_int_equal(check(0, NBD_CMD_BLOCK_STATUS, 0, 512, 1024), -EINVAL);
        assert_int_equal(check(0, 99, 0, 512, 1024), -EINVAL);
        /* Zero-length I/O is allowed (the protocol says do not disconnect). */
        assert_int_equal(check(0, NBD_CMD_READ, 1024, 0, 1024), 0);
}

static void test_request_check_flags(void **state)
{
        struct nbd_request r = {NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1, 0, 512};

        (void)state;
        assert_int_equal(check(NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 0, 512, 1024), 0);
        assert_int_equal(check(NBD_CMD_FLAG_FUA, NBD_CMD_READ, 0, 512, 1024), 0);
        assert_int_equal(check(NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 0, 512, 1024), 0);
        assert_int_equal(check(NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE, 0, 512, 1024), -EINVAL);
        assert_int_equal(check(NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 512, 1024), -EINVAL);
        assert_int_equal(check(NBD_CMD_FLAG_FAST_ZERO, NBD_CMD_WRITE_ZEROES, 0, 512, 1024),
                         -EINVAL);
        assert_int_equal(check(0x8000, NBD_CMD_FLUSH, 0, 0, 1024), -EINVAL);
        /* FUA is only valid when SEND_FUA was advertised. */
        assert_int_equal(nbd_request_check(&r, 1024, NBD_FLAG_HAS_FLAGS), -EINVAL);
        r.flags = 0;
        r.type = NBD_CMD_TRIM;
        assert_int_equal(nbd_request_check(&r, 1024, NBD_FLAG_HAS_FLAGS), -EINVAL);
}

static void test_request_check_range(void **state)
{
        (void)state;
        assert_int_equal(check(0, NBD_CMD_READ, 1024, 1, 1024), -EINVAL);
        assert_int_equal(check(0, NBD_CMD_TRIM, 1, 1024, 1024), -EINVAL);
        assert_int_equal(check(0, NBD_CMD_WRITE, 1023, 2, 1024), -ENOSPC);
        assert_int_equal(check(0, NBD_CMD_WRITE_ZEROES, 0, 1025, 1024), -ENOSPC);
        /* Offset + length wrapping around 2^64 is out of range, not tiny. */
        assert_int_equal(check(0, NBD_CMD_READ, UINT64_MAX - 10, 512, UINT64_MAX), -EINVAL);
        /* FLUSH ignores the reserved offset/length. */
        assert_int_equal(check(0, NBD_CMD_FLUSH, UINT64_MAX, 512, 1024), 0);
}

static void test_opt_hdr_parse(void **state)
{
        uint8_t b[NBD_OPT_HDR_LEN];
        struct nbd_opt_hdr h;

        (void)state;
        nbd_put64(b, NBD_MAGIC_OPTS);
        nbd_put32(b + 8, NBD_OPT_GO);
        nbd_put32(b + 12, 100);
        assert_int_equal(nbd_opt_hdr_parse(b, sizeof(b), &h), 0);
        assert_int_equal(h.option, NBD_OPT_GO);
        assert_int_equal(h.len_bytes, 100);
        nbd_put32(b + 12, NBD_MAX_OPT_LEN + 1);
        assert_int_equal(nbd_opt_hdr_parse(b, sizeof(b), &h), -EMSGSIZE);
        b[3] ^= 0x40;
        assert_int_equal(nbd_opt_hdr_parse(b, sizeof(b), &h), -EPROTO);
        assert_int_equal(nbd_opt_hdr_parse(b, 8, &h), -EINVAL);
}

static size_t go_bytes(uint8_t *b, const char *name, size_t nlen, const uint16_t *reqs,
                       uint16_t nreq)
{
        nbd_put32(b, (uint32_t)nlen);
        memcpy(b + 4, name, nlen);
        nbd_put16(b + 4 + nlen, nreq);
        for (uint16_t i = 0; i < nreq; i++)
                nbd_put16(b + 6 + nlen + 2 * i, reqs[i]);
        return 6 + nlen + 2 * (size_t)nreq;
}

static void test_opt_go_parse(void **state)
{
        uint8_t b[256];
        uint16_t reqs[] = {NBD_INFO_BLOCK_SIZE, 77, NBD_INFO_NAME};
        struct nbd_opt_go go;
        size_t n;

        (void)state;
        n = go_bytes(b, "vol1", 4, reqs, 3);
        assert_int_equal(nbd_opt_go_parse(b, n, &go), 0);
        assert_int_equal(go.name_len, 4);
        assert_memory_equal(go.name, "vol1", 4);
        assert_true(go.want_block_size);
        assert_true(go.want_name);

        n = go_bytes(b, "", 0, NULL, 0);
        assert_int_equal(nbd_opt_go_parse(b, n, &go), 0);
        assert_int_equal(go.name_len, 0);
        assert_false(go.want_block_size);

        /* Request list longer or shorter than the data: invalid. */
        n = go_bytes(b, "vol1", 4, reqs, 3);
        assert_int_equal(nbd_opt_go_parse(b, n - 1, &go), -EINVAL);
        assert_int_equal(nbd_opt_go_parse(b, n + 2, &go), -EINVAL);
        /* Name length beyond the data. */
        nbd_put32(b, 1000);
        assert_int_equal(nbd_opt_go_parse(b, n, &go), -EINVAL);
        /* Too short to hold the fixed fields. */
        assert_int_equal(nbd_opt_go_parse(b, 5, &go), -EINVAL);
        /* Embedded NUL: must not match a registered id by its prefix. */
        n = go_bytes(b, "vol1\0x", 6, NULL, 0);
        assert_int_equal(nbd_opt_go_parse(b, n, &go), -EINVAL);
        /* Not UTF-8. */
        n = go_bytes(b, "\xff\xfe", 2, NULL, 0);
        assert_int_equal(nbd_opt_go_parse(b, n, &go), -EINVAL);
}

static void test_export_name_check(void **state)
{
        static char big[NBD_MAX_STRING + 1];

        (void)state;
        memset(big, 'a', sizeof(big));
        assert_int_equal(nbd_export_name_check("abc", 3), 0);
        assert_int_equal(nbd_export_name_check(big, NBD_MAX_STRING), 0);
        assert_int_equal(nbd_export_name_check(big, NBD_MAX_STRING + 1), -EINVAL);
        assert_int_equal(nbd_export_name_check("a\0b", 3), -EINVAL);
}

static void test_errmap(void **state)
{
        (void)state;
        assert_int_equal(nbd_errmap(0), 0);
        assert_int_equal(nbd_errmap(-EPERM), NBD_EPERM);
        assert_int_equal(nbd_errmap(-EROFS), NBD_EPERM);
        assert_int_equal(nbd_errmap(-EINVAL), NBD_EINVAL);
        assert_int_equal(nbd_errmap(-ENOSPC), NBD_ENOSPC);
        assert_int_equal(nbd_errmap(-EDQUOT), NBD_ENOSPC);
        assert_int_equal(nbd_errmap(-EFBIG), NBD_ENOSPC);
        assert_int_equal(nbd_errmap(-EIO), NBD_EIO);
        assert_int_equal(nbd_errmap(-ENODEV), NBD_EIO);
        assert_int_equal(nbd_errmap(-ETIMEDOUT), NBD_EIO);
        assert_int_equal(nbd_errmap(-ESHUTDOWN), NBD_ESHUTDOWN);
        assert_int_equal(nbd_errmap(-ENOMEM), NBD_ENOMEM);
        assert_int_equal(nbd_errmap(-EOVERFLOW), NBD_EOVERFLOW);
        assert_int_equal(nbd_errmap(-ENOTSUP), NBD_ENOTSUP);
}

/* "link/<pair id>": the pair id exactly (a lowercase UUID); any other name
 * is not a link name (0); "link/" with anything else is malformed. The
 * identity "evsrep-link:<node>" with a valid node name. */
static void test_link_names(void **state)
{
        char pair[NBD_LINK_PAIR_ID_LEN], node[NBD_LINK_NODE_LEN];
        const char *ok = "link/0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";
        const char *bad[] = {"link/",
                             "link/0F1E2D3C-4B5A-4978-8A6B-5C4D3E2F1A0B",
                             "link/0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0",
                             "link/0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0bb",
                             "link/0f1e2d3c4b5a-4978-8a6b-5c4d3e2f1a0b-",
                             "link/../0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f",
                             "link/0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0g"};

        (void)state;
        assert_int_equal(nbd_link_export_parse(ok, strlen(ok), pair), 1);
        assert_string_equal(pair, "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b");
        /* Length-delimited: bytes after len do not count. */
        assert_int_equal(nbd_link_export_parse(ok, strlen(ok) - 1, pair), -EINVAL);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(nbd_link_export_parse(bad[i], strlen(bad[i]), pair), -EINVAL);
        assert_int_equal(nbd_link_export_parse("3f9a0c", 6, pair), 0);
        assert_int_equal(nbd_link_export_parse("lin", 3, pair), 0);
        assert_int_equal(nbd_link_export_parse("", 0, pair), 0);
        assert_int_equal(nbd_link_export_parse("Link/x", 6, pair), 0);

        assert_int_equal(nbd_link_identity_parse("evsrep-link:node-a", node), 1);
        assert_string_equal(node, "node-a");
        assert_int_equal(nbd_link_identity_parse("evsrep-link:a.b_c-9", node), 1);
        assert_int_equal(nbd_link_identity_parse("", node), 0);
        assert_int_equal(nbd_link_identity_parse("6f1c2a7e-attachment", node), 0);
        assert_int_equal(nbd_link_identity_parse("evsrep-link", node), 0);
        assert_int_equal(nbd_link_identity_parse("evsrep-link:", node), -EINVAL);
        assert_int_equal(nbd_link_identity_parse("evsrep-link:-a", node), -EINVAL);
        assert_int_equal(nbd_link_identity_parse("evsrep-link:a:b", node), -EINVAL);
        assert_int_equal(nbd_link_identity_parse("evsrep-link:a b", node), -EINVAL);
        assert_int_equal(nbd_link_identity_parse("evsrep-link:"
                                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                 "aaaaaaaaaaaaaaaaa",
                                                 node),
                         -EINVAL); /* 64 characters */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_request_parse_fields),
            cmocka_unit_test(test_request_parse_bad_magic),
            cmocka_unit_test(test_request_parse_short),
            cmocka_unit_test(test_request_parse_write_too_big),
            cmocka_unit_test(test_request_check_commands),
            cmocka_unit_test(test_request_check_flags),
            cmocka_unit_test(test_request_check_range),
            cmocka_unit_test(test_opt_hdr_parse),
            cmocka_unit_test(test_opt_go_parse),
            cmocka_unit_test(test_export_name_check),
            cmocka_unit_test(test_errmap),
            cmocka_unit_test(test_link_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
