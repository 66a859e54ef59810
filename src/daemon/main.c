/* evsrepd: flags and config, start order, signals, stop order.
 *
 * Start: config -> data dirs -> store -> auth -> NBD listeners (their real
 * ports are needed for connection info) -> service (reopens and exports
 * volumes, resumes replication) -> HTTP. Stop is the reverse, so no
 * request reaches a half-closed layer: HTTP stops accepting and finishes its
 * requests, NBD connections close, the service flushes the engine, the store
 * closes. */
#include "api/api.h"
#include "auth/auth.h"
#include "cluster/cluster.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/replygen.h"
#include "common/util.h"
#include "config/config.h"
#include "nbd/nbd.h"
#include "nbd/tls.h"
#include "service/service.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: evsrepd [OPTIONS]\n"
                "\n"
                "evsrep block-storage replication daemon: EVS volumes in several availability\n"
                "zones, exported over NBD, mirrored by replication pairs and consistency groups,\n"
                "managed through the EVS v2 / Cinder v2 HTTP API.\n"
                "\n"
                "Options (flags override the config file):\n"
                "  -c, --config FILE          INI config file (cinder.conf style)\n"
                "  -d, --data-dir DIR         data directory (default ./data): DIR/evsrep.db,\n"
                "                             DIR/<az>/ volume files, DIR/tokens\n"
                "  -l, --listen HOST:PORT     HTTP API address (default 127.0.0.1:8776)\n"
                "  -n, --nbd-listen AZ=HOST:PORT\n"
                "                             NBD address of a zone (repeatable; defaults\n"
                "                             az1=127.0.0.1:10809, az2=127.0.0.1:10810)\n"
                "      --availability-zones A,B  the set of zones (default az1,az2)\n"
                "      --chunk-size BYTES     replication bitmap chunk (default 65536)\n"
                "      --log-level LEVEL      debug, info, warn or error (default info)\n"
                "      --check-config         validate the configuration, print it, exit\n"
                "  -h, --help                 this text\n"
                "  -V, --version              print the version\n"
                "\n"
                "Port 0 binds a free port; the bound ports are written to DIR/evsrepd.ports.\n");
}

enum { OPT_CHECK = 256, OPT_AZS, OPT_CHUNK, OPT_LOGLEVEL };

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"data-dir", required_argument, NULL, 'd'},
    {"listen", required_argument, NULL, 'l'},
    {"nbd-listen", required_argument, NULL, 'n'},
    {"availability-zones", required_argument, NULL, OPT_AZS},
    {"chunk-size", required_argument, NULL, OPT_CHUNK},
    {"log-level", required_argument, NULL, OPT_LOGLEVEL},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Two passes: the config file first (wherever --config appears), then every
 * other flag over it. Returns 0, 1 (exit 0 now: help/version) or -1 (error). */
static int parse_args(int argc, char **argv, struct evsrep_config *cfg, bool *check_only)
{
        char err[512];
        int c;

        config_defaults(cfg);
        opterr = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:d:l:n:hV", long_opts, NULL)) != -1) {
                if (c == 'c' && config_load_file(cfg, optarg, err, sizeof(err)) < 0) {
                        fprintf(stderr, "evsrepd: %s\n", err);
                        return -1;
                }
        }
        opterr = 1;
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:d:l:n:hV", long_opts, NULL)) != -1) {
                const char *key = NULL;

                switch (c) {
                case 'c':
                        continue;
                case 'd':
                        key = "data_dir";
                        break;
                case 'l':
                        key = "listen";
                        break;
                case 'n':
                        key = "nbd_listen";
                        break;
                case OPT_AZS:
                        key = "availability_zones";
                        break;
                case OPT_CHUNK:
                        key = "chunk_size";
                        break;
                case OPT_LOGLEVEL:
                        key = "log_level";
                        break;
                case OPT_CHECK:
                        *check_only = true;
                        continue;
                case 'h':
                        usage(stdout);
                        return 1;
                case 'V':
                        printf("evsrepd %s%s\n", EVSREP_VERSION,
                               FAULT_INJECTION_BUILT ? " +fault-injection (test build)" : "");
                        return 1;
                default:
                        usage(stderr);
                        return -1;
                }
                if (config_set(cfg, key, optarg, err, sizeof(err)) < 0) {
                        fprintf(stderr, "evsrepd: %s\n", err);
                        return -1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "evsrepd: unexpected argument '%s' (see --help)\n", argv[optind]);
                return -1;
        }
        if (config_finalize(cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "evsrepd: %s\n", err);
                return -1;
        }
        return 0;
}

/* NBD bounds: config keys -> struct nbd_limits. */
static void nbd_limits_from_config(const struct evsrep_config *cfg, struct nbd_limits *lim)
{
        nbd_limits_default(lim);
        lim->conn_budget_bytes = cfg->nbd_conn_budget_bytes;
        lim->total_budget_bytes = cfg->nbd_total_budget_bytes;
        lim->handshake_timeout_sec = cfg->nbd_handshake_timeout_sec;
        lim->idle_timeout_sec = cfg->nbd_idle_timeout_sec;
        lim->send_timeout_sec = cfg->nbd_send_timeout_sec;
        lim->max_conns = cfg->nbd_max_conns;
        lim->max_conns_per_addr = cfg->nbd_max_conns_per_addr;
}

static void print_config(const struct evsrep_config *cfg)
{
        static const char *const log_levels[] = {
            [LOG_LVL_DEBUG] = "debug",
            [LOG_LVL_INFO] = "info",
            [LOG_LVL_WARN] = "warn",
            [LOG_LVL_ERROR] = "error",
        };
        char db[CONFIG_PATH_LEN];

        printf("availability_zones = ");
        for (int i = 0; i < cfg->nsites; i++)
                printf("%s%s", i ? ", " : "", cfg->sites[i].name);
        printf("\nlog_level = %s\n", cfg->log_level >= 0 && cfg->log_level <= LOG_LVL_ERROR
                                         ? log_levels[cfg->log_level]
                                         : "?");
        config_db_display(cfg->db_path, db, sizeof(db));
        printf("data_dir = %s\ndb = %s\ntokens = %s\nlisten = %s:%d\nchunk_size = %u\n"
               "http_threads = %d\nnbd_threads = %d\nmetrics_public = %s\n"
               "quota_volumes = %lld\nquota_gigabytes = %lld\ncapacity_overcommit = %g\n",
               cfg->data_dir, db, cfg->tokens_path, cfg->listen_host, cfg->listen_port,
               cfg->chunk_bytes, cfg->http_threads, cfg->nbd_threads,
               cfg->metrics_public ? "true" : "false", (long long)cfg->quota_volumes,
               (long long)cfg->quota_gigabytes, cfg->capacity_overcommit);
        /* HTTP hardening */
        printf("http_max_connections = %d\nhttp_max_connections_per_ip = %d\n"
               "http_connection_timeout = %d\n",
               cfg->http_max_conns, cfg->http_max_conns_per_ip, cfg->http_timeout_sec);
        if (cfg->tls_cert[0])
                printf("tls_cert = %s\ntls_key = %s\n", cfg->tls_cert, cfg->tls_key);
        /* NBD TLS */
        printf("nbd_tls = %s\n", cfg->nbd_tls == NBD_TLS_CFG_OFF  ? "off"
                                 : cfg->nbd_tls == NBD_TLS_CFG_ON ? "on"
                                                                  : "require");
        if (cfg->nbd_tls_cert[0])
                printf("nbd_tls_cert = %s\nnbd_tls_key = %s\n", cfg->nbd_tls_cert,
                       cfg->nbd_tls_key);
        if (cfg->nbd_tls_ca[0])
                printf("nbd_tls_ca = %s\nnbd_tls_verify_peer = %s\n", cfg->nbd_tls_ca,
                       cfg->nbd_tls_verify_peer ? "true" : "false");
        /* NBD bounds */
        printf("nbd_connection_budget = %llu\nnbd_total_budget = %llu\n"
               "nbd_handshake_timeout = %d\nnbd_idle_timeout = %d\nnbd_send_timeout = %d\n"
               "nbd_max_connections = %d\nnbd_max_connections_per_address = %d\n",
               (unsigned long long)cfg->nbd_conn_budget_bytes,
               (unsigned long long)cfg->nbd_total_budget_bytes, cfg->nbd_handshake_timeout_sec,
               cfg->nbd_idle_timeout_sec, cfg->nbd_send_timeout_sec, cfg->nbd_max_conns,
               cfg->nbd_max_conns_per_addr);
        /* nodes */
        printf("node_name = %s\ncluster_key_file = %s\ninternal_url = %s%s\nlease_ms = %d\n",
               cfg->node_name, cfg->cluster_key_path, cfg->internal_url,
               cfg->internal_url_auto && cfg->listen_port == 0 ? " (port set at start)" : "",
               cfg->lease_ms);
        for (int i = 0; i < cfg->nsites; i++)
                printf("[az:%s]\nnbd_listen = %s:%d\ndir = %s\n", cfg->sites[i].name,
                       cfg->sites[i].nbd_host, cfg->sites[i].nbd_port, cfg->sites[i].dir);
}

/* Written after every listener is bound, so tests and scripts that asked for
 * port 0 learn the real ports; removed at clean exit. */
static int write_ports_file(const struct evsrep_config *cfg, const char *scheme, int http_port,
                            struct nbd_server **nbd)
{
        char path[CONFIG_PATH_LEN + 32], tmp[CONFIG_PATH_LEN + 40];
        FILE *f;

        snprintf(path, sizeof(path), "%s/evsrepd.ports", cfg->data_dir);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "w");
        if (!f)
                return -errno;
        fprintf(f, "%s=%d\n", scheme, http_port); /* "http=" or, with TLS, "https=" */
        for (int i = 0; i < cfg->nsites; i++)
                fprintf(f, "nbd.%s=%d\n", cfg->sites[i].name, nbd_server_port(nbd[i]));
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                return -errno;
        return 0;
}

/* The token is a password: shown only on the start that created it (a
 * service's stdout usually ends up in the journal, where anyone with
 * journal access would read it on every start). Later starts say where it
 * is kept. Either way the banner ends with shell lines to paste: they set
 * TOKEN and PROJECT (the docs' curl examples) and EVS_URL, EVS_TOKEN and
 * EVS_PROJECT (the evsrep CLI). */
static void print_banner(const struct evsrep_config *cfg, const char *scheme, int http_port,
                         const char *token, const char *project, bool token_new)
{
        /* A wildcard listen address is reached on loopback from this host. */
        const char *host = strcmp(cfg->listen_host, "0.0.0.0") == 0 ? "127.0.0.1"
                           : strcmp(cfg->listen_host, "::") == 0    ? "[::1]"
                                                                    : cfg->listen_host;
        const char *tls = strcmp(scheme, "https") == 0 ? "--cacert <CA of tls_cert> " : "";
        bool v6 = strchr(host, ':') && host[0] != '[';

        printf("evsrepd %s ready\n", EVSREP_VERSION);
        printf("  API URL:  %s://%s%s%s:%d/v2/%s\n", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
               http_port, project);
        printf("  page:     %s://%s%s%s:%d/ui/   (log in with the token and project)\n", scheme,
               v6 ? "[" : "", host, v6 ? "]" : "", http_port);
        if (token_new)
                printf("  token:    %s   (new; stored in %s, shown only this once)\n", token,
                       cfg->tokens_path);
        else
                printf("  tokens:   %s   (not shown; the first line's token is project %s's)\n",
                       cfg->tokens_path, project);
        printf("  project:  %s\n", project);
        for (int i = 0; i < cfg->nsites; i++)
                printf("  NBD %-5s %s://%s:%d/<export_name of an os-initialize_connection>\n",
                       cfg->sites[i].name, cfg->nbd_tls == NBD_TLS_CFG_REQUIRE ? "nbds" : "nbd",
                       cfg->sites[i].nbd_host, cfg->sites[i].nbd_port);
        printf(
            "  shell:    paste these lines to set TOKEN and PROJECT (curl) and EVS_* (evsrep)\n");
        if (token_new)
                printf("export TOKEN='%s' PROJECT='%s'\n", token, project);
        else
                printf("read TOKEN PROJECT < <(grep -v '^#' '%s' | head -n 1); export TOKEN "
                       "PROJECT\n",
                       cfg->tokens_path);
        printf("export EVS_URL=%s://%s%s%s:%d EVS_TOKEN=$TOKEN EVS_PROJECT=$PROJECT\n", scheme,
               v6 ? "[" : "", host, v6 ? "]" : "", http_port);
        printf(
            "  try:      curl -s %s-H \"X-Auth-Token: $TOKEN\" %s://%s%s%s:%d/v2/$PROJECT/volumes\n"
            "            evsrep volume list      (the CLI: build/evsrep, or installed)\n",
            tls, scheme, v6 ? "[" : "", host, v6 ? "]" : "", http_port);
        fflush(stdout);
}

/* A listener could not bind: say what probably holds the port and how to
 * pick others (flags, config keys, run.sh passing its arguments on). */
static void log_port_taken(const char *what, const char *host, int port)
{
        log_error("%s: port %d on %s is taken: another evsrepd probably runs (its banner and "
                  "its DATA_DIR/evsrepd.ports name its ports; 'ss -ltnp sport = :%d' shows "
                  "the process). Stop it, or choose other ports: --listen HOST:PORT and "
                  "--nbd-listen AZ=HOST:PORT (config: listen, nbd_listen; port 0 picks a free "
                  "one), e.g. ./scripts/run.sh --data-dir ./.data2 --listen 127.0.0.1:8786 "
                  "--nbd-listen az1=127.0.0.1:10819 --nbd-listen az2=127.0.0.1:10820",
                  what, port, host, port);
}

/* One evsrepd per data directory: a second one would open the same meta
 * files and volumes and write them behind the first one's back. The lock
 * is held (fd left open) until the process exits, also on kill -9. */
static int lock_data_dir(const char *dir)
{
        char path[CONFIG_PATH_LEN + 32];
        int fd;

        snprintf(path, sizeof(path), "%s/evsrepd.lock", dir);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
                log_error("cannot open %s: %s", path, strerror(errno));
                return -errno;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                log_error("data directory %s is in use by another evsrepd (%s is locked); stop "
                          "it first or choose another --data-dir",
                          dir, path);
                close(fd);
                return -e;
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct evsrep_config cfg;
        struct store *store = NULL;
        struct auth *auth = NULL;
        struct service *svc = NULL;
        struct api_server *api = NULL;
        struct nbd_server *nbd[CONFIG_MAX_SITES] = {0};
        struct nbd_limits lim;
        struct nbd_tls *tls = NULL;
        char err[512], token[AUTH_TOKEN_MAX], project[AUTH_PROJECT_MAX];
        bool check_only = false, token_new = false;
        sigset_t sigs;
        int rc, sig, exit_code = 1;

        rc = parse_args(argc, argv, &cfg, &check_only);
        if (rc != 0)
                return rc > 0 ? 0 : 2;
        if (check_only) {
                print_config(&cfg);
                printf("configuration OK\n");
                return 0;
        }
        log_set_level((enum log_level)cfg.log_level);

        /* Every thread started below inherits this mask; main alone takes the
         * signals with sigwait, so shutdown runs in a normal thread context. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
#ifdef EVSREP_FAULT_INJECTION
        sigaddset(&sigs, SIGUSR2); /* tests: simulated power cut (docs/design/faults.md) */
#endif
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);
        umask(027);

        if ((rc = fault_configure(getenv("EVSREP_FAULT"))) < 0) {
                log_error("EVSREP_FAULT: %s", rc == -ENOTSUP ? "this build has no fault injection "
                                                               "(-DEVSREP_FAULT_INJECTION=ON)"
                                                             : "cannot parse the rules");
                return 2;
        }
        if ((rc = util_mkdir_p(cfg.data_dir)) < 0) {
                log_error("cannot create data dir %s: %s", cfg.data_dir, strerror(-rc));
                return 1;
        }
        if ((rc = lock_data_dir(cfg.data_dir)) < 0)
                return 1;
        if (store_open(cfg.db_path, &store, err, sizeof(err)) < 0) {
                log_error("store: %s", err);
                return 1;
        }
        if (auth_open(cfg.tokens_path, &auth, token, sizeof(token), project, sizeof(project),
                      &token_new, err, sizeof(err)) < 0) {
                log_error("auth: %s", err);
                goto out;
        }
        /* The service first: every volume is exported with its role (the DR
         * side read-only) and every attachment published before any NBD
         * listener accepts (docs/design/nbd.md "Start-up order"). */
        /* Claim this node's AZs in the store (refused while another node
         * holds a valid lease on one of them) before the service opens any
         * volume file of those AZs (docs/design/multi-site.md). */
        if ((rc = cluster_node_start(&cfg, store, err, sizeof(err))) < 0) {
                log_error("node %s: %s", cfg.node_name, err);
                goto out;
        }
        /* The reply cache's file watch, only when there will be a cache
         * (before any volume file is opened). */
        replygen_fs_enable(api_cache_wanted(&cfg, store));
        if ((rc = service_start(&cfg, store, &svc)) < 0) {
                log_error("service start failed: %s", strerror(-rc));
                goto out;
        }
        nbd_limits_from_config(&cfg, &lim);
        {
                /* NBD TLS: credentials shared by every listener. */
                struct nbd_tls_cfg tc = {.mode = cfg.nbd_tls == NBD_TLS_CFG_OFF  ? NBD_TLS_OFF
                                                 : cfg.nbd_tls == NBD_TLS_CFG_ON ? NBD_TLS_ON
                                                                                 : NBD_TLS_REQUIRE,
                                         .cert = cfg.nbd_tls_cert,
                                         .key = cfg.nbd_tls_key,
                                         .ca = cfg.nbd_tls_ca,
                                         .verify_peer = cfg.nbd_tls_verify_peer};

                if (nbd_tls_create(&tc, &tls, err, sizeof(err)) < 0) {
                        log_error("NBD TLS: %s", err);
                        goto out;
                }
                lim.tls = tls;
                log_info("NBD TLS: %s%s",
                         cfg.nbd_tls == NBD_TLS_CFG_OFF  ? "off"
                         : cfg.nbd_tls == NBD_TLS_CFG_ON ? "on (plain allowed)"
                                                         : "required",
                         cfg.nbd_tls_cert[0] ? ", PSK and X.509"
                         : tls               ? ", PSK"
                                             : "");
        }
        for (int i = 0; i < cfg.nsites; i++) {
                const struct site_cfg *s = &cfg.sites[i];
                rc = nbd_server_start_with(s->name, s->nbd_host, s->nbd_port, cfg.nbd_threads, &lim,
                                           &nbd[i]);
                if (rc < 0) {
                        log_error("NBD listener for %s on %s:%d: %s", s->name, s->nbd_host,
                                  s->nbd_port, strerror(-rc));
                        if (rc == -EADDRINUSE)
                                log_port_taken("NBD", s->nbd_host, s->nbd_port);
                        goto out;
                }
                /* Port 0 means "any": from here on the config holds the real one,
                 * which connection info hands to clients. */
                cfg.sites[i].nbd_port = nbd_server_port(nbd[i]);
                log_info("NBD for %s listening on %s:%d", s->name, s->nbd_host, s->nbd_port);
        }
        if ((rc = api_server_start(&cfg, svc, auth, &api, err, sizeof(err))) < 0) {
                log_error("HTTP API: %s", err);
                if (rc == -EADDRINUSE)
                        log_port_taken("HTTP API", cfg.listen_host, cfg.listen_port);
                goto out;
        }
        cluster_node_publish(&cfg, api_server_port(api));
        if ((rc = write_ports_file(&cfg, api_server_scheme(api), api_server_port(api), nbd)) < 0)
                log_warn("cannot write ports file: %s", strerror(-rc));
        log_info("HTTP API listening on %s://%s:%d", api_server_scheme(api), cfg.listen_host,
                 api_server_port(api));
        print_banner(&cfg, api_server_scheme(api), api_server_port(api), token, project, token_new);

        do {
                if (sigwait(&sigs, &sig) != 0)
                        sig = SIGTERM;
#ifdef EVSREP_FAULT_INJECTION
                if (sig == SIGUSR2 && fault_power_cut_armed())
                        fault_power_cut();
#endif
        } while (sig != SIGTERM && sig != SIGINT);
        log_info("signal %d: stopping (finishing in-flight requests)", sig);
        exit_code = 0;

out:
        if (api)
                api_server_stop(api);
        cluster_node_quiesce(); /* a self-fence must not hold writes the listeners wait for */
        for (int i = 0; i < cfg.nsites; i++)
                if (nbd[i])
                        nbd_server_stop(nbd[i]);
        nbd_tls_destroy(tls); /* after every listener: sessions use it */
        if (svc)
                service_stop(svc);
        cluster_node_stop(); /* releases the lease: after the last data-plane step */
        if (auth)
                auth_close(auth);
        store_close(store);
        if (exit_code == 0) {
                char path[CONFIG_PATH_LEN + 32];
                snprintf(path, sizeof(path), "%s/evsrepd.ports", cfg.data_dir);
                unlink(path);
                log_info("stopped cleanly");
        }
        return exit_code;
}
