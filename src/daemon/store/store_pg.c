#include "store/store_internal.h"
#include <errno.h>
#include <stdio.h>
int store_pg_open(const char *uri, struct store **out, char *err, size_t errlen)
{
        (void)uri;
        *out = NULL;
        snprintf(err, errlen, "no pg yet");
        return -EIO;
}
