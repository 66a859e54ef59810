/* The mirror against real sparse files through the volume choke point:
 * initial sync (data copied, DR garbage zeroed), SYNC writes on both legs,
 * TRACK leaves DR frozen and counts dirty chunks, RESYNC while several
 * threads write at random (the resync-vs-write race: DR must end equal),
 * activity-log fold after an unclean stop, clean reopen, and role swap. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture_tmpdir.h"

#include "common/fault.h"
#include "common/replygen.h"
#include "common/util.h"
#include "engine/mirror.h"
#include "volume/volume.h"

#define MIB       (1024u * 1024u)
#define VOL_BYTES (64u * MIB)
#define CHUNK     65536u

struct fx {
        char dir[64], prod_path[128], dr_path[128], meta_path[128];
        struct volume *prod, *dr;
        struct mirror *m;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int synced, faults;
};

static void on_event(void *ctx, const char *pair_id, enum mirror_event ev)
{
        struct fx *f = ctx;

        (void)pair_id;
        pthread_mutex_lock(&f->mu);
        if (ev == MIRROR_EV_SYNCED)
                f->synced++;
        else
                f->faults++;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
}

static void wait_synced(struct fx *f, int n)
{
        pthread_mutex_lock(&f->mu);
        while (f->synced < n)
                pthread_cond_wait(&f->cv, &f->mu);
        pthread_mutex_unlock(&f->mu);
}

static void open_mirror(struct fx *f, bool create, enum mirror_mode mode, uint64_t *dirty)
{
        struct mirror_cfg mc = {0};
        struct link *l;
        uint64_t d = 0;

        assert_int_equal(link_local_open(f->dr, &l), 0);
        mc.pair_id = "p";
        mc.meta_path = f->meta_path;
        mc.prod = f->prod;
        mc.link = l;
        mc.chunk_bytes = CHUNK;
        mc.create = create;
        mc.on_event = on_event;
        mc.event_ctx = f;
        assert_int_equal(mirror_open(&mc, &f->m, &d), 0);
        if (dirty)
                *dirty = d;
        volume_fence_raise(f->prod);
        assert_int_equal(mirror_start(f->m, mode), 0);
        volume_fence_lower(f->prod);
}

static void close_mirror(struct fx *f)
{
        volume_fence_raise(f->prod);
        mirror_close(f->m, false);
        volume_fence_lower(f->prod);
        f->m = NULL;
}

static void set_mode(struct fx *f, enum mirror_mode mode)
{
        volume_fence_raise(f->prod);
        assert_int_equal(mirror_set_mode(f->m, mode), 0);
        volume_fence_lower(f->prod);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        assert_int_equal(fixture_tmpdir_make(f->dir, sizeof(f->dir), "mirror"), 0);
        snprintf(f->prod_path, sizeof(f->prod_path), "%s/prod", f->dir);
        snprintf(f->dr_path, sizeof(f->dr_path), "%s/dr", f->dir);
        snprintf(f->meta_path, sizeof(f->meta_path), "%s/pair.meta", f->dir);
        assert_int_equal(volume_file_create(f->prod_path, VOL_BYTES), 0);
        assert_int_equal(volume_file_create(f->dr_path, VOL_BYTES), 0);
        assert_int_equal(volume_open("prod", "az1", f->prod_path, &f->prod), 0);
        assert_int_equal(volume_open("dr", "az2", f->dr_path, &f->dr), 0);
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->cv, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        if (f->m)
                close_mirror(f);
        volume_put(f->prod);
        volume_put(f->dr);
        fixture_tmpdir_remove(f->dir);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        free(f);
        return 0;
}

/* Whole-volume compare of the two files. */
static bool same(struct fx *f)
{
        char *a = malloc(VOL_BYTES), *b = malloc(VOL_BYTES);
        bool eq;

        assert_int_equal(volume_local_read(f->prod, a, VOL_BYTES, 0), 0);
        assert_int_equal(volume_local_read(f->dr, b, VOL_BYTES, 0), 0);
        eq = memcmp(a, b, VOL_BYTES) == 0;
        free(a);
        free(b);
        return eq;
}

static void fill(char *buf, size_t len, unsigned seed)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = (char)(seed * 131 + i * 7 + (i >> 9));
}

static void test_initial_sync(void **state)
{
        struct fx *f = *state;
        char buf[3 * 65536 + 100];
        struct mirror_stats st;

        fill(buf, sizeof(buf), 1);
        assert_int_equal(volume_local_write(f->prod, buf, sizeof(buf), 5 * MIB + 4096, 0), 0);
        assert_int_equal(volume_local_write(f->prod, buf, 4096, VOL_BYTES - 4096, 0), 0);
        fill(buf, sizeof(buf), 2); /* garbage on DR where production is a hole */
        assert_int_equal(volume_local_write(f->dr, buf, sizeof(buf), 40 * MIB, 0), 0);
        open_mirror(f, true, MIRROR_RESYNC, NULL);
        wait_synced(f, 1);
        assert_int_equal(mirror_mode(f->m), MIRROR_SYNC);
        assert_true(same(f));
        mirror_stats(f->m, &st);
        assert_int_equal(st.dirty_chunks, 0);
        assert_int_equal(st.progress, 100);
        assert_int_equal(st.bytes_copied, VOL_BYTES); /* every chunk brought in sync */
        assert_true(st.data_bytes >= sizeof(buf) + 4096 && st.data_bytes < 2 * MIB);
}

static void test_sync_and_track(void **state)
{
        struct fx *f = *state;
        char buf[8192], back[8192];
        struct mirror_stats st;

        open_mirror(f, true, MIRROR_RESYNC, NULL);
        wait_synced(f, 1);
        fill(buf, sizeof(buf), 3);
        /* SYNC: on DR as soon as the write returns (unaligned, straddling). */
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), CHUNK - 100, 0), 0);
        assert_int_equal(volume_local_read(f->dr, back, sizeof(back), CHUNK - 100), 0);
        assert_memory_equal(buf, back, sizeof(buf));
        assert_int_equal(volume_zero(f->prod, 0, 4096, true, 0), 0);
        assert_true(same(f));

        /* TRACK: DR frozen, the chunks counted dirty. */
        set_mode(f, MIRROR_TRACK);
        fill(buf, sizeof(buf), 4);
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 10 * MIB - 4096, 0), 0);
        assert_int_equal(volume_write(f->prod, buf, 100, 30 * MIB, 0), 0);
        assert_int_equal(volume_write(f->prod, buf, 100, 30 * MIB + 200, 0), 0);
        assert_int_equal(volume_local_read(f->dr, back, sizeof(back), 10 * MIB - 4096), 0);
        assert_memory_not_equal(buf, back, sizeof(buf));
        mirror_stats(f->m, &st);
        assert_int_equal(st.dirty_chunks, 3); /* two straddled + one */
        assert_false(same(f));
        /* M1: never SYNC over dirty chunks */
        volume_fence_raise(f->prod);
        assert_int_equal(mirror_set_mode(f->m, MIRROR_SYNC), -EINVAL);
        volume_fence_lower(f->prod);

        /* RESYNC copies exactly the dirty chunks. */
        uint64_t before = st.bytes_copied;
        set_mode(f, MIRROR_RESYNC);
        wait_synced(f, 2);
        assert_true(same(f));
        mirror_stats(f->m, &st);
        assert_int_equal(st.bytes_copied - before, 3 * CHUNK);
}

/* The link going down: in SYNC it drops the pair to TRACK and is reported
 * once (a second report while the error stands would be a duplicate row
 * write); found down while tracking it is not reported (the mirror was
 * started with its DR node unreachable, e.g. a failed-over pair, and
 * whoever started it records the pair), though the live view shows it.
 * (A DR write failing while tracking is reported: test_engine_faults,
 * test_fault_after_freeze.) */
static void test_link_down(void **state)
{
        struct fx *f = *state;
        struct mirror_stats st;

        open_mirror(f, true, MIRROR_RESYNC, NULL);
        wait_synced(f, 1);
        mirror_link_down(f->m, -ENOTCONN);
        mirror_link_down(f->m, -ECONNRESET);
        pthread_mutex_lock(&f->mu);
        assert_int_equal(f->faults, 1); /* reported, and only once */
        pthread_mutex_unlock(&f->mu);
        mirror_stats(f->m, &st);
        assert_int_equal(st.mode, MIRROR_TRACK);
        assert_int_equal(st.dr_error, -ECONNRESET);
        assert_int_equal(st.dirty_chunks, 0); /* nothing was written */

        /* A sync clears the error; found down while tracking: not reported. */
        set_mode(f, MIRROR_RESYNC);
        wait_synced(f, 2);
        set_mode(f, MIRROR_TRACK);
        mirror_link_down(f->m, -ENOTCONN);
        pthread_mutex_lock(&f->mu);
        assert_int_equal(f->faults, 1);
        pthread_mutex_unlock(&f->mu);
        mirror_stats(f->m, &st);
        assert_int_equal(st.dr_error, -ENOTCONN);
}

struct writer {
        struct fx *f;
        unsigned seed;
        volatile int *stop;
        int errors;
};

static void *writer_main(void *arg)
{
        struct writer *w = arg;
        char buf[3 * CHUNK];
        unsigned s = w->seed;

        while (!*w->stop) {
                size_t len = 512 + rand_r(&s) % (2 * CHUNK);
                uint64_t off = (uint64_t)(rand_r(&s) % (VOL_BYTES / 512)) * 512;
                int rc;

                if (off + len > VOL_BYTES)
                        off = VOL_BYTES - len;
                fill(buf, len, rand_r(&s));
                if (rand_r(&s) % 8 == 0)
                        rc = volume_zero(w->f->prod, off, len, rand_r(&s) % 2, 0);
                else
                        rc = volume_write(w->f->prod, buf, len, off, 0);
                if (rc < 0)
                        w->errors++;
        }
        return NULL;
}

/* The race: the worker copies while four writers hammer the same area; DR
 * must equal production when the worker reports SYNC with writers stopped. */
static void test_resync_write_race(void **state)
{
        struct fx *f = *state;
        struct writer w[4];
        pthread_t t[4];
        volatile int stop = 0;
        char buf[CHUNK];

        for (int i = 0; i < 64; i++) { /* data everywhere: the copy has work */
                fill(buf, sizeof(buf), (unsigned)i);
                assert_int_equal(
                    volume_local_write(f->prod, buf, sizeof(buf), (uint64_t)i * MIB, 0), 0);
        }
        open_mirror(f, true, MIRROR_RESYNC, NULL);
        for (int i = 0; i < 4; i++) {
                w[i] = (struct writer){.f = f, .seed = 77u + (unsigned)i, .stop = &stop};
                pthread_create(&t[i], NULL, writer_main, &w[i]);
        }
        for (int round = 0; round < 6; round++) {
                usleep(50000);
                set_mode(f, MIRROR_TRACK); /* dirty more while paused */
                usleep(20000);
                set_mode(f, MIRROR_RESYNC);
        }
        usleep(100000);
        stop = 1;
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(w[i].errors, 0);
        }
        /* Writers are done: the worker converges. */
        for (int i = 0; i < 2000 && mirror_mode(f->m) != MIRROR_SYNC; i++)
                usleep(5000);
        assert_int_equal(mirror_mode(f->m), MIRROR_SYNC);
        assert_true(same(f));
}

/* kill -9 in SYNC: the meta file as it was while writes were in flight
 * (AL hot) is what a restart sees; every hot extent must come back dirty. */
static void test_al_fold(void **state)
{
        struct fx *f = *state;
        char buf[4096], path2[160], *img;
        uint64_t dirty = 0;
        int fd;
        off_t sz;

        open_mirror(f, true, MIRROR_RESYNC, NULL);
        wait_synced(f, 1);
        fill(buf, sizeof(buf), 9);
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 0, 0), 0);
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 20 * MIB + 5, 0), 0);
        /* snapshot the meta file now (AL holds extents 0 and 5) */
        fd = open(f->meta_path, O_RDONLY);
        sz = lseek(fd, 0, SEEK_END);
        img = malloc((size_t)sz);
        assert_int_equal(util_pread_full(fd, img, (size_t)sz, 0), 0);
        close(fd);
        close_mirror(f);
        snprintf(path2, sizeof(path2), "%s", f->meta_path);
        fd = open(path2, O_WRONLY | O_TRUNC);
        assert_int_equal(util_pwrite_full(fd, img, (size_t)sz, 0), 0);
        close(fd);
        free(img);
        open_mirror(f, false, MIRROR_RESYNC, &dirty);
        /* two 4 MiB AL extents of 64 KiB chunks */
        assert_int_equal(dirty, 2 * (4 * MIB / CHUNK));
        wait_synced(f, 2);
        assert_true(same(f));
}

static void test_clean_reopen(void **state)
{
        struct fx *f = *state;
        char buf[4096];
        uint64_t dirty = 1;

        open_mirror(f, true, MIRROR_RESYNC, NULL);
        wait_synced(f, 1);
        fill(buf, sizeof(buf), 5);
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 7 * MIB, 0), 0);
        close_mirror(f);
        open_mirror(f, false, MIRROR_SYNC, &dirty);
        assert_int_equal(dirty, 0);
        assert_int_equal(mirror_mode(f->m), MIRROR_SYNC);
        /* TRACK bits survive a clean reopen too */
        set_mode(f, MIRROR_TRACK);
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 9 * MIB, 0), 0);
        close_mirror(f);
        open_mirror(f, false, MIRROR_TRACK, &dirty);
        assert_int_equal(dirty, 1);
}

static void test_swap(void **state)
{
        struct fx *f = *state;
        char buf[4096], back[4096];
        struct link *l;

        open_mirror(f, true, MIRROR_RESYNC, NULL);
        wait_synced(f, 1);
        /* reverse: production moves to the DR volume, mirrored back */
        assert_int_equal(link_local_open(f->prod, &l), 0);
        volume_fence_raise(f->prod);
        volume_fence_raise(f->dr);
        assert_int_equal(mirror_swap(f->m, f->dr, l, false, MIRROR_SYNC), 0);
        volume_fence_lower(f->dr);
        volume_fence_lower(f->prod);
        fill(buf, sizeof(buf), 6);
        assert_int_equal(volume_write(f->dr, buf, sizeof(buf), 3 * MIB, 0), 0);
        assert_int_equal(volume_local_read(f->prod, back, sizeof(back), 3 * MIB), 0);
        assert_memory_equal(buf, back, sizeof(buf));
        /* a write to the old production no longer goes through the mirror */
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 50 * MIB, 0), 0);
        assert_int_equal(volume_local_read(f->dr, back, sizeof(back), 50 * MIB), 0);
        assert_memory_not_equal(buf, back, sizeof(buf));
        /* the mirror is attached to the DR volume now: close with its fence */
        volume_fence_raise(f->dr);
        mirror_close(f->m, false);
        volume_fence_lower(f->dr);
        f->m = NULL;
}

/* Rule L of the reply cache (docs/design/control-plane.md "The live
 * epoch"): what a pair's note reads from the engine (mirror_stats' noted
 * fields, the production volume's last error) never changes while the
 * live epoch stands still. Read as the cache reads: the epoch first, then
 * the figures; two reads with one epoch must give the same figures. */
struct live_snap { /* no padding: compared with memcmp */
        int mode, progress, dr_error, prod_error, last_error, unused;
        uint64_t dirty, copied, rate, sidecar;
};

static uint64_t live_read_once(struct fx *f, struct live_snap *s)
{
        uint64_t e = replygen_live_now();
        struct mirror_stats st;

        memset(s, 0, sizeof(*s));
        mirror_stats(f->m, &st);
        s->mode = (int)st.mode;
        s->progress = st.progress;
        s->dr_error = st.dr_error;
        s->prod_error = st.prod_error;
        s->last_error = volume_last_error(f->prod);
        s->dirty = st.dirty_chunks;
        s->copied = st.bytes_copied;
        s->rate = st.rate_bps;
        s->sidecar = st.sidecar_bytes;
        return e;
}

/* A snapshot of one epoch: the epoch read before and after the figures is
 * the same. (A change may land between a first read of the epoch and the
 * figures: the cache then keeps the older epoch and re-reads at the next
 * hit; what rule L promises is that figures read within one epoch are the
 * figures of that epoch.) */
static uint64_t live_read(struct fx *f, struct live_snap *s)
{
        uint64_t e;

        while ((e = live_read_once(f, s)) != replygen_live_now())
                ;
        return e;
}

/* One step: figures that changed imply a moved epoch; changed says
 * whether the step must change them (else it must leave both alone). */
static void live_step_check(struct fx *f, uint64_t e0, const struct live_snap *s0, bool changed)
{
        struct live_snap s1;
        uint64_t e1 = live_read(f, &s1);
        bool differs = memcmp(s0, &s1, sizeof(s1)) != 0;

        assert_int_equal(differs, changed);
        if (differs)
                assert_true(e1 != e0);
        else
                assert_true(e1 == e0); /* nothing to see: no bump either */
}

static void test_live_epoch(void **state)
{
        struct fx *f = *state;
        struct live_snap s0, s1;
        char buf[4096];
        uint64_t e0, e1;
        int epochs = 0, polls = 0;

        open_mirror(f, true, MIRROR_RESYNC, NULL);
        wait_synced(f, 1);
        fill(buf, sizeof(buf), 9);

        /* a mode switch */
        e0 = live_read(f, &s0);
        set_mode(f, MIRROR_TRACK);
        live_step_check(f, e0, &s0, true);
        /* a write into a clean chunk: one more dirty */
        e0 = live_read(f, &s0);
        assert_int_equal(volume_write(f->prod, buf, 100, 3 * CHUNK, 0), 0);
        live_step_check(f, e0, &s0, true);
        /* into the same chunk again: nothing the note shows moves */
        e0 = live_read(f, &s0);
        assert_int_equal(volume_write(f->prod, buf, 100, 3 * CHUNK + 512, 0), 0);
        live_step_check(f, e0, &s0, false);

        /* a resync, read while it runs: every chunk dirty first */
        for (uint64_t off = 0; off < VOL_BYTES; off += CHUNK)
                assert_int_equal(volume_write(f->prod, buf, 64, off, 0), 0);
        e0 = live_read(f, &s0);
        set_mode(f, MIRROR_RESYNC);
        while (true) {
                e1 = live_read(f, &s1);
                polls++;
                if (e1 == e0)
                        assert_memory_equal(&s0, &s1, sizeof(s1));
                else
                        epochs++;
                e0 = e1;
                memcpy(&s0, &s1, sizeof(s0));
                if (s1.mode == MIRROR_SYNC)
                        break;
                sched_yield();
        }
        wait_synced(f, 2);
        assert_true(epochs >= 2); /* progress was seen moving */
        print_message("live epoch: %d polls, %d epochs during the resync\n", polls, epochs);

        /* a DR write fault: dr_error, TRACK */
        if (fault_configure("vol_write@dr=1") == 0) {
                e0 = live_read(f, &s0);
                assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 7 * CHUNK, 0), 0);
                assert_int_equal(fault_configure(NULL), 0);
                live_step_check(f, e0, &s0, true);
                assert_int_equal(mirror_mode(f->m), MIRROR_TRACK);
                /* a production write fault: the volume's last error */
                assert_int_equal(fault_configure("vol_write@prod=1"), 0);
                e0 = live_read(f, &s0);
                assert_true(volume_write(f->prod, buf, sizeof(buf), 9 * CHUNK, 0) < 0);
                assert_int_equal(fault_configure(NULL), 0);
                live_step_check(f, e0, &s0, true);
                /* a good flush clears it */
                e0 = live_read(f, &s0);
                assert_int_equal(volume_local_flush(f->prod), 0);
                live_step_check(f, e0, &s0, true);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_initial_sync, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sync_and_track, setup, teardown),
            cmocka_unit_test_setup_teardown(test_link_down, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resync_write_race, setup, teardown),
            cmocka_unit_test_setup_teardown(test_al_fold, setup, teardown),
            cmocka_unit_test_setup_teardown(test_clean_reopen, setup, teardown),
            cmocka_unit_test_setup_teardown(test_swap, setup, teardown),
            cmocka_unit_test_setup_teardown(test_live_epoch, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
