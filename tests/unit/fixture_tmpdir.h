/* Fixture shared by the unit test programs that need a scratch directory:
 * one fresh directory under /tmp per test (or per program), made with
 * mkdtemp, and removed with everything in it after. The removal walks the
 * tree itself (nftw, depth first, never following a symbolic link) instead
 * of listing the files a test is known to make, so a test that fails half
 * way, or a ".tmp" left by an interrupted rewrite, leaves nothing behind in
 * /tmp; no shell is involved. */
#ifndef EVSREP_TEST_FIXTURE_TMPDIR_H
#define EVSREP_TEST_FIXTURE_TMPDIR_H

#include <errno.h>
#include <ftw.h> /* nftw: the build defines _GNU_SOURCE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room for "/tmp/evsrep-<tag>-XXXXXX" with a tag of up to 40 characters. */
#define FIXTURE_TMPDIR_CAP 64

/* Make a fresh directory /tmp/evsrep-<tag>-XXXXXX into dir (cap bytes, at
 * least FIXTURE_TMPDIR_CAP); 0, or -1 (errno set) with dir[0] = '\0'. */
static inline int fixture_tmpdir_make(char *dir, size_t cap, const char *tag)
{
        static const char fmt[] = "/tmp/evsrep-%s-XXXXXX";

        if (!cap)
                return -1;
        dir[0] = '\0';
        if (strlen(tag) + sizeof(fmt) - 2 > cap) { /* "%s" out, the NUL in */
                errno = ENAMETOOLONG;
                return -1;
        }
        snprintf(dir, cap, fmt, tag);
        if (!mkdtemp(dir)) {
                dir[0] = '\0';
                return -1;
        }
        return 0;
}

static inline int fixture_tmpdir_remove_one(const char *path, const struct stat *st, int type,
                                            struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove dir and everything below it; a symbolic link is removed, never
 * followed. 0, or -1 when something could not be removed (or dir is ""). */
static inline int fixture_tmpdir_remove(const char *dir)
{
        if (!dir || !dir[0])
                return -1;
        return nftw(dir, fixture_tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
