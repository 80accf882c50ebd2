/*
 * sqlite_write.c - the commit hot path, snapshot_put, and the fault hook.
 *
 * commit() writes one group-commit batch - new streams, events, outcomes - in
 * one BEGIN IMMEDIATE ... COMMIT transaction, through statements prepared at
 * open. Values are bound SQLITE_STATIC: they point into the caller's batch,
 * which outlives the call, and every binding is replaced before the next
 * step, so nothing is copied and nothing is allocated per row. With WAL and
 * synchronous=FULL, COMMIT returns after the WAL is fsynced: when commit()
 * returns 0 the batch is durable.
 *
 * On any failure the transaction is rolled back, so a batch is on disk whole
 * or not at all, and the caller gets ARB_EIO (ARB_ECORRUPT when SQLite found
 * the file damaged) and must stop. A duplicate key is such a failure: the
 * INSERTs have no OR clause, so nothing is ever overwritten.
 *
 * Outcome keys: each outcome row's key goes into the filling generation of
 * the key tail in memory (sqlite_keys.c). Every flush_every_commits
 * commits, or when it is nearly full, a commit seals it (sorts it) and from
 * then on each commit writes a slice of at most ARB_STORE_KEY_SLICE_MAX of
 * its sorted keys into outcome_keys, with the cursor in meta, in the same
 * transaction, so that no commit pays for a whole generation of keys. When
 * a commit fails, the keys it added leave the tail again and nothing else
 * in memory has changed.
 *
 * Duplicate keys: a key already in the tail fails the commit that brings
 * it, before its row is written (a search in memory). A key already in
 * outcome_keys is not looked up on this path: the engine never proposes one
 * (it looks every replayed client_seq up first), and an index lookup per
 * outcome would cost about 0.7 us, some 8 % of a transfer. Should one come
 * anyway, the INSERT into outcome_keys fails on the primary key when its
 * slice is written, and so does that commit and every later one that
 * writes keys; a reopen then refuses the log (sqlite_keys.c checks
 * the tail it loads against outcome_keys). Either way the first outcome of
 * a key stays the one that lookups find: never an overwrite.
 *
 * Each write transaction holds the checkpointer's writer_mutex (uncontended
 * but for a catch-up checkpoint about once a second at full load; see
 * sqlite_checkpoint.c).
 */
#include <stdint.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

/* Step a statement whose parameters were bound (bind_rc is the binder's
 * result) and that returns no rows, then reset it. */
static int execute(arb__sqlite_store *store, arb__sqlite_statement which, int bind_rc,
                   const char *what)
{
    sqlite3_stmt *statement = store->statements[which];
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(statement) : bind_rc;
    int result = rc == SQLITE_DONE ? 0 : arb__sqlite_fail(store->db, rc, what, store->db_path);
    sqlite3_reset(statement);
    return result;
}

static int step_done(arb__sqlite_store *store, arb__sqlite_statement which, const char *what)
{
    return execute(store, which, SQLITE_OK, what);
}

static void rollback(arb__sqlite_store *store)
{
    if (sqlite3_get_autocommit(store->db))
        return; /* SQLite already rolled the transaction back */
    if (step_done(store, ARB__SQL_ROLLBACK, "rollback") != 0)
        arb_log(ARB_LOG_ERROR, "rollback failed", "path=\"%s\"", store->db_path);
}

/* Start a write transaction. The writer holds writer_mutex from here to
 * finish(), so that a catch-up checkpoint runs between two transactions. */
static int begin(arb__sqlite_store *store)
{
    ARB_ASSERT(store->checkpointer.initialized);
    pthread_mutex_lock(&store->checkpointer.writer_mutex);
    int rc = step_done(store, ARB__SQL_BEGIN, "begin");
    if (rc != 0) {
        pthread_mutex_unlock(&store->checkpointer.writer_mutex);
        return rc == ARB_ECORRUPT ? rc : ARB_EIO;
    }
    return 0;
}

/* Commit when rc is 0, else roll back; then release writer_mutex. Returns
 * what the write operations report: 0, ARB_ECORRUPT or ARB_EIO. */
static int finish(arb__sqlite_store *store, int rc, const char *what)
{
    if (rc == 0)
        rc = step_done(store, ARB__SQL_COMMIT, what);
    if (rc != 0)
        rollback(store);
    pthread_mutex_unlock(&store->checkpointer.writer_mutex);
    return rc == 0 || rc == ARB_ECORRUPT ? rc : ARB_EIO;
}

/* Drop the SQLITE_STATIC pointers into the caller's batch once per batch, so
 * no statement keeps a pointer the caller is about to free. */
static void clear_bindings(arb__sqlite_store *store)
{
    sqlite3_clear_bindings(store->statements[ARB__SQL_INSERT_STREAM]);
    sqlite3_clear_bindings(store->statements[ARB__SQL_INSERT_EVENT]);
    sqlite3_clear_bindings(store->statements[ARB__SQL_INSERT_OUTCOME]);
    sqlite3_clear_bindings(store->statements[ARB__SQL_INSERT_KEY]);
}

static int read_only_refusal(const arb__sqlite_store *store, const char *what)
{
    arb_log(ARB_LOG_ERROR, "write on a read-only store", "what=\"%s\" path=\"%s\"", what,
            store->db_path);
    return ARB_EUSAGE;
}

static int insert_streams(arb__sqlite_store *store, const arb_store_batch *batch)
{
    arb__sqlite_binder binder = {store->statements[ARB__SQL_INSERT_STREAM], SQLITE_OK};
    for (size_t i = 0; i < batch->new_stream_count; i++) {
        const arb_store_stream *stream = &batch->new_streams[i];
        ARB_ASSERT(stream->name != NULL && stream->kind != NULL);
        binder.rc = SQLITE_OK;
        arb__bind_text(&binder, 1, stream->name, -1);
        arb__bind_text(&binder, 2, stream->kind, -1);
        int rc = execute(store, ARB__SQL_INSERT_STREAM, binder.rc, "insert stream");
        if (rc != 0) {
            arb_log(ARB_LOG_ERROR, "stream not stored", "stream=\"%s\"", stream->name);
            return rc;
        }
    }
    return 0;
}

static int bind_event(sqlite3_stmt *statement, const arb_store_event *row)
{
    const arb_event *event = row->event;
    ARB_ASSERT(event != NULL && row->data_json != NULL);
    ARB_ASSERT(event->seq >= 1 && event->seq <= INT64_MAX);
    ARB_ASSERT(event->client_seq <= INT64_MAX);
    ARB_ASSERT(row->data_json_len <= ARB_EVENT_BYTES_MAX);
    arb__sqlite_binder binder = {statement, SQLITE_OK};
    arb__bind_text(&binder, 1, event->stream, -1);
    arb__bind_int64(&binder, 2, (int64_t)event->seq);
    arb__bind_text(&binder, 3, event->type, -1);
    arb__bind_text(&binder, 4, row->data_json, (int)row->data_json_len);
    arb__bind_text(&binder, 5, event->client_id, -1);
    arb__bind_int64(&binder, 6, (int64_t)event->client_seq);
    arb__bind_int64(&binder, 7, event->applied_at_ms);
    arb__bind_blob(&binder, 8, event->hash, ARB_HASH_BYTES);
    return binder.rc;
}

static int insert_events(arb__sqlite_store *store, const arb_store_batch *batch)
{
    sqlite3_stmt *statement = store->statements[ARB__SQL_INSERT_EVENT];
    for (size_t i = 0; i < batch->event_count; i++) {
        const arb_store_event *row = &batch->events[i];
        int rc = execute(store, ARB__SQL_INSERT_EVENT, bind_event(statement, row), "insert event");
        if (rc != 0) {
            arb_log(ARB_LOG_ERROR, "event not stored", "stream=\"%s\" seq=%llu", row->event->stream,
                    (unsigned long long)row->event->seq);
            return rc;
        }
    }
    return 0;
}

/* A committed outcome stores its seq range; a rejected one its code (with
 * the code's name, so the sqlite3 shell shows readable rejections) and
 * message. The columns that do not apply are NULL. */
static void bind_outcome_result(arb__sqlite_binder *binder, const arb_store_outcome *row)
{
    if (row->kind == ARB_OUTCOME_COMMITTED) {
        ARB_ASSERT(row->seq_first <= row->seq_last && row->seq_last <= INT64_MAX);
        arb__bind_int64(binder, 6, (int64_t)row->seq_first);
        arb__bind_int64(binder, 7, (int64_t)row->seq_last);
        arb__bind_null(binder, 8);
        arb__bind_null(binder, 9);
        arb__bind_null(binder, 10);
        return;
    }
    ARB_ASSERT(row->kind == ARB_OUTCOME_REJECTED && row->code < 0);
    arb__bind_null(binder, 6);
    arb__bind_null(binder, 7);
    arb__bind_int64(binder, 8, row->code);
    arb__bind_text(binder, 9, arb_err_name(row->code), -1);
    arb__bind_text(binder, 10, row->message, -1);
}

static int bind_outcome(sqlite3_stmt *statement, const arb_store_outcome *row)
{
    ARB_ASSERT(row->client_seq <= INT64_MAX && row->version <= INT64_MAX);
    ARB_ASSERT(row->payload_json_len <= INT32_MAX);
    arb__sqlite_binder binder = {statement, SQLITE_OK};
    arb__bind_text(&binder, 1, row->client_id, -1);
    arb__bind_int64(&binder, 2, (int64_t)row->client_seq);
    arb__bind_blob(&binder, 3, row->fingerprint, ARB_HASH_BYTES);
    arb__bind_text(&binder, 4, row->stream, -1);
    arb__bind_int64(&binder, 5, row->kind);
    bind_outcome_result(&binder, row);
    if (row->payload_json != NULL)
        arb__bind_text(&binder, 11, row->payload_json, (int)row->payload_json_len);
    else
        arb__bind_null(&binder, 11);
    arb__bind_int64(&binder, 12, (int64_t)row->version);
    arb__bind_int64(&binder, 13, row->decided_at_ms);
    uint8_t checksum[ARB__OUTCOME_CHECKSUM_BYTES];
    arb__sqlite_outcome_checksum(row, row->payload_json, row->payload_json_len, checksum);
    if (binder.rc == SQLITE_OK) /* copied: the array ends with this call */
        binder.rc = sqlite3_bind_blob(statement, 14, checksum, sizeof checksum, SQLITE_TRANSIENT);
    return binder.rc;
}

/* ARB_EIO when the key tail already holds (client_id, client_seq). */
static int check_new_key(const arb__sqlite_store *store, const arb_store_outcome *row)
{
    if (arb__key_tail_find(&store->tail, row->client_id, row->client_seq) == NULL)
        return 0;
    arb_log(ARB_LOG_ERROR, "duplicate outcome key", "client_id=\"%s\" client_seq=%llu",
            row->client_id, (unsigned long long)row->client_seq);
    return ARB_EIO;
}

/* Insert the outcome rows and add their keys to the tail (the caller drops
 * them again when the commit fails). */
static int insert_outcomes(arb__sqlite_store *store, const arb_store_batch *batch)
{
    sqlite3_stmt *statement = store->statements[ARB__SQL_INSERT_OUTCOME];
    for (size_t i = 0; i < batch->outcome_count; i++) {
        const arb_store_outcome *row = &batch->outcomes[i];
        ARB_ASSERT(memchr(row->client_id, '\0', sizeof row->client_id) != NULL);
        int rc = check_new_key(store, row);
        if (rc == 0)
            rc = execute(store, ARB__SQL_INSERT_OUTCOME, bind_outcome(statement, row),
                         "insert outcome");
        if (rc != 0) {
            arb_log(ARB_LOG_ERROR, "outcome not stored", "client_id=\"%s\" client_seq=%llu",
                    row->client_id, (unsigned long long)row->client_seq);
            return rc;
        }
        store->last_outcome_rowid = sqlite3_last_insert_rowid(store->db);
        bool added = arb__key_tail_add(&store->tail, row->client_id, row->client_seq,
                                       store->last_outcome_rowid);
        ARB_ASSERT(added); /* check_new_key found no such key */
    }
    return 0;
}

/* Insert sorted[from..to) into outcome_keys. Plain INSERT: a slice and the
 * cursor after it are written in one transaction, so no key of a slice is
 * ever there already - but a genuine duplicate would be, and fails. */
static int insert_keys(arb__sqlite_store *store, const arb__sqlite_key *const *sorted, size_t from,
                       size_t to)
{
    ARB_ASSERT(from <= to);
    sqlite3_stmt *statement = store->statements[ARB__SQL_INSERT_KEY];
    for (size_t i = from; i < to; i++) {
        const arb__sqlite_key *key = sorted[i];
        ARB_ASSERT(i == from || strcmp(sorted[i - 1]->client_id, key->client_id) <= 0);
        arb__sqlite_binder binder = {statement, SQLITE_OK};
        arb__bind_text(&binder, 1, key->client_id, -1);
        arb__bind_int64(&binder, 2, (int64_t)key->client_seq);
        arb__bind_int64(&binder, 3, key->outcome_rowid);
        int rc = execute(store, ARB__SQL_INSERT_KEY, binder.rc, "insert outcome key");
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int write_key_meta(arb__sqlite_store *store, const arb__sqlite_key_step *step)
{
    ARB_ASSERT(step->sealed_through_rowid >= step->keys_through_rowid);
    arb__sqlite_binder binder = {store->statements[ARB__SQL_UPDATE_KEY_CURSOR], SQLITE_OK};
    arb__bind_int64(&binder, 1, step->keys_through_rowid);
    arb__bind_int64(&binder, 2, step->sealed_through_rowid);
    arb__bind_int64(&binder, 3, (int64_t)step->slice_cursor);
    return execute(store, ARB__SQL_UPDATE_KEY_CURSOR, binder.rc, "update key cursor");
}

/* The key writes of one commit, after its outcome rows; *step says what
 * they were, for arb__key_tail_apply once the transaction has committed.
 *
 *   seal due, sealed pending:  write the rest of the sealed generation (the
 *                              bounded worst case: < ARB__KEY_GENERATION_MAX
 *                              keys), then seal as below
 *   seal due:                  sort the filling generation; it is the one
 *                              the slice below comes from
 *   a sealed generation:       write its next slice_keys sorted keys and
 *                              the cursor; after the last one,
 *                              keys_through_rowid = sealed_through_rowid
 *
 * Nothing here changes the tail's contents (the sort only fills scratch),
 * so a failed commit has nothing to undo but its added keys. */
static int write_keys(arb__sqlite_store *store, arb__sqlite_key_step *step)
{
    arb__sqlite_key_tail *tail = &store->tail;
    arb__sqlite_key_generation *target = tail->sealed->count > 0 ? tail->sealed : NULL;
    size_t cursor = tail->slice_cursor;
    *step = (arb__sqlite_key_step){false, false, cursor, tail->keys_through_rowid,
                                   tail->sealed_through_rowid};
    int rc = 0;
    if (arb__key_tail_seal_due(tail)) {
        if (target != NULL)
            rc = insert_keys(store, target->sorted, cursor, target->count);
        step->seal = true;
        step->keys_through_rowid = tail->sealed_through_rowid;
        target = tail->filling;
        cursor = 0;
        arb__key_generation_sort(target);
        step->sealed_through_rowid = target->keys[target->count - 1].outcome_rowid;
    }
    if (target == NULL || rc != 0)
        return rc;
    ARB_ASSERT(cursor < target->count && tail->slice_keys >= 1);
    size_t end =
        target->count - cursor > tail->slice_keys ? cursor + tail->slice_keys : target->count;
    rc = insert_keys(store, target->sorted, cursor, end);
    step->slice_cursor = end == target->count ? 0 : end;
    if (end == target->count)
        step->keys_through_rowid = step->sealed_through_rowid;
    if (rc == 0)
        rc = write_key_meta(store, step);
    step->wrote = rc == 0;
    return rc;
}

/* The writes of one batch, inside the transaction. */
static int write_batch(arb__sqlite_store *store, const arb_store_batch *batch,
                       arb__sqlite_key_step *step)
{
    int rc = insert_streams(store, batch);
    if (rc == 0)
        rc = insert_events(store, batch);
    if (rc == 0)
        rc = insert_outcomes(store, batch);
    if (rc == 0)
        rc = write_keys(store, step);
    return rc;
}

/* The fault hook: true when this commit is the one to fail. */
static bool fault_due(arb__sqlite_store *store)
{
    if (store->fail_after != 0)
        return false;
    store->fail_after = -1;
    arb_log(ARB_LOG_ERROR, "injected commit failure", "path=\"%s\"", store->db_path);
    return true;
}

int arb__sqlite_commit(arb_store *base, const arb_store_batch *batch)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(batch != NULL);
    ARB_ASSERT(batch->new_stream_count == 0 || batch->new_streams != NULL);
    ARB_ASSERT(batch->event_count == 0 || batch->events != NULL);
    ARB_ASSERT(batch->outcome_count == 0 || batch->outcomes != NULL);
    if (store->mode != ARB_STORE_READ_WRITE)
        return read_only_refusal(store, "commit");
    if (batch->new_stream_count == 0 && batch->event_count == 0 && batch->outcome_count == 0)
        return 0;
    if (batch->outcome_count > ARB_BATCH_PROPOSALS_MAX) {
        arb_log(ARB_LOG_ERROR, "batch has too many outcomes", "outcomes=%zu max=%d",
                batch->outcome_count, ARB_BATCH_PROPOSALS_MAX);
        return ARB_ELIMIT;
    }
    size_t tail_count_before = store->tail.filling->count;
    arb__sqlite_key_step step = {0};
    int rc = begin(store);
    if (rc != 0)
        return rc;
    rc = write_batch(store, batch, &step);
    /* Injected after the rows (and keys) are written, so that the rollback
     * path is the one exercised: nothing of the batch may reach the disk. */
    if (rc == 0 && fault_due(store))
        rc = ARB_EIO;
    rc = finish(store, rc, "commit");
    /* After the transaction: a failed commit drops the keys it added, so the
     * tail is exactly as before (cursor included); a committed one applies
     * what it wrote. */
    if (rc == 0) {
        arb__key_tail_apply(&store->tail, &step);
        if (batch->outcome_count > 0)
            arb__mark_write(store, store->last_outcome_rowid);
    } else
        arb__key_tail_truncate(&store->tail, tail_count_before);
    if (rc == 0 && store->fail_after > 0)
        store->fail_after--;
    clear_bindings(store);
    return rc;
}

void arb_store_sqlite_fail_after(arb_store *base, long commits_ok)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(commits_ok >= -1);
    store->fail_after = commits_ok;
}

void arb_store_sqlite_set_key_flush(arb_store *base, long commits)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(commits >= 1);
    ARB_ASSERT(store->mode == ARB_STORE_READ_WRITE);
    store->tail.flush_every_commits = commits;
}

void arb_store_sqlite_set_key_slice(arb_store *base, long keys)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(keys >= 1 && keys <= ARB__KEY_GENERATION_MAX);
    ARB_ASSERT(store->mode == ARB_STORE_READ_WRITE);
    store->tail.slice_keys = (size_t)keys;
}

static int write_snapshot(arb__sqlite_store *store, const char *stream, uint64_t seq,
                          const char *state_json, size_t state_json_len)
{
    arb__sqlite_binder insert = {store->statements[ARB__SQL_INSERT_SNAPSHOT], SQLITE_OK};
    arb__bind_text(&insert, 1, stream, -1);
    arb__bind_int64(&insert, 2, (int64_t)seq);
    arb__bind_text(&insert, 3, state_json, (int)state_json_len);
    int rc = execute(store, ARB__SQL_INSERT_SNAPSHOT, insert.rc, "insert snapshot");
    sqlite3_clear_bindings(insert.statement);
    if (rc != 0)
        return rc;
    arb__sqlite_binder prune = {store->statements[ARB__SQL_PRUNE_SNAPSHOTS], SQLITE_OK};
    arb__bind_text(&prune, 1, stream, -1);
    arb__bind_int64(&prune, 2, ARB_SNAPSHOTS_KEPT);
    rc = execute(store, ARB__SQL_PRUNE_SNAPSHOTS, prune.rc, "prune snapshots");
    sqlite3_clear_bindings(prune.statement);
    return rc;
}

int arb__sqlite_snapshot_put(arb_store *base, const char *stream, uint64_t seq,
                             const char *state_json, size_t state_json_len)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(stream != NULL && state_json != NULL);
    ARB_ASSERT(seq <= INT64_MAX);
    _Static_assert(ARB_SNAPSHOTS_KEPT >= 1, "the newest snapshot is always kept");
    if (store->mode != ARB_STORE_READ_WRITE)
        return read_only_refusal(store, "snapshot_put");
    if (state_json_len > ARB_SNAPSHOT_BYTES_MAX)
        return ARB_ETOO_LARGE;
    int rc = begin(store);
    if (rc != 0)
        return rc;
    rc = finish(store, write_snapshot(store, stream, seq, state_json, state_json_len),
                "commit snapshot");
    if (rc != 0)
        arb_log(ARB_LOG_ERROR, "snapshot not stored", "stream=\"%s\" seq=%llu", stream,
                (unsigned long long)seq);
    return rc;
}
