/* The mirror's write path with its DR leg local (link_local) vs over NBD
 * (link_nbd to nbdkit's file plugin on loopback): 4 KiB random writes from
 * 16 threads (QD16) and 1 MiB sequential writes (QD1), alternating the two
 * links per round. Prints IOPS / MiB/s of both and the ratio remote/local
 * (target >= 0.8). Built as build/bench/bench_link_nbd; bench/link_nbd.sh
 * runs it.
 *
 *   bench_link_nbd [runtime_sec=3] [rounds=2] [dir=/tmp] */
#include "common/log.h"
#include "common/util.h"
#include "engine/link.h"
#include "engine/mirror.h"
#include "volume/volume.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB       (1024ull * 1024)
#define VOL_BYTES (1024 * MIB)
#define CHUNK     65536u
#define QD        16 /* most writers; BENCH_QD sets the random phase's */

static char g_dir[256], g_prod[300], g_dr[300], g_meta[300], g_port[16];
static int g_lfd = -1;
static pid_t g_kit;
static double g_runtime = 3;
static atomic_bool g_stop;
static unsigned g_qd = QD;

static void die(const char *what, int rc)
{
        fprintf(stderr, "bench_link_nbd: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
        exit(1);
}

static void kit_start(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t sl = sizeof(sa);
        char cmd[1024];

        g_lfd = socket(AF_INET, SOCK_STREAM, 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(g_lfd, 16) < 0 || getsockname(g_lfd, (struct sockaddr *)&sa, &sl) < 0)
                die("listen", errno);
        snprintf(g_port, sizeof(g_port), "%d", ntohs(sa.sin_port));
        snprintf(cmd, sizeof(cmd),
                 "LISTEN_PID=$$ LISTEN_FDS=1 exec nbdkit -f --exit-with-parent -t 16 file "
                 "file=%s",
                 g_dr);
        if ((g_kit = fork()) == 0) {
                dup2(g_lfd, 3);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
}

struct wr {
        struct volume *v;
        unsigned idx;
        bool seq;
        uint64_t ops;
};

static void *writer(void *arg)
{
        struct wr *w = arg;
        size_t bs = w->seq ? MIB : 4096;
        uint64_t seed = 0x9e3779b97f4a7c15ull * (w->idx + 1), off = 0;
        void *buf;

        if (posix_memalign(&buf, 4096, bs) != 0)
                die("memalign", ENOMEM);
        memset(buf, 0xa5 ^ (int)w->idx, bs);
        while (!atomic_load(&g_stop)) {
                int rc;

                if (w->seq) {
                        off = (off + bs) % VOL_BYTES;
                } else {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        off = (seed % (VOL_BYTES / bs)) * bs;
                }
                if ((rc = volume_write(w->v, buf, bs, off, 0)) < 0)
                        die("write", rc);
                w->ops++;
        }
        free(buf);
        return NULL;
}

static void on_event(void *ctx, const char *pair_id, enum mirror_event ev)
{
        (void)ctx;
        (void)pair_id;
        if (ev != MIRROR_EV_SYNCED)
                fprintf(stderr, "bench_link_nbd: mirror fault event %d\n", ev);
}

/* One run: ops per second of nthreads writers through a SYNC mirror. */
static double run(bool remote, bool seq)
{
        struct volume *prod, *dr = NULL;
        struct mirror_cfg mc = {0};
        struct mirror *m;
        struct link *l = NULL;
        struct wr w[QD];
        pthread_t t[QD];
        unsigned n = seq ? 1 : g_qd;
        uint64_t dirty, ops = 0;
        int64_t t0;
        int rc;

        if ((rc = volume_open("prod", "az1", g_prod, &prod)) < 0)
                die("open prod", rc);
        if (remote) {
                struct link_nbd_cfg c = {.host = "127.0.0.1", .port = g_port, .export_name = ""};
                rc = link_nbd_open(&c, &l);
        } else {
                if ((rc = volume_open("dr", "az2", g_dr, &dr)) == 0)
                        rc = link_local_open(dr, &l);
        }
        if (rc < 0)
                die("link", rc);
        unlink(g_meta);
        mc.pair_id = "bench";
        mc.meta_path = g_meta;
        mc.prod = prod;
        mc.link = l;
        mc.chunk_bytes = CHUNK;
        mc.create = true;
        mc.on_event = on_event;
        if ((rc = mirror_open(&mc, &m, &dirty)) < 0)
                die("mirror_open", rc);
        /* A fresh meta marks every chunk dirty: the initial resync over
         * sparse files only zeroes holes, then the mirror is in SYNC. */
        volume_fence_raise(prod);
        if ((rc = mirror_start(m, MIRROR_RESYNC)) < 0)
                die("mirror_start", rc);
        volume_fence_lower(prod);
        while (1) {
                struct mirror_stats st;
                mirror_stats(m, &st);
                if (st.mode == MIRROR_SYNC)
                        break;
                usleep(20000);
        }
        atomic_store(&g_stop, false);
        t0 = util_mono_usec();
        for (unsigned i = 0; i < n; i++) {
                w[i] = (struct wr){.v = prod, .idx = i, .seq = seq};
                pthread_create(&t[i], NULL, writer, &w[i]);
        }
        usleep((useconds_t)(g_runtime * 1e6));
        atomic_store(&g_stop, true);
        for (unsigned i = 0; i < n; i++) {
                pthread_join(t[i], NULL);
                ops += w[i].ops;
        }
        t0 = util_mono_usec() - t0;
        if (remote && getenv("BENCH_ONLY_NBD_RAND")) {
                uint64_t rounds, hand;
                link_nbd_counters(l, &rounds, &hand);
                printf("ops %llu, leader poll rounds %llu, hand-overs %llu\n",
                       (unsigned long long)ops, (unsigned long long)rounds,
                       (unsigned long long)hand);
        }
        volume_fence_raise(prod);
        mirror_close(m, true);
        volume_fence_lower(prod);
        volume_put(prod);
        if (dr)
                volume_put(dr);
        return (double)ops * 1e6 / (double)t0;
}

int main(int argc, char **argv)
{
        int rounds = 2;
        const char *base = "/tmp";
        double r[2][2] = {{0}}; /* [seq][remote] sums */

        if (argc > 1)
                g_runtime = atof(argv[1]);
        if (argc > 2)
                rounds = atoi(argv[2]);
        if (argc > 3)
                base = argv[3];
        if (getenv("BENCH_QD"))
                g_qd = (unsigned)MAX(1, MIN(QD, atoi(getenv("BENCH_QD"))));
        signal(SIGPIPE, SIG_IGN);
        log_set_level(LOG_LVL_WARN);
        snprintf(g_dir, sizeof(g_dir), "%s/evsrep-bench-link.XXXXXX", base);
        if (!mkdtemp(g_dir))
                die("mkdtemp", errno);
        snprintf(g_prod, sizeof(g_prod), "%s/prod", g_dir);
        snprintf(g_dr, sizeof(g_dr), "%s/dr", g_dir);
        snprintf(g_meta, sizeof(g_meta), "%s/pair.meta", g_dir);
        if (volume_file_create(g_prod, VOL_BYTES) < 0 || volume_file_create(g_dr, VOL_BYTES) < 0)
                die("create", errno);
        kit_start();
        if (getenv("BENCH_ONLY_NBD_RAND")) { /* for perf record: one phase only */
                printf("randwrite-4k-qd%u nbd %.0f IOPS\n", g_qd, run(true, false));
                rounds = 0; /* then the cleanup below */
        }
        for (int k = 0; k < rounds; k++)
                for (int seq = 0; seq < 2; seq++)
                        for (int remote = 0; remote < 2; remote++)
                                r[seq][remote] += run(remote, seq) / rounds;
        if (rounds > 0) {
                printf("job                   local       nbd   nbd/local  (%d rounds x %.0fs, DR "
                       "over loopback NBD to nbdkit file)\n",
                       rounds, g_runtime);
                printf("randwrite-4k-qd%-2u  %8.0f  %8.0f   %9.2f  IOPS\n", g_qd, r[0][0], r[0][1],
                       r[0][1] / r[0][0]);
                printf("seqwrite-1m-qd1    %8.1f  %8.1f   %9.2f  MiB/s\n", r[1][0], r[1][1],
                       r[1][1] / r[1][0]);
        }
        kill(g_kit, SIGTERM);
        waitpid(g_kit, NULL, 0);
        unlink(g_prod);
        unlink(g_dr);
        unlink(g_meta);
        rmdir(g_dir);
        return 0;
}
