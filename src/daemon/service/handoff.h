/* Moving a mirror between nodes (handoff.c; docs/design/multi-site.md
 * "Failover from the survivor", "Moving a mirror between nodes"). */
#ifndef EVSREP_SERVICE_HANDOFF_H
#define EVSREP_SERVICE_HANDOFF_H

#include "service/service.h"
#include "service/states.h"

#include "engine/mirror.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct pair_rt;
struct store_pair;

/* The DR AZ of group_id (of its first member): 0, or -ENOENT (no group, no
 * member). */
int service_handoff_dr_az(struct service *svc, const char *project, const char *group_id, char *az,
                          size_t cap);
/* Failover of group_id carried out on this node, which serves its DR AZ,
 * while its production node is down. 0; -EBUSY with msg (the 409: the old
 * node's lease is still valid, *retry_sec set; or the state table);
 * -EALREADY when production is on this node (the ordinary failover runs);
 * -EIO with msg when the roles moved but a mirror could not be opened. */
int service_handoff_failover(struct service *svc, const char *project, const char *group_id,
                             int *retry_sec, char *msg, size_t msglen);
/* On the old production node: the dirty set of pair_id's kept meta file,
 * activity log folded in, as {"whole": false, "chunk_bytes", "size_bytes",
 * "dirty_chunks", "extents": [[offset, length], ...]} (bytes), or
 * {"whole": true} when the file is missing or damaged. */
int service_handoff_divergence(struct service *svc, const char *project, const char *pair_id,
                               json_t **out, char *msg, size_t msglen);
/* The divergence of p's old production node (the node serving p's DR AZ
 * now), asked over the internal channel: 0 with *root the answer of
 * service_handoff_divergence (its "extents" an array); -EBUSY with msg
 * when that node is down or cannot be reached; -EIO with msg on a bad
 * answer. node_name: the node asked ("?" when none serves the zone). */
int service_handoff_divergence_fetch(struct service *svc, const struct store_pair *p, json_t **root,
                                     char *node_name, size_t namecap, char *msg, size_t msglen);
/* Reprotect on the new production node: for every member whose DR volume
 * is on another node, OR that node's divergence into the local bitmap.
 * -EBUSY with msg while that node is unreachable. Member runtimes locked. */
int service_handoff_union(struct service *svc, const struct store_pair *ps, struct pair_rt **rt,
                          size_t n, char *msg, size_t msglen);
/* The fenced flag of p's DR volume cleared in the store (inside the
 * caller's transaction; the volume is on another node). */
int service_handoff_unfence_remote(struct service *svc, const struct store_pair *p);

/* Reverse and failover of a group whose members are mirrored to another
 * node, on the production node (the handoff table): spans says whether any
 * member is; swap fences, closes the mirrors keeping their meta files,
 * commits the roles (group via -> to), makes this node's disks read-only,
 * lowers the fences, then asks the new production node to take over.
 * -EBUSY with msg (409); -EHOSTUNREACH with msg when the roles moved but
 * the other node did not open its mirrors. Member runtimes locked, group
 * stripe held. */
bool service_handoff_spans(struct pair_rt **rt, size_t n);
int service_handoff_swap(struct service *svc, struct store_group *g, struct store_pair *ps,
                         struct pair_rt **rt, size_t n, bool failover, enum group_status via,
                         enum group_status to, char *msg, size_t msglen);
/* On the new production node: open the mirrors of group_id's members in
 * mode (internal route os-evsrep-takeover). */
int service_handoff_takeover(struct service *svc, const char *project, const char *group_id,
                             enum mirror_mode mode, char *msg, size_t msglen);

#endif
