/* Copy-on-write sidecars of remote pairs, kept on the DR node (drcow.h;
 * docs/design/replication.md, sidecars, "Remote links").
 *
 *   production end   the engine's remote hooks: open (the mirror leaves
 *                    TRACK) and discard (the group is in SYNC) sent to the
 *                    node serving the pair's DR AZ, internal channel
 *   DR end           a registry of open sidecars, one per pair; the link
 *                    export's preserve hook (S1 before each link write);
 *                    reopen when a link export is granted (S4); the
 *                    rollback and fold of a failover from the survivor
 *   release record   the group's count of completed resyncs in the store,
 *                    bumped before the discard is sent; each sidecar
 *                    carries the count of its open + 1 (its generation):
 *                    a failover folds the released ones, an open replaces
 *                    them (R5-R7, "The release record") */
#include "service/drcow.h"
#include "cluster/cluster.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/bitmap.h"
#include "engine/link.h"
#include "engine/sidecar.h"
#include "service/internal.h"
#include "volume/attach.h"
#include "volume/volume.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct drcow {
        struct drcow *next;
        char pair_id[STORE_ID_LEN];
        char volume_id[STORE_ID_LEN];
        struct sidecar *sc;
        struct link *rd;     /* local link to the DR volume: the preserve's reads */
        pthread_mutex_t pmu; /* one preserve at a time (S2: one first writer) */
};

/* Writers first: an open or a discard (a production node waits for it,
 * fence raised) must not starve behind a stream of link writes. */
static pthread_rwlock_t g_rw = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static struct drcow *g_list; /* under g_rw */
static atomic_int g_count;   /* entries, for the preserve's fast path */
static struct service *g_svc;

/* Test builds: EVSREP_DRCOW_NO_PRESERVE=1 skips the preserve on the DR
 * node (to see the functional test fail); EVSREP_SIDECAR_NO_ROLLBACK=1
 * skips the rollback, as for a local sidecar; EVSREP_DRCOW_NO_DISCARD=1
 * makes the production node's discard request fail unsent (a discard lost
 * on its way: R4). */
static bool env_on(const char *name)
{
#ifdef EVSREP_FAULT_INJECTION
        const char *e = getenv(name);
        return e && strcmp(e, "1") == 0;
#else
        (void)name;
        return false;
#endif
}

/* ---------------------------------------------------------------- the registry */

static void drcow_path(struct service *svc, const char *az, const char *pair_id, char *buf,
                       size_t len)
{
        const struct site_cfg *s = config_site(svc->cfg, az);

        snprintf(buf, len, "%s/pair-%s.drcow", s ? s->dir : svc->cfg->data_dir, pair_id);
}

static struct drcow *find_locked(const char *pair_id)
{
        for (struct drcow *e = g_list; e; e = e->next)
                if (strcmp(e->pair_id, pair_id) == 0)
                        return e;
        return NULL;
}

static void entry_free(struct drcow *e)
{
        if (!e)
                return;
        sidecar_free(e->sc);
        if (e->rd)
                e->rd->ops->close(e->rd);
        pthread_mutex_destroy(&e->pmu);
        free(e);
}

static void entry_remove_locked(struct drcow *e)
{
        for (struct drcow **pp = &g_list; *pp; pp = &(*pp)->next)
                if (*pp == e) {
                        *pp = e->next;
                        atomic_fetch_sub(&g_count, 1);
                        break;
                }
        entry_free(e);
}

/* The registered sidecar of pair_id, or the file reopened (S4), or (with
 * chunk_bytes) a closed one ready for sidecar_create. NULL in *out: none.
 * A file carrying the S5 flag is discarded here. v: the DR volume (NULL:
 * no preserve will run through this entry before it is removed). */
static int entry_get_locked(struct service *svc, const char *az, const char *pair_id,
                            struct volume *v, uint64_t chunk_bytes, struct drcow **out)
{
        char path[CONFIG_PATH_LEN + 64];
        struct drcow *e = find_locked(pair_id);
        int rc;

        *out = e;
        if (e) {
                if (!e->rd && v && (rc = link_local_open(v, &e->rd)) < 0)
                        return rc;
                return 0;
        }
        if (!(e = calloc(1, sizeof(*e))))
                return -ENOMEM;
        pthread_mutex_init(&e->pmu, NULL);
        snprintf(e->pair_id, sizeof(e->pair_id), "%s", pair_id);
        snprintf(e->volume_id, sizeof(e->volume_id), "%s", v ? volume_id(v) : "");
        drcow_path(svc, az, pair_id, path, sizeof(path));
        if ((rc = sidecar_new(path, pair_id, 0, &e->sc)) < 0) {
                pthread_mutex_destroy(&e->pmu);
                free(e);
                return rc;
        }
        if ((rc = sidecar_load(e->sc)) < 0)
                goto fail;
        if (rc > 0 && sidecar_discard_pending(e->sc)) {
                log_info("pair %s: the DR node's sidecar was to be discarded (its group reached "
                         "SYNC): discarded",
                         pair_id);
                sidecar_discard(e->sc);
                rc = 0;
        }
        if (rc == 0 && !chunk_bytes) {
                entry_free(e);
                return 0; /* no file, and nothing to create */
        }
        if (rc == 0) { /* to be created: the creator's chunk size */
                sidecar_free(e->sc);
                e->sc = NULL;
                if ((rc = sidecar_new(path, pair_id, chunk_bytes, &e->sc)) < 0)
                        goto fail;
        } else {
                log_info("pair %s: sidecar reopened on the DR node (frozen at %lld)", pair_id,
                         (long long)sidecar_frozen_at(e->sc));
        }
        if (v && (rc = link_local_open(v, &e->rd)) < 0)
                goto fail;
        e->next = g_list;
        g_list = e;
        atomic_fetch_add(&g_count, 1);
        *out = e;
        return 0;
fail:
        entry_free(e);
        return rc;
}

/* ---------------------------------------------------------------- rows */

/* The volume of pair p in az (or, with az NULL, its DR volume: the one
 * outside priority_station). */
static int pair_volume(struct service *svc, const struct store_pair *p, const char *az,
                       struct store_volume *out)
{
        for (int k = 0; k < 2; k++) {
                struct store_volume v = {0};
                int rc = store_volume_get(svc->store, NULL, p->volume_ids[k], &v);

                if (rc < 0)
                        return rc;
                if (az ? strcmp(v.availability_zone, az) == 0
                       : strcmp(v.availability_zone, p->priority_station) != 0) {
                        *out = v;
                        return 0;
                }
                store_volume_clear(&v);
        }
        return -ENOENT;
}

/* Pair pair_id's DR volume, served here: its row and (referenced) volume. */
static int dr_here(struct service *svc, const char *project, const char *pair_id,
                   struct store_volume *dv, struct volume **v, char *msg, size_t msglen)
{
        struct store_pair p;
        int rc;

        *v = NULL;
        if ((rc = store_pair_get(svc->store, project, pair_id, &p)) < 0) {
                snprintf(msg, msglen, "replication pair %s does not exist", pair_id);
                return rc;
        }
        if ((rc = pair_volume(svc, &p, NULL, dv)) < 0) {
                snprintf(msg, msglen, "the DR volume of pair %s is not in the store", pair_id);
                return rc;
        }
        if (!config_site(svc->cfg, dv->availability_zone) ||
            !(*v = volreg_lookup(dv->availability_zone, dv->id))) {
                snprintf(msg, msglen, "the DR volume %s of pair %s is not served by node %s",
                         dv->id, pair_id, cluster_node_name());
                store_volume_clear(dv);
                return -ENOENT;
        }
        return 0;
}

/* ---------------------------------------------------------------- DR end */

/* R6: an open of generation gen finds e's sidecar open. Keep it (the same
 * unfinished resync), stamp it (unknown generation: in force for this one
 * from now on), or delete it (its resync completed: an older instant than
 * the group's; the caller creates the new one). g_rw held exclusively. */
static int open_existing_locked(struct drcow *e, uint64_t gen)
{
        uint64_t have = sidecar_generation(e->sc);
        int rc = 0;

        switch (sidecar_open_decide(have, gen)) {
        case SIDECAR_KEEP:
                if (gen && have > gen)
                        log_warn("pair %s: the DR node's sidecar has generation %llu, newer than "
                                 "the open's %llu: kept",
                                 e->pair_id, (unsigned long long)have, (unsigned long long)gen);
                break;
        case SIDECAR_STAMP:
                if ((rc = sidecar_set_generation(e->sc, gen)) == 0)
                        log_info("pair %s: the DR node's sidecar of unknown generation kept for "
                                 "the resync of generation %llu",
                                 e->pair_id, (unsigned long long)gen);
                break;
        case SIDECAR_REPLACE:
                log_info("pair %s: the DR node's sidecar of generation %llu was released (its "
                         "resync completed; its discard was lost): replaced by one of "
                         "generation %llu",
                         e->pair_id, (unsigned long long)have, (unsigned long long)gen);
                rc = sidecar_discard(e->sc);
                break;
        }
        return rc;
}

int service_drcow_open(struct service *svc, const char *project, const char *pair_id,
                       uint64_t nchunks, uint64_t chunk_bytes, int64_t frozen_at,
                       uint64_t generation, char *msg, size_t msglen)
{
        struct store_volume dv = {0};
        struct volume *v;
        struct drcow *e;
        int rc;

        if (!chunk_bytes || chunk_bytes % 4096 || !nchunks || frozen_at <= 0) {
                snprintf(msg, msglen,
                         "chunk_bytes (a multiple of 4096), nchunks and frozen_at "
                         "must be positive");
                return -EINVAL;
        }
        if ((rc = dr_here(svc, project, pair_id, &dv, &v, msg, msglen)) < 0)
                return rc;
        if (nchunks > volume_size(v) / chunk_bytes + 1) {
                snprintf(msg, msglen, "nchunks %llu exceeds the DR volume's size",
                         (unsigned long long)nchunks);
                rc = -EINVAL;
                goto out;
        }
        pthread_rwlock_wrlock(&g_rw);
        rc = entry_get_locked(svc, dv.availability_zone, pair_id, v, chunk_bytes, &e);
        if (rc == 0 && sidecar_is_open(e->sc))
                rc = open_existing_locked(e, generation);
        if (rc == 0 && !sidecar_is_open(e->sc)) {
                if (sidecar_chunk_bytes(e->sc) != chunk_bytes) {
                        /* A replaced file of another chunk size (read
                         * from it): the new one takes the creator's. */
                        struct sidecar *sc = NULL;
                        char path[CONFIG_PATH_LEN + 64];

                        drcow_path(svc, dv.availability_zone, pair_id, path, sizeof(path));
                        if ((rc = sidecar_new(path, pair_id, chunk_bytes, &sc)) == 0) {
                                sidecar_free(e->sc);
                                e->sc = sc;
                        }
                }
                if (rc == 0)
                        rc = sidecar_create_gen(e->sc, nchunks, frozen_at, generation);
                if (rc < 0)
                        entry_remove_locked(e);
                else
                        log_info("pair %s: sidecar opened on the DR node for its production "
                                 "node (frozen at %lld, generation %llu)",
                                 pair_id, (long long)frozen_at, (unsigned long long)generation);
        }
        pthread_rwlock_unlock(&g_rw);
        if (rc < 0)
                snprintf(msg, msglen, "pair %s: cannot open the sidecar: %s", pair_id,
                         strerror(-rc));
out:
        volume_put(v);
        store_volume_clear(&dv);
        return rc;
}

int service_drcow_discard(struct service *svc, const char *project, const char *const *pair_ids,
                          size_t n, char *msg, size_t msglen)
{
        struct drcow **es = calloc(n ? n : 1, sizeof(*es));
        int rc = 0;

        if (!es)
                return -ENOMEM;
        pthread_rwlock_wrlock(&g_rw);
        for (size_t i = 0; i < n && rc == 0; i++) {
                struct store_volume dv = {0};
                struct store_pair p;

                if (store_pair_get(svc->store, project, pair_ids[i], &p) < 0 ||
                    pair_volume(svc, &p, NULL, &dv) < 0 ||
                    !config_site(svc->cfg, dv.availability_zone)) {
                        store_volume_clear(&dv);
                        continue; /* gone or not here: nothing kept for it */
                }
                rc = entry_get_locked(svc, dv.availability_zone, pair_ids[i], NULL, 0, &es[i]);
                store_volume_clear(&dv);
        }
        /* S5: every intent durable before the first delete. */
        for (size_t i = 0; i < n && rc == 0; i++)
                if (es[i] && sidecar_is_open(es[i]->sc))
                        rc = sidecar_discard_intent(es[i]->sc);
        for (size_t i = 0; i < n && rc == 0; i++) {
                if (!es[i])
                        continue;
                if (sidecar_is_open(es[i]->sc))
                        log_info("pair %s: group in SYNC: the DR node's sidecar discarded",
                                 es[i]->pair_id);
                sidecar_discard(es[i]->sc);
                entry_remove_locked(es[i]);
        }
        pthread_rwlock_unlock(&g_rw);
        free(es);
        if (rc < 0)
                snprintf(msg, msglen, "cannot discard the sidecars: %s", strerror(-rc));
        return rc;
}

int service_drcow_load(struct service *svc, const char *site, const char *pair_id,
                       const char *volume_id)
{
        struct volume *v = volreg_lookup(site, volume_id);
        struct drcow *e;
        int rc;

        if (!v)
                return 0; /* the export is refused later anyway */
        pthread_rwlock_wrlock(&g_rw);
        rc = entry_get_locked(svc, site, pair_id, v, 0, &e);
        if (rc == 0 && e && strcmp(e->volume_id, volume_id) != 0)
                snprintf(e->volume_id, sizeof(e->volume_id), "%s", volume_id);
        pthread_rwlock_unlock(&g_rw);
        volume_put(v);
        if (rc < 0)
                log_error("pair %s: the DR node's sidecar cannot be reopened: %s", pair_id,
                          strerror(-rc));
        return rc;
}

void service_drcow_drop(struct service *svc, const char *site, const char *pair_id)
{
        struct drcow *e;

        pthread_rwlock_wrlock(&g_rw);
        if (entry_get_locked(svc, site, pair_id, NULL, 0, &e) == 0 && e) {
                sidecar_discard(e->sc);
                entry_remove_locked(e);
                log_info("pair %s: gone; its sidecar on the DR node deleted", pair_id);
        }
        pthread_rwlock_unlock(&g_rw);
}

int service_drcow_preserve(struct volume *v, uint64_t off, uint64_t len)
{
        struct drcow *e = NULL;
        int rc = 0;

        if (atomic_load(&g_count) == 0 || env_on("EVSREP_DRCOW_NO_PRESERVE"))
                return 0;
        pthread_rwlock_rdlock(&g_rw);
        for (struct drcow *x = g_list; x; x = x->next)
                if (strcmp(x->volume_id, volume_id(v)) == 0)
                        e = x;
        if (e && sidecar_is_open(e->sc)) {
                uint64_t cb = sidecar_chunk_bytes(e->sc), c0 = off / cb, c1 = (off + len - 1) / cb;

                if (!sidecar_covers(e->sc, c0, c1)) {
                        pthread_mutex_lock(&e->pmu);
                        rc = e->rd ? sidecar_preserve(e->sc, e->rd, c0, c1, volume_size(v)) : -EIO;
                        pthread_mutex_unlock(&e->pmu);
                        if (rc < 0)
                                log_error("pair %s: preserve before a link write failed: %s",
                                          e->pair_id, strerror(-rc));
                }
        }
        pthread_rwlock_unlock(&g_rw);
        return rc;
}

/* ---------------------------------------------------------------- failover from the survivor */

int service_drcow_released(struct service *svc, const char *group_id, uint64_t *out)
{
        int64_t n = 0;
        int rc;

        *out = 0;
        if (!group_id || !group_id[0])
                return 0;
        if ((rc = store_group_release_get(svc->store, group_id, &n)) < 0) {
                log_error("group %s: cannot read its release record: %s", group_id, strerror(-rc));
                return rc;
        }
        *out = n > 0 ? (uint64_t)n : 0;
        return 0;
}

int service_drcow_rollback(struct service *svc, const struct store_pair *p, const char *az,
                           uint64_t released, bool rows_active, int64_t *frozen_at)
{
        struct store_volume pv = {0};
        struct volume *v = NULL;
        struct link *l = NULL;
        struct drcow *e;
        char id[64];
        int rc;

        *frozen_at = 0;
        if ((rc = pair_volume(svc, p, az, &pv)) < 0)
                return rc;
        if (!(v = volreg_lookup(az, pv.id))) {
                store_volume_clear(&pv);
                return 0; /* not here: the takeover fails on it anyway */
        }
        /* No write of a stale production node through the link from now on. */
        snprintf(id, sizeof(id), "link/%s", p->id);
        attach_revoke(id);
        pthread_rwlock_wrlock(&g_rw);
        rc = entry_get_locked(svc, az, p->id, NULL, 0, &e);
        if (rc == 0 && e && sidecar_is_open(e->sc) &&
            sidecar_fate_decide(sidecar_generation(e->sc), released, rows_active) == SIDECAR_FOLD) {
                /* R4/R5: its resync had completed, the DR disk holds every
                 * write acknowledged since: folded later, not rolled back. */
                log_info("pair %s: the DR node's sidecar (generation %llu, frozen at %lld) was "
                         "released (the group's resyncs completed: %llu%s): not rolled back",
                         p->id, (unsigned long long)sidecar_generation(e->sc),
                         (long long)sidecar_frozen_at(e->sc), (unsigned long long)released,
                         sidecar_generation(e->sc) ? "" : "; unknown generation, every row active");
        } else if (rc == 0 && e && sidecar_is_open(e->sc)) {
                *frozen_at = sidecar_frozen_at(e->sc);
                if (env_on("EVSREP_SIDECAR_NO_ROLLBACK")) {
                        log_warn("pair %s: EVSREP_SIDECAR_NO_ROLLBACK=1: DR NOT rolled back (test)",
                                 p->id);
                        rc = 1;
                } else if ((rc = link_local_open(v, &l)) == 0 &&
                           (rc = sidecar_rollback(e->sc, l, volume_size(v))) == 0) {
                        log_info("pair %s: rolled back to its frozen instant (%lld) from the DR "
                                 "node's sidecar",
                                 p->id, (long long)*frozen_at);
                        rc = 1;
                }
        }
        pthread_rwlock_unlock(&g_rw);
        if (l)
                l->ops->close(l);
        if (rc < 0)
                log_error("pair %s: the rollback from the DR node's sidecar failed: %s", p->id,
                          strerror(-rc));
        volume_put(v);
        store_volume_clear(&pv);
        return rc;
}

int service_drcow_fold(struct service *svc, const struct store_pair *p, const char *az,
                       struct mirror *m)
{
        struct drcow *e;
        struct bitmap bm = {0};
        uint64_t cb, size, marked = 0;
        int rc;

        pthread_rwlock_wrlock(&g_rw);
        rc = entry_get_locked(svc, az, p->id, NULL, 0, &e);
        if (rc < 0 || !e) {
                pthread_rwlock_unlock(&g_rw);
                return rc;
        }
        size = volume_size(mirror_prod(m));
        cb = sidecar_chunk_bytes(e->sc);
        if (sidecar_is_open(e->sc) && !sidecar_discard_pending(e->sc)) {
                /* R3: the rolled-back chunks dirty, durably, before the
                 * sidecar naming them goes. */
                if ((rc = bitmap_init(&bm, (size + cb - 1) / cb)) == 0) {
                        sidecar_mark(e->sc, &bm);
                        for (uint64_t b = bitmap_next_set(&bm, 0); b < bm.nbits && rc == 0;) {
                                uint64_t x = bitmap_next_clear(&bm, b);
                                uint64_t off = b * cb, len = MIN(x * cb, size) - off;

                                rc = mirror_mark_dirty(m, off, len);
                                marked += len;
                                b = bitmap_next_set(&bm, x);
                        }
                        bitmap_free(&bm);
                }
        }
        if (rc == 0) {
                sidecar_discard(e->sc);
                entry_remove_locked(e);
                log_info("pair %s: %llu bytes rolled back marked for the reprotect; the DR "
                         "node's sidecar deleted",
                         p->id, (unsigned long long)marked);
        } else {
                log_error("pair %s: cannot mark the rolled-back chunks: %s; the sidecar is kept",
                          p->id, strerror(-rc));
        }
        pthread_rwlock_unlock(&g_rw);
        return rc;
}

/* ---------------------------------------------------------------- production end */

/* POST the body to the sidecar route of pair_id on the node serving its
 * DR AZ. */
static int send_to_dr(const char *pair_id, const char *body)
{
        return service_link_post(g_svc, pair_id, "sidecar", body, "for the sidecar");
}

/* The generation of a sidecar the pair's open creates: its group's count
 * of completed resyncs + 1 (R5); 0 (unknown) for a pair in no group. */
static int open_generation(const char *pair_id, uint64_t *gen)
{
        struct store_pair p;
        uint64_t released = 0;
        int rc;

        *gen = 0;
        if (!g_svc)
                return -ENOTCONN;
        if ((rc = store_pair_get(g_svc->store, NULL, pair_id, &p)) < 0)
                return rc;
        if (!p.group_id[0])
                return 0;
        if ((rc = service_drcow_released(g_svc, p.group_id, &released)) < 0)
                return rc;
        *gen = released + 1;
        return 0;
}

static int remote_open(const char *pair_id, uint64_t nchunks, uint64_t chunk_bytes,
                       int64_t frozen_at)
{
        char body[320];
        uint64_t gen;
        int rc;

        if ((rc = open_generation(pair_id, &gen)) < 0)
                return rc; /* the mirror stays in TRACK; the next resume asks again */
        snprintf(body, sizeof(body),
                 "{\"op\":\"open\",\"nchunks\":%llu,\"chunk_bytes\":%llu,\"frozen_at\":%lld,"
                 "\"generation\":%llu}",
                 (unsigned long long)nchunks, (unsigned long long)chunk_bytes, (long long)frozen_at,
                 (unsigned long long)gen);
        return send_to_dr(pair_id, body);
}

static int remote_discard(const char *group_id, const char *const *pair_ids, size_t n)
{
        json_t *root;
        char *body;
        bool recorded = !group_id; /* a pair in no group has no record */
        int rc;

        /* The release record first (R7: the group's resync completed; a
         * lost discard from here on leaves sidecars a failover folds). */
        if (group_id && g_svc) {
                /* A transient store error must not leave the record behind
                 * (a lost discard would then be rolled back to): retry. */
                for (int i = 0; i < 3; i++) {
                        if ((rc = store_group_release_bump(g_svc->store, group_id)) == 0)
                                break;
                        usleep(50000);
                }
                if (rc < 0)
                        log_error("group %s: its resync completed, but the release of its "
                                  "sidecars cannot be recorded: %s; if the discard is lost too, "
                                  "the group is held out of SYNC (R8)",
                                  group_id, strerror(-rc));
                else
                        log_info("group %s: resync completed: release of its sidecars recorded",
                                 group_id);
                recorded = rc == 0;
        }
        if (!(root = json_pack("{s:s,s:[]}", "op", "discard", "pairs")))
                return recorded ? -ENOMEM : MIRROR_COW_UNRELEASED;
        if (env_on("EVSREP_DRCOW_NO_DISCARD")) {
                json_decref(root);
                log_warn("EVSREP_DRCOW_NO_DISCARD=1: the discard is not sent (test)");
                return recorded ? -EIO : MIRROR_COW_UNRELEASED;
        }
        for (size_t i = 0; i < n; i++)
                json_array_append_new(json_object_get(root, "pairs"), json_string(pair_ids[i]));
        body = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!body)
                return recorded ? -ENOMEM : MIRROR_COW_UNRELEASED;
        rc = send_to_dr(pair_ids[0], body);
        free(body);
        /* R8: not recorded and not discarded (or not known to be): the
         * engine holds the group out of SYNC. */
        if (rc < 0 && !recorded)
                return MIRROR_COW_UNRELEASED;
        return rc == MIRROR_COW_UNRELEASED ? -EIO : rc;
}

void service_drcow_start(struct service *svc)
{
        static const struct mirror_cow_remote_ops ops = {.open = remote_open,
                                                         .discard = remote_discard};

        g_svc = svc;
        mirror_cow_remote_set(&ops);
}

void service_drcow_stop(void)
{
        mirror_cow_remote_set(NULL);
        pthread_rwlock_wrlock(&g_rw);
        while (g_list)
                entry_remove_locked(g_list); /* closed, files kept */
        pthread_rwlock_unlock(&g_rw);
        g_svc = NULL;
}
