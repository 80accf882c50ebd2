/*
 * sqlite_keys.c - the key tail: idempotency keys kept in memory until they
 * are written, sorted, into the outcome_keys index.
 *
 * Why: an index on (client_id, client_seq) that every commit writes into
 * dirties one leaf page per distinct client of the batch, scattered over the
 * file, and each dirty page is a WAL frame to write and fsync. So outcomes
 * are an append-only rowid table, and their keys go into outcome_keys only
 * every few dozen commits, all at once and sorted, so that each client's
 * keys land together on a page or two. Until then they are here:
 *
 *   commit N:       rows appended, keys added to the tail
 *   commit N + k:   rows appended, keys added, then every tail key inserted
 *                   into outcome_keys and meta.keys_through_rowid advanced,
 *                   in the same transaction; the tail is emptied only once
 *                   that transaction has committed
 *   commit failed:  the keys it added are dropped again (truncate), so the
 *                   tail is exactly what it was before the commit
 *   open:           the keys of the rows after keys_through_rowid are read
 *                   back from the outcomes table and checked not to be in
 *                   outcome_keys already (or, when they are too many for
 *                   the tail, written into outcome_keys in one transaction)
 *
 * The table: keys[] in rowid order (the order they were committed), and an
 * open-addressing hash index with linear probing over twice as many slots,
 * each 0 (empty) or a keys[] index + 1. Keys are only ever removed newest
 * first (a rollback) or all at once (a flush), and removing the newest key
 * of a linear-probing table by emptying its slot restores the table exactly
 * as it was before that key was added: no tombstones, no shifting.
 *
 * Everything is allocated at open: ARB_STORE_KEY_TAIL_MAX keys of about 90
 * bytes plus 12 bytes of index and scratch per key. The pages of keys[] are
 * touched only as far as the tail grows.
 */
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

#define SLOT_COUNT (2u * ARB_STORE_KEY_TAIL_MAX)
/* Keys written out by default after this many commits: with 64 clients and
 * batches of 256 that is 256 keys a client, a few pages each. */
#define FLUSH_EVERY_COMMITS_DEFAULT 64

_Static_assert(ARB_STORE_KEY_TAIL_MAX <= UINT32_MAX / 2, "slots hold a key index + 1");

/* FNV-1a over the client id, then the seq, through a 64-bit finalizer
 * (splitmix64's) so that nearby seqs of one client spread over the slots. */
static uint64_t key_hash(const char *client_id, uint64_t client_seq)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)client_id; *p != '\0'; p++)
        hash = (hash ^ *p) * 1099511628211ULL;
    hash ^= client_seq + 0x9e3779b97f4a7c15ULL;
    hash = (hash ^ (hash >> 30)) * 0xbf58476d1ce4e5b9ULL;
    hash = (hash ^ (hash >> 27)) * 0x94d049bb133111ebULL;
    return hash ^ (hash >> 31);
}

static bool key_is(const arb__sqlite_key *key, const char *client_id, uint64_t client_seq)
{
    return key->client_seq == client_seq && strcmp(key->client_id, client_id) == 0;
}

/* The slot holding (client_id, client_seq), or the empty slot where it would
 * go. Terminates: the table is never more than half full. */
static size_t probe(const arb__sqlite_key_tail *tail, const char *client_id, uint64_t client_seq)
{
    ARB_ASSERT(tail->count < SLOT_COUNT);
    size_t slot = (size_t)(key_hash(client_id, client_seq) & (SLOT_COUNT - 1));
    for (size_t probes = 0; probes < SLOT_COUNT; probes++) {
        uint32_t entry = tail->slots[slot];
        if (entry == 0 || key_is(&tail->keys[entry - 1], client_id, client_seq))
            return slot;
        slot = (slot + 1) & (SLOT_COUNT - 1);
    }
    ARB_ASSERT(!"key tail index has no empty slot");
    return 0;
}

int arb__key_tail_init(arb__sqlite_key_tail *tail)
{
    ARB_ASSERT(tail->keys == NULL && tail->count == 0);
    tail->keys = calloc(ARB_STORE_KEY_TAIL_MAX, sizeof *tail->keys);
    tail->sorted = calloc(ARB_STORE_KEY_TAIL_MAX, sizeof *tail->sorted);
    tail->slots = calloc(SLOT_COUNT, sizeof *tail->slots);
    tail->keys_through_rowid = 0;
    tail->commits_since_flush = 0;
    tail->flush_every_commits = FLUSH_EVERY_COMMITS_DEFAULT;
    if (tail->keys == NULL || tail->sorted == NULL || tail->slots == NULL) {
        arb__key_tail_free(tail);
        return ARB_ENOMEM;
    }
    return 0;
}

void arb__key_tail_free(arb__sqlite_key_tail *tail)
{
    free(tail->keys);
    free(tail->sorted);
    free(tail->slots);
    tail->keys = NULL;
    tail->sorted = NULL;
    tail->slots = NULL;
    tail->count = 0;
}

const arb__sqlite_key *arb__key_tail_find(const arb__sqlite_key_tail *tail, const char *client_id,
                                          uint64_t client_seq)
{
    ARB_ASSERT(tail->slots != NULL && client_id != NULL);
    uint32_t entry = tail->slots[probe(tail, client_id, client_seq)];
    if (entry == 0)
        return NULL;
    ARB_ASSERT(entry <= tail->count);
    return &tail->keys[entry - 1];
}

bool arb__key_tail_add(arb__sqlite_key_tail *tail, const char *client_id, uint64_t client_seq,
                       int64_t outcome_rowid)
{
    ARB_ASSERT(tail->count < ARB_STORE_KEY_TAIL_MAX);
    ARB_ASSERT(outcome_rowid > tail->keys_through_rowid);
    ARB_ASSERT(tail->count == 0 || outcome_rowid > tail->keys[tail->count - 1].outcome_rowid);
    size_t len = strlen(client_id);
    ARB_ASSERT(len <= ARB_CLIENT_ID_BYTES_MAX);
    size_t slot = probe(tail, client_id, client_seq);
    if (tail->slots[slot] != 0)
        return false;
    arb__sqlite_key *key = &tail->keys[tail->count];
    key->outcome_rowid = outcome_rowid;
    key->client_seq = client_seq;
    memcpy(key->client_id, client_id, len + 1);
    tail->count++;
    tail->slots[slot] = (uint32_t)tail->count;
    return true;
}

void arb__key_tail_truncate(arb__sqlite_key_tail *tail, size_t count)
{
    ARB_ASSERT(count <= tail->count);
    while (tail->count > count) {
        const arb__sqlite_key *key = &tail->keys[tail->count - 1];
        size_t slot = probe(tail, key->client_id, key->client_seq);
        ARB_ASSERT(tail->slots[slot] == tail->count);
        tail->slots[slot] = 0;
        tail->count--;
    }
}

bool arb__key_tail_flush_due(const arb__sqlite_key_tail *tail)
{
    ARB_ASSERT(tail->flush_every_commits >= 1);
    if (tail->count == 0)
        return false;
    return tail->count >= ARB_STORE_KEY_TAIL_MAX / 2 ||
           tail->commits_since_flush + 1 >= tail->flush_every_commits;
}

static int key_order(const void *a, const void *b)
{
    const arb__sqlite_key *left = *(const arb__sqlite_key *const *)a;
    const arb__sqlite_key *right = *(const arb__sqlite_key *const *)b;
    int order = strcmp(left->client_id, right->client_id);
    if (order != 0)
        return order;
    return (left->client_seq > right->client_seq) - (left->client_seq < right->client_seq);
}

const arb__sqlite_key *const *arb__key_tail_sorted(arb__sqlite_key_tail *tail)
{
    for (size_t i = 0; i < tail->count; i++)
        tail->sorted[i] = &tail->keys[i];
    qsort(tail->sorted, tail->count, sizeof *tail->sorted, key_order);
    return tail->sorted;
}

void arb__key_tail_clear(arb__sqlite_key_tail *tail, int64_t keys_through_rowid)
{
    ARB_ASSERT(keys_through_rowid >= tail->keys_through_rowid);
    ARB_ASSERT(tail->count == 0 || keys_through_rowid == tail->keys[tail->count - 1].outcome_rowid);
    memset(tail->slots, 0, SLOT_COUNT * sizeof *tail->slots);
    tail->count = 0;
    tail->keys_through_rowid = keys_through_rowid;
    tail->commits_since_flush = 0;
}

/* ---- open: reading the tail back ---- */

static int load_failed(arb__sqlite_store *store, int rc, const char *what)
{
    return arb__sqlite_fail(store->db, rc, what, store->db_path);
}

static int read_keys_through(arb__sqlite_store *store, int64_t *rowid_out)
{
    static const char sql[] = "SELECT value FROM meta WHERE key = 'keys_through_rowid'";
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (rc != SQLITE_OK)
        return load_failed(store, rc, sql);
    rc = sqlite3_step(statement);
    int result = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(statement, 0) == SQLITE_INTEGER &&
        sqlite3_column_int64(statement, 0) >= 0)
        *rowid_out = sqlite3_column_int64(statement, 0);
    else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        result = ARB_ECORRUPT; /* the migration writes it; it never goes away */
    else
        result = load_failed(store, rc, sql);
    sqlite3_finalize(statement);
    if (result == ARB_ECORRUPT)
        arb_log(ARB_LOG_ERROR, "keys_through_rowid missing or bad", "path=\"%s\"", store->db_path);
    return result;
}

/* Add the key of the row statement is on; ARB_ECORRUPT for a bad row. */
static int load_row(arb__sqlite_store *store, sqlite3_stmt *statement)
{
    int64_t rowid = sqlite3_column_int64(statement, 0);
    const unsigned char *client_id = sqlite3_column_text(statement, 1);
    int client_id_len = sqlite3_column_bytes(statement, 1);
    int64_t client_seq = sqlite3_column_int64(statement, 2);
    if (sqlite3_column_type(statement, 1) != SQLITE_TEXT || client_id == NULL ||
        client_id_len > ARB_CLIENT_ID_BYTES_MAX ||
        strlen((const char *)client_id) != (size_t)client_id_len ||
        sqlite3_column_type(statement, 2) != SQLITE_INTEGER || client_seq < 0) {
        arb_log(ARB_LOG_ERROR, "stored outcome key failed a check", "rowid=%lld path=\"%s\"",
                (long long)rowid, store->db_path);
        return ARB_ECORRUPT;
    }
    if (!arb__key_tail_add(&store->tail, (const char *)client_id, (uint64_t)client_seq, rowid)) {
        arb_log(ARB_LOG_ERROR, "duplicate outcome key in the log",
                "client_id=\"%s\" client_seq=%lld path=\"%s\"", (const char *)client_id,
                (long long)client_seq, store->db_path);
        return ARB_ECORRUPT;
    }
    return 0;
}

/* Load the keys of the rows after keys_through_rowid; *too_many_out when
 * they reach the flush threshold (the tail is then left empty). */
static int load_rows(arb__sqlite_store *store, bool *too_many_out)
{
    static const char sql[] = "SELECT rowid, client_id, client_seq FROM outcomes"
                              " WHERE rowid > ?1 ORDER BY rowid";
    *too_many_out = false;
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (rc != SQLITE_OK)
        return load_failed(store, rc, sql);
    rc = sqlite3_bind_int64(statement, 1, store->tail.keys_through_rowid);
    if (rc == SQLITE_OK)
        rc = SQLITE_ROW;
    int result = 0;
    while (rc == SQLITE_ROW && (rc = sqlite3_step(statement)) == SQLITE_ROW) {
        if (store->tail.count >= ARB_STORE_KEY_TAIL_MAX / 2) {
            *too_many_out = true;
            rc = SQLITE_DONE;
            break;
        }
        result = load_row(store, statement);
        if (result != 0)
            break;
    }
    if (result == 0 && rc != SQLITE_DONE)
        result = load_failed(store, rc, sql);
    sqlite3_finalize(statement);
    if (result != 0 || *too_many_out)
        arb__key_tail_truncate(&store->tail, 0);
    return result;
}

/* No key of the tail may be in outcome_keys too: commits do not look there
 * (see sqlite_write.c), so a duplicate that got into the log is refused
 * here, with its key named, rather than at the next write of the tail. */
static int check_loaded_keys(arb__sqlite_store *store)
{
    sqlite3_stmt *statement = store->statements[ARB__SQL_SELECT_KEY];
    int result = 0;
    for (size_t i = 0; i < store->tail.count && result == 0; i++) {
        const arb__sqlite_key *key = &store->tail.keys[i];
        arb__sqlite_binder binder = {statement, SQLITE_OK};
        arb__bind_text(&binder, 1, key->client_id, -1);
        arb__bind_int64(&binder, 2, (int64_t)key->client_seq);
        int rc = binder.rc == SQLITE_OK ? sqlite3_step(statement) : binder.rc;
        if (rc == SQLITE_ROW) {
            arb_log(ARB_LOG_ERROR, "duplicate outcome key in the log",
                    "client_id=\"%s\" client_seq=%llu path=\"%s\"", key->client_id,
                    (unsigned long long)key->client_seq, store->db_path);
            result = ARB_ECORRUPT;
        } else if (rc != SQLITE_DONE) {
            result = load_failed(store, rc, "select outcome key");
        }
        sqlite3_reset(statement);
    }
    sqlite3_clear_bindings(statement);
    if (result != 0)
        arb__key_tail_truncate(&store->tail, 0);
    return result;
}

/* Too many keys for the tail (a smaller bound than the log was written
 * with): write them all into outcome_keys, sorted, in one transaction. */
static int flush_at_open(arb__sqlite_store *store)
{
    static const char sql[] =
        "BEGIN IMMEDIATE;"
        "INSERT INTO outcome_keys(client_id, client_seq, outcome_rowid)"
        " SELECT client_id, client_seq, rowid FROM outcomes"
        "  WHERE rowid > (SELECT value FROM meta WHERE key = 'keys_through_rowid')"
        "  ORDER BY client_id, client_seq;"
        "UPDATE meta SET value = (SELECT MAX(rowid) FROM outcomes) WHERE key = "
        "'keys_through_rowid';"
        "COMMIT;";
    int rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    int result = load_failed(store, rc, "flush outcome keys at open");
    if (!sqlite3_get_autocommit(store->db))
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    return result;
}

int arb__key_tail_load(arb__sqlite_store *store)
{
    ARB_ASSERT(store->mode == ARB_STORE_READ_WRITE);
    ARB_ASSERT(store->tail.keys != NULL && store->tail.count == 0);
    int rc = read_keys_through(store, &store->tail.keys_through_rowid);
    bool too_many = false;
    if (rc == 0)
        rc = load_rows(store, &too_many);
    if (rc == 0 && !too_many)
        rc = check_loaded_keys(store);
    if (rc != 0 || !too_many)
        return rc;
    arb_log(ARB_LOG_INFO, "writing outcome keys at open", "path=\"%s\" after_rowid=%lld",
            store->db_path, (long long)store->tail.keys_through_rowid);
    rc = flush_at_open(store);
    if (rc == 0)
        rc = read_keys_through(store, &store->tail.keys_through_rowid);
    return rc;
}
