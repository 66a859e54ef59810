/* service/states.c: the name tables, the transition tables and the action
 * tables of volumes, pairs and groups, checked against docs/semantics.md
 * ("Pair state table", "Group actions", "Group state table") and
 * docs/design/control-plane.md. */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "service/states.h"

static bool matches(const char *s, const char *ere)
{
        regex_t re;
        bool ok;

        assert_int_equal(regcomp(&re, ere, REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
        ok = regexec(&re, s, 0, NULL, 0) == 0;
        regfree(&re);
        return ok;
}

/* ---- names ---- */

static void test_names(void **state)
{
        (void)state;
        for (int i = 0; i < VOL__COUNT; i++) {
                enum volume_status v = VOL__COUNT;
                assert_string_not_equal(volume_status_name((enum volume_status)i), "?");
                assert_int_equal(volume_status_parse(volume_status_name((enum volume_status)i), &v),
                                 0);
                assert_int_equal(v, i);
        }
        for (int i = 0; i < PAIR__COUNT; i++) {
                enum pair_status v = PAIR__COUNT;
                assert_int_equal(pair_status_parse(pair_status_name((enum pair_status)i), &v), 0);
                assert_int_equal(v, i);
        }
        for (int i = 0; i < REPL__COUNT; i++) {
                enum repl_status v = REPL__COUNT;
                assert_int_equal(repl_status_parse(repl_status_name((enum repl_status)i), &v), 0);
                assert_int_equal(v, i);
        }
        for (int i = 0; i < GS__COUNT; i++) {
                enum group_status v = GS__COUNT;
                assert_int_equal(group_status_parse(group_status_name((enum group_status)i), &v),
                                 0);
                assert_int_equal(v, i);
        }
        /* The API spellings. */
        assert_string_equal(repl_status_name(REPL_ACTIVE_STOPPED), "active-stopped");
        assert_string_equal(group_status_name(GS_ERROR_FAILOVERING), "error_failovering");
        assert_string_equal(group_status_name(GS_FAILOVERED), "failovered");
        assert_string_equal(volume_status_name(VOL_ERROR_EXTENDING), "error_extending");
        assert_string_equal(pair_status_name(PAIR_ERROR_DELETING), "error_deleting");
        assert_string_equal(group_op_name(GOP_REPROTECT), "reprotect");
}

static void test_unknown_names(void **state)
{
        enum group_status g = GS_FAILOVERED;
        enum repl_status r = REPL_COPYING;
        enum pair_status p = PAIR_ERROR;
        enum volume_status v = VOL_EXTENDING;

        (void)state;
        assert_int_equal(group_status_parse("failed-over", &g), -EINVAL);
        assert_int_equal(group_status_parse("", &g), -EINVAL);
        assert_int_equal(group_status_parse(NULL, &g), -EINVAL);
        assert_int_equal(group_status_parse("Available", &g), -EINVAL);
        assert_int_equal(g, GS_FAILOVERED); /* untouched */
        assert_int_equal(repl_status_parse("active_stopped", &r), -EINVAL);
        assert_int_equal(r, REPL_COPYING);
        assert_int_equal(pair_status_parse("extending", &p), -EINVAL);
        assert_int_equal(p, PAIR_ERROR);
        assert_int_equal(volume_status_parse("failovered", &v), -EINVAL);
        assert_int_equal(v, VOL_EXTENDING);
        assert_string_equal(group_status_name(GS__COUNT), "?");
        assert_string_equal(group_status_name((enum group_status) - 1), "?");
        assert_string_equal(repl_status_name(REPL__COUNT), "?");
}

/* ---- derivation (semantics.md "Group replication status") ---- */

#define D(...)                                                                                     \
        repl_derive((const enum repl_status[]){__VA_ARGS__},                                       \
                    sizeof((const enum repl_status[]){__VA_ARGS__}) / sizeof(enum repl_status))

static void test_derive(void **state)
{
        (void)state;
        assert_int_equal(repl_derive(NULL, 0), REPL_ACTIVE_STOPPED);
        assert_int_equal(D(REPL_ACTIVE), REPL_ACTIVE);
        assert_int_equal(D(REPL_ACTIVE, REPL_COPYING), REPL_COPYING);
        assert_int_equal(D(REPL_COPYING, REPL_ERROR), REPL_ERROR);
        assert_int_equal(D(REPL_ACTIVE_STOPPED, REPL_ACTIVE_STOPPED), REPL_ACTIVE_STOPPED);
        assert_int_equal(D(REPL_ACTIVE_STOPPED, REPL_INACTIVE), REPL_INACTIVE);
        assert_int_equal(D(REPL_ACTIVE_STOPPED, REPL_ACTIVE), REPL_INACTIVE);
        assert_int_equal(D(REPL_INACTIVE), REPL_INACTIVE);
}

/* ---- the group state table, cell by cell ---- */

/* semantics.md "Group state table" / "Group actions", written out again
 * independently of states.c: is (status, action) allowed with replication
 * status rs and n members? */
static bool doc_allows(enum group_status st, enum group_op op, enum repl_status rs, size_t n)
{
        bool members = n > 0;

        switch (st) {
        case GS_AVAILABLE:
                switch (op) {
                case GOP_UPDATE:
                        return rs != REPL_ACTIVE && rs != REPL_COPYING;
                case GOP_DELETE:
                        return !members;
                case GOP_PAUSE:
                        return true;
                case GOP_SYNC:
                        return members;
                case GOP_REVERSE:
                        return members && rs == REPL_ACTIVE;
                case GOP_FAILOVER:
                        return members; /* any replication state, also with a fault */
                case GOP_REPROTECT:
                        return false;
                case GOP_EXTEND:
                        return members && rs != REPL_ERROR;
                case GOP__COUNT:
                        break;
                }
                return false;
        case GS_FAILOVERED:
                return op == GOP_PAUSE || (op == GOP_REPROTECT && members);
        case GS_ERROR:
        case GS_ERROR_REVERSING:
        case GS_ERROR_FAILOVERING:
                return (op == GOP_DELETE && !members) || (op == GOP_SYNC && members);
        case GS_ERROR_DELETING: /* DELETE retries */
                return op == GOP_DELETE && !members;
        case GS_CREATING:
        case GS_UPDATING:
        case GS_DELETING:
        case GS_REVERSING:
        case GS_FAILOVERING:
        case GS__COUNT:
                break;
        }
        return false;
}

/* The status after a successful action (GS__COUNT: gone), and the transient
 * status written first, per the table's "status transitions" column. */
static void doc_moves(enum group_status st, enum group_op op, enum group_status *via,
                      enum group_status *to)
{
        *via = st;
        *to = st;
        switch (op) {
        case GOP_UPDATE:
                *via = GS_UPDATING;
                *to = GS_AVAILABLE;
                break;
        case GOP_DELETE:
                *via = GS_DELETING;
                *to = GS__COUNT;
                break;
        case GOP_SYNC: /* error, error_reversing, error_failovering -> available */
                *to = GS_AVAILABLE;
                break;
        case GOP_REVERSE:
                *via = GS_REVERSING;
                *to = GS_AVAILABLE;
                break;
        case GOP_FAILOVER:
                *via = GS_FAILOVERING;
                *to = GS_FAILOVERED;
                break;
        case GOP_REPROTECT:
                *to = GS_AVAILABLE;
                break;
        case GOP_PAUSE:
        case GOP_EXTEND:
        case GOP__COUNT:
                break;
        }
}

static void test_group_table(void **state)
{
        static const size_t ns[] = {0, 1, 3};
        int cells = 0;

        (void)state;
        for (int s = 0; s < GS__COUNT; s++)
                for (int o = 0; o < GOP__COUNT; o++)
                        for (int r = 0; r < REPL__COUNT; r++)
                                for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
                                        enum group_status st = (enum group_status)s, via, to;
                                        enum group_op op = (enum group_op)o;
                                        enum repl_status rs = (enum repl_status)r;
                                        const struct group_rule *rule = NULL;
                                        char msg[512] = "";
                                        bool want = doc_allows(st, op, rs, ns[k]);
                                        int rc = group_check(st, rs, ns[k], op, "G", &rule, msg,
                                                             sizeof(msg));

                                        if (want != (rc == 0))
                                                fail_msg("group %s, %s, replication %s, %zu "
                                                         "pairs: want %s, got %d (%s)",
                                                         group_status_name(st), group_op_name(op),
                                                         repl_status_name(rs), ns[k],
                                                         want ? "allowed" : "409", rc, msg);
                                        cells++;
                                        if (rc < 0) {
                                                assert_int_equal(rc, -EBUSY);
                                                /* S4: the sentence names the state */
                                                assert_true(strstr(msg, group_status_name(st)) ||
                                                            strstr(msg, "no pairs") ||
                                                            strstr(msg, "still holds"));
                                                assert_non_null(strstr(msg, group_op_name(op)));
                                                continue;
                                        }
                                        assert_non_null(rule);
                                        doc_moves(st, op, &via, &to);
                                        assert_int_equal(rule->via, via);
                                        assert_int_equal(rule->to, to);
                                }
        assert_int_equal(cells, GS__COUNT * GOP__COUNT * REPL__COUNT * 3);
}

/* S2: every allowed cell is a legal walk of the transition table. */
static void test_rules_walk_transitions(void **state)
{
        (void)state;
        for (int s = 0; s < GS__COUNT; s++)
                for (int o = 0; o < GOP__COUNT; o++) {
                        const struct group_rule *r =
                            group_rule((enum group_status)s, (enum group_op)o);

                        if (!r->allowed)
                                continue;
                        assert_true(group_transition_ok((enum group_status)s, r->via));
                        if (r->to != GS__COUNT)
                                assert_true(group_transition_ok(r->via, r->to));
                }
}

/* The 409 sentences the functional tests and operators rely on. */
static void test_group_messages(void **state)
{
        char msg[512];

        (void)state;
        /* The operator complaint: after a failover both sync and reverse
         * must point to reprotect, not to each other. */
        assert_int_equal(group_check(GS_FAILOVERED, REPL_ACTIVE_STOPPED, 2, GOP_SYNC, "G", NULL,
                                     msg, sizeof(msg)),
                         -EBUSY);
        assert_non_null(strstr(msg, "reprotect the group first"));
        assert_int_equal(group_check(GS_FAILOVERED, REPL_ACTIVE_STOPPED, 2, GOP_REVERSE, "G", NULL,
                                     msg, sizeof(msg)),
                         -EBUSY);
        assert_non_null(strstr(msg, "reprotect the group first"));
        assert_null(strstr(msg, "sync the group first"));
        assert_int_equal(group_check(GS_FAILOVERED, REPL_ACTIVE_STOPPED, 2, GOP_FAILOVER, "G", NULL,
                                     msg, sizeof(msg)),
                         -EBUSY);
        assert_true(matches(msg, "already failed over.*reprotect"));
        /* The format: "group X is S [with replication_status R]; A needs ...; ..." */
        assert_int_equal(group_check(GS_AVAILABLE, REPL_ACTIVE_STOPPED, 2, GOP_REVERSE, "G", NULL,
                                     msg, sizeof(msg)),
                         -EBUSY);
        assert_string_equal(msg, "group G is available with replication_status active-stopped; "
                                 "reverse needs replication_status active; sync the group first");
        assert_int_equal(group_check(GS_UPDATING, REPL_ACTIVE_STOPPED, 2, GOP_PAUSE, "G", NULL, msg,
                                     sizeof(msg)),
                         -EBUSY);
        assert_string_equal(msg, "group G is updating; pause needs status available or "
                                 "failovered; wait until it is available");
        /* tests/func/t_groups_api.sh expect_409 regexes */
        group_check(GS_AVAILABLE, REPL_ACTIVE_STOPPED, 2, GOP_DELETE, "G", NULL, msg, sizeof(msg));
        assert_true(matches(msg, "pair|replication|member"));
        group_check(GS_AVAILABLE, REPL_ACTIVE, 2, GOP_UPDATE, "G", NULL, msg, sizeof(msg));
        assert_true(matches(msg, "active"));
        assert_true(matches(msg, "pause it"));
        group_check(GS_AVAILABLE, REPL_COPYING, 2, GOP_UPDATE, "G", NULL, msg, sizeof(msg));
        assert_true(matches(msg, "copying|active"));
        group_check(GS_AVAILABLE, REPL_ACTIVE, 2, GOP_REPROTECT, "G", NULL, msg, sizeof(msg));
        assert_true(matches(msg, "available|failover"));
        group_check(GS_AVAILABLE, REPL_ACTIVE_STOPPED, 2, GOP_REVERSE, "G", NULL, msg, sizeof(msg));
        assert_true(matches(msg, "active-stopped|paus|stopped"));
        for (int o = GOP_SYNC; o <= GOP_EXTEND; o++) {
                if (o == GOP_PAUSE)
                        continue;
                assert_int_equal(group_check(GS_AVAILABLE, REPL_ACTIVE_STOPPED, 0, (enum group_op)o,
                                             "G", NULL, msg, sizeof(msg)),
                                 -EBUSY);
                assert_true(matches(msg, "no pair|pairs"));
        }
        /* An empty group: pause is a no-op 200, delete and update allowed. */
        assert_int_equal(group_check(GS_AVAILABLE, REPL_ACTIVE_STOPPED, 0, GOP_PAUSE, "G", NULL,
                                     msg, sizeof(msg)),
                         0);
        assert_int_equal(group_check(GS_AVAILABLE, REPL_ACTIVE_STOPPED, 0, GOP_DELETE, "G", NULL,
                                     msg, sizeof(msg)),
                         0);
        /* A fault (replication error, status available): failover and
         * update allowed, extend and reverse refused. */
        assert_int_equal(
            group_check(GS_AVAILABLE, REPL_ERROR, 2, GOP_FAILOVER, "G", NULL, msg, sizeof(msg)), 0);
        assert_int_equal(
            group_check(GS_AVAILABLE, REPL_ERROR, 2, GOP_UPDATE, "G", NULL, msg, sizeof(msg)), 0);
        assert_int_equal(
            group_check(GS_AVAILABLE, REPL_ERROR, 2, GOP_EXTEND, "G", NULL, msg, sizeof(msg)),
            -EBUSY);
        assert_true(matches(msg, "replication_status error"));
        /* A tiny buffer is still a terminated string. */
        assert_int_equal(group_check(GS_FAILOVERED, REPL_ACTIVE, 2, GOP_SYNC, "G", NULL, msg, 8),
                         -EBUSY);
        assert_int_equal(strlen(msg), 7);
}

/* ---- transitions ---- */

struct tr {
        int from, to;
};

/* docs/design/control-plane.md, plus the failure paths. */
static const struct tr group_legal[] = {
    {GS_CREATING, GS_AVAILABLE},
    {GS_CREATING, GS_ERROR},
    {GS_AVAILABLE, GS_UPDATING},
    {GS_AVAILABLE, GS_DELETING},
    {GS_AVAILABLE, GS_REVERSING},
    {GS_AVAILABLE, GS_FAILOVERING},
    {GS_UPDATING, GS_AVAILABLE},
    {GS_UPDATING, GS_ERROR},
    {GS_DELETING, GS_ERROR_DELETING},
    {GS_ERROR, GS_AVAILABLE},
    {GS_ERROR, GS_DELETING},
    {GS_REVERSING, GS_AVAILABLE},
    {GS_FAILOVERING, GS_FAILOVERED},
    {GS_FAILOVERING, GS_AVAILABLE},
    {GS_FAILOVERED, GS_AVAILABLE},
    /* a swap that could not be undone, and the ways out of the error_* statuses */
    {GS_REVERSING, GS_ERROR_REVERSING},
    {GS_FAILOVERING, GS_ERROR_FAILOVERING},
    {GS_ERROR_DELETING, GS_DELETING},
    {GS_ERROR_REVERSING, GS_AVAILABLE},
    {GS_ERROR_REVERSING, GS_DELETING},
    {GS_ERROR_FAILOVERING, GS_AVAILABLE},
    {GS_ERROR_FAILOVERING, GS_DELETING},
};

static bool listed(const struct tr *t, size_t n, int from, int to)
{
        for (size_t i = 0; i < n; i++)
                if (t[i].from == from && t[i].to == to)
                        return true;
        return false;
}

static void test_group_transitions(void **state)
{
        (void)state;
        for (int f = 0; f < GS__COUNT; f++)
                for (int t = 0; t < GS__COUNT; t++) {
                        bool want =
                            f == t ||
                            listed(group_legal, sizeof(group_legal) / sizeof(group_legal[0]), f, t);
                        if (group_transition_ok((enum group_status)f, (enum group_status)t) != want)
                                fail_msg("group %s -> %s: want %s", group_status_name(f),
                                         group_status_name(t), want ? "legal" : "illegal");
                }
        /* Some that must never happen. */
        assert_false(group_transition_ok(GS_AVAILABLE, GS_FAILOVERED)); /* skips failovering */
        assert_false(group_transition_ok(GS_FAILOVERED, GS_FAILOVERING));
        assert_false(group_transition_ok(GS_FAILOVERED, GS_REVERSING));
        assert_false(group_transition_ok(GS_DELETING, GS_AVAILABLE));
        assert_false(group_transition_ok(GS_ERROR_DELETING, GS_AVAILABLE));
        assert_false(group_transition_ok(GS_ERROR, GS_FAILOVERING));
        assert_false(group_transition_ok(GS__COUNT, GS_AVAILABLE));
        assert_false(group_transition_ok(GS_AVAILABLE, GS__COUNT));
}

static void test_pair_transitions(void **state)
{
        static const struct tr legal[] = {
            {PAIR_CREATING, PAIR_AVAILABLE},      {PAIR_CREATING, PAIR_ERROR},
            {PAIR_AVAILABLE, PAIR_DELETING},      {PAIR_AVAILABLE, PAIR_ERROR},
            {PAIR_ERROR, PAIR_DELETING},          {PAIR_DELETING, PAIR_ERROR_DELETING},
            {PAIR_ERROR_DELETING, PAIR_ERROR},    {PAIR_ERROR, PAIR_AVAILABLE},
            {PAIR_ERROR_DELETING, PAIR_DELETING},
        };

        (void)state;
        for (int f = 0; f < PAIR__COUNT; f++)
                for (int t = 0; t < PAIR__COUNT; t++)
                        assert_int_equal(
                            pair_transition_ok((enum pair_status)f, (enum pair_status)t),
                            f == t || listed(legal, sizeof(legal) / sizeof(legal[0]), f, t));
        assert_false(pair_transition_ok(PAIR_DELETING, PAIR_AVAILABLE));
        assert_false(pair_transition_ok(PAIR_ERROR_DELETING, PAIR_AVAILABLE));
}

/* semantics.md "Replication status transitions of a pair": everything
 * moves anywhere except a new pair into a paused status, and error into
 * active-stopped. */
static void test_repl_transitions(void **state)
{
        (void)state;
        for (int f = 0; f <= REPL__COUNT; f++)
                for (int t = 0; t < REPL__COUNT; t++) {
                        bool want = true;

                        if (f == REPL__COUNT)
                                want = t == REPL_COPYING || t == REPL_ACTIVE || t == REPL_ERROR;
                        else if (f == REPL_ERROR)
                                want = t != REPL_ACTIVE_STOPPED;
                        if (repl_transition_ok((enum repl_status)f, (enum repl_status)t) != want)
                                fail_msg("replication %s -> %s: want %s",
                                         f == REPL__COUNT ? "(new)"
                                                          : repl_status_name((enum repl_status)f),
                                         repl_status_name((enum repl_status)t),
                                         want ? "legal" : "illegal");
                }
        assert_false(repl_transition_ok(REPL_ACTIVE, REPL__COUNT));
}

static void test_volume_transitions(void **state)
{
        static const struct tr legal[] = {
            {VOL_CREATING, VOL_AVAILABLE},        {VOL_CREATING, VOL_ERROR},
            {VOL_AVAILABLE, VOL_DELETING},        {VOL_AVAILABLE, VOL_EXTENDING},
            {VOL_AVAILABLE, VOL_ERROR},           {VOL_EXTENDING, VOL_AVAILABLE},
            {VOL_EXTENDING, VOL_ERROR_EXTENDING}, {VOL_EXTENDING, VOL_ERROR},
            {VOL_DELETING, VOL_ERROR_DELETING},   {VOL_ERROR, VOL_DELETING},
            {VOL_ERROR_DELETING, VOL_DELETING},   {VOL_ERROR_DELETING, VOL_ERROR},
            {VOL_ERROR_EXTENDING, VOL_DELETING},  {VOL_ERROR_EXTENDING, VOL_ERROR},
        };

        (void)state;
        for (int f = 0; f < VOL__COUNT; f++)
                for (int t = 0; t < VOL__COUNT; t++)
                        assert_int_equal(
                            volume_transition_ok((enum volume_status)f, (enum volume_status)t),
                            f == t || listed(legal, sizeof(legal) / sizeof(legal[0]), f, t));
        assert_false(volume_transition_ok(VOL_DELETING, VOL_AVAILABLE));
        assert_false(volume_transition_ok(VOL_CREATING, VOL_EXTENDING));
}

/* ---- pair and volume action tables ---- */

static void test_pair_table(void **state)
{
        char msg[512];

        (void)state;
        /* semantics.md "Pair state table": DELETE */
        for (int s = 0; s < PAIR__COUNT; s++) {
                bool want = s == PAIR_AVAILABLE || s == PAIR_ERROR || s == PAIR_ERROR_DELETING;
                int rc =
                    pair_check((enum pair_status)s, NULL, PAIR_OP_DELETE, "P", msg, sizeof(msg));

                assert_int_equal(rc, want ? 0 : -EBUSY);
                if (!want)
                        assert_non_null(strstr(msg, pair_status_name((enum pair_status)s)));
                /* in a group: always 409, "remove it from the group first" */
                assert_int_equal(
                    pair_check((enum pair_status)s, "G", PAIR_OP_DELETE, "P", msg, sizeof(msg)),
                    -EBUSY);
                assert_true(matches(msg, "group G.*remove it from the group first"));
                /* join a group: available only */
                assert_int_equal(
                    pair_check((enum pair_status)s, NULL, PAIR_OP_JOIN, "P", msg, sizeof(msg)),
                    s == PAIR_AVAILABLE ? 0 : -EBUSY);
        }
        pair_check(PAIR_CREATING, "", PAIR_OP_DELETE, "P", msg, sizeof(msg));
        assert_string_equal(msg, "replication pair P is creating; delete needs status available, "
                                 "error or error_deleting; wait until it is available");
}

static void test_volume_table(void **state)
{
        char msg[512];

        (void)state;
        for (int s = 0; s < VOL__COUNT; s++) {
                bool del = s == VOL_AVAILABLE || s == VOL_ERROR || s == VOL_ERROR_DELETING ||
                           s == VOL_ERROR_EXTENDING;

                assert_int_equal(volume_check((enum volume_status)s, VOL_OP_DELETE, "volume", "V",
                                              msg, sizeof(msg)),
                                 del ? 0 : -EBUSY);
                assert_int_equal(volume_check((enum volume_status)s, VOL_OP_EXTEND, "volume", "V",
                                              msg, sizeof(msg)),
                                 s == VOL_AVAILABLE ? 0 : -EBUSY);
                assert_int_equal(volume_check((enum volume_status)s, VOL_OP_PAIR, "DR volume", "V",
                                              msg, sizeof(msg)),
                                 s == VOL_AVAILABLE ? 0 : -EBUSY);
        }
        volume_check(VOL_CREATING, VOL_OP_DELETE, "volume", "V", msg, sizeof(msg));
        assert_string_equal(msg, "volume V is creating; delete needs status available, error, "
                                 "error_deleting or error_extending; wait until it is available");
        volume_check(VOL_EXTENDING, VOL_OP_PAIR, "production volume", "V", msg, sizeof(msg));
        assert_true(matches(msg, "^production volume V is extending; pairing needs status "
                                 "available"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_names),
            cmocka_unit_test(test_unknown_names),
            cmocka_unit_test(test_derive),
            cmocka_unit_test(test_group_table),
            cmocka_unit_test(test_rules_walk_transitions),
            cmocka_unit_test(test_group_messages),
            cmocka_unit_test(test_group_transitions),
            cmocka_unit_test(test_pair_transitions),
            cmocka_unit_test(test_repl_transitions),
            cmocka_unit_test(test_volume_transitions),
            cmocka_unit_test(test_pair_table),
            cmocka_unit_test(test_volume_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
