#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum log_level g_level = LOG_LVL_INFO;
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level lvl)
{
        g_level = lvl;
}

bool log_on(enum log_level lvl)
{
        return lvl >= g_level;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
        static const char *names[] = {"debug", "info", "warn", "error"};
        char ts[UTIL_TIME_LEN];
        char line[2048];
        va_list ap;

        if (lvl < g_level)
                return;
        util_time_format(util_now_usec(), ts);
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* One fprintf per line under a lock: lines from threads never mix. */
        pthread_mutex_lock(&g_log_lock);
        fprintf(stderr, "%sZ %s %s\n", ts, names[lvl], line);
        fflush(stderr);
        pthread_mutex_unlock(&g_log_lock);
}
