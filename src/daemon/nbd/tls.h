/* NBD over TLS with GnuTLS: server credentials (PSK per attachment, X.509
 * optionally) and the TLS session of one connection
 * (docs/design/nbd.md "TLS").
 *
 * Ownership: nbd_tls_create returns credentials shared read-only by every
 * connection of every listener (GnuTLS allows that); the caller destroys
 * them after the listeners have stopped. A session belongs to its
 * connection: one receiving and one sending thread may use it at once. */
#ifndef EVSREP_NBD_TLS_H
#define EVSREP_NBD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum nbd_tls_mode { NBD_TLS_OFF, NBD_TLS_ON, NBD_TLS_REQUIRE };

struct nbd_tls_cfg {
        enum nbd_tls_mode mode;
        const char *cert, *key, *ca; /* X.509 PEM files, or NULL/"" */
        bool verify_peer;            /* require a client certificate signed by ca */
};

struct nbd_tls;
struct nbd_tls_session;

/* NULL *out when mode is OFF. err says what is wrong with a file. */
int nbd_tls_create(const struct nbd_tls_cfg *cfg, struct nbd_tls **out, char *err, size_t errlen);
void nbd_tls_destroy(struct nbd_tls *t);
/* OFF for NULL. */
enum nbd_tls_mode nbd_tls_mode(const struct nbd_tls *t);

/* Server side of the TLS handshake on fd (after the STARTTLS ack), within
 * timeout_ms. On success *out is the session and psk_id the attachment id
 * the client authenticated with ("" for a certificate session). */
int nbd_tls_accept(struct nbd_tls *t, int fd, unsigned timeout_ms, struct nbd_tls_session **out,
                   char *psk_id, size_t idlen);
/* Best-effort close_notify, then free. */
void nbd_tls_end(struct nbd_tls_session *s);
/* Read exactly len bytes: 0, -ECONNRESET on EOF, -ETIMEDOUT when the
 * socket's receive timeout expired, -EPROTO on a TLS error. */
int nbd_tls_recv_full(struct nbd_tls_session *s, void *buf, size_t len);
/* Send all of buf: 0, -ETIMEDOUT (the socket's send timeout), or -EPIPE. */
int nbd_tls_send(struct nbd_tls_session *s, const void *buf, size_t len);
/* One record send: the bytes taken (> 0), -EAGAIN when the socket's send
 * timeout expired (call again with the same buf and len), or -EPIPE. */
ssize_t nbd_tls_send_some(struct nbd_tls_session *s, const void *buf, size_t len);

#endif
