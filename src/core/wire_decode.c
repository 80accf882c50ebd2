/*
 * wire_decode.c - client -> server messages: one JSON text frame to one
 * arb_wire_message, strictly (the contract is in wire.h and docs/protocol.md).
 *
 * One dispatcher checks what every message shares (size, JSON, object, a
 * string "type", the allowed keys, the hello-first rule) and then one decoder
 * per type reads its fields through typed readers (integer in range, bounded
 * name, boolean, args). Every reader either fills its output or fails with a
 * code, the field's path and a sentence in the wire_ctx's error.
 *
 * Invariants: on failure the message is empty (cleared) and holds no
 * reference; the parsed JSON document is always released before returning;
 * a decoded command's principal is the caller's, never the client's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/wire.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"

/* What a decoder needs besides its JSON: where errors go, the path prefix of
 * the object being read ("" or "proposals[3]."), the connection's principal
 * and a scratch buffer for the canonical form of args. */
typedef struct wire_ctx {
    arb_wire_error *error;
    char prefix[32];
    const arb_principal *principal;
    arb_buf scratch;
} wire_ctx;

typedef struct wire_kind {
    const char *name;
    arb_wire_type type;
    const char *const *keys; /* the allowed keys, NULL-terminated */
    int (*decode)(wire_ctx *ctx, const json_t *object, arb_wire_message *message);
} wire_kind;

/* A UTF-8 string cut to fit size bytes (with the NUL) without splitting a
 * code point. */
static void wire_copy_cut(char *dst, size_t size, const char *src)
{
    ARB_ASSERT(size > 0);
    size_t len = strlen(src);
    if (len >= size) {
        len = size - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The length of the valid UTF-8 sequence at text (as the JSON parser
 * accepts it: no overlong form, no surrogate, at most U+10FFFF), else 0. */
static size_t wire_utf8_length(const unsigned char *text)
{
    unsigned lead = text[0];
    if (lead < 0x80)
        return 1;
    size_t length = lead >= 0xC2 && lead <= 0xDF   ? 2
                    : lead >= 0xE0 && lead <= 0xEF ? 3
                    : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                   : 0;
    if (length == 0)
        return 0;
    unsigned long code = lead & (0x3Fu >> (length - 1));
    for (size_t i = 1; i < length; i++) {
        if ((text[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        code = code << 6 | (text[i] & 0x3Fu);
    }
    static const unsigned long smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return length;
}

/* Replace every byte that is not part of valid UTF-8 with '?': the parser's
 * sentences quote the input, which may be any bytes, and the error reply
 * must be valid JSON. */
static void wire_utf8_clean(char *text)
{
    unsigned char *p = (unsigned char *)text;
    while (*p != '\0') {
        size_t length = wire_utf8_length(p);
        if (length == 0) {
            *p = '?';
            length = 1;
        }
        p += length;
    }
}

void arb_wire_error_set(arb_wire_error *error, int code, const char *field, const char *message)
{
    ARB_ASSERT(code < 0);
    error->code = code;
    wire_copy_cut(error->field, sizeof error->field, field != NULL ? field : "");
    wire_copy_cut(error->message, sizeof error->message,
                  message != NULL ? message : arb_err_message(code));
    wire_utf8_clean(error->field);
    wire_utf8_clean(error->message);
}

__attribute__((format(printf, 4, 5))) static int
wire_fail(wire_ctx *ctx, int code, const char *field, const char *format, ...)
{
    char path[2 * ARB_WIRE_FIELD_BYTES_MAX];
    snprintf(path, sizeof path, "%s%s", ctx->prefix, field);
    char message[ARB_MESSAGE_BYTES_MAX + 1];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    arb_wire_error_set(ctx->error, code, path, message);
    return code;
}

/* Every key of object must be one of keys (strict: a typo is an error, not
 * an ignored field). */
static int wire_check_keys(wire_ctx *ctx, const json_t *object, const char *const *keys)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)object, key, value) {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(key, keys[i]) == 0;
        if (!known)
            return wire_fail(ctx, ARB_EINVALID_ARGUMENT, key, "unknown field");
    }
    return 0;
}

/* An integer field in min .. 2^53-1. *has_out (may be NULL when required)
 * tells whether an optional one was present. */
static int wire_u64(wire_ctx *ctx, const json_t *object, const char *name, bool required,
                    uint64_t min, bool *has_out, uint64_t *value_out)
{
    ARB_ASSERT(required || has_out != NULL);
    json_t *value = json_object_get(object, name);
    if (has_out != NULL)
        *has_out = value != NULL;
    if (value == NULL) {
        if (required)
            return wire_fail(ctx, ARB_EINVALID_ARGUMENT, name, "%s is missing", name);
        return 0;
    }
    json_int_t number = json_is_integer(value) ? json_integer_value(value) : -1;
    if (!json_is_integer(value) || number < (json_int_t)min || number > ARB_JSON_INT_MAX)
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, name,
                         "%s must be an integer from %llu to 2^53-1", name,
                         (unsigned long long)min);
    *value_out = (uint64_t)number;
    return 0;
}

/* A non-empty string field that fits dst (size bytes with the NUL). */
static int wire_name(wire_ctx *ctx, const json_t *object, const char *name, bool required,
                     char *dst, size_t size, bool *has_out)
{
    ARB_ASSERT(required || has_out != NULL);
    json_t *value = json_object_get(object, name);
    if (has_out != NULL)
        *has_out = value != NULL;
    if (value == NULL) {
        if (required)
            return wire_fail(ctx, ARB_EINVALID_ARGUMENT, name, "%s is missing", name);
        return 0;
    }
    if (!json_is_string(value) || json_string_length(value) == 0)
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, name, "%s must be a non-empty string", name);
    size_t len = json_string_length(value);
    if (len >= size)
        return wire_fail(ctx, ARB_ETOO_LARGE, name, "%s is longer than %zu bytes", name, size - 1);
    /* The parser refuses \u0000, so the length is the C string's. */
    ARB_ASSERT(strlen(json_string_value(value)) == len);
    memcpy(dst, json_string_value(value), len + 1);
    return 0;
}

static int wire_bool(wire_ctx *ctx, const json_t *object, const char *name, bool *value_out)
{
    json_t *value = json_object_get(object, name);
    if (value == NULL)
        return 0;
    if (!json_is_boolean(value))
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, name, "%s must be true or false", name);
    *value_out = json_is_true(value);
    return 0;
}

/* args: an object of integer-only JSON whose canonical form fits the bound;
 * canon is the check (the engine hashes and stores that form). */
static int wire_args(wire_ctx *ctx, const json_t *object, json_t **args_out)
{
    json_t *args = json_object_get(object, "args");
    if (args == NULL)
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, "args", "args is missing");
    if (!json_is_object(args))
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, "args", "args must be an object");
    arb_buf_reset(&ctx->scratch);
    int rc = arb_canon_json(&ctx->scratch, args);
    if (rc == ARB_ETOO_LARGE)
        return wire_fail(ctx, rc, "args", "args are larger than %d bytes in canonical form",
                         ARB_ARGS_BYTES_MAX);
    if (rc == ARB_ENOMEM)
        return wire_fail(ctx, rc, "args", "out of memory");
    if (rc != 0)
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, "args",
                         "args may hold only integers within 2^53-1, no fractions");
    *args_out = json_incref(args);
    return 0;
}

/* The fields of one proposal (a propose message or a sync item) into
 * *command, which is empty before and, on failure, after. */
static int wire_proposal(wire_ctx *ctx, const json_t *object, arb_command *command)
{
    ARB_ASSERT(ctx->principal != NULL && command->args == NULL);
    command->principal = *ctx->principal;
    int rc = wire_u64(ctx, object, "client_seq", true, 1, NULL, &command->client_seq);
    if (rc == 0)
        rc = wire_name(ctx, object, "stream", true, command->stream, sizeof command->stream, NULL);
    if (rc == 0)
        rc = wire_name(ctx, object, "action", true, command->action, sizeof command->action, NULL);
    if (rc == 0)
        rc = wire_u64(ctx, object, "expect", false, 0, &command->has_expect, &command->expect);
    if (rc == 0)
        rc = wire_args(ctx, object, &command->args);
    ARB_ASSERT((rc == 0) == (command->args != NULL));
    return rc;
}

static bool wire_client_id_valid(const char *id)
{
    for (const char *p = id; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':' || c == '@'))
            return false;
    }
    return id[0] != '\0';
}

static int wire_decode_hello(wire_ctx *ctx, const json_t *object, arb_wire_message *message)
{
    arb_wire_hello *hello = &message->as.hello;
    int rc = wire_u64(ctx, object, "proto", true, 1, NULL, &hello->proto);
    if (rc == 0 && hello->proto != ARB_WIRE_PROTO)
        rc = wire_fail(ctx, ARB_EUNSUPPORTED_VERSION, "proto",
                       "protocol version %llu is not supported; this server speaks %d",
                       (unsigned long long)hello->proto, ARB_WIRE_PROTO);
    if (rc == 0)
        rc = wire_name(ctx, object, "client_id", true, hello->client_id, sizeof hello->client_id,
                       NULL);
    if (rc == 0 && !wire_client_id_valid(hello->client_id))
        rc = wire_fail(ctx, ARB_EINVALID_ARGUMENT, "client_id",
                       "client_id may hold only letters, digits and _ - . : @");
    if (rc == 0)
        rc = wire_u64(ctx, object, "resume", false, 0, &hello->has_resume, &hello->resume);
    return rc;
}

static int wire_decode_propose(wire_ctx *ctx, const json_t *object, arb_wire_message *message)
{
    return wire_proposal(ctx, object, &message->as.propose);
}

static int wire_decode_subscribe(wire_ctx *ctx, const json_t *object, arb_wire_message *message)
{
    arb_wire_subscribe *subscribe = &message->as.subscribe;
    int rc =
        wire_name(ctx, object, "stream", true, subscribe->stream, sizeof subscribe->stream, NULL);
    if (rc == 0 && message->type == ARB_WIRE_SUBSCRIBE)
        rc = wire_u64(ctx, object, "since", false, 0, &subscribe->has_since, &subscribe->since);
    return rc;
}

static const char *const wire_item_keys[] = {"client_seq", "stream", "action",
                                             "args",       "expect", NULL};

static int wire_decode_sync(wire_ctx *ctx, const json_t *object, arb_wire_message *message)
{
    arb_wire_sync *sync = &message->as.sync;
    int rc = wire_bool(ctx, object, "atomic", &sync->atomic);
    if (rc != 0)
        return rc;
    json_t *items = json_object_get(object, "proposals");
    if (items == NULL)
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, "proposals", "proposals is missing");
    if (!json_is_array(items) || json_array_size(items) == 0)
        return wire_fail(ctx, ARB_EINVALID_ARGUMENT, "proposals",
                         "proposals must be a non-empty array");
    size_t count = json_array_size(items);
    if (count > ARB_WIRE_SYNC_PROPOSALS_MAX)
        return wire_fail(ctx, ARB_ETOO_LARGE, "proposals", "a sync holds at most %d proposals",
                         ARB_WIRE_SYNC_PROPOSALS_MAX);
    sync->proposals = calloc(count, sizeof *sync->proposals);
    if (sync->proposals == NULL)
        return wire_fail(ctx, ARB_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < count && rc == 0; i++) {
        json_t *item = json_array_get(items, i);
        snprintf(ctx->prefix, sizeof ctx->prefix, "proposals[%zu]", i);
        if (!json_is_object(item))
            return wire_fail(ctx, ARB_EINVALID_ARGUMENT, "", "each proposal must be an object");
        snprintf(ctx->prefix, sizeof ctx->prefix, "proposals[%zu].", i);
        rc = wire_check_keys(ctx, item, wire_item_keys);
        if (rc == 0)
            rc = wire_proposal(ctx, item, &sync->proposals[i]);
        sync->count = rc == 0 ? i + 1 : i;
    }
    return rc;
}

static int wire_decode_ping(wire_ctx *ctx, const json_t *object, arb_wire_message *message)
{
    arb_wire_ping *ping = &message->as.ping;
    return wire_name(ctx, object, "nonce", false, ping->nonce, sizeof ping->nonce,
                     &ping->has_nonce);
}

static const char *const wire_hello_keys[] = {"type", "proto", "client_id", "resume", NULL};
static const char *const wire_propose_keys[] = {"type", "client_seq", "stream", "action",
                                                "args", "expect",     NULL};
static const char *const wire_subscribe_keys[] = {"type", "stream", "since", NULL};
static const char *const wire_unsubscribe_keys[] = {"type", "stream", NULL};
static const char *const wire_sync_keys[] = {"type", "proposals", "atomic", NULL};
static const char *const wire_ping_keys[] = {"type", "nonce", NULL};

/* The client messages: name, type, allowed keys, decoder. */
static const wire_kind wire_kinds[] = {
    {"hello", ARB_WIRE_HELLO, wire_hello_keys, wire_decode_hello},
    {"propose", ARB_WIRE_PROPOSE, wire_propose_keys, wire_decode_propose},
    {"subscribe", ARB_WIRE_SUBSCRIBE, wire_subscribe_keys, wire_decode_subscribe},
    {"unsubscribe", ARB_WIRE_UNSUBSCRIBE, wire_unsubscribe_keys, wire_decode_subscribe},
    {"sync", ARB_WIRE_SYNC, wire_sync_keys, wire_decode_sync},
    {"ping", ARB_WIRE_PING, wire_ping_keys, wire_decode_ping},
};

/* The kind named by the object's "type", or NULL with the error set. */
static const wire_kind *wire_kind_of(wire_ctx *ctx, const json_t *object, int *rc_out)
{
    json_t *type = json_object_get(object, "type");
    if (type == NULL || !json_is_string(type)) {
        *rc_out =
            wire_fail(ctx, ARB_EMALFORMED, "type",
                      type == NULL ? "a message needs a \"type\"" : "\"type\" must be a string");
        return NULL;
    }
    for (size_t i = 0; i < sizeof wire_kinds / sizeof wire_kinds[0]; i++)
        if (strcmp(json_string_value(type), wire_kinds[i].name) == 0)
            return &wire_kinds[i];
    *rc_out = wire_fail(ctx, ARB_EUNKNOWN_MESSAGE, "type",
                        "type must be hello, propose, subscribe, unsubscribe, sync or ping");
    return NULL;
}

static int wire_decode_object(wire_ctx *ctx, const json_t *object, arb_wire_message *message)
{
    if (!json_is_object(object))
        return wire_fail(ctx, ARB_EMALFORMED, "", "a message must be a JSON object");
    int rc = 0;
    const wire_kind *kind = wire_kind_of(ctx, object, &rc);
    if (kind == NULL)
        return rc;
    if (ctx->principal == NULL && kind->type != ARB_WIRE_HELLO && kind->type != ARB_WIRE_PING)
        return wire_fail(ctx, ARB_ENOT_AUTHENTICATED, "type", "send hello before %s", kind->name);
    rc = wire_check_keys(ctx, object, kind->keys);
    if (rc != 0)
        return rc;
    message->type = kind->type;
    return kind->decode(ctx, object, message);
}

/* What a body adds before the common decoder runs: nothing for a frame; for
 * an HTTP body, the keys it may hold and the fields from path and headers. */
typedef struct wire_http_parts {
    const char *stream; /* NULL: a sync body */
    uint64_t client_seq;
} wire_http_parts;

static const char *const wire_http_command_keys[] = {"action", "args", "expect", NULL};
static const char *const wire_http_sync_keys[] = {"proposals", "atomic", NULL};

/* Turn an HTTP body into the message it stands for. The body's own keys are
 * checked first (strictly), then the parts from the path and the headers
 * are added, so that one decoder checks everything. */
static int wire_http_complete(wire_ctx *ctx, json_t *document, const wire_http_parts *http)
{
    if (!json_is_object(document))
        return wire_fail(ctx, ARB_EMALFORMED, "", "the body must be a JSON object");
    bool command = http->stream != NULL;
    int rc = wire_check_keys(ctx, document, command ? wire_http_command_keys : wire_http_sync_keys);
    if (rc != 0)
        return rc;
    if (command && (json_object_set_new(document, "stream", json_string(http->stream)) != 0 ||
                    json_object_set_new(document, "client_seq",
                                        json_integer((json_int_t)http->client_seq)) != 0))
        return wire_fail(ctx, ARB_ENOMEM, "", "out of memory");
    if (json_object_set_new(document, "type", json_string(command ? "propose" : "sync")) != 0)
        return wire_fail(ctx, ARB_ENOMEM, "", "out of memory");
    return 0;
}

/* Parse text, complete it when it is an HTTP body (http non-NULL), decode. */
static int wire_decode_text(const char *text, size_t len, const arb_principal *principal,
                            const wire_http_parts *http, arb_wire_message *message_out,
                            arb_wire_error *error_out)
{
    ARB_ASSERT(message_out != NULL && error_out != NULL);
    ARB_ASSERT(text != NULL || len == 0);
    arb_wire_message_init(message_out);
    memset(error_out, 0, sizeof *error_out);
    wire_ctx ctx = {.error = error_out, .prefix = "", .principal = principal};
    json_t *document = NULL;
    char why[ARB_MESSAGE_BYTES_MAX + 1];
    int rc = arb_json_parse(text != NULL ? text : "", len, ARB_WIRE_FRAME_BYTES_MAX, &document, why,
                            sizeof why);
    if (rc != 0) {
        arb_wire_error_set(error_out, rc, "", why);
        return rc;
    }
    arb_buf_init(&ctx.scratch, ARB_ARGS_BYTES_MAX);
    if (http != NULL)
        rc = wire_http_complete(&ctx, document, http);
    if (rc == 0)
        rc = wire_decode_object(&ctx, document, message_out);
    arb_buf_free(&ctx.scratch);
    json_decref(document);
    if (rc != 0)
        arb_wire_message_clear(message_out);
    ARB_ASSERT(rc != 0 || message_out->type != ARB_WIRE_NONE);
    ARB_ASSERT(rc == 0 || error_out->code == rc);
    return rc;
}

int arb_wire_decode(const char *text, size_t len, const arb_principal *principal,
                    arb_wire_message *message_out, arb_wire_error *error_out)
{
    return wire_decode_text(text, len, principal, NULL, message_out, error_out);
}

int arb_wire_decode_http(const char *text, size_t len, const arb_principal *principal,
                         const char *stream, uint64_t client_seq, arb_wire_message *message_out,
                         arb_wire_error *error_out)
{
    ARB_ASSERT(principal != NULL);
    wire_http_parts http = {.stream = stream, .client_seq = client_seq};
    return wire_decode_text(text, len, principal, &http, message_out, error_out);
}

void arb_wire_message_init(arb_wire_message *message)
{
    memset(message, 0, sizeof *message);
}

void arb_wire_message_clear(arb_wire_message *message)
{
    if (message->type == ARB_WIRE_PROPOSE)
        arb_command_clear(&message->as.propose);
    if (message->type == ARB_WIRE_SYNC) {
        for (size_t i = 0; i < message->as.sync.count; i++)
            arb_command_clear(&message->as.sync.proposals[i]);
        free(message->as.sync.proposals);
    }
    arb_wire_message_init(message);
}
