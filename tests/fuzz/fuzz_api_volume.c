/* libFuzzer: arbitrary bytes as a volume-create body through the same parse
 * and validation path the HTTP handler uses. */
#include "api/internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct volume_create_req rq;
        json_t *root = NULL;
        char msg[512];

        msg[0] = '\0';
        if (api_volume_create_parse((const char *)data, size, &root, &rq, msg, sizeof(msg)) == 0) {
                /* Accepted bodies must satisfy what the service relies on. */
                if (rq.size_gib < 1 || rq.size_gib > 32768 || !rq.availability_zone ||
                    strlen(rq.name) > 255 || strlen(rq.description) > 255)
                        __builtin_trap();
        } else if (msg[0] == '\0') {
                __builtin_trap(); /* every rejection names its reason */
        }
        json_decref(root);
        return 0;
}
