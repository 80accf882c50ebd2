/*
 * eval.c - the poker hand evaluator: cards to a rank in 1..7462 in a few
 * nanoseconds, with no branch on the hand's category.
 *
 * How. Every card has a 64-bit key (card_keys). Its low 32 bits are the
 * weight of its rank, 5^rank: as no rank appears more than four times, the
 * sum of a hand's weights is its count of each rank written in base 5, so
 * the sum names the multiset of ranks. Bits 32..47 are four 4-bit suit
 * counters; a hand's key starts with 3 in each, so a suit with five or more
 * cards sets the top bit of its counter. A hand's key is the sum of its
 * cards' keys: seven loads and six additions. Then:
 *
 *   - A flush (a counter's top bit set): with at most seven cards only one
 *     suit can hold five, and nothing made without the flush can beat it
 *     (quads or a full house would need eight cards), so the rank is
 *     flush_ranks[the 13-bit mask of that suit's ranks]: the straight flush
 *     or the flush's top five.
 *   - Anything else: the rank depends only on the multiset of ranks, so on
 *     the sum, which a perfect hash maps to its slot of rank_table (hash and
 *     displace: the sum's bucket is one hash of it; the bucket's seed, found
 *     at build time, makes a second hash of sum and seed put every multiset
 *     of the bucket in a slot of its own).
 *
 * Tables. Built once (pthread_once) by tables_build and read-only after: a
 * reference evaluator (value_of_counts, value_of_flush) gives every
 * multiset of five to seven ranks and every flush mask a structured value
 * (category, then the ranks that break ties, 4 bits each), which sorts like
 * poker hands; the 7462 distinct values of five-card hands, sorted, give the
 * dense ranks. About 210 KiB in all: rank_table 159 KiB, bucket_seeds 32,
 * flush_ranks 16, card_keys 2. The build takes some 30 ms.
 *
 * Invariants: every slot a valid hand can reach holds its rank, and no two
 * multisets share one (the build asserts both); every index the lookups can
 * compute, from any bytes, is in bounds (the hashes map into their range by
 * multiplication, a bad byte is caught by the NOT_A_CARD bit, a flush mask
 * has 13 bits), so a broken precondition gives a wrong rank or an abort,
 * never a wild read.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "rules/poker/eval.h"

/* A rank's weight is WEIGHT_BASE^rank; seven cards stay below 7 * 5^12 <
 * 2^31, clear of the suit counters. */
#define WEIGHT_BASE 5u

#define SUIT_COUNTERS_SHIFT 32
#define SUIT_COUNTERS_START (UINT64_C(0x3333) << SUIT_COUNTERS_SHIFT)
#define SUIT_COUNTERS_FLUSH (UINT64_C(0x8888) << SUIT_COUNTERS_SHIFT)
/* The keys of the bytes that are not cards carry this bit; seven of them
 * still fit below bit 63, so one test of the sum catches any. */
#define NOT_A_CARD_SHIFT 60

/* The perfect hash. Buckets hold 4.5 multisets on average and the table is
 * 10% larger than their number: both keep the seeds quick to find and small
 * (the largest is 1631; uint16_t, asserted). */
#define HASH_BUCKETS 16384u
#define RANK_TABLE_SIZE 81152u
#define HASH_BUCKET_MULTIPLIER UINT64_C(0x9e3779b97f4a7c15)
#define HASH_SLOT_MULTIPLIER UINT64_C(0xd6e8feb86659fd93)
#define HASH_SEED_MULTIPLIER 0x85ebca6bu
#define FLUSH_MASKS (1u << ARB_POKER_CARD_RANKS)

/* Structured values: category << 20, then up to five ranks of 4 bits each,
 * the one that decides first in the highest place. */
#define VALUE_CATEGORY_SHIFT 20

static uint64_t card_keys[256];
static uint16_t flush_ranks[FLUSH_MASKS];
static uint16_t bucket_seeds[HASH_BUCKETS];
static uint16_t rank_table[RANK_TABLE_SIZE];

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static atomic_bool tables_ready;

static const char rank_letters[] = "23456789TJQKA";
static const char suit_letters[] = "cdhs";

static const char *const category_names[] = {
#define ARB__POKER_CATEGORY_NAME(name, text, ranks) text,
    ARB_POKER_CATEGORY_TABLE(ARB__POKER_CATEGORY_NAME)
#undef ARB__POKER_CATEGORY_NAME
};
static const uint32_t category_ranks[] = {
#define ARB__POKER_CATEGORY_RANKS(name, text, ranks) ranks,
    ARB_POKER_CATEGORY_TABLE(ARB__POKER_CATEGORY_RANKS)
#undef ARB__POKER_CATEGORY_RANKS
};

/* The reference evaluator (build time only). */

static uint32_t value_make(arb_poker_category category, const int *ranks, int ranks_count)
{
    ARB_ASSERT(ranks_count >= 1 && ranks_count <= ARB_POKER_BEST_CARDS);
    uint32_t value = (uint32_t)category << VALUE_CATEGORY_SHIFT;
    for (int i = 0; i < ranks_count; i++) {
        ARB_ASSERT(ranks[i] >= 0 && ranks[i] < ARB_POKER_CARD_RANKS);
        value |= (uint32_t)ranks[i] << (4 * (ARB_POKER_BEST_CARDS - 1 - i));
    }
    return value;
}

/* The top card of the best straight in a mask of ranks (3 for the wheel,
 * 5-4-3-2-A), or -1. */
static int straight_top(uint32_t mask)
{
    uint32_t with_low_ace = (mask << 1) | (mask >> 12 & 1u); /* bit 0: the ace as one */
    for (int top = 12; top >= 3; top--) {
        uint32_t five = 0x1fu << (top - 3);
        if ((with_low_ace & five) == five) {
            return top;
        }
    }
    return -1;
}

/* The highest ranks of mask, up to want of them, into ranks; their number. */
static int ranks_from_top(uint32_t mask, int *ranks, int want)
{
    int found = 0;
    for (int rank = 12; rank >= 0 && found < want; rank--) {
        if (mask & (1u << rank)) {
            ranks[found++] = rank;
        }
    }
    return found;
}

static uint32_t value_of_flush(uint32_t mask)
{
    int ranks[ARB_POKER_BEST_CARDS];
    int top = straight_top(mask);
    if (top >= 0) {
        return value_make(ARB_POKER_STRAIGHT_FLUSH, &top, 1);
    }
    int found = ranks_from_top(mask, ranks, ARB_POKER_BEST_CARDS);
    ARB_ASSERT(found == ARB_POKER_BEST_CARDS);
    return value_make(ARB_POKER_FLUSH, ranks, found);
}

/* The ranks with at least `at_least` cards, as a mask. */
static uint32_t ranks_with(const int *counts, int at_least)
{
    uint32_t mask = 0;
    for (int rank = 0; rank < ARB_POKER_CARD_RANKS; rank++) {
        if (counts[rank] >= at_least) {
            mask |= 1u << rank;
        }
    }
    return mask;
}

/* The best hand without a flush from five to seven cards with these counts
 * of each rank: each category checked from the strongest down. */
static uint32_t value_of_counts(const int *counts)
{
    int ranks[ARB_POKER_BEST_CARDS] = {0};
    uint32_t present = ranks_with(counts, 1);
    uint32_t pairs = ranks_with(counts, 2);
    uint32_t trips = ranks_with(counts, 3);
    uint32_t quads = ranks_with(counts, 4);
    int found;
    if (quads != 0) {
        ranks_from_top(quads, ranks, 1);
        found = ranks_from_top(present & ~(1u << ranks[0]), ranks + 1, 1);
        ARB_ASSERT(found == 1);
        return value_make(ARB_POKER_FOUR_OF_A_KIND, ranks, 2);
    }
    if (trips != 0) {
        ranks_from_top(trips, ranks, 1);
        if (ranks_from_top(pairs & ~(1u << ranks[0]), ranks + 1, 1) == 1) {
            return value_make(ARB_POKER_FULL_HOUSE, ranks, 2);
        }
    }
    int top = straight_top(present);
    if (top >= 0) {
        return value_make(ARB_POKER_STRAIGHT, &top, 1);
    }
    if (trips != 0) {
        found = ranks_from_top(present & ~trips, ranks + 1, 2);
        ARB_ASSERT(found == 2);
        return value_make(ARB_POKER_THREE_OF_A_KIND, ranks, 3);
    }
    int pair_count = ranks_from_top(pairs, ranks, 2);
    if (pair_count == 2) {
        uint32_t used = (1u << ranks[0]) | (1u << ranks[1]);
        found = ranks_from_top(present & ~used, ranks + 2, 1);
        ARB_ASSERT(found == 1);
        return value_make(ARB_POKER_TWO_PAIR, ranks, 3);
    }
    if (pair_count == 1) {
        found = ranks_from_top(present & ~pairs, ranks + 1, 3);
        ARB_ASSERT(found == 3);
        return value_make(ARB_POKER_PAIR, ranks, 4);
    }
    found = ranks_from_top(present, ranks, 5);
    ARB_ASSERT(found == 5);
    return value_make(ARB_POKER_HIGH_CARD, ranks, 5);
}

/* Building the tables. */

/* The sorted structured values of all five-card hands, whose positions are
 * the dense ranks. */
typedef struct value_list {
    uint32_t values[ARB_POKER_RANKS];
    size_t count;
} value_list;

static int value_compare(const void *left, const void *right)
{
    uint32_t a = *(const uint32_t *)left;
    uint32_t b = *(const uint32_t *)right;
    return (a > b) - (a < b);
}

static uint32_t rank_of_value(const value_list *list, uint32_t value)
{
    size_t low = 0;
    size_t high = list->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (list->values[middle] < value) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    ARB_ASSERT(low < list->count && list->values[low] == value);
    return (uint32_t)low + 1;
}

/* A multiset of ranks: its count of each rank, weight sum and size. */
typedef struct multiset {
    int counts[ARB_POKER_CARD_RANKS];
    uint32_t sum;
    int size;
} multiset;

static uint32_t weight_of(unsigned rank)
{
    uint32_t weight = 1;
    for (unsigned i = 0; i < rank; i++) {
        weight *= WEIGHT_BASE;
    }
    return weight;
}

typedef void multiset_visit(void *user, const multiset *set);

/* Visit every multiset of ranks rank.. with size_min..size_max cards in
 * all, each rank at most four times. Recursion depth: 13. */
static void multisets_each(multiset *set, int rank, int size_min, int size_max,
                           multiset_visit *visit, void *user)
{
    if (rank == ARB_POKER_CARD_RANKS) {
        if (set->size >= size_min) {
            visit(user, set);
        }
        return;
    }
    for (int count = 0; count <= 4 && set->size + count <= size_max; count++) {
        set->counts[rank] = count;
        set->size += count;
        set->sum += (uint32_t)count * weight_of((unsigned)rank);
        multisets_each(set, rank + 1, size_min, size_max, visit, user);
        set->size -= count;
        set->sum -= (uint32_t)count * weight_of((unsigned)rank);
    }
    set->counts[rank] = 0;
}

static void collect_five(void *user, const multiset *set)
{
    value_list *list = user;
    ARB_ASSERT(list->count < ARB_POKER_RANKS);
    list->values[list->count++] = value_of_counts(set->counts);
}

static void values_build(value_list *list)
{
    multiset set = {{0}, 0, 0};
    list->count = 0;
    multisets_each(&set, 0, ARB_POKER_BEST_CARDS, ARB_POKER_BEST_CARDS, collect_five, list);
    for (uint32_t mask = 0; mask < FLUSH_MASKS; mask++) {
        if (__builtin_popcount(mask) == ARB_POKER_BEST_CARDS) {
            ARB_ASSERT(list->count < ARB_POKER_RANKS);
            list->values[list->count++] = value_of_flush(mask);
        }
    }
    ARB_ASSERT(list->count == ARB_POKER_RANKS);
    qsort(list->values, list->count, sizeof list->values[0], value_compare);
    for (size_t i = 1; i < list->count; i++) {
        ARB_ASSERT(list->values[i - 1] < list->values[i]); /* 7462 distinct hands */
    }
}

static void flush_ranks_build(const value_list *list)
{
    for (uint32_t mask = 0; mask < FLUSH_MASKS; mask++) {
        int bits = __builtin_popcount(mask);
        bool reachable = bits >= ARB_POKER_BEST_CARDS && bits <= ARB_POKER_HAND_CARDS_MAX;
        flush_ranks[mask] = reachable ? (uint16_t)rank_of_value(list, value_of_flush(mask)) : 0;
    }
}

/* The hash functions, shared by the build and the lookup. Each maps a
 * 32-bit hash into 0..range by multiplying (Lemire's fast range), so any sum
 * and any seed give an index in bounds. */
static inline uint32_t hash_range(uint32_t hash, uint32_t range)
{
    return (uint32_t)(((uint64_t)hash * range) >> 32);
}

static inline uint32_t hash_bucket(uint32_t sum)
{
    return hash_range((uint32_t)((sum * HASH_BUCKET_MULTIPLIER) >> 32), HASH_BUCKETS);
}

/* Multiply, xor-shift, multiply: a different seed moves every sum of a
 * bucket to an unrelated slot, which is what the seed search needs. */
static inline uint32_t hash_slot(uint32_t sum, uint32_t seed)
{
    uint64_t mixed = (uint64_t)(sum ^ (seed * HASH_SEED_MULTIPLIER)) * HASH_SLOT_MULTIPLIER;
    mixed ^= mixed >> 29;
    mixed *= HASH_BUCKET_MULTIPLIER;
    return hash_range((uint32_t)(mixed >> 32), RANK_TABLE_SIZE);
}

/* The multisets of five to seven ranks, for the perfect hash: their sums
 * and ranks, then grouped by bucket (bucket_start[b] .. bucket_start[b + 1]
 * in by_bucket). */
#define ENTRIES 73775      /* 6175 + 18395 + 49205 multisets of 5, 6, 7 ranks */
#define BUCKET_SIZE_MAX 64 /* far above what the hash gives (asserted) */

typedef struct hash_build {
    const value_list *list;
    uint32_t sums[ENTRIES];
    uint16_t ranks[ENTRIES];
    size_t count;
    uint32_t by_bucket[ENTRIES];
    uint32_t bucket_start[HASH_BUCKETS + 1];
    uint32_t bucket_fill[HASH_BUCKETS];
    uint32_t bucket_order[HASH_BUCKETS]; /* fullest first */
    uint8_t slot_used[RANK_TABLE_SIZE];
} hash_build;

static void collect_entry(void *user, const multiset *set)
{
    hash_build *build = user;
    ARB_ASSERT(build->count < ENTRIES);
    build->sums[build->count] = set->sum;
    build->ranks[build->count] = (uint16_t)rank_of_value(build->list, value_of_counts(set->counts));
    build->count++;
}

/* Counting sorts: entries by bucket, then buckets by their size. */
static void buckets_group(hash_build *build)
{
    memset(build->bucket_start, 0, sizeof build->bucket_start);
    for (size_t i = 0; i < build->count; i++) {
        build->bucket_start[hash_bucket(build->sums[i]) + 1]++;
    }
    for (size_t bucket = 0; bucket < HASH_BUCKETS; bucket++) {
        ARB_ASSERT(build->bucket_start[bucket + 1] <= BUCKET_SIZE_MAX);
        build->bucket_start[bucket + 1] += build->bucket_start[bucket];
    }
    memcpy(build->bucket_fill, build->bucket_start, sizeof build->bucket_fill);
    for (size_t i = 0; i < build->count; i++) {
        build->by_bucket[build->bucket_fill[hash_bucket(build->sums[i])]++] = (uint32_t)i;
    }
    size_t placed = 0;
    for (uint32_t size = BUCKET_SIZE_MAX + 1; size-- > 0;) {
        for (uint32_t bucket = 0; bucket < HASH_BUCKETS; bucket++) {
            if (build->bucket_start[bucket + 1] - build->bucket_start[bucket] == size) {
                build->bucket_order[placed++] = bucket;
            }
        }
    }
    ARB_ASSERT(placed == HASH_BUCKETS);
}

/* Whether the seed puts every entry of the bucket in a free slot of its
 * own; if so, the slots are written to slots_out. */
static bool bucket_fits(const hash_build *build, uint32_t bucket, uint32_t seed,
                        uint32_t *slots_out)
{
    uint32_t size = build->bucket_start[bucket + 1] - build->bucket_start[bucket];
    for (uint32_t i = 0; i < size; i++) {
        uint32_t slot =
            hash_slot(build->sums[build->by_bucket[build->bucket_start[bucket] + i]], seed);
        if (build->slot_used[slot]) {
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (slots_out[j] == slot) {
                return false;
            }
        }
        slots_out[i] = slot;
    }
    return true;
}

/* Fullest buckets first, each with the smallest seed that fits it. */
static void buckets_place(hash_build *build)
{
    memset(build->slot_used, 0, sizeof build->slot_used);
    uint32_t slots[BUCKET_SIZE_MAX];
    for (uint32_t order = 0; order < HASH_BUCKETS; order++) {
        uint32_t bucket = build->bucket_order[order];
        uint32_t seed = 0;
        while (!bucket_fits(build, bucket, seed, slots)) {
            seed++;
            ARB_ASSERT(seed <= UINT16_MAX);
        }
        bucket_seeds[bucket] = (uint16_t)seed;
        uint32_t size = build->bucket_start[bucket + 1] - build->bucket_start[bucket];
        for (uint32_t i = 0; i < size; i++) {
            build->slot_used[slots[i]] = 1;
            rank_table[slots[i]] = build->ranks[build->by_bucket[build->bucket_start[bucket] + i]];
        }
    }
}

static void card_keys_build(void)
{
    for (size_t byte = 0; byte < 256; byte++) {
        card_keys[byte] = UINT64_C(1) << NOT_A_CARD_SHIFT;
    }
    for (uint8_t card = 0; card < ARB_POKER_DECK_CARDS; card++) {
        uint64_t suit_bit = UINT64_C(1) << (SUIT_COUNTERS_SHIFT + 4 * arb_poker_card_suit(card));
        card_keys[card] = suit_bit | weight_of(arb_poker_card_rank(card));
    }
}

static void tables_build(void)
{
    value_list *list = malloc(sizeof *list);
    hash_build *build = malloc(sizeof *build);
    ARB_ASSERT(list != NULL && build != NULL); /* about 1 MiB, once */
    values_build(list);
    flush_ranks_build(list);
    card_keys_build();

    build->list = list;
    build->count = 0;
    multiset set = {{0}, 0, 0};
    multisets_each(&set, 0, ARB_POKER_HAND_CARDS_MIN, ARB_POKER_HAND_CARDS_MAX, collect_entry,
                   build);
    ARB_ASSERT(build->count == ENTRIES);
    buckets_group(build);
    buckets_place(build);
    free(build);
    free(list);
    atomic_store_explicit(&tables_ready, true, memory_order_release);
}

void arb_poker_eval_init(void)
{
    if (!atomic_load_explicit(&tables_ready, memory_order_acquire)) {
        int status = pthread_once(&tables_once, tables_build);
        ARB_ASSERT(status == 0);
    }
    ARB_ASSERT(atomic_load_explicit(&tables_ready, memory_order_acquire));
}

/* Evaluation. */

static inline void tables_ensure(void)
{
    if (__builtin_expect(!atomic_load_explicit(&tables_ready, memory_order_acquire), 0)) {
        arb_poker_eval_init();
    }
}

/* The flush path: the rank mask of the suit whose counter overflowed. */
static uint32_t rank_of_flush(uint64_t key, const uint8_t *cards, size_t count)
{
    unsigned counter_bit = (unsigned)__builtin_ctzll(key & SUIT_COUNTERS_FLUSH);
    unsigned suit = (counter_bit - SUIT_COUNTERS_SHIFT - 3) / 4;
    uint32_t mask = 0;
    for (size_t i = 0; i < count; i++) {
        if (arb_poker_card_suit(cards[i]) == suit) {
            mask |= 1u << arb_poker_card_rank(cards[i]);
        }
    }
    return flush_ranks[mask];
}

static inline uint32_t rank_of_key(uint64_t key, const uint8_t *cards, size_t count)
{
    ARB_ASSERT((key >> NOT_A_CARD_SHIFT) == 0); /* every card below 52 */
    if (__builtin_expect((key & SUIT_COUNTERS_FLUSH) != 0, 0)) {
        return rank_of_flush(key, cards, count);
    }
    uint32_t sum = (uint32_t)key;
    return rank_table[hash_slot(sum, bucket_seeds[hash_bucket(sum)])];
}

uint32_t arb_poker_eval5(const uint8_t cards[5])
{
    tables_ensure();
    uint64_t key = SUIT_COUNTERS_START + card_keys[cards[0]] + card_keys[cards[1]] +
                   card_keys[cards[2]] + card_keys[cards[3]] + card_keys[cards[4]];
    return rank_of_key(key, cards, 5);
}

uint32_t arb_poker_eval6(const uint8_t cards[6])
{
    tables_ensure();
    uint64_t key = SUIT_COUNTERS_START + card_keys[cards[0]] + card_keys[cards[1]] +
                   card_keys[cards[2]] + card_keys[cards[3]] + card_keys[cards[4]] +
                   card_keys[cards[5]];
    return rank_of_key(key, cards, 6);
}

uint32_t arb_poker_eval7(const uint8_t cards[7])
{
    tables_ensure();
    uint64_t key = SUIT_COUNTERS_START + card_keys[cards[0]] + card_keys[cards[1]] +
                   card_keys[cards[2]] + card_keys[cards[3]] + card_keys[cards[4]] +
                   card_keys[cards[5]] + card_keys[cards[6]];
    return rank_of_key(key, cards, 7);
}

uint32_t arb_poker_eval(const uint8_t *cards, size_t count)
{
    ARB_ASSERT(count >= ARB_POKER_HAND_CARDS_MIN && count <= ARB_POKER_HAND_CARDS_MAX);
    tables_ensure();
    uint64_t key = SUIT_COUNTERS_START;
    for (size_t i = 0; i < count; i++) {
        key += card_keys[cards[i]];
    }
    return rank_of_key(key, cards, count);
}

/* Categories. */

arb_poker_category arb_poker_category_of(uint32_t rank)
{
    ARB_ASSERT(rank >= 1 && rank <= ARB_POKER_RANKS);
    uint32_t below = 0;
    for (int category = 0; category < ARB_POKER_CATEGORY_COUNT; category++) {
        below += category_ranks[category];
        if (rank <= below) {
            return (arb_poker_category)category;
        }
    }
    ARB_ASSERT(!"the category ranges cover 1..7462");
    return ARB_POKER_HIGH_CARD;
}

const char *arb_poker_category_name(arb_poker_category category)
{
    ARB_ASSERT(category >= 0 && category < ARB_POKER_CATEGORY_COUNT);
    return category_names[category];
}

/* The best five. */

/* Cards sorted by code, highest first: by rank, then by suit. */
static void cards_sort_descending(uint8_t *cards, size_t count)
{
    for (size_t i = 1; i < count; i++) {
        uint8_t card = cards[i];
        size_t j = i;
        for (; j > 0 && cards[j - 1] < card; j--) {
            cards[j] = cards[j - 1];
        }
        cards[j] = card;
    }
}

/* Five cards, highest code first, into reading order: larger groups first
 * (stable, so ranks stay descending within a size), the wheel's ace last. */
static void best_order(uint8_t *best, arb_poker_category category)
{
    int counts[ARB_POKER_CARD_RANKS] = {0};
    for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
        counts[arb_poker_card_rank(best[i])]++;
    }
    uint8_t ordered[ARB_POKER_BEST_CARDS];
    size_t placed = 0;
    for (int size = 4; size >= 1; size--) {
        for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
            if (counts[arb_poker_card_rank(best[i])] == size) {
                ordered[placed++] = best[i];
            }
        }
    }
    ARB_ASSERT(placed == ARB_POKER_BEST_CARDS);
    bool straight = category == ARB_POKER_STRAIGHT || category == ARB_POKER_STRAIGHT_FLUSH;
    bool wheel =
        straight && arb_poker_card_rank(ordered[0]) == 12 && arb_poker_card_rank(ordered[1]) == 3;
    for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
        best[i] = wheel ? ordered[(i + 1) % ARB_POKER_BEST_CARDS] : ordered[i];
    }
}

uint32_t arb_poker_best_five(const uint8_t *cards, size_t count,
                             uint8_t best_out[ARB_POKER_BEST_CARDS])
{
    ARB_ASSERT(count >= ARB_POKER_HAND_CARDS_MIN && count <= ARB_POKER_HAND_CARDS_MAX);
    uint8_t sorted[ARB_POKER_HAND_CARDS_MAX];
    memcpy(sorted, cards, count);
    cards_sort_descending(sorted, count);
    /* Subsets in lexicographic order of positions, so the first of equal
     * rank is the one with the higher suits (the contract in eval.h). */
    uint32_t best_rank = 0;
    uint8_t subset[ARB_POKER_BEST_CARDS];
    size_t index[ARB_POKER_BEST_CARDS] = {0, 1, 2, 3, 4};
    for (;;) {
        for (size_t i = 0; i < ARB_POKER_BEST_CARDS; i++) {
            subset[i] = sorted[index[i]];
        }
        uint32_t rank = arb_poker_eval5(subset);
        if (rank > best_rank) {
            best_rank = rank;
            memcpy(best_out, subset, ARB_POKER_BEST_CARDS);
        }
        /* The next combination: bump the last position that can move. */
        size_t i = ARB_POKER_BEST_CARDS;
        while (i > 0 && index[i - 1] == count - ARB_POKER_BEST_CARDS + i - 1) {
            i--;
        }
        if (i == 0) {
            break;
        }
        index[i - 1]++;
        for (size_t j = i; j < ARB_POKER_BEST_CARDS; j++) {
            index[j] = index[j - 1] + 1;
        }
    }
    ARB_ASSERT(best_rank >= 1 && best_rank <= ARB_POKER_RANKS);
    best_order(best_out, arb_poker_category_of(best_rank));
    return best_rank;
}

/* Cards as text. */

static int card_from_letters(char rank_letter, char suit_letter, uint8_t *card_out)
{
    char upper =
        rank_letter >= 'a' && rank_letter <= 'z' ? (char)(rank_letter - 'a' + 'A') : rank_letter;
    const char *rank = upper != '\0' ? strchr(rank_letters, upper) : NULL;
    const char *suit = suit_letter != '\0' ? strchr(suit_letters, suit_letter) : NULL;
    if (rank == NULL || suit == NULL) {
        return ARB_EMALFORMED;
    }
    *card_out =
        arb_poker_card_make((unsigned)(rank - rank_letters), (unsigned)(suit - suit_letters));
    return 0;
}

int arb_poker_card_parse(const char *text, uint8_t *card_out)
{
    ARB_ASSERT(card_out != NULL);
    if (text == NULL || text[0] == '\0' || text[1] == '\0' || text[2] != '\0') {
        return ARB_EMALFORMED;
    }
    return card_from_letters(text[0], text[1], card_out);
}

void arb_poker_card_format(uint8_t card, char out[ARB_POKER_CARD_TEXT_SIZE])
{
    ARB_ASSERT(card < ARB_POKER_DECK_CARDS);
    out[0] = rank_letters[arb_poker_card_rank(card)];
    out[1] = suit_letters[arb_poker_card_suit(card)];
    out[2] = '\0';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int arb_poker_cards_parse(const char *text, uint8_t *cards_out, size_t cards_max, size_t *count_out)
{
    ARB_ASSERT(text != NULL && count_out != NULL && (cards_out != NULL || cards_max == 0));
    uint64_t seen = 0;
    size_t count = 0;
    *count_out = 0;
    /* Each pass takes one word; a word is at least one character, so the
     * loop ends within strlen(text) passes. */
    for (const char *at = text;;) {
        while (is_blank(*at)) {
            at++;
        }
        if (*at == '\0') {
            break;
        }
        uint8_t card;
        if (at[1] == '\0' || is_blank(at[1]) || !(at[2] == '\0' || is_blank(at[2])) ||
            card_from_letters(at[0], at[1], &card) != 0) {
            return ARB_EMALFORMED;
        }
        at += 2;
        if ((seen >> card & 1u) != 0 || count == cards_max) {
            return ARB_EINVALID_ARGUMENT;
        }
        seen |= UINT64_C(1) << card;
        cards_out[count++] = card;
    }
    *count_out = count;
    return 0;
}
