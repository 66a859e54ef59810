/* A link to a DR volume on another node, over NBD (libnbd).
 *
 * One connection, many commands in flight: a caller submits its command with
 * libnbd's aio API from its own thread (the request usually leaves on the
 * socket right there) and then waits for the command's completion callback.
 * There is no I/O thread: a waiting caller that finds nobody polling the
 * socket becomes the leader and polls it itself, feeding libnbd's state
 * machine (replies in, queued requests out); the others sleep until the
 * leader's callbacks complete their commands or it hands the socket over
 * (req_wait). An eventfd interrupts the leader's poll when a submit left
 * bytes to send. docs/design/replication.md, "Remote links", says why this
 * shape and not blocking calls, an I/O thread or several connections.
 *
 * Broken link: a connection error, or a command with no reply within
 * timeout_ms, sets `broken`. A timed-out caller shuts the socket down, so
 * libnbd sees EOF at once and fails every command in flight; later ops fail
 * fast. No caller returns while libnbd may still touch its buffer: it waits
 * for its own completion callback (which the shutdown makes prompt).
 *
 * Locks: conn_lk (rwlock: ops read, reconnect/close write) -> mu (request
 * state, broken). libnbd's handle lock is taken inside nbd_* calls; its
 * callbacks run under it and take mu only. */
#include "engine/link.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/volume.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_CONNECT_MS 10000u
#define MAX_WRITE_BYTES    (32u << 20) /* the protocol's recommended payload limit */
#define MAX_ZERO_BYTES     (1u << 30)  /* request lengths are 32-bit */
#define MAX_PIECES         64u
/* Writes leave in pieces of at most this, all in flight at once: the DR
 * node's workers then decrypt one piece while writing the previous one,
 * and this side encrypts the next meanwhile (a 1 MiB write as one request
 * ran those steps one after the other: ~0.3x of a local leg). */
#define WRITE_PIECE_BYTES (256u << 10)

struct link_nbd {
        struct link base;
        char *uri, *host, *port, *export_name, *psk_identity, *psk_key_hex;
        unsigned timeout_ms, connect_timeout_ms;

        pthread_rwlock_t conn_lk;
        /* Connection (replaced under conn_lk held for writing). */
        struct nbd_handle *h;
        int sock_fd;
        int wake_fd; /* eventfd: interrupts the leader's poll */
        bool can_fua, can_flush, can_zero, can_trim;
        uint32_t max_write;   /* the server's maximum request */
        uint32_t write_piece; /* what writes are split into (<= max_write) */
        _Atomic uint64_t size_bytes;

        pthread_mutex_t mu;
        int broken; /* 0 or -errno; under mu */
        /* Requests on the wire now, and the most ever (pipelining probe). */
        unsigned inflight, max_inflight; /* under mu */
        /* Leader/follower: at most one waiting caller (the leader) polls
         * the socket and feeds libnbd; the others (followers, listed here
         * oldest first) sleep on their request's cv. Under mu. */
        bool polling;
        struct req *followers, *followers_tail;
        uint64_t led_rounds, handovers; /* poll rounds run by leaders; leader changes */
};

/* One caller's command, split into at most MAX_PIECES NBD requests. Shared
 * with libnbd: freed when the caller and every piece's .free let go. */
struct req {
        struct link_nbd *l;
        pthread_cond_t cv;
        atomic_int refs;
        unsigned pending;          /* pieces not completed; under l->mu */
        int err;                   /* first error; under l->mu */
        struct timespec deadline;  /* CLOCK_MONOTONIC */
        int64_t deadline_us;       /* the same, util_mono_usec() */
        struct req *fnext, *fprev; /* in l->followers; under l->mu */
        struct piece {
                struct req *r;
                bool done; /* under l->mu */
        } pieces[MAX_PIECES];
};

static struct link_nbd *ln_of(struct link *l)
{
        return (struct link_nbd *)l;
}

/* Errors that mean the connection, not the command, failed. */
static bool conn_error(int err)
{
        return err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET || err == EPIPE ||
               err == ECONNABORTED || err == ETIMEDOUT;
}

static int nbd_err(void)
{
        int e = nbd_get_errno();

        return e > 0 ? -e : -EIO;
}

static void req_put(struct req *r)
{
        if (atomic_fetch_sub(&r->refs, 1) == 1) {
                pthread_cond_destroy(&r->cv);
                free(r);
        }
}

static struct req *req_new(struct link_nbd *l)
{
        struct req *r = calloc(1, sizeof(*r));
        pthread_condattr_t ca;

        if (!r)
                return NULL;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->cv, &ca);
        pthread_condattr_destroy(&ca);
        r->l = l;
        atomic_init(&r->refs, 1);
        return r;
}

/* A piece ends (reply, abort, or failed submit); idempotent. Under mu. */
static void piece_end_locked(struct piece *p, int err)
{
        struct req *r = p->r;

        if (p->done)
                return;
        p->done = true;
        if (err && !r->err)
                r->err = -err;
        if (err && conn_error(err) && !r->l->broken)
                r->l->broken = -ENOTCONN;
        r->l->inflight--;
        if (--r->pending == 0)
                pthread_cond_broadcast(&r->cv);
}

static int on_complete(void *ud, int *error)
{
        struct piece *p = ud;
        struct link_nbd *l = p->r->l;

        pthread_mutex_lock(&l->mu);
        piece_end_locked(p, *error);
        pthread_mutex_unlock(&l->mu);
        return 1; /* retire */
}

static void on_free(void *ud)
{
        req_put(((struct piece *)ud)->r);
}

static void wake_io(struct link_nbd *l)
{
        uint64_t one = 1;

        if (write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_warn("link nbd: cannot wake the leader: %s", strerror(errno));
}

/* Break the link (if not yet) and kill the connection: libnbd then fails
 * every command in flight without waiting for the server. */
static void link_break(struct link_nbd *l, int err)
{
        pthread_mutex_lock(&l->mu);
        if (!l->broken)
                l->broken = err;
        pthread_mutex_unlock(&l->mu);
        if (l->sock_fd >= 0)
                shutdown(l->sock_fd, SHUT_RDWR);
        wake_io(l);
}

/* The PSK file libnbd reads during the TLS handshake lives in an anonymous
 * memory file (memfd), reached through /proc/self/fd: the key never touches
 * a filesystem, and the fd is closed as soon as the handshake is over. */
static int psk_memfd(struct link_nbd *l, char *path, size_t pathlen)
{
        size_t n = strlen(l->psk_identity) + strlen(l->psk_key_hex) + 3;
        char *line = malloc(n);
        int fd, rc = 0;

        if (!line)
                return -ENOMEM;
        snprintf(line, n, "%s:%s\n", l->psk_identity, l->psk_key_hex);
        fd = memfd_create("evsrep-link-psk", MFD_CLOEXEC);
        if (fd < 0)
                rc = -errno;
        else if ((rc = util_write_full(fd, line, strlen(line))) < 0)
                close(fd);
        explicit_bzero(line, n);
        free(line);
        if (rc < 0)
                return rc;
        snprintf(path, pathlen, "/proc/self/fd/%d", fd);
        return fd;
}

/* A new handle, connected (handshake and TLS done) within connect_timeout_ms. */
static int conn_open(struct link_nbd *l)
{
        struct nbd_handle *h = nbd_create();
        char psk_path[64];
        int psk_fd = -1, rc = 0;
        int64_t deadline, size;

        if (!h)
                return -ENOMEM;
        if (l->psk_identity) {
                if ((psk_fd = psk_memfd(l, psk_path, sizeof(psk_path))) < 0) {
                        nbd_close(h);
                        return psk_fd;
                }
                if (nbd_set_tls(h, LIBNBD_TLS_REQUIRE) < 0 ||
                    nbd_set_tls_username(h, l->psk_identity) < 0 ||
                    nbd_set_tls_psk_file(h, psk_path) < 0)
                        goto fail_nbd;
        }
        if (l->export_name && nbd_set_export_name(h, l->export_name) < 0)
                goto fail_nbd;
        if ((l->uri ? nbd_aio_connect_uri(h, l->uri) : nbd_aio_connect_tcp(h, l->host, l->port)) <
            0)
                goto fail_nbd;
        deadline = util_mono_usec() + (int64_t)l->connect_timeout_ms * 1000;
        while (nbd_aio_is_connecting(h)) {
                int64_t left_ms = (deadline - util_mono_usec()) / 1000;

                if (left_ms <= 0) {
                        rc = -ETIMEDOUT;
                        goto fail;
                }
                if (nbd_poll(h, (int)MIN(left_ms, 1000)) < 0)
                        goto fail_nbd;
        }
        if (!nbd_aio_is_ready(h)) {
                rc = -ECONNREFUSED;
                log_warn("link nbd: connect to %s: %s", l->uri ? l->uri : l->host,
                         nbd_get_error() ? nbd_get_error() : "not ready");
                goto fail;
        }
        if ((size = nbd_get_size(h)) < 0)
                goto fail_nbd;
        if (psk_fd >= 0)
                close(psk_fd);
        l->h = h;
        l->sock_fd = nbd_aio_get_fd(h);
        {
                /* libnbd leaves Nagle on: a request's small header record
                 * (or a lone 4 KiB write) would wait for the ACK of the
                 * previous segment. The server sets it on its side. */
                int one = 1;

                (void)setsockopt(l->sock_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        l->can_fua = nbd_can_fua(h) == 1;
        l->can_flush = nbd_can_flush(h) == 1;
        l->can_zero = nbd_can_zero(h) == 1;
        l->can_trim = nbd_can_trim(h) == 1;
        l->max_write = MAX_WRITE_BYTES;
        {
                int64_t mx = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
                if (mx > 0 && mx < MAX_WRITE_BYTES)
                        l->max_write = (uint32_t)mx;
        }
        l->write_piece = MIN(l->max_write, WRITE_PIECE_BYTES);
        atomic_store(&l->size_bytes, (uint64_t)size);
        return 0;
fail_nbd:
        rc = nbd_err();
        log_warn("link nbd: connect to %s: %s", l->uri ? l->uri : l->host,
                 nbd_get_error() ? nbd_get_error() : strerror(-rc));
fail:
        if (psk_fd >= 0)
                close(psk_fd);
        nbd_close(h);
        return rc < 0 ? rc : -EIO;
}

/* Under conn_lk held for writing: no caller is in an op. */
static void conn_close(struct link_nbd *l)
{
        if (l->h) {
                nbd_close(l->h); /* fails (and frees) anything still queued */
                l->h = NULL;
        }
        l->sock_fd = -1;
}

/* TCP_CORK on (1) or off (0): while on, the kernel sends only full
 * segments, so the TLS records libnbd writes one sendmsg each (16 KiB of
 * payload at most, and a 28-byte request header on its own) leave as a few
 * 64 KiB segments instead of one segment per record; turning it off sends
 * what is left at once. Every cork is followed by an uncork in the same
 * thread, so whatever the interleaving of callers the last one leaves the
 * socket uncorked with nothing held (replication.md, "Remote links"). */
static void sock_cork(struct link_nbd *l, int on)
{
        if (l->sock_fd >= 0)
                (void)setsockopt(l->sock_fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

/* ---- commands ---- */

enum cmd { CMD_WRITE, CMD_ZERO, CMD_TRIM, CMD_FLUSH, CMD_READ };

static int64_t submit(struct link_nbd *l, struct piece *p, enum cmd c, const void *buf,
                      uint64_t len, uint64_t off, uint32_t fl)
{
        nbd_completion_callback cb = {.callback = on_complete, .user_data = p, .free = on_free};

        atomic_fetch_add(&p->r->refs, 1); /* released by on_free, also on failure */
        switch (c) {
        case CMD_WRITE:
                return nbd_aio_pwrite(l->h, buf, len, off, cb, fl);
        case CMD_ZERO:
                return nbd_aio_zero(l->h, len, off, cb, fl);
        case CMD_TRIM:
                return nbd_aio_trim(l->h, len, off, cb, fl);
        case CMD_FLUSH:
                return nbd_aio_flush(l->h, cb, fl);
        case CMD_READ: /* buf is the caller's, writable (ln_read) */
                return nbd_aio_pread(l->h, (void *)buf, len, off, cb, fl);
        }
        return -1;
}

/* Issue [off, off+len) as pieces of at most `max` bytes, at most MAX_PIECES
 * of them; *done_bytes says how much was issued. Caller holds conn_lk for
 * reading. Returns the request (wait for it with req_wait), or NULL with
 * *err set when nothing was issued. */
static struct req *req_issue(struct link_nbd *l, enum cmd c, const void *buf, uint64_t len,
                             uint64_t off, uint32_t fl, uint64_t max, uint64_t *done_bytes,
                             int *err)
{
        struct req *r;
        unsigned n = 0;
        uint64_t len0 = len;

        pthread_mutex_lock(&l->mu);
        *err = l->broken;
        pthread_mutex_unlock(&l->mu);
        if (*err)
                return NULL;
        if (!(r = req_new(l))) {
                *err = -ENOMEM;
                return NULL;
        }
        r->deadline_us = util_mono_usec() + (int64_t)l->timeout_ms * 1000;
        r->deadline.tv_sec = r->deadline_us / 1000000;
        r->deadline.tv_nsec = (long)(r->deadline_us % 1000000) * 1000;
        if (c == CMD_WRITE)
                sock_cork(l, 1);
        do {
                uint64_t plen = c == CMD_FLUSH ? 0 : MIN(len, max);
                struct piece *p = &r->pieces[n++];

                p->r = r;
                pthread_mutex_lock(&l->mu);
                r->pending++;
                if (++l->inflight > l->max_inflight)
                        l->max_inflight = l->inflight;
                pthread_mutex_unlock(&l->mu);
                if (submit(l, p, c, buf, plen, off, fl) < 0) {
                        int e = nbd_get_errno();
                        /* Asked before taking mu: callbacks take mu under
                         * libnbd's handle lock, never the other way. */
                        bool dead = !nbd_aio_is_ready(l->h) && !nbd_aio_is_processing(l->h);

                        pthread_mutex_lock(&l->mu);
                        piece_end_locked(p, e > 0 ? e : EIO);
                        if (dead && !l->broken)
                                l->broken = -ENOTCONN;
                        pthread_mutex_unlock(&l->mu);
                        break;
                }
                if (buf)
                        buf = (const char *)buf + plen;
                off += plen;
                len -= plen;
        } while (len > 0 && n < MAX_PIECES);
        if (c == CMD_WRITE)
                sock_cork(l, 0);
        *done_bytes = len0 - len;
        /* Bytes left in the socket buffer: a leader polling for replies
         * only must poll for writability too. (No leader: the next waiter
         * leads and sends them.) */
        if (nbd_aio_get_direction(l->h) & LIBNBD_AIO_DIRECTION_WRITE)
                wake_io(l);
        return r;
}

/* One poll round of the leader: wait for the socket (or the eventfd) at
 * most timeout_ms, then let libnbd read replies (running their completion
 * callbacks) or send queued requests. Called without mu. */
static void lead_round(struct link_nbd *l, int timeout_ms)
{
        struct pollfd fds[2];
        unsigned dir;
        int rc;

        if (nbd_aio_is_dead(l->h) || nbd_aio_is_closed(l->h)) {
                pthread_mutex_lock(&l->mu);
                if (!l->broken)
                        l->broken = -ENOTCONN;
                pthread_mutex_unlock(&l->mu);
                fds[0].fd = -1;
        } else {
                fds[0].fd = l->sock_fd;
        }
        dir = nbd_aio_get_direction(l->h);
        fds[0].events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
                        (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);
        fds[0].revents = 0;
        fds[1].fd = l->wake_fd;
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        rc = poll(fds, 2, timeout_ms);
        if (rc < 0) {
                if (errno != EINTR) {
                        log_error("link nbd: poll: %s", strerror(errno));
                        link_break(l, -EIO);
                }
                return;
        }
        if (fds[1].revents & POLLIN) {
                uint64_t n;
                if (read(l->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                        log_warn("link nbd: eventfd read: %s", strerror(errno));
        }
        if (fds[0].fd < 0)
                return;
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && (dir & LIBNBD_AIO_DIRECTION_READ))
                nbd_aio_notify_read(l->h);
        else if (fds[0].revents & (POLLOUT | POLLHUP | POLLERR)) {
                sock_cork(l, 1); /* the rest of the queued pieces, as in req_issue */
                nbd_aio_notify_write(l->h);
                sock_cork(l, 0);
        }
}

static void follower_add(struct link_nbd *l, struct req *r)
{
        r->fnext = NULL;
        r->fprev = l->followers_tail;
        if (l->followers_tail)
                l->followers_tail->fnext = r;
        else
                l->followers = r;
        l->followers_tail = r;
}

static void follower_del(struct link_nbd *l, struct req *r)
{
        if (r->fprev)
                r->fprev->fnext = r->fnext;
        else
                l->followers = r->fnext;
        if (r->fnext)
                r->fnext->fprev = r->fprev;
        else
                l->followers_tail = r->fprev;
        r->fnext = r->fprev = NULL;
}

/* Wait for every piece of r (or its deadline), then drop r.
 *
 * Leader/follower: a waiter finding nobody polling the socket becomes the
 * leader and drives libnbd itself, so a reply wakes the thread that waits
 * for it directly (server -> caller), not an I/O thread that then wakes
 * the caller. The leader's callbacks wake the followers whose commands
 * completed. A leader whose own command completed hands the socket to the
 * oldest follower (one wake-up, only when someone still waits). Invariant
 * under mu: if nobody polls and followers exist, the oldest was signalled;
 * so a command with a waiter always has someone reading its reply. A
 * command without a waiter (between submit and wait) needs nobody: its
 * reply waits in the socket for the caller. */
static int req_wait(struct link_nbd *l, struct req *r)
{
        bool timed_out = false;
        int rc;

        pthread_mutex_lock(&l->mu);
        while (r->pending > 0) {
                if (!l->polling) {
                        int64_t left_ms = (r->deadline_us - util_mono_usec() + 999) / 1000;

                        l->polling = true;
                        l->led_rounds++;
                        pthread_mutex_unlock(&l->mu);
                        if (left_ms <= 0 && !timed_out) {
                                /* The shutdown makes libnbd fail every
                                 * command at once; it may still hold buf
                                 * until then, so keep polling. */
                                link_break(l, -ETIMEDOUT);
                                timed_out = true;
                        }
                        lead_round(l, timed_out ? 100 : (int)MIN(left_ms, 60000));
                        pthread_mutex_lock(&l->mu);
                        l->polling = false;
                        continue;
                }
                follower_add(l, r);
                if (timed_out)
                        rc = pthread_cond_wait(&r->cv, &l->mu);
                else
                        rc = pthread_cond_timedwait(&r->cv, &l->mu, &r->deadline);
                follower_del(l, r);
                if (rc == ETIMEDOUT && r->pending > 0 && !timed_out) {
                        pthread_mutex_unlock(&l->mu);
                        link_break(l, -ETIMEDOUT); /* wakes the leader */
                        timed_out = true;
                        pthread_mutex_lock(&l->mu);
                }
        }
        if (!l->polling && l->followers) {
                l->handovers++;
                pthread_cond_signal(&l->followers->cv);
        }
        rc = r->err;
        if (rc && l->broken)
                rc = l->broken;
        pthread_mutex_unlock(&l->mu);
        req_put(r);
        return rc;
}

/* Issue [off, off+len) and wait for all of it. Caller holds conn_lk for
 * reading. */
static int run(struct link_nbd *l, enum cmd c, const void *buf, uint64_t len, uint64_t off,
               uint32_t fl, uint64_t max)
{
        do {
                uint64_t done = 0;
                int rc;
                struct req *r = req_issue(l, c, buf, len, off, fl, max, &done, &rc);

                if (!r)
                        return rc;
                if ((rc = req_wait(l, r)) < 0)
                        return rc;
                if (buf)
                        buf = (const char *)buf + done;
                off += done;
                len -= done;
        } while (len > 0); /* more than MAX_PIECES pieces: the rest */
        return 0;
}

static int ln_write(struct link *lk, const void *buf, size_t len, uint64_t off, unsigned flags)
{
        struct link_nbd *l = ln_of(lk);
        bool fua = flags & VOL_F_FUA;
        int rc;

        if (len == 0)
                return 0;
        pthread_rwlock_rdlock(&l->conn_lk);
        rc = run(l, CMD_WRITE, buf, len, off, fua && l->can_fua ? LIBNBD_CMD_FLAG_FUA : 0,
                 l->write_piece);
        if (rc == 0 && fua && !l->can_fua && l->can_flush)
                rc = run(l, CMD_FLUSH, NULL, 0, 0, 0, 0);
        pthread_rwlock_unlock(&l->conn_lk);
        return rc;
}

/* The write in two halves (link.h): submit issues the first MAX_PIECES
 * pieces and keeps conn_lk read-locked until wait, which waits for them,
 * writes the rest (if any) and emulates FUA. */
/* Online verify: NBD_CMD_READ in pieces of at most max_write bytes. */
static int ln_read(struct link *lk, void *buf, size_t len, uint64_t off)
{
        struct link_nbd *l = ln_of(lk);
        int rc;

        if (len == 0)
                return 0;
        pthread_rwlock_rdlock(&l->conn_lk);
        rc = run(l, CMD_READ, buf, len, off, 0, l->max_write);
        pthread_rwlock_unlock(&l->conn_lk);
        return rc;
}

static int ln_submit(struct link *lk, const void *buf, size_t len, uint64_t off, unsigned flags,
                     struct link_op *op)
{
        struct link_nbd *l = ln_of(lk);
        bool fua = flags & VOL_F_FUA;
        uint64_t done = 0;
        int rc;

        *op = (struct link_op){.buf = buf, .len = len, .off = off, .flags = flags};
        if (len == 0)
                return 0;
        pthread_rwlock_rdlock(&l->conn_lk);
        op->priv =
            req_issue(l, CMD_WRITE, buf, len, off, fua && l->can_fua ? LIBNBD_CMD_FLAG_FUA : 0,
                      l->write_piece, &done, &rc);
        if (!op->priv) {
                pthread_rwlock_unlock(&l->conn_lk);
                return rc;
        }
        op->buf = (const char *)buf + done;
        op->off = off + done;
        op->len = len - done;
        return 0;
}

static int ln_wait(struct link *lk, struct link_op *op)
{
        struct link_nbd *l = ln_of(lk);
        bool fua = op->flags & VOL_F_FUA;
        int rc;

        if (!op->priv)
                return 0; /* len 0: nothing was issued, no lock taken */
        rc = req_wait(l, op->priv);
        op->priv = NULL;
        if (rc == 0 && op->len > 0)
                rc = run(l, CMD_WRITE, op->buf, op->len, op->off,
                         fua && l->can_fua ? LIBNBD_CMD_FLAG_FUA : 0, l->write_piece);
        if (rc == 0 && fua && !l->can_fua && l->can_flush)
                rc = run(l, CMD_FLUSH, NULL, 0, 0, 0, 0);
        pthread_rwlock_unlock(&l->conn_lk);
        return rc;
}

static int zero_by_writes(struct link_nbd *l, uint64_t off, uint64_t len, uint32_t fl)
{
        size_t blen = (size_t)MIN(len, 1u << 20);
        void *zbuf = calloc(1, blen);
        int rc = 0;

        if (!zbuf)
                return -ENOMEM;
        while (len > 0 && rc == 0) {
                uint64_t n = MIN(len, blen);

                rc = run(l, CMD_WRITE, zbuf, n, off, fl, l->write_piece);
                off += n;
                len -= n;
        }
        free(zbuf);
        return rc;
}

static int ln_zero(struct link *lk, uint64_t off, uint64_t len, bool punch, unsigned flags)
{
        struct link_nbd *l = ln_of(lk);
        bool fua = flags & VOL_F_FUA;
        uint32_t ffl = fua && l->can_fua ? LIBNBD_CMD_FLAG_FUA : 0;
        int rc;

        if (len == 0)
                return 0;
        pthread_rwlock_rdlock(&l->conn_lk);
        /* WRITE_ZEROES reads back as zeroes whatever the flags; NO_HOLE asks
         * the server to keep the blocks allocated (no punch wanted). */
        if (l->can_zero)
                rc = run(l, CMD_ZERO, NULL, len, off, ffl | (punch ? 0 : LIBNBD_CMD_FLAG_NO_HOLE),
                         MAX_ZERO_BYTES);
        else
                rc = zero_by_writes(l, off, len, ffl);
        if (rc == 0 && fua && !l->can_fua && l->can_flush)
                rc = run(l, CMD_FLUSH, NULL, 0, 0, 0, 0);
        pthread_rwlock_unlock(&l->conn_lk);
        return rc;
}

static int ln_flush(struct link *lk)
{
        struct link_nbd *l = ln_of(lk);
        int rc;

        pthread_rwlock_rdlock(&l->conn_lk);
        if (l->can_flush) {
                rc = run(l, CMD_FLUSH, NULL, 0, 0, 0, 0);
        } else {
                /* A server without flush writes through; still report a
                 * broken link. */
                pthread_mutex_lock(&l->mu);
                rc = l->broken;
                pthread_mutex_unlock(&l->mu);
        }
        pthread_rwlock_unlock(&l->conn_lk);
        return rc;
}

/* NBD has no resize command: the control plane grows the remote volume on
 * its own node first; here we only check that it did. */
static int ln_resize(struct link *lk, uint64_t size_bytes)
{
        return atomic_load(&ln_of(lk)->size_bytes) == size_bytes ? 0 : -EOPNOTSUPP;
}

static uint64_t ln_size(struct link *lk)
{
        return atomic_load(&ln_of(lk)->size_bytes);
}

static void ln_free(struct link_nbd *l)
{
        if (l->wake_fd >= 0)
                close(l->wake_fd);
        pthread_rwlock_destroy(&l->conn_lk);
        pthread_mutex_destroy(&l->mu);
        if (l->psk_key_hex)
                explicit_bzero(l->psk_key_hex, strlen(l->psk_key_hex));
        free(l->uri);
        free(l->host);
        free(l->port);
        free(l->export_name);
        free(l->psk_identity);
        free(l->psk_key_hex);
        free(l);
}

static void ln_close(struct link *lk)
{
        struct link_nbd *l = ln_of(lk);

        pthread_rwlock_wrlock(&l->conn_lk);
        if (l->h) {
                pthread_mutex_lock(&l->mu);
                bool healthy = l->broken == 0;
                pthread_mutex_unlock(&l->mu);
                /* A clean NBD_CMD_DISC when the server is there (usually
                 * sent at once; else at most ~1 s of polling). */
                if (healthy && nbd_aio_disconnect(l->h, 0) == 0)
                        for (int i = 0;
                             i < 10 && !nbd_aio_is_closed(l->h) && !nbd_aio_is_dead(l->h) &&
                             nbd_aio_get_direction(l->h) & LIBNBD_AIO_DIRECTION_WRITE;
                             i++)
                                nbd_poll(l->h, 100);
        }
        conn_close(l);
        pthread_rwlock_unlock(&l->conn_lk);
        ln_free(l);
}

int link_nbd_reconnect(struct link *lk)
{
        struct link_nbd *l = ln_of(lk);
        int rc;

        pthread_rwlock_wrlock(&l->conn_lk);
        conn_close(l);
        rc = conn_open(l);
        pthread_mutex_lock(&l->mu);
        if (rc == 0)
                l->broken = 0;
        else if (!l->broken)
                l->broken = rc; /* no handle now: ops must fail fast */
        pthread_mutex_unlock(&l->mu);
        pthread_rwlock_unlock(&l->conn_lk);
        return rc;
}

int link_nbd_retarget(struct link *lk, const char *host, const char *port)
{
        struct link_nbd *l = ln_of(lk);
        char *h = strdup(host), *p = strdup(port);

        if (!h || !p) {
                free(h);
                free(p);
                return -ENOMEM;
        }
        pthread_rwlock_wrlock(&l->conn_lk);
        free(l->host);
        free(l->port);
        free(l->uri);
        l->uri = NULL;
        l->host = h;
        l->port = p;
        pthread_rwlock_unlock(&l->conn_lk);
        return 0;
}

int link_nbd_broken(struct link *lk)
{
        struct link_nbd *l = ln_of(lk);
        int rc;

        pthread_mutex_lock(&l->mu);
        rc = l->broken;
        pthread_mutex_unlock(&l->mu);
        return rc;
}

void link_nbd_counters(struct link *lk, uint64_t *led_rounds, uint64_t *handovers)
{
        struct link_nbd *l = ln_of(lk);

        pthread_mutex_lock(&l->mu);
        *led_rounds = l->led_rounds;
        *handovers = l->handovers;
        pthread_mutex_unlock(&l->mu);
}

int link_nbd_corked(struct link *lk)
{
        struct link_nbd *l = ln_of(lk);
        int on = 0, rc;
        socklen_t sl = sizeof(on);

        pthread_rwlock_rdlock(&l->conn_lk);
        rc = l->sock_fd < 0                                                ? -ENOTCONN
             : getsockopt(l->sock_fd, IPPROTO_TCP, TCP_CORK, &on, &sl) < 0 ? -errno
                                                                           : on != 0;
        pthread_rwlock_unlock(&l->conn_lk);
        return rc;
}

unsigned link_nbd_max_inflight(struct link *lk)
{
        struct link_nbd *l = ln_of(lk);
        unsigned n;

        pthread_mutex_lock(&l->mu);
        n = l->max_inflight;
        pthread_mutex_unlock(&l->mu);
        return n;
}

static const struct link_ops g_nbd_ops = {
    .write = ln_write,
    .zero = ln_zero,
    .flush = ln_flush,
    .resize = ln_resize,
    .size = ln_size,
    .close = ln_close,
    .reconnect = link_nbd_reconnect,
    .submit = ln_submit,
    .wait = ln_wait,
    .read = ln_read,
};

static int dup_opt(char **dst, const char *src)
{
        *dst = NULL;
        if (src && !(*dst = strdup(src)))
                return -ENOMEM;
        return 0;
}

int link_nbd_open(const struct link_nbd_cfg *cfg, struct link **out)
{
        struct link_nbd *l = calloc(1, sizeof(*l));
        pthread_rwlockattr_t ra;
        int rc;

        if (!l)
                return -ENOMEM;
        l->wake_fd = -1;
        l->sock_fd = -1;
        pthread_rwlockattr_init(&ra);
        /* A reconnect must not starve behind a stream of (failing) ops. */
        pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&l->conn_lk, &ra);
        pthread_rwlockattr_destroy(&ra);
        pthread_mutex_init(&l->mu, NULL);
        if ((!cfg->uri && (!cfg->host || !cfg->port)) ||
            (cfg->psk_identity && (!cfg->psk_key_hex || strchr(cfg->psk_identity, '\n')))) {
                rc = -EINVAL;
                goto fail;
        }
        if ((rc = dup_opt(&l->uri, cfg->uri)) < 0 || (rc = dup_opt(&l->host, cfg->host)) < 0 ||
            (rc = dup_opt(&l->port, cfg->port)) < 0 ||
            (rc = dup_opt(&l->export_name, cfg->export_name)) < 0 ||
            (rc = dup_opt(&l->psk_identity, cfg->psk_identity)) < 0 ||
            (rc = dup_opt(&l->psk_key_hex, cfg->psk_key_hex)) < 0)
                goto fail;
        l->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
        l->connect_timeout_ms =
            cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
        l->base.ops = &g_nbd_ops;
        if ((l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
                rc = -errno;
                goto fail;
        }
        if ((rc = conn_open(l)) < 0) {
                if (!cfg->down_size_bytes)
                        goto fail;
                log_warn("link nbd: %s:%s unreachable (%s): the link starts broken",
                         l->host ? l->host : l->uri, l->port ? l->port : "", strerror(-rc));
                l->broken = rc;
                atomic_store(&l->size_bytes, cfg->down_size_bytes);
        }
        *out = &l->base;
        return 0;
fail:
        ln_free(l);
        return rc;
}
