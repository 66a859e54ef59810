/* Typed states of volumes, pairs and groups (see states.h).
 *
 * Everything the service knows about statuses is in the tables at the top
 * of this file: names, the status writes it may perform (transitions) and
 * which request each status allows (actions). The rest of the file only
 * reads them.
 *
 * Invariants (checked by tests/unit/test_service_states.c):
 *   S1  every name table lists each enum value once, and *_parse(*_name(x))
 *       gives x back;
 *   S2  every allowed action cell is a legal walk of its transition table:
 *       from -> via (when via != from) and via -> to (when the object is
 *       not gone), so the asserts at the status writes never fire for a
 *       request the action table let through;
 *   S3  the group action table is the one of docs/semantics.md ("Group
 *       state table"), cell by cell;
 *   S4  a refusal names the status (and, for actions with a replication
 *       condition, the replication_status) and what to do first.
 *
 * Writing the same status again (to record other fields) is always legal.
 * Error statuses of a failed step are reached only from the transient
 * status of that step, and each has a way out (semantics.md "Group state
 * table"): error_deleting a DELETE, error_reversing and error_failovering a
 * sync (or a DELETE once the group is empty). */
#include "service/states.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define B(x) (1u << (x))

/* ---- names ---- */

static const char *const volume_names[VOL__COUNT] = {
    [VOL_CREATING] = "creating",
    [VOL_AVAILABLE] = "available",
    [VOL_EXTENDING] = "extending",
    [VOL_DELETING] = "deleting",
    [VOL_ERROR] = "error",
    [VOL_ERROR_DELETING] = "error_deleting",
    [VOL_ERROR_EXTENDING] = "error_extending",
};

static const char *const pair_names[PAIR__COUNT] = {
    [PAIR_CREATING] = "creating",
    [PAIR_AVAILABLE] = "available",
    [PAIR_DELETING] = "deleting",
    [PAIR_ERROR] = "error",
    [PAIR_ERROR_DELETING] = "error_deleting",
};

static const char *const repl_names[REPL__COUNT] = {
    [REPL_ACTIVE] = "active",   [REPL_ACTIVE_STOPPED] = "active-stopped",
    [REPL_COPYING] = "copying", [REPL_INACTIVE] = "inactive",
    [REPL_ERROR] = "error",
};

static const char *const group_names[GS__COUNT] = {
    [GS_CREATING] = "creating",
    [GS_AVAILABLE] = "available",
    [GS_UPDATING] = "updating",
    [GS_DELETING] = "deleting",
    [GS_ERROR] = "error",
    [GS_REVERSING] = "reversing",
    [GS_FAILOVERING] = "failovering",
    [GS_FAILOVERED] = "failovered",
    [GS_ERROR_DELETING] = "error_deleting",
    [GS_ERROR_REVERSING] = "error_reversing",
    [GS_ERROR_FAILOVERING] = "error_failovering",
};

/* ---- transitions: the status writes the service performs ----
 * (docs/design/control-plane.md; "start-up" = service reconciliation) */

static const unsigned volume_next[VOL__COUNT] = {
    /* file created and exported; or create failed */
    [VOL_CREATING] = B(VOL_AVAILABLE) | B(VOL_ERROR),
    /* DELETE; os-extend (or a group extend); start-up: file gone */
    [VOL_AVAILABLE] = B(VOL_DELETING) | B(VOL_EXTENDING) | B(VOL_ERROR),
    /* grown (or a group extend rolled back); grow failed; start-up: file gone */
    [VOL_EXTENDING] = B(VOL_AVAILABLE) | B(VOL_ERROR_EXTENDING) | B(VOL_ERROR),
    /* unlink or row delete failed (else the row is gone) */
    [VOL_DELETING] = B(VOL_ERROR_DELETING),
    [VOL_ERROR] = B(VOL_DELETING),
    [VOL_ERROR_DELETING] = B(VOL_DELETING) | B(VOL_ERROR),
    [VOL_ERROR_EXTENDING] = B(VOL_DELETING) | B(VOL_ERROR),
};

static const unsigned pair_next[PAIR__COUNT] = {
    /* mirror started; engine failed */
    [PAIR_CREATING] = B(PAIR_AVAILABLE) | B(PAIR_ERROR),
    /* DELETE; start-up: mirror cannot resume */
    [PAIR_AVAILABLE] = B(PAIR_DELETING) | B(PAIR_ERROR),
    /* DELETE; a group sync restarted its mirror */
    [PAIR_ERROR] = B(PAIR_DELETING) | B(PAIR_AVAILABLE),
    /* row delete failed (else the row is gone) */
    [PAIR_DELETING] = B(PAIR_ERROR_DELETING),
    /* start-up: mirror cannot resume; DELETE again */
    [PAIR_ERROR_DELETING] = B(PAIR_ERROR) | B(PAIR_DELETING),
};

static const unsigned group_next[GS__COUNT] = {
    /* members paused under one fence; engine failed */
    [GS_CREATING] = B(GS_AVAILABLE) | B(GS_ERROR),
    [GS_AVAILABLE] = B(GS_UPDATING) | B(GS_DELETING) | B(GS_REVERSING) | B(GS_FAILOVERING),
    /* added pairs paused (start-up: paused again); update failed */
    [GS_UPDATING] = B(GS_AVAILABLE) | B(GS_ERROR),
    /* row delete failed (else the row is gone) */
    [GS_DELETING] = B(GS_ERROR_DELETING),
    /* sync heals; DELETE */
    [GS_ERROR] = B(GS_AVAILABLE) | B(GS_DELETING),
    /* roles swapped, or not (old roles stand); swap back failed (every disk
     * locked down: error_reversing / error_failovering) */
    [GS_REVERSING] = B(GS_AVAILABLE) | B(GS_ERROR_REVERSING),
    [GS_FAILOVERING] = B(GS_FAILOVERED) | B(GS_AVAILABLE) | B(GS_ERROR_FAILOVERING),
    /* reprotect */
    [GS_FAILOVERED] = B(GS_AVAILABLE),
    /* DELETE again (or start-up retries it) */
    [GS_ERROR_DELETING] = B(GS_DELETING),
    /* sync (members reopened from the recorded roles); DELETE */
    [GS_ERROR_REVERSING] = B(GS_AVAILABLE) | B(GS_DELETING),
    [GS_ERROR_FAILOVERING] = B(GS_AVAILABLE) | B(GS_DELETING),
};

/* replication_status (semantics.md "Replication status transitions of a
 * pair"; a group's is derived from its members and moves the same way).
 * Nearly every move is legal (a sync, a pause, a fault, a failover and a
 * crash each move any member somewhere); what is not, is what the data
 * cannot back:
 *   - a new pair starts copying (initial sync; active when that copy was
 *     already done when the pair is first recorded), or error (no mirror);
 *     never paused (active-stopped, inactive);
 *   - error (its mirror did not run, so production writes went untracked)
 *     never becomes active-stopped, which claims a consistent frozen DR
 *     image: only a sync (copying, then active) or a restart of its mirror
 *     with nothing to trust (inactive) leaves it. */
#define ANY_REPL                                                                                   \
        (B(REPL_ACTIVE) | B(REPL_ACTIVE_STOPPED) | B(REPL_COPYING) | B(REPL_INACTIVE) |            \
         B(REPL_ERROR))
static const unsigned repl_next[REPL__COUNT + 1] = {
    /* mirror set up, initial sync (or already done); mirror cannot start */
    [REPL__COUNT] = B(REPL_COPYING) | B(REPL_ACTIVE) | B(REPL_ERROR),
    /* synced; paused or fault; crash restart; failover; ... */
    [REPL_COPYING] = ANY_REPL,
    [REPL_ACTIVE] = ANY_REPL,
    [REPL_ACTIVE_STOPPED] = ANY_REPL,
    [REPL_INACTIVE] = ANY_REPL,
    /* sync (copying, or active at once when nothing differs); mirror
     * restarted in TRACK (inactive) */
    [REPL_ERROR] = B(REPL_COPYING) | B(REPL_ACTIVE) | B(REPL_INACTIVE),
};

/* ---- actions ---- */

/* Volumes (control-plane.md "Volume states"; a volume in a pair is refused
 * before this table is consulted). */
struct vol_rule {
        bool allowed;
        enum volume_status via;
};
static const struct vol_rule volume_rules[VOL__COUNT][VOL_OP__COUNT] = {
    [VOL_AVAILABLE] = {[VOL_OP_DELETE] = {true, VOL_DELETING},
                       [VOL_OP_EXTEND] = {true, VOL_EXTENDING},
                       [VOL_OP_PAIR] = {true, VOL_AVAILABLE}},
    [VOL_ERROR] = {[VOL_OP_DELETE] = {true, VOL_DELETING}},
    [VOL_ERROR_DELETING] = {[VOL_OP_DELETE] = {true, VOL_DELETING}},
    [VOL_ERROR_EXTENDING] = {[VOL_OP_DELETE] = {true, VOL_DELETING}},
};

/* Pairs (semantics.md "Pair state table"; DELETE of a pair in a group and
 * joining a second group are refused before the status is looked at). */
struct pair_rule {
        bool allowed;
        enum pair_status via;
};
static const struct pair_rule pair_rules[PAIR__COUNT][PAIR_OP__COUNT] = {
    [PAIR_AVAILABLE] =
        {[PAIR_OP_DELETE] = {true, PAIR_DELETING}, [PAIR_OP_JOIN] = {true, PAIR_AVAILABLE}},
    [PAIR_ERROR] = {[PAIR_OP_DELETE] = {true, PAIR_DELETING}},
    [PAIR_ERROR_DELETING] = {[PAIR_OP_DELETE] = {true, PAIR_DELETING}},
};

/* Groups: semantics.md "Group state table". A row not listed refuses
 * everything (transient and error_* statuses). */
#define GONE      GS__COUNT
#define NOT_BUSY  (B(REPL_ACTIVE_STOPPED) | B(REPL_INACTIVE) | B(REPL_ERROR))
#define NOT_ERROR (B(REPL_ACTIVE) | B(REPL_ACTIVE_STOPPED) | B(REPL_COPYING) | B(REPL_INACTIVE))
#define ALLOW(via, to, repl, need)                                                                 \
        {                                                                                          \
                true, via, to, repl, need                                                          \
        }
static const struct group_rule group_rules[GS__COUNT][GOP__COUNT] =
    {
        [GS_AVAILABLE] =
            {
                [GOP_UPDATE] = ALLOW(GS_UPDATING, GS_AVAILABLE, NOT_BUSY, NEED_ANY),
                [GOP_DELETE] = ALLOW(GS_DELETING, GONE, 0, NEED_EMPTY),
                [GOP_PAUSE] = ALLOW(GS_AVAILABLE, GS_AVAILABLE, 0, NEED_ANY),
                [GOP_SYNC] = ALLOW(GS_AVAILABLE, GS_AVAILABLE, 0, NEED_MEMBERS),
                [GOP_REVERSE] = ALLOW(GS_REVERSING, GS_AVAILABLE, B(REPL_ACTIVE), NEED_MEMBERS),
                [GOP_FAILOVER] = ALLOW(GS_FAILOVERING, GS_FAILOVERED, 0, NEED_MEMBERS),
                [GOP_EXTEND] = ALLOW(GS_AVAILABLE, GS_AVAILABLE, NOT_ERROR, NEED_MEMBERS),
            },
        [GS_FAILOVERED] =
            {
                [GOP_PAUSE] = ALLOW(GS_FAILOVERED, GS_FAILOVERED, 0, NEED_ANY),
                [GOP_REPROTECT] = ALLOW(GS_FAILOVERED, GS_AVAILABLE, 0, NEED_MEMBERS),
            },
        [GS_ERROR] =
            {
                [GOP_DELETE] = ALLOW(GS_DELETING, GONE, 0, NEED_EMPTY),
                [GOP_SYNC] = ALLOW(GS_ERROR, GS_AVAILABLE, 0, NEED_MEMBERS),
            },
        /* The failed step's way out: retry the delete; after a role swap
         * that could not be undone, sync (or delete once empty). */
        [GS_ERROR_DELETING] =
            {
                [GOP_DELETE] = ALLOW(GS_DELETING, GONE, 0, NEED_EMPTY),
            },
        [GS_ERROR_REVERSING] =
            {
                [GOP_DELETE] = ALLOW(GS_DELETING, GONE, 0, NEED_EMPTY),
                [GOP_SYNC] = ALLOW(GS_ERROR_REVERSING, GS_AVAILABLE, 0, NEED_MEMBERS),
            },
        [GS_ERROR_FAILOVERING] =
            {
                [GOP_DELETE] = ALLOW(GS_DELETING, GONE, 0, NEED_EMPTY),
                [GOP_SYNC] = ALLOW(GS_ERROR_FAILOVERING, GS_AVAILABLE, 0, NEED_MEMBERS),
            },
};

/* What an action's replication condition reads like, and what to do when
 * it is not met (the condition is the same in every row that allows it). */
static const char *const group_repl_need[GOP__COUNT] = {
    [GOP_UPDATE] = "replication paused (neither active nor copying)",
    [GOP_REVERSE] = "replication_status active",
    [GOP_EXTEND] = "no replication error",
};

static const char *group_repl_hint(enum group_op op, enum repl_status rs)
{
        switch (op) {
        case GOP_UPDATE:
                return "pause it (os-stop-replication-consistency-group) before updating it";
        case GOP_REVERSE:
                return rs == REPL_COPYING ? "wait until the copy is done (replication_status "
                                            "active)"
                                          : "sync the group first";
        case GOP_EXTEND:
                return "sync the group first (a sync heals the fault)";
        case GOP_DELETE:
        case GOP_PAUSE:
        case GOP_SYNC:
        case GOP_FAILOVER:
        case GOP_REPROTECT:
        case GOP__COUNT:
                break;
        }
        return "";
}

/* What to do first when the group's status refuses op. */
static const char *group_status_hint(enum group_status st, enum group_op op)
{
        switch (st) {
        case GS_CREATING:
        case GS_UPDATING:
        case GS_REVERSING:
        case GS_FAILOVERING:
                return "wait until it is available";
        case GS_DELETING:
                return "it is being deleted";
        case GS_FAILOVERED:
                return op == GOP_FAILOVER ? "it is already failed over: reprotect it"
                                          : "reprotect the group first";
        case GS_AVAILABLE:
                return op == GOP_REPROTECT ? "fail the group over first" : "";
        case GS_ERROR:
                return "sync the group first (a sync retries the failed step)";
        case GS_ERROR_DELETING:
                return "delete it again (DELETE retries the failed step)";
        case GS_ERROR_REVERSING:
        case GS_ERROR_FAILOVERING:
                return "sync the group first (a sync reopens every member from the recorded "
                       "roles)";
        case GS__COUNT:
                break;
        }
        return "no request leaves this status; it needs an operator's repair";
}

static const char *volume_status_hint(enum volume_status st)
{
        switch (st) {
        case VOL_CREATING:
        case VOL_EXTENDING:
                return "wait until it is available";
        case VOL_DELETING:
                return "it is being deleted";
        case VOL_AVAILABLE:
        case VOL_ERROR:
        case VOL_ERROR_DELETING:
        case VOL_ERROR_EXTENDING:
        case VOL__COUNT:
                break;
        }
        return "it failed (see its error message); delete it";
}

static const char *pair_status_hint(enum pair_status st)
{
        switch (st) {
        case PAIR_CREATING:
                return "wait until it is available";
        case PAIR_DELETING:
                return "it is being deleted";
        case PAIR_ERROR:
                return "delete the pair and create it again";
        case PAIR_ERROR_DELETING:
                return "delete it again (DELETE retries the failed step)";
        case PAIR_AVAILABLE:
        case PAIR__COUNT:
                break;
        }
        return "it needs an operator's repair";
}

static const char *const volume_op_names[VOL_OP__COUNT] = {
    [VOL_OP_DELETE] = "delete", [VOL_OP_EXTEND] = "extend", [VOL_OP_PAIR] = "pairing"};
static const char *const pair_op_names[PAIR_OP__COUNT] = {
    [PAIR_OP_DELETE] = "delete", [PAIR_OP_JOIN] = "joining a group"};
static const char *const group_op_names[GOP__COUNT] = {
    [GOP_UPDATE] = "update",       [GOP_DELETE] = "delete",   [GOP_PAUSE] = "pause",
    [GOP_SYNC] = "sync",           [GOP_REVERSE] = "reverse", [GOP_FAILOVER] = "failover",
    [GOP_REPROTECT] = "reprotect", [GOP_EXTEND] = "extend",
};

/* ---- names: lookups ---- */

static const char *name_of(const char *const *names, size_t n, int v)
{
        return v >= 0 && (size_t)v < n && names[v] ? names[v] : "?";
}

static int parse_in(const char *const *names, size_t n, const char *name)
{
        for (size_t i = 0; name && i < n; i++)
                if (names[i] && strcmp(names[i], name) == 0)
                        return (int)i;
        return -EINVAL;
}

#define NAME_PARSE(fn, type, table, count)                                                         \
        const char *fn##_name(type s)                                                              \
        {                                                                                          \
                return name_of(table, count, (int)s);                                              \
        }                                                                                          \
        int fn##_parse(const char *name, type *out)                                                \
        {                                                                                          \
                int v = parse_in(table, count, name);                                              \
                if (v < 0)                                                                         \
                        return v;                                                                  \
                *out = (type)v;                                                                    \
                return 0;                                                                          \
        }

NAME_PARSE(volume_status, enum volume_status, volume_names, VOL__COUNT)
NAME_PARSE(pair_status, enum pair_status, pair_names, PAIR__COUNT)
NAME_PARSE(repl_status, enum repl_status, repl_names, REPL__COUNT)
NAME_PARSE(group_status, enum group_status, group_names, GS__COUNT)

const char *volume_op_name(enum volume_op op)
{
        return name_of(volume_op_names, VOL_OP__COUNT, (int)op);
}

const char *pair_op_name(enum pair_op op)
{
        return name_of(pair_op_names, PAIR_OP__COUNT, (int)op);
}

const char *group_op_name(enum group_op op)
{
        return name_of(group_op_names, GOP__COUNT, (int)op);
}

/* ---- transitions ---- */

static bool next_ok(const unsigned *next, int count, int from, int to)
{
        if (from < 0 || from >= count || to < 0 || to >= count)
                return false;
        return from == to || (next[from] & B(to)) != 0;
}

bool volume_transition_ok(enum volume_status from, enum volume_status to)
{
        return next_ok(volume_next, VOL__COUNT, (int)from, (int)to);
}

bool pair_transition_ok(enum pair_status from, enum pair_status to)
{
        return next_ok(pair_next, PAIR__COUNT, (int)from, (int)to);
}

bool group_transition_ok(enum group_status from, enum group_status to)
{
        return next_ok(group_next, GS__COUNT, (int)from, (int)to);
}

bool repl_transition_ok(enum repl_status from, enum repl_status to)
{
        if ((unsigned)from > REPL__COUNT || (unsigned)to >= REPL__COUNT)
                return false;
        return from == to || (repl_next[from] & B(to)) != 0;
}

enum repl_status repl_derive(const enum repl_status *st, size_t n)
{
        size_t active = 0, stopped = 0;

        for (size_t i = 0; i < n; i++)
                if (st[i] == REPL_ERROR)
                        return REPL_ERROR;
        for (size_t i = 0; i < n; i++)
                if (st[i] == REPL_COPYING)
                        return REPL_COPYING;
        for (size_t i = 0; i < n; i++) {
                active += st[i] == REPL_ACTIVE;
                stopped += st[i] == REPL_ACTIVE_STOPPED;
        }
        if (n > 0 && active == n)
                return REPL_ACTIVE;
        if (stopped == n)
                return REPL_ACTIVE_STOPPED;
        return REPL_INACTIVE;
}

/* ---- checks and the 409 sentence ---- */

/* "status a, b or c": the statuses whose cell allows the action. */
static void list_allowed(char *buf, size_t len, const char *const *names, const bool *allowed,
                         int count)
{
        int k = 0, total = 0;
        size_t off;

        for (int i = 0; i < count; i++)
                total += allowed[i];
        off = (size_t)snprintf(buf, len, "status ");
        for (int i = 0; i < count && off < len; i++) {
                if (!allowed[i])
                        continue;
                off += (size_t)snprintf(buf + off, len - off, "%s%s",
                                        k == 0           ? ""
                                        : k == total - 1 ? " or "
                                                         : ", ",
                                        names[i]);
                k++;
        }
        if (total == 0)
                snprintf(buf, len, "a status that allows it (none does)");
}

/* The one place a refusal is worded. */
static void refuse(char *msg, size_t msglen, const char *noun, const char *id, const char *status,
                   const char *rs, const char *action, const char *need, const char *hint)
{
        snprintf(msg, msglen, "%s %s is %s%s%s; %s needs %s%s%s", noun, id, status,
                 rs ? " with replication_status " : "", rs ? rs : "", action, need,
                 hint && *hint ? "; " : "", hint ? hint : "");
}

int volume_check(enum volume_status st, enum volume_op op, const char *noun, const char *id,
                 char *msg, size_t msglen)
{
        bool allowed[VOL__COUNT];
        char need[128];

        if ((unsigned)st < VOL__COUNT && (unsigned)op < VOL_OP__COUNT &&
            volume_rules[st][op].allowed)
                return 0;
        for (int i = 0; i < VOL__COUNT; i++)
                allowed[i] = (unsigned)op < VOL_OP__COUNT && volume_rules[i][op].allowed;
        list_allowed(need, sizeof(need), volume_names, allowed, VOL__COUNT);
        refuse(msg, msglen, noun, id, volume_status_name(st), NULL, volume_op_name(op), need,
               volume_status_hint(st));
        return -EBUSY;
}

int pair_check(enum pair_status st, const char *group_id, enum pair_op op, const char *id,
               char *msg, size_t msglen)
{
        bool allowed[PAIR__COUNT];
        char need[128];

        if (op == PAIR_OP_DELETE && group_id && group_id[0]) {
                snprintf(msg, msglen,
                         "replication pair %s is in consistency group %s; delete needs a pair in "
                         "no group; remove it from the group first",
                         id, group_id);
                return -EBUSY;
        }
        if ((unsigned)st < PAIR__COUNT && (unsigned)op < PAIR_OP__COUNT &&
            pair_rules[st][op].allowed)
                return 0;
        for (int i = 0; i < PAIR__COUNT; i++)
                allowed[i] = (unsigned)op < PAIR_OP__COUNT && pair_rules[i][op].allowed;
        list_allowed(need, sizeof(need), pair_names, allowed, PAIR__COUNT);
        refuse(msg, msglen, "replication pair", id, pair_status_name(st), NULL, pair_op_name(op),
               need, pair_status_hint(st));
        return -EBUSY;
}

const struct group_rule *group_rule(enum group_status st, enum group_op op)
{
        static const struct group_rule none = {false, GS__COUNT, GS__COUNT, 0, NEED_ANY};

        if ((unsigned)st >= GS__COUNT || (unsigned)op >= GOP__COUNT)
                return &none;
        return &group_rules[st][op];
}

/* Does op need members wherever it is allowed? Then an empty group is
 * told so first, whatever its status ("the group has no pairs"). */
static bool op_needs_members(enum group_op op)
{
        for (int i = 0; i < GS__COUNT; i++)
                if (group_rules[i][op].allowed && group_rules[i][op].need == NEED_MEMBERS)
                        return true;
        return false;
}

int group_check(enum group_status st, enum repl_status rs, size_t nmembers, enum group_op op,
                const char *id, const struct group_rule **rulep, char *msg, size_t msglen)
{
        const struct group_rule *r = group_rule(st, op);
        const char *rs_name =
            (unsigned)op < GOP__COUNT && group_repl_need[op] ? repl_status_name(rs) : NULL;
        bool allowed[GS__COUNT];
        char need[256];

        if ((unsigned)op >= GOP__COUNT) {
                snprintf(msg, msglen, "group %s: unknown action", id);
                return -EBUSY;
        }
        if (nmembers == 0 && op_needs_members(op)) {
                snprintf(msg, msglen, "group %s has no pairs; %s needs at least one pair%s", id,
                         group_op_name(op),
                         group_rule(st, GOP_UPDATE)->allowed
                             ? "; add pairs first (PUT add_replication_ids)"
                             : "");
                return -EBUSY;
        }
        if (!r->allowed) {
                size_t off;

                for (int i = 0; i < GS__COUNT; i++)
                        allowed[i] = group_rules[i][op].allowed;
                list_allowed(need, sizeof(need), group_names, allowed, GS__COUNT);
                off = strlen(need);
                if (rs_name && off < sizeof(need))
                        snprintf(need + off, sizeof(need) - off, " and %s", group_repl_need[op]);
                refuse(msg, msglen, "group", id, group_status_name(st), rs_name, group_op_name(op),
                       need, group_status_hint(st, op));
                return -EBUSY;
        }
        if (r->repl_ok && ((unsigned)rs >= REPL__COUNT || !(r->repl_ok & B(rs)))) {
                refuse(msg, msglen, "group", id, group_status_name(st), repl_status_name(rs),
                       group_op_name(op), group_repl_need[op], group_repl_hint(op, rs));
                return -EBUSY;
        }
        if (r->need == NEED_EMPTY && nmembers > 0) {
                snprintf(msg, msglen,
                         "group %s still holds %zu replication pair(s); %s needs no pairs; pause "
                         "it and remove its pairs (PUT remove_replication_ids) first",
                         id, nmembers, group_op_name(op));
                return -EBUSY;
        }
        if (rulep)
                *rulep = r;
        return 0;
}
