/* Control-plane metadata store: volumes, replication pairs, consistency
 * groups. Two backends behind one interface (store.c dispatches): SQLite
 * (store_sqlite.c, the default: any path) and PostgreSQL (store_pg.c: a path
 * that is a libpq URI, postgresql://... or postgres://..., shared by several
 * evsrepd nodes). docs/design/store.md says what each guarantees.
 *
 * Records are plain structs with fixed-size strings; the only heap member is
 * store_volume.metadata_json (free with store_volume_clear / the *_free_list
 * helpers). Times are microseconds since the epoch; updated_at == 0 means
 * "null" on the wire.
 *
 * Threading: one store is shared by all threads; every call is atomic on its
 * own. A state change spanning several rows is wrapped in
 * store_tx_begin/store_tx_commit (or store_tx_rollback): the calling thread
 * holds the store exclusively in between, so keep transactions short and never
 * do volume I/O inside one.
 *
 * All functions return 0 or a negative errno: -ENOENT (no such row, or an
 * unknown list marker, or an insert/update naming a missing volume/group),
 * -EEXIST (duplicate id, or a volume already in a pair), -EINVAL (bad query,
 * or a value the schema rejects), -EBUSY (delete of a volume still in a pair
 * or a group still holding pairs; store_tx_begin while already in a tx),
 * -EPROTO (store_open: database newer than this binary), -EAGAIN (store busy
 * or unreachable: retry later; PostgreSQL: the server could not be reached
 * after one reconnect, or the connection broke inside the caller's
 * transaction, which is then lost: its commit returns -EAGAIN too), -EIO
 * (backend error, logged).
 *
 * Ownership: list functions return a malloc'd array (NULL when n == 0).
 * Volume arrays are freed with store_volume_free_list; pair and group arrays
 * have no heap members and are freed with free(). */
#ifndef EVSREP_STORE_H
#define EVSREP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ID_LEN      37 /* UUID + NUL */
#define STORE_PROJECT_LEN 65
#define STORE_NAME_LEN    256 /* 255 bytes + NUL */
#define STORE_AZ_LEN      64
#define STORE_STATUS_LEN  24
#define STORE_TYPE_LEN    64

struct store;

struct store_volume {
        char id[STORE_ID_LEN];
        char project_id[STORE_PROJECT_LEN];
        char name[STORE_NAME_LEN];
        char description[STORE_NAME_LEN];
        char availability_zone[STORE_AZ_LEN];
        char status[STORE_STATUS_LEN];
        char volume_type[STORE_TYPE_LEN];
        char *metadata_json; /* owned; JSON object text, never NULL after a get */
        int64_t size_gib;
        bool multiattach;
        bool fenced; /* old production fenced by a failover: exported read-only */
        char error_message[STORE_NAME_LEN]; /* why status is error*, or "" */
        int64_t created_at, updated_at;
        /* Read-only, filled by get/list from the pairs table: id of the pair
         * holding this volume, or "". */
        char pair_id[STORE_ID_LEN];
};

struct store_pair {
        char id[STORE_ID_LEN];
        char project_id[STORE_PROJECT_LEN];
        char name[STORE_NAME_LEN];
        char description[STORE_NAME_LEN];
        char status[STORE_STATUS_LEN];
        char group_id[STORE_ID_LEN];         /* "" when in no group */
        char volume_ids[2][STORE_ID_LEN];    /* creation order, never changes */
        char priority_station[STORE_AZ_LEN]; /* AZ of the current production disk */
        char replication_model[32];
        char replication_status[STORE_STATUS_LEN];
        int progress;            /* 0..100 */
        char failure_detail[32]; /* "" when none */
        int fault_level;         /* 0, 2, 5 */
        int64_t volume_size_gib; /* record_metadata */
        char volume_type[STORE_TYPE_LEN];
        bool multiattach;
        char mirror_mode[16]; /* engine mode to resume at start: sync, track, resync */
        /* Instant (usec) of the fence that paused this pair's DR image; 0
         * when not paused consistently. Group members report active-stopped
         * only when they all share one (docs/semantics.md). */
        int64_t frozen_at;
        int64_t created_at, updated_at;
};

struct store_group {
        char id[STORE_ID_LEN];
        char project_id[STORE_PROJECT_LEN];
        char name[STORE_NAME_LEN];
        char description[STORE_NAME_LEN];
        char status[STORE_STATUS_LEN];
        char priority_station[STORE_AZ_LEN];
        char replication_model[32];
        char replication_status[STORE_STATUS_LEN];
        char failure_detail[32];
        int fault_level;
        int64_t frozen_at; /* instant of the last pause fence, 0 if never */
        int64_t created_at, updated_at;
};

/* An attachment: the one way to reach a volume over NBD
 * (docs/design/nbd.md "Attachments"). Immutable once inserted. */
#define STORE_EXPORT_LEN    41   /* 160 random bits as 40 hex digits + NUL */
#define STORE_CONNECTOR_LEN 4096 /* canonical JSON of the connector + NUL */
#define STORE_PSK_LEN       65   /* 256-bit key as 64 hex digits + NUL */
struct store_attachment {
        char id[STORE_ID_LEN];
        char volume_id[STORE_ID_LEN];
        char project_id[STORE_PROJECT_LEN];
        char export_name[STORE_EXPORT_LEN];
        char connector[STORE_CONNECTOR_LEN];
        bool read_only; /* asked for by the connector */
        char psk_key[STORE_PSK_LEN];
        int64_t created_at;
};

/* Exact-match filter. key is a column name the resource allows; the store
 * returns -EINVAL for any other key. Special keys: pairs accept "volume_id"
 * (either disk) and "volume_ids" (the comma-joined string); groups accept
 * "volume_id" (groups holding a pair holding that volume) and
 * "replication_id". */
struct store_filter {
        const char *key;
        const char *value;
};

struct store_list_query {
        const char *project_id; /* required */
        const struct store_filter *filters;
        size_t nfilters;
        const char *sort_key;  /* created_at (default), updated_at, name, status, id */
        bool sort_asc;         /* default false: desc */
        const char *marker;    /* id of the last item of the previous page, or NULL */
        int limit;             /* 1..1000; 0 means 1000 */
        int64_t offset;        /* >= 0 */
        int64_t changes_since; /* 0: none; else created_at or updated_at >= it */
};

/* Open (creating if needed) the database at path, an SQLite file or a
 * PostgreSQL connection URI, and migrate its schema to the current version.
 * On failure err holds a sentence for the operator (never the URI, which may
 * hold a password). */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);
int store_schema_version(struct store *s);
/* Can other processes (nodes) share this store? True for PostgreSQL, false
 * for an SQLite file (one process). */
bool store_is_shared(const struct store *s);

int store_tx_begin(struct store *s);
int store_tx_commit(struct store *s);
void store_tx_rollback(struct store *s);

/* Volumes. get with project_id NULL ignores the project (internal use). */
int store_volume_insert(struct store *s, const struct store_volume *v);
int store_volume_get(struct store *s, const char *project_id, const char *id,
                     struct store_volume *out);
int store_volume_update(struct store *s, const struct store_volume *v); /* by id */
int store_volume_delete(struct store *s, const char *id);
int store_volume_list(struct store *s, const struct store_list_query *q, struct store_volume **out,
                      size_t *n);
/* Every volume of every project (startup: reopen and export them). */
int store_volume_list_all(struct store *s, struct store_volume **out, size_t *n);
void store_volume_clear(struct store_volume *v); /* frees metadata_json */
void store_volume_free_list(struct store_volume *list, size_t n);

/* Pairs. */
int store_pair_insert(struct store *s, const struct store_pair *p);
int store_pair_get(struct store *s, const char *project_id, const char *id, struct store_pair *out);
int store_pair_update(struct store *s, const struct store_pair *p);
int store_pair_delete(struct store *s, const char *id);
int store_pair_list(struct store *s, const struct store_list_query *q, struct store_pair **out,
                    size_t *n);
int store_pair_list_all(struct store *s, struct store_pair **out, size_t *n);
/* Pairs of one group, ordered by created_at then id. */
int store_pair_list_by_group(struct store *s, const char *group_id, struct store_pair **out,
                             size_t *n);

/* Groups. */
int store_group_insert(struct store *s, const struct store_group *g);
int store_group_get(struct store *s, const char *project_id, const char *id,
                    struct store_group *out);
int store_group_update(struct store *s, const struct store_group *g);
int store_group_delete(struct store *s, const char *id);
int store_group_list(struct store *s, const struct store_list_query *q, struct store_group **out,
                     size_t *n);
int store_group_list_all(struct store *s, struct store_group **out, size_t *n);

/* A group's resync throttle setting (docs/design/replication.md "Resync
 * throttle"); rates in bytes per second, 0: none. get: -ENOENT when the
 * group has none (unthrottled). set: insert or replace; -ENOENT when the
 * group does not exist. The row goes with its group. */
struct store_group_throttle {
        char group_id[STORE_ID_LEN];
        int64_t max_bps, min_bps;
        bool adaptive;
        int64_t updated_at;
};
int store_group_throttle_get(struct store *s, const char *group_id,
                             struct store_group_throttle *out);
int store_group_throttle_set(struct store *s, const struct store_group_throttle *t);

/* The release record of a group's remote copy-on-write sidecars
 * (docs/design/replication.md "The release record"): the count of the
 * group's completed resyncs, column groups.sidecars_released (0 for a new
 * group). bump: +1 in one statement, durable on return (or a savepoint of
 * the caller's transaction); get: the count. Both -ENOENT when the group
 * does not exist. Nothing else writes it: store_group_update leaves it
 * alone, so a stale copy of the row cannot move it back. */
int store_group_release_bump(struct store *s, const char *group_id);
int store_group_release_get(struct store *s, const char *group_id, int64_t *out);

/* Attachments. Insert: -ENOENT when the volume does not exist, -EEXIST on a
 * duplicate id or export name. Lists are ordered by created_at then id and
 * freed with free(). */
int store_attachment_insert(struct store *s, const struct store_attachment *a);
int store_attachment_delete(struct store *s, const char *id);
int store_attachment_list_all(struct store *s, struct store_attachment **out, size_t *n);
int store_attachment_list_by_volume(struct store *s, const char *volume_id,
                                    struct store_attachment **out, size_t *n);
/* Quotas (docs/operations.md "Quotas"). A project's overrides of the
 * configured defaults; a field holding STORE_QUOTA_DEFAULT has no override.
 * -1 is unlimited. */
#define STORE_QUOTA_DEFAULT (-2)
struct store_quota {
        char project_id[STORE_PROJECT_LEN];
        int64_t volumes;   /* -1, >= 0, or STORE_QUOTA_DEFAULT */
        int64_t gigabytes; /* -1, >= 0, or STORE_QUOTA_DEFAULT */
        int64_t updated_at;
};
/* A project without a row is not an error: 0, both fields
 * STORE_QUOTA_DEFAULT. */
int store_quota_get(struct store *s, const char *project_id, struct store_quota *out);
/* Insert or replace the project's row (both fields as given). */
int store_quota_set(struct store *s, const struct store_quota *q);
/* Back to the defaults; 0 also when there was no row. */
int store_quota_delete(struct store *s, const char *project_id);
/* What a project uses: its volume rows (any status, until the row is gone)
 * and the sum of their size_gib. */
int store_project_usage(struct store *s, const char *project_id, int64_t *volumes,
                        int64_t *gigabytes);
/* Sum of size_gib of every volume (all projects) in availability zone az. */
int store_site_provisioned(struct store *s, const char *az, int64_t *gigabytes);

/* Nodes (docs/design/multi-site.md "Leases"): one row per evsrepd node, the
 * AZs it serves and its lease. Lease times are microseconds on the STORE's
 * clock (store_now_usec): PostgreSQL's server clock (now()), SQLite's local
 * clock. A lease is valid while lease_until > store_now_usec(). */
#define STORE_NODE_NAME_LEN 64
#define STORE_URL_LEN       512
#define STORE_NBD_JSON_LEN  1024
struct store_node {
        char name[STORE_NODE_NAME_LEN];
        char azs[STORE_NAME_LEN];          /* comma list, "az1,az2" */
        char api_url[STORE_URL_LEN];       /* internal URL other nodes use */
        char nbd_json[STORE_NBD_JSON_LEN]; /* JSON object: AZ -> "host:port" */
        int64_t lease_until;               /* usec, store clock; 0: released */
        int64_t roles_generation;          /* bumped by a node taking roles away */
        int64_t started_at, updated_at;    /* usec, store clock */
};
/* The store's clock, usec since the epoch. */
int store_now_usec(struct store *s, int64_t *out);
/* Insert or update the row named n->name: azs, api_url, nbd_json, and
 * started_at = updated_at = now, lease_until = now + lease_ms. An existing
 * row keeps its roles_generation (a new row starts at 0). -EINVAL when
 * lease_ms <= 0 or the name is empty. */
int store_node_register(struct store *s, const struct store_node *n, int lease_ms);
/* Extend name's lease to now + lease_ms if its roles_generation still equals
 * generation (lease_ms == 0 releases it: lease_until = 0). On success
 * *lease_until (may be NULL) holds the new value. -ESTALE when the row's
 * generation differs (another node took roles away), -ENOENT when the row
 * is gone. */
int store_node_renew(struct store *s, const char *name, int64_t generation, int lease_ms,
                     int64_t *lease_until);
int store_node_get(struct store *s, const char *name, struct store_node *out);
/* Take name's roles away (a failover from the survivor, multi-site.md): if
 * its lease has lapsed (lease_until <= the store's now, checked by the same
 * statement), bump its roles_generation and clear its lease, so that the node
 * can never renew again without re-reading its roles. Run it inside the
 * transaction that records the new roles. -EBUSY with *remaining_usec set
 * when the lease is still valid; -ENOENT when no row has that name. */
int store_node_take_roles(struct store *s, const char *name, int64_t *remaining_usec);
/* Every node, ordered by name; free() the array. */
int store_node_list(struct store *s, struct store_node **out, size_t *n);
int store_node_delete(struct store *s, const char *name);

#endif
