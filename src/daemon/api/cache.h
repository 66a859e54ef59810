/* The API reply cache (docs/design/control-plane.md "Reply cache"): 200
 * replies of the pair and group GETs, keyed by project, role, path and
 * query, valid while the state generation has not moved and every live
 * input noted while the reply was built reads the same again
 * (common/replygen.h). Bounded in entries and bytes, least recently used
 * first out. Off with a shared store (PostgreSQL: other nodes write it).
 *
 * Lock order: the cache's mutex is a leaf; it is never held while a note is
 * re-read or a handler runs. */
#ifndef EVSREP_API_CACHE_H
#define EVSREP_API_CACHE_H

#include "common/replygen.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_CACHE_KEY_MAX 2048

/* A key: length-prefixed components, so no two requests share one. */
struct api_cache_key {
        char buf[API_CACHE_KEY_MAX];
        size_t len;
        bool overflow; /* too long: not cacheable */
};

void api_cache_key_init(struct api_cache_key *k, const char *project, bool is_operator,
                        const char *path);
/* Every query argument, in the order the request sent them; value NULL
 * for an argument sent without '='. */
void api_cache_key_arg(struct api_cache_key *k, const char *name, const char *value);

struct api_cache;

/* max_entries 0: a cache that never stores (off). */
struct api_cache *api_cache_new(size_t max_entries, size_t max_bytes);
void api_cache_free(struct api_cache *c);

/* Re-read note n now: true when it gives bytes (n->len of them) again. */
typedef bool (*api_cache_check_fn)(void *ctx, const struct replygen_note *n,
                                   const unsigned char *bytes);

struct api_cache_entry;
struct api_cache_hit {
        struct api_cache_entry *e;
        const char *body;
        size_t len;
        unsigned status;
};

/* 1: a valid entry, held in *hit until api_cache_hit_release; 0: none
 * (a stale entry found is dropped). check re-reads each note with no cache
 * lock held. */
int api_cache_lookup(struct api_cache *c, const struct api_cache_key *k, api_cache_check_fn check,
                     void *ctx, struct api_cache_hit *hit);
void api_cache_hit_release(struct api_cache *c, struct api_cache_hit *hit);
/* The same for a hit whose body was handed over (http_reply_shared):
 * entry is hit->e; called once, when the reply is done with it. */
void api_cache_entry_release(void *entry);

/* Keep a reply built from state generation gen (read before the build)
 * with the build's notes; nothing when rec is tainted, the generation has
 * moved since, or the reply is over an eighth of the byte bound. */
void api_cache_store(struct api_cache *c, const struct api_cache_key *k, uint64_t gen,
                     unsigned status, const char *body, size_t len, const struct replygen_rec *rec);

/* Entries and body bytes held now (tests). */
void api_cache_usage(struct api_cache *c, size_t *entries, size_t *bytes);

#endif
