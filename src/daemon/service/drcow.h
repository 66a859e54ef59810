/* The copy-on-write sidecar of a pair whose DR disk this node serves for a
 * production node elsewhere: docs/design/replication.md, sidecars, "Remote
 * links" (protocol, invariants R1-R3, crash table). The file is
 * <DR site dir>/pair-<id>.drcow in the format of engine/sidecar.c.
 *
 * Locks: one rwlock over the registry (preserves hold it shared for their
 * I/O; open, discard, rollback exclusively), then one mutex per sidecar
 * serialising its preserves. Nothing else is held inside. */
#ifndef EVSREP_SERVICE_DRCOW_H
#define EVSREP_SERVICE_DRCOW_H

#include "engine/mirror.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct service;
struct volume;

/* Both ends' hooks: the engine's remote open/discard (this node as
 * production) and the link export's preserve (this node as DR). */
void service_drcow_start(struct service *svc);
void service_drcow_stop(void);
/* The link export's preserve hook (nbd_link_hooks.preserve). */
int service_drcow_preserve(struct volume *v, uint64_t off, uint64_t len);

/* DR node, the internal route: create or keep the pair's sidecar. */
int service_drcow_open(struct service *svc, const char *project, const char *pair_id,
                       uint64_t nchunks, uint64_t chunk_bytes, int64_t frozen_at, char *msg,
                       size_t msglen);
/* DR node, the internal route: S5 over the listed pairs, then delete. */
int service_drcow_discard(struct service *svc, const char *project, const char *const *pair_ids,
                          size_t n, char *msg, size_t msglen);
/* DR node, a link export granted for pair_id on DR volume volume_id in
 * site: reopen its sidecar if there is a file (S4). */
int service_drcow_load(struct service *svc, const char *site, const char *pair_id,
                       const char *volume_id);

/* DR node, the pair is gone: delete its sidecar, if any. */
void service_drcow_drop(struct service *svc, const char *site, const char *pair_id);

/* Failover from the survivor, after the roles moved to az (this node):
 * roll pair p's disk in az back from its sidecar, if it has one. 1: rolled
 * back (*frozen_at the instant), 0: no sidecar, -errno. The sidecar stays
 * until service_drcow_fold. */
int service_drcow_rollback(struct service *svc, const struct store_pair *p, const char *az,
                           int64_t *frozen_at);
/* After the mirror of p opened on this node (production in az): mark
 * every chunk the sidecar names dirty in m (durable), then delete the
 * sidecar (R3). 0 also when there is none. */
int service_drcow_fold(struct service *svc, const struct store_pair *p, const char *az,
                       struct mirror *m);

#endif
