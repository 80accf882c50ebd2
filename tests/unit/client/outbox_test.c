/*
 * outbox_test.c - the client SDK's outbox file (src/client/outbox.c) through
 * the public API (include/arbiter/client.h), offline (url NULL).
 *
 * The outbox is outside input on restart: whatever is in the file, opening
 * it gives a client with exactly the proposals that were made, or
 * ARB_ECORRUPT / ARB_EIO, never a crash and never a client with some of
 * them. Raw sqlite3 calls play the part of whatever damaged the file (a
 * bad edit, another program, a truncating copy), as an operator with the
 * sqlite3 shell would. Each test gets a fresh directory (test_mkdtemp) and
 * removes it afterwards. The ARB_CLIENT_OUTBOX_MAX bound is not filled here:
 * 65536 durable proposals take too long for a unit test.
 */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbiter/client.h"
#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "core/log.h"
#include "support.h"

/* Every client_seq of a new outbox is above this: it starts from the clock
 * in microseconds (10^15 us is 1970 plus 31 years). */
#define FRESH_SEQ_MIN 1000000000000000ULL

/* A ledger view as the server sends it to alice (docs/ledger.md, "State,
 * view and snapshot"): a1 and a2 are hers, b1 is bob's. */
static const char ledger_view[] =
    "{\"max_transfer\":100000,"
    "\"accounts\":{"
    "\"a1\":{\"owner\":\"alice\",\"currency\":\"EUR\",\"balance\":1000,\"held\":0,"
    "\"overdraft_limit\":0,\"version\":6},"
    "\"a2\":{\"owner\":\"alice\",\"currency\":\"EUR\",\"balance\":0,\"held\":0,"
    "\"overdraft_limit\":500,\"version\":3},"
    "\"b1\":{\"owner\":\"bob\",\"currency\":\"EUR\",\"balance\":500,\"held\":0,"
    "\"overdraft_limit\":0,\"version\":7}},"
    "\"pending\":{},"
    "\"totals\":{\"EUR\":{\"deposited\":1500,\"withdrawn\":0}}}";

typedef struct fixture {
    char *dir;
    char path[PATH_MAX]; /* the outbox file, not created yet */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_mkdtemp("outbox");
    int n = snprintf(f->path, sizeof f->path, "%s/outbox.db", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof f->path);
    /* The refusals below are logged as warnings; the tests check them. */
    arb_log_set_level(ARB_LOG_ERROR);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static int open_as(const char *path, const char *client_id, arb_client **out)
{
    arb_client_config config = {
        .url = NULL,
        .client_id = client_id,
        .role = ARB_ROLE_USER,
        .outbox_path = path,
    };
    *out = (arb_client *)(uintptr_t)1; /* must be reset on failure */
    return arb_client_open(&config, out);
}

static arb_client *open_alice(const char *path)
{
    arb_client *client;
    int rc = open_as(path, "alice", &client);
    if (rc != 0)
        fail_msg("arb_client_open(%s): %s", path, arb_err_name(rc));
    assert_non_null(client);
    return client;
}

/* Opening path must fail with exactly code (0: ARB_ECORRUPT or ARB_EIO). */
static void assert_refused(const char *path, const char *client_id, int code)
{
    arb_client *client;
    int rc = open_as(path, client_id, &client);
    if (rc == 0)
        arb_client_destroy(client);
    else
        assert_null(client);
    if (code != 0 ? rc != code : rc != ARB_ECORRUPT && rc != ARB_EIO)
        fail_msg("arb_client_open(%s) as %s: %s, not %s", path, client_id, arb_err_name(rc),
                 code != 0 ? arb_err_name(code) : "CORRUPT or IO_ERROR");
}

/* Propose action(args as JSON text) on stream; the code. */
static int propose(arb_client *client, const char *stream, const char *action, const char *args,
                   arb_policy policy, uint64_t *seq_out)
{
    json_error_t error;
    json_t *json = json_loads(args, 0, &error);
    if (json == NULL)
        fail_msg("bad test JSON %s: %s", args, error.text);
    int rc = arb_client_propose(client, stream, action, json, policy, seq_out);
    json_decref(json);
    return rc;
}

static uint64_t propose_ok(arb_client *client, const char *stream, const char *action,
                           const char *args, arb_policy policy)
{
    uint64_t seq = 0;
    int rc = propose(client, stream, action, args, policy, &seq);
    if (rc != 0)
        fail_msg("propose %s %s %s: %s", stream, action, args, arb_err_name(rc));
    assert_true(seq >= 1 && seq <= (uint64_t)ARB_JSON_INT_MAX);
    return seq;
}

/* Run sql on the file through a connection of our own. */
static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    char *message = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK)
        fail_msg("%s: %s", sql, message != NULL ? message : "?");
    sqlite3_free(message);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* One integer from sql. */
static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return value;
}

/* Write size bytes to path, replacing it. */
static void write_file(const char *path, const void *data, size_t size)
{
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, size, file), size);
    assert_int_equal(fclose(file), 0);
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* An outbox of alice with one proposal, closed: the file to damage. */
static uint64_t make_outbox(const char *path)
{
    arb_client *client = open_alice(path);
    uint64_t seq =
        propose_ok(client, "ledger:x", "transfer", "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":100}",
                   ARB_POLICY_OPTIMISTIC);
    arb_client_destroy(client);
    return seq;
}

/* The index-th pending proposal is (seq, stream, action, args, policy). */
static void assert_pending(arb_client *client, size_t index, uint64_t seq, const char *stream,
                           const char *action, const char *args, arb_policy policy)
{
    arb_client_pending pending;
    assert_int_equal(arb_client_pending_at(client, index, &pending), 0);
    assert_int_equal(pending.client_seq, seq);
    assert_string_equal(pending.stream, stream);
    assert_string_equal(pending.action, action);
    assert_int_equal(pending.policy, policy);
    assert_false(pending.sent);
    json_t *expected = json_loads(args, 0, NULL);
    assert_non_null(expected);
    assert_true(json_equal(pending.args, expected));
    json_decref(expected);
}

/* ---- proposals across restarts ---- */

static const struct {
    const char *stream;
    const char *action;
    const char *args;
    arb_policy policy;
} made[] = {
    {"ledger:x", "transfer",
     "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":100,\"memo\":\"caf\\u00e9\"}",
     ARB_POLICY_OPTIMISTIC},
    {"shop:x", "reserve", "{\"sku\":\"mug\",\"quantity\":2,\"ttl_s\":600}", ARB_POLICY_PENDING},
    {"ledger:x", "batch",
     "{\"items\":[{\"action\":\"transfer\",\"args\":{\"from\":\"a1\",\"to\":\"b1\",\"amount\":1}}],"
     "\"z\":[],\"a\":{\"n\":-9007199254740991}}",
     ARB_POLICY_PESSIMISTIC},
    {"ledger:y", "transfer", "{}", ARB_POLICY_OPTIMISTIC},
};
#define MADE_COUNT (sizeof made / sizeof made[0])

static void test_proposals_persist(void **state)
{
    fixture *f = *state;
    uint64_t seqs[MADE_COUNT];
    arb_client *client = open_alice(f->path);
    assert_int_equal(arb_client_pending_count(client), 0);
    for (size_t i = 0; i < MADE_COUNT; i++) {
        seqs[i] = propose_ok(client, made[i].stream, made[i].action, made[i].args, made[i].policy);
        assert_true(i == 0 || seqs[i] > seqs[i - 1]);
    }
    arb_client_destroy(client);

    /* Twice: reopening must not change what a reopened file holds. */
    for (int round = 0; round < 2; round++) {
        client = open_alice(f->path);
        assert_int_equal(arb_client_pending_count(client), MADE_COUNT);
        for (size_t i = 0; i < MADE_COUNT; i++)
            assert_pending(client, i, seqs[i], made[i].stream, made[i].action, made[i].args,
                           made[i].policy);
        arb_client_pending beyond;
        assert_int_equal(arb_client_pending_at(client, MADE_COUNT, &beyond), ARB_ENOTFOUND);
        assert_string_equal(arb_client_id(client), "alice");
        arb_client_destroy(client);
    }
}

static void test_client_seq_increases(void **state)
{
    fixture *f = *state;
    arb_client *client = open_alice(f->path);
    uint64_t first = propose_ok(client, "ledger:x", "transfer", "{\"amount\":1}", 0);
    assert_true(first > FRESH_SEQ_MIN);
    uint64_t last = propose_ok(client, "ledger:x", "transfer", "{\"amount\":2}", 0);
    assert_true(last > first);
    arb_client_destroy(client);

    /* Each reopening continues above everything issued before. */
    for (int round = 0; round < 3; round++) {
        client = open_alice(f->path);
        uint64_t seq = propose_ok(client, "ledger:x", "transfer", "{\"amount\":3}", 0);
        assert_true(seq > last);
        last = seq;
        arb_client_destroy(client);
    }

    /* Decided proposals leave the file; the counter does not go back to
     * what is left (rows deleted as the verdicts would). */
    sql_exec(f->path, "DELETE FROM outbox");
    client = open_alice(f->path);
    assert_int_equal(arb_client_pending_count(client), 0);
    uint64_t seq = propose_ok(client, "ledger:x", "transfer", "{\"amount\":4}", 0);
    assert_true(seq > last);
    last = seq;
    arb_client_destroy(client);

    /* A new file of the same client starts from the clock: above the old
     * file's seqs, which the server may still remember. */
    char other[PATH_MAX];
    int n = snprintf(other, sizeof other, "%s/new.db", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof other);
    client = open_alice(other);
    seq = propose_ok(client, "ledger:x", "transfer", "{\"amount\":5}", 0);
    assert_true(seq > FRESH_SEQ_MIN && seq > last);
    arb_client_destroy(client);
}

/* A refused proposal takes no seq: the next one gets the next number. */
static void test_refused_proposals_queue_nothing(void **state)
{
    fixture *f = *state;
    arb_client *client = open_alice(f->path);
    uint64_t before = propose_ok(client, "ledger:x", "transfer", "{\"amount\":1}", 0);

    char action[ARB_ACTION_BYTES_MAX + 2];
    memset(action, 'a', sizeof action - 1);
    action[sizeof action - 1] = '\0';
    char stream[ARB_STREAM_NAME_BYTES_MAX + 2] = "ledger:";
    memset(stream + 7, 's', sizeof stream - 8);
    stream[sizeof stream - 1] = '\0';
    uint64_t seq = 7;
    const struct {
        const char *stream;
        const char *action;
        const char *args;
        arb_policy policy;
    } refused[] = {
        {"ledger:x", "transfer", "{\"amount\":1.5}", ARB_POLICY_OPTIMISTIC},
        {"ledger:x", "transfer", "{\"a\":{\"b\":[1,2.0]}}", ARB_POLICY_OPTIMISTIC},
        {"ledger:x", "transfer", "{\"amount\":9007199254740992}", ARB_POLICY_OPTIMISTIC},
        {"ledger:x", "transfer", "{\"amount\":-9007199254740992}", ARB_POLICY_OPTIMISTIC},
        {"ledger:x", "transfer", "[1]", ARB_POLICY_OPTIMISTIC},
        {"ledger:x", "transfer", "{}", (arb_policy)7},
        {"ledger:x", "transfer", "{}", (arb_policy)-1},
        {"ledgerx", "transfer", "{}", ARB_POLICY_OPTIMISTIC},
        {":x", "transfer", "{}", ARB_POLICY_OPTIMISTIC},
        {"ledger:", "transfer", "{}", ARB_POLICY_OPTIMISTIC},
        {"", "transfer", "{}", ARB_POLICY_OPTIMISTIC},
        {stream, "transfer", "{}", ARB_POLICY_OPTIMISTIC},
        {"ledger:x", action, "{}", ARB_POLICY_OPTIMISTIC},
        {"ledger:x", "", "{}", ARB_POLICY_OPTIMISTIC},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = propose(client, refused[i].stream, refused[i].action, refused[i].args,
                         refused[i].policy, &seq);
        if (rc != ARB_EINVALID_ARGUMENT && rc != ARB_ETOO_LARGE)
            fail_msg("refused[%zu] (%s %s %s): %s", i, refused[i].stream, refused[i].action,
                     refused[i].args, arb_err_name(rc));
        assert_int_equal(seq, 7);
    }
    /* No args at all. */
    assert_int_equal(arb_client_propose(client, "ledger:x", "transfer", NULL, 0, &seq),
                     ARB_EINVALID_ARGUMENT);

    /* Args over ARB_ARGS_BYTES_MAX canonical. */
    size_t big_len = ARB_ARGS_BYTES_MAX + 16;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    json_t *args = json_pack("{s:s}", "memo", big);
    assert_non_null(args);
    int rc = arb_client_propose(client, "ledger:x", "transfer", args, 0, &seq);
    assert_true(rc == ARB_ETOO_LARGE || rc == ARB_EINVALID_ARGUMENT);
    json_decref(args);
    free(big);
    assert_int_equal(seq, 7);

    assert_int_equal(arb_client_pending_count(client), 1);
    uint64_t after = propose_ok(client, "ledger:x", "transfer", "{\"amount\":2}", 0);
    assert_int_equal(after, before + 1);
    arb_client_destroy(client);

    /* Nothing of it reached the file. */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outbox"), 2);
    client = open_alice(f->path);
    assert_int_equal(arb_client_pending_count(client), 2);
    assert_pending(client, 0, before, "ledger:x", "transfer", "{\"amount\":1}", 0);
    assert_pending(client, 1, after, "ledger:x", "transfer", "{\"amount\":2}", 0);
    arb_client_destroy(client);
}

/* ---- files that are not this client's outbox ---- */

static void test_another_clients_file(void **state)
{
    fixture *f = *state;
    uint64_t seq = make_outbox(f->path);
    assert_refused(f->path, "bob", ARB_ECORRUPT);
    assert_refused(f->path, "alice2", ARB_ECORRUPT);
    assert_refused(f->path, "alic", ARB_ECORRUPT);
    /* The owner's proposals are still there, untouched by the refusals. */
    arb_client *client = open_alice(f->path);
    assert_int_equal(arb_client_pending_count(client), 1);
    assert_pending(client, 0, seq, "ledger:x", "transfer",
                   "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":100}", ARB_POLICY_OPTIMISTIC);
    arb_client_destroy(client);
}

static void test_not_a_database(void **state)
{
    fixture *f = *state;
    uint64_t seed = test_seed("outbox not a database");
    uint64_t rng = seed;
    unsigned char bytes[8192];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)test_random(&rng);
    write_file(f->path, bytes, sizeof bytes);
    assert_refused(f->path, "alice", 0);
    write_file(f->path, bytes, 100);
    assert_refused(f->path, "alice", 0);

    /* Text, and a SQLite header followed by garbage. */
    static const char text[] = "client_id=alice\nlast_client_seq=12\n";
    write_file(f->path, text, sizeof text - 1);
    assert_refused(f->path, "alice", 0);
    memcpy(bytes, "SQLite format 3", 16);
    write_file(f->path, bytes, sizeof bytes);
    assert_refused(f->path, "alice", 0);
    write_file(f->path, bytes, 4096);
    assert_refused(f->path, "alice", 0);
}

static void test_empty_file_is_new(void **state)
{
    fixture *f = *state;
    write_file(f->path, "", 0);
    arb_client *client = open_alice(f->path);
    assert_int_equal(arb_client_pending_count(client), 0);
    uint64_t seq = propose_ok(client, "ledger:x", "transfer", "{\"amount\":1}", 0);
    assert_true(seq > FRESH_SEQ_MIN);
    arb_client_destroy(client);
    client = open_alice(f->path);
    assert_int_equal(arb_client_pending_count(client), 1);
    arb_client_destroy(client);
}

static void test_unusable_paths(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/missing/outbox.db", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof path);
    assert_refused(path, "alice", ARB_EIO);
    /* A directory. */
    assert_refused(f->dir, "alice", ARB_EIO);
}

/* Every length of a real outbox cut short: refused, or (when the cut
 * leaves the file empty) a new outbox; never a part of the proposals. */
static void test_truncated_outbox(void **state)
{
    fixture *f = *state;
    arb_client *client = open_alice(f->path);
    /* Enough rows, with long args, for the outbox table to span pages. */
    char args[2100];
    int n = snprintf(args, sizeof args, "{\"memo\":\"%02000d\"}", 0);
    assert_true(n > 0 && (size_t)n < sizeof args);
    for (int i = 0; i < 40; i++)
        propose_ok(client, "ledger:x", "transfer", args, 0);
    arb_client_destroy(client);
    long size = file_size(f->path);
    assert_true(size > 16 * 4096);

    char copy[PATH_MAX];
    n = snprintf(copy, sizeof copy, "%s/cut.db", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof copy);
    FILE *file = fopen(f->path, "rb");
    assert_non_null(file);
    unsigned char *whole = malloc((size_t)size);
    assert_non_null(whole);
    assert_int_equal(fread(whole, 1, (size_t)size, file), (size_t)size);
    fclose(file);

    const long cuts[] = {1,    15,   16,   99,   100,   101,      512,         1024,
                         4095, 4096, 4097, 8192, 12288, size / 2, size - 4096, size - 1};
    size_t wrong = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(copy, whole, (size_t)cuts[i]);
        arb_client *cut = NULL;
        int rc = open_as(copy, "alice", &cut);
        if (rc == 0) {
            /* Opened: then it must hold all 40 proposals, or it is a
             * half-loaded outbox. */
            size_t count = arb_client_pending_count(cut);
            arb_client_destroy(cut);
            if (count != 40) {
                print_error("a cut at %ld of %ld bytes opened with %zu of 40 proposals\n", cuts[i],
                            size, count);
                wrong++;
            }
        } else if (rc != ARB_ECORRUPT && rc != ARB_EIO) {
            print_error("a cut at %ld bytes: %s\n", cuts[i], arb_err_name(rc));
            wrong++;
        } else {
            assert_null(cut);
        }
        char wal[PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", copy);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", copy);
        unlink(wal);
    }
    free(whole);
    assert_int_equal(wrong, 0);
}

/* A SQLite database of some other program is not an outbox. */
static void test_foreign_database(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE people(name TEXT, age INTEGER);"
                                  " INSERT INTO people VALUES('ann', 41)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_refused(f->path, "alice", 0);
    /* And it is left as it was. */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_schema"), 1);
}

/* ---- rows edited to hold bad data ---- */

static void test_bad_rows(void **state)
{
    fixture *f = *state;
    static const char *const edits[] = {
        "UPDATE outbox SET args = 'not json'",
        "UPDATE outbox SET args = '[1,2]'",
        "UPDATE outbox SET args = '\"text\"'",
        "UPDATE outbox SET args = '{\"a\":1,\"a\":2}'",
        "UPDATE outbox SET args = '{\"amount\":1.5}'",
        "UPDATE outbox SET args = '{\"amount\":9007199254740992}'",
        "UPDATE outbox SET stream = 'ledgerx'",
        "UPDATE outbox SET stream = ''",
        "UPDATE outbox SET stream = 'ledger:'",
        "UPDATE outbox SET stream = 42",
        "UPDATE outbox SET stream = 'ledger:' || printf('%0200d', 1)",
        "UPDATE outbox SET action = ''",
        "UPDATE outbox SET action = printf('%040d', 1)",
        "UPDATE outbox SET policy = 7",
        "UPDATE outbox SET policy = -1",
        "UPDATE outbox SET policy = 'OPTIMISTIC'",
        "UPDATE outbox SET client_seq = client_seq + 1",
        "UPDATE outbox SET client_seq = 0",
        "UPDATE outbox SET client_seq = -5",
        "UPDATE outbox SET expect = -1",
        "UPDATE outbox SET expect = 9007199254740992",
        "UPDATE outbox SET expect = 1.5",
        "UPDATE outbox SET expect = 'twelve'",
        "UPDATE outbox SET args = '{\"memo\":\"' || printf('%070000d', 0) || '\"}'",
        "UPDATE meta SET value = 'twelve' WHERE key = 'last_client_seq'",
        "UPDATE meta SET value = -1 WHERE key = 'last_client_seq'",
        "UPDATE meta SET value = 9007199254740991 WHERE key = 'last_client_seq'",
        "UPDATE meta SET value = 2 WHERE key = 'format'",
        "DELETE FROM meta WHERE key = 'format'",
        "DELETE FROM meta WHERE key = 'last_client_seq'",
        "UPDATE meta SET value = 7 WHERE key = 'client_id'",
    };
    size_t wrong = 0;
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        unlink(f->path);
        make_outbox(f->path);
        sql_exec(f->path, edits[i]);
        arb_client *client;
        int rc = open_as(f->path, "alice", &client);
        if (rc == 0)
            arb_client_destroy(client);
        else
            assert_null(client);
        if (rc != ARB_ECORRUPT) {
            print_error("after %s: arb_client_open gave %s, not CORRUPT\n", edits[i],
                        arb_err_name(rc));
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

/* The same edits made to rows that are fine pass. */
static void test_good_row_edits(void **state)
{
    fixture *f = *state;
    uint64_t seq = make_outbox(f->path);
    sql_exec(f->path, "UPDATE outbox SET expect = 12, policy = 1,"
                      " args = '{\"to\":\"b1\",\"from\":\"a1\",\"amount\":7}'");
    arb_client *client = open_alice(f->path);
    assert_int_equal(arb_client_pending_count(client), 1);
    assert_pending(client, 0, seq, "ledger:x", "transfer",
                   "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":7}", ARB_POLICY_PENDING);
    arb_client_destroy(client);
}

/* ---- saved views ---- */

static void save_view(const char *path, const char *stream, int64_t seq, const char *view)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO views VALUES(?, ?, ?)", -1, &stmt, NULL),
        SQLITE_OK);
    sqlite3_bind_text(stmt, 1, stream, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, seq);
    sqlite3_bind_text(stmt, 3, view, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static json_int_t balance_of(const json_t *view, const char *account)
{
    const json_t *value =
        json_object_get(json_object_get(json_object_get(view, "accounts"), account), "balance");
    assert_true(json_is_integer(value));
    return json_integer_value(value);
}

static void test_no_saved_view(void **state)
{
    fixture *f = *state;
    arb_client *client = open_alice(f->path);
    assert_int_equal(arb_client_subscribe(client, "ledger:x"), 0);
    uint64_t version = 99;
    assert_null(arb_client_view(client, "ledger:x", &version));
    assert_int_equal(version, 0);
    assert_null(arb_client_confirmed(client, "ledger:x", &version));
    assert_int_equal(version, 0);
    /* A proposal is pending, and not applied: there is nothing to apply it to. */
    propose_ok(client, "ledger:x", "transfer", "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":1}", 0);
    arb_client_pending pending;
    assert_int_equal(arb_client_pending_at(client, 0, &pending), 0);
    assert_false(pending.applied);
    assert_null(arb_client_view(client, "ledger:x", NULL));
    arb_client_destroy(client);
}

static void test_saved_view_shown_offline(void **state)
{
    fixture *f = *state;
    arb_client_destroy(open_alice(f->path));
    save_view(f->path, "ledger:x", 7, ledger_view);
    json_t *expected = json_loads(ledger_view, 0, NULL);
    assert_non_null(expected);

    arb_client *client = open_alice(f->path);
    assert_int_equal(arb_client_subscribe(client, "ledger:x"), 0);
    uint64_t version = 0;
    json_t *view = arb_client_view(client, "ledger:x", &version);
    assert_non_null(view);
    assert_int_equal(version, 7);
    assert_true(json_equal(view, expected));
    json_decref(view);
    json_t *confirmed = arb_client_confirmed(client, "ledger:x", &version);
    assert_true(json_equal(confirmed, expected));
    json_decref(confirmed);

    /* An optimistic transfer shows in the view at once, not in confirmed. */
    propose_ok(client, "ledger:x", "transfer", "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":100}",
               ARB_POLICY_OPTIMISTIC);
    view = arb_client_view(client, "ledger:x", &version);
    assert_int_equal(balance_of(view, "a1"), 900);
    assert_int_equal(balance_of(view, "b1"), 600);
    json_decref(view);
    confirmed = arb_client_confirmed(client, "ledger:x", NULL);
    assert_int_equal(balance_of(confirmed, "a1"), 1000);
    json_decref(confirmed);
    arb_client_destroy(client);

    /* After a restart: the saved view and the proposal on it, offline. */
    client = open_alice(f->path);
    assert_int_equal(arb_client_subscribe(client, "ledger:x"), 0);
    view = arb_client_view(client, "ledger:x", &version);
    assert_non_null(view);
    assert_int_equal(version, 7);
    assert_int_equal(balance_of(view, "a1"), 900);
    json_decref(view);
    arb_client_pending pending;
    assert_int_equal(arb_client_pending_at(client, 0, &pending), 0);
    assert_true(pending.applied);
    assert_int_equal(pending.predicted_code, 0);

    /* Another stream's view is not this one's. */
    assert_int_equal(arb_client_subscribe(client, "ledger:y"), 0);
    assert_null(arb_client_view(client, "ledger:y", NULL));

    /* Unsubscribing forgets the saved view too. */
    assert_int_equal(arb_client_unsubscribe(client, "ledger:x"), 0);
    arb_client_destroy(client);
    client = open_alice(f->path);
    assert_int_equal(arb_client_subscribe(client, "ledger:x"), 0);
    assert_null(arb_client_view(client, "ledger:x", NULL));
    arb_client_destroy(client);
    json_decref(expected);
}

static void test_corrupt_saved_views_ignored(void **state)
{
    fixture *f = *state;
    arb_client_destroy(open_alice(f->path));
    static const struct {
        const char *stream;
        int64_t seq;
        const char *view;
    } bad[] = {
        {"ledger:a", 7, "not json"},
        {"ledger:b", 7, "[]"},
        {"ledger:c", 7, "{\"accounts\":{}}"},
        {"ledger:d", 0, ledger_view},
        {"ledger:e", -3, ledger_view},
        {"ledger:f", 9007199254740992, ledger_view},
        {"ledger:g", 7,
         "{\"format\":1,\"max_transfer\":100000,\"accounts\":{},\"pending\":{},\"totals\":{}}"},
        {"ledger:h", 7,
         "{\"max_transfer\":100000,\"accounts\":{\"a1\":{\"owner\":\"alice\",\"currency\":"
         "\"EUR\",\"balance\":1000,\"held\":5,\"overdraft_limit\":0,\"version\":6}},"
         "\"pending\":{},\"totals\":{\"EUR\":{\"deposited\":1000,\"withdrawn\":0}}}"},
        {"ledger:i", 2, ledger_view}, /* versions beyond the view's seq */
        {"shop:a", 7, ledger_view},
        {"shop:b", 7, "{\"items\":{},\"reservations\":{},\"x\":1}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        save_view(f->path, bad[i].stream, bad[i].seq, bad[i].view);
    sql_exec(f->path, "INSERT INTO views VALUES('ledger:j', 7, X'7B7D00')");
    sql_exec(f->path, "INSERT INTO views VALUES('ledger:k', 'seven', '{}')");

    arb_client *client = open_alice(f->path);
    const char *streams[] = {"ledger:a", "ledger:b", "ledger:c", "ledger:d", "ledger:e",
                             "ledger:f", "ledger:g", "ledger:h", "ledger:i", "shop:a",
                             "shop:b",   "ledger:j", "ledger:k"};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        assert_int_equal(arb_client_subscribe(client, streams[i]), 0);
        uint64_t version = 99;
        json_t *view = arb_client_view(client, streams[i], &version);
        if (view != NULL) {
            json_decref(view);
            fail_msg("the saved view of %s was shown", streams[i]);
        }
        assert_int_equal(version, 0);
        propose_ok(client, streams[i], "transfer", "{\"amount\":1}", 0);
    }
    assert_int_equal(arb_client_pending_count(client), sizeof streams / sizeof streams[0]);
    arb_client_destroy(client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_proposals_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_seq_increases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_proposals_queue_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_clients_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_is_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_row_edits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_saved_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saved_view_shown_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_saved_views_ignored, setup, teardown),
    };
    return cmocka_run_group_tests_name("client outbox", tests, NULL, NULL);
}
