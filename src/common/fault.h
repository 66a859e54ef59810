/* Fault injection for tests, the way SQLite tests its I/O errors: every
 * fallible step of the data and control plane asks fault_check() first, and
 * a rule can make its Nth call fail (or every call from the Nth on), or
 * delay every call. Design and the list of points: docs/design/faults.md.
 *
 * Compiled in only with -DEVSREP_FAULT_INJECTION (CMake option
 * EVSREP_FAULT_INJECTION, on in scripts/test.sh, off for scripts/run.sh and
 * release builds): without it fault_check() is an inline 0 and no rule can
 * be set, so a release daemon has no way to reach this code.
 *
 * Rules (environment EVSREP_FAULT, or fault_configure()):
 *   rules := rule { (';' | ',') rule }
 *   rule  := point ['@' id-prefix] '=' N ['+'] ['/' ERRNO]   fail call N (N.. with '+')
 *          | point ['@' id-prefix] '~' USEC                   sleep USEC on every call
 *          | point ['@' id-prefix] '^' /PATH                  every call waits while PATH exists
 *                                                            (a held call counts in fault_hits)
 * point is a name from fault_point_name(); id-prefix restricts the rule to
 * calls whose object id (volume id, pair id) starts with it. ERRNO is one
 * of EIO (default), ENOSPC, EBUSY, ENOENT, EROFS. Calls are counted per
 * rule, from the moment the rule is set. */
#ifndef EVSREP_COMMON_FAULT_H
#define EVSREP_COMMON_FAULT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fault_point {
        FP_VOL_READ,     /* volume_local_read: a volume's file (production, or DR via link) */
        FP_VOL_WRITE,    /* volume_local_write */
        FP_VOL_ZERO,     /* volume_local_zero */
        FP_VOL_FLUSH,    /* volume_local_flush */
        FP_VOL_GROW,     /* volume_resize, volume_file_grow */
        FP_META_HDR,     /* meta file: header block write (id: pair id) */
        FP_META_AL,      /* meta file: activity-log block write */
        FP_META_BITS,    /* meta file: bitmap page write */
        FP_META_SYNC,    /* meta file: fdatasync */
        FP_STORE_COMMIT, /* store_tx_commit: the commit fails with an I/O error */
        FP_STORE_BUSY,   /* store_tx_begin: SQLITE_BUSY (the store stays busy) */
        FP_STORE_WRITE,  /* one row write outside a transaction (id: the row's id) */
        FP_CLONE_LINK,   /* drill clone: the FICLONE attempt (id: DR volume id) */
        FP_CLONE_COPY,   /* drill clone: one chunk copy to the clone (id: DR volume id) */
        FP_CLONE_WORK,   /* drill clone: the worker, before each chunk it copies (id: same) */
        FP_RELEASE_BUMP, /* store_group_release_bump: the release record (id: group id) */
        FP_PAUSE_WINDOW, /* fence_pause, inside the fence, before switching each member but
                            the first it selected (id: pair id); only delay and hold
                            rules mean anything */
        FP__COUNT
};

const char *fault_point_name(enum fault_point p);

/* Power-cut simulation (test builds, EVSREP_POWERCUT=1 at start): every
 * write to a volume or meta file through these wrappers first saves the
 * bytes it overwrites; a successful fdatasync forgets them (they are
 * durable). fault_power_cut() puts back every saved range, newest first -
 * the disk as a power cut would leave it if nothing unsynced had reached
 * the platter - and ends the process with exit code 137. Without the
 * simulation (or in a release build) the wrappers are the plain calls. */
int fault_pwrite(int fd, const void *buf, size_t len, uint64_t off);
int fault_fdatasync(int fd);
int fault_fallocate(int fd, int mode, uint64_t off, uint64_t len);

#ifdef EVSREP_FAULT_INJECTION
#define FAULT_INJECTION_BUILT 1
/* Roll back every unsynced write and _exit(137). Never returns. */
void fault_power_cut(void) __attribute__((noreturn));
bool fault_power_cut_armed(void);
/* 0, or the -errno the matching rule injects (after its delay, if any). */
int fault_check(enum fault_point p, const char *id);
/* Replace every rule with spec (NULL or "": none). -EINVAL on a bad spec
 * (the old rules stay). */
int fault_configure(const char *spec);
/* Faults injected so far (every point, every rule). */
uint64_t fault_hits(void);
/* Does any rule (fault, delay or hold) apply to point p of id? Counts no
 * call: for a fast path that must take the checked path when one does. */
bool fault_matches(enum fault_point p, const char *id);
#else
#define FAULT_INJECTION_BUILT 0
static inline int fault_check(enum fault_point p, const char *id)
{
        (void)p;
        (void)id;
        return 0;
}
static inline int fault_configure(const char *spec)
{
        return spec && *spec ? -ENOTSUP : 0;
}
static inline uint64_t fault_hits(void)
{
        return 0;
}
static inline bool fault_matches(enum fault_point p, const char *id)
{
        (void)p;
        (void)id;
        return false;
}
#endif

#endif
