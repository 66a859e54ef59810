/* Shared between the API's router and its resource handlers. */
#ifndef EVSREP_API_INTERNAL_H
#define EVSREP_API_INTERNAL_H

#include "api/cache.h"
#include "http/http.h"
#include "service/service.h"
#include "store/store.h"

#include <jansson.h>

struct api_ctx {
        struct service *svc;
        struct auth *auth;
        struct http_server *http;
        struct api_cache *cache; /* NULL: off (a shared store; cache.h) */
};

/* A matched request: the project from the path and the resource id. */
struct api_call {
        struct http_req *r;
        struct api_ctx *ctx;
        const char *project;
        bool is_operator; /* the token carries the operator role (auth.h) */
        bool forwarded;   /* came from another node (/internal/): never forwarded again */
        char id[128];     /* a path segment (router.c: at most 127 bytes) */
};

typedef int (*api_handler)(struct api_call *c);

/* Volumes. */
int api_volumes_create(struct api_call *c);
int api_volumes_list(struct api_call *c);
int api_volumes_detail(struct api_call *c);
int api_volumes_get(struct api_call *c);
int api_volumes_delete(struct api_call *c);
int api_volumes_action(struct api_call *c);
/* Pure parse + validation of a volume create body (fuzzed). */
int api_volume_create_parse(const char *body, size_t len, json_t **root,
                            struct volume_create_req *rq, char *msg, size_t msglen);

/* Replication pairs. */
int api_pairs_create(struct api_call *c);
int api_pairs_list(struct api_call *c);
int api_pairs_get(struct api_call *c);
int api_pairs_delete(struct api_call *c);
int api_pair_create_parse(const char *body, size_t len, json_t **root, struct pair_create_req *rq,
                          char *msg, size_t msglen);

/* The status page (ui.c): "/", "/ui" and "/ui/..." need no token. */
bool api_ui_path(const char *url);
/* Before the body: 0 to go on (GET, HEAD), 1 after a 405, negative on failure. */
int api_ui_admit(struct http_req *r);
int api_ui_serve(struct http_req *r);

/* Replication consistency groups. */
int api_groups_create(struct api_call *c);
int api_groups_list(struct api_call *c);
int api_groups_get(struct api_call *c);
int api_groups_update(struct api_call *c);
int api_groups_delete(struct api_call *c);
int api_groups_action(struct api_call *c);
/* Pure parsers (fuzzed). ids/add/rem/items: caller arrays of 256 entries. */
int api_group_create_parse(const char *body, size_t len, json_t **root, struct group_create_req *rq,
                           const char **ids, char *msg, size_t msglen);
int api_group_update_parse(const char *body, size_t len, json_t **root, struct group_update_req *rq,
                           const char **add, const char **rem, char *msg, size_t msglen);
/* The drill clone action (clone.c): 1 when body is that action (prefix
 * filled, "" when not given), 0 when it is another action, -EINVAL (400). */
int api_group_clone_parse(const char *body, size_t len, char *prefix, size_t cap, char *msg,
                          size_t msglen);
int api_group_clone(struct api_call *c, const char *prefix);
int api_group_action_parse(const char *body, size_t len, json_t **root, enum group_action *action,
                           struct group_extend_item *items, size_t *nitems, char *msg,
                           size_t msglen);

/* Group extensions (group_ext.c). throttle_try: the os-set-resync-throttle
 * action (replied, 0 or -1), or 1 when the body is another action. */
struct group_throttle_setting;
int api_groups_throttle_try(struct api_call *c);
int api_groups_estimate(struct api_call *c);
json_t *api_group_throttle_json(struct api_call *c, const char *group_id);
/* Pure parser (fuzzed): *mine false (and 0) when the body is not the
 * throttle action. */
int api_group_throttle_parse(const char *body, size_t len, json_t **root, bool *mine,
                             struct group_throttle_setting *out, char *msg, size_t msglen);
/* Online verify (verify.c, evsrep extension). parse: 1 when the body is
 * not an os-evsrep-verify action (fuzzed); verify_json: the group's
 * `verify` member (null when it never had one). */
struct verify_req;
int api_group_verify_parse(const char *body, size_t len, json_t **root, struct verify_req *rq,
                           char *msg, size_t msglen);
int api_groups_verify(struct api_call *c, const struct verify_req *rq);
json_t *api_group_verify_json(struct api_call *c, const char *group_id);
/* The same member as compact JSON text (malloc'd; NULL on allocation
 * failure): what the reply cache notes and re-reads. */
char *api_group_verify_text(struct service *svc, const char *group_id);

/* Multi-site (forward.c): forward a request whose data plane belongs to
 * another node's AZ. 0: carry it out here; 1: replied (forwarded, or 503);
 * -1: the reply failed. pattern is the matched route's. */
int api_forward_route(struct api_call *c, const char *pattern);
struct cluster_reply;
/* Reply to c with another node's answer (status, content type, Retry-After,
 * body), then free rep. 1, or -1 when the reply failed (as the route). */
int api_forward_relay(struct api_call *c, struct cluster_reply *rep);
/* The string a forwarded request's signature covers: path plus r's query
 * in canonical form (forward.c). 0, or -E2BIG when it does not fit cap. */
int api_forward_signed_path(const struct http_req *r, const char *path, char *buf, size_t cap);
/* GET os-evsrep-nodes: the nodes table (operator only). */
int api_nodes_list(struct api_call *c);
/* links.c: the DR node's side of a cross-node extend (internal only). */
int api_links_grow(struct api_call *c);
/* links.c: this node's outgoing DR links as the node list shows them (a
 * JSON array, NULL on allocation failure), and GET os-evsrep-links, the
 * same over the internal channel (internal only). */
json_t *api_links_json(struct api_call *c);
int api_links_list(struct api_call *c);
int api_links_sidecar(struct api_call *c);
/* links.c: the DR node's release of a pair being deleted (internal only). */
int api_links_release(struct api_call *c);
/* handoff.c: failover from the survivor (multi-site.md). is_failover: a
 * group failover request. route: its production node (prod_az) does not
 * answer: carry it out here (this node serves the DR AZ) or forward it to
 * the node that does; 1 when answered, -1 on a send error, 0 to run the
 * handler. divergence: GET os-evsrep-divergence/{pair id}, internal only. */
bool api_handoff_is_failover(const struct api_call *c, const char *pattern);
int api_handoff_route(struct api_call *c, const char *prod_az);
int api_handoff_divergence(struct api_call *c);
/* POST os-evsrep-takeover/{group id} {"mode": "sync"|"track"}: internal,
 * the new production node opens the group's mirrors (a handoff). */
int api_handoff_takeover(struct api_call *c);

/* Quota sets (quotas.c). */
int api_quotas_get(struct api_call *c);
int api_quotas_defaults(struct api_call *c);
int api_quotas_update(struct api_call *c);
int api_quotas_delete(struct api_call *c);
/* Pure parse + validation of a quota-set PUT body (fuzzed). Fields absent
 * from the body are left < -1 (unchanged). */
int api_quota_update_parse(const char *body, size_t len, struct quota_set *rq, char *msg,
                           size_t msglen);
/* A project id as a path segment: 1..64 of A-Z a-z 0-9 - _ . */
bool api_project_id_valid(const char *s);

/* The reply cache around a handler (cache_route.c): begin returns 1 when
 * it answered from the cache, -1 when that reply failed, 0 to run the
 * handler; end (always called after a 0, handled false when the handler
 * did not run) keeps the reply when it may. */
struct api_cache_build {
        bool on;
        uint64_t gen;
        struct api_cache_key key;
        struct replygen_rec rec;
        struct http_capture cap;
};
int api_cache_begin(struct api_call *c, api_handler fn, struct api_cache_build *b);
/* inline.c: a write offered on the pool thread (http.h, try_inline):
 * answered (0, or -1 when the reply failed) or HTTP_DEFER. */
int api_inline_try(struct api_call *c, api_handler fn);
void api_cache_end(struct api_call *c, struct api_cache_build *b, bool handled);

/* List query parameters -> store query (filters: allowed filter keys, NULL
 * terminated). Returns 0, or replies 400 itself and returns 1. */
struct api_list {
        struct store_list_query q;
        struct store_filter filters[8];
};
int api_list_parse(struct api_call *c, const char *const *filters, struct api_list *out);
/* Map a service/store errno to a reply with msg. */
int api_reply_errno(struct api_call *c, int rc, const char *msg);
/* Time or JSON null for 0. */
json_t *api_time(int64_t usec);

#endif
