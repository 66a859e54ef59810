/* The internal channel (docs/design/multi-site.md "Internal channel"): a
 * node forwards a client request whose data-plane work belongs to an AZ it
 * does not serve to the node serving it, as "/internal" + the original path
 * on that node's API listener, and relays the answer.
 *
 * Authentication: HMAC-SHA256 keyed with the cluster key over
 *   "evsrep-forward-v1" \n method \n path \n timestamp \n nonce \n
 *   hex(SHA-256(body)) \n project \n role \n sender
 * sent as X-Evsrep-Signature with the other fields in X-Evsrep-* headers.
 * The project and role are the ones the receiving node authenticated from
 * the client's token, so tokens need to be known only where clients send
 * them. The receiver refuses a timestamp more than 30 s from its clock and a
 * nonce it has seen in the last 30 s (a bounded cache: when it is full of
 * live nonces, requests are refused until entries age out).
 *
 * Forwarding runs on the HTTP executor thread that took the request (http
 * server: mutating requests are offloaded), with bounded connect and total
 * times so that a dead node costs a bounded wait, never a hang. */
#include "cluster/cluster.h"

#include "common/log.h"
#include "common/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SKEW_MAX_SEC       30
#define NONCE_CACHE        4096
#define NONCE_LEN          32 /* hex digits */
#define CONNECT_TIMEOUT_MS 2000L
#define TOTAL_TIMEOUT_MS   120000L /* a group action may run for tens of seconds */

static struct {
        pthread_mutex_t mu;
        uint8_t key[CLUSTER_KEY_BYTES];
        bool have_key;
        char self[STORE_NODE_NAME_LEN];
        struct {
                char nonce[NONCE_LEN + 1];
                int64_t at_sec;
        } seen[NONCE_CACHE];
        size_t nseen;
} f = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void curl_init_once(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Called from main's thread at start (cluster_node_start), before the HTTP
 * threads exist: curl_global_init is not thread-safe. */
void cluster_forward_set_key(const uint8_t key[CLUSTER_KEY_BYTES], const char *self)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, curl_init_once);
        pthread_mutex_lock(&f.mu);
        memcpy(f.key, key, CLUSTER_KEY_BYTES);
        f.have_key = true;
        snprintf(f.self, sizeof(f.self), "%s", self);
        pthread_mutex_unlock(&f.mu);
}

int cluster_key_copy(uint8_t key[CLUSTER_KEY_BYTES])
{
        int rc = 0;

        pthread_mutex_lock(&f.mu);
        if (f.have_key)
                memcpy(key, f.key, CLUSTER_KEY_BYTES);
        else
                rc = -ENOENT;
        pthread_mutex_unlock(&f.mu);
        return rc;
}

int cluster_forward_sign(const char *method, const char *path, const char *timestamp,
                         const char *nonce, const char *body, size_t len, const char *project,
                         const char *role, const char *sender, char out[65])
{
        uint8_t hash[32], mac[32];
        char hash_hex[65], *text = NULL;
        int n, rc;

        if (!f.have_key)
                return -EINVAL;
        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, body ? body : "", len, hash) < 0)
                return -EIO;
        util_hex(hash, sizeof(hash), hash_hex);
        n = asprintf(&text, "evsrep-forward-v1\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s", method, path,
                     timestamp, nonce, hash_hex, project, role, sender);
        if (n < 0)
                return -ENOMEM;
        rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, f.key, CLUSTER_KEY_BYTES, text, (size_t)n, mac);
        free(text);
        if (rc < 0)
                return -EIO;
        util_hex(mac, sizeof(mac), out);
        return 0;
}

/* ---------------------------------------------------------------- receive */

static bool hex_eq_ct(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        unsigned char d = la != lb;

        for (size_t i = 0; i < la && i < lb; i++)
                d |= (unsigned char)(a[i] ^ b[i]);
        return d == 0;
}

/* Remember nonce; false when it was seen in the window or the cache is full
 * of live entries. */
static bool nonce_fresh(const char *nonce, int64_t now_sec)
{
        size_t free_slot = NONCE_CACHE;
        bool ok = true;

        pthread_mutex_lock(&f.mu);
        for (size_t i = 0; i < f.nseen; i++) {
                if (now_sec - f.seen[i].at_sec > 2 * SKEW_MAX_SEC) {
                        if (free_slot == NONCE_CACHE)
                                free_slot = i;
                        continue;
                }
                if (strcmp(f.seen[i].nonce, nonce) == 0)
                        ok = false;
        }
        if (ok) {
                if (free_slot == NONCE_CACHE && f.nseen < NONCE_CACHE)
                        free_slot = f.nseen++;
                if (free_slot == NONCE_CACHE) {
                        ok = false;
                } else {
                        snprintf(f.seen[free_slot].nonce, sizeof(f.seen[free_slot].nonce), "%s",
                                 nonce);
                        f.seen[free_slot].at_sec = now_sec;
                }
        }
        pthread_mutex_unlock(&f.mu);
        return ok;
}

int cluster_forward_verify(const char *method, const char *path, const char *body, size_t len,
                           const struct cluster_auth_hdrs *h, char *msg, size_t msglen)
{
        char want[65], *end;
        int64_t now = util_now_usec() / 1000000, ts;

        if (!h->node || !h->timestamp || !h->nonce || !h->project || !h->role || !h->signature) {
                snprintf(msg, msglen, "missing X-Evsrep-* headers");
                return -EACCES;
        }
        ts = strtoll(h->timestamp, &end, 10);
        if (!*h->timestamp || *end || ts < now - SKEW_MAX_SEC || ts > now + SKEW_MAX_SEC) {
                snprintf(msg, msglen, "stale or bad timestamp '%.32s' (now %" PRId64 ")",
                         h->timestamp, now);
                return -EACCES;
        }
        if (strlen(h->nonce) != NONCE_LEN || strspn(h->nonce, "0123456789abcdef") != NONCE_LEN) {
                snprintf(msg, msglen, "bad nonce");
                return -EACCES;
        }
        if (strcmp(h->role, "member") != 0 && strcmp(h->role, "operator") != 0) {
                snprintf(msg, msglen, "bad role");
                return -EACCES;
        }
        if (cluster_forward_sign(method, path, h->timestamp, h->nonce, body, len, h->project,
                                 h->role, h->node, want) < 0 ||
            !hex_eq_ct(want, h->signature)) {
                snprintf(msg, msglen, "bad signature (from '%.64s')", h->node);
                return -EACCES;
        }
        /* Only a correctly signed request may take a nonce slot. */
        if (!nonce_fresh(h->nonce, now)) {
                snprintf(msg, msglen, "nonce replayed (from '%.64s')", h->node);
                return -EACCES;
        }
        return 0;
}

/* ---------------------------------------------------------------- send */

struct sink {
        char *buf;
        size_t len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
        struct sink *s = arg;
        size_t n = size * nmemb;
        char *grown;

        if (s->len + n > 4u * 1024 * 1024)
                return 0; /* no answer of ours is that large */
        grown = realloc(s->buf, s->len + n + 1);
        if (!grown)
                return 0;
        s->buf = grown;
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        s->buf[s->len] = '\0';
        return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
        struct cluster_reply *r = arg;
        size_t n = size * nmemb;
        char line[256];
        char *v;

        if (n >= sizeof(line))
                return n;
        memcpy(line, p, n);
        line[n] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (!(v = strchr(line, ':')))
                return n;
        *v++ = '\0';
        v += strspn(v, " ");
        if (strcasecmp(line, "Content-Type") == 0)
                snprintf(r->content_type, sizeof(r->content_type), "%s", v);
        else if (strcasecmp(line, "Retry-After") == 0)
                snprintf(r->retry_after, sizeof(r->retry_after), "%s", v);
        return n;
}

void cluster_reply_free(struct cluster_reply *r)
{
        free(r->body);
        r->body = NULL;
}

int cluster_forward_send(const struct store_node *node, const char *method, const char *path,
                         const char *project, bool is_operator, const char *body, size_t len,
                         struct cluster_reply *out, char *msg, size_t msglen)
{
        return cluster_forward_send_ms(node, method, path, project, is_operator, body, len,
                                       TOTAL_TIMEOUT_MS, out, msg, msglen);
}

int cluster_forward_send_ms(const struct store_node *node, const char *method, const char *path,
                            const char *project, bool is_operator, const char *body, size_t len,
                            long total_ms, struct cluster_reply *out, char *msg, size_t msglen)
{
        const char *role = is_operator ? "operator" : "member";
        char url[STORE_URL_LEN + 512], ts[24], nonce[NONCE_LEN + 1], sig[65], self[64];
        char hdr[6][160];
        uint8_t rnd[NONCE_LEN / 2];
        struct curl_slist *hl = NULL;
        struct sink sink = {0};
        CURL *h;
        CURLcode cc;
        int rc;

        memset(out, 0, sizeof(*out));
        pthread_mutex_lock(&f.mu);
        snprintf(self, sizeof(self), "%s", f.self);
        pthread_mutex_unlock(&f.mu);
        if ((rc = util_random(rnd, sizeof(rnd))) < 0)
                return rc;
        util_hex(rnd, sizeof(rnd), nonce);
        snprintf(ts, sizeof(ts), "%" PRId64, util_now_usec() / 1000000);
        snprintf(url, sizeof(url), "%s/internal%s", node->api_url, path);
        if ((rc = cluster_forward_sign(method, path, ts, nonce, body, len, project, role, self,
                                       sig)) < 0)
                return rc;
        snprintf(hdr[0], sizeof(hdr[0]), "X-Evsrep-Node: %s", self);
        snprintf(hdr[1], sizeof(hdr[1]), "X-Evsrep-Timestamp: %s", ts);
        snprintf(hdr[2], sizeof(hdr[2]), "X-Evsrep-Nonce: %s", nonce);
        snprintf(hdr[3], sizeof(hdr[3]), "X-Evsrep-Project: %s", project);
        snprintf(hdr[4], sizeof(hdr[4]), "X-Evsrep-Role: %s", role);
        snprintf(hdr[5], sizeof(hdr[5]), "X-Evsrep-Signature: %s", sig);
        if (!(h = curl_easy_init()))
                return -ENOMEM;
        for (size_t i = 0; i < ARRAY_SIZE(hdr); i++)
                hl = curl_slist_append(hl, hdr[i]);
        hl = curl_slist_append(hl, "Content-Type: application/json");
        hl = curl_slist_append(hl, "Accept: application/json");
        hl = curl_slist_append(hl, "Expect:");
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (len > 0) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, MIN(CONNECT_TIMEOUT_MS, total_ms));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        cc = curl_easy_perform(h);
        if (cc == CURLE_OK) {
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
                out->body = sink.buf ? sink.buf : strdup("");
                out->len = sink.len;
                rc = out->body ? 0 : -ENOMEM;
        } else {
                snprintf(msg, msglen, "%s", curl_easy_strerror(cc));
                free(sink.buf);
                rc = -EHOSTUNREACH;
        }
        curl_slist_free_all(hl);
        curl_easy_cleanup(h);
        return rc;
}
