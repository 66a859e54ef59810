/* evsrep group verify GROUP_ID [--repair] [--max-rate MIB] [--wait]: the
 * online verify of a group (evsrep extension, docs/cli.md). Without --wait
 * it prints the run the daemon started; with --wait it shows progress
 * (percent, bytes verified, rate, ETA) like `group sync --wait`, then the
 * report: one row per pair. Exit 0 when nothing differed, 8 (failed) when
 * chunks differed or the run was cancelled or failed. */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROUP_KEY "replication_consistency_group"

static const char *const verify_order[] = {
    "status",
    "progress",
    "chunks_done",
    "chunks_total",
    "bytes_done",
    "rate_bytes_per_sec",
    "mismatched_chunks",
    "repaired_chunks",
    "skipped_dirty_chunks",
    "repair",
    "max_rate_mib_per_sec",
    "started_at",
    "finished_at",
    "message",
};

static const struct cli_column verify_pair_cols[] = {
    {"PAIR", "replication_id"},
    {"COMPARED", "compared_chunks"},
    {"DIRTY", "skipped_dirty_chunks"},
    {"MISMATCHED", "mismatched_chunks"},
    {"REPAIRED", "repaired_chunks"},
    {"OFFSETS", "mismatch_offsets"},
    {"ERROR", "error"},
};

static uint64_t vu64(const json_t *o, const char *k)
{
        json_t *v = json_object_get(o, k);

        if (json_is_integer(v) && json_integer_value(v) > 0)
                return (uint64_t)json_integer_value(v);
        if (json_is_string(v))
                return strtoull(json_string_value(v), NULL, 10);
        return 0;
}

static int verify_print(struct cli *c, json_t *v)
{
        json_t *pairs = json_object_get(v, "pairs");
        json_t *copy;
        int rc;

        if (c->json)
                return cli_show(c, "verify", v, verify_order, ARRAY_SIZE(verify_order));
        copy = json_deep_copy(v);
        if (!copy)
                return -ENOMEM;
        json_object_del(copy, "pairs");
        rc = cli_out_object(copy, verify_order, ARRAY_SIZE(verify_order));
        json_decref(copy);
        if (rc == 0 && json_array_size(pairs)) {
                printf("\n");
                rc = cli_out_table(pairs, verify_pair_cols, ARRAY_SIZE(verify_pair_cols));
        }
        return rc;
}

static void verify_progress(const json_t *v, double elapsed_sec, struct cli_progress *p)
{
        uint64_t total = vu64(v, "chunks_total"), done = vu64(v, "chunks_done");
        double rate = (double)vu64(v, "rate_bytes_per_sec");
        uint64_t bytes = vu64(v, "bytes_done");

        p->state = "verifying";
        p->percent = (double)vu64(v, "progress");
        p->bytes = bytes;
        if (rate <= 0 && elapsed_sec > 0)
                rate = (double)bytes / elapsed_sec;
        p->rate_bps = rate;
        /* Bytes left, from the average chunk size verified so far. */
        p->eta_sec =
            done && rate > 0 ? (double)(total - done) * ((double)bytes / (double)done) / rate : -1;
}

static void sleep_sec(double sec)
{
        struct timespec ts;

        if (sec <= 0)
                return;
        ts.tv_sec = (time_t)sec;
        ts.tv_nsec = (long)((sec - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL); /* SIGINT ends it early */
}

/* Poll the group until its verify is no longer running. *out: the verify
 * object at the end. */
static int verify_wait(struct cli *c, const char *path, json_t **out)
{
        double start = (double)util_mono_usec() / 1e6, last_line = 0;
        FILE *f = c->json ? stderr : stdout;
        bool tty = isatty(fileno(f)), shown = false;
        int rc = 0;

        cli_wait_sigint_arm();
        *out = NULL;
        for (;;) {
                json_t *g = NULL, *v;
                struct cli_progress p;
                double now;

                if (cli_wait_interrupted()) {
                        rc = -EINTR;
                        break;
                }
                if ((rc = cli_get_object(c, path, GROUP_KEY, &g)) < 0)
                        break;
                v = json_object_get(g, "verify");
                now = (double)util_mono_usec() / 1e6;
                if (!json_is_object(v)) {
                        fprintf(stderr, "evsrep: %s shows no verify\n", path);
                        json_decref(g);
                        rc = -EIO;
                        break;
                }
                verify_progress(v, now - start, &p);
                if (strcmp(cli_str(v, "status"), "running") != 0) {
                        if (strcmp(cli_str(v, "status"), "done") == 0)
                                p.percent = 100, p.eta_sec = 0;
                        p.state = cli_str(v, "status");
                        if (tty)
                                cli_out_progress_tty(f, &p), fputc('\n', f);
                        else
                                cli_out_progress_line(f, &p);
                        *out = json_incref(v);
                        json_decref(g);
                        return 0;
                }
                if (tty) {
                        cli_out_progress_tty(f, &p);
                        shown = true;
                } else if (!shown || now - last_line >= 1.0) {
                        cli_out_progress_line(f, &p);
                        shown = true;
                        last_line = now;
                }
                json_decref(g);
                if (now - start >= c->timeout_sec) {
                        rc = -ETIMEDOUT;
                        break;
                }
                sleep_sec(MIN(c->interval_sec, c->timeout_sec - (now - start)));
        }
        if (tty && shown)
                fputc('\n', f);
        if (rc == -ETIMEDOUT)
                fprintf(stderr,
                        "evsrep: timed out after %.0f s waiting for the verify of %s; it "
                        "goes on\n",
                        c->timeout_sec, path);
        else if (rc == -EINTR)
                fprintf(stderr, "evsrep: interrupted: stopped waiting; the verify goes on on the "
                                "server\n");
        return rc;
}

int cmd_group_verify(struct cli *c)
{
        char path[256], apath[300];
        json_t *body, *resp = NULL, *v = NULL;
        const char *id;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        snprintf(path, sizeof(path), CLI_PATH_GROUPS "/%s", id);
        snprintf(apath, sizeof(apath), "%s/action", path);
        body = json_pack("{s:{s:b, s:I}}", "os-evsrep-verify", "repair", c->repair,
                         "max_rate_mib_per_sec", (json_int_t)c->max_rate_mib);
        if ((rc = cli_action_post(c, apath, body, &resp)) < 0)
                return rc;
        if (!c->wait) {
                v = json_object_get(resp, "verify");
                rc = json_is_object(v) ? verify_print(c, v) : 0;
                json_decref(resp);
                return rc;
        }
        json_decref(resp);
        if ((rc = verify_wait(c, path, &v)) < 0)
                return rc;
        rc = verify_print(c, v);
        if (rc == 0 && strcmp(cli_str(v, "status"), "done") != 0) {
                fprintf(stderr, "evsrep: verify of group %s %s%s%s\n", id, cli_str(v, "status"),
                        *cli_str(v, "message") ? ": " : "", cli_str(v, "message"));
                rc = -ECANCELED;
        } else if (rc == 0 && vu64(v, "mismatched_chunks")) {
                fprintf(stderr,
                        "evsrep: %llu chunk(s) of group %s differ between production and DR%s\n",
                        (unsigned long long)vu64(v, "mismatched_chunks"), id,
                        vu64(v, "repaired_chunks") ? " (repaired: marked for copying)" : "");
                rc = -ECANCELED;
        }
        json_decref(v);
        return rc;
}
