/* Fixture shared by the store test programs (test_store.c,
 * test_store_backends.c): one fresh database per test, SQLite by default or
 * PostgreSQL when EVSREP_TEST_PG_URL (a libpq URI of a maintenance database
 * such as postgres) or EVSREP_TEST_PG_URL_FILE (a file holding one, written
 * by tests/tools/pg_cluster.sh) is set. Each PostgreSQL test gets a database
 * of its own, created for it and dropped after. A set but unusable
 * PostgreSQL fails the program: it is never skipped. */
#ifndef EVSREP_TEST_STORE_FIXTURE_H
#define EVSREP_TEST_STORE_FIXTURE_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "common/util.h"
#include "fixture_tmpdir.h"
#include "store/schema.h"
#include "store/store.h"

struct fx {
        char dir[64];
        char path[512]; /* SQLite file, or the test database's URI */
        char dbname[64];
        struct store *s;
};

/* PostgreSQL mode: the maintenance database's URI, "" in SQLite mode. */
static char g_pg_admin[512];

static inline bool pg_mode(void)
{
        return g_pg_admin[0] != '\0';
}

/* The admin URI with its database name replaced by dbname. */
static inline void pg_url_for(char *out, size_t cap, const char *dbname)
{
        const char *scheme = strstr(g_pg_admin, "://");
        const char *slash = strchr(scheme ? scheme + 3 : g_pg_admin, '/');
        const char *query = slash ? strchr(slash, '?') : NULL;
        int host_len = slash ? (int)(slash - g_pg_admin) : (int)strlen(g_pg_admin);

        snprintf(out, cap, "%.*s/%s%s", host_len, g_pg_admin, dbname, query ? query : "");
}

/* Run sql on a fresh connection to url; 0, or -1 when it fails. */
static inline int pg_exec_url(const char *url, const char *sql)
{
        PGconn *c = PQconnectdb(url);
        PGresult *res;
        int r = -1;

        if (PQstatus(c) == CONNECTION_OK) {
                res = PQexec(c, sql);
                if (PQresultStatus(res) == PGRES_COMMAND_OK ||
                    PQresultStatus(res) == PGRES_TUPLES_OK)
                        r = 0;
                else
                        fprintf(stderr, "(expected or not) %s: %s", sql, PQerrorMessage(c));
                PQclear(res);
        } else {
                fprintf(stderr, "cannot connect: %s", PQerrorMessage(c));
        }
        PQfinish(c);
        return r;
}

static inline int pg_admin_exec(const char *sql)
{
        return pg_exec_url(g_pg_admin, sql);
}

/* Raw SQL on the test's database, behind the store's back; 0 or -1. */
static inline int raw_exec(const struct fx *f, const char *sql)
{
        sqlite3 *db;
        int rc;

        if (pg_mode())
                return pg_exec_url(f->path, sql);
        if (sqlite3_open(f->path, &db) != SQLITE_OK)
                return -1;
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_close(db);
        return rc == SQLITE_OK ? 0 : -1;
}

/* First column of the first row of a raw query, as an integer; -1 when the
 * query fails, -2 when it has no row. */
static inline long raw_int(const struct fx *f, const char *sql)
{
        long v = -1;

        if (pg_mode()) {
                PGconn *c = PQconnectdb(f->path);
                PGresult *res = PQexec(c, sql);

                if (PQresultStatus(res) == PGRES_TUPLES_OK)
                        v = PQntuples(res) > 0 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : -2;
                PQclear(res);
                PQfinish(c);
                return v;
        }
        sqlite3 *db;
        sqlite3_stmt *st;

        if (sqlite3_open(f->path, &db) != SQLITE_OK)
                return -1;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
                int rc = sqlite3_step(st);
                v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? -2 : -1;
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        return v;
}

static inline void rm_db(const struct fx *f)
{
        if (pg_mode()) {
                char sql[128];

                snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
                pg_admin_exec(sql);
        }
        /* SQLite: the database and its -wal, -shm, -journal live in dir. */
        fixture_tmpdir_remove(f->dir);
}

static inline int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        char err[256];

        if (fixture_tmpdir_make(f->dir, sizeof(f->dir), "store") != 0)
                return -1;
        snprintf(f->path, sizeof(f->path), "%s/evsrep.db", f->dir);
        if (pg_mode()) {
                static int seq;
                char sql[128];

                snprintf(f->dbname, sizeof(f->dbname), "evsrep_t%d_%d", (int)getpid(), ++seq);
                snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->dbname);
                if (pg_admin_exec(sql) != 0)
                        return -1;
                pg_url_for(f->path, sizeof(f->path), f->dbname);
        }
        if (store_open(f->path, &f->s, err, sizeof(err)) != 0) {
                fprintf(stderr, "store_open: %s\n", err);
                return -1;
        }
        *state = f;
        return 0;
}

static inline int teardown(void **state)
{
        struct fx *f = *state;

        store_close(f->s);
        rm_db(f);
        free(f);
        return 0;
}

static inline void reopen(struct fx *f)
{
        char err[256];

        store_close(f->s);
        f->s = NULL;
        assert_int_equal(store_open(f->path, &f->s, err, sizeof(err)), 0);
}

/* Deterministic ids so id order is known: 00000000-0000-4000-8000-<n>. */
static inline void mkid(char *buf, char kind, int n)
{
        snprintf(buf, STORE_ID_LEN, "%c0000000-0000-4000-8000-%012d", kind, n);
}

static inline void mk_volume(struct store_volume *v, int n, const char *project, const char *az,
                             int64_t created)
{
        memset(v, 0, sizeof(*v));
        mkid(v->id, 'a', n);
        snprintf(v->project_id, sizeof(v->project_id), "%s", project);
        snprintf(v->name, sizeof(v->name), "vol-%d", n);
        snprintf(v->availability_zone, sizeof(v->availability_zone), "%s", az);
        snprintf(v->status, sizeof(v->status), "available");
        snprintf(v->volume_type, sizeof(v->volume_type), "SSD");
        v->size_gib = 1;
        v->created_at = created;
}

static inline void mk_pair(struct store_pair *p, int n, const char *project, const char *v0,
                           const char *v1, int64_t created)
{
        memset(p, 0, sizeof(*p));
        mkid(p->id, 'b', n);
        snprintf(p->project_id, sizeof(p->project_id), "%s", project);
        snprintf(p->name, sizeof(p->name), "pair-%d", n);
        snprintf(p->status, sizeof(p->status), "available");
        snprintf(p->volume_ids[0], STORE_ID_LEN, "%s", v0);
        snprintf(p->volume_ids[1], STORE_ID_LEN, "%s", v1);
        snprintf(p->priority_station, sizeof(p->priority_station), "az1");
        snprintf(p->replication_model, sizeof(p->replication_model), "hypermetro");
        snprintf(p->replication_status, sizeof(p->replication_status), "active");
        snprintf(p->volume_type, sizeof(p->volume_type), "SSD");
        snprintf(p->mirror_mode, sizeof(p->mirror_mode), "sync");
        p->volume_size_gib = 1;
        p->progress = 100;
        p->created_at = created;
}

static inline void mk_group(struct store_group *g, int n, const char *project, int64_t created)
{
        memset(g, 0, sizeof(*g));
        mkid(g->id, 'c', n);
        snprintf(g->project_id, sizeof(g->project_id), "%s", project);
        snprintf(g->name, sizeof(g->name), "group-%d", n);
        snprintf(g->status, sizeof(g->status), "available");
        snprintf(g->priority_station, sizeof(g->priority_station), "az1");
        snprintf(g->replication_model, sizeof(g->replication_model), "hypermetro");
        snprintf(g->replication_status, sizeof(g->replication_status), "active-stopped");
        g->created_at = created;
}

static inline struct store_list_query q_for(const char *project)
{
        struct store_list_query q = {0};
        q.project_id = project;
        return q;
}

/* PostgreSQL mode when the environment names a server (see the top). */
static inline void load_pg_url(void)
{
        const char *url = getenv("EVSREP_TEST_PG_URL");
        const char *file = getenv("EVSREP_TEST_PG_URL_FILE");

        if (url && *url) {
                snprintf(g_pg_admin, sizeof(g_pg_admin), "%s", url);
        } else if (file && *file) {
                FILE *fp = fopen(file, "r");

                if (!fp || !fgets(g_pg_admin, sizeof(g_pg_admin), fp)) {
                        fprintf(stderr,
                                "EVSREP_TEST_PG_URL_FILE=%s: cannot read a PostgreSQL URI "
                                "(did tests/tools/pg_cluster.sh start fail?)\n",
                                file);
                        exit(1);
                }
                fclose(fp);
                g_pg_admin[strcspn(g_pg_admin, "\r\n")] = '\0';
        }
        if (pg_mode() && pg_admin_exec("SELECT 1") != 0) {
                fprintf(stderr, "PostgreSQL at the test URI is not usable\n");
                exit(1);
        }
}

#endif
