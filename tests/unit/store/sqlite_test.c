/*
 * sqlite_test.c - the SQLite store against its contract in store.h.
 *
 * Each test gets a fresh data directory (test_mkdtemp: under $ARB_TEST_TMP
 * or /tmp) and removes it afterwards. Rows are generated from their keys (make_event,
 * expect_event), so what is read back is checked field by field against what
 * must have been written. Raw sqlite3 calls play the part of an operator with
 * the sqlite3 shell: bumping the schema version, damaging a row.
 */
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/error.h"
#include "core/log.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "support.h"

#define BATCH_ROWS_MAX 256
#define DATA_BYTES_MAX 96
#define PAYLOAD_BYTES_MAX 64

/* One batch being built: rows point into the arrays beside them. */
typedef struct test_batch {
    arb_store_stream streams[4];
    arb_event events[BATCH_ROWS_MAX];
    arb_store_event rows[BATCH_ROWS_MAX];
    char data[BATCH_ROWS_MAX][DATA_BYTES_MAX];
    arb_store_outcome outcomes[BATCH_ROWS_MAX];
    char payloads[BATCH_ROWS_MAX][PAYLOAD_BYTES_MAX];
    arb_store_batch batch;
} test_batch;

/* What an events scan saw. */
typedef struct seen_events {
    arb_event events[64];
    char data[64][DATA_BYTES_MAX];
    size_t count;
    uint64_t stop_at_seq; /* return 42 at this seq; 0: never */
} seen_events;

/* ---- fixtures and helpers ---- */

static int setup_dir(void **state)
{
    *state = test_mkdtemp("store");
    return 0;
}

static int teardown_dir(void **state)
{
    test_rmdir(*state);
    return 0;
}

static const char *data_dir(void **state)
{
    return *state;
}

static arb_store *open_store(const char *dir, arb_store_mode mode)
{
    arb_store *store = NULL;
    assert_int_equal(arb_store_sqlite_open(dir, mode, &store), 0);
    assert_non_null(store);
    return store;
}

static test_batch *batch_new(void)
{
    test_batch *batch = calloc(1, sizeof *batch);
    assert_non_null(batch);
    batch->batch.new_streams = batch->streams;
    batch->batch.events = batch->rows;
    batch->batch.outcomes = batch->outcomes;
    return batch;
}

static void batch_add_stream(test_batch *batch, const char *name, const char *kind)
{
    size_t i = batch->batch.new_stream_count++;
    assert_true(i < 4);
    batch->streams[i].name = name;
    batch->streams[i].kind = kind;
}

/* The event every test expects at (stream, seq): all fields from the key. */
static void expect_event(arb_event *event, char *data, const char *stream, uint64_t seq)
{
    memset(event, 0, sizeof *event);
    snprintf(event->stream, sizeof event->stream, "%s", stream);
    event->seq = seq;
    snprintf(event->type, sizeof event->type, "%s", seq % 2 ? "deposited" : "withdrawn");
    snprintf(event->client_id, sizeof event->client_id, "client-%llu",
             (unsigned long long)(seq % 7));
    event->client_seq = seq * 3;
    event->applied_at_ms = 1700000000000LL + (int64_t)seq;
    for (int i = 0; i < ARB_HASH_BYTES; i++)
        event->hash[i] = (uint8_t)(seq * 31 + (uint64_t)i + (uint64_t)stream[0]);
    snprintf(data, DATA_BYTES_MAX, "{\"amount\":%llu,\"memo\":\"caf\xc3\xa9 \\\"%s\\\"\"}",
             (unsigned long long)seq * 100, stream);
}

static void batch_add_event(test_batch *batch, const char *stream, uint64_t seq)
{
    size_t i = batch->batch.event_count++;
    assert_true(i < BATCH_ROWS_MAX);
    expect_event(&batch->events[i], batch->data[i], stream, seq);
    batch->rows[i].event = &batch->events[i];
    batch->rows[i].data_json = batch->data[i];
    batch->rows[i].data_json_len = strlen(batch->data[i]);
}

static arb_store_outcome *batch_add_outcome(test_batch *batch, const char *client_id,
                                            uint64_t client_seq, const char *stream,
                                            const char *payload)
{
    size_t i = batch->batch.outcome_count++;
    assert_true(i < BATCH_ROWS_MAX);
    arb_store_outcome *row = &batch->outcomes[i];
    memset(row, 0, sizeof *row); /* a reset batch reuses rows */
    snprintf(row->client_id, sizeof row->client_id, "%s", client_id);
    row->client_seq = client_seq;
    for (int j = 0; j < ARB_HASH_BYTES; j++)
        row->fingerprint[j] = (uint8_t)(client_seq + (uint64_t)j * 7);
    snprintf(row->stream, sizeof row->stream, "%s", stream);
    row->kind = ARB_OUTCOME_COMMITTED;
    row->seq_first = client_seq;
    row->seq_last = client_seq;
    row->version = client_seq;
    row->decided_at_ms = 1700000000000LL + (int64_t)client_seq;
    if (payload != NULL) {
        snprintf(batch->payloads[i], PAYLOAD_BYTES_MAX, "%s", payload);
        row->payload_json = batch->payloads[i];
        row->payload_json_len = strlen(payload);
    }
    return row;
}

static void batch_reset(test_batch *batch)
{
    batch->batch.new_stream_count = 0;
    batch->batch.event_count = 0;
    batch->batch.outcome_count = 0;
}

static int collect_event(void *user, const arb_event *event, const char *data_json,
                         size_t data_json_len)
{
    seen_events *seen = user;
    assert_null(event->data);
    assert_true(seen->count < 64);
    assert_int_equal(strlen(data_json), data_json_len);
    seen->events[seen->count] = *event;
    snprintf(seen->data[seen->count], DATA_BYTES_MAX, "%s", data_json);
    seen->count++;
    return event->seq == seen->stop_at_seq ? 42 : 0;
}

static void assert_event_is_expected(const arb_event *got, const char *got_data, const char *stream,
                                     uint64_t seq)
{
    arb_event want;
    char want_data[DATA_BYTES_MAX];
    expect_event(&want, want_data, stream, seq);
    assert_string_equal(got->stream, want.stream);
    assert_int_equal(got->seq, want.seq);
    assert_string_equal(got->type, want.type);
    assert_string_equal(got->client_id, want.client_id);
    assert_int_equal(got->client_seq, want.client_seq);
    assert_int_equal(got->applied_at_ms, want.applied_at_ms);
    assert_memory_equal(got->hash, want.hash, ARB_HASH_BYTES);
    assert_string_equal(got_data, want_data);
}

static size_t count_events(arb_store *store, const char *stream)
{
    seen_events *seen = calloc(1, sizeof *seen);
    assert_non_null(seen);
    assert_int_equal(store->ops->events(store, stream, 0, 0, collect_event, seen), 0);
    size_t count = seen->count;
    free(seen);
    return count;
}

static bool has_outcome(arb_store *store, const char *client_id, uint64_t client_seq)
{
    arb_store_outcome row;
    int rc = store->ops->outcome(store, client_id, client_seq, &row, NULL);
    assert_true(rc == 0 || rc == ARB_ENOTFOUND);
    return rc == 0;
}

/* Run SQL on the database behind the store's back, as an operator would. */
static void raw_exec(const char *dir, const char *sql)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Rows inserted with raw SQL get their checksums as the store computes them. */
static void raw_fill_checksums(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(arb__sqlite_fill_checksums(db), SQLITE_OK);
    sqlite3_close(db);
}

static long raw_count(const char *dir, const char *sql)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *statement = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &statement, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(statement), SQLITE_ROW);
    long count = (long)sqlite3_column_int64(statement, 0);
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return count;
}

static off_t file_size(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat info;
    return stat(path, &info) == 0 ? info.st_size : -1;
}

/* A batch of events seq_first..seq_last of stream, one committed outcome per
 * event (client "writer", client_seq = seq). */
static void commit_range(arb_store *store, const char *stream, uint64_t seq_first,
                         uint64_t seq_last)
{
    test_batch *batch = batch_new();
    for (uint64_t seq = seq_first; seq <= seq_last; seq++) {
        batch_add_event(batch, stream, seq);
        batch_add_outcome(batch, "writer", seq, stream, NULL);
    }
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    free(batch);
}

/* The stored outcome of want's key equals want, field by field. */
static void assert_outcome_stored(arb_store *store, const arb_store_outcome *want)
{
    arb_store_outcome got;
    static char untouched[] = "untouched";
    char *payload = untouched;
    assert_int_equal(store->ops->outcome(store, want->client_id, want->client_seq, &got, &payload),
                     0);
    assert_string_equal(got.client_id, want->client_id);
    assert_int_equal(got.client_seq, want->client_seq);
    assert_memory_equal(got.fingerprint, want->fingerprint, ARB_HASH_BYTES);
    assert_string_equal(got.stream, want->stream);
    assert_int_equal(got.kind, want->kind);
    assert_int_equal(got.version, want->version);
    assert_int_equal(got.decided_at_ms, want->decided_at_ms);
    if (want->kind == ARB_OUTCOME_COMMITTED) {
        assert_int_equal(got.seq_first, want->seq_first);
        assert_int_equal(got.seq_last, want->seq_last);
        assert_int_equal(got.code, 0);
    } else {
        assert_int_equal(got.seq_first, 0);
        assert_int_equal(got.seq_last, 0);
        assert_int_equal(got.code, want->code);
        assert_string_equal(got.message, want->message);
    }
    if (want->payload_json == NULL) {
        assert_null(payload);
        assert_null(got.payload_json);
    } else {
        assert_non_null(payload);
        assert_string_equal(payload, want->payload_json);
        assert_int_equal(got.payload_json_len, want->payload_json_len);
        assert_ptr_equal(got.payload_json, payload);
    }
    free(payload);
}

/* ---- tests ---- */

static void test_commit_and_read_back(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    test_batch *batch = batch_new();
    batch_add_stream(batch, "ledger:main", "ledger");
    for (uint64_t seq = 1; seq <= 3; seq++)
        batch_add_event(batch, "ledger:main", seq);
    arb_store_outcome *committed =
        batch_add_outcome(batch, "alice", 7, "ledger:main", "{\"balance\":300}");
    committed->seq_first = 1;
    committed->seq_last = 3;
    arb_store_outcome *plain = batch_add_outcome(batch, "alice", 8, "ledger:main", NULL);
    arb_store_outcome *rejected = batch_add_outcome(batch, "bob", 1, "ledger:main", NULL);
    rejected->kind = ARB_OUTCOME_REJECTED;
    rejected->code = ARB_EINSUFFICIENT_FUNDS;
    snprintf(rejected->message, sizeof rejected->message, "balance 300 < 500");
    arb_store_outcome *detailed =
        batch_add_outcome(batch, "bob", 2, "ledger:main", "{\"available\":300}");
    detailed->kind = ARB_OUTCOME_REJECTED;
    detailed->code = ARB_EVERSION_CONFLICT;
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);

    seen_events seen = {0};
    assert_int_equal(store->ops->events(store, "ledger:main", 0, 0, collect_event, &seen), 0);
    assert_int_equal(seen.count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_event_is_expected(&seen.events[i], seen.data[i], "ledger:main", i + 1);

    arb_store_outcome *expected[] = {committed, plain, rejected, detailed};
    for (size_t i = 0; i < 4; i++)
        assert_outcome_stored(store, expected[i]);
    arb_store_outcome missing;
    char *payload = NULL;
    assert_int_equal(store->ops->outcome(store, "alice", 9, &missing, &payload), ARB_ENOTFOUND);
    assert_null(payload);
    store->ops->close(store);
    /* The audit trail names the rejection for the sqlite3 shell. */
    assert_int_equal(raw_count(data_dir(state), "SELECT COUNT(*) FROM outcomes WHERE"
                                                " code_name = 'INSUFFICIENT_FUNDS'"),
                     1);
    free(batch);
}

typedef struct seen_streams {
    char names[4][ARB_STREAM_NAME_BYTES_MAX + 1];
    char kinds[4][ARB_KIND_BYTES_MAX + 1];
    uint64_t heads[4];
    size_t count;
    arb_store *store;     /* when set, each row also scans its events */
    size_t nested_events; /* what those nested scans saw */
} seen_streams;

static int collect_stream(void *user, const char *name, const char *kind, uint64_t head_seq)
{
    seen_streams *seen = user;
    assert_true(seen->count < 4);
    snprintf(seen->names[seen->count], sizeof seen->names[0], "%s", name);
    snprintf(seen->kinds[seen->count], sizeof seen->kinds[0], "%s", kind);
    seen->heads[seen->count] = head_seq;
    seen->count++;
    if (seen->store != NULL)
        seen->nested_events += count_events(seen->store, name);
    return 0;
}

static void test_streams_with_head_seq(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    test_batch *batch = batch_new();
    batch_add_stream(batch, "shop:main", "shop");
    batch_add_stream(batch, "ledger:main", "ledger");
    batch_add_stream(batch, "table:7", "table");
    for (uint64_t seq = 1; seq <= 5; seq++)
        batch_add_event(batch, "ledger:main", seq);
    batch_add_event(batch, "table:7", 1);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);

    seen_streams seen = {0};
    seen.store = store; /* events scans nested inside the streams scan */
    assert_int_equal(store->ops->streams(store, collect_stream, &seen), 0);
    assert_int_equal(seen.count, 3);
    assert_string_equal(seen.names[0], "ledger:main");
    assert_string_equal(seen.kinds[0], "ledger");
    assert_int_equal(seen.heads[0], 5);
    assert_string_equal(seen.names[1], "shop:main");
    assert_int_equal(seen.heads[1], 0);
    assert_string_equal(seen.names[2], "table:7");
    assert_string_equal(seen.kinds[2], "table");
    assert_int_equal(seen.heads[2], 1);
    assert_int_equal(seen.nested_events, 6);
    store->ops->close(store);
    free(batch);
}

/* An events callback that scans another stream's events: the same statement
 * is mid-scan, so the nested call must use one of its own. */
typedef struct nested_scan {
    arb_store *store;
    size_t outer;
    size_t inner;
} nested_scan;

static int nested_event(void *user, const arb_event *event, const char *data_json,
                        size_t data_json_len)
{
    (void)event;
    (void)data_json;
    (void)data_json_len;
    nested_scan *scan = user;
    scan->outer++;
    scan->inner += count_events(scan->store, "shop:main");
    return 0;
}

static void test_events_since_limit_and_stop(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    test_batch *batch = batch_new();
    batch_add_stream(batch, "ledger:main", "ledger");
    batch_add_stream(batch, "shop:main", "shop");
    for (uint64_t seq = 1; seq <= 10; seq++)
        batch_add_event(batch, "ledger:main", seq);
    for (uint64_t seq = 1; seq <= 2; seq++)
        batch_add_event(batch, "shop:main", seq);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);

    seen_events seen = {0};
    assert_int_equal(store->ops->events(store, "ledger:main", 3, 4, collect_event, &seen), 0);
    assert_int_equal(seen.count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_event_is_expected(&seen.events[i], seen.data[i], "ledger:main", 4 + i);

    memset(&seen, 0, sizeof seen);
    seen.stop_at_seq = 5;
    assert_int_equal(store->ops->events(store, "ledger:main", 0, 0, collect_event, &seen), 42);
    assert_int_equal(seen.count, 5);

    memset(&seen, 0, sizeof seen);
    assert_int_equal(store->ops->events(store, "ledger:main", 10, 0, collect_event, &seen), 0);
    assert_int_equal(store->ops->events(store, "nothing:here", 0, 0, collect_event, &seen), 0);
    assert_int_equal(seen.count, 0);

    nested_scan scan = {.store = store};
    assert_int_equal(store->ops->events(store, "ledger:main", 0, 0, nested_event, &scan), 0);
    assert_int_equal(scan.outer, 10);
    assert_int_equal(scan.inner, 20);
    store->ops->close(store);
    free(batch);
}

static void test_duplicate_event_rolls_back_batch(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    test_batch *batch = batch_new();
    batch_add_stream(batch, "ledger:main", "ledger");
    batch_add_event(batch, "ledger:main", 1);
    batch_add_event(batch, "ledger:main", 2);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);

    batch_reset(batch);
    batch_add_stream(batch, "shop:main", "shop");
    batch_add_event(batch, "shop:main", 1);
    batch_add_event(batch, "ledger:main", 3);
    batch_add_event(batch, "ledger:main", 2); /* already stored */
    batch_add_outcome(batch, "alice", 1, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), ARB_EIO);

    assert_int_equal(count_events(store, "ledger:main"), 2);
    assert_int_equal(count_events(store, "shop:main"), 0);
    assert_false(has_outcome(store, "alice", 1));
    seen_streams seen = {0};
    assert_int_equal(store->ops->streams(store, collect_stream, &seen), 0);
    assert_int_equal(seen.count, 1);

    /* The store is still usable after the rollback. */
    batch_reset(batch);
    batch_add_event(batch, "ledger:main", 3);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    assert_int_equal(count_events(store, "ledger:main"), 3);
    store->ops->close(store);
    free(batch);
}

static void test_duplicate_outcome_is_an_error(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    test_batch *batch = batch_new();
    batch_add_outcome(batch, "alice", 1, "ledger:main", "{\"first\":true}");
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    batch_reset(batch);
    batch_add_outcome(batch, "alice", 1, "ledger:main", "{\"second\":true}");
    assert_int_equal(store->ops->commit(store, &batch->batch), ARB_EIO);

    arb_store_outcome row;
    char *payload = NULL;
    assert_int_equal(store->ops->outcome(store, "alice", 1, &row, &payload), 0);
    assert_string_equal(payload, "{\"first\":true}");
    free(payload);
    store->ops->close(store);
    free(batch);
}

static void test_reopen_keeps_data(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    test_batch *batch = batch_new();
    batch_add_stream(batch, "ledger:main", "ledger");
    for (uint64_t seq = 1; seq <= 4; seq++)
        batch_add_event(batch, "ledger:main", seq);
    batch_add_outcome(batch, "alice", 1, "ledger:main", "{\"ok\":1}");
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    store->ops->close(store);

    store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    seen_events seen = {0};
    assert_int_equal(store->ops->events(store, "ledger:main", 0, 0, collect_event, &seen), 0);
    assert_int_equal(seen.count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_event_is_expected(&seen.events[i], seen.data[i], "ledger:main", i + 1);
    assert_true(has_outcome(store, "alice", 1));
    store->ops->close(store);
    free(batch);
}

typedef struct seen_clients {
    char ids[4][ARB_CLIENT_ID_BYTES_MAX + 1];
    uint64_t maxima[4];
    size_t count;
} seen_clients;

static int collect_client(void *user, const char *client_id, uint64_t client_seq_max)
{
    seen_clients *seen = user;
    assert_true(seen->count < 4);
    snprintf(seen->ids[seen->count], sizeof seen->ids[0], "%s", client_id);
    seen->maxima[seen->count++] = client_seq_max;
    return 0;
}

static void test_clients_highest_seq(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    test_batch *batch = batch_new();
    batch_add_outcome(batch, "bob", 3, "ledger:main", NULL);
    batch_add_outcome(batch, "alice", 1, "ledger:main", NULL);
    batch_add_outcome(batch, "alice", 12, "ledger:main", NULL);
    batch_add_outcome(batch, "alice", 9, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    seen_clients seen = {0};
    assert_int_equal(store->ops->clients(store, collect_client, &seen), 0);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.ids[0], "alice");
    assert_int_equal(seen.maxima[0], 12);
    assert_string_equal(seen.ids[1], "bob");
    assert_int_equal(seen.maxima[1], 3);
    store->ops->close(store);
    free(batch);
}

static void assert_snapshot(arb_store *store, const char *stream, uint64_t seq, const char *text)
{
    uint64_t got_seq = 0;
    char *got = NULL;
    size_t got_len = 0;
    assert_int_equal(store->ops->snapshot_get(store, stream, &got_seq, &got, &got_len), 0);
    assert_int_equal(got_seq, seq);
    assert_int_equal(got_len, strlen(text));
    assert_string_equal(got, text);
    free(got);
}

static void test_snapshots_newest_and_retention(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    uint64_t seq = 0;
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(store->ops->snapshot_get(store, "ledger:main", &seq, &text, &len),
                     ARB_ENOTFOUND);
    assert_null(text);
    const char *states[] = {"{\"v\":10}", "{\"v\":20}", "{\"v\":30}", "{\"v\":40}"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(store->ops->snapshot_put(store, "ledger:main", (uint64_t)(i + 1) * 10,
                                                  states[i], strlen(states[i])),
                         0);
        assert_snapshot(store, "ledger:main", (uint64_t)(i + 1) * 10, states[i]);
    }
    assert_int_equal(store->ops->snapshot_put(store, "shop:main", 5, "{}", 2), 0);
    /* Rewriting the newest seq replaces it (the state at a seq is fixed). */
    assert_int_equal(store->ops->snapshot_put(store, "ledger:main", 40, "{\"v\":41}", 8), 0);
    assert_snapshot(store, "ledger:main", 40, "{\"v\":41}");
    assert_snapshot(store, "shop:main", 5, "{}");
    store->ops->close(store);
    assert_int_equal(
        raw_count(data_dir(state), "SELECT COUNT(*) FROM snapshots WHERE stream = 'ledger:main'"),
        ARB_SNAPSHOTS_KEPT);
    assert_int_equal(raw_count(data_dir(state), "SELECT MIN(seq) FROM snapshots"
                                                " WHERE stream = 'ledger:main'"),
                     (long)(40 - (ARB_SNAPSHOTS_KEPT - 1) * 10));
}

static void test_second_writer_is_busy(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    arb_store *second = (arb_store *)1;
    assert_int_equal(arb_store_sqlite_open(data_dir(state), ARB_STORE_READ_WRITE, &second),
                     ARB_EBUSY);
    assert_null(second);
    store->ops->close(store);
    /* The lock goes with the store. */
    store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    store->ops->close(store);
}

static void test_reader_beside_writer(void **state)
{
    arb_store *writer = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    commit_range(writer, "ledger:main", 1, 3);
    arb_store *reader = open_store(data_dir(state), ARB_STORE_READ_ONLY);
    assert_int_equal(count_events(reader, "ledger:main"), 3);
    commit_range(writer, "ledger:main", 4, 6);
    assert_int_equal(count_events(reader, "ledger:main"), 6);
    assert_true(has_outcome(reader, "writer", 6));

    test_batch *batch = batch_new();
    batch_add_event(batch, "ledger:main", 7);
    assert_int_equal(reader->ops->commit(reader, &batch->batch), ARB_EUSAGE);
    assert_int_equal(reader->ops->snapshot_put(reader, "ledger:main", 7, "{}", 2), ARB_EUSAGE);
    reader->ops->close(reader);
    writer->ops->close(writer);
    free(batch);
}

/* A pinned reader (verify's) sees the log as it was when it pinned, all of
 * it, while the writer goes on; a writer cannot pin. */
static void test_pinned_reader_sees_one_moment(void **state)
{
    arb_store *writer = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    commit_range(writer, "ledger:main", 1, 3);
    assert_int_equal(writer->ops->pin(writer), ARB_EUSAGE);
    arb_store *reader = open_store(data_dir(state), ARB_STORE_READ_ONLY);
    assert_int_equal(reader->ops->pin(reader), 0);
    commit_range(writer, "ledger:main", 4, 6);
    assert_int_equal(count_events(reader, "ledger:main"), 3);
    assert_false(has_outcome(reader, "writer", 4));
    assert_true(has_outcome(reader, "writer", 3));
    char why[256] = "";
    assert_int_equal(reader->ops->check(reader, why, sizeof why), 0);
    reader->ops->close(reader);
    reader = open_store(data_dir(state), ARB_STORE_READ_ONLY);
    assert_int_equal(count_events(reader, "ledger:main"), 6);
    reader->ops->close(reader);
    writer->ops->close(writer);
}

static void test_read_only_needs_database(void **state)
{
    char missing[PATH_MAX / 2];
    snprintf(missing, sizeof missing, "%s/never-created", data_dir(state));
    arb_store *store = NULL;
    assert_int_equal(arb_store_sqlite_open(missing, ARB_STORE_READ_ONLY, &store), ARB_ENOTFOUND);
    assert_null(store);
    struct stat info;
    assert_int_not_equal(stat(missing, &info), 0); /* a reader creates nothing */
}

static void test_creates_nested_directory(void **state)
{
    char nested[PATH_MAX / 2];
    snprintf(nested, sizeof nested, "%s/a/b/c", data_dir(state));
    arb_store *store = open_store(nested, ARB_STORE_READ_WRITE);
    store->ops->close(store);
    assert_true(file_size(nested, "arbiter.db") > 0);
    assert_true(file_size(nested, "LOCK") >= 0);
}

static void test_newer_schema_is_refused(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    store->ops->close(store);
    raw_exec(data_dir(state), "PRAGMA user_version = 99");
    store = (arb_store *)1;
    assert_int_equal(arb_store_sqlite_open(data_dir(state), ARB_STORE_READ_WRITE, &store),
                     ARB_ESCHEMA);
    assert_null(store);
    assert_int_equal(arb_store_sqlite_open(data_dir(state), ARB_STORE_READ_ONLY, &store),
                     ARB_ESCHEMA);
    /* Refused, not touched. */
    assert_int_equal(raw_count(data_dir(state), "PRAGMA user_version"), 99);
}

static void test_corrupt_row_is_not_served(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    commit_range(store, "ledger:main", 1, 3);
    store->ops->close(store);
    raw_exec(data_dir(state), "UPDATE events SET hash = x'00' WHERE seq = 2");
    store = open_store(data_dir(state), ARB_STORE_READ_ONLY);
    seen_events seen = {0};
    assert_int_equal(store->ops->events(store, "ledger:main", 0, 0, collect_event, &seen),
                     ARB_ECORRUPT);
    assert_int_equal(seen.count, 1);
    store->ops->close(store);
}

static void test_fail_hook(void **state)
{
    arb_store *store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    arb_store_sqlite_fail_after(store, 1);
    commit_range(store, "ledger:main", 1, 2);
    test_batch *batch = batch_new();
    batch_add_stream(batch, "shop:main", "shop");
    batch_add_event(batch, "ledger:main", 3);
    batch_add_outcome(batch, "writer", 3, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), ARB_EIO);
    store->ops->close(store);

    store = open_store(data_dir(state), ARB_STORE_READ_WRITE);
    assert_int_equal(count_events(store, "ledger:main"), 2);
    assert_true(has_outcome(store, "writer", 2));
    assert_false(has_outcome(store, "writer", 3));
    seen_streams seen = {0};
    assert_int_equal(store->ops->streams(store, collect_stream, &seen), 0);
    assert_int_equal(seen.count, 0);
    /* Disarmed: the same batch now commits. */
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    arb_store_sqlite_fail_after(store, 0);
    arb_store_sqlite_fail_after(store, -1);
    commit_range(store, "ledger:main", 4, 4);
    assert_int_equal(count_events(store, "ledger:main"), 4);
    store->ops->close(store);
    free(batch);
}

typedef struct counted {
    uint64_t count;
    uint64_t next_seq;
} counted;

static int count_in_order(void *user, const arb_event *event, const char *data_json,
                          size_t data_json_len)
{
    (void)data_json;
    (void)data_json_len;
    counted *seen = user;
    assert_int_equal(event->seq, seen->next_seq);
    seen->next_seq++;
    seen->count++;
    return 0;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* 10,000 rows in batches of 250: the background thread copies the WAL into
 * the database while the store is open, and close leaves no WAL behind. */
static void test_many_rows_are_checkpointed(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    off_t empty_size = file_size(dir, "arbiter.db");
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (uint64_t first = 1; first <= 5000; first += 125)
        commit_range(store, "ledger:main", first, first + 124);
    double took = seconds_since(&start);
    print_message("10000 rows in 40 commits: %.3f s (%.0f rows/s)\n", took, 10000 / took);
    assert_true(file_size(dir, "arbiter.db-wal") > 0);
    /* Nothing else checkpoints (wal_autocheckpoint=0): the database file
     * grows only through the checkpointer thread. */
    for (int i = 0; i < 100 && file_size(dir, "arbiter.db") <= empty_size + 100 * 1024; i++)
        usleep(20 * 1000);
    assert_true(file_size(dir, "arbiter.db") > empty_size + 100 * 1024);
    store->ops->close(store);
    assert_true(file_size(dir, "arbiter.db-wal") <= 0);

    store = open_store(dir, ARB_STORE_READ_ONLY);
    counted seen = {.next_seq = 1};
    assert_int_equal(store->ops->events(store, "ledger:main", 0, 0, count_in_order, &seen), 0);
    assert_int_equal(seen.count, 5000);
    assert_true(has_outcome(store, "writer", 5000));
    store->ops->close(store);
}

/* A reader on its own thread and store, scanning while the writer commits:
 * every scan must see a prefix of the log, 1..n with no gap. cmocka cannot
 * fail from this thread, so it counts what went wrong for the test. */
typedef struct load_reader {
    const char *dir;
    atomic_bool stop;
    atomic_int failures;
    atomic_int scans;
} load_reader;

static int check_prefix(void *user, const arb_event *event, const char *data_json,
                        size_t data_json_len)
{
    (void)data_json;
    (void)data_json_len;
    uint64_t *next_seq = user;
    if (event->seq != *next_seq)
        return 1;
    (*next_seq)++;
    return 0;
}

static void *load_reader_main(void *user)
{
    load_reader *reader = user;
    arb_store *store = NULL;
    if (arb_store_sqlite_open(reader->dir, ARB_STORE_READ_ONLY, &store) != 0) {
        atomic_fetch_add(&reader->failures, 1);
        return NULL;
    }
    uint64_t seen_max = 0;
    while (!atomic_load(&reader->stop)) {
        uint64_t next_seq = 1;
        if (store->ops->events(store, "load:0", 0, 0, check_prefix, &next_seq) != 0 ||
            next_seq - 1 < seen_max)
            atomic_fetch_add(&reader->failures, 1);
        seen_max = next_seq - 1;
        atomic_fetch_add(&reader->scans, 1);
        usleep(5 * 1000);
    }
    store->ops->close(store);
    return NULL;
}

/* Enough WAL traffic, from 1000 clients over 8 streams, for the prompt and
 * the catch-up checkpoints to run (about 130 MB: each outcome carries a
 * 4 KiB payload), with a reader beside: for the sanitizers as much as for
 * the result. */
static void test_checkpointer_under_load(void **state)
{
    enum { commits = 120, streams = 8, clients = 1000 };
    const char *dir = data_dir(state);
    arb_log_set_level(ARB_LOG_DEBUG); /* the checkpointer's counters at close */
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    load_reader reader = {.dir = dir};
    commit_range(store, "load:0", 1, 1); /* so that the reader finds a database */
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, load_reader_main, &reader), 0);
    test_batch *batch = batch_new();
    static char client_ids[clients][ARB_CLIENT_ID_BYTES_MAX + 1];
    uint64_t client_seqs[clients] = {0};
    uint64_t stream_seqs[streams] = {1};
    const char *names[streams] = {"load:0", "load:1", "load:2", "load:3",
                                  "load:4", "load:5", "load:6", "load:7"};
    for (int c = 0; c < clients; c++)
        snprintf(client_ids[c], sizeof client_ids[c], "%064x", c * 7919);
    static char payload[4096];
    memset(payload, 'x', sizeof payload);
    memcpy(payload, "{\"pad\":\"", 8);
    memcpy(payload + sizeof payload - 3, "\"}", 3);
    uint64_t random_state = 42;
    for (int commit = 0; commit < commits; commit++) {
        batch_reset(batch);
        for (int i = 0; i < BATCH_ROWS_MAX; i++) {
            size_t client = test_random_below(&random_state, clients);
            int stream = i % streams;
            batch_add_event(batch, names[stream], ++stream_seqs[stream]);
            arb_store_outcome *row = batch_add_outcome(batch, client_ids[client],
                                                       ++client_seqs[client], names[stream], NULL);
            row->payload_json = payload;
            row->payload_json_len = sizeof payload - 1;
        }
        assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    }
    atomic_store(&reader.stop, true);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(atomic_load(&reader.failures), 0);
    assert_true(atomic_load(&reader.scans) > 0);
    store->ops->close(store);
    arb_log_set_level(ARB_LOG_INFO);
    assert_true(file_size(dir, "arbiter.db-wal") <= 0);

    store = open_store(dir, ARB_STORE_READ_ONLY);
    for (int stream = 0; stream < streams; stream++) {
        counted seen = {.next_seq = 1};
        assert_int_equal(store->ops->events(store, names[stream], 0, 0, count_in_order, &seen), 0);
        assert_int_equal(seen.count, stream_seqs[stream]);
    }
    assert_true(has_outcome(store, client_ids[0], client_seqs[0]) || client_seqs[0] == 0);
    store->ops->close(store);
    free(batch);
}

/* ---- the key tail: outcome keys in memory, then in outcome_keys ---- */

static const char *const tail_clients[] = {"bob", "alice", "carol"};
#define TAIL_CLIENTS (sizeof tail_clients / sizeof tail_clients[0])

static const char *tail_payload(uint64_t client_seq)
{
    return client_seq % 2 ? "{\"odd\":true}" : NULL;
}

/* One commit: an outcome of every tail client for each client_seq of
 * first..last (ids out of order, so that writing the keys sorts them). */
static int commit_keys(arb_store *store, uint64_t first, uint64_t last)
{
    test_batch *batch = batch_new();
    for (uint64_t seq = first; seq <= last; seq++)
        for (size_t c = 0; c < TAIL_CLIENTS; c++)
            batch_add_outcome(batch, tail_clients[c], seq, "ledger:main", tail_payload(seq));
    int rc = store->ops->commit(store, &batch->batch);
    free(batch);
    return rc;
}

/* Every tail client's outcomes first..last are stored, field by field. */
static void assert_keys_stored(arb_store *store, uint64_t first, uint64_t last)
{
    test_batch *batch = batch_new();
    for (uint64_t seq = first; seq <= last; seq++) {
        for (size_t c = 0; c < TAIL_CLIENTS; c++) {
            batch_reset(batch);
            assert_outcome_stored(store, batch_add_outcome(batch, tail_clients[c], seq,
                                                           "ledger:main", tail_payload(seq)));
        }
    }
    free(batch);
}

static long keys_written(const char *dir)
{
    return raw_count(dir, "SELECT COUNT(*) FROM outcome_keys");
}

static long keys_through(const char *dir)
{
    return raw_count(dir, "SELECT value FROM meta WHERE key = 'keys_through_rowid'");
}

static void test_outcomes_in_tail_and_after_flush(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 3);
    for (uint64_t commit = 1; commit <= 7; commit++) {
        assert_int_equal(commit_keys(store, commit * 10 - 9, commit * 10), 0);
        /* The 3rd and 6th commits wrote the tail out, 10 keys a client each. */
        long written = (long)(commit / 3 * 3 * 10 * TAIL_CLIENTS);
        assert_int_equal(keys_written(dir), written);
        assert_int_equal(keys_through(dir), written); /* rowids count from 1 */
        assert_keys_stored(store, 1, commit * 10);
        assert_false(has_outcome(store, "alice", commit * 10 + 1));
    }
    assert_false(has_outcome(store, "dave", 1));
    /* Each key names the row it came from. */
    assert_int_equal(raw_count(dir, "SELECT COUNT(*) FROM outcome_keys AS k JOIN outcomes AS o"
                                    " ON o.rowid = k.outcome_rowid AND o.client_id = k.client_id"
                                    " AND o.client_seq = k.client_seq"),
                     60 * (long)TAIL_CLIENTS);
    store->ops->close(store);
}

static void test_reopen_with_keys_in_tail(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 4);
    for (uint64_t commit = 1; commit <= 6; commit++)
        assert_int_equal(commit_keys(store, commit * 10 - 9, commit * 10), 0);
    assert_int_equal(keys_written(dir), 40 * (long)TAIL_CLIENTS);
    store->ops->close(store);

    /* Seqs 41..60 are in no index: the reopened writer loads them into its
     * tail, a reader finds them in the table. */
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_keys_stored(store, 1, 60);
    assert_false(has_outcome(store, "bob", 61));
    arb_store *reader = open_store(dir, ARB_STORE_READ_ONLY);
    assert_keys_stored(reader, 1, 60);
    assert_false(has_outcome(reader, "bob", 61));
    /* Loaded keys are keys like any other: a duplicate is refused... */
    assert_int_not_equal(commit_keys(store, 45, 45), 0);
    /* ...and they are written out with the next flush. */
    arb_store_sqlite_set_key_flush(store, 1);
    assert_int_equal(commit_keys(store, 61, 70), 0);
    assert_int_equal(keys_written(dir), 70 * (long)TAIL_CLIENTS);
    assert_keys_stored(store, 1, 70);
    assert_keys_stored(reader, 61, 70);
    reader->ops->close(reader);
    store->ops->close(store);
}

static void assert_clients_merged(arb_store *store)
{
    seen_clients seen = {0};
    assert_int_equal(store->ops->clients(store, collect_client, &seen), 0);
    const char *ids[] = {"alice", "bob", "carol", "dave"};
    const uint64_t maxima[] = {6, 1, 2, 10};
    assert_int_equal(seen.count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(seen.ids[i], ids[i]);
        assert_int_equal(seen.maxima[i], maxima[i]);
    }
}

static void test_clients_merges_tail_and_keys(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 2);
    test_batch *batch = batch_new();
    for (uint64_t seq = 1; seq <= 5; seq++)
        batch_add_outcome(batch, "alice", seq, "ledger:main", NULL);
    batch_add_outcome(batch, "dave", 10, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    batch_reset(batch);
    batch_add_outcome(batch, "bob", 1, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    assert_int_equal(keys_written(dir), 7);
    /* In the tail only: alice's newest, carol, and dave below his maximum. */
    batch_reset(batch);
    batch_add_outcome(batch, "alice", 6, "ledger:main", NULL);
    batch_add_outcome(batch, "carol", 2, "ledger:main", NULL);
    batch_add_outcome(batch, "dave", 3, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    assert_int_equal(keys_written(dir), 7);
    assert_clients_merged(store);
    arb_store *reader = open_store(dir, ARB_STORE_READ_ONLY);
    assert_clients_merged(reader);
    reader->ops->close(reader);
    store->ops->close(store);
    free(batch);
}

static void test_failed_commit_leaves_tail(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 2);
    assert_int_equal(commit_keys(store, 1, 2), 0);
    /* The failing commit is one that writes the tail out. */
    arb_store_sqlite_fail_after(store, 0);
    assert_int_equal(commit_keys(store, 3, 4), ARB_EIO);
    assert_false(has_outcome(store, "alice", 3));
    assert_false(has_outcome(store, "carol", 4));
    assert_keys_stored(store, 1, 2);
    assert_int_equal(keys_written(dir), 0);
    /* Its keys left the tail: the same batch is not a duplicate now. */
    assert_int_equal(commit_keys(store, 3, 4), 0);
    assert_int_equal(keys_written(dir), 4 * (long)TAIL_CLIENTS);
    /* And one that only adds to the tail. */
    assert_int_equal(commit_keys(store, 5, 5), 0);
    arb_store_sqlite_fail_after(store, 0);
    arb_store_sqlite_set_key_flush(store, 3);
    assert_int_equal(commit_keys(store, 6, 6), ARB_EIO);
    assert_false(has_outcome(store, "bob", 6));
    assert_keys_stored(store, 1, 5);
    store->ops->close(store);

    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_keys_stored(store, 1, 5);
    assert_false(has_outcome(store, "bob", 6));
    assert_int_equal(commit_keys(store, 6, 6), 0);
    assert_keys_stored(store, 1, 6);
    store->ops->close(store);
}

/* The version-1 schema (migrate_0_to_1 of sqlite.c), as an older arbiter
 * left it. */
static const char schema_v1[] = ARB__SQLITE_SCHEMA_V1 "PRAGMA user_version = 1;";

static void raw_insert_outcome(sqlite3 *db, const arb_store_outcome *row)
{
    static const char sql[] =
        "INSERT INTO outcomes(client_id, client_seq, fingerprint, stream, status, seq_first,"
        " seq_last, code, code_name, message, payload, version, decided_at)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
    sqlite3_stmt *statement = NULL;
    bool committed = row->kind == ARB_OUTCOME_COMMITTED;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &statement, NULL), SQLITE_OK);
    sqlite3_bind_text(statement, 1, row->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(statement, 2, (sqlite3_int64)row->client_seq);
    sqlite3_bind_blob(statement, 3, row->fingerprint, ARB_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(statement, 4, row->stream, -1, SQLITE_STATIC);
    sqlite3_bind_int(statement, 5, row->kind);
    if (committed) {
        sqlite3_bind_int64(statement, 6, (sqlite3_int64)row->seq_first);
        sqlite3_bind_int64(statement, 7, (sqlite3_int64)row->seq_last);
    } else {
        sqlite3_bind_int(statement, 8, row->code);
        sqlite3_bind_text(statement, 9, arb_err_name(row->code), -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 10, row->message, -1, SQLITE_STATIC);
    }
    if (row->payload_json != NULL)
        sqlite3_bind_text(statement, 11, row->payload_json, (int)row->payload_json_len,
                          SQLITE_STATIC);
    sqlite3_bind_int64(statement, 12, (sqlite3_int64)row->version);
    sqlite3_bind_int64(statement, 13, row->decided_at_ms);
    assert_int_equal(sqlite3_step(statement), SQLITE_DONE);
    sqlite3_finalize(statement);
}

/* A version-1 database: the tail clients' outcomes 1..300 (and bob's 301,
 * rejected), written with raw SQL. */
static void create_version_1(const char *dir, arb_store_outcome *rejected)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    test_batch *batch = batch_new();
    for (uint64_t seq = 1; seq <= 300; seq++) {
        for (size_t c = 0; c < TAIL_CLIENTS; c++) {
            batch_reset(batch);
            raw_insert_outcome(db, batch_add_outcome(batch, tail_clients[c], seq, "ledger:main",
                                                     tail_payload(seq)));
        }
    }
    raw_insert_outcome(db, rejected);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(batch);
}

static void test_migration_from_version_1(void **state)
{
    const char *dir = data_dir(state);
    test_batch *batch = batch_new();
    arb_store_outcome *rejected = batch_add_outcome(batch, "bob", 301, "ledger:main", "{\"n\":1}");
    rejected->kind = ARB_OUTCOME_REJECTED;
    rejected->code = ARB_EINSUFFICIENT_FUNDS;
    snprintf(rejected->message, sizeof rejected->message, "balance 1 < 2");
    create_version_1(dir, rejected);
    arb_store *store = NULL;
    assert_int_equal(arb_store_sqlite_open(dir, ARB_STORE_READ_ONLY, &store), ARB_ESCHEMA);

    store = open_store(dir, ARB_STORE_READ_WRITE);
    const long rows = 300 * (long)TAIL_CLIENTS + 1;
    assert_int_equal(raw_count(dir, "PRAGMA user_version"), 3);
    assert_int_equal(raw_count(dir, "SELECT COUNT(*) FROM outcomes WHERE checksum IS NULL"), 0);
    assert_int_equal(keys_written(dir), rows);
    assert_int_equal(keys_through(dir), rows);
    assert_int_equal(raw_count(dir, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                    " AND tbl_name = 'outcomes'"),
                     0);
    assert_keys_stored(store, 1, 300);
    assert_outcome_stored(store, rejected);
    seen_clients seen = {0};
    assert_int_equal(store->ops->clients(store, collect_client, &seen), 0);
    assert_int_equal(seen.count, 3);
    assert_int_equal(seen.maxima[1], 301); /* alice, bob, carol */
    /* The migrated store goes on: new rows after the old ones. */
    assert_int_equal(commit_keys(store, 302, 302), 0);
    store->ops->close(store);
    assert_int_equal(raw_count(dir, "SELECT MIN(rowid) FROM outcomes WHERE client_seq = 302"),
                     rows + 1);
    store = open_store(dir, ARB_STORE_READ_ONLY);
    assert_keys_stored(store, 1, 300);
    assert_keys_stored(store, 302, 302);
    assert_outcome_stored(store, rejected);
    store->ops->close(store);
    free(batch);
}

static void test_duplicate_keys_are_refused(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    /* Twice in one batch: the second is found in the tail. */
    test_batch *batch = batch_new();
    batch_add_outcome(batch, "alice", 1, "ledger:main", NULL);
    batch_add_outcome(batch, "alice", 1, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), ARB_EIO);
    assert_false(has_outcome(store, "alice", 1));
    batch_reset(batch);
    batch_add_outcome(batch, "alice", 1, "ledger:main", NULL);
    assert_int_equal(store->ops->commit(store, &batch->batch), 0);
    /* Against outcome_keys: refused when the tail is written out (here at
     * once), and the first outcome stays. */
    arb_store_sqlite_set_key_flush(store, 1);
    assert_int_equal(commit_keys(store, 2, 2), 0);
    assert_int_equal(keys_written(dir), 1 + (long)TAIL_CLIENTS);
    batch_reset(batch);
    batch_add_outcome(batch, "bob", 2, "ledger:main", "{\"second\":true}");
    assert_int_equal(store->ops->commit(store, &batch->batch), ARB_EIO);
    assert_keys_stored(store, 2, 2);
    store->ops->close(store);
    /* A log that holds a key twice (outcome_keys and the rows after it) is
     * refused at open. */
    raw_exec(dir, "INSERT INTO outcomes(client_id, client_seq, fingerprint, stream, status,"
                  " version, decided_at) SELECT client_id, client_seq, fingerprint, stream,"
                  " status, version, decided_at FROM outcomes WHERE client_id = 'bob'");
    store = (arb_store *)1;
    assert_int_equal(arb_store_sqlite_open(dir, ARB_STORE_READ_WRITE, &store), ARB_ECORRUPT);
    assert_null(store);
    free(batch);
}

/* The filling generation is sealed when one more batch might not fit,
 * whatever the interval, and its first slice written; and a log with more
 * unwritten keys than the tail holds has them written at open, the sealed
 * generation's written slice included (INSERT OR IGNORE). */
/* The store's check: an idempotency key changed on disk (so its lookup
 * would miss, and a resend be decided again) or an outcome row whose key
 * no longer finds it is ARB_ECORRUPT; and a row's own fields are covered by
 * its checksum. */
static void test_check_finds_changed_keys_and_rows(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 1);
    for (uint64_t seq = 1; seq <= 4; seq++)
        assert_int_equal(commit_keys(store, seq, seq), 0);
    char why[256] = "";
    assert_int_equal(store->ops->check(store, why, sizeof why), 0);
    store->ops->close(store);
    assert_true(keys_through(dir) >= (long)TAIL_CLIENTS);
    raw_exec(dir, "UPDATE outcome_keys SET client_seq = client_seq + 1000"
                  " WHERE client_id = 'alice' AND client_seq = 1");
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_int_equal(store->ops->check(store, why, sizeof why), ARB_ECORRUPT);
    assert_non_null(strstr(why, "idempotency key"));
    store->ops->close(store);
    raw_exec(dir, "UPDATE outcome_keys SET client_seq = client_seq - 1000"
                  " WHERE client_id = 'alice' AND client_seq = 1001");
    raw_exec(dir, "UPDATE outcomes SET client_seq = 7 WHERE client_id = 'bob' AND client_seq = 2");
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_int_equal(store->ops->check(store, why, sizeof why), ARB_ECORRUPT);
    store->ops->close(store);
    raw_exec(dir, "UPDATE outcomes SET client_seq = 2 WHERE client_id = 'bob' AND client_seq = 7");
    raw_exec(dir, "UPDATE outcomes SET version = version + 1"
                  " WHERE client_id = 'carol' AND client_seq = 3");
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_int_equal(store->ops->check(store, why, sizeof why), 0);
    arb_store_outcome row;
    assert_int_equal(store->ops->outcome(store, "carol", 3, &row, NULL), ARB_ECORRUPT);
    assert_int_equal(store->ops->outcome(store, "carol", 4, &row, NULL), 0);
    store->ops->close(store);
}

/* Copy dir/arbiter.db and its WAL to to_dir while the connection that
 * wrote them is still open (as after a crash), and flip one bit of the WAL
 * at offset. */
static void copy_with_wal_flip(const char *dir, const char *to_dir, long offset)
{
    const char *names[] = {"arbiter.db", "arbiter.db-wal"};
    assert_true(mkdir(to_dir, 0700) == 0);
    for (int i = 0; i < 2; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", to_dir, names[i]);
        FILE *in = fopen(from, "rb");
        FILE *out = fopen(to, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buffer[65536];
        size_t n;
        while ((n = fread(buffer, 1, sizeof buffer, in)) > 0)
            assert_int_equal(fwrite(buffer, 1, n, out), n);
        fclose(in);
        if (i == 1 && offset >= 0) {
            assert_int_equal(fseek(out, offset, SEEK_SET), 0);
            fclose(out);
            out = fopen(to, "r+b");
            assert_non_null(out);
            assert_int_equal(fseek(out, offset, SEEK_SET), 0);
            int byte = fgetc(out);
            assert_true(byte != EOF);
            assert_int_equal(fseek(out, offset, SEEK_SET), 0);
            fputc(byte ^ 0x10, out);
        }
        fclose(out);
    }
}

/* The WAL scan (sqlite_wal.c): a bad frame with whole commits after it is
 * damage SQLite would drop them for, and the store refuses to open; a bad
 * last commit is a torn tail, which SQLite rightly drops. */
static void test_wal_damage_before_commits_is_refused(void **state)
{
    const char *dir = data_dir(state);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;"
                                  " PRAGMA wal_autocheckpoint = 0; CREATE TABLE t(x);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(
            sqlite3_exec(db, "INSERT INTO t VALUES(randomblob(3000))", NULL, NULL, NULL),
            SQLITE_OK);
    const long frame = 24 + 4096;
    char copy[PATH_MAX / 2], copy_path[PATH_MAX], why[256] = "";
    snprintf(copy, sizeof copy, "%s/whole", dir);
    copy_with_wal_flip(dir, copy, -1);
    snprintf(copy_path, sizeof copy_path, "%s/arbiter.db", copy);
    assert_int_equal(arb__sqlite_wal_check(copy_path, why, sizeof why), 0);
    /* The page of frame 2 (the first insert's), 6 commits after it. */
    snprintf(copy, sizeof copy, "%s/early", dir);
    copy_with_wal_flip(dir, copy, 32 + frame + 24 + 100);
    snprintf(copy_path, sizeof copy_path, "%s/arbiter.db", copy);
    assert_int_equal(arb__sqlite_wal_check(copy_path, why, sizeof why), ARB_ECORRUPT);
    assert_non_null(strstr(why, "whole commits after it"));
    arb_store *store = (arb_store *)1;
    assert_int_equal(arb_store_sqlite_open(copy, ARB_STORE_READ_WRITE, &store), ARB_ECORRUPT);
    assert_null(store);
    /* The salt of a frame's header counts as damage too. */
    snprintf(copy, sizeof copy, "%s/salt", dir);
    copy_with_wal_flip(dir, copy, 32 + frame + 9);
    snprintf(copy_path, sizeof copy_path, "%s/arbiter.db", copy);
    assert_int_equal(arb__sqlite_wal_check(copy_path, why, sizeof why), ARB_ECORRUPT);
    /* The last frame (the last commit's): a torn tail, no refusal. */
    struct stat info;
    snprintf(path, sizeof path, "%s/arbiter.db-wal", dir);
    assert_int_equal(stat(path, &info), 0);
    snprintf(copy, sizeof copy, "%s/tail", dir);
    copy_with_wal_flip(dir, copy, (long)info.st_size - 100);
    snprintf(copy_path, sizeof copy_path, "%s/arbiter.db", copy);
    assert_int_equal(arb__sqlite_wal_check(copy_path, why, sizeof why), 0);
    sqlite3_close(db);
}

/* The high-water mark (sqlite_mark.c): a log that lost its last committed
 * outcomes (as a WAL cut short would) is refused by the check, at open
 * and by a reader, until the MARK is deleted on purpose. */
static void test_mark_refuses_a_log_behind_it(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    for (uint64_t seq = 1; seq <= 3; seq++)
        assert_int_equal(commit_keys(store, seq, seq), 0);
    char why[512] = "";
    assert_int_equal(store->ops->check(store, why, sizeof why), 0);
    store->ops->close(store);
    long rows = raw_count(dir, "SELECT COUNT(*) FROM outcomes");
    assert_int_equal(rows, 3 * (long)TAIL_CLIENTS);
    store = open_store(dir, ARB_STORE_READ_ONLY);
    assert_int_equal(store->ops->check(store, why, sizeof why), 0);
    store->ops->close(store);
    raw_exec(dir, "DELETE FROM outcomes WHERE rowid > 4");
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_int_equal(store->ops->check(store, why, sizeof why), ARB_ECORRUPT);
    assert_non_null(strstr(why, "acknowledged commits are missing"));
    store->ops->close(store);
    store = open_store(dir, ARB_STORE_READ_ONLY);
    assert_int_equal(store->ops->check(store, why, sizeof why), ARB_ECORRUPT);
    store->ops->close(store);
    char mark[PATH_MAX];
    snprintf(mark, sizeof mark, "%s/MARK", dir);
    assert_int_equal(unlink(mark), 0);
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_int_equal(store->ops->check(store, why, sizeof why), 0);
    assert_int_equal(commit_keys(store, 4, 4), 0);
    store->ops->close(store);
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_int_equal(store->ops->check(store, why, sizeof why), 0);
    store->ops->close(store);
}

static void test_tail_bounded(void **state)
{
    enum {
        seal = ARB_STORE_KEY_TAIL_MAX / 2 - ARB_BATCH_PROPOSALS_MAX,
        commits = seal / BATCH_ROWS_MAX
    };
    _Static_assert(seal % BATCH_ROWS_MAX == 0, "whole batches fill a generation");
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 1000000);
    test_batch *batch = batch_new();
    for (uint64_t commit = 0; commit < commits; commit++) {
        batch_reset(batch);
        for (uint64_t i = 1; i <= BATCH_ROWS_MAX; i++)
            batch_add_outcome(batch, tail_clients[i % TAIL_CLIENTS], commit * BATCH_ROWS_MAX + i,
                              "ledger:main", NULL);
        assert_int_equal(store->ops->commit(store, &batch->batch), 0);
        if (commit == commits - 2)
            assert_int_equal(keys_written(dir), 0);
    }
    assert_int_equal(keys_written(dir), ARB_STORE_KEY_SLICE_MAX);
    assert_int_equal(keys_through(dir), 0);
    assert_true(has_outcome(store, "alice", 1));
    store->ops->close(store);
    raw_exec(dir, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)"
                  " INSERT INTO outcomes(client_id, client_seq, fingerprint, stream, status,"
                  " version, decided_at) SELECT 'bulk', i, zeroblob(32), 'ledger:main', 1, i, 0"
                  " FROM n");
    raw_fill_checksums(dir);
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_int_equal(keys_written(dir), seal + 40000);
    assert_int_equal(keys_through(dir), seal + 40000);
    assert_true(has_outcome(store, "bulk", 1));
    assert_true(has_outcome(store, "bulk", 40000));
    assert_true(has_outcome(store, "alice", seal)); /* the last batch's last row */
    store->ops->close(store);
    free(batch);
}

/* What the key tail should have written, commit by commit: a model of
 * sqlite_keys.c with the intervals the tests set. */
typedef struct key_model {
    long every, slice;
    long filling, sealed, cursor, since_seal;
    long written, through, rows;
} key_model;

static void key_model_commit(key_model *model, long keys)
{
    model->filling += keys;
    model->rows += keys;
    if (model->since_seal + 1 >= model->every) {
        model->written += model->sealed - model->cursor;
        model->through = model->rows - model->filling;
        model->sealed = model->filling;
        model->filling = 0;
        model->cursor = 0;
        model->since_seal = 0;
    } else {
        model->since_seal++;
    }
    if (model->sealed == 0)
        return;
    long count =
        model->sealed - model->cursor < model->slice ? model->sealed - model->cursor : model->slice;
    model->written += count;
    model->cursor += count;
    if (model->cursor == model->sealed) {
        model->through += model->sealed;
        model->sealed = 0;
        model->cursor = 0;
    }
}

static long key_cursor(const char *dir)
{
    return raw_count(dir, "SELECT COALESCE((SELECT value FROM meta"
                          " WHERE key = 'keys_slice_cursor'), 0)");
}

static void assert_key_model(const char *dir, const key_model *model)
{
    assert_int_equal(keys_written(dir), model->written);
    assert_int_equal(keys_through(dir), model->through);
    assert_int_equal(key_cursor(dir), model->cursor);
}

/* Every tail client's highest seq is last, in both modes. */
static void assert_clients_at(arb_store *store, uint64_t last)
{
    seen_clients seen = {0};
    assert_int_equal(store->ops->clients(store, collect_client, &seen), 0);
    assert_int_equal(seen.count, TAIL_CLIENTS);
    for (size_t i = 0; i < TAIL_CLIENTS; i++)
        assert_int_equal(seen.maxima[i], last);
}

/* A sealed generation is written a slice per commit; every key is found at
 * every step, by the writer and by a reader; when the interval comes round
 * before the last slice, the sealing commit writes the rest first. */
static void test_slices_over_commits(void **state)
{
    const char *dir = data_dir(state);
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 4);
    arb_store_sqlite_set_key_slice(store, 5);
    key_model model = {.every = 4, .slice = 5};
    bool forced = false;
    for (uint64_t commit = 1; commit <= 14; commit++) {
        long written_before = model.written;
        assert_int_equal(commit_keys(store, commit * 2 - 1, commit * 2), 0);
        key_model_commit(&model, 2 * (long)TAIL_CLIENTS);
        forced = forced || model.written - written_before > model.slice;
        assert_key_model(dir, &model);
        assert_keys_stored(store, 1, commit * 2);
        assert_false(has_outcome(store, "alice", commit * 2 + 1));
        assert_clients_at(store, commit * 2);
        arb_store *reader = open_store(dir, ARB_STORE_READ_ONLY);
        assert_keys_stored(reader, 1, commit * 2);
        assert_clients_at(reader, commit * 2);
        reader->ops->close(reader);
        /* Each key is written at most once, pointing at its own row. */
        assert_int_equal(raw_count(dir, "SELECT COUNT(*) FROM outcome_keys AS k JOIN outcomes"
                                        " AS o ON o.rowid = k.outcome_rowid AND o.client_id ="
                                        " k.client_id AND o.client_seq = k.client_seq"),
                         model.written);
    }
    assert_true(forced);
    /* Keys still in the tail are duplicates at once. */
    assert_int_not_equal(commit_keys(store, 27, 27), 0);
    store->ops->close(store);
}

/* Run the slicing store of test_slices_over_commits up to commits, leaving
 * a sealed generation partly written. */
static arb_store *open_mid_slice(const char *dir, key_model *model, uint64_t commits)
{
    arb_store *store = open_store(dir, ARB_STORE_READ_WRITE);
    arb_store_sqlite_set_key_flush(store, 4);
    arb_store_sqlite_set_key_slice(store, 5);
    *model = (key_model){.every = 4, .slice = 5};
    for (uint64_t commit = 1; commit <= commits; commit++) {
        assert_int_equal(commit_keys(store, commit * 2 - 1, commit * 2), 0);
        key_model_commit(model, 2 * (long)TAIL_CLIENTS);
    }
    assert_key_model(dir, model);
    assert_true(model->cursor > 0 && model->sealed > model->cursor);
    return store;
}

/* A store reopened mid-slice (what a crash between two commits leaves: the
 * state is only ever what the last commit wrote) rebuilds both generations
 * from meta and the rows, finds every key, refuses duplicates from either
 * part of the sealed generation, and writes the rest of it. */
static void test_reopen_mid_slice(void **state)
{
    const char *dir = data_dir(state);
    key_model model;
    arb_store *store = open_mid_slice(dir, &model, 6);
    store->ops->close(store);

    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_key_model(dir, &model);
    assert_keys_stored(store, 1, 12);
    assert_false(has_outcome(store, "carol", 13));
    assert_clients_at(store, 12);
    assert_int_not_equal(commit_keys(store, 1, 1), 0);   /* written part */
    assert_int_not_equal(commit_keys(store, 8, 8), 0);   /* not yet written */
    assert_int_not_equal(commit_keys(store, 12, 12), 0); /* filling */
    arb_store_sqlite_set_key_flush(store, 4);
    arb_store_sqlite_set_key_slice(store, 5);
    model.since_seal = 0; /* the interval counts from the open */
    for (uint64_t commit = 7; commit <= 12; commit++) {
        assert_int_equal(commit_keys(store, commit * 2 - 1, commit * 2), 0);
        key_model_commit(&model, 2 * (long)TAIL_CLIENTS);
        assert_key_model(dir, &model);
        assert_keys_stored(store, 1, commit * 2);
    }
    store->ops->close(store);
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_keys_stored(store, 1, 24);
    assert_clients_at(store, 24);
    store->ops->close(store);
}

/* A failed commit mid-slice leaves memory and disk as they were, the slice
 * cursor included; so does a failed sealing commit. */
static void test_failed_commit_mid_slice(void **state)
{
    const char *dir = data_dir(state);
    key_model model;
    arb_store *store = open_mid_slice(dir, &model, 5);
    for (int round = 0; round < 2; round++) {
        /* Round 0 fails a slice-writing commit, round 1 a sealing one. */
        uint64_t commit = round == 0 ? 6 : 8;
        if (round == 1) {
            assert_int_equal(commit_keys(store, 13, 14), 0);
            key_model_commit(&model, 2 * (long)TAIL_CLIENTS);
        }
        arb_store_sqlite_fail_after(store, 0);
        assert_int_equal(commit_keys(store, commit * 2 - 1, commit * 2), ARB_EIO);
        assert_key_model(dir, &model);
        assert_keys_stored(store, 1, commit * 2 - 2);
        assert_false(has_outcome(store, "bob", commit * 2 - 1));
        assert_int_equal(commit_keys(store, commit * 2 - 1, commit * 2), 0);
        key_model_commit(&model, 2 * (long)TAIL_CLIENTS);
        assert_key_model(dir, &model);
        assert_keys_stored(store, 1, commit * 2);
    }
    store->ops->close(store);
    store = open_store(dir, ARB_STORE_READ_WRITE);
    assert_keys_stored(store, 1, 16);
    assert_clients_at(store, 16);
    store->ops->close(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_and_read_back, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_streams_with_head_seq, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_events_since_limit_and_stop, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_duplicate_event_rolls_back_batch, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_duplicate_outcome_is_an_error, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_clients_highest_seq, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_snapshots_newest_and_retention, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_second_writer_is_busy, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reader_beside_writer, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_pinned_reader_sees_one_moment, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_read_only_needs_database, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_creates_nested_directory, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_row_is_not_served, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_fail_hook, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_many_rows_are_checkpointed, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_checkpointer_under_load, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_outcomes_in_tail_and_after_flush, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_reopen_with_keys_in_tail, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_clients_merges_tail_and_keys, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_failed_commit_leaves_tail, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_migration_from_version_1, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_duplicate_keys_are_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_tail_bounded, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_check_finds_changed_keys_and_rows, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_wal_damage_before_commits_is_refused, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_mark_refuses_a_log_behind_it, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_slices_over_commits, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reopen_mid_slice, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_failed_commit_mid_slice, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("store/sqlite", tests, NULL, NULL);
}
