/*
 * replay.c - the stream record and the replay of one stored event, shared by
 * start-up recovery (engine.c) and arbiter verify (verify.c).
 *
 * Replaying is where a tampered or torn log is caught: every event must have
 * the next seq, its hash must equal BLAKE2b(previous hash || canonical
 * bytes), and its rules must accept it. Anything else is ARB_ECORRUPT with a
 * sentence naming the stream and seq, and the server refuses to serve it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/canon.h"
#include "engine/internal.h"

int arb__stream_new(const char *name, arb__stream **stream_out)
{
    *stream_out = NULL;
    char kind[ARB_KIND_BYTES_MAX + 1];
    int rc = arb_stream_name_valid(name, kind);
    if (rc != 0)
        return rc;
    const arb_rules *rules = arb_rules_find(kind);
    if (rules == NULL)
        return ARB_EUNKNOWN_KIND;
    arb__stream *stream = calloc(1, sizeof *stream);
    if (stream == NULL)
        return ARB_ENOMEM;
    memcpy(stream->name, name, strlen(name) + 1);
    memcpy(stream->kind, kind, strlen(kind) + 1);
    stream->rules = rules;
    rc = rules->state_new(&stream->state);
    if (rc != 0) {
        free(stream);
        return rc;
    }
    *stream_out = stream;
    return 0;
}

void arb__stream_free(arb__stream *stream)
{
    if (stream == NULL)
        return;
    if (stream->state != NULL)
        stream->rules->state_free(stream->state);
    free(stream);
}

int arb__chain_event(arb__stream *stream, const arb_event *stored, const char *data_json,
                     size_t data_json_len, arb_buf *scratch, char *why, size_t why_size)
{
    if (strcmp(stored->stream, stream->name) != 0 || stored->seq != stream->seq + 1) {
        snprintf(why, why_size, "expected seq %llu, found %llu (a gap or a duplicate)",
                 (unsigned long long)stream->seq + 1, (unsigned long long)stored->seq);
        return ARB_ECORRUPT;
    }
    arb_buf_reset(scratch);
    int rc = arb_canon_event(scratch, stored, data_json, data_json_len);
    if (rc != 0) {
        snprintf(why, why_size, "event too large to encode (%s)", arb_err_name(rc));
        return ARB_ECORRUPT;
    }
    uint8_t hash[ARB_HASH_BYTES];
    arb_hash_chain(stream->head_hash, scratch->data, scratch->len, hash);
    if (memcmp(hash, stored->hash, ARB_HASH_BYTES) != 0) {
        snprintf(why, why_size, "hash mismatch: the event or one before it was altered");
        return ARB_ECORRUPT;
    }
    stream->seq = stored->seq;
    memcpy(stream->head_hash, hash, ARB_HASH_BYTES);
    return 0;
}

int arb__replay_event(arb__stream *stream, const arb_event *stored, const char *data_json,
                      size_t data_json_len, const arb_timer_sink *timers, arb_buf *scratch,
                      char *why, size_t why_size)
{
    /* Chained first, then applied; a refusal leaves seq and hash as they
     * were. */
    uint64_t seq_before = stream->seq;
    uint8_t hash_before[ARB_HASH_BYTES];
    memcpy(hash_before, stream->head_hash, ARB_HASH_BYTES);
    int rc = arb__chain_event(stream, stored, data_json, data_json_len, scratch, why, why_size);
    if (rc != 0)
        return rc;
    arb_event event = *stored;
    char parse_why[160];
    rc = arb_json_parse(data_json, data_json_len, ARB_EVENT_BYTES_MAX, &event.data, parse_why,
                        sizeof parse_why);
    if (rc != 0 || !json_is_object(event.data)) {
        snprintf(why, why_size, "event data is not a JSON object: %s",
                 rc != 0 ? parse_why : "wrong type");
        rc = ARB_ECORRUPT;
    } else {
        rc = stream->rules->evolve(stream->state, &event, timers);
        if (rc != 0)
            snprintf(why, why_size, "the %s rules refuse event type %s", stream->kind,
                     stored->type);
    }
    json_decref(event.data);
    if (rc != 0) {
        stream->seq = seq_before;
        memcpy(stream->head_hash, hash_before, ARB_HASH_BYTES);
        return ARB_ECORRUPT;
    }
    return 0;
}
