/* The group fence (fence.h; docs/design/faults.md).
 *
 * F1: between the moment the first member of a group leaves SYNC and the
 * moment the last one has, no write is acknowledged on any member without
 * its DR copy.
 *
 * Planned steps keep F1 with the submission fence: every production fence
 * is raised (no write in flight anywhere) before the first switch and
 * lowered after the last; debug builds assert it at every switch. The
 * pause closes the fences without draining them and holds, instead, the
 * answer of every write that finishes until the last switch
 * (volume_ack_hold; replication.md "The pause fence does not drain").
 * A DR fault keeps F1 with the acknowledgement fence: the freeze switches
 * every member under g->mu without I/O, and a not-mirrored write on a held
 * member passes g->mu before it is acknowledged.
 *
 * Lock order: volume fence -> range lock -> g->mu -> m->io -> m->mu. A write
 * held by the pause's answer hold waits in its volume's gate holding none
 * of them, so nothing the pause takes waits for it. g->mu is
 * never held while waiting for a fence, a range lock or I/O, except by the
 * sidecar discard (fence_group_cow_release, and the bind after a restart):
 * header writes and deletes, once per resync (replication.md, S5), and for
 * remote members the release record's store write and the discard request
 * (the service's hook: "The release record", R7). */
#include "engine/fence.h"
#include "engine/internal.h"
#include "engine/settle.h"
#include "engine/throttle.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "volume/volume.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct mirror_group {
        char id[40];
        pthread_mutex_t mu;
        struct mirror **members;
        size_t n;
        struct throttle *thr; /* the members' resync throttle (throttle.h) */
};

/* ---- groups ---- */

struct mirror_group *mirror_group_new(const char *group_id)
{
        struct mirror_group *g = calloc(1, sizeof(*g));

        if (!g)
                return NULL;
        snprintf(g->id, sizeof(g->id), "%s", group_id);
        if (!(g->thr = throttle_new(NULL, NULL))) {
                free(g);
                return NULL;
        }
        pthread_mutex_init(&g->mu, NULL);
        return g;
}

void mirror_group_free(struct mirror_group *g)
{
        if (!g)
                return;
        assert(g->n == 0);
        throttle_free(g->thr);
        free(g->members);
        pthread_mutex_destroy(&g->mu);
        free(g);
}

static bool listed(struct mirror *const *m, size_t n, const struct mirror *x)
{
        for (size_t i = 0; i < n; i++)
                if (m[i] == x)
                        return true;
        return false;
}

int mirror_group_set_members(struct mirror_group *g, struct mirror *const *m, size_t n)
{
        struct mirror **nm = NULL;

        if (n && !(nm = calloc(n, sizeof(*nm))))
                return -ENOMEM;
        pthread_mutex_lock(&g->mu);
        for (size_t i = 0; i < g->n; i++) {
                struct mirror *x = g->members[i];

                if (listed(m, n, x))
                        continue;
                pthread_mutex_lock(&x->mu);
                x->group = NULL;
                x->fault_hold = false;
                pthread_mutex_unlock(&x->mu);
        }
        for (size_t i = 0; i < n; i++) {
                pthread_mutex_lock(&m[i]->mu);
                assert(!m[i]->group || m[i]->group == g);
                m[i]->group = g;
                pthread_mutex_unlock(&m[i]->mu);
                nm[i] = m[i];
        }
        free(g->members);
        g->members = nm;
        g->n = n;
        /* S5 after a crash: one member's sidecar records the group's
         * discard, so every member's goes (some may be gone already). */
        for (size_t i = 0; i < n; i++) {
                if (!sidecar_discard_pending(nm[i]->sc))
                        continue;
                for (size_t j = 0; j < n; j++)
                        sidecar_discard(nm[j]->sc);
                break;
        }
        pthread_mutex_unlock(&g->mu);
        return 0;
}

struct throttle *mirror_group_throttle(struct mirror_group *g)
{
        return g->thr;
}

/* The group, and so its throttle, outlives every resync worker of its
 * members: membership changes only while the group is paused (no worker),
 * and a group is freed only without members. */
struct throttle *fence_group_throttle(struct mirror *m)
{
        struct throttle *t;

        pthread_mutex_lock(&m->mu);
        t = m->group ? m->group->thr : NULL;
        pthread_mutex_unlock(&m->mu);
        return t;
}

/* mirror_close: m leaves whatever group it is bound to. */
void fence_group_leave(struct mirror *m)
{
        struct mirror_group *g;

        pthread_mutex_lock(&m->mu);
        g = m->group;
        pthread_mutex_unlock(&m->mu);
        if (!g)
                return;
        pthread_mutex_lock(&g->mu);
        for (size_t i = 0; i < g->n; i++)
                if (g->members[i] == m) {
                        g->members[i] = g->members[--g->n];
                        break;
                }
        pthread_mutex_lock(&m->mu);
        m->group = NULL;
        m->fault_hold = false;
        pthread_mutex_unlock(&m->mu);
        pthread_mutex_unlock(&g->mu);
}

/* ---- the acknowledgement fence ---- */

/* The events a freeze owes the members it switched (other than origin),
 * emitted after g->mu is released. */
struct freeze_events {
        struct {
                mirror_event_fn fn;
                void *ctx;
                char id[40];
        } ev[256];
        size_t n;
};

/* Every member of g to TRACK at one instant, under g->mu (F1). */
static void freeze_locked(struct mirror_group *g, struct mirror *origin, struct freeze_events *fe)
{
        int64_t now = util_now_usec();

        fe->n = 0;
        for (size_t i = 0; i < g->n; i++) {
                struct mirror *x = g->members[i];
                bool switched;

                pthread_mutex_lock(&x->mu);
                switched = x->mode != MIRROR_TRACK;
                /* Only a member that was in SYNC holds the instant. */
                if (x->mode == MIRROR_SYNC) {
                        x->fault_frozen = true;
                        x->frozen_at = now;
                }
                x->mode = MIRROR_TRACK;
                x->fault_hold = true;
                if (switched) /* rule L (control-plane.md "The live epoch") */
                        replygen_live_bump();
                pthread_mutex_unlock(&x->mu);
                /* The worker notices TRACK at its next batch; its current
                 * batch only copies chunks that are dirty anyway. */
                atomic_store(&x->worker_stop, true);
                if (switched && x != origin && fe->n < ARRAY_SIZE(fe->ev)) {
                        fe->ev[fe->n].fn = x->on_event;
                        fe->ev[fe->n].ctx = x->event_ctx;
                        snprintf(fe->ev[fe->n].id, sizeof(fe->ev[fe->n].id), "%s", x->pair_id);
                        fe->n++;
                }
        }
}

static void freeze_emit(const struct freeze_events *fe)
{
        for (size_t i = 0; i < fe->n; i++)
                if (fe->ev[i].fn)
                        fe->ev[i].fn(fe->ev[i].ctx, fe->ev[i].id, MIRROR_EV_FROZEN);
}

void fence_fault_freeze(struct mirror_group *g, struct mirror *origin)
{
        struct freeze_events fe;

        pthread_mutex_lock(&g->mu);
        freeze_locked(g, origin, &fe);
        pthread_mutex_unlock(&g->mu);
        if (fe.n)
                log_warn("group %s: DR fault on pair %s: %zu other member(s) frozen at the same "
                         "instant",
                         g->id, origin->pair_id, fe.n);
        freeze_emit(&fe);
}

void fence_hold_wait(struct mirror_group *g)
{
        /* The freeze holds g->mu from its first switch to its last. */
        pthread_mutex_lock(&g->mu);
        pthread_mutex_unlock(&g->mu);
}

/* ---- the submission fence ---- */

/* Close every volume's gate first, then drain them: the members' in-flight
 * writes finish in parallel, so the fence costs the slowest member's drain,
 * not the sum of all (bench/group.sh: 16 pairs under load). No write waits
 * on another volume's gate (the mirror writes its DR leg past the gate), so
 * the order of the drains does not matter. */
static void raise_all(const struct fence_member *fm, size_t n, bool dr)
{
        for (size_t i = 0; i < n; i++) {
                if (!fm[i].m)
                        continue;
                volume_fence_close(fm[i].prod);
                if (dr && fm[i].dr) /* NULL: DR on another node */
                        volume_fence_close(fm[i].dr);
        }
        for (size_t i = 0; i < n; i++) {
                if (!fm[i].m)
                        continue;
                volume_fence_drain(fm[i].prod);
                if (dr && fm[i].dr)
                        volume_fence_drain(fm[i].dr);
        }
}

/* The pause closes the gates without draining them, and holds the answer
 * of every write that finishes until every member has switched
 * (fence_pause). */
static void close_all(const struct fence_member *fm, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (!fm[i].m)
                        continue;
                volume_fence_close(fm[i].prod);
                volume_ack_hold(fm[i].prod, true);
        }
}

static void release_acks(const struct fence_member *fm, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fm[i].m)
                        volume_ack_hold(fm[i].prod, false);
}

static void lower_all(const struct fence_member *fm, size_t n, bool dr)
{
        for (size_t i = 0; i < n; i++) {
                if (!fm[i].m)
                        continue;
                if (dr && fm[i].dr)
                        volume_fence_lower(fm[i].dr);
                volume_fence_lower(fm[i].prod);
        }
}

/* F1, checked at every switch of a planned step. */
static void fence_assert_all_raised(const struct fence_member *fm, size_t n)
{
        for (size_t i = 0; i < n; i++)
                assert(!fm[i].m || volume_fenced(fm[i].prod));
        (void)fm;
}

/* The pause's fence is a few microseconds of work in memory, but a thread
 * preempted inside it keeps every member's gate closed until it runs again:
 * under full write load (40 runnable threads on 2 cores) that held the
 * fence 22-35 ms in 2 pauses of 100. For that window the thread runs as
 * SCHED_FIFO when the process may (CAP_SYS_NICE); otherwise it runs as it
 * is. Nothing in the window spins, so a real-time thread there cannot
 * starve the others: it blocks on a mutex like any thread. */
struct rt_window {
        int policy;
        struct sched_param sp;
        bool on;
};

static void rt_enter(struct rt_window *w)
{
        struct sched_param fifo = {.sched_priority = 1};

        w->on = pthread_getschedparam(pthread_self(), &w->policy, &w->sp) == 0 &&
                w->policy == SCHED_OTHER &&
                pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo) == 0;
}

static void rt_leave(struct rt_window *w)
{
        if (w->on)
                (void)pthread_setschedparam(pthread_self(), w->policy, &w->sp);
}

/* The pause fence does not drain (replication.md, "The pause fence does not
 * drain"): the gates close and hold the answer of every write that
 * finishes, every member switches to TRACK, the answers go and the gates
 * open; then the writes that decided "mirrored" before their member's
 * switch are waited for, before the answer and before the settles. No
 * write is answered between the first switch and the last (F1); one
 * answered without its DR copy was answered after the last switch, and
 * whatever its client issues next reads TRACK too. */
int fence_pause(const struct fence_member *fm, size_t n, int *was, struct fence_result *res)
{
        struct fence_member sel[256];
        size_t idx[256], k = 0, switched = 0;
        struct mirror_group *g_switched = NULL;
        struct rt_window rt;
        int64_t t0, t1;
        int rc = 0;

        memset(res, 0, sizeof(*res));
        for (size_t i = 0; i < n; i++) {
                was[i] = -1;
                if (!fm[i].m || mirror_mode(fm[i].m) == MIRROR_TRACK || k == ARRAY_SIZE(sel))
                        continue;
                sel[k] = fm[i];
                idx[k++] = i;
        }
        if (k == 0)
                return 0;
        for (size_t j = 0; j < k; j++)
                mirror_quiesce(sel[j].m); /* outside the fence: it may finish a batch */
        rt_enter(&rt);
        t0 = util_mono_usec();
        close_all(sel, k);
        res->frozen_at = util_now_usec();
        for (size_t j = 0; j < k; j++) {
                struct mirror *m = sel[j].m;
                enum mirror_mode mode;

                fence_assert_all_raised(sel, k);
                pthread_mutex_lock(&m->mu);
                mode = m->mode;
                if (mode != MIRROR_TRACK && m->group)
                        g_switched = m->group;
                pthread_mutex_unlock(&m->mu);
                /* A fault froze it first (a write in flight failed its DR
                 * leg): not switched by the pause, was[] stays -1; its
                 * frozen_at is settled below. */
                if (mode == MIRROR_TRACK)
                        continue;
                switched++;
                was[idx[j]] = (int)mode;
                if (j > 0) /* tests: hold or delay the window between switches */
                        (void)fault_check(FP_PAUSE_WINDOW, m->pair_id);
                if (mirror_set_mode(m, MIRROR_TRACK) < 0) {
                        rc = -EIO;
                        continue;
                }
                pthread_mutex_lock(&m->mu);
                m->frozen_at = mode == MIRROR_SYNC || m->fault_frozen ? res->frozen_at : 0;
                pthread_mutex_unlock(&m->mu);
        }
        /* Members a freeze switched, of a group the pause switched a member
         * of itself: that freeze had not reached that member when the pause
         * read it, inside the window, so it ended inside the window, and
         * its held answers with it: they hold the pause's instant. Any
         * other (unbound, or every member frozen before the window) keeps
         * the freeze's. When the pause switched nothing there is no
         * instant of its own. */
        for (size_t j = 0; j < k && switched; j++) {
                struct mirror *m = sel[j].m;

                pthread_mutex_lock(&m->mu);
                if (was[idx[j]] < 0 && m->fault_frozen && g_switched && m->group == g_switched)
                        m->frozen_at = res->frozen_at;
                pthread_mutex_unlock(&m->mu);
        }
        if (!switched)
                res->frozen_at = 0;
        release_acks(sel, k);
        lower_all(sel, k, false);
        t1 = util_mono_usec();
        rt_leave(&rt);
        res->fence_usec = t1 - t0;
        stats_hist_observe_ns(&g_stats.fence, (uint64_t)res->fence_usec * 1000);
        /* DR stops changing before the answer: the writes in flight at the
         * switch finish (in parallel: each waits on its own legs). */
        for (size_t j = 0; j < k; j++)
                mirror_wait_mirrored(sel[j].m);
        res->inflight_usec = util_mono_usec() - t1;
        for (size_t j = 0; j < k; j++) /* after the answer: flushes (settle.h) */
                mirror_settle_start(sel[j].m);
        return rc;
}

int fence_capture(const struct fence_member *fm, size_t n, enum mirror_mode want,
                  void (*capture)(void *ctx, size_t i), void *ctx, struct fence_result *res)
{
        int64_t t0;
        int rc = 0;

        memset(res, 0, sizeof(*res));
        for (size_t i = 0; i < n; i++)
                if (!fm[i].m)
                        return -EAGAIN;
        t0 = util_mono_usec();
        raise_all(fm, n, false);
        res->frozen_at = util_now_usec();
        for (size_t i = 0; i < n && rc == 0; i++)
                if (mirror_mode(fm[i].m) != want)
                        rc = -EAGAIN; /* a fault froze the group meanwhile */
        for (size_t i = 0; i < n && rc == 0; i++) {
                fence_assert_all_raised(fm, n);
                capture(ctx, i);
        }
        lower_all(fm, n, false);
        res->fence_usec = util_mono_usec() - t0;
        stats_hist_observe_ns(&g_stats.fence, (uint64_t)res->fence_usec * 1000);
        return rc;
}

int fence_sync(const struct fence_member *fm, size_t n)
{
        int rc = 0;

        for (size_t i = 0; i < n; i++) {
                if (!fm[i].m || mirror_mode(fm[i].m) != MIRROR_TRACK)
                        continue;
                volume_fence_raise(fm[i].prod);
                if (mirror_set_mode(fm[i].m, MIRROR_RESYNC) < 0)
                        rc = -EIO;
                volume_fence_lower(fm[i].prod);
        }
        return rc;
}

int fence_swap(const struct fence_member *fm, size_t n, const struct fence_swap_ops *ops, void *ctx,
               struct fence_result *res)
{
        size_t done = 0;
        int64_t t0;
        int rc = 0;

        memset(res, 0, sizeof(*res));
        /* The bulk of the flushes before the fence (reverse: both legs;
         * failover: the old production), so the fenced ones are short. */
        t0 = util_mono_usec();
        settle_preflush(fm, n, ops->flush_dr_first);
        res->preflush_usec = util_mono_usec() - t0;
        for (size_t i = 0; i < n; i++)
                if (fm[i].m)
                        mirror_quiesce(fm[i].m);
        t0 = util_mono_usec();
        raise_all(fm, n, true);
        res->frozen_at = util_now_usec();
        /* Every member first: a swap that cannot happen must be found
         * before any member has swapped. */
        for (size_t i = 0; i < n && rc == 0; i++)
                rc = ops->preflight(ctx, i); /* also members without a mirror: refuse */
        for (; done < n && rc == 0; done++) {
                if (!fm[done].m)
                        continue;
                fence_assert_all_raised(fm, n);
                if ((rc = ops->swap(ctx, done)) < 0)
                        break; /* member `done` did not swap */
        }
        if (rc == 0 && (rc = ops->commit(ctx)) < 0)
                log_error("role swap: cannot record the new roles (%s): swapping back",
                          strerror(-rc));
        if (rc < 0) {
                bool stuck = false;

                while (done-- > 0)
                        if (fm[done].m && ops->unswap(ctx, done) < 0)
                                stuck = true;
                if (stuck) {
                        /* Neither side may take writes: no two productions,
                         * no write lost to a side that is not the record. */
                        log_error("role swap: cannot restore the old roles: every disk of the "
                                  "group is read-only until an operator intervenes");
                        for (size_t i = 0; i < n; i++)
                                if (fm[i].m)
                                        ops->lockdown(ctx, i);
                        rc = -ENOTRECOVERABLE;
                }
        }
        lower_all(fm, n, true);
        res->fence_usec = util_mono_usec() - t0;
        stats_hist_observe_ns(&g_stats.fence, (uint64_t)res->fence_usec * 1000);
        return rc;
}

int fence_grow(const struct fence_member *fm, uint64_t old_size, uint64_t new_size)
{
        int rc = 0;

        if (fm->m)
                settle_join(fm->m); /* not under the fence: it may be flushing */
        volume_fence_raise(fm->prod);
        if (fm->dr) {
                volume_fence_raise(fm->dr);
                rc = volume_resize(fm->dr, new_size);
        }
        if (rc == 0 && (rc = volume_resize(fm->prod, new_size)) == 0)
                rc = mirror_grow(fm->m, new_size);
        if (rc < 0) {
                /* Nothing was written in the new space (fenced): cutting it
                 * off again loses nothing, and keeps the NBD size equal to
                 * the recorded one. */
                if (volume_shrink_unused(fm->prod, old_size) < 0 ||
                    (fm->dr && volume_shrink_unused(fm->dr, old_size) < 0))
                        log_error("extend: cannot shrink the disks back to %llu bytes",
                                  (unsigned long long)old_size);
        } else if (!fm->dr && fm->link && fm->link->ops->reconnect) {
                /* A remote DR (grown by its node first): NBD cannot resize
                 * an export, a new connection sees the new size. One that
                 * fails is a DR fault at the next write, as any other. */
                int lr = fm->link->ops->reconnect(fm->link);

                if (lr == 0 && fm->link->ops->size(fm->link) != new_size)
                        lr = -EINVAL;
                if (lr < 0)
                        log_warn("extend: the DR link did not come back with the new size: %s",
                                 strerror(-lr));
        }
        if (fm->dr)
                volume_fence_lower(fm->dr);
        volume_fence_lower(fm->prod);
        return rc;
}

int fence_mirror_start(struct mirror *m, struct volume *prod, enum mirror_mode mode)
{
        int rc;

        volume_fence_raise(prod);
        rc = mirror_start(m, mode);
        volume_fence_lower(prod);
        return rc;
}

void fence_mirror_close(struct mirror *m, struct volume *prod, bool remove_meta)
{
        volume_fence_raise(prod);
        mirror_close(m, remove_meta);
        volume_fence_lower(prod);
}

int fence_resize(struct volume *v, uint64_t size_bytes)
{
        int rc;

        volume_fence_raise(v);
        rc = volume_resize(v, size_bytes);
        volume_fence_lower(v);
        return rc;
}

void fence_set_read_only(struct volume *v, bool ro)
{
        volume_fence_raise(v);
        volume_set_read_only(v, ro);
        volume_fence_lower(v);
}

/* ---- sidecars ---- */

int fence_group_cow_release(struct mirror_group *g, struct mirror *origin)
{
        struct freeze_events fe = {.n = 0};
        bool all = true, frozen = false;

        /* Under g->mu so no fault freeze interleaves: a freeze after this
         * finds every member in SYNC, a new consistent instant. The
         * deletes are the only I/O done under g->mu (once per resync). */
        pthread_mutex_lock(&g->mu);
        for (size_t i = 0; i < g->n && all; i++) {
                pthread_mutex_lock(&g->members[i]->mu);
                all = g->members[i]->mode == MIRROR_SYNC;
                pthread_mutex_unlock(&g->members[i]->mu);
        }
        /* S5: every member's intent durable before the first delete, so a
         * crash half way cannot leave some members' sidecars behind. */
        for (size_t i = 0; i < g->n && all; i++)
                if (sidecar_discard_intent(g->members[i]->sc) < 0)
                        all = false; /* kept; the next SYNC tries again */
        for (size_t i = 0; i < g->n && all; i++)
                sidecar_discard(g->members[i]->sc);
        /* Members over a remote link: their sidecars are on the DR node
         * (one node for the group): the release recorded in the store,
         * then one request, S5 among them there (replication.md, "The
         * release record": still under g->mu, R7). */
        if (all) {
                const char **ids = calloc(g->n ? g->n : 1, sizeof(*ids));
                size_t k = 0;
                /* No memory for the list: neither recorded nor sent (R8). */
                int rc = MIRROR_COW_UNRELEASED;

                for (size_t i = 0; ids && i < g->n; i++)
                        if (!link_is_local(g->members[i]->link))
                                ids[k++] = g->members[i]->pair_id;
                if (!ids || (rc = mirror_cow_remote_discard(g->id, ids, k)) < 0)
                        log_error("group of %s: the DR node did not discard the sidecars",
                                  g->n ? g->members[0]->pair_id : "?");
                free(ids);
                /* R8: neither the release record nor the discard is durable,
                 * so a failover could still roll back to the sidecars: the
                 * group does not read active (a write acknowledged from
                 * here would be lost); frozen as one, it reads paused until
                 * a sync records the release. */
                if (rc == MIRROR_COW_UNRELEASED) {
                        freeze_locked(g, origin, &fe);
                        frozen = true;
                }
        }
        pthread_mutex_unlock(&g->mu);
        if (frozen) {
                log_error("group %s: its resync completed but the release of its sidecars is "
                          "neither recorded nor sent: the group is frozen (paused) until a sync "
                          "records it",
                          g->id);
                freeze_emit(&fe);
                return MIRROR_COW_UNRELEASED;
        }
        return 0;
}
