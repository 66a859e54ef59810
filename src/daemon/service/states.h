/* Typed states of volumes, pairs and groups: one name table per enum, one
 * action table per object (which request each status allows, and what it
 * moves to), one transition table per object (which status writes the
 * service may perform), and the one place that words a refusal (409).
 *
 * The store keeps statuses as strings (its rows and the API show them);
 * the service converts at its boundary with *_parse and *_name. The tables
 * themselves, with their invariants, are at the top of states.c; they follow
 * docs/semantics.md ("Pair state table", "Group actions", "Group state
 * table") and docs/design/control-plane.md. */
#ifndef EVSREP_SERVICE_STATES_H
#define EVSREP_SERVICE_STATES_H

#include <stdbool.h>
#include <stddef.h>

/* ---- statuses ---- */

enum volume_status {
        VOL_CREATING,
        VOL_AVAILABLE,
        VOL_EXTENDING,
        VOL_DELETING,
        VOL_ERROR,
        VOL_ERROR_DELETING,
        VOL_ERROR_EXTENDING,
        VOL__COUNT
};

enum pair_status {
        PAIR_CREATING,
        PAIR_AVAILABLE,
        PAIR_DELETING,
        PAIR_ERROR,
        PAIR_ERROR_DELETING,
        PAIR__COUNT
};

/* replication_status of a pair, and of a group (derived from its pairs). */
enum repl_status {
        REPL_ACTIVE,
        REPL_ACTIVE_STOPPED,
        REPL_COPYING,
        REPL_INACTIVE,
        REPL_ERROR,
        REPL__COUNT
};

enum group_status {
        GS_CREATING,
        GS_AVAILABLE,
        GS_UPDATING,
        GS_DELETING,
        GS_ERROR,
        GS_REVERSING,
        GS_FAILOVERING,
        GS_FAILOVERED,
        GS_ERROR_DELETING,
        GS_ERROR_REVERSING,
        GS_ERROR_FAILOVERING,
        GS__COUNT
};

/* The API name of a status ("?" for a value out of range). */
const char *volume_status_name(enum volume_status s);
const char *pair_status_name(enum pair_status s);
const char *repl_status_name(enum repl_status s);
const char *group_status_name(enum group_status s);
/* Name -> enum: 0, or -EINVAL (and *out untouched) for an unknown name. */
int volume_status_parse(const char *name, enum volume_status *out);
int pair_status_parse(const char *name, enum pair_status *out);
int repl_status_parse(const char *name, enum repl_status *out);
int group_status_parse(const char *name, enum group_status *out);

/* ---- transitions: may the service write status `to` over `from`? ----
 * Writing the same status again (recording other fields) is always allowed.
 * Used by assert() wherever a status is set. */
bool volume_transition_ok(enum volume_status from, enum volume_status to);
bool pair_transition_ok(enum pair_status from, enum pair_status to);
bool group_transition_ok(enum group_status from, enum group_status to);
/* replication_status of a pair or of a group's cached value (from
 * REPL__COUNT: a new row, which has none yet). */
bool repl_transition_ok(enum repl_status from, enum repl_status to);

/* semantics.md derivation of a group's replication_status from its
 * members': any error -> error; any copying -> copying; all active (at
 * least one) -> active; all active-stopped (or none) -> active-stopped;
 * else inactive. */
enum repl_status repl_derive(const enum repl_status *members, size_t n);

/* ---- actions ---- */

enum volume_op { VOL_OP_DELETE, VOL_OP_EXTEND, VOL_OP_PAIR, VOL_OP__COUNT };
enum pair_op { PAIR_OP_DELETE, PAIR_OP_JOIN, PAIR_OP__COUNT };
/* The columns of the group state table (semantics.md). */
enum group_op {
        GOP_UPDATE,
        GOP_DELETE,
        GOP_PAUSE,
        GOP_SYNC,
        GOP_REVERSE,
        GOP_FAILOVER,
        GOP_REPROTECT,
        GOP_EXTEND,
        GOP__COUNT
};

const char *volume_op_name(enum volume_op op);
const char *pair_op_name(enum pair_op op);
const char *group_op_name(enum group_op op);

/* Member-count conditions of a group action. */
enum group_need {
        NEED_ANY,     /* any member count */
        NEED_MEMBERS, /* at least one pair ("the group has no pairs") */
        NEED_EMPTY,   /* no pairs ("remove its pairs first") */
};

/* One cell of the group state table. */
struct group_rule {
        bool allowed;          /* in this status (else 409) */
        enum group_status via; /* transient status written first (== from: none) */
        enum group_status to;  /* status after success (GS__COUNT: the group is gone) */
        unsigned repl_ok;      /* bit per enum repl_status allowed; 0: any */
        enum group_need need;
};

#define REPL_BIT(r) (1u << (r))

const struct group_rule *group_rule(enum group_status st, enum group_op op);

/* Judge a request against the tables. 0: allowed (and *rule, when not NULL,
 * is its cell). -EBUSY: refused; msg holds the one 409 sentence
 *   "<noun> <id> is <status>[ with replication_status <rs>]; <action> needs
 *    <condition>; <what to do first>"
 * (or "group <id> has no pairs; ..." / "... still holds N pairs ..."). */
int volume_check(enum volume_status st, enum volume_op op, const char *noun, const char *id,
                 char *msg, size_t msglen);
/* group_id: the pair's group ("" or NULL: in no group). */
int pair_check(enum pair_status st, const char *group_id, enum pair_op op, const char *id,
               char *msg, size_t msglen);
int group_check(enum group_status st, enum repl_status rs, size_t nmembers, enum group_op op,
                const char *id, const struct group_rule **rule, char *msg, size_t msglen);

#endif
