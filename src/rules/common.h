/*
 * rules/common.h - helpers every rule module shares (internal to src/rules).
 *
 * Reading event and snapshot data, which came from the log: a value that is
 * missing, of the wrong type or out of its bounds makes the caller report
 * ARB_ECORRUPT. Filing an entity in a map. Saying why an invariant failed.
 * Pure, like the modules themselves.
 */
#ifndef ARB_RULES_COMMON_H
#define ARB_RULES_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/map.h"

/* data[key] as a string of len_min..len_max bytes without NUL; the pointer
 * is borrowed from data. false when it is not one. */
bool arb__rules_data_string(const json_t *data, const char *key, size_t len_min, size_t len_max,
                            const char **value_out);
/* data[key] as an integer in [min, max]. false when it is not one. */
bool arb__rules_data_int(const json_t *data, const char *key, int64_t min, int64_t max,
                         int64_t *value_out);

/* File value (malloc'd; the map then owns it) under key. A key already there
 * is ARB_ECORRUPT (the state would hold two entities with one id); on any
 * failure value is freed. */
int arb__rules_map_add(arb_map *map, const char *key, void *value);

/* Write the reason into why[0..why_size) and return ARB_ECORRUPT: the
 * return of a check() that found a broken invariant. */
int arb__rules_corrupt(char *why, size_t why_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a check() that ran out of memory: ARB_ENOMEM. */
int arb__rules_check_out_of_memory(char *why, size_t why_size);

#endif
