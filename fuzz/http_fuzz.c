/*
 * http_fuzz.c - fuzz target for what the HTTP API parses itself: routes
 * (src/net/route.c), the numbers of query arguments and If-None-Match, and
 * request bodies (arb_wire_decode_http). libwebsockets parses the HTTP
 * framing; everything after it is ours and is attacked here.
 *
 * Input: byte 0 picks the method (GET, POST, other) and whether the body is
 * a command or a sync; then a path up to the first newline, then the body.
 * Properties checked:
 *   - a route is found only for its own method, and its stream is KIND:NAME
 *     within the bound; failures are one of the documented codes; a hand
 *     route's number is 1 .. 2^53-1 or refused;
 *   - decimal and etag parsing agree with a reference (strtoull on a
 *     digits-only text without leading zeros) and hold their ranges;
 *   - a body either fails with a known code, a sentence and an error reply
 *     that encodes, or decodes to proposals that re-encode; a command carries
 *     the path's stream and the header's client_seq.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "arbiter/wire.h"
#include "core/assert.h"
#include "core/buf.h"
#include "fuzz.h"
#include "net/route.h"

static const arb_principal http_fuzz_principal = {.id = "fuzzer", .role = ARB_ROLE_USER};

static void http_fuzz_route(arb_method method, const char *path)
{
    arb_route route = ARB_ROUTE_NONE;
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    int rc = arb_route_parse(method, path, &route, stream, sizeof stream);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_ENOTFOUND || rc == ARB_EUSAGE || rc == ARB_ETOO_LARGE ||
                   rc == ARB_EINVALID_STREAM);
        return;
    }
    ARB_ASSERT(route != ARB_ROUTE_NONE);
    bool post = route == ARB_ROUTE_COMMANDS || route == ARB_ROUTE_SYNC;
    ARB_ASSERT(method == (post ? ARB_METHOD_POST : ARB_METHOD_GET));
    bool has_stream = route == ARB_ROUTE_STATE || route == ARB_ROUTE_EVENTS ||
                      route == ARB_ROUTE_COMMANDS || route == ARB_ROUTE_HAND;
    if (route == ARB_ROUTE_HAND) {
        uint64_t hand = 0;
        int hand_rc = arb_route_hand(path, &hand);
        ARB_ASSERT(hand_rc == 0 || hand_rc == ARB_EINVALID_ARGUMENT);
        ARB_ASSERT(hand_rc != 0 || (hand >= 1 && hand <= (uint64_t)ARB_JSON_INT_MAX));
    }
    ARB_ASSERT(has_stream == (stream[0] != '\0'));
    if (has_stream) {
        const char *colon = strchr(stream, ':');
        ARB_ASSERT(colon != NULL && colon != stream && colon[1] != '\0');
        ARB_ASSERT(strlen(stream) <= ARB_STREAM_NAME_BYTES_MAX);
        ARB_ASSERT(strstr(path, stream) != NULL);
    }
}

static void http_fuzz_numbers(const char *text)
{
    uint64_t value = 0;
    size_t len = strlen(text);
    bool digits =
        len > 0 && len <= 20 && strspn(text, "0123456789") == len && (len == 1 || text[0] != '0');
    int rc = arb_route_decimal(text, 1, (uint64_t)ARB_JSON_INT_MAX, &value);
    if (rc == 0) {
        ARB_ASSERT(digits && value >= 1 && value <= (uint64_t)ARB_JSON_INT_MAX);
        ARB_ASSERT(value == strtoull(text, NULL, 10));
    } else {
        ARB_ASSERT(rc == ARB_EINVALID_ARGUMENT);
        ARB_ASSERT(!digits || len == 20 || strtoull(text, NULL, 10) == 0 ||
                   strtoull(text, NULL, 10) > (uint64_t)ARB_JSON_INT_MAX);
    }
    rc = arb_route_etag(text, &value);
    ARB_ASSERT(rc == 0 || rc == ARB_EINVALID_ARGUMENT);
    ARB_ASSERT(rc != 0 || value <= (uint64_t)ARB_JSON_INT_MAX);
}

static void http_fuzz_body(bool command, const char *stream, const char *body, size_t len)
{
    arb_wire_message message;
    arb_wire_error error;
    uint64_t client_seq = 1 + (len % 1000);
    int rc = arb_wire_decode_http(body, len, &http_fuzz_principal, command ? stream : NULL,
                                  client_seq, &message, &error);
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    if (rc != 0) {
        ARB_ASSERT(rc < 0 && error.code == rc && error.message[0] != '\0');
        ARB_ASSERT(strcmp(arb_err_name(rc), "UNKNOWN_ERROR") != 0);
        ARB_ASSERT(message.type == ARB_WIRE_NONE);
        ARB_ASSERT(arb_wire_encode_error(&buf, &error) == 0);
        arb_buf_free(&buf);
        return;
    }
    if (command) {
        ARB_ASSERT(message.type == ARB_WIRE_PROPOSE);
        ARB_ASSERT(strcmp(message.as.propose.stream, stream) == 0);
        ARB_ASSERT(message.as.propose.client_seq == client_seq);
        ARB_ASSERT(arb_wire_encode_propose(&buf, &message.as.propose) == 0);
    } else {
        ARB_ASSERT(message.type == ARB_WIRE_SYNC && message.as.sync.count >= 1);
        for (size_t i = 0; i < message.as.sync.count; i++)
            ARB_ASSERT(arb_wire_encode_propose(&buf, &message.as.sync.proposals[i]) == 0);
    }
    arb_wire_message_clear(&message);
    arb_buf_free(&buf);
}

int arb_fuzz_http(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    const char *rest = (const char *)data + 1;
    size_t rest_len = size - 1;
    const char *newline = memchr(rest, '\n', rest_len);
    size_t path_len = newline != NULL ? (size_t)(newline - rest) : rest_len;
    char *path = malloc(path_len + 1);
    ARB_ASSERT(path != NULL);
    memcpy(path, rest, path_len);
    path[path_len] = '\0'; /* an embedded NUL just ends the path early */
    static const arb_method methods[] = {ARB_METHOD_GET, ARB_METHOD_POST, ARB_METHOD_OTHER};
    http_fuzz_route(methods[mode % 3], path);
    http_fuzz_numbers(path);
    if (newline != NULL) {
        const char *body = newline + 1;
        size_t body_len = rest_len - path_len - 1;
        http_fuzz_body((mode & 4) == 0, "ledger:fuzz", body, body_len);
    }
    free(path);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_http(data, size);
}
#endif
