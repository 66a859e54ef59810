/* Attachments in memory: what the NBD server consults to decide whether an
 * export name opens a volume (docs/design/nbd.md "Attachments").
 *
 * The service owns the records (store) and mirrors them here: attach_add at
 * start-up (before any NBD listener accepts) and when the API creates one,
 * attach_revoke / attach_revoke_volume when the API or a volume delete
 * removes them. The NBD server only looks up and watches.
 *
 * An attachment is reference counted: the table holds one reference, each
 * lookup returns a new one (put it with attach_put). Revoking removes it from
 * the table, marks it revoked and shuts down every socket watched on it; the
 * object lives on until the last connection puts it.
 *
 * Lock order: table lock -> one attachment's lock. No other lock is taken
 * under either, and the only socket call made under them is shutdown(). */
#ifndef EVSREP_VOLUME_ATTACH_H
#define EVSREP_VOLUME_ATTACH_H

#include <stdbool.h>
#include <stddef.h>

struct attachment;

/* Add an attachment of volume_id (served on site) under export_name, with
 * its TLS pre-shared key as hex (or "" for none). */
int attach_add(const char *id, const char *export_name, const char *volume_id, const char *site,
               bool read_only, const char *psk_hex);
/* The writable export of a mirror link on the DR node (docs/design/
 * multi-site.md "Remote DR links"): id is also its export name
 * ("link/<pair id>"); no PSK of its own (the link's is the node's). The NBD
 * server opens it only for a link session; it writes the volume's file
 * directly (a DR volume stays read-only for every client attachment). */
int attach_add_link(const char *id, const char *volume_id, const char *site);
/* Revoke one attachment by id (no-op when unknown). */
void attach_revoke(const char *id);
/* Revoke every attachment of a volume. */
void attach_revoke_volume(const char *volume_id);
/* Revoke everything (shutdown). */
void attach_revoke_all(void);

/* The live attachment named export_name on site (a new reference), or NULL
 * when there is none (unknown, revoked, or another site's). */
struct attachment *attach_lookup(const char *site, const char *export_name);
void attach_put(struct attachment *a);

/* The binary PSK of the live attachment id into key (at most cap bytes):
 * its length, or -ENOENT (unknown, revoked, no key). */
int attach_psk_key(const char *id, unsigned char *key, size_t cap);

const char *attach_id(const struct attachment *a);
const char *attach_volume_id(const struct attachment *a);
bool attach_read_only(const struct attachment *a);
bool attach_is_link(const struct attachment *a);
bool attach_revoked(const struct attachment *a);

/* Watch fd: a revocation shuts it down. -ESHUTDOWN when a is already
 * revoked (the caller must not serve it), -ENOMEM. Unwatch before closing fd:
 * a revocation must never shut a recycled descriptor. */
int attach_watch(struct attachment *a, int fd);
void attach_unwatch(struct attachment *a, int fd);

/* Number of live attachments (tests, metrics). */
unsigned attach_count(void);

#endif
