/* evsrep group clone: the DR drill (evsrep extension,
 * os-evsrep-clone-replication-consistency-group). --wait polls every clone
 * volume until it is available, with the copy's progress (the volumes'
 * `progress` while creating), like pair create --wait. */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct cli_column clone_cols[] = {
    {"VOLUME", "id"},
    {"NAME", "name"},
    {"STATUS", "status"},
    {"PAIR", "replication_id"},
    {"SOURCE", "source_volume_id"},
    {"METHOD", "method"},
};

static void clone_sleep(double sec)
{
        struct timespec ts = {.tv_sec = (time_t)sec,
                              .tv_nsec = (long)((sec - (double)(time_t)sec) * 1e9)};

        if (sec > 0)
                nanosleep(&ts, NULL); /* SIGINT ends it early */
}

/* Poll the clones until each is available: 0, -ECANCELED (one entered an
 * error status), -ETIMEDOUT, -EINTR. Updates each item's status. */
static int clone_wait(struct cli *c, json_t *vols)
{
        double start = (double)util_mono_usec() / 1e6, last_line = -1;
        FILE *f = c->json ? stderr : stdout;
        bool tty = isatty(fileno(f)), shown = false;
        int rc = 0;

        cli_wait_sigint_arm();
        for (;;) {
                size_t n = json_array_size(vols), avail = 0, i;
                double pct = 0, now;
                json_t *it;

                if (cli_wait_interrupted()) {
                        rc = -EINTR;
                        break;
                }
                json_array_foreach(vols, i, it)
                {
                        char path[256];
                        json_t *v = NULL;
                        const char *st;

                        snprintf(path, sizeof(path), CLI_PATH_VOLUMES "/%s", cli_str(it, "id"));
                        if ((rc = cli_get_object(c, path, "volume", &v)) < 0)
                                break;
                        st = cli_str(v, "status");
                        json_object_set_new(it, "status", json_string(st));
                        if (strcmp(st, "available") == 0) {
                                avail++;
                                pct += 100;
                        } else if (strncmp(st, "error", 5) == 0) {
                                fprintf(stderr, "evsrep: clone volume %s entered status %s: %s\n",
                                        cli_str(it, "id"), st, cli_str(v, "error_message"));
                                rc = -ECANCELED;
                        } else {
                                pct += atof(cli_str(v, "progress"));
                        }
                        json_decref(v);
                        if (rc < 0)
                                break;
                }
                if (rc < 0)
                        break;
                now = (double)util_mono_usec() / 1e6;
                pct = n ? pct / (double)n : 100;
                if (tty || avail == n || now - last_line >= 1.0) {
                        fprintf(f, "%scopying %.0f%% (%zu of %zu clone(s) available) %.0fs%s",
                                tty ? "\r" : "", pct, avail, n, now - start, tty ? "" : "\n");
                        fflush(f);
                        shown = true;
                        last_line = now;
                }
                if (avail == n)
                        break;
                if (now - start >= c->timeout_sec) {
                        rc = -ETIMEDOUT;
                        break;
                }
                clone_sleep(c->interval_sec);
        }
        if (tty && shown)
                fputc('\n', f);
        if (rc == -ETIMEDOUT)
                fprintf(stderr,
                        "evsrep: timed out after %.0f s waiting for the clones; the copy "
                        "goes on\n",
                        c->timeout_sec);
        else if (rc == -EINTR)
                fprintf(stderr, "evsrep: interrupted: stopped waiting; the copy goes on on the "
                                "server\n");
        return rc;
}

int cmd_group_clone(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *val, *ans = NULL, *clone, *vols;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        val = c->prefix ? json_pack("{s:s}", "name_prefix", c->prefix) : json_null();
        snprintf(path, sizeof(path), CLI_PATH_GROUPS "/%s/action", id);
        rc = cli_action_post(
            c, path,
            val ? json_pack("{s:o}", "os-evsrep-clone-replication-consistency-group", val) : NULL,
            &ans);
        if (rc < 0)
                return rc;
        clone = json_object_get(ans, "clone");
        vols = json_object_get(clone, "volumes");
        if (!json_is_array(vols)) {
                json_decref(ans);
                fprintf(stderr, "evsrep: the answer holds no clone volumes\n");
                return -EIO;
        }
        if (c->wait)
                rc = clone_wait(c, vols);
        if (c->json) {
                cli_out_json(ans);
        } else {
                printf("instant  %s (%s)\n", cli_str(clone, "instant"), cli_str(clone, "source"));
                cli_out_table(vols, clone_cols, ARRAY_SIZE(clone_cols));
        }
        json_decref(ans);
        return rc;
}
