/*
 * sqlite_internal.h - what the files of the SQLite store share.
 *
 * The SQLite store is split by role: sqlite.c opens, migrates and closes;
 * sqlite_write.c holds the commit hot path and snapshot_put; sqlite_read.c the
 * scans and lookups; sqlite_keys.c the key tail (the idempotency keys not yet
 * in outcome_keys); sqlite_check.c the keys checked against the outcomes;
 * sqlite_wal.c the WAL checked for damage before SQLite recovers it;
 * sqlite_mark.c the high-water mark of committed outcomes, outside SQLite;
 * sqlite_checkpoint.c the background checkpointer. This
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
 *   - In READ_WRITE mode, between two calls, the key tail holds exactly the
 *     keys of the outcome rows with rowid > keys_through_rowid (the meta row
 *     of that name): those up to sealed_through_rowid in its sealed
 *     generation, the later ones (fewer than ARB__KEY_SEAL_KEYS) in its
 *     filling one; and the tail's three meta values equal the stored ones. In READ_ONLY mode the
 *     tail is empty and unused: a reader asks the database (see
 *     sqlite_read.c).
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
/* The schema of version 1, frozen: migrate_0_to_1 creates it, and the store
 * tests build a version-1 database from it to test migrate_1_to_2. Never
 * edit it; change the schema with a new migration. */
#define ARB__SQLITE_SCHEMA_V1                                                                      \
    "CREATE TABLE streams(name TEXT PRIMARY KEY, kind TEXT NOT NULL) WITHOUT ROWID;"               \
    "CREATE TABLE events(stream TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"          \
    " data TEXT NOT NULL, client_id TEXT NOT NULL, client_seq INTEGER NOT NULL,"                   \
    " applied_at INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY(stream, seq));"                 \
    "CREATE TABLE outcomes(client_id TEXT NOT NULL, client_seq INTEGER NOT NULL,"                  \
    " fingerprint BLOB NOT NULL, stream TEXT NOT NULL, status INTEGER NOT NULL,"                   \
    " seq_first INTEGER, seq_last INTEGER, code INTEGER, code_name TEXT, message TEXT,"            \
    " payload TEXT, version INTEGER NOT NULL, decided_at INTEGER NOT NULL,"                        \
    " PRIMARY KEY(client_id, client_seq));"                                                        \
    "CREATE TABLE snapshots(stream TEXT NOT NULL, seq INTEGER NOT NULL,"                           \
    " state TEXT NOT NULL, PRIMARY KEY(stream, seq)) WITHOUT ROWID;"

typedef enum arb__sqlite_statement {
    ARB__SQL_BEGIN = 0,
    ARB__SQL_COMMIT,
    ARB__SQL_ROLLBACK,
    ARB__SQL_INSERT_STREAM,
    ARB__SQL_INSERT_EVENT,
    ARB__SQL_INSERT_OUTCOME,
    ARB__SQL_SELECT_KEY,
    ARB__SQL_INSERT_KEY,
    ARB__SQL_UPDATE_KEY_CURSOR,
    ARB__SQL_SELECT_STREAMS,
    ARB__SQL_SELECT_EVENTS,
    ARB__SQL_SELECT_OUTCOME_BY_ROWID,
    ARB__SQL_SELECT_OUTCOME_BY_KEY,
    ARB__SQL_SELECT_OUTCOME_ANYWHERE,
    ARB__SQL_SELECT_CLIENTS,
    ARB__SQL_SELECT_OUTCOMES_ALL,
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
    int prompt_frames;               /* WAL growth that asks for a pass at once */
    int catch_up_frames;             /* WAL length that calls for a catch-up pass */
    bool requested;                  /* a commit asked for a prompt checkpoint */
    bool stopping;                   /* close asked the thread to finish */
    atomic_uint_least64_t commits;   /* commits that appended to the WAL */
    atomic_int checkpointed_frames;  /* WAL frames at the end of the last pass */
    atomic_uint_least64_t passes;    /* checkpoint passes run, for the log at close */
    atomic_uint_least64_t catch_ups; /* catch-up passes run, for the log at close */
} arb__sqlite_checkpointer;

/* One idempotency key of the tail: an outcome row whose key is not yet in
 * outcome_keys (or, in the sealed generation, perhaps already is). */
typedef struct arb__sqlite_key {
    int64_t outcome_rowid;
    uint64_t client_seq;
    uint32_t client_index; /* its client in the generation's clients[] */
    char client_id[ARB_CLIENT_ID_BYTES_MAX + 1];
} arb__sqlite_key;

/* One client of a generation: how many keys it has there, the first of them
 * (whose client_id names it), and scratch of the sort. */
typedef struct arb__sqlite_key_client {
    uint32_t first_key;
    uint32_t key_count;
    uint32_t sorted_offset; /* scratch of arb__key_generation_sort */
} arb__sqlite_key_client;

/* One generation of the key tail (sqlite_keys.c): keys[0..count) in rowid
 * order, a hash index over them, their clients with a hash index of their
 * own, and once sealed, sorted[0..count). Sized at open, never grown. */
typedef struct arb__sqlite_key_generation {
    arb__sqlite_key *keys;           /* ARB__KEY_GENERATION_MAX of them */
    uint32_t *slots;                 /* 2 * ARB__KEY_GENERATION_MAX; 0 empty, else index + 1 */
    arb__sqlite_key_client *clients; /* ARB__KEY_GENERATION_MAX */
    uint32_t *client_slots;          /* as slots, over clients[] */
    uint32_t *client_order;          /* scratch of the sort */
    const arb__sqlite_key **sorted;  /* by (client_id, client_seq) once sealed */
    size_t count;
    size_t client_count;
} arb__sqlite_key_generation;

/* Keys one generation holds: half the tail. */
#define ARB__KEY_GENERATION_MAX (ARB_STORE_KEY_TAIL_MAX / 2)
/* The filling generation is sealed once it holds this many keys after a
 * commit, so that the next batch always fits beside them. */
#define ARB__KEY_SEAL_KEYS (ARB__KEY_GENERATION_MAX - ARB_BATCH_PROPOSALS_MAX)

/* The key tail: two generations. New keys go into the filling one; when it
 * is due (flush_every_commits, or ARB__KEY_SEAL_KEYS keys) it is sealed:
 * sorted once, and written into outcome_keys a slice of at most slice_keys
 * keys a commit, slice_cursor of them being written. Meta holds the three
 * rowid/cursor values below; the in-memory copies equal the stored ones
 * between calls:
 *   outcome rowids (0, keys_through_rowid]       in outcome_keys
 *   (keys_through_rowid, sealed_through_rowid]   sealed; sorted[0..cursor)
 *                                                in outcome_keys too
 *   (sealed_through_rowid, newest]               filling
 * No sealed generation: sealed->count == 0, sealed_through_rowid ==
 * keys_through_rowid, slice_cursor == 0. */
typedef struct arb__sqlite_key_tail {
    arb__sqlite_key_generation generations[2];
    arb__sqlite_key_generation *filling; /* one of generations[] */
    arb__sqlite_key_generation *sealed;  /* the other */
    size_t slice_cursor;
    int64_t keys_through_rowid;
    int64_t sealed_through_rowid;
    long commits_since_seal;
    long flush_every_commits; /* a commit this many after the last seal seals */
    size_t slice_keys;        /* ARB_STORE_KEY_SLICE_MAX but in tests */
} arb__sqlite_key_tail;

/* What one commit does to the tail's generations, decided inside its
 * transaction and applied to memory only once it has committed. */
typedef struct arb__sqlite_key_step {
    bool seal;           /* the filling generation became the sealed one */
    bool wrote;          /* keys and the meta values were written */
    size_t slice_cursor; /* the values written to meta */
    int64_t keys_through_rowid;
    int64_t sealed_through_rowid;
} arb__sqlite_key_step;

typedef struct arb__sqlite_store {
    arb_store base; /* first: the public handle */
    sqlite3 *db;
    arb_store_mode mode;
    int lock_fd;                /* -1 when no lock is held */
    int mark_fd;                /* DIR/MARK, READ_WRITE only; -1 none (sqlite_mark.c) */
    int64_t mark_rowid;         /* the mark read at open, then written; -1 none */
    int64_t last_outcome_rowid; /* of the batch being committed */
    char db_path[PATH_MAX];     /* DIR/arbiter.db, for open and for logs */
    sqlite3_stmt *statements[ARB__SQL_COUNT];
    long fail_after; /* commits left before an injected failure; -1 off */
    int page_size_bytes;
    arb__sqlite_key_tail tail; /* READ_WRITE only */
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
int arb__sqlite_outcomes(arb_store *store, arb_store_outcome_fn fn, void *user);
int arb__sqlite_check(arb_store *store, char *why, size_t why_size);
int arb__sqlite_pin(arb_store *store);
/* The checksum of an outcome row (sqlite_check.c): over every field as it
 * reads back, payload (NULL: none) included. */
#define ARB__OUTCOME_CHECKSUM_BYTES 16
void arb__sqlite_outcome_checksum(const arb_store_outcome *row, const char *payload,
                                  size_t payload_len, uint8_t out[ARB__OUTCOME_CHECKSUM_BYTES]);
/* Compute the checksum of every outcome row that has none (the migration to
 * version 3), from what the row holds. An SQLite result code. */
int arb__sqlite_fill_checksums(sqlite3 *db);
/* The WAL beside db_path checked for damage that SQLite's recovery would
 * drop committed frames for (sqlite_wal.c): 0, or ARB_ECORRUPT with why
 * filled. Only with no writer (the directory's lock held). */
int arb__sqlite_wal_check(const char *db_path, char *why, size_t why_size);
/* The high-water mark (sqlite_mark.c). open reads DIR/MARK (and keeps it
 * open to write, READ_WRITE); write records a committed batch's last outcome
 * rowid; check compares the log with the mark read at open: 0, or
 * ARB_ECORRUPT with why filled. */
int arb__mark_open(arb__sqlite_store *store, const char *dir);
void arb__mark_close(arb__sqlite_store *store);
void arb__mark_write(arb__sqlite_store *store, int64_t outcome_rowid);
int arb__mark_check(arb__sqlite_store *store, char *why, size_t why_size);
int arb__sqlite_snapshot_get(arb_store *store, const char *stream, uint64_t *seq_out,
                             char **state_out, size_t *state_len_out);

/* The key tail (sqlite_keys.c). init allocates it empty (ARB_ENOMEM);
 * free is safe on one that init never filled. */
int arb__key_tail_init(arb__sqlite_key_tail *tail);
void arb__key_tail_free(arb__sqlite_key_tail *tail);
/* The tail's key of (client_id, client_seq) in either generation, or NULL. */
const arb__sqlite_key *arb__key_tail_find(const arb__sqlite_key_tail *tail, const char *client_id,
                                          uint64_t client_seq);
/* Append a key to the filling generation (its rowid above every other);
 * false when that generation already holds (client_id, client_seq). The
 * caller checks the sealed one and keeps count below the bound. */
bool arb__key_tail_add(arb__sqlite_key_tail *tail, const char *client_id, uint64_t client_seq,
                       int64_t outcome_rowid);
/* Drop the keys of the filling generation added after the first count,
 * newest first: it is then exactly what it was when it held count keys. */
void arb__key_tail_truncate(arb__sqlite_key_tail *tail, size_t count);
/* Whether the commit being written should seal the filling generation. */
bool arb__key_tail_seal_due(const arb__sqlite_key_tail *tail);
/* Fill generation->sorted: its keys by (client_id, client_seq). Does not
 * change what the generation holds, so a failed commit needs no undo. */
void arb__key_generation_sort(arb__sqlite_key_generation *generation);
/* After a committed transaction: apply what it wrote. */
void arb__key_tail_apply(arb__sqlite_key_tail *tail, const arb__sqlite_key_step *step);
/* At open (READ_WRITE, after migration): read the meta values, load the
 * keys of the later outcome rows into the two generations, or write them
 * into outcome_keys in one transaction first when they are too many. */
int arb__key_tail_load(arb__sqlite_store *store);

/* The checkpointer (sqlite_checkpoint.c). start opens its connection, hooks
 * the WAL of store->db and starts the thread; stop joins the thread and
 * closes the connection (safe on a checkpointer that never started). */
int arb__sqlite_checkpointer_start(arb__sqlite_store *store);
void arb__sqlite_checkpointer_stop(arb__sqlite_store *store);

#endif
