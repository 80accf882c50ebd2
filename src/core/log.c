/*
 * log.c - logfmt lines on stderr (see log.h).
 *
 * Each line is formatted into one stack buffer and written with a single
 * fputs, so lines from two threads do not interleave mid-line.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "arbiter/error.h"
#include "core/log.h"

static _Atomic int log_level = ARB_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void arb_log_set_level(arb_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int arb_log_parse_level(const char *name, arb_log_level *level_out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level_out = (arb_log_level)i;
            return 0;
        }
    }
    return ARB_EUSAGE;
}

void arb_log(arb_log_level level, const char *message, const char *fields_format, ...)
{
    if ((int)level < atomic_load(&log_level))
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char line[2048];
    int n =
        snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                 utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                 utc.tm_sec, now.tv_nsec / 1000000L, level_names[level], message);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fields_format != NULL && fields_format[0] != '\0' && used + 2 < sizeof line) {
        line[used++] = ' ';
        va_list args;
        va_start(args, fields_format);
        int m = vsnprintf(line + used, sizeof line - used, fields_format, args);
        va_end(args);
        if (m > 0)
            used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    }
    if (used + 1 >= sizeof line)
        used = sizeof line - 2;
    line[used++] = '\n';
    line[used] = '\0';
    fputs(line, stderr);
}
