/*
 * json_fuzz.c - fuzz target for the strict JSON parser and canonical JSON.
 *
 * Input: any bytes, taken as JSON text. Properties checked:
 *   - arb_json_parse either fails with ARB_EMALFORMED / ARB_ETOO_LARGE, a
 *     sentence in why and no value, or gives a value; a max_bytes one below
 *     the length is always ARB_ETOO_LARGE;
 *   - arb_canon_json succeeds exactly when the value is encodable (no real,
 *     every integer within +-(2^53-1)); on failure it leaves the buffer as it
 *     was, also when the buffer already held bytes and when it is too small;
 *   - the canonical text is never longer than the input (canonicalizing only
 *     drops whitespace and shortens escapes), and it is a fixed point: it
 *     parses again to an equal value whose canonical text is byte-identical;
 *   - it equals jansson's own compact, key-sorted dump once jansson's
 *     upper-case \u00XX escapes are lower-cased (a second, independent
 *     encoder as the oracle).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"
#include "fuzz.h"

/* Whether arb_canon_json must accept the value: integers-only JSON in range
 * (the parser already bounds the depth, as canon does). */
static bool json_fuzz_encodable(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *)value, key, member) {
            if (!json_fuzz_encodable(member))
                return false;
        }
        return true;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(value); i++)
            if (!json_fuzz_encodable(json_array_get(value, i)))
                return false;
        return true;
    case JSON_INTEGER: {
        json_int_t number = json_integer_value(value);
        return number >= -ARB_JSON_INT_MAX && number <= ARB_JSON_INT_MAX;
    }
    case JSON_REAL:
        return false;
    case JSON_STRING:
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return true;
    }
    return false;
}

/* jansson's compact sorted dump with its \uXXXX escapes lower-cased, which
 * is what the canonical form must be for an encodable value. */
static void json_fuzz_check_against_jansson(const json_t *value, const arb_buf *canon)
{
    char *dump = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    ARB_ASSERT(dump != NULL);
    size_t len = strlen(dump);
    for (size_t i = 0; i + 1 < len; i++) {
        if (dump[i] != '\\')
            continue;
        i++; /* the escaped character: never itself the start of an escape */
        if (dump[i] == 'u') {
            ARB_ASSERT(i + 4 < len);
            for (size_t h = i + 1; h <= i + 4; h++)
                if (dump[h] >= 'A' && dump[h] <= 'F')
                    dump[h] = (char)(dump[h] - 'A' + 'a');
        }
    }
    ARB_ASSERT(len == canon->len);
    ARB_ASSERT(memcmp(dump, canon->data, len) == 0);
    free(dump);
}

/* Canonical text -> parse -> canonical text again: the same bytes. */
static void json_fuzz_check_fixed_point(const json_t *value, const arb_buf *canon)
{
    json_t *again = NULL;
    char why[256];
    int rc = arb_json_parse(canon->data, canon->len, canon->len, &again, why, sizeof why);
    ARB_ASSERT(rc == 0 && again != NULL);
    ARB_ASSERT(json_equal(value, again));
    arb_buf second;
    arb_buf_init(&second, canon->len);
    rc = arb_canon_json(&second, again);
    ARB_ASSERT(rc == 0);
    ARB_ASSERT(second.len == canon->len && memcmp(second.data, canon->data, canon->len) == 0);
    arb_buf_free(&second);
    json_decref(again);
}

/* Appending after existing bytes, and into a buffer one byte too small. */
static void json_fuzz_check_buffers(const json_t *value, const arb_buf *canon, bool encodable)
{
    static const char prefix[] = "prefix";
    arb_buf appended;
    arb_buf_init(&appended, ARB_ARGS_BYTES_MAX + sizeof prefix);
    ARB_ASSERT(arb_buf_append_str(&appended, prefix) == 0);
    int rc = arb_canon_json(&appended, value);
    if (encodable) {
        ARB_ASSERT(rc == 0 && appended.len == sizeof prefix - 1 + canon->len);
        ARB_ASSERT(memcmp(appended.data + sizeof prefix - 1, canon->data, canon->len) == 0);
    } else {
        ARB_ASSERT(rc == ARB_EINVALID_ARGUMENT && appended.len == sizeof prefix - 1);
        ARB_ASSERT(strcmp(appended.data, prefix) == 0);
    }
    arb_buf_free(&appended);

    if (!encodable || canon->len < 2)
        return;
    arb_buf small;
    arb_buf_init(&small, canon->len - 1);
    rc = arb_canon_json(&small, value);
    ARB_ASSERT(rc == ARB_ETOO_LARGE && small.len == 0);
    ARB_ASSERT(small.data == NULL || small.data[0] == '\0');
    arb_buf_free(&small);
}

int arb_fuzz_json(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_t *value = NULL;
    char why[256];
    why[0] = '\0';
    if (size > 0) {
        int rc = arb_json_parse(text, size, size - 1, &value, why, sizeof why);
        ARB_ASSERT(rc == ARB_ETOO_LARGE && value == NULL && why[0] != '\0');
        why[0] = '\0';
    }
    int rc = arb_json_parse(text, size, ARB_ARGS_BYTES_MAX, &value, why, sizeof why);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_EMALFORMED || rc == ARB_ETOO_LARGE);
        ARB_ASSERT(value == NULL && why[0] != '\0' && memchr(why, '\0', sizeof why) != NULL);
        return 0;
    }
    ARB_ASSERT(value != NULL && size <= ARB_ARGS_BYTES_MAX);

    bool encodable = json_fuzz_encodable(value);
    arb_buf canon;
    arb_buf_init(&canon, ARB_ARGS_BYTES_MAX);
    rc = arb_canon_json(&canon, value);
    if (encodable) {
        ARB_ASSERT(rc == 0);
        ARB_ASSERT(canon.len > 0 && canon.len <= size);
        ARB_ASSERT(strlen(canon.data) == canon.len); /* no NUL inside */
        json_fuzz_check_fixed_point(value, &canon);
        json_fuzz_check_against_jansson(value, &canon);
    } else {
        ARB_ASSERT(rc == ARB_EINVALID_ARGUMENT && canon.len == 0);
    }
    json_fuzz_check_buffers(value, &canon, encodable);
    arb_buf_free(&canon);
    json_decref(value);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_json(data, size);
}
#endif
