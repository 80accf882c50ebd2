/*
 * wire_fuzz.c - fuzz target for the WebSocket message codec.
 *
 * Input: the first byte chooses the connection's state (bit 0: before hello,
 * no principal); the rest is one frame. Properties checked:
 *   - arb_wire_decode either fails with a known negative code, a non-empty
 *     sentence, an error reply that encodes, and an empty message, or gives
 *     a message of a known type with every bound held;
 *   - without a principal only hello and ping ever decode;
 *   - a propose re-encodes, and its text decodes again to the same command
 *     (names, numbers, json_equal args) and re-encodes to the same bytes;
 *   - every proposal of a sync re-encodes and decodes the same way;
 *   - hello, subscribe and ping re-encode (hello, subscribe) or are echoed in
 *     a pong that is valid JSON.
 */
#include <jansson.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "arbiter/wire.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"
#include "fuzz.h"

static const arb_principal wire_fuzz_principal = {.id = "fuzzer", .role = ARB_ROLE_USER};

/* text must parse as one JSON object. */
static void wire_fuzz_check_json(const arb_buf *buf)
{
    json_t *value = NULL;
    char why[ARB_MESSAGE_BYTES_MAX + 1];
    ARB_ASSERT(arb_json_parse(buf->data, buf->len, ARB_WIRE_FRAME_BYTES_MAX, &value, why,
                              sizeof why) == 0);
    ARB_ASSERT(json_is_object(value));
    json_decref(value);
}

/* command -> propose text -> command -> text: both equal. */
static void wire_fuzz_round_trip(const arb_command *command)
{
    ARB_ASSERT(command->client_seq >= 1 && command->client_seq <= ARB_JSON_INT_MAX);
    ARB_ASSERT(command->stream[0] != '\0' && command->action[0] != '\0');
    ARB_ASSERT(strcmp(command->principal.id, wire_fuzz_principal.id) == 0);
    arb_buf first;
    arb_buf second;
    arb_buf_init(&first, ARB_WIRE_FRAME_BYTES_MAX);
    arb_buf_init(&second, ARB_WIRE_FRAME_BYTES_MAX);
    ARB_ASSERT(arb_wire_encode_propose(&first, command) == 0);
    arb_wire_message again;
    arb_wire_error error;
    ARB_ASSERT(arb_wire_decode(first.data, first.len, &wire_fuzz_principal, &again, &error) == 0);
    ARB_ASSERT(again.type == ARB_WIRE_PROPOSE);
    const arb_command *back = &again.as.propose;
    ARB_ASSERT(back->client_seq == command->client_seq);
    ARB_ASSERT(strcmp(back->stream, command->stream) == 0);
    ARB_ASSERT(strcmp(back->action, command->action) == 0);
    ARB_ASSERT(back->has_expect == command->has_expect);
    ARB_ASSERT(!back->has_expect || back->expect == command->expect);
    ARB_ASSERT(json_equal(back->args, command->args));
    ARB_ASSERT(arb_wire_encode_propose(&second, back) == 0);
    ARB_ASSERT(first.len == second.len && memcmp(first.data, second.data, first.len) == 0);
    arb_wire_message_clear(&again);
    arb_buf_free(&first);
    arb_buf_free(&second);
}

static void wire_fuzz_encode_others(const arb_wire_message *message)
{
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    if (message->type == ARB_WIRE_HELLO) {
        ARB_ASSERT(message->as.hello.proto == ARB_WIRE_PROTO);
        ARB_ASSERT(arb_wire_encode_hello(&buf, message->as.hello.client_id,
                                         message->as.hello.resume) == 0);
    } else if (message->type == ARB_WIRE_SUBSCRIBE || message->type == ARB_WIRE_UNSUBSCRIBE) {
        const arb_wire_subscribe *subscribe = &message->as.subscribe;
        ARB_ASSERT(!subscribe->has_since || subscribe->since <= ARB_JSON_INT_MAX);
        ARB_ASSERT(arb_wire_encode_subscribe(&buf, subscribe->stream, subscribe->has_since,
                                             subscribe->since) == 0);
    } else {
        ARB_ASSERT(message->type == ARB_WIRE_PING);
        const arb_wire_ping *ping = &message->as.ping;
        ARB_ASSERT(arb_wire_encode_pong(&buf, ping->has_nonce ? ping->nonce : NULL) == 0);
    }
    wire_fuzz_check_json(&buf);
    arb_buf_free(&buf);
}

static void wire_fuzz_failed(int rc, const arb_wire_message *message, const arb_wire_error *error)
{
    ARB_ASSERT(rc < 0 && error->code == rc);
    ARB_ASSERT(strcmp(arb_err_name(rc), "UNKNOWN_ERROR") != 0);
    ARB_ASSERT(error->message[0] != '\0');
    ARB_ASSERT(message->type == ARB_WIRE_NONE && message->as.sync.proposals == NULL);
    arb_buf buf;
    arb_buf_init(&buf, 4096);
    ARB_ASSERT(arb_wire_encode_error(&buf, error) == 0);
    wire_fuzz_check_json(&buf);
    arb_buf_free(&buf);
}

int arb_fuzz_wire(const uint8_t *data, size_t size)
{
    bool anonymous = size > 0 && (data[0] & 1) != 0;
    const char *text = size > 0 ? (const char *)data + 1 : "";
    size_t len = size > 0 ? size - 1 : 0;
    const arb_principal *principal = anonymous ? NULL : &wire_fuzz_principal;
    arb_wire_message message;
    arb_wire_error error;
    int rc = arb_wire_decode(text, len, principal, &message, &error);
    if (rc != 0) {
        wire_fuzz_failed(rc, &message, &error);
        return 0;
    }
    ARB_ASSERT(principal != NULL || message.type == ARB_WIRE_HELLO ||
               message.type == ARB_WIRE_PING);
    if (message.type == ARB_WIRE_PROPOSE) {
        wire_fuzz_round_trip(&message.as.propose);
    } else if (message.type == ARB_WIRE_SYNC) {
        ARB_ASSERT(message.as.sync.count >= 1 &&
                   message.as.sync.count <= ARB_WIRE_SYNC_PROPOSALS_MAX);
        for (size_t i = 0; i < message.as.sync.count; i++)
            wire_fuzz_round_trip(&message.as.sync.proposals[i]);
    } else {
        wire_fuzz_encode_others(&message);
    }
    arb_wire_message_clear(&message);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_wire(data, size);
}
#endif
