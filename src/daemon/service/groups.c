/* Replication consistency groups: api.md groups section and the action
 * table of semantics.md.
 *
 *   status:  creating --members paused under one fence--> available
 *            available --PUT--> updating --added pairs paused--> available
 *            available|error|error_* --DELETE (no members)--> deleting --> gone
 *            error|error_reversing|error_failovering --sync--> available
 *              (members without a running mirror restarted, full copy)
 *   replication_status: derived from the member pairs on every read
 *            (service_group_derive); stored as a cache with each change.
 *
 * Every step that must happen at one instant across the members (pause,
 * reverse, failover) runs in engine/fence.c, which owns the fences and the
 * invariant F1 (docs/semantics.md "The fence", docs/design/faults.md); this
 * file checks the action against the group state table (group_check,
 * service/states.c, which also words the 409), calls the engine, and records
 * the result in one transaction (commit_group; every status write goes
 * through set_group_status, which asserts the transition). The members' mirrors
 * are bound to the group in the engine (group_bind), so a fault on any one
 * freezes them all.
 *
 * Lock order: group stripe -> members_mu (membership changes) -> pair locks
 * (member order) -> store tx. The engine is called with pair locks held and
 * never calls back into the service except through the task queue. */
#include "service/internal.h"
#include "service/handoff.h"
#include "service/pause_memo.h"
#include "common/replygen.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "engine/fence.h"
#include "engine/mirror.h"
#include "volume/volume.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_MEMBERS 256

/* An unknown or empty name counts as inactive. */
static enum repl_status repl_of(const char *name)
{
        enum repl_status rs = REPL_INACTIVE;

        repl_status_parse(name, &rs);
        return rs;
}

const char *service_group_derive(const char *const *st, size_t n)
{
        enum repl_status rs[MAX_MEMBERS];

        n = MIN(n, (size_t)MAX_MEMBERS);
        for (size_t i = 0; i < n; i++)
                rs[i] = repl_of(st[i]);
        return repl_status_name(repl_derive(rs, n));
}

pthread_mutex_t *service_group_stripe(struct service *svc, const char *id)
{
        uint32_t h = 2166136261u;

        for (const char *p = id; *p; p++)
                h = (h ^ (unsigned char)*p) * 16777619u;
        return &svc->group_stripes[h % ARRAY_SIZE(svc->group_stripes)];
}

static pthread_mutex_t *stripe(struct service *svc, const char *id)
{
        return service_group_stripe(svc, id);
}

/* A member with a fault counts as error; paused members hold one DR image
 * only when they were frozen by the same fence (same frozen_at): a member
 * paused at another instant counts as inactive. */
static enum repl_status derive_pairs(const struct store_pair *ps, size_t n)
{
        enum repl_status st[MAX_MEMBERS];
        const struct store_pair *first_stopped = NULL;

        n = MIN(n, (size_t)MAX_MEMBERS);
        for (size_t i = 0; i < n; i++) {
                st[i] = repl_of(ps[i].replication_status);
                if (ps[i].fault_level > 0)
                        st[i] = REPL_ERROR;
                if (st[i] != REPL_ACTIVE_STOPPED)
                        continue;
                if (!first_stopped)
                        first_stopped = &ps[i];
                else if (ps[i].frozen_at != first_stopped->frozen_at)
                        st[i] = REPL_INACTIVE;
        }
        return repl_derive(st, n);
}

enum repl_status service_group_derive_pairs(const struct store_pair *ps, size_t n)
{
        return derive_pairs(ps, n);
}

int service_group_view(struct service *svc, const struct store_group *g, struct group_view *v)
{
        struct store_pair *ps = NULL;
        size_t n = 0;
        int rc;

        memset(v, 0, sizeof(*v));
        if ((rc = store_pair_list_by_group(svc->store, g->id, &ps, &n)) < 0)
                return rc;
        snprintf(v->replication_status, sizeof(v->replication_status), "%s",
                 repl_status_name(derive_pairs(ps, n)));
        v->ids = calloc(n ? n : 1, STORE_ID_LEN);
        if (!v->ids) {
                free(ps);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct pair_live live;

                snprintf(v->ids[i], STORE_ID_LEN, "%s", ps[i].id);
                if (ps[i].fault_level > v->fault_level) {
                        v->fault_level = ps[i].fault_level;
                        snprintf(v->failure_detail, sizeof(v->failure_detail), "%s",
                                 ps[i].failure_detail);
                        snprintf(v->fault_message, sizeof(v->fault_message),
                                 "replication pair %s: %s side failed (fault_level %d); the "
                                 "group's DR disks were frozen together; fix the fault and sync "
                                 "the group",
                                 ps[i].id, ps[i].fault_level == 2 ? "production" : "DR",
                                 ps[i].fault_level);
                }
                if (service_pair_live(svc, ps[i].id, &live)) {
                        v->bytes_copied += live.bytes_copied;
                        if (live.fault_level > v->fault_level) {
                                v->fault_level = live.fault_level;
                                snprintf(v->failure_detail, sizeof(v->failure_detail), "%s",
                                         live.failure_detail);
                        }
                }
        }
        if (!v->failure_detail[0])
                snprintf(v->failure_detail, sizeof(v->failure_detail), "%s", g->failure_detail);
        /* The instant the members' DR disks hold, when they hold one: the
         * last pause, or the fault freeze that came after it. */
        v->frozen_at = g->frozen_at;
        for (size_t i = 0; i < n; i++) {
                if (!ps[i].frozen_at || (i && ps[i].frozen_at != ps[0].frozen_at)) {
                        v->frozen_at = g->frozen_at;
                        break;
                }
                v->frozen_at = ps[i].frozen_at;
        }
        v->n = n;
        free(ps);
        return 0;
}

/* ---- members: lock, fence, switch ---- */

struct members {
        struct store_pair *ps;   /* rows, member order */
        struct pair_rt **rt;     /* locked runtimes (NULL: pair has no mirror) */
        struct fence_member *fm; /* what the engine's fence needs, same order */
        size_t n;
};

static void members_unlock(struct members *mb)
{
        for (size_t i = 0; i < mb->n; i++)
                pair_rt_unlock(mb->rt[i]);
        free(mb->rt);
        free(mb->fm);
        free(mb->ps);
        memset(mb, 0, sizeof(*mb));
}

/* Refresh fm[] from the runtimes (roles change at a swap). */
static void members_refresh(struct members *mb)
{
        for (size_t i = 0; i < mb->n; i++) {
                mb->fm[i].m = pair_rt_mirror(mb->rt[i]);
                mb->fm[i].prod = pair_rt_prod(mb->rt[i]);
                mb->fm[i].dr = pair_rt_dr(mb->rt[i]);
        }
}

/* Lock the runtimes of rows ps[0..n) (takes ownership of ps). */
static int members_lock(struct service *svc, struct store_pair *ps, size_t n, struct members *mb)
{
        mb->ps = ps;
        mb->n = 0;
        mb->rt = calloc(n ? n : 1, sizeof(*mb->rt));
        mb->fm = calloc(n ? n : 1, sizeof(*mb->fm));
        if (!mb->rt || !mb->fm) {
                free(mb->rt);
                free(mb->fm);
                free(ps);
                memset(mb, 0, sizeof(*mb));
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                mb->rt[i] = pair_rt_lock(svc, ps[i].id);
                mb->n++;
        }
        members_refresh(mb);
        return 0;
}

static int members_of(struct service *svc, const char *group_id, struct members *mb)
{
        struct store_pair *ps = NULL;
        size_t n = 0;
        int rc = store_pair_list_by_group(svc->store, group_id, &ps, &n);

        if (rc < 0)
                return rc;
        return members_lock(svc, ps, n, mb);
}

/* Pause the members under one engine fence. paused[i] receives the status
 * member i reports: active-stopped (was SYNC), inactive (was RESYNC), or
 * REPL__COUNT (unchanged). */
static int pause_members(const char *what, struct members *mb, enum repl_status *paused,
                         struct fence_result *res)
{
        int was[MAX_MEMBERS];
        size_t k = 0;
        int rc = fence_pause(mb->fm, MIN(mb->n, (size_t)MAX_MEMBERS), was, res);

        for (size_t i = 0; i < mb->n && i < MAX_MEMBERS; i++) {
                paused[i] = REPL__COUNT;
                if (was[i] < 0)
                        continue;
                paused[i] = was[i] == MIRROR_SYNC ? REPL_ACTIVE_STOPPED : REPL_INACTIVE;
                k++;
        }
        if (k)
                log_info("%s: paused %zu pair(s); fence held %lld us; mirrored writes in "
                         "flight at the switch done %lld us after it",
                         what, k, (long long)res->fence_usec, (long long)res->inflight_usec);
        return rc;
}

/* Write every member row from the engine (inside the caller's tx). */
static int record_members(struct service *svc, struct members *mb, const enum repl_status *paused,
                          const char *group_id, int64_t now)
{
        for (size_t i = 0; i < mb->n; i++) {
                struct store_pair *p = &mb->ps[i];
                int rc;

                if (mb->rt[i])
                        pair_fill_state(mb->rt[i], p, paused ? paused[i] : REPL__COUNT);
                if (group_id)
                        snprintf(p->group_id, sizeof(p->group_id), "%s", group_id);
                if (now)
                        p->updated_at = now;
                if ((rc = store_pair_update(svc->store, p)) < 0)
                        return rc;
        }
        return 0;
}

/* Every write of a group's status goes through here: the transition is
 * checked against the table (states.c, debug builds), then the row is
 * stored (in the caller's transaction, or alone). On failure the row in
 * memory keeps its old status. */
static int set_group_status(struct service *svc, struct store_group *g, enum group_status to,
                            int64_t now)
{
        struct store_group next = *g;
        int rc;

        group_row_set_status(&next, to);
        if (now)
                next.updated_at = now;
        if ((rc = store_group_update(svc->store, &next)) == 0)
                *g = next;
        return rc;
}

/* The one transaction that records a group step: every member row from the
 * engine, then the group row with status `to` and its derived
 * replication_status. extra (may be NULL) adds rows of its own inside the
 * same transaction. On failure nothing is recorded and *g is unchanged. */
typedef int (*commit_extra_fn)(struct service *svc, struct members *mb, void *ctx);

static int commit_group(struct service *svc, struct store_group *g, enum group_status to,
                        struct members *mb, const enum repl_status *paused, int64_t now,
                        commit_extra_fn extra, void *ctx)
{
        struct store_group next = *g;
        int rc;

        if ((rc = store_tx_begin(svc->store)) < 0)
                return rc;
        rc = record_members(svc, mb, paused, NULL, now);
        if (rc == 0 && extra)
                rc = extra(svc, mb, ctx);
        group_row_set_repl(&next, derive_pairs(mb->ps, mb->n));
        if (rc == 0)
                rc = set_group_status(svc, &next, to, now);
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0)
                store_tx_rollback(svc->store);
        if (rc < 0)
                log_error("group %s: cannot record the step: %s", g->id, strerror(-rc));
        else
                *g = next;
        return rc;
}

/* ---- engine bindings (fault freeze) ---- */

struct group_rt {
        char id[STORE_ID_LEN];
        struct mirror_group *mg;
        struct group_rt *next;
};

/* Bind the running mirrors of mb (the whole membership) to the group in the
 * engine. members_mu held (or start-up). */
static int group_bind(struct service *svc, const char *group_id, struct members *mb)
{
        struct mirror *ms[MAX_MEMBERS];
        struct group_rt *gr;
        size_t k = 0;

        for (gr = svc->groups; gr; gr = gr->next)
                if (strcmp(gr->id, group_id) == 0)
                        break;
        if (!gr) {
                if (!(gr = calloc(1, sizeof(*gr))))
                        return -ENOMEM;
                if (!(gr->mg = mirror_group_new(group_id))) {
                        free(gr);
                        return -ENOMEM;
                }
                snprintf(gr->id, sizeof(gr->id), "%s", group_id);
                gr->next = svc->groups;
                svc->groups = gr;
                group_throttle_restore(svc, gr->mg, group_id); /* throttle.c */
        }
        for (size_t i = 0; mb && i < mb->n && k < MAX_MEMBERS; i++)
                if (pair_rt_mirror(mb->rt[i]))
                        ms[k++] = pair_rt_mirror(mb->rt[i]);
        return mirror_group_set_members(gr->mg, ms, k);
}

struct mirror_group *group_engine_locked(struct service *svc, const char *group_id)
{
        for (struct group_rt *gr = svc->groups; gr; gr = gr->next)
                if (strcmp(gr->id, group_id) == 0)
                        return gr->mg;
        return NULL;
}

static void group_unbind(struct service *svc, const char *group_id)
{
        for (struct group_rt **pp = &svc->groups; *pp; pp = &(*pp)->next) {
                struct group_rt *gr = *pp;

                if (strcmp(gr->id, group_id) != 0)
                        continue;
                mirror_group_set_members(gr->mg, NULL, 0);
                *pp = gr->next;
                mirror_group_free(gr->mg);
                free(gr);
                return;
        }
}

static int members_of(struct service *svc, const char *group_id, struct members *mb);

/* Bind the current membership of group_id (locks the member runtimes). */
static int group_rebind(struct service *svc, const char *group_id)
{
        struct members mb = {0};
        int rc = members_of(svc, group_id, &mb);

        if (rc == 0) {
                rc = group_bind(svc, group_id, &mb);
                members_unlock(&mb);
        }
        return rc;
}

int service_group_rebind(struct service *svc, const char *group_id)
{
        return group_rebind(svc, group_id);
}

void service_groups_stop(struct service *svc)
{
        while (svc->groups)
                group_unbind(svc, svc->groups->id);
}

/* ---- lookups ---- */

static int get_group(struct service *svc, const char *project, const char *id,
                     struct store_group *g, char *msg, size_t msglen)
{
        int rc = store_group_get(svc->store, project, id, g);

        if (rc == -ENOENT)
                snprintf(msg, msglen, "replication consistency group %s does not exist", id);
        return rc;
}

/* Check a pair that is to join group g_id (priority station az). */
static int check_joining(struct service *svc, const char *project, const char *pid, const char *az,
                         const char *g_id, struct store_pair *p, char *msg, size_t msglen)
{
        int rc = util_uuid_valid(pid) ? store_pair_get(svc->store, project, pid, p) : -ENOENT;

        if (rc == -ENOENT) {
                snprintf(msg, msglen, "replication pair %s does not exist", pid);
                return rc;
        }
        if (rc < 0)
                return rc;
        if (p->group_id[0] && (!g_id || strcmp(p->group_id, g_id) != 0)) {
                snprintf(msg, msglen,
                         "replication pair %s is already in consistency group %s; remove it "
                         "from that group first",
                         pid, p->group_id);
                return -EBUSY;
        }
        if (strcmp(p->priority_station, az) != 0) {
                snprintf(msg, msglen,
                         "replication pair %s has priority_station %s, not the group's %s", pid,
                         p->priority_station, az);
                return -EINVAL;
        }
        return pair_check(pair_row_status(p), NULL, PAIR_OP_JOIN, pid, msg, msglen);
}

static bool dup_ids(const char *const *ids, size_t n)
{
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(ids[i], ids[j]) == 0)
                                return true;
        return false;
}

/* ---- create ---- */

int service_group_create(struct service *svc, const struct group_create_req *rq,
                         struct store_group *out, char *msg, size_t msglen)
{
        struct store_pair *ps;
        struct members mb = {0};
        enum repl_status paused[MAX_MEMBERS];
        struct store_group g;
        struct fence_result fr;
        pthread_mutex_t *gl;
        int rc = 0;

        if (rq->npairs == 0 || rq->npairs > MAX_MEMBERS) {
                snprintf(msg, msglen,
                         "replication_consistency_group.replication_ids must list 1 to %d pairs",
                         MAX_MEMBERS);
                return -EINVAL;
        }
        if (dup_ids(rq->pair_ids, rq->npairs)) {
                snprintf(msg, msglen, "replication_ids lists a pair twice");
                return -EINVAL;
        }
        if (!config_site(svc->cfg, rq->priority_station)) {
                snprintf(msg, msglen,
                         "replication_consistency_group.priority_station '%s' is not a "
                         "configured zone",
                         rq->priority_station);
                return -EINVAL;
        }
        if (!(ps = calloc(rq->npairs, sizeof(*ps))))
                return -ENOMEM;
        memset(out, 0, sizeof(*out));
        util_uuid_v4(out->id);
        gl = stripe(svc, out->id);
        pthread_mutex_lock(gl);
        pthread_mutex_lock(&svc->members_mu);
        /* 404 for unknown pairs before any 409 (api.md "Which 4xx"). */
        for (size_t i = 0; i < rq->npairs && rc == 0; i++)
                if (!util_uuid_valid(rq->pair_ids[i]) ||
                    store_pair_get(svc->store, rq->project_id, rq->pair_ids[i], &ps[i]) ==
                        -ENOENT) {
                        snprintf(msg, msglen, "replication pair %s does not exist",
                                 rq->pair_ids[i]);
                        rc = -ENOENT;
                }
        for (size_t i = 0; i < rq->npairs && rc == 0; i++)
                rc = check_joining(svc, rq->project_id, rq->pair_ids[i], rq->priority_station, NULL,
                                   &ps[i], msg, msglen);
        if (rc < 0) {
                free(ps);
                goto out;
        }
        snprintf(out->project_id, sizeof(out->project_id), "%s", rq->project_id);
        snprintf(out->name, sizeof(out->name), "%s", rq->name ? rq->name : "");
        snprintf(out->description, sizeof(out->description), "%s",
                 rq->description ? rq->description : "");
        group_row_set_status(out, GS_CREATING);
        snprintf(out->priority_station, sizeof(out->priority_station), "%s", rq->priority_station);
        snprintf(out->replication_model, sizeof(out->replication_model), "hypermetro");
        out->created_at = util_now_usec();

        /* tx1: the group and its membership, so no other group takes them. */
        if ((rc = store_tx_begin(svc->store)) < 0) {
                free(ps);
                goto out;
        }
        rc = store_group_insert(svc->store, out);
        for (size_t i = 0; i < rq->npairs && rc == 0; i++) {
                snprintf(ps[i].group_id, sizeof(ps[i].group_id), "%s", out->id);
                rc = store_pair_update(svc->store, &ps[i]);
        }
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0) {
                store_tx_rollback(svc->store);
                snprintf(msg, msglen, "cannot record the group");
                free(ps);
                goto out;
        }
        /* Engine: pause the members together (one fence), bind them. */
        if ((rc = members_lock(svc, ps, rq->npairs, &mb)) < 0)
                goto out;
        rc = pause_members(out->id, &mb, paused, &fr);
        if (rc == 0)
                rc = group_bind(svc, out->id, &mb);
        /* tx2: states and available (error if the engine failed). */
        g = *out;
        g.frozen_at = fr.frozen_at;
        /* A failed record must not leave "creating" behind while the
         * daemon runs (found by t_faults, group create with store_commit=2):
         * error alone, which a sync heals (it records the members). */
        if (commit_group(svc, &g, rc < 0 ? GS_ERROR : GS_AVAILABLE, &mb, paused, 0, NULL, NULL) <
                0 &&
            set_group_status(svc, &g, GS_ERROR, 0) < 0)
                log_error("group %s: cannot record its creation (start-up will)", g.id);
        members_unlock(&mb);
        rc = 0; /* the 202 stands; a failed engine step shows as status error */
out:
        pthread_mutex_unlock(&svc->members_mu);
        pthread_mutex_unlock(gl);
        return rc;
}

/* ---- update ---- */

static bool listed(const char *const *ids, size_t n, const char *id)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(ids[i], id) == 0)
                        return true;
        return false;
}

int service_group_update(struct service *svc, const char *project, const char *id,
                         const struct group_update_req *rq, struct store_group *out, char *msg,
                         size_t msglen)
{
        pthread_mutex_t *gl = stripe(svc, id);
        struct store_pair *cur = NULL, *add = NULL;
        struct members mb = {0};
        enum repl_status paused[MAX_MEMBERS];
        struct store_group g, done;
        size_t ncur = 0;
        struct fence_result fr;
        int64_t now;
        int rc, prc;

        if ((rc = service_group_swap_busy(svc, project, id, GOP_UPDATE, msg, msglen)) < 0)
                return rc;
        pthread_mutex_lock(gl);
        pthread_mutex_lock(&svc->members_mu);
        if ((rc = get_group(svc, project, id, &g, msg, msglen)) < 0)
                goto out;
        if ((rc = store_pair_list_by_group(svc->store, id, &cur, &ncur)) < 0)
                goto out;
        if ((rc = group_check(group_row_status(&g), derive_pairs(cur, ncur), ncur, GOP_UPDATE, id,
                              NULL, msg, msglen)) < 0)
                goto out;
        rc = -EINVAL;
        if (dup_ids(rq->add, rq->nadd) || dup_ids(rq->remove, rq->nremove)) {
                snprintf(msg, msglen, "add/remove_replication_ids lists a pair twice");
                goto out;
        }
        for (size_t i = 0; i < rq->nremove; i++) {
                bool member = false;
                for (size_t j = 0; j < ncur; j++)
                        member |= strcmp(cur[j].id, rq->remove[i]) == 0;
                if (!member || listed(rq->add, rq->nadd, rq->remove[i])) {
                        snprintf(msg, msglen,
                                 "remove_replication_ids: pair %s is not a member of group %s",
                                 rq->remove[i], id);
                        goto out;
                }
        }
        if (ncur - rq->nremove + rq->nadd > MAX_MEMBERS) {
                snprintf(msg, msglen, "a group holds at most %d pairs", MAX_MEMBERS);
                goto out;
        }
        if (rq->nadd && !(add = calloc(rq->nadd, sizeof(*add)))) {
                rc = -ENOMEM;
                goto out;
        }
        rc = 0;
        for (size_t i = 0; i < rq->nadd && rc == 0; i++)
                if (!util_uuid_valid(rq->add[i]) ||
                    store_pair_get(svc->store, project, rq->add[i], &add[i]) == -ENOENT) {
                        snprintf(msg, msglen, "replication pair %s does not exist", rq->add[i]);
                        rc = -ENOENT;
                }
        for (size_t i = 0; i < rq->nadd && rc == 0; i++)
                rc = check_joining(svc, project, rq->add[i], g.priority_station, id, &add[i], msg,
                                   msglen);
        if (rc < 0)
                goto out;
        if (rq->nadd || rq->nremove)
                service_verify_cancel(svc, id, "an update of the group's pairs");

        /* tx1: fields and status updating. */
        now = util_now_usec();
        if (rq->name)
                snprintf(g.name, sizeof(g.name), "%s", rq->name);
        if (rq->description)
                snprintf(g.description, sizeof(g.description), "%s", rq->description);
        if ((rc = set_group_status(svc, &g, GS_UPDATING, now)) < 0)
                goto out;
        *out = g;

        /* Engine: added pairs are paused into the group (one fence). A pair
         * paused at another instant than the members it joins reports
         * inactive until the next sync (derive_pairs: frozen_at differs). */
        rc = members_lock(svc, add, rq->nadd, &mb);
        add = NULL;
        if (rc < 0)
                goto out;
        prc = pause_members(id, &mb, paused, &fr);

        /* tx2: membership, states, available. */
        if (prc < 0)
                rc = prc;
        else if ((rc = store_tx_begin(svc->store)) == 0) {
                rc = record_members(svc, &mb, paused, id, now);
                for (size_t j = 0; j < ncur && rc == 0; j++) {
                        if (!listed(rq->remove, rq->nremove, cur[j].id))
                                continue;
                        cur[j].group_id[0] = '\0';
                        cur[j].updated_at = now;
                        rc = store_pair_update(svc->store, &cur[j]);
                }
                done = g;
                if (rc == 0)
                        rc = set_group_status(svc, &done, GS_AVAILABLE, 0);
                if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0)
                        store_tx_rollback(svc->store);
        }
        if (rc < 0) {
                /* The membership did not change: the pairs this update paused
                 * resume replicating as they did before it (found by the
                 * fault driver: they stayed paused outside any group). */
                struct fence_member undo[MAX_MEMBERS];
                size_t k = 0;

                for (size_t i = 0; i < mb.n && i < MAX_MEMBERS; i++)
                        if (paused[i] != REPL__COUNT)
                                undo[k++] = mb.fm[i];
                if (fence_sync(undo, k) < 0)
                        log_error("group %s: cannot resume the pairs the failed update paused", id);
                for (size_t i = 0; i < mb.n; i++)
                        if (mb.rt[i] && paused[i] != REPL__COUNT) {
                                pair_fill_state(mb.rt[i], &mb.ps[i], REPL__COUNT);
                                store_pair_update(svc->store, &mb.ps[i]);
                        }
                set_group_status(svc, &g, GS_ERROR, 0);
                log_error("group %s: update failed: %s", id, strerror(-rc));
        }
        members_unlock(&mb);
        if (group_rebind(svc, id) < 0)
                log_error("group %s: cannot bind its members in the engine", id);
        rc = 0;
out:
        free(add);
        free(cur);
        pthread_mutex_unlock(&svc->members_mu);
        pthread_mutex_unlock(gl);
        return rc;
}

/* ---- delete ---- */

int service_group_delete(struct service *svc, const char *project, const char *id, char *msg,
                         size_t msglen)
{
        pthread_mutex_t *gl = stripe(svc, id);
        struct store_pair *cur = NULL;
        struct store_group g;
        size_t ncur = 0;
        int rc;

        if ((rc = service_group_swap_busy(svc, project, id, GOP_DELETE, msg, msglen)) < 0)
                return rc;
        pthread_mutex_lock(gl);
        pthread_mutex_lock(&svc->members_mu);
        if ((rc = get_group(svc, project, id, &g, msg, msglen)) < 0)
                goto out;
        if ((rc = store_pair_list_by_group(svc->store, id, &cur, &ncur)) < 0)
                goto out;
        if ((rc = group_check(group_row_status(&g), derive_pairs(cur, ncur), ncur, GOP_DELETE, id,
                              NULL, msg, msglen)) == 0) {
                rc = set_group_status(svc, &g, GS_DELETING, util_now_usec());
                if (rc == 0 && (rc = store_group_delete(svc->store, id)) < 0)
                        set_group_status(svc, &g, GS_ERROR_DELETING, 0);
                if (rc == 0) {
                        group_unbind(svc, id);
                        service_verify_forget(svc, id);
                }
        }
out:
        free(cur);
        pthread_mutex_unlock(&svc->members_mu);
        pthread_mutex_unlock(gl);
        return rc;
}

/* ---- actions ---- */

static enum group_op op_of(enum group_action a)
{
        switch (a) {
        case GROUP_PAUSE:
                return GOP_PAUSE;
        case GROUP_SYNC:
                return GOP_SYNC;
        case GROUP_FAILOVER:
                return GOP_FAILOVER;
        case GROUP_REVERSE:
                return GOP_REVERSE;
        case GROUP_REPROTECT:
                return GOP_REPROTECT;
        case GROUP_EXTEND:
                return GOP_EXTEND;
        }
        return GOP__COUNT;
}

/* Pause every member (one fence) and record the group as `to`. t_req: when
 * the request began waiting for the group's locks (util_mono_usec), for
 * the log line that splits the request's time; 0: not a request. */
static int do_pause(struct service *svc, struct store_group *g, struct members *mb,
                    enum group_status to, int64_t t_req)
{
        enum repl_status paused[MAX_MEMBERS];
        struct fence_result fr;
        int64_t t0 = util_mono_usec(), t1;
        int rc = pause_members(g->id, mb, paused, &fr), r2;

        if (fr.frozen_at) {
                g->frozen_at = fr.frozen_at;
        } else if (rc == 0) {
                /* Every member already paused: only a status change to record. */
                return group_row_status(g) == to ? 0
                                                 : set_group_status(svc, g, to, util_now_usec());
        }
        t1 = util_mono_usec();
        r2 = commit_group(svc, g, to, mb, paused, fr.frozen_at ? util_now_usec() : 0, NULL, NULL);
        if (fr.frozen_at) {
                char t[UTIL_TIME_LEN];

                util_time_format(fr.frozen_at, t);
                /* Where a pause request's time goes (bench/group.sh). */
                log_info("group %s: DR image frozen at %s (locks and reads %lld us; fence %lld us, "
                         "in-flight writes %lld us, pause in all %lld us; record %lld us)",
                         g->id, t, t_req ? (long long)(t0 - t_req) : 0LL, (long long)fr.fence_usec,
                         (long long)fr.inflight_usec, (long long)(t1 - t0),
                         (long long)(util_mono_usec() - t1));
        }
        return rc < 0 ? rc : r2;
}

/* Production disks whose I/O error is over (the file answers again) stop
 * reporting fault level 2 when replication is resumed. */
static void clear_prod_errors(struct members *mb)
{
        for (size_t i = 0; i < mb->n; i++) {
                struct volume *v = pair_rt_prod(mb->rt[i]);

                if (v && volume_probe(v) == 0)
                        volume_clear_error(v);
        }
}

/* Sync heals every member: one whose mirror is not running (it failed to
 * start, or the pair is in error) is restarted from the recorded roles with
 * every chunk dirty (a full copy: writes on its production disk were not
 * tracked while it was down) and resynced with the others. A member whose
 * disk is not there refuses the whole sync (409 naming the pair and what to
 * do) before anything changes. members_mu held (group_bind). */
static int do_sync(struct service *svc, struct store_group *g, struct members *mb,
                   enum group_status to, char *msg, size_t msglen)
{
        enum group_status st = group_row_status(g);
        bool any = false, restarted = false;
        int rc, r2;

        /* Refuse before anything changes. */
        for (size_t i = 0; i < mb->n; i++)
                if (!pair_rt_mirror(mb->rt[i]) &&
                    (rc = pair_rt_startable(svc, &mb->ps[i], msg, msglen)) < 0)
                        return rc;
        if (st == GS_ERROR_REVERSING || st == GS_ERROR_FAILOVERING) {
                /* Mirrors may hold roles the store does not: reopen every
                 * running one from the recorded roles. */
                for (size_t i = 0; i < mb->n; i++) {
                        if (!pair_rt_mirror(mb->rt[i]))
                                continue;
                        if ((rc = pair_rt_reopen(svc, mb->rt[i], &mb->ps[i])) < 0) {
                                snprintf(msg, msglen,
                                         "replication pair %s: its mirror cannot be reopened "
                                         "(%s); see the daemon log, then sync again",
                                         mb->ps[i].id, strerror(-rc));
                                return rc;
                        }
                        restarted = true;
                }
        }
        for (size_t i = 0; i < mb->n; i++) {
                if (pair_rt_mirror(mb->rt[i]))
                        continue;
                if (!mb->rt[i] && !(mb->rt[i] = pair_rt_lock_new(svc, mb->ps[i].id)))
                        return -ENOMEM;
                if ((rc = pair_rt_restart(svc, mb->rt[i], &mb->ps[i])) < 0) {
                        snprintf(msg, msglen,
                                 "replication pair %s: its mirror cannot be restarted (%s); see "
                                 "the daemon log, then sync again",
                                 mb->ps[i].id, strerror(-rc));
                        return rc;
                }
                if (pair_row_status(&mb->ps[i]) != PAIR_AVAILABLE)
                        pair_row_set_status(&mb->ps[i], PAIR_AVAILABLE);
                restarted = true;
        }
        if (restarted) {
                members_refresh(mb);
                if (group_bind(svc, g->id, mb) < 0)
                        log_error("group %s: cannot bind its members in the engine", g->id);
        }
        for (size_t i = 0; i < mb->n; i++)
                any |= mirror_mode(pair_rt_mirror(mb->rt[i])) == MIRROR_TRACK;
        if (!any) /* already active or copying: no data step */
                return group_row_status(g) == to ? 0
                                                 : set_group_status(svc, g, to, util_now_usec());
        clear_prod_errors(mb);
        rc = fence_sync(mb->fm, mb->n);
        log_info("group %s: sync started", g->id);
        g->failure_detail[0] = '\0';
        r2 = commit_group(svc, g, to, mb, NULL, util_now_usec(), NULL, NULL);
        return rc < 0 ? rc : r2;
}

/* Record the fenced flag of a volume (old production after a failover). */
static int set_volume_fenced(struct service *svc, struct volume *v, bool fenced)
{
        struct store_volume sv = {0};
        int rc;

        if (!v || (rc = store_volume_get(svc->store, NULL, volume_id(v), &sv)) < 0)
                return 0;
        sv.fenced = fenced;
        rc = store_volume_update(svc->store, &sv);
        store_volume_clear(&sv);
        return rc;
}

/* Reverse (planned switchover) or failover through fence_swap: every member
 * swaps and the new roles are committed before any fence lifts, or none
 * swaps (docs/design/faults.md "Role swaps that cannot half-happen"). */
struct swap_ctx {
        struct service *svc;
        struct store_group *g;
        struct members *mb;
        bool failover;
        enum group_status to; /* on success */
        int64_t now;
        char *msg;
        size_t msglen;
        enum mirror_mode was[MAX_MEMBERS];
        char old_az[STORE_AZ_LEN];
};

static int swap_preflight(void *arg, size_t i)
{
        struct swap_ctx *c = arg;
        int rc;

        if (!pair_rt_mirror(c->mb->rt[i])) {
                /* Its roles could not follow the group's. */
                snprintf(c->msg, c->msglen,
                         "replication pair %s is %s (its mirror is not running); the group cannot "
                         "%s until it is repaired or removed from the group",
                         c->mb->ps[i].id, c->mb->ps[i].status,
                         c->failover ? "fail over" : "reverse");
                return -EBUSY;
        }
        if (!pair_rt_dr(c->mb->rt[i])) {
                /* Multi-site: the mirror would have to move to the DR node
                 * (multi-site.md, "Remote DR links": not built yet). */
                snprintf(c->msg, c->msglen,
                         "replication pair %s has its DR volume on another node; this version "
                         "cannot %s a group whose pairs span nodes (pause, sync and delete work)",
                         c->mb->ps[i].id, c->failover ? "fail over" : "reverse");
                return -EBUSY;
        }
        rc = pair_rt_swap_preflight(c->mb->rt[i], c->failover);
        if (rc < 0)
                log_error("group %s: pair %s cannot %s: %s", c->g->id, c->mb->ps[i].id,
                          c->failover ? "fail over" : "reverse", strerror(-rc));
        return rc;
}

static void note_roles(struct swap_ctx *c, size_t i)
{
        struct store_pair *p = &c->mb->ps[i];

        snprintf(p->priority_station, sizeof(p->priority_station), "%s",
                 volume_site(pair_rt_prod(c->mb->rt[i])));
}

static int swap_one(void *arg, size_t i)
{
        struct swap_ctx *c = arg;
        struct pair_rt *rt = c->mb->rt[i];
        int rc;

        c->was[i] = mirror_mode(pair_rt_mirror(rt));
        rc = pair_rt_swap(rt, c->failover, c->failover ? MIRROR_TRACK : MIRROR_SYNC);
        if (rc == 0 && c->failover) /* the old production's image, for a reprotect's sidecar */
                mirror_cow_set_instant(pair_rt_mirror(rt), c->now);
        if (rc < 0)
                log_error("group %s: %s of pair %s failed: %s", c->g->id,
                          c->failover ? "failover" : "reverse", c->mb->ps[i].id, strerror(-rc));
        else
                note_roles(c, i);
        return rc;
}

static int unswap_one(void *arg, size_t i)
{
        struct swap_ctx *c = arg;
        /* Back to the old direction; nothing was written on either side
         * since the swap (fenced). A pair that was replicating resumes
         * through RESYNC (SYNC at once when nothing is dirty). */
        enum mirror_mode back = c->was[i] == MIRROR_TRACK ? MIRROR_TRACK : MIRROR_RESYNC;
        int rc = pair_rt_swap(c->mb->rt[i], true, back);

        if (rc == 0)
                note_roles(c, i);
        return rc;
}

static void lockdown_one(void *arg, size_t i)
{
        struct swap_ctx *c = arg;

        pair_rt_lockdown(c->mb->rt[i]);
}

static int swap_extra(struct service *svc, struct members *mb, void *arg)
{
        struct swap_ctx *c = arg;
        int rc = 0;

        for (size_t i = 0; i < mb->n && rc == 0 && c->failover; i++) {
                if (!pair_rt_mirror(mb->rt[i]))
                        continue;
                pair_row_set_repl(&mb->ps[i], REPL_ACTIVE_STOPPED);
                rc = store_pair_update(svc->store, &mb->ps[i]);
                if (rc == 0)
                        rc = set_volume_fenced(svc, pair_rt_dr(mb->rt[i]), true);
        }
        return rc;
}

/* Record the new roles BEFORE the fence lifts: no client write can reach a
 * new production disk until its role is durable, so a crash at any point
 * leaves either the old roles (nothing written on the new side yet) or the
 * new ones. A failed commit makes fence_swap swap every member back. */
static int swap_commit(void *arg)
{
        struct swap_ctx *c = arg;
        struct store_group g = *c->g;
        int rc;

        for (size_t i = 0; i < c->mb->n; i++)
                if (pair_rt_mirror(c->mb->rt[i]))
                        snprintf(g.priority_station, sizeof(g.priority_station), "%s",
                                 c->mb->ps[i].priority_station);
        rc = commit_group(c->svc, &g, c->to, c->mb, NULL, c->now, swap_extra, c);
        if (rc == 0)
                *c->g = g;
        return rc;
}

/* The checks that need no fence, made before the request is answered so a
 * refusal is still its 409: every member has a running mirror, and
 * (pair_rt_swap_precheck) a reverse's members are in sync with nothing
 * dirty, a failover's DR disks are there. The fenced preflight checks it all
 * again, and decides. */
static int swap_precheck(struct swap_ctx *c)
{
        int rc = 0;

        for (size_t i = 0; i < c->mb->n && rc == 0; i++)
                rc = !pair_rt_mirror(c->mb->rt[i]) || !pair_rt_dr(c->mb->rt[i])
                         ? swap_preflight(c, i)
                         : pair_rt_swap_precheck(c->mb->rt[i], c->failover, c->mb->ps[i].id, c->msg,
                                                 c->msglen);
        return rc;
}

/* rule: the cell of the action (via: reversing or failovering; to). With a
 * job (swap_job.c) the request is answered once `via` is durable and the
 * rest runs on the worker, every lock still held (faults.md, "Behind the
 * status"). */
static int do_swap(struct service *svc, struct store_group *g, struct members *mb, bool failover,
                   const struct group_rule *rule, char *msg, size_t msglen, struct swap_job *job)
{
        const struct fence_swap_ops ops = {
            .preflight = swap_preflight,
            .swap = swap_one,
            .unswap = unswap_one,
            .commit = swap_commit,
            .lockdown = lockdown_one,
            .flush_dr_first = !failover, /* a failover's DR may be unreachable */
        };
        const char *verb = failover ? "failover" : "reverse";
        struct swap_ctx c = {.svc = svc,
                             .g = g,
                             .mb = mb,
                             .failover = failover,
                             .to = rule->to,
                             .msg = msg,
                             .msglen = msglen};
        struct fence_result fr;
        int64_t t0 = util_mono_usec();
        int rc, r2;

        if ((rc = swap_precheck(&c)) < 0)
                return rc;
        c.now = util_now_usec();
        snprintf(c.old_az, sizeof(c.old_az), "%s", g->priority_station);
        if ((rc = set_group_status(svc, g, rule->via, c.now)) < 0)
                return rc;
        log_info("group %s: %s started (production %s; status recorded in %lld us)", g->id, verb,
                 c.old_az, (long long)(util_mono_usec() - t0));
        swap_job_answer(job, 0);
        rc = fence_swap(mb->fm, MIN(mb->n, (size_t)MAX_MEMBERS), &ops, &c, &fr);
        members_refresh(mb);
        if (rc == 0) {
                log_info("group %s: %s done; fence held %lld us; production now in %s", g->id, verb,
                         (long long)fr.fence_usec, g->priority_station);
                log_info("group %s: %s phases: flush before the fence %lld us, fence %lld us, "
                         "total %lld us",
                         g->id, verb, (long long)fr.preflush_usec, (long long)fr.fence_usec,
                         (long long)(util_mono_usec() - t0));
                return 0;
        }
        if (msg[0])
                log_error("group %s: %s refused under the fence: %s", g->id, verb, msg);
        /* Nothing swapped: the old roles stand. Or a swap could not be
         * undone: every disk is locked down, the store holds the old roles;
         * a sync reopens the members from them (do_sync). */
        /* The client has its 200 and polls for the status to leave `via`:
         * retry a store that failed (busy, a short I/O error) before leaving
         * it to start-up (faults.md, "Behind the status", S1). */
        for (int tries = 0; tries < 20; tries++) {
                r2 = set_group_status(svc, g,
                                      rc != -ENOTRECOVERABLE ? GS_AVAILABLE
                                      : failover             ? GS_ERROR_FAILOVERING
                                                             : GS_ERROR_REVERSING,
                                      0);
                if (r2 == 0)
                        break;
                usleep(50 * 1000);
        }
        if (r2 < 0)
                log_error("group %s: cannot record the failed %s (start-up will)", g->id, verb);
        log_error("group %s: %s failed, roles unchanged: %s", g->id, verb, strerror(-rc));
        return rc;
}

static int unfence_extra(struct service *svc, struct members *mb, void *unused)
{
        int rc = 0;

        (void)unused;
        for (size_t i = 0; i < mb->n && rc == 0; i++)
                rc = pair_rt_mirror(mb->rt[i]) && !pair_rt_dr(mb->rt[i])
                         ? service_handoff_unfence_remote(svc, &mb->ps[i]) /* handoff.c */
                         : set_volume_fenced(svc, pair_rt_dr(mb->rt[i]), false);
        return rc;
}

/* Reprotect: the old production disks (fenced since the failover) become
 * the DR side; the bitmap already holds the union of what the old side had
 * dirty or in flight (folded at the failover) and what the new side wrote
 * since. Resync it. */
static int do_reprotect(struct service *svc, struct store_group *g, struct members *mb,
                        enum group_status to)
{
        int rc, r2;

        clear_prod_errors(mb);
        rc = fence_sync(mb->fm, mb->n);
        log_info("group %s: reprotect: resync from %s started", g->id, g->priority_station);
        r2 = commit_group(svc, g, to, mb, NULL, util_now_usec(), unfence_extra, NULL);
        return rc < 0 ? rc : r2;
}

/* The pair's size and both volumes' size and status, inside the caller's
 * transaction. */
static int record_extend_rows(struct service *svc, struct store_pair *p, int64_t size_gib,
                              enum volume_status vol_status, int64_t now)
{
        int rc;

        p->volume_size_gib = size_gib;
        p->updated_at = now;
        rc = store_pair_update(svc->store, p);
        for (int s = 0; s < 2 && rc == 0; s++) {
                struct store_volume v = {0};

                rc = store_volume_get(svc->store, NULL, p->volume_ids[s], &v);
                if (rc == 0) {
                        v.size_gib = size_gib;
                        volume_row_set_status(&v, vol_status);
                        v.updated_at = now;
                        rc = store_volume_update(svc->store, &v);
                }
                store_volume_clear(&v);
        }
        return rc;
}

/* One transaction: record_extend_rows. */
static int record_extend(struct service *svc, struct store_pair *p, int64_t size_gib,
                         enum volume_status vol_status, int64_t now)
{
        int rc;

        if ((rc = store_tx_begin(svc->store)) < 0)
                return rc;
        rc = record_extend_rows(svc, p, size_gib, vol_status, now);
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0)
                store_tx_rollback(svc->store);
        return rc;
}

/* Quota and capacity of a whole extend request, and the target sizes of
 * every listed pair ("extending"), in one transaction: a concurrent create
 * or extend cannot take the same GiB (service/quotas.c). Both volumes of a
 * pair count. On failure nothing is recorded and old_gib restores the
 * in-memory rows. */
static int reserve_extend(struct service *svc, struct store_group *g, struct members *mb,
                          const size_t *idx, const struct group_extend_item *items, size_t nitems,
                          const int64_t *old_gib, int64_t now, char *msg, size_t msglen)
{
        struct {
                char az[STORE_AZ_LEN];
                int64_t add_gib;
        } site[CONFIG_MAX_SITES] = {0};
        size_t nsites = 0;
        int64_t add_gib = 0;
        int rc;

        /* The file system limit first, outside the transaction. */
        for (size_t k = 0; k < nitems; k++) {
                for (int s = 0; s < 2; s++) {
                        struct store_volume v = {0};

                        rc = store_volume_get(svc->store, NULL, mb->ps[idx[k]].volume_ids[s], &v);
                        if (rc == 0)
                                rc = capacity_probe(svc, v.availability_zone, items[k].new_size_gib,
                                                    msg, msglen);
                        store_volume_clear(&v);
                        if (rc < 0)
                                return rc;
                }
        }
        if ((rc = store_tx_begin(svc->store)) < 0)
                return rc;
        for (size_t k = 0; k < nitems && rc == 0; k++) {
                int64_t step = items[k].new_size_gib - old_gib[k];

                for (int s = 0; s < 2 && rc == 0; s++) {
                        struct store_volume v = {0};
                        size_t j;

                        if ((rc = store_volume_get(svc->store, NULL, mb->ps[idx[k]].volume_ids[s],
                                                   &v)) < 0)
                                break;
                        for (j = 0; j < nsites; j++)
                                if (strcmp(site[j].az, v.availability_zone) == 0)
                                        break;
                        if (j == nsites && nsites < ARRAY_SIZE(site))
                                snprintf(site[nsites++].az, STORE_AZ_LEN, "%s",
                                         v.availability_zone);
                        if (j < nsites)
                                site[j].add_gib += step;
                        add_gib += step;
                        store_volume_clear(&v);
                }
        }
        if (rc == 0)
                rc = quota_check_tx(svc, g->project_id, 0, add_gib, msg, msglen);
        for (size_t j = 0; j < nsites && rc == 0; j++)
                rc = capacity_check_tx(svc, site[j].az, site[j].add_gib, msg, msglen);
        for (size_t k = 0; k < nitems && rc == 0; k++)
                if ((rc = record_extend_rows(svc, &mb->ps[idx[k]], items[k].new_size_gib,
                                             VOL_EXTENDING, now)) < 0)
                        snprintf(msg, msglen, "cannot record the extend of pair %s",
                                 items[k].pair_id);
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0) {
                store_tx_rollback(svc->store);
                for (size_t k = 0; k < nitems; k++)
                        mb->ps[idx[k]].volume_size_gib = old_gib[k];
                if (!msg[0])
                        snprintf(msg, msglen, "cannot record the extend of group %s", g->id);
        }
        return rc;
}

static int do_extend(struct service *svc, struct store_group *g, struct members *mb,
                     const struct group_extend_item *items, size_t nitems, char *msg, size_t msglen)
{
        size_t idx[MAX_MEMBERS];
        int64_t old_gib[MAX_MEMBERS];
        int64_t now = util_now_usec();
        int rc = 0;

        for (size_t k = 0; k < nitems; k++) {
                size_t i;

                for (i = 0; i < mb->n; i++)
                        if (strcmp(mb->ps[i].id, items[k].pair_id) == 0)
                                break;
                if (i == mb->n) {
                        struct store_pair other;

                        if (!util_uuid_valid(items[k].pair_id) ||
                            store_pair_get(svc->store, g->project_id, items[k].pair_id, &other) ==
                                -ENOENT) {
                                snprintf(msg, msglen, "replication pair %s does not exist",
                                         items[k].pair_id);
                                return -ENOENT;
                        }
                        snprintf(msg, msglen, "replication pair %s is not a member of group %s",
                                 items[k].pair_id, g->id);
                        return -EINVAL;
                }
                for (size_t j = 0; j < k; j++)
                        if (idx[j] == i) {
                                snprintf(msg, msglen, "replication pair %s is listed twice",
                                         items[k].pair_id);
                                return -EINVAL;
                        }
                if (items[k].new_size_gib <= mb->ps[i].volume_size_gib) {
                        snprintf(msg, msglen,
                                 "new_size (%lld) of pair %s must be larger than its current "
                                 "size (%lld GiB)",
                                 (long long)items[k].new_size_gib, items[k].pair_id,
                                 (long long)mb->ps[i].volume_size_gib);
                        return -EINVAL;
                }
                if (!pair_rt_mirror(mb->rt[i])) {
                        snprintf(msg, msglen, "replication pair %s is %s; it cannot be extended",
                                 items[k].pair_id, mb->ps[i].status);
                        return -EBUSY;
                }

                idx[k] = i;
        }
        for (size_t k = 0; k < nitems; k++)
                old_gib[k] = mb->ps[idx[k]].volume_size_gib;
        /* The target sizes are durable before any file grows: a crash in
         * between is finished at start-up (volumes "extending" grow to the
         * recorded size), never lost silently. */
        if ((rc = reserve_extend(svc, g, mb, idx, items, nitems, old_gib, now, msg, msglen)) < 0)
                return rc;
        for (size_t k = 0; k < nitems && rc == 0; k++) {
                size_t i = idx[k];

                if ((rc = pair_rt_grow(mb->rt[i], (uint64_t)items[k].new_size_gib * GIB)) < 0) {
                        snprintf(msg, msglen, "cannot grow the disks of pair %s: %s",
                                 items[k].pair_id, strerror(-rc));
                        /* The disks were shrunk back: so are the records,
                         * with those of the pairs not grown yet. */
                        for (size_t j = k; j < nitems; j++)
                                if (record_extend(svc, &mb->ps[idx[j]], old_gib[j], VOL_AVAILABLE,
                                                  now) < 0)
                                        log_error("pair %s: cannot roll back the extend record "
                                                  "(start-up will)",
                                                  mb->ps[idx[j]].id);
                        break;
                }
                if (record_extend(svc, &mb->ps[i], items[k].new_size_gib, VOL_AVAILABLE, now) < 0)
                        log_error("pair %s: extended; start-up will finish the record",
                                  mb->ps[i].id);
                log_info("group %s: pair %s extended to %lld GiB", g->id, mb->ps[i].id,
                         (long long)items[k].new_size_gib);
        }
        return rc;
}

static int group_action_run(struct service *svc, const char *project, const char *id,
                            enum group_action action, const struct group_extend_item *items,
                            size_t nitems, char *msg, size_t msglen, struct swap_job *job);

int service_group_action(struct service *svc, const char *project, const char *id,
                         enum group_action action, const struct group_extend_item *items,
                         size_t nitems, char *msg, size_t msglen)
{
        int rc = service_group_swap_busy(svc, project, id, op_of(action), msg, msglen);

        if (rc < 0)
                return rc;
        if (action == GROUP_REVERSE || action == GROUP_FAILOVER)
                return service_swap_job_run(svc, project, id, action, msg, msglen);
        return group_action_run(svc, project, id, action, items, nitems, msg, msglen, NULL);
}

int service_group_swap_run(struct service *svc, const char *project, const char *id,
                           enum group_action action, char *msg, size_t msglen, struct swap_job *j)
{
        return group_action_run(svc, project, id, action, NULL, 0, msg, msglen, j);
}

static int group_action_run(struct service *svc, const char *project, const char *id,
                            enum group_action action, const struct group_extend_item *items,
                            size_t nitems, char *msg, size_t msglen, struct swap_job *job)
{
        pthread_mutex_t *gl = stripe(svc, id);
        const struct group_rule *rule = NULL;
        enum group_op op = op_of(action);
        struct members mb = {0};
        struct store_group g;
        int64_t t_req = util_mono_usec();
        int rc;

        pthread_mutex_lock(gl);
        /* A sync may restart members' mirrors and bind them (members_mu). */
        if (op == GOP_SYNC)
                pthread_mutex_lock(&svc->members_mu);
        if ((rc = get_group(svc, project, id, &g, msg, msglen)) < 0)
                goto out;
        if ((rc = members_of(svc, id, &mb)) < 0)
                goto out;
        /* The one check: the group state table (states.c) and its 409. */
        rc = group_check(group_row_status(&g), derive_pairs(mb.ps, mb.n), mb.n, op, id, &rule, msg,
                         msglen);
        if (rc == 0 && op != GOP_PAUSE && op != GOP_SYNC) /* roles or sizes change */
                service_verify_cancel(svc, id, group_op_name(op));
        switch (rc < 0 ? GOP__COUNT : op) {
        case GOP_PAUSE:
                rc = mb.n ? do_pause(svc, &g, &mb, rule->to, t_req) : 0;
                break;
        case GOP_SYNC:
                rc = do_sync(svc, &g, &mb, rule->to, msg, msglen);
                break;
        case GOP_REVERSE:
        case GOP_FAILOVER:
                /* Across nodes the mirrors move (handoff.c). */
                rc = service_handoff_spans(mb.rt, mb.n)
                         ? service_handoff_swap(svc, &g, mb.ps, mb.rt, mb.n, op == GOP_FAILOVER,
                                                rule->via, rule->to, msg, msglen)
                         : do_swap(svc, &g, &mb, op == GOP_FAILOVER, rule, msg, msglen, job);
                break;
        case GOP_REPROTECT:
                /* Across nodes: the old production's divergence first. */
                rc = service_handoff_union(svc, mb.ps, mb.rt, mb.n, msg, msglen);
                if (rc == 0)
                        rc = do_reprotect(svc, &g, &mb, rule->to);
                break;
        case GOP_EXTEND:
                rc = do_extend(svc, &g, &mb, items, nitems, msg, msglen);
                break;
        case GOP_UPDATE:
        case GOP_DELETE:
        case GOP__COUNT:
                break;
        }
        if (rc < 0 && rc != -EBUSY && rc != -EINVAL && rc != -ENOENT && rc != -EHOSTUNREACH &&
            !msg[0])
                snprintf(msg, msglen, "%s failed: %s", group_op_name(op), strerror(-rc));
        members_unlock(&mb);
out:
        if (op == GOP_SYNC)
                pthread_mutex_unlock(&svc->members_mu);
        pthread_mutex_unlock(gl);
        return rc;
}

int service_group_pause_noop(struct service *svc, const char *project, const char *id)
{
        char ids[MAX_MEMBERS][STORE_ID_LEN];
        pthread_mutex_t *gl = stripe(svc, id);
        const struct group_rule *rule = NULL;
        struct pair_rt *rt[MAX_MEMBERS];
        struct store_pair *ps = NULL;
        struct store_group g;
        size_t n = 0, k = 0;
        size_t sk = (size_t)(gl - svc->group_stripes);
        bool busy = false, locked;
        uint64_t gen;
        char msg[256];
        int noop = 0;

        /* What service_group_action(GROUP_PAUSE) reads, under the same
         * locks, each taken without waiting: the stripe (no action on the
         * group runs, none starts before we let go), then every member's
         * lock in member order (members_of). The store's part is
         * memoised by the state generation (pause_memo.h). */
        locked = pthread_mutex_trylock(gl) == 0;
        /* Held by another inline pause (microseconds): try again while that
         * is who holds it; held by an action: not a no-op we can prove. */
        for (int i = 0; i < 200 && !locked && pause_memo_holders(svc->pause_memo, sk) > 0; i++) {
                sched_yield();
                locked = pthread_mutex_trylock(gl) == 0;
        }
        if (!locked)
                return 0;
        pause_memo_hold(svc->pause_memo, sk, 1);
        /* A reverse or failover accepted but not yet holding the stripe:
         * the executor answers 409 ("is starting"), so must we: defer. */
        if (service_swap_job_starting(svc, id))
                goto out;
        gen = replygen_now();
        if (!pause_memo_get(svc->pause_memo, project, id, gen, ids, MAX_MEMBERS, &n)) {
                if (get_group(svc, project, id, &g, msg, sizeof(msg)) < 0 ||
                    store_pair_list_by_group(svc->store, id, &ps, &n) < 0 || n == 0 ||
                    n > MAX_MEMBERS)
                        goto out;
                /* The check the action makes, with the target status equal
                 * to the current one: do_pause's "nothing to record". */
                if (group_check(group_row_status(&g), derive_pairs(ps, n), n, GOP_PAUSE, id, &rule,
                                msg, sizeof(msg)) < 0 ||
                    !rule || rule->to != group_row_status(&g))
                        goto out;
                for (size_t i = 0; i < n; i++)
                        memcpy(ids[i], ps[i].id, STORE_ID_LEN);
                pause_memo_put(svc->pause_memo, project, id, gen, (const char(*)[STORE_ID_LEN])ids,
                               n);
        }
        for (k = 0; k < n; k++) {
                rt[k] = pair_rt_trylock(svc, ids[k], &busy);
                if (busy)
                        break;
        }
        if (busy)
                goto out;
        /* do_pause's "every member already paused" branch: fence_pause
         * raises nothing when no member has a mirror outside TRACK. */
        noop = 1;
        for (size_t i = 0; i < n; i++) {
                struct mirror *m = rt[i] ? pair_rt_mirror(rt[i]) : NULL;

                if (m && mirror_mode(m) != MIRROR_TRACK)
                        noop = 0;
        }
out:
        for (size_t i = 0; i < k; i++)
                pair_rt_unlock(rt[i]);
        free(ps);
        pause_memo_hold(svc->pause_memo, sk, -1);
        pthread_mutex_unlock(gl);
        return noop;
}

/* clone.c: fn with the group's actions serialised and its members locked. */
int group_run_locked(struct service *svc, const char *project, const char *id, group_locked_fn fn,
                     void *ctx, char *msg, size_t msglen)
{
        pthread_mutex_t *gl = stripe(svc, id);
        struct members mb = {0};
        struct store_group g;
        int rc;

        if ((rc = service_group_swap_busy(svc, project, id, GOP__COUNT, msg, msglen)) < 0)
                return rc;
        pthread_mutex_lock(gl);
        if ((rc = get_group(svc, project, id, &g, msg, msglen)) == 0 &&
            (rc = members_of(svc, id, &mb)) == 0) {
                rc = fn(svc, &g, mb.ps, mb.fm, mb.n, ctx, msg, msglen);
                members_unlock(&mb);
        }
        pthread_mutex_unlock(gl);
        return rc;
}

/* ---- start-up ---- */

void service_groups_reconcile(struct service *svc)
{
        struct store_group *gs = NULL;
        size_t n = 0;

        if (store_group_list_all(svc->store, &gs, &n) < 0) {
                log_error("cannot list groups at start");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct store_group *g = &gs[i];
                enum group_status st = group_row_status(g);
                struct members mb = {0};

                if (!config_site(svc->cfg, g->priority_station))
                        continue; /* another node's group (multi-site) */
                if (st == GS_DELETING || st == GS_ERROR_DELETING) {
                        /* Finish (or retry) the delete; members were
                         * checked to be none when it was accepted. */
                        if (store_group_delete(svc->store, g->id) < 0)
                                set_group_status(svc, g, GS_ERROR_DELETING, 0);
                        continue;
                }
                if (group_rebind(svc, g->id) < 0)
                        log_error("group %s: cannot bind its members in the engine", g->id);
                if (st == GS_REVERSING || st == GS_FAILOVERING) {
                        /* The new roles were never recorded, so no client
                         * wrote to the new side (the fence was up): the old
                         * roles stand. */
                        log_warn("group %s: interrupted while %s; the previous roles stand", g->id,
                                 g->status);
                        set_group_status(svc, g, GS_AVAILABLE, 0);
                        continue;
                }
                if (st != GS_CREATING && st != GS_UPDATING)
                        continue;
                /* Interrupted create/update: members are committed; pause
                 * them (again) so the group is one consistent point. */
                if (members_of(svc, g->id, &mb) == 0) {
                        do_pause(svc, g, &mb, GS_AVAILABLE, 0);
                        members_unlock(&mb);
                }
        }
        free(gs);
}
