/* libFuzzer: arbitrary bytes as a pair-create body through the handler's
 * parse and validation path. */
#include "api/internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct pair_create_req rq;
        json_t *root = NULL;
        char msg[512];

        msg[0] = '\0';
        if (api_pair_create_parse((const char *)data, size, &root, &rq, msg, sizeof(msg)) == 0) {
                if (!rq.volume_ids[0] || !rq.volume_ids[1] || !rq.priority_station ||
                    strlen(rq.name) > 255 || strlen(rq.description) > 255)
                        __builtin_trap();
        } else if (msg[0] == '\0') {
                __builtin_trap(); /* every rejection names its reason */
        }
        json_decref(root);
        return 0;
}
