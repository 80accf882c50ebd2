/*
 * store.h - the durable log behind one interface.
 *
 * The engine talks to storage only through this table of functions, so the
 * SQLite backend (the embedded default) and a later PostgreSQL backend are
 * interchangeable, and no SQL type leaks above src/store/.
 *
 * What is stored (DESIGN.md §6):
 *   streams    (name, kind)                         one row per stream
 *   events     (stream, seq) -> type, data, client_id, client_seq,
 *              applied_at, hash                     the log; the truth
 *   outcomes   (client_id, client_seq) -> fingerprint, stream, status,
 *              seq range, code, message, payload     idempotency + audit
 *   snapshots  (stream, seq) -> state               bounded recovery
 *
 * Invariants:
 *   - commit() writes one batch in one transaction and returns only when it
 *     is durable (fsync). On any error the batch is not durable, and the
 *     caller must stop: it may not acknowledge anything of that batch.
 *   - (stream, seq) and (client_id, client_seq) are unique; a duplicate is an
 *     error, never an overwrite.
 *
 * Ownership: every pointer passed in is borrowed for the call. Every pointer
 * handed to a callback is borrowed for that callback's duration only.
 * Threads: one store is used by one thread at a time.
 */
#ifndef ARB_STORE_H
#define ARB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/types.h"

/* One event as the store sees it: the event's fields with its data already
 * in canonical JSON text (the bytes that were hashed). */
typedef struct arb_store_event {
    const arb_event *event; /* data is ignored; data_json is stored */
    const char *data_json;
    size_t data_json_len;
} arb_store_event;

/* One outcome row. payload_json is the result (committed) or the details
 * (rejected), canonical JSON text or NULL. */
typedef struct arb_store_outcome {
    char client_id[ARB_CLIENT_ID_BYTES_MAX + 1];
    uint64_t client_seq;
    uint8_t fingerprint[ARB_HASH_BYTES]; /* BLAKE2b of the canonical command */
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    int kind;           /* arb_outcome_kind */
    uint64_t seq_first; /* committed: events' range */
    uint64_t seq_last;
    int code; /* rejected: error code */
    char message[ARB_MESSAGE_BYTES_MAX + 1];
    const char *payload_json; /* borrowed; may be NULL */
    size_t payload_json_len;
    uint64_t version; /* stream version when decided */
    int64_t decided_at_ms;
} arb_store_outcome;

typedef struct arb_store_stream {
    const char *name;
    const char *kind;
} arb_store_stream;

/* One group-commit batch. */
typedef struct arb_store_batch {
    const arb_store_stream *new_streams; /* streams first seen in this batch */
    size_t new_stream_count;
    const arb_store_event *events;
    size_t event_count;
    const arb_store_outcome *outcomes;
    size_t outcome_count;
} arb_store_batch;

/* An event read back: the struct's data is NULL; data_json holds the text. */
typedef int (*arb_store_event_fn)(void *user, const arb_event *event, const char *data_json,
                                  size_t data_json_len);
typedef int (*arb_store_stream_fn)(void *user, const char *name, const char *kind,
                                   uint64_t head_seq);
typedef int (*arb_store_client_fn)(void *user, const char *client_id, uint64_t client_seq_max);
/* An outcome row read back; its payload is not read (payload_json NULL). */
typedef int (*arb_store_outcome_fn)(void *user, const arb_store_outcome *row);

typedef struct arb_store arb_store;

typedef struct arb_store_ops {
    void (*close)(arb_store *store);
    /* At most ARB_BATCH_PROPOSALS_MAX outcomes a batch (ARB_ELIMIT). */
    int (*commit)(arb_store *store, const arb_store_batch *batch);
    /* Every stream with its highest seq (0 if it has no events), by name. */
    int (*streams)(arb_store *store, arb_store_stream_fn fn, void *user);
    /* Events of stream with seq > since_seq, ascending, at most limit (0 =
     * all). A callback returning non-zero stops the scan with that value. */
    int (*events)(arb_store *store, const char *stream, uint64_t since_seq, uint64_t limit,
                  arb_store_event_fn fn, void *user);
    /* The stored outcome of (client_id, client_seq): 0 and *row_out filled
     * (payload copied into *payload_out, malloc'ed, the caller frees; NULL
     * when there is none; row_out->payload_json points at the same copy;
     * payload_out may be NULL to skip it), or ARB_ENOTFOUND. */
    int (*outcome)(arb_store *store, const char *client_id, uint64_t client_seq,
                   arb_store_outcome *row_out, char **payload_out);
    /* The highest client_seq of every client. */
    int (*clients)(arb_store *store, arb_store_client_fn fn, void *user);
    /* Every outcome row in commit order (for arbiter verify). A callback
     * returning non-zero stops the scan with that value. */
    int (*outcomes)(arb_store *store, arb_store_outcome_fn fn, void *user);
    /* A reader (READ_ONLY) holds one read transaction from this call until
     * close, so that every later call sees the log as it was at this call,
     * however a writer beside it goes on (arbiter verify beside a running
     * server). ARB_EUSAGE on a writer. */
    int (*pin)(arb_store *store);
    /* The store's integrity beyond the log (the idempotency keys against
     * the outcomes): 0, or ARB_ECORRUPT (ARB_EIO...) with why filled. A
     * scan of every outcome: for start-up and arbiter verify. */
    int (*check)(arb_store *store, char *why, size_t why_size);
    /* Write a snapshot (own transaction) and delete all but the newest
     * ARB_SNAPSHOTS_KEPT of that stream. */
    int (*snapshot_put)(arb_store *store, const char *stream, uint64_t seq, const char *state_json,
                        size_t state_json_len);
    /* The newest snapshot of a stream: 0 with *seq_out and *state_out
     * (malloc'ed, NUL-terminated, the caller frees), or ARB_ENOTFOUND. */
    int (*snapshot_get)(arb_store *store, const char *stream, uint64_t *seq_out, char **state_out,
                        size_t *state_len_out);
} arb_store_ops;

struct arb_store {
    const arb_store_ops *ops;
};

typedef enum arb_store_mode {
    ARB_STORE_READ_WRITE = 0, /* takes the directory's lock; creates it if missing */
    ARB_STORE_READ_ONLY = 1,  /* no lock; for verify, state, log beside a running server */
} arb_store_mode;

/* Open (creating if needed, in read-write mode) the SQLite store in directory
 * dir (the database is dir/arbiter.db). ARB_EBUSY when another process holds
 * the directory, ARB_ESCHEMA on a newer schema, ARB_EIO otherwise. The caller
 * owns *store_out and releases it with store->ops->close(store). */
int arb_store_sqlite_open(const char *dir, arb_store_mode mode, arb_store **store_out);

/* Fault injection for tests of the failure paths: after commits_ok more
 * successful commits of this SQLite store, the next commit fails with ARB_EIO
 * and nothing of its batch reaches the disk (it is rolled back); then the
 * hook disarms itself. -1 disarms it at once. */
void arb_store_sqlite_fail_after(arb_store *store, long commits_ok);

/* For tests of the key tail (sqlite_keys.c): seal the outcome keys kept in
 * memory (and start writing them into the outcome_keys index) at every
 * commits-th commit (>= 1; the default is 64) of this READ_WRITE store. */
void arb_store_sqlite_set_key_flush(arb_store *store, long commits);

/* For tests of the key tail: write at most keys sealed keys a commit (1 ..
 * ARB_STORE_KEY_TAIL_MAX / 2; the default is ARB_STORE_KEY_SLICE_MAX). */
void arb_store_sqlite_set_key_slice(arb_store *store, long keys);

#endif
