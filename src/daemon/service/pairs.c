/* Replication pairs: the state machine of api.md "EVS replication pairs"
 * on top of the engine's mirror (docs/design/replication.md).
 *
 *   status:             creating --mirror started--> available
 *                       creating --engine failed--> error
 *                       error --group sync: mirror restarted, full copy--> available
 *                       available|error|error_deleting --DELETE--> deleting --mirror closed,
 *                                                            row gone--> 404
 *   replication_status: (null) --create--> copying --resync done--> active
 *                       active|copying --DR write failed--> inactive (fault 5)
 *
 * Statuses are the enums of service/states.h; requests are judged by
 * pair_check / volume_check and every status write goes through
 * pair_row_set_status (asserted against the transition table).
 *
 * Data first, then the record: every row change below happens after the
 * engine step it names. mirror_mode in the row is what start-up resumes.
 *
 * Locks: pair_rt.lock serialises the steps of one pair (create task, engine
 * events, delete); it is taken before the store (control-plane.md order).
 * pairs_mu guards the registry (a list, and a hash by id for lookups) and
 * each entry's refs; it is never held
 * while waiting for a pair lock (pair_rt_lock takes a reference first). */
#include "service/internal.h"
#include "common/log.h"
#include "common/replygen.h"
#include "common/util.h"
#include "engine/fence.h"
#include "engine/mirror.h"
#include "volume/volume.h"

#include <assert.h>
#include <sched.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FD_SIZE_MISMATCH "37100041"
#define FD_PEER_DOWN     "37100043"
#define FD_PROD_MISSING  "37100048"
#define FD_DR_MISSING    "37100050"
#define FD_PROD_PAIRED   "37100053"
#define FD_DR_PAIRED     "37100054"
#define FD_INTERNAL      "37000212"

struct pair_rt {
        char id[STORE_ID_LEN];
        struct service *svc;
        unsigned refs; /* under pairs_mu: the registry's + each pair_rt_lock holder's */
        bool dead;     /* deleted: dropped from the registry, freed at refs 0 */
        pthread_mutex_t lock;
        atomic_int live_readers; /* pair_live_read holders of lock (GETs: microseconds) */
        struct mirror *m;        /* NULL when not running */
        struct volume *prod;     /* referenced while m != NULL */
        struct volume *dr;       /* NULL when DR is on another node (link below) */
        /* A remote DR link (multi-site.md "Remote DR links"), owned by m;
         * the link monitor (links.c) reconnects it. NULL for a local DR. */
        struct link *link;
        int64_t link_retry_usec; /* monotonic: next reconnect attempt */
        unsigned link_backoff_ms;
        int link_last_err;      /* the last failed reconnect (-errno), 0 after one works */
        int64_t link_down_usec; /* monotonic: when the monitor saw it broken, 0 when healthy */
        struct pair_rt *next;
        struct pair_rt *hnext; /* the next entry of its bucket in svc->pairs_by_id */
};

/* ---- runtime registry ---- */

/* FNV-1a of the id, masked to a bucket of svc->pairs_by_id. */
static size_t rt_bucket(const char *id)
{
        uint32_t h = 2166136261u;

        for (const unsigned char *c = (const unsigned char *)id; *c; c++)
                h = (h ^ *c) * 16777619u;
        return h & (SERVICE_PAIR_BUCKETS - 1);
}

static struct pair_rt *rt_find_locked(struct service *svc, const char *id)
{
        for (struct pair_rt *p = svc->pairs_by_id[rt_bucket(id)]; p; p = p->hnext)
                if (strcmp(p->id, id) == 0)
                        return p;
        return NULL;
}

/* Take rt out of its hash bucket (under pairs_mu). */
static void rt_unhash_locked(struct service *svc, struct pair_rt *rt)
{
        for (struct pair_rt **pp = &svc->pairs_by_id[rt_bucket(rt->id)]; *pp; pp = &(*pp)->hnext) {
                if (*pp == rt) {
                        *pp = rt->hnext;
                        break;
                }
        }
}

/* The runtime entry of a pair, created on first use. Entries live until the
 * pair is deleted (rt_drop) or the service stops. */
static struct pair_rt *rt_get(struct service *svc, const char *id)
{
        struct pair_rt *p;

        pthread_mutex_lock(&svc->pairs_mu);
        p = rt_find_locked(svc, id);
        if (!p && (p = calloc(1, sizeof(*p)))) {
                snprintf(p->id, sizeof(p->id), "%s", id);
                p->svc = svc;
                p->refs = 1;
                pthread_mutex_init(&p->lock, NULL);
                p->next = svc->pairs;
                svc->pairs = p;
                p->hnext = svc->pairs_by_id[rt_bucket(p->id)];
                svc->pairs_by_id[rt_bucket(p->id)] = p;
        }
        pthread_mutex_unlock(&svc->pairs_mu);
        return p;
}

static void rt_free(struct pair_rt *rt)
{
        assert(!rt->m);
        pthread_mutex_destroy(&rt->lock);
        free(rt);
}

static void rt_put(struct pair_rt *rt)
{
        struct service *svc = rt->svc;
        bool last;

        pthread_mutex_lock(&svc->pairs_mu);
        assert(rt->refs > 0);
        last = --rt->refs == 0;
        pthread_mutex_unlock(&svc->pairs_mu);
        if (last)
                rt_free(rt);
}

/* The pair is deleted (rt->lock held): no new lookup finds it; it is freed
 * when its last holder lets go. */
static void rt_drop(struct service *svc, struct pair_rt *rt)
{
        pthread_mutex_lock(&svc->pairs_mu);
        rt->dead = true;
        rt_unhash_locked(svc, rt);
        for (struct pair_rt **pp = &svc->pairs; *pp; pp = &(*pp)->next) {
                if (*pp == rt) {
                        *pp = rt->next;
                        break;
                }
        }
        pthread_mutex_unlock(&svc->pairs_mu);
}

/* ---- roles ---- */

/* Production and DR volume ids of a pair: production is the one in
 * priority_station. */
static int pair_roles(struct service *svc, const struct store_pair *p, struct store_volume *prod,
                      struct store_volume *dr)
{
        struct store_volume a = {0}, b = {0};
        int rc;

        if ((rc = store_volume_get(svc->store, NULL, p->volume_ids[0], &a)) < 0)
                return rc;
        if ((rc = store_volume_get(svc->store, NULL, p->volume_ids[1], &b)) < 0) {
                store_volume_clear(&a);
                return rc;
        }
        if (strcmp(b.availability_zone, p->priority_station) == 0) {
                *prod = b;
                *dr = a;
        } else {
                *prod = a;
                *dr = b;
        }
        return 0;
}

static void meta_path(struct service *svc, const struct store_pair *p, char *buf, size_t len)
{
        struct store_volume v0 = {0};
        const struct site_cfg *s = NULL;

        if (store_volume_get(svc->store, NULL, p->volume_ids[0], &v0) == 0)
                s = config_site(svc->cfg, v0.availability_zone);
        snprintf(buf, len, "%s/pair-%s.meta", s ? s->dir : svc->cfg->data_dir, p->id);
        store_volume_clear(&v0);
}

/* ---- engine steps ---- */

static void on_event(void *ctx, const char *pair_id, enum mirror_event ev);

/* Make dr read-only for clients; fenced so no client write is half way. */
static void dr_set_read_only(struct volume *dr, bool ro)
{
        fence_set_read_only(dr, ro);
}

/* How rt_start opens the meta file and the link. */
struct rt_start_opts {
        bool create;     /* fresh meta file */
        bool clean;      /* with create: no chunk dirty (takeover) */
        bool allow_down; /* a remote link may start broken */
};

static int rt_start_ex(struct service *svc, struct pair_rt *rt, const struct store_pair *p,
                       const struct rt_start_opts *o, enum mirror_mode mode, uint64_t *dirty);

/* Open the mirror of p and attach it in mode (the fence is raised around
 * the attach). rt->lock held. */
static int rt_start(struct service *svc, struct pair_rt *rt, const struct store_pair *p,
                    bool create, enum mirror_mode mode, uint64_t *dirty)
{
        struct rt_start_opts o = {.create = create, .allow_down = !create};

        return rt_start_ex(svc, rt, p, &o, mode, dirty);
}

static int rt_start_ex(struct service *svc, struct pair_rt *rt, const struct store_pair *p,
                       const struct rt_start_opts *o, enum mirror_mode mode, uint64_t *dirty)
{
        bool create = o->create;
        struct store_volume pv = {0}, dv = {0};
        char path[CONFIG_PATH_LEN + 64], dr_az[STORE_NAME_LEN];
        struct mirror_cfg mc = {0};
        struct link *link = NULL;
        bool remote;
        int link_err = 0, rc;

        if ((rc = pair_roles(svc, p, &pv, &dv)) < 0)
                return rc;
        /* DR on another node: its leg is an NBD link (links.c). */
        remote = !config_site(svc->cfg, dv.availability_zone);
        snprintf(dr_az, sizeof(dr_az), "%s", dv.availability_zone);
        rt->prod = volreg_lookup(pv.availability_zone, pv.id);
        rt->dr = remote ? NULL : volreg_lookup(dv.availability_zone, dv.id);
        store_volume_clear(&pv);
        store_volume_clear(&dv);
        if (!rt->prod || (!remote && !rt->dr)) {
                rc = -ENOENT;
                goto fail;
        }
        if (remote) {
                /* A new pair needs its DR node now (the initial copy); a
                 * running one starts broken and tracks until it connects. */
                if ((rc = service_link_open(svc, p->id, dr_az, volume_size(rt->prod), o->allow_down,
                                            &link)) < 0)
                        goto fail;
                link_err = service_link_broken(link);
        } else {
                dr_set_read_only(rt->dr, true);
                if ((rc = link_local_open(rt->dr, &link)) < 0)
                        goto fail;
        }
        meta_path(svc, p, path, sizeof(path));
        mc.pair_id = p->id;
        mc.meta_path = path;
        mc.prod = rt->prod;
        mc.link = link;
        mc.chunk_bytes = svc->cfg->chunk_bytes;
        mc.create = create;
        mc.clean = o->clean;
        mc.on_event = on_event;
        mc.event_ctx = svc;
        if ((rc = mirror_open(&mc, &rt->m, dirty)) < 0)
                goto fail;
        if (mode == MIRROR_SYNC && *dirty)
                mode = MIRROR_RESYNC; /* M1: never SYNC over dirty chunks */
        if (link_err)
                mode = MIRROR_TRACK; /* the link monitor resumes it */
        if ((rc = fence_mirror_start(rt->m, rt->prod, mode)) < 0) {
                fence_mirror_close(rt->m, rt->prod, false);
                rt->m = NULL;
                goto fail;
        }
        if (remote) {
                rt->link = link;
                rt->link_backoff_ms = 0;
                rt->link_retry_usec = 0;
                if (link_err)
                        mirror_link_down(rt->m, link_err);
        }
        /* The pair runs a mirror now: rule L (control-plane.md "The live
         * epoch"), under the pair's lock like every rt_start. */
        replygen_live_bump();
        return 0;
fail:
        if (rt->prod)
                volume_put(rt->prod);
        if (rt->dr)
                volume_put(rt->dr);
        rt->prod = rt->dr = NULL;
        return rc;
}

/* Detach and close the mirror (remove: the pair is being deleted). */
static void rt_stop(struct pair_rt *rt, bool remove)
{
        if (rt->m) {
                fence_mirror_close(rt->m, rt->prod, remove);
                rt->m = NULL;
                replygen_live_bump(); /* rule L, under the pair's lock */
        }
        rt->link = NULL; /* closed with the mirror */
        if (rt->prod)
                volume_put(rt->prod);
        if (rt->dr)
                volume_put(rt->dr);
        rt->prod = rt->dr = NULL;
}

static void record_error(struct service *svc, const char *id, const char *detail)
{
        struct store_pair p;

        if (store_pair_get(svc->store, NULL, id, &p) < 0)
                return;
        pair_row_set_status(&p, PAIR_ERROR);
        pair_row_set_repl(&p, REPL_ERROR);
        snprintf(p.failure_detail, sizeof(p.failure_detail), "%s", detail);
        if (store_pair_update(svc->store, &p) < 0)
                log_error("pair %s: cannot record the error", id);
}

static void set_repl(struct store_pair *p, enum repl_status rs)
{
        pair_row_set_repl(p, rs);
}

void pair_fill_state(struct pair_rt *rt, struct store_pair *p, enum repl_status paused_status)
{
        struct mirror_stats st;
        enum repl_status cur;

        if (!rt->m)
                return;
        mirror_stats(rt->m, &st);
        snprintf(p->mirror_mode, sizeof(p->mirror_mode), "%s", mirror_mode_name(st.mode));
        p->progress = st.progress;
        switch (st.mode) {
        case MIRROR_SYNC:
        case MIRROR_RESYNC:
                set_repl(p, st.mode == MIRROR_SYNC ? REPL_ACTIVE : REPL_COPYING);
                p->frozen_at = 0;
                p->fault_level = 0;
                p->failure_detail[0] = '\0';
                break;
        case MIRROR_TRACK:
                if (st.frozen_at)
                        p->frozen_at = st.frozen_at;
                if (st.prod_error) {
                        set_repl(p, REPL_INACTIVE);
                        p->fault_level = 2;
                        snprintf(p->failure_detail, sizeof(p->failure_detail), FD_PROD_MISSING);
                } else if (st.dr_error) {
                        set_repl(p, REPL_INACTIVE);
                        p->fault_level = 5;
                        snprintf(p->failure_detail, sizeof(p->failure_detail), FD_PEER_DOWN);
                } else if (st.fault_frozen) {
                        /* Frozen with its group by another member's fault. */
                        set_repl(p, REPL_ACTIVE_STOPPED);
                } else if (paused_status != REPL__COUNT) {
                        set_repl(p, paused_status);
                } else if (repl_status_parse(p->replication_status, &cur) < 0 ||
                           cur != REPL_ACTIVE_STOPPED) {
                        set_repl(p, REPL_INACTIVE);
                }
                break;
        }
}

/* Record the engine's mode in the row: copying / active / inactive; and
 * status, unless PAIR__COUNT (unchanged). */
static void record_mode(struct service *svc, struct pair_rt *rt, enum pair_status status)
{
        struct store_pair p;

        if (!rt->m || store_pair_get(svc->store, NULL, rt->id, &p) < 0)
                return;
        if (status != PAIR__COUNT)
                pair_row_set_status(&p, status);
        pair_fill_state(rt, &p, REPL__COUNT);
        if (store_pair_update(svc->store, &p) < 0)
                log_error("pair %s: cannot record replication state", rt->id);
}

void pair_rt_record_mode(struct pair_rt *rt)
{
        record_mode(rt->svc, rt, PAIR__COUNT);
}

struct pair_rt *pair_rt_lock(struct service *svc, const char *id)
{
        struct pair_rt *rt;

        pthread_mutex_lock(&svc->pairs_mu);
        rt = rt_find_locked(svc, id);
        if (rt)
                rt->refs++;
        pthread_mutex_unlock(&svc->pairs_mu);
        if (!rt)
                return NULL;
        pthread_mutex_lock(&rt->lock); /* no registry lock held while waiting */
        if (rt->dead) {
                pthread_mutex_unlock(&rt->lock);
                rt_put(rt);
                return NULL;
        }
        return rt;
}

struct pair_rt *pair_rt_trylock(struct service *svc, const char *id, bool *busy)
{
        struct pair_rt *rt;

        *busy = false;
        pthread_mutex_lock(&svc->pairs_mu);
        rt = rt_find_locked(svc, id);
        if (rt && pthread_mutex_trylock(&rt->lock) != 0) {
                rt = NULL;
                *busy = true;
        } else if (rt) {
                rt->refs++;
        }
        pthread_mutex_unlock(&svc->pairs_mu);
        if (rt && rt->dead) {
                pthread_mutex_unlock(&rt->lock);
                rt_put(rt);
                return NULL;
        }
        return rt;
}

void pair_rt_unlock(struct pair_rt *rt)
{
        if (!rt)
                return;
        pthread_mutex_unlock(&rt->lock);
        rt_put(rt);
}

struct mirror *pair_rt_mirror(struct pair_rt *rt)
{
        return rt ? rt->m : NULL;
}

struct volume *pair_rt_prod(struct pair_rt *rt)
{
        return rt ? rt->prod : NULL;
}

struct volume *pair_rt_dr(struct pair_rt *rt)
{
        return rt ? rt->dr : NULL;
}

int pair_rt_swap_preflight(struct pair_rt *rt, bool failover)
{
        int rc;

        if (!rt->m)
                return -ENOENT;
        if (!rt->dr)
                return -EXDEV; /* DR on another node: the mirror would move */
        /* Failover makes the DR disk production: it must be there. */
        if (failover && (rc = volume_probe(rt->dr)) < 0)
                return rc;
        return mirror_swap_preflight(rt->m, failover);
}

int pair_rt_swap_precheck(struct pair_rt *rt, bool failover, const char *pair_id, char *msg,
                          size_t msglen)
{
        const char *verb = failover ? "fail over" : "reverse";
        struct mirror_stats st;
        int rc;

        /* swap_precheck refused a member without both first (swap_preflight). */
        assert(rt->m && rt->dr);
        if (failover && (rc = volume_probe(rt->dr)) < 0) {
                snprintf(
                    msg, msglen,
                    "replication pair %s: its DR disk cannot be used (%s); the group cannot %s",
                    pair_id, strerror(-rc), verb);
                return -EBUSY;
        }
        if (failover)
                return 0;
        /* What the fenced preflight refuses a reverse for, read without the
         * fence; it may still change before the fence, which decides. */
        mirror_stats(rt->m, &st);
        if (st.mode == MIRROR_SYNC && st.dirty_chunks == 0)
                return 0;
        snprintf(msg, msglen,
                 "replication pair %s is not in sync (its DR disk differs from production); the "
                 "group cannot %s until a sync makes it active",
                 pair_id, verb);
        return -EBUSY;
}

int pair_rt_swap(struct pair_rt *rt, bool fold_al, enum mirror_mode mode)
{
        struct volume *old_prod = rt->prod;
        struct link *l;
        int rc;

        if (!rt->m)
                return -ENOENT;
        if (!rt->dr)
                return -EXDEV; /* DR on another node (preflight refuses it first) */
        if ((rc = link_local_open(old_prod, &l)) < 0)
                return rc;
        rc = mirror_swap(rt->m, rt->dr, l, fold_al, mode);
        if (rc < 0)
                return rc;
        rt->prod = rt->dr;
        rt->dr = old_prod;
        replygen_live_bump(); /* the note reads the other volume now: rule L */
        /* Fences are raised by the caller: no client write is half way. */
        volume_set_read_only(rt->dr, true);
        volume_set_read_only(rt->prod, false);
        return 0;
}

/* Why the mirror of p cannot be (re)started: a disk of the pair is not
 * exported (its file was missing at start-up). 0 when both are there. */
int pair_rt_startable(struct service *svc, const struct store_pair *p, char *msg, size_t msglen)
{
        struct store_volume pv = {0}, dv = {0};
        struct volume *v;
        const char *missing = NULL, *side = NULL;
        int rc;

        if ((rc = pair_roles(svc, p, &pv, &dv)) < 0)
                return rc;
        if (!(v = volreg_lookup(pv.availability_zone, pv.id))) {
                missing = pv.id;
                side = "production";
        } else {
                volume_put(v);
                v = NULL;
                /* A DR volume on another node: its link says (rt_start). */
                if (config_site(svc->cfg, dv.availability_zone) &&
                    !(v = volreg_lookup(dv.availability_zone, dv.id))) {
                        missing = dv.id;
                        side = "DR";
                } else {
                        volume_put(v);
                }
        }
        if (missing) {
                snprintf(msg, msglen,
                         "replication pair %s cannot be synced: its %s volume %s is not there "
                         "(its file was missing at start-up); restore the file and restart "
                         "evsrepd, or remove the pair from the group (PUT "
                         "remove_replication_ids) and delete it",
                         p->id, side, missing);
                rc = -EBUSY;
        }
        store_volume_clear(&pv);
        store_volume_clear(&dv);
        return rc;
}

int pair_rt_restart(struct service *svc, struct pair_rt *rt, const struct store_pair *p)
{
        uint64_t dirty = 0;
        int rc;

        assert(!rt->m);
        /* While no mirror ran, writes on production were not tracked: only a
         * fresh bitmap with every chunk dirty (a full copy, as at creation)
         * makes DR equal again. TRACK: the caller's fence_sync resyncs. */
        rc = rt_start(svc, rt, p, true, MIRROR_TRACK, &dirty);
        if (rc < 0)
                log_error("pair %s: cannot restart its mirror: %s", p->id, strerror(-rc));
        else
                log_info("pair %s: mirror restarted by a group sync (full copy)", p->id);
        return rc;
}

int pair_rt_reopen(struct service *svc, struct pair_rt *rt, const struct store_pair *p)
{
        uint64_t dirty = 0;
        int rc;

        /* The mirror ran all along (no client write went untracked; the
         * locked-down disks took none): its bitmap, symmetric, still names
         * every chunk that may differ. Close it and open it again with the
         * roles the store holds. */
        rt_stop(rt, false);
        rc = rt_start(svc, rt, p, false, MIRROR_TRACK, &dirty);
        if (rc < 0) {
                log_error("pair %s: cannot reopen its mirror: %s", p->id, strerror(-rc));
                return rc;
        }
        fence_set_read_only(rt->prod, false);
        log_info("pair %s: mirror reopened with production in %s (%llu dirty chunks)", p->id,
                 p->priority_station, (unsigned long long)dirty);
        return 0;
}

int pair_rt_takeover(struct service *svc, struct pair_rt *rt, const struct store_pair *p,
                     enum mirror_mode mode)
{
        struct rt_start_opts o = {.create = true, .clean = true, .allow_down = true};
        uint64_t dirty = 0;
        int rc;

        /* The mirror moves to this node (multi-site.md "Moving a mirror
         * between nodes"): the old production's divergence stays in its
         * own meta file there. Here a fresh, clean bitmap tracks every
         * write from now on; a link that cannot connect starts broken
         * (TRACK, the monitor retries). */
        if (rt->m)
                return -EEXIST;
        rc = rt_start_ex(svc, rt, p, &o, mode, &dirty);
        if (rc < 0) {
                log_error("pair %s: cannot take over its mirror: %s", p->id, strerror(-rc));
                return rc;
        }
        fence_set_read_only(rt->prod, false);
        log_info("pair %s: mirror taken over with production in %s (%s)", p->id,
                 p->priority_station, mirror_mode_name(mirror_mode(rt->m)));
        return 0;
}

void pair_rt_release(struct pair_rt *rt)
{
        /* Hooks off, both legs flushed, the AL emptied when both flushes
         * worked (else it stays hot: the divergence folds it), the meta
         * file kept. */
        rt_stop(rt, false);
}

struct pair_rt *pair_rt_lock_new(struct service *svc, const char *id)
{
        /* rt_get registers an entry (the registry's reference); the lock
         * takes a reference of its own. */
        if (!rt_get(svc, id))
                return NULL;
        return pair_rt_lock(svc, id);
}

int pair_rt_grow(struct pair_rt *rt, uint64_t size_bytes)
{
        struct fence_member fm = {.m = rt->m, .prod = rt->prod, .dr = rt->dr, .link = rt->link};
        int rc;

        if (!rt->m)
                return -ENOENT;
        /* DR on another node: that node grows it first (internal channel). */
        if (!rt->dr && (rc = service_link_grow_remote(rt->svc, rt->id, size_bytes)) < 0)
                return rc;
        return fence_grow(&fm, volume_size(rt->prod), size_bytes);
}

void pair_rt_lockdown(struct pair_rt *rt)
{
        if (rt->prod)
                volume_set_read_only(rt->prod, true);
        if (rt->dr)
                volume_set_read_only(rt->dr, true);
}

/* ---- tasks (task thread) ---- */

static void task_pair_create(struct service *svc, const char *id, int64_t unused)
{
        struct pair_rt *rt = rt_get(svc, id);
        struct store_pair p;
        uint64_t dirty = 0;
        int rc;

        (void)unused;
        if (!rt || store_pair_get(svc->store, NULL, id, &p) < 0)
                return;
        pthread_mutex_lock(&rt->lock);
        if (pair_row_status(&p) == PAIR_CREATING) {
                rc = rt_start(svc, rt, &p, true, MIRROR_RESYNC, &dirty);
                if (rc < 0) {
                        log_error("pair %s: cannot start mirroring: %s", id, strerror(-rc));
                        record_error(svc, id, FD_INTERNAL);
                } else {
                        record_mode(svc, rt, PAIR_AVAILABLE);
                }
        }
        pthread_mutex_unlock(&rt->lock);
}

static void task_pair_delete(struct service *svc, const char *id, int64_t unused)
{
        struct pair_rt *rt = rt_get(svc, id);
        struct store_pair p;
        char path[CONFIG_PATH_LEN + 64];

        (void)unused;
        if (!rt || store_pair_get(svc->store, NULL, id, &p) < 0)
                return;
        pthread_mutex_lock(&rt->lock);
        if (rt->m && !rt->dr) {
                /* DR on another node: closing the mirror closes its link,
                 * then the DR node is asked to release its volume while the
                 * row still says deleting, so the pair is gone only after
                 * (links.c). Unreachable: the delete goes on; the DR node
                 * releases it at the link's close or at its next start
                 * (multi-site.md "Remote DR links", Delete). */
                rt_stop(rt, true);
                if (service_link_release_remote(svc, id) < 0)
                        log_warn("pair %s: the DR node did not confirm the release of its "
                                 "volume; it releases it when it sees the link closed",
                                 id);
        } else if (rt->m) {
                struct volume *dr = rt->dr;

                volume_get(dr);
                rt_stop(rt, true);
                dr_set_read_only(dr, false);
                volume_put(dr);
        } else {
                /* Never started (error) or start-up found it deleting. */
                struct store_volume pv = {0}, dv = {0};

                if (pair_roles(svc, &p, &pv, &dv) == 0) {
                        struct volume *dr = volreg_lookup(dv.availability_zone, dv.id);
                        if (dr) {
                                dr_set_read_only(dr, dv.fenced);
                                volume_put(dr);
                        }
                        store_volume_clear(&pv);
                        store_volume_clear(&dv);
                }
                meta_path(svc, &p, path, sizeof(path));
                unlink(path);
        }
        if (store_pair_delete(svc->store, id) < 0) {
                pair_row_set_status(&p, PAIR_ERROR_DELETING);
                store_pair_update(svc->store, &p);
                pthread_mutex_unlock(&rt->lock);
                return;
        }
        rt_drop(svc, rt);
        pthread_mutex_unlock(&rt->lock);
        rt_put(rt); /* the registry's reference */
}

static void task_pair_event(struct service *svc, const char *id, int64_t ev)
{
        struct pair_rt *rt;

        pthread_mutex_lock(&svc->pairs_mu);
        rt = rt_find_locked(svc, id);
        pthread_mutex_unlock(&svc->pairs_mu);
        if (!rt)
                return;
        pthread_mutex_lock(&rt->lock);
        if (rt->m) {
                log_info("pair %s: %s", id,
                         ev == MIRROR_EV_SYNCED       ? "in sync (active)"
                         : ev == MIRROR_EV_DR_FAULT   ? "DR fault (inactive, fault level 5)"
                         : ev == MIRROR_EV_PROD_FAULT ? "production fault (inactive, fault level 2)"
                                                      : "frozen with its group (active-stopped)");
                record_mode(svc, rt, PAIR__COUNT);
        }
        pthread_mutex_unlock(&rt->lock);
}

/* Engine thread, no engine lock held: hand over to the task thread. */
static void on_event(void *ctx, const char *pair_id, enum mirror_event ev)
{
        service_enqueue(ctx, task_pair_event, pair_id, ev);
}

/* ---- start and stop ---- */

static enum mirror_mode mode_of(const char *s)
{
        if (strcmp(s, "track") == 0)
                return MIRROR_TRACK;
        if (strcmp(s, "resync") == 0)
                return MIRROR_RESYNC;
        return MIRROR_SYNC;
}

void service_pairs_reconcile(struct service *svc)
{
        struct store_pair *ps = NULL;
        size_t n = 0;

        if (store_pair_list_all(svc->store, &ps, &n) < 0) {
                log_error("cannot list pairs at start");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct store_pair *p = &ps[i];
                struct pair_rt *rt;
                uint64_t dirty = 0;
                int rc;

                enum pair_status pst = pair_row_status(p);

                /* Mirrors run on the node serving the production AZ. */
                if (!config_site(svc->cfg, p->priority_station))
                        continue;
                if (pst == PAIR_CREATING) {
                        service_enqueue(svc, task_pair_create, p->id, 0);
                        continue;
                }
                if (pst == PAIR_DELETING) {
                        service_enqueue(svc, task_pair_delete, p->id, 0);
                        continue;
                }
                if (!(rt = rt_get(svc, p->id)))
                        continue;
                if (pst == PAIR_ERROR_DELETING) {
                        /* A delete that failed half way (its meta file may
                         * be gone): only a DELETE is accepted, and no
                         * mirror or link opens for it again. */
                        log_warn("pair %s: error_deleting; its mirror stays stopped until a "
                                 "DELETE finishes it",
                                 p->id);
                        continue;
                }
                if (pst == PAIR_ERROR) {
                        /* Its mirror did not run: writes on production
                         * went untracked, so the bitmap on disk no longer
                         * names every difference. It stays stopped until a
                         * group sync restarts it with a full copy
                         * (pair_rt_restart), or the pair is deleted. */
                        log_warn("pair %s: in error; its mirror stays stopped until a sync of "
                                 "its group restarts it (full copy)",
                                 p->id);
                        continue;
                }
                pthread_mutex_lock(&rt->lock);
                rc = rt_start(svc, rt, p, false, mode_of(p->mirror_mode), &dirty);
                if (rc < 0) {
                        log_error("pair %s: cannot resume mirroring: %s", p->id, strerror(-rc));
                        record_error(svc, p->id, rc == -ENOENT ? FD_DR_MISSING : FD_INTERNAL);
                } else {
                        log_info("pair %s: resumed in %s (%llu dirty chunks)", p->id,
                                 mirror_mode_name(mirror_mode(rt->m)), (unsigned long long)dirty);
                        /* An extend rolled back at start-up: the row follows
                         * the disks. */
                        if ((int64_t)(volume_size(rt->prod) / GIB) != p->volume_size_gib) {
                                p->volume_size_gib = (int64_t)(volume_size(rt->prod) / GIB);
                                store_pair_update(svc->store, p);
                        }
                        record_mode(svc, rt, PAIR__COUNT);
                }
                pthread_mutex_unlock(&rt->lock);
        }
        free(ps);
}

void service_pairs_stop(struct service *svc)
{
        pthread_mutex_lock(&svc->pairs_mu);
        while (svc->pairs) {
                struct pair_rt *rt = svc->pairs;

                svc->pairs = rt->next;
                rt_unhash_locked(svc, rt);
                pthread_mutex_lock(&rt->lock);
                rt_stop(rt, false);
                pthread_mutex_unlock(&rt->lock);
                assert(rt->refs == 1); /* HTTP and tasks are stopped */
                rt_free(rt);
        }
        pthread_mutex_unlock(&svc->pairs_mu);
}

/* ---- requests (HTTP threads) ---- */

static int get_volume(struct service *svc, const char *project, const char *id,
                      struct store_volume *v, const char *side, const char *fd, char *fdout,
                      char *msg, size_t msglen)
{
        int rc = util_uuid_valid(id) ? store_volume_get(svc->store, project, id, v) : -ENOENT;

        if (rc == -ENOENT) {
                snprintf(fdout, 16, "%s", fd);
                snprintf(msg, msglen, "%s volume %s does not exist (failure_detail %s)", side, id,
                         fd);
        }
        return rc;
}

int service_pair_create(struct service *svc, const struct pair_create_req *rq,
                        struct store_pair *out, char *failure_detail, char *msg, size_t msglen)
{
        struct store_volume pv = {0}, dv = {0};
        int rc;

        failure_detail[0] = '\0';
        if (strcmp(rq->volume_ids[0], rq->volume_ids[1]) == 0) {
                snprintf(msg, msglen, "replication.volume_ids must name two different volumes");
                return -EINVAL;
        }
        if ((rc = get_volume(svc, rq->project_id, rq->volume_ids[0], &pv, "production",
                             FD_PROD_MISSING, failure_detail, msg, msglen)) < 0)
                return rc;
        if ((rc = get_volume(svc, rq->project_id, rq->volume_ids[1], &dv, "DR", FD_DR_MISSING,
                             failure_detail, msg, msglen)) < 0)
                goto out;
        rc = -EINVAL;
        if (!config_site(svc->cfg, rq->priority_station)) {
                snprintf(msg, msglen, "replication.priority_station '%s' is not a configured zone",
                         rq->priority_station);
        } else if (strcmp(pv.availability_zone, dv.availability_zone) == 0) {
                snprintf(msg, msglen,
                         "the two volumes are both in %s; a pair needs one volume in each zone",
                         pv.availability_zone);
        } else if (strcmp(rq->priority_station, pv.availability_zone) != 0) {
                snprintf(msg, msglen,
                         "replication.priority_station (%s) must be the zone of the production "
                         "(first) volume, %s",
                         rq->priority_station, pv.availability_zone);
        } else if (pv.size_gib != dv.size_gib) {
                snprintf(failure_detail, 16, FD_SIZE_MISMATCH);
                snprintf(msg, msglen,
                         "the volumes differ in size (%lld GiB and %lld GiB; failure_detail %s)",
                         (long long)pv.size_gib, (long long)dv.size_gib, FD_SIZE_MISMATCH);
        } else if (strcmp(pv.volume_type, dv.volume_type) != 0) {
                snprintf(msg, msglen, "the volumes differ in volume_type (%s and %s)",
                         pv.volume_type, dv.volume_type);
        } else if (pv.pair_id[0] || dv.pair_id[0]) {
                bool p_side = pv.pair_id[0] != '\0';
                snprintf(failure_detail, 16, "%s", p_side ? FD_PROD_PAIRED : FD_DR_PAIRED);
                snprintf(msg, msglen,
                         "%s volume %s is already in replication pair %s (failure_detail %s)",
                         p_side ? "production" : "DR", p_side ? pv.id : dv.id,
                         p_side ? pv.pair_id : dv.pair_id, failure_detail);
                rc = -EBUSY;
        } else if ((rc = volume_check(volume_row_status(&pv), VOL_OP_PAIR, "production volume",
                                      pv.id, msg, msglen)) == 0) {
                rc = volume_check(volume_row_status(&dv), VOL_OP_PAIR, "DR volume", dv.id, msg,
                                  msglen);
        }
        if (rc < 0)
                goto out;

        memset(out, 0, sizeof(*out));
        util_uuid_v4(out->id);
        snprintf(out->project_id, sizeof(out->project_id), "%s", rq->project_id);
        snprintf(out->name, sizeof(out->name), "%s", rq->name ? rq->name : "");
        snprintf(out->description, sizeof(out->description), "%s",
                 rq->description ? rq->description : "");
        pair_row_set_status(out, PAIR_CREATING);
        snprintf(out->volume_ids[0], sizeof(out->volume_ids[0]), "%s", pv.id);
        snprintf(out->volume_ids[1], sizeof(out->volume_ids[1]), "%s", dv.id);
        snprintf(out->priority_station, sizeof(out->priority_station), "%s", pv.availability_zone);
        snprintf(out->replication_model, sizeof(out->replication_model), "hypermetro");
        out->volume_size_gib = pv.size_gib;
        snprintf(out->volume_type, sizeof(out->volume_type), "%s", pv.volume_type);
        out->multiattach = pv.multiattach;
        snprintf(out->mirror_mode, sizeof(out->mirror_mode), "resync");
        out->created_at = util_now_usec();
        rc = store_pair_insert(svc->store, out);
        if (rc == -EEXIST) {
                snprintf(msg, msglen, "one of the volumes was paired by a concurrent request");
                rc = -EBUSY;
        } else if (rc < 0) {
                snprintf(msg, msglen, "cannot record the pair");
        } else {
                rc = service_enqueue(svc, task_pair_create, out->id, 0);
        }
out:
        store_volume_clear(&pv);
        store_volume_clear(&dv);
        return rc;
}

static int pair_delete_locked(struct service *svc, const char *project, const char *id, char *msg,
                              size_t msglen);

int service_pair_delete(struct service *svc, const char *project, const char *id, char *msg,
                        size_t msglen)
{
        int rc;

        /* members_mu: a group create/update cannot take the pair between
         * our "in no group" check and the deleting row. */
        pthread_mutex_lock(&svc->members_mu);
        rc = pair_delete_locked(svc, project, id, msg, msglen);
        pthread_mutex_unlock(&svc->members_mu);
        return rc;
}

static int pair_delete_locked(struct service *svc, const char *project, const char *id, char *msg,
                              size_t msglen)
{
        struct store_pair p;
        int rc = store_pair_get(svc->store, project, id, &p);

        if (rc == -ENOENT)
                snprintf(msg, msglen, "replication pair %s does not exist", id);
        if (rc < 0)
                return rc;
        if ((rc = pair_check(pair_row_status(&p), p.group_id, PAIR_OP_DELETE, id, msg, msglen)) < 0)
                return rc;
        pair_row_set_status(&p, PAIR_DELETING);
        p.updated_at = util_now_usec();
        if ((rc = store_pair_update(svc->store, &p)) < 0)
                return rc;
        return service_enqueue(svc, task_pair_delete, id, 0);
}

/* The probe of a volume file as a note holds it: a watched file's result
 * is left out (0), since every change to it bumps the generation
 * (common/replygen.h, replygen_fs_watch); an unwatched one's is kept. */
static int probe_noted(struct volume *v, int probed)
{
        return v && volume_probe_watched(v) ? 0 : probed;
}

/* One read of the pair's live state: the reply's figures (out, NULL when
 * only the note is wanted) and the reply cache's note of what they were
 * made from (n, zeroed by the caller). *busy: the pair's lock was held,
 * nothing was read. A note-only read skips the probes of watched files. */
static bool pair_live_read(struct service *svc, const char *id, struct pair_live *out,
                           struct pair_live_note *n, bool *busy)
{
        struct mirror_stats st;
        struct pair_rt *rt;
        bool ok = false, locked = false, ref = false;

        /* trylock under pairs_mu: a GET never waits behind a long engine
         * step of this pair, and rt cannot be freed while we hold it. */
        *busy = false;
        pthread_mutex_lock(&svc->pairs_mu);
        rt = rt_find_locked(svc, id);
        if (rt && !(locked = pthread_mutex_trylock(&rt->lock) == 0))
                rt->refs++; /* kept alive while we try again without pairs_mu */
        pthread_mutex_unlock(&svc->pairs_mu);
        if (!rt)
                return false;
        if (!locked) {
                /* Held by another GET reading these figures (microseconds):
                 * try again while that is who holds it. Held by anything
                 * else (an action, the task thread): busy, never waited for.
                 * Without this, concurrent GETs of one pair made each other
                 * busy and the reply cache dropped entries that had not
                 * changed (bench/api.sh, 32 connections). */
                for (int i = 0; i < 200 && !locked && atomic_load(&rt->live_readers) > 0; i++) {
                        sched_yield();
                        locked = pthread_mutex_trylock(&rt->lock) == 0;
                }
                if (locked && rt->dead) {
                        pthread_mutex_unlock(&rt->lock);
                        locked = false;
                } else if (!locked) {
                        *busy = true;
                }
                if (!locked) {
                        rt_put(rt);
                        return false;
                }
                ref = true; /* let go after the lock */
        }
        atomic_fetch_add(&rt->live_readers, 1);
        if (rt->m) {
                int prod_probe =
                    out || !volume_probe_watched(rt->prod) ? volume_probe(rt->prod) : 0;
                int dr_probe =
                    rt->dr && (out || !volume_probe_watched(rt->dr)) ? volume_probe(rt->dr) : 0;
                int last = volume_last_error(rt->prod);

                mirror_stats(rt->m, &st);
                n->ok = true;
                n->progress = st.progress;
                n->mode = (int)st.mode;
                n->dirty_bytes = st.dirty_chunks * st.chunk_bytes;
                n->bytes_copied = st.bytes_copied;
                n->sidecar_bytes = st.sidecar_bytes;
                n->rate_bps = st.rate_bps;
                n->prod_error = st.prod_error;
                n->dr_error = st.dr_error;
                n->prod_last_error = last;
                n->prod_probe = probe_noted(rt->prod, prod_probe);
                n->dr_probe = probe_noted(rt->dr, dr_probe);
                /* A probe in the note: no epoch covers it (rule L). */
                if (!volume_probe_watched(rt->prod) || (rt->dr && !volume_probe_watched(rt->dr)))
                        replygen_live_uncovered();
                if (out) {
                        out->progress = st.progress;
                        out->mode = mirror_mode_name(st.mode);
                        out->dirty_bytes = n->dirty_bytes;
                        out->bytes_copied = st.bytes_copied;
                        out->sidecar_bytes = st.sidecar_bytes;
                        out->rate_bps = st.rate_bps;
                        out->fault_level = 0;
                        out->failure_detail = "";
                        if (st.prod_error || prod_probe < 0 || last < 0) {
                                out->fault_level = 2;
                                out->failure_detail = FD_PROD_MISSING;
                        } else if (st.dr_error || dr_probe < 0) {
                                out->fault_level = 5;
                                out->failure_detail = FD_PEER_DOWN;
                        }
                }
                ok = true;
        }
        atomic_fetch_sub(&rt->live_readers, 1);
        pthread_mutex_unlock(&rt->lock);
        if (ref)
                rt_put(rt);
        return ok;
}

bool service_pair_live_note(struct service *svc, const char *id, struct pair_live_note *n)
{
        bool busy;

        memset(n, 0, sizeof(*n)); /* padding too: notes are compared bytewise */
        pair_live_read(svc, id, NULL, n, &busy);
        return !busy;
}

bool service_pair_live(struct service *svc, const char *id, struct pair_live *out)
{
        struct pair_live_note n;
        bool busy, ok;

        /* The reply cache re-reads this note before serving a reply built
         * from it (common/replygen.h); a busy lock read nothing. */
        memset(&n, 0, sizeof(n));
        ok = pair_live_read(svc, id, out, &n, &busy);
        if (busy)
                replygen_taint();
        else
                replygen_note(REPLYGEN_PAIR_LIVE, id, &n, sizeof(n));
        return ok;
}

/* ---- remote links (links.c's monitor) ---- */

int pair_rt_remote_ids(struct service *svc, char (**ids)[STORE_ID_LEN], size_t *n)
{
        size_t cap = 0, k = 0;

        pthread_mutex_lock(&svc->pairs_mu);
        for (struct pair_rt *p = svc->pairs; p; p = p->next)
                cap++;
        *ids = calloc(cap ? cap : 1, STORE_ID_LEN);
        if (*ids)
                for (struct pair_rt *p = svc->pairs; p && k < cap; p = p->next)
                        if (p->link) /* read without p->lock: a hint, checked under it */
                                snprintf((*ids)[k++], STORE_ID_LEN, "%s", p->id);
        pthread_mutex_unlock(&svc->pairs_mu);
        *n = k;
        return *ids ? 0 : -ENOMEM;
}

static void link_backoff(struct pair_rt *rt, int64_t now_usec)
{
        rt->link_backoff_ms =
            rt->link_backoff_ms ? MIN(rt->link_backoff_ms * 2, LINK_BACKOFF_MAX_MS) : LINK_RETRY_MS;
        rt->link_retry_usec = now_usec + (int64_t)rt->link_backoff_ms * 1000;
}

int pair_rt_link_tick(struct service *svc, const char *id, int64_t now_usec, char *group_id,
                      size_t glen)
{
        struct pair_rt *rt = pair_rt_lock(svc, id);
        struct mirror_stats st;
        struct store_pair p;
        int err, rc = 0;

        group_id[0] = '\0';
        if (!rt)
                return 0;
        if (!rt->m || !rt->link || now_usec < rt->link_retry_usec)
                goto out;
        mirror_stats(rt->m, &st);
        err = service_link_broken(rt->link);
        if (err && !rt->link_down_usec)
                rt->link_down_usec = now_usec;
        if (err && st.mode != MIRROR_TRACK)
                goto out; /* the fault is being handled: TRACK comes first */
        if (!err) {
                rt->link_last_err = 0;
                rt->link_down_usec = 0;
        }
        if (!err && st.mode != MIRROR_TRACK) {
                rt->link_backoff_ms = 0; /* healthy and replicating */
                goto out;
        }
        if (err) {
                int r = service_link_reconnect(svc, id, mirror_prod(rt->m), rt->link);

                if (r < 0) {
                        rt->link_last_err = r;
                        if (!rt->link_backoff_ms)
                                log_warn("pair %s: DR link down (%s); retrying every %u..%u s", id,
                                         strerror(-r), LINK_RETRY_MS / 1000,
                                         LINK_BACKOFF_MAX_MS / 1000);
                        link_backoff(rt, now_usec);
                        goto out;
                }
                log_info("pair %s: DR link connected again", id);
                rt->link_last_err = 0;
                rt->link_down_usec = 0;
        }
        /* Connected. Resume what a DR fault stopped (a pause leaves no
         * dr_error: paused pairs stay paused). */
        if (!st.dr_error || !svc->cfg->auto_resync ||
            store_pair_get(svc->store, NULL, id, &p) < 0 || pair_row_status(&p) != PAIR_AVAILABLE)
                goto out;
        snprintf(group_id, glen, "%s", p.group_id);
        rc = 1;
        link_backoff(rt, now_usec); /* a resume that fails is not retried at once */
out:
        pair_rt_unlock(rt);
        return rc;
}

int pair_rt_link_look(struct service *svc, const char *id, int64_t now_usec,
                      struct pair_link_look *out)
{
        struct pair_rt *rt;

        memset(out, 0, sizeof(*out));
        /* trylock under pairs_mu, as service_pair_live: a report never
         * waits behind a reconnect or a group step holding the pair. */
        pthread_mutex_lock(&svc->pairs_mu);
        rt = rt_find_locked(svc, id);
        if (rt && pthread_mutex_trylock(&rt->lock) != 0) {
                pthread_mutex_unlock(&svc->pairs_mu);
                out->busy = true;
                return 0;
        }
        pthread_mutex_unlock(&svc->pairs_mu);
        if (!rt)
                return -ENOENT;
        if (!rt->m || !rt->link) {
                pthread_mutex_unlock(&rt->lock);
                return -ENOENT;
        }
        out->broken_err = service_link_broken(rt->link);
        out->last_err = rt->link_last_err;
        out->backoff_ms = rt->link_backoff_ms;
        if (out->broken_err) {
                out->retry_in_ms =
                    rt->link_retry_usec > now_usec ? (rt->link_retry_usec - now_usec) / 1000 : 0;
                out->down_ms = rt->link_down_usec ? (now_usec - rt->link_down_usec) / 1000 : 0;
        }
        pthread_mutex_unlock(&rt->lock);
        return 0;
}

int pair_rt_link_connect(struct service *svc, struct pair_rt *rt)
{
        int rc;

        if (!rt || !rt->m || !rt->link || !service_link_broken(rt->link))
                return 0;
        rc = service_link_reconnect(svc, rt->id, mirror_prod(rt->m), rt->link);
        if (rc == 0) {
                rt->link_backoff_ms = 0;
                rt->link_retry_usec = 0;
                rt->link_last_err = 0;
                rt->link_down_usec = 0;
                log_info("pair %s: DR link connected again", rt->id);
        }
        return rc;
}

int pair_rt_resume(struct service *svc, const char *id)
{
        struct pair_rt *rt = pair_rt_lock(svc, id);
        struct fence_member fm;
        int rc;

        if (!rt)
                return -ENOENT;
        fm = (struct fence_member){.m = rt->m, .prod = rt->prod, .dr = rt->dr};
        rc = fence_sync(&fm, 1);
        record_mode(svc, rt, PAIR__COUNT);
        pair_rt_unlock(rt);
        return rc;
}
