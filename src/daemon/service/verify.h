/* Online verify of a replication consistency group (service part):
 * docs/design/replication.md "Online verify", docs/api.md §4.6. */
#ifndef EVSREP_SERVICE_VERIFY_H
#define EVSREP_SERVICE_VERIFY_H

#include "service/service.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define VERIFY_MAX_OFFSETS      256    /* mismatch offsets kept per member */
#define VERIFY_MAX_RATE_MIB_SEC 100000 /* the largest throttle accepted */

struct verify_req {
        bool repair;
        uint64_t max_rate_mib_per_sec; /* 0: unlimited */
};

enum verify_state { VERIFY_RUNNING, VERIFY_DONE, VERIFY_CANCELLED, VERIFY_FAILED };
const char *verify_state_name(enum verify_state st);

struct verify_member {
        char pair_id[STORE_ID_LEN];
        uint64_t chunk_bytes, chunks_total, chunks_done;
        uint64_t compared, skipped_dirty, mismatched, repaired;
        uint64_t offsets[VERIFY_MAX_OFFSETS]; /* byte offsets of mismatching chunks */
        size_t n_offsets;
        char error[192]; /* "" when the member was read to the end or not yet */
};

/* A copy of a group's last verify (service_verify_report). */
struct verify_report {
        enum verify_state state;
        bool repair;
        uint64_t max_rate_mib_per_sec;
        uint64_t chunks_total, chunks_done, bytes_done, rate_bps;
        uint64_t mismatched, repaired, skipped_dirty;
        int progress;                    /* 0..100 */
        int64_t started_at, finished_at; /* wall clock usec; finished 0 while running */
        char message[256];               /* why it was cancelled or failed */
        size_t n;
        struct verify_member *members; /* malloc'd, n entries */
};

/* Start a verify of the group in the background (202). -ENOENT (404),
 * -EBUSY (409: state, or one is running), -ENOMEM; msg says why. *out
 * (optional) receives the new run's report (free with verify_report_free). */
int service_group_verify(struct service *svc, const char *project, const char *id,
                         const struct verify_req *rq, struct verify_report *out, char *msg,
                         size_t msglen);
/* The group's last verify; false when it never had one (since start). */
bool service_verify_report(struct service *svc, const char *group_id, struct verify_report *out);
void verify_report_free(struct verify_report *r);

#endif
