/* libmicrohttpd glue: body collection, dispatch, replies and access log. */
#include "http/http.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct http_server {
        struct MHD_Daemon *mhd;
        http_dispatch_fn fn;
        void *ctx;
        int port;
};

struct req_state {
        struct http_req req;
        char *buf;
        size_t len, cap;
        bool too_large;
        bool dispatched;
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

static int queue_typed(struct http_req *r, unsigned status, const char *body, size_t len,
                       const char *extra_header, const char *content_type)
{
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ok;

        if (!resp)
                return -ENOMEM;
        MHD_add_response_header(resp, "X-Openstack-Request-Id", r->req_id);
        if (len > 0)
                MHD_add_response_header(resp, "Content-Type", content_type);
        if (extra_header) {
                char name[64];
                const char *colon = strchr(extra_header, ':');
                size_t n = colon ? (size_t)(colon - extra_header) : 0;
                if (colon && n < sizeof(name)) {
                        memcpy(name, extra_header, n);
                        name[n] = '\0';
                        MHD_add_response_header(resp, name, colon + 1 + strspn(colon + 1, " "));
                }
        }
        ok = MHD_queue_response(r->conn, status, resp);
        MHD_destroy_response(resp);
        r->status = status;
        return ok == MHD_YES ? 0 : -EIO;
}

static int queue(struct http_req *r, unsigned status, const char *body, size_t len,
                 const char *extra_header)
{
        return queue_typed(r, status, body, len, extra_header, "application/json");
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
};

static enum MHD_Result foreach_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
        struct foreach_ctx *fc = cls;

        (void)kind;
        fc->fn(fc->arg, key, value ? value : "");
        return MHD_YES;
}

void http_query_foreach(const struct http_req *r,
                        void (*fn)(void *arg, const char *key, const char *value), void *arg)
{
        struct foreach_ctx fc = {fn, arg};

        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, foreach_cb, &fc);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
        struct http_server *srv = cls;
        struct req_state *st = *con_cls;
        char uuid[UTIL_UUID_LEN];

        (void)version;
        if (!st) {
                st = calloc(1, sizeof(*st));
                if (!st)
                        return MHD_NO;
                util_uuid_v4(uuid);
                snprintf(st->req.req_id, sizeof(st->req.req_id), "req-%s", uuid);
                st->req.method = method;
                st->req.url = url;
                st->req.conn = conn;
                st->req.start_usec = util_mono_usec();
                st->req.priv = st;
                *con_cls = st;
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
        if (st->dispatched)
                return MHD_YES;
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
        return srv->fn(&st->req, srv->ctx) < 0 ? MHD_NO : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct req_state *st = *con_cls;

        (void)cls;
        (void)conn;
        if (!st)
                return;
        stats_http_observe(st->req.method, st->req.url, st->req.status,
                           (uint64_t)(util_mono_usec() - st->req.start_usec) * 1000);
        log_info("%s %s %s %u %.3fms%s", st->req.req_id, st->req.method, st->req.url,
                 st->req.status, (double)(util_mono_usec() - st->req.start_usec) / 1000.0,
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
        free(st->buf);
        free(st);
        *con_cls = NULL;
}

int http_server_start(const char *host, int port, int threads, http_dispatch_fn fn, void *ctx,
                      struct http_server **out, char *err, size_t errlen)
{
        struct http_server *s = calloc(1, sizeof(*s));
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
        struct addrinfo *ai = NULL;
        char portstr[16];
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ITC |
                         MHD_USE_ERROR_LOG;

        if (!s)
                return -ENOMEM;
        snprintf(portstr, sizeof(portstr), "%d", port);
        if (getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai) {
                snprintf(err, errlen, "listen address %s is not a numeric IP address", host);
                free(s);
                return -EINVAL;
        }
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        s->fn = fn;
        s->ctx = ctx;
        s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                  ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                  MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
        freeaddrinfo(ai);
        if (!s->mhd) {
                snprintf(err, errlen, "cannot listen on %s:%d (address in use?)", host, port);
                free(s);
                return -EADDRINUSE;
        }
        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : port;
        *out = s;
        return 0;
}

int http_server_port(const struct http_server *s)
{
        return s->port;
}

void http_server_stop(struct http_server *s)
{
        if (!s)
                return;
        /* Quiesce: no new connections; MHD_stop_daemon then joins the pool
         * threads, which finish the requests they are running. */
        MHD_quiesce_daemon(s->mhd);
        MHD_stop_daemon(s->mhd);
        free(s);
}
