/* DR drill on a clone: the control plane (service.h; docs/design/
 * replication.md "DR drill on a clone"). The data plane is volume/clone.c.
 *
 *   request: check the group (available; every member in SYNC, or every
 *            member in TRACK with one common frozen_at), insert the clone
 *            rows (creating) with the quota and capacity checks in one
 *            transaction, create the sparse files, capture every member's
 *            DR disk under one fence (engine/fence.c fence_capture), record
 *            instant and method; reflinked clones are exported and
 *            available before the answer;
 *   worker:  copies the rest of each copied clone (one thread per
 *            request), exports it, available (or error with the reason);
 *   start-up: a clone still creating lost its instant: error.
 *
 * Lock order: group stripe -> pair locks -> (fences) -> g_runs_mu. The
 * worker takes no service lock; it only writes its own rows. */
#include "service/internal.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "engine/fence.h"
#include "volume/clone.h"
#include "volume/volume.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLONE_MAX_MEMBERS 256
#define CLONE_META_GROUP  "evsrep_clone_group"

struct clone_member {
        struct clone_job *job;
        enum clone_method method;
        struct store_volume row;
        char src_id[STORE_ID_LEN]; /* the DR volume */
        char path[CONFIG_PATH_LEN + 64];
        bool done;
};

/* One request's clones being copied (one worker thread). */
struct clone_run {
        struct service *svc;
        pthread_t thread;
        atomic_bool stop;
        atomic_bool finished;
        struct clone_member *mem;
        size_t n;
        struct clone_run *next;
};

static pthread_mutex_t g_runs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct clone_run *g_runs;
/* Metrics of finished jobs (running ones are added when rendering). */
static atomic_uint_least64_t g_bytes_total, g_preserved_total, g_clones_total;

static void clone_run_free(struct clone_run *r)
{
        for (size_t i = 0; i < r->n; i++) {
                clone_job_free(r->mem[i].job);
                store_volume_clear(&r->mem[i].row);
        }
        free(r->mem);
        free(r);
}

/* Join and free the runs whose worker is done (g_runs_mu held). */
static void clone_runs_reap_locked(void)
{
        struct clone_run **pp = &g_runs;

        while (*pp) {
                struct clone_run *r = *pp;

                if (!atomic_load(&r->finished)) {
                        pp = &r->next;
                        continue;
                }
                *pp = r->next;
                pthread_join(r->thread, NULL);
                clone_run_free(r);
        }
}

/* Is a clone of DR volume dr_id still being copied? (g_runs_mu held) */
static const char *clone_busy_locked(const char *dr_id)
{
        for (struct clone_run *r = g_runs; r; r = r->next)
                for (size_t i = 0; i < r->n; i++)
                        if (!r->mem[i].done && strcmp(r->mem[i].src_id, dr_id) == 0)
                                return r->mem[i].row.id;
        return NULL;
}

bool service_clone_progress(const char *volume_id, int *percent)
{
        bool found = false;

        pthread_mutex_lock(&g_runs_mu);
        for (struct clone_run *r = g_runs; r && !found; r = r->next)
                for (size_t i = 0; i < r->n && !found; i++) {
                        uint64_t done, total;

                        if (r->mem[i].done || strcmp(r->mem[i].row.id, volume_id) != 0)
                                continue;
                        clone_job_progress(r->mem[i].job, &done, &total);
                        *percent = total ? (int)MIN(done * 100 / total, 99) : 99;
                        found = true;
                }
        pthread_mutex_unlock(&g_runs_mu);
        return found;
}

void service_clones_metrics_render(FILE *f)
{
        uint64_t bytes = atomic_load(&g_bytes_total), kept = atomic_load(&g_preserved_total);
        unsigned copying = 0;

        pthread_mutex_lock(&g_runs_mu);
        for (struct clone_run *r = g_runs; r; r = r->next)
                for (size_t i = 0; i < r->n; i++)
                        if (!r->mem[i].done && r->mem[i].job) {
                                copying++;
                                bytes += clone_job_data_bytes(r->mem[i].job);
                                kept += clone_job_preserved_chunks(r->mem[i].job);
                        }
        pthread_mutex_unlock(&g_runs_mu);
        stats_header(f, "evsrep_clones_total", "counter",
                     "drill clone volumes created (os-evsrep-clone-replication-consistency-group)");
        fprintf(f, "evsrep_clones_total %llu\n", (unsigned long long)atomic_load(&g_clones_total));
        stats_header(f, "evsrep_clones_copying", "gauge", "drill clones being copied now");
        fprintf(f, "evsrep_clones_copying %u\n", copying);
        stats_header(f, "evsrep_clone_copied_bytes_total", "counter",
                     "data bytes copied into drill clones (copy path)");
        fprintf(f, "evsrep_clone_copied_bytes_total %llu\n", (unsigned long long)bytes);
        stats_header(f, "evsrep_clone_preserved_chunks_total", "counter",
                     "1 MiB chunks a DR write copied into a clone first (copy-before-write)");
        fprintf(f, "evsrep_clone_preserved_chunks_total %llu\n", (unsigned long long)kept);
}

/* ---- rows ---- */

static int clone_row_export(struct clone_member *cm)
{
        struct volume *vol;
        int rc = volume_open(cm->row.id, cm->row.availability_zone, cm->path, &vol);

        if (rc < 0)
                return rc;
        rc = volreg_add(vol);
        volume_put(vol);
        return rc;
}

/* Status (and reason) of a clone row; the rest of the row as recorded. */
static void clone_row_finish(struct service *svc, struct clone_member *cm, enum volume_status to,
                             const char *why)
{
        struct store_volume v = {0};

        if (store_volume_get(svc->store, NULL, cm->row.id, &v) < 0) {
                log_error("clone volume %s: its record is gone", cm->row.id);
                return;
        }
        volume_row_set_status(&v, to);
        snprintf(v.error_message, sizeof(v.error_message), "%s", why ? why : "");
        v.updated_at = util_now_usec();
        if (store_volume_update(svc->store, &v) < 0)
                log_error("clone volume %s: cannot record status %s", v.id, volume_status_name(to));
        store_volume_clear(&v);
}

bool clone_row_interrupted(struct service *svc, const struct store_volume *v)
{
        struct store_volume row = {0};

        if (volume_row_status(v) != VOL_CREATING || !v->metadata_json ||
            !strstr(v->metadata_json, "\"" CLONE_META_GROUP "\""))
                return false;
        if (store_volume_get(svc->store, NULL, v->id, &row) == 0) {
                volume_row_set_status(&row, VOL_ERROR);
                snprintf(row.error_message, sizeof(row.error_message),
                         "drill clone interrupted by a daemon restart before its copy was "
                         "complete: the instant is lost; delete this volume and clone again");
                if (store_volume_update(svc->store, &row) < 0)
                        log_error("clone volume %s: cannot record the interruption", v->id);
                store_volume_clear(&row);
        }
        log_warn("clone volume %s: interrupted while copying: error", v->id);
        return true;
}

/* ---- the worker ---- */

static void *clone_run_main(void *arg)
{
        struct clone_run *r = arg;

        for (size_t i = 0; i < r->n; i++) {
                struct clone_member *cm = &r->mem[i];
                struct clone_job *job;
                char why[STORE_NAME_LEN];
                int rc;

                if (cm->method != CLONE_COPY)
                        continue;
                rc = clone_job_run(cm->job, &r->stop);
                if (rc == 0 && (rc = clone_row_export(cm)) == 0) {
                        clone_row_finish(r->svc, cm, VOL_AVAILABLE, NULL);
                        log_info("clone volume %s: copied (%llu data bytes)", cm->row.id,
                                 (unsigned long long)clone_job_data_bytes(cm->job));
                } else if (rc == -ECANCELED) {
                        log_warn("clone volume %s: copy stopped by the daemon's shutdown",
                                 cm->row.id);
                } else {
                        snprintf(why, sizeof(why), "drill clone failed: %s; delete it",
                                 strerror(-rc));
                        clone_row_finish(r->svc, cm, VOL_ERROR, why);
                }
                /* Done: the source's reference and the clone's fd go now
                 * (a deleted clone's space is freed at its delete). */
                pthread_mutex_lock(&g_runs_mu);
                cm->done = true;
                job = cm->job;
                cm->job = NULL;
                atomic_fetch_add(&g_bytes_total, clone_job_data_bytes(job));
                atomic_fetch_add(&g_preserved_total, clone_job_preserved_chunks(job));
                pthread_mutex_unlock(&g_runs_mu);
                clone_job_free(job);
        }
        atomic_store(&r->finished, true);
        return NULL;
}

void service_clones_stop(struct service *svc)
{
        struct clone_run *r;

        pthread_mutex_lock(&g_runs_mu);
        for (r = g_runs; r; r = r->next)
                if (r->svc == svc)
                        atomic_store(&r->stop, true);
        pthread_mutex_unlock(&g_runs_mu);
        /* Join outside the lock: the workers take it to mark progress. */
        for (;;) {
                pthread_mutex_lock(&g_runs_mu);
                for (struct clone_run **pp = &g_runs; (r = *pp); pp = &r->next)
                        if (r->svc == svc) {
                                *pp = r->next;
                                break;
                        }
                pthread_mutex_unlock(&g_runs_mu);
                if (!r)
                        break;
                pthread_join(r->thread, NULL);
                clone_run_free(r);
        }
}

/* ---- the request ---- */

struct clone_ctx {
        const char *prefix;
        struct group_clone_result *out;
        struct clone_member *mem;
        size_t n;
        bool try_reflink;
};

static void capture_one(void *arg, size_t i)
{
        struct clone_ctx *c = arg;

        c->mem[i].method = clone_job_capture(c->mem[i].job, c->try_reflink);
}

/* Which instant can the group's DR disks give? 0 and *want / *frozen, or
 * -EBUSY with the sentence. */
static int clone_instant_check(const struct store_group *g, const struct store_pair *ps,
                               const struct fence_member *fm, size_t n, enum mirror_mode *want,
                               int64_t *frozen, char *msg, size_t msglen)
{
        const char *st[CLONE_MAX_MEMBERS];
        bool all_sync = true, all_frozen = true;

        *frozen = 0;
        if (group_row_status(g) != GS_AVAILABLE) {
                snprintf(msg, msglen,
                         "replication consistency group %s is %s: a drill clone needs status "
                         "available%s",
                         g->id, g->status,
                         group_row_status(g) == GS_FAILOVERED
                             ? " (after a failover the DR disks are the production disks; "
                               "reprotect the group first)"
                             : "");
                return -EBUSY;
        }
        if (n == 0) {
                snprintf(msg, msglen,
                         "replication consistency group %s has no pairs: nothing to clone", g->id);
                return -EBUSY;
        }
        for (size_t i = 0; i < n; i++) {
                struct mirror_stats ms;
                int64_t f;

                st[i] = ps[i].replication_status;
                if (!fm[i].m) {
                        snprintf(msg, msglen,
                                 "replication pair %s of group %s has no running mirror "
                                 "(replication_status %s): sync the group first",
                                 ps[i].id, g->id, ps[i].replication_status);
                        return -EBUSY;
                }
                mirror_stats(fm[i].m, &ms);
                f = ms.frozen_at ? ms.frozen_at : ps[i].frozen_at;
                if (ms.mode != MIRROR_SYNC)
                        all_sync = false;
                if (ms.mode != MIRROR_TRACK || f == 0 || (*frozen && f != *frozen))
                        all_frozen = false;
                if (!*frozen)
                        *frozen = f;
        }
        if (all_sync) {
                *want = MIRROR_SYNC;
                return 0;
        }
        if (all_frozen) {
                *want = MIRROR_TRACK;
                return 0;
        }
        snprintf(msg, msglen,
                 "replication consistency group %s has replication_status %s: its DR disks hold "
                 "no consistent instant (a member is copying, or was copying when it was paused, "
                 "or the members were frozen at different instants); sync the group and clone "
                 "it when it is active (or pause it when it is active, then clone)",
                 g->id, service_group_derive(st, n));
        return -EBUSY;
}

static char *clone_metadata(const struct store_group *g, const struct store_pair *p,
                            const char *dr_id, int64_t instant, const char *method)
{
        char t[UTIL_TIME_LEN] = "";
        json_t *md;
        char *s;

        if (instant)
                util_time_format(instant, t);
        md = json_pack("{s:s,s:s,s:s}", CLONE_META_GROUP, g->id, "evsrep_clone_pair", p->id,
                       "evsrep_clone_source_volume", dr_id);
        if (md && instant)
                json_object_set_new(md, "evsrep_clone_instant", json_string(t));
        if (md && method)
                json_object_set_new(md, "evsrep_clone_method", json_string(method));
        s = md ? json_dumps(md, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(md);
        return s;
}

/* Remove rows and files of a request that did not happen. */
static void clone_undo(struct service *svc, struct clone_member *mem, size_t n, bool rows)
{
        for (size_t i = 0; i < n; i++) {
                clone_job_free(mem[i].job);
                mem[i].job = NULL;
                if (mem[i].path[0])
                        unlink(mem[i].path);
                if (rows && store_volume_delete(svc->store, mem[i].row.id) < 0)
                        log_error("clone volume %s: cannot remove the record of a refused clone",
                                  mem[i].row.id);
                store_volume_clear(&mem[i].row);
        }
}

/* Insert every row (creating) under the quota and capacity checks. */
static int clone_rows_insert(struct service *svc, const char *project, struct clone_member *mem,
                             size_t n, char *msg, size_t msglen)
{
        int64_t gib = 0;
        int rc;

        for (size_t i = 0; i < n; i++) {
                gib += mem[i].row.size_gib;
                if ((rc = capacity_probe(svc, mem[i].row.availability_zone, mem[i].row.size_gib,
                                         msg, msglen)) < 0)
                        return rc;
        }
        if ((rc = store_tx_begin(svc->store)) < 0) {
                snprintf(msg, msglen, "cannot record the clone volumes");
                return rc;
        }
        rc = quota_check_tx(svc, project, (int64_t)n, gib, msg, msglen);
        for (size_t i = 0; i < n && rc == 0; i++) {
                const char *az = mem[i].row.availability_zone;
                int64_t az_gib = 0;
                bool seen = false;

                for (size_t k = 0; k < i; k++)
                        seen = seen || strcmp(mem[k].row.availability_zone, az) == 0;
                if (seen)
                        continue; /* that zone was checked with all its clones */
                for (size_t k = i; k < n; k++)
                        if (strcmp(mem[k].row.availability_zone, az) == 0)
                                az_gib += mem[k].row.size_gib;
                rc = capacity_check_tx(svc, az, az_gib, msg, msglen);
        }
        for (size_t i = 0; i < n && rc == 0; i++)
                if ((rc = store_volume_insert(svc->store, &mem[i].row)) < 0)
                        snprintf(msg, msglen, "cannot record the clone volumes");
        if (rc == 0 && (rc = store_tx_commit(svc->store)) < 0)
                snprintf(msg, msglen, "cannot record the clone volumes");
        if (rc < 0)
                store_tx_rollback(svc->store);
        return rc;
}

/* Fill the rows of the clones (not yet stored). */
static int clone_rows_prepare(struct service *svc, const struct store_group *g,
                              const struct store_pair *ps, const struct fence_member *fm, size_t n,
                              const char *prefix, struct clone_member *mem, char *msg,
                              size_t msglen)
{
        int64_t now = util_now_usec();

        for (size_t i = 0; i < n; i++) {
                struct store_volume dr = {0};
                struct store_volume *v = &mem[i].row;
                const char *dr_id = volume_id(fm[i].dr);
                int rc = store_volume_get(svc->store, NULL, dr_id, &dr);

                if (rc < 0) {
                        snprintf(msg, msglen, "cannot read DR volume %s of pair %s", dr_id,
                                 ps[i].id);
                        return rc;
                }
                util_uuid_v4(v->id);
                snprintf(mem[i].src_id, sizeof(mem[i].src_id), "%s", dr_id);
                snprintf(v->project_id, sizeof(v->project_id), "%s", g->project_id);
                snprintf(v->name, sizeof(v->name), "%.120s-%.120s", prefix,
                         dr.name[0] ? dr.name : dr.id);
                snprintf(v->description, sizeof(v->description),
                         "DR drill clone of volume %s (pair %s, group %s)", dr.id, ps[i].id, g->id);
                snprintf(v->availability_zone, sizeof(v->availability_zone), "%s",
                         volume_site(fm[i].dr));
                snprintf(v->volume_type, sizeof(v->volume_type), "%s", dr.volume_type);
                volume_row_set_status(v, VOL_CREATING);
                v->size_gib = dr.size_gib;
                v->created_at = v->updated_at = now;
                v->metadata_json = clone_metadata(g, &ps[i], dr_id, 0, NULL);
                store_volume_clear(&dr);
                if (!v->metadata_json)
                        return -ENOMEM;
                service_volume_path(svc, v->availability_zone, v->id, mem[i].path,
                                    sizeof(mem[i].path));
        }
        return 0;
}

static int clone_locked(struct service *svc, struct store_group *g, struct store_pair *ps,
                        struct fence_member *fm, size_t n, void *arg, char *msg, size_t msglen)
{
        struct clone_ctx *c = arg;
        struct group_clone_result *out = c->out;
        struct fence_result fr;
        struct clone_run *run = NULL;
        enum mirror_mode want;
        int64_t frozen, instant;
        int rc;

        if (n > CLONE_MAX_MEMBERS) {
                snprintf(msg, msglen, "a group of more than %d pairs cannot be cloned",
                         CLONE_MAX_MEMBERS);
                return -EBUSY;
        }
        if ((rc = clone_instant_check(g, ps, fm, n, &want, &frozen, msg, msglen)) < 0)
                return rc;
        pthread_mutex_lock(&g_runs_mu);
        clone_runs_reap_locked();
        for (size_t i = 0; i < n && rc == 0; i++) {
                const char *busy = clone_busy_locked(volume_id(fm[i].dr));

                if (busy) {
                        snprintf(msg, msglen,
                                 "a drill clone of DR volume %s (pair %s) is still being copied "
                                 "into volume %s: wait until it is available, then clone again",
                                 volume_id(fm[i].dr), ps[i].id, busy);
                        rc = -EBUSY;
                }
        }
        pthread_mutex_unlock(&g_runs_mu);
        if (rc < 0)
                return rc;
        c->mem = calloc(n, sizeof(*c->mem));
        if (!c->mem)
                return -ENOMEM;
        c->n = n;
        rc = clone_rows_prepare(svc, g, ps, fm, n, c->prefix, c->mem, msg, msglen);
        if (rc == 0)
                rc = clone_rows_insert(svc, g->project_id, c->mem, n, msg, msglen);
        if (rc < 0) {
                for (size_t i = 0; i < n; i++) {
                        c->mem[i].path[0] = '\0';
                        store_volume_clear(&c->mem[i].row);
                }
                return rc;
        }
        /* Sparse files, opened, before the fence: the fence covers only the
         * capture. */
        for (size_t i = 0; i < n && rc == 0; i++) {
                uint64_t bytes = (uint64_t)c->mem[i].row.size_gib * GIB;

                if ((rc = volume_file_create(c->mem[i].path, bytes)) < 0) {
                        snprintf(msg, msglen, "cannot create the clone file of volume %s: %s",
                                 c->mem[i].row.id, strerror(-rc));
                        break;
                }
                if ((rc = clone_job_new(fm[i].dr, c->mem[i].path, bytes, &c->mem[i].job)) < 0)
                        snprintf(msg, msglen, "cannot open the clone file of volume %s: %s",
                                 c->mem[i].row.id, strerror(-rc));
        }
        if (rc == 0) {
                rc = fence_capture(fm, n, want, capture_one, c, &fr);
                if (rc == -EAGAIN) {
                        snprintf(msg, msglen,
                                 "replication of group %s changed while the clone was being "
                                 "taken (a fault froze it): read the group and clone again",
                                 g->id);
                        rc = -EBUSY;
                }
        }
        if (rc < 0) {
                clone_undo(svc, c->mem, n, true);
                return rc;
        }
        instant = want == MIRROR_SYNC ? fr.frozen_at : frozen;
        out->instant = instant;
        out->source = want == MIRROR_SYNC ? "active" : "frozen";
        out->fence_usec = fr.fence_usec;
        atomic_fetch_add(&g_clones_total, n);
        out->items = calloc(n, sizeof(*out->items));
        out->n = out->items ? n : 0;
        {
                char t[UTIL_TIME_LEN];

                util_time_format(instant, t);
                log_info("group %s: drill clone of %zu DR disk(s) at %s (%s; fence %lld us)", g->id,
                         n, t, out->source, (long long)fr.fence_usec);
        }
        /* Record where each clone came from; reflinked ones are complete. */
        for (size_t i = 0; i < n; i++) {
                struct clone_member *cm = &c->mem[i];
                const char *method = cm->method == CLONE_REFLINK ? "reflink" : "copy";
                char *md = clone_metadata(g, &ps[i], volume_id(fm[i].dr), instant, method);

                if (md) {
                        free(cm->row.metadata_json);
                        cm->row.metadata_json = md;
                }
                cm->row.updated_at = util_now_usec();
                if (cm->method == CLONE_REFLINK) {
                        if ((rc = clone_row_export(cm)) == 0)
                                volume_row_set_status(&cm->row, VOL_AVAILABLE);
                        else
                                volume_row_set_status(&cm->row, VOL_ERROR);
                        cm->done = true;
                        clone_job_free(cm->job); /* complete: nothing to copy */
                        cm->job = NULL;
                }
                if (store_volume_update(svc->store, &cm->row) < 0)
                        log_error("clone volume %s: cannot record its origin", cm->row.id);
                if (out->items) {
                        struct group_clone_item *it = &out->items[i];

                        snprintf(it->volume_id, sizeof(it->volume_id), "%s", cm->row.id);
                        snprintf(it->name, sizeof(it->name), "%s", cm->row.name);
                        snprintf(it->pair_id, sizeof(it->pair_id), "%s", ps[i].id);
                        snprintf(it->source_volume_id, sizeof(it->source_volume_id), "%s",
                                 volume_id(fm[i].dr));
                        snprintf(it->availability_zone, sizeof(it->availability_zone), "%s",
                                 cm->row.availability_zone);
                        snprintf(it->status, sizeof(it->status), "%s", cm->row.status);
                        it->method = method;
                        it->size_gib = cm->row.size_gib;
                }
        }
        run = calloc(1, sizeof(*run));
        if (run) {
                run->svc = svc;
                run->mem = c->mem;
                run->n = n;
                c->mem = NULL;
                pthread_mutex_lock(&g_runs_mu);
                if ((rc = pthread_create(&run->thread, NULL, clone_run_main, run)) == 0) {
                        run->next = g_runs;
                        g_runs = run;
                }
                pthread_mutex_unlock(&g_runs_mu);
                if (rc == 0)
                        return 0;
                c->mem = run->mem;
                free(run);
        }
        /* No worker: the copies cannot run; unbind and fail them. */
        for (size_t i = 0; i < n; i++)
                if (c->mem[i].method == CLONE_COPY)
                        clone_row_finish(svc, &c->mem[i], VOL_ERROR,
                                         "drill clone failed: no thread for the copy");
        for (size_t i = 0; i < n; i++) {
                clone_job_free(c->mem[i].job);
                store_volume_clear(&c->mem[i].row);
        }
        free(c->mem);
        c->mem = NULL;
        return 0;
}

int service_group_clone(struct service *svc, const char *project, const char *id,
                        const char *prefix, struct group_clone_result *out, char *msg,
                        size_t msglen)
{
        struct clone_ctx c = {
            .prefix = prefix && *prefix ? prefix : "drill", .out = out, .try_reflink = true};
        int rc;

        memset(out, 0, sizeof(*out));
        rc = group_run_locked(svc, project, id, clone_locked, &c, msg, msglen);
        free(c.mem);
        return rc;
}
