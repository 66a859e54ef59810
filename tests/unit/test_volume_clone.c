/* Unit tests of the drill clone's data plane (volume/clone.c): the clone
 * holds the source's bytes of the capture instant although writers keep
 * changing the source during the copy (copy-before-write, invariant C1), and
 * a failing clone never fails a write on the source. */
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
#include "volume/clone.h"
#include "volume/volume.h"

#define MIB       (1024ULL * 1024)
#define SRC_BYTES (48 * MIB)
#define WRITERS   4
#define WRITES_PER                                                                                 \
        ((unsigned)(getenv("EVSREP_CLONE_UNIT_WRITES") ? atoi(getenv("EVSREP_CLONE_UNIT_WRITES"))  \
                                                       : 300))

struct fixture {
        char dir[64], src_path[128], dst_path[128];
        struct volume *src;
        uint8_t *expect; /* the source at the capture */
};

static uint64_t rnd(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* A sparse source: some 1 MiB clone chunks full, some partly written, some
 * holes. */
static void fixture_make(struct fixture *f, uint64_t seed)
{
        uint8_t *buf = malloc(MIB);

        assert_int_equal(fixture_tmpdir_make(f->dir, sizeof(f->dir), "clone"), 0);
        snprintf(f->src_path, sizeof(f->src_path), "%s/src", f->dir);
        snprintf(f->dst_path, sizeof(f->dst_path), "%s/dst", f->dir);
        assert_int_equal(volume_file_create(f->src_path, SRC_BYTES), 0);
        assert_int_equal(volume_file_create(f->dst_path, SRC_BYTES), 0);
        assert_int_equal(volume_open("src", "az2", f->src_path, &f->src), 0);
        for (unsigned k = 0; k < 40; k++) {
                uint64_t off = rnd(&seed) % (SRC_BYTES / 4096) * 4096;
                size_t len = (size_t)(rnd(&seed) % 256 + 1) * 4096;

                if (off + len > SRC_BYTES)
                        len = (size_t)(SRC_BYTES - off);
                memset(buf, (int)(rnd(&seed) % 255 + 1), MIB);
                for (size_t done = 0; done < len; done += MIB)
                        assert_int_equal(volume_local_write(f->src, buf,
                                                            len - done < MIB ? len - done : MIB,
                                                            off + done, 0),
                                         0);
        }
        f->expect = malloc(SRC_BYTES);
        assert_non_null(f->expect);
        assert_int_equal(volume_local_read(f->src, f->expect, SRC_BYTES, 0), 0);
        free(buf);
}

static void fixture_check_clone(struct fixture *f)
{
        uint8_t *got = malloc(SRC_BYTES);
        int fd = open(f->dst_path, O_RDONLY);

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, got, SRC_BYTES, 0), (ssize_t)SRC_BYTES);
        close(fd);
        for (uint64_t off = 0; off < SRC_BYTES; off += 4096)
                if (memcmp(got + off, f->expect + off, 4096) != 0)
                        fail_msg("clone differs from the capture at offset %llu",
                                 (unsigned long long)off);
        free(got);
}

static void fixture_free(struct fixture *f)
{
        volume_put(f->src);
        free(f->expect);
        assert_int_equal(fixture_tmpdir_remove(f->dir), 0);
}

struct writer {
        struct volume *v;
        uint64_t seed;
        atomic_int *failed;
};

/* Writes, zeroes and punches all over the source (across chunk borders). */
static void *writer_main(void *arg)
{
        struct writer *w = arg;
        uint8_t *buf = malloc(3 * MIB);

        memset(buf, 0xee, 3 * MIB);
        for (unsigned k = 0; k < WRITES_PER; k++) {
                uint64_t off = rnd(&w->seed) % (SRC_BYTES / 4096) * 4096;
                uint64_t len = (rnd(&w->seed) % 768 + 1) * 4096;
                int rc;

                if (off + len > SRC_BYTES)
                        len = SRC_BYTES - off;
                switch (rnd(&w->seed) % 4) {
                case 0:
                        rc = volume_local_zero(w->v, off, len, true, 0);
                        break;
                case 1:
                        rc = volume_local_zero(w->v, off, len, false, 0);
                        break;
                default:
                        rc = volume_local_write(w->v, buf, len, off, 0);
                }
                if (rc != 0)
                        atomic_fetch_add(w->failed, 1);
        }
        free(buf);
        return NULL;
}

static void run_with_writers(struct fixture *f, struct clone_job *j, int *run_rc, int *failed)
{
        pthread_t t[WRITERS];
        struct writer w[WRITERS];
        atomic_int nfail = 0;
        atomic_bool stop = false;

        for (int i = 0; i < WRITERS; i++) {
                w[i] = (struct writer){
                    .v = f->src, .seed = 0x9e3779b97f4a7c15ULL * (i + 1), .failed = &nfail};
                assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
        }
        *run_rc = clone_job_run(j, &stop);
        for (int i = 0; i < WRITERS; i++)
                pthread_join(t[i], NULL);
        *failed = atomic_load(&nfail);
}

/* The clone holds the capture although 4 writers change the source during
 * the copy (seeds vary the layout). */
static void test_clone_under_writes(void **state)
{
        (void)state;
        for (uint64_t seed = 1; seed <= 3; seed++) {
                struct fixture f;
                struct clone_job *j;
                uint64_t done, total;
                int rc, failed;

                fixture_make(&f, seed * 7919);
                assert_int_equal(clone_job_new(f.src, f.dst_path, SRC_BYTES, &j), 0);
                assert_int_equal(clone_job_capture(j, false), CLONE_COPY);
                /* Slow copies (test builds): the writers overtake the worker. */
                fault_configure("clone_copy~2000");
                run_with_writers(&f, j, &rc, &failed);
                fault_configure(NULL);
                assert_int_equal(rc, 0);
                assert_int_equal(failed, 0);
                clone_job_progress(j, &done, &total);
                assert_int_equal(done, total);
                assert_int_equal(total, SRC_BYTES / CLONE_CHUNK_BYTES);
                clone_job_free(j);
                fixture_check_clone(&f);
                fixture_free(&f);
        }
}

/* Reflink when the file system has it, else the copy: same bytes. */
static void test_clone_reflink_or_copy(void **state)
{
        struct fixture f;
        struct clone_job *j;
        enum clone_method m;
        int rc, failed;

        (void)state;
        fixture_make(&f, 4242);
        assert_int_equal(clone_job_new(f.src, f.dst_path, SRC_BYTES, &j), 0);
        m = clone_job_capture(j, true);
        printf("# method: %s\n", m == CLONE_REFLINK ? "reflink" : "copy");
        run_with_writers(&f, j, &rc, &failed);
        assert_int_equal(rc, 0);
        assert_int_equal(failed, 0);
        clone_job_free(j);
        fixture_check_clone(&f);
        fixture_free(&f);
}

/* A clone whose copies fail fails itself, never a write on the source, and
 * lets every later write through. */
static void test_clone_error_spares_writes(void **state)
{
        struct fixture f;
        struct clone_job *j;
        int rc, failed;

        (void)state;
        if (!FAULT_INJECTION_BUILT) {
                printf("# built without fault injection: skipped\n");
                return;
        }
        fixture_make(&f, 777);
        assert_int_equal(clone_job_new(f.src, f.dst_path, SRC_BYTES, &j), 0);
        assert_int_equal(clone_job_capture(j, false), CLONE_COPY);
        assert_int_equal(fault_configure("clone_copy=3+/ENOSPC"), 0);
        run_with_writers(&f, j, &rc, &failed);
        assert_int_equal(fault_configure(NULL), 0);
        assert_int_equal(rc, -ENOSPC);
        assert_int_equal(clone_job_error(j), -ENOSPC);
        assert_int_equal(failed, 0);
        clone_job_free(j);
        fixture_free(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_clone_under_writes),
            cmocka_unit_test(test_clone_reflink_or_copy),
            cmocka_unit_test(test_clone_error_spares_writes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
