/* libFuzzer target over the whole NBD handshake (handshake.c), STARTTLS
 * included: the input is what a client sends after the server's greeting,
 * fed through a socketpair to nbd_handshake_run. Whatever the bytes: no
 * crash, no leak, no out-of-bounds access, and a connection that reaches
 * transmission holds the attachment it named.
 *
 * Input layout: byte 0 selects the TLS mode (off, on, require), the rest is
 * the client's byte stream. One volume with one attachment (export name
 * "exp-fuzz", PSK identity "att-fuzz") is set up once. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "nbd/internal.h"
#include "nbd/tls.h"
#include "volume/attach.h"
#include "volume/volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct nbd_tls *g_tls[3];

static void setup_once(void)
{
        static bool done;
        char path[] = "/tmp/fuzz_nbd_handshake_XXXXXX";
        struct volume *v;
        int fd;

        if (done)
                return;
        done = true;
        if ((fd = mkstemp(path)) < 0 || ftruncate(fd, 1 << 20) < 0)
                abort();
        close(fd);
        if (volume_open("vol-fuzz", "f", path, &v) < 0 || volreg_add(v) < 0)
                abort();
        volume_put(v);
        unlink(path); /* the open descriptor keeps it */
        if (attach_add("att-fuzz", "exp-fuzz", "vol-fuzz", "f", false,
                       "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f") < 0)
                abort();
        for (int m = NBD_TLS_ON; m <= NBD_TLS_REQUIRE; m++) {
                struct nbd_tls_cfg cfg = {.mode = (enum nbd_tls_mode)m};
                char err[256];

                if (nbd_tls_create(&cfg, &g_tls[m], err, sizeof(err)) < 0)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct nbd_server srv;
        struct nbd_conn c;
        struct timeval tv = {.tv_sec = 1};
        int sv[2], big = 1 << 20, rc;

        setup_once();
        if (size < 1)
                return 0;
        memset(&srv, 0, sizeof(srv));
        snprintf(srv.site, sizeof(srv.site), "f");
        nbd_limits_default(&srv.lim);
        srv.lim.handshake_timeout_sec = 1;
        srv.lim.tls = g_tls[data[0] % 3];
        memset(&c, 0, sizeof(c));
        c.srv = &srv;
        snprintf(c.peer, sizeof(c.peer), "fuzz");
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
                return 0;
        /* Room for every reply: the client end never reads. */
        (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (size > 1 && write(sv[0], data + 1, size - 1) != (ssize_t)(size - 1)) {
                close(sv[0]);
                close(sv[1]);
                return 0;
        }
        shutdown(sv[0], SHUT_WR);
        c.fd = sv[1];
        rc = nbd_handshake_run(&c);
        if (rc == 1) {
                /* A1: transmission only with the attachment that was named. */
                if (!c.att || !c.vol || strcmp(attach_volume_id(c.att), "vol-fuzz") != 0)
                        abort();
                volume_put(c.vol);
        } else if (c.vol) {
                abort(); /* no volume reference held without transmission */
        }
        attach_put(c.att);
        nbd_tls_end(c.tls);
        close(sv[0]);
        close(sv[1]);
        return 0;
}
