/* DR drill on a clone (evsrep extension): the group action
 * os-evsrep-clone-replication-consistency-group, api.md §4.7. */
#include "api/internal.h"
#include "common/util.h"
#include "json/jcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CLONE_KEY "os-evsrep-clone-replication-consistency-group"

int api_group_clone_parse(const char *body, size_t len, char *prefix, size_t cap, char *msg,
                          size_t msglen)
{
        static const struct jfield f[] = {{"name_prefix", JT_STRING, false, 0, 120}};
        json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *val;
        const char *p;
        int rc = 1;

        prefix[0] = '\0';
        if (!json_is_object(root) || json_object_size(root) != 1 ||
            !(val = json_object_get(root, CLONE_KEY))) {
                json_decref(root);
                return 0; /* not this action: the group action parser answers */
        }
        if (!json_is_null(val) && (!json_is_object(val) ||
                                   jcheck_object(val, CLONE_KEY, f, ARRAY_SIZE(f), msg, msglen))) {
                if (!json_is_object(val))
                        snprintf(msg, msglen,
                                 "the value of %s must be null or {\"name_prefix\": \"...\"}",
                                 CLONE_KEY);
                rc = -EINVAL;
        }
        if (rc == 1 && json_is_object(val) &&
            json_object_size(val) != (json_object_get(val, "name_prefix") ? 1u : 0u)) {
                snprintf(msg, msglen, "%s accepts only the member name_prefix", CLONE_KEY);
                rc = -EINVAL;
        }
        if (rc == 1 && json_is_object(val) && (p = jcheck_str(val, "name_prefix", NULL))) {
                for (const char *q = p; *q; q++)
                        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                                snprintf(msg, msglen,
                                         "%s.name_prefix must not hold control characters",
                                         CLONE_KEY);
                                rc = -EINVAL;
                                break;
                        }
                if (rc == 1)
                        snprintf(prefix, cap, "%s", p);
        }
        json_decref(root);
        return rc;
}

int api_group_clone(struct api_call *c, const char *prefix)
{
        struct group_clone_result res;
        char msg[512] = "";
        json_t *vols, *j;
        int rc =
            service_group_clone(c->ctx->svc, c->project, c->id, prefix, &res, msg, sizeof(msg));

        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        vols = json_array();
        for (size_t i = 0; i < res.n; i++) {
                const struct group_clone_item *it = &res.items[i];

                json_array_append_new(vols,
                                      json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "id",
                                                it->volume_id, "name", it->name, "status",
                                                it->status, "size", (json_int_t)it->size_gib,
                                                "availability_zone", it->availability_zone,
                                                "replication_id", it->pair_id, "source_volume_id",
                                                it->source_volume_id, "method", it->method));
        }
        free(res.items);
        j = json_pack("{s:{s:s,s:o,s:s,s:I,s:o}}", "clone", "replication_consistency_group_id",
                      c->id, "instant", api_time(res.instant), "source", res.source, "fence_usec",
                      (json_int_t)res.fence_usec, "volumes", vols);
        return http_reply_json(c->r, 202, j);
}
