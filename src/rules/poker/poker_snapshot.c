/*
 * poker_snapshot.c - the table's state as JSON (view and snapshot) and the
 * way back (snapshot load, and view load for a client).
 *
 * Shape (docs/poker.md, "State"): one object with the table's
 * configuration ("table", null before create_table), the chip counters,
 * the current or last hand's fields (street, board, pot, bets to call, the
 * seat to act, the commitment, the revealed seed) and "seats", an array of
 * one object per seat. A snapshot adds "format" and the server's secrets:
 * "deck", the seed before it is revealed, and every hole card. Nothing is
 * left out of a snapshot, so save(load(save(s))) == save(s).
 *
 * A viewer that is not the system sees the view: no deck, no unrevealed
 * seed, and a seat's cards only when they are the viewer's own or were
 * shown (docs/poker.md, "Visibility").
 *
 * load trusts nothing: every field is checked (unknown ones included), no
 * version may be later than the snapshot's seq, then check() runs. view_load
 * is the same load with the secrets absent: a partial state
 * (poker_internal.h) for a player or a spectator.
 */
#include <stdlib.h>
#include <string.h>

#include "rules/poker/poker_internal.h"

#define SEAT_FIELDS 17
#define VIEW_FIELDS 30

/* State to JSON. */

static json_t *hex_or_null(const uint8_t *bytes, size_t len, bool known)
{
    char hex[ARB__POKER_HEX_SIZE];
    ARB_ASSERT(len * 2 + 1 <= sizeof hex);
    if (!known)
        return json_null();
    arb__poker_hex(bytes, len, hex);
    return json_string(hex);
}

static json_t *config_json(const arb__poker_state *state)
{
    const arb__poker_config *c = &state->config;
    if (!state->created)
        return json_null();
    return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "table", c->table, "seats",
                     c->seat_count, "small_blind", (json_int_t)c->small_blind, "big_blind",
                     (json_int_t)c->big_blind, "ante", (json_int_t)c->ante, "buy_in_min",
                     (json_int_t)c->buy_in_min, "buy_in_max", (json_int_t)c->buy_in_max, "turn_s",
                     (json_int_t)c->turn_s, "grace_s", (json_int_t)c->grace_s);
}

static json_t *seat_json(const arb__poker_seat *s, bool cards_visible)
{
    json_t *cards =
        cards_visible && s->cards_known ? arb__poker_cards_json(s->cards, 2) : json_null();
    return json_pack(
        "{s:o, s:I, s:b, s:I, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:I, s:I, s:o, s:i, s:b, s:I}",
        "player", s->occupied ? json_string(s->player) : json_null(), "stack", (json_int_t)s->stack,
        "sitting_out", s->sitting_out, "version", (json_int_t)s->version, "in_hand", s->in_hand,
        "folded", s->folded, "all_in", s->all_in, "acted", s->acted, "may_raise", s->may_raise,
        "shown", s->shown, "mucked", s->mucked, "bet", (json_int_t)s->bet, "committed",
        (json_int_t)s->committed, "cards", cards, "timeouts", s->timeouts, "contributed",
        s->contributed, "away_since", (json_int_t)s->away_since);
}

/* The state as viewer sees it; everything (the snapshot) when all is set. */
static json_t *state_json(const arb__poker_state *state, const arb_principal *viewer, bool all)
{
    json_t *seats = json_array();
    int count = state->created ? state->config.seat_count : 0;
    for (int i = 0; seats != NULL && i < count; i++) {
        const arb__poker_seat *s = &state->seats[i];
        bool visible = all || s->shown ||
                       (viewer != NULL && s->occupied && strcmp(s->player, viewer->id) == 0);
        if (json_array_append_new(seats, seat_json(s, visible)) != 0) {
            json_decref(seats);
            seats = NULL;
        }
    }
    json_t *json = json_pack(
        "{s:o, s:I, s:I, s:I, s:i, s:b, s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:i, s:I, s:I, s:I, "
        "s:I, s:o, s:o, s:o, s:b, s:o}",
        "table", config_json(state), "chips_in", (json_int_t)state->chips_in, "chips_out",
        (json_int_t)state->chips_out, "hands", (json_int_t)state->hands, "button", state->button,
        "hand_active", state->hand_active, "posted", state->posted, "antes_posted",
        state->antes_posted, "small_seat", state->small_seat, "big_seat", state->big_seat,
        "dealt_count", state->dealt_count, "street", arb__poker_street_name(state->street),
        "to_act", state->to_act, "last_aggressor", state->last_aggressor, "pot",
        (json_int_t)state->pot, "awarded", (json_int_t)state->awarded, "current_bet",
        (json_int_t)state->current_bet, "min_raise", (json_int_t)state->min_raise, "board",
        arb__poker_cards_json(state->board, (size_t)state->board_count), "commitment",
        hex_or_null(state->commitment, sizeof state->commitment, state->hands > 0), "seed",
        hex_or_null(state->seed, sizeof state->seed,
                    state->seed_known && (all || state->seed_revealed)),
        "seed_revealed", state->seed_revealed, "seats", seats);
    /* The turn clock is public: every player sees whose turn runs out when;
     * so are the next hand's commitment and the entropy mixed so far. */
    if (json != NULL &&
        (json_object_set_new(json, "next_commitment",
                             hex_or_null(state->next_commitment, sizeof state->next_commitment,
                                         state->next_committed)) != 0 ||
         json_object_set_new(
             json, "entropy",
             hex_or_null(state->entropy, sizeof state->entropy, state->entropy_count > 0)) != 0 ||
         json_object_set_new(json, "entropy_count", json_integer(state->entropy_count)) != 0 ||
         json_object_set_new(json, "hand_entropy",
                             hex_or_null(state->hand_entropy, sizeof state->hand_entropy,
                                         state->hand_entropy_used)) != 0 ||
         json_object_set_new(json, "turn_seq", json_integer((json_int_t)state->turn_seq)) != 0 ||
         json_object_set_new(json, "turn_deadline",
                             json_integer((json_int_t)state->turn_deadline_ms)) != 0 ||
         json_object_set_new(json, "clock_seat", json_integer(state->clock_seat)) != 0)) {
        json_decref(json);
        json = NULL;
    }
    if (json != NULL && all &&
        (json_object_set_new(json, "deck",
                             state->deck_known ? arb__poker_cards_json(state->deck, 52)
                                               : json_null()) != 0 ||
         json_object_set_new(json, "next_seed",
                             hex_or_null(state->next_seed, sizeof state->next_seed,
                                         state->next_seed_known)) != 0)) {
        json_decref(json);
        json = NULL;
    }
    return json;
}

json_t *arb__poker_view(const void *state, const arb_principal *viewer)
{
    ARB_ASSERT(state != NULL);
    return state_json(state, viewer, arb__poker_sees_everything(viewer));
}

int arb__poker_snapshot_save(const void *state, json_t **snapshot_out)
{
    ARB_ASSERT(state != NULL && snapshot_out != NULL);
    json_t *snapshot = state_json(state, NULL, true);
    if (snapshot == NULL ||
        json_object_set_new(snapshot, "format", json_integer(ARB__POKER_SNAPSHOT_FORMAT)) != 0) {
        json_decref(snapshot);
        return ARB_ENOMEM;
    }
    *snapshot_out = snapshot;
    return 0;
}

/* JSON to state. */

static bool get_int(const json_t *object, const char *key, int64_t min, int64_t max, int *out)
{
    int64_t value;
    if (!arb__rules_data_int(object, key, min, max, &value))
        return false;
    *out = (int)value;
    return true;
}

static bool get_bool(const json_t *object, const char *key, bool *out)
{
    const json_t *value = json_object_get(object, key);
    if (!json_is_boolean(value))
        return false;
    *out = json_is_true(value);
    return true;
}

/* A hex value of len bytes, or null (known false). */
static bool get_hex(const json_t *object, const char *key, uint8_t *bytes, size_t len,
                    bool *known_out)
{
    const json_t *value = json_object_get(object, key);
    *known_out = !json_is_null(value);
    return value != NULL &&
           (json_is_null(value) || arb__poker_unhex(json_string_value(value), bytes, len));
}

static bool load_config(arb__poker_state *state, const json_t *table)
{
    if (json_is_null(table))
        return true;
    /* The event's reader checks the same fields and bounds. */
    arb__poker_state scratch = {0};
    arb_event event = {.seq = 1, .data = (json_t *)table};
    memcpy(event.type, "table_created", sizeof "table_created");
    if (!json_is_object(table) || arb__poker_evolve(&scratch, &event) != 0)
        return false;
    state->created = true;
    state->config = scratch.config;
    return true;
}

static bool load_seat(arb__poker_seat *s, const json_t *json, uint64_t seq)
{
    const json_t *player = json_object_get(json, "player");
    int64_t version;
    if (!json_is_object(json) || json_object_size(json) != SEAT_FIELDS ||
        !arb__rules_data_int(json, "stack", 0, ARB_JSON_INT_MAX, &s->stack) ||
        !arb__rules_data_int(json, "version", 0, (int64_t)seq, &version) ||
        !arb__rules_data_int(json, "bet", 0, ARB_JSON_INT_MAX, &s->bet) ||
        !arb__rules_data_int(json, "committed", 0, ARB_JSON_INT_MAX, &s->committed) ||
        !get_bool(json, "sitting_out", &s->sitting_out) ||
        !get_bool(json, "in_hand", &s->in_hand) || !get_bool(json, "folded", &s->folded) ||
        !get_bool(json, "all_in", &s->all_in) || !get_bool(json, "acted", &s->acted) ||
        !get_bool(json, "may_raise", &s->may_raise) || !get_bool(json, "shown", &s->shown) ||
        !get_bool(json, "mucked", &s->mucked) ||
        !get_int(json, "timeouts", 0, ARB_POKER_TIMEOUTS_SIT_OUT, &s->timeouts) ||
        !get_bool(json, "contributed", &s->contributed) ||
        !arb__rules_data_int(json, "away_since", 0, ARB_JSON_INT_MAX, &s->away_since))
        return false;
    s->version = (uint64_t)version;
    if (json_is_string(player)) {
        const char *id;
        if (!arb__rules_data_string(json, "player", 1, ARB_CLIENT_ID_BYTES_MAX, &id))
            return false;
        s->occupied = true;
        memcpy(s->player, id, strlen(id) + 1);
    } else if (!json_is_null(player)) {
        return false;
    }
    const json_t *cards = json_object_get(json, "cards");
    s->cards_known = !json_is_null(cards);
    return cards != NULL && (json_is_null(cards) || arb__poker_json_cards(cards, 2, s->cards));
}

static bool load_street(arb__poker_state *state, const json_t *json)
{
    const char *name = json_string_value(json_object_get(json, "street"));
    for (int i = ARB__POKER_PREFLOP; name != NULL && i <= ARB__POKER_RIVER; i++) {
        if (strcmp(name, arb__poker_street_name((arb__poker_street)i)) == 0) {
            state->street = (arb__poker_street)i;
            return true;
        }
    }
    return false;
}

static bool load_fields(arb__poker_state *state, const json_t *json, uint64_t seq)
{
    int64_t hands, turn_seq, seats = state->created ? state->config.seat_count : 0;
    const json_t *board = json_object_get(json, "board");
    bool commitment_known, entropy_known;
    if (!arb__rules_data_int(json, "chips_in", 0, ARB_JSON_INT_MAX, &state->chips_in) ||
        !arb__rules_data_int(json, "chips_out", 0, ARB_JSON_INT_MAX, &state->chips_out) ||
        !arb__rules_data_int(json, "hands", 0, (int64_t)seq, &hands) ||
        !get_int(json, "button", -1, seats - 1, &state->button) ||
        !get_bool(json, "hand_active", &state->hand_active) ||
        !get_int(json, "posted", 0, 2, &state->posted) ||
        !get_int(json, "antes_posted", 0, ARB_POKER_SEATS_MAX, &state->antes_posted) ||
        !get_int(json, "small_seat", 0, ARB_POKER_SEATS_MAX - 1, &state->small_seat) ||
        !get_int(json, "big_seat", 0, ARB_POKER_SEATS_MAX - 1, &state->big_seat) ||
        !get_int(json, "dealt_count", 0, ARB_POKER_SEATS_MAX, &state->dealt_count) ||
        !load_street(state, json) || !get_int(json, "to_act", -1, seats - 1, &state->to_act) ||
        !get_int(json, "last_aggressor", -1, seats - 1, &state->last_aggressor) ||
        !arb__rules_data_int(json, "pot", 0, ARB_JSON_INT_MAX, &state->pot) ||
        !arb__rules_data_int(json, "awarded", 0, ARB_JSON_INT_MAX, &state->awarded) ||
        !arb__rules_data_int(json, "current_bet", 0, ARB_JSON_INT_MAX, &state->current_bet) ||
        !arb__rules_data_int(json, "min_raise", 0, ARB_JSON_INT_MAX, &state->min_raise) ||
        !json_is_array(board) || json_array_size(board) > ARB__POKER_BOARD_CARDS ||
        !arb__poker_json_cards(board, json_array_size(board), state->board) ||
        !get_hex(json, "commitment", state->commitment, sizeof state->commitment,
                 &commitment_known) ||
        commitment_known != (hands > 0) ||
        !get_hex(json, "seed", state->seed, sizeof state->seed, &state->seed_known) ||
        !get_bool(json, "seed_revealed", &state->seed_revealed) ||
        (state->seed_revealed && !state->seed_known) ||
        !arb__rules_data_int(json, "turn_seq", 0, (int64_t)seq, &turn_seq) ||
        !arb__rules_data_int(json, "turn_deadline", 0, ARB_JSON_INT_MAX,
                             &state->turn_deadline_ms) ||
        !get_int(json, "clock_seat", -1, seats - 1, &state->clock_seat) ||
        !get_hex(json, "next_commitment", state->next_commitment, sizeof state->next_commitment,
                 &state->next_committed) ||
        !get_hex(json, "entropy", state->entropy, sizeof state->entropy, &entropy_known) ||
        !get_int(json, "entropy_count", 0, INT32_MAX, &state->entropy_count) ||
        entropy_known != (state->entropy_count > 0) ||
        !get_hex(json, "hand_entropy", state->hand_entropy, sizeof state->hand_entropy,
                 &state->hand_entropy_used))
        return false;
    state->turn_seq = (uint64_t)turn_seq;
    state->hands = (uint64_t)hands;
    state->board_count = (int)json_array_size(board);
    const json_t *seat_array = json_object_get(json, "seats");
    if (!json_is_array(seat_array) || json_array_size(seat_array) != (size_t)seats)
        return false;
    for (int i = 0; i < seats; i++)
        if (!load_seat(&state->seats[i], json_array_get(seat_array, (size_t)i), seq))
            return false;
    return true;
}

/* Load a snapshot (secrets present) or a view (partial; secrets absent). */
static int load(const json_t *json, uint64_t seq, bool partial, const char *viewer,
                void **state_out)
{
    *state_out = NULL;
    size_t fields = VIEW_FIELDS + (partial ? 0 : 2); /* the secrets: deck, next_seed */
    if (!json_is_object(json) || json_object_size(json) != fields)
        return ARB_ECORRUPT;
    arb__poker_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return ARB_ENOMEM;
    state->partial = partial;
    if (viewer != NULL)
        memcpy(state->viewer, viewer, strlen(viewer) + 1);
    bool ok = load_config(state, json_object_get(json, "table")) && load_fields(state, json, seq);
    /* A view shows the seed only once revealed. */
    ok = ok && (!partial || state->seed_known == state->seed_revealed);
    if (ok && !partial) {
        const json_t *deck = json_object_get(json, "deck");
        state->deck_known = !json_is_null(deck);
        ok = deck != NULL &&
             (json_is_null(deck) || arb__poker_json_cards(deck, ARB_POKER_DECK_CARDS, state->deck));
        ok = ok && get_hex(json, "next_seed", state->next_seed, sizeof state->next_seed,
                           &state->next_seed_known);
    }
    char why[128];
    if (!ok || arb__poker_check(state, why, sizeof why) != 0) {
        free(state);
        return ARB_ECORRUPT;
    }
    *state_out = state;
    return 0;
}

int arb__poker_snapshot_load(const json_t *snapshot, uint64_t seq, void **state_out,
                             const arb_timer_sink *timers)
{
    ARB_ASSERT(state_out != NULL);
    *state_out = NULL;
    const json_t *format = json_object_get(snapshot, "format");
    if (!json_is_integer(format) || json_integer_value(format) != ARB__POKER_SNAPSHOT_FORMAT)
        return ARB_ECORRUPT;
    json_t *copy = json_copy((json_t *)snapshot);
    if (copy == NULL)
        return ARB_ENOMEM;
    json_object_del(copy, "format");
    int rc = load(copy, seq, false, NULL, state_out);
    json_decref(copy);
    if (rc == 0) {
        arb__poker_report_turn(*state_out, timers); /* the running turn's clock */
        for (int seat = 0; seat < ARB_POKER_SEATS_MAX; seat++)
            arb__poker_report_grace(*state_out, seat, timers); /* the away seats' */
    }
    return rc;
}

int arb__poker_view_load(const json_t *view, uint64_t seq, const arb_principal *viewer,
                         void **state_out)
{
    ARB_ASSERT(state_out != NULL);
    if (arb__poker_sees_everything(viewer))
        return load(view, seq, false, NULL, state_out);
    return load(view, seq, true, viewer->id, state_out);
}
