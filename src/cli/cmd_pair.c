/* evsrep pair create|list|show|delete (os-vendor-replications). */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const pair_order[] = {
    "id",
    "name",
    "status",
    "replication_status",
    "progress",
    "priority_station",
    "replication_consistency_group_id",
    "volume_ids",
    "replication_model",
    "fault_level",
    "failure_detail",
    "bytes_copied",
    "copy_rate_bytes_per_sec",
    "dirty_bytes",
    "description",
    "record_metadata",
    "created_at",
    "updated_at",
};

static const struct cli_column pair_cols[] = {
    {"ID", "id"},
    {"NAME", "name"},
    {"STATUS", "status"},
    {"REPLICATION", "replication_status"},
    {"PROGRESS", "progress"},
    {"STATION", "priority_station"},
    {"GROUP", "replication_consistency_group_id"},
};

static void pair_path(char *buf, size_t cap, const char *id)
{
        snprintf(buf, cap, CLI_PATH_PAIRS "/%s", id);
}

/* The AZ of a volume: the default priority station of a new pair. */
static int pair_volume_az(struct cli *c, const char *vol_id, char *az, size_t cap)
{
        char path[256];
        json_t *vol = NULL;
        int rc;

        if (strpbrk(vol_id, "/?#% \t"))
                return cli_usage_error("malformed volume ID '%s'", vol_id);
        snprintf(path, sizeof(path), CLI_PATH_VOLUMES "/%s", vol_id);
        rc = cli_get_object(c, path, "volume", &vol);
        if (rc == 0)
                snprintf(az, cap, "%s", cli_str(vol, "availability_zone"));
        json_decref(vol);
        return rc;
}

int cmd_pair_create(struct cli *c)
{
        json_t *body, *r, *ans = NULL, *last = NULL;
        char az[128];
        int64_t sent_usec;
        int rc = cli_no_args(c);

        if (rc < 0)
                return rc;
        if (!c->production || !c->dr)
                return cli_usage_error("pair create needs --production VOLUME_ID and --dr "
                                       "VOLUME_ID");
        if (c->az)
                snprintf(az, sizeof(az), "%s", c->az);
        else if ((rc = pair_volume_az(c, c->production, az, sizeof(az))) < 0)
                return rc;
        r = json_pack("{s:[s,s],s:s,s:s}", "volume_ids", c->production, c->dr, "priority_station",
                      az, "replication_model", "hypermetro");
        if (r && c->name)
                json_object_set_new(r, "name", json_string(c->name));
        if (r && c->description)
                json_object_set_new(r, "description", json_string(c->description));
        body = r ? json_pack("{s:o}", "replication", r) : NULL;
        sent_usec = util_mono_usec();
        rc = cli_action_post(c, CLI_PATH_PAIRS, body, &ans);
        if (rc < 0)
                goto out;
        r = json_object_get(ans, "replication");
        if (!json_is_object(r)) {
                rc = -EIO;
                goto out;
        }
        if (c->wait) {
                /* creating -> available, then the initial copy: copying -> active,
                 * with the progress display of group sync. */
                char path[256];
                struct cli_wait w = {.path = path,
                                     .key = "replication",
                                     .status = "available",
                                     .repl_status = "active",
                                     .progress = true,
                                     .action_mono_usec = sent_usec};

                pair_path(path, sizeof(path), cli_str(r, "id"));
                rc = cli_wait_for(c, &w, &last);
                if (rc < 0)
                        goto out;
                r = last;
        }
        rc = cli_show(c, "replication", r, pair_order, ARRAY_SIZE(pair_order));
out:
        json_decref(last);
        json_decref(ans);
        return rc;
}

int cmd_pair_list(struct cli *c)
{
        char q[1024] = "";
        json_t *rows = NULL;
        int rc = cli_no_args(c);

        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "name", c->name);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "status", c->status);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "replication_consistency_group_id",
                                        c->group);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "volume_id", c->volume);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "priority_station", c->az);
        if (rc == 0)
                rc = cli_http_list(c, CLI_PATH_PAIRS "/detail", q, "replications", &rows);
        if (rc == 0)
                rc = cli_show_list(c, "replications", rows, pair_cols, ARRAY_SIZE(pair_cols));
        json_decref(rows);
        return rc;
}

int cmd_pair_show(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *r = NULL;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        pair_path(path, sizeof(path), id);
        rc = cli_get_object(c, path, "replication", &r);
        if (rc == 0)
                rc = cli_show(c, "replication", r, pair_order, ARRAY_SIZE(pair_order));
        json_decref(r);
        return rc;
}

int cmd_pair_delete(struct cli *c)
{
        const char *id;
        char path[256];
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        pair_path(path, sizeof(path), id);
        rc = cli_http_call(c, "DELETE", path, NULL, NULL, NULL, 0);
        if (rc == 0 && c->wait) {
                struct cli_wait w = {.path = path, .key = "replication", .kind = CLI_WAIT_GONE};

                rc = cli_wait_for(c, &w, NULL);
        }
        if (rc == 0 && !c->json)
                printf("pair %s %s\n", id, c->wait ? "deleted" : "deleting");
        return rc;
}
