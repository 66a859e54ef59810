/* Fault-injection driver for the engine (docs/design/faults.md), the way
 * SQLite tests its I/O errors: for every fault point, N = 1, 2, 3, ... fail
 * the Nth call during a scenario, until a run completes without reaching the
 * fault. After every run:
 *   - every write acknowledged to the client is on production;
 *   - B1 from the durable state alone: every chunk where production and DR
 *     differ is set in the bitmap on disk or lies in an extent of the AL on
 *     disk (read back from a copy of the meta file, as a restart would);
 *   - after the faults are cleared, a resync makes DR byte-identical.
 * And the group freeze (F1): three mirrors bound to one group, a dependent
 * writer round-robin across their production disks, a DR write of one
 * member failing at its Nth call: the DR disks hold one prefix of the
 * sequence, every member is in TRACK.
 * EVSREP_FAULT_SWEEP=full sweeps every N (CI stops each point at 16). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture_tmpdir.h"

#include "common/fault.h"
#include "common/util.h"
#include "engine/fence.h"
#include "engine/actlog.h"
#include "engine/meta.h"
#include "engine/mirror.h"
#include "volume/volume.h"

#define MIB       (1024u * 1024u)
#define VOL_BYTES (16u * MIB)
#define CHUNK     65536u
#define NCHUNKS   (VOL_BYTES / CHUNK)
#define MAXM      3

static unsigned g_runs, g_points;

struct fx {
        char dir[64];
        char prod_path[MAXM][128], dr_path[MAXM][128], meta_path[MAXM][128];
        struct volume *prod[MAXM], *dr[MAXM];
        struct mirror *m[MAXM];
        unsigned n;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int synced;
        int dr_faults[MAXM], frozen[MAXM]; /* events per member ("pair<i>") */
};

static void on_event(void *ctx, const char *pair_id, enum mirror_event ev)
{
        struct fx *f = ctx;
        unsigned i = MAXM;

        pthread_mutex_lock(&f->mu);
        if (ev == MIRROR_EV_SYNCED)
                f->synced++;
        if (sscanf(pair_id, "pair%u", &i) == 1 && i < MAXM) {
                if (ev == MIRROR_EV_DR_FAULT)
                        f->dr_faults[i]++;
                else if (ev == MIRROR_EV_FROZEN)
                        f->frozen[i]++;
        }
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
}

static int events_of(struct fx *f, const int *counts, unsigned i)
{
        int n;

        pthread_mutex_lock(&f->mu);
        n = counts[i];
        pthread_mutex_unlock(&f->mu);
        return n;
}

static void fx_init(struct fx *f, unsigned n)
{
        memset(f, 0, sizeof(*f));
        f->n = n;
        assert_int_equal(fixture_tmpdir_make(f->dir, sizeof(f->dir), "faults"), 0);
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->cv, NULL);
        for (unsigned i = 0; i < n; i++) {
                char id[16];

                snprintf(f->prod_path[i], 128, "%s/prod%u", f->dir, i);
                snprintf(f->dr_path[i], 128, "%s/dr%u", f->dir, i);
                snprintf(f->meta_path[i], 128, "%s/pair%u.meta", f->dir, i);
                assert_int_equal(volume_file_create(f->prod_path[i], VOL_BYTES), 0);
                assert_int_equal(volume_file_create(f->dr_path[i], VOL_BYTES), 0);
                snprintf(id, sizeof(id), "prod%u", i);
                assert_int_equal(volume_open(id, "az1", f->prod_path[i], &f->prod[i]), 0);
                snprintf(id, sizeof(id), "dr%u", i);
                assert_int_equal(volume_open(id, "az2", f->dr_path[i], &f->dr[i]), 0);
        }
}

/* ---- a local DR link with submit/wait (parallel legs) ----
 *
 * The local link has no submit, so the mirror runs its legs one after the
 * other; this test link wraps it with submit/wait to drive the parallel
 * path of mirror_io. DR_FIRST: submit writes DR at once, wait returns the
 * result (DR lands before production). DR_LAST: submit only records, wait
 * writes (DR lands after production, also after a failed one). Either way
 * it records whether production already held the new bytes at submit and
 * at wait: submit must come before the production leg, wait after it. */
enum tl_mode { TL_DR_FIRST, TL_DR_LAST };

struct tlink {
        struct link base;
        struct link *inner; /* link_local */
        struct volume *prod;
        enum tl_mode mode;
        int pending_rc;
        unsigned submits, waits;
        bool prod_new_at_submit, prod_new_at_wait; /* of the last write */
};

static enum tl_mode g_tl_mode = TL_DR_FIRST;

static bool prod_holds(struct tlink *t, const void *buf, size_t len, uint64_t off)
{
        char *b = malloc(len);
        bool eq;

        assert_int_equal(volume_local_read(t->prod, b, len, off), 0);
        eq = memcmp(b, buf, len) == 0;
        free(b);
        return eq;
}

static struct tlink *tl_of(struct link *l)
{
        return (struct tlink *)l;
}

static int tl_write(struct link *l, const void *buf, size_t len, uint64_t off, unsigned fl)
{
        return tl_of(l)->inner->ops->write(tl_of(l)->inner, buf, len, off, fl);
}

static int tl_zero(struct link *l, uint64_t off, uint64_t len, bool punch, unsigned fl)
{
        return tl_of(l)->inner->ops->zero(tl_of(l)->inner, off, len, punch, fl);
}

static int tl_flush(struct link *l)
{
        return tl_of(l)->inner->ops->flush(tl_of(l)->inner);
}

static int tl_resize(struct link *l, uint64_t size)
{
        return tl_of(l)->inner->ops->resize(tl_of(l)->inner, size);
}

static uint64_t tl_size(struct link *l)
{
        return tl_of(l)->inner->ops->size(tl_of(l)->inner);
}

static void tl_close(struct link *l)
{
        tl_of(l)->inner->ops->close(tl_of(l)->inner);
        free(l);
}

static int tl_submit(struct link *l, const void *buf, size_t len, uint64_t off, unsigned fl,
                     struct link_op *op)
{
        struct tlink *t = tl_of(l);

        t->submits++;
        t->prod_new_at_submit = prod_holds(t, buf, len, off);
        *op = (struct link_op){.buf = buf, .len = len, .off = off, .flags = fl};
        if (t->mode == TL_DR_FIRST)
                t->pending_rc = tl_write(l, buf, len, off, fl);
        return 0;
}

static int tl_wait(struct link *l, struct link_op *op)
{
        struct tlink *t = tl_of(l);

        t->waits++;
        t->prod_new_at_wait = prod_holds(t, op->buf, op->len, op->off);
        if (t->mode == TL_DR_LAST)
                return tl_write(l, op->buf, op->len, op->off, op->flags);
        return t->pending_rc;
}

static const struct link_ops g_tl_ops = {
    .write = tl_write,
    .zero = tl_zero,
    .flush = tl_flush,
    .resize = tl_resize,
    .size = tl_size,
    .close = tl_close,
    .submit = tl_submit,
    .wait = tl_wait,
};

static struct tlink *g_tl; /* the last one opened */

static void open_mirror_l(struct fx *f, unsigned i, bool create, bool parallel)
{
        struct mirror_cfg mc = {0};
        struct link *l;
        char pid[16];
        uint64_t d = 0;

        snprintf(pid, sizeof(pid), "pair%u", i);
        assert_int_equal(link_local_open(f->dr[i], &l), 0);
        if (parallel) {
                struct tlink *t = calloc(1, sizeof(*t));

                assert_non_null(t);
                t->base.ops = &g_tl_ops;
                t->inner = l;
                t->prod = f->prod[i];
                t->mode = g_tl_mode;
                l = &t->base;
                g_tl = t;
        }
        mc.pair_id = pid;
        mc.meta_path = f->meta_path[i];
        mc.prod = f->prod[i];
        mc.link = l;
        mc.chunk_bytes = CHUNK;
        mc.create = create;
        mc.on_event = on_event;
        mc.event_ctx = f;
        assert_int_equal(mirror_open(&mc, &f->m[i], &d), 0);
        assert_int_equal(fence_mirror_start(f->m[i], f->prod[i], MIRROR_RESYNC), 0);
}

static void open_mirror(struct fx *f, unsigned i, bool create)
{
        open_mirror_l(f, i, create, false);
}

static void wait_sync(struct fx *f, unsigned i)
{
        for (int t = 0; t < 20000 && mirror_mode(f->m[i]) != MIRROR_SYNC; t++)
                usleep(500);
        assert_int_equal(mirror_mode(f->m[i]), MIRROR_SYNC);
}

static void fx_fini(struct fx *f)
{
        for (unsigned i = 0; i < f->n; i++) {
                if (f->m[i])
                        fence_mirror_close(f->m[i], f->prod[i], false);
                volume_put(f->prod[i]);
                volume_put(f->dr[i]);
        }
        fixture_tmpdir_remove(f->dir);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
}

/* B1 from the durable state: copy the meta file (as a crash would leave
 * it), open the copy (which folds its AL into its bitmap, A2), and check
 * every chunk where production and DR differ is set. */
static void check_b1(struct fx *f, unsigned i, const char *what)
{
        char copy[160], cmd[400];
        struct meta mt;
        struct bitmap bm;
        uint64_t ext[AL_MAX_SLOTS];
        unsigned n = 0;
        char *a = malloc(CHUNK), *b = malloc(CHUNK);

        snprintf(copy, sizeof(copy), "%s.copy", f->meta_path[i]);
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", f->meta_path[i], copy);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(meta_open(copy, &mt, &bm, ext, &n), 0);
        for (unsigned e = 0; e < n; e++)
                bitmap_set_range(&bm, ext[e] * (mt.al_extent_bytes / CHUNK),
                                 mt.al_extent_bytes / CHUNK);
        for (uint64_t c = 0; c < NCHUNKS; c++) {
                assert_int_equal(volume_local_read(f->prod[i], a, CHUNK, c * CHUNK), 0);
                assert_int_equal(volume_local_read(f->dr[i], b, CHUNK, c * CHUNK), 0);
                if (memcmp(a, b, CHUNK) != 0 && !bitmap_test(&bm, c))
                        fail_msg("%s: chunk %llu differs between production and DR but is "
                                 "clean in the durable bitmap and AL (B1)",
                                 what, (unsigned long long)c);
        }
        meta_close(&mt);
        bitmap_free(&bm);
        unlink(copy);
        free(a);
        free(b);
}

static bool same(struct fx *f, unsigned i)
{
        char *a = malloc(VOL_BYTES), *b = malloc(VOL_BYTES);
        bool eq;

        assert_int_equal(volume_local_read(f->prod[i], a, VOL_BYTES, 0), 0);
        assert_int_equal(volume_local_read(f->dr[i], b, VOL_BYTES, 0), 0);
        eq = memcmp(a, b, VOL_BYTES) == 0;
        free(a);
        free(b);
        return eq;
}

/* Heal: faults off, RESYNC, DR identical. */
static void heal(struct fx *f, unsigned i, const char *what)
{
        assert_int_equal(fault_configure(NULL), 0);
        volume_fence_raise(f->prod[i]);
        assert_int_equal(mirror_set_mode(f->m[i], MIRROR_RESYNC), 0);
        volume_fence_lower(f->prod[i]);
        wait_sync(f, i);
        if (!same(f, i))
                fail_msg("%s: DR differs from production after the healing resync", what);
}

static unsigned max_n(void)
{
        const char *s = getenv("EVSREP_FAULT_SWEEP");

        return s && strcmp(s, "full") == 0 ? 100000 : 16;
}

/* A burst of client writes, zeroes and flushes on a SYNC mirror, with rule
 * armed; acknowledged writes must read back from production. */
static void burst(struct fx *f, unsigned seed)
{
        char *buf = malloc(3 * CHUNK), *back = malloc(3 * CHUNK);
        unsigned r = seed * 2654435761u;

        for (int k = 0; k < 60; k++) {
                uint64_t off, len;
                int rc;

                r = r * 1103515245u + 12345u;
                /* 5 MiB apart at most 6 extents: evictions happen with the
                 * AL sized down by the extents being far apart. */
                off = (uint64_t)(r % (VOL_BYTES / 4096 - 48)) * 4096 + (r % 3) * 512;
                len = 4096 + (r >> 7) % (2 * CHUNK);
                memset(buf, (int)(k * 7 + seed), len);
                if (k % 11 == 10) {
                        rc = volume_zero(f->prod[0], off, len, k % 2, 0);
                        memset(buf, 0, len);
                } else if (k % 13 == 12) {
                        volume_flush(f->prod[0]);
                        continue;
                } else {
                        rc = volume_write(f->prod[0], buf, len, off, k % 5 == 0 ? VOL_F_FUA : 0);
                }
                if (rc == 0) {
                        assert_int_equal(volume_local_read(f->prod[0], back, len, off), 0);
                        if (memcmp(buf, back, len) != 0)
                                fail_msg("write %d acknowledged but not on production", k);
                }
        }
        free(buf);
        free(back);
}

/* A reverse flushes both legs once, in the preflight, not again in the swap
 * under the same fence (the fence time of a reverse is flush-bound): a
 * third volume flush fails, and the swap must not reach it. */
static void test_reverse_flushes_once(void **state)
{
        struct fx f;
        struct link *l;

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON");
#endif
        fx_init(&f, 1);
        open_mirror(&f, 0, true);
        wait_sync(&f, 0);
        assert_int_equal(link_local_open(f.prod[0], &l), 0);
        volume_fence_raise(f.prod[0]);
        volume_fence_raise(f.dr[0]);
        assert_int_equal(fault_configure("vol_flush=3"), 0);
        assert_int_equal(mirror_swap_preflight(f.m[0], false), 0); /* flushes 1 and 2 */
        assert_int_equal(mirror_swap(f.m[0], f.dr[0], l, false, MIRROR_SYNC), 0);
        assert_int_equal(fault_configure(NULL), 0);
        /* A new fenced period does not trust the old preflight. */
        volume_fence_lower(f.dr[0]);
        volume_fence_lower(f.prod[0]);
        assert_int_equal(link_local_open(f.dr[0], &l), 0);
        volume_fence_raise(f.prod[0]);
        volume_fence_raise(f.dr[0]);
        assert_int_equal(fault_configure("vol_flush=1"), 0);
        assert_int_equal(mirror_swap(f.m[0], f.prod[0], l, false, MIRROR_SYNC), -EIO);
        assert_int_equal(fault_configure(NULL), 0);
        /* Back to the first direction, so the fixture closes what it opened. */
        assert_int_equal(link_local_open(f.dr[0], &l), 0);
        assert_int_equal(mirror_swap(f.m[0], f.prod[0], l, false, MIRROR_SYNC), 0);
        volume_fence_lower(f.dr[0]);
        volume_fence_lower(f.prod[0]);
        fx_fini(&f);
}

static void burst_faults(const char *const *rules, size_t nrules, bool parallel)
{
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON "
                 "(scripts/test.sh does)");
#endif
        for (size_t p = 0; p < nrules; p++) {
                unsigned n, misses = 0;

                g_points++;
                for (n = 1; n <= max_n(); n++) {
                        struct fx f;
                        char rule[64], what[96];
                        uint64_t hits;

                        fx_init(&f, 1);
                        /* Parallel legs: DR before production on odd N,
                         * after it on even N (no TRACK variant there:
                         * TRACK writes have one leg). */
                        g_tl_mode = n % 2 ? TL_DR_FIRST : TL_DR_LAST;
                        open_mirror_l(&f, 0, true, parallel);
                        wait_sync(&f, 0);
                        if (n % 2 == 0 && !parallel) {
                                /* Every other run on a paused mirror:
                                 * TRACK writes persist bits first (B3). */
                                volume_fence_raise(f.prod[0]);
                                assert_int_equal(mirror_set_mode(f.m[0], MIRROR_TRACK), 0);
                                volume_fence_lower(f.prod[0]);
                        }
                        snprintf(rule, sizeof(rule), "%s=%u", rules[p], n);
                        snprintf(what, sizeof(what), "rule %s", rule);
                        hits = fault_hits();
                        assert_int_equal(fault_configure(rule), 0);
                        burst(&f, n + (unsigned)p * 100);
                        hits = fault_hits() - hits;
                        assert_int_equal(fault_configure(NULL), 0);
                        check_b1(&f, 0, what);
                        heal(&f, 0, what);
                        fx_fini(&f);
                        g_runs++;
                        misses = hits ? 0 : misses + 1;
                        if (misses == 2)
                                break; /* both variants ran to their end without the fault */
                }
                printf("  %-16s faulted at calls 1..%u%s\n", rules[p], n - 1,
                       parallel ? " (parallel legs)" : "");
        }
}

static void test_write_burst_faults(void **state)
{
        static const char *const rules[] = {
            "vol_write@prod0", "vol_write@dr0", "vol_zero@prod0", "vol_zero@dr0", "vol_flush@prod0",
            "vol_flush@dr0",   "meta_al",       "meta_bits",      "meta_sync",
        };

        (void)state;
        burst_faults(rules, ARRAY_SIZE(rules), false);
}

/* The same sweep with the DR leg submitted before the production write and
 * waited for after it (mirror_io's parallel path). */
static void test_write_burst_faults_parallel(void **state)
{
        static const char *const rules[] = {"vol_write@prod0", "vol_write@dr0", "meta_al"};

        (void)state;
        burst_faults(rules, ARRAY_SIZE(rules), true);
}

/* The sync copies data pieces in the kernel (copy_file_range) over a local
 * link: the bytes reach DR, and an injected production read fault or DR
 * write fault is still taken as that side's (replication.md, "Initial
 * sync"): TRACK, the error on the right side, chunks left dirty. */
static void test_resync_copy_faults(void **state)
{
        static const struct {
                const char *rule;
                bool dr;
        } cases[] = {{NULL, false}, {"vol_read@prod0=2", false}, {"vol_write@dr0=2", true}};
        size_t len = 4 * MIB;
        char *w = malloc(len), *a = malloc(VOL_BYTES), *b = malloc(VOL_BYTES);

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON");
#endif
        for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
                struct mirror_stats st;
                struct fx f;

                fx_init(&f, 1);
                assert_int_equal(util_random(w, len), 0);
                assert_int_equal(volume_local_write(f.prod[0], w, len, MIB + 4096, 0), 0);
                assert_int_equal(volume_local_write(f.prod[0], w, 8192, VOL_BYTES - 8192, 0), 0);
                assert_int_equal(fault_configure(cases[k].rule), 0);
                open_mirror(&f, 0, true);
                if (!cases[k].rule) {
                        wait_sync(&f, 0);
                        assert_int_equal(volume_local_read(f.prod[0], a, VOL_BYTES, 0), 0);
                        assert_int_equal(volume_local_read(f.dr[0], b, VOL_BYTES, 0), 0);
                        assert_memory_equal(a, b, VOL_BYTES);
                } else {
                        for (int t = 0; t < 20000 && mirror_mode(f.m[0]) != MIRROR_TRACK; t++)
                                usleep(500);
                        mirror_stats(f.m[0], &st);
                        assert_int_equal(st.mode, MIRROR_TRACK);
                        assert_int_equal(st.dr_error != 0, cases[k].dr);
                        assert_int_equal(st.prod_error != 0, !cases[k].dr);
                        assert_true(st.dirty_chunks > 0);
                }
                assert_int_equal(fault_configure(NULL), 0);
                fx_fini(&f);
        }
        free(w);
        free(a);
        free(b);
}

/* ---- parallel legs: one leg fails, or both ---- */

/* Is chunk c set in the durable bitmap (a copy of the meta file, without
 * folding the AL: the fault path itself must have persisted it)? */
static bool durable_bit(struct fx *f, unsigned i, uint64_t c)
{
        char copy[160], cmd[400];
        struct meta mt;
        struct bitmap bm;
        uint64_t ext[AL_MAX_SLOTS];
        unsigned n = 0;
        bool set;

        snprintf(copy, sizeof(copy), "%s.copy", f->meta_path[i]);
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", f->meta_path[i], copy);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(meta_open(copy, &mt, &bm, ext, &n), 0);
        set = bitmap_test(&bm, c);
        meta_close(&mt);
        bitmap_free(&bm);
        unlink(copy);
        return set;
}

/* One 4 KiB write in chunk 5 through the parallel path with rules armed;
 * returns the client's result. dr_new: DR holds the new bytes after it. */
static int one_parallel_write(struct fx *f, enum tl_mode mode, const char *rules, bool *dr_new)
{
        char buf[4096], back[4096];
        int rc;

        g_tl_mode = mode;
        fx_init(f, 1);
        open_mirror_l(f, 0, true, true);
        wait_sync(f, 0);
        memset(buf, 0x5a, sizeof(buf));
        assert_int_equal(fault_configure(rules), 0);
        rc = volume_write(f->prod[0], buf, sizeof(buf), 5 * CHUNK + 4096, 0);
        assert_int_equal(fault_configure(NULL), 0);
        assert_int_equal(g_tl->submits, 1);
        assert_int_equal(g_tl->waits, 1);
        /* Submitted before the production leg, waited for after it. */
        assert_false(g_tl->prod_new_at_submit);
        assert_int_equal(g_tl->prod_new_at_wait, rc == 0);
        assert_int_equal(volume_local_read(f->dr[0], back, sizeof(back), 5 * CHUNK + 4096), 0);
        *dr_new = memcmp(buf, back, sizeof(back)) == 0;
        return rc;
}

static void expect_fault(struct fx *f, bool prod_err, bool dr_err)
{
        struct mirror_stats st;

        mirror_stats(f->m[0], &st);
        assert_int_equal(st.mode, MIRROR_TRACK);
        assert_int_equal(st.dirty_chunks, 1);
        assert_false(st.bits_pending);
        assert_true(durable_bit(f, 0, 5)); /* durable before the write returned */
        assert_int_equal(st.prod_error, prod_err ? -EIO : 0);
        assert_int_equal(st.dr_error, dr_err ? -EIO : 0);
        check_b1(f, 0, "parallel legs");
        heal(f, 0, "parallel legs");
        fx_fini(f);
}

/* DR leg fails, production succeeds: acknowledged, chunk durably dirty,
 * TRACK. Both orders of the legs. */
static void test_parallel_dr_fails(void **state)
{
        struct fx f;
        bool dr_new;

        (void)state;
        assert_int_equal(one_parallel_write(&f, TL_DR_FIRST, "vol_write@dr0=1", &dr_new), 0);
        assert_false(dr_new);
        expect_fault(&f, false, true);
        assert_int_equal(one_parallel_write(&f, TL_DR_LAST, "vol_write@dr0=1", &dr_new), 0);
        assert_false(dr_new);
        expect_fault(&f, false, true);
}

/* Production fails while the DR leg succeeds: DR now holds bytes that
 * production may not; the write fails and the chunk is durably dirty. */
static void test_parallel_prod_fails(void **state)
{
        struct fx f;
        bool dr_new;

        (void)state;
        assert_int_equal(one_parallel_write(&f, TL_DR_FIRST, "vol_write@prod0=1", &dr_new), -EIO);
        assert_true(dr_new);
        expect_fault(&f, true, false);
        assert_int_equal(one_parallel_write(&f, TL_DR_LAST, "vol_write@prod0=1", &dr_new), -EIO);
        assert_true(dr_new);
        expect_fault(&f, true, false);
}

static void test_parallel_both_fail(void **state)
{
        struct fx f;
        bool dr_new;

        (void)state;
        assert_int_equal(
            one_parallel_write(&f, TL_DR_FIRST, "vol_write@prod0=1;vol_write@dr0=1", &dr_new),
            -EIO);
        assert_false(dr_new);
        expect_fault(&f, true, true);
        assert_int_equal(
            one_parallel_write(&f, TL_DR_LAST, "vol_write@prod0=1;vol_write@dr0=1", &dr_new), -EIO);
        assert_false(dr_new);
        expect_fault(&f, true, true);
}

/* ---- group freeze (F1) ---- */

struct seqw {
        struct fx *f;
        uint64_t acked;
        uint64_t limit;
};

#define SLOTS 200u /* blocks per disk, CHUNK apart, no wrap */

static void *seq_writer(void *arg)
{
        struct seqw *w = arg;
        char blk[4096];

        for (uint64_t s = 1; s <= w->limit; s++) {
                unsigned disk = (unsigned)((s - 1) % w->f->n);
                uint64_t slot = (s - 1) / w->f->n;

                memset(blk, 0, sizeof(blk));
                memcpy(blk, &s, sizeof(s));
                /* Blocks CHUNK apart: every write is its own chunk. */
                if (volume_write(w->f->prod[disk], blk, sizeof(blk), slot * CHUNK, 0) < 0)
                        break;
                w->acked = s;
        }
        return NULL;
}

/* Highest s such that 1..s are all on the DR disks; fails on a gap. */
static uint64_t dr_prefix(struct fx *f, uint64_t limit, const char *what)
{
        uint64_t top = 0, present = 0;
        char blk[4096];

        for (uint64_t s = 1; s <= limit; s++) {
                unsigned disk = (unsigned)((s - 1) % f->n);
                uint64_t slot = (s - 1) / f->n, got;

                assert_int_equal(volume_local_read(f->dr[disk], blk, sizeof(blk), slot * CHUNK), 0);
                memcpy(&got, blk, sizeof(got));
                if (got == s) {
                        present++;
                        top = s;
                }
        }
        if (present != top)
                fail_msg("%s: DR holds write %llu but only %llu of the writes up to it: not one "
                         "instant",
                         what, (unsigned long long)top, (unsigned long long)present);
        return top;
}

static void test_group_freeze_prefix(void **state)
{
        unsigned runs = max_n() > 24 ? 60 : 18;

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection");
#endif
        g_points++;
        for (unsigned r = 1; r <= runs; r++) {
                struct fx f;
                struct mirror_group *g = mirror_group_new("g");
                struct mirror *ms[MAXM];
                struct seqw w;
                pthread_t th;
                char rule[64], what[96];
                uint64_t top;
                unsigned victim = r % MAXM, nth = 3 + (r * 7) % 180;

                fx_init(&f, MAXM);
                for (unsigned i = 0; i < MAXM; i++) {
                        open_mirror(&f, i, true);
                        wait_sync(&f, i);
                        ms[i] = f.m[i];
                }
                assert_int_equal(mirror_group_set_members(g, ms, MAXM), 0);
                snprintf(rule, sizeof(rule), "vol_write@dr%u=%u/ENOSPC", victim, nth);
                snprintf(what, sizeof(what), "group freeze, %s", rule);
                assert_int_equal(fault_configure(rule), 0);
                w = (struct seqw){.f = &f, .limit = SLOTS * MAXM};
                assert_int_equal(pthread_create(&th, NULL, seq_writer, &w), 0);
                pthread_join(th, NULL);
                assert_int_equal(fault_configure(NULL), 0);
                if (w.acked != w.limit)
                        fail_msg("%s: a DR fault failed client write %llu", what,
                                 (unsigned long long)w.acked + 1);
                top = dr_prefix(&f, w.limit, what);
                if (top >= w.limit || top == 0)
                        fail_msg("%s: DR prefix %llu of %llu: the fault froze nothing", what,
                                 (unsigned long long)top, (unsigned long long)w.limit);
                for (unsigned i = 0; i < MAXM; i++) {
                        struct mirror_stats st;

                        mirror_stats(f.m[i], &st);
                        if (st.mode != MIRROR_TRACK)
                                fail_msg("%s: member %u still %s after the freeze", what, i,
                                         mirror_mode_name(st.mode));
                        if (i != victim && !st.fault_frozen)
                                fail_msg("%s: member %u not marked frozen", what, i);
                }
                for (unsigned i = 0; i < MAXM; i++) {
                        check_b1(&f, i, what);
                        heal(&f, i, what);
                }
                assert_int_equal(mirror_group_set_members(g, NULL, 0), 0);
                mirror_group_free(g);
                fx_fini(&f);
                g_runs++;
        }
}

/* The durable AL extents of mirror i (a copy of its meta file, as a crash
 * would leave it). */
static unsigned durable_al(struct fx *f, unsigned i)
{
        char copy[160], cmd[400];
        struct meta mt;
        struct bitmap bm;
        uint64_t ext[AL_MAX_SLOTS];
        unsigned n = 0;

        snprintf(copy, sizeof(copy), "%s.al", f->meta_path[i]);
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", f->meta_path[i], copy);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(meta_open(copy, &mt, &bm, ext, &n), 0);
        meta_close(&mt);
        bitmap_free(&bm);
        unlink(copy);
        return n;
}

static void wait_settled(void)
{
        for (int t = 0; t < 20000 && mirror_settles_running() > 0; t++)
                usleep(500);
        assert_int_equal(mirror_settles_running(), 0);
}

/* A pause's settle runs after fence_pause returned (replication.md, "What
 * a pause answer waits for"). Held in its DR flush (hold rule), it must
 * leave the AL alone when mirroring resumed meanwhile: the mirrored writes
 * of the new SYNC period need their AL extents. Without the hold it
 * empties the durable AL. */
static void test_settle_after_resume(void **state)
{
        struct fx f;
        struct fence_member fm;
        struct fence_result res;
        char gate[128], rule[200], buf[4096];
        uint64_t hits;
        int was = -1;

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON");
#endif
        fx_init(&f, 1);
        open_mirror(&f, 0, true);
        wait_sync(&f, 0);
        fm = (struct fence_member){.m = f.m[0], .prod = f.prod[0], .dr = f.dr[0]};
        memset(buf, 0x5a, sizeof(buf));
        assert_int_equal(volume_write(f.prod[0], buf, sizeof(buf), 0, 0), 0);
        assert_true(durable_al(&f, 0) > 0);

        /* 1. held settle, mirroring resumes, then the flush goes on */
        snprintf(gate, sizeof(gate), "%s/gate", f.dir);
        assert_int_equal(close(open(gate, O_CREAT | O_WRONLY, 0600)), 0);
        snprintf(rule, sizeof(rule), "vol_flush@dr0^%s", gate);
        assert_int_equal(fault_configure(rule), 0);
        hits = fault_hits();
        assert_int_equal(fence_pause(&fm, 1, &was, &res), 0);
        assert_int_equal(was, MIRROR_SYNC);
        assert_int_equal(mirror_mode(f.m[0]), MIRROR_TRACK);
        for (int t = 0; t < 20000 && fault_hits() == hits; t++) /* the settle waits on the gate */
                usleep(500);
        assert_true(fault_hits() > hits);
        assert_int_equal(mirror_settles_running(), 1);
        volume_fence_raise(f.prod[0]);
        assert_int_equal(mirror_set_mode(f.m[0], MIRROR_RESYNC), 0); /* nothing dirty: SYNC */
        volume_fence_lower(f.prod[0]);
        assert_int_equal(mirror_mode(f.m[0]), MIRROR_SYNC);
        assert_int_equal(unlink(gate), 0);
        wait_settled();
        assert_int_equal(fault_configure(NULL), 0);
        assert_true(durable_al(&f, 0) > 0);

        /* 2. an undisturbed settle empties the durable AL */
        assert_int_equal(fence_pause(&fm, 1, &was, &res), 0);
        wait_settled();
        assert_int_equal(durable_al(&f, 0), 0);
        fx_fini(&f);
}

/* The pause fence does not drain (replication.md, "The pause fence does not
 * drain"). A mirrored write on member 0 is held in its DR leg (hold rule)
 * when a pause of two members begins:
 *   - the switch happens and the gates open while it is held: a write on
 *     member 1, and one on another chunk of member 0, are acknowledged,
 *     on production only, their chunks dirty;
 *   - fence_pause does not return while it is held (DR stops changing
 *     before the answer), and returns once it is released; DR 0 holds it.
 * With a draining fence the switch waits for the held write and the later
 * writes wait at the gates: the test fails instead of hanging. */
struct held_write {
        struct volume *v;
        uint64_t off;
        char fill;
        int rc;
        atomic_int done;
};

static void *held_write_main(void *arg)
{
        struct held_write *w = arg;
        char buf[4096];

        memset(buf, w->fill, sizeof(buf));
        w->rc = volume_write(w->v, buf, sizeof(buf), w->off, 0);
        atomic_store(&w->done, 1);
        return NULL;
}

struct held_pause {
        struct fence_member *fm;
        int was[2];
        struct fence_result res;
        int rc;
        atomic_int done;
};

static void *held_pause_main(void *arg)
{
        struct held_pause *p = arg;

        p->rc = fence_pause(p->fm, 2, p->was, &p->res);
        atomic_store(&p->done, 1);
        return NULL;
}

static bool holds_fill(struct volume *v, uint64_t off, char fill)
{
        char buf[4096];

        assert_int_equal(volume_local_read(v, buf, sizeof(buf), off), 0);
        for (size_t i = 0; i < sizeof(buf); i++)
                if (buf[i] != fill)
                        return false;
        return true;
}

/* Liveness bound (not a timing check): true once *flag is set, false when
 * it is still not set after 60 s, so a regression fails with a message
 * instead of hanging the binary. */
static bool wait_flag(atomic_int *flag)
{
        for (int t = 0; t < 120000 && !atomic_load(flag); t++)
                usleep(500);
        return atomic_load(flag) != 0;
}

/* Wait until fault_hits() passes `hits` (a call held by a hold rule), 20 s
 * at most. */
static bool wait_held(uint64_t hits)
{
        for (int t = 0; t < 40000 && fault_hits() <= hits; t++)
                usleep(500);
        return fault_hits() > hits;
}

/* n mirrors in SYNC and their fence members. */
static void fx_synced(struct fx *f, struct fence_member *fm, unsigned n)
{
        fx_init(f, n);
        for (unsigned i = 0; i < n; i++) {
                open_mirror(f, i, true);
                wait_sync(f, i);
                fm[i] = (struct fence_member){.m = f->m[i], .prod = f->prod[i], .dr = f->dr[i]};
        }
}

/* Start w on its own thread; true once a hold rule holds it (wait_held). */
static bool start_held_write(struct held_write *w, pthread_t *t)
{
        uint64_t hits = fault_hits();

        assert_int_equal(pthread_create(t, NULL, held_write_main, w), 0);
        return wait_held(hits);
}

static void make_gate(struct fx *f, char *gate, size_t len, const char *name)
{
        snprintf(gate, len, "%s/%s", f->dir, name);
        assert_int_equal(close(open(gate, O_CREAT | O_WRONLY, 0600)), 0);
}

static void test_pause_does_not_drain(void **state)
{
        struct fx f;
        struct fence_member fm[2];
        struct held_write hw = {.off = 0, .fill = 0x11};
        struct held_write w1 = {.off = 3 * CHUNK, .fill = 0x22};
        struct held_write w0 = {.off = 9 * CHUNK, .fill = 0x33};
        struct held_pause hp = {.fm = fm};
        pthread_t th, tp, t1, t0;
        char gate[128], rule[200];
        bool held, switched = false, later_done = false, pause_waited = false;

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON");
#endif
        fx_synced(&f, fm, 2);
        hw.v = f.prod[0];
        w1.v = f.prod[1];
        w0.v = f.prod[0];
        make_gate(&f, gate, sizeof(gate), "gate");
        snprintf(rule, sizeof(rule), "vol_write@dr0^%s", gate);
        assert_int_equal(fault_configure(rule), 0);
        held = start_held_write(&hw, &th); /* in its DR leg */
        if (held) {
                assert_int_equal(pthread_create(&tp, NULL, held_pause_main, &hp), 0);
                /* Liveness bound only (20 s): a draining fence never gets there. */
                for (int t = 0; t < 40000 && !switched; t++) {
                        switched = mirror_mode(f.m[0]) == MIRROR_TRACK &&
                                   mirror_mode(f.m[1]) == MIRROR_TRACK;
                        if (!switched)
                                usleep(500);
                }
        }
        if (switched) {
                assert_int_equal(pthread_create(&t1, NULL, held_write_main, &w1), 0);
                assert_int_equal(pthread_create(&t0, NULL, held_write_main, &w0), 0);
                later_done = wait_flag(&w1.done) && wait_flag(&w0.done);
        }
        pause_waited = held && !atomic_load(&hp.done) && !atomic_load(&hw.done);
        /* Release everything before any verdict. */
        assert_int_equal(unlink(gate), 0);
        assert_int_equal(fault_configure(NULL), 0);
        if (!wait_flag(&hw.done) || (held && !wait_flag(&hp.done)))
                fail_msg("the held write or the pause did not finish once released");
        assert_int_equal(pthread_join(th, NULL), 0);
        if (held)
                assert_int_equal(pthread_join(tp, NULL), 0);
        if (switched) {
                if (!wait_flag(&w1.done) || !wait_flag(&w0.done))
                        fail_msg("writes after the switch did not finish");
                assert_int_equal(pthread_join(t1, NULL), 0);
                assert_int_equal(pthread_join(t0, NULL), 0);
        }
        if (!held)
                fail_msg("the mirrored write was not held in its DR leg");
        if (!switched)
                fail_msg("the pause did not switch while a mirrored write was held: it drains");
        if (!later_done)
                fail_msg("writes after the switch waited for a held write: the fence drains");
        if (!pause_waited)
                fail_msg("the pause returned while a mirrored write was still in flight");
        assert_int_equal(hp.rc, 0);
        assert_int_equal(hp.was[0], MIRROR_SYNC);
        assert_int_equal(hp.was[1], MIRROR_SYNC);
        assert_true(hp.res.frozen_at > 0);
        assert_int_equal(hw.rc, 0);
        assert_int_equal(w1.rc, 0);
        assert_int_equal(w0.rc, 0);
        /* The held write was in flight at the instant: mirrored, on DR. */
        assert_true(holds_fill(f.dr[0], hw.off, hw.fill));
        /* The later ones: production only, their chunks dirty. */
        assert_true(holds_fill(f.prod[1], w1.off, w1.fill));
        assert_false(holds_fill(f.dr[1], w1.off, w1.fill));
        assert_false(holds_fill(f.dr[0], w0.off, w0.fill));
        assert_int_equal(mirror_count_clean(f.m[1], w1.off, 4096), 0);
        assert_int_equal(mirror_count_clean(f.m[0], w0.off, 4096), 0);
        assert_int_equal(mirror_count_clean(f.m[0], hw.off, 4096), 1);
        wait_settled();
        for (unsigned i = 0; i < 2; i++) {
                check_b1(&f, i, "after a pause with a write in flight");
                heal(&f, i, "after a pause with a write in flight");
        }
        fx_fini(&f);
}

/* The pause's answer hold, through fence_pause: a mirrored write already
 * past the gate (held in its production leg) is released while the pause
 * is held between its two switches (pause_window): it finishes both legs,
 * but it is not answered until the last member has switched, so no write
 * is answered between the first switch and the last (F1). */
static void test_pause_holds_answers(void **state)
{
        struct fx f;
        struct fence_member fm[2];
        struct held_write w = {.off = 2 * CHUNK, .fill = 0x55};
        struct held_pause hp = {.fm = fm};
        char g1[128], g2[128], rule[400];
        bool held_w = false, held_p = false, landed = false, mid = false, early = true;
        pthread_t tw, tp;

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON");
#endif
        fx_synced(&f, fm, 2);
        w.v = f.prod[0];
        make_gate(&f, g1, sizeof(g1), "g1");
        make_gate(&f, g2, sizeof(g2), "g2");
        snprintf(rule, sizeof(rule), "vol_write@prod0^%s;pause_window^%s", g1, g2);
        assert_int_equal(fault_configure(rule), 0);
        held_w = start_held_write(&w, &tw); /* mirrored, in its production leg */
        if (held_w) {
                uint64_t hits = fault_hits();

                assert_int_equal(pthread_create(&tp, NULL, held_pause_main, &hp), 0);
                held_p = wait_held(hits); /* one member switched, the other not */
        }
        if (held_p) {
                mid = mirror_mode(f.m[0]) == MIRROR_TRACK && mirror_mode(f.m[1]) == MIRROR_SYNC;
                assert_int_equal(unlink(g1), 0);
                for (int t = 0; t < 40000 && !landed; t++) { /* both legs written... */
                        landed = holds_fill(f.dr[0], w.off, w.fill);
                        if (!landed)
                                usleep(500);
                }
                usleep(50000);
                early = atomic_load(&w.done); /* ...but not answered */
        }
        /* Release everything before any verdict. */
        unlink(g1);
        assert_int_equal(unlink(g2), 0);
        assert_int_equal(fault_configure(NULL), 0);
        if (!wait_flag(&w.done) || (held_w && !wait_flag(&hp.done)))
                fail_msg("the write or the pause did not finish once released");
        assert_int_equal(pthread_join(tw, NULL), 0);
        if (held_w)
                assert_int_equal(pthread_join(tp, NULL), 0);
        if (!held_w || !held_p)
                fail_msg("not held as planned (write %d, pause %d)", held_w, held_p);
        if (!mid)
                fail_msg("the pause was not held between its two switches");
        if (!landed)
                fail_msg("the released write did not reach DR");
        if (early)
                fail_msg("a write was answered between the first switch and the last");
        assert_int_equal(w.rc, 0);
        assert_int_equal(hp.rc, 0);
        assert_int_equal(hp.was[0], MIRROR_SYNC);
        assert_int_equal(hp.was[1], MIRROR_SYNC);
        wait_settled();
        fx_fini(&f);
}

struct drainer {
        struct volume *v;
        atomic_int done;
};

static void *drainer_main(void *arg)
{
        struct drainer *d = arg;

        volume_fence_drain(d->v);
        atomic_store(&d->done, 1);
        return NULL;
}

/* volume_ack_hold alone: a write that finishes while answers are held is
 * not answered until the release, and still counts as in flight: a drain
 * (a node's self-fence) started meanwhile returns only after the release,
 * so the write is not answered after that fence. */
static void test_ack_hold(void **state)
{
        struct fx f;
        struct held_write w = {.off = 5 * CHUNK, .fill = 0x44};
        struct drainer d = {0};
        char gate[128], rule[200];
        bool held, landed = false, early = true, drained_early = true;
        pthread_t t, td;

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON");
#endif
        fx_init(&f, 1);
        w.v = f.prod[0];
        make_gate(&f, gate, sizeof(gate), "gate");
        snprintf(rule, sizeof(rule), "vol_write@prod0^%s", gate);
        assert_int_equal(fault_configure(rule), 0);
        held = start_held_write(&w, &t); /* past the gate, held */
        volume_fence_close(f.prod[0]);
        volume_ack_hold(f.prod[0], true);
        assert_int_equal(unlink(gate), 0);
        if (held) {
                for (int i = 0; i < 40000 && !landed; i++) { /* its bytes are written... */
                        landed = holds_fill(f.prod[0], w.off, w.fill);
                        if (!landed)
                                usleep(500);
                }
                d.v = f.prod[0];
                assert_int_equal(pthread_create(&td, NULL, drainer_main, &d), 0);
                usleep(50000);
                early = atomic_load(&w.done); /* ...but it is not answered */
                drained_early = atomic_load(&d.done);
        }
        volume_ack_hold(f.prod[0], false);
        assert_int_equal(fault_configure(NULL), 0);
        if (!wait_flag(&w.done) || (held && !wait_flag(&d.done)))
                fail_msg("the write or the drain did not finish once released");
        assert_int_equal(pthread_join(t, NULL), 0);
        if (held)
                assert_int_equal(pthread_join(td, NULL), 0);
        volume_fence_lower(f.prod[0]);
        if (!held)
                fail_msg("the write was not held");
        assert_true(landed);
        if (early)
                fail_msg("a write was answered while the answers were held");
        if (drained_early)
                fail_msg("a drain returned while a held write could still be answered");
        assert_int_equal(w.rc, 0);
        fx_fini(&f);
}

/* A member frozen by another member's fault (MIRROR_EV_FROZEN: the service
 * records it active-stopped) whose own mirrored write, in flight at the
 * freeze, then fails on DR: it reports MIRROR_EV_DR_FAULT, once, so the
 * service records the fault level its live view shows (faults.md, "Errors
 * on the write path"). Member 1's write is held in its DR leg (and fails
 * when let go); member 0's DR fault freezes the group meanwhile. */
static void test_fault_after_freeze(void **state)
{
        struct fx f;
        struct fence_member fm[2];
        struct mirror_group *g = mirror_group_new("g");
        struct mirror *ms[2];
        struct held_write hw = {.off = 4 * CHUNK, .fill = 0x66};
        struct mirror_stats st;
        char gate[128], rule[300], buf[4096];
        bool held;
        int rc0 = -1, frozen_before = -1, faults_before = -1;
        pthread_t th;

        (void)state;
#if !FAULT_INJECTION_BUILT
        fail_msg("built without fault injection: configure with -DEVSREP_FAULT_INJECTION=ON");
#endif
        fx_synced(&f, fm, 2);
        ms[0] = f.m[0];
        ms[1] = f.m[1];
        assert_int_equal(mirror_group_set_members(g, ms, 2), 0);
        hw.v = f.prod[1];
        make_gate(&f, gate, sizeof(gate), "gate");
        snprintf(rule, sizeof(rule), "vol_write@dr1^%s;vol_write@dr1=1;vol_write@dr0=1", gate);
        assert_int_equal(fault_configure(rule), 0);
        held = start_held_write(&hw, &th); /* member 1: in its DR leg */
        if (held) {
                memset(buf, 0x77, sizeof(buf));
                rc0 = volume_write(f.prod[0], buf, sizeof(buf), CHUNK, 0); /* freezes both */
                frozen_before = events_of(&f, f.frozen, 1);
                faults_before = events_of(&f, f.dr_faults, 1);
        }
        /* Release before any verdict: member 1's write fails on DR now. */
        assert_int_equal(unlink(gate), 0);
        if (!wait_flag(&hw.done))
                fail_msg("the held write did not finish once released");
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(fault_configure(NULL), 0);
        if (!held)
                fail_msg("member 1's mirrored write was not held in its DR leg");
        assert_int_equal(rc0, 0); /* a DR fault does not fail the client's write */
        assert_int_equal(hw.rc, 0);
        assert_int_equal(frozen_before, 1); /* frozen by member 0's fault... */
        assert_int_equal(faults_before, 0);
        assert_int_equal(events_of(&f, f.dr_faults, 0), 1);
        mirror_stats(f.m[1], &st);
        assert_int_equal(st.mode, MIRROR_TRACK);
        assert_true(st.fault_frozen);
        assert_true(st.dr_error != 0);
        /* ...then its own DR fault, reported once, as its live view shows */
        if (events_of(&f, f.dr_faults, 1) != 1)
                fail_msg("member 1's DR fault after the freeze reported %d times (want 1)",
                         events_of(&f, f.dr_faults, 1));
        assert_int_equal(mirror_count_clean(f.m[1], hw.off, 4096), 0); /* its chunk dirty */
        assert_int_equal(mirror_group_set_members(g, NULL, 0), 0);
        mirror_group_free(g);
        for (unsigned i = 0; i < 2; i++) {
                check_b1(&f, i, "a DR fault after a freeze");
                heal(&f, i, "a DR fault after a freeze");
        }
        fx_fini(&f);
}

static int report(void **state)
{
        (void)state;
        printf("fault injection: %u fault points/scenarios covered, %u runs\n", g_points, g_runs);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_reverse_flushes_once),
            cmocka_unit_test(test_write_burst_faults),
            cmocka_unit_test(test_resync_copy_faults),
            cmocka_unit_test(test_write_burst_faults_parallel),
            cmocka_unit_test(test_parallel_dr_fails),
            cmocka_unit_test(test_parallel_prod_fails),
            cmocka_unit_test(test_parallel_both_fail),
            cmocka_unit_test(test_group_freeze_prefix),
            cmocka_unit_test(test_settle_after_resume),
            cmocka_unit_test(test_pause_does_not_drain),
            cmocka_unit_test(test_pause_holds_answers),
            cmocka_unit_test(test_ack_hold),
            cmocka_unit_test(test_fault_after_freeze),
        };

        return cmocka_run_group_tests(tests, NULL, report);
}
