/* Static route table, auth rules (401 before anything, even before the body
 * is read: admit(); 403 for another project, 404 for another project's
 * resources), /metrics visibility and shared helpers. */
#include "api/api.h"
#include "api/internal.h"
#include "metrics/metrics.h"
#include "auth/auth.h"
#include "cluster/cluster.h"
#include "common/log.h"
#include "common/util.h"
#include "config/config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_SEGS 6

struct route {
        const char *method;
        const char *pattern; /* segments after /v2/{project}/ ; "{id}" captures */
        api_handler fn;
};

/* Literal segments before {id}: "volumes/detail" must win over "volumes/{id}". */
static const struct route g_routes[] = {
    {"GET", "volumes", api_volumes_list},
    {"POST", "volumes", api_volumes_create},
    {"GET", "volumes/detail", api_volumes_detail},
    {"GET", "volumes/{id}", api_volumes_get},
    {"DELETE", "volumes/{id}", api_volumes_delete},
    {"POST", "volumes/{id}/action", api_volumes_action},
    {"GET", "os-vendor-replications", api_pairs_list},
    {"POST", "os-vendor-replications", api_pairs_create},
    {"GET", "os-vendor-replications/detail", api_pairs_list},
    {"GET", "os-vendor-replications/{id}", api_pairs_get},
    {"DELETE", "os-vendor-replications/{id}", api_pairs_delete},
    {"GET", "os-vendor-replication-consistency-groups", api_groups_list},
    {"POST", "os-vendor-replication-consistency-groups", api_groups_create},
    {"GET", "os-vendor-replication-consistency-groups/detail", api_groups_list},
    {"GET", "os-vendor-replication-consistency-groups/{id}", api_groups_get},
    {"PUT", "os-vendor-replication-consistency-groups/{id}", api_groups_update},
    {"DELETE", "os-vendor-replication-consistency-groups/{id}", api_groups_delete},
    {"POST", "os-vendor-replication-consistency-groups/{id}/action", api_groups_action},
    /* evsrep extension (docs/api.md §4.8): dry-run estimate of an action */
    {"GET", "os-vendor-replication-consistency-groups/{id}/estimate", api_groups_estimate},
    /* quotas: {project} is a project id, not a UUID resource id */
    {"GET", "os-quota-sets/{project}", api_quotas_get},
    {"PUT", "os-quota-sets/{project}", api_quotas_update},
    {"DELETE", "os-quota-sets/{project}", api_quotas_delete},
    {"GET", "os-quota-sets/{project}/defaults", api_quotas_defaults},
    /* evsrep extension (docs/api.md): the cluster's nodes, operator only */
    {"GET", "os-evsrep-nodes", api_nodes_list},
    /* node to node only (api/links.c): 404 unless forwarded */
    {"POST", "os-evsrep-links/{id}/grow", api_links_grow},
    {"GET", "os-evsrep-links", api_links_list},
    {"POST", "os-evsrep-links/{id}/sidecar", api_links_sidecar},
    {"POST", "os-evsrep-links/{id}/release", api_links_release},
    {"GET", "os-evsrep-divergence/{id}", api_handoff_divergence},
    {"POST", "os-evsrep-takeover/{id}", api_handoff_takeover},
};

/* Requests from another node (cluster/forward.c): "/internal" + the path. */
#define INTERNAL_PREFIX "/internal/"

/* Metrics route labels: "/v2/{project}/" + pattern per table entry (built
 * once at start), "/metrics", and "other" for every unmatched path, so the
 * set is fixed and no request can add a series. */
#define ROUTE_LABEL_MAX 128
static char g_route_labels[ARRAY_SIZE(g_routes)][ROUTE_LABEL_MAX];
static pthread_once_t g_route_labels_once = PTHREAD_ONCE_INIT;
/* Each pattern split once (match() ran split() on it for every route of
 * every request, twice per request: a tenth of a cached GET's CPU). */
static struct {
        int n;
        char seg[MAX_SEGS][128];
        bool capture[MAX_SEGS]; /* "{id}" or "{project}" */
} g_route_segs[ARRAY_SIZE(g_routes)];

static int split(const char *path, char segs[MAX_SEGS][128]);

static void route_labels_init(void)
{
        for (size_t i = 0; i < ARRAY_SIZE(g_routes); i++) {
                char p[MAX_SEGS][128];
                int n = split(g_routes[i].pattern, p);

                snprintf(g_route_labels[i], sizeof(g_route_labels[i]), "/v2/{project}/%s",
                         g_routes[i].pattern);
                g_route_segs[i].n = n;
                for (int k = 0; k < n; k++) {
                        memcpy(g_route_segs[i].seg[k], p[k], sizeof(p[k]));
                        g_route_segs[i].capture[k] =
                            strcmp(p[k], "{id}") == 0 || strcmp(p[k], "{project}") == 0;
                }
        }
}

struct api_server {
        struct api_ctx ctx;
};

static int split(const char *path, char segs[MAX_SEGS][128])
{
        int n = 0;

        while (*path == '/')
                path++;
        while (*path) {
                size_t len = strcspn(path, "/");
                if (n == MAX_SEGS || len >= 128)
                        return -1;
                memcpy(segs[n], path, len);
                segs[n][len] = '\0';
                n++;
                path += len;
                while (*path == '/')
                        path++;
        }
        return n;
}

/* Does route r's pattern match segs[2..]? Captures {id} and {project}
 * (into id). */
static bool match(size_t r, char segs[MAX_SEGS][128], int nsegs, char *id, size_t idlen)
{
        int np = g_route_segs[r].n;

        if (np != nsegs - 2)
                return false;
        for (int i = 0; i < np; i++)
                if (!g_route_segs[r].capture[i] && strcmp(g_route_segs[r].seg[i], segs[i + 2]) != 0)
                        return false;
        for (int i = 0; i < np; i++)
                if (g_route_segs[r].capture[i]) {
                        /* no snprintf: every request matches routes twice */
                        size_t n = strnlen(segs[i + 2], idlen - 1);

                        memcpy(id, segs[i + 2], n);
                        id[n] = '\0';
                }
        return true;
}

static bool accept_ok(const char *accept)
{
        if (!accept || !*accept)
                return true;
        return strstr(accept, "application/json") || strstr(accept, "*/*") ||
               strstr(accept, "application/*");
}

/* The metrics label of a request's path (see g_route_labels). */
static const char *route_label(const char *url)
{
        char segs[MAX_SEGS][128];
        int n;

        if (strcmp(url, "/metrics") == 0)
                return "/metrics";
        n = split(url, segs);
        if (n >= 3 && strcmp(segs[0], "v2") == 0) {
                for (size_t i = 0; i < ARRAY_SIZE(g_routes); i++) {
                        char id[64];
                        if (match(i, segs, n, id, sizeof(id)))
                                return g_route_labels[i];
                }
        }
        return "other";
}

/* The client's token: X-Auth-Token (OpenStack clients), else an
 * `Authorization: Bearer <token>` header (what Prometheus' `authorization`
 * scrape setting sends). NULL when neither is there. */
static const char *request_token(const struct http_req *r)
{
        const char *t = http_header(r, "X-Auth-Token");
        const char *a;

        if (t)
                return t;
        a = http_header(r, "Authorization");
        if (!a || strncasecmp(a, "Bearer ", 7) != 0)
                return NULL;
        a += 7;
        a += strspn(a, " ");
        return *a ? a : NULL;
}

static int reply_unauthorized(struct http_req *r, const char *token)
{
        return http_reply_error(r, HTTP_ERR_UNAUTHORIZED, NULL,
                                token ? "the X-Auth-Token is not valid"
                                      : "the X-Auth-Token header (or Authorization: Bearer) is "
                                        "required");
}

/* GET /metrics. Who sees what (docs/operations.md, "Metrics and alerts"):
 * an operator token every project's series; a tenant token the
 * service-wide series and its own project's pairs and groups; no token
 * (metrics_public) the service-wide series only, never a project's ids. */
static int serve_metrics(struct http_req *r, struct api_ctx *ctx, const char *project,
                         bool is_operator)
{
        struct metrics_view view = {.scope = METRICS_SERVICE};
        char *buf = NULL;
        size_t len = 0;
        int rc;

        if (strcmp(r->method, "GET") != 0)
                return http_reply_error(r, HTTP_ERR_METHOD, "Allow: GET",
                                        "method %s is not allowed on /metrics (allowed: GET)",
                                        r->method);
        if (project) {
                view.scope = is_operator ? METRICS_ALL : METRICS_PROJECT;
                view.project = project;
        }
        if ((rc = metrics_render(ctx->svc, &view, &buf, &len)) < 0) {
                free(buf);
                return http_reply_error(r, HTTP_ERR_INTERNAL, NULL, "cannot render metrics");
        }
        rc = http_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
        free(buf);
        return rc;
}

/* Headers are in, no body byte read yet: refuse an unauthenticated request
 * now, so its body is never buffered (http.h, http_admit_fn). */
static int admit(struct http_req *r, void *vctx)
{
        struct api_ctx *ctx = vctx;
        const char *token = request_token(r);
        bool is_operator;

        r->route = route_label(r->url);
        /* Node-to-node: the signature is checked with the body in dispatch;
         * without one, the path does not exist. */
        if (strncmp(r->url, INTERNAL_PREFIX, strlen(INTERNAL_PREFIX)) == 0) {
                if (http_header(r, "X-Evsrep-Signature"))
                        return 0;
                return http_reply_error(r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s", r->url) <
                               0
                           ? -1
                           : 1;
        }
        if (token && auth_lookup_role(ctx->auth, token, &is_operator))
                return 0;
        if (api_ui_path(r->url)) /* the status page holds no data (ui.c) */
                return api_ui_admit(r);
        if (strcmp(r->url, "/metrics") == 0 && service_config(ctx->svc)->metrics_public)
                return 0;
        return reply_unauthorized(r, token) < 0 ? -1 : 1;
}

static int dispatch(struct http_req *r, void *vctx)
{
        struct api_ctx *ctx = vctx;
        char segs[MAX_SEGS][128];
        char allow[128];
        const struct route *hit = NULL;
        const char *token = request_token(r);
        bool is_operator = false;
        const char *project = NULL, *url = r->url;
        struct api_call c = {.r = r, .ctx = ctx};
        struct api_cache_build cb;
        unsigned others = 0; /* routes of this path with another method */
        int n;

        /* Offered on the pool thread (http.h): a node-to-node request goes
         * to the executor untouched (its nonce is checked once). */
        if (r->try_inline && strncmp(url, INTERNAL_PREFIX, strlen(INTERNAL_PREFIX)) == 0)
                return HTTP_DEFER;
        if (strncmp(url, INTERNAL_PREFIX, strlen(INTERNAL_PREFIX)) == 0) {
                /* A request forwarded by another node: the project and role
                 * it authenticated are inside the signed part. Any failure
                 * looks like an unknown path to the sender. */
                struct cluster_auth_hdrs h = {.node = http_header(r, "X-Evsrep-Node"),
                                              .timestamp = http_header(r, "X-Evsrep-Timestamp"),
                                              .nonce = http_header(r, "X-Evsrep-Nonce"),
                                              .project = http_header(r, "X-Evsrep-Project"),
                                              .role = http_header(r, "X-Evsrep-Role"),
                                              .signature = http_header(r, "X-Evsrep-Signature")};
                char why[160] = "the path and query are too long", signed_path[2048];

                url += strlen(INTERNAL_PREFIX) - 1;
                /* The signature covers the path and the query. */
                if (api_forward_signed_path(r, url, signed_path, sizeof(signed_path)) < 0 ||
                    cluster_forward_verify(r->method, signed_path, r->body, r->body_len, &h, why,
                                           sizeof(why)) < 0) {
                        log_warn("%s: internal request refused: %s", r->req_id, why);
                        return http_reply_error(r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s",
                                                r->url);
                }
                project = h.project;
                is_operator = strcmp(h.role, "operator") == 0;
                c.forwarded = true;
                log_info("%s: %s %s forwarded by node %s", r->req_id, r->method, url, h.node);
        } else if (token) {
                project = auth_lookup_role(ctx->auth, token, &is_operator);
        }
        c.is_operator = is_operator;

        /* admit() already refused unauthenticated requests; checked again
         * so this function is safe on its own. */
        if (strcmp(url, "/metrics") == 0 && (project || service_config(ctx->svc)->metrics_public))
                return serve_metrics(r, ctx, project, is_operator);
        if (api_ui_path(r->url))
                return api_ui_serve(r);
        if (!project)
                return reply_unauthorized(r, token);
        n = split(url, segs);
        if (n >= 3 && strcmp(segs[0], "v2") == 0) {
                for (size_t i = 0; i < ARRAY_SIZE(g_routes) && !hit; i++) {
                        if (strcmp(g_routes[i].method, r->method) == 0) {
                                if (match(i, segs, n, c.id, sizeof(c.id)))
                                        hit = &g_routes[i];
                        } else if (!others) { /* for a 405 only: no capture */
                                char id[128];

                                others = match(i, segs, n, id, sizeof(id));
                        }
                }
        }
        allow[0] = '\0';
        if (!hit && others) { /* the Allow header: only now */
                for (size_t i = 0; i < ARRAY_SIZE(g_routes); i++) {
                        char id[128];

                        if (match(i, segs, n, id, sizeof(id)) &&
                            !strstr(allow, g_routes[i].method)) {
                                size_t l = strlen(allow);

                                snprintf(allow + l, sizeof(allow) - l, "%s%s", l ? ", " : "",
                                         g_routes[i].method);
                        }
                }
        }
        if (!hit && allow[0]) {
                char hdr[160];
                snprintf(hdr, sizeof(hdr), "Allow: %s", allow);
                return http_reply_error(r, HTTP_ERR_METHOD, hdr,
                                        "method %s is not allowed on %s (allowed: %s)", r->method,
                                        r->url, allow);
        }
        if (!hit)
                return http_reply_error(r, HTTP_ERR_NOT_FOUND, NULL, "no resource at %s", r->url);
        if (strcmp(segs[1], project) != 0)
                return http_reply_error(r, HTTP_ERR_FORBIDDEN, NULL,
                                        "the token does not grant access to project %s", segs[1]);
        if (!accept_ok(http_header(r, "Accept")))
                return http_reply_error(r, HTTP_ERR_NOT_ACCEPTABLE, NULL,
                                        "this API only produces application/json");
        if (r->body_len > 0) {
                const char *ct = http_header(r, "Content-Type");
                if (!ct || strncasecmp(ct, "application/json", 16) != 0)
                        return http_reply_error(r, HTTP_ERR_BAD_REQUEST, NULL,
                                                "the body must be sent as application/json");
        }
        c.project = project;
        if (strstr(hit->pattern, "{id}") && !util_uuid_valid(c.id))
                return http_reply_error(r, HTTP_ERR_NOT_FOUND, NULL,
                                        "'%.64s' is not a valid id (a lowercase UUID)", c.id);
        if (strstr(hit->pattern, "{project}") && !api_project_id_valid(c.id))
                return http_reply_error(r, HTTP_ERR_NOT_FOUND, NULL,
                                        "'%.64s' is not a valid project id (1..64 characters of "
                                        "A-Z, a-z, 0-9, '-', '_', '.')",
                                        c.id);
        if (r->try_inline) /* inline.c: answered here, or HTTP_DEFER */
                return api_inline_try(&c, hit->fn);
        /* The reply cache (cache_route.c): after every check above. */
        if ((n = api_cache_begin(&c, hit->fn, &cb)) != 0)
                return n < 0 ? -1 : 0;
        n = api_forward_route(&c, hit->pattern);
        if (n != 0) {
                api_cache_end(&c, &cb, false);
                return n < 0 ? -1 : 0;
        }
        n = hit->fn(&c);
        api_cache_end(&c, &cb, true);
        return n;
}

int api_reply_errno(struct api_call *c, int rc, const char *msg)
{
        switch (rc) {
        case -ENOENT:
                return http_reply_error(c->r, HTTP_ERR_NOT_FOUND, NULL, "%s",
                                        msg && *msg ? msg : "not found");
        case -EINVAL:
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL, "%s",
                                        msg && *msg ? msg : "bad request");
        case -EBUSY:
        case -EEXIST:
                return http_reply_error(c->r, HTTP_ERR_CONFLICT, NULL, "%s",
                                        msg && *msg ? msg : "conflict with the current state");
        case -EDQUOT: /* Cinder's OverQuota / VolumeLimitExceeded */
                return http_reply_error(c->r, HTTP_ERR_TOO_LARGE, NULL, "%s",
                                        msg && *msg ? msg : "quota exceeded");
        case -EFBIG: /* larger than the site's file system can hold */
                return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL, "%s",
                                        msg && *msg ? msg : "size too large for the site");
        case -ENOSPC: /* the site's free space times capacity_overcommit */
                return http_reply_error(c->r, HTTP_ERR_CONFLICT, NULL, "%s",
                                        msg && *msg ? msg : "not enough capacity at the site");
        case -EHOSTUNREACH: /* another node did not answer (multi-site) */
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, "Retry-After: 5", "%s",
                                        msg && *msg ? msg : "another node cannot be reached");
        case -EAGAIN: /* store busy or unreachable (store.h) */
                return http_reply_error(c->r, HTTP_ERR_UNAVAILABLE, "Retry-After: 1",
                                        "the metadata store is busy or unreachable; retry the "
                                        "request (%s)",
                                        c->r->req_id);
        default:
                log_error("%s: internal error %d (%s)", c->r->req_id, rc, strerror(-rc));
                return http_reply_error(c->r, HTTP_ERR_INTERNAL, NULL,
                                        "internal error (%s); see the log for %s", strerror(-rc),
                                        c->r->req_id);
        }
}

json_t *api_time(int64_t usec)
{
        char buf[UTIL_TIME_LEN];

        if (usec == 0)
                return json_null();
        util_time_format(usec, buf);
        return json_string(buf);
}

int api_list_parse(struct api_call *c, const char *const *filters, struct api_list *out)
{
        const char *v;
        char *end;

        memset(out, 0, sizeof(*out));
        out->q.project_id = c->project;
        out->q.sort_key = "created_at";
        if ((v = http_query(c->r, "limit"))) {
                long x = strtol(v, &end, 10);
                if (!*v || *end || x < 1 || x > 1000)
                        return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                                "limit must be an integer from 1 to 1000"),
                               1;
                out->q.limit = (int)x;
        }
        if ((v = http_query(c->r, "offset"))) {
                long long x = strtoll(v, &end, 10);
                if (!*v || *end || x < 0)
                        return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                                "offset must be an integer >= 0"),
                               1;
                out->q.offset = x;
        }
        if ((v = http_query(c->r, "sort_key"))) {
                static const char *const keys[] = {"created_at", "updated_at", "name", "status",
                                                   "id"};
                bool ok = false;
                for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                        if (strcmp(v, keys[i]) == 0) {
                                out->q.sort_key = keys[i];
                                ok = true;
                        }
                if (!ok)
                        return http_reply_error(
                                   c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                   "sort_key must be created_at, updated_at, name, status or id"),
                               1;
        }
        if ((v = http_query(c->r, "sort_dir"))) {
                if (strcmp(v, "asc") && strcmp(v, "desc"))
                        return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                                "sort_dir must be asc or desc"),
                               1;
                out->q.sort_asc = strcmp(v, "asc") == 0;
        }
        if ((v = http_query(c->r, "changes-since"))) {
                if (util_time_parse(v, &out->q.changes_since) < 0)
                        return http_reply_error(c->r, HTTP_ERR_BAD_REQUEST, NULL,
                                                "changes-since must look like "
                                                "YYYY-MM-DDTHH:MM:SS[.ffffff][Z]"),
                               1;
        }
        out->q.marker = http_query(c->r, "marker");
        for (size_t i = 0; filters && filters[i]; i++) {
                if ((v = http_query(c->r, filters[i])) &&
                    out->q.nfilters < ARRAY_SIZE(out->filters)) {
                        out->filters[out->q.nfilters].key = filters[i];
                        out->filters[out->q.nfilters].value = v;
                        out->q.nfilters++;
                }
        }
        out->q.filters = out->filters;
        return 0;
}

bool api_cache_wanted(const struct evsrep_config *cfg, struct store *st)
{
        return cfg->api_cache_entries > 0 && !store_is_shared(st);
}

int api_server_start(const struct evsrep_config *cfg, struct service *svc, struct auth *auth,
                     struct api_server **out, char *err, size_t errlen)
{
        struct api_server *s = calloc(1, sizeof(*s));
        int rc;

        if (!s)
                return -ENOMEM;
        s->ctx.svc = svc;
        s->ctx.auth = auth;
        /* Off with a shared store: other nodes' writes do not bump this
         * process's generation (docs/design/control-plane.md). */
        if (api_cache_wanted(cfg, service_store(svc)) &&
            !(s->ctx.cache = api_cache_new((size_t)cfg->api_cache_entries,
                                           (size_t)cfg->api_cache_mib * 1024 * 1024))) {
                free(s);
                return -ENOMEM;
        }
        pthread_once(&g_route_labels_once, route_labels_init);
        rc = http_server_start(
            &(struct http_opts){.host = cfg->listen_host,
                                .port = cfg->listen_port,
                                .threads = cfg->http_threads,
                                .max_conns = (unsigned)cfg->http_max_conns,
                                .max_conns_per_ip = (unsigned)cfg->http_max_conns_per_ip,
                                .timeout_sec = (unsigned)cfg->http_timeout_sec,
                                .tls_cert = cfg->tls_cert[0] ? cfg->tls_cert : NULL,
                                .tls_key = cfg->tls_key[0] ? cfg->tls_key : NULL},
            admit, dispatch, &s->ctx, &s->ctx.http, err, errlen);
        if (rc < 0) {
                api_cache_free(s->ctx.cache);
                free(s);
                return rc;
        }
        *out = s;
        return 0;
}

int api_server_port(const struct api_server *s)
{
        return http_server_port(s->ctx.http);
}

const char *api_server_scheme(const struct api_server *s)
{
        return http_server_scheme(s->ctx.http);
}

void api_server_stop(struct api_server *s)
{
        if (!s)
                return;
        http_server_stop(s->ctx.http);
        api_cache_free(s->ctx.cache);
        free(s);
}
