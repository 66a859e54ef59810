/* Helpers every verb uses: usage errors, the ID argument, GET of one object,
 * and how a created or changed object is printed. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cli_usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("evsrep: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see --help)\n", stderr);
        return -EINVAL;
}

int cli_arg_id(struct cli *c, const char **id)
{
        if (c->n_args < 1)
                return cli_usage_error("missing the ID argument");
        if (c->n_args > 1)
                return cli_usage_error("unexpected argument '%s'", c->args[1]);
        /* IDs are UUIDs: anything with a '/', '?' or '#' would change the URL. */
        if (!*c->args[0] || strpbrk(c->args[0], "/?#% \t") != NULL)
                return cli_usage_error("malformed ID '%s'", c->args[0]);
        *id = c->args[0];
        return 0;
}

int cli_get_object(struct cli *c, const char *path, const char *key, json_t **out)
{
        json_t *body = NULL, *obj;
        int rc;

        *out = NULL;
        rc = cli_http_call(c, "GET", path, NULL, &body, NULL, 0);
        if (rc < 0)
                return rc;
        obj = json_object_get(body, key);
        if (!json_is_object(obj)) {
                fprintf(stderr, "evsrep: GET %s: answer has no \"%s\" object\n", path, key);
                json_decref(body);
                return -EIO;
        }
        *out = json_incref(obj);
        json_decref(body);
        return 0;
}

const char *cli_str(const json_t *obj, const char *field)
{
        const char *s = json_string_value(json_object_get(obj, field));

        return s ? s : "";
}

int cli_no_args(struct cli *c)
{
        if (c->n_args > 0)
                return cli_usage_error("unexpected argument '%s'", c->args[0]);
        return 0;
}

int cli_show(struct cli *c, const char *key, json_t *obj, const char *const *order, size_t n_order)
{
        json_t *wrap;
        int rc;

        if (!c->json)
                return cli_out_object(obj, order, n_order);
        /* -o json prints what the API answers for a GET of the object. */
        wrap = json_pack("{s:O}", key, obj);
        if (!wrap)
                return -ENOMEM;
        rc = cli_out_json(wrap);
        json_decref(wrap);
        return rc;
}

int cli_show_list(struct cli *c, const char *key, json_t *rows, const struct cli_column *cols,
                  size_t n_cols)
{
        json_t *wrap;
        int rc;

        if (!c->json)
                return cli_out_table(rows, cols, n_cols);
        wrap = json_pack("{s:O}", key, rows);
        if (!wrap)
                return -ENOMEM;
        rc = cli_out_json(wrap);
        json_decref(wrap);
        return rc;
}

int cli_action_post(struct cli *c, const char *path, json_t *body, json_t **out)
{
        int rc;

        if (!body)
                return -ENOMEM;
        rc = cli_http_call(c, "POST", path, body, out, NULL, 0);
        json_decref(body);
        return rc;
}
