/* PostgreSQL backend: groups.sidecars_released, the release record of a
 * group's remote sidecars (store.h; docs/design/replication.md "The
 * release record"). Written only here, by one statement. */
#include "store/store_pg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int store_pg_group_release_bump(struct store *base, const char *group_id)
{
        char id[STORE_ID_LEN + 1];
        const char *p[1] = {id};
        int r;

        snprintf(id, sizeof(id), "%s", group_id);
        store_pg_lock(base);
        r = store_pg_write(base,
                           "UPDATE groups SET sidecars_released = sidecars_released + 1 "
                           "WHERE id = $1",
                           1, p, false, true, "group release bump", id);
        store_pg_unlock(base);
        return r;
}

int store_pg_group_release_get(struct store *base, const char *group_id, int64_t *out)
{
        PGresult *res;
        int r;

        store_pg_lock(base);
        r = store_pg_read(base, "SELECT sidecars_released FROM groups WHERE id = $1", 1, &group_id,
                          "group release get", &res);
        if (r == 0 && PQntuples(res) == 0)
                r = -ENOENT;
        if (r == 0)
                *out = store_pg_col_int(res, 0, 0);
        PQclear(res);
        store_pg_unlock(base);
        return r;
}
