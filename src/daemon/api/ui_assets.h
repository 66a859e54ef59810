/* The status page's files (src/daemon/ui/), embedded at build time by
 * cmake/embed_assets.cmake: the generated ui_assets.c defines the table. */
#ifndef EVSREP_API_UI_ASSETS_H
#define EVSREP_API_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
        const char *name; /* file name, no directory: "app.js" */
        const unsigned char *data;
        size_t len; /* data[len] is a NUL the file does not contain */
};

extern const struct ui_asset ui_assets[];
extern const unsigned ui_assets_count;

/* The asset a request path names, or NULL: only "/ui/" (index.html) and
 * "/ui/<name>" for a name in the table, compared whole; anything else
 * ("/ui/../x", "/ui/a/b", encoded or not) is NULL. */
const struct ui_asset *ui_asset_find(const char *url);

#endif
