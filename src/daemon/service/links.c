/* Mirror links between nodes (docs/design/multi-site.md "Remote DR links",
 * "Link faults").
 *
 * Production side: service_link_open opens the DR leg of a pair whose DR
 * volume another node serves: libnbd (engine/link_nbd.c) to that node's NBD
 * endpoint for the DR AZ (nodes table), export "link/<pair id>", TLS-PSK
 * with this node's link identity. A link op that fails or has no reply
 * within link_timeout breaks the link; the mirror treats it as any DR write
 * failure (TRACK, fault 5, the group frozen as one). The monitor thread
 * looks at every remote link once a second: a broken link of a pair in
 * TRACK is reconnected (2 s, doubling to 30 s), and when it connects, a
 * pair a DR fault stopped resumes (auto_resync): its group by a group sync
 * run by this node (every member at once), a pair in no group alone.
 *
 * DR side: the NBD hooks. A link session's key is derived from the cluster
 * key (cluster/link.c); the export is granted when the store shows the
 * pair with its DR volume in the listener's AZ and the node asking serves
 * the pair's production AZ. The DR volume is then read-only for clients
 * (it normally is already: service.c makes DR sides read-only at start).
 * When a link connection ends and the pair is gone (or being deleted), the
 * volume gets its client access back and the link export is revoked; a
 * pair delete also asks for that release over the internal channel before
 * the row goes (service_link_release_remote), so the caller sees the DR
 * volume writable once the pair is gone.
 *
 * Locks: the monitor takes pair locks one at a time (pair_rt_link_tick) and
 * runs a group sync with none held (service_group_action takes them). */
#include "service/internal.h"
#include "service/drcow.h"

#include "cluster/cluster.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/fence.h"
#include "engine/link.h"
#include "nbd/nbd.h"
#include "volume/attach.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LINK_CONNECT_MS 3000u
#define TICK_MS         1000

static struct service *g_svc; /* for the NBD hooks */

static int dr_volume_of(struct service *svc, const struct store_pair *p, struct store_volume *dv);

/* ---------------------------------------------------------------- production side */

static int link_cfg_fill(const char *pair_id, char *export_name, size_t elen, char *ident,
                         size_t ilen, char keyhex[2 * CLUSTER_LINK_PSK_BYTES + 1])
{
        unsigned char key[CLUSTER_LINK_PSK_BYTES];
        int n;

        snprintf(export_name, elen, "link/%s", pair_id);
        snprintf(ident, ilen, "evsrep-link:%s", cluster_node_name());
        if ((n = cluster_link_psk(cluster_node_name(), key, sizeof(key))) < 0)
                return n;
        util_hex(key, (size_t)n, keyhex);
        explicit_bzero(key, sizeof(key));
        return 0;
}

int service_link_open(struct service *svc, const char *pair_id, const char *dr_az,
                      uint64_t size_bytes, bool allow_down, struct link **out)
{
        char node[STORE_NODE_NAME_LEN] = "?", host[256] = "0.0.0.0", port[16] = "0";
        char export_name[64], ident[96], keyhex[2 * CLUSTER_LINK_PSK_BYTES + 1];
        struct link_nbd_cfg lc = {0};
        int rc;

        *out = NULL;
        rc = cluster_link_peer(dr_az, node, sizeof(node), host, sizeof(host), port, sizeof(port));
        if (rc < 0) {
                log_warn("pair %s: no node serving %s can be reached for the DR link: %s", pair_id,
                         dr_az,
                         rc == -ENOENT      ? "no node names it"
                         : rc == -EHOSTDOWN ? "its lease lapsed"
                                            : strerror(-rc));
                if (!allow_down)
                        return rc == -EHOSTDOWN ? -EHOSTUNREACH : rc;
        }
        if ((rc = link_cfg_fill(pair_id, export_name, sizeof(export_name), ident, sizeof(ident),
                                keyhex)) < 0)
                return rc;
        lc.host = host;
        lc.port = port;
        lc.export_name = export_name;
        lc.psk_identity = ident;
        lc.psk_key_hex = keyhex;
        lc.timeout_ms = (unsigned)svc->cfg->link_timeout_sec * 1000u;
        lc.connect_timeout_ms = MIN(LINK_CONNECT_MS, lc.timeout_ms);
        lc.down_size_bytes = allow_down ? size_bytes : 0;
        rc = link_nbd_open(&lc, out);
        explicit_bzero(keyhex, sizeof(keyhex));
        if (rc < 0) {
                log_warn("pair %s: DR link to node %s (%s:%s) failed: %s", pair_id, node, host,
                         port, strerror(-rc));
                return rc;
        }
        if (!link_nbd_broken(*out) && (*out)->ops->size(*out) != size_bytes) {
                log_error("pair %s: the DR export on node %s has %llu bytes, production %llu",
                          pair_id, node, (unsigned long long)(*out)->ops->size(*out),
                          (unsigned long long)size_bytes);
                (*out)->ops->close(*out);
                *out = NULL;
                return -EINVAL;
        }
        if (!link_nbd_broken(*out))
                log_info("pair %s: DR link to node %s (%s:%s) up", pair_id, node, host, port);
        return 0;
}

int service_link_broken(struct link *l)
{
        return l ? link_nbd_broken(l) : 0;
}

int service_link_reconnect(struct service *svc, const char *pair_id, struct volume *prod,
                           struct link *l)
{
        char node[STORE_NODE_NAME_LEN], host[256], port[16];
        int rc;

        struct store_pair p;
        struct store_volume dv = {0};

        /* The DR node may have come back elsewhere (another port): ask the
         * nodes table each time. */
        if ((rc = store_pair_get(svc->store, NULL, pair_id, &p)) < 0 ||
            (rc = dr_volume_of(svc, &p, &dv)) < 0)
                return rc;
        rc = cluster_link_peer(dv.availability_zone, node, sizeof(node), host, sizeof(host), port,
                               sizeof(port));
        store_volume_clear(&dv);
        if (rc < 0)
                return rc == -EHOSTDOWN ? -EHOSTUNREACH : rc;
        if ((rc = link_nbd_retarget(l, host, port)) < 0)
                return rc;
        if ((rc = link_nbd_reconnect(l)) < 0)
                return rc;
        if (l->ops->size(l) != volume_size(prod)) {
                log_error("pair %s: the DR export on node %s has %llu bytes, production %llu",
                          pair_id, node, (unsigned long long)l->ops->size(l),
                          (unsigned long long)volume_size(prod));
                return -EINVAL; /* healthy but wrong: the pair stays in TRACK */
        }
        return 0;
}

/* ---------------------------------------------------------------- extend */

int service_link_dr_grow(struct service *svc, const char *project, const char *pair_id,
                         uint64_t size_bytes, char *msg, size_t msglen)
{
        struct store_pair p;
        struct store_volume dv = {0};
        struct volume *v = NULL;
        int rc;

        if ((rc = store_pair_get(svc->store, project, pair_id, &p)) < 0) {
                snprintf(msg, msglen, "replication pair %s does not exist", pair_id);
                return rc;
        }
        if ((rc = dr_volume_of(svc, &p, &dv)) < 0)
                return rc;
        if (!config_site(svc->cfg, dv.availability_zone) ||
            !(v = volreg_lookup(dv.availability_zone, dv.id))) {
                snprintf(msg, msglen, "the DR volume %s of pair %s is not served by this node",
                         dv.id, pair_id);
                rc = -ENOENT;
        } else if (volume_size(v) < size_bytes) {
                rc = fence_resize(v, size_bytes);
                if (rc < 0)
                        snprintf(msg, msglen, "cannot grow DR volume %s: %s", dv.id, strerror(-rc));
                else
                        log_info("pair %s: DR volume %s grown to %llu bytes for its production "
                                 "node",
                                 pair_id, dv.id, (unsigned long long)size_bytes);
        }
        volume_put(v);
        store_volume_clear(&dv);
        return rc;
}

int service_link_post(struct service *svc, const char *pair_id, const char *route, const char *body,
                      const char *what)
{
        struct store_pair p;
        struct store_volume dv = {0};
        struct store_node owner;
        struct cluster_reply rep = {0};
        char path[256], msg[256] = "";
        int rc;

        if (!svc)
                return -ENOTCONN;
        if ((rc = store_pair_get(svc->store, NULL, pair_id, &p)) < 0 ||
            (rc = dr_volume_of(svc, &p, &dv)) < 0)
                return rc;
        rc = cluster_az_owner(dv.availability_zone, &owner, NULL);
        store_volume_clear(&dv);
        if (rc < 0)
                return rc == -EHOSTDOWN ? -EHOSTUNREACH : rc;
        snprintf(path, sizeof(path), "/v2/%s/os-evsrep-links/%s/%s", p.project_id, pair_id, route);
        rc = cluster_forward_send(&owner, "POST", path, p.project_id, false, body, strlen(body),
                                  &rep, msg, sizeof(msg));
        if (rc < 0) {
                log_error("pair %s: node %s cannot be reached %s: %s", pair_id, owner.name, what,
                          msg);
                return rc;
        }
        if (rep.status != 200) {
                log_error("pair %s: node %s refused %s: HTTP %ld %.200s", pair_id, owner.name, what,
                          rep.status, rep.body ? rep.body : "");
                rc = -EIO;
        }
        cluster_reply_free(&rep);
        return rc;
}

int service_link_grow_remote(struct service *svc, const char *pair_id, uint64_t size_bytes)
{
        char body[64];

        snprintf(body, sizeof(body), "{\"size_bytes\":%llu}", (unsigned long long)size_bytes);
        return service_link_post(svc, pair_id, "grow", body, "to grow the DR volume");
}

int service_link_release_remote(struct service *svc, const char *pair_id)
{
        return service_link_post(svc, pair_id, "release", "{}", "to release the DR volume");
}

/* One pass of the monitor over every remote link. */
static void links_pass(struct service *svc)
{
        char(*ids)[STORE_ID_LEN] = NULL, (*groups)[STORE_ID_LEN] = NULL;
        size_t n = 0, ng = 0;

        if (pair_rt_remote_ids(svc, &ids, &n) < 0 || n == 0) {
                free(ids);
                return;
        }
        groups = calloc(n, STORE_ID_LEN);
        for (size_t i = 0; i < n && groups; i++) {
                char gid[STORE_ID_LEN];
                bool seen = false;

                if (pair_rt_link_tick(svc, ids[i], util_mono_usec(), gid, sizeof(gid)) != 1)
                        continue;
                if (!gid[0]) {
                        int rc = pair_rt_resume(svc, ids[i]);

                        log_info("pair %s: DR link back: resumed (auto_resync)%s%s", ids[i],
                                 rc < 0 ? ": " : "", rc < 0 ? strerror(-rc) : "");
                        continue;
                }
                for (size_t k = 0; k < ng; k++)
                        seen |= strcmp(groups[k], gid) == 0;
                if (!seen)
                        snprintf(groups[ng++], STORE_ID_LEN, "%s", gid);
        }
        /* A group frozen together resumes together: one sync of the group
         * (every member under one request, as a user's sync would). */
        for (size_t k = 0; k < ng; k++) {
                char msg[512] = "";
                int rc = service_group_action(svc, NULL, groups[k], GROUP_SYNC, NULL, 0, msg,
                                              sizeof(msg));

                if (rc < 0)
                        log_warn("group %s: DR link back, but the automatic sync failed: %s",
                                 groups[k], msg[0] ? msg : strerror(-rc));
                else
                        log_info("group %s: DR link back: group synced (auto_resync)", groups[k]);
        }
        free(groups);
        free(ids);
}

int service_link_dr_volume(struct service *svc, const struct store_pair *p, struct store_volume *dv)
{
        return dr_volume_of(svc, p, dv);
}

static void *links_main(void *arg)
{
        struct service *svc = arg;

        pthread_mutex_lock(&svc->lock);
        while (!svc->links_stopping) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += TICK_MS / 1000;
                pthread_cond_timedwait(&svc->links_cond, &svc->lock, &ts);
                if (svc->links_stopping)
                        break;
                pthread_mutex_unlock(&svc->lock);
                links_pass(svc);
                pthread_mutex_lock(&svc->lock);
        }
        pthread_mutex_unlock(&svc->lock);
        return NULL;
}

/* ---------------------------------------------------------------- DR side */

static int hook_psk(const char *node, unsigned char *key, size_t cap)
{
        return cluster_link_psk(node, key, cap);
}

/* The pair's DR volume row (the one outside priority_station). */
static int dr_volume_of(struct service *svc, const struct store_pair *p, struct store_volume *dv)
{
        struct store_volume a = {0};
        int rc;

        if ((rc = store_volume_get(svc->store, NULL, p->volume_ids[0], &a)) < 0)
                return rc;
        if (strcmp(a.availability_zone, p->priority_station) != 0) {
                *dv = a;
                return 0;
        }
        store_volume_clear(&a);
        return store_volume_get(svc->store, NULL, p->volume_ids[1], dv);
}

static int hook_resolve(const char *site, const char *pair_id, const char *node, char *volume_id,
                        size_t idcap, char *why, size_t whylen)
{
        struct service *svc = g_svc;
        struct store_pair p;
        struct store_volume dv = {0};
        struct volume *v;
        int rc;

        if (!svc)
                return -ENOENT;
        if ((rc = store_pair_get(svc->store, NULL, pair_id, &p)) < 0) {
                snprintf(why, whylen, "no such pair in the store");
                return rc;
        }
        if (pair_row_deleting(&p)) {
                /* error_deleting: only a DELETE is accepted; no mirror
                 * runs again, so no link may make the volume read-only
                 * again after hook_closed released it. */
                snprintf(why, whylen, "the pair is being deleted");
                return -ENOENT;
        }
        if ((rc = dr_volume_of(svc, &p, &dv)) < 0) {
                snprintf(why, whylen, "the pair's DR volume is not in the store");
                return rc;
        }
        rc = -EACCES;
        if (strcmp(dv.availability_zone, site) != 0)
                snprintf(why, whylen, "the pair's DR volume %s is in %s, not in %s", dv.id,
                         dv.availability_zone, site);
        else if (!cluster_az_served_by(p.priority_station, node))
                snprintf(why, whylen, "node %s does not serve the pair's production zone %s", node,
                         p.priority_station);
        else if (strlen(dv.id) >= idcap)
                snprintf(why, whylen, "volume id too long");
        else
                rc = 0;
        /* S4 on the DR node: the pair's sidecar in force before any
         * write of this connection (replication.md "Remote links"). */
        if (rc == 0 && (rc = service_drcow_load(svc, site, pair_id, dv.id)) < 0)
                snprintf(why, whylen, "its copy-on-write sidecar cannot be reopened");
        if (rc == 0) {
                snprintf(volume_id, idcap, "%s", dv.id);
                /* A3: the DR volume is read-only for every client. */
                if ((v = volreg_lookup(site, dv.id))) {
                        if (!volume_read_only(v))
                                fence_set_read_only(v, true);
                        volume_put(v);
                }
        }
        store_volume_clear(&dv);
        return rc;
}

/* The DR volume of a pair that is gone or being deleted becomes a plain
 * volume again: its link export revoked, its sidecar dropped, its client
 * access back (read-only only if fenced). Unless the volume row names
 * another pair by now (reused). Idempotent: the link's close and the
 * production node's release request may both run it. */
static void dr_release(struct service *svc, const char *site, const char *pair_id,
                       const char *volume_id)
{
        struct store_volume v = {0};
        struct volume *vol;
        char id[64];

        if (store_volume_get(svc->store, NULL, volume_id, &v) < 0)
                return;
        if (!v.pair_id[0] || strcmp(v.pair_id, pair_id) == 0) {
                snprintf(id, sizeof(id), "link/%s", pair_id);
                attach_revoke(id);
                service_drcow_drop(svc, site, pair_id);
                if ((vol = volreg_lookup(site, volume_id))) {
                        fence_set_read_only(vol, v.fenced);
                        volume_put(vol);
                }
                log_info("pair %s: gone; DR volume %s is a plain volume again", pair_id, volume_id);
        }
        store_volume_clear(&v);
}

int service_link_dr_release(struct service *svc, const char *project, const char *pair_id,
                            char *msg, size_t msglen)
{
        struct store_pair p;
        struct store_volume dv = {0};
        int rc;

        if ((rc = store_pair_get(svc->store, project, pair_id, &p)) < 0) {
                if (rc == -ENOENT)
                        snprintf(msg, msglen, "replication pair %s does not exist", pair_id);
                return rc;
        }
        if (!pair_row_deleting(&p)) {
                snprintf(msg, msglen, "replication pair %s is not being deleted", pair_id);
                return -EBUSY;
        }
        if ((rc = dr_volume_of(svc, &p, &dv)) < 0)
                return rc;
        if (!config_site(svc->cfg, dv.availability_zone)) {
                snprintf(msg, msglen, "the DR volume %s of pair %s is not served by this node",
                         dv.id, pair_id);
                rc = -ENOENT;
        } else {
                dr_release(svc, dv.availability_zone, pair_id, dv.id);
        }
        store_volume_clear(&dv);
        return rc;
}

static void hook_closed(const char *site, const char *pair_id, const char *volume_id)
{
        struct service *svc = g_svc;
        struct store_pair p;
        int rc;

        if (!svc)
                return;
        rc = store_pair_get(svc->store, NULL, pair_id, &p);
        /* error_deleting: a delete whose row removal failed; the pair never
         * runs again (only a DELETE is accepted), and the production node
         * has no link left to close when that DELETE finishes, so release
         * the volume now. */
        if (rc == 0 && !pair_row_deleting(&p))
                return; /* the pair lives on: the link comes back */
        if (rc < 0 && rc != -ENOENT)
                return; /* store unreachable: keep it read-only */
        dr_release(svc, site, pair_id, volume_id);
}

int service_links_start(struct service *svc)
{
        static const struct nbd_link_hooks hooks = {.psk = hook_psk,
                                                    .resolve = hook_resolve,
                                                    .closed = hook_closed,
                                                    .preserve = service_drcow_preserve};
        int rc;

        g_svc = svc;
        service_drcow_start(svc);
        nbd_link_hooks_set(&hooks);
        pthread_cond_init(&svc->links_cond, NULL);
        svc->links_stopping = false;
        if ((rc = pthread_create(&svc->links_thread, NULL, links_main, svc)) != 0)
                return -rc;
        svc->links_running = true;
        return 0;
}

void service_links_stop(struct service *svc)
{
        nbd_link_hooks_set(NULL);
        if (svc->links_running) {
                pthread_mutex_lock(&svc->lock);
                svc->links_stopping = true;
                pthread_cond_broadcast(&svc->links_cond);
                pthread_mutex_unlock(&svc->lock);
                pthread_join(svc->links_thread, NULL);
                svc->links_running = false;
        }
        pthread_cond_destroy(&svc->links_cond);
        service_drcow_stop();
        g_svc = NULL;
}
