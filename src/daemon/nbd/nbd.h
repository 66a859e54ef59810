/* NBD server: one listener per site (AZ), fixed newstyle handshake, export
 * name = volume id, served from the volume registry (volume/volume.h). */
#ifndef EVSREP_NBD_H
#define EVSREP_NBD_H

struct nbd_server;

/* Listen on host:port for site's volumes. threads_per_conn worker threads
 * serve each connection (several requests in flight, replies out of order).
 * Returns 0 or -errno (e.g. -EADDRINUSE). */
int nbd_server_start(const char *site, const char *host, int port, int threads_per_conn,
                     struct nbd_server **out);
/* The TCP port actually bound (useful when port 0 was asked for). */
int nbd_server_port(const struct nbd_server *srv);
/* Stop accepting, close every connection, join all threads, free. */
void nbd_server_stop(struct nbd_server *srv);

#endif
