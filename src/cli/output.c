/* What the CLI prints: aligned tables and key/value listings for people, the
 * API's JSON for scripts (-o json), and resync progress (a bar rewritten in
 * place on a terminal, plain lines otherwise). */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CELL_MAX  512
#define OUT_BAR_WIDTH 24

void cli_out_value(const json_t *v, char *buf, size_t cap)
{
        size_t len = 0;

        if (cap == 0)
                return;
        buf[0] = '\0';
        if (!v) {
                snprintf(buf, cap, "-");
                return;
        }
        switch (json_typeof(v)) {
        case JSON_STRING:
                snprintf(buf, cap, "%s", json_string_value(v));
                break;
        case JSON_INTEGER:
                snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                break;
        case JSON_REAL:
                snprintf(buf, cap, "%g", json_real_value(v));
                break;
        case JSON_TRUE:
                snprintf(buf, cap, "true");
                break;
        case JSON_FALSE:
                snprintf(buf, cap, "false");
                break;
        case JSON_NULL:
                snprintf(buf, cap, "-");
                break;
        case JSON_ARRAY: {
                size_t i;
                json_t *e;

                json_array_foreach(v, i, e)
                {
                        char one[OUT_CELL_MAX];

                        cli_out_value(e, one, sizeof(one));
                        len += (size_t)snprintf(buf + MIN(len, cap - 1), cap - MIN(len, cap - 1),
                                                "%s%s", i ? "," : "", one);
                }
                if (i == 0)
                        snprintf(buf, cap, "-");
                break;
        }
        case JSON_OBJECT: {
                char *s = json_dumps(v, JSON_COMPACT);

                snprintf(buf, cap, "%s", s ? s : "{}");
                free(s);
                break;
        }
        }
        /* Cells are one line: a name with a newline must not break the table. */
        for (char *p = buf; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
}

int cli_out_table(const json_t *rows, const struct cli_column *cols, size_t n_cols)
{
        size_t n_rows = json_array_size(rows);
        size_t *width = calloc(n_cols, sizeof(*width));
        char cell[OUT_CELL_MAX];

        if (!width)
                return -ENOMEM;
        for (size_t k = 0; k < n_cols; k++)
                width[k] = strlen(cols[k].title);
        for (size_t i = 0; i < n_rows; i++)
                for (size_t k = 0; k < n_cols; k++) {
                        cli_out_value(json_object_get(json_array_get(rows, i), cols[k].field), cell,
                                      sizeof(cell));
                        width[k] = MAX(width[k], strlen(cell));
                }
        for (size_t k = 0; k < n_cols; k++)
                printf("%-*s%s", k + 1 < n_cols ? (int)width[k] : 0, cols[k].title,
                       k + 1 < n_cols ? "  " : "\n");
        for (size_t i = 0; i < n_rows; i++)
                for (size_t k = 0; k < n_cols; k++) {
                        cli_out_value(json_object_get(json_array_get(rows, i), cols[k].field), cell,
                                      sizeof(cell));
                        printf("%-*s%s", k + 1 < n_cols ? (int)width[k] : 0, cell,
                               k + 1 < n_cols ? "  " : "\n");
                }
        free(width);
        return 0;
}

static bool out_listed(const char *key, const char *const *order, size_t n_order)
{
        for (size_t i = 0; i < n_order; i++)
                if (strcmp(key, order[i]) == 0)
                        return true;
        return false;
}

int cli_out_object(const json_t *obj, const char *const *order, size_t n_order)
{
        char cell[OUT_CELL_MAX * 4];
        size_t width = 0;
        const char *key;
        json_t *v;

        json_object_foreach((json_t *)obj, key, v)
        {
                width = MAX(width, strlen(key));
        }
        for (size_t i = 0; i < n_order; i++) {
                v = json_object_get(obj, order[i]);
                if (!v)
                        continue;
                cli_out_value(v, cell, sizeof(cell));
                printf("%-*s  %s\n", (int)width, order[i], cell);
        }
        json_object_foreach((json_t *)obj, key, v)
        {
                if (out_listed(key, order, n_order))
                        continue;
                cli_out_value(v, cell, sizeof(cell));
                printf("%-*s  %s\n", (int)width, key, cell);
        }
        return 0;
}

int cli_out_json(const json_t *j)
{
        if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return -EIO;
        putchar('\n');
        return 0;
}

void cli_out_bytes(double bytes, char *buf, size_t cap)
{
        static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        size_t u = 0;

        while (bytes >= 1024.0 && u + 1 < ARRAY_SIZE(unit)) {
                bytes /= 1024.0;
                u++;
        }
        if (u == 0)
                snprintf(buf, cap, "%.0f B", bytes);
        else
                snprintf(buf, cap, "%.1f %s", bytes, unit[u]);
}

void cli_out_duration(double sec, char *buf, size_t cap)
{
        long long s;

        if (sec < 0) {
                snprintf(buf, cap, "-");
                return;
        }
        s = (long long)(sec + 0.5);
        if (s < 60)
                snprintf(buf, cap, "%llds", s);
        else if (s < 3600)
                snprintf(buf, cap, "%lldm%02llds", s / 60, s % 60);
        else
                snprintf(buf, cap, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
}

static void out_progress_parts(const struct cli_progress *p, char *rate, size_t rate_cap, char *eta,
                               size_t eta_cap)
{
        if (p->rate_bps > 0) {
                cli_out_bytes(p->rate_bps, rate, rate_cap);
                strncat(rate, "/s", rate_cap - strlen(rate) - 1);
        } else {
                snprintf(rate, rate_cap, "- B/s");
        }
        cli_out_duration(p->eta_sec, eta, eta_cap);
}

void cli_out_progress_tty(FILE *f, const struct cli_progress *p)
{
        char rate[32], eta[32], bytes[32], bar[OUT_BAR_WIDTH + 1];
        int filled = (int)(p->percent * OUT_BAR_WIDTH / 100.0 + 0.5);

        filled = MAX(0, MIN(OUT_BAR_WIDTH, filled));
        memset(bar, '#', (size_t)filled);
        memset(bar + filled, '.', (size_t)(OUT_BAR_WIDTH - filled));
        bar[OUT_BAR_WIDTH] = '\0';
        out_progress_parts(p, rate, sizeof(rate), eta, sizeof(eta));
        cli_out_bytes((double)p->bytes, bytes, sizeof(bytes));
        /* \r + erase to end of line: one line, rewritten in place. */
        fprintf(f, "\r\033[K%-8s [%s] %3.0f%%  %s  %s  eta %s", p->state, bar, p->percent, bytes,
                rate, eta);
        fflush(f);
}

void cli_out_progress_line(FILE *f, const struct cli_progress *p)
{
        char rate[32], eta[32];

        out_progress_parts(p, rate, sizeof(rate), eta, sizeof(eta));
        fprintf(f, "%s %.0f%% %llu bytes %s eta %s\n", p->state, p->percent,
                (unsigned long long)p->bytes, rate, eta);
        fflush(f);
}
