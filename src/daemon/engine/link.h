/* The DR write path of a mirror. The mirror only ever talks to its DR disk
 * through these ops, so a link to a DR volume in another evsrepd (NBD via
 * libnbd) can replace the local one without touching mirror.c.
 *
 * All ops return 0 or -errno and may be called from several threads at
 * once (on disjoint ranges; the mirror's range locks guarantee that). */
#ifndef EVSREP_ENGINE_LINK_H
#define EVSREP_ENGINE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct link;

struct link_ops {
        int (*write)(struct link *l, const void *buf, size_t len, uint64_t off, unsigned flags);
        /* punch: deallocation allowed; reads back as zeroes either way. */
        int (*zero)(struct link *l, uint64_t off, uint64_t len, bool punch, unsigned flags);
        int (*flush)(struct link *l);
        int (*resize)(struct link *l, uint64_t size_bytes);
        uint64_t (*size)(struct link *l);
        void (*close)(struct link *l);
};

struct link {
        const struct link_ops *ops;
};

struct volume;
/* A link to a DR volume in this process (takes a reference on dr). */
int link_local_open(struct volume *dr, struct link **out);

#endif
