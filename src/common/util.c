#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

int util_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
        char *p = buf;

        while (len > 0) {
                ssize_t n = pread(fd, p, len, (off_t)off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

int util_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, (off_t)off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

int util_read_full(int fd, void *buf, size_t len)
{
        char *p = buf;

        while (len > 0) {
                ssize_t n = read(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -ECONNRESET;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int util_write_full(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int64_t util_now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_mono_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_time_format(int64_t usec, char *buf)
{
        time_t sec = (time_t)(usec / 1000000);
        struct tm tm;

        gmtime_r(&sec, &tm);
        snprintf(buf, UTIL_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%06d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(usec % 1000000));
}

static int parse_digits(const char *s, int n, int *out)
{
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

int util_time_parse(const char *s, int64_t *usec_out)
{
        int y, mo, d, h, mi, se, frac = 0;
        struct tm tm;

        if (strlen(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
            s[16] != ':')
                return -EINVAL;
        if (parse_digits(s, 4, &y) || parse_digits(s + 5, 2, &mo) || parse_digits(s + 8, 2, &d) ||
            parse_digits(s + 11, 2, &h) || parse_digits(s + 14, 2, &mi) ||
            parse_digits(s + 17, 2, &se))
                return -EINVAL;
        s += 19;
        if (*s == '.') {
                int n = 0;
                s++;
                while (s[n] >= '0' && s[n] <= '9')
                        n++;
                if (n < 1 || n > 6)
                        return -EINVAL;
                if (parse_digits(s, n, &frac))
                        return -EINVAL;
                for (int i = n; i < 6; i++)
                        frac *= 10;
                s += n;
        }
        if (*s == 'Z')
                s++;
        if (*s != '\0')
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
                return -EINVAL;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se;
        *usec_out = (int64_t)timegm(&tm) * 1000000 + frac;
        return 0;
}

void util_hex(const void *bytes, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        const unsigned char *b = bytes;

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[b[i] >> 4];
                out[2 * i + 1] = digits[b[i] & 15];
        }
        out[2 * n] = '\0';
}

int util_random(void *buf, size_t len)
{
        char *p = buf;

        while (len > 0) {
                ssize_t n = getrandom(p, len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

void util_uuid_v4(char *buf)
{
        unsigned char b[16];

        if (util_random(b, sizeof(b)) < 0)
                abort(); /* getrandom cannot fail after boot; never hand out a weak id */
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        snprintf(buf, UTIL_UUID_LEN,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                 b[15]);
}

bool util_uuid_valid(const char *s)
{
        for (int i = 0; i < 36; i++) {
                char c = s[i];
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (c != '-')
                                return false;
                } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                        return false;
                }
        }
        return s[36] == '\0';
}

bool util_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
        const unsigned char *pa = a, *pb = b;
        unsigned char diff = alen != blen;
        size_t n = MAX(alen, blen);

        /* Walk the longer length so timing does not reveal where they differ. */
        for (size_t i = 0; i < n; i++) {
                unsigned char ca = i < alen ? pa[i] : 0;
                unsigned char cb = i < blen ? pb[i] : 0;
                diff |= ca ^ cb;
        }
        return diff == 0;
}

bool util_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        while (i < len) {
                unsigned char c = p[i];
                size_t n;
                uint32_t cp;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if ((c & 0xe0) == 0xc0) {
                        n = 1;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 2;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        n = 3;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if (len - i <= n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                /* Reject overlong forms, surrogates and code points past U+10FFFF. */
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

int util_mkdir_p(const char *path)
{
        char buf[4096];
        size_t len = strlen(path);

        if (len == 0 || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        }
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int util_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
        const char *colon;
        const char *hs = s;
        size_t hl;
        char *end;
        long p;

        if (s[0] == '[') {
                const char *rb = strchr(s, ']');
                if (!rb || rb[1] != ':')
                        return -EINVAL;
                hs = s + 1;
                hl = (size_t)(rb - hs);
                colon = rb + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t)(colon - s);
        }
        if (hl == 0 || hl >= hostlen)
                return -EINVAL;
        errno = 0;
        p = strtol(colon + 1, &end, 10);
        if (errno || *end != '\0' || end == colon + 1 || p < 0 || p > 65535)
                return -EINVAL;
        memcpy(host, hs, hl);
        host[hl] = '\0';
        *port = (int)p;
        return 0;
}

static uint32_t g_crc32c_table[256];
static pthread_once_t g_crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init_table(void)
{
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
                g_crc32c_table[i] = c;
        }
}

uint32_t util_crc32c(const void *buf, size_t len)
{
        const unsigned char *p = buf;
        uint32_t crc = 0xffffffffu;

        pthread_once(&g_crc32c_once, crc32c_init_table);
        for (size_t i = 0; i < len; i++)
                crc = g_crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
        return crc ^ 0xffffffffu;
}
