/* A link to a DR volume served by this same process: the DR leg is a local
 * write to the DR volume's own file (no gate, no read-only check: the DR
 * export is read-only for clients, not for its mirror). */
#include "engine/link.h"
#include "volume/volume.h"

#include <errno.h>
#include <stdlib.h>

struct link_local {
        struct link base;
        struct volume *dr;
};

static struct volume *dr_of(struct link *l)
{
        return ((struct link_local *)l)->dr;
}

static int ll_write(struct link *l, const void *buf, size_t len, uint64_t off, unsigned flags)
{
        return volume_local_write(dr_of(l), buf, len, off, flags);
}

static int ll_read(struct link *l, void *buf, size_t len, uint64_t off)
{
        return volume_local_read(dr_of(l), buf, len, off);
}

static int ll_copy_from(struct link *l, struct volume *src, uint64_t off, size_t len, int *side)
{
        return volume_local_copy(src, dr_of(l), off, len, side);
}

static int ll_next_data(struct link *l, uint64_t off, uint64_t *data_off, uint64_t *data_len)
{
        return volume_local_next_data(dr_of(l), off, data_off, data_len);
}

static int ll_zero(struct link *l, uint64_t off, uint64_t len, bool punch, unsigned flags)
{
        return volume_local_zero(dr_of(l), off, len, punch, flags);
}

static int ll_flush(struct link *l)
{
        return volume_local_flush(dr_of(l));
}

static int ll_resize(struct link *l, uint64_t size_bytes)
{
        struct volume *v = dr_of(l);
        int rc;

        volume_fence_raise(v);
        rc = volume_resize(v, size_bytes);
        volume_fence_lower(v);
        return rc;
}

static uint64_t ll_size(struct link *l)
{
        return volume_size(dr_of(l));
}

static void ll_close(struct link *l)
{
        volume_put(dr_of(l));
        free(l);
}

static const struct link_ops g_local_ops = {
    .write = ll_write,
    .zero = ll_zero,
    .flush = ll_flush,
    .resize = ll_resize,
    .size = ll_size,
    .close = ll_close,
    .read = ll_read,
    .copy_from = ll_copy_from,
    .next_data = ll_next_data,
};

int link_local_open(struct volume *dr, struct link **out)
{
        struct link_local *l = calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        l->base.ops = &g_local_ops;
        volume_get(dr);
        l->dr = dr;
        *out = &l->base;
        return 0;
}

bool link_is_local(const struct link *l)
{
        return l && l->ops == &g_local_ops;
}
