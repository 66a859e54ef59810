/* EVS replication pairs: api.md "EVS replication pairs". */
#include "api/internal.h"
#include "common/util.h"
#include "json/jcheck.h"
#include "service/states.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct jfield g_create_fields[] = {
    {"name", JT_STRING, false, 0, 255},
    {"description", JT_STRING, false, 0, 255},
    {"volume_ids", JT_ARRAY, true, 0, 0},
    {"priority_station", JT_STRING, true, 0, 63},
    {"replication_model", JT_STRING, true, 0, 31},
};

int api_pair_create_parse(const char *body, size_t len, json_t **root, struct pair_create_req *rq,
                          char *msg, size_t msglen)
{
        json_t *o = jcheck_parse_top(body, len, "replication", root, msg, msglen);
        json_t *ids;

        memset(rq, 0, sizeof(*rq));
        if (!o)
                return -EINVAL;
        if (jcheck_object(o, "replication", g_create_fields, ARRAY_SIZE(g_create_fields), msg,
                          msglen) < 0)
                return -EINVAL;
        ids = json_object_get(o, "volume_ids");
        if (json_array_size(ids) != 2 || !json_is_string(json_array_get(ids, 0)) ||
            !json_is_string(json_array_get(ids, 1))) {
                snprintf(msg, msglen,
                         "replication.volume_ids must be a list of exactly two volume ids "
                         "(production first, then DR)");
                return -EINVAL;
        }
        rq->volume_ids[0] = json_string_value(json_array_get(ids, 0));
        rq->volume_ids[1] = json_string_value(json_array_get(ids, 1));
        rq->priority_station = jcheck_str(o, "priority_station", NULL);
        if (strcmp(jcheck_str(o, "replication_model", ""), "hypermetro") != 0) {
                snprintf(msg, msglen, "replication.replication_model must be \"hypermetro\"");
                return -EINVAL;
        }
        rq->name = jcheck_str(o, "name", "");
        rq->description = jcheck_str(o, "description", "");
        return 0;
}

static json_t *str_or_null(const char *s)
{
        return s && *s ? json_string(s) : json_null();
}

static json_t *pair_json(struct api_call *c, const struct store_pair *p)
{
        char ids[2 * STORE_ID_LEN + 1], progress[8], fault[8], *rm;
        struct pair_live live;
        bool has_live = service_pair_live(c->ctx->svc, p->id, &live);
        enum repl_status rs = REPL__COUNT; /* none yet: a pair being created */
        int pct = p->progress;
        json_t *j;

        repl_status_parse(p->replication_status, &rs);
        snprintf(ids, sizeof(ids), "%s,%s", p->volume_ids[0], p->volume_ids[1]);
        if (rs == REPL_ACTIVE)
                pct = 100;
        else if (has_live && rs == REPL_COPYING)
                pct = live.progress;
        snprintf(progress, sizeof(progress), "%d", pct);
        snprintf(fault, sizeof(fault), "%d",
                 has_live && live.fault_level > p->fault_level ? live.fault_level : p->fault_level);
        {
                json_t *md =
                    json_pack("{s:I,s:s,s:b}", "volume_size", (json_int_t)p->volume_size_gib,
                              "volume_type", p->volume_type, "multiattach", p->multiattach);
                rm = json_dumps(md, JSON_COMPACT);
                json_decref(md);
        }
        j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:o,s:o}", "id", p->id,
                      "name", p->name, "description", p->description, "status", p->status,
                      "replication_consistency_group_id", str_or_null(p->group_id), "volume_ids",
                      ids, "priority_station", p->priority_station, "replication_model",
                      p->replication_model, "replication_status",
                      str_or_null(p->replication_status), "progress", progress, "failure_detail",
                      has_live && live.fault_level > p->fault_level ? live.failure_detail
                                                                    : p->failure_detail,
                      "fault_level", fault, "record_metadata", rm ? rm : "{}", "created_at",
                      api_time(p->created_at), "updated_at", api_time(p->updated_at));
        free(rm);
        if (j && has_live) {
                json_object_set_new(j, "bytes_copied", json_integer((json_int_t)live.bytes_copied));
                json_object_set_new(j, "copy_rate_bytes_per_sec",
                                    json_integer((json_int_t)live.rate_bps));
                json_object_set_new(j, "dirty_bytes", json_integer((json_int_t)live.dirty_bytes));
                json_object_set_new(j, "sidecar_bytes",
                                    json_integer((json_int_t)live.sidecar_bytes));
        }
        return j;
}

int api_pairs_create(struct api_call *c)
{
        struct pair_create_req rq;
        struct store_pair p;
        json_t *root = NULL;
        char msg[512] = "", fd[16] = "";
        int rc = api_pair_create_parse(c->r->body, c->r->body_len, &root, &rq, msg, sizeof(msg));

        if (rc == 0) {
                rq.project_id = c->project;
                rc = service_pair_create(c->ctx->svc, &rq, &p, fd, msg, sizeof(msg));
        }
        json_decref(root);
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return http_reply_json(c->r, 202, json_pack("{s:o}", "replication", pair_json(c, &p)));
}

int api_pairs_list(struct api_call *c)
{
        static const char *const filters[] = {
            "name",       "status",    "replication_consistency_group_id",
            "volume_ids", "volume_id", "priority_station",
            NULL};
        struct api_list l;
        struct store_pair *ps = NULL;
        size_t n = 0;
        json_t *arr;
        int rc;

        if (api_list_parse(c, filters, &l))
                return 0;
        rc = store_pair_list(service_store(c->ctx->svc), &l.q, &ps, &n);
        if (rc == -ENOENT)
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "marker %s is not a replication pair of this project",
                                        l.q.marker ? l.q.marker : "");
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, pair_json(c, &ps[i]));
        free(ps);
        return http_reply_json(c->r, 200, json_pack("{s:o}", "replications", arr));
}

int api_pairs_get(struct api_call *c)
{
        struct store_pair p;
        int rc = store_pair_get(service_store(c->ctx->svc), c->project, c->id, &p);

        if (rc == -ENOENT)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL,
                                        "replication pair %s does not exist", c->id);
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        return http_reply_json(c->r, 200, json_pack("{s:o}", "replication", pair_json(c, &p)));
}

int api_pairs_delete(struct api_call *c)
{
        char msg[512] = "";
        int rc = service_pair_delete(c->ctx->svc, c->project, c->id, msg, sizeof(msg));

        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return http_reply_json(c->r, 202, NULL);
}
