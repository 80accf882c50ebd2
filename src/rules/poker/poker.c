/*
 * poker.c - the table rule module (stream kind "table"): the rules table,
 * the state's life cycle, evolve (one function per event type), redact and
 * state_clone.
 *
 * Evolve re-checks every event against the state before applying it, with
 * the rules of play of poker_play.c, so a log that decide did not write is
 * refused with ARB_ECORRUPT. What evolve cannot re-derive it takes from
 * the event (the cards dealt); on a full state it still checks that the
 * deck is the one the seed derives and the commitment the one the seed
 * makes, so a replay of the log verifies the fairness of every hand. On a
 * partial state (a player's, poker_internal.h) hand_ended's revealed seed
 * is checked against the commitment and every card the player saw.
 *
 * Ownership: the state is one malloc'd struct; evolve borrows the event.
 */
#include <stdlib.h>
#include <string.h>

#include "rules/poker/poker.h"
#include "rules/poker/poker_internal.h"

bool arb__poker_sees_everything(const arb_principal *viewer)
{
    return viewer == NULL || viewer->role == ARB_ROLE_SYSTEM;
}

/* Reading event data. */

static bool data_seat(const arb__poker_state *state, const json_t *data, int *seat_out)
{
    int64_t seat;
    if (!arb__rules_data_int(data, "seat", 0, state->config.seat_count - 1, &seat))
        return false;
    *seat_out = (int)seat;
    return true;
}

static bool data_chips(const json_t *data, const char *key, int64_t *value_out)
{
    return arb__rules_data_int(data, key, 0, ARB_JSON_INT_MAX, value_out);
}

/* The seat of the event and its occupant, who must be player. */
static arb__poker_seat *data_player_seat(arb__poker_state *state, const json_t *data)
{
    int seat;
    const char *player;
    if (!data_seat(state, data, &seat) ||
        !arb__rules_data_string(data, "player", 1, ARB_CLIENT_ID_BYTES_MAX, &player))
        return NULL;
    arb__poker_seat *s = &state->seats[seat];
    return s->occupied && strcmp(s->player, player) == 0 ? s : NULL;
}

/* Table and seating. */

static int evolve_table_created(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    arb__poker_config c = {0};
    const char *table;
    int64_t seats;
    if (state->created || json_object_size(data) != 9 ||
        !arb__rules_data_string(data, "table", 1, ARB_POKER_TABLE_NAME_BYTES_MAX, &table) ||
        !arb__rules_data_int(data, "seats", ARB_POKER_SEATS_MIN, ARB_POKER_SEATS_MAX, &seats) ||
        !arb__rules_data_int(data, "small_blind", 1, ARB_POKER_CHIPS_MAX, &c.small_blind) ||
        !arb__rules_data_int(data, "big_blind", c.small_blind, ARB_POKER_CHIPS_MAX, &c.big_blind) ||
        !arb__rules_data_int(data, "ante", 0, ARB_POKER_CHIPS_MAX, &c.ante) ||
        !arb__rules_data_int(data, "buy_in_min", 1, ARB_POKER_CHIPS_MAX, &c.buy_in_min) ||
        !arb__rules_data_int(data, "buy_in_max", c.buy_in_min, ARB_POKER_CHIPS_MAX,
                             &c.buy_in_max) ||
        !arb__rules_data_int(data, "turn_s", 1, ARB_POKER_TURN_S_MAX, &c.turn_s) ||
        !arb__rules_data_int(data, "grace_s", 0, ARB_POKER_GRACE_S_MAX, &c.grace_s))
        return ARB_ECORRUPT;
    memcpy(c.table, table, strlen(table) + 1);
    c.seat_count = (int)seats;
    state->config = c;
    state->created = true;
    state->button = -1;
    state->to_act = -1;
    state->last_aggressor = -1;
    state->clock_seat = -1;
    return 0;
}

static int evolve_sat(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    int seat;
    const char *player;
    int64_t buy_in;
    if (!state->created || json_object_size(data) != 3 || !data_seat(state, data, &seat) ||
        !arb__rules_data_string(data, "player", 1, ARB_CLIENT_ID_BYTES_MAX, &player) ||
        !arb__rules_data_int(data, "buy_in", state->config.buy_in_min, state->config.buy_in_max,
                             &buy_in))
        return ARB_ECORRUPT;
    arb__poker_seat *s = &state->seats[seat];
    if (s->occupied || s->in_hand || arb__poker_seat_of(state, player) >= 0 ||
        buy_in > ARB_JSON_INT_MAX - state->chips_in)
        return ARB_ECORRUPT;
    memset(s, 0, sizeof *s);
    s->occupied = true;
    memcpy(s->player, player, strlen(player) + 1);
    s->stack = buy_in;
    s->version = event->seq;
    state->chips_in += buy_in;
    return 0;
}

static int evolve_topped_up(arb__poker_state *state, const arb_event *event)
{
    int64_t amount;
    arb__poker_seat *s = data_player_seat(state, event->data);
    if (s == NULL || json_object_size(event->data) != 3 ||
        !arb__rules_data_int(event->data, "amount", 1, ARB_POKER_CHIPS_MAX, &amount) ||
        (s->in_hand && state->hand_active) || amount > state->config.buy_in_max - s->stack ||
        amount > ARB_JSON_INT_MAX - state->chips_in)
        return ARB_ECORRUPT;
    s->stack += amount;
    s->version = event->seq;
    state->chips_in += amount;
    return 0;
}

static int evolve_sitting(arb__poker_state *state, const arb_event *event, bool out)
{
    arb__poker_seat *s = data_player_seat(state, event->data);
    if (s == NULL || json_object_size(event->data) != 2 || s->sitting_out == out)
        return ARB_ECORRUPT;
    s->sitting_out = out;
    if (!out)
        s->timeouts = 0; /* back at the table: the count starts over */
    s->version = event->seq;
    return 0;
}

static int evolve_left(arb__poker_state *state, const arb_event *event)
{
    int64_t chips;
    arb__poker_seat *s = data_player_seat(state, event->data);
    if (s == NULL || json_object_size(event->data) != 3 ||
        !data_chips(event->data, "chips", &chips) || chips != s->stack ||
        (state->hand_active && arb__poker_is_live(s)))
        return ARB_ECORRUPT;
    state->chips_out += chips;
    s->occupied = false;
    s->player[0] = '\0';
    s->stack = 0;
    s->sitting_out = false;
    s->away_since = 0;
    s->version = event->seq;
    return 0;
}

/* The hand's start. */

/* hand_started's dealt entries: exactly the active seats in dealing order,
 * each {seat, player, cards} with the cards null only where a partial state
 * may not know them. Fills cards_known/cards of a scratch seat array. */
static bool data_dealt(const arb__poker_state *state, const json_t *dealt, int button,
                       arb__poker_seat seats[ARB_POKER_SEATS_MAX], int *count_out)
{
    int count = 0;
    for (int i = 0, seat = button; i < state->config.seat_count; i++) {
        seat = (seat + 1) % state->config.seat_count;
        if (!arb__poker_is_active(&state->seats[seat]))
            continue;
        const json_t *entry = json_array_get(dealt, (size_t)count);
        int index;
        const char *player;
        if (!json_is_object(entry) || json_object_size(entry) != 3 ||
            !data_seat(state, entry, &index) || index != seat ||
            !arb__rules_data_string(entry, "player", 1, ARB_CLIENT_ID_BYTES_MAX, &player) ||
            strcmp(player, state->seats[seat].player) != 0)
            return false;
        const json_t *cards = json_object_get(entry, "cards");
        seats[seat].in_hand = true;
        if (json_is_null(cards)) {
            if (!state->partial || strcmp(player, state->viewer) == 0)
                return false;
        } else if (arb__poker_json_cards(cards, ARB__POKER_HOLE_CARDS, seats[seat].cards)) {
            seats[seat].cards_known = true;
        } else {
            return false;
        }
        count++;
    }
    *count_out = count;
    return json_is_array(dealt) && json_array_size(dealt) == (size_t)count && count >= 2;
}

/* A 32-byte value as 64 hex digits at key. */
static bool data_hex(const json_t *data, const char *key, uint8_t *bytes, size_t len)
{
    const char *hex;
    return arb__rules_data_string(data, key, 64, 64, &hex) && arb__poker_unhex(hex, bytes, len);
}

/* hand_started's "entropy": null when no player contributed, else the
 * mix of their contributions; the hand's deck is mixed with it. */
static bool data_entropy(arb__poker_state *next, const json_t *data)
{
    const json_t *entropy = json_object_get(data, "entropy");
    if (entropy == NULL || (next->entropy_count == 0) != json_is_null(entropy))
        return false;
    next->hand_entropy_used = next->entropy_count > 0;
    memset(next->hand_entropy, 0, sizeof next->hand_entropy);
    if (!next->hand_entropy_used)
        return true;
    return data_hex(data, "entropy", next->hand_entropy, sizeof next->hand_entropy) &&
           memcmp(next->hand_entropy, next->entropy, sizeof next->entropy) == 0;
}

/* The server's secret part of hand_started: the seed and its deck, which
 * must be the seed's deck, make the commitment, and deal the hole cards. */
static bool data_secret(arb__poker_state *state, const arb_event *event, uint64_t hand,
                        const arb__poker_seat seats[ARB_POKER_SEATS_MAX], int count)
{
    const char *seed_hex, *next_hex;
    uint8_t seed[ARB_POKER_SEED_BYTES], next_seed[ARB_POKER_SEED_BYTES],
        mixed[ARB_POKER_SEED_BYTES];
    uint8_t deck[ARB_POKER_DECK_CARDS], derived[ARB_POKER_DECK_CARDS];
    uint8_t commitment[ARB__POKER_COMMITMENT_BYTES], next_commitment[ARB__POKER_COMMITMENT_BYTES];
    if (!arb__rules_data_string(event->data, "seed", 64, 64, &seed_hex) ||
        !arb__poker_unhex(seed_hex, seed, sizeof seed) ||
        !arb__rules_data_string(event->data, "next_seed", 64, 64, &next_hex) ||
        !arb__poker_unhex(next_hex, next_seed, sizeof next_seed) ||
        !arb__poker_json_cards(json_object_get(event->data, "deck"), ARB_POKER_DECK_CARDS, deck))
        return false;
    /* The seed committed at the last hand's start, if one was. */
    if (state->next_seed_known && memcmp(seed, state->next_seed, sizeof seed) != 0)
        return false;
    arb__poker_deck_seed(seed, state->hand_entropy_used ? state->hand_entropy : NULL, mixed);
    arb__poker_deck_from_seed(mixed, derived);
    arb__poker_commitment(event->stream, hand, seed, commitment);
    arb__poker_commitment(event->stream, hand + 1, next_seed, next_commitment);
    if (memcmp(deck, derived, sizeof deck) != 0 ||
        memcmp(commitment, state->commitment, sizeof commitment) != 0 ||
        memcmp(next_commitment, state->next_commitment, sizeof next_commitment) != 0)
        return false;
    memcpy(state->next_seed, next_seed, sizeof next_seed);
    state->next_seed_known = true;
    int order[ARB_POKER_SEATS_MAX], k = 0;
    for (int i = 0, seat = state->button; i < state->config.seat_count; i++) {
        seat = (seat + 1) % state->config.seat_count;
        if (seats[seat].in_hand)
            order[k++] = seat;
    }
    ARB_ASSERT(k == count);
    for (int i = 0; i < count; i++) {
        const arb__poker_seat *s = &seats[order[i]];
        if (!s->cards_known || s->cards[0] != deck[i] || s->cards[1] != deck[i + count])
            return false;
    }
    memcpy(state->seed, seed, sizeof seed);
    memcpy(state->deck, deck, sizeof deck);
    state->seed_known = state->deck_known = true;
    return true;
}

static int evolve_hand_started(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    int64_t hand, button;
    const char *commitment_hex;
    arb__poker_seat dealt[ARB_POKER_SEATS_MAX] = {0};
    int count;
    size_t fields = state->partial ? 6 : 9;
    if (!state->created || state->hand_active || json_object_size(data) != fields ||
        !arb__rules_data_int(data, "hand", 1, ARB_JSON_INT_MAX, &hand) ||
        (uint64_t)hand != state->hands + 1 ||
        !arb__rules_data_int(data, "button", 0, state->config.seat_count - 1, &button) ||
        button != arb__poker_next_seat(state, state->button, arb__poker_is_active) ||
        !arb__rules_data_string(data, "commitment", 64, 64, &commitment_hex) ||
        !data_dealt(state, json_object_get(data, "dealt"), (int)button, dealt, &count))
        return ARB_ECORRUPT;
    uint8_t commitment[ARB__POKER_COMMITMENT_BYTES];
    if (!arb__poker_unhex(commitment_hex, commitment, sizeof commitment))
        return ARB_ECORRUPT;
    arb__poker_state next = *state;
    /* The commitment published at the last hand's start is kept, and the
     * entropy mixed in is exactly the players' contributions since. */
    if ((state->next_committed &&
         memcmp(commitment, state->next_commitment, sizeof commitment) != 0) ||
        !data_entropy(&next, data) ||
        !data_hex(data, "next_commitment", next.next_commitment, sizeof next.next_commitment))
        return ARB_ECORRUPT;
    memcpy(next.commitment, commitment, sizeof commitment);
    next.button = (int)button;
    next.deck_known = next.seed_known = next.seed_revealed = false;
    if (!state->partial && !data_secret(&next, event, (uint64_t)hand, dealt, count))
        return ARB_ECORRUPT;
    for (int i = 0; i < next.config.seat_count; i++) {
        arb__poker_seat *s = &next.seats[i];
        s->in_hand = dealt[i].in_hand;
        s->cards_known = dealt[i].cards_known;
        memcpy(s->cards, dealt[i].cards, sizeof s->cards);
        s->folded = s->all_in = s->acted = s->shown = s->mucked = false;
        s->may_raise = s->in_hand;
        s->bet = s->committed = 0;
        if (s->in_hand)
            s->version = event->seq;
    }
    next.next_committed = true;
    next.entropy_count = 0;
    memset(next.entropy, 0, sizeof next.entropy);
    for (int i = 0; i < next.config.seat_count; i++)
        next.seats[i].contributed = false;
    next.hands = (uint64_t)hand;
    next.hand_active = true;
    next.posted = 0;
    next.antes_posted = 0;
    next.dealt_count = count;
    next.small_seat =
        count == 2 ? next.button : arb__poker_next_seat(&next, next.button, arb__poker_is_dealt);
    next.big_seat = arb__poker_next_seat(&next, next.small_seat, arb__poker_is_dealt);
    next.street = ARB__POKER_PREFLOP;
    next.to_act = next.last_aggressor = next.clock_seat = -1;
    next.pot = next.awarded = next.current_bet = 0;
    next.min_raise = next.config.big_blind;
    next.board_count = 0;
    *state = next;
    return 0;
}

static int evolve_posted(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    int seat;
    const char *blind;
    int64_t amount;
    if (!state->hand_active || json_object_size(data) != 3 || !data_seat(state, data, &seat) ||
        !arb__rules_data_string(data, "blind", 1, 5, &blind) ||
        !data_chips(data, "amount", &amount))
        return ARB_ECORRUPT;
    arb__poker_seat *s = &state->seats[seat];
    int antes_due = state->config.ante > 0 ? state->dealt_count : 0;
    int64_t due;
    if (strcmp(blind, "ante") == 0) {
        if (state->posted != 0 || state->antes_posted >= antes_due || !s->in_hand ||
            s->committed != 0)
            return ARB_ECORRUPT;
        due = state->config.ante;
    } else if (strcmp(blind, "small") == 0) {
        if (state->posted != 0 || state->antes_posted != antes_due || seat != state->small_seat)
            return ARB_ECORRUPT;
        due = state->config.small_blind;
    } else if (strcmp(blind, "big") == 0) {
        if (state->posted != 1 || seat != state->big_seat)
            return ARB_ECORRUPT;
        due = state->config.big_blind;
    } else {
        return ARB_ECORRUPT;
    }
    if (amount != (due < s->stack ? due : s->stack))
        return ARB_ECORRUPT;
    s->stack -= amount;
    s->committed += amount;
    s->all_in = s->stack == 0;
    s->version = event->seq;
    if (blind[0] == 'a') {
        state->pot += amount;
        state->antes_posted++;
        return 0;
    }
    s->bet = amount;
    state->posted++;
    if (state->posted == 2) {
        /* The bet to call is the big blind, even when the big blind is short. */
        state->current_bet = state->config.big_blind;
        arb__poker_update_turn(state, state->big_seat);
    }
    return 0;
}

/* Betting. */

static int evolve_acted(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    int seat;
    const char *name;
    arb__poker_action action;
    int64_t amount, to;
    arb__poker_move move;
    if (!state->hand_active || json_object_size(data) != 4 || !data_seat(state, data, &seat) ||
        seat != state->to_act ||
        !arb__rules_data_string(data, "action", 1, ARB_ACTION_BYTES_MAX, &name) ||
        !arb__poker_action_from_name(name, &action) || !data_chips(data, "amount", &amount) ||
        !data_chips(data, "to", &to))
        return ARB_ECORRUPT;
    bool sized = action == ARB__POKER_BET || action == ARB__POKER_RAISE;
    if (arb__poker_move_resolve(state, seat, action, sized ? to : 0, &move) != 0 ||
        move.chips != amount || move.to != to)
        return ARB_ECORRUPT;
    arb__poker_move_apply(state, seat, action, &move);
    state->seats[seat].version = event->seq;
    /* A move of the player's own ends a run of timeouts; one the clock
     * made (after timed_out) does not. */
    if (state->clock_seat != seat)
        state->seats[seat].timeouts = 0;
    state->clock_seat = -1;
    return 0;
}

/* went_away {seat, player} / came_back {seat, player}: the player's last
 * session ended (its seat is held for grace_s), or a session began again. */
static int evolve_presence(arb__poker_state *state, const arb_event *event, bool away)
{
    arb__poker_seat *s = data_player_seat(state, event->data);
    if (s == NULL || json_object_size(event->data) != 2 || (s->away_since != 0) == away ||
        (away && event->applied_at_ms <= 0))
        return ARB_ECORRUPT;
    s->away_since = away ? event->applied_at_ms : 0;
    s->version = event->seq;
    return 0;
}

static int evolve_went_away(arb__poker_state *state, const arb_event *event)
{
    return evolve_presence(state, event, true);
}

static int evolve_came_back(arb__poker_state *state, const arb_event *event)
{
    return evolve_presence(state, event, false);
}

/* entropy_added {seat, player, value}: a seated player's contribution to
 * the next hand's deck, once per hand, after that hand's seed was
 * committed. */
static int evolve_entropy_added(arb__poker_state *state, const arb_event *event)
{
    arb__poker_seat *s = data_player_seat(state, event->data);
    uint8_t value[ARB_POKER_SEED_BYTES];
    if (s == NULL || json_object_size(event->data) != 3 || !state->next_committed ||
        s->contributed || !data_hex(event->data, "value", value, sizeof value) ||
        state->entropy_count >= INT32_MAX)
        return ARB_ECORRUPT;
    arb__poker_entropy_mix(state->entropy, value);
    state->entropy_count++;
    s->contributed = true;
    s->version = event->seq;
    return 0;
}

/* timed_out {hand, seat}: the turn clock plays for the seat to act; its
 * acted event follows. */
static int evolve_timed_out(arb__poker_state *state, const arb_event *event)
{
    int seat;
    int64_t hand;
    if (!state->hand_active || json_object_size(event->data) != 2 ||
        !data_seat(state, event->data, &seat) || seat != state->to_act || state->clock_seat != -1 ||
        !arb__rules_data_int(event->data, "hand", 1, ARB_JSON_INT_MAX, &hand) ||
        (uint64_t)hand != state->hands)
        return ARB_ECORRUPT;
    state->clock_seat = seat;
    if (state->seats[seat].timeouts < ARB_POKER_TIMEOUTS_SIT_OUT)
        state->seats[seat].timeouts++; /* saturates: enough to sit it out */
    state->seats[seat].version = event->seq;
    return 0;
}

static int evolve_bet_returned(arb__poker_state *state, const arb_event *event)
{
    int seat, top;
    int64_t amount;
    if (!state->hand_active || json_object_size(event->data) != 2 ||
        !data_seat(state, event->data, &seat) || !data_chips(event->data, "amount", &amount) ||
        !arb__poker_round_complete(state) || amount == 0 ||
        arb__poker_uncalled(state, &top) != amount || top != seat)
        return ARB_ECORRUPT;
    arb__poker_seat *s = &state->seats[seat];
    s->bet -= amount;
    s->committed -= amount;
    s->stack += amount;
    s->all_in = false;
    s->version = event->seq;
    return 0;
}

static int evolve_street_dealt(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    const char *street;
    int top;
    if (!state->hand_active || state->street == ARB__POKER_RIVER || json_object_size(data) != 2 ||
        !arb__rules_data_string(data, "street", 1, 8, &street) ||
        strcmp(street, arb__poker_street_name(state->street + 1)) != 0 ||
        !arb__poker_round_complete(state) || arb__poker_count(state, arb__poker_is_live) < 2 ||
        arb__poker_uncalled(state, &top) != 0)
        return ARB_ECORRUPT;
    size_t count = state->street == ARB__POKER_PREFLOP ? 3 : 1;
    uint8_t cards[3];
    if (!arb__poker_json_cards(json_object_get(data, "cards"), count, cards))
        return ARB_ECORRUPT;
    for (size_t i = 0; i < count; i++) {
        int index = state->board_count + (int)i;
        for (int j = 0; j < state->board_count; j++)
            if (state->board[j] == cards[i])
                return ARB_ECORRUPT;
        if (state->deck_known &&
            state->deck[arb__poker_board_index(state->dealt_count, index)] != cards[i])
            return ARB_ECORRUPT;
    }
    memcpy(state->board + state->board_count, cards, count);
    state->board_count += (int)count;
    state->street++;
    arb__poker_collect_bets(state);
    arb__poker_update_turn(state, state->button);
    return 0;
}

/* Showdown. */

/* Whether the betting is over for good: the river's round is complete, or
 * at most one seat could still bet. */
static bool betting_closed(const arb__poker_state *state)
{
    return state->hand_active && arb__poker_round_complete(state) &&
           (state->street == ARB__POKER_RIVER || arb__poker_count(state, arb__poker_is_open) <= 1);
}

static int evolve_cards_shown(arb__poker_state *state, const arb_event *event)
{
    int seat;
    uint8_t cards[ARB__POKER_HOLE_CARDS];
    if (json_object_size(event->data) != 2 || !data_seat(state, event->data, &seat) ||
        !arb__poker_json_cards(json_object_get(event->data, "cards"), 2, cards) ||
        !betting_closed(state) || arb__poker_count(state, arb__poker_is_live) < 2)
        return ARB_ECORRUPT;
    arb__poker_seat *s = &state->seats[seat];
    if (!arb__poker_is_live(s) || s->shown || s->mucked ||
        (s->cards_known && memcmp(s->cards, cards, sizeof cards) != 0))
        return ARB_ECORRUPT;
    memcpy(s->cards, cards, sizeof cards);
    s->cards_known = s->shown = true;
    s->version = event->seq;
    return 0;
}

static int evolve_mucked(arb__poker_state *state, const arb_event *event)
{
    int seat;
    if (json_object_size(event->data) != 1 || !data_seat(state, event->data, &seat) ||
        !betting_closed(state) || state->street != ARB__POKER_RIVER)
        return ARB_ECORRUPT;
    arb__poker_seat *s = &state->seats[seat];
    if (!arb__poker_is_live(s) || s->shown || s->mucked)
        return ARB_ECORRUPT;
    s->mucked = true;
    s->version = event->seq;
    return 0;
}

/* A pot: {pot, amount, winners: [{seat, amount}]} paid to live seats, the
 * shares summing to amount, out of the pot (bets collected first). */
static int evolve_pot_awarded(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    int64_t index, amount, total = 0;
    const json_t *winners = json_object_get(data, "winners");
    int top;
    if (json_object_size(data) != 3 ||
        !arb__rules_data_int(data, "pot", 0, ARB_POKER_SEATS_MAX - 1, &index) ||
        !arb__rules_data_int(data, "amount", 1, ARB_JSON_INT_MAX, &amount) ||
        !json_is_array(winners) || json_array_size(winners) == 0 ||
        json_array_size(winners) > ARB_POKER_SEATS_MAX ||
        !(betting_closed(state) || arb__poker_count(state, arb__poker_is_live) == 1) ||
        arb__poker_uncalled(state, &top) != 0)
        return ARB_ECORRUPT;
    int64_t shares[ARB_POKER_SEATS_MAX] = {0};
    for (size_t i = 0; i < json_array_size(winners); i++) {
        const json_t *winner = json_array_get(winners, i);
        int seat;
        int64_t share;
        if (!json_is_object(winner) || json_object_size(winner) != 2 ||
            !data_seat(state, winner, &seat) ||
            !arb__rules_data_int(winner, "amount", 1, amount, &share) ||
            !arb__poker_is_live(&state->seats[seat]) || state->seats[seat].mucked ||
            shares[seat] != 0)
            return ARB_ECORRUPT;
        shares[seat] = share;
        total += share;
    }
    int64_t bets = 0;
    for (int i = 0; i < state->config.seat_count; i++)
        bets += state->seats[i].bet;
    if (total != amount || amount > state->pot + bets)
        return ARB_ECORRUPT;
    /* Keep the round's state (whether betting was closed) for the next
     * pots: only the chips move. */
    for (int i = 0; i < state->config.seat_count; i++) {
        state->pot += state->seats[i].bet;
        state->seats[i].bet = 0;
        state->seats[i].stack += shares[i];
        if (shares[i] != 0)
            state->seats[i].version = event->seq;
    }
    state->current_bet = 0;
    state->pot -= amount;
    state->awarded += amount;
    return 0;
}

static int evolve_hand_ended(arb__poker_state *state, const arb_event *event);

typedef struct evolve_entry {
    const char *type;
    int (*evolve)(arb__poker_state *state, const arb_event *event);
} evolve_entry;

static int evolve_sat_out(arb__poker_state *state, const arb_event *event)
{
    return evolve_sitting(state, event, true);
}

static int evolve_sat_in(arb__poker_state *state, const arb_event *event)
{
    return evolve_sitting(state, event, false);
}

/* The hot event types first: the dispatch is a linear scan. */
static const evolve_entry evolve_table[] = {
    {"acted", evolve_acted},
    {"posted", evolve_posted},
    {"timed_out", evolve_timed_out},
    {"entropy_added", evolve_entropy_added},
    {"went_away", evolve_went_away},
    {"came_back", evolve_came_back},
    {"street_dealt", evolve_street_dealt},
    {"bet_returned", evolve_bet_returned},
    {"cards_shown", evolve_cards_shown},
    {"mucked", evolve_mucked},
    {"pot_awarded", evolve_pot_awarded},
    {"hand_started", evolve_hand_started},
    {"hand_ended", evolve_hand_ended},
    {"sat", evolve_sat},
    {"left", evolve_left},
    {"topped_up", evolve_topped_up},
    {"sat_out", evolve_sat_out},
    {"sat_in", evolve_sat_in},
    {"table_created", evolve_table_created},
};

/* hand_ended {hand, seed}: every pot paid; the seed is revealed. A partial
 * state checks it: it makes the commitment, and its deck deals every card
 * the player saw (their own, the board, the shown hands). */
static int evolve_hand_ended(arb__poker_state *state, const arb_event *event)
{
    const json_t *data = event->data;
    int64_t hand;
    const char *seed_hex;
    uint8_t seed[ARB_POKER_SEED_BYTES];
    if (!state->hand_active || json_object_size(data) != 2 ||
        !arb__rules_data_int(data, "hand", 1, ARB_JSON_INT_MAX, &hand) ||
        (uint64_t)hand != state->hands ||
        !arb__rules_data_string(data, "seed", 64, 64, &seed_hex) ||
        !arb__poker_unhex(seed_hex, seed, sizeof seed) || state->pot != 0)
        return ARB_ECORRUPT;
    for (int i = 0; i < state->config.seat_count; i++)
        if (state->seats[i].bet != 0)
            return ARB_ECORRUPT;
    if (state->seed_known && memcmp(seed, state->seed, sizeof seed) != 0)
        return ARB_ECORRUPT;
    if (!state->seed_known) {
        uint8_t commitment[ARB__POKER_COMMITMENT_BYTES], deck[ARB_POKER_DECK_CARDS];
        arb__poker_commitment(event->stream, state->hands, seed, commitment);
        if (memcmp(commitment, state->commitment, sizeof commitment) != 0)
            return ARB_ECORRUPT;
        uint8_t mixed[ARB_POKER_SEED_BYTES];
        arb__poker_deck_seed(seed, state->hand_entropy_used ? state->hand_entropy : NULL, mixed);
        arb__poker_deck_from_seed(mixed, deck);
        int order[ARB_POKER_SEATS_MAX];
        int count = arb__poker_deal_order(state, order);
        for (int k = 0; k < count; k++) {
            const arb__poker_seat *s = &state->seats[order[k]];
            if (s->cards_known && (s->cards[0] != deck[k] || s->cards[1] != deck[k + count]))
                return ARB_ECORRUPT;
        }
        for (int b = 0; b < state->board_count; b++)
            if (state->board[b] != deck[arb__poker_board_index(state->dealt_count, b)])
                return ARB_ECORRUPT;
    }
    memcpy(state->seed, seed, sizeof seed);
    state->seed_known = state->seed_revealed = true;
    state->hand_active = false;
    state->to_act = -1;
    for (int i = 0; i < state->config.seat_count; i++) {
        arb__poker_seat *s = &state->seats[i];
        if (s->in_hand)
            s->version = event->seq;
        s->in_hand = s->folded = s->all_in = s->acted = s->may_raise = false;
        s->committed = 0;
    }
    return 0;
}

/* The turn clock after an event: a seat that has just been given the turn
 * (to_act changed; it always passes through -1 between two turns of one
 * seat) gets turn_s from the event's time. */
static void update_clock(arb__poker_state *state, int to_act_before, const arb_event *event)
{
    if (state->to_act < 0) {
        state->turn_seq = 0;
        state->turn_deadline_ms = 0;
    } else if (state->to_act != to_act_before) {
        state->turn_seq = event->seq;
        state->turn_deadline_ms = event->applied_at_ms + state->config.turn_s * 1000;
    }
}

int arb__poker_evolve(arb__poker_state *state, const arb_event *event)
{
    ARB_ASSERT(state != NULL && event != NULL);
    if (!json_is_object(event->data) || event->seq == 0 || event->seq > (uint64_t)ARB_JSON_INT_MAX)
        return ARB_ECORRUPT;
    for (size_t i = 0; i < sizeof evolve_table / sizeof evolve_table[0]; i++) {
        if (strcmp(evolve_table[i].type, event->type) != 0)
            continue;
        int to_act_before = state->to_act;
        int rc = evolve_table[i].evolve(state, event);
        if (rc == 0)
            update_clock(state, to_act_before, event);
        return rc;
    }
    return ARB_ECORRUPT;
}

void arb__poker_report_grace(const arb__poker_state *state, int seat, const arb_timer_sink *timers)
{
    const arb__poker_seat *s = &state->seats[seat];
    if (timers == NULL || timers->add == NULL || state->partial || s->away_since == 0)
        return;
    json_t *args = json_pack("{s:i, s:s, s:I}", "seat", seat, "player", s->player, "since",
                             (json_int_t)s->away_since);
    ARB_ASSERT(args != NULL); /* a lost deadline would hold the seat for ever */
    timers->add(timers->user, s->away_since + state->config.grace_s * 1000, "grace_over", args);
    json_decref(args);
}

void arb__poker_report_turn(const arb__poker_state *state, const arb_timer_sink *timers)
{
    if (timers == NULL || timers->add == NULL || !state->hand_active || state->to_act < 0 ||
        state->partial)
        return;
    json_t *args = json_pack("{s:I, s:i, s:I}", "hand", (json_int_t)state->hands, "seat",
                             state->to_act, "turn", (json_int_t)state->turn_seq);
    /* Out of memory here would lose a deadline; stopping is the honest answer. */
    ARB_ASSERT(args != NULL);
    timers->add(timers->user, state->turn_deadline_ms, "timeout", args);
    if (arb__poker_is_bot(state->seats[state->to_act].player)) {
        int64_t began_ms = state->turn_deadline_ms - state->config.turn_s * 1000;
        timers->add(timers->user, began_ms + ARB_POKER_BOT_DELAY_MS, "bot_move", args);
    }
    json_decref(args);
}

/* A turn's timer (timeout, bot_move) has work only while that turn runs; a
 * grace only while its player is still away since then. */
static bool poker_timer_due(const void *state_void, const char *action, const json_t *args)
{
    const arb__poker_state *state = state_void;
    if (strcmp(action, "grace_over") == 0) {
        int64_t seat, since;
        const char *player = json_string_value(json_object_get(args, "player"));
        return !arb__rules_data_int(args, "seat", 0, ARB_POKER_SEATS_MAX - 1, &seat) ||
               !arb__rules_data_int(args, "since", 1, ARB_JSON_INT_MAX, &since) || player == NULL ||
               (state->seats[seat].occupied && strcmp(state->seats[seat].player, player) == 0 &&
                state->seats[seat].away_since == since);
    }
    int64_t hand, seat, turn;
    return !arb__rules_data_int(args, "hand", 1, ARB_JSON_INT_MAX, &hand) ||
           !arb__rules_data_int(args, "seat", 0, ARB_POKER_SEATS_MAX - 1, &seat) ||
           !arb__rules_data_int(args, "turn", 1, ARB_JSON_INT_MAX, &turn) ||
           (state->hand_active && (uint64_t)hand == state->hands && state->to_act == seat &&
            (uint64_t)turn == state->turn_seq);
}

/* A seated player's going offline (when present) or coming back (when
 * away) is worth a presence proposal. */
static bool poker_presence(const void *state_void, const char *client_id, bool online)
{
    const arb__poker_state *state = state_void;
    int seat = arb__poker_seat_of(state, client_id);
    return seat >= 0 && (state->seats[seat].away_since != 0) == online;
}

/* Evolve on a copy, so that a refused event leaves the state as it was; a
 * new turn reports its deadline. */
static int poker_evolve(void *state, const arb_event *event, const arb_timer_sink *timers)
{
    arb__poker_state next = *(const arb__poker_state *)state;
    int rc = arb__poker_evolve(&next, event);
    if (rc != 0)
        return rc;
    *(arb__poker_state *)state = next;
    if (next.to_act >= 0 && next.turn_seq == event->seq)
        arb__poker_report_turn(&next, timers);
    if (strcmp(event->type, "went_away") == 0)
        arb__poker_report_grace(
            &next, (int)json_integer_value(json_object_get(event->data, "seat")), timers);
    return 0;
}

static int poker_state_new(void **state_out)
{
    arb__poker_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return ARB_ENOMEM;
    state->button = state->to_act = state->last_aggressor = state->clock_seat = -1;
    *state_out = state;
    return 0;
}

static void poker_state_free(void *state)
{
    free(state);
}

static int poker_state_clone(const void *state, void **state_out)
{
    arb__poker_state *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return ARB_ENOMEM;
    memcpy(copy, state, sizeof *copy);
    *state_out = copy;
    return 0;
}

/* docs/poker.md, "Visibility": hand_started loses the seed and the deck,
 * and every hole card but the viewer's own. Everything else is public
 * (hand_ended reveals the seed, cards_shown the hands shown). When the copy
 * cannot be made (out of memory) the event is withheld from this viewer
 * rather than shown whole. */
static json_t *poker_redact(const arb_event *event, const arb_principal *viewer)
{
    ARB_ASSERT(event->data != NULL);
    if (arb__poker_sees_everything(viewer) || strcmp(event->type, "hand_started") != 0)
        return json_incref(event->data);
    json_t *redacted = json_deep_copy(event->data);
    if (redacted == NULL)
        return NULL;
    json_object_del(redacted, "seed");
    json_object_del(redacted, "deck");
    json_object_del(redacted, "next_seed");
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get(redacted, "dealt"), i, entry) {
        const char *player = json_string_value(json_object_get(entry, "player"));
        if (player == NULL || strcmp(player, viewer->id) != 0)
            json_object_set_new(entry, "cards", json_null());
    }
    return redacted;
}

const arb_rules arb_rules_poker = {
    .kind = "table",
    .state_new = poker_state_new,
    .state_free = poker_state_free,
    .decide = arb__poker_decide,
    .evolve = poker_evolve,
    .view = arb__poker_view,
    .redact = poker_redact,
    .snapshot_save = arb__poker_snapshot_save,
    .snapshot_load = arb__poker_snapshot_load,
    .view_load = arb__poker_view_load,
    .state_clone = poker_state_clone,
    .check = arb__poker_check,
    .timer_due = poker_timer_due,
    .presence = poker_presence,
    .proof_event = "hand_started",
    .proof_name = "fair_hands",
};
