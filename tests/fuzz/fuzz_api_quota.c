/* libFuzzer: arbitrary bytes as an os-quota-sets PUT body through the same
 * parse and validation path the HTTP handler uses. */
#include "api/internal.h"

#include <stddef.h>
#include <stdint.h>

static int ok_field(int64_t v)
{
        return v == STORE_QUOTA_DEFAULT || (v >= -1 && v <= ((int64_t)1 << 40));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct quota_set rq;
        char msg[512];

        msg[0] = '\0';
        if (api_quota_update_parse((const char *)data, size, &rq, msg, sizeof(msg)) == 0) {
                /* Accepted bodies set at least one known field, each -1 or
                 * a limit in range; the other stays "unchanged". */
                if (!ok_field(rq.volumes) || !ok_field(rq.gigabytes) ||
                    (rq.volumes == STORE_QUOTA_DEFAULT && rq.gigabytes == STORE_QUOTA_DEFAULT))
                        __builtin_trap();
        } else if (msg[0] == '\0') {
                __builtin_trap(); /* every rejection names its reason */
        }
        return 0;
}
