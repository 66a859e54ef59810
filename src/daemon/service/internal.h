/* Shared by the service layer's files (service.c: volumes and the task
 * thread; pairs.c: replication pairs). See docs/design/control-plane.md. */
#ifndef EVSREP_SERVICE_INTERNAL_H
#define EVSREP_SERVICE_INTERNAL_H

#include "engine/mirror.h"
#include "service/service.h"
#include "service/states.h"

#include <pthread.h>
#include <stdatomic.h>

#define GIB (1024ULL * 1024 * 1024)

typedef void (*service_task_fn)(struct service *svc, const char *id, int64_t arg);

struct task {
        service_task_fn fn;
        char id[STORE_ID_LEN];
        int64_t arg;
        struct task *next;
};

struct pair_rt;    /* pairs.c */
struct group_rt;   /* groups.c */
struct verify_run; /* verify.c */
struct pause_memo; /* pause_memo.c */

#define SERVICE_PAIR_BUCKETS 4096 /* power of two */

struct service {
        const struct evsrep_config *cfg;
        struct store *store;
        pthread_t thread;
        pthread_mutex_t lock; /* the task queue */
        pthread_cond_t cond;
        struct task *head, *tail;
        bool stopping;

        /* Replication pairs with a live mirror (pairs.c): a list, and a
         * hash of the same entries by id (a lookup per pair in a list of N
         * pairs made GET of the list and start-up O(N^2): bench/scale.sh). */
        pthread_mutex_t pairs_mu;
        struct pair_rt *pairs;
        struct pair_rt *pairs_by_id[SERVICE_PAIR_BUCKETS];

        /* Consistency groups (groups.c): actions on one group are
         * serialised by its stripe; membership changes by members_mu. */
        pthread_mutex_t group_stripes[64];
        pthread_mutex_t members_mu;
        atomic_int members_readers; /* throttle.c's GET reads holding members_mu */
        /* Engine bindings of groups (fault freeze), under members_mu. */
        struct group_rt *groups;

        /* The link monitor (links.c). */
        pthread_t links_thread;
        bool links_running, links_stopping; /* under lock */
        pthread_cond_t links_cond;
        /* Online verify runs, one per group, and their reports (verify.c). */
        pthread_mutex_t verify_mu;
        struct verify_run *verifies;
        /* The idempotent pause's memo of store reads (pause_memo.h). */
        struct pause_memo *pause_memo;
        /* Reverse/failover workers (swap_job.c), until joined. */
        pthread_mutex_t swaps_mu;
        struct swap_job *swaps;
        bool swaps_stopping;
};

/* Queue fn(svc, id, arg) on the single task thread (FIFO). */
int service_enqueue(struct service *svc, service_task_fn fn, const char *id, int64_t arg);
/* Path of a volume's file in its site directory. */
void service_volume_path(struct service *svc, const char *az, const char *id, char *buf,
                         size_t len);

/* quotas.c. The *_tx checks run inside the caller's store transaction, the
 * one that inserts or grows the rows they guard. Each returns 0 or a
 * negative errno with a sentence in msg: quota_check_tx -EDQUOT when
 * add_volumes more volumes or add_gib more GiB would exceed one of the
 * project's limits; capacity_probe (outside any transaction) -EFBIG when the
 * site's file system cannot hold a file of size_gib; capacity_check_tx
 * -ENOSPC when the site's provisioned GiB plus add_gib would exceed its free
 * space times capacity_overcommit. */
int quota_check_tx(struct service *svc, const char *project, int64_t add_volumes, int64_t add_gib,
                   char *msg, size_t msglen);
int capacity_probe(struct service *svc, const char *az, int64_t size_gib, char *msg, size_t msglen);
int capacity_check_tx(struct service *svc, const char *az, int64_t add_gib, char *msg,
                      size_t msglen);

/* pairs.c, for groups.c. pair_rt_lock returns the pair's runtime with its
 * lock held (NULL when the pair has none); lock order: group lock ->
 * membership lock -> pair locks (in member order) -> store tx. */
struct mirror;
struct volume;
struct pair_rt *pair_rt_lock(struct service *svc, const char *id);
/* pair_rt_lock that never waits: *busy when the pair's lock was held. */
struct pair_rt *pair_rt_trylock(struct service *svc, const char *id, bool *busy);
void pair_rt_unlock(struct pair_rt *rt);
struct mirror *pair_rt_mirror(struct pair_rt *rt);
struct volume *pair_rt_prod(struct pair_rt *rt);
struct volume *pair_rt_dr(struct pair_rt *rt);
/* Swap production and DR (fences on both raised by engine/fence.c):
 * reverse: fold_al false, SYNC in the new direction; failover: fold_al, TRACK.
 * preflight: may it swap (reverse: SYNC and clean; failover: DR disk there)?
 * lockdown: both disks read-only for clients (a swap could not be undone). */

int pair_rt_swap_preflight(struct pair_rt *rt, bool failover);
/* The preflight's refusals that need no fence (no flush), with the 409's
 * message: before a swap request is answered (groups.c swap_precheck). */
int pair_rt_swap_precheck(struct pair_rt *rt, bool failover, const char *pair_id, char *msg,
                          size_t msglen);
int pair_rt_swap(struct pair_rt *rt, bool fold_al, enum mirror_mode mode);
void pair_rt_lockdown(struct pair_rt *rt);
/* A member whose mirror is not running (it failed to start, or its pair is
 * in error): startable says why it cannot run (-EBUSY and a sentence: a
 * disk is not exported), restart starts it in TRACK with every chunk dirty
 * (writes on production were not tracked while it was down), lock_new is
 * pair_rt_lock that registers the pair first. rt->lock held. */
int pair_rt_startable(struct service *svc, const struct store_pair *p, char *msg, size_t msglen);
int pair_rt_restart(struct service *svc, struct pair_rt *rt, const struct store_pair *p);
struct pair_rt *pair_rt_lock_new(struct service *svc, const char *id);
/* A mirror moving to this node (handoff.c): open p's mirror with
 * production here, a fresh clean bitmap, in mode (TRACK after a failover,
 * SYNC after a reverse), the remote link allowed to start broken;
 * production writable. rt->lock held, no mirror running. release: the
 * mirror moving away: closed, its meta file kept (the caller holds the
 * production fence and its own volume reference). */
int pair_rt_takeover(struct service *svc, struct pair_rt *rt, const struct store_pair *p,
                     enum mirror_mode mode);
void pair_rt_release(struct pair_rt *rt);
/* A broken remote link connected now (a reprotect does not wait for the
 * monitor's backoff). 0 (also: no remote link, or healthy), or -errno.
 * rt->lock held. */
int pair_rt_link_connect(struct service *svc, struct pair_rt *rt);
/* groups.c: bind group_id's current members in the engine (members_mu
 * held). */
int service_group_rebind(struct service *svc, const char *group_id);
/* After a role swap that could not be undone (every disk locked down):
 * close the mirror and open it again in TRACK with the recorded roles (its
 * bitmap still holds every difference); production writable again. */
int pair_rt_reopen(struct service *svc, struct pair_rt *rt, const struct store_pair *p);
/* Grow both disks and the bitmap (takes the fences itself). */
int pair_rt_grow(struct pair_rt *rt, uint64_t size_bytes);
/* Copy the engine's state into p: mirror_mode, progress,
 * replication_status (TRACK: paused_status unless REPL__COUNT, else kept
 * when already a paused status), fault_level and failure_detail. */
void pair_fill_state(struct pair_rt *rt, struct store_pair *p, enum repl_status paused_status);

/* links.c: mirror links to DR volumes on other nodes (multi-site.md
 * "Remote DR links", "Link faults").
 *   open        an NBD link to pair_id's DR volume in dr_az (the node serving
 *               it, from the nodes table); size_bytes: production's size,
 *               which the DR export must have. allow_down: when the DR node
 *               cannot be reached, a broken link that connects later (a
 *               running pair); else the error (a new pair needs it now).
 *   broken      0 when healthy, else the error that broke it
 *   reconnect   look the DR node up again (its endpoint may have moved)
 *               and connect; 0 or -errno */
int service_link_open(struct service *svc, const char *pair_id, const char *dr_az,
                      uint64_t size_bytes, bool allow_down, struct link **out);
int service_link_broken(struct link *l);
/* The pair's DR volume row (the one outside priority_station). */
int service_link_dr_volume(struct service *svc, const struct store_pair *p,
                           struct store_volume *dv);
int service_link_reconnect(struct service *svc, const char *pair_id, struct volume *prod,
                           struct link *l);
/* POST body to /v2/{project}/os-evsrep-links/{pair_id}/{route} on the node
 * serving the pair's DR AZ, over the signed internal channel. 0 on a 200;
 * -EHOSTUNREACH when no live node serves it; -EIO when it answered
 * otherwise. Failures are logged with what ("for the sidecar"). */
int service_link_post(struct service *svc, const char *pair_id, const char *route, const char *body,
                      const char *what);
/* Ask the DR node (internal channel) to grow pair_id's DR volume to
 * size_bytes (an extend grows DR first). 0 or -errno. */
int service_link_grow_remote(struct service *svc, const char *pair_id, uint64_t size_bytes);
/* Ask the DR node (internal channel) to release pair_id's DR volume; the
 * pair's row must say deleting. 0 or -errno (logged). */
int service_link_release_remote(struct service *svc, const char *pair_id);
/* Start / stop the NBD link hooks (the DR side) and the link monitor (the
 * production side: reconnect with backoff, auto_resync). */
int service_links_start(struct service *svc);
void service_links_stop(struct service *svc);

/* pairs.c, for links.c's monitor. remote_ids: the pairs with a remote
 * link (malloc'd). link_tick: one look at pair id's link at now_usec:
 * reconnect when broken and due (2 s, doubling to 30 s); returns 1 when
 * the link works and the pair should resume (a DR fault stopped it,
 * auto_resync), with its group in group_id ("" when none). resume: a pair
 * in no group, under its own fence. */
#define LINK_RETRY_MS       2000u
#define LINK_BACKOFF_MAX_MS 30000u
int pair_rt_remote_ids(struct service *svc, char (**ids)[STORE_ID_LEN], size_t *n);
int pair_rt_link_tick(struct service *svc, const char *id, int64_t now_usec, char *group_id,
                      size_t glen);
int pair_rt_resume(struct service *svc, const char *id);
/* The state of pair id's remote link for `node list` (link_report.c):
 * broken_err 0 when healthy, else the error that broke it; last_err the
 * last failed reconnect; backoff_ms the monitor's current backoff (0 until
 * a reconnect failed); retry_in_ms until its next try; down_ms since the
 * monitor saw it broken. busy: the pair's lock was held (a reconnect or an
 * action in progress), nothing else filled. -ENOENT: no remote link. */
struct pair_link_look {
        bool busy;
        int broken_err, last_err;
        unsigned backoff_ms;
        int64_t retry_in_ms, down_ms;
};
int pair_rt_link_look(struct service *svc, const char *id, int64_t now_usec,
                      struct pair_link_look *out);

/* service.c: the status of a row as an enum (the store keeps the name).
 * An unknown name is logged and reads as *__COUNT, which every action
 * refuses. */
enum volume_status volume_row_status(const struct store_volume *v);
enum pair_status pair_row_status(const struct store_pair *p);
/* A pair being deleted (deleting, or error_deleting: a delete whose row
 * removal failed; only a DELETE is accepted and its mirror never runs again). */
bool pair_row_deleting(const struct store_pair *p);
enum group_status group_row_status(const struct store_group *g);
/* Set the status of a row in memory (the caller stores it). Every status
 * write goes through these: in a debug build they assert that the
 * transition from the row's current status is in the table (states.c); a
 * new row (status "") may start in any status. */
void volume_row_set_status(struct store_volume *v, enum volume_status to);
void pair_row_set_status(struct store_pair *p, enum pair_status to);
void group_row_set_status(struct store_group *g, enum group_status to);
/* The same for replication_status (repl_transition_ok; an empty or unknown
 * value counts as a new row). A group's is its derived value, cached. */
void pair_row_set_repl(struct store_pair *p, enum repl_status to);
void group_row_set_repl(struct store_group *g, enum repl_status to);

/* groups.c, for clone.c: run fn with the group's actions serialised (its
 * stripe) and its member pairs locked (rows ps, engine view fm, member
 * order). -ENOENT (404) when the group is not the project's. */
struct fence_member;
typedef int (*group_locked_fn)(struct service *svc, struct store_group *g, struct store_pair *ps,
                               struct fence_member *fm, size_t n, void *ctx, char *msg,
                               size_t msglen);
int group_run_locked(struct service *svc, const char *project, const char *id, group_locked_fn fn,
                     void *ctx, char *msg, size_t msglen);
/* clone.c: start-up (a clone still creating was interrupted: true, the row
 * is now error) and shutdown (stop the copies). */
bool clone_row_interrupted(struct service *svc, const struct store_volume *v);
void service_clones_stop(struct service *svc);

/* attachments.c: publish every stored attachment (start-up, before any NBD
 * listener accepts). */
int service_attachments_load(struct service *svc);

/* swap_job.c (docs/design/faults.md, "Behind the status"). run: start a
 * worker for a reverse/failover of group id and wait for its answer (rc and
 * msg, as service_group_action). answer: the worker answers the request
 * (once; later calls and NULL do nothing). running: a worker of the group
 * has not ended. stop: join every worker (service_stop, first). */
struct swap_job;
int service_swap_job_run(struct service *svc, const char *project, const char *id,
                         enum group_action action, char *msg, size_t msglen);
void swap_job_answer(struct swap_job *j, int rc);
bool service_swap_job_running(struct service *svc, const char *id);
void service_swap_jobs_stop(struct service *svc);
/* swap_job.c: -EBUSY and the state table's 409 for op (GOP__COUNT: a
 * request that is not a group action: clone, verify) when a swap worker
 * holds group id (reversing/failovering), else 0. Called before the stripe
 * is taken, so the request is not queued behind the worker. */
int service_group_swap_busy(struct service *svc, const char *project, const char *id,
                            enum group_op op, char *msg, size_t msglen);
/* swap_job.c: a reverse or failover of the group was accepted and its
 * worker has not answered yet (its status may not say so). */
bool service_swap_job_starting(struct service *svc, const char *id);
/* groups.c: a group's replication_status derived from its member rows. */
enum repl_status service_group_derive_pairs(const struct store_pair *ps, size_t n);
/* groups.c, for the worker: the action with its locks, answering j. */
int service_group_swap_run(struct service *svc, const char *project, const char *id,
                           enum group_action action, char *msg, size_t msglen, struct swap_job *j);

/* verify.c. cancel: a group action that changes roles, members or sizes
 * stops the group's running verify (it never waits for it; group stripe
 * held). stop_all: at shutdown, before service_pairs_stop (joins). */
void service_verify_cancel(struct service *svc, const char *group_id, const char *why);
void service_verify_stop_all(struct service *svc);
/* The group is deleted: cancel its verify, wait for it, drop the report. */
void service_verify_forget(struct service *svc, const char *group_id);
/* groups.c: the lock that serialises actions on one group. */
pthread_mutex_t *service_group_stripe(struct service *svc, const char *id);
/* pairs.c: record the engine's mode in the pair's row (rt locked). */
void pair_rt_record_mode(struct pair_rt *rt);

/* pairs.c: start-up (after volumes are exported) and shutdown (before). */
void service_pairs_reconcile(struct service *svc);
void service_pairs_stop(struct service *svc);
/* groups.c: finish interrupted group steps at start-up (and bind every
 * group's members in the engine); free the bindings at stop (after
 * service_pairs_stop). */
void service_groups_reconcile(struct service *svc);
void service_groups_stop(struct service *svc);
/* groups.c: the engine binding of a group (members_mu held), NULL when
 * the group is not bound on this node. throttle.c: apply the stored
 * throttle setting to a group's new binding. */
struct mirror_group;
struct mirror_group *group_engine_locked(struct service *svc, const char *group_id);
void group_throttle_restore(struct service *svc, struct mirror_group *mg, const char *group_id);

#endif
