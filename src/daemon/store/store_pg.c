/* PostgreSQL backend of the control-plane store (see store.h,
 * docs/design/store.md "PostgreSQL"): selected when the store path is a libpq
 * connection URI (postgresql://... or postgres://...). Several evsrepd nodes
 * may share one database.
 *
 * Locking, in process: one connection, one recursive mutex, exactly as the
 * SQLite backend. Every public call holds the mutex for its whole run;
 * store_tx_begin keeps it held by the calling thread until commit/rollback.
 *
 * Across nodes: every evsrep write transaction (store_tx_begin, and the
 * implicit transaction around a single write outside one) starts with
 * BEGIN ISOLATION LEVEL READ COMMITTED and pg_advisory_xact_lock(WRITE_LOCK),
 * so writers are serialised cluster-wide the way SQLite's BEGIN IMMEDIATE
 * serialises them in one file. Under READ COMMITTED each statement after the
 * lock sees every transaction committed before the lock was granted, so the
 * service's read-then-write inside a transaction cannot lose an update.
 * Reads outside a transaction take no lock (one statement, one snapshot).
 *
 * A failed statement inside a transaction does not end it (as in SQLite): a
 * write inside an explicit transaction runs under a savepoint that is rolled
 * back on error.
 *
 * Connection loss: when the server is gone (restart, failover, network), a
 * call outside a transaction resets the connection once and, for a read or the
 * start of a transaction, runs again; if the server is still unreachable the
 * call returns -EAGAIN. Inside a transaction the loss fails the transaction:
 * that call, every later one and the commit return -EAGAIN. A single write
 * outside a transaction whose connection broke mid-way returns -EAGAIN (its
 * outcome is unknown; a retry sees it or redoes it).
 *
 * SQL text is built only from string literals and whitelisted identifiers;
 * every value is a parameter of PQexecParams. */
#include "store/schema_pg.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "store/store_pg_internal.h"

#include "common/fault.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key of the cluster-wide evsrep write lock (ASCII "evsrwrit"). */
#define WRITE_LOCK_KEY "7311157980550031732"
#define BEGIN_SQL                                                                                  \
        "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")"

struct pg_store {
        struct store base; /* first: store.c dispatches through base.ops */
        PGconn *conn;
        pthread_mutex_t mu; /* recursive; see the top of the file */
        bool in_tx;         /* an explicit transaction (store_tx_begin) is open */
        bool tx_lost;       /* ... and the connection broke inside it */
        pthread_t tx_owner;
        int version;
};

static struct pg_store *pg_of(struct store *base)
{
        return (struct pg_store *)base; /* base is the first member */
}

static const struct store_ops pg_ops;

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

/* ---------------------------------------------------------------- parameters */

#define MAX_ARGS 24
struct args {
        int n;
        bool oom;
        const char *v[MAX_ARGS];
        char *own[MAX_ARGS];
        char num[MAX_ARGS][24];
};

static void args_free(struct args *a)
{
        for (int i = 0; i < a->n; i++)
                free(a->own[i]);
}

static int args_slot(struct args *a)
{
        if (a->n >= MAX_ARGS) {
                a->oom = true;
                return -1;
        }
        a->own[a->n] = NULL;
        return a->n++;
}

/* A struct string, bounded by its array size even without a NUL. */
#define ARG_STR(a, field) arg_str((a), (field), sizeof(field))
static void arg_str(struct args *a, const char *v, size_t cap)
{
        int i = args_slot(a);

        if (i < 0)
                return;
        a->own[i] = strndup(v ? v : "", cap);
        a->oom |= !a->own[i];
        a->v[i] = a->own[i];
}

static void arg_cstr(struct args *a, const char *v) /* NULL: SQL NULL */
{
        int i = args_slot(a);

        if (i >= 0)
                a->v[i] = v;
}

static void arg_int(struct args *a, int64_t v)
{
        int i = args_slot(a);

        if (i < 0)
                return;
        snprintf(a->num[i], sizeof(a->num[i]), "%" PRId64, v);
        a->v[i] = a->num[i];
}

/* ---------------------------------------------------------------- helpers */

static void lock(struct pg_store *s)
{
        int r = pthread_mutex_lock(&s->mu);

        if (r != 0) {
                log_error("store: mutex lock failed: %s", strerror(r));
                abort();
        }
}

static void unlock(struct pg_store *s)
{
        pthread_mutex_unlock(&s->mu);
}

enum op_kind { OP_READ, OP_WRITE, OP_DELETE };

static bool conn_ok(struct pg_store *s)
{
        return PQstatus(s->conn) == CONNECTION_OK;
}

/* Reconnect once; false when the server is still unreachable. */
static bool reconnect(struct pg_store *s)
{
        PQreset(s->conn);
        if (conn_ok(s)) {
                log_info("store: reconnected to PostgreSQL");
                return true;
        }
        log_warn("store: PostgreSQL unreachable: %.200s", PQerrorMessage(s->conn));
        return false;
}

static bool sqlstate_is(const char *st, const char *code)
{
        return st && strncmp(st, code, strlen(code)) == 0;
}

/* A failed result -> negative errno. Constraint failures are the caller's
 * mistakes (or races the service lost) and are not logged. */
static int map_res(struct pg_store *s, PGresult *res, enum op_kind kind, const char *what)
{
        const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

        if (!conn_ok(s))
                return -EAGAIN; /* the caller's connection-loss path */
        if (sqlstate_is(st, "23505") || sqlstate_is(st, "EV001"))
                return -EEXIST; /* duplicate key; volume already in a pair */
        if (sqlstate_is(st, "23503"))
                return kind == OP_DELETE ? -EBUSY : -ENOENT;
        if (sqlstate_is(st, "23514") || sqlstate_is(st, "23502") || sqlstate_is(st, "22"))
                return -EINVAL; /* CHECK, NOT NULL, bad value (not JSON, bad UTF-8) */
        if (sqlstate_is(st, "40") || sqlstate_is(st, "55P03") || sqlstate_is(st, "57P") ||
            sqlstate_is(st, "08")) {
                log_warn("store: %s: %s", what, st);
                return -EAGAIN;
        }
        if (!res) {
                log_error("store: %s: out of memory", what);
                return -ENOMEM;
        }
        log_error("store: %s: %s (%s)", what, PQresultErrorMessage(res), st ? st : "-");
        return -EIO;
}

/* Run a parameterless statement (transaction control). */
static int run_simple(struct pg_store *s, const char *sql, const char *expect_tag)
{
        PGresult *res = PQexec(s->conn, sql);
        ExecStatusType st = PQresultStatus(res);
        int r = 0;

        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                r = map_res(s, res, OP_WRITE, sql);
        else if (expect_tag && strcmp(PQcmdStatus(res), expect_tag) != 0)
                r = -EIO; /* e.g. COMMIT of an aborted transaction says ROLLBACK */
        PQclear(res);
        return r;
}

/* Start a write transaction (BEGIN + the cluster-wide write lock). Not in a
 * transaction yet, so a dead connection is reset and the start retried once. */
static int begin_locked(struct pg_store *s)
{
        int r;

        if (!conn_ok(s) && !reconnect(s))
                return -EAGAIN;
        r = run_simple(s, BEGIN_SQL, NULL);
        if (r < 0 && !conn_ok(s)) {
                if (!reconnect(s))
                        return -EAGAIN;
                r = run_simple(s, BEGIN_SQL, NULL);
        }
        if (r < 0 && conn_ok(s))
                run_simple(s, "ROLLBACK", NULL);
        return r;
}

/* Run one statement. 0 with *out holding the result (free with PQclear), or a
 * negative errno. Handles connection loss as described at the top. */
static int run(struct pg_store *s, const char *sql, const struct args *a, enum op_kind kind,
               const char *what, PGresult **out)
{
        PGresult *res;
        ExecStatusType st;
        int r;

        *out = NULL;
        if (a && a->oom)
                return -ENOMEM;
        if (s->in_tx && s->tx_lost)
                return -EAGAIN;
        if (!s->in_tx && !conn_ok(s) && !reconnect(s))
                return -EAGAIN;
        for (int attempt = 0;; attempt++) {
                res =
                    PQexecParams(s->conn, sql, a ? a->n : 0, NULL, a ? a->v : NULL, NULL, NULL, 0);
                st = PQresultStatus(res);
                if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                        *out = res;
                        return 0;
                }
                if (conn_ok(s)) {
                        r = map_res(s, res, kind, what);
                        PQclear(res);
                        return r;
                }
                PQclear(res);
                log_warn("store: %s: connection to PostgreSQL lost", what);
                if (s->in_tx) {
                        s->tx_lost = true;
                        return -EAGAIN;
                }
                /* Outside a transaction (a read, or a write inside the
                 * implicit transaction, which the caller ends): reconnect;
                 * only a read is run again. */
                if (!reconnect(s) || kind != OP_READ || attempt > 0)
                        return -EAGAIN;
        }
}

static bool s_bool(PGresult *res, int row, int col)
{
        return strtoll(PQgetvalue(res, row, col), NULL, 10) != 0;
}

/* A row write (insert, update, delete), with the same fault point as SQLite
 * outside a transaction. Outside an explicit transaction it runs in its own
 * write transaction (the cluster-wide lock: a single write must not slip into
 * another node's read-then-write); inside one, under a savepoint so that a
 * failure leaves the transaction usable. */
static int row_write(struct pg_store *s, const char *sql, struct args *a, enum op_kind kind,
                     bool must_touch, const char *what, const char *id)
{
        PGresult *res = NULL;
        int r;

        if (a->oom) {
                args_free(a);
                return -ENOMEM;
        }
        if (!s->in_tx) {
                r = fault_check(FP_STORE_WRITE, id);
                if (r == 0)
                        r = begin_locked(s);
                if (r == 0)
                        r = run(s, sql, a, kind, what, &res);
                if (r == 0 && must_touch && strcmp(PQcmdTuples(res), "0") == 0)
                        r = -ENOENT;
                if (r == 0)
                        r = run_simple(s, "COMMIT", "COMMIT");
                else if (conn_ok(s) && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
                        run_simple(s, "ROLLBACK", NULL);
                if (r == -EIO && !conn_ok(s))
                        r = -EAGAIN;
        } else {
                r = run(s, "SAVEPOINT evsrep_write", NULL, OP_WRITE, what, &res);
                PQclear(res);
                res = NULL;
                if (r == 0) {
                        r = run(s, sql, a, kind, what, &res);
                        if (r == 0 && must_touch && strcmp(PQcmdTuples(res), "0") == 0)
                                r = -ENOENT;
                        if (!s->tx_lost)
                                run_simple(s,
                                           r == 0 && res ? "RELEASE SAVEPOINT evsrep_write"
                                                         : "ROLLBACK TO SAVEPOINT evsrep_write",
                                           NULL);
                }
        }
        PQclear(res);
        args_free(a);
        return r;
}

/* ---------------------------------------------------------------- open/close */

static void pg_close(struct store *base)
{
        struct pg_store *s = pg_of(base);

        if (s->conn)
                PQfinish(s->conn);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

/* Server NOTICEs (e.g. "relation already exists, skipping" from the
 * idempotent CREATE IF NOT EXISTS) are expected chatter, not for stderr. */
static void notice_drop(void *arg, const char *message)
{
        (void)arg;
        log_debug("store: postgresql: %.200s", message);
}

int store_pg_open(const char *uri, struct store **out, char *err, size_t errlen)
{
        /* The URI's own keywords override these defaults (expand_dbname:
         * later keywords win, and dbname comes last). */
        /* Keepalives and tcp_user_timeout: a connection cut by the network
         * fails within seconds rather than at the kernel's TCP timeout
         * (minutes); multi-site.md "Self-fence as built". */
        static const char *const kw[] = {"connect_timeout",  "application_name",
                                         "client_encoding",  "keepalives",
                                         "keepalives_idle",  "keepalives_interval",
                                         "keepalives_count", "tcp_user_timeout",
                                         "dbname",           NULL};
        const char *val[] = {"10", "evsrepd", "UTF8", "1", "5", "2", "3", "10000", uri, NULL};
        struct pg_store *s;
        pthread_mutexattr_t ma;
        char dummy[1];
        int r;

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
        s->base.ops = &pg_ops;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&s->mu, &ma);
        pthread_mutexattr_destroy(&ma);

        s->conn = PQconnectdbParams(kw, val, 1);
        if (!s->conn || !conn_ok(s)) {
                /* Never echo the URI: it may hold a password. */
                snprintf(err, errlen, "cannot connect to the PostgreSQL store: %s",
                         s->conn ? PQerrorMessage(s->conn) : "out of memory");
                err[strcspn(err, "\n")] = '\0';
                r = -EIO;
                goto fail;
        }
        PQsetNoticeProcessor(s->conn, notice_drop, NULL);
        r = store_schema_pg_migrate(s->conn, &s->version, err, errlen);
        if (r < 0)
                goto fail;
        *out = &s->base;
        return 0;
fail:
        if (err[0])
                log_error("store: %s", err);
        pg_close(&s->base);
        return r;
}

static int pg_schema_version(struct store *base)
{
        return pg_of(base)->version;
}

/* ---------------------------------------------------------------- transactions */

static int pg_tx_begin(struct store *base)
{
        struct pg_store *s = pg_of(base);
        int r;

        lock(s);
        if (s->in_tx) {
                unlock(s); /* nesting is refused, as in SQLite */
                return -EBUSY;
        }
        r = fault_check(FP_STORE_BUSY, NULL) < 0 ? -EAGAIN : begin_locked(s);
        if (r < 0) {
                unlock(s);
                return r;
        }
        s->in_tx = true;
        s->tx_lost = false;
        s->tx_owner = pthread_self();
        return 0; /* the lock stays held until commit/rollback */
}

static bool owns_tx(struct pg_store *s)
{
        return s->in_tx && pthread_equal(s->tx_owner, pthread_self());
}

static int pg_tx_commit(struct store *base)
{
        struct pg_store *s = pg_of(base);
        int r;

        lock(s);
        if (!owns_tx(s)) {
                unlock(s);
                return -EINVAL;
        }
        if (s->tx_lost) {
                r = -EAGAIN; /* the server rolled it back when the connection went */
        } else {
                r = fault_check(FP_STORE_COMMIT, NULL);
                if (r == 0)
                        r = run_simple(s, "COMMIT", "COMMIT");
                /* A connection lost during COMMIT: the outcome is unknown. */
                if (r < 0 && !conn_ok(s))
                        r = -EAGAIN;
                else if (r < 0 && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
                        run_simple(s, "ROLLBACK", NULL);
        }
        s->in_tx = false;
        s->tx_lost = false;
        unlock(s); /* ours, above */
        unlock(s); /* taken by store_tx_begin */
        return r;
}

static void pg_tx_rollback(struct store *base)
{
        struct pg_store *s = pg_of(base);

        lock(s);
        if (!owns_tx(s)) {
                unlock(s);
                return;
        }
        if (!s->tx_lost && conn_ok(s))
                run_simple(s, "ROLLBACK", NULL);
        s->in_tx = false;
        s->tx_lost = false;
        unlock(s);
        unlock(s);
}

/* ---------------------------------------------------------------- row readers */

static int read_volume(PGresult *res, int row, void *out)
{
        struct store_volume *v = out;

        memset(v, 0, sizeof(*v));
        COL_STR(res, row, 0, v->id);
        COL_STR(res, row, 1, v->project_id);
        COL_STR(res, row, 2, v->name);
        COL_STR(res, row, 3, v->description);
        COL_STR(res, row, 4, v->availability_zone);
        COL_STR(res, row, 5, v->status);
        COL_STR(res, row, 6, v->volume_type);
        v->metadata_json = strdup(PQgetisnull(res, row, 7) ? "{}" : PQgetvalue(res, row, 7));
        if (!v->metadata_json)
                return -ENOMEM;
        v->size_gib = store_pg_col_int(res, row, 8);
        v->multiattach = s_bool(res, row, 9);
        v->fenced = s_bool(res, row, 10);
        COL_STR(res, row, 11, v->error_message);
        v->created_at = store_pg_col_int(res, row, 12);
        v->updated_at = store_pg_col_int(res, row, 13);
        COL_STR(res, row, 14, v->pair_id);
        return 0;
}

static int read_pair(PGresult *res, int row, void *out)
{
        struct store_pair *p = out;

        memset(p, 0, sizeof(*p));
        COL_STR(res, row, 0, p->id);
        COL_STR(res, row, 1, p->project_id);
        COL_STR(res, row, 2, p->name);
        COL_STR(res, row, 3, p->description);
        COL_STR(res, row, 4, p->status);
        COL_STR(res, row, 5, p->group_id);
        COL_STR(res, row, 6, p->volume_ids[0]);
        COL_STR(res, row, 7, p->volume_ids[1]);
        COL_STR(res, row, 8, p->priority_station);
        COL_STR(res, row, 9, p->replication_model);
        COL_STR(res, row, 10, p->replication_status);
        p->progress = (int)store_pg_col_int(res, row, 11);
        COL_STR(res, row, 12, p->failure_detail);
        p->fault_level = (int)store_pg_col_int(res, row, 13);
        p->volume_size_gib = store_pg_col_int(res, row, 14);
        COL_STR(res, row, 15, p->volume_type);
        p->multiattach = s_bool(res, row, 16);
        COL_STR(res, row, 17, p->mirror_mode);
        p->created_at = store_pg_col_int(res, row, 18);
        p->updated_at = store_pg_col_int(res, row, 19);
        p->frozen_at = store_pg_col_int(res, row, 20);
        return 0;
}

static int read_group(PGresult *res, int row, void *out)
{
        struct store_group *g = out;

        memset(g, 0, sizeof(*g));
        COL_STR(res, row, 0, g->id);
        COL_STR(res, row, 1, g->project_id);
        COL_STR(res, row, 2, g->name);
        COL_STR(res, row, 3, g->description);
        COL_STR(res, row, 4, g->status);
        COL_STR(res, row, 5, g->priority_station);
        COL_STR(res, row, 6, g->replication_model);
        COL_STR(res, row, 7, g->replication_status);
        COL_STR(res, row, 8, g->failure_detail);
        g->fault_level = (int)store_pg_col_int(res, row, 9);
        g->frozen_at = store_pg_col_int(res, row, 10);
        g->created_at = store_pg_col_int(res, row, 11);
        g->updated_at = store_pg_col_int(res, row, 12);
        return 0;
}

static int read_attachment(PGresult *res, int row, void *out)
{
        struct store_attachment *a = out;

        memset(a, 0, sizeof(*a));
        COL_STR(res, row, 0, a->id);
        COL_STR(res, row, 1, a->volume_id);
        COL_STR(res, row, 2, a->project_id);
        COL_STR(res, row, 3, a->export_name);
        COL_STR(res, row, 4, a->connector);
        a->read_only = s_bool(res, row, 5);
        COL_STR(res, row, 6, a->psk_key);
        a->created_at = store_pg_col_int(res, row, 7);
        return 0;
}

/* One filter: its SQL has '?' where the (single) value goes; every '?' is the
 * same parameter. */
struct filter_spec {
        const char *key;
        const char *sql;
};

struct resource {
        const char *what;
        size_t elem_size;
        int (*read)(PGresult *, int, void *);
        void (*clear)(void *);
        const char *from;  /* "volumes v" */
        const char *alias; /* "v" */
        const char *cols;
        const struct filter_spec *filters;
        size_t nfilters;
};

static void clear_volume_any(void *v)
{
        store_volume_clear(v);
}

static const struct filter_spec volume_filters[] = {
    {"name", "v.name = ?"},
    {"status", "v.status = ?"},
    {"availability_zone", "v.availability_zone = ?"},
};
static const struct filter_spec pair_filters[] = {
    {"name", "p.name = ?"},
    {"status", "p.status = ?"},
    {"priority_station", "p.priority_station = ?"},
    {"replication_consistency_group_id", "COALESCE(p.group_id, '') = ?"},
    {"volume_id", "(p.volume_id0 = ? OR p.volume_id1 = ?)"},
    {"volume_ids", "(p.volume_id0 || ',' || p.volume_id1) = ?"},
};
static const struct filter_spec group_filters[] = {
    {"name", "g.name = ?"},
    {"status", "g.status = ?"},
    {"priority_station", "g.priority_station = ?"},
    {"volume_id", "EXISTS (SELECT 1 FROM pairs p WHERE p.group_id = g.id "
                  "AND (p.volume_id0 = ? OR p.volume_id1 = ?))"},
    {"replication_id", "EXISTS (SELECT 1 FROM pairs p WHERE p.group_id = g.id AND p.id = ?)"},
};

static const struct resource res_volume = {"volume",
                                           sizeof(struct store_volume),
                                           read_volume,
                                           clear_volume_any,
                                           "volumes v",
                                           "v",
                                           VOL_COLS,
                                           volume_filters,
                                           ARRAY_SIZE(volume_filters)};
static const struct resource res_pair = {
    "pair",       sizeof(struct store_pair), read_pair, NULL, "pairs p", "p", PAIR_COLS,
    pair_filters, ARRAY_SIZE(pair_filters)};
static const struct resource res_group = {
    "group",       sizeof(struct store_group), read_group, NULL, "groups g", "g", GROUP_COLS,
    group_filters, ARRAY_SIZE(group_filters)};
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

/* Every row of a result into a fresh array (NULL when empty). */
static int collect(const struct resource *rs, PGresult *res, void **out, size_t *n)
{
        size_t cnt = (size_t)PQntuples(res);
        char *rows;
        int r;

        *out = NULL;
        *n = 0;
        if (cnt == 0)
                return 0;
        rows = calloc(cnt, rs->elem_size);
        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < cnt; i++) {
                r = rs->read(res, (int)i, rows + i * rs->elem_size);
                if (r < 0) {
                        free_rows(rs, rows, i);
                        return r;
                }
        }
        *out = rows;
        *n = cnt;
        return 0;
}

static int get_one(struct pg_store *s, const struct resource *rs, const char *sql,
                   const char *project_id, const char *id, void *out)
{
        struct args a = {0};
        PGresult *res;
        int r;

        if (!id)
                return -EINVAL;
        arg_cstr(&a, id);
        arg_cstr(&a, project_id);
        lock(s);
        r = run(s, sql, &a, OP_READ, rs->what, &res);
        if (r == 0)
                r = PQntuples(res) > 0 ? rs->read(res, 0, out) : -ENOENT;
        PQclear(res);
        unlock(s);
        return r;
}

static int list_all(struct pg_store *s, const struct resource *rs, const char *sql, const char *arg,
                    void **out, size_t *n)
{
        struct args a = {0};
        PGresult *res;
        int r;

        *out = NULL;
        *n = 0;
        if (arg)
                arg_cstr(&a, arg);
        lock(s);
        r = run(s, sql, &a, OP_READ, rs->what, &res);
        if (r == 0)
                r = collect(rs, res, out, n);
        PQclear(res);
        unlock(s);
        return r;
}

static int delete_one(struct pg_store *s, const char *sql, const char *id, const char *what)
{
        struct args a = {0};
        int r;

        if (!id)
                return -EINVAL;
        arg_cstr(&a, id);
        lock(s);
        r = row_write(s, sql, &a, OP_DELETE, true, what, id);
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

/* A filter's SQL with each '?' replaced by $param. */
static void sb_filter(struct sbuf *b, const char *sql, int param)
{
        sb_printf(b, " AND ");
        for (const char *c = sql; *c; c++) {
                if (*c == '?')
                        sb_printf(b, "$%d", param);
                else
                        sb_printf(b, "%c", *c);
        }
}

/* Sort keys and the SQL type their marker value is cast back to. */
static const struct {
        const char *key, *cast;
} sort_keys[] = {
    {"created_at", "bigint"},         {"updated_at", "bigint"},     {"name", "text COLLATE \"C\""},
    {"status", "text COLLATE \"C\""}, {"id", "text COLLATE \"C\""},
};

static int sort_index(const char *key)
{
        if (!key)
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(sort_keys); i++)
                if (strcmp(key, sort_keys[i].key) == 0)
                        return (int)i;
        return -1;
}

static const struct filter_spec *find_filter(const struct resource *rs, const char *key)
{
        if (!key)
                return NULL;
        for (size_t i = 0; i < rs->nfilters; i++)
                if (strcmp(rs->filters[i].key, key) == 0)
                        return &rs->filters[i];
        return NULL;
}

/* Sort value (as text) of the marker row, or -ENOENT when the marker is not
 * an id of this project's resources. */
static int marker_value(struct pg_store *s, const struct resource *rs, const char *col,
                        const struct store_list_query *q, char **val)
{
        struct sbuf sql = {0};
        struct args a = {0};
        PGresult *res;
        int r;

        sb_printf(&sql, "SELECT %s.%s::text FROM %s WHERE %s.id = $1 AND %s.project_id = $2",
                  rs->alias, col, rs->from, rs->alias, rs->alias);
        if (sql.oom) {
                free(sql.p);
                return -ENOMEM;
        }
        arg_cstr(&a, q->marker);
        arg_cstr(&a, q->project_id);
        r = run(s, sql.p, &a, OP_READ, "list marker", &res);
        free(sql.p);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                r = -ENOENT;
        } else {
                *val = strdup(PQgetvalue(res, 0, 0));
                r = *val ? 0 : -ENOMEM;
        }
        PQclear(res);
        return r;
}

static int list_query(struct pg_store *s, const struct resource *rs,
                      const struct store_list_query *q, void **out, size_t *n)
{
        const char *a = rs->alias, *dir, *col;
        char *mval = NULL;
        struct sbuf sql = {0};
        struct args args = {0};
        PGresult *res = NULL;
        int r, si;

        *out = NULL;
        *n = 0;
        if (!q || !q->project_id || q->limit < 0 || q->limit > 1000 || q->offset < 0 ||
            q->changes_since < 0 || (q->nfilters && !q->filters) || q->nfilters > 16)
                return -EINVAL;
        si = sort_index(q->sort_key);
        if (si < 0)
                return -EINVAL;
        col = sort_keys[si].key;
        for (size_t i = 0; i < q->nfilters; i++)
                if (!find_filter(rs, q->filters[i].key) || !q->filters[i].value)
                        return -EINVAL;
        dir = q->sort_asc ? "ASC" : "DESC";

        lock(s);
        if (q->marker) {
                r = marker_value(s, rs, col, q, &mval);
                if (r < 0)
                        goto out;
        }
        arg_cstr(&args, q->project_id);
        sb_printf(&sql, "SELECT %s FROM %s WHERE %s.project_id = $%d", rs->cols, rs->from, a,
                  args.n);
        for (size_t i = 0; i < q->nfilters; i++) {
                arg_cstr(&args, q->filters[i].value);
                sb_filter(&sql, find_filter(rs, q->filters[i].key)->sql, args.n);
        }
        if (q->changes_since) {
                arg_int(&args, q->changes_since);
                sb_printf(&sql, " AND (%s.created_at >= $%d OR %s.updated_at >= $%d)", a, args.n, a,
                          args.n);
        }
        /* Strictly after the marker in (sort key, id) order: ties in the sort
         * key are ordered by id, so no row is skipped or repeated. */
        if (mval) {
                arg_cstr(&args, mval);
                arg_cstr(&args, q->marker);
                sb_printf(&sql, " AND (%s.%s, %s.id) %s ($%d::%s, $%d::text COLLATE \"C\")", a, col,
                          a, q->sort_asc ? ">" : "<", args.n - 1, sort_keys[si].cast, args.n);
        }
        arg_int(&args, q->limit ? q->limit : 1000);
        arg_int(&args, q->offset);
        sb_printf(&sql, " ORDER BY %s.%s %s, %s.id %s LIMIT $%d OFFSET $%d", a, col, dir, a, dir,
                  args.n - 1, args.n);
        if (sql.oom) {
                r = -ENOMEM;
                goto out;
        }
        r = run(s, sql.p, &args, OP_READ, rs->what, &res);
        if (r == 0)
                r = collect(rs, res, out, n);
out:
        PQclear(res);
        unlock(s);
        args_free(&args);
        free(mval);
        free(sql.p);
        return r;
}

/* ---------------------------------------------------------------- volumes */

static void args_volume(struct args *a, const struct store_volume *v)
{
        ARG_STR(a, v->id);
        ARG_STR(a, v->project_id);
        ARG_STR(a, v->name);
        ARG_STR(a, v->description);
        ARG_STR(a, v->availability_zone);
        ARG_STR(a, v->status);
        ARG_STR(a, v->volume_type);
        arg_cstr(a, v->metadata_json ? v->metadata_json : "{}");
        arg_int(a, v->size_gib);
        arg_int(a, v->multiattach);
        arg_int(a, v->fenced);
        ARG_STR(a, v->error_message);
        arg_int(a, v->created_at);
        arg_int(a, v->updated_at);
}

static int pg_volume_insert(struct store *base, const struct store_volume *v)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        args_volume(&a, v);
        lock(s);
        r = row_write(s,
                      "INSERT INTO volumes (id, project_id, name, description, availability_zone, "
                      "status, volume_type, metadata_json, size_gib, multiattach, fenced, "
                      "error_message, created_at, updated_at) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                      &a, OP_WRITE, false, "volume insert", v->id);
        unlock(s);
        return r;
}

static int pg_volume_get(struct store *base, const char *project_id, const char *id,
                         struct store_volume *out)
{
        memset(out, 0, sizeof(*out));
        return get_one(pg_of(base), &res_volume,
                       "SELECT " VOL_COLS " FROM volumes v WHERE v.id = $1 "
                       "AND ($2::text IS NULL OR v.project_id = $2::text)",
                       project_id, id, out);
}

static int pg_volume_update(struct store *base, const struct store_volume *v)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        args_volume(&a, v);
        lock(s);
        /* $2 and $13 (project, created_at) are bound but never rewritten. */
        r = row_write(s,
                      "UPDATE volumes SET name = $3, description = $4, availability_zone = $5, "
                      "status = $6, volume_type = $7, metadata_json = $8, size_gib = $9, "
                      "multiattach = $10, fenced = $11, error_message = $12, updated_at = $14 "
                      "WHERE id = $1 AND $2::text IS NOT NULL AND $13::bigint IS NOT NULL",
                      &a, OP_WRITE, true, "volume update", v->id);
        unlock(s);
        return r;
}

static int pg_volume_delete(struct store *base, const char *id)
{
        return delete_one(pg_of(base), "DELETE FROM volumes WHERE id = $1", id, "volume delete");
}

static int pg_volume_list(struct store *base, const struct store_list_query *q,
                          struct store_volume **out, size_t *n)
{
        return list_query(pg_of(base), &res_volume, q, (void **)out, n);
}

static int pg_volume_list_all(struct store *base, struct store_volume **out, size_t *n)
{
        return list_all(pg_of(base), &res_volume,
                        "SELECT " VOL_COLS " FROM volumes v ORDER BY v.created_at, v.id", NULL,
                        (void **)out, n);
}

/* ---------------------------------------------------------------- pairs */

static void args_pair(struct args *a, const struct store_pair *p)
{
        ARG_STR(a, p->id);
        ARG_STR(a, p->project_id);
        ARG_STR(a, p->name);
        ARG_STR(a, p->description);
        ARG_STR(a, p->status);
        if (p->group_id[0])
                ARG_STR(a, p->group_id);
        else
                arg_cstr(a, NULL); /* NULL, not '': the foreign key holds */
        ARG_STR(a, p->volume_ids[0]);
        ARG_STR(a, p->volume_ids[1]);
        ARG_STR(a, p->priority_station);
        ARG_STR(a, p->replication_model);
        ARG_STR(a, p->replication_status);
        arg_int(a, p->progress);
        ARG_STR(a, p->failure_detail);
        arg_int(a, p->fault_level);
        arg_int(a, p->volume_size_gib);
        ARG_STR(a, p->volume_type);
        arg_int(a, p->multiattach);
        ARG_STR(a, p->mirror_mode);
        arg_int(a, p->created_at);
        arg_int(a, p->updated_at);
        arg_int(a, p->frozen_at);
}

static int pg_pair_insert(struct store *base, const struct store_pair *p)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        args_pair(&a, p);
        lock(s);
        r = row_write(s,
                      "INSERT INTO pairs (id, project_id, name, description, status, group_id, "
                      "volume_id0, volume_id1, priority_station, replication_model, "
                      "replication_status, progress, failure_detail, fault_level, "
                      "volume_size_gib, volume_type, multiattach, mirror_mode, created_at, "
                      "updated_at, frozen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                      "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
                      &a, OP_WRITE, false, "pair insert", p->id);
        unlock(s);
        return r;
}

static int pg_pair_get(struct store *base, const char *project_id, const char *id,
                       struct store_pair *out)
{
        memset(out, 0, sizeof(*out));
        return get_one(pg_of(base), &res_pair,
                       "SELECT " PAIR_COLS " FROM pairs p WHERE p.id = $1 "
                       "AND ($2::text IS NULL OR p.project_id = $2::text)",
                       project_id, id, out);
}

static int pg_pair_update(struct store *base, const struct store_pair *p)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        args_pair(&a, p);
        lock(s);
        /* volume_ids, project and created_at are fixed at creation. */
        r = row_write(s,
                      "UPDATE pairs SET name = $3, description = $4, status = $5, group_id = $6, "
                      "priority_station = $9, replication_model = $10, "
                      "replication_status = $11, progress = $12, failure_detail = $13, "
                      "fault_level = $14, volume_size_gib = $15, volume_type = $16, "
                      "multiattach = $17, mirror_mode = $18, updated_at = $20, frozen_at = $21 "
                      "WHERE id = $1 AND $2::text IS NOT NULL AND $7::text IS NOT NULL "
                      "AND $8::text IS NOT NULL AND $19::bigint IS NOT NULL",
                      &a, OP_WRITE, true, "pair update", p->id);
        unlock(s);
        return r;
}

static int pg_pair_delete(struct store *base, const char *id)
{
        return delete_one(pg_of(base), "DELETE FROM pairs WHERE id = $1", id, "pair delete");
}

static int pg_pair_list(struct store *base, const struct store_list_query *q,
                        struct store_pair **out, size_t *n)
{
        return list_query(pg_of(base), &res_pair, q, (void **)out, n);
}

static int pg_pair_list_all(struct store *base, struct store_pair **out, size_t *n)
{
        return list_all(pg_of(base), &res_pair,
                        "SELECT " PAIR_COLS " FROM pairs p ORDER BY p.created_at, p.id", NULL,
                        (void **)out, n);
}

static int pg_pair_list_by_group(struct store *base, const char *group_id, struct store_pair **out,
                                 size_t *n)
{
        if (!group_id)
                return -EINVAL;
        return list_all(pg_of(base), &res_pair,
                        "SELECT " PAIR_COLS " FROM pairs p WHERE p.group_id = $1 "
                        "ORDER BY p.created_at, p.id",
                        group_id, (void **)out, n);
}

/* ---------------------------------------------------------------- groups */

static void args_group(struct args *a, const struct store_group *g)
{
        ARG_STR(a, g->id);
        ARG_STR(a, g->project_id);
        ARG_STR(a, g->name);
        ARG_STR(a, g->description);
        ARG_STR(a, g->status);
        ARG_STR(a, g->priority_station);
        ARG_STR(a, g->replication_model);
        ARG_STR(a, g->replication_status);
        ARG_STR(a, g->failure_detail);
        arg_int(a, g->fault_level);
        arg_int(a, g->frozen_at);
        arg_int(a, g->created_at);
        arg_int(a, g->updated_at);
}

static int pg_group_insert(struct store *base, const struct store_group *g)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        args_group(&a, g);
        lock(s);
        r = row_write(s,
                      "INSERT INTO groups (id, project_id, name, description, status, "
                      "priority_station, replication_model, replication_status, "
                      "failure_detail, fault_level, frozen_at, created_at, updated_at) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                      &a, OP_WRITE, false, "group insert", g->id);
        unlock(s);
        return r;
}

static int pg_group_get(struct store *base, const char *project_id, const char *id,
                        struct store_group *out)
{
        memset(out, 0, sizeof(*out));
        return get_one(pg_of(base), &res_group,
                       "SELECT " GROUP_COLS " FROM groups g WHERE g.id = $1 "
                       "AND ($2::text IS NULL OR g.project_id = $2::text)",
                       project_id, id, out);
}

static int pg_group_update(struct store *base, const struct store_group *g)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        args_group(&a, g);
        lock(s);
        r = row_write(s,
                      "UPDATE groups SET name = $3, description = $4, status = $5, "
                      "priority_station = $6, replication_model = $7, "
                      "replication_status = $8, failure_detail = $9, fault_level = $10, "
                      "frozen_at = $11, updated_at = $13 WHERE id = $1 "
                      "AND $2::text IS NOT NULL AND $12::bigint IS NOT NULL",
                      &a, OP_WRITE, true, "group update", g->id);
        unlock(s);
        return r;
}

static int pg_group_delete(struct store *base, const char *id)
{
        return delete_one(pg_of(base), "DELETE FROM groups WHERE id = $1", id, "group delete");
}

static int pg_group_list(struct store *base, const struct store_list_query *q,
                         struct store_group **out, size_t *n)
{
        return list_query(pg_of(base), &res_group, q, (void **)out, n);
}

static int pg_group_list_all(struct store *base, struct store_group **out, size_t *n)
{
        return list_all(pg_of(base), &res_group,
                        "SELECT " GROUP_COLS " FROM groups g ORDER BY g.created_at, g.id", NULL,
                        (void **)out, n);
}

/* ---------------------------------------------------------------- attachments */

static int pg_attachment_insert(struct store *base, const struct store_attachment *at)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        ARG_STR(&a, at->id);
        ARG_STR(&a, at->volume_id);
        ARG_STR(&a, at->project_id);
        ARG_STR(&a, at->export_name);
        ARG_STR(&a, at->connector);
        arg_int(&a, at->read_only);
        ARG_STR(&a, at->psk_key);
        arg_int(&a, at->created_at);
        lock(s);
        r = row_write(s,
                      "INSERT INTO attachments (id, volume_id, project_id, export_name, "
                      "connector, read_only, psk_key, created_at) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                      &a, OP_WRITE, false, "attachment insert", at->id);
        unlock(s);
        return r;
}

static int pg_attachment_delete(struct store *base, const char *id)
{
        return delete_one(pg_of(base), "DELETE FROM attachments WHERE id = $1", id,
                          "attachment delete");
}

static int pg_attachment_list_all(struct store *base, struct store_attachment **out, size_t *n)
{
        return list_all(pg_of(base), &res_attachment,
                        "SELECT " ATT_COLS " FROM attachments a ORDER BY a.created_at, a.id", NULL,
                        (void **)out, n);
}

static int pg_attachment_list_by_volume(struct store *base, const char *volume_id,
                                        struct store_attachment **out, size_t *n)
{
        return list_all(pg_of(base), &res_attachment,
                        "SELECT " ATT_COLS " FROM attachments a WHERE a.volume_id = $1 "
                        "ORDER BY a.created_at, a.id",
                        volume_id, (void **)out, n);
}

/* ---------------------------------------------------------------- quotas */

static void arg_quota_field(struct args *a, int64_t v)
{
        if (v == STORE_QUOTA_DEFAULT)
                arg_cstr(a, NULL); /* NULL column: no override */
        else
                arg_int(a, v);
}

static int64_t col_quota_field(PGresult *res, int col)
{
        return PQgetisnull(res, 0, col) ? STORE_QUOTA_DEFAULT : store_pg_col_int(res, 0, col);
}

static int pg_quota_get(struct store *base, const char *project_id, struct store_quota *out)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        PGresult *res;
        int r;

        memset(out, 0, sizeof(*out));
        out->volumes = out->gigabytes = STORE_QUOTA_DEFAULT;
        if (!project_id)
                return -EINVAL;
        snprintf(out->project_id, sizeof(out->project_id), "%s", project_id);
        arg_cstr(&a, project_id);
        lock(s);
        r = run(s, "SELECT volumes, gigabytes, updated_at FROM quotas WHERE project_id = $1", &a,
                OP_READ, "quota get", &res);
        if (r == 0 && PQntuples(res) > 0) {
                out->volumes = col_quota_field(res, 0);
                out->gigabytes = col_quota_field(res, 1);
                out->updated_at = store_pg_col_int(res, 0, 2);
        }
        PQclear(res);
        unlock(s);
        return r;
}

static int pg_quota_set(struct store *base, const struct store_quota *q)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        if (q->volumes < STORE_QUOTA_DEFAULT || q->gigabytes < STORE_QUOTA_DEFAULT)
                return -EINVAL;
        ARG_STR(&a, q->project_id);
        arg_quota_field(&a, q->volumes);
        arg_quota_field(&a, q->gigabytes);
        arg_int(&a, q->updated_at);
        lock(s);
        r = row_write(s,
                      "INSERT INTO quotas (project_id, volumes, gigabytes, updated_at) "
                      "VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) DO UPDATE SET "
                      "volumes = EXCLUDED.volumes, gigabytes = EXCLUDED.gigabytes, "
                      "updated_at = EXCLUDED.updated_at",
                      &a, OP_WRITE, false, "quota set", q->project_id);
        unlock(s);
        return r;
}

static int pg_quota_delete(struct store *base, const char *project_id)
{
        struct pg_store *s = pg_of(base);
        struct args a = {0};
        int r;

        if (!project_id)
                return -EINVAL;
        arg_cstr(&a, project_id);
        lock(s);
        r = row_write(s, "DELETE FROM quotas WHERE project_id = $1", &a, OP_DELETE, false,
                      "quota delete", project_id);
        unlock(s);
        return r;
}

/* One row of integer aggregates into out[0..n-1]. */
static int aggregate(struct pg_store *s, const char *sql, const char *key, int64_t *out, int n,
                     const char *what)
{
        struct args a = {0};
        PGresult *res;
        int r;

        if (!key)
                return -EINVAL;
        arg_cstr(&a, key);
        lock(s);
        r = run(s, sql, &a, OP_READ, what, &res);
        if (r == 0 && (PQntuples(res) != 1 || PQnfields(res) != n))
                r = -EIO;
        for (int i = 0; r == 0 && i < n; i++)
                out[i] = store_pg_col_int(res, 0, i);
        PQclear(res);
        unlock(s);
        return r;
}

static int pg_project_usage(struct store *base, const char *project_id, int64_t *volumes,
                            int64_t *gigabytes)
{
        int64_t v[2] = {0, 0};
        int r = aggregate(pg_of(base),
                          "SELECT COUNT(*), COALESCE(SUM(size_gib), 0) FROM volumes "
                          "WHERE project_id = $1",
                          project_id, v, 2, "project usage");

        *volumes = v[0];
        *gigabytes = v[1];
        return r;
}

static int pg_site_provisioned(struct store *base, const char *az, int64_t *gigabytes)
{
        *gigabytes = 0;
        return aggregate(pg_of(base),
                         "SELECT COALESCE(SUM(size_gib), 0) FROM volumes "
                         "WHERE availability_zone = $1",
                         az, gigabytes, 1, "site provisioned");
}

/* ---------------------------------------------------------------- nodes */

/* The nodes table lives in store_pg_node.c; these run its statements with
 * this file's lock, connection-loss handling and write transactions
 * (store_pg_internal.h). */
void store_pg_lock(struct store *base)
{
        lock(pg_of(base));
}

void store_pg_unlock(struct store *base)
{
        unlock(pg_of(base));
}

int store_pg_read(struct store *base, const char *sql, int n, const char *const *params,
                  const char *what, PGresult **out)
{
        struct args a = {0};

        for (int i = 0; i < n; i++)
                arg_cstr(&a, params[i]);
        return run(pg_of(base), sql, &a, OP_READ, what, out);
}

int store_pg_write(struct store *base, const char *sql, int n, const char *const *params,
                   bool is_delete, bool must_touch, const char *what, const char *id)
{
        struct args a = {0};

        for (int i = 0; i < n; i++)
                arg_cstr(&a, params[i]);
        return row_write(pg_of(base), sql, &a, is_delete ? OP_DELETE : OP_WRITE, must_touch, what,
                         id);
}

/* ---------------------------------------------------------------- ops */

static const struct store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .schema_version = pg_schema_version,
    .tx_begin = pg_tx_begin,
    .tx_commit = pg_tx_commit,
    .tx_rollback = pg_tx_rollback,
    .volume_insert = pg_volume_insert,
    .volume_get = pg_volume_get,
    .volume_update = pg_volume_update,
    .volume_delete = pg_volume_delete,
    .volume_list = pg_volume_list,
    .volume_list_all = pg_volume_list_all,
    .pair_insert = pg_pair_insert,
    .pair_get = pg_pair_get,
    .pair_update = pg_pair_update,
    .pair_delete = pg_pair_delete,
    .pair_list = pg_pair_list,
    .pair_list_all = pg_pair_list_all,
    .pair_list_by_group = pg_pair_list_by_group,
    .group_insert = pg_group_insert,
    .group_get = pg_group_get,
    .group_update = pg_group_update,
    .group_delete = pg_group_delete,
    .group_list = pg_group_list,
    .group_list_all = pg_group_list_all,
    .attachment_insert = pg_attachment_insert,
    .attachment_delete = pg_attachment_delete,
    .attachment_list_all = pg_attachment_list_all,
    .attachment_list_by_volume = pg_attachment_list_by_volume,
    .quota_get = pg_quota_get,
    .quota_set = pg_quota_set,
    .quota_delete = pg_quota_delete,
    .project_usage = pg_project_usage,
    .site_provisioned = pg_site_provisioned,
    .now_usec = store_pg_now_usec,
    .node_register = store_pg_node_register,
    .node_renew = store_pg_node_renew,
    .node_get = store_pg_node_get,
    .node_take_roles = store_pg_node_take_roles,
    .node_list = store_pg_node_list,
    .node_delete = store_pg_node_delete,
    .group_throttle_get = store_pg_group_throttle_get,
    .group_throttle_set = store_pg_group_throttle_set,
    .group_release_bump = store_pg_group_release_bump,
    .group_release_get = store_pg_group_release_get,
};
