/* libFuzzer target: the INI parser and finalize must never crash, leak or
 * read out of bounds, whatever the bytes; and a failed parse must leave the
 * config exactly as it was. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct evsrep_config c, before;
        char err[256];

        config_defaults(&c);
        memcpy(&before, &c, sizeof(c));
        if (config_parse_ini(&c, (const char *)data, size, err, sizeof(err)) == 0) {
                config_finalize(&c, err, sizeof(err));
        } else if (memcmp(&c, &before, sizeof(c)) != 0) {
                abort();
        }
        /* The error text is always a terminated string. */
        if (!memchr(err, '\0', sizeof(err)))
                abort();
        return 0;
}
