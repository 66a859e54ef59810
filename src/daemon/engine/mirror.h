/* Mirror: the replication engine's object for one pair. It owns the hook on
 * the production volume, the DR link, the meta file (bitmap + activity log)
 * and the resync worker. Modes and invariants: docs/design/replication.md.
 *
 * Threading: client I/O arrives through the volume hook on NBD threads;
 * mirror_set_mode / mirror_start / mirror_stop are called by the service
 * with the production volume's fence raised; mirror_stats from anywhere.
 * Events are delivered on engine threads with no engine lock held.
 *
 * Ownership: mirror_open takes a reference on prod and owns link from then
 * on (also on failure). mirror_close frees everything. */
#ifndef EVSREP_ENGINE_MIRROR_H
#define EVSREP_ENGINE_MIRROR_H

#include "engine/link.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

struct volume;
struct mirror;

enum mirror_mode { MIRROR_SYNC, MIRROR_TRACK, MIRROR_RESYNC };

enum mirror_event {
        MIRROR_EV_SYNCED,     /* RESYNC finished: the pair is in SYNC, DR == production */
        MIRROR_EV_DR_FAULT,   /* a DR write or flush failed (or the link went down):
                                 the pair is in TRACK; once per error, also when it
                                 was tracking already (but not for a link found
                                 down while tracking) */
        MIRROR_EV_FROZEN,     /* another member of its group faulted: dropped to TRACK
                                 at the same instant (docs/design/faults.md) */
        MIRROR_EV_PROD_FAULT, /* a production write failed, or the resync could not
                                 read production: TRACK, fault 2; once per error */
};

typedef void (*mirror_event_fn)(void *ctx, const char *pair_id, enum mirror_event ev);

struct mirror_cfg {
        const char *pair_id;
        const char *meta_path;
        struct volume *prod;
        struct link *link;
        uint64_t chunk_bytes; /* for a new meta file */
        bool create;          /* new pair: fresh meta file, every chunk dirty */
        bool clean;           /* with create: every chunk clean (a takeover after a failover
                               * from the survivor: only writes from now on are tracked) */
        mirror_event_fn on_event;
        void *event_ctx;
};

struct mirror_stats {
        enum mirror_mode mode;
        uint64_t chunk_bytes;
        uint64_t dirty_chunks;
        uint64_t dirty_at_start;
        uint64_t bytes_copied; /* bytes of dirty chunks resynced since open (data
                                  copied or holes zeroed) */
        uint64_t data_bytes;   /* of which data actually read and written */
        uint64_t rate_bps;     /* resync copy rate over the last second */
        int progress;          /* 0..100 */
        int dr_error;          /* last DR error (-errno) or 0 */
        int prod_error;        /* last production error seen by the engine, or 0 */
        bool fault_frozen;     /* dropped to TRACK by a group fault freeze */
        bool bits_pending;     /* dirty bits not yet durable (a persist failed) */
        int64_t frozen_at;     /* instant (usec) DR was frozen at in TRACK; 0: unknown */
        uint64_t al_writes;    /* AL transactions since open */
        /* Copy-on-write sidecar (docs/design/replication.md, "A consistent
         * DR image during resync"). */
        bool sidecar_open;
        uint64_t sidecar_chunks; /* chunks preserved in the open sidecar */
        uint64_t sidecar_bytes;  /* data bytes written into sidecars since open */
};

/* Open (or create) the pair's meta file, fold the activity log into the
 * bitmap. *dirty_out: dirty chunks after the fold. The mirror is not yet
 * attached: call mirror_start with the fence raised. */
int mirror_open(const struct mirror_cfg *cfg, struct mirror **out, uint64_t *dirty_out);
/* Attach the hook in mode (fence raised on prod by the caller). */
int mirror_start(struct mirror *m, enum mirror_mode mode);
/* Switch mode (fence raised on prod). Stops and joins the resync worker
 * first; RESYNC starts it again. RESYNC with nothing dirty goes straight to
 * SYNC (and reports MIRROR_EV_SYNCED). */
int mirror_set_mode(struct mirror *m, enum mirror_mode mode);
enum mirror_mode mirror_mode(struct mirror *m);
/* Stop and join the resync worker without changing the mode (no fence
 * needed): a pause calls it before raising its fence so the fence stays
 * short. Client writes in RESYNC stay correct without the worker. */
void mirror_quiesce(struct mirror *m);
void mirror_stats(struct mirror *m, struct mirror_stats *st);
/* Mark [off, off+len) dirty durably (reprotect's union; tests). */
int mirror_mark_dirty(struct mirror *m, uint64_t off, uint64_t len);
/* Chunks of [off, off + len) (cut at the end of the bitmap) that are not
 * dirty: what mirror_mark_dirty of that range would add (estimates). */
uint64_t mirror_count_clean(struct mirror *m, uint64_t off, uint64_t len);
/* Swap roles (reverse, failover): detach from the current production,
 * attach to new_prod with new_link as the DR leg, in mode. Both volumes'
 * fences are raised by the caller. The bitmap is kept: it names the chunks
 * where the two disks may differ, whichever side is production.
 *   fold_al: the old production may have had writes in flight (failover):
 *            every hot AL extent becomes dirty. Without it (reverse, from
 *            SYNC) both legs are flushed and nothing may be dirty.
 * Takes a reference on new_prod; owns new_link (also on failure). */
/* May m swap roles? Reverse (fold_al false): SYNC, nothing dirty, both legs
 * flushed. Failover: always. Fence raised on prod. */
int mirror_swap_preflight(struct mirror *m, bool fold_al);
int mirror_swap(struct mirror *m, struct volume *new_prod, struct link *new_link, bool fold_al,
                enum mirror_mode mode);
/* Grow the bitmap to cover size_bytes (new chunks clean). Fence raised on
 * prod; the volumes are grown by the caller first. */
int mirror_grow(struct mirror *m, uint64_t size_bytes);
struct volume *mirror_prod(struct mirror *m);
/* In TRACK (after a pause, outside the fence): flush both legs and empty the
 * activity log, so a later failover/reprotect does not resync extents that
 * were merely hot before the pause. No-op in other modes, and when the mode
 * changed while it flushed. A failed DR flush marks the hot extents dirty.
 * Runs on the caller's thread; a pause uses mirror_settle_start. */
int mirror_settle(struct mirror *m);
/* mirror_settle on m's own settle thread (engine/settle.c): returns at once.
 * While a settle runs, a new call asks it for one more round. Joined by
 * every step that replaces what it uses (swap, grow, close). */
void mirror_settle_start(struct mirror *m);
/* Settles started and not finished, process-wide (tests, metrics). */
int mirror_settles_running(void);

/* Detach the hook (fence raised on prod), stop the worker, flush both legs,
 * persist the bitmap and write an empty AL. The mirror is freed; with
 * remove_meta the meta file is unlinked too (pair deleted). */
void mirror_close(struct mirror *m, bool remove_meta);

/* The DR link is down before any write went to it (a remote link that
 * could not connect at start): a DR fault without dirty chunks (TRACK,
 * fault level 5; the group freezes as for any DR fault). */
void mirror_link_down(struct mirror *m, int err);

const char *mirror_mode_name(enum mirror_mode mode);

/* After a failover: the instant the new DR disk (the old production) holds,
 * kept by the sidecar of a later reprotect. */
void mirror_cow_set_instant(struct mirror *m, int64_t usec);

/* The sidecar of a pair whose DR disk another node serves lives on that
 * node (docs/design/replication.md, sidecars, "Remote links"). The service
 * sets these; with none set such a pair gets no sidecar. open: the DR node
 * holds an open sidecar for the pair (created or kept) on return 0;
 * discard: the DR node discarded those pairs' sidecars (S5 among them);
 * group_id (NULL: a pair in no group) names the group whose resync
 * completed, and the hook records that release durably before it sends
 * the discard (replication.md "The release record", R7: called under the
 * group's mutex, before the last member's SYNCED event). discard returns
 * 0 (the sidecars are gone), MIRROR_COW_UNRELEASED when neither the
 * release record nor the discard is known durable (a failover could still
 * roll back to the sidecars: the group is held out of SYNC, R8), or
 * another -errno (the discard failed, the release is recorded). */
#define MIRROR_COW_UNRELEASED (-ENOLCK)
struct mirror_cow_remote_ops {
        int (*open)(const char *pair_id, uint64_t nchunks, uint64_t chunk_bytes, int64_t frozen_at);
        int (*discard)(const char *group_id, const char *const *pair_ids, size_t n);
};
void mirror_cow_remote_set(const struct mirror_cow_remote_ops *ops);

#endif
