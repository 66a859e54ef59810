/* Pure parsers and validators of NBD client input. See proto.h.
 *
 * No sockets, no allocation, no global state: every byte the client sends
 * passes through one of these functions before the server acts on it. */
#include "nbd/proto.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>

int nbd_request_parse(const uint8_t *buf, size_t len, struct nbd_request *out)
{
        if (len < NBD_REQUEST_LEN)
                return -EINVAL;
        if (nbd_get32(buf) != NBD_MAGIC_REQUEST)
                return -EPROTO;
        out->flags = nbd_get16(buf + 4);
        out->type = nbd_get16(buf + 6);
        out->cookie = nbd_get64(buf + 8);
        out->off_bytes = nbd_get64(buf + 16);
        out->len_bytes = nbd_get32(buf + 24);
        if (out->type == NBD_CMD_WRITE && out->len_bytes > NBD_MAX_PAYLOAD)
                return -EMSGSIZE;
        return 0;
}

/* Which command flags each command accepts. FUA is valid on every command
 * once SEND_FUA is advertised (the protocol says servers MUST accept it,
 * even where it means nothing). */
static uint16_t allowed_flags(uint16_t type)
{
        switch (type) {
        case NBD_CMD_WRITE_ZEROES:
                return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
        case NBD_CMD_READ:
        case NBD_CMD_WRITE:
        case NBD_CMD_DISC:
        case NBD_CMD_FLUSH:
        case NBD_CMD_TRIM:
                return NBD_CMD_FLAG_FUA;
        default:
                return 0;
        }
}

int nbd_request_check(const struct nbd_request *req, uint64_t export_size, uint16_t tflags)
{
        uint16_t ok_flags;
        uint64_t end;
        bool in_range;

        switch (req->type) {
        case NBD_CMD_READ:
        case NBD_CMD_WRITE:
        case NBD_CMD_DISC:
        case NBD_CMD_FLUSH:
                break;
        case NBD_CMD_TRIM:
                if (!(tflags & NBD_FLAG_SEND_TRIM))
                        return -EINVAL;
                break;
        case NBD_CMD_WRITE_ZEROES:
                if (!(tflags & NBD_FLAG_SEND_WRITE_ZEROES))
                        return -EINVAL;
                break;
        default:
                /* CACHE, BLOCK_STATUS and anything newer: not advertised. */
                return -EINVAL;
        }
        ok_flags = allowed_flags(req->type);
        if (!(tflags & NBD_FLAG_SEND_FUA))
                ok_flags &= (uint16_t)~NBD_CMD_FLAG_FUA;
        if (req->flags & ~ok_flags)
                return -EINVAL;

        /* FLUSH and DISC ignore offset and length (reserved, should be 0;
         * being lenient costs nothing and helps sloppy clients). */
        if (req->type == NBD_CMD_FLUSH || req->type == NBD_CMD_DISC)
                return 0;

        if (req->type == NBD_CMD_READ && req->len_bytes > NBD_MAX_PAYLOAD)
                return -EINVAL;
        in_range = !ck_add(req->off_bytes, (uint64_t)req->len_bytes, &end) && end <= export_size;
        if (!in_range) {
                /* The protocol's error list: ENOSPC for a write beyond the
                 * end, EINVAL for a read or trim beyond it. */
                if (req->type == NBD_CMD_WRITE || req->type == NBD_CMD_WRITE_ZEROES)
                        return -ENOSPC;
                return -EINVAL;
        }
        return 0;
}

int nbd_opt_hdr_parse(const uint8_t *buf, size_t len, struct nbd_opt_hdr *out)
{
        if (len < NBD_OPT_HDR_LEN)
                return -EINVAL;
        if (nbd_get64(buf) != NBD_MAGIC_OPTS)
                return -EPROTO;
        out->option = nbd_get32(buf + 8);
        out->len_bytes = nbd_get32(buf + 12);
        if (out->len_bytes > NBD_MAX_OPT_LEN)
                return -EMSGSIZE;
        return 0;
}

int nbd_export_name_check(const char *name, size_t len)
{
        if (len > NBD_MAX_STRING)
                return -EINVAL;
        /* util_utf8_valid also refuses NUL: a name with an embedded NUL
         * would otherwise match a registered id by its prefix. */
        if (!util_utf8_valid(name, len))
                return -EINVAL;
        return 0;
}

int nbd_link_export_parse(const char *name, size_t len, char pair_id[NBD_LINK_PAIR_ID_LEN])
{
        size_t plen = strlen(NBD_LINK_EXPORT_PREFIX);

        if (len < plen || memcmp(name, NBD_LINK_EXPORT_PREFIX, plen) != 0)
                return 0;
        name += plen;
        len -= plen;
        if (len != NBD_LINK_PAIR_ID_LEN - 1)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                char ch = name[i];
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;

                if (dash ? ch != '-' : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
                        return -EINVAL;
        }
        memcpy(pair_id, name, len);
        pair_id[len] = '\0';
        return 1;
}

int nbd_link_identity_parse(const char *identity, char node[NBD_LINK_NODE_LEN])
{
        size_t plen = strlen(NBD_LINK_IDENTITY_PREFIX), n;
        const char *p;

        if (strncmp(identity, NBD_LINK_IDENTITY_PREFIX, plen) != 0)
                return 0;
        p = identity + plen;
        n = strlen(p);
        if (n == 0 || n >= NBD_LINK_NODE_LEN)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char ch = p[i];
                bool alnum = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                             (ch >= 'A' && ch <= 'Z');

                if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
                        return -EINVAL;
        }
        memcpy(node, p, n + 1);
        return 1;
}

int nbd_opt_go_parse(const uint8_t *data, size_t len, struct nbd_opt_go *out)
{
        uint32_t name_len;
        uint16_t nreq;
        const uint8_t *p;

        memset(out, 0, sizeof(*out));
        if (len < 6)
                return -EINVAL;
        name_len = nbd_get32(data);
        if (name_len > len - 6)
                return -EINVAL;
        if (nbd_export_name_check((const char *)data + 4, name_len) < 0)
                return -EINVAL;
        p = data + 4 + name_len;
        nreq = nbd_get16(p);
        p += 2;
        /* The list must fill the rest of the option exactly. */
        if ((size_t)nreq * 2 != len - 6 - name_len)
                return -EINVAL;
        for (uint16_t i = 0; i < nreq; i++) {
                uint16_t info = nbd_get16(p + 2 * (size_t)i);
                if (info == NBD_INFO_BLOCK_SIZE)
                        out->want_block_size = true;
                else if (info == NBD_INFO_NAME)
                        out->want_name = true;
                /* Others (EXPORT is always sent; DESCRIPTION, unknown) are
                 * ignored as the protocol requires. */
        }
        out->name = (const char *)data + 4;
        out->name_len = name_len;
        return 0;
}
