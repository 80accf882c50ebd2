/*
 * poker_decide_fuzz.c - fuzz target: programs of table commands run against
 * arb_rules_poker directly, the way the engine runs them.
 *
 * Input: eight bytes that seed the server's randomness (ctx->random_bytes,
 * so hands are dealt from decks the input chooses), then a program. Each
 * step is one opcode byte followed by the bytes its operation reads (see
 * poker_fuzz_step); the program ends with the input or after
 * POKER_FUZZ_STEPS_MAX steps. Operations:
 *   - propose a betting action (fold, check, call, bet, raise, all_in),
 *     mostly from the player to act so that hands progress, else from any
 *     seat, a player with no seat, an admin or the system, with amounts that
 *     include the minimum bet or raise, the whole stack and one chip more,
 *     0, negatives, 2^53-1, 2^53 and INT64 extremes, and sometimes wrong
 *     JSON types, missing or unknown keys;
 *   - propose a seating action (sit, leave, sit_out, sit_in, top_up) or
 *     create_table with edge values, or an unknown action;
 *   - propose the turn clock's timeout (mostly the system's, for the
 *     running turn; sometimes another seat's or turn's, or a user's), or a
 *     bot's move, or seat a bot (add_bot) and move it, or a player's
 *     entropy (contribute), or the server's presence news and a grace's
 *     end;
 *   - advance the clock;
 *   - round-trip the state through snapshot_save / snapshot_load and go on
 *     with the loaded state;
 *   - clone the state and go on with the clone;
 *   - start following the table as one player (or a spectator): a partial
 *     state from view_load of their view, fed every later event as redact
 *     shows it to them.
 *
 * Properties checked (ARB_ASSERT):
 *   - decide never changes the state (the fixed-size struct is compared
 *     byte for byte on every proposal, the snapshot on some);
 *   - a rejection has a negative code known to arb_err_name and listed for
 *     its action in docs/poker.md, a message, no events and no result, and
 *     details that are NULL or an object of canonical JSON; for betting
 *     actions with well-formed args the code is what an oracle independent
 *     of the module's resolve expects wherever it knows (as poker_test.c's
 *     randomized test); the server never answers UNPREDICTABLE;
 *   - an acceptance has at least one event of canonical data; create_table
 *     came from an admin or the system; evolve accepts every event and
 *     check() holds after each;
 *   - decide with random_bytes NULL on the same state gives the same
 *     decision (code, message, details, events), or UNPREDICTABLE exactly
 *     when the server's decision starts a hand;
 *   - a user's prediction (decide on a clone of the partial state that
 *     view_load makes of their view, with no randomness; made for the
 *     player to act, and for every 4th other proposal) is the server's
 *     decision as redact shows its events to that user, or UNPREDICTABLE
 *     when the server accepted (the prediction never makes up a rejection);
 *   - a followed player's partial state evolves every redacted event and
 *     its view equals the server's view for that player after every
 *     decision;
 *   - save -> load -> save gives an equal, canonical snapshot;
 *     state_clone's snapshot equals the original's and the clone decides
 *     the next command exactly as the original;
 *   - at the end, replaying the whole log into a fresh state gives the same
 *     snapshot (replay re-verifies every deck and commitment).
 * Everything allocated is freed; LeakSanitizer checks. With ARB_FUZZ_TRACE
 * set in the environment every proposal and its outcome is printed to
 * stderr, which is how to read a crashing input.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "arbiter/rules.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"
#include "fuzz.h"
#include "rules/poker/poker.h"
#include "rules/poker/poker_internal.h"

#define POKER_FUZZ_TABLE "fuzz"
#define POKER_FUZZ_STREAM "table:fuzz"
/* Bounds that keep one input fast: steps, and events logged for the final
 * replay. */
#define POKER_FUZZ_STEPS_MAX 256
#define POKER_FUZZ_LOG_MAX 8192
/* One proposal in this many also compares the snapshot before and after. */
#define POKER_FUZZ_SNAPSHOT_EVERY 8
/* One proposal in this many from a player not to act is also predicted. */
#define POKER_FUZZ_PREDICT_EVERY 4
#define POKER_FUZZ_NOW_START_MS 1700000000000LL
#define POKER_FUZZ_NOW_MAX_MS (ARB_JSON_INT_MAX / 2)

#define POKER_FUZZ_COUNT(array) (sizeof(array) / sizeof((array)[0]))

static const char *const poker_fuzz_players[] = {"p0", "p1", "p2", "p3", "p4", "p5", "p6"};

typedef struct poker_fuzz {
    arb_fuzz_reader in;
    const arb_rules *rules;
    void *state;
    uint64_t next_seq;
    uint64_t client_seq;
    int64_t now_ms;
    uint64_t rng; /* the server's randomness, seeded from the input */
    /* The followed player's partial state, or NULL. */
    void *observer;
    arb_principal observer_principal;
    arb_event *log; /* every event evolved, in order; each owns its data */
    size_t log_count;
    size_t log_cap;
    bool log_full;
    arb_buf canon;
    bool trace;
} poker_fuzz;

/* One decision, copied so that two can be compared. */
typedef struct poker_fuzz_outcome {
    int code;
    json_t *details; /* NULL or owned */
    json_t *events;  /* [{type, data}] */
    char message[ARB_MESSAGE_BYTES_MAX + 1];
} poker_fuzz_outcome;

/* Small helpers. */

static uint64_t poker_fuzz_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static void poker_fuzz_random_bytes(void *user, void *buf, size_t len)
{
    uint64_t *s = user;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = (uint8_t)(poker_fuzz_xorshift(s) >> 56);
}

static arb__poker_state *poker_fuzz_table(const poker_fuzz *fuzz)
{
    return fuzz->state;
}

static void poker_fuzz_assert_canonical(poker_fuzz *fuzz, const json_t *value)
{
    arb_buf_reset(&fuzz->canon);
    ARB_ASSERT(arb_canon_json(&fuzz->canon, value) == 0);
}

static json_t *poker_fuzz_save(const poker_fuzz *fuzz, const void *state)
{
    json_t *snapshot = NULL;
    ARB_ASSERT(fuzz->rules->snapshot_save(state, &snapshot) == 0 && json_is_object(snapshot));
    return snapshot;
}

static void poker_fuzz_check_state(const poker_fuzz *fuzz, const void *state)
{
    char why[256];
    int rc = fuzz->rules->check(state, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "poker_decide_fuzz: check failed: %s\n", why);
    ARB_ASSERT(rc == 0);
}

static void poker_fuzz_assert_same_state(const poker_fuzz *fuzz, const void *a, const void *b)
{
    json_t *first = poker_fuzz_save(fuzz, a), *second = poker_fuzz_save(fuzz, b);
    ARB_ASSERT(json_equal(first, second));
    json_decref(first);
    json_decref(second);
}

static void poker_fuzz_set(json_t *object, const char *key, json_t *value)
{
    ARB_ASSERT(value != NULL);
    ARB_ASSERT(json_object_set_new(object, key, value) == 0);
}

/* Keep an evolved event for the final replay; copies its data. */
static void poker_fuzz_log(poker_fuzz *fuzz, const arb_event *event)
{
    if (fuzz->log_count == POKER_FUZZ_LOG_MAX) {
        fuzz->log_full = true;
        return;
    }
    if (fuzz->log_count == fuzz->log_cap) {
        size_t cap = fuzz->log_cap == 0 ? 64 : 2 * fuzz->log_cap;
        arb_event *log = realloc(fuzz->log, cap * sizeof *log);
        ARB_ASSERT(log != NULL);
        fuzz->log = log;
        fuzz->log_cap = cap;
    }
    arb_event *copy = &fuzz->log[fuzz->log_count++];
    *copy = *event;
    copy->data = json_incref(event->data);
}

/* Outcomes. */

static void poker_fuzz_outcome_take(poker_fuzz_outcome *outcome, const arb_decision *decision)
{
    outcome->code = decision->code;
    outcome->details = decision->details != NULL ? json_incref(decision->details) : NULL;
    snprintf(outcome->message, sizeof outcome->message, "%s", decision->message);
    outcome->events = json_array();
    ARB_ASSERT(outcome->events != NULL);
    for (size_t i = 0; i < decision->event_count; i++)
        ARB_ASSERT(json_array_append_new(outcome->events,
                                         json_pack("{s:s, s:O}", "type", decision->events[i].type,
                                                   "data", decision->events[i].data)) == 0);
}

static void poker_fuzz_outcome_clear(poker_fuzz_outcome *outcome)
{
    json_decref(outcome->details);
    json_decref(outcome->events);
    memset(outcome, 0, sizeof *outcome);
}

static bool poker_fuzz_outcome_equal(const poker_fuzz_outcome *a, const poker_fuzz_outcome *b)
{
    if (a->code != b->code || strcmp(a->message, b->message) != 0)
        return false;
    if ((a->details == NULL) != (b->details == NULL))
        return false;
    if (a->details != NULL && !json_equal(a->details, b->details))
        return false;
    return json_equal(a->events, b->events);
}

static bool poker_fuzz_outcome_has(const poker_fuzz_outcome *outcome, const char *type)
{
    size_t i;
    json_t *event;
    json_array_foreach (outcome->events, i, event)
        if (strcmp(json_string_value(json_object_get(event, "type")), type) == 0)
            return true;
    return false;
}

static void poker_fuzz_dump(const char *what, const json_t *value)
{
    char *text = value != NULL ? json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    fprintf(stderr, "poker_decide_fuzz: %s: %s\n", what, text != NULL ? text : "null");
    free(text);
}

/* Argument generators. Each reads its bytes and returns a new reference. */

static json_t *poker_fuzz_garbage(uint8_t pick)
{
    switch (pick % 6) {
    case 0:
        return json_string("5");
    case 1:
        return json_real(10.5);
    case 2:
        return json_null();
    case 3:
        return json_true();
    case 4:
        return json_array();
    default:
        return json_object();
    }
}

static const int64_t poker_fuzz_edges[] = {
    0,
    -1,
    1,
    2,
    ARB_POKER_CHIPS_MAX,
    ARB_POKER_CHIPS_MAX + 1,
    ARB_JSON_INT_MAX,
    ARB_JSON_INT_MAX - 1,
    ARB_JSON_INT_MAX + 1,
    -ARB_JSON_INT_MAX,
    INT64_MAX,
    INT64_MIN,
    ARB_POKER_SEATS_MAX,
    ARB_POKER_TURN_S_MAX + 1,
};

/* An edge integer, a raw one or something that is not an integer. */
static json_t *poker_fuzz_edge(poker_fuzz *fuzz, uint8_t pick)
{
    if (pick % 4 != 3)
        return json_integer(poker_fuzz_edges[(pick / 4) % POKER_FUZZ_COUNT(poker_fuzz_edges)]);
    if (pick % 8 == 3)
        return json_integer((json_int_t)arb_fuzz_u64(&fuzz->in));
    return poker_fuzz_garbage(pick / 8);
}

/* An integer: mostly one of the meaningful values, else an edge. */
static json_t *poker_fuzz_int(poker_fuzz *fuzz, const int64_t *values, size_t count)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 224)
        return json_integer(values[pick % count]);
    return poker_fuzz_edge(fuzz, pick);
}

/* Optional damage to args (the engine hands over an object): a missing
 * key, an unknown one, a key of the wrong type. */
static json_t *poker_fuzz_damage(poker_fuzz *fuzz, json_t *args, const char *key, bool *ok)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 232)
        return args;
    *ok = false;
    switch (pick % 4) {
    case 0:
        if (key != NULL)
            json_object_del(args, key);
        return args;
    case 1:
        poker_fuzz_set(args, "extra", json_true());
        return args;
    case 2:
        poker_fuzz_set(args, key != NULL ? key : "amount", poker_fuzz_garbage(pick / 4));
        return args;
    default:
        poker_fuzz_set(args, "", json_integer(1));
        return args;
    }
}

static json_t *poker_fuzz_create_args(poker_fuzz *fuzz, bool *ok)
{
    static const int64_t seats[] = {2, 3, 6, 9, 10, 2, 6, 1, 11};
    static const int64_t small[] = {1, 5, 10, 1, 50};
    static const int64_t big[] = {2, 10, 20, 1, 100};
    static const int64_t ante[] = {0, 0, 1, 5, 0};
    static const int64_t buy_in_min[] = {20, 100, 1, 1000};
    static const int64_t buy_in_max[] = {2000, 500, 100, 1000, ARB_POKER_CHIPS_MAX};
    static const int64_t turn_s[] = {30, 1, ARB_POKER_TURN_S_MAX};
    static const int64_t grace_s[] = {0, 90, ARB_POKER_GRACE_S_MAX};
    json_t *args = json_object();
    ARB_ASSERT(args != NULL);
    uint8_t name = arb_fuzz_u8(&fuzz->in);
    char text[ARB_POKER_TABLE_NAME_BYTES_MAX + 2];
    if (name < 224) {
        poker_fuzz_set(args, "table", json_string(POKER_FUZZ_TABLE));
    } else if (name % 4 == 0) {
        memset(text, 't', sizeof text - 1);
        poker_fuzz_set(args, "table", json_stringn(text, sizeof text - 1));
    } else if (name % 4 == 1) {
        poker_fuzz_set(args, "table", json_string("other"));
    } else if (name % 4 == 2) {
        poker_fuzz_set(args, "table", json_string(""));
    } else {
        poker_fuzz_set(args, "table", json_integer(1));
    }
    poker_fuzz_set(args, "seats", poker_fuzz_int(fuzz, seats, POKER_FUZZ_COUNT(seats)));
    poker_fuzz_set(args, "small_blind", poker_fuzz_int(fuzz, small, POKER_FUZZ_COUNT(small)));
    poker_fuzz_set(args, "big_blind", poker_fuzz_int(fuzz, big, POKER_FUZZ_COUNT(big)));
    uint8_t optional = arb_fuzz_u8(&fuzz->in);
    if (optional & 1)
        poker_fuzz_set(args, "ante", poker_fuzz_int(fuzz, ante, POKER_FUZZ_COUNT(ante)));
    poker_fuzz_set(args, "buy_in_min",
                   poker_fuzz_int(fuzz, buy_in_min, POKER_FUZZ_COUNT(buy_in_min)));
    poker_fuzz_set(args, "buy_in_max",
                   poker_fuzz_int(fuzz, buy_in_max, POKER_FUZZ_COUNT(buy_in_max)));
    poker_fuzz_set(args, "turn_s", poker_fuzz_int(fuzz, turn_s, POKER_FUZZ_COUNT(turn_s)));
    if (optional & 2)
        poker_fuzz_set(args, "grace_s", poker_fuzz_int(fuzz, grace_s, POKER_FUZZ_COUNT(grace_s)));
    return poker_fuzz_damage(fuzz, args, "seats", ok);
}

/* Chips that mean something at this table for seat (or -1). */
static json_t *poker_fuzz_chips(poker_fuzz *fuzz, int seat, bool buy_in)
{
    const arb__poker_state *s = poker_fuzz_table(fuzz);
    const arb__poker_config *c = &s->config;
    const arb__poker_seat *me = seat >= 0 ? &s->seats[seat] : NULL;
    int64_t stack = me != NULL ? me->stack : 0, bet = me != NULL ? me->bet : 0;
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick >= 224)
        return poker_fuzz_edge(fuzz, pick);
    if (buy_in) {
        int64_t values[] = {c->buy_in_min,
                            c->buy_in_max,
                            c->buy_in_min - 1,
                            c->buy_in_max + 1,
                            c->buy_in_max - stack,
                            c->buy_in_max - stack + 1,
                            (c->buy_in_min + c->buy_in_max) / 2,
                            1};
        return json_integer(values[pick % POKER_FUZZ_COUNT(values)]);
    }
    int64_t values[] = {s->current_bet + s->min_raise,
                        bet + stack,
                        bet + stack + 1,
                        c->big_blind,
                        c->big_blind - 1,
                        s->current_bet + s->min_raise - 1,
                        s->current_bet,
                        s->current_bet + 1,
                        stack,
                        1 + pick % 50};
    return json_integer(values[pick % POKER_FUZZ_COUNT(values)]);
}

/* Who proposes: mostly the player to act (during a hand), else a player
 * the input picks, an admin or the system. */
static const char *poker_fuzz_who(poker_fuzz *fuzz, arb_role *role_out, char *buf, size_t size)
{
    const arb__poker_state *s = poker_fuzz_table(fuzz);
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    *role_out = ARB_ROLE_USER;
    if (pick < 160 && s->hand_active && s->to_act >= 0) {
        snprintf(buf, size, "%s", s->seats[s->to_act].player);
        return buf;
    }
    if (pick >= 240) {
        *role_out = pick % 2 == 0 ? ARB_ROLE_ADMIN : ARB_ROLE_SYSTEM;
        return pick % 2 == 0 ? "admin" : "$system";
    }
    return poker_fuzz_players[pick % POKER_FUZZ_COUNT(poker_fuzz_players)];
}

/* Checks of one decision. */

static bool poker_fuzz_code_listed(const char *action, int code)
{
    static const struct {
        const char *action;
        int codes[10];
    } listed[] = {
        {"create_table", {ARB_EFORBIDDEN, ARB_EINVALID_ARGUMENT, ARB_ETABLE_EXISTS}},
        {"sit",
         {ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_EBUY_IN_OUT_OF_RANGE, ARB_EFORBIDDEN,
          ARB_EALREADY_SEATED, ARB_ETABLE_FULL, ARB_ESEAT_TAKEN, ARB_EOVERFLOW}},
        {"top_up",
         {ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_ENOT_SEATED, ARB_EBUY_IN_OUT_OF_RANGE,
          ARB_EHAND_IN_PROGRESS, ARB_EOVERFLOW}},
        {"sit_out",
         {ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_ENOT_SEATED, ARB_EILLEGAL_ACTION}},
        {"sit_in",
         {ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_ENOT_SEATED, ARB_EILLEGAL_ACTION}},
        {"leave",
         {ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_ENOT_SEATED, ARB_EHAND_IN_PROGRESS}},
        {"timeout",
         {ARB_EFORBIDDEN, ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_EILLEGAL_TURN}},
        {"bot_move",
         {ARB_EFORBIDDEN, ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_EILLEGAL_TURN}},
        {"presence",
         {ARB_EFORBIDDEN, ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_ENOT_SEATED,
          ARB_EILLEGAL_ACTION}},
        {"grace_over",
         {ARB_EFORBIDDEN, ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_EILLEGAL_ACTION}},
        {"contribute",
         {ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_ENOT_SEATED, ARB_EILLEGAL_ACTION}},
        {"add_bot",
         {ARB_EFORBIDDEN, ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT, ARB_EBUY_IN_OUT_OF_RANGE,
          ARB_EALREADY_SEATED, ARB_ETABLE_FULL, ARB_ESEAT_TAKEN, ARB_EOVERFLOW}},
    };
    static const int betting[] = {
        ARB_ETABLE_NOT_CREATED, ARB_EINVALID_ARGUMENT,   ARB_ENOT_SEATED,     ARB_EILLEGAL_TURN,
        ARB_EILLEGAL_ACTION,    ARB_EINSUFFICIENT_STACK, ARB_EBELOW_MIN_RAISE};
    for (size_t i = 0; i < POKER_FUZZ_COUNT(listed); i++) {
        if (strcmp(listed[i].action, action) != 0)
            continue;
        for (size_t k = 0; k < POKER_FUZZ_COUNT(listed[i].codes); k++)
            if (listed[i].codes[k] == code)
                return true;
        return false;
    }
    arb__poker_action move;
    if (arb__poker_action_from_name(action, &move)) {
        for (size_t k = 0; k < POKER_FUZZ_COUNT(betting); k++)
            if (betting[k] == code)
                return true;
        return false;
    }
    return code == ARB_EUNKNOWN_ACTION;
}

/* The code an illegal betting action must get, from the state alone (not
 * from the module's resolve), or 1 when the oracle does not know. Mirrors
 * poker_test.c's expected_code. */
static int poker_fuzz_expected(const poker_fuzz *fuzz, const char *who, arb__poker_action action,
                               int64_t amount)
{
    const arb__poker_state *s = poker_fuzz_table(fuzz);
    if (!s->created)
        return ARB_ETABLE_NOT_CREATED;
    int seat = arb__poker_seat_of(s, who);
    if (seat < 0)
        return ARB_ENOT_SEATED;
    if ((action == ARB__POKER_BET || action == ARB__POKER_RAISE) &&
        (amount < 1 || amount > ARB_JSON_INT_MAX))
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

static void poker_fuzz_check_rejection(poker_fuzz *fuzz, const arb_command *command,
                                       const arb_decision *decision)
{
    ARB_ASSERT(decision->code < 0 && decision->event_count == 0 && decision->result == NULL);
    ARB_ASSERT(strcmp(arb_err_name(decision->code), "UNKNOWN_ERROR") != 0);
    ARB_ASSERT(decision->message[0] != '\0');
    if (!poker_fuzz_code_listed(command->action, decision->code))
        fprintf(stderr, "poker_decide_fuzz: %s got %s\n", command->action,
                arb_err_name(decision->code));
    ARB_ASSERT(poker_fuzz_code_listed(command->action, decision->code));
    if (decision->details != NULL) {
        ARB_ASSERT(json_is_object(decision->details));
        poker_fuzz_assert_canonical(fuzz, decision->details);
    }
}

static void poker_fuzz_check_acceptance(poker_fuzz *fuzz, const arb_command *command,
                                        const arb_decision *decision)
{
    ARB_ASSERT(decision->event_count >= 1);
    if (strcmp(command->action, "create_table") == 0)
        ARB_ASSERT(command->principal.role != ARB_ROLE_USER);
    for (size_t i = 0; i < decision->event_count; i++) {
        ARB_ASSERT(json_is_object(decision->events[i].data));
        poker_fuzz_assert_canonical(fuzz, decision->events[i].data);
    }
    if (decision->result != NULL)
        poker_fuzz_assert_canonical(fuzz, decision->result);
}

/* The events of an accepted decision: evolve each into the state (check()
 * after each), log it, and feed it redacted to the followed player. */
static void poker_fuzz_commit(poker_fuzz *fuzz, const arb_command *command,
                              const arb_decision *decision)
{
    for (size_t i = 0; i < decision->event_count; i++) {
        arb_event event;
        memset(&event, 0, sizeof event);
        ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, command->stream) == 0);
        ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, decision->events[i].type) == 0);
        ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, command->principal.id) ==
                   0);
        event.seq = fuzz->next_seq++;
        event.client_seq = command->client_seq;
        event.applied_at_ms = fuzz->now_ms;
        event.data = decision->events[i].data; /* borrowed */
        int rc = fuzz->rules->evolve(fuzz->state, &event, NULL);
        if (rc != 0)
            fprintf(stderr, "poker_decide_fuzz: evolve refused its own %s event\n", event.type);
        ARB_ASSERT(rc == 0);
        poker_fuzz_check_state(fuzz, fuzz->state);
        poker_fuzz_log(fuzz, &event);
        if (fuzz->observer != NULL) {
            arb_event seen = event;
            seen.data = fuzz->rules->redact(&event, &fuzz->observer_principal);
            ARB_ASSERT(seen.data != NULL);
            rc = fuzz->rules->evolve(fuzz->observer, &seen, NULL);
            if (rc != 0)
                fprintf(stderr, "poker_decide_fuzz: %s's partial state refused %s\n",
                        fuzz->observer_principal.id, event.type);
            ARB_ASSERT(rc == 0);
            json_decref(seen.data);
        }
    }
    if (fuzz->observer != NULL) {
        json_t *expected = fuzz->rules->view(fuzz->state, &fuzz->observer_principal);
        json_t *actual = fuzz->rules->view(fuzz->observer, &fuzz->observer_principal);
        ARB_ASSERT(expected != NULL && actual != NULL);
        if (!json_equal(expected, actual)) {
            poker_fuzz_dump("server's view", expected);
            poker_fuzz_dump("follower's view", actual);
        }
        ARB_ASSERT(json_equal(expected, actual));
        json_decref(expected);
        json_decref(actual);
    }
}

static void poker_fuzz_trace(const arb_command *command, const arb_decision *decision)
{
    char *args = json_dumps(command->args, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fprintf(stderr, "%s(%d) %s %s -> %s", command->principal.id, (int)command->principal.role,
            command->action, args != NULL ? args : "?", arb_err_name(decision->code));
    for (size_t i = 0; i < decision->event_count; i++)
        fprintf(stderr, " %s", decision->events[i].type);
    fprintf(stderr, decision->code != 0 ? " (%s)\n" : "\n", decision->message);
    free(args);
}

/* decide on state; random NULL unless rng is given (which it advances). */
static void poker_fuzz_decide(const poker_fuzz *fuzz, const void *state, const arb_command *command,
                              uint64_t *rng, arb_decision *decision)
{
    arb_ctx ctx = {.now_ms = fuzz->now_ms,
                   .next_seq = fuzz->next_seq,
                   .version = fuzz->next_seq - 1,
                   .random_bytes = rng != NULL ? poker_fuzz_random_bytes : NULL,
                   .random_user = rng};
    arb__poker_state before;
    memcpy(&before, state, sizeof before);
    arb_decision_init(decision);
    fuzz->rules->decide(state, command, &ctx, decision);
    ARB_ASSERT(memcmp(&before, state, sizeof before) == 0); /* decide must not change it */
}

/* The user's prediction: decide on a clone of the partial state built
 * from their view, without randomness. */
static void poker_fuzz_predict(const poker_fuzz *fuzz, const arb_command *command,
                               poker_fuzz_outcome *out)
{
    json_t *view = fuzz->rules->view(fuzz->state, &command->principal);
    ARB_ASSERT(view != NULL);
    void *partial = NULL, *copy = NULL;
    ARB_ASSERT(fuzz->rules->view_load(view, fuzz->next_seq - 1, &command->principal, &partial) ==
               0);
    json_decref(view);
    ARB_ASSERT(fuzz->rules->state_clone(partial, &copy) == 0);
    fuzz->rules->state_free(partial);
    arb_decision decision;
    poker_fuzz_decide(fuzz, copy, command, NULL, &decision);
    poker_fuzz_outcome_take(out, &decision);
    arb_decision_clear(&decision);
    fuzz->rules->state_free(copy);
}

/* The server's outcome as redact shows it to viewer. */
static void poker_fuzz_redacted(const poker_fuzz *fuzz, const poker_fuzz_outcome *server,
                                const arb_principal *viewer, poker_fuzz_outcome *out)
{
    *out = *server;
    out->details = server->details != NULL ? json_incref(server->details) : NULL;
    out->events = json_array();
    ARB_ASSERT(out->events != NULL);
    size_t i;
    json_t *entry;
    json_array_foreach (server->events, i, entry) {
        arb_event event;
        memset(&event, 0, sizeof event);
        ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, POKER_FUZZ_STREAM) == 0);
        ARB_ASSERT(arb_copy_name(event.type, sizeof event.type,
                                 json_string_value(json_object_get(entry, "type"))) == 0);
        event.seq = fuzz->next_seq + i;
        event.data = json_object_get(entry, "data");
        json_t *seen = fuzz->rules->redact(&event, viewer);
        ARB_ASSERT(seen != NULL);
        ARB_ASSERT(json_array_append_new(out->events, json_pack("{s:s, s:o}", "type", event.type,
                                                                "data", seen)) == 0);
    }
}

static void poker_fuzz_compare_prediction(const poker_fuzz *fuzz, const arb_command *command,
                                          const poker_fuzz_outcome *predicted,
                                          const poker_fuzz_outcome *server)
{
    if (predicted->code == ARB_EUNPREDICTABLE) {
        ARB_ASSERT(server->code == 0);
        return;
    }
    poker_fuzz_outcome seen;
    poker_fuzz_redacted(fuzz, server, &command->principal, &seen);
    bool same = poker_fuzz_outcome_equal(predicted, &seen);
    if (!same) {
        fprintf(stderr, "poker_decide_fuzz: %s's prediction of %s: %s (%s), server: %s (%s)\n",
                command->principal.id, command->action, arb_err_name(predicted->code),
                predicted->message, arb_err_name(seen.code), seen.message);
        poker_fuzz_dump("predicted events", predicted->events);
        poker_fuzz_dump("server's events", seen.events);
    }
    ARB_ASSERT(same);
    poker_fuzz_outcome_clear(&seen);
}

/* Propose action(args) as client_id/role; steals args. expected is the
 * oracle's code (1: unknown). */
static void poker_fuzz_propose(poker_fuzz *fuzz, const char *client_id, arb_role role,
                               const char *action, json_t *args, int expected)
{
    arb_command command;
    arb_command_init(&command);
    ARB_ASSERT(arb_command_set(&command, client_id, role, ++fuzz->client_seq, POKER_FUZZ_STREAM,
                               action, args) == 0);
    json_decref(args);
    bool compare = fuzz->client_seq % POKER_FUZZ_SNAPSHOT_EVERY == 0;
    json_t *before = compare ? poker_fuzz_save(fuzz, fuzz->state) : NULL;

    /* Without randomness first: the same decision, or UNPREDICTABLE. */
    arb_decision decision;
    poker_fuzz_decide(fuzz, fuzz->state, &command, NULL, &decision);
    poker_fuzz_outcome no_random;
    poker_fuzz_outcome_take(&no_random, &decision);
    arb_decision_clear(&decision);
    poker_fuzz_outcome predicted = {0};
    /* Predictions are dear (a view and a view_load): the player to act's
     * always, the others' now and then. */
    const arb__poker_state *s = poker_fuzz_table(fuzz);
    int seat = arb__poker_seat_of(s, client_id);
    bool own_turn = s->hand_active && seat >= 0 && s->to_act == seat;
    bool predict =
        role == ARB_ROLE_USER && (own_turn || fuzz->client_seq % POKER_FUZZ_PREDICT_EVERY == 0);
    if (predict)
        poker_fuzz_predict(fuzz, &command, &predicted);

    poker_fuzz_decide(fuzz, fuzz->state, &command, &fuzz->rng, &decision);
    if (compare) {
        json_t *after = poker_fuzz_save(fuzz, fuzz->state);
        ARB_ASSERT(json_equal(before, after));
        json_decref(before);
        json_decref(after);
    }
    if (fuzz->trace)
        poker_fuzz_trace(&command, &decision);
    poker_fuzz_outcome server;
    poker_fuzz_outcome_take(&server, &decision);
    ARB_ASSERT(decision.code != ARB_EUNPREDICTABLE);
    if (expected != 1) {
        if (decision.code != expected)
            fprintf(stderr, "poker_decide_fuzz: %s expected %s, got %s\n", action,
                    arb_err_name(expected), arb_err_name(decision.code));
        ARB_ASSERT(decision.code == expected);
    }
    if (no_random.code == ARB_EUNPREDICTABLE)
        ARB_ASSERT(server.code == 0 && poker_fuzz_outcome_has(&server, "hand_started"));
    else
        ARB_ASSERT(poker_fuzz_outcome_equal(&no_random, &server));
    if (predict)
        poker_fuzz_compare_prediction(fuzz, &command, &predicted, &server);

    if (decision.code != 0) {
        poker_fuzz_check_rejection(fuzz, &command, &decision);
    } else {
        poker_fuzz_check_acceptance(fuzz, &command, &decision);
        poker_fuzz_commit(fuzz, &command, &decision);
    }
    poker_fuzz_outcome_clear(&no_random);
    poker_fuzz_outcome_clear(&server);
    if (predict)
        poker_fuzz_outcome_clear(&predicted);
    arb_decision_clear(&decision);
    arb_command_clear(&command);
}

/* Steps. */

static void poker_fuzz_move_step(poker_fuzz *fuzz, arb__poker_action action)
{
    char buf[ARB_CLIENT_ID_BYTES_MAX + 1];
    arb_role role;
    const char *who = poker_fuzz_who(fuzz, &role, buf, sizeof buf);
    int seat = arb__poker_seat_of(poker_fuzz_table(fuzz), who);
    json_t *args = json_object();
    ARB_ASSERT(args != NULL);
    const char *key = action == ARB__POKER_BET     ? "amount"
                      : action == ARB__POKER_RAISE ? "to"
                                                   : NULL;
    int64_t amount = 0;
    bool ok = true;
    if (key != NULL) {
        json_t *value = poker_fuzz_chips(fuzz, seat, false);
        ok = json_is_integer(value);
        amount = json_integer_value(value);
        poker_fuzz_set(args, key, value);
    }
    args = poker_fuzz_damage(fuzz, args, key, &ok);
    int expected = ok ? poker_fuzz_expected(fuzz, who, action, amount) : 1;
    poker_fuzz_propose(fuzz, who, role, arb__poker_action_name(action), args, expected);
}

static void poker_fuzz_seating_step(poker_fuzz *fuzz, uint8_t op)
{
    static const char *const names[] = {"sit", "leave", "sit_out", "sit_in", "top_up"};
    char buf[ARB_CLIENT_ID_BYTES_MAX + 1];
    arb_role role;
    const char *who = poker_fuzz_who(fuzz, &role, buf, sizeof buf);
    const char *action = names[op % POKER_FUZZ_COUNT(names)];
    int seat = arb__poker_seat_of(poker_fuzz_table(fuzz), who);
    json_t *args = json_object();
    ARB_ASSERT(args != NULL);
    const char *key = NULL;
    bool ok = true;
    if (strcmp(action, "sit") == 0) {
        int count = poker_fuzz_table(fuzz)->config.seat_count;
        uint8_t pick = arb_fuzz_u8(&fuzz->in);
        poker_fuzz_set(args, "seat",
                       pick < 224 ? json_integer(count > 0 ? pick % count : 0)
                                  : poker_fuzz_edge(fuzz, pick));
        poker_fuzz_set(args, "buy_in", poker_fuzz_chips(fuzz, -1, true));
        key = "buy_in";
    } else if (strcmp(action, "top_up") == 0) {
        poker_fuzz_set(args, "amount", poker_fuzz_chips(fuzz, seat, true));
        key = "amount";
    }
    args = poker_fuzz_damage(fuzz, args, key, &ok);
    poker_fuzz_propose(fuzz, who, role, action, args, 1);
}

static void poker_fuzz_create_step(poker_fuzz *fuzz)
{
    uint8_t who = arb_fuzz_u8(&fuzz->in);
    bool ok = true;
    json_t *args = poker_fuzz_create_args(fuzz, &ok);
    if (who % 8 == 7)
        poker_fuzz_propose(fuzz, "p0", ARB_ROLE_USER, "create_table", args, 1);
    else if (who % 8 == 6)
        poker_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "create_table", args, 1);
    else
        poker_fuzz_propose(fuzz, "admin", ARB_ROLE_ADMIN, "create_table", args, 1);
}

static void poker_fuzz_unknown_step(poker_fuzz *fuzz)
{
    static const char *const unknown[] = {"nonsense", "", "FOLD", "fold ", "time_out", "deal"};
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    poker_fuzz_propose(fuzz, poker_fuzz_players[pick % 3], ARB_ROLE_USER,
                       unknown[(pick / 4) % POKER_FUZZ_COUNT(unknown)], json_object(), 1);
}

/* The turn clock's proposal: mostly the system's, for the running turn
 * (accepted once the clock is past its deadline), sometimes for another
 * seat or turn, or from a user. */
static void poker_fuzz_timeout_step(poker_fuzz *fuzz)
{
    const arb__poker_state *s = poker_fuzz_table(fuzz);
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    json_int_t seat = s->to_act >= 0 ? s->to_act : 0;
    json_int_t turn = (json_int_t)s->turn_seq;
    if (pick % 8 == 5)
        seat = (seat + 1) % ARB_POKER_SEATS_MAX;
    if (pick % 8 == 6)
        turn++;
    json_t *args = json_pack("{s:I, s:I, s:I}", "hand", (json_int_t)(s->hands > 0 ? s->hands : 1),
                             "seat", seat, "turn", turn > 0 ? turn : 1);
    ARB_ASSERT(args != NULL);
    if (pick % 8 == 4) {
        /* A bot at a seat the input picks, then its move if it is to act. */
        json_t *bot = json_pack("{s:i, s:I}", "seat", pick % ARB_POKER_SEATS_MAX, "buy_in",
                                (json_int_t)(s->created ? s->config.buy_in_min : 100));
        ARB_ASSERT(bot != NULL);
        poker_fuzz_propose(fuzz, "admin", ARB_ROLE_ADMIN, "add_bot", bot, 1);
        poker_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "bot_move", args, 1);
    } else if (pick % 8 == 3) {
        poker_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "bot_move", args, 1);
    } else if (pick % 8 == 1) {
        /* The server's word that a player went away or came back, then the
         * grace's end for that seat (refused unless the clock is past it). */
        const char *player = poker_fuzz_players[(pick / 8) % 3];
        json_decref(args);
        poker_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "presence",
                           json_pack("{s:s, s:b}", "player", player, "online", (pick / 24) % 2), 1);
        const arb__poker_state *now = poker_fuzz_table(fuzz);
        int at = arb__poker_seat_of(now, player);
        int64_t since = at >= 0 && now->seats[at].away_since > 0 ? now->seats[at].away_since : 1;
        if (at >= 0)
            poker_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "grace_over",
                               json_pack("{s:i, s:s, s:I}", "seat", at, "player", player, "since",
                                         (json_int_t)since),
                               1);
    } else if (pick % 8 == 2) {
        /* A player's entropy for the next hand (sometimes not hex). */
        static const char *const values[] = {
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", "zz", ""};
        json_decref(args);
        poker_fuzz_propose(fuzz, poker_fuzz_players[pick % 3], ARB_ROLE_USER, "contribute",
                           json_pack("{s:s}", "value", values[(pick / 8) % 4]), 1);
    } else if (pick % 8 == 7) {
        poker_fuzz_propose(fuzz, poker_fuzz_players[pick % 3], ARB_ROLE_USER, "timeout", args, 1);
    } else {
        poker_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "timeout", args, 1);
    }
}

static void poker_fuzz_advance(poker_fuzz *fuzz)
{
    static const int64_t deltas_ms[] = {0, 1, 999, 30000, 90000, 3600 * 1000LL};
    int64_t delta = deltas_ms[arb_fuzz_u8(&fuzz->in) % POKER_FUZZ_COUNT(deltas_ms)];
    fuzz->now_ms =
        delta > POKER_FUZZ_NOW_MAX_MS - fuzz->now_ms ? POKER_FUZZ_NOW_MAX_MS : fuzz->now_ms + delta;
}

/* save -> load -> save, then go on with the loaded state. */
static void poker_fuzz_round_trip(poker_fuzz *fuzz)
{
    json_t *first = poker_fuzz_save(fuzz, fuzz->state);
    poker_fuzz_assert_canonical(fuzz, first);
    void *loaded = NULL;
    int rc = fuzz->rules->snapshot_load(first, fuzz->next_seq - 1, &loaded, NULL);
    if (rc != 0)
        poker_fuzz_dump("snapshot that does not load", first);
    ARB_ASSERT(rc == 0 && loaded != NULL);
    poker_fuzz_check_state(fuzz, loaded);
    json_t *second = poker_fuzz_save(fuzz, loaded);
    ARB_ASSERT(json_equal(first, second));
    json_decref(first);
    json_decref(second);
    fuzz->rules->state_free(fuzz->state);
    fuzz->state = loaded;
}

/* Clone; the clone must equal the original and decide the next command
 * exactly as it does; then go on with the clone. */
static void poker_fuzz_clone(poker_fuzz *fuzz)
{
    void *clone = NULL;
    ARB_ASSERT(fuzz->rules->state_clone(fuzz->state, &clone) == 0 && clone != NULL);
    poker_fuzz_assert_same_state(fuzz, fuzz->state, clone);
    arb__poker_state *s = poker_fuzz_table(fuzz);
    const char *who = s->hand_active && s->to_act >= 0 ? s->seats[s->to_act].player : "p0";
    static const char *const moves[] = {"call", "check", "fold", "all_in"};
    arb_command command;
    arb_command_init(&command);
    json_t *args = json_object();
    ARB_ASSERT(arb_command_set(&command, who, ARB_ROLE_USER, ++fuzz->client_seq, POKER_FUZZ_STREAM,
                               moves[arb_fuzz_u8(&fuzz->in) % POKER_FUZZ_COUNT(moves)], args) == 0);
    json_decref(args);
    uint64_t rng = fuzz->rng;
    arb_decision original, copied;
    poker_fuzz_decide(fuzz, fuzz->state, &command, &rng, &original);
    rng = fuzz->rng;
    poker_fuzz_decide(fuzz, clone, &command, &rng, &copied);
    poker_fuzz_outcome a, b;
    poker_fuzz_outcome_take(&a, &original);
    poker_fuzz_outcome_take(&b, &copied);
    ARB_ASSERT(poker_fuzz_outcome_equal(&a, &b));
    poker_fuzz_outcome_clear(&a);
    poker_fuzz_outcome_clear(&b);
    arb_decision_clear(&original);
    arb_decision_clear(&copied);
    arb_command_clear(&command);
    fuzz->rules->state_free(fuzz->state);
    fuzz->state = clone;
}

/* Follow the table as one player from now on. */
static void poker_fuzz_follow(poker_fuzz *fuzz)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (fuzz->observer != NULL)
        fuzz->rules->state_free(fuzz->observer);
    fuzz->observer = NULL;
    memset(&fuzz->observer_principal, 0, sizeof fuzz->observer_principal);
    ARB_ASSERT(arb_copy_name(fuzz->observer_principal.id, sizeof fuzz->observer_principal.id,
                             poker_fuzz_players[pick % POKER_FUZZ_COUNT(poker_fuzz_players)]) == 0);
    fuzz->observer_principal.role = pick >= 224 ? ARB_ROLE_ADMIN : ARB_ROLE_USER;
    json_t *view = fuzz->rules->view(fuzz->state, &fuzz->observer_principal);
    ARB_ASSERT(view != NULL);
    poker_fuzz_assert_canonical(fuzz, view);
    int rc = fuzz->rules->view_load(view, fuzz->next_seq - 1, &fuzz->observer_principal,
                                    &fuzz->observer);
    if (rc != 0)
        poker_fuzz_dump("view that does not load", view);
    ARB_ASSERT(rc == 0 && fuzz->observer != NULL);
    json_t *again = fuzz->rules->view(fuzz->observer, &fuzz->observer_principal);
    ARB_ASSERT(json_equal(view, again));
    json_decref(again);
    json_decref(view);
    if (fuzz->trace)
        fprintf(stderr, "follow %s\n", fuzz->observer_principal.id);
}

static void poker_fuzz_step(poker_fuzz *fuzz)
{
    uint8_t op = arb_fuzz_u8(&fuzz->in);
    switch (op % 20) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
        poker_fuzz_move_step(fuzz, (arb__poker_action)(op % 20));
        break;
    case 6: /* calls and checks again, so that hands reach their end */
        poker_fuzz_move_step(fuzz, ARB__POKER_CALL);
        break;
    case 7:
        poker_fuzz_move_step(fuzz, ARB__POKER_CHECK);
        break;
    case 8:
    case 9:
    case 10:
    case 11:
    case 12:
        poker_fuzz_seating_step(fuzz, (uint8_t)(op % 20 - 8));
        break;
    case 13:
        poker_fuzz_create_step(fuzz);
        break;
    case 14:
        if ((op / 20) % 2 == 0)
            poker_fuzz_unknown_step(fuzz);
        else
            poker_fuzz_timeout_step(fuzz);
        break;
    case 15:
        poker_fuzz_advance(fuzz);
        break;
    case 16:
        if (fuzz->trace)
            fprintf(stderr, "snapshot round trip\n");
        poker_fuzz_round_trip(fuzz);
        break;
    case 17:
        if (fuzz->trace)
            fprintf(stderr, "clone\n");
        poker_fuzz_clone(fuzz);
        break;
    case 18:
        poker_fuzz_follow(fuzz);
        break;
    default:
        poker_fuzz_seating_step(fuzz, 0); /* sit, so that tables fill */
        break;
    }
}

/* The log alone must replay to the same state. */
static void poker_fuzz_replay(poker_fuzz *fuzz)
{
    void *fresh = NULL;
    ARB_ASSERT(fuzz->rules->state_new(&fresh) == 0);
    for (size_t i = 0; i < fuzz->log_count; i++)
        ARB_ASSERT(fuzz->rules->evolve(fresh, &fuzz->log[i], NULL) == 0);
    poker_fuzz_check_state(fuzz, fresh);
    poker_fuzz_assert_same_state(fuzz, fresh, fuzz->state);
    fuzz->rules->state_free(fresh);
}

int arb_fuzz_poker_decide(const uint8_t *data, size_t size)
{
    poker_fuzz *fuzz = calloc(1, sizeof *fuzz);
    ARB_ASSERT(fuzz != NULL);
    arb_fuzz_reader_init(&fuzz->in, data, size);
    fuzz->rules = &arb_rules_poker;
    ARB_ASSERT(fuzz->rules->state_new(&fuzz->state) == 0);
    fuzz->now_ms = POKER_FUZZ_NOW_START_MS;
    fuzz->next_seq = 1;
    fuzz->rng = arb_fuzz_u64(&fuzz->in) | 1; /* xorshift needs a nonzero state */
    arb_buf_init(&fuzz->canon, ARB_SNAPSHOT_BYTES_MAX);
    fuzz->trace = getenv("ARB_FUZZ_TRACE") != NULL;

    for (size_t step = 0; step < POKER_FUZZ_STEPS_MAX && !arb_fuzz_reader_done(&fuzz->in); step++)
        poker_fuzz_step(fuzz);
    if (!fuzz->log_full)
        poker_fuzz_replay(fuzz);

    for (size_t i = 0; i < fuzz->log_count; i++)
        json_decref(fuzz->log[i].data);
    free(fuzz->log);
    if (fuzz->observer != NULL)
        fuzz->rules->state_free(fuzz->observer);
    fuzz->rules->state_free(fuzz->state);
    arb_buf_free(&fuzz->canon);
    free(fuzz);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_poker_decide(data, size);
}
#endif
