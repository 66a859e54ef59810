/* libFuzzer: arbitrary bytes as a group action body through the drill clone
 * action's parser (api/clone.c): it must recognise its own key only, keep
 * the prefix within bounds and free of control characters, and name the
 * reason of every refusal. */
#include "api/internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char prefix[128], msg[512] = "";
        int rc = api_group_clone_parse((const char *)data, size, prefix, sizeof(prefix), msg,
                                       sizeof(msg));

        if (rc < 0 && msg[0] == '\0')
                __builtin_trap(); /* every rejection names its reason */
        if (rc == 1) {
                if (strlen(prefix) > 120)
                        __builtin_trap();
                for (const char *p = prefix; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f)
                                __builtin_trap();
        }
        return 0;
}
