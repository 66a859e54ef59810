/* evsrep group estimate|throttle, and the estimate shown (and confirmed)
 * before group sync, reprotect and reverse: evsrep extensions of the API
 * (docs/api.md §4.7 os-set-resync-throttle, §4.8 .../estimate). */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_CONFIRM_ABOVE (10ull << 30)
#define MAX_MIB               1048576

int cli_parse_size(const char *s, const char *flag, uint64_t *out)
{
        char *end;
        unsigned long long v;
        unsigned shift = 0;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-')
                return cli_usage_error("%s wants a size such as 512M or 10G, not '%s'", flag, s);
        switch (*end) {
        case 'K':
        case 'k':
                shift = 10;
                end++;
                break;
        case 'M':
        case 'm':
                shift = 20;
                end++;
                break;
        case 'G':
        case 'g':
                shift = 30;
                end++;
                break;
        case 'T':
        case 't':
                shift = 40;
                end++;
                break;
        default:
                break;
        }
        if (shift && (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0))
                end += strlen(end);
        if (*end || (shift && v > (ULLONG_MAX >> shift)))
                return cli_usage_error("%s wants a size such as 512M or 10G, not '%s'", flag, s);
        *out = (uint64_t)v << shift;
        return 0;
}

int cli_parse_mib(const char *s, const char *flag, long long *out)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 0 || v > MAX_MIB)
                return cli_usage_error("%s wants a whole number of MiB/s (0..%d), not '%s'", flag,
                                       MAX_MIB, s);
        *out = v;
        return 0;
}

static int get_estimate(struct cli *c, const char *id, const char *action, int flags, json_t **out)
{
        char path[512];
        json_t *body = NULL;
        int rc;

        *out = NULL;
        snprintf(path, sizeof(path), CLI_PATH_GROUPS "/%s/estimate?action=%s", id, action);
        rc = cli_http_call(c, "GET", path, NULL, &body, NULL, flags);
        if (rc == 0 && !json_is_object(json_object_get(body, "estimate")))
                rc = -EIO;
        if (rc == 0)
                *out = json_incref(json_object_get(body, "estimate"));
        json_decref(body);
        return rc;
}

/* "copies 4.0 MiB (64 chunks), about 3s at 1.2 MiB/s" */
static void estimate_line(const json_t *e, char *buf, size_t cap)
{
        char b[32], r[32], d[32];
        const json_t *sec = json_object_get(e, "seconds");
        double bytes = (double)json_integer_value(json_object_get(e, "bytes"));
        double rate = (double)json_integer_value(json_object_get(e, "rate_bytes_per_sec"));

        cli_out_bytes(bytes, b, sizeof(b));
        if (bytes == 0) {
                snprintf(buf, cap, "copies nothing");
        } else if (json_is_number(sec) && rate > 0) {
                cli_out_bytes(rate, r, sizeof(r));
                cli_out_duration(json_number_value(sec), d, sizeof(d));
                snprintf(buf, cap, "copies %s (%lld chunks), about %s at %s/s", b,
                         (long long)json_integer_value(json_object_get(e, "chunks")), d, r);
        } else {
                snprintf(buf, cap, "copies %s (%lld chunks); no copy rate measured yet", b,
                         (long long)json_integer_value(json_object_get(e, "chunks")));
        }
}

int cli_group_confirm(struct cli *c, const char *id, const char *action)
{
        uint64_t limit = c->has_confirm_above ? c->confirm_above : DEFAULT_CONFIRM_ABOVE;
        char line[160], lim[32], answer[16] = "";
        json_t *e = NULL;
        uint64_t bytes;

        /* No estimate (an older daemon, or the action's own error to come):
         * the action goes on and reports for itself. */
        if (get_estimate(c, id, action, CLI_HTTP_QUIET_404, &e) < 0)
                return 0;
        if (!json_is_true(json_object_get(e, "allowed"))) {
                json_decref(e); /* the action answers 409 with the reason */
                return 0;
        }
        bytes = (uint64_t)json_integer_value(json_object_get(e, "bytes"));
        estimate_line(e, line, sizeof(line));
        json_decref(e);
        fprintf(stderr, "evsrep: estimate: group %s %s\n", action, line);
        if (bytes <= limit || c->yes)
                return 0;
        cli_out_bytes((double)limit, lim, sizeof(lim));
        if (!isatty(STDIN_FILENO)) {
                fprintf(stderr,
                        "evsrep: group %s would copy more than --confirm-above %s and stdin is "
                        "not a terminal, so nobody can confirm; nothing done. Add --yes to go "
                        "ahead\n",
                        action, lim);
                return -EINVAL;
        }
        fprintf(stderr, "Go ahead with the %s (more than %s)? [y/N] ", action, lim);
        fflush(stderr);
        if (!fgets(answer, sizeof(answer), stdin))
                answer[0] = '\0';
        answer[strcspn(answer, "\r\n")] = '\0';
        if (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0)
                return 0;
        fprintf(stderr, "evsrep: not confirmed; nothing done\n");
        return -EINVAL;
}

static const char *const estimate_order[] = {
    "action",  "allowed",
    "refusal", "bytes",
    "chunks",  "rate_bytes_per_sec",
    "seconds", "divergence_unknown",
};

static const struct cli_column estimate_cols[] = {
    {"PAIR", "id"},
    {"BYTES", "bytes"},
    {"CHUNKS", "chunks"},
    {"CHUNK_BYTES", "chunk_bytes"},
    {"FULL_COPY", "full_copy"},
    {"OLD_NODE", "old_node_divergence"},
};

int cmd_group_estimate(struct cli *c)
{
        const char *id, *action;
        json_t *e = NULL, *members;
        int rc;

        if (c->n_args != 2)
                return cli_usage_error("group estimate needs GROUP_ID and one of sync, reprotect, "
                                       "reverse");
        id = c->args[0];
        action = c->args[1];
        if (!*id || strpbrk(id, "/?#% \t"))
                return cli_usage_error("malformed ID '%s'", id);
        if (strcmp(action, "sync") != 0 && strcmp(action, "reprotect") != 0 &&
            strcmp(action, "reverse") != 0)
                return cli_usage_error("group estimate: the action is sync, reprotect or reverse, "
                                       "not '%s'",
                                       action);
        rc = get_estimate(c, id, action, 0, &e);
        if (rc < 0)
                return rc;
        if (c->json) {
                rc = cli_show(c, "estimate", e, estimate_order, ARRAY_SIZE(estimate_order));
        } else {
                members = json_incref(json_object_get(e, "replications"));
                json_object_del(e, "replications");
                rc = cli_show(c, "estimate", e, estimate_order, ARRAY_SIZE(estimate_order));
                if (rc == 0 && json_array_size(members)) {
                        printf("\n");
                        rc = cli_out_table(members, estimate_cols, ARRAY_SIZE(estimate_cols));
                }
                json_decref(members);
        }
        json_decref(e);
        return rc;
}

static const char *const throttle_order[] = {
    "max_mib_per_sec", "min_mib_per_sec", "adaptive", "limit_bytes_per_sec", "rate_bytes_per_sec",
};

int cmd_group_throttle(struct cli *c)
{
        const char *id;
        char path[256];
        json_t *v, *g = NULL;
        int rc = cli_arg_id(c, &id);

        if (rc < 0)
                return rc;
        if (c->max_mib && c->min_mib > c->max_mib)
                return cli_usage_error("--min-mib %lld is above --max-mib %lld", c->min_mib,
                                       c->max_mib);
        v = json_pack("{s:I,s:I,s:b}", "max_mib_per_sec", (json_int_t)c->max_mib, "min_mib_per_sec",
                      (json_int_t)c->min_mib, "adaptive", c->adaptive);
        snprintf(path, sizeof(path), CLI_PATH_GROUPS "/%s/action", id);
        rc = cli_action_post(c, path, v ? json_pack("{s:o}", "os-set-resync-throttle", v) : NULL,
                             NULL);
        if (rc < 0)
                return rc;
        snprintf(path, sizeof(path), CLI_PATH_GROUPS "/%s", id);
        rc = cli_get_object(c, path, "replication_consistency_group", &g);
        if (rc == 0 && !json_is_object(json_object_get(g, "resync_throttle"))) {
                fprintf(stderr, "evsrep: the group shows no resync_throttle (older daemon?)\n");
                rc = -EIO;
        }
        if (rc == 0)
                rc = cli_show(c, "resync_throttle", json_object_get(g, "resync_throttle"),
                              throttle_order, ARRAY_SIZE(throttle_order));
        json_decref(g);
        return rc;
}
