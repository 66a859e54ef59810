/* A group's resync throttle (group_ext.h; docs/design/replication.md
 * "Resync throttle"): the setting is stored (group_throttles) and applied
 * to the group's engine binding, whose token bucket the members' resync
 * workers consult after every batch, so a change reaches a running resync
 * within one batch, without a restart.
 *
 * Lock order: members_mu (the bindings) -> store; the engine's throttle has
 * its own mutex. */
#include "service/group_ext.h"
#include "service/internal.h"
#include "common/log.h"
#include "common/replygen.h"
#include "common/util.h"
#include "engine/fence.h"
#include "engine/throttle.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static void apply(struct mirror_group *mg, const struct group_throttle_setting *set)
{
        struct throttle_cfg cfg = {
            .max_bps = set->max_bps, .min_bps = set->min_bps, .adaptive = set->adaptive};

        if (mg)
                throttle_set(mirror_group_throttle(mg), &cfg);
}

void group_throttle_restore(struct service *svc, struct mirror_group *mg, const char *group_id)
{
        struct store_group_throttle row;
        struct group_throttle_setting set;

        if (store_group_throttle_get(svc->store, group_id, &row) < 0)
                return; /* none set (or unreadable: unthrottled, as before) */
        set.max_bps = (uint64_t)row.max_bps;
        set.min_bps = (uint64_t)row.min_bps;
        set.adaptive = row.adaptive;
        apply(mg, &set);
}

int service_group_throttle_set(struct service *svc, const char *project, const char *id,
                               const struct group_throttle_setting *set, char *msg, size_t msglen)
{
        struct store_group_throttle row = {0};
        struct store_group g;
        int rc;

        if (set->max_bps && set->min_bps > set->max_bps) {
                snprintf(msg, msglen,
                         "the floor (min_mib_per_sec) must not be above the ceiling "
                         "(max_mib_per_sec)");
                return -EINVAL;
        }
        pthread_mutex_lock(&svc->members_mu);
        rc = store_group_get(svc->store, project, id, &g);
        if (rc == -ENOENT)
                snprintf(msg, msglen, "replication consistency group %s does not exist", id);
        if (rc == 0) {
                snprintf(row.group_id, sizeof(row.group_id), "%s", id);
                row.max_bps = (int64_t)set->max_bps;
                row.min_bps = (int64_t)set->min_bps;
                row.adaptive = set->adaptive;
                row.updated_at = util_now_usec();
                rc = store_group_throttle_set(svc->store, &row);
        }
        if (rc == 0) {
                apply(group_engine_locked(svc, id), set);
                log_info("group %s: resync throttle: ceiling %llu B/s, floor %llu B/s%s", id,
                         (unsigned long long)set->max_bps, (unsigned long long)set->min_bps,
                         set->adaptive ? ", adaptive" : "");
        }
        pthread_mutex_unlock(&svc->members_mu);
        return rc;
}

/* The engine's part of the view; members_mu by trylock (busy when held). */
static void throttle_live(struct service *svc, const char *group_id, struct group_throttle_view *v)
{
        struct mirror_group *mg;

        /* A GET never waits behind a group step holding members_mu; only
         * behind another GET's read (microseconds), as pair_live_read. */
        bool locked = pthread_mutex_trylock(&svc->members_mu) == 0;

        for (int i = 0; i < 200 && !locked && atomic_load(&svc->members_readers) > 0; i++) {
                sched_yield();
                locked = pthread_mutex_trylock(&svc->members_mu) == 0;
        }
        if (!locked) {
                v->busy = true;
                return;
        }
        atomic_fetch_add(&svc->members_readers, 1);
        if ((mg = group_engine_locked(svc, group_id))) {
                struct throttle_state st;

                throttle_get(mirror_group_throttle(mg), &st);
                v->live = true;
                v->limit_bps = st.limit_bps;
                v->rate_bps = st.rate_bps;
                v->sync_rate_bps = st.sync_rate_bps;
        }
        atomic_fetch_sub(&svc->members_readers, 1);
        pthread_mutex_unlock(&svc->members_mu);
}

static void note_fill(struct group_throttle_note *n, const struct group_throttle_view *v)
{
        memset(n, 0, sizeof(*n)); /* padding too: notes are compared bytewise */
        n->live = v->live;
        n->limit_bps = v->limit_bps;
        n->rate_bps = v->rate_bps;
        n->sync_rate_bps = v->sync_rate_bps;
}

bool service_group_throttle_note(struct service *svc, const char *group_id,
                                 struct group_throttle_note *n)
{
        struct group_throttle_view v;

        memset(&v, 0, sizeof(v));
        throttle_live(svc, group_id, &v);
        note_fill(n, &v);
        return !v.busy;
}

int service_group_throttle_view(struct service *svc, const char *group_id,
                                struct group_throttle_view *v)
{
        struct store_group_throttle row;
        struct group_throttle_note n;
        int rc;

        memset(v, 0, sizeof(*v));
        rc = store_group_throttle_get(svc->store, group_id, &row);
        if (rc == 0) {
                v->set.max_bps = (uint64_t)row.max_bps;
                v->set.min_bps = (uint64_t)row.min_bps;
                v->set.adaptive = row.adaptive;
        } else if (rc != -ENOENT) {
                replygen_taint(); /* a reply without the setting is never cached */
                return rc;
        }
        throttle_live(svc, group_id, v);
        /* The reply cache (common/replygen.h): the setting is a store row
         * (the generation covers it); the live figures are noted and read
         * again at every hit. A busy members_mu read nothing live. */
        if (v->busy) {
                replygen_taint();
        } else {
                note_fill(&n, v);
                replygen_note(REPLYGEN_GROUP_THROTTLE, group_id, &n, sizeof(n));
        }
        return 0;
}
