/* Unit tests of volume_fs_size_probe: the file-system size limit the
 * capacity check of service/quotas.c relies on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "volume/volume.h"

#define GIB     (1024ULL * 1024 * 1024)
#define EXT4_FS 0xEF53u /* ext2/3/4 share the magic */
#define TIB(n)  ((uint64_t)(n)*1024 * GIB)

static int count_entries(const char *dir)
{
        char cmd[256];
        FILE *p;
        int n = -1;

        snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
        p = popen(cmd, "r");
        if (p && fscanf(p, "%d", &n) != 1)
                n = -1;
        if (p)
                pclose(p);
        return n;
}

static void test_probe(void **state)
{
        char dir[] = "/tmp/evsrep-probe-XXXXXX";
        struct statfs fs;

        (void)state;
        assert_non_null(mkdtemp(dir));
        assert_int_equal(volume_fs_size_probe(dir, GIB), 0);
        assert_int_equal(volume_fs_size_probe(dir, 0), 0);
        /* Beyond off_t: never a file, on any file system. */
        assert_int_equal(volume_fs_size_probe(dir, UINT64_MAX), -EFBIG);
        assert_int_equal(statfs(dir, &fs), 0);
        if ((unsigned)fs.f_type == EXT4_FS) {
                /* ext4 with 4 KiB blocks: files stop just below 16 TiB. */
                assert_int_equal(volume_fs_size_probe(dir, TIB(32)), -EFBIG);
                assert_int_equal(volume_fs_size_probe(dir, TIB(16)), -EFBIG);
                assert_int_equal(volume_fs_size_probe(dir, TIB(15)), 0);
        } else {
                printf("# %s is not ext4 (0x%lx): the 32 TiB case is not checked here\n", dir,
                       (unsigned long)fs.f_type);
        }
        /* The probe leaves nothing behind. */
        assert_int_equal(count_entries(dir), 0);
        assert_int_equal(volume_fs_size_probe("/nonexistent-evsrep-dir", GIB), -ENOENT);
        assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_probe),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
