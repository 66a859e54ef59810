/* Reverse and failover behind their status (docs/design/faults.md, "Behind
 * the status: the request answers once the swap is under way").
 *
 * A request starts one worker thread per swap and waits until the worker
 * answers it: after the checks and the durable `reversing` / `failovering`
 * (groups.c calls swap_job_answer), or at the end for a refusal or a swap
 * across nodes. The worker holds the group's stripe and its members' locks
 * from the check to the final status, as the request used to (invariant
 * S2). Jobs are kept in svc->swaps until their thread is joined: at the next
 * job start (finished ones) or at service_stop (all, invariant S4).
 *
 * Lock order: swaps_mu and a job's mu are leaves; the request waits on the
 * job's cond holding nothing else. */
#include "service/internal.h"
#include "common/log.h"
#include "common/util.h"
#include "service/states.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct swap_job {
        struct service *svc;
        char project[STORE_PROJECT_LEN];
        char id[STORE_ID_LEN];
        enum group_action action;
        pthread_t thread;
        int64_t start_mono_usec;

        pthread_mutex_t mu; /* answered, rc, answer */
        pthread_cond_t cond;
        bool answered;
        int rc;
        char answer[512];
        char msg[512]; /* the worker's own: written after the answer too */

        bool done; /* under svc->swaps_mu */
        struct swap_job *next;
};

static void swap_job_free(struct swap_job *j)
{
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cond);
        free(j);
}

void swap_job_answer(struct swap_job *j, int rc)
{
        if (!j)
                return;
        pthread_mutex_lock(&j->mu);
        if (!j->answered) {
                j->answered = true;
                j->rc = rc;
                snprintf(j->answer, sizeof(j->answer), "%s", j->msg);
                log_info("group %s: %s request answered after %lld us", j->id,
                         j->action == GROUP_FAILOVER ? "failover" : "reverse",
                         (long long)(util_mono_usec() - j->start_mono_usec));
                pthread_cond_signal(&j->cond);
        }
        pthread_mutex_unlock(&j->mu);
}

static void *swap_job_main(void *arg)
{
        struct swap_job *j = arg;
        struct service *svc = j->svc;
        int rc =
            service_group_swap_run(svc, j->project, j->id, j->action, j->msg, sizeof(j->msg), j);

        swap_job_answer(j, rc); /* refused, or across nodes: answered at the end */
        pthread_mutex_lock(&svc->swaps_mu);
        j->done = true;
        pthread_mutex_unlock(&svc->swaps_mu);
        return NULL;
}

/* Join and free the jobs whose thread has ended (all with `all`). */
static void swap_jobs_reap(struct service *svc, bool all)
{
        struct swap_job *dead = NULL;

        pthread_mutex_lock(&svc->swaps_mu);
        for (struct swap_job **pp = &svc->swaps; *pp;) {
                struct swap_job *j = *pp;

                if (all || j->done) {
                        *pp = j->next;
                        j->next = dead;
                        dead = j;
                } else {
                        pp = &j->next;
                }
        }
        if (all)
                svc->swaps_stopping = true;
        pthread_mutex_unlock(&svc->swaps_mu);
        while (dead) {
                struct swap_job *j = dead;

                dead = j->next;
                pthread_join(j->thread, NULL);
                swap_job_free(j);
        }
}

int service_swap_job_run(struct service *svc, const char *project, const char *id,
                         enum group_action action, char *msg, size_t msglen)
{
        struct swap_job *j;
        int rc;

        swap_jobs_reap(svc, false);
        if (!(j = calloc(1, sizeof(*j))))
                return -ENOMEM;
        j->svc = svc;
        snprintf(j->project, sizeof(j->project), "%s", project);
        snprintf(j->id, sizeof(j->id), "%s", id);
        j->action = action;
        j->start_mono_usec = util_mono_usec();
        pthread_mutex_init(&j->mu, NULL);
        pthread_cond_init(&j->cond, NULL);
        pthread_mutex_lock(&svc->swaps_mu);
        if (svc->swaps_stopping) {
                pthread_mutex_unlock(&svc->swaps_mu);
                swap_job_free(j);
                snprintf(msg, msglen, "the service is stopping; retry on the restarted daemon");
                return -ESHUTDOWN;
        }
        if ((rc = pthread_create(&j->thread, NULL, swap_job_main, j)) != 0) {
                pthread_mutex_unlock(&svc->swaps_mu);
                swap_job_free(j);
                log_error("group %s: cannot start a swap worker: %s", id, strerror(rc));
                return -rc;
        }
        j->next = svc->swaps;
        svc->swaps = j;
        pthread_mutex_unlock(&svc->swaps_mu);

        pthread_mutex_lock(&j->mu);
        while (!j->answered)
                pthread_cond_wait(&j->cond, &j->mu);
        rc = j->rc;
        snprintf(msg, msglen, "%s", j->answer);
        pthread_mutex_unlock(&j->mu);
        return rc;
}

bool service_swap_job_running(struct service *svc, const char *id)
{
        bool running = false;

        pthread_mutex_lock(&svc->swaps_mu);
        for (struct swap_job *j = svc->swaps; j && !running; j = j->next)
                running = !j->done && strcmp(j->id, id) == 0;
        pthread_mutex_unlock(&svc->swaps_mu);
        return running;
}

/* A job for the group whose request is not answered yet: its worker is
 * taking the locks, checking, or recording `reversing` / `failovering`.
 * Takes only leaves (swaps_mu, a job's mu): callable under a stripe. */
bool service_swap_job_starting(struct service *svc, const char *id)
{
        bool starting = false;

        pthread_mutex_lock(&svc->swaps_mu);
        for (struct swap_job *j = svc->swaps; j && !starting; j = j->next) {
                if (j->done || strcmp(j->id, id) != 0)
                        continue;
                pthread_mutex_lock(&j->mu); /* swaps_mu -> a job's mu; both leaves */
                starting = !j->answered;
                pthread_mutex_unlock(&j->mu);
        }
        pthread_mutex_unlock(&svc->swaps_mu);
        return starting;
}

void service_swap_jobs_stop(struct service *svc)
{
        bool any;

        pthread_mutex_lock(&svc->swaps_mu);
        any = svc->swaps != NULL;
        pthread_mutex_unlock(&svc->swaps_mu);
        if (any)
                log_info("waiting for the role swaps under way");
        swap_jobs_reap(svc, true);
}

/* A request for a group that a swap worker holds (reversing, failovering):
 * the state table's 409 at once, never queued behind the worker's flushes
 * (faults.md S2). op GOP__COUNT: a request that is not a group action
 * (clone, verify). 0: go on, and wait for the stripe as usual. */
int service_group_swap_busy(struct service *svc, const char *project, const char *id,
                            enum group_op op, char *msg, size_t msglen)
{
        const struct group_rule *rule = NULL;
        struct store_pair *ps = NULL;
        struct store_group g;
        enum group_status st;
        size_t n = 0;
        int rc;

        if (service_swap_job_starting(svc, id)) {
                /* Its status may not say so yet: a request waiting for the
                 * stripe now would wait through the worker's flushes. */
                snprintf(msg, msglen,
                         "a reverse or failover of group %s is starting; retry when it is done",
                         id);
                return -EBUSY;
        }
        if (!service_swap_job_running(svc, id) || store_group_get(svc->store, project, id, &g) < 0)
                return 0;
        st = group_row_status(&g);
        if (st != GS_REVERSING && st != GS_FAILOVERING)
                return 0;
        if (op == GOP__COUNT) {
                snprintf(msg, msglen, "group %s is %s (its %s is under way); retry when it is done",
                         id, g.status, st == GS_REVERSING ? "reverse" : "failover");
                return -EBUSY;
        }
        if (store_pair_list_by_group(svc->store, id, &ps, &n) < 0)
                return 0;
        rc = group_check(st, service_group_derive_pairs(ps, n), n, op, id, &rule, msg, msglen);
        free(ps);
        return rc < 0 ? rc : 0;
}
