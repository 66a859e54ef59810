/* seqwriter: the writer half of the consistency checker.
 *
 * Writes sequence-numbered 4 KiB blocks round-robin across N NBD disks (the
 * production disks of a consistency group), one write at a time: write s+1 is
 * issued only after write s was acknowledged, like a database log. Stops when
 * the stop file appears, the duration or count elapses, SIGINT/SIGTERM, or an
 * I/O error; prints the last acknowledged sequence number on stdout.
 * Block layout: seqblock.h. Verifier: seqcheck. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnbd.h>

#include "common/util.h"
#include "seqblock.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
        (void)sig;
        g_stop = 1;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: seqwriter [options] NBD_URI...\n"
                "Writes sequence-numbered 4 KiB blocks round-robin across the disks,\n"
                "each write issued after the previous one was acknowledged.\n"
                "Prints the last acknowledged sequence number on stdout.\n\n"
                "  -n, --count N         stop after N writes (0: no limit, default)\n"
                "  -t, --duration SEC    stop after SEC seconds (decimal allowed)\n"
                "  -s, --stop-file PATH  stop as soon as PATH exists\n"
                "  -o, --offset BYTES    region start on every disk (default 0; K/M/G)\n"
                "  -r, --region BYTES    region size per disk (default: smallest disk - offset)\n"
                "  -W, --no-wrap         stop when the region is full instead of wrapping\n"
                "  -R, --run-id N        run id written in every block (default random)\n"
                "  -f, --first-seq N     first sequence number (default 1)\n"
                "  -F, --fua             write with FUA (every acknowledged write is durable)\n"
                "  -p, --progress FILE   keep FILE updated with the last acknowledged seq\n"
                "                        (atomic rename, at most every --progress-ms)\n"
                "  -P, --progress-ms MS  progress update interval (default 2)\n"
                "  -q, --quiet           no summary on stderr\n"
                "  -h, --help            this text\n\n"
                "Exit: 0 stopped normally, 1 usage or connect error, 2 write error\n"
                "(the last acknowledged seq is still printed).\n");
}

static void write_progress(const char *path, uint64_t seq)
{
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
                return;
        FILE *f = fopen(tmp, "w");
        if (!f)
                return;
        fprintf(f, "%" PRIu64 "\n", seq);
        if (fclose(f) == 0)
                rename(tmp, path);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"count", required_argument, 0, 'n'},
            {"duration", required_argument, 0, 't'},
            {"stop-file", required_argument, 0, 's'},
            {"offset", required_argument, 0, 'o'},
            {"region", required_argument, 0, 'r'},
            {"no-wrap", no_argument, 0, 'W'},
            {"run-id", required_argument, 0, 'R'},
            {"first-seq", required_argument, 0, 'f'},
            {"fua", no_argument, 0, 'F'},
            {"progress", required_argument, 0, 'p'},
            {"progress-ms", required_argument, 0, 'P'},
            {"quiet", no_argument, 0, 'q'},
            {"help", no_argument, 0, 'h'},
            {0, 0, 0, 0},
        };
        uint64_t count = 0, region_off = 0, region = 0, run_id = 0, first_seq = 1;
        uint64_t progress_ms = 2;
        double duration = 0;
        const char *stop_file = NULL, *progress = NULL;
        bool wrap = true, fua = false, quiet = false, have_run = false;
        int c;

        while ((c = getopt_long(argc, argv, "n:t:s:o:r:WR:f:Fp:P:qh", opts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        if (seq_parse_u64(optarg, &count))
                                goto bad;
                        break;
                case 't': {
                        char *end;
                        duration = strtod(optarg, &end);
                        if (*end || duration < 0)
                                goto bad;
                        break;
                }
                case 's':
                        stop_file = optarg;
                        break;
                case 'o':
                        if (seq_parse_u64(optarg, &region_off))
                                goto bad;
                        break;
                case 'r':
                        if (seq_parse_u64(optarg, &region))
                                goto bad;
                        break;
                case 'W':
                        wrap = false;
                        break;
                case 'R':
                        if (seq_parse_u64(optarg, &run_id))
                                goto bad;
                        have_run = true;
                        break;
                case 'f':
                        if (seq_parse_u64(optarg, &first_seq) || first_seq == 0)
                                goto bad;
                        break;
                case 'F':
                        fua = true;
                        break;
                case 'p':
                        progress = optarg;
                        break;
                case 'P':
                        if (seq_parse_u64(optarg, &progress_ms))
                                goto bad;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 1;
                }
                continue;
        bad:
                fprintf(stderr, "seqwriter: bad value for -%c: %s\n", c, optarg);
                return 1;
        }
        int ndisks = argc - optind;
        if (ndisks < 1) {
                usage(stderr);
                return 1;
        }
        if (region_off % SEQ_BLOCK || region % SEQ_BLOCK) {
                fprintf(stderr, "seqwriter: --offset and --region must be multiples of %u\n",
                        SEQ_BLOCK);
                return 1;
        }
        if (!have_run) {
                if (util_random(&run_id, sizeof run_id) < 0) {
                        fprintf(stderr, "seqwriter: getrandom failed\n");
                        return 1;
                }
        }

        struct nbd_handle **h = calloc((size_t)ndisks, sizeof *h);
        if (!h)
                return 1;
        uint64_t min_size = UINT64_MAX;
        for (int i = 0; i < ndisks; i++) {
                const char *uri = argv[optind + i];
                h[i] = nbd_create();
                if (!h[i] || nbd_connect_uri(h[i], uri) == -1) {
                        fprintf(stderr, "seqwriter: %s: %s\n", uri, nbd_get_error());
                        return 1;
                }
                if (nbd_is_read_only(h[i]) == 1) {
                        fprintf(stderr, "seqwriter: %s: export is read-only\n", uri);
                        return 1;
                }
                if (fua && nbd_can_fua(h[i]) != 1) {
                        fprintf(stderr, "seqwriter: %s: server does not support FUA\n", uri);
                        return 1;
                }
                int64_t sz = nbd_get_size(h[i]);
                if (sz < 0) {
                        fprintf(stderr, "seqwriter: %s: %s\n", uri, nbd_get_error());
                        return 1;
                }
                if ((uint64_t)sz < min_size)
                        min_size = (uint64_t)sz;
        }
        if (region_off >= min_size) {
                fprintf(stderr, "seqwriter: offset beyond the smallest disk\n");
                return 1;
        }
        if (region == 0)
                region = (min_size - region_off) / SEQ_BLOCK * SEQ_BLOCK;
        if (region_off + region > min_size || region < SEQ_BLOCK) {
                fprintf(stderr,
                        "seqwriter: region does not fit the smallest disk (%" PRIu64 " bytes)\n",
                        min_size);
                return 1;
        }
        uint64_t slots = region / SEQ_BLOCK;

        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (!quiet)
                fprintf(stderr,
                        "seqwriter: run_id=%" PRIu64 " disks=%d first_seq=%" PRIu64
                        " region_off=%" PRIu64 " slots=%" PRIu64 " wrap=%d fua=%d\n",
                        run_id, ndisks, first_seq, region_off, slots, wrap, fua);

        unsigned char *blk = aligned_alloc(4096, SEQ_BLOCK);
        if (!blk)
                return 1;
        int64_t t0 = util_mono_usec();
        int64_t deadline = duration > 0 ? t0 + (int64_t)(duration * 1e6) : 0;
        int64_t next_progress = 0;
        uint64_t last_acked = first_seq - 1, n = 0;
        uint64_t capacity = slots * (uint64_t)ndisks;
        int rc = 0;
        const char *why = "count";
        if (progress)
                write_progress(progress, last_acked);

        for (uint64_t seq = first_seq;; seq++) {
                if (count && n >= count) {
                        why = "count";
                        break;
                }
                if (g_stop) {
                        why = "signal";
                        break;
                }
                if (deadline && util_mono_usec() >= deadline) {
                        why = "duration";
                        break;
                }
                if (stop_file && access(stop_file, F_OK) == 0) {
                        why = "stop file";
                        break;
                }
                if (!wrap && n >= capacity) {
                        why = "region full";
                        break;
                }

                struct seq_hdr hd = {
                    .magic = SEQ_MAGIC,
                    .version = SEQ_VERSION,
                    .ndisks = (uint32_t)ndisks,
                    .run_id = run_id,
                    .seq = seq,
                    .first_seq = first_seq,
                    .slots = slots,
                    .region_off = region_off,
                    .wtime_usec = (uint64_t)util_now_usec(),
                };
                uint64_t off;
                seq_place(seq, first_seq, (uint32_t)ndisks, slots, region_off, &hd.disk, &hd.slot,
                          &off);
                seq_block_fill(blk, &hd);
                if (nbd_pwrite(h[hd.disk], blk, SEQ_BLOCK, off, fua ? LIBNBD_CMD_FLAG_FUA : 0) ==
                    -1) {
                        fprintf(stderr,
                                "seqwriter: write seq %" PRIu64 " to disk %u offset %" PRIu64
                                " failed: %s\n",
                                seq, hd.disk, off, nbd_get_error());
                        rc = 2;
                        why = "write error";
                        break;
                }
                last_acked = seq;
                n++;
                if (progress) {
                        int64_t now = util_mono_usec();
                        if (now >= next_progress) {
                                write_progress(progress, last_acked);
                                next_progress = now + (int64_t)progress_ms * 1000;
                        }
                }
        }
        if (rc == 0) {
                for (int i = 0; i < ndisks; i++) {
                        if (nbd_flush(h[i], 0) == -1) {
                                fprintf(stderr, "seqwriter: flush disk %d: %s\n", i,
                                        nbd_get_error());
                                rc = 2;
                        }
                }
        }
        if (progress)
                write_progress(progress, last_acked);
        double secs = (double)(util_mono_usec() - t0) / 1e6;
        if (!quiet)
                fprintf(stderr,
                        "seqwriter: stopped (%s) after %" PRIu64
                        " writes in %.2f s (%.0f writes/s), "
                        "last acknowledged seq %" PRIu64 "\n",
                        why, n, secs, secs > 0 ? (double)n / secs : 0.0, last_acked);
        printf("%" PRIu64 "\n", last_acked);
        fflush(stdout);
        for (int i = 0; i < ndisks; i++) {
                if (rc == 0)
                        nbd_shutdown(h[i], 0);
                nbd_close(h[i]);
        }
        free(h);
        free(blk);
        return rc;
}
