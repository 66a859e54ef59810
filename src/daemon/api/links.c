/* POST /v2/{project}/os-evsrep-links/{pair id}/grow {"size_bytes": N}: the
 * production node of a pair whose DR volume this node serves asks it to grow
 * that volume before growing production (docs/design/multi-site.md "Remote
 * DR links"). Internal: only over the signed internal channel; a client
 * gets 404 as for any unknown path. */
#include "api/internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>

int api_links_grow(struct api_call *c)
{
        json_t *root, *v;
        char msg[512] = "";
        json_int_t size;
        int rc;

        if (!c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s",
                                        c->r->url);
        root = json_loadb(c->r->body ? c->r->body : "", c->r->body_len, 0, NULL);
        v = json_object_get(root, "size_bytes");
        if (!json_is_integer(v) || (size = json_integer_value(v)) <= 0) {
                json_decref(root);
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "size_bytes must be a positive integer");
        }
        json_decref(root);
        rc = service_link_dr_grow(c->ctx->svc, c->project, c->id, (uint64_t)size, msg, sizeof(msg));
        if (rc < 0)
                return api_reply_errno(c, rc, msg[0] ? msg : NULL);
        return http_reply_json(c->r, 200, NULL);
}
