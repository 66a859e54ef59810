/* The resync throttle (throttle.h; docs/design/replication.md "Resync
 * throttle").
 *
 * Token bucket with debt: a worker copies one batch, then charges its data
 * bytes; the bucket may go negative, and the worker waits (outside every
 * range lock) until it is back at zero. Over any long run the copied bytes
 * are limit x time, give or take one batch, whatever the batch size. The
 * credit an idle bucket may hold is one batch (the largest charge seen, at
 * least 50 ms at the limit): enough for the credit earned while a batch is
 * copied, not enough to skew a short run (a second of credit would make a
 * 5 s resync 20% faster than its ceiling).
 *
 * Adaptive mode, once per window (THROTTLE_WINDOW_USEC) of charges: the
 * mean client write latency of the window is compared with a baseline. Hot
 * (above FACTOR x baseline and SLACK more): the limit halves, never below
 * the floor. Otherwise the limit grows by a quarter plus 1 MiB/s up to the
 * ceiling (with no ceiling: until it no longer binds, then none), and the
 * baseline follows the calm latency (at once downwards, slowly upwards), so
 * a rise caused by congestion does not become the new normal. */
#include "engine/throttle.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define MIB              (1024.0 * 1024.0)
#define BURST_MIN_USEC   50000.0           /* credit an idle bucket may hold, at least */
#define ADAPT_FACTOR     2.0               /* hot: window latency above FACTOR x baseline ... */
#define ADAPT_SLACK_US   200.0             /* ... and at least SLACK usec above it */
#define ADAPT_MIN_WRITES 4                 /* fewer client writes in a window: no signal */
#define ADAPT_FLOOR_BPS  (1024.0 * 1024.0) /* the floor when none is set */
#define SLEEP_SLICE_USEC 20000

struct throttle {
        pthread_mutex_t mu;
        throttle_clock_fn clock;
        void *clock_ctx;
        struct throttle_cfg cfg;
        double limit;      /* bytes/s in force, 0: none */
        double tokens;     /* bytes; negative: debt */
        double max_charge; /* the largest batch charged: the credit cap */
        int64_t refill_at;
        /* measurement window */
        int64_t win_start, last_charge;
        int64_t ready_at; /* when the last charge let its worker go on */
        uint64_t win_data, win_sync, win_lat_sum, win_lat_n;
        uint64_t rate, sync_rate;
        double baseline, recent; /* usec */
};

static int64_t mono_clock(void *ctx)
{
        (void)ctx;
        return util_mono_usec();
}

struct throttle *throttle_new(throttle_clock_fn clock, void *clock_ctx)
{
        struct throttle *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        pthread_mutex_init(&t->mu, NULL);
        t->clock = clock ? clock : mono_clock;
        t->clock_ctx = clock_ctx;
        t->refill_at = t->clock(t->clock_ctx);
        return t;
}

void throttle_free(struct throttle *t)
{
        if (!t)
                return;
        pthread_mutex_destroy(&t->mu);
        free(t);
}

static double burst_of(const struct throttle *t)
{
        double b = t->limit * BURST_MIN_USEC / 1e6;

        return t->max_charge > b ? t->max_charge : b;
}

static void refill_locked(struct throttle *t, int64_t now)
{
        double dt = now > t->refill_at ? (double)(now - t->refill_at) : 0;

        t->refill_at = now;
        if (t->limit <= 0) {
                t->tokens = 0;
                return;
        }
        t->tokens += t->limit * dt / 1e6;
        if (t->tokens > burst_of(t))
                t->tokens = burst_of(t);
}

static double floor_of(const struct throttle_cfg *c)
{
        return c->min_bps ? (double)c->min_bps : ADAPT_FLOOR_BPS;
}

int throttle_set(struct throttle *t, const struct throttle_cfg *cfg)
{
        if (cfg->max_bps && cfg->min_bps > cfg->max_bps)
                return -EINVAL;
        pthread_mutex_lock(&t->mu);
        refill_locked(t, t->clock(t->clock_ctx));
        t->cfg = *cfg;
        /* A new setting starts at the ceiling; adaptive backs off from there. */
        t->limit = (double)cfg->max_bps;
        if (t->limit > 0 && t->tokens > burst_of(t))
                t->tokens = burst_of(t);
        if (t->limit <= 0)
                t->tokens = 0;
        pthread_mutex_unlock(&t->mu);
        return 0;
}

/* Has a worker charged lately (waiting counts as busy)? */
static bool busy_locked(const struct throttle *t, int64_t now)
{
        int64_t last = t->ready_at > t->last_charge ? t->ready_at : t->last_charge;

        return t->last_charge && now - last <= THROTTLE_IDLE_USEC;
}

void throttle_get(struct throttle *t, struct throttle_state *st)
{
        int64_t now;

        pthread_mutex_lock(&t->mu);
        now = t->clock(t->clock_ctx);
        st->cfg = t->cfg;
        st->limit_bps = (uint64_t)t->limit;
        st->rate_bps = busy_locked(t, now) ? t->rate : 0;
        st->sync_rate_bps = t->sync_rate;
        st->lat_baseline_usec = (uint64_t)t->baseline;
        st->lat_recent_usec = (uint64_t)t->recent;
        pthread_mutex_unlock(&t->mu);
}

/* One control step at the end of a window (adaptive mode only). */
static void adapt_locked(struct throttle *t, double window_rate)
{
        const struct throttle_cfg *c = &t->cfg;
        double lo = floor_of(c), hi = (double)c->max_bps, mean;
        bool hot = false;

        if (t->win_lat_n >= ADAPT_MIN_WRITES) {
                mean = (double)t->win_lat_sum / (double)t->win_lat_n;
                t->recent = mean;
                if (t->baseline <= 0)
                        t->baseline = mean;
                hot = mean > ADAPT_FACTOR * t->baseline && mean > t->baseline + ADAPT_SLACK_US;
                if (!hot)
                        t->baseline = mean < t->baseline ? mean : 0.9 * t->baseline + 0.1 * mean;
        }
        if (hot) {
                double from = t->limit > 0 ? t->limit : window_rate;

                t->limit = from / 2 > lo ? from / 2 : lo;
                if (hi > 0 && t->limit > hi)
                        t->limit = hi;
                return;
        }
        if (t->limit <= 0)
                return; /* no limit in force: nothing to raise */
        t->limit = t->limit * 1.25 + MIB;
        if (hi > 0 && t->limit >= hi)
                t->limit = hi;
        else if (hi <= 0 && window_rate > 0 && t->limit > 2 * window_rate)
                t->limit = 0; /* no longer binding, and no ceiling */
}

uint64_t throttle_charge(struct throttle *t, uint64_t data_bytes, uint64_t sync_bytes,
                         uint64_t lat_sum_usec, uint64_t lat_count)
{
        uint64_t wait = 0;
        int64_t now;

        pthread_mutex_lock(&t->mu);
        now = t->clock(t->clock_ctx);
        refill_locked(t, now);
        if (!busy_locked(t, now)) {
                /* First batch after idle: a new window from here. */
                t->win_start = now;
                t->win_data = t->win_sync = t->win_lat_sum = t->win_lat_n = 0;
        } else {
                t->win_data += data_bytes;
                t->win_sync += sync_bytes;
        }
        t->win_lat_sum += lat_sum_usec;
        t->win_lat_n += lat_count;
        t->last_charge = now;
        if (now - t->win_start >= THROTTLE_WINDOW_USEC) {
                double dt = (double)(now - t->win_start);
                double wr = (double)t->win_data * 1e6 / dt;

                t->rate = (uint64_t)wr;
                if (t->win_sync)
                        t->sync_rate = (uint64_t)((double)t->win_sync * 1e6 / dt);
                if (t->cfg.adaptive)
                        adapt_locked(t, wr);
                t->win_start = now;
                t->win_data = t->win_sync = t->win_lat_sum = t->win_lat_n = 0;
        }
        if ((double)data_bytes > t->max_charge)
                t->max_charge = (double)data_bytes;
        if (t->limit > 0) {
                t->tokens -= (double)data_bytes;
                if (t->tokens < 0)
                        wait = (uint64_t)(-t->tokens * 1e6 / t->limit) + 1;
        }
        if (now + (int64_t)wait > t->ready_at)
                t->ready_at = now + (int64_t)wait;
        pthread_mutex_unlock(&t->mu);
        return wait;
}

uint64_t throttle_wait_usec(struct throttle *t)
{
        uint64_t wait = 0;

        pthread_mutex_lock(&t->mu);
        refill_locked(t, t->clock(t->clock_ctx));
        if (t->limit > 0 && t->tokens < 0)
                wait = (uint64_t)(-t->tokens * 1e6 / t->limit) + 1;
        pthread_mutex_unlock(&t->mu);
        return wait;
}

void throttle_pace(struct throttle *t, uint64_t data_bytes, uint64_t sync_bytes,
                   uint64_t lat_sum_usec, uint64_t lat_count, atomic_bool *stop)
{
        uint64_t wait = throttle_charge(t, data_bytes, sync_bytes, lat_sum_usec, lat_count);

        while (wait > 0 && !atomic_load(stop)) {
                uint64_t us = wait < SLEEP_SLICE_USEC ? wait : SLEEP_SLICE_USEC;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)us * 1000};

                nanosleep(&ts, NULL);
                wait = throttle_wait_usec(t);
        }
}
