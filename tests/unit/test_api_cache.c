/* The API reply cache (api/cache.c; docs/design/control-plane.md "Reply
 * cache"): keys never shared by two requests whose replies may differ, the
 * generation and the live notes decide validity (the notes re-read only
 * when the live epoch moved, or when one is uncovered), bounds and LRU
 * eviction, and a served body outlives its eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/cache.h"
#include "common/replygen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct api_cache_key key(const char *project, bool op, const char *path)
{
        struct api_cache_key k;

        api_cache_key_init(&k, project, op, path);
        return k;
}

/* A live source for the notes: value[id[0] - 'a'] is what it reads now. */
static int g_value[4];
static int g_checks;

static bool check(void *ctx, const struct replygen_note *n, const unsigned char *bytes)
{
        int v = g_value[n->id[0] - 'a'];

        (void)ctx;
        g_checks++;
        return n->src == REPLYGEN_PAIR_LIVE && n->len == sizeof(v) &&
               memcmp(bytes, &v, sizeof(v)) == 0;
}

static bool lookup(struct api_cache *c, const struct api_cache_key *k, const char *want)
{
        struct api_cache_hit h;

        if (!api_cache_lookup(c, k, check, NULL, &h))
                return false;
        assert_int_equal(h.status, 200);
        assert_int_equal(h.len, strlen(want));
        assert_memory_equal(h.body, want, h.len);
        api_cache_hit_release(c, &h);
        return true;
}

static void put(struct api_cache *c, const struct api_cache_key *k, const char *body)
{
        api_cache_store(c, k, replygen_now(), 200, body, strlen(body), NULL);
}

static void test_keys(void **state)
{
        struct api_cache *c = api_cache_new(16, 1 << 20);
        struct api_cache_key a = key("projA", false, "/v2/projA/os-vendor-replications");
        struct api_cache_key b = key("projB", false, "/v2/projA/os-vendor-replications");
        struct api_cache_key op = key("projA", true, "/v2/projA/os-vendor-replications");
        struct api_cache_key q1 = a, q2 = a, q3 = a, q4 = a, q5 = a;

        (void)state;
        put(c, &a, "{\"A\":1}");
        assert_true(lookup(c, &a, "{\"A\":1}"));
        /* another project, the same path: never A's reply */
        assert_false(lookup(c, &b, ""));
        assert_false(lookup(c, &op, ""));
        /* the query keys: absent, "?limit", "?limit=", "?limit=1", two args
         * in either order, an argument value holding the separators */
        api_cache_key_arg(&q1, "limit", NULL);
        api_cache_key_arg(&q2, "limit", "");
        api_cache_key_arg(&q3, "limit", "1");
        api_cache_key_arg(&q4, "limit", "1");
        api_cache_key_arg(&q4, "name", "x");
        api_cache_key_arg(&q5, "name", "x");
        api_cache_key_arg(&q5, "limit", "1");
        put(c, &q1, "q1");
        put(c, &q2, "q2");
        put(c, &q3, "q3");
        put(c, &q4, "q4");
        put(c, &q5, "q5");
        assert_true(lookup(c, &q1, "q1"));
        assert_true(lookup(c, &q2, "q2"));
        assert_true(lookup(c, &q3, "q3"));
        assert_true(lookup(c, &q4, "q4"));
        assert_true(lookup(c, &q5, "q5"));
        assert_true(lookup(c, &a, "{\"A\":1}"));
        {
                /* "1:a|" as a value must not make the key of two args */
                struct api_cache_key x = key("p", false, "/x"), y = key("p", false, "/x");

                api_cache_key_arg(&x, "a", "1:?|1:b|");
                api_cache_key_arg(&y, "a", NULL);
                api_cache_key_arg(&y, "b", NULL);
                assert_true(x.len != y.len || memcmp(x.buf, y.buf, x.len) != 0);
        }
        {
                /* too long: never stored, never found */
                struct api_cache_key l = key("p", false, "/x");
                char big[API_CACHE_KEY_MAX];

                memset(big, 'v', sizeof(big) - 1);
                big[sizeof(big) - 1] = '\0';
                api_cache_key_arg(&l, "a", big);
                assert_true(l.overflow);
                put(c, &l, "long");
                assert_false(lookup(c, &l, "long"));
        }
        api_cache_free(c);
}

static void test_generation(void **state)
{
        struct api_cache *c = api_cache_new(16, 1 << 20);
        struct api_cache_key a = key("p", false, "/v2/p/os-vendor-replication-consistency-groups");
        uint64_t inval = atomic_load(&g_replygen_stats.invalidations);
        uint64_t before;

        (void)state;
        put(c, &a, "old");
        assert_true(lookup(c, &a, "old"));
        replygen_bump(); /* a store write */
        assert_false(lookup(c, &a, "old"));
        assert_int_equal(atomic_load(&g_replygen_stats.invalidations), inval + 1);
        /* the stale entry is gone, not only skipped */
        {
                size_t n, bytes;

                api_cache_usage(c, &n, &bytes);
                assert_int_equal(n, 0);
                assert_int_equal(bytes, 0);
        }
        /* a reply built before a write, stored after it: not kept */
        before = replygen_now();
        replygen_bump();
        api_cache_store(c, &a, before, 200, "built-before", 12, NULL);
        assert_false(lookup(c, &a, "built-before"));
        put(c, &a, "new");
        assert_true(lookup(c, &a, "new"));
        api_cache_free(c);
}

static void test_notes(void **state)
{
        struct api_cache *c = api_cache_new(16, 1 << 20);
        struct api_cache_key a = key("p", false, "/v2/p/os-vendor-replications");
        struct replygen_rec rec = {0};

        (void)state;
        g_value[0] = 7;
        g_value[1] = 9;
        /* a build: the serialiser reads two live sources */
        replygen_rec_arm(&rec);
        replygen_note(REPLYGEN_PAIR_LIVE, "a-pair", &g_value[0], sizeof(int));
        replygen_note(REPLYGEN_PAIR_LIVE, "b-pair", &g_value[1], sizeof(int));
        replygen_rec_arm(NULL);
        assert_int_equal(rec.n, 2);
        assert_false(rec.tainted);
        /* disarmed: a note goes nowhere */
        replygen_note(REPLYGEN_PAIR_LIVE, "a-pair", &g_value[0], sizeof(int));
        replygen_taint();
        assert_int_equal(rec.n, 2);
        assert_false(rec.tainted);
        api_cache_store(c, &a, replygen_now(), 200, "live", 4, &rec);
        g_checks = 0;
        assert_true(lookup(c, &a, "live"));
        assert_int_equal(g_checks, 0); /* the live epoch stood still: no re-read */
        /* something live moved elsewhere (rule L: its writer bumps): every
         * note re-read, the same, a hit; the entry takes the new epoch */
        replygen_live_bump();
        assert_true(lookup(c, &a, "live"));
        assert_int_equal(g_checks, 2);
        assert_true(lookup(c, &a, "live"));
        assert_int_equal(g_checks, 2);
        /* the engine moved one of ours (no store write): a miss, the entry goes */
        g_value[1] = 10;
        replygen_live_bump();
        assert_false(lookup(c, &a, "live"));
        g_value[1] = 9;
        replygen_live_bump();
        assert_false(lookup(c, &a, "live"));
        /* a note the epoch does not cover (an unwatched file's probe):
         * re-read at every hit, epoch or not */
        replygen_rec_arm(&rec);
        replygen_note(REPLYGEN_PAIR_LIVE, "a-pair", &g_value[0], sizeof(int));
        replygen_live_uncovered();
        replygen_rec_arm(NULL);
        assert_true(rec.uncovered);
        api_cache_store(c, &a, replygen_now(), 200, "probe", 5, &rec);
        g_checks = 0;
        assert_true(lookup(c, &a, "probe"));
        assert_true(lookup(c, &a, "probe"));
        assert_int_equal(g_checks, 2);
        g_value[0] = 8; /* no bump: the re-read sees it */
        assert_false(lookup(c, &a, "probe"));
        g_value[0] = 7;
        /* the epoch is read when the build starts: a bump during the build
         * leaves the entry with the older epoch (re-read at the next hit) */
        replygen_rec_arm(&rec);
        replygen_live_bump();
        replygen_note(REPLYGEN_PAIR_LIVE, "a-pair", &g_value[0], sizeof(int));
        replygen_rec_arm(NULL);
        api_cache_store(c, &a, replygen_now(), 200, "during", 6, &rec);
        g_checks = 0;
        assert_true(lookup(c, &a, "during"));
        assert_int_equal(g_checks, 1);
        g_value[0] = 6; /* and gone at the next change */
        replygen_live_bump();
        assert_false(lookup(c, &a, "during"));
        g_value[0] = 7;
        /* a tainted build (a busy lock) is never stored */
        replygen_rec_arm(&rec);
        replygen_note(REPLYGEN_PAIR_LIVE, "a-pair", &g_value[0], sizeof(int));
        replygen_taint();
        replygen_rec_arm(NULL);
        assert_true(rec.tainted);
        api_cache_store(c, &a, replygen_now(), 200, "tainted", 7, &rec);
        assert_false(lookup(c, &a, "tainted"));
        replygen_rec_free(&rec);
        api_cache_free(c);
}

static void test_eviction(void **state)
{
        struct api_cache *c = api_cache_new(2, 1 << 20);
        struct api_cache_key k1 = key("p", false, "/1"), k2 = key("p", false, "/2"),
                             k3 = key("p", false, "/3");
        size_t n, bytes;

        (void)state;
        put(c, &k1, "one");
        put(c, &k2, "two");
        assert_true(lookup(c, &k1, "one")); /* k1 now the most recent */
        put(c, &k3, "three");               /* evicts k2, the least recent */
        assert_true(lookup(c, &k1, "one"));
        assert_false(lookup(c, &k2, "two"));
        assert_true(lookup(c, &k3, "three"));
        api_cache_usage(c, &n, &bytes);
        assert_int_equal(n, 2);
        api_cache_free(c);

        /* the byte bound: a body over an eighth is not stored; the total
         * stays under the bound */
        c = api_cache_new(100, 64 * 1024);
        {
                char *body = malloc(16 * 1024);
                struct api_cache_key k[10];

                memset(body, 'x', 16 * 1024);
                api_cache_store(c, &k1, replygen_now(), 200, body, 16 * 1024, NULL);
                assert_false(lookup(c, &k1, ""));
                for (int i = 0; i < 10; i++) {
                        char path[16];

                        snprintf(path, sizeof(path), "/b%d", i);
                        k[i] = key("p", false, path);
                        api_cache_store(c, &k[i], replygen_now(), 200, body, 7 * 1024, NULL);
                        api_cache_usage(c, &n, &bytes);
                        assert_true(bytes <= 64 * 1024);
                }
                assert_true(n < 10);
                free(body);
        }
        api_cache_free(c);

        /* off: stores nothing */
        c = api_cache_new(0, 1 << 20);
        put(c, &k1, "one");
        assert_false(lookup(c, &k1, "one"));
        api_cache_free(c);
}

static void test_hit_outlives_eviction(void **state)
{
        struct api_cache *c = api_cache_new(1, 1 << 20);
        struct api_cache_key k1 = key("p", false, "/1"), k2 = key("p", false, "/2");
        struct api_cache_hit h;

        (void)state;
        put(c, &k1, "held body");
        assert_int_equal(api_cache_lookup(c, &k1, check, NULL, &h), 1);
        put(c, &k2, "two");                          /* evicts k1 while the hit holds it */
        replygen_bump();                             /* and a write */
        assert_memory_equal(h.body, "held body", 9); /* ASan: no use after free */
        api_cache_hit_release(c, &h);
        assert_false(lookup(c, &k1, "held body"));
        api_cache_free(c);
}

/* replygen_fs.c: a rename or unlink of a watched file, or of a directory
 * on its path, bumps the generation at the next drain; other names in an
 * ancestor do not; a path through a symbolic link is not watched. */
static void test_fs_watch(void **state)
{
        char root[] = "/tmp/evsrep-cache-XXXXXX", site[64], other[64], moved[64], link[64],
             vol[128], vlink[128];
        uint64_t g;
        FILE *f;

        (void)state;
        assert_non_null(mkdtemp(root));
        snprintf(site, sizeof(site), "%s/site", root);
        snprintf(vol, sizeof(vol), "%s/vol", site);
        snprintf(other, sizeof(other), "%s/other", root);
        snprintf(moved, sizeof(moved), "%s/moved", root);
        snprintf(link, sizeof(link), "%s/link", root);
        snprintf(vlink, sizeof(vlink), "%s/vol", link);
        assert_int_equal(mkdir(site, 0700), 0);
        assert_non_null(f = fopen(vol, "w"));
        fclose(f);
        /* Off until enabled (main.c: only when there is a cache). */
        assert_false(replygen_fs_watch(vol));
        replygen_fs_enable(true);
        assert_true(replygen_fs_watch(vol));
        assert_int_equal(symlink(site, link), 0);
        assert_false(replygen_fs_watch(vlink)); /* a symbolic link on the path */

        replygen_fs_drain();
        g = replygen_now();
        replygen_fs_drain();
        assert_int_equal(replygen_now(), g); /* nothing happened */
        /* another name in an ancestor: not on the path */
        assert_non_null(f = fopen(other, "w"));
        fclose(f);
        assert_int_equal(unlink(other), 0);
        replygen_fs_drain();
        assert_int_equal(replygen_now(), g);
        /* the file moved away, then back */
        assert_int_equal(rename(vol, moved), 0);
        replygen_fs_drain();
        assert_true(replygen_now() > g);
        g = replygen_now();
        assert_int_equal(rename(moved, vol), 0);
        replygen_fs_drain();
        assert_true(replygen_now() > g);
        assert_true(replygen_fs_trusted());
        /* the site directory renamed: bumped, and no watch trusted after */
        g = replygen_now();
        assert_int_equal(rename(site, moved), 0);
        replygen_fs_drain();
        assert_true(replygen_now() > g);
        assert_false(replygen_fs_trusted());
        assert_false(replygen_fs_watch(vol));
        snprintf(vol, sizeof(vol), "%s/vol", moved);
        unlink(vol);
        unlink(link);
        rmdir(moved);
        rmdir(root);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_keys),
            cmocka_unit_test(test_generation),
            cmocka_unit_test(test_notes),
            cmocka_unit_test(test_eviction),
            cmocka_unit_test(test_hit_outlives_eviction),
            cmocka_unit_test(test_fs_watch), /* last: it leaves no watch trusted */
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
