/* Online verify, engine part (docs/design/replication.md, "Online verify").
 *
 * One batch: take the range lock of [c0, c1], note which chunks are clean
 * (under mu), read both sides, compare the clean chunks, and with repair set
 * and persist the bits of the ones that differ, all before the range lock is
 * released. Lock order: range lock -> io -> mu, as on the write path. */
#include "engine/verify.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/internal.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t verify_mirror_chunks(struct mirror *m)
{
        uint64_t n;

        pthread_mutex_lock(&m->mu);
        n = m->bm.nbits;
        pthread_mutex_unlock(&m->mu);
        return n;
}

int verify_bufs_alloc(char **prod, char **dr)
{
        *prod = *dr = NULL;
        if (posix_memalign((void **)prod, 4096, VERIFY_BATCH_BYTES) != 0)
                return -ENOMEM;
        if (posix_memalign((void **)dr, 4096, VERIFY_BATCH_BYTES) != 0) {
                free(*prod);
                *prod = NULL;
                return -ENOMEM;
        }
        return 0;
}

void verify_bufs_free(char *prod, char *dr)
{
        free(prod);
        free(dr);
}

uint64_t verify_pace_usec(uint64_t bytes_done, uint64_t elapsed_usec, uint64_t max_bps)
{
        uint64_t due_usec;

        if (max_bps == 0 || bytes_done == 0)
                return 0;
        /* due = bytes_done / max_bps seconds, without overflowing for
         * volumes up to 2^64 bytes: whole seconds and the remainder apart. */
        due_usec = bytes_done / max_bps * 1000000 + bytes_done % max_bps * 1000000 / max_bps;
        return due_usec > elapsed_usec ? due_usec - elapsed_usec : 0;
}

int verify_mirror_batch(struct mirror *m, uint64_t first, uint64_t n, bool repair, char *buf_prod,
                        char *buf_dr, verify_mismatch_fn on_mismatch, void *ctx,
                        struct verify_batch *out)
{
        uint64_t per = VERIFY_BATCH_BYTES / m->chunk_bytes, size = volume_size(m->prod);
        uint64_t c1, off, len, clean_mask = 0;
        bool dirty[64];
        int rc;

        memset(out, 0, sizeof(*out));
        if (!m->link->ops->read)
                return -EOPNOTSUPP;
        if (per == 0)
                per = 1; /* chunks larger than the batch: one chunk, read in pieces */
        if (per > 64)
                per = 64; /* 4 KiB chunks: 64 per 1 MiB would be 256 */
        pthread_mutex_lock(&m->mu);
        if (first >= m->bm.nbits) {
                pthread_mutex_unlock(&m->mu);
                return 0;
        }
        n = MIN(n, MIN(per, m->bm.nbits - first));
        pthread_mutex_unlock(&m->mu);
        c1 = first + n - 1;
        if ((rc = rangelock_acquire(&m->rl, first, c1)) < 0)
                return rc;
        /* V1: with the range held, no write to these chunks is in flight; a
         * clean bit now means production == DR now. */
        pthread_mutex_lock(&m->mu);
        for (uint64_t i = 0; i < n; i++) {
                dirty[i] = bitmap_test(&m->bm, first + i);
                if (!dirty[i])
                        clean_mask |= 1ull << i;
        }
        pthread_mutex_unlock(&m->mu);
        out->skipped_dirty = n - (uint64_t)__builtin_popcountll(clean_mask);
        off = first * m->chunk_bytes;
        len = MIN((first + n) * m->chunk_bytes, size) - MIN(off, size);
        /* Chunks up to the batch size: one read of the batch on each side.
         * A larger chunk (n == 1) is read and compared in pieces. */
        if (clean_mask && m->chunk_bytes <= VERIFY_BATCH_BYTES && len > 0) {
                if ((rc = volume_local_read(m->prod, buf_prod, len, off)) < 0)
                        goto fail;
                if ((rc = m->link->ops->read(m->link, buf_dr, len, off)) < 0)
                        goto fail;
        }
        for (uint64_t i = 0; i < n && clean_mask; i++) {
                uint64_t c_off = (first + i) * m->chunk_bytes, c_len;
                bool differs = false;

                if (dirty[i] || c_off >= size)
                        continue;
                c_len = MIN(m->chunk_bytes, size - c_off);
                if (m->chunk_bytes <= VERIFY_BATCH_BYTES) {
                        differs = memcmp(buf_prod + (c_off - off), buf_dr + (c_off - off), c_len);
                } else {
                        for (uint64_t done = 0; done < c_len && !differs;) {
                                uint64_t piece = MIN(c_len - done, (uint64_t)VERIFY_BATCH_BYTES);

                                if ((rc = volume_local_read(m->prod, buf_prod, piece,
                                                            c_off + done)) < 0 ||
                                    (rc = m->link->ops->read(m->link, buf_dr, piece,
                                                             c_off + done)) < 0)
                                        goto fail;
                                differs = memcmp(buf_prod, buf_dr, piece) != 0;
                                done += piece;
                        }
                }
                out->compared++;
                if (!differs)
                        continue;
                out->mismatched++;
                if (on_mismatch)
                        on_mismatch(ctx, first + i);
                if (repair) {
                        bool sync;

                        pthread_mutex_lock(&m->mu);
                        if (bitmap_set_range(&m->bm, first + i, 1))
                                replygen_live_bump(); /* rule L */
                        sync = m->mode == MIRROR_SYNC;
                        pthread_mutex_unlock(&m->mu);
                        /* B3: durable before the range is released. A
                         * failed persist sets bits_pending (the next
                         * persist writes the whole bitmap); a crash before
                         * that loses the mark, and the next verify finds
                         * the chunk again. */
                        if ((rc = mirror_persist_bits(m, first + i, 1)) < 0)
                                log_error("pair %s: verify: cannot persist repaired chunk %llu: %s",
                                          m->pair_id, (unsigned long long)(first + i),
                                          strerror(-rc));
                        out->repaired++;
                        out->need_resync |= sync;
                }
        }
        rangelock_release(&m->rl, first, c1);
        out->chunks = n;
        out->bytes = len;
        return 0;
fail:
        rangelock_release(&m->rl, first, c1);
        memset(out, 0, sizeof(*out));
        return rc;
}
