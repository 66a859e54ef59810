/* SQLite backend: groups.sidecars_released, the release record of a
 * group's remote sidecars (store.h; docs/design/replication.md "The
 * release record"). Written only here, by one statement. */
#include "store/store_sqlite_internal.h"

#include <errno.h>

int store_sqlite_group_release_bump(struct store *base, const char *group_id)
{
        sqlite3_stmt *st = NULL;
        int r;

        store_sqlite_lock(base);
        r = store_sqlite_prepare(base,
                                 "UPDATE groups SET sidecars_released = sidecars_released + 1 "
                                 "WHERE id = ?1",
                                 &st, "group release bump");
        if (r == 0) {
                sqlite3_bind_text(st, 1, group_id, -1, SQLITE_TRANSIENT);
                r = store_sqlite_row_write(base, st, false, true, "group release bump", group_id);
        }
        sqlite3_finalize(st);
        store_sqlite_unlock(base);
        return r;
}

int store_sqlite_group_release_get(struct store *base, const char *group_id, int64_t *out)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        store_sqlite_lock(base);
        r = store_sqlite_prepare(base, "SELECT sidecars_released FROM groups WHERE id = ?1", &st,
                                 "group release get");
        if (r == 0) {
                sqlite3_bind_text(st, 1, group_id, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        *out = sqlite3_column_int64(st, 0);
                else
                        r = rc == SQLITE_DONE ? -ENOENT
                                              : store_sqlite_map(base, rc, "group release get");
        }
        sqlite3_finalize(st);
        store_sqlite_unlock(base);
        return r;
}
