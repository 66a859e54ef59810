/* The status page: GET /ui/ serves the HTML, CSS and JavaScript compiled
 * into the binary (src/daemon/ui/, embedded by cmake/embed_assets.cmake).
 * These files hold no data, so they need no token; the page asks for the
 * token and sends it with each API request it makes (X-Auth-Token).
 *
 * Only the names in the embedded table are served, compared whole: no file
 * system is read, so no path (dot segments, encoded or not) reaches anything
 * else. Every reply carries a strict Content-Security-Policy: the page's own
 * script and style only, no inline code, API requests to this origin only,
 * never framed. */
#include "api/api.h"
#include "api/internal.h"
#include "api/ui_assets.h"

#include <string.h>

static const char *const g_headers[] = {
    "Cache-Control: no-store",
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Content-Type-Options: nosniff",
    "Referrer-Policy: no-referrer",
    "X-Frame-Options: DENY",
    NULL,
};

static const char *const g_redirect[] = {
    "Location: /ui/",
    "Cache-Control: no-store",
    NULL,
};

const struct ui_asset *ui_asset_find(const char *url)
{
        const char *name;

        if (strncmp(url, "/ui/", 4) != 0)
                return NULL;
        name = url + 4;
        if (!*name)
                name = "index.html";
        for (unsigned i = 0; i < ui_assets_count; i++)
                if (strcmp(name, ui_assets[i].name) == 0)
                        return &ui_assets[i];
        return NULL;
}

bool api_ui_path(const char *url)
{
        return strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0;
}

static const char *content_type(const char *name)
{
        const char *dot = strrchr(name, '.');

        if (dot && strcmp(dot, ".html") == 0)
                return "text/html; charset=utf-8";
        if (dot && strcmp(dot, ".js") == 0)
                return "text/javascript; charset=utf-8";
        if (dot && strcmp(dot, ".css") == 0)
                return "text/css; charset=utf-8";
        return "application/octet-stream";
}

static bool method_ok(const struct http_req *r)
{
        return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

static int reply_method(struct http_req *r)
{
        return http_reply_error(r, HTTP_ERR_METHOD, "Allow: GET, HEAD",
                                "method %s is not allowed on %s (allowed: GET, HEAD)", r->method,
                                r->url);
}

int api_ui_admit(struct http_req *r)
{
        if (method_ok(r))
                return 0;
        /* Refused before the body is read: nothing here takes one. */
        return reply_method(r) < 0 ? -1 : 1;
}

int api_ui_serve(struct http_req *r)
{
        const struct ui_asset *a;

        if (!method_ok(r))
                return reply_method(r);
        if (strcmp(r->url, "/") == 0 || strcmp(r->url, "/ui") == 0)
                return http_reply_headers(r, 302, "text/plain; charset=utf-8", "", 0, g_redirect);
        if (!(a = ui_asset_find(r->url)))
                return http_reply_error(r, HTTP_ERR_NOT_FOUND, NULL,
                                        "no such file of the status page (see /ui/)");
        return http_reply_headers(r, 200, content_type(a->name), (const char *)a->data, a->len,
                                  g_headers);
}
