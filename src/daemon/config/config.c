/* evsrepd configuration: defaults, INI file, flags (see config.h).
 *
 * The INI parser is hand-written because the format is tiny, but it is fed
 * operator files and fuzzed, so: every line is length-checked before it is
 * copied, the input is never assumed NUL-terminated, and a parse works on a
 * private copy that replaces the caller's config only when the whole file is
 * valid (a half-applied file is worse than none).
 *
 * Inline comments: ';' or '#' preceded by whitespace ends the value, as in
 * Python's configparser with inline_comment_prefixes; a path that really
 * contains " #" cannot be written in the file (use the flag). */
#include "config/config.h"

#include "common/log.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INI_LINE_MAX   8192      /* bytes per line, without the newline */
#define INI_FILE_MAX   (1 << 20) /* a config file is a few hundred bytes */
#define CHUNK_MIN      4096u
#define CHUNK_MAX      (4u << 20) /* at most one activity-log extent (engine/meta.h) */
#define THREADS_MAX    256
#define NBD_PORT_BASE  10809
#define VALUE_ECHO_MAX 80 /* how much of a bad value an error message repeats */
/* HTTP hardening */
#define HTTP_CONNS_MAX   65536
#define HTTP_TIMEOUT_MAX 3600
/* NBD bounds: budgets from 1 MiB (below that 4 KiB clients would crawl)
 * to 1 TiB; timeouts up to a week; connections up to 65536. */
#define NBD_BUDGET_MIN  (1ull << 20)
#define NBD_BUDGET_MAX  (1ull << 40)
#define NBD_TIMEOUT_MAX (7 * 24 * 3600)
#define NBD_CONNS_MAX   65536
/* Node lease (multi-site.md "Leases"): renewed every lease_ms / 4. */
#define LEASE_MS_MIN 3000
#define LEASE_MS_MAX 600000

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
        va_list ap;

        if (!err || errlen == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
}

/* ---------------------------------------------------------------- value parsers
 * Each returns 0, or -EINVAL with a sentence about the value in msg. */

static int parse_uint(const char *v, uint64_t max, uint64_t *out)
{
        uint64_t x = 0;

        if (!*v)
                return -EINVAL;
        for (const char *p = v; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (ck_mul(x, 10, &x) || ck_add(x, (uint64_t)(*p - '0'), &x) || x > max)
                        return -EINVAL;
        }
        *out = x;
        return 0;
}

static int parse_threads(const char *v, int *out, char *msg, size_t msglen)
{
        uint64_t x;

        if (parse_uint(v, THREADS_MAX, &x) < 0 || x < 1) {
                seterr(msg, msglen, "'%.*s' is not an integer in 1..%d", VALUE_ECHO_MAX, v,
                       THREADS_MAX);
                return -EINVAL;
        }
        *out = (int)x;
        return 0;
}

/* HTTP hardening: connection limits and the idle timeout. */
static int parse_int_range(const char *v, int min, int max, int *out, char *msg, size_t msglen)
{
        uint64_t x;

        if (parse_uint(v, (uint64_t)max, &x) < 0 || x < (uint64_t)min) {
                seterr(msg, msglen, "'%.*s' is not an integer in %d..%d", VALUE_ECHO_MAX, v, min,
                       max);
                return -EINVAL;
        }
        *out = (int)x;
        return 0;
}

static int parse_budget(const char *v, uint64_t *out, char *msg, size_t msglen)
{
        uint64_t x;

        if (parse_uint(v, NBD_BUDGET_MAX, &x) < 0 || x < NBD_BUDGET_MIN) {
                seterr(msg, msglen, "'%.*s' is not a byte count in %llu..%llu", VALUE_ECHO_MAX, v,
                       NBD_BUDGET_MIN, NBD_BUDGET_MAX);
                return -EINVAL;
        }
        *out = x;
        return 0;
}

static int parse_chunk(const char *v, uint32_t *out, char *msg, size_t msglen)
{
        uint64_t x;

        if (parse_uint(v, CHUNK_MAX, &x) < 0 || x < CHUNK_MIN || (x & (x - 1)) != 0) {
                seterr(msg, msglen, "'%.*s' is not a power of two between %u and %u bytes",
                       VALUE_ECHO_MAX, v, CHUNK_MIN, CHUNK_MAX);
                return -EINVAL;
        }
        *out = (uint32_t)x;
        return 0;
}

/* Quotas and capacity. */
#define QUOTA_MAX      ((int64_t)1 << 40) /* far above any real limit; keeps sums in range */
#define OVERCOMMIT_MAX 1000.0

static int parse_quota(const char *v, int64_t *out, char *msg, size_t msglen)
{
        uint64_t x;

        if (strcmp(v, "-1") == 0) {
                *out = -1;
                return 0;
        }
        if (parse_uint(v, (uint64_t)QUOTA_MAX, &x) < 0) {
                seterr(msg, msglen, "'%.*s' is not -1 (unlimited) or an integer in 0..%lld",
                       VALUE_ECHO_MAX, v, (long long)QUOTA_MAX);
                return -EINVAL;
        }
        *out = (int64_t)x;
        return 0;
}

static int parse_overcommit(const char *v, double *out, char *msg, size_t msglen)
{
        char *end;
        double x;

        errno = 0;
        x = strtod(v, &end);
        /* x == x rejects NaN; the range rejects inf and negatives. */
        if (!*v || *end || errno || !(x == x) || x < 0 || x > OVERCOMMIT_MAX) {
                seterr(msg, msglen,
                       "'%.*s' is not a number in 0..%g (0 turns the free-space check off)",
                       VALUE_ECHO_MAX, v, OVERCOMMIT_MAX);
                return -EINVAL;
        }
        *out = x;
        return 0;
}

static int parse_bool(const char *v, bool *out, char *msg, size_t msglen)
{
        static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};

        for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
                if (strcmp(v, yes[i]) == 0) {
                        *out = true;
                        return 0;
                }
                if (strcmp(v, no[i]) == 0) {
                        *out = false;
                        return 0;
                }
        }
        seterr(msg, msglen, "'%.*s' is not a boolean (true, false, yes, no, 1, 0)", VALUE_ECHO_MAX,
               v);
        return -EINVAL;
}

static int parse_log_level(const char *v, int *out, char *msg, size_t msglen)
{
        static const struct {
                const char *name;
                enum log_level lvl;
        } levels[] = {{"debug", LOG_LVL_DEBUG},
                      {"info", LOG_LVL_INFO},
                      {"warn", LOG_LVL_WARN},
                      {"error", LOG_LVL_ERROR}};

        for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
                if (strcmp(v, levels[i].name) == 0) {
                        *out = (int)levels[i].lvl;
                        return 0;
                }
        }
        seterr(msg, msglen, "'%.*s' is not one of debug, info, warn, error", VALUE_ECHO_MAX, v);
        return -EINVAL;
}

/* NBD TLS */
static int parse_nbd_tls(const char *v, int *out, char *msg, size_t msglen)
{
        static const char *const names[] = {"off", "on", "require"};

        for (int i = 0; i < 3; i++) {
                if (strcmp(v, names[i]) == 0) {
                        *out = i;
                        return 0;
                }
        }
        seterr(msg, msglen, "'%.*s' is not off, on or require", VALUE_ECHO_MAX, v);
        return -EINVAL;
}

/* Is host a loopback address (or name)? Anything else may be reachable
 * from other machines. */
static bool loopback_host(const char *h)
{
        return strncmp(h, "127.", 4) == 0 || strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
               strcmp(h, "[::1]") == 0;
}

static int parse_path(const char *v, char *out, char *msg, size_t msglen)
{
        size_t n = strlen(v);

        if (n == 0) {
                seterr(msg, msglen, "path is empty");
                return -EINVAL;
        }
        if (n >= CONFIG_PATH_LEN) {
                seterr(msg, msglen, "path is longer than %d bytes", CONFIG_PATH_LEN - 1);
                return -EINVAL;
        }
        memcpy(out, v, n + 1);
        return 0;
}

static int parse_listen(const char *v, char *host, int *port, char *msg, size_t msglen)
{
        char h[CONFIG_HOST_LEN];
        int p;

        /* Port 0 asks the kernel for a free port (tests, several daemons on one
         * host); the bound ports are published in DATA_DIR/evsrepd.ports. */
        if (util_parse_hostport(v, h, sizeof(h), &p) < 0 || p < 0 || p > 65535) {
                seterr(msg, msglen, "'%.*s' is not HOST:PORT with a port in 0..65535",
                       VALUE_ECHO_MAX, v);
                return -EINVAL;
        }
        memcpy(host, h, strlen(h) + 1);
        *port = p;
        return 0;
}

/* node_name: 1..63 of [A-Za-z0-9._-], starting with a letter or digit (it
 * appears in messages, PSK identities and the nodes table). */
static bool node_name_valid(const char *v)
{
        size_t n = strlen(v);

        if (n == 0 || n > 63 || !isalnum((unsigned char)v[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)v[i]) && !strchr("._-", v[i]))
                        return false;
        return true;
}

static int parse_node_name(const char *v, char *out, size_t cap, char *msg, size_t msglen)
{
        if (!node_name_valid(v)) {
                seterr(msg, msglen,
                       "'%.*s' is not 1..63 letters, digits, '.', '_' or '-' starting with a "
                       "letter or digit",
                       VALUE_ECHO_MAX, v);
                return -EINVAL;
        }
        snprintf(out, cap, "%s", v);
        return 0;
}

/* internal_url: http:// or https://, then host[:port][/path], no spaces. */
static bool internal_url_valid(const char *v)
{
        const char *rest = strncmp(v, "http://", 7) == 0    ? v + 7
                           : strncmp(v, "https://", 8) == 0 ? v + 8
                                                            : NULL;

        if (!rest || !*rest || *rest == '/' || strlen(v) >= 512)
                return false;
        for (const char *p = v; *p; p++)
                if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
                        return false;
        return true;
}

static int parse_internal_url(const char *v, char *out, size_t cap, char *msg, size_t msglen)
{
        if (!internal_url_valid(v)) {
                seterr(msg, msglen, "'%.*s' is not an http:// or https:// URL with a host",
                       VALUE_ECHO_MAX, v);
                return -EINVAL;
        }
        snprintf(out, cap, "%s", v);
        /* a trailing '/' would double in "<url>/internal/..." */
        for (size_t n = strlen(out); n > 0 && out[n - 1] == '/'; n--)
                out[n - 1] = '\0';
        return 0;
}

static bool az_name_valid(const char *v, size_t n)
{
        if (n < 1 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = v[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                      ch == '_'))
                        return false;
        }
        return true;
}

static int find_site(const struct evsrep_config *c, const char *name)
{
        for (int i = 0; i < c->nsites && i < CONFIG_MAX_SITES; i++)
                if (strcmp(c->sites[i].name, name) == 0)
                        return i;
        return -1;
}

static void site_default(struct site_cfg *s, const char *name, int index)
{
        memset(s, 0, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "%s", name);
        snprintf(s->nbd_host, sizeof(s->nbd_host), "127.0.0.1");
        s->nbd_port = NBD_PORT_BASE + index;
}

/* "a, b, c" -> the new site set. A site already known by name keeps what was
 * set for it explicitly (nbd_listen, dir); everything else takes the default
 * for its new index, so replacing az1,az2 by az3,az4 gives 10809,10810. */
static int set_azs(struct evsrep_config *c, const char *v, char *msg, size_t msglen)
{
        struct site_cfg next[CONFIG_MAX_SITES];
        int n = 0;
        const char *p = v;

        /* "none": an API-only node (multi-site.md "API-only nodes"); it
         * needs a shared store, checked in config_finalize. */
        if (strcmp(v, "none") == 0) {
                c->nsites = 0;
                return 0;
        }
        for (;;) {
                const char *start, *end, *comma = strchr(p, ',');
                size_t len;
                char name[64];

                end = comma ? comma : p + strlen(p);
                start = p;
                while (start < end && (*start == ' ' || *start == '\t'))
                        start++;
                while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                        end--;
                len = (size_t)(end - start);
                if (len == 0) {
                        seterr(msg, msglen, "empty availability zone name in '%.*s'",
                               VALUE_ECHO_MAX, v);
                        return -EINVAL;
                }
                if (!az_name_valid(start, len)) {
                        seterr(msg, msglen,
                               "'%.*s' is not a valid availability zone name (1..63 characters "
                               "of a-z, 0-9, '-', '_')",
                               (int)MIN(len, VALUE_ECHO_MAX), start);
                        return -EINVAL;
                }
                if (n == CONFIG_MAX_SITES) {
                        seterr(msg, msglen, "more than %d availability zones", CONFIG_MAX_SITES);
                        return -EINVAL;
                }
                memcpy(name, start, len);
                name[len] = '\0';
                if (strcmp(name, "none") == 0) {
                        seterr(msg, msglen,
                               "'none' (an API-only node) stands alone, it is not a zone name");
                        return -EINVAL;
                }
                for (int i = 0; i < n; i++) {
                        if (strcmp(next[i].name, name) == 0) {
                                seterr(msg, msglen, "availability zone '%s' is listed twice", name);
                                return -EINVAL;
                        }
                }
                site_default(&next[n], name, n);
                int old = find_site(c, name);
                if (old >= 0) {
                        const struct site_cfg *o = &c->sites[old];
                        if (o->nbd_set) {
                                memcpy(next[n].nbd_host, o->nbd_host, sizeof(o->nbd_host));
                                next[n].nbd_port = o->nbd_port;
                                next[n].nbd_set = true;
                        }
                        memcpy(next[n].dir, o->dir, sizeof(o->dir));
                }
                n++;
                if (!comma)
                        break;
                p = comma + 1;
        }
        memcpy(c->sites, next, sizeof(next[0]) * (size_t)n);
        c->nsites = n;
        return 0;
}

/* ---------------------------------------------------------------- keys */

enum default_key {
        K_DATA_DIR,
        K_LISTEN,
        K_AZS,
        K_CHUNK,
        K_HTTP_THREADS,
        K_NBD_THREADS,
        K_METRICS_PUBLIC,
        K_LOG_LEVEL,
        K_DB,
        K_TOKENS,
        /* NBD TLS */
        K_NBD_TLS,
        K_NBD_TLS_CERT,
        K_NBD_TLS_KEY,
        K_NBD_TLS_CA,
        K_NBD_TLS_VERIFY,
        /* HTTP hardening */
        K_HTTP_MAX_CONNS,
        K_HTTP_MAX_CONNS_PER_IP,
        K_HTTP_TIMEOUT,
        K_API_CACHE_ENTRIES,
        K_API_CACHE_MIB,
        K_TLS_CERT,
        K_TLS_KEY,
        /* quotas and capacity */
        K_QUOTA_VOLUMES,
        K_QUOTA_GIGABYTES,
        K_CAPACITY_OVERCOMMIT,
        /* NBD bounds */
        K_NBD_CONN_BUDGET,
        K_NBD_TOTAL_BUDGET,
        K_NBD_HANDSHAKE_TIMEOUT,
        K_NBD_IDLE_TIMEOUT,
        K_NBD_SEND_TIMEOUT,
        K_NBD_MAX_CONNS,
        K_NBD_MAX_CONNS_PER_ADDR,
        /* nodes */
        K_NODE_NAME,
        K_CLUSTER_KEY_FILE,
        K_INTERNAL_URL,
        K_LEASE_MS,
        K_LINK_TIMEOUT,
        K_AUTO_RESYNC,
        K__COUNT
};

static const char *const default_keys[K__COUNT] = {
    [K_DATA_DIR] = "data_dir",
    [K_LISTEN] = "listen",
    [K_AZS] = "availability_zones",
    [K_CHUNK] = "chunk_size",
    [K_HTTP_THREADS] = "http_threads",
    [K_NBD_THREADS] = "nbd_threads",
    [K_METRICS_PUBLIC] = "metrics_public",
    [K_LOG_LEVEL] = "log_level",
    [K_DB] = "db",
    [K_TOKENS] = "tokens",
    /* NBD TLS */
    [K_NBD_TLS] = "nbd_tls",
    [K_NBD_TLS_CERT] = "nbd_tls_cert",
    [K_NBD_TLS_KEY] = "nbd_tls_key",
    [K_NBD_TLS_CA] = "nbd_tls_ca",
    [K_NBD_TLS_VERIFY] = "nbd_tls_verify_peer",
    /* HTTP hardening */
    [K_HTTP_MAX_CONNS] = "http_max_connections",
    [K_HTTP_MAX_CONNS_PER_IP] = "http_max_connections_per_ip",
    [K_HTTP_TIMEOUT] = "http_connection_timeout",
    [K_API_CACHE_ENTRIES] = "api_cache_entries",
    [K_API_CACHE_MIB] = "api_cache_mib",
    [K_TLS_CERT] = "tls_cert",
    [K_TLS_KEY] = "tls_key",
    [K_QUOTA_VOLUMES] = "quota_volumes",
    [K_QUOTA_GIGABYTES] = "quota_gigabytes",
    [K_CAPACITY_OVERCOMMIT] = "capacity_overcommit",
    /* NBD bounds */
    [K_NBD_CONN_BUDGET] = "nbd_connection_budget",
    [K_NBD_TOTAL_BUDGET] = "nbd_total_budget",
    [K_NBD_HANDSHAKE_TIMEOUT] = "nbd_handshake_timeout",
    [K_NBD_IDLE_TIMEOUT] = "nbd_idle_timeout",
    [K_NBD_SEND_TIMEOUT] = "nbd_send_timeout",
    [K_NBD_MAX_CONNS] = "nbd_max_connections",
    [K_NBD_MAX_CONNS_PER_ADDR] = "nbd_max_connections_per_address",
    /* nodes */
    [K_NODE_NAME] = "node_name",
    [K_CLUSTER_KEY_FILE] = "cluster_key_file",
    [K_INTERNAL_URL] = "internal_url",
    [K_LEASE_MS] = "lease_ms",
    [K_LINK_TIMEOUT] = "link_timeout",
    [K_AUTO_RESYNC] = "auto_resync",
};

enum site_key { SK_NBD_LISTEN, SK_DIR, SK__COUNT };
static const char *const site_keys[SK__COUNT] = {[SK_NBD_LISTEN] = "nbd_listen", [SK_DIR] = "dir"};

static int lookup(const char *const *names, int n, const char *key)
{
        for (int i = 0; i < n; i++)
                if (strcmp(names[i], key) == 0)
                        return i;
        return -1;
}

static int apply_default(struct evsrep_config *c, enum default_key k, const char *v, char *msg,
                         size_t msglen)
{
        switch (k) {
        case K_DATA_DIR:
                return parse_path(v, c->data_dir, msg, msglen);
        case K_DB:
                return parse_path(v, c->db_path, msg, msglen);
        case K_TOKENS:
                return parse_path(v, c->tokens_path, msg, msglen);
        case K_LISTEN:
                return parse_listen(v, c->listen_host, &c->listen_port, msg, msglen);
        case K_AZS:
                return set_azs(c, v, msg, msglen);
        case K_CHUNK:
                return parse_chunk(v, &c->chunk_bytes, msg, msglen);
        case K_HTTP_THREADS:
                return parse_threads(v, &c->http_threads, msg, msglen);
        case K_NBD_THREADS:
                return parse_threads(v, &c->nbd_threads, msg, msglen);
        case K_METRICS_PUBLIC:
                return parse_bool(v, &c->metrics_public, msg, msglen);
        case K_LOG_LEVEL:
                return parse_log_level(v, &c->log_level, msg, msglen);
        /* NBD TLS */
        case K_NBD_TLS:
                return parse_nbd_tls(v, &c->nbd_tls, msg, msglen);
        case K_NBD_TLS_CERT:
                return parse_path(v, c->nbd_tls_cert, msg, msglen);
        case K_NBD_TLS_KEY:
                return parse_path(v, c->nbd_tls_key, msg, msglen);
        case K_NBD_TLS_CA:
                return parse_path(v, c->nbd_tls_ca, msg, msglen);
        case K_NBD_TLS_VERIFY:
                return parse_bool(v, &c->nbd_tls_verify_peer, msg, msglen);
        /* HTTP hardening */
        case K_HTTP_MAX_CONNS:
                return parse_int_range(v, 1, HTTP_CONNS_MAX, &c->http_max_conns, msg, msglen);
        case K_HTTP_MAX_CONNS_PER_IP:
                return parse_int_range(v, 1, HTTP_CONNS_MAX, &c->http_max_conns_per_ip, msg,
                                       msglen);
        case K_HTTP_TIMEOUT:
                return parse_int_range(v, 1, HTTP_TIMEOUT_MAX, &c->http_timeout_sec, msg, msglen);
        case K_API_CACHE_ENTRIES:
                return parse_int_range(v, 0, 65536, &c->api_cache_entries, msg, msglen);
        case K_API_CACHE_MIB:
                return parse_int_range(v, 1, 1024, &c->api_cache_mib, msg, msglen);
        case K_TLS_CERT:
                return parse_path(v, c->tls_cert, msg, msglen);
        case K_TLS_KEY:
                return parse_path(v, c->tls_key, msg, msglen);
        case K_QUOTA_VOLUMES:
                return parse_quota(v, &c->quota_volumes, msg, msglen);
        case K_QUOTA_GIGABYTES:
                return parse_quota(v, &c->quota_gigabytes, msg, msglen);
        case K_CAPACITY_OVERCOMMIT:
                return parse_overcommit(v, &c->capacity_overcommit, msg, msglen);
        /* NBD bounds */
        case K_NBD_CONN_BUDGET:
                return parse_budget(v, &c->nbd_conn_budget_bytes, msg, msglen);
        case K_NBD_TOTAL_BUDGET:
                return parse_budget(v, &c->nbd_total_budget_bytes, msg, msglen);
        case K_NBD_HANDSHAKE_TIMEOUT:
                return parse_int_range(v, 0, NBD_TIMEOUT_MAX, &c->nbd_handshake_timeout_sec, msg,
                                       msglen);
        case K_NBD_IDLE_TIMEOUT:
                return parse_int_range(v, 0, NBD_TIMEOUT_MAX, &c->nbd_idle_timeout_sec, msg,
                                       msglen);
        case K_NBD_SEND_TIMEOUT:
                return parse_int_range(v, 0, NBD_TIMEOUT_MAX, &c->nbd_send_timeout_sec, msg,
                                       msglen);
        case K_NBD_MAX_CONNS:
                return parse_int_range(v, 1, NBD_CONNS_MAX, &c->nbd_max_conns, msg, msglen);
        case K_NBD_MAX_CONNS_PER_ADDR:
                return parse_int_range(v, 1, NBD_CONNS_MAX, &c->nbd_max_conns_per_addr, msg,
                                       msglen);
        /* nodes */
        case K_NODE_NAME:
                return parse_node_name(v, c->node_name, sizeof(c->node_name), msg, msglen);
        case K_CLUSTER_KEY_FILE:
                return parse_path(v, c->cluster_key_path, msg, msglen);
        case K_INTERNAL_URL:
                return parse_internal_url(v, c->internal_url, sizeof(c->internal_url), msg, msglen);
        case K_LEASE_MS:
                return parse_int_range(v, LEASE_MS_MIN, LEASE_MS_MAX, &c->lease_ms, msg, msglen);
        case K_LINK_TIMEOUT:
                return parse_int_range(v, 1, 600, &c->link_timeout_sec, msg, msglen);
        case K_AUTO_RESYNC:
                return parse_bool(v, &c->auto_resync, msg, msglen);
        case K__COUNT:
                break;
        }
        seterr(msg, msglen, "internal error: key %d", (int)k);
        return -EINVAL;
}

static int apply_site(struct site_cfg *s, enum site_key k, const char *v, char *msg, size_t msglen)
{
        switch (k) {
        case SK_NBD_LISTEN:
                if (parse_listen(v, s->nbd_host, &s->nbd_port, msg, msglen) < 0)
                        return -EINVAL;
                s->nbd_set = true;
                return 0;
        case SK_DIR:
                return parse_path(v, s->dir, msg, msglen);
        case SK__COUNT:
                break;
        }
        seterr(msg, msglen, "internal error: key %d", (int)k);
        return -EINVAL;
}

/* ---------------------------------------------------------------- INI */

void config_defaults(struct evsrep_config *c)
{
        memset(c, 0, sizeof(*c));
        snprintf(c->data_dir, sizeof(c->data_dir), "./data");
        snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
        c->listen_port = 8776;
        site_default(&c->sites[0], "az1", 0);
        site_default(&c->sites[1], "az2", 1);
        c->nsites = 2;
        c->chunk_bytes = 64 * 1024;
        c->http_threads = 8;
        c->nbd_threads = 16;
        c->metrics_public = false;
        c->log_level = LOG_LVL_INFO;
        c->nbd_tls = NBD_TLS_CFG_AUTO; /* NBD TLS: decided in config_finalize */
        /* HTTP hardening: one client address holds at most half of one HTTP
         * thread's share (libmicrohttpd splits the total among the
         * threads: 2048 / 8 = 256 each), yet a busy client (a CI runner, a
         * Terraform apply with many resources) is not turned away; an idle
         * connection is closed after 30 s. */
        c->http_max_conns = 2048;
        c->http_max_conns_per_ip = 64;
        c->http_timeout_sec = 30;
        /* The API reply cache (docs/design/control-plane.md "Reply cache"). */
        c->api_cache_entries = 256;
        c->api_cache_mib = 8;
        /* Finite: no tenant fills a site by default (issue: unlimited
         * volumes of up to 32 TiB each). */
        c->quota_volumes = 1000;
        c->quota_gigabytes = 102400;
        c->capacity_overcommit = 20.0;
        /* NBD bounds: the same values as nbd_limits_default (nbd/server.c),
         * restated because config does not link the NBD server. */
        c->nbd_conn_budget_bytes = 64ull << 20;
        c->nbd_total_budget_bytes = 512ull << 20;
        c->nbd_handshake_timeout_sec = 30;
        c->nbd_idle_timeout_sec = 0;
        c->nbd_send_timeout_sec = 60;
        c->nbd_max_conns = 1024;
        c->nbd_max_conns_per_addr = 128;
        snprintf(c->node_name, sizeof(c->node_name), "local");
        c->lease_ms = 12000;
        c->link_timeout_sec = 5;
        c->auto_resync = true;
}

static bool is_space(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static char *trim(char *s)
{
        size_t n;

        while (is_space(*s))
                s++;
        n = strlen(s);
        while (n > 0 && is_space(s[n - 1]))
                s[--n] = '\0';
        return s;
}

/* Cut an inline comment: ';' or '#' at the start or after whitespace. */
static void cut_comment(char *s)
{
        for (char *p = s; *p; p++) {
                if ((*p == ';' || *p == '#') && (p == s || is_space(p[-1]))) {
                        *p = '\0';
                        return;
                }
        }
}

struct ini_state {
        /* pass 1: the [DEFAULT] keys (and all syntax); pass 2: [az:*] keys,
         * once the AZ set is known wherever in the file it was given. */
        int pass;
        int section; /* -2 none yet, -1 DEFAULT, else site index (pass 2) or 0 */
        bool in_az;
        bool skip; /* section not handled in this pass */
        int default_line;
        int default_key_line[K__COUNT];
        int site_line[CONFIG_MAX_SITES];
        int site_key_line[CONFIG_MAX_SITES][SK__COUNT];
};

static int ini_line(struct evsrep_config *c, struct ini_state *st, int lineno, char *line,
                    char *err, size_t errlen)
{
        char msg[512];
        char *s, *eq, *key, *val;

        cut_comment(line);
        s = trim(line);
        if (*s == '\0')
                return 0;
        if (*s == '[') {
                size_t n = strlen(s);
                char *name;

                if (n < 3 || s[n - 1] != ']') {
                        seterr(err, errlen, "line %d: malformed section header '%.*s'", lineno,
                               VALUE_ECHO_MAX, s);
                        return -EINVAL;
                }
                s[n - 1] = '\0';
                name = trim(s + 1);
                if (strcmp(name, "DEFAULT") == 0) {
                        if (st->pass == 1 && st->default_line) {
                                seterr(err, errlen,
                                       "line %d: section [DEFAULT] appears twice (first on line "
                                       "%d)",
                                       lineno, st->default_line);
                                return -EINVAL;
                        }
                        st->default_line = lineno;
                        st->section = -1;
                        st->in_az = false;
                        st->skip = st->pass != 1;
                        return 0;
                }
                if (strncmp(name, "az:", 3) == 0) {
                        const char *az = name + 3;
                        int idx;

                        if (!az_name_valid(az, strlen(az))) {
                                seterr(err, errlen,
                                       "line %d: [az:%.*s]: not a valid availability zone name "
                                       "(1..63 characters of a-z, 0-9, '-', '_')",
                                       lineno, VALUE_ECHO_MAX, az);
                                return -EINVAL;
                        }
                        st->in_az = true;
                        st->section = 0;
                        st->skip = st->pass != 2;
                        if (st->pass != 2)
                                return 0;
                        idx = find_site(c, az);
                        if (idx < 0) {
                                seterr(err, errlen,
                                       "line %d: section [az:%s] names an availability zone that "
                                       "is not in availability_zones",
                                       lineno, az);
                                return -EINVAL;
                        }
                        if (st->site_line[idx]) {
                                seterr(err, errlen,
                                       "line %d: section [az:%s] appears twice (first on line "
                                       "%d)",
                                       lineno, az, st->site_line[idx]);
                                return -EINVAL;
                        }
                        st->site_line[idx] = lineno;
                        st->section = idx;
                        return 0;
                }
                seterr(err, errlen,
                       "line %d: unknown section [%.*s] (expected [DEFAULT] or [az:NAME])", lineno,
                       VALUE_ECHO_MAX, name);
                return -EINVAL;
        }

        eq = strchr(s, '=');
        if (!eq) {
                seterr(err, errlen, "line %d: expected 'key = value', got '%.*s'", lineno,
                       VALUE_ECHO_MAX, s);
                return -EINVAL;
        }
        *eq = '\0';
        key = trim(s);
        val = trim(eq + 1);
        if (*key == '\0') {
                seterr(err, errlen, "line %d: missing key before '='", lineno);
                return -EINVAL;
        }
        if (st->section == -2) {
                seterr(err, errlen,
                       "line %d: key '%.*s' outside any section (start the file with "
                       "[DEFAULT])",
                       lineno, VALUE_ECHO_MAX, key);
                return -EINVAL;
        }
        if (!st->in_az) {
                int k = lookup(default_keys, K__COUNT, key);

                if (k < 0) {
                        seterr(err, errlen, "line %d: unknown key '%.*s' in [DEFAULT]", lineno,
                               VALUE_ECHO_MAX, key);
                        return -EINVAL;
                }
                if (st->skip)
                        return 0;
                if (st->default_key_line[k]) {
                        seterr(err, errlen,
                               "line %d: key '%s' set twice in [DEFAULT] (first on line %d)",
                               lineno, key, st->default_key_line[k]);
                        return -EINVAL;
                }
                st->default_key_line[k] = lineno;
                if (apply_default(c, (enum default_key)k, val, msg, sizeof(msg)) < 0) {
                        seterr(err, errlen, "line %d: key '%s': %s", lineno, key, msg);
                        return -EINVAL;
                }
                return 0;
        }

        int k = lookup(site_keys, SK__COUNT, key);
        if (k < 0) {
                seterr(err, errlen, "line %d: unknown key '%.*s' in an [az:NAME] section", lineno,
                       VALUE_ECHO_MAX, key);
                return -EINVAL;
        }
        if (st->skip)
                return 0;
        if (st->site_key_line[st->section][k]) {
                seterr(err, errlen, "line %d: key '%s' set twice in [az:%s] (first on line %d)",
                       lineno, key, c->sites[st->section].name, st->site_key_line[st->section][k]);
                return -EINVAL;
        }
        st->site_key_line[st->section][k] = lineno;
        if (apply_site(&c->sites[st->section], (enum site_key)k, val, msg, sizeof(msg)) < 0) {
                seterr(err, errlen, "line %d: key '%s' in [az:%s]: %s", lineno, key,
                       c->sites[st->section].name, msg);
                return -EINVAL;
        }
        return 0;
}

static int ini_pass(struct evsrep_config *c, struct ini_state *st, const char *text, size_t len,
                    char *line, char *err, size_t errlen)
{
        size_t pos = 0;
        int lineno = 0;

        /* A UTF-8 byte order mark, as some editors write, is not content. */
        if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                pos = 3;
        while (pos < len) {
                const char *start = text + pos;
                const char *nl = memchr(start, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - start) : len - pos;
                int r;

                lineno++;
                pos += n + (nl ? 1 : 0);
                if (n > INI_LINE_MAX) {
                        seterr(err, errlen, "line %d: longer than %d bytes", lineno, INI_LINE_MAX);
                        return -EINVAL;
                }
                if (memchr(start, '\0', n)) {
                        seterr(err, errlen, "line %d: contains a NUL byte", lineno);
                        return -EINVAL;
                }
                memcpy(line, start, n);
                line[n] = '\0';
                r = ini_line(c, st, lineno, line, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_parse_ini(struct evsrep_config *c, const char *text, size_t len, char *err,
                     size_t errlen)
{
        struct evsrep_config *next;
        struct ini_state *st;
        char *line;
        int r = -ENOMEM;

        seterr(err, errlen, "%s", "");
        if (!text && len)
                return -EINVAL;
        next = malloc(sizeof(*next));
        st = calloc(1, sizeof(*st));
        line = malloc(INI_LINE_MAX + 1);
        if (!next || !st || !line) {
                seterr(err, errlen, "out of memory");
                goto out;
        }
        memcpy(next, c, sizeof(*next));
        for (int pass = 1; pass <= 2; pass++) {
                st->pass = pass;
                st->section = -2;
                st->in_az = false;
                st->skip = false;
                r = ini_pass(next, st, text, len, line, err, errlen);
                if (r < 0)
                        goto out;
        }
        memcpy(c, next, sizeof(*c));
        r = 0;
out:
        free(next);
        free(st);
        free(line);
        return r;
}

int config_load_file(struct evsrep_config *c, const char *path, char *err, size_t errlen)
{
        char inner[1024];
        struct stat sb;
        FILE *f;
        char *buf;
        size_t n;
        int r;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                seterr(err, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) {
                fclose(f);
                seterr(err, errlen, "%s: not a regular file", path);
                return -EINVAL;
        }
        buf = malloc(INI_FILE_MAX + 1);
        if (!buf) {
                fclose(f);
                seterr(err, errlen, "%s: out of memory", path);
                return -ENOMEM;
        }
        n = fread(buf, 1, INI_FILE_MAX + 1, f);
        if (ferror(f)) {
                r = -EIO;
                seterr(err, errlen, "%s: read error", path);
        } else if (n > INI_FILE_MAX) {
                r = -EINVAL;
                seterr(err, errlen, "%s: larger than %d bytes", path, INI_FILE_MAX);
        } else {
                r = config_parse_ini(c, buf, n, inner, sizeof(inner));
                if (r < 0)
                        seterr(err, errlen, "%s: %s", path, inner);
        }
        fclose(f);
        free(buf);
        return r;
}

/* ---------------------------------------------------------------- flags */

/* "AZ=VALUE" for the per-site flags. */
static int site_flag(struct evsrep_config *c, const char *key, enum site_key k, const char *value,
                     char *err, size_t errlen)
{
        const char *eq = strchr(value, '=');
        char az[64], msg[512];
        size_t n;
        int idx;

        n = eq ? (size_t)(eq - value) : 0;
        if (!eq || !az_name_valid(value, n)) {
                seterr(err, errlen, "%s: expected AZ=%s, got '%.*s'", key,
                       k == SK_DIR ? "PATH" : "HOST:PORT", VALUE_ECHO_MAX, value);
                return -EINVAL;
        }
        memcpy(az, value, n);
        az[n] = '\0';
        idx = find_site(c, az);
        if (idx < 0) {
                seterr(err, errlen, "%s: unknown availability zone '%s'", key, az);
                return -EINVAL;
        }
        /* Validate into a copy so a bad value leaves the site untouched. */
        struct site_cfg tmp = c->sites[idx];
        if (apply_site(&tmp, k, eq + 1, msg, sizeof(msg)) < 0) {
                seterr(err, errlen, "%s: %s", key, msg);
                return -EINVAL;
        }
        c->sites[idx] = tmp;
        return 0;
}

int config_set(struct evsrep_config *c, const char *key, const char *value, char *err,
               size_t errlen)
{
        char msg[512];
        int k;

        seterr(err, errlen, "%s", "");
        if (!key || !value) {
                seterr(err, errlen, "missing key or value");
                return -EINVAL;
        }
        k = lookup(site_keys, SK__COUNT, key);
        if (k >= 0)
                return site_flag(c, key, (enum site_key)k, value, err, errlen);
        k = lookup(default_keys, K__COUNT, key);
        if (k < 0) {
                seterr(err, errlen, "unknown setting '%.*s'", VALUE_ECHO_MAX, key);
                return -EINVAL;
        }
        struct evsrep_config *next = malloc(sizeof(*next));
        if (!next) {
                seterr(err, errlen, "out of memory");
                return -ENOMEM;
        }
        memcpy(next, c, sizeof(*next));
        if (apply_default(next, (enum default_key)k, value, msg, sizeof(msg)) < 0) {
                seterr(err, errlen, "%s: %s", key, msg);
                free(next);
                return -EINVAL;
        }
        memcpy(c, next, sizeof(*c));
        free(next);
        return 0;
}

/* ---------------------------------------------------------------- finalize */

static int join(char *dst, const char *dir, const char *leaf, char *err, size_t errlen)
{
        char tmp[CONFIG_PATH_LEN];
        int n = snprintf(tmp, sizeof(tmp), "%s/%s", dir, leaf);

        if (n < 0 || (size_t)n >= sizeof(tmp)) {
                seterr(err, errlen, "data_dir is too long to hold '%s'", leaf);
                return -EINVAL;
        }
        memcpy(dst, tmp, (size_t)n + 1);
        return 0;
}

static bool bounded(const char *s, size_t cap)
{
        return memchr(s, '\0', cap) != NULL;
}

void config_db_display(const char *db, char *out, size_t outlen)
{
        const char *auth = strstr(db, "://");
        const char *at, *colon;

        /* postgresql://user:password@host/...: hide what is between the
         * first ':' of the user info and its '@'. */
        if ((strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0) &&
            auth && (at = strpbrk(auth + 3, "@/?")) && *at == '@' &&
            (colon = memchr(auth + 3, ':', (size_t)(at - auth - 3)))) {
                snprintf(out, outlen, "%.*s:***%s", (int)(colon - db), db, at);
                return;
        }
        snprintf(out, outlen, "%s", db);
}

int config_finalize(struct evsrep_config *c, char *err, size_t errlen)
{
        seterr(err, errlen, "%s", "");
        /* The struct may have been filled by code, not only by the parser:
         * check every field as if it came from an operator. */
        if (!bounded(c->data_dir, sizeof(c->data_dir)) || c->data_dir[0] == '\0') {
                seterr(err, errlen, "data_dir: must be set");
                return -EINVAL;
        }
        if (!bounded(c->db_path, sizeof(c->db_path)) ||
            !bounded(c->tokens_path, sizeof(c->tokens_path)) ||
            !bounded(c->listen_host, sizeof(c->listen_host))) {
                seterr(err, errlen, "a path or host is not terminated");
                return -EINVAL;
        }
        if (c->db_path[0] == '\0' && join(c->db_path, c->data_dir, "evsrep.db", err, errlen) < 0)
                return -EINVAL;
        if (c->tokens_path[0] == '\0' &&
            join(c->tokens_path, c->data_dir, "tokens", err, errlen) < 0)
                return -EINVAL;
        if (strcmp(c->db_path, c->tokens_path) == 0) {
                seterr(err, errlen, "db and tokens are the same file: %s", c->db_path);
                return -EINVAL;
        }
        if (c->listen_host[0] == '\0' || c->listen_port < 0 || c->listen_port > 65535) {
                seterr(err, errlen, "listen: needs HOST:PORT with a port in 0..65535");
                return -EINVAL;
        }
        if (c->chunk_bytes < CHUNK_MIN || c->chunk_bytes > CHUNK_MAX ||
            (c->chunk_bytes & (c->chunk_bytes - 1)) != 0) {
                seterr(err, errlen, "chunk_size: %u is not a power of two between %u and %u",
                       c->chunk_bytes, CHUNK_MIN, CHUNK_MAX);
                return -EINVAL;
        }
        if (c->http_threads < 1 || c->http_threads > THREADS_MAX || c->nbd_threads < 1 ||
            c->nbd_threads > THREADS_MAX) {
                seterr(err, errlen, "http_threads and nbd_threads must be in 1..%d", THREADS_MAX);
                return -EINVAL;
        }
        /* HTTP hardening */
        if (c->http_max_conns < 1 || c->http_max_conns > HTTP_CONNS_MAX ||
            c->http_max_conns_per_ip < 1 || c->http_max_conns_per_ip > c->http_max_conns) {
                seterr(err, errlen,
                       "http_max_connections_per_ip (%d) must be in 1..http_max_connections "
                       "(%d), and that in 1..%d",
                       c->http_max_conns_per_ip, c->http_max_conns, HTTP_CONNS_MAX);
                return -EINVAL;
        }
        if (c->http_max_conns < c->http_threads) {
                /* libmicrohttpd gives each thread an equal share: a thread
                 * with a share of 0 would refuse every connection it takes. */
                seterr(err, errlen, "http_max_connections (%d) must be at least http_threads (%d)",
                       c->http_max_conns, c->http_threads);
                return -EINVAL;
        }
        if (c->http_timeout_sec < 1 || c->http_timeout_sec > HTTP_TIMEOUT_MAX) {
                seterr(err, errlen, "http_connection_timeout: %d is not in 1..%d",
                       c->http_timeout_sec, HTTP_TIMEOUT_MAX);
                return -EINVAL;
        }
        if (!bounded(c->tls_cert, sizeof(c->tls_cert)) ||
            !bounded(c->tls_key, sizeof(c->tls_key)) || !c->tls_cert[0] != !c->tls_key[0]) {
                seterr(err, errlen, "tls_cert and tls_key: set both (HTTPS) or neither (HTTP)");
                return -EINVAL;
        }
        /* NBD TLS: require by default off loopback; `on` there would let
         * plain clients in from the network. */
        {
                bool exposed = false;

                /* nsites is checked further down: stay inside the array. */
                for (int i = 0; i < c->nsites && i < CONFIG_MAX_SITES; i++)
                        exposed |= !loopback_host(c->sites[i].nbd_host);
                if (c->nbd_tls == NBD_TLS_CFG_AUTO)
                        c->nbd_tls = exposed ? NBD_TLS_CFG_REQUIRE : NBD_TLS_CFG_ON;
                if (exposed && c->nbd_tls == NBD_TLS_CFG_ON) {
                        seterr(err, errlen,
                               "nbd_tls = on with an NBD listener off loopback lets plain "
                               "clients in: use nbd_tls = require, or nbd_tls = off explicitly");
                        return -EINVAL;
                }
                if (!c->nbd_tls_cert[0] != !c->nbd_tls_key[0]) {
                        seterr(err, errlen, "nbd_tls_cert and nbd_tls_key: set both or neither");
                        return -EINVAL;
                }
                if (c->nbd_tls_verify_peer && (!c->nbd_tls_ca[0] || !c->nbd_tls_cert[0])) {
                        seterr(err, errlen,
                               "nbd_tls_verify_peer needs nbd_tls_ca (and nbd_tls_cert/key)");
                        return -EINVAL;
                }
        }
        /* NBD bounds */
        if (c->nbd_conn_budget_bytes < NBD_BUDGET_MIN ||
            c->nbd_conn_budget_bytes > NBD_BUDGET_MAX ||
            c->nbd_total_budget_bytes < NBD_BUDGET_MIN ||
            c->nbd_total_budget_bytes > NBD_BUDGET_MAX) {
                seterr(err, errlen,
                       "nbd_connection_budget and nbd_total_budget must be in %llu..%llu",
                       NBD_BUDGET_MIN, NBD_BUDGET_MAX);
                return -EINVAL;
        }
        if (c->nbd_total_budget_bytes < c->nbd_conn_budget_bytes) {
                seterr(err, errlen,
                       "nbd_total_budget (%llu) is smaller than nbd_connection_budget "
                       "(%llu)",
                       (unsigned long long)c->nbd_total_budget_bytes,
                       (unsigned long long)c->nbd_conn_budget_bytes);
                return -EINVAL;
        }
        if (c->nbd_handshake_timeout_sec < 0 || c->nbd_handshake_timeout_sec > NBD_TIMEOUT_MAX ||
            c->nbd_idle_timeout_sec < 0 || c->nbd_idle_timeout_sec > NBD_TIMEOUT_MAX ||
            c->nbd_send_timeout_sec < 0 || c->nbd_send_timeout_sec > NBD_TIMEOUT_MAX) {
                seterr(err, errlen, "nbd_*_timeout must be in 0..%d seconds", NBD_TIMEOUT_MAX);
                return -EINVAL;
        }
        if (c->nbd_max_conns < 1 || c->nbd_max_conns > NBD_CONNS_MAX ||
            c->nbd_max_conns_per_addr < 1 || c->nbd_max_conns_per_addr > NBD_CONNS_MAX) {
                seterr(err, errlen,
                       "nbd_max_connections and nbd_max_connections_per_address must be in "
                       "1..%d",
                       NBD_CONNS_MAX);
                return -EINVAL;
        }
        if (c->log_level < LOG_LVL_DEBUG || c->log_level > LOG_LVL_ERROR) {
                seterr(err, errlen, "log_level: %d is out of range", c->log_level);
                return -EINVAL;
        }
        if (c->quota_volumes < -1 || c->quota_volumes > QUOTA_MAX || c->quota_gigabytes < -1 ||
            c->quota_gigabytes > QUOTA_MAX) {
                seterr(err, errlen, "quota_volumes and quota_gigabytes must be -1 or 0..%lld",
                       (long long)QUOTA_MAX);
                return -EINVAL;
        }
        if (!(c->capacity_overcommit >= 0 && c->capacity_overcommit <= OVERCOMMIT_MAX)) {
                seterr(err, errlen, "capacity_overcommit must be in 0..%g", OVERCOMMIT_MAX);
                return -EINVAL;
        }
        /* nodes */
        if (!bounded(c->node_name, sizeof(c->node_name)) || !node_name_valid(c->node_name)) {
                seterr(err, errlen, "node_name: must be 1..63 letters, digits, '.', '_' or '-'");
                return -EINVAL;
        }
        if (c->lease_ms < LEASE_MS_MIN || c->lease_ms > LEASE_MS_MAX) {
                seterr(err, errlen, "lease_ms: %d is not in %d..%d", c->lease_ms, LEASE_MS_MIN,
                       LEASE_MS_MAX);
                return -EINVAL;
        }
        if (!bounded(c->cluster_key_path, sizeof(c->cluster_key_path)) ||
            !bounded(c->internal_url, sizeof(c->internal_url))) {
                seterr(err, errlen, "cluster_key_file or internal_url is not terminated");
                return -EINVAL;
        }
        if (c->cluster_key_path[0] == '\0' &&
            join(c->cluster_key_path, c->data_dir, "cluster.key", err, errlen) < 0)
                return -EINVAL;
        if (strcmp(c->cluster_key_path, c->tokens_path) == 0 ||
            strcmp(c->cluster_key_path, c->db_path) == 0) {
                seterr(err, errlen, "cluster_key_file is also the tokens or db file: %s",
                       c->cluster_key_path);
                return -EINVAL;
        }
        if (c->internal_url[0] == '\0' || c->internal_url_auto) {
                bool v6 = strchr(c->listen_host, ':') != NULL;

                snprintf(c->internal_url, sizeof(c->internal_url), "%s://%s%s%s:%d",
                         c->tls_cert[0] ? "https" : "http", v6 ? "[" : "", c->listen_host,
                         v6 ? "]" : "", c->listen_port);
                c->internal_url_auto = true;
        } else if (!internal_url_valid(c->internal_url)) {
                seterr(err, errlen, "internal_url: not an http:// or https:// URL with a host");
                return -EINVAL;
        }
        if (c->nsites < 0 || c->nsites > CONFIG_MAX_SITES) {
                seterr(err, errlen, "availability_zones: need 1..%d zones, have %d",
                       CONFIG_MAX_SITES, c->nsites);
                return -EINVAL;
        }
        if (c->nsites == 0 && strncmp(c->db_path, "postgresql://", 13) != 0 &&
            strncmp(c->db_path, "postgres://", 11) != 0) {
                seterr(err, errlen,
                       "availability_zones = none (an API-only node) needs a shared store: "
                       "db = postgresql://...");
                return -EINVAL;
        }
        for (int i = 0; i < c->nsites; i++) {
                struct site_cfg *s = &c->sites[i];

                if (!bounded(s->name, sizeof(s->name)) ||
                    !az_name_valid(s->name, strlen(s->name))) {
                        seterr(err, errlen, "availability zone %d has an invalid name", i + 1);
                        return -EINVAL;
                }
                if (!bounded(s->dir, sizeof(s->dir)) ||
                    !bounded(s->nbd_host, sizeof(s->nbd_host)) || s->nbd_host[0] == '\0' ||
                    s->nbd_port < 0 || s->nbd_port > 65535) {
                        seterr(err, errlen,
                               "[az:%s] nbd_listen: needs HOST:PORT with a port in "
                               "0..65535",
                               s->name);
                        return -EINVAL;
                }
                if (s->dir[0] == '\0' && join(s->dir, c->data_dir, s->name, err, errlen) < 0)
                        return -EINVAL;
                /* Ports must differ even across hosts: 0.0.0.0 and 127.0.0.1
                 * collide on one port, and checking host equivalence is not
                 * worth a confusing bind failure at start. */
                if (s->nbd_port != 0 && s->nbd_port == c->listen_port) {
                        seterr(err, errlen,
                               "[az:%s] nbd_listen: port %d is also the HTTP listen port", s->name,
                               s->nbd_port);
                        return -EINVAL;
                }
                for (int j = 0; j < i; j++) {
                        const struct site_cfg *o = &c->sites[j];

                        if (strcmp(o->name, s->name) == 0) {
                                seterr(err, errlen, "availability zone '%s' is listed twice",
                                       s->name);
                                return -EINVAL;
                        }
                        if (s->nbd_port != 0 && o->nbd_port == s->nbd_port) {
                                seterr(err, errlen,
                                       "[az:%s] nbd_listen: port %d is also used by [az:%s]",
                                       s->name, s->nbd_port, o->name);
                                return -EINVAL;
                        }
                        if (strcmp(o->dir, s->dir) == 0) {
                                seterr(err, errlen,
                                       "[az:%s] dir: %s is also the directory of [az:%s]", s->name,
                                       s->dir, o->name);
                                return -EINVAL;
                        }
                }
        }
        return 0;
}

const struct site_cfg *config_site(const struct evsrep_config *c, const char *az)
{
        int i;

        if (!az)
                return NULL;
        i = find_site(c, az);
        return i < 0 ? NULL : &c->sites[i];
}
