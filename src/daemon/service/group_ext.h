/* Group extensions of the service layer (evsrep extensions of the API,
 * docs/api.md §4.7 and §4.8): the resync throttle (throttle.c) and the
 * dry-run estimate of a sync, reprotect or reverse (estimate.c).
 * Errors as in service.h: -EINVAL (400), -ENOENT (404), msg says why. */
#ifndef EVSREP_SERVICE_GROUP_EXT_H
#define EVSREP_SERVICE_GROUP_EXT_H

#include "service/service.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- resync throttle (docs/design/replication.md "Resync throttle") ---- */

/* Rates in bytes per second; 0: no ceiling / no floor. */
struct group_throttle_setting {
        uint64_t max_bps, min_bps;
        bool adaptive;
};
/* Store the setting and apply it to the group's running resync at once.
 * Allowed in every group status. -EINVAL when min > max (both set). */
int service_group_throttle_set(struct service *svc, const char *project, const char *id,
                               const struct group_throttle_setting *set, char *msg, size_t msglen);

struct group_throttle_view {
        struct group_throttle_setting set; /* all 0 when never set */
        bool live;                         /* the figures below were read from the engine */
        uint64_t limit_bps;                /* limit in force now, 0: none */
        uint64_t rate_bps;                 /* data bytes copied per second now, 0: idle */
        uint64_t sync_rate_bps;            /* last measured resync rate, 0: unknown */
        bool busy;                         /* members_mu was held: live figures unknown */
};
/* Never waits behind a running group step: live is false (and busy true)
 * then. Notes what it read for the reply cache (common/replygen.h). */
int service_group_throttle_view(struct service *svc, const char *group_id,
                                struct group_throttle_view *v);
/* The live part of the view as the reply cache notes and re-reads it
 * (zeroed, padding included): false when members_mu was busy. */
struct group_throttle_note {
        bool live;
        uint64_t limit_bps, rate_bps, sync_rate_bps;
};
bool service_group_throttle_note(struct service *svc, const char *group_id,
                                 struct group_throttle_note *n);

/* ---- dry-run estimate ---- */

struct group_estimate_member {
        char pair_id[STORE_ID_LEN];
        uint64_t bytes, chunks, chunk_bytes;
        bool full_copy; /* its mirror is not running: a sync restarts it with every chunk dirty */
        /* reprotect of a member whose old production is on another node
         * (multi-site.md "Reprotect estimate"): OLD_NODE_INCLUDED when its
         * divergence was asked and is in bytes/chunks (old_node_chunks of
         * them not dirty here), OLD_NODE_UNKNOWN when that node could not
         * answer (not counted; the reprotect would refuse). */
        enum { OLD_NODE_NONE, OLD_NODE_INCLUDED, OLD_NODE_UNKNOWN } old_node;
        uint64_t old_node_chunks;
};
struct group_estimate {
        uint64_t bytes, chunks;
        uint64_t rate_bps; /* recently measured resync rate (bytes in sync / s), 0: unknown */
        bool allowed;      /* the group's state allows the action now */
        char refusal[512]; /* else the 409 sentence the action would get */
        char divergence_unknown[512]; /* "" or why an old node's divergence is not counted */
        struct group_estimate_member *members; /* malloc'd, n of them (free it) */
        size_t n;
};
/* action: GROUP_SYNC, GROUP_REPROTECT or GROUP_REVERSE (else -EINVAL). */
int service_group_estimate(struct service *svc, const char *project, const char *id,
                           enum group_action action, struct group_estimate *e, char *msg,
                           size_t msglen);

#endif
