/*
 * event_canon_fuzz.c - fuzz target for an event's canonical bytes and the
 * hash chain over them (what `arbiter verify` and recovery recompute).
 *
 * Input layout: a mode byte; the lengths and bytes of stream, type and
 * client_id (any bytes: quotes, backslashes, control characters, invalid
 * UTF-8; a NUL ends a name early, as it would in the C string); seq,
 * client_seq and applied_at (8 bytes each; the mode byte's low bit folds
 * them into the canonical integer range); a 32-byte previous hash; the rest
 * is the data, JSON text (an object that does not canonicalize becomes {}).
 *
 * Properties:
 *   - arb_canon_event succeeds (every part fits ARB_EVENT_BYTES_MAX), gives
 *     the same bytes when appended after other bytes, and fails with
 *     ARB_ETOO_LARGE into a buffer one byte too small;
 *   - when the names are valid UTF-8 and the numbers in the canonical range,
 *     the bytes parse with arb_json_parse to an object of exactly the seven
 *     fields, equal to the event's, and canonicalizing that object gives the
 *     same bytes back (the event form is canonical JSON);
 *   - when a name is not valid UTF-8 the bytes do not parse (the strict
 *     parser never accepts what the canonical form could not have meant);
 *   - arb_hash_chain is deterministic and equals arb_hash(prev || bytes).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "arbiter/types.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"
#include "fuzz.h"

/* Strict UTF-8 as jansson checks it: shortest form, no surrogates, at most
 * U+10FFFF. */
static bool event_fuzz_utf8_valid(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p != '\0') {
        unsigned char c = *p;
        size_t extra;
        uint32_t codepoint;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            codepoint = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            codepoint = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            codepoint = c & 0x07u;
        } else {
            return false;
        }
        for (size_t i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0u) != 0x80u)
                return false; /* also stops at the NUL */
            codepoint = (codepoint << 6) | (p[i] & 0x3fu);
        }
        if ((extra == 2 && codepoint < 0x800) || (extra == 3 && codepoint < 0x10000) ||
            codepoint > 0x10ffff || (codepoint >= 0xd800 && codepoint <= 0xdfff))
            return false;
        p += extra + 1;
    }
    return true;
}

/* A name of up to size - 1 bytes; a NUL among them ends it early. */
static void event_fuzz_name(arb_fuzz_reader *in, char *name, size_t size)
{
    size_t len = arb_fuzz_u8(in) % size;
    size_t got = arb_fuzz_bytes(in, (uint8_t *)name, len);
    name[got] = '\0';
}

/* Fold a number into 1..2^53-1 (seq) or -(2^53-1)..2^53-1. */
static uint64_t event_fuzz_fold_positive(uint64_t value)
{
    return 1 + value % (uint64_t)ARB_JSON_INT_MAX;
}

static int64_t event_fuzz_fold_signed(uint64_t value)
{
    int64_t folded = (int64_t)(value % (2 * (uint64_t)ARB_JSON_INT_MAX + 1));
    return folded - ARB_JSON_INT_MAX;
}

/* The data: the rest of the input if it is a canonicalizable object, else
 * {}. Its canonical text goes into data_canon. New reference. */
static json_t *event_fuzz_data(arb_fuzz_reader *in, arb_buf *data_canon)
{
    json_t *data = NULL;
    char why[256];
    const char *text = (const char *)in->data + in->pos;
    if (arb_json_parse(text, arb_fuzz_reader_left(in), ARB_ARGS_BYTES_MAX, &data, why,
                       sizeof why) == 0 &&
        json_is_object(data) && arb_canon_json(data_canon, data) == 0)
        return data;
    json_decref(data);
    arb_buf_reset(data_canon);
    data = json_object();
    ARB_ASSERT(data != NULL && arb_canon_json(data_canon, data) == 0);
    return data;
}

static void event_fuzz_check_string(const json_t *object, const char *key, const char *expected)
{
    const json_t *value = json_object_get(object, key);
    ARB_ASSERT(json_is_string(value));
    ARB_ASSERT(json_string_length(value) == strlen(expected));
    ARB_ASSERT(strcmp(json_string_value(value), expected) == 0);
}

static void event_fuzz_check_int(const json_t *object, const char *key, int64_t expected)
{
    const json_t *value = json_object_get(object, key);
    ARB_ASSERT(json_is_integer(value) && json_integer_value(value) == expected);
}

/* The canonical bytes of a well-formed event read back as that event. */
static void event_fuzz_check_parse(const arb_event *event, const arb_buf *bytes)
{
    json_t *parsed = NULL;
    char why[256];
    int rc = arb_json_parse(bytes->data, bytes->len, ARB_EVENT_BYTES_MAX, &parsed, why, sizeof why);
    ARB_ASSERT(rc == 0 && json_is_object(parsed));
    ARB_ASSERT(json_object_size(parsed) == 7);
    event_fuzz_check_string(parsed, "stream", event->stream);
    event_fuzz_check_string(parsed, "type", event->type);
    event_fuzz_check_string(parsed, "client_id", event->client_id);
    event_fuzz_check_int(parsed, "seq", (int64_t)event->seq);
    event_fuzz_check_int(parsed, "client_seq", (int64_t)event->client_seq);
    event_fuzz_check_int(parsed, "applied_at", event->applied_at_ms);
    ARB_ASSERT(json_equal(json_object_get(parsed, "data"), event->data));
    arb_buf again;
    arb_buf_init(&again, ARB_EVENT_BYTES_MAX);
    ARB_ASSERT(arb_canon_json(&again, parsed) == 0);
    ARB_ASSERT(again.len == bytes->len && memcmp(again.data, bytes->data, bytes->len) == 0);
    arb_buf_free(&again);
    json_decref(parsed);
}

static void event_fuzz_check_hash(const uint8_t prev[ARB_HASH_BYTES], const arb_buf *bytes)
{
    uint8_t first[ARB_HASH_BYTES], second[ARB_HASH_BYTES], joined_hash[ARB_HASH_BYTES];
    arb_hash_chain(prev, bytes->data, bytes->len, first);
    arb_hash_chain(prev, bytes->data, bytes->len, second);
    ARB_ASSERT(memcmp(first, second, ARB_HASH_BYTES) == 0);
    uint8_t *joined = malloc(ARB_HASH_BYTES + bytes->len);
    ARB_ASSERT(joined != NULL);
    memcpy(joined, prev, ARB_HASH_BYTES);
    memcpy(joined + ARB_HASH_BYTES, bytes->data, bytes->len);
    arb_hash(joined, ARB_HASH_BYTES + bytes->len, joined_hash);
    ARB_ASSERT(memcmp(first, joined_hash, ARB_HASH_BYTES) == 0);
    free(joined);
    char hex[2 * ARB_HASH_BYTES + 1];
    arb_hash_hex(first, hex);
    ARB_ASSERT(strlen(hex) == 2 * ARB_HASH_BYTES && strspn(hex, "0123456789abcdef") == strlen(hex));
}

/* Appending after other bytes, and into a buffer one byte too small. */
static void event_fuzz_check_buffers(const arb_event *event, const arb_buf *data_canon,
                                     const arb_buf *bytes)
{
    static const char prefix[] = "[prefix]";
    arb_buf appended;
    arb_buf_init(&appended, ARB_EVENT_BYTES_MAX + sizeof prefix);
    ARB_ASSERT(arb_buf_append_str(&appended, prefix) == 0);
    ARB_ASSERT(arb_canon_event(&appended, event, data_canon->data, data_canon->len) == 0);
    ARB_ASSERT(appended.len == sizeof prefix - 1 + bytes->len);
    ARB_ASSERT(memcmp(appended.data + sizeof prefix - 1, bytes->data, bytes->len) == 0);
    arb_buf_free(&appended);

    arb_buf small;
    arb_buf_init(&small, bytes->len - 1);
    ARB_ASSERT(arb_canon_event(&small, event, data_canon->data, data_canon->len) == ARB_ETOO_LARGE);
    ARB_ASSERT(small.len <= small.max);
    arb_buf_free(&small);
}

int arb_fuzz_event_canon(const uint8_t *data, size_t size)
{
    arb_fuzz_reader in;
    arb_fuzz_reader_init(&in, data, size);
    uint8_t mode = arb_fuzz_u8(&in);
    arb_event event;
    memset(&event, 0, sizeof event);
    event_fuzz_name(&in, event.stream, sizeof event.stream);
    event_fuzz_name(&in, event.type, sizeof event.type);
    event_fuzz_name(&in, event.client_id, sizeof event.client_id);
    uint64_t seq = arb_fuzz_u64(&in), client_seq = arb_fuzz_u64(&in), applied = arb_fuzz_u64(&in);
    bool in_range = (mode & 1u) != 0;
    event.seq = in_range ? event_fuzz_fold_positive(seq) : (seq == 0 ? 1 : seq);
    event.client_seq = in_range ? event_fuzz_fold_positive(client_seq) - 1 : client_seq;
    event.applied_at_ms = in_range ? event_fuzz_fold_signed(applied) : (int64_t)applied;
    uint8_t prev[ARB_HASH_BYTES];
    memset(prev, 0, sizeof prev);
    arb_fuzz_bytes(&in, prev, sizeof prev);

    arb_buf data_canon;
    arb_buf_init(&data_canon, ARB_ARGS_BYTES_MAX);
    event.data = event_fuzz_data(&in, &data_canon);

    arb_buf bytes;
    arb_buf_init(&bytes, ARB_EVENT_BYTES_MAX);
    int rc = arb_canon_event(&bytes, &event, data_canon.data, data_canon.len);
    ARB_ASSERT(rc == 0 && bytes.len > 0 && strlen(bytes.data) == bytes.len);

    bool names_valid = event_fuzz_utf8_valid(event.stream) && event_fuzz_utf8_valid(event.type) &&
                       event_fuzz_utf8_valid(event.client_id);
    bool numbers_valid =
        event.seq <= (uint64_t)ARB_JSON_INT_MAX && event.client_seq <= (uint64_t)ARB_JSON_INT_MAX &&
        event.applied_at_ms >= -ARB_JSON_INT_MAX && event.applied_at_ms <= ARB_JSON_INT_MAX;
    if (names_valid && numbers_valid) {
        event_fuzz_check_parse(&event, &bytes);
    } else if (!names_valid) {
        json_t *parsed = NULL;
        char why[256];
        rc = arb_json_parse(bytes.data, bytes.len, ARB_EVENT_BYTES_MAX, &parsed, why, sizeof why);
        ARB_ASSERT(rc == ARB_EMALFORMED && parsed == NULL);
    }
    event_fuzz_check_hash(prev, &bytes);
    event_fuzz_check_buffers(&event, &data_canon, &bytes);

    arb_buf_free(&bytes);
    arb_buf_free(&data_canon);
    arb_event_clear(&event);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_event_canon(data, size);
}
#endif
