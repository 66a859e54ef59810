/* A delaying TCP proxy for the link benchmark (bench/link.sh): this kernel
 * has no netem, and tests/tools/tcpproxy.py (Python asyncio) adds a few
 * hundred microseconds of its own per hop, more than the slack the latency
 * goal leaves. Each connection gets two threads, one per direction: read a
 * chunk, stamp it, and hand it to that direction's sender thread, which
 * writes it once `delay_us` has passed since it was read (in order). A
 * chunk is at most 256 KiB; at most 64 MiB wait per direction.
 *
 *   bench_tcpdelay LISTEN_HOST PORT_FILE TARGET_HOST TARGET_PORT DELAY_US
 *
 * Listens on LISTEN_HOST, an ephemeral port written to PORT_FILE. Runs
 * until killed. Loopback benchmarks only: no limits on connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_BYTES (256u * 1024)
#define QUEUE_BYTES (64u << 20)

struct chunk {
        struct chunk *next;
        int64_t due_ns;
        size_t len;
        char data[];
};

struct dir {
        int from, to;
        int64_t delay_ns;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct chunk *head, *tail;
        size_t queued;
        int eof;
};

static const char *g_target_host, *g_target_port;
static int64_t g_delay_ns;

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *reader(void *arg)
{
        struct dir *d = arg;

        for (;;) {
                struct chunk *c = malloc(sizeof(*c) + CHUNK_BYTES);
                ssize_t n;

                if (!c)
                        break;
                n = read(d->from, c->data, CHUNK_BYTES);
                if (n <= 0) {
                        free(c);
                        break;
                }
                c->len = (size_t)n;
                c->due_ns = now_ns() + d->delay_ns;
                c->next = NULL;
                pthread_mutex_lock(&d->mu);
                while (d->queued > QUEUE_BYTES && !d->eof)
                        pthread_cond_wait(&d->cv, &d->mu);
                if (d->tail)
                        d->tail->next = c;
                else
                        d->head = c;
                d->tail = c;
                d->queued += c->len;
                pthread_cond_broadcast(&d->cv);
                pthread_mutex_unlock(&d->mu);
        }
        pthread_mutex_lock(&d->mu);
        d->eof = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        return NULL;
}

static void *sender(void *arg)
{
        struct dir *d = arg;

        for (;;) {
                struct chunk *c;
                struct timespec ts;
                size_t off = 0;

                pthread_mutex_lock(&d->mu);
                while (!d->head && !d->eof)
                        pthread_cond_wait(&d->cv, &d->mu);
                c = d->head;
                if (!c) {
                        pthread_mutex_unlock(&d->mu);
                        break;
                }
                d->head = c->next;
                if (!d->head)
                        d->tail = NULL;
                d->queued -= c->len;
                pthread_cond_broadcast(&d->cv);
                pthread_mutex_unlock(&d->mu);
                ts.tv_sec = c->due_ns / 1000000000;
                ts.tv_nsec = c->due_ns % 1000000000;
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                        ;
                while (off < c->len) {
                        ssize_t n = write(d->to, c->data + off, c->len - off);

                        if (n <= 0) {
                                free(c);
                                goto out;
                        }
                        off += (size_t)n;
                }
                free(c);
        }
out:
        shutdown(d->to, SHUT_WR);
        shutdown(d->from, SHUT_RD);
        return NULL;
}

static int connect_target(void)
{
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
        int fd, one = 1;

        if (getaddrinfo(g_target_host, g_target_port, &hints, &ai) != 0)
                return -1;
        fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        if (fd >= 0)
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

static void dir_init(struct dir *d, int from, int to)
{
        memset(d, 0, sizeof(*d));
        d->from = from;
        d->to = to;
        d->delay_ns = g_delay_ns;
        pthread_mutex_init(&d->mu, NULL);
        pthread_cond_init(&d->cv, NULL);
}

static void *conn_main(void *arg)
{
        int cfd = (int)(intptr_t)arg, tfd = connect_target();
        struct dir up, down;
        pthread_t t[4];

        if (tfd < 0) {
                close(cfd);
                return NULL;
        }
        dir_init(&up, cfd, tfd);
        dir_init(&down, tfd, cfd);
        pthread_create(&t[0], NULL, reader, &up);
        pthread_create(&t[1], NULL, sender, &up);
        pthread_create(&t[2], NULL, reader, &down);
        pthread_create(&t[3], NULL, sender, &down);
        for (int i = 0; i < 4; i++)
                pthread_join(t[i], NULL);
        close(cfd);
        close(tfd);
        return NULL;
}

int main(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t sl = sizeof(sa);
        int lfd, one = 1;
        FILE *f;

        if (argc != 6) {
                fprintf(stderr,
                        "usage: %s LISTEN_HOST PORT_FILE TARGET_HOST TARGET_PORT DELAY_US\n",
                        argv[0]);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        g_target_host = argv[3];
        g_target_port = argv[4];
        g_delay_ns = atoll(argv[5]) * 1000;
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (lfd < 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
            setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
            getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
                perror("tcpdelay: listen");
                return 1;
        }
        if (!(f = fopen(argv[2], "w")) || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 ||
            fclose(f) != 0) {
                perror("tcpdelay: port file");
                return 1;
        }
        for (;;) {
                int cfd = accept(lfd, NULL, NULL);
                pthread_t t;

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        perror("tcpdelay: accept");
                        return 1;
                }
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)cfd) != 0) {
                        close(cfd);
                        continue;
                }
                pthread_detach(t);
        }
}
