/* evsrep node list: the cluster's nodes (evsrep extension, operator token). */
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
};

int cmd_node_list(struct cli *c)
{
        json_t *ans = NULL, *nodes, *rows, *n;
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
                json_array_append_new(rows, row);
        }
        rc = cli_out_table(rows, node_cols, ARRAY_SIZE(node_cols));
        json_decref(rows);
        json_decref(ans);
        return rc;
}
