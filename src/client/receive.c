/*
 * receive.c - the server's messages to the client SDK, and what each does to
 * the client's model (docs/protocol.md is the contract):
 *
 *   welcome      online: resubscribe, resend the outbox (client.c's flush)
 *   snapshot     confirmed := the view it carries
 *   patch        the events fold into confirmed
 *   committed    the proposal leaves the outbox (its events came, or come,
 *                by patch: confirmed never takes the client's own prediction)
 *   rejected     the proposal leaves the outbox, confirmed := its snapshot
 *                when one came; transient codes leave it queued instead
 *   sync_result  one verdict per proposal of a sync, as above
 *   error        the server refused a frame: a stream it does not know is
 *                asked for again later; anything else drops the connection,
 *                and the next one starts clean
 *   pong         nothing (any message shows the connection is alive)
 *
 * The server is trusted to decide, not to be well-formed: every field is
 * checked, and a message that does not fit is reported through the error
 * callback and ignored, never half applied.
 */
#include <string.h>

#include "arbiter/error.h"
#include "client/internal.h"
#include "core/assert.h"
#include "core/log.h"

static const char *get_string(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

/* A non-negative JSON integer, or false. */
static bool get_u64(const json_t *object, const char *key, uint64_t *out)
{
    const json_t *value = json_object_get(object, key);
    if (!json_is_integer(value) || json_integer_value(value) < 0)
        return false;
    *out = (uint64_t)json_integer_value(value);
    return true;
}

static void report(arb_client *client, int code, const char *what)
{
    arb_log(ARB_LOG_WARN, "client", "%s", what);
    ARB__CLIENT_CALL(client, error, code, what);
}

/* An event of a patch or a committed, as arb_event_to_json() writes it.
 * data gets a new reference; the hash is not needed by a client. */
static bool event_from_json(const json_t *json, arb_event *event)
{
    memset(event, 0, sizeof *event);
    const char *stream = get_string(json, "stream");
    const char *type = get_string(json, "type");
    const char *client_id = get_string(json, "client_id");
    const json_t *data = json_object_get(json, "data");
    uint64_t applied_at;
    if (stream == NULL || type == NULL || client_id == NULL || !json_is_object(data) ||
        !get_u64(json, "seq", &event->seq) || event->seq == 0 ||
        !get_u64(json, "client_seq", &event->client_seq) ||
        !get_u64(json, "applied_at", &applied_at) ||
        arb_copy_name(event->stream, sizeof event->stream, stream) != 0 ||
        arb_copy_name(event->type, sizeof event->type, type) != 0 ||
        arb_copy_name(event->client_id, sizeof event->client_id, client_id) != 0)
        return false;
    event->applied_at_ms = (int64_t)applied_at;
    event->data = json_incref((json_t *)data);
    return true;
}

static void events_clear(arb_event *events, size_t count)
{
    for (size_t i = 0; i < count; i++)
        arb_event_clear(&events[i]);
    free(events);
}

/* The events array of a message, checked: every event of stream, seqs
 * increasing. NULL with *count_out 0 for an empty array. */
static int events_parse(const json_t *array, const char *stream, arb_event **events_out,
                        size_t *count_out)
{
    *events_out = NULL;
    *count_out = 0;
    if (!json_is_array(array))
        return ARB_EMALFORMED;
    size_t count = json_array_size(array);
    if (count == 0)
        return 0;
    arb_event *events = calloc(count, sizeof *events);
    if (events == NULL)
        return ARB_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        if (!event_from_json(json_array_get(array, i), &events[i]) ||
            strcmp(events[i].stream, stream) != 0 ||
            (i > 0 && events[i].seq <= events[i - 1].seq)) {
            events_clear(events, i + 1);
            return ARB_EMALFORMED;
        }
    }
    *events_out = events;
    *count_out = count;
    return 0;
}

/* Subscribe again from scratch: the confirmed state is gone. */
static void resubscribe(arb_client *client, arb__follow *stream)
{
    stream->subscribed = false;
    arb__client_send_unsubscribe(client, stream->name);
}

static void on_snapshot(arb_client *client, const json_t *message)
{
    const char *name = get_string(message, "stream");
    arb__follow *stream = name != NULL ? arb__draft_find(client, name) : NULL;
    uint64_t seq;
    const json_t *state = json_object_get(message, "state");
    if (stream == NULL || !get_u64(message, "seq", &seq) || !json_is_object(state)) {
        report(client, ARB_EMALFORMED, "a snapshot without stream, seq or state");
        return;
    }
    int rc = arb__draft_load(client, stream, state, seq);
    if (rc != 0)
        report(client, rc, "a snapshot the stream's rules cannot load");
}

static void on_patch(arb_client *client, const json_t *message)
{
    const char *name = get_string(message, "stream");
    arb__follow *stream = name != NULL ? arb__draft_find(client, name) : NULL;
    uint64_t seq;
    if (stream == NULL || !get_u64(message, "seq", &seq))
        return; /* a patch of a stream just unsubscribed */
    arb_event *events;
    size_t count;
    int rc = events_parse(json_object_get(message, "events"), name, &events, &count);
    if (rc != 0) {
        report(client, rc, "a patch whose events do not parse");
        return;
    }
    uint64_t before = stream->version;
    rc = arb__draft_fold(client, stream, events, count, seq);
    if (rc != 0) {
        report(client, rc, "a patch that does not fit the confirmed state; resubscribing");
        resubscribe(client, stream);
    } else if (stream->confirmed != NULL) { /* only events that folded in */
        size_t first = 0;
        while (first < count && events[first].seq <= before)
            first++;
        if (first < count)
            ARB__CLIENT_CALL(client, events, stream->name, events + first, count - first);
    }
    events_clear(events, count);
}

/* A verdict on client_seq: outcome filled but for the proposal's names. */
static void decided(arb_client *client, uint64_t client_seq, arb_client_outcome *outcome,
                    const json_t *snapshot, uint64_t version)
{
    arb__pending *pending = arb__client_find_pending(client, client_seq);
    if (pending == NULL || !pending->sent)
        return; /* a verdict already handled (a replay across a reconnect) */
    pending->sent = false;
    ARB_ASSERT(client->inflight > 0);
    client->inflight--;
    if (!outcome->committed && arb__client_transient(outcome->code)) {
        client->resend_at_ms = arb__client_now_ms() + client->config.backoff_initial_ms;
        return;
    }
    arb__follow *stream = arb__draft_find(client, pending->command.stream);
    if (stream != NULL && snapshot != NULL && version > stream->version &&
        arb__draft_load(client, stream, snapshot, version) != 0)
        report(client, ARB_ECORRUPT, "a rejection's snapshot the stream's rules cannot load");
    outcome->client_seq = client_seq;
    outcome->stream = pending->command.stream;
    outcome->action = pending->command.action;
    ARB__CLIENT_CALL(client, outcome, outcome);
    arb__client_forget_pending(client, pending);
    if (stream != NULL)
        arb__draft_changed(client, stream);
}

static void on_committed(arb_client *client, const json_t *message)
{
    arb_client_outcome outcome = {.committed = true, .message = ""};
    uint64_t client_seq;
    if (!get_u64(message, "client_seq", &client_seq) ||
        !get_u64(message, "seq", &outcome.seq_first) ||
        !get_u64(message, "seq_last", &outcome.seq_last)) {
        report(client, ARB_EMALFORMED, "a committed without client_seq or seqs");
        return;
    }
    outcome.replay = json_is_true(json_object_get(message, "replay"));
    outcome.result = json_object_get(message, "result");
    if (json_is_null(outcome.result))
        outcome.result = NULL;
    decided(client, client_seq, &outcome, NULL, 0);
}

/* code, message and details of a rejection (a rejected or a sync result). */
static bool rejection(const json_t *message, arb_client_outcome *outcome)
{
    const char *code = get_string(message, "code");
    outcome->message = get_string(message, "message");
    outcome->code = code != NULL ? arb_err_from_name(code) : 0;
    outcome->details = json_object_get(message, "details");
    if (json_is_null(outcome->details))
        outcome->details = NULL;
    return outcome->code != 0 && outcome->message != NULL;
}

static void on_rejected(arb_client *client, const json_t *message)
{
    arb_client_outcome outcome = {.committed = false};
    uint64_t client_seq, version = 0;
    if (!get_u64(message, "client_seq", &client_seq) || !rejection(message, &outcome)) {
        report(client, ARB_EMALFORMED, "a rejected without client_seq or code");
        return;
    }
    get_u64(message, "version", &version);
    outcome.replay = json_is_true(json_object_get(message, "replay"));
    const json_t *snapshot = json_object_get(message, "snapshot");
    decided(client, client_seq, &outcome, json_is_object(snapshot) ? snapshot : NULL, version);
}

/* One result of a sync_result into outcome; false when malformed. */
static bool sync_item(const json_t *result, uint64_t *client_seq, arb_client_outcome *outcome)
{
    *outcome = (arb_client_outcome){.message = ""};
    const char *status = get_string(result, "status");
    if (!get_u64(result, "client_seq", client_seq) || status == NULL)
        return false;
    outcome->committed = strcmp(status, "committed") == 0;
    outcome->result = json_object_get(result, "result");
    if (json_is_null(outcome->result))
        outcome->result = NULL;
    return outcome->committed ? get_u64(result, "seq", &outcome->seq_first) &&
                                    get_u64(result, "seq_last", &outcome->seq_last)
                              : strcmp(status, "rejected") == 0 && rejection(result, outcome);
}

/* Every result is checked before any is applied: a malformed sync_result
 * changes nothing. */
static void on_sync_result(arb_client *client, const json_t *message)
{
    const json_t *results = json_object_get(message, "results");
    size_t i;
    const json_t *result;
    uint64_t client_seq;
    arb_client_outcome outcome;
    bool ok = json_is_array(results);
    json_array_foreach (results, i, result)
        ok = ok && sync_item(result, &client_seq, &outcome);
    if (!ok) {
        report(client, ARB_EMALFORMED, "a sync_result with a malformed result");
        return;
    }
    json_array_foreach (results, i, result) {
        sync_item(result, &client_seq, &outcome);
        decided(client, client_seq, &outcome, NULL, 0);
    }
}

static void on_error(arb_client *client, const json_t *message)
{
    const char *code_name = get_string(message, "code");
    const char *text = get_string(message, "message");
    int code = code_name != NULL ? arb_err_from_name(code_name) : 0;
    arb_log(ARB_LOG_WARN, "client", "the server refused a message: %s: %s",
            code_name != NULL ? code_name : "?", text != NULL ? text : "");
    ARB__CLIENT_CALL(client, error, code != 0 ? code : ARB_EMALFORMED, text != NULL ? text : "");
    if (code == ARB_ESTREAM_NOT_FOUND) {
        /* The error does not name the stream: ask again for every stream
         * still waiting for its first state, a little later. */
        for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++) {
            arb__follow *stream = &client->streams[i];
            if (stream->used && stream->subscribed && stream->confirmed == NULL) {
                stream->subscribed = false;
                stream->retry_at_ms = arb__client_now_ms() + client->config.backoff_max_ms / 10;
            }
        }
        return;
    }
    arb__client_drop(client, code != 0 ? code : ARB_EMALFORMED);
}

static void on_welcome(arb_client *client, const json_t *message)
{
    uint64_t server_time;
    if (client->state != ARB_CLIENT_CONNECTING || !get_u64(message, "server_time", &server_time)) {
        report(client, ARB_EMALFORMED, "an unexpected welcome");
        return;
    }
    if (server_time > ARB__CLIENT_SERVER_TIME_MAX) {
        /* Far beyond any clock: the rules' time arithmetic must never see it. */
        report(client, ARB_EMALFORMED, "a welcome whose server_time is out of range");
        arb__client_drop(client, ARB_EMALFORMED);
        return;
    }
    client->clock_offset_ms = (int64_t)server_time - arb__client_now_ms();
    client->state = ARB_CLIENT_ONLINE;
    client->attempts = 0;
    ARB__CLIENT_CALL(client, connection, ARB_CLIENT_ONLINE, 0);
}

typedef struct handler {
    const char *type;
    void (*handle)(arb_client *client, const json_t *message);
} handler;

/* The frequent ones first. */
static const handler handlers[] = {
    {"patch", on_patch},       {"committed", on_committed},
    {"rejected", on_rejected}, {"sync_result", on_sync_result},
    {"snapshot", on_snapshot}, {"welcome", on_welcome},
    {"error", on_error},
};

void arb__client_receive(arb_client *client, const char *text, size_t len)
{
    json_error_t error;
    json_t *message = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    const char *type = get_string(message, "type");
    if (type == NULL) {
        report(client, ARB_EMALFORMED, "a message from the server that is not a typed object");
    } else {
        for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
            if (strcmp(handlers[i].type, type) == 0) {
                handlers[i].handle(client, message);
                break;
            }
        }
    }
    json_decref(message);
}
