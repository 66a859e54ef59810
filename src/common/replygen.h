/* The API reply cache's view of the rest of the daemon
 * (docs/design/control-plane.md "Reply cache"):
 *
 * - the state generation: a process-wide counter every store write bumps
 *   after the backend call returned (store.c), so a cached reply built
 *   before the write is older than the counter;
 * - the live-input recorder: while a reply is built on a thread, every
 *   source it reads outside the store (the engine's figures of a pair, a
 *   group's throttle, a verify report) leaves a note here: which source,
 *   which id, the bytes it returned. A lookup re-reads each note and serves
 *   the cached reply only when all are unchanged. A source that could not
 *   read (a lock was busy) taints the build: that reply is not stored.
 *
 * Kept in common/ so the store and the service can call it without
 * depending on the API. Notes and taints are no-ops on a thread whose
 * recorder is not armed (metrics, engine threads, executors). */
#ifndef EVSREP_COMMON_REPLYGEN_H
#define EVSREP_COMMON_REPLYGEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sources a reply can read outside the store. */
enum replygen_src {
        REPLYGEN_PAIR_LIVE,      /* service_pair_live_note(pair id) */
        REPLYGEN_GROUP_THROTTLE, /* service_group_throttle_view(group id) */
        REPLYGEN_GROUP_VERIFY,   /* the verify report's JSON (api/verify.c) */
        REPLYGEN__COUNT
};

#define REPLYGEN_ID_LEN    64   /* ids are UUIDs (37 bytes with the NUL) */
#define REPLYGEN_NOTES_MAX 4096 /* more: the build is tainted (not stored) */

struct replygen_note {
        uint8_t src; /* enum replygen_src */
        char id[REPLYGEN_ID_LEN];
        uint32_t off, len; /* the bytes, in the recorder's arena */
};

/* One build's notes. Owned by the caller; replygen_rec_free releases it. */
struct replygen_rec {
        struct replygen_note *notes;
        size_t n, cap;
        unsigned char *arena;
        size_t used, arena_cap;
        bool tainted;
        uint64_t live;  /* the live epoch when armed */
        bool uncovered; /* a pair note the live epoch does not cover */
};

uint64_t replygen_now(void);
void replygen_bump(void);

/* The live epoch (docs/design/control-plane.md "The live epoch"): bumped by
 * whoever changes an input of a pair's note, inside the critical section
 * of the lock the note reads that input under (rule L). A cached reply
 * whose epoch has not moved need not re-read its pair notes. */
uint64_t replygen_live_now(void);
void replygen_live_bump(void);
/* The pair note being recorded has an input the epoch does not cover (a
 * file whose probe is re-done at every hit): re-read this build's notes at
 * every hit. No-op when disarmed. */
void replygen_live_uncovered(void);

/* Arm this thread's recorder with rec (emptied first, the live epoch read
 * into rec->live), or disarm (NULL). */
void replygen_rec_arm(struct replygen_rec *rec);
void replygen_rec_free(struct replygen_rec *rec);
/* Record what src returned for id (bytes copied); no-op when disarmed. */
void replygen_note(enum replygen_src src, const char *id, const void *bytes, size_t len);
/* This build read something it could not note: do not store it. */
void replygen_taint(void);

/* Volume files (replygen_fs.c). Off until enabled: a process with no
 * reply cache (api_cache_entries = 0, a shared store) watches nothing, and
 * replygen_fs_watch then says false (the file is probed at every hit, were
 * there hits). main.c decides before the service opens any volume. */
void replygen_fs_enable(bool on);
/* Watch the directories path resolves
 * through; true when every change to how it resolves now bumps the
 * generation (then a hit need not probe the file again), false when the
 * file must be probed at every hit (a symbolic link on the path, a file
 * system that is not local, no watch left). */
bool replygen_fs_watch(const char *path);
/* false once a watch was lost (or events overflowed): from then on no
 * file counts as watched. */
bool replygen_fs_trusted(void);
/* Take the pending file events in, bumping the generation when one may
 * change a watched path's resolution. Every lookup calls it first. */
void replygen_fs_drain(void);

/* Counters for the metrics (stats.c renders them). */
struct replygen_stats {
        atomic_uint_least64_t hits, misses, invalidations, stores;
        atomic_uint_least64_t inline_answers; /* api/inline.c */
        atomic_uint_least64_t live_skips;     /* hits that skipped the pair notes */
        atomic_int_least64_t entries, bytes;
};
extern struct replygen_stats g_replygen_stats;

#endif
