/* Online verify, engine part: compare production and DR chunk by chunk
 * under the mirror's range locks (docs/design/replication.md, "Online
 * verify"). The caller (service/verify.c) holds the pair's lock so the
 * mirror is not swapped, grown or closed during a call. */
#ifndef EVSREP_ENGINE_VERIFY_H
#define EVSREP_ENGINE_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

struct mirror;

#define VERIFY_BATCH_BYTES (1u << 20)

/* Called for each mismatching chunk, in order (no engine lock held... but
 * the range lock of the batch is: do not call into the mirror). */
typedef void (*verify_mismatch_fn)(void *ctx, uint64_t chunk);

struct verify_batch {
        uint64_t chunks;        /* chunks handled (compared + skipped) */
        uint64_t compared;      /* clean chunks compared */
        uint64_t skipped_dirty; /* dirty chunks skipped */
        uint64_t mismatched;    /* compared chunks that differ */
        uint64_t repaired;      /* of which set dirty durably (repair) */
        uint64_t bytes;         /* volume bytes covered by this batch */
        bool need_resync;       /* repaired in SYNC: switch the pair to RESYNC */
};

/* Chunks of the mirror (its bitmap's size). */
uint64_t verify_mirror_chunks(struct mirror *m);

/* Buffers for verify_mirror_batch: two page-aligned VERIFY_BATCH_BYTES
 * buffers (free with verify_bufs_free). */
int verify_bufs_alloc(char **prod, char **dr);
void verify_bufs_free(char *prod, char *dr);

/* Verify chunks [first, first + n) clamped to one batch (at least one
 * chunk, at most VERIFY_BATCH_BYTES when chunks are smaller). Under the
 * range lock: clean chunks are read on both sides and compared; with repair
 * a mismatching chunk's bit is set and persisted before the lock is
 * released. out->chunks says how far it got. Returns 0, or -errno of a
 * failed read (-EOPNOTSUPP: the link cannot read) with out->chunks 0. */
int verify_mirror_batch(struct mirror *m, uint64_t first, uint64_t n, bool repair, char *buf_prod,
                        char *buf_dr, verify_mismatch_fn on_mismatch, void *ctx,
                        struct verify_batch *out);

/* Throttle: microseconds to wait before the next batch so that bytes_done
 * bytes since the start (elapsed_usec ago) stay within max_bps; 0 when no
 * wait is needed or max_bps is 0 (unlimited). */
uint64_t verify_pace_usec(uint64_t bytes_done, uint64_t elapsed_usec, uint64_t max_bps);

#endif
