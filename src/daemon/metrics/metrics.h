/* GET /metrics: Prometheus text exposition of replication state (per pair
 * and group, from the store and the live engine) and the process counters
 * of common/stats.h. */
#ifndef EVSREP_METRICS_H
#define EVSREP_METRICS_H

#include <stddef.h>

struct service;

/* Who is asking decides which per-pair and per-group series (they carry
 * project, pair and group ids) are rendered; the service-wide series
 * (fence, mirrored writes, NBD, HTTP) are always rendered. */
enum metrics_scope {
        METRICS_SERVICE, /* no token (metrics_public): no project's series */
        METRICS_PROJECT, /* a tenant token: its own project's series only */
        METRICS_ALL,     /* an operator token: every project's series */
};

struct metrics_view {
        enum metrics_scope scope;
        const char *project; /* METRICS_PROJECT: the token's project */
};

/* Render into a malloc'd buffer (*out, *len); the caller frees it. */
int metrics_render(struct service *svc, const struct metrics_view *view, char **out, size_t *len);

#endif
