/* POST /v2/{project}/os-evsrep-links/{pair id}/grow {"size_bytes": N}: the
 * production node of a pair whose DR volume this node serves asks it to grow
 * that volume before growing production (docs/design/multi-site.md "Remote
 * DR links"). Internal: only over the signed internal channel; a client
 * gets 404 as for any unknown path. */
#include "api/internal.h"
#include "service/drcow.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* POST /v2/{project}/os-evsrep-links/{pair id}/release {}: the production
 * node of a pair it is deleting asks the DR node to release the pair's DR
 * volume before the row goes (multi-site.md "Remote DR links", Delete).
 * Internal: 404 unless forwarded. */
int api_links_release(struct api_call *c)
{
        char msg[512] = "";
        int rc;

        if (!c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s",
                                        c->r->url);
        rc = service_link_dr_release(c->ctx->svc, c->project, c->id, msg, sizeof(msg));
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

/* POST /v2/{project}/os-evsrep-links/{pair id}/sidecar: the production node
 * of a remote pair asks its DR node to open (create or keep) the pair's
 * copy-on-write sidecar, {"op": "open", "frozen_at", "chunk_bytes",
 * "nchunks", "generation" (optional, >= 0: "The release record")}, or to
 * discard a group's, {"op": "discard", "pairs": [ids]}
 * (docs/design/replication.md, sidecars, "Remote links"). Internal. */
int api_links_sidecar(struct api_call *c)
{
        json_t *root, *pairs;
        const char *op;
        char msg[512] = "";
        int rc;

        if (!c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s",
                                        c->r->url);
        root = json_loadb(c->r->body ? c->r->body : "", c->r->body_len, 0, NULL);
        op = json_string_value(json_object_get(root, "op"));
        if (op && strcmp(op, "open") == 0) {
                json_t *nc = json_object_get(root, "nchunks"),
                       *cb = json_object_get(root, "chunk_bytes"),
                       *fa = json_object_get(root, "frozen_at"),
                       *gen = json_object_get(root, "generation");

                if (!json_is_integer(nc) || !json_is_integer(cb) || !json_is_integer(fa) ||
                    json_integer_value(nc) <= 0 || json_integer_value(cb) <= 0 ||
                    json_integer_value(fa) <= 0 ||
                    (gen && (!json_is_integer(gen) || json_integer_value(gen) < 0))) {
                        json_decref(root);
                        return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                                "nchunks, chunk_bytes and frozen_at must be "
                                                "positive integers, generation a non-negative "
                                                "one");
                }
                rc = service_drcow_open(
                    c->ctx->svc, c->project, c->id, (uint64_t)json_integer_value(nc),
                    (uint64_t)json_integer_value(cb), (int64_t)json_integer_value(fa),
                    gen ? (uint64_t)json_integer_value(gen) : 0, msg, sizeof(msg));
        } else if (op && strcmp(op, "discard") == 0 &&
                   json_is_array(pairs = json_object_get(root, "pairs")) &&
                   json_array_size(pairs) > 0 && json_array_size(pairs) <= 4096) {
                size_t n = json_array_size(pairs);
                const char **ids = calloc(n, sizeof(*ids));

                rc = ids ? 0 : -ENOMEM;
                for (size_t i = 0; i < n && rc == 0; i++)
                        if (!(ids[i] = json_string_value(json_array_get(pairs, i))))
                                rc = -EINVAL;
                if (rc == 0)
                        rc = service_drcow_discard(c->ctx->svc, c->project, ids, n, msg,
                                                   sizeof(msg));
                else if (rc == -EINVAL)
                        snprintf(msg, sizeof(msg), "pairs must be an array of ids");
                free(ids);
        } else {
                json_decref(root);
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "op must be \"open\" or \"discard\" (with pairs)");
        }
        json_decref(root);
        if (rc < 0)
                return api_reply_errno(c, rc, msg[0] ? msg : NULL);
        return http_reply_json(c->r, 200, NULL);
}
