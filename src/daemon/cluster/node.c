/* This node's registration and lease (docs/design/multi-site.md "Leases").
 *
 * Start: load (or create) the cluster key; refuse to start while another
 * node's row with a valid lease names one of this node's AZs; register
 * (upsert the row with a fresh lease); start the lease thread. The thread
 * renews every lease_ms / 4 with store_node_renew(name, generation) and
 * keeps lease_until (store clock) and the monotonic instant of the last
 * success. A failed renewal logs a warning; once half of the lease has gone
 * by without a success it logs an error and calls cluster_node_on_lease_half,
 * the hook where self-fencing (step 5) will raise the fence on replicated
 * production disks. It only logs today.
 *
 * Stop: the thread ends, then the lease is released (lease_until = 0) so that
 * a failover elsewhere need not wait for it to lapse.
 *
 * Locking: g.mu guards the lease fields read by metrics and the API; the
 * store has its own lock. Nothing here is on a data path. */
#include "cluster/cluster.h"

#include "common/log.h"
#include "common/util.h"

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
        char name[STORE_NODE_NAME_LEN];
        int64_t generation;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        pthread_t thread;
        bool running, stopping;
        /* guarded by mu */
        int64_t lease_until;     /* store clock, usec */
        int64_t last_ok_mono;    /* monotonic usec of the last successful renewal */
        int64_t store_skew_usec; /* store clock - local clock at the last renewal */
        bool half_reported;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

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

/* ---------------------------------------------------------------- lease */

/* Half of the lease has gone by without a successful renewal. Step 5
 * (self-fence, docs/design/multi-site.md) raises the fence on every
 * replicated production disk here; today it only reports. */
static void cluster_node_on_lease_half(int64_t since_ok_usec)
{
        log_error("node %s: no lease renewal for %.1f s (more than half of lease_ms = %d); "
                  "self-fencing is not implemented yet (a later step): writes go on",
                  g.name, (double)since_ok_usec / 1e6, g.cfg->lease_ms);
}

static void *lease_main(void *arg)
{
        int64_t period_usec = (int64_t)g.cfg->lease_ms * 1000 / 4;

        (void)arg;
        pthread_mutex_lock(&g.mu);
        while (!g.stopping) {
                struct timespec ts;
                int64_t until = 0, now_store = 0, mono;
                int rc;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)(period_usec / 1000000);
                ts.tv_nsec += (long)(period_usec % 1000000) * 1000;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&g.cond, &g.mu, &ts);
                if (g.stopping)
                        break;
                pthread_mutex_unlock(&g.mu);
                rc = store_node_renew(g.store, g.name, g.generation, g.cfg->lease_ms, &until);
                if (rc == 0)
                        store_now_usec(g.store, &now_store);
                mono = util_mono_usec();
                pthread_mutex_lock(&g.mu);
                if (rc == 0) {
                        g.lease_until = until;
                        g.last_ok_mono = mono;
                        if (now_store)
                                g.store_skew_usec = now_store - util_now_usec();
                        if (g.half_reported)
                                log_info("node %s: lease renewed again", g.name);
                        g.half_reported = false;
                        continue;
                }
                log_warn("node %s: lease renewal failed: %s", g.name,
                         rc == -ESTALE ? "another node took this node's roles (generation changed)"
                         : rc == -ENOENT ? "this node's row is gone from the store"
                                         : strerror(-rc));
                if (rc == -ENOENT) {
                        /* Deleted by an operator: register again. */
                        struct store_node row;

                        fill_row(g.cfg, 0, &row);
                        pthread_mutex_unlock(&g.mu);
                        store_node_register(g.store, &row, g.cfg->lease_ms);
                        pthread_mutex_lock(&g.mu);
                }
                if (mono - g.last_ok_mono > (int64_t)g.cfg->lease_ms * 1000 / 2 &&
                    !g.half_reported) {
                        g.half_reported = true;
                        cluster_node_on_lease_half(mono - g.last_ok_mono);
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
        int rc;

        if ((rc = cluster_key_load(cfg->cluster_key_path, key, &created, err, errlen)) < 0)
                return rc;
        if (created)
                log_info("cluster key created in %s: copy this file (mode 0600) to every node",
                         cfg->cluster_key_path);
        if ((rc = check_conflicts(cfg, st, err, errlen)) < 0)
                return rc;
        fill_row(cfg, cfg->listen_port, &row);
        if ((rc = store_node_register(st, &row, cfg->lease_ms)) < 0 ||
            (rc = store_node_get(st, cfg->node_name, &row)) < 0) {
                snprintf(err, errlen, "cannot register node %s in the store: %s", cfg->node_name,
                         strerror(-rc));
                return rc;
        }
        g.cfg = cfg;
        g.store = st;
        snprintf(g.name, sizeof(g.name), "%s", cfg->node_name);
        g.generation = row.roles_generation;
        g.lease_until = row.lease_until;
        g.last_ok_mono = util_mono_usec();
        g.stopping = false;
        cluster_forward_set_key(key, g.name);
        memset(key, 0, sizeof(key));
        if ((rc = pthread_create(&g.thread, NULL, lease_main, NULL)) != 0) {
                snprintf(err, errlen, "cannot start the lease thread: %s", strerror(rc));
                return -rc;
        }
        g.running = true;
        log_info("node %s registered (AZs %s, lease %d ms, generation %lld)", g.name, row.azs,
                 cfg->lease_ms, (long long)g.generation);
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

void cluster_node_stop(void)
{
        int rc;

        if (!g.running)
                return;
        pthread_mutex_lock(&g.mu);
        g.stopping = true;
        pthread_cond_broadcast(&g.cond);
        pthread_mutex_unlock(&g.mu);
        pthread_join(g.thread, NULL);
        g.running = false;
        rc = store_node_renew(g.store, g.name, g.generation, 0, NULL);
        if (rc < 0)
                log_warn("node %s: cannot release its lease: %s", g.name, strerror(-rc));
        else
                log_info("node %s: lease released", g.name);
}

void cluster_metrics_render(FILE *f)
{
        int64_t until, skew;

        if (!g.running)
                return;
        pthread_mutex_lock(&g.mu);
        until = g.lease_until;
        skew = g.store_skew_usec;
        pthread_mutex_unlock(&g.mu);
        fprintf(f,
                "# HELP evsrep_node_lease_remaining_seconds Seconds until this node's lease "
                "lapses (store clock), as of its last renewal.\n"
                "# TYPE evsrep_node_lease_remaining_seconds gauge\n"
                "evsrep_node_lease_remaining_seconds{node=\"%s\"} %.3f\n",
                g.name, (double)(until - (util_now_usec() + skew)) / 1e6);
}
