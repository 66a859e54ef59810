/* Mirror links between nodes: the link's TLS-PSK key and where a link goes
 * (docs/design/multi-site.md "Remote DR links").
 *
 * A node's link identity is "evsrep-link:<node name>" and its key
 * HMAC-SHA256(cluster key, "nbd-link:" + node name): every node can derive
 * the key of every peer from the cluster key, so the DR node checks a link
 * without any per-pair secret, and a client (which has no cluster key)
 * cannot present a link identity. Which pair a node may link to is the DR
 * node's decision (service/links.c), made from the store. */
#include "cluster/cluster.h"

#include "common/util.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_PSK_LABEL "nbd-link:"

int cluster_link_psk_derive(const uint8_t key[CLUSTER_KEY_BYTES], const char *node,
                            uint8_t out[CLUSTER_LINK_PSK_BYTES])
{
        char text[STORE_NODE_NAME_LEN + sizeof(LINK_PSK_LABEL)];
        int n;

        if (!node || !node[0])
                return -EINVAL;
        n = snprintf(text, sizeof(text), "%s%s", LINK_PSK_LABEL, node);
        if (n < 0 || (size_t)n >= sizeof(text))
                return -EINVAL;
        if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, CLUSTER_KEY_BYTES, text, (size_t)n, out) < 0)
                return -EIO;
        return 0;
}

int cluster_link_psk(const char *node, unsigned char *key, size_t cap)
{
        uint8_t ck[CLUSTER_KEY_BYTES], out[CLUSTER_LINK_PSK_BYTES];
        int rc;

        if (cap < sizeof(out))
                return -ENOSPC;
        if ((rc = cluster_key_copy(ck)) < 0)
                return rc;
        rc = cluster_link_psk_derive(ck, node, out);
        explicit_bzero(ck, sizeof(ck));
        if (rc < 0)
                return rc;
        memcpy(key, out, sizeof(out));
        explicit_bzero(out, sizeof(out));
        return (int)sizeof(out);
}

int cluster_endpoint_split(const char *hp, char *host, size_t hostcap, char *port, size_t portcap)
{
        const char *colon, *h = hp;
        size_t hl;

        if (!hp || !hp[0])
                return -EINVAL;
        if (hp[0] == '[') {
                const char *rb = strchr(hp, ']');

                if (!rb || rb[1] != ':')
                        return -EINVAL;
                h = hp + 1;
                hl = (size_t)(rb - h);
                colon = rb + 1;
        } else {
                colon = strrchr(hp, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t)(colon - hp);
        }
        if (hl == 0 || hl >= hostcap || strlen(colon + 1) == 0 || strlen(colon + 1) >= portcap)
                return -EINVAL;
        for (const char *p = colon + 1; *p; p++)
                if (*p < '0' || *p > '9')
                        return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = '\0';
        snprintf(port, portcap, "%s", colon + 1);
        return 0;
}

int cluster_link_peer(const char *az, char *node, size_t nodecap, char *host, size_t hostcap,
                      char *port, size_t portcap)
{
        struct store_node owner;
        json_t *j, *ep;
        int rc = cluster_az_owner(az, &owner, NULL);

        if (rc < 0)
                return rc;
        if (!(j = json_loads(owner.nbd_json, 0, NULL)))
                return -ENOENT;
        ep = json_object_get(j, az);
        rc = json_is_string(ep)
                 ? cluster_endpoint_split(json_string_value(ep), host, hostcap, port, portcap)
                 : -ENOENT;
        json_decref(j);
        if (rc == 0)
                snprintf(node, nodecap, "%s", owner.name);
        return rc < 0 ? -ENOENT : 0;
}

bool cluster_az_served_by(const char *az, const char *node)
{
        struct store_node owner;

        return cluster_az_owner(az, &owner, NULL) == 0 && strcmp(owner.name, node) == 0;
}
