/* Quotas and site capacity: what a request may add before a volume row is
 * inserted or grown. docs/operations.md "Quotas and capacity" is the
 * operator's view; docs/api.md "Quota sets" the client's.
 *
 * Rules kept here:
 * - Usage is never stored: it is counted from the volumes rows (any status,
 *   until the row is gone) inside the same store transaction as the insert or
 *   the size change it guards. The store serialises transactions, so two
 *   requests cannot both take the last slot, and usage cannot drift from the
 *   rows after a crash.
 * - Both volumes of a replication pair are volumes of the project: both
 *   count, and a group extend adds its size step twice.
 * - A limit lower than the current usage is allowed (an operator shrinking a
 *   project); it only refuses what would add to it.
 * - Capacity: a size the site's file system cannot hold as one file is a
 *   client mistake (-EFBIG, 400) checked outside the transaction (it is a
 *   property of the file system, not of the rows); the free-space check
 *   (-ENOSPC, 409) runs inside it, against the sizes provisioned on that
 *   site. */
#include "service/internal.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

void service_quota_defaults(struct service *svc, struct quota_set *out)
{
        out->volumes = svc->cfg->quota_volumes;
        out->gigabytes = svc->cfg->quota_gigabytes;
}

static void effective(struct service *svc, const struct store_quota *q, struct quota_set *out)
{
        service_quota_defaults(svc, out);
        if (q->volumes != STORE_QUOTA_DEFAULT)
                out->volumes = q->volumes;
        if (q->gigabytes != STORE_QUOTA_DEFAULT)
                out->gigabytes = q->gigabytes;
}

int service_quota_get(struct service *svc, const char *project, struct quota_set *limits,
                      struct quota_set *in_use)
{
        struct store_quota q;
        int rc = store_quota_get(svc->store, project, &q);

        if (rc < 0)
                return rc;
        effective(svc, &q, limits);
        if (in_use)
                rc = store_project_usage(svc->store, project, &in_use->volumes, &in_use->gigabytes);
        return rc;
}

int service_quota_update(struct service *svc, const char *project, const struct quota_set *rq,
                         struct quota_set *out)
{
        struct store_quota q;
        int rc;

        /* Read-modify-write of one row: in a transaction so that two
         * operators setting different keys both land. */
        if ((rc = store_tx_begin(svc->store)) < 0)
                return rc;
        rc = store_quota_get(svc->store, project, &q);
        if (rc == 0) {
                if (rq->volumes >= -1)
                        q.volumes = rq->volumes;
                if (rq->gigabytes >= -1)
                        q.gigabytes = rq->gigabytes;
                q.updated_at = util_now_usec();
                rc = store_quota_set(svc->store, &q);
        }
        if (rc < 0 || (rc = store_tx_commit(svc->store)) < 0) {
                store_tx_rollback(svc->store);
                return rc;
        }
        effective(svc, &q, out);
        log_info("quotas of project %s: volumes %lld, gigabytes %lld", project,
                 (long long)out->volumes, (long long)out->gigabytes);
        return 0;
}

int service_quota_reset(struct service *svc, const char *project)
{
        int rc = store_quota_delete(svc->store, project);

        if (rc == 0)
                log_info("quotas of project %s: back to the defaults", project);
        return rc;
}

int quota_check_tx(struct service *svc, const char *project, int64_t add_volumes, int64_t add_gib,
                   char *msg, size_t msglen)
{
        struct quota_set lim, use;
        int rc = service_quota_get(svc, project, &lim, &use);

        if (rc < 0) {
                snprintf(msg, msglen, "cannot read the quotas of project %s", project);
                return rc;
        }
        if (add_volumes > 0 && lim.volumes >= 0 && use.volumes + add_volumes > lim.volumes) {
                snprintf(msg, msglen,
                         "volume quota exceeded for project %s: the volumes quota is %lld and "
                         "%lld are in use; %lld more requested",
                         project, (long long)lim.volumes, (long long)use.volumes,
                         (long long)add_volumes);
                return -EDQUOT;
        }
        if (add_gib > 0 && lim.gigabytes >= 0 && use.gigabytes + add_gib > lim.gigabytes) {
                snprintf(msg, msglen,
                         "gigabytes quota exceeded for project %s: requested %lld GiB, the "
                         "gigabytes quota is %lld GiB and %lld GiB are in use",
                         project, (long long)add_gib, (long long)lim.gigabytes,
                         (long long)use.gigabytes);
                return -EDQUOT;
        }
        return 0;
}

int capacity_probe(struct service *svc, const char *az, int64_t size_gib, char *msg, size_t msglen)
{
        const struct site_cfg *s = config_site(svc->cfg, az);
        int rc;

        if (!s)
                return 0; /* the caller reports the unknown zone */
        rc = volume_fs_size_probe(s->dir, (uint64_t)size_gib * GIB);
        if (rc == -EFBIG) {
                snprintf(msg, msglen,
                         "a volume of %lld GiB is larger than the file system of availability "
                         "zone %s can hold as one file (%s); ask for a smaller size",
                         (long long)size_gib, az, s->dir);
                return -EFBIG;
        }
        if (rc < 0) /* not the client's mistake: the create/extend step reports it */
                log_warn("availability zone %s: cannot probe the maximum file size in %s: %s", az,
                         s->dir, strerror(-rc));
        return 0;
}

int capacity_check_tx(struct service *svc, const char *az, int64_t add_gib, char *msg,
                      size_t msglen)
{
        const struct site_cfg *s = config_site(svc->cfg, az);
        double ratio = svc->cfg->capacity_overcommit, free_gib, allowed_gib;
        struct statvfs fs;
        int64_t prov = 0;
        int rc;

        if (!s || ratio <= 0 || add_gib <= 0)
                return 0;
        if (statvfs(s->dir, &fs) < 0) {
                log_warn("availability zone %s: statvfs %s: %s", az, s->dir, strerror(errno));
                return 0; /* as above: the file step reports a real failure */
        }
        if ((rc = store_site_provisioned(svc->store, az, &prov)) < 0) {
                snprintf(msg, msglen, "cannot read the provisioned size of availability zone %s",
                         az);
                return rc;
        }
        free_gib = (double)fs.f_bavail * (double)fs.f_frsize / (double)GIB;
        allowed_gib = free_gib * ratio;
        if ((double)prov + (double)add_gib > allowed_gib) {
                snprintf(msg, msglen,
                         "availability zone %s has no room for %lld GiB more: %lld GiB are "
                         "provisioned there and it accepts at most %.1f GiB (%.1f GiB free x "
                         "capacity_overcommit %g)",
                         az, (long long)add_gib, (long long)prov, allowed_gib, free_gib, ratio);
                return -ENOSPC;
        }
        return 0;
}
