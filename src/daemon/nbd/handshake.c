/* Fixed newstyle handshake: greeting, client flags, then options until the
 * client picks an export (NBD_OPT_GO / NBD_OPT_EXPORT_NAME) or leaves.
 *
 * Every option's bytes are read in full before they are interpreted, and
 * interpreted only through the pure parsers of proto.c. */
#include "common/log.h"
#include "common/util.h"
#include "nbd/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bound the number of options per handshake: a client looping on INFO or
 * LIST forever is a denial of service, not a negotiation. */
#define NBD_MAX_OPTIONS 256

static int send_opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data,
                          uint32_t len)
{
        uint8_t hdr[NBD_OPT_REPLY_LEN];
        int rc;

        nbd_put64(hdr, NBD_MAGIC_OPT_REPLY);
        nbd_put32(hdr + 8, opt);
        nbd_put32(hdr + 12, type);
        nbd_put32(hdr + 16, len);
        rc = nbd_conn_send(c, hdr, sizeof(hdr));
        if (rc == 0 && len > 0)
                rc = nbd_conn_send(c, data, len);
        return rc;
}

static int send_opt_error(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
        return send_opt_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

uint16_t nbd_export_tflags(struct volume *v, const struct attachment *att)
{
        uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                     NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;

        /* A link export writes the DR volume, read-only for clients. */
        if ((volume_read_only(v) && !attach_is_link(att)) || attach_read_only(att))
                f |= NBD_FLAG_READ_ONLY;
        return f;
}

/* Look an export up by a (validated, unterminated) name: the name is an
 * attachment's, never a volume id (docs/design/nbd.md "Attachments"). On
 * success *att holds a reference to the attachment and the volume returned
 * holds one too. */
static struct volume *lookup(struct nbd_conn *c, const char *name, size_t len,
                             struct attachment **att)
{
        char buf[NBD_MAX_STRING + 1], pair[NBD_LINK_PAIR_ID_LEN], node[NBD_LINK_NODE_LEN];
        struct volume *v;
        int lk, li;

        *att = NULL;
        if (len == 0 || len > NBD_MAX_STRING)
                return NULL; /* no default export */
        memcpy(buf, name, len);
        buf[len] = '\0';
        /* A mirror link: a link name on a link session, both or neither
         * (multi-site.md "Remote DR links"). */
        lk = nbd_link_export_parse(name, len, pair);
        li = nbd_link_identity_parse(c->tls_psk_id, node);
        if (lk != 0 || li != 0) {
                if (lk == 1 && li == 1 && c->tls)
                        return nbd_link_lookup(c, pair, node, att);
                log_info("nbd %s: %s: %s, refused", c->srv->site, c->peer,
                         lk == 0   ? "a link session asked for a client export"
                         : li == 0 ? "a link export asked for without a link session"
                                   : "malformed link export name or identity");
                return NULL;
        }
        if (!(*att = attach_lookup(c->srv->site, buf)))
                return NULL;
        /* A PSK session opens the export of its own attachment only. */
        if (c->tls_psk_id[0] && strcmp(attach_id(*att), c->tls_psk_id) != 0) {
                attach_put(*att);
                *att = NULL;
                return NULL;
        }
        v = volreg_lookup(c->srv->site, attach_volume_id(*att));
        if (!v || volume_killed(v)) {
                volume_put(v);
                attach_put(*att);
                *att = NULL;
                return NULL;
        }
        return v;
}

/* ---- NBD_OPT_LIST ---- */

/* Export names are per-attachment secrets: listing them would hand every
 * tenant's volumes to whoever reaches the port. */
static int opt_list(struct nbd_conn *c, uint32_t len)
{
        if (len != 0)
                return send_opt_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                                      "NBD_OPT_LIST takes no data");
        return send_opt_error(c, NBD_OPT_LIST, NBD_REP_ERR_POLICY,
                              "exports are not listed: ask the API for an attachment "
                              "(os-initialize_connection)");
}

/* ---- NBD_OPT_STARTTLS ---- */

/* Ack, then the TLS handshake on the same socket; the options start over
 * inside TLS. A failed TLS handshake ends the connection (the stream is in
 * an unknown state). */
static int opt_starttls(struct nbd_conn *c, uint32_t len)
{
        struct nbd_tls *t = c->srv->lim.tls;
        int secs = c->srv->lim.handshake_timeout_sec;
        int rc;

        if (len != 0)
                return send_opt_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID,
                                      "NBD_OPT_STARTTLS takes no data");
        if (nbd_tls_mode(t) == NBD_TLS_OFF)
                return send_opt_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_UNSUP,
                                      "TLS is not enabled on this server (nbd_tls = off)");
        if (c->tls)
                return send_opt_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID,
                                      "TLS is already on");
        if ((rc = send_opt_reply(c, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0)) < 0)
                return rc;
        rc = nbd_tls_accept(t, c->fd, secs > 0 ? (unsigned)secs * 1000u : 30000u, &c->tls,
                            c->tls_psk_id, sizeof(c->tls_psk_id));
        if (rc == 0)
                log_debug("nbd %s: %s: TLS on (%s)", c->srv->site, c->peer,
                          c->tls_psk_id[0] ? "PSK" : "certificate");
        return rc;
}

/* ---- NBD_OPT_INFO / NBD_OPT_GO ---- */

/* Returns 1 when GO succeeded (c->vol set), 0 to continue haggling, or
 * -errno on a socket error. */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
        struct nbd_opt_go go;
        struct attachment *att;
        struct volume *v;
        uint8_t info[4 + NBD_MAX_STRING];
        uint16_t tflags;
        int rc;

        if (nbd_opt_go_parse(data, len, &go) < 0)
                return send_opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed option data");
        if (atomic_load(&c->srv->stopping))
                return send_opt_error(c, opt, NBD_REP_ERR_SHUTDOWN, "server shutting down");
        v = lookup(c, go.name, go.name_len, &att);
        if (!v)
                return send_opt_error(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");
        tflags = nbd_export_tflags(v, att);

        nbd_put16(info, NBD_INFO_EXPORT);
        nbd_put64(info + 2, volume_size(v));
        nbd_put16(info + 10, tflags);
        rc = send_opt_reply(c, opt, NBD_REP_INFO, info, 12);
        if (rc == 0 && go.want_block_size) {
                nbd_put16(info, NBD_INFO_BLOCK_SIZE);
                nbd_put32(info + 2, NBD_MIN_BLOCK);
                nbd_put32(info + 6, NBD_PREF_BLOCK);
                nbd_put32(info + 10, NBD_MAX_PAYLOAD);
                rc = send_opt_reply(c, opt, NBD_REP_INFO, info, 14);
        }
        if (rc == 0 && go.want_name) {
                /* The name the client asked for: the volume id is not its
                 * business. */
                nbd_put16(info, NBD_INFO_NAME);
                memcpy(info + 2, go.name, go.name_len);
                rc = send_opt_reply(c, opt, NBD_REP_INFO, info, (uint32_t)(2 + go.name_len));
        }
        if (rc == 0)
                rc = send_opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
        if (rc < 0 || opt == NBD_OPT_INFO) {
                volume_put(v);
                attach_put(att);
                return rc;
        }
        c->vol = v;
        c->att = att;
        c->tflags = tflags;
        return 1;
}

/* ---- NBD_OPT_EXPORT_NAME ---- */

static int opt_export_name(struct nbd_conn *c, const uint8_t *data, uint32_t len, bool no_zeroes)
{
        uint8_t rep[10 + 124] = {0};
        struct attachment *att = NULL;
        struct volume *v = NULL;
        int rc;

        /* This option cannot report errors: the protocol says to close. */
        if (nbd_export_name_check((const char *)data, len) == 0 && !atomic_load(&c->srv->stopping))
                v = lookup(c, (const char *)data, len, &att);
        if (!v) {
                log_info("nbd %s: %s: unknown export by NBD_OPT_EXPORT_NAME, closing", c->srv->site,
                         c->peer);
                return -ENOENT;
        }
        c->tflags = nbd_export_tflags(v, att);
        nbd_put64(rep, volume_size(v));
        nbd_put16(rep + 8, c->tflags);
        rc = nbd_conn_send(c, rep, no_zeroes ? 10 : sizeof(rep));
        if (rc < 0) {
                volume_put(v);
                attach_put(att);
                return rc;
        }
        c->vol = v;
        c->att = att;
        return 1;
}

int nbd_handshake_run(struct nbd_conn *c)
{
        uint8_t hello[NBD_HELLO_LEN];
        uint8_t cflags_buf[4];
        uint32_t cflags;
        int rc;

        nbd_put64(hello, NBD_MAGIC_INIT);
        nbd_put64(hello + 8, NBD_MAGIC_OPTS);
        nbd_put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
        rc = nbd_conn_send(c, hello, sizeof(hello));
        if (rc < 0)
                return rc;
        rc = nbd_conn_recv(c, cflags_buf, sizeof(cflags_buf));
        if (rc < 0)
                return rc;
        cflags = nbd_get32(cflags_buf);
        /* Unknown client flags: the protocol says the server MUST close. */
        if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
                return -EPROTO;

        for (int n = 0; n < NBD_MAX_OPTIONS; n++) {
                uint8_t hdr_buf[NBD_OPT_HDR_LEN];
                struct nbd_opt_hdr hdr;
                _cleanup_free_ uint8_t *data = NULL;

                rc = nbd_conn_recv(c, hdr_buf, sizeof(hdr_buf));
                if (rc < 0)
                        return rc;
                rc = nbd_opt_hdr_parse(hdr_buf, sizeof(hdr_buf), &hdr);
                if (rc < 0)
                        return rc; /* bad magic or absurd length: hard disconnect */
                data = malloc(hdr.len_bytes ? hdr.len_bytes : 1);
                if (!data)
                        return -ENOMEM;
                rc = nbd_conn_recv(c, data, hdr.len_bytes);
                if (rc < 0)
                        return rc;

                /* nbd_tls = require: nothing but STARTTLS (or ABORT) in the
                 * clear; EXPORT_NAME cannot carry an error: close. */
                if (nbd_tls_mode(c->srv->lim.tls) == NBD_TLS_REQUIRE && !c->tls &&
                    hdr.option != NBD_OPT_STARTTLS && hdr.option != NBD_OPT_ABORT) {
                        if (hdr.option == NBD_OPT_EXPORT_NAME)
                                return -EACCES;
                        rc = send_opt_error(c, hdr.option, NBD_REP_ERR_TLS_REQD,
                                            "TLS required: start with NBD_OPT_STARTTLS");
                        if (rc < 0)
                                return rc;
                        continue;
                }
                switch (hdr.option) {
                case NBD_OPT_STARTTLS:
                        rc = opt_starttls(c, hdr.len_bytes);
                        break;
                case NBD_OPT_EXPORT_NAME:
                        return opt_export_name(c, data, hdr.len_bytes,
                                               cflags & NBD_FLAG_C_NO_ZEROES);
                case NBD_OPT_ABORT:
                        /* Best effort: the client may already be gone. */
                        (void)send_opt_reply(c, hdr.option, NBD_REP_ACK, NULL, 0);
                        return 0;
                case NBD_OPT_LIST:
                        rc = opt_list(c, hdr.len_bytes);
                        break;
                case NBD_OPT_INFO:
                case NBD_OPT_GO:
                        rc = opt_info_go(c, hdr.option, data, hdr.len_bytes);
                        if (rc == 1)
                                return 1;
                        break;
                case NBD_OPT_STRUCTURED_REPLY:
                        /* Simple replies only: clients fall back to them. */
                        rc = send_opt_error(c, hdr.option, NBD_REP_ERR_UNSUP,
                                            "structured replies not supported");
                        break;
                default:
                        rc = send_opt_error(c, hdr.option, NBD_REP_ERR_UNSUP,
                                            "option not supported");
                        break;
                }
                if (rc < 0)
                        return rc;
        }
        log_warn("nbd %s: %s: more than %d options in the handshake, closing", c->srv->site,
                 c->peer, NBD_MAX_OPTIONS);
        return -EPROTO;
}
