/*
 * error_test.c - the error table: every code negative and unique, every wire
 * name upper case and mapping back to its code, every message present.
 */
#include "support.h"

#include <string.h>

static void test_errors_table(void **state)
{
    (void)state;
    /* Every name is upper case, unique, and maps back to its code. */
    int codes[] = {
#define CODE(name, number, wire, message) name,
        ARB_ERROR_TABLE(CODE)
#undef CODE
    };
    size_t count = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < count; i++) {
        const char *name = arb_err_name(codes[i]);
        assert_true(codes[i] < 0);
        assert_int_equal(arb_err_from_name(name), codes[i]);
        for (const char *p = name; *p != '\0'; p++)
            assert_true((*p >= 'A' && *p <= 'Z') || *p == '_');
        assert_true(strlen(arb_err_message(codes[i])) > 0);
        for (size_t j = i + 1; j < count; j++)
            assert_true(codes[i] != codes[j]);
    }
    assert_string_equal(arb_err_name(0), "OK");
    assert_string_equal(arb_err_name(-9999), "UNKNOWN_ERROR");
    assert_int_equal(arb_err_from_name("NO_SUCH_NAME"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_table),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
