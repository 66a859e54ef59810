/* This node's registration, its lease and the self-fence
 * (docs/design/multi-site.md "Leases", "Self-fence as built").
 *
 * Start: load (or create) the cluster key; refuse to start while another
 * node's row with a valid lease names one of this node's AZs; register
 * (upsert the row with a fresh lease); start the lease thread. The thread
 * renews every lease_ms / 4 with store_node_renew(name, generation) (after a
 * failure every 500 ms), through a store handle of its own when the store is
 * shared, and keeps lease_until (store clock) and t0, the monotonic instant
 * the last successful renewal was sent.
 *
 * Self-fence (shared store only): the watchdog thread sleeps until the fence
 * point F = t0 + lease * 0.99 - g - lease / 2 (g = min(1 s, lease / 12)).
 * Reached without a newer success, it raises the fence on every production
 * disk of a running mirror (an exported volume of this node's AZs with a
 * replication hook): nothing more is acknowledged on them. A later success
 * lowers those fences; -ESTALE (another node took the roles) makes the disks
 * read-only and then lowers the fences, so every waiting write fails.
 *
 * Stop: cluster_node_quiesce (before the NBD listeners stop) makes a fence
 * fail its waiting writes rather than hold them; cluster_node_stop ends the
 * threads, lowers what is left, and releases the lease (lease_until = 0) so
 * that a failover elsewhere need not wait for it to lapse.
 *
 * Locking: fence_mu (the fenced set; held across raises and lowers, which
 * wait for writes in flight) -> g.mu (lease fields, read by metrics and the
 * API; never held across a store call or a fence) -> the volume registry ->
 * a volume's lock. Nothing here is on a data path. */
#include "cluster/cluster.h"

#include "common/log.h"
#include "common/util.h"
#include "volume/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
        const struct evsrep_config *cfg;
        struct store *store;
        struct store *lease_store; /* own connection (shared store), else == store */
        char name[STORE_NODE_NAME_LEN];
        int64_t generation;
        pthread_mutex_t mu;
        pthread_cond_t cond;  /* lease thread: stop */
        pthread_cond_t wcond; /* watchdog (CLOCK_MONOTONIC): stop, new t0 */
        pthread_t thread, watchdog;
        bool running, watchdog_running, stopping;
        bool self_fence; /* on with a shared store */
        /* guarded by mu */
        int64_t lease_until;     /* store clock, usec */
        int64_t last_ok_mono;    /* monotonic usec the last successful renewal was sent (t0) */
        int64_t store_skew_usec; /* store clock - local clock at the last renewal */
        bool half_reported;
        bool fenced;     /* the self-fence is up */
        bool roles_lost; /* a renewal said -ESTALE */
        bool quiescing;  /* stopping: a fence fails waiting writes at once */
        uint64_t self_fences_total;
        /* guarded by fence_mu */
        pthread_mutex_t fence_mu;
        struct volume **fvols; /* fenced by us, each referenced */
        size_t fn, fcap;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cond = PTHREAD_COND_INITIALIZER,
       .fence_mu = PTHREAD_MUTEX_INITIALIZER};

/* ---------------------------------------------------------------- key */

static int key_create(const char *path, char *err, size_t errlen)
{
        uint8_t rnd[CLUSTER_KEY_BYTES];
        char hex[2 * CLUSTER_KEY_BYTES + 2];
        int fd, rc;

        if ((rc = util_random(rnd, sizeof(rnd))) < 0)
                return rc;
        util_hex(rnd, sizeof(rnd), hex);
        strcat(hex, "\n");
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                rc = -errno;
                snprintf(err, errlen, "cannot create cluster key file %s: %s", path, strerror(-rc));
                return rc;
        }
        if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fsync(fd) != 0) {
                rc = errno ? -errno : -EIO;
                close(fd);
                unlink(path);
                snprintf(err, errlen, "cannot write cluster key file %s: %s", path, strerror(-rc));
                return rc;
        }
        close(fd);
        return 0;
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int cluster_key_load(const char *path, uint8_t key[CLUSTER_KEY_BYTES], bool *created, char *err,
                     size_t errlen)
{
        char buf[256];
        struct stat sb;
        ssize_t n;
        int fd, rc;

        *created = false;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                if ((rc = key_create(path, err, errlen)) < 0 && rc != -EEXIST)
                        return rc;
                *created = rc == 0;
                fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        if (fd < 0) {
                rc = -errno;
                snprintf(err, errlen, "cannot open cluster key file %s: %s", path, strerror(-rc));
                return rc;
        }
        /* The key lets its holder act as any node: same rule as the tokens
         * file, checked on the open file. */
        if (fstat(fd, &sb) < 0 || (sb.st_mode & (S_IRWXG | S_IRWXO))) {
                snprintf(err, errlen,
                         "cluster key file %s is accessible by group or others (mode %04o); "
                         "make it private to the daemon's user: chmod 600 %s",
                         path, (unsigned)(sb.st_mode & 07777), path);
                close(fd);
                return -EPERM;
        }
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                n = 0;
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        if (strlen(buf) != 2 * CLUSTER_KEY_BYTES) {
                snprintf(err, errlen, "cluster key file %s: expected %d hex digits on one line",
                         path, 2 * CLUSTER_KEY_BYTES);
                return -EINVAL;
        }
        for (int i = 0; i < CLUSTER_KEY_BYTES; i++) {
                int hi = hex_digit(buf[2 * i]), lo = hex_digit(buf[2 * i + 1]);

                if (hi < 0 || lo < 0) {
                        snprintf(err, errlen, "cluster key file %s: not hex digits", path);
                        return -EINVAL;
                }
                key[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

/* ---------------------------------------------------------------- AZ sets */

/* Is az an element of the comma list azs? */
static bool az_in_list(const char *azs, const char *az)
{
        size_t n = strlen(az);

        for (const char *p = azs; *p;) {
                size_t len = strcspn(p, ",");
                if (len == n && strncmp(p, az, n) == 0)
                        return true;
                p += len;
                if (*p == ',')
                        p++;
        }
        return false;
}

bool cluster_az_local(const char *az)
{
        return g.cfg && az && config_site(g.cfg, az) != NULL;
}

const char *cluster_node_name(void)
{
        return g.name;
}

bool cluster_node_self_fenced_now(double *lease_left_sec, char *azs, size_t cap)
{
        bool fenced;
        int64_t left = 0;
        size_t off = 0;

        pthread_mutex_lock(&g.mu);
        fenced = g.running && g.fenced && !g.roles_lost;
        if (fenced)
                left = g.last_ok_mono + (int64_t)g.cfg->lease_ms * 1000 - util_mono_usec();
        pthread_mutex_unlock(&g.mu);
        if (!fenced)
                return false;
        *lease_left_sec = left > 0 ? (double)left / 1e6 : 0;
        if (cap)
                azs[0] = '\0';
        for (int i = 0; i < g.cfg->nsites && off < cap; i++)
                off += (size_t)snprintf(azs + off, cap - off, "%s%s", i ? "," : "",
                                        g.cfg->sites[i].name);
        return true;
}

int cluster_az_owner(const char *az, struct store_node *out, double *remaining_sec)
{
        struct store_node *list = NULL;
        size_t n = 0;
        int64_t now;
        int rc = -ENOENT, r;

        if (!g.store || !az)
                return -ENOENT;
        if ((r = store_node_list(g.store, &list, &n)) < 0 ||
            (r = store_now_usec(g.store, &now)) < 0) {
                free(list);
                return r == -ENOMEM ? -ENOMEM : -EAGAIN;
        }
        for (size_t i = 0; i < n; i++) {
                if (strcmp(list[i].name, g.name) == 0 || !az_in_list(list[i].azs, az))
                        continue;
                /* Prefer a node with a valid lease over a stale row naming
                 * the same AZ (a node that was moved). */
                if (rc == 0 && list[i].lease_until <= now)
                        continue;
                *out = list[i];
                if (remaining_sec)
                        *remaining_sec = (double)(list[i].lease_until - now) / 1e6;
                rc = list[i].lease_until > now ? 0 : -EHOSTDOWN;
        }
        free(list);
        return rc;
}

/* ---------------------------------------------------------------- row */

static void fill_row(const struct evsrep_config *cfg, int http_port, struct store_node *n)
{
        json_t *nbd = json_object();
        char *text;
        size_t len = 0;

        memset(n, 0, sizeof(*n));
        snprintf(n->name, sizeof(n->name), "%s", cfg->node_name);
        for (int i = 0; i < cfg->nsites; i++) {
                char hp[CONFIG_HOST_LEN + 16];

                len +=
                    (size_t)snprintf(n->azs + len, len < sizeof(n->azs) ? sizeof(n->azs) - len : 0,
                                     "%s%s", i ? "," : "", cfg->sites[i].name);
                snprintf(hp, sizeof(hp), "%s:%d", cfg->sites[i].nbd_host, cfg->sites[i].nbd_port);
                if (nbd)
                        json_object_set_new(nbd, cfg->sites[i].name, json_string(hp));
        }
        if (cfg->internal_url_auto && http_port > 0) {
                bool v6 = strchr(cfg->listen_host, ':') != NULL;

                snprintf(n->api_url, sizeof(n->api_url), "%s://%s%s%s:%d",
                         cfg->tls_cert[0] ? "https" : "http", v6 ? "[" : "", cfg->listen_host,
                         v6 ? "]" : "", http_port);
        } else {
                snprintf(n->api_url, sizeof(n->api_url), "%s", cfg->internal_url);
        }
        text = nbd ? json_dumps(nbd, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        snprintf(n->nbd_json, sizeof(n->nbd_json), "%s", text ? text : "{}");
        free(text);
        json_decref(nbd);
}

/* Another node with a valid lease on one of our AZs: refuse. */
static int check_conflicts(const struct evsrep_config *cfg, struct store *st, char *err,
                           size_t errlen)
{
        struct store_node *list = NULL;
        size_t n = 0;
        int64_t now;
        int rc;

        if ((rc = store_node_list(st, &list, &n)) < 0 || (rc = store_now_usec(st, &now)) < 0) {
                snprintf(err, errlen, "cannot read the nodes table: %s", strerror(-rc));
                free(list);
                return rc;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
                if (strcmp(list[i].name, cfg->node_name) == 0 || list[i].lease_until <= now)
                        continue;
                for (int s = 0; s < cfg->nsites; s++) {
                        if (!az_in_list(list[i].azs, cfg->sites[s].name))
                                continue;
                        snprintf(err, errlen,
                                 "availability zone %s is served by node %s, whose lease is "
                                 "valid for %.1f more seconds; stop node %s (or remove %s from "
                                 "this node's availability_zones), or wait for its lease to lapse",
                                 cfg->sites[s].name, list[i].name,
                                 (double)(list[i].lease_until - now) / 1e6, list[i].name,
                                 cfg->sites[s].name);
                        rc = -EEXIST;
                        break;
                }
        }
        free(list);
        return rc;
}

/* ---------------------------------------------------------------- self-fence */

#define RETRY_USEC    500000 /* renewal retry after a failure; rescan while fenced */
#define CLOCK_EPS_PPM 10000  /* 1 %: rate difference of the node's and store's clocks */

/* g: the margin for the fence to complete, min(1 s, lease / 12). */
static int64_t fence_margin_usec(void)
{
        int64_t g12 = (int64_t)g.cfg->lease_ms * 1000 / 12;

        return g12 < 1000000 ? g12 : 1000000;
}

/* D: by then this node must acknowledge nothing more (store time: before
 * lease_until). mu held. */
static int64_t lease_deadline_mono(void)
{
        int64_t lease = (int64_t)g.cfg->lease_ms * 1000;

        return g.last_ok_mono + lease - lease * CLOCK_EPS_PPM / 1000000 - fence_margin_usec();
}

/* F = D - lease / 2: the watchdog raises the fence here. mu held. */
static int64_t fence_point_mono(void)
{
        return lease_deadline_mono() - (int64_t)g.cfg->lease_ms * 1000 / 2;
}

struct scan {
        struct volume **v;
        size_t n, cap;
        bool oom;
};

static bool fenced_has(struct volume *v)
{
        for (size_t i = 0; i < g.fn; i++)
                if (g.fvols[i] == v)
                        return true;
        return false;
}

static void scan_one(struct volume *v, void *arg)
{
        struct scan *sc = arg;

        if (!volume_hooked(v) || fenced_has(v))
                return;
        if (sc->n == sc->cap) {
                size_t cap = sc->cap ? sc->cap * 2 : 16;
                struct volume **nv = realloc(sc->v, cap * sizeof(*nv));

                if (!nv) {
                        sc->oom = true;
                        return;
                }
                sc->v = nv;
                sc->cap = cap;
        }
        volume_get(v);
        sc->v[sc->n++] = v;
}

/* Raise the fence on every production disk of a running mirror that is not
 * fenced by us yet. fence_mu held. Returns how many were added. */
static size_t fence_scan_raise(void)
{
        struct scan sc = {0};

        for (int i = 0; i < g.cfg->nsites; i++)
                volreg_foreach(g.cfg->sites[i].name, scan_one, &sc);
        if (sc.oom)
                log_error("node %s: out of memory while self-fencing; retrying", g.name);
        if (g.fn + sc.n > g.fcap) {
                size_t cap = g.fn + sc.n + 16;
                struct volume **nv = realloc(g.fvols, cap * sizeof(*nv));

                if (!nv) {
                        for (size_t i = 0; i < sc.n; i++)
                                volume_put(sc.v[i]);
                        free(sc.v);
                        log_error("node %s: out of memory while self-fencing; retrying", g.name);
                        return 0;
                }
                g.fvols = nv;
                g.fcap = cap;
        }
        for (size_t i = 0; i < sc.n; i++) {
                /* Returns once every write in flight on it is finished: from
                 * here on nothing is acknowledged on this disk. */
                volume_fence_raise(sc.v[i]);
                g.fvols[g.fn++] = sc.v[i];
        }
        free(sc.v);
        return sc.n;
}

/* Lower every fence we raised. fail: make the disks read-only first, so
 * every waiting write (and every later one) fails, never acknowledged.
 * fence_mu held. */
static void fence_lower_all(bool fail)
{
        for (size_t i = 0; i < g.fn; i++) {
                if (fail)
                        volume_set_read_only(g.fvols[i], true);
                volume_fence_lower(g.fvols[i]);
                volume_put(g.fvols[i]);
        }
        g.fn = 0;
}

/* The watchdog: at the fence point without a newer renewal, fence. */
static void *watchdog_main(void *arg)
{
        (void)arg;
        pthread_mutex_lock(&g.mu);
        while (!g.stopping) {
                int64_t now = util_mono_usec(), at = fence_point_mono();
                struct timespec ts;
                bool fail;

                if (g.roles_lost || (!g.fenced && now < at)) {
                        int64_t wake = g.roles_lost ? now + 10 * RETRY_USEC : at;

                        ts.tv_sec = (time_t)(wake / 1000000);
                        ts.tv_nsec = (long)(wake % 1000000) * 1000;
                        pthread_cond_timedwait(&g.wcond, &g.mu, &ts);
                        continue;
                }
                /* Fenced or past the fence point: (re)scan, then sleep a
                 * little (a mirror started later is fenced too). */
                fail = g.quiescing;
                pthread_mutex_unlock(&g.mu);
                pthread_mutex_lock(&g.fence_mu);
                pthread_mutex_lock(&g.mu);
                now = util_mono_usec();
                if (g.stopping || g.roles_lost || now < fence_point_mono()) {
                        /* A renewal succeeded meanwhile (it lowers), or we stop. */
                        pthread_mutex_unlock(&g.mu);
                        pthread_mutex_unlock(&g.fence_mu);
                        pthread_mutex_lock(&g.mu);
                        if (g.fenced && !g.stopping) {
                                now = util_mono_usec() + RETRY_USEC / 10;
                                ts.tv_sec = (time_t)(now / 1000000);
                                ts.tv_nsec = (long)(now % 1000000) * 1000;
                                pthread_cond_timedwait(&g.wcond, &g.mu, &ts);
                        }
                        continue;
                }
                if (!g.fenced) {
                        int64_t t0 = now, d = lease_deadline_mono(), since = now - g.last_ok_mono;
                        size_t n;

                        g.fenced = true;
                        g.self_fences_total++;
                        pthread_mutex_unlock(&g.mu);
                        n = fence_scan_raise();
                        now = util_mono_usec();
                        log_error(
                            "node %s: no lease renewal for %.1f s: self-fenced %zu production "
                            "disk(s) in %.1f ms; no write is acknowledged on them until "
                            "the store answers again",
                            g.name, (double)since / 1e6, n, (double)(now - t0) / 1e3);
                        if (now > d)
                                log_error("node %s: the self-fence completed %.1f ms after the "
                                          "lease deadline (a write was in flight that long; keep "
                                          "lease_ms above twice link_timeout)",
                                          g.name, (double)(now - d) / 1e3);
                } else {
                        pthread_mutex_unlock(&g.mu);
                        if (fence_scan_raise() > 0)
                                log_warn("node %s: self-fence extended to a mirror started "
                                         "meanwhile",
                                         g.name);
                }
                if (fail)
                        fence_lower_all(true);
                pthread_mutex_unlock(&g.fence_mu);
                pthread_mutex_lock(&g.mu);
                now = util_mono_usec() + RETRY_USEC;
                ts.tv_sec = (time_t)(now / 1000000);
                ts.tv_nsec = (long)(now % 1000000) * 1000;
                if (!g.stopping)
                        pthread_cond_timedwait(&g.wcond, &g.mu, &ts);
        }
        pthread_mutex_unlock(&g.mu);
        return NULL;
}

/* A renewal succeeded (ESTALE false) or said the roles are gone. */
static void fence_after_renewal(bool roles_lost)
{
        bool lower;

        if (!g.self_fence)
                return;
        pthread_mutex_lock(&g.fence_mu);
        pthread_mutex_lock(&g.mu);
        if (roles_lost) {
                bool first = !g.roles_lost;

                g.roles_lost = true;
                pthread_cond_broadcast(&g.wcond);
                pthread_mutex_unlock(&g.mu);
                if (first) {
                        fence_scan_raise();
                        fence_lower_all(true);
                        log_error("node %s: another node took this node's roles (a failover): "
                                  "its production disks are read-only and every waiting write "
                                  "failed; restart this node to learn its new roles",
                                  g.name);
                }
                pthread_mutex_unlock(&g.fence_mu);
                return;
        }
        /* Lower only while the new lease still covers us. */
        lower = g.fenced && !g.roles_lost && util_mono_usec() < fence_point_mono();
        if (lower)
                g.fenced = false;
        pthread_mutex_unlock(&g.mu);
        if (lower) {
                size_t n = g.fn;

                fence_lower_all(false);
                log_info("node %s: lease renewed: self-fence lowered on %zu disk(s)", g.name, n);
        }
        pthread_mutex_unlock(&g.fence_mu);
}

/* ---------------------------------------------------------------- lease */

/* Half of the lease has gone by without a successful renewal (reported once
 * per outage, self-fence or not). */
static void lease_half_report(int64_t since_ok_usec)
{
        log_error("node %s: no lease renewal for %.1f s (more than half of lease_ms = %d)%s",
                  g.name, (double)since_ok_usec / 1e6, g.cfg->lease_ms,
                  g.self_fence ? "" : "; the store is local, so nothing is fenced");
}

static void *lease_main(void *arg)
{
        int64_t period_usec = (int64_t)g.cfg->lease_ms * 1000 / 4, wait_usec = period_usec;

        (void)arg;
        pthread_mutex_lock(&g.mu);
        while (!g.stopping) {
                struct timespec ts;
                int64_t until = 0, now_store = 0, t0, mono;
                int rc;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)(wait_usec / 1000000);
                ts.tv_nsec += (long)(wait_usec % 1000000) * 1000;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&g.cond, &g.mu, &ts);
                if (g.stopping)
                        break;
                pthread_mutex_unlock(&g.mu);
                t0 = util_mono_usec(); /* before the UPDATE is sent */
                rc = store_node_renew(g.lease_store, g.name, g.generation, g.cfg->lease_ms, &until);
                if (rc == 0)
                        store_now_usec(g.lease_store, &now_store);
                mono = util_mono_usec();
                pthread_mutex_lock(&g.mu);
                if (rc == 0) {
                        g.lease_until = until;
                        if (t0 > g.last_ok_mono)
                                g.last_ok_mono = t0;
                        if (now_store)
                                g.store_skew_usec = now_store - util_now_usec();
                        if (g.half_reported)
                                log_info("node %s: lease renewed again", g.name);
                        g.half_reported = false;
                        if (g.watchdog_running)
                                pthread_cond_broadcast(&g.wcond);
                        wait_usec = period_usec;
                        pthread_mutex_unlock(&g.mu);
                        fence_after_renewal(false);
                        pthread_mutex_lock(&g.mu);
                        continue;
                }
                wait_usec = period_usec < RETRY_USEC ? period_usec : RETRY_USEC;
                if (!g.half_reported || rc == -ESTALE)
                        log_warn("node %s: lease renewal failed: %s", g.name,
                                 rc == -ESTALE
                                     ? "another node took this node's roles (generation changed)"
                                 : rc == -ENOENT ? "this node's row is gone from the store"
                                                 : strerror(-rc));
                if (rc == -ESTALE) {
                        pthread_mutex_unlock(&g.mu);
                        fence_after_renewal(true);
                        pthread_mutex_lock(&g.mu);
                        wait_usec = period_usec;
                }
                if (rc == -ENOENT) {
                        /* Deleted by an operator: register again (a new
                         * lease; the fence, if up, lowers at the next
                         * renewal). */
                        struct store_node row;

                        fill_row(g.cfg, 0, &row);
                        pthread_mutex_unlock(&g.mu);
                        store_node_register(g.lease_store, &row, g.cfg->lease_ms);
                        pthread_mutex_lock(&g.mu);
                }
                if (mono - g.last_ok_mono > (int64_t)g.cfg->lease_ms * 1000 / 2 &&
                    !g.half_reported) {
                        g.half_reported = true;
                        lease_half_report(mono - g.last_ok_mono);
                }
        }
        pthread_mutex_unlock(&g.mu);
        return NULL;
}

int cluster_node_start(const struct evsrep_config *cfg, struct store *st, char *err, size_t errlen)
{
        uint8_t key[CLUSTER_KEY_BYTES];
        struct store_node row;
        bool created = false;
        int64_t t0;
        int rc;

        if ((rc = cluster_key_load(cfg->cluster_key_path, key, &created, err, errlen)) < 0)
                return rc;
        if (created)
                log_info("cluster key created in %s: copy this file (mode 0600) to every node",
                         cfg->cluster_key_path);
        if ((rc = check_conflicts(cfg, st, err, errlen)) < 0)
                return rc;
        fill_row(cfg, cfg->listen_port, &row);
        t0 = util_mono_usec();
        if ((rc = store_node_register(st, &row, cfg->lease_ms)) < 0 ||
            (rc = store_node_get(st, cfg->node_name, &row)) < 0) {
                snprintf(err, errlen, "cannot register node %s in the store: %s", cfg->node_name,
                         strerror(-rc));
                return rc;
        }
        g.cfg = cfg;
        g.store = st;
        g.lease_store = st;
        snprintf(g.name, sizeof(g.name), "%s", cfg->node_name);
        g.generation = row.roles_generation;
        g.lease_until = row.lease_until;
        g.last_ok_mono = t0;
        g.stopping = false;
        g.fenced = g.roles_lost = g.quiescing = false;
        g.self_fence = store_is_shared(st);
        if (g.self_fence && (rc = store_open(cfg->db_path, &g.lease_store, err, errlen)) < 0) {
                g.lease_store = st;
                return rc;
        }
        cluster_forward_set_key(key, g.name);
        memset(key, 0, sizeof(key));
        if ((rc = pthread_create(&g.thread, NULL, lease_main, NULL)) != 0) {
                snprintf(err, errlen, "cannot start the lease thread: %s", strerror(rc));
                return -rc;
        }
        g.running = true;
        if (g.self_fence) {
                pthread_condattr_t ca;

                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&g.wcond, &ca);
                pthread_condattr_destroy(&ca);
                if ((rc = pthread_create(&g.watchdog, NULL, watchdog_main, NULL)) != 0) {
                        snprintf(err, errlen, "cannot start the lease watchdog: %s", strerror(rc));
                        cluster_node_stop();
                        return -rc;
                }
                g.watchdog_running = true;
        }
        log_info("node %s registered (AZs %s, lease %d ms, generation %lld); self-fence %s", g.name,
                 row.azs, cfg->lease_ms, (long long)g.generation,
                 g.self_fence ? "on (shared store): replicated production disks stop "
                                "acknowledging writes when the lease cannot be renewed"
                              : "off (the store is local to this node)");
        return 0;
}

int cluster_node_publish(const struct evsrep_config *cfg, int http_port)
{
        struct store_node row;
        int rc;

        if (!g.store)
                return -EINVAL;
        fill_row(cfg, http_port, &row);
        rc = store_node_register(g.store, &row, cfg->lease_ms);
        if (rc < 0)
                log_warn("node %s: cannot publish its endpoints: %s", g.name, strerror(-rc));
        else
                log_info("node %s: internal URL %s, NBD %s", g.name, row.api_url, row.nbd_json);
        return rc;
}

void cluster_node_quiesce(void)
{
        if (!g.running || !g.self_fence)
                return;
        pthread_mutex_lock(&g.fence_mu);
        pthread_mutex_lock(&g.mu);
        g.quiescing = true;
        pthread_mutex_unlock(&g.mu);
        if (g.fn > 0) {
                log_warn("node %s: stopping while self-fenced: the %zu waiting disk(s) fail their "
                         "writes",
                         g.name, g.fn);
                fence_lower_all(true);
        }
        pthread_mutex_unlock(&g.fence_mu);
}

void cluster_node_stop(void)
{
        int rc;

        if (!g.running)
                return;
        pthread_mutex_lock(&g.mu);
        g.stopping = true;
        pthread_cond_broadcast(&g.cond);
        if (g.watchdog_running)
                pthread_cond_broadcast(&g.wcond);
        pthread_mutex_unlock(&g.mu);
        pthread_join(g.thread, NULL);
        if (g.watchdog_running) {
                pthread_join(g.watchdog, NULL);
                g.watchdog_running = false;
                pthread_cond_destroy(&g.wcond);
        }
        g.running = false;
        pthread_mutex_lock(&g.fence_mu);
        fence_lower_all(true);
        free(g.fvols);
        g.fvols = NULL;
        g.fcap = 0;
        pthread_mutex_unlock(&g.fence_mu);
        rc =
            g.roles_lost ? -ESTALE : store_node_renew(g.lease_store, g.name, g.generation, 0, NULL);
        if (rc < 0)
                log_warn("node %s: cannot release its lease: %s", g.name, strerror(-rc));
        else
                log_info("node %s: lease released", g.name);
        if (g.lease_store != g.store)
                store_close(g.lease_store);
        g.lease_store = g.store;
}

void cluster_metrics_render(FILE *f)
{
        int64_t until, skew;
        uint64_t total;
        bool fenced;

        if (!g.running)
                return;
        pthread_mutex_lock(&g.mu);
        until = g.lease_until;
        skew = g.store_skew_usec;
        fenced = g.fenced || g.roles_lost;
        total = g.self_fences_total;
        pthread_mutex_unlock(&g.mu);
        fprintf(f,
                "# HELP evsrep_node_lease_remaining_seconds Seconds until this node's lease "
                "lapses (store clock), as of its last renewal.\n"
                "# TYPE evsrep_node_lease_remaining_seconds gauge\n"
                "evsrep_node_lease_remaining_seconds{node=\"%s\"} %.3f\n"
                "# HELP evsrep_node_self_fenced 1 while this node holds its replicated production "
                "disks fenced because it could not renew its lease (or lost its roles).\n"
                "# TYPE evsrep_node_self_fenced gauge\n"
                "evsrep_node_self_fenced{node=\"%s\"} %d\n"
                "# HELP evsrep_node_self_fences_total Self-fences raised since start.\n"
                "# TYPE evsrep_node_self_fences_total counter\n"
                "evsrep_node_self_fences_total{node=\"%s\"} %llu\n",
                g.name, (double)(until - (util_now_usec() + skew)) / 1e6, g.name, fenced ? 1 : 0,
                g.name, (unsigned long long)total);
}
