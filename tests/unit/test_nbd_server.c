/* The NBD server driven by a real client (libnbd) and by raw sockets.
 *
 * Every test starts its own server on 127.0.0.1 port 0 and stops it at the
 * end: a server that does not stop cleanly hangs the test (caught by the
 * alarm below) or leaks (caught under ASan). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libnbd.h>

#include "fixture_tmpdir.h"

#include "common/fault.h"
#include "common/util.h"
#include "nbd/nbd.h"
#include "nbd/proto.h"
#include "volume/attach.h"
#include "volume/volume.h"

#define SITE      "t1"
#define RW_SIZE   (64ull * 1024 * 1024)
#define RO_SIZE   (1024ull * 1024)
#define KILL_SIZE (1024ull * 1024)
#define NTHREADS  4

static char g_dir[FIXTURE_TMPDIR_CAP];

struct fx {
        struct nbd_server *srv;
        char port[16];
        struct volume *rw, *ro, *other;
};

static int add_volume(const char *id, const char *site, uint64_t size, struct volume **out)
{
        char path[256];
        int rc;

        snprintf(path, sizeof(path), "%s/%s", g_dir, id);
        unlink(path);
        rc = volume_file_create(path, size);
        if (rc == 0)
                rc = volume_open(id, site, path, out);
        if (rc == 0)
                rc = volreg_add(*out);
        /* Reachable only through an attachment; here its export name is the
         * volume id (the service makes random ones). */
        if (rc == 0)
                rc = attach_add(id, id, id, site, false, "");
        return rc;
}

static void drop_volume(struct volume *v)
{
        if (!v)
                return;
        attach_revoke_volume(volume_id(v));
        unlink(volume_path(v));
        volreg_remove(volume_id(v));
        volume_put(v);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(add_volume("rw", SITE, RW_SIZE, &f->rw), 0);
        assert_int_equal(add_volume("ro", SITE, RO_SIZE, &f->ro), 0);
        volume_set_read_only(f->ro, true);
        assert_int_equal(add_volume("other", "t2", RO_SIZE, &f->other), 0);
        assert_int_equal(nbd_server_start(SITE, "127.0.0.1", 0, NTHREADS, &f->srv), 0);
        assert_true(nbd_server_port(f->srv) > 0);
        snprintf(f->port, sizeof(f->port), "%d", nbd_server_port(f->srv));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        nbd_server_stop(f->srv);
        drop_volume(f->rw);
        drop_volume(f->ro);
        drop_volume(f->other);
        free(f);
        return 0;
}

static struct nbd_handle *client(struct fx *f, const char *export)
{
        struct nbd_handle *h = nbd_create();

        assert_non_null(h);
        assert_int_equal(nbd_set_export_name(h, export), 0);
        if (nbd_connect_tcp(h, "127.0.0.1", f->port) < 0) {
                nbd_close(h);
                return NULL;
        }
        return h;
}

static void fill_random(void *buf, size_t len)
{
        assert_int_equal(util_random(buf, len), 0);
}

/* FNV-1a: the checksum the data round trips are compared by. */
static uint64_t csum(const void *buf, size_t len)
{
        const uint8_t *p = buf;
        uint64_t h = 1469598103934665603ull;

        for (size_t i = 0; i < len; i++)
                h = (h ^ p[i]) * 1099511628211ull;
        return h;
}

static bool all_zero(const void *buf, size_t len)
{
        const uint8_t *p = buf;

        for (size_t i = 0; i < len; i++)
                if (p[i])
                        return false;
        return true;
}

/* ---- libnbd tests ---- */

static void test_roundtrip(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = client(f, "rw");
        size_t len = 1024 * 1024 + 123;
        uint8_t *w = malloc(len), *r = malloc(len), *disk = malloc(len);
        int fd;

        assert_non_null(h);
        assert_int_equal(nbd_get_size(h), (int64_t)RW_SIZE);
        assert_int_equal(nbd_is_read_only(h), 0);
        assert_int_equal(nbd_can_flush(h), 1);
        assert_int_equal(nbd_can_fua(h), 1);
        assert_int_equal(nbd_can_trim(h), 1);
        assert_int_equal(nbd_can_zero(h), 1);
        assert_int_equal(nbd_can_multi_conn(h), 1);
        /* We refuse structured replies; libnbd must have fallen back. */
        assert_int_equal(nbd_get_structured_replies_negotiated(h), 0);

        fill_random(w, len);
        assert_int_equal(nbd_pwrite(h, w, len, 4096 + 7, 0), 0);
        assert_int_equal(nbd_pwrite(h, w, 4096, 8 * 1024 * 1024, LIBNBD_CMD_FLAG_FUA), 0);
        assert_int_equal(nbd_flush(h, 0), 0);
        assert_int_equal(nbd_pread(h, r, len, 4096 + 7, 0), 0);
        assert_true(csum(r, len) == csum(w, len));
        /* And the bytes really are in the file. */
        fd = open(volume_path(f->rw), O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(util_pread_full(fd, disk, len, 4096 + 7), 0);
        assert_true(csum(disk, len) == csum(w, len));
        assert_int_equal(util_pread_full(fd, disk, 4096, 8 * 1024 * 1024), 0);
        assert_true(csum(disk, 4096) == csum(w, 4096));
        close(fd);
        /* A maximum-size (32 MiB) request both ways. */
        {
                size_t big = NBD_MAX_PAYLOAD;
                uint8_t *bw = malloc(big), *br = malloc(big);
                fill_random(bw, big);
                assert_int_equal(nbd_pwrite(h, bw, big, RW_SIZE - big, 0), 0);
                assert_int_equal(nbd_pread(h, br, big, RW_SIZE - big, 0), 0);
                assert_true(csum(br, big) == csum(bw, big));
                free(bw);
                free(br);
        }
        assert_int_equal(nbd_shutdown(h, 0), 0);
        nbd_close(h);
        free(w);
        free(r);
        free(disk);
}

/* READs of 64 KiB up to the pipe's size are spliced from the file into
 * the socket (docs/design/nbd.md): the bytes must be the file's, at any
 * offset, next to copied READs (64 KiB - 1) on the same connection; a read
 * error is an EIO reply (no payload) and the connection goes on with the
 * next spliced READ (the pipe was emptied). */
static void test_spliced_reads(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = client(f, "rw");
        const size_t lens[] = {1024 * 1024, 64 * 1024, 64 * 1024 - 1, 512 * 1024 + 4096};
        const uint64_t offs[] = {4096 + 7, 3 * 1024 * 1024, 5 * 1024 * 1024 + 1, 0};
        size_t len = 1024 * 1024;
        uint8_t *w = malloc(len), *r = malloc(len);

        assert_non_null(h);
        for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
                fill_random(w, lens[i]);
                assert_int_equal(nbd_pwrite(h, w, lens[i], offs[i], 0), 0);
                memset(r, 0xa5, lens[i]);
                assert_int_equal(nbd_pread(h, r, lens[i], offs[i], 0), 0);
                assert_true(csum(r, lens[i]) == csum(w, lens[i]));
        }
#if FAULT_INJECTION_BUILT
        assert_int_equal(fault_configure("vol_read=1"), 0);
        assert_int_equal(nbd_pread(h, r, len, 0, 0), -1);
        assert_int_equal(nbd_get_errno(), EIO);
        assert_int_equal(fault_configure(NULL), 0);
        fill_random(w, len);
        assert_int_equal(nbd_pwrite(h, w, len, 0, 0), 0);
        assert_int_equal(nbd_pread(h, r, len, 0, 0), 0);
        assert_true(csum(r, len) == csum(w, len));
#endif
        assert_int_equal(nbd_shutdown(h, 0), 0);
        nbd_close(h);
        free(w);
        free(r);
}

static void test_zero_trim(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = client(f, "rw");
        size_t len = 256 * 1024;
        uint8_t *w = malloc(len), *r = malloc(len);

        assert_non_null(h);
        fill_random(w, len);
        assert_int_equal(nbd_pwrite(h, w, len, 0, 0), 0);
        assert_int_equal(nbd_pwrite(h, w, len, len, 0), 0);
        assert_int_equal(nbd_pwrite(h, w, len, 2 * len, 0), 0);
        assert_int_equal(nbd_trim(h, len, 0, 0), 0);
        assert_int_equal(nbd_zero(h, len, len, LIBNBD_CMD_FLAG_NO_HOLE), 0);
        assert_int_equal(nbd_zero(h, 1000, 2 * len + 5, LIBNBD_CMD_FLAG_FUA), 0);
        assert_int_equal(nbd_pread(h, r, len, 0, 0), 0);
        assert_true(all_zero(r, len));
        assert_int_equal(nbd_pread(h, r, len, len, 0), 0);
        assert_true(all_zero(r, len));
        assert_int_equal(nbd_pread(h, r, len, 2 * len, 0), 0);
        assert_memory_equal(r, w, 5);
        assert_true(all_zero(r + 5, 1000));
        assert_memory_equal(r + 1005, w + 1005, len - 1005);
        nbd_shutdown(h, 0);
        nbd_close(h);
        free(w);
        free(r);
}

static void test_read_only_eperm(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = client(f, "ro");
        uint8_t buf[4096] = {0};

        assert_non_null(h);
        assert_int_equal(nbd_is_read_only(h), 1);
        /* Let the requests reach the server instead of libnbd refusing. */
        assert_int_equal(nbd_set_strict_mode(h, 0), 0);
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, 0), 0);
        assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), -1);
        assert_int_equal(nbd_get_errno(), EPERM);
        assert_int_equal(nbd_zero(h, 4096, 0, 0), -1);
        assert_int_equal(nbd_get_errno(), EPERM);
        assert_int_equal(nbd_trim(h, 4096, 0, 0), -1);
        assert_int_equal(nbd_get_errno(), EPERM);
        /* The connection survives errors. */
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 4096, 0), 0);
        nbd_shutdown(h, 0);
        nbd_close(h);
}

/* A volume in the registry but without an attachment opens nothing; an
 * attachment's export name opens its volume; a read-only attachment refuses
 * writes even from a client that ignores the READ_ONLY flag; a revocation
 * ends the open connection at once and the name opens nothing afterwards. */
static void test_attachments(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h;
        uint8_t buf[4096] = {7};

        (void)f;
        attach_revoke("rw");
        assert_null(client(f, "rw"));
        assert_int_equal(attach_add("a-ro", "secret-ro", "rw", SITE, true, ""), 0);
        assert_int_equal(attach_add("a-rw", "secret-rw", "rw", SITE, false, ""), 0);
        assert_int_equal(attach_add("a-t2", "secret-t2", "rw", "t2", false, ""), 0);
        assert_null(client(f, "secret-t2")); /* another site's attachment */

        h = client(f, "secret-ro");
        assert_non_null(h);
        assert_int_equal(nbd_is_read_only(h), 1);
        assert_int_equal(nbd_set_strict_mode(h, 0), 0);
        assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), -1);
        assert_int_equal(nbd_get_errno(), EPERM);
        assert_int_equal(nbd_zero(h, 4096, 0, 0), -1);
        assert_int_equal(nbd_trim(h, 4096, 0, 0), -1);
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, 0), 0);
        nbd_close(h);

        h = client(f, "secret-rw");
        assert_non_null(h);
        assert_int_equal(nbd_is_read_only(h), 0);
        assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), 0);
        attach_revoke("a-rw");
        /* A2: the open connection is cut; nothing more is served on it. */
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, 0), -1);
        nbd_close(h);
        assert_null(client(f, "secret-rw"));
        assert_non_null(h = client(f, "secret-ro")); /* other attachments live on */
        nbd_close(h);
        attach_revoke("a-ro");
        attach_revoke("a-t2");
        assert_int_equal(attach_add("rw", "rw", "rw", SITE, false, ""), 0); /* for teardown */
}

static void test_read_only_flip_after_handshake(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = client(f, "rw");
        uint8_t buf[512] = {1};

        assert_non_null(h);
        assert_int_equal(nbd_is_read_only(h), 0);
        /* A fence/failover makes it read-only under a connected client. */
        volume_set_read_only(f->rw, true);
        assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), -1);
        assert_int_equal(nbd_get_errno(), EPERM);
        volume_set_read_only(f->rw, false);
        assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), 0);
        nbd_shutdown(h, 0);
        nbd_close(h);
}

static void test_out_of_range(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = client(f, "rw");
        uint8_t buf[4096] = {0};

        assert_non_null(h);
        assert_int_equal(nbd_set_strict_mode(h, 0), 0);
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), RW_SIZE - 100, 0), -1);
        assert_int_equal(nbd_get_errno(), EINVAL);
        assert_int_equal(nbd_trim(h, 4096, RW_SIZE, 0), -1);
        assert_int_equal(nbd_get_errno(), EINVAL);
        /* Writes beyond the end are ENOSPC, as the protocol's error list
         * asks (and qemu-nbd/nbdkit do). */
        assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), RW_SIZE, 0), -1);
        assert_int_equal(nbd_get_errno(), ENOSPC);
        assert_int_equal(nbd_zero(h, 4096, UINT64_MAX - 10, 0), -1);
        assert_int_equal(nbd_get_errno(), ENOSPC);
        /* A flag not valid for the command. */
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, LIBNBD_CMD_FLAG_NO_HOLE), -1);
        assert_int_equal(nbd_get_errno(), EINVAL);
        /* Still usable. */
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), RW_SIZE - sizeof(buf), 0), 0);
        nbd_shutdown(h, 0);
        nbd_close(h);
}

static void test_unknown_export(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h;

        assert_null(client(f, "nope"));
        /* A volume of another site is not served here. */
        assert_null(client(f, "other"));
        /* No default export. */
        assert_null(client(f, ""));
        /* A NUL-free prefix trick: "rw" must not match "rwx". */
        assert_null(client(f, "rwx"));
        /* The server is still fine. */
        h = client(f, "rw");
        assert_non_null(h);
        nbd_close(h);
}

static void test_export_name_option(void **state)
{
        struct fx *f = *state;
        /* Without FIXED_NEWSTYLE libnbd must use NBD_OPT_EXPORT_NAME; once
         * with and once without the 124 zero bytes. */
        uint32_t variants[] = {0, LIBNBD_HANDSHAKE_FLAG_NO_ZEROES};

        for (size_t i = 0; i < ARRAY_SIZE(variants); i++) {
                struct nbd_handle *h = nbd_create();
                uint8_t w[4096], r[4096];

                assert_non_null(h);
                assert_int_equal(nbd_set_handshake_flags(h, variants[i]), 0);
                assert_int_equal(nbd_set_export_name(h, "rw"), 0);
                assert_int_equal(nbd_connect_tcp(h, "127.0.0.1", f->port), 0);
                assert_int_equal(nbd_get_size(h), (int64_t)RW_SIZE);
                fill_random(w, sizeof(w));
                assert_int_equal(nbd_pwrite(h, w, sizeof(w), 12345, 0), 0);
                assert_int_equal(nbd_pread(h, r, sizeof(r), 12345, 0), 0);
                assert_memory_equal(r, w, sizeof(w));
                nbd_shutdown(h, 0);
                nbd_close(h);

                /* Unknown export by EXPORT_NAME: the server closes. */
                h = nbd_create();
                assert_int_equal(nbd_set_handshake_flags(h, variants[i]), 0);
                assert_int_equal(nbd_set_export_name(h, "nope"), 0);
                assert_int_equal(nbd_connect_tcp(h, "127.0.0.1", f->port), -1);
                nbd_close(h);
        }
}

struct names {
        char list[8][64];
        int n;
};

static int list_cb(void *opaque, const char *name, const char *desc)
{
        struct names *ns = opaque;

        (void)desc;
        if (ns->n < 8)
                snprintf(ns->list[ns->n++], 64, "%s", name);
        return 0;
}

static void test_list_and_info(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = nbd_create();
        struct names ns = {0};
        uint8_t buf[512];

        assert_non_null(h);
        assert_int_equal(nbd_set_opt_mode(h, true), 0);
        assert_int_equal(nbd_set_request_block_size(h, true), 0);
        assert_int_equal(nbd_connect_tcp(h, "127.0.0.1", f->port), 0);
        /* Export names are secrets: LIST is refused by policy. */
        assert_int_equal(
            nbd_opt_list(h, (nbd_list_callback){.callback = list_cb, .user_data = &ns}), -1);
        assert_int_equal(ns.n, 0);

        /* INFO on a missing export fails without ending the handshake. */
        assert_int_equal(nbd_set_export_name(h, "nope"), 0);
        assert_int_equal(nbd_opt_info(h), -1);
        assert_int_equal(nbd_set_export_name(h, "ro"), 0);
        assert_int_equal(nbd_opt_info(h), 0);
        assert_int_equal(nbd_get_size(h), (int64_t)RO_SIZE);
        assert_int_equal(nbd_is_read_only(h), 1);
        assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM), 1);
        assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED), 4096);
        assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM), NBD_MAX_PAYLOAD);

        assert_int_equal(nbd_set_export_name(h, "rw"), 0);
        assert_int_equal(nbd_opt_go(h), 0);
        assert_int_equal(nbd_get_size(h), (int64_t)RW_SIZE);
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, 0), 0);
        nbd_shutdown(h, 0);
        nbd_close(h);

        /* NBD_OPT_ABORT ends the handshake cleanly. */
        h = nbd_create();
        assert_int_equal(nbd_set_opt_mode(h, true), 0);
        assert_int_equal(nbd_connect_tcp(h, "127.0.0.1", f->port), 0);
        assert_int_equal(nbd_opt_abort(h), 0);
        nbd_close(h);
}

/* Many requests in flight on one connection: writes then reads of distinct
 * blocks, each checked by checksum. */
static void inflight_rw(struct nbd_handle *h, uint64_t base, int n, size_t blk)
{
        uint8_t *w = malloc((size_t)n * blk), *r = malloc((size_t)n * blk);
        int64_t *cookies = calloc((size_t)n, sizeof(*cookies));

        fill_random(w, (size_t)n * blk);
        for (int i = 0; i < n; i++) {
                cookies[i] =
                    nbd_aio_pwrite(h, w + (size_t)i * blk, blk, base + (uint64_t)i * blk,
                                   NBD_NULL_COMPLETION, (i % 7 == 0) ? LIBNBD_CMD_FLAG_FUA : 0);
                assert_true(cookies[i] > 0);
        }
        while (nbd_aio_in_flight(h) > 0)
                assert_true(nbd_poll(h, -1) >= 0);
        for (int i = 0; i < n; i++)
                assert_int_equal(nbd_aio_command_completed(h, cookies[i]), 1);
        memset(r, 0, (size_t)n * blk);
        for (int i = 0; i < n; i++) {
                cookies[i] = nbd_aio_pread(h, r + (size_t)i * blk, blk, base + (uint64_t)i * blk,
                                           NBD_NULL_COMPLETION, 0);
                assert_true(cookies[i] > 0);
        }
        while (nbd_aio_in_flight(h) > 0)
                assert_true(nbd_poll(h, -1) >= 0);
        for (int i = 0; i < n; i++)
                assert_int_equal(nbd_aio_command_completed(h, cookies[i]), 1);
        for (int i = 0; i < n; i++)
                assert_true(csum(r + (size_t)i * blk, blk) == csum(w + (size_t)i * blk, blk));
        free(w);
        free(r);
        free(cookies);
}

static void test_many_in_flight(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *h = client(f, "rw");

        assert_non_null(h);
        inflight_rw(h, 0, 64, 64 * 1024);
        inflight_rw(h, 0, 256, 4096);
        nbd_shutdown(h, 0);
        nbd_close(h);
}

static void test_concurrent_connections(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *hs[6];
        const size_t blk = 32 * 1024;
        const int n = 16;
        uint8_t *w[6], *r = malloc((size_t)n * blk);
        int64_t c;

        for (int k = 0; k < 6; k++) {
                hs[k] = client(f, "rw");
                assert_non_null(hs[k]);
                w[k] = malloc((size_t)n * blk);
                fill_random(w[k], (size_t)n * blk);
        }
        /* Interleave all connections' writes, then flush on one: with
         * CAN_MULTI_CONN the flush covers every completed write. */
        for (int i = 0; i < n; i++)
                for (int k = 0; k < 6; k++) {
                        c = nbd_aio_pwrite(hs[k], w[k] + (size_t)i * blk, blk,
                                           (uint64_t)k * n * blk + (uint64_t)i * blk,
                                           NBD_NULL_COMPLETION, 0);
                        assert_true(c > 0);
                }
        for (int k = 0; k < 6; k++)
                while (nbd_aio_in_flight(hs[k]) > 0)
                        assert_true(nbd_poll(hs[k], -1) >= 0);
        assert_int_equal(nbd_flush(hs[0], 0), 0);
        for (int k = 0; k < 6; k++) {
                /* Read another connection's region: shared, coherent view. */
                int src = (k + 1) % 6;
                assert_int_equal(nbd_pread(hs[k], r, (size_t)n * blk, (uint64_t)src * n * blk, 0),
                                 0);
                assert_true(csum(r, (size_t)n * blk) == csum(w[src], (size_t)n * blk));
        }
        for (int k = 0; k < 6; k++) {
                nbd_shutdown(hs[k], 0);
                nbd_close(hs[k]);
                free(w[k]);
        }
        free(r);
}

static void test_killed_volume(void **state)
{
        struct fx *f = *state;
        struct volume *v;
        struct nbd_handle *h;
        uint8_t buf[4096] = {0};

        assert_int_equal(add_volume("kill", SITE, KILL_SIZE, &v), 0);
        h = client(f, "kill");
        assert_non_null(h);
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, 0), 0);
        volume_kill(v);
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, 0), -1);
        assert_int_equal(nbd_get_errno(), ESHUTDOWN);
        assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), -1);
        assert_int_equal(nbd_get_errno(), ESHUTDOWN);
        nbd_close(h);
        /* A killed volume is not offered to new clients. */
        assert_null(client(f, "kill"));
        drop_volume(v);
}

#ifndef NBUSY
#define NBUSY 8
#endif
static void test_stop_with_clients_connected(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *idle = client(f, "rw");
        struct nbd_handle *busy = client(f, "rw");
        struct nbd_handle *opt = nbd_create();
        uint8_t *buf = malloc(1024 * 1024);
        int64_t c;

        assert_non_null(idle);
        assert_non_null(busy);
        /* One client parked in the handshake. */
        assert_int_equal(nbd_set_opt_mode(opt, true), 0);
        assert_int_equal(nbd_connect_tcp(opt, "127.0.0.1", f->port), 0);
        for (int i = 0; i < NBUSY; i++) {
                c = nbd_aio_pread(busy, buf, 1024 * 1024, 0, NBD_NULL_COMPLETION, 0);
                assert_true(c > 0);
        }
        nbd_server_stop(f->srv);
        assert_int_equal(nbd_server_start(SITE, "127.0.0.1", 0, NTHREADS, &f->srv), 0);
        snprintf(f->port, sizeof(f->port), "%d", nbd_server_port(f->srv));
        /* The old connections are gone. */
        assert_int_equal(nbd_pread(idle, buf, 512, 0, 0), -1);
        nbd_close(idle);
        nbd_close(busy);
        nbd_close(opt);
        free(buf);
}

/* ---- raw socket tests: what libnbd would never send ---- */

static int raw_connect(struct fx *f)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(f->port))};
        struct timeval tv = {.tv_sec = 20};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        /* A server that fails to close would hang us: fail instead. */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

/* Handshake by EXPORT_NAME with NO_ZEROES; returns the socket in
 * transmission phase. */
static int raw_attach(struct fx *f, const char *export)
{
        int fd = raw_connect(f);
        uint8_t hello[NBD_HELLO_LEN], b[64], rep[10];
        size_t n = strlen(export);

        assert_int_equal(util_read_full(fd, hello, sizeof(hello)), 0);
        assert_true(nbd_get64(hello) == NBD_MAGIC_INIT);
        assert_true(nbd_get64(hello + 8) == NBD_MAGIC_OPTS);
        nbd_put32(b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
        nbd_put64(b + 4, NBD_MAGIC_OPTS);
        nbd_put32(b + 12, NBD_OPT_EXPORT_NAME);
        nbd_put32(b + 16, (uint32_t)n);
        memcpy(b + 20, export, n);
        assert_int_equal(util_write_full(fd, b, 20 + n), 0);
        assert_int_equal(util_read_full(fd, rep, sizeof(rep)), 0);
        return fd;
}

static void raw_request(int fd, uint16_t flags, uint16_t type, uint64_t cookie, uint64_t off,
                        uint32_t len)
{
        uint8_t b[NBD_REQUEST_LEN];

        nbd_put32(b, NBD_MAGIC_REQUEST);
        nbd_put16(b + 4, flags);
        nbd_put16(b + 6, type);
        nbd_put64(b + 8, cookie);
        nbd_put64(b + 16, off);
        nbd_put32(b + 24, len);
        assert_int_equal(util_write_full(fd, b, sizeof(b)), 0);
}

static uint32_t raw_reply(int fd, uint64_t cookie)
{
        uint8_t rep[NBD_SIMPLE_REPLY_LEN];

        assert_int_equal(util_read_full(fd, rep, sizeof(rep)), 0);
        assert_true(nbd_get32(rep) == NBD_MAGIC_SIMPLE_REPLY);
        assert_true(nbd_get64(rep + 8) == cookie);
        return nbd_get32(rep + 4);
}

/* The server closed: read returns EOF (not a timeout). */
static void assert_closed(int fd)
{
        uint8_t b[256];
        ssize_t n;

        do
                n = read(fd, b, sizeof(b));
        while (n > 0);
        assert_int_equal(n, 0);
}

static void test_raw_unknown_command(void **state)
{
        struct fx *f = *state;
        int fd = raw_attach(f, "rw");
        uint8_t data[512];

        raw_request(fd, 0, NBD_CMD_CACHE, 1, 0, 512);
        assert_int_equal(raw_reply(fd, 1), NBD_EINVAL);
        raw_request(fd, 0, 200, 2, 0, 512);
        assert_int_equal(raw_reply(fd, 2), NBD_EINVAL);
        /* A WRITE with a bad flag: payload consumed, error replied, stream
         * stays in sync. */
        memset(data, 0xab, sizeof(data));
        raw_request(fd, NBD_CMD_FLAG_DF, NBD_CMD_WRITE, 3, 0, sizeof(data));
        assert_int_equal(util_write_full(fd, data, sizeof(data)), 0);
        assert_int_equal(raw_reply(fd, 3), NBD_EINVAL);
        /* Zero-length read. */
        raw_request(fd, 0, NBD_CMD_READ, 4, 0, 0);
        assert_int_equal(raw_reply(fd, 4), 0);
        raw_request(fd, 0, NBD_CMD_READ, 5, 0, sizeof(data));
        assert_int_equal(raw_reply(fd, 5), 0);
        assert_int_equal(util_read_full(fd, data, sizeof(data)), 0);
        /* DISC: no reply, the server closes. */
        raw_request(fd, 0, NBD_CMD_DISC, 6, 0, 0);
        assert_closed(fd);
        close(fd);
}

/* Inline reads (docs/design/nbd.md, "Threading"): a small READ served by
 * the reader itself returns the file's bytes whether they are cached or
 * not (uncached: handed over, blocking path), also when two READs arrive
 * together (the second queued: handed over); and a READ that blocks in the
 * volume (a hold rule on its reads) never stops the reading of the
 * connection's next request: the FLUSH behind it is answered first. */
static void test_raw_inline_reads(void **state)
{
        struct fx *f = *state;
        int fd = raw_attach(f, "rw"), vfd;
        const uint64_t offs[] = {0, 4096 * 3, 5 * 1024 * 1024 + 512, RW_SIZE - 8192};
        uint8_t w[8192], r[8192], two[2 * NBD_REQUEST_LEN];

        vfd = open(volume_path(f->rw), O_RDWR);
        assert_true(vfd >= 0);
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
                        fill_random(w, sizeof(w));
                        assert_int_equal(util_pwrite_full(vfd, w, sizeof(w), offs[i]), 0);
                        if (pass == 1) { /* out of the page cache: the blocking path */
                                assert_int_equal(fdatasync(vfd), 0);
                                assert_int_equal(posix_fadvise(vfd, 0, 0, POSIX_FADV_DONTNEED), 0);
                        }
                        raw_request(fd, 0, NBD_CMD_READ, 10 + i, offs[i], sizeof(r));
                        assert_int_equal(raw_reply(fd, 10 + i), 0);
                        assert_int_equal(util_read_full(fd, r, sizeof(r)), 0);
                        assert_true(csum(r, sizeof(r)) == csum(w, sizeof(w)));
                }
        /* Two READs in one segment: both answered, each with its bytes. */
        fill_random(w, sizeof(w));
        assert_int_equal(util_pwrite_full(vfd, w, sizeof(w), 0), 0);
        for (int k = 0; k < 2; k++) {
                nbd_put32(two + k * NBD_REQUEST_LEN, NBD_MAGIC_REQUEST);
                nbd_put16(two + k * NBD_REQUEST_LEN + 4, 0);
                nbd_put16(two + k * NBD_REQUEST_LEN + 6, NBD_CMD_READ);
                nbd_put64(two + k * NBD_REQUEST_LEN + 8, 20);
                nbd_put64(two + k * NBD_REQUEST_LEN + 16, (uint64_t)k * 4096);
                nbd_put32(two + k * NBD_REQUEST_LEN + 24, 4096);
        }
        assert_int_equal(util_write_full(fd, two, sizeof(two)), 0);
        for (int k = 0; k < 2; k++) {
                uint8_t rep[NBD_SIMPLE_REPLY_LEN];

                assert_int_equal(util_read_full(fd, rep, sizeof(rep)), 0);
                assert_true(nbd_get32(rep) == NBD_MAGIC_SIMPLE_REPLY);
                assert_int_equal(nbd_get32(rep + 4), 0);
                assert_int_equal(util_read_full(fd, r, 4096), 0);
                /* the same cookie: tell them apart by content */
                assert_true(csum(r, 4096) == csum(w, 4096) ||
                            csum(r, 4096) == csum(w + 4096, 4096));
        }
#if FAULT_INJECTION_BUILT
        {
                char hold[256], rule[300];
                int hfd;

                snprintf(hold, sizeof(hold), "%s/hold-read", g_dir);
                hfd = open(hold, O_CREAT | O_WRONLY, 0600);
                assert_true(hfd >= 0);
                close(hfd);
                snprintf(rule, sizeof(rule), "vol_read@rw^%s", hold);
                assert_int_equal(fault_configure(rule), 0);
                /* The READ is cached (just read back above): inline-able
                 * but for the rule, which holds it in the volume. */
                raw_request(fd, 0, NBD_CMD_READ, 30, 0, 4096);
                /* Let the server take the READ alone first (nothing queued
                 * behind it); a shorter wait only makes the check weaker. */
                usleep(200000);
                raw_request(fd, 0, NBD_CMD_FLUSH, 31, 0, 0);
                assert_int_equal(raw_reply(fd, 31), 0);
                unlink(hold);
                assert_int_equal(raw_reply(fd, 30), 0);
                assert_int_equal(util_read_full(fd, r, 4096), 0);
                assert_true(csum(r, 4096) == csum(w, 4096));
                assert_int_equal(fault_configure(NULL), 0);
        }
#endif
        raw_request(fd, 0, NBD_CMD_DISC, 40, 0, 0);
        assert_closed(fd);
        close(fd);
        close(vfd);
}

static void test_raw_garbage_closes_only_that_connection(void **state)
{
        struct fx *f = *state;
        struct nbd_handle *good = client(f, "rw");
        uint8_t junk[4096], buf[4096];
        int fd;

        assert_non_null(good);
        /* Garbage in transmission. */
        fd = raw_attach(f, "rw");
        fill_random(junk, sizeof(junk));
        junk[0] = 0; /* certainly not the request magic */
        assert_int_equal(util_write_full(fd, junk, NBD_REQUEST_LEN), 0);
        assert_closed(fd);
        close(fd);
        /* Garbage instead of client flags / options. */
        fd = raw_connect(f);
        (void)!write(fd, junk, sizeof(junk));
        assert_closed(fd);
        close(fd);
        /* Unknown client flags. */
        fd = raw_connect(f);
        assert_int_equal(util_read_full(fd, buf, NBD_HELLO_LEN), 0);
        nbd_put32(buf, 0x80);
        assert_int_equal(util_write_full(fd, buf, 4), 0);
        assert_closed(fd);
        close(fd);
        /* An oversized WRITE. */
        fd = raw_attach(f, "rw");
        raw_request(fd, 0, NBD_CMD_WRITE, 9, 0, NBD_MAX_PAYLOAD + 1);
        assert_closed(fd);
        close(fd);
        /* An absurd option length. */
        fd = raw_connect(f);
        assert_int_equal(util_read_full(fd, buf, NBD_HELLO_LEN), 0);
        nbd_put32(buf, NBD_FLAG_C_FIXED_NEWSTYLE);
        nbd_put64(buf + 4, NBD_MAGIC_OPTS);
        nbd_put32(buf + 12, NBD_OPT_GO);
        nbd_put32(buf + 16, 0x7fffffff);
        assert_int_equal(util_write_full(fd, buf, 20), 0);
        assert_closed(fd);
        close(fd);

        /* The well-behaved client never noticed. */
        fill_random(junk, sizeof(junk));
        assert_int_equal(nbd_pwrite(good, junk, sizeof(junk), 0, 0), 0);
        assert_int_equal(nbd_pread(good, buf, sizeof(buf), 0, 0), 0);
        assert_memory_equal(buf, junk, sizeof(buf));
        nbd_shutdown(good, 0);
        nbd_close(good);
}

static void test_raw_disconnect_mid_request(void **state)
{
        struct fx *f = *state;
        uint8_t part[1000] = {0x5a};
        uint8_t buf[4096];
        struct nbd_handle *h;
        int fd;

        /* Half a WRITE payload, then gone. */
        fd = raw_attach(f, "rw");
        raw_request(fd, 0, NBD_CMD_WRITE, 1, 0, 1024 * 1024);
        assert_int_equal(util_write_full(fd, part, sizeof(part)), 0);
        close(fd);
        /* Half a request header, then gone. */
        fd = raw_attach(f, "rw");
        assert_int_equal(util_write_full(fd, part, 10), 0);
        close(fd);
        /* Many reads queued and the client leaves without reading replies. */
        fd = raw_attach(f, "rw");
        for (int i = 0; i < 32; i++)
                raw_request(fd, 0, NBD_CMD_READ, (uint64_t)i, 0, 1024 * 1024);
        close(fd);
        /* Mid-handshake. */
        fd = raw_connect(f);
        close(fd);

        h = client(f, "rw");
        assert_non_null(h);
        assert_int_equal(nbd_pread(h, buf, sizeof(buf), 0, 0), 0);
        nbd_shutdown(h, 0);
        nbd_close(h);
}

static void test_start_errors(void **state)
{
        struct fx *f = *state;
        struct nbd_server *s2 = NULL;

        /* The port is taken. */
        assert_int_equal(nbd_server_start(SITE, "127.0.0.1", nbd_server_port(f->srv), 1, &s2),
                         -EADDRINUSE);
        assert_int_equal(nbd_server_start(SITE, "127.0.0.1", 70000, 1, &s2), -EINVAL);
        assert_null(s2);
        nbd_server_stop(NULL);
}

/* ---- Bounds: payload budget (nbd.h struct nbd_limits) ---- */

static struct nbd_server *start_limited(uint64_t conn_bytes, uint64_t total_bytes, char *port,
                                        size_t portlen)
{
        struct nbd_limits lim;
        struct nbd_server *s = NULL;

        nbd_limits_default(&lim);
        lim.conn_budget_bytes = conn_bytes;
        lim.total_budget_bytes = total_bytes;
        assert_int_equal(nbd_server_start_with(SITE, "127.0.0.1", 0, NTHREADS, &lim, &s), 0);
        snprintf(port, portlen, "%d", nbd_server_port(s));
        return s;
}

static struct nbd_handle *client_port(const char *port, const char *export)
{
        struct nbd_handle *h = nbd_create();

        assert_non_null(h);
        assert_int_equal(nbd_set_export_name(h, export), 0);
        assert_int_equal(nbd_connect_tcp(h, "127.0.0.1", port), 0);
        return h;
}

/* Complete one read of len at off on h, failing (not hanging) after 60 s. */
static void read_within(struct nbd_handle *h, void *buf, size_t len, uint64_t off)
{
        int64_t end = util_mono_usec() + 60 * 1000000ll;
        int64_t cookie = nbd_aio_pread(h, buf, len, off, NBD_NULL_COMPLETION, 0);

        assert_true(cookie > 0);
        while (nbd_aio_in_flight(h) > 0) {
                if (util_mono_usec() > end)
                        fail_msg("read of %zu bytes not answered in 60 s (budget never freed?)",
                                 len);
                assert_true(nbd_poll(h, 100) >= 0);
        }
        assert_int_equal(nbd_aio_command_completed(h, cookie), 1);
}

/* A request as big as the whole budget needs every byte of it: the pooled
 * buffers an idle connection keeps must be given back, or it waits
 * forever. Also: requests bigger than the connection budget are served,
 * one at a time. */
static void test_budget_idle_pools_give_way(void **state)
{
        struct fx *f = *state;
        const size_t mib = 1024 * 1024;
        char port[16];
        struct nbd_server *s = start_limited(2 * mib, 2 * mib, port, sizeof(port));
        struct nbd_handle *a = client_port(port, "rw"), *b = client_port(port, "rw");
        uint8_t *buf = malloc(8 * mib), *want = malloc(8 * mib);

        (void)f;
        fill_random(want, 8 * mib);
        for (size_t off = 0; off < 8 * mib; off += 2 * mib)
                assert_int_equal(nbd_pwrite(a, want + off, 2 * mib, off, 0), 0);
        /* a: concurrent small reads leave buffers in its pool, then idles. */
        inflight_rw(a, 16 * mib, 8, 256 * 1024);
        /* b: the whole total budget, then 4x the connection budget. */
        read_within(b, buf, 2 * mib, 0);
        assert_true(csum(buf, 2 * mib) == csum(want, 2 * mib));
        read_within(b, buf, 8 * mib, 0);
        assert_true(csum(buf, 8 * mib) == csum(want, 8 * mib));
        /* a still works after its pool was taken. */
        read_within(a, buf, 2 * mib, 0);
        assert_true(csum(buf, 2 * mib) == csum(want, 2 * mib));
        nbd_shutdown(a, 0);
        nbd_shutdown(b, 0);
        nbd_close(a);
        nbd_close(b);
        free(buf);
        free(want);
        nbd_server_stop(s);
}

/* A client that stops reading: its first READ is stuck in send (no send
 * timeout here), the next one waits for the connection's budget. Stop must
 * still end the connection (the waiter is woken, not left asleep) and the
 * budgets must come back to zero (asserted inside nbd_server_stop). */
static void test_budget_stop_with_reader_waiting(void **state)
{
        struct fx *f = *state;
        struct fx g = *f;
        struct nbd_limits lim;
        struct nbd_server *s = NULL;
        int small = 4096, avail = 0;
        int64_t t0;
        int fd;

        nbd_limits_default(&lim);
        lim.conn_budget_bytes = 1024 * 1024;
        lim.send_timeout_sec = 0;
        assert_int_equal(nbd_server_start_with(SITE, "127.0.0.1", 0, NTHREADS, &lim, &s), 0);
        snprintf(g.port, sizeof(g.port), "%d", nbd_server_port(s));
        fd = raw_attach(&g, "rw");
        /* A small window: the replies back up at once. */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
        for (uint64_t i = 0; i < 4; i++)
                raw_request(fd, 0, NBD_CMD_READ, i + 1, i * 4 * 1024 * 1024, 4 * 1024 * 1024);
        /* Reply bytes arrive: the server is sending, and will block. */
        t0 = util_mono_usec();
        while (ioctl(fd, FIONREAD, &avail) == 0 && avail == 0) {
                assert_true(util_mono_usec() - t0 < 60 * 1000000ll);
                usleep(10 * 1000);
        }
        t0 = util_mono_usec();
        nbd_server_stop(s);
        /* Within the 5 s grace plus reaping; the alarm catches a hang. */
        assert_true(util_mono_usec() - t0 < 120 * 1000000ll);
        close(fd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_spliced_reads, setup, teardown),
            cmocka_unit_test_setup_teardown(test_zero_trim, setup, teardown),
            cmocka_unit_test_setup_teardown(test_read_only_eperm, setup, teardown),
            cmocka_unit_test_setup_teardown(test_read_only_flip_after_handshake, setup, teardown),
            cmocka_unit_test_setup_teardown(test_attachments, setup, teardown),
            cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unknown_export, setup, teardown),
            cmocka_unit_test_setup_teardown(test_export_name_option, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_and_info, setup, teardown),
            cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_connections, setup, teardown),
            cmocka_unit_test_setup_teardown(test_killed_volume, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stop_with_clients_connected, setup, teardown),
            cmocka_unit_test_setup_teardown(test_raw_unknown_command, setup, teardown),
            cmocka_unit_test_setup_teardown(test_raw_inline_reads, setup, teardown),
            cmocka_unit_test_setup_teardown(test_raw_garbage_closes_only_that_connection, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_raw_disconnect_mid_request, setup, teardown),
            cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_budget_idle_pools_give_way, setup, teardown),
            cmocka_unit_test_setup_teardown(test_budget_stop_with_reader_waiting, setup, teardown),
        };
        int rc;

        /* A wedged stop must fail the run, not hang it. */
        alarm(240);
        if (fixture_tmpdir_make(g_dir, sizeof(g_dir), "nbd") != 0)
                return 1;
        rc = cmocka_run_group_tests(tests, NULL, NULL);
        fixture_tmpdir_remove(g_dir);
        return rc;
}
