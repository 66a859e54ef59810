/* NBD wire protocol: constants, decoded message structs, and the PURE
 * parsers/validators of client input (no sockets, no volumes), so that the
 * fuzzer and unit tests can drive them directly.
 *
 * Written from the protocol description (doc/proto.md of
 * NetworkBlockDevice/nbd). Everything on the wire is big-endian.
 *
 * Validation happens here, once, at the protocol edge; the rest of the
 * server asserts what these functions guarantee. */
#ifndef EVSREP_NBD_PROTO_H
#define EVSREP_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Magics. */
#define NBD_MAGIC_INIT         0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_MAGIC_OPTS         0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_MAGIC_OPT_REPLY    0x0003e889045565a9ull
#define NBD_MAGIC_REQUEST      0x25609513u
#define NBD_MAGIC_SIMPLE_REPLY 0x67446698u

/* Handshake flags (server, 16 bits) and client flags (32 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)

/* Options. */
#define NBD_OPT_EXPORT_NAME      1u
#define NBD_OPT_ABORT            2u
#define NBD_OPT_LIST             3u
#define NBD_OPT_STARTTLS         5u
#define NBD_OPT_INFO             6u
#define NBD_OPT_GO               7u
#define NBD_OPT_STRUCTURED_REPLY 8u

/* Option replies. Errors have bit 31 set. */
#define NBD_REP_ACK          1u
#define NBD_REP_SERVER       2u
#define NBD_REP_INFO         3u
#define NBD_REP_FLAG_ERROR   (1u << 31)
#define NBD_REP_ERR_UNSUP    (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY   (NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID  (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_PLATFORM (NBD_REP_FLAG_ERROR | 4u)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5u)
#define NBD_REP_ERR_UNKNOWN  (NBD_REP_FLAG_ERROR | 6u)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_FLAG_ERROR | 7u)
#define NBD_REP_ERR_TOO_BIG  (NBD_REP_FLAG_ERROR | 9u)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT      0u
#define NBD_INFO_NAME        1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE  3u

/* Commands and command flags. */
#define NBD_CMD_READ         0u
#define NBD_CMD_WRITE        1u
#define NBD_CMD_DISC         2u
#define NBD_CMD_FLUSH        3u
#define NBD_CMD_TRIM         4u
#define NBD_CMD_CACHE        5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u

#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF        (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Error values of simple replies (fixed by the protocol, not host errno). */
#define NBD_EPERM     1u
#define NBD_EIO       5u
#define NBD_ENOMEM    12u
#define NBD_EINVAL    22u
#define NBD_ENOSPC    28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP   95u
#define NBD_ESHUTDOWN 108u

/* Sizes on the wire. */
#define NBD_HELLO_LEN        18u /* NBDMAGIC, IHAVEOPT, 16-bit flags */
#define NBD_OPT_HDR_LEN      16u /* IHAVEOPT, option, length */
#define NBD_OPT_REPLY_LEN    20u /* magic, option, type, length */
#define NBD_REQUEST_LEN      28u
#define NBD_SIMPLE_REPLY_LEN 16u

/* Limits. The maximum payload is what we advertise in NBD_INFO_BLOCK_SIZE
 * and the protocol's "never a DoS" size; a bigger WRITE closes the
 * connection because draining an arbitrary payload would be the DoS. */
#define NBD_MIN_BLOCK   1u
#define NBD_PREF_BLOCK  4096u
#define NBD_MAX_PAYLOAD (32u * 1024 * 1024)
#define NBD_MAX_STRING  4096u  /* export names */
#define NBD_MAX_OPT_LEN 65536u /* option data; bigger closes the connection */

/* A decoded transmission request. */
struct nbd_request {
        uint16_t flags;
        uint16_t type;
        uint64_t cookie;
        uint64_t off_bytes;
        uint32_t len_bytes;
};

/* Decode one request header (buf holds len bytes, needs NBD_REQUEST_LEN).
 * Returns 0; -EINVAL when len is short; -EPROTO on bad magic; -EMSGSIZE for
 * a WRITE whose payload exceeds NBD_MAX_PAYLOAD. The last two are fatal to
 * the connection: the byte stream can no longer be trusted or drained. */
int nbd_request_parse(const uint8_t *buf, size_t len, struct nbd_request *out);

/* Validate a decoded request against the export (size in bytes and the
 * transmission flags we advertised). Returns 0 or the -errno to reply with
 * (-EINVAL: unknown command, flag not valid for this command, read beyond
 * the end or bigger than the maximum payload; -ENOSPC: write/zero beyond
 * the end). Read-only is NOT checked here: the volume is the authority, and
 * it may change after the handshake. */
int nbd_request_check(const struct nbd_request *req, uint64_t export_size, uint16_t tflags);

/* Decoded option header. */
struct nbd_opt_hdr {
        uint32_t option;
        uint32_t len_bytes;
};

/* Decode an option header (needs NBD_OPT_HDR_LEN bytes). Returns 0, -EINVAL
 * when short, -EPROTO on bad magic, -EMSGSIZE when the data is longer than
 * NBD_MAX_OPT_LEN. */
int nbd_opt_hdr_parse(const uint8_t *buf, size_t len, struct nbd_opt_hdr *out);

/* Decoded NBD_OPT_INFO / NBD_OPT_GO data. name points into the parsed
 * buffer and is NOT terminated. */
struct nbd_opt_go {
        const char *name;
        uint32_t name_len;
        bool want_block_size;
        bool want_name;
};

/* Decode the data of NBD_OPT_INFO / NBD_OPT_GO. Returns 0 or -EINVAL when
 * malformed (lengths disagree, name too long, name not UTF-8 or has NUL). */
int nbd_opt_go_parse(const uint8_t *data, size_t len, struct nbd_opt_go *out);

/* Validate an export name given by NBD_OPT_EXPORT_NAME. Returns 0 or
 * -EINVAL (too long, not UTF-8, embedded NUL). */
int nbd_export_name_check(const char *name, size_t len);

/* Mirror links between nodes (docs/design/multi-site.md "Remote DR links").
 * An export name "link/<pair id>" (a lowercase UUID, exactly): 1 with the
 * pair id copied into pair_id (37 bytes), 0 when the name is not a link
 * name at all (no "link/" prefix: an attachment's export name), -EINVAL
 * when it starts with "link/" but the rest is not a pair id. */
#define NBD_LINK_EXPORT_PREFIX "link/"
#define NBD_LINK_PAIR_ID_LEN   37
int nbd_link_export_parse(const char *name, size_t len, char pair_id[NBD_LINK_PAIR_ID_LEN]);
/* A PSK identity "evsrep-link:<node name>" (node name: 1..63 of
 * [A-Za-z0-9._-], starting with a letter or digit): 1 with the node name
 * copied into node (64 bytes), 0 when it does not start with the prefix,
 * -EINVAL when the node name is not valid. */
#define NBD_LINK_IDENTITY_PREFIX "evsrep-link:"
#define NBD_LINK_NODE_LEN        64
int nbd_link_identity_parse(const char *identity, char node[NBD_LINK_NODE_LEN]);

/* Map a negative errno from the volume layer to an NBD error value. */
uint32_t nbd_errmap(int neg_errno);

/* Big-endian helpers. */
static inline uint16_t nbd_get16(const uint8_t *p)
{
        return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}
static inline uint32_t nbd_get32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t nbd_get64(const uint8_t *p)
{
        return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}
static inline void nbd_put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}
static inline void nbd_put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}
static inline void nbd_put64(uint8_t *p, uint64_t v)
{
        nbd_put32(p, (uint32_t)(v >> 32));
        nbd_put32(p + 4, (uint32_t)v);
}

#endif
