/*
 * map_test.c - the string map against a trivially correct model (an array of
 * keys) over random inserts, replaces and removes, with the limit enforced.
 */
#include "support.h"

#include <string.h>

#include "core/map.h"

#define KEYS 512

static void test_random_against_model(void **state)
{
    (void)state;
    uint64_t rng = test_seed("map model");
    arb_map map;
    arb_map_init(&map, KEYS);
    intptr_t model[KEYS] = {0}; /* 0: absent, else the value */
    size_t present = 0;
    for (int step = 0; step < 200000; step++) {
        size_t k = test_random_below(&rng, KEYS);
        char key[16];
        snprintf(key, sizeof key, "key-%zu", k);
        uint64_t op = test_random_below(&rng, 3);
        if (op == 0) {
            intptr_t value = (intptr_t)(1 + test_random_below(&rng, 1000));
            assert_int_equal(arb_map_put(&map, key, (void *)value), 0);
            present += model[k] == 0;
            model[k] = value;
        } else if (op == 1) {
            void *removed = arb_map_remove(&map, key);
            assert_int_equal((intptr_t)removed, model[k]);
            present -= model[k] != 0;
            model[k] = 0;
        } else {
            assert_int_equal((intptr_t)arb_map_get(&map, key), model[k]);
        }
        assert_int_equal(map.count, present);
    }
    for (size_t k = 0; k < KEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "key-%zu", k);
        assert_int_equal((intptr_t)arb_map_get(&map, key), model[k]);
    }
    arb_map_free(&map);
}

static int count_entries(void *user, const char *key, void *value)
{
    (void)key;
    (void)value;
    (*(size_t *)user)++;
    return 0;
}

static void test_limit(void **state)
{
    (void)state;
    arb_map map;
    arb_map_init(&map, 3);
    assert_int_equal(arb_map_put(&map, "a", (void *)1), 0);
    assert_int_equal(arb_map_put(&map, "b", (void *)2), 0);
    assert_int_equal(arb_map_put(&map, "c", (void *)3), 0);
    assert_int_equal(arb_map_put(&map, "d", (void *)4), ARB_ELIMIT);
    assert_int_equal(arb_map_put(&map, "a", (void *)9), 0); /* replacing is not growing */
    assert_int_equal((intptr_t)arb_map_get(&map, "a"), 9);
    assert_null(arb_map_get(&map, "d"));
    size_t n = 0;
    arb_map_foreach(&map, count_entries, &n);
    assert_int_equal(n, 3);
    arb_map_free(&map);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests_name("map", tests, NULL, NULL);
}
