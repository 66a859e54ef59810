/* See replygen.h. */
#include "common/replygen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_least64_t g_gen = 1;
static atomic_uint_least64_t g_live = 1;
static _Thread_local struct replygen_rec *t_rec;

struct replygen_stats g_replygen_stats;

uint64_t replygen_now(void)
{
        return atomic_load_explicit(&g_gen, memory_order_acquire);
}

void replygen_bump(void)
{
        /* seq_cst: the bump is ordered after the store write that precedes
         * it (the backend call returned), and a lookup's load after it
         * sees it. */
        atomic_fetch_add(&g_gen, 1);
}

uint64_t replygen_live_now(void)
{
        return atomic_load(&g_live);
}

void replygen_live_bump(void)
{
        /* seq_cst, inside the writer's critical section (rule L) */
        atomic_fetch_add(&g_live, 1);
}

void replygen_live_uncovered(void)
{
        if (t_rec)
                t_rec->uncovered = true;
}

void replygen_rec_arm(struct replygen_rec *rec)
{
        if (rec) {
                rec->n = 0;
                rec->used = 0;
                rec->tainted = false;
                rec->uncovered = false;
                rec->live = replygen_live_now();
        }
        t_rec = rec;
}

void replygen_rec_free(struct replygen_rec *rec)
{
        if (!rec)
                return;
        if (t_rec == rec)
                t_rec = NULL;
        free(rec->notes);
        free(rec->arena);
        memset(rec, 0, sizeof(*rec));
}

void replygen_taint(void)
{
        if (t_rec)
                t_rec->tainted = true;
}

void replygen_note(enum replygen_src src, const char *id, const void *bytes, size_t len)
{
        struct replygen_rec *r = t_rec;
        struct replygen_note *nt;

        if (!r || r->tainted)
                return;
        if (r->n == REPLYGEN_NOTES_MAX || strlen(id) >= REPLYGEN_ID_LEN || len > UINT32_MAX) {
                r->tainted = true;
                return;
        }
        if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 16;
                struct replygen_note *nn = realloc(r->notes, cap * sizeof(*nn));

                if (!nn) {
                        r->tainted = true;
                        return;
                }
                r->notes = nn;
                r->cap = cap;
        }
        if (r->used + len > r->arena_cap) {
                size_t cap = r->arena_cap ? r->arena_cap * 2 : 1024;
                unsigned char *na;

                while (cap < r->used + len)
                        cap *= 2;
                na = realloc(r->arena, cap);
                if (!na) {
                        r->tainted = true;
                        return;
                }
                r->arena = na;
                r->arena_cap = cap;
        }
        nt = &r->notes[r->n++];
        memset(nt, 0, sizeof(*nt));
        nt->src = (uint8_t)src;
        snprintf(nt->id, sizeof(nt->id), "%s", id);
        nt->off = (uint32_t)r->used;
        nt->len = (uint32_t)len;
        if (len)
                memcpy(r->arena + r->used, bytes, len);
        r->used += len;
}
