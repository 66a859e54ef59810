/* Registry of exported volumes: what each site's NBD server can serve. */
#include "common/util.h"
#include "volume/volume.h"

#include <pthread.h>
#include <errno.h>
#include <string.h>

struct reg_entry {
        struct volume *v;
        struct reg_entry *next;
};

static pthread_rwlock_t g_reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct reg_entry *g_reg_head;

int volreg_add(struct volume *v)
{
        struct reg_entry *e = calloc(1, sizeof(*e));

        if (!e)
                return -ENOMEM;
        volume_get(v);
        e->v = v;
        pthread_rwlock_wrlock(&g_reg_lock);
        e->next = g_reg_head;
        g_reg_head = e;
        pthread_rwlock_unlock(&g_reg_lock);
        return 0;
}

struct volume *volreg_lookup(const char *site, const char *id)
{
        struct volume *found = NULL;

        pthread_rwlock_rdlock(&g_reg_lock);
        for (struct reg_entry *e = g_reg_head; e; e = e->next) {
                if (strcmp(volume_id(e->v), id) == 0 &&
                    (!site || strcmp(volume_site(e->v), site) == 0)) {
                        found = e->v;
                        volume_get(found);
                        break;
                }
        }
        pthread_rwlock_unlock(&g_reg_lock);
        return found;
}

void volreg_remove(const char *id)
{
        struct volume *victim = NULL;

        pthread_rwlock_wrlock(&g_reg_lock);
        for (struct reg_entry **pp = &g_reg_head; *pp; pp = &(*pp)->next) {
                if (strcmp(volume_id((*pp)->v), id) == 0) {
                        struct reg_entry *e = *pp;
                        *pp = e->next;
                        victim = e->v;
                        free(e);
                        break;
                }
        }
        pthread_rwlock_unlock(&g_reg_lock);
        volume_put(victim);
}

void volreg_foreach(const char *site, void (*fn)(struct volume *v, void *arg), void *arg)
{
        pthread_rwlock_rdlock(&g_reg_lock);
        for (struct reg_entry *e = g_reg_head; e; e = e->next)
                if (!site || strcmp(volume_site(e->v), site) == 0)
                        fn(e->v, arg);
        pthread_rwlock_unlock(&g_reg_lock);
}
