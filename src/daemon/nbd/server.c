/* NBD listener: accept thread, connection list, orderly stop.
 *
 * One thread per connection runs the handshake and then becomes worker 0 of
 * that connection (conn.c). A finished connection marks itself, wakes the
 * accept thread through an eventfd, and the accept thread joins and frees
 * it; nbd_server_stop joins whatever is left. Sockets are closed only by
 * whoever joins the connection's thread, so a shutdown() from stop can never
 * hit a recycled descriptor. */
#include "common/log.h"
#include "common/util.h"
#include "nbd/internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

/* On stop, connections get this long to finish the requests they hold
 * (their read side is already shut) before their sockets are cut. */
#define NBD_STOP_GRACE_SEC 5

static void set_rcv_timeout(int fd, int sec)
{
        struct timeval tv = {.tv_sec = sec, .tv_usec = 0};

        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* ---- Bounds (docs/design/nbd.md, "Bounds") ---- */

static void peer_name(int fd, char *buf, size_t len);

/* Refusals at accept are logged at most this often per listener: a flood
 * of refused sockets must not become a flood of log lines. */
#define NBD_REFUSE_LOG_USEC (10 * 1000 * 1000)
/* The accept thread checks deadlines this often while a deadline is on. */
#define NBD_SWEEP_MSEC 500

void nbd_limits_default(struct nbd_limits *lim)
{
        *lim = (struct nbd_limits){
            .conn_budget_bytes = 64u << 20,
            .total_budget_bytes = 512u << 20,
            .handshake_timeout_sec = 30,
            .idle_timeout_sec = 0,
            .send_timeout_sec = 60,
            .max_conns = 1024,
            .max_conns_per_addr = 128,
            .tls = NULL,
        };
}

static void set_snd_timeout(int fd, int sec)
{
        struct timeval tv = {.tv_sec = sec, .tv_usec = 0};

        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Fold an IPv4-mapped IPv6 address to IPv4, so a dual-stack listener
 * counts one client once. */
static void addr_fold(struct sockaddr_storage *ss)
{
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        struct sockaddr_in s4 = {.sin_family = AF_INET};

        if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
                return;
        memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
        s4.sin_port = s6->sin6_port;
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, &s4, sizeof(s4));
}

/* Same host (the port does not matter). */
static bool addr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
        if (a->ss_family != b->ss_family)
                return false;
        if (a->ss_family == AF_INET)
                return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
                       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
        if (a->ss_family == AF_INET6)
                return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                              &((const struct sockaddr_in6 *)b)->sin6_addr,
                              sizeof(struct in6_addr)) == 0;
        return false;
}

/* Accept thread: the connection would exceed cap `kind` (0 total, 1 per
 * address). Close it at once (no greeting: the client sees EOF) and log at
 * most one line per cap every 10 s. */
static void refuse(struct nbd_server *srv, int fd, int kind)
{
        static const char *const why[2] = {
            "connection limit (nbd_max_connections) reached",
            "per-address connection limit (nbd_max_connections_per_address) reached"};
        int64_t now = util_mono_usec();
        char peer[64];

        if (srv->refused_log_usec[kind] != 0 &&
            now - srv->refused_log_usec[kind] < NBD_REFUSE_LOG_USEC) {
                srv->refused_quiet[kind]++;
                close(fd);
                return;
        }
        peer_name(fd, peer, sizeof(peer));
        close(fd);
        log_warn("nbd %s: %s: %s, refusing (%u more refused since the last such line)", srv->site,
                 peer, why[kind], srv->refused_quiet[kind]);
        srv->refused_log_usec[kind] = now;
        srv->refused_quiet[kind] = 0;
}

/* Under srv->lock: which cap would a connection from ss exceed (0 total,
 * 1 per address), or -1. */
static int over_cap(struct nbd_server *srv, const struct sockaddr_storage *ss)
{
        int same = 0;

        if (srv->nconns >= (unsigned)srv->lim.max_conns)
                return 0;
        for (struct nbd_conn *c = srv->conns; c; c = c->next)
                if (!c->finished && addr_same(&c->addr, ss))
                        same++;
        return same >= srv->lim.max_conns_per_addr ? 1 : -1;
}

/* Accept thread: shut down connections past their handshake deadline or
 * idle for too long. Their own thread sees EOF and ends; the socket is
 * closed when reaped, as always. */
static void sweep(struct nbd_server *srv)
{
        int64_t now = util_mono_usec();
        int64_t hs = (int64_t)srv->lim.handshake_timeout_sec * 1000000;
        int64_t idle = (int64_t)srv->lim.idle_timeout_sec * 1000000;

        pthread_mutex_lock(&srv->lock);
        for (struct nbd_conn *c = srv->conns; c; c = c->next) {
                int why = NBD_EXP_NONE;

                if (c->finished || atomic_load(&c->expired) != NBD_EXP_NONE)
                        continue;
                if (!atomic_load(&c->serving)) {
                        if (hs > 0 && now - c->accepted_usec >= hs)
                                why = NBD_EXP_HANDSHAKE;
                } else if (idle > 0 && atomic_load(&c->inflight) == 0 &&
                           now - atomic_load(&c->active_usec) >= idle) {
                        why = NBD_EXP_IDLE;
                }
                if (why != NBD_EXP_NONE) {
                        atomic_store(&c->expired, why);
                        shutdown(c->fd, SHUT_RDWR);
                }
        }
        pthread_mutex_unlock(&srv->lock);
}

static void wake(struct nbd_server *srv)
{
        uint64_t one = 1;

        /* The counter cannot overflow in practice; a failed wake only
         * delays reaping until the next accept. */
        (void)!write(srv->wake_fd, &one, sizeof(one));
}

static void *conn_main(void *arg)
{
        struct nbd_conn *c = arg;
        struct nbd_server *srv = c->srv;
        int rc = nbd_handshake_run(c);

        /* A1: transmission only on a live attachment, watched so that a
         * revocation shuts this socket down (unwatched before the socket is
         * closed, which happens only after this thread is joined). */
        if (rc == 1 && attach_watch(c->att, c->fd) < 0) {
                volume_put(c->vol);
                c->vol = NULL;
                rc = -ESHUTDOWN; /* revoked during the handshake */
        }
        if (rc == 1) {
                set_rcv_timeout(c->fd, 0);
                atomic_store(&c->active_usec, util_mono_usec());
                atomic_store(&c->serving, true);
                log_debug("nbd %s: %s: serving %s", srv->site, c->peer, volume_id(c->vol));
                nbd_conn_serve(c, srv->threads_per_conn);
                attach_unwatch(c->att, c->fd);
                if (attach_is_link(c->att))
                        nbd_link_closed(c);
                volume_put(c->vol);
                c->vol = NULL;
                if (atomic_load(&c->expired) == NBD_EXP_IDLE)
                        log_info("nbd %s: %s: no request for %d s (nbd_idle_timeout), closed",
                                 srv->site, c->peer, srv->lim.idle_timeout_sec);
        } else if (atomic_load(&c->expired) == NBD_EXP_HANDSHAKE) {
                log_info("nbd %s: %s: handshake not done in %d s (nbd_handshake_timeout), closed",
                         srv->site, c->peer, srv->lim.handshake_timeout_sec);
        } else if (rc < 0 && rc != -ECONNRESET) {
                log_info("nbd %s: %s: handshake ended: %s", srv->site, c->peer, strerror(-rc));
        }
        attach_put(c->att);
        c->att = NULL;
        nbd_tls_end(c->tls); /* close_notify, best effort */
        c->tls = NULL;
        /* Tell the client now; the descriptor is closed when reaped. */
        shutdown(c->fd, SHUT_RDWR);
        pthread_mutex_lock(&srv->lock);
        c->finished = true;
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->lock);
        wake(srv);
        return NULL;
}

static void conn_free(struct nbd_conn *c)
{
        close(c->fd);
        pthread_mutex_destroy(&c->rd_lock);
        pthread_mutex_destroy(&c->wr_lock);
        pthread_mutex_destroy(&c->pool_lock);
        pthread_cond_destroy(&c->budget_cond);
        free(c);
}

/* Join and free finished connections (all of them when `all`). */
static void reap(struct nbd_server *srv, bool all)
{
        struct nbd_conn *done = NULL;

        pthread_mutex_lock(&srv->lock);
        for (struct nbd_conn **pp = &srv->conns; *pp;) {
                struct nbd_conn *c = *pp;
                if (all || c->finished) {
                        *pp = c->next;
                        c->next = done;
                        done = c;
                        srv->nconns--;
                        if (srv->stats)
                                atomic_fetch_sub(&srv->stats->connections, 1);
                } else {
                        pp = &c->next;
                }
        }
        pthread_mutex_unlock(&srv->lock);
        while (done) {
                struct nbd_conn *c = done;
                done = c->next;
                pthread_join(c->thread, NULL);
                conn_free(c);
        }
}

static void peer_name(int fd, char *buf, size_t len)
{
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;

        if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
                if (ss.ss_family == AF_INET) {
                        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
                        port = ntohs(s4->sin_port);
                } else if (ss.ss_family == AF_INET6) {
                        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
                        port = ntohs(s6->sin6_port);
                }
        }
        snprintf(buf, len, "%s:%d", host, port);
}

static void accept_one(struct nbd_server *srv)
{
        struct nbd_conn *c;
        struct sockaddr_storage ss = {0};
        socklen_t sl = sizeof(ss);
        int cap, one = 1;
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

        if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        /* Out of descriptors: back off instead of spinning
                         * on a listener that stays readable. */
                        struct timespec ts = {0, 100 * 1000 * 1000};
                        log_warn("nbd %s: accept: %s", srv->site, strerror(errno));
                        nanosleep(&ts, NULL);
                }
                return;
        }
        addr_fold(&ss);
        pthread_mutex_lock(&srv->lock);
        cap = over_cap(srv, &ss);
        pthread_mutex_unlock(&srv->lock);
        if (cap >= 0) {
                refuse(srv, fd, cap);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        c->srv = srv;
        c->fd = fd;
        c->addr = ss;
        c->accepted_usec = util_mono_usec();
        pthread_mutex_init(&c->rd_lock, NULL);
        pthread_mutex_init(&c->wr_lock, NULL);
        pthread_mutex_init(&c->pool_lock, NULL);
        pthread_cond_init(&c->budget_cond, NULL);
        peer_name(fd, c->peer, sizeof(c->peer));
        /* Small replies must not wait for Nagle (the protocol recommends
         * TCP_NODELAY on both sides). */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        set_rcv_timeout(fd, srv->lim.handshake_timeout_sec);
        set_snd_timeout(fd, srv->lim.send_timeout_sec);

        pthread_mutex_lock(&srv->lock);
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
                pthread_mutex_unlock(&srv->lock);
                log_warn("nbd %s: %s: cannot start a thread, refusing", srv->site, c->peer);
                conn_free(c);
                return;
        }
        c->next = srv->conns;
        srv->conns = c;
        srv->nconns++;
        if (srv->stats)
                atomic_fetch_add(&srv->stats->connections, 1);
        pthread_mutex_unlock(&srv->lock);
}

static void *accept_main(void *arg)
{
        struct nbd_server *srv = arg;

        while (!atomic_load(&srv->stopping)) {
                struct pollfd pfd[2] = {{srv->listen_fd, POLLIN, 0}, {srv->wake_fd, POLLIN, 0}};
                uint64_t cnt;
                /* Deadlines on and connections open: wake up to check. */
                int tmo = (srv->lim.handshake_timeout_sec > 0 || srv->lim.idle_timeout_sec > 0) &&
                                  srv->conns
                              ? NBD_SWEEP_MSEC
                              : -1;

                if (poll(pfd, 2, tmo) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("nbd %s: poll: %s", srv->site, strerror(errno));
                        break;
                }
                if (pfd[1].revents & POLLIN)
                        (void)!read(srv->wake_fd, &cnt, sizeof(cnt));
                reap(srv, false);
                sweep(srv);
                if (atomic_load(&srv->stopping))
                        break;
                if (pfd[0].revents & POLLIN)
                        accept_one(srv);
        }
        return NULL;
}

static int listen_on(const char *host, int port, int *fd_out, int *port_out)
{
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        char portstr[16];
        int rc, fd = -1;

        if (port < 0 || port > 65535)
                return -EINVAL;
        snprintf(portstr, sizeof(portstr), "%d", port);
        rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
        if (rc != 0)
                return rc == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
        rc = -EADDRNOTAVAIL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int one = 1;

                fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0) {
                        rc = -errno;
                        continue;
                }
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
                        break;
                rc = -errno;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                return rc;

        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
                rc = -errno;
                close(fd);
                return rc;
        }
        *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        *fd_out = fd;
        return 0;
}

int nbd_server_start(const char *site, const char *host, int port, int threads_per_conn,
                     struct nbd_server **out)
{
        struct nbd_limits lim;

        nbd_limits_default(&lim);
        return nbd_server_start_with(site, host, port, threads_per_conn, &lim, out);
}

int nbd_server_start_with(const char *site, const char *host, int port, int threads_per_conn,
                          const struct nbd_limits *lim, struct nbd_server **out)
{
        struct nbd_server *srv;
        int rc;

        if (!site || strlen(site) >= sizeof(srv->site) || !lim || lim->conn_budget_bytes == 0 ||
            lim->total_budget_bytes == 0 || lim->handshake_timeout_sec < 0 ||
            lim->idle_timeout_sec < 0 || lim->send_timeout_sec < 0 || lim->max_conns < 1 ||
            lim->max_conns_per_addr < 1)
                return -EINVAL;
        srv = calloc(1, sizeof(*srv));
        if (!srv)
                return -ENOMEM;
        strcpy(srv->site, site);
        srv->lim = *lim;
        pthread_mutex_init(&srv->budget_lock, NULL);
        pthread_cond_init(&srv->budget_cond, NULL);
        srv->stats = stats_site(site);
        srv->threads_per_conn = threads_per_conn < 1 ? 1
                                : threads_per_conn > NBD_MAX_THREADS_PER_CONN
                                    ? NBD_MAX_THREADS_PER_CONN
                                    : threads_per_conn;
        srv->listen_fd = srv->wake_fd = -1;
        pthread_mutex_init(&srv->lock, NULL);
        pthread_cond_init(&srv->cond, NULL);

        rc = listen_on(host, port, &srv->listen_fd, &srv->port);
        if (rc < 0)
                goto fail;
        srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv->wake_fd < 0) {
                rc = -errno;
                goto fail;
        }
        rc = -pthread_create(&srv->accept_thread, NULL, accept_main, srv);
        if (rc < 0)
                goto fail;
        log_info("nbd %s: listening on %s:%d (%d threads per connection)", site,
                 host && *host ? host : "*", srv->port, srv->threads_per_conn);
        *out = srv;
        return 0;
fail:
        if (srv->listen_fd >= 0)
                close(srv->listen_fd);
        if (srv->wake_fd >= 0)
                close(srv->wake_fd);
        pthread_mutex_destroy(&srv->lock);
        pthread_cond_destroy(&srv->cond);
        pthread_mutex_destroy(&srv->budget_lock);
        pthread_cond_destroy(&srv->budget_cond);
        free(srv);
        return rc;
}

int nbd_server_port(const struct nbd_server *srv)
{
        return srv->port;
}

static bool all_finished(struct nbd_server *srv)
{
        for (struct nbd_conn *c = srv->conns; c; c = c->next)
                if (!c->finished)
                        return false;
        return true;
}

void nbd_server_stop(struct nbd_server *srv)
{
        struct timespec deadline;

        if (!srv)
                return;
        atomic_store(&srv->stopping, true);
        wake(srv);
        pthread_join(srv->accept_thread, NULL);
        close(srv->listen_fd);

        /* Graceful first: no new requests (read side shut), requests in
         * flight finish and are answered, as the protocol asks. */
        pthread_mutex_lock(&srv->lock);
        for (struct nbd_conn *c = srv->conns; c; c = c->next) {
                shutdown(c->fd, SHUT_RD);
                /* A reader waiting for budget gives up (stopping is set). */
                nbd_budget_wake(srv, c);
        }
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += NBD_STOP_GRACE_SEC;
        while (!all_finished(srv)) {
                if (pthread_cond_timedwait(&srv->cond, &srv->lock, &deadline) == ETIMEDOUT)
                        break;
        }
        /* Then hard: a client that stopped reading replies must not keep
         * a worker blocked in send() forever. */
        for (struct nbd_conn *c = srv->conns; c; c = c->next)
                if (!c->finished)
                        shutdown(c->fd, SHUT_RDWR);
        pthread_mutex_unlock(&srv->lock);

        reap(srv, true);
        close(srv->wake_fd);
        assert(srv->budget_used == 0);
        pthread_mutex_destroy(&srv->lock);
        pthread_cond_destroy(&srv->cond);
        pthread_mutex_destroy(&srv->budget_lock);
        pthread_cond_destroy(&srv->budget_cond);
        log_info("nbd %s: stopped", srv->site);
        free(srv);
}
