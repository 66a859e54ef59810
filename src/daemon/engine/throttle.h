/* The resync throttle of one consistency group: a token bucket shared by the
 * resync workers of the group's members, with a ceiling, a floor and an
 * adaptive mode that yields to client writes. Design:
 * docs/design/replication.md "Resync throttle".
 *
 * Units: bytes per second; 0 as a ceiling means no ceiling. The bucket
 * counts data bytes read from production and written to DR (holes are
 * punched without a charge: they cost no data transfer). Time comes from an
 * injected clock (microseconds, monotonic) so the tests need no sleeps.
 *
 * Threading: every function may be called from any thread; one mutex per
 * throttle, never held while sleeping or doing I/O. */
#ifndef EVSREP_ENGINE_THROTTLE_H
#define EVSREP_ENGINE_THROTTLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct throttle;

typedef int64_t (*throttle_clock_fn)(void *ctx);

struct throttle_cfg {
        uint64_t max_bps; /* ceiling, 0: none */
        uint64_t min_bps; /* floor of the adaptive mode (<= max_bps when both set) */
        bool adaptive;    /* back off when client write latency rises */
};

struct throttle_state {
        struct throttle_cfg cfg;
        uint64_t limit_bps;         /* the limit in force now; 0: none */
        uint64_t rate_bps;          /* data bytes copied per second, last window; 0 when idle */
        uint64_t sync_rate_bps;     /* bytes brought in sync per second, last measured (kept after
                                       the resync ends); 0: never measured */
        uint64_t lat_baseline_usec; /* adaptive: the client write latency baseline; 0: none */
        uint64_t lat_recent_usec;   /* adaptive: the last window's client write latency */
};

/* Tunables of the adaptive controller (throttle.c has the defaults). */
#define THROTTLE_WINDOW_USEC 500000  /* one measurement / control window */
#define THROTTLE_IDLE_USEC   2000000 /* no charge for this long: rate reads 0 */

/* clock NULL: the monotonic clock. */
struct throttle *throttle_new(throttle_clock_fn clock, void *clock_ctx);
void throttle_free(struct throttle *t);

/* -EINVAL when min > max (both set). Takes effect at the next charge, also
 * for a worker already waiting. */
int throttle_set(struct throttle *t, const struct throttle_cfg *cfg);
void throttle_get(struct throttle *t, struct throttle_state *st);

/* Account one batch of a resync worker: data_bytes copied, sync_bytes
 * brought in sync (holes included), and the client write latency seen on
 * that member's production disk since the last call (sum in usec and
 * count). Returns how long (usec) the worker must wait before its next
 * batch. */
uint64_t throttle_charge(struct throttle *t, uint64_t data_bytes, uint64_t sync_bytes,
                         uint64_t lat_sum_usec, uint64_t lat_count);
/* How long (usec) to wait now (the limit may have changed meanwhile). */
uint64_t throttle_wait_usec(struct throttle *t);

/* Charge, then sleep in short slices until the bucket allows the next
 * batch or *stop becomes true (a pause must not wait for the throttle). */
void throttle_pace(struct throttle *t, uint64_t data_bytes, uint64_t sync_bytes,
                   uint64_t lat_sum_usec, uint64_t lat_count, atomic_bool *stop);

#endif
