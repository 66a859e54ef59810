/* The NBD link against a real server: nbdkit, started by each test through
 * socket activation on a loopback port the test bound itself (no port race,
 * and a restarted nbdkit gets the same port). Data is read back through a
 * separate libnbd handle; what the link sent (FUA, flush, zero flags) is read
 * from nbdkit's log filter. Faults: nbdkit killed mid-stream, stopped
 * (SIGSTOP: no replies), wrong PSK; then a mirror whose DR leg is the link.
 *
 * Timing: only generous upper bounds (an op must return within 10x its
 * timeout), never a lower bound or a tight one. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libnbd.h>

#include "fixture_tmpdir.h"

#include "common/util.h"
#include "engine/actlog.h"
#include "engine/bitmap.h"
#include "engine/link.h"
#include "engine/meta.h"
#include "engine/mirror.h"
#include "nbd/nbd.h"
#include "volume/attach.h"
#include "volume/volume.h"

#define MIB       (1024u * 1024u)
#define VOL_BYTES (16u * MIB)
#define CHUNK     65536u
#define PSK_ID    "evsrep-dr"
#define PSK_KEY   "4b1b0bd86e8e9cbb8d8c5e4b8f1f4c6f9a0d2e7a1c3b5d7f9e1a3c5b7d9f1e3a"
#define PSK_BAD   "0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
        char dir[64], psk_path[128], log_path[128], prod_path[128], dr_path[128], meta_path[128];
        char port[16];
        int lfd;
        pid_t pid;
        char extra[512]; /* nbdkit arguments: filters, plugin, parameters */
        bool tls;
        struct link *link;
        /* mirror test */
        struct volume *prod;
        struct mirror *m;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int synced, faults;
};

static void server_start(struct fx *f)
{
        char cmd[1024];

        if (f->tls)
                snprintf(cmd, sizeof(cmd),
                         "LISTEN_PID=$$ LISTEN_FDS=1 exec nbdkit -f --exit-with-parent "
                         "--tls=require --tls-psk=%s %s 2>>%s/nbdkit.err",
                         f->psk_path, f->extra, f->dir);
        else
                snprintf(cmd, sizeof(cmd),
                         "LISTEN_PID=$$ LISTEN_FDS=1 exec nbdkit -f --exit-with-parent %s "
                         "2>>%s/nbdkit.err",
                         f->extra, f->dir);
        f->pid = fork();
        assert_true(f->pid >= 0);
        if (f->pid == 0) {
                if (f->lfd != 3) {
                        dup2(f->lfd, 3);
                        close(f->lfd);
                } else {
                        fcntl(3, F_SETFD, 0);
                }
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
}

static void server_kill(struct fx *f, int sig)
{
        if (f->pid <= 0)
                return;
        kill(f->pid, sig);
        if (sig == SIGSTOP) {
                int st;
                /* Stopped for real (every thread), not just signalled: a
                 * reply sent in between would make the timeout test lie. */
                assert_int_equal(waitpid(f->pid, &st, WUNTRACED), f->pid);
                assert_true(WIFSTOPPED(st));
        }
        if (sig == SIGKILL || sig == SIGTERM) {
                if (sig == SIGKILL)
                        kill(f->pid, SIGCONT);
                waitpid(f->pid, NULL, 0);
                f->pid = 0;
        }
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t sl = sizeof(sa);
        int one = 1;
        FILE *fp;

        alarm(240);
        assert_int_equal(fixture_tmpdir_make(f->dir, sizeof(f->dir), "linknbd"), 0);
        snprintf(f->psk_path, sizeof(f->psk_path), "%s/keys.psk", f->dir);
        snprintf(f->log_path, sizeof(f->log_path), "%s/nbdkit.log", f->dir);
        snprintf(f->prod_path, sizeof(f->prod_path), "%s/prod", f->dir);
        snprintf(f->dr_path, sizeof(f->dr_path), "%s/dr", f->dir);
        snprintf(f->meta_path, sizeof(f->meta_path), "%s/pair.meta", f->dir);
        assert_non_null(fp = fopen(f->psk_path, "w"));
        fprintf(fp, "%s:%s\n", PSK_ID, PSK_KEY);
        fclose(fp);
        chmod(f->psk_path, 0600);
        f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f->lfd >= 0);
        setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(f->lfd, 64), 0);
        assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
        snprintf(f->port, sizeof(f->port), "%d", ntohs(sa.sin_port));
        snprintf(f->extra, sizeof(f->extra), "memory %u", VOL_BYTES);
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->cv, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        if (f->m) {
                volume_fence_raise(f->prod);
                mirror_close(f->m, false);
                volume_fence_lower(f->prod);
        } else if (f->link) {
                f->link->ops->close(f->link);
        }
        if (f->prod)
                volume_put(f->prod);
        server_kill(f, SIGKILL);
        if (f->lfd >= 0)
                close(f->lfd);
        assert_int_equal(fixture_tmpdir_remove(f->dir), 0);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        free(f);
        alarm(0);
        return 0;
}

static int open_link(struct fx *f, const char *key, unsigned timeout_ms, struct link **out)
{
        struct link_nbd_cfg c = {
            .host = "127.0.0.1",
            .port = f->port,
            .export_name = "",
            .psk_identity = key ? PSK_ID : NULL,
            .psk_key_hex = key,
            .timeout_ms = timeout_ms,
            .connect_timeout_ms = 10000,
        };
        return link_nbd_open(&c, out);
}

/* A second, independent client to read what the link wrote. */
static void read_back(struct fx *f, void *buf, size_t len, uint64_t off)
{
        struct nbd_handle *h = nbd_create();

        assert_non_null(h);
        if (f->tls) {
                assert_int_equal(nbd_set_tls(h, LIBNBD_TLS_REQUIRE), 0);
                assert_int_equal(nbd_set_tls_username(h, PSK_ID), 0);
                assert_int_equal(nbd_set_tls_psk_file(h, f->psk_path), 0);
        }
        assert_int_equal(nbd_connect_tcp(h, "127.0.0.1", f->port), 0);
        assert_int_equal(nbd_pread(h, buf, len, off, 0), 0);
        nbd_shutdown(h, 0);
        nbd_close(h);
}

static void fill(void *buf, size_t len, unsigned seed)
{
        unsigned char *p = buf;

        for (size_t i = 0; i < len; i++)
                p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 9));
}

static bool is_zero(const void *buf, size_t len)
{
        const unsigned char *p = buf;

        for (size_t i = 0; i < len; i++)
                if (p[i])
                        return false;
        return true;
}

/* Count requests in nbdkit's log filter holding both words (a reply line,
 * "...Flush id=3 return=0", is not a request). */
static int log_count(struct fx *f, const char *w1, const char *w2)
{
        char line[1024];
        int n = 0;
        FILE *fp = fopen(f->log_path, "r");

        if (!fp)
                return 0;
        while (fgets(line, sizeof(line), fp))
                if (strstr(line, w1) && (!w2 || strstr(line, w2)) && !strstr(line, "return="))
                        n++;
        fclose(fp);
        return n;
}

static int64_t elapsed_ms(int64_t t0)
{
        return (util_mono_usec() - t0) / 1000;
}

/* ---- data path ---- */

static unsigned thread_count(void)
{
        char line[256];
        unsigned n = 0;
        FILE *fp = fopen("/proc/self/status", "r");

        assert_non_null(fp);
        while (fgets(line, sizeof(line), fp))
                if (sscanf(line, "Threads: %u", &n) == 1)
                        break;
        fclose(fp);
        return n;
}

static void test_write_read_back(void **state)
{
        struct fx *f = *state;
        static char w[3 * MIB + 100], r[3 * MIB + 100];
        unsigned threads = thread_count();

        server_start(f);
        assert_int_equal(open_link(f, NULL, 10000, &f->link), 0);
        /* No I/O thread: callers drive the socket (leader/follower). */
        assert_int_equal(thread_count(), threads);
        assert_int_equal(f->link->ops->size(f->link), VOL_BYTES);
        fill(w, sizeof(w), 1);
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 4096 + 17, 0), 0);
        assert_int_equal(f->link->ops->flush(f->link), 0);
        read_back(f, r, sizeof(r), 4096 + 17);
        assert_memory_equal(w, r, sizeof(w));
        /* The link's own read (online verify): the same bytes; past the
         * end the server's error, and the link stays usable. */
        memset(r, 0, sizeof(r));
        assert_int_equal(f->link->ops->read(f->link, r, sizeof(r), 4096 + 17), 0);
        assert_memory_equal(w, r, sizeof(w));
        assert_true(f->link->ops->read(f->link, r, 4096, VOL_BYTES) < 0);
        assert_int_equal(link_nbd_broken(f->link), 0);
        /* NBD cannot resize: only the size it already has is accepted. */
        assert_int_equal(f->link->ops->resize(f->link, VOL_BYTES), 0);
        assert_int_equal(f->link->ops->resize(f->link, 2 * VOL_BYTES), -EOPNOTSUPP);
        /* Beyond the end: the server's error, and the link stays usable. */
        assert_true(f->link->ops->write(f->link, w, 4096, VOL_BYTES, 0) < 0);
        assert_int_equal(link_nbd_broken(f->link), 0);
        assert_int_equal(f->link->ops->write(f->link, w, 4096, 0, 0), 0);
}

static void test_flags_reach_the_server(void **state)
{
        struct fx *f = *state;
        char w[8192], r[8192];

        snprintf(f->extra, sizeof(f->extra), "--filter=log memory %u logfile=%s", VOL_BYTES,
                 f->log_path);
        server_start(f);
        assert_int_equal(open_link(f, NULL, 10000, &f->link), 0);
        fill(w, sizeof(w), 2);
        assert_int_equal(f->link->ops->write(f->link, w, 4096, 0, 0), 0);
        assert_int_equal(f->link->ops->write(f->link, w, 4096, 65536, VOL_F_FUA), 0);
        assert_int_equal(f->link->ops->flush(f->link), 0);
        assert_int_equal(log_count(f, "Write ", "fua=1"), 1);
        assert_int_equal(log_count(f, "Write ", "fua=0"), 1);
        assert_int_equal(log_count(f, "Flush ", NULL), 1);

        /* zero: punch may deallocate, no punch must not; both read zeroes */
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 1 * MIB, 0), 0);
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 2 * MIB, 0), 0);
        assert_int_equal(f->link->ops->zero(f->link, 1 * MIB, sizeof(w), true, 0), 0);
        assert_int_equal(f->link->ops->zero(f->link, 2 * MIB, sizeof(w), false, VOL_F_FUA), 0);
        assert_int_equal(log_count(f, "Zero ", "offset=0x100000 count=0x2000 trim=1"), 1);
        assert_int_equal(log_count(f, "Zero ", "offset=0x200000 count=0x2000 trim=0"), 1);
        assert_int_equal(log_count(f, "Zero ", "fua=1"), 1);
        read_back(f, r, sizeof(r), 1 * MIB);
        assert_true(is_zero(r, sizeof(r)));
        read_back(f, r, sizeof(r), 2 * MIB);
        assert_true(is_zero(r, sizeof(r)));
}

struct writer {
        struct link *link;
        unsigned idx;
        int rc;         /* last result */
        unsigned n_ok;  /* writes acknowledged */
        bool until_err; /* keep writing until an error */
        int64_t t_err;  /* when the error came back */
};

static void *writer_main(void *arg)
{
        struct writer *w = arg;
        char buf[16384];
        unsigned i = 0;

        do {
                uint64_t off = (uint64_t)w->idx * MIB + (uint64_t)(i % 64) * sizeof(buf);

                fill(buf, sizeof(buf), w->idx * 1000 + i % 64);
                w->rc = w->link->ops->write(w->link, buf, sizeof(buf), off, 0);
                if (w->rc == 0)
                        w->n_ok++;
                i++;
        } while (w->rc == 0 && (w->until_err || i < 64));
        w->t_err = util_mono_usec();
        return NULL;
}

static void test_concurrent_writers_pipeline(void **state)
{
        struct fx *f = *state;
        struct writer w[8];
        pthread_t t[8];
        static char r[MIB], e[16384];

        /* A short delay per write keeps each request on the wire long
         * enough for the others to join it (the evidence is the count). */
        snprintf(f->extra, sizeof(f->extra), "--filter=delay memory %u wdelay=2ms", VOL_BYTES);
        server_start(f);
        assert_int_equal(open_link(f, NULL, 10000, &f->link), 0);
        for (unsigned i = 0; i < 8; i++) {
                w[i] = (struct writer){.link = f->link, .idx = i};
                pthread_create(&t[i], NULL, writer_main, &w[i]);
        }
        for (unsigned i = 0; i < 8; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(w[i].rc, 0);
        }
        assert_true(link_nbd_max_inflight(f->link) > 1);
        /* Callers led the socket, and a leader whose command was done
         * handed it to a waiting follower (else that one would have timed
         * out: every write above succeeded). */
        {
                uint64_t rounds, hand;
                link_nbd_counters(f->link, &rounds, &hand);
                assert_true(rounds > 0);
                assert_true(hand > 0);
        }
        /* Eight writers corked and uncorked the socket around their
         * sends in every interleaving: none left it corked (a corked
         * socket holds a request's tail until a 200 ms timer). */
        assert_int_equal(link_nbd_corked(f->link), 0);
        for (unsigned i = 0; i < 8; i++) {
                read_back(f, r, sizeof(r), (uint64_t)i * MIB);
                for (unsigned k = 0; k < 64; k++) {
                        fill(e, sizeof(e), i * 1000 + k);
                        assert_memory_equal(r + k * sizeof(e), e, sizeof(e));
                }
        }
}

/* ---- TLS-PSK ---- */

static void test_psk(void **state)
{
        struct fx *f = *state;
        struct link *bad = NULL;
        char w[4096], r[4096];
        int64_t t0;

        f->tls = true;
        server_start(f);
        t0 = util_mono_usec();
        assert_true(open_link(f, PSK_BAD, 5000, &bad) < 0);
        assert_null(bad);
        assert_true(elapsed_ms(t0) < 10000);             /* fails, does not wait out a timeout */
        assert_true(open_link(f, NULL, 5000, &bad) < 0); /* no TLS at all */
        assert_int_equal(open_link(f, PSK_KEY, 5000, &f->link), 0);
        fill(w, sizeof(w), 3);
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 8192, VOL_F_FUA), 0);
        read_back(f, r, sizeof(r), 8192);
        assert_memory_equal(w, r, sizeof(w));
}

/* ---- broken link ---- */

static void test_server_killed_mid_stream(void **state)
{
        struct fx *f = *state;
        struct writer w[8];
        pthread_t t[8];
        char buf[4096] = {0};
        int64_t t_kill;
        int rc;

        snprintf(f->extra, sizeof(f->extra), "--filter=delay memory %u wdelay=5ms", VOL_BYTES);
        server_start(f);
        /* A long timeout: the errors must come from the dead connection,
         * not from waiting the timeout out. */
        assert_int_equal(open_link(f, NULL, 60000, &f->link), 0);
        for (unsigned i = 0; i < 8; i++) {
                w[i] = (struct writer){.link = f->link, .idx = i, .until_err = true};
                pthread_create(&t[i], NULL, writer_main, &w[i]);
        }
        while (link_nbd_max_inflight(f->link) < 2)
                usleep(1000);
        t_kill = util_mono_usec();
        server_kill(f, SIGKILL);
        for (unsigned i = 0; i < 8; i++) {
                pthread_join(t[i], NULL);
                assert_true(w[i].rc == -ENOTCONN || w[i].rc == -ECONNRESET);
                assert_true((w[i].t_err - t_kill) / 1000 < 10000);
        }
        assert_int_equal(link_nbd_broken(f->link), -ENOTCONN);
        rc = f->link->ops->write(f->link, buf, sizeof(buf), 0, 0);
        assert_int_equal(rc, -ENOTCONN);
        assert_int_equal(f->link->ops->flush(f->link), -ENOTCONN);
        assert_int_equal(f->link->ops->zero(f->link, 0, 4096, true, 0), -ENOTCONN);
        /* Still down: reconnect fails and the link stays broken. */
        close(f->lfd);
        f->lfd = -1;
        assert_true(link_nbd_reconnect(f->link) < 0);
        assert_true(link_nbd_broken(f->link) < 0);
}

static void test_server_stopped_times_out(void **state)
{
        struct fx *f = *state;
        char w[4096], r[4096];
        int64_t t0;

        server_start(f);
        assert_int_equal(open_link(f, NULL, 300, &f->link), 0);
        fill(w, sizeof(w), 4);
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 0, 0), 0);
        server_kill(f, SIGSTOP);
        t0 = util_mono_usec();
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 4096, 0), -ETIMEDOUT);
        assert_true(elapsed_ms(t0) < 3000); /* 10x timeout_ms */
        assert_int_equal(link_nbd_broken(f->link), -ETIMEDOUT);
        t0 = util_mono_usec();
        assert_int_equal(f->link->ops->flush(f->link), -ETIMEDOUT); /* fails fast */
        assert_true(elapsed_ms(t0) < 3000);
        server_kill(f, SIGCONT);
        /* The server is back: a new connection clears the broken state. */
        assert_int_equal(link_nbd_reconnect(f->link), 0);
        assert_int_equal(link_nbd_broken(f->link), 0);
        fill(w, sizeof(w), 5);
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 8192, 0), 0);
        read_back(f, r, sizeof(r), 8192);
        assert_memory_equal(w, r, sizeof(w));
}

static void test_reconnect_after_restart(void **state)
{
        struct fx *f = *state;
        char w[4096], r[4096];

        server_start(f);
        assert_int_equal(open_link(f, NULL, 10000, &f->link), 0);
        server_kill(f, SIGKILL);
        fill(w, sizeof(w), 6);
        assert_true(f->link->ops->write(f->link, w, sizeof(w), 0, 0) < 0);
        server_start(f); /* same port: the listening socket is ours */
        assert_int_equal(f->link->ops->reconnect(f->link), 0);
        assert_int_equal(f->link->ops->size(f->link), VOL_BYTES);
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 0, 0), 0);
        read_back(f, r, sizeof(r), 0);
        assert_memory_equal(w, r, sizeof(w));
}

/* The server the link is for: evsrep's own NBD server (the DR node's
 * evsrepd), plain TCP, export reached through an attachment. */
static void test_evsrep_server(void **state)
{
        struct fx *f = *state;
        struct nbd_server *srv;
        struct volume *dr;
        static char w[MIB + 512], r[MIB + 512];
        int port;

        assert_int_equal(volume_file_create(f->dr_path, VOL_BYTES), 0);
        assert_int_equal(volume_open("drvol", "az2", f->dr_path, &dr), 0);
        assert_int_equal(volreg_add(dr), 0);
        assert_int_equal(attach_add("att1", "dr-export", "drvol", "az2", false, ""), 0);
        assert_int_equal(nbd_server_start("az2", "127.0.0.1", 0, 4, &srv), 0);
        port = nbd_server_port(srv);
        snprintf(f->port, sizeof(f->port), "%d", port);
        {
                struct link_nbd_cfg c = {.host = "127.0.0.1",
                                         .port = f->port,
                                         .export_name = "dr-export",
                                         .timeout_ms = 10000};
                assert_int_equal(link_nbd_open(&c, &f->link), 0);
        }
        assert_int_equal(f->link->ops->size(f->link), VOL_BYTES);
        fill(w, sizeof(w), 11);
        assert_int_equal(f->link->ops->write(f->link, w, sizeof(w), 3 * MIB + 1, VOL_F_FUA), 0);
        assert_int_equal(f->link->ops->write(f->link, w, 3 * CHUNK, 8 * MIB, 0), 0);
        assert_int_equal(f->link->ops->write(f->link, w, CHUNK, 9 * MIB, 0), 0);
        assert_int_equal(f->link->ops->zero(f->link, 8 * MIB, 2 * CHUNK, true, 0), 0);
        assert_int_equal(f->link->ops->zero(f->link, 9 * MIB, CHUNK, false, 0), 0);
        assert_int_equal(f->link->ops->flush(f->link), 0);
        assert_int_equal(volume_local_read(dr, r, sizeof(r), 3 * MIB + 1), 0);
        assert_memory_equal(w, r, sizeof(w));
        assert_int_equal(volume_local_read(dr, r, 2 * CHUNK, 8 * MIB), 0);
        assert_true(is_zero(r, 2 * CHUNK));
        assert_int_equal(volume_local_read(dr, r, CHUNK, 8 * MIB + 2 * CHUNK), 0);
        assert_memory_equal(r, w + 2 * CHUNK, CHUNK); /* not zeroed */
        assert_int_equal(volume_local_read(dr, r, CHUNK, 9 * MIB), 0);
        assert_true(is_zero(r, CHUNK));
        f->link->ops->close(f->link);
        f->link = NULL;
        nbd_server_stop(srv);
        attach_revoke_volume("drvol");
        volreg_remove("drvol");
        volume_put(dr);
}

/* ---- a mirror whose DR leg is the link ---- */

static void on_event(void *ctx, const char *pair_id, enum mirror_event ev)
{
        struct fx *f = ctx;

        (void)pair_id;
        pthread_mutex_lock(&f->mu);
        if (ev == MIRROR_EV_SYNCED)
                f->synced++;
        else
                f->faults++;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
}

static void wait_synced(struct fx *f, int n)
{
        pthread_mutex_lock(&f->mu);
        while (f->synced < n)
                pthread_cond_wait(&f->cv, &f->mu);
        pthread_mutex_unlock(&f->mu);
}

static void set_mode(struct fx *f, enum mirror_mode mode)
{
        volume_fence_raise(f->prod);
        assert_int_equal(mirror_set_mode(f->m, mode), 0);
        volume_fence_lower(f->prod);
}

/* Production and the DR file (as nbdkit's file plugin wrote it) equal? */
static bool same(struct fx *f)
{
        char *a = malloc(VOL_BYTES), *b = malloc(VOL_BYTES);
        int fd = open(f->dr_path, O_RDONLY);
        bool eq;

        assert_true(fd >= 0);
        assert_int_equal(volume_local_read(f->prod, a, VOL_BYTES, 0), 0);
        assert_int_equal(util_pread_full(fd, b, VOL_BYTES, 0), 0);
        close(fd);
        eq = memcmp(a, b, VOL_BYTES) == 0;
        free(a);
        free(b);
        return eq;
}

struct mw {
        struct volume *v;
        uint64_t off;
        int rc;
};

static void *mirror_writer(void *arg)
{
        struct mw *w = arg;
        char buf[4096];

        fill(buf, sizeof(buf), 77);
        w->rc = volume_write(w->v, buf, sizeof(buf), w->off, 0);
        return NULL;
}

static void test_mirror_over_nbd(void **state)
{
        struct fx *f = *state;
        struct mirror_cfg mc = {0};
        struct mirror_stats st;
        char buf[3 * CHUNK];
        struct mw mw;
        pthread_t t;
        uint64_t dirty;

        assert_int_equal(volume_file_create(f->prod_path, VOL_BYTES), 0);
        assert_int_equal(volume_file_create(f->dr_path, VOL_BYTES), 0);
        assert_int_equal(volume_open("prod", "az1", f->prod_path, &f->prod), 0);
        /* The file plugin: DR survives an nbdkit restart. */
        snprintf(f->extra, sizeof(f->extra), "file file=%s", f->dr_path);
        server_start(f);
        assert_int_equal(open_link(f, NULL, 10000, &f->link), 0);
        fill(buf, sizeof(buf), 8);
        assert_int_equal(volume_local_write(f->prod, buf, sizeof(buf), 2 * MIB + 100, 0), 0);

        mc.pair_id = "p";
        mc.meta_path = f->meta_path;
        mc.prod = f->prod;
        mc.link = f->link; /* the mirror owns it; f->link stays a borrowed pointer */
        mc.chunk_bytes = CHUNK;
        mc.create = true;
        mc.on_event = on_event;
        mc.event_ctx = f;
        assert_int_equal(mirror_open(&mc, &f->m, &dirty), 0);
        volume_fence_raise(f->prod);
        assert_int_equal(mirror_start(f->m, MIRROR_RESYNC), 0);
        volume_fence_lower(f->prod);
        wait_synced(f, 1); /* initial sync over NBD */
        assert_true(same(f));

        /* SYNC: a client write lands on both legs. */
        fill(buf, sizeof(buf), 9);
        assert_int_equal(volume_write(f->prod, buf, sizeof(buf), 5 * MIB, VOL_F_FUA), 0);
        assert_int_equal(volume_zero(f->prod, 2 * MIB, CHUNK, true, 0), 0);
        assert_true(same(f));
        assert_int_equal(mirror_mode(f->m), MIRROR_SYNC);

        /* A write in flight on the DR leg when the DR node dies: production
         * acknowledges it, its chunk is dirty (durably: no bits pending) and
         * the pair tracks. */
        server_kill(f, SIGSTOP);
        mw = (struct mw){.v = f->prod, .off = 7 * MIB + 10};
        pthread_create(&t, NULL, mirror_writer, &mw);
        while (link_nbd_max_inflight(f->link) < 1) /* reached at open already */
                usleep(1000);
        usleep(50000); /* let the write reach the DR leg; either way it fails */
        server_kill(f, SIGKILL);
        pthread_join(t, NULL);
        assert_int_equal(mw.rc, 0);
        assert_int_equal(mirror_mode(f->m), MIRROR_TRACK);
        mirror_stats(f->m, &st);
        assert_int_equal(st.dirty_chunks, 1);
        assert_false(st.bits_pending);
        assert_true(st.dr_error == -ENOTCONN || st.dr_error == -ETIMEDOUT);
        assert_int_equal(f->faults, 1);
        /* TRACK: the next write only dirties its chunks. */
        assert_int_equal(volume_write(f->prod, buf, 100, 9 * MIB, 0), 0);
        mirror_stats(f->m, &st);
        assert_int_equal(st.dirty_chunks, 2);

        /* The DR node is back: reconnect, resync copies the two chunks. */
        server_start(f);
        assert_int_equal(f->link->ops->reconnect(f->link), 0);
        set_mode(f, MIRROR_RESYNC);
        wait_synced(f, 2);
        mirror_stats(f->m, &st);
        assert_int_equal(st.dirty_chunks, 0);
        assert_int_equal(st.bytes_copied, VOL_BYTES + 2 * CHUNK);
        assert_true(same(f));
}

/* Parallel legs under load: 8 client writers on a SYNC mirror (each DR
 * write submitted before its production write, waited for after it), and
 * the DR node killed in the middle. Every write is acknowledged (production
 * succeeded), the pair tracks, and every chunk where DR now differs from
 * production is set in the durable bitmap itself (a copy of the meta file,
 * activity log not folded): the fault path persisted it before the ack. */
struct pw {
        struct volume *v;
        unsigned idx;
        atomic_bool *stop;
        unsigned acked;
        int rc;
};

static void *par_writer(void *arg)
{
        struct pw *w = arg;
        char buf[4096];

        /* Each write in a chunk of its own, never written again: a chunk
         * that differs afterwards differs because of that one write (no
         * later TRACK write to it can hide a bit the fault path lost). */
        for (unsigned i = 0; i < 32 && !atomic_load(w->stop); i++) {
                uint64_t off = ((uint64_t)w->idx * 32 + i) * CHUNK + 4096;

                fill(buf, sizeof(buf), w->idx * 100000 + i);
                if ((w->rc = volume_write(w->v, buf, sizeof(buf), off, 0)) < 0)
                        break;
                w->acked++;
        }
        return NULL;
}

static void test_mirror_parallel_legs_killed(void **state)
{
        struct fx *f = *state;
        struct mirror_cfg mc = {0};
        struct mirror_stats st;
        struct pw w[8];
        pthread_t t[8];
        atomic_bool stop = false;
        char copy[160], cmd[400];
        struct meta mt;
        struct bitmap bm;
        uint64_t ext[AL_MAX_SLOTS], dirty, differ = 0;
        unsigned n = 0;
        char *a = malloc(CHUNK), *b = malloc(CHUNK);
        int fd;

        assert_int_equal(volume_file_create(f->prod_path, VOL_BYTES), 0);
        assert_int_equal(volume_file_create(f->dr_path, VOL_BYTES), 0);
        assert_int_equal(volume_open("prod", "az1", f->prod_path, &f->prod), 0);
        /* A write delay keeps DR writes in flight at the kill (8 x 32
         * writes of 5 ms each, pipelined: the kill lands mid-stream). */
        snprintf(f->extra, sizeof(f->extra), "--filter=delay file file=%s wdelay=5ms", f->dr_path);
        server_start(f);
        assert_int_equal(open_link(f, NULL, 10000, &f->link), 0);
        mc.pair_id = "p";
        mc.meta_path = f->meta_path;
        mc.prod = f->prod;
        mc.link = f->link;
        mc.chunk_bytes = CHUNK;
        mc.create = true;
        mc.on_event = on_event;
        mc.event_ctx = f;
        assert_int_equal(mirror_open(&mc, &f->m, &dirty), 0);
        volume_fence_raise(f->prod);
        assert_int_equal(mirror_start(f->m, MIRROR_RESYNC), 0);
        volume_fence_lower(f->prod);
        wait_synced(f, 1);

        for (unsigned i = 0; i < 8; i++) {
                w[i] = (struct pw){.v = f->prod, .idx = i, .stop = &stop};
                pthread_create(&t[i], NULL, par_writer, &w[i]);
        }
        usleep(60000);
        server_kill(f, SIGKILL); /* the writers go on, into TRACK */
        for (unsigned i = 0; i < 8; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(w[i].rc, 0);
                assert_int_equal(w[i].acked, 32);
        }
        assert_true(link_nbd_max_inflight(f->link) > 1);
        mirror_stats(f->m, &st);
        assert_int_equal(st.mode, MIRROR_TRACK);
        assert_false(st.bits_pending);
        assert_true(st.dr_error == -ENOTCONN || st.dr_error == -ETIMEDOUT);
        assert_int_equal(st.prod_error, 0);
        assert_int_equal(f->faults, 1);

        snprintf(copy, sizeof(copy), "%s.copy", f->meta_path);
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", f->meta_path, copy);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(meta_open(copy, &mt, &bm, ext, &n), 0);
        assert_true((fd = open(f->dr_path, O_RDONLY)) >= 0);
        for (uint64_t c = 0; c < VOL_BYTES / CHUNK; c++) {
                assert_int_equal(volume_local_read(f->prod, a, CHUNK, c * CHUNK), 0);
                assert_int_equal(util_pread_full(fd, b, CHUNK, c * CHUNK), 0);
                if (memcmp(a, b, CHUNK) != 0) {
                        differ++;
                        if (!bitmap_test(&bm, c))
                                fail_msg("chunk %llu differs on DR but is clean in the durable "
                                         "bitmap",
                                         (unsigned long long)c);
                }
        }
        close(fd);
        meta_close(&mt);
        bitmap_free(&bm);
        /* The kill hit the stream: some writes reached DR, some did not. */
        assert_true(differ > 0 && differ < 8 * 32);
        free(a);
        free(b);

        server_start(f);
        assert_int_equal(f->link->ops->reconnect(f->link), 0);
        set_mode(f, MIRROR_RESYNC);
        wait_synced(f, 2);
        assert_true(same(f));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_write_read_back, setup, teardown),
            cmocka_unit_test_setup_teardown(test_flags_reach_the_server, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_writers_pipeline, setup, teardown),
            cmocka_unit_test_setup_teardown(test_psk, setup, teardown),
            cmocka_unit_test_setup_teardown(test_server_killed_mid_stream, setup, teardown),
            cmocka_unit_test_setup_teardown(test_server_stopped_times_out, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reconnect_after_restart, setup, teardown),
            cmocka_unit_test_setup_teardown(test_evsrep_server, setup, teardown),
            cmocka_unit_test_setup_teardown(test_mirror_over_nbd, setup, teardown),
            cmocka_unit_test_setup_teardown(test_mirror_parallel_legs_killed, setup, teardown),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
