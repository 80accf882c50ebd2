/*
 * random_test.c - the engine under a randomized workload with restarts.
 *
 * Several clients send random ledger commands (valid and invalid) in random
 * batch sizes; some proposals are resent later (retries); the clock moves
 * and timers fire; the engine is closed and reopened at random. Checked
 * throughout:
 *   - seq is contiguous: each new commit starts right after the previous one
 *   - a resend gets the original outcome (kind, code, seq) as a replay
 *   - the state after a reopen equals the state before it, version included
 *   - the ledger's invariants hold (arb_verify replays the whole log with
 *     check after every event, and compares every snapshot)
 */
#include "engine_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L "ledger:rand"
#define CLIENTS 6
#define HISTORY 512
#define STEPS 1000

typedef struct sent {
    arb_command command;
    arb_outcome_kind kind;
    int code;
    uint64_t seq_first;
} sent;

typedef struct world {
    engine_fixture f; /* its admin_seq unused: client_seq[CLIENTS] is the admin's */
    uint64_t rng;
    uint64_t client_seq[CLIENTS + 1]; /* index CLIENTS: the admin */
    uint64_t next_seq;                /* the seq the next commit must start at */
    char pendings[64][24];
    size_t pending_count;
    sent history[HISTORY];
    size_t history_count;
    size_t replays_checked;
    size_t restarts;
} world;

static const char *client_name(size_t i)
{
    static const char *const names[CLIENTS + 1] = {"u0", "u1", "u2", "u3", "u4", "u5", "admin"};
    return names[i];
}

static void random_command(world *w, arb_command *command)
{
    size_t client = test_random_below(&w->rng, CLIENTS);
    char from[8], to[8];
    snprintf(from, sizeof from, "a%u", (unsigned)test_random_below(&w->rng, CLIENTS + 1));
    snprintf(to, sizeof to, "a%u", (unsigned)test_random_below(&w->rng, CLIENTS + 1));
    json_int_t amount = (json_int_t)test_random_below(&w->rng, 3000) - 100;
    uint64_t pick = test_random_below(&w->rng, 10);
    if (pick < 5) {
        test_command(command, client_name(client), ARB_ROLE_USER, ++w->client_seq[client], L,
                     "transfer", "{s:s,s:s,s:I}", "from", from, "to", to, "amount", amount);
    } else if (pick < 7) {
        test_command(command, client_name(client), ARB_ROLE_USER, ++w->client_seq[client], L,
                     "hold", "{s:s,s:s,s:I,s:I}", "from", from, "to", to, "amount", amount,
                     "timeout_s", (json_int_t)(1 + test_random_below(&w->rng, 20)));
    } else if (pick < 9 && w->pending_count > 0) {
        const char *pending = w->pendings[test_random_below(&w->rng, w->pending_count)];
        test_command(command, client_name(client), ARB_ROLE_USER, ++w->client_seq[client], L,
                     pick == 7 ? "capture" : "void", "{s:s}", "pending", pending);
    } else {
        test_command(command, "admin", ARB_ROLE_ADMIN, ++w->client_seq[CLIENTS], L,
                     test_random_below(&w->rng, 2) ? "deposit" : "withdraw", "{s:s,s:I}", "account",
                     from, "amount", amount);
    }
}

static void remember(world *w, const arb_command *command, const arb_outcome *outcome)
{
    sent *slot = &w->history[w->history_count++ % HISTORY];
    if (w->history_count > HISTORY)
        arb_command_clear(&slot->command);
    slot->command = *command;
    slot->command.args = json_incref(command->args);
    slot->kind = outcome->kind;
    slot->code = outcome->code;
    slot->seq_first = outcome->seq_first;
    json_t *pending = json_object_get(outcome->result, "pending");
    if (pending != NULL && w->pending_count < 64)
        snprintf(w->pendings[w->pending_count++], sizeof w->pendings[0], "%s",
                 json_string_value(pending));
}

static void check_outcome(world *w, const arb_command *command, const arb_outcome *outcome,
                          const sent *original)
{
    if (original != NULL) {
        /* A resend: the original answer, marked as a replay. */
        assert_true(outcome->replay);
        assert_int_equal(outcome->kind, original->kind);
        assert_int_equal(outcome->code, original->code);
        assert_int_equal(outcome->seq_first, original->seq_first);
        w->replays_checked++;
        return;
    }
    assert_false(outcome->replay);
    if (outcome->kind == ARB_OUTCOME_COMMITTED) {
        assert_int_equal(outcome->seq_first, w->next_seq);
        assert_true(outcome->seq_last >= outcome->seq_first);
        assert_int_equal(outcome->event_count, outcome->seq_last - outcome->seq_first + 1);
        w->next_seq = outcome->seq_last + 1;
    }
    remember(w, command, outcome);
}

static void run_batch(world *w)
{
    arb_command commands[32];
    sent expected[32]; /* copies: the history ring may be overwritten meanwhile */
    const sent *originals[32];
    arb_outcome outcomes[32];
    size_t n = 1 + test_random_below(&w->rng, 32);
    for (size_t i = 0; i < n; i++) {
        originals[i] = NULL;
        if (w->history_count > 0 && test_random_below(&w->rng, 10) == 0) {
            size_t span = w->history_count < HISTORY ? w->history_count : HISTORY;
            expected[i] = w->history[test_random_below(&w->rng, span)];
            originals[i] = &expected[i];
            commands[i] = expected[i].command;
            commands[i].args = json_incref(expected[i].command.args);
        } else {
            random_command(w, &commands[i]);
        }
    }
    /* Half the batches are pipelined: the next batch (and its resends) is
     * decided while this one is still being written. */
    if (test_random_below(&w->rng, 2) == 0)
        assert_int_equal(arb_engine_submit(w->f.engine, commands, n, outcomes), 0);
    else
        assert_int_equal(arb_engine_execute(w->f.engine, commands, n, outcomes), 0);
    for (size_t i = 0; i < n; i++) {
        check_outcome(w, &commands[i], &outcomes[i], originals[i]);
        arb_outcome_clear(&outcomes[i]);
        arb_command_clear(&commands[i]);
    }
}

static void restart(world *w)
{
    uint64_t before_version = 0, after_version = 0;
    json_t *before = test_state(w->f.engine, L, &before_version);
    engine_fixture_reopen(&w->f);
    json_t *after = test_state(w->f.engine, L, &after_version);
    assert_int_equal(before_version, after_version);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    w->restarts++;
}

static void setup_accounts(world *w)
{
    for (size_t i = 0; i <= CLIENTS; i++) {
        char account[8];
        snprintf(account, sizeof account, "a%zu", i);
        const char *owner = i < CLIENTS ? client_name(i) : "nobody";
        assert_int_equal(test_propose(w->f.engine, NULL, "admin", ARB_ROLE_ADMIN,
                                      ++w->client_seq[CLIENTS], L, "open_account",
                                      "{s:s,s:s,s:s,s:I}", "account", account, "owner", owner,
                                      "currency", i % 3 == 2 ? "USD" : "EUR", "overdraft_limit",
                                      (json_int_t)(i % 2) * 500),
                         0);
        assert_int_equal(test_propose(w->f.engine, NULL, "admin", ARB_ROLE_ADMIN,
                                      ++w->client_seq[CLIENTS], L, "deposit", "{s:s,s:i}",
                                      "account", account, "amount", 5000),
                         0);
    }
    w->next_seq = 2 * (CLIENTS + 1) + 1;
}

static void random_workload(uint32_t snapshot_every)
{
    world *w = calloc(1, sizeof *w);
    w->rng = test_seed("engine random workload");
    engine_fixture_init(&w->f, "random", snapshot_every);
    setup_accounts(w);
    for (int step = 0; step < STEPS; step++) {
        run_batch(w);
        if (test_random_below(&w->rng, 4) == 0) {
            w->f.clock.now_ms += (int64_t)test_random_below(&w->rng, 5000);
            size_t fired = 0;
            assert_int_equal(arb_engine_tick(w->f.engine, &fired), 0);
            /* Expiries are events too: resynchronise the expected seq. */
            uint64_t version = 0;
            json_decref(test_state(w->f.engine, L, &version));
            w->next_seq = version + 1;
        }
        if (test_random_below(&w->rng, 50) == 0)
            restart(w);
    }
    uint64_t version = 0;
    json_decref(test_state(w->f.engine, L, &version));
    arb_verify_report report;
    engine_fixture_verify(&w->f, &report);
    assert_int_equal(report.events, version);
    assert_true(snapshot_every > version || report.snapshots_compared >= 1);
    assert_true(w->replays_checked > 0);
    printf("steps %d, events %llu, replays checked %zu, restarts %zu\n", STEPS,
           (unsigned long long)version, w->replays_checked, w->restarts);
    for (size_t i = 0; i < HISTORY && i < w->history_count; i++)
        arb_command_clear(&w->history[i].command);
    engine_fixture_destroy(&w->f);
    free(w);
}

static void test_restarts_from_snapshots(void **state)
{
    (void)state;
    random_workload(25);
}

static void test_restarts_from_the_whole_log(void **state)
{
    (void)state;
    random_workload(UINT32_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restarts_from_snapshots),
        cmocka_unit_test(test_restarts_from_the_whole_log),
    };
    return cmocka_run_group_tests_name("engine random", tests, NULL, NULL);
}
