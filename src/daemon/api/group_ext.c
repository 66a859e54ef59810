/* Group extensions (evsrep extensions of the API, docs/api.md §4.7, §4.8):
 * the resync throttle action os-set-resync-throttle (POST .../{id}/action,
 * any group status), its figures in the group object, and the dry-run
 * estimate GET .../{id}/estimate?action=sync|reprotect|reverse. */
#include "api/internal.h"
#include "common/util.h"
#include "json/jcheck.h"
#include "service/group_ext.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define THROTTLE_KEY "os-set-resync-throttle"
#define MIB          (1024ull * 1024)
#define MAX_MIB      1048576 /* 1 TiB/s: more is a typo */

int api_group_throttle_parse(const char *body, size_t len, json_t **root, bool *mine,
                             struct group_throttle_setting *out, char *msg, size_t msglen)
{
        static const struct jfield f[] = {
            {"max_mib_per_sec", JT_INT, false, 0, MAX_MIB},
            {"min_mib_per_sec", JT_INT, false, 0, MAX_MIB},
            {"adaptive", JT_BOOL, false, 0, 0},
        };
        const char *key;
        json_t *v, *o;

        *mine = false;
        memset(out, 0, sizeof(*out));
        *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(*root) || json_object_size(*root) != 1 ||
            !(o = json_object_get(*root, THROTTLE_KEY)))
                return 0; /* not this action: the group action parser judges it */
        *mine = true;
        if (!json_is_object(o)) {
                snprintf(msg, msglen,
                         THROTTLE_KEY " must be an object such as {\"max_mib_per_sec\": 50, "
                                      "\"min_mib_per_sec\": 5, \"adaptive\": true}");
                return -EINVAL;
        }
        if (jcheck_object(o, THROTTLE_KEY, f, ARRAY_SIZE(f), msg, msglen) < 0)
                return -EINVAL;
        json_object_foreach(o, key, v)
        {
                size_t i = 0;

                while (i < ARRAY_SIZE(f) && strcmp(key, f[i].name) != 0)
                        i++;
                if (i == ARRAY_SIZE(f)) {
                        snprintf(msg, msglen,
                                 THROTTLE_KEY ".%.64s is not a field (max_mib_per_sec, "
                                              "min_mib_per_sec, adaptive)",
                                 key);
                        return -EINVAL;
                }
        }
        if ((v = json_object_get(o, "max_mib_per_sec")) && json_is_integer(v))
                out->max_bps = (uint64_t)json_integer_value(v) * MIB;
        if ((v = json_object_get(o, "min_mib_per_sec")) && json_is_integer(v))
                out->min_bps = (uint64_t)json_integer_value(v) * MIB;
        out->adaptive = json_is_true(json_object_get(o, "adaptive"));
        if (out->max_bps && out->min_bps > out->max_bps) {
                snprintf(msg, msglen,
                         THROTTLE_KEY ".min_mib_per_sec must not be above max_mib_per_sec");
                return -EINVAL;
        }
        if (out->min_bps && !out->adaptive && !out->max_bps) {
                snprintf(msg, msglen,
                         THROTTLE_KEY ".min_mib_per_sec is the floor of the adaptive mode: set "
                                      "\"adaptive\": true (or max_mib_per_sec) with it");
                return -EINVAL;
        }
        return 0;
}

int api_groups_throttle_try(struct api_call *c)
{
        struct group_throttle_setting set;
        json_t *root = NULL;
        char msg[512] = "";
        bool mine;
        int rc = api_group_throttle_parse(c->r->body, c->r->body_len, &root, &mine, &set, msg,
                                          sizeof(msg));

        json_decref(root);
        if (!mine)
                return 1;
        if (rc == 0)
                rc = service_group_throttle_set(c->ctx->svc, c->project, c->id, &set, msg,
                                                sizeof(msg));
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return http_reply_json(c->r, 200, NULL);
}

static json_t *rate_or_null(bool live, uint64_t v)
{
        return live ? json_integer((json_int_t)v) : json_null();
}

json_t *api_group_throttle_json(struct api_call *c, const char *group_id)
{
        struct group_throttle_view v;

        if (service_group_throttle_view(c->ctx->svc, group_id, &v) < 0)
                return json_null();
        return json_pack("{s:I,s:I,s:b,s:o,s:o}", "max_mib_per_sec",
                         (json_int_t)(v.set.max_bps / MIB), "min_mib_per_sec",
                         (json_int_t)(v.set.min_bps / MIB), "adaptive", v.set.adaptive,
                         "limit_bytes_per_sec", rate_or_null(v.live, v.limit_bps),
                         "rate_bytes_per_sec", rate_or_null(v.live, v.rate_bps));
}

/* ---- GET .../{id}/estimate?action=... ---- */

struct query_check {
        const char *bad;
};

static void query_key(void *arg, const char *key, const char *value)
{
        struct query_check *q = arg;

        (void)value;
        if (strcmp(key, "action") != 0 && !q->bad)
                q->bad = key;
}

int api_groups_estimate(struct api_call *c)
{
        const char *a = http_query(c->r, "action");
        struct query_check qc = {0};
        struct group_estimate e;
        enum group_action action;
        char msg[512] = "";
        json_t *members, *j;
        int rc;

        http_query_foreach(c->r, query_key, &qc);
        if (qc.bad)
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "unknown query parameter '%.64s' (only action=sync, "
                                        "reprotect or reverse)",
                                        qc.bad);
        if (a && strcmp(a, "sync") == 0)
                action = GROUP_SYNC;
        else if (a && strcmp(a, "reprotect") == 0)
                action = GROUP_REPROTECT;
        else if (a && strcmp(a, "reverse") == 0)
                action = GROUP_REVERSE;
        else
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "the query parameter action must be sync, reprotect or "
                                        "reverse%s",
                                        a ? "" : " (it is missing)");
        rc = service_group_estimate(c->ctx->svc, c->project, c->id, action, &e, msg, sizeof(msg));
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        members = json_array();
        for (size_t i = 0; i < e.n; i++) {
                const struct group_estimate_member *em = &e.members[i];
                json_t *mj = json_pack("{s:s,s:I,s:I,s:I,s:b}", "id", em->pair_id, "bytes",
                                       (json_int_t)em->bytes, "chunks", (json_int_t)em->chunks,
                                       "chunk_bytes", (json_int_t)em->chunk_bytes, "full_copy",
                                       em->full_copy);

                /* evsrep, several nodes: the old production node's part */
                if (em->old_node != OLD_NODE_NONE) {
                        json_object_set_new(mj, "old_node_divergence",
                                            json_string(em->old_node == OLD_NODE_INCLUDED
                                                            ? "included"
                                                            : "unknown"));
                        json_object_set_new(mj, "old_node_chunks",
                                            em->old_node == OLD_NODE_INCLUDED
                                                ? json_integer((json_int_t)em->old_node_chunks)
                                                : json_null());
                }
                json_array_append_new(members, mj);
        }
        free(e.members);
        j = json_pack("{s:s,s:I,s:I,s:o,s:o,s:b,s:o,s:o}", "action", a, "bytes",
                      (json_int_t)e.bytes, "chunks", (json_int_t)e.chunks, "rate_bytes_per_sec",
                      e.rate_bps ? json_integer((json_int_t)e.rate_bps) : json_null(), "seconds",
                      e.bytes == 0 ? json_real(0)
                      : e.rate_bps ? json_real((double)e.bytes / (double)e.rate_bps)
                                   : json_null(),
                      "allowed", e.allowed, "refusal",
                      e.allowed ? json_null() : json_string(e.refusal), "replications", members);
        json_object_set_new(j, "divergence_unknown",
                            e.divergence_unknown[0] ? json_string(e.divergence_unknown)
                                                    : json_null());
        return http_reply_json(c->r, 200, json_pack("{s:o}", "estimate", j));
}
