/* Sparse-file volumes and the client I/O choke point. See volume.h. */
#include "volume/volume.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/replygen.h"
#include "common/util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct volume {
        char id[UTIL_UUID_LEN];
        char site[64];
        char path[4096];
        int fd;
        dev_t dev; /* of fd, for volume_local_copy: fixed while fd is open */
        _Atomic uint64_t size_bytes;
        atomic_int refs;
        atomic_bool read_only;
        atomic_bool killed;
        atomic_int last_error;
        /* Guards last_error's changes and the reply cache's reads of it
         * (rule L, docs/design/control-plane.md "The live epoch"); a leaf. */
        pthread_mutex_t err_mu;
        bool probe_watched; /* replygen_fs_watch(path) held at open */

        /* Gate: writers count themselves in `inflight`; a raised fence makes
         * newcomers wait on `cond`. Both protected by `lock`. */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned inflight;
        unsigned fence_depth;
        bool ack_hold;        /* volume_ack_hold: finished writes wait on `cond` */
        uint64_t fence_epoch; /* raises from 0: one per fenced period */

        const struct volume_hook_ops *hook;
        void *hook_ctx;

        /* Preserver (copy-before-write of a drill clone, service/clone.c):
         * called before a local write-type I/O changes the file. prew_on is
         * the fast-path check; prew_lock keeps fn alive while it runs. */
        atomic_bool prew_on;
        pthread_rwlock_t prew_lock;
        volume_prewrite_fn prew_fn;
        void *prew_ctx;
};

int volume_file_create(const char *path, uint64_t size_bytes)
{
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        int rc = 0;

        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t)size_bytes) < 0 || fsync(fd) < 0) {
                rc = -errno;
                unlink(path);
        }
        close(fd);
        return rc;
}

int volume_fs_size_probe(const char *dir, uint64_t size_bytes)
{
        char tmpl[4200];
        int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        int rc = 0;

        /* File systems without O_TMPFILE: a named file, unlinked at once. */
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
                if (snprintf(tmpl, sizeof(tmpl), "%s/.size-probe-XXXXXX", dir) >= (int)sizeof(tmpl))
                        return -ENAMETOOLONG;
                fd = mkostemp(tmpl, O_CLOEXEC);
                if (fd >= 0)
                        unlink(tmpl);
        }
        if (fd < 0)
                return -errno;
        if (size_bytes > (uint64_t)INT64_MAX)
                rc = -EFBIG;
        else if (ftruncate(fd, (off_t)size_bytes) < 0)
                rc = errno == EINVAL ? -EFBIG : -errno;
        close(fd);
        return rc;
}

int volume_file_grow(const char *path, uint64_t size_bytes)
{
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t)st.st_size > size_bytes)
                return -EINVAL;
        if (fault_check(FP_VOL_GROW, NULL) < 0)
                return -EIO;
        if (ftruncate(fd, (off_t)size_bytes) < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

int volume_open(const char *id, const char *site, const char *path, struct volume **out)
{
        struct volume *v;
        struct stat st;

        if (strlen(id) >= sizeof(v->id) || strlen(site) >= sizeof(v->site) ||
            strlen(path) >= sizeof(v->path))
                return -ENAMETOOLONG;
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->fd = open(path, O_RDWR | O_CLOEXEC);
        if (v->fd < 0 || fstat(v->fd, &st) < 0) {
                int rc = -errno;
                if (v->fd >= 0)
                        close(v->fd);
                free(v);
                return rc;
        }
        strcpy(v->id, id);
        strcpy(v->site, site);
        strcpy(v->path, path);
        v->dev = st.st_dev;
        /* The reply cache: changes to how path resolves bump its
         * generation (common/replygen.h), so a cached reply need not probe
         * this file again. */
        v->probe_watched = replygen_fs_watch(path);
        atomic_store(&v->size_bytes, (uint64_t)st.st_size);
        atomic_store(&v->refs, 1);
        pthread_mutex_init(&v->lock, NULL);
        pthread_mutex_init(&v->err_mu, NULL);
        pthread_cond_init(&v->cond, NULL);
        pthread_rwlock_init(&v->prew_lock, NULL);
        *out = v;
        return 0;
}

void volume_get(struct volume *v)
{
        atomic_fetch_add(&v->refs, 1);
}

void volume_put(struct volume *v)
{
        if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
                return;
        assert(v->inflight == 0);
        close(v->fd);
        pthread_mutex_destroy(&v->lock);
        pthread_mutex_destroy(&v->err_mu);
        pthread_cond_destroy(&v->cond);
        pthread_rwlock_destroy(&v->prew_lock);
        free(v);
}

const char *volume_id(const struct volume *v)
{
        return v->id;
}
const char *volume_site(const struct volume *v)
{
        return v->site;
}
const char *volume_path(const struct volume *v)
{
        return v->path;
}
uint64_t volume_size(const struct volume *v)
{
        return atomic_load(&v->size_bytes);
}
bool volume_read_only(const struct volume *v)
{
        return atomic_load(&v->read_only);
}
void volume_set_read_only(struct volume *v, bool ro)
{
        atomic_store(&v->read_only, ro);
}
void volume_kill(struct volume *v)
{
        atomic_store(&v->killed, true);
}
bool volume_killed(const struct volume *v)
{
        return atomic_load(&v->killed);
}
int volume_last_error(const struct volume *v)
{
        struct volume *w = (struct volume *)v; /* the mutex only */
        int e;

        pthread_mutex_lock(&w->err_mu);
        e = atomic_load(&v->last_error);
        pthread_mutex_unlock(&w->err_mu);
        return e;
}

/* A change of last_error, with the live epoch's bump (rule L); nothing
 * to do, and no lock, when it already holds err (every good flush). */
static void set_error(struct volume *v, int err)
{
        if (atomic_load(&v->last_error) == err)
                return;
        pthread_mutex_lock(&v->err_mu);
        if (atomic_exchange(&v->last_error, err) != err)
                replygen_live_bump();
        pthread_mutex_unlock(&v->err_mu);
}

void volume_clear_error(struct volume *v)
{
        set_error(v, 0);
}

bool volume_probe_watched(const struct volume *v)
{
        return v->probe_watched && replygen_fs_trusted();
}

int volume_probe(struct volume *v)
{
        struct stat a, b;

        if (stat(v->path, &a) < 0)
                return -errno;
        if (fstat(v->fd, &b) < 0)
                return -errno;
        if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
                return -ENOENT;
        return 0;
}

static int note_error(struct volume *v, int rc)
{
        if (rc < 0 && rc != -EINVAL)
                set_error(v, rc);
        return rc;
}

/* ---- local I/O ---- */

int volume_local_read(struct volume *v, void *buf, size_t len, uint64_t off)
{
        int rc = fault_check(FP_VOL_READ, v->id);

        if (rc < 0)
                return note_error(v, rc);
        return note_error(v, util_pread_full(v->fd, buf, len, off));
}

/* ---- preserver ---- */

void volume_set_prewrite(struct volume *v, volume_prewrite_fn fn, void *ctx)
{
        pthread_rwlock_wrlock(&v->prew_lock);
        v->prew_fn = fn;
        v->prew_ctx = ctx;
        atomic_store(&v->prew_on, fn != NULL);
        pthread_rwlock_unlock(&v->prew_lock);
}

static void prewrite(struct volume *v, uint64_t off, uint64_t len)
{
        if (!atomic_load(&v->prew_on) || len == 0)
                return;
        pthread_rwlock_rdlock(&v->prew_lock);
        if (v->prew_fn)
                v->prew_fn(v->prew_ctx, v, off, len);
        pthread_rwlock_unlock(&v->prew_lock);
}

int volume_local_reflink_to(struct volume *v, int dst_fd)
{
        if (ioctl(dst_fd, FICLONE, v->fd) < 0)
                return -errno;
        return 0;
}

int volume_local_write(struct volume *v, const void *buf, size_t len, uint64_t off, unsigned flags)
{
        int rc;

        prewrite(v, off, len);
        rc = fault_check(FP_VOL_WRITE, v->id);

        if (rc < 0 && len >= 1024)
                /* An injected failure tears the write: the first half lands,
                 * as a real device error part way through would leave it. */
                (void)fault_pwrite(v->fd, buf, len / 2 / 512 * 512, off);
        if (rc == 0)
                rc = fault_pwrite(v->fd, buf, len, off);
        if (rc == 0 && (flags & VOL_F_FUA))
                rc = fault_fdatasync(v->fd);
        return note_error(v, rc);
}

static int copy_file(struct volume *src, struct volume *dst, uint64_t off, size_t len)
{
        loff_t in = (loff_t)off, out = (loff_t)off;

        while (len > 0) {
                ssize_t n = copy_file_range(src->fd, &in, dst->fd, &out, len, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) /* 0: src ends early */
                        return n < 0 ? -errno : -EIO;
                len -= (size_t)n;
        }
        return 0;
}

int volume_local_copy(struct volume *src, struct volume *dst, uint64_t off, size_t len, int *side)
{
        int rc;

#if FAULT_INJECTION_BUILT
        if (fault_power_cut_armed())
                return -EOPNOTSUPP; /* it sees only fault_pwrite's writes */
#endif
        /* Across filesystems the kernel refuses (EXDEV): tell before any
         * fault rule counts a call (the devices were read at open: two
         * fstat per 1 MiB piece were a fifth of a sparse resync's calls). */
        if (src->dev != dst->dev)
                return -EOPNOTSUPP;
        if ((rc = fault_check(FP_VOL_READ, src->id)) < 0) {
                *side = VOL_COPY_SRC;
                return note_error(src, rc);
        }
        prewrite(dst, off, len);
        if ((rc = fault_check(FP_VOL_WRITE, dst->id)) < 0) {
                /* Torn, as volume_local_write tears an injected failure. */
                if (len >= 1024)
                        (void)copy_file(src, dst, off, len / 2 / 512 * 512);
                *side = VOL_COPY_DST;
                return note_error(dst, rc);
        }
        rc = copy_file(src, dst, off, len);
        if (rc == -EXDEV || rc == -EOPNOTSUPP || rc == -ENOSYS)
                return -EOPNOTSUPP;
        if (rc < 0)
                *side = VOL_COPY_UNKNOWN;
        return rc;
}

/* Is [off, off+len) a hole already? One SEEK_DATA: far cheaper than a
 * punch, which takes the inode exclusively and a journal handle even when
 * there is nothing to free (the resync punches the holes of every dirty
 * chunk; on DR they are mostly holes already). Unsure (an error): no. */
static bool hole_already(struct volume *v, uint64_t off, uint64_t len)
{
        off_t d = lseek(v->fd, (off_t)off, SEEK_DATA);

        if (d < 0)
                return errno == ENXIO;
        return (uint64_t)d >= off + len;
}

int volume_local_zero(struct volume *v, uint64_t off, uint64_t len, bool punch, unsigned flags)
{
        int mode = punch ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
        int rc = 0;

        if (len == 0)
                return 0;
        prewrite(v, off, len);
        if ((rc = fault_check(FP_VOL_ZERO, v->id)) < 0)
                return note_error(v, rc);
        if (punch && hole_already(v, off, len))
                ; /* nothing to deallocate (FUA below still makes it durable) */
        else
                rc = fault_fallocate(v->fd, mode, off, len);
        if (rc == -EOPNOTSUPP && !punch)
                /* Filesystem without ZERO_RANGE: punching also reads back zeroes. */
                rc = fault_fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
        if (rc == 0 && (flags & VOL_F_FUA))
                rc = fault_fdatasync(v->fd);
        return note_error(v, rc);
}

int volume_local_flush(struct volume *v)
{
        int rc = fault_check(FP_VOL_FLUSH, v->id);

        if (rc < 0)
                return note_error(v, rc);
        rc = fault_fdatasync(v->fd);
        if (rc == 0)
                set_error(v, 0); /* the file answers again: fault 2 is over */
        return note_error(v, rc);
}

int volume_local_next_data(struct volume *v, uint64_t off, uint64_t *data_off, uint64_t *data_len)
{
        off_t d = lseek(v->fd, (off_t)off, SEEK_DATA);
        off_t h;

        if (d < 0)
                return errno == ENXIO ? -ENXIO : note_error(v, -errno);
        h = lseek(v->fd, d, SEEK_HOLE);
        if (h < 0)
                return note_error(v, -errno);
        *data_off = (uint64_t)d;
        *data_len = (uint64_t)(h - d);
        return 0;
}

/* ---- gate and fence ---- */

static int gate_enter(struct volume *v)
{
        pthread_mutex_lock(&v->lock);
        while (v->fence_depth > 0)
                pthread_cond_wait(&v->cond, &v->lock);
        v->inflight++;
        pthread_mutex_unlock(&v->lock);
        return 0;
}

static void gate_exit(struct volume *v)
{
        pthread_mutex_lock(&v->lock);
        assert(v->inflight > 0);
        /* Still counted while held: a fence raised meanwhile (a node's
         * self-fence) drains it, so it is not answered after that fence. */
        while (v->ack_hold)
                pthread_cond_wait(&v->cond, &v->lock);
        if (--v->inflight == 0 && v->fence_depth > 0)
                pthread_cond_broadcast(&v->cond);
        pthread_mutex_unlock(&v->lock);
}

void volume_ack_hold(struct volume *v, bool on)
{
        pthread_mutex_lock(&v->lock);
        assert(v->ack_hold != on);
        v->ack_hold = on;
        if (!on)
                pthread_cond_broadcast(&v->cond);
        pthread_mutex_unlock(&v->lock);
}

void volume_fence_close(struct volume *v)
{
        pthread_mutex_lock(&v->lock);
        if (v->fence_depth++ == 0)
                v->fence_epoch++;
        pthread_mutex_unlock(&v->lock);
}

void volume_fence_drain(struct volume *v)
{
        pthread_mutex_lock(&v->lock);
        assert(v->fence_depth > 0);
        while (v->inflight > 0)
                pthread_cond_wait(&v->cond, &v->lock);
        pthread_mutex_unlock(&v->lock);
}

void volume_fence_raise(struct volume *v)
{
        volume_fence_close(v);
        volume_fence_drain(v);
}

void volume_fence_lower(struct volume *v)
{
        pthread_mutex_lock(&v->lock);
        assert(v->fence_depth > 0);
        if (--v->fence_depth == 0)
                pthread_cond_broadcast(&v->cond);
        pthread_mutex_unlock(&v->lock);
}

uint64_t volume_fence_epoch(const struct volume *v)
{
        struct volume *mv = (struct volume *)v;
        uint64_t e;

        pthread_mutex_lock(&mv->lock);
        e = mv->fence_depth > 0 ? mv->fence_epoch : 0;
        pthread_mutex_unlock(&mv->lock);
        return e;
}

bool volume_fenced(const struct volume *v)
{
        struct volume *mv = (struct volume *)v;
        bool f;

        pthread_mutex_lock(&mv->lock);
        f = mv->fence_depth > 0;
        pthread_mutex_unlock(&mv->lock);
        return f;
}

void volume_set_hook(struct volume *v, const struct volume_hook_ops *ops, void *ctx)
{
        assert(volume_fenced(v));
        pthread_mutex_lock(&v->lock); /* for volume_hooked; writers are fenced out */
        v->hook = ops;
        v->hook_ctx = ctx;
        pthread_mutex_unlock(&v->lock);
}

bool volume_hooked(const struct volume *v)
{
        struct volume *mv = (struct volume *)v;
        bool h;

        pthread_mutex_lock(&mv->lock);
        h = mv->hook != NULL;
        pthread_mutex_unlock(&mv->lock);
        return h;
}

int volume_resize(struct volume *v, uint64_t new_size)
{
        assert(volume_fenced(v));
        int rc;

        if (new_size < volume_size(v))
                return -EINVAL;
        if ((rc = fault_check(FP_VOL_GROW, v->id)) < 0)
                return note_error(v, rc);
        if (ftruncate(v->fd, (off_t)new_size) < 0 || fsync(v->fd) < 0)
                return note_error(v, -errno);
        atomic_store(&v->size_bytes, new_size);
        return 0;
}

int volume_shrink_unused(struct volume *v, uint64_t old_size)
{
        assert(volume_fenced(v));
        if (old_size >= volume_size(v))
                return 0;
        if (ftruncate(v->fd, (off_t)old_size) < 0 || fsync(v->fd) < 0)
                return note_error(v, -errno);
        atomic_store(&v->size_bytes, old_size);
        return 0;
}

/* ---- client I/O ---- */

static int check_range(struct volume *v, uint64_t off, uint64_t len)
{
        uint64_t end;

        if (ck_add(off, len, &end) || end > volume_size(v))
                return -EINVAL;
        return 0;
}

int volume_read(struct volume *v, void *buf, size_t len, uint64_t off)
{
        if (volume_killed(v))
                return -ESHUTDOWN;
        if (check_range(v, off, len))
                return -EINVAL;
        return volume_local_read(v, buf, len, off);
}

int volume_read_nowait(struct volume *v, void *buf, size_t len, uint64_t off)
{
        struct iovec iov = {.iov_base = buf, .iov_len = len};
        ssize_t n;

        if (volume_killed(v))
                return -ESHUTDOWN;
        if (check_range(v, off, len))
                return -EINVAL;
        /* A rule (fault, delay, hold) on this read: volume_read applies it,
         * counted once, where it may block. */
        if (fault_matches(FP_VOL_READ, v->id))
                return -EAGAIN;
        do
                n = preadv2(v->fd, &iov, 1, (off_t)off, RWF_NOWAIT);
        while (n < 0 && errno == EINTR);
        /* Not all cached, short, unsupported or a real error: the caller's
         * volume_read does it again (and meets the error there). */
        return n == (ssize_t)len ? 0 : -EAGAIN;
}

int volume_splice_read(struct volume *v, int pipe_wr, size_t len, uint64_t off)
{
        loff_t pos = (loff_t)off;
        int rc;

        if (volume_killed(v))
                return -ESHUTDOWN;
        if (check_range(v, off, len))
                return -EINVAL;
        if ((rc = fault_check(FP_VOL_READ, v->id)) < 0)
                return note_error(v, rc);
        while (len > 0) {
                /* NONBLOCK on the pipe side only: a pipe that cannot hold
                 * the range fails (EAGAIN) instead of blocking for ever. */
                ssize_t n =
                    splice(v->fd, &pos, pipe_wr, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return -EIO;
                if (n <= 0) /* 0: the file ends early, it cannot hold the range */
                        return note_error(v, n < 0 ? -errno : -EIO);
                len -= (size_t)n;
        }
        return 0;
}

int volume_write(struct volume *v, const void *buf, size_t len, uint64_t off, unsigned flags)
{
        int rc;

        if (volume_killed(v))
                return -ESHUTDOWN;
        if (volume_read_only(v))
                return -EPERM;
        gate_enter(v);
        /* Re-check under the gate: a fence may have flipped these. */
        if (volume_read_only(v))
                rc = -EPERM;
        else if (check_range(v, off, len))
                rc = -EINVAL;
        else if (v->hook)
                rc = v->hook->write(v->hook_ctx, v, buf, len, off, flags);
        else
                rc = volume_local_write(v, buf, len, off, flags);
        gate_exit(v);
        return rc;
}

int volume_zero(struct volume *v, uint64_t off, uint64_t len, bool punch, unsigned flags)
{
        int rc;

        if (volume_killed(v))
                return -ESHUTDOWN;
        if (volume_read_only(v))
                return -EPERM;
        gate_enter(v);
        if (volume_read_only(v))
                rc = -EPERM;
        else if (check_range(v, off, len))
                rc = -EINVAL;
        else if (v->hook)
                rc = v->hook->zero(v->hook_ctx, v, off, len, punch, flags);
        else
                rc = volume_local_zero(v, off, len, punch, flags);
        gate_exit(v);
        return rc;
}

int volume_flush(struct volume *v)
{
        int rc;

        if (volume_killed(v))
                return -ESHUTDOWN;
        gate_enter(v);
        if (v->hook)
                rc = v->hook->flush(v->hook_ctx, v);
        else
                rc = volume_local_flush(v);
        gate_exit(v);
        return rc;
}
