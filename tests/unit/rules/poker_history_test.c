/*
 * poker_history_test.c - the hand history formatter (src/rules/poker/
 * poker_history.c) on scripted hands, and the reader's walk back through a
 * log served by callbacks.
 *
 *   - a three-handed hand with antes, an all-in, a side pot, a showdown
 *     and a muck: every line of the text, exactly; the chips collected add
 *     up to the total pot;
 *   - a heads-up hand won by a fold, passed through the module's own
 *     redact for each player: a player's text holds their own cards and
 *     never the other's, an unredacted read holds both;
 *   - an all-in before the flop: the hands turned up at once, then named at
 *     the showdown;
 *   - refusals: events that are not one whole hand (CORRUPT), a text past
 *     the caller's bound (TOO_LARGE);
 *   - the reader: the stacks at the start of an older hand worked back from
 *     the current view, hand not dealt (NOT_FOUND), hand running
 *     (HAND_IN_PROGRESS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/rules.h"
#include "core/buf.h"
#include "rules/poker/poker.h"
#include "rules/poker/poker_history.h"

#define COMMITMENT "abababababababababababababababababababababababababababababababab"
#define SEED "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
/* 2023-11-14 22:13:20 UTC */
#define APPLIED_AT_MS 1700000000000LL

/* A hand under construction: events appended in order. */
typedef struct script {
    json_t *events;
    uint64_t seq;
} script;

static void script_init(script *s, uint64_t first_seq)
{
    s->events = json_array();
    s->seq = first_seq;
    assert_non_null(s->events);
}

/* Append {seq, type, data, applied_at}; steals data. */
static void add(script *s, const char *type, json_t *data)
{
    assert_non_null(data);
    json_t *event =
        json_pack("{s:s, s:I, s:s, s:o, s:I}", "stream", "table:t1", "seq", (json_int_t)s->seq++,
                  "type", type, "data", data, "applied_at", (json_int_t)APPLIED_AT_MS);
    assert_non_null(event);
    assert_int_equal(json_array_append_new(s->events, event), 0);
}

static void act(script *s, int seat, const char *action, int amount, int to)
{
    add(s, "acted",
        json_pack("{s:i, s:s, s:i, s:i}", "seat", seat, "action", action, "amount", amount, "to",
                  to));
}

static void post(script *s, int seat, const char *blind, int amount)
{
    add(s, "posted", json_pack("{s:i, s:s, s:i}", "seat", seat, "blind", blind, "amount", amount));
}

static void street(script *s, const char *name, const char *c1, const char *c2, const char *c3)
{
    json_t *cards = c2 != NULL ? json_pack("[s, s, s]", c1, c2, c3) : json_pack("[s]", c1);
    add(s, "street_dealt", json_pack("{s:s, s:o}", "street", name, "cards", cards));
}

static void award(script *s, int pot, int seat, int amount)
{
    add(s, "pot_awarded",
        json_pack("{s:i, s:i, s:[{s:i, s:i}]}", "pot", pot, "amount", amount, "winners", "seat",
                  seat, "amount", amount));
}

static arb_poker_history_table table_of(int seats, int ante)
{
    arb_poker_history_table table = {.seat_count = seats, .small_blind = 5, .big_blind = 10};
    table.ante = ante;
    snprintf(table.name, sizeof table.name, "t1");
    return table;
}

static void seat(arb_poker_history_seat *seats, int index, const char *player, int64_t stack)
{
    snprintf(seats[index].player, sizeof seats[index].player, "%s", player);
    seats[index].stack = stack;
}

/* Format into a fresh buffer (maximum max); returns the code, *text_out the
 * text (caller frees). */
static int format(const arb_poker_history_table *table, const arb_poker_history_seat *seats,
                  const json_t *events, size_t max, char **text_out)
{
    arb_buf buf;
    arb_buf_init(&buf, max);
    int rc = arb_poker_history_format(table, seats, events, &buf);
    *text_out = strdup(buf.data != NULL ? buf.data : "");
    arb_buf_free(&buf);
    return rc;
}

/* Three-handed: antes, bob all in, carol and alice play a side pot on;
 * bob's kings take the main pot, carol's two pair the side pot, alice mucks. */
static void three_handed(script *s)
{
    script_init(s, 40);
    add(s, "hand_started",
        json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:[s, s]}, {s:i, s:s, s:[s, s]}, {s:i, s:s, "
                  "s:[s, s]}]}",
                  "hand", 7, "button", 0, "commitment", COMMITMENT, "dealt", "seat", 1, "player",
                  "bob", "cards", "Kh", "Kd", "seat", 2, "player", "carol", "cards", "7c", "2d",
                  "seat", 0, "player", "alice", "cards", "Ah", "Qs"));
    post(s, 1, "ante", 1);
    post(s, 2, "ante", 1);
    post(s, 0, "ante", 1);
    post(s, 1, "small", 5);
    post(s, 2, "big", 10);
    act(s, 0, "raise", 30, 30);
    act(s, 1, "all_in", 94, 99);
    act(s, 2, "call", 89, 99);
    act(s, 0, "call", 69, 99);
    street(s, "flop", "Ks", "7h", "2c");
    act(s, 2, "check", 0, 0);
    act(s, 0, "bet", 50, 50);
    act(s, 2, "call", 50, 50);
    street(s, "turn", "Qd", NULL, NULL);
    act(s, 2, "check", 0, 0);
    act(s, 0, "check", 0, 0);
    street(s, "river", "3s", NULL, NULL);
    act(s, 2, "check", 0, 0);
    act(s, 0, "check", 0, 0);
    add(s, "cards_shown", json_pack("{s:i, s:[s, s]}", "seat", 1, "cards", "Kh", "Kd"));
    add(s, "cards_shown", json_pack("{s:i, s:[s, s]}", "seat", 2, "cards", "7c", "2d"));
    add(s, "mucked", json_pack("{s:i}", "seat", 0));
    award(s, 0, 1, 300);
    award(s, 1, 2, 100);
    add(s, "hand_ended", json_pack("{s:i, s:s}", "hand", 7, "seed", SEED));
}

static const char three_handed_text[] =
    "Arbiter Hand #7: Hold'em No Limit (5/10) - 2023/11/14 22:13:20 UTC\n"
    "Table 't1' 3-max Seat #1 is the button\n"
    "Seat 1: alice (500 in chips)\n"
    "Seat 2: bob (100 in chips)\n"
    "Seat 3: carol (1000 in chips)\n"
    "bob: posts the ante 1\n"
    "carol: posts the ante 1\n"
    "alice: posts the ante 1\n"
    "bob: posts small blind 5\n"
    "carol: posts big blind 10\n"
    "*** HOLE CARDS ***\n"
    "Dealt to alice [Ah Qs]\n"
    "Dealt to bob [Kh Kd]\n"
    "Dealt to carol [7c 2d]\n"
    "alice: raises 20 to 30\n"
    "bob: raises 69 to 99 and is all-in\n"
    "carol: calls 89\n"
    "alice: calls 69\n"
    "*** FLOP *** [Ks 7h 2c]\n"
    "carol: checks\n"
    "alice: bets 50\n"
    "carol: calls 50\n"
    "*** TURN *** [Ks 7h 2c] [Qd]\n"
    "carol: checks\n"
    "alice: checks\n"
    "*** RIVER *** [Ks 7h 2c Qd] [3s]\n"
    "carol: checks\n"
    "alice: checks\n"
    "*** SHOW DOWN ***\n"
    "bob: shows [Kh Kd] (three of a kind)\n"
    "carol: shows [7c 2d] (two pair)\n"
    "alice: mucks hand\n"
    "bob collected 300 from main pot\n"
    "carol collected 100 from side pot-1\n"
    "*** SUMMARY ***\n"
    "Total pot 400 Main pot 300. Side pot-1 100. | Rake 0\n"
    "Board [Ks 7h 2c Qd 3s]\n"
    "Seat 1: alice (button) mucked [Ah Qs]\n"
    "Seat 2: bob (small blind) showed [Kh Kd] and won (300) with three of a kind\n"
    "Seat 3: carol (big blind) showed [7c 2d] and won (100) with two pair\n"
    "*** FAIRNESS ***\n"
    "Commitment " COMMITMENT "\n"
    "Seed " SEED "\n";

/* The sum of "X collected N from ..." lines. */
static long long collected(const char *text)
{
    long long sum = 0;
    for (const char *p = strstr(text, " collected "); p != NULL; p = strstr(p + 1, " collected "))
        sum += strtoll(p + strlen(" collected "), NULL, 10);
    return sum;
}

static void test_three_handed_exact(void **unused)
{
    (void)unused;
    script s;
    three_handed(&s);
    arb_poker_history_table table = table_of(3, 1);
    arb_poker_history_seat seats[ARB_POKER_SEATS_MAX] = {0};
    seat(seats, 0, "alice", 500);
    seat(seats, 1, "bob", 100);
    seat(seats, 2, "carol", 1000);
    char *text = NULL;
    assert_int_equal(format(&table, seats, s.events, ARB_POKER_HISTORY_BYTES_MAX, &text), 0);
    assert_string_equal(text, three_handed_text);
    assert_int_equal(collected(text), 400);
    free(text);

    /* A text past the caller's bound is refused, not cut short silently. */
    assert_int_equal(format(&table, seats, s.events, 200, &text), ARB_ETOO_LARGE);
    free(text);
    json_decref(s.events);
}

/* Heads-up: alice (button, small blind) raises, bob folds. */
static void heads_up_fold(script *s, bool with_secret)
{
    script_init(s, 10);
    json_t *started =
        json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:[s, s]}, {s:i, s:s, s:[s, s]}]}", "hand", 1,
                  "button", 0, "commitment", COMMITMENT, "dealt", "seat", 1, "player", "bob",
                  "cards", "9s", "9h", "seat", 0, "player", "alice", "cards", "Jc", "Tc");
    if (with_secret) /* what the log holds and redact removes */
        json_object_set_new(started, "seed", json_string(SEED));
    add(s, "hand_started", started);
    post(s, 0, "small", 5);
    post(s, 1, "big", 10);
    act(s, 0, "raise", 25, 30);
    act(s, 1, "fold", 0, 10);
    add(s, "bet_returned", json_pack("{s:i, s:i}", "seat", 0, "amount", 20));
    award(s, 0, 0, 20);
    add(s, "hand_ended", json_pack("{s:i, s:s}", "hand", 1, "seed", SEED));
}

/* The events as viewer sees them, through the module's own redact. */
static json_t *redacted(const json_t *events, const char *viewer)
{
    arb_principal principal = {.role = ARB_ROLE_USER};
    snprintf(principal.id, sizeof principal.id, "%s", viewer);
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach (events, i, item) {
        arb_event event = {.seq = (uint64_t)json_integer_value(json_object_get(item, "seq"))};
        snprintf(event.stream, sizeof event.stream, "table:t1");
        snprintf(event.type, sizeof event.type, "%s",
                 json_string_value(json_object_get(item, "type")));
        event.data = json_object_get(item, "data");
        json_t *seen = arb_rules_poker.redact(&event, &principal);
        assert_non_null(seen);
        json_t *copy = json_copy(item);
        json_object_set_new(copy, "data", seen);
        json_array_append_new(out, copy);
    }
    return out;
}

static void test_heads_up_redacted(void **unused)
{
    (void)unused;
    script s;
    heads_up_fold(&s, true);
    arb_poker_history_table table = table_of(2, 0);
    arb_poker_history_seat seats[ARB_POKER_SEATS_MAX] = {0};
    seat(seats, 0, "alice", 200);
    seat(seats, 1, "bob", 200);
    static const char tail[] = "alice: posts small blind 5\n"
                               "bob: posts big blind 10\n"
                               "*** HOLE CARDS ***\n";
    static const char actions[] = "alice: raises 20 to 30\n"
                                  "bob: folds\n"
                                  "Uncalled bet (20) returned to alice\n"
                                  "alice collected 20 from pot\n"
                                  "*** SUMMARY ***\n"
                                  "Total pot 20 | Rake 0\n"
                                  "Seat 1: alice (button) (small blind) collected (20)\n"
                                  "Seat 2: bob (big blind) folded before Flop\n";

    json_t *as_bob = redacted(s.events, "bob");
    char *text = NULL;
    assert_int_equal(format(&table, seats, as_bob, ARB_POKER_HISTORY_BYTES_MAX, &text), 0);
    assert_non_null(strstr(text, tail));
    assert_non_null(strstr(text, "*** HOLE CARDS ***\nDealt to bob [9s 9h]\nalice: raises"));
    assert_non_null(strstr(text, actions));
    assert_null(strstr(text, "Jc"));
    assert_null(strstr(text, "Tc"));
    assert_null(strstr(text, "Dealt to alice"));
    assert_non_null(strstr(text, "Seed " SEED "\n")); /* revealed by hand_ended */
    assert_int_equal(collected(text), 20);
    free(text);
    json_decref(as_bob);

    json_t *as_alice = redacted(s.events, "alice");
    assert_int_equal(format(&table, seats, as_alice, ARB_POKER_HISTORY_BYTES_MAX, &text), 0);
    assert_non_null(strstr(text, "Dealt to alice [Jc Tc]\n"));
    assert_null(strstr(text, "9s"));
    assert_null(strstr(text, "9h"));
    free(text);
    json_decref(as_alice);

    json_t *as_carol = redacted(s.events, "carol"); /* a spectator */
    assert_int_equal(format(&table, seats, as_carol, ARB_POKER_HISTORY_BYTES_MAX, &text), 0);
    assert_null(strstr(text, "Dealt to"));
    free(text);
    json_decref(as_carol);

    /* Unredacted (an admin's read): both hands. */
    assert_int_equal(format(&table, seats, s.events, ARB_POKER_HISTORY_BYTES_MAX, &text), 0);
    assert_non_null(strstr(text, "Dealt to alice [Jc Tc]\nDealt to bob [9s 9h]\n"));
    free(text);
    json_decref(s.events);
}

/* All in before the flop: both hands turned up at once, the board run out,
 * then the showdown names them. */
static void test_all_in_preflop(void **unused)
{
    (void)unused;
    script s;
    script_init(&s, 1);
    add(&s, "hand_started",
        json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:n}, {s:i, s:s, s:n}]}", "hand", 2, "button", 1,
                  "commitment", COMMITMENT, "dealt", "seat", 0, "player", "alice", "cards", "seat",
                  1, "player", "bob", "cards"));
    post(&s, 1, "small", 5);
    post(&s, 0, "big", 10);
    act(&s, 1, "all_in", 95, 100);
    act(&s, 0, "call", 90, 100);
    add(&s, "cards_shown", json_pack("{s:i, s:[s, s]}", "seat", 0, "cards", "Ac", "Ad"));
    add(&s, "cards_shown", json_pack("{s:i, s:[s, s]}", "seat", 1, "cards", "8s", "9s"));
    street(&s, "flop", "5s", "6s", "7s");
    street(&s, "turn", "2d", NULL, NULL);
    street(&s, "river", "Ts", NULL, NULL);
    award(&s, 0, 1, 200);
    add(&s, "hand_ended", json_pack("{s:i, s:s}", "hand", 2, "seed", SEED));
    arb_poker_history_table table = table_of(2, 0);
    arb_poker_history_seat seats[ARB_POKER_SEATS_MAX] = {0};
    seat(seats, 0, "alice", 300);
    seat(seats, 1, "bob", 100);
    char *text = NULL;
    assert_int_equal(format(&table, seats, s.events, ARB_POKER_HISTORY_BYTES_MAX, &text), 0);
    assert_non_null(strstr(text, "bob: raises 90 to 100 and is all-in\n"
                                 "alice: calls 90\n"
                                 "alice: shows [Ac Ad]\n"
                                 "bob: shows [8s 9s]\n"
                                 "*** FLOP *** [5s 6s 7s]\n"));
    assert_non_null(strstr(text, "*** RIVER *** [5s 6s 7s 2d] [Ts]\n"
                                 "*** SHOW DOWN ***\n"
                                 "alice: shows [Ac Ad] (a pair)\n"
                                 "bob: shows [8s 9s] (a straight flush)\n"
                                 "bob collected 200 from pot\n"));
    assert_non_null(strstr(text, "Seat 1: alice (big blind) showed [Ac Ad] and lost with a pair\n"
                                 "Seat 2: bob (button) (small blind) showed [8s 9s] and won (200) "
                                 "with a straight flush\n"));
    assert_null(strstr(text, "Dealt to"));
    free(text);
    json_decref(s.events);
}

static void test_not_one_hand(void **unused)
{
    (void)unused;
    script s;
    heads_up_fold(&s, false);
    arb_poker_history_table table = table_of(2, 0);
    arb_poker_history_seat seats[ARB_POKER_SEATS_MAX] = {0};
    seat(seats, 0, "alice", 200);
    seat(seats, 1, "bob", 200);
    char *text = NULL;
    /* Without its end. */
    json_t *cut = json_copy(s.events);
    json_array_remove(cut, json_array_size(cut) - 1);
    assert_int_equal(format(&table, seats, cut, ARB_POKER_HISTORY_BYTES_MAX, &text), ARB_ECORRUPT);
    free(text);
    json_decref(cut);
    /* Without its start. */
    cut = json_copy(s.events);
    json_array_remove(cut, 0);
    assert_int_equal(format(&table, seats, cut, ARB_POKER_HISTORY_BYTES_MAX, &text), ARB_ECORRUPT);
    free(text);
    json_decref(cut);
    /* A seat that is not the one dealt. */
    seat(seats, 1, "mallory", 200);
    assert_int_equal(format(&table, seats, s.events, ARB_POKER_HISTORY_BYTES_MAX, &text),
                     ARB_ECORRUPT);
    free(text);
    json_decref(s.events);
}

/* ---- The reader, over a log served from memory ---- */

typedef struct memory_log {
    json_t *events; /* seq 1.. in order */
    json_t *view;
    int pages; /* event reads made */
} memory_log;

static int memory_view(void *user, json_t **view_out, uint64_t *version_out)
{
    memory_log *log = user;
    *view_out = json_incref(log->view);
    *version_out = json_array_size(log->events);
    return 0;
}

static int memory_events(void *user, uint64_t since_seq, uint64_t limit, json_t **events_out)
{
    memory_log *log = user;
    log->pages++;
    json_t *out = json_array();
    for (uint64_t seq = since_seq + 1;
         seq <= since_seq + limit && seq <= json_array_size(log->events); seq++)
        json_array_append(out, json_array_get(log->events, seq - 1));
    *events_out = out;
    return 0;
}

/* A table created, alice and bob seated, hand 1 (the fold), then hand 2
 * running; the view says where the chips are now. */
static void test_reader(void **unused)
{
    (void)unused;
    script log;
    script_init(&log, 1);
    add(&log, "table_created", json_pack("{s:s}", "table", "t1"));
    add(&log, "sat", json_pack("{s:i, s:s, s:i}", "seat", 0, "player", "alice", "buy_in", 200));
    add(&log, "sat", json_pack("{s:i, s:s, s:i}", "seat", 1, "player", "bob", "buy_in", 200));
    script hand;
    heads_up_fold(&hand, false);
    size_t i;
    json_t *item;
    json_array_foreach (hand.events, i, item)
        add(&log, json_string_value(json_object_get(item, "type")),
            json_incref(json_object_get(item, "data")));
    json_decref(hand.events);
    /* Hand 2 starts: bob on the button posts 5, alice 10; carol sits. */
    add(&log, "hand_started",
        json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:n}, {s:i, s:s, s:n}]}", "hand", 2, "button", 1,
                  "commitment", COMMITMENT, "dealt", "seat", 0, "player", "alice", "cards", "seat",
                  1, "player", "bob", "cards"));
    post(&log, 1, "small", 5);
    post(&log, 0, "big", 10);
    add(&log, "sat", json_pack("{s:i, s:s, s:i}", "seat", 2, "player", "carol", "buy_in", 150));
    memory_log memory = {.events = log.events};
    memory.view =
        json_pack("{s:{s:s, s:i, s:i, s:i, s:i}, s:i, s:b, s:[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}]}",
                  "table", "table", "t1", "seats", 3, "small_blind", 5, "big_blind", 10, "ante", 0,
                  "hands", 2, "hand_active", 1, "seats", "player", "alice", "stack", 200, "player",
                  "bob", "stack", 185, "player", "carol", "stack", 150);
    assert_non_null(memory.view);
    arb_poker_history_source source = {memory_view, memory_events, &memory, 0};
    arb_buf buf;
    arb_buf_init(&buf, ARB_POKER_HISTORY_BYTES_MAX);
    char why[128];
    assert_int_equal(arb_poker_history_read(&source, 1, &buf, why, sizeof why), 0);
    assert_non_null(strstr(buf.data, "Arbiter Hand #1: "));
    assert_non_null(strstr(buf.data, "Table 't1' 3-max Seat #1 is the button\n"
                                     "Seat 1: alice (200 in chips)\n"
                                     "Seat 2: bob (200 in chips)\n"
                                     "alice: posts small blind 5\n"));
    assert_int_equal(memory.pages, 1);
    arb_buf_reset(&buf);
    assert_int_equal(arb_poker_history_read(&source, 2, &buf, why, sizeof why),
                     ARB_EHAND_IN_PROGRESS);
    assert_int_equal(arb_poker_history_read(&source, 3, &buf, why, sizeof why), ARB_ENOTFOUND);
    assert_string_equal(why, "no such hand: the table has not dealt it");
    assert_int_equal(arb_poker_history_read(&source, 0, &buf, why, sizeof why),
                     ARB_EINVALID_ARGUMENT);
    /* A view without a table (another kind, or before create_table). */
    json_object_set_new(memory.view, "table", json_null());
    assert_int_equal(arb_poker_history_read(&source, 1, &buf, why, sizeof why),
                     ARB_ETABLE_NOT_CREATED);
    /* Stacks that do not add up to the log (a seat taken back by another
     * buy-in than its own). */
    json_object_set_new(memory.view, "table",
                        json_pack("{s:s, s:i, s:i, s:i, s:i}", "table", "t1", "seats", 3,
                                  "small_blind", 5, "big_blind", 10, "ante", 0));
    json_object_set_new(json_array_get(json_object_get(memory.view, "seats"), 2), "stack",
                        json_integer(149));
    assert_int_equal(arb_poker_history_read(&source, 1, &buf, why, sizeof why), ARB_ECORRUPT);
    arb_buf_free(&buf);
    json_decref(memory.view);
    json_decref(log.events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_handed_exact),
        cmocka_unit_test(test_heads_up_redacted),
        cmocka_unit_test(test_all_in_preflop),
        cmocka_unit_test(test_not_one_hand),
        cmocka_unit_test(test_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
