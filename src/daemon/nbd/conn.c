/* Transmission phase of one connection.
 *
 * Threading (leader/follower): N workers share the socket. One worker at a
 * time holds rd_lock and reads a whole request (header and WRITE payload);
 * it then lets the next worker read while it validates the request, does
 * the volume I/O itself and sends the reply under wr_lock. A request never
 * changes threads, so there is no cross-core wakeup per request (design.md
 * measured ~75 us for one), yet N requests are in flight and replies go out
 * in completion order.
 *
 * Ending: any worker that sees EOF, a read error, NBD_CMD_DISC or a
 * protocol violation sets `dead`; the others finish the request they hold
 * (replying if the socket still works) and exit at their next turn to read.
 * Garbage (bad magic, oversized WRITE) also shuts the socket down at once:
 * the stream can no longer be trusted. */
#include "common/log.h"
#include "common/util.h"
#include "nbd/internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Buffers bigger than this are freed after use: 32 MiB requests are rare
 * and N workers x M connections must not each pin one. */
#define NBD_BUF_KEEP (4u * 1024 * 1024)
/* O_DIRECT-friendly alignment for the I/O buffers. */
#define NBD_BUF_ALIGN 4096u
/* Smallest buffer allocated: 4 KiB requests should not churn malloc. */
#define NBD_BUF_MIN (64u * 1024)

struct worker {
        struct nbd_conn *c;
        pthread_t tid;
        void *buf; /* held for the current request only */
        size_t cap;
        struct nbd_pipe pipe; /* spliced READ replies (splice.c) */
        bool spliced;         /* the current request is one */
};

int nbd_sock_send(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int nbd_conn_recv(struct nbd_conn *c, void *buf, size_t len)
{
        return c->tls ? nbd_tls_recv_full(c->tls, buf, len) : util_read_full(c->fd, buf, len);
}

int nbd_conn_send(struct nbd_conn *c, const void *buf, size_t len)
{
        return c->tls ? nbd_tls_send(c->tls, buf, len) : nbd_sock_send(c->fd, buf, len);
}

/* Bytes queued on the socket that the client has not acknowledged yet
 * (sent or not): it falls only when the client reads. */
static int64_t sock_unacked(int fd)
{
        int v = 0;

        return ioctl(fd, SIOCOUTQ, &v) == 0 ? v : 0;
}

/* Send header and payload in one sendmsg where possible: one syscall and
 * one TCP segment train per reply. Returns 0, -ETIMEDOUT when the client
 * acknowledged nothing for timeout_sec (0: wait for ever), or -errno.
 *
 * The send timeout: SO_SNDTIMEO alone would let a blocked sendmsg that
 * copied anything return that count after the timeout and the next call
 * wait again (twice the timeout), and would not tell a slow reader from a
 * stopped one. So the first attempt does not block (the common case ends
 * there, with no extra syscall); once the socket buffer is full, each
 * blocking call (bounded by SO_SNDTIMEO) is followed by SIOCOUTQ, and the
 * reply fails when no byte was acknowledged for timeout_sec. A client
 * that reads slowly but steadily is never dropped. */
static int sock_send2(int fd, const void *a, size_t alen, const void *b, size_t blen,
                      int timeout_sec, pthread_mutex_t **release_on_block)
{
        struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
        int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
        int64_t unacked = 0, progress_usec = 0;

        for (;;) {
                ssize_t n = sendmsg(fd, &mh, flags);
                int64_t queued, now_unacked, now;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                return -errno;
                        n = 0;
                }
                queued = n;
                while (n > 0 && mh.msg_iovlen > 0) {
                        if ((size_t)n >= mh.msg_iov[0].iov_len) {
                                n -= (ssize_t)mh.msg_iov[0].iov_len;
                                mh.msg_iov++;
                                mh.msg_iovlen--;
                        } else {
                                mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + n;
                                mh.msg_iov[0].iov_len -= (size_t)n;
                                n = 0;
                        }
                }
                if (mh.msg_iovlen == 0)
                        return 0;
                /* The socket buffer is full: the slow path. */
                now_unacked = sock_unacked(fd);
                now = util_mono_usec();
                if (flags & MSG_DONTWAIT) {
                        flags = MSG_NOSIGNAL;
                        progress_usec = now;
                        /* An inline reply (worker_main) holds rd_lock: let
                         * another worker read requests while this one
                         * waits for the client. */
                        if (release_on_block && *release_on_block) {
                                pthread_mutex_unlock(*release_on_block);
                                *release_on_block = NULL;
                        }
                } else if (unacked + queued > now_unacked) {
                        progress_usec = now; /* the client acknowledged something */
                } else if (timeout_sec > 0 &&
                           now - progress_usec >= (int64_t)timeout_sec * 1000000) {
                        return -ETIMEDOUT;
                }
                unacked = now_unacked;
        }
}

/* sock_send2 through the connection's TLS session: the same send timeout,
 * judged the same way (a blocked record send returns GNUTLS_E_AGAIN after
 * SO_SNDTIMEO and is repeated with the same arguments). Two records (header,
 * payload); TLS replies are not on the fast path. */
static int tls_send2(struct nbd_conn *c, const void *a, size_t alen, const void *b, size_t blen,
                     int timeout_sec)
{
        const void *bufs[2] = {a, b};
        size_t lens[2] = {alen, blen};
        int64_t unacked = sock_unacked(c->fd), progress_usec = util_mono_usec();

        for (int i = 0; i < 2; i++) {
                const char *p = bufs[i];
                size_t len = lens[i];

                while (len > 0) {
                        ssize_t n = nbd_tls_send_some(c->tls, p, len);
                        int64_t now_unacked, now;

                        if (n > 0) {
                                p += n;
                                len -= (size_t)n;
                                continue;
                        }
                        if (n != -EAGAIN)
                                return (int)n;
                        now_unacked = sock_unacked(c->fd);
                        now = util_mono_usec();
                        if (now_unacked < unacked)
                                progress_usec = now;
                        else if (timeout_sec > 0 &&
                                 now - progress_usec >= (int64_t)timeout_sec * 1000000)
                                return -ETIMEDOUT;
                        unacked = now_unacked;
                }
        }
        return 0;
}

static int conn_send2(struct nbd_conn *c, const void *a, size_t alen, const void *b, size_t blen,
                      int timeout_sec)
{
        if (c->tls)
                return tls_send2(c, a, alen, b, blen, timeout_sec);
        return sock_send2(c->fd, a, alen, b, blen, timeout_sec, NULL);
}

/* ---- Payload budget (docs/design/nbd.md, "Bounds") ----
 *
 * What is counted: the capacity of every payload buffer a connection owns,
 * whether a worker holds it for a request or it sits in the pool, plus
 * admissions in progress. The same bytes count in the connection's
 * budget_bytes and in the listener's budget_used. A buffer moves from the
 * pool to a worker and back without changing either; only malloc and free
 * do. Admission happens while the reader holds rd_lock and has read only
 * the request header, so a connection whose replies are backed up stops
 * reading requests instead of allocating for them. */

static void total_give(struct nbd_server *srv, uint64_t n)
{
        if (n == 0)
                return;
        pthread_mutex_lock(&srv->budget_lock);
        assert(srv->budget_used >= n);
        srv->budget_used -= n;
        pthread_cond_broadcast(&srv->budget_cond);
        pthread_mutex_unlock(&srv->budget_lock);
}

/* Under c->pool_lock: free the pooled buffers; returns their bytes, which
 * the caller gives back to the total (outside pool_lock or not: the lock
 * order allows both). */
static uint64_t pool_drop_locked(struct nbd_conn *c)
{
        uint64_t freed = 0;

        while (c->npool > 0) {
                c->npool--;
                freed += c->pool[c->npool].cap;
                free(c->pool[c->npool].buf);
        }
        assert(c->budget_bytes >= freed);
        c->budget_bytes -= freed;
        if (freed)
                pthread_cond_broadcast(&c->budget_cond);
        return freed;
}

void nbd_budget_trim_pools(struct nbd_server *srv)
{
        uint64_t freed = 0;

        pthread_mutex_lock(&srv->lock);
        for (struct nbd_conn *c = srv->conns; c; c = c->next) {
                pthread_mutex_lock(&c->pool_lock);
                freed += pool_drop_locked(c);
                pthread_mutex_unlock(&c->pool_lock);
        }
        pthread_mutex_unlock(&srv->lock);
        total_give(srv, freed);
}

void nbd_budget_wake(struct nbd_server *srv, struct nbd_conn *c)
{
        if (c) {
                pthread_mutex_lock(&c->pool_lock);
                pthread_cond_broadcast(&c->budget_cond);
                pthread_mutex_unlock(&c->pool_lock);
        }
        pthread_mutex_lock(&srv->budget_lock);
        pthread_cond_broadcast(&srv->budget_cond);
        pthread_mutex_unlock(&srv->budget_lock);
}

static bool conn_over(const struct nbd_conn *c)
{
        return atomic_load(&c->dead) || atomic_load(&c->srv->stopping);
}

/* Wait until n more bytes fit the listener's total (or nothing is held
 * there at all). Returns 0, or 1 when the connection ends meanwhile. */
static int total_take(struct nbd_conn *c, uint64_t n)
{
        struct nbd_server *srv = c->srv;
        bool trimmed = false;
        int rc = 0;

        pthread_mutex_lock(&srv->budget_lock);
        while (srv->budget_used > 0 && srv->budget_used + n > srv->lim.total_budget_bytes) {
                if (conn_over(c)) {
                        rc = 1;
                        break;
                }
                if (!trimmed) {
                        /* Idle pools must not keep the listener's budget:
                         * drop them all once, then wait for requests in
                         * flight (they free instead of pooling while
                         * someone waits). */
                        trimmed = true;
                        atomic_fetch_add(&srv->budget_waiters, 1);
                        pthread_mutex_unlock(&srv->budget_lock);
                        nbd_budget_trim_pools(srv);
                        pthread_mutex_lock(&srv->budget_lock);
                        continue;
                }
                pthread_cond_wait(&srv->budget_cond, &srv->budget_lock);
        }
        if (rc == 0)
                srv->budget_used += n;
        if (trimmed)
                atomic_fetch_sub(&srv->budget_waiters, 1);
        pthread_mutex_unlock(&srv->budget_lock);
        return rc;
}

/* Give w a buffer of at least len bytes for the request whose header was
 * just read, waiting for the budgets if need be. Returns 0, 1 when the
 * connection ended while waiting, or -ENOMEM. */
static int buf_admit(struct worker *w, size_t len)
{
        struct nbd_conn *c = w->c;
        uint64_t limit = c->srv->lim.conn_budget_bytes;
        uint64_t freed = 0;
        size_t alloc;
        void *nb;

        assert(!w->buf);
        pthread_mutex_lock(&c->pool_lock);
        if (c->npool > 0) {
                /* The warmest buffer; its bytes are already counted. */
                c->npool--;
                w->buf = c->pool[c->npool].buf;
                w->cap = c->pool[c->npool].cap;
        }
        if (len <= w->cap) {
                pthread_mutex_unlock(&c->pool_lock);
                return 0;
        }
        if (w->buf) {
                free(w->buf);
                freed += w->cap;
                c->budget_bytes -= w->cap;
                w->buf = NULL;
                w->cap = 0;
        }
        alloc = MAX(len, NBD_BUF_MIN);
        alloc = (alloc + NBD_BUF_ALIGN - 1) & ~(size_t)(NBD_BUF_ALIGN - 1);
        /* One request is always admitted alone: a request bigger than the
         * budget is served, only never next to another one. */
        while (c->budget_bytes > 0 && c->budget_bytes + alloc > limit) {
                if (c->npool > 0) {
                        freed += pool_drop_locked(c);
                        continue;
                }
                if (conn_over(c)) {
                        pthread_mutex_unlock(&c->pool_lock);
                        total_give(c->srv, freed);
                        return 1;
                }
                pthread_cond_wait(&c->budget_cond, &c->pool_lock);
        }
        c->budget_bytes += alloc;
        pthread_mutex_unlock(&c->pool_lock);
        total_give(c->srv, freed);

        if (total_take(c, alloc) != 0) {
                pthread_mutex_lock(&c->pool_lock);
                c->budget_bytes -= alloc;
                pthread_cond_broadcast(&c->budget_cond);
                pthread_mutex_unlock(&c->pool_lock);
                return 1;
        }
        if (posix_memalign(&nb, NBD_BUF_ALIGN, alloc) != 0) {
                pthread_mutex_lock(&c->pool_lock);
                c->budget_bytes -= alloc;
                pthread_cond_broadcast(&c->budget_cond);
                pthread_mutex_unlock(&c->pool_lock);
                total_give(c->srv, alloc);
                return -ENOMEM;
        }
        w->buf = nb;
        w->cap = alloc;
        return 0;
}

/* Give w->buf back to the pool (on top), or free it when it is big or a
 * request of this listener waits for the total budget. */
static void buf_release(struct worker *w)
{
        struct nbd_conn *c = w->c;
        uint64_t freed = 0;

        if (!w->buf)
                return;
        pthread_mutex_lock(&c->pool_lock);
        if (w->cap <= NBD_BUF_KEEP && c->npool < (int)ARRAY_SIZE(c->pool) &&
            atomic_load(&c->srv->budget_waiters) == 0) {
                c->pool[c->npool].buf = w->buf;
                c->pool[c->npool].cap = w->cap;
                c->npool++;
        } else {
                free(w->buf);
                freed = w->cap;
                c->budget_bytes -= w->cap;
        }
        /* A pooled buffer is reusable by a waiter of this connection too. */
        pthread_cond_broadcast(&c->budget_cond);
        pthread_mutex_unlock(&c->pool_lock);
        w->buf = NULL;
        w->cap = 0;
        total_give(c->srv, freed);
}

static void conn_kill(struct nbd_conn *c, bool hard)
{
        atomic_store(&c->dead, true);
        if (hard)
                shutdown(c->fd, SHUT_RDWR);
        /* A reader waiting for budget must see it is over. */
        nbd_budget_wake(c->srv, c);
}

/* Read one request under rd_lock. Returns 0 with *req (and the WRITE
 * payload in w->buf), or 1 when the connection is over. */
static int read_request(struct worker *w, struct nbd_request *req)
{
        struct nbd_conn *c = w->c;
        uint8_t hdr[NBD_REQUEST_LEN];
        int rc;

        if (atomic_load(&c->dead))
                return 1;
        rc = nbd_conn_recv(c, hdr, sizeof(hdr));
        if (rc < 0) {
                if (rc != -ECONNRESET)
                        log_debug("nbd %s: %s: read: %s", c->srv->site, c->peer, strerror(-rc));
                conn_kill(c, false);
                return 1;
        }
        rc = nbd_request_parse(hdr, sizeof(hdr), req);
        if (rc < 0) {
                log_warn("nbd %s: %s: %s, closing connection", c->srv->site, c->peer,
                         rc == -EPROTO ? "bad request magic" : "write payload too large");
                conn_kill(c, true);
                return 1;
        }
        if (req->type == NBD_CMD_DISC) {
                conn_kill(c, false);
                return 1;
        }
        atomic_fetch_add(&c->inflight, 1);
        atomic_store(&c->active_usec, util_mono_usec());
        /* Admit the payload before reading or allocating it (a READ above
         * the maximum gets no buffer: nbd_request_check refuses it; a
         * spliced READ needs none). */
        w->spliced = nbd_splice_wanted(c, &w->pipe, req);
        if ((req->type == NBD_CMD_WRITE ||
             (req->type == NBD_CMD_READ && req->len_bytes <= NBD_MAX_PAYLOAD && !w->spliced)) &&
            req->len_bytes > 0) {
                rc = buf_admit(w, req->len_bytes);
                if (rc == 1) {
                        atomic_fetch_sub(&c->inflight, 1);
                        return 1;
                }
        }
        if (req->type == NBD_CMD_WRITE) {
                if (rc == 0)
                        rc = nbd_conn_recv(c, w->buf, req->len_bytes);
                if (rc < 0) {
                        /* Out of memory for a <= 32 MiB payload, or the
                         * client went away mid-payload: either way the
                         * stream cannot continue. */
                        atomic_fetch_sub(&c->inflight, 1);
                        conn_kill(c, true);
                        return 1;
                }
        }
        return 0;
}

static int do_request(struct worker *w, const struct nbd_request *req)
{
        struct nbd_conn *c = w->c;
        unsigned vflags = (req->flags & NBD_CMD_FLAG_FUA) ? VOL_F_FUA : 0;
        int rc;

        rc = nbd_request_check(req, volume_size(c->vol), c->tflags);
        if (rc < 0)
                return rc;
        if (attach_is_link(c->att)) {
                if (req->type == NBD_CMD_READ && req->len_bytes > w->cap)
                        return -ENOMEM;
                return nbd_link_request(c->vol, req, w->buf, vflags);
        }
        /* A3: a read-only attachment never writes, whatever the client does
         * with the READ_ONLY flag (the volume's own role is checked in
         * volume_write/volume_zero). */
        if (attach_read_only(c->att) && (req->type == NBD_CMD_WRITE || req->type == NBD_CMD_TRIM ||
                                         req->type == NBD_CMD_WRITE_ZEROES))
                return -EPERM;
        switch (req->type) {
        case NBD_CMD_READ:
                /* read_request admitted the buffer; out of memory there
                 * leaves none. */
                if (req->len_bytes > w->cap)
                        return -ENOMEM;
                return volume_read(c->vol, w->buf, req->len_bytes, req->off_bytes);
        case NBD_CMD_WRITE:
                return volume_write(c->vol, w->buf, req->len_bytes, req->off_bytes, vflags);
        case NBD_CMD_FLUSH:
                return volume_flush(c->vol);
        case NBD_CMD_TRIM:
                return volume_zero(c->vol, req->off_bytes, req->len_bytes, true, vflags);
        case NBD_CMD_WRITE_ZEROES:
                return volume_zero(c->vol, req->off_bytes, req->len_bytes,
                                   !(req->flags & NBD_CMD_FLAG_NO_HOLE), vflags);
        default:
                /* nbd_request_check admitted only the commands above (DISC
                 * never gets here). */
                assert(!"unreachable command");
                return -EINVAL;
        }
}

static void count_request(struct stats_site *s, const struct nbd_request *req, uint32_t err)
{
        if (!s)
                return;
        if (err) {
                atomic_fetch_add(&s->errors, 1);
                return;
        }
        switch (req->type) {
        case NBD_CMD_READ:
                atomic_fetch_add(&s->reads, 1);
                atomic_fetch_add(&s->read_bytes, req->len_bytes);
                break;
        case NBD_CMD_WRITE:
                atomic_fetch_add(&s->writes, 1);
                atomic_fetch_add(&s->written_bytes, req->len_bytes);
                break;
        case NBD_CMD_FLUSH:
                atomic_fetch_add(&s->flushes, 1);
                break;
        default:
                atomic_fetch_add(&s->trims, 1);
                break;
        }
}

/* Inline reads (docs/design/nbd.md, "Threading"): the reader serves a
 * small plain READ itself, keeping rd_lock, when nothing else is queued on
 * the socket and the bytes are in the page cache; a QD1 client then costs
 * one wake-up per request instead of two (the reader's, and a follower's
 * woken by the unlock only to wait in recv). */
#define NBD_INLINE_MAX (64u * 1024)

static bool inline_wanted(struct worker *w, const struct nbd_request *req)
{
        struct nbd_conn *c = w->c;
        int queued = 0;

        if (w->spliced || c->tls || attach_is_link(c->att) || req->type != NBD_CMD_READ ||
            req->len_bytes == 0 || req->len_bytes > NBD_INLINE_MAX || req->len_bytes > w->cap)
                return false;
        /* More request bytes already here: hand over, so that a follower
         * reads the next request while this one is served. */
        return ioctl(c->fd, FIONREAD, &queued) == 0 && queued == 0;
}

/* 0 or -errno as do_request, or -EAGAIN: not served (part of the range is
 * not cached), hand over and take the blocking path. */
static int inline_read(struct worker *w, const struct nbd_request *req)
{
        struct nbd_conn *c = w->c;
        int rc = nbd_request_check(req, volume_size(c->vol), c->tflags);

        if (rc < 0)
                return rc;
        return volume_read_nowait(c->vol, w->buf, req->len_bytes, req->off_bytes);
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        struct nbd_conn *c = w->c;
        /* &c->rd_lock while this worker is the reader (kept across an
         * inline request), else NULL. */
        pthread_mutex_t *held = NULL;

        for (;;) {
                struct nbd_request req;
                uint8_t rep[NBD_SIMPLE_REPLY_LEN];
                uint32_t err;
                int rc;

                if (!held) {
                        pthread_mutex_lock(&c->rd_lock);
                        held = &c->rd_lock;
                }
                rc = read_request(w, &req);
                if (rc == 1)
                        break;
                rc = inline_wanted(w, &req) ? inline_read(w, &req) : -EAGAIN;
                if (rc == -EAGAIN) {
                        /* The hand-over: the next worker reads while this
                         * one does the I/O. */
                        pthread_mutex_unlock(held);
                        held = NULL;
                        rc = w->spliced ? nbd_splice_fill(c, &w->pipe, &req) : do_request(w, &req);
                }
                err = nbd_errmap(rc);
                count_request(c->srv->stats, &req, err);
                nbd_put32(rep, NBD_MAGIC_SIMPLE_REPLY);
                nbd_put32(rep + 4, err);
                nbd_put64(rep + 8, req.cookie);
                /* The reader never waits for wr_lock (a worker blocked in
                 * send would stop the reading): it hands over first. */
                if (held && pthread_mutex_trylock(&c->wr_lock) != 0) {
                        pthread_mutex_unlock(held);
                        held = NULL;
                }
                if (!held)
                        pthread_mutex_lock(&c->wr_lock);
                if (w->spliced && err == 0)
                        rc = nbd_splice_reply(c, &w->pipe, rep, sizeof(rep), req.len_bytes,
                                              c->srv->lim.send_timeout_sec);
                else if (held) /* inline: plain socket; unlocked if send blocks */
                        rc = sock_send2(c->fd, rep, sizeof(rep), w->buf,
                                        err == 0 ? req.len_bytes : 0, c->srv->lim.send_timeout_sec,
                                        &held);
                else if (req.type == NBD_CMD_READ && err == 0)
                        rc = conn_send2(c, rep, sizeof(rep), w->buf, req.len_bytes,
                                        c->srv->lim.send_timeout_sec);
                else
                        rc = conn_send2(c, rep, sizeof(rep), NULL, 0, c->srv->lim.send_timeout_sec);
                pthread_mutex_unlock(&c->wr_lock);
                buf_release(w);
                atomic_store(&c->active_usec, util_mono_usec());
                atomic_fetch_sub(&c->inflight, 1);
                if (rc < 0) {
                        if (rc == -ETIMEDOUT) {
                                /* Abort (RST at close) rather than leave the
                                 * unsent replies to the kernel: a client
                                 * that reads nothing would keep them, and
                                 * the socket, for minutes. */
                                struct linger lg = {.l_onoff = 1, .l_linger = 0};

                                (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                                log_warn("nbd %s: %s: client read no reply for %d s, closing",
                                         c->srv->site, c->peer, c->srv->lim.send_timeout_sec);
                        }
                        conn_kill(c, true);
                        break;
                }
        }
        if (held)
                pthread_mutex_unlock(held);
        buf_release(w);
        nbd_pipe_close(&w->pipe);
        return NULL;
}

void nbd_conn_serve(struct nbd_conn *c, int nthreads)
{
        struct worker *ws;
        sigset_t oldmask;
        uint64_t freed;
        int started = 1;

        assert(c->vol);
        if (nthreads < 1)
                nthreads = 1;
        ws = calloc((size_t)nthreads, sizeof(*ws));
        if (!ws) {
                log_error("nbd %s: %s: out of memory for workers", c->srv->site, c->peer);
                return;
        }
        for (int i = 0; i < nthreads; i++) {
                ws[i].c = c;
                nbd_pipe_init(&ws[i].pipe);
        }
        nbd_splice_sigpipe_block(&oldmask); /* inherited by the helpers */
        /* This thread is worker 0; fewer helpers than asked is still a
         * correct server, just a slower one. */
        for (int i = 1; i < nthreads; i++) {
                if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
                        log_warn("nbd %s: %s: only %d of %d workers started", c->srv->site, c->peer,
                                 started, nthreads);
                        break;
                }
                started++;
        }
        worker_main(&ws[0]);
        for (int i = 1; i < started; i++)
                pthread_join(ws[i].tid, NULL);
        free(ws);
        pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
        pthread_mutex_lock(&c->pool_lock);
        freed = pool_drop_locked(c);
        assert(c->budget_bytes == 0);
        pthread_mutex_unlock(&c->pool_lock);
        total_give(c->srv, freed);
}
