/* The per-pair meta file: header, two AL blocks, bitmap area.
 * Format and invariants: docs/design/replication.md. Every write is made
 * durable (fdatasync) before the function returns. Not thread-safe: the
 * mirror holds its meta I/O mutex around these calls. */
#ifndef EVSREP_ENGINE_META_H
#define EVSREP_ENGINE_META_H

#include "engine/bitmap.h"

#include <stdbool.h>
#include <stdint.h>

#define META_BLOCK      4096u
#define META_AL_OFF     4096u
#define META_BITMAP_OFF 12288u
#define META_AL_EXTENT  (4u << 20)

struct meta {
        int fd;
        uint64_t chunk_bytes;
        uint64_t nchunks;
        uint64_t size_bytes;
        uint64_t al_extent_bytes;
        uint64_t al_seq; /* seq of the newest valid AL block */
        int al_next;     /* block (0/1) the next AL write goes to */
};

/* Create path (O_EXCL) for a volume of size_bytes with every bit set
 * (all_dirty) or clear. bm receives the in-memory bitmap. */
int meta_create(const char *path, const char *pair_id, uint64_t chunk_bytes, uint64_t size_bytes,
                bool all_dirty, struct meta *m, struct bitmap *bm);
/* Open an existing file: check the header, load the bitmap into bm and the
 * newest valid AL block into al_out[*al_n] (>= 505 entries).
 * -EPROTO: bad magic, version or CRC in the header (a damaged file). */
int meta_open(const char *path, struct meta *m, struct bitmap *bm, uint64_t *al_out,
              unsigned *al_n);
void meta_close(struct meta *m);
/* Write the bitmap words covering chunks [first, first + count), then
 * fdatasync. */
int meta_write_bits(struct meta *m, const struct bitmap *bm, uint64_t first, uint64_t count);
/* Write len bytes of bitmap-area content at byte offset area_off of the
 * bitmap area (callers pass a snapshot of whole pages), then fdatasync. */
int meta_write_area(struct meta *m, uint64_t area_off, const void *buf, uint64_t len);
/* Byte span [*b0, *b1) of whole 4 KiB pages of the bitmap area (clamped to
 * the words in use) covering chunks [first, first + count). */
void meta_bits_span(uint64_t nbits, uint64_t first, uint64_t count, uint64_t *b0, uint64_t *b1);
/* Write every bitmap word, then fdatasync. */
int meta_write_all_bits(struct meta *m, const struct bitmap *bm);
/* Write a new AL transaction (n extents) to the older block, fdatasync. */
int meta_write_al(struct meta *m, const uint64_t *extents, unsigned n);
/* Grow to size_bytes: append clear bitmap words, rewrite the header. */
int meta_grow(struct meta *m, struct bitmap *bm, uint64_t size_bytes);

#endif
