/* Attachments: os-initialize_connection / os-terminate_connection
 * (docs/api.md 2.5; docs/design/nbd.md "Attachments").
 *
 * The store holds the records; volume/attach.c holds what the NBD server
 * consults. A new attachment is recorded first and then published (a crash
 * in between leaves a row that start-up publishes); a revoked one is deleted
 * first and then revoked in memory (a crash in between leaves nothing: the
 * row is gone and the memory with the process). */
#include "common/log.h"
#include "common/util.h"
#include "service/internal.h"
#include "volume/attach.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One volume's attachments are bounded: each is memory in every node and a
 * row; a client that forgets to terminate must not grow them forever. */
#define MAX_ATTACHMENTS_PER_VOLUME 64

/* The NBD endpoint of site az: nbd://HOST:PORT/NAME, nbds:// when plain
 * connections are refused (nbd_tls = require). */
static int make_uri(struct service *svc, const char *az, const char *export_name, char *uri,
                    size_t urilen)
{
        const struct site_cfg *s = config_site(svc->cfg, az);

        if (!s)
                return -ENOENT;
        snprintf(uri, urilen, "%s://%s:%d/%s",
                 svc->cfg->nbd_tls == NBD_TLS_CFG_REQUIRE ? "nbds" : "nbd", s->nbd_host,
                 s->nbd_port, export_name);
        return 0;
}

int service_attachments_load(struct service *svc)
{
        struct store_attachment *list = NULL;
        size_t n = 0;
        int rc = store_attachment_list_all(svc->store, &list, &n);

        if (rc < 0) {
                log_error("cannot load the attachments: %s", strerror(-rc));
                return rc;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
                struct store_volume v = {0};

                /* Only volumes of this node's AZs are exported here. */
                if (store_volume_get(svc->store, NULL, list[i].volume_id, &v) == 0 &&
                    config_site(svc->cfg, v.availability_zone))
                        rc = attach_add(list[i].id, list[i].export_name, v.id, v.availability_zone,
                                        list[i].read_only, list[i].psk_key);
                store_volume_clear(&v);
        }
        free(list);
        if (rc == 0)
                log_info("%zu attachment(s) loaded", n);
        return rc;
}

int service_volume_attach(struct service *svc, const char *project, const char *id,
                          const char *connector, bool read_only, struct attach_info *out, char *msg,
                          size_t msglen)
{
        struct store_attachment a = {0}, *list = NULL;
        struct store_volume v = {0};
        unsigned char rnd[20 + 32];
        struct volume *vol;
        size_t n = 0;
        int rc = store_volume_get(svc->store, project, id, &v);

        if (rc == -ENOENT)
                snprintf(msg, msglen, "volume %s does not exist", id);
        if (rc < 0)
                return rc;
        if (strlen(connector) >= sizeof(a.connector)) {
                snprintf(msg, msglen,
                         "os-initialize_connection.connector is too large (at most %zu "
                         "bytes as compact JSON)",
                         sizeof(a.connector) - 1);
                rc = -EINVAL;
                goto out;
        }
        vol = volreg_lookup(v.availability_zone, id);
        if (!vol || volume_killed(vol)) {
                volume_put(vol);
                snprintf(msg, msglen,
                         "volume %s is %s and not exported; wait until it is available", id,
                         v.status);
                rc = -EBUSY;
                goto out;
        }
        out->read_only = read_only || volume_read_only(vol) || v.fenced;
        volume_put(vol);
        if ((rc = store_attachment_list_by_volume(svc->store, id, &list, &n)) < 0)
                goto out;
        free(list);
        if (n >= MAX_ATTACHMENTS_PER_VOLUME) {
                snprintf(msg, msglen,
                         "volume %s has %zu attachments, the most it may have; end unused ones "
                         "with os-terminate_connection first",
                         id, n);
                rc = -EBUSY;
                goto out;
        }
        if ((rc = util_random(rnd, sizeof(rnd))) < 0)
                goto out;
        util_uuid_v4(a.id);
        snprintf(a.volume_id, sizeof(a.volume_id), "%s", id);
        snprintf(a.project_id, sizeof(a.project_id), "%s", v.project_id);
        util_hex(rnd, 20, a.export_name);
        util_hex(rnd + 20, 32, a.psk_key);
        snprintf(a.connector, sizeof(a.connector), "%s", connector);
        a.read_only = read_only;
        a.created_at = util_now_usec();
        if ((rc = store_attachment_insert(svc->store, &a)) < 0) {
                snprintf(msg, msglen, "cannot record the attachment");
                goto out;
        }
        if ((rc = attach_add(a.id, a.export_name, id, v.availability_zone, read_only, a.psk_key)) <
            0) {
                store_attachment_delete(svc->store, a.id); /* best effort: start-up retries */
                snprintf(msg, msglen, "cannot publish the attachment");
                goto out;
        }
        snprintf(out->id, sizeof(out->id), "%s", a.id);
        snprintf(out->export_name, sizeof(out->export_name), "%s", a.export_name);
        out->tls_psk_identity[0] = out->tls_psk_key[0] = '\0';
        if (svc->cfg->nbd_tls != NBD_TLS_CFG_OFF) {
                snprintf(out->tls_psk_identity, sizeof(out->tls_psk_identity), "%s", a.id);
                snprintf(out->tls_psk_key, sizeof(out->tls_psk_key), "%s", a.psk_key);
        }
        rc = make_uri(svc, v.availability_zone, a.export_name, out->uri, sizeof(out->uri));
        log_info("volume %s: attachment %s created%s", id, a.id, read_only ? " (read-only)" : "");
out:
        store_volume_clear(&v);
        return rc;
}

int service_volume_detach(struct service *svc, const char *project, const char *id,
                          const char *connector, char *msg, size_t msglen)
{
        struct store_attachment *list = NULL;
        struct store_volume v = {0};
        size_t n = 0, revoked = 0;
        int rc = store_volume_get(svc->store, project, id, &v);

        store_volume_clear(&v);
        if (rc == -ENOENT)
                snprintf(msg, msglen, "volume %s does not exist", id);
        if (rc < 0)
                return rc;
        if ((rc = store_attachment_list_by_volume(svc->store, id, &list, &n)) < 0)
                return rc;
        for (size_t i = 0; i < n; i++) {
                /* An empty connector ends every attachment of the volume. */
                if (connector && strcmp(connector, "{}") != 0 &&
                    strcmp(connector, list[i].connector) != 0)
                        continue;
                rc = store_attachment_delete(svc->store, list[i].id);
                if (rc < 0 && rc != -ENOENT) {
                        snprintf(msg, msglen, "cannot remove attachment %s", list[i].id);
                        break;
                }
                rc = 0;
                attach_revoke(list[i].id); /* A2: its connections end now */
                revoked++;
        }
        free(list);
        if (rc == 0)
                log_info("volume %s: %zu attachment(s) revoked", id, revoked);
        return rc;
}
