/*
 * poker_play.c - the rules of play of No-Limit Hold'em, as pure functions
 * of the table's state: whose turn it is, which moves are legal and what
 * they do, when a betting round is over, the uncalled bet, the deck and the
 * commitment of provable fairness.
 *
 * decide (to judge a command and to run the dealer) and evolve (to apply
 * and re-check an event) both call these, so a move is judged one way.
 *
 * Betting (docs/poker.md, "Betting"): a seat "needs to act" when it is open
 * (in the hand, not folded, not all in) and either has not acted since the
 * last full bet or raise, or has less in front of it than the bet to call.
 * A full bet or raise (at least min_raise more than the bet to call) makes
 * min_raise its size and reopens the betting to every other open seat; a
 * short all-in raise makes the others call again but does not let those who
 * already acted raise (may_raise stays false for them).
 */
#include <string.h>

#include <sodium.h>

#include "rules/poker/poker_internal.h"

static const char *const action_names[ARB__POKER_ACTION_COUNT] = {
    [ARB__POKER_FOLD] = "fold", [ARB__POKER_CHECK] = "check", [ARB__POKER_CALL] = "call",
    [ARB__POKER_BET] = "bet",   [ARB__POKER_RAISE] = "raise", [ARB__POKER_ALL_IN] = "all_in",
};

const char *arb__poker_action_name(arb__poker_action action)
{
    ARB_ASSERT((unsigned)action < ARB__POKER_ACTION_COUNT);
    return action_names[action];
}

bool arb__poker_action_from_name(const char *name, arb__poker_action *action_out)
{
    for (int i = 0; i < ARB__POKER_ACTION_COUNT; i++) {
        if (strcmp(action_names[i], name) == 0) {
            *action_out = (arb__poker_action)i;
            return true;
        }
    }
    return false;
}

const char *arb__poker_street_name(arb__poker_street street)
{
    static const char *const names[] = {"preflop", "flop", "turn", "river"};
    ARB_ASSERT((unsigned)street <= ARB__POKER_RIVER);
    return names[street];
}

/* Seats. */

bool arb__poker_is_active(const arb__poker_seat *seat)
{
    return seat->occupied && !seat->sitting_out && seat->stack > 0;
}

bool arb__poker_is_dealt(const arb__poker_seat *seat)
{
    return seat->in_hand;
}

bool arb__poker_is_live(const arb__poker_seat *seat)
{
    return seat->in_hand && !seat->folded;
}

bool arb__poker_is_open(const arb__poker_seat *seat)
{
    return seat->in_hand && !seat->folded && !seat->all_in;
}

int arb__poker_next_seat(const arb__poker_state *state, int from,
                         bool (*want)(const arb__poker_seat *seat))
{
    int count = state->config.seat_count;
    ARB_ASSERT(count >= ARB_POKER_SEATS_MIN && count <= ARB_POKER_SEATS_MAX);
    ARB_ASSERT(from >= -1 && from < count);
    for (int step = 1; step <= count; step++) {
        int seat = (from + step + count) % count;
        if (want(&state->seats[seat]))
            return seat;
    }
    return -1;
}

int arb__poker_count(const arb__poker_state *state, bool (*want)(const arb__poker_seat *seat))
{
    int count = 0;
    for (int i = 0; i < state->config.seat_count; i++)
        count += want(&state->seats[i]) ? 1 : 0;
    return count;
}

int arb__poker_seat_of(const arb__poker_state *state, const char *player)
{
    for (int i = 0; i < state->config.seat_count; i++)
        if (state->seats[i].occupied && strcmp(state->seats[i].player, player) == 0)
            return i;
    return -1;
}

int arb__poker_deal_order(const arb__poker_state *state, int order_out[ARB_POKER_SEATS_MAX])
{
    int count = 0;
    int seat = state->button;
    for (int i = 0; i < state->config.seat_count; i++) {
        seat = (seat + 1) % state->config.seat_count;
        if (state->seats[seat].in_hand)
            order_out[count++] = seat;
    }
    return count;
}

/* Rounds and turns. */

static bool needs_action(const arb__poker_state *state, const arb__poker_seat *seat)
{
    return arb__poker_is_open(seat) && (!seat->acted || seat->bet < state->current_bet);
}

bool arb__poker_round_complete(const arb__poker_state *state)
{
    if (!state->hand_active || state->posted < 2)
        return false;
    int live = arb__poker_count(state, arb__poker_is_live);
    int open = arb__poker_count(state, arb__poker_is_open);
    if (live <= 1 || open == 0)
        return true;
    if (open == 1) {
        /* Nobody left to bet against: the open seat only has to match the
         * others' bets (which may be short of the bet to call). */
        int64_t others = 0;
        const arb__poker_seat *last = NULL;
        for (int i = 0; i < state->config.seat_count; i++) {
            const arb__poker_seat *seat = &state->seats[i];
            if (arb__poker_is_open(seat))
                last = seat;
            else if (arb__poker_is_live(seat) && seat->bet > others)
                others = seat->bet;
        }
        ARB_ASSERT(last != NULL);
        return last->bet >= others;
    }
    for (int i = 0; i < state->config.seat_count; i++)
        if (needs_action(state, &state->seats[i]))
            return false;
    return true;
}

void arb__poker_update_turn(arb__poker_state *state, int from)
{
    state->to_act = -1;
    if (arb__poker_round_complete(state))
        return;
    int count = state->config.seat_count;
    for (int step = 1; step <= count; step++) {
        int seat = (from + step + count) % count;
        if (needs_action(state, &state->seats[seat])) {
            state->to_act = seat;
            return;
        }
    }
}

/* Moves. */

/* Whether another live seat could still answer a bet (is open). */
static bool someone_can_answer(const arb__poker_state *state, int seat)
{
    for (int i = 0; i < state->config.seat_count; i++)
        if (i != seat && arb__poker_is_open(&state->seats[i]))
            return true;
    return false;
}

/* A bet or raise to `to`, all of the stack when all_in. */
static int resolve_raise(const arb__poker_state *state, const arb__poker_seat *seat, int64_t to,
                         bool all_in)
{
    if (!seat->may_raise || !someone_can_answer(state, (int)(seat - state->seats)))
        return ARB_EILLEGAL_ACTION;
    if (to - seat->bet > seat->stack)
        return ARB_EINSUFFICIENT_STACK;
    bool whole_stack = to - seat->bet == seat->stack;
    if (to <= state->current_bet)
        return ARB_EBELOW_MIN_RAISE;
    if (to - state->current_bet < state->min_raise && !whole_stack && !all_in)
        return ARB_EBELOW_MIN_RAISE;
    return 0;
}

int arb__poker_move_resolve(const arb__poker_state *state, int seat_index, arb__poker_action action,
                            int64_t amount, arb__poker_move *move_out)
{
    ARB_ASSERT(seat_index >= 0 && seat_index < state->config.seat_count);
    const arb__poker_seat *seat = &state->seats[seat_index];
    ARB_ASSERT(arb__poker_is_open(seat));
    int64_t to_call = state->current_bet > seat->bet ? state->current_bet - seat->bet : 0;
    int rc = 0;
    move_out->chips = 0;
    move_out->to = seat->bet;
    switch (action) {
    case ARB__POKER_FOLD:
        break;
    case ARB__POKER_CHECK:
        if (to_call != 0)
            rc = ARB_EILLEGAL_ACTION;
        break;
    case ARB__POKER_CALL:
        if (to_call == 0)
            rc = ARB_EILLEGAL_ACTION;
        move_out->chips = to_call < seat->stack ? to_call : seat->stack;
        break;
    case ARB__POKER_BET:
        if (state->current_bet != 0 || amount <= 0)
            rc = ARB_EILLEGAL_ACTION;
        else
            rc = resolve_raise(state, seat, amount, false);
        move_out->chips = amount - seat->bet;
        break;
    case ARB__POKER_RAISE:
        if (state->current_bet == 0 || amount <= 0)
            rc = ARB_EILLEGAL_ACTION;
        else
            rc = resolve_raise(state, seat, amount, false);
        move_out->chips = amount - seat->bet;
        break;
    case ARB__POKER_ALL_IN:
        move_out->chips = seat->stack;
        if (seat->bet + seat->stack > state->current_bet)
            rc = resolve_raise(state, seat, seat->bet + seat->stack, true);
        break;
    default:
        ARB_ASSERT(!"unknown action");
    }
    if (rc != 0)
        return rc;
    move_out->to = seat->bet + move_out->chips;
    ARB_ASSERT(move_out->chips >= 0 && move_out->chips <= seat->stack);
    return 0;
}

void arb__poker_move_apply(arb__poker_state *state, int seat_index, arb__poker_action action,
                           const arb__poker_move *move)
{
    arb__poker_seat *seat = &state->seats[seat_index];
    ARB_ASSERT(state->to_act == seat_index && arb__poker_is_open(seat));
    ARB_ASSERT(move->chips >= 0 && move->chips <= seat->stack &&
               move->to == seat->bet + move->chips);
    seat->stack -= move->chips;
    seat->bet = move->to;
    seat->committed += move->chips;
    seat->all_in = seat->stack == 0;
    seat->folded = action == ARB__POKER_FOLD;
    seat->acted = true;
    seat->may_raise = false;
    if (move->to > state->current_bet) {
        int64_t raise = move->to - state->current_bet;
        bool full = raise >= state->min_raise;
        if (full)
            state->min_raise = raise;
        for (int i = 0; i < state->config.seat_count; i++) {
            arb__poker_seat *other = &state->seats[i];
            if (i == seat_index || !arb__poker_is_open(other))
                continue;
            other->acted = false;
            if (full)
                other->may_raise = true;
        }
        state->current_bet = move->to;
        state->last_aggressor = seat_index;
    }
    arb__poker_update_turn(state, seat_index);
}

int64_t arb__poker_uncalled(const arb__poker_state *state, int *seat_out)
{
    int top = -1;
    int64_t top_bet = 0, second = 0;
    for (int i = 0; i < state->config.seat_count; i++) {
        const arb__poker_seat *seat = &state->seats[i];
        if (!seat->in_hand)
            continue;
        if (seat->bet > top_bet) {
            second = top_bet;
            top_bet = seat->bet;
            top = i;
        } else if (seat->bet > second) {
            second = seat->bet;
        }
    }
    *seat_out = top;
    return top < 0 ? 0 : top_bet - second;
}

void arb__poker_collect_bets(arb__poker_state *state)
{
    for (int i = 0; i < state->config.seat_count; i++) {
        arb__poker_seat *seat = &state->seats[i];
        state->pot += seat->bet;
        seat->bet = 0;
        seat->acted = false;
        seat->may_raise = arb__poker_is_open(seat);
    }
    state->current_bet = 0;
    state->min_raise = state->config.big_blind;
    state->last_aggressor = -1;
}

/* The deck and fairness. */

int arb__poker_board_index(int dealt_count, int board_card)
{
    static const int offset[ARB__POKER_BOARD_CARDS] = {1, 2, 3, 5, 7};
    ARB_ASSERT(board_card >= 0 && board_card < ARB__POKER_BOARD_CARDS);
    ARB_ASSERT(dealt_count >= ARB_POKER_SEATS_MIN && dealt_count <= ARB_POKER_SEATS_MAX);
    return 2 * dealt_count + offset[board_card];
}

static const char deck_label[] = "arbiter/poker/deck/v1";
static const char commit_label[] = "arbiter/poker/commit/v1";

static void put_u64_be(uint8_t out[8], uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)value;
        value >>= 8;
    }
}

/* A stream of 64-byte blocks: block c = BLAKE2b-512(key = seed, label ||
 * 0x00 || c as 8 bytes big-endian). */
typedef struct deck_stream {
    const uint8_t *seed;
    uint64_t counter;
    uint8_t block[64];
    size_t used;
} deck_stream;

static uint32_t next_u32(deck_stream *stream)
{
    if (stream->used + 4 > sizeof stream->block) {
        uint8_t message[sizeof deck_label + 8];
        memcpy(message, deck_label, sizeof deck_label); /* with its NUL as the 0x00 */
        put_u64_be(message + sizeof deck_label, stream->counter++);
        int rc = crypto_generichash(stream->block, sizeof stream->block, message, sizeof message,
                                    stream->seed, ARB_POKER_SEED_BYTES);
        ARB_ASSERT(rc == 0);
        stream->used = 0;
    }
    const uint8_t *b = stream->block + stream->used;
    stream->used += 4;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

void arb__poker_deck_from_seed(const uint8_t seed[ARB_POKER_SEED_BYTES],
                               uint8_t deck_out[ARB_POKER_DECK_CARDS])
{
    deck_stream stream = {.seed = seed, .counter = 0, .used = sizeof stream.block};
    for (int i = 0; i < ARB_POKER_DECK_CARDS; i++)
        deck_out[i] = (uint8_t)i;
    /* Fisher-Yates from the top; rejection sampling keeps j uniform. */
    for (uint32_t i = ARB_POKER_DECK_CARDS - 1; i > 0; i--) {
        uint32_t bound = i + 1;
        uint64_t limit = (UINT64_C(1) << 32) - ((UINT64_C(1) << 32) % bound);
        uint32_t sample;
        /* Bounded: a rejection has probability below 2^-26 per draw. */
        for (int tries = 0;; tries++) {
            ARB_ASSERT(tries < 1000);
            sample = next_u32(&stream);
            if (sample < limit)
                break;
        }
        uint32_t j = sample % bound;
        uint8_t card = deck_out[i];
        deck_out[i] = deck_out[j];
        deck_out[j] = card;
    }
}

/* BLAKE2b-256 of a label (with its 0x00) and two 32-byte values. */
static void hash_labelled(const char *label, const uint8_t *a, const uint8_t *b,
                          uint8_t out[ARB_POKER_SEED_BYTES])
{
    crypto_generichash_state hash;
    crypto_generichash_init(&hash, NULL, 0, ARB_POKER_SEED_BYTES);
    crypto_generichash_update(&hash, (const unsigned char *)label, strlen(label) + 1);
    crypto_generichash_update(&hash, a, ARB_POKER_SEED_BYTES);
    crypto_generichash_update(&hash, b, ARB_POKER_SEED_BYTES);
    crypto_generichash_final(&hash, out, ARB_POKER_SEED_BYTES);
}

void arb__poker_deck_seed(const uint8_t seed[ARB_POKER_SEED_BYTES], const uint8_t *entropy,
                          uint8_t out[ARB_POKER_SEED_BYTES])
{
    if (entropy == NULL)
        memmove(out, seed, ARB_POKER_SEED_BYTES);
    else
        hash_labelled("arbiter/poker/mix/v1", seed, entropy, out);
}

void arb__poker_entropy_mix(uint8_t entropy[ARB_POKER_SEED_BYTES],
                            const uint8_t value[ARB_POKER_SEED_BYTES])
{
    uint8_t before[ARB_POKER_SEED_BYTES];
    memcpy(before, entropy, sizeof before);
    hash_labelled("arbiter/poker/entropy/v1", before, value, entropy);
}

void arb__poker_commitment(const char *stream, uint64_t hand,
                           const uint8_t seed[ARB_POKER_SEED_BYTES],
                           uint8_t commitment_out[ARB__POKER_COMMITMENT_BYTES])
{
    crypto_generichash_state hash;
    uint8_t number[8];
    put_u64_be(number, hand);
    int rc = crypto_generichash_init(&hash, NULL, 0, ARB__POKER_COMMITMENT_BYTES);
    rc |= crypto_generichash_update(&hash, (const uint8_t *)commit_label, sizeof commit_label);
    rc |= crypto_generichash_update(&hash, (const uint8_t *)stream, strlen(stream) + 1);
    rc |= crypto_generichash_update(&hash, number, sizeof number);
    rc |= crypto_generichash_update(&hash, seed, ARB_POKER_SEED_BYTES);
    rc |= crypto_generichash_final(&hash, commitment_out, ARB__POKER_COMMITMENT_BYTES);
    ARB_ASSERT(rc == 0);
}

void arb__poker_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool arb__poker_unhex(const char *text, uint8_t *bytes, size_t len)
{
    if (text == NULL || strlen(text) != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        int high = hex_digit(text[2 * i]), low = hex_digit(text[2 * i + 1]);
        if (high < 0 || low < 0)
            return false;
        bytes[i] = (uint8_t)(high << 4 | low);
    }
    return true;
}

bool arb__poker_json_cards(const json_t *array, size_t count, uint8_t *cards)
{
    if (!json_is_array(array) || json_array_size(array) != count)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (arb_poker_card_parse(json_string_value(json_array_get(array, i)), &cards[i]) != 0)
            return false;
        for (size_t j = 0; j < i; j++)
            if (cards[j] == cards[i])
                return false;
    }
    return true;
}

json_t *arb__poker_cards_json(const uint8_t *cards, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++) {
        char text[ARB_POKER_CARD_TEXT_SIZE];
        arb_poker_card_format(cards[i], text);
        if (json_array_append_new(array, json_string(text)) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    return array;
}
