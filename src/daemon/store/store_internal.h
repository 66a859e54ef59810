/* Backend dispatch of the store (internal to src/daemon/store/).
 *
 * store.c owns the public store.h functions: each forwards to the backend's
 * ops. A backend's handle starts with struct store (its ops), so the backend
 * turns the struct store * it is given back into its own type with
 * container_of-style casts. Every op keeps the contract written in store.h;
 * store.c adds nothing but the dispatch. */
#ifndef EVSREP_STORE_INTERNAL_H
#define EVSREP_STORE_INTERNAL_H

#include "store/store.h"

struct store_ops {
        const char *name; /* "sqlite", "postgresql" (logs) */
        void (*close)(struct store *s);
        int (*schema_version)(struct store *s);
        int (*tx_begin)(struct store *s);
        int (*tx_commit)(struct store *s);
        void (*tx_rollback)(struct store *s);

        int (*volume_insert)(struct store *s, const struct store_volume *v);
        int (*volume_get)(struct store *s, const char *project_id, const char *id,
                          struct store_volume *out);
        int (*volume_update)(struct store *s, const struct store_volume *v);
        int (*volume_delete)(struct store *s, const char *id);
        int (*volume_list)(struct store *s, const struct store_list_query *q,
                           struct store_volume **out, size_t *n);
        int (*volume_list_all)(struct store *s, struct store_volume **out, size_t *n);

        int (*pair_insert)(struct store *s, const struct store_pair *p);
        int (*pair_get)(struct store *s, const char *project_id, const char *id,
                        struct store_pair *out);
        int (*pair_update)(struct store *s, const struct store_pair *p);
        int (*pair_delete)(struct store *s, const char *id);
        int (*pair_list)(struct store *s, const struct store_list_query *q, struct store_pair **out,
                         size_t *n);
        int (*pair_list_all)(struct store *s, struct store_pair **out, size_t *n);
        int (*pair_list_by_group)(struct store *s, const char *group_id, struct store_pair **out,
                                  size_t *n);

        int (*group_insert)(struct store *s, const struct store_group *g);
        int (*group_get)(struct store *s, const char *project_id, const char *id,
                         struct store_group *out);
        int (*group_update)(struct store *s, const struct store_group *g);
        int (*group_delete)(struct store *s, const char *id);
        int (*group_list)(struct store *s, const struct store_list_query *q,
                          struct store_group **out, size_t *n);
        int (*group_list_all)(struct store *s, struct store_group **out, size_t *n);

        int (*attachment_insert)(struct store *s, const struct store_attachment *a);
        int (*attachment_delete)(struct store *s, const char *id);
        int (*attachment_list_all)(struct store *s, struct store_attachment **out, size_t *n);
        int (*attachment_list_by_volume)(struct store *s, const char *volume_id,
                                         struct store_attachment **out, size_t *n);

        int (*quota_get)(struct store *s, const char *project_id, struct store_quota *out);
        int (*quota_set)(struct store *s, const struct store_quota *q);
        int (*quota_delete)(struct store *s, const char *project_id);
        int (*project_usage)(struct store *s, const char *project_id, int64_t *volumes,
                             int64_t *gigabytes);
        int (*site_provisioned)(struct store *s, const char *az, int64_t *gigabytes);

        int (*now_usec)(struct store *s, int64_t *out);
        int (*node_register)(struct store *s, const struct store_node *n, int lease_ms);
        int (*node_renew)(struct store *s, const char *name, int64_t generation, int lease_ms,
                          int64_t *lease_until);
        int (*node_get)(struct store *s, const char *name, struct store_node *out);
        int (*node_take_roles)(struct store *s, const char *name, int64_t *remaining_usec);
        int (*node_list)(struct store *s, struct store_node **out, size_t *n);
        int (*node_delete)(struct store *s, const char *name);

        int (*group_throttle_get)(struct store *s, const char *group_id,
                                  struct store_group_throttle *out);
        int (*group_throttle_set)(struct store *s, const struct store_group_throttle *t);
        int (*group_release_bump)(struct store *s, const char *group_id);
        int (*group_release_get)(struct store *s, const char *group_id, int64_t *out);
};

/* First member of every backend's handle. */
struct store {
        const struct store_ops *ops;
};

/* Backends' open functions: same contract as store_open. */
int store_sqlite_open(const char *path, struct store **out, char *err, size_t errlen);
int store_pg_open(const char *uri, struct store **out, char *err, size_t errlen);

/* True when path names a PostgreSQL database (a libpq connection URI). */
bool store_path_is_pg(const char *path);

#endif
