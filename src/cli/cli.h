/* evsrep: the operator CLI. One noun/verb table (main.c), one libcurl client
 * (http.c), one output module (output.c: tables, JSON, progress), one waiter
 * (wait.c: polling, SIGINT, timeout) and the verbs (cmd_*.c).
 *
 * Convention: functions return 0 or a negative errno; main() maps the errno of
 * the failed step to the documented exit code in one place (cli_exit_code):
 *
 *   -EINVAL        1  usage error, or the API said 400/405/406/413
 *   -ENOENT        2  not found (404)
 *   -EBUSY         3  conflict (409)
 *   -EACCES        4  authentication or authorisation (401/403)
 *   -EHOSTUNREACH  5  daemon unreachable, or a 5xx answer
 *   -ETIMEDOUT     6  --wait ran out of --timeout
 *   -EINTR         7  --wait interrupted by SIGINT (the action goes on)
 *   -ECANCELED     8  --wait saw the resource enter an error state
 *
 * Ownership: struct cli owns every string it points to only when noted; the
 * option values point into argv. JSON returned by cli_http_call belongs to
 * the caller (json_decref). */
#ifndef EVSREP_CLI_CLI_H
#define EVSREP_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cli_exit {
        CLI_EXIT_OK = 0,
        CLI_EXIT_USAGE = 1,
        CLI_EXIT_NOT_FOUND = 2,
        CLI_EXIT_CONFLICT = 3,
        CLI_EXIT_AUTH = 4,
        CLI_EXIT_UNREACHABLE = 5,
        CLI_EXIT_TIMEOUT = 6,
        CLI_EXIT_INTERRUPTED = 7,
        CLI_EXIT_FAILED = 8,
};

#define CLI_MAX_IDS 64

/* API paths, relative to the base URL (http://host:port/v2/{project}). */
#define CLI_PATH_VOLUMES "volumes"
#define CLI_PATH_PAIRS   "os-vendor-replications"
#define CLI_PATH_GROUPS  "os-vendor-replication-consistency-groups"
#define CLI_PATH_NODES   "os-evsrep-nodes"

struct cli {
        /* Connection (flags win over EVS_URL / EVS_TOKEN / EVS_PROJECT). */
        const char *url, *token, *project;
        char *base; /* owned: ".../v2/{project}" without a trailing slash */
        void *curl; /* owned: CURL easy handle, reused (keep-alive) */

        /* Global behaviour. */
        bool json;          /* -o json */
        bool wait;          /* --wait */
        bool help;          /* --help */
        double timeout_sec; /* --timeout, default 600 */
        double interval_sec;

        /* Verb options (NULL / false when not given). */
        const char *name, *description, *az, *volume_type, *status;
        const char *group, *volume, *production, *dr;
        const char *prefix; /* group clone --prefix */
        long long size_gib;
        bool has_size, multiattach;
        const char *pairs[CLI_MAX_IDS];
        size_t n_pairs;
        const char *add[CLI_MAX_IDS];
        size_t n_add;
        const char *remove[CLI_MAX_IDS];
        size_t n_remove;
        /* group sync/reprotect/reverse: confirmation (cmd_group_ext.c) */
        bool yes, has_confirm_above;
        uint64_t confirm_above; /* bytes */
        /* group throttle: MiB/s, 0 when not given */
        long long max_mib, min_mib;
        bool adaptive;
        bool repair;            /* --repair (group verify) */
        long long max_rate_mib; /* --max-rate (group verify), 0: unlimited */

        /* Positional arguments after noun and verb. */
        char **args;
        int n_args;
};

/* ---- http.c --------------------------------------------------------------- */

/* Build c->base from url/project and open the curl handle. -EINVAL when the
 * settings are missing or malformed (message printed). */
int cli_http_init(struct cli *c);
void cli_http_cleanup(struct cli *c);

#define CLI_HTTP_QUIET_404 0x1 /* do not print an error for a 404 */

/* METHOD base/path with an optional JSON body (not consumed). On a 2xx, *out
 * (if out) receives the parsed body or NULL when the body is empty. On a
 * non-2xx the API error is printed to stderr and its class returned (see the
 * table at the top). *status_out (optional) receives the HTTP status, 0 when
 * no answer came. */
int cli_http_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **out,
                  long *status_out, int flags);

/* GET a list (following marker pages). query is "k=v&k=v" (already escaped)
 * or NULL; key is the list member ("volumes"). *out gets a JSON array. */
int cli_http_list(struct cli *c, const char *path, const char *query, const char *key,
                  json_t **out);

/* Append "&key=<escaped value>" to a query buffer of cap bytes when value is
 * non-NULL. Returns 0 or -ENAMETOOLONG. */
int cli_http_query_add(struct cli *c, char *q, size_t cap, const char *key, const char *value);

/* ---- output.c ------------------------------------------------------------- */

struct cli_column {
        const char *title;
        const char *field; /* member of each object */
};

/* A JSON value as display text (strings as is, null as "-", arrays joined
 * with ","). Writes at most cap bytes. */
void cli_out_value(const json_t *v, char *buf, size_t cap);
/* Print an array of objects as an aligned table. */
int cli_out_table(const json_t *rows, const struct cli_column *cols, size_t n_cols);
/* Print one object as "key  value" lines, fields in the given order; fields
 * not listed are printed after them. */
int cli_out_object(const json_t *obj, const char *const *order, size_t n_order);
/* Print JSON pretty (indent 2) to stdout. */
int cli_out_json(const json_t *j);

/* "1.5 MiB" style; "12s", "3m04s", "1h02m" style. */
void cli_out_bytes(double bytes, char *buf, size_t cap);
void cli_out_duration(double sec, char *buf, size_t cap);

struct cli_progress {
        const char *state; /* e.g. "copying" */
        double percent;    /* 0..100 */
        uint64_t bytes;    /* copied since the action */
        double rate_bps;   /* bytes per second, 0 when unknown */
        double eta_sec;    /* < 0 when unknown */
};

/* Progress to a terminal: one line rewritten in place (\r). */
void cli_out_progress_tty(FILE *f, const struct cli_progress *p);
/* Progress to a pipe or file: one plain line. */
void cli_out_progress_line(FILE *f, const struct cli_progress *p);

/* ---- wait.c --------------------------------------------------------------- */

/* Catch SIGINT from now on (cli_wait_for does it): the waiter stops and
 * returns -EINTR, an HTTP request in flight is aborted. */
void cli_wait_sigint_arm(void);
bool cli_wait_interrupted(void);

enum cli_wait_kind {
        CLI_WAIT_FIELDS, /* until status (and replication_status) match */
        CLI_WAIT_GONE,   /* until 404 */
        CLI_WAIT_LEAVE,  /* until status is no longer `status` (a transitional one) */
};

struct cli_wait {
        const char *path; /* e.g. "volumes/<id>" */
        const char *key;  /* top-level member: "volume", ... */
        enum cli_wait_kind kind;
        const char *status;       /* wanted status, NULL: any */
        const char *repl_status;  /* wanted replication_status, NULL: any */
        bool progress;            /* show copy progress while copying */
        bool group;               /* progress from the member pairs (else the object's own) */
        uint64_t bytes_baseline;  /* group bytes_copied before the action */
        int64_t action_mono_usec; /* util_mono_usec() when the action was sent, 0: unknown */
};

/* Poll every c->interval_sec until the target is reached (0), an error state
 * is seen (-ECANCELED), --timeout passes (-ETIMEDOUT) or SIGINT (-EINTR). On
 * success with kind FIELDS, *last (optional) gets the final object. */
int cli_wait_for(struct cli *c, const struct cli_wait *w, json_t **last);

/* ---- cmd_*.c: the verbs ---------------------------------------------------- */

int cmd_node_list(struct cli *c);
int cmd_volume_create(struct cli *c);
int cmd_volume_list(struct cli *c);
int cmd_volume_show(struct cli *c);
int cmd_volume_delete(struct cli *c);
int cmd_volume_extend(struct cli *c);
int cmd_volume_connect(struct cli *c);
int cmd_volume_disconnect(struct cli *c);

int cmd_pair_create(struct cli *c);
int cmd_pair_list(struct cli *c);
int cmd_pair_show(struct cli *c);
int cmd_pair_delete(struct cli *c);

int cmd_group_create(struct cli *c);
int cmd_group_list(struct cli *c);
int cmd_group_show(struct cli *c);
int cmd_group_update(struct cli *c);
int cmd_group_delete(struct cli *c);
int cmd_group_pause(struct cli *c);
int cmd_group_sync(struct cli *c);
int cmd_group_reverse(struct cli *c);
int cmd_group_failover(struct cli *c);
int cmd_group_reprotect(struct cli *c);
int cmd_group_verify(struct cli *c); /* cmd_verify.c */
int cmd_group_extend(struct cli *c);
/* cmd_group_ext.c (evsrep extensions): estimate, throttle, and the
 * estimate-and-confirm step of sync, reprotect and reverse (0: go on;
 * -EINVAL (exit 1) when the user said no, or when stdin is not a terminal
 * and --yes is missing). action: "sync", "reprotect", "reverse". */
int cmd_group_estimate(struct cli *c);
int cmd_group_throttle(struct cli *c);
int cli_group_confirm(struct cli *c, const char *id, const char *action);
/* "10G", "512M", "4096" (bytes; K M G T binary) and a whole MiB/s. */
int cli_parse_size(const char *s, const char *flag, uint64_t *out);
int cli_parse_mib(const char *s, const char *flag, long long *out);
int cmd_group_clone(struct cli *c); /* cmd_clone.c */

/* Shared by the verbs (cmd_common.c). */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The single positional ID argument of show/delete/...; -EINVAL if absent. */
int cli_arg_id(struct cli *c, const char **id);
/* GET path and return the member key of the body. */
int cli_get_object(struct cli *c, const char *path, const char *key, json_t **out);
/* -EINVAL unless there are no positional arguments. */
int cli_no_args(struct cli *c);
/* Print one object: {"key": obj} with -o json, key/value lines otherwise. */
int cli_show(struct cli *c, const char *key, json_t *obj, const char *const *order, size_t n_order);
/* Print a list: {"key": [...]} with -o json, a table otherwise. */
int cli_show_list(struct cli *c, const char *key, json_t *rows, const struct cli_column *cols,
                  size_t n_cols);
/* POST body (consumed, may be NULL after a failed json_pack: -ENOMEM). */
int cli_action_post(struct cli *c, const char *path, json_t *body, json_t **out);
/* The string member of an object, or "" when absent/not a string. */
const char *cli_str(const json_t *obj, const char *field);

#endif
