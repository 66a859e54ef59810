#include "json/jcheck.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(enum jtype t)
{
        switch (t) {
        case JT_STRING:
                return "a string";
        case JT_INT:
                return "an integer";
        case JT_BOOL:
                return "a boolean";
        case JT_OBJECT:
                return "an object";
        case JT_ARRAY:
                return "an array";
        case JT_NULL:
                return "null";
        }
        return "?";
}

json_t *jcheck_parse_top(const char *body, size_t len, const char *top, json_t **root, char *msg,
                         size_t msglen)
{
        json_error_t e;
        json_t *j, *member;

        *root = NULL;
        if (len == 0) {
                snprintf(msg, msglen, "the request needs a JSON body with the key '%s'", top);
                return NULL;
        }
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!j) {
                snprintf(msg, msglen, "the body is not valid JSON (line %d, column %d: %s)", e.line,
                         e.column, e.text);
                return NULL;
        }
        if (!json_is_object(j) || json_object_size(j) != 1 || !(member = json_object_get(j, top))) {
                snprintf(msg, msglen, "the body must be an object with the single key '%s'", top);
                json_decref(j);
                return NULL;
        }
        *root = j;
        return member;
}

int jcheck_object(const json_t *obj, const char *prefix, const struct jfield *fields, size_t n,
                  char *msg, size_t msglen)
{
        if (!json_is_object(obj)) {
                snprintf(msg, msglen, "'%s' must be an object", prefix);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                const struct jfield *f = &fields[i];
                json_t *v = json_object_get(obj, f->name);
                bool ok;

                if (!v || (json_is_null(v) && f->type != JT_NULL)) {
                        if (f->required) {
                                snprintf(msg, msglen, "%s.%s is required", prefix, f->name);
                                return -EINVAL;
                        }
                        continue;
                }
                switch (f->type) {
                case JT_STRING:
                        ok = json_is_string(v);
                        break;
                case JT_INT:
                        ok = json_is_integer(v);
                        break;
                case JT_BOOL:
                        ok = json_is_boolean(v);
                        break;
                case JT_OBJECT:
                        ok = json_is_object(v);
                        break;
                case JT_ARRAY:
                        ok = json_is_array(v);
                        break;
                case JT_NULL:
                        ok = json_is_null(v);
                        break;
                default:
                        ok = false;
                }
                if (!ok) {
                        snprintf(msg, msglen, "%s.%s must be %s", prefix, f->name,
                                 type_name(f->type));
                        return -EINVAL;
                }
                if (f->type == JT_INT) {
                        json_int_t x = json_integer_value(v);
                        if (x < f->min || x > f->max) {
                                snprintf(msg, msglen,
                                         "%s.%s must be an integer between %lld and %lld", prefix,
                                         f->name, (long long)f->min, (long long)f->max);
                                return -EINVAL;
                        }
                }
                if (f->type == JT_STRING) {
                        size_t max = f->max ? (size_t)f->max : 255;
                        size_t len = json_string_length(v);
                        if (len > max) {
                                snprintf(msg, msglen, "%s.%s must be at most %zu bytes", prefix,
                                         f->name, max);
                                return -EINVAL;
                        }
                        if (!util_utf8_valid(json_string_value(v), len)) {
                                snprintf(msg, msglen, "%s.%s must be valid UTF-8 without NUL",
                                         prefix, f->name);
                                return -EINVAL;
                        }
                }
        }
        return 0;
}

const char *jcheck_str(const json_t *obj, const char *key, const char *def)
{
        json_t *v = json_object_get(obj, key);

        return json_is_string(v) ? json_string_value(v) : def;
}
