/* Schema migrations of the SQLite store (internal to src/daemon/store/).
 *
 * The schema is an ordered list of migrations; migration N takes the database
 * from version N-1 to N. Each one runs in its own transaction together with
 * the schema_version bump, so a crash mid-migration leaves the previous
 * version intact. To change the schema, APPEND a migration to the list in
 * schema.c; never edit one that has shipped (databases in the field already
 * ran it). */
#ifndef EVSREP_STORE_SCHEMA_H
#define EVSREP_STORE_SCHEMA_H

#include <stddef.h>
#include <sqlite3.h>

/* Highest version this build knows. */
int store_schema_latest(void);
/* Bring db up to store_schema_latest(). Returns 0, or -EIO / -EPROTO (database
 * newer than this build) with a sentence in err. *version_out gets the final
 * version. */
int store_schema_migrate(sqlite3 *db, int *version_out, char *err, size_t errlen);

#endif
