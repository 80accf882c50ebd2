/*
 * route_test.c - the HTTP API's pure route parsing (src/net/route.c) for the
 * hand history route, case by case: which paths are ARB_ROUTE_HAND, and
 * which hand numbers arb_route_hand takes (the fuzz target http_fuzz.c
 * attacks the same functions with arbitrary input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "net/route.h"

static int parse(arb_method method, const char *path, arb_route *route_out, char *stream,
                 size_t size)
{
    return arb_route_parse(method, path, route_out, stream, size);
}

static void test_hand_route(void **unused)
{
    (void)unused;
    arb_route route = ARB_ROUTE_NONE;
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    assert_int_equal(
        parse(ARB_METHOD_GET, "/v1/streams/table:t1/hands/1", &route, stream, sizeof stream), 0);
    assert_int_equal(route, ARB_ROUTE_HAND);
    assert_string_equal(stream, "table:t1");
    /* A bad number is still the route (answered 400 by arb_route_hand). */
    assert_int_equal(
        parse(ARB_METHOD_GET, "/v1/streams/table:t1/hands/x", &route, stream, sizeof stream), 0);
    assert_int_equal(route, ARB_ROUTE_HAND);
    assert_int_equal(
        parse(ARB_METHOD_POST, "/v1/streams/table:t1/hands/1", &route, stream, sizeof stream),
        ARB_EUSAGE);
    assert_int_equal(
        parse(ARB_METHOD_GET, "/v1/streams/table:t1/hands", &route, stream, sizeof stream),
        ARB_ENOTFOUND);
    assert_int_equal(
        parse(ARB_METHOD_GET, "/v1/streams/table/hands/1", &route, stream, sizeof stream),
        ARB_EINVALID_STREAM);
    /* The other routes are as they were. */
    assert_int_equal(
        parse(ARB_METHOD_GET, "/v1/streams/table:t1/events", &route, stream, sizeof stream), 0);
    assert_int_equal(route, ARB_ROUTE_EVENTS);
}

static void test_hand_number(void **unused)
{
    (void)unused;
    uint64_t hand = 0;
    assert_int_equal(arb_route_hand("/v1/streams/table:t1/hands/1", &hand), 0);
    assert_int_equal(hand, 1);
    assert_int_equal(arb_route_hand("/v1/streams/table:t1/hands/9007199254740991", &hand), 0);
    assert_int_equal(hand, (uint64_t)ARB_JSON_INT_MAX);
    static const char *const bad[] = {
        "/v1/streams/table:t1/hands/",
        "/v1/streams/table:t1/hands/0",
        "/v1/streams/table:t1/hands/-1",
        "/v1/streams/table:t1/hands/+1",
        "/v1/streams/table:t1/hands/01",
        "/v1/streams/table:t1/hands/1x",
        "/v1/streams/table:t1/hands/x1",
        "/v1/streams/table:t1/hands/ 1",
        "/v1/streams/table:t1/hands/1/",
        "/v1/streams/table:t1/hands/1/2",
        "/v1/streams/table:t1/hands/9007199254740992",
        "/v1/streams/table:t1/hands/99999999999999999999999",
        "/v1/streams/table:t1/events",
        "/healthz",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hand = 77;
        assert_int_equal(arb_route_hand(bad[i], &hand), ARB_EINVALID_ARGUMENT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_route),
        cmocka_unit_test(test_hand_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
