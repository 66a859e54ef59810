/* The dry-run estimate of a group sync, reprotect or reverse (group_ext.h;
 * docs/api.md §4.8): what the action would copy, read from the members'
 * dirty bitmaps now, exactly as the resync will copy it.
 *
 *   sync       each member in TRACK (or still in RESYNC) copies its dirty
 *              chunks; a member whose mirror is not running is restarted
 *              with every chunk dirty (a full copy); a member in SYNC, none.
 *   reprotect  the bitmap of each member already holds the union the
 *              reprotect resyncs: the chunks the old production had dirty or
 *              in flight at the failover (folded into it then) and those
 *              written on the new production since. A member whose old
 *              production is on another node: that node keeps its part
 *              (handoff.c), so it is asked for it as the reprotect asks,
 *              and the chunks it adds (dirty there, clean here) count; when
 *              it cannot answer, the estimate says so (divergence_unknown).
 *   reverse    copies nothing when allowed (every member in SYNC and clean);
 *              any dirty chunk is reported, and the reverse would refuse.
 *
 * Bytes are whole chunks, cut at the end of the volume: the unit of the
 * pairs' bytes_copied, so the estimate can be checked against its delta.
 * Each member's runtime is locked while it is read (no other lock held). */
#include "service/group_ext.h"
#include "service/handoff.h"
#include "service/internal.h"
#include "engine/mirror.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t chunks_bytes(uint64_t chunks, uint64_t chunk_bytes, uint64_t size)
{
        uint64_t b = chunks * chunk_bytes;

        return size && b > size ? size : b;
}

/* The old production node's divergence of p, when it is another node's
 * (reprotect): 0 with *root (NULL: p's old production is here), or -errno
 * with msg. */
static int old_node_divergence(struct service *svc, const struct store_pair *p, json_t **root,
                               char *msg, size_t msglen)
{
        char name[STORE_NODE_NAME_LEN];
        struct store_volume dv = {0};
        bool here;

        *root = NULL;
        if (service_link_dr_volume(svc, p, &dv) < 0)
                return 0;
        here = config_site(svc->cfg, dv.availability_zone) != NULL;
        store_volume_clear(&dv);
        if (here)
                return 0;
        return service_handoff_divergence_fetch(svc, p, root, name, sizeof(name), msg, msglen);
}

/* Chunks the divergence root would add to m's bitmap. */
static uint64_t old_node_chunks(struct mirror *m, const json_t *root, uint64_t size)
{
        const json_t *it;
        uint64_t n = 0;
        size_t k;

        if (json_is_true(json_object_get(root, "whole")))
                return mirror_count_clean(m, 0, size);
        json_array_foreach(json_object_get(root, "extents"), k, it)
        {
                json_int_t off = json_integer_value(json_array_get(it, 0));
                json_int_t len = json_integer_value(json_array_get(it, 1));

                if (off < 0 || len <= 0 || (uint64_t)off >= size)
                        continue; /* as the union: only extents inside the disk */
                if ((uint64_t)len > size - (uint64_t)off)
                        len = (json_int_t)(size - (uint64_t)off);
                n += mirror_count_clean(m, (uint64_t)off, (uint64_t)len);
        }
        return n;
}

static void member_estimate(struct service *svc, const struct store_pair *p,
                            enum group_action action, struct group_estimate_member *em,
                            uint64_t *rate, bool ask_old, char *unknown, size_t unknown_len)
{
        json_t *div = NULL;
        char why[512] = "";
        int drc = ask_old ? old_node_divergence(svc, p, &div, why, sizeof(why)) : 0;
        uint64_t extra = 0;

        struct pair_rt *rt = pair_rt_lock(svc, p->id);
        struct mirror *m = rt ? pair_rt_mirror(rt) : NULL;
        struct mirror_stats st;
        uint64_t size;

        memset(em, 0, sizeof(*em));
        snprintf(em->pair_id, sizeof(em->pair_id), "%s", p->id);
        if (drc < 0) {
                em->old_node = OLD_NODE_UNKNOWN;
                if (!unknown[0])
                        snprintf(unknown, unknown_len, "%s", why);
        }
        if (!m) {
                json_decref(div);
                /* A sync restarts it on a fresh bitmap (configured chunk
                 * size) with every chunk dirty: the whole disk. */
                if (action == GROUP_SYNC) {
                        em->full_copy = true;
                        em->bytes = (uint64_t)p->volume_size_gib << 30;
                        em->chunk_bytes = svc->cfg->chunk_bytes;
                        em->chunks = em->chunk_bytes
                                         ? (em->bytes + em->chunk_bytes - 1) / em->chunk_bytes
                                         : 0;
                }
                pair_rt_unlock(rt);
                return;
        }
        mirror_stats(m, &st);
        size = pair_rt_prod(rt) ? volume_size(pair_rt_prod(rt)) : 0;
        if (div) {
                extra = old_node_chunks(m, div, size);
                em->old_node = OLD_NODE_INCLUDED;
                em->old_node_chunks = extra;
                json_decref(div);
        }
        pair_rt_unlock(rt);
        em->chunk_bytes = st.chunk_bytes;
        if (action == GROUP_SYNC && st.mode == MIRROR_SYNC)
                return;
        em->chunks = st.dirty_chunks + extra;
        em->bytes = chunks_bytes(em->chunks, st.chunk_bytes, size);
        *rate += st.rate_bps;
}

static enum group_op op_for(enum group_action a)
{
        return a == GROUP_SYNC ? GOP_SYNC : a == GROUP_REPROTECT ? GOP_REPROTECT : GOP_REVERSE;
}

int service_group_estimate(struct service *svc, const char *project, const char *id,
                           enum group_action action, struct group_estimate *e, char *msg,
                           size_t msglen)
{
        struct store_pair *ps = NULL;
        struct group_throttle_view tv;
        struct group_view gv;
        struct store_group g;
        enum repl_status rs = REPL__COUNT;
        uint64_t live_rate = 0;
        size_t n = 0;
        bool ask_old;
        int rc;

        memset(e, 0, sizeof(*e));
        if (action != GROUP_SYNC && action != GROUP_REPROTECT && action != GROUP_REVERSE) {
                snprintf(msg, msglen, "action must be sync, reprotect or reverse");
                return -EINVAL;
        }
        rc = store_group_get(svc->store, project, id, &g);
        if (rc == -ENOENT)
                snprintf(msg, msglen, "replication consistency group %s does not exist", id);
        if (rc < 0)
                return rc;
        if ((rc = store_pair_list_by_group(svc->store, id, &ps, &n)) < 0)
                return rc;
        /* As the reprotect: the old nodes are asked only after a failover. */
        ask_old = action == GROUP_REPROTECT && group_row_status(&g) == GS_FAILOVERED;
        if (!(e->members = calloc(n ? n : 1, sizeof(*e->members)))) {
                free(ps);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                member_estimate(svc, &ps[i], action, &e->members[i], &live_rate, ask_old,
                                e->divergence_unknown, sizeof(e->divergence_unknown));
                e->bytes += e->members[i].bytes;
                e->chunks += e->members[i].chunks;
        }
        e->n = n;
        free(ps);

        /* Would the action be allowed now? The same check as the action. */
        if (service_group_view(svc, &g, &gv) == 0) {
                repl_status_parse(gv.replication_status, &rs);
                free(gv.ids);
        }
        e->allowed = group_check(group_row_status(&g), rs, n, op_for(action), id, NULL, e->refusal,
                                 sizeof(e->refusal)) == 0;
        if (e->allowed)
                e->refusal[0] = '\0';
        if (e->allowed && e->divergence_unknown[0]) {
                /* The reprotect itself refuses (409) while an old node
                 * cannot give its divergence. */
                e->allowed = false;
                snprintf(e->refusal, sizeof(e->refusal), "%s", e->divergence_unknown);
        }

        /* The rate: the group's last measured resync rate, else what its
         * members copy right now; never above a ceiling in force. */
        e->rate_bps = live_rate;
        if (service_group_throttle_view(svc, id, &tv) == 0) {
                if (tv.sync_rate_bps)
                        e->rate_bps = tv.sync_rate_bps;
                if (tv.limit_bps && e->rate_bps > tv.limit_bps)
                        e->rate_bps = tv.limit_bps;
        }
        return 0;
}
