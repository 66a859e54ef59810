/* evsrep node list: the cluster's nodes (evsrep extension, operator token)
 * and, below them, each node's outgoing DR links as its link monitor sees
 * them (docs/cli.md, docs/api.md §6.1). */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct cli_column node_cols[] = {
    {"NAME", "name"},
    {"AZS", "azs"},
    {"API_URL", "api_url"},
    {"LEASE_S", "lease_remaining_seconds"},
    {"STARTED_AT", "started_at"},
    {"LINKS", "links_summary"},
};

static const struct cli_column link_cols[] = {
    {"NODE", "node"},
    {"PEER", "peer_node"},
    {"PEER_AZ", "peer_availability_zone"},
    {"STATE", "state"},
    {"PAIRS", "pairs"},
    {"GROUPS", "groups"},
    {"BACKOFF_S", "reconnect_backoff_seconds"},
    {"DOWN_S", "down_seconds"},
    {"LAST_ERROR", "last_error"},
};

/* The LINKS cell: "-" (none), "unknown" (links_error), else the states of
 * the node's links, "node-b:connected". Each link also becomes a row of
 * the link table. */
static void node_links_fold(const json_t *n, json_t *row, json_t *link_rows)
{
        const json_t *links = json_object_get(n, "links"), *l;
        char cell[512] = "";
        size_t i, len = 0;

        if (!json_is_array(links)) {
                json_object_set_new(row, "links_summary", json_string("unknown"));
                return;
        }
        json_array_foreach(links, i, l)
        {
                json_t *lr = json_deep_copy(l);
                const char *peer = json_string_value(json_object_get(l, "peer_node"));

                len += (size_t)snprintf(cell + len, len < sizeof(cell) ? sizeof(cell) - len : 0,
                                        "%s%s:%s", i ? "," : "", peer ? peer : "?",
                                        json_string_value(json_object_get(l, "state")));
                json_object_set(lr, "node", json_object_get(n, "name"));
                json_array_append_new(link_rows, lr);
        }
        json_object_set_new(row, "links_summary", json_string(len ? cell : "-"));
}

int cmd_node_list(struct cli *c)
{
        json_t *ans = NULL, *nodes, *rows, *link_rows, *n;
        size_t i;
        int rc = cli_no_args(c);

        if (rc < 0)
                return rc;
        rc = cli_http_call(c, "GET", CLI_PATH_NODES, NULL, &ans, NULL, 0);
        if (rc < 0)
                return rc;
        nodes = json_object_get(ans, "nodes");
        if (!json_is_array(nodes)) {
                fprintf(stderr, "evsrep: GET %s: answer has no \"nodes\" array\n", CLI_PATH_NODES);
                json_decref(ans);
                return -EIO;
        }
        if (c->json) {
                rc = cli_out_json(ans);
                json_decref(ans);
                return rc;
        }
        /* The table shows the AZs joined and the lease rounded; -o json
         * prints the API's answer unchanged. */
        rows = json_array();
        link_rows = json_array();
        json_array_foreach(nodes, i, n)
        {
                json_t *row = json_deep_copy(n), *az;
                char azs[512] = "", lease[32];
                size_t j, len = 0;

                json_array_foreach(json_object_get(n, "availability_zones"), j, az)
                {
                        len +=
                            (size_t)snprintf(azs + len, len < sizeof(azs) ? sizeof(azs) - len : 0,
                                             "%s%s", j ? "," : "", json_string_value(az));
                }
                snprintf(lease, sizeof(lease), "%.1f",
                         json_number_value(json_object_get(n, "lease_remaining_seconds")));
                json_object_set_new(row, "azs", json_string(azs));
                json_object_set_new(row, "lease_remaining_seconds", json_string(lease));
                node_links_fold(n, row, link_rows);
                json_array_append_new(rows, row);
        }
        rc = cli_out_table(rows, node_cols, ARRAY_SIZE(node_cols));
        if (rc == 0 && json_array_size(link_rows) > 0) {
                printf("\n");
                rc = cli_out_table(link_rows, link_cols, ARRAY_SIZE(link_cols));
        }
        json_decref(link_rows);
        json_decref(rows);
        json_decref(ans);
        return rc;
}
