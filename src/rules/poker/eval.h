/*
 * eval.h - poker hand evaluation: the best five cards of five, six or seven.
 *
 * Pure and deterministic: no I/O, no clock, no randomness. The evaluator
 * reads tables that are built once per process, on first use or by
 * arb_poker_eval_init(); after that nothing is written, so every function
 * here is safe to call from any number of threads at once.
 *
 * Cards. A card is a uint8_t in 0..51: rank * 4 + suit, with ranks 0..12
 * for 2 3 4 5 6 7 8 9 T J Q K A and suits 0..3 for c d h s (clubs,
 * diamonds, hearts, spades). Its text is two characters, the rank letter
 * then the suit letter: "As", "Td", "2c". Rank letters are read in either
 * case ("as" is "As"); suit letters only in lower case; "10" is not a rank.
 * Text is always written with an upper-case rank: "As".
 *
 * Hand ranks. An evaluation returns a rank in 1..ARB_POKER_RANKS (7462): the
 * number of distinct five-card poker hands, so rank 1 is 7-5-4-3-2 of mixed
 * suits and rank 7462 the royal flush. A higher rank is a stronger hand and
 * two hands tie exactly when their ranks are equal; suits never break a tie.
 * The rank of six or seven cards is that of the best five among them. Ranks
 * are dense and stable: each category holds one contiguous range (see
 * arb_poker_category), and the numbers will not change, so they may be
 * stored and shown.
 *
 * Preconditions (programmer errors): every card is below ARB_POKER_DECK_CARDS
 * (checked; ARB_ASSERT aborts otherwise) and the cards of one hand are
 * distinct (not checked on the hot path: a hand with a repeated card gets an
 * unspecified rank in 0..ARB_POKER_RANKS, never undefined behaviour).
 * Callers that read cards from outside use arb_poker_cards_parse, which
 * rejects repeats.
 */
#ifndef ARB_RULES_POKER_EVAL_H
#define ARB_RULES_POKER_EVAL_H

#include <stddef.h>
#include <stdint.h>

/* Bounds and sizes. To move to include/arbiter/limits.h if other modules
 * come to need them. */
#define ARB_POKER_DECK_CARDS 52
#define ARB_POKER_CARD_RANKS 13
#define ARB_POKER_CARD_SUITS 4
/* A hand is evaluated from five to seven cards (two hole cards and a board
 * of five is seven). */
#define ARB_POKER_HAND_CARDS_MIN 5
#define ARB_POKER_HAND_CARDS_MAX 7
/* The hand that counts is always five cards. */
#define ARB_POKER_BEST_CARDS 5
/* Distinct five-card hands: 1277 + 2860 + 858 + 858 + 10 + 1277 + 156 + 156 + 10. */
#define ARB_POKER_RANKS 7462
/* Bytes of a card's text with its NUL: "As". */
#define ARB_POKER_CARD_TEXT_SIZE 3

/* The nine categories, weakest first. Their order is the order of their rank
 * ranges; the values are stable and are never renumbered. */
#define ARB_POKER_CATEGORY_TABLE(X)                                                                \
    X(ARB_POKER_HIGH_CARD, "high_card", 1277)                                                      \
    X(ARB_POKER_PAIR, "pair", 2860)                                                                \
    X(ARB_POKER_TWO_PAIR, "two_pair", 858)                                                         \
    X(ARB_POKER_THREE_OF_A_KIND, "three_of_a_kind", 858)                                           \
    X(ARB_POKER_STRAIGHT, "straight", 10)                                                          \
    X(ARB_POKER_FLUSH, "flush", 1277)                                                              \
    X(ARB_POKER_FULL_HOUSE, "full_house", 156)                                                     \
    X(ARB_POKER_FOUR_OF_A_KIND, "four_of_a_kind", 156)                                             \
    X(ARB_POKER_STRAIGHT_FLUSH, "straight_flush", 10)

typedef enum arb_poker_category {
#define ARB__POKER_CATEGORY_ENUM(name, text, ranks) name,
    ARB_POKER_CATEGORY_TABLE(ARB__POKER_CATEGORY_ENUM)
#undef ARB__POKER_CATEGORY_ENUM
        ARB_POKER_CATEGORY_COUNT
} arb_poker_category;

/* Cards. */

static inline uint8_t arb_poker_card_make(unsigned rank, unsigned suit)
{
    return (uint8_t)(rank * ARB_POKER_CARD_SUITS + suit);
}

static inline unsigned arb_poker_card_rank(uint8_t card)
{
    return card / ARB_POKER_CARD_SUITS;
}

static inline unsigned arb_poker_card_suit(uint8_t card)
{
    return card % ARB_POKER_CARD_SUITS;
}

/* Read the card named by the NUL-terminated text (exactly two characters,
 * see the notation above) into *card_out. 0, or ARB_EMALFORMED for anything
 * else (NULL, empty, "1s", "Ax", "AsKs", "10s", "AS"); *card_out is then
 * untouched. */
int arb_poker_card_parse(const char *text, uint8_t *card_out);

/* Write the card's text, "As" and a NUL, into out. card < 52. */
void arb_poker_card_format(uint8_t card, char out[ARB_POKER_CARD_TEXT_SIZE]);

/* Read cards separated by spaces or tabs ("As Kd Qh", leading and trailing
 * blanks allowed) into cards_out[0..cards_max) and their number into
 * *count_out. 0 on success, which includes no cards at all; the caller
 * checks the count it needs. ARB_EMALFORMED when a word is not a card,
 * ARB_EINVALID_ARGUMENT when a card appears twice or there are more than
 * cards_max. On failure *count_out and cards_out hold nothing useful. */
int arb_poker_cards_parse(const char *text, uint8_t *cards_out, size_t cards_max,
                          size_t *count_out);

/* Evaluation. */

/* Build the tables now (about 210 KiB of static storage, some 30 ms, once
 * per process; later calls return at once). Optional: the evaluators build
 * them on first use, so a server calls it at start-up only to keep that
 * cost off its first hand. Safe from any thread. Aborts if the scratch
 * memory of the build (about 1 MiB, freed before it returns) cannot be had,
 * as nothing can be ranked without the tables. */
void arb_poker_eval_init(void);

/* The rank (1..7462) of the five, six or seven cards at cards. */
uint32_t arb_poker_eval5(const uint8_t cards[5]);
uint32_t arb_poker_eval6(const uint8_t cards[6]);
uint32_t arb_poker_eval7(const uint8_t cards[7]);
/* The same for count in ARB_POKER_HAND_CARDS_MIN..MAX (asserted). */
uint32_t arb_poker_eval(const uint8_t *cards, size_t count);

/* The five of the count (5..7) cards that make their rank, which it returns,
 * written to best_out in the order a player reads them: the larger group
 * first, then higher ranks first (K K K 9 9, Q Q 8 8 A, 7 7 A J 4), a
 * straight from its top card down with the wheel's ace last (5 4 3 2 A).
 * When several choices of five make the same rank, the choice is the same
 * whatever the order of the input: among equal ranks the cards with the
 * higher suit (s over h over d over c) are taken. Not for the hot path: it
 * evaluates every subset of five. */
uint32_t arb_poker_best_five(const uint8_t *cards, size_t count,
                             uint8_t best_out[ARB_POKER_BEST_CARDS]);

/* The category of a rank in 1..7462 (asserted), and its name ("high_card",
 * ..., "straight_flush"; static storage). */
arb_poker_category arb_poker_category_of(uint32_t rank);
const char *arb_poker_category_name(arb_poker_category category);

#endif
