/* Unit tests of the store: schema, CRUD, foreign keys, list queries,
 * transactions, durability, one suite for both backends (store_fixture.h:
 * SQLite by default, PostgreSQL with EVSREP_TEST_PG_URL[_FILE]). The
 * cross-handle race and the PostgreSQL-only tests are in
 * test_store_backends.c. */
#include "store_fixture.h"
#include "common/replygen.h"

/* ------------------------------------------------------------------ schema */

static void test_open_schema_version(void **state)
{
        struct fx *f = *state;

        assert_int_equal(store_schema_version(f->s), store_schema_latest());
        assert_true(store_schema_latest() >= 1);
        reopen(f); /* migrations are idempotent */
        assert_int_equal(store_schema_version(f->s), store_schema_latest());
        reopen(f);
        assert_int_equal(store_schema_version(f->s), store_schema_latest());
}

static void test_wal_and_version_table_on_disk(void **state)
{
        struct fx *f = *state;
        sqlite3 *db;
        sqlite3_stmt *st;

        store_close(f->s);
        f->s = NULL;
        if (pg_mode()) {
                /* No WAL setting to see; the version table holds one row. */
                assert_int_equal(raw_int(f, "SELECT count(*) FROM schema_version"), 1);
                assert_int_equal(raw_int(f, "SELECT version FROM schema_version"),
                                 store_schema_latest());
                reopen(f);
                return;
        }
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), store_schema_latest());
        assert_int_equal(sqlite3_step(st), SQLITE_DONE); /* exactly one row */
        sqlite3_finalize(st);
        sqlite3_close(db);
        reopen(f);
}

static void test_newer_schema_refused(void **state)
{
        struct fx *f = *state;
        struct store *s2 = NULL;
        char err[256] = "";

        store_close(f->s);
        f->s = NULL;
        assert_int_equal(raw_exec(f, "UPDATE schema_version SET version = 999"), 0);
        assert_int_equal(store_open(f->path, &s2, err, sizeof(err)), -EPROTO);
        assert_null(s2);
        assert_non_null(strstr(err, "999"));
        /* Put it back so teardown's reopen-free path works and the fixture is sane. */
        char sql[96];
        snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", store_schema_latest());
        assert_int_equal(raw_exec(f, sql), 0);
        reopen(f);
}

static void test_open_bad_path(void **state)
{
        struct store *s2 = NULL;
        char err[256] = "";
        /* PostgreSQL: nothing listens on port 1. */
        const char *bad = pg_mode() ? "postgresql://evsrep@127.0.0.1:1/evsrep?connect_timeout=2"
                                    : "/nonexistent-dir-evsrep/x/evsrep.db";

        (void)state;
        assert_int_equal(store_open(bad, &s2, err, sizeof(err)), -EIO);
        assert_null(s2);
        assert_true(strlen(err) > 0);
        /* A NULL error buffer is allowed. */
        assert_int_equal(store_open(bad, &s2, NULL, 0), -EIO);
}

static void test_not_a_database(void **state)
{
        struct fx *f = *state;
        char path[160], err[256] = "";
        struct store *s2 = NULL;
        FILE *fp;

        if (pg_mode()) {
                /* A database that does not exist on the server. */
                char url[600];

                pg_url_for(url, sizeof(url), "evsrep_no_such_db");
                assert_int_equal(store_open(url, &s2, err, sizeof(err)), -EIO);
                assert_null(s2);
                assert_non_null(strstr(err, "evsrep_no_such_db"));
                return;
        }
        snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        for (int i = 0; i < 200; i++)
                fputs("this is not an sqlite database\n", fp);
        fclose(fp);
        assert_int_equal(store_open(path, &s2, err, sizeof(err)), -EIO);
        assert_true(strlen(err) > 0);
        unlink(path);
}

/* ------------------------------------------------------------------ volumes */

static void test_volume_crud(void **state)
{
        struct fx *f = *state;
        struct store_volume v, got;

        mk_volume(&v, 1, "p1", "az1", 1000);
        snprintf(v.description, sizeof(v.description), "désc");
        v.metadata_json = (char *)"{\"k\":\"v\"}";
        v.multiattach = true;
        v.size_gib = 42;
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        assert_int_equal(store_volume_insert(f->s, &v), -EEXIST);

        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        assert_string_equal(got.id, v.id);
        assert_string_equal(got.project_id, "p1");
        assert_string_equal(got.name, "vol-1");
        assert_string_equal(got.description, "désc");
        assert_string_equal(got.availability_zone, "az1");
        assert_string_equal(got.status, "available");
        assert_string_equal(got.volume_type, "SSD");
        assert_string_equal(got.metadata_json, "{\"k\":\"v\"}");
        assert_int_equal(got.size_gib, 42);
        assert_true(got.multiattach);
        assert_false(got.fenced);
        assert_string_equal(got.error_message, "");
        assert_int_equal(got.created_at, 1000);
        assert_int_equal(got.updated_at, 0);
        assert_string_equal(got.pair_id, "");
        store_volume_clear(&got);
        assert_null(got.metadata_json);

        v.metadata_json = NULL; /* stored as {} */
        snprintf(v.status, sizeof(v.status), "extending");
        v.size_gib = 43;
        v.fenced = true;
        v.updated_at = 2000;
        v.created_at = 99; /* ignored: created_at never changes */
        snprintf(v.error_message, sizeof(v.error_message), "boom");
        assert_int_equal(store_volume_update(f->s, &v), 0);
        assert_int_equal(store_volume_get(f->s, NULL, v.id, &got), 0);
        assert_string_equal(got.status, "extending");
        assert_string_equal(got.metadata_json, "{}");
        assert_int_equal(got.size_gib, 43);
        assert_true(got.fenced);
        assert_int_equal(got.updated_at, 2000);
        assert_int_equal(got.created_at, 1000);
        assert_string_equal(got.error_message, "boom");
        store_volume_clear(&got);

        assert_int_equal(store_volume_delete(f->s, v.id), 0);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), -ENOENT);
        assert_int_equal(store_volume_delete(f->s, v.id), -ENOENT);
        assert_int_equal(store_volume_update(f->s, &v), -ENOENT);
}

static void test_volume_checks(void **state)
{
        struct fx *f = *state;
        struct store_volume v;

        mk_volume(&v, 1, "p1", "az1", 1);
        v.metadata_json = (char *)"not json";
        assert_int_equal(store_volume_insert(f->s, &v), -EINVAL);
        v.metadata_json = (char *)"[1,2]"; /* JSON, but not an object */
        assert_int_equal(store_volume_insert(f->s, &v), -EINVAL);
        v.metadata_json = NULL;
        v.size_gib = -1;
        assert_int_equal(store_volume_insert(f->s, &v), -EINVAL);
        /* Unterminated fields are bounded by their array size, never overread. */
        mk_volume(&v, 2, "p1", "az1", 1);
        memset(v.name, 'x', sizeof(v.name));
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        struct store_volume got;
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        assert_int_equal(strlen(got.name), sizeof(got.name) - 1);
        store_volume_clear(&got);
}

static void test_reopen_persists(void **state)
{
        struct fx *f = *state;
        struct store_volume v, got;
        struct store_group g, gg;

        mk_volume(&v, 1, "p1", "az1", 5);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        mk_group(&g, 1, "p1", 6);
        assert_int_equal(store_group_insert(f->s, &g), 0);
        reopen(f);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        assert_string_equal(got.name, "vol-1");
        store_volume_clear(&got);
        assert_int_equal(store_group_get(f->s, "p1", g.id, &gg), 0);
        assert_string_equal(gg.name, "group-1");
}

static void test_project_isolation(void **state)
{
        struct fx *f = *state;
        struct store_volume v, got, *list;
        struct store_pair p, gp;
        struct store_group g, gg;
        struct store_list_query q = q_for("p2");
        size_t n;

        mk_volume(&v, 1, "p1", "az1", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        mk_volume(&v, 2, "p1", "az2", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        char a[STORE_ID_LEN], b[STORE_ID_LEN];
        mkid(a, 'a', 1);
        mkid(b, 'a', 2);
        mk_pair(&p, 1, "p1", a, b, 1);
        assert_int_equal(store_pair_insert(f->s, &p), 0);
        mk_group(&g, 1, "p1", 1);
        assert_int_equal(store_group_insert(f->s, &g), 0);

        assert_int_equal(store_volume_get(f->s, "p2", a, &got), -ENOENT);
        assert_int_equal(store_pair_get(f->s, "p2", p.id, &gp), -ENOENT);
        assert_int_equal(store_group_get(f->s, "p2", g.id, &gg), -ENOENT);
        assert_int_equal(store_pair_get(f->s, "p1", p.id, &gp), 0);
        assert_int_equal(store_group_get(f->s, NULL, g.id, &gg), 0);

        assert_int_equal(store_volume_list(f->s, &q, &list, &n), 0);
        assert_int_equal(n, 0);
        store_volume_free_list(list, n);
        /* A marker from another project is unknown here. */
        q.marker = a;
        assert_int_equal(store_volume_list(f->s, &q, &list, &n), -ENOENT);
}

/* ------------------------------------------------------------------ pairs, groups, FKs */

struct world {
        char v[6][STORE_ID_LEN];
};

/* Six volumes a..1-6 in p1, alternating AZs. */
static void make_volumes(struct fx *f, struct world *w, int count)
{
        for (int i = 0; i < count; i++) {
                struct store_volume v;
                mk_volume(&v, i + 1, "p1", i % 2 ? "az2" : "az1", 100 + i);
                assert_int_equal(store_volume_insert(f->s, &v), 0);
                snprintf(w->v[i], STORE_ID_LEN, "%s", v.id);
        }
}

static void test_pair_crud_and_join(void **state)
{
        struct fx *f = *state;
        struct world w;
        struct store_pair p, got;
        struct store_volume vg;

        make_volumes(f, &w, 3);
        mk_pair(&p, 1, "p1", w.v[0], w.v[1], 500);
        snprintf(p.failure_detail, sizeof(p.failure_detail), "37100041");
        p.fault_level = 5;
        p.progress = 37;
        p.multiattach = true;
        assert_int_equal(store_pair_insert(f->s, &p), 0);
        assert_int_equal(store_pair_insert(f->s, &p), -EEXIST);

        assert_int_equal(store_pair_get(f->s, "p1", p.id, &got), 0);
        assert_memory_equal(&got, &p, sizeof(got)); /* both were zeroed, then filled */

        /* The join: both disks report the pair; the third none. */
        assert_int_equal(store_volume_get(f->s, "p1", w.v[0], &vg), 0);
        assert_string_equal(vg.pair_id, p.id);
        store_volume_clear(&vg);
        assert_int_equal(store_volume_get(f->s, "p1", w.v[1], &vg), 0);
        assert_string_equal(vg.pair_id, p.id);
        store_volume_clear(&vg);
        assert_int_equal(store_volume_get(f->s, "p1", w.v[2], &vg), 0);
        assert_string_equal(vg.pair_id, "");
        store_volume_clear(&vg);

        /* volume_ids never change through update; roles live in priority_station. */
        struct store_pair u = p;
        snprintf(u.volume_ids[0], STORE_ID_LEN, "%s", w.v[1]);
        snprintf(u.volume_ids[1], STORE_ID_LEN, "%s", w.v[0]);
        snprintf(u.priority_station, sizeof(u.priority_station), "az2");
        snprintf(u.mirror_mode, sizeof(u.mirror_mode), "track");
        u.updated_at = 900;
        assert_int_equal(store_pair_update(f->s, &u), 0);
        assert_int_equal(store_pair_get(f->s, NULL, p.id, &got), 0);
        assert_string_equal(got.volume_ids[0], w.v[0]);
        assert_string_equal(got.volume_ids[1], w.v[1]);
        assert_string_equal(got.priority_station, "az2");
        assert_string_equal(got.mirror_mode, "track");
        assert_int_equal(got.updated_at, 900);

        assert_int_equal(store_pair_delete(f->s, p.id), 0);
        assert_int_equal(store_pair_delete(f->s, p.id), -ENOENT);
        assert_int_equal(store_pair_update(f->s, &p), -ENOENT);
        assert_int_equal(store_volume_get(f->s, "p1", w.v[0], &vg), 0);
        assert_string_equal(vg.pair_id, "");
        store_volume_clear(&vg);
}

static void test_foreign_keys(void **state)
{
        struct fx *f = *state;
        struct world w;
        struct store_pair p, p2;
        struct store_group g;
        char missing[STORE_ID_LEN];

        make_volumes(f, &w, 4);
        mkid(missing, 'a', 999);
        mk_pair(&p, 1, "p1", w.v[0], missing, 1);
        assert_int_equal(store_pair_insert(f->s, &p), -ENOENT);
        mk_pair(&p, 1, "p1", w.v[0], w.v[0], 1);
        assert_int_equal(store_pair_insert(f->s, &p), -EINVAL); /* same disk twice */

        mk_pair(&p, 1, "p1", w.v[0], w.v[1], 1);
        assert_int_equal(store_pair_insert(f->s, &p), 0);
        /* Either disk already paired, on either side. */
        mk_pair(&p2, 2, "p1", w.v[1], w.v[2], 2);
        assert_int_equal(store_pair_insert(f->s, &p2), -EEXIST);
        mk_pair(&p2, 2, "p1", w.v[2], w.v[0], 2);
        assert_int_equal(store_pair_insert(f->s, &p2), -EEXIST);

        /* A volume in a pair cannot be deleted. */
        assert_int_equal(store_volume_delete(f->s, w.v[0]), -EBUSY);

        /* Group membership references an existing group. */
        mkid(p.group_id, 'c', 7);
        assert_int_equal(store_pair_update(f->s, &p), -ENOENT);
        mk_group(&g, 7, "p1", 1);
        assert_int_equal(store_group_insert(f->s, &g), 0);
        assert_int_equal(store_pair_update(f->s, &p), 0);
        assert_int_equal(store_group_delete(f->s, g.id), -EBUSY);
        p.group_id[0] = '\0';
        assert_int_equal(store_pair_update(f->s, &p), 0);
        assert_int_equal(store_group_delete(f->s, g.id), 0);

        assert_int_equal(store_pair_delete(f->s, p.id), 0);
        assert_int_equal(store_volume_delete(f->s, w.v[0]), 0);
}

static void mk_attachment(struct store_attachment *a, int n, const char *volume_id, int64_t created)
{
        memset(a, 0, sizeof(*a));
        mkid(a->id, 'e', n);
        snprintf(a->volume_id, sizeof(a->volume_id), "%s", volume_id);
        snprintf(a->project_id, sizeof(a->project_id), "p1");
        snprintf(a->export_name, sizeof(a->export_name), "%040d", n);
        snprintf(a->connector, sizeof(a->connector), "{\"host\":\"h%d\"}", n);
        snprintf(a->psk_key, sizeof(a->psk_key), "%064d", n);
        a->read_only = n % 2;
        a->created_at = created;
}

static void test_attachments(void **state)
{
        struct fx *f = *state;
        struct world w;
        struct store_attachment a, *list = NULL;
        char missing[STORE_ID_LEN];
        size_t n = 0;

        make_volumes(f, &w, 2);
        mkid(missing, 'a', 999);
        mk_attachment(&a, 1, missing, 1);
        assert_int_equal(store_attachment_insert(f->s, &a), -ENOENT); /* no such volume */
        mk_attachment(&a, 1, w.v[0], 3);
        assert_int_equal(store_attachment_insert(f->s, &a), 0);
        assert_int_equal(store_attachment_insert(f->s, &a), -EEXIST);
        mk_attachment(&a, 2, w.v[0], 2);
        snprintf(a.export_name, sizeof(a.export_name), "%040d", 1);
        assert_int_equal(store_attachment_insert(f->s, &a), -EEXIST); /* export name taken */
        mk_attachment(&a, 2, w.v[0], 2);
        assert_int_equal(store_attachment_insert(f->s, &a), 0);
        mk_attachment(&a, 3, w.v[1], 1);
        assert_int_equal(store_attachment_insert(f->s, &a), 0);

        assert_int_equal(store_attachment_list_by_volume(f->s, w.v[0], &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0].export_name, "0000000000000000000000000000000000000002");
        assert_string_equal(list[0].connector, "{\"host\":\"h2\"}");
        assert_false(list[0].read_only);
        assert_true(list[1].read_only);
        assert_int_equal(list[1].created_at, 3);
        free(list);
        reopen(f); /* attachments survive a restart */
        assert_int_equal(store_attachment_list_all(f->s, &list, &n), 0);
        assert_int_equal(n, 3);
        free(list);

        assert_int_equal(store_attachment_delete(f->s, a.id), 0);
        assert_int_equal(store_attachment_delete(f->s, a.id), -ENOENT);
        /* Deleting a volume deletes its attachments. */
        assert_int_equal(store_volume_delete(f->s, w.v[0]), 0);
        assert_int_equal(store_attachment_list_all(f->s, &list, &n), 0);
        assert_int_equal(n, 0);
        free(list);
}

static void test_group_crud(void **state)
{
        struct fx *f = *state;
        struct store_group g, got;

        mk_group(&g, 1, "p1", 10);
        g.frozen_at = 12345;
        g.fault_level = 2;
        snprintf(g.failure_detail, sizeof(g.failure_detail), "37000212");
        assert_int_equal(store_group_insert(f->s, &g), 0);
        assert_int_equal(store_group_insert(f->s, &g), -EEXIST);
        assert_int_equal(store_group_get(f->s, "p1", g.id, &got), 0);
        assert_memory_equal(&got, &g, sizeof(g));
        snprintf(g.status, sizeof(g.status), "failovered");
        snprintf(g.priority_station, sizeof(g.priority_station), "az2");
        g.updated_at = 20;
        assert_int_equal(store_group_update(f->s, &g), 0);
        assert_int_equal(store_group_get(f->s, "p1", g.id, &got), 0);
        assert_memory_equal(&got, &g, sizeof(g));
        g.fault_level = 3; /* not a fault level */
        assert_int_equal(store_group_update(f->s, &g), -EINVAL);
        assert_int_equal(store_group_delete(f->s, g.id), 0);
        assert_int_equal(store_group_get(f->s, "p1", g.id, &got), -ENOENT);
        assert_int_equal(store_group_update(f->s, &g), -ENOENT);
        assert_int_equal(store_group_delete(f->s, g.id), -ENOENT);
}

/* The release record of a group's remote sidecars (store.h,
 * store_group_release_*; docs/design/replication.md "The release
 * record"): 0 for a new group, +1 per bump, kept across a reopen, never
 * moved by store_group_update (a stale copy of the row written back), a
 * bump in a rolled-back transaction undone, -ENOENT for a group that does
 * not exist, never negative (CHECK). */
static void test_group_release(void **state)
{
        struct fx *f = *state;
        struct store_group g, stale;
        char missing[STORE_ID_LEN];
        int64_t n = -1;
        uint64_t gen;

        mk_group(&g, 1, "p1", 10);
        assert_int_equal(store_group_insert(f->s, &g), 0);
        assert_int_equal(store_group_release_get(f->s, g.id, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(store_group_get(f->s, "p1", g.id, &stale), 0);
        gen = replygen_now();
        assert_int_equal(store_group_release_bump(f->s, g.id), 0);
        /* a store write like any other: the reply cache's generation moves */
        assert_true(replygen_now() > gen);
        assert_int_equal(store_group_release_bump(f->s, g.id), 0);
        assert_int_equal(store_group_release_get(f->s, g.id, &n), 0);
        assert_int_equal(n, 2);
        snprintf(stale.status, sizeof(stale.status), "failovered");
        stale.updated_at = 99;
        assert_int_equal(store_group_update(f->s, &stale), 0);
        assert_int_equal(store_group_release_get(f->s, g.id, &n), 0);
        assert_int_equal(n, 2);
        reopen(f);
        assert_int_equal(store_group_release_get(f->s, g.id, &n), 0);
        assert_int_equal(n, 2);

        assert_int_equal(store_tx_begin(f->s), 0);
        assert_int_equal(store_group_release_bump(f->s, g.id), 0);
        assert_int_equal(store_group_release_get(f->s, g.id, &n), 0);
        assert_int_equal(n, 3);
        store_tx_rollback(f->s);
        assert_int_equal(store_group_release_get(f->s, g.id, &n), 0);
        assert_int_equal(n, 2);

        mkid(missing, 'c', 9);
        assert_int_equal(store_group_release_bump(f->s, missing), -ENOENT);
        assert_int_equal(store_group_release_get(f->s, missing, &n), -ENOENT);
        store_close(f->s);
        f->s = NULL;
        assert_true(raw_exec(f, "UPDATE groups SET sidecars_released = -1") != 0);
        reopen(f);
        assert_int_equal(store_group_release_get(f->s, g.id, &n), 0);
        assert_int_equal(n, 2);
}

static void test_list_all_and_by_group(void **state)
{
        struct fx *f = *state;
        struct world w;
        struct store_pair p, *pl;
        struct store_group g, *gl;
        struct store_volume v, *vl;
        size_t n;

        make_volumes(f, &w, 6);
        mk_volume(&v, 50, "other", "az1", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        mk_group(&g, 1, "p1", 1);
        assert_int_equal(store_group_insert(f->s, &g), 0);
        mk_group(&g, 2, "other", 1);
        assert_int_equal(store_group_insert(f->s, &g), 0);
        /* Inserted out of created_at order to check the ordering. */
        mk_pair(&p, 1, "p1", w.v[0], w.v[1], 30);
        mkid(p.group_id, 'c', 1);
        assert_int_equal(store_pair_insert(f->s, &p), 0);
        mk_pair(&p, 2, "p1", w.v[2], w.v[3], 10);
        mkid(p.group_id, 'c', 1);
        assert_int_equal(store_pair_insert(f->s, &p), 0);
        mk_pair(&p, 3, "p1", w.v[4], w.v[5], 20);
        assert_int_equal(store_pair_insert(f->s, &p), 0);

        assert_int_equal(store_volume_list_all(f->s, &vl, &n), 0);
        assert_int_equal(n, 7);
        assert_string_equal(vl[0].id, v.id); /* created_at 1 */
        char p1[STORE_ID_LEN];
        mkid(p1, 'b', 1);
        assert_string_equal(vl[1].id, w.v[0]);
        assert_string_equal(vl[1].pair_id, p1); /* the join also fills list rows */
        store_volume_free_list(vl, n);

        char g1[STORE_ID_LEN];
        mkid(g1, 'c', 1);
        assert_int_equal(store_pair_list_by_group(f->s, g1, &pl, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(pl[0].name, "pair-2");
        assert_string_equal(pl[1].name, "pair-1");
        free(pl);
        assert_int_equal(store_pair_list_all(f->s, &pl, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(pl[0].name, "pair-2");
        assert_string_equal(pl[1].name, "pair-3");
        assert_string_equal(pl[2].name, "pair-1");
        free(pl);
        assert_int_equal(store_group_list_all(f->s, &gl, &n), 0);
        assert_int_equal(n, 2);
        free(gl);
        mkid(g1, 'c', 2);
        assert_int_equal(store_pair_list_by_group(f->s, g1, &pl, &n), 0);
        assert_int_equal(n, 0);
        free(pl);
}

/* ------------------------------------------------------------------ list queries */

static size_t vol_list(struct fx *f, const struct store_list_query *q, char ids[][STORE_ID_LEN],
                       size_t cap)
{
        struct store_volume *l;
        size_t n;

        assert_int_equal(store_volume_list(f->s, q, &l, &n), 0);
        assert_true(n <= cap);
        for (size_t i = 0; i < n; i++)
                snprintf(ids[i], STORE_ID_LEN, "%s", l[i].id);
        store_volume_free_list(l, n);
        return n;
}

static void test_list_filters(void **state)
{
        struct fx *f = *state;
        struct world w;
        struct store_pair p;
        struct store_group g;
        struct store_list_query q = q_for("p1");
        struct store_filter fl[2];
        char ids[16][STORE_ID_LEN];
        size_t n;

        make_volumes(f, &w, 6); /* az1: 1,3,5  az2: 2,4,6 */
        struct store_volume v;
        assert_int_equal(store_volume_get(f->s, "p1", w.v[2], &v), 0);
        snprintf(v.status, sizeof(v.status), "error");
        assert_int_equal(store_volume_update(f->s, &v), 0);
        store_volume_clear(&v);

        q.filters = fl;
        q.nfilters = 1;
        fl[0] = (struct store_filter){"availability_zone", "az1"};
        assert_int_equal(vol_list(f, &q, ids, 16), 3);
        fl[1] = (struct store_filter){"status", "available"};
        q.nfilters = 2;
        assert_int_equal(vol_list(f, &q, ids, 16), 2); /* AND */
        fl[0] = (struct store_filter){"name", "vol-3"};
        fl[1] = (struct store_filter){"status", "error"};
        assert_int_equal(vol_list(f, &q, ids, 16), 1);
        assert_string_equal(ids[0], w.v[2]);
        fl[0] = (struct store_filter){"name", "vol-3' OR '1'='1"}; /* bound, not spliced */
        q.nfilters = 1;
        assert_int_equal(vol_list(f, &q, ids, 16), 0);

        struct store_volume *vl;
        fl[0] = (struct store_filter){"size_gib", "1"}; /* not an allowed filter */
        assert_int_equal(store_volume_list(f->s, &q, &vl, &n), -EINVAL);
        fl[0] = (struct store_filter){"status; DROP TABLE volumes", "x"};
        assert_int_equal(store_volume_list(f->s, &q, &vl, &n), -EINVAL);
        fl[0] = (struct store_filter){"status", NULL};
        assert_int_equal(store_volume_list(f->s, &q, &vl, &n), -EINVAL);

        /* Pairs. */
        mk_group(&g, 1, "p1", 1);
        assert_int_equal(store_group_insert(f->s, &g), 0);
        mk_group(&g, 2, "p1", 2);
        snprintf(g.status, sizeof(g.status), "error");
        assert_int_equal(store_group_insert(f->s, &g), 0);
        mk_pair(&p, 1, "p1", w.v[0], w.v[1], 1);
        mkid(p.group_id, 'c', 1);
        assert_int_equal(store_pair_insert(f->s, &p), 0);
        mk_pair(&p, 2, "p1", w.v[3], w.v[2], 2);
        snprintf(p.priority_station, sizeof(p.priority_station), "az2");
        assert_int_equal(store_pair_insert(f->s, &p), 0);

        struct store_pair *pl;
        char want[2 * STORE_ID_LEN];
        fl[0] = (struct store_filter){"volume_id", w.v[2]};
        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(pl[0].name, "pair-2");
        free(pl);
        snprintf(want, sizeof(want), "%s,%s", w.v[3], w.v[2]);
        fl[0] = (struct store_filter){"volume_ids", want};
        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(pl[0].name, "pair-2");
        free(pl);
        snprintf(want, sizeof(want), "%s,%s", w.v[2], w.v[3]); /* wrong order */
        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), 0);
        assert_int_equal(n, 0);
        free(pl);
        char gid[STORE_ID_LEN];
        mkid(gid, 'c', 1);
        fl[0] = (struct store_filter){"replication_consistency_group_id", gid};
        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(pl[0].name, "pair-1");
        free(pl);
        fl[0] = (struct store_filter){"priority_station", "az2"};
        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), 0);
        assert_int_equal(n, 1);
        free(pl);
        fl[0] = (struct store_filter){"name", "pair-1"};
        fl[1] = (struct store_filter){"status", "available"};
        q.nfilters = 2;
        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), 0);
        assert_int_equal(n, 1);
        free(pl);
        q.nfilters = 1;
        fl[0] = (struct store_filter){"availability_zone", "az1"};
        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), -EINVAL);

        /* Groups. */
        struct store_group *gl;
        fl[0] = (struct store_filter){"volume_id", w.v[1]};
        assert_int_equal(store_group_list(f->s, &q, &gl, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(gl[0].name, "group-1");
        free(gl);
        fl[0] = (struct store_filter){"volume_id", w.v[3]}; /* paired, in no group */
        assert_int_equal(store_group_list(f->s, &q, &gl, &n), 0);
        assert_int_equal(n, 0);
        free(gl);
        char pid[STORE_ID_LEN];
        mkid(pid, 'b', 1);
        fl[0] = (struct store_filter){"replication_id", pid};
        assert_int_equal(store_group_list(f->s, &q, &gl, &n), 0);
        assert_int_equal(n, 1);
        free(gl);
        fl[0] = (struct store_filter){"status", "error"};
        assert_int_equal(store_group_list(f->s, &q, &gl, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(gl[0].name, "group-2");
        free(gl);
        fl[0] = (struct store_filter){"priority_station", "az1"};
        fl[1] = (struct store_filter){"name", "group-1"};
        q.nfilters = 2;
        assert_int_equal(store_group_list(f->s, &q, &gl, &n), 0);
        assert_int_equal(n, 1);
        free(gl);
        q.nfilters = 1;
        fl[0] = (struct store_filter){"volume_ids", "x"};
        assert_int_equal(store_group_list(f->s, &q, &gl, &n), -EINVAL);
}

static void test_list_bad_queries(void **state)
{
        struct fx *f = *state;
        struct store_list_query q = q_for("p1");
        struct store_volume *l;
        struct world w;
        char unknown[STORE_ID_LEN];
        size_t n;

        make_volumes(f, &w, 2);
        q.sort_key = "size_gib";
        assert_int_equal(store_volume_list(f->s, &q, &l, &n), -EINVAL);
        q.sort_key = "created_at; DROP TABLE volumes";
        assert_int_equal(store_volume_list(f->s, &q, &l, &n), -EINVAL);
        q.sort_key = NULL;
        q.limit = -1;
        assert_int_equal(store_volume_list(f->s, &q, &l, &n), -EINVAL);
        q.limit = 1001;
        assert_int_equal(store_volume_list(f->s, &q, &l, &n), -EINVAL);
        q.limit = 0;
        q.offset = -1;
        assert_int_equal(store_volume_list(f->s, &q, &l, &n), -EINVAL);
        q.offset = 0;
        mkid(unknown, 'a', 777);
        q.marker = unknown;
        assert_int_equal(store_volume_list(f->s, &q, &l, &n), -ENOENT);
        q.marker = "not-a-uuid";
        assert_int_equal(store_pair_list(f->s, &q, (struct store_pair **)&l, &n), -ENOENT);
        q.marker = w.v[0]; /* a volume id is not a group marker */
        assert_int_equal(store_group_list(f->s, &q, (struct store_group **)&l, &n), -ENOENT);
        q.marker = NULL;
        q.project_id = NULL;
        assert_int_equal(store_volume_list(f->s, &q, &l, &n), -EINVAL);
        assert_int_equal(store_volume_list(f->s, NULL, &l, &n), -EINVAL);
}

static void test_list_limit_offset_changes_since(void **state)
{
        struct fx *f = *state;
        struct store_list_query q = q_for("p1");
        char ids[1100][STORE_ID_LEN];
        struct world w;

        make_volumes(f, &w, 6); /* created 100..105 */
        q.sort_asc = true;
        assert_int_equal(vol_list(f, &q, ids, 1100), 6);
        assert_string_equal(ids[0], w.v[0]);
        q.limit = 2;
        assert_int_equal(vol_list(f, &q, ids, 1100), 2);
        assert_string_equal(ids[1], w.v[1]);
        q.offset = 3;
        assert_int_equal(vol_list(f, &q, ids, 1100), 2);
        assert_string_equal(ids[0], w.v[3]);
        q.offset = 5;
        assert_int_equal(vol_list(f, &q, ids, 1100), 1);
        q.offset = 6;
        assert_int_equal(vol_list(f, &q, ids, 1100), 0);
        /* Offset applies after the marker. */
        q.offset = 1;
        q.marker = w.v[1];
        assert_int_equal(vol_list(f, &q, ids, 1100), 2);
        assert_string_equal(ids[0], w.v[3]);
        q.marker = NULL;
        q.offset = 0;
        q.limit = 0;

        /* changes_since: created >= t, or updated >= t. */
        struct store_volume v;
        assert_int_equal(store_volume_get(f->s, "p1", w.v[0], &v), 0);
        v.updated_at = 500;
        assert_int_equal(store_volume_update(f->s, &v), 0);
        store_volume_clear(&v);
        q.changes_since = 104;
        assert_int_equal(vol_list(f, &q, ids, 1100), 3); /* 1 (updated), 5, 6 */
        assert_string_equal(ids[0], w.v[0]);
        q.changes_since = 105;
        assert_int_equal(vol_list(f, &q, ids, 1100), 2); /* boundary is inclusive */
        q.changes_since = 501;
        assert_int_equal(vol_list(f, &q, ids, 1100), 0);
        q.changes_since = 0;

        /* Default limit is 1000. */
        for (int i = 0; i < 1005; i++) {
                mk_volume(&v, 1000 + i, "p1", "az1", 1);
                assert_int_equal(store_volume_insert(f->s, &v), 0);
        }
        assert_int_equal(vol_list(f, &q, ids, 1100), 1000);
        q.limit = 1000;
        assert_int_equal(vol_list(f, &q, ids, 1100), 1000);
}

/* Order checks for each sort key, both directions, on all three resources. */
static const char *const keys[] = {"created_at", "updated_at", "name", "status", "id"};

struct row {
        char id[STORE_ID_LEN];
        char name[STORE_NAME_LEN];
        char status[STORE_STATUS_LEN];
        int64_t created_at, updated_at;
};

static int cmp_key(const struct row *a, const struct row *b, const char *key)
{
        int c = 0;

        if (strcmp(key, "created_at") == 0)
                c = (a->created_at > b->created_at) - (a->created_at < b->created_at);
        else if (strcmp(key, "updated_at") == 0)
                c = (a->updated_at > b->updated_at) - (a->updated_at < b->updated_at);
        else if (strcmp(key, "name") == 0)
                c = strcmp(a->name, b->name);
        else if (strcmp(key, "status") == 0)
                c = strcmp(a->status, b->status);
        if (c == 0)
                c = strcmp(a->id, b->id);
        return c;
}

static const char *g_sort_key;
static bool g_sort_asc;
static int cmp_rows(const void *pa, const void *pb)
{
        int c = cmp_key(pa, pb, g_sort_key);
        return g_sort_asc ? c : -c;
}

static void test_sort_every_key_pairs_groups(void **state)
{
        struct fx *f = *state;
        struct world w;
        struct store_list_query q = q_for("p1");
        static const char *const names[] = {"b", "a", "c", "a", "b", "c"};
        static const char *const sts[] = {"error", "available", "creating"};

        make_volumes(f, &w, 6);
        for (int i = 0; i < 3; i++) {
                struct store_pair p;
                struct store_group g;
                mk_pair(&p, 10 - i, "p1", w.v[2 * i], w.v[2 * i + 1], 7);
                snprintf(p.name, sizeof(p.name), "%s", names[i]);
                snprintf(p.status, sizeof(p.status), "%s", sts[i]);
                p.updated_at = i == 1 ? 0 : 50 + i;
                assert_int_equal(store_pair_insert(f->s, &p), 0);
                mk_group(&g, 10 - i, "p1", 7 + (i % 2));
                snprintf(g.name, sizeof(g.name), "%s", names[i + 3]);
                snprintf(g.status, sizeof(g.status), "%s", sts[(i + 1) % 3]);
                g.updated_at = i == 2 ? 0 : 60 - i;
                assert_int_equal(store_group_insert(f->s, &g), 0);
        }
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
                for (int dir = 0; dir < 2; dir++) {
                        struct store_pair *pl;
                        struct store_group *gl;
                        size_t n;

                        q.sort_key = keys[k];
                        q.sort_asc = dir;
                        assert_int_equal(store_pair_list(f->s, &q, &pl, &n), 0);
                        assert_int_equal(n, 3);
                        for (size_t i = 1; i < n; i++) {
                                struct row a = {0}, b = {0};
                                memcpy(a.id, pl[i - 1].id, STORE_ID_LEN);
                                memcpy(a.name, pl[i - 1].name, STORE_NAME_LEN);
                                memcpy(a.status, pl[i - 1].status, STORE_STATUS_LEN);
                                a.created_at = pl[i - 1].created_at;
                                a.updated_at = pl[i - 1].updated_at;
                                memcpy(b.id, pl[i].id, STORE_ID_LEN);
                                memcpy(b.name, pl[i].name, STORE_NAME_LEN);
                                memcpy(b.status, pl[i].status, STORE_STATUS_LEN);
                                b.created_at = pl[i].created_at;
                                b.updated_at = pl[i].updated_at;
                                int c = cmp_key(&a, &b, keys[k]);
                                assert_true(dir ? c < 0 : c > 0);
                        }
                        free(pl);
                        assert_int_equal(store_group_list(f->s, &q, &gl, &n), 0);
                        assert_int_equal(n, 3);
                        for (size_t i = 1; i < n; i++) {
                                struct row a = {0}, b = {0};
                                memcpy(a.id, gl[i - 1].id, STORE_ID_LEN);
                                memcpy(a.name, gl[i - 1].name, STORE_NAME_LEN);
                                memcpy(a.status, gl[i - 1].status, STORE_STATUS_LEN);
                                a.created_at = gl[i - 1].created_at;
                                a.updated_at = gl[i - 1].updated_at;
                                memcpy(b.id, gl[i].id, STORE_ID_LEN);
                                memcpy(b.name, gl[i].name, STORE_NAME_LEN);
                                memcpy(b.status, gl[i].status, STORE_STATUS_LEN);
                                b.created_at = gl[i].created_at;
                                b.updated_at = gl[i].updated_at;
                                int c = cmp_key(&a, &b, keys[k]);
                                assert_true(dir ? c < 0 : c > 0);
                        }
                        /* Marker paging on pairs and groups, page size 1. */
                        struct store_list_query pq = q;
                        char seen[3][STORE_ID_LEN];
                        pq.limit = 1;
                        for (int i = 0; i < 3; i++) {
                                struct store_group *one;
                                size_t m;
                                assert_int_equal(store_group_list(f->s, &pq, &one, &m), 0);
                                assert_int_equal(m, 1);
                                assert_string_equal(one[0].id, gl[i].id);
                                snprintf(seen[i], STORE_ID_LEN, "%s", one[0].id);
                                pq.marker = seen[i];
                                free(one);
                        }
                        free(gl);
                        pq.marker = NULL;
                        for (int i = 0; i < 3; i++) {
                                struct store_pair *one;
                                size_t m;
                                assert_int_equal(store_pair_list(f->s, &pq, &one, &m), 0);
                                assert_int_equal(m, 1);
                                snprintf(seen[i], STORE_ID_LEN, "%s", one[0].id);
                                pq.marker = seen[i];
                                free(one);
                        }
                        struct store_pair *none;
                        assert_int_equal(store_pair_list(f->s, &pq, &none, &n), 0);
                        assert_int_equal(n, 0);
                        free(none);
                }
        }
}

/* Walk every page with a marker; every row exactly once, in full-list order. */
static void walk_pages(struct fx *f, struct store_list_query q, int page, size_t expect,
                       char full[][STORE_ID_LEN])
{
        char got[64][STORE_ID_LEN];
        char last[STORE_ID_LEN];
        size_t total = 0;

        q.limit = page;
        q.marker = NULL;
        for (;;) {
                char pg[64][STORE_ID_LEN];
                size_t n = vol_list(f, &q, pg, 64);
                assert_true(total + n <= expect);
                for (size_t i = 0; i < n; i++)
                        memcpy(got[total + i], pg[i], STORE_ID_LEN);
                total += n;
                if (n < (size_t)page)
                        break;
                memcpy(last, pg[n - 1], STORE_ID_LEN);
                q.marker = last;
        }
        assert_int_equal(total, expect);
        for (size_t i = 0; i < expect; i++)
                assert_string_equal(got[i], full[i]);
}

static void test_marker_paging_with_ties(void **state)
{
        struct fx *f = *state;
        struct store_list_query q = q_for("p1");
        char full[64][STORE_ID_LEN];

        /* 25 volumes, created_at in runs of 5 equal values, ids not in
         * creation order, names and statuses with many ties. */
        for (int i = 0; i < 25; i++) {
                struct store_volume v;
                mk_volume(&v, (i * 7) % 25, "p1", "az1", 1000 + i / 5);
                snprintf(v.name, sizeof(v.name), "n%d", i % 3);
                snprintf(v.status, sizeof(v.status), i % 2 ? "available" : "error");
                v.updated_at = i % 4 == 0 ? 0 : 2000 + i % 3;
                assert_int_equal(store_volume_insert(f->s, &v), 0);
        }
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
                for (int dir = 0; dir < 2; dir++) {
                        q.sort_key = keys[k];
                        q.sort_asc = dir;
                        q.limit = 0;
                        q.marker = NULL;
                        assert_int_equal(vol_list(f, &q, full, 64), 25);
                        for (int page = 1; page <= 26; page += 3)
                                walk_pages(f, q, page, 25, full);
                }
        }
}

/* Randomized: paging through the store equals filtering and sorting a copy in
 * memory, for random data, keys, directions, filters, page sizes. */
static void test_random_paging_vs_naive(void **state)
{
        struct fx *f = *state;
        enum { N = 60 };
        struct row rows[N];
        static const char *const st_names[] = {"available", "error", "creating"};
        static const char *const nm[] = {"", "a", "b", "B", "ä", "a b"};
        unsigned seed = (unsigned)time(NULL);

        print_message("random seed %u\n", seed);
        srand(seed);
        for (int i = 0; i < N; i++) {
                struct store_volume v;
                mk_volume(&v, rand() % 100000, "p1", "az1", rand() % 5);
                /* Duplicate random ids would fail the insert: retry. */
                while (store_volume_insert(f->s, &v) == -EEXIST)
                        mkid(v.id, 'a', rand() % 100000);
                snprintf(v.name, sizeof(v.name), "%s", nm[rand() % ARRAY_SIZE(nm)]);
                snprintf(v.status, sizeof(v.status), "%s", st_names[rand() % 3]);
                v.updated_at = rand() % 3 == 0 ? 0 : rand() % 8;
                assert_int_equal(store_volume_update(f->s, &v), 0);
                memset(&rows[i], 0, sizeof(rows[i]));
                memcpy(rows[i].id, v.id, STORE_ID_LEN);
                memcpy(rows[i].name, v.name, STORE_NAME_LEN);
                memcpy(rows[i].status, v.status, STORE_STATUS_LEN);
                rows[i].created_at = v.created_at;
                rows[i].updated_at = v.updated_at;
        }
        for (int iter = 0; iter < 300; iter++) {
                struct store_list_query q = q_for("p1");
                struct store_filter fl;
                struct row want[N];
                size_t nw = 0;
                int64_t since = rand() % 4 == 0 ? 1 + rand() % 7 : 0;
                const char *fstatus = rand() % 3 == 0 ? st_names[rand() % 3] : NULL;

                q.sort_key = keys[rand() % ARRAY_SIZE(keys)];
                q.sort_asc = rand() % 2;
                q.changes_since = since;
                if (fstatus) {
                        fl = (struct store_filter){"status", fstatus};
                        q.filters = &fl;
                        q.nfilters = 1;
                }
                for (int i = 0; i < N; i++) {
                        if (fstatus && strcmp(rows[i].status, fstatus) != 0)
                                continue;
                        if (since && rows[i].created_at < since && rows[i].updated_at < since)
                                continue;
                        want[nw++] = rows[i];
                }
                g_sort_key = q.sort_key;
                g_sort_asc = q.sort_asc;
                qsort(want, nw, sizeof(want[0]), cmp_rows);

                char full[64][STORE_ID_LEN];
                for (size_t i = 0; i < nw; i++)
                        memcpy(full[i], want[i].id, STORE_ID_LEN);
                walk_pages(f, q, 1 + rand() % 9, nw, full);

                /* Offset paging gives the same sequence. */
                q.limit = 1 + rand() % 9;
                q.offset = rand() % (N + 2);
                char pg[64][STORE_ID_LEN];
                size_t n = vol_list(f, &q, pg, 64);
                size_t expect =
                    (size_t)q.offset >= nw ? 0 : MIN((size_t)q.limit, nw - (size_t)q.offset);
                assert_int_equal(n, expect);
                for (size_t i = 0; i < n; i++)
                        assert_string_equal(pg[i], full[q.offset + (int64_t)i]);
        }
}

/* ------------------------------------------------------------------ transactions */

static void test_tx_commit_rollback(void **state)
{
        struct fx *f = *state;
        struct store_volume v, got;

        assert_int_equal(store_tx_begin(f->s), 0);
        assert_int_equal(store_tx_begin(f->s), -EBUSY); /* no nesting */
        mk_volume(&v, 1, "p1", "az1", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        mk_volume(&v, 2, "p1", "az1", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        /* Visible inside the transaction to the same thread. */
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);
        /* A failed statement does not end the transaction. */
        assert_int_equal(store_volume_insert(f->s, &v), -EEXIST);
        store_tx_rollback(f->s);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), -ENOENT);
        mkid(v.id, 'a', 1);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), -ENOENT);

        assert_int_equal(store_tx_commit(f->s), -EINVAL); /* no transaction */
        store_tx_rollback(f->s);                          /* harmless */

        assert_int_equal(store_tx_begin(f->s), 0);
        mk_volume(&v, 3, "p1", "az1", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        assert_int_equal(store_tx_commit(f->s), 0);
        reopen(f);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);
}

struct worker {
        struct store *s;
        int index;
        int committed; /* volumes this worker committed */
        int failures;
};

enum { WORKERS = 6, ROUNDS = 150 };

static void *worker_main(void *arg)
{
        struct worker *w = arg;

        for (int r = 0; r < ROUNDS; r++) {
                struct store_volume v, got;
                int base = (w->index * ROUNDS + r) * 4;

                switch ((r + w->index) % 3) {
                case 0: /* transaction that commits two rows */
                case 1: /* transaction that rolls back two rows */
                        if (store_tx_begin(w->s) != 0) {
                                w->failures++;
                                break;
                        }
                        mk_volume(&v, base, "p1", "az1", r);
                        w->failures += store_volume_insert(w->s, &v) != 0;
                        mk_volume(&v, base + 1, "p1", "az1", r);
                        w->failures += store_volume_insert(w->s, &v) != 0;
                        w->failures += store_volume_get(w->s, "p1", v.id, &got) != 0;
                        store_volume_clear(&got);
                        if ((r + w->index) % 3 == 0) {
                                if (store_tx_commit(w->s) == 0)
                                        w->committed += 2;
                                else
                                        w->failures++;
                        } else {
                                store_tx_rollback(w->s);
                        }
                        break;
                default: { /* single calls interleaved with others' transactions */
                        struct store_list_query q = q_for("p1");
                        struct store_volume *l;
                        size_t n;

                        mk_volume(&v, base + 2, "p1", "az2", r);
                        if (store_volume_insert(w->s, &v) == 0)
                                w->committed++;
                        else
                                w->failures++;
                        q.limit = 10;
                        if (store_volume_list(w->s, &q, &l, &n) == 0)
                                store_volume_free_list(l, n);
                        else
                                w->failures++;
                        break;
                }
                }
        }
        return NULL;
}

static void test_tx_concurrent_threads(void **state)
{
        struct fx *f = *state;
        pthread_t th[WORKERS];
        struct worker w[WORKERS];
        struct store_volume *l;
        size_t n;
        int expect = 0;

        for (int i = 0; i < WORKERS; i++) {
                w[i] = (struct worker){.s = f->s, .index = i};
                assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
        }
        for (int i = 0; i < WORKERS; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(w[i].failures, 0);
                expect += w[i].committed;
        }
        assert_int_equal(store_volume_list_all(f->s, &l, &n), 0);
        assert_int_equal((int)n, expect);
        store_volume_free_list(l, n);
}

/* A commit that returned survives kill -9 of the process right after. */
static void test_commit_survives_kill9(void **state)
{
        struct fx *f = *state;
        struct store_volume v, got;
        pid_t pid;
        int status;

        store_close(f->s);
        f->s = NULL;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct store *s;
                if (store_open(f->path, &s, NULL, 0) != 0)
                        _exit(2);
                mk_volume(&v, 1, "p1", "az1", 1);
                if (store_volume_insert(s, &v) != 0)
                        _exit(3);
                if (store_tx_begin(s) != 0)
                        _exit(4);
                mk_volume(&v, 2, "p1", "az1", 1);
                if (store_volume_insert(s, &v) != 0 || store_tx_commit(s) != 0)
                        _exit(5);
                /* Left open on purpose: a third row in an uncommitted tx. */
                store_tx_begin(s);
                mk_volume(&v, 3, "p1", "az1", 1);
                store_volume_insert(s, &v);
                raise(SIGKILL);
                _exit(6);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        reopen(f);
        mkid(v.id, 'a', 1);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);
        mkid(v.id, 'a', 2);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);
        mkid(v.id, 'a', 3);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), -ENOENT);
}

/* ------------------------------------------------------------------ quotas */

/* schema.c's quotas migration; renumber together with the migration list. */
#define QUOTA_MIGRATION 4

static void test_quota_crud(void **state)
{
        struct fx *f = *state;
        struct store_quota q, got;

        /* No row: both fields "no override". */
        assert_int_equal(store_quota_get(f->s, "p1", &got), 0);
        assert_string_equal(got.project_id, "p1");
        assert_int_equal(got.volumes, STORE_QUOTA_DEFAULT);
        assert_int_equal(got.gigabytes, STORE_QUOTA_DEFAULT);
        assert_int_equal(store_quota_delete(f->s, "p1"), 0); /* nothing to delete: fine */

        memset(&q, 0, sizeof(q));
        snprintf(q.project_id, sizeof(q.project_id), "p1");
        q.volumes = 5;
        q.gigabytes = STORE_QUOTA_DEFAULT;
        q.updated_at = 42;
        assert_int_equal(store_quota_set(f->s, &q), 0);
        assert_int_equal(store_quota_get(f->s, "p1", &got), 0);
        assert_int_equal(got.volumes, 5);
        assert_int_equal(got.gigabytes, STORE_QUOTA_DEFAULT);
        assert_int_equal(got.updated_at, 42);
        assert_int_equal(store_quota_get(f->s, "p2", &got), 0); /* other project untouched */
        assert_int_equal(got.volumes, STORE_QUOTA_DEFAULT);

        q.volumes = -1; /* unlimited */
        q.gigabytes = 0;
        assert_int_equal(store_quota_set(f->s, &q), 0);
        reopen(f);
        assert_int_equal(store_quota_get(f->s, "p1", &got), 0);
        assert_int_equal(got.volumes, -1);
        assert_int_equal(got.gigabytes, 0);

        q.volumes = -3;
        assert_int_equal(store_quota_set(f->s, &q), -EINVAL);
        assert_int_equal(store_quota_delete(f->s, "p1"), 0);
        assert_int_equal(store_quota_get(f->s, "p1", &got), 0);
        assert_int_equal(got.volumes, STORE_QUOTA_DEFAULT);
        assert_int_equal(got.gigabytes, STORE_QUOTA_DEFAULT);
}

static void test_quota_check_constraint(void **state)
{
        struct fx *f = *state;

        /* The schema itself refuses a limit below -1, whoever writes it. */
        store_close(f->s);
        f->s = NULL;
        assert_int_equal(raw_exec(f, "INSERT INTO quotas (project_id, volumes) VALUES ('x', -2)"),
                         -1);
        assert_int_equal(raw_exec(f, "INSERT INTO quotas (project_id, gigabytes) VALUES ('x', -7)"),
                         -1);
        assert_int_equal(raw_exec(f, "INSERT INTO quotas (project_id, volumes, gigabytes) "
                                     "VALUES ('x', -1, NULL)"),
                         0);
        reopen(f);
}

static void test_usage_and_provisioned(void **state)
{
        struct fx *f = *state;
        struct store_volume v;
        int64_t nvol = -1, gib = -1;

        assert_int_equal(store_project_usage(f->s, "p1", &nvol, &gib), 0);
        assert_int_equal(nvol, 0);
        assert_int_equal(gib, 0);
        assert_int_equal(store_site_provisioned(f->s, "az1", &gib), 0);
        assert_int_equal(gib, 0);
        mk_volume(&v, 1, "p1", "az1", 1);
        v.size_gib = 10;
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        mk_volume(&v, 2, "p1", "az2", 2);
        v.size_gib = 20;
        snprintf(v.status, sizeof(v.status), "error"); /* counts whatever its status */
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        mk_volume(&v, 3, "p2", "az1", 3);
        v.size_gib = 300;
        assert_int_equal(store_volume_insert(f->s, &v), 0);

        assert_int_equal(store_project_usage(f->s, "p1", &nvol, &gib), 0);
        assert_int_equal(nvol, 2);
        assert_int_equal(gib, 30);
        assert_int_equal(store_project_usage(f->s, "p2", &nvol, &gib), 0);
        assert_int_equal(nvol, 1);
        assert_int_equal(gib, 300);
        assert_int_equal(store_site_provisioned(f->s, "az1", &gib), 0);
        assert_int_equal(gib, 310);
        assert_int_equal(store_site_provisioned(f->s, "az2", &gib), 0);
        assert_int_equal(gib, 20);

        /* Inside a transaction the counts see the transaction's own rows. */
        assert_int_equal(store_tx_begin(f->s), 0);
        mk_volume(&v, 4, "p1", "az1", 4);
        v.size_gib = 5;
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        assert_int_equal(store_project_usage(f->s, "p1", &nvol, &gib), 0);
        assert_int_equal(nvol, 3);
        assert_int_equal(gib, 35);
        store_tx_rollback(f->s);
        mkid(v.id, 'a', 1);
        assert_int_equal(store_volume_delete(f->s, v.id), 0);
        assert_int_equal(store_project_usage(f->s, "p1", &nvol, &gib), 0);
        assert_int_equal(nvol, 1);
        assert_int_equal(gib, 20);
}

/* A database from before the quotas migration (its objects dropped, its
 * version set back) is upgraded on open, keeping its volumes. */
static void test_quota_upgrade_path(void **state)
{
        struct fx *f = *state;
        struct store_volume v, got;
        struct store_quota q;
        char sql[256];

        mk_volume(&v, 1, "p1", "az1", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        store_close(f->s);
        f->s = NULL;
        snprintf(sql, sizeof(sql),
                 "ALTER TABLE groups DROP COLUMN sidecars_released; "
                 "DROP TABLE group_throttles; DROP TABLE nodes; DROP TABLE quotas; "
                 "DROP INDEX volumes_az; "
                 "UPDATE schema_version SET version = %d",
                 QUOTA_MIGRATION - 1);
        assert_int_equal(raw_exec(f, sql), 0);

        reopen(f);
        assert_int_equal(store_schema_version(f->s), store_schema_latest());
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);
        memset(&q, 0, sizeof(q));
        snprintf(q.project_id, sizeof(q.project_id), "p1");
        q.volumes = 1;
        q.gigabytes = 2;
        assert_int_equal(store_quota_set(f->s, &q), 0);
        store_close(f->s);
        f->s = NULL;
        assert_int_equal(raw_int(f, pg_mode() ? "SELECT count(*) FROM pg_class WHERE "
                                                "relname IN ('quotas', 'volumes_az')"
                                              : "SELECT count(*) FROM sqlite_master WHERE "
                                                "name IN ('quotas', 'volumes_az')"),
                         2);
        reopen(f);
        assert_int_equal(store_quota_get(f->s, "p1", &q), 0);
        assert_int_equal(q.volumes, 1);
        assert_int_equal(q.gigabytes, 2);
}

/* ------------------------------------------------------------------ nodes */

static void mk_node(struct store_node *n, const char *name, const char *azs)
{
        memset(n, 0, sizeof(*n));
        snprintf(n->name, sizeof(n->name), "%s", name);
        snprintf(n->azs, sizeof(n->azs), "%s", azs);
        snprintf(n->api_url, sizeof(n->api_url), "http://127.0.0.1:1/%s", name);
        snprintf(n->nbd_json, sizeof(n->nbd_json), "{\"%s\":\"127.0.0.1:10809\"}", azs);
}

/* Register sets a lease on the store's clock; re-register updates the row
 * and keeps its roles_generation; list is ordered by name; delete. */
static void test_node_register_get_list(void **state)
{
        struct fx *f = *state;
        struct store_node n, got, *list = NULL;
        int64_t t0, t1;
        size_t cnt = 0;

        assert_int_equal(store_node_get(f->s, "a", &got), -ENOENT);
        assert_int_equal(store_node_list(f->s, &list, &cnt), 0);
        assert_int_equal(cnt, 0);
        assert_null(list);
        assert_int_equal(store_now_usec(f->s, &t0), 0);
        mk_node(&n, "b", "az2");
        assert_int_equal(store_node_register(f->s, &n, 12000), 0);
        mk_node(&n, "a", "az1");
        assert_int_equal(store_node_register(f->s, &n, 12000), 0);
        assert_int_equal(store_now_usec(f->s, &t1), 0);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_string_equal(got.azs, "az1");
        assert_string_equal(got.api_url, "http://127.0.0.1:1/a");
        assert_string_equal(got.nbd_json, "{\"az1\":\"127.0.0.1:10809\"}");
        assert_int_equal(got.roles_generation, 0);
        assert_true(got.started_at >= t0 - 1000000 && got.started_at <= t1 + 1000000);
        assert_true(got.lease_until >= got.started_at + 12000 * 1000 - 1000);
        assert_true(got.lease_until > t1);

        /* A generation bumped behind the node's back survives re-register. */
        assert_int_equal(raw_exec(f, "UPDATE nodes SET roles_generation = 7 WHERE name = 'a'"), 0);
        mk_node(&n, "a", "az1,az3");
        assert_int_equal(store_node_register(f->s, &n, 3000), 0);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_string_equal(got.azs, "az1,az3");
        assert_int_equal(got.roles_generation, 7);

        assert_int_equal(store_node_list(f->s, &list, &cnt), 0);
        assert_int_equal(cnt, 2);
        assert_string_equal(list[0].name, "a");
        assert_string_equal(list[1].name, "b");
        free(list);

        assert_int_equal(store_node_register(f->s, &n, 0), -EINVAL);
        snprintf(n.nbd_json, sizeof(n.nbd_json), "[1]"); /* not an object */
        assert_int_equal(store_node_register(f->s, &n, 1000), -EINVAL);

        assert_int_equal(store_node_delete(f->s, "b"), 0);
        assert_int_equal(store_node_delete(f->s, "b"), -ENOENT);
        assert_int_equal(store_node_get(f->s, "b", &got), -ENOENT);
}

/* Renew extends the lease only while the generation matches: -ESTALE once
 * another node bumped it, -ENOENT once the row is gone; lease 0 releases. */
static void test_node_renew_generation(void **state)
{
        struct fx *f = *state;
        struct store_node n, got;
        int64_t until = -1, until2 = -1, now;

        mk_node(&n, "a", "az1");
        assert_int_equal(store_node_register(f->s, &n, 3000), 0);
        assert_int_equal(store_node_renew(f->s, "a", 0, 600000, &until), 0);
        assert_int_equal(store_now_usec(f->s, &now), 0);
        assert_true(until > now + 500LL * 1000 * 1000);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_true(got.lease_until == until);

        assert_int_equal(raw_exec(f, "UPDATE nodes SET roles_generation = 1 WHERE name = 'a'"), 0);
        assert_int_equal(store_node_renew(f->s, "a", 0, 3000, &until2), -ESTALE);
        assert_int_equal(until2, -1);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_true(got.lease_until == until); /* untouched */
        assert_int_equal(store_node_renew(f->s, "a", 1, 3000, NULL), 0);

        assert_int_equal(store_node_renew(f->s, "a", 1, 0, &until2), 0); /* release */
        assert_int_equal(until2, 0);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_int_equal(got.lease_until, 0);
        assert_int_equal(store_node_renew(f->s, "a", 1, -1, NULL), -EINVAL);

        assert_int_equal(store_node_delete(f->s, "a"), 0);
        assert_int_equal(store_node_renew(f->s, "a", 1, 3000, NULL), -ENOENT);
}

/* Taking roles (failover from the survivor): refused with the time left
 * while the lease is valid; once it lapsed, the generation moves on, the
 * lease is cleared, and the old node's renewal fails -ESTALE. */
static void test_node_take_roles(void **state)
{
        struct fx *f = *state;
        struct store_node n, got;
        int64_t left = -1;

        mk_node(&n, "a", "az1");
        assert_int_equal(store_node_register(f->s, &n, 600000), 0);
        assert_int_equal(store_node_take_roles(f->s, "a", &left), -EBUSY);
        assert_true(left > 500LL * 1000 * 1000 && left <= 600LL * 1000 * 1000);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_int_equal(got.roles_generation, 0);

        assert_int_equal(raw_exec(f, "UPDATE nodes SET lease_until = 1 WHERE name = 'a'"), 0);
        assert_int_equal(store_tx_begin(f->s), 0);
        assert_int_equal(store_node_take_roles(f->s, "a", NULL), 0);
        assert_int_equal(store_tx_commit(f->s), 0);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_int_equal(got.roles_generation, 1);
        assert_int_equal(got.lease_until, 0);
        assert_int_equal(store_node_renew(f->s, "a", 0, 3000, NULL), -ESTALE);

        /* A rolled-back take leaves the generation alone. */
        assert_int_equal(store_tx_begin(f->s), 0);
        assert_int_equal(store_node_take_roles(f->s, "a", NULL), 0);
        store_tx_rollback(f->s);
        assert_int_equal(store_node_get(f->s, "a", &got), 0);
        assert_int_equal(got.roles_generation, 1);

        assert_int_equal(store_node_take_roles(f->s, "nobody", NULL), -ENOENT);
}

int main(void)
{
        load_pg_url();
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_open_schema_version, setup, teardown),
            cmocka_unit_test_setup_teardown(test_wal_and_version_table_on_disk, setup, teardown),
            cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_open_bad_path, setup, teardown),
            cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
            cmocka_unit_test_setup_teardown(test_volume_crud, setup, teardown),
            cmocka_unit_test_setup_teardown(test_volume_checks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
            cmocka_unit_test_setup_teardown(test_project_isolation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pair_crud_and_join, setup, teardown),
            cmocka_unit_test_setup_teardown(test_foreign_keys, setup, teardown),
            cmocka_unit_test_setup_teardown(test_group_crud, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_all_and_by_group, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_bad_queries, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_limit_offset_changes_since, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sort_every_key_pairs_groups, setup, teardown),
            cmocka_unit_test_setup_teardown(test_marker_paging_with_ties, setup, teardown),
            cmocka_unit_test_setup_teardown(test_random_paging_vs_naive, setup, teardown),
            cmocka_unit_test_setup_teardown(test_attachments, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tx_commit_rollback, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tx_concurrent_threads, setup, teardown),
            cmocka_unit_test_setup_teardown(test_commit_survives_kill9, setup, teardown),
            cmocka_unit_test_setup_teardown(test_quota_crud, setup, teardown),
            cmocka_unit_test_setup_teardown(test_quota_check_constraint, setup, teardown),
            cmocka_unit_test_setup_teardown(test_usage_and_provisioned, setup, teardown),
            cmocka_unit_test_setup_teardown(test_quota_upgrade_path, setup, teardown),
            cmocka_unit_test_setup_teardown(test_group_release, setup, teardown),
            cmocka_unit_test_setup_teardown(test_node_register_get_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_node_renew_generation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_node_take_roles, setup, teardown),
        };
        return _cmocka_run_group_tests(pg_mode() ? "store (postgresql)" : "store (sqlite)", tests,
                                       ARRAY_SIZE(tests), NULL, NULL);
}
