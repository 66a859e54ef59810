/* The public store functions: pick a backend at open, then dispatch every
 * call through its ops (store_internal.h). No logic of its own beyond that:
 * each backend implements the whole store.h contract. */
#include "store/store.h"
#include "store/store_internal.h"
#include "common/fault.h"
#include "common/replygen.h"

#include <stdlib.h>
#include <string.h>

/* Every write bumps the reply cache's generation once the backend call has
 * returned, so after the change is visible to readers (api/cache.c;
 * docs/design/control-plane.md "Reply cache"). A failed write bumps too:
 * harmless, and a write that failed half-way changed nothing a reader saw
 * before the bump. */
static int bumped(int rc)
{
        replygen_bump();
        return rc;
}

bool store_path_is_pg(const char *path)
{
        return path &&
               (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0);
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
        if (store_path_is_pg(path))
                return store_pg_open(path, out, err, errlen);
        return store_sqlite_open(path, out, err, errlen);
}

void store_close(struct store *s)
{
        if (s)
                s->ops->close(s);
}

bool store_is_shared(const struct store *s)
{
        return strcmp(s->ops->name, "postgresql") == 0;
}

int store_schema_version(struct store *s)
{
        return s->ops->schema_version(s);
}

int store_tx_begin(struct store *s)
{
        return s->ops->tx_begin(s);
}

int store_tx_commit(struct store *s)
{
        return bumped(s->ops->tx_commit(s));
}

void store_tx_rollback(struct store *s)
{
        s->ops->tx_rollback(s);
        replygen_bump();
}

int store_volume_insert(struct store *s, const struct store_volume *v)
{
        return bumped(s->ops->volume_insert(s, v));
}

int store_volume_get(struct store *s, const char *project_id, const char *id,
                     struct store_volume *out)
{
        return s->ops->volume_get(s, project_id, id, out);
}

int store_volume_update(struct store *s, const struct store_volume *v)
{
        return bumped(s->ops->volume_update(s, v));
}

int store_volume_delete(struct store *s, const char *id)
{
        return bumped(s->ops->volume_delete(s, id));
}

int store_volume_list(struct store *s, const struct store_list_query *q, struct store_volume **out,
                      size_t *n)
{
        return s->ops->volume_list(s, q, out, n);
}

int store_volume_list_all(struct store *s, struct store_volume **out, size_t *n)
{
        return s->ops->volume_list_all(s, out, n);
}

void store_volume_clear(struct store_volume *v)
{
        if (!v)
                return;
        free(v->metadata_json);
        v->metadata_json = NULL;
}

void store_volume_free_list(struct store_volume *list, size_t n)
{
        for (size_t i = 0; list && i < n; i++)
                store_volume_clear(&list[i]);
        free(list);
}

int store_pair_insert(struct store *s, const struct store_pair *p)
{
        return bumped(s->ops->pair_insert(s, p));
}

int store_pair_get(struct store *s, const char *project_id, const char *id, struct store_pair *out)
{
        return s->ops->pair_get(s, project_id, id, out);
}

int store_pair_update(struct store *s, const struct store_pair *p)
{
        return bumped(s->ops->pair_update(s, p));
}

int store_pair_delete(struct store *s, const char *id)
{
        return bumped(s->ops->pair_delete(s, id));
}

int store_pair_list(struct store *s, const struct store_list_query *q, struct store_pair **out,
                    size_t *n)
{
        return s->ops->pair_list(s, q, out, n);
}

int store_pair_list_all(struct store *s, struct store_pair **out, size_t *n)
{
        return s->ops->pair_list_all(s, out, n);
}

int store_pair_list_by_group(struct store *s, const char *group_id, struct store_pair **out,
                             size_t *n)
{
        return s->ops->pair_list_by_group(s, group_id, out, n);
}

int store_group_insert(struct store *s, const struct store_group *g)
{
        return bumped(s->ops->group_insert(s, g));
}

int store_group_get(struct store *s, const char *project_id, const char *id,
                    struct store_group *out)
{
        return s->ops->group_get(s, project_id, id, out);
}

int store_group_update(struct store *s, const struct store_group *g)
{
        return bumped(s->ops->group_update(s, g));
}

int store_group_delete(struct store *s, const char *id)
{
        return bumped(s->ops->group_delete(s, id));
}

int store_group_list(struct store *s, const struct store_list_query *q, struct store_group **out,
                     size_t *n)
{
        return s->ops->group_list(s, q, out, n);
}

int store_group_list_all(struct store *s, struct store_group **out, size_t *n)
{
        return s->ops->group_list_all(s, out, n);
}

int store_attachment_insert(struct store *s, const struct store_attachment *a)
{
        return bumped(s->ops->attachment_insert(s, a));
}

int store_attachment_delete(struct store *s, const char *id)
{
        return bumped(s->ops->attachment_delete(s, id));
}

int store_attachment_list_all(struct store *s, struct store_attachment **out, size_t *n)
{
        return s->ops->attachment_list_all(s, out, n);
}

int store_attachment_list_by_volume(struct store *s, const char *volume_id,
                                    struct store_attachment **out, size_t *n)
{
        return s->ops->attachment_list_by_volume(s, volume_id, out, n);
}

int store_quota_get(struct store *s, const char *project_id, struct store_quota *out)
{
        return s->ops->quota_get(s, project_id, out);
}

int store_quota_set(struct store *s, const struct store_quota *q)
{
        return bumped(s->ops->quota_set(s, q));
}

int store_quota_delete(struct store *s, const char *project_id)
{
        return bumped(s->ops->quota_delete(s, project_id));
}

int store_project_usage(struct store *s, const char *project_id, int64_t *volumes,
                        int64_t *gigabytes)
{
        return s->ops->project_usage(s, project_id, volumes, gigabytes);
}

int store_site_provisioned(struct store *s, const char *az, int64_t *gigabytes)
{
        return s->ops->site_provisioned(s, az, gigabytes);
}

int store_now_usec(struct store *s, int64_t *out)
{
        return s->ops->now_usec(s, out);
}

int store_node_register(struct store *s, const struct store_node *n, int lease_ms)
{
        return bumped(s->ops->node_register(s, n, lease_ms));
}

int store_node_renew(struct store *s, const char *name, int64_t generation, int lease_ms,
                     int64_t *lease_until)
{
        /* No bump: a renewal moves only the lease's end, which no cached
         * reply shows (the cache is off with a shared store, the only mode
         * where leases decide which node answers), and it runs every
         * second. */
        return s->ops->node_renew(s, name, generation, lease_ms, lease_until);
}

int store_node_get(struct store *s, const char *name, struct store_node *out)
{
        return s->ops->node_get(s, name, out);
}

int store_node_take_roles(struct store *s, const char *name, int64_t *remaining_usec)
{
        return bumped(s->ops->node_take_roles(s, name, remaining_usec));
}

int store_node_list(struct store *s, struct store_node **out, size_t *n)
{
        return s->ops->node_list(s, out, n);
}

int store_node_delete(struct store *s, const char *name)
{
        return bumped(s->ops->node_delete(s, name));
}

int store_group_throttle_get(struct store *s, const char *group_id,
                             struct store_group_throttle *out)
{
        return s->ops->group_throttle_get(s, group_id, out);
}

int store_group_throttle_set(struct store *s, const struct store_group_throttle *t)
{
        return bumped(s->ops->group_throttle_set(s, t));
}

int store_group_release_bump(struct store *s, const char *group_id)
{
        /* Bumps the generation like every write, although the release
         * record is in no reply (control-plane.md "Reply cache"): one rule
         * without a second exception to keep true. */
        int rc = fault_check(FP_RELEASE_BUMP, group_id);

        return bumped(rc < 0 ? rc : s->ops->group_release_bump(s, group_id));
}

int store_group_release_get(struct store *s, const char *group_id, int64_t *out)
{
        return s->ops->group_release_get(s, group_id, out);
}
