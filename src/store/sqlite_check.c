/*
 * sqlite_check.c - the store's own integrity beyond the event log: the
 * idempotency keys (and the high-water mark, sqlite_mark.c); and the
 * reader's pinned snapshot, which lets verify read all of it as of one
 * moment beside a running writer.
 *
 * The log checks itself (the hash chain, replay.c), but an outcome's key is
 * found through outcome_keys, which nothing chains: a key changed on disk
 * (a flipped bit, a torn page) makes the lookup miss, and the resent
 * proposal would be decided a second time. So before a server serves, and
 * in arbiter verify, every outcome row whose key is due in outcome_keys (its
 * rowid <= keys_through_rowid, sqlite_keys.c) must find there exactly its
 * own key pointing back at it. The rows after that are the key tail's,
 * which the writer rebuilds from the rows themselves at open.
 *
 * One query, an index search per row: measured 0.55 s for a million
 * outcomes (docs/reliability.md).
 *
 * A row's own fields are protected by its checksum (schema version 3): a
 * BLAKE2b-128 of every field as it reads back, written with the row and
 * checked on every read (sqlite_read.c), so a changed fingerprint, result
 * or seq range is ARB_ECORRUPT, never a wrong answer to a resend.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

#define KEYS_MISSING_SQL                                                                           \
    "SELECT count(*), min(o.rowid) FROM outcomes AS o"                                             \
    " WHERE o.rowid <= COALESCE((SELECT value FROM meta WHERE key = 'keys_through_rowid'), 0)"     \
    " AND NOT EXISTS (SELECT 1 FROM outcome_keys AS k WHERE k.client_id = o.client_id"             \
    " AND k.client_seq = o.client_seq AND k.outcome_rowid = o.rowid)"

int arb__sqlite_check(arb_store *base, char *why, size_t why_size)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(store->db, KEYS_MISSING_SQL, -1, &statement, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(statement);
    int result = 0;
    if (rc == SQLITE_ROW) {
        long long missing = sqlite3_column_int64(statement, 0);
        long long first = sqlite3_column_int64(statement, 1);
        if (missing != 0) {
            snprintf(why, why_size,
                     "%lld outcome(s) have no matching idempotency key in outcome_keys (the "
                     "first at outcome rowid %lld)",
                     missing, first);
            arb_log(ARB_LOG_ERROR, "idempotency keys do not match outcomes",
                    "path=\"%s\" missing=%lld first_rowid=%lld", store->db_path, missing, first);
            result = ARB_ECORRUPT;
        }
    } else {
        result = arb__sqlite_fail(store->db, rc, "check idempotency keys", store->db_path);
        snprintf(why, why_size, "cannot check the idempotency keys: %s", arb_err_message(result));
    }
    sqlite3_finalize(statement);
    return result == 0 ? arb__mark_check(store, why, why_size) : result;
}

static void hash_u64(crypto_generichash_state *state, uint64_t value)
{
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(value >> (8 * i));
    crypto_generichash_update(state, bytes, sizeof bytes);
}

/* A string with its terminating NUL, so adjacent fields cannot run together. */
static void hash_string(crypto_generichash_state *state, const char *text)
{
    crypto_generichash_update(state, (const unsigned char *)text, strlen(text) + 1);
}

void arb__sqlite_outcome_checksum(const arb_store_outcome *row, const char *payload,
                                  size_t payload_len, uint8_t out[ARB__OUTCOME_CHECKSUM_BYTES])
{
    bool committed = row->kind == ARB_OUTCOME_COMMITTED;
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, ARB__OUTCOME_CHECKSUM_BYTES);
    hash_string(&state, row->client_id);
    hash_u64(&state, row->client_seq);
    crypto_generichash_update(&state, row->fingerprint, ARB_HASH_BYTES);
    hash_string(&state, row->stream);
    hash_u64(&state, (uint64_t)(int64_t)row->kind);
    /* The columns that do not apply are stored NULL and read back as 0, "". */
    hash_u64(&state, committed ? row->seq_first : 0);
    hash_u64(&state, committed ? row->seq_last : 0);
    hash_u64(&state, committed ? 0 : (uint64_t)(int64_t)row->code);
    hash_string(&state, committed ? "" : row->message);
    hash_u64(&state, payload != NULL ? (uint64_t)payload_len + 1 : 0);
    if (payload != NULL)
        crypto_generichash_update(&state, (const unsigned char *)payload, payload_len);
    hash_u64(&state, row->version);
    hash_u64(&state, (uint64_t)row->decided_at_ms);
    crypto_generichash_final(&state, out, ARB__OUTCOME_CHECKSUM_BYTES);
}

/* The text of a column, or "" (NULL), into a fixed buffer (cut to fit). */
static void migrate_text(sqlite3_stmt *statement, int column, char *out, size_t size)
{
    const unsigned char *text = sqlite3_column_text(statement, column);
    snprintf(out, size, "%s", text != NULL ? (const char *)text : "");
}

/* The columns in the order arb__sqlite_fill_checksums reads them. */
#define ROWS_WITHOUT_CHECKSUM_SQL                                                                  \
    "SELECT rowid, client_id, client_seq, fingerprint, stream, status, seq_first, seq_last,"       \
    " code, message, payload, version, decided_at FROM outcomes WHERE checksum IS NULL"            \
    " ORDER BY rowid"

int arb__sqlite_fill_checksums(sqlite3 *db)
{
    sqlite3_stmt *rows = NULL;
    sqlite3_stmt *update = NULL;
    int rc = sqlite3_prepare_v2(db, ROWS_WITHOUT_CHECKSUM_SQL, -1, &rows, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "UPDATE outcomes SET checksum = ?1 WHERE rowid = ?2", -1,
                                &update, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(rows)) == SQLITE_ROW) {
        arb_store_outcome row;
        memset(&row, 0, sizeof row);
        migrate_text(rows, 1, row.client_id, sizeof row.client_id);
        row.client_seq = (uint64_t)sqlite3_column_int64(rows, 2);
        if (sqlite3_column_bytes(rows, 3) == ARB_HASH_BYTES)
            memcpy(row.fingerprint, sqlite3_column_blob(rows, 3), ARB_HASH_BYTES);
        migrate_text(rows, 4, row.stream, sizeof row.stream);
        row.kind = sqlite3_column_int(rows, 5);
        row.seq_first = (uint64_t)sqlite3_column_int64(rows, 6);
        row.seq_last = (uint64_t)sqlite3_column_int64(rows, 7);
        row.code = sqlite3_column_int(rows, 8);
        migrate_text(rows, 9, row.message, sizeof row.message);
        const char *payload = (const char *)sqlite3_column_text(rows, 10);
        size_t payload_len = (size_t)sqlite3_column_bytes(rows, 10);
        row.version = (uint64_t)sqlite3_column_int64(rows, 11);
        row.decided_at_ms = sqlite3_column_int64(rows, 12);
        uint8_t checksum[ARB__OUTCOME_CHECKSUM_BYTES];
        arb__sqlite_outcome_checksum(&row, payload, payload_len, checksum);
        sqlite3_reset(update);
        rc = sqlite3_bind_blob(update, 1, checksum, sizeof checksum, SQLITE_TRANSIENT);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(update, 2, sqlite3_column_int64(rows, 0));
        if (rc == SQLITE_OK)
            rc = sqlite3_step(update) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(rows);
    sqlite3_finalize(update);
    return rc;
}

int arb__sqlite_pin(arb_store *base)
{
    arb__sqlite_store *store = arb__sqlite_from(base);
    if (store->mode != ARB_STORE_READ_ONLY)
        return ARB_EUSAGE;
    /* BEGIN is deferred: the snapshot starts with the first read. */
    int rc = sqlite3_exec(store->db, "BEGIN; SELECT count(*) FROM streams;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int result = arb__sqlite_fail(store->db, rc, "pin a read snapshot", store->db_path);
        if (!sqlite3_get_autocommit(store->db))
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        return result;
    }
    return 0;
}
