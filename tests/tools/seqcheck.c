/* seqcheck: the verifier half of the consistency checker.
 *
 * Reads the region of N NBD disks (the DR disks of a consistency group, in the
 * same order as given to seqwriter; read-only exports are fine), collects every
 * block written by seqwriter and checks that the sequence numbers present form
 * a prefix of the writer's sequence: never write N+1 without write N, across
 * all disks. The check is exact with wrap, see seqblock.h.
 *
 * Exit 0 consistent, 1 inconsistent (the first gap is named), 2 usage or I/O
 * error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "common/util.h"
#include "seqblock.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: seqcheck [options] NBD_URI...\n"
                "Checks that the seqwriter blocks on the disks (same order as the writer's)\n"
                "form a prefix of the writer's sequence with no gap.\n\n"
                "  -o, --offset BYTES     region start, as given to seqwriter (default 0; K/M/G)\n"
                "  -r, --region BYTES     region size per disk, as given to seqwriter\n"
                "                         (default: smallest disk - offset)\n"
                "  -R, --run-id N         only blocks of this run (default: the only run found;\n"
                "                         several runs without -R is an error)\n"
                "  -m, --max              print the highest sequence number found (0: none)\n"
                "                         and exit 0 without checking for gaps\n"
                "  -a, --expect-min N     also fail if the highest seq found is below N\n"
                "  -b, --expect-max N     also fail if the highest seq found is above N\n"
                "  -t, --torn-next        accept one torn block: the write right after the\n"
                "                         last intact one (in flight at the instant, as a\n"
                "                         crash or a failing device may leave it)\n"
                "  -q, --quiet            only errors on stderr\n"
                "  -h, --help             this text\n\n"
                "Prints the highest sequence number found on stdout.\n"
                "Exit: 0 consistent, 1 inconsistent (first gap named), 2 usage or I/O error.\n");
}

struct disk {
        const char *uri;
        struct nbd_handle *h;
        uint64_t size;
        uint64_t *seq; /* per slot: seq of this run, 0 none */
};

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"offset", required_argument, 0, 'o'},
            {"region", required_argument, 0, 'r'},
            {"run-id", required_argument, 0, 'R'},
            {"max", no_argument, 0, 'm'},
            {"expect-min", required_argument, 0, 'a'},
            {"expect-max", required_argument, 0, 'b'},
            {"torn-next", no_argument, 0, 't'},
            {"quiet", no_argument, 0, 'q'},
            {"help", no_argument, 0, 'h'},
            {0, 0, 0, 0},
        };
        uint64_t region_off = 0, region = 0, run_id = 0, expect_min = 0, expect_max = UINT64_MAX;
        uint64_t ntorn = 0, torn_seq = 0, torn_off = 0;
        int torn_disk = 0;
        bool torn_ok = false;
        bool have_run = false, max_mode = false, quiet = false;
        int c;
        while ((c = getopt_long(argc, argv, "o:r:R:ma:b:tqh", opts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        if (seq_parse_u64(optarg, &region_off))
                                goto bad;
                        break;
                case 'r':
                        if (seq_parse_u64(optarg, &region))
                                goto bad;
                        break;
                case 'R':
                        if (seq_parse_u64(optarg, &run_id))
                                goto bad;
                        have_run = true;
                        break;
                case 'm':
                        max_mode = true;
                        break;
                case 'a':
                        if (seq_parse_u64(optarg, &expect_min))
                                goto bad;
                        break;
                case 'b':
                        if (seq_parse_u64(optarg, &expect_max))
                                goto bad;
                        break;
                case 't':
                        torn_ok = true;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
                continue;
        bad:
                fprintf(stderr, "seqcheck: bad value for -%c: %s\n", c, optarg);
                return 2;
        }
        int ndisks = argc - optind;
        if (ndisks < 1) {
                usage(stderr);
                return 2;
        }
        if (region_off % SEQ_BLOCK || region % SEQ_BLOCK) {
                fprintf(stderr, "seqcheck: --offset and --region must be multiples of %u\n",
                        SEQ_BLOCK);
                return 2;
        }

        struct disk *d = calloc((size_t)ndisks, sizeof *d);
        if (!d)
                return 2;
        uint64_t min_size = UINT64_MAX;
        size_t chunk = 1u << 20;
        for (int i = 0; i < ndisks; i++) {
                d[i].uri = argv[optind + i];
                d[i].h = nbd_create();
                if (!d[i].h || nbd_connect_uri(d[i].h, d[i].uri) == -1) {
                        fprintf(stderr, "seqcheck: %s: %s\n", d[i].uri, nbd_get_error());
                        return 2;
                }
                int64_t sz = nbd_get_size(d[i].h);
                if (sz < 0) {
                        fprintf(stderr, "seqcheck: %s: %s\n", d[i].uri, nbd_get_error());
                        return 2;
                }
                d[i].size = (uint64_t)sz;
                if (d[i].size < min_size)
                        min_size = d[i].size;
                int64_t mx = nbd_get_block_size(d[i].h, LIBNBD_SIZE_MAXIMUM);
                if (mx >= (int64_t)SEQ_BLOCK && (uint64_t)mx < chunk)
                        chunk = (size_t)mx / SEQ_BLOCK * SEQ_BLOCK;
        }
        if (region_off >= min_size) {
                fprintf(stderr, "seqcheck: offset beyond the smallest disk\n");
                return 2;
        }
        if (region == 0)
                region = (min_size - region_off) / SEQ_BLOCK * SEQ_BLOCK;
        if (region_off + region > min_size || region < SEQ_BLOCK) {
                fprintf(stderr, "seqcheck: region does not fit the smallest disk\n");
                return 2;
        }
        uint64_t slots = region / SEQ_BLOCK;

        unsigned char *buf = aligned_alloc(4096, chunk);
        if (!buf)
                return 2;
        uint64_t found = 0, other_runs = 0, max_seq = 0, first_seq = 0;
        uint32_t max_disk = 0;
        uint64_t max_slot = 0;
        uint64_t seen_run = 0;
        bool run_known = have_run;
        if (have_run)
                seen_run = run_id;
        int errors = 0;
        char first_err[512] = "";
#define ERR(...)                                                                                   \
        do {                                                                                       \
                if (!errors)                                                                       \
                        snprintf(first_err, sizeof first_err, __VA_ARGS__);                        \
                errors++;                                                                          \
        } while (0)

        for (int i = 0; i < ndisks; i++) {
                d[i].seq = calloc(slots, sizeof *d[i].seq);
                if (!d[i].seq) {
                        fprintf(stderr, "seqcheck: out of memory\n");
                        return 2;
                }
                for (uint64_t pos = 0; pos < region; pos += chunk) {
                        size_t n = (size_t)MIN((uint64_t)chunk, region - pos);
                        if (nbd_pread(d[i].h, buf, n, region_off + pos, 0) == -1) {
                                fprintf(stderr, "seqcheck: read %s at %" PRIu64 ": %s\n", d[i].uri,
                                        region_off + pos, nbd_get_error());
                                return 2;
                        }
                        for (size_t b = 0; b < n; b += SEQ_BLOCK) {
                                const unsigned char *blk = buf + b;
                                struct seq_hdr hd;
                                memcpy(&hd, blk, sizeof hd);
                                if (hd.magic != SEQ_MAGIC)
                                        continue;
                                uint64_t off = region_off + pos + b;
                                uint64_t slot = (pos + b) / SEQ_BLOCK;
                                if (hd.version != SEQ_VERSION ||
                                    seq_block_sum(blk) != hd.checksum) {
                                        if (torn_ok && ntorn++ == 0) {
                                                /* judged after the scan: only the write in
                                                 * flight at the instant may be torn */
                                                torn_seq = hd.seq;
                                                torn_disk = i;
                                                torn_off = off;
                                                continue;
                                        }
                                        ERR("corrupt or torn block on disk %d (%s) at offset "
                                            "%" PRIu64 " (header claims seq %" PRIu64
                                            "): checksum mismatch",
                                            i, d[i].uri, off, hd.seq);
                                        continue;
                                }
                                if (!run_known) {
                                        seen_run = hd.run_id;
                                        run_known = true;
                                } else if (hd.run_id != seen_run) {
                                        if (!have_run) {
                                                fprintf(stderr,
                                                        "seqcheck: blocks of several runs found "
                                                        "(%" PRIu64 " and %" PRIu64
                                                        "); pass --run-id\n",
                                                        seen_run, hd.run_id);
                                                return 2;
                                        }
                                        other_runs++;
                                        continue;
                                }
                                uint32_t pd;
                                uint64_t ps, po;
                                bool layout_ok = hd.ndisks == (uint32_t)ndisks &&
                                                 hd.slots == slots && hd.region_off == region_off &&
                                                 hd.seq >= hd.first_seq;
                                if (layout_ok) {
                                        seq_place(hd.seq, hd.first_seq, hd.ndisks, slots,
                                                  region_off, &pd, &ps, &po);
                                        layout_ok = pd == (uint32_t)i && hd.disk == pd &&
                                                    ps == slot && hd.slot == slot && po == off;
                                }
                                if (!layout_ok) {
                                        ERR("misplaced block on disk %d (%s) at offset %" PRIu64
                                            ": seq %" PRIu64 " belongs to disk %u slot %" PRIu64
                                            " of a %u-disk, %" PRIu64
                                            "-slot layout at offset %" PRIu64
                                            " (wrong disk order, offset or region?)",
                                            i, d[i].uri, off, hd.seq, hd.disk, hd.slot, hd.ndisks,
                                            hd.slots, hd.region_off);
                                        continue;
                                }
                                if (found && hd.first_seq != first_seq) {
                                        ERR("blocks disagree on first_seq (%" PRIu64 " vs %" PRIu64
                                            ")",
                                            hd.first_seq, first_seq);
                                        continue;
                                }
                                first_seq = hd.first_seq;
                                d[i].seq[slot] = hd.seq;
                                found++;
                                if (hd.seq > max_seq) {
                                        max_seq = hd.seq;
                                        max_disk = (uint32_t)i;
                                        max_slot = slot;
                                }
                        }
                }
        }

        if (ntorn && (ntorn > 1 || torn_seq != max_seq + 1))
                ERR("corrupt or torn block on disk %d (%s) at offset %" PRIu64
                    " (header claims seq %" PRIu64 ", %" PRIu64
                    " torn block(s)): only one, the write "
                    "after the last intact one (%" PRIu64 "), may be torn",
                    torn_disk, d[torn_disk].uri, torn_off, torn_seq, ntorn, max_seq);
        else if (ntorn && !quiet)
                fprintf(stderr,
                        "seqcheck: seq %" PRIu64 " (in flight at the instant) is torn on disk %d\n",
                        torn_seq, torn_disk);
        int rc = 0;
        if (max_mode) {
                printf("%" PRIu64 "\n", max_seq);
                goto out;
        }

        /* The exact prefix check: every seq in the window below the max must be in its slot. */
        uint64_t missing = 0, first_missing = 0, prefix_end = max_seq;
        if (found) {
                uint64_t window = slots * (uint64_t)ndisks;
                uint64_t lo = first_seq;
                if (max_seq - first_seq + 1 > window)
                        lo = max_seq - window + 1;
                for (uint64_t s = lo; s <= max_seq; s++) {
                        uint32_t pd;
                        uint64_t ps, po;
                        seq_place(s, first_seq, (uint32_t)ndisks, slots, region_off, &pd, &ps, &po);
                        uint64_t have = d[pd].seq[ps];
                        if (have == s)
                                continue;
                        if (!missing) {
                                first_missing = s;
                                prefix_end = s - 1;
                                if (have == 0)
                                        ERR("gap: seq %" PRIu64 " (disk %u %s, offset %" PRIu64
                                            ") is missing but seq %" PRIu64
                                            " (disk %u, offset %" PRIu64 ") is present",
                                            s, pd, d[pd].uri, po, max_seq, max_disk,
                                            region_off + max_slot * SEQ_BLOCK);
                                else
                                        ERR("gap: seq %" PRIu64 " (disk %u %s, offset %" PRIu64
                                            ") is missing, its slot still holds older seq %" PRIu64
                                            ", but seq %" PRIu64 " (disk %u) is present",
                                            s, pd, d[pd].uri, po, have, max_seq, max_disk);
                        }
                        missing++;
                }
        }
        if (max_seq < expect_min)
                ERR("highest seq found is %" PRIu64 ", below the expected minimum %" PRIu64
                    " (acknowledged writes missing)",
                    max_seq, expect_min);
        if (expect_max != UINT64_MAX && max_seq > expect_max)
                ERR("highest seq found is %" PRIu64 ", above the expected maximum %" PRIu64,
                    max_seq, expect_max);

        printf("%" PRIu64 "\n", max_seq);
        if (errors) {
                fprintf(stderr, "seqcheck: INCONSISTENT: %s\n", first_err);
                fprintf(stderr,
                        "seqcheck: %d error(s); %" PRIu64 " blocks of run %" PRIu64
                        " found, max seq %" PRIu64 ", %" PRIu64 " seqs missing below it%s",
                        errors, found, seen_run, max_seq, missing, missing ? "" : "\n");
                if (missing)
                        fprintf(stderr,
                                " (first %" PRIu64 ", longest prefix ends at %" PRIu64 ")\n",
                                first_missing, prefix_end);
                rc = 1;
                goto out;
        }
        if (!quiet)
                fprintf(stderr,
                        "seqcheck: consistent: run %" PRIu64 ", %" PRIu64 " blocks, prefix %" PRIu64
                        "..%" PRIu64 " on %d disks%s\n",
                        seen_run, found, found ? first_seq : 0, max_seq, ndisks,
                        other_runs ? " (blocks of other runs ignored)" : "");
out:
        for (int i = 0; i < ndisks; i++) {
                nbd_shutdown(d[i].h, 0);
                nbd_close(d[i].h);
                free(d[i].seq);
        }
        free(d);
        free(buf);
        return rc;
}
