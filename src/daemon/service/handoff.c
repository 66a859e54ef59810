/* Moving a mirror between nodes (docs/design/multi-site.md "Failover from
 * the survivor", "The old node's return", "Moving a mirror between nodes").
 *
 *   failover from the survivor   the node serving a group's DR AZ takes the
 *                                roles of the dead production node in one
 *                                store transaction (store_node_take_roles:
 *                                refused while that node's lease is valid),
 *                                then opens the mirrors of its new
 *                                production disks in TRACK with a fresh,
 *                                clean bitmap and a link that starts broken
 *   divergence                   on the old production node: the dirty set
 *                                of a kept meta file (activity log folded
 *                                in), for the reprotect on the new node
 *   union                        on the new production node, before the
 *                                reprotect resync: the old node's dirty set
 *                                ORed into the local bitmap
 *
 * Lock order as groups.c: group stripe -> members_mu -> pair locks -> store
 * tx. */
#include "service/handoff.h"
#include "service/drcow.h"
#include "cluster/cluster.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/actlog.h"
#include "engine/bitmap.h"
#include "engine/meta.h"
#include "engine/mirror.h"
#include "service/internal.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 256 /* as groups.c */

/* The DR AZ of pair p: the AZ of the volume that is not in its
 * priority_station. */
static int pair_dr_az(struct service *svc, const struct store_pair *p, char *az, size_t cap)
{
        for (int k = 0; k < 2; k++) {
                struct store_volume v = {0};
                int rc = store_volume_get(svc->store, NULL, p->volume_ids[k], &v);

                if (rc < 0)
                        return rc;
                if (strcmp(v.availability_zone, p->priority_station) != 0) {
                        snprintf(az, cap, "%s", v.availability_zone);
                        store_volume_clear(&v);
                        return 0;
                }
                store_volume_clear(&v);
        }
        return -ENOENT;
}

int service_handoff_dr_az(struct service *svc, const char *project, const char *group_id, char *az,
                          size_t cap)
{
        struct store_pair *ps = NULL;
        struct store_group g;
        size_t n = 0;
        int rc;

        az[0] = '\0';
        if ((rc = store_group_get(svc->store, project, group_id, &g)) < 0)
                return rc;
        if ((rc = store_pair_list_by_group(svc->store, group_id, &ps, &n)) < 0)
                return rc;
        rc = n ? pair_dr_az(svc, &ps[0], az, cap) : -ENOENT;
        free(ps);
        return rc;
}

/* Fence the old production volume of p (the one in its priority_station)
 * in the store (inside the caller's transaction). */
static int fence_old_prod(struct service *svc, const struct store_pair *p)
{
        for (int k = 0; k < 2; k++) {
                struct store_volume v = {0};
                int rc = store_volume_get(svc->store, NULL, p->volume_ids[k], &v);

                if (rc < 0)
                        return rc;
                if (strcmp(v.availability_zone, p->priority_station) == 0) {
                        v.fenced = true;
                        rc = store_volume_update(svc->store, &v);
                        store_volume_clear(&v);
                        return rc;
                }
                store_volume_clear(&v);
        }
        return -ENOENT;
}

/* Every member must be a pair whose production is on another node and whose
 * DR disk is here. */
static int check_members(struct service *svc, const struct store_group *g, struct store_pair *ps,
                         size_t n, char *dr_az, size_t cap, char *msg, size_t msglen)
{
        for (size_t i = 0; i < n; i++) {
                char az[STORE_AZ_LEN];
                int rc;

                if (pair_row_status(&ps[i]) != PAIR_AVAILABLE) {
                        snprintf(msg, msglen,
                                 "replication pair %s is %s; the group cannot fail over until it "
                                 "is repaired or removed from the group",
                                 ps[i].id, ps[i].status);
                        return -EBUSY;
                }
                if (strcmp(ps[i].priority_station, g->priority_station) != 0) {
                        snprintf(msg, msglen,
                                 "replication pair %s has its production in %s, not in the "
                                 "group's %s; sync the group first",
                                 ps[i].id, ps[i].priority_station, g->priority_station);
                        return -EBUSY;
                }
                if ((rc = pair_dr_az(svc, &ps[i], az, sizeof(az))) < 0)
                        return rc;
                if (i == 0)
                        snprintf(dr_az, cap, "%s", az);
                if (strcmp(az, dr_az) != 0 || !config_site(svc->cfg, az)) {
                        snprintf(msg, msglen,
                                 "replication pair %s has its DR volume in %s, which node %s does "
                                 "not serve",
                                 ps[i].id, az, cluster_node_name());
                        return -EBUSY;
                }
        }
        return 0;
}

/* The one transaction: the old node's roles taken, the new roles recorded
 * as a failover on one node records them. */
static int record_takeover(struct service *svc, struct store_group *g, struct store_pair *ps,
                           size_t n, const char *old_node, const char *dr_az, int *retry_sec,
                           char *msg, size_t msglen)
{
        const char *st[MAX_MEMBERS];
        struct store_group next = *g;
        int64_t remaining = 0, now = util_now_usec();
        int rc;

        if ((rc = store_tx_begin(svc->store)) < 0)
                return rc;
        rc = store_node_take_roles(svc->store, old_node, &remaining);
        if (rc == -EBUSY) {
                *retry_sec = (int)((remaining + 999999) / 1000000);
                if (*retry_sec < 1)
                        *retry_sec = 1;
                snprintf(msg, msglen,
                         "node %s (%s) holds its lease for %d more seconds; retry after it "
                         "lapses, or stop node %s",
                         old_node, g->priority_station, *retry_sec, old_node);
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
                struct store_pair *p = &ps[i];

                if ((rc = fence_old_prod(svc, p)) < 0)
                        break;
                snprintf(p->priority_station, sizeof(p->priority_station), "%s", dr_az);
                snprintf(p->mirror_mode, sizeof(p->mirror_mode), "%s",
                         mirror_mode_name(MIRROR_TRACK));
                pair_row_set_repl(p, REPL_ACTIVE_STOPPED);
                p->updated_at = now;
                rc = store_pair_update(svc->store, p);
                st[i < MAX_MEMBERS ? i : MAX_MEMBERS - 1] = p->replication_status;
        }
        if (rc == 0) {
                snprintf(next.priority_station, sizeof(next.priority_station), "%s", dr_az);
                group_row_set_status(&next, GS_FAILOVERING);
                group_row_set_status(&next, GS_FAILOVERED);
                {
                        enum repl_status rs = REPL_ACTIVE_STOPPED;

                        (void)repl_status_parse(
                            service_group_derive(st, n < MAX_MEMBERS ? n : MAX_MEMBERS), &rs);
                        group_row_set_repl(&next, rs);
                }
                next.failure_detail[0] = '\0';
                next.updated_at = now;
                rc = store_group_update(svc->store, &next);
        }
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0) {
                store_tx_rollback(svc->store);
                return rc;
        }
        *g = next;
        return 0;
}

int service_handoff_failover(struct service *svc, const char *project, const char *group_id,
                             int *retry_sec, char *msg, size_t msglen)
{
        pthread_mutex_t *gl = service_group_stripe(svc, group_id);
        const struct group_rule *rule = NULL;
        struct store_pair *ps = NULL;
        struct store_group g;
        struct store_node owner;
        char dr_az[STORE_AZ_LEN] = "", old_az[STORE_AZ_LEN];
        const char *st[MAX_MEMBERS];
        size_t n = 0;
        uint64_t released = 0;
        bool rows_active;
        int rc, failed = 0;

        *retry_sec = 0;
        pthread_mutex_lock(gl);
        pthread_mutex_lock(&svc->members_mu);
        if ((rc = store_group_get(svc->store, project, group_id, &g)) < 0) {
                if (rc == -ENOENT)
                        snprintf(msg, msglen, "replication consistency group %s does not exist",
                                 group_id);
                goto out;
        }
        if ((rc = store_pair_list_by_group(svc->store, group_id, &ps, &n)) < 0)
                goto out;
        for (size_t i = 0; i < n && i < MAX_MEMBERS; i++)
                st[i] = ps[i].replication_status;
        {
                enum repl_status rs = REPL_ACTIVE;

                (void)repl_status_parse(service_group_derive(st, n < MAX_MEMBERS ? n : MAX_MEMBERS),
                                        &rs);
                rc = group_check(group_row_status(&g), rs, n, GOP_FAILOVER, group_id, &rule, msg,
                                 msglen);
        }
        if (rc < 0)
                goto out;
        if (n > MAX_MEMBERS) {
                rc = -EINVAL;
                goto out;
        }
        if ((rc = check_members(svc, &g, ps, n, dr_az, sizeof(dr_az), msg, msglen)) < 0)
                goto out;
        if (config_site(svc->cfg, g.priority_station)) {
                /* Production is here: the ordinary failover runs. */
                rc = -EALREADY;
                goto out;
        }
        rc = cluster_az_owner(g.priority_station, &owner, NULL);
        if (rc == -ENOENT) {
                snprintf(msg, msglen, "no node serves %s; the group cannot fail over",
                         g.priority_station);
                rc = -EBUSY;
                goto out;
        }
        if (rc < 0 && rc != -EHOSTDOWN)
                goto out;
        snprintf(old_az, sizeof(old_az), "%s", g.priority_station);
        /* Which sidecars here only missed their discard (their resync had
         * completed: folded, never rolled back) is the group's release
         * record (replication.md, "The release record", R5); the rows
         * (read before the takeover rewrites them) decide only for a
         * sidecar of unknown generation (R4). */
        if ((rc = service_drcow_released(svc, group_id, &released)) < 0) {
                snprintf(msg, msglen,
                         "the release record of group %s cannot be read (%s); retry the failover",
                         group_id, strerror(-rc));
                goto out;
        }
        rows_active = n > 0;
        for (size_t i = 0; i < n; i++)
                if (strcmp(ps[i].replication_status, repl_status_name(REPL_ACTIVE)) != 0)
                        rows_active = false;
        service_verify_cancel(svc, group_id, "failover");
        rc = record_takeover(svc, &g, ps, n, owner.name, dr_az, retry_sec, msg, msglen);
        if (rc < 0) {
                if (rc != -EBUSY)
                        log_error("group %s: failover from the survivor not recorded: %s", group_id,
                                  strerror(-rc));
                goto out;
        }
        log_info("group %s: roles of node %s taken over; production now in %s (was %s)", group_id,
                 owner.name, dr_az, old_az);
        /* Read the release record again now that the roles are ours: the
         * old production may have completed a resync (and bumped it) between
         * the first read and the takeover. The count only grows, so the
         * larger value is the truth; if this read fails the first stands. */
        {
                uint64_t again = 0;

                if (service_drcow_released(svc, group_id, &again) == 0 && again > released)
                        released = again;
        }
        /* The roles are durable: open the mirrors of the new production
         * disks. A pair that cannot start is recorded in error (its disk
         * stays writable for nothing: a sync restarts it). */
        for (size_t i = 0; i < n; i++) {
                struct pair_rt *rt = pair_rt_lock_new(svc, ps[i].id);
                int64_t inst;

                /* A resync was under way: back to the frozen instant from
                 * this node's sidecar before the disk is production
                 * (replication.md, sidecars, "Remote links"); the link
                 * export revoked first in any case (no stale writes). */
                if (!rt ||
                    service_drcow_rollback(svc, &ps[i], dr_az, released, rows_active, &inst) < 0 ||
                    pair_rt_takeover(svc, rt, &ps[i], MIRROR_TRACK) < 0)
                        failed++;
                else if (service_drcow_fold(svc, &ps[i], dr_az, pair_rt_mirror(rt)) < 0)
                        failed++;
                else /* the old production's image, for a reprotect's sidecar */
                        mirror_cow_set_instant(pair_rt_mirror(rt), g.updated_at);
                pair_rt_unlock(rt);
        }
        if (service_group_rebind(svc, group_id) < 0)
                log_error("group %s: cannot bind its members in the engine", group_id);
        if (failed) {
                snprintf(msg, msglen,
                         "the roles moved to %s, but %d mirror(s) could not be opened on node %s; "
                         "see its log",
                         dr_az, failed, cluster_node_name());
                rc = -EIO;
        } else {
                log_info("group %s: failover from the survivor done: production in %s, tracking",
                         group_id, dr_az);
        }
out:
        free(ps);
        pthread_mutex_unlock(&svc->members_mu);
        pthread_mutex_unlock(gl);
        return rc;
}

/* ---- the old node's divergence ---- */

static void meta_path_of(struct service *svc, const struct store_pair *p, char *buf, size_t len)
{
        struct store_volume v0 = {0};
        const struct site_cfg *s = NULL;

        if (store_volume_get(svc->store, NULL, p->volume_ids[0], &v0) == 0)
                s = config_site(svc->cfg, v0.availability_zone);
        snprintf(buf, len, "%s/pair-%s.meta", s ? s->dir : svc->cfg->data_dir, p->id);
        store_volume_clear(&v0);
}

int service_handoff_divergence(struct service *svc, const char *project, const char *pair_id,
                               json_t **out, char *msg, size_t msglen)
{
        char path[CONFIG_PATH_LEN + 64];
        uint64_t ext[AL_MAX_SLOTS + 8];
        unsigned nal = 0;
        struct store_pair p;
        struct meta m = {.fd = -1};
        struct bitmap bm = {0};
        json_t *arr;
        int rc;

        if ((rc = store_pair_get(svc->store, project, pair_id, &p)) < 0) {
                snprintf(msg, msglen, "replication pair %s does not exist", pair_id);
                return rc;
        }
        if (config_site(svc->cfg, p.priority_station)) {
                snprintf(msg, msglen, "node %s is the production node of pair %s",
                         cluster_node_name(), pair_id);
                return -EBUSY;
        }
        meta_path_of(svc, &p, path, sizeof(path));
        rc = meta_open(path, &m, &bm, ext, &nal);
        if (rc == -ENOENT) {
                /* No kept meta file (lost): this node's divergence is
                 * unknown, so all of the disk may differ ("whole"). */
                *out = json_pack("{s:b,s:[]}", "whole", 1, "extents");
                return 0;
        }
        if (rc < 0) {
                snprintf(msg, msglen, "pair %s: the kept meta file cannot be read: %s", pair_id,
                         rc == -EPROTO ? "damaged header" : strerror(-rc));
                *out = json_pack("{s:b,s:[]}", "whole", 1, "extents");
                return 0; /* damaged: all of it may differ */
        }
        /* Fold the activity log in memory: every extent that may have had a
         * write in flight is dirty. The file is left as it is. */
        {
                uint64_t per = m.al_extent_bytes / m.chunk_bytes;

                for (unsigned i = 0; i < nal; i++)
                        bitmap_set_range(&bm, ext[i] * (per ? per : 1), per ? per : 1);
        }
        arr = json_array();
        for (uint64_t b = bitmap_next_set(&bm, 0); b < bm.nbits;) {
                uint64_t e = bitmap_next_clear(&bm, b);

                if (e > bm.nbits)
                        e = bm.nbits;
                json_array_append_new(arr, json_pack("[I,I]", (json_int_t)(b * m.chunk_bytes),
                                                     (json_int_t)((e - b) * m.chunk_bytes)));
                if (e >= bm.nbits)
                        break;
                b = bitmap_next_set(&bm, e);
        }
        *out = json_pack("{s:b,s:I,s:I,s:I,s:o}", "whole", 0, "chunk_bytes",
                         (json_int_t)m.chunk_bytes, "size_bytes", (json_int_t)m.size_bytes,
                         "dirty_chunks", (json_int_t)bm.nset, "extents", arr);
        bitmap_free(&bm);
        meta_close(&m);
        return 0;
}

/* ---- reprotect: the union ---- */

/* The node serving the old production's AZ of p (its DR AZ now). */
static int old_node_of(struct service *svc, const struct store_pair *p, struct store_node *node,
                       char *az, size_t azcap)
{
        int rc = pair_dr_az(svc, p, az, azcap);

        if (rc < 0)
                return rc;
        return cluster_az_owner(az, node, NULL);
}

int service_handoff_divergence_fetch(struct service *svc, const struct store_pair *p, json_t **root,
                                     char *node_name, size_t namecap, char *msg, size_t msglen)
{
        struct store_node node;
        struct cluster_reply rep = {0};
        char az[STORE_AZ_LEN], path[256], why[256] = "";
        json_t *arr;
        int rc = old_node_of(svc, p, &node, az, sizeof(az));

        *root = NULL;
        snprintf(node_name, namecap, "%s", rc == 0 || rc == -EHOSTDOWN ? node.name : "?");
        if (rc == -EHOSTDOWN || rc == -ENOENT) {
                snprintf(msg, msglen,
                         "node %s (%s) is down; only it knows the divergence of its old "
                         "production disks: start it, then reprotect",
                         rc == -ENOENT ? "?" : node.name, az);
                return -EBUSY;
        }
        if (rc < 0)
                return rc;
        snprintf(path, sizeof(path), "/v2/%s/os-evsrep-divergence/%s", p->project_id, p->id);
        rc = cluster_forward_send(&node, "GET", path, p->project_id, false, NULL, 0, &rep, why,
                                  sizeof(why));
        if (rc == -EHOSTUNREACH || (rc == 0 && rep.status < 100)) {
                if (rc == 0)
                        cluster_reply_free(&rep);
                snprintf(msg, msglen,
                         "node %s (%s) cannot be reached (%s); only it knows the divergence of "
                         "its old production disks: reprotect when it is back",
                         node.name, az, why);
                return -EBUSY;
        }
        if (rc < 0)
                return rc;
        if (rep.status != 200) {
                snprintf(msg, msglen, "node %s did not give the divergence of pair %s: HTTP %ld",
                         node.name, p->id, rep.status);
                cluster_reply_free(&rep);
                return -EIO;
        }
        *root = json_loadb(rep.body ? rep.body : "", rep.len, 0, NULL);
        cluster_reply_free(&rep);
        arr = json_object_get(*root, "extents");
        if (!json_is_object(*root) || !json_is_array(arr)) {
                json_decref(*root);
                *root = NULL;
                snprintf(msg, msglen, "node %s gave a malformed divergence of pair %s", node.name,
                         p->id);
                return -EIO;
        }
        return 0;
}

static int union_one(struct service *svc, const struct store_pair *p, struct mirror *m, char *msg,
                     size_t msglen)
{
        char name[STORE_NODE_NAME_LEN];
        json_t *root, *arr, *it;
        size_t k;
        int rc = service_handoff_divergence_fetch(svc, p, &root, name, sizeof(name), msg, msglen);

        if (rc < 0)
                return rc;
        arr = json_object_get(root, "extents");
        if (json_is_true(json_object_get(root, "whole"))) {
                struct volume *v = mirror_prod(m);

                rc = mirror_mark_dirty(m, 0, volume_size(v));
                log_warn("pair %s: node %s has no divergence record: whole disk resynced", p->id,
                         name);
        } else {
                uint64_t total = 0, size = volume_size(mirror_prod(m));

                json_array_foreach(arr, k, it)
                {
                        json_int_t off = json_integer_value(json_array_get(it, 0));
                        json_int_t len = json_integer_value(json_array_get(it, 1));

                        /* Another node's answer: only extents inside the
                         * disk count. */
                        if (off < 0 || len <= 0 || (uint64_t)off >= size)
                                continue;
                        if ((uint64_t)len > size - (uint64_t)off)
                                len = (json_int_t)(size - (uint64_t)off);
                        if ((rc = mirror_mark_dirty(m, (uint64_t)off, (uint64_t)len)) < 0)
                                break;
                        total += (uint64_t)len;
                }
                log_info("pair %s: divergence of node %s unioned: %llu bytes in %zu extent(s)",
                         p->id, name, (unsigned long long)total, json_array_size(arr));
        }
        json_decref(root);
        return rc;
}

int service_handoff_union(struct service *svc, const struct store_pair *ps, struct pair_rt **rt,
                          size_t n, char *msg, size_t msglen)
{
        int rc = 0;

        for (size_t i = 0; i < n && rc == 0; i++) {
                struct store_pair p = ps[i];
                char az[STORE_AZ_LEN];

                if (!pair_rt_mirror(rt[i]) || pair_rt_dr(rt[i]))
                        continue; /* no mirror, or DR here (one node: the bitmap is whole) */
                if (pair_dr_az(svc, &p, az, sizeof(az)) < 0 || config_site(svc->cfg, az))
                        continue;
                /* A failover that stopped between its rollback and the
                 * marks (R3): the chunks named by the left-over sidecar. */
                rc = service_drcow_fold(svc, &p, p.priority_station, pair_rt_mirror(rt[i]));
                if (rc == 0)
                        rc = union_one(svc, &p, pair_rt_mirror(rt[i]), msg, msglen);
                if (rc == 0 && (rc = pair_rt_link_connect(svc, rt[i])) < 0) {
                        snprintf(msg, msglen,
                                 "the NBD link of pair %s to %s cannot be connected (%s); "
                                 "reprotect when it can",
                                 p.id, az, strerror(-rc));
                        rc = -EBUSY;
                }
        }
        return rc;
}

int service_handoff_unfence_remote(struct service *svc, const struct store_pair *p)
{
        for (int k = 0; k < 2; k++) {
                struct store_volume v = {0};
                int rc = store_volume_get(svc->store, NULL, p->volume_ids[k], &v);

                if (rc < 0)
                        return rc;
                if (strcmp(v.availability_zone, p->priority_station) != 0 && v.fenced) {
                        v.fenced = false;
                        rc = store_volume_update(svc->store, &v);
                }
                store_volume_clear(&v);
                if (rc < 0)
                        return rc;
        }
        return 0;
}

/* ---- reverse and failover with both nodes alive: the handoff table ---- */

bool service_handoff_spans(struct pair_rt **rt, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (pair_rt_mirror(rt[i]) && !pair_rt_dr(rt[i]))
                        return true;
        return false;
}

/* Step 5 of the table: ask the new production node to open its mirrors. */
static int ask_takeover(struct service *svc, const struct store_group *g, const char *dr_az,
                        bool failover, char *msg, size_t msglen)
{
        struct store_node node;
        struct cluster_reply rep = {0};
        char path[256], why[256] = "";
        const char *body = failover ? "{\"mode\":\"track\"}" : "{\"mode\":\"sync\"}";
        int rc = cluster_az_owner(dr_az, &node, NULL);

        (void)svc;
        if (rc < 0) {
                snprintf(msg, msglen,
                         "the roles moved to %s, but no live node serves it to open the mirrors; "
                         "they open when it starts",
                         dr_az);
                return -EHOSTUNREACH;
        }
        snprintf(path, sizeof(path), "/v2/%s/os-evsrep-takeover/%s", g->project_id, g->id);
        rc = cluster_forward_send(&node, "POST", path, g->project_id, false, body, strlen(body),
                                  &rep, why, sizeof(why));
        if (rc == 0 && rep.status != 200) {
                snprintf(msg, msglen,
                         "the roles moved to %s, but node %s did not open the mirrors: HTTP %ld "
                         "%.200s",
                         dr_az, node.name, rep.status, rep.body ? rep.body : "");
                rc = -EHOSTUNREACH;
        } else if (rc < 0) {
                snprintf(msg, msglen,
                         "the roles moved to %s, but node %s cannot be reached (%s) to open the "
                         "mirrors; they open when it starts",
                         dr_az, node.name, why);
                rc = -EHOSTUNREACH;
        }
        if (rc == 0 || rep.body)
                cluster_reply_free(&rep);
        return rc;
}

/* Step 0 (and its undo): the group row alone, outside any transaction. */
static int record_group_status(struct service *svc, struct store_group *g, enum group_status to)
{
        struct store_group next = *g;
        int rc;

        group_row_set_status(&next, to);
        next.updated_at = util_now_usec();
        if ((rc = store_group_update(svc->store, &next)) == 0)
                *g = next;
        return rc;
}

/* Steps 3: the new roles, in one transaction. */
static int record_move(struct service *svc, struct store_group *g, struct store_pair *ps, size_t n,
                       const char *dr_az, bool failover, enum group_status via,
                       enum group_status to)
{
        const char *st[MAX_MEMBERS];
        struct store_group next = *g;
        int64_t now = util_now_usec();
        enum repl_status rs = failover ? REPL_ACTIVE_STOPPED : REPL_ACTIVE;
        int rc;

        if ((rc = store_tx_begin(svc->store)) < 0)
                return rc;
        for (size_t i = 0; i < n && rc == 0; i++) {
                struct store_pair *p = &ps[i];

                if (failover && (rc = fence_old_prod(svc, p)) < 0)
                        break;
                snprintf(p->priority_station, sizeof(p->priority_station), "%s", dr_az);
                snprintf(p->mirror_mode, sizeof(p->mirror_mode), "%s",
                         mirror_mode_name(failover ? MIRROR_TRACK : MIRROR_SYNC));
                pair_row_set_repl(p, rs);
                p->updated_at = now;
                rc = store_pair_update(svc->store, p);
                st[i] = p->replication_status;
        }
        if (rc == 0) {
                snprintf(next.priority_station, sizeof(next.priority_station), "%s", dr_az);
                if (group_row_status(&next) != via)
                        group_row_set_status(&next, via);
                group_row_set_status(&next, to);
                if (repl_status_parse(service_group_derive(st, n), &rs) == 0)
                        group_row_set_repl(&next, rs);
                next.updated_at = now;
                rc = store_group_update(svc->store, &next);
        }
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0) {
                store_tx_rollback(svc->store);
                return rc;
        }
        *g = next;
        return 0;
}

int service_handoff_swap(struct service *svc, struct store_group *g, struct store_pair *ps,
                         struct pair_rt **rt, size_t n, bool failover, enum group_status via,
                         enum group_status to, char *msg, size_t msglen)
{
        const char *verb = failover ? "failover" : "reverse";
        struct volume *prod[MAX_MEMBERS];
        char dr_az[STORE_AZ_LEN] = "", old_az[STORE_AZ_LEN];
        struct store_node node;
        size_t k = 0;
        int rc = 0;

        if (n > MAX_MEMBERS)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char az[STORE_AZ_LEN];

                if (!pair_rt_mirror(rt[i]) || pair_rt_dr(rt[i])) {
                        snprintf(msg, msglen,
                                 "replication pair %s %s; a group whose pairs span nodes can %s "
                                 "only when every member is mirrored to the same other node",
                                 ps[i].id,
                                 pair_rt_mirror(rt[i]) ? "has its DR volume on this node"
                                                       : "has no running mirror",
                                 failover ? "fail over" : "reverse");
                        return -EBUSY;
                }
                if ((rc = pair_dr_az(svc, &ps[i], az, sizeof(az))) < 0)
                        return rc;
                if (i == 0)
                        snprintf(dr_az, sizeof(dr_az), "%s", az);
                if (strcmp(az, dr_az) != 0) {
                        snprintf(msg, msglen,
                                 "the group's pairs have their DR volumes in %s and %s; a "
                                 "group can move only to one zone",
                                 dr_az, az);
                        return -EBUSY;
                }
        }
        if ((rc = cluster_az_owner(dr_az, &node, NULL)) < 0) {
                snprintf(msg, msglen,
                         "no live node serves %s, where the group's DR volumes are; the group "
                         "cannot %s to it now%s",
                         dr_az, failover ? "fail over" : "reverse",
                         failover ? ""
                                  : " (a failover from there is the way out when this site "
                                    "is lost)");
                return rc == -EAGAIN ? rc : -EBUSY;
        }
        snprintf(old_az, sizeof(old_az), "%s", g->priority_station);
        /* 0: the group shows `reversing` / `failovering` while the mirrors
         * move, as on one node (groups.c do_swap). Until step 3 commits, the
         * old roles stand: a failure records `available` again, a crash
         * leaves it to this node's start-up (service_groups_reconcile). */
        if (group_row_status(g) != via && (rc = record_group_status(svc, g, via)) < 0) {
                snprintf(msg, msglen, "cannot record the %s of group %s: %s", verb, g->id,
                         strerror(-rc));
                return rc;
        }
        /* 1: one fence over every member's production disk. */
        for (k = 0; k < n; k++) {
                prod[k] = pair_rt_prod(rt[k]);
                volume_get(prod[k]);
                volume_fence_raise(prod[k]);
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
                rc = mirror_swap_preflight(pair_rt_mirror(rt[i]), failover);
                if (rc == -EBUSY)
                        snprintf(msg, msglen,
                                 "replication pair %s is not in sync with nothing dirty; a "
                                 "reverse needs every member active; sync the group and wait "
                                 "for active",
                                 ps[i].id);
                else if (rc < 0)
                        snprintf(msg, msglen, "replication pair %s cannot %s: %s", ps[i].id, verb,
                                 strerror(-rc));
        }
        if (rc < 0)
                goto lower;
        /* 2: the mirrors close, their meta files kept (the divergence). */
        for (size_t i = 0; i < n; i++)
                pair_rt_release(rt[i]);
        /* 3: the new roles. */
        rc = record_move(svc, g, ps, n, dr_az, failover, via, to);
        if (rc < 0) {
                /* Old roles stand: reopen the mirrors from their kept meta
                 * files (TRACK: a group sync resumes them). */
                log_error("group %s: %s across nodes not recorded (%s); mirrors reopened", g->id,
                          verb, strerror(-rc));
                for (size_t i = 0; i < n; i++)
                        if (pair_rt_reopen(svc, rt[i], &ps[i]) < 0)
                                log_error("pair %s: cannot reopen its mirror", ps[i].id);
                goto lower;
        }
        /* 4: this node's disks are DR now: read-only for clients. */
        for (size_t i = 0; i < k; i++)
                volume_set_read_only(prod[i], true);
        log_info("group %s: %s across nodes: roles committed, production now in %s (was %s)", g->id,
                 verb, dr_az, old_az);
lower:
        for (size_t i = 0; i < k; i++) {
                volume_fence_lower(prod[i]);
                volume_put(prod[i]);
        }
        if (rc < 0) {
                if (record_group_status(svc, g, GS_AVAILABLE) < 0)
                        log_error("group %s: cannot record the failed %s (start-up will)", g->id,
                                  verb);
                return rc;
        }
        /* The closed mirrors left the group's engine binding. 5: the new
         * production node opens its mirrors. */
        rc = ask_takeover(svc, g, dr_az, failover, msg, msglen);
        if (rc < 0)
                log_error("group %s: %s", g->id, msg);
        else
                log_info("group %s: %s across nodes done; node %s took over", g->id, verb,
                         node.name);
        return rc;
}

int service_handoff_takeover(struct service *svc, const char *project, const char *group_id,
                             enum mirror_mode mode, char *msg, size_t msglen)
{
        pthread_mutex_t *gl = service_group_stripe(svc, group_id);
        struct store_pair *ps = NULL;
        struct store_group g;
        size_t n = 0;
        uint64_t released = 0;
        int rc, failed = 0;

        pthread_mutex_lock(gl);
        pthread_mutex_lock(&svc->members_mu);
        if ((rc = store_group_get(svc->store, project, group_id, &g)) < 0 ||
            (rc = store_pair_list_by_group(svc->store, group_id, &ps, &n)) < 0 ||
            (mode == MIRROR_TRACK && (rc = service_drcow_released(svc, group_id, &released)) < 0))
                goto out;
        if (!config_site(svc->cfg, g.priority_station)) {
                snprintf(msg, msglen,
                         "group %s has its production in %s, which node %s does not serve",
                         group_id, g.priority_station, cluster_node_name());
                rc = -EBUSY;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                struct pair_rt *rt = pair_rt_lock_new(svc, ps[i].id);

                int64_t inst;

                /* A failover of a resyncing group: its DR disks (here) back
                 * to the frozen instant first, as from the survivor (R5:
                 * not from a released sidecar; the rows were rewritten by
                 * the swap, so a sidecar of unknown generation rolls back,
                 * as before). */
                if (!rt ||
                    (pair_rt_mirror(rt) == NULL &&
                     ((mode == MIRROR_TRACK &&
                       service_drcow_rollback(svc, &ps[i], g.priority_station, released, false,
                                              &inst) < 0) ||
                      pair_rt_takeover(svc, rt, &ps[i], mode) < 0 ||
                      (mode == MIRROR_TRACK && service_drcow_fold(svc, &ps[i], g.priority_station,
                                                                  pair_rt_mirror(rt)) < 0))))
                        failed++;
                else if (mode == MIRROR_TRACK) /* a failover: as swap_one does */
                        mirror_cow_set_instant(pair_rt_mirror(rt), g.updated_at);
                pair_rt_unlock(rt);
        }
        if (service_group_rebind(svc, group_id) < 0)
                log_error("group %s: cannot bind its members in the engine", group_id);
        if (failed) {
                snprintf(msg, msglen, "%d mirror(s) could not be opened on node %s; see its log",
                         failed, cluster_node_name());
                rc = -EIO;
        }
out:
        free(ps);
        pthread_mutex_unlock(&svc->members_mu);
        pthread_mutex_unlock(gl);
        return rc;
}
