/* Unit tests of the per-pair meta file (engine/meta.h), against the format in
 * docs/design/replication.md: header round trip, bitmap persistence (ranges,
 * pages, everything), the two alternating AL blocks and their recovery from a
 * torn block, header damage (-EPROTO), grow, O_EXCL creation. Each test gets
 * a fresh temporary directory. */
#include <dirent.h>
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
#include "engine/actlog.h"
#include "engine/bitmap.h"
#include "engine/meta.h"

#define CB      UINT64_C(65536)
#define GIB     (UINT64_C(1) << 30)
#define PAIR_ID "0b9d0e4c-7f3a-4d1e-9a55-3c2b1a0f9e87"

struct fx {
        char dir[64];
        char path[128];
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        if (fixture_tmpdir_make(f->dir, sizeof(f->dir), "meta") != 0) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof(f->path), "%s/pair-test.meta", f->dir);
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

static uint64_t rnd(uint64_t n)
{
        uint64_t r = ((uint64_t)random() << 31) ^ (uint64_t)random();

        return n ? r % n : 0;
}

static uint64_t nchunks_of(uint64_t size)
{
        return (size + CB - 1) / CB;
}

static void pread_all(const char *path, uint64_t off, void *buf, size_t len)
{
        int fd = open(path, O_RDONLY);

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
        close(fd);
}

static void pwrite_all(const char *path, uint64_t off, const void *buf, size_t len)
{
        int fd = open(path, O_WRONLY);

        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
        close(fd);
}

static uint64_t get64(const unsigned char *p)
{
        uint64_t v;

        memcpy(&v, p, 8); /* little-endian host (the build asserts it) */
        return v;
}

static uint32_t get32(const unsigned char *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

static void put64(unsigned char *p, uint64_t v)
{
        memcpy(p, &v, 8);
}

static void put32(unsigned char *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;

        assert_non_null(d);
        while ((e = readdir(d)))
                n++;
        closedir(d);
        return n;
}

/* The header block on disk matches the format and the given geometry. */
static void check_header(const char *path, uint64_t nchunks, uint64_t size)
{
        unsigned char h[META_BLOCK];
        char id[40] = {0};

        pread_all(path, 0, h, sizeof(h));
        assert_memory_equal(h, "EVSRPM01", 8);
        assert_int_equal(get32(h + 8), 1);
        assert_int_equal(get32(h + 12), util_crc32c(h + 16, META_BLOCK - 16));
        assert_int_equal(get64(h + 16), CB);
        assert_int_equal(get64(h + 24), nchunks);
        assert_int_equal(get64(h + 32), size);
        assert_int_equal(get64(h + 40), META_AL_EXTENT);
        memcpy(id, PAIR_ID, strlen(PAIR_ID));
        assert_memory_equal(h + 48, id, 40);
        for (size_t i = 88; i < META_BLOCK; i++)
                if (h[i])
                        fail_msg("header byte %zu is %u, want 0", i, h[i]);
}

/* The bitmap area on disk holds exactly bm's words. */
static void check_disk_bits(const char *path, const struct bitmap *bm)
{
        uint64_t nw = bitmap_nwords(bm->nbits);
        uint64_t *w = malloc(nw * 8);
        struct stat st;

        assert_non_null(w);
        assert_int_equal(stat(path, &st), 0);
        assert_true((uint64_t)st.st_size >= META_BITMAP_OFF + nw * 8);
        pread_all(path, META_BITMAP_OFF, w, nw * 8);
        for (uint64_t i = 0; i < nw; i++)
                if (w[i] != bm->words[i])
                        fail_msg("bitmap word %llu on disk %#llx, in memory %#llx",
                                 (unsigned long long)i, (unsigned long long)w[i],
                                 (unsigned long long)bm->words[i]);
        free(w);
}

static void check_bm_equal(const struct bitmap *a, const struct bitmap *b)
{
        assert_int_equal(a->nbits, b->nbits);
        assert_int_equal(a->nset, b->nset);
        for (uint64_t i = 0; i < bitmap_nwords(a->nbits); i++)
                if (a->words[i] != b->words[i])
                        fail_msg("bitmap word %llu: %#llx vs %#llx", (unsigned long long)i,
                                 (unsigned long long)a->words[i], (unsigned long long)b->words[i]);
}

static uint64_t popcount_bm(const struct bitmap *bm)
{
        uint64_t n = 0;

        for (uint64_t i = 0; i < bitmap_nwords(bm->nbits); i++)
                n += (uint64_t)__builtin_popcountll(bm->words[i]);
        return n;
}

static void random_bits(struct bitmap *bm, unsigned nruns)
{
        for (unsigned i = 0; i < nruns; i++) {
                uint64_t first = rnd(bm->nbits), count = 1 + rnd(rnd(4) ? 200 : 5000);

                if (rnd(3))
                        bitmap_set_range(bm, first, count);
                else
                        bitmap_clear_range(bm, first, count);
        }
}

/* Reopen path into m/bm (closing/freeing what they held). */
static void reopen(const char *path, struct meta *m, struct bitmap *bm, uint64_t *al,
                   unsigned *al_n)
{
        meta_close(m);
        bitmap_free(bm);
        assert_int_equal(meta_open(path, m, bm, al, al_n), 0);
}

/* ---- AL blocks on disk ---- */

struct alblk {
        bool valid;
        uint64_t seq;
        unsigned n;
        uint64_t ext[AL_MAX_SLOTS];
};

static void read_al(const char *path, int which, struct alblk *b)
{
        unsigned char buf[META_BLOCK];

        memset(b, 0, sizeof(*b));
        pread_all(path, META_AL_OFF + (uint64_t)which * META_BLOCK, buf, sizeof(buf));
        if (memcmp(buf, "EVSRAL01", 8) != 0)
                return;
        if (get32(buf + 8) != util_crc32c(buf + 12, META_BLOCK - 12))
                return;
        b->n = get32(buf + 12);
        if (b->n > AL_MAX_SLOTS)
                return;
        b->seq = get64(buf + 16);
        for (unsigned i = 0; i < b->n; i++)
                b->ext[i] = get64(buf + 24 + 8 * i);
        b->valid = true;
}

/* A well-formed AL block written behind meta.c's back. */
static void craft_al(const char *path, int which, uint64_t seq, const uint64_t *ext, unsigned n)
{
        unsigned char buf[META_BLOCK] = {0};

        memcpy(buf, "EVSRAL01", 8);
        put32(buf + 12, n);
        put64(buf + 16, seq);
        for (unsigned i = 0; i < n; i++)
                put64(buf + 24 + 8 * i, ext[i]);
        put32(buf + 8, util_crc32c(buf + 12, META_BLOCK - 12));
        pwrite_all(path, META_AL_OFF + (uint64_t)which * META_BLOCK, buf, sizeof(buf));
}

/* Index of the valid block with the higher seq, -1 when neither is valid. */
static int newest_al(const char *path, struct alblk *out)
{
        struct alblk b[2];
        int w = -1;

        read_al(path, 0, &b[0]);
        read_al(path, 1, &b[1]);
        if (b[0].valid && (!b[1].valid || b[0].seq > b[1].seq))
                w = 0;
        else if (b[1].valid)
                w = 1;
        if (w >= 0 && out)
                *out = b[w];
        return w;
}

static void check_al(const uint64_t *got, unsigned got_n, const uint64_t *want, unsigned want_n)
{
        assert_int_equal(got_n, want_n);
        for (unsigned i = 0; i < want_n; i++)
                assert_int_equal(got[i], want[i]);
}

/* ---- tests ---- */

static void test_create_open_roundtrip(void **state)
{
        struct fx *f = *state;
        static const uint64_t sizes[] = {GIB, GIB + 3 * CB, CB, 16 * GIB + 5 * CB};

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                for (int dirty = 0; dirty <= 1; dirty++) {
                        uint64_t size = sizes[i], nch = nchunks_of(size);
                        uint64_t al[AL_MAX_SLOTS];
                        unsigned al_n = 99;
                        struct meta m, m2;
                        struct bitmap bm, bm2;

                        unlink(f->path);
                        assert_int_equal(meta_create(f->path, PAIR_ID, CB, size, dirty, &m, &bm),
                                         0);
                        assert_true(m.fd >= 0);
                        assert_int_equal(m.chunk_bytes, CB);
                        assert_int_equal(m.nchunks, nch);
                        assert_int_equal(m.size_bytes, size);
                        assert_int_equal(m.al_extent_bytes, META_AL_EXTENT);
                        assert_int_equal(bm.nbits, nch);
                        assert_int_equal(bm.nset, dirty ? nch : 0);
                        assert_int_equal(popcount_bm(&bm), dirty ? nch : 0);
                        check_header(f->path, nch, size);
                        check_disk_bits(f->path, &bm);
                        meta_close(&m);

                        assert_int_equal(meta_open(f->path, &m2, &bm2, al, &al_n), 0);
                        assert_true(m2.fd >= 0);
                        assert_int_equal(m2.chunk_bytes, CB);
                        assert_int_equal(m2.nchunks, nch);
                        assert_int_equal(m2.size_bytes, size);
                        assert_int_equal(m2.al_extent_bytes, META_AL_EXTENT);
                        assert_int_equal(al_n, 0);
                        check_bm_equal(&bm, &bm2);
                        meta_close(&m2);
                        bitmap_free(&bm);
                        bitmap_free(&bm2);
                }
        }
}

/* A volume size that is not a multiple of the chunk: the last chunk is partial
 * and still has its bit. */
static void test_unaligned_size(void **state)
{
        struct fx *f = *state;
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap bm;

        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB + 1, true, &m, &bm), 0);
        assert_int_equal(m.nchunks, GIB / CB + 1);
        assert_int_equal(bm.nbits, GIB / CB + 1);
        assert_int_equal(bm.nset, GIB / CB + 1);
        check_header(f->path, GIB / CB + 1, GIB + 1);
        reopen(f->path, &m, &bm, al, &al_n);
        assert_int_equal(m.size_bytes, GIB + 1);
        assert_int_equal(bm.nset, GIB / CB + 1);
        meta_close(&m);
        bitmap_free(&bm);
}

static void test_create_exists(void **state)
{
        struct fx *f = *state;
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m, m2;
        struct bitmap bm, bm2;

        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB, false, &m, &bm), 0);
        bitmap_set_range(&bm, 10, 20);
        assert_int_equal(meta_write_all_bits(&m, &bm), 0);
        meta_close(&m);
        /* a second create, even a different geometry, fails and changes nothing */
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, 2 * GIB, true, &m2, &bm2), -EEXIST);
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB, false, &m2, &bm2), -EEXIST);
        check_header(f->path, GIB / CB, GIB);
        assert_int_equal(meta_open(f->path, &m2, &bm2, al, &al_n), 0);
        assert_int_equal(m2.nchunks, GIB / CB);
        check_bm_equal(&bm, &bm2);
        meta_close(&m2);
        bitmap_free(&bm);
        bitmap_free(&bm2);
}

static void test_open_missing(void **state)
{
        struct fx *f = *state;
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap bm;

        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), -ENOENT);
}

/* meta_write_bits persists the bits of the range; bits outside the pages
 * around it keep what the disk had; nothing else changes. */
static void test_write_bits(void **state)
{
        struct fx *f = *state;
        uint64_t size = 16 * GIB + 3 * CB, nch = nchunks_of(size);
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m, m2;
        struct bitmap mem, disk, got;

        srandom(7);
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, size, false, &m, &mem), 0);
        assert_int_equal(bitmap_init(&disk, nch), 0);
        for (int it = 0; it < 60; it++) {
                uint64_t first, count, last, p0, p1;

                random_bits(&mem, 20);
                switch (it % 4) {
                case 0:
                        first = rnd(nch);
                        count = 1;
                        break;
                case 1:
                        first = rnd(nch);
                        count = 1 + rnd(nch - first < 100 ? nch - first : 100);
                        break;
                case 2:
                        first = rnd(nch);
                        count = 1 + rnd(nch - first < 70000 ? nch - first : 70000);
                        break;
                default:
                        first = nch - 1 - rnd(3);
                        count = nch - first;
                        break;
                }
                last = first + count - 1;
                assert_int_equal(meta_write_bits(&m, &mem, first, count), 0);

                /* pages of the bitmap area that may have been written */
                p0 = (first / 64 * 8) / META_BLOCK;
                p1 = (last / 64 * 8) / META_BLOCK;
                assert_int_equal(meta_open(f->path, &m2, &got, al, &al_n), 0);
                assert_int_equal(got.nbits, nch);
                assert_int_equal(got.nset, popcount_bm(&got));
                for (uint64_t b = 0; b < nch; b++) {
                        bool g = bitmap_test(&got, b), o = bitmap_test(&disk, b),
                             n = bitmap_test(&mem, b);
                        uint64_t pg = (b / 64 * 8) / META_BLOCK;

                        if (b >= first && b <= last) {
                                if (g != n)
                                        fail_msg("it %d write_bits(%llu, %llu): bit %llu on disk "
                                                 "%d, in memory %d",
                                                 it, (unsigned long long)first,
                                                 (unsigned long long)count, (unsigned long long)b,
                                                 g, n);
                        } else if (pg < p0 || pg > p1) {
                                if (g != o)
                                        fail_msg("it %d write_bits(%llu, %llu): bit %llu outside "
                                                 "changed on disk (%d -> %d)",
                                                 it, (unsigned long long)first,
                                                 (unsigned long long)count, (unsigned long long)b,
                                                 o, g);
                        } else if (g != o && g != n) {
                                fail_msg("bit %llu: neither old nor new", (unsigned long long)b);
                        }
                }
                /* the header is untouched */
                assert_int_equal(m2.nchunks, nch);
                assert_int_equal(m2.size_bytes, size);
                meta_close(&m2);
                bitmap_free(&disk);
                disk = got;
        }
        /* the whole area written: disk == memory */
        assert_int_equal(meta_write_bits(&m, &mem, 0, nch), 0);
        meta_close(&m);
        bitmap_free(&disk);
        assert_int_equal(meta_open(f->path, &m, &disk, al, &al_n), 0);
        check_bm_equal(&mem, &disk);
        check_disk_bits(f->path, &mem);
        meta_close(&m);
        bitmap_free(&disk);
        bitmap_free(&mem);
}

static void test_bits_span(void **state)
{
        uint64_t nbits = 262147; /* 4097 words = 32776 bytes: 8 full pages and 8 bytes */
        uint64_t b0, b1;

        (void)state;
        meta_bits_span(nbits, 0, 1, &b0, &b1);
        assert_int_equal(b0, 0);
        assert_int_equal(b1, 4096);
        meta_bits_span(nbits, 32767, 1, &b0, &b1);
        assert_int_equal(b0, 0);
        assert_int_equal(b1, 4096);
        meta_bits_span(nbits, 32767, 2, &b0, &b1);
        assert_int_equal(b0, 0);
        assert_int_equal(b1, 8192);
        meta_bits_span(nbits, 32768, 32768, &b0, &b1);
        assert_int_equal(b0, 4096);
        assert_int_equal(b1, 8192);
        meta_bits_span(nbits, 100000, 1, &b0, &b1);
        assert_int_equal(b0, 12288);
        assert_int_equal(b1, 16384);
        meta_bits_span(nbits, 262146, 1, &b0, &b1);
        assert_int_equal(b0, 32768);
        assert_int_equal(b1, 32776);
        meta_bits_span(nbits, 0, nbits, &b0, &b1);
        assert_int_equal(b0, 0);
        assert_int_equal(b1, 32776);
        meta_bits_span(nbits, 262000, 1000, &b0, &b1);
        assert_int_equal(b0, 28672);
        assert_int_equal(b1, 32776);
        /* a bitmap smaller than a page */
        meta_bits_span(16387, 5, 10, &b0, &b1);
        assert_int_equal(b0, 0);
        assert_int_equal(b1, 257 * 8);
        meta_bits_span(1, 0, 1, &b0, &b1);
        assert_int_equal(b0, 0);
        assert_int_equal(b1, 8);
}

/* meta_write_all_bits and meta_write_area (a page snapshot from
 * meta_bits_span) round-trip through reopen. */
static void test_write_all_and_area(void **state)
{
        struct fx *f = *state;
        uint64_t size = 16 * GIB + 3 * CB, nch = nchunks_of(size);
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap mem, got;

        srandom(11);
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, size, true, &m, &mem), 0);
        random_bits(&mem, 300);
        assert_int_equal(meta_write_all_bits(&m, &mem), 0);
        meta_close(&m);
        assert_int_equal(meta_open(f->path, &m, &got, al, &al_n), 0);
        check_bm_equal(&mem, &got);
        check_disk_bits(f->path, &mem);
        bitmap_free(&got);

        for (int it = 0; it < 20; it++) {
                uint64_t first = rnd(nch),
                         count = 1 + rnd(nch - first < 50000 ? nch - first : 50000);
                uint64_t b0, b1, nw = bitmap_nwords(nch);
                uint64_t *before = malloc(nw * 8), *snap;
                struct bitmap after;

                assert_non_null(before);
                memcpy(before, mem.words, nw * 8);
                random_bits(&mem, 30);
                meta_bits_span(nch, first, count, &b0, &b1);
                assert_true(b0 % META_BLOCK == 0);
                assert_true(b1 % META_BLOCK == 0 || b1 == nw * 8);
                assert_true(b0 < b1 && b1 <= nw * 8);
                assert_true(b0 <= first / 64 * 8 && (first + count - 1) / 64 * 8 < b1);
                snap = malloc(b1 - b0);
                assert_non_null(snap);
                memcpy(snap, (char *)mem.words + b0, b1 - b0);
                assert_int_equal(meta_write_area(&m, b0, snap, b1 - b0), 0);
                free(snap);
                meta_close(&m);
                assert_int_equal(meta_open(f->path, &m, &after, al, &al_n), 0);
                for (uint64_t w = 0; w < nw; w++) {
                        uint64_t want = (w * 8 >= b0 && w * 8 < b1) ? mem.words[w] : before[w];

                        if (after.words[w] != want)
                                fail_msg("it %d area [%llu, %llu): word %llu %#llx, want %#llx", it,
                                         (unsigned long long)b0, (unsigned long long)b1,
                                         (unsigned long long)w, (unsigned long long)after.words[w],
                                         (unsigned long long)want);
                }
                assert_int_equal(after.nset, popcount_bm(&after));
                /* make disk == memory again for the next round */
                assert_int_equal(meta_write_all_bits(&m, &mem), 0);
                bitmap_free(&after);
                free(before);
        }
        meta_close(&m);
        bitmap_free(&mem);
}

/* AL transactions alternate between the two blocks, seq grows, the previous
 * transaction stays intact in the other block, and open returns the newest. */
static void test_al_alternate(void **state)
{
        struct fx *f = *state;
        uint64_t set[8][AL_MAX_SLOTS], al[AL_MAX_SLOTS];
        unsigned setn[8] = {3, 0, 1, AL_MAX_SLOTS, 2, 7, 0, 4}, al_n;
        struct meta m;
        struct bitmap bm;
        int prev = -1;
        uint64_t prev_seq = 0;

        srandom(3);
        for (int k = 0; k < 8; k++)
                for (unsigned i = 0; i < setn[k]; i++)
                        set[k][i] = k == 3 ? i * 1000 + 1 : rnd(1u << 30);
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB, false, &m, &bm), 0);
        for (int k = 0; k < 8; k++) {
                struct alblk nb, ob;
                int w;

                if (k == 5) {
                        /* reopen in the middle: the sequence continues */
                        reopen(f->path, &m, &bm, al, &al_n);
                        check_al(al, al_n, set[k - 1], setn[k - 1]);
                        assert_int_equal(m.al_seq, prev_seq);
                }
                assert_int_equal(meta_write_al(&m, set[k], setn[k]), 0);
                w = newest_al(f->path, &nb);
                assert_true(w >= 0);
                assert_int_equal(nb.seq, m.al_seq);
                check_al(nb.ext, nb.n, set[k], setn[k]);
                assert_int_equal(m.al_next, 1 - w);
                if (k > 0) {
                        assert_int_not_equal(w, prev);
                        assert_true(nb.seq > prev_seq);
                        read_al(f->path, 1 - w, &ob);
                        assert_true(ob.valid);
                        assert_int_equal(ob.seq, prev_seq);
                        check_al(ob.ext, ob.n, set[k - 1], setn[k - 1]);
                }
                prev = w;
                prev_seq = nb.seq;
        }
        reopen(f->path, &m, &bm, al, &al_n);
        check_al(al, al_n, set[7], setn[7]);
        assert_int_equal(m.al_seq, prev_seq);
        assert_int_equal(m.al_next, 1 - prev);
        /* the bitmap is not touched by AL writes */
        assert_int_equal(bm.nset, 0);
        meta_close(&m);
        bitmap_free(&bm);
}

/* A torn (garbage) newest AL block: open returns the previous transaction, and
 * the next AL write replaces the torn block, not the valid one. */
static void test_al_torn(void **state)
{
        struct fx *f = *state;
        const uint64_t s1[] = {11, 12, 13}, s2[] = {21, 22}, s3[] = {31};
        uint64_t al[AL_MAX_SLOTS];
        unsigned char junk[META_BLOCK];
        unsigned al_n;
        struct meta m;
        struct bitmap bm;
        struct alblk b;
        int w1, w2, w3;

        srandom(5);
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (unsigned char)random();
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB, false, &m, &bm), 0);
        assert_int_equal(meta_write_al(&m, s1, 3), 0);
        w1 = newest_al(f->path, NULL);
        assert_int_equal(meta_write_al(&m, s2, 2), 0);
        w2 = newest_al(f->path, NULL);
        assert_int_not_equal(w1, w2);
        meta_close(&m);
        bitmap_free(&bm);

        /* garbage over the newest block */
        pwrite_all(f->path, META_AL_OFF + (uint64_t)w2 * META_BLOCK, junk, sizeof(junk));
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        check_al(al, al_n, s1, 3);
        /* the next transaction goes over the torn block */
        assert_int_equal(meta_write_al(&m, s3, 1), 0);
        w3 = newest_al(f->path, &b);
        assert_int_equal(w3, w2);
        check_al(b.ext, b.n, s3, 1);
        read_al(f->path, w1, &b);
        assert_true(b.valid);
        check_al(b.ext, b.n, s1, 3);
        meta_close(&m);
        bitmap_free(&bm);

        /* one flipped bit in the newest block's extents: CRC fails */
        {
                unsigned char c;

                pread_all(f->path, META_AL_OFF + (uint64_t)w3 * META_BLOCK + 24, &c, 1);
                c ^= 0x10;
                pwrite_all(f->path, META_AL_OFF + (uint64_t)w3 * META_BLOCK + 24, &c, 1);
        }
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        check_al(al, al_n, s1, 3);
        meta_close(&m);
        bitmap_free(&bm);

        /* a torn write of only the first sector of the newest block */
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        assert_int_equal(meta_write_al(&m, s2, 2), 0); /* over the flipped block */
        assert_int_equal(newest_al(f->path, NULL), w3);
        meta_close(&m);
        bitmap_free(&bm);
        pwrite_all(f->path, META_AL_OFF + (uint64_t)w3 * META_BLOCK + 512, junk, 512);
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        check_al(al, al_n, s1, 3);
        meta_close(&m);
        bitmap_free(&bm);

        /* zeroed newest block */
        memset(junk, 0, sizeof(junk));
        pwrite_all(f->path, META_AL_OFF + (uint64_t)w3 * META_BLOCK, junk, sizeof(junk));
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        check_al(al, al_n, s1, 3);
        meta_close(&m);
        bitmap_free(&bm);
}

/* AL blocks written by hand (format check): the valid one with the higher
 * seq wins wherever it is, and the next write goes to the other block. */
static void test_al_crafted(void **state)
{
        struct fx *f = *state;
        const uint64_t a[] = {100}, b[] = {200, 201}, c[] = {1, 2, 3}, d[] = {4}, e[] = {300};
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap bm;
        struct alblk blk;

        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB, false, &m, &bm), 0);
        meta_close(&m);
        bitmap_free(&bm);

        craft_al(f->path, 0, 7, a, 1);
        craft_al(f->path, 1, 8, b, 2);
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        check_al(al, al_n, b, 2);
        assert_int_equal(m.al_seq, 8);
        assert_int_equal(m.al_next, 0);
        assert_int_equal(meta_write_al(&m, e, 1), 0);
        read_al(f->path, 0, &blk);
        assert_true(blk.valid && blk.seq > 8);
        check_al(blk.ext, blk.n, e, 1);
        read_al(f->path, 1, &blk);
        assert_true(blk.valid && blk.seq == 8);
        meta_close(&m);
        bitmap_free(&bm);

        craft_al(f->path, 0, 20, c, 3);
        craft_al(f->path, 1, 19, d, 1);
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        check_al(al, al_n, c, 3);
        assert_int_equal(m.al_seq, 20);
        assert_int_equal(m.al_next, 1);
        assert_int_equal(meta_write_al(&m, e, 1), 0);
        read_al(f->path, 1, &blk);
        assert_true(blk.valid && blk.seq > 20);
        check_al(blk.ext, blk.n, e, 1);
        read_al(f->path, 0, &blk);
        assert_true(blk.valid && blk.seq == 20);
        meta_close(&m);
        bitmap_free(&bm);

        /* higher seq but bad magic: the other block wins */
        craft_al(f->path, 0, 30, c, 3);
        craft_al(f->path, 1, 29, d, 1);
        pwrite_all(f->path, META_AL_OFF, "EVSRXX01", 8);
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        check_al(al, al_n, d, 1);
        assert_int_equal(m.al_seq, 29);
        meta_close(&m);
        bitmap_free(&bm);
}

/* Any damage to the header block: -EPROTO, no fd left behind; the intact
 * header opens again. */
static void test_header_corrupt(void **state)
{
        struct fx *f = *state;
        unsigned char orig[META_BLOCK], h[META_BLOCK];
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap bm;
        int fds;

        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB + 3 * CB, true, &m, &bm), 0);
        meta_close(&m);
        bitmap_free(&bm);
        pread_all(f->path, 0, orig, sizeof(orig));
        fds = count_fds();

        for (int v = 0; v < 8; v++) {
                memcpy(h, orig, sizeof(h));
                switch (v) {
                case 0: /* magic */
                        h[0] ^= 1;
                        break;
                case 1: /* version 2, CRC recomputed */
                        put32(h + 8, 2);
                        put32(h + 12, util_crc32c(h + 16, META_BLOCK - 16));
                        break;
                case 2: /* CRC itself */
                        h[13] ^= 0x80;
                        break;
                case 3: /* nchunks changed, CRC not */
                        h[24] ^= 1;
                        break;
                case 4: /* the zero tail is covered too */
                        h[4000] = 0xff;
                        break;
                case 5: /* all zero */
                        memset(h, 0, sizeof(h));
                        break;
                case 6: /* garbage */
                        for (size_t i = 0; i < sizeof(h); i++)
                                h[i] = (unsigned char)(i * 131 + 7);
                        break;
                default: /* a torn write: the first 512 bytes of a different header */
                        memset(h, 0xa5, 512);
                        break;
                }
                pwrite_all(f->path, 0, h, sizeof(h));
                if (meta_open(f->path, &m, &bm, al, &al_n) != -EPROTO)
                        fail_msg("header variant %d: meta_open did not return -EPROTO", v);
                assert_int_equal(count_fds(), fds);
        }
        pwrite_all(f->path, 0, orig, sizeof(orig));
        assert_int_equal(meta_open(f->path, &m, &bm, al, &al_n), 0);
        assert_int_equal(bm.nset, GIB / CB + 3);
        meta_close(&m);
        bitmap_free(&bm);
}

/* Damage past the header must not load as a clean, idle pair: with both AL
 * blocks unreadable the hot extents are unknown (A2), and a bitmap area cut
 * short must not read as clear bits (B1). Either way open fails. */
static void test_damaged_body(void **state)
{
        struct fx *f = *state;
        unsigned char junk[2 * META_BLOCK];
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap bm;
        int fds, fd;

        srandom(13);
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (unsigned char)random();

        /* both AL blocks garbage */
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB, true, &m, &bm), 0);
        assert_int_equal(meta_write_al(&m, (const uint64_t[]){1, 2}, 2), 0);
        meta_close(&m);
        bitmap_free(&bm);
        pwrite_all(f->path, META_AL_OFF, junk, sizeof(junk));
        fds = count_fds();
        assert_true(meta_open(f->path, &m, &bm, al, &al_n) < 0);
        assert_int_equal(count_fds(), fds);

        /* bitmap area truncated */
        unlink(f->path);
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, 16 * GIB, true, &m, &bm), 0);
        meta_close(&m);
        bitmap_free(&bm);
        assert_int_equal(truncate(f->path, META_BITMAP_OFF + 100), 0);
        assert_true(meta_open(f->path, &m, &bm, al, &al_n) < 0);
        assert_int_equal(count_fds(), fds);

        /* an empty file (a create that crashed right after open) */
        unlink(f->path);
        fd = open(f->path, O_CREAT | O_EXCL | O_WRONLY, 0640);
        assert_true(fd >= 0);
        close(fd);
        assert_true(meta_open(f->path, &m, &bm, al, &al_n) < 0);
        assert_int_equal(count_fds(), fds);
}

/* Grow keeps the old bits, the new bits are clear (also inside the old last
 * word), the header describes the new size, the AL is kept. */
static void test_grow(void **state)
{
        struct fx *f = *state;
        const uint64_t ext[] = {5, 6};
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap bm, old;
        static const uint64_t steps[] = {GIB + 3 * CB, 2 * GIB, 2 * GIB + CB, 16 * GIB + 5 * CB,
                                         16 * GIB + 5 * CB};

        srandom(9);
        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB, false, &m, &bm), 0);
        random_bits(&bm, 40);
        bitmap_set_range(&bm, bm.nbits - 1, 1);
        assert_int_equal(meta_write_all_bits(&m, &bm), 0);
        assert_int_equal(meta_write_al(&m, ext, 2), 0);
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
                uint64_t size = steps[s], nch = nchunks_of(size);

                assert_int_equal(bitmap_init(&old, bm.nbits), 0);
                memcpy(old.words, bm.words, bitmap_nwords(bm.nbits) * 8);
                bitmap_recount(&old);
                assert_int_equal(meta_grow(&m, &bm, size), 0);
                assert_int_equal(m.nchunks, nch);
                assert_int_equal(m.size_bytes, size);
                assert_int_equal(bm.nbits, nch);
                assert_int_equal(bm.nset, old.nset);
                check_header(f->path, nch, size);
                reopen(f->path, &m, &bm, al, &al_n);
                assert_int_equal(m.nchunks, nch);
                assert_int_equal(m.size_bytes, size);
                assert_int_equal(m.chunk_bytes, CB);
                assert_int_equal(bm.nbits, nch);
                assert_int_equal(bm.nset, old.nset);
                for (uint64_t b = 0; b < nch; b++)
                        if (bitmap_test(&bm, b) != (b < old.nbits && bitmap_test(&old, b)))
                                fail_msg("grow to %llu: bit %llu is %d", (unsigned long long)size,
                                         (unsigned long long)b, bitmap_test(&bm, b));
                check_al(al, al_n, ext, 2);
                /* the last old bit set, then dirty the new tail for the next step */
                bitmap_free(&old);
                bitmap_set_range(&bm, nch - 1, 1);
                assert_int_equal(meta_write_bits(&m, &bm, nch - 1, 1), 0);
        }
        meta_close(&m);
        bitmap_free(&bm);
}

/* An all-dirty file (last word partly used) grown: the padding bits of the old
 * last word become new, clear bits. */
static void test_grow_all_dirty(void **state)
{
        struct fx *f = *state;
        uint64_t al[AL_MAX_SLOTS];
        unsigned al_n;
        struct meta m;
        struct bitmap bm;
        uint64_t n0 = GIB / CB + 3;

        assert_int_equal(meta_create(f->path, PAIR_ID, CB, GIB + 3 * CB, true, &m, &bm), 0);
        assert_int_equal(meta_grow(&m, &bm, 2 * GIB), 0);
        assert_int_equal(bm.nbits, 2 * GIB / CB);
        assert_int_equal(bm.nset, n0);
        assert_int_equal(bitmap_next_clear(&bm, 0), n0);
        assert_int_equal(bitmap_next_set(&bm, n0), 2 * GIB / CB);
        reopen(f->path, &m, &bm, al, &al_n);
        assert_int_equal(bm.nbits, 2 * GIB / CB);
        assert_int_equal(bm.nset, n0);
        assert_int_equal(bitmap_next_clear(&bm, 0), n0);
        assert_int_equal(bitmap_next_set(&bm, n0), 2 * GIB / CB);
        assert_int_equal(al_n, 0);
        check_disk_bits(f->path, &bm);
        meta_close(&m);
        bitmap_free(&bm);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_create_open_roundtrip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unaligned_size, setup, teardown),
            cmocka_unit_test_setup_teardown(test_create_exists, setup, teardown),
            cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_write_bits, setup, teardown),
            cmocka_unit_test(test_bits_span),
            cmocka_unit_test_setup_teardown(test_write_all_and_area, setup, teardown),
            cmocka_unit_test_setup_teardown(test_al_alternate, setup, teardown),
            cmocka_unit_test_setup_teardown(test_al_torn, setup, teardown),
            cmocka_unit_test_setup_teardown(test_al_crafted, setup, teardown),
            cmocka_unit_test_setup_teardown(test_header_corrupt, setup, teardown),
            cmocka_unit_test_setup_teardown(test_damaged_body, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grow, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grow_all_dirty, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
