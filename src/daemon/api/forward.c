/* Which node carries out a request (docs/design/multi-site.md "Requests: any
 * node answers, the owner acts"), and the operator's view of the nodes.
 *
 * api_forward_route runs after authentication and routing, before the
 * handler. It finds the AZ whose data plane the request starts from:
 *   volume create                      the body's availability_zone
 *   volume delete, os-extend,
 *   os-initialize_connection,
 *   os-terminate_connection            the volume's AZ
 *   pair create                        the body's priority_station (the
 *                                      production volume's AZ)
 *   pair delete, group create/update/
 *   delete and every group action      the pair's or group's priority_station
 * An AZ this node serves, or one no node names (the handler then refuses it
 * as unknown: the cluster's AZs are this node's and every registered
 * node's), is handled here. Otherwise the request goes to the node serving
 * the AZ over the internal channel and its answer is relayed: status, body,
 * content type and Retry-After. A forwarded request is never forwarded
 * again. No live owner: 503 with Retry-After and a sentence naming the node
 * and the AZ. */
#include "api/internal.h"
#include "cluster/cluster.h"
#include "common/log.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A string member two levels down in the request body, or "". */
static void body_str(const struct http_req *r, const char *outer, const char *inner, char *out,
                     size_t cap)
{
        json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
        json_t *v = root ? json_object_get(json_object_get(root, outer), inner) : NULL;

        snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
        json_decref(root);
}

static bool body_has_key(const struct http_req *r, const char *key)
{
        json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
        bool has = root && json_object_get(root, key) != NULL;

        json_decref(root);
        return has;
}

static void volume_az(struct api_call *c, const char *id, char *az, size_t cap)
{
        struct store_volume v = {0};

        if (store_volume_get(service_store(c->ctx->svc), c->project, id, &v) == 0)
                snprintf(az, cap, "%s", v.availability_zone);
        store_volume_clear(&v);
}

/* The path to forward: the client's path plus its query string, rebuilt
 * from the parsed parameters (the estimate's ?action=; r->url is the path
 * only) in one canonical form: every byte but A-Z a-z 0-9 - . _ ~
 * percent-encoded. The sender signs that string; the receiver rebuilds it
 * the same way from what it parsed (api_forward_signed_path), so the query
 * is covered by the signature. */
struct fwd_path {
        char buf[2048];
        size_t len;
        bool overflow;
};

static void fwd_path_add(struct fwd_path *fp, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (; s && *s; s++) {
                unsigned char ch = (unsigned char)*s;
                char enc[4];
                size_t n = 1;

                if (isalnum(ch) || strchr("-._~", ch)) {
                        enc[0] = (char)ch;
                } else {
                        enc[0] = '%';
                        enc[1] = hex[ch >> 4];
                        enc[2] = hex[ch & 15];
                        n = 3;
                }
                if (fp->len + n >= sizeof(fp->buf)) {
                        fp->overflow = true;
                        return;
                }
                memcpy(fp->buf + fp->len, enc, n);
                fp->len += n;
                fp->buf[fp->len] = '\0';
        }
}

static void fwd_query_cb(void *arg, const char *key, const char *value)
{
        struct fwd_path *fp = arg;

        if (fp->len + 1 >= sizeof(fp->buf)) {
                fp->overflow = true;
                return;
        }
        fp->buf[fp->len++] = strchr(fp->buf, '?') ? '&' : '?';
        fp->buf[fp->len] = '\0';
        fwd_path_add(fp, key);
        if (value) {
                if (fp->len + 1 >= sizeof(fp->buf)) {
                        fp->overflow = true;
                        return;
                }
                fp->buf[fp->len++] = '=';
                fp->buf[fp->len] = '\0';
                fwd_path_add(fp, value);
        }
}

/* 0, or -E2BIG when the path and query do not fit. */
static int fwd_path_of(const struct http_req *r, const char *path, struct fwd_path *fp)
{
        int n = snprintf(fp->buf, sizeof(fp->buf), "%s", path);

        if (n < 0 || (size_t)n >= sizeof(fp->buf))
                return -E2BIG;
        fp->len = (size_t)n;
        fp->overflow = false;
        http_query_foreach(r, fwd_query_cb, fp);
        return fp->overflow ? -E2BIG : 0;
}

int api_forward_signed_path(const struct http_req *r, const char *path, char *buf, size_t cap)
{
        struct fwd_path fp;
        int rc = fwd_path_of(r, path, &fp);

        if (rc == 0 && (size_t)snprintf(buf, cap, "%s", fp.buf) >= cap)
                rc = -E2BIG;
        return rc;
}

/* A GET of one pair or group: its live copy figures (bytes_copied,
 * dirty_bytes, progress, copy rate, live fault level) come from the engine
 * of the node owning the mirror, so the GET goes there; when that node
 * cannot answer, the stored row is shown here (multi-site.md "Live figures
 * from the owner"). */
static bool live_get(const struct api_call *c, const char *pattern)
{
        return strcmp(c->r->method, "GET") == 0 &&
               (strcmp(pattern, "os-vendor-replications/{id}") == 0 ||
                strcmp(pattern, "os-vendor-replication-consistency-groups/{id}") == 0);
}

/* A live GET whose owner cannot answer: the stored row, and the log says
 * why the figures are not live. */
static int live_get_local(struct api_call *c, const char *owner, const char *why)
{
        log_info("%s: GET %s answered from the store: node %s %s", c->r->req_id, c->r->url, owner,
                 why);
        return 0;
}

/* The AZ whose node carries out this request, or "" (handled here). */
static void owner_az(struct api_call *c, const char *pattern, char *az, size_t cap)
{
        const char *m = c->r->method;
        struct store *st = service_store(c->ctx->svc);

        az[0] = '\0';
        /* GETs read the shared store, except the estimate, which reads the
         * owner's bitmaps (group_ext.c), and a pair's or group's GET, whose
         * live figures only the owner's engine has (live_get). */
        if (strcmp(m, "GET") == 0 && !strstr(pattern, "{id}/estimate") && !live_get(c, pattern))
                return;
        if (strcmp(pattern, "volumes") == 0) {
                body_str(c->r, "volume", "availability_zone", az, cap);
        } else if (strcmp(pattern, "volumes/{id}") == 0) {
                volume_az(c, c->id, az, cap);
        } else if (strcmp(pattern, "volumes/{id}/action") == 0) {
                if (body_has_key(c->r, "os-extend") ||
                    body_has_key(c->r, "os-initialize_connection") ||
                    body_has_key(c->r, "os-terminate_connection"))
                        volume_az(c, c->id, az, cap);
        } else if (strcmp(pattern, "os-vendor-replications") == 0) {
                body_str(c->r, "replication", "priority_station", az, cap);
        } else if (strcmp(pattern, "os-vendor-replications/{id}") == 0) {
                struct store_pair p;

                if (store_pair_get(st, c->project, c->id, &p) == 0)
                        snprintf(az, cap, "%s", p.priority_station);
        } else if (strcmp(pattern, "os-vendor-replication-consistency-groups") == 0) {
                body_str(c->r, "replication_consistency_group", "priority_station", az, cap);
        } else if (strncmp(pattern, "os-vendor-replication-consistency-groups/{id}", 45) == 0) {
                struct store_group g;

                if (store_group_get(st, c->project, c->id, &g) == 0)
                        snprintf(az, cap, "%s", g.priority_station);
        }
}

int api_forward_route(struct api_call *c, const char *pattern)
{
        char az[STORE_AZ_LEN], msg[256] = "", retry[48];
        struct store_node owner;
        struct cluster_reply rep;
        struct fwd_path fp;
        double remaining = 0;
        int rc;

        /* A failover reaching a self-fenced node (cut off from the store):
         * it could not carry it out, and the survivor must wait for this
         * node's lease anyway. Answer before any store call, which would
         * block until the store's connection times out (multi-site.md
         * "Failover from the survivor"). */
        if (api_handoff_is_failover(c, pattern) &&
            cluster_node_self_fenced_now(&remaining, az, sizeof(az))) {
                int sec = (int)remaining + 1;

                snprintf(retry, sizeof(retry), "Retry-After: %d", sec);
                log_warn("%s: failover refused: this node is self-fenced, its lease may hold "
                         "%.1f s more",
                         c->r->req_id, remaining);
                return http_reply_error(c->r, HTTP_ERR_CONFLICT, retry,
                                        "node %s (%s) holds its lease for %d more seconds; retry "
                                        "after it lapses, or stop node %s",
                                        cluster_node_name(), az, sec, cluster_node_name()) < 0
                           ? -1
                           : 1;
        }
        owner_az(c, pattern, az, sizeof(az));
        if (!az[0] || cluster_az_local(az))
                return 0;
        rc = cluster_az_owner(az, &owner, &remaining);
        if (rc == -ENOENT)
                return 0; /* no node serves it: the handler says it is unknown */
        if (live_get(c, pattern)) {
                if (c->forwarded)
                        return 0; /* the roles moved meanwhile: the row */
                if (rc < 0)
                        return live_get_local(c, rc == -EAGAIN ? "?" : owner.name,
                                              rc == -EAGAIN ? "(store unreachable)"
                                                            : "has no valid lease");
                rc = cluster_forward_send_ms(&owner, "GET", c->r->url, c->project, c->is_operator,
                                             NULL, 0, 5000, &rep, msg, sizeof(msg));
                if (rc < 0 || rep.status < 100 || rep.status >= 500) {
                        if (rc == 0)
                                cluster_reply_free(&rep);
                        return live_get_local(c, owner.name,
                                              msg[0] ? msg : "answered with an error");
                }
                return api_forward_relay(c, &rep);
        }
        /* A failover that reached a node other than production's was
         * forwarded because production did not answer (handoff.c). */
        if (c->forwarded && api_handoff_is_failover(c, pattern))
                return api_handoff_route(c, az);
        if (c->forwarded)
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, "Retry-After: 1",
                                        "this request for %s was forwarded to node %s, which "
                                        "does not serve %s; retry the request",
                                        az, cluster_node_name(), az) < 0
                           ? -1
                           : 1;
        if (rc == -EAGAIN)
                return api_reply_errno(c, rc, NULL) < 0 ? -1 : 1;
        if (rc == -EHOSTDOWN && api_handoff_is_failover(c, pattern))
                return api_handoff_route(c, az); /* failover from the survivor */
        if (rc == -EHOSTDOWN) {
                snprintf(retry, sizeof(retry), "Retry-After: %d", remaining > -5 ? 5 : 30);
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, retry,
                                        "node %s, which serves %s, has no valid lease (it lapsed "
                                        "%.0f s ago): it is down or cut off from the store; "
                                        "retry when it is back",
                                        owner.name, az, -remaining) < 0
                           ? -1
                           : 1;
        }
        if (fwd_path_of(c->r, c->r->url, &fp) < 0)
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                        "the query string is too long to forward") < 0
                           ? -1
                           : 1;
        rc = cluster_forward_send(&owner, c->r->method, fp.buf, c->project, c->is_operator,
                                  c->r->body, c->r->body_len, &rep, msg, sizeof(msg));
        if (rc == -EHOSTUNREACH || (rc == 0 && rep.status < 100)) {
                if (rc == 0)
                        cluster_reply_free(&rep);
                log_warn("%s: node %s (%s) unreachable at %s: %s", c->r->req_id, owner.name, az,
                         owner.api_url, msg);
                if (api_handoff_is_failover(c, pattern))
                        return api_handoff_route(c, az); /* failover from the survivor */
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, "Retry-After: 5",
                                        "node %s, which serves %s, cannot be reached (%s); "
                                        "retry later",
                                        owner.name, az, msg) < 0
                           ? -1
                           : 1;
        }
        if (rc < 0)
                return api_reply_errno(c, rc, NULL) < 0 ? -1 : 1;
        log_info("%s: %s %s forwarded to node %s (%s): HTTP %ld", c->r->req_id, c->r->method,
                 c->r->url, owner.name, az, rep.status);
        return api_forward_relay(c, &rep);
}

int api_forward_relay(struct api_call *c, struct cluster_reply *rep)
{
        char retry[48];
        int rc;

        if (rep->retry_after[0])
                snprintf(retry, sizeof(retry), "Retry-After: %s", rep->retry_after);
        rc = http_reply_relay(c->r, (unsigned)rep->status, rep->content_type, rep->body, rep->len,
                              rep->retry_after[0] ? retry : NULL);
        cluster_reply_free(rep);
        return rc < 0 ? -1 : 1;
}

/* The outgoing links of node nd for the node list: this node's from its
 * own monitor; another node's asked over the internal channel (3 s at
 * most), so the list shows what the link's owner knows now. A node whose
 * lease lapsed is not asked. Sets "links" (an array, or null when unknown)
 * and, when unknown, "links_error" saying why. */
static void node_links_add(struct api_call *c, json_t *entry, const struct store_node *nd,
                           bool lease_valid)
{
        char path[160], msg[256] = "";
        struct cluster_reply rep;
        json_t *links = NULL, *ans;
        int rc;

        if (strcmp(nd->name, cluster_node_name()) == 0) {
                links = api_links_json(c);
                snprintf(msg, sizeof(msg), "cannot read the link state");
        } else if (!lease_valid) {
                snprintf(msg, sizeof(msg), "not asked: the node's lease lapsed");
        } else {
                snprintf(path, sizeof(path), "/v2/%s/os-evsrep-links", c->project);
                rc = cluster_forward_send_ms(nd, "GET", path, c->project, true, NULL, 0, 3000, &rep,
                                             msg, sizeof(msg));
                if (rc == 0) {
                        ans = rep.status == 200 ? json_loadb(rep.body, rep.len, 0, NULL) : NULL;
                        links = json_incref(json_object_get(ans, "links"));
                        if (!json_is_array(links)) {
                                json_decref(links);
                                links = NULL;
                                snprintf(msg, sizeof(msg), "the node answered HTTP %ld",
                                         rep.status);
                        }
                        json_decref(ans);
                        cluster_reply_free(&rep);
                } else {
                        char why[200];

                        snprintf(why, sizeof(why), "%.199s", msg);
                        snprintf(msg, sizeof(msg), "cannot be reached: %.199s", why);
                }
        }
        json_object_set_new(entry, "links", links ? links : json_null());
        if (!links)
                json_object_set_new(entry, "links_error", json_string(msg));
}

/* GET /v2/{project}/os-evsrep-nodes (operator only). */
int api_nodes_list(struct api_call *c)
{
        struct store *st = service_store(c->ctx->svc);
        struct store_node *list = NULL;
        size_t n = 0;
        int64_t now;
        json_t *arr, *body, *entry;
        int rc;

        if (!c->is_operator)
                return http_reply_error(c->r, HTTP_ERR_FORBIDDEN, NULL,
                                        "the node list needs an operator token");
        if ((rc = store_node_list(st, &list, &n)) < 0 || (rc = store_now_usec(st, &now)) < 0) {
                free(list);
                return api_reply_errno(c, rc, NULL);
        }
        arr = json_array();
        for (size_t i = 0; i < n; i++) {
                const struct store_node *nd = &list[i];
                json_t *azs = json_array(), *nbd = json_loads(nd->nbd_json, 0, NULL);
                double rem = nd->lease_until ? (double)(nd->lease_until - now) / 1e6 : 0;

                for (const char *p = nd->azs; *p;) {
                        size_t len = strcspn(p, ",");
                        json_array_append_new(azs, json_stringn(p, len));
                        p += len + (p[len] == ',');
                }
                entry = json_pack("{s:s,s:o,s:s,s:o,s:f,s:b,s:o,s:o,s:I,s:b}", "name", nd->name,
                                  "availability_zones", azs, "api_url", nd->api_url, "nbd",
                                  nbd ? nbd : json_object(), "lease_remaining_seconds",
                                  (double)(int64_t)(rem * 1000) / 1000, "lease_valid",
                                  nd->lease_until > now, "started_at", api_time(nd->started_at),
                                  "updated_at", api_time(nd->updated_at), "roles_generation",
                                  (json_int_t)nd->roles_generation, "self",
                                  strcmp(nd->name, cluster_node_name()) == 0);
                if (entry) {
                        node_links_add(c, entry, nd, nd->lease_until > now);
                        json_array_append_new(arr, entry);
                }
        }
        free(list);
        body = json_pack("{s:o}", "nodes", arr);
        return http_reply_json(c->r, 200, body);
}
