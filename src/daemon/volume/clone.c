/* Drill clone of one DR volume (clone.h; docs/design/replication.md "DR
 * drill on a clone").
 *
 * Invariant C1: a chunk whose done bit is clear has not been written on the
 * source since the capture, so its bytes (and holes) are the instant's.
 * Every write-type I/O on the source passes preserve() first, which copies
 * the chunks it touches that are not done, under mu, before the write goes
 * on; the worker copies under the same mu. Bits are only ever set.
 *
 * Lock order: (the caller's range locks ->) mu. mu is held across the copy
 * of one chunk (I/O on the two files only) and never with another lock. */
#include "volume/clone.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct clone_job {
        struct volume *src;
        int dst_fd;
        uint64_t size_bytes, nchunks;
        _Atomic uint64_t *done; /* one bit per chunk */
        atomic_uint_least64_t ndone;
        atomic_uint_least64_t data_bytes;
        atomic_uint_least64_t preserved; /* chunks copied by preserve() */
        atomic_int error;
        bool bound;
        pthread_mutex_t mu; /* chunk copies; buf */
        char *buf;
};

static bool chunk_done(const struct clone_job *j, uint64_t c)
{
        return (atomic_load(&j->done[c / 64]) >> (c % 64)) & 1;
}

static void chunk_set_done(struct clone_job *j, uint64_t c)
{
        atomic_fetch_or(&j->done[c / 64], 1ull << (c % 64));
        atomic_fetch_add(&j->ndone, 1);
}

int clone_job_new(struct volume *src, const char *dst_path, uint64_t size_bytes,
                  struct clone_job **out)
{
        struct clone_job *j = calloc(1, sizeof(*j));
        uint64_t nwords;

        if (!j)
                return -ENOMEM;
        j->nchunks = (size_bytes + CLONE_CHUNK_BYTES - 1) / CLONE_CHUNK_BYTES;
        nwords = (j->nchunks + 63) / 64;
        j->done = calloc(nwords ? nwords : 1, sizeof(*j->done));
        j->buf = malloc(CLONE_CHUNK_BYTES);
        j->dst_fd = open(dst_path, O_RDWR | O_CLOEXEC);
        if (!j->done || !j->buf || j->dst_fd < 0) {
                int rc = j->dst_fd < 0 && j->done && j->buf ? -errno : -ENOMEM;

                if (j->dst_fd >= 0)
                        close(j->dst_fd);
                free(j->done);
                free(j->buf);
                free(j);
                return rc;
        }
        j->size_bytes = size_bytes;
        pthread_mutex_init(&j->mu, NULL);
        volume_get(src);
        j->src = src;
        *out = j;
        return 0;
}

static void job_fail(struct clone_job *j, int rc)
{
        int zero = 0;

        if (atomic_compare_exchange_strong(&j->error, &zero, rc))
                log_error("clone of volume %s: %s; the clone is abandoned (replication goes on)",
                          volume_id(j->src), strerror(-rc));
}

/* Copy chunk c (mu held): its data extents only; holes stay holes. */
static int chunk_copy(struct clone_job *j, uint64_t c)
{
        uint64_t start = c * CLONE_CHUNK_BYTES, end = MIN(start + CLONE_CHUNK_BYTES, j->size_bytes);
        uint64_t pos = start;
        int rc;

        if (chunk_done(j, c))
                return 0;
        if ((rc = fault_check(FP_CLONE_COPY, volume_id(j->src))) < 0)
                return rc;
        while (pos < end) {
                uint64_t d, dl, e;

                rc = volume_local_next_data(j->src, pos, &d, &dl);
                if (rc == -ENXIO || (rc == 0 && d >= end))
                        break;
                if (rc < 0)
                        return rc;
                if (d < pos) { /* cannot happen (SEEK_DATA >= pos); be safe */
                        dl -= pos - d;
                        d = pos;
                }
                e = MIN(d + dl, end);
                if ((rc = volume_local_read(j->src, j->buf, e - d, d)) < 0 ||
                    (rc = util_pwrite_full(j->dst_fd, j->buf, e - d, d)) < 0)
                        return rc;
                atomic_fetch_add(&j->data_bytes, e - d);
                pos = e;
        }
        chunk_set_done(j, c);
        return 0;
}

/* The preserver: before the source's [off, off+len) changes. */
static void preserve(void *ctx, struct volume *v, uint64_t off, uint64_t len)
{
        struct clone_job *j = ctx;
        uint64_t c0 = off / CLONE_CHUNK_BYTES, c1, c;
        bool all = true;

        (void)v;
        if (c0 >= j->nchunks || atomic_load(&j->error))
                return;
        c1 = MIN((off + len - 1) / CLONE_CHUNK_BYTES, j->nchunks - 1);
        for (c = c0; c <= c1 && all; c++)
                all = chunk_done(j, c);
        if (all)
                return;
        pthread_mutex_lock(&j->mu);
        for (c = c0; c <= c1 && !atomic_load(&j->error); c++) {
                bool was = chunk_done(j, c);
                int rc = chunk_copy(j, c);

                if (rc < 0)
                        job_fail(j, rc);
                else if (!was)
                        atomic_fetch_add(&j->preserved, 1);
        }
        pthread_mutex_unlock(&j->mu);
}

enum clone_method clone_job_capture(struct clone_job *j, bool try_reflink)
{
        if (try_reflink && fault_check(FP_CLONE_LINK, volume_id(j->src)) == 0 &&
            volume_local_reflink_to(j->src, j->dst_fd) == 0) {
                for (uint64_t c = 0; c < j->nchunks; c++)
                        chunk_set_done(j, c);
                return CLONE_REFLINK;
        }
        volume_set_prewrite(j->src, preserve, j);
        j->bound = true;
        return CLONE_COPY;
}

static void job_unbind(struct clone_job *j)
{
        if (j->bound) {
                volume_set_prewrite(j->src, NULL, NULL);
                j->bound = false;
        }
}

int clone_job_run(struct clone_job *j, const atomic_bool *stop)
{
        uint64_t c = 0;
        int rc = 0;

        while (c < j->nchunks && !atomic_load(&j->error)) {
                uint64_t d, dl;

                if (atomic_load(stop)) {
                        job_fail(j, -ECANCELED);
                        break;
                }
                pthread_mutex_lock(&j->mu);
                if (!chunk_done(j, c)) {
                        /* Skip holes: a chunk not done with no data now had
                         * none at the instant (C1). */
                        rc = volume_local_next_data(j->src, c * CLONE_CHUNK_BYTES, &d, &dl);
                        if (rc == -ENXIO) {
                                d = j->nchunks * CLONE_CHUNK_BYTES;
                                rc = 0;
                        }
                        for (; rc == 0 && c < j->nchunks && c < d / CLONE_CHUNK_BYTES; c++)
                                if (!chunk_done(j, c))
                                        chunk_set_done(j, c);
                        if (rc == 0 && c < j->nchunks &&
                            (rc = fault_check(FP_CLONE_WORK, volume_id(j->src))) == 0)
                                rc = chunk_copy(j, c);
                        if (rc < 0)
                                job_fail(j, rc);
                }
                pthread_mutex_unlock(&j->mu);
                c++;
        }
        /* Unbound first: from here on the source's writes cost nothing. */
        job_unbind(j);
        rc = atomic_load(&j->error);
        if (rc == 0 && fdatasync(j->dst_fd) < 0)
                job_fail(j, rc = -errno);
        return rc;
}

void clone_job_progress(const struct clone_job *j, uint64_t *done, uint64_t *total)
{
        *done = atomic_load(&j->ndone);
        *total = j->nchunks;
}

uint64_t clone_job_data_bytes(const struct clone_job *j)
{
        return atomic_load(&j->data_bytes);
}

uint64_t clone_job_preserved_chunks(const struct clone_job *j)
{
        return atomic_load(&j->preserved);
}

int clone_job_error(const struct clone_job *j)
{
        return atomic_load(&j->error);
}

void clone_job_free(struct clone_job *j)
{
        if (!j)
                return;
        job_unbind(j);
        close(j->dst_fd);
        volume_put(j->src);
        pthread_mutex_destroy(&j->mu);
        free(j->done);
        free(j->buf);
        free(j);
}
