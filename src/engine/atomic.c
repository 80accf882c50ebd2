/*
 * atomic.c - all-or-nothing groups (arb_engine_execute_atomic): a client's
 * offline batch sent with sync {atomic: true}, where every new proposal is
 * accepted or none is applied.
 *
 * Approach: decide through the ordinary path, and undo on abort. The group is
 * decided by execute.c's arb__execute_one into an empty batch slot, so that
 * proposal k sees the effects of proposals 0..k-1, and idempotency, stream
 * creation and optimistic concurrency behave exactly as in execute. Each
 * proposal is decided once, so nothing can differ between a trial and a real
 * run (randomness included). While engine->group is set, that path changes
 * the engine in these ways only, and each one can be put back:
 *
 *   what deciding the group changes        how an abort puts it back
 *   -------------------------------------  -----------------------------------
 *   the batch slot: events, outcome rows,  the slot is emptied: the group is
 *     texts, new/touched stream lists        all that is in it (the pipeline is
 *                                            drained first) and nothing of it
 *                                            was posted to the committer
 *   an existing stream's state, seq and    saved before its first change
 *     head hash                              (arb__group_save_stream, from
 *                                            append_events) and restored
 *   a stream created by the group          removed from the map and freed
 *   deadlines reported while evolving      held in group->timers: armed when
 *                                            the group commits, dropped when
 *                                            it aborts; so no stale timer can
 *                                            later hit an entity whose id was
 *                                            reused
 *   the clients map (highest client_seq)   nothing to do: the second pass
 *                                            records a row for every key the
 *                                            first pass recorded, so each
 *                                            maximum is still a stored key
 *   touched_serial of streams              the slot gets a new serial
 *
 * Nothing else is written while deciding: decide is pure, the store is only
 * read (find_earlier), and the committer is handed nothing before the
 * group's fate is known. So after an undo, memory is exactly the durable
 * state the group started from.
 *
 *   pass 1  decide in order until the first NEW proposal that is rejected
 *           (index failed); replays of earlier decisions take no part
 *   none rejected  -> drop the saved states, arm the deadlines, commit
 *   else           -> undo as above; pass 2 goes over every command through
 *                     the same path, where a new proposal is not decided but
 *                     given its verdict: failed its own rejection from pass
 *                     1, every other ABORTED {"failed": failed}; commit the
 *                     rejection rows (no events, no stream, no timer)
 *
 * Why pass 2 gives the failed proposal its own rejection and the others
 * their verdicts: the checks before the verdict (key syntax, fingerprint,
 * earlier outcome) depend only on the commands, on the store, which nothing
 * changed in between, and on the rows already in the slot, which for indexes
 * below failed hold the same keys and fingerprints in both passes (pass 1
 * recorded every new proposal there, pass 2 records each again). So pass 2
 * reaches the verdict for an index <= failed exactly when pass 1 decided it,
 * an intra-group duplicate replays the verdict of its first occurrence, and
 * an invalid key keeps its own code. Both are asserted below.
 *
 * Restoring relies on snapshot_load(snapshot_save(s)) being s, as recovery
 * from a snapshot already does; every restore asserts it by saving again.
 *
 * Cost: every existing stream the group changes is saved with snapshot_save
 * (and, on abort, restored with snapshot_load), so a group costs the size of
 * the states it touches. Groups are a client's offline batch, not the hot path.
 *
 * Ownership: the group lives in the engine (group_slot); engine->group points
 * at it only during arb_engine_execute_atomic, and the saved snapshots and
 * held deadlines are released before it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/log.h"
#include "engine/internal.h"

int arb__group_save_stream(arb_engine *engine, arb__stream *stream)
{
    arb__group *group = engine->group;
    const arb__batch *batch = engine->batch;
    ARB_ASSERT(group != NULL && !group->aborting);
    ARB_ASSERT(stream->touched_serial != batch->serial);
    for (size_t i = 0; i < batch->new_stream_count; i++)
        if (batch->new_streams[i] == stream)
            return 0; /* created by the group: an abort removes it whole */
    for (size_t i = 0; i < group->saved_count; i++)
        ARB_ASSERT(group->saved[i].stream != stream);
    /* One save per accepted proposal at most, and a group has no more. */
    ARB_ASSERT(group->saved_count < ARB_BATCH_PROPOSALS_MAX);
    json_t *snapshot = NULL;
    int rc = stream->rules->snapshot_save(stream->state, &snapshot);
    if (rc != 0)
        return rc;
    arb__group_saved *saved = &group->saved[group->saved_count++];
    saved->stream = stream;
    saved->seq = stream->seq;
    memcpy(saved->head_hash, stream->head_hash, ARB_HASH_BYTES);
    saved->snapshot = snapshot;
    return 0;
}

/* Put a stream back as it was before the group. */
static void restore_stream(arb__group_saved *saved)
{
    arb__stream *stream = saved->stream;
    ARB_ASSERT(stream->seq >= saved->seq);
    void *state = NULL;
    int rc = stream->rules->snapshot_load(saved->snapshot, saved->seq, &state, NULL);
    if (rc != 0) {
        /* The stream holds changes that were never committed. Serving it
         * would be a lie; recovery from the log restores the true state. */
        arb_log(ARB_LOG_ERROR, "cannot undo an aborted group; stopping", "stream=%s error=%s",
                stream->name, arb_err_name(rc));
        abort();
    }
    /* The state saved and the state restored must be the same state. */
    json_t *again = NULL;
    if (stream->rules->snapshot_save(state, &again) == 0)
        ARB_ASSERT(json_equal(again, saved->snapshot));
    json_decref(again);
    stream->rules->state_free(stream->state);
    stream->state = state;
    stream->seq = saved->seq;
    memcpy(stream->head_hash, saved->head_hash, ARB_HASH_BYTES);
    json_decref(saved->snapshot);
    saved->snapshot = NULL;
}

/* The group commits: its changes stay, its deadlines are armed. */
static void keep(arb_engine *engine)
{
    arb__group *group = engine->group;
    for (size_t i = 0; i < group->saved_count; i++) {
        json_decref(group->saved[i].snapshot);
        group->saved[i].snapshot = NULL;
    }
    group->saved_count = 0;
    arb__timers_move(&engine->timers, &group->timers);
    ARB_ASSERT(group->timers.count == 0);
}

/* The group aborts: memory back to the state it started from. */
static void undo(arb_engine *engine)
{
    arb__group *group = engine->group;
    arb__batch *batch = engine->batch;
    for (size_t i = 0; i < group->saved_count; i++)
        restore_stream(&group->saved[i]);
    group->saved_count = 0;
    arb__timers_free(&group->timers); /* before the streams they name go */
    for (size_t i = 0; i < batch->new_stream_count; i++) {
        arb__stream *stream = batch->new_streams[i];
        ARB_ASSERT(!stream->persisted);
        void *removed = arb_map_remove(&engine->streams, stream->name);
        ARB_ASSERT(removed == stream);
        arb__stream_free(stream);
    }
    arb__batch_discard(engine);
    ARB_ASSERT(batch->event_count == 0 && batch->row_count == 0 && batch->new_stream_count == 0);
}

void arb__group_verdict(arb_engine *engine, const arb_command *command, size_t index,
                        arb_outcome *outcome)
{
    arb__group *group = engine->group;
    ARB_ASSERT(group != NULL && group->aborting);
    /* Nothing of the group was applied: this is the version the stream has. */
    const arb__stream *stream = arb_map_get(&engine->streams, command->stream);
    uint64_t version = stream != NULL ? stream->seq : 0;
    if (index == group->failed) {
        ARB_ASSERT(group->failed_outcome.kind == ARB_OUTCOME_REJECTED);
        ARB_ASSERT(group->failed_outcome.client_seq == command->client_seq);
        *outcome = group->failed_outcome; /* moved: details go with it */
        arb_outcome_init(&group->failed_outcome);
        outcome->version = version;
        return;
    }
    outcome->kind = ARB_OUTCOME_REJECTED;
    outcome->code = ARB_EABORTED;
    outcome->details = json_pack("{s:I}", "failed", (json_int_t)group->failed);
    outcome->version = version;
    snprintf(outcome->message, sizeof outcome->message, "%s", arb_err_message(ARB_EABORTED));
}

/* Decide in order; the index of the first new proposal rejected, or count. */
static size_t first_pass(arb_engine *engine, const arb_command *commands, size_t count,
                         arb_outcome *outcomes, int64_t now)
{
    for (size_t i = 0; i < count; i++) {
        arb__execute_one(engine, &commands[i], i, outcomes, now);
        if (outcomes[i].kind == ARB_OUTCOME_REJECTED && !outcomes[i].replay)
            return i;
        ARB_ASSERT(outcomes[i].kind == ARB_OUTCOME_COMMITTED || outcomes[i].replay);
    }
    return count;
}

static void abort_group(arb_engine *engine, const arb_command *commands, size_t count,
                        arb_outcome *outcomes, int64_t now, size_t failed)
{
    arb__group *group = engine->group;
    const arb__batch *batch = engine->batch;
    /* Was the failed proposal decided (a row), or refused before (its key)? */
    bool failed_decided =
        batch->row_count > 0 && batch->row_outcome[batch->row_count - 1] == failed;
    int failed_code = outcomes[failed].code;
    group->failed = failed;
    group->failed_outcome = outcomes[failed];
    arb_outcome_init(&outcomes[failed]);
    for (size_t i = 0; i < failed; i++)
        arb_outcome_clear(&outcomes[i]);
    undo(engine);

    group->aborting = true;
    for (size_t i = 0; i < count; i++)
        arb__execute_one(engine, &commands[i], i, outcomes, now);
    group->aborting = false;

    ARB_ASSERT(outcomes[failed].kind == ARB_OUTCOME_REJECTED && !outcomes[failed].replay);
    ARB_ASSERT(outcomes[failed].code == failed_code);
    /* Decided in pass 1 exactly when given its own verdict in pass 2. */
    ARB_ASSERT(failed_decided == (group->failed_outcome.kind == 0));
    arb_outcome_clear(&group->failed_outcome);
    for (size_t i = 0; i < count; i++)
        ARB_ASSERT(outcomes[i].kind == ARB_OUTCOME_REJECTED || outcomes[i].replay);
    ARB_ASSERT(batch->event_count == 0 && batch->new_stream_count == 0);
    ARB_ASSERT(group->saved_count == 0 && group->timers.count == 0);
}

int arb_engine_execute_atomic(arb_engine *engine, const arb_command *commands, size_t count,
                              arb_outcome *outcomes)
{
    int misuse = arb__batch_misuse(engine, count);
    if (misuse != 0)
        return misuse;
    /* Start from durable state with nothing in flight: the slot then holds
     * the group alone, and the store reads the same in both passes. */
    arb__engine_drain(engine);
    int64_t now = arb__batch_begin(engine); /* one clock reading for the group */
    ARB_ASSERT(engine->in_flight == NULL);
    arb__group *group = &engine->group_slot;
    ARB_ASSERT(group->saved_count == 0 && group->timers.count == 0 && !group->aborting);
    engine->group = group;
    size_t failed = first_pass(engine, commands, count, outcomes, now);
    if (failed == count)
        keep(engine);
    else
        abort_group(engine, commands, count, outcomes, now, failed);
    engine->group = NULL;
    arb__timers_free(&group->timers); /* empty by now; its storage too */
    arb__batch_end(engine, count, outcomes);
    arb__engine_drain(engine);
    return 0;
}
