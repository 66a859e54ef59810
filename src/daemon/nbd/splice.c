/* Zero-copy replies to large plain READs (docs/design/nbd.md, "Large plain
 * READs are spliced, not copied").
 *
 * Each worker owns one pipe, opened on its first large READ. The READ's
 * range is spliced from the volume file into the pipe outside every lock
 * (page references, no copy; an error is known before any reply byte is
 * sent); under wr_lock the header goes out with MSG_MORE and the pipe is
 * spliced into the socket. A pipe that may still hold bytes after an error
 * is closed (and reopened by the next large READ). */
#include "common/util.h"
#include "nbd/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* Asked pipe size: one 1 MiB READ, the common large request. */
#define NBD_PIPE_WANT (1u << 20)
#define NBD_PAGE      4096u

/* Pipes open in the process: each costs two descriptors, and 16 workers x
 * 1024 connections must not take the descriptors that accept and volume
 * opens need. At most a quarter of RLIMIT_NOFILE goes to pipes; past it a
 * worker takes the copy path. */
static atomic_int g_pipes;

static int pipes_max(void)
{
        static atomic_int max;
        struct rlimit rl;
        int m = atomic_load(&max);

        if (m == 0) {
                m = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                        ? (int)MIN(rl.rlim_cur / 8, (rlim_t)1 << 20)
                        : 1 << 16;
                atomic_store(&max, MAX(m, 1));
        }
        return atomic_load(&max);
}

void nbd_pipe_init(struct nbd_pipe *p)
{
        p->rd = p->wr = -1;
        p->cap = 0;
}

void nbd_pipe_close(struct nbd_pipe *p)
{
        if (p->rd >= 0) {
                close(p->rd);
                atomic_fetch_sub(&g_pipes, 1);
        }
        if (p->wr >= 0)
                close(p->wr);
        nbd_pipe_init(p);
}

static int pipe_open(struct nbd_pipe *p)
{
        int fds[2], sz;

        if (atomic_fetch_add(&g_pipes, 1) >= pipes_max()) {
                atomic_fetch_sub(&g_pipes, 1);
                return -EMFILE;
        }
        if (pipe2(fds, O_CLOEXEC) < 0) {
                atomic_fetch_sub(&g_pipes, 1);
                return -errno;
        }
        p->rd = fds[0];
        p->wr = fds[1];
        /* Refused past pipe-max-size or pipe-user-pages-soft (unprivileged):
         * the default size then decides which READs are spliced. */
        (void)fcntl(p->wr, F_SETPIPE_SZ, (int)NBD_PIPE_WANT);
        sz = fcntl(p->wr, F_GETPIPE_SZ);
        if (sz <= 0) {
                nbd_pipe_close(p);
                return -EIO;
        }
        p->cap = (size_t)sz;
        return 0;
}

bool nbd_splice_wanted(struct nbd_conn *c, struct nbd_pipe *p, const struct nbd_request *req)
{
        if (c->tls || attach_is_link(c->att) || req->type != NBD_CMD_READ ||
            req->len_bytes < NBD_SPLICE_MIN || req->len_bytes > NBD_MAX_PAYLOAD)
                return false;
        if (p->rd < 0 && pipe_open(p) < 0)
                return false; /* out of descriptors: the copy path still works */
        /* The pipe holds one page (or part of one) per slot: an unaligned
         * range spans one page more than its length. */
        return (req->off_bytes % NBD_PAGE + req->len_bytes + NBD_PAGE - 1) / NBD_PAGE <=
               p->cap / NBD_PAGE;
}

int nbd_splice_fill(struct nbd_conn *c, struct nbd_pipe *p, const struct nbd_request *req)
{
        int rc = nbd_request_check(req, volume_size(c->vol), c->tflags);

        if (rc == 0 && (rc = volume_splice_read(c->vol, p->wr, req->len_bytes, req->off_bytes)) < 0)
                nbd_pipe_close(p); /* part of the range may be in it */
        return rc;
}

/* splice has no MSG_NOSIGNAL: a gone client would raise SIGPIPE in a
 * process that did not ignore it (the library's users, the unit tests).
 * The workers of a connection run with SIGPIPE blocked, and a SIGPIPE a
 * splice left pending on this thread is taken off before returning. */
void nbd_splice_sigpipe_block(sigset_t *old)
{
        sigset_t s;

        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &s, old);
}

static void sigpipe_drain(void)
{
        struct timespec zero = {0, 0};
        sigset_t s;

        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        while (sigtimedwait(&s, NULL, &zero) == SIGPIPE)
                ;
}

static int64_t unacked_bytes(int fd)
{
        int v = 0;

        return ioctl(fd, SIOCOUTQ, &v) == 0 ? v : 0;
}

int nbd_splice_reply(struct nbd_conn *c, struct nbd_pipe *p, const void *hdr, size_t hlen,
                     size_t len, int timeout_sec)
{
        const char *h = hdr;
        int64_t unacked = unacked_bytes(c->fd), progress_usec = util_mono_usec(), queued = 0;

        while (hlen > 0 || len > 0) {
                size_t want = hlen > 0 ? hlen : len;
                ssize_t n;
                int64_t now_unacked, now;

                if (hlen > 0)
                        n = send(c->fd, h, hlen, MSG_NOSIGNAL | MSG_MORE);
                else
                        n = splice(p->rd, NULL, c->fd, NULL, len, SPLICE_F_MOVE);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                        n = -errno;
                        if (n == -EPIPE)
                                sigpipe_drain();
                        nbd_pipe_close(p);
                        return (int)n;
                }
                if (n > 0) {
                        queued += n;
                        if (hlen > 0) {
                                h += n;
                                hlen -= (size_t)n;
                        } else {
                                len -= (size_t)n;
                        }
                }
                if (n == (ssize_t)want)
                        continue;
                /* Short: the socket buffer was full for SO_SNDTIMEO. The
                 * send timeout as in sock_send2 (conn.c): fail only when
                 * the client acknowledged nothing for timeout_sec. */
                now_unacked = unacked_bytes(c->fd);
                now = util_mono_usec();
                if (unacked + queued > now_unacked) {
                        progress_usec = now;
                } else if (timeout_sec > 0 &&
                           now - progress_usec >= (int64_t)timeout_sec * 1000000) {
                        nbd_pipe_close(p);
                        return -ETIMEDOUT;
                }
                unacked = now_unacked;
                queued = 0;
        }
        return 0;
}
