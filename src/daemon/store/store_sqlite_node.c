/* SQLite backend: the nodes table (docs/design/store.md "Nodes and leases").
 * Node statements run at lease rate (seconds), so they are prepared per call
 * rather than kept with the fixed statements of store_sqlite.c. The store's
 * clock is this host's. */
#include "store/store_sqlite_internal.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_COLS "name, azs, api_url, nbd, lease_until, roles_generation, started_at, updated_at"

int store_sqlite_now_usec(struct store *base, int64_t *out)
{
        (void)base;
        *out = util_now_usec();
        return 0;
}

static void read_node(sqlite3_stmt *st, struct store_node *n)
{
        memset(n, 0, sizeof(*n));
        COL_STR(st, 0, n->name);
        COL_STR(st, 1, n->azs);
        COL_STR(st, 2, n->api_url);
        COL_STR(st, 3, n->nbd_json);
        n->lease_until = sqlite3_column_int64(st, 4);
        n->roles_generation = sqlite3_column_int64(st, 5);
        n->started_at = sqlite3_column_int64(st, 6);
        n->updated_at = sqlite3_column_int64(st, 7);
}

int store_sqlite_node_register(struct store *base, const struct store_node *n, int lease_ms)
{
        sqlite3_stmt *st = NULL;
        int64_t now = util_now_usec();
        int r;

        if (lease_ms <= 0 || n->name[0] == '\0')
                return -EINVAL;
        store_sqlite_lock(base);
        r = store_sqlite_prepare(
            base,
            "INSERT INTO nodes (name, azs, api_url, nbd, lease_until, started_at, "
            "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (name) DO "
            "UPDATE SET azs = excluded.azs, api_url = excluded.api_url, "
            "nbd = excluded.nbd, lease_until = excluded.lease_until, "
            "started_at = excluded.started_at, updated_at = excluded.updated_at",
            &st, "node register");
        if (r == 0) {
                BIND_STR(st, 1, n->name);
                BIND_STR(st, 2, n->azs);
                BIND_STR(st, 3, n->api_url);
                sqlite3_bind_text(st, 4, n->nbd_json[0] ? n->nbd_json : "{}", -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 5, now + (int64_t)lease_ms * 1000);
                sqlite3_bind_int64(st, 6, now);
                r = store_sqlite_row_write(base, st, false, false, "node register", n->name);
        }
        sqlite3_finalize(st);
        store_sqlite_unlock(base);
        return r;
}

int store_sqlite_node_get(struct store *base, const char *name, struct store_node *out)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        store_sqlite_lock(base);
        r = store_sqlite_prepare(base, "SELECT " NODE_COLS " FROM nodes WHERE name = ?1", &st,
                                 "node get");
        if (r == 0) {
                sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        read_node(st, out);
                else
                        r = rc == SQLITE_DONE ? -ENOENT : store_sqlite_map(base, rc, "node get");
        }
        sqlite3_finalize(st);
        store_sqlite_unlock(base);
        return r;
}

int store_sqlite_node_renew(struct store *base, const char *name, int64_t generation, int lease_ms,
                            int64_t *lease_until)
{
        sqlite3_stmt *st = NULL;
        struct store_node cur;
        int64_t now = util_now_usec(), until = lease_ms > 0 ? now + (int64_t)lease_ms * 1000 : 0;
        int r;

        if (lease_ms < 0)
                return -EINVAL;
        store_sqlite_lock(base);
        r = store_sqlite_prepare(base,
                                 "UPDATE nodes SET lease_until = ?1, updated_at = ?2 "
                                 "WHERE name = ?3 AND roles_generation = ?4",
                                 &st, "node renew");
        if (r == 0) {
                sqlite3_bind_int64(st, 1, until);
                sqlite3_bind_int64(st, 2, now);
                sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 4, generation);
                r = store_sqlite_row_write(base, st, false, true, "node renew", name);
        }
        sqlite3_finalize(st);
        /* Nothing touched: the row is gone, or its generation moved on. */
        if (r == -ENOENT && store_sqlite_node_get(base, name, &cur) == 0)
                r = -ESTALE;
        store_sqlite_unlock(base);
        if (r == 0 && lease_until)
                *lease_until = until;
        return r;
}

int store_sqlite_node_take_roles(struct store *base, const char *name, int64_t *remaining_usec)
{
        sqlite3_stmt *st = NULL;
        struct store_node cur;
        int64_t now = util_now_usec();
        int r;

        store_sqlite_lock(base);
        r = store_sqlite_prepare(base,
                                 "UPDATE nodes SET roles_generation = roles_generation + 1, "
                                 "lease_until = 0, updated_at = ?1 "
                                 "WHERE name = ?2 AND lease_until <= ?1",
                                 &st, "node take roles");
        if (r == 0) {
                sqlite3_bind_int64(st, 1, now);
                sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
                r = store_sqlite_row_write(base, st, false, true, "node take roles", name);
        }
        sqlite3_finalize(st);
        /* Nothing touched: no such node, or its lease is still valid. */
        if (r == -ENOENT && store_sqlite_node_get(base, name, &cur) == 0) {
                r = -EBUSY;
                if (remaining_usec)
                        *remaining_usec = cur.lease_until - now;
        }
        store_sqlite_unlock(base);
        return r;
}

int store_sqlite_node_list(struct store *base, struct store_node **out, size_t *n)
{
        sqlite3_stmt *st = NULL;
        struct store_node *rows = NULL, *grown;
        size_t cnt = 0, cap = 0;
        int rc, r;

        *out = NULL;
        *n = 0;
        store_sqlite_lock(base);
        r = store_sqlite_prepare(base, "SELECT " NODE_COLS " FROM nodes ORDER BY name", &st,
                                 "node list");
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (cnt == cap) {
                        cap = cap ? cap * 2 : 8;
                        grown = realloc(rows, cap * sizeof(*rows));
                        if (!grown) {
                                r = -ENOMEM;
                                break;
                        }
                        rows = grown;
                }
                read_node(st, &rows[cnt++]);
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = store_sqlite_map(base, rc, "node list");
        sqlite3_finalize(st);
        store_sqlite_unlock(base);
        if (r < 0) {
                free(rows);
                return r;
        }
        *out = cnt ? rows : NULL;
        if (!cnt)
                free(rows);
        *n = cnt;
        return 0;
}

int store_sqlite_node_delete(struct store *base, const char *name)
{
        sqlite3_stmt *st = NULL;
        int r;

        store_sqlite_lock(base);
        r = store_sqlite_prepare(base, "DELETE FROM nodes WHERE name = ?1", &st, "node delete");
        if (r == 0) {
                sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
                r = store_sqlite_row_write(base, st, true, true, "node delete", name);
        }
        sqlite3_finalize(st);
        store_sqlite_unlock(base);
        return r;
}
