/* Between store_sqlite.c and store_sqlite_node.c (the nodes table): the
 * connection's lock and error mapping, and the node ops. Internal to
 * src/daemon/store/. */
#ifndef EVSREP_STORE_SQLITE_INTERNAL_H
#define EVSREP_STORE_SQLITE_INTERNAL_H

#include "store/store_internal.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <string.h>

/* Struct strings are bounded by their array size even if a caller forgot the
 * NUL, so a bad record can never make us read past the field. */
#define BIND_STR(st, i, field) store_sqlite_bind_str((st), (i), (field), sizeof(field))
static inline int store_sqlite_bind_str(sqlite3_stmt *st, int i, const char *v, size_t cap)
{
        return sqlite3_bind_text(st, i, v, (int)strnlen(v, cap), SQLITE_TRANSIENT);
}

/* A text column into a struct string, cut to its array. */
#define COL_STR(st, i, field) store_sqlite_col_str((st), (i), (field), sizeof(field))
static inline void store_sqlite_col_str(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
        const unsigned char *t = sqlite3_column_text(st, i);
        size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;

        if (n >= cap)
                n = cap - 1;
        if (n)
                memcpy(dst, t, n);
        dst[n] = '\0';
}

/* The backend's recursive lock (store_sqlite.c: one per connection). */
void store_sqlite_lock(struct store *base);
void store_sqlite_unlock(struct store *base);
/* Prepare sql on the connection (caller holds the lock, finalizes *st). */
int store_sqlite_prepare(struct store *base, const char *sql, sqlite3_stmt **st, const char *what);
/* A statement read at API rate (a GET): prepared once per connection and
 * kept (SQLITE_PREPARE_PERSISTENT), found again by the address of sql, which
 * must be a string literal (one address per statement). Caller holds the
 * lock and hands it back with store_sqlite_release (reset, never finalize).
 * At most SQ_CACHED_MAX such statements. */
#define SQ_CACHED_MAX 8
int store_sqlite_prepare_cached(struct store *base, const char *sql, sqlite3_stmt **st,
                                const char *what);
void store_sqlite_release(sqlite3_stmt *st);
/* An SQLite result code -> negative errno, as for every read. */
int store_sqlite_map(struct store *base, int rc, const char *what);
/* Step a bound write to completion (fault point, -ENOENT when must_touch
 * and no row changed), as every row write of store_sqlite.c. */
int store_sqlite_row_write(struct store *base, sqlite3_stmt *st, bool is_delete, bool must_touch,
                           const char *what, const char *id);

int store_sqlite_now_usec(struct store *base, int64_t *out);
int store_sqlite_node_register(struct store *base, const struct store_node *n, int lease_ms);
int store_sqlite_node_renew(struct store *base, const char *name, int64_t generation, int lease_ms,
                            int64_t *lease_until);
int store_sqlite_node_get(struct store *base, const char *name, struct store_node *out);
int store_sqlite_node_take_roles(struct store *base, const char *name, int64_t *remaining_usec);
int store_sqlite_node_list(struct store *base, struct store_node **out, size_t *n);
int store_sqlite_node_delete(struct store *base, const char *name);
/* store_sqlite_throttle.c */
int store_sqlite_group_throttle_get(struct store *base, const char *group_id,
                                    struct store_group_throttle *out);
int store_sqlite_group_throttle_set(struct store *base, const struct store_group_throttle *t);
/* store_sqlite_release.c */
int store_sqlite_group_release_bump(struct store *base, const char *group_id);
int store_sqlite_group_release_get(struct store *base, const char *group_id, int64_t *out);

#endif
