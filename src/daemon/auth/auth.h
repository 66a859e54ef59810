/* API tokens: a file of "token project_id [operator]" lines ('#' comments),
 * loaded at start. A token with the third field `operator` is an operator
 * token: it also sees service-wide data (every project's series in
 * /metrics) and may change quotas (docs/operations.md "Tokens"). Lookups
 * compare every entry in constant time. */
#ifndef EVSREP_AUTH_H
#define EVSREP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MAX   130
#define AUTH_PROJECT_MAX 65

struct auth;

/* Load path. When the file is missing or holds no token, create it (0600)
 * with one random token for a new default project and set *created. Either
 * way token/project receive the first entry (the start banner shows the
 * token only when *created). A file accessible by group or others (any of
 * mode 077) is refused with -EPERM and an err that says `chmod 600 <path>`. */
int auth_open(const char *path, struct auth **out, char *token, size_t toklen, char *project,
              size_t projlen, bool *created, char *err, size_t errlen);
void auth_close(struct auth *a);
/* Project of token, or NULL when the token is unknown. The string lives as
 * long as the auth object. */
const char *auth_lookup(const struct auth *a, const char *token);
/* The same, and *is_operator says whether the token carries the operator
 * role (false for an unknown token). */
const char *auth_lookup_role(const struct auth *a, const char *token, bool *is_operator);

#endif
