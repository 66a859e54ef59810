/* The state of this node's outgoing DR links, for `evsrep node list`
 * (docs/design/multi-site.md "Link state in the node list"; docs/api.md
 * §6.1).
 *
 * One entry per peer: the node serving the DR zone of one or more pairs
 * whose production this node serves, with the number of pairs and groups
 * mirrored over it and what the link monitor (links.c) knows: connected,
 * broken (a link op failed; the monitor has not tried to reconnect yet),
 * reconnecting (a reconnect failed; it retries with a backoff of 2 s
 * doubling to 30 s), the last error, the current backoff, the seconds
 * until the next try and since the link broke. Each pair is read with a
 * trylock (pair_rt_link_look): the report never waits behind a reconnect
 * or a group action; such a pair counts as busy. */
#include "service/internal.h"

#include "cluster/cluster.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer_acc {
        struct service_link_peer out;
        char (*gids)[STORE_ID_LEN];
        size_t ngids;
        unsigned broken, reconnecting;
};

static struct peer_acc *peer_find(struct peer_acc *acc, size_t *n, const char *az)
{
        for (size_t i = 0; i < *n; i++)
                if (strcmp(acc[i].out.availability_zone, az) == 0)
                        return &acc[i];
        return NULL;
}

static void group_note(struct peer_acc *pa, const char *gid, size_t cap)
{
        if (!gid[0] || !pa->gids)
                return;
        for (size_t k = 0; k < pa->ngids; k++)
                if (strcmp(pa->gids[k], gid) == 0)
                        return;
        if (pa->ngids < cap)
                snprintf(pa->gids[pa->ngids++], STORE_ID_LEN, "%s", gid);
}

/* Fold one pair's look into its peer's entry. */
static void peer_add(struct peer_acc *pa, const struct pair_link_look *lk)
{
        struct service_link_peer *o = &pa->out;

        o->pairs++;
        if (lk->busy) {
                o->pairs_busy++;
                return;
        }
        if (!lk->broken_err) {
                o->pairs_connected++;
                return;
        }
        if (lk->backoff_ms)
                pa->reconnecting++;
        else
                pa->broken++;
        /* The most informative error: the last failed reconnect ("Connection
         * refused") over the one that broke the link. */
        if (!o->last_error[0] || lk->last_err)
                snprintf(o->last_error, sizeof(o->last_error), "%s",
                         strerror(-(lk->last_err ? lk->last_err : lk->broken_err)));
        o->backoff_ms = MAX(o->backoff_ms, lk->backoff_ms);
        if (o->next_retry_ms < 0 || lk->retry_in_ms < o->next_retry_ms)
                o->next_retry_ms = lk->retry_in_ms;
        o->down_ms = MAX(o->down_ms, lk->down_ms);
}

static void peer_finish(struct peer_acc *pa)
{
        struct service_link_peer *o = &pa->out;

        o->groups = (unsigned)pa->ngids;
        if (pa->reconnecting)
                snprintf(o->state, sizeof(o->state), "reconnecting");
        else if (pa->broken)
                snprintf(o->state, sizeof(o->state), "broken");
        else if (o->pairs_connected)
                snprintf(o->state, sizeof(o->state), "connected");
        else
                snprintf(o->state, sizeof(o->state), "busy");
        if (o->next_retry_ms < 0)
                o->next_retry_ms = 0;
        free(pa->gids);
}

int service_links_report(struct service *svc, struct service_link_peer **out, size_t *nout)
{
        char(*ids)[STORE_ID_LEN] = NULL;
        struct peer_acc *acc = NULL;
        size_t n = 0, np = 0;
        int64_t now = util_mono_usec();
        int rc;

        *out = NULL;
        *nout = 0;
        if ((rc = pair_rt_remote_ids(svc, &ids, &n)) < 0)
                return rc;
        if (n && !(acc = calloc(n, sizeof(*acc)))) {
                free(ids);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct pair_link_look lk;
                struct store_pair p;
                struct store_volume dv = {0};
                struct store_node owner;
                struct peer_acc *pa;

                if (pair_rt_link_look(svc, ids[i], now, &lk) < 0)
                        continue; /* no remote link any more */
                if (store_pair_get(svc->store, NULL, ids[i], &p) < 0 ||
                    service_link_dr_volume(svc, &p, &dv) < 0)
                        continue; /* deleted meanwhile */
                if (!(pa = peer_find(acc, &np, dv.availability_zone))) {
                        pa = &acc[np++];
                        snprintf(pa->out.availability_zone, sizeof(pa->out.availability_zone), "%s",
                                 dv.availability_zone);
                        rc = cluster_az_owner(dv.availability_zone, &owner, NULL);
                        if (rc == 0 || rc == -EHOSTDOWN)
                                snprintf(pa->out.node, sizeof(pa->out.node), "%s", owner.name);
                        pa->out.next_retry_ms = -1;
                        pa->gids = calloc(n, STORE_ID_LEN);
                }
                store_volume_clear(&dv);
                group_note(pa, p.group_id, n);
                peer_add(pa, &lk);
        }
        free(ids);
        if (!np) {
                free(acc);
                return 0;
        }
        if (!(*out = calloc(np, sizeof(**out)))) {
                for (size_t k = 0; k < np; k++)
                        free(acc[k].gids);
                free(acc);
                return -ENOMEM;
        }
        for (size_t k = 0; k < np; k++) {
                peer_finish(&acc[k]);
                (*out)[k] = acc[k].out;
        }
        *nout = np;
        free(acc);
        return 0;
}
