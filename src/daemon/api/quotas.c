/* Quota sets (Cinder os-quota-sets subset): api.md "Quota sets".
 *
 * The path names two projects: the token's (/v2/{project}/..., checked by
 * the router) and the target (os-quota-sets/{project}). A tenant token may
 * read its own project's set only; an operator token may read any and is the
 * only one that may change a set. The defaults are the same for every
 * project and readable with any token. */
#include "api/internal.h"
#include "common/util.h"
#include "json/jcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Far above any real limit and well inside int64 sums (config.c agrees). */
#define QUOTA_API_MAX ((json_int_t)1 << 40)

bool api_project_id_valid(const char *s)
{
        size_t n = strlen(s);

        if (n < 1 || n >= STORE_PROJECT_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
                        return false;
        }
        return true;
}

int api_quota_update_parse(const char *body, size_t len, struct quota_set *rq, char *msg,
                           size_t msglen)
{
        json_t *root = NULL, *qs = jcheck_parse_top(body, len, "quota_set", &root, msg, msglen);
        const char *k;
        json_t *v;
        int rc = 0;

        rq->volumes = rq->gigabytes = STORE_QUOTA_DEFAULT;
        if (!qs)
                return -EINVAL;
        if (!json_is_object(qs) || json_object_size(qs) == 0) {
                snprintf(msg, msglen,
                         "quota_set must be an object with volumes and/or gigabytes, e.g. "
                         "{\"quota_set\": {\"volumes\": 10, \"gigabytes\": 1000}}");
                rc = -EINVAL;
        }
        json_object_foreach(qs, k, v)
        {
                int64_t *dst;

                if (rc < 0)
                        break;
                if (strcmp(k, "volumes") == 0) {
                        dst = &rq->volumes;
                } else if (strcmp(k, "gigabytes") == 0) {
                        dst = &rq->gigabytes;
                } else {
                        snprintf(msg, msglen,
                                 "quota_set.%.64s is not a quota evsrep knows (volumes, "
                                 "gigabytes)",
                                 k);
                        rc = -EINVAL;
                        break;
                }
                if (!json_is_integer(v) || json_integer_value(v) < -1 ||
                    json_integer_value(v) > QUOTA_API_MAX) {
                        snprintf(msg, msglen,
                                 "quota_set.%s must be -1 (unlimited) or an integer from 0 to "
                                 "%lld",
                                 k, (long long)QUOTA_API_MAX);
                        rc = -EINVAL;
                        break;
                }
                *dst = json_integer_value(v);
        }
        json_decref(root);
        return rc;
}

static json_t *set_json(const char *project, const struct quota_set *lim,
                        const struct quota_set *use)
{
        if (!use)
                return json_pack("{s:{s:s,s:I,s:I}}", "quota_set", "id", project, "volumes",
                                 (json_int_t)lim->volumes, "gigabytes", (json_int_t)lim->gigabytes);
        return json_pack("{s:{s:s,s:{s:I,s:I,s:i},s:{s:I,s:I,s:i}}}", "quota_set", "id", project,
                         "volumes", "limit", (json_int_t)lim->volumes, "in_use",
                         (json_int_t)use->volumes, "reserved", 0, "gigabytes", "limit",
                         (json_int_t)lim->gigabytes, "in_use", (json_int_t)use->gigabytes,
                         "reserved", 0);
}

/* Tenants act on their own project only; operators on any. Replies 403 and
 * returns 1 when refused. */
static int refuse_other_project(struct api_call *c, const char *what)
{
        if (c->is_operator || strcmp(c->id, c->project) == 0)
                return 0;
        http_reply_error(c->r, HTTP_ERR_FORBIDDEN, NULL,
                         "a tenant token can %s only its own project's quotas (%s), not those of "
                         "project %s",
                         what, c->project, c->id);
        return 1;
}

static int refuse_tenant(struct api_call *c, const char *verb)
{
        if (c->is_operator)
                return 0;
        http_reply_error(c->r, HTTP_ERR_FORBIDDEN, NULL,
                         "%s quotas needs an operator token (the tokens file's third field "
                         "'operator'); this token is a tenant token of project %s",
                         verb, c->project);
        return 1;
}

int api_quotas_get(struct api_call *c)
{
        struct quota_set lim, use;
        const char *u = http_query(c->r, "usage");
        bool usage = false;
        int rc;

        if (u) {
                if (strcmp(u, "true") == 0 || strcmp(u, "1") == 0)
                        usage = true;
                else if (strcmp(u, "false") != 0 && strcmp(u, "0") != 0)
                        return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                                "usage must be true or false");
        }
        if (refuse_other_project(c, "read"))
                return 0;
        rc = service_quota_get(c->ctx->svc, c->id, &lim, usage ? &use : NULL);
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        return http_reply_json(c->r, 200, set_json(c->id, &lim, usage ? &use : NULL));
}

int api_quotas_defaults(struct api_call *c)
{
        struct quota_set d;

        service_quota_defaults(c->ctx->svc, &d);
        return http_reply_json(c->r, 200, set_json(c->id, &d, NULL));
}

int api_quotas_update(struct api_call *c)
{
        struct quota_set rq, out;
        char msg[512] = "";
        int rc;

        if (refuse_tenant(c, "changing"))
                return 0;
        rc = api_quota_update_parse(c->r->body, c->r->body_len, &rq, msg, sizeof(msg));
        if (rc == 0)
                rc = service_quota_update(c->ctx->svc, c->id, &rq, &out);
        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        return http_reply_json(c->r, 200,
                               json_pack("{s:{s:I,s:I}}", "quota_set", "volumes",
                                         (json_int_t)out.volumes, "gigabytes",
                                         (json_int_t)out.gigabytes));
}

int api_quotas_delete(struct api_call *c)
{
        int rc;

        if (refuse_tenant(c, "resetting"))
                return 0;
        rc = service_quota_reset(c->ctx->svc, c->id);
        if (rc < 0)
                return api_reply_errno(c, rc, NULL);
        return http_reply_json(c->r, 200, NULL);
}
