/* Requests that change something, answered on the HTTP pool thread when
 * that is cheap and provably what the executor would answer (http.h,
 * try_inline; docs/design/control-plane.md "The idempotent pause on the
 * pool thread"). Today one: the pause of a group that is already paused.
 * Everything else returns HTTP_DEFER and runs on an executor as before. */
#include "api/internal.h"
#include "common/replygen.h"

#include <string.h>

int api_inline_try(struct api_call *c, api_handler fn)
{
        struct group_extend_item items[256]; /* the parser's bound (groups.c MAX_IDS) */
        enum group_action a;
        json_t *root = NULL;
        char msg[256] = "";
        size_t n = 0;
        int rc;

        /* A shared store: the group may be another node's (forwarding). */
        if (fn != api_groups_action || c->forwarded || store_is_shared(service_store(c->ctx->svc)))
                return HTTP_DEFER;
        /* Exactly {"os-stop-replication-consistency-group": null}: the
         * action parser takes one key only, so this is no other action. */
        rc = api_group_action_parse(c->r->body, c->r->body_len, &root, &a, items, &n, msg,
                                    sizeof(msg));
        json_decref(root);
        if (rc < 0 || a != GROUP_PAUSE)
                return HTTP_DEFER;
        if (service_group_pause_noop(c->ctx->svc, c->project, c->id) != 1)
                return HTTP_DEFER;
        atomic_fetch_add(&g_replygen_stats.inline_answers, 1);
        return http_reply_json(c->r, 200, NULL);
}
