/* Between store_pg.c and store_pg_node.c (the nodes table): statements run
 * with store_pg.c's lock, connection-loss handling and write transactions,
 * and the node ops. Internal to src/daemon/store/. */
#ifndef EVSREP_STORE_PG_INTERNAL_H
#define EVSREP_STORE_PG_INTERNAL_H

#include "store/store_internal.h"

#include <libpq-fe.h>
#include <stdbool.h>

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
int store_pg_node_list(struct store *base, struct store_node **out, size_t *n);
int store_pg_node_delete(struct store *base, const char *name);

#endif
