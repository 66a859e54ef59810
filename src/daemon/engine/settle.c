/* Settle threads and the parallel pre-fence flush (settle.h).
 *
 * One settle thread per mirror at most, started on demand: it runs
 * mirror_settle until every round asked of it is done, then ends (still
 * joinable until settle_join or the next start reaps it). Callers that
 * start or join a mirror's settle are serialised by the service (one group
 * action at a time on a member), so settle_mu only orders them against the
 * thread itself. */
#include "engine/settle.h"
#include "engine/internal.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "volume/volume.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

static void *settle_main(void *arg)
{
        struct mirror *m = arg;

        pthread_mutex_lock(&m->settle_mu);
        while (m->settle_done < m->settle_req) {
                uint64_t want = m->settle_req;
                int64_t t0;
                int rc;

                pthread_mutex_unlock(&m->settle_mu);
                t0 = util_mono_usec();
                rc = mirror_settle(m);
                if (rc < 0)
                        log_warn("pair %s: settle after the pause failed (%s); its activity log "
                                 "stays hot",
                                 m->pair_id, strerror(-rc));
                else
                        log_debug("pair %s: settled in %lld us", m->pair_id,
                                  (long long)(util_mono_usec() - t0));
                stats_hist_observe_ns(&g_stats.settle, (uint64_t)(util_mono_usec() - t0) * 1000);
                pthread_mutex_lock(&m->settle_mu);
                m->settle_done = want;
        }
        m->settle_active = false;
        atomic_fetch_sub(&g_stats.settles_running, 1);
        pthread_mutex_unlock(&m->settle_mu);
        return NULL;
}

void mirror_settle_start(struct mirror *m)
{
        int rc;

        pthread_mutex_lock(&m->settle_mu);
        m->settle_req++;
        if (m->settle_active) { /* it will do one more round */
                pthread_mutex_unlock(&m->settle_mu);
                return;
        }
        if (m->settle_joinable) { /* it has finished its loop: reap it */
                pthread_join(m->settle_thread, NULL);
                m->settle_joinable = false;
        }
        m->settle_active = true;
        atomic_fetch_add(&g_stats.settles_running, 1);
        rc = pthread_create(&m->settle_thread, NULL, settle_main, m);
        if (rc == 0) {
                m->settle_joinable = true;
                pthread_mutex_unlock(&m->settle_mu);
                return;
        }
        /* No thread: settle here (the old, slower answer; still correct). */
        m->settle_active = false;
        atomic_fetch_sub(&g_stats.settles_running, 1);
        m->settle_done = m->settle_req;
        pthread_mutex_unlock(&m->settle_mu);
        log_warn("pair %s: no settle thread (%s): settling before the answer", m->pair_id,
                 strerror(rc));
        mirror_settle(m);
}

void settle_join(struct mirror *m)
{
        bool joinable;

        pthread_mutex_lock(&m->settle_mu);
        joinable = m->settle_joinable;
        m->settle_joinable = false;
        pthread_mutex_unlock(&m->settle_mu);
        if (joinable)
                pthread_join(m->settle_thread, NULL);
}

int mirror_settles_running(void)
{
        return atomic_load(&g_stats.settles_running);
}

/* ---- the parallel flush before a swap's fence ---- */

struct preflush {
        struct mirror *m;
        bool dr;
        pthread_t t;
        bool started;
};

static void *preflush_one(void *arg)
{
        struct preflush *p = arg;

        settle_join(p->m);
        resync_stop(p->m);
        volume_local_flush(p->m->prod);
        if (p->dr)
                p->m->link->ops->flush(p->m->link);
        return NULL;
}

void settle_preflush(const struct fence_member *fm, size_t n, bool dr)
{
        struct preflush p[256];
        size_t k = 0;

        for (size_t i = 0; i < n && k < ARRAY_SIZE(p); i++) {
                if (!fm[i].m)
                        continue;
                p[k].m = fm[i].m;
                p[k].dr = dr;
                p[k].started = pthread_create(&p[k].t, NULL, preflush_one, &p[k]) == 0;
                if (!p[k].started)
                        preflush_one(&p[k]);
                k++;
        }
        for (size_t j = 0; j < k; j++)
                if (p[j].started)
                        pthread_join(p[j].t, NULL);
}
