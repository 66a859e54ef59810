/* SQLite backend of the control-plane store (see store.h, store_internal.h,
 * docs/design/store.md): the default, selected for any store path that is not
 * a PostgreSQL URI.
 *
 * Locking: one connection, one recursive mutex. Every public call takes the
 * mutex for its whole duration; store_tx_begin keeps it held by the calling
 * thread until commit/rollback, so that thread's single calls nest inside the
 * transaction (recursive lock) while every other thread waits. SQLite is
 * therefore never entered by two threads at once, and sqlite3_errmsg() read
 * under the lock belongs to the statement that failed. That is also why the
 * connection is opened SQLITE_OPEN_NOMUTEX: SQLite's own per-call mutex
 * (every bind, step and column call) would only repeat this one (8% of a
 * GET of a group in a profile, bench/api.sh).
 *
 * SQL text is built only from string literals and whitelisted identifiers;
 * every value is bound. */
#include "store/store.h"
#include "common/fault.h"
#include "store/schema.h"
#include "store/store_internal.h"
#include "store/store_sqlite_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum stmt_id {
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_VOL_INSERT,
        ST_VOL_GET,
        ST_VOL_UPDATE,
        ST_VOL_DELETE,
        ST_VOL_ALL,
        ST_PAIR_INSERT,
        ST_PAIR_GET,
        ST_PAIR_UPDATE,
        ST_PAIR_DELETE,
        ST_PAIR_ALL,
        ST_PAIR_BY_GROUP,
        ST_GROUP_INSERT,
        ST_GROUP_GET,
        ST_GROUP_UPDATE,
        ST_GROUP_DELETE,
        ST_GROUP_ALL,
        ST_ATT_INSERT,
        ST_ATT_DELETE,
        ST_ATT_ALL,
        ST_ATT_BY_VOLUME,
        /* quotas */
        ST_QUOTA_GET,
        ST_QUOTA_SET,
        ST_QUOTA_DELETE,
        ST_PROJECT_USAGE,
        ST_SITE_PROVISIONED,
        ST__COUNT
};

struct sq_store {
        struct store base; /* first: store.c dispatches through base.ops */
        sqlite3 *db;
        pthread_mutex_t mu; /* recursive; see the top of the file */
        bool in_tx;
        pthread_t tx_owner;
        int version;
        sqlite3_stmt *st[ST__COUNT];
        /* store_sqlite_prepare_cached: statements of the other files kept
         * prepared, keyed by their SQL literal's address (under mu). */
        struct {
                const char *sql;
                sqlite3_stmt *st;
        } cached[SQ_CACHED_MAX];
};

static struct sq_store *sq_of(struct store *base)
{
        return (struct sq_store *)base; /* base is the first member */
}

static const struct store_ops sqlite_ops;
static void sq_close(struct store *base);

/* The pair holding a volume, from either side. Two scalar subqueries rather
 * than one OR so that each uses its own index. */
#define VOL_COLS                                                                                   \
        "v.id, v.project_id, v.name, v.description, v.availability_zone, v.status, "               \
        "v.volume_type, v.metadata_json, v.size_gib, v.multiattach, v.fenced, "                    \
        "v.error_message, v.created_at, v.updated_at, "                                            \
        "COALESCE((SELECT p.id FROM pairs p WHERE p.volume_id0 = v.id), "                          \
        "(SELECT p.id FROM pairs p WHERE p.volume_id1 = v.id), '')"
#define PAIR_COLS                                                                                  \
        "p.id, p.project_id, p.name, p.description, p.status, p.group_id, p.volume_id0, "          \
        "p.volume_id1, p.priority_station, p.replication_model, p.replication_status, "            \
        "p.progress, p.failure_detail, p.fault_level, p.volume_size_gib, p.volume_type, "          \
        "p.multiattach, p.mirror_mode, p.created_at, p.updated_at, p.frozen_at"
#define GROUP_COLS                                                                                 \
        "g.id, g.project_id, g.name, g.description, g.status, g.priority_station, "                \
        "g.replication_model, g.replication_status, g.failure_detail, g.fault_level, "             \
        "g.frozen_at, g.created_at, g.updated_at"
#define ATT_COLS                                                                                   \
        "a.id, a.volume_id, a.project_id, a.export_name, a.connector, a.read_only, a.psk_key, "    \
        "a.created_at"

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_VOL_INSERT] = "INSERT INTO volumes (id, project_id, name, description, availability_zone, "
                      "status, volume_type, metadata_json, size_gib, multiattach, fenced, "
                      "error_message, created_at, updated_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_VOL_GET] = "SELECT " VOL_COLS " FROM volumes v WHERE v.id = ?1 "
                   "AND (?2 IS NULL OR v.project_id = ?2)",
    [ST_VOL_UPDATE] = "UPDATE volumes SET name = ?3, description = ?4, availability_zone = ?5, "
                      "status = ?6, volume_type = ?7, metadata_json = ?8, size_gib = ?9, "
                      "multiattach = ?10, fenced = ?11, error_message = ?12, updated_at = ?14 "
                      "WHERE id = ?1",
    [ST_VOL_DELETE] = "DELETE FROM volumes WHERE id = ?1",
    [ST_VOL_ALL] = "SELECT " VOL_COLS " FROM volumes v ORDER BY v.created_at, v.id",
    [ST_PAIR_INSERT] = "INSERT INTO pairs (id, project_id, name, description, status, group_id, "
                       "volume_id0, volume_id1, priority_station, replication_model, "
                       "replication_status, progress, failure_detail, fault_level, "
                       "volume_size_gib, volume_type, multiattach, mirror_mode, created_at, "
                       "updated_at, frozen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                       "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    [ST_PAIR_GET] = "SELECT " PAIR_COLS " FROM pairs p WHERE p.id = ?1 "
                    "AND (?2 IS NULL OR p.project_id = ?2)",
    /* volume_ids and created_at are fixed at creation and never rewritten. */
    [ST_PAIR_UPDATE] = "UPDATE pairs SET name = ?3, description = ?4, status = ?5, group_id = ?6, "
                       "priority_station = ?9, replication_model = ?10, "
                       "replication_status = ?11, progress = ?12, failure_detail = ?13, "
                       "fault_level = ?14, volume_size_gib = ?15, volume_type = ?16, "
                       "multiattach = ?17, mirror_mode = ?18, updated_at = ?20, frozen_at = ?21 "
                       "WHERE id = ?1",
    [ST_PAIR_DELETE] = "DELETE FROM pairs WHERE id = ?1",
    [ST_PAIR_ALL] = "SELECT " PAIR_COLS " FROM pairs p ORDER BY p.created_at, p.id",
    [ST_PAIR_BY_GROUP] = "SELECT " PAIR_COLS " FROM pairs p WHERE p.group_id = ?1 "
                         "ORDER BY p.created_at, p.id",
    [ST_GROUP_INSERT] = "INSERT INTO groups (id, project_id, name, description, status, "
                        "priority_station, replication_model, replication_status, "
                        "failure_detail, fault_level, frozen_at, created_at, updated_at) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_GROUP_GET] = "SELECT " GROUP_COLS " FROM groups g WHERE g.id = ?1 "
                     "AND (?2 IS NULL OR g.project_id = ?2)",
    [ST_GROUP_UPDATE] = "UPDATE groups SET name = ?3, description = ?4, status = ?5, "
                        "priority_station = ?6, replication_model = ?7, "
                        "replication_status = ?8, failure_detail = ?9, fault_level = ?10, "
                        "frozen_at = ?11, updated_at = ?13 WHERE id = ?1",
    [ST_GROUP_DELETE] = "DELETE FROM groups WHERE id = ?1",
    [ST_GROUP_ALL] = "SELECT " GROUP_COLS " FROM groups g ORDER BY g.created_at, g.id",
    [ST_ATT_INSERT] = "INSERT INTO attachments (id, volume_id, project_id, export_name, connector, "
                      "read_only, psk_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_ATT_DELETE] = "DELETE FROM attachments WHERE id = ?1",
    [ST_ATT_ALL] = "SELECT " ATT_COLS " FROM attachments a ORDER BY a.created_at, a.id",
    [ST_ATT_BY_VOLUME] = "SELECT " ATT_COLS " FROM attachments a WHERE a.volume_id = ?1 "
                         "ORDER BY a.created_at, a.id",
    /* quotas: NULL columns are "no override" (STORE_QUOTA_DEFAULT) */
    [ST_QUOTA_GET] = "SELECT volumes, gigabytes, updated_at FROM quotas WHERE project_id = ?1",
    [ST_QUOTA_SET] = "INSERT INTO quotas (project_id, volumes, gigabytes, updated_at) "
                     "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (project_id) DO UPDATE SET "
                     "volumes = excluded.volumes, gigabytes = excluded.gigabytes, "
                     "updated_at = excluded.updated_at",
    [ST_QUOTA_DELETE] = "DELETE FROM quotas WHERE project_id = ?1",
    [ST_PROJECT_USAGE] = "SELECT COUNT(*), COALESCE(SUM(size_gib), 0) FROM volumes "
                         "WHERE project_id = ?1",
    [ST_SITE_PROVISIONED] = "SELECT COALESCE(SUM(size_gib), 0) FROM volumes "
                            "WHERE availability_zone = ?1",
};

/* ---------------------------------------------------------------- helpers */

static void lock(struct sq_store *s)
{
        int r = pthread_mutex_lock(&s->mu);

        /* Cannot fail for a valid recursive mutex; if it does, continuing
         * unlocked would corrupt the connection. */
        if (r != 0) {
                log_error("store: mutex lock failed: %s", strerror(r));
                abort();
        }
}

static void unlock(struct sq_store *s)
{
        pthread_mutex_unlock(&s->mu);
}

enum op_kind { OP_READ, OP_WRITE, OP_DELETE };

/* SQLite result -> negative errno. Constraint failures are the caller's
 * mistakes (or races the service lost) and are not logged; anything else is
 * a backend failure and is. */
static int map_rc(struct sq_store *s, int rc, enum op_kind kind, const char *what)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_CONSTRAINT:
                switch (rc) {
                case SQLITE_CONSTRAINT_PRIMARYKEY:
                case SQLITE_CONSTRAINT_UNIQUE:
                case SQLITE_CONSTRAINT_TRIGGER: /* volume already in a pair */
                        return -EEXIST;
                case SQLITE_CONSTRAINT_FOREIGNKEY:
                        /* Insert/update: the referenced volume or group is
                         * missing. Delete: the row is still referenced. */
                        return kind == OP_DELETE ? -EBUSY : -ENOENT;
                default:
                        return -EINVAL; /* CHECK, NOT NULL */
                }
        case SQLITE_NOMEM:
                log_error("store: %s: out of memory", what);
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                /* Not the client's mistake and not a conflict with state:
                 * the store is busy now (503, retry). */
                log_warn("store: %s: busy", what);
                return -EAGAIN;
        default:
                log_error("store: %s: %s (%d)", what, sqlite3_errmsg(s->db), rc);
                return -EIO;
        }
}

static sqlite3_stmt *stmt(struct sq_store *s, enum stmt_id id)
{
        sqlite3_stmt *st = s->st[id];

        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
}

static int bind_str_or_null(sqlite3_stmt *st, int i, const char *v, size_t cap)
{
        if (v[0] == '\0')
                return sqlite3_bind_null(st, i);
        return store_sqlite_bind_str(st, i, v, cap);
}

/* Run a write statement to completion; 0, -ENOENT when it touched no row and
 * must_touch is set, or a mapped error. */
static int run_write(struct sq_store *s, sqlite3_stmt *st, enum op_kind kind, bool must_touch,
                     const char *what)
{
        int rc = sqlite3_step(st);

        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
                return map_rc(s, rc, kind, what);
        if (must_touch && sqlite3_changes(s->db) == 0)
                return -ENOENT;
        return 0;
}

/* A row write (insert, update, delete). Outside a transaction it commits
 * alone, so it is a fault point of its own (store_write, per row id);
 * inside one, store_commit covers it. */
static int row_write(struct sq_store *s, sqlite3_stmt *st, enum op_kind kind, bool must_touch,
                     const char *what, const char *id)
{
        int r = s->in_tx ? 0 : fault_check(FP_STORE_WRITE, id);

        if (r < 0) {
                sqlite3_reset(st); /* bound, never stepped */
                return r;
        }
        return run_write(s, st, kind, must_touch, what);
}

/* ---------------------------------------------------------------- open/close */

int store_sqlite_open(const char *path, struct store **out, char *err, size_t errlen)
{
        struct sq_store *s;
        pthread_mutexattr_t ma;
        int rc, r;
        char dummy[1];

        if (!err || errlen == 0) {
                err = dummy;
                errlen = sizeof(dummy);
        }
        err[0] = '\0';
        *out = NULL;
        s = calloc(1, sizeof(*s));
        if (!s) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        s->base.ops = &sqlite_ops;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&s->mu, &ma);
        pthread_mutexattr_destroy(&ma);

        rc = sqlite3_open_v2(
            path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                snprintf(err, errlen, "cannot open database %s: %s", path,
                         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                r = -EIO;
                goto fail;
        }
        sqlite3_extended_result_codes(s->db, 1);
        /* Another process (an operator's sqlite3 shell, a backup) may hold a
         * lock briefly; wait for it rather than failing the API call. */
        sqlite3_busy_timeout(s->db, 5000);

        /* synchronous=FULL: in WAL mode NORMAL already survives kill -9 (the
         * commit is in the WAL through write(2)), but may lose the last commits
         * on power loss or a kernel crash. Losing a recorded failover or fence
         * could re-export an old production disk read-write after reboot:
         * split brain. Control-plane commits are rare (human/API rate), so one
         * fsync per commit is cheap insurance. */
        {
                sqlite3_stmt *st = NULL;
                const char *mode = NULL;

                rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
                if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                        mode = (const char *)sqlite3_column_text(st, 0);
                if (!mode || strcmp(mode, "wal") != 0) {
                        snprintf(err, errlen, "cannot switch %s to WAL mode: %s", path,
                                 sqlite3_errmsg(s->db));
                        sqlite3_finalize(st);
                        r = -EIO;
                        goto fail;
                }
                sqlite3_finalize(st);
        }
        rc = sqlite3_exec(s->db,
                          "PRAGMA foreign_keys = ON;"
                          "PRAGMA synchronous = FULL;",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                snprintf(err, errlen, "cannot configure %s: %s", path, sqlite3_errmsg(s->db));
                r = -EIO;
                goto fail;
        }
        r = store_schema_migrate(s->db, &s->version, err, errlen);
        if (r < 0)
                goto fail;
        for (int i = 0; i < ST__COUNT; i++) {
                rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &s->st[i], NULL);
                if (rc != SQLITE_OK) {
                        snprintf(err, errlen, "cannot prepare statement %d: %s", i,
                                 sqlite3_errmsg(s->db));
                        r = -EIO;
                        goto fail;
                }
        }
        *out = &s->base;
        return 0;
fail:
        if (err[0])
                log_error("store: %s", err);
        sq_close(&s->base);
        return r;
}

static void sq_close(struct store *base)
{
        struct sq_store *s = sq_of(base);

        if (!s)
                return;
        for (int i = 0; i < ST__COUNT; i++)
                sqlite3_finalize(s->st[i]);
        for (int i = 0; i < SQ_CACHED_MAX; i++)
                sqlite3_finalize(s->cached[i].st);
        if (s->db && sqlite3_close(s->db) != SQLITE_OK)
                log_error("store: close: %s", sqlite3_errmsg(s->db));
        pthread_mutex_destroy(&s->mu);
        free(s);
}

static int sq_schema_version(struct store *base)
{
        struct sq_store *s = sq_of(base);

        return s->version;
}

/* ---------------------------------------------------------------- transactions */

static int sq_tx_begin(struct store *base)
{
        struct sq_store *s = sq_of(base);

        int r;

        lock(s);
        if (s->in_tx) {
                /* Only the owner can get here (others block in lock()).
                 * Nesting is refused rather than silently flattened: an inner
                 * "commit" that commits nothing hides bugs. */
                unlock(s);
                return -EBUSY;
        }
        r = fault_check(FP_STORE_BUSY, NULL) < 0
                ? -EAGAIN
                : run_write(s, stmt(s, ST_BEGIN), OP_WRITE, false, "begin");
        if (r < 0) {
                unlock(s);
                return r;
        }
        s->in_tx = true;
        s->tx_owner = pthread_self();
        return 0; /* the lock stays held until commit/rollback */
}

static bool owns_tx(struct sq_store *s)
{
        return s->in_tx && pthread_equal(s->tx_owner, pthread_self());
}

static int sq_tx_commit(struct store *base)
{
        struct sq_store *s = sq_of(base);

        int r;

        lock(s);
        if (!owns_tx(s)) {
                unlock(s);
                return -EINVAL;
        }
        r = fault_check(FP_STORE_COMMIT, NULL);
        if (r == 0)
                r = run_write(s, stmt(s, ST_COMMIT), OP_WRITE, false, "commit");
        if (r < 0 && !sqlite3_get_autocommit(s->db))
                run_write(s, stmt(s, ST_ROLLBACK), OP_WRITE, false, "rollback");
        s->in_tx = false;
        unlock(s); /* ours, above */
        unlock(s); /* taken by store_tx_begin */
        return r;
}

static void sq_tx_rollback(struct store *base)
{
        struct sq_store *s = sq_of(base);

        lock(s);
        if (!owns_tx(s)) {
                unlock(s);
                return;
        }
        if (!sqlite3_get_autocommit(s->db))
                run_write(s, stmt(s, ST_ROLLBACK), OP_WRITE, false, "rollback");
        s->in_tx = false;
        unlock(s);
        unlock(s);
}

/* ---------------------------------------------------------------- row readers */

static int read_volume(sqlite3_stmt *st, struct store_volume *v)
{
        const unsigned char *meta;

        memset(v, 0, sizeof(*v));
        COL_STR(st, 0, v->id);
        COL_STR(st, 1, v->project_id);
        COL_STR(st, 2, v->name);
        COL_STR(st, 3, v->description);
        COL_STR(st, 4, v->availability_zone);
        COL_STR(st, 5, v->status);
        COL_STR(st, 6, v->volume_type);
        meta = sqlite3_column_text(st, 7);
        v->metadata_json = strdup(meta ? (const char *)meta : "{}");
        if (!v->metadata_json)
                return -ENOMEM;
        v->size_gib = sqlite3_column_int64(st, 8);
        v->multiattach = sqlite3_column_int(st, 9) != 0;
        v->fenced = sqlite3_column_int(st, 10) != 0;
        COL_STR(st, 11, v->error_message);
        v->created_at = sqlite3_column_int64(st, 12);
        v->updated_at = sqlite3_column_int64(st, 13);
        COL_STR(st, 14, v->pair_id);
        return 0;
}

static int read_pair(sqlite3_stmt *st, struct store_pair *p)
{
        memset(p, 0, sizeof(*p));
        COL_STR(st, 0, p->id);
        COL_STR(st, 1, p->project_id);
        COL_STR(st, 2, p->name);
        COL_STR(st, 3, p->description);
        COL_STR(st, 4, p->status);
        COL_STR(st, 5, p->group_id);
        COL_STR(st, 6, p->volume_ids[0]);
        COL_STR(st, 7, p->volume_ids[1]);
        COL_STR(st, 8, p->priority_station);
        COL_STR(st, 9, p->replication_model);
        COL_STR(st, 10, p->replication_status);
        p->progress = sqlite3_column_int(st, 11);
        COL_STR(st, 12, p->failure_detail);
        p->fault_level = sqlite3_column_int(st, 13);
        p->volume_size_gib = sqlite3_column_int64(st, 14);
        COL_STR(st, 15, p->volume_type);
        p->multiattach = sqlite3_column_int(st, 16) != 0;
        COL_STR(st, 17, p->mirror_mode);
        p->created_at = sqlite3_column_int64(st, 18);
        p->updated_at = sqlite3_column_int64(st, 19);
        p->frozen_at = sqlite3_column_int64(st, 20);
        return 0;
}

static int read_group(sqlite3_stmt *st, struct store_group *g)
{
        memset(g, 0, sizeof(*g));
        COL_STR(st, 0, g->id);
        COL_STR(st, 1, g->project_id);
        COL_STR(st, 2, g->name);
        COL_STR(st, 3, g->description);
        COL_STR(st, 4, g->status);
        COL_STR(st, 5, g->priority_station);
        COL_STR(st, 6, g->replication_model);
        COL_STR(st, 7, g->replication_status);
        COL_STR(st, 8, g->failure_detail);
        g->fault_level = sqlite3_column_int(st, 9);
        g->frozen_at = sqlite3_column_int64(st, 10);
        g->created_at = sqlite3_column_int64(st, 11);
        g->updated_at = sqlite3_column_int64(st, 12);
        return 0;
}

static int read_attachment(sqlite3_stmt *st, void *out)
{
        struct store_attachment *a = out;

        memset(a, 0, sizeof(*a));
        COL_STR(st, 0, a->id);
        COL_STR(st, 1, a->volume_id);
        COL_STR(st, 2, a->project_id);
        COL_STR(st, 3, a->export_name);
        COL_STR(st, 4, a->connector);
        a->read_only = sqlite3_column_int(st, 5) != 0;
        COL_STR(st, 6, a->psk_key);
        a->created_at = sqlite3_column_int64(st, 7);
        return 0;
}

/* Type-erased row reader so one list loop serves every resource. */
struct resource {
        const char *what;
        size_t elem_size;
        int (*read)(sqlite3_stmt *, void *);
        void (*clear)(void *);
        /* list query pieces */
        const char *from;  /* "volumes v" */
        const char *alias; /* "v" */
        const char *cols;
        const struct filter_spec *filters;
        size_t nfilters;
};

struct filter_spec {
        const char *key;
        const char *sql; /* with nbind '?' placeholders, all bound to the value */
        int nbind;
};

static int read_volume_any(sqlite3_stmt *st, void *out)
{
        return read_volume(st, out);
}
static int read_pair_any(sqlite3_stmt *st, void *out)
{
        return read_pair(st, out);
}
static int read_group_any(sqlite3_stmt *st, void *out)
{
        return read_group(st, out);
}
static void clear_volume_any(void *v)
{
        store_volume_clear(v);
}

static const struct filter_spec volume_filters[] = {
    {"name", "v.name = ?", 1},
    {"status", "v.status = ?", 1},
    {"availability_zone", "v.availability_zone = ?", 1},
};
static const struct filter_spec pair_filters[] = {
    {"name", "p.name = ?", 1},
    {"status", "p.status = ?", 1},
    {"priority_station", "p.priority_station = ?", 1},
    {"replication_consistency_group_id", "IFNULL(p.group_id, '') = ?", 1},
    {"volume_id", "(p.volume_id0 = ? OR p.volume_id1 = ?)", 2},
    {"volume_ids", "(p.volume_id0 || ',' || p.volume_id1) = ?", 1},
};
static const struct filter_spec group_filters[] = {
    {"name", "g.name = ?", 1},
    {"status", "g.status = ?", 1},
    {"priority_station", "g.priority_station = ?", 1},
    {"volume_id",
     "EXISTS (SELECT 1 FROM pairs p WHERE p.group_id = g.id "
     "AND (p.volume_id0 = ? OR p.volume_id1 = ?))",
     2},
    {"replication_id", "EXISTS (SELECT 1 FROM pairs p WHERE p.group_id = g.id AND p.id = ?)", 1},
};

static const struct resource res_volume = {"volume",
                                           sizeof(struct store_volume),
                                           read_volume_any,
                                           clear_volume_any,
                                           "volumes v",
                                           "v",
                                           VOL_COLS,
                                           volume_filters,
                                           ARRAY_SIZE(volume_filters)};
static const struct resource res_pair = {
    "pair",       sizeof(struct store_pair), read_pair_any, NULL, "pairs p", "p", PAIR_COLS,
    pair_filters, ARRAY_SIZE(pair_filters)};
static const struct resource res_group = {
    "group",       sizeof(struct store_group), read_group_any, NULL, "groups g", "g", GROUP_COLS,
    group_filters, ARRAY_SIZE(group_filters)};

/* Attachments are never listed by query (no filters, no paging). */
static const struct resource res_attachment = {"attachment",
                                               sizeof(struct store_attachment),
                                               read_attachment,
                                               NULL,
                                               "attachments a",
                                               "a",
                                               ATT_COLS,
                                               NULL,
                                               0};

static void free_rows(const struct resource *res, void *rows, size_t n)
{
        if (res->clear)
                for (size_t i = 0; i < n; i++)
                        res->clear((char *)rows + i * res->elem_size);
        free(rows);
}

/* Step st to the end, collecting rows into a fresh array. */
static int collect(struct sq_store *s, const struct resource *res, sqlite3_stmt *st, void **out,
                   size_t *n)
{
        char *rows = NULL;
        size_t cnt = 0, cap = 0;
        int rc, r = 0;

        *out = NULL;
        *n = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (cnt == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        char *nrows = realloc(rows, ncap * res->elem_size);
                        if (!nrows) {
                                r = -ENOMEM;
                                break;
                        }
                        rows = nrows;
                        cap = ncap;
                }
                r = res->read(st, rows + cnt * res->elem_size);
                if (r < 0)
                        break;
                cnt++;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = map_rc(s, rc, OP_READ, res->what);
        sqlite3_reset(st);
        if (r < 0) {
                free_rows(res, rows, cnt);
                return r;
        }
        *out = rows;
        *n = cnt;
        return 0;
}

static int get_one(struct sq_store *s, const struct resource *res, enum stmt_id sid,
                   const char *project_id, const char *id, void *out)
{
        sqlite3_stmt *st;
        int rc, r;

        if (!id)
                return -EINVAL;
        lock(s);
        st = stmt(s, sid);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        if (project_id)
                sqlite3_bind_text(st, 2, project_id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = res->read(st, out);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = map_rc(s, rc, OP_READ, res->what);
        sqlite3_reset(st);
        unlock(s);
        return r;
}

static int list_all(struct sq_store *s, const struct resource *res, enum stmt_id sid,
                    const char *arg, void **out, size_t *n)
{
        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, sid);
        if (arg)
                sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
        r = collect(s, res, st, out, n);
        unlock(s);
        return r;
}

static int delete_one(struct sq_store *s, enum stmt_id sid, const char *id, const char *what)
{
        sqlite3_stmt *st;
        int r;

        if (!id)
                return -EINVAL;
        lock(s);
        st = stmt(s, sid);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        r = row_write(s, st, OP_DELETE, true, what, id);
        unlock(s);
        return r;
}

/* ---------------------------------------------------------------- list queries */

struct sbuf {
        char *p;
        size_t len, cap;
        bool oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if (b->p && b->len + (size_t)n < b->cap) {
                        b->len += (size_t)n;
                        return;
                }
                size_t ncap = MAX(b->cap * 2, b->len + (size_t)n + 256);
                char *np = realloc(b->p, ncap);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = ncap;
        }
}

static const char *const sort_keys[] = {"created_at", "updated_at", "name", "status", "id"};

static const char *sort_column(const char *key)
{
        if (!key)
                return "created_at";
        for (size_t i = 0; i < ARRAY_SIZE(sort_keys); i++)
                if (strcmp(key, sort_keys[i]) == 0)
                        return sort_keys[i];
        return NULL;
}

static const struct filter_spec *find_filter(const struct resource *res, const char *key)
{
        if (!key)
                return NULL;
        for (size_t i = 0; i < res->nfilters; i++)
                if (strcmp(res->filters[i].key, key) == 0)
                        return &res->filters[i];
        return NULL;
}

/* Sort value of the marker row, or -ENOENT when the marker is not an id of
 * this project's resources. */
static int marker_value(struct sq_store *s, const struct resource *res, const char *col,
                        const struct store_list_query *q, sqlite3_value **val)
{
        struct sbuf sql = {0};
        sqlite3_stmt *st = NULL;
        int rc, r;

        sb_printf(&sql, "SELECT %s.%s FROM %s WHERE %s.id = ?1 AND %s.project_id = ?2", res->alias,
                  col, res->from, res->alias, res->alias);
        if (sql.oom) {
                free(sql.p);
                return -ENOMEM;
        }
        rc = sqlite3_prepare_v2(s->db, sql.p, -1, &st, NULL);
        free(sql.p);
        if (rc != SQLITE_OK)
                return map_rc(s, rc, OP_READ, "list marker");
        sqlite3_bind_text(st, 1, q->marker, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, q->project_id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *val = sqlite3_value_dup(sqlite3_column_value(st, 0));
                r = *val ? 0 : -ENOMEM;
        } else if (rc == SQLITE_DONE) {
                r = -ENOENT;
        } else {
                r = map_rc(s, rc, OP_READ, "list marker");
        }
        sqlite3_finalize(st);
        return r;
}

static int list_query(struct sq_store *s, const struct resource *res,
                      const struct store_list_query *q, void **out, size_t *n)
{
        const char *col, *a = res->alias, *dir;
        sqlite3_value *mval = NULL;
        struct sbuf sql = {0};
        sqlite3_stmt *st = NULL;
        int rc, r, bi = 1;

        *out = NULL;
        *n = 0;
        if (!q || !q->project_id || q->limit < 0 || q->limit > 1000 || q->offset < 0 ||
            q->changes_since < 0 || (q->nfilters && !q->filters))
                return -EINVAL;
        col = sort_column(q->sort_key);
        if (!col)
                return -EINVAL;
        for (size_t i = 0; i < q->nfilters; i++)
                if (!find_filter(res, q->filters[i].key) || !q->filters[i].value)
                        return -EINVAL;
        dir = q->sort_asc ? "ASC" : "DESC";

        lock(s);
        if (q->marker) {
                r = marker_value(s, res, col, q, &mval);
                if (r < 0)
                        goto out;
        }
        sb_printf(&sql, "SELECT %s FROM %s WHERE %s.project_id = ?", res->cols, res->from, a);
        for (size_t i = 0; i < q->nfilters; i++)
                sb_printf(&sql, " AND %s", find_filter(res, q->filters[i].key)->sql);
        if (q->changes_since)
                sb_printf(&sql, " AND (%s.created_at >= ? OR %s.updated_at >= ?)", a, a);
        /* Strictly after the marker in (sort key, id) order: ties in the sort
         * key are ordered by id, so no row is skipped or repeated. */
        if (mval)
                sb_printf(&sql, " AND (%s.%s, %s.id) %s (?, ?)", a, col, a,
                          q->sort_asc ? ">" : "<");
        sb_printf(&sql, " ORDER BY %s.%s %s, %s.id %s LIMIT ? OFFSET ?", a, col, dir, a, dir);
        if (sql.oom) {
                r = -ENOMEM;
                goto out;
        }
        rc = sqlite3_prepare_v2(s->db, sql.p, -1, &st, NULL);
        if (rc != SQLITE_OK) {
                r = map_rc(s, rc, OP_READ, "list prepare");
                goto out;
        }
        sqlite3_bind_text(st, bi++, q->project_id, -1, SQLITE_TRANSIENT);
        for (size_t i = 0; i < q->nfilters; i++) {
                const struct filter_spec *f = find_filter(res, q->filters[i].key);
                for (int k = 0; k < f->nbind; k++)
                        sqlite3_bind_text(st, bi++, q->filters[i].value, -1, SQLITE_TRANSIENT);
        }
        if (q->changes_since) {
                sqlite3_bind_int64(st, bi++, q->changes_since);
                sqlite3_bind_int64(st, bi++, q->changes_since);
        }
        if (mval) {
                sqlite3_bind_value(st, bi++, mval);
                sqlite3_bind_text(st, bi++, q->marker, -1, SQLITE_TRANSIENT);
        }
        sqlite3_bind_int(st, bi++, q->limit ? q->limit : 1000);
        sqlite3_bind_int64(st, bi++, q->offset);
        r = collect(s, res, st, out, n);
out:
        sqlite3_finalize(st);
        unlock(s);
        sqlite3_value_free(mval);
        free(sql.p);
        return r;
}

/* ---------------------------------------------------------------- volumes */

static void bind_volume(sqlite3_stmt *st, const struct store_volume *v)
{
        BIND_STR(st, 1, v->id);
        BIND_STR(st, 2, v->project_id);
        BIND_STR(st, 3, v->name);
        BIND_STR(st, 4, v->description);
        BIND_STR(st, 5, v->availability_zone);
        BIND_STR(st, 6, v->status);
        BIND_STR(st, 7, v->volume_type);
        sqlite3_bind_text(st, 8, v->metadata_json ? v->metadata_json : "{}", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 9, v->size_gib);
        sqlite3_bind_int(st, 10, v->multiattach);
        sqlite3_bind_int(st, 11, v->fenced);
        BIND_STR(st, 12, v->error_message);
        sqlite3_bind_int64(st, 13, v->created_at);
        sqlite3_bind_int64(st, 14, v->updated_at);
}

static int sq_volume_insert(struct store *base, const struct store_volume *v)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, ST_VOL_INSERT);
        bind_volume(st, v);
        r = row_write(s, st, OP_WRITE, false, "volume insert", v->id);
        unlock(s);
        return r;
}

static int sq_volume_get(struct store *base, const char *project_id, const char *id,
                         struct store_volume *out)
{
        struct sq_store *s = sq_of(base);

        memset(out, 0, sizeof(*out));
        return get_one(s, &res_volume, ST_VOL_GET, project_id, id, out);
}

static int sq_volume_update(struct store *base, const struct store_volume *v)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, ST_VOL_UPDATE);
        bind_volume(st, v);
        r = row_write(s, st, OP_WRITE, true, "volume update", v->id);
        unlock(s);
        return r;
}

static int sq_volume_delete(struct store *base, const char *id)
{
        struct sq_store *s = sq_of(base);

        return delete_one(s, ST_VOL_DELETE, id, "volume delete");
}

static int sq_volume_list(struct store *base, const struct store_list_query *q,
                          struct store_volume **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_query(s, &res_volume, q, (void **)out, n);
}

static int sq_volume_list_all(struct store *base, struct store_volume **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_all(s, &res_volume, ST_VOL_ALL, NULL, (void **)out, n);
}

/* ---------------------------------------------------------------- pairs */

static void bind_pair(sqlite3_stmt *st, const struct store_pair *p)
{
        BIND_STR(st, 1, p->id);
        BIND_STR(st, 2, p->project_id);
        BIND_STR(st, 3, p->name);
        BIND_STR(st, 4, p->description);
        BIND_STR(st, 5, p->status);
        bind_str_or_null(st, 6, p->group_id, sizeof(p->group_id));
        BIND_STR(st, 7, p->volume_ids[0]);
        BIND_STR(st, 8, p->volume_ids[1]);
        BIND_STR(st, 9, p->priority_station);
        BIND_STR(st, 10, p->replication_model);
        BIND_STR(st, 11, p->replication_status);
        sqlite3_bind_int(st, 12, p->progress);
        BIND_STR(st, 13, p->failure_detail);
        sqlite3_bind_int(st, 14, p->fault_level);
        sqlite3_bind_int64(st, 15, p->volume_size_gib);
        BIND_STR(st, 16, p->volume_type);
        sqlite3_bind_int(st, 17, p->multiattach);
        BIND_STR(st, 18, p->mirror_mode);
        sqlite3_bind_int64(st, 19, p->created_at);
        sqlite3_bind_int64(st, 20, p->updated_at);
        sqlite3_bind_int64(st, 21, p->frozen_at);
}

static int sq_pair_insert(struct store *base, const struct store_pair *p)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, ST_PAIR_INSERT);
        bind_pair(st, p);
        r = row_write(s, st, OP_WRITE, false, "pair insert", p->id);
        unlock(s);
        return r;
}

static int sq_pair_get(struct store *base, const char *project_id, const char *id,
                       struct store_pair *out)
{
        struct sq_store *s = sq_of(base);

        memset(out, 0, sizeof(*out));
        return get_one(s, &res_pair, ST_PAIR_GET, project_id, id, out);
}

static int sq_pair_update(struct store *base, const struct store_pair *p)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, ST_PAIR_UPDATE);
        bind_pair(st, p);
        r = row_write(s, st, OP_WRITE, true, "pair update", p->id);
        unlock(s);
        return r;
}

static int sq_pair_delete(struct store *base, const char *id)
{
        struct sq_store *s = sq_of(base);

        return delete_one(s, ST_PAIR_DELETE, id, "pair delete");
}

static int sq_pair_list(struct store *base, const struct store_list_query *q,
                        struct store_pair **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_query(s, &res_pair, q, (void **)out, n);
}

static int sq_pair_list_all(struct store *base, struct store_pair **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_all(s, &res_pair, ST_PAIR_ALL, NULL, (void **)out, n);
}

static int sq_pair_list_by_group(struct store *base, const char *group_id, struct store_pair **out,
                                 size_t *n)
{
        struct sq_store *s = sq_of(base);

        if (!group_id)
                return -EINVAL;
        return list_all(s, &res_pair, ST_PAIR_BY_GROUP, group_id, (void **)out, n);
}

/* ---------------------------------------------------------------- groups */

static void bind_group(sqlite3_stmt *st, const struct store_group *g)
{
        BIND_STR(st, 1, g->id);
        BIND_STR(st, 2, g->project_id);
        BIND_STR(st, 3, g->name);
        BIND_STR(st, 4, g->description);
        BIND_STR(st, 5, g->status);
        BIND_STR(st, 6, g->priority_station);
        BIND_STR(st, 7, g->replication_model);
        BIND_STR(st, 8, g->replication_status);
        BIND_STR(st, 9, g->failure_detail);
        sqlite3_bind_int(st, 10, g->fault_level);
        sqlite3_bind_int64(st, 11, g->frozen_at);
        sqlite3_bind_int64(st, 12, g->created_at);
        sqlite3_bind_int64(st, 13, g->updated_at);
}

static int sq_group_insert(struct store *base, const struct store_group *g)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, ST_GROUP_INSERT);
        bind_group(st, g);
        r = row_write(s, st, OP_WRITE, false, "group insert", g->id);
        unlock(s);
        return r;
}

static int sq_group_get(struct store *base, const char *project_id, const char *id,
                        struct store_group *out)
{
        struct sq_store *s = sq_of(base);

        memset(out, 0, sizeof(*out));
        return get_one(s, &res_group, ST_GROUP_GET, project_id, id, out);
}

static int sq_group_update(struct store *base, const struct store_group *g)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, ST_GROUP_UPDATE);
        bind_group(st, g);
        r = row_write(s, st, OP_WRITE, true, "group update", g->id);
        unlock(s);
        return r;
}

static int sq_group_delete(struct store *base, const char *id)
{
        struct sq_store *s = sq_of(base);

        return delete_one(s, ST_GROUP_DELETE, id, "group delete");
}

static int sq_group_list(struct store *base, const struct store_list_query *q,
                         struct store_group **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_query(s, &res_group, q, (void **)out, n);
}

static int sq_group_list_all(struct store *base, struct store_group **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_all(s, &res_group, ST_GROUP_ALL, NULL, (void **)out, n);
}

/* ---------------------------------------------------------------- attachments */

static int sq_attachment_insert(struct store *base, const struct store_attachment *a)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        lock(s);
        st = stmt(s, ST_ATT_INSERT);
        BIND_STR(st, 1, a->id);
        BIND_STR(st, 2, a->volume_id);
        BIND_STR(st, 3, a->project_id);
        BIND_STR(st, 4, a->export_name);
        BIND_STR(st, 5, a->connector);
        sqlite3_bind_int(st, 6, a->read_only);
        BIND_STR(st, 7, a->psk_key);
        sqlite3_bind_int64(st, 8, a->created_at);
        r = row_write(s, st, OP_WRITE, false, "attachment insert", a->id);
        unlock(s);
        return r;
}

static int sq_attachment_delete(struct store *base, const char *id)
{
        struct sq_store *s = sq_of(base);

        return delete_one(s, ST_ATT_DELETE, id, "attachment delete");
}

static int sq_attachment_list_all(struct store *base, struct store_attachment **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_all(s, &res_attachment, ST_ATT_ALL, NULL, (void **)out, n);
}

static int sq_attachment_list_by_volume(struct store *base, const char *volume_id,
                                        struct store_attachment **out, size_t *n)
{
        struct sq_store *s = sq_of(base);

        return list_all(s, &res_attachment, ST_ATT_BY_VOLUME, volume_id, (void **)out, n);
}

/* ---------------------------------------------------------------- quotas */

static int bind_quota_field(sqlite3_stmt *st, int i, int64_t v)
{
        return v == STORE_QUOTA_DEFAULT ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

static int64_t col_quota_field(sqlite3_stmt *st, int i)
{
        return sqlite3_column_type(st, i) == SQLITE_NULL ? STORE_QUOTA_DEFAULT
                                                         : sqlite3_column_int64(st, i);
}

static int sq_quota_get(struct store *base, const char *project_id, struct store_quota *out)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int rc, r = 0;

        memset(out, 0, sizeof(*out));
        out->volumes = out->gigabytes = STORE_QUOTA_DEFAULT;
        if (!project_id)
                return -EINVAL;
        snprintf(out->project_id, sizeof(out->project_id), "%s", project_id);
        lock(s);
        st = stmt(s, ST_QUOTA_GET);
        sqlite3_bind_text(st, 1, project_id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                out->volumes = col_quota_field(st, 0);
                out->gigabytes = col_quota_field(st, 1);
                out->updated_at = sqlite3_column_int64(st, 2);
        } else if (rc != SQLITE_DONE) {
                r = map_rc(s, rc, OP_READ, "quota get");
        }
        sqlite3_reset(st);
        unlock(s);
        return r;
}

static int sq_quota_set(struct store *base, const struct store_quota *q)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        if (q->volumes < STORE_QUOTA_DEFAULT || q->gigabytes < STORE_QUOTA_DEFAULT)
                return -EINVAL;
        lock(s);
        st = stmt(s, ST_QUOTA_SET);
        BIND_STR(st, 1, q->project_id);
        bind_quota_field(st, 2, q->volumes);
        bind_quota_field(st, 3, q->gigabytes);
        sqlite3_bind_int64(st, 4, q->updated_at);
        r = row_write(s, st, OP_WRITE, false, "quota set", q->project_id);
        unlock(s);
        return r;
}

static int sq_quota_delete(struct store *base, const char *project_id)
{
        struct sq_store *s = sq_of(base);

        sqlite3_stmt *st;
        int r;

        if (!project_id)
                return -EINVAL;
        lock(s);
        st = stmt(s, ST_QUOTA_DELETE);
        sqlite3_bind_text(st, 1, project_id, -1, SQLITE_TRANSIENT);
        r = row_write(s, st, OP_DELETE, false, "quota delete", project_id);
        unlock(s);
        return r;
}

/* One row of integer aggregates into out[0..n-1]. */
static int aggregate(struct sq_store *s, enum stmt_id sid, const char *key, int64_t *out, int n,
                     const char *what)
{
        sqlite3_stmt *st;
        int rc, r = 0;

        if (!key)
                return -EINVAL;
        lock(s);
        st = stmt(s, sid);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                for (int i = 0; i < n; i++)
                        out[i] = sqlite3_column_int64(st, i);
        } else {
                r = map_rc(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc, OP_READ, what);
        }
        sqlite3_reset(st);
        unlock(s);
        return r;
}

static int sq_project_usage(struct store *base, const char *project_id, int64_t *volumes,
                            int64_t *gigabytes)
{
        struct sq_store *s = sq_of(base);

        int64_t v[2] = {0, 0};
        int r = aggregate(s, ST_PROJECT_USAGE, project_id, v, 2, "project usage");

        *volumes = v[0];
        *gigabytes = v[1];
        return r;
}

static int sq_site_provisioned(struct store *base, const char *az, int64_t *gigabytes)
{
        struct sq_store *s = sq_of(base);

        *gigabytes = 0;
        return aggregate(s, ST_SITE_PROVISIONED, az, gigabytes, 1, "site provisioned");
}

/* ---------------------------------------------------------------- nodes */

/* The nodes table lives in store_sqlite_node.c; these give it the
 * connection under this file's lock and error mapping
 * (store_sqlite_internal.h). */
void store_sqlite_lock(struct store *base)
{
        lock(sq_of(base));
}

void store_sqlite_unlock(struct store *base)
{
        unlock(sq_of(base));
}

int store_sqlite_prepare(struct store *base, const char *sql, sqlite3_stmt **st, const char *what)
{
        struct sq_store *s = sq_of(base);
        int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

        return rc == SQLITE_OK ? 0 : map_rc(s, rc, OP_READ, what);
}

int store_sqlite_prepare_cached(struct store *base, const char *sql, sqlite3_stmt **st,
                                const char *what)
{
        struct sq_store *s = sq_of(base);
        int i, rc;

        for (i = 0; i < SQ_CACHED_MAX && s->cached[i].sql; i++) {
                if (s->cached[i].sql == sql) {
                        *st = s->cached[i].st;
                        return 0;
                }
        }
        if (i == SQ_CACHED_MAX) /* full: a programming error, caught by the unit tests */
                return map_rc(s, SQLITE_NOMEM, OP_READ, what);
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
        if (rc != SQLITE_OK)
                return map_rc(s, rc, OP_READ, what);
        s->cached[i].sql = sql;
        s->cached[i].st = *st;
        return 0;
}

void store_sqlite_release(sqlite3_stmt *st)
{
        if (st) {
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
        }
}

int store_sqlite_map(struct store *base, int rc, const char *what)
{
        return map_rc(sq_of(base), rc, OP_READ, what);
}

int store_sqlite_row_write(struct store *base, sqlite3_stmt *st, bool is_delete, bool must_touch,
                           const char *what, const char *id)
{
        return row_write(sq_of(base), st, is_delete ? OP_DELETE : OP_WRITE, must_touch, what, id);
}

/* ---------------------------------------------------------------- ops */

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .tx_begin = sq_tx_begin,
    .tx_commit = sq_tx_commit,
    .tx_rollback = sq_tx_rollback,
    .volume_insert = sq_volume_insert,
    .volume_get = sq_volume_get,
    .volume_update = sq_volume_update,
    .volume_delete = sq_volume_delete,
    .volume_list = sq_volume_list,
    .volume_list_all = sq_volume_list_all,
    .pair_insert = sq_pair_insert,
    .pair_get = sq_pair_get,
    .pair_update = sq_pair_update,
    .pair_delete = sq_pair_delete,
    .pair_list = sq_pair_list,
    .pair_list_all = sq_pair_list_all,
    .pair_list_by_group = sq_pair_list_by_group,
    .group_insert = sq_group_insert,
    .group_get = sq_group_get,
    .group_update = sq_group_update,
    .group_delete = sq_group_delete,
    .group_list = sq_group_list,
    .group_list_all = sq_group_list_all,
    .attachment_insert = sq_attachment_insert,
    .attachment_delete = sq_attachment_delete,
    .attachment_list_all = sq_attachment_list_all,
    .attachment_list_by_volume = sq_attachment_list_by_volume,
    .quota_get = sq_quota_get,
    .quota_set = sq_quota_set,
    .quota_delete = sq_quota_delete,
    .project_usage = sq_project_usage,
    .site_provisioned = sq_site_provisioned,
    .now_usec = store_sqlite_now_usec,
    .node_register = store_sqlite_node_register,
    .node_renew = store_sqlite_node_renew,
    .node_get = store_sqlite_node_get,
    .node_take_roles = store_sqlite_node_take_roles,
    .node_list = store_sqlite_node_list,
    .node_delete = store_sqlite_node_delete,
    .group_throttle_get = store_sqlite_group_throttle_get,
    .group_throttle_set = store_sqlite_group_throttle_set,
    .group_release_bump = store_sqlite_group_release_bump,
    .group_release_get = store_sqlite_group_release_get,
};
