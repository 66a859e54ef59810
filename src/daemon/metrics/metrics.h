/* GET /metrics: Prometheus text exposition of replication state (per pair
 * and group, from the store and the live engine) and the process counters
 * of common/stats.h. */
#ifndef EVSREP_METRICS_H
#define EVSREP_METRICS_H

#include <stddef.h>

struct service;

/* Render into a malloc'd buffer (*out, *len); the caller frees it. */
int metrics_render(struct service *svc, char **out, size_t *len);

#endif
