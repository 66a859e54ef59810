/* Volumes: sparse raw files, one per EVS disk, in their site's directory.
 *
 * This module is THE I/O choke point of the data plane. Every client I/O
 * (from the NBD server) goes through volume_read/write/zero/flush, which
 *   - refuse I/O on a killed (deleted) volume with -ESHUTDOWN,
 *   - refuse write-type I/O on a read-only volume with -EPERM,
 *   - refuse out-of-range I/O with -EINVAL,
 *   - pass write-type I/O through the volume's *gate* (see fence below),
 *   - hand write-type I/O to the volume's *hook* when one is attached (the
 *     replication engine's mirror of a production disk), else do it locally.
 *
 * The volume_local_* functions do the I/O on this volume's own file only: no
 * gate, no hook, no read-only check. Hooks and replication links use them.
 *
 * Fence: volume_fence_raise() makes new write-type client I/O wait and
 * returns once every write-type I/O that already passed the gate has
 * finished (acknowledged or failed). volume_fence_lower() lets the waiters
 * go. Hooks and the size are only changed while the fence is raised, so a
 * write never sees half a mode switch. Raising is counted: the fence lifts
 * when every raiser has lowered.
 *
 * Reads do not pass the gate: they never change what DR must hold.
 *
 * Ownership: volume_open returns a handle holding one reference;
 * volume_get/volume_put count references; the last put closes the file.
 * The registry holds its own reference to every exported volume.
 *
 * All functions return 0 or a negative errno. */
#ifndef EVSREP_VOLUME_H
#define EVSREP_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct volume;

#define VOL_F_FUA 1u /* write must be durable before it completes */

/* Replication hook on a production volume. The hook performs the local leg
 * itself (volume_local_*) plus whatever the mirror mode requires. */
struct volume_hook_ops {
        int (*write)(void *ctx, struct volume *v, const void *buf, size_t len, uint64_t off,
                     unsigned flags);
        /* punch: the caller allows deallocation (TRIM, or WRITE_ZEROES
         * without NO_HOLE); the data must read back as zeroes either way. */
        int (*zero)(void *ctx, struct volume *v, uint64_t off, uint64_t len, bool punch,
                    unsigned flags);
        int (*flush)(void *ctx, struct volume *v);
};

/* Create a sparse file of size_bytes at path (O_EXCL; no preallocation). */
int volume_file_create(const char *path, uint64_t size_bytes);
/* Grow (never shrink) the file at path to size_bytes. */
int volume_file_grow(const char *path, uint64_t size_bytes);
/* Can the file system of dir hold a file of size_bytes? Sets the size of an
 * unnamed temporary file there (sparse: no data block is written). 0 yes;
 * -EFBIG beyond the file system's maximum file size; another -errno when
 * the probe itself could not run. */
int volume_fs_size_probe(const char *dir, uint64_t size_bytes);

int volume_open(const char *id, const char *site, const char *path, struct volume **out);
void volume_get(struct volume *v);
void volume_put(struct volume *v);

const char *volume_id(const struct volume *v);
const char *volume_site(const struct volume *v);
const char *volume_path(const struct volume *v);
uint64_t volume_size(const struct volume *v);
bool volume_read_only(const struct volume *v);
void volume_set_read_only(struct volume *v, bool ro);
/* After kill every client I/O fails with -ESHUTDOWN (the volume is being
 * deleted); I/O already inside finishes. */
void volume_kill(struct volume *v);
bool volume_killed(const struct volume *v);
/* 0, or the -errno of the last failed local I/O on this volume's file
 * (cleared by volume_clear_error). Drives fault_level "2". */
int volume_last_error(const struct volume *v);
void volume_clear_error(struct volume *v);
/* Health probe of the volume's file by path: 0, or -ENOENT when the file is
 * gone or replaced (its path no longer names the open file), or the
 * -errno of stat. Cheap (one stat + one fstat); drives fault levels. */
int volume_probe(struct volume *v);
/* Every change to what volume_probe answers bumps the reply cache's
 * generation (its path's directories are watched: common/replygen.h). */
bool volume_probe_watched(const struct volume *v);

/* Client I/O (the choke point). */
int volume_read(struct volume *v, void *buf, size_t len, uint64_t off);
/* volume_read without a copy: splice [off, off+len) of the file into the
 * pipe pipe_wr (which must have room for len bytes; it then holds
 * references to page-cache pages). The same checks as volume_read. On
 * error part of the range may already be in the pipe. */
int volume_splice_read(struct volume *v, int pipe_wr, size_t len, uint64_t off);
/* volume_read only when it cannot block on the disk: every byte of the
 * range is in the page cache (or a hole), read with RWF_NOWAIT. 0, or
 * -ESHUTDOWN / -EINVAL as volume_read, or -EAGAIN when the caller must use
 * volume_read instead: part of the range not cached, any error of the read
 * itself (volume_read meets it again), or a fault rule on the volume's
 * reads (volume_read applies it, counted once). */
int volume_read_nowait(struct volume *v, void *buf, size_t len, uint64_t off);
int volume_write(struct volume *v, const void *buf, size_t len, uint64_t off, unsigned flags);
int volume_zero(struct volume *v, uint64_t off, uint64_t len, bool punch, unsigned flags);
int volume_flush(struct volume *v);

/* Local I/O on this volume's own file. */
int volume_local_read(struct volume *v, void *buf, size_t len, uint64_t off);
int volume_local_write(struct volume *v, const void *buf, size_t len, uint64_t off, unsigned flags);
int volume_local_zero(struct volume *v, uint64_t off, uint64_t len, bool punch, unsigned flags);
int volume_local_flush(struct volume *v);
/* Copy [off, off+len) of src's file into dst's file at the same offset in
 * the kernel (copy_file_range: one copy, none through user space), with
 * dst's preserver called first as for a write. 0, or -EOPNOTSUPP when the
 * two files cannot be copied that way (other filesystems, the power-cut
 * simulation): nothing was done, read and write instead. Any other -errno
 * sets *side: VOL_COPY_SRC (src could not be read: FP_VOL_READ),
 * VOL_COPY_DST (dst could not be written: FP_VOL_WRITE; part may have
 * landed) or VOL_COPY_UNKNOWN (a real error the kernel does not place: redo
 * with read and write to learn which side fails). */
enum { VOL_COPY_SRC = 1, VOL_COPY_DST, VOL_COPY_UNKNOWN };
int volume_local_copy(struct volume *src, struct volume *dst, uint64_t off, size_t len, int *side);
/* Next allocated extent at or after off: *data_off, *data_len. Returns
 * -ENXIO when there is no data at or after off (SEEK_DATA semantics). */
int volume_local_next_data(struct volume *v, uint64_t off, uint64_t *data_off, uint64_t *data_len);

/* Preserver (service/clone.c, docs/design/replication.md "DR drill on a
 * clone"): fn runs before every volume_local_write / volume_local_zero on
 * v changes [off, off+len), on the writer's thread; it must not fail the
 * write (it has no way to). Binding (fn != NULL) must happen while no
 * write-type I/O is in flight on v's file; unbinding (fn NULL) waits for
 * calls of fn in progress. One preserver per volume. */
typedef void (*volume_prewrite_fn)(void *ctx, struct volume *v, uint64_t off, uint64_t len);
void volume_set_prewrite(struct volume *v, volume_prewrite_fn fn, void *ctx);
/* Share v's file blocks with the file dst_fd (FICLONE: dst becomes a copy
 * of v's file at this instant). -EOPNOTSUPP, -EXDEV, -EINVAL when the file
 * system cannot. */
int volume_local_reflink_to(struct volume *v, int dst_fd);

/* Fence / gate. volume_fence_raise = volume_fence_close + volume_fence_drain:
 * close stops new writes from entering (they wait), drain waits for the
 * writes already in flight. Raising many volumes at once closes them all
 * before draining any, so their in-flight writes drain in parallel and the
 * fence lasts about the slowest volume's drain, not the sum of them. */
void volume_fence_raise(struct volume *v);
void volume_fence_close(struct volume *v);
void volume_fence_drain(struct volume *v);
void volume_fence_lower(struct volume *v);
bool volume_fenced(const struct volume *v);
/* Hold (on) or release (off) the return of every write-type I/O that
 * finishes meanwhile: its work is done, but volume_write/zero/flush return,
 * so the client is answered, only after the release. A held I/O still
 * counts as in flight (a drain waits for the release). The pause's fence
 * holds them while it switches the modes (engine/fence.c), with its gates
 * closed and not drained. Not nested. */
void volume_ack_hold(struct volume *v, bool on);
/* The current fenced period: the same number from a raise (from no fence)
 * to the last lower, a new one for the next; 0 when not fenced. Lets a
 * check made under the fence be trusted later under the same fence. */
uint64_t volume_fence_epoch(const struct volume *v);
/* Attach (ops != NULL) or detach the hook. Caller holds the fence raised. */
void volume_set_hook(struct volume *v, const struct volume_hook_ops *ops, void *ctx);
/* Is a replication hook attached (the volume is a mirror's production disk)? */
bool volume_hooked(const struct volume *v);
/* Grow to new_size bytes. Caller holds the fence raised. */
int volume_resize(struct volume *v, uint64_t new_size);
/* Cut the file back to old_size after a failed grow (caller holds the fence
 * raised and guarantees nothing was written past old_size). */
int volume_shrink_unused(struct volume *v, uint64_t old_size);

/* Registry of exported volumes (what the NBD server can serve).
 * volreg_add takes its own reference. volreg_lookup returns a new reference
 * (caller puts it) or NULL when no such volume is exported on that site. */
int volreg_add(struct volume *v);
struct volume *volreg_lookup(const char *site, const char *id);
/* Remove from the registry (no new NBD connections) and drop its reference. */
void volreg_remove(const char *id);
/* Call fn for each exported volume of site (under the registry read lock:
 * fn must not call back into the registry). */
void volreg_foreach(const char *site, void (*fn)(struct volume *v, void *arg), void *arg);

#endif
