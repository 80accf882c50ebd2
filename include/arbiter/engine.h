/*
 * engine.h - the embedding API: open a data directory, propose, read.
 *
 * The engine is the single writer of every stream it holds. It decides a
 * batch of proposals in order, commits the batch in one durable store
 * transaction (group commit), and only then returns the outcomes. Per stream,
 * every accepted proposal gets the next seq with no gap; every proposal gets
 * exactly one outcome, and the same (client_id, client_seq) sent again gets
 * that outcome again, marked as a replay.
 *
 * Failure model: if a commit fails (I/O error, full disk, fsync error), the
 * in-memory state is ahead of the disk and can no longer be trusted. The
 * engine then aborts the process (after logging why) rather than acknowledge
 * anything; a restart recovers from the log. This is deliberate: see
 * DESIGN.md §2.
 *
 * Threads: an engine is used by one thread at a time (the engine thread);
 * it owns a committer thread that writes one batch while the next is decided.
 * Ownership: the caller owns the engine (arb_engine_close) and every command
 * it passes in; outcomes are written into caller-provided structs, which the
 * caller clears with arb_outcome_clear().
 */
#ifndef ARBITER_ENGINE_H
#define ARBITER_ENGINE_H

#include "arbiter/error.h"
#include "arbiter/rules.h"
#include "arbiter/types.h"

typedef struct arb_engine arb_engine;

typedef struct arb_engine_config {
    const char *data_dir; /* borrowed for arb_engine_open only */
    bool read_only;       /* no lock, no writes: state and log only */
    /* The clock (Unix ms). NULL: the real-time clock. Tests pass their own. */
    int64_t (*clock_ms)(void *user);
    void *clock_user;
    /* Events between two snapshots of a stream; 0: ARB_SNAPSHOT_EVERY_DEFAULT. */
    uint32_t snapshot_every;
    /* Called after each durable commit with the batch's events in commit
     * order (borrowed for the call). NULL: none. */
    void (*on_commit)(void *user, const arb_event *events, size_t count);
    void *on_commit_user;
} arb_engine_config;

/* Open the data directory, load every stream (newest snapshot + replay of the
 * events after it, checking the hash chain) and rebuild the timers. */
int arb_engine_open(const arb_engine_config *config, arb_engine **engine_out);
void arb_engine_close(arb_engine *engine);

/* Decide commands[0..count) in order and commit them as one batch. Returns 0
 * with outcomes[i] filled for every i (each gets exactly one outcome, a
 * rejection included), or a negative code for a misuse (count out of range,
 * read-only engine) with nothing decided. count <= ARB_BATCH_PROPOSALS_MAX.
 * The commands are only read. */
int arb_engine_execute(arb_engine *engine, const arb_command *commands, size_t count,
                       arb_outcome *outcomes);

/* Decide commands[0..count) as one all-or-nothing group and commit them
 * as one batch; on return every outcome is durable (like execute).
 * Proposals already decided earlier (a resend: same client_id and
 * client_seq) get their stored outcome, marked replay, and take no part.
 * If every other proposal is accepted, all are applied in order, each
 * seeing the effects of those before it (on any streams). If one is
 * rejected, none is applied: it gets its own code, and every other new
 * proposal gets ARB_EABORTED with details {"failed": INDEX} (INDEX of the
 * first rejected one in commands). Every rejection is recorded, so a resend
 * of the group gets the same outcomes.
 *
 * Details of an aborted group: it leaves no event, no state change, no new
 * stream and no timer behind; the rejections' version is the stream's
 * version, which the group did not change. A proposal whose key is invalid
 * (it cannot be recorded) or reused for other content is a rejection like
 * any other and aborts the group. A duplicate inside the group (the same
 * client_seq twice) gets its first occurrence's outcome, marked replay, as
 * in execute. Rejections of the system principal are recorded too (execute
 * drops them as stale timers). The clock is read once for the whole group.
 *
 * count is 1..ARB_BATCH_PROPOSALS_MAX; returns 0, or the misuse codes of
 * execute with nothing decided. Cost: every existing stream the group
 * changes is copied (rules->snapshot_save) so that an abort can restore it,
 * and the pipeline is drained before the group is decided. */
int arb_engine_execute_atomic(arb_engine *engine, const arb_command *commands, size_t count,
                              arb_outcome *outcomes);

/* The pipelined form of execute, for a caller that keeps the disk busy:
 * decides commands[0..count) now, waits until the batch of the PREVIOUS
 * submit is durable (its on_commit has run), hands this batch to the
 * committer thread, and returns while it is being written.
 *
 * So when submit returns, the outcomes of the previous submit are final and
 * may be released; the outcomes it just filled are NOT durable yet: release
 * them only after the next submit, or arb_engine_flush, returns. Their events
 * stay valid until the second next submit. execute = submit + flush. */
int arb_engine_submit(arb_engine *engine, const arb_command *commands, size_t count,
                      arb_outcome *outcomes);

/* Wait until every submitted batch is durable. */
int arb_engine_flush(arb_engine *engine);

/* Fire every timer due at the engine's clock (at most ARB_TIMERS_PER_TICK_MAX)
 * as system proposals, committed as one batch. *fired_out: how many were
 * decided (stale timers included). */
int arb_engine_tick(arb_engine *engine, size_t *fired_out);

/* client_id came online (its first session) or went offline (its last
 * session ended): propose "presence" {player, online} as the system on
 * every stream whose rules say it matters (rules presence), at most
 * ARB_PRESENCE_STREAMS_MAX of them, committed as one batch. *proposed_out:
 * how many. */
int arb_engine_presence(arb_engine *engine, const char *client_id, bool online,
                        size_t *proposed_out);

/* The earliest pending deadline (Unix ms), or INT64_MAX when none. */
int64_t arb_engine_next_deadline(const arb_engine *engine);

/* A stream's state as viewer may see it (new reference) and its version.
 * ARB_ESTREAM_NOT_FOUND when the stream does not exist. This is the decided
 * state: after a submit, it includes the batch still being written; call
 * arb_engine_flush first to read only what is durable. */
int arb_engine_state(arb_engine *engine, const char *stream, const arb_principal *viewer,
                     json_t **state_out, uint64_t *version_out);

/* Events of a stream after since_seq, as JSON (array, new reference), at
 * most limit (0: all). */
int arb_engine_events(arb_engine *engine, const char *stream, uint64_t since_seq, uint64_t limit,
                      json_t **events_out);

/* The same, as viewer may see them: each event's data passes through the
 * rule module's redact; an event the viewer may not see is left out (seq
 * still orders what remains). viewer NULL: everything, unredacted. */
int arb_engine_events_as(arb_engine *engine, const char *stream, uint64_t since_seq, uint64_t limit,
                         const arb_principal *viewer, json_t **events_out);

/* Replace the on_commit callback given at open (the network front end sets
 * it once, before any proposal). Engine thread only. */
void arb_engine_set_on_commit(arb_engine *engine,
                              void (*on_commit)(void *user, const arb_event *events, size_t count),
                              void *user);

/* A callback run on the committer thread each time a submitted batch has
 * been written (durable, or failed: the next submit/flush then aborts). It
 * must be quick and thread-safe: it lets an engine thread that waits for
 * other work (new proposals) wake when the batch in flight is done, and
 * collect it with arb_engine_flush without blocking. Set it with nothing in
 * flight. NULL: none. */
void arb_engine_set_on_written(arb_engine *engine, void (*on_written)(void *user), void *user);

/* True while a submitted batch is still being written: arb_engine_flush
 * would block. Engine thread only. */
bool arb_engine_writing(arb_engine *engine);

/* Names of all streams (array, new reference). */
int arb_engine_streams(arb_engine *engine, json_t **streams_out);

/* The highest client_seq the engine has seen from client_id (0: none). */
uint64_t arb_engine_client_seq_max(const arb_engine *engine, const char *client_id);

/* Verification of a data directory (arbiter verify). */
typedef struct arb_verify_report {
    uint64_t streams;
    uint64_t events;
    uint64_t snapshots_compared;
    uint64_t outcomes; /* outcome rows checked */
    /* The domains' proofs replayed (rules proof_event), by proof_name: the
     * first four names met, in order. */
    struct {
        const char *name; /* the rules' static string; NULL: unused */
        uint64_t count;
    } proofs[4];
    /* On failure: where and what. */
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    uint64_t seq;
    char why[256];
} arb_verify_report;

/* Re-read the whole log: check seq contiguity and every hash, replay every
 * stream through its rules checking the invariants after every check_every
 * events (1: every event), compare the newest snapshot with the replayed
 * state, and check that every committed (acknowledged) outcome's seq range
 * holds exactly that proposal's events and that these ranges cover every
 * event once: nothing acknowledged is missing, nothing unacknowledged is in
 * the log. 0 when all holds; ARB_ECORRUPT with report->stream/seq/why naming
 * the first problem. */
int arb_verify(const char *data_dir, uint64_t check_every, arb_verify_report *report);

#endif
