/* Exclusive chunk-range locks. See rangelock.h.
 *
 * A short array of held ranges under one mutex: the number of holders is
 * bounded by the client I/O threads plus the resync worker, so a linear
 * scan beats any tree here. */
#include "engine/rangelock.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

int rangelock_init(struct rangelock *rl)
{
        rl->held = NULL;
        rl->n = rl->cap = 0;
        rl->waiters = 0;
        pthread_mutex_init(&rl->mu, NULL);
        pthread_cond_init(&rl->cv, NULL);
        return 0;
}

void rangelock_destroy(struct rangelock *rl)
{
        assert(rl->n == 0);
        free(rl->held);
        pthread_mutex_destroy(&rl->mu);
        pthread_cond_destroy(&rl->cv);
}

static bool overlaps(const struct rangelock *rl, uint64_t first, uint64_t last)
{
        for (size_t i = 0; i < rl->n; i++)
                if (first <= rl->held[i].last && rl->held[i].first <= last)
                        return true;
        return false;
}

static int add(struct rangelock *rl, uint64_t first, uint64_t last)
{
        if (rl->n == rl->cap) {
                size_t cap = rl->cap ? rl->cap * 2 : 16;
                struct rl_range *h = realloc(rl->held, cap * sizeof(*h));

                if (!h)
                        return -ENOMEM;
                rl->held = h;
                rl->cap = cap;
        }
        rl->held[rl->n].first = first;
        rl->held[rl->n].last = last;
        rl->n++;
        return 0;
}

int rangelock_acquire(struct rangelock *rl, uint64_t first, uint64_t last)
{
        int rc;

        assert(first <= last);
        pthread_mutex_lock(&rl->mu);
        while (overlaps(rl, first, last)) {
                rl->waiters++;
                pthread_cond_wait(&rl->cv, &rl->mu);
                rl->waiters--;
        }
        rc = add(rl, first, last);
        pthread_mutex_unlock(&rl->mu);
        return rc;
}

int rangelock_try(struct rangelock *rl, uint64_t first, uint64_t last)
{
        int rc = -EBUSY;

        assert(first <= last);
        pthread_mutex_lock(&rl->mu);
        if (!overlaps(rl, first, last))
                rc = add(rl, first, last);
        pthread_mutex_unlock(&rl->mu);
        return rc;
}

void rangelock_release(struct rangelock *rl, uint64_t first, uint64_t last)
{
        size_t i;

        pthread_mutex_lock(&rl->mu);
        for (i = 0; i < rl->n; i++)
                if (rl->held[i].first == first && rl->held[i].last == last)
                        break;
        assert(i < rl->n);
        if (i < rl->n)
                rl->held[i] = rl->held[--rl->n];
        if (rl->waiters)
                pthread_cond_broadcast(&rl->cv);
        pthread_mutex_unlock(&rl->mu);
}

size_t rangelock_held(struct rangelock *rl)
{
        size_t n;

        pthread_mutex_lock(&rl->mu);
        n = rl->n;
        pthread_mutex_unlock(&rl->mu);
        return n;
}
