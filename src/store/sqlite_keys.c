/*
 * sqlite_keys.c - the key tail: idempotency keys kept in memory until they
 * are written, sorted, into the outcome_keys index.
 *
 * Why: an index on (client_id, client_seq) that every commit writes into
 * dirties one leaf page per distinct client of the batch, scattered over the
 * file, and each dirty page is a WAL frame to write and fsync. So outcomes
 * are an append-only rowid table, and their keys go into outcome_keys in
 * sorted bulk. Until then they are here, in two generations:
 *
 *   commit:         rows appended, keys added to the filling generation
 *   seal (due):     the filling generation is sorted and becomes the sealed
 *                   one (the old sealed one, if unfinished, is written whole
 *                   first - the bounded worst case); meta records
 *                   keys_sealed_through_rowid and keys_slice_cursor = 0
 *   each commit:    the next slice (slice_keys) of the sealed generation's
 *                   sorted keys is inserted and the cursor advanced in meta,
 *                   in the same transaction; after the last one,
 *                   keys_through_rowid = keys_sealed_through_rowid
 *   memory:         changed only once the transaction has committed
 *                   (arb__key_tail_apply); a failed commit drops the keys it
 *                   added (truncate) and nothing else
 *   open:           both generations are rebuilt from the meta values and
 *                   the rows after keys_through_rowid; the keys not yet in
 *                   outcome_keys are checked not to be there (or, when they
 *                   are too many for the tail, all are written at open)
 *
 * The table: keys[] in rowid order (the order they were committed), and an
 * open-addressing hash index with linear probing over twice as many slots,
 * each 0 (empty) or a keys[] index + 1 (and the same over its clients).
 * Keys are only ever removed newest first (a rollback) or all at once, and removing the newest key
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

#define SLOT_COUNT (2u * ARB__KEY_GENERATION_MAX)
/* Keys sealed by default after this many commits: with 64 clients and
 * batches of 256 that is 256 keys a client, a few pages each. */
#define FLUSH_EVERY_COMMITS_DEFAULT 64

_Static_assert(ARB__KEY_GENERATION_MAX <= UINT32_MAX / 2, "slots hold a key index + 1");
_Static_assert((SLOT_COUNT & (SLOT_COUNT - 1)) == 0, "slot tables have a power-of-two size");
_Static_assert(ARB__KEY_SEAL_KEYS >= ARB_BATCH_PROPOSALS_MAX, "a generation holds a batch");

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
static size_t probe(const arb__sqlite_key_generation *generation, const char *client_id,
                    uint64_t client_seq)
{
    ARB_ASSERT(generation->count < SLOT_COUNT);
    size_t slot = (size_t)(key_hash(client_id, client_seq) & (SLOT_COUNT - 1));
    for (size_t probes = 0; probes < SLOT_COUNT; probes++) {
        uint32_t entry = generation->slots[slot];
        if (entry == 0 || key_is(&generation->keys[entry - 1], client_id, client_seq))
            return slot;
        slot = (slot + 1) & (SLOT_COUNT - 1);
    }
    ARB_ASSERT(!"key tail index has no empty slot");
    return 0;
}

/* The same over the clients of a generation (the seq is not part of it). */
static size_t probe_client(const arb__sqlite_key_generation *generation, const char *client_id)
{
    ARB_ASSERT(generation->client_count < SLOT_COUNT);
    size_t slot = (size_t)(key_hash(client_id, 0) & (SLOT_COUNT - 1));
    for (size_t probes = 0; probes < SLOT_COUNT; probes++) {
        uint32_t entry = generation->client_slots[slot];
        if (entry == 0)
            return slot;
        const arb__sqlite_key_client *client = &generation->clients[entry - 1];
        if (strcmp(generation->keys[client->first_key].client_id, client_id) == 0)
            return slot;
        slot = (slot + 1) & (SLOT_COUNT - 1);
    }
    ARB_ASSERT(!"key tail client index has no empty slot");
    return 0;
}

static int generation_init(arb__sqlite_key_generation *generation)
{
    ARB_ASSERT(generation->keys == NULL && generation->count == 0);
    generation->keys = calloc(ARB__KEY_GENERATION_MAX, sizeof *generation->keys);
    generation->slots = calloc(SLOT_COUNT, sizeof *generation->slots);
    generation->clients = calloc(ARB__KEY_GENERATION_MAX, sizeof *generation->clients);
    generation->client_slots = calloc(SLOT_COUNT, sizeof *generation->client_slots);
    generation->client_order = calloc(ARB__KEY_GENERATION_MAX, sizeof *generation->client_order);
    generation->sorted = calloc(ARB__KEY_GENERATION_MAX, sizeof *generation->sorted);
    if (generation->keys == NULL || generation->slots == NULL || generation->clients == NULL ||
        generation->client_slots == NULL || generation->client_order == NULL ||
        generation->sorted == NULL)
        return ARB_ENOMEM;
    return 0;
}

static void generation_free(arb__sqlite_key_generation *generation)
{
    free(generation->keys);
    free(generation->slots);
    free(generation->clients);
    free(generation->client_slots);
    free(generation->client_order);
    free(generation->sorted);
    memset(generation, 0, sizeof *generation);
}

/* Empty a generation whose keys are all in outcome_keys (or never were). */
static void generation_clear(arb__sqlite_key_generation *generation)
{
    ARB_ASSERT(generation->client_count <= generation->count);
    memset(generation->slots, 0, SLOT_COUNT * sizeof *generation->slots);
    memset(generation->client_slots, 0, SLOT_COUNT * sizeof *generation->client_slots);
    generation->count = 0;
    generation->client_count = 0;
}

int arb__key_tail_init(arb__sqlite_key_tail *tail)
{
    ARB_ASSERT(tail->filling == NULL && tail->sealed == NULL);
    int rc = generation_init(&tail->generations[0]);
    if (rc == 0)
        rc = generation_init(&tail->generations[1]);
    if (rc != 0) {
        arb__key_tail_free(tail);
        return rc;
    }
    tail->filling = &tail->generations[0];
    tail->sealed = &tail->generations[1];
    tail->slice_cursor = 0;
    tail->keys_through_rowid = 0;
    tail->sealed_through_rowid = 0;
    tail->commits_since_seal = 0;
    tail->flush_every_commits = FLUSH_EVERY_COMMITS_DEFAULT;
    tail->slice_keys = ARB_STORE_KEY_SLICE_MAX;
    return 0;
}

void arb__key_tail_free(arb__sqlite_key_tail *tail)
{
    generation_free(&tail->generations[0]);
    generation_free(&tail->generations[1]);
    tail->filling = NULL;
    tail->sealed = NULL;
}

static const arb__sqlite_key *generation_find(const arb__sqlite_key_generation *generation,
                                              const char *client_id, uint64_t client_seq)
{
    if (generation->count == 0)
        return NULL;
    uint32_t entry = generation->slots[probe(generation, client_id, client_seq)];
    if (entry == 0)
        return NULL;
    ARB_ASSERT(entry <= generation->count);
    return &generation->keys[entry - 1];
}

const arb__sqlite_key *arb__key_tail_find(const arb__sqlite_key_tail *tail, const char *client_id,
                                          uint64_t client_seq)
{
    ARB_ASSERT(tail->filling != NULL && client_id != NULL);
    const arb__sqlite_key *key = generation_find(tail->filling, client_id, client_seq);
    if (key == NULL)
        key = generation_find(tail->sealed, client_id, client_seq);
    return key;
}

/* Append a key to generation; false when it already holds the key. */
static bool generation_add(arb__sqlite_key_generation *generation, const char *client_id,
                           uint64_t client_seq, int64_t outcome_rowid)
{
    ARB_ASSERT(generation->count < ARB__KEY_GENERATION_MAX);
    ARB_ASSERT(generation->count == 0 ||
               outcome_rowid > generation->keys[generation->count - 1].outcome_rowid);
    size_t len = strlen(client_id);
    ARB_ASSERT(len <= ARB_CLIENT_ID_BYTES_MAX);
    size_t slot = probe(generation, client_id, client_seq);
    if (generation->slots[slot] != 0)
        return false;
    uint32_t index = (uint32_t)generation->count;
    arb__sqlite_key *key = &generation->keys[index];
    key->outcome_rowid = outcome_rowid;
    key->client_seq = client_seq;
    memcpy(key->client_id, client_id, len + 1);
    size_t client_slot = probe_client(generation, client_id);
    if (generation->client_slots[client_slot] == 0) {
        arb__sqlite_key_client *client = &generation->clients[generation->client_count++];
        client->first_key = index;
        client->key_count = 0;
        generation->client_slots[client_slot] = (uint32_t)generation->client_count;
    }
    key->client_index = generation->client_slots[client_slot] - 1;
    generation->clients[key->client_index].key_count++;
    generation->count++;
    generation->slots[slot] = (uint32_t)generation->count;
    return true;
}

bool arb__key_tail_add(arb__sqlite_key_tail *tail, const char *client_id, uint64_t client_seq,
                       int64_t outcome_rowid)
{
    ARB_ASSERT(outcome_rowid > tail->sealed_through_rowid);
    ARB_ASSERT(tail->sealed_through_rowid >= tail->keys_through_rowid);
    return generation_add(tail->filling, client_id, client_seq, outcome_rowid);
}

/* Drop the newest key. Its client's entry goes too when this was its only
 * key; that client was then the newest, so emptying its slot restores the
 * client index exactly, as for the keys. */
static void generation_drop_newest(arb__sqlite_key_generation *generation)
{
    ARB_ASSERT(generation->count > 0);
    const arb__sqlite_key *key = &generation->keys[generation->count - 1];
    size_t slot = probe(generation, key->client_id, key->client_seq);
    ARB_ASSERT(generation->slots[slot] == generation->count);
    generation->slots[slot] = 0;
    arb__sqlite_key_client *client = &generation->clients[key->client_index];
    ARB_ASSERT(client->key_count > 0);
    if (--client->key_count == 0) {
        ARB_ASSERT(key->client_index + 1 == generation->client_count);
        ARB_ASSERT(client->first_key + 1 == generation->count);
        size_t client_slot = probe_client(generation, key->client_id);
        ARB_ASSERT(generation->client_slots[client_slot] == generation->client_count);
        generation->client_slots[client_slot] = 0;
        generation->client_count--;
    }
    generation->count--;
}

void arb__key_tail_truncate(arb__sqlite_key_tail *tail, size_t count)
{
    ARB_ASSERT(count <= tail->filling->count);
    while (tail->filling->count > count)
        generation_drop_newest(tail->filling);
}

bool arb__key_tail_seal_due(const arb__sqlite_key_tail *tail)
{
    ARB_ASSERT(tail->flush_every_commits >= 1);
    ARB_ASSERT(tail->filling->count < ARB__KEY_GENERATION_MAX);
    if (tail->filling->count == 0)
        return false;
    return tail->filling->count >= ARB__KEY_SEAL_KEYS ||
           tail->commits_since_seal + 1 >= tail->flush_every_commits;
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

/* qsort has no context argument: the generation being sorted, for
 * client_order. One store is used by one thread at a time, and so is this. */
static _Thread_local const arb__sqlite_key_generation *ordering;

static int client_order(const void *a, const void *b)
{
    const arb__sqlite_key_generation *generation = ordering;
    uint32_t left = generation->clients[*(const uint32_t *)a].first_key;
    uint32_t right = generation->clients[*(const uint32_t *)b].first_key;
    return strcmp(generation->keys[left].client_id, generation->keys[right].client_id);
}

/* A bucket sort: the clients are sorted (a few dozen to a few thousand),
 * each gets a segment of sorted[] as long as its key count, and one pass
 * over the keys in rowid order fills the segments. A client's seqs rise
 * with the rowid in practice (the engine takes each client's seqs in
 * order), so a segment is then already sorted; one that is not is sorted
 * on its own. About n + c log c steps instead of n log n comparisons: the
 * sealing commit pays well under a millisecond rather than several. */
void arb__key_generation_sort(arb__sqlite_key_generation *generation)
{
    ARB_ASSERT(generation->client_count <= generation->count);
    for (size_t i = 0; i < generation->client_count; i++)
        generation->client_order[i] = (uint32_t)i;
    ordering = generation;
    qsort(generation->client_order, generation->client_count, sizeof *generation->client_order,
          client_order);
    ordering = NULL;
    uint32_t offset = 0;
    for (size_t i = 0; i < generation->client_count; i++) {
        arb__sqlite_key_client *client = &generation->clients[generation->client_order[i]];
        client->sorted_offset = offset;
        offset += client->key_count;
    }
    ARB_ASSERT(offset == generation->count);
    for (size_t i = 0; i < generation->count; i++) {
        const arb__sqlite_key *key = &generation->keys[i];
        generation->sorted[generation->clients[key->client_index].sorted_offset++] = key;
    }
    for (size_t i = 0; i < generation->client_count; i++) {
        const arb__sqlite_key_client *client = &generation->clients[i];
        const arb__sqlite_key **segment =
            &generation->sorted[client->sorted_offset - client->key_count];
        for (uint32_t j = 1; j < client->key_count; j++) {
            if (segment[j - 1]->client_seq > segment[j]->client_seq) {
                qsort(segment, client->key_count, sizeof *segment, key_order);
                break;
            }
        }
    }
}

/* After a committed transaction: a seal makes the filling generation the
 * sealed one (the old sealed one, written whole by that commit, becomes the
 * empty filling one); a sealed generation whose last slice was written is
 * emptied. */
void arb__key_tail_apply(arb__sqlite_key_tail *tail, const arb__sqlite_key_step *step)
{
    ARB_ASSERT(step->keys_through_rowid >= tail->keys_through_rowid);
    ARB_ASSERT(step->sealed_through_rowid >= step->keys_through_rowid);
    if (step->seal) {
        arb__sqlite_key_generation *old_sealed = tail->sealed;
        generation_clear(old_sealed);
        tail->sealed = tail->filling;
        tail->filling = old_sealed;
        tail->commits_since_seal = 0;
        ARB_ASSERT(tail->sealed->keys[tail->sealed->count - 1].outcome_rowid ==
                   step->sealed_through_rowid);
    } else {
        tail->commits_since_seal++;
    }
    if (step->wrote) {
        tail->slice_cursor = step->slice_cursor;
        tail->keys_through_rowid = step->keys_through_rowid;
        tail->sealed_through_rowid = step->sealed_through_rowid;
        if (step->keys_through_rowid == step->sealed_through_rowid) {
            ARB_ASSERT(step->slice_cursor == 0);
            generation_clear(tail->sealed);
        }
    }
    ARB_ASSERT(!step->seal || step->wrote);
    ARB_ASSERT(tail->filling->count < ARB__KEY_SEAL_KEYS);
    ARB_ASSERT(tail->slice_cursor < tail->sealed->count || tail->sealed->count == 0);
}

/* ---- open: reading the tail back ---- */

static int load_failed(arb__sqlite_store *store, int rc, const char *what)
{
    return arb__sqlite_fail(store->db, rc, what, store->db_path);
}

/* One meta value into *value_out; a missing row leaves it as it is when
 * optional (the sealed-generation rows predate no store that needs them). */
static int read_meta(arb__sqlite_store *store, const char *key, bool optional, int64_t *value_out)
{
    static const char sql[] = "SELECT value FROM meta WHERE key = ?1";
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (rc != SQLITE_OK)
        return load_failed(store, rc, sql);
    rc = sqlite3_bind_text(statement, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(statement);
    int result = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(statement, 0) == SQLITE_INTEGER &&
        sqlite3_column_int64(statement, 0) >= 0)
        *value_out = sqlite3_column_int64(statement, 0);
    else if (rc == SQLITE_DONE && optional)
        result = 0;
    else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        result = ARB_ECORRUPT; /* the migration writes keys_through_rowid; it never goes away */
    else
        result = load_failed(store, rc, sql);
    sqlite3_finalize(statement);
    if (result == ARB_ECORRUPT)
        arb_log(ARB_LOG_ERROR, "meta value missing or bad", "key=\"%s\" path=\"%s\"", key,
                store->db_path);
    return result;
}

/* keys_through_rowid, then the sealed generation's bound and cursor, which
 * default to "none". */
static int read_key_meta(arb__sqlite_store *store)
{
    arb__sqlite_key_tail *tail = &store->tail;
    int64_t cursor = 0;
    int rc = read_meta(store, "keys_through_rowid", false, &tail->keys_through_rowid);
    tail->sealed_through_rowid = tail->keys_through_rowid;
    if (rc == 0)
        rc = read_meta(store, "keys_sealed_through_rowid", true, &tail->sealed_through_rowid);
    if (rc == 0)
        rc = read_meta(store, "keys_slice_cursor", true, &cursor);
    if (rc != 0)
        return rc;
    tail->slice_cursor = (size_t)cursor;
    if (tail->sealed_through_rowid < tail->keys_through_rowid ||
        cursor >= ARB__KEY_GENERATION_MAX ||
        (tail->sealed_through_rowid == tail->keys_through_rowid && cursor != 0)) {
        arb_log(ARB_LOG_ERROR, "key meta values disagree",
                "keys_through_rowid=%lld sealed_through_rowid=%lld cursor=%lld path=\"%s\"",
                (long long)tail->keys_through_rowid, (long long)tail->sealed_through_rowid,
                (long long)cursor, store->db_path);
        return ARB_ECORRUPT;
    }
    return 0;
}

/* Add the key of the row statement is on to generation; ARB_ECORRUPT for a
 * bad row or a key found in either generation already. */
static int load_row(arb__sqlite_store *store, arb__sqlite_key_generation *generation,
                    sqlite3_stmt *statement)
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
    const char *id = (const char *)client_id;
    if (arb__key_tail_find(&store->tail, id, (uint64_t)client_seq) != NULL ||
        !generation_add(generation, id, (uint64_t)client_seq, rowid)) {
        arb_log(ARB_LOG_ERROR, "duplicate outcome key in the log",
                "client_id=\"%s\" client_seq=%lld path=\"%s\"", id, (long long)client_seq,
                store->db_path);
        return ARB_ECORRUPT;
    }
    return 0;
}

/* Load the keys of the rows in (after_rowid, through_rowid] into
 * generation; *too_many_out when they are more than count_max (the
 * generation is then left as it was). */
static int load_rows(arb__sqlite_store *store, arb__sqlite_key_generation *generation,
                     int64_t after_rowid, int64_t through_rowid, size_t count_max,
                     bool *too_many_out)
{
    static const char sql[] = "SELECT rowid, client_id, client_seq FROM outcomes"
                              " WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid";
    ARB_ASSERT(generation->count == 0 && count_max < ARB__KEY_GENERATION_MAX);
    *too_many_out = false;
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (rc != SQLITE_OK)
        return load_failed(store, rc, sql);
    rc = sqlite3_bind_int64(statement, 1, after_rowid);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(statement, 2, through_rowid);
    if (rc == SQLITE_OK)
        rc = SQLITE_ROW;
    int result = 0;
    while (rc == SQLITE_ROW && (rc = sqlite3_step(statement)) == SQLITE_ROW) {
        if (generation->count >= count_max) {
            *too_many_out = true;
            rc = SQLITE_DONE;
            break;
        }
        result = load_row(store, generation, statement);
        if (result != 0)
            break;
    }
    if (result == 0 && rc != SQLITE_DONE)
        result = load_failed(store, rc, sql);
    sqlite3_finalize(statement);
    return result;
}

/* No key of keys[0..count) may be in outcome_keys: commits do not look
 * there (see sqlite_write.c), so a duplicate that got into the log is
 * refused here, with its key named, rather than at the next write. */
static int check_loaded_keys(arb__sqlite_store *store, const arb__sqlite_key *const *keys,
                             size_t count)
{
    sqlite3_stmt *statement = store->statements[ARB__SQL_SELECT_KEY];
    int result = 0;
    for (size_t i = 0; i < count && result == 0; i++) {
        const arb__sqlite_key *key = keys[i];
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
    return result;
}

/* Too many keys for the tail (a smaller bound than the log was written
 * with): write them all into outcome_keys, sorted, in one transaction.
 * INSERT OR IGNORE, because the sealed generation's first slice_cursor keys
 * (in sorted order) are in outcome_keys already; the check after it makes
 * sure that every row after keys_through_rowid then has its own key there,
 * so that a genuine duplicate - a key whose existing entry names another
 * row - is refused rather than ignored. */
static int flush_at_open(arb__sqlite_store *store)
{
    static const char insert[] =
        "BEGIN IMMEDIATE;"
        "INSERT OR IGNORE INTO outcome_keys(client_id, client_seq, outcome_rowid)"
        " SELECT client_id, client_seq, rowid FROM outcomes"
        "  WHERE rowid > (SELECT value FROM meta WHERE key = 'keys_through_rowid')"
        "  ORDER BY client_id, client_seq;"
        "DELETE FROM meta WHERE key IN ('keys_sealed_through_rowid', 'keys_slice_cursor');"
        "UPDATE meta SET value = (SELECT MAX(rowid) FROM outcomes) WHERE key = "
        "'keys_through_rowid';";
    static const char check[] =
        "SELECT COUNT(*) FROM outcomes AS o WHERE o.rowid > ?1 AND NOT EXISTS (SELECT 1 FROM"
        " outcome_keys AS k WHERE k.client_id = o.client_id AND k.client_seq = o.client_seq"
        " AND k.outcome_rowid = o.rowid)";
    int rc = sqlite3_exec(store->db, insert, NULL, NULL, NULL);
    int result = rc == SQLITE_OK ? 0 : load_failed(store, rc, "flush outcome keys at open");
    sqlite3_stmt *statement = NULL;
    if (result == 0 && (rc = sqlite3_prepare_v2(store->db, check, -1, &statement, NULL)) == 0 &&
        (rc = sqlite3_bind_int64(statement, 1, store->tail.keys_through_rowid)) == 0)
        rc = sqlite3_step(statement);
    if (result == 0 && rc != SQLITE_ROW)
        result = load_failed(store, rc, check);
    else if (result == 0 && sqlite3_column_int64(statement, 0) != 0) {
        arb_log(ARB_LOG_ERROR, "duplicate outcome key in the log", "rows=%lld path=\"%s\"",
                (long long)sqlite3_column_int64(statement, 0), store->db_path);
        result = ARB_ECORRUPT;
    }
    sqlite3_finalize(statement);
    if (result == 0 && (rc = sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        result = load_failed(store, rc, "commit outcome keys at open");
    if (result != 0 && !sqlite3_get_autocommit(store->db))
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    return result;
}

/* The sealed generation: the rows up to sealed_through_rowid, sorted; the
 * keys from the cursor on must not be in outcome_keys yet (those before it
 * are: a slice and its cursor are written in one transaction). */
static int load_sealed(arb__sqlite_store *store, bool *too_many_out)
{
    arb__sqlite_key_tail *tail = &store->tail;
    arb__sqlite_key_generation *sealed = tail->sealed;
    int rc = load_rows(store, sealed, tail->keys_through_rowid, tail->sealed_through_rowid,
                       ARB__KEY_GENERATION_MAX - 1, too_many_out);
    if (rc != 0 || *too_many_out || tail->sealed_through_rowid == tail->keys_through_rowid)
        return rc;
    if (sealed->count == 0 || tail->slice_cursor >= sealed->count ||
        sealed->keys[sealed->count - 1].outcome_rowid != tail->sealed_through_rowid) {
        arb_log(ARB_LOG_ERROR, "sealed outcome keys do not match the log",
                "keys=%zu cursor=%zu path=\"%s\"", sealed->count, tail->slice_cursor,
                store->db_path);
        return ARB_ECORRUPT;
    }
    arb__key_generation_sort(sealed);
    return check_loaded_keys(store, sealed->sorted + tail->slice_cursor,
                             sealed->count - tail->slice_cursor);
}

static int load_filling(arb__sqlite_store *store, bool *too_many_out)
{
    arb__sqlite_key_generation *filling = store->tail.filling;
    int rc = load_rows(store, filling, store->tail.sealed_through_rowid, INT64_MAX,
                       ARB__KEY_SEAL_KEYS - 1, too_many_out);
    if (rc != 0 || *too_many_out)
        return rc;
    arb__key_generation_sort(filling); /* only for the list to check */
    return check_loaded_keys(store, filling->sorted, filling->count);
}

int arb__key_tail_load(arb__sqlite_store *store)
{
    arb__sqlite_key_tail *tail = &store->tail;
    ARB_ASSERT(store->mode == ARB_STORE_READ_WRITE);
    ARB_ASSERT(tail->filling->count == 0 && tail->sealed->count == 0);
    bool too_many = false;
    int rc = read_key_meta(store);
    if (rc == 0)
        rc = load_sealed(store, &too_many);
    if (rc == 0 && !too_many)
        rc = load_filling(store, &too_many);
    if (rc != 0 || too_many) {
        generation_clear(tail->filling);
        generation_clear(tail->sealed);
    }
    if (rc != 0 || !too_many)
        return rc;
    arb_log(ARB_LOG_INFO, "writing outcome keys at open", "path=\"%s\" after_rowid=%lld",
            store->db_path, (long long)tail->keys_through_rowid);
    rc = flush_at_open(store);
    if (rc == 0)
        rc = read_key_meta(store);
    return rc;
}
