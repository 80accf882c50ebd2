/*
 * wire_encode.c - messages to compact JSON text (the contract is in wire.h
 * and docs/protocol.md).
 *
 * These run on the fan-out path (a patch per subscriber per commit), so they
 * write straight into the caller's arb_buf: no json_t is built for the
 * message itself, and JSON values inside it (event data, results, states)
 * go through arb_canon_json, which allocates nothing for small objects.
 *
 * Invariant: every public encoder either appends one whole message or
 * leaves the buffer exactly as it was (wire_end restores the length).
 */
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/wire.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"

/* Append a JSON string with the escapes of the canonical form. */
static int wire_string(arb_buf *buf, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    int rc = arb_buf_append_char(buf, '"');
    const char *run = text;
    for (const char *p = text; *p != '\0' && rc == 0; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char escape[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t escape_len = 2;
        const char *named = strchr("\b\f\n\r\t", c);
        if (c != '"' && c != '\\' && named != NULL) {
            escape[1] = "bfnrt"[named - "\b\f\n\r\t"];
        } else if (c < 0x20) {
            memcpy(escape + 1, "u00", 3);
            escape[4] = hex[c >> 4];
            escape[5] = hex[c & 0xf];
            escape_len = 6;
        }
        rc = arb_buf_append(buf, run, (size_t)(p - run));
        if (rc == 0)
            rc = arb_buf_append(buf, escape, escape_len);
        run = p + 1;
    }
    if (rc == 0)
        rc = arb_buf_append_str(buf, run);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '"');
    return rc;
}

/* ,"key": (or "key": first in an object, when comma is false). Keys are
 * literals of this file: no escaping needed. */
static int wire_key(arb_buf *buf, const char *key, bool comma)
{
    int rc = comma ? arb_buf_append_char(buf, ',') : 0;
    if (rc == 0)
        rc = arb_buf_append_char(buf, '"');
    if (rc == 0)
        rc = arb_buf_append_str(buf, key);
    if (rc == 0)
        rc = arb_buf_append(buf, "\":", 2);
    return rc;
}

static int wire_key_string(arb_buf *buf, const char *key, const char *value)
{
    int rc = wire_key(buf, key, true);
    return rc == 0 ? wire_string(buf, value) : rc;
}

static int wire_key_u64(arb_buf *buf, const char *key, uint64_t value)
{
    int rc = wire_key(buf, key, true);
    return rc == 0 ? arb_buf_append_u64(buf, value) : rc;
}

static int wire_key_bool(arb_buf *buf, const char *key, bool value)
{
    int rc = wire_key(buf, key, true);
    return rc == 0 ? arb_buf_append_str(buf, value ? "true" : "false") : rc;
}

/* A JSON value in canonical form; NULL is null. */
static int wire_key_json(arb_buf *buf, const char *key, const json_t *value)
{
    int rc = wire_key(buf, key, true);
    if (rc != 0)
        return rc;
    return value != NULL ? arb_canon_json(buf, value) : arb_buf_append_str(buf, "null");
}

/* {"type":"NAME" - every message starts so. */
static int wire_begin(arb_buf *buf, const char *type)
{
    int rc = arb_buf_append_str(buf, "{\"type\":");
    return rc == 0 ? wire_string(buf, type) : rc;
}

/* Close the message with '}' on success; on failure restore the buffer to
 * start (its length before the message). */
static int wire_end(arb_buf *buf, size_t start, int rc)
{
    if (rc == 0)
        rc = arb_buf_append_char(buf, '}');
    if (rc != 0) {
        ARB_ASSERT(start <= buf->len);
        buf->len = start;
        if (buf->data != NULL)
            buf->data[start] = '\0';
    }
    return rc;
}

/* One event, with arb_event_to_json()'s keys in its order. */
static int wire_event(arb_buf *buf, const arb_event *event)
{
    char hash[2 * ARB_HASH_BYTES + 1];
    arb_hash_hex(event->hash, hash);
    int rc = arb_buf_append_str(buf, "{\"stream\":");
    if (rc == 0)
        rc = wire_string(buf, event->stream);
    if (rc == 0)
        rc = wire_key_u64(buf, "seq", event->seq);
    if (rc == 0)
        rc = wire_key_string(buf, "type", event->type);
    if (rc == 0)
        rc = wire_key_json(buf, "data", event->data);
    if (rc == 0)
        rc = wire_key_string(buf, "client_id", event->client_id);
    if (rc == 0)
        rc = wire_key_u64(buf, "client_seq", event->client_seq);
    if (rc == 0)
        rc = wire_key(buf, "applied_at", true);
    if (rc == 0)
        rc = arb_buf_append_i64(buf, event->applied_at_ms);
    if (rc == 0)
        rc = wire_key_string(buf, "hash", hash);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '}');
    return rc;
}

static int wire_events(arb_buf *buf, const arb_event *events, size_t count)
{
    int rc = wire_key(buf, "events", true);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '[');
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (i > 0)
            rc = arb_buf_append_char(buf, ',');
        if (rc == 0)
            rc = wire_event(buf, &events[i]);
    }
    if (rc == 0)
        rc = arb_buf_append_char(buf, ']');
    return rc;
}

int arb_wire_encode_welcome(arb_buf *buf, int64_t server_time_ms)
{
    size_t start = buf->len;
    int rc = wire_begin(buf, "welcome");
    if (rc == 0)
        rc = wire_key_u64(buf, "proto", ARB_WIRE_PROTO);
    if (rc == 0)
        rc = wire_key(buf, "server_time", true);
    if (rc == 0)
        rc = arb_buf_append_i64(buf, server_time_ms);
    if (rc == 0)
        rc = arb_buf_append_str(buf, ",\"limits\":{\"frame_bytes\":");
    if (rc == 0)
        rc = arb_buf_append_u64(buf, ARB_WIRE_FRAME_BYTES_MAX);
    if (rc == 0)
        rc = wire_key_u64(buf, "args_bytes", ARB_ARGS_BYTES_MAX);
    if (rc == 0)
        rc = wire_key_u64(buf, "sync_proposals", ARB_WIRE_SYNC_PROPOSALS_MAX);
    if (rc == 0)
        rc = wire_key_u64(buf, "subscriptions", ARB_WIRE_SUBSCRIPTIONS_MAX);
    if (rc == 0)
        rc = wire_key_u64(buf, "pending_proposals", ARB_WIRE_PENDING_PROPOSALS_MAX);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '}');
    return wire_end(buf, start, rc);
}

int arb_wire_encode_committed(arb_buf *buf, const arb_outcome *outcome)
{
    ARB_ASSERT(outcome->kind == ARB_OUTCOME_COMMITTED);
    ARB_ASSERT(outcome->events != NULL || outcome->event_count == 0);
    size_t start = buf->len;
    int rc = wire_begin(buf, "committed");
    if (rc == 0)
        rc = wire_key_u64(buf, "client_seq", outcome->client_seq);
    if (rc == 0)
        rc = wire_key_string(buf, "stream", outcome->stream);
    if (rc == 0)
        rc = wire_key_u64(buf, "seq", outcome->seq_first);
    if (rc == 0)
        rc = wire_key_u64(buf, "seq_last", outcome->seq_last);
    if (rc == 0)
        rc = wire_events(buf, outcome->events, outcome->event_count);
    if (rc == 0)
        rc = wire_key_json(buf, "result", outcome->result);
    if (rc == 0)
        rc = wire_key_bool(buf, "replay", outcome->replay);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_rejected(arb_buf *buf, const arb_outcome *outcome, const json_t *snapshot)
{
    ARB_ASSERT(outcome->kind == ARB_OUTCOME_REJECTED);
    ARB_ASSERT(outcome->code < 0);
    size_t start = buf->len;
    int rc = wire_begin(buf, "rejected");
    if (rc == 0)
        rc = wire_key_u64(buf, "client_seq", outcome->client_seq);
    if (rc == 0)
        rc = wire_key_string(buf, "stream", outcome->stream);
    if (rc == 0)
        rc = wire_key_string(buf, "code", arb_err_name(outcome->code));
    if (rc == 0)
        rc = wire_key_string(buf, "message", outcome->message);
    if (rc == 0)
        rc = wire_key_json(buf, "details", outcome->details);
    if (rc == 0)
        rc = wire_key_u64(buf, "version", outcome->version);
    if (rc == 0)
        rc = wire_key_bool(buf, "replay", outcome->replay);
    if (rc == 0 && snapshot != NULL)
        rc = wire_key_json(buf, "snapshot", snapshot);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_outcome(arb_buf *buf, const arb_outcome *outcome)
{
    if (outcome->kind == ARB_OUTCOME_COMMITTED)
        return arb_wire_encode_committed(buf, outcome);
    return arb_wire_encode_rejected(buf, outcome, NULL);
}

int arb_wire_encode_snapshot(arb_buf *buf, const char *stream, uint64_t seq, const json_t *state)
{
    ARB_ASSERT(stream != NULL);
    size_t start = buf->len;
    int rc = wire_begin(buf, "snapshot");
    if (rc == 0)
        rc = wire_key_string(buf, "stream", stream);
    if (rc == 0)
        rc = wire_key_u64(buf, "seq", seq);
    if (rc == 0)
        rc = wire_key_json(buf, "state", state);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_patch(arb_buf *buf, const char *stream, const arb_event *events, size_t count)
{
    ARB_ASSERT(stream != NULL && events != NULL && count >= 1);
    ARB_ASSERT(events[count - 1].seq >= events[0].seq);
    size_t start = buf->len;
    int rc = wire_begin(buf, "patch");
    if (rc == 0)
        rc = wire_key_string(buf, "stream", stream);
    if (rc == 0)
        rc = wire_key_u64(buf, "seq", events[count - 1].seq);
    if (rc == 0)
        rc = wire_events(buf, events, count);
    return wire_end(buf, start, rc);
}

static int wire_sync_item(arb_buf *buf, const arb_outcome *outcome)
{
    bool committed = outcome->kind == ARB_OUTCOME_COMMITTED;
    ARB_ASSERT(committed || outcome->kind == ARB_OUTCOME_REJECTED);
    int rc = arb_buf_append_str(buf, "{\"client_seq\":");
    if (rc == 0)
        rc = arb_buf_append_u64(buf, outcome->client_seq);
    if (rc == 0)
        rc = wire_key_string(buf, "status", committed ? "committed" : "rejected");
    if (rc == 0 && committed)
        rc = wire_key_u64(buf, "seq", outcome->seq_first);
    if (rc == 0 && committed)
        rc = wire_key_u64(buf, "seq_last", outcome->seq_last);
    if (rc == 0 && committed)
        rc = wire_key_json(buf, "result", outcome->result);
    if (rc == 0 && !committed)
        rc = wire_key_string(buf, "code", arb_err_name(outcome->code));
    if (rc == 0 && !committed)
        rc = wire_key_string(buf, "message", outcome->message);
    if (rc == 0 && !committed)
        rc = wire_key_json(buf, "details", outcome->details);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '}');
    return rc;
}

int arb_wire_encode_sync_result(arb_buf *buf, const arb_outcome *outcomes, size_t count)
{
    ARB_ASSERT(outcomes != NULL || count == 0);
    size_t start = buf->len;
    int rc = wire_begin(buf, "sync_result");
    if (rc == 0)
        rc = wire_key(buf, "results", true);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '[');
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (i > 0)
            rc = arb_buf_append_char(buf, ',');
        if (rc == 0)
            rc = wire_sync_item(buf, &outcomes[i]);
    }
    if (rc == 0)
        rc = arb_buf_append_char(buf, ']');
    return wire_end(buf, start, rc);
}

int arb_wire_encode_pong(arb_buf *buf, const char *nonce)
{
    size_t start = buf->len;
    int rc = wire_begin(buf, "pong");
    if (rc == 0 && nonce != NULL)
        rc = wire_key_string(buf, "nonce", nonce);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_error(arb_buf *buf, const arb_wire_error *error)
{
    ARB_ASSERT(error->code < 0);
    size_t start = buf->len;
    int rc = wire_begin(buf, "error");
    if (rc == 0)
        rc = wire_key_string(buf, "code", arb_err_name(error->code));
    if (rc == 0 && error->field[0] != '\0')
        rc = wire_key_string(buf, "field", error->field);
    if (rc == 0)
        rc = wire_key_string(buf, "message", error->message);
    if (rc == 0 && error->code == ARB_EUNSUPPORTED_VERSION) {
        rc = wire_key(buf, "versions", true);
        if (rc == 0)
            rc = arb_buf_append_char(buf, '[');
        if (rc == 0)
            rc = arb_buf_append_u64(buf, ARB_WIRE_PROTO);
        if (rc == 0)
            rc = arb_buf_append_char(buf, ']');
    }
    return wire_end(buf, start, rc);
}

int arb_wire_encode_hello(arb_buf *buf, const char *client_id, uint64_t resume)
{
    size_t start = buf->len;
    int rc = wire_begin(buf, "hello");
    if (rc == 0)
        rc = wire_key_u64(buf, "proto", ARB_WIRE_PROTO);
    if (rc == 0)
        rc = wire_key_string(buf, "client_id", client_id);
    if (rc == 0 && resume > 0)
        rc = wire_key_u64(buf, "resume", resume);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_unsubscribe(arb_buf *buf, const char *stream)
{
    size_t start = buf->len;
    int rc = wire_begin(buf, "unsubscribe");
    if (rc == 0)
        rc = wire_key_string(buf, "stream", stream);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_ping(arb_buf *buf)
{
    size_t start = buf->len;
    return wire_end(buf, start, wire_begin(buf, "ping"));
}

/* A proposal's fields after the first key (propose and sync items). */
static int wire_proposal_fields(arb_buf *buf, const arb_command *command)
{
    ARB_ASSERT(command->args != NULL);
    int rc = wire_key_string(buf, "stream", command->stream);
    if (rc == 0)
        rc = wire_key_string(buf, "action", command->action);
    if (rc == 0)
        rc = wire_key_json(buf, "args", command->args);
    if (rc == 0 && command->has_expect)
        rc = wire_key_u64(buf, "expect", command->expect);
    return rc;
}

int arb_wire_encode_propose(arb_buf *buf, const arb_command *command)
{
    size_t start = buf->len;
    int rc = wire_begin(buf, "propose");
    if (rc == 0)
        rc = wire_key_u64(buf, "client_seq", command->client_seq);
    if (rc == 0)
        rc = wire_proposal_fields(buf, command);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_subscribe(arb_buf *buf, const char *stream, bool has_since, uint64_t since)
{
    size_t start = buf->len;
    int rc = wire_begin(buf, "subscribe");
    if (rc == 0)
        rc = wire_key_string(buf, "stream", stream);
    if (rc == 0 && has_since)
        rc = wire_key_u64(buf, "since", since);
    return wire_end(buf, start, rc);
}

int arb_wire_encode_sync(arb_buf *buf, const arb_command *commands, size_t count, bool atomic)
{
    ARB_ASSERT(count >= 1 && count <= ARB_WIRE_SYNC_PROPOSALS_MAX);
    size_t start = buf->len;
    int rc = wire_begin(buf, "sync");
    if (rc == 0 && atomic)
        rc = wire_key_bool(buf, "atomic", true);
    if (rc == 0)
        rc = wire_key(buf, "proposals", true);
    if (rc == 0)
        rc = arb_buf_append_char(buf, '[');
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc = arb_buf_append_str(buf, i > 0 ? ",{\"client_seq\":" : "{\"client_seq\":");
        if (rc == 0)
            rc = arb_buf_append_u64(buf, commands[i].client_seq);
        if (rc == 0)
            rc = wire_proposal_fields(buf, &commands[i]);
        if (rc == 0)
            rc = arb_buf_append_char(buf, '}');
    }
    if (rc == 0)
        rc = arb_buf_append_char(buf, ']');
    return wire_end(buf, start, rc);
}
