/* NBD over TLS with GnuTLS (tls.h; docs/design/nbd.md "TLS"). */
#include "nbd/tls.h"

#include "common/log.h"
#include "common/util.h"
#include "nbd/internal.h"
#include "volume/attach.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* PSK key exchanges added to the defaults: the ECDHE/DHE ones give forward
 * secrecy, plain PSK is what some older clients offer. The server's order
 * decides (%SERVER_PRECEDENCE): a TLS 1.3 PSK is bound to SHA-256, which
 * rules out NORMAL's first suite (AES-256-GCM-SHA384), and a client's next
 * choice is CHACHA20-POLY1305: 12x slower than AES-128-GCM on a CPU with
 * AES instructions (0.35 vs 4.5 GB/s here), and what capped an NBD session
 * at ~70 MB/s. PRIORITY_AES moves ChaCha20 behind the AES suites; it is
 * used when the probe below finds AES-128-GCM faster on this CPU. */
#define PRIORITY     "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK:%SERVER_PRECEDENCE"
#define PRIORITY_AES PRIORITY ":-CHACHA20-POLY1305:+CHACHA20-POLY1305"
#define PROBE_BYTES  (64u * 1024)
#define PROBE_ROUNDS 8

struct nbd_tls {
        enum nbd_tls_mode mode;
        bool verify_peer;
        gnutls_psk_server_credentials_t psk;
        gnutls_certificate_credentials_t x509; /* NULL without a certificate */
        gnutls_priority_t prio;
};

/* Bytes read from the socket ahead of GnuTLS (buffered_pull). */
#define PULL_BUF_BYTES (64u * 1024)

struct nbd_tls_session {
        gnutls_session_t s;
        int fd;
        /* Read-ahead for the transmission phase: rd_lock holders only. */
        size_t pull_off, pull_len;
        unsigned char *pull_buf;
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

static int64_t mono_nsec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Nanoseconds to seal PROBE_BYTES PROBE_ROUNDS times with cipher, or
 * INT64_MAX when it is not available. */
static int64_t probe_aead_ns(gnutls_cipher_algorithm_t alg, void *buf)
{
        unsigned char key[32] = {0}, nonce[12] = {0};
        gnutls_datum_t k = {key, (unsigned)gnutls_cipher_get_key_size(alg)};
        gnutls_aead_cipher_hd_t h;
        int64_t t0, best = INT64_MAX;

        if (gnutls_aead_cipher_init(&h, alg, &k) < 0)
                return INT64_MAX;
        for (int i = 0; i < PROBE_ROUNDS; i++) {
                size_t out = PROBE_BYTES + 64;

                nonce[0] = (unsigned char)i;
                t0 = mono_nsec();
                if (gnutls_aead_cipher_encrypt(h, nonce, sizeof(nonce), NULL, 0, 16, buf,
                                               PROBE_BYTES, (char *)buf + PROBE_BYTES, &out) < 0) {
                        best = INT64_MAX;
                        break;
                }
                best = MIN(best, mono_nsec() - t0);
        }
        gnutls_aead_cipher_deinit(h);
        return best;
}

/* Which priority string: AES-GCM first when this CPU seals faster with it
 * than with ChaCha20 (AES instructions), else GnuTLS's own order (which
 * puts ChaCha20 first on CPUs without them). About a millisecond, once. */
static const char *priority_pick(void)
{
        void *buf = calloc(1, 2 * PROBE_BYTES + 64);
        int64_t aes, chacha;

        if (!buf)
                return PRIORITY;
        aes = probe_aead_ns(GNUTLS_CIPHER_AES_128_GCM, buf);
        chacha = probe_aead_ns(GNUTLS_CIPHER_CHACHA20_POLY1305, buf);
        free(buf);
        log_info("nbd: TLS cipher probe: AES-128-GCM %lld ns, CHACHA20-POLY1305 %lld ns per "
                 "%u KiB: %s first",
                 aes == INT64_MAX ? -1LL : (long long)aes,
                 chacha == INT64_MAX ? -1LL : (long long)chacha, PROBE_BYTES / 1024,
                 aes <= chacha ? "AES-GCM" : "GnuTLS's order");
        return aes <= chacha ? PRIORITY_AES : PRIORITY;
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
        if ((rc = gnutls_priority_init(&t->prio, priority_pick(), NULL)) < 0) {
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

/* GnuTLS's own pull reads exactly what it needs next: a record's 5-byte
 * header, then its body, so two recv calls per record, and a 4 KiB NBD
 * WRITE is two records (header, payload). This one reads whatever the
 * socket holds, up to 64 KiB, and hands it out from there: under load one
 * recv brings several requests. Same errors as recv (EAGAIN on the
 * socket's receive timeout, EINTR), reported through the session. */
static ssize_t buffered_pull(gnutls_transport_ptr_t ptr, void *data, size_t size)
{
        struct nbd_tls_session *ts = ptr;
        size_t n;

        if (ts->pull_off == ts->pull_len) {
                ssize_t got = recv(ts->fd, ts->pull_buf, PULL_BUF_BYTES, 0);

                if (got < 0) {
                        gnutls_transport_set_errno(ts->s, errno);
                        return -1;
                }
                if (got == 0)
                        return 0;
                ts->pull_off = 0;
                ts->pull_len = (size_t)got;
        }
        n = MIN(size, ts->pull_len - ts->pull_off);
        memcpy(data, ts->pull_buf + ts->pull_off, n);
        ts->pull_off += n;
        return (ssize_t)n;
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
        {
                char *desc = gnutls_session_get_desc(ts->s);

                log_info("nbd: TLS session %s", desc ? desc : "?");
                gnutls_free(desc);
        }
        /* From now on the read-ahead (the handshake kept GnuTLS's pull,
         * which its timeout needs); sends stay on the socket itself. */
        if ((ts->pull_buf = malloc(PULL_BUF_BYTES))) {
                ts->fd = fd;
                gnutls_transport_set_ptr2(ts->s, ts, (gnutls_transport_ptr_t)(intptr_t)fd);
                gnutls_transport_set_pull_function(ts->s, buffered_pull);
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
        free(s->pull_buf);
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
