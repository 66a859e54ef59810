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

#include <stdbool.h>
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

/* DR node, the internal route: create or keep the pair's sidecar; one
 * of an older generation than the open's is replaced, one of unknown
 * generation stamped with it (R6; generation 0: the open names none). */
int service_drcow_open(struct service *svc, const char *project, const char *pair_id,
                       uint64_t nchunks, uint64_t chunk_bytes, int64_t frozen_at,
                       uint64_t generation, char *msg, size_t msglen);
/* DR node, the internal route: S5 over the listed pairs, then delete. */
int service_drcow_discard(struct service *svc, const char *project, const char *const *pair_ids,
                          size_t n, char *msg, size_t msglen);
/* DR node, a link export granted for pair_id on DR volume volume_id in
 * site: reopen its sidecar if there is a file (S4). */
int service_drcow_load(struct service *svc, const char *site, const char *pair_id,
                       const char *volume_id);

/* DR node, the pair is gone: delete its sidecar, if any. */
void service_drcow_drop(struct service *svc, const char *site, const char *pair_id);

/* A failover onto this node (az: the DR disks' AZ, production from now
 * on): revoke pair p's link export, then roll its disk back from its
 * sidecar, if it has one whose resync had not completed (R5: its
 * generation above released, the group's count of completed resyncs; a
 * sidecar of unknown generation: unless rows_active, every member's row
 * said active). 1: rolled back (*frozen_at the instant), 0: nothing to roll
 * back (none, or released: folded later), -errno. The sidecar stays until
 * service_drcow_fold. */
int service_drcow_rollback(struct service *svc, const struct store_pair *p, const char *az,
                           uint64_t released, bool rows_active, int64_t *frozen_at);
/* The group's count of completed resyncs (R5), read by a failover before
 * anything is rolled back; -errno when the row cannot be read. */
int service_drcow_released(struct service *svc, const char *group_id, uint64_t *out);
/* After the mirror of p opened on this node (production in az): mark
 * every chunk the sidecar names dirty in m (durable), then delete the
 * sidecar (R3). 0 also when there is none. */
int service_drcow_fold(struct service *svc, const struct store_pair *p, const char *az,
                       struct mirror *m);

#endif
