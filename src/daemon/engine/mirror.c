/* The mirror of one pair: modes, the client write path, the activity log.
 *
 * Invariants (replication.md): B1 bit durability, B2 clearing only after
 * DR is durable, B3 set-before-write, A1/A2 activity log, R1 range locks.
 * Lock order: volume gate -> range lock -> io -> mu. Link ops (and a
 * link's own locks) run with neither io nor mu held; between a DR submit
 * and its wait only the production leg runs (link.h). */
#include "engine/internal.h"
#include "engine/fence.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "volume/volume.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *mirror_mode_name(enum mirror_mode mode)
{
        switch (mode) {
        case MIRROR_SYNC:
                return "sync";
        case MIRROR_TRACK:
                return "track";
        case MIRROR_RESYNC:
                return "resync";
        }
        return "?";
}

void mirror_emit(struct mirror *m, enum mirror_event ev)
{
        if (m->on_event)
                m->on_event(m->event_ctx, m->pair_id, ev);
}

/* ---- bitmap persistence ---- */

/* Snapshot pages [b0, b1) of the bitmap area (bm | unflushed) under mu. */
static void *snapshot(struct mirror *m, uint64_t b0, uint64_t b1)
{
        uint64_t nw = (b1 - b0) / 8, w0 = b0 / 8;
        uint64_t *buf = malloc(b1 - b0 ? b1 - b0 : 1);

        if (!buf)
                return NULL;
        for (uint64_t i = 0; i < nw; i++)
                buf[i] = m->bm.words[w0 + i] | m->unflushed.words[w0 + i];
        return buf;
}

/* Write the whole bitmap area (bm | unflushed); clears bits_pending on
 * success. Caller holds io (which serialises every bitmap write). */
static int persist_all_locked(struct mirror *m)
{
        uint64_t b0, b1;
        void *buf;
        int rc;

        pthread_mutex_lock(&m->mu);
        if (m->bm.nbits == 0) {
                pthread_mutex_unlock(&m->mu);
                return 0;
        }
        meta_bits_span(m->bm.nbits, 0, m->bm.nbits, &b0, &b1);
        buf = snapshot(m, b0, b1);
        pthread_mutex_unlock(&m->mu);
        rc = buf ? meta_write_area(&m->meta, b0, buf, b1 - b0) : -ENOMEM;
        free(buf);
        m->bits_pending = rc < 0;
        return rc;
}

int mirror_persist_bits(struct mirror *m, uint64_t first, uint64_t count)
{
        uint64_t b0, b1;
        void *buf;
        int rc;

        pthread_mutex_lock(&m->io);
        if (m->bits_pending) {
                /* An earlier persist failed: its bits may lie on any page. */
                rc = persist_all_locked(m);
                pthread_mutex_unlock(&m->io);
                return rc;
        }
        pthread_mutex_lock(&m->mu);
        meta_bits_span(m->bm.nbits, first, count, &b0, &b1);
        buf = snapshot(m, b0, b1);
        pthread_mutex_unlock(&m->mu);
        rc = buf ? meta_write_area(&m->meta, b0, buf, b1 - b0) : -ENOMEM;
        if (rc < 0)
                m->bits_pending = true; /* set in memory, maybe not on disk (B1) */
        pthread_mutex_unlock(&m->io);
        free(buf);
        return rc;
}

int mirror_checkpoint(struct mirror *m)
{
        uint64_t lo, hi, b0, b1;
        void *buf = NULL;
        int rc;

        pthread_mutex_lock(&m->mu);
        lo = m->uf_lo;
        hi = m->uf_hi;
        pthread_mutex_unlock(&m->mu);
        if (lo > hi)
                return 0;
        /* Only the worker adds unflushed bits, and it is the caller: every
         * bit in [lo, hi] was copied before this flush. */
        if ((rc = m->link->ops->flush(m->link)) < 0)
                return rc;
        pthread_mutex_lock(&m->io);
        pthread_mutex_lock(&m->mu);
        bitmap_clear_range(&m->unflushed, lo, hi - lo + 1);
        m->uf_lo = UINT64_MAX;
        m->uf_hi = 0;
        meta_bits_span(m->bm.nbits, lo, hi - lo + 1, &b0, &b1);
        buf = snapshot(m, b0, b1);
        pthread_mutex_unlock(&m->mu);
        rc = buf ? meta_write_area(&m->meta, b0, buf, b1 - b0) : -ENOMEM;
        pthread_mutex_unlock(&m->io);
        free(buf);
        return rc;
}

/* Leave SYNC/RESYNC because of a fault: alone, or (bound to a group) with
 * every member at one instant (F1). Returns the mode m had. Called with
 * no engine lock but the caller's range lock. */
static enum mirror_mode fault_switch(struct mirror *m)
{
        struct mirror_group *g;
        enum mirror_mode was;

        pthread_mutex_lock(&m->mu);
        was = m->mode;
        g = m->group;
        if (!g && was != MIRROR_TRACK) {
                m->mode = MIRROR_TRACK;
                replygen_live_bump(); /* rule L (control-plane.md "The live epoch") */
        }
        pthread_mutex_unlock(&m->mu);
        if (g && was != MIRROR_TRACK)
                fence_fault_freeze(g, m);
        else if (g)
                fence_hold_wait(g); /* a freeze may be running: complete it first */
        return was;
}

/* A fault on one leg: chunks [c0, c1] (none when c0 > c1) dirty durably,
 * the error recorded, TRACK (with the group: fault_switch), reported once
 * per error (the first one of that side since the pair left TRACK). */
static void leg_fault(struct mirror *m, uint64_t c0, uint64_t c1, int err, bool dr)
{
        const char *side = dr ? "DR" : "production";
        enum mirror_mode was;
        bool first;
        int rc;

        pthread_mutex_lock(&m->mu);
        if (c0 <= c1)
                bitmap_set_range(&m->bm, c0, c1 - c0 + 1);
        first = (dr ? m->dr_error : m->prod_error) == 0;
        if (dr) {
                m->dr_error = err;
                atomic_fetch_add(&g_stats.dr_write_errors, 1);
        } else {
                m->prod_error = err;
        }
        replygen_live_bump();
        pthread_mutex_unlock(&m->mu);
        was = fault_switch(m);
        if (c0 <= c1 && (rc = mirror_persist_bits(m, c0, c1 - c0 + 1)) < 0)
                log_error("pair %s: cannot persist dirty bits after a %s fault: %s", m->pair_id,
                          side, strerror(-rc));
        /* Reported by the thread that recorded the pair's first error of
         * this side (a mirror outside TRACK has none: leaving TRACK clears
         * them), whatever mode it found: two writes failing at once, or
         * several members' writes racing a group's freeze, report once.
         * Also when the pair was already tracking (a write that was
         * mirrored when a pause or another member's fault switched it,
         * failing after; a failed flush reporting every AL extent), so the
         * stored row gets the fault level the live view shows. Not a link
         * found down while tracking (no chunk): that is a mirror started
         * with its DR node unreachable, a failed-over pair among them, and
         * whoever started it records the pair (a failover stays
         * active-stopped, as the contract says). */
        if (!first || (was == MIRROR_TRACK && c0 > c1))
                return;
        if (was != MIRROR_TRACK)
                log_warn("pair %s: %s I/O failed (%s): tracking changes until a sync", m->pair_id,
                         side, strerror(-err));
        else
                log_warn("pair %s: %s I/O failed (%s) while tracking: chunks %llu-%llu marked "
                         "dirty",
                         m->pair_id, side, strerror(-err), (unsigned long long)c0,
                         (unsigned long long)c1);
        mirror_emit(m, dr ? MIRROR_EV_DR_FAULT : MIRROR_EV_PROD_FAULT);
}

void mirror_dr_fault(struct mirror *m, uint64_t c0, uint64_t c1, int err)
{
        leg_fault(m, c0, c1, err, true);
}

void mirror_prod_fault(struct mirror *m, uint64_t c0, uint64_t c1, int err)
{
        leg_fault(m, c0, c1, err, false);
}

void mirror_link_down(struct mirror *m, int err)
{
        leg_fault(m, 1, 0, err ? err : -ENOTCONN, true); /* no chunk: nothing was written */
}

/* ---- activity log ---- */

static void al_extents(const struct mirror *m, uint64_t off, uint64_t len, uint64_t *e0,
                       uint64_t *e1)
{
        *e0 = off / m->meta.al_extent_bytes;
        *e1 = (off + (len ? len : 1) - 1) / m->meta.al_extent_bytes;
}

static void al_unref_range(struct mirror *m, uint64_t e0, uint64_t e1)
{
        for (uint64_t e = e0; e <= e1; e++)
                actlog_unref(&m->al, e);
        if (m->al_waiters)
                pthread_cond_broadcast(&m->al_cv);
}

/* Make the extents of [off, off+len) hot and durable in the AL (A1). On
 * failure the in-memory AL is put back as it was, so no extent is ever hot
 * in memory without being in the durable AL. */
static int al_begin(struct mirror *m, uint64_t off, uint64_t len)
{
        uint64_t e0, e1, e, evicted, ext[AL_MAX_SLOTS];
        struct {
                int slot;
                uint64_t extent, old;
        } ins[16];
        uint64_t gone[16];
        unsigned ngone = 0, nins = 0;
        bool changed = false, evict = false, dr_flush_failed = false;
        int rc = 0;

        al_extents(m, off, len, &e0, &e1);
        pthread_mutex_lock(&m->io);
        for (e = e0; e <= e1; e++) {
                while (!actlog_ref(&m->al, e)) {
                        int slot = actlog_insert(&m->al, e, &evicted);

                        if (slot >= 0) {
                                changed = true;
                                evict |= evicted != AL_NONE;
                                if (evicted != AL_NONE && ngone < ARRAY_SIZE(gone))
                                        gone[ngone++] = evicted;
                                if (nins < ARRAY_SIZE(ins)) {
                                        ins[nins].slot = slot;
                                        ins[nins].extent = e;
                                        ins[nins++].old = evicted;
                                }
                                break;
                        }
                        m->al_waiters++;
                        pthread_cond_wait(&m->al_cv, &m->io);
                        m->al_waiters--;
                }
        }
        if (changed) {
                /* An evicted extent must be durable on both legs, and no
                 * dirty bit may be pending, before it leaves the log (A1). */
                if (evict) {
                        if (m->bits_pending)
                                rc = persist_all_locked(m);
                        if (rc == 0)
                                rc = volume_local_flush(m->prod);
                        if (rc == 0 && m->link->ops->flush(m->link) < 0)
                                dr_flush_failed = true;
                }
                if (rc == 0) {
                        unsigned n = actlog_extents(&m->al, ext);
                        rc = meta_write_al(&m->meta, ext, n);
                        m->al_writes++;
                }
                if (rc < 0) {
                        unsigned k = nins;

                        /* Undo in reverse: the durable AL is the old one. */
                        while (k-- > 0)
                                actlog_undo_insert(&m->al, ins[k].slot, ins[k].extent, ins[k].old);
                        for (e = e0; e <= e1; e++) {
                                bool inserted = false;
                                for (unsigned i = 0; i < nins; i++)
                                        inserted |= ins[i].extent == e;
                                if (!inserted)
                                        actlog_unref(&m->al, e);
                        }
                        if (m->al_waiters)
                                pthread_cond_broadcast(&m->al_cv);
                }
        }
        pthread_mutex_unlock(&m->io);
        if (dr_flush_failed) {
                /* Writes acknowledged earlier may not be durable on DR:
                 * every hot extent is suspect; drop to TRACK with them dirty. */
                unsigned n;
                uint64_t per = m->meta.al_extent_bytes / m->chunk_bytes;

                pthread_mutex_lock(&m->io);
                n = actlog_extents(&m->al, ext);
                pthread_mutex_unlock(&m->io);
                for (unsigned i = 0; i < ngone && n < AL_MAX_SLOTS; i++)
                        ext[n++] = gone[i]; /* the evicted extents above all */
                for (unsigned i = 0; i < n; i++)
                        mirror_dr_fault(m, ext[i] * per, ext[i] * per + per - 1, -EIO);
        }
        return rc;
}

static void al_end(struct mirror *m, uint64_t off, uint64_t len)
{
        uint64_t e0, e1;

        al_extents(m, off, len, &e0, &e1);
        pthread_mutex_lock(&m->io);
        al_unref_range(m, e0, e1);
        pthread_mutex_unlock(&m->io);
}

/* ---- client I/O through the hook ---- */

struct io {
        const void *buf; /* NULL: zero */
        uint64_t off, len;
        bool punch;
        unsigned flags;
};

static int leg_prod(struct mirror *m, const struct io *io)
{
        if (io->buf)
                return volume_local_write(m->prod, io->buf, io->len, io->off, io->flags);
        return volume_local_zero(m->prod, io->off, io->len, io->punch, io->flags);
}

static int leg_dr(struct mirror *m, const struct io *io)
{
        if (io->buf)
                return m->link->ops->write(m->link, io->buf, io->len, io->off, io->flags);
        return m->link->ops->zero(m->link, io->off, io->len, io->punch, io->flags);
}

static int mirror_io(struct mirror *m, const struct io *io)
{
        struct mirror_group *hold = NULL;
        uint64_t c0, c1, newly = 0;
        bool mirrored;
        int rc, drc;

        if (io->len == 0)
                return leg_prod(m, io);
        c0 = io->off / m->chunk_bytes;
        c1 = (io->off + io->len - 1) / m->chunk_bytes;
        if ((rc = rangelock_acquire(&m->rl, c0, c1)) < 0)
                return rc;
        pthread_mutex_lock(&m->mu);
        mirrored = m->mode == MIRROR_SYNC ||
                   (m->mode == MIRROR_RESYNC && bitmap_count_range(&m->bm, c0, c1 - c0 + 1) == 0);
        if (!mirrored) {
                newly = bitmap_set_range(&m->bm, c0, c1 - c0 + 1);
                if (newly) /* a new dirty chunk: dirty bytes, progress */
                        replygen_live_bump();
                hold = m->fault_hold ? m->group : NULL;
        } else {
                m->mirrored_inflight++;
        }
        pthread_mutex_unlock(&m->mu);

        if (!mirrored) {
                /* B3: the bit is durable before production changes. Under
                 * our range lock a set bit is already durable (whoever set
                 * it persisted it before releasing the range). */
                if (newly && (rc = mirror_persist_bits(m, c0, c1 - c0 + 1)) < 0) {
                        log_error("pair %s: cannot persist the dirty bitmap: %s", m->pair_id,
                                  strerror(-rc));
                        rc = -EIO;
                } else {
                        rc = leg_prod(m, io);
                }
                /* F1: not on DR, so not acknowledged before a running fault
                 * freeze has switched every member of the group. */
                if (hold)
                        fence_hold_wait(hold);
        } else if ((rc = mirror_cow(m, c0, c1)) < 0) {
                /* S1: DR is not written unless the chunks are preserved. */
                mirror_dr_fault(m, c0, c1, rc);
                pthread_mutex_lock(&m->io);
                rc = m->bits_pending ? -EIO : 0; /* B3 */
                pthread_mutex_unlock(&m->io);
                if (rc == 0)
                        rc = leg_prod(m, io);
        } else if ((rc = al_begin(m, io->off, io->len)) < 0) {
                log_error("pair %s: cannot write the activity log: %s", m->pair_id, strerror(-rc));
                rc = -EIO;
        } else {
                int64_t t0 = util_mono_usec();
                struct link_op op;
                bool issued = false;

                /* Both legs in flight at once (replication.md, "Parallel
                 * legs"): the DR write leaves first, production runs while
                 * it travels, then we wait for it. The range lock keeps
                 * every overlapping client write and resync copy out until
                 * both legs are done; the AL extent is already durable. */
                drc = 0;
                if (io->buf && m->link->ops->submit) {
                        drc = m->link->ops->submit(m->link, io->buf, io->len, io->off, io->flags,
                                                   &op);
                        issued = drc == 0;
                }
                rc = leg_prod(m, io);
                if (issued)
                        drc = m->link->ops->wait(m->link, &op);
                else if (drc == 0 && rc == 0)
                        drc = leg_dr(m, io); /* no submit (zero, local link): serial */
                if (rc < 0)
                        /* Part of the write may have landed on production
                         * only (and all of it on DR, if its leg was
                         * issued): the chunks may differ (B1). */
                        mirror_prod_fault(m, c0, c1, rc);
                if (drc < 0)
                        mirror_dr_fault(m, c0, c1, drc);
                al_end(m, io->off, io->len);
                if (rc == 0)
                        stats_hist_observe_ns(&g_stats.mirrored_write,
                                              (uint64_t)(util_mono_usec() - t0) * 1000);
        }
        if (mirrored) {
                pthread_mutex_lock(&m->mu);
                assert(m->mirrored_inflight > 0);
                if (--m->mirrored_inflight == 0 && m->mirrored_waiters)
                        pthread_cond_broadcast(&m->mirrored_cv);
                pthread_mutex_unlock(&m->mu);
        }
        rangelock_release(&m->rl, c0, c1);
        return rc;
}

void mirror_wait_mirrored(struct mirror *m)
{
        pthread_mutex_lock(&m->mu);
        while (m->mirrored_inflight > 0) {
                m->mirrored_waiters++;
                pthread_cond_wait(&m->mirrored_cv, &m->mu);
                m->mirrored_waiters--;
        }
        pthread_mutex_unlock(&m->mu);
}

static int hook_write(void *ctx, struct volume *v, const void *buf, size_t len, uint64_t off,
                      unsigned flags)
{
        struct io io = {.buf = buf, .off = off, .len = len, .flags = flags};
        struct mirror *m = ctx;
        int64_t t0 = util_mono_usec();
        int rc = mirror_io(m, &io);

        (void)v;
        /* client write latency, for the adaptive resync throttle */
        atomic_fetch_add(&m->wlat_usec, (uint64_t)(util_mono_usec() - t0));
        atomic_fetch_add(&m->wlat_n, 1);
        return rc;
}

static int hook_zero(void *ctx, struct volume *v, uint64_t off, uint64_t len, bool punch,
                     unsigned flags)
{
        struct io io = {.buf = NULL, .off = off, .len = len, .punch = punch, .flags = flags};

        (void)v;
        return mirror_io(ctx, &io);
}

static int hook_flush(void *ctx, struct volume *v)
{
        struct mirror *m = ctx;
        enum mirror_mode mode;
        int rc = volume_local_flush(v), drc;

        pthread_mutex_lock(&m->mu);
        mode = m->mode;
        pthread_mutex_unlock(&m->mu);
        if (rc == 0 && mode != MIRROR_TRACK && (drc = m->link->ops->flush(m->link)) < 0) {
                /* DR may have lost un-flushed writes: everything hot is suspect. */
                uint64_t ext[AL_MAX_SLOTS];
                unsigned n;

                pthread_mutex_lock(&m->io);
                n = actlog_extents(&m->al, ext);
                pthread_mutex_unlock(&m->io);
                for (unsigned i = 0; i < n; i++) {
                        uint64_t per = m->meta.al_extent_bytes / m->chunk_bytes;
                        mirror_dr_fault(m, ext[i] * per, ext[i] * per + per - 1, drc);
                }
                if (n == 0)
                        mirror_dr_fault(m, 0, 0, drc);
        }
        return rc;
}

static const struct volume_hook_ops g_hook = {
    .write = hook_write,
    .zero = hook_zero,
    .flush = hook_flush,
};

static int al_unsettle_locked(struct mirror *m);

/* ---- lifecycle ---- */

static void mirror_free(struct mirror *m)
{
        settle_join(m);
        pthread_mutex_destroy(&m->settle_mu);
        sidecar_free(m->sc);
        if (m->meta.fd >= 0)
                meta_close(&m->meta);
        bitmap_free(&m->bm);
        bitmap_free(&m->unflushed);
        rangelock_destroy(&m->rl);
        pthread_mutex_destroy(&m->io);
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->al_cv);
        pthread_cond_destroy(&m->mirrored_cv);
        if (m->link)
                m->link->ops->close(m->link);
        if (m->prod)
                volume_put(m->prod);
        free(m);
}

/* A2: every AL extent becomes dirty, durably, then the AL is emptied. */
static int fold_al(struct mirror *m, const uint64_t *ext, unsigned n)
{
        uint64_t per = m->meta.al_extent_bytes / m->chunk_bytes;
        int rc;

        if (n == 0)
                return 0;
        for (unsigned i = 0; i < n; i++)
                bitmap_set_range(&m->bm, ext[i] * per, per ? per : 1);
        log_warn("pair %s: unclean shutdown: %u hot extent(s) of the activity log marked dirty",
                 m->pair_id, n);
        if ((rc = meta_write_all_bits(&m->meta, &m->bm)) < 0)
                return rc;
        return meta_write_al(&m->meta, NULL, 0);
}

int mirror_open(const struct mirror_cfg *cfg, struct mirror **out, uint64_t *dirty_out)
{
        struct mirror *m = calloc(1, sizeof(*m));
        uint64_t ext[AL_MAX_SLOTS];
        unsigned n = 0;
        int rc;

        if (!m) {
                cfg->link->ops->close(cfg->link);
                return -ENOMEM;
        }
        snprintf(m->pair_id, sizeof(m->pair_id), "%s", cfg->pair_id);
        snprintf(m->meta_path, sizeof(m->meta_path), "%s", cfg->meta_path);
        volume_get(cfg->prod);
        m->prod = cfg->prod;
        m->link = cfg->link;
        m->on_event = cfg->on_event;
        m->event_ctx = cfg->event_ctx;
        m->meta.fd = -1;
        m->mode = MIRROR_TRACK;
        m->uf_lo = UINT64_MAX;
        rangelock_init(&m->rl);
        pthread_mutex_init(&m->io, NULL);
        pthread_mutex_init(&m->mu, NULL);
        pthread_cond_init(&m->al_cv, NULL);
        pthread_cond_init(&m->mirrored_cv, NULL);
        pthread_mutex_init(&m->settle_mu, NULL);
        actlog_init(&m->al, AL_MAX_SLOTS);

        if (cfg->create) {
                unlink(cfg->meta_path); /* a crashed earlier create */
                rc = meta_create(cfg->meta_path, cfg->pair_id, cfg->chunk_bytes,
                                 volume_size(cfg->prod), !cfg->clean, &m->meta, &m->bm);
        } else {
                rc = meta_open(cfg->meta_path, &m->meta, &m->bm, ext, &n);
        }
        if (rc < 0) {
                log_error("pair %s: meta file %s: %s", cfg->pair_id, cfg->meta_path,
                          rc == -EPROTO ? "damaged header" : strerror(-rc));
                goto fail;
        }
        m->chunk_bytes = m->meta.chunk_bytes;
        if ((rc = bitmap_init(&m->unflushed, m->bm.nbits)) < 0 || (rc = fold_al(m, ext, n)) < 0)
                goto fail;
        if (volume_size(m->prod) > m->meta.size_bytes &&
            (rc = meta_grow(&m->meta, &m->bm, volume_size(m->prod))) == 0)
                rc = bitmap_grow(&m->unflushed, m->bm.nbits);
        if (rc == 0)
                rc = mirror_cow_open(m);
        if (rc < 0)
                goto fail;
        *dirty_out = m->bm.nset;
        *out = m;
        return 0;
fail:
        mirror_free(m);
        return rc;
}

int mirror_set_mode(struct mirror *m, enum mirror_mode mode)
{
        bool synced = false;

        assert(volume_fenced(m->prod));
        resync_stop(m);
        /* The AL write-back and the switch in one io section: a settle
         * (settle.c) either empties the AL before it (and the AL is written
         * back here) or sees the new mode_gen and leaves the AL alone.
         * The switch to TRACK writes nothing back and takes no io: a
         * pause's gates are closed but not drained (fence_pause), and a
         * write in flight may hold io across an AL eviction's flushes. A
         * settle cannot race it: it acts only in TRACK, and from TRACK
         * there is no switch to TRACK that changes the mode. */
        if (mode != MIRROR_TRACK) {
                int rc;

                pthread_mutex_lock(&m->io);
                if ((rc = al_unsettle_locked(m)) < 0 || (rc = mirror_cow_resume(m)) < 0) {
                        pthread_mutex_unlock(&m->io);
                        return rc;
                }
        }
        pthread_mutex_lock(&m->mu);
        if (mode == MIRROR_SYNC && m->bm.nset > 0) {
                pthread_mutex_unlock(&m->mu);
                pthread_mutex_unlock(&m->io);
                return -EINVAL; /* M1: SYNC only with nothing dirty; use RESYNC */
        }
        /* Leaving TRACK takes a drained fence (volume_fence_raise): no
         * write of the old mode may still be in flight. */
        assert(mode == MIRROR_TRACK || m->mirrored_inflight == 0);
        if (mode == MIRROR_RESYNC && m->bm.nset == 0) {
                synced = m->mode != MIRROR_SYNC;
                mode = MIRROR_SYNC;
        }
        m->mode = mode;
        /* A planned switch. Out of TRACK the fence is drained, so no freeze
         * runs. Into TRACK (a pause) a freeze may be running: its hold is
         * not needed then, the pause holds every answer until each member
         * is in TRACK (fence_pause). */
        m->fault_hold = false;
        if (mode != MIRROR_TRACK) {
                m->dr_error = 0;
                m->prod_error = 0;
                m->fault_frozen = false;
                m->frozen_at = 0;
        }
        if (mode == MIRROR_RESYNC)
                m->dirty_at_start = m->bm.nset;
        m->mode_gen++;
        replygen_live_bump();
        pthread_mutex_unlock(&m->mu);
        if (mode != MIRROR_TRACK)
                pthread_mutex_unlock(&m->io);
        if (mode == MIRROR_RESYNC)
                return resync_start(m);
        if (mode == MIRROR_SYNC && mirror_cow_synced(m) == MIRROR_COW_UNRELEASED) {
                /* R8: frozen with its group, not in sync. */
                mirror_emit(m, MIRROR_EV_FROZEN);
                return 0;
        }
        if (synced)
                mirror_emit(m, MIRROR_EV_SYNCED);
        return 0;
}

int mirror_start(struct mirror *m, enum mirror_mode mode)
{
        assert(volume_fenced(m->prod));
        volume_set_hook(m->prod, &g_hook, m);
        m->attached = true;
        return mirror_set_mode(m, mode);
}

enum mirror_mode mirror_mode(struct mirror *m)
{
        enum mirror_mode mode;

        pthread_mutex_lock(&m->mu);
        mode = m->mode;
        pthread_mutex_unlock(&m->mu);
        return mode;
}

void mirror_stats(struct mirror *m, struct mirror_stats *st)
{
        memset(st, 0, sizeof(*st));
        pthread_mutex_lock(&m->mu);
        st->mode = m->mode;
        st->chunk_bytes = m->chunk_bytes;
        st->dirty_chunks = m->bm.nset;
        if (m->bm.nset > m->dirty_at_start)
                m->dirty_at_start = m->bm.nset;
        st->dirty_at_start = m->dirty_at_start;
        st->dr_error = m->dr_error;
        st->prod_error = m->prod_error;
        st->fault_frozen = m->fault_frozen;
        st->frozen_at = m->mode == MIRROR_TRACK ? m->frozen_at : 0;
        if (m->mode == MIRROR_SYNC || m->bm.nset == 0)
                st->progress = 100;
        else if (m->mode == MIRROR_RESYNC && m->dirty_at_start)
                st->progress = (int)(100 * (m->dirty_at_start - m->bm.nset) / m->dirty_at_start);
        /* Under mu, where their writers bump the live epoch (rule L). */
        st->bytes_copied = atomic_load(&m->bytes_copied);
        st->rate_bps = st->mode == MIRROR_RESYNC ? atomic_load(&m->rate_bps) : 0;
        pthread_mutex_unlock(&m->mu);
        st->data_bytes = atomic_load(&m->data_bytes);
        /* Not under io: io is held across the meta file's fdatasync (and an
         * AL eviction's flush of both legs), so a GET or a group commit that
         * waited for it stalled for the writers' flushes under load (a pause
         * request waited 0.4-1.4 s here, 16 members in a row). */
        st->al_writes = atomic_load(&m->al_writes);
        st->bits_pending = atomic_load(&m->bits_pending);
        if (m->sc) {
                struct sidecar_stats ss;

                sidecar_stats(m->sc, &ss);
                st->sidecar_open = ss.open;
                st->sidecar_chunks = ss.chunks;
                st->sidecar_bytes = ss.total_bytes;
                /* The group's consistent DR instant is the sidecar's. */
                if (ss.open && st->mode == MIRROR_TRACK)
                        st->frozen_at = ss.frozen_at;
        }
}

int mirror_mark_dirty(struct mirror *m, uint64_t off, uint64_t len)
{
        uint64_t c0, c1;

        if (len == 0)
                return 0;
        c0 = off / m->chunk_bytes;
        c1 = (off + len - 1) / m->chunk_bytes;
        pthread_mutex_lock(&m->mu);
        if (bitmap_set_range(&m->bm, c0, c1 - c0 + 1))
                replygen_live_bump();
        pthread_mutex_unlock(&m->mu);
        return mirror_persist_bits(m, c0, c1 - c0 + 1);
}

uint64_t mirror_count_clean(struct mirror *m, uint64_t off, uint64_t len)
{
        uint64_t c0, c1, n;

        if (len == 0)
                return 0;
        c0 = off / m->chunk_bytes;
        c1 = (off + len - 1) / m->chunk_bytes;
        pthread_mutex_lock(&m->mu);
        if (c1 >= m->bm.nbits)
                c1 = m->bm.nbits ? m->bm.nbits - 1 : 0;
        n = c0 <= c1 && m->bm.nbits ? (c1 - c0 + 1) - bitmap_count_range(&m->bm, c0, c1 - c0 + 1)
                                    : 0;
        pthread_mutex_unlock(&m->mu);
        return n;
}

struct volume *mirror_prod(struct mirror *m)
{
        return m->prod;
}

int mirror_swap_preflight(struct mirror *m, bool fold_al)
{
        int rc;

        assert(volume_fenced(m->prod));
        if (fold_al)
                return 0; /* failover: any state, also with a fault */
        resync_stop(m);
        if (mirror_mode(m) != MIRROR_SYNC)
                return -EBUSY;
        if ((rc = volume_local_flush(m->prod)) < 0 || (rc = m->link->ops->flush(m->link)) < 0)
                return rc;
        pthread_mutex_lock(&m->mu);
        rc = m->bm.nset > 0 ? -EBUSY : 0; /* reverse needs DR == production */
        m->preflight_epoch = rc == 0 ? volume_fence_epoch(m->prod) : 0;
        pthread_mutex_unlock(&m->mu);
        return rc;
}

/* The checks of a reverse again, without the flushes when a preflight in
 * this same fenced period already made both legs durable (no client write
 * and no resync since: the fence is up and resync_stop ran). */
static int swap_recheck(struct mirror *m, bool fold_al)
{
        uint64_t epoch = volume_fence_epoch(m->prod);
        bool fresh;
        int rc;

        pthread_mutex_lock(&m->mu);
        fresh = !fold_al && epoch != 0 && m->preflight_epoch == epoch;
        m->preflight_epoch = 0;
        rc = fresh && (m->mode != MIRROR_SYNC || m->bm.nset > 0) ? -EBUSY : 0;
        pthread_mutex_unlock(&m->mu);
        if (!fresh)
                return mirror_swap_preflight(m, fold_al);
        return rc;
}

int mirror_swap(struct mirror *m, struct volume *new_prod, struct link *new_link, bool fold_al,
                enum mirror_mode mode)
{
        uint64_t ext[AL_MAX_SLOTS];
        unsigned n;
        int rc;

        assert(volume_fenced(m->prod) && volume_fenced(new_prod));
        settle_join(m); /* it uses the link and production being replaced */
        /* Every check first: a swap that fails leaves the mirror as it was
         * (hook attached, AL untouched). */
        if ((rc = swap_recheck(m, fold_al)) < 0) {
                new_link->ops->close(new_link);
                return rc;
        }
        resync_stop(m);
        if ((rc = mirror_cow_rollback(m, fold_al)) < 0) {
                new_link->ops->close(new_link);
                return rc; /* nothing swapped; the sidecar stays for a retry */
        }
        if (m->attached) {
                volume_set_hook(m->prod, NULL, NULL);
                m->attached = false;
        }
        /* The fence drained every client write: no AL reference is held. */
        pthread_mutex_lock(&m->io);
        n = m->al_settled ? 0 : actlog_extents(&m->al, ext);
        if (fold_al) {
                uint64_t per = m->meta.al_extent_bytes / m->chunk_bytes;

                pthread_mutex_lock(&m->mu);
                for (unsigned i = 0; i < n; i++)
                        bitmap_set_range(&m->bm, ext[i] * per, per);
                replygen_live_bump();
                pthread_mutex_unlock(&m->mu);
        }
        pthread_mutex_lock(&m->mu);
        m->mode = MIRROR_TRACK;
        m->mode_gen++;
        replygen_live_bump();
        pthread_mutex_unlock(&m->mu);
        /* The bitmap (with the worker's not yet flushed clears, B2) must be
         * durable before the AL that protected those extents is emptied. */
        rc = persist_all_locked(m);
        if (rc == 0)
                rc = meta_write_al(&m->meta, NULL, 0);
        if (rc == 0) {
                actlog_clear(&m->al);
                m->al_settled = false;
        } else {
                log_error("pair %s: cannot persist the bitmap at the role swap (kept in memory; "
                          "the activity log stays hot)",
                          m->pair_id);
        }
        pthread_mutex_unlock(&m->io);
        if (fold_al)
                volume_local_flush(m->prod); /* best effort: it may be the faulty side */
        m->link->ops->close(m->link);
        m->link = new_link;
        volume_get(new_prod);
        volume_put(m->prod);
        m->prod = new_prod;
        volume_set_hook(m->prod, &g_hook, m);
        m->attached = true;
        return mirror_set_mode(m, mode);
}

/* Still the TRACK period a settle began in? Caller holds io. */
static bool settle_current(struct mirror *m, uint64_t gen)
{
        bool cur;

        pthread_mutex_lock(&m->mu);
        cur = m->mode == MIRROR_TRACK && m->mode_gen == gen;
        pthread_mutex_unlock(&m->mu);
        return cur;
}

int mirror_settle(struct mirror *m)
{
        uint64_t ext[AL_MAX_SLOTS], gen, per;
        bool busy = false;
        unsigned n;
        int rc;

        pthread_mutex_lock(&m->io);
        pthread_mutex_lock(&m->mu);
        gen = m->mode_gen;
        busy = m->mode != MIRROR_TRACK;
        pthread_mutex_unlock(&m->mu);
        if (busy || m->al_settled || actlog_extents(&m->al, ext) == 0) {
                pthread_mutex_unlock(&m->io);
                return 0;
        }
        pthread_mutex_unlock(&m->io);
        /* TRACK writes never use the AL, so once both legs are durable every
         * extent in it is settled (A1). */
        if ((rc = volume_local_flush(m->prod)) < 0)
                return rc; /* the AL stays hot: folded at the next start */
        if ((rc = m->link->ops->flush(m->link)) < 0) {
                /* DR may have lost writes it had acknowledged: every hot
                 * extent is suspect (as for a failed client FLUSH). Only
                 * in the same TRACK period: bits may not appear in SYNC (M1),
                 * and a later period settles (or faults) on its own. */
                pthread_mutex_lock(&m->io);
                if (!settle_current(m, gen)) {
                        pthread_mutex_unlock(&m->io);
                        return rc;
                }
                n = actlog_extents(&m->al, ext);
                per = m->meta.al_extent_bytes / m->chunk_bytes;
                pthread_mutex_lock(&m->mu);
                for (unsigned i = 0; i < n; i++)
                        bitmap_set_range(&m->bm, ext[i] * per, per ? per : 1);
                replygen_live_bump();
                pthread_mutex_unlock(&m->mu);
                if (persist_all_locked(m) < 0)
                        log_error("pair %s: cannot persist dirty bits after a failed DR flush",
                                  m->pair_id);
                pthread_mutex_unlock(&m->io);
                log_warn("pair %s: DR flush failed after the pause (%s): %u hot extent(s) of "
                         "the activity log marked dirty",
                         m->pair_id, strerror(-rc), n);
                return rc;
        }
        pthread_mutex_lock(&m->io);
        for (unsigned i = 0; i < m->al.nslots; i++)
                busy |= m->al.slots[i].refs > 0;
        if (!busy && settle_current(m, gen) && m->bits_pending &&
            (rc = persist_all_locked(m)) < 0) {
                pthread_mutex_unlock(&m->io);
                return rc; /* the AL keeps protecting what the bitmap may lack */
        }
        if (!busy && settle_current(m, gen)) {
                rc = meta_write_al(&m->meta, NULL, 0);
                m->al_settled = rc == 0;
        }
        pthread_mutex_unlock(&m->io);
        return rc;
}

/* Mirroring resumes: make the warm in-memory AL durable again (A1).
 * Caller holds io. */
static int al_unsettle_locked(struct mirror *m)
{
        uint64_t ext[AL_MAX_SLOTS];
        int rc = 0;

        if (m->al_settled) {
                rc = meta_write_al(&m->meta, ext, actlog_extents(&m->al, ext));
                if (rc == 0) {
                        m->al_settled = false;
                        m->al_writes++;
                }
        }
        return rc;
}

int mirror_grow(struct mirror *m, uint64_t size_bytes)
{
        enum mirror_mode mode;
        int rc;

        assert(volume_fenced(m->prod));
        settle_join(m);
        resync_stop(m);
        /* meta_grow rewrites the last bitmap page from bm alone: bring the
         * worker's cleared bits to DR durably first (B2). */
        if ((rc = mirror_checkpoint(m)) < 0)
                return rc;
        pthread_mutex_lock(&m->io);
        pthread_mutex_lock(&m->mu);
        rc = meta_grow(&m->meta, &m->bm, size_bytes);
        if (rc == 0)
                rc = bitmap_grow(&m->unflushed, m->bm.nbits);
        mode = m->mode;
        replygen_live_bump();
        pthread_mutex_unlock(&m->mu);
        if (rc == 0 && m->bits_pending)
                rc = persist_all_locked(m);
        pthread_mutex_unlock(&m->io);
        if (rc == 0 && mode == MIRROR_RESYNC)
                rc = resync_start(m);
        return rc;
}

void mirror_close(struct mirror *m, bool remove_meta)
{
        int rc;

        settle_join(m);
        fence_group_leave(m);
        if (m->attached) {
                assert(volume_fenced(m->prod));
                volume_set_hook(m->prod, NULL, NULL);
                m->attached = false;
        }
        resync_stop(m); /* checkpoints what it copied */
        /* No client write is in flight (fence) and the worker is gone:
         * flush both legs, then the AL can be emptied (A1). */
        rc = volume_local_flush(m->prod);
        if (rc == 0 && m->link->ops->flush(m->link) == 0) {
                pthread_mutex_lock(&m->io);
                if (persist_all_locked(m) < 0 || meta_write_al(&m->meta, NULL, 0) < 0)
                        log_error("pair %s: cannot close the meta file cleanly (the activity log "
                                  "stays hot)",
                                  m->pair_id);
                actlog_clear(&m->al);
                m->al_settled = false;
                pthread_mutex_unlock(&m->io);
        } else {
                log_warn("pair %s: flush failed at close; the activity log stays hot", m->pair_id);
        }
        mirror_cow_close(m, remove_meta);
        if (remove_meta && unlink(m->meta_path) < 0)
                log_warn("pair %s: unlink %s: %s", m->pair_id, m->meta_path, strerror(errno));
        mirror_free(m);
}
