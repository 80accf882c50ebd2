/*
 * poker_cards_fuzz.c - fuzz target for the card readers and the hand
 * evaluator: arb_poker_card_parse, arb_poker_cards_parse, arb_poker_eval
 * and arb_poker_best_five (src/rules/poker/eval.h).
 *
 * Input: any bytes, read as text (a NUL-terminated copy of at most
 * POKER_CARDS_FUZZ_TEXT_MAX bytes; an embedded NUL ends the text there, as
 * it would for any C caller). Properties:
 *   - card_parse accepts exactly two characters, a rank letter (either case)
 *     and a lower-case suit; card_format gives them back with the rank in
 *     upper case; a refusal is ARB_EMALFORMED and leaves *card_out alone;
 *   - cards_parse with room for 7 and with room for the whole deck: on
 *     success every card is below 52 and they are distinct, and formatting
 *     them joined by single spaces parses back to the same cards; a
 *     refusal is ARB_EMALFORMED or ARB_EINVALID_ARGUMENT; the two readers
 *     agree whenever at most 7 cards are read;
 *   - with 5 to 7 cards: eval's rank is in 1..7462 and equals eval5/6/7's;
 *     best_five returns the same rank, its five cards are distinct and all
 *     from the input, eval5 of them is that rank again, and the input in
 *     reverse order gives the same rank and the same five cards.
 */
#include <stdio.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "fuzz.h"
#include "rules/poker/eval.h"

/* Longer than any meaningful list of cards (52 cards take 155 bytes). */
#define POKER_CARDS_FUZZ_TEXT_MAX 512

static bool poker_cards_fuzz_is_rank(char c)
{
    return c != '\0' && strchr("23456789TJQKAtjqka", c) != NULL;
}

static bool poker_cards_fuzz_is_suit(char c)
{
    return c != '\0' && strchr("cdhs", c) != NULL;
}

static char poker_cards_fuzz_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static void poker_cards_fuzz_one(const char *text)
{
    uint8_t card = 0xee;
    int rc = arb_poker_card_parse(text, &card);
    bool well_formed =
        strlen(text) == 2 && poker_cards_fuzz_is_rank(text[0]) && poker_cards_fuzz_is_suit(text[1]);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_EMALFORMED && card == 0xee && !well_formed);
        return;
    }
    ARB_ASSERT(well_formed && card < ARB_POKER_DECK_CARDS);
    char out[ARB_POKER_CARD_TEXT_SIZE];
    arb_poker_card_format(card, out);
    ARB_ASSERT(out[0] == poker_cards_fuzz_upper(text[0]) && out[1] == text[1] && out[2] == '\0');
}

/* Parse; on success check the cards and that their text reads back. */
static int poker_cards_fuzz_list(const char *text, uint8_t *cards, size_t max, size_t *count)
{
    int rc = arb_poker_cards_parse(text, cards, max, count);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_EMALFORMED || rc == ARB_EINVALID_ARGUMENT);
        return rc;
    }
    ARB_ASSERT(*count <= max);
    bool seen[ARB_POKER_DECK_CARDS] = {false};
    char back[ARB_POKER_DECK_CARDS * 3 + 1];
    size_t len = 0;
    for (size_t i = 0; i < *count; i++) {
        ARB_ASSERT(cards[i] < ARB_POKER_DECK_CARDS && !seen[cards[i]]);
        seen[cards[i]] = true;
        arb_poker_card_format(cards[i], back + len);
        back[len + 2] = ' ';
        len += 3;
    }
    back[len] = '\0';
    uint8_t again[ARB_POKER_DECK_CARDS];
    size_t again_count = 0;
    ARB_ASSERT(arb_poker_cards_parse(back, again, max, &again_count) == 0);
    ARB_ASSERT(again_count == *count && memcmp(again, cards, *count) == 0);
    return 0;
}

static void poker_cards_fuzz_eval(const uint8_t *cards, size_t count)
{
    uint32_t rank = arb_poker_eval(cards, count);
    ARB_ASSERT(rank >= 1 && rank <= ARB_POKER_RANKS);
    uint32_t direct = count == 5   ? arb_poker_eval5(cards)
                      : count == 6 ? arb_poker_eval6(cards)
                                   : arb_poker_eval7(cards);
    ARB_ASSERT(direct == rank);
    ARB_ASSERT((unsigned)arb_poker_category_of(rank) < ARB_POKER_CATEGORY_COUNT);
    uint8_t best[ARB_POKER_BEST_CARDS];
    ARB_ASSERT(arb_poker_best_five(cards, count, best) == rank);
    for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
        bool found = false;
        for (size_t k = 0; k < count; k++)
            found = found || cards[k] == best[i];
        ARB_ASSERT(found);
        for (size_t k = 0; k < i; k++)
            ARB_ASSERT(best[k] != best[i]);
    }
    ARB_ASSERT(arb_poker_eval5(best) == rank);
    uint8_t reversed[ARB_POKER_HAND_CARDS_MAX], best_reversed[ARB_POKER_BEST_CARDS];
    for (size_t i = 0; i < count; i++)
        reversed[i] = cards[count - 1 - i];
    ARB_ASSERT(arb_poker_eval(reversed, count) == rank);
    ARB_ASSERT(arb_poker_best_five(reversed, count, best_reversed) == rank);
    ARB_ASSERT(memcmp(best, best_reversed, sizeof best) == 0);
}

int arb_fuzz_poker_cards(const uint8_t *data, size_t size)
{
    char text[POKER_CARDS_FUZZ_TEXT_MAX + 1];
    size_t len = size < POKER_CARDS_FUZZ_TEXT_MAX ? size : POKER_CARDS_FUZZ_TEXT_MAX;
    memcpy(text, data, len);
    text[len] = '\0';

    poker_cards_fuzz_one(text);
    uint8_t hand[ARB_POKER_HAND_CARDS_MAX], deck[ARB_POKER_DECK_CARDS];
    size_t hand_count = 0, deck_count = 0;
    int hand_rc = poker_cards_fuzz_list(text, hand, ARB_POKER_HAND_CARDS_MAX, &hand_count);
    int deck_rc = poker_cards_fuzz_list(text, deck, ARB_POKER_DECK_CARDS, &deck_count);
    if (deck_rc == 0 && deck_count <= ARB_POKER_HAND_CARDS_MAX) {
        ARB_ASSERT(hand_rc == 0 && hand_count == deck_count);
        ARB_ASSERT(memcmp(hand, deck, hand_count) == 0);
    }
    if (hand_rc == 0)
        ARB_ASSERT(deck_rc == 0);
    if (deck_rc == ARB_EMALFORMED)
        ARB_ASSERT(hand_rc != 0);
    if (hand_rc == 0 && hand_count >= ARB_POKER_HAND_CARDS_MIN)
        poker_cards_fuzz_eval(hand, hand_count);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_poker_cards(data, size);
}
#endif
