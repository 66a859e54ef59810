/* Copy-on-write sidecar of a pair: the DR disk's content at the frozen
 * instant for every chunk overwritten since, so that the DR side can be
 * rolled back to that instant while (or after) a resync mixed old and new
 * chunks. Invariants S1-S4, on-disk format, lock order, crash cases:
 * docs/design/replication.md, "A consistent DR image during resync".
 *
 * Threading: preserve may run on many threads at once on disjoint chunk
 * ranges (the callers hold the mirror's range locks); create, rollback and
 * the close steps are called with no preserve of the same chunks running
 * (fence raised / worker stopped), except close_begin/close_finish, which
 * wait for the preserves in flight. */
#ifndef EVSREP_ENGINE_SIDECAR_H
#define EVSREP_ENGINE_SIDECAR_H

#include "engine/bitmap.h"
#include "engine/link.h"

#include <stdbool.h>
#include <stdint.h>

struct sidecar;

struct sidecar_stats {
        bool open;
        int64_t frozen_at;    /* instant the preserved chunks belong to (usec); 0: closed */
        uint64_t chunks;      /* chunks preserved in the open sidecar */
        uint64_t data_bytes;  /* bytes of data written into the open sidecar */
        uint64_t total_bytes; /* data bytes written into sidecars since sidecar_new */
        uint64_t rollbacks;   /* rollbacks done since sidecar_new */
};

/* A closed sidecar for the file at path (nothing is read or created).
 * chunk_bytes 0: taken from the file by sidecar_load (the DR node of a
 * remote pair, which learns the chunk size from the file or its creator). */
int sidecar_new(const char *path, const char *pair_id, uint64_t chunk_bytes, struct sidecar **out);
/* Close the file if open (keeps it on disk) and free. */
void sidecar_free(struct sidecar *s);
/* Reopen the file if there is one (S4). 1: opened, 0: none (a damaged one
 * is deleted, a left-over .tmp too), -errno. */
int sidecar_load(struct sidecar *s);
/* Open a new, empty sidecar for a disk of nchunks chunks frozen at
 * frozen_at (durable on return). No-op (0) when one is open. */
int sidecar_create(struct sidecar *s, uint64_t nchunks, int64_t frozen_at);
/* The same, stamped with generation (the group generation of a remote
 * sidecar, docs/design/replication.md "The release record"; 0: unknown). */
int sidecar_create_gen(struct sidecar *s, uint64_t nchunks, int64_t frozen_at, uint64_t generation);
/* The open sidecar's generation (0: unknown, a version-1 file, or closed). */
uint64_t sidecar_generation(struct sidecar *s);
/* Stamp the open sidecar with generation, durably (header rewritten in
 * place, version 2). -EBADF when closed. */
int sidecar_set_generation(struct sidecar *s, uint64_t generation);

/* R5: what a failover does with a sidecar of this generation, given the
 * group's count of completed resyncs (released) and, for a sidecar of
 * unknown generation only, whether every member's row said active. */
enum sidecar_fate { SIDECAR_ROLLBACK, SIDECAR_FOLD };
enum sidecar_fate sidecar_fate_decide(uint64_t generation, uint64_t released, bool rows_active);
/* R6: what an open of generation want (0: names none) does with a sidecar
 * of generation have that is already open. */
enum sidecar_open { SIDECAR_KEEP, SIDECAR_STAMP, SIDECAR_REPLACE };
enum sidecar_open sidecar_open_decide(uint64_t have, uint64_t want);

bool sidecar_is_open(struct sidecar *s);
uint64_t sidecar_chunk_bytes(struct sidecar *s);
int64_t sidecar_frozen_at(struct sidecar *s);
/* S1: make chunks [c0, c1] of the DR disk behind l (size_bytes long)
 * preserved: those not yet in the sidecar are read through l and stored,
 * durably, before this returns. 0 at once when closed; chunks past the
 * frozen size are not part of the frozen image and are skipped. */
int sidecar_preserve(struct sidecar *s, struct link *l, uint64_t c0, uint64_t c1,
                     uint64_t size_bytes);
/* The same for the chunks c0 + i of [c0, c1] whose bit i is set in sel
 * (sel->nbits >= c1 - c0 + 1): one read pass and two fdatasyncs for chunks
 * that are not contiguous (the resync preserves ahead of its copy). */
int sidecar_preserve_some(struct sidecar *s, struct link *l, uint64_t c0, uint64_t c1,
                          const struct bitmap *sel, uint64_t size_bytes);
/* Nothing to preserve in [c0, c1] (closed, past the frozen size, or every
 * chunk preserved already)? */
bool sidecar_covers(struct sidecar *s, uint64_t c0, uint64_t c1);
/* Set in bm the bit of every preserved chunk, and of every chunk of a disk
 * of nbits chunks past the frozen size (S3, first step; caller persists). */
void sidecar_mark(struct sidecar *s, struct bitmap *bm);
/* S3, second step: write every preserved chunk back to the DR disk behind
 * l, zero what lies past the frozen size, flush l. Idempotent. */
int sidecar_rollback(struct sidecar *s, struct link *l, uint64_t size_bytes);
/* Discard in two steps: begin (no I/O; preserves from now on do nothing),
 * then finish (waits for preserves in flight, deletes the file). discard
 * does both. A create after a begin finishes the close first. */
void sidecar_close_begin(struct sidecar *s);
/* S5: record durably that this sidecar is to be discarded (its group
 * reached SYNC), before any member's is deleted; pending: a reopened file
 * carries that record. */
int sidecar_discard_intent(struct sidecar *s);
bool sidecar_discard_pending(struct sidecar *s);
int sidecar_close_finish(struct sidecar *s);
int sidecar_discard(struct sidecar *s);
void sidecar_stats(struct sidecar *s, struct sidecar_stats *st);

#endif
