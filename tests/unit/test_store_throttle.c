/* Unit tests of the group_throttles table (store.h: a group's resync
 * throttle setting), on both backends (store_fixture.h): none until set,
 * insert then replace, survives a reopen, refused for a missing group and
 * for negative rates, deleted with its group; read again and again, from
 * two groups in turn (SQLite keeps the read statement prepared: each read
 * must see its own group's row, never the last one's). */
#include "store_fixture.h"

static void test_group_throttle(void **state)
{
        struct fx *f = *state;
        struct store_group g;
        struct store_group_throttle t = {0}, got;

        mk_group(&g, 1, "p1", 10);
        assert_int_equal(store_group_insert(f->s, &g), 0);
        assert_int_equal(store_group_throttle_get(f->s, g.id, &got), -ENOENT);

        snprintf(t.group_id, sizeof(t.group_id), "%s", g.id);
        t.max_bps = 50ll << 20;
        t.min_bps = 5ll << 20;
        t.adaptive = true;
        t.updated_at = 77;
        assert_int_equal(store_group_throttle_set(f->s, &t), 0);
        assert_int_equal(store_group_throttle_get(f->s, g.id, &got), 0);
        assert_memory_equal(&got, &t, sizeof(t));

        t.max_bps = 0; /* replaced, not added */
        t.min_bps = 0;
        t.adaptive = false;
        t.updated_at = 78;
        assert_int_equal(store_group_throttle_set(f->s, &t), 0);
        reopen(f);
        assert_int_equal(store_group_throttle_get(f->s, g.id, &got), 0);
        assert_memory_equal(&got, &t, sizeof(t));

        t.max_bps = -1;
        assert_int_equal(store_group_throttle_set(f->s, &t), -EINVAL);

        /* a group that does not exist */
        mkid(t.group_id, 'c', 2);
        t.max_bps = 1;
        assert_int_equal(store_group_throttle_set(f->s, &t), -ENOENT);

        /* the row goes with its group */
        assert_int_equal(store_group_delete(f->s, g.id), 0);
        assert_int_equal(store_group_throttle_get(f->s, g.id, &got), -ENOENT);
        assert_int_equal(raw_int(f, "SELECT count(*) FROM group_throttles"), 0);
}

/* Reads of two groups' settings in turn, several times each: the kept
 * statement is reset and rebound every time (none of them sees another
 * group's row, or the end of the last read's rows). */
static void test_group_throttle_reads_repeat(void **state)
{
        struct fx *f = *state;
        struct store_group g[2];
        struct store_group_throttle t[2], got;

        memset(t, 0, sizeof(t));
        for (int i = 0; i < 2; i++) {
                mk_group(&g[i], i + 1, "p1", 10 + i);
                assert_int_equal(store_group_insert(f->s, &g[i]), 0);
                memcpy(t[i].group_id, g[i].id, sizeof(t[i].group_id));
                t[i].max_bps = (i + 1) * 1000;
                t[i].min_bps = i + 1;
                t[i].adaptive = i == 1;
                t[i].updated_at = 100 + i;
                assert_int_equal(store_group_throttle_set(f->s, &t[i]), 0);
        }
        for (int k = 0; k < 6; k++) {
                int i = k % 3 == 2 ? 1 : 0; /* 0 0 1 0 0 1: the same twice, then the other */

                memset(&got, 0xa5, sizeof(got));
                assert_int_equal(store_group_throttle_get(f->s, g[i].id, &got), 0);
                assert_memory_equal(&got, &t[i], sizeof(got));
        }
        assert_int_equal(store_group_delete(f->s, g[0].id), 0);
        assert_int_equal(store_group_throttle_get(f->s, g[0].id, &got), -ENOENT);
        assert_int_equal(store_group_throttle_get(f->s, g[1].id, &got), 0);
        assert_memory_equal(&got, &t[1], sizeof(got));
}

int main(void)
{
        load_pg_url();
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_group_throttle, setup, teardown),
            cmocka_unit_test_setup_teardown(test_group_throttle_reads_repeat, setup, teardown),
        };
        return _cmocka_run_group_tests(pg_mode() ? "store throttle (postgresql)"
                                                 : "store throttle (sqlite)",
                                       tests, ARRAY_SIZE(tests), NULL, NULL);
}
