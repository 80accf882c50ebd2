/*
 * map.c - open-addressing string map (see map.h).
 *
 * Invariants: cap is 0 or a power of two; count <= cap * 3 / 4; every key in
 * the table is reachable from its home slot by linear probing without
 * crossing an empty slot (backward-shift deletion keeps this true).
 */
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/map.h"

/* FNV-1a, 64-bit: short keys, fast, good enough spread with a power-of-two
 * table because the low bits are mixed by the final multiply. */
static uint64_t map_hash(const char *key)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        hash ^= *p;
        hash *= 0x100000001b3ULL;
    }
    return hash ^ (hash >> 29);
}

void arb_map_init(arb_map *map, size_t max)
{
    ARB_ASSERT(max > 0);
    map->slots = NULL;
    map->cap = 0;
    map->count = 0;
    map->max = max;
}

void arb_map_free(arb_map *map)
{
    for (size_t i = 0; i < map->cap; i++)
        free(map->slots[i].key);
    free(map->slots);
    map->slots = NULL;
    map->cap = 0;
    map->count = 0;
}

static size_t map_find(const arb_map *map, const char *key, uint64_t hash)
{
    size_t mask = map->cap - 1;
    size_t i = hash & mask;
    for (size_t probes = 0; probes < map->cap; probes++, i = (i + 1) & mask) {
        const arb_map_slot *slot = &map->slots[i];
        if (slot->key == NULL)
            return i;
        if (slot->hash == hash && strcmp(slot->key, key) == 0)
            return i;
    }
    ARB_ASSERT(0 && "map never fills up");
    return 0;
}

void *arb_map_get(const arb_map *map, const char *key)
{
    if (map->count == 0)
        return NULL;
    const arb_map_slot *slot = &map->slots[map_find(map, key, map_hash(key))];
    return slot->key != NULL ? slot->value : NULL;
}

static int map_grow(arb_map *map)
{
    size_t cap = map->cap == 0 ? 16 : map->cap * 2;
    arb_map_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return ARB_ENOMEM;
    arb_map old = *map;
    map->slots = slots;
    map->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key == NULL)
            continue;
        size_t j = map_find(map, old.slots[i].key, old.slots[i].hash);
        map->slots[j] = old.slots[i];
    }
    free(old.slots);
    return 0;
}

int arb_map_put(arb_map *map, const char *key, void *value)
{
    uint64_t hash = map_hash(key);
    if (map->cap > 0) {
        arb_map_slot *slot = &map->slots[map_find(map, key, hash)];
        if (slot->key != NULL) {
            slot->value = value;
            return 0;
        }
    }
    if (map->count >= map->max)
        return ARB_ELIMIT;
    if ((map->count + 1) * 4 > map->cap * 3) {
        int rc = map_grow(map);
        if (rc != 0)
            return rc;
    }
    char *copy = strdup(key);
    if (copy == NULL)
        return ARB_ENOMEM;
    arb_map_slot *slot = &map->slots[map_find(map, key, hash)];
    ARB_ASSERT(slot->key == NULL);
    slot->key = copy;
    slot->hash = hash;
    slot->value = value;
    map->count++;
    return 0;
}

void *arb_map_remove(arb_map *map, const char *key)
{
    if (map->count == 0)
        return NULL;
    size_t mask = map->cap - 1;
    size_t hole = map_find(map, key, map_hash(key));
    if (map->slots[hole].key == NULL)
        return NULL;
    void *value = map->slots[hole].value;
    free(map->slots[hole].key);
    map->slots[hole].key = NULL;
    map->count--;
    /* Backward shift: move later entries of the probe run into the hole when
     * their home slot does not lie cyclically between the hole and them. */
    for (size_t i = (hole + 1) & mask; map->slots[i].key != NULL; i = (i + 1) & mask) {
        size_t home = map->slots[i].hash & mask;
        size_t distance_home = (i - home) & mask;
        size_t distance_hole = (i - hole) & mask;
        if (distance_home >= distance_hole) {
            map->slots[hole] = map->slots[i];
            map->slots[i].key = NULL;
            hole = i;
        }
    }
    return value;
}

int arb_map_foreach(const arb_map *map, int (*fn)(void *user, const char *key, void *value),
                    void *user)
{
    for (size_t i = 0; i < map->cap; i++) {
        if (map->slots[i].key == NULL)
            continue;
        int rc = fn(user, map->slots[i].key, map->slots[i].value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int arb_map_clone(const arb_map *src, arb_map *dst, void *(*copy)(void *user, const void *value),
                  void *user)
{
    ARB_ASSERT(dst->count == 0 && dst->slots == NULL);
    dst->max = src->max;
    if (src->cap == 0)
        return 0;
    dst->slots = calloc(src->cap, sizeof *dst->slots);
    if (dst->slots == NULL)
        return ARB_ENOMEM;
    dst->cap = src->cap;
    for (size_t i = 0; i < src->cap; i++) {
        const arb_map_slot *from = &src->slots[i];
        if (from->key == NULL)
            continue;
        arb_map_slot *to = &dst->slots[i];
        to->key = strdup(from->key);
        to->value = to->key != NULL ? copy(user, from->value) : NULL;
        if (to->value == NULL) {
            free(to->key);
            to->key = NULL;
            for (size_t j = 0; j < i; j++)
                if (dst->slots[j].key != NULL)
                    free(dst->slots[j].value);
            arb_map_free(dst);
            arb_map_init(dst, src->max);
            return ARB_ENOMEM;
        }
        to->hash = from->hash;
        dst->count++;
    }
    return 0;
}
