#include "store/schema_pg.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key of the advisory lock held by each migration transaction, so that nodes
 * starting together migrate one after the other. ASCII "evsrmigr". */
#define MIGRATE_LOCK_KEY "7311157980381669234"

/* The conventions of schema.c hold here too (updated_at NOT NULL DEFAULT 0,
 * pairs.group_id NULL when in no group, NO ACTION foreign keys). PostgreSQL
 * specifics:
 * - Every text column is COLLATE "C": names, statuses and ids sort bytewise
 *   as in SQLite (BINARY), whatever the database's default collation.
 * - metadata_json stays text (returned byte for byte as stored); the CHECK
 *   casts it to jsonb. Text that is not JSON fails the cast (SQLSTATE class
 *   22), valid JSON that is not an object fails the CHECK (23514): both are
 *   -EINVAL.
 * - "A volume is in at most one pair" is a trigger raising SQLSTATE EV001
 *   (mapped to -EEXIST), distinct from every built-in code. The trigger's
 *   check is race-free because every evsrep write runs under the store's
 *   write lock (store_pg.c). */
static const char *const migrations[] = {
    /* 1: volumes, groups, pairs. */
    "CREATE TABLE volumes ("
    "  id text COLLATE \"C\" PRIMARY KEY,"
    "  project_id text COLLATE \"C\" NOT NULL,"
    "  name text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  description text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  availability_zone text COLLATE \"C\" NOT NULL,"
    "  status text COLLATE \"C\" NOT NULL,"
    "  volume_type text COLLATE \"C\" NOT NULL,"
    "  metadata_json text COLLATE \"C\" NOT NULL DEFAULT '{}'"
    "    CHECK (jsonb_typeof(metadata_json::jsonb) = 'object'),"
    "  size_gib bigint NOT NULL CHECK (size_gib >= 0),"
    "  multiattach integer NOT NULL DEFAULT 0 CHECK (multiattach IN (0, 1)),"
    "  fenced integer NOT NULL DEFAULT 0 CHECK (fenced IN (0, 1)),"
    "  error_message text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX volumes_project_created ON volumes (project_id, created_at, id);"
    "CREATE TABLE groups ("
    "  id text COLLATE \"C\" PRIMARY KEY,"
    "  project_id text COLLATE \"C\" NOT NULL,"
    "  name text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  description text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  status text COLLATE \"C\" NOT NULL,"
    "  priority_station text COLLATE \"C\" NOT NULL,"
    "  replication_model text COLLATE \"C\" NOT NULL,"
    "  replication_status text COLLATE \"C\" NOT NULL,"
    "  failure_detail text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  fault_level integer NOT NULL DEFAULT 0 CHECK (fault_level IN (0, 2, 5)),"
    "  frozen_at bigint NOT NULL DEFAULT 0,"
    "  created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX groups_project_created ON groups (project_id, created_at, id);"
    "CREATE TABLE pairs ("
    "  id text COLLATE \"C\" PRIMARY KEY,"
    "  project_id text COLLATE \"C\" NOT NULL,"
    "  name text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  description text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  status text COLLATE \"C\" NOT NULL,"
    "  group_id text COLLATE \"C\" REFERENCES groups (id),"
    "  volume_id0 text COLLATE \"C\" NOT NULL REFERENCES volumes (id),"
    "  volume_id1 text COLLATE \"C\" NOT NULL REFERENCES volumes (id),"
    "  priority_station text COLLATE \"C\" NOT NULL,"
    "  replication_model text COLLATE \"C\" NOT NULL,"
    "  replication_status text COLLATE \"C\" NOT NULL,"
    "  progress integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),"
    "  failure_detail text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  fault_level integer NOT NULL DEFAULT 0 CHECK (fault_level IN (0, 2, 5)),"
    "  volume_size_gib bigint NOT NULL DEFAULT 0,"
    "  volume_type text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  multiattach integer NOT NULL DEFAULT 0 CHECK (multiattach IN (0, 1)),"
    "  mirror_mode text COLLATE \"C\" NOT NULL DEFAULT '',"
    "  created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL DEFAULT 0,"
    "  CHECK (volume_id0 <> volume_id1)"
    ");"
    "CREATE INDEX pairs_project_created ON pairs (project_id, created_at, id);"
    "CREATE INDEX pairs_volume0 ON pairs (volume_id0);"
    "CREATE INDEX pairs_volume1 ON pairs (volume_id1);"
    "CREATE INDEX pairs_group ON pairs (group_id, created_at, id);"
    "CREATE FUNCTION evsrep_pairs_volume_once() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  IF EXISTS (SELECT 1 FROM pairs"
    "             WHERE volume_id0 IN (NEW.volume_id0, NEW.volume_id1)"
    "                OR volume_id1 IN (NEW.volume_id0, NEW.volume_id1)) THEN"
    "    RAISE EXCEPTION 'volume already in a pair' USING ERRCODE = 'EV001';"
    "  END IF;"
    "  RETURN NEW;"
    " END $$;"
    "CREATE TRIGGER pairs_volume_once BEFORE INSERT ON pairs"
    "  FOR EACH ROW EXECUTE FUNCTION evsrep_pairs_volume_once();",
    /* 2: the instant each pair's DR image was frozen (one per group fence). */
    "ALTER TABLE pairs ADD COLUMN frozen_at bigint NOT NULL DEFAULT 0;",
    /* 3: attachments (CASCADE: deleting a volume's row deletes them). */
    "CREATE TABLE attachments ("
    "  id text COLLATE \"C\" PRIMARY KEY,"
    "  volume_id text COLLATE \"C\" NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,"
    "  project_id text COLLATE \"C\" NOT NULL,"
    "  export_name text COLLATE \"C\" NOT NULL UNIQUE,"
    "  connector text COLLATE \"C\" NOT NULL,"
    "  read_only integer NOT NULL DEFAULT 0,"
    "  psk_key text COLLATE \"C\" NOT NULL,"
    "  created_at bigint NOT NULL);"
    "CREATE INDEX attachments_volume ON attachments (volume_id, created_at, id);",
    /* 4 (quotas): per-project overrides; NULL: no override, -1: unlimited. */
    "CREATE TABLE quotas ("
    "  project_id text COLLATE \"C\" PRIMARY KEY,"
    "  volumes bigint CHECK (volumes >= -1),"
    "  gigabytes bigint CHECK (gigabytes >= -1),"
    "  updated_at bigint NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX volumes_az ON volumes (availability_zone);",
    /* 5 (nodes): one row per evsrepd node; times in usec on the server's
     * clock; lease_until = 0 is a released lease. */
    "CREATE TABLE nodes ("
    "  name text COLLATE \"C\" PRIMARY KEY,"
    "  azs text COLLATE \"C\" NOT NULL,"
    "  api_url text COLLATE \"C\" NOT NULL,"
    "  nbd text COLLATE \"C\" NOT NULL DEFAULT '{}'"
    "    CHECK (jsonb_typeof(nbd::jsonb) = 'object'),"
    "  lease_until bigint NOT NULL DEFAULT 0,"
    "  roles_generation bigint NOT NULL DEFAULT 0,"
    "  started_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL DEFAULT 0"
    ");",
    /* 6 (resync throttle): a group's throttle setting in bytes per second
     * (0: none); no row: unthrottled. Deleting the group deletes it. */
    "CREATE TABLE group_throttles ("
    "  group_id text COLLATE \"C\" PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,"
    "  max_bps bigint NOT NULL DEFAULT 0 CHECK (max_bps >= 0),"
    "  min_bps bigint NOT NULL DEFAULT 0 CHECK (min_bps >= 0),"
    "  adaptive integer NOT NULL DEFAULT 0 CHECK (adaptive IN (0, 1)),"
    "  updated_at bigint NOT NULL DEFAULT 0"
    ");",
    /* 7 (sidecar release record): the count of the group's completed
     * resyncs; moved only by store_group_release_bump. */
    "ALTER TABLE groups ADD COLUMN sidecars_released bigint NOT NULL DEFAULT 0"
    "  CHECK (sidecars_released >= 0);"};

int store_schema_pg_latest(void)
{
        return (int)ARRAY_SIZE(migrations);
}

/* Run sql (no parameters; may hold several statements). */
static int exec(PGconn *c, const char *sql, char *err, size_t errlen, const char *what)
{
        PGresult *res = PQexec(c, sql);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        int r = 0;

        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                snprintf(err, errlen, "%s: %s", what, PQerrorMessage(c));
                /* libpq's messages end in a newline */
                err[strcspn(err, "\n")] = '\0';
                log_error("store: %s", err);
                r = -EIO;
        }
        PQclear(res);
        return r;
}

/* One step under the migration lock: create the version table if needed,
 * read the version, and run the next migration if there is one. *done is set
 * when the database is current. */
static int step(PGconn *c, int *version, bool *done, char *err, size_t errlen)
{
        int latest = store_schema_pg_latest(), r;
        PGresult *res;
        char what[64], next[16];
        const char *params[1];

        *done = false;
        r = exec(c,
                 "BEGIN ISOLATION LEVEL READ COMMITTED;"
                 "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ");"
                 "CREATE TABLE IF NOT EXISTS schema_version ("
                 "  id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL);"
                 "INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;",
                 err, errlen, "cannot create the schema_version table");
        if (r < 0)
                return r;
        res = PQexec(c, "SELECT version FROM schema_version WHERE id = 1");
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                snprintf(err, errlen, "cannot read the schema version: %s", PQerrorMessage(c));
                err[strcspn(err, "\n")] = '\0';
                log_error("store: %s", err);
                PQclear(res);
                return -EIO;
        }
        *version = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (*version > latest || *version < 0) {
                snprintf(err, errlen,
                         "database schema version %d is newer than this evsrepd supports "
                         "(%d); upgrade evsrepd",
                         *version, latest);
                log_error("store: %s", err);
                return -EPROTO;
        }
        if (*version == latest) {
                *done = true;
                return exec(c, "COMMIT", err, errlen, "cannot commit the schema check");
        }
        snprintf(what, sizeof(what), "schema migration %d failed", *version + 1);
        r = exec(c, migrations[*version], err, errlen, what);
        if (r < 0)
                return r;
        snprintf(next, sizeof(next), "%d", *version + 1);
        params[0] = next;
        res = PQexecParams(c, "UPDATE schema_version SET version = $1::integer WHERE id = 1", 1,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                snprintf(err, errlen, "%s: %s", what, PQerrorMessage(c));
                err[strcspn(err, "\n")] = '\0';
                log_error("store: %s", err);
                PQclear(res);
                return -EIO;
        }
        PQclear(res);
        r = exec(c, "COMMIT", err, errlen, what);
        if (r == 0)
                log_info("store: schema migrated to version %d", ++*version);
        return r;
}

int store_schema_pg_migrate(PGconn *conn, int *version_out, char *err, size_t errlen)
{
        int version = 0, r;
        bool done = false;

        /* Bounded: each step either finishes or raises the version by one. */
        for (int i = 0; i <= store_schema_pg_latest() && !done; i++) {
                r = step(conn, &version, &done, err, errlen);
                if (r < 0) {
                        PGresult *res = PQexec(conn, "ROLLBACK");
                        PQclear(res);
                        return r;
                }
        }
        if (!done) {
                snprintf(err, errlen, "schema migration did not converge (version %d)", version);
                return -EIO;
        }
        *version_out = version;
        return 0;
}
