/* NBD over TLS with GnuTLS (tls.h; docs/design/nbd.md "TLS"). */
#include "nbd/tls.h"

#include "common/log.h"
#include "common/util.h"
#include "nbd/internal.h"
#include "volume/attach.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PSK key exchanges added to the defaults: the ECDHE/DHE ones give forward
 * secrecy, plain PSK is what some older clients offer. */
#define PRIORITY "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"

struct nbd_tls {
        enum nbd_tls_mode mode;
        bool verify_peer;
        gnutls_psk_server_credentials_t psk;
        gnutls_certificate_credentials_t x509; /* NULL without a certificate */
        gnutls_priority_t prio;
};

struct nbd_tls_session {
        gnutls_session_t s;
};

/* GnuTLS asks for the key of a PSK identity: the attachment's, or none. */
static int psk_key(gnutls_session_t session, const char *username, gnutls_datum_t *key)
{
        unsigned char k[64];
        /* A node's link identity (multi-site.md), else an attachment's. */
        int n = nbd_link_psk(username, k, sizeof(k));

        if (n == 0)
                n = attach_psk_key(username, k, sizeof(k));

        (void)session;
        if (n <= 0)
                return -1; /* unknown identity: the handshake fails */
        key->data = gnutls_malloc((size_t)n);
        if (!key->data)
                return -1;
        memcpy(key->data, k, (size_t)n);
        key->size = (unsigned)n;
        explicit_bzero(k, sizeof(k));
        return 0;
}

static int gt_err(char *err, size_t errlen, const char *what, const char *file, int rc)
{
        snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
                 gnutls_strerror(rc));
        return -EINVAL;
}

int nbd_tls_create(const struct nbd_tls_cfg *cfg, struct nbd_tls **out, char *err, size_t errlen)
{
        struct nbd_tls *t;
        int rc;

        *out = NULL;
        if (cfg->mode == NBD_TLS_OFF)
                return 0;
        if (!(t = calloc(1, sizeof(*t))))
                return -ENOMEM;
        t->mode = cfg->mode;
        t->verify_peer = cfg->verify_peer;
        if ((rc = gnutls_psk_allocate_server_credentials(&t->psk)) < 0) {
                rc = gt_err(err, errlen, "TLS PSK credentials", NULL, rc);
                goto fail;
        }
        gnutls_psk_set_server_credentials_function(t->psk, psk_key);
        if (cfg->cert && cfg->cert[0]) {
                if ((rc = gnutls_certificate_allocate_credentials(&t->x509)) < 0) {
                        rc = gt_err(err, errlen, "TLS certificate credentials", NULL, rc);
                        goto fail;
                }
                rc = gnutls_certificate_set_x509_key_file(t->x509, cfg->cert, cfg->key,
                                                          GNUTLS_X509_FMT_PEM);
                if (rc < 0) {
                        rc = gt_err(err, errlen, "nbd_tls_cert/nbd_tls_key", cfg->cert, rc);
                        goto fail;
                }
                if (cfg->ca && cfg->ca[0]) {
                        rc = gnutls_certificate_set_x509_trust_file(t->x509, cfg->ca,
                                                                    GNUTLS_X509_FMT_PEM);
                        if (rc <= 0) {
                                rc = gt_err(err, errlen, "nbd_tls_ca (no CA certificate in)",
                                            cfg->ca, rc < 0 ? rc : GNUTLS_E_FILE_ERROR);
                                goto fail;
                        }
                }
        }
        if ((rc = gnutls_priority_init(&t->prio, PRIORITY, NULL)) < 0) {
                rc = gt_err(err, errlen, "TLS priorities", NULL, rc);
                goto fail;
        }
        *out = t;
        return 0;
fail:
        nbd_tls_destroy(t);
        return rc;
}

void nbd_tls_destroy(struct nbd_tls *t)
{
        if (!t)
                return;
        if (t->prio)
                gnutls_priority_deinit(t->prio);
        if (t->x509)
                gnutls_certificate_free_credentials(t->x509);
        if (t->psk)
                gnutls_psk_free_server_credentials(t->psk);
        free(t);
}

enum nbd_tls_mode nbd_tls_mode(const struct nbd_tls *t)
{
        return t ? t->mode : NBD_TLS_OFF;
}

/* A certificate session under verify_peer: the client's chain must verify
 * against the CA. PSK sessions are authenticated by their key. */
static int check_peer(struct nbd_tls *t, gnutls_session_t s, const char **psk_user)
{
        unsigned status = 0;
        unsigned n = 0;

        *psk_user = gnutls_psk_server_get_username(s);
        if (*psk_user && (*psk_user)[0])
                return 0;
        *psk_user = "";
        if (!t->verify_peer)
                return 0;
        if (!gnutls_certificate_get_peers(s, &n) || n == 0)
                return -EACCES;
        if (gnutls_certificate_verify_peers2(s, &status) < 0 || status != 0)
                return -EACCES;
        return 0;
}

int nbd_tls_accept(struct nbd_tls *t, int fd, unsigned timeout_ms, struct nbd_tls_session **out,
                   char *psk_id, size_t idlen)
{
        struct nbd_tls_session *ts = calloc(1, sizeof(*ts));
        const char *user = "";
        int rc;

        *out = NULL;
        if (!ts)
                return -ENOMEM;
        if ((rc = gnutls_init(&ts->s, GNUTLS_SERVER)) < 0) {
                free(ts);
                return -ENOMEM;
        }
        gnutls_priority_set(ts->s, t->prio);
        gnutls_credentials_set(ts->s, GNUTLS_CRD_PSK, t->psk);
        if (t->x509) {
                gnutls_credentials_set(ts->s, GNUTLS_CRD_CERTIFICATE, t->x509);
                gnutls_certificate_server_set_request(ts->s, t->verify_peer ? GNUTLS_CERT_REQUEST
                                                                            : GNUTLS_CERT_IGNORE);
        }
        gnutls_transport_set_int(ts->s, fd);
        gnutls_handshake_set_timeout(ts->s, timeout_ms);
        do {
                rc = gnutls_handshake(ts->s);
        } while (rc < 0 && gnutls_error_is_fatal(rc) == 0 && rc != GNUTLS_E_AGAIN);
        if (rc < 0) {
                log_info("nbd: TLS handshake failed: %s", gnutls_strerror(rc));
                rc = rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_TIMEDOUT ? -ETIMEDOUT : -EPROTO;
        } else if ((rc = check_peer(t, ts->s, &user)) < 0) {
                log_info("nbd: TLS client certificate refused");
        }
        if (rc < 0) {
                gnutls_deinit(ts->s);
                free(ts);
                return rc;
        }
        snprintf(psk_id, idlen, "%s", user);
        *out = ts;
        return 0;
}

void nbd_tls_end(struct nbd_tls_session *s)
{
        if (!s)
                return;
        /* Best effort, never waiting for the peer's answer. */
        (void)gnutls_bye(s->s, GNUTLS_SHUT_WR);
        gnutls_deinit(s->s);
        free(s);
}

int nbd_tls_recv_full(struct nbd_tls_session *s, void *buf, size_t len)
{
        char *p = buf;

        while (len > 0) {
                ssize_t n = gnutls_record_recv(s->s, p, len);
                if (n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n == GNUTLS_E_AGAIN)
                        return -ETIMEDOUT; /* blocking socket: its receive timeout */
                if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION)
                        return -ECONNRESET;
                if (n < 0)
                        return -EPROTO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

ssize_t nbd_tls_send_some(struct nbd_tls_session *s, const void *buf, size_t len)
{
        for (;;) {
                ssize_t n = gnutls_record_send(s->s, buf, len);
                if (n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n == GNUTLS_E_AGAIN)
                        return -EAGAIN;
                return n < 0 ? -EPIPE : n;
        }
}

int nbd_tls_send(struct nbd_tls_session *s, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = gnutls_record_send(s->s, p, len);
                if (n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n == GNUTLS_E_AGAIN)
                        return -ETIMEDOUT; /* the socket's send timeout */
                if (n < 0)
                        return -EPIPE;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}
