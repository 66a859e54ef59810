/* Unit tests of volume_fs_size_probe: the file-system size limit the
 * capacity check of service/quotas.c relies on; and of the local punch,
 * which skips ranges that are holes already. */
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
#include <fcntl.h>

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

/* volume_local_zero with punch skips a range that is a hole already (one
 * SEEK_DATA instead of a fallocate): a range whose only data is its last
 * block, or its first, must still be punched. */
static void test_punch_skips_holes_only(void **state)
{
        char dir[] = "/tmp/evsrep-punch-XXXXXX", path[64];
        const uint64_t c = 65536;
        unsigned char b[4096], z[4096] = {0};
        struct volume *v = NULL;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/v", dir);
        assert_int_equal(volume_file_create(path, 16 * c), 0);
        assert_int_equal(volume_open("punch", "t", path, &v), 0);
        memset(b, 0x7e, sizeof(b));
        assert_int_equal(volume_local_write(v, b, sizeof(b), 2 * c - 4096, 0), 0); /* last */
        assert_int_equal(volume_local_write(v, b, sizeof(b), 4 * c, 0), 0);        /* first */
        assert_int_equal(volume_local_zero(v, c, c, true, 0), 0);
        assert_int_equal(volume_local_zero(v, 4 * c, c, true, VOL_F_FUA), 0);
        assert_int_equal(volume_local_zero(v, 8 * c, c, true, 0), 0); /* a hole */
        assert_int_equal(volume_local_read(v, b, sizeof(b), 2 * c - 4096), 0);
        assert_memory_equal(b, z, sizeof(b));
        assert_int_equal(volume_local_read(v, b, sizeof(b), 4 * c), 0);
        assert_memory_equal(b, z, sizeof(b));
        volume_put(v);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_probe),
            cmocka_unit_test(test_punch_skips_holes_only),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
