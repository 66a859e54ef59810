/* Store tests about backends and nodes: two handles on one database (two
 * evsrepd nodes) must not lose updates, on either backend; PostgreSQL only:
 * connection loss (-EAGAIN and recovery) and the SQLSTATE mapping. Fixture:
 * store_fixture.h. */
#include "store_fixture.h"

/* ------------------------------------------------------------------ two handles */

/* Two handles on one database stand for two evsrepd nodes: each thread runs
 * the service pattern (begin; get; update; commit) on the same row. The
 * store's write transactions serialise them, so no increment is lost. */
enum { RACE_ROUNDS = 200 };

struct racer {
        struct store *s;
        const char *id;
        int failures;
};

static void *racer_main(void *arg)
{
        struct racer *w = arg;

        for (int i = 0; i < RACE_ROUNDS; i++) {
                struct store_volume v;

                if (store_tx_begin(w->s) != 0) {
                        w->failures++;
                        continue;
                }
                if (store_volume_get(w->s, "p1", w->id, &v) != 0) {
                        w->failures++;
                        store_tx_rollback(w->s);
                        continue;
                }
                v.size_gib++;
                v.updated_at = v.size_gib;
                if (store_volume_update(w->s, &v) != 0 || store_tx_commit(w->s) != 0) {
                        w->failures++;
                        store_tx_rollback(w->s); /* harmless after a commit */
                }
                store_volume_clear(&v);
        }
        return NULL;
}

static void test_two_handles_no_lost_update(void **state)
{
        struct fx *f = *state;
        struct store *s2 = NULL;
        struct store_volume v, got;
        struct racer w[2];
        pthread_t th[2];
        char err[256];

        mk_volume(&v, 1, "p1", "az1", 1);
        v.size_gib = 0;
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        assert_int_equal(store_open(f->path, &s2, err, sizeof(err)), 0);
        w[0] = (struct racer){.s = f->s, .id = v.id};
        w[1] = (struct racer){.s = s2, .id = v.id};
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_create(&th[i], NULL, racer_main, &w[i]), 0);
        for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
        store_close(s2);
        assert_int_equal(w[0].failures, 0);
        assert_int_equal(w[1].failures, 0);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        assert_int_equal(got.size_gib, 2 * RACE_ROUNDS);
        store_volume_clear(&got);
}

/* ------------------------------------------------------------------ PostgreSQL only */

/* Terminate the store's server connections from outside (what a server
 * restart does to them). */
static void pg_kill_store_conns(const struct fx *f)
{
        char sql[256];

        snprintf(sql, sizeof(sql),
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = '%s' AND pid <> pg_backend_pid()",
                 f->dbname);
        assert_int_equal(pg_admin_exec(sql), 0);
}

static void pg_allow_conns(const struct fx *f, bool allow)
{
        char sql[128];

        snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", f->dbname,
                 allow ? "true" : "false");
        assert_int_equal(pg_admin_exec(sql), 0);
}

/* A lost connection is reset transparently when the server is back, and is
 * -EAGAIN (store unreachable) while it is not; inside a transaction it fails
 * the transaction, commit included, and the store recovers after. */
static void test_pg_connection_loss(void **state)
{
        struct fx *f = *state;
        struct store_volume v, got;

        mk_volume(&v, 1, "p1", "az1", 1);
        assert_int_equal(store_volume_insert(f->s, &v), 0);

        /* Server back at once: the next read reconnects and succeeds. */
        pg_kill_store_conns(f);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);

        /* Server unreachable (the database refuses new connections). */
        pg_allow_conns(f, false);
        pg_kill_store_conns(f);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), -EAGAIN);
        assert_int_equal(store_volume_update(f->s, &v), -EAGAIN);
        assert_int_equal(store_tx_begin(f->s), -EAGAIN);
        pg_allow_conns(f, true);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);

        /* Lost inside a transaction: every later call and the commit fail. */
        assert_int_equal(store_tx_begin(f->s), 0);
        mk_volume(&v, 2, "p1", "az1", 2);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        pg_kill_store_conns(f);
        mk_volume(&v, 3, "p1", "az1", 3);
        assert_int_equal(store_volume_insert(f->s, &v), -EAGAIN);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), -EAGAIN);
        assert_int_equal(store_tx_commit(f->s), -EAGAIN);
        /* The transaction is gone (mutex released) and the store recovers. */
        assert_int_equal(store_tx_commit(f->s), -EINVAL);
        mkid(v.id, 'a', 2);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), -ENOENT);
        assert_int_equal(store_tx_begin(f->s), 0);
        assert_int_equal(store_volume_insert(f->s, &v), 0);
        assert_int_equal(store_tx_commit(f->s), 0);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);

        /* A write outside a transaction on a dead connection with the server
         * up: its outcome is unknown to the store, so -EAGAIN, then fine. */
        pg_kill_store_conns(f);
        mk_volume(&v, 4, "p1", "az1", 4);
        int r = store_volume_insert(f->s, &v);
        assert_true(r == 0 || r == -EAGAIN);
        r = store_volume_insert(f->s, &v);
        assert_true(r == 0 || r == -EEXIST);
        assert_int_equal(store_volume_get(f->s, "p1", v.id, &got), 0);
        store_volume_clear(&got);
}

/* The error mapping of the PostgreSQL-only paths: a volume already in a pair
 * (trigger, SQLSTATE EV001) and text that is not JSON (class 22). */
static void test_pg_sqlstate_mapping(void **state)
{
        struct fx *f = *state;
        struct store_volume v;
        struct store_pair p;
        char ids[3][STORE_ID_LEN];

        for (int i = 0; i < 3; i++) {
                mk_volume(&v, i + 1, "p1", "az1", i + 1);
                assert_int_equal(store_volume_insert(f->s, &v), 0);
                snprintf(ids[i], sizeof(ids[i]), "%s", v.id);
        }
        mk_pair(&p, 1, "p1", ids[0], ids[1], 1);
        assert_int_equal(store_pair_insert(f->s, &p), 0);
        mk_pair(&p, 2, "p1", ids[2], ids[1], 2);
        assert_int_equal(store_pair_insert(f->s, &p), -EEXIST);
        assert_int_equal(raw_exec(f, "INSERT INTO volumes (id, project_id, availability_zone, "
                                     "status, volume_type, size_gib, created_at, metadata_json) "
                                     "VALUES ('x', 'p', 'az1', 's', 't', 1, 1, '{')"),
                         -1);
        mk_volume(&v, 9, "p1", "az1", 9);
        v.metadata_json = (char *)"{";
        assert_int_equal(store_volume_insert(f->s, &v), -EINVAL);
        v.metadata_json = (char *)"\"str\"";
        assert_int_equal(store_volume_insert(f->s, &v), -EINVAL);
}

int main(void)
{
        load_pg_url();
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_two_handles_no_lost_update, setup, teardown),
        };
        const struct CMUnitTest pg_only[] = {
            cmocka_unit_test_setup_teardown(test_pg_connection_loss, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pg_sqlstate_mapping, setup, teardown),
        };
        int failed = _cmocka_run_group_tests(pg_mode() ? "store backends (postgresql)"
                                                       : "store backends (sqlite)",
                                             tests, ARRAY_SIZE(tests), NULL, NULL);

        if (pg_mode())
                failed += _cmocka_run_group_tests("store (postgresql only)", pg_only,
                                                  ARRAY_SIZE(pg_only), NULL, NULL);
        return failed;
}
