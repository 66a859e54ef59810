/* libFuzzer: the internal channel's request check (cluster_forward_verify),
 * which reads headers and a body from anyone who reaches the API port.
 * Input: method, path, node, timestamp, nonce, project, role and signature,
 * one per line, then the body. A timestamp "NOW" becomes the current time
 * and a signature "SIGN" the correct one for the other fields, so the
 * fuzzer also reaches the nonce cache behind a valid signature.
 * Invariants: an accepted request carries the correct signature for exactly
 * what was checked; every refusal says why. */
#include "cluster/cluster.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NFIELDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t key[CLUSTER_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        static int keyed;
        char *buf = malloc(size + 1), *p, *fld[NFIELDS], now[32], sig[65], want[65], msg[256];
        struct cluster_auth_hdrs h;
        const char *body;
        size_t blen;
        int rc;

        if (!buf)
                return 0;
        if (!keyed) {
                cluster_forward_set_key(key, "fuzz");
                keyed = 1;
        }
        memcpy(buf, data, size);
        buf[size] = '\0';
        p = buf;
        for (int i = 0; i < NFIELDS; i++) {
                char *nl = strchr(p, '\n');

                if (!nl) {
                        free(buf);
                        return 0;
                }
                *nl = '\0';
                fld[i] = p;
                p = nl + 1;
        }
        body = p;
        blen = size - (size_t)(p - buf);
        if (strcmp(fld[3], "NOW") == 0) {
                snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
                fld[3] = now;
        }
        if (strcmp(fld[7], "SIGN") == 0 &&
            cluster_forward_sign(fld[0], fld[1], fld[3], fld[4], body, blen, fld[5], fld[6], fld[2],
                                 sig) == 0)
                fld[7] = sig;
        h = (struct cluster_auth_hdrs){.node = fld[2],
                                       .timestamp = fld[3],
                                       .nonce = fld[4],
                                       .project = fld[5],
                                       .role = fld[6],
                                       .signature = fld[7]};
        msg[0] = '\0';
        rc = cluster_forward_verify(fld[0], fld[1], body, blen, &h, msg, sizeof(msg));
        if (rc == 0) {
                if (cluster_forward_sign(fld[0], fld[1], fld[3], fld[4], body, blen, fld[5], fld[6],
                                         fld[2], want) != 0 ||
                    strcmp(want, fld[7]) != 0)
                        __builtin_trap(); /* accepted without the right signature */
        } else if (msg[0] == '\0') {
                __builtin_trap(); /* every refusal names its reason */
        }
        free(buf);
        return 0;
}
