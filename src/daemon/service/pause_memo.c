/* See pause_memo.h. */
#include "service/pause_memo.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MEMO_SLOTS 64 /* a power of two */

struct memo_slot {
        bool used;
        uint64_t gen;
        char project[STORE_PROJECT_LEN];
        char group_id[STORE_ID_LEN];
        char (*ids)[STORE_ID_LEN];
        size_t n;
};

#define HOLD_SLOTS 64 /* the service's group stripes */

struct pause_memo {
        pthread_mutex_t mu;
        struct memo_slot slots[MEMO_SLOTS];
        atomic_int holders[HOLD_SLOTS];
};

struct pause_memo *pause_memo_new(void)
{
        struct pause_memo *pm = calloc(1, sizeof(*pm));

        if (pm)
                pthread_mutex_init(&pm->mu, NULL);
        return pm;
}

void pause_memo_free(struct pause_memo *pm)
{
        if (!pm)
                return;
        for (size_t i = 0; i < MEMO_SLOTS; i++)
                free(pm->slots[i].ids);
        pthread_mutex_destroy(&pm->mu);
        free(pm);
}

void pause_memo_hold(struct pause_memo *pm, size_t k, int delta)
{
        if (pm)
                atomic_fetch_add(&pm->holders[k % HOLD_SLOTS], delta);
}

int pause_memo_holders(struct pause_memo *pm, size_t k)
{
        return pm ? atomic_load(&pm->holders[k % HOLD_SLOTS]) : 0;
}

static struct memo_slot *slot_of(struct pause_memo *pm, const char *group_id)
{
        uint32_t h = 2166136261u;

        for (const char *p = group_id; *p; p++)
                h = (h ^ (unsigned char)*p) * 16777619u;
        return &pm->slots[h & (MEMO_SLOTS - 1)];
}

bool pause_memo_get(struct pause_memo *pm, const char *project, const char *group_id, uint64_t gen,
                    char (*ids)[STORE_ID_LEN], size_t max, size_t *n)
{
        struct memo_slot *s;
        bool hit;

        if (!pm)
                return false;
        s = slot_of(pm, group_id);
        pthread_mutex_lock(&pm->mu);
        hit = s->used && s->gen == gen && s->n <= max && strcmp(s->group_id, group_id) == 0 &&
              strcmp(s->project, project) == 0;
        if (hit) {
                memcpy(ids, s->ids, s->n * sizeof(*ids));
                *n = s->n;
        }
        pthread_mutex_unlock(&pm->mu);
        return hit;
}

void pause_memo_put(struct pause_memo *pm, const char *project, const char *group_id, uint64_t gen,
                    const char (*ids)[STORE_ID_LEN], size_t n)
{
        struct memo_slot *s;
        char(*copy)[STORE_ID_LEN];

        if (!pm || n == 0 || strlen(project) >= STORE_PROJECT_LEN ||
            strlen(group_id) >= STORE_ID_LEN || !(copy = malloc(n * sizeof(*copy))))
                return;
        memcpy(copy, ids, n * sizeof(*copy));
        s = slot_of(pm, group_id);
        pthread_mutex_lock(&pm->mu);
        free(s->ids);
        s->ids = copy;
        s->n = n;
        s->gen = gen;
        strcpy(s->project, project);
        strcpy(s->group_id, group_id);
        s->used = true;
        pthread_mutex_unlock(&pm->mu);
}
