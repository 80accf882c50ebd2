/*
 * log.h - structured log lines on stderr.
 *
 * One line per call, logfmt: `ts=2026-11-23T18:39:46.123Z level=info
 * msg="engine opened" streams=3`. The message and key=value pairs are given
 * as a printf format, e.g. arb_log(ARB_LOG_INFO, "engine opened", "streams=%zu", n).
 * Lines below the global level are dropped.
 */
#ifndef ARB_LOG_H
#define ARB_LOG_H

typedef enum arb_log_level {
    ARB_LOG_DEBUG = 0,
    ARB_LOG_INFO = 1,
    ARB_LOG_WARN = 2,
    ARB_LOG_ERROR = 3,
} arb_log_level;

void arb_log_set_level(arb_log_level level);
/* Parse "debug", "info", "warn", "error"; 0 or ARB_EUSAGE. */
int arb_log_parse_level(const char *name, arb_log_level *level_out);
void arb_log(arb_log_level level, const char *message, const char *fields_format, ...)
    __attribute__((format(printf, 3, 4)));

#endif
