/* Nodes of a multi-site cluster (docs/design/multi-site.md): this node's row
 * in the store's nodes table and its lease (node.c), the cluster key, and
 * the internal channel that forwards a request to the node serving the AZ
 * it belongs to (forward.c).
 *
 * One cluster state per process, set up by cluster_node_start (main.c,
 * after the store opens and before the service starts) and torn down by
 * cluster_node_stop. Every function returns 0 or a negative errno. An
 * all-in-one node (every AZ, SQLite) registers too; nothing is ever
 * forwarded from it because it serves every AZ it knows. */
#ifndef EVSREP_CLUSTER_H
#define EVSREP_CLUSTER_H

#include "config/config.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLUSTER_KEY_BYTES 32

/* Read the cluster key file (64 hex digits, mode 0600 or stricter); create
 * it with fresh random bytes when it does not exist (*created = true). */
int cluster_key_load(const char *path, uint8_t key[CLUSTER_KEY_BYTES], bool *created, char *err,
                     size_t errlen);

/* Load the key, refuse to start when another node holds a valid lease on one
 * of this node's AZs (err says which node, which AZ, and for how long), then
 * register this node and start the lease thread (renewal every lease_ms / 4).
 * cfg and st must outlive cluster_node_stop. */
int cluster_node_start(const struct evsrep_config *cfg, struct store *st, char *err, size_t errlen);
/* Once the listeners are up (port 0 resolved): record this node's real
 * internal URL (when derived from listen) and NBD endpoints in its row. */
int cluster_node_publish(const struct evsrep_config *cfg, int http_port);
/* Stop the lease thread and release the lease (lease_until = 0), so that a
 * failover elsewhere need not wait for it to lapse. */
void cluster_node_stop(void);
/* Shutdown has begun (call before the NBD listeners stop): a self-fence,
 * now or later, fails the writes waiting on it instead of holding them. */
void cluster_node_quiesce(void);

/* This node's name ("" before start). */
const char *cluster_node_name(void);
/* Is this node self-fenced now (cut off from the store, its roles not yet
 * taken)? If so, *lease_left_sec: how long its lease may still be valid on
 * the store (from the last renewal it sent; at least 0) and azs its AZs,
 * comma-separated. */
bool cluster_node_self_fenced_now(double *lease_left_sec, char *azs, size_t cap);
/* Does this node serve az? (Before start: the config's AZs.) */
bool cluster_az_local(const char *az);
/* The node serving az other than this one: 0 with *out filled and a valid
 * lease; -EHOSTDOWN with *out filled when its lease lapsed (*remaining_sec
 * negative); -ENOENT when no node names az; -EAGAIN when the store is
 * unreachable. */
int cluster_az_owner(const char *az, struct store_node *out, double *remaining_sec);
/* Prometheus series of this node (evsrep_node_lease_remaining_seconds). */
void cluster_metrics_render(FILE *f);

/* ---- internal channel (forward.c) ---- */

/* The answer of a forwarded request, relayed unchanged. */
struct cluster_reply {
        long status;
        char *body; /* malloc'd, NUL-terminated */
        size_t len;
        char content_type[128];
        char retry_after[32]; /* "" when absent */
};
void cluster_reply_free(struct cluster_reply *r);

/* Send method path (body) to node as the authenticated project with the
 * given role; 0 with *out filled (any HTTP status), -EHOSTUNREACH when the
 * node cannot be reached or does not answer in time (msg says why). */
int cluster_forward_send(const struct store_node *node, const char *method, const char *path,
                         const char *project, bool is_operator, const char *body, size_t len,
                         struct cluster_reply *out, char *msg, size_t msglen);
/* The same with a total time of total_ms (connect: at most 2 s) instead of
 * 120 s: for reads answered from memory (GETs, the node list's links). */
int cluster_forward_send_ms(const struct store_node *node, const char *method, const char *path,
                            const char *project, bool is_operator, const char *body, size_t len,
                            long total_ms, struct cluster_reply *out, char *msg, size_t msglen);

/* The signed headers of an internal request, as received. */
struct cluster_auth_hdrs {
        const char *node, *timestamp, *nonce, *project, *role, *signature;
};
/* Check an internal request: every header present, timestamp within 30 s of
 * this node's clock, nonce not seen in the last 30 s (then remembered), and
 * the HMAC-SHA256 over method, path, timestamp, nonce, body hash, project,
 * role and sender right. 0, or -EACCES with msg saying why (for the log; the
 * client only gets a 404). */
int cluster_forward_verify(const char *method, const char *path, const char *body, size_t len,
                           const struct cluster_auth_hdrs *h, char *msg, size_t msglen);
/* Test hook: the signature a node would send (hex, 65 bytes). */
int cluster_forward_sign(const char *method, const char *path, const char *timestamp,
                         const char *nonce, const char *body, size_t len, const char *project,
                         const char *role, const char *sender, char out[65]);

/* Used by node.c to hand the key to forward.c. */
void cluster_forward_set_key(const uint8_t key[CLUSTER_KEY_BYTES], const char *self);
/* A copy of the cluster key (-ENOENT before cluster_node_start). */
int cluster_key_copy(uint8_t key[CLUSTER_KEY_BYTES]);

/* ---- mirror links between nodes (link.c; multi-site.md "Remote DR links") ---- */

#define CLUSTER_LINK_PSK_BYTES 32
/* The TLS-PSK key of node's link identity "evsrep-link:<node>":
 * HMAC-SHA256(cluster key, "nbd-link:" + node). Pure (tests). */
int cluster_link_psk_derive(const uint8_t key[CLUSTER_KEY_BYTES], const char *node,
                            uint8_t out[CLUSTER_LINK_PSK_BYTES]);
/* The same with this process's cluster key, into key (at most cap bytes):
 * its length, or -errno (no key yet, cap too small). */
int cluster_link_psk(const char *node, unsigned char *key, size_t cap);
/* Split an NBD endpoint "host:port" or "[v6]:port" of the nodes table:
 * 0, or -EINVAL. Pure (tests). */
int cluster_endpoint_split(const char *hp, char *host, size_t hostcap, char *port, size_t portcap);
/* Where the link of a DR volume in az goes: the node serving az (another
 * node, with a valid lease) and its NBD endpoint for az. 0, -ENOENT (no
 * node serves az, or its row has no endpoint for az), -EHOSTDOWN (its
 * lease lapsed), -EAGAIN (store unreachable). */
int cluster_link_peer(const char *az, char *node, size_t nodecap, char *host, size_t hostcap,
                      char *port, size_t portcap);
/* Is az served by node, by the nodes table (a valid lease)? */
bool cluster_az_served_by(const char *az, const char *node);

#endif
