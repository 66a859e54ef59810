/* Internals shared by the NBD server's files (server, handshake, conn).
 *
 * Ownership: the server owns its listener, its wake eventfd and the list of
 * connections. A connection owns its socket (closed when the connection is
 * reaped, after its thread is joined), its volume reference (put when its
 * workers are done) and its worker threads (joined by its main thread). */
#ifndef EVSREP_NBD_INTERNAL_H
#define EVSREP_NBD_INTERNAL_H

#include "common/stats.h"
#include "nbd/nbd.h"
#include "nbd/proto.h"
#include "nbd/tls.h"
#include "volume/attach.h"
#include "volume/volume.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define NBD_MAX_THREADS_PER_CONN 64
/* Connection caps and timeouts are configurable: struct nbd_limits. */

struct nbd_server;

struct nbd_conn {
        struct nbd_server *srv;
        int fd;
        pthread_t thread;
        struct nbd_conn *next;
        bool finished; /* under srv->lock: thread is about to return */
        char peer[64];

        /* Transmission phase (set by the handshake). The attachment the
         * client named (a reference; its socket is watched, so a revocation
         * shuts it down) and the volume it opens. */
        struct attachment *att;
        struct volume *vol;
        uint16_t tflags;
        /* TLS (after NBD_OPT_STARTTLS): the session every byte goes
         * through, and the attachment id its PSK belongs to ("" for a
         * certificate session): such a session opens that attachment only. */
        struct nbd_tls_session *tls;
        char tls_psk_id[64];
        /* Leader/follower: one worker at a time reads a request (header and
         * payload) under rd_lock, then releases it and does the I/O; the
         * reply goes out under wr_lock. No request changes threads. */
        pthread_mutex_t rd_lock;
        pthread_mutex_t wr_lock;
        atomic_bool dead;
        /* I/O buffers, most recently used on top: whichever worker serves
         * the next request gets the buffer that is still warm in cache
         * (per-worker buffers made QD1 1 MiB reads rotate through N cold
         * buffers and cost half the throughput). */
        pthread_mutex_t pool_lock;
        struct {
                void *buf;
                size_t cap;
        } pool[NBD_MAX_THREADS_PER_CONN];
        int npool;

        /* Bounds (docs/design/nbd.md, "Bounds"). budget_bytes: payload
         * buffers this connection owns (in workers or pooled) plus
         * admissions in progress, under pool_lock; budget_cond signals a
         * release. The fields below it are read by the accept thread's
         * sweep (deadlines) and by accept_one (per-address cap). */
        uint64_t budget_bytes;
        pthread_cond_t budget_cond;
        struct sockaddr_storage addr;     /* peer, IPv4-mapped IPv6 folded to IPv4 */
        int64_t accepted_usec;            /* monotonic */
        atomic_bool serving;              /* handshake done */
        atomic_int inflight;              /* requests read and not yet answered */
        atomic_int_least64_t active_usec; /* monotonic: last request read or answered */
        atomic_int expired;               /* enum nbd_expiry: why the sweep cut it */
};

/* Why the accept thread's sweep shut a connection down. */
enum nbd_expiry { NBD_EXP_NONE, NBD_EXP_HANDSHAKE, NBD_EXP_IDLE };

struct nbd_server {
        char site[64];
        int listen_fd;
        int wake_fd; /* eventfd: wakes the accept thread (stop, reaping) */
        int port;
        int threads_per_conn;
        pthread_t accept_thread;
        atomic_bool stopping;

        pthread_mutex_t lock;
        pthread_cond_t cond; /* signalled when a connection finishes */
        struct nbd_conn *conns;
        unsigned nconns;
        struct stats_site *stats; /* counters for /metrics (may be NULL) */

        /* Bounds (nbd.h struct nbd_limits). budget_used: payload bytes held
         * by all connections, under budget_lock; budget_waiters > 0 makes
         * finishing requests free their buffers instead of pooling them.
         * Lock order: lock -> conn pool_lock -> budget_lock. */
        struct nbd_limits lim;
        pthread_mutex_t budget_lock;
        pthread_cond_t budget_cond;
        uint64_t budget_used;
        atomic_int budget_waiters;
        /* Accept thread only: refusals logged per cap (0 total, 1 per
         * address), rate-limited. */
        int64_t refused_log_usec[2];
        unsigned refused_quiet[2]; /* refusals not logged since */
};

/* Run the fixed newstyle handshake on c->fd. Returns 1 when the client
 * chose an export (c->vol holds a reference, c->tflags set: enter
 * transmission), 0 when the session ended cleanly (NBD_OPT_ABORT), or
 * -errno (I/O error, protocol violation, unknown export by EXPORT_NAME). */
int nbd_handshake_run(struct nbd_conn *c);

/* Transmission flags we advertise for v through attachment att (read-only
 * when either is, as of now). */
uint16_t nbd_export_tflags(struct volume *v, const struct attachment *att);

/* Mirror link exports (link_export.c). psk: the key of a link identity
 * (0: not a link identity; -ENOENT: a link identity with no key). lookup:
 * the DR volume of pair_id for node's link session (a reference) with the
 * link attachment in *att, or NULL (refused, logged). closed: the
 * connection of a link attachment ended. request: one request on a link. */
int nbd_link_psk(const char *identity, unsigned char *key, size_t cap);
struct volume *nbd_link_lookup(struct nbd_conn *c, const char *pair_id, const char *node,
                               struct attachment **att);
void nbd_link_closed(struct nbd_conn *c);
int nbd_link_request(struct volume *v, const struct nbd_request *req, void *buf, unsigned vflags);

/* Zero-copy replies to large plain READs (splice.c): one pipe per worker
 * (rd, wr: -1 until opened; cap: its size). wanted: the request is a READ
 * to splice (no TLS, no link, NBD_SPLICE_MIN..the pipe's size), opening the
 * pipe on first use. fill: validate and splice the range into the pipe,
 * 0 or -errno (the pipe is emptied on error). reply (under wr_lock): the
 * header then the pipe's len bytes; 0, -ETIMEDOUT (send timeout) or
 * -errno, the pipe closed on error. */
#define NBD_SPLICE_MIN (64u * 1024)
struct nbd_pipe {
        int rd, wr;
        size_t cap;
};
void nbd_pipe_init(struct nbd_pipe *p);
/* Block SIGPIPE in this thread (and the workers it starts); *old: the
 * mask to restore. */
void nbd_splice_sigpipe_block(sigset_t *old);
void nbd_pipe_close(struct nbd_pipe *p);
bool nbd_splice_wanted(struct nbd_conn *c, struct nbd_pipe *p, const struct nbd_request *req);
int nbd_splice_fill(struct nbd_conn *c, struct nbd_pipe *p, const struct nbd_request *req);
int nbd_splice_reply(struct nbd_conn *c, struct nbd_pipe *p, const void *hdr, size_t hlen,
                     size_t len, int timeout_sec);

/* Transmission phase: run threads_per_conn workers (this thread is one of
 * them) until the client disconnects or the socket is shut down. */
void nbd_conn_serve(struct nbd_conn *c, int nthreads);

/* Free every pooled buffer of every connection of srv and give their
 * bytes back to the budgets (a request waits for the total budget). */
void nbd_budget_trim_pools(struct nbd_server *srv);
/* Wake every budget waiter of srv (stop, or a connection died). */
void nbd_budget_wake(struct nbd_server *srv, struct nbd_conn *c);

/* Send all of buf with MSG_NOSIGNAL (a gone client must not raise SIGPIPE
 * in the daemon). Returns 0 or -errno. */
int nbd_sock_send(int fd, const void *buf, size_t len);
/* The connection's byte stream: through its TLS session once there is one,
 * else the socket. Read exactly len bytes / send all of buf; 0 or -errno. */
int nbd_conn_recv(struct nbd_conn *c, void *buf, size_t len);
int nbd_conn_send(struct nbd_conn *c, const void *buf, size_t len);

#endif
