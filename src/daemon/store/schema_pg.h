/* Schema migrations of the PostgreSQL store (internal to src/daemon/store/).
 *
 * Same rules as schema.h: an ordered, append-only list; migration N takes the
 * database from version N-1 to N in its own transaction with the version
 * bump. Migration N here and migration N in schema.c make the same logical
 * change, so one version number means one schema whatever the backend
 * (docs/design/store.md "Two backends"). Several nodes may open one database
 * at once: each migration transaction holds a transaction-scoped advisory
 * lock and re-reads the version under it. */
#ifndef EVSREP_STORE_SCHEMA_PG_H
#define EVSREP_STORE_SCHEMA_PG_H

#include <libpq-fe.h>
#include <stddef.h>

/* Highest version this build knows (equal to store_schema_latest()). */
int store_schema_pg_latest(void);
/* Bring the database up to store_schema_pg_latest(). Returns 0, -EIO, or
 * -EPROTO (database newer than this build), with a sentence in err. */
int store_schema_pg_migrate(PGconn *conn, int *version_out, char *err, size_t errlen);

#endif
