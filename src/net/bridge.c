/*
 * bridge.c - the engine thread, and the two queues between it and the
 * network thread.
 *
 * The engine thread is the only user of the engine once the server runs. It
 * takes every queued request at once and decides them in arrival order:
 *
 *   proposals (propose, non-atomic sync)   gathered into batches of at most
 *       ARB_BATCH_PROPOSALS_MAX and handed to arb_engine_submit: batch k is
 *       decided while batch k-1 is written (the pipeline of engine.h);
 *   reads and atomic syncs                 the pipeline is drained first, so
 *       they see exactly the durable state and answer at once.
 *
 * Nothing decided is released before it is durable: the outcomes of batch k
 * are encoded and released after the submit of batch k+1 (or a flush)
 * returns, which is when engine.h says batch k is on disk. Committed events
 * reach the fan-out through on_commit, called in commit order inside those
 * same calls, so a batch's patches are released before its outcomes, and
 * both before any later read: a subscriber's snapshot at seq V is followed by
 * exactly the events after V.
 *
 * When nothing is queued, the thread flushes at once (no waiting to fill a
 * batch: latency when idle, batches when busy), fires due timers, and sleeps
 * until the next request or deadline.
 *
 * Ownership: requests are owned by the queue until taken, then by this
 * thread until their batch is released; releases are built here and owned by
 * the list until the network thread takes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/log.h"
#include "net/internal.h"
#include "rules/poker/poker_history.h"

typedef struct batch {
    arb__request *requests; /* in order; commands of each at [first, first+count) */
    arb__request *requests_tail;
    size_t count;
    arb_outcome *outcomes; /* ARB_BATCH_PROPOSALS_MAX */
    json_t **snapshots;    /* per outcome: the proposer's view after the batch (rejected) */
    uint64_t *snapshot_versions;
    int64_t submitted_us;
} batch;

struct arb__bridge {
    arb_engine *engine;
    struct lws_context *context;
    arb__metrics *metrics;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* Under lock. */
    arb__request *head;
    arb__request *tail;
    size_t queued_proposals;
    arb__release *released_head;
    arb__release *released_tail;
    bool stop;
    bool done;
    atomic_int watchers;
    /* Engine thread only. */
    batch slots[2];
    int building;             /* the slot being filled */
    batch *in_flight;         /* submitted, not yet known durable */
    arb_command *commands;    /* the batch being built (shallow copies) */
    arb__release *local_head; /* released this round, published together */
    arb__release *local_tail;
};

static int64_t monotonic_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static int64_t realtime_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

arb__request *arb__request_new(arb__request_kind kind, uint64_t conn)
{
    arb__request *request = calloc(1, sizeof *request);
    if (request != NULL) {
        request->kind = kind;
        request->conn = conn;
    }
    return request;
}

void arb__request_free(arb__request *request)
{
    if (request == NULL)
        return;
    for (size_t i = 0; i < request->count; i++)
        arb_command_clear(&request->commands[i]);
    free(request->commands);
    free(request);
}

void arb__release_free(arb__release *release)
{
    if (release == NULL)
        return;
    while (release->garbage != NULL) {
        arb__request *next = release->garbage->next;
        arb__request_free(release->garbage);
        release->garbage = next;
    }
    for (size_t i = 0; i < release->event_count; i++)
        arb_event_clear(&release->events[i]);
    free(release->events);
    arb__msg_unref(release->msg);
    free(release);
}

int arb__http_status(int code)
{
    switch (code) {
    case 0:
        return 200;
    case ARB_EMALFORMED:
    case ARB_EINVALID_ARGUMENT:
    case ARB_EINVALID_STREAM:
    case ARB_EUNKNOWN_KIND:
    case ARB_EUNKNOWN_MESSAGE:
        return 400;
    case ARB_EFORBIDDEN:
        return 403;
    case ARB_EUSAGE: /* a method the path does not serve */
        return 405;
    case ARB_ESTREAM_NOT_FOUND:
    case ARB_ENOTFOUND:
        return 404;
    case ARB_EVERSION_CONFLICT:
        return 409;
    case ARB_ETOO_LARGE:
        return 413;
    case ARB_EOVERLOADED:
    case ARB_ESHUTTING_DOWN:
        return 503;
    case ARB_ENOMEM:
    case ARB_EIO:
    case ARB_ECORRUPT:
        return 500;
    default:
        return 422; /* a rule said no */
    }
}

/* ---- Releases (engine thread) ---- */

static void release_local(arb__bridge *bridge, arb__release *release)
{
    release->next = NULL;
    if (bridge->local_tail != NULL)
        bridge->local_tail->next = release;
    else
        bridge->local_head = release;
    bridge->local_tail = release;
}

/* A reply whose text is buf's contents (copied; buf is reset for reuse). */
static void release_reply(arb__bridge *bridge, const arb__request *request, uint32_t answered,
                          int status, arb_buf *buf)
{
    arb__release *release = calloc(1, sizeof *release);
    ARB_ASSERT(release != NULL);
    release->kind = ARB__RELEASE_REPLY;
    release->conn = request->conn;
    release->answered = answered;
    release->status = status;
    release->msg = arb__msg_from_buf(buf);
    ARB_ASSERT(release->msg != NULL);
    release_local(bridge, release);
}

static void release_error(arb__bridge *bridge, const arb__request *request, uint32_t answered,
                          int code, const char *field)
{
    arb_wire_error error;
    arb_wire_error_set(&error, code, field, NULL);
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    int rc = arb_wire_encode_error(&buf, &error);
    ARB_ASSERT(rc == 0);
    release_reply(bridge, request, answered, arb__http_status(code), &buf);
    arb_buf_free(&buf);
}

static void publish(arb__bridge *bridge)
{
    if (bridge->local_head == NULL)
        return;
    pthread_mutex_lock(&bridge->lock);
    if (bridge->released_tail != NULL)
        bridge->released_tail->next = bridge->local_head;
    else
        bridge->released_head = bridge->local_head;
    bridge->released_tail = bridge->local_tail;
    pthread_mutex_unlock(&bridge->lock);
    bridge->local_head = bridge->local_tail = NULL;
    lws_cancel_service(bridge->context);
}

/* on_commit: a batch is durable. Copy its events for the fan-out when
 * anybody watches; the copies belong to the release. */
static void on_commit(void *user, const arb_event *events, size_t count)
{
    arb__bridge *bridge = user;
    if (atomic_load(&bridge->watchers) <= 0 || count == 0)
        return;
    arb__release *release = calloc(1, sizeof *release);
    ARB_ASSERT(release != NULL);
    release->kind = ARB__RELEASE_EVENTS;
    release->events = calloc(count, sizeof *release->events);
    ARB_ASSERT(release->events != NULL);
    for (size_t i = 0; i < count; i++) {
        release->events[i] = events[i];
        release->events[i].data = json_deep_copy(events[i].data);
        ARB_ASSERT(release->events[i].data != NULL);
    }
    release->event_count = count;
    atomic_fetch_add(&bridge->metrics->events_fanned_out, count);
    release_local(bridge, release);
}

/* on_written: the committer finished a batch (its thread). */
static void on_written(void *user)
{
    arb__bridge *bridge = user;
    pthread_mutex_lock(&bridge->lock);
    pthread_cond_signal(&bridge->wake);
    pthread_mutex_unlock(&bridge->lock);
}

/* ---- Batches ---- */

static int encode_outcome(arb_buf *buf, const batch *slot, size_t index)
{
    arb_outcome *outcome = &slot->outcomes[index];
    if (outcome->kind == ARB_OUTCOME_COMMITTED)
        return arb_wire_encode_committed(buf, outcome);
    if (slot->snapshots[index] == NULL)
        return arb_wire_encode_rejected(buf, outcome, NULL);
    uint64_t decided_version = outcome->version;
    outcome->version = slot->snapshot_versions[index];
    size_t before = buf->len;
    int rc = arb_wire_encode_rejected(buf, outcome, slot->snapshots[index]);
    if (rc == 0 && buf->len - before <= ARB_WIRE_FRAME_BYTES_MAX)
        return 0;
    /* A snapshot that would make the message larger than a frame may be is
     * left out (docs/protocol.md): the client resubscribes for the state. */
    buf->len = before;
    if (buf->data != NULL)
        buf->data[before] = '\0';
    outcome->version = decided_version;
    return arb_wire_encode_rejected(buf, outcome, NULL);
}

/* The batch is durable: encode and release every answer. */
static void release_batch(arb__bridge *bridge, batch *slot)
{
    arb_buf buf;
    arb_buf_init(&buf, SIZE_MAX / 2);
    for (arb__request *request = slot->requests, *next; request != NULL; request = next) {
        next = request->next;
        int rc = 0;
        if (request->kind == ARB__REQUEST_PROPOSE)
            rc = encode_outcome(&buf, slot, request->first);
        else
            rc = arb_wire_encode_sync_result(&buf, &slot->outcomes[request->first], request->count);
        ARB_ASSERT(rc == 0);
        const arb_outcome *outcome = &slot->outcomes[request->first];
        int status =
            request->kind == ARB__REQUEST_PROPOSE
                ? arb__http_status(outcome->kind == ARB_OUTCOME_REJECTED ? outcome->code : 0)
                : 200;
        release_reply(bridge, request, (uint32_t)request->count, status, &buf);
    }
    /* The requests go back to the network thread, which allocated them:
     * freeing there keeps malloc's arenas thread-local. */
    arb__release *garbage = calloc(1, sizeof *garbage);
    ARB_ASSERT(garbage != NULL);
    garbage->kind = ARB__RELEASE_GARBAGE;
    garbage->garbage = slot->requests;
    release_local(bridge, garbage);
    for (size_t i = 0; i < slot->count; i++) {
        arb__metrics_outcome(bridge->metrics, &slot->outcomes[i]);
        arb_outcome_clear(&slot->outcomes[i]);
        json_decref(slot->snapshots[i]);
        slot->snapshots[i] = NULL;
    }
    arb__metrics_batch(bridge->metrics, slot->count,
                       (uint64_t)(monotonic_us() - slot->submitted_us));
    arb_buf_free(&buf);
    slot->requests = slot->requests_tail = NULL;
    slot->count = 0;
}

/* A rejected proposer gets its view of the stream after the batch (its
 * draft is replaced by it). Consecutive rejections of one client on one
 * stream (a pipelining client's burst) share one view. */
static void take_snapshots(arb__bridge *bridge, batch *slot)
{
    const arb_outcome *last = NULL; /* the last rejection given a view */
    for (arb__request *request = slot->requests; request != NULL; request = request->next) {
        size_t i = request->first;
        const arb_outcome *outcome = &slot->outcomes[i];
        if (request->kind != ARB__REQUEST_PROPOSE || outcome->kind != ARB_OUTCOME_REJECTED)
            continue;
        if (last != NULL && strcmp(last->stream, outcome->stream) == 0 &&
            strcmp(last->client_id, outcome->client_id) == 0) {
            size_t j = (size_t)(last - slot->outcomes);
            slot->snapshots[i] = json_incref(slot->snapshots[j]);
            slot->snapshot_versions[i] = slot->snapshot_versions[j];
        } else if (arb_engine_state(bridge->engine, outcome->stream, &request->principal,
                                    &slot->snapshots[i], &slot->snapshot_versions[i]) != 0) {
            slot->snapshots[i] = NULL; /* no such stream: nothing to replace */
            continue;
        }
        last = outcome;
    }
}

static void flush(arb__bridge *bridge)
{
    if (bridge->in_flight == NULL)
        return;
    int rc = arb_engine_flush(bridge->engine);
    ARB_ASSERT(rc == 0);
    release_batch(bridge, bridge->in_flight);
    bridge->in_flight = NULL;
}

static void submit(arb__bridge *bridge)
{
    batch *slot = &bridge->slots[bridge->building];
    if (slot->count == 0)
        return;
    ARB_ASSERT(slot != bridge->in_flight);
    slot->submitted_us = monotonic_us();
    int rc = arb_engine_submit(bridge->engine, bridge->commands, slot->count, slot->outcomes);
    ARB_ASSERT(rc == 0);
    if (bridge->in_flight != NULL) /* durable now: submit waited for it */
        release_batch(bridge, bridge->in_flight);
    take_snapshots(bridge, slot);
    bridge->in_flight = slot;
    bridge->building ^= 1;
}

/* Append a proposing request to the batch being built. */
static void add_proposals(arb__bridge *bridge, arb__request *request)
{
    batch *slot = &bridge->slots[bridge->building];
    if (slot->count + request->count > ARB_BATCH_PROPOSALS_MAX) {
        submit(bridge);
        slot = &bridge->slots[bridge->building];
    }
    ARB_ASSERT(slot->count + request->count <= ARB_BATCH_PROPOSALS_MAX);
    request->first = slot->count;
    for (size_t i = 0; i < request->count; i++)
        bridge->commands[slot->count + i] = request->commands[i];
    slot->count += request->count;
    request->next = NULL;
    if (slot->requests_tail != NULL)
        slot->requests_tail->next = request;
    else
        slot->requests = request;
    slot->requests_tail = request;
}

/* ---- Reads and atomic syncs: with the pipeline drained ---- */

static void answer_atomic(arb__bridge *bridge, arb__request *request)
{
    arb_outcome *outcomes = calloc(request->count, sizeof *outcomes);
    ARB_ASSERT(outcomes != NULL);
    int rc = arb_engine_execute_atomic(bridge->engine, request->commands, request->count, outcomes);
    ARB_ASSERT(rc == 0);
    arb_buf buf;
    arb_buf_init(&buf, SIZE_MAX / 2);
    rc = arb_wire_encode_sync_result(&buf, outcomes, request->count);
    ARB_ASSERT(rc == 0);
    for (size_t i = 0; i < request->count; i++) {
        arb__metrics_outcome(bridge->metrics, &outcomes[i]);
        arb_outcome_clear(&outcomes[i]);
    }
    free(outcomes);
    release_reply(bridge, request, (uint32_t)request->count, 200, &buf);
    arb_buf_free(&buf);
}

/* A JSON object as the reply's text (compact, keys in insertion order). */
static void release_json(arb__bridge *bridge, const arb__request *request, int status,
                         json_t *object)
{
    char *text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    ARB_ASSERT(text != NULL);
    arb_buf buf = {.data = text, .len = strlen(text), .cap = strlen(text) + 1, .max = SIZE_MAX};
    release_reply(bridge, request, 0, status, &buf);
    arb_buf_free(&buf);
}

static void answer_subscribe(arb__bridge *bridge, arb__request *request)
{
    json_t *state = NULL;
    uint64_t version = 0;
    int rc =
        arb_engine_state(bridge->engine, request->stream, &request->principal, &state, &version);
    arb__release *release = calloc(1, sizeof *release);
    ARB_ASSERT(release != NULL);
    release->kind = ARB__RELEASE_SUBSCRIBED;
    release->conn = request->conn;
    release->status = rc;
    release->seq = version;
    memcpy(release->stream, request->stream, sizeof release->stream);
    json_t *message = NULL;
    if (rc != 0) {
        arb_wire_error error;
        arb_wire_error_set(&error, rc, "stream", NULL);
        arb_buf buf;
        arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
        ARB_ASSERT(arb_wire_encode_error(&buf, &error) == 0);
        release->msg = arb__msg_from_buf(&buf);
        arb_buf_free(&buf);
        ARB_ASSERT(release->msg != NULL);
        release_local(bridge, release);
        return;
    }
    json_t *events = NULL;
    if (request->has_since && request->since <= version &&
        version - request->since <= ARB_NET_CATCHUP_EVENTS_MAX &&
        arb_engine_events_as(bridge->engine, request->stream, request->since, 0,
                             &request->principal, &events) == 0) {
        message = json_pack("{s:s, s:s, s:I, s:o}", "type", "patch", "stream", request->stream,
                            "seq", (json_int_t)version, "events", events);
        json_decref(state);
    } else {
        message = json_pack("{s:s, s:s, s:I, s:o}", "type", "snapshot", "stream", request->stream,
                            "seq", (json_int_t)version, "state", state);
    }
    ARB_ASSERT(message != NULL);
    char *text = json_dumps(message, JSON_COMPACT);
    ARB_ASSERT(text != NULL);
    release->msg = arb__msg_new(text, strlen(text));
    ARB_ASSERT(release->msg != NULL);
    free(text);
    json_decref(message);
    release_local(bridge, release);
}

/* A hand history's reads: the table's view and its events, as the asker may
 * see them. An admin reads them unredacted: the hand is over and its seed
 * public, so every hole card could be dealt again from it anyway. */
typedef struct hand_reader {
    arb_engine *engine;
    const char *stream;
    const arb_principal *viewer; /* NULL: everything */
} hand_reader;

static int hand_view(void *user, json_t **view_out, uint64_t *version_out)
{
    hand_reader *reader = user;
    return arb_engine_state(reader->engine, reader->stream, reader->viewer, view_out, version_out);
}

static int hand_events(void *user, uint64_t since_seq, uint64_t limit, json_t **events_out)
{
    hand_reader *reader = user;
    return arb_engine_events_as(reader->engine, reader->stream, since_seq, limit, reader->viewer,
                                events_out);
}

/* GET /v1/streams/{stream}/hands/{n}: 200 text, or a JSON error (404 for a
 * stream that is not a table, a hand not dealt or not ended yet). */
static void answer_hand(arb__bridge *bridge, const arb__request *request)
{
    static const char kind[] = "table:";
    hand_reader reader = {
        .engine = bridge->engine,
        .stream = request->stream,
        .viewer = request->principal.role == ARB_ROLE_ADMIN ? NULL : &request->principal,
    };
    arb_poker_history_source source = {.view = hand_view,
                                       .events = hand_events,
                                       .user = &reader,
                                       .walk_max = ARB_POKER_HISTORY_WALK_EVENTS_MAX};
    arb_buf buf;
    arb_buf_init(&buf, ARB_POKER_HISTORY_BYTES_MAX);
    char why[ARB_MESSAGE_BYTES_MAX + 1] = "";
    bool table = strncmp(request->stream, kind, sizeof kind - 1) == 0;
    int rc = table ? arb_poker_history_read(&source, request->hand, &buf, why, sizeof why)
                   : ARB_ENOTFOUND;
    if (!table)
        snprintf(why, sizeof why, "the stream is not a poker table (table:NAME)");
    if (rc == 0) {
        release_reply(bridge, request, 0, 200, &buf);
        arb_buf_free(&buf);
        return;
    }
    bool missing = rc == ARB_EHAND_IN_PROGRESS || rc == ARB_ETABLE_NOT_CREATED;
    /* No such stream, not a table, no table created on it yet: the stream's
     * fault; anything else is the hand's. */
    const char *field =
        !table || rc == ARB_ESTREAM_NOT_FOUND || rc == ARB_ETABLE_NOT_CREATED ? "stream" : "hand";
    arb_wire_error error;
    arb_wire_error_set(&error, rc, field, why[0] != '\0' ? why : NULL);
    arb_buf_reset(&buf);
    int encoded = arb_wire_encode_error(&buf, &error);
    ARB_ASSERT(encoded == 0);
    release_reply(bridge, request, 0, missing ? 404 : arb__http_status(rc), &buf);
    arb_buf_free(&buf);
}

static void answer_read(arb__bridge *bridge, arb__request *request)
{
    json_t *value = NULL;
    uint64_t version = 0;
    int rc = 0;
    switch (request->kind) {
    case ARB__REQUEST_SUBSCRIBE:
        answer_subscribe(bridge, request);
        return;
    case ARB__REQUEST_HAND:
        answer_hand(bridge, request);
        return;
    case ARB__REQUEST_PRESENCE: {
        size_t proposed = 0;
        rc = arb_engine_presence(bridge->engine, request->principal.id, request->online, &proposed);
        ARB_ASSERT(rc == 0); /* a failed commit stops the process first */
        return;              /* nobody waits for an answer */
    }
    case ARB__REQUEST_STATE:
        rc = arb_engine_state(bridge->engine, request->stream, &request->principal, &value,
                              &version);
        if (rc == 0 && request->has_etag && request->etag == version) {
            json_decref(value);
            arb_buf empty;
            arb_buf_init(&empty, 16);
            release_reply(bridge, request, 0, 304, &empty);
            bridge->local_tail->seq = version;
            return;
        }
        if (rc == 0) {
            release_json(bridge, request, 200,
                         json_pack("{s:s, s:I, s:o}", "stream", request->stream, "version",
                                   (json_int_t)version, "state", value));
            bridge->local_tail->seq = version;
            return;
        }
        break;
    case ARB__REQUEST_EVENTS:
        rc = arb_engine_state(bridge->engine, request->stream, NULL, &value, &version);
        json_decref(value);
        if (rc == 0)
            rc = arb_engine_events_as(bridge->engine, request->stream, request->since,
                                      request->limit, &request->principal, &value);
        if (rc == 0) {
            bool empty = json_array_size(value) == 0;
            release_json(bridge, request, 200,
                         json_pack("{s:s, s:I, s:o}", "stream", request->stream, "version",
                                   (json_int_t)version, "events", value));
            bridge->local_tail->empty = empty;
            bridge->local_tail->seq = version;
            return;
        }
        break;
    case ARB__REQUEST_STREAMS:
        rc = arb_engine_streams(bridge->engine, &value);
        if (rc == 0) {
            release_json(bridge, request, 200, json_pack("{s:o}", "streams", value));
            return;
        }
        break;
    default:
        ARB_ASSERT(false);
    }
    release_error(bridge, request, 0, rc, rc == ARB_ESTREAM_NOT_FOUND ? "stream" : NULL);
}

static void process(arb__bridge *bridge, arb__request *list)
{
    for (arb__request *request = list, *next; request != NULL; request = next) {
        next = request->next;
        if (request->kind == ARB__REQUEST_PROPOSE ||
            (request->kind == ARB__REQUEST_SYNC && !request->atomic)) {
            add_proposals(bridge, request);
            continue;
        }
        submit(bridge);
        flush(bridge);
        if (request->kind == ARB__REQUEST_SYNC)
            answer_atomic(bridge, request);
        else
            answer_read(bridge, request);
        arb__request_free(request);
    }
    submit(bridge);
}

static void tick(arb__bridge *bridge)
{
    if (arb_engine_next_deadline(bridge->engine) > realtime_ms())
        return;
    size_t fired = 0;
    int rc = arb_engine_tick(bridge->engine, &fired);
    ARB_ASSERT(rc == 0);
    if (bridge->in_flight != NULL) { /* the tick's commit drained it */
        release_batch(bridge, bridge->in_flight);
        bridge->in_flight = NULL;
    }
    if (fired > 0)
        arb_log(ARB_LOG_DEBUG, "timers fired", "count=%zu", fired);
}

/* Wait for work: requests, a due timer, a batch to flush, or stop. Takes
 * every queued request (NULL when none); *stop_out: stop asked. */
static arb__request *take(arb__bridge *bridge, bool *stop_out)
{
    int64_t deadline_ms = arb_engine_next_deadline(bridge->engine);
    pthread_mutex_lock(&bridge->lock);
    /* With a batch in flight, wait for new requests (decided while it is
     * written) or for its end (on_written signals): never block in a flush
     * while proposals could be decided. The committer's signal takes this
     * lock, so it cannot slip between the check and the wait. */
    while (bridge->head == NULL && !bridge->stop &&
           (bridge->in_flight == NULL || arb_engine_writing(bridge->engine))) {
        int64_t now_ms = realtime_ms();
        int64_t until_ms = deadline_ms < now_ms + 1000 ? deadline_ms : now_ms + 1000;
        if (until_ms <= now_ms)
            break;
        struct timespec until = {.tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000};
        pthread_cond_timedwait(&bridge->wake, &bridge->lock, &until);
    }
    arb__request *list = bridge->head;
    bridge->head = bridge->tail = NULL;
    atomic_store(&bridge->metrics->queue_proposals, 0);
    bridge->queued_proposals = 0;
    *stop_out = bridge->stop;
    pthread_mutex_unlock(&bridge->lock);
    return list;
}

static void *engine_main(void *user)
{
    arb__bridge *bridge = user;
    for (;;) {
        bool stop = false;
        arb__request *list = take(bridge, &stop);
        if (list != NULL)
            process(bridge, list);
        else
            flush(bridge);
        tick(bridge);
        if (list == NULL && stop) {
            flush(bridge);
            publish(bridge);
            break;
        }
        publish(bridge);
    }
    pthread_mutex_lock(&bridge->lock);
    bridge->done = true;
    pthread_mutex_unlock(&bridge->lock);
    lws_cancel_service(bridge->context);
    return NULL;
}

/* ---- The network side ---- */

int arb__bridge_start(arb_engine *engine, struct lws_context *context, arb__metrics *metrics,
                      arb__bridge **bridge_out)
{
    arb__bridge *bridge = calloc(1, sizeof *bridge);
    if (bridge == NULL)
        return ARB_ENOMEM;
    bridge->engine = engine;
    bridge->context = context;
    bridge->metrics = metrics;
    bridge->commands = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof *bridge->commands);
    bool ok = bridge->commands != NULL;
    for (int i = 0; i < 2 && ok; i++) {
        bridge->slots[i].outcomes = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof(arb_outcome));
        bridge->slots[i].snapshots = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof(json_t *));
        bridge->slots[i].snapshot_versions = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof(uint64_t));
        ok = bridge->slots[i].outcomes != NULL && bridge->slots[i].snapshots != NULL &&
             bridge->slots[i].snapshot_versions != NULL;
    }
    atomic_init(&bridge->watchers, 0);
    pthread_mutex_init(&bridge->lock, NULL);
    pthread_cond_init(&bridge->wake, NULL);
    arb_engine_set_on_commit(engine, on_commit, bridge);
    arb_engine_set_on_written(engine, on_written, bridge);
    if (!ok || pthread_create(&bridge->thread, NULL, engine_main, bridge) != 0) {
        arb_engine_set_on_commit(engine, NULL, NULL);
        arb_engine_set_on_written(engine, NULL, NULL);
        bridge->done = true;
        bridge->thread = 0;
        arb__bridge_free(bridge);
        return ARB_ENOMEM;
    }
    *bridge_out = bridge;
    return 0;
}

int arb__bridge_push(arb__bridge *bridge, arb__request *request)
{
    ARB_ASSERT(request != NULL && request->next == NULL);
    pthread_mutex_lock(&bridge->lock);
    int rc = 0;
    if (bridge->stop)
        rc = ARB_ESHUTTING_DOWN;
    else if (request->count > 0 &&
             bridge->queued_proposals + request->count > ARB_NET_QUEUE_PROPOSALS_MAX)
        rc = ARB_EOVERLOADED;
    if (rc == 0) {
        if (bridge->tail != NULL)
            bridge->tail->next = request;
        else
            bridge->head = request;
        bridge->tail = request;
        bridge->queued_proposals += request->count;
        atomic_store(&bridge->metrics->queue_proposals, bridge->queued_proposals);
        pthread_cond_signal(&bridge->wake);
    }
    pthread_mutex_unlock(&bridge->lock);
    return rc;
}

arb__release *arb__bridge_take(arb__bridge *bridge)
{
    pthread_mutex_lock(&bridge->lock);
    arb__release *list = bridge->released_head;
    bridge->released_head = bridge->released_tail = NULL;
    pthread_mutex_unlock(&bridge->lock);
    return list;
}

void arb__bridge_watch(arb__bridge *bridge, int delta)
{
    atomic_fetch_add(&bridge->watchers, delta);
    ARB_ASSERT(atomic_load(&bridge->watchers) >= 0);
}

void arb__bridge_stop(arb__bridge *bridge)
{
    pthread_mutex_lock(&bridge->lock);
    bridge->stop = true;
    pthread_cond_signal(&bridge->wake);
    pthread_mutex_unlock(&bridge->lock);
}

bool arb__bridge_done(arb__bridge *bridge)
{
    pthread_mutex_lock(&bridge->lock);
    bool done = bridge->done;
    pthread_mutex_unlock(&bridge->lock);
    return done;
}

void arb__bridge_join(arb__bridge *bridge)
{
    if (bridge == NULL || bridge->thread == 0)
        return;
    arb__bridge_stop(bridge);
    pthread_join(bridge->thread, NULL);
    bridge->thread = 0;
    arb_engine_set_on_commit(bridge->engine, NULL, NULL);
    arb_engine_set_on_written(bridge->engine, NULL, NULL);
}

void arb__bridge_free(arb__bridge *bridge)
{
    if (bridge == NULL)
        return;
    arb__bridge_join(bridge);
    while (bridge->released_head != NULL) {
        arb__release *next = bridge->released_head->next;
        arb__release_free(bridge->released_head);
        bridge->released_head = next;
    }
    ARB_ASSERT(bridge->head == NULL && bridge->in_flight == NULL);
    for (int i = 0; i < 2; i++) {
        free(bridge->slots[i].outcomes);
        free(bridge->slots[i].snapshots);
        free(bridge->slots[i].snapshot_versions);
    }
    free(bridge->commands);
    pthread_mutex_destroy(&bridge->lock);
    pthread_cond_destroy(&bridge->wake);
    free(bridge);
}
