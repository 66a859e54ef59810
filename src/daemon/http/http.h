/* HTTP server (libmicrohttpd): admits or refuses each request as soon as its
 * headers are in (the token is checked before any body byte is read), then
 * collects the body (up to 1 MiB), hands the complete request to one
 * dispatch function, and owns every reply: JSON bodies, the single error
 * format, request ids and the access log. Connection limits (total and per
 * client address), an idle timeout and optional HTTPS are libmicrohttpd's
 * (docs/operations.md, "HTTP limits and HTTPS").
 *
 * Error body, from one registry (http_err):
 *   {"error": {"code": "EVS.xxxx", "message": "<sentence>"}} */
#ifndef EVSREP_HTTP_H
#define EVSREP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_BODY (1024 * 1024)

enum http_err {
        HTTP_ERR_BAD_REQUEST,    /* 400 EVS.1001 */
        HTTP_ERR_UNAUTHORIZED,   /* 401 EVS.1002 */
        HTTP_ERR_FORBIDDEN,      /* 403 EVS.1003 */
        HTTP_ERR_NOT_FOUND,      /* 404 EVS.1004 */
        HTTP_ERR_METHOD,         /* 405 EVS.1005 */
        HTTP_ERR_NOT_ACCEPTABLE, /* 406 EVS.1006 */
        HTTP_ERR_CONFLICT,       /* 409 EVS.1009 */
        HTTP_ERR_TOO_LARGE,      /* 413 EVS.1013 */
        HTTP_ERR_INTERNAL,       /* 500 EVS.1500 */
        HTTP_ERR_UNAVAILABLE,    /* 503 EVS.1503 */
};

struct http_req {
        const char *method;
        const char *url;  /* path only */
        char req_id[48];  /* "req-<uuid>" */
        const char *body; /* NUL-terminated, body_len bytes; "" when none */
        size_t body_len;
        int64_t start_usec;
        unsigned status; /* set by the reply functions */
        /* Metrics label of the route, from a fixed set (the router's table);
         * NULL counts as "other". Request text never becomes a label. */
        const char *route;
        struct MHD_Connection *conn;
        void *priv; /* server-private */
        /* Set by the caller before a reply: the reply functions keep a copy
         * of the reply there (the API's reply cache, api/cache.c). */
        struct http_capture *capture;
        /* A request that changes something, offered to the dispatch
         * function on the pool thread first: it answers it (cheap and
         * provably right there, whatever other writes are queued or
         * running on the executors: they overlap it) or returns
         * HTTP_DEFER without replying, and the request goes to an
         * executor as usual. */
        bool try_inline;
};

#define HTTP_DEFER 1

struct http_capture {
        unsigned status;
        char *body; /* malloc'd copy (free it), len bytes */
        size_t len;
        bool json; /* content type application/json */
        bool set;
};

/* Returns 0 once a reply was queued, negative on failure to queue. */
typedef int (*http_dispatch_fn)(struct http_req *r, void *ctx);
/* Called once per request when its headers are in, before any body byte
 * is read (r->body is "" then). Returns 0 to go on (read the body, then
 * dispatch), 1 when it queued a reply itself (typically 401: the body is
 * never read and the connection is closed after the reply), negative on
 * failure to queue. */
typedef int (*http_admit_fn)(struct http_req *r, void *ctx);

struct http_opts {
        const char *host;
        int port; /* 0: any free port (http_server_port says which) */
        int threads;
        unsigned max_conns;        /* open connections in total */
        unsigned max_conns_per_ip; /* open connections per client address */
        unsigned timeout_sec;      /* idle connection timeout */
        const char *tls_cert;      /* PEM file paths; both NULL for plain HTTP */
        const char *tls_key;
};

struct http_server;
int http_server_start(const struct http_opts *o, http_admit_fn admit, http_dispatch_fn fn,
                      void *ctx, struct http_server **out, char *err, size_t errlen);
int http_server_port(const struct http_server *s);
/* "https" when serving TLS, else "http". */
const char *http_server_scheme(const struct http_server *s);
/* Stop accepting, let requests in flight finish, free. */
void http_server_stop(struct http_server *s);

const char *http_header(const struct http_req *r, const char *name);
const char *http_query(const struct http_req *r, const char *key);
/* Call fn for every query argument (for "unknown parameter" checks). */
void http_query_foreach(const struct http_req *r,
                        void (*fn)(void *arg, const char *key, const char *value), void *arg);
/* The same, with value NULL for an argument sent without '=' ("?a" and
 * "?a=" differ for http_query). */
void http_query_foreach_raw(const struct http_req *r,
                            void (*fn)(void *arg, const char *key, const char *value), void *arg);

/* Reply with a JSON body (reference stolen; NULL means an empty body). */
int http_reply_json(struct http_req *r, unsigned status, json_t *body);
/* The only function that writes error bodies. extra_header may be NULL, or
 * "Name: value" (e.g. the Allow header of a 405). */
/* A non-JSON reply (the Prometheus exposition); body is copied. */
/* A reply relayed from another node (cluster forwarding): any status, its
 * body and content type as received, and one extra "Name: value" header
 * (or NULL). */
int http_reply_relay(struct http_req *r, unsigned status, const char *content_type,
                     const char *body, size_t len, const char *extra_header);
int http_reply_text(struct http_req *r, unsigned status, const char *content_type, const char *body,
                    size_t len);
int http_reply_error(struct http_req *r, enum http_err err, const char *extra_header,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A non-JSON reply with extra headers (the status page's security headers,
 * a redirect's Location): headers is a NULL-terminated array of
 * "Name: value" strings with static storage (a reply kept for later holds
 * the pointer); body is copied. */
int http_reply_headers(struct http_req *r, unsigned status, const char *content_type,
                       const char *body, size_t len, const char *const *headers);
/* A JSON reply whose body is not copied: it must stay valid until
 * release(cls) is called (once, by the server, when the reply is sent or
 * dropped; also when this call fails). GET and HEAD only (pool thread). */
int http_reply_shared(struct http_req *r, unsigned status, const char *body, size_t len,
                      void (*release)(void *cls), void *cls);

#endif
