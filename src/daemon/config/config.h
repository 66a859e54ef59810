/* evsrepd configuration: embedded defaults, then an INI file (cinder.conf
 * style), then command-line flags, each overriding the one before.
 *
 * INI format:
 *   [DEFAULT]
 *   data_dir = /var/lib/evsrep        ; db = data_dir/evsrep.db, tokens = data_dir/tokens
 *   listen = 127.0.0.1:8776
 *   availability_zones = az1, az2     ; the set of sites
 *   chunk_size = 65536                ; replication bitmap chunk, bytes (power of 2, 4 KiB..4 MiB)
 *   http_threads = 8
 *   nbd_threads = 16                  ; worker threads per NBD connection
 *   ; NBD bounds (denial of service; docs/design/nbd.md "Bounds"), per AZ listener:
 *   nbd_connection_budget = 67108864  ; payload bytes in flight per connection
 *   nbd_total_budget = 536870912      ; payload bytes in flight, all connections
 *   nbd_handshake_timeout = 30        ; seconds for the whole handshake (0 = off)
 *   nbd_idle_timeout = 0              ; seconds without a request (0 = off)
 *   nbd_send_timeout = 60             ; seconds a client may leave replies unread (0 = off)
 *   nbd_max_connections = 1024
 *   nbd_max_connections_per_address = 128
 *   metrics_public = false            ; /metrics without a token
 *   log_level = info                  ; debug, info, warn, error
 *   ; HTTP hardening (docs/operations.md "HTTP limits and HTTPS"):
 *   http_max_connections = 2048       ; open API connections in total (1..65536)
 *   http_max_connections_per_ip = 64  ; open API connections per client address
 *   http_connection_timeout = 30      ; seconds a connection may stay idle (1..3600)
 *   api_cache_entries = 256           ; replies the API reply cache keeps (0: off)
 *   api_cache_mib = 8                 ; bytes it keeps, MiB (1..1024)
 *   tls_cert = <path>                 ; PEM certificate (chain): serve HTTPS
 *   tls_key = <path>                  ; PEM private key of tls_cert (both or neither)
 *   ; NBD TLS (docs/design/nbd.md "TLS"):
 *   nbd_tls = on                      ; off, on, require (default: on when every NBD
 *                                     ; listener is loopback, else require)
 *   nbd_tls_cert = <path>             ; PEM certificate: X.509 besides PSK
 *   nbd_tls_key = <path>              ; its private key (both or neither)
 *   nbd_tls_ca = <path>               ; PEM CA for client certificates
 *   nbd_tls_verify_peer = false       ; require a client certificate signed by nbd_tls_ca
 *   db = <path>                       ; override the database path
 *   tokens = <path>                   ; override the tokens file path
 *   ; quotas and capacity (docs/operations.md "Quotas and capacity"):
 *   quota_volumes = 1000              ; default per-project volume count limit; -1 unlimited
 *   quota_gigabytes = 102400          ; default per-project GiB limit (sum of sizes); -1 unlimited
 *   capacity_overcommit = 20.0        ; a site accepts provisioned GiB up to its free space
 *                                     ; times this (volumes are sparse); 0 turns the check off
 *   ; nodes (docs/design/multi-site.md): availability_zones are the AZs THIS node serves
 *   node_name = local                 ; this node's row in the store's nodes table
 *   cluster_key_file = <path>         ; default data_dir/cluster.key: 64 hex digits, mode 0600,
 *                                     ; the same file on every node (created when missing)
 *   internal_url = <url>              ; how other nodes reach this one (default
 *                                     ; http://<listen host>:<listen port>)
 *   lease_ms = 12000                  ; node lease, renewed every lease_ms / 4 (3000..600000)
 *   link_timeout = 5                  ; seconds (1..600): a mirror link op without a reply
 *                                     ; within it breaks the link (DR fault, fault_level 5)
 *   auto_resync = true                ; a broken link that connects again resumes the pairs
 *                                     ; that were replicating (resync, then SYNC)
 *   [az:az1]
 *   nbd_listen = 127.0.0.1:10809
 *   dir = <path>                      ; default data_dir/az1
 *
 * Comments start with ';' or '#'. Unknown keys and sections are errors (a
 * typo must not silently fall back to a default). */
#ifndef EVSREP_CONFIG_H
#define EVSREP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_SITES 8
#define CONFIG_PATH_LEN  4096
#define CONFIG_HOST_LEN  256

struct site_cfg {
        char name[64];
        char dir[CONFIG_PATH_LEN]; /* "" until config_finalize: data_dir/<name> */
        char nbd_host[CONFIG_HOST_LEN];
        int nbd_port;
        /* nbd_listen given explicitly (file or flag): kept when the AZ set is
         * replaced; otherwise the port follows the site's index. */
        bool nbd_set;
};

/* nbd_tls; NBD_TLS_CFG_AUTO until config_finalize picks on or require. */
enum nbd_tls_cfg_mode {
        NBD_TLS_CFG_AUTO = -1,
        NBD_TLS_CFG_OFF,
        NBD_TLS_CFG_ON,
        NBD_TLS_CFG_REQUIRE
};

struct evsrep_config {
        char data_dir[CONFIG_PATH_LEN];
        /* The store: an SQLite file, or a PostgreSQL connection URI
         * (postgresql://... or postgres://...). "" until finalize:
         * data_dir/evsrep.db. */
        char db_path[CONFIG_PATH_LEN];
        char tokens_path[CONFIG_PATH_LEN]; /* "" until finalize: data_dir/tokens */
        char listen_host[CONFIG_HOST_LEN];
        int listen_port;
        struct site_cfg sites[CONFIG_MAX_SITES];
        int nsites;
        uint32_t chunk_bytes;
        int http_threads;
        int nbd_threads;
        bool metrics_public;
        /* NBD TLS */
        int nbd_tls; /* enum nbd_tls_cfg_mode */
        char nbd_tls_cert[CONFIG_PATH_LEN], nbd_tls_key[CONFIG_PATH_LEN];
        char nbd_tls_ca[CONFIG_PATH_LEN];
        bool nbd_tls_verify_peer;
        int log_level; /* enum log_level */

        /* HTTP hardening: connection limits and optional HTTPS. */
        int http_max_conns;             /* total open API connections */
        int http_max_conns_per_ip;      /* per client address; <= http_max_conns */
        int http_timeout_sec;           /* idle connection timeout */
        int api_cache_entries;          /* API reply cache: entries, 0 off (api/cache.h) */
        int api_cache_mib;              /* API reply cache: bytes bound, MiB */
        char tls_cert[CONFIG_PATH_LEN]; /* "" = plain HTTP */
        char tls_key[CONFIG_PATH_LEN];
        /* Quotas and capacity (service/quotas.c). Project overrides of the
         * quotas live in the store. */
        int64_t quota_volumes;      /* -1 unlimited, else >= 0 */
        int64_t quota_gigabytes;    /* -1 unlimited, else >= 0 */
        double capacity_overcommit; /* 0: no free-space check; else > 0 */
        /* NBD bounds (denial of service), one block; main.c copies them into
         * struct nbd_limits (nbd/nbd.h), whose comments say what each does.
         * Timeouts in seconds, 0 = off. */
        uint64_t nbd_conn_budget_bytes;
        uint64_t nbd_total_budget_bytes;
        int nbd_handshake_timeout_sec;
        int nbd_idle_timeout_sec;
        int nbd_send_timeout_sec;
        int nbd_max_conns;
        int nbd_max_conns_per_addr;
        /* Nodes (cluster/node.c). */
        char node_name[64];
        char cluster_key_path[CONFIG_PATH_LEN]; /* "" until finalize: data_dir/cluster.key */
        char internal_url[512];                 /* "" until finalize: http://listen */
        bool internal_url_auto;                 /* derived by finalize (port 0: fixed at start) */
        int lease_ms;
        /* Mirror links between nodes (multi-site.md "Link faults"). */
        int link_timeout_sec;
        bool auto_resync;
};

/* Embedded defaults: data_dir ./data, listen 127.0.0.1:8776, sites az1
 * (127.0.0.1:10809) and az2 (127.0.0.1:10810), chunk 64 KiB, quotas
 * unlimited, capacity_overcommit 20. */
void config_defaults(struct evsrep_config *c);
/* Parse an INI text (len bytes) over c. On error returns -EINVAL and err
 * names the line and the problem. */
int config_parse_ini(struct evsrep_config *c, const char *text, size_t len, char *err,
                     size_t errlen);
int config_load_file(struct evsrep_config *c, const char *path, char *err, size_t errlen);
/* Apply a flag value: key is the INI key (data_dir, listen, ...) or
 * "nbd_listen" with value "AZ=HOST:PORT". */
int config_set(struct evsrep_config *c, const char *key, const char *value, char *err,
               size_t errlen);
/* Fill derived paths and check the whole: unique AZ names and ports, etc. */
int config_finalize(struct evsrep_config *c, char *err, size_t errlen);
/* db as it may be shown (--check-config, logs): the password of a
 * PostgreSQL URI replaced by "***". */
void config_db_display(const char *db, char *out, size_t outlen);
const struct site_cfg *config_site(const struct evsrep_config *c, const char *az);

#endif
