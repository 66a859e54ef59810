/* NBD server: one listener per site (AZ), fixed newstyle handshake with
 * STARTTLS, exports reached through attachments (volume/attach.h) and
 * served from the volume registry (volume/volume.h). */
#ifndef EVSREP_NBD_H
#define EVSREP_NBD_H

#include <stddef.h>
#include <stdint.h>

struct nbd_server;
struct nbd_tls;
struct volume;

/* Denial-of-service bounds of one listener (docs/design/nbd.md, "Bounds").
 * Every timeout is in seconds; 0 turns that timeout off. */
struct nbd_limits {
        /* Payload bytes (WRITE data, READ reply buffers, pooled buffers) one
         * connection may hold; a request that does not fit waits before it
         * is read or allocated. One request is always admitted alone, so a
         * request bigger than the budget is served, just not concurrently. */
        uint64_t conn_budget_bytes;
        /* The same across all connections of the listener. */
        uint64_t total_budget_bytes;
        int handshake_timeout_sec; /* whole handshake, from accept */
        int idle_timeout_sec;      /* no request in flight and none read */
        int send_timeout_sec;      /* the client acknowledges no reply byte */
        int max_conns;             /* per listener */
        int max_conns_per_addr;    /* per client IP address */
        /* TLS credentials and mode (nbd/tls.h; docs/design/nbd.md "TLS"),
         * shared by the listeners and outliving them; NULL: no TLS. */
        struct nbd_tls *tls;
};

/* Mirror link exports (docs/design/multi-site.md "Remote DR links"): what
 * the service tells the NBD server. Set once before the listeners start
 * (NULL: no link is accepted).
 *   psk      the TLS-PSK key of node's link identity into key (at most cap
 *            bytes): its length, or -errno (unknown: the handshake fails)
 *   resolve  may node open the link export of pair_id on site? 0 with the
 *            DR volume's id in volume_id, or -errno with a sentence in why
 *   closed   a link connection of pair_id (DR volume volume_id) ended
 *   preserve before a link request writes [off, off+len) of the DR volume
 *            v: 0, or -errno to fail the request unwritten (the copy-on-
 *            write sidecar on the DR node, replication.md "Remote links") */
struct nbd_link_hooks {
        int (*psk)(const char *node, unsigned char *key, size_t cap);
        int (*resolve)(const char *site, const char *pair_id, const char *node, char *volume_id,
                       size_t idcap, char *why, size_t whylen);
        void (*closed)(const char *site, const char *pair_id, const char *volume_id);
        int (*preserve)(struct volume *v, uint64_t off, uint64_t len);
};
void nbd_link_hooks_set(const struct nbd_link_hooks *h);

/* The defaults: 64 MiB per connection, 512 MiB in total, handshake 30 s,
 * idle off, send 60 s, 1024 connections, 128 per address. */
void nbd_limits_default(struct nbd_limits *lim);

/* Listen on host:port for site's volumes. threads_per_conn worker threads
 * serve each connection (several requests in flight, replies out of order).
 * Returns 0 or -errno (e.g. -EADDRINUSE). */
int nbd_server_start(const char *site, const char *host, int port, int threads_per_conn,
                     struct nbd_server **out);
/* nbd_server_start with explicit limits (lim is copied). */
int nbd_server_start_with(const char *site, const char *host, int port, int threads_per_conn,
                          const struct nbd_limits *lim, struct nbd_server **out);
/* The TCP port actually bound (useful when port 0 was asked for). */
int nbd_server_port(const struct nbd_server *srv);
/* Stop accepting, close every connection, join all threads, free. */
void nbd_server_stop(struct nbd_server *srv);

#endif
