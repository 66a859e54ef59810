/* Declarative validation of JSON request objects (over jansson). A handler
 * lists its fields; jcheck_object checks types, ranges, string limits and
 * UTF-8 and writes a 400 message naming the offending field. null counts as
 * absent for optional fields (the cinder client sends "name": null). */
#ifndef EVSREP_JSON_JCHECK_H
#define EVSREP_JSON_JCHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jtype { JT_STRING, JT_INT, JT_BOOL, JT_OBJECT, JT_ARRAY, JT_NULL };

struct jfield {
        const char *name;
        enum jtype type;
        bool required;
        int64_t min, max; /* JT_INT: value range; JT_STRING: max bytes (0 = 255) */
};

/* Parse body (len bytes) as a JSON object with exactly one top-level key
 * named top; returns that member (borrowed from *root, which the caller
 * decrefs) or NULL with msg filled. */
json_t *jcheck_parse_top(const char *body, size_t len, const char *top, json_t **root, char *msg,
                         size_t msglen);
/* 0 when obj satisfies fields, else -EINVAL with msg "<prefix>.<field> ...". */
int jcheck_object(const json_t *obj, const char *prefix, const struct jfield *fields, size_t n,
                  char *msg, size_t msglen);
/* Borrowed string of an optional member, or def when absent/null. */
const char *jcheck_str(const json_t *obj, const char *key, const char *def);

#endif
