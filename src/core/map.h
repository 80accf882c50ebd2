/*
 * map.h - a hash map from NUL-terminated string keys to pointers.
 *
 * Open addressing with linear probing, power-of-two capacity, load kept under
 * 3/4, and backward-shift deletion (no tombstones), so lookups stay short
 * whatever the history of inserts and removes. The map copies each key (it
 * owns the copies) and borrows the values: freeing what values point to is
 * the caller's business (arb_map_foreach helps). Iteration order is the slot
 * order, which is deterministic for the same sequence of operations, but
 * callers that need a stable order (snapshots) sort.
 */
#ifndef ARB_MAP_H
#define ARB_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct arb_map_slot {
    char *key; /* NULL: empty */
    uint64_t hash;
    void *value;
} arb_map_slot;

typedef struct arb_map {
    arb_map_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
    size_t max; /* entries allowed (a limit from limits.h) */
} arb_map;

void arb_map_init(arb_map *map, size_t max);
/* Frees the key copies and the table, not the values. */
void arb_map_free(arb_map *map);
void *arb_map_get(const arb_map *map, const char *key);
/* Insert or replace. 0, ARB_ENOMEM, or ARB_ELIMIT when a new key would pass max. */
int arb_map_put(arb_map *map, const char *key, void *value);
/* Remove; returns the value that was there or NULL. */
void *arb_map_remove(arb_map *map, const char *key);
/* Make dst (initialized, empty) a copy of src: the same keys in the same
 * slots (so the same iteration order), each value copied by copy(user,
 * value), which returns a new malloc'd block or NULL. 0, or ARB_ENOMEM with
 * dst empty again (the copies made so far freed with free()). */
int arb_map_clone(const arb_map *src, arb_map *dst, void *(*copy)(void *user, const void *value),
                  void *user);
/* Call fn for every entry; stops early when fn returns non-zero, returning it.
 * fn must not insert into or remove from the map. */
int arb_map_foreach(const arb_map *map, int (*fn)(void *user, const char *key, void *value),
                    void *user);

#endif
