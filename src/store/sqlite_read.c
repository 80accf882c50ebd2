/*
 * sqlite_read.c - scans and lookups: streams, events, outcome, clients,
 * snapshot_get.
 *
 * Every value read back is checked against what the write side guarantees:
 * names fit their fixed buffers, hashes and fingerprints are 32 bytes,
 * numbers that are unsigned in the structs are non-negative integers, NOT
 * NULL columns are not NULL. A stored value that fails a check is reported as
 * ARB_ECORRUPT and never handed on, so a damaged log is not served.
 *
 * An outcome is found by its key: the writer looks in its key tail (the
 * newest keys, in memory; see sqlite_keys.c) and reads the row by rowid, or
 * else goes through outcome_keys; a reader, which has no tail, asks one
 * statement that does both on the database. Either way the row read must
 * carry the key asked for, and its checksum (sqlite_check.c) must match its
 * fields, or it is reported as ARB_ECORRUPT.
 *
 * The scans hand borrowed rows to a callback. A callback may call into the
 * store again, even into the same scan (say, events of another stream while
 * listing streams): when the cached statement is in the middle of a scan, the
 * nested call prepares a statement of its own for that call.
 */
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

static int corrupt(const arb__sqlite_store *store, const char *what, int column)
{
    arb_log(ARB_LOG_ERROR, "stored value failed a check", "what=\"%s\" column=%d path=\"%s\"", what,
            column, store->db_path);
    return ARB_ECORRUPT;
}

/* A TEXT column into a fixed buffer of size bytes, NUL-terminated. */
static int column_name(const arb__sqlite_store *store, sqlite3_stmt *statement, int column,
                       char *out, size_t size)
{
    ARB_ASSERT(size > 0);
    const unsigned char *text = sqlite3_column_text(statement, column);
    size_t len = (size_t)sqlite3_column_bytes(statement, column);
    if (sqlite3_column_type(statement, column) != SQLITE_TEXT || text == NULL || len >= size ||
        memchr(text, '\0', len) != NULL)
        return corrupt(store, "name", column);
    memcpy(out, text, len);
    out[len] = '\0';
    return 0;
}

/* An INTEGER column that must be >= 0; NULL reads as 0 when nullable. */
static int column_u64(const arb__sqlite_store *store, sqlite3_stmt *statement, int column,
                      bool nullable, uint64_t *value_out)
{
    int type = sqlite3_column_type(statement, column);
    if (type == SQLITE_NULL && nullable) {
        *value_out = 0;
        return 0;
    }
    sqlite3_int64 value = sqlite3_column_int64(statement, column);
    if (type != SQLITE_INTEGER || value < 0)
        return corrupt(store, "unsigned integer", column);
    *value_out = (uint64_t)value;
    return 0;
}

static int column_i64(const arb__sqlite_store *store, sqlite3_stmt *statement, int column,
                      int64_t *value_out)
{
    if (sqlite3_column_type(statement, column) != SQLITE_INTEGER)
        return corrupt(store, "integer", column);
    *value_out = sqlite3_column_int64(statement, column);
    return 0;
}

static int column_hash(const arb__sqlite_store *store, sqlite3_stmt *statement, int column,
                       uint8_t out[ARB_HASH_BYTES])
{
    const void *bytes = sqlite3_column_blob(statement, column);
    if (sqlite3_column_type(statement, column) != SQLITE_BLOB || bytes == NULL ||
        sqlite3_column_bytes(statement, column) != ARB_HASH_BYTES)
        return corrupt(store, "hash", column);
    memcpy(out, bytes, ARB_HASH_BYTES);
    return 0;
}

/* A TEXT column as a malloc'ed NUL-terminated copy (NULL for SQL NULL when
 * nullable). */
static int column_copy(const arb__sqlite_store *store, sqlite3_stmt *statement, int column,
                       bool nullable, char **text_out, size_t *len_out)
{
    *text_out = NULL;
    *len_out = 0;
    int type = sqlite3_column_type(statement, column);
    if (type == SQLITE_NULL && nullable)
        return 0;
    const unsigned char *text = sqlite3_column_text(statement, column);
    size_t len = (size_t)sqlite3_column_bytes(statement, column);
    if (type != SQLITE_TEXT || text == NULL)
        return corrupt(store, "text", column);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return ARB_ENOMEM;
    memcpy(copy, text, len + 1);
    *text_out = copy;
    *len_out = len;
    return 0;
}

/* The cached statement, or a fresh one when the cached one is mid-scan (a
 * callback called back into the same scan). */
static int borrow(arb__sqlite_store *store, arb__sqlite_statement which, sqlite3_stmt **out)
{
    sqlite3_stmt *cached = store->statements[which];
    if (!sqlite3_stmt_busy(cached)) {
        *out = cached;
        return 0;
    }
    int rc = sqlite3_prepare_v2(store->db, sqlite3_sql(cached), -1, out, NULL);
    return rc == SQLITE_OK ? 0 : arb__sqlite_fail(store->db, rc, "prepare nested", NULL);
}

static void give_back(arb__sqlite_store *store, arb__sqlite_statement which,
                      sqlite3_stmt *statement)
{
    if (statement != store->statements[which]) {
        sqlite3_finalize(statement);
        return;
    }
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
}

/* The end of a scan: rc is the last sqlite3_step result, result what the
 * rows gave. */
static int scan_end(arb__sqlite_store *store, int rc, int result, const char *what)
{
    if (result != 0)
        return result;
    return rc == SQLITE_DONE ? 0 : arb__sqlite_fail(store->db, rc, what, store->db_path);
}

static int stream_row(arb__sqlite_store *store, sqlite3_stmt *statement, arb_store_stream_fn fn,
                      void *user)
{
    char name[ARB_STREAM_NAME_BYTES_MAX + 1];
    char kind[ARB_KIND_BYTES_MAX + 1];
    uint64_t head_seq = 0;
    int rc = column_name(store, statement, 0, name, sizeof name);
    if (rc == 0)
        rc = column_name(store, statement, 1, kind, sizeof kind);
    if (rc == 0)
        rc = column_u64(store, statement, 2, false, &head_seq);
    return rc != 0 ? rc : fn(user, name, kind, head_seq);
}

int arb__sqlite_streams(arb_store *base, arb_store_stream_fn fn, void *user)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(fn != NULL);
    sqlite3_stmt *statement = NULL;
    int result = borrow(store, ARB__SQL_SELECT_STREAMS, &statement);
    if (result != 0)
        return result;
    int rc;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
        result = stream_row(store, statement, fn, user);
        if (result != 0)
            break;
    }
    give_back(store, ARB__SQL_SELECT_STREAMS, statement);
    return scan_end(store, rc, result, "select streams");
}

/* Fill event (its stream already set) from one row; data points into the
 * row, valid until the next step. */
static int event_row(arb__sqlite_store *store, sqlite3_stmt *statement, arb_event *event,
                     const char **data_out, size_t *data_len_out)
{
    int rc = column_u64(store, statement, 0, false, &event->seq);
    if (rc == 0)
        rc = column_name(store, statement, 1, event->type, sizeof event->type);
    if (rc == 0)
        rc = column_name(store, statement, 3, event->client_id, sizeof event->client_id);
    if (rc == 0)
        rc = column_u64(store, statement, 4, false, &event->client_seq);
    if (rc == 0)
        rc = column_i64(store, statement, 5, &event->applied_at_ms);
    if (rc == 0)
        rc = column_hash(store, statement, 6, event->hash);
    if (rc != 0)
        return rc;
    *data_out = (const char *)sqlite3_column_text(statement, 2);
    *data_len_out = (size_t)sqlite3_column_bytes(statement, 2);
    if (sqlite3_column_type(statement, 2) != SQLITE_TEXT || *data_out == NULL)
        return corrupt(store, "event data", 2);
    return 0;
}

/* A stream's seqs run 1, 2, 3... with no gap (the engine never writes
 * one), so a scan after since_seq must see since_seq + 1, + 2...: anything
 * else is a damaged table or index (say, an index page whose seek skips
 * rows a full scan still sees), reported, never served. */
static int events_scan(arb__sqlite_store *store, sqlite3_stmt *statement, uint64_t since_seq,
                       arb_event *event, arb_store_event_fn fn, void *user)
{
    uint64_t previous_seq = since_seq;
    int result = 0;
    int rc;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
        const char *data = NULL;
        size_t data_len = 0;
        result = event_row(store, statement, event, &data, &data_len);
        if (result == 0 && event->seq != previous_seq + 1)
            result = corrupt(store, "event sequence", 0);
        if (result == 0)
            result = fn(user, event, data, data_len);
        if (result != 0)
            break;
        previous_seq = event->seq;
    }
    return scan_end(store, rc, result, "select events");
}

int arb__sqlite_events(arb_store *base, const char *stream, uint64_t since_seq, uint64_t limit,
                       arb_store_event_fn fn, void *user)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(stream != NULL && fn != NULL);
    arb_event event;
    memset(&event, 0, sizeof event);
    int result = arb_copy_name(event.stream, sizeof event.stream, stream);
    if (result != 0 || since_seq >= INT64_MAX)
        return result; /* a name too long or a seq too high has no events */
    sqlite3_stmt *statement = NULL;
    result = borrow(store, ARB__SQL_SELECT_EVENTS, &statement);
    if (result != 0)
        return result;
    arb__sqlite_binder binder = {statement, SQLITE_OK};
    arb__bind_text(&binder, 1, stream, -1);
    arb__bind_int64(&binder, 2, (int64_t)since_seq);
    arb__bind_int64(&binder, 3, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
    if (binder.rc == SQLITE_OK)
        result = events_scan(store, statement, since_seq, &event, fn, user);
    else
        result = arb__sqlite_fail(store->db, binder.rc, "bind events", NULL);
    give_back(store, ARB__SQL_SELECT_EVENTS, statement);
    return result;
}

/* The columns only one kind of outcome has: the seq range of a committed
 * one, the code and message of a rejected one (NULL reads as 0 and ""). */
static int outcome_result(arb__sqlite_store *store, sqlite3_stmt *statement, arb_store_outcome *row)
{
    int rc = column_u64(store, statement, 5, true, &row->seq_first);
    if (rc == 0)
        rc = column_u64(store, statement, 6, true, &row->seq_last);
    if (rc != 0)
        return rc;
    if (sqlite3_column_type(statement, 7) != SQLITE_NULL) {
        int64_t stored = 0;
        rc = column_i64(store, statement, 7, &stored);
        if (rc == 0 && (stored >= 0 || stored < INT32_MIN))
            rc = corrupt(store, "outcome code", 7);
        row->code = (int)stored;
    }
    if (rc == 0 && sqlite3_column_type(statement, 8) != SQLITE_NULL)
        rc = column_name(store, statement, 8, row->message, sizeof row->message);
    if (rc == 0 && row->kind == ARB_OUTCOME_REJECTED && row->code == 0)
        rc = corrupt(store, "rejected outcome without a code", 7);
    return rc;
}

/* The row's checksum (column 12) against its fields, payload included. */
static int outcome_checksum(arb__sqlite_store *store, sqlite3_stmt *statement,
                            const arb_store_outcome *row)
{
    const char *payload = (const char *)sqlite3_column_text(statement, 9);
    size_t payload_len = (size_t)sqlite3_column_bytes(statement, 9);
    uint8_t expected[ARB__OUTCOME_CHECKSUM_BYTES];
    arb__sqlite_outcome_checksum(row, payload, payload_len, expected);
    const void *stored = sqlite3_column_blob(statement, 12);
    if (stored == NULL || sqlite3_column_bytes(statement, 12) != ARB__OUTCOME_CHECKSUM_BYTES ||
        memcmp(stored, expected, sizeof expected) != 0)
        return corrupt(store, "outcome checksum", 12);
    return 0;
}

static int outcome_row(arb__sqlite_store *store, sqlite3_stmt *statement, arb_store_outcome *row,
                       char **payload_out)
{
    int64_t kind = 0;
    int rc = column_name(store, statement, 0, row->client_id, sizeof row->client_id);
    if (rc == 0)
        rc = column_u64(store, statement, 1, false, &row->client_seq);
    if (rc == 0)
        rc = column_hash(store, statement, 2, row->fingerprint);
    if (rc == 0)
        rc = column_name(store, statement, 3, row->stream, sizeof row->stream);
    if (rc == 0)
        rc = column_i64(store, statement, 4, &kind);
    if (rc == 0 && kind != ARB_OUTCOME_COMMITTED && kind != ARB_OUTCOME_REJECTED)
        rc = corrupt(store, "outcome status", 4);
    row->kind = (int)kind;
    if (rc == 0)
        rc = outcome_result(store, statement, row);
    if (rc == 0)
        rc = column_u64(store, statement, 10, false, &row->version);
    if (rc == 0)
        rc = column_i64(store, statement, 11, &row->decided_at_ms);
    if (rc == 0)
        rc = outcome_checksum(store, statement, row);
    if (rc == 0 && payload_out != NULL) {
        char *payload = NULL;
        rc = column_copy(store, statement, 9, true, &payload, &row->payload_json_len);
        row->payload_json = payload;
        *payload_out = payload;
    }
    return rc;
}

/* The statement that finds (client_id, client_seq), bound; *in_tail_out
 * when the key tail named the row. */
static sqlite3_stmt *outcome_statement(arb__sqlite_store *store, const char *client_id,
                                       uint64_t client_seq, bool *in_tail_out, int *bind_rc_out)
{
    sqlite3_stmt *statement = NULL;
    arb__sqlite_binder binder = {NULL, SQLITE_OK};
    const arb__sqlite_key *key = NULL;
    if (store->mode == ARB_STORE_READ_WRITE)
        key = arb__key_tail_find(&store->tail, client_id, client_seq);
    *in_tail_out = key != NULL;
    if (key != NULL) {
        statement = store->statements[ARB__SQL_SELECT_OUTCOME_BY_ROWID];
        binder.statement = statement;
        arb__bind_int64(&binder, 1, key->outcome_rowid);
    } else {
        statement = store->statements[store->mode == ARB_STORE_READ_WRITE
                                          ? ARB__SQL_SELECT_OUTCOME_BY_KEY
                                          : ARB__SQL_SELECT_OUTCOME_ANYWHERE];
        binder.statement = statement;
        arb__bind_text(&binder, 1, client_id, -1);
        arb__bind_int64(&binder, 2, (int64_t)client_seq);
    }
    *bind_rc_out = binder.rc;
    return statement;
}

int arb__sqlite_outcome(arb_store *base, const char *client_id, uint64_t client_seq,
                        arb_store_outcome *row_out, char **payload_out)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(client_id != NULL && row_out != NULL);
    memset(row_out, 0, sizeof *row_out);
    if (payload_out != NULL)
        *payload_out = NULL;
    if (client_seq > INT64_MAX || strlen(client_id) > ARB_CLIENT_ID_BYTES_MAX)
        return ARB_ENOTFOUND;
    int rc = SQLITE_OK;
    bool in_tail = false;
    sqlite3_stmt *statement = outcome_statement(store, client_id, client_seq, &in_tail, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(statement);
    int result = ARB_ENOTFOUND;
    if (rc == SQLITE_ROW)
        result = outcome_row(store, statement, row_out, payload_out);
    else if (rc == SQLITE_DONE && in_tail)
        result = corrupt(store, "outcome row of a key in the tail", 0);
    else if (rc != SQLITE_DONE)
        result = arb__sqlite_fail(store->db, rc, "select outcome", store->db_path);
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
    if (result == 0 &&
        (row_out->client_seq != client_seq || strcmp(row_out->client_id, client_id) != 0))
        result = corrupt(store, "outcome key", 0);
    if (result != 0 && payload_out != NULL) {
        free(*payload_out);
        *payload_out = NULL;
        row_out->payload_json = NULL;
    }
    return result;
}

int arb__sqlite_clients(arb_store *base, arb_store_client_fn fn, void *user)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(fn != NULL);
    sqlite3_stmt *statement = NULL;
    int result = borrow(store, ARB__SQL_SELECT_CLIENTS, &statement);
    if (result != 0)
        return result;
    int rc;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
        char client_id[ARB_CLIENT_ID_BYTES_MAX + 1];
        uint64_t client_seq_max = 0;
        result = column_name(store, statement, 0, client_id, sizeof client_id);
        if (result == 0)
            result = column_u64(store, statement, 1, false, &client_seq_max);
        if (result == 0)
            result = fn(user, client_id, client_seq_max);
        if (result != 0)
            break;
    }
    give_back(store, ARB__SQL_SELECT_CLIENTS, statement);
    return scan_end(store, rc, result, "select clients");
}

int arb__sqlite_outcomes(arb_store *base, arb_store_outcome_fn fn, void *user)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(fn != NULL);
    sqlite3_stmt *statement = NULL;
    int result = borrow(store, ARB__SQL_SELECT_OUTCOMES_ALL, &statement);
    if (result != 0)
        return result;
    int rc;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
        arb_store_outcome row;
        memset(&row, 0, sizeof row);
        result = outcome_row(store, statement, &row, NULL);
        if (result == 0)
            result = fn(user, &row);
        if (result != 0)
            break;
    }
    give_back(store, ARB__SQL_SELECT_OUTCOMES_ALL, statement);
    return scan_end(store, rc, result, "select outcomes");
}

int arb__sqlite_snapshot_get(arb_store *base, const char *stream, uint64_t *seq_out,
                             char **state_out, size_t *state_len_out)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    ARB_ASSERT(stream != NULL && seq_out != NULL && state_out != NULL);
    *seq_out = 0;
    *state_out = NULL;
    size_t state_len = 0;
    sqlite3_stmt *statement = store->statements[ARB__SQL_SELECT_SNAPSHOT];
    arb__sqlite_binder binder = {statement, SQLITE_OK};
    arb__bind_text(&binder, 1, stream, -1);
    int rc = binder.rc == SQLITE_OK ? sqlite3_step(statement) : binder.rc;
    int result = ARB_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        result = column_u64(store, statement, 0, false, seq_out);
        if (result == 0)
            result = column_copy(store, statement, 1, false, state_out, &state_len);
    } else if (rc != SQLITE_DONE) {
        result = arb__sqlite_fail(store->db, rc, "select snapshot", store->db_path);
    }
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
    if (result != 0)
        *seq_out = 0;
    if (state_len_out != NULL)
        *state_len_out = result == 0 ? state_len : 0;
    return result;
}
