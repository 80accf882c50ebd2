/*
 * execute.c - the path of a proposal: validate, idempotency, optimistic
 * concurrency, decide, evolve, hash, group commit.
 *
 *   for each command of the batch, in order:
 *     key valid?            no  -> rejected, not recorded (it has no key)
 *     seen (client, seq)?   yes -> the stored outcome again, marked replay;
 *                                  different content -> IDEMPOTENCY_KEY_REUSED
 *     stream exists?        no  -> created if admin/system, else STREAM_NOT_FOUND
 *     expect == version?    no  -> VERSION_CONFLICT
 *     rules.decide          -> events (evolved in memory at once, so the next
 *                              command sees them) or a rejection
 *   one store transaction for all events and outcome rows; fsync
 *   only then: outcomes returned, on_commit called, snapshots taken
 *
 * All-or-nothing groups (atomic.c) run through this same path with
 * engine->group set: append_events then saves a stream before its first
 * change and holds the group's deadlines apart, so that an abort can undo.
 *
 * Invariants: every command gets exactly one outcome; per stream, event seqs
 * are contiguous and each event's hash chains to the previous one; nothing
 * is returned before the commit is durable. A failed commit aborts the
 * process: memory is then ahead of the disk and must not be served.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/canon.h"
#include "core/log.h"
#include "engine/internal.h"

#define SYSTEM_CLIENT_ID "$system"

_Static_assert(sizeof(void *) >= sizeof(uint64_t), "client seqs are stored in map values");

static size_t batch_grow_target(size_t need)
{
    size_t cap = 2 * ARB_BATCH_PROPOSALS_MAX;
    while (cap < need)
        cap *= 2;
    return cap;
}

static int batch_reserve_events(arb__batch *batch, size_t need)
{
    if (need <= batch->event_cap)
        return 0;
    ARB_ASSERT(need <= ARB_BATCH_EVENTS_MAX);
    size_t cap = batch_grow_target(need);
    arb_event *events = realloc(batch->events, cap * sizeof *events);
    if (events != NULL)
        batch->events = events;
    size_t *offsets = realloc(batch->event_data_offset, cap * sizeof *offsets);
    if (offsets != NULL)
        batch->event_data_offset = offsets;
    size_t *lens = realloc(batch->event_data_len, cap * sizeof *lens);
    if (lens != NULL)
        batch->event_data_len = lens;
    arb_store_event *store_events = realloc(batch->store_events, cap * sizeof *store_events);
    if (store_events != NULL)
        batch->store_events = store_events;
    if (events == NULL || offsets == NULL || lens == NULL || store_events == NULL)
        return ARB_ENOMEM;
    batch->event_cap = cap;
    return 0;
}

int arb__batch_init(arb__batch *batch)
{
    memset(batch, 0, sizeof *batch);
    arb_buf_init(&batch->texts, (size_t)ARB_BATCH_EVENTS_MAX * ARB_EVENT_BYTES_MAX);
    arb_buf_init(&batch->scratch, 2 * ARB_EVENT_BYTES_MAX);
    size_t n = ARB_BATCH_PROPOSALS_MAX;
    batch->rows = calloc(n, sizeof *batch->rows);
    batch->row_payload_offset = calloc(n, sizeof *batch->row_payload_offset);
    batch->row_outcome = calloc(n, sizeof *batch->row_outcome);
    batch->outcome_first_event = calloc(n, sizeof *batch->outcome_first_event);
    batch->new_streams = calloc(n, sizeof *batch->new_streams);
    batch->store_streams = calloc(n, sizeof *batch->store_streams);
    batch->touched = calloc(n, sizeof *batch->touched);
    if (batch->rows == NULL || batch->row_payload_offset == NULL || batch->row_outcome == NULL ||
        batch->outcome_first_event == NULL || batch->new_streams == NULL ||
        batch->store_streams == NULL || batch->touched == NULL)
        return ARB_ENOMEM;
    return batch_reserve_events(batch, 2 * ARB_BATCH_PROPOSALS_MAX);
}

static void batch_reset(arb__batch *batch)
{
    for (size_t i = 0; i < batch->event_count; i++)
        arb_event_clear(&batch->events[i]);
    batch->event_count = 0;
    batch->row_count = 0;
    batch->new_stream_count = 0;
    batch->touched_count = 0;
    arb_buf_reset(&batch->texts);
}

void arb__batch_free(arb__batch *batch)
{
    batch_reset(batch);
    free(batch->events);
    free(batch->event_data_offset);
    free(batch->event_data_len);
    free(batch->store_events);
    free(batch->rows);
    free(batch->row_payload_offset);
    free(batch->row_outcome);
    free(batch->outcome_first_event);
    free(batch->new_streams);
    free(batch->store_streams);
    free(batch->touched);
    arb_buf_free(&batch->texts);
    arb_buf_free(&batch->scratch);
    memset(batch, 0, sizeof *batch);
}

/* The server's clock in Unix ms; never earlier than its last reading. */
static int64_t engine_now(arb_engine *engine)
{
    int64_t now;
    if (engine->clock_ms != NULL) {
        now = engine->clock_ms(engine->clock_user);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    if (now < engine->last_now_ms)
        now = engine->last_now_ms; /* applied_at never goes backwards */
    engine->last_now_ms = now;
    return now;
}

static void random_bytes(void *user, void *buf, size_t len)
{
    (void)user;
    randombytes_buf(buf, len);
}

static void reject(arb_outcome *outcome, int code, json_t *details, uint64_t version,
                   const char *message)
{
    outcome->kind = ARB_OUTCOME_REJECTED;
    outcome->code = code;
    outcome->details = details;
    outcome->version = version;
    snprintf(outcome->message, sizeof outcome->message, "%s", message);
}

static bool client_id_valid(const arb_command *command)
{
    const char *id = command->principal.id;
    if (strcmp(id, SYSTEM_CLIENT_ID) == 0)
        return command->principal.role == ARB_ROLE_SYSTEM;
    if (id[0] == '\0')
        return false;
    for (const char *p = id; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':' || c == '@'))
            return false;
    }
    return true;
}

/* BLAKE2b of the command's content: the same key with other content is a
 * misuse, not a retry. Also bounds the args. */
static int fingerprint(arb__batch *batch, const arb_command *command, uint8_t out[ARB_HASH_BYTES])
{
    arb_buf *scratch = &batch->scratch;
    arb_buf_reset(scratch);
    int rc = arb_buf_append_str(scratch, command->stream);
    if (rc == 0)
        rc = arb_buf_append_char(scratch, '\n');
    if (rc == 0)
        rc = arb_buf_append_str(scratch, command->action);
    if (rc == 0)
        rc = arb_buf_append_str(scratch, command->has_expect ? "\n=" : "\n-");
    if (rc == 0 && command->has_expect)
        rc = arb_buf_append_u64(scratch, command->expect);
    if (rc == 0)
        rc = arb_buf_append_char(scratch, '\n');
    size_t args_start = scratch->len;
    if (rc == 0)
        rc = arb_canon_json(scratch, command->args);
    if (rc == 0 && scratch->len - args_start > ARB_ARGS_BYTES_MAX)
        rc = ARB_ETOO_LARGE;
    if (rc == 0)
        arb_hash(scratch->data, scratch->len, out);
    return rc;
}

static void outcome_from_row(arb_outcome *outcome, const arb_store_outcome *row,
                             const char *payload, size_t payload_len)
{
    json_t *value = NULL;
    if (payload != NULL) {
        char why[128];
        (void)arb_json_parse(payload, payload_len, ARB_EVENT_BYTES_MAX, &value, why, sizeof why);
    }
    outcome->kind = (arb_outcome_kind)row->kind;
    outcome->replay = true;
    outcome->seq_first = row->seq_first;
    outcome->seq_last = row->seq_last;
    outcome->code = row->code;
    memcpy(outcome->message, row->message, sizeof outcome->message);
    outcome->version = row->version;
    if (outcome->kind == ARB_OUTCOME_COMMITTED)
        outcome->result = value;
    else
        outcome->details = value;
}

/* The row of (client, seq) in a batch slot, or NULL. */
static const arb_store_outcome *batch_find_row(const arb__batch *batch, const arb_command *command,
                                               const char **payload_out)
{
    for (size_t r = batch->row_count; r-- > 0;) {
        const arb_store_outcome *row = &batch->rows[r];
        if (row->client_seq == command->client_seq &&
            strcmp(row->client_id, command->principal.id) == 0) {
            size_t offset = batch->row_payload_offset[r];
            *payload_out = offset == SIZE_MAX ? NULL : batch->texts.data + offset;
            return row;
        }
    }
    return NULL;
}

/* Look for an earlier outcome of (client, seq): in the batch being decided,
 * in the batch in flight, then in the store (after draining the pipeline, so
 * that only one thread ever uses the store). Returns true when outcome was
 * filled (a replay or a misuse). */
static bool find_earlier(arb_engine *engine, const arb_command *command,
                         const uint8_t fp[ARB_HASH_BYTES], arb_outcome *outcome)
{
    const char *payload = NULL;
    const arb_store_outcome *row = batch_find_row(engine->batch, command, &payload);
    if (row == NULL && engine->in_flight != NULL)
        row = batch_find_row(engine->in_flight, command, &payload);
    arb_store_outcome stored;
    char *stored_payload = NULL;
    if (row == NULL) {
        arb__engine_drain(engine);
        int rc = engine->store->ops->outcome(engine->store, command->principal.id,
                                             command->client_seq, &stored, &stored_payload);
        if (rc == ARB_ENOTFOUND)
            return false;
        if (rc != 0) {
            arb_log(ARB_LOG_ERROR, "outcome lookup failed; stopping", "error=%s", arb_err_name(rc));
            abort();
        }
        row = &stored;
        payload = stored_payload;
    }
    if (sodium_memcmp(row->fingerprint, fp, ARB_HASH_BYTES) != 0) {
        reject(outcome, ARB_EIDEMPOTENCY_KEY_REUSED,
               json_pack("{s:I}", "client_seq", (json_int_t)command->client_seq), 0,
               "client_seq was already used for a different proposal");
    } else {
        outcome_from_row(outcome, row, payload, payload != NULL ? row->payload_json_len : 0);
    }
    free(stored_payload);
    return true;
}

static int stream_for(arb_engine *engine, const arb_command *command, arb__stream **stream_out)
{
    arb__stream *stream = arb_map_get(&engine->streams, command->stream);
    if (stream != NULL) {
        *stream_out = stream;
        return 0;
    }
    char kind[ARB_KIND_BYTES_MAX + 1];
    int rc = arb_stream_name_valid(command->stream, kind);
    if (rc != 0)
        return rc;
    if (command->principal.role == ARB_ROLE_USER)
        return ARB_ESTREAM_NOT_FOUND;
    rc = arb__stream_new(command->stream, &stream);
    if (rc != 0)
        return rc;
    rc = arb_map_put(&engine->streams, stream->name, stream);
    if (rc != 0) {
        arb__stream_free(stream);
        return rc;
    }
    arb__batch *batch = engine->batch;
    ARB_ASSERT(batch->new_stream_count < ARB_BATCH_PROPOSALS_MAX);
    batch->new_streams[batch->new_stream_count++] = stream;
    *stream_out = stream;
    return 0;
}

static void touch(arb__batch *batch, arb__stream *stream)
{
    if (stream->touched_serial == batch->serial)
        return;
    ARB_ASSERT(batch->touched_count < ARB_BATCH_PROPOSALS_MAX);
    stream->touched_serial = batch->serial;
    batch->touched[batch->touched_count++] = stream;
}

/* Turn an accepted decision into events: canonical data first (a rule that
 * emitted something unencodable is rejected before anything changes), then
 * seq, hash chain and evolve. Returns 0 or the rejection code. */
static int append_events(arb_engine *engine, arb__stream *stream, const arb_command *command,
                         arb_decision *decision, int64_t now)
{
    arb__batch *batch = engine->batch;
    size_t first = batch->event_count;
    size_t texts_len = batch->texts.len;
    int rc = batch_reserve_events(batch, first + decision->event_count);
    for (size_t i = 0; rc == 0 && i < decision->event_count; i++) {
        batch->event_data_offset[first + i] = batch->texts.len;
        rc = arb_canon_json(&batch->texts, decision->events[i].data);
        batch->event_data_len[first + i] = batch->texts.len - batch->event_data_offset[first + i];
    }
    /* In an all-or-nothing group, the stream is saved before its first change
     * and the deadlines wait in the group until it commits (atomic.c). */
    if (rc == 0 && engine->group != NULL && stream->touched_serial != batch->serial)
        rc = arb__group_save_stream(engine, stream);
    if (rc != 0) {
        batch->texts.len = texts_len;
        return rc == ARB_ENOMEM ? rc : ARB_EINVALID_ARGUMENT;
    }
    arb__timer_target target = {
        .heap = engine->group != NULL ? &engine->group->timers : &engine->timers, .stream = stream};
    arb_timer_sink sink = arb__timer_sink(&target);
    for (size_t i = 0; i < decision->event_count; i++) {
        arb_event *event = &batch->events[first + i];
        memcpy(event->stream, stream->name, sizeof event->stream);
        event->seq = stream->seq + 1;
        memcpy(event->type, decision->events[i].type, sizeof event->type);
        memcpy(event->client_id, command->principal.id, sizeof event->client_id);
        event->client_seq = command->client_seq;
        event->applied_at_ms = now;
        event->data = decision->events[i].data;
        decision->events[i].data = NULL;
        arb_buf_reset(&batch->scratch);
        rc = arb_canon_event(&batch->scratch, event,
                             batch->texts.data + batch->event_data_offset[first + i],
                             batch->event_data_len[first + i]);
        ARB_ASSERT(rc == 0);
        arb_hash_chain(stream->head_hash, batch->scratch.data, batch->scratch.len, event->hash);
        memcpy(stream->head_hash, event->hash, ARB_HASH_BYTES);
        stream->seq = event->seq;
        batch->event_count++;
        rc = stream->rules->evolve(stream->state, event, &sink);
        if (rc != 0) {
            arb_log(ARB_LOG_ERROR, "rules refused their own event; stopping",
                    "stream=%s seq=%llu type=%s", stream->name, (unsigned long long)event->seq,
                    event->type);
            abort();
        }
    }
    decision->event_count = 0;
    touch(batch, stream);
    return 0;
}

static void decide(arb_engine *engine, arb__stream *stream, const arb_command *command, int64_t now,
                   arb_outcome *outcome)
{
    arb_decision *decision = &engine->decision;
    arb_decision_init(decision);
    arb_ctx ctx = {.now_ms = now,
                   .next_seq = stream->seq + 1,
                   .version = stream->seq,
                   .random_bytes = random_bytes,
                   .random_user = NULL};
    stream->rules->decide(stream->state, command, &ctx, decision);
    int code = decision->code;
    if (code == 0) {
        ARB_ASSERT(decision->event_count > 0);
        code = append_events(engine, stream, command, decision, now);
    }
    if (code == 0) {
        outcome->kind = ARB_OUTCOME_COMMITTED;
        outcome->seq_first = ctx.next_seq;
        outcome->seq_last = stream->seq;
        outcome->result = decision->result;
        decision->result = NULL;
    } else if (decision->code != 0) {
        outcome->kind = ARB_OUTCOME_REJECTED;
        outcome->code = decision->code;
        memcpy(outcome->message, decision->message, sizeof outcome->message);
        outcome->details = decision->details;
        decision->details = NULL;
    } else {
        reject(outcome, code, NULL, 0,
               code == ARB_ENOMEM ? arb_err_message(code)
                                  : "the rules produced an event that cannot be encoded");
    }
    outcome->version = stream->seq;
    arb_decision_clear(decision);
}

static void record(arb_engine *engine, const arb_outcome *outcome, size_t index,
                   const uint8_t fp[ARB_HASH_BYTES], int64_t now)
{
    arb__batch *batch = engine->batch;
    ARB_ASSERT(batch->row_count < ARB_BATCH_PROPOSALS_MAX);
    size_t r = batch->row_count++;
    arb_store_outcome *row = &batch->rows[r];
    memcpy(row->client_id, outcome->client_id, sizeof row->client_id);
    row->client_seq = outcome->client_seq;
    memcpy(row->fingerprint, fp, ARB_HASH_BYTES);
    memcpy(row->stream, outcome->stream, sizeof row->stream);
    row->kind = (int)outcome->kind;
    row->seq_first = outcome->seq_first;
    row->seq_last = outcome->seq_last;
    row->code = outcome->code;
    memcpy(row->message, outcome->message, sizeof row->message);
    row->version = outcome->version;
    row->decided_at_ms = now;
    batch->row_outcome[r] = index;
    batch->row_payload_offset[r] = SIZE_MAX;
    const json_t *payload =
        outcome->kind == ARB_OUTCOME_COMMITTED ? outcome->result : outcome->details;
    if (payload != NULL) {
        size_t offset = batch->texts.len;
        if (arb_canon_json(&batch->texts, payload) == 0) {
            batch->row_payload_offset[r] = offset;
            row->payload_json_len = batch->texts.len - offset;
        }
    }
    uintptr_t seen = (uintptr_t)arb_map_get(&engine->clients, outcome->client_id);
    if (outcome->client_seq > seen &&
        arb_map_put(&engine->clients, outcome->client_id, (void *)(uintptr_t)outcome->client_seq) ==
            ARB_ELIMIT)
        engine->clients_incomplete = true;
}

/* A proposal with a valid, unseen key: its stream, the expected version,
 * then the rules. */
static void decide_new(arb_engine *engine, const arb_command *command, int64_t now,
                       arb_outcome *outcome)
{
    arb__stream *stream = NULL;
    int rc = stream_for(engine, command, &stream);
    if (rc != 0) {
        reject(outcome, rc, json_pack("{s:s}", "stream", command->stream), 0, arb_err_message(rc));
    } else if (command->has_expect && command->expect != stream->seq) {
        reject(outcome, ARB_EVERSION_CONFLICT,
               json_pack("{s:I}", "version", (json_int_t)stream->seq), stream->seq,
               arb_err_message(ARB_EVERSION_CONFLICT));
    } else {
        decide(engine, stream, command, now, outcome);
    }
}

void arb__execute_one(arb_engine *engine, const arb_command *command, size_t index,
                      arb_outcome *outcomes, int64_t now)
{
    arb_outcome *outcome = &outcomes[index];
    arb_outcome_init(outcome);
    memcpy(outcome->client_id, command->principal.id, sizeof outcome->client_id);
    outcome->client_seq = command->client_seq;
    memcpy(outcome->stream, command->stream, sizeof outcome->stream);
    engine->batch->outcome_first_event[index] = engine->batch->event_count;

    if (!client_id_valid(command) || command->client_seq == 0 ||
        command->client_seq > (uint64_t)ARB_JSON_INT_MAX || !json_is_object(command->args)) {
        reject(outcome, ARB_EINVALID_ARGUMENT, NULL, 0,
               "client_id ([A-Za-z0-9_.:@-]+), client_seq (1..2^53-1) and args (an object) "
               "are required");
        return;
    }
    uint8_t fp[ARB_HASH_BYTES];
    int rc = fingerprint(engine->batch, command, fp);
    if (rc != 0) {
        reject(outcome, rc, json_pack("{s:s}", "field", "args"), 0,
               "args: too large, too deep, or not integers-only JSON");
        return;
    }
    uintptr_t seen = (uintptr_t)arb_map_get(&engine->clients, command->principal.id);
    if ((command->client_seq <= seen || (seen == 0 && engine->clients_incomplete)) &&
        find_earlier(engine, command, fp, outcome))
        return;
    if (engine->group != NULL && engine->group->aborting)
        arb__group_verdict(engine, command, index, outcome);
    else
        decide_new(engine, command, now, outcome);
    /* A stale timer's rejection is noise, not an outcome anyone waits for.
     * In a group every rejection is kept, so that a resend is answered alike. */
    if (command->principal.role == ARB_ROLE_SYSTEM && outcome->kind == ARB_OUTCOME_REJECTED &&
        engine->group == NULL)
        return;
    record(engine, outcome, index, fp, now);
}

/* Point the store batch at this slot's texts, which no longer move. */
static bool prepare_store_batch(arb__batch *batch)
{
    for (size_t i = 0; i < batch->event_count; i++) {
        batch->store_events[i].event = &batch->events[i];
        batch->store_events[i].data_json = batch->texts.data + batch->event_data_offset[i];
        batch->store_events[i].data_json_len = batch->event_data_len[i];
    }
    for (size_t r = 0; r < batch->row_count; r++) {
        size_t offset = batch->row_payload_offset[r];
        batch->rows[r].payload_json = offset == SIZE_MAX ? NULL : batch->texts.data + offset;
        if (offset == SIZE_MAX)
            batch->rows[r].payload_json_len = 0;
    }
    for (size_t i = 0; i < batch->new_stream_count; i++) {
        batch->store_streams[i].name = batch->new_streams[i]->name;
        batch->store_streams[i].kind = batch->new_streams[i]->kind;
    }
    arb_store_batch store_batch = {.new_streams = batch->store_streams,
                                   .new_stream_count = batch->new_stream_count,
                                   .events = batch->store_events,
                                   .event_count = batch->event_count,
                                   .outcomes = batch->rows,
                                   .outcome_count = batch->row_count};
    batch->store_batch = store_batch;
    return batch->event_count > 0 || batch->row_count > 0 || batch->new_stream_count > 0;
}

/* A batch is durable: tell the world, in commit order. */
static void complete(arb_engine *engine, arb__batch *batch)
{
    for (size_t i = 0; i < batch->new_stream_count; i++)
        batch->new_streams[i]->persisted = true;
    if (engine->on_commit != NULL && batch->event_count > 0)
        engine->on_commit(engine->on_commit_user, batch->events, batch->event_count);
    for (size_t i = 0; i < batch->touched_count; i++)
        if (arb__snapshot_due(engine, batch->touched[i]))
            engine->snapshot_due = true;
}

void arb__engine_drain(arb_engine *engine)
{
    arb__batch *batch = engine->in_flight;
    if (batch == NULL)
        return;
    int rc = arb__committer_wait(&engine->committer);
    if (rc != 0) {
        /* Memory is now ahead of the disk. Acknowledging anything would be a
         * lie; recovery from the log restores a true state. */
        arb_log(ARB_LOG_ERROR, "commit failed; stopping without acknowledging the batch",
                "error=%s events=%zu outcomes=%zu", arb_err_name(rc), batch->event_count,
                batch->row_count);
        abort();
    }
    engine->in_flight = NULL;
    complete(engine, batch);
}

bool arb__snapshot_due(const arb_engine *engine, const arb__stream *stream)
{
    uint64_t every = engine->snapshot_every;
    uint64_t by_size = stream->snapshot_bytes / ARB_SNAPSHOT_BYTES_PER_EVENT;
    return stream->seq - stream->snapshot_seq >= (by_size > every ? by_size : every);
}

static int snapshot_one(void *user, const char *name, void *value)
{
    (void)name;
    arb_engine *engine = user;
    arb__stream *stream = value;
    if (!arb__snapshot_due(engine, stream))
        return 0;
    json_t *state = NULL;
    arb_buf text;
    arb_buf_init(&text, ARB_SNAPSHOT_BYTES_MAX);
    int rc = stream->rules->snapshot_save(stream->state, &state);
    if (rc == 0)
        rc = arb_canon_json(&text, state);
    if (rc == 0)
        rc = engine->store->ops->snapshot_put(engine->store, stream->name, stream->seq, text.data,
                                              text.len);
    if (rc == 0) {
        stream->snapshot_seq = stream->seq;
        stream->snapshot_bytes = text.len;
    } else
        arb_log(ARB_LOG_WARN, "snapshot not written; recovery will replay further",
                "stream=%s seq=%llu error=%s", stream->name, (unsigned long long)stream->seq,
                arb_err_name(rc));
    json_decref(state);
    arb_buf_free(&text);
    return 0;
}

/* Snapshots are taken only with the pipeline drained, so that the state in
 * memory is exactly the durable state at stream->seq. */
static void take_snapshots(arb_engine *engine)
{
    arb__engine_drain(engine);
    engine->snapshot_due = false;
    arb_map_foreach(&engine->streams, snapshot_one, engine);
}

void arb__batch_discard(arb_engine *engine)
{
    arb__batch *batch = engine->batch;
    ARB_ASSERT(batch != engine->in_flight);
    batch_reset(batch);
    batch->serial = ++engine->batch_serial;
}

int64_t arb__batch_begin(arb_engine *engine)
{
    if (engine->snapshot_due)
        take_snapshots(engine);
    arb__batch_discard(engine);
    return engine_now(engine);
}

void arb__batch_end(arb_engine *engine, size_t count, arb_outcome *outcomes)
{
    arb__batch *batch = engine->batch;
    ARB_ASSERT(count <= ARB_BATCH_PROPOSALS_MAX);
    for (size_t i = 0; i < count; i++) {
        arb_outcome *outcome = &outcomes[i];
        if (outcome->kind != ARB_OUTCOME_COMMITTED || outcome->replay)
            continue;
        outcome->events = &batch->events[batch->outcome_first_event[i]];
        outcome->event_count = (size_t)(outcome->seq_last - outcome->seq_first + 1);
    }
    /* The previous batch first: batches become durable in order. */
    arb__engine_drain(engine);
    if (prepare_store_batch(batch)) {
        arb__committer_post(&engine->committer, &batch->store_batch);
        engine->in_flight = batch;
        engine->batch = batch == &engine->slots[0] ? &engine->slots[1] : &engine->slots[0];
    }
}

int arb__batch_misuse(const arb_engine *engine, size_t count)
{
    if (engine->read_only)
        return ARB_EUSAGE;
    if (count == 0 || count > ARB_BATCH_PROPOSALS_MAX)
        return ARB_ELIMIT;
    ARB_ASSERT(engine->group == NULL);
    return 0;
}

int arb_engine_submit(arb_engine *engine, const arb_command *commands, size_t count,
                      arb_outcome *outcomes)
{
    int misuse = arb__batch_misuse(engine, count);
    if (misuse != 0)
        return misuse;
    int64_t now = arb__batch_begin(engine);
    for (size_t i = 0; i < count; i++)
        arb__execute_one(engine, &commands[i], i, outcomes, now);
    arb__batch_end(engine, count, outcomes);
    return 0;
}

int arb_engine_flush(arb_engine *engine)
{
    if (engine->read_only)
        return ARB_EUSAGE;
    arb__engine_drain(engine);
    return 0;
}

int arb_engine_execute(arb_engine *engine, const arb_command *commands, size_t count,
                       arb_outcome *outcomes)
{
    int rc = arb_engine_submit(engine, commands, count, outcomes);
    if (rc == 0)
        arb__engine_drain(engine);
    return rc;
}

/* The engine's own proposals (timers, presence): tick_commands[0..count)
 * are filled by system_command and proposed as one batch by
 * execute_system, which clears them. */
static void system_command(arb_engine *engine, size_t index, uint64_t *system_seq,
                           const char *stream, const char *action, json_t *args)
{
    arb_command *command = &engine->tick_commands[index];
    arb_command_init(command);
    int rc = arb_command_set(command, SYSTEM_CLIENT_ID, ARB_ROLE_SYSTEM, ++*system_seq, stream,
                             action, args);
    ARB_ASSERT(rc == 0);
}

static int execute_system(arb_engine *engine, size_t count)
{
    if (count == 0)
        return 0;
    int rc = arb_engine_execute(engine, engine->tick_commands, count, engine->tick_outcomes);
    for (size_t i = 0; i < count; i++) {
        arb_command_clear(&engine->tick_commands[i]);
        if (rc == 0)
            arb_outcome_clear(&engine->tick_outcomes[i]);
    }
    return rc;
}

int arb_engine_tick(arb_engine *engine, size_t *fired_out)
{
    *fired_out = 0;
    if (engine->read_only)
        return ARB_EUSAGE;
    int64_t now = engine_now(engine);
    uint64_t system_seq = arb_engine_client_seq_max(engine, SYSTEM_CLIENT_ID);
    size_t count = 0;
    const arb__timer *first;
    while (count < ARB_TIMERS_PER_TICK_MAX && (first = arb__timers_peek(&engine->timers)) != NULL &&
           first->at_ms <= now) {
        arb__timer timer;
        arb__timers_pop(&engine->timers, &timer);
        const arb_rules *rules = timer.stream->rules;
        if (rules->timer_due == NULL ||
            rules->timer_due(timer.stream->state, timer.action, timer.args))
            system_command(engine, count++, &system_seq, timer.stream->name, timer.action,
                           timer.args);
        json_decref(timer.args); /* an overtaken timer is dropped unproposed */
    }
    *fired_out = count;
    return execute_system(engine, count);
}

_Static_assert(ARB_PRESENCE_STREAMS_MAX <= ARB_TIMERS_PER_TICK_MAX,
               "presence proposals fit the engine's own batch");

typedef struct presence_scan {
    const char *client_id;
    bool online;
    size_t count;
    arb__stream *streams[ARB_PRESENCE_STREAMS_MAX];
} presence_scan;

static int presence_matters(void *user, const char *key, void *value)
{
    (void)key;
    presence_scan *scan = user;
    arb__stream *stream = value;
    if (scan->count < ARB_PRESENCE_STREAMS_MAX && stream->rules->presence != NULL &&
        stream->rules->presence(stream->state, scan->client_id, scan->online))
        scan->streams[scan->count++] = stream;
    return 0;
}

int arb_engine_presence(arb_engine *engine, const char *client_id, bool online,
                        size_t *proposed_out)
{
    *proposed_out = 0;
    if (engine->read_only)
        return ARB_EUSAGE;
    presence_scan scan = {.client_id = client_id, .online = online};
    arb_map_foreach(&engine->streams, presence_matters, &scan);
    if (scan.count == 0)
        return 0;
    json_t *args = json_pack("{s:s, s:b}", "player", client_id, "online", online);
    if (args == NULL)
        return ARB_ENOMEM;
    uint64_t system_seq = arb_engine_client_seq_max(engine, SYSTEM_CLIENT_ID);
    for (size_t i = 0; i < scan.count; i++)
        system_command(engine, i, &system_seq, scan.streams[i]->name, "presence", args);
    json_decref(args);
    *proposed_out = scan.count;
    return execute_system(engine, scan.count);
}
