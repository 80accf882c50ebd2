/*
 * poker_decide.c - decide: the table's actions, their arguments and checks,
 * and the dealer that runs everything no player decides.
 *
 * decide copies the state (a fixed-size struct) into its call, and every
 * event it emits is applied to that copy at once by the module's own evolve
 * (an event evolve refused would be a bug here: asserted). After a player's
 * action the dealer reads the copy and emits what follows, until a player
 * must act again or no hand can start: the uncalled bet returned, the next
 * street, the hands shown when the betting is closed with players all in,
 * the showdown (show or muck in showdown order), one award per pot, the
 * hand's end with its seed, and the next hand with its blinds.
 *
 * The dealer needs what only the server has for some of these: the deck (a
 * street), other players' cards (a showdown), the seed (a hand's end) and
 * ctx->random_bytes (a new hand). A client's prediction (a partial state,
 * or random_bytes NULL) lacks them and rejects the whole decision with
 * UNPREDICTABLE, so the client shows its proposal as pending.
 *
 * Ownership: results and details built here go into the decision (which
 * steals them); nothing else outlives a call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rules/poker/poker_internal.h"

/* Events one decision emits at most: a hand's end (returned bet, three
 * streets, ten shows, ten pots, the end) and the next hand's start (ten
 * antes, two blinds), with room. */
#define DEALER_STEPS_MAX 64
_Static_assert(DEALER_STEPS_MAX <= ARB_DECISION_EVENTS_MAX, "the dealer's events fit a decision");

typedef struct poker_call {
    const arb__poker_state *state; /* as it was */
    arb__poker_state work;         /* with the decision's events applied */
    const arb_command *command;
    const arb_ctx *ctx;
    arb_decision *decision;
} poker_call;

/* Emit an event (steals data) and apply it to the working copy. */
static int emit(poker_call *call, const char *type, json_t *data)
{
    if (data == NULL)
        return arb_decision_reject(call->decision, ARB_ENOMEM, NULL, NULL);
    arb_event event = {0};
    memcpy(event.stream, call->command->stream, sizeof event.stream);
    event.seq = (call->ctx->next_seq > 0 ? call->ctx->next_seq : 1) + call->decision->event_count;
    event.applied_at_ms = call->ctx->now_ms; /* as the engine will stamp it */
    snprintf(event.type, sizeof event.type, "%s", type);
    event.data = data;
    int rc = arb__poker_evolve(&call->work, &event);
    ARB_ASSERT(rc == 0);
    rc = arb_decision_emit(call->decision, type, data);
    if (rc != 0)
        return arb_decision_reject(call->decision, rc, NULL, NULL);
    return 0;
}

static int unpredictable(poker_call *call, const char *what)
{
    return arb_decision_reject(call->decision, ARB_EUNPREDICTABLE,
                               json_pack("{s:s}", "needs", what),
                               "the outcome needs %s, which only the server has", what);
}

/* The dealer. */

static int start_hand(poker_call *call)
{
    arb__poker_state *w = &call->work;
    if (call->ctx->random_bytes == NULL || w->partial)
        return unpredictable(call, "randomness");
    /* This hand's seed was committed at the last hand's start (the first
     * hand draws its own); the next hand's is drawn and committed now, so
     * the players' entropy, mixed into the next deck, comes after it. */
    uint8_t seed[ARB_POKER_SEED_BYTES], next_seed[ARB_POKER_SEED_BYTES];
    uint8_t mixed[ARB_POKER_SEED_BYTES], deck[ARB_POKER_DECK_CARDS];
    uint8_t commitment[ARB__POKER_COMMITMENT_BYTES], next_commitment[ARB__POKER_COMMITMENT_BYTES];
    char seed_hex[ARB__POKER_HEX_SIZE], commitment_hex[ARB__POKER_HEX_SIZE];
    char next_seed_hex[ARB__POKER_HEX_SIZE], next_commitment_hex[ARB__POKER_HEX_SIZE];
    char entropy_hex[ARB__POKER_HEX_SIZE];
    if (w->next_seed_known)
        memcpy(seed, w->next_seed, sizeof seed);
    else
        call->ctx->random_bytes(call->ctx->random_user, seed, sizeof seed);
    call->ctx->random_bytes(call->ctx->random_user, next_seed, sizeof next_seed);
    bool mix = w->entropy_count > 0;
    arb__poker_deck_seed(seed, mix ? w->entropy : NULL, mixed);
    arb__poker_deck_from_seed(mixed, deck);
    arb__poker_commitment(call->command->stream, w->hands + 1, seed, commitment);
    arb__poker_commitment(call->command->stream, w->hands + 2, next_seed, next_commitment);
    arb__poker_hex(seed, sizeof seed, seed_hex);
    arb__poker_hex(commitment, sizeof commitment, commitment_hex);
    arb__poker_hex(next_seed, sizeof next_seed, next_seed_hex);
    arb__poker_hex(next_commitment, sizeof next_commitment, next_commitment_hex);
    arb__poker_hex(w->entropy, sizeof w->entropy, entropy_hex);
    int button = arb__poker_next_seat(w, w->button, arb__poker_is_active);
    int order[ARB_POKER_SEATS_MAX], count = 0;
    for (int i = 0, seat = button; i < w->config.seat_count; i++) {
        seat = (seat + 1) % w->config.seat_count;
        if (arb__poker_is_active(&w->seats[seat]))
            order[count++] = seat;
    }
    json_t *dealt = json_array();
    for (int k = 0; dealt != NULL && k < count; k++) {
        uint8_t cards[2] = {deck[k], deck[k + count]};
        if (json_array_append_new(dealt, json_pack("{s:i, s:s, s:o}", "seat", order[k], "player",
                                                   w->seats[order[k]].player, "cards",
                                                   arb__poker_cards_json(cards, 2))) != 0) {
            json_decref(dealt);
            dealt = NULL;
        }
    }
    int rc = emit(call, "hand_started",
                  json_pack("{s:I, s:i, s:s, s:o, s:s, s:o, s:s, s:s, s:o}", "hand",
                            (json_int_t)(w->hands + 1), "button", button, "commitment",
                            commitment_hex, "dealt", dealt, "seed", seed_hex, "deck",
                            arb__poker_cards_json(deck, sizeof deck), "next_commitment",
                            next_commitment_hex, "next_seed", next_seed_hex, "entropy",
                            mix ? json_string(entropy_hex) : json_null()));
    for (int k = 0; rc == 0 && w->config.ante > 0 && k < count; k++) {
        const arb__poker_seat *s = &w->seats[order[k]];
        int64_t amount = w->config.ante < s->stack ? w->config.ante : s->stack;
        rc = emit(call, "posted",
                  json_pack("{s:i, s:s, s:I}", "seat", order[k], "blind", "ante", "amount",
                            (json_int_t)amount));
    }
    for (int blind = 0; rc == 0 && blind < 2; blind++) {
        int seat = blind == 0 ? w->small_seat : w->big_seat;
        int64_t due = blind == 0 ? w->config.small_blind : w->config.big_blind;
        int64_t stack = w->seats[seat].stack;
        rc = emit(call, "posted",
                  json_pack("{s:i, s:s, s:I}", "seat", seat, "blind", blind == 0 ? "small" : "big",
                            "amount", (json_int_t)(due < stack ? due : stack)));
    }
    return rc;
}

static int deal_street(poker_call *call)
{
    arb__poker_state *w = &call->work;
    if (!w->deck_known)
        return unpredictable(call, "the deck");
    int count = w->street == ARB__POKER_PREFLOP ? 3 : 1;
    uint8_t cards[3];
    for (int i = 0; i < count; i++)
        cards[i] = w->deck[arb__poker_board_index(w->dealt_count, w->board_count + i)];
    return emit(call, "street_dealt",
                json_pack("{s:s, s:o}", "street", arb__poker_street_name(w->street + 1), "cards",
                          arb__poker_cards_json(cards, (size_t)count)));
}

static int show(poker_call *call, int seat)
{
    const arb__poker_seat *s = &call->work.seats[seat];
    if (!s->cards_known)
        return unpredictable(call, "the other players' cards");
    return emit(call, "cards_shown",
                json_pack("{s:i, s:o}", "seat", seat, "cards", arb__poker_cards_json(s->cards, 2)));
}

/* The live seats in showdown order: the last aggressor of the last round
 * first, else the first from the button; then clockwise. */
static int showdown_order(const arb__poker_state *w, int order_out[ARB_POKER_SEATS_MAX])
{
    int first = w->last_aggressor >= 0 && arb__poker_is_live(&w->seats[w->last_aggressor])
                    ? w->last_aggressor
                    : arb__poker_next_seat(w, w->button, arb__poker_is_live);
    int count = 0;
    for (int i = 0; i < w->config.seat_count; i++) {
        int seat = (first + i) % w->config.seat_count;
        if (arb__poker_is_live(&w->seats[seat]))
            order_out[count++] = seat;
    }
    return count;
}

/* One pot of the showdown: its chips and what each seat wins of it. */
typedef struct pot_share {
    int64_t amount;
    int64_t shares[ARB_POKER_SEATS_MAX];
} pot_share;

/* Side pots from the live seats' commitments, each split among its
 * eligible best hands, odd chips to the first winners clockwise from the
 * button. ranks[seat] of every live seat. Returns the number of pots. */
static int build_pots(const arb__poker_state *w, const uint32_t ranks[ARB_POKER_SEATS_MAX],
                      pot_share pots[ARB_POKER_SEATS_MAX])
{
    int n = w->config.seat_count, pot_count = 0;
    int64_t previous = 0;
    for (;;) {
        int64_t level = -1; /* the next commitment level of a live seat */
        for (int i = 0; i < n; i++) {
            const arb__poker_seat *s = &w->seats[i];
            if (arb__poker_is_live(s) && s->committed > previous &&
                (level < 0 || s->committed < level))
                level = s->committed;
        }
        if (level < 0)
            break;
        bool last = true;
        for (int i = 0; i < n; i++)
            if (arb__poker_is_live(&w->seats[i]) && w->seats[i].committed > level)
                last = false;
        pot_share *pot = &pots[pot_count++];
        memset(pot, 0, sizeof *pot);
        uint32_t best = 0;
        for (int i = 0; i < n; i++) {
            const arb__poker_seat *s = &w->seats[i];
            int64_t c = s->in_hand ? s->committed : 0;
            pot->amount += (c < level ? c : level) - (c < previous ? c : previous);
            if (last && c > level)
                pot->amount += c - level;
            if (arb__poker_is_live(s) && c >= level && ranks[i] > best)
                best = ranks[i];
        }
        int winners = 0;
        for (int i = 0; i < n; i++)
            if (arb__poker_is_live(&w->seats[i]) && w->seats[i].committed >= level &&
                ranks[i] == best)
                winners++;
        ARB_ASSERT(winners > 0 && pot->amount > 0);
        int64_t odd = pot->amount % winners;
        for (int step = 1; step <= n; step++) {
            int i = (w->button + step) % n;
            if (arb__poker_is_live(&w->seats[i]) && w->seats[i].committed >= level &&
                ranks[i] == best) {
                pot->shares[i] = pot->amount / winners + (odd > 0 ? 1 : 0);
                odd--;
            }
        }
        previous = level;
    }
    return pot_count;
}

static json_t *award_json(int index, const pot_share *pot, int seat_count)
{
    json_t *winners = json_array();
    for (int i = 0; winners != NULL && i < seat_count; i++) {
        if (pot->shares[i] != 0 &&
            json_array_append_new(winners, json_pack("{s:i, s:I}", "seat", i, "amount",
                                                     (json_int_t)pot->shares[i])) != 0) {
            json_decref(winners);
            winners = NULL;
        }
    }
    return json_pack("{s:i, s:I, s:o}", "pot", index, "amount", (json_int_t)pot->amount, "winners",
                     winners);
}

static int end_hand(poker_call *call)
{
    arb__poker_state *w = &call->work;
    if (!w->seed_known)
        return unpredictable(call, "the seed");
    char seed_hex[ARB__POKER_HEX_SIZE];
    arb__poker_hex(w->seed, sizeof w->seed, seed_hex);
    return emit(call, "hand_ended",
                json_pack("{s:I, s:s}", "hand", (json_int_t)w->hands, "seed", seed_hex));
}

static int showdown(poker_call *call)
{
    arb__poker_state *w = &call->work;
    int order[ARB_POKER_SEATS_MAX];
    int count = showdown_order(w, order);
    uint32_t ranks[ARB_POKER_SEATS_MAX] = {0};
    for (int k = 0; k < count; k++) {
        const arb__poker_seat *s = &w->seats[order[k]];
        if (!s->cards_known)
            return unpredictable(call, "the other players' cards");
        uint8_t cards[7] = {s->cards[0], s->cards[1]};
        memcpy(cards + 2, w->board, ARB__POKER_BOARD_CARDS);
        ranks[order[k]] = arb_poker_eval7(cards);
    }
    pot_share pots[ARB_POKER_SEATS_MAX];
    int pot_count = build_pots(w, ranks, pots);
    uint32_t best_shown = 0;
    int rc = 0;
    for (int k = 0; rc == 0 && k < count; k++) {
        int seat = order[k];
        bool wins = false;
        for (int p = 0; p < pot_count; p++)
            wins = wins || pots[p].shares[seat] > 0;
        /* A winner always shows; so does a hand as good as the best shown. */
        if (w->seats[seat].shown || wins || ranks[seat] >= best_shown) {
            if (!w->seats[seat].shown)
                rc = show(call, seat);
            best_shown = ranks[seat] > best_shown ? ranks[seat] : best_shown;
        } else {
            rc = emit(call, "mucked", json_pack("{s:i}", "seat", seat));
        }
    }
    for (int p = 0; rc == 0 && p < pot_count; p++)
        rc = emit(call, "pot_awarded", award_json(p, &pots[p], w->config.seat_count));
    return rc == 0 ? end_hand(call) : rc;
}

/* Everyone else folded: the last live seat takes every chip, unshown. */
static int win_uncontested(poker_call *call)
{
    arb__poker_state *w = &call->work;
    pot_share pot = {.amount = w->pot};
    int winner = arb__poker_next_seat(w, -1, arb__poker_is_live);
    for (int i = 0; i < w->config.seat_count; i++)
        pot.amount += w->seats[i].bet;
    pot.shares[winner] = pot.amount;
    int rc = emit(call, "pot_awarded", award_json(0, &pot, w->config.seat_count));
    return rc == 0 ? end_hand(call) : rc;
}

/* Run until a player must act or no hand can start. */
static int run_dealer(poker_call *call)
{
    arb__poker_state *w = &call->work;
    for (int step = 0; step < DEALER_STEPS_MAX; step++) {
        int rc, top = -1;
        int64_t uncalled = w->hand_active ? arb__poker_uncalled(w, &top) : 0;
        if (!w->hand_active) {
            if (!w->created || arb__poker_count(w, arb__poker_is_active) < 2)
                return 0;
            rc = start_hand(call);
        } else if (!arb__poker_round_complete(w)) {
            ARB_ASSERT(w->to_act >= 0);
            return 0;
        } else if (uncalled > 0) {
            rc = emit(call, "bet_returned",
                      json_pack("{s:i, s:I}", "seat", top, "amount", (json_int_t)uncalled));
        } else if (arb__poker_count(w, arb__poker_is_live) == 1) {
            rc = win_uncontested(call);
        } else if (w->street == ARB__POKER_RIVER) {
            rc = showdown(call);
        } else {
            rc = 0;
            /* All in with the betting closed: every hand is turned face up. */
            for (int i = 0; rc == 0 && arb__poker_count(w, arb__poker_is_open) <= 1 &&
                            i < w->config.seat_count;
                 i++) {
                int seat = (w->button + 1 + i) % w->config.seat_count;
                if (arb__poker_is_live(&w->seats[seat]) && !w->seats[seat].shown)
                    rc = show(call, seat);
            }
            if (rc == 0)
                rc = deal_street(call);
        }
        if (rc != 0)
            return rc;
    }
    ARB_ASSERT(!"the dealer did not settle");
    return ARB_ECORRUPT;
}

/* Arguments and checks shared by the actions. */

static int reject_field(poker_call *call, const char *key, const char *why)
{
    return arb_decision_reject(call->decision, ARB_EINVALID_ARGUMENT,
                               json_pack("{s:s}", "field", key), "%s: %s", key, why);
}

static int chips_arg(poker_call *call, const json_t *args, const char *key, int64_t min,
                     bool required, int code, int64_t *value_out)
{
    return arb_args_int(args, key, min, ARB_POKER_CHIPS_MAX, required, code, value_out,
                        call->decision);
}

static int require_table(poker_call *call)
{
    if (!call->state->created)
        return arb_decision_reject(call->decision, ARB_ETABLE_NOT_CREATED, NULL, NULL);
    return 0;
}

/* The proposer's seat, or NOT_SEATED. */
static int own_seat(poker_call *call, int *seat_out)
{
    int rc = require_table(call);
    if (rc != 0)
        return rc;
    *seat_out = arb__poker_seat_of(call->state, call->command->principal.id);
    if (*seat_out < 0)
        return arb_decision_reject(call->decision, ARB_ENOT_SEATED, NULL, NULL);
    return 0;
}

static int reject_overflow(poker_call *call)
{
    return arb_decision_reject(call->decision, ARB_EOVERFLOW, NULL,
                               "the chips bought in at this table would exceed 2^53-1");
}

/* create_table (admin). */

static int decide_create_table(poker_call *call, const json_t *args)
{
    arb__poker_config c = {0};
    const char *table;
    int64_t seats, grace_s = ARB_POKER_GRACE_S_DEFAULT, ante = 0;
    const char *colon = strchr(call->command->stream, ':');
    int rc = arb_args_string(args, "table", ARB_POKER_TABLE_NAME_BYTES_MAX, true, &table,
                             call->decision);
    if (rc == 0)
        rc = arb_args_int(args, "seats", ARB_POKER_SEATS_MIN, ARB_POKER_SEATS_MAX, true,
                          ARB_EINVALID_ARGUMENT, &seats, call->decision);
    if (rc == 0)
        rc = chips_arg(call, args, "small_blind", 1, true, ARB_EINVALID_ARGUMENT, &c.small_blind);
    if (rc == 0)
        rc = chips_arg(call, args, "big_blind", 1, true, ARB_EINVALID_ARGUMENT, &c.big_blind);
    if (rc == 0)
        rc = chips_arg(call, args, "ante", 0, false, ARB_EINVALID_ARGUMENT, &ante);
    if (rc == 0)
        rc = chips_arg(call, args, "buy_in_min", 1, true, ARB_EINVALID_ARGUMENT, &c.buy_in_min);
    if (rc == 0)
        rc = chips_arg(call, args, "buy_in_max", 1, true, ARB_EINVALID_ARGUMENT, &c.buy_in_max);
    if (rc == 0)
        rc = arb_args_int(args, "turn_s", 1, ARB_POKER_TURN_S_MAX, true, ARB_EINVALID_ARGUMENT,
                          &c.turn_s, call->decision);
    if (rc == 0)
        rc = arb_args_int(args, "grace_s", 0, ARB_POKER_GRACE_S_MAX, false, ARB_EINVALID_ARGUMENT,
                          &grace_s, call->decision);
    if (rc != 0)
        return rc;
    if (table[0] == '\0' || colon == NULL || strcmp(table, colon + 1) != 0)
        return reject_field(call, "table", "must be the stream's name (table:NAME)");
    if (c.big_blind < c.small_blind)
        return reject_field(call, "big_blind", "must be at least the small blind");
    if (c.buy_in_max < c.buy_in_min)
        return reject_field(call, "buy_in_max", "must be at least buy_in_min");
    if (call->state->created)
        return arb_decision_reject(call->decision, ARB_ETABLE_EXISTS, NULL, NULL);
    return emit(call, "table_created",
                json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "table", table, "seats",
                          (json_int_t)seats, "small_blind", (json_int_t)c.small_blind, "big_blind",
                          (json_int_t)c.big_blind, "ante", (json_int_t)ante, "buy_in_min",
                          (json_int_t)c.buy_in_min, "buy_in_max", (json_int_t)c.buy_in_max,
                          "turn_s", (json_int_t)c.turn_s, "grace_s", (json_int_t)grace_s));
}

/* Seating. */

/* The arguments of sit and add_bot: a seat of the table, a buy-in. */
static int sit_args(poker_call *call, const json_t *args, int64_t *seat, int64_t *buy_in)
{
    int rc = require_table(call);
    if (rc == 0)
        rc = arb_args_int(args, "seat", 0, call->state->config.seat_count - 1, true,
                          ARB_EINVALID_ARGUMENT, seat, call->decision);
    if (rc == 0)
        rc = chips_arg(call, args, "buy_in", 0, true, ARB_EBUY_IN_OUT_OF_RANGE, buy_in);
    return rc;
}

/* Seat player at seat with buy_in (checked here, but for the seat number
 * and the buy-in's type). */
static int sit_player(poker_call *call, int64_t seat, int64_t buy_in, const char *player)
{
    const arb__poker_state *state = call->state;
    if (arb__poker_seat_of(state, player) >= 0)
        return arb_decision_reject(call->decision, ARB_EALREADY_SEATED, NULL, NULL);
    int free_seats = 0;
    for (int i = 0; i < state->config.seat_count; i++)
        free_seats += !state->seats[i].occupied ? 1 : 0;
    if (free_seats == 0)
        return arb_decision_reject(call->decision, ARB_ETABLE_FULL, NULL, NULL);
    const arb__poker_seat *s = &state->seats[seat];
    if (s->occupied || s->in_hand)
        return arb_decision_reject(call->decision, ARB_ESEAT_TAKEN,
                                   json_pack("{s:I}", "seat", (json_int_t)seat), "seat %d is taken",
                                   (int)seat);
    if (buy_in < state->config.buy_in_min || buy_in > state->config.buy_in_max)
        return arb_decision_reject(call->decision, ARB_EBUY_IN_OUT_OF_RANGE,
                                   json_pack("{s:I, s:I}", "min",
                                             (json_int_t)state->config.buy_in_min, "max",
                                             (json_int_t)state->config.buy_in_max),
                                   "the buy-in must be %" PRId64 "..%" PRId64,
                                   state->config.buy_in_min, state->config.buy_in_max);
    if (buy_in > ARB_JSON_INT_MAX - state->chips_in)
        return reject_overflow(call);
    int rc = emit(call, "sat",
                  json_pack("{s:I, s:s, s:I}", "seat", (json_int_t)seat, "player", player, "buy_in",
                            (json_int_t)buy_in));
    return rc == 0 ? run_dealer(call) : rc;
}

static int decide_sit(poker_call *call, const json_t *args)
{
    int64_t seat, buy_in;
    int rc = sit_args(call, args, &seat, &buy_in);
    if (rc != 0)
        return rc;
    if (arb__poker_is_bot(call->command->principal.id))
        return arb_decision_reject(call->decision, ARB_EFORBIDDEN, NULL,
                                   "the names bot.* are the server's bots");
    return sit_player(call, seat, buy_in, call->command->principal.id);
}

/* add_bot {seat, buy_in} (admin): a bot sits, named after its seat. */
static int decide_add_bot(poker_call *call, const json_t *args)
{
    int64_t seat, buy_in;
    int rc = sit_args(call, args, &seat, &buy_in);
    if (rc != 0)
        return rc;
    char name[ARB__POKER_BOT_NAME_SIZE];
    arb__poker_bot_name((int)seat, name);
    return sit_player(call, seat, buy_in, name);
}

static int decide_top_up(poker_call *call, const json_t *args)
{
    const arb__poker_state *state = call->state;
    int seat;
    int64_t amount;
    int rc = own_seat(call, &seat);
    if (rc == 0)
        rc = chips_arg(call, args, "amount", 1, true, ARB_EBUY_IN_OUT_OF_RANGE, &amount);
    if (rc != 0)
        return rc;
    const arb__poker_seat *s = &state->seats[seat];
    if (state->hand_active && s->in_hand)
        return arb_decision_reject(call->decision, ARB_EHAND_IN_PROGRESS, NULL, NULL);
    if (amount > state->config.buy_in_max - s->stack)
        return arb_decision_reject(
            call->decision, ARB_EBUY_IN_OUT_OF_RANGE,
            json_pack("{s:I}", "max", (json_int_t)(state->config.buy_in_max - s->stack)),
            "a stack may be topped up to at most %" PRId64, state->config.buy_in_max);
    if (amount > ARB_JSON_INT_MAX - state->chips_in)
        return reject_overflow(call);
    rc = emit(call, "topped_up",
              json_pack("{s:i, s:s, s:I}", "seat", seat, "player", s->player, "amount",
                        (json_int_t)amount));
    return rc == 0 ? run_dealer(call) : rc;
}

static int decide_sitting(poker_call *call, bool out)
{
    int seat;
    int rc = own_seat(call, &seat);
    if (rc != 0)
        return rc;
    const arb__poker_seat *s = &call->state->seats[seat];
    if (s->sitting_out == out)
        return arb_decision_reject(call->decision, ARB_EILLEGAL_ACTION, NULL,
                                   out ? "already sitting out" : "not sitting out");
    rc = emit(call, out ? "sat_out" : "sat_in",
              json_pack("{s:i, s:s}", "seat", seat, "player", s->player));
    return rc == 0 ? run_dealer(call) : rc;
}

static int decide_sit_out(poker_call *call, const json_t *args)
{
    (void)args;
    return decide_sitting(call, true);
}

static int decide_sit_in(poker_call *call, const json_t *args)
{
    (void)args;
    return decide_sitting(call, false);
}

static int leave_seat(poker_call *call, int seat);

static int decide_leave(poker_call *call, const json_t *args)
{
    (void)args;
    int seat;
    int rc = own_seat(call, &seat);
    return rc == 0 ? leave_seat(call, seat) : rc;
}

/* remove_bot {seat} (admin): the bot at seat leaves with its chips (after
 * folding, or between hands). */
static int decide_remove_bot(poker_call *call, const json_t *args)
{
    const arb__poker_state *state = call->state;
    int64_t seat;
    int rc = require_table(call);
    if (rc == 0)
        rc = arb_args_int(args, "seat", 0, state->config.seat_count - 1, true,
                          ARB_EINVALID_ARGUMENT, &seat, call->decision);
    if (rc != 0)
        return rc;
    const arb__poker_seat *s = &state->seats[seat];
    if (!s->occupied || !arb__poker_is_bot(s->player))
        return arb_decision_reject(call->decision, ARB_ENOT_SEATED,
                                   json_pack("{s:I}", "seat", (json_int_t)seat),
                                   "no bot at seat %d", (int)seat);
    return leave_seat(call, (int)seat);
}

static int leave_seat(poker_call *call, int seat)
{
    const arb__poker_seat *s = &call->state->seats[seat];
    if (call->state->hand_active && arb__poker_is_live(s))
        return arb_decision_reject(call->decision, ARB_EHAND_IN_PROGRESS, NULL,
                                   "fold first, or wait for the hand to end");
    return emit(call, "left",
                json_pack("{s:i, s:s, s:I}", "seat", seat, "player", s->player, "chips",
                          (json_int_t)s->stack));
}

/* presence {player, online} (the server, when the player's first session
 * begins or last one ends): the seat is held while the player is away
 * (went_away, and a grace_over timer grace_s later), given back when a
 * session begins again (came_back). */
static int decide_presence(poker_call *call, const json_t *args)
{
    int rc = require_table(call);
    if (rc != 0)
        return rc;
    const char *player = json_string_value(json_object_get(args, "player"));
    const json_t *online = json_object_get(args, "online");
    if (player == NULL)
        return reject_field(call, "player", "must be a string");
    if (!json_is_boolean(online))
        return reject_field(call, "online", "must be true or false");
    int seat = arb__poker_seat_of(call->state, player);
    if (seat < 0)
        return arb_decision_reject(call->decision, ARB_ENOT_SEATED, NULL, NULL);
    bool away = call->state->seats[seat].away_since != 0;
    if (away == !json_is_true(online))
        return arb_decision_reject(call->decision, ARB_EILLEGAL_ACTION, NULL,
                                   away ? "already away" : "not away");
    return emit(call, away ? "came_back" : "went_away",
                json_pack("{s:i, s:s}", "seat", seat, "player", player));
}

/* grace_over {seat, player, since} (the grace timer): a player away since
 * then is sat out (a sit_in brings them back). */
static int decide_grace_over(poker_call *call, const json_t *args)
{
    int64_t seat = 0, since = 0;
    int rc = require_table(call);
    if (rc == 0)
        rc = arb_args_int(args, "seat", 0, ARB_POKER_SEATS_MAX - 1, true, ARB_EINVALID_ARGUMENT,
                          &seat, call->decision);
    if (rc == 0)
        rc = arb_args_int(args, "since", 1, ARB_JSON_INT_MAX, true, ARB_EINVALID_ARGUMENT, &since,
                          call->decision);
    const char *player = json_string_value(json_object_get(args, "player"));
    if (rc == 0 && player == NULL)
        rc = reject_field(call, "player", "must be a string");
    if (rc != 0)
        return rc;
    const arb__poker_state *state = call->state;
    const arb__poker_seat *s = &state->seats[seat];
    if (!s->occupied || strcmp(s->player, player) != 0 || s->away_since != since)
        return arb_decision_reject(call->decision, ARB_EILLEGAL_ACTION, NULL,
                                   "the player is back, or gone");
    if (call->ctx->now_ms < since + state->config.grace_s * 1000)
        return arb_decision_reject(call->decision, ARB_EILLEGAL_ACTION, NULL,
                                   "the grace has time left");
    if (s->sitting_out)
        return arb_decision_reject(call->decision, ARB_EILLEGAL_ACTION, NULL,
                                   "already sitting out");
    return emit(call, "sat_out", json_pack("{s:i, s:s}", "seat", (int)seat, "player", player));
}

/* contribute {value} (seated): 64 hex digits of the player's own
 * randomness, mixed into the next hand's deck (docs/poker.md, "Provable
 * fairness"); once a hand, after its seed was committed. */
static int decide_contribute(poker_call *call, const json_t *args)
{
    int seat;
    int rc = own_seat(call, &seat);
    if (rc != 0)
        return rc;
    const char *value = json_string_value(json_object_get(args, "value"));
    uint8_t bytes[ARB_POKER_SEED_BYTES];
    if (value == NULL || strlen(value) != 2 * sizeof bytes ||
        !arb__poker_unhex(value, bytes, sizeof bytes))
        return reject_field(call, "value", "must be 64 hex digits (32 bytes)");
    const arb__poker_state *state = call->state;
    if (!state->next_committed)
        return arb_decision_reject(call->decision, ARB_EILLEGAL_ACTION, NULL,
                                   "no hand is committed yet: contribute once the first hand "
                                   "has started");
    if (state->seats[seat].contributed)
        return arb_decision_reject(call->decision, ARB_EILLEGAL_ACTION, NULL,
                                   "one contribution a hand");
    return emit(call, "entropy_added",
                json_pack("{s:i, s:s, s:s}", "seat", seat, "player", state->seats[seat].player,
                          "value", value));
}

/* Betting. */

/* The move of seat (the one to act) on the working copy, then the dealer. */
static int make_move(poker_call *call, int seat, arb__poker_action action, int64_t amount)
{
    const arb__poker_state *state = &call->work;
    arb__poker_move move;
    int rc = arb__poker_move_resolve(state, seat, action, amount, &move);
    if (rc != 0) {
        const arb__poker_seat *s = &state->seats[seat];
        return arb_decision_reject(call->decision, rc,
                                   json_pack("{s:I, s:I, s:I, s:I}", "current_bet",
                                             (json_int_t)state->current_bet, "min_raise",
                                             (json_int_t)state->min_raise, "bet",
                                             (json_int_t)s->bet, "stack", (json_int_t)s->stack),
                                   "%s: %s", arb__poker_action_name(action), arb_err_message(rc));
    }
    rc = emit(call, "acted",
              json_pack("{s:i, s:s, s:I, s:I}", "seat", seat, "action",
                        arb__poker_action_name(action), "amount", (json_int_t)move.chips, "to",
                        (json_int_t)move.to));
    return rc == 0 ? run_dealer(call) : rc;
}

static int decide_move(poker_call *call, arb__poker_action action, const json_t *args)
{
    int seat;
    int64_t amount = 0;
    int rc = own_seat(call, &seat);
    if (rc == 0 && action == ARB__POKER_BET)
        rc = arb_args_int(args, "amount", 1, ARB_JSON_INT_MAX, true, ARB_EINVALID_ARGUMENT, &amount,
                          call->decision);
    if (rc == 0 && action == ARB__POKER_RAISE)
        rc = arb_args_int(args, "to", 1, ARB_JSON_INT_MAX, true, ARB_EINVALID_ARGUMENT, &amount,
                          call->decision);
    if (rc != 0)
        return rc;
    const arb__poker_state *state = call->state;
    if (!state->hand_active || state->to_act != seat)
        return arb_decision_reject(call->decision, ARB_EILLEGAL_TURN,
                                   json_pack("{s:i}", "to_act", state->to_act), NULL);
    return make_move(call, seat, action, amount);
}

/* The arguments of a timer's proposal for a turn: {hand, seat, turn}. */
static int turn_args(poker_call *call, const json_t *args, int64_t *hand, int64_t *seat,
                     int64_t *turn)
{
    int rc = require_table(call);
    if (rc == 0)
        rc = arb_args_int(args, "hand", 1, ARB_JSON_INT_MAX, true, ARB_EINVALID_ARGUMENT, hand,
                          call->decision);
    if (rc == 0)
        rc = arb_args_int(args, "seat", 0, ARB_POKER_SEATS_MAX - 1, true, ARB_EINVALID_ARGUMENT,
                          seat, call->decision);
    if (rc == 0)
        rc = arb_args_int(args, "turn", 1, ARB_JSON_INT_MAX, true, ARB_EINVALID_ARGUMENT, turn,
                          call->decision);
    return rc;
}

/* ILLEGAL_TURN unless the turn the timer was set for is still running. */
static int same_turn(poker_call *call, int64_t hand, int64_t seat, int64_t turn)
{
    const arb__poker_state *state = call->state;
    if (!state->hand_active || (uint64_t)hand != state->hands || state->to_act != (int)seat ||
        (uint64_t)turn != state->turn_seq)
        return arb_decision_reject(
            call->decision, ARB_EILLEGAL_TURN,
            json_pack("{s:i, s:I}", "to_act", state->to_act, "turn", (json_int_t)state->turn_seq),
            "that turn is over");
    return 0;
}

/* timeout {hand, seat, turn} (the turn clock's system proposal, at the
 * deadline evolve reported): still that turn and past its deadline, the
 * clock checks for the seat if it may, else folds; after
 * ARB_POKER_TIMEOUTS_SIT_OUT such turns in a row the seat is also sat out.
 * A turn that has moved on (the player acted in time) is ILLEGAL_TURN. */
static int decide_timeout(poker_call *call, const json_t *args)
{
    int64_t hand = 0, seat = 0, turn = 0;
    int rc = turn_args(call, args, &hand, &seat, &turn);
    if (rc == 0)
        rc = same_turn(call, hand, seat, turn);
    if (rc != 0)
        return rc;
    const arb__poker_state *state = call->state;
    if (call->ctx->now_ms < state->turn_deadline_ms)
        return arb_decision_reject(
            call->decision, ARB_EILLEGAL_TURN,
            json_pack("{s:I}", "deadline", (json_int_t)state->turn_deadline_ms),
            "the turn has time left");
    const arb__poker_seat *s = &state->seats[seat];
    bool sit_out = !s->sitting_out && s->timeouts + 1 >= ARB_POKER_TIMEOUTS_SIT_OUT;
    arb__poker_move probe;
    arb__poker_action action =
        arb__poker_move_resolve(state, (int)seat, ARB__POKER_CHECK, 0, &probe) == 0
            ? ARB__POKER_CHECK
            : ARB__POKER_FOLD;
    rc = emit(call, "timed_out",
              json_pack("{s:i, s:I}", "seat", (int)seat, "hand", (json_int_t)hand));
    /* Sat out before the move, so that the dealer does not deal it into the
     * next hand the move may start. */
    if (rc == 0 && sit_out)
        rc = emit(call, "sat_out", json_pack("{s:i, s:s}", "seat", (int)seat, "player", s->player));
    return rc == 0 ? make_move(call, (int)seat, action, 0) : rc;
}

/* bot_move {hand, seat, turn} (the bot's timer, system): the bot to act
 * plays what poker_bot.c chooses. */
static int decide_bot_move(poker_call *call, const json_t *args)
{
    int64_t hand = 0, seat = 0, turn = 0;
    int rc = turn_args(call, args, &hand, &seat, &turn);
    if (rc == 0)
        rc = same_turn(call, hand, seat, turn);
    if (rc != 0)
        return rc;
    if (!arb__poker_is_bot(call->state->seats[seat].player))
        return arb_decision_reject(call->decision, ARB_EILLEGAL_TURN, NULL, "seat %d is not a bot",
                                   (int)seat);
    if (call->state->partial)
        return unpredictable(call, "the bot's cards");
    int64_t amount = 0;
    arb__poker_action action = arb__poker_bot_choose(call->state, (int)seat, &amount);
    return make_move(call, (int)seat, action, amount);
}

static int decide_fold(poker_call *call, const json_t *args)
{
    return decide_move(call, ARB__POKER_FOLD, args);
}

static int decide_check(poker_call *call, const json_t *args)
{
    return decide_move(call, ARB__POKER_CHECK, args);
}

static int decide_call(poker_call *call, const json_t *args)
{
    return decide_move(call, ARB__POKER_CALL, args);
}

static int decide_bet(poker_call *call, const json_t *args)
{
    return decide_move(call, ARB__POKER_BET, args);
}

static int decide_raise(poker_call *call, const json_t *args)
{
    return decide_move(call, ARB__POKER_RAISE, args);
}

static int decide_all_in(poker_call *call, const json_t *args)
{
    return decide_move(call, ARB__POKER_ALL_IN, args);
}

/* The action table: what the dispatcher checks before a handler runs. */

typedef struct action_entry {
    const char *name;
    int (*decide)(poker_call *call, const json_t *args);
    bool admin;           /* admin (or system) only */
    const char *keys[10]; /* the arguments it accepts, NULL-terminated */
} action_entry;

/* The hot actions first: the lookup is a linear scan. */
static const action_entry action_table[] = {
    {"call", decide_call, false, {NULL}},
    {"check", decide_check, false, {NULL}},
    {"fold", decide_fold, false, {NULL}},
    {"raise", decide_raise, false, {"to", NULL}},
    {"bet", decide_bet, false, {"amount", NULL}},
    {"all_in", decide_all_in, false, {NULL}},
    {"sit", decide_sit, false, {"seat", "buy_in", NULL}},
    {"leave", decide_leave, false, {NULL}},
    {"sit_out", decide_sit_out, false, {NULL}},
    {"sit_in", decide_sit_in, false, {NULL}},
    {"top_up", decide_top_up, false, {"amount", NULL}},
    {"contribute", decide_contribute, false, {"value", NULL}},
    {"presence", decide_presence, true, {"player", "online", NULL}},
    {"grace_over", decide_grace_over, true, {"seat", "player", "since", NULL}},
    {"timeout", decide_timeout, true, {"hand", "seat", "turn", NULL}},
    {"bot_move", decide_bot_move, true, {"hand", "seat", "turn", NULL}},
    {"add_bot", decide_add_bot, true, {"seat", "buy_in", NULL}},
    {"remove_bot", decide_remove_bot, true, {"seat", NULL}},
    {"create_table",
     decide_create_table,
     true,
     {"table", "seats", "small_blind", "big_blind", "ante", "buy_in_min", "buy_in_max", "turn_s",
      "grace_s", NULL}},
};

static int check_keys(poker_call *call, const json_t *args, const action_entry *action)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)args, key, value) {
        bool known = false;
        for (size_t i = 0; action->keys[i] != NULL && !known; i++)
            known = strcmp(action->keys[i], key) == 0;
        if (!known)
            return reject_field(call, key, "unknown argument");
    }
    return 0;
}

static int decide_action(poker_call *call)
{
    const char *name = call->command->action;
    const json_t *args = call->command->args;
    const action_entry *action = NULL;
    for (size_t i = 0; i < sizeof action_table / sizeof action_table[0] && action == NULL; i++)
        if (strcmp(action_table[i].name, name) == 0)
            action = &action_table[i];
    if (action == NULL)
        return arb_decision_reject(call->decision, ARB_EUNKNOWN_ACTION,
                                   json_pack("{s:s}", "action", name), "no table action %s", name);
    arb_role role = call->command->principal.role;
    if (action->admin && role != ARB_ROLE_ADMIN && role != ARB_ROLE_SYSTEM)
        return arb_decision_reject(call->decision, ARB_EFORBIDDEN, NULL, "%s is for admins only",
                                   name);
    if (!json_is_object(args))
        return reject_field(call, "args", "must be an object");
    int rc = check_keys(call, args, action);
    return rc != 0 ? rc : action->decide(call, args);
}

void arb__poker_decide(const void *state, const arb_command *command, const arb_ctx *ctx,
                       arb_decision *decision)
{
    ARB_ASSERT(state != NULL && command != NULL && ctx != NULL && decision != NULL);
    ARB_ASSERT(decision->code == 0 && decision->event_count == 0);
    poker_call call = {.state = state, .command = command, .ctx = ctx, .decision = decision};
    call.work = *(const arb__poker_state *)state;
    int rc = decide_action(&call);
    ARB_ASSERT(rc != 0 || decision->event_count > 0);
    ARB_ASSERT(rc == 0 || decision->event_count == 0);
}
