/* Volumes (Cinder v2 subset): api.md "Volumes". */
#include "api/internal.h"
#include "common/util.h"
#include "json/jcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct jfield g_create_fields[] = {
    {"size", JT_INT, true, 1, 32768},         {"availability_zone", JT_STRING, true, 0, 63},
    {"name", JT_STRING, false, 0, 255},       {"description", JT_STRING, false, 0, 255},
    {"volume_type", JT_STRING, false, 0, 63}, {"multiattach", JT_BOOL, false, 0, 0},
    {"metadata", JT_OBJECT, false, 0, 0},
};

int api_volume_create_parse(const char *body, size_t len, json_t **root,
                            struct volume_create_req *rq, char *msg, size_t msglen)
{
        json_t *vol = jcheck_parse_top(body, len, "volume", root, msg, msglen);
        json_t *md;
        const char *k;
        json_t *val;

        memset(rq, 0, sizeof(*rq));
        if (!vol)
                return -EINVAL;
        if (jcheck_object(vol, "volume", g_create_fields, ARRAY_SIZE(g_create_fields), msg,
                          msglen) < 0)
                return -EINVAL;
        md = json_object_get(vol, "metadata");
        if (json_is_object(md)) {
                json_object_foreach(md, k, val)
                {
                        if (!json_is_string(val) || strlen(k) > 255 ||
                            json_string_length(val) > 255) {
                                snprintf(msg, msglen,
                                         "volume.metadata values must be strings of at most "
                                         "255 bytes (key '%.64s')",
                                         k);
                                return -EINVAL;
                        }
                }
        }
        rq->size_gib = json_integer_value(json_object_get(vol, "size"));
        rq->availability_zone = jcheck_str(vol, "availability_zone", NULL);
        rq->name = jcheck_str(vol, "name", "");
        rq->description = jcheck_str(vol, "description", "");
        rq->volume_type = jcheck_str(vol, "volume_type", "SSD");
        rq->multiattach = json_is_true(json_object_get(vol, "multiattach"));
        return 0;
}

static json_t *volume_json(const struct store_volume *v, bool full)
{
        char self[256];
        json_t *links, *md, *j;
        int pct;

        snprintf(self, sizeof(self), "/v2/%s/volumes/%s", v->project_id, v->id);
        links = json_pack("[{s:s,s:s}]", "rel", "self", "href", self);
        if (!full)
                return json_pack("{s:s,s:s,s:o}", "id", v->id, "name", v->name, "links", links);
        md = json_loads(v->metadata_json ? v->metadata_json : "{}", 0, NULL);
        j = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:b,s:s,s:o,s:s,s:o,s:o,s:o}", "id", v->id,
                      "name", v->name, "description", v->description, "size",
                      (json_int_t)v->size_gib, "availability_zone", v->availability_zone, "status",
                      v->status, "volume_type", v->volume_type, "multiattach", v->multiattach,
                      "bootable", "false", "metadata", md ? md : json_object(),
                      "replication_status", v->pair_id[0] ? "enabled" : "disabled", "created_at",
                      api_time(v->created_at), "updated_at", api_time(v->updated_at), "links",
                      links);
        if (j && v->error_message[0])
                json_object_set_new(j, "error_message", json_string(v->error_message));
        /* evsrep extension: a drill clone being copied (api.md §4.7). */
        if (j && strcmp(v->status, "creating") == 0 && service_clone_progress(v->id, &pct)) {
                char p[8];

                snprintf(p, sizeof(p), "%d", pct);
                json_object_set_new(j, "progress", json_string(p));
        }
        return j;
}

int api_volumes_create(struct api_call *c)
{
        struct volume_create_req rq;
        struct store_volume v = {0};
        json_t *root = NULL, *md;
        char msg[512] = "";
        char *md_text = NULL;
        int rc = api_volume_create_parse(c->r->body, c->r->body_len, &root, &rq, msg, sizeof(msg));

        if (rc < 0) {
                json_decref(root);
                return api_reply_errno(c, rc, msg);
        }
        md = json_object_get(json_object_get(root, "volume"), "metadata");
        if (json_is_object(md))
                md_text = json_dumps(md, JSON_COMPACT | JSON_SORT_KEYS);
        rq.project_id = c->project;
        rq.metadata_json = md_text;
        rc = service_volume_create(c->ctx->svc, &rq, &v, msg, sizeof(msg));
        free(md_text);
        json_decref(root);
        if (rc < 0) {
                store_volume_clear(&v);
                return api_reply_errno(c, rc, msg);
        }
        rc = http_reply_json(c->r, 202, json_pack("{s:o}", "volume", volume_json(&v, true)));
        store_volume_clear(&v);
        return rc;
}

static int list(struct api_call *c, bool full)
{
        static const char *const filters[] = {"name", "status", "availability_zone", NULL};
        struct api_list l;
        struct store_volume *vols = NULL;
        size_t n = 0;
        json_t *arr;
        int rc;

        if (api_list_parse(c, filters, &l))
                return 0;
        rc = store_volume_list(service_store(c->ctx->svc), &l.q, &vols, &n);
        if (rc == -ENOENT)
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "marker %s is not a volume of this project",
                                        l.q.marker ? l.q.marker : "");
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, volume_json(&vols[i], full));
        store_volume_free_list(vols, n);
        return http_reply_json(c->r, 200, json_pack("{s:o}", "volumes", arr));
}

int api_volumes_list(struct api_call *c)
{
        return list(c, false);
}

int api_volumes_detail(struct api_call *c)
{
        return list(c, true);
}

int api_volumes_get(struct api_call *c)
{
        struct store_volume v = {0};
        int rc = store_volume_get(service_store(c->ctx->svc), c->project, c->id, &v);

        if (rc == -ENOENT)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "volume %s does not exist",
                                        c->id);
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        rc = http_reply_json(c->r, 200, json_pack("{s:o}", "volume", volume_json(&v, true)));
        store_volume_clear(&v);
        return rc;
}

int api_volumes_delete(struct api_call *c)
{
        char msg[512] = "";
        int rc = service_volume_delete(c->ctx->svc, c->project, c->id, msg, sizeof(msg));

        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return http_reply_json(c->r, 202, NULL);
}

/* The connector of os-initialize_connection / os-terminate_connection
 * (null or an object): its canonical JSON without "mode" into out, and
 * *read_only when mode is "ro". Returns 0, or replies 400 itself and
 * returns 1. */
static int parse_connector(struct api_call *c, const char *action, json_t *act, char **out,
                           bool *read_only)
{
        json_t *conn, *mode;

        *out = NULL;
        *read_only = false;
        if (!json_is_object(act) && !json_is_null(act)) {
                http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL, "%s must be an object", action);
                return 1;
        }
        conn = json_is_object(act) ? json_object_get(act, "connector") : NULL;
        if (conn && !json_is_object(conn) && !json_is_null(conn)) {
                http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL, "%s.connector must be an object",
                                 action);
                return 1;
        }
        conn = json_is_object(conn) ? json_deep_copy(conn) : json_object();
        if (!conn)
                return -ENOMEM;
        if ((mode = json_object_get(conn, "mode"))) {
                const char *m = json_string_value(mode);
                if (!m || (strcmp(m, "ro") != 0 && strcmp(m, "rw") != 0)) {
                        json_decref(conn);
                        http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                         "%s.connector.mode must be \"ro\" or \"rw\"", action);
                        return 1;
                }
                *read_only = strcmp(m, "ro") == 0;
                json_object_del(conn, "mode");
        }
        *out = json_dumps(conn, JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(conn);
        return *out ? 0 : -ENOMEM;
}

static int initialize_connection(struct api_call *c, json_t *act)
{
        struct attach_info ai;
        json_t *data;
        char msg[512] = "", *conn;
        bool ro;
        int rc = parse_connector(c, "os-initialize_connection", act, &conn, &ro);

        if (rc != 0)
                return rc < 0 ? api_reply_errno(c, rc, "out of memory") : 0;
        rc = service_volume_attach(c->ctx->svc, c->project, c->id, conn, ro, &ai, msg, sizeof(msg));
        free(conn);
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        data = json_pack("{s:s,s:s,s:b,s:s}", "uri", ai.uri, "export_name", ai.export_name,
                         "read_only", ai.read_only, "attachment_id", ai.id);
        if (data && ai.tls_psk_identity[0]) {
                /* NBD TLS-PSK: a PSK file line is "identity:key". */
                json_object_set_new(data, "tls_psk_identity", json_string(ai.tls_psk_identity));
                json_object_set_new(data, "tls_psk_key", json_string(ai.tls_psk_key));
        }
        return http_reply_json(c->r, 200,
                               json_pack("{s:{s:s,s:o}}", "connection_info", "driver_volume_type",
                                         "nbd", "data", data));
}

static int terminate_connection(struct api_call *c, json_t *act)
{
        char msg[512] = "", *conn;
        bool ro;
        int rc = parse_connector(c, "os-terminate_connection", act, &conn, &ro);

        if (rc != 0)
                return rc < 0 ? api_reply_errno(c, rc, "out of memory") : 0;
        rc = service_volume_detach(c->ctx->svc, c->project, c->id, conn, msg, sizeof(msg));
        free(conn);
        return rc < 0 ? api_reply_errno(c, rc, msg) : http_reply_json(c->r, 202, NULL);
}

#define VOLUME_ACTIONS "os-extend, os-initialize_connection or os-terminate_connection"

int api_volumes_action(struct api_call *c)
{
        json_error_t e;
        json_t *root = json_loadb(c->r->body, c->r->body_len, JSON_REJECT_DUPLICATES, &e);
        json_t *act;
        char msg[512] = "";
        int rc;

        if (!json_is_object(root) || json_object_size(root) != 1) {
                json_decref(root);
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "the body must be an object with exactly one action key "
                                        "(" VOLUME_ACTIONS ")");
        }
        if ((act = json_object_get(root, "os-extend"))) {
                static const struct jfield f[] = {{"new_size", JT_INT, true, 1, 32768}};
                rc = jcheck_object(act, "os-extend", f, 1, msg, sizeof(msg));
                if (rc == 0)
                        rc = service_volume_extend(
                            c->ctx->svc, c->project, c->id,
                            json_integer_value(json_object_get(act, "new_size")), msg, sizeof(msg));
                json_decref(root);
                return rc < 0 ? api_reply_errno(c, rc, msg) : http_reply_json(c->r, 202, NULL);
        }
        if ((act = json_object_get(root, "os-initialize_connection")))
                rc = initialize_connection(c, act);
        else if ((act = json_object_get(root, "os-terminate_connection")))
                rc = terminate_connection(c, act);
        else
                rc = http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                      "unknown volume action; use " VOLUME_ACTIONS);
        json_decref(root);
        return rc;
}
