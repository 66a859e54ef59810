/* The copy-on-write sidecar of a pair (sidecar.h). Format and invariants:
 * docs/design/replication.md, "A consistent DR image during resync". */
#include "engine/sidecar.h"
#include "common/fault.h"
#include "common/replygen.h"
#include "common/log.h"
#include "common/util.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the sidecar stores its index as little-endian words; port sidecar.c first"
#endif

#define SC_MAGIC       "EVSRCW01"
#define SC_VERSION     2u /* 1: no generation (read as 0, unknown) */
#define SC_BLOCK       4096u
#define SC_INDEX_OFF   4096u
#define SC_F_ROLLBACK  1u
#define SC_F_DISCARD   2u         /* the group reached SYNC: to be deleted (S5) */
#define SC_PIECE_BYTES (1u << 20) /* DR reads and rollback writes, at most */

struct sc_hdr {
        char magic[8];
        uint32_t version;
        uint32_t crc; /* CRC32C of bytes 16..4095 */
        uint64_t chunk_bytes;
        uint64_t nchunks;
        int64_t frozen_at;
        uint32_t flags;
        uint32_t pad;
        char pair_id[40];
        uint64_t generation; /* version 2: the group generation (R5); 0 unknown */
};

_Static_assert(offsetof(struct sc_hdr, generation) == 88, "sidecar header layout (replication.md)");

enum sc_state { SC_CLOSED, SC_OPEN, SC_CLOSING };

struct sidecar {
        char path[4200];
        char pair_id[40];
        uint64_t chunk_bytes;

        pthread_mutex_t mu;
        pthread_cond_t cv;
        enum sc_state state;
        atomic_bool open; /* state == SC_OPEN, for the callers' fast path */
        unsigned inflight;
        int fd;
        uint64_t nchunks;
        int64_t frozen_at;
        uint32_t flags;
        uint64_t generation;
        uint64_t data_off;
        struct bitmap idx;
        uint64_t data_bytes;
        atomic_uint_least64_t total_bytes;
        uint64_t rollbacks;
};

static uint64_t index_bytes(uint64_t nchunks)
{
        uint64_t b = bitmap_nwords(nchunks) * 8;
        return (b + SC_BLOCK - 1) / SC_BLOCK * SC_BLOCK;
}

static int sync_dir(const char *path)
{
        char tmp[4200];
        int fd, rc = 0;

        snprintf(tmp, sizeof(tmp), "%s", path);
        fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                rc = -errno;
        close(fd);
        return rc;
}

int sidecar_new(const char *path, const char *pair_id, uint64_t chunk_bytes, struct sidecar **out)
{
        struct sidecar *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        if (snprintf(s->path, sizeof(s->path), "%s", path) >= (int)sizeof(s->path) - 8) {
                free(s);
                return -ENAMETOOLONG;
        }
        snprintf(s->pair_id, sizeof(s->pair_id), "%s", pair_id);
        s->chunk_bytes = chunk_bytes;
        s->fd = -1;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        *out = s;
        return 0;
}

static void close_locked(struct sidecar *s)
{
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        bitmap_free(&s->idx);
        s->state = SC_CLOSED;
        atomic_store(&s->open, false);
}

void sidecar_free(struct sidecar *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->mu);
        while (s->inflight)
                pthread_cond_wait(&s->cv, &s->mu);
        close_locked(s);
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
}

static int write_header(struct sidecar *s, int fd)
{
        unsigned char blk[SC_BLOCK] = {0};
        struct sc_hdr *h = (struct sc_hdr *)blk;

        memcpy(h->magic, SC_MAGIC, 8);
        h->version = SC_VERSION;
        h->chunk_bytes = s->chunk_bytes;
        h->nchunks = s->nchunks;
        h->frozen_at = s->frozen_at;
        h->flags = s->flags;
        snprintf(h->pair_id, sizeof(h->pair_id), "%s", s->pair_id);
        h->generation = s->generation;
        h->crc = util_crc32c(blk + 16, SC_BLOCK - 16);
        return fault_pwrite(fd, blk, SC_BLOCK, 0);
}

int sidecar_load(struct sidecar *s)
{
        unsigned char blk[SC_BLOCK];
        struct sc_hdr h;
        char tmp[4210];
        int fd, rc;

        snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
        unlink(tmp); /* a creation that crashed before its rename */
        pthread_mutex_lock(&s->mu);
        if (s->state != SC_CLOSED) {
                pthread_mutex_unlock(&s->mu);
                return -EBUSY;
        }
        fd = open(s->path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                rc = errno == ENOENT ? 0 : -errno;
                pthread_mutex_unlock(&s->mu);
                return rc;
        }
        rc = util_pread_full(fd, blk, SC_BLOCK, 0);
        memcpy(&h, blk, sizeof(h));
        if (rc == 0 && (memcmp(h.magic, SC_MAGIC, 8) || h.version < 1 || h.version > SC_VERSION ||
                        h.crc != util_crc32c(blk + 16, SC_BLOCK - 16) ||
                        (s->chunk_bytes && h.chunk_bytes != s->chunk_bytes) || h.chunk_bytes == 0 ||
                        h.nchunks == 0))
                rc = -EPROTO;
        if (rc == 0) {
                s->chunk_bytes = h.chunk_bytes; /* sidecar_new with 0: the file's */
                s->nchunks = h.nchunks;
                s->frozen_at = h.frozen_at;
                s->flags = h.flags;
                /* Version 1 has zeroes there: generation unknown. */
                s->generation = h.version >= 2 ? h.generation : 0;
                s->data_off = SC_INDEX_OFF + index_bytes(h.nchunks);
                if ((rc = bitmap_init(&s->idx, h.nchunks)) == 0 &&
                    (rc = util_pread_full(fd, s->idx.words, bitmap_nwords(h.nchunks) * 8,
                                          SC_INDEX_OFF)) == 0)
                        bitmap_recount(&s->idx);
                else
                        bitmap_free(&s->idx);
        }
        if (rc == -EIO || rc == -EPROTO) {
                /* Torn or short: the header is durable before any preserve
                 * (S4), so no DR chunk was overwritten under this file. */
                log_warn("pair %s: sidecar %s is damaged (%s): deleted", s->pair_id, s->path,
                         rc == -EIO ? "short" : "bad header");
                close(fd);
                unlink(s->path);
                sync_dir(s->path);
                pthread_mutex_unlock(&s->mu);
                return 0;
        }
        if (rc < 0) {
                close(fd);
                pthread_mutex_unlock(&s->mu);
                return rc;
        }
        s->fd = fd;
        s->data_bytes = 0;
        s->state = SC_OPEN;
        atomic_store(&s->open, true);
        pthread_mutex_unlock(&s->mu);
        log_info("pair %s: sidecar reopened: %llu chunk(s) preserved%s", s->pair_id,
                 (unsigned long long)s->idx.nset,
                 s->flags & SC_F_DISCARD    ? " (its group had reached sync: to be deleted)"
                 : s->flags & SC_F_ROLLBACK ? " (a rollback was interrupted)"
                                            : "");
        return 1;
}

static int finish_close_locked(struct sidecar *s)
{
        int rc = 0;

        while (s->inflight)
                pthread_cond_wait(&s->cv, &s->mu);
        if (s->state == SC_CLOSED)
                return 0;
        close_locked(s);
        if (unlink(s->path) < 0 && errno != ENOENT)
                rc = -errno;
        if (rc == 0)
                rc = sync_dir(s->path);
        if (rc < 0)
                log_warn("pair %s: cannot delete the sidecar %s: %s", s->pair_id, s->path,
                         strerror(-rc));
        return rc;
}

int sidecar_create(struct sidecar *s, uint64_t nchunks, int64_t frozen_at)
{
        return sidecar_create_gen(s, nchunks, frozen_at, 0);
}

int sidecar_create_gen(struct sidecar *s, uint64_t nchunks, int64_t frozen_at, uint64_t generation)
{
        char tmp[4210];
        int fd, rc;

        if (nchunks == 0)
                return -EINVAL;
        pthread_mutex_lock(&s->mu);
        if (s->state == SC_OPEN) {
                pthread_mutex_unlock(&s->mu);
                return 0;
        }
        if (s->state == SC_CLOSING && (rc = finish_close_locked(s)) < 0) {
                pthread_mutex_unlock(&s->mu);
                return rc;
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
        unlink(tmp);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0) {
                rc = -errno;
                pthread_mutex_unlock(&s->mu);
                return rc;
        }
        s->nchunks = nchunks;
        s->frozen_at = frozen_at;
        s->flags = 0;
        s->generation = generation;
        s->data_off = SC_INDEX_OFF + index_bytes(nchunks);
        if ((rc = bitmap_init(&s->idx, nchunks)) < 0)
                goto fail;
        /* Header, an all-clear index and the data area (holes: the file
         * is as long as the disk, so every chunk reads back), durable,
         * then renamed into place: the file exists whole or not at all. */
        if (ftruncate(fd, (off_t)(s->data_off + nchunks * s->chunk_bytes)) < 0)
                rc = -errno;
        if (rc == 0 && (rc = write_header(s, fd)) == 0 && (rc = fault_fdatasync(fd)) == 0 &&
            rename(tmp, s->path) < 0)
                rc = -errno;
        if (rc == 0)
                rc = sync_dir(s->path);
        if (rc < 0) {
                bitmap_free(&s->idx);
                goto fail;
        }
        s->fd = fd;
        s->data_bytes = 0;
        s->state = SC_OPEN;
        atomic_store(&s->open, true);
        pthread_mutex_unlock(&s->mu);
        return 0;
fail:
        close(fd);
        unlink(tmp);
        unlink(s->path);
        pthread_mutex_unlock(&s->mu);
        return rc;
}

uint64_t sidecar_chunk_bytes(struct sidecar *s)
{
        return s->chunk_bytes;
}

bool sidecar_is_open(struct sidecar *s)
{
        return s && atomic_load(&s->open);
}

int64_t sidecar_frozen_at(struct sidecar *s)
{
        int64_t t;

        pthread_mutex_lock(&s->mu);
        t = s->state == SC_OPEN ? s->frozen_at : 0;
        pthread_mutex_unlock(&s->mu);
        return t;
}

uint64_t sidecar_generation(struct sidecar *s)
{
        uint64_t g;

        pthread_mutex_lock(&s->mu);
        g = s->state == SC_OPEN ? s->generation : 0;
        pthread_mutex_unlock(&s->mu);
        return g;
}

int sidecar_set_generation(struct sidecar *s, uint64_t generation)
{
        uint64_t old;
        int rc = 0;

        pthread_mutex_lock(&s->mu);
        if (s->state != SC_OPEN) {
                pthread_mutex_unlock(&s->mu);
                return -EBADF;
        }
        old = s->generation;
        if (old != generation) {
                /* One 4 KiB block in place: the old header or the new. */
                s->generation = generation;
                if ((rc = write_header(s, s->fd)) == 0)
                        rc = fault_fdatasync(s->fd);
                if (rc < 0)
                        s->generation = old;
        }
        pthread_mutex_unlock(&s->mu);
        return rc;
}

enum sidecar_fate sidecar_fate_decide(uint64_t generation, uint64_t released, bool rows_active)
{
        if (generation == 0) /* a version-1 file: R4's rows */
                return rows_active ? SIDECAR_FOLD : SIDECAR_ROLLBACK;
        return generation <= released ? SIDECAR_FOLD : SIDECAR_ROLLBACK;
}

enum sidecar_open sidecar_open_decide(uint64_t have, uint64_t want)
{
        if (want == 0) /* an open that names no generation: as before */
                return SIDECAR_KEEP;
        if (have == 0)
                return SIDECAR_STAMP;
        return have < want ? SIDECAR_REPLACE : SIDECAR_KEEP;
}

static bool all_zero(const unsigned char *p, size_t n)
{
        const uint64_t *w = (const uint64_t *)p;
        size_t i;

        for (i = 0; i < n / 8; i++)
                if (w[i])
                        return false;
        for (i = i * 8; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

/* Write the index pages covering [c0, c1] and fdatasync. s->mu held. */
static int write_index_locked(struct sidecar *s, uint64_t c0, uint64_t c1)
{
        uint64_t w0 = c0 / 64, w1 = c1 / 64 + 1;
        uint64_t b0 = w0 * 8 / SC_BLOCK * SC_BLOCK;
        uint64_t b1 =
            MIN((w1 * 8 + SC_BLOCK - 1) / SC_BLOCK * SC_BLOCK, bitmap_nwords(s->nchunks) * 8);
        int rc;

        if ((rc = fault_pwrite(s->fd, (const char *)s->idx.words + b0, b1 - b0,
                               SC_INDEX_OFF + b0)) < 0)
                return rc;
        return fault_fdatasync(s->fd);
}

/* Store len bytes of DR content at DR offset off into the data area. */
static int store(struct sidecar *s, int fd, const unsigned char *p, size_t len, uint64_t off)
{
        int rc = fault_pwrite(fd, p, len, s->data_off + off);

        if (rc == 0) {
                pthread_mutex_lock(&s->mu);
                atomic_fetch_add(&s->total_bytes, len);
                s->data_bytes += len;
                if (len) /* sidecar_bytes of the pair: rule L (control-plane.md) */
                        replygen_live_bump();
                pthread_mutex_unlock(&s->mu);
        }
        return rc;
}

/* Preserve [off, off+len) of DR (whole chunks, nbytes of them; len may stop
 * short at the end of the disk) read as one piece: every chunk that is not
 * all zeroes is stored whole. For links without a map of DR. */
static int preserve_piece(struct sidecar *s, struct link *l, int fd, unsigned char *buf,
                          uint64_t off, uint64_t len, uint64_t nbytes, bool *wrote)
{
        uint64_t cb = s->chunk_bytes;
        int rc = 0;

        memset(buf, 0, nbytes);
        if (len && (rc = l->ops->read(l, buf, len, off)) < 0)
                return rc;
        for (uint64_t k = 0; k < nbytes / cb && rc == 0; k++) {
                if (all_zero(buf + k * cb, cb))
                        continue; /* stays a hole in the data area */
                if ((rc = store(s, fd, buf + k * cb, cb, off + k * cb)) == 0)
                        *wrote = true;
        }
        return rc;
}

/* The same with a map of DR (local links): only the data extents of
 * [off, off+len) are read, and only their blocks that are not all zeroes
 * are stored. The rest stays a hole of the data area, which reads back as
 * zeroes, as it does on DR: the preserved chunk is the same, and a chunk
 * that is a hole on DR costs no I/O at all (reading it made the kernel zero
 * a page-cache page per 4 KiB only for us to find zeroes). */
static int preserve_extents(struct sidecar *s, struct link *l, int fd, unsigned char *buf,
                            uint64_t off, uint64_t len, bool *wrote)
{
        uint64_t pos = off, end = off + len, d, dl, e;
        int rc;

        while (pos < end) {
                rc = l->ops->next_data(l, pos, &d, &dl);
                if (rc == -ENXIO)
                        return 0;
                if (rc < 0)
                        return rc;
                if (d >= end)
                        return 0;
                if (d < pos) { /* SEEK_DATA never goes back; be safe */
                        dl = dl > pos - d ? dl - (pos - d) : 0;
                        d = pos;
                }
                e = MIN(d + MAX(dl, 1), end);
                if ((rc = l->ops->read(l, buf, e - d, d)) < 0)
                        return rc;
                /* Runs of non-zero blocks, one write each. */
                for (uint64_t b = d; b < e;) {
                        uint64_t x = b, bl = 0;

                        while (x < e && all_zero(buf + (x - d), MIN(SC_BLOCK, e - x)))
                                x += MIN(SC_BLOCK, e - x);
                        for (b = x; b < e && !all_zero(buf + (b - d), bl = MIN(SC_BLOCK, e - b));)
                                b += bl;
                        if (b > x) {
                                if ((rc = store(s, fd, buf + (x - d), b - x, x)) < 0)
                                        return rc;
                                *wrote = true;
                        }
                }
                pos = e;
        }
        return 0;
}

int sidecar_preserve(struct sidecar *s, struct link *l, uint64_t c0, uint64_t c1,
                     uint64_t size_bytes)
{
        return sidecar_preserve_some(s, l, c0, c1, NULL, size_bytes);
}

int sidecar_preserve_some(struct sidecar *s, struct link *l, uint64_t c0, uint64_t c1,
                          const struct bitmap *sel, uint64_t size_bytes)
{
        uint64_t cb = s->chunk_bytes, n, end_b, piece_chunks = MAX(SC_PIECE_BYTES / cb, 1);
        unsigned char *buf = NULL;
        struct bitmap want = {0};
        bool wrote = false;
        int fd, rc = 0;

        if (!sidecar_is_open(s) || c0 > c1)
                return 0;
        pthread_mutex_lock(&s->mu);
        if (s->state != SC_OPEN || c0 >= s->nchunks) {
                pthread_mutex_unlock(&s->mu);
                return 0;
        }
        c1 = MIN(c1, s->nchunks - 1);
        n = c1 - c0 + 1;
        if (!sel && bitmap_count_range(&s->idx, c0, n) == n) {
                pthread_mutex_unlock(&s->mu);
                return 0;
        }
        /* The chunks to preserve, snapshotted: only we (the caller's range
         * lock, or dirty chunks only the resync writes) can set these bits
         * from now on. */
        if ((rc = bitmap_init(&want, n)) < 0) {
                pthread_mutex_unlock(&s->mu);
                return rc;
        }
        for (uint64_t c = c0; c <= c1; c++)
                if (!bitmap_test(&s->idx, c) && (!sel || bitmap_test(sel, c - c0)))
                        bitmap_set_range(&want, c - c0, 1);
        if (want.nset == 0) {
                pthread_mutex_unlock(&s->mu);
                bitmap_free(&want);
                return 0;
        }
        s->inflight++;
        fd = s->fd;
        pthread_mutex_unlock(&s->mu);

        end_b = MIN(size_bytes, s->nchunks * cb);
        if (!l->ops->read) {
                rc = -EOPNOTSUPP;
                goto out;
        }
        if (posix_memalign((void **)&buf, 4096, piece_chunks * cb) != 0) {
                rc = -ENOMEM;
                goto out;
        }
        /* Runs of chunks to preserve, read in pieces of at most 1 MiB. */
        for (uint64_t i = bitmap_next_set(&want, 0); i < n && rc == 0;) {
                uint64_t j = bitmap_next_clear_before(&want, i, i + piece_chunks);
                uint64_t off = (c0 + i) * cb, len;

                len = off >= end_b ? 0 : MIN(end_b, (c0 + j) * cb) - off;
                if (l->ops->next_data)
                        rc = preserve_extents(s, l, fd, buf, off, len, &wrote);
                else
                        rc = preserve_piece(s, l, fd, buf, off, len, (j - i) * cb, &wrote);
                i = bitmap_next_set(&want, j);
        }
        if (rc == 0 && wrote)
                rc = fault_fdatasync(fd);
out:
        pthread_mutex_lock(&s->mu);
        if (rc == 0) {
                /* Data durable: now the index (S1). */
                for (uint64_t i = bitmap_next_set(&want, 0); i < n;) {
                        uint64_t j = bitmap_next_clear(&want, i);

                        bitmap_set_range(&s->idx, c0 + i, j - i);
                        i = bitmap_next_set(&want, j);
                }
                if ((rc = write_index_locked(s, c0, c1)) < 0) {
                        /* Not durable: forget the bits (the chunk will be
                         * preserved again; its sidecar copy is the same). */
                        for (uint64_t i = bitmap_next_set(&want, 0); i < n;) {
                                uint64_t j = bitmap_next_clear(&want, i);

                                bitmap_clear_range(&s->idx, c0 + i, j - i);
                                i = bitmap_next_set(&want, j);
                        }
                }
        }
        s->inflight--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (rc < 0)
                log_error("pair %s: cannot preserve chunks %llu-%llu in the sidecar: %s",
                          s->pair_id, (unsigned long long)c0, (unsigned long long)c1,
                          strerror(-rc));
        free(buf);
        bitmap_free(&want);
        return rc;
}

bool sidecar_covers(struct sidecar *s, uint64_t c0, uint64_t c1)
{
        bool all;

        pthread_mutex_lock(&s->mu);
        if (s->state != SC_OPEN || c0 >= s->nchunks) {
                pthread_mutex_unlock(&s->mu);
                return true;
        }
        c1 = MIN(c1, s->nchunks - 1);
        all = bitmap_count_range(&s->idx, c0, c1 - c0 + 1) == c1 - c0 + 1;
        pthread_mutex_unlock(&s->mu);
        return all;
}

void sidecar_mark(struct sidecar *s, struct bitmap *bm)
{
        pthread_mutex_lock(&s->mu);
        if (s->state == SC_OPEN) {
                for (uint64_t i = bitmap_next_set(&s->idx, 0); i < s->nchunks;) {
                        uint64_t j = bitmap_next_clear(&s->idx, i);

                        bitmap_set_range(bm, i, j - i);
                        i = bitmap_next_set(&s->idx, j);
                }
                if (bm->nbits > s->nchunks)
                        bitmap_set_range(bm, s->nchunks, bm->nbits - s->nchunks);
        }
        pthread_mutex_unlock(&s->mu);
}

int sidecar_rollback(struct sidecar *s, struct link *l, uint64_t size_bytes)
{
        uint64_t cb = s->chunk_bytes, piece_chunks = MAX(SC_PIECE_BYTES / cb, 1), end_b, n = 0;
        unsigned char *buf = NULL;
        int rc = 0;

        pthread_mutex_lock(&s->mu);
        if (s->state != SC_OPEN) {
                pthread_mutex_unlock(&s->mu);
                return 0;
        }
        s->inflight++; /* no close while we read the file */
        if (!(s->flags & SC_F_ROLLBACK)) {
                s->flags |= SC_F_ROLLBACK;
                if ((rc = write_header(s, s->fd)) == 0)
                        rc = fault_fdatasync(s->fd);
        }
        pthread_mutex_unlock(&s->mu);
        end_b = MIN(size_bytes, s->nchunks * cb);
        if (rc == 0 && posix_memalign((void **)&buf, 4096, piece_chunks * cb) != 0)
                rc = -ENOMEM;
        /* The index does not change during a rollback (no preserve runs:
         * the caller's fences are up and the worker is stopped). */
        for (uint64_t i = bitmap_next_set(&s->idx, 0); i < s->nchunks && rc == 0;) {
                uint64_t j = bitmap_next_clear_before(&s->idx, i, i + piece_chunks);
                uint64_t off = i * cb, len;

                len = off >= end_b ? 0 : MIN(end_b, j * cb) - off;
                if (len == 0)
                        break;
                if ((rc = util_pread_full(s->fd, buf, len, s->data_off + off)) < 0)
                        break;
                if (all_zero(buf, len))
                        rc = l->ops->zero(l, off, len, true, 0);
                else
                        rc = l->ops->write(l, buf, len, off, 0);
                n += j - i;
                i = bitmap_next_set(&s->idx, j);
        }
        /* Past the frozen size the frozen image has no bytes: zeroes. */
        if (rc == 0 && size_bytes > s->nchunks * cb)
                rc = l->ops->zero(l, s->nchunks * cb, size_bytes - s->nchunks * cb, true, 0);
        if (rc == 0)
                rc = l->ops->flush(l);
        free(buf);
        pthread_mutex_lock(&s->mu);
        s->inflight--;
        if (rc == 0)
                s->rollbacks++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (rc < 0)
                log_error("pair %s: sidecar rollback failed: %s", s->pair_id, strerror(-rc));
        else
                log_info("pair %s: DR rolled back to its frozen instant (%llu chunk(s) restored)",
                         s->pair_id, (unsigned long long)n);
        return rc;
}

int sidecar_discard_intent(struct sidecar *s)
{
        int rc = 0;

        pthread_mutex_lock(&s->mu);
        if (s->state == SC_OPEN && !(s->flags & SC_F_DISCARD)) {
                s->flags |= SC_F_DISCARD;
                if ((rc = write_header(s, s->fd)) == 0)
                        rc = fault_fdatasync(s->fd);
        }
        pthread_mutex_unlock(&s->mu);
        return rc;
}

bool sidecar_discard_pending(struct sidecar *s)
{
        bool p;

        pthread_mutex_lock(&s->mu);
        p = s->state == SC_OPEN && (s->flags & SC_F_DISCARD);
        pthread_mutex_unlock(&s->mu);
        return p;
}

void sidecar_close_begin(struct sidecar *s)
{
        pthread_mutex_lock(&s->mu);
        if (s->state == SC_OPEN) {
                s->state = SC_CLOSING;
                atomic_store(&s->open, false);
        }
        pthread_mutex_unlock(&s->mu);
}

int sidecar_close_finish(struct sidecar *s)
{
        int rc = 0;

        pthread_mutex_lock(&s->mu);
        if (s->state == SC_CLOSING)
                rc = finish_close_locked(s);
        pthread_mutex_unlock(&s->mu);
        return rc;
}

int sidecar_discard(struct sidecar *s)
{
        sidecar_close_begin(s);
        return sidecar_close_finish(s);
}

void sidecar_stats(struct sidecar *s, struct sidecar_stats *st)
{
        memset(st, 0, sizeof(*st));
        pthread_mutex_lock(&s->mu);
        st->open = s->state == SC_OPEN;
        if (st->open) {
                st->frozen_at = s->frozen_at;
                st->chunks = s->idx.nset;
                st->data_bytes = s->data_bytes;
        }
        st->rollbacks = s->rollbacks;
        st->total_bytes = atomic_load(&s->total_bytes); /* under mu: rule L */
        pthread_mutex_unlock(&s->mu);
}
