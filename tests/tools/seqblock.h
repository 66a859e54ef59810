/* Block format shared by seqwriter and seqcheck (the consistency checker).
 *
 * The writer issues dependent 4 KiB writes, sequence numbers first_seq,
 * first_seq+1, ... round-robin across N disks. Sequence s goes to
 *
 *     i      = s - first_seq
 *     disk   = i % ndisks
 *     slot   = (i / ndisks) % slots          (slots per disk, wraps)
 *     offset = region_off + slot * SEQ_BLOCK
 *
 * Every block is self-describing: a header (below) and a payload derived from
 * (run_id, seq), covered by an FNV-1a 64 checksum over the whole block with
 * the checksum field zero. A block with the magic but a bad checksum is a torn
 * or corrupted write; a block whose header disagrees with where it was found
 * (disk, slot, layout) is misplaced. Both are reported as errors.
 *
 * Exactness with wrap: let M be the largest seq found. The image is a prefix
 * (a state reachable by applying writes first_seq..K in order) iff K == M and
 * for every s in [max(first_seq, M - ndisks*slots + 1), M] the slot of s holds
 * exactly s: any older seq in a slot is overwritten by a newer one <= M only
 * when that newer write is applied. Slots never reached by a seq <= M must not
 * hold a block of this run at all. */
#ifndef EVSREP_TESTS_SEQBLOCK_H
#define EVSREP_TESTS_SEQBLOCK_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define SEQ_BLOCK   4096u
#define SEQ_MAGIC   0x3130514553535645ull /* "EVSSEQ01" little endian */
#define SEQ_VERSION 1u

struct seq_hdr {
        uint64_t magic;
        uint32_t version;
        uint32_t ndisks;
        uint64_t run_id;
        uint64_t seq;
        uint64_t first_seq;
        uint32_t disk;
        uint32_t pad;
        uint64_t slot;       /* slot inside the region, after the wrap */
        uint64_t slots;      /* slots per disk */
        uint64_t region_off; /* byte offset of slot 0 */
        uint64_t wtime_usec; /* wall clock at submission, for diagnostics */
        uint64_t checksum;   /* FNV-1a 64 of the block with this field 0 */
};

_Static_assert(sizeof(struct seq_hdr) <= 128, "header fits");

static inline uint64_t seq_fnv1a(const unsigned char *p, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 0x100000001b3ull;
        }
        return h;
}

static inline uint64_t seq_block_sum(const unsigned char *blk)
{
        struct seq_hdr h;
        unsigned char tmp[sizeof h];
        memcpy(&h, blk, sizeof h);
        h.checksum = 0;
        memcpy(tmp, &h, sizeof h);
        uint64_t s = seq_fnv1a(tmp, sizeof tmp);
        /* continue the hash over the payload */
        const unsigned char *p = blk + sizeof h;
        for (size_t i = 0; i < SEQ_BLOCK - sizeof h; i++) {
                s ^= p[i];
                s *= 0x100000001b3ull;
        }
        return s;
}

/* Fill blk with header + payload for one sequence number. */
static inline void seq_block_fill(unsigned char *blk, const struct seq_hdr *hin)
{
        struct seq_hdr h = *hin;
        h.checksum = 0;
        memset(blk, 0, SEQ_BLOCK);
        memcpy(blk, &h, sizeof h);
        uint64_t x = h.run_id ^ (h.seq * 0x9e3779b97f4a7c15ull) ^ 0x5deece66dull;
        if (x == 0)
                x = 1;
        for (size_t off = 128; off < SEQ_BLOCK; off += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(blk + off, &x, 8);
        }
        h.checksum = seq_block_sum(blk);
        memcpy(blk, &h, sizeof h);
}

/* Layout of a sequence number. */
static inline void seq_place(uint64_t seq, uint64_t first_seq, uint32_t ndisks, uint64_t slots,
                             uint64_t region_off, uint32_t *disk, uint64_t *slot, uint64_t *off)
{
        uint64_t i = seq - first_seq;
        *disk = (uint32_t)(i % ndisks);
        *slot = (i / ndisks) % slots;
        *off = region_off + *slot * SEQ_BLOCK;
}

/* Parse a count or size: decimal/0x, optional K/M/G (binary), "iB"/"B". */
static inline int seq_parse_u64(const char *s, uint64_t *out)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || end == s || s[0] == '-')
                return -1;
        uint64_t mul = 1;
        switch (*end) {
        case '\0':
                break;
        case 'k':
        case 'K':
                mul = 1ull << 10;
                end++;
                break;
        case 'm':
        case 'M':
                mul = 1ull << 20;
                end++;
                break;
        case 'g':
        case 'G':
                mul = 1ull << 30;
                end++;
                break;
        default:
                return -1;
        }
        if (*end == 'i' || *end == 'B')
                end++;
        if (*end == 'B')
                end++;
        if (*end)
                return -1;
        if (ck_mul((uint64_t)v, mul, out))
                return -1;
        return 0;
}

/* The tools are short-lived test processes that exit straight from error
 * paths; under ASan builds their exit-time leaks are noise, not findings. */
__attribute__((used)) const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void)
{
        return "detect_leaks=0";
}

#endif
