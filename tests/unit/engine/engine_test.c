/*
 * engine_test.c - the engine through its public API on a real SQLite store:
 * total order, idempotency, optimistic concurrency, stream creation,
 * recovery (with and without snapshots), timers, tamper detection, and a
 * randomized run with restarts and resends.
 */
#include "engine_fixture.h"

#include "store/sqlite_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L ENGINE_FIXTURE_LEDGER

static void test_seq_is_contiguous(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    uint64_t expected = 4; /* a: open + deposit, b: open */
    for (uint64_t i = 1; i <= 20; i++) {
        arb_outcome out;
        int code = engine_fixture_transfer(f, &out, i, 10);
        assert_int_equal(code, 0);
        assert_int_equal(out.seq_first, expected);
        assert_int_equal(out.seq_last, expected);
        assert_int_equal(out.event_count, 1);
        assert_int_equal(out.events[0].seq, expected);
        expected++;
        arb_outcome_clear(&out);
    }
    json_t *events = NULL;
    assert_int_equal(arb_engine_events(f->engine, L, 0, 0, &events), 0);
    assert_int_equal(json_array_size(events), expected - 1);
    for (size_t i = 0; i < json_array_size(events); i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(events, i), "seq")),
                         i + 1);
    json_decref(events);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 200);
}

static void test_resend_committed_is_replayed(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    arb_outcome first, again;
    assert_int_equal(engine_fixture_transfer(f, &first, 7, 30), 0);
    assert_false(first.replay);
    assert_int_equal(engine_fixture_transfer(f, &again, 7, 30), 0);
    assert_true(again.replay);
    assert_int_equal(again.seq_first, first.seq_first);
    assert_true(json_equal(again.result, first.result) || (!again.result && !first.result));
    assert_int_equal(engine_fixture_balance(f, L, "b"), 30);
    arb_outcome_clear(&first);
    arb_outcome_clear(&again);
    /* And after a restart the stored outcome answers. */
    engine_fixture_reopen(f);
    assert_int_equal(engine_fixture_transfer(f, &again, 7, 30), 0);
    assert_true(again.replay);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 30);
    arb_outcome_clear(&again);
}

static void test_resend_rejected_is_same_rejection(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 10);
    arb_outcome out;
    assert_int_equal(engine_fixture_transfer(f, &out, 1, 50), ARB_EINSUFFICIENT_FUNDS);
    uint64_t version = out.version;
    arb_outcome_clear(&out);
    /* Funds arrive; the retry must still get the original answer. */
    assert_int_equal(
        engine_fixture_admin_propose(f, L, "deposit", "{s:s,s:i}", "account", "a", "amount", 100),
        0);
    engine_fixture_reopen(f);
    assert_int_equal(engine_fixture_transfer(f, &out, 1, 50), ARB_EINSUFFICIENT_FUNDS);
    assert_true(out.replay);
    assert_int_equal(out.version, version);
    arb_outcome_clear(&out);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 0);
}

static void test_duplicate_inside_one_batch(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    arb_command commands[3];
    arb_outcome outcomes[3];
    for (int i = 0; i < 3; i++)
        test_command(&commands[i], "alice", ARB_ROLE_USER, i == 2 ? 2 : 1, L, "transfer",
                     "{s:s,s:s,s:i}", "from", "a", "to", "b", "amount", 5);
    assert_int_equal(arb_engine_execute(f->engine, commands, 3, outcomes), 0);
    assert_false(outcomes[0].replay);
    assert_true(outcomes[1].replay);
    assert_int_equal(outcomes[1].seq_first, outcomes[0].seq_first);
    assert_false(outcomes[2].replay);
    assert_int_equal(outcomes[2].seq_first, outcomes[0].seq_first + 1);
    for (int i = 0; i < 3; i++) {
        arb_outcome_clear(&outcomes[i]);
        arb_command_clear(&commands[i]);
    }
    assert_int_equal(engine_fixture_balance(f, L, "b"), 10);
}

static void test_key_reused_with_other_content(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    assert_int_equal(engine_fixture_transfer(f, NULL, 3, 5), 0);
    assert_int_equal(engine_fixture_transfer(f, NULL, 3, 500), ARB_EIDEMPOTENCY_KEY_REUSED);
    engine_fixture_reopen(f);
    assert_int_equal(engine_fixture_transfer(f, NULL, 3, 6), ARB_EIDEMPOTENCY_KEY_REUSED);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 5);
}

static void test_expect_version(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    arb_command command;
    arb_outcome out;
    test_command(&command, "alice", ARB_ROLE_USER, 1, L, "transfer", "{s:s,s:s,s:i}", "from", "a",
                 "to", "b", "amount", 5);
    command.has_expect = true;
    command.expect = 2; /* the stream is at 3 */
    test_exec(f->engine, &command, &out);
    assert_int_equal(out.kind, ARB_OUTCOME_REJECTED);
    assert_int_equal(out.code, ARB_EVERSION_CONFLICT);
    assert_int_equal(json_integer_value(json_object_get(out.details, "version")), 3);
    arb_outcome_clear(&out);
    arb_command_clear(&command);
    test_command(&command, "alice", ARB_ROLE_USER, 2, L, "transfer", "{s:s,s:s,s:i}", "from", "a",
                 "to", "b", "amount", 5);
    command.has_expect = true;
    command.expect = 3;
    test_exec(f->engine, &command, &out);
    assert_int_equal(out.kind, ARB_OUTCOME_COMMITTED);
    arb_outcome_clear(&out);
    arb_command_clear(&command);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 5);
}

static void test_stream_creation(void **state)
{
    engine_fixture *f = *state;
    assert_int_equal(test_propose(f->engine, NULL, "u", ARB_ROLE_USER, 1, "ledger:other",
                                  "open_account", "{s:s,s:s,s:s}", "account", "x", "owner", "u",
                                  "currency", "EUR"),
                     ARB_ESTREAM_NOT_FOUND);
    assert_int_equal(
        test_propose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, 1, "nokind:x", "open_account", "{}"),
        ARB_EUNKNOWN_KIND);
    assert_int_equal(test_propose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, 2, "ledger:bad name",
                                  "open_account", "{}"),
                     ARB_EINVALID_STREAM);
    assert_int_equal(
        test_propose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, 3, "Ledger:x", "open_account", "{}"),
        ARB_EINVALID_STREAM);
    assert_int_equal(test_propose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, 4, "ledger:other",
                                  "open_account", "{s:s,s:s,s:s}", "account", "x", "owner", "u",
                                  "currency", "EUR"),
                     0);
    json_t *streams = NULL;
    assert_int_equal(arb_engine_streams(f->engine, &streams), 0);
    assert_int_equal(json_array_size(streams), 1);
    assert_string_equal(json_string_value(json_array_get(streams, 0)), "ledger:other");
    json_decref(streams);
}

static void test_invalid_keys(void **state)
{
    engine_fixture *f = *state;
    assert_int_equal(test_propose(f->engine, NULL, "alice", ARB_ROLE_USER, 0, L, "transfer", "{}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(test_propose(f->engine, NULL, "$system", ARB_ROLE_USER, 1, L, "expire", "{}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(test_propose(f->engine, NULL, "bad id", ARB_ROLE_USER, 1, L, "x", "{}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(test_propose(f->engine, NULL, "alice", ARB_ROLE_ADMIN, 1, L, "deposit",
                                  "{s:s,s:f}", "account", "a", "amount", 1.5),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(test_propose(f->engine, NULL, "alice", ARB_ROLE_USER,
                                  (uint64_t)ARB_JSON_INT_MAX + 1, L, "transfer", "{}"),
                     ARB_EINVALID_ARGUMENT);
}

static void test_hold_expires_by_timer_and_across_restart(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    arb_outcome out;
    assert_int_equal(test_propose(f->engine, &out, "alice", ARB_ROLE_USER, 1, L, "hold",
                                  "{s:s,s:s,s:i,s:i}", "from", "a", "to", "b", "amount", 100,
                                  "timeout_s", 10),
                     0);
    char pending[64];
    snprintf(pending, sizeof pending, "%s",
             json_string_value(json_object_get(out.result, "pending")));
    arb_outcome_clear(&out);
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 10000);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 900);
    size_t fired = 0;
    f->clock.now_ms += 5000;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 0);
    /* The server stops; the deadline passes while it is down. */
    engine_fixture_reopen(f);
    f->clock.now_ms += 60000;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 1);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 1000);
    assert_int_equal(test_propose(f->engine, NULL, "alice", ARB_ROLE_USER, 2, L, "capture", "{s:s}",
                                  "pending", pending),
                     ARB_EPENDING_EXPIRED);
    json_t *st = test_state(f->engine, L, NULL);
    json_t *hold = json_object_get(json_object_get(st, "pending"), pending);
    assert_string_equal(json_string_value(json_object_get(hold, "status")), "expired");
    json_decref(st);
    assert_int_equal(arb_engine_next_deadline(f->engine), INT64_MAX);
}

/* The poker turn clock through the engine: the deadline evolve reports is
 * a timer, whose system proposal (timeout) the tick commits to the log;
 * rebuilt after a restart from the snapshot or the replay. */
static void test_poker_turn_clock_by_timer(void **state)
{
    engine_fixture *f = *state;
    const char *T = "table:clock";
    assert_int_equal(
        engine_fixture_admin_propose(f, T, "create_table", "{s:s,s:i,s:i,s:i,s:i,s:i,s:i}", "table",
                                     "clock", "seats", 2, "small_blind", 1, "big_blind", 2,
                                     "buy_in_min", 100, "buy_in_max", 1000, "turn_s", 20),
        0);
    assert_int_equal(test_propose(f->engine, NULL, "ann", ARB_ROLE_USER, 1, T, "sit", "{s:i,s:i}",
                                  "seat", 0, "buy_in", 500),
                     0);
    assert_int_equal(test_propose(f->engine, NULL, "bob", ARB_ROLE_USER, 1, T, "sit", "{s:i,s:i}",
                                  "seat", 1, "buy_in", 500),
                     0);
    /* The hand started; the button (seat 0, ann) is on the clock. */
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 20000);
    uint64_t version = engine_fixture_version(f, T);
    engine_fixture_reopen(f); /* the deadline comes back after a restart */
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 20000);
    size_t fired = 0;
    f->clock.now_ms += 19999;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 0);
    f->clock.now_ms += 1;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 1);
    assert_true(engine_fixture_version(f, T) > version);
    json_t *st = test_state(f->engine, T, NULL);
    json_t *ann = json_array_get(json_object_get(st, "seats"), 0);
    assert_int_equal(json_integer_value(json_object_get(ann, "timeouts")), 1);
    json_decref(st);
    /* ann folded to the clock; the next hand's turn is on the clock again.
     * Played in time, that turn's timer is dropped when it falls due:
     * nothing is proposed, nothing logged. */
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 20000);
    json_t *table = test_state(f->engine, T, NULL);
    json_int_t to_act = json_integer_value(json_object_get(table, "to_act"));
    json_decref(table);
    assert_int_equal(test_propose(f->engine, NULL, to_act == 0 ? "ann" : "bob", ARB_ROLE_USER, 2, T,
                                  "call", "{}"),
                     0);
    version = engine_fixture_version(f, T);
    f->clock.now_ms += 20000;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    /* Both deadlines fell due at once: one proposal, for the running turn;
     * the overtaken one was dropped. */
    assert_int_equal(fired, 1);
    assert_true(engine_fixture_version(f, T) > version);
    /* verify re-derived both hands' decks from their seeds: its report
     * counts them. */
    arb_verify_report report;
    engine_fixture_verify(f, &report);
    assert_non_null(report.proofs[0].name);
    assert_string_equal(report.proofs[0].name, "fair_hands");
    assert_true(report.proofs[0].count >= 2);
    assert_null(report.proofs[1].name);
}

static void test_timer_restored_from_snapshot(void **state)
{
    engine_fixture *f = *state;
    f->snapshot_every = 1;
    engine_fixture_reopen(f);
    engine_fixture_two_accounts(f, 1000);
    assert_int_equal(test_propose(f->engine, NULL, "alice", ARB_ROLE_USER, 1, L, "hold",
                                  "{s:s,s:s,s:i,s:i}", "from", "a", "to", "b", "amount", 100,
                                  "timeout_s", 30),
                     0);
    assert_int_equal(engine_fixture_transfer(f, NULL, 2, 1), 0);
    engine_fixture_reopen(f); /* state now comes from the snapshot at seq 5, not from replay */
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 30000);
    f->clock.now_ms += 30000;
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 1);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 999);
    arb_verify_report report;
    assert_int_equal(arb_verify(f->dir, 1, &report), 0);
    assert_true(report.snapshots_compared >= 1);
}

/* raw_sql for the outcomes: the changed rows then get a matching checksum
 * (as if the tampering knew the store's format), so what is tested is
 * verify's comparison of outcomes with the log, not the checksum. */
static void raw_sql(const char *dir, const char *sql);
static void raw_sql_rechecksummed(const char *dir, const char *sql)
{
    raw_sql(dir, sql);
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE outcomes SET checksum = NULL", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(arb__sqlite_fill_checksums(db), SQLITE_OK);
    sqlite3_close(db);
}

static void raw_sql(const char *dir, const char *sql)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *error = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &error);
    if (rc != SQLITE_OK)
        fail_msg("sql: %s", error);
    assert_int_equal(sqlite3_changes(db) > 0, 1);
    sqlite3_close(db);
}

/* The newest snapshot of stream L: its seq and size (0 when none). */
static uint64_t newest_snapshot(const char *dir, size_t *bytes_out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *statement = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT seq, length(state) FROM snapshots WHERE stream = ?1 "
                           "ORDER BY seq DESC LIMIT 1",
                           -1, &statement, NULL),
        SQLITE_OK);
    sqlite3_bind_text(statement, 1, L, -1, SQLITE_STATIC);
    uint64_t seq = 0;
    *bytes_out = 0;
    if (sqlite3_step(statement) == SQLITE_ROW) {
        seq = (uint64_t)sqlite3_column_int64(statement, 0);
        *bytes_out = (size_t)sqlite3_column_int64(statement, 1);
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return seq;
}

/* A large state is snapshotted less often: after at least its snapshot's
 * bytes / ARB_SNAPSHOT_BYTES_PER_EVENT events, however small snapshot_every. */
static void test_snapshot_spacing_grows_with_the_state(void **state)
{
    engine_fixture *f = *state;
    f->snapshot_every = 1;
    engine_fixture_reopen(f);
    for (int i = 0; i < 300; i++) {
        char account[16];
        snprintf(account, sizeof account, "acct%03d", i);
        assert_int_equal(engine_fixture_admin_propose(f, L, "open_account", "{s:s,s:s,s:s}",
                                                      "account", account, "owner", "alice",
                                                      "currency", "EUR"),
                         0);
    }
    size_t bytes = 0;
    uint64_t first = newest_snapshot(f->dir, &bytes);
    uint64_t spacing = bytes / ARB_SNAPSHOT_BYTES_PER_EVENT;
    assert_true(spacing > 2); /* the state outgrew snapshot_every = 1 */
    /* One event short of the spacing: no new snapshot; then one more. */
    uint64_t version = engine_fixture_version(f, L);
    for (uint64_t i = version - first; i + 1 < spacing; i++)
        assert_int_equal(engine_fixture_admin_propose(f, L, "deposit", "{s:s,s:i}", "account",
                                                      "acct000", "amount", 1),
                         0);
    size_t ignored = 0;
    assert_int_equal(newest_snapshot(f->dir, &ignored), first);
    assert_int_equal(engine_fixture_admin_propose(f, L, "deposit", "{s:s,s:i}", "account",
                                                  "acct000", "amount", 1),
                     0);
    assert_int_equal(engine_fixture_admin_propose(f, L, "deposit", "{s:s,s:i}", "account",
                                                  "acct000", "amount", 1),
                     0); /* the snapshot is taken with the pipeline drained, at the next call */
    assert_true(newest_snapshot(f->dir, &ignored) > first);
    engine_fixture_reopen(f);
    arb_verify_report report;
    assert_int_equal(arb_verify(f->dir, 1, &report), 0);
}

static void test_tampering_is_detected(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    for (uint64_t i = 1; i <= 10; i++)
        assert_int_equal(engine_fixture_transfer(f, NULL, i, 1), 0);
    arb_verify_report report;
    engine_fixture_verify(f, &report);
    assert_int_equal(report.events, 13);
    raw_sql(f->dir, "UPDATE events SET data = replace(data, '\"amount\":1', '\"amount\":9') "
                    "WHERE stream = 'ledger:main' AND seq = 9");
    assert_int_equal(arb_verify(f->dir, 1, &report), ARB_ECORRUPT);
    assert_string_equal(report.stream, L);
    assert_int_equal(report.seq, 9);
    arb_engine_config config = {.data_dir = f->dir};
    arb_engine *engine = NULL;
    assert_int_equal(arb_engine_open(&config, &engine), ARB_ECORRUPT);
    assert_null(engine);
    /* A removed event is a gap. */
    raw_sql(f->dir, "UPDATE events SET data = replace(data, '\"amount\":9', '\"amount\":1') "
                    "WHERE stream = 'ledger:main' AND seq = 9");
    assert_int_equal(arb_verify(f->dir, 1, &report), 0);
    raw_sql(f->dir, "DELETE FROM events WHERE stream = 'ledger:main' AND seq = 12");
    assert_int_equal(arb_verify(f->dir, 1, &report), ARB_ECORRUPT);
    assert_int_equal(report.seq, 12);
    assert_int_equal(arb_engine_open(&config, &engine), ARB_ECORRUPT);
}

/* An event the newest snapshot stands for is not replayed at start-up, but
 * it is chained: changing it (here its client_seq column, which no state
 * depends on) still stops the start, as verify fails. */
static void test_tampering_before_the_snapshot_is_detected(void **state)
{
    engine_fixture *f = *state;
    f->snapshot_every = 1;
    engine_fixture_reopen(f);
    engine_fixture_two_accounts(f, 1000);
    for (uint64_t i = 1; i <= 10; i++)
        assert_int_equal(engine_fixture_transfer(f, NULL, i, 1), 0);
    engine_fixture_verify(f, NULL); /* closed, and whole */
    size_t bytes = 0;
    assert_true(newest_snapshot(f->dir, &bytes) > 5);
    raw_sql(f->dir, "UPDATE events SET client_seq = client_seq + 1000 "
                    "WHERE stream = 'ledger:main' AND seq = 5");
    arb_verify_report report;
    assert_int_equal(arb_verify(f->dir, 1, &report), ARB_ECORRUPT);
    assert_int_equal(report.seq, 5);
    arb_engine_config config = {.data_dir = f->dir};
    arb_engine *engine = NULL;
    assert_int_equal(arb_engine_open(&config, &engine), ARB_ECORRUPT);
    assert_null(engine);
}

static void test_on_commit_sees_events_in_order(void **state);
static void test_verify_checks_outcomes(void **state);
static void test_pipelined_submit(void **state);

int main(void)
{
    const struct CMUnitTest tests[] = {
        ENGINE_FIXTURE_TEST(test_seq_is_contiguous),
        ENGINE_FIXTURE_TEST(test_resend_committed_is_replayed),
        ENGINE_FIXTURE_TEST(test_resend_rejected_is_same_rejection),
        ENGINE_FIXTURE_TEST(test_duplicate_inside_one_batch),
        ENGINE_FIXTURE_TEST(test_key_reused_with_other_content),
        ENGINE_FIXTURE_TEST(test_expect_version),
        ENGINE_FIXTURE_TEST(test_stream_creation),
        ENGINE_FIXTURE_TEST(test_invalid_keys),
        ENGINE_FIXTURE_TEST(test_hold_expires_by_timer_and_across_restart),
        ENGINE_FIXTURE_TEST(test_timer_restored_from_snapshot),
        ENGINE_FIXTURE_TEST(test_snapshot_spacing_grows_with_the_state),
        ENGINE_FIXTURE_TEST(test_tampering_is_detected),
        ENGINE_FIXTURE_TEST(test_tampering_before_the_snapshot_is_detected),
        ENGINE_FIXTURE_TEST(test_poker_turn_clock_by_timer),
        ENGINE_FIXTURE_TEST(test_on_commit_sees_events_in_order),
        ENGINE_FIXTURE_TEST(test_pipelined_submit),
        ENGINE_FIXTURE_TEST(test_verify_checks_outcomes),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}

typedef struct seen {
    uint64_t next_seq;
    size_t calls;
} seen;

static void on_commit(void *user, const arb_event *events, size_t count)
{
    seen *s = user;
    s->calls++;
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(events[i].seq, s->next_seq);
        s->next_seq++;
    }
}

static void reopen_with_on_commit(engine_fixture *f, seen *s)
{
    arb_engine_close(f->engine);
    arb_engine_config config = {.data_dir = f->dir,
                                .clock_ms = test_clock_ms,
                                .clock_user = &f->clock,
                                .on_commit = on_commit,
                                .on_commit_user = s};
    assert_int_equal(arb_engine_open(&config, &f->engine), 0);
}

static void test_on_commit_sees_events_in_order(void **state)
{
    engine_fixture *f = *state;
    seen s = {.next_seq = 1};
    reopen_with_on_commit(f, &s);
    engine_fixture_two_accounts(f, 1000);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.next_seq, 4);
}

/* Submit decides at once and commits in the background: a resend in the next
 * batch finds the outcome of the batch still in flight, on_commit runs in
 * order and only for durable batches, and a reopen sees everything. */
static void test_pipelined_submit(void **state)
{
    engine_fixture *f = *state;
    seen s = {.next_seq = 1};
    reopen_with_on_commit(f, &s);
    engine_fixture_two_accounts(f, 1000);
    arb_command first[2], second[2];
    arb_outcome out1[2], out2[2];
    for (int i = 0; i < 2; i++)
        test_command(&first[i], "alice", ARB_ROLE_USER, (uint64_t)i + 1, L, "transfer",
                     "{s:s,s:s,s:i}", "from", "a", "to", "b", "amount", 10);
    assert_int_equal(arb_engine_submit(f->engine, first, 2, out1), 0);
    assert_int_equal(s.next_seq, 4); /* decided, not yet reported as durable */
    test_command(&second[0], "alice", ARB_ROLE_USER, 2, L, "transfer", "{s:s,s:s,s:i}", "from", "a",
                 "to", "b", "amount", 10);
    test_command(&second[1], "alice", ARB_ROLE_USER, 3, L, "transfer", "{s:s,s:s,s:i}", "from", "a",
                 "to", "b", "amount", 10);
    assert_int_equal(arb_engine_submit(f->engine, second, 2, out2), 0);
    assert_int_equal(s.next_seq, 6); /* the first batch is durable now */
    assert_true(out2[0].replay);
    assert_int_equal(out2[0].seq_first, out1[1].seq_first);
    assert_false(out2[1].replay);
    assert_int_equal(out2[1].seq_first, 6);
    assert_int_equal(arb_engine_flush(f->engine), 0);
    assert_int_equal(s.next_seq, 7);
    for (int i = 0; i < 2; i++) {
        arb_command_clear(&first[i]);
        arb_command_clear(&second[i]);
        arb_outcome_clear(&out1[i]);
        arb_outcome_clear(&out2[i]);
    }
    engine_fixture_reopen(f);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 30);
}

/* Acknowledged outcomes and the log must agree: an outcome row removed (an
 * event nobody was told about), or one whose range points at other events
 * (an acknowledgement without its effect), fails verify. */
static void test_verify_checks_outcomes(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    for (uint64_t i = 1; i <= 3; i++)
        assert_int_equal(engine_fixture_transfer(f, NULL, i, 1), 0);
    assert_int_equal(engine_fixture_transfer(f, NULL, 4, 5000), ARB_EINSUFFICIENT_FUNDS);
    arb_verify_report report;
    engine_fixture_verify(f, &report);
    assert_int_equal(report.outcomes, 7); /* 3 admin, 3 transfers, 1 rejection */
    /* Changed as a bit flip would: the row's checksum no longer matches. */
    raw_sql(f->dir, "UPDATE outcomes SET seq_first = 4, seq_last = 4 "
                    "WHERE client_id = 'alice' AND client_seq = 2");
    assert_int_equal(arb_verify(f->dir, 1, &report), ARB_ECORRUPT);
    assert_non_null(strstr(report.why, "checksum"));
    /* (A server that reads that row to answer a resend stops rather than
     * answer from it: execute.c; storage_fault_test drives it.) */
    /* Changed with a matching checksum: verify still sees the range lie. */
    raw_sql_rechecksummed(f->dir, "UPDATE outcomes SET seq_first = 4, seq_last = 4 "
                                  "WHERE client_id = 'alice' AND client_seq = 2");
    assert_int_equal(arb_verify(f->dir, 1, &report), ARB_ECORRUPT);
    assert_int_equal(report.seq, 4);
    assert_non_null(strstr(report.why, "alice/2"));
    raw_sql_rechecksummed(f->dir, "UPDATE outcomes SET seq_first = 5, seq_last = 5 "
                                  "WHERE client_id = 'alice' AND client_seq = 2");
    assert_int_equal(arb_verify(f->dir, 1, &report), 0);
    raw_sql(f->dir, "DELETE FROM outcomes WHERE client_id = 'alice' AND client_seq = 3");
    assert_int_equal(arb_verify(f->dir, 1, &report), ARB_ECORRUPT);
    assert_non_null(strstr(report.why, "cover 5 events but the log holds 6"));
    raw_sql_rechecksummed(
        f->dir, "UPDATE outcomes SET seq_last = 99 WHERE client_id = 'alice' AND client_seq = 1");
    assert_int_equal(arb_verify(f->dir, 1, &report), ARB_ECORRUPT);
    assert_non_null(strstr(report.why, "not in the log"));
}
