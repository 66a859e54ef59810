/* Volume state machine and the task thread. Statuses are the enums of
 * service/states.h (tables in states.c); the rows keep their names. */
#include "service/internal.h"
#include "service/pause_memo.h"
#include "engine/fence.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/attach.h"
#include "volume/volume.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct store *service_store(struct service *svc)
{
        return svc->store;
}

const struct evsrep_config *service_config(struct service *svc)
{
        return svc->cfg;
}

void service_volume_path(struct service *svc, const char *az, const char *id, char *buf, size_t len)
{
        const struct site_cfg *s = config_site(svc->cfg, az);

        snprintf(buf, len, "%s/%s", s ? s->dir : "/nonexistent", id);
}

/* ---- status fields of rows (states.h tables) ---- */

enum volume_status volume_row_status(const struct store_volume *v)
{
        enum volume_status st = VOL__COUNT;

        if (volume_status_parse(v->status, &st) < 0)
                log_error("volume %s: unknown status '%s'", v->id, v->status);
        return st;
}

enum pair_status pair_row_status(const struct store_pair *p)
{
        enum pair_status st = PAIR__COUNT;

        if (pair_status_parse(p->status, &st) < 0)
                log_error("replication pair %s: unknown status '%s'", p->id, p->status);
        return st;
}

bool pair_row_deleting(const struct store_pair *p)
{
        enum pair_status st = pair_row_status(p);

        return st == PAIR_DELETING || st == PAIR_ERROR_DELETING;
}

enum group_status group_row_status(const struct store_group *g)
{
        enum group_status st = GS__COUNT;

        if (group_status_parse(g->status, &st) < 0)
                log_error("group %s: unknown status '%s'", g->id, g->status);
        return st;
}

void volume_row_set_status(struct store_volume *v, enum volume_status to)
{
        assert(!v->status[0] || volume_transition_ok(volume_row_status(v), to));
        snprintf(v->status, sizeof(v->status), "%s", volume_status_name(to));
}

void pair_row_set_status(struct store_pair *p, enum pair_status to)
{
        assert(!p->status[0] || pair_transition_ok(pair_row_status(p), to));
        snprintf(p->status, sizeof(p->status), "%s", pair_status_name(to));
}

void group_row_set_status(struct store_group *g, enum group_status to)
{
        assert(!g->status[0] || group_transition_ok(group_row_status(g), to));
        snprintf(g->status, sizeof(g->status), "%s", group_status_name(to));
}

static enum repl_status row_repl(const char *name)
{
        enum repl_status rs = REPL__COUNT; /* "" (new row) */

        repl_status_parse(name, &rs);
        return rs;
}

void pair_row_set_repl(struct store_pair *p, enum repl_status to)
{
        assert(repl_transition_ok(row_repl(p->replication_status), to));
        snprintf(p->replication_status, sizeof(p->replication_status), "%s", repl_status_name(to));
}

void group_row_set_repl(struct store_group *g, enum repl_status to)
{
        /* A group's first value is whatever its members hold. */
        assert(!g->replication_status[0] ||
               repl_transition_ok(row_repl(g->replication_status), to));
        snprintf(g->replication_status, sizeof(g->replication_status), "%s", repl_status_name(to));
}

int service_enqueue(struct service *svc, service_task_fn fn, const char *id, int64_t arg)
{
        struct task *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->fn = fn;
        snprintf(t->id, sizeof(t->id), "%s", id);
        t->arg = arg;
        pthread_mutex_lock(&svc->lock);
        if (svc->tail)
                svc->tail->next = t;
        else
                svc->head = t;
        svc->tail = t;
        pthread_cond_signal(&svc->cond);
        pthread_mutex_unlock(&svc->lock);
        return 0;
}

static void *task_main(void *arg)
{
        struct service *svc = arg;

        for (;;) {
                struct task *t;

                pthread_mutex_lock(&svc->lock);
                while (!svc->head && !svc->stopping)
                        pthread_cond_wait(&svc->cond, &svc->lock);
                t = svc->head;
                if (t) {
                        svc->head = t->next;
                        if (!svc->head)
                                svc->tail = NULL;
                }
                pthread_mutex_unlock(&svc->lock);
                if (!t)
                        return NULL; /* stopping and drained */
                t->fn(svc, t->id, t->arg);
                free(t);
        }
}

/* Set status (and an error message) of a volume in one transaction. */
static void set_status(struct service *svc, const char *id, enum volume_status status,
                       const char *why)
{
        struct store_volume v = {0};

        if (store_volume_get(svc->store, NULL, id, &v) == 0) {
                volume_row_set_status(&v, status);
                snprintf(v.error_message, sizeof(v.error_message), "%s", why ? why : "");
                if (store_volume_update(svc->store, &v) < 0)
                        log_error("volume %s: cannot record status %s", id,
                                  volume_status_name(status));
        }
        store_volume_clear(&v);
}

/* Is v the DR disk of its pair (its zone is not the pair's production)? A
 * pair that cannot be read counts as DR: read-only is the safe answer. A
 * pair being deleted (deleting, error_deleting) never mirrors again: its
 * DR disk is released as the link export's close releases it (links.c
 * hook_closed), also when this node restarts before the DELETE finishes
 * on the production node, which has no link left to tell it. */
static bool is_dr_side(struct service *svc, const struct store_volume *v)
{
        struct store_pair p;

        if (!v->pair_id[0])
                return false;
        if (store_pair_get(svc->store, NULL, v->pair_id, &p) < 0)
                return true;
        if (pair_row_deleting(&p))
                return false;
        return strcmp(p.priority_station, v->availability_zone) != 0;
}

static int export_volume(struct service *svc, const struct store_volume *v)
{
        char path[CONFIG_PATH_LEN + 64];
        struct volume *vol;
        int rc;

        service_volume_path(svc, v->availability_zone, v->id, path, sizeof(path));
        if ((rc = volume_open(v->id, v->availability_zone, path, &vol)) < 0)
                return rc;
        /* Role-aware from the first instant it is reachable: the DR side of
         * a pair is never writable by a client, also before its pair's
         * mirror starts (docs/design/nbd.md "Start-up order"). */
        volume_set_read_only(vol, v->fenced || is_dr_side(svc, v));
        rc = volreg_add(vol);
        volume_put(vol);
        return rc;
}

static void task_create(struct service *svc, const char *id, int64_t size_gib)
{
        struct store_volume v = {0};
        char path[CONFIG_PATH_LEN + 64], why[STORE_NAME_LEN];
        int rc;

        if (store_volume_get(svc->store, NULL, id, &v) < 0)
                return;
        service_volume_path(svc, v.availability_zone, id, path, sizeof(path));
        rc = volume_file_create(path, (uint64_t)size_gib * GIB);
        if (rc == 0)
                rc = export_volume(svc, &v);
        if (rc < 0) {
                snprintf(why, sizeof(why), "cannot create the volume file: %s", strerror(-rc));
                log_error("volume %s: %s", id, why);
                unlink(path);
                set_status(svc, id, VOL_ERROR, why);
        } else {
                set_status(svc, id, VOL_AVAILABLE, NULL);
        }
        store_volume_clear(&v);
}

static void task_delete(struct service *svc, const char *id, int64_t unused)
{
        struct store_volume v = {0};
        char path[CONFIG_PATH_LEN + 64];
        struct volume *vol;

        (void)unused;
        if (store_volume_get(svc->store, NULL, id, &v) < 0)
                return;
        /* Unexport first: no new connection finds it, and connections that
         * still hold it get -ESHUTDOWN from here on; its attachments end
         * with their connections (the rows go with the volume's). */
        attach_revoke_volume(id);
        if ((vol = volreg_lookup(NULL, id))) {
                volume_kill(vol);
                volume_put(vol);
                volreg_remove(id);
        }
        service_volume_path(svc, v.availability_zone, id, path, sizeof(path));
        if (unlink(path) < 0 && errno != ENOENT) {
                log_error("volume %s: unlink %s: %s", id, path, strerror(errno));
                set_status(svc, id, VOL_ERROR_DELETING, "cannot remove the volume file");
        } else if (store_volume_delete(svc->store, id) < 0) {
                set_status(svc, id, VOL_ERROR_DELETING, "cannot remove the volume record");
        }
        store_volume_clear(&v);
}

/* The row already holds the target size (service_volume_extend records it
 * with the quota check); a failure puts it back to what the file holds, so
 * the API size, the NBD size and the project's usage agree. */
static void task_extend(struct service *svc, const char *id, int64_t new_gib)
{
        struct store_volume v = {0};
        struct volume *vol = volreg_lookup(NULL, id);
        char path[CONFIG_PATH_LEN + 64];
        struct stat st;
        int rc = -ENOENT;

        if (vol) {
                rc = fence_resize(vol, (uint64_t)new_gib * GIB);
                volume_put(vol);
        }
        if (store_volume_get(svc->store, NULL, id, &v) < 0)
                return;
        if (rc == 0) {
                v.size_gib = new_gib;
                volume_row_set_status(&v, VOL_AVAILABLE);
                v.error_message[0] = '\0';
        } else {
                volume_row_set_status(&v, VOL_ERROR_EXTENDING);
                snprintf(v.error_message, sizeof(v.error_message), "cannot grow the file: %s",
                         strerror(-rc));
                service_volume_path(svc, v.availability_zone, id, path, sizeof(path));
                if (stat(path, &st) == 0)
                        v.size_gib = (int64_t)(st.st_size / (off_t)GIB);
        }
        if (store_volume_update(svc->store, &v) < 0)
                log_error("volume %s: cannot record extend", id);
        store_volume_clear(&v);
}

/* An interrupted extend that cannot be finished (the file cannot grow):
 * the record goes back to what the file holds, so the API size and the NBD
 * size agree. A paired volume's pair row follows in service_pairs_reconcile. */
static void rollback_extend(struct service *svc, struct store_volume *v, const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return;
        log_error("volume %s: cannot finish the interrupted extend to %lld GiB: back to %lld GiB",
                  v->id, (long long)v->size_gib, (long long)(st.st_size / (off_t)GIB));
        v->size_gib = (int64_t)(st.st_size / (off_t)GIB);
        if (store_volume_update(svc->store, v) < 0)
                log_error("volume %s: cannot record the rollback", v->id);
}

/* Bring files and rows in line after a restart or a crash. */
static void reconcile(struct service *svc)
{
        struct store_volume *vols = NULL;
        size_t n = 0;

        if (store_volume_list_all(svc->store, &vols, &n) < 0) {
                log_error("cannot list volumes at start");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct store_volume *v = &vols[i];
                char path[CONFIG_PATH_LEN + 64];
                enum volume_status st = volume_row_status(v);

                /* Another node's AZ (multi-site): its files are not here. */
                if (!config_site(svc->cfg, v->availability_zone))
                        continue;
                service_volume_path(svc, v->availability_zone, v->id, path, sizeof(path));
                if (st == VOL_DELETING) {
                        service_enqueue(svc, task_delete, v->id, 0);
                        continue;
                }
                if (clone_row_interrupted(svc, v))
                        continue; /* a drill clone lost its instant (clone.c) */
                if (st == VOL_CREATING && access(path, F_OK) != 0) {
                        service_enqueue(svc, task_create, v->id, v->size_gib);
                        continue;
                }
                if (st == VOL_ERROR && access(path, F_OK) != 0)
                        continue;
                if (st == VOL_EXTENDING && volume_file_grow(path, (uint64_t)v->size_gib * GIB) < 0)
                        rollback_extend(svc, v, path);
                if (export_volume(svc, v) < 0) {
                        log_error("volume %s: file %s cannot be opened", v->id, path);
                        set_status(svc, v->id, VOL_ERROR, "the volume file is missing");
                        continue;
                }
                if (st == VOL_CREATING || st == VOL_EXTENDING)
                        set_status(svc, v->id, VOL_AVAILABLE, NULL);
        }
        store_volume_free_list(vols, n);
}

int service_start(const struct evsrep_config *cfg, struct store *st, struct service **out)
{
        struct service *svc = calloc(1, sizeof(*svc));
        int rc;

        if (!svc)
                return -ENOMEM;
        svc->cfg = cfg;
        svc->store = st;
        pthread_mutex_init(&svc->lock, NULL);
        pthread_cond_init(&svc->cond, NULL);
        for (int i = 0; i < cfg->nsites; i++) {
                if ((rc = util_mkdir_p(cfg->sites[i].dir)) < 0) {
                        log_error("cannot create %s: %s", cfg->sites[i].dir, strerror(-rc));
                        free(svc);
                        return rc;
                }
        }
        pthread_mutex_init(&svc->pairs_mu, NULL);
        pthread_mutex_init(&svc->members_mu, NULL);
        pthread_mutex_init(&svc->verify_mu, NULL);
        pthread_mutex_init(&svc->swaps_mu, NULL);
        for (size_t i = 0; i < ARRAY_SIZE(svc->group_stripes); i++)
                pthread_mutex_init(&svc->group_stripes[i], NULL);
        svc->pause_memo = pause_memo_new(); /* NULL: no memo, every pause reads */
        /* Attachments first (only the store is needed): nothing can connect
         * yet, the NBD listeners start after the service. */
        if ((rc = service_attachments_load(svc)) < 0) {
                attach_revoke_all();
                free(svc);
                return rc;
        }
        reconcile(svc);
        service_pairs_reconcile(svc);
        service_groups_reconcile(svc);
        if ((rc = pthread_create(&svc->thread, NULL, task_main, svc)) != 0) {
                free(svc);
                return -rc;
        }
        if ((rc = service_links_start(svc)) < 0)
                log_error("cannot start the link monitor: %s", strerror(-rc));
        *out = svc;
        return 0;
}

struct id_list {
        char (*ids)[STORE_ID_LEN];
        size_t n, cap;
};

static void collect_id(struct volume *v, void *arg)
{
        struct id_list *l = arg;

        if (l->n < l->cap)
                snprintf(l->ids[l->n++], STORE_ID_LEN, "%s", volume_id(v));
}

static void count_one(struct volume *v, void *arg)
{
        (void)v;
        (*(size_t *)arg)++;
}

void service_stop(struct service *svc)
{
        struct id_list l = {0};

        if (!svc)
                return;
        pthread_mutex_lock(&svc->lock);
        svc->stopping = true;
        pthread_cond_signal(&svc->cond);
        pthread_mutex_unlock(&svc->lock);
        service_swap_jobs_stop(svc); /* a swap under way ends first (it holds pair locks) */
        pthread_join(svc->thread, NULL);
        service_links_stop(svc);
        attach_revoke_all();      /* the NBD listeners are stopped: nothing watches */
        service_clones_stop(svc); /* before the mirrors: the copies read DR disks */
        /* Mirrors first: they flush both legs and close their meta files
         * cleanly (empty activity log) while the volumes are still open;
         * before them, the verify runs that read through them. */
        service_verify_stop_all(svc);
        service_pairs_stop(svc);
        service_groups_stop(svc);

        /* Collect ids first: the registry's foreach holds its lock, and
         * removing calls back into the registry. */
        volreg_foreach(NULL, count_one, &l.cap);
        l.ids = calloc(l.cap + 1, STORE_ID_LEN);
        if (l.ids) {
                volreg_foreach(NULL, collect_id, &l);
                for (size_t i = 0; i < l.n; i++) {
                        struct volume *v = volreg_lookup(NULL, l.ids[i]);
                        if (v) {
                                volume_local_flush(v);
                                volume_put(v);
                        }
                        volreg_remove(l.ids[i]);
                }
                free(l.ids);
        }
        while (svc->head) { /* events queued after the task thread stopped */
                struct task *t = svc->head;
                svc->head = t->next;
                free(t);
        }
        pause_memo_free(svc->pause_memo);
        pthread_mutex_destroy(&svc->pairs_mu);
        pthread_mutex_destroy(&svc->lock);
        pthread_cond_destroy(&svc->cond);
        free(svc);
}

int service_volume_create(struct service *svc, const struct volume_create_req *rq,
                          struct store_volume *out, char *msg, size_t msglen)
{
        int rc;

        if (!config_site(svc->cfg, rq->availability_zone)) {
                snprintf(msg, msglen, "volume.availability_zone '%s' is not a configured zone",
                         rq->availability_zone);
                return -EINVAL;
        }
        memset(out, 0, sizeof(*out));
        util_uuid_v4(out->id);
        snprintf(out->project_id, sizeof(out->project_id), "%s", rq->project_id);
        snprintf(out->name, sizeof(out->name), "%s", rq->name ? rq->name : "");
        snprintf(out->description, sizeof(out->description), "%s",
                 rq->description ? rq->description : "");
        snprintf(out->availability_zone, sizeof(out->availability_zone), "%s",
                 rq->availability_zone);
        volume_row_set_status(out, VOL_CREATING);
        snprintf(out->volume_type, sizeof(out->volume_type), "%s",
                 rq->volume_type ? rq->volume_type : "SSD");
        out->metadata_json = strdup(rq->metadata_json ? rq->metadata_json : "{}");
        if (!out->metadata_json)
                return -ENOMEM;
        out->size_gib = rq->size_gib;
        out->multiattach = rq->multiattach;
        out->created_at = util_now_usec();
        if ((rc = capacity_probe(svc, rq->availability_zone, rq->size_gib, msg, msglen)) < 0)
                return rc;
        /* Quota, capacity and insert in one transaction: concurrent creates
         * cannot both take the last slot. */
        if ((rc = store_tx_begin(svc->store)) < 0) {
                snprintf(msg, msglen, "cannot record the volume");
                return rc;
        }
        rc = quota_check_tx(svc, rq->project_id, 1, rq->size_gib, msg, msglen);
        if (rc == 0)
                rc = capacity_check_tx(svc, rq->availability_zone, rq->size_gib, msg, msglen);
        if (rc == 0 && ((rc = store_volume_insert(svc->store, out)) < 0 ||
                        (rc = store_tx_commit(svc->store)) < 0))
                snprintf(msg, msglen, "cannot record the volume");
        if (rc < 0) {
                store_tx_rollback(svc->store); /* no-op after a failed commit */
                return rc;
        }
        return service_enqueue(svc, task_create, out->id, rq->size_gib);
}

static int get_for_change(struct service *svc, const char *project, const char *id,
                          struct store_volume *v, const char *verb, char *msg, size_t msglen)
{
        int rc = store_volume_get(svc->store, project, id, v);

        if (rc == -ENOENT) {
                snprintf(msg, msglen, "volume %s does not exist", id);
                return rc;
        }
        if (rc < 0)
                return rc;
        if (v->pair_id[0]) {
                snprintf(msg, msglen,
                         "volume %s is in replication pair %s: it cannot be %s through the "
                         "volume API (delete the pair first, or use the group's extend action)",
                         id, v->pair_id, verb);
                return -EBUSY;
        }
        return 0;
}

int service_volume_delete(struct service *svc, const char *project, const char *id, char *msg,
                          size_t msglen)
{
        struct store_volume v = {0};
        int rc = get_for_change(svc, project, id, &v, "deleted", msg, msglen);

        if (rc == 0) {
                rc = volume_check(volume_row_status(&v), VOL_OP_DELETE, "volume", id, msg, msglen);
                if (rc == 0) {
                        volume_row_set_status(&v, VOL_DELETING);
                        v.updated_at = util_now_usec();
                        rc = store_volume_update(svc->store, &v);
                        if (rc == 0)
                                rc = service_enqueue(svc, task_delete, id, 0);
                }
        }
        store_volume_clear(&v);
        return rc;
}

/* The target size is recorded with the status (as the group extend does):
 * the quota and capacity checks count it from then on, and start-up
 * finishes an extend interrupted by a crash. */
int service_volume_extend(struct service *svc, const char *project, const char *id,
                          int64_t new_size_gib, char *msg, size_t msglen)
{
        struct store_volume v = {0};
        int64_t add_gib;
        int rc = get_for_change(svc, project, id, &v, "extended", msg, msglen);

        /* The zone never changes: probe outside the transaction. */
        if (rc == 0 && new_size_gib > v.size_gib)
                rc = capacity_probe(svc, v.availability_zone, new_size_gib, msg, msglen);
        store_volume_clear(&v);
        if (rc < 0)
                return rc;
        if ((rc = store_tx_begin(svc->store)) < 0)
                return rc;
        /* Again under the transaction: the row cannot change until commit. */
        rc = get_for_change(svc, project, id, &v, "extended", msg, msglen);
        if (rc < 0) {
                /* msg is set */
        } else if ((rc = volume_check(volume_row_status(&v), VOL_OP_EXTEND, "volume", id, msg,
                                      msglen)) < 0) {
                /* msg says what to do first */
        } else if (new_size_gib <= v.size_gib) {
                snprintf(msg, msglen,
                         "os-extend.new_size (%lld) must be larger than the current "
                         "size (%lld GiB)",
                         (long long)new_size_gib, (long long)v.size_gib);
                rc = -EINVAL;
        } else {
                add_gib = new_size_gib - v.size_gib;
                rc = quota_check_tx(svc, v.project_id, 0, add_gib, msg, msglen);
                if (rc == 0)
                        rc = capacity_check_tx(svc, v.availability_zone, add_gib, msg, msglen);
                if (rc == 0) {
                        volume_row_set_status(&v, VOL_EXTENDING);
                        v.size_gib = new_size_gib;
                        v.updated_at = util_now_usec();
                        rc = store_volume_update(svc->store, &v);
                }
        }
        store_volume_clear(&v);
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0) {
                store_tx_rollback(svc->store);
                return rc;
        }
        return service_enqueue(svc, task_extend, id, new_size_gib);
}
