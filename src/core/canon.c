/*
 * canon.c - canonical JSON, event bytes, BLAKE2b hash chain, strict parsing.
 *
 * The canonical form (documented in canon.h and docs/protocol.md) is what
 * makes a hash or a signature over JSON meaningful: two equal values always
 * give the same bytes. Emission never allocates for objects of up to
 * CANON_STACK_KEYS keys, which covers every event of the built-in domains.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/canon.h"

#define CANON_STACK_KEYS 16

static int canon_string(arb_buf *buf, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int rc = arb_buf_append_char(buf, '"');
    size_t run = 0; /* start of the current run of bytes that need no escape */
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)text[i];
        char escape[7];
        size_t escape_len = 2;
        escape[0] = '\\';
        switch (c) {
        case '"':
            escape[1] = '"';
            break;
        case '\\':
            escape[1] = '\\';
            break;
        case '\b':
            escape[1] = 'b';
            break;
        case '\f':
            escape[1] = 'f';
            break;
        case '\n':
            escape[1] = 'n';
            break;
        case '\r':
            escape[1] = 'r';
            break;
        case '\t':
            escape[1] = 't';
            break;
        default:
            if (c >= 0x20)
                continue;
            memcpy(escape + 1, "u00", 3);
            escape[4] = hex[c >> 4];
            escape[5] = hex[c & 0xf];
            escape_len = 6;
        }
        rc = arb_buf_append(buf, text + run, i - run);
        if (rc == 0)
            rc = arb_buf_append(buf, escape, escape_len);
        run = i + 1;
    }
    if (rc == 0)
        rc = arb_buf_append(buf, text + run, len - run);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '"');
    return rc;
}

static int key_compare(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int canon_value(arb_buf *buf, const json_t *value, int depth);

static int canon_object(arb_buf *buf, const json_t *object, int depth)
{
    size_t count = json_object_size(object);
    const char *stack_keys[CANON_STACK_KEYS];
    const char **keys = stack_keys;
    if (count > CANON_STACK_KEYS) {
        keys = malloc(count * sizeof *keys);
        if (keys == NULL)
            return ARB_ENOMEM;
    }
    size_t n = 0;
    const char *key;
    json_t *member;
    json_object_foreach ((json_t *)object, key, member) {
        ARB_ASSERT(n < count);
        keys[n++] = key;
    }
    qsort(keys, n, sizeof *keys, key_compare);
    int rc = arb_buf_append_char(buf, '{');
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            rc = arb_buf_append_char(buf, ',');
        if (rc == 0)
            rc = canon_string(buf, keys[i], strlen(keys[i]));
        if (rc == 0)
            rc = arb_buf_append_char(buf, ':');
        if (rc == 0)
            rc = canon_value(buf, json_object_get(object, keys[i]), depth + 1);
    }
    if (rc == 0)
        rc = arb_buf_append_char(buf, '}');
    if (keys != stack_keys)
        free(keys);
    return rc;
}

static int canon_value(arb_buf *buf, const json_t *value, int depth)
{
    if (depth > ARB_JSON_DEPTH_MAX)
        return ARB_EINVALID_ARGUMENT;
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return canon_object(buf, value, depth);
    case JSON_ARRAY: {
        int rc = arb_buf_append_char(buf, '[');
        for (size_t i = 0; i < json_array_size(value) && rc == 0; i++) {
            if (i > 0)
                rc = arb_buf_append_char(buf, ',');
            if (rc == 0)
                rc = canon_value(buf, json_array_get(value, i), depth + 1);
        }
        return rc == 0 ? arb_buf_append_char(buf, ']') : rc;
    }
    case JSON_STRING:
        return canon_string(buf, json_string_value(value), json_string_length(value));
    case JSON_INTEGER: {
        json_int_t number = json_integer_value(value);
        if (number > ARB_JSON_INT_MAX || number < -ARB_JSON_INT_MAX)
            return ARB_EINVALID_ARGUMENT;
        return arb_buf_append_i64(buf, (long long)number);
    }
    case JSON_REAL:
        return ARB_EINVALID_ARGUMENT;
    case JSON_TRUE:
        return arb_buf_append_str(buf, "true");
    case JSON_FALSE:
        return arb_buf_append_str(buf, "false");
    case JSON_NULL:
        return arb_buf_append_str(buf, "null");
    }
    return ARB_EINVALID_ARGUMENT;
}

static void buf_truncate(arb_buf *buf, size_t len)
{
    buf->len = len;
    if (buf->data != NULL)
        buf->data[len] = '\0';
}

int arb_canon_json(arb_buf *buf, const json_t *value)
{
    ARB_ASSERT(value != NULL);
    size_t len_before = buf->len;
    int rc = canon_value(buf, value, 1);
    if (rc != 0)
        buf_truncate(buf, len_before); /* leave the buffer as it was */
    return rc;
}

int arb_canon_event(arb_buf *buf, const arb_event *event, const char *data_canon,
                    size_t data_canon_len)
{
    size_t len_before = buf->len;
    /* Keys in byte order: applied_at client_id client_seq data seq stream type. */
    int rc = arb_buf_append_str(buf, "{\"applied_at\":");
    if (rc == 0)
        rc = arb_buf_append_i64(buf, (long long)event->applied_at_ms);
    if (rc == 0)
        rc = arb_buf_append_str(buf, ",\"client_id\":");
    if (rc == 0)
        rc = canon_string(buf, event->client_id, strlen(event->client_id));
    if (rc == 0)
        rc = arb_buf_append_str(buf, ",\"client_seq\":");
    if (rc == 0)
        rc = arb_buf_append_u64(buf, (unsigned long long)event->client_seq);
    if (rc == 0)
        rc = arb_buf_append_str(buf, ",\"data\":");
    if (rc == 0)
        rc = arb_buf_append(buf, data_canon, data_canon_len);
    if (rc == 0)
        rc = arb_buf_append_str(buf, ",\"seq\":");
    if (rc == 0)
        rc = arb_buf_append_u64(buf, (unsigned long long)event->seq);
    if (rc == 0)
        rc = arb_buf_append_str(buf, ",\"stream\":");
    if (rc == 0)
        rc = canon_string(buf, event->stream, strlen(event->stream));
    if (rc == 0)
        rc = arb_buf_append_str(buf, ",\"type\":");
    if (rc == 0)
        rc = canon_string(buf, event->type, strlen(event->type));
    if (rc == 0)
        rc = arb_buf_append_char(buf, '}');
    if (rc != 0)
        buf_truncate(buf, len_before); /* leave the buffer as it was */
    return rc;
}

void arb_hash_chain(const uint8_t prev[ARB_HASH_BYTES], const void *bytes, size_t len,
                    uint8_t hash_out[ARB_HASH_BYTES])
{
    crypto_generichash_state state;
    int rc = crypto_generichash_init(&state, NULL, 0, ARB_HASH_BYTES);
    ARB_ASSERT(rc == 0);
    crypto_generichash_update(&state, prev, ARB_HASH_BYTES);
    crypto_generichash_update(&state, bytes, len);
    rc = crypto_generichash_final(&state, hash_out, ARB_HASH_BYTES);
    ARB_ASSERT(rc == 0);
}

void arb_hash(const void *bytes, size_t len, uint8_t hash_out[ARB_HASH_BYTES])
{
    int rc = crypto_generichash(hash_out, ARB_HASH_BYTES, bytes, len, NULL, 0);
    ARB_ASSERT(rc == 0);
}

void arb_hash_hex(const uint8_t hash[ARB_HASH_BYTES], char out[2 * ARB_HASH_BYTES + 1])
{
    sodium_bin2hex(out, 2 * ARB_HASH_BYTES + 1, hash, ARB_HASH_BYTES);
}

static int json_depth_ok(const json_t *value, int depth)
{
    if (depth > ARB_JSON_DEPTH_MAX)
        return 0;
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *)value, key, member) {
            if (!json_depth_ok(member, depth + 1))
                return 0;
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++)
            if (!json_depth_ok(json_array_get(value, i), depth + 1))
                return 0;
    }
    return 1;
}

int arb_json_parse(const char *text, size_t len, size_t max_bytes, json_t **value_out, char *why,
                   size_t why_size)
{
    *value_out = NULL;
    if (len > max_bytes) {
        snprintf(why, why_size, "%zu bytes is more than the limit of %zu", len, max_bytes);
        return ARB_ETOO_LARGE;
    }
    json_error_t error;
    json_t *value = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (value == NULL) {
        snprintf(why, why_size, "%s at line %d column %d", error.text, error.line, error.column);
        return ARB_EMALFORMED;
    }
    if (!json_depth_ok(value, 1)) {
        json_decref(value);
        snprintf(why, why_size, "nesting deeper than %d", ARB_JSON_DEPTH_MAX);
        return ARB_EMALFORMED;
    }
    *value_out = value;
    return 0;
}
