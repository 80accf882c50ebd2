/*
 * engine.c - opening a data directory (recovery), closing it, and reading
 * state and events.
 *
 * Recovery, per stream: load the newest snapshot if there is one, check the
 * hash chain of the events it stands for (read and hashed, not applied),
 * then replay every later event through its rules, checking seq contiguity
 * and the chain (replay.c). So a changed event anywhere in the log, a
 * stream whose replay ends short of its stored head, or one whose
 * invariants fail afterwards stops the start with a message naming the
 * stream and seq. A corrupt log is never served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/canon.h"
#include "core/log.h"
#include "engine/internal.h"

typedef struct recovery {
    arb_engine *engine;
    arb__stream *stream;
    arb_timer_sink sink;
    arb_buf scratch;
    char why[256];
    uint64_t failed_seq;
} recovery;

static int free_stream(void *user, const char *key, void *value)
{
    (void)user;
    (void)key;
    arb__stream_free(value);
    return 0;
}

void arb_engine_close(arb_engine *engine)
{
    if (engine == NULL)
        return;
    if (!engine->read_only && engine->committer.started) {
        arb__engine_drain(engine);
        arb__committer_stop(&engine->committer);
    }
    arb__timers_free(&engine->timers);
    arb__batch_free(&engine->slots[0]);
    arb__batch_free(&engine->slots[1]);
    arb_map_foreach(&engine->streams, free_stream, NULL);
    arb_map_free(&engine->streams);
    arb_map_free(&engine->clients);
    free(engine->tick_commands);
    free(engine->tick_outcomes);
    if (engine->store != NULL)
        engine->store->ops->close(engine->store);
    free(engine);
}

static int replay_one(void *user, const arb_event *event, const char *data_json, size_t len)
{
    recovery *r = user;
    uint64_t expected = r->stream->seq + 1;
    int rc = arb__replay_event(r->stream, event, data_json, len, &r->sink, &r->scratch, r->why,
                               sizeof r->why);
    if (rc != 0)
        r->failed_seq = event->seq > expected ? expected : event->seq;
    return rc;
}

/* Load the newest snapshot into stream. A snapshot that cannot be loaded is
 * only a lost shortcut: the log is the truth, so recovery then replays the
 * stream from its first event. */
static void load_snapshot(recovery *r, arb__stream *stream)
{
    arb_store *store = r->engine->store;
    uint64_t seq = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = store->ops->snapshot_get(store, stream->name, &seq, &text, &len);
    if (rc == ARB_ENOTFOUND)
        return;
    json_t *snapshot = NULL;
    if (rc == 0)
        rc = arb_json_parse(text, len, ARB_SNAPSHOT_BYTES_MAX, &snapshot, r->why, sizeof r->why);
    free(text);
    void *state = NULL;
    if (rc == 0)
        rc = stream->rules->snapshot_load(snapshot, seq, &state, &r->sink);
    json_decref(snapshot);
    if (rc != 0 || seq == 0) {
        arb_log(ARB_LOG_WARN, "snapshot unusable; replaying the stream from its start",
                "stream=%s seq=%llu error=%s", stream->name, (unsigned long long)seq,
                arb_err_name(rc));
        return;
    }
    stream->rules->state_free(stream->state);
    stream->state = state;
    stream->snapshot_seq = seq;
    stream->snapshot_bytes = len;
}

/* The events the snapshot stands for: not applied, but chained, so that a
 * changed event anywhere in the log stops the start (replay.c). */
static int chain_one(void *user, const arb_event *event, const char *data_json, size_t len)
{
    recovery *r = user;
    uint64_t expected = r->stream->seq + 1;
    int rc = arb__chain_event(r->stream, event, data_json, len, &r->scratch, r->why, sizeof r->why);
    if (rc != 0)
        r->failed_seq = event->seq > expected ? expected : event->seq;
    return rc;
}

static int recover_stream(recovery *r, arb__stream *stream, uint64_t head_seq)
{
    arb_store *store = r->engine->store;
    arb__timer_target target = {.heap = &r->engine->timers, .stream = stream};
    r->sink = arb__timer_sink(&target);
    r->stream = stream;
    load_snapshot(r, stream);
    int rc = 0;
    if (stream->snapshot_seq > 0)
        rc = store->ops->events(store, stream->name, 0, stream->snapshot_seq, chain_one, r);
    if (rc == 0 && stream->seq != stream->snapshot_seq) {
        snprintf(r->why, sizeof r->why, "events the snapshot stands for are missing");
        r->failed_seq = stream->snapshot_seq;
        rc = ARB_ECORRUPT;
    }
    if (rc == 0)
        rc = store->ops->events(store, stream->name, stream->seq, 0, replay_one, r);
    if (rc == 0 && stream->seq != head_seq) {
        snprintf(r->why, sizeof r->why, "replay stopped at seq %llu of %llu",
                 (unsigned long long)stream->seq, (unsigned long long)head_seq);
        r->failed_seq = stream->seq + 1;
        rc = ARB_ECORRUPT;
    }
    if (rc == 0 && stream->rules->check(stream->state, r->why, sizeof r->why) != 0) {
        r->failed_seq = stream->seq;
        rc = ARB_ECORRUPT;
    }
    return rc;
}

static int load_stream(void *user, const char *name, const char *kind, uint64_t head_seq)
{
    recovery *r = user;
    arb__stream *stream = NULL;
    int rc = arb__stream_new(name, &stream);
    if (rc == 0 && strcmp(stream->kind, kind) != 0)
        rc = ARB_ECORRUPT;
    if (rc == 0)
        rc = arb_map_put(&r->engine->streams, stream->name, stream);
    if (rc != 0) {
        arb__stream_free(stream);
        snprintf(r->why, sizeof r->why, "stream cannot be loaded (%s)", arb_err_name(rc));
        r->failed_seq = 0;
        arb_log(ARB_LOG_ERROR, "recovery failed", "stream=%s kind=%s why=\"%s\"", name, kind,
                r->why);
        return rc;
    }
    stream->persisted = true;
    rc = recover_stream(r, stream, head_seq);
    if (rc != 0)
        arb_log(ARB_LOG_ERROR, "recovery failed: the log is damaged; refusing to serve it",
                "stream=%s seq=%llu why=\"%s\"", name, (unsigned long long)r->failed_seq, r->why);
    return rc;
}

static int load_client(void *user, const char *client_id, uint64_t client_seq_max)
{
    arb_engine *engine = user;
    if (client_seq_max == 0)
        return 0;
    if (arb_map_put(&engine->clients, client_id, (void *)(uintptr_t)client_seq_max) == ARB_ELIMIT)
        engine->clients_incomplete = true;
    return 0;
}

static int engine_alloc(const arb_engine_config *config, arb_engine **engine_out)
{
    arb_engine *engine = calloc(1, sizeof *engine);
    if (engine == NULL)
        return ARB_ENOMEM;
    *engine_out = engine;
    engine->read_only = config->read_only;
    engine->clock_ms = config->clock_ms;
    engine->clock_user = config->clock_user;
    engine->snapshot_every =
        config->snapshot_every > 0 ? config->snapshot_every : ARB_SNAPSHOT_EVERY_DEFAULT;
    engine->on_commit = config->on_commit;
    engine->on_commit_user = config->on_commit_user;
    arb_map_init(&engine->streams, ARB_STREAMS_MAX);
    arb_map_init(&engine->clients, ARB_CLIENTS_MAX);
    arb__timers_init(&engine->timers);
    int rc = arb__batch_init(&engine->slots[0]);
    if (rc == 0)
        rc = arb__batch_init(&engine->slots[1]);
    engine->batch = &engine->slots[0];
    engine->tick_commands = calloc(ARB_TIMERS_PER_TICK_MAX, sizeof *engine->tick_commands);
    engine->tick_outcomes = calloc(ARB_TIMERS_PER_TICK_MAX, sizeof *engine->tick_outcomes);
    if (rc == 0 && (engine->tick_commands == NULL || engine->tick_outcomes == NULL))
        rc = ARB_ENOMEM;
    return rc;
}

int arb_engine_open(const arb_engine_config *config, arb_engine **engine_out)
{
    *engine_out = NULL;
    arb_engine *engine = NULL;
    int rc = engine_alloc(config, &engine);
    if (rc == 0)
        rc = arb_store_sqlite_open(config->data_dir,
                                   config->read_only ? ARB_STORE_READ_ONLY : ARB_STORE_READ_WRITE,
                                   &engine->store);
    recovery r = {.engine = engine};
    arb_buf_init(&r.scratch, 2 * ARB_EVENT_BYTES_MAX);
    if (rc == 0)
        rc = engine->store->ops->streams(engine->store, load_stream, &r);
    if (rc == 0)
        rc = engine->store->ops->clients(engine->store, load_client, engine);
    /* A server must not decide again what it already answered: the keys
     * that find the answers are checked before anything is served. */
    if (rc == 0 && !engine->read_only) {
        rc = engine->store->ops->check(engine->store, r.why, sizeof r.why);
        if (rc != 0)
            arb_log(ARB_LOG_ERROR, "recovery failed", "data=%s why=\"%s\"", config->data_dir,
                    r.why);
    }
    arb_buf_free(&r.scratch);
    if (rc == 0 && !engine->read_only)
        rc = arb__committer_start(&engine->committer, engine->store);
    if (rc != 0) {
        arb_engine_close(engine);
        return rc;
    }
    arb_log(ARB_LOG_INFO, "engine opened", "data=%s streams=%zu clients=%zu timers=%zu",
            config->data_dir, engine->streams.count, engine->clients.count, engine->timers.count);
    *engine_out = engine;
    return 0;
}

int arb_engine_state(arb_engine *engine, const char *stream_name, const arb_principal *viewer,
                     json_t **state_out, uint64_t *version_out)
{
    *state_out = NULL;
    arb__stream *stream = arb_map_get(&engine->streams, stream_name);
    if (stream == NULL)
        return ARB_ESTREAM_NOT_FOUND;
    *state_out = stream->rules->view(stream->state, viewer);
    *version_out = stream->seq;
    return *state_out != NULL ? 0 : ARB_ENOMEM;
}

typedef struct events_reader {
    json_t *array;
    const arb_rules *rules;
    const arb_principal *viewer; /* NULL: unredacted */
} events_reader;

static int append_event_json(void *user, const arb_event *event, const char *data_json, size_t len)
{
    events_reader *reader = user;
    arb_event copy = *event;
    char why[128];
    int rc = arb_json_parse(data_json, len, ARB_EVENT_BYTES_MAX, &copy.data, why, sizeof why);
    if (rc != 0)
        return ARB_ECORRUPT;
    if (reader->viewer != NULL) {
        json_t *seen = reader->rules->redact(&copy, reader->viewer);
        json_decref(copy.data);
        if (seen == NULL)
            return 0; /* not for this viewer */
        copy.data = seen;
    }
    json_t *item = arb_event_to_json(&copy);
    json_decref(copy.data);
    return json_array_append_new(reader->array, item) == 0 ? 0 : ARB_ENOMEM;
}

int arb_engine_events_as(arb_engine *engine, const char *stream_name, uint64_t since_seq,
                         uint64_t limit, const arb_principal *viewer, json_t **events_out)
{
    *events_out = NULL;
    const arb__stream *stream = arb_map_get(&engine->streams, stream_name);
    if (stream == NULL)
        return ARB_ESTREAM_NOT_FOUND;
    if (!engine->read_only)
        arb__engine_drain(engine); /* the store has one user at a time */
    events_reader reader = {.array = json_array(), .rules = stream->rules, .viewer = viewer};
    if (reader.array == NULL)
        return ARB_ENOMEM;
    int rc = engine->store->ops->events(engine->store, stream_name, since_seq, limit,
                                        append_event_json, &reader);
    if (rc != 0) {
        json_decref(reader.array);
        return rc;
    }
    *events_out = reader.array;
    return 0;
}

int arb_engine_events(arb_engine *engine, const char *stream, uint64_t since_seq, uint64_t limit,
                      json_t **events_out)
{
    return arb_engine_events_as(engine, stream, since_seq, limit, NULL, events_out);
}

void arb_engine_set_on_written(arb_engine *engine, void (*on_written)(void *user), void *user)
{
    ARB_ASSERT(engine->in_flight == NULL);
    pthread_mutex_lock(&engine->committer.mutex);
    /* A call running now may still use the old user: let it end first. */
    while (engine->committer.calling)
        pthread_cond_wait(&engine->committer.cond, &engine->committer.mutex);
    engine->committer.on_written = on_written;
    engine->committer.on_written_user = user;
    pthread_mutex_unlock(&engine->committer.mutex);
}

bool arb_engine_writing(arb_engine *engine)
{
    return engine->in_flight != NULL && arb__committer_busy(&engine->committer);
}

void arb_engine_set_on_commit(arb_engine *engine,
                              void (*on_commit)(void *user, const arb_event *events, size_t count),
                              void *user)
{
    engine->on_commit = on_commit;
    engine->on_commit_user = user;
}

static int append_name(void *user, const char *key, void *value)
{
    (void)value;
    return json_array_append_new(user, json_string(key)) == 0 ? 0 : ARB_ENOMEM;
}

static int compare_json_strings(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

int arb_engine_streams(arb_engine *engine, json_t **streams_out)
{
    json_t *names = json_array();
    if (names == NULL || arb_map_foreach(&engine->streams, append_name, names) != 0) {
        json_decref(names);
        return ARB_ENOMEM;
    }
    /* A stable order for people and tests: by name. */
    size_t n = json_array_size(names);
    json_t **items = malloc((n > 0 ? n : 1) * sizeof *items);
    if (items == NULL) {
        json_decref(names);
        return ARB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(names, i));
    qsort(items, n, sizeof *items, compare_json_strings);
    json_array_clear(names);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(names, items[i]);
    free(items);
    *streams_out = names;
    return 0;
}

uint64_t arb_engine_client_seq_max(const arb_engine *engine, const char *client_id)
{
    return (uint64_t)(uintptr_t)arb_map_get(&engine->clients, client_id);
}
