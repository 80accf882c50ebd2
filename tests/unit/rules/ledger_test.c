/*
 * ledger_test.c - the ledger rule module, driven directly.
 *
 * A small harness plays the engine: it decides a command with a clock and a
 * next seq it controls, evolves every accepted event with the next seq,
 * records the deadlines reported to its timer sink, and runs check() after
 * every command. Directed tests pin every rejection code and the two-phase
 * holds; a randomized test (seed from ARB_SEED, else the time; printed on
 * failure) runs thousands of commands against an independent reference
 * model and round-trips snapshots along the way. A shorter one with fixed
 * seeds follows the harness with clients loaded by view_load, which must
 * see and decide what the harness does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arbiter/rules.h"
#include "rules/ledger/ledger.h"
#include "rules/ledger/ledger_internal.h"

#define MAX ARB_JSON_INT_MAX
#define T0_MS 1700000000000LL
#define TIMERS_MAX 65536

/* The harness. */

typedef struct timer_rec {
    int64_t at_ms;
    char pending[32];
} timer_rec;

typedef struct harness {
    void *state;
    int64_t now_ms;
    uint64_t next_seq;
    uint64_t client_seq;
    size_t timer_count;
    timer_rec timers[TIMERS_MAX];
    arb_decision decision;
} harness;

static void sink_add(void *user, int64_t at_ms, const char *action, json_t *args)
{
    harness *h = user;
    assert_string_equal(action, "expire");
    const char *pending = json_string_value(json_object_get(args, "pending"));
    assert_non_null(pending);
    assert_true(h->timer_count < TIMERS_MAX);
    timer_rec *timer = &h->timers[h->timer_count++];
    timer->at_ms = at_ms;
    snprintf(timer->pending, sizeof timer->pending, "%s", pending);
}

static arb_timer_sink sink_of(harness *h)
{
    return (arb_timer_sink){.add = sink_add, .user = h};
}

static harness *h_new(void)
{
    harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    assert_int_equal(arb_rules_ledger.state_new(&h->state), 0);
    h->now_ms = T0_MS;
    h->next_seq = 1;
    arb_decision_init(&h->decision);
    return h;
}

static void h_free(harness *h)
{
    arb_decision_clear(&h->decision);
    arb_rules_ledger.state_free(h->state);
    free(h);
}

static void h_check(harness *h)
{
    char why[256];
    int rc = arb_rules_ledger.check(h->state, why, sizeof why);
    if (rc != 0)
        fail_msg("check: %s", why);
}

/* Called with every event the harness evolves, when set (the clients'
 * test follows the server's log through it). */
static void (*g_on_event)(harness *h, const arb_event *event);

static void h_evolve(harness *h)
{
    arb_timer_sink sink = sink_of(h);
    for (size_t i = 0; i < h->decision.event_count; i++) {
        arb_event event;
        memset(&event, 0, sizeof event);
        snprintf(event.stream, sizeof event.stream, "ledger:test");
        snprintf(event.type, sizeof event.type, "%s", h->decision.events[i].type);
        event.seq = h->next_seq++;
        event.data = h->decision.events[i].data; /* borrowed */
        event.applied_at_ms = h->now_ms;
        int rc = arb_rules_ledger.evolve(h->state, &event, &sink);
        if (rc != 0)
            fail_msg("evolve %s (seq %" PRIu64 "): %d", event.type, event.seq, rc);
        if (g_on_event != NULL)
            g_on_event(h, &event);
    }
}

/* Decide a command (steals args), evolve what it emits, check. Returns the
 * decision's code; h->decision keeps the rest until the next call. */
static int h_run(harness *h, arb_role role, const char *who, const char *action, json_t *args)
{
    assert_non_null(args);
    arb_decision_clear(&h->decision);
    arb_command command;
    arb_command_init(&command);
    assert_int_equal(
        arb_command_set(&command, who, role, ++h->client_seq, "ledger:test", action, args), 0);
    json_decref(args);
    arb_ctx ctx = {.now_ms = h->now_ms, .next_seq = h->next_seq, .version = h->next_seq - 1};
    arb_rules_ledger.decide(h->state, &command, &ctx, &h->decision);
    arb_command_clear(&command);
    if (h->decision.code == 0) {
        assert_true(h->decision.event_count > 0);
        h_evolve(h);
    } else {
        assert_int_equal(h->decision.event_count, 0);
        assert_null(h->decision.result);
    }
    h_check(h);
    return h->decision.code;
}

/* JSON from text with single quotes for double ones (tests only). */
static json_t *js(const char *text)
{
    char buffer[4096];
    size_t len = strlen(text);
    assert_true(len < sizeof buffer);
    for (size_t i = 0; i <= len; i++)
        buffer[i] = text[i] == '\'' ? '"' : text[i];
    json_error_t error;
    json_t *value = json_loads(buffer, 0, &error);
    if (value == NULL)
        fail_msg("bad test JSON %s: %s", text, error.text);
    return value;
}

static int admin(harness *h, const char *action, const char *args)
{
    return h_run(h, ARB_ROLE_ADMIN, "root", action, js(args));
}

static int user(harness *h, const char *who, const char *action, const char *args)
{
    return h_run(h, ARB_ROLE_USER, who, action, js(args));
}

static int sys(harness *h, const char *action, const char *args)
{
    return h_run(h, ARB_ROLE_SYSTEM, "arbiter", action, js(args));
}

static const arb__ledger_account *account(harness *h, const char *id)
{
    const arb__ledger_state *state = h->state;
    const arb__ledger_account *found = arb_map_get(&state->accounts, id);
    if (found == NULL)
        fail_msg("no account %s", id);
    return found;
}

static int64_t balance(harness *h, const char *id)
{
    return account(h, id)->balance;
}

static int64_t held(harness *h, const char *id)
{
    return account(h, id)->held;
}

static json_t *detail(harness *h, const char *key)
{
    return json_object_get(h->decision.details, key);
}

static json_t *result(harness *h, const char *key)
{
    return json_object_get(h->decision.result, key);
}

/* Accounts a (alice, USD, 1000), b (bob, USD, 0), e (eve, EUR, 0). */
static harness *h_fixture(void)
{
    harness *h = h_new();
    assert_int_equal(admin(h, "open_account", "{'account':'a','owner':'alice','currency':'USD'}"),
                     0);
    assert_int_equal(admin(h, "open_account", "{'account':'b','owner':'bob','currency':'USD'}"), 0);
    assert_int_equal(admin(h, "open_account", "{'account':'e','owner':'eve','currency':'EUR'}"), 0);
    assert_int_equal(admin(h, "deposit", "{'account':'a','amount':1000}"), 0);
    return h;
}

static json_t *h_save(harness *h)
{
    json_t *snapshot = NULL;
    assert_int_equal(arb_rules_ledger.snapshot_save(h->state, &snapshot), 0);
    assert_non_null(snapshot);
    return snapshot;
}

/* Directed tests: accounts, deposits, transfers. */

static void test_open_deposit_transfer(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(user(h, "alice", "transfer", "{'from':'a','to':'b','amount':300,'memo':'x'}"),
                     0);
    assert_int_equal(balance(h, "a"), 700);
    assert_int_equal(balance(h, "b"), 300);
    assert_int_equal(account(h, "a")->version, 5);
    assert_int_equal(account(h, "b")->version, 5);
    assert_int_equal(account(h, "e")->version, 3);
    assert_string_equal(h->decision.events[0].type, "transferred");
    json_t *expected = js("{'from':'a','to':'b','amount':300,'memo':'x'}");
    assert_true(json_equal(h->decision.events[0].data, expected));
    json_decref(expected);
    assert_int_equal(admin(h, "withdraw", "{'account':'b','amount':100}"), 0);
    json_t *view = arb_rules_ledger.view(h->state, NULL);
    expected = js("{'max_transfer':1000000,"
                  "'accounts':{'a':{'owner':'alice','currency':'USD','balance':700,'held':0,"
                  "'overdraft_limit':0,'version':5},"
                  "'b':{'owner':'bob','currency':'USD','balance':200,'held':0,"
                  "'overdraft_limit':0,'version':6},"
                  "'e':{'owner':'eve','currency':'EUR','balance':0,'held':0,"
                  "'overdraft_limit':0,'version':3}},"
                  "'pending':{},"
                  "'totals':{'USD':{'deposited':1000,'withdrawn':100},"
                  "'EUR':{'deposited':0,'withdrawn':0}}}");
    assert_true(json_equal(view, expected));
    json_decref(view);
    json_decref(expected);
    h_free(h);
}

static void test_invalid_amount(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    const char *amounts[] = {"0", "-5", "1.5", "1.0", "'7'", "9007199254740992", "null", "[1]"};
    char args[128];
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        snprintf(args, sizeof args, "{'from':'a','to':'b','amount':%s}", amounts[i]);
        assert_int_equal(admin(h, "transfer", args), ARB_EINVALID_AMOUNT);
        assert_string_equal(json_string_value(detail(h, "field")), "amount");
        snprintf(args, sizeof args, "{'account':'a','amount':%s}", amounts[i]);
        assert_int_equal(admin(h, "deposit", args), ARB_EINVALID_AMOUNT);
        assert_int_equal(admin(h, "withdraw", args), ARB_EINVALID_AMOUNT);
        snprintf(args, sizeof args, "{'from':'a','to':'b','amount':%s,'timeout_s':5}", amounts[i]);
        assert_int_equal(admin(h, "hold", args), ARB_EINVALID_AMOUNT);
    }
    assert_int_equal(admin(h, "open_account",
                           "{'account':'x','owner':'o','currency':'USD','overdraft_limit':-1}"),
                     ARB_EINVALID_AMOUNT);
    assert_int_equal(admin(h, "configure", "{'max_transfer':0}"), ARB_EINVALID_AMOUNT);
    /* The largest JSON-safe integer is a valid amount. */
    assert_int_equal(admin(h, "open_account", "{'account':'j','owner':'jo','currency':'JPY'}"), 0);
    assert_int_equal(admin(h, "deposit", "{'account':'j','amount':9007199254740991}"), 0);
    assert_int_equal(balance(h, "a"), 1000);
    h_free(h);
}

static void test_invalid_argument(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "transfer", "{'from':'a','amount':5}"), ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail(h, "field")), "to");
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b'}"), ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail(h, "field")), "amount");
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':7,'amount':5}"), ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "transfer", "{'from':'','to':'b','amount':5}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':5,'memo':3}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':5,'amout':5}"),
                     ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail(h, "field")), "amout");
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':5,'expect_versions':3}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "open_account", "{'account':'x','currency':'USD'}"),
                     ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail(h, "field")), "owner");
    assert_int_equal(
        admin(h, "open_account", "{'account':'x','owner':'o','currency':'ABCDEFGHIJKLMNOPQ'}"),
        ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "capture", "{}"), ARB_EINVALID_ARGUMENT);
    assert_int_equal(balance(h, "a"), 1000);
    h_free(h);
}

static void test_unknown_action(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "steal", "{}"), ARB_EUNKNOWN_ACTION);
    assert_string_equal(json_string_value(detail(h, "action")), "steal");
    h_free(h);
}

static void test_account_not_found(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "transfer", "{'from':'zz','to':'yy','amount':5}"),
                     ARB_EACCOUNT_NOT_FOUND);
    assert_string_equal(json_string_value(detail(h, "account")), "zz");
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'yy','amount':5}"),
                     ARB_EACCOUNT_NOT_FOUND);
    assert_string_equal(json_string_value(detail(h, "account")), "yy");
    assert_int_equal(admin(h, "deposit", "{'account':'zz','amount':5}"), ARB_EACCOUNT_NOT_FOUND);
    assert_int_equal(admin(h, "withdraw", "{'account':'zz','amount':5}"), ARB_EACCOUNT_NOT_FOUND);
    h_free(h);
}

static void test_self_transfer_and_currency(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'a','amount':5}"), ARB_ESELF_TRANSFER);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'e','amount':5}"),
                     ARB_ECURRENCY_MISMATCH);
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'e','amount':5,'timeout_s':9}"),
                     ARB_ECURRENCY_MISMATCH);
    assert_int_equal(balance(h, "a"), 1000);
    h_free(h);
}

static void test_insufficient_funds(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':1001}"),
                     ARB_EINSUFFICIENT_FUNDS);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':1000}"), 0);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':1}"),
                     ARB_EINSUFFICIENT_FUNDS);
    assert_int_equal(admin(h, "withdraw", "{'account':'a','amount':1}"), ARB_EINSUFFICIENT_FUNDS);
    /* With an overdraft the balance may go down to -limit, and no further. */
    assert_int_equal(admin(h, "open_account",
                           "{'account':'o','owner':'olga','currency':'USD','overdraft_limit':50}"),
                     0);
    assert_int_equal(admin(h, "deposit", "{'account':'o','amount':10}"), 0);
    assert_int_equal(admin(h, "transfer", "{'from':'o','to':'b','amount':61}"),
                     ARB_EINSUFFICIENT_FUNDS);
    assert_int_equal(admin(h, "transfer", "{'from':'o','to':'b','amount':60}"), 0);
    assert_int_equal(balance(h, "o"), -50);
    assert_int_equal(admin(h, "transfer", "{'from':'o','to':'b','amount':1}"),
                     ARB_EINSUFFICIENT_FUNDS);
    assert_int_equal(admin(h, "hold", "{'from':'o','to':'b','amount':1,'timeout_s':5}"),
                     ARB_EINSUFFICIENT_FUNDS);
    h_free(h);
}

static void test_exceeds_limit(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "deposit", "{'account':'a','amount':5000000}"), 0);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':1000001}"),
                     ARB_EEXCEEDS_LIMIT);
    assert_int_equal(json_integer_value(detail(h, "max_transfer")), 1000000);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':1000000}"), 0);
    assert_int_equal(user(h, "alice", "configure", "{'max_transfer':100}"), ARB_EFORBIDDEN);
    assert_int_equal(admin(h, "configure", "{'max_transfer':100}"), 0);
    assert_string_equal(h->decision.events[0].type, "configured");
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':101}"),
                     ARB_EEXCEEDS_LIMIT);
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'b','amount':101,'timeout_s':5}"),
                     ARB_EEXCEEDS_LIMIT);
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':100}"), 0);
    /* Deposits and withdrawals are not transfers: no per-transfer maximum. */
    assert_int_equal(admin(h, "deposit", "{'account':'a','amount':1000}"), 0);
    h_free(h);
}

static void test_overflow(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "configure", "{'max_transfer':9007199254740991}"), 0);
    /* USD deposits now total 2^53-1: no more may enter. */
    assert_int_equal(admin(h, "deposit", "{'account':'b','amount':9007199254739991}"), 0);
    assert_int_equal(admin(h, "deposit", "{'account':'a','amount':1}"), ARB_EOVERFLOW);
    /* Only an overdraft can push a full account past 2^53-1. */
    assert_int_equal(
        admin(h, "open_account",
              "{'account':'o','owner':'olga','currency':'USD','overdraft_limit':5000}"),
        0);
    assert_int_equal(admin(h, "transfer", "{'from':'o','to':'b','amount':1001}"), ARB_EOVERFLOW);
    assert_string_equal(json_string_value(detail(h, "account")), "b");
    assert_int_equal(admin(h, "transfer", "{'from':'o','to':'b','amount':1000}"), 0);
    assert_int_equal(balance(h, "b"), MAX);
    /* A full account cannot receive a capture either; the hold can still be voided. */
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'b','amount':9,'timeout_s':5}"), 0);
    char args[64];
    snprintf(args, sizeof args, "{'pending':'%s'}", json_string_value(result(h, "pending")));
    assert_int_equal(admin(h, "capture", args), ARB_EOVERFLOW);
    assert_int_equal(admin(h, "void", args), 0);
    /* held stays a JSON integer: a second hold past 2^53-1 overflows. */
    assert_int_equal(admin(h, "open_account",
                           "{'account':'g','owner':'gus','currency':'GBP','overdraft_limit':10}"),
                     0);
    assert_int_equal(admin(h, "open_account", "{'account':'g2','owner':'gus','currency':'GBP'}"),
                     0);
    assert_int_equal(admin(h, "deposit", "{'account':'g','amount':9007199254740991}"), 0);
    assert_int_equal(
        admin(h, "hold", "{'from':'g','to':'g2','amount':9007199254740991,'timeout_s':5}"), 0);
    assert_int_equal(admin(h, "hold", "{'from':'g','to':'g2','amount':1,'timeout_s':5}"),
                     ARB_EOVERFLOW);
    assert_int_equal(held(h, "g"), MAX);
    h_free(h);
}

static void test_account_exists(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "open_account", "{'account':'a','owner':'zed','currency':'USD'}"),
                     ARB_EACCOUNT_EXISTS);
    assert_string_equal(account(h, "a")->owner, "alice");
    h_free(h);
}

static void test_forbidden(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(
        user(h, "alice", "open_account", "{'account':'x','owner':'alice','currency':'USD'}"),
        ARB_EFORBIDDEN);
    assert_int_equal(user(h, "alice", "deposit", "{'account':'a','amount':5}"), ARB_EFORBIDDEN);
    assert_int_equal(user(h, "alice", "withdraw", "{'account':'a','amount':5}"), ARB_EFORBIDDEN);
    assert_int_equal(user(h, "bob", "transfer", "{'from':'a','to':'b','amount':5}"),
                     ARB_EFORBIDDEN);
    assert_int_equal(user(h, "bob", "hold", "{'from':'a','to':'b','amount':5,'timeout_s':5}"),
                     ARB_EFORBIDDEN);
    assert_int_equal(user(h, "alice", "expire", "{'pending':'p1'}"), ARB_EFORBIDDEN);
    assert_int_equal(admin(h, "expire", "{'pending':'p1'}"), ARB_EFORBIDDEN);
    assert_int_equal(user(h, "alice", "transfer", "{'from':'a','to':'b','amount':5}"), 0);
    assert_int_equal(sys(h, "transfer", "{'from':'a','to':'b','amount':5}"), 0);
    assert_int_equal(balance(h, "b"), 10);
    h_free(h);
}

static void test_version_conflict(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    /* a was last changed by the deposit (seq 4), b by its opening (seq 2). */
    assert_int_equal(user(h, "alice", "transfer",
                          "{'from':'a','to':'b','amount':5,'expect_versions':{'a':4,'b':2}}"),
                     0);
    assert_int_equal(
        user(h, "alice", "transfer", "{'from':'a','to':'b','amount':5,'expect_versions':{'a':4}}"),
        ARB_EVERSION_CONFLICT);
    assert_string_equal(json_string_value(detail(h, "account")), "a");
    assert_int_equal(json_integer_value(detail(h, "version")), 5);
    /* Any account may be named, not only the two that move money. */
    assert_int_equal(
        user(h, "alice", "transfer", "{'from':'a','to':'b','amount':5,'expect_versions':{'e':2}}"),
        ARB_EVERSION_CONFLICT);
    assert_int_equal(json_integer_value(detail(h, "version")), 3);
    assert_int_equal(
        user(h, "alice", "transfer", "{'from':'a','to':'b','amount':5,'expect_versions':{'zz':1}}"),
        ARB_EACCOUNT_NOT_FOUND);
    assert_int_equal(balance(h, "a"), 995);
    h_free(h);
}

/* Directed tests: two-phase holds. */

/* Hold amount from a to b for timeout_s; returns the pending id. */
static void hold_ok(harness *h, int64_t amount, int64_t timeout_s, char *id, size_t id_size)
{
    char args[128];
    snprintf(args, sizeof args,
             "{'from':'a','to':'b','amount':%" PRId64 ",'timeout_s':%" PRId64 "}", amount,
             timeout_s);
    uint64_t seq = h->next_seq;
    assert_int_equal(user(h, "alice", "hold", args), 0);
    snprintf(id, id_size, "p%" PRIu64, seq);
    assert_string_equal(json_string_value(result(h, "pending")), id);
    assert_int_equal(json_integer_value(result(h, "expires_at")), h->now_ms + timeout_s * 1000);
}

static int on_pending(harness *h, arb_role role, const char *who, const char *action,
                      const char *id, const char *extra)
{
    char args[128];
    snprintf(args, sizeof args, "{'pending':'%s'%s}", id, extra);
    return h_run(h, role, who, action, js(args));
}

static void test_hold_capture_partial(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char id[32];
    hold_ok(h, 400, 60, id, sizeof id);
    assert_int_equal(balance(h, "a"), 600);
    assert_int_equal(held(h, "a"), 400);
    assert_int_equal(h->timer_count, 1);
    assert_int_equal(h->timers[0].at_ms, T0_MS + 60000);
    assert_string_equal(h->timers[0].pending, id);
    /* Held money is out of the balance: it cannot be spent twice. */
    assert_int_equal(admin(h, "transfer", "{'from':'a','to':'b','amount':601}"),
                     ARB_EINSUFFICIENT_FUNDS);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", id, ",'amount':401"),
                     ARB_EINVALID_AMOUNT);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "bob", "capture", id, ""), ARB_EFORBIDDEN);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", id, ",'amount':150"), 0);
    assert_string_equal(h->decision.events[0].type, "captured");
    assert_int_equal(json_integer_value(result(h, "amount")), 150);
    assert_int_equal(balance(h, "a"), 850);
    assert_int_equal(held(h, "a"), 0);
    assert_int_equal(balance(h, "b"), 150);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", id, ""), ARB_EPENDING_CLOSED);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "void", id, ""), ARB_EPENDING_CLOSED);
    /* The stale timer is rejected; the engine drops it. */
    h->now_ms += 60000;
    assert_int_equal(on_pending(h, ARB_ROLE_SYSTEM, "arbiter", "expire", id, ""),
                     ARB_EPENDING_CLOSED);
    h_free(h);
}

static void test_hold_capture_full_and_void(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char first[32], second[32];
    hold_ok(h, 300, 60, first, sizeof first);
    hold_ok(h, 200, 60, second, sizeof second);
    assert_int_equal(held(h, "a"), 500);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "capture", first, ""), 0);
    assert_int_equal(json_integer_value(result(h, "amount")), 300);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "bob", "void", second, ""), ARB_EFORBIDDEN);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "void", second, ""), 0);
    assert_string_equal(h->decision.events[0].type, "voided");
    assert_int_equal(balance(h, "a"), 700);
    assert_int_equal(held(h, "a"), 0);
    assert_int_equal(balance(h, "b"), 300);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", second, ""),
                     ARB_EPENDING_CLOSED);
    assert_string_equal(json_string_value(detail(h, "status")), "voided");
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", "p999", ""),
                     ARB_EPENDING_NOT_FOUND);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "void", "p999", ""),
                     ARB_EPENDING_NOT_FOUND);
    h_free(h);
}

static void test_hold_expires_by_timer(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char id[32];
    hold_ok(h, 250, 30, id, sizeof id);
    h->now_ms += 29999;
    assert_int_equal(on_pending(h, ARB_ROLE_SYSTEM, "arbiter", "expire", id, ""),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(held(h, "a"), 250);
    h->now_ms += 1;
    assert_int_equal(h->timers[0].at_ms, h->now_ms);
    assert_int_equal(on_pending(h, ARB_ROLE_SYSTEM, "arbiter", "expire", h->timers[0].pending, ""),
                     0);
    assert_string_equal(h->decision.events[0].type, "expired");
    assert_int_equal(balance(h, "a"), 1000);
    assert_int_equal(held(h, "a"), 0);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", id, ""),
                     ARB_EPENDING_EXPIRED);
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "void", id, ""), ARB_EPENDING_EXPIRED);
    assert_int_equal(on_pending(h, ARB_ROLE_SYSTEM, "arbiter", "expire", id, ""),
                     ARB_EPENDING_CLOSED);
    json_t *view = arb_rules_ledger.view(h->state, NULL);
    json_t *hold = json_object_get(json_object_get(view, "pending"), id);
    assert_string_equal(json_string_value(json_object_get(hold, "status")), "expired");
    json_decref(view);
    h_free(h);
}

static void test_capture_at_deadline_before_timer(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char id[32];
    hold_ok(h, 100, 10, id, sizeof id);
    h->now_ms += 9999;
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", id, ",'amount':1"), 0);
    assert_int_equal(balance(h, "b"), 1);
    hold_ok(h, 100, 10, id, sizeof id);
    h->now_ms += 10000; /* exactly expires_at; the timer has not fired */
    assert_int_equal(on_pending(h, ARB_ROLE_USER, "alice", "capture", id, ""),
                     ARB_EPENDING_EXPIRED);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "void", id, ""), ARB_EPENDING_EXPIRED);
    assert_int_equal(held(h, "a"), 100);
    assert_int_equal(on_pending(h, ARB_ROLE_SYSTEM, "arbiter", "expire", id, ""), 0);
    assert_int_equal(held(h, "a"), 0);
    assert_int_equal(balance(h, "a"), 999);
    h_free(h);
}

static void test_hold_arguments(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'b','amount':5,'timeout_s':0}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'b','amount':5,'timeout_s':2592001}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'b','amount':5}"), ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'b','amount':5,'timeout_s':2592000}"), 0);
    assert_int_equal(admin(h, "hold", "{'from':'a','to':'a','amount':5,'timeout_s':5}"),
                     ARB_ESELF_TRANSFER);
    assert_int_equal(admin(h, "hold",
                           "{'from':'a','to':'b','amount':5,'timeout_s':5,"
                           "'expect_versions':{'a':1}}"),
                     ARB_EVERSION_CONFLICT);
    h_free(h);
}

/* Directed tests: batches. */

static void test_batch_all_or_nothing(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    json_t *before = h_save(h);
    uint64_t seq_before = h->next_seq;
    assert_int_equal(
        admin(h, "batch",
              "{'items':[{'action':'transfer','args':{'from':'a','to':'b','amount':600}},"
              "{'action':'hold','args':{'from':'a','to':'b','amount':300,'timeout_s':5}},"
              "{'action':'transfer','args':{'from':'a','to':'b','amount':200}},"
              "{'action':'deposit','args':{'account':'a','amount':1}}]}"),
        ARB_EINSUFFICIENT_FUNDS);
    assert_int_equal(json_integer_value(detail(h, "item")), 2);
    assert_string_equal(json_string_value(detail(h, "action")), "transfer");
    assert_string_equal(json_string_value(detail(h, "account")), "a");
    json_t *after = h_save(h);
    assert_true(json_equal(before, after));
    assert_int_equal(h->next_seq, seq_before);
    assert_int_equal(h->timer_count, 0);
    json_decref(before);
    json_decref(after);
    /* A malformed or unknown item is reported the same way. */
    assert_int_equal(admin(h, "batch",
                           "{'items':[{'action':'transfer','args':{'from':'a','to':'b',"
                           "'amount':1}},{'action':'rob','args':{}}]}"),
                     ARB_EUNKNOWN_ACTION);
    assert_int_equal(json_integer_value(detail(h, "item")), 1);
    assert_int_equal(admin(h, "batch", "{'items':[{'action':'transfer'}]}"), ARB_EINVALID_ARGUMENT);
    assert_int_equal(json_integer_value(detail(h, "item")), 0);
    assert_int_equal(balance(h, "a"), 1000);
    h_free(h);
}

static void test_batch_sees_earlier_items(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    uint64_t first = h->next_seq;
    char text[1024];
    snprintf(text, sizeof text,
             "{'items':["
             "{'action':'open_account','args':{'account':'c','owner':'carol','currency':'USD'}},"
             "{'action':'deposit','args':{'account':'c','amount':500}},"
             "{'action':'transfer','args':{'from':'c','to':'b','amount':200,"
             "'expect_versions':{'c':%" PRIu64 "}}},"
             "{'action':'hold','args':{'from':'c','to':'b','amount':250,'timeout_s':5}},"
             "{'action':'capture','args':{'pending':'p%" PRIu64 "','amount':50}},"
             "{'action':'withdraw','args':{'account':'c','amount':250}}]}",
             first + 1, first + 3);
    assert_int_equal(admin(h, "batch", text), 0);
    assert_int_equal(h->decision.event_count, 6);
    assert_int_equal(h->next_seq, first + 6);
    json_t *items = result(h, "items");
    assert_int_equal(json_array_size(items), 6);
    assert_true(json_is_null(json_array_get(items, 0)));
    char pending[32];
    snprintf(pending, sizeof pending, "p%" PRIu64, first + 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 3), "pending")),
                        pending);
    assert_int_equal(balance(h, "c"), 0);
    assert_int_equal(held(h, "c"), 0);
    assert_int_equal(balance(h, "b"), 250);
    assert_int_equal(account(h, "c")->version, first + 5);
    /* The hold was captured inside the batch, so its timer is stale. */
    assert_int_equal(h->timer_count, 1);
    h->now_ms += 5000;
    assert_int_equal(on_pending(h, ARB_ROLE_SYSTEM, "arbiter", "expire", pending, ""),
                     ARB_EPENDING_CLOSED);
    h_free(h);
}

static void test_batch_limits(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    assert_int_equal(admin(h, "batch", "{'items':[]}"), ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "batch", "{'items':{}}"), ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "batch", "{'items':[{'action':'batch','args':{'items':[]}}]}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(h, "batch", "{'items':[{'action':'configure','args':{}}]}"),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(sys(h, "batch", "{'items':[{'action':'expire','args':{'pending':'p1'}}]}"),
                     ARB_EINVALID_ARGUMENT);
    /* Users are held to the same rules inside a batch. */
    assert_int_equal(user(h, "alice", "batch",
                          "{'items':[{'action':'deposit','args':{'account':'a','amount':1}}]}"),
                     ARB_EFORBIDDEN);
    /* 64 items pass, 65 do not. */
    json_t *items = json_array();
    for (int i = 0; i < ARB_LEDGER_BATCH_ITEMS_MAX + 1; i++)
        json_array_append_new(items, js("{'action':'transfer','args':{'from':'a','to':'b',"
                                        "'amount':1}}"));
    assert_int_equal(h_run(h, ARB_ROLE_ADMIN, "root", "batch", json_pack("{s:O}", "items", items)),
                     ARB_EINVALID_ARGUMENT);
    json_array_remove(items, 0);
    assert_int_equal(h_run(h, ARB_ROLE_ADMIN, "root", "batch", json_pack("{s:o}", "items", items)),
                     0);
    assert_int_equal(balance(h, "b"), ARB_LEDGER_BATCH_ITEMS_MAX);
    h_free(h);
}

/* Directed tests: snapshots, invariants, corrupt input. */

static harness *h_with_loaded(harness *h, const json_t *snapshot)
{
    harness *loaded = h_new();
    arb_rules_ledger.state_free(loaded->state);
    loaded->state = NULL;
    arb_timer_sink sink = sink_of(loaded);
    assert_int_equal(
        arb_rules_ledger.snapshot_load(snapshot, h->next_seq - 1, &loaded->state, &sink), 0);
    loaded->now_ms = h->now_ms;
    loaded->next_seq = h->next_seq;
    h_check(loaded);
    return loaded;
}

static void test_snapshot_round_trip(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char open[32], captured[32], voided[32], expired[32];
    hold_ok(h, 10, 5, expired, sizeof expired);
    hold_ok(h, 20, 60, captured, sizeof captured);
    hold_ok(h, 30, 60, voided, sizeof voided);
    hold_ok(h, 40, 60, open, sizeof open);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "capture", captured, ",'amount':7"), 0);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "void", voided, ""), 0);
    h->now_ms += 5000;
    assert_int_equal(on_pending(h, ARB_ROLE_SYSTEM, "arbiter", "expire", expired, ""), 0);
    assert_int_equal(admin(h, "configure", "{'max_transfer':777}"), 0);
    json_t *saved = h_save(h);
    harness *loaded = h_with_loaded(h, saved);
    json_t *again = h_save(loaded);
    assert_true(json_equal(saved, again));
    /* Only the open hold's deadline is reported. */
    assert_int_equal(loaded->timer_count, 1);
    assert_string_equal(loaded->timers[0].pending, open);
    assert_int_equal(loaded->timers[0].at_ms, T0_MS + 60000);
    /* The loaded state decides exactly as the original. */
    const char *commands[][2] = {
        {"capture", ",'amount':41"}, {"capture", ""}, {"void", ""}, {"transfer", ""}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        int code, loaded_code;
        if (strcmp(commands[i][0], "transfer") == 0) {
            const char *args = "{'from':'a','to':'b','amount':778}";
            code = admin(h, "transfer", args);
            loaded_code = admin(loaded, "transfer", args);
        } else {
            code = on_pending(h, ARB_ROLE_ADMIN, "root", commands[i][0], open, commands[i][1]);
            loaded_code =
                on_pending(loaded, ARB_ROLE_ADMIN, "root", commands[i][0], open, commands[i][1]);
        }
        assert_int_equal(code, loaded_code);
        json_t *left = h_save(h), *right = h_save(loaded);
        assert_true(json_equal(left, right));
        json_decref(left);
        json_decref(right);
    }
    json_decref(saved);
    json_decref(again);
    h_free(loaded);
    h_free(h);
}

/* Load a copy of snapshot, taken at seq, with one change; expect ARB_ECORRUPT. */
static void expect_corrupt_at(const json_t *snapshot, uint64_t seq, const char *path, json_t *value)
{
    json_t *copy = json_deep_copy(snapshot);
    json_t *parent = copy;
    char keys[128];
    snprintf(keys, sizeof keys, "%s", path);
    char *key = keys, *slash;
    while ((slash = strchr(key, '/')) != NULL) {
        *slash = '\0';
        parent = json_object_get(parent, key);
        assert_non_null(parent);
        key = slash + 1;
    }
    if (value != NULL)
        json_object_set_new(parent, key, value);
    else
        json_object_del(parent, key);
    void *state = NULL;
    int rc = arb_rules_ledger.snapshot_load(copy, seq, &state, NULL);
    if (rc != ARB_ECORRUPT)
        fail_msg("loading with %s changed gave %d", path, rc);
    assert_null(state);
    json_decref(copy);
}

static void test_snapshot_load_rejects_corrupt(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char id[32], path[64];
    hold_ok(h, 100, 60, id, sizeof id);
    json_t *snapshot = h_save(h);
    uint64_t seq = h->next_seq - 1;
#define expect_corrupt(snapshot, path, value) expect_corrupt_at(snapshot, seq, path, value)
    /* Nothing in a snapshot may be newer than the seq it was taken at: a
     * hold id or version from the future would collide with a later event. */
    void *state = NULL;
    assert_int_equal(arb_rules_ledger.snapshot_load(snapshot, seq - 1, &state, NULL), ARB_ECORRUPT);
    assert_null(state);
    expect_corrupt(snapshot, "accounts/a/version", json_integer((json_int_t)seq + 1));
    json_t *moved = json_deep_copy(json_object_get(json_object_get(snapshot, "pending"), id));
    char future[32];
    snprintf(future, sizeof future, "p%llu", (unsigned long long)seq + 1);
    snprintf(path, sizeof path, "pending/%s", future);
    json_t *with_future = json_deep_copy(snapshot);
    json_object_del(json_object_get(with_future, "pending"), id);
    expect_corrupt(with_future, path, moved);
    json_decref(with_future);
    expect_corrupt(snapshot, "accounts/a/nickname", json_string("x"));
    snprintf(path, sizeof path, "pending/%s/note", id);
    expect_corrupt(snapshot, path, json_string("x"));
    expect_corrupt(snapshot, "totals/USD/extra", json_integer(1));
    expect_corrupt(snapshot, "format", json_integer(2));
    expect_corrupt(snapshot, "format", NULL);
    expect_corrupt(snapshot, "max_transfer", json_integer(0));
    expect_corrupt(snapshot, "accounts/a/balance", json_integer(901));
    expect_corrupt(snapshot, "accounts/a/held", json_integer(99));
    expect_corrupt(snapshot, "accounts/a/owner", json_integer(1));
    expect_corrupt(snapshot, "accounts/a/currency", json_string("EUR"));
    expect_corrupt(snapshot, "accounts/b/balance", json_real(0.0));
    expect_corrupt(snapshot, "totals/USD", NULL);
    expect_corrupt(snapshot, "totals/USD/deposited", json_integer(1001));
    snprintf(path, sizeof path, "pending/%s/to", id);
    expect_corrupt(snapshot, path, json_string("nobody"));
    snprintf(path, sizeof path, "pending/%s/to", id);
    expect_corrupt(snapshot, path, json_string("e"));
    snprintf(path, sizeof path, "pending/%s/status", id);
    expect_corrupt(snapshot, path, json_string("voided"));
    snprintf(path, sizeof path, "pending/%s/captured", id);
    expect_corrupt(snapshot, path, json_integer(5));
    expect_corrupt(snapshot, "accounts", json_array());
    expect_corrupt(snapshot, "extra", json_true());
#undef expect_corrupt
    json_decref(snapshot);
    h_free(h);
}

static void test_check_detects_corruption(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char id[32], why[256];
    hold_ok(h, 100, 60, id, sizeof id);
    arb__ledger_account *a = (arb__ledger_account *)account(h, "a");
    a->balance += 1; /* money from nowhere */
    assert_int_equal(arb_rules_ledger.check(h->state, why, sizeof why), ARB_ECORRUPT);
    assert_non_null(strstr(why, "USD"));
    a->balance -= 2;
    a->held += 1; /* the sum holds, the holds do not */
    assert_int_equal(arb_rules_ledger.check(h->state, why, sizeof why), ARB_ECORRUPT);
    assert_non_null(strstr(why, "pending holds"));
    a->held -= 1;
    a->balance += 1;
    a->overdraft_limit = 0;
    a->balance -= 1000;
    a->held += 1000;
    assert_int_equal(arb_rules_ledger.check(h->state, why, sizeof why), ARB_ECORRUPT);
    a->balance += 1000;
    a->held -= 1000;
    assert_int_equal(arb_rules_ledger.check(h->state, why, sizeof why), 0);
    h_free(h);
}

static int evolve_raw(harness *h, uint64_t seq, const char *type, const char *data)
{
    arb_event event;
    memset(&event, 0, sizeof event);
    snprintf(event.type, sizeof event.type, "%s", type);
    event.seq = seq;
    event.data = js(data);
    arb_timer_sink sink = sink_of(h);
    int rc = arb_rules_ledger.evolve(h->state, &event, &sink);
    json_decref(event.data);
    return rc;
}

static void test_evolve_rejects_corrupt_events(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    json_t *before = h_save(h);
    const char *events[][2] = {
        {"transferred", "{'from':'a','to':'zz','amount':5}"},
        {"transferred", "{'from':'a','to':'b','amount':'5'}"},
        {"transferred", "{'from':'a','to':'b','amount':1001}"},
        {"transferred", "{'from':'a','to':'e','amount':5}"},
        {"transferred", "{'from':'a','to':'a','amount':5}"},
        {"deposited", "{'account':'a','amount':9007199254740991}"},
        {"withdrawn", "{'account':'b','amount':1}"},
        {"held", "{'pending':'p1','from':'a','to':'b','amount':5,'expires_at':1}"},
        {"held", "{'pending':'p9','from':'a','to':'b','amount':5000,'expires_at':1}"},
        {"captured", "{'pending':'p9','amount':1}"},
        {"voided", "{'pending':'p3'}"},
        {"account_opened", "{'account':'a','owner':'x','currency':'USD','overdraft_limit':0}"},
        {"account_opened", "{'account':'q','owner':'x','currency':'USD'}"},
        {"configured", "{'max_transfer':-1}"},
        {"stolen", "{}"},
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        if (evolve_raw(h, 9, events[i][0], events[i][1]) != ARB_ECORRUPT)
            fail_msg("evolve accepted %s %s", events[i][0], events[i][1]);
        json_t *after = h_save(h);
        assert_true(json_equal(before, after));
        json_decref(after);
    }
    assert_int_equal(h->timer_count, 0);
    /* The one well-formed event is accepted. */
    assert_int_equal(
        evolve_raw(h, 9, "held", "{'pending':'p9','from':'a','to':'b','amount':5,'expires_at':1}"),
        0);
    assert_int_equal(h->timer_count, 1);
    h_check(h);
    json_decref(before);
    h_free(h);
}

static void test_closed_holds_are_forgotten_oldest_first(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    char ids[4][32];
    for (int i = 0; i < 4; i++)
        hold_ok(h, 10, 60, ids[i], sizeof ids[i]);
    arb__ledger_set_closed_kept(h->state, 2);
    /* Close them out of creation order: 2, 0, 3; 1 stays open. */
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "void", ids[2], ""), 0);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "capture", ids[0], ""), 0);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "void", ids[3], ""), 0);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "void", ids[2], ""),
                     ARB_EPENDING_NOT_FOUND);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "void", ids[0], ""),
                     ARB_EPENDING_CLOSED);
    assert_int_equal(on_pending(h, ARB_ROLE_ADMIN, "root", "void", ids[3], ""),
                     ARB_EPENDING_CLOSED);
    json_t *saved = h_save(h);
    assert_int_equal(json_object_size(json_object_get(saved, "pending")), 3);
    harness *loaded = h_with_loaded(h, saved);
    json_t *again = h_save(loaded);
    assert_true(json_equal(saved, again));
    /* The FIFO order survives the snapshot: the capture (ids[0]) goes first. */
    arb__ledger_set_closed_kept(loaded->state, 1);
    assert_int_equal(on_pending(loaded, ARB_ROLE_ADMIN, "root", "void", ids[0], ""),
                     ARB_EPENDING_NOT_FOUND);
    assert_int_equal(on_pending(loaded, ARB_ROLE_ADMIN, "root", "void", ids[3], ""),
                     ARB_EPENDING_CLOSED);
    json_decref(saved);
    json_decref(again);
    h_free(loaded);
    h_free(h);
}

static void test_redact_and_view_for_every_viewer(void **unused)
{
    (void)unused;
    harness *h = h_fixture();
    arb_event event;
    memset(&event, 0, sizeof event);
    event.data = js("{'from':'a','to':'b','amount':1}");
    arb_principal viewer = {.id = "bob", .role = ARB_ROLE_USER};
    json_t *redacted = arb_rules_ledger.redact(&event, &viewer);
    assert_true(json_equal(redacted, event.data));
    json_decref(redacted);
    json_decref(event.data);
    json_t *mine = arb_rules_ledger.view(h->state, &viewer);
    json_t *all = arb_rules_ledger.view(h->state, NULL);
    assert_true(json_equal(mine, all));
    json_decref(mine);
    json_decref(all);
    assert_string_equal(arb_rules_ledger.kind, "ledger");
    assert_ptr_equal(arb_rules_find("ledger"), &arb_rules_ledger);
    h_free(h);
}

/* The randomized test: a reference model in plain arrays.
 *
 * Commands are generated as model-side descriptions (gen_item), turned into
 * JSON for the module, and interpreted independently by the model below,
 * which follows docs/ledger.md's check order. Account i is "a<i>", owner j
 * is "u<j>", currency k is currencies[k]; a hold is named by its seq. */

#define M_ACCOUNTS 8
#define M_OWNERS 3
#define M_CURRENCIES 2
#define M_HOLDS_MAX 40000
#define M_BATCH_MAX 4
#define M_STEPS_DEFAULT 6000
#define M_BOGUS_SEQ 999999999ULL

static const char *const currencies[M_CURRENCIES] = {"USD", "EUR"};

enum {
    A_TRANSFER,
    A_HOLD,
    A_CAPTURE,
    A_VOID,
    A_DEPOSIT,
    A_WITHDRAW,
    A_OPEN,
    A_EXPIRE,
    A_CONFIGURE,
    A_BOGUS,
    A_COUNT
};
static const char *const action_names[A_COUNT] = {"transfer",  "hold",     "capture",      "void",
                                                  "deposit",   "withdraw", "open_account", "expire",
                                                  "configure", "plunder"};

enum { K_INT, K_REAL, K_STRING, K_MISSING };

typedef struct m_account {
    bool exists;
    int owner;
    int currency;
    int64_t balance, held, overdraft;
    uint64_t version;
} m_account;

typedef struct m_hold {
    uint64_t seq; /* its id is "p<seq>" */
    int from, to;
    int64_t amount, captured, expires_at;
    arb__ledger_hold_status status;
    uint64_t version;
} m_hold;

typedef struct model {
    uint64_t next_seq;
    int64_t transfer_max;
    m_account accounts[M_ACCOUNTS];
    int64_t deposited[M_CURRENCIES], withdrawn[M_CURRENCIES];
    size_t hold_count;
    m_hold *holds; /* M_HOLDS_MAX, in seq order */
} model;

typedef struct gen_item {
    int action;
    int from, to; /* accounts; `from` is also deposit's and open's account */
    int kind;     /* of the amount (or overdraft_limit, max_transfer) */
    int64_t amount;
    int64_t timeout_s;
    uint64_t pending_seq; /* capture, void, expire */
    int owner, currency;  /* open */
    bool memo, missing_field, unknown_field;
    bool expect;
    int expect_account;
    uint64_t expect_version;
} gen_item;

typedef struct gen_cmd {
    arb_role role;
    int who; /* the user's owner index */
    bool batch;
    int count;
    gen_item items[M_BATCH_MAX];
} gen_cmd;

static unsigned g_seed;
static int g_step;
static int g_codes[128]; /* how often each outcome came up: index -code */
static int g_batches, g_batches_accepted;

#define R_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("ARB_SEED=%u step %d: %s (line %d)", g_seed, g_step, #cond, __LINE__);        \
    } while (0)

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64: small, good enough, reproducible from the seed. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t pick(int64_t n)
{
    return (int64_t)(rng() % (uint64_t)n);
}

static bool chance(int percent)
{
    return pick(100) < percent;
}

/* The model. Each m_* returns 0 (and changes m) or the expected code. */

static m_hold *m_find_hold(model *m, uint64_t seq)
{
    size_t low = 0, high = m->hold_count;
    while (low < high) {
        size_t mid = (low + high) / 2;
        if (m->holds[mid].seq == seq)
            return &m->holds[mid];
        if (m->holds[mid].seq < seq)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

static int m_amount_code(const gen_item *item, int64_t min, bool required)
{
    switch (item->kind) {
    case K_MISSING:
        return required ? ARB_EINVALID_ARGUMENT : 0;
    case K_REAL:
    case K_STRING:
        return ARB_EINVALID_AMOUNT;
    default:
        return item->amount < min || item->amount > MAX ? ARB_EINVALID_AMOUNT : 0;
    }
}

static bool m_owner_ok(const gen_cmd *cmd, const m_account *account)
{
    return cmd->role != ARB_ROLE_USER || account->owner == cmd->who;
}

static int m_move(model *m, const gen_cmd *cmd, const gen_item *item, int64_t now, bool hold)
{
    int rc = m_amount_code(item, 1, true);
    if (rc != 0)
        return rc;
    if (item->missing_field)
        return ARB_EINVALID_ARGUMENT;
    if (hold && (item->timeout_s < 1 || item->timeout_s > ARB_LEDGER_HOLD_TIMEOUT_S_MAX))
        return ARB_EINVALID_ARGUMENT;
    m_account *from = &m->accounts[item->from], *to = &m->accounts[item->to];
    if (!from->exists || !to->exists)
        return ARB_EACCOUNT_NOT_FOUND;
    if (item->from == item->to)
        return ARB_ESELF_TRANSFER;
    if (!m_owner_ok(cmd, from))
        return ARB_EFORBIDDEN;
    if (item->expect && !m->accounts[item->expect_account].exists)
        return ARB_EACCOUNT_NOT_FOUND;
    if (item->expect && m->accounts[item->expect_account].version != item->expect_version)
        return ARB_EVERSION_CONFLICT;
    if (from->currency != to->currency)
        return ARB_ECURRENCY_MISMATCH;
    if (item->amount > m->transfer_max)
        return ARB_EEXCEEDS_LIMIT;
    if (item->amount > from->balance + from->overdraft)
        return ARB_EINSUFFICIENT_FUNDS;
    if (hold ? from->held + item->amount > MAX : to->balance + to->held + item->amount > MAX)
        return ARB_EOVERFLOW;
    uint64_t seq = m->next_seq++;
    from->balance -= item->amount;
    from->version = seq;
    if (!hold) {
        to->balance += item->amount;
        to->version = seq;
        return 0;
    }
    from->held += item->amount;
    R_CHECK(m->hold_count < M_HOLDS_MAX);
    m->holds[m->hold_count++] = (m_hold){.seq = seq,
                                         .from = item->from,
                                         .to = item->to,
                                         .amount = item->amount,
                                         .expires_at = now + item->timeout_s * 1000,
                                         .status = ARB__LEDGER_HOLD_PENDING,
                                         .version = seq};
    return 0;
}

static int m_hold_open(model *m, const gen_cmd *cmd, const gen_item *item, int64_t now,
                       m_hold **hold_out)
{
    m_hold *hold = m_find_hold(m, item->pending_seq);
    if (hold == NULL)
        return ARB_EPENDING_NOT_FOUND;
    if (hold->status == ARB__LEDGER_HOLD_EXPIRED ||
        (hold->status == ARB__LEDGER_HOLD_PENDING && now >= hold->expires_at))
        return ARB_EPENDING_EXPIRED;
    if (hold->status != ARB__LEDGER_HOLD_PENDING)
        return ARB_EPENDING_CLOSED;
    if (!m_owner_ok(cmd, &m->accounts[hold->from]))
        return ARB_EFORBIDDEN;
    *hold_out = hold;
    return 0;
}

static void m_release(model *m, m_hold *hold, arb__ledger_hold_status status)
{
    uint64_t seq = m->next_seq++;
    m_account *from = &m->accounts[hold->from];
    from->held -= hold->amount;
    from->balance += hold->amount;
    from->version = seq;
    hold->status = status;
    hold->version = seq;
}

static int m_capture(model *m, const gen_cmd *cmd, const gen_item *item, int64_t now)
{
    m_hold *hold;
    int rc = m_amount_code(item, 1, false);
    if (rc == 0)
        rc = m_hold_open(m, cmd, item, now, &hold);
    if (rc != 0)
        return rc;
    int64_t amount = item->kind == K_MISSING ? hold->amount : item->amount;
    if (amount > hold->amount)
        return ARB_EINVALID_AMOUNT;
    m_account *from = &m->accounts[hold->from], *to = &m->accounts[hold->to];
    if (to->balance + to->held + amount > MAX)
        return ARB_EOVERFLOW;
    uint64_t seq = m->next_seq++;
    from->held -= hold->amount;
    from->balance += hold->amount - amount;
    to->balance += amount;
    from->version = to->version = hold->version = seq;
    hold->captured = amount;
    hold->status = ARB__LEDGER_HOLD_CAPTURED;
    return 0;
}

static int m_void(model *m, const gen_cmd *cmd, const gen_item *item, int64_t now)
{
    m_hold *hold;
    int rc = m_hold_open(m, cmd, item, now, &hold);
    if (rc == 0)
        m_release(m, hold, ARB__LEDGER_HOLD_VOIDED);
    return rc;
}

static int m_expire(model *m, const gen_item *item, int64_t now)
{
    m_hold *hold = m_find_hold(m, item->pending_seq);
    if (hold == NULL)
        return ARB_EPENDING_NOT_FOUND;
    if (hold->status != ARB__LEDGER_HOLD_PENDING)
        return ARB_EPENDING_CLOSED;
    if (now < hold->expires_at)
        return ARB_EINVALID_ARGUMENT;
    m_release(m, hold, ARB__LEDGER_HOLD_EXPIRED);
    return 0;
}

static int m_cash(model *m, const gen_item *item, bool deposit)
{
    int rc = m_amount_code(item, 1, true);
    if (rc != 0)
        return rc;
    if (item->missing_field)
        return ARB_EINVALID_ARGUMENT;
    m_account *account = &m->accounts[item->from];
    if (!account->exists)
        return ARB_EACCOUNT_NOT_FOUND;
    int c = account->currency;
    if (!deposit && item->amount > account->balance + account->overdraft)
        return ARB_EINSUFFICIENT_FUNDS;
    if (deposit ? account->balance + account->held + item->amount > MAX ||
                      m->deposited[c] + item->amount > MAX
                : m->withdrawn[c] + item->amount > MAX)
        return ARB_EOVERFLOW;
    account->balance += deposit ? item->amount : -item->amount;
    account->version = m->next_seq++;
    if (deposit)
        m->deposited[c] += item->amount;
    else
        m->withdrawn[c] += item->amount;
    return 0;
}

static int m_open(model *m, const gen_item *item)
{
    int rc = m_amount_code(item, 0, false);
    if (rc != 0)
        return rc;
    m_account *account = &m->accounts[item->from];
    if (account->exists)
        return ARB_EACCOUNT_EXISTS;
    *account = (m_account){.exists = true,
                           .owner = item->owner,
                           .currency = item->currency,
                           .overdraft = item->kind == K_MISSING ? 0 : item->amount,
                           .version = m->next_seq++};
    return 0;
}

static int m_configure(model *m, const gen_item *item)
{
    int rc = m_amount_code(item, 1, true);
    if (rc == 0) {
        m->transfer_max = item->amount;
        m->next_seq++;
    }
    return rc;
}

static int m_item(model *m, const gen_cmd *cmd, const gen_item *item, int64_t now, bool in_batch)
{
    int action = item->action;
    if (action == A_BOGUS)
        return ARB_EUNKNOWN_ACTION;
    if (in_batch && (action == A_CONFIGURE || action == A_EXPIRE))
        return ARB_EINVALID_ARGUMENT;
    bool admin_only =
        action == A_DEPOSIT || action == A_WITHDRAW || action == A_OPEN || action == A_CONFIGURE;
    if (action == A_EXPIRE && cmd->role != ARB_ROLE_SYSTEM)
        return ARB_EFORBIDDEN;
    if (admin_only && cmd->role == ARB_ROLE_USER)
        return ARB_EFORBIDDEN;
    if (item->unknown_field)
        return ARB_EINVALID_ARGUMENT;
    switch (action) {
    case A_TRANSFER:
        return m_move(m, cmd, item, now, false);
    case A_HOLD:
        return m_move(m, cmd, item, now, true);
    case A_CAPTURE:
        return m_capture(m, cmd, item, now);
    case A_VOID:
        return m_void(m, cmd, item, now);
    case A_EXPIRE:
        return m_expire(m, item, now);
    case A_DEPOSIT:
        return m_cash(m, item, true);
    case A_WITHDRAW:
        return m_cash(m, item, false);
    case A_OPEN:
        return m_open(m, item);
    default:
        return m_configure(m, item);
    }
}

/* A batch runs on a copy of the model and is kept only when every item passes. */
static int m_command(model *m, m_hold *scratch, const gen_cmd *cmd, int64_t now)
{
    if (!cmd->batch)
        return m_item(m, cmd, &cmd->items[0], now, false);
    model copy = *m;
    copy.holds = scratch;
    memcpy(scratch, m->holds, m->hold_count * sizeof *scratch);
    for (int i = 0; i < cmd->count; i++) {
        int rc = m_item(&copy, cmd, &cmd->items[i], now, true);
        if (rc != 0)
            return rc;
    }
    memcpy(m->holds, scratch, copy.hold_count * sizeof *scratch);
    copy.holds = m->holds;
    *m = copy;
    return 0;
}

/* The generator: mostly valid commands, with every kind of mistake mixed in. */

static void gen_amount(gen_item *item, bool huge)
{
    int64_t r = pick(100);
    item->kind = K_INT;
    if (r < 3) {
        item->kind = K_REAL;
        item->amount = 1 + pick(100);
    } else if (r < 5) {
        item->kind = K_STRING;
    } else if (r < 7) {
        item->kind = K_MISSING;
    } else if (r < 9) {
        item->amount = -pick(3); /* 0, -1, -2 */
    } else if (r < 10) {
        item->amount = MAX + 1;
    } else if (r < 12 || (huge && r < 35)) {
        item->amount = MAX - pick(2000000);
    } else if (r < 16) {
        item->amount = 900000 + pick(200000); /* around the default maximum */
    } else {
        item->amount = 1 + pick(3000);
    }
}

static uint64_t gen_pending(const model *m)
{
    if (m->hold_count == 0 || chance(8))
        return chance(50) ? M_BOGUS_SEQ : 1 + (uint64_t)pick((int64_t)m->next_seq);
    size_t recent = m->hold_count < 48 ? m->hold_count : 48;
    for (int tries = 0; tries < 8; tries++) {
        const m_hold *hold = &m->holds[m->hold_count - 1 - (size_t)pick((int64_t)recent)];
        if (hold->status == ARB__LEDGER_HOLD_PENDING || tries == 7 || chance(15))
            return hold->seq;
    }
    return m->holds[(size_t)pick((int64_t)m->hold_count)].seq;
}

/* Mostly an existing account other than `other`, of currency when that is
 * >= 0. */
static int gen_account(const model *m, int currency, int other)
{
    for (int tries = 0; tries < 8; tries++) {
        int i = (int)pick(M_ACCOUNTS);
        const m_account *account = &m->accounts[i];
        if (account->exists && i != other && (currency < 0 || account->currency == currency))
            return i;
    }
    return (int)pick(M_ACCOUNTS);
}

static void gen_move(const model *m, gen_item *item)
{
    item->from = gen_account(m, -1, -1);
    item->to =
        chance(3) ? item->from : gen_account(m, m->accounts[item->from].currency, item->from);
    gen_amount(item, false);
    int64_t r = pick(100);
    item->timeout_s = r < 85 ? 1 + pick(20) : r < 91 ? 3600 : r < 96 ? 0 : 2592001;
    item->memo = chance(30);
    item->missing_field = chance(2);
    if (chance(15)) {
        item->expect = true;
        item->expect_account = chance(80) ? item->from : (int)pick(M_ACCOUNTS);
        uint64_t version = m->accounts[item->expect_account].version;
        item->expect_version = chance(75) ? version : version + (uint64_t)pick(3);
    }
}

static void gen_item_of(const model *m, int action, gen_item *item)
{
    memset(item, 0, sizeof *item);
    item->action = action;
    item->unknown_field = chance(2);
    switch (action) {
    case A_TRANSFER:
    case A_HOLD:
        gen_move(m, item);
        break;
    case A_CAPTURE:
        gen_amount(item, false);
        if (chance(50))
            item->kind = K_MISSING;
        else if (item->kind == K_INT && chance(60))
            item->amount = 1 + pick(600);
        item->pending_seq = gen_pending(m);
        break;
    case A_VOID:
    case A_EXPIRE:
        item->pending_seq = gen_pending(m);
        break;
    case A_DEPOSIT:
    case A_WITHDRAW:
        item->from = gen_account(m, -1, -1);
        gen_amount(item, m->accounts[item->from].currency == 1);
        item->memo = chance(30);
        item->missing_field = chance(2);
        break;
    case A_OPEN: {
        item->from = (int)pick(M_ACCOUNTS);
        item->owner = (int)pick(M_OWNERS);
        item->currency = chance(75) ? 0 : 1;
        int64_t r = pick(100);
        item->kind = r < 55 ? K_MISSING : r < 60 ? K_REAL : K_INT;
        item->amount = r < 85 ? pick(1000) : r < 93 ? MAX - pick(1000) : -1;
        break;
    }
    case A_CONFIGURE: {
        const int64_t choices[] = {1000000, 1000000, MAX, MAX, 2000, 0};
        item->kind = chance(10) ? K_REAL : K_INT;
        item->amount = choices[pick(6)];
        break;
    }
    default:
        break;
    }
}

static int gen_top_action(void)
{
    static const int weights[A_COUNT] = {25, 16, 11, 6, 12, 5, 6, 3, 2, 1};
    int64_t r = pick(87);
    for (int action = 0; action < A_COUNT; action++) {
        if (r < weights[action])
            return action;
        r -= weights[action];
    }
    return A_TRANSFER;
}

static void gen_batch(const model *m, gen_cmd *cmd)
{
    static const int batchable[] = {A_TRANSFER, A_TRANSFER, A_HOLD,     A_HOLD, A_CAPTURE,
                                    A_VOID,     A_DEPOSIT,  A_WITHDRAW, A_OPEN};
    cmd->batch = true;
    cmd->count = 1 + (int)pick(M_BATCH_MAX);
    for (int i = 0; i < cmd->count; i++) {
        int action = chance(4) ? (int)(A_EXPIRE + pick(3))
                               : batchable[pick(sizeof batchable / sizeof batchable[0])];
        gen_item *item = &cmd->items[i];
        gen_item_of(m, action, item);
        /* Refer to a hold made earlier in this batch: item k's event gets
         * seq next_seq + k, because every item emits exactly one event. */
        if ((action == A_CAPTURE || action == A_VOID) && i > 0 && chance(50)) {
            int k = (int)pick(i);
            item->pending_seq = m->next_seq + (uint64_t)k;
        }
    }
}

static void gen_command(const model *m, gen_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    int64_t r = pick(100);
    cmd->role = r < 50 ? ARB_ROLE_ADMIN : r < 93 ? ARB_ROLE_USER : ARB_ROLE_SYSTEM;
    if (chance(15)) {
        gen_batch(m, cmd);
    } else {
        cmd->count = 1;
        gen_item_of(m, gen_top_action(), &cmd->items[0]);
    }
    /* Users mostly propose what users may propose, on accounts of their own. */
    int first = cmd->items[0].action;
    if (cmd->role == ARB_ROLE_USER && !cmd->batch && chance(85) &&
        (first == A_DEPOSIT || first == A_WITHDRAW || first == A_OPEN || first == A_CONFIGURE ||
         first == A_EXPIRE))
        cmd->role = ARB_ROLE_ADMIN;
    const m_account *from = &m->accounts[cmd->items[0].from];
    cmd->who = from->exists && chance(75) ? from->owner : (int)pick(M_OWNERS);
    if (cmd->items[0].action == A_CAPTURE || cmd->items[0].action == A_VOID) {
        const m_hold *hold = m_find_hold((model *)m, cmd->items[0].pending_seq);
        if (hold != NULL && chance(75))
            cmd->who = m->accounts[hold->from].owner;
    }
}

/* Model commands as JSON for the module. */

static void set_name(json_t *args, const char *key, const char *prefix, int64_t number)
{
    char name[32];
    snprintf(name, sizeof name, "%s%" PRId64, prefix, number);
    json_object_set_new(args, key, json_string(name));
}

static void set_amount(json_t *args, const char *key, const gen_item *item)
{
    switch (item->kind) {
    case K_INT:
        json_object_set_new(args, key, json_integer(item->amount));
        break;
    case K_REAL:
        json_object_set_new(args, key, json_real((double)item->amount + (item->amount % 2) * 0.5));
        break;
    case K_STRING:
        json_object_set_new(args, key, json_string("7"));
        break;
    default:
        break;
    }
}

static void set_move_args(json_t *args, const gen_item *item)
{
    if (!item->missing_field)
        set_name(args, "from", "a", item->from);
    set_name(args, "to", "a", item->to);
    set_amount(args, "amount", item);
    if (item->action == A_HOLD)
        json_object_set_new(args, "timeout_s", json_integer(item->timeout_s));
    if (item->expect) {
        char name[16];
        snprintf(name, sizeof name, "a%d", item->expect_account);
        json_object_set_new(args, "expect_versions",
                            json_pack("{s:I}", name, (json_int_t)item->expect_version));
    }
}

static json_t *item_args(const gen_item *item)
{
    json_t *args = json_object();
    switch (item->action) {
    case A_TRANSFER:
    case A_HOLD:
        set_move_args(args, item);
        break;
    case A_CAPTURE:
        set_amount(args, "amount", item);
        set_name(args, "pending", "p", (int64_t)item->pending_seq);
        break;
    case A_VOID:
    case A_EXPIRE:
        set_name(args, "pending", "p", (int64_t)item->pending_seq);
        break;
    case A_DEPOSIT:
    case A_WITHDRAW:
        if (!item->missing_field)
            set_name(args, "account", "a", item->from);
        set_amount(args, "amount", item);
        break;
    case A_OPEN:
        set_name(args, "account", "a", item->from);
        set_name(args, "owner", "u", item->owner);
        json_object_set_new(args, "currency", json_string(currencies[item->currency]));
        set_amount(args, "overdraft_limit", item);
        break;
    case A_CONFIGURE:
        set_amount(args, "max_transfer", item);
        break;
    default:
        break;
    }
    if (item->memo)
        json_object_set_new(args, "memo", json_string("random"));
    if (item->unknown_field)
        json_object_set_new(args, "bogus", json_integer(1));
    return args;
}

static json_t *command_args(const gen_cmd *cmd)
{
    if (!cmd->batch)
        return item_args(&cmd->items[0]);
    json_t *items = json_array();
    for (int i = 0; i < cmd->count; i++)
        json_array_append_new(items,
                              json_pack("{s:s, s:o}", "action", action_names[cmd->items[i].action],
                                        "args", item_args(&cmd->items[i])));
    return json_pack("{s:o}", "items", items);
}

/* Comparing the module with the model. */

static void compare_accounts(harness *h, const model *m)
{
    const arb__ledger_state *state = h->state;
    size_t count = 0;
    for (int i = 0; i < M_ACCOUNTS; i++) {
        char id[16], owner[16];
        snprintf(id, sizeof id, "a%d", i);
        const arb__ledger_account *account = arb_map_get(&state->accounts, id);
        const m_account *expected = &m->accounts[i];
        R_CHECK((account != NULL) == expected->exists);
        if (account == NULL)
            continue;
        count++;
        snprintf(owner, sizeof owner, "u%d", expected->owner);
        R_CHECK(account->balance == expected->balance);
        R_CHECK(account->held == expected->held);
        R_CHECK(account->overdraft_limit == expected->overdraft);
        R_CHECK(account->version == expected->version);
        R_CHECK(strcmp(account->owner, owner) == 0);
        R_CHECK(strcmp(account->currency, currencies[expected->currency]) == 0);
    }
    R_CHECK(state->accounts.count == count);
    for (int c = 0; c < M_CURRENCIES; c++) {
        const arb__ledger_total *total = arb_map_get(&state->totals, currencies[c]);
        R_CHECK((total != NULL ? total->deposited : 0) == m->deposited[c]);
        R_CHECK((total != NULL ? total->withdrawn : 0) == m->withdrawn[c]);
    }
    R_CHECK(state->transfer_max == m->transfer_max);
    R_CHECK(h->next_seq == m->next_seq);
}

static void compare_holds(harness *h, const model *m)
{
    const arb__ledger_state *state = h->state;
    R_CHECK(state->holds.count == m->hold_count);
    for (size_t i = 0; i < m->hold_count; i++) {
        const m_hold *expected = &m->holds[i];
        char id[32], from[16], to[16];
        snprintf(id, sizeof id, "p%" PRIu64, expected->seq);
        snprintf(from, sizeof from, "a%d", expected->from);
        snprintf(to, sizeof to, "a%d", expected->to);
        const arb__ledger_hold *hold = arb_map_get(&state->holds, id);
        R_CHECK(hold != NULL);
        R_CHECK(hold->status == expected->status && hold->amount == expected->amount);
        R_CHECK(hold->captured == expected->captured && hold->version == expected->version);
        R_CHECK(hold->expires_at_ms == expected->expires_at);
        R_CHECK(strcmp(hold->from, from) == 0 && strcmp(hold->to, to) == 0);
    }
}

static void run_both(harness *h, model *m, m_hold *scratch, const gen_cmd *cmd)
{
    const char *action = cmd->batch ? "batch" : action_names[cmd->items[0].action];
    json_t *args = command_args(cmd);
    char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    int expected = m_command(m, scratch, cmd, h->now_ms);
    char who[16];
    if (cmd->role == ARB_ROLE_USER)
        snprintf(who, sizeof who, "u%d", cmd->who);
    else
        snprintf(who, sizeof who, "%s", cmd->role == ARB_ROLE_ADMIN ? "root" : "arbiter");
    int code = h_run(h, cmd->role, who, action, args);
    if (-code >= 0 && -code < 128)
        g_codes[-code]++;
    g_batches += cmd->batch;
    g_batches_accepted += cmd->batch && code == 0;
    if (code != expected)
        fail_msg("ARB_SEED=%u step %d: %s %s %s by %s gave %s (%s), the model says %s", g_seed,
                 g_step, action, text, cmd->role == ARB_ROLE_USER ? "user" : "", who,
                 arb_err_name(code), h->decision.message, arb_err_name(expected));
    free(text);
}

/* Fire the recorded timers that are due, as the engine would. */
static void fire_due(harness *h, model *m, m_hold *scratch)
{
    timer_rec *due = malloc((h->timer_count + 1) * sizeof *due);
    assert_non_null(due);
    size_t due_count = 0, kept = 0;
    for (size_t i = 0; i < h->timer_count; i++) {
        if (h->timers[i].at_ms <= h->now_ms)
            due[due_count++] = h->timers[i];
        else
            h->timers[kept++] = h->timers[i];
    }
    h->timer_count = kept;
    for (size_t i = 0; i < due_count; i++) {
        gen_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.role = ARB_ROLE_SYSTEM;
        cmd.count = 1;
        cmd.items[0].action = A_EXPIRE;
        cmd.items[0].pending_seq = strtoull(due[i].pending + 1, NULL, 10);
        run_both(h, m, scratch, &cmd);
    }
    free(due);
}

static harness *snapshot_swap(harness *h, const model *m)
{
    json_t *saved = h_save(h);
    harness *loaded = h_with_loaded(h, saved);
    json_t *again = h_save(loaded);
    R_CHECK(json_equal(saved, again));
    size_t pending = 0;
    for (size_t i = 0; i < m->hold_count; i++) {
        const m_hold *hold = &m->holds[i];
        if (hold->status != ARB__LEDGER_HOLD_PENDING)
            continue;
        pending++;
        char id[32];
        snprintf(id, sizeof id, "p%" PRIu64, hold->seq);
        bool found = false;
        for (size_t t = 0; t < loaded->timer_count && !found; t++)
            found = strcmp(loaded->timers[t].pending, id) == 0 &&
                    loaded->timers[t].at_ms == hold->expires_at;
        R_CHECK(found);
    }
    R_CHECK(loaded->timer_count == pending);
    loaded->client_seq = h->client_seq;
    json_decref(saved);
    json_decref(again);
    h_free(h);
    return loaded;
}

static unsigned env_unsigned(const char *name, unsigned fallback)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return fallback;
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    return *end == '\0' && value <= 0xffffffffULL ? (unsigned)value : fallback;
}

static void test_random_against_model(void **unused)
{
    (void)unused;
    g_seed = env_unsigned("ARB_SEED", (unsigned)time(NULL));
    int steps = (int)env_unsigned("ARB_LEDGER_STEPS", M_STEPS_DEFAULT);
    print_message("ledger random test: ARB_SEED=%u, %d steps\n", g_seed, steps);
    rng_state = g_seed;
    harness *h = h_new();
    model m = {.next_seq = 1, .transfer_max = ARB_LEDGER_TRANSFER_MAX_DEFAULT};
    m.holds = calloc(M_HOLDS_MAX, sizeof *m.holds);
    m_hold *scratch = calloc(M_HOLDS_MAX, sizeof *scratch);
    assert_true(m.holds != NULL && scratch != NULL);
    int accepted = 0;
    for (g_step = 0; g_step < steps; g_step++) {
        h->now_ms += pick(400);
        if (chance(50))
            fire_due(h, &m, scratch);
        gen_cmd cmd;
        gen_command(&m, &cmd);
        run_both(h, &m, scratch, &cmd);
        accepted += h->decision.code == 0;
        compare_accounts(h, &m);
        if (g_step % 50 == 0)
            compare_holds(h, &m);
        if (g_step % 250 == 249)
            h = snapshot_swap(h, &m);
    }
    compare_holds(h, &m);
    print_message("ledger random test: %d of %d commands accepted, %zu holds; outcomes:", accepted,
                  steps, m.hold_count);
    for (int code = 0; code < 128; code++)
        if (g_codes[code] > 0)
            print_message(" %s %d", arb_err_name(-code), g_codes[code]);
    print_message("; batches %d of %d accepted\n", g_batches_accepted, g_batches);
    /* Both outcomes must be common, or the test proves little. */
    R_CHECK(accepted > steps / 5 && accepted < steps * 4 / 5);
    free(m.holds);
    free(scratch);
    h_free(h);
}

/* The clients' test: the harness driven by the generator and the model, as
 * above, and a client for each owner and one for the admin, each loaded
 * from its viewer's view (view_load) at random moments and then following
 * every event as redact shows it. After every event a client's view must be
 * the server's, and random commands of its viewer must decide the same
 * (code, message, details, events, result) on both states. */

#define L_CLIENTS (M_OWNERS + 1)
#define L_STEPS 1500

typedef struct l_client {
    arb_principal principal;
    void *state; /* NULL until first loaded */
} l_client;

static l_client g_clients[L_CLIENTS];
static size_t g_client_loads, g_client_decided, g_client_accepted;

static void l_no_timer(void *user, int64_t at_ms, const char *action, json_t *args)
{
    (void)user;
    (void)at_ms;
    (void)action;
    (void)args;
}

static bool l_same_view(const void *client_state, const arb_principal *viewer, harness *h)
{
    json_t *expected = arb_rules_ledger.view(h->state, viewer);
    json_t *view = arb_rules_ledger.view(client_state, viewer);
    R_CHECK(expected != NULL && view != NULL);
    bool same = json_equal(expected, view);
    json_decref(expected);
    json_decref(view);
    return same;
}

/* g_on_event: the event to every loaded client, as its viewer sees it. */
static void l_follow(harness *h, const arb_event *event)
{
    for (int i = 0; i < L_CLIENTS; i++) {
        l_client *client = &g_clients[i];
        if (client->state == NULL)
            continue;
        arb_event seen = *event;
        seen.data = arb_rules_ledger.redact(event, &client->principal);
        R_CHECK(seen.data != NULL);
        arb_timer_sink sink = {.add = l_no_timer, .user = NULL};
        R_CHECK(arb_rules_ledger.evolve(client->state, &seen, &sink) == 0);
        json_decref(seen.data);
        R_CHECK(l_same_view(client->state, &client->principal, h));
    }
}

static void l_maybe_load(harness *h)
{
    for (int i = 0; i < L_CLIENTS; i++) {
        l_client *client = &g_clients[i];
        if (!chance(client->state == NULL ? 4 : 1))
            continue;
        arb_rules_ledger.state_free(client->state);
        client->state = NULL;
        json_t *view = arb_rules_ledger.view(h->state, &client->principal);
        R_CHECK(view != NULL);
        R_CHECK(arb_rules_ledger.view_load(view, h->next_seq - 1, &client->principal,
                                           &client->state) == 0);
        json_decref(view);
        R_CHECK(l_same_view(client->state, &client->principal, h));
        g_client_loads++;
    }
}

static bool l_same_json(const json_t *left, const json_t *right)
{
    return (left == NULL && right == NULL) ||
           (left != NULL && right != NULL && json_equal(left, right));
}

static bool l_same_decision(const arb_decision *left, const arb_decision *right)
{
    if (left->code != right->code || strcmp(left->message, right->message) != 0 ||
        !l_same_json(left->details, right->details) || !l_same_json(left->result, right->result) ||
        left->event_count != right->event_count)
        return false;
    for (size_t i = 0; i < left->event_count; i++)
        if (strcmp(left->events[i].type, right->events[i].type) != 0 ||
            !json_equal(left->events[i].data, right->events[i].data))
            return false;
    return true;
}

/* A generated command of client i's viewer, decided on both states with
 * the same ctx (no randomness, as a client predicts). */
static void l_predict(harness *h, const model *m, int i)
{
    const l_client *client = &g_clients[i];
    gen_cmd cmd;
    gen_command(m, &cmd);
    cmd.role = client->principal.role;
    cmd.who = i;
    json_t *args = command_args(&cmd);
    arb_command command;
    arb_command_init(&command);
    const char *action = cmd.batch ? "batch" : action_names[cmd.items[0].action];
    R_CHECK(arb_command_set(&command, client->principal.id, client->principal.role, ++h->client_seq,
                            "ledger:test", action, args) == 0);
    arb_ctx ctx = {.now_ms = h->now_ms, .next_seq = h->next_seq, .version = h->next_seq - 1};
    arb_decision server, predicted;
    arb_decision_init(&server);
    arb_decision_init(&predicted);
    arb_rules_ledger.decide(h->state, &command, &ctx, &server);
    arb_rules_ledger.decide(client->state, &command, &ctx, &predicted);
    if (!l_same_decision(&server, &predicted)) {
        char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("ARB_SEED=%u step %d: %s %s by %s: the server decides %s, the client %s", g_seed,
                 g_step, action, text, client->principal.id, arb_err_name(server.code),
                 arb_err_name(predicted.code));
    }
    g_client_decided++;
    g_client_accepted += server.code == 0;
    arb_decision_clear(&server);
    arb_decision_clear(&predicted);
    arb_command_clear(&command);
    json_decref(args);
}

/* Replace *state with its state_clone and free the original: everything the
 * run checks afterwards checks the copy, and ASan that it shares nothing. */
static void l_swap_clone(void **state)
{
    void *copy = NULL;
    assert_int_equal(arb_rules_ledger.state_clone(*state, &copy), 0);
    const arb__ledger_state *a = *state, *b = copy;
    assert_true(a->transfer_max == b->transfer_max && a->holds_open == b->holds_open &&
                a->holds_closed == b->holds_closed && a->closed_kept_max == b->closed_kept_max);
    const arb__ledger_hold *x = a->closed_head, *y = b->closed_head;
    for (; x != NULL && y != NULL; x = x->next_closed, y = y->next_closed)
        assert_true(x != y && strcmp(x->id, y->id) == 0);
    assert_true(x == NULL && y == NULL && (a->closed_tail == NULL) == (b->closed_tail == NULL));
    arb_rules_ledger.state_free(*state);
    *state = copy;
}

static void l_run_seed(unsigned seed, int steps)
{
    g_seed = seed;
    rng_state = seed;
    harness *h = h_new();
    model m = {.next_seq = 1, .transfer_max = ARB_LEDGER_TRANSFER_MAX_DEFAULT};
    m.holds = calloc(M_HOLDS_MAX, sizeof *m.holds);
    m_hold *scratch = calloc(M_HOLDS_MAX, sizeof *scratch);
    assert_true(m.holds != NULL && scratch != NULL);
    for (int i = 0; i < L_CLIENTS; i++) {
        snprintf(g_clients[i].principal.id, sizeof g_clients[i].principal.id,
                 i < M_OWNERS ? "u%d" : "root", i);
        g_clients[i].principal.role = i < M_OWNERS ? ARB_ROLE_USER : ARB_ROLE_ADMIN;
        g_clients[i].state = NULL;
    }
    g_on_event = l_follow;
    for (g_step = 0; g_step < steps; g_step++) {
        h->now_ms += pick(400);
        if (chance(50))
            fire_due(h, &m, scratch);
        gen_cmd cmd;
        gen_command(&m, &cmd);
        run_both(h, &m, scratch, &cmd);
        l_maybe_load(h);
        for (int i = 0; i < L_CLIENTS; i++)
            if (g_clients[i].state != NULL && chance(10))
                l_swap_clone(&g_clients[i].state);
        if (chance(5))
            l_swap_clone(&h->state);
        for (int i = 0; i < L_CLIENTS; i++)
            if (g_clients[i].state != NULL && chance(60))
                l_predict(h, &m, i);
    }
    g_on_event = NULL;
    for (int i = 0; i < L_CLIENTS; i++)
        arb_rules_ledger.state_free(g_clients[i].state);
    free(m.holds);
    free(scratch);
    h_free(h);
}

static void test_clients_follow_and_predict(void **unused)
{
    (void)unused;
    static const unsigned seeds[] = {3, 1009};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        l_run_seed(seeds[i], L_STEPS);
    print_message("ledger clients: %zu loads, %zu predictions (%zu accepted)\n", g_client_loads,
                  g_client_decided, g_client_accepted);
    R_CHECK(g_client_loads > 2 * L_CLIENTS);
    R_CHECK(g_client_accepted > g_client_decided / 10 &&
            g_client_accepted < g_client_decided * 9 / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_deposit_transfer),
        cmocka_unit_test(test_invalid_amount),
        cmocka_unit_test(test_invalid_argument),
        cmocka_unit_test(test_unknown_action),
        cmocka_unit_test(test_account_not_found),
        cmocka_unit_test(test_self_transfer_and_currency),
        cmocka_unit_test(test_insufficient_funds),
        cmocka_unit_test(test_exceeds_limit),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_account_exists),
        cmocka_unit_test(test_forbidden),
        cmocka_unit_test(test_version_conflict),
        cmocka_unit_test(test_hold_capture_partial),
        cmocka_unit_test(test_hold_capture_full_and_void),
        cmocka_unit_test(test_hold_expires_by_timer),
        cmocka_unit_test(test_capture_at_deadline_before_timer),
        cmocka_unit_test(test_hold_arguments),
        cmocka_unit_test(test_batch_all_or_nothing),
        cmocka_unit_test(test_batch_sees_earlier_items),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_load_rejects_corrupt),
        cmocka_unit_test(test_check_detects_corruption),
        cmocka_unit_test(test_evolve_rejects_corrupt_events),
        cmocka_unit_test(test_closed_holds_are_forgotten_oldest_first),
        cmocka_unit_test(test_redact_and_view_for_every_viewer),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_clients_follow_and_predict),
    };
    return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
