/* The mirror's copy-on-write sidecar hooks: when a sidecar opens, which DR
 * writes preserve first, when it is discarded, and the failover rollback.
 * Design: docs/design/replication.md, "A consistent DR image during
 * resync" (S1-S4). The sidecar itself: sidecar.c. */
#include "engine/internal.h"
#include "engine/fence.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/volume.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COW_BATCH_BYTES (4u << 20)
/* The resync preserves ahead: up to 16 MiB of dirty chunks within a span of
 * 65536 chunks per preserve (one read pass, two fdatasyncs). */
#define COW_AHEAD_BYTES (16u << 20)
#define COW_AHEAD_SPAN  UINT64_C(65536)

/* pair-<id>.meta -> pair-<id>.cow */
static void cow_path(const char *meta_path, char *buf, size_t len)
{
        size_t n = strlen(meta_path);

        if (n > 5 && strcmp(meta_path + n - 5, ".meta") == 0)
                snprintf(buf, len, "%.*s.cow", (int)(n - 5), meta_path);
        else
                snprintf(buf, len, "%s.cow", meta_path);
}

int mirror_cow_open(struct mirror *m)
{
        char path[4200];
        int rc;

        cow_path(m->meta_path, path, sizeof(path));
        if ((rc = sidecar_new(path, m->pair_id, m->chunk_bytes, &m->sc)) < 0)
                return rc;
        rc = sidecar_load(m->sc);
        if (rc > 0 && !m->link->ops->read)
                log_warn("pair %s: a sidecar exists but the DR link cannot read: a failover "
                         "still rolls back, new writes are not preserved",
                         m->pair_id);
        return rc < 0 ? rc : 0;
}

void mirror_cow_close(struct mirror *m, bool remove)
{
        char path[4200];

        if (!m->sc || !remove)
                return;
        sidecar_discard(m->sc);
        cow_path(m->meta_path, path, sizeof(path));
        unlink(path); /* a file never loaded (damaged) or left behind */
}

static bool sidecar_disabled(void);

static pthread_mutex_t g_remote_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mirror_cow_remote_ops g_remote;

void mirror_cow_remote_set(const struct mirror_cow_remote_ops *ops)
{
        pthread_mutex_lock(&g_remote_mu);
        if (ops)
                g_remote = *ops;
        else
                memset(&g_remote, 0, sizeof(g_remote));
        pthread_mutex_unlock(&g_remote_mu);
}

static struct mirror_cow_remote_ops remote_get(void)
{
        struct mirror_cow_remote_ops r;

        pthread_mutex_lock(&g_remote_mu);
        r = g_remote;
        pthread_mutex_unlock(&g_remote_mu);
        return r;
}

int mirror_cow_remote_discard(const char *group_id, const char *const *pair_ids, size_t n)
{
        struct mirror_cow_remote_ops r = remote_get();

        if (!n || !r.discard)
                return 0;
        return r.discard(group_id, pair_ids, n);
}

/* The DR node keeps the sidecar of a remote DR disk (R2: before the resync
 * sends anything, the DR node answered). */
static int cow_resume_remote(struct mirror *m, uint64_t nchunks, int64_t inst)
{
        struct mirror_cow_remote_ops r = remote_get();
        int rc;

        if (!r.open)
                return 0;
        if ((rc = r.open(m->pair_id, nchunks, m->chunk_bytes, inst)) < 0) {
                log_error("pair %s: the DR node cannot open the sidecar: %s", m->pair_id,
                          strerror(-rc));
                return rc;
        }
        log_info("pair %s: sidecar open on the DR node: the DR image is kept recoverable during "
                 "the resync",
                 m->pair_id);
        return 0;
}

int mirror_cow_resume(struct mirror *m)
{
        int64_t inst;
        uint64_t nchunks;
        bool from_track;
        int rc;

        if (sidecar_discard_pending(m->sc))
                sidecar_discard(m->sc); /* S5: no group bound it since the restart */
        pthread_mutex_lock(&m->mu);
        from_track = m->mode == MIRROR_TRACK;
        inst = m->cow_at ? m->cow_at : m->frozen_at;
        nchunks = m->bm.nbits;
        if (from_track)
                m->cow_at = 0;
        pthread_mutex_unlock(&m->mu);
        /* Kept: an open sidecar holds the older instant, the group's only
         * consistent one until every member is in SYNC. */
        if (!from_track || !inst || !nchunks || sidecar_disabled())
                return 0;
        /* A remote DR disk: the sidecar sits on the DR node, where a
         * failover from the survivor finds it (replication.md, sidecars:
         * remote links). */
        if (!link_is_local(m->link))
                return cow_resume_remote(m, nchunks, inst);
        if (!m->link->ops->read || sidecar_is_open(m->sc))
                return 0;
        if ((rc = sidecar_create(m->sc, nchunks, inst)) < 0) {
                log_error("pair %s: cannot create the sidecar: %s", m->pair_id, strerror(-rc));
                return rc;
        }
        log_info("pair %s: sidecar opened: the DR image is kept recoverable during the resync",
                 m->pair_id);
        return 0;
}

int mirror_cow(struct mirror *m, uint64_t c0, uint64_t c1)
{
        if (!sidecar_is_open(m->sc))
                return 0;
        return sidecar_preserve(m->sc, m->link, c0, c1, m->link->ops->size(m->link));
}

int mirror_cow_ahead(struct mirror *m, uint64_t c, uint64_t e)
{
        uint64_t want = MAX(COW_AHEAD_BYTES / m->chunk_bytes, e - c), span, got = 0, x, last;
        struct bitmap sel;
        int rc;

        if (!sidecar_is_open(m->sc) || sidecar_covers(m->sc, c, e - 1))
                return 0; /* preserved by an earlier look-ahead */
        /* The batch [c, e) and the dirty chunks after it, up to `want`
         * chunks within COW_AHEAD_SPAN chunks: only the worker writes a
         * dirty chunk of DR, so they can be read without their range lock
         * (replication.md, "Lock order" of the sidecars). */
        pthread_mutex_lock(&m->mu);
        span = MIN(MAX(COW_AHEAD_SPAN, e - c), m->bm.nbits - c);
        if ((rc = bitmap_init(&sel, span)) < 0) {
                pthread_mutex_unlock(&m->mu);
                return rc;
        }
        bitmap_set_range(&sel, 0, e - c);
        got = e - c;
        last = e - 1;
        for (x = bitmap_next_set(&m->bm, e); x < c + span && got < want;
             x = bitmap_next_set(&m->bm, x + 1)) {
                bitmap_set_range(&sel, x - c, 1);
                last = x;
                got++;
        }
        pthread_mutex_unlock(&m->mu);
        rc = sidecar_preserve_some(m->sc, m->link, c, last, &sel, m->link->ops->size(m->link));
        bitmap_free(&sel);
        return rc;
}

uint64_t mirror_cow_batch_chunks(struct mirror *m)
{
        if (!sidecar_is_open(m->sc))
                return UINT64_MAX;
        return MAX(COW_BATCH_BYTES / m->chunk_bytes, 1);
}

int mirror_cow_synced(struct mirror *m)
{
        struct mirror_group *g;
        bool sync;

        pthread_mutex_lock(&m->mu);
        g = m->group;
        sync = m->mode == MIRROR_SYNC;
        pthread_mutex_unlock(&m->mu);
        if (g) /* also without a sidecar: it may be the last to finish */
                return fence_group_cow_release(g, m);
        else if (sync && sidecar_is_open(m->sc))
                sidecar_discard(m->sc);
        else if (sync && !link_is_local(m->link)) {
                const char *id = m->pair_id;

                if (mirror_cow_remote_discard(NULL, &id, 1) < 0)
                        log_error("pair %s: the DR node did not discard the sidecar", m->pair_id);
        }
        return 0;
}

/* Test builds: EVSREP_SIDECAR_OFF=1 opens no sidecar (the cost benchmark's
 * baseline, bench/sidecar.sh). */
static bool sidecar_disabled(void)
{
#ifdef EVSREP_FAULT_INJECTION
        const char *e = getenv("EVSREP_SIDECAR_OFF");
        return e && strcmp(e, "1") == 0;
#else
        return false;
#endif
}

static bool rollback_disabled(void)
{
#ifdef EVSREP_FAULT_INJECTION
        const char *e = getenv("EVSREP_SIDECAR_NO_ROLLBACK");
        return e && strcmp(e, "1") == 0;
#else
        return false;
#endif
}

int mirror_cow_rollback(struct mirror *m, bool fold_al)
{
        int64_t inst;
        uint64_t nbits;
        int rc;

        pthread_mutex_lock(&m->mu);
        m->cow_at = 0;
        pthread_mutex_unlock(&m->mu);
        if (!m->sc || !(inst = sidecar_frozen_at(m->sc)))
                return 0;
        if (!fold_al || sidecar_discard_pending(m->sc)) {
                /* Reverse: DR == production. S5: the group had reached
                 * SYNC; DR is newer and whole. Nothing to roll back. */
                sidecar_discard(m->sc);
                return 0;
        }
        /* S3: every preserved chunk dirty, durably, before DR changes. */
        pthread_mutex_lock(&m->mu);
        sidecar_mark(m->sc, &m->bm);
        nbits = m->bm.nbits;
        replygen_live_bump(); /* dirty chunks: rule L (control-plane.md) */
        pthread_mutex_unlock(&m->mu);
        if ((rc = mirror_persist_bits(m, 0, nbits)) < 0) {
                log_error("pair %s: cannot persist the bitmap before the rollback: %s", m->pair_id,
                          strerror(-rc));
                return rc;
        }
        if (rollback_disabled())
                log_warn("pair %s: EVSREP_SIDECAR_NO_ROLLBACK=1: DR NOT rolled back (test)",
                         m->pair_id);
        else if ((rc = sidecar_rollback(m->sc, m->link, m->link->ops->size(m->link))) < 0)
                return rc; /* the sidecar stays: a retry rolls back again */
        if ((rc = sidecar_discard(m->sc)) < 0)
                log_warn("pair %s: rolled back; the sidecar file could not be deleted", m->pair_id);
        pthread_mutex_lock(&m->mu);
        m->frozen_at = inst;
        pthread_mutex_unlock(&m->mu);
        return 0;
}

void mirror_cow_set_instant(struct mirror *m, int64_t usec)
{
        pthread_mutex_lock(&m->mu);
        m->cow_at = usec;
        pthread_mutex_unlock(&m->mu);
}
