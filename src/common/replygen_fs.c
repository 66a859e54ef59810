/* The reply cache's file watch (replygen.h; docs/design/control-plane.md
 * "Reply cache", "Volume files"): a reply shows the result of
 * volume_probe (does the file's path still name the open file?), which a
 * rename, unlink or link under the daemon changes with no store write and
 * no engine event. Instead of probing every file again at every hit, the
 * directory that holds a volume file and every directory on the way to it
 * are watched with inotify; an event that can change how the path resolves
 * bumps the generation. Events are queued by the kernel inside the syscall
 * that makes the change, and every lookup drains them first (under a mutex,
 * so a drainer's bump precedes anyone's later generation check): a change
 * made before a GET was sent is always seen by it.
 *
 * Not watched (replygen_fs_watch says false, and that file is probed at
 * every hit as before): a path with a symbolic link on it (its target's
 * directories would need watching too), a file system other than a local
 * one (a network file system's changes from other hosts make no event),
 * or no inotify watch left. After a watch is lost (its directory deleted,
 * moved or unmounted), nothing is trusted any more: every file is probed
 * at every hit until the daemon restarts. An overflow of the event queue
 * only bumps (events were lost; the watches stand). A thread drains as
 * events arrive, so the queue does not fill between lookups. */
#include "common/replygen.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define WATCH_MASK                                                                                 \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF |        \
         IN_MOVE_SELF | IN_ONLYDIR)

/* One watched directory: any entry matters (a site directory), or only
 * the entries named (an ancestor: the next component of a path). */
struct dirwatch {
        int wd;
        bool any;
        char **names;
        size_t nnames;
        struct dirwatch *next;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = -1;
static struct dirwatch *g_watches;
static atomic_bool g_trusted = true;
static atomic_bool g_armed;   /* g_fd is open: there is something to drain */
static atomic_bool g_enabled; /* replygen_fs_enable: there is a cache to serve */

static void *drain_main(void *arg);

void replygen_fs_enable(bool on)
{
        atomic_store(&g_enabled, on);
}

bool replygen_fs_trusted(void)
{
        return atomic_load(&g_trusted);
}

/* Local file systems whose every change goes through this kernel. */
static bool fs_local(const char *dir)
{
        static const long ok[] = {
            0xEF53,     /* ext2/3/4 */
            0x58465342, /* xfs */
            0x9123683E, /* btrfs */
            0x01021994, /* tmpfs */
            0x2FC12FC1, /* zfs */
            0x794C7630, /* overlayfs */
            0x858458F6, /* ramfs */
            0xF2F52010, /* f2fs */
        };
        struct statfs sf;

        if (statfs(dir, &sf) < 0)
                return false;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                if ((long)sf.f_type == ok[i])
                        return true;
        return false;
}

static struct dirwatch *find_locked(int wd)
{
        for (struct dirwatch *w = g_watches; w; w = w->next)
                if (w->wd == wd)
                        return w;
        return NULL;
}

/* Watch dir; name: the entry that matters, or NULL for any. */
static int watch_locked(const char *dir, const char *name)
{
        struct dirwatch *w;
        struct stat st;
        int wd;

        /* The directory itself must not be a symbolic link. */
        if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if ((wd = inotify_add_watch(g_fd, dir, WATCH_MASK | IN_MASK_ADD)) < 0)
                return -errno;
        if (!(w = find_locked(wd))) {
                if (!(w = calloc(1, sizeof(*w))))
                        return -ENOMEM;
                w->wd = wd;
                w->next = g_watches;
                g_watches = w;
        }
        if (!name) {
                w->any = true;
                return 0;
        }
        for (size_t i = 0; i < w->nnames; i++)
                if (strcmp(w->names[i], name) == 0)
                        return 0;
        {
                char **nn = realloc(w->names, (w->nnames + 1) * sizeof(*nn));
                char *dup = strdup(name);

                if (!nn || !dup) {
                        free(dup);
                        if (nn)
                                w->names = nn;
                        return -ENOMEM;
                }
                w->names = nn;
                w->names[w->nnames++] = dup;
        }
        return 0;
}

bool replygen_fs_watch(const char *path)
{
        char buf[PATH_MAX], dir[PATH_MAX];
        struct stat st;
        char *slash, *p;
        int rc = 0;

        if (!atomic_load(&g_enabled) || !path || !*path || strlen(path) >= sizeof(buf) ||
            !replygen_fs_trusted())
                return false;
        /* The file itself must not be a symbolic link either. */
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        snprintf(buf, sizeof(buf), "%s", path);
        slash = strrchr(buf, '/');
        pthread_mutex_lock(&g_mu);
        if (g_fd < 0) {
                pthread_t t;
                pthread_attr_t a;

                if ((g_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
                        pthread_mutex_unlock(&g_mu);
                        return false;
                }
                pthread_attr_init(&a);
                pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
                pthread_create(&t, &a, drain_main, (void *)(intptr_t)g_fd);
                pthread_attr_destroy(&a);
        }
        atomic_store(&g_armed, true);
        /* The file's directory: any entry; then each ancestor up to "/"
         * (absolute) or "." (relative: resolved from the working
         * directory's inode, whatever its path), naming the next one. */
        if (!slash) {
                snprintf(dir, sizeof(dir), ".");
        } else {
                *slash = '\0';
                snprintf(dir, sizeof(dir), "%s", slash == buf ? "/" : buf);
        }
        if (!fs_local(dir))
                rc = -EXDEV;
        if (rc == 0)
                rc = watch_locked(dir, NULL);
        while (rc == 0 && slash && slash != buf) {
                /* buf is "a/b/c" for dir "a/b/c": cut the last component */
                char *name;

                p = strrchr(buf, '/');
                if (!p) { /* "c" relative: parent is "." */
                        rc = watch_locked(".", buf);
                        break;
                }
                name = p + 1;
                if (p == buf) { /* "/c": parent is "/" */
                        if (*name)
                                rc = watch_locked("/", name);
                        break;
                }
                *p = '\0';
                if (*name)
                        rc = watch_locked(buf, name);
        }
        pthread_mutex_unlock(&g_mu);
        return rc == 0;
}

/* Drains as events arrive, so the kernel's queue does not fill between
 * lookups (other names in a busy ancestor such as /tmp make events too). */
static void *drain_main(void *arg)
{
        struct pollfd pfd = {.fd = (int)(intptr_t)arg, .events = POLLIN};

        for (;;) {
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        return NULL;
                replygen_fs_drain();
        }
}

static void untrust(void)
{
        atomic_store(&g_trusted, false);
}

void replygen_fs_drain(void)
{
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool bump = false;
        ssize_t n;

        if (!atomic_load(&g_armed))
                return;
        pthread_mutex_lock(&g_mu);
        while ((n = read(g_fd, buf, sizeof(buf))) > 0) {
                for (char *p = buf; p < buf + n;) {
                        struct inotify_event *ev = (struct inotify_event *)p;
                        struct dirwatch *w = find_locked(ev->wd);

                        p += sizeof(*ev) + ev->len;
                        if (ev->mask & IN_Q_OVERFLOW) {
                                /* events were lost, maybe one saying a
                                 * watch is gone: everything cached before
                                 * now is stale, and no watch is trusted */
                                untrust();
                                bump = true;
                                continue;
                        }
                        if (ev->mask & (IN_IGNORED | IN_UNMOUNT | IN_DELETE_SELF | IN_MOVE_SELF)) {
                                /* a watch may be gone or moved: trust no
                                 * watch from now on */
                                untrust();
                                bump = true;
                                continue;
                        }
                        if (!w || w->any || ev->len == 0) {
                                bump = true;
                                continue;
                        }
                        for (size_t i = 0; i < w->nnames; i++)
                                if (strcmp(w->names[i], ev->name) == 0)
                                        bump = true;
                }
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                untrust();
                bump = true;
        }
        /* Inside the mutex: a concurrent drainer that found the queue
         * empty checks the generation only after this bump. */
        if (bump)
                replygen_bump();
        pthread_mutex_unlock(&g_mu);
}
