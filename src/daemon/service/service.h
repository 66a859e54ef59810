/* Service layer: the state machines behind the API (volumes now; pairs and
 * groups join as service/pairs.c, service/groups.c). See
 * docs/design/control-plane.md for the transaction rule and lock order.
 *
 * Errors: 0 or -errno; -ENOENT not found (404), -EINVAL bad request (400),
 * -EBUSY state conflict (409); msg then holds the sentence for the client.
 * Requests that add volumes or GiB also answer -EDQUOT (a project quota,
 * 413), -EFBIG (a size the site's file system cannot hold, 400) and -ENOSPC
 * (the site's free space times capacity_overcommit, 409); see quotas.c. */
#ifndef EVSREP_SERVICE_H
#define EVSREP_SERVICE_H

#include "config/config.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct service;

int service_start(const struct evsrep_config *cfg, struct store *st, struct service **out);
/* Drain the task queue, unexport and close every volume. */
void service_stop(struct service *svc);
struct store *service_store(struct service *svc);
const struct evsrep_config *service_config(struct service *svc);

struct volume_create_req {
        const char *project_id, *name, *description, *availability_zone, *volume_type;
        const char *metadata_json;
        int64_t size_gib;
        bool multiattach;
};

/* Insert the row (status creating) into *out, then create the file on the
 * task thread (-> available, or error). */
int service_volume_create(struct service *svc, const struct volume_create_req *rq,
                          struct store_volume *out, char *msg, size_t msglen);
int service_volume_delete(struct service *svc, const char *project, const char *id, char *msg,
                          size_t msglen);
int service_volume_extend(struct service *svc, const char *project, const char *id,
                          int64_t new_size_gib, char *msg, size_t msglen);
/* Attachments (attachments.c; docs/design/nbd.md "Attachments").
 * attach: a new attachment of the volume for connector (canonical JSON,
 * "{}" when none); read_only asks for a read-only one. out->read_only also
 * reflects the volume's role. detach: revoke the attachments made with
 * connector, or all of the volume's when connector is NULL or "{}". */
struct attach_info {
        char id[STORE_ID_LEN];
        char export_name[STORE_EXPORT_LEN];
        char uri[512];
        bool read_only;
        /* NBD TLS on: the PSK identity (the attachment id) and key (hex);
         * "" when nbd_tls = off. */
        char tls_psk_identity[STORE_ID_LEN];
        char tls_psk_key[STORE_PSK_LEN];
};
int service_volume_attach(struct service *svc, const char *project, const char *id,
                          const char *connector, bool read_only, struct attach_info *out, char *msg,
                          size_t msglen);
int service_volume_detach(struct service *svc, const char *project, const char *id,
                          const char *connector, char *msg, size_t msglen);

/* Replication pairs (pairs.c). */
struct pair_create_req {
        const char *project_id, *name, *description, *priority_station;
        const char *volume_ids[2]; /* production, DR */
};
/* Validate against current state, insert the row (status creating) into
 * *out, then pair the volumes and start the initial sync on the task thread.
 * On a refused request *failure_detail holds the api.md number (or ""). */
int service_pair_create(struct service *svc, const struct pair_create_req *rq,
                        struct store_pair *out, char *failure_detail, char *msg, size_t msglen);
int service_pair_delete(struct service *svc, const char *project, const char *id, char *msg,
                        size_t msglen);

/* Live engine figures of a pair (false when it has no running mirror). */
struct pair_live {
        int progress;     /* 0..100 */
        const char *mode; /* sync, track, resync */
        uint64_t dirty_bytes, bytes_copied, rate_bps;
        uint64_t sidecar_bytes;     /* copy-on-write bytes since start (extension) */
        int fault_level;            /* 0, 2 (production file), 5 (DR side): probed now */
        const char *failure_detail; /* api.md number for the fault, or "" */
};
bool service_pair_live(struct service *svc, const char *id, struct pair_live *out);
/* What a reply built by service_pair_live was made from, as the reply
 * cache notes and re-reads it (zeroed, padding included, so two notes
 * compare bytewise): the engine's figures and error flags, the production
 * file's last I/O error, and the probes of files that are not watched
 * (a watched file's probe changes only with a generation bump). */
struct pair_live_note {
        bool ok; /* the pair has a running mirror */
        int progress, mode;
        uint64_t dirty_bytes, bytes_copied, rate_bps, sidecar_bytes;
        bool prod_error, dr_error;
        int prod_last_error, prod_probe, dr_probe;
};
/* false when the pair's lock was busy (nothing read). */
bool service_pair_live_note(struct service *svc, const char *id, struct pair_live_note *n);

/* Mirror links (links.c; multi-site.md "Remote DR links"): grow the DR
 * volume this node serves of pair_id (project's) to size_bytes, for its
 * production node's extend (never shrinks; growing to the current size is
 * a no-op). -ENOENT when the pair's DR volume is not served here. */
int service_link_dr_grow(struct service *svc, const char *project, const char *pair_id,
                         uint64_t size_bytes, char *msg, size_t msglen);
/* Release the DR volume this node serves of pair_id (project's), which
 * its production node is deleting: link export revoked, sidecar dropped,
 * client access back (multi-site.md "Remote DR links", Delete). -EBUSY
 * when the pair is not being deleted, -ENOENT when it does not exist or
 * its DR volume is not served here. */
int service_link_dr_release(struct service *svc, const char *project, const char *pair_id,
                            char *msg, size_t msglen);

/* This node's outgoing DR links, one entry per peer zone (link_report.c;
 * multi-site.md "Link state in the node list"). state: "connected" (every
 * pair's link works), "reconnecting" (a reconnect failed; the monitor
 * retries with backoff_ms), "broken" (a link op failed, no reconnect tried
 * yet), "busy" (every pair was locked by an action: unknown now).
 * last_error: "" when every link works. *out malloc'd. */
struct service_link_peer {
        char node[STORE_NODE_NAME_LEN]; /* "" when no node names the zone */
        char availability_zone[STORE_AZ_LEN];
        char state[16];
        unsigned pairs, pairs_connected, pairs_busy, groups;
        char last_error[128];
        unsigned backoff_ms;
        int64_t next_retry_ms, down_ms;
};
int service_links_report(struct service *svc, struct service_link_peer **out, size_t *n);

/* Replication consistency groups (groups.c). Every function validates
 * against current state and answers -EINVAL (400), -ENOENT (404) or -EBUSY
 * (409) with a sentence in msg that names the state and what to do first. */
struct group_create_req {
        const char *project_id, *name, *description, *priority_station;
        const char *const *pair_ids;
        size_t npairs;
};
int service_group_create(struct service *svc, const struct group_create_req *rq,
                         struct store_group *out, char *msg, size_t msglen);

struct group_update_req {
        const char *name, *description; /* NULL: unchanged */
        const char *const *add;
        size_t nadd;
        const char *const *remove;
        size_t nremove;
};
int service_group_update(struct service *svc, const char *project, const char *id,
                         const struct group_update_req *rq, struct store_group *out, char *msg,
                         size_t msglen);
int service_group_delete(struct service *svc, const char *project, const char *id, char *msg,
                         size_t msglen);

enum group_action {
        GROUP_PAUSE,
        GROUP_SYNC,
        GROUP_FAILOVER,
        GROUP_REVERSE,
        GROUP_REPROTECT,
        GROUP_EXTEND,
};
struct group_extend_item {
        const char *pair_id;
        int64_t new_size_gib;
};
/* A pause of group id would change nothing (docs/design/control-plane.md
 * "The idempotent pause on the pool thread"): 1 when that is proven under
 * the group's and its members' locks, all taken without waiting; 0 when it
 * is not (run the action). Never waits, never writes. */
int service_group_pause_noop(struct service *svc, const char *project, const char *id);
/* Runs the action to completion as far as a caller can observe (api.md). */
int service_group_action(struct service *svc, const char *project, const char *id,
                         enum group_action action, const struct group_extend_item *items,
                         size_t nitems, char *msg, size_t msglen);

/* DR drill on a clone (clone.c; docs/design/replication.md "DR drill on a
 * clone"): one new writable volume per member, in the DR zone, holding the
 * group's consistent DR instant (the frozen image while paused or frozen by
 * a fault, else an instant taken now without stopping replication). The
 * volumes count against the project's quotas (-EDQUOT, 413). A group with
 * no consistent instant, or not available, is -EBUSY (409). */
struct group_clone_item {
        char volume_id[STORE_ID_LEN];
        char name[STORE_NAME_LEN];
        char pair_id[STORE_ID_LEN];
        char source_volume_id[STORE_ID_LEN];
        char availability_zone[STORE_AZ_LEN];
        char status[STORE_STATUS_LEN]; /* available (reflinked) or creating (copying) */
        const char *method;            /* "reflink" or "copy" */
        int64_t size_gib;
};
struct group_clone_result {
        int64_t instant;                /* wall clock usec */
        const char *source;             /* "active" (taken now) or "frozen" */
        int64_t fence_usec;             /* how long the production fences were up */
        struct group_clone_item *items; /* malloc'd, n items (free it) */
        size_t n;
};
/* prefix: names are "<prefix>-<DR volume name or id>"; NULL or "": "drill". */
int service_group_clone(struct service *svc, const char *project, const char *id,
                        const char *prefix, struct group_clone_result *out, char *msg,
                        size_t msglen);
/* A clone volume being copied: true and its progress (0..99). */
bool service_clone_progress(const char *volume_id, int *percent);
/* Prometheus text of the drill clones (service-wide counters). */
void service_clones_metrics_render(FILE *f);

/* Quotas (quotas.c). -1 is unlimited. */
struct quota_set {
        int64_t volumes, gigabytes;
};
/* The configured defaults. */
void service_quota_defaults(struct service *svc, struct quota_set *out);
/* A project's limits (its overrides over the defaults) and, when in_use is
 * not NULL, its usage. */
int service_quota_get(struct service *svc, const char *project, struct quota_set *limits,
                      struct quota_set *in_use);
/* Set the fields of rq that are >= -1 (others unchanged); *out: the new
 * limits. Authorisation is the caller's (operator tokens only). */
int service_quota_update(struct service *svc, const char *project, const struct quota_set *rq,
                         struct quota_set *out);
/* Drop a project's overrides: the defaults apply again. */
int service_quota_reset(struct service *svc, const char *project);

/* What a GET shows beyond the row: members, derived replication status,
 * fault, bytes resynced. ids is malloc'd (free it). */
struct group_view {
        char replication_status[STORE_STATUS_LEN];
        int fault_level;
        char failure_detail[32];
        char fault_message[256]; /* evsrep extension: which member faulted, what to do */
        int64_t frozen_at;       /* the members' common frozen instant, else the group's */
        uint64_t bytes_copied;
        char (*ids)[STORE_ID_LEN];
        size_t n;
};
int service_group_view(struct service *svc, const struct store_group *g, struct group_view *v);
/* semantics.md derivation: any error -> error; any copying -> copying; all
 * active -> active; all active-stopped (or none) -> active-stopped; else
 * inactive. */
const char *service_group_derive(const char *const *pair_statuses, size_t n);

#endif
