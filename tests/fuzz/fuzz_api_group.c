/* libFuzzer: arbitrary bytes as a group create body, update body and action
 * body (os-evsrep-verify included), each through the handler's parse and
 * validation path. The first
 * byte picks the parser. */
#include "api/internal.h"
#include "service/verify.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data + 1, *ids[256], *rem[256];
        struct group_extend_item items[256];
        json_t *root = NULL;
        char msg[512];
        int rc;

        if (size < 1)
                return 0;
        size--;
        msg[0] = '\0';
        switch (data[0] % 3) {
        case 0: {
                struct group_create_req rq;
                rc = api_group_create_parse(body, size, &root, &rq, ids, msg, sizeof(msg));
                if (rc == 0 && (!rq.priority_station || rq.npairs > 256))
                        __builtin_trap();
                for (size_t i = 0; rc == 0 && i < rq.npairs; i++)
                        if (!rq.pair_ids[i])
                                __builtin_trap();
                break;
        }
        case 1: {
                struct group_update_req rq;
                rc = api_group_update_parse(body, size, &root, &rq, ids, rem, msg, sizeof(msg));
                if (rc == 0 &&
                    (rq.nadd > 256 || rq.nremove > 256 || (rq.name && strlen(rq.name) > 255)))
                        __builtin_trap();
                break;
        }
        default: {
                enum group_action a;
                struct verify_req vrq;
                size_t n = 0;
                /* os-evsrep-verify first, as the handler does (api/verify.c). */
                rc = api_group_verify_parse(body, size, &root, &vrq, msg, sizeof(msg));
                json_decref(root);
                root = NULL;
                if (rc == 0 && vrq.max_rate_mib_per_sec > VERIFY_MAX_RATE_MIB_SEC)
                        __builtin_trap();
                if (rc <= 0)
                        break;
                rc = api_group_action_parse(body, size, &root, &a, items, &n, msg, sizeof(msg));
                if (rc == 0 && a == GROUP_EXTEND && (n == 0 || n > 256))
                        __builtin_trap();
                for (size_t i = 0; rc == 0 && i < n; i++)
                        if (!items[i].pair_id || items[i].new_size_gib < 1 ||
                            items[i].new_size_gib > 32768)
                                __builtin_trap();
                break;
        }
        }
        if (rc < 0 && msg[0] == '\0')
                __builtin_trap(); /* every rejection names its reason */
        json_decref(root);
        return 0;
}
