/* POST /v2/{project}/os-evsrep-links/{pair id}/grow {"size_bytes": N}: the
 * production node of a pair whose DR volume this node serves asks it to grow
 * that volume before growing production (docs/design/multi-site.md "Remote
 * DR links"). Internal: only over the signed internal channel; a client
 * gets 404 as for any unknown path. */
#include "api/internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

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

/* ---- link state for the node list (multi-site.md "Link state in the node
 * list"; docs/api.md §6.1) ---- */

json_t *api_links_json(struct api_call *c)
{
        struct service_link_peer *peers = NULL;
        size_t n = 0;
        json_t *arr;

        if (service_links_report(c->ctx->svc, &peers, &n) < 0)
                return NULL;
        arr = json_array();
        for (size_t i = 0; i < n; i++) {
                const struct service_link_peer *p = &peers[i];

                json_array_append_new(
                    arr, json_pack("{s:o,s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:f,s:f,s:f}", "peer_node",
                                   p->node[0] ? json_string(p->node) : json_null(),
                                   "peer_availability_zone", p->availability_zone, "state",
                                   p->state, "pairs", (json_int_t)p->pairs, "pairs_connected",
                                   (json_int_t)p->pairs_connected, "pairs_busy",
                                   (json_int_t)p->pairs_busy, "groups", (json_int_t)p->groups,
                                   "last_error",
                                   p->last_error[0] ? json_string(p->last_error) : json_null(),
                                   "reconnect_backoff_seconds", (double)p->backoff_ms / 1000,
                                   "next_retry_seconds", (double)p->next_retry_ms / 1000,
                                   "down_seconds", (double)p->down_ms / 1000));
        }
        free(peers);
        return arr;
}

/* GET /v2/{project}/os-evsrep-links: this node's outgoing links, asked by
 * the node answering a node list. Internal only. */
int api_links_list(struct api_call *c)
{
        json_t *arr;

        if (!c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s",
                                        c->r->url);
        if (!(arr = api_links_json(c)))
                return api_reply_errno(c, -ENOMEM, "cannot read the link state");
        return http_reply_json(c->r, 200, json_pack("{s:o}", "links", arr));
}
