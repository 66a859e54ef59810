/* The reply cache's table: see cache.h and docs/design/control-plane.md
 * "Reply cache". A hash table of entries (chained, fixed bucket count) and
 * a least-recently-used list, under one mutex. An entry is immutable once
 * stored; a lookup takes a reference so its body can be sent after the
 * mutex is released, even if the entry is evicted meanwhile. */
#include "api/cache.h"
#include "common/replygen.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct api_cache_entry {
        struct api_cache *owner;
        struct api_cache_entry *hnext;       /* bucket chain */
        struct api_cache_entry *prev, *next; /* LRU: head is the most recent */
        char *key;
        size_t klen;
        uint64_t hash;
        uint64_t gen;
        /* The live epoch at the build, or at the last full re-read that
         * found every note the same; covered: every pair note's inputs are
         * under rule L (control-plane.md "The live epoch"). */
        atomic_uint_least64_t live;
        bool covered;
        unsigned status;
        char *body;
        size_t len;
        struct replygen_note *notes;
        size_t nnotes;
        unsigned char *arena;
        size_t bytes; /* accounted against max_bytes */
        /* The table's (while linked) plus each hit's. Taken under mu (a
         * lookup finds the entry there); let go with no lock: it reaches 0
         * only once the table's reference is gone, when no lookup can find
         * it any more, so the last one frees it. */
        atomic_int refs;
        bool linked;
};

struct api_cache {
        pthread_mutex_t mu;
        struct api_cache_entry **buckets;
        size_t nbuckets; /* a power of two */
        struct api_cache_entry *head, *tail;
        size_t n, bytes;
        size_t max_entries, max_bytes;
};

/* ---- keys ---- */

static void key_put(struct api_cache_key *k, const char *s)
{
        size_t n = strlen(s), w = 0;
        char num[24];

        if (k->overflow)
                return;
        /* "<length>:" (no snprintf: every GET builds a key) */
        num[sizeof(num) - 1] = ':';
        for (size_t v = n; w == 0 || v; v /= 10)
                num[sizeof(num) - 2 - w++] = (char)('0' + v % 10);
        w++;
        if (w + n + 1 >= sizeof(k->buf) - k->len) {
                k->overflow = true;
                return;
        }
        memcpy(k->buf + k->len, num + sizeof(num) - w, w);
        k->len += w;
        memcpy(k->buf + k->len, s, n);
        k->len += n;
        k->buf[k->len++] = '|';
        k->buf[k->len] = '\0';
}

void api_cache_key_init(struct api_cache_key *k, const char *project, bool is_operator,
                        const char *path)
{
        k->len = 0;
        k->overflow = false;
        k->buf[0] = '\0';
        key_put(k, project);
        key_put(k, is_operator ? "operator" : "member");
        key_put(k, path);
}

void api_cache_key_arg(struct api_cache_key *k, const char *name, const char *value)
{
        /* "?a" (value NULL) and "?a=" differ for http_query. */
        key_put(k, "?");
        key_put(k, name);
        if (value) {
                key_put(k, "=");
                key_put(k, value);
        }
}

static uint64_t key_hash(const struct api_cache_key *k)
{
        uint64_t h = 14695981039346656037ull;

        for (size_t i = 0; i < k->len; i++)
                h = (h ^ (unsigned char)k->buf[i]) * 1099511628211ull;
        return h;
}

/* ---- table ---- */

struct api_cache *api_cache_new(size_t max_entries, size_t max_bytes)
{
        struct api_cache *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->max_entries = max_entries;
        c->max_bytes = max_bytes;
        c->nbuckets = 16;
        while (c->nbuckets < 2 * max_entries && c->nbuckets < (1u << 20))
                c->nbuckets *= 2;
        c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
        if (!c->buckets) {
                free(c);
                return NULL;
        }
        pthread_mutex_init(&c->mu, NULL);
        return c;
}

static void entry_free(struct api_cache_entry *e)
{
        free(e->key);
        free(e->body);
        free(e->notes);
        free(e->arena);
        free(e);
}

static void lru_unlink(struct api_cache *c, struct api_cache_entry *e)
{
        if (e->prev)
                e->prev->next = e->next;
        else
                c->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                c->tail = e->prev;
        e->prev = e->next = NULL;
}

static void lru_push(struct api_cache *c, struct api_cache_entry *e)
{
        e->prev = NULL;
        e->next = c->head;
        if (c->head)
                c->head->prev = e;
        c->head = e;
        if (!c->tail)
                c->tail = e;
}

static void unref(struct api_cache_entry *e)
{
        if (atomic_fetch_sub(&e->refs, 1) == 1)
                entry_free(e);
}

/* Take e out of the table (mu held); freed when its last hit lets go. */
static void drop_locked(struct api_cache *c, struct api_cache_entry *e)
{
        struct api_cache_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

        if (!e->linked)
                return;
        while (*pp && *pp != e)
                pp = &(*pp)->hnext;
        if (*pp)
                *pp = e->hnext;
        lru_unlink(c, e);
        e->linked = false;
        c->n--;
        c->bytes -= e->bytes;
        atomic_fetch_sub(&g_replygen_stats.entries, 1);
        atomic_fetch_sub(&g_replygen_stats.bytes, (int_least64_t)e->bytes);
        unref(e);
}

void api_cache_free(struct api_cache *c)
{
        if (!c)
                return;
        pthread_mutex_lock(&c->mu);
        while (c->head)
                drop_locked(c, c->head);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_destroy(&c->mu);
        free(c->buckets);
        free(c);
}

static struct api_cache_entry *find_locked(struct api_cache *c, const struct api_cache_key *k,
                                           uint64_t h)
{
        for (struct api_cache_entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
                if (e->hash == h && e->klen == k->len && memcmp(e->key, k->buf, k->len) == 0)
                        return e;
        return NULL;
}

/* skip_pairs: the live epoch has not moved since the entry's, which is
 * covered: its pair notes read the same (rule L). */
static bool notes_same(const struct api_cache_entry *e, api_cache_check_fn check, void *ctx,
                       bool skip_pairs)
{
        for (size_t i = 0; i < e->nnotes; i++) {
                if (skip_pairs && e->notes[i].src == REPLYGEN_PAIR_LIVE)
                        continue;
                if (!check(ctx, &e->notes[i], e->arena + e->notes[i].off))
                        return false;
        }
        return true;
}

int api_cache_lookup(struct api_cache *c, const struct api_cache_key *k, api_cache_check_fn check,
                     void *ctx, struct api_cache_hit *hit)
{
        uint64_t h = key_hash(k);
        struct api_cache_entry *e;
        uint64_t live;
        bool ok, skip;

        memset(hit, 0, sizeof(*hit));
        if (k->overflow || c->max_entries == 0)
                return 0;
        /* File events first: a change made before this request was sent
         * bumps the generation before it is compared (replygen_fs.c). */
        replygen_fs_drain();
        pthread_mutex_lock(&c->mu);
        e = find_locked(c, k, h);
        if (e && e->gen != replygen_now()) {
                drop_locked(c, e); /* a store write since it was built */
                atomic_fetch_add(&g_replygen_stats.invalidations, 1);
                e = NULL;
        }
        if (!e) {
                pthread_mutex_unlock(&c->mu);
                atomic_fetch_add(&g_replygen_stats.misses, 1);
                return 0;
        }
        atomic_fetch_add(&e->refs, 1);
        lru_unlink(c, e);
        lru_push(c, e);
        pthread_mutex_unlock(&c->mu);

        /* The live inputs, re-read with no cache lock held (the pair notes
         * only when the live epoch moved); then the generation again (a
         * write during the re-read: not served). The epoch is read before
         * the re-read: a full re-read that matches makes it the entry's. */
        live = replygen_live_now();
        skip = e->covered && atomic_load(&e->live) == live;
        ok = notes_same(e, check, ctx, skip) && e->gen == replygen_now();
        if (ok && !skip && e->covered)
                atomic_store(&e->live, live);
        if (ok && skip)
                atomic_fetch_add(&g_replygen_stats.live_skips, 1);
        if (!ok) {
                pthread_mutex_lock(&c->mu);
                drop_locked(c, e);
                unref(e);
                pthread_mutex_unlock(&c->mu);
                atomic_fetch_add(&g_replygen_stats.invalidations, 1);
                atomic_fetch_add(&g_replygen_stats.misses, 1);
                return 0;
        }
        atomic_fetch_add(&g_replygen_stats.hits, 1);
        hit->e = e;
        hit->body = e->body;
        hit->len = e->len;
        hit->status = e->status;
        return 1;
}

void api_cache_entry_release(void *entry)
{
        unref(entry); /* no lock (see refs) */
}

void api_cache_hit_release(struct api_cache *c, struct api_cache_hit *hit)
{
        (void)c;
        if (!hit->e)
                return;
        unref(hit->e);
        hit->e = NULL;
}

static struct api_cache_entry *entry_new(struct api_cache *c, const struct api_cache_key *k,
                                         uint64_t gen, unsigned status, const char *body,
                                         size_t len, const struct replygen_rec *rec)
{
        struct api_cache_entry *e = calloc(1, sizeof(*e));

        if (!e)
                return NULL;
        e->key = malloc(k->len);
        e->body = malloc(len ? len : 1);
        e->nnotes = rec ? rec->n : 0;
        e->notes = malloc((e->nnotes ? e->nnotes : 1) * sizeof(*e->notes));
        e->arena = malloc(rec && rec->used ? rec->used : 1);
        if (!e->key || !e->body || !e->notes || !e->arena) {
                entry_free(e);
                return NULL;
        }
        memcpy(e->key, k->buf, k->len);
        e->owner = c;
        e->klen = k->len;
        e->hash = key_hash(k);
        e->gen = gen;
        atomic_init(&e->live, rec ? rec->live : replygen_live_now());
        e->covered = !rec || !rec->uncovered;
        e->status = status;
        memcpy(e->body, body, len);
        e->len = len;
        if (e->nnotes) {
                memcpy(e->notes, rec->notes, e->nnotes * sizeof(*e->notes));
                memcpy(e->arena, rec->arena, rec->used);
        }
        e->bytes =
            len + k->len + e->nnotes * sizeof(*e->notes) + (rec ? rec->used : 0) + sizeof(*e);
        return e;
}

void api_cache_store(struct api_cache *c, const struct api_cache_key *k, uint64_t gen,
                     unsigned status, const char *body, size_t len, const struct replygen_rec *rec)
{
        struct api_cache_entry *e, *old;

        if (c->max_entries == 0 || k->overflow || (rec && rec->tainted) || len > c->max_bytes / 8 ||
            gen != replygen_now())
                return;
        if (!(e = entry_new(c, k, gen, status, body, len, rec)))
                return;
        pthread_mutex_lock(&c->mu);
        if (gen != replygen_now() || e->bytes > c->max_bytes) {
                pthread_mutex_unlock(&c->mu);
                entry_free(e);
                return;
        }
        if ((old = find_locked(c, k, e->hash)))
                drop_locked(c, old);
        e->hnext = c->buckets[e->hash & (c->nbuckets - 1)];
        c->buckets[e->hash & (c->nbuckets - 1)] = e;
        lru_push(c, e);
        e->linked = true;
        atomic_store(&e->refs, 1);
        c->n++;
        c->bytes += e->bytes;
        atomic_fetch_add(&g_replygen_stats.entries, 1);
        atomic_fetch_add(&g_replygen_stats.bytes, (int_least64_t)e->bytes);
        atomic_fetch_add(&g_replygen_stats.stores, 1);
        while (c->tail && (c->n > c->max_entries || c->bytes > c->max_bytes))
                drop_locked(c, c->tail);
        pthread_mutex_unlock(&c->mu);
}

void api_cache_usage(struct api_cache *c, size_t *entries, size_t *bytes)
{
        pthread_mutex_lock(&c->mu);
        *entries = c->n;
        *bytes = c->bytes;
        pthread_mutex_unlock(&c->mu);
}
