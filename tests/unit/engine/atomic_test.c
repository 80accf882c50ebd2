/*
 * atomic_test.c - all-or-nothing groups (arb_engine_execute_atomic) through
 * the public API on a real SQLite store: a group that commits, a group that
 * aborts and leaves nothing behind (events, state, versions, streams,
 * timers), resends of both, groups that depend on their own proposals, span
 * streams, hold duplicates or bad keys, or mix in proposals decided before;
 * and a randomized run against a simple all-or-nothing model of the ledger.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L "ledger:main"
#define OTHER "ledger:other"

typedef struct fixture {
    char *dir;
    test_clock clock;
    uint32_t snapshot_every;
    arb_engine *engine;
    uint64_t admin_seq;
} fixture;

static void open_engine(fixture *f)
{
    arb_engine_config config = {.data_dir = f->dir,
                                .clock_ms = test_clock_ms,
                                .clock_user = &f->clock,
                                .snapshot_every = f->snapshot_every};
    assert_int_equal(arb_engine_open(&config, &f->engine), 0);
}

static void reopen(fixture *f)
{
    arb_engine_close(f->engine);
    open_engine(f);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_mkdtemp("atomic");
    f->clock.now_ms = 1700000000000;
    open_engine(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    arb_engine_close(f->engine);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* a (alice's, funded with amount) and b (bob's, empty) on L: seqs 1..3
 * (1..2 when amount is 0). */
static void two_accounts(fixture *f, long amount)
{
    const char *owners[2] = {"alice", "bob"};
    const char *accounts[2] = {"a", "b"};
    for (int i = 0; i < 2; i++)
        assert_int_equal(test_propose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L,
                                      "open_account", "{s:s,s:s,s:s}", "account", accounts[i],
                                      "owner", owners[i], "currency", "EUR"),
                         0);
    if (amount > 0)
        assert_int_equal(test_propose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L,
                                      "deposit", "{s:s,s:I}", "account", "a", "amount",
                                      (json_int_t)amount),
                         0);
}

/* alice's transfer of amount from a to b as client_seq seq (not executed). */
static void transfer_command(arb_command *command, uint64_t seq, long amount)
{
    test_command(command, "alice", ARB_ROLE_USER, seq, L, "transfer", "{s:s,s:s,s:I}", "from", "a",
                 "to", "b", "amount", (json_int_t)amount);
}

static void run_atomic(fixture *f, const arb_command *commands, size_t count, arb_outcome *outcomes)
{
    assert_int_equal(arb_engine_execute_atomic(f->engine, commands, count, outcomes), 0);
    for (size_t i = 0; i < count; i++)
        assert_true(outcomes[i].kind == ARB_OUTCOME_COMMITTED ||
                    outcomes[i].kind == ARB_OUTCOME_REJECTED);
}

static void clear_all(arb_command *commands, arb_outcome *outcomes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (commands != NULL)
            arb_command_clear(&commands[i]);
        if (outcomes != NULL)
            arb_outcome_clear(&outcomes[i]);
    }
}

static json_int_t balance_in(fixture *f, const char *stream, const char *account)
{
    json_t *state = test_state(f->engine, stream, NULL);
    json_t *acct = json_object_get(json_object_get(state, "accounts"), account);
    assert_non_null(acct);
    json_int_t value = json_integer_value(json_object_get(acct, "balance"));
    json_decref(state);
    return value;
}

static json_int_t balance(fixture *f, const char *account)
{
    return balance_in(f, L, account);
}

static uint64_t version_of(fixture *f, const char *stream)
{
    uint64_t version = 0;
    json_decref(test_state(f->engine, stream, &version));
    return version;
}

static size_t events_in_log(fixture *f, const char *stream)
{
    json_t *events = NULL;
    assert_int_equal(arb_engine_events(f->engine, stream, 0, 0, &events), 0);
    size_t n = json_array_size(events);
    json_decref(events);
    return n;
}

static void assert_aborted(const arb_outcome *outcome, size_t failed, bool replay)
{
    assert_int_equal(outcome->kind, ARB_OUTCOME_REJECTED);
    assert_int_equal(outcome->code, ARB_EABORTED);
    assert_int_equal(outcome->replay, replay);
    assert_int_equal(json_integer_value(json_object_get(outcome->details, "failed")), failed);
}

static void assert_verify(fixture *f)
{
    arb_engine_close(f->engine);
    f->engine = NULL;
    arb_verify_report report;
    int rc = arb_verify(f->dir, 1, &report);
    if (rc != 0)
        fail_msg("verify: %s seq %llu: %s", report.stream, (unsigned long long)report.seq,
                 report.why);
    open_engine(f);
}

static void test_all_accepted(void **state)
{
    fixture *f = *state;
    two_accounts(f, 1000);
    arb_command commands[3];
    arb_outcome outcomes[3];
    for (size_t i = 0; i < 3; i++)
        transfer_command(&commands[i], i + 1, 100 * ((long)i + 1));
    run_atomic(f, commands, 3, outcomes);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(outcomes[i].kind, ARB_OUTCOME_COMMITTED);
        assert_false(outcomes[i].replay);
        assert_int_equal(outcomes[i].seq_first, 4 + i);
        assert_int_equal(outcomes[i].seq_last, 4 + i);
        assert_int_equal(outcomes[i].event_count, 1);
        assert_int_equal(outcomes[i].events[0].seq, 4 + i);
        assert_int_equal(outcomes[i].events[0].applied_at_ms, f->clock.now_ms);
    }
    clear_all(commands, outcomes, 3);
    assert_int_equal(balance(f, "a"), 400);
    assert_int_equal(balance(f, "b"), 600);
    assert_int_equal(version_of(f, L), 6);
    assert_int_equal(events_in_log(f, L), 6);
    reopen(f);
    assert_int_equal(balance(f, "b"), 600);
    assert_verify(f);
}

/* One group that fails at index 1 of 3: 30 fits, 500 does not, 10 would. */
static void abort_in_the_middle(fixture *f, arb_outcome outcomes[3])
{
    arb_command commands[3];
    transfer_command(&commands[0], 1, 30);
    transfer_command(&commands[1], 2, 500);
    transfer_command(&commands[2], 3, 10);
    run_atomic(f, commands, 3, outcomes);
    clear_all(commands, NULL, 3);
}

static void test_rejected_in_the_middle_applies_nothing(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    json_t *before = test_state(f->engine, L, NULL);
    arb_outcome outcomes[3];
    abort_in_the_middle(f, outcomes);
    assert_aborted(&outcomes[0], 1, false);
    assert_int_equal(outcomes[1].kind, ARB_OUTCOME_REJECTED);
    assert_int_equal(outcomes[1].code, ARB_EINSUFFICIENT_FUNDS);
    assert_false(outcomes[1].replay);
    assert_aborted(&outcomes[2], 1, false);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(outcomes[i].version, 3); /* nothing of the group applied */
        assert_int_equal(outcomes[i].event_count, 0);
        assert_null(outcomes[i].events);
    }
    assert_string_equal(outcomes[0].message, arb_err_message(ARB_EABORTED));
    clear_all(NULL, outcomes, 3);
    json_t *after = test_state(f->engine, L, NULL);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    assert_int_equal(version_of(f, L), 3);
    assert_int_equal(events_in_log(f, L), 3);
    /* The next commit takes the very next seq: no gap was left behind. */
    arb_command command;
    arb_outcome out;
    transfer_command(&command, 4, 5);
    test_exec(f->engine, &command, &out);
    assert_int_equal(out.kind, ARB_OUTCOME_COMMITTED);
    assert_int_equal(out.seq_first, 4);
    arb_outcome_clear(&out);
    arb_command_clear(&command);
    assert_verify(f);
    assert_int_equal(balance(f, "b"), 5);
}

static void test_resend_of_aborted_group_gets_same_rejections(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_outcome first[3], again[3];
    abort_in_the_middle(f, first);
    /* Funds arrive, and the server restarts; the answer must not change. */
    assert_int_equal(test_propose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L,
                                  "deposit", "{s:s,s:i}", "account", "a", "amount", 10000),
                     0);
    reopen(f);
    abort_in_the_middle(f, again);
    for (size_t i = 0; i < 3; i++) {
        assert_true(again[i].replay);
        assert_int_equal(again[i].kind, ARB_OUTCOME_REJECTED);
        assert_int_equal(again[i].code, first[i].code);
        assert_int_equal(again[i].version, first[i].version);
        assert_string_equal(again[i].message, first[i].message);
        assert_true(json_equal(again[i].details, first[i].details) ||
                    (again[i].details == NULL && first[i].details == NULL));
    }
    assert_aborted(&again[0], 1, true);
    assert_aborted(&again[2], 1, true);
    clear_all(NULL, first, 3);
    clear_all(NULL, again, 3);
    assert_int_equal(balance(f, "b"), 0);
    assert_int_equal(version_of(f, L), 4);
}

static void test_resend_of_committed_group_is_replayed(void **state)
{
    fixture *f = *state;
    two_accounts(f, 1000);
    arb_command commands[2];
    arb_outcome first[2], again[2];
    transfer_command(&commands[0], 1, 10);
    transfer_command(&commands[1], 2, 20);
    run_atomic(f, commands, 2, first);
    run_atomic(f, commands, 2, again);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(again[i].kind, ARB_OUTCOME_COMMITTED);
        assert_true(again[i].replay);
        assert_int_equal(again[i].seq_first, first[i].seq_first);
        assert_int_equal(again[i].seq_last, first[i].seq_last);
    }
    clear_all(NULL, again, 2);
    reopen(f);
    run_atomic(f, commands, 2, again);
    assert_true(again[0].replay && again[1].replay);
    clear_all(commands, first, 2);
    clear_all(NULL, again, 2);
    assert_int_equal(balance(f, "b"), 30);
    assert_int_equal(version_of(f, L), 5);
}

/* Each proposal sees the ones before it: open an account, fund it, spend it. */
static void test_group_depends_on_its_own_proposals(void **state)
{
    fixture *f = *state;
    two_accounts(f, 0);
    arb_command commands[4];
    arb_outcome outcomes[4];
    test_command(&commands[0], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L, "open_account",
                 "{s:s,s:s,s:s}", "account", "c", "owner", "carol", "currency", "EUR");
    test_command(&commands[1], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L, "deposit", "{s:s,s:i}",
                 "account", "c", "amount", 100);
    test_command(&commands[2], "carol", ARB_ROLE_USER, 1, L, "transfer", "{s:s,s:s,s:i}", "from",
                 "c", "to", "a", "amount", 70);
    transfer_command(&commands[3], 1, 70); /* alice spends what carol just sent */
    /* Alone, the last one would be refused: a is empty. */
    run_atomic(f, commands, 4, outcomes);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(outcomes[i].kind, ARB_OUTCOME_COMMITTED);
        assert_int_equal(outcomes[i].seq_first, 3 + i);
    }
    clear_all(commands, outcomes, 4);
    assert_int_equal(balance(f, "a"), 0);
    assert_int_equal(balance(f, "b"), 70);
    assert_int_equal(balance(f, "c"), 30);
    assert_verify(f);
}

/* A group over two streams fails on its last proposal: the stream it would
 * have created does not exist, the other is unchanged. */
static void test_group_over_two_streams_aborts_whole(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_command commands[4];
    arb_outcome outcomes[4];
    test_command(&commands[0], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, OTHER, "open_account",
                 "{s:s,s:s,s:s}", "account", "x", "owner", "alice", "currency", "EUR");
    test_command(&commands[1], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, OTHER, "deposit",
                 "{s:s,s:i}", "account", "x", "amount", 500);
    test_command(&commands[2], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L, "deposit", "{s:s,s:i}",
                 "account", "a", "amount", 50);
    test_command(&commands[3], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L, "transfer",
                 "{s:s,s:s,s:i}", "from", "b", "to", "a", "amount", 1);
    run_atomic(f, commands, 4, outcomes);
    for (size_t i = 0; i < 3; i++) {
        assert_aborted(&outcomes[i], 3, false);
        assert_int_equal(outcomes[i].version, i < 2 ? 0 : 3);
    }
    assert_int_equal(outcomes[3].code, ARB_EINSUFFICIENT_FUNDS);
    clear_all(NULL, outcomes, 4);

    json_t *state_json = NULL;
    uint64_t version = 0;
    arb_principal admin = {.id = "test", .role = ARB_ROLE_ADMIN};
    assert_int_equal(arb_engine_state(f->engine, OTHER, &admin, &state_json, &version),
                     ARB_ESTREAM_NOT_FOUND);
    json_t *streams = NULL;
    assert_int_equal(arb_engine_streams(f->engine, &streams), 0);
    assert_int_equal(json_array_size(streams), 1);
    json_decref(streams);
    assert_int_equal(balance(f, "a"), 100);
    assert_int_equal(version_of(f, L), 3);
    reopen(f);
    assert_int_equal(arb_engine_state(f->engine, OTHER, &admin, &state_json, &version),
                     ARB_ESTREAM_NOT_FOUND);
    /* Resent after a restart: the same answers. */
    run_atomic(f, commands, 4, outcomes);
    for (size_t i = 0; i < 3; i++)
        assert_aborted(&outcomes[i], 3, true);
    assert_int_equal(outcomes[3].code, ARB_EINSUFFICIENT_FUNDS);
    assert_true(outcomes[3].replay);
    clear_all(commands, outcomes, 4);
    assert_int_equal(arb_engine_state(f->engine, OTHER, &admin, &state_json, &version),
                     ARB_ESTREAM_NOT_FOUND);
    assert_verify(f);
}

/* The same group over two streams, all accepted: both change, in order. */
static void test_group_over_two_streams_commits(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_command commands[3];
    arb_outcome outcomes[3];
    test_command(&commands[0], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, OTHER, "open_account",
                 "{s:s,s:s,s:s}", "account", "x", "owner", "alice", "currency", "EUR");
    test_command(&commands[1], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, L, "withdraw", "{s:s,s:i}",
                 "account", "a", "amount", 40);
    test_command(&commands[2], "admin", ARB_ROLE_ADMIN, ++f->admin_seq, OTHER, "deposit",
                 "{s:s,s:i}", "account", "x", "amount", 40);
    run_atomic(f, commands, 3, outcomes);
    assert_int_equal(outcomes[0].seq_first, 1);
    assert_int_equal(outcomes[1].seq_first, 4);
    assert_int_equal(outcomes[2].seq_first, 2);
    clear_all(commands, outcomes, 3);
    reopen(f);
    assert_int_equal(balance(f, "a"), 60);
    assert_int_equal(balance_in(f, OTHER, "x"), 40);
    assert_verify(f);
}

/* A hold inside an aborted group must not leave its expiry timer. The next
 * hold gets the same id (p<seq>): a leaked timer would fire against it (the
 * ledger refuses an expire before the hold's own deadline, but a module that
 * trusted its timers would not), and tick would count it in fired. */
static void test_aborted_hold_leaves_no_timer(void **state)
{
    fixture *f = *state;
    two_accounts(f, 1000);
    arb_command commands[2];
    arb_outcome outcomes[2];
    test_command(&commands[0], "alice", ARB_ROLE_USER, 1, L, "hold", "{s:s,s:s,s:i,s:i}", "from",
                 "a", "to", "b", "amount", 100, "timeout_s", 10);
    transfer_command(&commands[1], 2, 5000);
    run_atomic(f, commands, 2, outcomes);
    assert_aborted(&outcomes[0], 1, false);
    assert_int_equal(outcomes[1].code, ARB_EINSUFFICIENT_FUNDS);
    clear_all(commands, outcomes, 2);
    assert_int_equal(arb_engine_next_deadline(f->engine), INT64_MAX);

    arb_outcome out;
    assert_int_equal(test_propose(f->engine, &out, "alice", ARB_ROLE_USER, 3, L, "hold",
                                  "{s:s,s:s,s:i,s:i}", "from", "a", "to", "b", "amount", 50,
                                  "timeout_s", 100),
                     0);
    assert_string_equal(json_string_value(json_object_get(out.result, "pending")), "p4");
    arb_outcome_clear(&out);
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 100000);
    uint64_t version = version_of(f, L);
    f->clock.now_ms += 60000; /* past the aborted hold's 10 s, before the new 100 s */
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 0);
    assert_int_equal(version_of(f, L), version);
    json_t *st = test_state(f->engine, L, NULL);
    json_t *hold = json_object_get(json_object_get(st, "pending"), "p4");
    assert_string_equal(json_string_value(json_object_get(hold, "status")), "pending");
    json_decref(st);
    assert_int_equal(balance(f, "a"), 950);
}

/* And a committed group's hold is armed like any other. */
static void test_committed_hold_is_armed(void **state)
{
    fixture *f = *state;
    two_accounts(f, 1000);
    arb_command commands[2];
    arb_outcome outcomes[2];
    test_command(&commands[0], "alice", ARB_ROLE_USER, 1, L, "hold", "{s:s,s:s,s:i,s:i}", "from",
                 "a", "to", "b", "amount", 100, "timeout_s", 10);
    transfer_command(&commands[1], 2, 10);
    run_atomic(f, commands, 2, outcomes);
    assert_int_equal(outcomes[0].kind, ARB_OUTCOME_COMMITTED);
    assert_int_equal(outcomes[1].kind, ARB_OUTCOME_COMMITTED);
    clear_all(commands, outcomes, 2);
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 10000);
    f->clock.now_ms += 10000;
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 1);
    assert_int_equal(balance(f, "a"), 990);
    assert_int_equal(version_of(f, L), 6);
}

/* Proposals decided before the group are answered from the store and take
 * no part: a stored rejection does not abort the group, a stored commit is
 * not undone by an abort. */
static void test_mixed_with_proposals_decided_before(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_command commands[3];
    arb_outcome outcomes[3];
    arb_outcome committed, rejected;
    transfer_command(&commands[0], 1, 10);
    test_exec(f->engine, &commands[0], &committed);
    assert_int_equal(committed.kind, ARB_OUTCOME_COMMITTED);
    transfer_command(&commands[1], 2, 1000);
    test_exec(f->engine, &commands[1], &rejected);
    assert_int_equal(rejected.code, ARB_EINSUFFICIENT_FUNDS);

    transfer_command(&commands[2], 3, 20);
    run_atomic(f, commands, 3, outcomes);
    assert_true(outcomes[0].replay);
    assert_int_equal(outcomes[0].kind, ARB_OUTCOME_COMMITTED);
    assert_int_equal(outcomes[0].seq_first, committed.seq_first);
    assert_true(outcomes[1].replay);
    assert_int_equal(outcomes[1].code, ARB_EINSUFFICIENT_FUNDS);
    assert_false(outcomes[2].replay);
    assert_int_equal(outcomes[2].kind, ARB_OUTCOME_COMMITTED);
    assert_int_equal(outcomes[2].seq_first, 5);
    clear_all(NULL, outcomes, 3);
    arb_command_clear(&commands[2]);

    /* Now with a new proposal that fails: the stored commit stays a commit. */
    transfer_command(&commands[2], 4, 1000);
    run_atomic(f, commands, 3, outcomes);
    assert_true(outcomes[0].replay);
    assert_int_equal(outcomes[0].kind, ARB_OUTCOME_COMMITTED);
    assert_true(outcomes[1].replay);
    assert_int_equal(outcomes[2].code, ARB_EINSUFFICIENT_FUNDS);
    assert_false(outcomes[2].replay);
    clear_all(commands, outcomes, 3);
    arb_outcome_clear(&committed);
    arb_outcome_clear(&rejected);
    assert_int_equal(balance(f, "b"), 30);
    assert_verify(f);
}

/* A proposal submitted (pipelined, not yet durable) and then resent inside a
 * group is a replay: the group starts from the drained pipeline. */
static void test_after_pipelined_submit(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_command commands[2];
    arb_outcome submitted, outcomes[2];
    transfer_command(&commands[0], 1, 60);
    assert_int_equal(arb_engine_submit(f->engine, &commands[0], 1, &submitted), 0);
    transfer_command(&commands[1], 2, 50); /* 100 - 60 < 50 */
    run_atomic(f, commands, 2, outcomes);
    assert_true(outcomes[0].replay);
    assert_int_equal(outcomes[0].seq_first, submitted.seq_first);
    assert_int_equal(outcomes[1].code, ARB_EINSUFFICIENT_FUNDS);
    clear_all(commands, outcomes, 2);
    arb_outcome_clear(&submitted);
    assert_int_equal(balance(f, "b"), 60);
    assert_verify(f);
}

/* Duplicates inside one group behave as in execute, whatever the group's
 * fate; a key reused for other content is a rejection and aborts. */
static void test_duplicates_inside_the_group(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_command commands[3];
    arb_outcome outcomes[3];
    transfer_command(&commands[0], 1, 10);
    transfer_command(&commands[1], 1, 10);
    transfer_command(&commands[2], 2, 10);
    run_atomic(f, commands, 3, outcomes);
    assert_int_equal(outcomes[0].kind, ARB_OUTCOME_COMMITTED);
    assert_true(outcomes[1].replay);
    assert_int_equal(outcomes[1].kind, ARB_OUTCOME_COMMITTED);
    assert_int_equal(outcomes[1].seq_first, outcomes[0].seq_first);
    assert_int_equal(outcomes[2].seq_first, outcomes[0].seq_first + 1);
    clear_all(commands, outcomes, 3);
    assert_int_equal(balance(f, "b"), 20);

    /* Aborted: the duplicate replays its first occurrence's ABORTED. */
    transfer_command(&commands[0], 3, 10);
    transfer_command(&commands[1], 3, 10);
    transfer_command(&commands[2], 4, 1000);
    run_atomic(f, commands, 3, outcomes);
    assert_aborted(&outcomes[0], 2, false);
    assert_aborted(&outcomes[1], 2, true);
    assert_int_equal(outcomes[2].code, ARB_EINSUFFICIENT_FUNDS);
    clear_all(commands, outcomes, 3);

    /* Same key, other content: IDEMPOTENCY_KEY_REUSED, and the group aborts. */
    transfer_command(&commands[0], 5, 10);
    transfer_command(&commands[1], 5, 11);
    run_atomic(f, commands, 2, outcomes);
    assert_aborted(&outcomes[0], 1, false);
    assert_int_equal(outcomes[1].code, ARB_EIDEMPOTENCY_KEY_REUSED);
    clear_all(NULL, outcomes, 2);
    run_atomic(f, commands, 2, outcomes);
    assert_aborted(&outcomes[0], 1, true);
    assert_int_equal(outcomes[1].code, ARB_EIDEMPOTENCY_KEY_REUSED);
    clear_all(commands, outcomes, 2);
    assert_int_equal(balance(f, "b"), 20);
    assert_verify(f);
}

/* A key that cannot be recorded is a rejection too; the others are kept as
 * ABORTED and answered so again. */
static void test_invalid_key_aborts(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_command commands[3];
    arb_outcome outcomes[3];
    transfer_command(&commands[0], 1, 10);
    transfer_command(&commands[1], 0, 10); /* client_seq 0 */
    transfer_command(&commands[2], 2, 10);
    for (int round = 0; round < 2; round++) {
        run_atomic(f, commands, 3, outcomes);
        assert_aborted(&outcomes[0], 1, round == 1);
        assert_int_equal(outcomes[1].code, ARB_EINVALID_ARGUMENT);
        assert_false(outcomes[1].replay);
        assert_aborted(&outcomes[2], 1, round == 1);
        clear_all(NULL, outcomes, 3);
    }
    clear_all(commands, NULL, 3);
    assert_int_equal(balance(f, "b"), 0);
    assert_int_equal(version_of(f, L), 3);
}

/* The system's rejections are kept in a group (execute drops them). */
static void test_system_rejections_are_recorded(void **state)
{
    fixture *f = *state;
    two_accounts(f, 100);
    arb_command commands[2];
    arb_outcome outcomes[2];
    test_command(&commands[0], "$system", ARB_ROLE_SYSTEM, 100, L, "transfer", "{s:s,s:s,s:i}",
                 "from", "a", "to", "b", "amount", 10);
    test_command(&commands[1], "$system", ARB_ROLE_SYSTEM, 101, L, "transfer", "{s:s,s:s,s:i}",
                 "from", "a", "to", "b", "amount", 1000);
    for (int round = 0; round < 2; round++) {
        run_atomic(f, commands, 2, outcomes);
        assert_aborted(&outcomes[0], 1, round == 1);
        assert_int_equal(outcomes[1].code, ARB_EINSUFFICIENT_FUNDS);
        assert_int_equal(outcomes[1].replay, round == 1);
        clear_all(NULL, outcomes, 2);
    }
    clear_all(commands, NULL, 2);
    assert_int_equal(arb_engine_client_seq_max(f->engine, "$system"), 101);
    reopen(f);
    assert_int_equal(arb_engine_client_seq_max(f->engine, "$system"), 101);
}

/* Snapshots taken after a group are of the group's state; after an aborted
 * one, of the state before it. */
static void test_snapshots_around_groups(void **state)
{
    fixture *f = *state;
    f->snapshot_every = 1;
    reopen(f);
    two_accounts(f, 100);
    arb_outcome outcomes[3];
    abort_in_the_middle(f, outcomes);
    clear_all(NULL, outcomes, 3);
    arb_command commands[2];
    transfer_command(&commands[0], 10, 30);
    transfer_command(&commands[1], 11, 30);
    run_atomic(f, commands, 2, outcomes);
    clear_all(commands, outcomes, 2);
    transfer_command(&commands[0], 12, 1); /* takes the snapshot that was due */
    test_exec(f->engine, &commands[0], &outcomes[0]);
    clear_all(commands, outcomes, 1);
    reopen(f);
    assert_int_equal(balance(f, "b"), 61);
    assert_int_equal(version_of(f, L), 6);
    arb_engine_close(f->engine);
    f->engine = NULL;
    arb_verify_report report;
    assert_int_equal(arb_verify(f->dir, 1, &report), 0);
    assert_true(report.snapshots_compared >= 1);
    open_engine(f);
}

static void test_misuse(void **state)
{
    fixture *f = *state;
    arb_command command;
    arb_outcome out;
    transfer_command(&command, 1, 1);
    assert_int_equal(arb_engine_execute_atomic(f->engine, &command, 0, &out), ARB_ELIMIT);
    assert_int_equal(
        arb_engine_execute_atomic(f->engine, &command, ARB_BATCH_PROPOSALS_MAX + 1, &out),
        ARB_ELIMIT);
    arb_engine_close(f->engine);
    arb_engine_config config = {.data_dir = f->dir, .read_only = true};
    assert_int_equal(arb_engine_open(&config, &f->engine), 0);
    assert_int_equal(arb_engine_execute_atomic(f->engine, &command, 1, &out), ARB_EUSAGE);
    arb_command_clear(&command);
}

static void test_random_groups(void **state);

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_in_the_middle_applies_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resend_of_aborted_group_gets_same_rejections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resend_of_committed_group_is_replayed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_group_depends_on_its_own_proposals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_over_two_streams_aborts_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_over_two_streams_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_hold_leaves_no_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_committed_hold_is_armed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_with_proposals_decided_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_pipelined_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_inside_the_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_key_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_rejections_are_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_around_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_groups, setup, teardown),
    };
    return cmocka_run_group_tests_name("engine atomic", tests, NULL, NULL);
}

/*
 * The randomized run. Two ledgers with ACCOUNTS accounts each (owned in turn
 * by the users), random groups of transfers and holds (by users and the
 * admin), deposits and withdrawals (by the admin), some invalid (bad
 * amounts, missing accounts, someone else's account, too little money), some
 * duplicated inside the group, and whole groups resent later; the clock moves
 * and timers fire; the engine restarts. A model decides each group
 * all-or-nothing with the ledger's order of checks; the engine must agree on
 * every outcome, every seq, every balance and held amount, and on how many
 * timers fire (a timer left by an aborted hold would be one too many).
 */

#define STREAMS 2
#define ACCOUNTS 4
#define USERS 2
#define GROUP_MAX 6
#define GROUPS 400
#define RESENDS_KEPT 32
#define HOLDS_MAX (GROUPS * GROUP_MAX)

enum { MOVE_TRANSFER, MOVE_HOLD, MOVE_DEPOSIT, MOVE_WITHDRAW };

typedef struct books {
    int64_t balance[STREAMS][ACCOUNTS];
    int64_t held[STREAMS][ACCOUNTS];
} books;

typedef struct model_hold {
    size_t stream;
    int from;
    int64_t amount;
    int64_t expires_at_ms;
    bool open;
} model_hold;

typedef struct model {
    books b;
    int64_t deposited[STREAMS];
    int64_t withdrawn[STREAMS];
    uint64_t next_seq[STREAMS];
    model_hold holds[HOLDS_MAX];
    size_t hold_count;
} model;

typedef struct sent_group {
    arb_command commands[GROUP_MAX];
    arb_outcome outcomes[GROUP_MAX];
    size_t count;
} sent_group;

typedef struct world {
    fixture *f;
    uint64_t rng;
    model m;
    uint64_t user_seq[USERS];
    sent_group kept[RESENDS_KEPT];
    size_t kept_count;
    size_t committed_groups, aborted_groups, resends, expired, restarts;
} world;

static const char *stream_name(size_t s)
{
    return s == 0 ? "ledger:r0" : "ledger:r1";
}

static const char *user_name(size_t u)
{
    return u == 0 ? "u0" : "u1";
}

/* A proposal as the model sees it. */
typedef struct move {
    size_t stream;
    int kind;
    int user;     /* -1: the admin */
    int from, to; /* account indexes; ACCOUNTS: an account that does not exist */
    json_int_t amount;
    json_int_t timeout_s; /* holds */
} move;

/* The model's decision for one move against b: 0 (b changed) or a code. */
static int model_decide(const move *mv, books *b)
{
    bool two_accounts_move = mv->kind == MOVE_TRANSFER || mv->kind == MOVE_HOLD;
    if (mv->amount <= 0)
        return ARB_EINVALID_AMOUNT;
    if (mv->from == ACCOUNTS || (two_accounts_move && mv->to == ACCOUNTS))
        return ARB_EACCOUNT_NOT_FOUND;
    int64_t *from = &b->balance[mv->stream][mv->from];
    if (mv->kind == MOVE_DEPOSIT) {
        *from += mv->amount;
        return 0;
    }
    if (two_accounts_move && mv->from == mv->to)
        return ARB_ESELF_TRANSFER;
    if (two_accounts_move && mv->user >= 0 && mv->from % USERS != mv->user)
        return ARB_EFORBIDDEN;
    if (mv->amount > *from)
        return ARB_EINSUFFICIENT_FUNDS;
    *from -= mv->amount;
    if (mv->kind == MOVE_TRANSFER)
        b->balance[mv->stream][mv->to] += mv->amount;
    if (mv->kind == MOVE_HOLD)
        b->held[mv->stream][mv->from] += mv->amount;
    return 0;
}

static void account_name(char out[8], int index)
{
    snprintf(out, 8, "%s%d", index == ACCOUNTS ? "zz" : "a", index);
}

static void move_command(world *w, const move *mv, arb_command *command)
{
    char from[8], to[8];
    account_name(from, mv->from);
    account_name(to, mv->to);
    const char *stream = stream_name(mv->stream);
    const char *client = mv->user >= 0 ? user_name((size_t)mv->user) : "admin";
    arb_role role = mv->user >= 0 ? ARB_ROLE_USER : ARB_ROLE_ADMIN;
    uint64_t seq = mv->user >= 0 ? ++w->user_seq[mv->user] : ++w->f->admin_seq;
    if (mv->kind == MOVE_TRANSFER)
        test_command(command, client, role, seq, stream, "transfer", "{s:s,s:s,s:I}", "from", from,
                     "to", to, "amount", mv->amount);
    else if (mv->kind == MOVE_HOLD)
        test_command(command, client, role, seq, stream, "hold", "{s:s,s:s,s:I,s:I}", "from", from,
                     "to", to, "amount", mv->amount, "timeout_s", mv->timeout_s);
    else
        test_command(command, client, role, seq, stream,
                     mv->kind == MOVE_DEPOSIT ? "deposit" : "withdraw", "{s:s,s:I}", "account",
                     from, "amount", mv->amount);
}

static void random_move(world *w, move *mv, arb_command *command)
{
    mv->stream = test_random_below(&w->rng, STREAMS);
    uint64_t pick = test_random_below(&w->rng, 10);
    mv->kind = pick < 6   ? MOVE_TRANSFER
               : pick < 7 ? MOVE_HOLD
               : pick < 9 ? MOVE_DEPOSIT
                          : MOVE_WITHDRAW;
    bool spends_for_user = mv->kind == MOVE_TRANSFER || mv->kind == MOVE_HOLD;
    mv->user = spends_for_user && test_random_below(&w->rng, 3) > 0
                   ? (int)test_random_below(&w->rng, USERS)
                   : -1;
    /* Mostly valid: a user spends from its own accounts, accounts exist. */
    mv->from = (int)test_random_below(&w->rng, ACCOUNTS + (test_random_below(&w->rng, 30) == 0));
    mv->to = (int)test_random_below(&w->rng, ACCOUNTS + (test_random_below(&w->rng, 30) == 0));
    if (mv->user >= 0 && mv->from < ACCOUNTS && test_random_below(&w->rng, 10) > 0)
        mv->from = mv->user + USERS * (int)test_random_below(&w->rng, ACCOUNTS / USERS);
    mv->amount = (json_int_t)test_random_below(&w->rng, 300) - 3;
    mv->timeout_s = (json_int_t)(1 + test_random_below(&w->rng, 15));
    move_command(w, mv, command);
}

/* Decide a group in the model: the index of the first rejection (count when
 * none) and its code. The model changes only when none; seqs[i] is then the
 * seq of proposal i's event. dup[i]: the index of i's first occurrence. */
static size_t model_group(world *w, const move *moves, const size_t *dup, size_t count,
                          int *code_out, uint64_t *seqs)
{
    books trial = w->m.b;
    for (size_t i = 0; i < count; i++) {
        if (dup[i] != i)
            continue;
        int code = model_decide(&moves[i], &trial);
        if (code != 0) {
            *code_out = code;
            return i;
        }
    }
    w->m.b = trial;
    for (size_t i = 0; i < count; i++) {
        const move *mv = &moves[i];
        if (dup[i] != i)
            continue;
        seqs[i] = w->m.next_seq[mv->stream]++;
        if (mv->kind == MOVE_DEPOSIT)
            w->m.deposited[mv->stream] += mv->amount;
        if (mv->kind == MOVE_WITHDRAW)
            w->m.withdrawn[mv->stream] += mv->amount;
        if (mv->kind == MOVE_HOLD) {
            assert_true(w->m.hold_count < HOLDS_MAX);
            model_hold *hold = &w->m.holds[w->m.hold_count++];
            hold->stream = mv->stream;
            hold->from = mv->from;
            hold->amount = mv->amount;
            hold->expires_at_ms = w->f->clock.now_ms + mv->timeout_s * 1000;
            hold->open = true;
        }
    }
    *code_out = 0;
    return count;
}

static void check_group(world *w, const move *moves, const size_t *dup, size_t count,
                        const arb_outcome *outcomes, size_t failed, int code, const uint64_t *seqs)
{
    for (size_t i = 0; i < count; i++) {
        const arb_outcome *o = &outcomes[i];
        if (dup[i] != i) {
            /* A duplicate: its first occurrence's outcome, as a replay. */
            assert_true(o->replay);
            assert_int_equal(o->kind, outcomes[dup[i]].kind);
            assert_int_equal(o->code, outcomes[dup[i]].code);
            assert_int_equal(o->seq_first, outcomes[dup[i]].seq_first);
            continue;
        }
        assert_false(o->replay);
        if (failed == count) {
            assert_int_equal(o->kind, ARB_OUTCOME_COMMITTED);
            assert_int_equal(o->seq_first, seqs[i]);
            assert_int_equal(o->seq_last, o->seq_first);
            continue;
        }
        if (i == failed) {
            assert_int_equal(o->kind, ARB_OUTCOME_REJECTED);
            assert_int_equal(o->code, code);
        } else {
            assert_aborted(o, failed, false);
        }
        assert_int_equal(o->version, w->m.next_seq[moves[i].stream] - 1);
    }
}

static void check_books(world *w)
{
    for (size_t s = 0; s < STREAMS; s++) {
        uint64_t version = 0;
        json_t *st = test_state(w->f->engine, stream_name(s), &version);
        assert_int_equal(version, w->m.next_seq[s] - 1);
        int64_t sum = 0;
        for (int a = 0; a < ACCOUNTS; a++) {
            char name[8];
            account_name(name, a);
            json_t *acct = json_object_get(json_object_get(st, "accounts"), name);
            int64_t free_money = (int64_t)json_integer_value(json_object_get(acct, "balance"));
            int64_t held = (int64_t)json_integer_value(json_object_get(acct, "held"));
            assert_int_equal(free_money, w->m.b.balance[s][a]);
            assert_int_equal(held, w->m.b.held[s][a]);
            sum += free_money + held;
        }
        /* Money is neither made nor lost: what came in minus what went out. */
        json_t *totals = json_object_get(json_object_get(st, "totals"), "EUR");
        int64_t in = (int64_t)json_integer_value(json_object_get(totals, "deposited"));
        int64_t out = (int64_t)json_integer_value(json_object_get(totals, "withdrawn"));
        assert_int_equal(in, w->m.deposited[s]);
        assert_int_equal(out, w->m.withdrawn[s]);
        assert_int_equal(sum, in - out);
        json_decref(st);
    }
}

/* The clock moves; every hold due expires, and no other timer fires. */
static void advance_and_tick(world *w, int64_t step_ms)
{
    w->f->clock.now_ms += step_ms;
    size_t due = 0;
    for (size_t i = 0; i < w->m.hold_count; i++) {
        model_hold *hold = &w->m.holds[i];
        if (!hold->open || hold->expires_at_ms > w->f->clock.now_ms)
            continue;
        hold->open = false;
        w->m.b.held[hold->stream][hold->from] -= hold->amount;
        w->m.b.balance[hold->stream][hold->from] += hold->amount;
        w->m.next_seq[hold->stream]++;
        due++;
    }
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(w->f->engine, &fired), 0);
    assert_int_equal(fired, due);
    w->expired += due;
}

/* Recovery rebuilds the timers from the log, where an expired hold's
 * deadline is reported again as a stale one: let those fire (rejected,
 * nothing changes) so that later ticks count only real expiries. */
static void restart(world *w)
{
    reopen(w->f);
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(w->f->engine, &fired), 0);
    check_books(w);
    w->restarts++;
}

static void keep_group(world *w, const arb_command *commands, const arb_outcome *outcomes,
                       size_t count)
{
    sent_group *slot = &w->kept[w->kept_count++ % RESENDS_KEPT];
    clear_all(slot->commands, slot->outcomes, slot->count);
    slot->count = count;
    for (size_t i = 0; i < count; i++) {
        slot->commands[i] = commands[i];
        slot->commands[i].args = json_incref(commands[i].args);
        slot->outcomes[i] = outcomes[i];
        slot->outcomes[i].result = json_incref(outcomes[i].result);
        slot->outcomes[i].details = json_incref(outcomes[i].details);
        slot->outcomes[i].events = NULL;
        slot->outcomes[i].event_count = 0;
    }
}

/* A whole group sent again: every answer the same, as a replay. */
static void resend_group(world *w)
{
    size_t span = w->kept_count < RESENDS_KEPT ? w->kept_count : RESENDS_KEPT;
    const sent_group *g = &w->kept[test_random_below(&w->rng, span)];
    arb_outcome outcomes[GROUP_MAX];
    run_atomic(w->f, g->commands, g->count, outcomes);
    for (size_t i = 0; i < g->count; i++) {
        const arb_outcome *was = &g->outcomes[i];
        assert_true(outcomes[i].replay);
        assert_int_equal(outcomes[i].kind, was->kind);
        assert_int_equal(outcomes[i].code, was->code);
        assert_int_equal(outcomes[i].seq_first, was->seq_first);
        assert_int_equal(outcomes[i].version, was->version);
        assert_true(json_equal(outcomes[i].details, was->details) ||
                    (outcomes[i].details == NULL && was->details == NULL));
    }
    clear_all(NULL, outcomes, g->count);
    w->resends++;
}

static void random_group(world *w)
{
    arb_command commands[GROUP_MAX];
    arb_outcome outcomes[GROUP_MAX];
    move moves[GROUP_MAX];
    size_t dup[GROUP_MAX];
    uint64_t seqs[GROUP_MAX];
    size_t count = 1 + test_random_below(&w->rng, GROUP_MAX);
    for (size_t i = 0; i < count; i++) {
        dup[i] = i;
        if (i > 0 && test_random_below(&w->rng, 12) == 0) {
            dup[i] = dup[test_random_below(&w->rng, i)];
            moves[i] = moves[dup[i]];
            commands[i] = commands[dup[i]];
            commands[i].args = json_incref(commands[dup[i]].args);
        } else {
            random_move(w, &moves[i], &commands[i]);
        }
    }
    int code = 0;
    size_t failed = model_group(w, moves, dup, count, &code, seqs);
    run_atomic(w->f, commands, count, outcomes);
    check_group(w, moves, dup, count, outcomes, failed, code, seqs);
    if (failed == count)
        w->committed_groups++;
    else
        w->aborted_groups++;
    keep_group(w, commands, outcomes, count);
    clear_all(commands, outcomes, count);
}

static void setup_ledgers(world *w)
{
    for (size_t s = 0; s < STREAMS; s++) {
        for (int a = 0; a < ACCOUNTS; a++) {
            char name[8];
            account_name(name, a);
            assert_int_equal(test_propose(w->f->engine, NULL, "admin", ARB_ROLE_ADMIN,
                                          ++w->f->admin_seq, stream_name(s), "open_account",
                                          "{s:s,s:s,s:s}", "account", name, "owner",
                                          user_name((size_t)a % USERS), "currency", "EUR"),
                             0);
            assert_int_equal(test_propose(w->f->engine, NULL, "admin", ARB_ROLE_ADMIN,
                                          ++w->f->admin_seq, stream_name(s), "deposit", "{s:s,s:i}",
                                          "account", name, "amount", 500),
                             0);
            w->m.b.balance[s][a] = 500;
            w->m.deposited[s] += 500;
        }
        w->m.next_seq[s] = 2 * ACCOUNTS + 1;
    }
}

static void test_random_groups(void **state)
{
    world *w = calloc(1, sizeof *w);
    w->f = *state;
    w->f->snapshot_every = 16; /* restarts load snapshots taken between groups */
    reopen(w->f);
    w->rng = test_seed("engine atomic random groups");
    setup_ledgers(w);
    for (int step = 0; step < GROUPS; step++) {
        if (w->kept_count > 0 && test_random_below(&w->rng, 8) == 0)
            resend_group(w);
        else
            random_group(w);
        if (test_random_below(&w->rng, 4) == 0)
            advance_and_tick(w, (int64_t)test_random_below(&w->rng, 6000));
        if (test_random_below(&w->rng, 10) == 0)
            check_books(w);
        if (test_random_below(&w->rng, 60) == 0)
            restart(w);
    }
    advance_and_tick(w, 20000); /* every hold is due by now */
    check_books(w);
    arb_engine_close(w->f->engine);
    w->f->engine = NULL;
    arb_verify_report report;
    int rc = arb_verify(w->f->dir, 1, &report);
    if (rc != 0)
        fail_msg("verify: %s seq %llu: %s", report.stream, (unsigned long long)report.seq,
                 report.why);
    assert_int_equal(report.events, w->m.next_seq[0] - 1 + w->m.next_seq[1] - 1);
    open_engine(w->f);
    check_books(w);
    assert_true(w->committed_groups > 0 && w->aborted_groups > 0 && w->resends > 0);
    printf("groups committed %zu, aborted %zu, resent %zu; holds expired %zu; restarts %zu; "
           "events %llu\n",
           w->committed_groups, w->aborted_groups, w->resends, w->expired, w->restarts,
           (unsigned long long)report.events);
    for (size_t i = 0; i < RESENDS_KEPT; i++)
        clear_all(w->kept[i].commands, w->kept[i].outcomes, w->kept[i].count);
    free(w);
}
