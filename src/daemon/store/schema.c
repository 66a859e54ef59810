#include "store/schema.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>

/* Conventions every migration keeps, because store_sqlite.c relies on them:
 * - updated_at is NOT NULL and 0 means "never updated" (null on the wire).
 *   NULL would make the row-value comparison (sort_key, id) > (?, ?) used by
 *   marker paging evaluate to NULL, silently dropping rows from pages.
 * - pairs.group_id is NULL (not '') when the pair is in no group, so the
 *   foreign key to groups holds.
 * - Foreign keys use the default action (NO ACTION, checked at the end of
 *   each statement): deleting a volume still in a pair, or a group still
 *   holding pairs, fails instead of leaving dangling references. Not
 *   RESTRICT: SQLite reports a RESTRICT failure as SQLITE_CONSTRAINT_TRIGGER,
 *   which the store maps to "volume already in a pair". */
static const char *const migrations[] = {
    /* 1: volumes, groups, pairs. */
    "CREATE TABLE volumes ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  project_id TEXT NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  description TEXT NOT NULL DEFAULT '',"
    "  availability_zone TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  volume_type TEXT NOT NULL,"
    "  metadata_json TEXT NOT NULL DEFAULT '{}'"
    "    CHECK (json_valid(metadata_json) AND json_type(metadata_json) = 'object'),"
    "  size_gib INTEGER NOT NULL CHECK (size_gib >= 0),"
    "  multiattach INTEGER NOT NULL DEFAULT 0 CHECK (multiattach IN (0, 1)),"
    "  fenced INTEGER NOT NULL DEFAULT 0 CHECK (fenced IN (0, 1)),"
    "  error_message TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX volumes_project_created ON volumes (project_id, created_at, id);"
    "CREATE TABLE groups ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  project_id TEXT NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  description TEXT NOT NULL DEFAULT '',"
    "  status TEXT NOT NULL,"
    "  priority_station TEXT NOT NULL,"
    "  replication_model TEXT NOT NULL,"
    "  replication_status TEXT NOT NULL,"
    "  failure_detail TEXT NOT NULL DEFAULT '',"
    "  fault_level INTEGER NOT NULL DEFAULT 0 CHECK (fault_level IN (0, 2, 5)),"
    "  frozen_at INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX groups_project_created ON groups (project_id, created_at, id);"
    "CREATE TABLE pairs ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  project_id TEXT NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  description TEXT NOT NULL DEFAULT '',"
    "  status TEXT NOT NULL,"
    "  group_id TEXT REFERENCES groups (id),"
    "  volume_id0 TEXT NOT NULL REFERENCES volumes (id),"
    "  volume_id1 TEXT NOT NULL REFERENCES volumes (id),"
    "  priority_station TEXT NOT NULL,"
    "  replication_model TEXT NOT NULL,"
    "  replication_status TEXT NOT NULL,"
    "  progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),"
    "  failure_detail TEXT NOT NULL DEFAULT '',"
    "  fault_level INTEGER NOT NULL DEFAULT 0 CHECK (fault_level IN (0, 2, 5)),"
    "  volume_size_gib INTEGER NOT NULL DEFAULT 0,"
    "  volume_type TEXT NOT NULL DEFAULT '',"
    "  multiattach INTEGER NOT NULL DEFAULT 0 CHECK (multiattach IN (0, 1)),"
    "  mirror_mode TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL DEFAULT 0,"
    "  CHECK (volume_id0 <> volume_id1)"
    ");"
    "CREATE INDEX pairs_project_created ON pairs (project_id, created_at, id);"
    "CREATE INDEX pairs_volume0 ON pairs (volume_id0);"
    "CREATE INDEX pairs_volume1 ON pairs (volume_id1);"
    "CREATE INDEX pairs_group ON pairs (group_id, created_at, id);"
    /* A volume belongs to at most one pair, on either side. The service checks
     * this first and answers 409; the trigger makes a race or a bug fail the
     * insert instead of silently mirroring one disk twice. */
    "CREATE TRIGGER pairs_volume_once BEFORE INSERT ON pairs BEGIN"
    "  SELECT RAISE(ABORT, 'volume already in a pair') WHERE EXISTS ("
    "    SELECT 1 FROM pairs WHERE volume_id0 IN (NEW.volume_id0, NEW.volume_id1)"
    "                           OR volume_id1 IN (NEW.volume_id0, NEW.volume_id1));"
    "END;",
    /* 2: the instant each pair's DR image was frozen (one per group fence). */
    "ALTER TABLE pairs ADD COLUMN frozen_at INTEGER NOT NULL DEFAULT 0;",
    /* 3: attachments, the only way to reach an export over NBD
     * (docs/design/nbd.md "Attachments"). Deleting a volume's row deletes
     * its attachments (CASCADE: an attachment is not a reason to keep it). */
    "CREATE TABLE attachments ("
    "  id TEXT PRIMARY KEY,"
    "  volume_id TEXT NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,"
    "  project_id TEXT NOT NULL,"
    "  export_name TEXT NOT NULL UNIQUE,"
    "  connector TEXT NOT NULL,"
    "  read_only INTEGER NOT NULL DEFAULT 0,"
    "  psk_key TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX attachments_volume ON attachments (volume_id, created_at, id);",
    /* 4 (quotas): per-project overrides of the configured quota defaults.
     * NULL in a column: no override, the config default applies; -1:
     * unlimited. Usage is not stored: it is counted from the volumes table
     * inside the transaction that inserts or grows a volume, so it cannot
     * drift. The index serves the per-site provisioned sum of the capacity
     * check. */
    "CREATE TABLE quotas ("
    "  project_id TEXT PRIMARY KEY NOT NULL,"
    "  volumes INTEGER CHECK (volumes >= -1),"
    "  gigabytes INTEGER CHECK (gigabytes >= -1),"
    "  updated_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX volumes_az ON volumes (availability_zone);",
    /* 5 (nodes): one row per evsrepd node (docs/design/multi-site.md). Lease
     * and start times are usec on the store's clock; lease_until = 0 is a
     * released lease. nbd is a JSON object AZ -> "host:port". */
    "CREATE TABLE nodes ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  azs TEXT NOT NULL,"
    "  api_url TEXT NOT NULL,"
    "  nbd TEXT NOT NULL DEFAULT '{}'"
    "    CHECK (json_valid(nbd) AND json_type(nbd) = 'object'),"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  roles_generation INTEGER NOT NULL DEFAULT 0,"
    "  started_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL DEFAULT 0"
    ");",
    /* 6 (resync throttle): a group's throttle setting, one row per group
     * that has one (no row: unthrottled). Rates in bytes per second, 0: no
     * ceiling / no floor. Deleting the group deletes it. */
    "CREATE TABLE group_throttles ("
    "  group_id TEXT PRIMARY KEY NOT NULL REFERENCES groups (id) ON DELETE CASCADE,"
    "  max_bps INTEGER NOT NULL DEFAULT 0 CHECK (max_bps >= 0),"
    "  min_bps INTEGER NOT NULL DEFAULT 0 CHECK (min_bps >= 0),"
    "  adaptive INTEGER NOT NULL DEFAULT 0 CHECK (adaptive IN (0, 1)),"
    "  updated_at INTEGER NOT NULL DEFAULT 0"
    ");",
    /* 7 (sidecar release record): the count of the group's completed
     * resyncs (docs/design/replication.md "The release record"). Moved
     * only by store_group_release_bump. */
    "ALTER TABLE groups ADD COLUMN sidecars_released INTEGER NOT NULL DEFAULT 0"
    "  CHECK (sidecars_released >= 0);"};

int store_schema_latest(void)
{
        return (int)ARRAY_SIZE(migrations);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen, const char *what)
{
        char *msg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

        if (rc == SQLITE_OK)
                return 0;
        snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
        log_error("store: %s", err);
        sqlite3_free(msg);
        return -EIO;
}

static int read_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version WHERE id = 1", -1, &st,
                                    NULL);

        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                snprintf(err, errlen, "cannot read the schema version: %s", sqlite3_errmsg(db));
                log_error("store: %s", err);
                sqlite3_finalize(st);
                return -EIO;
        }
        *version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return 0;
}

int store_schema_migrate(sqlite3 *db, int *version_out, char *err, size_t errlen)
{
        int version = 0, latest = store_schema_latest();
        int r;

        /* The version table itself is created idempotently so that opening an
         * empty file and reopening a migrated one take the same path. */
        r = exec(db,
                 "BEGIN IMMEDIATE;"
                 "CREATE TABLE IF NOT EXISTS schema_version ("
                 "  id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
                 "INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0);"
                 "COMMIT;",
                 err, errlen, "cannot create the schema_version table");
        if (r < 0) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                return r;
        }
        r = read_version(db, &version, err, errlen);
        if (r < 0)
                return r;
        if (version > latest || version < 0) {
                snprintf(err, errlen,
                         "database schema version %d is newer than this evsrepd supports "
                         "(%d); upgrade evsrepd",
                         version, latest);
                log_error("store: %s", err);
                return -EPROTO;
        }
        for (int v = version + 1; v <= latest; v++) {
                char what[64], bump[96];

                snprintf(what, sizeof(what), "schema migration %d failed", v);
                snprintf(bump, sizeof(bump), "UPDATE schema_version SET version = %d WHERE id = 1",
                         v);
                r = exec(db, "BEGIN IMMEDIATE", err, errlen, what);
                if (r == 0)
                        r = exec(db, migrations[v - 1], err, errlen, what);
                if (r == 0)
                        r = exec(db, bump, err, errlen, what);
                if (r == 0)
                        r = exec(db, "COMMIT", err, errlen, what);
                if (r < 0) {
                        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                        return r;
                }
                log_info("store: schema migrated to version %d", v);
        }
        *version_out = latest;
        return 0;
}
