/*
 * rules/common.c - helpers every rule module shares; see common.h.
 */
#include "rules/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"

bool arb__rules_data_string(const json_t *data, const char *key, size_t len_min, size_t len_max,
                            const char **value_out)
{
    const json_t *value = json_object_get(data, key);
    if (!json_is_string(value))
        return false;
    size_t len = json_string_length(value);
    const char *text = json_string_value(value);
    if (len < len_min || len > len_max || memchr(text, '\0', len) != NULL)
        return false;
    *value_out = text;
    return true;
}

bool arb__rules_data_int(const json_t *data, const char *key, int64_t min, int64_t max,
                         int64_t *value_out)
{
    const json_t *value = json_object_get(data, key);
    if (!json_is_integer(value))
        return false;
    json_int_t number = json_integer_value(value);
    if (number < min || number > max)
        return false;
    *value_out = number;
    return true;
}

int arb__rules_map_add(arb_map *map, const char *key, void *value)
{
    if (arb_map_get(map, key) != NULL) {
        free(value);
        return ARB_ECORRUPT;
    }
    int rc = arb_map_put(map, key, value);
    if (rc != 0)
        free(value);
    return rc;
}

int arb__rules_corrupt(char *why, size_t why_size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    if (why_size > 0)
        vsnprintf(why, why_size, format, args);
    va_end(args);
    return ARB_ECORRUPT;
}

int arb__rules_check_out_of_memory(char *why, size_t why_size)
{
    if (why_size > 0)
        snprintf(why, why_size, "out of memory while checking");
    return ARB_ENOMEM;
}
