/*
 * poker_check.c - check: the table's invariants, verified from scratch.
 *
 *   - chips: every stack, bet and the pot are >= 0, and stacks + bets + pot
 *     == chips_in - chips_out (chips are neither created nor lost); during
 *     a hand the dealt seats' commitments sum to pot + bets + awarded;
 *   - seats: an occupied seat has a player, no player sits twice, a free
 *     seat holds no chips; outside a hand no seat is in one and nothing is
 *     bet;
 *   - the hand: its dealt seats number dealt_count >= 2, the board has the
 *     street's count of cards, no bet is past the bet to call, there is a
 *     seat to act (an open one) exactly while the blinds are in and the
 *     round is open, every known card (hole cards, board) appears once;
 *   - entropy: the next hand is committed from the first hand on, the
 *     server holding its seed; a seat contributes once a hand.
 *
 * On a partial state the same holds (unknown cards are simply not known).
 * Returns 0, or ARB_ECORRUPT with the first broken invariant in why.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rules/poker/poker_internal.h"

static int check_seats(const arb__poker_state *state, char *why, size_t why_size)
{
    const arb__poker_config *c = &state->config;
    for (int i = 0; i < c->seat_count; i++) {
        const arb__poker_seat *s = &state->seats[i];
        if (s->stack < 0 || s->bet < 0 || s->committed < 0)
            return arb__rules_corrupt(why, why_size, "seat %d holds negative chips", i);
        if (s->occupied != (s->player[0] != '\0'))
            return arb__rules_corrupt(why, why_size, "seat %d: occupied but no player", i);
        if (!s->occupied && (s->stack != 0 || s->sitting_out || s->away_since != 0))
            return arb__rules_corrupt(why, why_size, "free seat %d holds a stack", i);
        for (int j = 0; s->occupied && j < i; j++)
            if (state->seats[j].occupied && strcmp(state->seats[j].player, s->player) == 0)
                return arb__rules_corrupt(why, why_size, "player %s sits twice", s->player);
        if (!state->hand_active && (s->in_hand || s->bet != 0 || s->committed != 0))
            return arb__rules_corrupt(why, why_size, "seat %d is in a hand between hands", i);
        if (!s->in_hand && (s->bet != 0 || s->committed != 0 || s->folded || s->all_in))
            return arb__rules_corrupt(why, why_size, "seat %d bets outside the hand", i);
        /* Once pots are paid an all-in seat may hold chips again. */
        if (s->in_hand && !s->folded && s->all_in != (s->stack == 0) &&
            (state->awarded == 0 || !s->all_in))
            return arb__rules_corrupt(why, why_size, "seat %d: all_in does not fit its stack", i);
        if (s->in_hand && !s->folded && !s->occupied)
            return arb__rules_corrupt(why, why_size, "seat %d is live but empty", i);
    }
    for (int i = c->seat_count; i < ARB_POKER_SEATS_MAX; i++)
        if (state->seats[i].occupied || state->seats[i].in_hand)
            return arb__rules_corrupt(why, why_size, "seat %d is past the table's seats", i);
    return 0;
}

static int check_chips(const arb__poker_state *state, char *why, size_t why_size)
{
    int64_t on_table = state->pot, bets = 0, committed = 0;
    for (int i = 0; i < state->config.seat_count; i++) {
        on_table += state->seats[i].stack + state->seats[i].bet;
        bets += state->seats[i].bet;
        committed += state->seats[i].committed;
    }
    if (state->pot < 0 || state->awarded < 0 || state->chips_out < 0 ||
        state->chips_in < state->chips_out || state->chips_in > ARB_JSON_INT_MAX)
        return arb__rules_corrupt(why, why_size, "chip counters out of range");
    if (on_table != state->chips_in - state->chips_out)
        return arb__rules_corrupt(why, why_size,
                                  "chips on the table %" PRId64 " != bought in %" PRId64
                                  " - taken away %" PRId64,
                                  on_table, state->chips_in, state->chips_out);
    if (state->hand_active && committed != state->pot + bets + state->awarded)
        return arb__rules_corrupt(why, why_size,
                                  "committed %" PRId64 " != pot + bets + awarded %" PRId64,
                                  committed, state->pot + bets + state->awarded);
    if (!state->hand_active && (state->pot != 0 || bets != 0))
        return arb__rules_corrupt(why, why_size, "chips in the pot between hands");
    return 0;
}

static int check_cards(const arb__poker_state *state, char *why, size_t why_size)
{
    bool seen[ARB_POKER_DECK_CARDS] = {false};
    for (int b = 0; b < state->board_count; b++) {
        if (state->board[b] >= ARB_POKER_DECK_CARDS || seen[state->board[b]])
            return arb__rules_corrupt(why, why_size, "board card %d repeated", b);
        seen[state->board[b]] = true;
    }
    for (int i = 0; state->hand_active && i < state->config.seat_count; i++) {
        const arb__poker_seat *s = &state->seats[i];
        if (!s->in_hand || !s->cards_known)
            continue;
        for (int k = 0; k < ARB__POKER_HOLE_CARDS; k++) {
            if (s->cards[k] >= ARB_POKER_DECK_CARDS || seen[s->cards[k]])
                return arb__rules_corrupt(why, why_size, "seat %d holds a card twice dealt", i);
            seen[s->cards[k]] = true;
        }
    }
    if (state->deck_known) {
        bool in_deck[ARB_POKER_DECK_CARDS] = {false};
        for (int k = 0; k < ARB_POKER_DECK_CARDS; k++) {
            if (state->deck[k] >= ARB_POKER_DECK_CARDS || in_deck[state->deck[k]])
                return arb__rules_corrupt(why, why_size, "the deck repeats a card");
            in_deck[state->deck[k]] = true;
        }
    }
    return 0;
}

static int check_hand(const arb__poker_state *state, char *why, size_t why_size)
{
    static const int board_cards[] = {0, 3, 4, 5};
    if (!state->hand_active)
        return state->to_act == -1 && state->turn_seq == 0 && state->turn_deadline_ms == 0 &&
                       state->clock_seat == -1
                   ? 0
                   : arb__rules_corrupt(why, why_size, "a turn between hands");
    int dealt = arb__poker_count(state, arb__poker_is_dealt);
    if (dealt != state->dealt_count || dealt < 2)
        return arb__rules_corrupt(why, why_size, "%d seats dealt, %d counted", dealt,
                                  state->dealt_count);
    if ((unsigned)state->street > ARB__POKER_RIVER ||
        state->board_count != board_cards[state->street])
        return arb__rules_corrupt(why, why_size, "the board does not fit the street");
    if (state->button < 0 || state->button >= state->config.seat_count || state->posted < 0 ||
        state->posted > 2 || state->min_raise < state->config.big_blind || state->current_bet < 0)
        return arb__rules_corrupt(why, why_size, "the hand's counters are out of range");
    if (state->to_act != -1 && (state->to_act < 0 || state->to_act >= state->config.seat_count ||
                                !arb__poker_is_open(&state->seats[state->to_act])))
        return arb__rules_corrupt(why, why_size, "the seat to act cannot act");
    /* The bet to call is set when the big blind is in, and nobody has bet
     * past it (a returned bet only lowers one). */
    for (int i = 0; i < state->config.seat_count; i++)
        if (state->posted < 2 ? state->current_bet != 0 : state->seats[i].bet > state->current_bet)
            return arb__rules_corrupt(why, why_size, "seat %d bets past the bet to call", i);
    /* Nobody acts before both blinds are in (the dealer posts them in the
     * decision that starts the hand); after, a turn exactly while the
     * round is open. */
    if (state->posted < 2 ? state->to_act != -1
                          : (state->to_act == -1) != arb__poker_round_complete(state))
        return arb__rules_corrupt(why, why_size, "the turn does not fit the round");
    /* The clock runs exactly while someone is to act; it plays for that
     * seat only. */
    if ((state->to_act >= 0) != (state->turn_seq > 0) ||
        (state->to_act < 0 && state->turn_deadline_ms != 0) ||
        (state->clock_seat != -1 && state->clock_seat != state->to_act))
        return arb__rules_corrupt(why, why_size, "the turn clock does not fit the turn");
    if (!state->partial && (!state->deck_known || !state->seed_known))
        return arb__rules_corrupt(why, why_size, "the server's state lacks the deck");
    return 0;
}

/* Entropy: the next hand is committed from the first hand on (and the
 * server holds its seed); contributions come only after that, one a seat. */
static int check_entropy(const arb__poker_state *state, char *why, size_t why_size)
{
    int contributed = 0;
    for (int i = 0; i < state->config.seat_count; i++)
        contributed += state->seats[i].contributed ? 1 : 0;
    if (state->next_committed != (state->hands > 0) ||
        (state->next_committed && !state->partial && !state->next_seed_known) ||
        (!state->next_committed && state->next_seed_known) || state->entropy_count < 0 ||
        contributed > state->entropy_count || (state->hand_entropy_used && state->hands == 0))
        return arb__rules_corrupt(why, why_size, "the entropy does not fit the hands");
    /* The server's next seed makes the published commitment (the stream is
     * table:NAME, as create_table requires). */
    if (state->next_seed_known) {
        char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
        uint8_t commitment[ARB__POKER_COMMITMENT_BYTES];
        snprintf(stream, sizeof stream, "table:%s", state->config.table);
        arb__poker_commitment(stream, state->hands + 1, state->next_seed, commitment);
        if (memcmp(commitment, state->next_commitment, sizeof commitment) != 0)
            return arb__rules_corrupt(why, why_size, "the next seed does not make its commitment");
    }
    return 0;
}

int arb__poker_check(const void *state_void, char *why, size_t why_size)
{
    const arb__poker_state *state = state_void;
    ARB_ASSERT(state != NULL);
    if (!state->created) {
        for (int i = 0; i < ARB_POKER_SEATS_MAX; i++)
            if (state->seats[i].occupied)
                return arb__rules_corrupt(why, why_size, "seated at a table not created");
        if (state->chips_in != 0 || state->hand_active)
            return arb__rules_corrupt(why, why_size, "chips at a table not created");
        return 0;
    }
    const arb__poker_config *c = &state->config;
    if (c->seat_count < ARB_POKER_SEATS_MIN || c->seat_count > ARB_POKER_SEATS_MAX ||
        c->small_blind < 1 || c->big_blind < c->small_blind || c->ante < 0 || c->buy_in_min < 1 ||
        c->buy_in_max < c->buy_in_min)
        return arb__rules_corrupt(why, why_size, "the table's configuration is out of range");
    int rc = check_seats(state, why, why_size);
    if (rc == 0)
        rc = check_chips(state, why, why_size);
    if (rc == 0)
        rc = check_cards(state, why, why_size);
    if (rc == 0)
        rc = check_hand(state, why, why_size);
    if (rc == 0)
        rc = check_entropy(state, why, why_size);
    return rc;
}
