/* Small helpers shared by every module: full-length I/O loops, checked
 * arithmetic, time, UUIDs and scope-based cleanup.
 *
 * Convention (libuv style): functions return 0 or a negative errno. */
#ifndef EVSREP_COMMON_UTIL_H
#define EVSREP_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))
#define UNUSED        __attribute__((unused))

/* Checked arithmetic: true when the result overflowed. */
#define ck_add(a, b, res) __builtin_add_overflow((a), (b), (res))
#define ck_mul(a, b, res) __builtin_mul_overflow((a), (b), (res))

/* Scope-based cleanup, as in nbdkit/systemd: early returns do not leak. */
static inline void util_freep(void *p)
{
        free(*(void **)p);
}
static inline void util_closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_free_  __attribute__((cleanup(util_freep)))
#define _cleanup_close_ __attribute__((cleanup(util_closep)))

/* Read/write exactly len bytes at off, retrying on EINTR and short I/O.
 * Return 0, or -errno (-EIO on an unexpected end of file for reads). */
int util_pread_full(int fd, void *buf, size_t len, uint64_t off);
int util_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* Same on a stream socket / pipe. read returns -ECONNRESET on EOF. */
int util_read_full(int fd, void *buf, size_t len);
int util_write_full(int fd, const void *buf, size_t len);

/* Wall clock in microseconds since the epoch, and a monotonic clock. */
int64_t util_now_usec(void);
int64_t util_mono_usec(void);

/* "YYYY-MM-DDTHH:MM:SS.ffffff" (UTC, no zone). buf >= UTIL_TIME_LEN bytes. */
#define UTIL_TIME_LEN 64
void util_time_format(int64_t usec, char *buf);
/* Accepts "YYYY-MM-DDTHH:MM:SS[.ffffff][Z]". Returns 0 or -EINVAL. */
int util_time_parse(const char *s, int64_t *usec_out);

/* Lowercase UUIDv4 from getrandom(). buf >= UTIL_UUID_LEN (37) bytes. */
#define UTIL_UUID_LEN 37
void util_uuid_v4(char *buf);
/* True when s is a canonical lowercase UUID (any version, 36 chars). */
bool util_uuid_valid(const char *s);
/* Fill buf with len random bytes (getrandom). */
int util_random(void *buf, size_t len);
/* n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void util_hex(const void *bytes, size_t n, char *out);

/* Constant-time comparison of two byte strings (lengths may differ). */
bool util_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* True when s (len bytes) is valid UTF-8 without NUL bytes. */
bool util_utf8_valid(const char *s, size_t len);

/* mkdir -p with mode 0750. */
int util_mkdir_p(const char *path);

/* Parse "host:port" (host may be [v6]). Returns 0 or -EINVAL. */
int util_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* CRC-32C (Castagnoli) of len bytes, for on-disk block checks. */
uint32_t util_crc32c(const void *buf, size_t len);

#endif
