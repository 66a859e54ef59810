/* Process-wide counters and histograms for the Prometheus endpoint
 * (metrics/). Updating is lock-free (atomics) on the data path; the HTTP
 * table takes a mutex (one update per API request). Rendering writes the
 * Prometheus text exposition format to a stdio stream.
 *
 * Ownership: everything here is static storage; nothing to free. */
#ifndef EVSREP_COMMON_STATS_H
#define EVSREP_COMMON_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define STATS_HIST_BUCKETS 14

/* Latency histogram in seconds with fixed buckets from 50 us to 10 s. */
struct stats_hist {
        atomic_uint_least64_t bucket[STATS_HIST_BUCKETS + 1]; /* last: +Inf */
        atomic_uint_least64_t count;
        atomic_uint_least64_t sum_ns;
};

void stats_hist_observe_ns(struct stats_hist *h, uint64_t ns);
/* name, help; labels like `az="az1"` or "" */
void stats_hist_render(FILE *f, const char *name, const char *labels, const struct stats_hist *h);
void stats_header(FILE *f, const char *name, const char *type, const char *help);

/* NBD counters of one site (AZ). */
struct stats_site {
        char name[64];
        atomic_int connections;
        atomic_uint_least64_t reads, writes, flushes, trims, errors;
        atomic_uint_least64_t read_bytes, written_bytes;
};

struct stats {
        struct stats_hist fence;          /* pause/reverse/failover fence duration */
        struct stats_hist mirrored_write; /* client writes applied to both legs */
        struct stats_hist settle;         /* flushes after a pause, behind its answer */
        atomic_int settles_running;
        atomic_uint_least64_t dr_write_errors;
        struct stats_site sites[8];
        atomic_int nsites;
};

extern struct stats g_stats;

/* The counters of site name (registered on first use; NULL when full). */
struct stats_site *stats_site(const char *name);

/* One finished API request: method (unknown methods count as "other"),
 * route label from a fixed set chosen by the router (NULL: "other"; never
 * request text, so no request can add a series), status, duration. */
void stats_http_observe(const char *method, const char *route, unsigned status, uint64_t ns);
void stats_http_render(FILE *f);
void stats_render(FILE *f);

#endif
