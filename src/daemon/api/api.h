/* The HTTP API: route table, auth rules, list helpers and the resource
 * handlers (volumes.c; pairs and groups join as pairs.c and groups.c). */
#ifndef EVSREP_API_H
#define EVSREP_API_H

#include <stdbool.h>
#include <stddef.h>

struct evsrep_config;
struct service;
struct auth;
struct api_server;
struct store;

/* Whether api_server_start will keep a reply cache (api_cache_entries > 0
 * and a store no other node writes). main.c asks before the service opens
 * any volume: the volume files' directories are watched only for it
 * (common/replygen.h, replygen_fs_enable). */
bool api_cache_wanted(const struct evsrep_config *cfg, struct store *st);

int api_server_start(const struct evsrep_config *cfg, struct service *svc, struct auth *auth,
                     struct api_server **out, char *err, size_t errlen);
int api_server_port(const struct api_server *s);
/* "https" when tls_cert/tls_key are set, else "http". */
const char *api_server_scheme(const struct api_server *s);
void api_server_stop(struct api_server *s);

#endif
