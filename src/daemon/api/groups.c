/* Replication consistency groups: api.md "Replication consistency groups". */
#include "api/internal.h"
#include "common/replygen.h"
#include "common/util.h"
#include "json/jcheck.h"
#include "service/verify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_IDS 256

/* A JSON list of id strings -> ids[] (borrowed from the JSON). */
static int id_list(const json_t *arr, const char *what, const char **ids, size_t *n, char *msg,
                   size_t msglen)
{
        size_t i;
        json_t *v;

        *n = 0;
        if (!arr || json_is_null(arr))
                return 0;
        if (!json_is_array(arr) || json_array_size(arr) > MAX_IDS) {
                snprintf(msg, msglen, "%s must be a list of at most %d replication pair ids", what,
                         MAX_IDS);
                return -EINVAL;
        }
        json_array_foreach(arr, i, v)
        {
                if (!json_is_string(v)) {
                        snprintf(msg, msglen, "%s[%zu] must be a replication pair id (a string)",
                                 what, i);
                        return -EINVAL;
                }
                ids[(*n)++] = json_string_value(v);
        }
        return 0;
}

static int check_model(const json_t *o, const char *prefix, char *msg, size_t msglen)
{
        const char *m = jcheck_str(o, "replication_model", NULL);

        if (m && strcmp(m, "hypermetro") != 0) {
                snprintf(msg, msglen, "%s.replication_model must be \"hypermetro\"", prefix);
                return -EINVAL;
        }
        return 0;
}

static const struct jfield g_create_fields[] = {
    {"name", JT_STRING, false, 0, 255},
    {"description", JT_STRING, false, 0, 255},
    {"replication_ids", JT_ARRAY, true, 0, 0},
    {"priority_station", JT_STRING, true, 0, 63},
    {"replication_model", JT_STRING, true, 0, 31},
};

int api_group_create_parse(const char *body, size_t len, json_t **root, struct group_create_req *rq,
                           const char **ids, char *msg, size_t msglen)
{
        const char *top = "replication_consistency_group";
        json_t *o = jcheck_parse_top(body, len, top, root, msg, msglen);

        memset(rq, 0, sizeof(*rq));
        if (!o ||
            jcheck_object(o, top, g_create_fields, ARRAY_SIZE(g_create_fields), msg, msglen) < 0)
                return -EINVAL;
        if (check_model(o, top, msg, msglen) < 0 ||
            id_list(json_object_get(o, "replication_ids"), "replication_ids", ids, &rq->npairs, msg,
                    msglen) < 0)
                return -EINVAL;
        rq->pair_ids = ids;
        rq->name = jcheck_str(o, "name", "");
        rq->description = jcheck_str(o, "description", "");
        rq->priority_station = jcheck_str(o, "priority_station", NULL);
        return 0;
}

static const struct jfield g_update_fields[] = {
    {"name", JT_STRING, false, 0, 255},
    {"description", JT_STRING, false, 0, 255},
    {"replication_model", JT_STRING, false, 0, 31},
    {"add_replication_ids", JT_ARRAY, false, 0, 0},
    {"remove_replication_ids", JT_ARRAY, false, 0, 0},
};

int api_group_update_parse(const char *body, size_t len, json_t **root, struct group_update_req *rq,
                           const char **add, const char **rem, char *msg, size_t msglen)
{
        const char *top = "replication_consistency_group";
        json_t *o = jcheck_parse_top(body, len, top, root, msg, msglen);

        memset(rq, 0, sizeof(*rq));
        if (!o ||
            jcheck_object(o, top, g_update_fields, ARRAY_SIZE(g_update_fields), msg, msglen) < 0)
                return -EINVAL;
        if (check_model(o, top, msg, msglen) < 0 ||
            id_list(json_object_get(o, "add_replication_ids"), "add_replication_ids", add,
                    &rq->nadd, msg, msglen) < 0 ||
            id_list(json_object_get(o, "remove_replication_ids"), "remove_replication_ids", rem,
                    &rq->nremove, msg, msglen) < 0)
                return -EINVAL;
        rq->add = add;
        rq->remove = rem;
        rq->name = jcheck_str(o, "name", NULL);
        rq->description = jcheck_str(o, "description", NULL);
        return 0;
}

static const struct {
        const char *key;
        enum group_action action;
} g_actions[] = {
    {"os-stop-replication-consistency-group", GROUP_PAUSE},
    {"os-sync-replication-consistency-group", GROUP_SYNC},
    {"os-failover-replication-consistency-group", GROUP_FAILOVER},
    {"os-reverse-replication-consistency-group", GROUP_REVERSE},
    {"os-reprotect-replication-consistency-group", GROUP_REPROTECT},
    {"os-extend-replication-volumes", GROUP_EXTEND},
};

static int extend_item(const json_t *o, struct group_extend_item *it, char *msg, size_t msglen)
{
        static const struct jfield f[] = {{"id", JT_STRING, true, 0, 63},
                                          {"new_size", JT_INT, true, 1, 32768}};

        if (jcheck_object(o, "os-extend-replication-volumes", f, ARRAY_SIZE(f), msg, msglen) < 0)
                return -EINVAL;
        it->pair_id = json_string_value(json_object_get(o, "id"));
        it->new_size_gib = json_integer_value(json_object_get(o, "new_size"));
        return 0;
}

int api_group_action_parse(const char *body, size_t len, json_t **root, enum group_action *action,
                           struct group_extend_item *items, size_t *nitems, char *msg,
                           size_t msglen)
{
        json_error_t e;
        const char *key = NULL;
        json_t *val = NULL;
        size_t i;

        *nitems = 0;
        *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(*root) || json_object_size(*root) != 1) {
                snprintf(msg, msglen,
                         "the body must be a JSON object with exactly one action key, e.g. "
                         "{\"os-stop-replication-consistency-group\": null}");
                return -EINVAL;
        }
        json_object_foreach(*root, key, val) break;
        for (i = 0; i < ARRAY_SIZE(g_actions); i++)
                if (strcmp(key, g_actions[i].key) == 0)
                        break;
        if (i == ARRAY_SIZE(g_actions)) {
                snprintf(msg, msglen, "unknown action '%.80s'", key);
                return -EINVAL;
        }
        *action = g_actions[i].action;
        if (*action != GROUP_EXTEND) {
                if (!json_is_null(val)) {
                        snprintf(msg, msglen, "the value of %s must be null", key);
                        return -EINVAL;
                }
                return 0;
        }
        /* extend: {"replications": [{id, new_size}...]} or the Go SDK's {id, new_size} */
        if (json_is_object(val) && json_object_get(val, "replications")) {
                json_t *arr = json_object_get(val, "replications"), *it;
                size_t k;

                if (!json_is_array(arr) || json_array_size(arr) == 0 ||
                    json_array_size(arr) > MAX_IDS || json_object_size(val) != 1) {
                        snprintf(msg, msglen,
                                 "%s.replications must be a non-empty list of {id, new_size}", key);
                        return -EINVAL;
                }
                json_array_foreach(arr, k, it)
                {
                        if (extend_item(it, &items[k], msg, msglen) < 0)
                                return -EINVAL;
                }
                *nitems = json_array_size(arr);
                return 0;
        }
        if (!json_is_object(val) || extend_item(val, &items[0], msg, msglen) < 0) {
                if (!msg[0] || !json_is_object(val))
                        snprintf(msg, msglen,
                                 "%s must be {\"replications\": [{\"id\": ..., \"new_size\": "
                                 "...}]} or {\"id\": ..., \"new_size\": ...}",
                                 key);
                return -EINVAL;
        }
        *nitems = 1;
        return 0;
}

static json_t *group_json(struct api_call *c, const struct store_group *g)
{
        struct group_view v;
        char fault[8];
        json_t *ids = json_array(), *j;

        if (service_group_view(c->ctx->svc, g, &v) < 0) {
                memset(&v, 0, sizeof(v));
                replygen_taint(); /* an incomplete reply is never cached */
        }
        for (size_t i = 0; i < v.n; i++)
                json_array_append_new(ids, json_string(v.ids[i]));
        free(v.ids);
        snprintf(fault, sizeof(fault), "%d", v.fault_level);
        j = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:o,s:o,s:o,s:I}", "id", g->id, "name",
            g->name, "description", g->description, "status", g->status, "priority_station",
            g->priority_station, "replication_model", g->replication_model, "replication_status",
            v.replication_status[0] ? v.replication_status : "active-stopped", "replication_ids",
            ids, "failure_detail", v.failure_detail, "fault_level", fault, "created_at",
            api_time(g->created_at), "updated_at", api_time(g->updated_at), "frozen_at",
            api_time(v.frozen_at), "bytes_copied", (json_int_t)v.bytes_copied);
        /* evsrep extension: which member faulted and what to do (docs/api.md). */
        if (j)
                json_object_set_new(j, "fault_message",
                                    v.fault_message[0] ? json_string(v.fault_message)
                                                       : json_null());
        /* evsrep extension: the resync throttle (group_ext.c). */
        if (j)
                json_object_set_new(j, "resync_throttle", api_group_throttle_json(c, g->id));
        /* evsrep extension: the last online verify (api/verify.c). */
        if (j)
                json_object_set_new(j, "verify", api_group_verify_json(c, g->id));
        return j;
}

static int reply_group(struct api_call *c, int status, const struct store_group *g)
{
        return http_reply_json(
            c->r, status, json_pack("{s:o}", "replication_consistency_group", group_json(c, g)));
}

int api_groups_create(struct api_call *c)
{
        const char *ids[MAX_IDS];
        struct group_create_req rq;
        struct store_group g;
        json_t *root = NULL;
        char msg[512] = "";
        int rc =
            api_group_create_parse(c->r->body, c->r->body_len, &root, &rq, ids, msg, sizeof(msg));

        if (rc == 0) {
                rq.project_id = c->project;
                rc = service_group_create(c->ctx->svc, &rq, &g, msg, sizeof(msg));
        }
        json_decref(root);
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return reply_group(c, 202, &g);
}

int api_groups_list(struct api_call *c)
{
        static const char *const filters[] = {"name", "status", "priority_station", "volume_id",
                                              NULL};
        struct api_list l;
        struct store_group *gs = NULL;
        size_t n = 0;
        json_t *arr;
        int rc;

        if (api_list_parse(c, filters, &l))
                return 0;
        rc = store_group_list(service_store(c->ctx->svc), &l.q, &gs, &n);
        if (rc == -ENOENT)
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "marker %s is not a consistency group of this project",
                                        l.q.marker ? l.q.marker : "");
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, group_json(c, &gs[i]));
        free(gs);
        return http_reply_json(c->r, 200,
                               json_pack("{s:o}", "replication_consistency_groups", arr));
}

int api_groups_get(struct api_call *c)
{
        struct store_group g;
        int rc = store_group_get(service_store(c->ctx->svc), c->project, c->id, &g);

        if (rc == -ENOENT)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL,
                                        "replication consistency group %s does not exist", c->id);
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        return reply_group(c, 200, &g);
}

int api_groups_update(struct api_call *c)
{
        const char *add[MAX_IDS], *rem[MAX_IDS];
        struct group_update_req rq;
        struct store_group g;
        json_t *root = NULL;
        char msg[512] = "";
        int rc = api_group_update_parse(c->r->body, c->r->body_len, &root, &rq, add, rem, msg,
                                        sizeof(msg));

        if (rc == 0)
                rc =
                    service_group_update(c->ctx->svc, c->project, c->id, &rq, &g, msg, sizeof(msg));
        json_decref(root);
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return reply_group(c, 202, &g);
}

int api_groups_delete(struct api_call *c)
{
        char msg[512] = "";
        int rc = service_group_delete(c->ctx->svc, c->project, c->id, msg, sizeof(msg));

        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return http_reply_json(c->r, 202, NULL);
}

int api_groups_action(struct api_call *c)
{
        struct group_extend_item items[MAX_IDS];
        enum group_action a;
        struct verify_req vrq;
        size_t n = 0;
        json_t *root = NULL;
        char msg[512] = "", prefix[128];
        int rc = api_groups_throttle_try(c); /* evsrep extension (group_ext.c) */

        if (rc != 1)
                return rc;
        rc = api_group_clone_parse(c->r->body, c->r->body_len, prefix, sizeof(prefix), msg,
                                   sizeof(msg));
        if (rc != 0) /* evsrep extension: the drill clone answers 202 (clone.c) */
                return rc < 0 ? api_reply_errno(c, rc, msg) : api_group_clone(c, prefix);
        rc = api_group_verify_parse(c->r->body, c->r->body_len, &root, &vrq, msg, sizeof(msg));

        json_decref(root);
        root = NULL;
        if (rc <= 0) /* os-evsrep-verify (evsrep extension): api/verify.c */
                return rc < 0 ? api_reply_errno(c, rc, msg) : api_groups_verify(c, &vrq);
        rc = api_group_action_parse(c->r->body, c->r->body_len, &root, &a, items, &n, msg,
                                    sizeof(msg));

        if (rc == 0)
                rc = service_group_action(c->ctx->svc, c->project, c->id, a, items, n, msg,
                                          sizeof(msg));
        json_decref(root);
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return http_reply_json(c->r, 200, NULL);
}
