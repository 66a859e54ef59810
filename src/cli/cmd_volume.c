/* evsrep volume create|list|show|delete|extend|connect|disconnect (Cinder v2 subset). */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const volume_order[] = {
    "id",
    "name",
    "status",
    "size",
    "availability_zone",
    "replication_status",
    "volume_type",
    "multiattach",
    "bootable",
    "description",
    "metadata",
    "created_at",
    "updated_at",
};

static const struct cli_column volume_cols[] = {
    {"ID", "id"},         {"NAME", "name"},
    {"SIZE_GIB", "size"}, {"AZ", "availability_zone"},
    {"STATUS", "status"}, {"REPLICATION", "replication_status"},
};

static void volume_path(char *buf, size_t cap, const char *id, const char *tail)
{
        snprintf(buf, cap, CLI_PATH_VOLUMES "/%s%s", id, tail);
}

/* Print the volume, after waiting for wanted status when --wait. */
static int volume_finish(struct cli *c, json_t *vol, const char *want)
{
        json_t *last = NULL;
        char path[256];
        int rc;

        if (c->wait) {
                struct cli_wait w = {.path = path, .key = "volume", .status = want};

                volume_path(path, sizeof(path), cli_str(vol, "id"), "");
                rc = cli_wait_for(c, &w, &last);
                if (rc < 0)
                        return rc;
                vol = last;
        }
        rc = cli_show(c, "volume", vol, volume_order, ARRAY_SIZE(volume_order));
        json_decref(last);
        return rc;
}

int cmd_volume_create(struct cli *c)
{
        json_t *body, *v, *ans = NULL;
        int rc = cli_no_args(c);

        if (rc < 0)
                return rc;
        if (!c->has_size)
                return cli_usage_error("volume create needs --size GIB");
        if (!c->az)
                return cli_usage_error("volume create needs --az AZ");
        v = json_pack("{s:I,s:s}", "size", (json_int_t)c->size_gib, "availability_zone", c->az);
        if (v && c->name)
                json_object_set_new(v, "name", json_string(c->name));
        if (v && c->description)
                json_object_set_new(v, "description", json_string(c->description));
        if (v && c->volume_type)
                json_object_set_new(v, "volume_type", json_string(c->volume_type));
        if (v && c->multiattach)
                json_object_set_new(v, "multiattach", json_true());
        body = v ? json_pack("{s:o}", "volume", v) : NULL;
        rc = cli_action_post(c, CLI_PATH_VOLUMES, body, &ans);
        if (rc == 0) {
                v = json_object_get(ans, "volume");
                rc = json_is_object(v) ? volume_finish(c, v, "available") : -EIO;
        }
        json_decref(ans);
        return rc;
}

int cmd_volume_list(struct cli *c)
{
        char q[1024] = "";
        json_t *rows = NULL;
        int rc = cli_no_args(c);

        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "name", c->name);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "status", c->status);
        if (rc == 0)
                rc = cli_http_query_add(c, q, sizeof(q), "availability_zone", c->az);
        if (rc == 0)
                rc = cli_http_list(c, CLI_PATH_VOLUMES "/detail", q, "volumes", &rows);
        if (rc == 0)
                rc = cli_show_list(c, "volumes", rows, volume_cols, ARRAY_SIZE(volume_cols));
        json_decref(rows);
        return rc;
}

int cmd_volume_show(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *vol = NULL;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        volume_path(path, sizeof(path), id, "");
        rc = cli_get_object(c, path, "volume", &vol);
        if (rc == 0)
                rc = cli_show(c, "volume", vol, volume_order, ARRAY_SIZE(volume_order));
        json_decref(vol);
        return rc;
}

int cmd_volume_delete(struct cli *c)
{
        const char *id;
        char path[256];
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        volume_path(path, sizeof(path), id, "");
        rc = cli_http_call(c, "DELETE", path, NULL, NULL, NULL, 0);
        if (rc == 0 && c->wait) {
                struct cli_wait w = {.path = path, .key = "volume", .kind = CLI_WAIT_GONE};

                rc = cli_wait_for(c, &w, NULL);
        }
        if (rc == 0 && !c->json)
                printf("volume %s %s\n", id, c->wait ? "deleted" : "deleting");
        return rc;
}

int cmd_volume_extend(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *vol = NULL;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        if (!c->has_size)
                return cli_usage_error("volume extend needs --size GIB (the new size)");
        volume_path(path, sizeof(path), id, "/action");
        rc = cli_action_post(
            c, path, json_pack("{s:{s:I}}", "os-extend", "new_size", (json_int_t)c->size_gib),
            NULL);
        if (rc < 0)
                return rc;
        volume_path(path, sizeof(path), id, "");
        rc = cli_get_object(c, path, "volume", &vol);
        if (rc == 0)
                rc = volume_finish(c, vol, "available");
        json_decref(vol);
        return rc;
}

int cmd_volume_connect(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *ans = NULL, *ci, *data;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        volume_path(path, sizeof(path), id, "/action");
        rc = cli_action_post(
            c, path, json_pack("{s:{s:{}}}", "os-initialize_connection", "connector"), &ans);
        if (rc < 0)
                return rc;
        ci = json_object_get(ans, "connection_info");
        data = json_object_get(ci, "data");
        if (!json_is_object(data)) {
                fprintf(stderr, "evsrep: the answer has no connection_info.data\n");
                rc = -EIO;
        } else if (c->json) {
                rc = cli_out_json(ans);
        } else {
                static const char *const order[] = {
                    "driver_volume_type", "uri",        "export_name", "read_only", "attachment_id",
                    "tls_psk_identity",   "tls_psk_key"};
                /* One listing, so every value starts in the same column. */
                json_t *all = json_deep_copy(data);

                if (!all) {
                        rc = -ENOMEM;
                } else {
                        json_object_set(all, "driver_volume_type",
                                        json_object_get(ci, "driver_volume_type"));
                        rc = cli_out_object(all, order, ARRAY_SIZE(order));
                        json_decref(all);
                }
        }
        json_decref(ans);
        return rc;
}

int cmd_volume_disconnect(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *ans = NULL;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        volume_path(path, sizeof(path), id, "/action");
        rc = cli_action_post(c, path,
                             json_pack("{s:{s:{}}}", "os-terminate_connection", "connector"), &ans);
        json_decref(ans);
        if (rc == 0 && !c->json)
                printf("volume %s: every attachment revoked\n", id);
        return rc;
}
