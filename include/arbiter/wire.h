/*
 * wire.h - the WebSocket message codec: JSON text frames to tagged structs and
 * back. Pure: no socket, no libwebsockets (only src/net/ uses those).
 *
 * The contract is docs/protocol.md, "WebSocket messages". This header is its
 * C form:
 *
 *   client -> server, decoded strictly by arb_wire_decode():
 *     hello, propose, subscribe, unsubscribe, sync, ping
 *   server -> client, encoded by arb_wire_encode_*():
 *     welcome, committed, rejected, snapshot, patch, sync_result, pong, error
 *   (and hello, propose, subscribe encoders for clients and tests)
 *
 * Decoding is strict: every message is one JSON object with a string "type";
 * a missing or mistyped field, an unknown extra field, a number out of range
 * or a name over its limits.h bound fails with a code from error.h, the name
 * of the offending field and a sentence, ready for the `error` reply. A
 * failure leaves nothing behind: *message_out is then empty (type 0, no
 * reference, no allocation).
 *
 * Encoding appends compact JSON text to a caller's arb_buf (bounded by its
 * max). On any failure the buffer is restored to its length before the call,
 * so a caller may encode several messages into one buffer. Encoders allocate
 * nothing of their own besides the buffer's growth; keys come out in the
 * order documented per function (the same order as in docs/protocol.md).
 *
 * Ownership: the caller owns every struct passed in. Names are copied into
 * fixed arrays; json_t pointers in a decoded message hold one reference each,
 * owned by the message and dropped by arb_wire_message_clear(), as is the
 * proposals array of a sync. Borrowed input pointers are only read during the
 * call.
 */
#ifndef ARBITER_WIRE_H
#define ARBITER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/limits.h"
#include "arbiter/types.h"

/* The WebSocket subprotocol, and the one protocol version it speaks. */
#define ARB_WIRE_SUBPROTOCOL "arbiter.v1"
#define ARB_WIRE_PROTO 1

typedef struct arb_buf arb_buf; /* core/buf.h */

/* Client -> server message types (0: none, an empty message). */
typedef enum arb_wire_type {
    ARB_WIRE_NONE = 0,
    ARB_WIRE_HELLO = 1,
    ARB_WIRE_PROPOSE = 2,
    ARB_WIRE_SUBSCRIBE = 3,
    ARB_WIRE_UNSUBSCRIBE = 4,
    ARB_WIRE_SYNC = 5,
    ARB_WIRE_PING = 6,
} arb_wire_type;

/* hello {proto, client_id, resume?} */
typedef struct arb_wire_hello {
    uint64_t proto;                              /* always ARB_WIRE_PROTO once decoded */
    char client_id[ARB_CLIENT_ID_BYTES_MAX + 1]; /* [A-Za-z0-9_.:@-]+ */
    bool has_resume;
    uint64_t resume; /* the client_seq up to which the client holds every outcome */
} arb_wire_hello;

/* subscribe {stream, since?} and unsubscribe {stream} */
typedef struct arb_wire_subscribe {
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1]; /* bounded; syntax checked by the engine */
    bool has_since;
    uint64_t since; /* 0 .. 2^53-1: the last seq the client holds */
} arb_wire_subscribe;

/* sync {proposals: [...], atomic?} */
typedef struct arb_wire_sync {
    arb_command *proposals; /* owned (malloc); count entries, each with its own args */
    size_t count;           /* 1 .. ARB_WIRE_SYNC_PROPOSALS_MAX */
    bool atomic;            /* false when absent */
} arb_wire_sync;

/* ping {nonce?} */
typedef struct arb_wire_ping {
    bool has_nonce;
    char nonce[ARB_WIRE_NONCE_BYTES_MAX + 1];
} arb_wire_ping;

/* A decoded client message: type selects the member of as. */
typedef struct arb_wire_message {
    arb_wire_type type;
    union {
        arb_wire_hello hello;
        arb_command propose;          /* principal from the caller; args owned */
        arb_wire_subscribe subscribe; /* also unsubscribe (has_since false) */
        arb_wire_sync sync;
        arb_wire_ping ping;
    } as;
} arb_wire_message;

/* Why a frame was refused: what the `error` reply carries. */
typedef struct arb_wire_error {
    int code;                                 /* from error.h, negative */
    char field[ARB_WIRE_FIELD_BYTES_MAX + 1]; /* "" when no one field is at fault */
    char message[ARB_MESSAGE_BYTES_MAX + 1];  /* a sentence for people */
} arb_wire_error;

/* Set *message to the empty message (type ARB_WIRE_NONE). */
void arb_wire_message_init(arb_wire_message *message);
/* Drop every reference and allocation the message holds; it is empty after. */
void arb_wire_message_clear(arb_wire_message *message);

/* Decode one frame, text[0..len) (not NUL-terminated; len at most
 * ARB_WIRE_FRAME_BYTES_MAX, else ARB_ETOO_LARGE).
 *
 * principal: the connection's authenticated identity, or NULL before its
 * hello. The commands of propose and sync get a copy of it: a client never
 * names the proposer inside a propose. With NULL, only hello and ping decode;
 * anything else is ARB_ENOT_AUTHENTICATED (field "type").
 *
 * Returns 0 with *message_out filled (the caller clears it), or a negative
 * code with *message_out empty and *error_out filled:
 *   ARB_ETOO_LARGE           frame, name, args or proposal count over a bound
 *   ARB_EMALFORMED           not JSON (message gives the position), not an
 *                            object, or "type" missing / not a string
 *   ARB_EUNKNOWN_MESSAGE     "type" names no client message
 *   ARB_EINVALID_ARGUMENT    a field missing, mistyped, empty, out of range,
 *                            unknown (strict), or args not integer-only JSON
 *   ARB_EUNSUPPORTED_VERSION hello's proto is not ARB_WIRE_PROTO
 *   ARB_ENOT_AUTHENTICATED   see principal
 *   ARB_ENOMEM               out of memory
 * error_out->field names the field: "client_seq", "args",
 * "proposals[3].stream", the unknown key itself, or "" for the whole frame. */
int arb_wire_decode(const char *text, size_t len, const arb_principal *principal,
                    arb_wire_message *message_out, arb_wire_error *error_out);

/* Decode an HTTP request body with the same strictness: with stream
 * non-NULL, a command body {action, args, expect?} whose stream comes from
 * the path and client_seq from the Idempotency-Key header (a propose
 * message); with stream NULL, a sync body {proposals, atomic?}. principal is
 * required. Returns and errors as arb_wire_decode (a client_seq of 0 or over
 * 2^53-1 is ARB_EINVALID_ARGUMENT on field "client_seq"). */
int arb_wire_decode_http(const char *text, size_t len, const arb_principal *principal,
                         const char *stream, uint64_t client_seq, arb_wire_message *message_out,
                         arb_wire_error *error_out);

/* Fill *error with code, field (NULL: none; cut to the bound at a UTF-8
 * boundary) and a message (NULL: arb_err_message(code)). For replies the
 * network layer makes itself (binary frame, queue full). */
void arb_wire_error_set(arb_wire_error *error, int code, const char *field, const char *message);

/* Server -> client encoders. Each returns 0, ARB_ETOO_LARGE when the buffer's
 * max is reached, ARB_EINVALID_ARGUMENT when a json_t holds what JSON cannot
 * carry exactly (a real, an integer beyond 2^53-1, nesting over the bound)
 * or ARB_ENOMEM; on failure buf is as before the call. JSON values (result,
 * details, state, event data) are written in canonical form. */

/* {"type":"welcome","proto":1,"server_time":MS,"limits":{"frame_bytes",
 *  "args_bytes","sync_proposals","subscriptions","pending_proposals"}} */
int arb_wire_encode_welcome(arb_buf *buf, int64_t server_time_ms);

/* {"type":"committed","client_seq","stream","seq","seq_last","events":[EVENT],
 *  "result","replay"}; seq is the outcome's seq_first; result null when NULL.
 * EVENT has arb_event_to_json()'s keys, in its order: "stream","seq","type",
 * "data","client_id","client_seq","applied_at","hash". outcome->kind must be
 * ARB_OUTCOME_COMMITTED. */
int arb_wire_encode_committed(arb_buf *buf, const arb_outcome *outcome);

/* {"type":"rejected","client_seq","stream","code","message","details",
 *  "version","replay"[,"snapshot"]}; code by its wire name; details null when
 * NULL; snapshot (the sender's view of the stream at version; borrowed) is
 * left out when NULL. outcome->kind must be ARB_OUTCOME_REJECTED. */
int arb_wire_encode_rejected(arb_buf *buf, const arb_outcome *outcome, const json_t *snapshot);

/* committed or rejected (without snapshot), by outcome->kind. */
int arb_wire_encode_outcome(arb_buf *buf, const arb_outcome *outcome);

/* {"type":"snapshot","stream","seq","state"}: state (borrowed) at seq. */
int arb_wire_encode_snapshot(arb_buf *buf, const char *stream, uint64_t seq, const json_t *state);

/* {"type":"patch","stream","seq","events":[EVENT]}: events[0..count) of one
 * stream, in seq order, count >= 1; seq is the last event's (the stream's
 * version after the patch). */
int arb_wire_encode_patch(arb_buf *buf, const char *stream, const arb_event *events, size_t count);

/* {"type":"sync_result","results":[R...]} with, per outcome in order,
 * R = {"client_seq","status":"committed","seq","seq_last","result"} or
 *     {"client_seq","status":"rejected","code","message","details"}
 * (result and details null when NULL). */
int arb_wire_encode_sync_result(arb_buf *buf, const arb_outcome *outcomes, size_t count);

/* {"type":"pong"[,"nonce"]}; nonce (borrowed) left out when NULL. */
int arb_wire_encode_pong(arb_buf *buf, const char *nonce);

/* {"type":"error","code","field"?,"message"[,"versions":[1]]}; field left
 * out when empty; versions (the ones the server speaks) only with
 * UNSUPPORTED_VERSION. */
int arb_wire_encode_error(arb_buf *buf, const arb_wire_error *error);

/* Client -> server encoders (the C client, the CLI, tests). */

/* {"type":"hello","proto":1,"client_id"[,"resume"]}; resume left out when 0. */
int arb_wire_encode_hello(arb_buf *buf, const char *client_id, uint64_t resume);

/* {"type":"propose","client_seq","stream","action","args"[,"expect"]}; the
 * principal is not sent (the server knows it from the hello). */
int arb_wire_encode_propose(arb_buf *buf, const arb_command *command);

/* {"type":"subscribe","stream"[,"since"]}; since left out when has_since is
 * false. */
int arb_wire_encode_subscribe(arb_buf *buf, const char *stream, bool has_since, uint64_t since);

/* {"type":"unsubscribe","stream"}. */
int arb_wire_encode_unsubscribe(arb_buf *buf, const char *stream);

/* {"type":"ping"}. */
int arb_wire_encode_ping(arb_buf *buf);

/* {"type":"sync"[,"atomic":true],"proposals":[{"client_seq","stream",
 *  "action","args"[,"expect"]}...]}: commands[0..count), 1 <= count <=
 * ARB_WIRE_SYNC_PROPOSALS_MAX. A buffer whose max is the frame bound tells
 * the caller (ARB_ETOO_LARGE) to send fewer at once. */
int arb_wire_encode_sync(arb_buf *buf, const arb_command *commands, size_t count, bool atomic);

#endif
