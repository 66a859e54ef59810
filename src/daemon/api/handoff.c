/* Failover from the survivor and the old node's divergence over the API
 * (docs/design/multi-site.md "Failover from the survivor", "Moving a mirror
 * between nodes"; docs/api.md §6.2).
 *
 * api_handoff_route: a group failover whose production node does not
 * answer (connection refused or timed out, or its lease lapsed) is carried
 * out by the node serving the group's DR AZ: here when that is this node,
 * else forwarded to it. Its answer: 200 as a failover; 409 with
 * Retry-After while the old node's lease is valid.
 *
 * GET /v2/{project}/os-evsrep-divergence/{pair id}: internal (404 unless
 * it arrived signed over the internal channel), the dirty set of the kept
 * meta file of a pair whose production moved away from this node. */
#include "api/internal.h"
#include "cluster/cluster.h"
#include "common/log.h"
#include "service/handoff.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

int api_handoff_divergence(struct api_call *c)
{
        char msg[512] = "";
        json_t *out = NULL;
        int rc;

        if (!c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s",
                                        c->r->url);
        rc = service_handoff_divergence(c->ctx->svc, c->project, c->id, &out, msg, sizeof(msg));
        if (rc < 0)
                return api_reply_errno(c, rc, msg[0] ? msg : NULL);
        return http_reply_json(c->r, 200, out);
}

bool api_handoff_is_failover(const struct api_call *c, const char *pattern)
{
        json_t *root;
        bool yes;

        if (strcmp(c->r->method, "POST") != 0 ||
            strcmp(pattern, "os-vendor-replication-consistency-groups/{id}/action") != 0)
                return false;
        root = json_loadb(c->r->body, c->r->body_len, 0, NULL);
        yes = root && json_object_get(root, "os-failover-replication-consistency-group");
        json_decref(root);
        return yes;
}

/* Carry out the failover here (this node serves the DR AZ). */
static int failover_here(struct api_call *c)
{
        char msg[512] = "", retry[48];
        int retry_sec = 0;
        int rc =
            service_handoff_failover(c->ctx->svc, c->project, c->id, &retry_sec, msg, sizeof(msg));

        if (rc == -EALREADY)
                return 0; /* production is here after all: the handler runs */
        if (rc == -EBUSY && retry_sec > 0) {
                snprintf(retry, sizeof(retry), "Retry-After: %d", retry_sec);
                log_info("%s: failover of group %s refused: %s", c->r->req_id, c->id, msg);
                return http_reply_error(c->r, HTTP_ERR_CONFLICT, retry, "%s", msg) < 0 ? -1 : 1;
        }
        if (rc < 0)
                return api_reply_errno(c, rc, msg[0] ? msg : NULL) < 0 ? -1 : 1;
        return http_reply_json(c->r, 200, NULL) < 0 ? -1 : 1; /* as the handler */
}

int api_handoff_route(struct api_call *c, const char *prod_az)
{
        char dr_az[STORE_AZ_LEN], msg[256] = "";
        struct store_node dr;
        struct cluster_reply rep;
        int rc;

        rc = service_handoff_dr_az(c->ctx->svc, c->project, c->id, dr_az, sizeof(dr_az));
        if (rc < 0)
                return 0; /* no members or no group: the handler says why */
        if (cluster_az_local(dr_az))
                return failover_here(c);
        if (c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, "Retry-After: 1",
                                        "this failover was forwarded to node %s, which serves "
                                        "neither %s nor %s; retry the request",
                                        cluster_node_name(), prod_az, dr_az) < 0
                           ? -1
                           : 1;
        if ((rc = cluster_az_owner(dr_az, &dr, NULL)) < 0)
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, "Retry-After: 5",
                                        "the production node of %s is down and no live node "
                                        "serves the DR zone %s; the group cannot fail over now",
                                        prod_az, dr_az) < 0
                           ? -1
                           : 1;
        rc = cluster_forward_send(&dr, c->r->method, c->r->url, c->project, c->is_operator,
                                  c->r->body, c->r->body_len, &rep, msg, sizeof(msg));
        if (rc < 0 || rep.status < 100) {
                if (rc == 0)
                        cluster_reply_free(&rep);
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, "Retry-After: 5",
                                        "node %s, which serves the DR zone %s, cannot be reached "
                                        "(%s); retry later",
                                        dr.name, dr_az, msg) < 0
                           ? -1
                           : 1;
        }
        log_info("%s: failover forwarded to node %s (%s, the DR zone): HTTP %ld", c->r->req_id,
                 dr.name, dr_az, rep.status);
        return api_forward_relay(c, &rep);
}

int api_handoff_takeover(struct api_call *c)
{
        char msg[512] = "";
        json_t *root;
        const char *mode;
        enum mirror_mode mm;
        int rc;

        if (!c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s",
                                        c->r->url);
        root = json_loadb(c->r->body ? c->r->body : "", c->r->body_len, 0, NULL);
        mode = json_string_value(json_object_get(root, "mode"));
        if (!mode || (strcmp(mode, "sync") != 0 && strcmp(mode, "track") != 0)) {
                json_decref(root);
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "mode must be \"sync\" or \"track\"");
        }
        mm = strcmp(mode, "sync") == 0 ? MIRROR_SYNC : MIRROR_TRACK;
        json_decref(root);
        rc = service_handoff_takeover(c->ctx->svc, c->project, c->id, mm, msg, sizeof(msg));
        if (rc < 0)
                return api_reply_errno(c, rc, msg[0] ? msg : NULL);
        return http_reply_json(c->r, 200, NULL);
}
