/* PostgreSQL backend: the nodes table (docs/design/store.md "Nodes and
 * leases"). Every lease time is computed by the server (now(), the start of
 * the statement's transaction), so that every node compares lease_until with
 * one clock whatever the offsets between hosts. */
#include "store/store_pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_US    "(extract(epoch FROM now()) * 1000000)::bigint"
#define NODE_COLS "name, azs, api_url, nbd, lease_until, roles_generation, started_at, updated_at"

/* A struct string as a parameter, bounded by its array even without a NUL. */
#define PARAM_STR(buf, field) snprintf((buf), sizeof(buf), "%.*s", (int)sizeof(field), (field))

int store_pg_now_usec(struct store *base, int64_t *out)
{
        PGresult *res;
        int r;

        store_pg_lock(base);
        r = store_pg_read(base, "SELECT " NOW_US, 0, NULL, "store clock", &res);
        if (r == 0)
                *out = store_pg_col_int(res, 0, 0);
        PQclear(res);
        store_pg_unlock(base);
        return r;
}

static void read_node(PGresult *res, int row, struct store_node *n)
{
        memset(n, 0, sizeof(*n));
        COL_STR(res, row, 0, n->name);
        COL_STR(res, row, 1, n->azs);
        COL_STR(res, row, 2, n->api_url);
        COL_STR(res, row, 3, n->nbd_json);
        n->lease_until = store_pg_col_int(res, row, 4);
        n->roles_generation = store_pg_col_int(res, row, 5);
        n->started_at = store_pg_col_int(res, row, 6);
        n->updated_at = store_pg_col_int(res, row, 7);
}

int store_pg_node_register(struct store *base, const struct store_node *n, int lease_ms)
{
        char name[sizeof(n->name) + 1], azs[sizeof(n->azs) + 1], url[sizeof(n->api_url) + 1];
        char nbd[sizeof(n->nbd_json) + 1], ms[24];
        const char *p[5] = {name, azs, url, nbd, ms};
        int r;

        if (lease_ms <= 0 || n->name[0] == '\0')
                return -EINVAL;
        PARAM_STR(name, n->name);
        PARAM_STR(azs, n->azs);
        PARAM_STR(url, n->api_url);
        PARAM_STR(nbd, n->nbd_json);
        if (!nbd[0])
                snprintf(nbd, sizeof(nbd), "{}");
        snprintf(ms, sizeof(ms), "%d", lease_ms);
        store_pg_lock(base);
        r = store_pg_write(base,
                           "INSERT INTO nodes (name, azs, api_url, nbd, lease_until, started_at, "
                           "updated_at) VALUES ($1, $2, $3, $4, " NOW_US
                           " + $5::bigint * 1000, " NOW_US ", " NOW_US
                           ") ON CONFLICT (name) DO UPDATE SET azs = EXCLUDED.azs, "
                           "api_url = EXCLUDED.api_url, nbd = EXCLUDED.nbd, "
                           "lease_until = EXCLUDED.lease_until, started_at = EXCLUDED.started_at, "
                           "updated_at = EXCLUDED.updated_at",
                           5, p, false, false, "node register", name);
        store_pg_unlock(base);
        return r;
}

int store_pg_node_get(struct store *base, const char *name, struct store_node *out)
{
        PGresult *res;
        int r;

        store_pg_lock(base);
        r = store_pg_read(base, "SELECT " NODE_COLS " FROM nodes WHERE name = $1", 1, &name,
                          "node get", &res);
        if (r == 0 && PQntuples(res) == 0)
                r = -ENOENT;
        if (r == 0)
                read_node(res, 0, out);
        PQclear(res);
        store_pg_unlock(base);
        return r;
}

/* One autocommit UPDATE ... RETURNING, sent as a read: it takes neither the
 * cluster-wide write lock nor a transaction of the service, so a long
 * transaction on any node cannot delay a renewal (multi-site.md "Self-fence
 * as built"). The row lock orders it against a failover bumping the
 * generation: under READ COMMITTED an UPDATE that waited for that
 * transaction re-reads the row and matches nothing. Running it again after
 * a lost connection is harmless (it only moves lease_until forward). */
int store_pg_node_renew(struct store *base, const char *name, int64_t generation, int lease_ms,
                        int64_t *lease_until)
{
        char gen[24], ms[24];
        const char *p[3] = {name, gen, ms};
        struct store_node cur;
        PGresult *res = NULL;
        int r;

        if (lease_ms < 0)
                return -EINVAL;
        snprintf(gen, sizeof(gen), "%" PRId64, generation);
        snprintf(ms, sizeof(ms), "%d", lease_ms);
        store_pg_lock(base);
        r = store_pg_read(
            base,
            "UPDATE nodes SET lease_until = CASE WHEN $3::bigint = 0 THEN 0 ELSE "
            "" NOW_US " + $3::bigint * 1000 END, updated_at = " NOW_US
            " WHERE name = $1 AND roles_generation = $2::bigint RETURNING lease_until",
            3, p, "node renew", &res);
        if (r == 0 && PQntuples(res) == 0) {
                /* Nothing touched: the row is gone, or its generation moved on. */
                r = store_pg_node_get(base, name, &cur);
                r = r == 0 ? -ESTALE : r;
        } else if (r == 0 && lease_until) {
                *lease_until = store_pg_col_int(res, 0, 0);
        }
        PQclear(res);
        store_pg_unlock(base);
        return r;
}

/* The lapse is checked by the UPDATE itself, with the server's clock, under
 * the row lock: a renewal racing with it either commits first (then this
 * matches nothing: -EBUSY) or waits and then matches nothing (-ESTALE for
 * the renewing node). */
int store_pg_node_take_roles(struct store *base, const char *name, int64_t *remaining_usec)
{
        struct store_node cur;
        int64_t now;
        int r;

        store_pg_lock(base);
        r = store_pg_write(base,
                           "UPDATE nodes SET roles_generation = roles_generation + 1, "
                           "lease_until = 0, updated_at = " NOW_US " WHERE name = $1 AND "
                           "lease_until <= " NOW_US,
                           1, &name, false, true, "node take roles", name);
        if (r == -ENOENT && store_pg_node_get(base, name, &cur) == 0) {
                r = -EBUSY;
                if (remaining_usec && store_pg_now_usec(base, &now) == 0)
                        *remaining_usec = cur.lease_until - now;
        }
        store_pg_unlock(base);
        return r;
}

int store_pg_node_list(struct store *base, struct store_node **out, size_t *n)
{
        PGresult *res;
        int r, cnt;

        *out = NULL;
        *n = 0;
        store_pg_lock(base);
        r = store_pg_read(base, "SELECT " NODE_COLS " FROM nodes ORDER BY name", 0, NULL,
                          "node list", &res);
        cnt = r == 0 ? PQntuples(res) : 0;
        if (cnt > 0) {
                *out = calloc((size_t)cnt, sizeof(**out));
                if (!*out)
                        r = -ENOMEM;
                for (int i = 0; r == 0 && i < cnt; i++)
                        read_node(res, i, &(*out)[i]);
                if (r == 0)
                        *n = (size_t)cnt;
        }
        PQclear(res);
        store_pg_unlock(base);
        return r;
}

int store_pg_node_delete(struct store *base, const char *name)
{
        int r;

        store_pg_lock(base);
        r = store_pg_write(base, "DELETE FROM nodes WHERE name = $1", 1, &name, true, true,
                           "node delete", name);
        store_pg_unlock(base);
        return r;
}
