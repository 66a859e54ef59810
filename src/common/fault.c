/* Fault injection rules and their counters. See fault.h. */
#include <errno.h>

#include "common/fault.h"
#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static const char *const g_names[FP__COUNT] = {
    [FP_VOL_READ] = "vol_read",         [FP_VOL_WRITE] = "vol_write",
    [FP_VOL_ZERO] = "vol_zero",         [FP_VOL_FLUSH] = "vol_flush",
    [FP_VOL_GROW] = "vol_grow",         [FP_META_HDR] = "meta_hdr",
    [FP_META_AL] = "meta_al",           [FP_META_BITS] = "meta_bits",
    [FP_META_SYNC] = "meta_sync",       [FP_STORE_COMMIT] = "store_commit",
    [FP_STORE_BUSY] = "store_busy",     [FP_STORE_WRITE] = "store_write",
    [FP_CLONE_LINK] = "clone_link",     [FP_CLONE_COPY] = "clone_copy",
    [FP_CLONE_WORK] = "clone_work",     [FP_RELEASE_BUMP] = "release_bump",
    [FP_PAUSE_WINDOW] = "pause_window",
};

const char *fault_point_name(enum fault_point p)
{
        return (unsigned)p < FP__COUNT ? g_names[p] : "?";
}

#ifndef EVSREP_FAULT_INJECTION
int fault_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
        return util_pwrite_full(fd, buf, len, off);
}

int fault_fdatasync(int fd)
{
        return fdatasync(fd) < 0 ? -errno : 0;
}

int fault_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
        return fallocate(fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
}
#else

/* ---- power-cut journal ---- */

struct pc_entry {
        int fd;
        dev_t dev;
        ino_t ino;
        uint64_t off, len, old_size;
        void *old;         /* len bytes (zeroes past old_size) */
        uint64_t done_seq; /* the write finished at this tick; 0: in flight */
        struct pc_entry *prev;
};

/* Writers hold the lock shared from saving the old bytes to the end of
 * their write (or from the start of an fdatasync to forgetting what it
 * made durable); the cut holds it exclusively, so it sees no write half
 * done. */
static pthread_rwlock_t g_pc_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t g_pc_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pc_entry *g_pc_top;
static int g_pc_armed = -1;
static uint64_t g_pc_tick; /* under g_pc_mu */

bool fault_power_cut_armed(void)
{
        if (g_pc_armed < 0) {
                const char *e = getenv("EVSREP_POWERCUT");
                g_pc_armed = e && strcmp(e, "1") == 0;
        }
        return g_pc_armed;
}

static struct pc_entry *pc_save(int fd, uint64_t off, uint64_t len)
{
        struct pc_entry *e = calloc(1, sizeof(*e));
        struct stat st;

        if (!e || fstat(fd, &st) < 0 || !(e->old = calloc(1, len ? len : 1))) {
                log_error("power-cut journal: out of memory; the simulation is void");
                abort();
        }
        e->fd = fd;
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        e->off = off;
        e->len = len;
        e->old_size = (uint64_t)st.st_size;
        if (off < e->old_size)
                (void)pread(fd, e->old, (size_t)MIN(len, e->old_size - off), (off_t)off);
        pthread_mutex_lock(&g_pc_mu);
        e->prev = g_pc_top;
        g_pc_top = e;
        pthread_mutex_unlock(&g_pc_mu);
        return e;
}

static void pc_done(struct pc_entry *e)
{
        pthread_mutex_lock(&g_pc_mu);
        e->done_seq = ++g_pc_tick;
        pthread_mutex_unlock(&g_pc_mu);
}

static uint64_t pc_now(void)
{
        uint64_t t;

        pthread_mutex_lock(&g_pc_mu);
        t = g_pc_tick;
        pthread_mutex_unlock(&g_pc_mu);
        return t;
}

/* fdatasync(fd) started at tick `since` succeeded: the writes to that file
 * finished by then are durable. */
static void pc_forget(int fd, uint64_t since)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return;
        pthread_mutex_lock(&g_pc_mu);
        for (struct pc_entry **pp = &g_pc_top; *pp;) {
                struct pc_entry *e = *pp;

                if (e->dev == st.st_dev && e->ino == st.st_ino && e->done_seq &&
                    e->done_seq <= since) {
                        *pp = e->prev;
                        free(e->old);
                        free(e);
                } else {
                        pp = &e->prev;
                }
        }
        pthread_mutex_unlock(&g_pc_mu);
}

int fault_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
        struct pc_entry *e;
        int rc;

        if (!fault_power_cut_armed())
                return util_pwrite_full(fd, buf, len, off);
        pthread_rwlock_rdlock(&g_pc_lock);
        e = pc_save(fd, off, len);
        rc = util_pwrite_full(fd, buf, len, off);
        pc_done(e);
        pthread_rwlock_unlock(&g_pc_lock);
        return rc;
}

int fault_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
        struct pc_entry *e;
        int rc;

        if (!fault_power_cut_armed())
                return fallocate(fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
        pthread_rwlock_rdlock(&g_pc_lock);
        e = pc_save(fd, off, len);
        rc = fallocate(fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
        pc_done(e);
        pthread_rwlock_unlock(&g_pc_lock);
        return rc;
}

int fault_fdatasync(int fd)
{
        uint64_t since;
        int rc;

        if (!fault_power_cut_armed())
                return fdatasync(fd) < 0 ? -errno : 0;
        pthread_rwlock_rdlock(&g_pc_lock);
        since = pc_now();
        rc = fdatasync(fd) < 0 ? -errno : 0;
        if (rc == 0)
                pc_forget(fd, since);
        pthread_rwlock_unlock(&g_pc_lock);
        return rc;
}

void fault_power_cut(void)
{
        unsigned n = 0;

        pthread_rwlock_wrlock(&g_pc_lock); /* no write half done from here on */
        pthread_mutex_lock(&g_pc_mu);
        for (struct pc_entry *e = g_pc_top; e; e = e->prev) {
                struct stat st;

                if (fstat(e->fd, &st) < 0 || st.st_dev != e->dev || st.st_ino != e->ino)
                        continue; /* closed since: its fd names another file now */
                (void)util_pwrite_full(e->fd, e->old, e->len, e->off);
                if (e->off + e->len > e->old_size && (uint64_t)st.st_size > e->old_size)
                        (void)ftruncate(e->fd, (off_t)MAX(e->old_size, e->off));
                n++;
        }
        /* The rolled-back bytes must reach the disk before the "restart". */
        for (struct pc_entry *e = g_pc_top; e; e = e->prev)
                (void)fsync(e->fd);
        log_warn("power cut simulated: %u unsynced write(s) discarded", n);
        _exit(137);
}

/* ---- rules ---- */

#define MAX_RULES 16

struct rule {
        enum fault_point point;
        char id[48];
        uint64_t nth; /* 0: delay rule */
        bool sticky;  /* every call from nth on */
        int err;      /* positive errno */
        uint64_t delay_usec;
        char hold[256]; /* hold rule: block every call while this file exists */
        atomic_uint_least64_t calls;
};

/* Rules are replaced only while no I/O runs (start-up, or a test between
 * steps); readers see a consistent count through the atomic. */
static struct rule g_rules[MAX_RULES];
static atomic_uint g_nrules;
static atomic_uint_least64_t g_hits;
static atomic_bool g_env_done;

static int parse_errno(const char *s, int *err)
{
        static const struct {
                const char *name;
                int err;
        } tab[] = {{"EIO", EIO},
                   {"ENOSPC", ENOSPC},
                   {"EBUSY", EBUSY},
                   {"ENOENT", ENOENT},
                   {"EROFS", EROFS}};

        for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
                if (strcmp(s, tab[i].name) == 0) {
                        *err = tab[i].err;
                        return 0;
                }
        return -EINVAL;
}

static int parse_rule(char *s, struct rule *r)
{
        char *op = strpbrk(s, "=~^"), *at, *end;
        unsigned long long v;
        bool delay, hold;
        int p;

        if (!op)
                return -EINVAL;
        delay = *op == '~';
        hold = *op == '^';
        *op++ = '\0';
        if ((at = strchr(s, '@'))) {
                *at++ = '\0';
                if (strlen(at) >= sizeof(r->id))
                        return -EINVAL;
                snprintf(r->id, sizeof(r->id), "%s", at);
        }
        for (p = 0; p < FP__COUNT; p++)
                if (strcmp(s, g_names[p]) == 0)
                        break;
        if (p == FP__COUNT)
                return -EINVAL;
        r->point = (enum fault_point)p;
        if (hold) {
                if (*op != '/' || strlen(op) >= sizeof(r->hold))
                        return -EINVAL; /* an absolute path */
                snprintf(r->hold, sizeof(r->hold), "%s", op);
                return 0;
        }
        errno = 0;
        v = strtoull(op, &end, 10);
        if (errno || end == op)
                return -EINVAL;
        r->err = EIO;
        if (delay) {
                r->delay_usec = v;
                return *end ? -EINVAL : 0;
        }
        if (v == 0)
                return -EINVAL;
        r->nth = v;
        if (*end == '+') {
                r->sticky = true;
                end++;
        }
        if (*end == '/')
                return parse_errno(end + 1, &r->err);
        return *end ? -EINVAL : 0;
}

int fault_configure(const char *spec)
{
        struct rule tmp[MAX_RULES];
        unsigned n = 0;
        char *copy, *tok, *save = NULL;
        int rc = 0;

        atomic_store(&g_env_done, true);
        memset(tmp, 0, sizeof(tmp));
        if (spec && *spec) {
                if (!(copy = strdup(spec)))
                        return -ENOMEM;
                for (tok = strtok_r(copy, ";,", &save); tok && rc == 0;
                     tok = strtok_r(NULL, ";,", &save)) {
                        if (n == MAX_RULES)
                                rc = -EINVAL;
                        else
                                rc = parse_rule(tok, &tmp[n++]);
                }
                free(copy);
                if (rc < 0)
                        return rc;
        }
        atomic_store(&g_nrules, 0);
        for (unsigned i = 0; i < n; i++) {
                g_rules[i].point = tmp[i].point;
                memcpy(g_rules[i].id, tmp[i].id, sizeof(tmp[i].id));
                g_rules[i].nth = tmp[i].nth;
                g_rules[i].sticky = tmp[i].sticky;
                g_rules[i].err = tmp[i].err;
                g_rules[i].delay_usec = tmp[i].delay_usec;
                memcpy(g_rules[i].hold, tmp[i].hold, sizeof(tmp[i].hold));
                atomic_store(&g_rules[i].calls, 0);
        }
        atomic_store(&g_nrules, n);
        if (n)
                log_warn("fault injection armed: %s", spec);
        return 0;
}

static void env_once(void)
{
        static atomic_flag busy = ATOMIC_FLAG_INIT;
        const char *spec;

        if (atomic_load(&g_env_done) || atomic_flag_test_and_set(&busy))
                return;
        spec = getenv("EVSREP_FAULT");
        if (fault_configure(spec) < 0) {
                log_error("EVSREP_FAULT: cannot parse '%s'", spec);
                abort(); /* a test that asked for faults must not run without them */
        }
}

/* A hold rule: the call waits while the rule's file exists, so a test can
 * keep a step (a flush, say) half way for as long as it needs and then let
 * it go, with no timing in the test. */
static void fault_hold_wait(const struct rule *r, enum fault_point p, const char *id, uint64_t c)
{
        const struct timespec tick = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};

        if (access(r->hold, F_OK) < 0)
                return;
        atomic_fetch_add(&g_hits, 1); /* a held call counts: tests wait for it */
        log_warn("fault hold: %s%s%s call %llu waits while %s exists", g_names[p], id ? " of " : "",
                 id ? id : "", (unsigned long long)c, r->hold);
        while (access(r->hold, F_OK) == 0)
                nanosleep(&tick, NULL);
        log_warn("fault hold: %s%s%s call %llu released", g_names[p], id ? " of " : "",
                 id ? id : "", (unsigned long long)c);
}

int fault_check(enum fault_point p, const char *id)
{
        unsigned n;
        int rc = 0;

        env_once();
        n = atomic_load(&g_nrules);
        for (unsigned i = 0; i < n; i++) {
                struct rule *r = &g_rules[i];
                uint64_t c;

                if (r->point != p || (r->id[0] && (!id || strncmp(id, r->id, strlen(r->id)))))
                        continue;
                c = atomic_fetch_add(&r->calls, 1) + 1;
                if (r->hold[0]) {
                        fault_hold_wait(r, p, id, c);
                        continue;
                }
                if (r->delay_usec) {
                        struct timespec ts = {.tv_sec = (time_t)(r->delay_usec / 1000000),
                                              .tv_nsec = (long)(r->delay_usec % 1000000) * 1000};
                        nanosleep(&ts, NULL);
                        continue;
                }
                if (c == r->nth || (r->sticky && c > r->nth)) {
                        atomic_fetch_add(&g_hits, 1);
                        log_warn("fault injected: %s%s%s call %llu -> %s", g_names[p],
                                 id ? " of " : "", id ? id : "", (unsigned long long)c,
                                 strerror(r->err));
                        rc = -r->err;
                }
        }
        return rc;
}

uint64_t fault_hits(void)
{
        return atomic_load(&g_hits);
}

bool fault_matches(enum fault_point p, const char *id)
{
        unsigned n;

        env_once();
        n = atomic_load(&g_nrules);
        for (unsigned i = 0; i < n; i++) {
                const struct rule *r = &g_rules[i];

                if (r->point == p && (!r->id[0] || (id && !strncmp(id, r->id, strlen(r->id)))))
                        return true;
        }
        return false;
}

#endif
