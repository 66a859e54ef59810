/* Counters and histograms for /metrics. See stats.h. */
#include "common/stats.h"
#include "common/replygen.h"
#include "common/util.h"

#include <pthread.h>
#include <string.h>

struct stats g_stats;

static const double g_bounds[STATS_HIST_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0,
};

void stats_hist_observe_ns(struct stats_hist *h, uint64_t ns)
{
        double s = (double)ns / 1e9;
        int i = 0;

        while (i < STATS_HIST_BUCKETS && s > g_bounds[i])
                i++;
        atomic_fetch_add(&h->bucket[i], 1);
        atomic_fetch_add(&h->count, 1);
        atomic_fetch_add(&h->sum_ns, ns);
}

void stats_header(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void stats_hist_render(FILE *f, const char *name, const char *labels, const struct stats_hist *h)
{
        uint64_t cum = 0;
        const char *sep = labels[0] ? "," : "";

        for (int i = 0; i <= STATS_HIST_BUCKETS; i++) {
                cum += atomic_load(&h->bucket[i]);
                if (i < STATS_HIST_BUCKETS)
                        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                g_bounds[i], (unsigned long long)cum);
                else
                        fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                (unsigned long long)cum);
        }
        /* A series without labels is `name value`: no empty braces. */
        fprintf(f, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
                (double)atomic_load(&h->sum_ns) / 1e9);
        fprintf(f, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                labels[0] ? "}" : "", (unsigned long long)atomic_load(&h->count));
}

static pthread_mutex_t g_sites_mu = PTHREAD_MUTEX_INITIALIZER;

struct stats_site *stats_site(const char *name)
{
        struct stats_site *s = NULL;
        int n;

        pthread_mutex_lock(&g_sites_mu);
        n = atomic_load(&g_stats.nsites);
        for (int i = 0; i < n; i++)
                if (strcmp(g_stats.sites[i].name, name) == 0)
                        s = &g_stats.sites[i];
        if (!s && n < (int)ARRAY_SIZE(g_stats.sites)) {
                s = &g_stats.sites[n];
                snprintf(s->name, sizeof(s->name), "%s", name);
                atomic_store(&g_stats.nsites, n + 1);
        }
        pthread_mutex_unlock(&g_sites_mu);
        return s;
}

/* ---- HTTP requests by route, method and status ---- */

#define HTTP_SLOTS 256

struct http_slot {
        char route[96];
        char method[8];
        unsigned status;
        uint64_t count, sum_ns;
};

static pthread_mutex_t g_http_mu = PTHREAD_MUTEX_INITIALIZER;
static struct http_slot g_http[HTTP_SLOTS];
static size_t g_nhttp;

/* The method label: the methods the API knows, else "other" (a client may
 * send any token as a method; it must not add a series). */
static const char *method_label(const char *method)
{
        static const char *const known[] = {"GET",    "HEAD",  "POST",   "PUT",
                                            "DELETE", "PATCH", "OPTIONS"};

        for (size_t i = 0; method && i < ARRAY_SIZE(known); i++)
                if (strcmp(method, known[i]) == 0)
                        return known[i];
        return "other";
}

void stats_http_observe(const char *method, const char *route, unsigned status, uint64_t ns)
{
        struct http_slot *s = NULL;

        method = method_label(method);
        if (!route)
                route = "other";
        pthread_mutex_lock(&g_http_mu);
        for (size_t i = 0; i < g_nhttp; i++)
                if (g_http[i].status == status && strcmp(g_http[i].route, route) == 0 &&
                    strcmp(g_http[i].method, method) == 0)
                        s = &g_http[i];
        if (!s && g_nhttp < HTTP_SLOTS - 1) {
                s = &g_http[g_nhttp++];
                snprintf(s->route, sizeof(s->route), "%s", route);
                snprintf(s->method, sizeof(s->method), "%s", method);
                s->status = status;
        }
        if (!s) { /* table full: one overflow bucket */
                s = &g_http[HTTP_SLOTS - 1];
                snprintf(s->route, sizeof(s->route), "other");
                snprintf(s->method, sizeof(s->method), "other");
                s->status = 0;
        }
        s->count++;
        s->sum_ns += ns;
        pthread_mutex_unlock(&g_http_mu);
}

void stats_http_render(FILE *f)
{
        stats_header(f, "evsrep_http_requests_total", "counter",
                     "API requests by route, method and status code.");
        pthread_mutex_lock(&g_http_mu);
        for (size_t i = 0; i < HTTP_SLOTS; i++)
                if (g_http[i].count)
                        fprintf(
                            f,
                            "evsrep_http_requests_total{route=\"%s\",method=\"%s\",code=\"%u\"} "
                            "%llu\n",
                            g_http[i].route, g_http[i].method, g_http[i].status,
                            (unsigned long long)g_http[i].count);
        pthread_mutex_unlock(&g_http_mu);
        stats_header(f, "evsrep_http_request_seconds_total", "counter",
                     "Total time spent serving API requests, by route, method and status code.");
        pthread_mutex_lock(&g_http_mu);
        for (size_t i = 0; i < HTTP_SLOTS; i++)
                if (g_http[i].count)
                        fprintf(f,
                                "evsrep_http_request_seconds_total{route=\"%s\",method=\"%s\","
                                "code=\"%u\"} %.6f\n",
                                g_http[i].route, g_http[i].method, g_http[i].status,
                                (double)g_http[i].sum_ns / 1e9);
        pthread_mutex_unlock(&g_http_mu);
}

void stats_render(FILE *f)
{
        int n = atomic_load(&g_stats.nsites);

        stats_header(f, "evsrep_fence_seconds", "histogram",
                     "Time client writes were fenced by a pause, reverse or failover.");
        stats_hist_render(f, "evsrep_fence_seconds", "", &g_stats.fence);
        stats_header(f, "evsrep_mirrored_write_seconds", "histogram",
                     "Latency of client writes applied to production and DR.");
        stats_hist_render(f, "evsrep_mirrored_write_seconds", "", &g_stats.mirrored_write);
        stats_header(f, "evsrep_settle_seconds", "histogram",
                     "Flushes of both legs after a pause, run behind its answer.");
        stats_hist_render(f, "evsrep_settle_seconds", "", &g_stats.settle);
        stats_header(f, "evsrep_settles_running", "gauge",
                     "Pairs whose post-pause flush has not finished yet.");
        fprintf(f, "evsrep_settles_running %d\n", atomic_load(&g_stats.settles_running));
        stats_header(f, "evsrep_dr_write_errors_total", "counter",
                     "DR writes that failed (the pair dropped to tracking).");
        fprintf(f, "evsrep_dr_write_errors_total %llu\n",
                (unsigned long long)atomic_load(&g_stats.dr_write_errors));

        stats_header(f, "evsrep_api_cache_hits_total", "counter",
                     "API GETs answered from the reply cache.");
        fprintf(f, "evsrep_api_cache_hits_total %llu\n",
                (unsigned long long)atomic_load(&g_replygen_stats.hits));
        stats_header(f, "evsrep_api_cache_misses_total", "counter",
                     "Cacheable API GETs the reply cache could not answer.");
        fprintf(f, "evsrep_api_cache_misses_total %llu\n",
                (unsigned long long)atomic_load(&g_replygen_stats.misses));
        stats_header(f, "evsrep_api_cache_invalidations_total", "counter",
                     "Reply cache entries dropped because the state changed.");
        fprintf(f, "evsrep_api_cache_invalidations_total %llu\n",
                (unsigned long long)atomic_load(&g_replygen_stats.invalidations));
        stats_header(f, "evsrep_api_cache_live_skips_total", "counter",
                     "Reply cache hits that did not re-read their pairs' live figures (nothing "
                     "live had changed since the reply was built).");
        fprintf(f, "evsrep_api_cache_live_skips_total %llu\n",
                (unsigned long long)atomic_load(&g_replygen_stats.live_skips));
        stats_header(f, "evsrep_api_inline_answers_total", "counter",
                     "API writes answered on the HTTP thread that read them (the pause of an "
                     "already paused group).");
        fprintf(f, "evsrep_api_inline_answers_total %llu\n",
                (unsigned long long)atomic_load(&g_replygen_stats.inline_answers));
        stats_header(f, "evsrep_api_cache_entries", "gauge", "Replies the reply cache holds.");
        fprintf(f, "evsrep_api_cache_entries %lld\n",
                (long long)atomic_load(&g_replygen_stats.entries));
        stats_header(f, "evsrep_api_cache_bytes", "gauge", "Bytes the reply cache holds.");
        fprintf(f, "evsrep_api_cache_bytes %lld\n",
                (long long)atomic_load(&g_replygen_stats.bytes));

        stats_header(f, "evsrep_nbd_connections", "gauge", "Open NBD connections per AZ.");
        for (int i = 0; i < n; i++)
                fprintf(f, "evsrep_nbd_connections{az=\"%s\"} %d\n", g_stats.sites[i].name,
                        atomic_load(&g_stats.sites[i].connections));
        stats_header(f, "evsrep_nbd_requests_total", "counter", "NBD requests per AZ and type.");
        for (int i = 0; i < n; i++) {
                struct stats_site *s = &g_stats.sites[i];
                fprintf(f,
                        "evsrep_nbd_requests_total{az=\"%s\",type=\"read\"} %llu\n"
                        "evsrep_nbd_requests_total{az=\"%s\",type=\"write\"} %llu\n"
                        "evsrep_nbd_requests_total{az=\"%s\",type=\"flush\"} %llu\n"
                        "evsrep_nbd_requests_total{az=\"%s\",type=\"trim\"} %llu\n",
                        s->name, (unsigned long long)atomic_load(&s->reads), s->name,
                        (unsigned long long)atomic_load(&s->writes), s->name,
                        (unsigned long long)atomic_load(&s->flushes), s->name,
                        (unsigned long long)atomic_load(&s->trims));
        }
        stats_header(f, "evsrep_nbd_errors_total", "counter",
                     "NBD requests answered with an error, per AZ.");
        for (int i = 0; i < n; i++)
                fprintf(f, "evsrep_nbd_errors_total{az=\"%s\"} %llu\n", g_stats.sites[i].name,
                        (unsigned long long)atomic_load(&g_stats.sites[i].errors));
        stats_header(f, "evsrep_nbd_bytes_total", "counter", "NBD payload bytes per AZ.");
        for (int i = 0; i < n; i++)
                fprintf(f,
                        "evsrep_nbd_bytes_total{az=\"%s\",dir=\"read\"} %llu\n"
                        "evsrep_nbd_bytes_total{az=\"%s\",dir=\"written\"} %llu\n",
                        g_stats.sites[i].name,
                        (unsigned long long)atomic_load(&g_stats.sites[i].read_bytes),
                        g_stats.sites[i].name,
                        (unsigned long long)atomic_load(&g_stats.sites[i].written_bytes));
        stats_http_render(f);
}
