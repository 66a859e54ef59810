/* Unit tests of the sidecar's generation, against docs/design/
 * replication.md "The release record" (R5, R6) and the on-disk format
 * (version 2, generation at offset 88):
 *   - sidecar_fate_decide: fold a sidecar whose generation the group's
 *     count of completed resyncs covers, roll back a newer one, whatever
 *     the rows say; the rows decide only for generation 0 (a version-1
 *     file: R4)
 *   - sidecar_open_decide: an open replaces an older generation, keeps its
 *     own, stamps an unknown one, keeps a newer one
 *   - the generation written at creation and by a stamp survives a reopen
 *   - migration: a version-1 file (whatever lies at offset 88) is read as
 *     generation 0 and becomes version 2 when stamped; a version from the
 *     future is refused as damaged (deleted, S4) */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture_tmpdir.h"

#include "common/util.h"
#include "engine/sidecar.h"

#define CB      UINT64_C(65536)
#define NCHUNKS UINT64_C(16)
#define PAIR_ID "5d0f6c1e-2b7a-4c3e-8f11-9a2b3c4d5e6f"
#define OFF_VER 8
#define OFF_CRC 12
#define OFF_GEN 88

struct fx {
        char dir[64];
        char path[128];
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        if (fixture_tmpdir_make(f->dir, sizeof(f->dir), "scgen") != 0) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof(f->path), "%s/pair-test.drcow", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        fixture_tmpdir_remove(f->dir);
        free(f);
        return 0;
}

static bool file_exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

static struct sidecar *create(struct fx *f, int64_t frozen_at, uint64_t gen)
{
        struct sidecar *s = NULL;

        assert_int_equal(sidecar_new(f->path, PAIR_ID, CB, &s), 0);
        assert_int_equal(sidecar_create_gen(s, NCHUNKS, frozen_at, gen), 0);
        assert_true(sidecar_is_open(s));
        return s;
}

static struct sidecar *reopen(struct fx *f, int want)
{
        struct sidecar *s = NULL;

        assert_int_equal(sidecar_new(f->path, PAIR_ID, 0, &s), 0);
        assert_int_equal(sidecar_load(s), want);
        return s;
}

static void hdr_read(struct fx *f, unsigned char *blk)
{
        int fd = open(f->path, O_RDONLY);

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, blk, 4096, 0), 4096);
        close(fd);
}

/* Rewrite the header block with version ver and gen at offset 88, and a
 * valid CRC (what an older or newer binary would have written). */
static void hdr_patch(struct fx *f, uint32_t ver, uint64_t gen)
{
        unsigned char blk[4096];
        uint32_t crc;
        int fd;

        hdr_read(f, blk);
        memcpy(blk + OFF_VER, &ver, 4);
        memcpy(blk + OFF_GEN, &gen, 8);
        crc = util_crc32c(blk + 16, sizeof(blk) - 16);
        memcpy(blk + OFF_CRC, &crc, 4);
        fd = open(f->path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
        close(fd);
}

static uint32_t hdr_version(struct fx *f)
{
        unsigned char blk[4096];
        uint32_t v;

        hdr_read(f, blk);
        memcpy(&v, blk + OFF_VER, 4);
        return v;
}

/* ---- tests ---- */

static void test_fate(void **state)
{
        (void)state;
        /* Known generation: the release record decides, never the rows. */
        assert_int_equal(sidecar_fate_decide(3, 3, false), SIDECAR_FOLD);
        assert_int_equal(sidecar_fate_decide(2, 5, false), SIDECAR_FOLD);
        assert_int_equal(sidecar_fate_decide(1, 1, true), SIDECAR_FOLD);
        /* A newer resync that had not completed (rows stale "active"). */
        assert_int_equal(sidecar_fate_decide(4, 3, true), SIDECAR_ROLLBACK);
        assert_int_equal(sidecar_fate_decide(1, 0, false), SIDECAR_ROLLBACK);
        assert_int_equal(sidecar_fate_decide(UINT64_MAX, UINT64_MAX - 1, true), SIDECAR_ROLLBACK);
        /* Unknown generation (version 1): R4, the rows. */
        assert_int_equal(sidecar_fate_decide(0, 0, true), SIDECAR_FOLD);
        assert_int_equal(sidecar_fate_decide(0, 7, true), SIDECAR_FOLD);
        assert_int_equal(sidecar_fate_decide(0, 7, false), SIDECAR_ROLLBACK);
}

static void test_open(void **state)
{
        (void)state;
        assert_int_equal(sidecar_open_decide(3, 4), SIDECAR_REPLACE); /* released */
        assert_int_equal(sidecar_open_decide(1, 9), SIDECAR_REPLACE);
        assert_int_equal(sidecar_open_decide(4, 4), SIDECAR_KEEP);  /* paused, resumed */
        assert_int_equal(sidecar_open_decide(5, 4), SIDECAR_KEEP);  /* never from a store read */
        assert_int_equal(sidecar_open_decide(0, 4), SIDECAR_STAMP); /* version 1: migrated */
        /* An open naming no generation (a pair in no group): as before. */
        assert_int_equal(sidecar_open_decide(0, 0), SIDECAR_KEEP);
        assert_int_equal(sidecar_open_decide(3, 0), SIDECAR_KEEP);
}

static void test_generation_roundtrip(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = create(f, 1111, 7);

        assert_int_equal(sidecar_generation(s), 7);
        sidecar_free(s); /* a restart: the file stays */
        assert_int_equal(hdr_version(f), 2);
        s = reopen(f, 1);
        assert_int_equal(sidecar_generation(s), 7);
        assert_int_equal(sidecar_frozen_at(s), 1111);
        assert_int_equal(sidecar_set_generation(s, 9), 0);
        sidecar_free(s);
        s = reopen(f, 1);
        assert_int_equal(sidecar_generation(s), 9);
        /* Closed: no generation, no stamp. */
        assert_int_equal(sidecar_discard(s), 0);
        assert_int_equal(sidecar_generation(s), 0);
        assert_int_equal(sidecar_set_generation(s, 10), -EBADF);
        assert_false(file_exists(f->path));
        sidecar_free(s);
        /* sidecar_create: generation 0 (local sidecars). */
        assert_int_equal(sidecar_new(f->path, PAIR_ID, CB, &s), 0);
        assert_int_equal(sidecar_create(s, NCHUNKS, 5), 0);
        assert_int_equal(sidecar_generation(s), 0);
        sidecar_free(s);
}

/* A version-1 file: no generation field; bytes at its place are not read. */
static void test_v1_migration(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = create(f, 2222, 0);

        sidecar_free(s);
        hdr_patch(f, 1, 0x5555); /* garbage where version 2 keeps it */
        s = reopen(f, 1);
        assert_int_equal(sidecar_generation(s), 0);
        assert_int_equal(sidecar_frozen_at(s), 2222);
        assert_int_equal(sidecar_chunk_bytes(s), CB);
        /* An open stamps it: version 2 from now on, the instant kept. */
        assert_int_equal(sidecar_set_generation(s, 4), 0);
        assert_int_equal(hdr_version(f), 2);
        sidecar_free(s);
        s = reopen(f, 1);
        assert_int_equal(sidecar_generation(s), 4);
        assert_int_equal(sidecar_frozen_at(s), 2222);
        sidecar_free(s);
        /* Other header writes (S5's flag) also write version 2. */
        s = create(f, 3333, 0);
        sidecar_free(s);
        hdr_patch(f, 1, 0);
        s = reopen(f, 1);
        assert_int_equal(sidecar_discard_intent(s), 0);
        assert_int_equal(hdr_version(f), 2);
        sidecar_free(s);
        s = reopen(f, 1);
        assert_true(sidecar_discard_pending(s));
        assert_int_equal(sidecar_generation(s), 0);
        sidecar_free(s);
}

static void test_future_version(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = create(f, 4444, 3);

        sidecar_free(s);
        hdr_patch(f, 3, 3);
        s = reopen(f, 0); /* damaged: deleted (S4) */
        assert_false(file_exists(f->path));
        assert_false(sidecar_is_open(s));
        sidecar_free(s);
        s = create(f, 4445, 3);
        sidecar_free(s);
        hdr_patch(f, 0, 3);
        s = reopen(f, 0);
        assert_false(file_exists(f->path));
        sidecar_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fate),
            cmocka_unit_test(test_open),
            cmocka_unit_test_setup_teardown(test_generation_roundtrip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_v1_migration, setup, teardown),
            cmocka_unit_test_setup_teardown(test_future_version, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
