/* The group fence: every step that must happen at one instant across the
 * mirrors of a consistency group, and the only code that raises or lowers
 * a volume fence on behalf of the service. Design: docs/design/faults.md.
 *
 * F1: between the moment the first member of a group leaves SYNC and the
 * moment the last one has, no write is acknowledged on any member without
 * its DR copy.
 *
 * Planned steps (pause, sync, swap, grow, attach, detach) take the caller's
 * description of the members; the caller serialises actions on one group.
 * Unplanned steps (a DR fault on any member) go through the mirror_group the
 * members are bound to: the first fault freezes every member. */
#ifndef EVSREP_ENGINE_FENCE_H
#define EVSREP_ENGINE_FENCE_H

#include "engine/mirror.h"

#include <stddef.h>
#include <stdint.h>

struct volume;
struct mirror_group;

struct fence_member {
        struct mirror *m;    /* NULL: no running mirror, skipped */
        struct volume *prod; /* production disk */
        struct volume *dr;   /* DR disk (swap, grow); NULL: on another node */
        struct link *link;   /* that node's link (grow reconnects it), else NULL */
};

struct fence_result {
        int64_t fence_usec;    /* how long the fences were up */
        int64_t frozen_at;     /* wall-clock instant of the switch (usec), 0: none */
        int64_t preflush_usec; /* fence_swap: the flushes before the fence */
        int64_t inflight_usec; /* fence_pause: the wait, after the fence, for the
                                  mirrored writes in flight at the switch */
};

/* ---- groups (fault freeze) ---- */

struct mirror_group *mirror_group_new(const char *group_id);
/* Members must be empty (set_members with n = 0). */
void mirror_group_free(struct mirror_group *g);
/* Bind exactly these mirrors to g (others leave it). A mirror is in at most
 * one group. -ENOMEM leaves the old set. */
int mirror_group_set_members(struct mirror_group *g, struct mirror *const *m, size_t n);
/* The group's resync throttle (engine/throttle.h), owned by g. */
struct throttle *mirror_group_throttle(struct mirror_group *g);

/* ---- planned steps ---- */

/* Pause: one fence over every production disk of the members not already in
 * TRACK, closed but not drained; each switches to TRACK; the fences go
 * down; then the mirrored writes that were in flight at the switch are
 * waited for (no DR changes after the return), and each member settles
 * behind the return. was[i]:
 * the mode member i had, or -1 when it was skipped (no mirror, already
 * TRACK, or switched by a fault freeze first: fence.c). res->frozen_at is
 * 0 when the pause switched nothing itself. */
int fence_pause(const struct fence_member *fm, size_t n, int *was, struct fence_result *res);
/* Sync: RESYNC on every member in TRACK (each under its own fence: no
 * instant to keep when replication resumes). */
int fence_sync(const struct fence_member *fm, size_t n);

/* Swap (reverse, failover) with the callbacks of the caller:
 *   preflight(i)  may member i swap? (called for every member first, also
 *                 one without a running mirror, which must refuse)
 *   swap(i)       swap the roles of member i (every fence raised)
 *   unswap(i)     undo swap(i) (a later member failed, or commit failed)
 *   commit()      record the new roles durably, fences still raised
 *   lockdown(i)   an unswap failed: make both disks of member i read-only
 * Either every member is swapped and committed, or none is (and the error
 * of the failing step is returned), or, when undoing failed, every disk is
 * locked down and -ENOTRECOVERABLE is returned. */
struct fence_swap_ops {
        int (*preflight)(void *ctx, size_t i);
        int (*swap)(void *ctx, size_t i);
        int (*unswap)(void *ctx, size_t i);
        int (*commit)(void *ctx);
        void (*lockdown)(void *ctx, size_t i);
        /* Flush DR too before raising the fences (reverse; a failover
         * flushes the old production only, DR may be unreachable). */
        bool flush_dr_first;
};
int fence_swap(const struct fence_member *fm, size_t n, const struct fence_swap_ops *ops, void *ctx,
               struct fence_result *res);

/* Grow both disks of one member and its bitmap (DR first, then production,
 * then the bitmap). On failure the disks are shrunk back to old_size. A DR
 * on another node (dr NULL) was grown by that node first; the link is
 * reconnected under the fence to see the new size. */
int fence_grow(const struct fence_member *fm, uint64_t old_size, uint64_t new_size);

/* Drill clone capture (service/clone.c): one fence over every production
 * disk of the members; under it, every member must be in mode `want`
 * (otherwise -EAGAIN and nothing is captured); then capture(ctx, i) for
 * each member, in one fenced period, so the DR disks are captured at one
 * instant (no mirrored write in flight, no mode change). res->frozen_at:
 * the instant (wall clock, usec). */
int fence_capture(const struct fence_member *fm, size_t n, enum mirror_mode want,
                  void (*capture)(void *ctx, size_t i), void *ctx, struct fence_result *res);

/* Attach a mirror in mode / detach and close it, under prod's fence. */
int fence_mirror_start(struct mirror *m, struct volume *prod, enum mirror_mode mode);
void fence_mirror_close(struct mirror *m, struct volume *prod, bool remove_meta);
/* Grow an unpaired disk with no client write half way. */
int fence_resize(struct volume *v, uint64_t size_bytes);
/* Change a disk's client access with no client write half way. */
void fence_set_read_only(struct volume *v, bool ro);

/* ---- for mirror.c ---- */

/* A DR fault on origin (bound to g): switch every member of g to TRACK at
 * one instant (F1, the acknowledgement fence). Returns after the switch. */
void fence_fault_freeze(struct mirror_group *g, struct mirror *origin);
/* A not-mirrored write on a member with fault_hold: wait until the freeze
 * that set the hold is complete before acknowledging. */
void fence_hold_wait(struct mirror_group *g);

#endif
