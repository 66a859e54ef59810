/* Mirror internals shared by mirror.c (modes, client I/O, activity log) and
 * resync.c (the worker). Lock order: range lock -> io -> mu
 * (docs/design/replication.md). */
#ifndef EVSREP_ENGINE_INTERNAL_H
#define EVSREP_ENGINE_INTERNAL_H

#include "common/replygen.h"
#include "engine/actlog.h"
#include "engine/bitmap.h"
#include "engine/meta.h"
#include "engine/mirror.h"
#include "engine/rangelock.h"
#include "engine/sidecar.h"

#include <pthread.h>
#include <stdatomic.h>

struct mirror {
        char pair_id[40];
        char meta_path[4096];
        struct volume *prod;
        struct link *link;
        mirror_event_fn on_event;
        void *event_ctx;
        uint64_t chunk_bytes;

        struct rangelock rl;

        /* io: the meta file (AL + bitmap writes) and the activity log. */
        pthread_mutex_t io;
        pthread_cond_t al_cv;
        unsigned al_waiters;
        struct meta meta;
        struct actlog al;
        atomic_uint_least64_t al_writes; /* written under io; read by mirror_stats without it */
        /* After a pause both legs were flushed and the durable AL emptied,
         * but the in-memory slots are kept warm: they are written back in
         * one transaction when mirroring resumes (mirror_set_mode). */
        bool al_settled;

        /* mu: mode and the in-memory bitmaps. Never held across I/O. */
        pthread_mutex_t mu;
        enum mirror_mode mode;
        bool attached;
        struct bitmap bm;
        /* Bits the worker cleared whose DR copy is not flushed yet: OR'ed
         * into every bitmap page written until a checkpoint (B2). */
        struct bitmap unflushed;
        uint64_t uf_lo, uf_hi; /* chunk span holding unflushed bits; lo > hi: none */
        uint64_t dirty_at_start;
        int dr_error;
        int prod_error;
        /* Bits set in bm whose persist failed: every later persist writes
         * the whole bitmap, and the AL is not emptied until one succeeds. */
        atomic_bool bits_pending; /* written under io; read by mirror_stats without it */
        /* The fenced period (volume_fence_epoch of prod) in which a reverse
         * preflight flushed both legs and found DR == production; a swap in
         * the same period need not flush again. 0: none. */
        uint64_t preflight_epoch;
        /* Group binding (fence.c; set under g->mu then mu). fault_hold: a
         * fault freeze switched this member; a not-mirrored write waits for
         * the freeze to be complete before it is acknowledged (F1). */
        struct mirror_group *group;
        bool fault_hold;
        bool fault_frozen;
        int64_t frozen_at; /* wall-clock usec of the fence/freeze that froze DR; 0: none */
        /* Client writes that decided "mirrored" (under mu) and have not
         * finished both legs yet. A pause waits for them after its switch
         * instead of draining the gate before it (mirror_wait_mirrored;
         * replication.md, "The pause fence does not drain"). */
        unsigned mirrored_inflight, mirrored_waiters;
        pthread_cond_t mirrored_cv;

        /* Copy-on-write sidecar (mirror_cow.c). cow_at (under mu): the
         * instant the DR disk holds after a failover made it the DR side;
         * consumed by the next switch out of TRACK. */
        struct sidecar *sc;
        int64_t cow_at;
        /* mode_gen: bumped (under mu; under io too for every switch but
         * the one to TRACK) by every planned mode or role change, so a
         * settle can tell that the TRACK period it flushed for is over
         * (settle.c; replication.md "What a pause answer waits for"). */
        uint64_t mode_gen;
        /* Settle thread (settle.c), under settle_mu: rounds asked and done;
         * settle_thread joinable while settle_joinable, looping while
         * settle_active. */
        pthread_mutex_t settle_mu;
        pthread_t settle_thread;
        bool settle_joinable, settle_active;
        uint64_t settle_req, settle_done;

        /* Resync worker. */
        pthread_t worker;
        bool worker_running;
        atomic_bool worker_stop;
        atomic_uint_least64_t bytes_copied; /* chunk bytes brought in sync */
        atomic_uint_least64_t data_bytes;   /* of which data read and written */
        atomic_uint_least64_t rate_bps;
        /* Client writes through the hook: summed latency (usec) and count,
         * read by the resync worker's throttle (throttle_mirror.c). */
        atomic_uint_least64_t wlat_usec, wlat_n;
        atomic_uint_least64_t wlat_seen_usec, wlat_seen_n; /* as of the last batch */
};

/* Persist the bitmap pages covering chunks [first, first + count)
 * (snapshot of bm | unflushed). Takes io and mu. */
int mirror_persist_bits(struct mirror *m, uint64_t first, uint64_t count);
/* Flush DR, then persist the worker's cleared bits (B2). Takes io and mu. */
int mirror_checkpoint(struct mirror *m);
/* DR leg failed: mark [c0, c1] dirty durably, drop to TRACK, report. */
void mirror_dr_fault(struct mirror *m, uint64_t c0, uint64_t c1, int err);
void mirror_emit(struct mirror *m, enum mirror_event ev);
/* Production I/O failed: chunks [c0, c1] (none when c0 > c1) dirty
 * durably, TRACK (the group freezes), fault 2. */
void mirror_prod_fault(struct mirror *m, uint64_t c0, uint64_t c1, int err);

/* fence.c */
void fence_group_leave(struct mirror *m);
/* The throttle of the group m is bound to, or NULL (resync worker). */
struct throttle *fence_group_throttle(struct mirror *m);

/* throttle_mirror.c: after a batch of data_bytes copied and sync_bytes
 * brought in sync, wait as the group's throttle says (worker thread). */
void resync_pace(struct mirror *m, uint64_t data_bytes, uint64_t sync_bytes);

/* Every member of g in SYNC: discard every member's sidecar (under g->mu).
 * 0; or MIRROR_COW_UNRELEASED when the remote release could be neither
 * recorded nor sent: every member was then frozen to TRACK at one instant
 * (R8) and the caller (origin, the member whose switch to SYNC ran this)
 * emits MIRROR_EV_FROZEN for origin instead of MIRROR_EV_SYNCED; the
 * others' events are emitted here. */
int fence_group_cow_release(struct mirror_group *g, struct mirror *origin);
/* The remote hook's discard (mirror_cow.c); 0 without a hook. */
int mirror_cow_remote_discard(const char *group_id, const char *const *pair_ids, size_t n);

/* mirror_cow.c: the sidecar hooks (docs/design/replication.md, "A
 * consistent DR image during resync"). */
int mirror_cow_open(struct mirror *m);
void mirror_cow_close(struct mirror *m, bool remove);
/* Leaving TRACK (fence raised): open a sidecar for the instant DR holds. */
int mirror_cow_resume(struct mirror *m);
/* S1 for chunks [c0, c1], under the caller's range lock. */
int mirror_cow(struct mirror *m, uint64_t c0, uint64_t c1);
/* The mirror reached SYNC: discard the sidecars when its group is in SYNC.
 * 0, or MIRROR_COW_UNRELEASED: m and its group were frozen to TRACK (R8);
 * the caller emits MIRROR_EV_FROZEN, not MIRROR_EV_SYNCED. */
int mirror_cow_synced(struct mirror *m);
/* Role swap (fences raised, worker stopped). Failover (fold_al): roll DR
 * back to the frozen instant (S3) and discard the sidecar. Reverse (from
 * SYNC, DR == production): a sidecar left by a failed discard is dropped,
 * it must never follow the roles to the other disk. */
int mirror_cow_rollback(struct mirror *m, bool fold_al);
/* S1 for the resync batch [c, e) (under its range lock), and ahead of it
 * for the next dirty chunks. */
int mirror_cow_ahead(struct mirror *m, uint64_t c, uint64_t e);
/* Resync batch limit (chunks) while a sidecar is open. */
uint64_t mirror_cow_batch_chunks(struct mirror *m);

/* Wait until no client write that decided "mirrored" is in flight on m.
 * After a switch to TRACK none starts, so this is the set of writes in
 * flight at the switch (fence_pause). Takes mu. */
void mirror_wait_mirrored(struct mirror *m);

/* settle.c: wait for m's settle thread (no-op without one). */
void settle_join(struct mirror *m);

/* resync.c */
int resync_start(struct mirror *m);
/* Ask the worker to stop and join it (no-op when not running). */
void resync_stop(struct mirror *m);

#endif
