/* Prometheus exposition of replication state. See metrics.h.
 *
 * Pair and group series carry project, pair and group ids, so they are
 * rendered only for a viewer allowed to see that project (visible());
 * without a token, not at all. Service-wide series never carry an id.
 *
 * Per pair and group the replication status is a state set (one series per
 * possible status, value 1 for the current one) so an alert can say
 * `evsrep_group_replication_status{status="active"} == 0`. */
#include "metrics/metrics.h"
#include "cluster/cluster.h"
#include "common/stats.h"
#include "common/util.h"
#include "service/group_ext.h"
#include "service/service.h"
#include "service/states.h"
#include "service/verify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One series per enum repl_status (states.h), in its order; an unknown or
 * empty status (a pair being created) sets none. */
static void state_set(FILE *f, const char *metric, const char *labels, const char *status)
{
        enum repl_status cur = REPL__COUNT;

        repl_status_parse(status, &cur);
        for (int i = 0; i < REPL__COUNT; i++)
                fprintf(f, "%s{%s,status=\"%s\"} %d\n", metric, labels,
                        repl_status_name((enum repl_status)i), cur == (enum repl_status)i);
}

/* May series of project be shown to this viewer? */
static bool visible(const struct metrics_view *view, const char *project)
{
        switch (view->scope) {
        case METRICS_ALL:
                return true;
        case METRICS_PROJECT:
                return view->project && strcmp(view->project, project) == 0;
        case METRICS_SERVICE:
                break;
        }
        return false;
}

/* One family's HELP and TYPE lines; the tables below keep each family's
 * description next to its name. */
struct series {
        const char *name;
        const char *type;
        const char *help;
};

static void headers(FILE *f, const struct series *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                stats_header(f, s[i].name, s[i].type, s[i].help);
}

/* One sample of a series labelled by one id (pair="…" or group="…"). */
static void sample(FILE *f, const char *metric, const char *label, const char *id,
                   unsigned long long v)
{
        fprintf(f, "%s{%s=\"%s\"} %llu\n", metric, label, id, v);
}

static const struct series pair_series[] = {
    {"evsrep_pair_progress_percent", "gauge", "Resync progress of each pair (100 when active)."},
    {"evsrep_pair_dirty_bytes", "gauge", "Bytes of chunks where DR may differ from production."},
    {"evsrep_pair_resync_bytes_total", "counter",
     "Bytes of dirty chunks brought in sync since the daemon started."},
    {"evsrep_pair_resync_rate_bytes_per_second", "gauge", "Resync copy rate over the last second."},
    {"evsrep_pair_fault_level", "gauge",
     "0 no fault, 2 production disk unusable, 5 DR side unreachable."},
    {"evsrep_pair_sidecar_bytes_total", "counter",
     "DR bytes preserved in copy-on-write sidecars since the daemon started."},
};

static const struct series group_series[] = {
    {"evsrep_group_pairs", "gauge", "Member pairs of each group."},
    {"evsrep_group_fault_level", "gauge", "Highest fault level of the members."},
    {"evsrep_group_seconds_since_freeze", "gauge",
     "Seconds since the group's DR image was last frozen by a pause."},
    {"evsrep_group_resync_limit_bytes_per_second", "gauge",
     "Resync throttle limit in force (0: none; adaptive: the current one)."},
    {"evsrep_group_resync_rate_bytes_per_second", "gauge",
     "Data bytes the group's resync copies per second (0 when idle)."},
};

static const struct series verify_series[] = {
    {"evsrep_group_verify_running", "gauge", "1 while an online verify of the group runs."},
    {"evsrep_group_verify_progress_percent", "gauge",
     "Progress of the group's last online verify."},
    {"evsrep_group_verify_rate_bytes_per_second", "gauge",
     "Volume bytes verified per second by the group's last verify."},
    {"evsrep_group_verify_bytes", "gauge",
     "Volume bytes verified so far by the group's last verify."},
    {"evsrep_group_verify_mismatched_chunks", "gauge",
     "Chunks where production and DR differed in the group's last verify."},
};

static void render_pairs(FILE *f, struct service *svc, const struct metrics_view *view)
{
        struct store_pair *ps = NULL;
        size_t n = 0;

        if (store_pair_list_all(service_store(svc), &ps, &n) < 0)
                return;
        stats_header(f, "evsrep_pair_replication_status", "gauge",
                     "Replication status of each pair (1 for the current status).");
        for (size_t i = 0; i < n; i++) {
                char labels[256];
                if (!visible(view, ps[i].project_id))
                        continue;
                snprintf(labels, sizeof(labels), "pair=\"%s\",group=\"%s\",project=\"%s\"",
                         ps[i].id, ps[i].group_id, ps[i].project_id);
                state_set(f, "evsrep_pair_replication_status", labels, ps[i].replication_status);
        }
        headers(f, pair_series, sizeof(pair_series) / sizeof(pair_series[0]));
        for (size_t i = 0; i < n; i++) {
                struct pair_live live;
                const char *id = ps[i].id;
                int fault = ps[i].fault_level;

                if (!visible(view, ps[i].project_id) || !service_pair_live(svc, id, &live))
                        continue;
                if (live.fault_level > fault)
                        fault = live.fault_level;
                sample(f, "evsrep_pair_progress_percent", "pair", id, (unsigned)live.progress);
                sample(f, "evsrep_pair_dirty_bytes", "pair", id, live.dirty_bytes);
                sample(f, "evsrep_pair_resync_bytes_total", "pair", id, live.bytes_copied);
                sample(f, "evsrep_pair_resync_rate_bytes_per_second", "pair", id, live.rate_bps);
                sample(f, "evsrep_pair_fault_level", "pair", id, (unsigned)fault);
                sample(f, "evsrep_pair_sidecar_bytes_total", "pair", id, live.sidecar_bytes);
        }
        free(ps);
}

static void render_groups(FILE *f, struct service *svc, const struct metrics_view *view)
{
        struct store_group *gs = NULL;
        size_t n = 0;
        int64_t now = util_now_usec();

        if (store_group_list_all(service_store(svc), &gs, &n) < 0)
                return;
        stats_header(f, "evsrep_group_replication_status", "gauge",
                     "Replication status of each consistency group (1 for the current one).");
        headers(f, group_series, sizeof(group_series) / sizeof(group_series[0]));
        for (size_t i = 0; i < n; i++) {
                struct group_view v;
                struct group_throttle_view tv;
                const char *id = gs[i].id;
                char labels[256];

                if (!visible(view, gs[i].project_id) || service_group_view(svc, &gs[i], &v) < 0)
                        continue;
                snprintf(labels, sizeof(labels), "group=\"%s\",project=\"%s\"", id,
                         gs[i].project_id);
                state_set(f, "evsrep_group_replication_status", labels, v.replication_status);
                sample(f, "evsrep_group_pairs", "group", id, v.n);
                sample(f, "evsrep_group_fault_level", "group", id, (unsigned)v.fault_level);
                if (service_group_throttle_view(svc, id, &tv) == 0 && tv.live) {
                        sample(f, "evsrep_group_resync_limit_bytes_per_second", "group", id,
                               tv.limit_bps);
                        sample(f, "evsrep_group_resync_rate_bytes_per_second", "group", id,
                               tv.rate_bps);
                }
                if (gs[i].frozen_at)
                        fprintf(f, "evsrep_group_seconds_since_freeze{group=\"%s\"} %.3f\n", id,
                                (double)(now - gs[i].frozen_at) / 1e6);
                free(v.ids);
        }
        free(gs);
}

/* The last online verify of each group (evsrep extension, api.md §6). */
static void render_verify(FILE *f, struct service *svc, const struct metrics_view *view)
{
        struct store_group *gs = NULL;
        size_t n = 0;

        if (store_group_list_all(service_store(svc), &gs, &n) < 0)
                return;
        headers(f, verify_series, sizeof(verify_series) / sizeof(verify_series[0]));
        for (size_t i = 0; i < n; i++) {
                struct verify_report r;
                const char *id = gs[i].id;

                if (!visible(view, gs[i].project_id) || !service_verify_report(svc, id, &r))
                        continue;
                sample(f, "evsrep_group_verify_running", "group", id, r.state == VERIFY_RUNNING);
                sample(f, "evsrep_group_verify_progress_percent", "group", id,
                       (unsigned)r.progress);
                sample(f, "evsrep_group_verify_rate_bytes_per_second", "group", id, r.rate_bps);
                sample(f, "evsrep_group_verify_bytes", "group", id, r.bytes_done);
                sample(f, "evsrep_group_verify_mismatched_chunks", "group", id, r.mismatched);
                verify_report_free(&r);
        }
        free(gs);
}

int metrics_render(struct service *svc, const struct metrics_view *view, char **out, size_t *len)
{
        FILE *f = open_memstream(out, len);

        if (!f)
                return -errno;
        /* No token: not even the store is asked about projects. */
        if (view->scope != METRICS_SERVICE) {
                render_pairs(f, svc, view);
                render_groups(f, svc, view);
                render_verify(f, svc, view);
        }
        stats_render(f);
        service_clones_metrics_render(f); /* service/clone.c */
        cluster_metrics_render(f);
        if (fclose(f) != 0)
                return -EIO;
        return 0;
}
