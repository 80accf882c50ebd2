/*
 * poker_bot.c - the server's own players: simple, legal, quick.
 *
 * A bot is a seat whose player is named "bot.<seat>": add_bot (admin) seats
 * one, remove_bot takes it away, and no client may sit under such a name
 * (sit refuses it), so the name is the mark. When a bot is given the turn,
 * evolve reports a bot_move timer ARB_POKER_BOT_DELAY_MS after the turn
 * began (poker.c), and the engine proposes it as the system, like the turn
 * clock's timeout; decide then plays the move chosen here. So a bot's moves
 * are proposals in the log like anyone's, and a table with one human and
 * bots plays on by itself.
 *
 * The play, from the bot's own cards and the board only (never another
 * player's cards, never the deck), with no randomness, so replaying the
 * log needs nothing but the log:
 *
 *   strength  before the flop, from the hole cards: a pair, or two cards
 *             of ten or better, is strong; an ace, or suited or connected
 *             cards, is playable; the rest weak. After the flop, from the
 *             rank of the best five: two pair or better strong, a pair
 *             playable, the rest weak.
 *   action    strong: bet the minimum, or raise the minimum when nobody
 *             has raised the round yet (so two bots never raise each other
 *             chip by chip), else call; playable: check, or call up to a
 *             tenth of its chips; weak: check, else fold.
 *
 * The choice is always checked with arb__poker_move_resolve, and falls back
 * to check, then call, then fold, so a bot never makes an illegal move.
 */
#include <string.h>

#include "rules/poker/poker_internal.h"

#define BOT_PREFIX "bot."

typedef enum strength { WEAK, PLAYABLE, STRONG } strength;

bool arb__poker_is_bot(const char *player)
{
    return strncmp(player, BOT_PREFIX, sizeof BOT_PREFIX - 1) == 0;
}

void arb__poker_bot_name(int seat, char out[ARB__POKER_BOT_NAME_SIZE])
{
    snprintf(out, ARB__POKER_BOT_NAME_SIZE, BOT_PREFIX "%d", seat);
}

static strength preflop_strength(const uint8_t cards[ARB__POKER_HOLE_CARDS])
{
    unsigned a = arb_poker_card_rank(cards[0]), b = arb_poker_card_rank(cards[1]);
    unsigned high = a > b ? a : b, low = a > b ? b : a;
    /* Ranks count 0 (deuce) to 12 (ace); a ten is 8. */
    if (a == b || low >= 8)
        return STRONG;
    bool suited = arb_poker_card_suit(cards[0]) == arb_poker_card_suit(cards[1]);
    if (high == 12 || suited || high - low == 1)
        return PLAYABLE;
    return WEAK;
}

static strength made_strength(const arb__poker_state *state, const arb__poker_seat *s)
{
    uint8_t cards[ARB__POKER_HOLE_CARDS + ARB__POKER_BOARD_CARDS];
    memcpy(cards, s->cards, ARB__POKER_HOLE_CARDS);
    memcpy(cards + ARB__POKER_HOLE_CARDS, state->board, (size_t)state->board_count);
    uint32_t rank = arb_poker_eval(cards, ARB__POKER_HOLE_CARDS + (size_t)state->board_count);
    arb_poker_category category = arb_poker_category_of(rank);
    if (category >= ARB_POKER_TWO_PAIR)
        return STRONG;
    return category == ARB_POKER_PAIR ? PLAYABLE : WEAK;
}

/* Whether action (with amount) is legal for seat now. */
static bool legal(const arb__poker_state *state, int seat, arb__poker_action action, int64_t amount)
{
    arb__poker_move move;
    return arb__poker_move_resolve(state, seat, action, amount, &move) == 0;
}

arb__poker_action arb__poker_bot_choose(const arb__poker_state *state, int seat,
                                        int64_t *amount_out)
{
    ARB_ASSERT(state->hand_active && state->to_act == seat && !state->partial);
    const arb__poker_seat *s = &state->seats[seat];
    ARB_ASSERT(s->cards_known);
    strength hand = state->board_count == 0 ? preflop_strength(s->cards) : made_strength(state, s);
    int64_t to_call = state->current_bet - s->bet;
    *amount_out = 0;
    if (hand == STRONG) {
        int64_t raise_to = state->current_bet + state->min_raise;
        if (state->current_bet == 0 && legal(state, seat, ARB__POKER_BET, state->min_raise)) {
            *amount_out = state->min_raise;
            return ARB__POKER_BET;
        }
        /* One raise a round at most (the first over the blind), so two bots
         * never raise each other by the minimum chip by chip. */
        if (state->current_bet > 0 && state->current_bet <= state->config.big_blind &&
            legal(state, seat, ARB__POKER_RAISE, raise_to)) {
            *amount_out = raise_to;
            return ARB__POKER_RAISE;
        }
    }
    if (legal(state, seat, ARB__POKER_CHECK, 0))
        return ARB__POKER_CHECK;
    bool cheap = to_call * 10 <= s->stack + s->bet;
    if ((hand == STRONG || (hand == PLAYABLE && cheap)) && legal(state, seat, ARB__POKER_CALL, 0))
        return ARB__POKER_CALL;
    /* Facing a bet it cannot call but may go all in for less: do it only
     * when strong. */
    if (hand == STRONG && legal(state, seat, ARB__POKER_ALL_IN, 0))
        return ARB__POKER_ALL_IN;
    return ARB__POKER_FOLD;
}
