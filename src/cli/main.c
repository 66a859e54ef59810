/* evsrep: command line client for the evsrep replication API.
 *
 *   evsrep [global options] NOUN VERB [ID] [options]
 *   evsrep help [NOUN [VERB]]
 *
 * Options may come anywhere after the program name. Each verb lists the
 * options it accepts (verb_table); any other option is a usage error, so a
 * typo never silently does something else. */
#include "cli/cli.h"

#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum opt_bit {
        O_NAME = 1u << 0,
        O_DESC = 1u << 1,
        O_SIZE = 1u << 2,
        O_AZ = 1u << 3,
        O_TYPE = 1u << 4,
        O_MULTI = 1u << 5,
        O_STATUS = 1u << 6,
        O_GROUP = 1u << 7,
        O_VOLUME = 1u << 8,
        O_PROD = 1u << 9,
        O_DR = 1u << 10,
        O_PAIR = 1u << 11,
        O_ADD = 1u << 12,
        O_REMOVE = 1u << 13,
        O_WAIT = 1u << 14,     /* --wait, --timeout, --interval */
        O_CONFIRM = 1u << 15,  /* --yes, --confirm-above (cmd_group_ext.c) */
        O_THROTTLE = 1u << 16, /* --max-mib, --min-mib, --adaptive */
        O_REPAIR = 1u << 17,
        O_MAX_RATE = 1u << 18,
        O_PREFIX = 1u << 19,
};

enum opt_id {
        OPT_URL = 256,
        OPT_TOKEN,
        OPT_PROJECT,
        OPT_TIMEOUT,
        OPT_INTERVAL,
        OPT_WAIT,
        OPT_VERSION,
        OPT_NAME,
        OPT_DESC,
        OPT_SIZE,
        OPT_AZ,
        OPT_TYPE,
        OPT_MULTI,
        OPT_STATUS,
        OPT_GROUP,
        OPT_VOLUME,
        OPT_PROD,
        OPT_DR,
        OPT_PAIR,
        OPT_ADD,
        OPT_REMOVE,
        OPT_YES,
        OPT_CONFIRM_ABOVE,
        OPT_MAX_MIB,
        OPT_MIN_MIB,
        OPT_ADAPTIVE,
        OPT_REPAIR,
        OPT_MAX_RATE,
        OPT_PREFIX,
};

static const struct option long_opts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"project", required_argument, NULL, OPT_PROJECT},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"name", required_argument, NULL, OPT_NAME},
    {"description", required_argument, NULL, OPT_DESC},
    {"size", required_argument, NULL, OPT_SIZE},
    {"az", required_argument, NULL, OPT_AZ},
    {"type", required_argument, NULL, OPT_TYPE},
    {"multiattach", no_argument, NULL, OPT_MULTI},
    {"status", required_argument, NULL, OPT_STATUS},
    {"group", required_argument, NULL, OPT_GROUP},
    {"volume", required_argument, NULL, OPT_VOLUME},
    {"production", required_argument, NULL, OPT_PROD},
    {"dr", required_argument, NULL, OPT_DR},
    {"pair", required_argument, NULL, OPT_PAIR},
    {"add", required_argument, NULL, OPT_ADD},
    {"remove", required_argument, NULL, OPT_REMOVE},
    {"yes", no_argument, NULL, OPT_YES},
    {"confirm-above", required_argument, NULL, OPT_CONFIRM_ABOVE},
    {"max-mib", required_argument, NULL, OPT_MAX_MIB},
    {"min-mib", required_argument, NULL, OPT_MIN_MIB},
    {"adaptive", no_argument, NULL, OPT_ADAPTIVE},
    {"repair", no_argument, NULL, OPT_REPAIR},
    {"max-rate", required_argument, NULL, OPT_MAX_RATE},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {NULL, 0, NULL, 0},
};

/* Option help, in the order shown; bit 0 marks a global option. */
static const struct {
        unsigned bit;
        const char *flag, *help;
} opt_help[] = {
    {O_NAME, "--name NAME", "name (list: only items with this exact name)"},
    {O_DESC, "--description TEXT", "description"},
    {O_SIZE, "--size GIB", "size in GiB (extend: the new, larger size)"},
    {O_AZ, "--az AZ", "availability zone (pair/group: priority station)"},
    {O_TYPE, "--type TYPE", "volume type (default SSD)"},
    {O_MULTI, "--multiattach", "allow several attachments"},
    {O_STATUS, "--status STATUS", "only items with this status"},
    {O_GROUP, "--group GROUP_ID", "only pairs of this group"},
    {O_VOLUME, "--volume VOLUME_ID", "only items holding this volume"},
    {O_PROD, "--production VOLUME_ID", "production volume of the new pair"},
    {O_DR, "--dr VOLUME_ID", "DR volume of the new pair (another AZ, same size)"},
    {O_PAIR, "--pair PAIR_ID", "a pair (repeat for several)"},
    {O_ADD, "--add PAIR_ID", "pair to add to the group (repeatable)"},
    {O_REMOVE, "--remove PAIR_ID", "pair to remove from the group (repeatable)"},
    {O_THROTTLE, "--max-mib MIB", "resync ceiling, MiB/s (0 or absent: none)"},
    {O_THROTTLE, "--min-mib MIB", "floor of the adaptive mode, MiB/s (default 1)"},
    {O_THROTTLE, "--adaptive", "yield to client writes: back off when their latency rises"},
    {O_CONFIRM, "--yes", "do not ask, even above --confirm-above"},
    {O_CONFIRM, "--confirm-above SIZE", "ask first when the estimate copies more (default 10G)"},
    {O_REPAIR, "--repair", "verify: mark mismatching chunks dirty so a sync copies them"},
    {O_MAX_RATE, "--max-rate MIB", "verify: at most MIB MiB/s (default 0: unlimited)"},
    {O_PREFIX, "--prefix NAME", "names of the clone volumes: NAME-<DR volume name>"},
    {O_WAIT, "--wait", "wait until the action has reached its end state"},
    {O_WAIT, "--timeout SECONDS", "give up waiting after SECONDS (default 600): exit 6"},
    {O_WAIT, "--interval SECONDS", "poll interval while waiting (default 0.2)"},
};

struct verb {
        const char *noun, *verb;
        int (*fn)(struct cli *c);
        unsigned opts;
        const char *args; /* synopsis after the verb */
        const char *help;
};

static const struct verb verb_table[] = {
    {"volume", "create", cmd_volume_create,
     O_NAME | O_DESC | O_SIZE | O_AZ | O_TYPE | O_MULTI | O_WAIT,
     "--size GIB --az AZ [--name NAME] [--wait]",
     "Create a volume. With --wait, until its status is available."},
    {"volume", "list", cmd_volume_list, O_NAME | O_STATUS | O_AZ,
     "[--name N] [--status S] [--az AZ]", "List volumes (detail)."},
    {"volume", "show", cmd_volume_show, 0, "VOLUME_ID", "Show one volume."},
    {"volume", "delete", cmd_volume_delete, O_WAIT, "VOLUME_ID [--wait]",
     "Delete a volume (not while it is in a pair). With --wait, until it is gone."},
    {"volume", "extend", cmd_volume_extend, O_SIZE | O_WAIT, "VOLUME_ID --size GIB [--wait]",
     "Grow a volume that is in no pair. With --wait, until it is available again."},
    {"volume", "connect", cmd_volume_connect, 0, "VOLUME_ID",
     "Attach: a new attachment of the volume; prints its NBD connection info (uri,\n"
     "export name, read-only, and the TLS-PSK identity and key when NBD TLS is on)."},
    {"volume", "disconnect", cmd_volume_disconnect, 0, "VOLUME_ID",
     "Revoke every attachment of the volume; their NBD connections are cut."},

    {"pair", "create", cmd_pair_create, O_NAME | O_DESC | O_PROD | O_DR | O_AZ | O_WAIT,
     "--production VOLUME_ID --dr VOLUME_ID [--az AZ] [--name NAME] [--wait]",
     "Create a replication pair (hypermetro). --az defaults to the production volume's AZ.\n"
     "With --wait, until it is available and the initial copy is done (replication active)."},
    {"pair", "list", cmd_pair_list, O_NAME | O_STATUS | O_GROUP | O_VOLUME | O_AZ,
     "[--name N] [--status S] [--group G] [--volume V] [--az AZ]", "List replication pairs."},
    {"pair", "show", cmd_pair_show, 0, "PAIR_ID", "Show one pair, with its live copy figures."},
    {"pair", "delete", cmd_pair_delete, O_WAIT, "PAIR_ID [--wait]",
     "Delete a pair that is in no group. Both volumes stay. With --wait, until it is gone."},

    {"group", "create", cmd_group_create, O_NAME | O_DESC | O_PAIR | O_AZ | O_WAIT,
     "--pair PAIR_ID [--pair PAIR_ID...] [--az AZ] [--name NAME] [--wait]",
     "Create a replication consistency group; its pairs are paused together.\n"
     "--az defaults to the first pair's priority station. With --wait, until available."},
    {"group", "list", cmd_group_list, O_NAME | O_STATUS | O_AZ | O_VOLUME,
     "[--name N] [--status S] [--az AZ] [--volume V]", "List replication consistency groups."},
    {"group", "show", cmd_group_show, 0, "GROUP_ID", "Show one group and its member pairs."},
    {"group", "update", cmd_group_update, O_NAME | O_DESC | O_ADD | O_REMOVE | O_WAIT,
     "GROUP_ID [--name N] [--description D] [--add PAIR_ID...] [--remove PAIR_ID...] [--wait]",
     "Rename a group or change its pairs (the group must be paused).\n"
     "With --wait, until it is available again."},
    {"group", "delete", cmd_group_delete, O_WAIT, "GROUP_ID [--wait]",
     "Delete a group without pairs. With --wait, until it is gone."},
    {"group", "pause", cmd_group_pause, O_WAIT, "GROUP_ID",
     "Pause replication of every pair at one instant (DR holds a consistent image).\n"
     "Done when the command returns; --wait is accepted and has nothing to wait for."},
    {"group", "sync", cmd_group_sync, O_WAIT | O_CONFIRM, "GROUP_ID [--wait] [--yes]",
     "Resume replication: copy what changed while paused. With --wait, show progress\n"
     "until replication_status is active. Shows the estimate first; asks when it is above\n"
     "--confirm-above (refuses without --yes when stdin is not a terminal)."},
    {"group", "reverse", cmd_group_reverse, O_WAIT | O_CONFIRM, "GROUP_ID [--yes]",
     "Planned switchover: the DR side becomes production, no acknowledged write lost.\n"
     "Done when the command returns: it waits while the group is reversing (the flushes\n"
     "and the role switch run behind that status); exit 8 when the roles did not move.\n"
     "Shows the estimate first, as sync does."},
    {"group", "estimate", cmd_group_estimate, 0, "GROUP_ID sync|reprotect|reverse",
     "Dry run: what the action would copy now (bytes, chunks, per pair) and how long\n"
     "at the recently measured copy rate, and whether the group's state allows it."},
    {"group", "throttle", cmd_group_throttle, O_THROTTLE,
     "GROUP_ID [--max-mib MIB] [--min-mib MIB] [--adaptive]",
     "Set the group's resync throttle (the whole setting; no option: unthrottled). Applies\n"
     "to a resync already running. Prints resync_throttle: the setting, the limit in force\n"
     "and the current copy rate."},
    {"node", "list", cmd_node_list, 0, "",
     "List the cluster's nodes: AZs served, internal URL, lease remaining (negative when\n"
     "lapsed), start time. Needs an operator token."},
    {"group", "failover", cmd_group_failover, O_WAIT, "GROUP_ID",
     "Make the DR disks production (old production fenced read-only). Done when the\n"
     "command returns: it waits while the group is failovering; status failovered, or\n"
     "exit 8 when the roles did not move."},
    {"group", "reprotect", cmd_group_reprotect, O_WAIT | O_CONFIRM, "GROUP_ID [--wait] [--yes]",
     "After a failover: resync the old production as the new DR side. With --wait, show\n"
     "progress until the group is available and replication is active. Shows the estimate\n"
     "first, as sync does."},
    {"group", "verify", cmd_group_verify, O_REPAIR | O_MAX_RATE | O_WAIT,
     "GROUP_ID [--repair] [--max-rate MIB] [--wait]",
     "Online verify (evsrep extension): compare every clean chunk of every pair on both\n"
     "sides while replication runs; report mismatching chunks. With --repair they are\n"
     "marked dirty (copied at once when active, by the next sync when paused). With\n"
     "--wait, show progress until it is done; exit 8 when chunks differed."},
    {"group", "extend", cmd_group_extend, O_SIZE | O_PAIR | O_WAIT,
     "GROUP_ID --size GIB [--pair PAIR_ID...]",
     "Grow both disks of the listed pairs (default: every member pair) to --size GiB.\n"
     "Done when the command returns."},
    {"group", "clone", cmd_group_clone, O_PREFIX | O_WAIT, "GROUP_ID [--prefix NAME] [--wait]",
     "DR drill (evsrep extension): new writable volumes in the DR zone, one per member,\n"
     "holding the group's consistent DR instant (taken now while active, without stopping\n"
     "replication; the frozen image while paused). With --wait, show the copy's progress\n"
     "until every clone is available."},
};

static const char *const nouns[][2] = {
    {"volume", "volumes (Cinder v2 subset)"},
    {"pair", "replication pairs (os-vendor-replications)"},
    {"group", "replication consistency groups"},
    {"node", "the cluster's nodes (evsrep extension, operator token)"},
};

static const char exit_help[] =
    "Exit codes:\n"
    "  0  done\n"
    "  1  usage error, or the API rejected the request (400, 405, 413...)\n"
    "  2  not found (404)\n"
    "  3  conflict with the current state (409)\n"
    "  4  authentication or authorisation failed (401, 403)\n"
    "  5  daemon unreachable, or it answered 5xx or garbage\n"
    "  6  timed out while waiting (--timeout)\n"
    "  7  interrupted while waiting (SIGINT/Ctrl-C); the action goes on\n"
    "  8  while waiting, the resource entered an error state\n";

static const char global_help[] =
    "Global options (anywhere on the line):\n"
    "  --url URL          API URL, http://host:port (then /v2/PROJECT is added) or\n"
    "                     http://host:port/v2/PROJECT           [env EVS_URL]\n"
    "  --token TOKEN      X-Auth-Token                          [env EVS_TOKEN]\n"
    "  --project PROJECT  project id                            [env EVS_PROJECT]\n"
    "  -o, --output FMT   table (default) or json (the API's JSON)\n"
    "  -h, --help         help for this level\n"
    "      --version      print the version\n";

static void help_top(FILE *f)
{
        fprintf(f,
                "Usage: evsrep [options] NOUN VERB [ID] [options]\n"
                "       evsrep help [NOUN [VERB]]\n\n"
                "Operate evsrep block-storage replication: volumes, pairs, consistency groups.\n\n"
                "Nouns:\n");
        for (size_t i = 0; i < ARRAY_SIZE(nouns); i++)
                fprintf(f, "  %-8s %s\n", nouns[i][0], nouns[i][1]);
        fprintf(f,
                "\n%s\n%s\nRun 'evsrep help NOUN' for its verbs, 'evsrep help NOUN VERB' for one "
                "verb\n(or add --help anywhere).\n",
                global_help, exit_help);
}

static void help_noun(FILE *f, const char *noun)
{
        fprintf(f, "Usage: evsrep %s VERB [ID] [options]\n\nVerbs:\n", noun);
        for (size_t i = 0; i < ARRAY_SIZE(verb_table); i++) {
                const struct verb *v = &verb_table[i];
                const char *nl;

                if (strcmp(v->noun, noun) != 0)
                        continue;
                nl = strchr(v->help, '\n');
                fprintf(f, "  %-10s %.*s\n", v->verb,
                        nl ? (int)(nl - v->help) : (int)strlen(v->help), v->help);
        }
        fprintf(f, "\nRun 'evsrep help %s VERB' for details.\n\n%s\n%s", noun, global_help,
                exit_help);
}

static void help_verb(FILE *f, const struct verb *v)
{
        fprintf(f, "Usage: evsrep %s %s %s\n\n%s\n", v->noun, v->verb, v->args, v->help);
        if (v->opts) {
                fprintf(f, "\nOptions:\n");
                for (size_t i = 0; i < ARRAY_SIZE(opt_help); i++)
                        if (v->opts & opt_help[i].bit)
                                fprintf(f, "  %-24s %s\n", opt_help[i].flag, opt_help[i].help);
        }
        fprintf(f, "\n%s\n%s", global_help, exit_help);
}

static bool noun_known(const char *noun)
{
        for (size_t i = 0; i < ARRAY_SIZE(nouns); i++)
                if (strcmp(nouns[i][0], noun) == 0)
                        return true;
        return false;
}

/* Edit distance of two short words, case-insensitive, a swap of two
 * neighbours counting as one edit ("lsit"); words longer than 32 letters
 * count as far apart. */
static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b), d[33][33];

        if (la > 32 || lb > 32)
                return SIZE_MAX;
        for (size_t i = 0; i <= la; i++)
                d[i][0] = i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        int ca = tolower((unsigned char)a[i - 1]);
                        int cb = tolower((unsigned char)b[j - 1]);

                        d[i][j] =
                            MIN(d[i - 1][j - 1] + (ca != cb), MIN(d[i - 1][j], d[i][j - 1]) + 1);
                        if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                            cb == tolower((unsigned char)a[i - 2]))
                                d[i][j] = MIN(d[i][j], d[i - 2][j - 2] + 1);
                }
        return d[la][lb];
}

/* The closest of n candidates to word, or NULL when none is close: the
 * same word in the singular or plural ("volumes"), a start of at least
 * three letters ("vol"), or at most two edits (one for words of up to
 * three letters). */
static const char *did_you_mean(const char *word, const char *const *cands, size_t n)
{
        size_t best = SIZE_MAX, len = strlen(word), limit = len <= 3 ? 1 : 2;
        const char *pick = NULL;

        for (size_t i = 0; i < n; i++) {
                size_t lc = strlen(cands[i]), d;

                if ((len == lc + 1 && strncasecmp(word, cands[i], lc) == 0 &&
                     tolower((unsigned char)word[lc]) == 's') ||
                    (len >= 3 && len < lc && strncasecmp(word, cands[i], len) == 0))
                        return cands[i];
                d = edit_distance(word, cands[i]);
                if (d < best) {
                        best = d;
                        pick = cands[i];
                }
        }
        return best <= limit ? pick : NULL;
}

static const char *noun_guess(const char *word)
{
        const char *cands[ARRAY_SIZE(nouns)];

        for (size_t i = 0; i < ARRAY_SIZE(nouns); i++)
                cands[i] = nouns[i][0];
        return did_you_mean(word, cands, ARRAY_SIZE(nouns));
}

static const char *verb_guess(const char *noun, const char *word)
{
        const char *cands[ARRAY_SIZE(verb_table)];
        size_t n = 0;

        for (size_t i = 0; i < ARRAY_SIZE(verb_table); i++)
                if (strcmp(verb_table[i].noun, noun) == 0)
                        cands[n++] = verb_table[i].verb;
        return did_you_mean(word, cands, n);
}

/* "create, list, show, ..." : the verbs of a noun on one line. */
static void verbs_line(FILE *f, const char *noun)
{
        bool first = true;

        for (size_t i = 0; i < ARRAY_SIZE(verb_table); i++)
                if (strcmp(verb_table[i].noun, noun) == 0) {
                        fprintf(f, "%s%s", first ? "" : ", ", verb_table[i].verb);
                        first = false;
                }
}

/* A short usage error for a word that is no noun: the error first, then a
 * guess, then where help is (never the whole help text). */
static int unknown_noun(const char *word, const char *next)
{
        const char *guess = noun_guess(word);

        /* "evsrep list volumes": a verb where the noun belongs. */
        if (!guess && next && noun_guess(next) && verb_guess(noun_guess(next), word))
                fprintf(stderr,
                        "evsrep: unknown noun '%s'; did you mean 'evsrep %s %s'? (the noun comes "
                        "first)\n",
                        word, noun_guess(next), verb_guess(noun_guess(next), word));
        else if (guess)
                fprintf(stderr, "evsrep: unknown noun '%s'; did you mean '%s'?\n", word, guess);
        else
                fprintf(stderr, "evsrep: unknown noun '%s'\n", word);
        fprintf(stderr, "Nouns: ");
        for (size_t i = 0; i < ARRAY_SIZE(nouns); i++)
                fprintf(stderr, "%s%s", i ? ", " : "", nouns[i][0]);
        fprintf(stderr, ". Run 'evsrep help' for usage, 'evsrep help NOUN' for its verbs.\n");
        return -EINVAL;
}

static int unknown_verb(const char *noun, const char *word)
{
        const char *guess = verb_guess(noun, word);

        if (guess)
                fprintf(stderr, "evsrep: unknown verb '%s %s'; did you mean '%s %s'?\n", noun, word,
                        noun, guess);
        else
                fprintf(stderr, "evsrep: unknown verb '%s %s'\n", noun, word);
        fprintf(stderr, "Verbs of %s: ", noun);
        verbs_line(stderr, noun);
        fprintf(stderr, ". Run 'evsrep help %s' for details.\n", noun);
        return -EINVAL;
}

static const struct verb *verb_find(const char *noun, const char *verb)
{
        for (size_t i = 0; i < ARRAY_SIZE(verb_table); i++)
                if (strcmp(verb_table[i].noun, noun) == 0 && strcmp(verb_table[i].verb, verb) == 0)
                        return &verb_table[i];
        return NULL;
}

static int parse_seconds(const char *s, const char *flag, double *out)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || !(v >= 0) || v > 1e7)
                return cli_usage_error("%s wants a number of seconds, not '%s'", flag, s);
        *out = v;
        return 0;
}

static int parse_gib(const char *s, long long *out)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 1 || v > INT_MAX)
                return cli_usage_error("--size wants a whole number of GiB, not '%s'", s);
        *out = v;
        return 0;
}

static int push_id(const char **list, size_t *n, const char *flag, const char *id)
{
        if (*n >= CLI_MAX_IDS)
                return cli_usage_error("too many %s options (at most %d)", flag, CLI_MAX_IDS);
        list[(*n)++] = id;
        return 0;
}

/* Parse every option; *used collects the verb option bits seen. */
static int parse_opts(struct cli *c, int argc, char **argv, unsigned *used)
{
        int opt, rc = 0;

        opterr = 0;
        while (rc == 0 && (opt = getopt_long(argc, argv, ":ho:", long_opts, NULL)) != -1) {
                switch (opt) {
                case 'h':
                        c->help = true;
                        break;
                case 'o':
                        if (strcmp(optarg, "json") == 0)
                                c->json = true;
                        else if (strcmp(optarg, "table") == 0)
                                c->json = false;
                        else
                                rc = cli_usage_error("-o wants table or json, not '%s'", optarg);
                        break;
                case OPT_URL:
                        c->url = optarg;
                        break;
                case OPT_TOKEN:
                        c->token = optarg;
                        break;
                case OPT_PROJECT:
                        c->project = optarg;
                        break;
                case OPT_VERSION:
                        printf("evsrep %s\n", EVSREP_VERSION);
                        exit(CLI_EXIT_OK);
                case OPT_WAIT:
                        c->wait = true;
                        *used |= O_WAIT;
                        break;
                case OPT_TIMEOUT:
                        rc = parse_seconds(optarg, "--timeout", &c->timeout_sec);
                        *used |= O_WAIT;
                        break;
                case OPT_INTERVAL:
                        rc = parse_seconds(optarg, "--interval", &c->interval_sec);
                        *used |= O_WAIT;
                        break;
                case OPT_NAME:
                        c->name = optarg;
                        *used |= O_NAME;
                        break;
                case OPT_DESC:
                        c->description = optarg;
                        *used |= O_DESC;
                        break;
                case OPT_SIZE:
                        rc = parse_gib(optarg, &c->size_gib);
                        c->has_size = true;
                        *used |= O_SIZE;
                        break;
                case OPT_AZ:
                        c->az = optarg;
                        *used |= O_AZ;
                        break;
                case OPT_TYPE:
                        c->volume_type = optarg;
                        *used |= O_TYPE;
                        break;
                case OPT_MULTI:
                        c->multiattach = true;
                        *used |= O_MULTI;
                        break;
                case OPT_STATUS:
                        c->status = optarg;
                        *used |= O_STATUS;
                        break;
                case OPT_GROUP:
                        c->group = optarg;
                        *used |= O_GROUP;
                        break;
                case OPT_VOLUME:
                        c->volume = optarg;
                        *used |= O_VOLUME;
                        break;
                case OPT_PROD:
                        c->production = optarg;
                        *used |= O_PROD;
                        break;
                case OPT_DR:
                        c->dr = optarg;
                        *used |= O_DR;
                        break;
                case OPT_PAIR:
                        rc = push_id(c->pairs, &c->n_pairs, "--pair", optarg);
                        *used |= O_PAIR;
                        break;
                case OPT_ADD:
                        rc = push_id(c->add, &c->n_add, "--add", optarg);
                        *used |= O_ADD;
                        break;
                case OPT_REMOVE:
                        rc = push_id(c->remove, &c->n_remove, "--remove", optarg);
                        *used |= O_REMOVE;
                        break;
                case OPT_YES:
                        c->yes = true;
                        *used |= O_CONFIRM;
                        break;
                case OPT_CONFIRM_ABOVE:
                        rc = cli_parse_size(optarg, "--confirm-above", &c->confirm_above);
                        c->has_confirm_above = true;
                        *used |= O_CONFIRM;
                        break;
                case OPT_MAX_MIB:
                        rc = cli_parse_mib(optarg, "--max-mib", &c->max_mib);
                        *used |= O_THROTTLE;
                        break;
                case OPT_MIN_MIB:
                        rc = cli_parse_mib(optarg, "--min-mib", &c->min_mib);
                        *used |= O_THROTTLE;
                        break;
                case OPT_ADAPTIVE:
                        c->adaptive = true;
                        *used |= O_THROTTLE;
                        break;
                case OPT_REPAIR:
                        c->repair = true;
                        *used |= O_REPAIR;
                        break;
                case OPT_MAX_RATE: {
                        char *end;

                        errno = 0;
                        c->max_rate_mib = strtoll(optarg, &end, 10);
                        if (errno || end == optarg || *end || c->max_rate_mib < 0 ||
                            c->max_rate_mib > 100000)
                                rc = cli_usage_error("--max-rate wants MiB/s from 0 to 100000, "
                                                     "not '%s'",
                                                     optarg);
                        *used |= O_MAX_RATE;
                        break;
                }
                case OPT_PREFIX:
                        c->prefix = optarg;
                        *used |= O_PREFIX;
                        break;
                case ':':
                        rc = cli_usage_error("option %s needs a value", argv[optind - 1]);
                        break;
                default:
                        rc = cli_usage_error("unknown option '%s'", argv[optind - 1]);
                        break;
                }
        }
        return rc;
}

/* The one place an errno becomes an exit code (table in cli.h). */
static int cli_exit_code(int rc)
{
        switch (rc) {
        case 0:
                return CLI_EXIT_OK;
        case -ENOENT:
                return CLI_EXIT_NOT_FOUND;
        case -EBUSY:
                return CLI_EXIT_CONFLICT;
        case -EACCES:
                return CLI_EXIT_AUTH;
        case -EHOSTUNREACH:
        case -EIO:
                return CLI_EXIT_UNREACHABLE;
        case -ETIMEDOUT:
                return CLI_EXIT_TIMEOUT;
        case -EINTR:
                return CLI_EXIT_INTERRUPTED;
        case -ECANCELED:
                return CLI_EXIT_FAILED;
        case -ENOMEM:
                fprintf(stderr, "evsrep: out of memory\n");
                return CLI_EXIT_UNREACHABLE;
        default:
                return CLI_EXIT_USAGE;
        }
}

static const char *env_or(const char *flag, const char *name)
{
        const char *v;

        if (flag)
                return flag;
        v = getenv(name);
        return v && *v ? v : NULL;
}

static int run(struct cli *c, int argc, char **argv)
{
        unsigned used = 0;
        const struct verb *v;
        int rc = parse_opts(c, argc, argv, &used);
        char **pos = argv + optind;
        int n_pos = argc - optind;

        if (rc < 0)
                return rc;
        /* "evsrep help [NOUN [VERB]]" is "evsrep [NOUN [VERB]] --help". */
        if (n_pos > 0 && strcmp(pos[0], "help") == 0) {
                c->help = true;
                pos++;
                n_pos--;
        } else if (n_pos == 2 && strcmp(pos[1], "help") == 0) {
                c->help = true;
                n_pos = 1;
        }
        if (n_pos == 0) {
                help_top(c->help ? stdout : stderr);
                return c->help ? 0 : -EINVAL;
        }
        if (!noun_known(pos[0]))
                return unknown_noun(pos[0], n_pos > 1 ? pos[1] : NULL);
        if (n_pos == 1) {
                if (c->help) {
                        help_noun(stdout, pos[0]);
                        return 0;
                }
                fprintf(stderr, "evsrep: '%s' needs a verb: ", pos[0]);
                verbs_line(stderr, pos[0]);
                fprintf(stderr, "\nRun 'evsrep help %s' for details.\n", pos[0]);
                return -EINVAL;
        }
        v = verb_find(pos[0], pos[1]);
        if (!v)
                return unknown_verb(pos[0], pos[1]);
        if (c->help) {
                help_verb(stdout, v);
                return 0;
        }
        if (used & ~v->opts) {
                for (size_t i = 0; i < ARRAY_SIZE(opt_help); i++)
                        if (used & ~v->opts & opt_help[i].bit)
                                return cli_usage_error("%s %s does not take %.*s", v->noun, v->verb,
                                                       (int)strcspn(opt_help[i].flag, " "),
                                                       opt_help[i].flag);
                return cli_usage_error("%s %s: option not accepted", v->noun, v->verb);
        }
        c->args = pos + 2;
        c->n_args = n_pos - 2;
        c->url = env_or(c->url, "EVS_URL");
        c->token = env_or(c->token, "EVS_TOKEN");
        c->project = env_or(c->project, "EVS_PROJECT");
        rc = cli_http_init(c);
        if (rc < 0)
                return rc;
        return v->fn(c);
}

int main(int argc, char **argv)
{
        struct cli c = {.timeout_sec = 600, .interval_sec = 0.2};
        int rc;

        rc = run(&c, argc, argv);
        cli_http_cleanup(&c);
        if (fflush(stdout) != 0 && rc == 0)
                rc = -EIO;
        return cli_exit_code(rc);
}
