/* libFuzzer target over the pure NBD parsers (proto.c): request headers
 * and their validation, option headers, NBD_OPT_GO/INFO data and export
 * names. Whatever the bytes, no crash, no out-of-bounds read, and what the
 * validators admit satisfies the invariants the server relies on.
 *
 * Input layout: byte 0 selects the parser, bytes 1..8 give an export size
 * (for request validation), the rest is the message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbd/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_request(const uint8_t *p, size_t n, uint64_t export_size)
{
        struct nbd_request r;
        uint16_t tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                          NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
        int rc = nbd_request_parse(p, n, &r);

        if (rc < 0)
                return;
        if (r.type == NBD_CMD_WRITE && r.len_bytes > NBD_MAX_PAYLOAD)
                abort();
        if (nbd_request_check(&r, export_size, tflags) != 0)
                return;
        /* Admitted: a known command, flags it accepts, inside the export. */
        if (r.type != NBD_CMD_FLUSH && r.type != NBD_CMD_DISC) {
                if (r.off_bytes > export_size || r.len_bytes > export_size - r.off_bytes)
                        abort();
                if (r.type == NBD_CMD_READ && r.len_bytes > NBD_MAX_PAYLOAD)
                        abort();
        }
        if (r.type > NBD_CMD_WRITE_ZEROES || r.type == NBD_CMD_CACHE)
                abort();
        if ((r.flags & NBD_CMD_FLAG_NO_HOLE) && r.type != NBD_CMD_WRITE_ZEROES)
                abort();
}

static void fuzz_opt_hdr(const uint8_t *p, size_t n)
{
        struct nbd_opt_hdr h;

        if (nbd_opt_hdr_parse(p, n, &h) == 0 && h.len_bytes > NBD_MAX_OPT_LEN)
                abort();
}

static void fuzz_opt_go(const uint8_t *p, size_t n)
{
        struct nbd_opt_go go;
        uint8_t *copy;

        /* Exact-size heap copy so ASan sees any read past the data. */
        copy = malloc(n ? n : 1);
        if (!copy)
                return;
        memcpy(copy, p, n);
        if (nbd_opt_go_parse(copy, n, &go) == 0) {
                const uint8_t *name = (const uint8_t *)go.name;
                if (go.name_len > NBD_MAX_STRING || name < copy || name + go.name_len > copy + n)
                        abort();
                if (memchr(go.name, 0, go.name_len))
                        abort();
        }
        free(copy);
}

static void fuzz_name(const uint8_t *p, size_t n)
{
        char *copy = malloc(n ? n : 1);

        if (!copy)
                return;
        memcpy(copy, p, n);
        if (nbd_export_name_check(copy, n) == 0 && memchr(copy, 0, n))
                abort();
        free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint64_t export_size;

        if (size < 9)
                return 0;
        export_size = nbd_get64(data + 1);
        switch (data[0] & 3) {
        case 0:
                fuzz_request(data + 9, size - 9, export_size);
                break;
        case 1:
                fuzz_opt_hdr(data + 9, size - 9);
                break;
        case 2:
                fuzz_opt_go(data + 9, size - 9);
                break;
        default:
                fuzz_name(data + 9, size - 9);
                (void)nbd_errmap(-(int)(export_size & 0xff));
                break;
        }
        return 0;
}
