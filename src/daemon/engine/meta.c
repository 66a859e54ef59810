/* The per-pair meta file. Format: docs/design/replication.md. */
#include "engine/meta.h"
#include "common/fault.h"
#include "common/util.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the meta file stores the bitmap as little-endian words; port meta.c first"
#endif

#define HDR_MAGIC   "EVSRPM01"
#define AL_MAGIC    "EVSRAL01"
#define HDR_VERSION 1u

struct hdr {
        char magic[8];
        uint32_t version;
        uint32_t crc;
        uint64_t chunk_bytes;
        uint64_t nchunks;
        uint64_t size_bytes;
        uint64_t al_extent_bytes;
        char pair_id[40];
};

struct alblk {
        char magic[8];
        uint32_t crc;
        uint32_t count;
        uint64_t seq;
        uint64_t extent[505];
};
_Static_assert(sizeof(struct alblk) <= META_BLOCK, "AL block fits 4 KiB");

static uint64_t bitmap_bytes(uint64_t nchunks)
{
        uint64_t b = bitmap_nwords(nchunks) * 8;
        return (b + META_BLOCK - 1) / META_BLOCK * META_BLOCK;
}

static int sync_fd(int fd)
{
        if (fault_check(FP_META_SYNC, NULL) < 0)
                return -EIO;
        return fault_fdatasync(fd);
}

static int write_header(struct meta *m, const char *pair_id)
{
        unsigned char blk[META_BLOCK] = {0};
        struct hdr *h = (struct hdr *)blk;
        int rc;

        if (pair_id) {
                memcpy(h->magic, HDR_MAGIC, 8);
                snprintf(h->pair_id, sizeof(h->pair_id), "%s", pair_id);
        } else if ((rc = util_pread_full(m->fd, blk, META_BLOCK, 0)) < 0) {
                return rc;
        }
        h->version = HDR_VERSION;
        h->chunk_bytes = m->chunk_bytes;
        h->nchunks = m->nchunks;
        h->size_bytes = m->size_bytes;
        h->al_extent_bytes = m->al_extent_bytes;
        h->crc = util_crc32c(blk + 16, META_BLOCK - 16);
        if ((rc = fault_check(FP_META_HDR, NULL)) < 0)
                return rc;
        if ((rc = fault_pwrite(m->fd, blk, META_BLOCK, 0)) < 0)
                return rc;
        return 0;
}

int meta_create(const char *path, const char *pair_id, uint64_t chunk_bytes, uint64_t size_bytes,
                bool all_dirty, struct meta *m, struct bitmap *bm)
{
        uint64_t nchunks;
        int rc;

        if (chunk_bytes == 0 || (chunk_bytes & (chunk_bytes - 1)))
                return -EINVAL;
        nchunks = (size_bytes + chunk_bytes - 1) / chunk_bytes;
        memset(m, 0, sizeof(*m));
        m->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (m->fd < 0)
                return -errno;
        m->chunk_bytes = chunk_bytes;
        m->nchunks = nchunks;
        m->size_bytes = size_bytes;
        m->al_extent_bytes = META_AL_EXTENT;
        if ((rc = bitmap_init(bm, nchunks)) < 0)
                goto fail;
        if (all_dirty)
                bitmap_set_range(bm, 0, nchunks);
        if (ftruncate(m->fd, (off_t)(META_BITMAP_OFF + bitmap_bytes(nchunks))) < 0) {
                rc = -errno;
                goto fail_bm;
        }
        if ((rc = write_header(m, pair_id)) < 0 || (rc = meta_write_al(m, NULL, 0)) < 0 ||
            (rc = meta_write_all_bits(m, bm)) < 0)
                goto fail_bm;
        return 0;
fail_bm:
        bitmap_free(bm);
fail:
        close(m->fd);
        unlink(path);
        m->fd = -1;
        return rc;
}

/* Read AL block i; returns 0 and fills b when magic and CRC are good. */
static int read_al(struct meta *m, int i, struct alblk *b)
{
        unsigned char blk[META_BLOCK];
        int rc = util_pread_full(m->fd, blk, META_BLOCK, META_AL_OFF + (uint64_t)i * META_BLOCK);

        if (rc < 0)
                return rc;
        memcpy(b, blk, sizeof(*b));
        if (memcmp(b->magic, AL_MAGIC, 8) || b->count > 505 ||
            b->crc != util_crc32c(blk + 12, META_BLOCK - 12))
                return -EPROTO;
        return 0;
}

int meta_open(const char *path, struct meta *m, struct bitmap *bm, uint64_t *al_out, unsigned *al_n)
{
        unsigned char blk[META_BLOCK];
        struct hdr h;
        struct alblk a[2];
        int ok[2], best, rc;

        memset(m, 0, sizeof(*m));
        m->fd = open(path, O_RDWR | O_CLOEXEC);
        if (m->fd < 0)
                return -errno;
        if ((rc = util_pread_full(m->fd, blk, META_BLOCK, 0)) < 0)
                goto fail;
        memcpy(&h, blk, sizeof(h));
        rc = -EPROTO;
        if (memcmp(h.magic, HDR_MAGIC, 8) || h.version != HDR_VERSION ||
            h.crc != util_crc32c(blk + 16, META_BLOCK - 16) || h.chunk_bytes == 0 ||
            (h.chunk_bytes & (h.chunk_bytes - 1)) ||
            h.nchunks != (h.size_bytes + h.chunk_bytes - 1) / h.chunk_bytes ||
            h.nchunks > (1ULL << 40))
                goto fail;
        m->chunk_bytes = h.chunk_bytes;
        m->nchunks = h.nchunks;
        m->size_bytes = h.size_bytes;
        m->al_extent_bytes = h.al_extent_bytes ? h.al_extent_bytes : META_AL_EXTENT;
        ok[0] = read_al(m, 0, &a[0]) == 0;
        ok[1] = read_al(m, 1, &a[1]) == 0;
        if (!ok[0] && !ok[1])
                goto fail; /* both AL blocks torn: cannot know what was hot */
        best = !ok[0] ? 1 : !ok[1] ? 0 : a[1].seq > a[0].seq;
        m->al_seq = a[best].seq;
        m->al_next = !best;
        *al_n = a[best].count;
        memcpy(al_out, a[best].extent, a[best].count * sizeof(uint64_t));
        if ((rc = bitmap_init(bm, m->nchunks)) < 0)
                goto fail;
        rc = util_pread_full(m->fd, bm->words, bitmap_nwords(m->nchunks) * 8, META_BITMAP_OFF);
        if (rc < 0) {
                bitmap_free(bm);
                goto fail;
        }
        bitmap_recount(bm);
        return 0;
fail:
        close(m->fd);
        m->fd = -1;
        return rc;
}

void meta_close(struct meta *m)
{
        if (m->fd >= 0)
                close(m->fd);
        m->fd = -1;
}

void meta_bits_span(uint64_t nbits, uint64_t first, uint64_t count, uint64_t *b0, uint64_t *b1)
{
        uint64_t total = bitmap_nwords(nbits) * 8;

        if (count == 0 || first >= nbits) {
                *b0 = *b1 = 0;
                return;
        }
        if (count > nbits - first)
                count = nbits - first;
        *b0 = first / 64 * 8 / META_BLOCK * META_BLOCK;
        *b1 = MIN(((first + count - 1) / 64 * 8 / META_BLOCK + 1) * META_BLOCK, total);
}

int meta_write_area(struct meta *m, uint64_t area_off, const void *buf, uint64_t len)
{
        int rc;

        if (len == 0)
                return 0;
        if ((rc = fault_check(FP_META_BITS, NULL)) < 0)
                return rc;
        rc = fault_pwrite(m->fd, buf, len, META_BITMAP_OFF + area_off);
        return rc < 0 ? rc : sync_fd(m->fd);
}

int meta_write_bits(struct meta *m, const struct bitmap *bm, uint64_t first, uint64_t count)
{
        uint64_t b0, b1;

        meta_bits_span(bm->nbits, first, count, &b0, &b1);
        return meta_write_area(m, b0, (const char *)bm->words + b0, b1 - b0);
}

int meta_write_all_bits(struct meta *m, const struct bitmap *bm)
{
        int rc = fault_check(FP_META_BITS, NULL);

        if (rc == 0)
                rc = fault_pwrite(m->fd, bm->words, bitmap_nwords(bm->nbits) * 8, META_BITMAP_OFF);
        return rc < 0 ? rc : sync_fd(m->fd);
}

int meta_write_al(struct meta *m, const uint64_t *extents, unsigned n)
{
        unsigned char blk[META_BLOCK] = {0};
        struct alblk *b = (struct alblk *)blk;
        int rc;

        if (n > 505)
                return -EINVAL;
        memcpy(b->magic, AL_MAGIC, 8);
        b->count = n;
        b->seq = m->al_seq + 1;
        if (n)
                memcpy(b->extent, extents, n * sizeof(uint64_t));
        b->crc = util_crc32c(blk + 12, META_BLOCK - 12);
        rc = fault_check(FP_META_AL, NULL);
        if (rc == 0)
                rc = fault_pwrite(m->fd, blk, META_BLOCK,
                                  META_AL_OFF + (uint64_t)m->al_next * META_BLOCK);
        if (rc == 0)
                rc = sync_fd(m->fd);
        if (rc == 0) {
                m->al_seq++;
                m->al_next = !m->al_next;
        }
        return rc;
}

int meta_grow(struct meta *m, struct bitmap *bm, uint64_t size_bytes)
{
        uint64_t nchunks = (size_bytes + m->chunk_bytes - 1) / m->chunk_bytes;
        uint64_t old = m->nchunks;
        int rc;

        if (size_bytes < m->size_bytes)
                return -EINVAL;
        if ((rc = bitmap_grow(bm, nchunks)) < 0)
                return rc;
        if (ftruncate(m->fd, (off_t)(META_BITMAP_OFF + bitmap_bytes(nchunks))) < 0)
                return -errno;
        m->nchunks = nchunks;
        if ((rc = meta_write_bits(m, bm, old ? old - 1 : 0, nchunks - (old ? old - 1 : 0))) < 0)
                return rc;
        m->size_bytes = size_bytes;
        if ((rc = write_header(m, NULL)) < 0)
                return rc;
        return sync_fd(m->fd);
}
