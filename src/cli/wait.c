/* --wait: poll a resource until it reaches the state an action leads to, as
 * Terraform does (wait through the transitional states, fail on an error
 * state), with a deadline (--timeout) and SIGINT that stops the waiting but
 * never the action. For group sync and reprotect it also shows progress from
 * the member pairs: percent (average of their progress), bytes copied since
 * the action, copy rate and ETA (dirty bytes left / rate); for pair create,
 * the same figures of the pair's initial copy. */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_LINE_EVERY_SEC 1.0

static volatile sig_atomic_t wait_sigint;

static void wait_on_sigint(int sig)
{
        (void)sig;
        wait_sigint = 1;
}

void cli_wait_sigint_arm(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = wait_on_sigint;
        sigemptyset(&sa.sa_mask);
        /* No SA_RESTART: the poll's sleep returns at once. */
        sigaction(SIGINT, &sa, NULL);
}

bool cli_wait_interrupted(void)
{
        return wait_sigint != 0;
}

static double wait_now_sec(void)
{
        return (double)util_mono_usec() / 1e6;
}

static void wait_sleep(double sec)
{
        struct timespec ts;

        if (sec <= 0)
                return;
        ts.tv_sec = (time_t)sec;
        ts.tv_nsec = (long)((sec - (double)ts.tv_sec) * 1e9);
        /* EINTR (SIGINT) ends the sleep early; the caller checks the flag. */
        nanosleep(&ts, NULL);
}

static bool wait_is_error(const char *status, const char *repl)
{
        return strncmp(status, "error", 5) == 0 || strcmp(repl, "error") == 0;
}

static bool wait_reached(const struct cli_wait *w, const char *status, const char *repl)
{
        if (w->status && strcmp(status, w->status) != 0)
                return false;
        if (w->repl_status && strcmp(repl, w->repl_status) != 0)
                return false;
        return true;
}

static uint64_t wait_u64(const json_t *obj, const char *field)
{
        json_t *v = json_object_get(obj, field);

        if (json_is_integer(v) && json_integer_value(v) > 0)
                return (uint64_t)json_integer_value(v);
        if (json_is_string(v))
                return strtoull(json_string_value(v), NULL, 10);
        return 0;
}

/* The figures of one pair (pair create --wait: the initial copy). */
static void wait_pair_figures(const json_t *pair, double *pct, double *rate, uint64_t *dirty,
                              uint64_t *copied)
{
        *pct = (double)wait_u64(pair, "progress");
        *rate = (double)wait_u64(pair, "copy_rate_bytes_per_sec");
        *dirty = wait_u64(pair, "dirty_bytes");
        *copied = wait_u64(pair, "bytes_copied");
}

/* Progress of a pair (the polled object itself) or of a group (from its
 * member pairs). A member that cannot be read this round counts as 0%
 * rather than failing the wait. */
static int wait_progress(struct cli *c, const struct cli_wait *w, const json_t *obj,
                         double elapsed_sec, bool final, struct cli_progress *p)
{
        json_t *ids = json_object_get(obj, "replication_ids");
        uint64_t dirty = 0, copied, pairs_copied = 0;
        double pct_sum = 0, rate = 0;
        size_t n = json_array_size(ids), i;
        json_t *id;

        if (!w->group) {
                wait_pair_figures(obj, &pct_sum, &rate, &dirty, &pairs_copied);
                n = 1;
        }
        json_array_foreach(w->group ? ids : NULL, i, id)
        {
                char path[256];
                json_t *pair = NULL;
                double pct, r;
                uint64_t d, b;
                int rc;

                if (!json_is_string(id))
                        continue;
                snprintf(path, sizeof(path), CLI_PATH_PAIRS "/%s", json_string_value(id));
                rc = cli_get_object(c, path, "replication", &pair);
                if (rc == -EINTR)
                        return rc;
                if (rc < 0)
                        continue;
                wait_pair_figures(pair, &pct, &r, &d, &b);
                pct_sum += pct;
                rate += r;
                dirty += d;
                pairs_copied += b;
                json_decref(pair);
        }
        copied =
            json_object_get(obj, "bytes_copied") ? wait_u64(obj, "bytes_copied") : pairs_copied;
        p->state = cli_str(obj, "replication_status");
        p->percent = n ? pct_sum / (double)n : 100.0;
        /* 100% is for the end state only: the last chunks may be copied
         * (dirty 0) a few polls before the status says active. */
        if (!final)
                p->percent = MIN(p->percent, 99.0);
        /* The counters restart when a mirror is rebuilt (reprotect). */
        p->bytes = copied >= w->bytes_baseline ? copied - w->bytes_baseline : copied;
        /* The daemon's rate covers the last whole second. Before it has one,
         * and once nothing is left to copy (the per-second rate then decays
         * to zero while the copy is being closed), show our own average
         * since the action; for the final line too. */
        if ((rate <= 0 || dirty == 0) && (final || dirty == 0 || elapsed_sec >= 0.5) &&
            elapsed_sec > 0)
                rate = (double)p->bytes / elapsed_sec;
        p->rate_bps = rate;
        p->eta_sec = dirty == 0 ? 0 : rate > 0 ? (double)dirty / rate : -1;
        return 0;
}

struct wait_view {
        FILE *f;
        bool tty, shown;
        double last_line;
};

static void wait_show(struct wait_view *v, const struct cli_progress *p, double now, bool final)
{
        if (v->tty) {
                cli_out_progress_tty(v->f, p);
                v->shown = true;
                if (final)
                        fputc('\n', v->f);
        } else if (final || !v->shown || now - v->last_line >= WAIT_LINE_EVERY_SEC) {
                cli_out_progress_line(v->f, p);
                v->shown = true;
                v->last_line = now;
        }
}

static void wait_view_end(struct wait_view *v)
{
        /* Leave the terminal on a fresh line after an unfinished bar. */
        if (v->tty && v->shown) {
                fputc('\n', v->f);
                fflush(v->f);
        }
        v->shown = false;
}

int cli_wait_for(struct cli *c, const struct cli_wait *w, json_t **last)
{
        double start = wait_now_sec(), deadline = start + c->timeout_sec;
        /* The copy began when the daemon got the action, not when we began
         * to poll: the average rate counts from the request. */
        double copy_start = w->action_mono_usec ? (double)w->action_mono_usec / 1e6 : start;
        struct wait_view view = {.f = c->json ? stderr : stdout};
        char status[64] = "", repl[64] = "";
        int rc;

        /* From here on Ctrl-C ends the waiting, never the action. */
        cli_wait_sigint_arm();
        view.tty = isatty(fileno(view.f));
        if (last)
                *last = NULL;
        for (;;) {
                json_t *body = NULL, *obj;
                double now;

                if (cli_wait_interrupted()) {
                        rc = -EINTR;
                        break;
                }
                rc = cli_http_call(c, "GET", w->path, NULL, &body, NULL,
                                   w->kind == CLI_WAIT_GONE ? CLI_HTTP_QUIET_404 : 0);
                if (rc == -ENOENT && w->kind == CLI_WAIT_GONE)
                        return 0;
                if (rc < 0)
                        break;
                obj = json_object_get(body, w->key);
                snprintf(status, sizeof(status), "%s", cli_str(obj, "status"));
                snprintf(repl, sizeof(repl), "%s", cli_str(obj, "replication_status"));
                now = wait_now_sec();
                if ((w->kind == CLI_WAIT_FIELDS && wait_reached(w, status, repl)) ||
                    (w->kind == CLI_WAIT_LEAVE && *status && strcmp(status, w->status) != 0)) {
                        if (w->progress) {
                                struct cli_progress p;

                                if (wait_progress(c, w, obj, now - copy_start, true, &p) == 0) {
                                        p.percent = 100.0;
                                        p.eta_sec = 0;
                                        wait_show(&view, &p, now, true);
                                }
                        }
                        if (last)
                                *last = json_incref(obj);
                        json_decref(body);
                        return 0;
                }
                if (wait_is_error(status, repl)) {
                        wait_view_end(&view);
                        fprintf(stderr, "evsrep: %s entered status %s, replication_status %s%s%s\n",
                                w->path, status, *repl ? repl : "-",
                                *cli_str(obj, "failure_detail") ? ", failure_detail " : "",
                                cli_str(obj, "failure_detail"));
                        json_decref(body);
                        return -ECANCELED;
                }
                if (w->progress && strcmp(repl, "copying") == 0) {
                        struct cli_progress p;

                        rc = wait_progress(c, w, obj, now - copy_start, false, &p);
                        if (rc < 0) {
                                json_decref(body);
                                break;
                        }
                        wait_show(&view, &p, now, false);
                }
                json_decref(body);
                if (now >= deadline) {
                        rc = -ETIMEDOUT;
                        break;
                }
                wait_sleep(MIN(c->interval_sec, deadline - now));
        }
        wait_view_end(&view);
        if (rc == -ETIMEDOUT)
                fprintf(stderr,
                        "evsrep: timed out after %.0f s waiting for %s (status %s, "
                        "replication_status %s); the action goes on\n",
                        c->timeout_sec, w->path, *status ? status : "-", *repl ? repl : "-");
        else if (rc == -EINTR)
                fprintf(stderr,
                        "evsrep: interrupted: stopped waiting for %s; the action goes on "
                        "on the server\n",
                        w->path);
        return rc;
}
