/*
 * atomic_test.c - all-or-nothing groups (arb_engine_execute_atomic) through
 * the public API on a real SQLite store: a group that commits, a group that
 * aborts and leaves nothing behind (events, state, versions, streams,
 * timers), resends of both, groups that depend on their own proposals, span
 * streams, hold duplicates or bad keys, or mix in proposals decided before;
 * and a randomized run against a simple all-or-nothing model of the ledger.
 *
 * The tests write a group as a table of proposals (BUILD_GROUP) and what it
 * must answer as a table of expected outcomes (EXPECT), one row a proposal.
 */
#include "engine_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L ENGINE_FIXTURE_LEDGER
#define OTHER "ledger:other"
#define GROUP_MAX 6

/* One proposal of a group, as data. The admin proposes with its next
 * client_seq, anyone else with seq ("$system" as the system, the rest as
 * users). from names the account of a deposit, withdraw or open_account
 * (owned by owner, in EUR). */
typedef struct proposal {
    const char *client_id;
    uint64_t seq;
    const char *stream;
    const char *action; /* open_account, deposit, withdraw, transfer or hold */
    const char *from, *to;
    json_int_t amount;
    json_int_t timeout_s; /* hold */
    const char *owner;    /* open_account */
} proposal;

/* alice's transfer from a to b on L. */
/* clang-format off */
#define TRANSFER(client_seq, value) {"alice", client_seq, L, "transfer", "a", "b", .amount = value}
/* clang-format on */

/* A group's commands and, once it has run, their outcomes (both owned). */
typedef struct group {
    arb_command commands[GROUP_MAX];
    arb_outcome outcomes[GROUP_MAX];
    size_t count;
} group;

/* What one outcome must be: its kind, and a rejection's code. replay is
 * REPLAY_NO (false), REPLAY_YES (true) or REPLAY_ANY (not checked);
 * seq_first 0 is not checked. */
enum { REPLAY_NO = 0, REPLAY_YES = 1, REPLAY_ANY = 2 };
typedef struct expect {
    arb_outcome_kind kind;
    int code;      /* rejected */
    size_t failed; /* ARB_EABORTED: the index of the proposal that failed */
    int replay;
    uint64_t seq_first; /* committed */
} expect;

/* clang-format off */
#define COMMITTED(seq_first, replay) {ARB_OUTCOME_COMMITTED, 0, 0, replay, seq_first}
#define REFUSED(code, replay) {ARB_OUTCOME_REJECTED, code, 0, replay, 0}
/* Aborted because the proposal at index failed was refused; replay must be
 * false or true. */
#define ABORTED(failed, replay) {ARB_OUTCOME_REJECTED, ARB_EABORTED, failed, replay, 0}
/* clang-format on */

/* BUILD_GROUP(f, g, proposal, ...) builds group g from the proposals;
 * EXPECT(g, expect, ...) checks its outcomes, one row each, and reports a
 * mismatch at the line of the EXPECT. */
#define BUILD_GROUP(f, g, ...)                                                                     \
    group_build(f, g, (const proposal[]){__VA_ARGS__},                                             \
                sizeof((const proposal[]){__VA_ARGS__}) / sizeof(proposal))
#define EXPECT(g, ...)                                                                             \
    assert_outcomes(g, (const expect[]){__VA_ARGS__},                                              \
                    sizeof((const expect[]){__VA_ARGS__}) / sizeof(expect), __LINE__)

static void build_command(engine_fixture *f, const proposal *p, arb_command *command)
{
    bool admin = strcmp(p->client_id, "admin") == 0;
    arb_role role = admin                    ? ARB_ROLE_ADMIN
                    : p->client_id[0] == '$' ? ARB_ROLE_SYSTEM
                                             : ARB_ROLE_USER;
    uint64_t seq = admin ? ++f->admin_seq : p->seq;
    if (strcmp(p->action, "open_account") == 0)
        test_command(command, p->client_id, role, seq, p->stream, p->action, "{s:s,s:s,s:s}",
                     "account", p->from, "owner", p->owner, "currency", "EUR");
    else if (strcmp(p->action, "transfer") == 0)
        test_command(command, p->client_id, role, seq, p->stream, p->action, "{s:s,s:s,s:I}",
                     "from", p->from, "to", p->to, "amount", p->amount);
    else if (strcmp(p->action, "hold") == 0)
        test_command(command, p->client_id, role, seq, p->stream, p->action, "{s:s,s:s,s:I,s:I}",
                     "from", p->from, "to", p->to, "amount", p->amount, "timeout_s", p->timeout_s);
    else
        test_command(command, p->client_id, role, seq, p->stream, p->action, "{s:s,s:I}", "account",
                     p->from, "amount", p->amount);
}

/* An empty group of count proposals, its outcomes cleared. */
static void group_start(group *g, size_t count)
{
    assert_true(count <= GROUP_MAX);
    g->count = count;
    for (size_t i = 0; i < count; i++)
        arb_outcome_init(&g->outcomes[i]);
}

static void group_build(engine_fixture *f, group *g, const proposal *proposals, size_t count)
{
    group_start(g, count);
    for (size_t i = 0; i < count; i++)
        build_command(f, &proposals[i], &g->commands[i]);
}

static void run_atomic(engine_fixture *f, const arb_command *commands, size_t count,
                       arb_outcome *outcomes)
{
    assert_int_equal(arb_engine_execute_atomic(f->engine, commands, count, outcomes), 0);
    for (size_t i = 0; i < count; i++)
        assert_true(outcomes[i].kind == ARB_OUTCOME_COMMITTED ||
                    outcomes[i].kind == ARB_OUTCOME_REJECTED);
}

/* Send the group (again): the outcomes of an earlier run are cleared. */
static void group_run(engine_fixture *f, group *g)
{
    for (size_t i = 0; i < g->count; i++)
        arb_outcome_clear(&g->outcomes[i]);
    run_atomic(f, g->commands, g->count, g->outcomes);
}

static void group_clear(group *g)
{
    for (size_t i = 0; i < g->count; i++) {
        arb_command_clear(&g->commands[i]);
        arb_outcome_clear(&g->outcomes[i]);
    }
    g->count = 0;
}

static size_t events_in_log(engine_fixture *f, const char *stream)
{
    json_t *events = NULL;
    assert_int_equal(arb_engine_events(f->engine, stream, 0, 0, &events), 0);
    size_t n = json_array_size(events);
    json_decref(events);
    return n;
}

static void assert_no_stream(engine_fixture *f, const char *stream)
{
    arb_principal admin = {.id = "test", .role = ARB_ROLE_ADMIN};
    json_t *state = NULL;
    uint64_t version = 0;
    assert_int_equal(arb_engine_state(f->engine, stream, &admin, &state, &version),
                     ARB_ESTREAM_NOT_FOUND);
}

/* cmocka's assert_int_equal, reporting line (of this file) when it fails. */
#define ASSERT_EQUAL_AT(a, b, line)                                                                \
    _assert_int_equal(cast_to_largest_integral_type(a), cast_to_largest_integral_type(b),          \
                      __FILE__, line)

static void assert_outcome(const arb_outcome *outcome, const expect *want, int line)
{
    ASSERT_EQUAL_AT(outcome->kind, want->kind, line);
    if (want->kind == ARB_OUTCOME_REJECTED)
        ASSERT_EQUAL_AT(outcome->code, want->code, line);
    if (want->code == ARB_EABORTED) {
        assert_true(want->replay != REPLAY_ANY);
        ASSERT_EQUAL_AT(json_integer_value(json_object_get(outcome->details, "failed")),
                        want->failed, line);
    }
    if (want->replay != REPLAY_ANY)
        ASSERT_EQUAL_AT(outcome->replay, want->replay == REPLAY_YES, line);
    if (want->seq_first != 0)
        ASSERT_EQUAL_AT(outcome->seq_first, want->seq_first, line);
}

static void assert_outcomes(const group *g, const expect *want, size_t count, int line)
{
    ASSERT_EQUAL_AT(count, g->count, line);
    for (size_t i = 0; i < count; i++)
        assert_outcome(&g->outcomes[i], &want[i], line);
}

/* A resent proposal is answered with its first outcome, as a replay. */
static void assert_replay_of(const arb_outcome *again, const arb_outcome *first)
{
    assert_true(again->replay);
    assert_int_equal(again->kind, first->kind);
    assert_int_equal(again->code, first->code);
    assert_int_equal(again->seq_first, first->seq_first);
}

/* ... and a resent group's outcome keeps its version and details too. */
static void assert_resent_as(const arb_outcome *again, const arb_outcome *first)
{
    assert_replay_of(again, first);
    assert_int_equal(again->version, first->version);
    assert_true(json_equal(again->details, first->details) ||
                (again->details == NULL && first->details == NULL));
}

/* Verify the directory and open the engine again. */
static void assert_verify(engine_fixture *f)
{
    engine_fixture_verify(f, NULL);
    engine_fixture_open(f);
}

static void test_all_accepted(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    group g;
    BUILD_GROUP(f, &g, TRANSFER(1, 100), TRANSFER(2, 200), TRANSFER(3, 300));
    group_run(f, &g);
    EXPECT(&g, COMMITTED(4, false), COMMITTED(5, false), COMMITTED(6, false));
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.outcomes[i].seq_last, 4 + i);
        assert_int_equal(g.outcomes[i].event_count, 1);
        assert_int_equal(g.outcomes[i].events[0].seq, 4 + i);
        assert_int_equal(g.outcomes[i].events[0].applied_at_ms, f->clock.now_ms);
    }
    group_clear(&g);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 400);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 600);
    assert_int_equal(engine_fixture_version(f, L), 6);
    assert_int_equal(events_in_log(f, L), 6);
    engine_fixture_reopen(f);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 600);
    assert_verify(f);
}

/* One group that fails at index 1 of 3: 30 fits, 500 does not, 10 would. */
static void abort_in_the_middle(engine_fixture *f, group *g)
{
    BUILD_GROUP(f, g, TRANSFER(1, 30), TRANSFER(2, 500), TRANSFER(3, 10));
    group_run(f, g);
}

static void test_rejected_in_the_middle_applies_nothing(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    json_t *before = test_state(f->engine, L, NULL);
    group g;
    abort_in_the_middle(f, &g);
    EXPECT(&g, ABORTED(1, false), REFUSED(ARB_EINSUFFICIENT_FUNDS, false), ABORTED(1, false));
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.outcomes[i].version, 3); /* nothing of the group applied */
        assert_int_equal(g.outcomes[i].event_count, 0);
        assert_null(g.outcomes[i].events);
    }
    assert_string_equal(g.outcomes[0].message, arb_err_message(ARB_EABORTED));
    group_clear(&g);
    json_t *after = test_state(f->engine, L, NULL);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    assert_int_equal(engine_fixture_version(f, L), 3);
    assert_int_equal(events_in_log(f, L), 3);
    /* The next commit takes the very next seq: no gap was left behind. */
    arb_outcome out;
    engine_fixture_transfer(f, &out, 4, 5);
    assert_int_equal(out.kind, ARB_OUTCOME_COMMITTED);
    assert_int_equal(out.seq_first, 4);
    arb_outcome_clear(&out);
    assert_verify(f);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 5);
}

static void test_resend_of_aborted_group_gets_same_rejections(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group first, again;
    abort_in_the_middle(f, &first);
    /* Funds arrive, and the server restarts; the answer must not change. */
    assert_int_equal(
        engine_fixture_admin_propose(f, L, "deposit", "{s:s,s:i}", "account", "a", "amount", 10000),
        0);
    engine_fixture_reopen(f);
    abort_in_the_middle(f, &again);
    for (size_t i = 0; i < 3; i++) {
        assert_resent_as(&again.outcomes[i], &first.outcomes[i]);
        assert_int_equal(again.outcomes[i].kind, ARB_OUTCOME_REJECTED);
        assert_string_equal(again.outcomes[i].message, first.outcomes[i].message);
    }
    EXPECT(&again, ABORTED(1, true), REFUSED(ARB_EINSUFFICIENT_FUNDS, true), ABORTED(1, true));
    group_clear(&first);
    group_clear(&again);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 0);
    assert_int_equal(engine_fixture_version(f, L), 4);
}

static void test_resend_of_committed_group_is_replayed(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    const proposal transfers[] = {TRANSFER(1, 10), TRANSFER(2, 20)};
    group first, again;
    group_build(f, &first, transfers, 2);
    group_build(f, &again, transfers, 2);
    group_run(f, &first);
    group_run(f, &again);
    for (size_t i = 0; i < 2; i++) {
        assert_replay_of(&again.outcomes[i], &first.outcomes[i]);
        assert_int_equal(again.outcomes[i].kind, ARB_OUTCOME_COMMITTED);
        assert_int_equal(again.outcomes[i].seq_last, first.outcomes[i].seq_last);
    }
    engine_fixture_reopen(f);
    group_run(f, &again);
    EXPECT(&again, COMMITTED(0, true), COMMITTED(0, true));
    group_clear(&first);
    group_clear(&again);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 30);
    assert_int_equal(engine_fixture_version(f, L), 5);
}

/* Each proposal sees the ones before it: open an account, fund it, spend it. */
static void test_group_depends_on_its_own_proposals(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 0);
    group g;
    BUILD_GROUP(f, &g, {"admin", 0, L, "open_account", "c", .owner = "carol"},
                {"admin", 0, L, "deposit", "c", .amount = 100},
                {"carol", 1, L, "transfer", "c", "a", .amount = 70},
                TRANSFER(1, 70)); /* alice spends what carol just sent */
    /* Alone, the last one would be refused: a is empty. */
    group_run(f, &g);
    EXPECT(&g, COMMITTED(3, REPLAY_ANY), COMMITTED(4, REPLAY_ANY), COMMITTED(5, REPLAY_ANY),
           COMMITTED(6, REPLAY_ANY));
    group_clear(&g);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 0);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 70);
    assert_int_equal(engine_fixture_balance(f, L, "c"), 30);
    assert_verify(f);
}

/* A group over two streams fails on its last proposal: the stream it would
 * have created does not exist, the other is unchanged. */
static void test_group_over_two_streams_aborts_whole(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group g;
    BUILD_GROUP(f, &g, {"admin", 0, OTHER, "open_account", "x", .owner = "alice"},
                {"admin", 0, OTHER, "deposit", "x", .amount = 500},
                {"admin", 0, L, "deposit", "a", .amount = 50},
                {"admin", 0, L, "transfer", "b", "a", .amount = 1});
    group_run(f, &g);
    EXPECT(&g, ABORTED(3, false), ABORTED(3, false), ABORTED(3, false),
           REFUSED(ARB_EINSUFFICIENT_FUNDS, REPLAY_ANY));
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(g.outcomes[i].version, i < 2 ? 0 : 3);
    assert_no_stream(f, OTHER);
    json_t *streams = NULL;
    assert_int_equal(arb_engine_streams(f->engine, &streams), 0);
    assert_int_equal(json_array_size(streams), 1);
    json_decref(streams);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 100);
    assert_int_equal(engine_fixture_version(f, L), 3);
    engine_fixture_reopen(f);
    assert_no_stream(f, OTHER);
    /* Resent after a restart: the same answers. */
    group_run(f, &g);
    EXPECT(&g, ABORTED(3, true), ABORTED(3, true), ABORTED(3, true),
           REFUSED(ARB_EINSUFFICIENT_FUNDS, true));
    group_clear(&g);
    assert_no_stream(f, OTHER);
    assert_verify(f);
}

/* The same group over two streams, all accepted: both change, in order. */
static void test_group_over_two_streams_commits(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group g;
    BUILD_GROUP(f, &g, {"admin", 0, OTHER, "open_account", "x", .owner = "alice"},
                {"admin", 0, L, "withdraw", "a", .amount = 40},
                {"admin", 0, OTHER, "deposit", "x", .amount = 40});
    group_run(f, &g);
    EXPECT(&g, COMMITTED(1, REPLAY_ANY), COMMITTED(4, REPLAY_ANY), COMMITTED(2, REPLAY_ANY));
    group_clear(&g);
    engine_fixture_reopen(f);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 60);
    assert_int_equal(engine_fixture_balance(f, OTHER, "x"), 40);
    assert_verify(f);
}

/* A hold inside an aborted group must not leave its expiry timer. The next
 * hold gets the same id (p<seq>): a leaked timer would fire against it (the
 * ledger refuses an expire before the hold's own deadline, but a module that
 * trusted its timers would not), and tick would count it in fired. */
static void test_aborted_hold_leaves_no_timer(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    group g;
    BUILD_GROUP(f, &g, {"alice", 1, L, "hold", "a", "b", 100, .timeout_s = 10}, TRANSFER(2, 5000));
    group_run(f, &g);
    EXPECT(&g, ABORTED(1, false), REFUSED(ARB_EINSUFFICIENT_FUNDS, REPLAY_ANY));
    group_clear(&g);
    assert_int_equal(arb_engine_next_deadline(f->engine), INT64_MAX);

    arb_outcome out;
    assert_int_equal(test_propose(f->engine, &out, "alice", ARB_ROLE_USER, 3, L, "hold",
                                  "{s:s,s:s,s:i,s:i}", "from", "a", "to", "b", "amount", 50,
                                  "timeout_s", 100),
                     0);
    assert_string_equal(json_string_value(json_object_get(out.result, "pending")), "p4");
    arb_outcome_clear(&out);
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 100000);
    uint64_t version = engine_fixture_version(f, L);
    f->clock.now_ms += 60000; /* past the aborted hold's 10 s, before the new 100 s */
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 0);
    assert_int_equal(engine_fixture_version(f, L), version);
    json_t *st = test_state(f->engine, L, NULL);
    json_t *hold = json_object_get(json_object_get(st, "pending"), "p4");
    assert_string_equal(json_string_value(json_object_get(hold, "status")), "pending");
    json_decref(st);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 950);
}

/* And a committed group's hold is armed like any other. */
static void test_committed_hold_is_armed(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 1000);
    group g;
    BUILD_GROUP(f, &g, {"alice", 1, L, "hold", "a", "b", 100, .timeout_s = 10}, TRANSFER(2, 10));
    group_run(f, &g);
    EXPECT(&g, COMMITTED(0, REPLAY_ANY), COMMITTED(0, REPLAY_ANY));
    group_clear(&g);
    assert_int_equal(arb_engine_next_deadline(f->engine), f->clock.now_ms + 10000);
    f->clock.now_ms += 10000;
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    assert_int_equal(fired, 1);
    assert_int_equal(engine_fixture_balance(f, L, "a"), 990);
    assert_int_equal(engine_fixture_version(f, L), 6);
}

/* Proposals decided before the group are answered from the store and take
 * no part: a stored rejection does not abort the group, a stored commit is
 * not undone by an abort. */
static void test_mixed_with_proposals_decided_before(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group g;
    arb_outcome committed, rejected;
    BUILD_GROUP(f, &g, TRANSFER(1, 10), TRANSFER(2, 1000), TRANSFER(3, 20));
    test_exec(f->engine, &g.commands[0], &committed);
    assert_int_equal(committed.kind, ARB_OUTCOME_COMMITTED);
    test_exec(f->engine, &g.commands[1], &rejected);
    assert_int_equal(rejected.code, ARB_EINSUFFICIENT_FUNDS);

    group_run(f, &g);
    EXPECT(&g, COMMITTED(0, true), REFUSED(ARB_EINSUFFICIENT_FUNDS, true), COMMITTED(5, false));
    assert_int_equal(g.outcomes[0].seq_first, committed.seq_first);

    /* Now with a new proposal that fails: the stored commit stays a commit. */
    arb_command_clear(&g.commands[2]);
    engine_fixture_transfer_command(&g.commands[2], 4, 1000);
    group_run(f, &g);
    EXPECT(&g, COMMITTED(0, true), REFUSED(ARB_EINSUFFICIENT_FUNDS, true),
           REFUSED(ARB_EINSUFFICIENT_FUNDS, false));
    group_clear(&g);
    arb_outcome_clear(&committed);
    arb_outcome_clear(&rejected);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 30);
    assert_verify(f);
}

/* A proposal submitted (pipelined, not yet durable) and then resent inside a
 * group is a replay: the group starts from the drained pipeline. */
static void test_after_pipelined_submit(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group g;
    arb_outcome submitted;
    BUILD_GROUP(f, &g, TRANSFER(1, 60), TRANSFER(2, 50)); /* 100 - 60 < 50 */
    assert_int_equal(arb_engine_submit(f->engine, &g.commands[0], 1, &submitted), 0);
    group_run(f, &g);
    EXPECT(&g, COMMITTED(0, true), REFUSED(ARB_EINSUFFICIENT_FUNDS, REPLAY_ANY));
    assert_int_equal(g.outcomes[0].seq_first, submitted.seq_first);
    group_clear(&g);
    arb_outcome_clear(&submitted);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 60);
    assert_verify(f);
}

/* Duplicates inside one group behave as in execute, whatever the group's
 * fate; a key reused for other content is a rejection and aborts. */
static void test_duplicates_inside_the_group(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group g;
    BUILD_GROUP(f, &g, TRANSFER(1, 10), TRANSFER(1, 10), TRANSFER(2, 10));
    group_run(f, &g);
    EXPECT(&g, COMMITTED(0, REPLAY_ANY), COMMITTED(0, true), COMMITTED(0, REPLAY_ANY));
    assert_int_equal(g.outcomes[1].seq_first, g.outcomes[0].seq_first);
    assert_int_equal(g.outcomes[2].seq_first, g.outcomes[0].seq_first + 1);
    group_clear(&g);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 20);

    /* Aborted: the duplicate replays its first occurrence's ABORTED. */
    BUILD_GROUP(f, &g, TRANSFER(3, 10), TRANSFER(3, 10), TRANSFER(4, 1000));
    group_run(f, &g);
    EXPECT(&g, ABORTED(2, false), ABORTED(2, true), REFUSED(ARB_EINSUFFICIENT_FUNDS, REPLAY_ANY));
    group_clear(&g);

    /* Same key, other content: IDEMPOTENCY_KEY_REUSED, and the group aborts. */
    BUILD_GROUP(f, &g, TRANSFER(5, 10), TRANSFER(5, 11));
    for (int round = 0; round < 2; round++) {
        group_run(f, &g);
        EXPECT(&g, ABORTED(1, round == 1), REFUSED(ARB_EIDEMPOTENCY_KEY_REUSED, REPLAY_ANY));
    }
    group_clear(&g);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 20);
    assert_verify(f);
}

/* A key that cannot be recorded is a rejection too; the others are kept as
 * ABORTED and answered so again. */
static void test_invalid_key_aborts(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group g;
    BUILD_GROUP(f, &g, TRANSFER(1, 10), TRANSFER(0, 10) /* client_seq 0 */, TRANSFER(2, 10));
    for (int round = 0; round < 2; round++) {
        group_run(f, &g);
        EXPECT(&g, ABORTED(1, round == 1), REFUSED(ARB_EINVALID_ARGUMENT, false),
               ABORTED(1, round == 1));
    }
    group_clear(&g);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 0);
    assert_int_equal(engine_fixture_version(f, L), 3);
}

/* The system's rejections are kept in a group (execute drops them). */
static void test_system_rejections_are_recorded(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_two_accounts(f, 100);
    group g;
    BUILD_GROUP(f, &g, {"$system", 100, L, "transfer", "a", "b", .amount = 10},
                {"$system", 101, L, "transfer", "a", "b", .amount = 1000});
    for (int round = 0; round < 2; round++) {
        group_run(f, &g);
        EXPECT(&g, ABORTED(1, round == 1), REFUSED(ARB_EINSUFFICIENT_FUNDS, round == 1));
    }
    group_clear(&g);
    assert_int_equal(arb_engine_client_seq_max(f->engine, "$system"), 101);
    engine_fixture_reopen(f);
    assert_int_equal(arb_engine_client_seq_max(f->engine, "$system"), 101);
}

/* Snapshots taken after a group are of the group's state; after an aborted
 * one, of the state before it. */
static void test_snapshots_around_groups(void **state)
{
    engine_fixture *f = *state;
    f->snapshot_every = 1;
    engine_fixture_reopen(f);
    engine_fixture_two_accounts(f, 100);
    group g;
    abort_in_the_middle(f, &g);
    group_clear(&g);
    BUILD_GROUP(f, &g, TRANSFER(10, 30), TRANSFER(11, 30));
    group_run(f, &g);
    group_clear(&g);
    engine_fixture_transfer(f, NULL, 12, 1); /* takes the snapshot that was due */
    engine_fixture_reopen(f);
    assert_int_equal(engine_fixture_balance(f, L, "b"), 61);
    assert_int_equal(engine_fixture_version(f, L), 6);
    arb_verify_report report;
    engine_fixture_verify(f, &report);
    assert_true(report.snapshots_compared >= 1);
    engine_fixture_open(f);
}

static void test_misuse(void **state)
{
    engine_fixture *f = *state;
    arb_command command;
    arb_outcome out;
    engine_fixture_transfer_command(&command, 1, 1);
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
        ENGINE_FIXTURE_TEST(test_all_accepted),
        ENGINE_FIXTURE_TEST(test_rejected_in_the_middle_applies_nothing),
        ENGINE_FIXTURE_TEST(test_resend_of_aborted_group_gets_same_rejections),
        ENGINE_FIXTURE_TEST(test_resend_of_committed_group_is_replayed),
        ENGINE_FIXTURE_TEST(test_group_depends_on_its_own_proposals),
        ENGINE_FIXTURE_TEST(test_group_over_two_streams_aborts_whole),
        ENGINE_FIXTURE_TEST(test_group_over_two_streams_commits),
        ENGINE_FIXTURE_TEST(test_aborted_hold_leaves_no_timer),
        ENGINE_FIXTURE_TEST(test_committed_hold_is_armed),
        ENGINE_FIXTURE_TEST(test_mixed_with_proposals_decided_before),
        ENGINE_FIXTURE_TEST(test_after_pipelined_submit),
        ENGINE_FIXTURE_TEST(test_duplicates_inside_the_group),
        ENGINE_FIXTURE_TEST(test_invalid_key_aborts),
        ENGINE_FIXTURE_TEST(test_system_rejections_are_recorded),
        ENGINE_FIXTURE_TEST(test_snapshots_around_groups),
        ENGINE_FIXTURE_TEST(test_misuse),
        ENGINE_FIXTURE_TEST(test_random_groups),
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

typedef struct world {
    engine_fixture *f;
    uint64_t rng;
    model m;
    uint64_t user_seq[USERS];
    group kept[RESENDS_KEPT]; /* groups sent, to send again */
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
    static const char *const actions[] = {"transfer", "hold", "deposit", "withdraw"};
    char from[8], to[8];
    account_name(from, mv->from);
    account_name(to, mv->to);
    proposal p = {.client_id = mv->user >= 0 ? user_name((size_t)mv->user) : "admin",
                  .seq = mv->user >= 0 ? ++w->user_seq[mv->user] : 0,
                  .stream = stream_name(mv->stream),
                  .action = actions[mv->kind],
                  .from = from,
                  .to = to,
                  .amount = mv->amount,
                  .timeout_s = mv->timeout_s};
    build_command(w->f, &p, command);
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
            assert_replay_of(o, &outcomes[dup[i]]);
            continue;
        }
        /* The rest as the model decided (its seqs are never 0). */
        expect want = failed == count ? (expect)COMMITTED(seqs[i], false)
                      : i == failed   ? (expect)REFUSED(code, false)
                                      : (expect)ABORTED(failed, false);
        assert_outcome(o, &want, __LINE__);
        if (failed == count)
            assert_int_equal(o->seq_last, o->seq_first);
        else
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
    engine_fixture_reopen(w->f);
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(w->f->engine, &fired), 0);
    check_books(w);
    w->restarts++;
}

static void keep_group(world *w, const group *g)
{
    group *slot = &w->kept[w->kept_count++ % RESENDS_KEPT];
    group_clear(slot);
    slot->count = g->count;
    for (size_t i = 0; i < g->count; i++) {
        slot->commands[i] = g->commands[i];
        slot->commands[i].args = json_incref(g->commands[i].args);
        slot->outcomes[i] = g->outcomes[i];
        slot->outcomes[i].result = json_incref(g->outcomes[i].result);
        slot->outcomes[i].details = json_incref(g->outcomes[i].details);
        slot->outcomes[i].events = NULL;
        slot->outcomes[i].event_count = 0;
    }
}

/* A whole group sent again: every answer the same, as a replay. */
static void resend_group(world *w)
{
    size_t span = w->kept_count < RESENDS_KEPT ? w->kept_count : RESENDS_KEPT;
    const group *g = &w->kept[test_random_below(&w->rng, span)];
    arb_outcome outcomes[GROUP_MAX];
    run_atomic(w->f, g->commands, g->count, outcomes);
    for (size_t i = 0; i < g->count; i++) {
        assert_resent_as(&outcomes[i], &g->outcomes[i]);
        arb_outcome_clear(&outcomes[i]);
    }
    w->resends++;
}

static void random_group(world *w)
{
    group g;
    move moves[GROUP_MAX];
    size_t dup[GROUP_MAX];
    uint64_t seqs[GROUP_MAX];
    group_start(&g, 1 + test_random_below(&w->rng, GROUP_MAX));
    for (size_t i = 0; i < g.count; i++) {
        dup[i] = i;
        if (i > 0 && test_random_below(&w->rng, 12) == 0) {
            dup[i] = dup[test_random_below(&w->rng, i)];
            moves[i] = moves[dup[i]];
            g.commands[i] = g.commands[dup[i]];
            g.commands[i].args = json_incref(g.commands[dup[i]].args);
        } else {
            random_move(w, &moves[i], &g.commands[i]);
        }
    }
    int code = 0;
    size_t failed = model_group(w, moves, dup, g.count, &code, seqs);
    group_run(w->f, &g);
    check_group(w, moves, dup, g.count, g.outcomes, failed, code, seqs);
    if (failed == g.count)
        w->committed_groups++;
    else
        w->aborted_groups++;
    keep_group(w, &g);
    group_clear(&g);
}

static void setup_ledgers(world *w)
{
    for (size_t s = 0; s < STREAMS; s++) {
        for (int a = 0; a < ACCOUNTS; a++) {
            char name[8];
            account_name(name, a);
            assert_int_equal(engine_fixture_admin_propose(
                                 w->f, stream_name(s), "open_account", "{s:s,s:s,s:s}", "account",
                                 name, "owner", user_name((size_t)a % USERS), "currency", "EUR"),
                             0);
            assert_int_equal(engine_fixture_admin_propose(w->f, stream_name(s), "deposit",
                                                          "{s:s,s:i}", "account", name, "amount",
                                                          500),
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
    engine_fixture_reopen(w->f);
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
    arb_verify_report report;
    engine_fixture_verify(w->f, &report);
    assert_int_equal(report.events, w->m.next_seq[0] - 1 + w->m.next_seq[1] - 1);
    engine_fixture_open(w->f);
    check_books(w);
    assert_true(w->committed_groups > 0 && w->aborted_groups > 0 && w->resends > 0);
    printf("groups committed %zu, aborted %zu, resent %zu; holds expired %zu; restarts %zu; "
           "events %llu\n",
           w->committed_groups, w->aborted_groups, w->resends, w->expired, w->restarts,
           (unsigned long long)report.events);
    for (size_t i = 0; i < RESENDS_KEPT; i++)
        group_clear(&w->kept[i]);
    free(w);
}
