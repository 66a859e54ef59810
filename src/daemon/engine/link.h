/* The DR write path of a mirror. The mirror only ever talks to its DR disk
 * through these ops, so a link to a DR volume in another evsrepd (NBD via
 * libnbd) can replace the local one without touching mirror.c.
 *
 * All ops return 0 or -errno and may be called from several threads at
 * once (on disjoint ranges; the mirror's range locks guarantee that). */
#ifndef EVSREP_ENGINE_LINK_H
#define EVSREP_ENGINE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct link;
struct volume;

/* One DR write started by submit and finished by wait. The fields are the
 * link's; the caller only provides the storage (on its stack). */
struct link_op {
        void *priv;
        const void *buf;
        size_t len;
        uint64_t off;
        unsigned flags;
};

struct link_ops {
        int (*write)(struct link *l, const void *buf, size_t len, uint64_t off, unsigned flags);
        /* punch: deallocation allowed; reads back as zeroes either way. */
        int (*zero)(struct link *l, uint64_t off, uint64_t len, bool punch, unsigned flags);
        int (*flush)(struct link *l);
        int (*resize)(struct link *l, uint64_t size_bytes);
        uint64_t (*size)(struct link *l);
        void (*close)(struct link *l);
        /* Replace a broken connection with a new one (remote links; NULL
         * for a local link). 0 or -errno; the link stays broken on error. */
        int (*reconnect)(struct link *l);
        /* A write in two halves, so the mirror can run its production leg
         * while this one is in flight (NULL for links that cannot: the
         * caller uses write). submit returns 0 when the write was started:
         * the caller must then call wait(op) exactly once, from the same
         * thread, and keep buf unchanged until wait returns; wait returns
         * what write would have. submit returns -errno when nothing was
         * started (no wait then). Between the two the caller calls no
         * other op of this link (a reconnect may be waiting for the op). */
        int (*submit)(struct link *l, const void *buf, size_t len, uint64_t off, unsigned flags,
                      struct link_op *op);
        int (*wait)(struct link *l, struct link_op *op);
        /* Read [off, off+len) of the DR disk (online verify; the
         * copy-on-write sidecar, sidecar.h). NULL: the link cannot read;
         * a verify reports -EOPNOTSUPP. */
        int (*read)(struct link *l, void *buf, size_t len, uint64_t off);
        /* Copy [off, off+len) of the production volume src to the same
         * place on DR without a user-space buffer (the resync; NULL: the
         * link cannot, read and write). As volume_local_copy: -EOPNOTSUPP
         * means nothing was done; another -errno sets *side. */
        int (*copy_from)(struct link *l, struct volume *src, uint64_t off, size_t len, int *side);
        /* The first data extent of the DR disk at or after off: *data_off,
         * *data_len (SEEK_DATA / SEEK_HOLE), -ENXIO when there is none, or
         * -errno. NULL (remote links): unknown, every byte may be data. The
         * sidecar reads only data (replication.md, sidecars: on-disk). */
        int (*next_data)(struct link *l, uint64_t off, uint64_t *data_off, uint64_t *data_len);
};

struct link {
        const struct link_ops *ops;
};

struct volume;
/* Is l a local link (link_local_open)? A local DR disk's sidecar is kept by
 * the mirror; a remote one's by the DR node (replication.md, sidecars:
 * remote links). */
bool link_is_local(const struct link *l);
/* A link to a DR volume in this process (takes a reference on dr). */
int link_local_open(struct volume *dr, struct link **out);

/* A link to a DR volume exported by another evsrepd (or any NBD server),
 * through libnbd: many commands in flight on one connection, each caller
 * blocked until its own command completes or timeout_ms passes.
 * docs/design/replication.md, "Remote links". */
struct link_nbd_cfg {
        /* Either uri ("nbd://host:port/export"; TLS settings below still
         * apply) or host + port + export_name. */
        const char *uri;
        const char *host;
        const char *port;
        const char *export_name;
        /* TLS-PSK (required when set): identity and key in hex, as in a
         * psktool file. NULL identity: plain NBD. */
        const char *psk_identity;
        const char *psk_key_hex;
        /* link_timeout: a command with no reply within it fails -ETIMEDOUT
         * and breaks the link. 0: 30 s. */
        unsigned timeout_ms;
        /* Connect + handshake (TLS included). 0: 10 s. */
        unsigned connect_timeout_ms;
        /* Non-zero: when the first connect fails, open anyway, broken
         * (ops fail fast with the connect error), with this size, so a
         * mirror can start tracking while its DR node is down and connect
         * later (link_nbd_reconnect). 0: a failed connect fails the open. */
        uint64_t down_size_bytes;
};

/* Connect. On success *out is a link whose size() is the export's size.
 * Once a command fails with a connection error or times out, the link is
 * broken: every waiting and later op fails fast with -ENOTCONN or
 * -ETIMEDOUT until link_nbd_reconnect (= ops->reconnect) succeeds. */
int link_nbd_open(const struct link_nbd_cfg *cfg, struct link **out);
int link_nbd_reconnect(struct link *l);
/* Point the next reconnect at host:port (the peer moved). 0 or -ENOMEM. */
int link_nbd_retarget(struct link *l, const char *host, const char *port);
/* 0 when healthy, else the error that broke it. */
int link_nbd_broken(struct link *l);
/* Most NBD requests this link ever had in flight at once (tests, metrics). */
unsigned link_nbd_max_inflight(struct link *l);
/* Poll rounds run by waiting callers (leaders), and hand-overs of the
 * socket from a leaving leader to a follower (bench, tests). */
void link_nbd_counters(struct link *l, uint64_t *led_rounds, uint64_t *handovers);
/* The socket's TCP_CORK (1: on, 0: off, -errno): off whenever no caller is
 * sending (tests). */
int link_nbd_corked(struct link *l);

#endif
