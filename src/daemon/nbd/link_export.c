/* Mirror link exports on the DR node (docs/design/multi-site.md "Remote DR
 * links"): "link/<pair id>", opened only on a TLS session whose PSK identity
 * is "evsrep-link:<node name>", and only when the service (through the hooks
 * it set) says the pair's DR volume is on this listener's AZ and node is the
 * one serving its production AZ. The export is an attachment marked link
 * (volume/attach.h), so revoking the volume's attachments cuts it too; its
 * requests write the DR file directly (conn.c), while every client
 * attachment of the DR volume stays read-only (nbd.md invariant A3). Every
 * link write passes the service's preserve hook first (the pair's copy-on-
 * write sidecar on this node, replication.md "Remote links"). */
#include "common/log.h"
#include "nbd/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* hooks; link attachment adds */
static struct nbd_link_hooks g_hooks;

void nbd_link_hooks_set(const struct nbd_link_hooks *h)
{
        pthread_mutex_lock(&g_mu);
        if (h)
                g_hooks = *h;
        else
                memset(&g_hooks, 0, sizeof(g_hooks));
        pthread_mutex_unlock(&g_mu);
}

static struct nbd_link_hooks hooks_get(void)
{
        struct nbd_link_hooks h;

        pthread_mutex_lock(&g_mu);
        h = g_hooks;
        pthread_mutex_unlock(&g_mu);
        return h;
}

int nbd_link_psk(const char *identity, unsigned char *key, size_t cap)
{
        struct nbd_link_hooks h = hooks_get();
        char node[NBD_LINK_NODE_LEN];
        int rc = nbd_link_identity_parse(identity, node);

        if (rc <= 0)
                return rc < 0 ? -ENOENT : 0;
        if (!h.psk)
                return -ENOENT; /* no cluster key: no link is accepted */
        rc = h.psk(node, key, cap);
        return rc > 0 ? rc : -ENOENT;
}

struct volume *nbd_link_lookup(struct nbd_conn *c, const char *pair_id, const char *node,
                               struct attachment **att)
{
        struct nbd_link_hooks h = hooks_get();
        char vid[64], id[64], why[256] = "";
        struct volume *v;
        int rc;

        *att = NULL;
        if (!h.resolve) {
                log_info("nbd %s: %s: link export for pair %s refused: this node takes no links",
                         c->srv->site, c->peer, pair_id);
                return NULL;
        }
        rc = h.resolve(c->srv->site, pair_id, node, vid, sizeof(vid), why, sizeof(why));
        if (rc < 0) {
                log_info("nbd %s: %s: link export for pair %s refused to node %s: %s", c->srv->site,
                         c->peer, pair_id, node, why[0] ? why : strerror(-rc));
                return NULL;
        }
        v = volreg_lookup(c->srv->site, vid);
        if (!v || volume_killed(v)) {
                log_info("nbd %s: %s: link export for pair %s: DR volume %s is not exported",
                         c->srv->site, c->peer, pair_id, vid);
                volume_put(v);
                return NULL;
        }
        snprintf(id, sizeof(id), "%s%s", NBD_LINK_EXPORT_PREFIX, pair_id);
        pthread_mutex_lock(&g_mu);
        *att = attach_lookup(c->srv->site, id);
        if (*att && (!attach_is_link(*att) || strcmp(attach_volume_id(*att), vid) != 0)) {
                attach_put(*att);
                attach_revoke(id); /* a stale one (another volume): replace it */
                *att = NULL;
        }
        if (!*att && attach_add_link(id, vid, c->srv->site) == 0)
                *att = attach_lookup(c->srv->site, id);
        pthread_mutex_unlock(&g_mu);
        if (!*att) {
                volume_put(v);
                return NULL;
        }
        log_info("nbd %s: %s: link export for pair %s (DR volume %s) opened by node %s",
                 c->srv->site, c->peer, pair_id, vid, node);
        return v;
}

void nbd_link_closed(struct nbd_conn *c)
{
        struct nbd_link_hooks h = hooks_get();
        const char *id = attach_id(c->att);

        if (h.closed && strncmp(id, NBD_LINK_EXPORT_PREFIX, strlen(NBD_LINK_EXPORT_PREFIX)) == 0)
                h.closed(c->srv->site, id + strlen(NBD_LINK_EXPORT_PREFIX),
                         attach_volume_id(c->att));
}

/* A link request: the DR file itself, no gate, no read-only check (the
 * DR volume is read-only for clients; its link is its only writer). */
int nbd_link_request(struct volume *v, const struct nbd_request *req, void *buf, unsigned vflags)
{
        if (req->type == NBD_CMD_WRITE || req->type == NBD_CMD_TRIM ||
            req->type == NBD_CMD_WRITE_ZEROES) {
                /* S1 on the DR node: the sidecar first, then the DR file. */
                struct nbd_link_hooks h = hooks_get();
                int rc;

                if (h.preserve && req->len_bytes &&
                    (rc = h.preserve(v, req->off_bytes, req->len_bytes)) < 0)
                        return -EIO;
        }
        switch (req->type) {
        case NBD_CMD_READ:
                return volume_local_read(v, buf, req->len_bytes, req->off_bytes);
        case NBD_CMD_WRITE:
                return volume_local_write(v, buf, req->len_bytes, req->off_bytes, vflags);
        case NBD_CMD_FLUSH:
                /* Durable on the DR node before the reply (fdatasync). */
                return volume_local_flush(v);
        case NBD_CMD_TRIM:
                return volume_local_zero(v, req->off_bytes, req->len_bytes, true, vflags);
        case NBD_CMD_WRITE_ZEROES:
                return volume_local_zero(v, req->off_bytes, req->len_bytes,
                                         !(req->flags & NBD_CMD_FLAG_NO_HOLE), vflags);
        default:
                return -EINVAL;
        }
}
