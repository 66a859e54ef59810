/* Activity log bookkeeping. See actlog.h and replication.md (A1). */
#include "engine/actlog.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

void actlog_init(struct actlog *al, unsigned nslots)
{
        memset(al, 0, sizeof(*al));
        al->nslots = nslots == 0 || nslots > AL_MAX_SLOTS ? AL_MAX_SLOTS : nslots;
        for (unsigned i = 0; i < AL_MAX_SLOTS; i++)
                al->slots[i].extent = AL_NONE;
}

static int find(const struct actlog *al, uint64_t extent)
{
        for (unsigned i = 0; i < al->nslots; i++)
                if (al->slots[i].extent == extent)
                        return (int)i;
        return -1;
}

bool actlog_hot(const struct actlog *al, uint64_t extent)
{
        return find(al, extent) >= 0;
}

bool actlog_ref(struct actlog *al, uint64_t extent)
{
        int i = find(al, extent);

        if (i < 0)
                return false;
        al->slots[i].refs++;
        al->slots[i].used = ++al->tick;
        return true;
}

int actlog_insert(struct actlog *al, uint64_t extent, uint64_t *evicted)
{
        int best = -1;

        assert(extent != AL_NONE && find(al, extent) < 0);
        for (unsigned i = 0; i < al->nslots; i++) {
                const struct al_slot *s = &al->slots[i];

                if (s->extent == AL_NONE) {
                        best = (int)i;
                        break;
                }
                if (s->refs == 0 && (best < 0 || s->used < al->slots[best].used))
                        best = (int)i;
        }
        if (best < 0)
                return -EAGAIN;
        *evicted = al->slots[best].extent;
        al->slots[best].extent = extent;
        al->slots[best].refs = 1;
        al->slots[best].used = ++al->tick;
        return best;
}

void actlog_undo_insert(struct actlog *al, int slot, uint64_t extent, uint64_t old)
{
        struct al_slot *s = &al->slots[slot];

        if (s->extent == extent && s->refs == 1) {
                s->extent = old;
                s->refs = 0;
        } else {
                actlog_unref(al, extent);
        }
}

void actlog_unref(struct actlog *al, uint64_t extent)
{
        int i = find(al, extent);

        assert(i >= 0 && al->slots[i].refs > 0);
        if (i >= 0 && al->slots[i].refs > 0)
                al->slots[i].refs--;
}

unsigned actlog_extents(const struct actlog *al, uint64_t *out)
{
        unsigned n = 0;

        for (unsigned i = 0; i < al->nslots; i++)
                if (al->slots[i].extent != AL_NONE)
                        out[n++] = al->slots[i].extent;
        return n;
}

void actlog_clear(struct actlog *al)
{
        for (unsigned i = 0; i < al->nslots; i++) {
                assert(al->slots[i].refs == 0);
                al->slots[i].extent = AL_NONE;
                al->slots[i].refs = 0;
        }
}
