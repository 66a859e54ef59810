/* The CLI's HTTP client: one libcurl easy handle reused for every request (so
 * polling keeps one connection alive), JSON in and out, and the one place that
 * turns an HTTP status into the CLI's errno classes and prints API errors. */
#include "cli/cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_BODY_MAX    (64u << 20) /* refuse absurd answers */
#define HTTP_CONNECT_SEC 10L
#define HTTP_REQUEST_SEC 300L
#define HTTP_LIST_PAGE   1000
#define HTTP_ERR_SNIPPET 200

/* Where a token comes from: shared by the missing-token error and the 401. */
#define HTTP_TOKEN_HINT                                                                            \
        "a token is the first field of a line of evsrepd's tokens file, DATA_DIR/tokens "          \
        "(./.data/tokens under ./scripts/run.sh, /var/lib/evsrep/tokens for the systemd "          \
        "unit); evsrepd prints it on the start that creates the file. Set EVS_TOKEN or --token"

struct http_buf {
        char *data;
        size_t len, cap;
        bool too_big;
};

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
        struct http_buf *b = ud;
        size_t n = size * nmemb;

        if (b->len + n + 1 > HTTP_BODY_MAX) {
                b->too_big = true;
                return 0;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *p;

                while (cap < b->len + n + 1)
                        cap *= 2;
                p = realloc(b->data, cap);
                if (!p)
                        return 0;
                b->data = p;
                b->cap = cap;
        }
        memcpy(b->data + b->len, ptr, n);
        b->len += n;
        b->data[b->len] = '\0';
        return n;
}

/* Abort a transfer in flight when SIGINT arrived during a wait. */
static int http_xferinfo_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
        (void)ud;
        (void)dt;
        (void)dn;
        (void)ut;
        (void)un;
        return cli_wait_interrupted() ? 1 : 0;
}

static bool http_url_has_version(const char *url)
{
        const char *p = strstr(url, "://");

        p = p ? strchr(p + 3, '/') : NULL;
        return p && strncmp(p, "/v2/", 4) == 0 && p[4] != '\0';
}

int cli_http_init(struct cli *c)
{
        size_t len;

        if (!c->url || !*c->url)
                return cli_usage_error("no API URL: use --url or set EVS_URL");
        if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0)
                return cli_usage_error("the URL must start with http:// or https://: %s", c->url);
        if (!c->token || !*c->token)
                return cli_usage_error("no token: use --token or set EVS_TOKEN (" HTTP_TOKEN_HINT
                                       ")");
        len = strlen(c->url);
        while (len > 0 && c->url[len - 1] == '/')
                len--;
        if (http_url_has_version(c->url)) {
                if (asprintf(&c->base, "%.*s", (int)len, c->url) < 0)
                        return -ENOMEM;
        } else {
                if (!c->project || !*c->project)
                        return cli_usage_error(
                            "no project: use --project, set EVS_PROJECT, or give a URL "
                            "ending in /v2/{project}");
                if (asprintf(&c->base, "%.*s/v2/%s", (int)len, c->url, c->project) < 0)
                        return -ENOMEM;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -ENOMEM;
        c->curl = curl_easy_init();
        return c->curl ? 0 : -ENOMEM;
}

void cli_http_cleanup(struct cli *c)
{
        if (c->curl) {
                curl_easy_cleanup(c->curl);
                curl_global_cleanup();
                c->curl = NULL;
        }
        free(c->base);
        c->base = NULL;
}

static int http_status_errno(long status)
{
        if (status >= 200 && status < 300)
                return 0;
        switch (status) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 409:
                return -EBUSY;
        default:
                break;
        }
        if (status >= 400 && status < 500)
                return -EINVAL;
        return -EHOSTUNREACH;
}

/* "evsrep: HTTP 409 EVS.1234: message" from the API's error body, or the
 * first bytes of whatever came instead. */
static void http_print_error(const char *method, const char *url, long status,
                             const struct http_buf *b)
{
        json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
        json_t *e = j ? json_object_get(j, "error") : NULL;
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));

        if (msg)
                fprintf(stderr, "evsrep: HTTP %ld %s: %s\n", status, code ? code : "", msg);
        else
                fprintf(stderr, "evsrep: %s %s: HTTP %ld%s%.*s\n", method, url, status,
                        b->len ? ": " : "",
                        (int)(b->len < HTTP_ERR_SNIPPET ? b->len : HTTP_ERR_SNIPPET),
                        b->len ? b->data : "");
        if (status == 401)
                fprintf(stderr, "evsrep: hint: " HTTP_TOKEN_HINT "\n");
        else if (status == 403)
                fprintf(stderr, "evsrep: hint: the token is valid but not for this project: the "
                                "project is the second field of the token's line in the tokens "
                                "file (set EVS_PROJECT or --project)\n");
        json_decref(j);
}

/* What to try when no HTTP answer came, by curl's reason. */
static void http_print_unreachable(const char *url, CURLcode rc)
{
        fprintf(stderr, "evsrep: cannot reach %s: %s\n", url, curl_easy_strerror(rc));
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
            rc == CURLE_OPERATION_TIMEDOUT)
                fprintf(stderr, "evsrep: hint: is evsrepd running? It prints its API URL when it "
                                "starts (./scripts/run.sh: http://127.0.0.1:8776); the ports it "
                                "bound are in DATA_DIR/evsrepd.ports (set EVS_URL or --url)\n");
        else if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_WEIRD_SERVER_REPLY ||
                 rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR)
                fprintf(stderr, "evsrep: hint: something listens there but does not answer "
                                "HTTP: an NBD port (10809, 10810)? The API is on evsrepd's "
                                "listen address (default 127.0.0.1:8776, the http= line of "
                                "DATA_DIR/evsrepd.ports); an https:// API needs an https:// "
                                "URL\n");
}

static int http_perform(struct cli *c, const char *method, const char *url, const char *body,
                        struct http_buf *b, long *status)
{
        CURL *h = c->curl;
        struct curl_slist *hdrs = NULL, *tmp;
        char *auth = NULL;
        CURLcode rc;
        int ret = 0;

        *status = 0;
        if (asprintf(&auth, "X-Auth-Token: %s", c->token) < 0)
                return -ENOMEM;
        tmp = curl_slist_append(hdrs, auth);
        if (tmp)
                hdrs = tmp;
        tmp = curl_slist_append(hdrs, "Accept: application/json");
        if (tmp)
                hdrs = tmp;
        if (body) {
                tmp = curl_slist_append(hdrs, "Content-Type: application/json");
                if (tmp)
                        hdrs = tmp;
        }
        /* Expect: 100-continue would add a round trip to every POST. */
        tmp = curl_slist_append(hdrs, "Expect:");
        if (tmp)
                hdrs = tmp;

        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_SEC);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, HTTP_REQUEST_SEC);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_xferinfo_cb);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "evsrep/" EVSREP_VERSION);
        if (strcmp(method, "GET") != 0)
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }

        rc = curl_easy_perform(h);
        if (rc == CURLE_OK) {
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
                ret = -EINTR;
        } else if (rc == CURLE_WRITE_ERROR && b->too_big) {
                fprintf(stderr, "evsrep: %s %s: answer larger than %u bytes\n", method, url,
                        HTTP_BODY_MAX);
                ret = -EIO;
        } else {
                http_print_unreachable(url, rc);
                ret = -EHOSTUNREACH;
        }
        curl_slist_free_all(hdrs);
        free(auth);
        return ret;
}

int cli_http_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **out,
                  long *status_out, int flags)
{
        struct http_buf b = {0};
        char *url = NULL, *text = NULL;
        long status = 0;
        int rc;

        if (out)
                *out = NULL;
        if (asprintf(&url, "%s/%s", c->base, path) < 0)
                return -ENOMEM;
        if (body) {
                text = json_dumps(body, JSON_COMPACT);
                if (!text) {
                        free(url);
                        return -ENOMEM;
                }
        }
        rc = http_perform(c, method, url, text, &b, &status);
        if (rc == 0) {
                rc = http_status_errno(status);
                if (rc < 0 && !(rc == -ENOENT && (flags & CLI_HTTP_QUIET_404)))
                        http_print_error(method, url, status, &b);
        }
        if (rc == 0 && out && b.len > 0) {
                json_error_t err;

                *out = json_loadb(b.data, b.len, 0, &err);
                if (!*out) {
                        fprintf(stderr, "evsrep: %s %s: answer is not JSON: %s\n", method, url,
                                err.text);
                        rc = -EIO;
                }
        }
        if (status_out)
                *status_out = status;
        free(b.data);
        free(text);
        free(url);
        return rc;
}

int cli_http_query_add(struct cli *c, char *q, size_t cap, const char *key, const char *value)
{
        char *esc;
        size_t len = strlen(q);
        int n;

        if (!value)
                return 0;
        esc = curl_easy_escape(c->curl, value, 0);
        if (!esc)
                return -ENOMEM;
        n = snprintf(q + len, cap - len, "%s%s=%s", len ? "&" : "", key, esc);
        curl_free(esc);
        return n < 0 || (size_t)n >= cap - len ? -ENAMETOOLONG : 0;
}

int cli_http_list(struct cli *c, const char *path, const char *query, const char *key, json_t **out)
{
        json_t *all = json_array();
        char marker[128] = "";

        if (!all)
                return -ENOMEM;
        for (;;) {
                char *full = NULL;
                json_t *page = NULL, *items;
                size_t n;
                int rc;

                if (asprintf(&full, "%s?%s%slimit=%d%s%s", path, query ? query : "",
                             query && *query ? "&" : "", HTTP_LIST_PAGE, *marker ? "&marker=" : "",
                             marker) < 0) {
                        json_decref(all);
                        return -ENOMEM;
                }
                rc = cli_http_call(c, "GET", full, NULL, &page, NULL, 0);
                free(full);
                items = json_object_get(page, key);
                if (rc == 0 && !json_is_array(items)) {
                        fprintf(stderr, "evsrep: GET %s: answer has no \"%s\" list\n", path, key);
                        rc = -EIO;
                }
                if (rc < 0) {
                        json_decref(page);
                        json_decref(all);
                        return rc;
                }
                json_array_extend(all, items);
                n = json_array_size(items);
                if (n < HTTP_LIST_PAGE) {
                        json_decref(page);
                        break;
                }
                snprintf(marker, sizeof(marker), "%s", cli_str(json_array_get(items, n - 1), "id"));
                json_decref(page);
                if (!*marker)
                        break;
        }
        *out = all;
        return 0;
}
