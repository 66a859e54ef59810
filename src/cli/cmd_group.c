/* evsrep group create|list|show|update|delete and the group actions
 * pause|sync|reverse|failover|reprotect|extend
 * (os-vendor-replication-consistency-groups). */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define GROUP_KEY "replication_consistency_group"

static const char *const group_order[] = {
    "id",
    "name",
    "status",
    "replication_status",
    "priority_station",
    "replication_ids",
    "replication_model",
    "fault_level",
    "failure_detail",
    "frozen_at",
    "bytes_copied",
    "description",
    "created_at",
    "updated_at",
};

static const struct cli_column group_cols[] = {
    {"ID", "id"},
    {"NAME", "name"},
    {"STATUS", "status"},
    {"REPLICATION", "replication_status"},
    {"STATION", "priority_station"},
    {"PAIRS", "pairs"}, /* added for the table: number of member pairs */
};

static const struct cli_column member_cols[] = {
    {"PAIR", "id"},           {"NAME", "name"},
    {"STATUS", "status"},     {"REPLICATION", "replication_status"},
    {"PROGRESS", "progress"}, {"VOLUMES", "volume_ids"},
};

static void group_path(char *buf, size_t cap, const char *id, const char *tail)
{
        snprintf(buf, cap, CLI_PATH_GROUPS "/%s%s", id, tail);
}

/* Key/value lines, then (tables only) the member pairs. */
static int group_print(struct cli *c, json_t *g)
{
        char q[256] = "";
        json_t *pairs = NULL;
        int rc = cli_show(c, GROUP_KEY, g, group_order, ARRAY_SIZE(group_order));

        if (rc < 0 || c->json || json_array_size(json_object_get(g, "replication_ids")) == 0)
                return rc;
        rc = cli_http_query_add(c, q, sizeof(q), "replication_consistency_group_id",
                                cli_str(g, "id"));
        if (rc == 0)
                rc = cli_http_list(c, CLI_PATH_PAIRS "/detail", q, "replications", &pairs);
        if (rc == 0) {
                printf("\n");
                rc = cli_out_table(pairs, member_cols, ARRAY_SIZE(member_cols));
        }
        json_decref(pairs);
        return rc;
}

/* After a request on group id: wait for w (if --wait and w), else GET; print. */
static int group_finish(struct cli *c, const char *id, struct cli_wait *w)
{
        char path[256];
        json_t *g = NULL;
        int rc;

        group_path(path, sizeof(path), id, "");
        if (c->wait && w) {
                w->path = path;
                w->key = GROUP_KEY;
                rc = cli_wait_for(c, w, &g);
        } else {
                rc = cli_get_object(c, path, GROUP_KEY, &g);
        }
        if (rc == 0)
                rc = group_print(c, g);
        json_decref(g);
        return rc;
}

static json_t *group_id_array(const char *const *ids, size_t n)
{
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                json_array_append_new(a, json_string(ids[i]));
        return a;
}

int cmd_group_create(struct cli *c)
{
        json_t *g, *ans = NULL;
        char az[128];
        int rc = cli_no_args(c);

        if (rc < 0)
                return rc;
        if (c->n_pairs == 0)
                return cli_usage_error("group create needs at least one --pair PAIR_ID");
        if (c->az) {
                snprintf(az, sizeof(az), "%s", c->az);
        } else {
                /* Default: the production AZ of the first pair. */
                char path[256];
                json_t *p = NULL;

                if (strpbrk(c->pairs[0], "/?#% \t"))
                        return cli_usage_error("malformed pair ID '%s'", c->pairs[0]);
                snprintf(path, sizeof(path), CLI_PATH_PAIRS "/%s", c->pairs[0]);
                rc = cli_get_object(c, path, "replication", &p);
                if (rc < 0)
                        return rc;
                snprintf(az, sizeof(az), "%s", cli_str(p, "priority_station"));
                json_decref(p);
        }
        g = json_pack("{s:o,s:s,s:s}", "replication_ids", group_id_array(c->pairs, c->n_pairs),
                      "priority_station", az, "replication_model", "hypermetro");
        if (g && c->name)
                json_object_set_new(g, "name", json_string(c->name));
        if (g && c->description)
                json_object_set_new(g, "description", json_string(c->description));
        rc = cli_action_post(c, CLI_PATH_GROUPS, g ? json_pack("{s:o}", GROUP_KEY, g) : NULL, &ans);
        if (rc == 0) {
                struct cli_wait w = {.status = "available"};
                const char *id = cli_str(json_object_get(ans, GROUP_KEY), "id");

                rc = *id ? group_finish(c, id, &w) : -EIO;
        }
        json_decref(ans);
        return rc;
}

int cmd_group_list(struct cli *c)
{
        char q[1024] = "";
        json_t *rows = NULL, *g;
        size_t i;
        int rc = cli_no_args(c);

        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "name", c->name);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "status", c->status);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "priority_station", c->az);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "volume_id", c->volume);
        if (rc == 0)
                rc = cli_http_list(c, CLI_PATH_GROUPS "/detail", q,
                                   "replication_consistency_groups", &rows);
        if (rc == 0 && !c->json)
                json_array_foreach(rows, i, g)
                {
                        json_object_set_new(g, "pairs",
                                            json_integer((json_int_t)json_array_size(
                                                json_object_get(g, "replication_ids"))));
                }
        if (rc == 0)
                rc = cli_show_list(c, "replication_consistency_groups", rows, group_cols,
                                   ARRAY_SIZE(group_cols));
        json_decref(rows);
        return rc;
}

int cmd_group_show(struct cli *c)
{
        const char *id;
        int rc = cli_arg_id(c, &id);

        return rc < 0 ? rc : group_finish(c, id, NULL);
}

int cmd_group_update(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *g, *ans = NULL;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        if (!c->name && !c->description && c->n_add == 0 && c->n_remove == 0)
                return cli_usage_error("group update needs --name, --description, --add or "
                                       "--remove");
        g = json_object();
        if (g && c->name)
                json_object_set_new(g, "name", json_string(c->name));
        if (g && c->description)
                json_object_set_new(g, "description", json_string(c->description));
        if (g && c->n_add)
                json_object_set_new(g, "add_replication_ids", group_id_array(c->add, c->n_add));
        if (g && c->n_remove)
                json_object_set_new(g, "remove_replication_ids",
                                    group_id_array(c->remove, c->n_remove));
        group_path(path, sizeof(path), id, "");
        if (!g)
                return -ENOMEM;
        {
                json_t *body = json_pack("{s:o}", GROUP_KEY, g);

                rc = body ? cli_http_call(c, "PUT", path, body, &ans, NULL, 0) : -ENOMEM;
                json_decref(body);
        }
        json_decref(ans);
        if (rc == 0) {
                struct cli_wait w = {.status = "available"};

                rc = group_finish(c, id, &w);
        }
        return rc;
}

int cmd_group_delete(struct cli *c)
{
        const char *id;
        char path[256];
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        group_path(path, sizeof(path), id, "");
        rc = cli_http_call(c, "DELETE", path, NULL, NULL, NULL, 0);
        if (rc == 0 && c->wait) {
                struct cli_wait w = {.path = path, .key = GROUP_KEY, .kind = CLI_WAIT_GONE};

                rc = cli_wait_for(c, &w, NULL);
        }
        if (rc == 0 && !c->json)
                printf("group %s %s\n", id, c->wait ? "deleted" : "deleting");
        return rc;
}

/* POST {"<key>": value} to the group's action URL (value consumed; NULL
 * means JSON null). Every action answers 200 with an empty body. */
static int group_action(struct cli *c, const char *id, const char *key, json_t *value)
{
        char path[256];

        group_path(path, sizeof(path), id, "/action");
        return cli_action_post(c, path, json_pack("{s:o}", key, value ? value : json_null()), NULL);
}

/* An action that is done when it answers 200: --wait has nothing to wait
 * for, the group is printed as it now is. */
static int group_sync_action(struct cli *c, const char *key)
{
        const char *id;
        int rc = cli_arg_id(c, &id);

        if (rc == 0)
                rc = group_action(c, id, key, NULL);
        return rc < 0 ? rc : group_finish(c, id, NULL);
}

/* sync and reprotect: copy data; --wait shows progress until active. */
static int group_copy_action(struct cli *c, const char *key, const char *want_status)
{
        struct cli_wait w = {
            .status = want_status, .repl_status = "active", .progress = true, .group = true};
        const char *id;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        /* evsrep extension: the dry-run estimate, and a confirmation above
         * the threshold (cmd_group_ext.c). */
        rc = cli_group_confirm(c, id, strstr(key, "reprotect") ? "reprotect" : "sync");
        if (rc < 0)
                return rc;
        if (c->wait) {
                /* Progress shows the bytes copied by this action only. */
                char path[256];
                json_t *g = NULL;

                group_path(path, sizeof(path), id, "");
                rc = cli_get_object(c, path, GROUP_KEY, &g);
                if (rc < 0)
                        return rc;
                json_t *b = json_object_get(g, "bytes_copied");
                w.bytes_baseline = json_is_integer(b) && json_integer_value(b) > 0
                                       ? (uint64_t)json_integer_value(b)
                                       : 0;
                json_decref(g);
        }
        w.action_mono_usec = util_mono_usec();
        rc = group_action(c, id, key, NULL);
        return rc < 0 ? rc : group_finish(c, id, &w);
}

int cmd_group_pause(struct cli *c)
{
        return group_sync_action(c, "os-stop-replication-consistency-group");
}

int cmd_group_sync(struct cli *c)
{
        return group_copy_action(c, "os-sync-replication-consistency-group", NULL);
}

/* reverse and failover: the daemon answers once the swap is under way
 * (status reversing / failovering; the flushes and the role switch run
 * behind it). Always wait until the status leaves it, then check that the
 * roles moved: a swap that failed leaves the group `available` with the old
 * priority_station (exit 8, the reason is in the daemon log). */
static int group_swap_action(struct cli *c, const char *id, const char *key, bool failover)
{
        struct cli_wait w = {.kind = CLI_WAIT_LEAVE,
                             .status = failover ? "failovering" : "reversing",
                             .key = GROUP_KEY};
        const char *want = failover ? "failovered" : "available";
        char path[256], before[128];
        json_t *g = NULL;
        int rc;

        group_path(path, sizeof(path), id, "");
        if ((rc = cli_get_object(c, path, GROUP_KEY, &g)) < 0)
                return rc;
        snprintf(before, sizeof(before), "%s", cli_str(g, "priority_station"));
        json_decref(g);
        g = NULL;
        if ((rc = group_action(c, id, key, NULL)) < 0)
                return rc;
        w.path = path;
        if ((rc = cli_wait_for(c, &w, &g)) < 0)
                return rc;
        if (strcmp(cli_str(g, "status"), want) != 0 ||
            strcmp(cli_str(g, "priority_station"), before) == 0) {
                fprintf(stderr,
                        "evsrep: group %s: the %s did not happen: status %s, production still "
                        "in %s; the reason is in the daemon log\n",
                        id, failover ? "failover" : "reverse", cli_str(g, "status"),
                        cli_str(g, "priority_station"));
                rc = -ECANCELED;
        } else {
                rc = group_print(c, g);
        }
        json_decref(g);
        return rc;
}

int cmd_group_reverse(struct cli *c)
{
        const char *id;
        int rc = cli_arg_id(c, &id);

        if (rc == 0)
                rc = cli_group_confirm(c, id, "reverse"); /* cmd_group_ext.c */
        return rc < 0 ? rc
                      : group_swap_action(c, id, "os-reverse-replication-consistency-group", false);
}

int cmd_group_failover(struct cli *c)
{
        const char *id;
        int rc = cli_arg_id(c, &id);

        return rc < 0 ? rc
                      : group_swap_action(c, id, "os-failover-replication-consistency-group", true);
}

int cmd_group_reprotect(struct cli *c)
{
        return group_copy_action(c, "os-reprotect-replication-consistency-group", "available");
}

int cmd_group_extend(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *g = NULL, *list, *ids;
        size_t i;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        if (!c->has_size)
                return cli_usage_error("group extend needs --size GIB (the new size)");
        if (c->n_pairs) {
                ids = group_id_array(c->pairs, c->n_pairs);
        } else {
                /* Default: every member pair. */
                group_path(path, sizeof(path), id, "");
                rc = cli_get_object(c, path, GROUP_KEY, &g);
                if (rc < 0)
                        return rc;
                ids = json_incref(json_object_get(g, "replication_ids"));
                json_decref(g);
                if (json_array_size(ids) == 0) {
                        json_decref(ids);
                        fprintf(stderr, "evsrep: group %s has no pairs to extend\n", id);
                        return -EBUSY;
                }
        }
        list = json_array();
        for (i = 0; list && i < json_array_size(ids); i++)
                json_array_append_new(list, json_pack("{s:O,s:I}", "id", json_array_get(ids, i),
                                                      "new_size", (json_int_t)c->size_gib));
        json_decref(ids);
        if (!list)
                return -ENOMEM;
        rc = group_action(c, id, "os-extend-replication-volumes",
                          json_pack("{s:o}", "replications", list));
        return rc < 0 ? rc : group_finish(c, id, NULL);
}
