/* libmicrohttpd glue: admission, body collection, dispatch, replies, access
 * log, connection limits and HTTPS. */
#include "http/http.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_PEM_MAX (1024 * 1024) /* a certificate chain or key file */
/* libmicrohttpd's per-connection buffer (request head, reply head, reads):
 * it zeroes the whole of it at every request of a kept-alive connection,
 * a visible part of a cached GET at its default 32 KiB. 16 KiB holds any
 * request head nginx accepts by default (8 KiB per header line). */
#define HTTP_CONN_POOL_BYTES (16 * 1024)

/* Requests that change something (every method but GET and HEAD) run on
 * the server's own executor threads, not on libmicrohttpd's: a group action
 * may flush disks for seconds, and a pool thread busy with it would also
 * hold every other connection it had accepted (a GET of the same group
 * waited for a whole reverse; docs/design/control-plane.md "HTTP threads").
 * The connection is suspended meanwhile; the executor keeps the reply and
 * resumes it; the pool thread queues the reply on its next call. GETs stay
 * on the pool thread that read them (no hand-off on the read path). */
struct http_server {
        struct MHD_Daemon *mhd;
        http_admit_fn admit;
        http_dispatch_fn fn;
        void *ctx;
        int port;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct req_state *head, *tail; /* queued for the executor, under mu */
        bool stopping;                 /* under mu */
        pthread_t *exec;
        int nexec;
        /* PEM text handed to libmicrohttpd, which keeps the pointers: freed
         * (the key wiped first) only after the daemon stopped. */
        char *tls_cert_pem, *tls_key_pem;
        size_t tls_key_len;
};

/* A reply kept by an executor thread until the pool thread can queue it. */
struct deferred {
        unsigned status;
        char *body;
        size_t len;
        char header[256];           /* "Name: value" or "" */
        const char *const *headers; /* static, NULL-terminated, or NULL */
        const char *content_type;
        bool set;
};

struct req_state {
        struct http_req req;
        char *buf;
        size_t len, cap;
        bool too_large;
        bool dispatched;
        /* Executor hand-off: `offloaded` from the suspend to the reply;
         * `done` (written by the executor before the resume) means the
         * reply, or the failure to make one, is in `reply`. */
        bool offloaded;
        bool done;
        bool failed;
        struct deferred reply;
        struct http_server *srv;
        struct req_state *next;
};

static const struct {
        unsigned status;
        const char *code;
} g_errors[] = {
    [HTTP_ERR_BAD_REQUEST] = {400, "EVS.1001"}, [HTTP_ERR_UNAUTHORIZED] = {401, "EVS.1002"},
    [HTTP_ERR_FORBIDDEN] = {403, "EVS.1003"},   [HTTP_ERR_NOT_FOUND] = {404, "EVS.1004"},
    [HTTP_ERR_METHOD] = {405, "EVS.1005"},      [HTTP_ERR_NOT_ACCEPTABLE] = {406, "EVS.1006"},
    [HTTP_ERR_CONFLICT] = {409, "EVS.1009"},    [HTTP_ERR_TOO_LARGE] = {413, "EVS.1013"},
    [HTTP_ERR_INTERNAL] = {500, "EVS.1500"},    [HTTP_ERR_UNAVAILABLE] = {503, "EVS.1503"},
};

/* On an executor thread the connection is suspended: keep the reply. */
static int defer_reply(struct req_state *st, unsigned status, const char *body, size_t len,
                       const char *extra_header, const char *const *headers,
                       const char *content_type)
{
        struct deferred *d = &st->reply;

        if (d->set)
                return -EALREADY;
        d->body = malloc(len ? len : 1);
        if (!d->body)
                return -ENOMEM;
        memcpy(d->body, body, len);
        d->len = len;
        d->status = status;
        d->content_type = content_type;
        d->headers = headers;
        snprintf(d->header, sizeof(d->header), "%s", extra_header ? extra_header : "");
        d->set = true;
        st->req.status = status;
        return 0;
}

/* Add one "Name: value" header line. */
static void add_header_line(struct MHD_Response *resp, const char *line)
{
        char name[64];
        const char *colon = strchr(line, ':');
        size_t n = colon ? (size_t)(colon - line) : 0;

        if (colon && n < sizeof(name)) {
                memcpy(name, line, n);
                name[n] = '\0';
                MHD_add_response_header(resp, name, colon + 1 + strspn(colon + 1, " "));
        }
}

/* headers: static "Name: value" lines after extra_header, or NULL. */
static int queue_full(struct http_req *r, unsigned status, const char *body, size_t len,
                      const char *extra_header, const char *const *headers,
                      const char *content_type)
{
        struct req_state *st = r->priv;
        struct MHD_Response *resp;
        enum MHD_Result ok;

        if (st && st->offloaded)
                return defer_reply(st, status, body, len, extra_header, headers, content_type);
        if (r->capture && !r->capture->set && (r->capture->body = malloc(len ? len : 1))) {
                memcpy(r->capture->body, body, len);
                r->capture->len = len;
                r->capture->status = status;
                r->capture->json = !extra_header && !headers && content_type &&
                                   strcmp(content_type, "application/json") == 0;
                r->capture->set = true;
        }
        resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return -ENOMEM;
        MHD_add_response_header(resp, "X-Openstack-Request-Id", r->req_id);
        if (len > 0)
                MHD_add_response_header(resp, "Content-Type", content_type);
        if (extra_header)
                add_header_line(resp, extra_header);
        for (size_t i = 0; headers && headers[i]; i++)
                add_header_line(resp, headers[i]);
        ok = MHD_queue_response(r->conn, status, resp);
        MHD_destroy_response(resp);
        r->status = status;
        return ok == MHD_YES ? 0 : -EIO;
}

static int queue_typed(struct http_req *r, unsigned status, const char *body, size_t len,
                       const char *extra_header, const char *content_type)
{
        return queue_full(r, status, body, len, extra_header, NULL, content_type);
}

static int queue(struct http_req *r, unsigned status, const char *body, size_t len,
                 const char *extra_header)
{
        return queue_typed(r, status, body, len, extra_header, "application/json");
}

int http_reply_relay(struct http_req *r, unsigned status, const char *content_type,
                     const char *body, size_t len, const char *extra_header)
{
        /* A deferred reply (executor thread) keeps the content type by
         * pointer: hand it a literal, never the caller's buffer. */
        const char *ct = "application/json";

        if (content_type && strncasecmp(content_type, "text/plain", 10) == 0)
                ct = "text/plain; charset=utf-8";
        return queue_typed(r, status, body, len, extra_header, ct);
}

int http_reply_text(struct http_req *r, unsigned status, const char *content_type, const char *body,
                    size_t len)
{
        return queue_typed(r, status, body, len, NULL, content_type);
}

int http_reply_json(struct http_req *r, unsigned status, json_t *body)
{
        char *text;
        int rc;

        if (!body)
                return queue(r, status, "", 0, NULL);
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text)
                return http_reply_error(r, HTTP_ERR_INTERNAL, NULL, "cannot encode the reply");
        rc = queue(r, status, text, strlen(text), NULL);
        free(text);
        return rc;
}

int http_reply_headers(struct http_req *r, unsigned status, const char *content_type,
                       const char *body, size_t len, const char *const *headers)
{
        return queue_full(r, status, body, len, NULL, headers, content_type);
}

int http_reply_shared(struct http_req *r, unsigned status, const char *body, size_t len,
                      void (*release)(void *cls), void *cls)
{
        struct req_state *st = r->priv;
        struct MHD_Response *resp;
        enum MHD_Result ok;

        if (st && st->offloaded) { /* not for executor threads: copy */
                int rc = queue(r, status, body, len, NULL);

                release(cls);
                return rc;
        }
        resp =
            MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)body, release, cls);
        if (!resp) {
                release(cls);
                return -ENOMEM;
        }
        MHD_add_response_header(resp, "X-Openstack-Request-Id", r->req_id);
        if (len > 0)
                MHD_add_response_header(resp, "Content-Type", "application/json");
        ok = MHD_queue_response(r->conn, status, resp);
        MHD_destroy_response(resp);
        r->status = status;
        return ok == MHD_YES ? 0 : -EIO;
}

int http_reply_error(struct http_req *r, enum http_err err, const char *extra_header,
                     const char *fmt, ...)
{
        char msg[1024];
        json_t *j;
        char *text;
        va_list ap;
        int rc;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        j = json_pack("{s:{s:s,s:s}}", "error", "code", g_errors[err].code, "message", msg);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text) /* message was not UTF-8: keep the code, drop the text */
                text = strdup("{\"error\":{\"code\":\"EVS.1500\",\"message\":\"error\"}}");
        rc = queue(r, g_errors[err].status, text, strlen(text), extra_header);
        free(text);
        return rc;
}

const char *http_header(const struct http_req *r, const char *name)
{
        return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_req *r, const char *key)
{
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct foreach_ctx {
        void (*fn)(void *arg, const char *key, const char *value);
        void *arg;
        bool raw;
};

static enum MHD_Result foreach_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
        struct foreach_ctx *fc = cls;

        (void)kind;
        fc->fn(fc->arg, key, value || fc->raw ? value : "");
        return MHD_YES;
}

void http_query_foreach(const struct http_req *r,
                        void (*fn)(void *arg, const char *key, const char *value), void *arg)
{
        struct foreach_ctx fc = {fn, arg, false};

        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, foreach_cb, &fc);
}

void http_query_foreach_raw(const struct http_req *r,
                            void (*fn)(void *arg, const char *key, const char *value), void *arg)
{
        struct foreach_ctx fc = {fn, arg, true};

        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, foreach_cb, &fc);
}

/* First call for a request: headers are in, no body byte has been read.
 * The admit function (the router's token check) decides first, so an
 * unauthenticated client never gets a body buffered; then a declared
 * Content-Length over the limit is refused before reading it. Replying now
 * makes libmicrohttpd skip the body and close the connection after the
 * reply. */
static enum MHD_Result admit(struct http_server *srv, struct req_state *st)
{
        const char *cl = http_header(&st->req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int rc = srv->admit ? srv->admit(&st->req, srv->ctx) : 0;

        if (rc != 0) {
                st->dispatched = true;
                return rc < 0 ? MHD_NO : MHD_YES;
        }
        if (cl) {
                char *end;
                unsigned long long n;

                errno = 0;
                n = strtoull(cl, &end, 10);
                if (errno == 0 && end != cl && *end == '\0' && n > HTTP_MAX_BODY) {
                        st->dispatched = true;
                        return http_reply_error(&st->req, HTTP_ERR_TOO_LARGE, NULL,
                                                "the request body is larger than %d bytes",
                                                HTTP_MAX_BODY) < 0
                                   ? MHD_NO
                                   : MHD_YES;
                }
        }
        return MHD_YES;
}

/* "req-" and a version 4 UUID, from a per-thread pool of the kernel's
 * random bytes: one getrandom per 64 requests instead of one per request
 * (a syscall was a visible part of a cached GET). */
static void req_id_make(char *out, size_t outlen)
{
        static _Thread_local unsigned char pool[1024];
        static _Thread_local size_t pos = sizeof(pool);
        static const char hex[] = "0123456789abcdef";
        unsigned char b[16];
        size_t o = 0;

        if (outlen < 4 + UTIL_UUID_LEN)
                abort(); /* req_id is sized for it */
        if (pos + sizeof(b) > sizeof(pool)) {
                if (util_random(pool, sizeof(pool)) < 0)
                        abort(); /* as util_uuid_v4: never a weak id */
                pos = 0;
        }
        memcpy(b, pool + pos, sizeof(b));
        explicit_bzero(pool + pos, sizeof(b)); /* each byte handed out once */
        pos += sizeof(b);
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        memcpy(out, "req-", 4);
        o = 4;
        for (size_t i = 0; i < sizeof(b); i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        out[o++] = '-';
                out[o++] = hex[b[i] >> 4];
                out[o++] = hex[b[i] & 15];
        }
        out[o] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
        struct http_server *srv = cls;
        struct req_state *st = *con_cls;
        int rc;

        (void)version;
        if (!st) {
                st = calloc(1, sizeof(*st));
                if (!st)
                        return MHD_NO;
                req_id_make(st->req.req_id, sizeof(st->req.req_id));
                st->req.method = method;
                st->req.url = url;
                st->req.conn = conn;
                st->req.start_usec = util_mono_usec();
                st->req.priv = st;
                st->req.body = "";
                *con_cls = st;
                return admit(srv, st);
        }
        if (st->offloaded) {
                /* Resumed by the executor: queue what it kept. */
                struct deferred *d = &st->reply;

                if (!st->done)
                        return MHD_YES; /* not ours to answer yet */
                st->offloaded = false;
                if (st->failed || !d->set)
                        return MHD_NO;
                rc = queue_full(&st->req, d->status, d->body, d->len,
                                d->header[0] ? d->header : NULL, d->headers, d->content_type);
                return rc < 0 ? MHD_NO : MHD_YES;
        }
        if (st->dispatched) {
                /* Replied before the body (401, 413): whatever still
                 * arrives is dropped, never stored. */
                *upload_size = 0;
                return MHD_YES;
        }
        if (*upload_size > 0) {
                /* Past the limit, keep reading (and dropping) so the client
                 * gets a clean 413 instead of a reset connection. */
                if (!st->too_large && st->len + *upload_size <= HTTP_MAX_BODY) {
                        if (st->len + *upload_size + 1 > st->cap) {
                                size_t cap = MAX(st->cap * 2, st->len + *upload_size + 1);
                                char *nb = realloc(st->buf, cap);
                                if (!nb)
                                        return MHD_NO;
                                st->buf = nb;
                                st->cap = cap;
                        }
                        memcpy(st->buf + st->len, upload_data, *upload_size);
                        st->len += *upload_size;
                } else {
                        st->too_large = true;
                }
                *upload_size = 0;
                return MHD_YES;
        }
        st->dispatched = true;
        if (st->buf)
                st->buf[st->len] = '\0';
        st->req.body = st->buf ? st->buf : "";
        st->req.body_len = st->len;
        if (st->too_large) {
                if (http_reply_error(&st->req, HTTP_ERR_TOO_LARGE, NULL,
                                     "the request body is larger than %d bytes", HTTP_MAX_BODY) < 0)
                        return MHD_NO;
                return MHD_YES;
        }
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
                return srv->fn(&st->req, srv->ctx) < 0 ? MHD_NO : MHD_YES;
        /* A write: offered to the dispatch on this thread first (http.h,
         * try_inline); what it defers goes to an executor. */
        st->req.try_inline = true;
        rc = srv->fn(&st->req, srv->ctx);
        st->req.try_inline = false;
        if (rc != HTTP_DEFER)
                return rc < 0 ? MHD_NO : MHD_YES;
        st->srv = srv;
        st->offloaded = true;
        MHD_suspend_connection(conn);
        pthread_mutex_lock(&srv->mu);
        if (srv->tail)
                srv->tail->next = st;
        else
                srv->head = st;
        srv->tail = st;
        pthread_cond_signal(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
        return MHD_YES;
}

static void *exec_main(void *arg)
{
        struct http_server *srv = arg;

        for (;;) {
                struct req_state *st;

                pthread_mutex_lock(&srv->mu);
                while (!srv->head && !srv->stopping)
                        pthread_cond_wait(&srv->cv, &srv->mu);
                st = srv->head;
                if (!st) { /* stopping, and nothing left to run */
                        pthread_mutex_unlock(&srv->mu);
                        return NULL;
                }
                srv->head = st->next;
                if (!srv->head)
                        srv->tail = NULL;
                st->next = NULL;
                pthread_mutex_unlock(&srv->mu);
                if (srv->fn(&st->req, srv->ctx) < 0 && !st->reply.set)
                        st->failed = true;
                st->done = true;
                /* The last touch of st on this thread: from here the pool
                 * thread owns it again (and may free it). */
                MHD_resume_connection(st->req.conn);
        }
}

/* The path as the access log shows it: libmicrohttpd has decoded it, so a
 * request for "/x%0a..." would otherwise write a forged second log line.
 * Bytes outside printable ASCII are written back as %XX; long paths are cut. */
static void log_path(const char *url, char *out, size_t outlen)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (const unsigned char *p = (const unsigned char *)url; *p && o + 4 < outlen; p++) {
                if (*p < 0x20 || *p >= 0x7f) {
                        out[o++] = '%';
                        out[o++] = hex[*p >> 4];
                        out[o++] = hex[*p & 15];
                } else {
                        out[o++] = (char)*p;
                }
        }
        out[o] = '\0';
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct req_state *st = *con_cls;
        char path[512];
        int64_t usec;

        (void)cls;
        (void)conn;
        if (!st)
                return;
        usec = util_mono_usec() - st->req.start_usec;
        stats_http_observe(st->req.method, st->req.route, st->req.status, (uint64_t)usec * 1000);
        if (log_on(LOG_LVL_INFO)) { /* the path's escape only when the line is written */
                log_path(st->req.url, path, sizeof(path));
                log_info("%s %s %s %u %.3fms%s", st->req.req_id, st->req.method, path,
                         st->req.status, (double)usec / 1000.0,
                         toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
        }
        free(st->reply.body);
        free(st->buf);
        free(st);
        *con_cls = NULL;
}

/* Read a PEM file into a NUL-terminated buffer (libmicrohttpd wants text). */
static int read_pem(const char *what, const char *path, char **out, size_t *outlen, char *err,
                    size_t errlen)
{
        struct stat sb;
        char *buf;
        int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

        if (fd < 0 || fstat(fd, &sb) < 0) {
                rc = -errno;
                snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(-rc));
                if (fd >= 0)
                        close(fd);
                return rc;
        }
        if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || sb.st_size > TLS_PEM_MAX) {
                snprintf(err, errlen, "%s %s: not a PEM file (a regular file of 1 to %d bytes)",
                         what, path, TLS_PEM_MAX);
                close(fd);
                return -EINVAL;
        }
        buf = malloc((size_t)sb.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        rc = util_read_full(fd, buf, (size_t)sb.st_size);
        close(fd);
        if (rc < 0) {
                snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(-rc));
                free(buf);
                return rc;
        }
        buf[sb.st_size] = '\0';
        *out = buf;
        *outlen = (size_t)sb.st_size;
        return 0;
}

static void free_tls(struct http_server *s)
{
        if (s->tls_key_pem) {
                explicit_bzero(s->tls_key_pem, s->tls_key_len);
                free(s->tls_key_pem);
        }
        free(s->tls_cert_pem);
        s->tls_key_pem = s->tls_cert_pem = NULL;
}

static void exec_stop(struct http_server *s)
{
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < s->nexec; i++)
                pthread_join(s->exec[i], NULL);
        free(s->exec);
        s->exec = NULL;
        s->nexec = 0;
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
}

static int exec_start(struct http_server *s, int n)
{
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        s->exec = calloc((size_t)n, sizeof(*s->exec));
        if (!s->exec) {
                exec_stop(s);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                int rc = pthread_create(&s->exec[i], NULL, exec_main, s);

                if (rc != 0) {
                        exec_stop(s);
                        return -rc;
                }
                s->nexec = i + 1;
        }
        return 0;
}

int http_server_start(const struct http_opts *o, http_admit_fn admit_fn, http_dispatch_fn fn,
                      void *ctx, struct http_server **out, char *err, size_t errlen)
{
        struct http_server *s = calloc(1, sizeof(*s));
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
        struct addrinfo *ai = NULL;
        char portstr[16];
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ITC |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        size_t cert_len = 0;
        int rc;

        if (!s)
                return -ENOMEM;
        if (o->tls_cert && o->tls_key) {
                if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                        snprintf(err, errlen,
                                 "tls_cert is set but this libmicrohttpd was built without TLS");
                        free(s);
                        return -ENOTSUP;
                }
                if ((rc = read_pem("tls_cert", o->tls_cert, &s->tls_cert_pem, &cert_len, err,
                                   errlen)) < 0 ||
                    (rc = read_pem("tls_key", o->tls_key, &s->tls_key_pem, &s->tls_key_len, err,
                                   errlen)) < 0) {
                        free_tls(s);
                        free(s);
                        return rc;
                }
                flags |= MHD_USE_TLS;
        }
        snprintf(portstr, sizeof(portstr), "%d", o->port);
        if (getaddrinfo(o->host, portstr, &hints, &ai) != 0 || !ai) {
                snprintf(err, errlen, "listen address %s is not a numeric IP address", o->host);
                free_tls(s);
                free(s);
                return -EINVAL;
        }
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        s->admit = admit_fn;
        s->fn = fn;
        s->ctx = ctx;
        if ((rc = exec_start(s, o->threads)) < 0) {
                snprintf(err, errlen, "cannot start the HTTP executor threads: %s", strerror(-rc));
                freeaddrinfo(ai);
                free_tls(s);
                free(s);
                return rc;
        }
        /* The HTTPS options are ignored by libmicrohttpd without MHD_USE_TLS
         * (NULL values then); the limits apply to both. */
        s->mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->threads, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_sec,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_POOL_BYTES,
            MHD_OPTION_CONNECTION_LIMIT, o->max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            o->max_conns_per_ip, (flags & MHD_USE_TLS) ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
            s->tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY, s->tls_key_pem, MHD_OPTION_END);
        freeaddrinfo(ai);
        if (!s->mhd) {
                exec_stop(s);
                if (flags & MHD_USE_TLS)
                        snprintf(err, errlen,
                                 "cannot serve HTTPS on %s:%d: the address is in use, or "
                                 "tls_cert %s and tls_key %s are not a matching PEM "
                                 "certificate and key (see the message above)",
                                 o->host, o->port, o->tls_cert, o->tls_key);
                else
                        snprintf(err, errlen, "cannot listen on %s:%d (address in use?)", o->host,
                                 o->port);
                free_tls(s);
                free(s);
                return -EADDRINUSE;
        }
        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : o->port;
        *out = s;
        return 0;
}

int http_server_port(const struct http_server *s)
{
        return s->port;
}

const char *http_server_scheme(const struct http_server *s)
{
        return s->tls_cert_pem ? "https" : "http";
}

void http_server_stop(struct http_server *s)
{
        if (!s)
                return;
        /* Quiesce: no new connections; the executor finishes what was
         * queued (and resumes those connections); MHD_stop_daemon then
         * joins the pool threads, which finish the requests they are
         * running. */
        MHD_quiesce_daemon(s->mhd);
        exec_stop(s);
        MHD_stop_daemon(s->mhd);
        free_tls(s);
        free(s);
}
