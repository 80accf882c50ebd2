/*
 * sqlite_internal.h - what the files of the SQLite store share.
 *
 * The SQLite store is split by role: sqlite.c opens, migrates and closes;
 * sqlite_write.c holds the commit hot path and snapshot_put; sqlite_read.c the
 * scans and lookups; sqlite_checkpoint.c the background checkpointer. This
 * header is theirs alone: nothing outside src/store/ includes it, so the
 * sqlite3 types stay below the store interface.
 *
 * Invariants:
 *   - base is the first member, so an arb_store * of this backend converts to
 *     an arb__sqlite_store * and back.
 *   - Every statement in statements[] is prepared once at open, on db, and
 *     lives until close. A statement is reset (never left mid-step) when the
 *     function that stepped it returns.
 *   - lock_fd holds an exclusive flock on DIR/LOCK from open to close in
 *     READ_WRITE mode, and is -1 in READ_ONLY mode.
 */
#ifndef ARB_STORE_SQLITE_INTERNAL_H
#define ARB_STORE_SQLITE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* The prepared statements, by role. Their SQL is in sqlite.c. */
typedef enum arb__sqlite_statement {
    ARB__SQL_BEGIN = 0,
    ARB__SQL_COMMIT,
    ARB__SQL_ROLLBACK,
    ARB__SQL_INSERT_STREAM,
    ARB__SQL_INSERT_EVENT,
    ARB__SQL_INSERT_OUTCOME,
    ARB__SQL_SELECT_STREAMS,
    ARB__SQL_SELECT_EVENTS,
    ARB__SQL_SELECT_OUTCOME,
    ARB__SQL_SELECT_CLIENTS,
    ARB__SQL_INSERT_SNAPSHOT,
    ARB__SQL_PRUNE_SNAPSHOTS,
    ARB__SQL_SELECT_SNAPSHOT,
    ARB__SQL_COUNT,
} arb__sqlite_statement;

/* The background checkpointer: its own connection, its own thread. mutex
 * guards requested and stopping; the counters are atomics because the
 * committing thread (in the WAL hook) and the checkpointer share them. */
typedef struct arb__sqlite_checkpointer {
    sqlite3 *db; /* the checkpointer's own connection; NULL: none */
    pthread_t thread;
    bool initialized; /* mutex and wake exist */
    bool started;     /* thread is running and must be joined */
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    /* Held by the writer around each write transaction, and by the
     * checkpointer for a catch-up pass (see sqlite_checkpoint.c). */
    pthread_mutex_t writer_mutex;
    bool requested;                  /* a commit asked for a prompt checkpoint */
    bool stopping;                   /* close asked the thread to finish */
    atomic_uint_least64_t commits;   /* commits that appended to the WAL */
    atomic_int checkpointed_frames;  /* WAL frames at the end of the last pass */
    atomic_uint_least64_t passes;    /* checkpoint passes run, for the log at close */
    atomic_uint_least64_t catch_ups; /* catch-up passes run, for the log at close */
} arb__sqlite_checkpointer;

typedef struct arb__sqlite_store {
    arb_store base; /* first: the public handle */
    sqlite3 *db;
    arb_store_mode mode;
    int lock_fd;            /* -1 when no lock is held */
    char db_path[PATH_MAX]; /* DIR/arbiter.db, for open and for logs */
    sqlite3_stmt *statements[ARB__SQL_COUNT];
    long fail_after; /* commits left before an injected failure; -1 off */
    arb__sqlite_checkpointer checkpointer;
} arb__sqlite_store;

/* Binding many parameters: each bind is skipped once one has failed, and rc
 * is the first failure, so a caller binds a whole row and checks once. */
typedef struct arb__sqlite_binder {
    sqlite3_stmt *statement;
    int rc;
} arb__sqlite_binder;

static inline void arb__bind_text(arb__sqlite_binder *binder, int index, const char *text, int len)
{
    if (binder->rc == SQLITE_OK)
        binder->rc = sqlite3_bind_text(binder->statement, index, text, len, SQLITE_STATIC);
}

static inline void arb__bind_blob(arb__sqlite_binder *binder, int index, const void *bytes, int len)
{
    if (binder->rc == SQLITE_OK)
        binder->rc = sqlite3_bind_blob(binder->statement, index, bytes, len, SQLITE_STATIC);
}

static inline void arb__bind_int64(arb__sqlite_binder *binder, int index, int64_t value)
{
    if (binder->rc == SQLITE_OK)
        binder->rc = sqlite3_bind_int64(binder->statement, index, value);
}

static inline void arb__bind_null(arb__sqlite_binder *binder, int index)
{
    if (binder->rc == SQLITE_OK)
        binder->rc = sqlite3_bind_null(binder->statement, index);
}

/* The store behind a handle of this backend (asserts that it is one). */
arb__sqlite_store *arb__sqlite_from(arb_store *store);

/* Log a failed SQLite call with the connection's message and map rc to an
 * arbiter code: ARB_ECORRUPT for SQLITE_CORRUPT and SQLITE_NOTADB, ARB_EBUSY
 * for SQLITE_BUSY and SQLITE_LOCKED, ARB_EIO for everything else. */
int arb__sqlite_fail(sqlite3 *db, int rc, const char *what, const char *path);

/* The store operations, one per file by role (sqlite_write.c, sqlite_read.c). */
int arb__sqlite_commit(arb_store *store, const arb_store_batch *batch);
int arb__sqlite_snapshot_put(arb_store *store, const char *stream, uint64_t seq,
                             const char *state_json, size_t state_json_len);
int arb__sqlite_streams(arb_store *store, arb_store_stream_fn fn, void *user);
int arb__sqlite_events(arb_store *store, const char *stream, uint64_t since_seq, uint64_t limit,
                       arb_store_event_fn fn, void *user);
int arb__sqlite_outcome(arb_store *store, const char *client_id, uint64_t client_seq,
                        arb_store_outcome *row_out, char **payload_out);
int arb__sqlite_clients(arb_store *store, arb_store_client_fn fn, void *user);
int arb__sqlite_snapshot_get(arb_store *store, const char *stream, uint64_t *seq_out,
                             char **state_out, size_t *state_len_out);

/* The checkpointer (sqlite_checkpoint.c). start opens its connection, hooks
 * the WAL of store->db and starts the thread; stop joins the thread and
 * closes the connection (safe on a checkpointer that never started). */
int arb__sqlite_checkpointer_start(arb__sqlite_store *store);
void arb__sqlite_checkpointer_stop(arb__sqlite_store *store);

#endif
