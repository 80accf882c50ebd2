/*
 * poker_eval_bench.c - how many poker hands arb_poker_eval7 (and eval6,
 * eval5) ranks per second on one core.
 *
 *   build the evaluator's tables (timed once: the cost of first use)
 *   -> deal --hands random seven-card hands (--seed) into one array
 *   -> for each evaluator, --repeat runs: loop over the whole array until
 *      --seconds have passed (timed; the clock is read once per pass)
 *   -> print the median, lowest and highest rate of each, as Markdown.
 *
 * The hands are dealt before any clock starts, so neither the random
 * generator nor the dealing is measured; eval5 and eval6 read the first
 * five or six cards of each hand. The array (7 MiB by default) is larger
 * than the caches on purpose: the hands stream from memory as they would
 * from a real caller, and the evaluator's own tables (about 210 KiB) must
 * hold their place in cache beside them.
 *
 * Every run sums the ranks it computes and checks the sum against passes x
 * the checksum of one pass (computed before timing): the work cannot be
 * optimized away, and a wrong evaluation on the timed path would stop the
 * bench. One thread; every loop is bounded by --seconds or a count.
 *
 * Usage: poker_eval_bench [--seconds S] [--repeat N] [--hands N] [--seed N]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rules/poker/eval.h"

#define HAND_CARDS 7
#define SECONDS_DEFAULT 0.4
#define SECONDS_MAX 600.0
#define REPEAT_DEFAULT 5
#define REPEAT_MAX 99
#define HANDS_DEFAULT (1u << 20)
#define HANDS_MIN 1024u
#define HANDS_MAX (1u << 26)
#define SEED_DEFAULT UINT64_C(20251002)
/* A run stops after this many passes even if the clock says otherwise. */
#define PASSES_MAX 1000000u

typedef struct options {
    double seconds;
    uint64_t repeat;
    uint64_t hands;
    uint64_t seed;
} options;

/* One pass over the hands with one evaluator, called directly as a caller
 * would: the sum of the ranks. */
typedef uint64_t pass_function(const uint8_t *hands, uint64_t count);

static uint64_t pass_eval7(const uint8_t *hands, uint64_t count)
{
    uint64_t sum = 0;
    for (uint64_t n = 0; n < count; n++) {
        sum += arb_poker_eval7(hands + n * HAND_CARDS);
    }
    return sum;
}

static uint64_t pass_eval6(const uint8_t *hands, uint64_t count)
{
    uint64_t sum = 0;
    for (uint64_t n = 0; n < count; n++) {
        sum += arb_poker_eval6(hands + n * HAND_CARDS);
    }
    return sum;
}

static uint64_t pass_eval5(const uint8_t *hands, uint64_t count)
{
    uint64_t sum = 0;
    for (uint64_t n = 0; n < count; n++) {
        sum += arb_poker_eval5(hands + n * HAND_CARDS);
    }
    return sum;
}

static const struct {
    const char *name;
    pass_function *pass;
} evaluators[] = {
    {"arb_poker_eval7", pass_eval7},
    {"arb_poker_eval6", pass_eval6},
    {"arb_poker_eval5", pass_eval5},
};
#define EVALUATORS (sizeof evaluators / sizeof evaluators[0])

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Options. */

static bool parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *value_out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max) {
        return false;
    }
    *value_out = value;
    return true;
}

static bool parse_seconds(const char *text, double *value_out)
{
    if (text == NULL) {
        return false;
    }
    errno = 0;
    char *end = NULL;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value > 0) || value > SECONDS_MAX) {
        return false;
    }
    *value_out = value;
    return true;
}

static void parse_options(int argc, char **argv, options *o)
{
    *o = (options){SECONDS_DEFAULT, REPEAT_DEFAULT, HANDS_DEFAULT, SEED_DEFAULT};
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = false;
        if (strcmp(argv[i], "--seconds") == 0) {
            ok = parse_seconds(value, &o->seconds);
        } else if (strcmp(argv[i], "--repeat") == 0) {
            ok = parse_u64(value, 1, REPEAT_MAX, &o->repeat);
        } else if (strcmp(argv[i], "--hands") == 0) {
            ok = parse_u64(value, HANDS_MIN, HANDS_MAX, &o->hands);
        } else if (strcmp(argv[i], "--seed") == 0) {
            ok = parse_u64(value, 0, UINT64_MAX, &o->seed);
        }
        if (!ok) {
            fprintf(stderr,
                    "poker_eval_bench: bad option or value: %s %s\n"
                    "usage: poker_eval_bench [--seconds S] [--repeat N] [--hands N] [--seed N]\n",
                    argv[i], value != NULL ? value : "");
            exit(2);
        }
    }
}

/* The hands. */

static uint64_t random_next(uint64_t *state)
{
    /* splitmix64: any seed, 0 included, gives a good stream. */
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Seven distinct cards per hand: the first seven of a partly shuffled deck. */
static void hands_deal(uint8_t *hands, uint64_t count, uint64_t seed)
{
    uint64_t state = seed;
    uint8_t deck[ARB_POKER_DECK_CARDS];
    for (uint8_t card = 0; card < ARB_POKER_DECK_CARDS; card++) {
        deck[card] = card;
    }
    for (uint64_t n = 0; n < count; n++) {
        for (size_t i = 0; i < HAND_CARDS; i++) {
            size_t j = i + (size_t)(random_next(&state) % (ARB_POKER_DECK_CARDS - i));
            uint8_t card = deck[i];
            deck[i] = deck[j];
            deck[j] = card;
            hands[n * HAND_CARDS + i] = deck[i];
        }
    }
}

/* Runs. */

/* One timed run: whole passes until the time is up; evaluations per second. */
static double run_rate(pass_function *pass, const uint8_t *hands, uint64_t count, double seconds,
                       uint64_t checksum)
{
    uint64_t sum = 0;
    uint64_t passes = 0;
    double start = seconds_now();
    double elapsed = 0;
    while (elapsed < seconds && passes < PASSES_MAX) {
        sum += pass(hands, count);
        passes++;
        elapsed = seconds_now() - start;
    }
    if (sum != passes * checksum) {
        fprintf(stderr, "poker_eval_bench: a timed pass disagrees with the checksum\n");
        exit(1);
    }
    return (double)(passes * count) / elapsed;
}

static int rate_compare(const void *left, const void *right)
{
    double a = *(const double *)left;
    double b = *(const double *)right;
    return (a > b) - (a < b);
}

/* The report. */

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *file = fopen("/proc/cpuinfo", "r");
    if (file == NULL) {
        return;
    }
    char line[512];
    for (int i = 0; i < 4096 && fgets(line, sizeof line, file) != NULL; i++) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || colon == NULL) {
            continue;
        }
        colon += strspn(colon + 1, " \t") + 1;
        snprintf(out, size, "%.*s", (int)strcspn(colon, "\n"), colon);
        break;
    }
    fclose(file);
}

int main(int argc, char **argv)
{
    options o;
    parse_options(argc, argv, &o);
    double load_before[1] = {-1};
    double load_after[1] = {-1};
    getloadavg(load_before, 1);

    double build_start = seconds_now();
    arb_poker_eval_init();
    double build_ms = (seconds_now() - build_start) * 1e3;

    uint8_t *hands = malloc(o.hands * HAND_CARDS);
    if (hands == NULL) {
        fprintf(stderr, "poker_eval_bench: out of memory for %" PRIu64 " hands\n", o.hands);
        return 1;
    }
    hands_deal(hands, o.hands, o.seed);

    double rates[EVALUATORS][REPEAT_MAX];
    uint64_t checksums[EVALUATORS];
    for (size_t e = 0; e < EVALUATORS; e++) {
        checksums[e] = evaluators[e].pass(hands, o.hands); /* also warms up */
        for (uint64_t r = 0; r < o.repeat; r++) {
            rates[e][r] = run_rate(evaluators[e].pass, hands, o.hands, o.seconds, checksums[e]);
            fprintf(stderr, "poker_eval_bench: %s run %" PRIu64 ": %.1f M/s\n", evaluators[e].name,
                    r + 1, rates[e][r] / 1e6);
        }
        qsort(rates[e], o.repeat, sizeof rates[e][0], rate_compare);
    }
    getloadavg(load_after, 1);

    char model[256];
    cpu_model(model, sizeof model);
    printf("### poker_eval_bench: hand evaluation, one core\n\n");
    printf("- command: `");
    for (int i = 0; i < argc; i++) {
        printf("%s%s", i > 0 ? " " : "", argv[i]);
    }
    printf("`\n");
    printf("- machine: %ld CPUs, %s; load average (1 min) %.2f before, %.2f after\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, load_before[0], load_after[0]);
    printf("- hands: %" PRIu64 " random seven-card hands (seed %" PRIu64
           "), dealt before the clock starts; each run loops over them for at least %.2f s\n",
           o.hands, o.seed, o.seconds);
    printf("- table build (first use): %.1f ms\n\n", build_ms);
    printf("| evaluator | evaluations/s, median of %" PRIu64
           " | lowest | highest | ns each (median) | checksum of one pass |\n",
           o.repeat);
    printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t e = 0; e < EVALUATORS; e++) {
        double median = o.repeat % 2 == 1
                            ? rates[e][o.repeat / 2]
                            : (rates[e][o.repeat / 2 - 1] + rates[e][o.repeat / 2]) / 2;
        printf("| `%s` | %.1f M | %.1f M | %.1f M | %.2f | %" PRIu64 " |\n", evaluators[e].name,
               median / 1e6, rates[e][0] / 1e6, rates[e][o.repeat - 1] / 1e6, 1e9 / median,
               checksums[e]);
    }
    free(hands);
    return 0;
}
