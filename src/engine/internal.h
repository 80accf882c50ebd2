/*
 * internal.h - what the engine's files share: the stream record, the engine
 * struct, the timer heap, and the replay step used by both recovery and
 * verify. Nothing outside src/engine/ includes this.
 *
 * Ownership: the engine owns every stream (and through it the rule state),
 * the store, the timer heap, the batch scratch and the group slot. Streams
 * live until arb_engine_close, so the timer heap and the batch may point at
 * them; the one exception is a stream created by an aborted all-or-nothing
 * group, which atomic.c frees after dropping the only pointers to it (the
 * batch's lists and the group's own deadlines).
 */
#ifndef ARB_ENGINE_INTERNAL_H
#define ARB_ENGINE_INTERNAL_H

#include <pthread.h>

#include "arbiter/engine.h"
#include "core/buf.h"
#include "core/map.h"
#include "store/store.h"

typedef struct arb__stream {
    char name[ARB_STREAM_NAME_BYTES_MAX + 1];
    char kind[ARB_KIND_BYTES_MAX + 1];
    const arb_rules *rules;
    void *state;                       /* owned; freed with rules->state_free */
    uint64_t seq;                      /* version: seq of the last event (0: none) */
    uint8_t head_hash[ARB_HASH_BYTES]; /* hash of event seq (zeros when seq == 0) */
    uint64_t snapshot_seq;             /* seq of the newest stored snapshot */
    size_t snapshot_bytes;             /* its size (0: none yet) */
    bool persisted;                    /* has a row in the store's streams table */
    uint64_t touched_serial;           /* serial of the last batch that changed it */
} arb__stream;

typedef struct arb__timer {
    int64_t at_ms;
    arb__stream *stream;
    char action[ARB_ACTION_BYTES_MAX + 1];
    json_t *args; /* owned */
} arb__timer;

typedef struct arb__timer_heap {
    arb__timer *items; /* a binary min-heap on at_ms */
    size_t count;
    size_t cap;
} arb__timer_heap;

/* Batch scratch: sized at open, grown to a high-water mark, reused. Texts
 * are kept as offsets into the buffers until the batch is complete, because
 * the buffers may move while they grow. */
typedef struct arb__batch {
    arb_event *events;
    size_t event_count;
    size_t event_cap;
    size_t *event_data_offset; /* per event: offset of its canonical data */
    size_t *event_data_len;
    arb_store_event *store_events;
    arb_store_outcome *rows;
    size_t row_count;
    size_t *row_payload_offset;  /* SIZE_MAX: no payload */
    size_t *row_outcome;         /* index of the outcome a row belongs to */
    size_t *outcome_first_event; /* per outcome: index into events */
    arb_buf texts;               /* canonical data and payload texts */
    arb_buf scratch;             /* event bytes and fingerprints */
    arb__stream **new_streams;
    size_t new_stream_count;
    arb_store_stream *store_streams;
    arb__stream **touched;
    size_t touched_count;
    uint64_t serial;             /* 1, 2, 3... per engine; 0: never used */
    arb_store_batch store_batch; /* what the committer writes */
} arb__batch;

/* The committer thread (committer.c): one batch in flight at a time. */
typedef struct arb__committer {
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    arb_store *store;
    const arb_store_batch *batch; /* posted, not yet taken */
    bool busy;                    /* posted and not yet finished */
    bool stop;
    bool started;
    int result;
    /* Called on the committer thread, outside its mutex, after each batch
     * is written (or failed): lets a waiting engine thread wake. calling
     * is true while it runs, so that replacing it (set_on_written) waits
     * for the call to end before the old user may be freed. */
    void (*on_written)(void *user);
    void *on_written_user;
    bool calling;
} arb__committer;

int arb__committer_start(arb__committer *committer, arb_store *store);
void arb__committer_post(arb__committer *committer, const arb_store_batch *batch);
/* Wait until no batch is in flight; returns the last commit's status. */
int arb__committer_wait(arb__committer *committer);
/* True while a posted batch is not yet written. */
bool arb__committer_busy(arb__committer *committer);
void arb__committer_stop(arb__committer *committer);

/* An all-or-nothing group being decided (atomic.c). The group is the whole
 * batch slot; while it is decided, execute.c saves each existing stream
 * before its first change (arb__group_save_stream) and sends the deadlines
 * of the group's events to timers instead of the engine's heap, so that an
 * abort can put everything back. */
typedef struct arb__group_saved {
    arb__stream *stream;
    uint64_t seq;                      /* the stream's version before the group */
    uint8_t head_hash[ARB_HASH_BYTES]; /* and its head hash */
    json_t *snapshot;                  /* owned; rules->snapshot_save of its state */
} arb__group_saved;

typedef struct arb__group {
    bool aborting;              /* the second pass: abort verdicts instead of decide */
    size_t failed;              /* index of the first rejected proposal */
    arb_outcome failed_outcome; /* its rejection from the first pass (owned) */
    arb__group_saved saved[ARB_BATCH_PROPOSALS_MAX];
    size_t saved_count;
    arb__timer_heap timers; /* deadlines of the group's events, not yet armed */
} arb__group;

struct arb_engine {
    arb_store *store;
    bool read_only;
    int64_t (*clock_ms)(void *user);
    void *clock_user;
    int64_t last_now_ms; /* the clock never goes backwards */
    uint32_t snapshot_every;
    void (*on_commit)(void *user, const arb_event *events, size_t count);
    void *on_commit_user;
    arb_map streams; /* name -> arb__stream* (owned) */
    /* client_id -> highest client_seq, stored in the pointer itself (never 0,
     * since client_seq >= 1). A fast path only: a client_seq above it is new
     * without asking the store. Past ARB_CLIENTS_MAX clients the map stops
     * growing and clients_incomplete makes every unknown client ask the store. */
    arb_map clients;
    bool clients_incomplete;
    arb__timer_heap timers;
    /* Two batch slots: the engine decides into batch while the committer may
     * be writing in_flight (the other slot). */
    arb__batch slots[2];
    arb__batch *batch;     /* the slot being decided */
    arb__batch *in_flight; /* posted to the committer, or NULL */
    uint64_t batch_serial;
    bool snapshot_due; /* a stream passed snapshot_every: snapshot when drained */
    arb__committer committer;
    arb_decision decision;      /* scratch for one decide call */
    arb_command *tick_commands; /* ARB_TIMERS_PER_TICK_MAX, for arb_engine_tick */
    arb_outcome *tick_outcomes;
    /* The group being decided by arb_engine_execute_atomic, or NULL. */
    arb__group *group;
    arb__group group_slot; /* what group points at; idle between calls */
};

/* Timers (timers.c). */
void arb__timers_init(arb__timer_heap *heap);
void arb__timers_free(arb__timer_heap *heap);
/* The sink that rule modules report deadlines to, for one stream. */
typedef struct arb__timer_target {
    arb__timer_heap *heap;
    arb__stream *stream;
} arb__timer_target;
arb_timer_sink arb__timer_sink(arb__timer_target *target);
const arb__timer *arb__timers_peek(const arb__timer_heap *heap);
/* Remove the earliest timer into *timer_out (the caller then owns its args). */
void arb__timers_pop(arb__timer_heap *heap, arb__timer *timer_out);

/* Replay (replay.c). chain: check one stored event against the chain, seq
 * and hash only (its data is not parsed). replay: chain it, then parse its
 * data from data_json and apply it. On success the stream's seq and head hash
 * advance; otherwise they stay and it is ARB_ECORRUPT with why filled. */
int arb__chain_event(arb__stream *stream, const arb_event *stored, const char *data_json,
                     size_t data_json_len, arb_buf *scratch, char *why, size_t why_size);
int arb__replay_event(arb__stream *stream, const arb_event *stored, const char *data_json,
                      size_t data_json_len, const arb_timer_sink *timers, arb_buf *scratch,
                      char *why, size_t why_size);
/* A stream record for name (kind parsed from it), with a fresh state.
 * ARB_EINVALID_STREAM, ARB_EUNKNOWN_KIND or ARB_ENOMEM. */
int arb__stream_new(const char *name, arb__stream **stream_out);
void arb__stream_free(arb__stream *stream);
/* Syntax of stream names: KIND:NAME (see docs/protocol.md). */

/* The batch path (execute.c). */
int arb__batch_init(arb__batch *batch);
void arb__batch_free(arb__batch *batch);
/* The stream has enough events since its last snapshot for a new one:
 * snapshot_every, or more for a large state (ARB_SNAPSHOT_BYTES_PER_EVENT). */
bool arb__snapshot_due(const arb_engine *engine, const arb__stream *stream);

/* Misuse of a batch call (read-only engine, count out of range): its code,
 * or 0. */
int arb__batch_misuse(const arb_engine *engine, size_t count);

/* Wait for the batch in flight and complete it (on_commit, snapshots due). */
void arb__engine_drain(arb_engine *engine);
/* Start deciding into the batch slot: snapshots due first, then an empty
 * slot with a new serial. Returns the clock reading for the whole batch. */
int64_t arb__batch_begin(arb_engine *engine);
/* Empty the batch slot again (its events released) under a new serial,
 * without reading the clock: for an aborted group (atomic.c). */
void arb__batch_discard(arb_engine *engine);
/* Decide commands[index] into the batch slot, filling outcomes[index]. */
void arb__execute_one(arb_engine *engine, const arb_command *command, size_t index,
                      arb_outcome *outcomes, int64_t now);
/* Point the outcomes at their events and hand the slot to the committer
 * (after the previous batch is durable). */
void arb__batch_end(arb_engine *engine, size_t count, arb_outcome *outcomes);

/* Timers moved from one heap to another (atomic.c arms a group's deadlines). */
void arb__timers_move(arb__timer_heap *to, arb__timer_heap *from);

/* All-or-nothing groups (atomic.c), called from execute.c while
 * engine->group is set. save_stream: keep what is needed to undo the group's
 * changes to stream; called once per stream, before its first change in the
 * batch. 0 or ARB_ENOMEM (nothing changed then). verdict: the second pass's
 * outcome for a new proposal of an aborted group, in place of deciding it. */
int arb__group_save_stream(arb_engine *engine, arb__stream *stream);
void arb__group_verdict(arb_engine *engine, const arb_command *command, size_t index,
                        arb_outcome *outcome);

#endif
