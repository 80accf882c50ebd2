/*
 * poker_eval_test.c - the poker hand evaluator against the known numbers of
 * poker and against an independent, slow evaluator written here.
 *
 *   - first use from several threads at once (the table build; for TSan);
 *   - all 2,598,960 five-card hands: the known count of each category, 7462
 *     distinct ranks, and ranks ordered exactly as the slow evaluator
 *     (reference_value) orders the hands;
 *   - random seven-card hands (fixed seed): eval7 is the best of its 21
 *     five-card subsets, eval6 of its 6, whatever the order of the cards,
 *     and best_five returns five of the cards that make that rank;
 *   - all 133,784,560 seven-card hands: the known count of each category
 *     and 4824 distinct ranks; only with ARB_TEST_LONG=1 (else skipped,
 *     with a line saying so);
 *   - scripted hands (wheel, steel wheel, kickers, board plays, two trips,
 *     three pairs, flush over straight), the reading order of best_five,
 *     categories and their names, and card text in and out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arbiter/error.h"
#include "rules/poker/eval.h"

#define RANDOM_HANDS 300000
#define RANDOM_SEED UINT64_C(0x5eed0f7a61e5)
#define FIRST_USE_THREADS 4
/* Distinct structured values of reference_value: category * 13^5 + ... */
#define REFERENCE_VALUES (ARB_POKER_CATEGORY_COUNT * 371293)

static const uint64_t five_card_counts[ARB_POKER_CATEGORY_COUNT] = {
    1302540, 1098240, 123552, 54912, 10200, 5108, 3744, 624, 40,
};
static const uint64_t seven_card_counts[ARB_POKER_CATEGORY_COUNT] = {
    23294460, 58627800, 31433400, 6461620, 6180020, 4047644, 3473184, 224848, 41584,
};

/* Helpers. */

static uint64_t random_next(uint64_t *state)
{
    /* xorshift64*: enough for test data, and the same everywhere. */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(0x2545f4914f6cdd1d);
}

/* count distinct random cards into cards. */
static void random_hand(uint64_t *state, uint8_t *cards, size_t count)
{
    uint64_t used = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t card;
        do {
            card = (uint8_t)(random_next(state) % ARB_POKER_DECK_CARDS);
        } while ((used >> card & 1u) != 0);
        used |= UINT64_C(1) << card;
        cards[i] = card;
    }
}

/* The cards of a text, which must hold count of them. */
static void hand(const char *text, uint8_t *cards, size_t count)
{
    size_t parsed = 0;
    assert_int_equal(arb_poker_cards_parse(text, cards, count, &parsed), 0);
    assert_int_equal(parsed, count);
}

static uint32_t rank_of(const char *text)
{
    uint8_t cards[ARB_POKER_HAND_CARDS_MAX];
    size_t count = 0;
    assert_int_equal(arb_poker_cards_parse(text, cards, ARB_POKER_HAND_CARDS_MAX, &count), 0);
    return arb_poker_eval(cards, count);
}

static arb_poker_category category_of_text(const char *text)
{
    return arb_poker_category_of(rank_of(text));
}

/* The best of the five-card subsets of count cards, by eval5. */
static uint32_t best_subset_rank(const uint8_t *cards, size_t count)
{
    uint32_t best = 0;
    uint8_t subset[ARB_POKER_BEST_CARDS];
    for (unsigned mask = 0; mask < (1u << count); mask++) {
        if (__builtin_popcount(mask) != ARB_POKER_BEST_CARDS) {
            continue;
        }
        size_t taken = 0;
        for (size_t i = 0; i < count; i++) {
            if (mask & (1u << i)) {
                subset[taken++] = cards[i];
            }
        }
        uint32_t rank = arb_poker_eval5(subset);
        best = rank > best ? rank : best;
    }
    return best;
}

/* The reference: a slow five-card evaluator written for the test alone.
 * The ranks are grouped by how many cards each has, larger groups first and
 * higher ranks first within a size; the category comes from the group sizes,
 * the flush and the straight; the value is the category, then the groups'
 * ranks (a straight's top card alone), in base 13. */
static uint32_t reference_value(const uint8_t *cards)
{
    int counts[ARB_POKER_CARD_RANKS] = {0};
    bool flush = true;
    for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
        counts[arb_poker_card_rank(cards[i])]++;
        flush = flush && arb_poker_card_suit(cards[i]) == arb_poker_card_suit(cards[0]);
    }
    int groups[ARB_POKER_BEST_CARDS];
    int sizes[ARB_POKER_BEST_CARDS];
    int group_count = 0;
    for (int size = 4; size >= 1; size--) {
        for (int rank = ARB_POKER_CARD_RANKS - 1; rank >= 0; rank--) {
            if (counts[rank] == size) {
                sizes[group_count] = size;
                groups[group_count++] = rank;
            }
        }
    }
    bool straight = group_count == 5 && groups[0] - groups[4] == 4;
    if (group_count == 5 && groups[0] == 12 && groups[1] == 3) { /* A 5 4 3 2 */
        straight = true;
        groups[0] = 3;
    }
    arb_poker_category category = straight && flush                ? ARB_POKER_STRAIGHT_FLUSH
                                  : sizes[0] == 4                  ? ARB_POKER_FOUR_OF_A_KIND
                                  : sizes[0] == 3 && sizes[1] == 2 ? ARB_POKER_FULL_HOUSE
                                  : flush                          ? ARB_POKER_FLUSH
                                  : straight                       ? ARB_POKER_STRAIGHT
                                  : sizes[0] == 3                  ? ARB_POKER_THREE_OF_A_KIND
                                  : sizes[0] == 2 && sizes[1] == 2 ? ARB_POKER_TWO_PAIR
                                  : sizes[0] == 2                  ? ARB_POKER_PAIR
                                                                   : ARB_POKER_HIGH_CARD;
    uint32_t value = (uint32_t)category;
    for (int i = 0; i < ARB_POKER_BEST_CARDS; i++) {
        value = value * ARB_POKER_CARD_RANKS + (uint32_t)(i < group_count && !straight ? groups[i]
                                                          : i == 0                     ? groups[0]
                                                                                       : 0);
    }
    return value;
}

/* First use from several threads: the build runs once, and every thread
 * sees the finished tables. Must be the first test that evaluates. */

static void *first_use_thread(void *user)
{
    uint32_t *rank = user;
    uint8_t cards[7] = {51, 47, 43, 39, 35, 0, 1}; /* As Ks Qs Js Ts 2c 2d */
    *rank = arb_poker_eval7(cards);
    return NULL;
}

static void test_first_use_from_threads(void **unused)
{
    (void)unused;
    pthread_t threads[FIRST_USE_THREADS];
    uint32_t ranks[FIRST_USE_THREADS] = {0};
    for (size_t i = 0; i < FIRST_USE_THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, first_use_thread, &ranks[i]), 0);
    }
    for (size_t i = 0; i < FIRST_USE_THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(ranks[i], ARB_POKER_RANKS); /* the royal flush */
    }
    arb_poker_eval_init(); /* already built: returns at once */
}

/* All five-card hands. */

static void test_all_five_card_hands(void **unused)
{
    (void)unused;
    uint64_t counts[ARB_POKER_CATEGORY_COUNT] = {0};
    uint32_t *rank_of_value = calloc(REFERENCE_VALUES, sizeof *rank_of_value);
    uint8_t *rank_seen = calloc(ARB_POKER_RANKS + 1, 1);
    assert_non_null(rank_of_value);
    assert_non_null(rank_seen);
    uint64_t hands = 0;
    uint8_t c[5];
    for (c[0] = 0; c[0] < 52; c[0]++)
        for (c[1] = (uint8_t)(c[0] + 1); c[1] < 52; c[1]++)
            for (c[2] = (uint8_t)(c[1] + 1); c[2] < 52; c[2]++)
                for (c[3] = (uint8_t)(c[2] + 1); c[3] < 52; c[3]++)
                    for (c[4] = (uint8_t)(c[3] + 1); c[4] < 52; c[4]++) {
                        uint32_t rank = arb_poker_eval5(c);
                        assert_in_range(rank, 1, ARB_POKER_RANKS);
                        counts[arb_poker_category_of(rank)]++;
                        rank_seen[rank] = 1;
                        /* One reference value, one rank. */
                        uint32_t value = reference_value(c);
                        assert_true(value < REFERENCE_VALUES);
                        assert_true(rank_of_value[value] == 0 || rank_of_value[value] == rank);
                        rank_of_value[value] = rank;
                        hands++;
                    }
    assert_int_equal(hands, 2598960);
    for (int category = 0; category < ARB_POKER_CATEGORY_COUNT; category++) {
        assert_int_equal(counts[category], five_card_counts[category]);
    }
    /* Ranks grow with the reference values, strictly, and all are used. */
    uint32_t previous = 0;
    size_t distinct = 0;
    for (uint32_t value = 0; value < REFERENCE_VALUES; value++) {
        if (rank_of_value[value] != 0) {
            assert_true(rank_of_value[value] > previous);
            previous = rank_of_value[value];
            distinct++;
        }
    }
    assert_int_equal(distinct, ARB_POKER_RANKS);
    for (uint32_t rank = 1; rank <= ARB_POKER_RANKS; rank++) {
        assert_int_equal(rank_seen[rank], 1);
    }
    free(rank_seen);
    free(rank_of_value);
}

/* Random hands of six and seven. */

static void check_best_five(const uint8_t *cards, size_t count, uint32_t rank)
{
    uint8_t best[ARB_POKER_BEST_CARDS];
    assert_int_equal(arb_poker_best_five(cards, count, best), rank);
    assert_int_equal(arb_poker_eval5(best), rank);
    for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
        assert_non_null(memchr(cards, best[i], count));
        assert_null(memchr(best, best[i], i)); /* five distinct cards */
    }
}

static void test_random_hands_are_their_best_five(void **unused)
{
    (void)unused;
    uint64_t state = RANDOM_SEED;
    uint8_t cards[7];
    uint8_t shuffled[7];
    for (size_t n = 0; n < RANDOM_HANDS; n++) {
        random_hand(&state, cards, 7);
        uint32_t rank7 = arb_poker_eval7(cards);
        assert_int_equal(rank7, best_subset_rank(cards, 7));
        assert_int_equal(arb_poker_eval(cards, 7), rank7);
        uint32_t rank6 = arb_poker_eval6(cards);
        assert_int_equal(rank6, best_subset_rank(cards, 6));
        assert_int_equal(arb_poker_eval(cards, 6), rank6);
        assert_int_equal(arb_poker_eval(cards, 5), arb_poker_eval5(cards));
        /* The order of the cards does not matter. */
        memcpy(shuffled, cards, sizeof shuffled);
        for (size_t i = 6; i > 0; i--) {
            size_t j = (size_t)(random_next(&state) % (i + 1));
            uint8_t card = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = card;
        }
        assert_int_equal(arb_poker_eval7(shuffled), rank7);
        if (n % 16 == 0) {
            check_best_five(cards, 7, rank7);
            check_best_five(cards, 6, rank6);
            uint8_t best[5];
            uint8_t best_shuffled[5];
            arb_poker_best_five(cards, 7, best);
            arb_poker_best_five(shuffled, 7, best_shuffled);
            assert_memory_equal(best, best_shuffled, sizeof best);
        }
    }
}

/* All seven-card hands (long mode). */

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void test_all_seven_card_hands(void **unused)
{
    (void)unused;
    const char *long_mode = getenv("ARB_TEST_LONG");
    if (long_mode == NULL || strcmp(long_mode, "1") != 0) {
        print_message("all 133,784,560 seven-card hands: skipped (set ARB_TEST_LONG=1 to run)\n");
        skip();
    }
    double start = seconds_now();
    uint64_t counts[ARB_POKER_CATEGORY_COUNT] = {0};
    uint8_t *rank_seen = calloc(ARB_POKER_RANKS + 1, 1);
    assert_non_null(rank_seen);
    uint64_t hands = 0;
    uint8_t c[7];
    for (c[0] = 0; c[0] < 52; c[0]++)
        for (c[1] = (uint8_t)(c[0] + 1); c[1] < 52; c[1]++)
            for (c[2] = (uint8_t)(c[1] + 1); c[2] < 52; c[2]++)
                for (c[3] = (uint8_t)(c[2] + 1); c[3] < 52; c[3]++)
                    for (c[4] = (uint8_t)(c[3] + 1); c[4] < 52; c[4]++)
                        for (c[5] = (uint8_t)(c[4] + 1); c[5] < 52; c[5]++)
                            for (c[6] = (uint8_t)(c[5] + 1); c[6] < 52; c[6]++) {
                                uint32_t rank = arb_poker_eval7(c);
                                counts[arb_poker_category_of(rank)]++;
                                rank_seen[rank] = 1;
                                hands++;
                            }
    assert_int_equal(hands, 133784560);
    for (int category = 0; category < ARB_POKER_CATEGORY_COUNT; category++) {
        assert_int_equal(counts[category], seven_card_counts[category]);
    }
    /* Seven cards never leave fewer than five distinct ranks... but some
     * five-card hands (7-5-4-3-2 high, say) cannot be the best of seven:
     * 4824 of the 7462 ranks can. */
    size_t distinct = 0;
    for (uint32_t rank = 1; rank <= ARB_POKER_RANKS; rank++) {
        distinct += rank_seen[rank];
    }
    assert_int_equal(distinct, 4824);
    free(rank_seen);
    print_message("all 133,784,560 seven-card hands: %.1f s\n", seconds_now() - start);
}

/* Scripted hands. */

static void test_straights_and_the_wheel(void **unused)
{
    (void)unused;
    uint32_t wheel = rank_of("As 2d 3c 4h 5s");
    assert_int_equal(arb_poker_category_of(wheel), ARB_POKER_STRAIGHT);
    assert_true(wheel < rank_of("2d 3c 4h 5s 6c"));
    assert_true(wheel > rank_of("Ah Ad Ac Kd Qs")); /* the best three of a kind */
    assert_int_equal(wheel, 5854);                  /* the lowest straight */
    assert_int_equal(rank_of("Ts Jd Qc Kh Ac"), 5863);
    assert_int_equal(category_of_text("Kd Ac 2d 3c 4h"), ARB_POKER_HIGH_CARD); /* no wrap */
    assert_int_equal(category_of_text("Qd Kc Ac 2c 3h"), ARB_POKER_HIGH_CARD);

    uint32_t steel_wheel = rank_of("As 2s 3s 4s 5s");
    assert_int_equal(arb_poker_category_of(steel_wheel), ARB_POKER_STRAIGHT_FLUSH);
    assert_int_equal(steel_wheel, 7453);               /* the lowest straight flush */
    assert_int_equal(rank_of("As Ad Ah Ac Ks"), 7452); /* the best four of a kind */
    assert_true(steel_wheel < rank_of("2s 3s 4s 5s 6s"));
    assert_int_equal(rank_of("Ah Kh Qh Jh Th"), ARB_POKER_RANKS); /* royal */
    assert_int_equal(rank_of("7c 5d 4h 3s 2c"), 1);               /* the worst hand */
    assert_int_equal(rank_of("As 2s 3s 4s 5s Kd Kc"), steel_wheel);
    /* A straight flush and a higher plain straight: the straight flush. */
    assert_int_equal(rank_of("9h 8h 7h 6h 5h Tc Jd"), rank_of("9h 8h 7h 6h 5h"));
    /* The highest straight of six or seven connected cards. */
    assert_int_equal(rank_of("As 2d 3c 4h 5s 6d 7c"), rank_of("3c 4h 5s 6d 7c"));
}

static void test_kickers_and_ties(void **unused)
{
    (void)unused;
    assert_true(rank_of("Ah Ad Kc Qs 9h") > rank_of("As Ac Kd Qh 8c"));
    assert_int_equal(rank_of("Ah Ad Kc Qs 9h"), rank_of("As Ac Kd Qh 9c")); /* suits never count */
    assert_true(rank_of("Kh Kd Qc Qs 3h") > rank_of("Ks Kc Qd Qh 2c"));
    assert_true(rank_of("Kh Kd Qc Qs 2h") > rank_of("Ks Kc Jd Jh Ac"));
    assert_true(rank_of("8h 8d 8c As 2h") > rank_of("8h 8d 8c Ks Qh"));
    assert_true(rank_of("Ah Jh 9h 7h 3h") > rank_of("Ad Jd 9d 7d 2d"));
    assert_true(rank_of("3h 3d 3c 2s 2h") > rank_of("2d 2c 2s As Ah")); /* trips first */
    assert_true(rank_of("2h 2d 2c 2s 3h") > rank_of("As Ad Ac Ks Kd"));
    /* The kicker of a pair is the fifth card of seven, and the two lowest
     * never matter. */
    assert_true(rank_of("Ah Ad Kc Qs 9h 3c 2d") > rank_of("As Ac Kd Qh 8c 7d 6s"));
    assert_int_equal(rank_of("Ah Ad Kc Qs 9h 3c 2d"), rank_of("As Ac Kd Qh 9c 7d 6s"));
}

static void test_seven_card_shapes(void **unused)
{
    (void)unused;
    /* The board plays: both hole pairs are below the board's fifth card. */
    assert_int_equal(rank_of("Ac Kd Qh Js 9c 2c 3d"), rank_of("Ac Kd Qh Js 9c 4h 5s"));
    assert_int_equal(rank_of("Ac Kd Qh Js 9c 2c 3d"), rank_of("Ac Kd Qh Js 9c"));
    /* Two sets of three: a full house, the higher three over the lower. */
    assert_int_equal(rank_of("Ah Ad Ac Kh Kd Ks 2c"), rank_of("Ah Ad Ac Kh Kd"));
    assert_int_equal(category_of_text("2h 2d 2c 3h 3d 3s 4c"), ARB_POKER_FULL_HOUSE);
    assert_int_equal(rank_of("2h 2d 2c 3h 3d 3s 4c"), rank_of("3h 3d 3s 2h 2d"));
    /* Three pairs: the two highest, and the best kicker, maybe of the third. */
    assert_int_equal(rank_of("Ah Ad Kh Kd Qh Qd 2c"), rank_of("As Ac Ks Kc Qc"));
    assert_int_equal(rank_of("Ah Ad Kh Kd 2h 2d Jc"), rank_of("As Ac Ks Kc Jc"));
    /* A flush beats the straight in the same seven cards. */
    assert_int_equal(category_of_text("9h 8h 7h 6h 2h 5c Td"), ARB_POKER_FLUSH);
    assert_int_equal(rank_of("9h 8h 7h 6h 2h 5c Td"), rank_of("9h 8h 7h 6h 2h"));
    /* Six or seven of a suit: the top five. */
    assert_int_equal(rank_of("Ah 9h 8h 7h 4h 3h 2h"), rank_of("Ah 9h 8h 7h 4h"));
    /* Four of a kind takes the best kicker of the other three. */
    assert_int_equal(rank_of("Ah Ad Ac As 2c 3c Kd"), rank_of("Ah Ad Ac As Kd"));
    assert_int_equal(rank_of("7h 7d 7c 7s Kc Kd Ks"), rank_of("7h 7d 7c 7s Kd"));
    /* Three of a kind with a pair beside a flush draw: the full house. */
    assert_int_equal(category_of_text("Qh Qd Qc 5h 5d 8h 9h"), ARB_POKER_FULL_HOUSE);
    /* Six cards. */
    uint8_t cards[6];
    hand("Ah Kh Qh Jh 9h Th", cards, 6);
    assert_int_equal(arb_poker_eval6(cards), ARB_POKER_RANKS);
}

static void test_categories(void **unused)
{
    (void)unused;
    static const struct {
        uint32_t first;
        arb_poker_category category;
        const char *name;
    } ranges[] = {
        {1, ARB_POKER_HIGH_CARD, "high_card"},
        {1278, ARB_POKER_PAIR, "pair"},
        {4138, ARB_POKER_TWO_PAIR, "two_pair"},
        {4996, ARB_POKER_THREE_OF_A_KIND, "three_of_a_kind"},
        {5854, ARB_POKER_STRAIGHT, "straight"},
        {5864, ARB_POKER_FLUSH, "flush"},
        {7141, ARB_POKER_FULL_HOUSE, "full_house"},
        {7297, ARB_POKER_FOUR_OF_A_KIND, "four_of_a_kind"},
        {7453, ARB_POKER_STRAIGHT_FLUSH, "straight_flush"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        assert_int_equal(ranges[i].category, i);
        assert_int_equal(arb_poker_category_of(ranges[i].first), ranges[i].category);
        assert_int_equal(arb_poker_category_of(ranges[i].first - (i > 0)), i - (i > 0));
        assert_string_equal(arb_poker_category_name(ranges[i].category), ranges[i].name);
    }
    assert_int_equal(arb_poker_category_of(ARB_POKER_RANKS), ARB_POKER_STRAIGHT_FLUSH);
    assert_int_equal(category_of_text("Ah Kd 9c 7s 2h"), ARB_POKER_HIGH_CARD);
    assert_int_equal(category_of_text("Ah Ad 9c 7s 2h"), ARB_POKER_PAIR);
    assert_int_equal(category_of_text("Ah Ad 9c 9s 2h"), ARB_POKER_TWO_PAIR);
    assert_int_equal(category_of_text("Ah Ad Ac 9s 2h"), ARB_POKER_THREE_OF_A_KIND);
    assert_int_equal(category_of_text("9h Td Jc Qs Kh"), ARB_POKER_STRAIGHT);
    assert_int_equal(category_of_text("Ah 3h 9h 7h 2h"), ARB_POKER_FLUSH);
    assert_int_equal(category_of_text("Ah Ad Ac 9s 9h"), ARB_POKER_FULL_HOUSE);
    assert_int_equal(category_of_text("Ah Ad Ac As 2h"), ARB_POKER_FOUR_OF_A_KIND);
    assert_int_equal(category_of_text("9h Th Jh Qh Kh"), ARB_POKER_STRAIGHT_FLUSH);
}

/* best_five's choice and reading order. */

static void assert_best_five(const char *cards_text, const char *expected_text)
{
    uint8_t cards[ARB_POKER_HAND_CARDS_MAX];
    size_t count = 0;
    assert_int_equal(arb_poker_cards_parse(cards_text, cards, ARB_POKER_HAND_CARDS_MAX, &count), 0);
    uint8_t best[ARB_POKER_BEST_CARDS];
    uint32_t rank = arb_poker_best_five(cards, count, best);
    assert_int_equal(rank, arb_poker_eval(cards, count));
    char text[ARB_POKER_BEST_CARDS * ARB_POKER_CARD_TEXT_SIZE];
    for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
        arb_poker_card_format(best[i], text + 3 * i);
        text[3 * i + 2] = i + 1 < ARB_POKER_BEST_CARDS ? ' ' : '\0';
    }
    assert_string_equal(text, expected_text);
}

static void test_best_five(void **unused)
{
    (void)unused;
    assert_best_five("9c Kh 9d Kd Ks 2c 3c", "Ks Kh Kd 9d 9c");
    assert_best_five("Qh 8s 2d Qd 8c Ah 4c", "Qh Qd 8s 8c Ah");
    assert_best_five("4c 7h Ah Jd 7s 2d", "7s 7h Ah Jd 4c");
    assert_best_five("As 2d 3c 4h 5s Kd Qd", "5s 4h 3c 2d As");
    assert_best_five("As 2s 3s 4s 5s Kd Kc", "5s 4s 3s 2s As");
    assert_best_five("9h 8h 7h 6h 2h 5c Td", "9h 8h 7h 6h 2h");
    assert_best_five("Tc 9d 8h 7s 6c 5d", "Tc 9d 8h 7s 6c");
    /* Equal choices: the higher suits. */
    assert_best_five("Qc Ah Kd Qs Ad Kh 2c", "Ah Ad Kh Kd Qs");
    assert_best_five("Ac Kd Qh Js 9c 9d 2d", "9d 9c Ac Kd Qh");
    assert_best_five("7h 7d 7c 7s Kc Kd Ks", "7s 7h 7d 7c Ks");
}

/* Card text. */

static void test_card_text(void **unused)
{
    (void)unused;
    uint8_t card = 99;
    assert_int_equal(arb_poker_card_parse("As", &card), 0);
    assert_int_equal(card, 51);
    assert_int_equal(arb_poker_card_parse("2c", &card), 0);
    assert_int_equal(card, 0);
    assert_int_equal(arb_poker_card_parse("as", &card), 0);
    assert_int_equal(card, 51);
    assert_int_equal(arb_poker_card_parse("td", &card), 0);
    assert_int_equal(card, arb_poker_card_make(8, 1));
    assert_int_equal(arb_poker_card_rank(card), 8);
    assert_int_equal(arb_poker_card_suit(card), 1);

    static const char *const malformed[] = {
        "", "A", "1s", "Ax", "AsKs", "10s", "AS", "Th ", " Th", "s", "2C", "\xc3\xa0s", "A\n",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        card = 99;
        assert_int_equal(arb_poker_card_parse(malformed[i], &card), ARB_EMALFORMED);
        assert_int_equal(card, 99);
    }
    assert_int_equal(arb_poker_card_parse(NULL, &card), ARB_EMALFORMED);

    /* Every card's text reads back as the card. */
    for (uint8_t each = 0; each < ARB_POKER_DECK_CARDS; each++) {
        char text[ARB_POKER_CARD_TEXT_SIZE];
        arb_poker_card_format(each, text);
        assert_int_equal(strlen(text), 2);
        assert_int_equal(arb_poker_card_parse(text, &card), 0);
        assert_int_equal(card, each);
    }
}

static void test_cards_text(void **unused)
{
    (void)unused;
    uint8_t cards[ARB_POKER_HAND_CARDS_MAX];
    size_t count = 99;
    assert_int_equal(arb_poker_cards_parse("As Kd Qh Jc Ts 2d 3c", cards, 7, &count), 0);
    assert_int_equal(count, 7);
    assert_int_equal(cards[0], 51);
    assert_int_equal(cards[6], arb_poker_card_make(1, 0));
    assert_int_equal(arb_poker_cards_parse("\t as  kd\tQH", cards, 7, &count), ARB_EMALFORMED);
    assert_int_equal(arb_poker_cards_parse("\t as  kd\tQh \r\n", cards, 7, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(arb_poker_cards_parse("", cards, 7, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(arb_poker_cards_parse("   ", cards, 7, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(arb_poker_cards_parse("", NULL, 0, &count), 0);

    static const char *const malformed[] = {
        "As Kd Q", "AsKd", "As,Kd", "As 1s", "As Kx", "As 10s", "As Kd-", "A s", "As\v Kd",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        assert_int_equal(arb_poker_cards_parse(malformed[i], cards, 7, &count), ARB_EMALFORMED);
    }
    /* Repeats and too many are the caller's input errors, told apart. */
    assert_int_equal(arb_poker_cards_parse("As Kd as", cards, 7, &count), ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_poker_cards_parse("As Kd Qh Jc Ts 2d 3c 4c", cards, 7, &count),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_poker_cards_parse("As Kd Qh", cards, 2, &count), ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_poker_cards_parse("As Kd", cards, 2, &count), 0);
    assert_int_equal(count, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_from_threads), /* first: it builds the tables */
        cmocka_unit_test(test_all_five_card_hands),
        cmocka_unit_test(test_random_hands_are_their_best_five),
        cmocka_unit_test(test_all_seven_card_hands),
        cmocka_unit_test(test_straights_and_the_wheel),
        cmocka_unit_test(test_kickers_and_ties),
        cmocka_unit_test(test_seven_card_shapes),
        cmocka_unit_test(test_categories),
        cmocka_unit_test(test_best_five),
        cmocka_unit_test(test_card_text),
        cmocka_unit_test(test_cards_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
