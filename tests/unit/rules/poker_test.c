/*
 * poker_test.c - the table rule module (stream kind "table"), driven
 * directly: decide, then every event through evolve, as the engine does.
 *
 * After every event the module's check() runs (the chip invariant among
 * others), and every so often the state goes through snapshot save, load
 * and save again, which must give the same JSON.
 *
 *   - scripted hands with expected chips: heads-up order, the uncalled bet
 *     returned, the minimum raise, a short all-in that does not reopen the
 *     betting, three all-ins at different levels (side pots), an odd chip,
 *     showdown order and mucking; the deck and hole cards of a hand are
 *     "rigged" by the test (rig()) after hand_started, which the state
 *     accepts since it only checks the deck against the seed at the start;
 *   - every rejection code of docs/poker.md;
 *   - fairness: the commitment and the deck derive from the revealed seed;
 *   - redaction: a player's view holds only their own cards;
 *   - a randomized test (fixed seeds): thousands of hands of random legal
 *     and illegal actions with an oracle for the illegal ones' codes, a
 *     player's partial state (view_load) following the redacted events and
 *     predicting that player's own actions exactly (or UNPREDICTABLE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "arbiter/rules.h"
#include "arbiter/types.h"
#include "rules/poker/poker.h"
#include "rules/poker/poker_internal.h"

#define STREAM "table:t1"

static const arb_rules *const R = &arb_rules_poker;

typedef struct table {
    void *state;
    uint64_t seq;
    uint64_t rng; /* for the seeds (random_bytes) */
    bool no_random;
    int snapshot_every; /* events; 0: never */
    /* The decision's events as the server emitted them, kept for tests. */
    json_t *events; /* [{type, data}] of the last accepted decision */
    json_t *details;
    /* A player's (or spectator's) partial state that follows the redacted
     * events; NULL when none. */
    void *observer;
    arb_principal observer_principal;
    int64_t now_ms; /* the clock of decide and of the events' applied_at */
    /* The last deadline evolve reported (the turn clock), and the last
     * bot move. */
    int64_t timer_at_ms;
    json_t *timer_args;
    int64_t bot_at_ms;
    json_t *bot_args;
    int64_t grace_at_ms; /* the last grace_over reported */
} table;

static void timer_add(void *user, int64_t at_ms, const char *action, json_t *args)
{
    table *t = user;
    if (strcmp(action, "grace_over") == 0) {
        t->grace_at_ms = at_ms;
        return;
    }
    bool bot = strcmp(action, "bot_move") == 0;
    assert_true(bot || strcmp(action, "timeout") == 0);
    *(bot ? &t->bot_at_ms : &t->timer_at_ms) = at_ms;
    json_t **kept = bot ? &t->bot_args : &t->timer_args;
    json_decref(*kept);
    *kept = json_incref(args);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static void random_bytes(void *user, void *buf, size_t len)
{
    uint64_t *s = user;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = (uint8_t)(xorshift(s) >> 56);
}

static arb__poker_state *S(table *t)
{
    return t->state;
}

static void check_state(const void *state)
{
    char why[256];
    int rc = R->check(state, why, sizeof why);
    if (rc != 0)
        fail_msg("check: %s", why);
}

static void snapshot_round_trip(table *t)
{
    json_t *first, *second;
    void *loaded;
    assert_int_equal(R->snapshot_save(t->state, &first), 0);
    assert_int_equal(R->snapshot_load(first, t->seq, &loaded, NULL), 0);
    assert_int_equal(R->snapshot_save(loaded, &second), 0);
    if (!json_equal(first, second))
        fail_msg("snapshot round trip differs");
    json_decref(first);
    json_decref(second);
    R->state_free(t->state);
    t->state = loaded;
}

static void table_init(table *t, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(R->state_new(&t->state), 0);
    t->rng = seed | 1;
    t->snapshot_every = 7;
    t->now_ms = 1000;
}

static void table_free(table *t)
{
    R->state_free(t->state);
    if (t->observer != NULL)
        R->state_free(t->observer);
    json_decref(t->events);
    json_decref(t->details);
    json_decref(t->timer_args);
    json_decref(t->bot_args);
}

static void make_event(arb_event *event, uint64_t seq, const char *type, json_t *data)
{
    memset(event, 0, sizeof *event);
    snprintf(event->stream, sizeof event->stream, "%s", STREAM);
    event->seq = seq;
    snprintf(event->type, sizeof event->type, "%s", type);
    event->data = data;
}

/* Decide and apply; returns the code (0 accepted). Steals args. */
static int act_role(table *t, const char *who, arb_role role, const char *action, json_t *args)
{
    arb_command command;
    arb_command_init(&command);
    assert_int_equal(arb_command_set(&command, who, role, t->seq + 1, STREAM, action, args), 0);
    json_decref(args);
    arb_ctx ctx = {.now_ms = t->now_ms,
                   .next_seq = t->seq + 1,
                   .version = t->seq,
                   .random_bytes = t->no_random ? NULL : random_bytes,
                   .random_user = &t->rng};
    arb_decision decision;
    arb_decision_init(&decision);
    R->decide(t->state, &command, &ctx, &decision);
    int code = decision.code;
    json_decref(t->events);
    json_decref(t->details);
    t->events = json_array();
    t->details = decision.details != NULL ? json_incref(decision.details) : NULL;
    for (size_t i = 0; code == 0 && i < decision.event_count; i++) {
        arb_event event;
        make_event(&event, ++t->seq, decision.events[i].type, decision.events[i].data);
        event.applied_at_ms = t->now_ms;
        arb_timer_sink sink = {.add = timer_add, .user = t};
        int rc = R->evolve(t->state, &event, &sink);
        if (rc != 0)
            fail_msg("evolve %s: %d", event.type, rc);
        check_state(t->state);
        json_array_append_new(t->events,
                              json_pack("{s:s, s:O}", "type", event.type, "data", event.data));
        if (t->snapshot_every > 0 && t->seq % (uint64_t)t->snapshot_every == 0)
            snapshot_round_trip(t);
        if (t->observer != NULL) {
            arb_event seen = event;
            seen.data = R->redact(&event, &t->observer_principal);
            assert_non_null(seen.data);
            rc = R->evolve(t->observer, &seen, NULL);
            if (rc != 0)
                fail_msg("observer evolve %s: %d", event.type, rc);
            json_decref(seen.data);
        }
    }
    if (code == 0 && t->observer != NULL) {
        json_t *expected = R->view(t->state, &t->observer_principal);
        json_t *actual = R->view(t->observer, &t->observer_principal);
        if (!json_equal(expected, actual)) {
            char *e = json_dumps(expected, JSON_SORT_KEYS), *a = json_dumps(actual, JSON_SORT_KEYS);
            fail_msg("observer's view differs:\n%s\n%s", e, a);
        }
        json_decref(expected);
        json_decref(actual);
    }
    arb_decision_clear(&decision);
    arb_command_clear(&command);
    return code;
}

static int act(table *t, const char *who, const char *action, json_t *args)
{
    return act_role(t, who, ARB_ROLE_USER, action, args != NULL ? args : json_object());
}

static void create(table *t, int seats, int64_t ante)
{
    assert_int_equal(
        act_role(t, "admin", ARB_ROLE_ADMIN, "create_table",
                 json_pack("{s:s, s:i, s:i, s:i, s:I, s:i, s:i, s:i}", "table", "t1", "seats",
                           seats, "small_blind", 5, "big_blind", 10, "ante", (json_int_t)ante,
                           "buy_in_min", 100, "buy_in_max", 2000, "turn_s", 30)),
        0);
}

static int sit(table *t, const char *who, int seat, int64_t buy_in)
{
    return act(t, who, "sit", json_pack("{s:i, s:I}", "seat", seat, "buy_in", (json_int_t)buy_in));
}

static int64_t stack(table *t, int seat)
{
    return S(t)->seats[seat].stack;
}

/* Whether the last decision emitted an event of type. */
static json_t *emitted(table *t, const char *type)
{
    size_t i;
    json_t *event;
    json_array_foreach (t->events, i, event)
        if (strcmp(json_string_value(json_object_get(event, "type")), type) == 0)
            return json_object_get(event, "data");
    return NULL;
}

/* Set the current hand's hole cards (by seat) and the board to come: the
 * deck is rebuilt so that the dealer deals exactly these. holes[seat] is
 * "As Kd" or NULL for seats not dealt. */
static void rig(table *t, const char *const holes[], const char *board)
{
    arb__poker_state *s = S(t);
    bool used[52] = {false};
    uint8_t deck[52];
    bool placed[52] = {false};
    int order[ARB_POKER_SEATS_MAX];
    int n = arb__poker_deal_order(s, order);
    assert_int_equal(n, s->dealt_count);
    for (int k = 0; k < n; k++) {
        uint8_t cards[2];
        size_t count;
        assert_non_null(holes[order[k]]);
        assert_int_equal(arb_poker_cards_parse(holes[order[k]], cards, 2, &count), 0);
        memcpy(s->seats[order[k]].cards, cards, 2);
        deck[k] = cards[0];
        deck[k + n] = cards[1];
        placed[k] = placed[k + n] = true;
        used[cards[0]] = used[cards[1]] = true;
    }
    uint8_t cards[5];
    size_t count;
    assert_int_equal(arb_poker_cards_parse(board, cards, 5, &count), 0);
    assert_int_equal(count, 5);
    for (int b = 0; b < 5; b++) {
        int index = arb__poker_board_index(n, b);
        assert_false(used[cards[b]]);
        deck[index] = cards[b];
        placed[index] = true;
        used[cards[b]] = true;
    }
    int next = 0;
    for (int i = 0; i < 52; i++) {
        if (placed[i])
            continue;
        while (used[next])
            next++;
        deck[i] = (uint8_t)next;
        used[next] = true;
    }
    memcpy(s->deck, deck, sizeof deck);
    check_state(s);
}

/* The chips seat won in the last decision's pot_awarded events. */
static int64_t won(table *t, int seat)
{
    int64_t total = 0;
    size_t i, j;
    json_t *event, *winner;
    json_array_foreach (t->events, i, event) {
        if (strcmp(json_string_value(json_object_get(event, "type")), "pot_awarded") != 0)
            continue;
        json_array_foreach (json_object_get(json_object_get(event, "data"), "winners"), j, winner)
            if (json_integer_value(json_object_get(winner, "seat")) == seat)
                total += json_integer_value(json_object_get(winner, "amount"));
    }
    return total;
}

/* Seat names[0..count) with their buy-ins, all dealt into one hand at once
 * (everyone sits out as they sit, then the sitting-out flags of all but the
 * last are cleared and the last sits in, which starts the hand). */
static void deal_in(table *t, int count, const char *const names[], const int64_t buy_ins[])
{
    for (int i = 0; i < count; i++) {
        assert_int_equal(sit(t, names[i], i, buy_ins[i]), 0);
        assert_int_equal(act(t, names[i], "sit_out", NULL), 0);
    }
    for (int i = 0; i < count - 1; i++)
        S(t)->seats[i].sitting_out = false;
    assert_int_equal(act(t, names[count - 1], "sit_in", NULL), 0);
    assert_int_equal(S(t)->dealt_count, count);
}

static void test_heads_up_order_and_uncalled_bet(void **unused)
{
    (void)unused;
    table t;
    table_init(&t, 1);
    create(&t, 6, 0);
    assert_int_equal(sit(&t, "a", 0, 1000), 0);
    assert_false(S(&t)->hand_active);
    assert_int_equal(sit(&t, "b", 3, 1000), 0);
    /* The hand started at once: the button (seat 0) posts the small blind
     * and acts first before the flop. */
    assert_true(S(&t)->hand_active);
    assert_int_equal(S(&t)->button, 0);
    assert_int_equal(S(&t)->small_seat, 0);
    assert_int_equal(S(&t)->big_seat, 3);
    assert_int_equal(S(&t)->to_act, 0);
    assert_int_equal(act(&t, "a", "call", NULL), 0);
    assert_int_equal(S(&t)->to_act, 3);
    assert_int_equal(act(&t, "b", "check", NULL), 0);
    /* After the flop the big blind (not the button) acts first. */
    assert_int_equal(S(&t)->street, ARB__POKER_FLOP);
    assert_int_equal(S(&t)->to_act, 3);
    assert_int_equal(act(&t, "a", "check", NULL), ARB_EILLEGAL_TURN);
    assert_int_equal(act(&t, "b", "bet", json_pack("{s:i}", "amount", 100)), 0);
    assert_int_equal(act(&t, "a", "fold", NULL), 0);
    /* b's 100 was not called: returned; b wins the 20 of the blinds. */
    json_t *returned = emitted(&t, "bet_returned");
    assert_non_null(returned);
    assert_int_equal(json_integer_value(json_object_get(returned, "amount")), 100);
    assert_null(emitted(&t, "cards_shown"));
    /* The next hand started: the button moved to seat 3. */
    assert_true(emitted(&t, "hand_ended") != NULL && emitted(&t, "hand_started") != NULL);
    assert_int_equal(S(&t)->button, 3);
    assert_int_equal(S(&t)->to_act, 3);
    /* Hand 1: a lost 10; hand 2 blinds: b (button) 5, a 10. */
    assert_int_equal(stack(&t, 0), 990 - 10);
    assert_int_equal(stack(&t, 3), 1010 - 5);
    /* Preflop: the button raises to 100, the big blind folds: 90 back. */
    assert_int_equal(act(&t, "b", "raise", json_pack("{s:i}", "to", 100)), 0);
    assert_int_equal(act(&t, "a", "fold", NULL), 0);
    returned = emitted(&t, "bet_returned");
    assert_int_equal(json_integer_value(json_object_get(returned, "amount")), 90);
    /* Hand 3 has begun with its blinds: a (button) 5, b 10. */
    assert_int_equal(stack(&t, 0) + 5, 980);
    assert_int_equal(stack(&t, 3) + 10, 1020);
    table_free(&t);
}

/* Three players (seats 0, 1, 2; the button at 0, blinds 1 and 2). */
static void three_players(table *t, int64_t stack0, int64_t stack1, int64_t stack2)
{
    static const char *const names[] = {"a", "b", "c"};
    const int64_t buy_ins[] = {stack0, stack1, stack2};
    table_init(t, 7);
    create(t, 6, 0);
    deal_in(t, 3, names, buy_ins);
    assert_int_equal(t->state != NULL && S(t)->button == 0, 1);
}

static void test_min_raise(void **unused)
{
    (void)unused;
    table t;
    three_players(&t, 1000, 1000, 1000);
    assert_int_equal(S(&t)->to_act, 0);
    /* The big blind is 10: a raise must go to at least 20. */
    assert_int_equal(act(&t, "a", "raise", json_pack("{s:i}", "to", 19)), ARB_EBELOW_MIN_RAISE);
    assert_int_equal(act(&t, "a", "raise", json_pack("{s:i}", "to", 40)), 0);
    /* A raise of 30: the next must be to at least 70. */
    assert_int_equal(S(&t)->min_raise, 30);
    assert_int_equal(act(&t, "b", "raise", json_pack("{s:i}", "to", 69)), ARB_EBELOW_MIN_RAISE);
    assert_int_equal(act(&t, "b", "raise", json_pack("{s:i}", "to", 70)), 0);
    assert_int_equal(act(&t, "b", "call", NULL), ARB_EILLEGAL_TURN);
    assert_int_equal(act(&t, "c", "bet", json_pack("{s:i}", "amount", 100)), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "c", "check", NULL), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "c", "raise", json_pack("{s:i}", "to", 5000)),
                     ARB_EINSUFFICIENT_STACK);
    assert_int_equal(act(&t, "c", "call", NULL), 0);
    assert_int_equal(act(&t, "a", "call", NULL), 0);
    /* The flop: b acts first; a bet below the big blind is below the minimum. */
    assert_int_equal(S(&t)->street, ARB__POKER_FLOP);
    assert_int_equal(S(&t)->to_act, 1);
    assert_int_equal(act(&t, "b", "bet", json_pack("{s:i}", "amount", 9)), ARB_EBELOW_MIN_RAISE);
    assert_int_equal(act(&t, "b", "raise", json_pack("{s:i}", "to", 20)), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "b", "call", NULL), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "b", "bet", json_pack("{s:i}", "amount", 10)), 0);
    table_free(&t);
}

static void test_short_all_in_does_not_reopen(void **unused)
{
    (void)unused;
    table t;
    three_players(&t, 1000, 1000, 160);
    /* Button 0, small blind 1, big blind 2 (160 chips); 0 acts first. */
    assert_int_equal(S(&t)->button, 0);
    assert_int_equal(act(&t, "a", "call", NULL), 0);
    assert_int_equal(act(&t, "b", "call", NULL), 0);
    assert_int_equal(act(&t, "c", "check", NULL), 0);
    /* Flop: b bets 100, c is all in for 150 (a raise of 50, short of 100). */
    assert_int_equal(S(&t)->to_act, 1);
    assert_int_equal(act(&t, "b", "bet", json_pack("{s:i}", "amount", 100)), 0);
    assert_int_equal(act(&t, "c", "all_in", NULL), 0);
    assert_int_equal(S(&t)->current_bet, 150);
    assert_int_equal(S(&t)->min_raise, 100);
    /* a had not acted: a may raise (to at least 250) but calls. */
    assert_int_equal(act(&t, "a", "raise", json_pack("{s:i}", "to", 249)), ARB_EBELOW_MIN_RAISE);
    assert_int_equal(act(&t, "a", "call", NULL), 0);
    /* b had acted: only call or fold. */
    assert_int_equal(S(&t)->to_act, 1);
    assert_int_equal(act(&t, "b", "raise", json_pack("{s:i}", "to", 400)), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "b", "all_in", NULL), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "b", "call", NULL), 0);
    assert_int_equal(S(&t)->street, ARB__POKER_TURN);
    table_free(&t);
}

static void test_side_pots(void **unused)
{
    (void)unused;
    /* Sitting players one by one starts a heads-up hand at the second sit;
     * to deal four in at once, the first three sit, sit out, and the
     * fourth's sit_in of the others is not possible either (each sit_in
     * starts a hand). So: three sit out, the fourth sits, then the state is
     * edited to sit the three in (a between-hands flag) before a top_up by
     * the fourth starts the hand. */
    table t;
    table_init(&t, 17);
    create(&t, 6, 0);
    const char *names[] = {"a", "b", "c", "d"};
    const int64_t buy_ins[] = {100, 200, 300, 900};
    deal_in(&t, 4, names, buy_ins);
    assert_int_equal(act(&t, "d", "top_up", json_pack("{s:i}", "amount", 100)),
                     ARB_EHAND_IN_PROGRESS);
    assert_int_equal(S(&t)->button, 0);
    const char *holes[] = {"As Ah", "Ks Kh", "Qs Qh", "Js Jh"};
    rig(&t, holes, "2c 7d 9h Ts 3c");
    /* Blinds: b 5, c 10; d acts first and moves all in. */
    assert_int_equal(S(&t)->to_act, 3);
    assert_int_equal(act(&t, "d", "all_in", NULL), 0);
    assert_int_equal(act(&t, "a", "all_in", NULL), 0);
    assert_int_equal(act(&t, "b", "all_in", NULL), 0);
    assert_int_equal(act(&t, "c", "all_in", NULL), 0);
    /* d's 600 above c's 300 were not called. */
    json_t *returned = emitted(&t, "bet_returned");
    assert_int_equal(json_integer_value(json_object_get(returned, "seat")), 3);
    assert_int_equal(json_integer_value(json_object_get(returned, "amount")), 600);
    /* Main pot 400 to a, side pots 300 to b and 200 to c; d wins none. */
    assert_int_equal(won(&t, 0), 400);
    assert_int_equal(won(&t, 1), 300);
    assert_int_equal(won(&t, 2), 200);
    assert_int_equal(won(&t, 3), 0);
    json_t *ended = emitted(&t, "hand_ended");
    assert_non_null(ended);
    /* Everyone was all in: every hand was shown before the board. */
    size_t shown = 0, i;
    json_t *event;
    json_array_foreach (t.events, i, event)
        shown += strcmp(json_string_value(json_object_get(event, "type")), "cards_shown") == 0;
    assert_int_equal(shown, 4);
    table_free(&t);
}

static void test_odd_chip(void **unused)
{
    (void)unused;
    table t;
    three_players(&t, 1000, 1000, 1000);
    const char *holes[] = {"2c 3d", "4c 5d", "2d 3c"};
    rig(&t, holes, "As Ks Qs Js Ts");
    assert_int_equal(act(&t, "a", "call", NULL), 0);
    assert_int_equal(act(&t, "b", "fold", NULL), 0);
    assert_int_equal(act(&t, "c", "check", NULL), 0);
    for (int street = 0; street < 3; street++) {
        assert_int_equal(S(&t)->to_act, 2);
        assert_int_equal(act(&t, "c", "check", NULL), 0);
        assert_int_equal(act(&t, "a", "check", NULL), 0);
    }
    /* The board plays: a pot of 25 split, the odd chip to c, the first
     * winner clockwise from the button (b folded). */
    assert_int_equal(won(&t, 2), 13);
    assert_int_equal(won(&t, 0), 12);
    assert_int_equal(won(&t, 1), 0);
    table_free(&t);
}

static void test_showdown_order_and_muck(void **unused)
{
    (void)unused;
    table t;
    three_players(&t, 1000, 1000, 1000);
    const char *holes[] = {"Ah Kd", "Qh Jd", "7c 2d"};
    rig(&t, holes, "Ad 9c 8h 4s 3c");
    assert_int_equal(act(&t, "a", "call", NULL), 0);
    assert_int_equal(act(&t, "b", "call", NULL), 0);
    assert_int_equal(act(&t, "c", "check", NULL), 0);
    for (int street = 0; street < 2; street++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(act(&t, (const char *[]){"b", "c", "a"}[i], "check", NULL), 0);
    assert_int_equal(act(&t, "b", "check", NULL), 0);
    assert_int_equal(act(&t, "c", "bet", json_pack("{s:i}", "amount", 20)), 0);
    assert_int_equal(act(&t, "a", "call", NULL), 0);
    assert_int_equal(act(&t, "b", "call", NULL), 0);
    /* c bet last and shows first; a beats it and shows; b loses to a and
     * mucks. a wins 30 + 60. */
    const char *expected[] = {"cards_shown", "cards_shown", "mucked"};
    const int seats[] = {2, 0, 1};
    size_t i, k = 0;
    json_t *event;
    json_array_foreach (t.events, i, event) {
        const char *type = json_string_value(json_object_get(event, "type"));
        if (strcmp(type, "cards_shown") != 0 && strcmp(type, "mucked") != 0)
            continue;
        assert_true(k < 3);
        assert_string_equal(type, expected[k]);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(event, "data"), "seat")), seats[k]);
        k++;
    }
    assert_int_equal(k, 3);
    assert_int_equal(won(&t, 0), 90);
    table_free(&t);
}

static void test_rejections(void **unused)
{
    (void)unused;
    table t;
    table_init(&t, 5);
    assert_int_equal(sit(&t, "a", 0, 500), ARB_ETABLE_NOT_CREATED);
    assert_int_equal(act(&t, "a", "create_table", json_pack("{s:s}", "table", "t1")),
                     ARB_EFORBIDDEN);
    assert_int_equal(act_role(&t, "admin", ARB_ROLE_ADMIN, "create_table",
                              json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "table", "other",
                                        "seats", 2, "small_blind", 5, "big_blind", 10, "buy_in_min",
                                        100, "buy_in_max", 2000, "turn_s", 30)),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(act_role(&t, "admin", ARB_ROLE_ADMIN, "create_table",
                              json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "table", "t1",
                                        "seats", 11, "small_blind", 5, "big_blind", 10,
                                        "buy_in_min", 100, "buy_in_max", 2000, "turn_s", 30)),
                     ARB_EINVALID_ARGUMENT);
    create(&t, 2, 0);
    assert_int_equal(act_role(&t, "admin", ARB_ROLE_ADMIN, "create_table",
                              json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "table", "t1",
                                        "seats", 2, "small_blind", 5, "big_blind", 10, "buy_in_min",
                                        100, "buy_in_max", 2000, "turn_s", 30)),
                     ARB_ETABLE_EXISTS);
    assert_int_equal(act(&t, "a", "shuffle", NULL), ARB_EUNKNOWN_ACTION);
    assert_int_equal(act(&t, "a", "fold", json_pack("{s:i}", "x", 1)), ARB_EINVALID_ARGUMENT);
    assert_int_equal(sit(&t, "a", 2, 500), ARB_EINVALID_ARGUMENT);
    assert_int_equal(sit(&t, "a", 0, 99), ARB_EBUY_IN_OUT_OF_RANGE);
    assert_int_equal(sit(&t, "a", 0, 2001), ARB_EBUY_IN_OUT_OF_RANGE);
    assert_int_equal(act(&t, "a", "fold", NULL), ARB_ENOT_SEATED);
    assert_int_equal(act(&t, "a", "leave", NULL), ARB_ENOT_SEATED);
    assert_int_equal(sit(&t, "a", 0, 500), 0);
    assert_int_equal(sit(&t, "a", 1, 500), ARB_EALREADY_SEATED);
    assert_int_equal(sit(&t, "b", 0, 500), ARB_ESEAT_TAKEN);
    assert_int_equal(act(&t, "a", "top_up", json_pack("{s:i}", "amount", 1501)),
                     ARB_EBUY_IN_OUT_OF_RANGE);
    assert_int_equal(act(&t, "a", "top_up", json_pack("{s:i}", "amount", 1500)), 0);
    assert_int_equal(act(&t, "a", "top_up", json_pack("{s:i}", "amount", 1)),
                     ARB_EBUY_IN_OUT_OF_RANGE);
    assert_int_equal(act(&t, "a", "sit_in", NULL), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "a", "check", NULL), ARB_EILLEGAL_TURN);
    /* A client's prediction cannot start a hand. */
    t.no_random = true;
    assert_int_equal(sit(&t, "b", 1, 500), ARB_EUNPREDICTABLE);
    t.no_random = false;
    assert_int_equal(sit(&t, "b", 1, 500), 0);
    assert_int_equal(sit(&t, "c", 1, 500), ARB_ETABLE_FULL);
    assert_true(S(&t)->hand_active);
    /* a is the button and small blind: may not leave or top up while in
     * the hand; b may not act out of turn. */
    assert_int_equal(act(&t, "a", "leave", NULL), ARB_EHAND_IN_PROGRESS);
    assert_int_equal(act(&t, "a", "top_up", json_pack("{s:i}", "amount", 1)),
                     ARB_EHAND_IN_PROGRESS);
    assert_int_equal(act(&t, "b", "check", NULL), ARB_EILLEGAL_TURN);
    assert_int_equal(act(&t, "a", "bet", json_pack("{s:i}", "amount", 20)), ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "a", "raise", json_pack("{s:i}", "to", 2001)),
                     ARB_EINSUFFICIENT_STACK);
    assert_int_equal(act(&t, "a", "raise", json_pack("{s:i}", "to", 0)), ARB_EINVALID_ARGUMENT);
    /* Leaving after folding: the chips go with the player. */
    assert_int_equal(act(&t, "a", "sit_out", NULL), 0);
    assert_int_equal(act(&t, "a", "fold", NULL), 0);
    assert_false(S(&t)->hand_active);
    assert_int_equal(act(&t, "a", "leave", NULL), 0);
    assert_int_equal(S(&t)->chips_out, 2000 - 5);
    assert_int_equal(S(&t)->chips_in, 2500);
    table_free(&t);
}

/* Leaving mid-hand after a fold keeps the seat's chips in the pot and the
 * seat closed until the hand ends. */
static int timeout(table *t, json_t *args)
{
    return act_role(t, "system", ARB_ROLE_SYSTEM, "timeout", args);
}

/* The turn clock: a new turn reports its deadline (applied_at + turn_s);
 * the system's timeout at the deadline checks when it may, else folds;
 * early, late (the turn moved on) or from a user it is refused; a player's
 * own move ends a run of timeouts, and ARB_POKER_TIMEOUTS_SIT_OUT in a row
 * sit the player out. */
static void test_turn_clock(void **unused)
{
    (void)unused;
    table t;
    table_init(&t, 5);
    t.snapshot_every = 3; /* the clock's fields round-trip through snapshots */
    create(&t, 6, 0);
    assert_int_equal(sit(&t, "a", 0, 1000), 0);
    t.now_ms = 50000;
    assert_int_equal(sit(&t, "b", 3, 1000), 0);
    /* a (button, small blind) to act, since the big blind's post. */
    assert_int_equal(S(&t)->to_act, 0);
    assert_int_equal(S(&t)->turn_deadline_ms, 50000 + 30 * 1000);
    assert_int_equal(t.timer_at_ms, 80000);
    assert_int_equal(json_integer_value(json_object_get(t.timer_args, "seat")), 0);
    assert_int_equal(json_integer_value(json_object_get(t.timer_args, "hand")), 1);
    uint64_t turn = S(&t)->turn_seq;
    assert_int_equal(json_integer_value(json_object_get(t.timer_args, "turn")), (json_int_t)turn);
    json_t *args = json_deep_copy(t.timer_args);
    /* Early; from a user; for another turn: refused. */
    t.now_ms = 79999;
    assert_int_equal(timeout(&t, json_incref(args)), ARB_EILLEGAL_TURN);
    t.now_ms = 80000;
    assert_int_equal(act(&t, "b", "timeout", json_incref(args)), ARB_EFORBIDDEN);
    assert_int_equal(timeout(&t, json_pack("{s:i, s:i, s:I}", "hand", 1, "seat", 0, "turn",
                                           (json_int_t)turn + 1)),
                     ARB_EILLEGAL_TURN);
    /* At the deadline: a faces the big blind, cannot check: folds. */
    assert_int_equal(timeout(&t, json_incref(args)), 0);
    json_t *acted = emitted(&t, "acted");
    assert_non_null(emitted(&t, "timed_out"));
    assert_string_equal(json_string_value(json_object_get(acted, "action")), "fold");
    assert_null(emitted(&t, "sat_out"));
    assert_int_equal(S(&t)->seats[0].timeouts, 1);
    /* The same timer again (a resend, or a stale one): that turn is over. */
    assert_int_equal(timeout(&t, args), ARB_EILLEGAL_TURN);
    /* Hand 2: b is the button and acts first; b calls, a's turn (the big
     * blind may check): the clock checks, and that is a's second timeout
     * in a row: a is sat out. */
    assert_int_equal(S(&t)->hands, 2);
    assert_int_equal(act(&t, "b", "call", NULL), 0);
    assert_int_equal(S(&t)->to_act, 0);
    t.now_ms = S(&t)->turn_deadline_ms;
    assert_int_equal(timeout(&t, json_incref(t.timer_args)), 0);
    acted = emitted(&t, "acted");
    assert_string_equal(json_string_value(json_object_get(acted, "action")), "check");
    assert_non_null(emitted(&t, "sat_out"));
    assert_true(S(&t)->seats[0].sitting_out);
    assert_int_equal(S(&t)->seats[0].timeouts, 2);
    /* a comes back: the count starts over. On the flop the big blind (a)
     * acts first; its turn times out once more (a check, no sit-out), then
     * on the turn a moves itself, which ends the run. */
    assert_int_equal(act(&t, "a", "sit_in", NULL), 0);
    assert_int_equal(S(&t)->seats[0].timeouts, 0);
    assert_int_equal(S(&t)->street, ARB__POKER_FLOP);
    assert_int_equal(S(&t)->to_act, 0);
    t.now_ms = S(&t)->turn_deadline_ms;
    assert_int_equal(timeout(&t, json_incref(t.timer_args)), 0);
    assert_null(emitted(&t, "sat_out"));
    assert_int_equal(S(&t)->seats[0].timeouts, 1);
    assert_int_equal(act(&t, "b", "check", NULL), 0);
    assert_int_equal(S(&t)->street, ARB__POKER_TURN);
    assert_int_equal(act(&t, "a", "check", NULL), 0);
    assert_int_equal(S(&t)->seats[0].timeouts, 0);
    assert_false(S(&t)->seats[0].sitting_out);
    table_free(&t);
}

/* Bots: add_bot seats the server's player "bot.<seat>"; when it is to act
 * a bot_move timer is reported ARB_POKER_BOT_DELAY_MS after its turn
 * began, and the system's bot_move plays a legal move. A human and a bot
 * play hands to the end; no client may sit as a bot; remove_bot waits
 * for the hand. */
static void test_bots(void **unused)
{
    (void)unused;
    table t;
    table_init(&t, 11);
    create(&t, 4, 0);
    assert_int_equal(act(&t, "bot.9", "sit", json_pack("{s:i, s:i}", "seat", 1, "buy_in", 500)),
                     ARB_EFORBIDDEN);
    assert_int_equal(act(&t, "h", "add_bot", json_pack("{s:i, s:i}", "seat", 2, "buy_in", 500)),
                     ARB_EFORBIDDEN);
    assert_int_equal(act_role(&t, "admin", ARB_ROLE_ADMIN, "add_bot",
                              json_pack("{s:i, s:i}", "seat", 2, "buy_in", 500)),
                     0);
    assert_string_equal(S(&t)->seats[2].player, "bot.2");
    assert_int_equal(act(&t, "h", "sit", json_pack("{s:i, s:i}", "seat", 0, "buy_in", 500)), 0);
    assert_true(S(&t)->hand_active);
    int bot_moves = 0;
    for (int step = 0; step < 400 && S(&t)->hands <= 6; step++) {
        arb__poker_state *st = S(&t);
        assert_true(st->hand_active && st->to_act >= 0);
        if (st->to_act == 2) {
            int64_t began = st->turn_deadline_ms - 30 * 1000;
            assert_int_equal(t.bot_at_ms, began + ARB_POKER_BOT_DELAY_MS);
            assert_int_equal(json_integer_value(json_object_get(t.bot_args, "turn")),
                             (json_int_t)st->turn_seq);
            /* Only the system (or an admin) moves the bot, and only now. */
            assert_int_equal(act(&t, "h", "bot_move", json_incref(t.bot_args)), ARB_EFORBIDDEN);
            assert_int_equal(
                act_role(&t, "system", ARB_ROLE_SYSTEM, "bot_move", json_incref(t.bot_args)), 0);
            assert_non_null(emitted(&t, "acted"));
            bot_moves++;
        } else {
            const arb__poker_seat *h = &st->seats[0];
            const char *move = h->bet == st->current_bet ? "check" : "call";
            assert_int_equal(act(&t, "h", move, NULL), 0);
        }
    }
    assert_true(S(&t)->hands > 6);
    assert_true(bot_moves > 0);
    /* A bot_move for a human's turn, or a turn gone by: refused. */
    arb__poker_state *st = S(&t);
    json_t *args = json_pack("{s:I, s:i, s:I}", "hand", (json_int_t)st->hands, "seat", st->to_act,
                             "turn", (json_int_t)st->turn_seq);
    if (st->to_act == 0)
        assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "bot_move", args),
                         ARB_EILLEGAL_TURN);
    else
        json_decref(args);
    /* The bot is live in the hand: it cannot be removed until it is over. */
    if (S(&t)->seats[2].in_hand && !S(&t)->seats[2].folded)
        assert_int_equal(
            act_role(&t, "admin", ARB_ROLE_ADMIN, "remove_bot", json_pack("{s:i}", "seat", 2)),
            ARB_EHAND_IN_PROGRESS);
    assert_int_equal(
        act_role(&t, "admin", ARB_ROLE_ADMIN, "remove_bot", json_pack("{s:i}", "seat", 0)),
        ARB_ENOT_SEATED);
    table_free(&t);
}

/* Player entropy: the next hand's seed is committed at this hand's start;
 * seated players contribute once a hand; the next hand keeps the committed
 * seed and mixes their contributions into its deck, which a player checks
 * from the public events (its partial state does, at hand_ended). */
static void test_player_entropy(void **unused)
{
    (void)unused;
    static const char va[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    static const char vb[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    table t;
    table_init(&t, 21);
    create(&t, 6, 0);
    assert_int_equal(sit(&t, "a", 0, 1000), 0);
    /* No hand yet: nothing is committed to contribute to. */
    assert_int_equal(act(&t, "a", "contribute", json_pack("{s:s}", "value", va)),
                     ARB_EILLEGAL_ACTION);
    t.observer_principal = (arb_principal){.id = "b", .role = ARB_ROLE_USER};
    json_t *view = R->view(t.state, &t.observer_principal);
    assert_int_equal(R->view_load(view, t.seq, &t.observer_principal, &t.observer), 0);
    json_decref(view);
    assert_int_equal(sit(&t, "b", 3, 1000), 0);
    assert_true(S(&t)->hand_active && S(&t)->next_committed && S(&t)->next_seed_known);
    uint8_t committed[ARB__POKER_COMMITMENT_BYTES];
    memcpy(committed, S(&t)->next_commitment, sizeof committed);
    assert_int_equal(act(&t, "c", "contribute", json_pack("{s:s}", "value", va)), ARB_ENOT_SEATED);
    assert_int_equal(act(&t, "a", "contribute", json_pack("{s:s}", "value", "12")),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(act(&t, "a", "contribute", json_pack("{s:s}", "value", va)), 0);
    assert_int_equal(act(&t, "a", "contribute", json_pack("{s:s}", "value", vb)),
                     ARB_EILLEGAL_ACTION);
    assert_int_equal(act(&t, "b", "contribute", json_pack("{s:s}", "value", vb)), 0);
    assert_int_equal(S(&t)->entropy_count, 2);
    uint8_t expected[ARB_POKER_SEED_BYTES] = {0}, value[ARB_POKER_SEED_BYTES];
    assert_true(arb__poker_unhex(va, value, sizeof value));
    arb__poker_entropy_mix(expected, value);
    assert_true(arb__poker_unhex(vb, value, sizeof value));
    arb__poker_entropy_mix(expected, value);
    assert_memory_equal(S(&t)->entropy, expected, sizeof expected);
    uint8_t next_seed[ARB_POKER_SEED_BYTES];
    memcpy(next_seed, S(&t)->next_seed, sizeof next_seed);
    /* Hand 1 ends (a folds); hand 2 keeps the committed seed and mixes. */
    assert_int_equal(act(&t, "a", "fold", NULL), 0);
    assert_int_equal(S(&t)->hands, 2);
    const json_t *started = emitted(&t, "hand_started");
    assert_non_null(started);
    uint8_t commitment[ARB__POKER_COMMITMENT_BYTES];
    assert_true(arb__poker_unhex(json_string_value(json_object_get(started, "commitment")),
                                 commitment, sizeof commitment));
    assert_memory_equal(commitment, committed, sizeof commitment);
    assert_memory_equal(S(&t)->seed, next_seed, sizeof next_seed);
    uint8_t mixed[ARB_POKER_SEED_BYTES], deck[ARB_POKER_DECK_CARDS];
    arb__poker_deck_seed(next_seed, expected, mixed);
    arb__poker_deck_from_seed(mixed, deck);
    assert_memory_equal(S(&t)->deck, deck, sizeof deck);
    assert_true(S(&t)->hand_entropy_used);
    assert_int_equal(S(&t)->entropy_count, 0);
    assert_false(S(&t)->seats[0].contributed);
    /* b's own copy followed every event, and will check the deck when
     * hand 2 ends; play it out. */
    for (int step = 0; step < 40 && S(&t)->hands == 2; step++) {
        const arb__poker_state *st = S(&t);
        const char *who = st->seats[st->to_act].player;
        const char *move = st->seats[st->to_act].bet == st->current_bet ? "check" : "call";
        assert_int_equal(act(&t, who, move, NULL), 0);
    }
    assert_int_equal(S(&t)->hands, 3);
    table_free(&t);
}

/* Presence: when a seated player's last session ends the server proposes
 * presence {online: false}: the seat is held (went_away) and a grace_over
 * timer is reported grace_s later, which sits the player out if still
 * away; coming back first (came_back) makes it stale. */
static void test_presence_and_grace(void **unused)
{
    (void)unused;
    table t;
    table_init(&t, 31);
    assert_int_equal(act_role(&t, "admin", ARB_ROLE_ADMIN, "create_table",
                              json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "table", "t1",
                                        "seats", 4, "small_blind", 5, "big_blind", 10, "buy_in_min",
                                        100, "buy_in_max", 2000, "turn_s", 30, "grace_s", 90)),
                     0);
    assert_int_equal(sit(&t, "a", 0, 1000), 0);
    assert_false(R->presence(t.state, "a", true)); /* present already */
    assert_true(R->presence(t.state, "a", false));
    assert_false(R->presence(t.state, "nobody", false));
    /* Only the server (system, or an admin) says who is here. */
    assert_int_equal(act(&t, "a", "presence", json_pack("{s:s, s:b}", "player", "a", "online", 0)),
                     ARB_EFORBIDDEN);
    t.now_ms = 100000;
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "presence",
                              json_pack("{s:s, s:b}", "player", "a", "online", 0)),
                     0);
    assert_non_null(emitted(&t, "went_away"));
    assert_int_equal(S(&t)->seats[0].away_since, 100000);
    assert_int_equal(t.grace_at_ms, 100000 + 90 * 1000);
    assert_true(R->presence(t.state, "a", true));
    json_t *grace = json_pack("{s:i, s:s, s:I}", "seat", 0, "player", "a", "since", 100000);
    /* The grace has time left; then it sits the player out. */
    t.now_ms = 100000 + 90 * 1000 - 1;
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "grace_over", json_incref(grace)),
                     ARB_EILLEGAL_ACTION);
    assert_true(R->timer_due(t.state, "grace_over", grace));
    t.now_ms += 1;
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "grace_over", json_incref(grace)), 0);
    assert_true(S(&t)->seats[0].sitting_out);
    /* Back: the seat is theirs again (and sit_in deals them in). */
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "presence",
                              json_pack("{s:s, s:b}", "player", "a", "online", 1)),
                     0);
    assert_non_null(emitted(&t, "came_back"));
    assert_int_equal(S(&t)->seats[0].away_since, 0);
    assert_false(R->timer_due(t.state, "grace_over", grace)); /* stale now */
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "grace_over", grace),
                     ARB_EILLEGAL_ACTION);
    /* Away and back within the grace: not sat out. */
    assert_int_equal(act(&t, "a", "sit_in", NULL), 0);
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "presence",
                              json_pack("{s:s, s:b}", "player", "a", "online", 0)),
                     0);
    t.now_ms += 1000;
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "presence",
                              json_pack("{s:s, s:b}", "player", "a", "online", 1)),
                     0);
    assert_false(S(&t)->seats[0].sitting_out);
    assert_int_equal(act_role(&t, "system", ARB_ROLE_SYSTEM, "presence",
                              json_pack("{s:s, s:b}", "player", "a", "online", 1)),
                     ARB_EILLEGAL_ACTION);
    table_free(&t);
}

static void test_leave_after_fold(void **unused)
{
    (void)unused;
    table t;
    three_players(&t, 1000, 1000, 1000);
    assert_int_equal(act(&t, "a", "fold", NULL), 0);
    assert_int_equal(act(&t, "a", "leave", NULL), 0);
    assert_int_equal(sit(&t, "z", 0, 500), ARB_ESEAT_TAKEN);
    assert_int_equal(act(&t, "b", "call", NULL), 0);
    assert_int_equal(act(&t, "c", "check", NULL), 0);
    for (int street = 0; street < 3; street++) {
        assert_int_equal(act(&t, "b", "check", NULL), 0);
        assert_int_equal(act(&t, "c", "check", NULL), 0);
    }
    /* The hand ended; b and c play heads-up; seat 0 is free again. */
    assert_int_equal(S(&t)->dealt_count, 2);
    assert_int_equal(S(&t)->chips_out, 1000);
    table_free(&t);
}

static void test_fairness_and_redaction(void **unused)
{
    (void)unused;
    table t;
    table_init(&t, 23);
    create(&t, 6, 1);
    assert_int_equal(sit(&t, "a", 0, 1000), 0);
    assert_int_equal(sit(&t, "b", 1, 1000), 0);
    json_t *started = json_incref(emitted(&t, "hand_started"));
    assert_non_null(started);
    /* What a, b and a spectator see of hand_started. */
    arb_event event;
    make_event(&event, 1, "hand_started", started);
    arb_principal a = {.id = "a", .role = ARB_ROLE_USER}, z = {.id = "z", .role = ARB_ROLE_USER};
    json_t *for_a = R->redact(&event, &a), *for_z = R->redact(&event, &z);
    assert_null(json_object_get(for_a, "seed"));
    assert_null(json_object_get(for_a, "deck"));
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get(for_a, "dealt"), i, entry) {
        bool own = strcmp(json_string_value(json_object_get(entry, "player")), "a") == 0;
        assert_true(own == !json_is_null(json_object_get(entry, "cards")));
    }
    json_array_foreach (json_object_get(for_z, "dealt"), i, entry)
        assert_true(json_is_null(json_object_get(entry, "cards")));
    json_decref(for_a);
    json_decref(for_z);
    json_t *view = R->view(t.state, &a);
    assert_null(json_object_get(view, "deck"));
    assert_true(json_is_null(json_object_get(view, "seed")));
    assert_false(
        json_is_null(json_object_get(json_array_get(json_object_get(view, "seats"), 0), "cards")));
    assert_true(
        json_is_null(json_object_get(json_array_get(json_object_get(view, "seats"), 1), "cards")));
    json_decref(view);
    /* Play the hand out: a folds; hand_ended reveals the seed. */
    assert_int_equal(act(&t, "a", "fold", NULL), 0);
    json_t *ended = emitted(&t, "hand_ended");
    assert_non_null(ended);
    uint8_t seed[32], commitment[32], expected[32], deck[52];
    assert_true(arb__poker_unhex(json_string_value(json_object_get(ended, "seed")), seed, 32));
    assert_true(arb__poker_unhex(json_string_value(json_object_get(started, "commitment")),
                                 commitment, 32));
    /* docs/poker.md: BLAKE2b-256 of the label, the stream, the hand, the seed. */
    uint8_t message[24 + 9 + 8 + 32];
    memcpy(message, "arbiter/poker/commit/v1", 24);
    memcpy(message + 24, STREAM, 9);
    memset(message + 33, 0, 8);
    message[40] = 1;
    memcpy(message + 41, seed, 32);
    assert_int_equal(crypto_generichash(expected, 32, message, sizeof message, NULL, 0), 0);
    assert_memory_equal(commitment, expected, 32);
    arb__poker_deck_from_seed(seed, deck);
    json_t *dealt = json_object_get(started, "dealt");
    for (size_t k = 0; k < 2; k++) {
        uint8_t cards[2];
        assert_true(
            arb__poker_json_cards(json_object_get(json_array_get(dealt, k), "cards"), 2, cards));
        assert_int_equal(cards[0], deck[k]);
        assert_int_equal(cards[1], deck[k + 2]);
    }
    json_decref(started);
    table_free(&t);
}

/* The code an illegal betting action must get, from the view of the
 * state (independent of the module's resolve), or 1 when the oracle does
 * not know (a legal action, or a rule it does not model). */
static int expected_code(table *t, const char *who, int action, int64_t amount)
{
    const arb__poker_state *s = S(t);
    int seat = arb__poker_seat_of(s, who);
    if (seat < 0)
        return ARB_ENOT_SEATED;
    if ((action == ARB__POKER_BET || action == ARB__POKER_RAISE) && amount < 1)
        return ARB_EINVALID_ARGUMENT;
    if (!s->hand_active || s->to_act != seat)
        return ARB_EILLEGAL_TURN;
    const arb__poker_seat *me = &s->seats[seat];
    int64_t to_call = s->current_bet - me->bet;
    if (action == ARB__POKER_CHECK && to_call > 0)
        return ARB_EILLEGAL_ACTION;
    if (action == ARB__POKER_CALL && to_call <= 0)
        return ARB_EILLEGAL_ACTION;
    if (action == ARB__POKER_BET && s->current_bet > 0)
        return ARB_EILLEGAL_ACTION;
    if (action == ARB__POKER_RAISE && s->current_bet == 0)
        return ARB_EILLEGAL_ACTION;
    bool others_open = false;
    for (int i = 0; i < s->config.seat_count; i++)
        others_open = others_open || (i != seat && arb__poker_is_open(&s->seats[i]));
    if ((action == ARB__POKER_BET || action == ARB__POKER_RAISE) && !others_open)
        return ARB_EILLEGAL_ACTION;
    if ((action == ARB__POKER_BET || action == ARB__POKER_RAISE) && me->may_raise &&
        amount - me->bet > me->stack)
        return ARB_EINSUFFICIENT_STACK;
    return 1;
}

/* Predict who's command on a state loaded from who's view, as a client
 * does; the outcome must be the server's (events as redact shows them),
 * or UNPREDICTABLE. */
static void predict(table *t, const char *who, const char *action, json_t *args, int *code_out,
                    json_t **events_out)
{
    arb_principal viewer = {.role = ARB_ROLE_USER};
    snprintf(viewer.id, sizeof viewer.id, "%s", who);
    json_t *view = R->view(t->state, &viewer);
    void *partial, *copy;
    assert_int_equal(R->view_load(view, t->seq, &viewer, &partial), 0);
    json_decref(view);
    assert_int_equal(R->state_clone(partial, &copy), 0);
    R->state_free(partial);
    arb_command command;
    arb_command_init(&command);
    assert_int_equal(arb_command_set(&command, who, ARB_ROLE_USER, 1, STREAM, action, args), 0);
    arb_ctx ctx = {.now_ms = t->now_ms, .next_seq = t->seq + 1, .version = t->seq};
    arb_decision decision;
    arb_decision_init(&decision);
    R->decide(copy, &command, &ctx, &decision);
    *code_out = decision.code;
    *events_out = json_array();
    for (size_t i = 0; decision.code == 0 && i < decision.event_count; i++)
        json_array_append_new(*events_out, json_pack("{s:s, s:O}", "type", decision.events[i].type,
                                                     "data", decision.events[i].data));
    arb_decision_clear(&decision);
    arb_command_clear(&command);
    R->state_free(copy);
}

static json_t *redacted_events(table *t, const char *who)
{
    arb_principal viewer = {.role = ARB_ROLE_USER};
    snprintf(viewer.id, sizeof viewer.id, "%s", who);
    json_t *out = json_array();
    size_t i;
    json_t *entry;
    json_array_foreach (t->events, i, entry) {
        arb_event event;
        make_event(&event, 1, json_string_value(json_object_get(entry, "type")),
                   json_object_get(entry, "data"));
        json_array_append_new(
            out, json_pack("{s:s, s:o}", "type", event.type, "data", R->redact(&event, &viewer)));
    }
    return out;
}

static void random_step(table *t, uint64_t *rng, int *predicted)
{
    static const char *const players[] = {"p0", "p1", "p2", "p3", "p4", "p5", "p6"};
    static const char *const moves[] = {"fold", "check", "call", "bet", "raise", "all_in"};
    arb__poker_state *s = S(t);
    const char *who = players[xorshift(rng) % 7];
    /* Mostly the player to act, so hands progress. */
    /* A copy: the state is replaced by the snapshot round trips. */
    char to_act_player[ARB_CLIENT_ID_BYTES_MAX + 1];
    if (s->hand_active && s->to_act >= 0 && xorshift(rng) % 4 != 0) {
        snprintf(to_act_player, sizeof to_act_player, "%s", s->seats[s->to_act].player);
        who = to_act_player;
    }
    int seat = arb__poker_seat_of(s, who);
    uint64_t roll = xorshift(rng) % 100;
    if (roll < 8 || seat < 0) {
        int code = sit(t, who, (int)(xorshift(rng) % 6), 50 + (int64_t)(xorshift(rng) % 2100));
        assert_true(code == 0 || code == ARB_EALREADY_SEATED || code == ARB_ESEAT_TAKEN ||
                    code == ARB_ETABLE_FULL || code == ARB_EBUY_IN_OUT_OF_RANGE);
        return;
    }
    if (roll < 14) {
        static const char *const seating[] = {"sit_out", "sit_in", "leave", "top_up"};
        const char *action = seating[xorshift(rng) % 4];
        json_t *args = strcmp(action, "top_up") == 0
                           ? json_pack("{s:I}", "amount", (json_int_t)(1 + xorshift(rng) % 1500))
                           : json_object();
        int code = act(t, who, action, args);
        assert_true(code == 0 || code == ARB_EILLEGAL_ACTION || code == ARB_EHAND_IN_PROGRESS ||
                    code == ARB_EBUY_IN_OUT_OF_RANGE);
        return;
    }
    int action = (int)(xorshift(rng) % 6);
    int64_t bet = s->seats[seat].bet, stack_now = s->seats[seat].stack;
    int64_t amount = 0;
    switch (xorshift(rng) % 4) {
    case 0:
        amount = s->current_bet + s->min_raise;
        break;
    case 1:
        amount = bet + stack_now;
        break;
    case 2:
        amount = bet + stack_now + 1 + (int64_t)(xorshift(rng) % 50);
        break;
    default:
        amount = 1 + (int64_t)(xorshift(rng) % (uint64_t)(s->current_bet + 3 * s->min_raise + 1));
    }
    json_t *args = action == ARB__POKER_BET     ? json_pack("{s:I}", "amount", (json_int_t)amount)
                   : action == ARB__POKER_RAISE ? json_pack("{s:I}", "to", (json_int_t)amount)
                                                : json_object();
    int expected = expected_code(t, who, action, amount);
    int predicted_code = 0;
    json_t *predicted_events = NULL;
    bool own_turn = s->hand_active && s->to_act == seat;
    if (own_turn)
        predict(t, who, moves[action], args, &predicted_code, &predicted_events);
    int code = act(t, who, moves[action], args);
    if (expected != 1)
        assert_int_equal(code, expected);
    else
        assert_true(code == 0 || code == ARB_EILLEGAL_ACTION || code == ARB_EBELOW_MIN_RAISE ||
                    code == ARB_EINSUFFICIENT_STACK);
    if (own_turn) {
        if (predicted_code == ARB_EUNPREDICTABLE) {
            assert_int_equal(code, 0);
        } else {
            assert_int_equal(predicted_code, code);
            json_t *seen = redacted_events(t, who);
            if (code == 0 && !json_equal(seen, predicted_events))
                fail_msg("prediction of %s's %s differs", who, moves[action]);
            json_decref(seen);
            (*predicted)++;
        }
        json_decref(predicted_events);
    }
}

static void test_random_hands(void **unused)
{
    (void)unused;
    const uint64_t seeds[] = {1, 2, 3, 0x5eed, 0xfeed};
    /* 5,000 hands in all; 100,000 with ARB_TEST_LONG=1 (docs/poker.md). */
    const char *long_mode = getenv("ARB_TEST_LONG");
    const uint64_t per_seed = long_mode != NULL && strcmp(long_mode, "1") == 0 ? 20000 : 1000;
    uint64_t hands = 0;
    int predicted = 0;
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        table t;
        uint64_t rng = seeds[k] * 0x9E3779B97F4A7C15ull + 1;
        table_init(&t, seeds[k]);
        t.snapshot_every = 5 + (int)(seeds[k] % 7);
        create(&t, 6, (int64_t)(seeds[k] % 3));
        /* p0 is observed: a partial state from its first view follows every
         * event as redact shows it to p0, and its view must equal the
         * server's view for p0. */
        t.observer_principal = (arb_principal){.id = "p0", .role = ARB_ROLE_USER};
        json_t *view = R->view(t.state, &t.observer_principal);
        assert_int_equal(R->view_load(view, t.seq, &t.observer_principal, &t.observer), 0);
        json_decref(view);
        for (uint64_t step = 0; step < 40 * per_seed && S(&t)->hands < per_seed; step++)
            random_step(&t, &rng, &predicted);
        hands += S(&t)->hands;
        table_free(&t);
    }
    printf("random hands: %llu hands, %d predictions checked\n", (unsigned long long)hands,
           predicted);
    assert_true(hands > 2 * per_seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heads_up_order_and_uncalled_bet),
        cmocka_unit_test(test_min_raise),
        cmocka_unit_test(test_short_all_in_does_not_reopen),
        cmocka_unit_test(test_side_pots),
        cmocka_unit_test(test_odd_chip),
        cmocka_unit_test(test_showdown_order_and_muck),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_leave_after_fold),
        cmocka_unit_test(test_turn_clock),
        cmocka_unit_test(test_bots),
        cmocka_unit_test(test_player_entropy),
        cmocka_unit_test(test_presence_and_grace),
        cmocka_unit_test(test_fairness_and_redaction),
        cmocka_unit_test(test_random_hands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
