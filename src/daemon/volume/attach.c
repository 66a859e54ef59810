/* Attachments in memory (attach.h; docs/design/nbd.md "Attachments"). */
#include "volume/attach.h"

#include "common/util.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ATTACH_ID_LEN   64
#define ATTACH_NAME_LEN 128

struct attachment {
        char id[ATTACH_ID_LEN];
        char export_name[ATTACH_NAME_LEN];
        char volume_id[ATTACH_ID_LEN];
        char site[ATTACH_ID_LEN];
        unsigned char psk[32];
        size_t psk_len;
        bool read_only;
        bool link; /* a mirror link's export (attach_add_link) */
        atomic_bool revoked;
        atomic_uint refs;
        struct attachment *next; /* under g_lock, while in the table */

        pthread_mutex_t mu; /* the watched sockets */
        int *fds;
        size_t nfds, capfds;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct attachment *g_head;
static unsigned g_count;

static void copy(char *dst, size_t cap, const char *src)
{
        size_t n = strnlen(src, cap - 1);

        memcpy(dst, src, n);
        dst[n] = '\0';
}

static int unhex(const char *hex, unsigned char *out, size_t cap, size_t *len)
{
        size_t n = strlen(hex);

        if (n % 2 || n / 2 > cap)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v = 0;
                for (int j = 0; j < 2; j++) {
                        char ch = hex[2 * i + (size_t)j];
                        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                         : -1;
                        if (d < 0)
                                return -EINVAL;
                        v = v * 16 + (unsigned)d;
                }
                out[i] = (unsigned char)v;
        }
        *len = n / 2;
        return 0;
}

static int add(const char *id, const char *export_name, const char *volume_id, const char *site,
               bool read_only, const char *psk_hex, bool link)
{
        struct attachment *a;

        if (strlen(id) >= ATTACH_ID_LEN || strlen(export_name) >= ATTACH_NAME_LEN ||
            strlen(volume_id) >= ATTACH_ID_LEN || strlen(site) >= ATTACH_ID_LEN || !export_name[0])
                return -EINVAL;
        if (!(a = calloc(1, sizeof(*a))))
                return -ENOMEM;
        if (unhex(psk_hex ? psk_hex : "", a->psk, sizeof(a->psk), &a->psk_len) < 0) {
                free(a);
                return -EINVAL;
        }
        copy(a->id, sizeof(a->id), id);
        copy(a->export_name, sizeof(a->export_name), export_name);
        copy(a->volume_id, sizeof(a->volume_id), volume_id);
        copy(a->site, sizeof(a->site), site);
        a->read_only = read_only;
        a->link = link;
        atomic_init(&a->revoked, false);
        atomic_init(&a->refs, 1); /* the table's */
        pthread_mutex_init(&a->mu, NULL);
        pthread_mutex_lock(&g_lock);
        a->next = g_head;
        g_head = a;
        g_count++;
        pthread_mutex_unlock(&g_lock);
        return 0;
}

int attach_add(const char *id, const char *export_name, const char *volume_id, const char *site,
               bool read_only, const char *psk_hex)
{
        return add(id, export_name, volume_id, site, read_only, psk_hex, false);
}

int attach_add_link(const char *id, const char *volume_id, const char *site)
{
        return add(id, id, volume_id, site, false, "", true);
}

void attach_put(struct attachment *a)
{
        if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
                return;
        assert(a->nfds == 0); /* every connection unwatched before its put */
        pthread_mutex_destroy(&a->mu);
        explicit_bzero(a->psk, sizeof(a->psk));
        free(a->fds);
        free(a);
}

/* Mark revoked and cut its connections; a is out of the table already. */
static void revoke_one(struct attachment *a)
{
        pthread_mutex_lock(&a->mu);
        atomic_store(&a->revoked, true);
        for (size_t i = 0; i < a->nfds; i++)
                shutdown(a->fds[i], SHUT_RDWR);
        pthread_mutex_unlock(&a->mu);
        attach_put(a); /* the table's reference */
}

/* Unlink every entry matching (id, or volume_id, or all when both NULL)
 * into a private list under the table lock, then revoke them after it. */
static void revoke_matching(const char *id, const char *volume_id)
{
        struct attachment *victims = NULL;

        pthread_mutex_lock(&g_lock);
        for (struct attachment **pp = &g_head; *pp;) {
                struct attachment *a = *pp;
                bool hit = id ? strcmp(a->id, id) == 0
                              : !volume_id || strcmp(a->volume_id, volume_id) == 0;
                if (!hit) {
                        pp = &a->next;
                        continue;
                }
                *pp = a->next;
                a->next = victims;
                victims = a;
                g_count--;
        }
        pthread_mutex_unlock(&g_lock);
        while (victims) {
                struct attachment *a = victims;
                victims = a->next;
                a->next = NULL;
                revoke_one(a);
        }
}

void attach_revoke(const char *id)
{
        revoke_matching(id, NULL);
}

void attach_revoke_volume(const char *volume_id)
{
        revoke_matching(NULL, volume_id);
}

void attach_revoke_all(void)
{
        revoke_matching(NULL, NULL);
}

struct attachment *attach_lookup(const char *site, const char *export_name)
{
        struct attachment *found = NULL;
        size_t len = strlen(export_name);

        /* The name is a secret: compare it with every entry in constant time,
         * so timing says nothing about how much of a guess was right. */
        pthread_mutex_lock(&g_lock);
        for (struct attachment *a = g_head; a; a = a->next) {
                bool eq = util_ct_equal(a->export_name, strlen(a->export_name), export_name, len);
                if (eq && !found && (!site || strcmp(a->site, site) == 0))
                        found = a;
        }
        if (found)
                atomic_fetch_add(&found->refs, 1);
        pthread_mutex_unlock(&g_lock);
        return found;
}

int attach_psk_key(const char *id, unsigned char *key, size_t cap)
{
        int n = -ENOENT;

        pthread_mutex_lock(&g_lock);
        for (struct attachment *a = g_head; a; a = a->next) {
                if (strcmp(a->id, id) != 0)
                        continue;
                if (a->psk_len > 0 && a->psk_len <= cap) {
                        memcpy(key, a->psk, a->psk_len);
                        n = (int)a->psk_len;
                }
                break;
        }
        pthread_mutex_unlock(&g_lock);
        return n;
}

const char *attach_id(const struct attachment *a)
{
        return a->id;
}

const char *attach_volume_id(const struct attachment *a)
{
        return a->volume_id;
}

bool attach_read_only(const struct attachment *a)
{
        return a->read_only;
}

bool attach_is_link(const struct attachment *a)
{
        return a && a->link;
}

bool attach_revoked(const struct attachment *a)
{
        return atomic_load(&a->revoked);
}

int attach_watch(struct attachment *a, int fd)
{
        int rc = 0;

        pthread_mutex_lock(&a->mu);
        if (atomic_load(&a->revoked)) {
                rc = -ESHUTDOWN;
        } else if (a->nfds == a->capfds) {
                size_t cap = a->capfds ? a->capfds * 2 : 4;
                int *n = realloc(a->fds, cap * sizeof(*n));
                if (!n) {
                        rc = -ENOMEM;
                } else {
                        a->fds = n;
                        a->capfds = cap;
                }
        }
        if (rc == 0)
                a->fds[a->nfds++] = fd;
        pthread_mutex_unlock(&a->mu);
        return rc;
}

void attach_unwatch(struct attachment *a, int fd)
{
        pthread_mutex_lock(&a->mu);
        for (size_t i = 0; i < a->nfds; i++) {
                if (a->fds[i] == fd) {
                        a->fds[i] = a->fds[--a->nfds];
                        break;
                }
        }
        pthread_mutex_unlock(&a->mu);
}

unsigned attach_count(void)
{
        unsigned n;

        pthread_mutex_lock(&g_lock);
        n = g_count;
        pthread_mutex_unlock(&g_lock);
        return n;
}
