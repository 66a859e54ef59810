/* SQLite backend: group_throttles, a group's resync throttle setting
 * (store.h). Changed by hand (prepared per call); read on every GET of a
 * group (kept prepared: the parser was in the GET's profile). */
#include "store/store_sqlite_internal.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>

static const char THROTTLE_GET_SQL[] = "SELECT max_bps, min_bps, adaptive, updated_at FROM "
                                       "group_throttles WHERE group_id = ?1";

int store_sqlite_group_throttle_get(struct store *base, const char *group_id,
                                    struct store_group_throttle *out)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        store_sqlite_lock(base);
        r = store_sqlite_prepare_cached(base, THROTTLE_GET_SQL, &st, "group throttle get");
        if (r == 0) {
                sqlite3_bind_text(st, 1, group_id, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        memset(out, 0, sizeof(*out));
                        snprintf(out->group_id, sizeof(out->group_id), "%s", group_id);
                        out->max_bps = sqlite3_column_int64(st, 0);
                        out->min_bps = sqlite3_column_int64(st, 1);
                        out->adaptive = sqlite3_column_int(st, 2) != 0;
                        out->updated_at = sqlite3_column_int64(st, 3);
                } else {
                        r = rc == SQLITE_DONE ? -ENOENT
                                              : store_sqlite_map(base, rc, "group throttle get");
                }
        }
        store_sqlite_release(st);
        store_sqlite_unlock(base);
        return r;
}

int store_sqlite_group_throttle_set(struct store *base, const struct store_group_throttle *t)
{
        sqlite3_stmt *st = NULL;
        int r;

        store_sqlite_lock(base);
        r = store_sqlite_prepare(
            base,
            "INSERT INTO group_throttles (group_id, max_bps, min_bps, adaptive, updated_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (group_id) DO UPDATE SET "
            "max_bps = excluded.max_bps, min_bps = excluded.min_bps, "
            "adaptive = excluded.adaptive, updated_at = excluded.updated_at",
            &st, "group throttle set");
        if (r == 0) {
                BIND_STR(st, 1, t->group_id);
                sqlite3_bind_int64(st, 2, t->max_bps);
                sqlite3_bind_int64(st, 3, t->min_bps);
                sqlite3_bind_int(st, 4, t->adaptive ? 1 : 0);
                sqlite3_bind_int64(st, 5, t->updated_at ? t->updated_at : util_now_usec());
                r = store_sqlite_row_write(base, st, false, false, "group throttle set",
                                           t->group_id);
        }
        sqlite3_finalize(st);
        store_sqlite_unlock(base);
        return r;
}
