#include "auth/auth.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct auth_entry {
        char token[AUTH_TOKEN_MAX];
        char project[AUTH_PROJECT_MAX];
        bool is_operator; /* third field "operator": service-wide reads and admin actions */
};

struct auth {
        struct auth_entry *entries;
        size_t n;
};

static int create_file(const char *path, char *err, size_t errlen)
{
        unsigned char rnd[32 + 16];
        char tok[65], proj[33];
        int fd, rc;
        FILE *f;

        if ((rc = util_random(rnd, sizeof(rnd))) < 0)
                return rc;
        util_hex(rnd, 32, tok);
        util_hex(rnd + 32, 16, proj);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
                rc = -errno;
                if (fd >= 0)
                        close(fd);
                snprintf(err, errlen, "cannot create tokens file %s: %s", path, strerror(-rc));
                return rc;
        }
        fprintf(f, "# evsrep API tokens: one \"token project_id\" per line\n%s %s\n", tok, proj);
        if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
                rc = -errno;
                fclose(f);
                return rc;
        }
        fclose(f);
        return 0;
}

static int load(const char *path, struct auth *a, char *err, size_t errlen)
{
        char line[512];
        int lineno = 0;
        FILE *f = fopen(path, "r");
        struct stat sb;

        if (!f)
                return -errno;
        /* Tokens are passwords: a file others can read leaks them, one others
         * can write lets them mint tokens. Checked on the open file, so the
         * answer is about what is read. */
        if (fstat(fileno(f), &sb) < 0) {
                int e = errno;
                fclose(f);
                return -e;
        }
        if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
                snprintf(err, errlen,
                         "tokens file %s is accessible by group or others (mode %04o); make it "
                         "private to the daemon's user: chmod 600 %s",
                         path, (unsigned)(sb.st_mode & 07777), path);
                fclose(f);
                return -EPERM;
        }
        while (fgets(line, sizeof(line), f)) {
                char tok[AUTH_TOKEN_MAX], proj[AUTH_PROJECT_MAX], role[16], extra[2];
                struct auth_entry *ne;
                int k;

                lineno++;
                if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
                        continue;
                k = sscanf(line, "%129s %64s %15s %1s", tok, proj, role, extra);
                if (k < 2 || k > 3 || (k == 3 && strcmp(role, "operator") != 0)) {
                        snprintf(err, errlen,
                                 "%s line %d: expected \"token project_id\" or \"token "
                                 "project_id operator\"",
                                 path, lineno);
                        fclose(f);
                        return -EINVAL;
                }
                ne = realloc(a->entries, (a->n + 1) * sizeof(*ne));
                if (!ne) {
                        fclose(f);
                        return -ENOMEM;
                }
                a->entries = ne;
                snprintf(ne[a->n].token, sizeof(ne[a->n].token), "%s", tok);
                snprintf(ne[a->n].project, sizeof(ne[a->n].project), "%s", proj);
                ne[a->n].is_operator = k == 3;
                a->n++;
        }
        fclose(f);
        return 0;
}

int auth_open(const char *path, struct auth **out, char *token, size_t toklen, char *project,
              size_t projlen, bool *created, char *err, size_t errlen)
{
        struct auth *a = calloc(1, sizeof(*a));
        int rc;

        if (errlen)
                err[0] = '\0';
        if (!a)
                return -ENOMEM;
        *created = false;
        rc = load(path, a, err, errlen);
        if (rc == -ENOENT || (rc == 0 && a->n == 0)) {
                if ((rc = create_file(path, err, errlen)) == 0 &&
                    (rc = load(path, a, err, errlen)) == 0)
                        *created = true;
        }
        if (rc == 0 && a->n == 0)
                rc = -EINVAL;
        if (rc < 0) {
                if (!err[0])
                        snprintf(err, errlen, "cannot read tokens file %s: %s", path,
                                 strerror(-rc));
                auth_close(a);
                return rc;
        }
        snprintf(token, toklen, "%s", a->entries[0].token);
        snprintf(project, projlen, "%s", a->entries[0].project);
        *out = a;
        return 0;
}

void auth_close(struct auth *a)
{
        if (!a)
                return;
        free(a->entries);
        free(a);
}

const char *auth_lookup(const struct auth *a, const char *token)
{
        bool op;

        return auth_lookup_role(a, token, &op);
}

const char *auth_lookup_role(const struct auth *a, const char *token, bool *is_operator)
{
        const char *found = NULL;
        size_t tlen = strlen(token);

        /* Visit every entry whatever matches, so timing says nothing about
         * which token (or how much of one) was right. */
        for (size_t i = 0; i < a->n; i++) {
                const struct auth_entry *e = &a->entries[i];
                bool eq = util_ct_equal(e->token, strlen(e->token), token, tlen);
                if (eq && !found) {
                        found = e->project;
                        *is_operator = e->is_operator;
                }
        }
        if (!found)
                *is_operator = false;
        return found;
}
