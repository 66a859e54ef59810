/* Online verify of a group (evsrep extension, docs/api.md §4.6): the
 * `os-evsrep-verify` action and the `verify` member of a group object. */
#include "api/internal.h"
#include "common/replygen.h"
#include "common/util.h"
#include "json/jcheck.h"
#include "service/verify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define VERIFY_KEY "os-evsrep-verify"

int api_group_verify_parse(const char *body, size_t len, json_t **root, struct verify_req *rq,
                           char *msg, size_t msglen)
{
        static const struct jfield f[] = {
            {"repair", JT_BOOL, false, 0, 0},
            {"max_rate_mib_per_sec", JT_INT, false, 0, VERIFY_MAX_RATE_MIB_SEC},
        };
        const char *key;
        json_t *val, *j;

        memset(rq, 0, sizeof(*rq));
        *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(*root) || json_object_size(*root) != 1 ||
            !(val = json_object_get(*root, VERIFY_KEY)))
                return 1; /* not ours: the other actions' parser words the 400 */
        if (json_is_null(val))
                return 0;
        if (!json_is_object(val)) {
                snprintf(msg, msglen,
                         "the value of %s must be null or {\"repair\": true|false, "
                         "\"max_rate_mib_per_sec\": 0..%d}",
                         VERIFY_KEY, VERIFY_MAX_RATE_MIB_SEC);
                return -EINVAL;
        }
        json_object_foreach(val, key, j)
        {
                if (strcmp(key, "repair") != 0 && strcmp(key, "max_rate_mib_per_sec") != 0) {
                        snprintf(msg, msglen,
                                 "%s.%.80s is not a verify option (repair, max_rate_mib_per_sec)",
                                 VERIFY_KEY, key);
                        return -EINVAL;
                }
        }
        if (jcheck_object(val, VERIFY_KEY, f, ARRAY_SIZE(f), msg, msglen) < 0)
                return -EINVAL;
        if ((j = json_object_get(val, "repair")) && json_is_true(j))
                rq->repair = true;
        if ((j = json_object_get(val, "max_rate_mib_per_sec")) && json_is_integer(j))
                rq->max_rate_mib_per_sec = (uint64_t)json_integer_value(j);
        return 0;
}

static json_t *report_json(const struct verify_report *r)
{
        json_t *pairs = json_array(), *j;

        for (size_t i = 0; i < r->n; i++) {
                const struct verify_member *m = &r->members[i];
                json_t *offs = json_array();

                for (size_t k = 0; k < m->n_offsets; k++)
                        json_array_append_new(offs, json_integer((json_int_t)m->offsets[k]));
                json_array_append_new(
                    pairs, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:b, s:o}",
                                     "replication_id", m->pair_id, "chunk_size_bytes",
                                     (json_int_t)m->chunk_bytes, "chunks_total",
                                     (json_int_t)m->chunks_total, "chunks_done",
                                     (json_int_t)m->chunks_done, "compared_chunks",
                                     (json_int_t)m->compared, "skipped_dirty_chunks",
                                     (json_int_t)m->skipped_dirty, "mismatched_chunks",
                                     (json_int_t)m->mismatched, "repaired_chunks",
                                     (json_int_t)m->repaired, "mismatch_offsets", offs,
                                     "mismatch_offsets_truncated", m->mismatched > m->n_offsets,
                                     "error", m->error[0] ? json_string(m->error) : json_null()));
        }
        j = json_pack("{s:s, s:b, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o}",
                      "status", verify_state_name(r->state), "repair", r->repair,
                      "max_rate_mib_per_sec", (json_int_t)r->max_rate_mib_per_sec, "progress", "",
                      "chunks_total", (json_int_t)r->chunks_total, "chunks_done",
                      (json_int_t)r->chunks_done, "bytes_done", (json_int_t)r->bytes_done,
                      "rate_bytes_per_sec", (json_int_t)r->rate_bps, "mismatched_chunks",
                      (json_int_t)r->mismatched, "repaired_chunks", (json_int_t)r->repaired,
                      "skipped_dirty_chunks", (json_int_t)r->skipped_dirty, "started_at",
                      api_time(r->started_at), "finished_at",
                      r->finished_at ? api_time(r->finished_at) : json_null(), "message",
                      r->message[0] ? json_string(r->message) : json_null(), "pairs", pairs);
        if (j) {
                char pct[8];

                snprintf(pct, sizeof(pct), "%d", r->progress);
                json_object_set_new(j, "progress", json_string(pct));
        }
        return j;
}

static json_t *verify_json_read(struct service *svc, const char *group_id)
{
        struct verify_report r;
        json_t *j;

        if (!service_verify_report(svc, group_id, &r))
                return json_null();
        j = report_json(&r);
        verify_report_free(&r);
        return j ? j : json_null();
}

char *api_group_verify_text(struct service *svc, const char *group_id)
{
        json_t *j = verify_json_read(svc, group_id);
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

        json_decref(j);
        return text;
}

json_t *api_group_verify_json(struct api_call *c, const char *group_id)
{
        json_t *j = verify_json_read(c->ctx->svc, group_id);
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

        /* The reply cache re-reads this (api/cache.c): the same text, or a
         * miss. */
        if (text)
                replygen_note(REPLYGEN_GROUP_VERIFY, group_id, text, strlen(text));
        else
                replygen_taint();
        free(text);
        return j;
}

int api_groups_verify(struct api_call *c, const struct verify_req *rq)
{
        struct verify_report r;
        char msg[512] = "";
        json_t *j;
        int rc = service_group_verify(c->ctx->svc, c->project, c->id, rq, &r, msg, sizeof(msg));

        if (rc < 0)
                return api_reply_errno(c, rc, msg);
        j = report_json(&r);
        verify_report_free(&r);
        return http_reply_json(c->r, 202, json_pack("{s:o}", "verify", j ? j : json_null()));
}
