/* libFuzzer: arbitrary bytes as a group action body through the resync
 * throttle's parser (api/group_ext.c, os-set-resync-throttle). An accepted
 * setting is within range (floor not above a ceiling, at most 1 TiB/s,
 * whole MiB/s); every rejection names its reason; a body that is not this
 * action is left to the group action parser, untouched. */
#include "api/internal.h"
#include "service/group_ext.h"

#include <stddef.h>
#include <stdint.h>

#define MIB (1024ull * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct group_throttle_setting set;
        json_t *root = NULL;
        char msg[512];
        bool mine = true;
        int rc;

        msg[0] = '\0';
        rc = api_group_throttle_parse((const char *)data, size, &root, &mine, &set, msg,
                                      sizeof(msg));
        if (!mine && (rc != 0 || msg[0] || set.max_bps || set.min_bps || set.adaptive))
                __builtin_trap();
        if (mine && rc == 0 &&
            ((set.max_bps && set.min_bps > set.max_bps) || set.max_bps > 1048576 * MIB ||
             set.min_bps > 1048576 * MIB || set.max_bps % MIB || set.min_bps % MIB))
                __builtin_trap();
        if (rc < 0 && msg[0] == '\0')
                __builtin_trap(); /* every rejection names its reason */
        json_decref(root);
        return 0;
}
