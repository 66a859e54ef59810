/* Online verify of a group: the background run, its report, and how it
 * meets the other group actions (docs/design/replication.md, "Online
 * verify"). The engine part (one batch under the range lock) is
 * engine/verify.c.
 *
 *   start (group stripe held): checks, register the run, start its thread
 *   thread: for each member, batch by batch: pair lock -> engine batch ->
 *           (repair in SYNC: RESYNC under the production fence) -> unlock;
 *           figures under verify_mu; throttle sleeps with no lock held
 *   cancel (reverse/failover/reprotect/update/extend/delete, group stripe
 *           held): set the stop flag, never wait (the thread may be waiting
 *           for a pair lock the action holds)
 *   stop (shutdown, before the mirrors close): cancel and join every run
 *
 * Locks: group stripe -> verify_mu; the thread: pair lock -> (engine locks)
 * and, from the mismatch callback under the range lock, verify_mu. verify_mu
 * is a leaf: nothing is called with it held. */
#include "service/verify.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/mirror.h"
#include "engine/verify.h"
#include "service/internal.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PACE_SLICE_USEC  100000 /* throttle sleeps in slices: a cancel is seen promptly */
#define RATE_WINDOW_USEC 1000000

struct verify_run {
        struct verify_run *next;
        struct service *svc;
        char group_id[STORE_ID_LEN];
        pthread_t thread;
        bool joined;
        atomic_bool stop;
        int64_t start_mono;
        /* Under svc->verify_mu. */
        struct verify_report r;
        char stop_why[128];
        uint64_t rate_b0;
        int64_t rate_t0;
};

const char *verify_state_name(enum verify_state st)
{
        switch (st) {
        case VERIFY_RUNNING:
                return "running";
        case VERIFY_DONE:
                return "done";
        case VERIFY_CANCELLED:
                return "cancelled";
        case VERIFY_FAILED:
                return "failed";
        }
        return "unknown";
}

void verify_report_free(struct verify_report *r)
{
        if (!r)
                return;
        free(r->members);
        r->members = NULL;
        r->n = 0;
}

static int report_copy(const struct verify_report *src, struct verify_report *dst)
{
        *dst = *src;
        dst->members = calloc(src->n ? src->n : 1, sizeof(*dst->members));
        if (!dst->members) {
                dst->n = 0;
                return -ENOMEM;
        }
        memcpy(dst->members, src->members, src->n * sizeof(*dst->members));
        return 0;
}

/* The run of a group (verify_mu held). */
static struct verify_run *run_find_locked(struct service *svc, const char *group_id)
{
        for (struct verify_run *v = svc->verifies; v; v = v->next)
                if (strcmp(v->group_id, group_id) == 0)
                        return v;
        return NULL;
}

static void run_free(struct verify_run *v)
{
        if (!v->joined)
                pthread_join(v->thread, NULL);
        free(v->r.members);
        free(v);
}

/* ---- the thread ---- */

struct mismatch_ctx {
        struct verify_run *v;
        struct verify_member *mem;
};

/* Under the batch's range lock: only verify_mu (a leaf). */
static void on_mismatch(void *arg, uint64_t chunk)
{
        struct mismatch_ctx *mc = arg;
        struct service *svc = mc->v->svc;

        pthread_mutex_lock(&svc->verify_mu);
        if (mc->mem->n_offsets < VERIFY_MAX_OFFSETS)
                mc->mem->offsets[mc->mem->n_offsets++] = chunk * mc->mem->chunk_bytes;
        pthread_mutex_unlock(&svc->verify_mu);
}

/* Repaired chunks on a pair in SYNC: a pair never reports `active` with a
 * known difference. Switch it to RESYNC under its production fence (what a
 * group sync does for one member) and record `copying`; the worker copies
 * the repaired chunks and the pair returns to `active` itself. rt locked. */
static void resync_repaired(struct pair_rt *rt, const char *pair_id)
{
        struct mirror *m = pair_rt_mirror(rt);
        struct volume *prod = pair_rt_prod(rt);
        int rc = 0;

        volume_fence_raise(prod);
        if (mirror_mode(m) == MIRROR_SYNC) /* not frozen by a fault meanwhile */
                rc = mirror_set_mode(m, MIRROR_RESYNC);
        volume_fence_lower(prod);
        if (rc < 0)
                log_error("pair %s: verify: cannot start copying the repaired chunks: %s", pair_id,
                          strerror(-rc));
        else
                log_info("pair %s: verify repaired chunks; copying them (copying -> active)",
                         pair_id);
        pair_rt_record_mode(rt);
}

/* Sleep until the throttle allows the next batch, in slices; false when
 * the run was cancelled meanwhile. */
static bool pace(struct verify_run *v, uint64_t bytes_done, uint64_t max_bps)
{
        for (;;) {
                uint64_t wait_usec;
                struct timespec ts;

                if (atomic_load(&v->stop))
                        return false;
                wait_usec = verify_pace_usec(bytes_done,
                                             (uint64_t)(util_mono_usec() - v->start_mono), max_bps);
                if (wait_usec == 0)
                        return true;
                wait_usec = MIN(wait_usec, (uint64_t)PACE_SLICE_USEC);
                ts.tv_sec = 0;
                ts.tv_nsec = (long)wait_usec * 1000;
                nanosleep(&ts, NULL);
        }
}

/* Account one batch (verify_mu held). */
static void account_locked(struct verify_run *v, struct verify_member *mem,
                           const struct verify_batch *b)
{
        struct verify_report *r = &v->r;
        int64_t now = util_mono_usec();

        mem->chunks_done += b->chunks;
        mem->compared += b->compared;
        mem->skipped_dirty += b->skipped_dirty;
        mem->mismatched += b->mismatched;
        mem->repaired += b->repaired;
        r->chunks_done += b->chunks;
        r->bytes_done += b->bytes;
        r->mismatched += b->mismatched;
        r->repaired += b->repaired;
        r->skipped_dirty += b->skipped_dirty;
        r->progress = r->chunks_total ? (int)(100 * r->chunks_done / r->chunks_total) : 100;
        if (now - v->rate_t0 >= RATE_WINDOW_USEC) {
                r->rate_bps = (r->bytes_done - v->rate_b0) * 1000000 / (uint64_t)(now - v->rate_t0);
                v->rate_b0 = r->bytes_done;
                v->rate_t0 = now;
        }
}

/* One member, batch by batch. Returns false when the run was cancelled. */
static bool verify_member_run(struct verify_run *v, size_t i, char *bp, char *bd)
{
        struct service *svc = v->svc;
        struct verify_member *mem = &v->r.members[i];
        uint64_t max_bps = v->r.max_rate_mib_per_sec << 20;
        struct mismatch_ctx mc = {.v = v, .mem = mem};
        uint64_t c = 0, total = mem->chunks_total;

        while (c < total) {
                struct verify_batch b;
                struct pair_rt *rt;
                uint64_t done;
                int rc;

                pthread_mutex_lock(&svc->verify_mu);
                done = v->r.bytes_done;
                pthread_mutex_unlock(&svc->verify_mu);
                if (!pace(v, done, max_bps))
                        return false;
                rt = pair_rt_lock(svc, mem->pair_id);
                if (atomic_load(&v->stop)) { /* cancelled while we waited for the pair */
                        pair_rt_unlock(rt);
                        return false;
                }
                if (!rt || !pair_rt_mirror(rt)) {
                        pair_rt_unlock(rt);
                        rc = -ENODEV;
                } else {
                        rc = verify_mirror_batch(pair_rt_mirror(rt), c, total - c, v->r.repair, bp,
                                                 bd, on_mismatch, &mc, &b);
                        if (rc == 0 && b.need_resync)
                                resync_repaired(rt, mem->pair_id);
                        pair_rt_unlock(rt);
                }
                if (rc == 0 && b.chunks == 0)
                        rc = -ERANGE; /* the mirror shrank: cannot happen (extend cancels) */
                if (rc < 0) {
                        pthread_mutex_lock(&svc->verify_mu);
                        snprintf(mem->error, sizeof(mem->error), "%s at byte %llu: %s",
                                 rc == -ENODEV ? "the pair's mirror stopped"
                                               : "a side could not be read",
                                 (unsigned long long)(c * mem->chunk_bytes), strerror(-rc));
                        /* The rest of this member counts as done (not
                         * compared) so the progress still reaches 100. */
                        v->r.chunks_done += total - c;
                        mem->chunks_done += total - c;
                        pthread_mutex_unlock(&svc->verify_mu);
                        log_error("group %s: verify of pair %s: %s", v->group_id, mem->pair_id,
                                  mem->error);
                        return true;
                }
                pthread_mutex_lock(&svc->verify_mu);
                account_locked(v, mem, &b);
                pthread_mutex_unlock(&svc->verify_mu);
                c += b.chunks;
        }
        return true;
}

static void *verify_main(void *arg)
{
        struct verify_run *v = arg;
        struct service *svc = v->svc;
        char *bp = NULL, *bd = NULL;
        bool cancelled = false, failed = false;
        int64_t elapsed;

        if (verify_bufs_alloc(&bp, &bd) < 0) {
                pthread_mutex_lock(&svc->verify_mu);
                v->r.state = VERIFY_FAILED;
                snprintf(v->r.message, sizeof(v->r.message), "out of memory");
                v->r.finished_at = util_now_usec();
                pthread_mutex_unlock(&svc->verify_mu);
                return NULL;
        }
        for (size_t i = 0; i < v->r.n && !cancelled; i++)
                cancelled = !verify_member_run(v, i, bp, bd);
        verify_bufs_free(bp, bd);
        pthread_mutex_lock(&svc->verify_mu);
        for (size_t i = 0; i < v->r.n; i++)
                failed |= v->r.members[i].error[0] != '\0';
        v->r.finished_at = util_now_usec();
        elapsed = util_mono_usec() - v->start_mono;
        v->r.rate_bps = elapsed > 0 ? v->r.bytes_done * 1000000 / (uint64_t)elapsed : 0;
        if (cancelled) {
                v->r.state = VERIFY_CANCELLED;
                snprintf(v->r.message, sizeof(v->r.message), "cancelled by %s", v->stop_why);
        } else if (failed) {
                v->r.state = VERIFY_FAILED;
                snprintf(v->r.message, sizeof(v->r.message),
                         "a member could not be verified to the end: see its error");
        } else {
                v->r.state = VERIFY_DONE;
                v->r.progress = 100;
        }
        log_info("group %s: verify %s: %llu chunks compared, %llu mismatched, %llu repaired, "
                 "%llu dirty skipped, %llu bytes at %llu B/s",
                 v->group_id, verify_state_name(v->r.state),
                 (unsigned long long)(v->r.chunks_done - v->r.skipped_dirty),
                 (unsigned long long)v->r.mismatched, (unsigned long long)v->r.repaired,
                 (unsigned long long)v->r.skipped_dirty, (unsigned long long)v->r.bytes_done,
                 (unsigned long long)v->r.rate_bps);
        pthread_mutex_unlock(&svc->verify_mu);
        return NULL;
}

/* ---- start, cancel, stop, report ---- */

/* Members and their sizes; 409 for one without a running mirror. */
static int collect_members(struct service *svc, const char *gid, struct verify_report *r, char *msg,
                           size_t msglen)
{
        struct store_pair *ps = NULL;
        size_t n = 0;
        int rc = store_pair_list_by_group(svc->store, gid, &ps, &n);

        if (rc < 0)
                return rc;
        if (n == 0) {
                free(ps);
                snprintf(msg, msglen,
                         "replication consistency group %s has no pairs: nothing to verify", gid);
                return -EBUSY;
        }
        if (!(r->members = calloc(n, sizeof(*r->members)))) {
                free(ps);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct verify_member *mem = &r->members[r->n++];
                struct pair_rt *rt = pair_rt_lock(svc, ps[i].id);
                struct mirror *m = pair_rt_mirror(rt);
                struct mirror_stats st;

                snprintf(mem->pair_id, sizeof(mem->pair_id), "%s", ps[i].id);
                if (m) {
                        mirror_stats(m, &st);
                        mem->chunk_bytes = st.chunk_bytes;
                        mem->chunks_total = verify_mirror_chunks(m);
                }
                pair_rt_unlock(rt);
                if (!m) {
                        snprintf(msg, msglen,
                                 "replication pair %s of group %s has no running mirror "
                                 "(replication_status %s): sync the group first",
                                 ps[i].id, gid, ps[i].replication_status);
                        free(ps);
                        return -EBUSY;
                }
                r->chunks_total += mem->chunks_total;
        }
        free(ps);
        return 0;
}

int service_group_verify(struct service *svc, const char *project, const char *id,
                         const struct verify_req *rq, struct verify_report *out, char *msg,
                         size_t msglen)
{
        pthread_mutex_t *gl = service_group_stripe(svc, id);
        struct verify_run *v = NULL, *old = NULL, *unlinked = NULL;
        struct store_group g;
        enum group_status st;
        int rc;

        if (out)
                memset(out, 0, sizeof(*out));
        if ((rc = service_group_swap_busy(svc, project, id, GOP__COUNT, msg, msglen)) < 0)
                return rc; /* a reverse/failover worker holds the group: 409 now */
        pthread_mutex_lock(gl);
        if ((rc = store_group_get(svc->store, project, id, &g)) < 0) {
                if (rc == -ENOENT)
                        snprintf(msg, msglen, "replication consistency group %s does not exist",
                                 id);
                goto out;
        }
        st = group_row_status(&g);
        if (st != GS_AVAILABLE && st != GS_FAILOVERED) {
                snprintf(msg, msglen,
                         "replication consistency group %s is %s: verify needs status available "
                         "or failovered",
                         id, g.status);
                rc = -EBUSY;
                goto out;
        }
        pthread_mutex_lock(&svc->verify_mu);
        old = run_find_locked(svc, id);
        if (old && old->r.state == VERIFY_RUNNING) {
                snprintf(msg, msglen,
                         "a verify of replication consistency group %s is running (%d%%): wait "
                         "for it to finish",
                         id, old->r.progress);
                pthread_mutex_unlock(&svc->verify_mu);
                rc = -EBUSY;
                goto out;
        }
        pthread_mutex_unlock(&svc->verify_mu);
        if (!(v = calloc(1, sizeof(*v)))) {
                rc = -ENOMEM;
                goto out;
        }
        v->svc = svc;
        v->joined = true; /* until the thread exists */
        snprintf(v->group_id, sizeof(v->group_id), "%s", id);
        if ((rc = collect_members(svc, id, &v->r, msg, msglen)) < 0)
                goto out;
        v->r.state = VERIFY_RUNNING;
        v->r.repair = rq->repair;
        v->r.max_rate_mib_per_sec = rq->max_rate_mib_per_sec;
        v->r.started_at = util_now_usec();
        v->start_mono = v->rate_t0 = util_mono_usec();
        if (out && (rc = report_copy(&v->r, out)) < 0)
                goto out;
        /* Replace the previous report (its thread has finished). */
        pthread_mutex_lock(&svc->verify_mu);
        if ((rc = pthread_create(&v->thread, NULL, verify_main, v)) != 0) {
                pthread_mutex_unlock(&svc->verify_mu); /* the old report stays */
                rc = -rc;
                verify_report_free(out);
                goto out;
        }
        v->joined = false;
        for (struct verify_run **pp = &svc->verifies; *pp; pp = &(*pp)->next) {
                if (*pp == old) { /* replaced: its thread has finished */
                        *pp = old->next;
                        unlinked = old;
                        break;
                }
        }
        v->next = svc->verifies;
        svc->verifies = v;
        pthread_mutex_unlock(&svc->verify_mu);
        log_info("group %s: verify started (%zu pairs, %llu chunks%s, max %llu MiB/s)", id, v->r.n,
                 (unsigned long long)v->r.chunks_total, rq->repair ? ", repair" : "",
                 (unsigned long long)rq->max_rate_mib_per_sec);
        v = NULL;
        rc = 0;
out:
        pthread_mutex_unlock(gl);
        if (unlinked)
                run_free(unlinked);
        if (v)
                run_free(v);
        return rc;
}

void service_verify_cancel(struct service *svc, const char *group_id, const char *why)
{
        struct verify_run *v;

        pthread_mutex_lock(&svc->verify_mu);
        v = run_find_locked(svc, group_id);
        if (v && v->r.state == VERIFY_RUNNING && !atomic_load(&v->stop)) {
                snprintf(v->stop_why, sizeof(v->stop_why), "%s", why);
                atomic_store(&v->stop, true);
                log_info("group %s: verify cancelled by %s", group_id, why);
        }
        pthread_mutex_unlock(&svc->verify_mu);
}

void service_verify_forget(struct service *svc, const char *group_id)
{
        struct verify_run *v;

        pthread_mutex_lock(&svc->verify_mu);
        for (struct verify_run **pp = &svc->verifies; (v = *pp); pp = &v->next) {
                if (strcmp(v->group_id, group_id) == 0) {
                        *pp = v->next;
                        snprintf(v->stop_why, sizeof(v->stop_why), "delete");
                        atomic_store(&v->stop, true);
                        break;
                }
        }
        pthread_mutex_unlock(&svc->verify_mu);
        if (v)
                run_free(v); /* joins: the thread needs no lock the caller holds */
}

void service_verify_stop_all(struct service *svc)
{
        struct verify_run *list;

        pthread_mutex_lock(&svc->verify_mu);
        for (struct verify_run *v = svc->verifies; v; v = v->next) {
                if (!atomic_load(&v->stop))
                        snprintf(v->stop_why, sizeof(v->stop_why), "daemon shutdown");
                atomic_store(&v->stop, true);
        }
        list = svc->verifies;
        svc->verifies = NULL;
        pthread_mutex_unlock(&svc->verify_mu);
        while (list) {
                struct verify_run *next = list->next;

                run_free(list); /* joins: the thread takes verify_mu, not held here */
                list = next;
        }
}

bool service_verify_report(struct service *svc, const char *group_id, struct verify_report *out)
{
        struct verify_run *v;
        bool ok = false;

        memset(out, 0, sizeof(*out));
        pthread_mutex_lock(&svc->verify_mu);
        v = run_find_locked(svc, group_id);
        if (v) {
                ok = report_copy(&v->r, out) == 0;
                if (ok && out->state == VERIFY_RUNNING && out->rate_bps == 0) {
                        /* Before the first whole second: the average so far. */
                        int64_t el = util_mono_usec() - v->start_mono;
                        out->rate_bps = el > 0 ? out->bytes_done * 1000000 / (uint64_t)el : 0;
                }
        }
        pthread_mutex_unlock(&svc->verify_mu);
        return ok;
}
