/* Unit tests of the copy-on-write sidecar (engine/sidecar.h) against
 * docs/design/replication.md, "A consistent DR image during resync":
 * preserve keeps the frozen content (once: S2), sparse for zero chunks,
 * rollback restores it exactly, the index is durable and reopened (S4), a
 * damaged or truncated file is deleted, a failed read preserves nothing, an
 * interrupted rollback is redone from a reopened sidecar (idempotent), the
 * frozen size bounds the image, and preserves from many threads at once.
 * The DR disk is an in-memory link. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#include "engine/bitmap.h"
#include "engine/link.h"
#include "engine/sidecar.h"

#define CB      UINT64_C(65536)
#define NCHUNKS UINT64_C(64)
#define PAIR_ID "0b9d0e4c-7f3a-4d1e-9a55-3c2b1a0f9e87"

/* ---- an in-memory DR disk ---- */

struct mlink {
        struct link base;
        unsigned char *mem;
        uint64_t size;
        int fail_write_after; /* < 0: never; else writes that succeed first */
        bool fail_read;
        int writes, reads;
        pthread_mutex_t mu;
};

static struct mlink *ml(struct link *l)
{
        return (struct mlink *)l;
}

static int ml_write(struct link *l, const void *buf, size_t len, uint64_t off, unsigned flags)
{
        struct mlink *m = ml(l);
        int rc = 0;

        (void)flags;
        pthread_mutex_lock(&m->mu);
        if (off + len > m->size)
                rc = -EINVAL;
        else if (m->fail_write_after >= 0 && m->writes >= m->fail_write_after)
                rc = -EIO;
        else
                memcpy(m->mem + off, buf, len);
        if (rc == 0)
                m->writes++;
        pthread_mutex_unlock(&m->mu);
        return rc;
}

static int ml_zero(struct link *l, uint64_t off, uint64_t len, bool punch, unsigned flags)
{
        struct mlink *m = ml(l);
        int rc = 0;

        (void)punch;
        (void)flags;
        pthread_mutex_lock(&m->mu);
        if (off + len > m->size)
                rc = -EINVAL;
        else if (m->fail_write_after >= 0 && m->writes >= m->fail_write_after)
                rc = -EIO;
        else
                memset(m->mem + off, 0, len);
        if (rc == 0)
                m->writes++;
        pthread_mutex_unlock(&m->mu);
        return rc;
}

static int ml_read(struct link *l, void *buf, size_t len, uint64_t off)
{
        struct mlink *m = ml(l);
        int rc = 0;

        pthread_mutex_lock(&m->mu);
        m->reads++;
        if (m->fail_read)
                rc = -EIO;
        else if (off + len > m->size)
                rc = -EINVAL;
        else
                memcpy(buf, m->mem + off, len);
        pthread_mutex_unlock(&m->mu);
        return rc;
}

static int ml_flush(struct link *l)
{
        (void)l;
        return 0;
}

static uint64_t ml_size(struct link *l)
{
        return ml(l)->size;
}

/* A map of DR for the links that have one (link_local): 4 KiB blocks,
 * alloc[b] set = data (SEEK_DATA finds it), whatever its bytes. */
#define MBLK UINT64_C(4096)
static unsigned char *g_ml_alloc;

static int ml_next_data(struct link *l, uint64_t off, uint64_t *data_off, uint64_t *data_len)
{
        uint64_t n = ml(l)->size / MBLK, b = off / MBLK, e;

        while (b < n && !g_ml_alloc[b])
                b++;
        if (b >= n)
                return -ENXIO;
        for (e = b; e < n && g_ml_alloc[e]; e++)
                ;
        *data_off = off > b * MBLK ? off : b * MBLK;
        *data_len = e * MBLK - *data_off;
        return 0;
}

static const struct link_ops g_ml_ops = {
    .write = ml_write,
    .zero = ml_zero,
    .flush = ml_flush,
    .size = ml_size,
    .read = ml_read,
};

static const struct link_ops g_ml_map_ops = {
    .write = ml_write,
    .zero = ml_zero,
    .flush = ml_flush,
    .size = ml_size,
    .read = ml_read,
    .next_data = ml_next_data,
};

static struct mlink *mlink_new(uint64_t size)
{
        struct mlink *m = calloc(1, sizeof(*m));

        assert_non_null(m);
        m->base.ops = &g_ml_ops;
        m->mem = calloc(1, size);
        assert_non_null(m->mem);
        m->size = size;
        m->fail_write_after = -1;
        pthread_mutex_init(&m->mu, NULL);
        return m;
}

static void mlink_free(struct mlink *m)
{
        pthread_mutex_destroy(&m->mu);
        free(m->mem);
        free(m);
}

/* ---- fixture ---- */

struct fx {
        char dir[64];
        char path[128];
        struct mlink *dr;
        unsigned char *frozen; /* the DR image at the frozen instant */
};

/* Chunk c of the frozen image: zeroes for every 4th chunk (a hole on DR),
 * else a pattern naming the chunk. */
static void fill_frozen(unsigned char *p, uint64_t nchunks)
{
        for (uint64_t c = 0; c < nchunks; c++) {
                if (c % 4 == 0)
                        memset(p + c * CB, 0, CB);
                else
                        for (uint64_t i = 0; i < CB; i++)
                                p[c * CB + i] = (unsigned char)(c * 7 + i % 251 + 1);
        }
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        if (fixture_tmpdir_make(f->dir, sizeof(f->dir), "sidecar") != 0) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof(f->path), "%s/pair-test.cow", f->dir);
        f->dr = mlink_new(NCHUNKS * CB);
        f->frozen = malloc(NCHUNKS * CB);
        fill_frozen(f->frozen, NCHUNKS);
        memcpy(f->dr->mem, f->frozen, NCHUNKS * CB);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        fixture_tmpdir_remove(f->dir);
        mlink_free(f->dr);
        free(f->frozen);
        free(f);
        return 0;
}

/* The resync (or a mirrored write) overwrites chunks [c0, c1] of DR after
 * preserving them, as the mirror does (S1). */
static void overwrite(struct sidecar *s, struct fx *f, uint64_t c0, uint64_t c1, unsigned char v)
{
        assert_int_equal(sidecar_preserve(s, &f->dr->base, c0, c1, f->dr->size), 0);
        memset(f->dr->mem + c0 * CB, v, (c1 - c0 + 1) * CB);
}

/* Rolling back succeeds and leaves DR exactly as it was frozen. */
static void rolled_back(struct sidecar *s, struct fx *f)
{
        assert_int_equal(sidecar_rollback(s, &f->dr->base, f->dr->size), 0);
        assert_memory_equal(f->dr->mem, f->frozen, NCHUNKS * CB);
}

static bool file_exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

static struct sidecar *open_new(struct fx *f, int64_t frozen_at)
{
        struct sidecar *s = NULL;

        assert_int_equal(sidecar_new(f->path, PAIR_ID, CB, &s), 0);
        assert_int_equal(sidecar_create(s, NCHUNKS, frozen_at), 0);
        assert_true(sidecar_is_open(s));
        assert_true(file_exists(f->path));
        return s;
}

static struct sidecar *reopen(struct fx *f, int want)
{
        struct sidecar *s = NULL;

        assert_int_equal(sidecar_new(f->path, PAIR_ID, CB, &s), 0);
        assert_int_equal(sidecar_load(s), want);
        return s;
}

/* ---- tests ---- */

static void test_preserve_rollback(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 1234567);
        struct sidecar_stats st;

        overwrite(s, f, 2, 5, 0xa1);   /* chunk 4 was a hole */
        overwrite(s, f, 10, 10, 0xa2); /* data */
        overwrite(s, f, 60, 63, 0xa3); /* 60 a hole */
        /* Written again: the sidecar keeps the frozen copy (S2). */
        overwrite(s, f, 3, 4, 0xb1);
        overwrite(s, f, 2, 12, 0xb2); /* 6..9, 11, 12 new; 10 again */
        sidecar_stats(s, &st);
        assert_true(st.open);
        assert_int_equal(st.frozen_at, 1234567);
        assert_int_equal(st.chunks, 4 + 1 + 4 + 6);
        /* Sparse: the zero chunks (4, 8, 12, 60) were not written. */
        assert_int_equal(st.data_bytes, (15 - 4) * CB);
        assert_int_equal(st.total_bytes, st.data_bytes);
        assert_memory_not_equal(f->dr->mem, f->frozen, NCHUNKS * CB);
        rolled_back(s, f);
        sidecar_stats(s, &st);
        assert_int_equal(st.rollbacks, 1);
        assert_int_equal(sidecar_discard(s), 0);
        assert_false(file_exists(f->path));
        assert_false(sidecar_is_open(s));
        sidecar_free(s);
}

/* With a map of DR (next_data: a local link), only DR's data extents are
 * read and only their non-zero 4 KiB blocks stored; the rollback still
 * gives back the frozen image byte for byte, holes included. */
static void test_preserve_extents(void **state)
{
        struct fx *f = *state;
        struct sidecar *s;
        struct sidecar_stats st;
        uint64_t nb = NCHUNKS * CB / MBLK;

        g_ml_alloc = calloc(1, nb);
        assert_non_null(g_ml_alloc);
        f->dr->base.ops = &g_ml_map_ops;
        memset(f->frozen, 0, NCHUNKS * CB);
        /* chunk 1: one data block at +8 KiB; 2: all data; 3: allocated
         * zeroes; 5: data in its last block only; 4, 6, 7: holes */
        memset(f->frozen + 1 * CB + 8192, 0x11, MBLK);
        memset(g_ml_alloc + (1 * CB + 8192) / MBLK, 1, 1);
        for (uint64_t i = 0; i < CB; i++)
                f->frozen[2 * CB + i] = (unsigned char)(i % 253 + 1);
        memset(g_ml_alloc + 2 * CB / MBLK, 1, 2 * CB / MBLK);
        memset(f->frozen + 6 * CB - MBLK, 0x55, MBLK);
        memset(g_ml_alloc + (6 * CB - MBLK) / MBLK, 1, 1);
        memcpy(f->dr->mem, f->frozen, NCHUNKS * CB);

        s = open_new(f, 77);
        overwrite(s, f, 1, 7, 0xe1);
        memset(g_ml_alloc + 1 * CB / MBLK, 1, 7 * CB / MBLK);
        sidecar_stats(s, &st);
        assert_int_equal(st.chunks, 7);
        /* stored: 4 KiB (chunk 1) + 64 KiB (chunk 2) + 4 KiB (chunk 5) */
        assert_int_equal(st.data_bytes, MBLK + CB + MBLK);
        /* a second preserve reads nothing (S2) */
        f->dr->reads = 0;
        overwrite(s, f, 1, 7, 0xe2);
        assert_int_equal(f->dr->reads, 0);
        rolled_back(s, f);
        assert_int_equal(sidecar_discard(s), 0);
        sidecar_free(s);
        f->dr->base.ops = &g_ml_ops;
        free(g_ml_alloc);
        g_ml_alloc = NULL;
}

static void test_reopen_after_crash(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 42);
        struct sidecar_stats st;

        overwrite(s, f, 1, 3, 0xc1);
        overwrite(s, f, 33, 33, 0xc2);
        sidecar_free(s); /* a crash: the file stays, nothing is discarded */
        assert_true(file_exists(f->path));

        s = reopen(f, 1);
        sidecar_stats(s, &st);
        assert_true(st.open);
        assert_int_equal(st.frozen_at, 42);
        assert_int_equal(st.chunks, 4);
        /* The resync goes on: preserved chunks are not preserved again. */
        f->dr->reads = 0;
        overwrite(s, f, 1, 3, 0xd1);
        assert_int_equal(f->dr->reads, 0);
        overwrite(s, f, 40, 41, 0xd2);
        rolled_back(s, f);
        sidecar_free(s);
}

/* The DR node of a remote pair reopens with chunk_bytes 0: the file's. */
static void test_reopen_chunk_from_file(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 77);

        overwrite(s, f, 7, 9, 0xc3);
        sidecar_free(s);
        assert_int_equal(sidecar_new(f->path, PAIR_ID, 0, &s), 0);
        assert_int_equal(sidecar_load(s), 1);
        assert_int_equal(sidecar_chunk_bytes(s), CB);
        assert_int_equal(sidecar_frozen_at(s), 77);
        assert_true(sidecar_covers(s, 7, 9));
        assert_false(sidecar_covers(s, 6, 9));
        rolled_back(s, f);
        sidecar_free(s);
        /* Another chunk size named by the caller: not this file (S4). */
        s = open_new(f, 78);
        sidecar_free(s);
        assert_int_equal(sidecar_new(f->path, PAIR_ID, CB * 2, &s), 0);
        assert_int_equal(sidecar_load(s), 0);
        assert_false(file_exists(f->path));
        sidecar_free(s);
}

static void corrupt(const char *path, off_t off)
{
        int fd = open(path, O_RDWR);
        unsigned char b;

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, &b, 1, off), 1);
        b ^= 0x5a;
        assert_int_equal(pwrite(fd, &b, 1, off), 1);
        close(fd);
}

static void test_damaged_header(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 7);

        overwrite(s, f, 5, 5, 0xe1);
        sidecar_free(s);
        corrupt(f->path, 40); /* inside the CRC'd part of the header */
        s = reopen(f, 0);     /* S4: deleted, no sidecar */
        assert_false(sidecar_is_open(s));
        assert_false(file_exists(f->path));
        sidecar_free(s);
}

static void test_truncated(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 7);

        sidecar_free(s);
        assert_int_equal(truncate(f->path, 100), 0); /* a torn creation */
        s = reopen(f, 0);
        assert_false(file_exists(f->path));
        sidecar_free(s);

        s = open_new(f, 8);
        sidecar_free(s);
        assert_int_equal(truncate(f->path, 4096), 0); /* header, no index */
        s = reopen(f, 0);
        assert_false(file_exists(f->path));
        sidecar_free(s);
}

static void test_leftover_tmp(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = NULL;
        char tmp[160];
        int fd;

        snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
        fd = open(tmp, O_CREAT | O_WRONLY, 0640);
        assert_true(fd >= 0);
        close(fd);
        s = reopen(f, 0); /* a creation that crashed before its rename */
        assert_false(file_exists(tmp));
        assert_int_equal(sidecar_create(s, NCHUNKS, 9), 0);
        assert_int_equal(sidecar_frozen_at(s), 9);
        sidecar_free(s);
}

static void test_read_fails(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 5);
        struct sidecar_stats st;

        f->dr->fail_read = true;
        assert_int_equal(sidecar_preserve(s, &f->dr->base, 7, 9, f->dr->size), -EIO);
        sidecar_stats(s, &st);
        assert_int_equal(st.chunks, 0);
        sidecar_free(s);
        s = reopen(f, 1);
        sidecar_stats(s, &st);
        assert_int_equal(st.chunks, 0); /* nothing claimed preserved on disk */
        f->dr->fail_read = false;
        overwrite(s, f, 7, 9, 0x11);
        rolled_back(s, f);
        sidecar_free(s);
}

static void test_rollback_interrupted(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 77);

        /* Runs far apart: several link writes in the rollback. */
        overwrite(s, f, 1, 2, 0x21);
        overwrite(s, f, 20, 22, 0x22);
        overwrite(s, f, 41, 43, 0x23);
        overwrite(s, f, 61, 62, 0x24);
        f->dr->writes = 0;
        f->dr->fail_write_after = 2; /* dies half way */
        assert_int_equal(sidecar_rollback(s, &f->dr->base, f->dr->size), -EIO);
        assert_true(sidecar_is_open(s)); /* kept for a retry */
        assert_memory_not_equal(f->dr->mem, f->frozen, NCHUNKS * CB);
        sidecar_free(s); /* and the daemon crashes */

        s = reopen(f, 1);
        f->dr->fail_write_after = -1;
        rolled_back(s, f);
        /* Idempotent. */
        rolled_back(s, f);
        sidecar_free(s);
}

static void test_mark(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 3);
        struct bitmap bm;

        overwrite(s, f, 4, 6, 0x31);
        overwrite(s, f, 50, 50, 0x32);
        assert_int_equal(bitmap_init(&bm, NCHUNKS + 16), 0); /* the disk grew */
        bitmap_set_range(&bm, 20, 1);                        /* dirty anyway */
        sidecar_mark(s, &bm);
        assert_int_equal(bm.nset, 3 + 1 + 1 + 16);
        assert_true(bitmap_test(&bm, 4) && bitmap_test(&bm, 6) && bitmap_test(&bm, 50));
        assert_true(bitmap_test(&bm, NCHUNKS) && bitmap_test(&bm, NCHUNKS + 15));
        assert_false(bitmap_test(&bm, 7));
        bitmap_free(&bm);
        sidecar_free(s);
}

static void test_grown_disk(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 3);
        struct mlink *big = mlink_new((NCHUNKS + 8) * CB);

        memcpy(big->mem, f->frozen, NCHUNKS * CB);
        assert_int_equal(sidecar_preserve(s, &big->base, 62, NCHUNKS + 3, big->size), 0);
        memset(big->mem + 62 * CB, 0x41, 10 * CB); /* into the grown space too */
        assert_int_equal(sidecar_rollback(s, &big->base, big->size), 0);
        /* The frozen image, and zeroes where it had no bytes. */
        assert_memory_equal(big->mem, f->frozen, NCHUNKS * CB);
        for (uint64_t i = NCHUNKS * CB; i < big->size; i++)
                if (big->mem[i])
                        fail_msg("byte %llu past the frozen size is not zero",
                                 (unsigned long long)i);
        mlink_free(big);
        sidecar_free(s);
}

static void test_discard(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 3);
        struct sidecar_stats st;

        overwrite(s, f, 8, 9, 0x51);
        sidecar_close_begin(s);
        assert_false(sidecar_is_open(s));
        /* Closing: preserves do nothing (the group is in SYNC). */
        f->dr->reads = 0;
        assert_int_equal(sidecar_preserve(s, &f->dr->base, 30, 31, f->dr->size), 0);
        assert_int_equal(f->dr->reads, 0);
        /* A new sidecar after a begin finishes the close first. */
        assert_int_equal(sidecar_create(s, NCHUNKS, 99), 0);
        sidecar_stats(s, &st);
        assert_int_equal(st.chunks, 0);
        assert_int_equal(st.frozen_at, 99);
        assert_int_equal(sidecar_discard(s), 0);
        assert_false(file_exists(f->path));
        assert_int_equal(sidecar_discard(s), 0);                             /* twice: no-op */
        assert_int_equal(sidecar_rollback(s, &f->dr->base, f->dr->size), 0); /* closed: no-op */
        sidecar_free(s);
        s = reopen(f, 0);
        sidecar_free(s);
}

static void test_preserve_some(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 3);
        struct sidecar_stats st;
        struct bitmap sel;

        /* Every 3rd chunk of [16, 47]: one call, one read pass. */
        assert_int_equal(bitmap_init(&sel, 32), 0);
        for (uint64_t i = 0; i < 32; i += 3)
                bitmap_set_range(&sel, i, 1);
        f->dr->reads = 0;
        assert_int_equal(sidecar_preserve_some(s, &f->dr->base, 16, 47, &sel, f->dr->size), 0);
        sidecar_stats(s, &st);
        assert_int_equal(st.chunks, 11);
        assert_int_equal(f->dr->reads, 11); /* runs of one chunk each */
        for (uint64_t i = 0; i < 32; i += 3)
                memset(f->dr->mem + (16 + i) * CB, 0x71, CB);
        /* Again: nothing left to read. */
        f->dr->reads = 0;
        assert_int_equal(sidecar_preserve_some(s, &f->dr->base, 16, 47, &sel, f->dr->size), 0);
        assert_int_equal(f->dr->reads, 0);
        rolled_back(s, f);
        bitmap_free(&sel);
        sidecar_free(s);
}

static void test_discard_intent(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 3);

        overwrite(s, f, 8, 9, 0x81);
        assert_false(sidecar_discard_pending(s));
        assert_int_equal(sidecar_discard_intent(s), 0);
        assert_true(sidecar_discard_pending(s));
        sidecar_free(s); /* a crash before the delete */
        s = reopen(f, 1);
        assert_true(sidecar_discard_pending(s)); /* S5: the record survives */
        assert_int_equal(sidecar_discard(s), 0);
        assert_false(file_exists(f->path));
        sidecar_free(s);
}

struct worker_arg {
        struct sidecar *s;
        struct fx *f;
        uint64_t c0;
};

static void *worker(void *p)
{
        struct worker_arg *a = p;

        for (uint64_t c = a->c0; c < a->c0 + 8; c++) {
                if (sidecar_preserve(a->s, &a->f->dr->base, c, c, a->f->dr->size) < 0)
                        return (void *)1;
                pthread_mutex_lock(&a->f->dr->mu);
                memset(a->f->dr->mem + c * CB, 0x61, CB);
                pthread_mutex_unlock(&a->f->dr->mu);
        }
        return NULL;
}

static void test_concurrent(void **state)
{
        struct fx *f = *state;
        struct sidecar *s = open_new(f, 3);
        struct worker_arg a[8];
        pthread_t t[8];
        struct sidecar_stats st;

        for (int i = 0; i < 8; i++) {
                a[i] = (struct worker_arg){s, f, (uint64_t)i * 8};
                assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
                void *r;
                assert_int_equal(pthread_join(t[i], &r), 0);
                assert_null(r);
        }
        sidecar_stats(s, &st);
        assert_int_equal(st.chunks, NCHUNKS);
        sidecar_free(s);
        s = reopen(f, 1); /* every index page durable */
        sidecar_stats(s, &st);
        assert_int_equal(st.chunks, NCHUNKS);
        rolled_back(s, f);
        sidecar_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_preserve_rollback, setup, teardown),
            cmocka_unit_test_setup_teardown(test_preserve_extents, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reopen_after_crash, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reopen_chunk_from_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_damaged_header, setup, teardown),
            cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
            cmocka_unit_test_setup_teardown(test_leftover_tmp, setup, teardown),
            cmocka_unit_test_setup_teardown(test_read_fails, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rollback_interrupted, setup, teardown),
            cmocka_unit_test_setup_teardown(test_mark, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grown_disk, setup, teardown),
            cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
            cmocka_unit_test_setup_teardown(test_preserve_some, setup, teardown),
            cmocka_unit_test_setup_teardown(test_discard_intent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
