/*
 * canon_test.c - canonical JSON and the event hash chain: the published test
 * vectors (docs/protocol.md quotes the same ones), the rejections, and the
 * fixed-point property over random values.
 */
#include "support.h"

#include <string.h>

#include "core/canon.h"

static char *canon_of(const char *json_text, int *rc_out)
{
    json_t *value = NULL;
    char why[128];
    assert_int_equal(arb_json_parse(json_text, strlen(json_text), 1 << 20, &value, why, sizeof why),
                     0);
    arb_buf buf;
    arb_buf_init(&buf, 1 << 20);
    *rc_out = arb_canon_json(&buf, value);
    json_decref(value);
    char *text = strdup(buf.data != NULL ? buf.data : "");
    arb_buf_free(&buf);
    return text;
}

static void expect_canon(const char *input, const char *expected)
{
    int rc = 0;
    char *text = canon_of(input, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(text, expected);
    free(text);
}

static void test_vectors(void **state)
{
    (void)state;
    expect_canon("{ \"b\" : 1, \"a\" : [true, false, null] }", "{\"a\":[true,false,null],\"b\":1}");
    expect_canon("{\"z\":{\"y\":2,\"x\":1},\"\":0}", "{\"\":0,\"z\":{\"x\":1,\"y\":2}}");
    expect_canon("\"tab\\there \\\"q\\\" back\\\\slash\"",
                 "\"tab\\there \\\"q\\\" back\\\\slash\"");
    expect_canon("\"\\u0001\\u001f\\b\\f\\n\\r\"", "\"\\u0001\\u001f\\b\\f\\n\\r\"");
    expect_canon("\"\\u00e9\\u20ac/\"", "\"\xc3\xa9\xe2\x82\xac/\"");
    expect_canon("[9007199254740991,-9007199254740991,0,-0]",
                 "[9007199254740991,-9007199254740991,0,0]");
    /* Keys sort by UTF-8 bytes: upper case before lower case, é after z. */
    expect_canon("{\"\\u00e9\":1,\"z\":2,\"Z\":3}", "{\"Z\":3,\"z\":2,\"\xc3\xa9\":1}");
}

static void test_rejections(void **state)
{
    (void)state;
    int rc = 0;
    free(canon_of("{\"a\":1.5}", &rc));
    assert_int_equal(rc, ARB_EINVALID_ARGUMENT);
    free(canon_of("[9007199254740992]", &rc));
    assert_int_equal(rc, ARB_EINVALID_ARGUMENT);
    free(canon_of("1e3", &rc));
    assert_int_equal(rc, ARB_EINVALID_ARGUMENT);
    /* Depth: ARB_JSON_DEPTH_MAX nested arrays parse; one more does not. */
    char deep[2 * ARB_JSON_DEPTH_MAX + 8];
    size_t n = 0;
    for (int i = 0; i < ARB_JSON_DEPTH_MAX + 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < ARB_JSON_DEPTH_MAX + 1; i++)
        deep[n++] = ']';
    json_t *value = NULL;
    char why[128];
    assert_int_equal(arb_json_parse(deep, n, 1 << 20, &value, why, sizeof why), ARB_EMALFORMED);
    assert_int_equal(arb_json_parse(deep + 1, n - 2, 1 << 20, &value, why, sizeof why), 0);
    json_decref(value);
    /* Duplicate keys, NUL bytes, trailing garbage, oversize input. */
    assert_int_equal(arb_json_parse("{\"a\":1,\"a\":2}", 13, 100, &value, why, sizeof why),
                     ARB_EMALFORMED);
    assert_int_equal(arb_json_parse("\"a\\u0000b\"", 10, 100, &value, why, sizeof why),
                     ARB_EMALFORMED);
    assert_int_equal(arb_json_parse("{} x", 4, 100, &value, why, sizeof why), ARB_EMALFORMED);
    assert_int_equal(arb_json_parse("[1,2,3]", 7, 6, &value, why, sizeof why), ARB_ETOO_LARGE);
    /* A failed append leaves the buffer as it was. */
    arb_buf buf;
    arb_buf_init(&buf, 8);
    assert_int_equal(arb_buf_append_str(&buf, "abc"), 0);
    json_t *big = json_pack("{s:s}", "key", "a long value");
    assert_int_equal(arb_canon_json(&buf, big), ARB_ETOO_LARGE);
    assert_int_equal(buf.len, 3);
    assert_string_equal(buf.data, "abc");
    json_decref(big);
    arb_buf_free(&buf);
}

static void test_integer_digits(void **state)
{
    (void)state;
    arb_buf buf;
    arb_buf_init(&buf, 64);
    const long long values[] = {0, 7, -7, 10, -10, 9007199254740991LL, -9223372036854775807LL - 1};
    const char *texts[] = {"0", "7", "-7", "10", "-10", "9007199254740991", "-9223372036854775808"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        arb_buf_reset(&buf);
        assert_int_equal(arb_buf_append_i64(&buf, values[i]), 0);
        assert_string_equal(buf.data, texts[i]);
    }
    arb_buf_reset(&buf);
    assert_int_equal(arb_buf_append_u64(&buf, 18446744073709551615ULL), 0);
    assert_string_equal(buf.data, "18446744073709551615");
    arb_buf_free(&buf);
}

static void test_event_bytes_and_chain(void **state)
{
    (void)state;
    arb_event event;
    memset(&event, 0, sizeof event);
    snprintf(event.stream, sizeof event.stream, "ledger:main");
    snprintf(event.type, sizeof event.type, "transferred");
    snprintf(event.client_id, sizeof event.client_id, "alice");
    event.seq = 7;
    event.client_seq = 3;
    event.applied_at_ms = 1700000000000;
    const char *data = "{\"amount\":5,\"from\":\"a\",\"to\":\"b\"}";
    arb_buf buf;
    arb_buf_init(&buf, 4096);
    assert_int_equal(arb_canon_event(&buf, &event, data, strlen(data)), 0);
    assert_string_equal(buf.data,
                        "{\"applied_at\":1700000000000,\"client_id\":\"alice\",\"client_seq\":3,"
                        "\"data\":{\"amount\":5,\"from\":\"a\",\"to\":\"b\"},\"seq\":7,"
                        "\"stream\":\"ledger:main\",\"type\":\"transferred\"}");
    uint8_t zero[ARB_HASH_BYTES] = {0};
    uint8_t h1[ARB_HASH_BYTES], h2[ARB_HASH_BYTES], h3[ARB_HASH_BYTES];
    arb_hash_chain(zero, buf.data, buf.len, h1);
    arb_hash_chain(zero, buf.data, buf.len, h2);
    assert_memory_equal(h1, h2, ARB_HASH_BYTES);
    arb_hash_chain(h1, buf.data, buf.len, h3);
    assert_memory_not_equal(h1, h3, ARB_HASH_BYTES);
    /* The hash is BLAKE2b-256 of prev || bytes: the same as hashing the
     * concatenation in one go. */
    size_t total = ARB_HASH_BYTES + buf.len;
    uint8_t *joined = malloc(total);
    memcpy(joined, zero, ARB_HASH_BYTES);
    memcpy(joined + ARB_HASH_BYTES, buf.data, buf.len);
    arb_hash(joined, total, h2);
    assert_memory_equal(h1, h2, ARB_HASH_BYTES);
    free(joined);
    /* Known answer, computed independently with coreutils:
     * (32 zero bytes || the bytes above) | b2sum -l 256 */
    char hex[2 * ARB_HASH_BYTES + 1];
    arb_hash_hex(h1, hex);
    assert_string_equal(hex, "2c8b9dd914b6070da3f81dd2f23973df4b0f9717a66e9ee115471913605b141b");
    arb_buf_free(&buf);
}

/* A random JSON value built from the RNG, integers only. */
static json_t *random_value(uint64_t *rng, int depth)
{
    uint64_t pick = test_random_below(rng, depth > 4 ? 4 : 7);
    switch (pick) {
    case 0:
        return json_integer((json_int_t)test_random_below(rng, 2 * 1000001) - 1000000);
    case 1: {
        char text[12];
        size_t len = test_random_below(rng, sizeof text);
        for (size_t i = 0; i < len; i++)
            text[i] = (char)(1 + test_random_below(rng, 126)); /* ASCII incl. controls */
        return json_stringn(text, len);
    }
    case 2:
        return json_boolean(test_random_below(rng, 2));
    case 3:
        return json_null();
    case 4:
    case 5: {
        json_t *object = json_object();
        size_t n = test_random_below(rng, 6);
        for (size_t i = 0; i < n; i++) {
            char key[8];
            snprintf(key, sizeof key, "k%u", (unsigned)test_random_below(rng, 20));
            json_object_set_new(object, key, random_value(rng, depth + 1));
        }
        return object;
    }
    default: {
        json_t *array = json_array();
        size_t n = test_random_below(rng, 5);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(array, random_value(rng, depth + 1));
        return array;
    }
    }
}

static void test_fixed_point_over_random_values(void **state)
{
    (void)state;
    uint64_t rng = test_seed("canon fixed point");
    arb_buf first, second;
    arb_buf_init(&first, 1 << 20);
    arb_buf_init(&second, 1 << 20);
    for (int i = 0; i < 3000; i++) {
        json_t *value = random_value(&rng, 0);
        arb_buf_reset(&first);
        arb_buf_reset(&second);
        assert_int_equal(arb_canon_json(&first, value), 0);
        json_t *parsed = NULL;
        char why[128];
        assert_int_equal(arb_json_parse(first.data, first.len, 1 << 20, &parsed, why, sizeof why),
                         0);
        assert_true(json_equal(value, parsed));
        assert_int_equal(arb_canon_json(&second, parsed), 0);
        assert_int_equal(first.len, second.len);
        assert_memory_equal(first.data, second.data, first.len);
        json_decref(value);
        json_decref(parsed);
    }
    arb_buf_free(&first);
    arb_buf_free(&second);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_integer_digits),
        cmocka_unit_test(test_event_bytes_and_chain),
        cmocka_unit_test(test_fixed_point_over_random_values),
    };
    return cmocka_run_group_tests_name("canon", tests, NULL, NULL);
}
