/* PostgreSQL backend: group_throttles, a group's resync throttle setting
 * (store.h). */
#include "store/store_pg_internal.h"

#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

int store_pg_group_throttle_get(struct store *base, const char *group_id,
                                struct store_group_throttle *out)
{
        PGresult *res;
        int r;

        store_pg_lock(base);
        r = store_pg_read(base,
                          "SELECT max_bps, min_bps, adaptive, updated_at FROM group_throttles "
                          "WHERE group_id = $1",
                          1, &group_id, "group throttle get", &res);
        if (r == 0 && PQntuples(res) == 0)
                r = -ENOENT;
        if (r == 0) {
                memset(out, 0, sizeof(*out));
                snprintf(out->group_id, sizeof(out->group_id), "%s", group_id);
                out->max_bps = store_pg_col_int(res, 0, 0);
                out->min_bps = store_pg_col_int(res, 0, 1);
                out->adaptive = store_pg_col_int(res, 0, 2) != 0;
                out->updated_at = store_pg_col_int(res, 0, 3);
        }
        PQclear(res);
        store_pg_unlock(base);
        return r;
}

int store_pg_group_throttle_set(struct store *base, const struct store_group_throttle *t)
{
        char id[sizeof(t->group_id) + 1], mx[24], mn[24], ad[4], at[24];
        const char *p[5] = {id, mx, mn, ad, at};
        int r;

        snprintf(id, sizeof(id), "%.*s", (int)sizeof(t->group_id), t->group_id);
        snprintf(mx, sizeof(mx), "%" PRId64, t->max_bps);
        snprintf(mn, sizeof(mn), "%" PRId64, t->min_bps);
        snprintf(ad, sizeof(ad), "%d", t->adaptive ? 1 : 0);
        snprintf(at, sizeof(at), "%" PRId64, t->updated_at ? t->updated_at : util_now_usec());
        store_pg_lock(base);
        r = store_pg_write(base,
                           "INSERT INTO group_throttles (group_id, max_bps, min_bps, adaptive, "
                           "updated_at) VALUES ($1, $2::bigint, $3::bigint, $4::integer, "
                           "$5::bigint) ON CONFLICT (group_id) DO UPDATE SET "
                           "max_bps = EXCLUDED.max_bps, min_bps = EXCLUDED.min_bps, "
                           "adaptive = EXCLUDED.adaptive, updated_at = EXCLUDED.updated_at",
                           5, p, false, false, "group throttle set", id);
        store_pg_unlock(base);
        return r;
}
