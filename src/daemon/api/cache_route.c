/* The router's side of the reply cache (cache.h; docs/design/control-plane.md
 * "Reply cache"): which requests may be served from it, the lookup, and
 * keeping a reply built by a handler. Runs after the router's token,
 * project, Accept and id checks, so a hit never skips them. */
#include "api/cache.h"
#include "api/internal.h"
#include "service/group_ext.h"

#include <stdlib.h>
#include <string.h>

/* The GETs whose replies may be kept: the pair and group serialisers read
 * only the store and noted live sources (common/replygen.h). */
static bool route_cacheable(api_handler fn)
{
        return fn == api_pairs_list || fn == api_pairs_get || fn == api_groups_list ||
               fn == api_groups_get;
}

static void key_arg(void *arg, const char *key, const char *value)
{
        api_cache_key_arg(arg, key, value);
}

/* Re-read one note: the same call the serialiser made, compared bytewise. */
static bool note_check(void *ctx, const struct replygen_note *n, const unsigned char *bytes)
{
        struct service *svc = ctx;

        switch ((enum replygen_src)n->src) {
        case REPLYGEN_PAIR_LIVE: {
                struct pair_live_note pn;

                return service_pair_live_note(svc, n->id, &pn) && n->len == sizeof(pn) &&
                       memcmp(bytes, &pn, sizeof(pn)) == 0;
        }
        case REPLYGEN_GROUP_THROTTLE: {
                struct group_throttle_note tn;

                return service_group_throttle_note(svc, n->id, &tn) && n->len == sizeof(tn) &&
                       memcmp(bytes, &tn, sizeof(tn)) == 0;
        }
        case REPLYGEN_GROUP_VERIFY: {
                char *text = api_group_verify_text(svc, n->id);
                bool same = text && strlen(text) == n->len && memcmp(text, bytes, n->len) == 0;

                free(text);
                return same;
        }
        case REPLYGEN__COUNT:
                break;
        }
        return false;
}

int api_cache_begin(struct api_call *c, api_handler fn, struct api_cache_build *b)
{
        struct api_cache *cache = c->ctx->cache;
        struct api_cache_hit hit;
        int rc;

        /* Not the whole struct: its key buffer is 2 KiB (a memset per GET). */
        b->on = false;
        memset(&b->rec, 0, sizeof(b->rec));
        memset(&b->cap, 0, sizeof(b->cap));
        if (!cache || c->forwarded || strcmp(c->r->method, "GET") != 0 || c->r->body_len > 0 ||
            !route_cacheable(fn))
                return 0;
        api_cache_key_init(&b->key, c->project, c->is_operator, c->r->url);
        http_query_foreach_raw(c->r, key_arg, &b->key);
        if (b->key.overflow)
                return 0;
        if (api_cache_lookup(cache, &b->key, note_check, c->ctx->svc, &hit)) {
                /* The body goes out from the entry itself, no copy; the
                 * hit's reference is let go when the reply is done. */
                rc = http_reply_shared(c->r, hit.status, hit.body, hit.len, api_cache_entry_release,
                                       hit.e);
                return rc < 0 ? -1 : 1;
        }
        /* The generation before the handler reads anything (the design's
         * "why a hit is never older" rests on this order). */
        b->gen = replygen_now();
        b->on = true;
        c->r->capture = &b->cap;
        replygen_rec_arm(&b->rec);
        return 0;
}

void api_cache_end(struct api_call *c, struct api_cache_build *b, bool handled)
{
        if (!b->on)
                return;
        replygen_rec_arm(NULL);
        c->r->capture = NULL;
        if (handled && b->cap.set && b->cap.status == 200 && b->cap.json)
                api_cache_store(c->ctx->cache, &b->key, b->gen, b->cap.status, b->cap.body,
                                b->cap.len, &b->rec);
        free(b->cap.body);
        replygen_rec_free(&b->rec);
        b->on = false;
}
