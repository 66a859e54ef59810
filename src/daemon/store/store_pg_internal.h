/* Between store_pg.c and store_pg_node.c (the nodes table): statements run
 * with store_pg.c's lock, connection-loss handling and write transactions,
 * and the node ops. Internal to src/daemon/store/. */
#ifndef EVSREP_STORE_PG_INTERNAL_H
#define EVSREP_STORE_PG_INTERNAL_H

#include "store/store_internal.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Result columns (text format): an integer, and a string into a struct
 * string cut to its array ("" for NULL). */
static inline int64_t store_pg_col_int(PGresult *res, int row, int col)
{
        return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

#define COL_STR(res, row, i, field) store_pg_col_str((res), (row), (i), (field), sizeof(field))
static inline void store_pg_col_str(PGresult *res, int row, int i, char *dst, size_t cap)
{
        const char *t = PQgetvalue(res, row, i);
        size_t n = strlen(t);

        if (n >= cap)
                n = cap - 1;
        memcpy(dst, t, n);
        dst[n] = '\0';
}

/* The backend's recursive lock (one per connection). */
void store_pg_lock(struct store *base);
void store_pg_unlock(struct store *base);
/* A read with n text parameters: 0 with *out (PQclear it), or a negative
 * errno; reconnects and retries once as every read of store_pg.c. */
int store_pg_read(struct store *base, const char *sql, int n, const char *const *params,
                  const char *what, PGresult **out);
/* A row write in its own write transaction (or under a savepoint inside the
 * caller's): -ENOENT when must_touch and no row changed. */
int store_pg_write(struct store *base, const char *sql, int n, const char *const *params,
                   bool is_delete, bool must_touch, const char *what, const char *id);

int store_pg_now_usec(struct store *base, int64_t *out);
int store_pg_node_register(struct store *base, const struct store_node *n, int lease_ms);
int store_pg_node_renew(struct store *base, const char *name, int64_t generation, int lease_ms,
                        int64_t *lease_until);
int store_pg_node_get(struct store *base, const char *name, struct store_node *out);
int store_pg_node_take_roles(struct store *base, const char *name, int64_t *remaining_usec);
int store_pg_node_list(struct store *base, struct store_node **out, size_t *n);
int store_pg_node_delete(struct store *base, const char *name);
/* store_pg_throttle.c */
int store_pg_group_throttle_get(struct store *base, const char *group_id,
                                struct store_group_throttle *out);
int store_pg_group_throttle_set(struct store *base, const struct store_group_throttle *t);
/* store_pg_release.c */
int store_pg_group_release_bump(struct store *base, const char *group_id);
int store_pg_group_release_get(struct store *base, const char *group_id, int64_t *out);

#endif
