/*
 * ledger_bench.c - durable ledger transfers through the engine and SQLite,
 * in process: how many transfers per second arb_engine_execute commits, and
 * what each costs in CPU, for group-commit batches of 1 to 1024.
 *
 * One run, on a fresh data directory (by default under ./build/bench-data,
 * on the same disk as the repository, because /tmp may be a tmpfs that
 * never really fsyncs):
 *
 *   fsync probe (fdatasync of a 4 KiB overwrite, in the data directory)
 *   -> open the engine -> open and fund the accounts (admin, not timed)
 *   -> for each batch size: execute batches of transfers for --seconds
 *      or --transfers, whichever comes first (timed)
 *   -> the sum of balances equals the deposits -> close -> arb_verify
 *
 * The transfer commands are built once, before any clock starts, into a ring
 * (json_pack and arb_command_set are the client's cost, not the engine's);
 * a timed loop only gives each command the next client_seq of its client.
 * Account i is owned by client i % clients and every transfer is proposed by
 * the owner of its source account with role USER, so the ledger's ownership
 * check runs as it would in production. The whole sweep runs --repeat times,
 * each on a fresh directory, and the table shows the median of each figure.
 *
 * Ownership: the bench owns the ring's commands (cleared at exit) and the
 * outcomes (cleared after each batch). Every loop is bounded by a count.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/engine.h"
#include "core/assert.h"
#include "core/log.h"

#define BENCH_STREAM "ledger:bench"
#define BENCH_CURRENCY "EUR"
#define BENCH_ADMIN_ID "bench-admin"
#define BENCH_DATA_DEFAULT "./build/bench-data"

/* Bounds of the options. */
#define BATCH_SIZES_MAX 16
#define REPEAT_MAX 99
#define CLIENTS_MAX 4096
#define SECONDS_MAX 3600.0
/* Prebuilt transfer commands; a multiple of every power-of-two batch size. */
#define RING_COMMANDS (16 * ARB_BATCH_PROPOSALS_MAX)
/* execute calls timed per batch size (one latency sample each). */
#define CALLS_MAX (1u << 20)
/* Every account gets this much, so that no transfer runs out of funds and
 * 2^20 accounts still sum below 2^53. */
#define DEPOSIT_AMOUNT 1000000000LL
#define TRANSFER_AMOUNT_MAX 100
/* The fsync probe: one second, or this many fdatasyncs. */
#define FSYNC_PROBE_SECONDS 1.0
#define FSYNC_PROBE_ITERATIONS_MAX 200000
#define FSYNC_PROBE_BYTES 4096

typedef struct options {
    const char *data_parent;
    uint64_t accounts;
    uint64_t clients;
    size_t batch_sizes[BATCH_SIZES_MAX];
    size_t batch_size_count;
    double seconds;
    uint64_t transfers_max;
    uint64_t repeat;
    uint64_t seed;
    uint64_t snapshot_every;
    uint64_t verify_every;
    bool json;
    bool keep;
    bool no_pipeline; /* arb_engine_execute per batch instead of submit */
} options;

/* What one batch size measured in one run. */
typedef struct size_result {
    uint64_t committed;
    uint64_t rejected; /* INSUFFICIENT_FUNDS: the only rejection expected */
    uint64_t calls;
    double wall_s;
    double cpu_s;        /* the process: engine thread + SQLite checkpointer */
    double sys_s;        /* of which in the kernel */
    double engine_cpu_s; /* the calling thread alone */
    double p50_us;
    double p99_us;
    double max_us;
    uint64_t write_bytes; /* passed to write(2)/pwrite(2): WAL + checkpoint */
    uint64_t write_calls;
} size_result;

typedef struct bench {
    const options *options;
    arb_engine *engine;
    char dir[PATH_MAX];
    arb_command *ring;    /* RING_COMMANDS transfers, built once */
    uint32_t *ring_owner; /* the client index of each ring command */
    size_t ring_next;
    char (*client_ids)[ARB_CLIENT_ID_BYTES_MAX + 1];
    uint64_t *client_seq; /* per client: the last client_seq sent */
    uint64_t admin_seq;
    arb_command *setup_commands; /* ARB_BATCH_PROPOSALS_MAX */
    arb_outcome *outcomes;       /* ARB_BATCH_PROPOSALS_MAX */
    arb_outcome *outcomes_next;  /* the other batch of the pipeline */
    uint64_t *latency_ns;        /* CALLS_MAX */
    uint64_t random_state;
    double build_us_per_command;
    uint64_t committed_total; /* transfers committed in this run */
} bench;

static _Noreturn void fail(const char *what, int code)
{
    fprintf(stderr, "ledger_bench: %s: %s (%s)\n", what, arb_err_name(code), arb_err_message(code));
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU seconds of who (RUSAGE_SELF or RUSAGE_THREAD); *sys_out: the kernel's
 * part (may be NULL). */
static double cpu_s(int who, double *sys_out)
{
    struct rusage usage;
    ARB_ASSERT(getrusage(who, &usage) == 0);
    double sys = (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    if (sys_out != NULL)
        *sys_out = sys;
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 + sys;
}

/* The process's write(2)-family byte and call counters (all threads), from
 * /proc/self/io; zeros when it cannot be read. */
static void io_counters(uint64_t *bytes_out, uint64_t *calls_out)
{
    *bytes_out = 0;
    *calls_out = 0;
    FILE *file = fopen("/proc/self/io", "r");
    if (file == NULL)
        return;
    char line[128];
    for (int i = 0; i < 16 && fgets(line, sizeof line, file) != NULL; i++) {
        unsigned long long value = 0;
        if (sscanf(line, "wchar: %llu", &value) == 1)
            *bytes_out = value;
        else if (sscanf(line, "syscw: %llu", &value) == 1)
            *calls_out = value;
    }
    fclose(file);
}

/* splitmix64: reproducible from --seed, and no libc state. */
static uint64_t random_next(bench *b)
{
    uint64_t z = (b->random_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of values[0..count); sorts them. */
static double median(double *values, size_t count)
{
    ARB_ASSERT(count > 0);
    qsort(values, count, sizeof *values, compare_double);
    if (count % 2 == 1)
        return values[count / 2];
    return (values[count / 2 - 1] + values[count / 2]) / 2;
}

/* Nearest-rank percentile of sorted samples, in µs. */
static double percentile_us(const uint64_t *sorted, size_t count, unsigned percent)
{
    ARB_ASSERT(count > 0 && percent <= 100);
    size_t rank = (count * percent + 99) / 100;
    size_t index = rank == 0 ? 0 : rank - 1;
    return (double)sorted[index] / 1e3;
}

/* Options. */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ledger_bench [--data DIR] [--accounts N] [--clients N] [--batches 1,4,...]\n"
            "                    [--seconds S] [--transfers N] [--repeat K] [--seed N]\n"
            "                    [--snapshot-every N] [--verify-every N] [--json] [--keep]\n"
            "  --data DIR        parent of the fresh data directories (default %s)\n"
            "  --accounts N      accounts in ledger:bench (default 1000)\n"
            "  --clients N       proposing clients, each owning accounts (default 64)\n"
            "  --batches LIST    batch sizes, 1..%d (default 1,4,16,64,256,1024)\n"
            "  --seconds S       time per batch size (default 3)\n"
            "  --transfers N     at most N transfers per batch size (default 2000000)\n"
            "  --repeat K        whole sweeps, each on a fresh directory; medians (default 3)\n"
            "  --seed N          transfer pattern (default 1)\n"
            "  --snapshot-every  engine snapshot interval in events (default: the engine's)\n"
            "  --verify-every N  arb_verify checks the invariants every N events (default 10000)\n"
            "  --json            also print one JSON line per batch size\n"
            "  --keep            keep the data directories\n"
            "  --no-pipeline     arb_engine_execute per batch (wait for each commit) instead\n"
            "                    of arb_engine_submit (decide the next batch during it)\n",
            BENCH_DATA_DEFAULT, ARB_BATCH_PROPOSALS_MAX);
}

static bool parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *value_out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return false;
    *value_out = value;
    return true;
}

static bool parse_batches(const char *text, options *o)
{
    o->batch_size_count = 0;
    const char *p = text;
    while (p != NULL && *p != '\0') {
        if (*p < '0' || *p > '9' || o->batch_size_count == BATCH_SIZES_MAX)
            return false;
        errno = 0;
        char *end = NULL;
        unsigned long long value = strtoull(p, &end, 10);
        if (errno != 0 || end == p || value < 1 || value > ARB_BATCH_PROPOSALS_MAX ||
            (*end != ',' && *end != '\0'))
            return false;
        o->batch_sizes[o->batch_size_count++] = (size_t)value;
        p = *end == ',' ? end + 1 : end;
    }
    return o->batch_size_count > 0;
}

static bool parse_seconds(const char *text, double *value_out)
{
    if (text == NULL)
        return false;
    errno = 0;
    char *end = NULL;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value > 0) || value > SECONDS_MAX)
        return false;
    *value_out = value;
    return true;
}

static bool parse_option(options *o, const char *name, const char *value)
{
    if (strcmp(name, "--data") == 0) {
        o->data_parent = value;
        return value != NULL && value[0] != '\0';
    }
    if (strcmp(name, "--accounts") == 0)
        return parse_u64(value, 2, ARB_LEDGER_ACCOUNTS_MAX, &o->accounts);
    if (strcmp(name, "--clients") == 0)
        return parse_u64(value, 1, CLIENTS_MAX, &o->clients);
    if (strcmp(name, "--batches") == 0)
        return value != NULL && parse_batches(value, o);
    if (strcmp(name, "--seconds") == 0)
        return parse_seconds(value, &o->seconds);
    if (strcmp(name, "--transfers") == 0)
        return parse_u64(value, 1, UINT32_MAX, &o->transfers_max);
    if (strcmp(name, "--repeat") == 0)
        return parse_u64(value, 1, REPEAT_MAX, &o->repeat);
    if (strcmp(name, "--seed") == 0)
        return parse_u64(value, 0, UINT64_MAX, &o->seed);
    if (strcmp(name, "--snapshot-every") == 0)
        return parse_u64(value, 0, UINT32_MAX, &o->snapshot_every);
    if (strcmp(name, "--verify-every") == 0)
        return parse_u64(value, 1, UINT32_MAX, &o->verify_every);
    return false;
}

static void parse_options(int argc, char **argv, options *o)
{
    static const size_t default_batches[] = {1, 4, 16, 64, 256, 1024};
    *o = (options){.data_parent = BENCH_DATA_DEFAULT,
                   .accounts = 1000,
                   .clients = 64,
                   .seconds = 3.0,
                   .transfers_max = 2000000,
                   .repeat = 3,
                   .seed = 1,
                   .verify_every = 10000};
    o->batch_size_count = sizeof default_batches / sizeof default_batches[0];
    memcpy(o->batch_sizes, default_batches, sizeof default_batches);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(argv[i], "--keep") == 0) {
            o->keep = true;
            continue;
        }
        if (strcmp(argv[i], "--no-pipeline") == 0) {
            o->no_pipeline = true;
            continue;
        }
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!parse_option(o, argv[i], value)) {
            fprintf(stderr, "ledger_bench: bad option or value: %s %s\n", argv[i],
                    value != NULL ? value : "");
            usage(stderr);
            exit(2);
        }
        i++;
    }
    if (o->clients > o->accounts) {
        fprintf(stderr, "ledger_bench: --clients must not exceed --accounts\n");
        exit(2);
    }
}

/* The machine. */

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *file = fopen("/proc/cpuinfo", "r");
    if (file == NULL)
        return;
    char line[512];
    for (int i = 0; i < 4096 && fgets(line, sizeof line, file) != NULL; i++) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || colon == NULL)
            continue;
        colon += strspn(colon + 1, " \t") + 1;
        snprintf(out, size, "%.*s", (int)strcspn(colon, "\n"), colon);
        break;
    }
    fclose(file);
}

static const char *filesystem_name(const char *path)
{
    struct statfs info;
    if (statfs(path, &info) != 0)
        return "unknown";
    switch ((unsigned long)info.f_type) {
    case 0xEF53UL:
        return "ext4";
    case 0x01021994UL:
        return "tmpfs (fsync is a no-op)";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x794C7630UL:
        return "overlayfs";
    case 0x65735546UL:
        return "fuse";
    default:
        return "other";
    }
}

/* The 1-minute load average: the machine is shared, so the report says how
 * busy it was. -1 when unknown. */
static double load_average(void)
{
    double load = -1;
    FILE *file = fopen("/proc/loadavg", "r");
    if (file == NULL)
        return load;
    if (fscanf(file, "%lf", &load) != 1)
        load = -1;
    fclose(file);
    return load;
}

/* fdatasync of a 4 KiB overwrite in dir, per second: the rate one commit
 * per transfer could at best reach on this disk. *cpu_us_out: the CPU time
 * (mostly the kernel's) that one write + fdatasync costs. */
static double fsync_rate(const char *dir, double *cpu_us_out)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/fsync-probe", dir);
    ARB_ASSERT(n > 0 && (size_t)n < sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "ledger_bench: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    char block[FSYNC_PROBE_BYTES];
    memset(block, 'x', sizeof block);
    ARB_ASSERT(pwrite(fd, block, sizeof block, 0) == (ssize_t)sizeof block);
    ARB_ASSERT(fsync(fd) == 0);
    double start = now_s(), elapsed = 0, cpu_start = cpu_s(RUSAGE_THREAD, NULL);
    unsigned count = 0;
    while (count < FSYNC_PROBE_ITERATIONS_MAX && elapsed < FSYNC_PROBE_SECONDS) {
        block[count % sizeof block] ^= 1;
        ARB_ASSERT(pwrite(fd, block, sizeof block, 0) == (ssize_t)sizeof block);
        ARB_ASSERT(fdatasync(fd) == 0);
        count++;
        elapsed = now_s() - start;
    }
    *cpu_us_out = (cpu_s(RUSAGE_THREAD, NULL) - cpu_start) * 1e6 / count;
    close(fd);
    unlink(path);
    return count / elapsed;
}

/* Directories. */

static void make_directories(const char *dir)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s", dir);
    ARB_ASSERT(n > 0 && (size_t)n < sizeof path);
    for (size_t i = 1; i <= (size_t)n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "ledger_bench: mkdir %s: %s\n", path, strerror(errno));
            exit(1);
        }
        path[i] = saved;
    }
}

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void)info;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "ledger_bench: could not remove %s: %s\n", dir, strerror(errno));
}

/* Commands. */

static void account_id(char *out, size_t size, uint64_t index)
{
    int n = snprintf(out, size, "acct-%" PRIu64, index);
    ARB_ASSERT(n > 0 && (size_t)n < size);
}

/* The transfers, built once: random distinct accounts, 1..100 each, proposed
 * by the owner of the source account. */
static void build_ring(bench *b)
{
    const options *o = b->options;
    double start = now_s();
    for (size_t k = 0; k < RING_COMMANDS; k++) {
        uint64_t from = random_next(b) % o->accounts;
        uint64_t to = random_next(b) % (o->accounts - 1);
        to += to >= from;
        ARB_ASSERT(from != to && to < o->accounts);
        char from_id[32], to_id[32];
        account_id(from_id, sizeof from_id, from);
        account_id(to_id, sizeof to_id, to);
        json_int_t amount = 1 + (json_int_t)(random_next(b) % TRANSFER_AMOUNT_MAX);
        json_t *args = json_pack("{s:s, s:s, s:I}", "from", from_id, "to", to_id, "amount", amount);
        ARB_ASSERT(args != NULL);
        b->ring_owner[k] = (uint32_t)(from % o->clients);
        arb_command_init(&b->ring[k]);
        int rc = arb_command_set(&b->ring[k], b->client_ids[b->ring_owner[k]], ARB_ROLE_USER, 1,
                                 BENCH_STREAM, "transfer", args);
        ARB_ASSERT(rc == 0);
        json_decref(args);
    }
    b->build_us_per_command = (now_s() - start) * 1e6 / RING_COMMANDS;
}

/* The next count ring commands, contiguous, each with its client's next seq. */
static arb_command *next_transfers(bench *b, size_t count)
{
    ARB_ASSERT(count >= 1 && count <= ARB_BATCH_PROPOSALS_MAX);
    if (b->ring_next + count > RING_COMMANDS)
        b->ring_next = 0;
    arb_command *commands = &b->ring[b->ring_next];
    for (size_t i = 0; i < count; i++)
        commands[i].client_seq = ++b->client_seq[b->ring_owner[b->ring_next + i]];
    b->ring_next += count;
    return commands;
}

/* Execute setup commands[0..count) as admin; every one must commit. */
static void execute_setup(bench *b, size_t count)
{
    int rc = arb_engine_execute(b->engine, b->setup_commands, count, b->outcomes);
    if (rc != 0)
        fail("setup batch", rc);
    for (size_t i = 0; i < count; i++) {
        if (b->outcomes[i].kind != ARB_OUTCOME_COMMITTED) {
            fprintf(stderr, "ledger_bench: setup rejected: %s\n", b->outcomes[i].message);
            exit(1);
        }
        arb_outcome_clear(&b->outcomes[i]);
        arb_command_clear(&b->setup_commands[i]);
    }
}

/* Open every account (owner: client i % clients) and deposit into it, in
 * full batches. Not timed. */
static void setup_accounts(bench *b)
{
    const options *o = b->options;
    for (int deposit = 0; deposit <= 1; deposit++) {
        for (uint64_t first = 0; first < o->accounts; first += ARB_BATCH_PROPOSALS_MAX) {
            size_t count = (size_t)(o->accounts - first);
            if (count > ARB_BATCH_PROPOSALS_MAX)
                count = ARB_BATCH_PROPOSALS_MAX;
            for (size_t i = 0; i < count; i++) {
                char id[32];
                account_id(id, sizeof id, first + i);
                json_t *args = deposit ? json_pack("{s:s, s:I}", "account", id, "amount",
                                                   (json_int_t)DEPOSIT_AMOUNT)
                                       : json_pack("{s:s, s:s, s:s}", "account", id, "owner",
                                                   b->client_ids[(first + i) % o->clients],
                                                   "currency", BENCH_CURRENCY);
                ARB_ASSERT(args != NULL);
                arb_command_init(&b->setup_commands[i]);
                int rc = arb_command_set(&b->setup_commands[i], BENCH_ADMIN_ID, ARB_ROLE_ADMIN,
                                         ++b->admin_seq, BENCH_STREAM,
                                         deposit ? "deposit" : "open_account", args);
                ARB_ASSERT(rc == 0);
                json_decref(args);
            }
            execute_setup(b, count);
        }
    }
}

/* The timed loop. */

/* Count the outcomes of one batch and clear them. Anything but a fresh
 * commit of one event or an INSUFFICIENT_FUNDS rejection stops the bench. */
static void tally(arb_outcome *outcomes, size_t count, size_result *result)
{
    for (size_t i = 0; i < count; i++) {
        arb_outcome *outcome = &outcomes[i];
        if (outcome->kind == ARB_OUTCOME_COMMITTED && !outcome->replay &&
            outcome->event_count == 1) {
            result->committed++;
        } else if (outcome->kind == ARB_OUTCOME_REJECTED &&
                   outcome->code == ARB_EINSUFFICIENT_FUNDS) {
            result->rejected++;
        } else {
            fprintf(stderr, "ledger_bench: unexpected outcome: kind=%d replay=%d code=%s %s\n",
                    (int)outcome->kind, (int)outcome->replay, arb_err_name(outcome->code),
                    outcome->message);
            exit(1);
        }
        arb_outcome_clear(outcome);
    }
}

static void latency_figures(bench *b, size_result *result)
{
    size_t count = (size_t)result->calls;
    qsort(b->latency_ns, count, sizeof *b->latency_ns, compare_u64);
    result->p50_us = percentile_us(b->latency_ns, count, 50);
    result->p99_us = percentile_us(b->latency_ns, count, 99);
    result->max_us = (double)b->latency_ns[count - 1] / 1e3;
}

static void run_size(bench *b, size_t batch, size_result *result)
{
    const options *o = b->options;
    memset(result, 0, sizeof *result);
    uint64_t deadline_ns = now_ns() + (uint64_t)(o->seconds * 1e9);
    uint64_t bytes_start, calls_start;
    io_counters(&bytes_start, &calls_start);
    double sys_start;
    double cpu_start = cpu_s(RUSAGE_SELF, &sys_start), thread_start = cpu_s(RUSAGE_THREAD, NULL);
    double start = now_s();
    /* Pipelined, a batch is durable when the next submit (or the flush)
     * returns: that is when it is counted, and the end of its latency. */
    bool pending = false;
    uint64_t pending_start = 0;
    while (result->calls < CALLS_MAX && result->committed + result->rejected < o->transfers_max) {
        arb_command *commands = next_transfers(b, batch);
        uint64_t before = now_ns();
        int rc = o->no_pipeline ? arb_engine_execute(b->engine, commands, batch, b->outcomes)
                                : arb_engine_submit(b->engine, commands, batch, b->outcomes);
        uint64_t after = now_ns();
        if (rc != 0)
            fail("arb_engine_submit", rc);
        if (o->no_pipeline) {
            b->latency_ns[result->calls++] = after - before;
            tally(b->outcomes, batch, result);
        } else {
            if (pending) {
                b->latency_ns[result->calls++] = after - pending_start;
                tally(b->outcomes_next, batch, result);
            }
            arb_outcome *swap = b->outcomes;
            b->outcomes = b->outcomes_next;
            b->outcomes_next = swap;
            pending = true;
            pending_start = before;
        }
        if (after >= deadline_ns)
            break;
    }
    if (pending) {
        int rc = arb_engine_flush(b->engine);
        if (rc != 0)
            fail("arb_engine_flush", rc);
        b->latency_ns[result->calls++] = now_ns() - pending_start;
        tally(b->outcomes_next, batch, result);
    }
    result->wall_s = now_s() - start;
    double sys_end;
    result->cpu_s = cpu_s(RUSAGE_SELF, &sys_end) - cpu_start;
    result->sys_s = sys_end - sys_start;
    result->engine_cpu_s = cpu_s(RUSAGE_THREAD, NULL) - thread_start;
    io_counters(&result->write_bytes, &result->write_calls);
    result->write_bytes -= bytes_start;
    result->write_calls -= calls_start;
    ARB_ASSERT(result->calls > 0 && result->wall_s > 0);
    latency_figures(b, result);
    b->committed_total += result->committed;
}

/* Checks at the end of a run. */

/* The sum of balance + held over all accounts equals the deposits. */
static bool check_balances(bench *b)
{
    const options *o = b->options;
    arb_principal viewer = {.id = BENCH_ADMIN_ID, .role = ARB_ROLE_ADMIN};
    json_t *state = NULL;
    uint64_t version = 0;
    int rc = arb_engine_state(b->engine, BENCH_STREAM, &viewer, &state, &version);
    if (rc != 0)
        fail("arb_engine_state", rc);
    json_int_t sum = 0;
    size_t accounts = 0;
    const char *id;
    json_t *account;
    json_object_foreach (json_object_get(state, "accounts"), id, account) {
        sum += json_integer_value(json_object_get(account, "balance")) +
               json_integer_value(json_object_get(account, "held"));
        accounts++;
    }
    json_t *total = json_object_get(json_object_get(state, "totals"), BENCH_CURRENCY);
    json_int_t deposited = json_integer_value(json_object_get(total, "deposited"));
    json_int_t expected = (json_int_t)o->accounts * DEPOSIT_AMOUNT;
    bool ok = accounts == o->accounts && sum == expected && deposited == expected &&
              version == 2 * o->accounts + b->committed_total;
    fprintf(stderr,
            "balances: %s: %zu accounts, sum %" JSON_INTEGER_FORMAT
            ", deposits %" JSON_INTEGER_FORMAT ", stream version %" PRIu64 " (expected %" PRIu64
            ")\n",
            ok ? "ok" : "MISMATCH", accounts, sum, deposited, version,
            2 * o->accounts + b->committed_total);
    json_decref(state);
    return ok;
}

static bool verify_log(bench *b)
{
    arb_verify_report report;
    memset(&report, 0, sizeof report);
    double start = now_s();
    int rc = arb_verify(b->dir, b->options->verify_every, &report);
    uint64_t expected = 2 * b->options->accounts + b->committed_total;
    bool ok = rc == 0 && report.events == expected;
    fprintf(stderr,
            "verify: %s: %" PRIu64 " events (expected %" PRIu64 "), %" PRIu64
            " snapshots compared, %.1f s%s%s\n",
            ok ? "ok" : "FAILED", report.events, expected, report.snapshots_compared,
            now_s() - start, rc != 0 ? "; " : "", rc != 0 ? report.why : "");
    return ok;
}

/* One run: fresh directory, fsync probe, setup, the sweep, the checks. */
static bool run_once(bench *b, unsigned run, size_result *results, double fsync_out[2])
{
    const options *o = b->options;
    int n = snprintf(b->dir, sizeof b->dir, "%s/ledger-XXXXXX", o->data_parent);
    ARB_ASSERT(n > 0 && (size_t)n < sizeof b->dir);
    if (mkdtemp(b->dir) == NULL) {
        fprintf(stderr, "ledger_bench: mkdtemp %s: %s\n", b->dir, strerror(errno));
        exit(1);
    }
    fsync_out[0] = fsync_rate(b->dir, &fsync_out[1]);
    arb_engine_config config = {.data_dir = b->dir, .snapshot_every = (uint32_t)o->snapshot_every};
    int rc = arb_engine_open(&config, &b->engine);
    if (rc != 0)
        fail("arb_engine_open", rc);
    memset(b->client_seq, 0, o->clients * sizeof *b->client_seq);
    b->committed_total = 0;
    setup_accounts(b);
    for (size_t s = 0; s < o->batch_size_count; s++) {
        size_result *r = &results[s];
        run_size(b, o->batch_sizes[s], r);
        double committed = r->committed > 0 ? (double)r->committed : 1;
        fprintf(stderr,
                "run %u batch %4zu: %9.0f transfers/s, %6.2f CPU us/transfer (%2.0f%% sys),"
                " %7.0f commits/s, p50 %8.1f us, p99 %8.1f us, max %8.1f us, %6.0f bytes"
                " written/transfer, %" PRIu64 " rejected\n",
                run, o->batch_sizes[s], r->committed / r->wall_s, r->cpu_s * 1e6 / committed,
                r->cpu_s > 0 ? 100 * r->sys_s / r->cpu_s : 0, r->calls / r->wall_s, r->p50_us,
                r->p99_us, r->max_us, r->write_bytes / committed, r->rejected);
    }
    bool ok = check_balances(b);
    arb_engine_close(b->engine);
    b->engine = NULL;
    ok = verify_log(b) && ok;
    if (!o->keep)
        remove_tree(b->dir);
    return ok;
}

/* Report. */

enum {
    FIGURE_RATE,
    FIGURE_CPU,
    FIGURE_ENGINE_CPU,
    FIGURE_COMMITS,
    FIGURE_P50,
    FIGURE_P99,
    FIGURE_WRITE_BYTES, /* per transfer */
    FIGURE_WRITE_CALLS, /* per commit */
    FIGURES
};

static double figure(const size_result *r, int which)
{
    double committed = r->committed > 0 ? (double)r->committed : 1;
    switch (which) {
    case FIGURE_RATE:
        return r->committed / r->wall_s;
    case FIGURE_CPU:
        return r->cpu_s * 1e6 / committed;
    case FIGURE_ENGINE_CPU:
        return r->engine_cpu_s * 1e6 / committed;
    case FIGURE_COMMITS:
        return r->calls / r->wall_s;
    case FIGURE_P50:
        return r->p50_us;
    case FIGURE_WRITE_BYTES:
        return r->write_bytes / committed;
    case FIGURE_WRITE_CALLS:
        return r->write_calls / (double)r->calls;
    default:
        ARB_ASSERT(which == FIGURE_P99);
        return r->p99_us;
    }
}

static void print_preamble(const bench *b, const double fsync[2], const double load[2], int argc,
                           char **argv)
{
    const options *o = b->options;
    char model[256];
    cpu_model(model, sizeof model);
    printf("### ledger_bench: durable transfers, %s + SQLite (WAL, synchronous=FULL)\n\n",
           o->no_pipeline ? "arb_engine_execute" : "arb_engine_submit (pipelined group commit)");
    printf("- command: `");
    for (int i = 0; i < argc; i++)
        printf("%s%s", i > 0 ? " " : "", argv[i]);
    printf("`\n");
    printf("- machine: %ld CPUs, %s; data under %s (%s)\n", sysconf(_SC_NPROCESSORS_ONLN), model,
           o->data_parent, filesystem_name(o->data_parent));
    printf("- load average (1 min) of the shared machine: %.2f before, %.2f after\n", load[0],
           load[1]);
    printf("- fsync: %.0f fdatasync/s, %.0f us of CPU each (4 KiB overwrite + fdatasync in the "
           "data directory; median of %" PRIu64 ")\n",
           fsync[0], fsync[1], o->repeat);
    printf("- load: %" PRIu64 " accounts owned by %" PRIu64
           " clients (role user), transfers of 1..%d between random accounts; "
           "%.1f s or %" PRIu64 " transfers per batch size; median of %" PRIu64 " runs\n",
           o->accounts, o->clients, TRANSFER_AMOUNT_MAX, o->seconds, o->transfers_max, o->repeat);
    printf("- excluded: building the commands (json_pack + arb_command_set), %.2f us each\n\n",
           b->build_us_per_command);
}

/* m[s][f]: the median over the runs of figure f at batch size s. */
static void medians(const options *o, const size_result *results,
                    double m[BATCH_SIZES_MAX][FIGURES])
{
    double values[REPEAT_MAX];
    for (size_t s = 0; s < o->batch_size_count; s++) {
        for (int f = 0; f < FIGURES; f++) {
            for (uint64_t r = 0; r < o->repeat; r++)
                values[r] = figure(&results[r * o->batch_size_count + s], f);
            m[s][f] = median(values, (size_t)o->repeat);
        }
    }
}

static void print_table(const bench *b, size_result *results, double fsync_median)
{
    const options *o = b->options;
    printf("| batch | transfers/s | CPU us/transfer | engine thread CPU us/transfer | commits/s "
           "| transfers/s / fsync/s | p50 execute us | p99 execute us | bytes written/transfer "
           "| writes/commit |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    double m[BATCH_SIZES_MAX][FIGURES];
    medians(o, results, m);
    for (size_t s = 0; s < o->batch_size_count; s++) {
        printf("| %zu | %.0f | %.2f | %.2f | %.0f | %.1f | %.0f | %.0f | %.0f | %.0f |\n",
               o->batch_sizes[s], m[s][FIGURE_RATE], m[s][FIGURE_CPU], m[s][FIGURE_ENGINE_CPU],
               m[s][FIGURE_COMMITS], m[s][FIGURE_RATE] / fsync_median, m[s][FIGURE_P50],
               m[s][FIGURE_P99], m[s][FIGURE_WRITE_BYTES], m[s][FIGURE_WRITE_CALLS]);
    }
    if (!o->json)
        return;
    printf("\n");
    for (size_t s = 0; s < o->batch_size_count; s++)
        fprintf(stdout,
                "{\"bench\":\"ledger_transfers\",\"batch\":%zu,\"runs\":%" PRIu64
                ",\"transfers_per_s\":%.0f,\"cpu_us_per_transfer\":%.3f,"
                "\"engine_thread_cpu_us_per_transfer\":%.3f,\"commits_per_s\":%.1f,"
                "\"p50_us\":%.1f,\"p99_us\":%.1f,\"write_bytes_per_transfer\":%.0f,"
                "\"writes_per_commit\":%.1f,\"fsync_per_s\":%.0f}\n",
                o->batch_sizes[s], o->repeat, m[s][FIGURE_RATE], m[s][FIGURE_CPU],
                m[s][FIGURE_ENGINE_CPU], m[s][FIGURE_COMMITS], m[s][FIGURE_P50], m[s][FIGURE_P99],
                m[s][FIGURE_WRITE_BYTES], m[s][FIGURE_WRITE_CALLS], fsync_median);
}

static void bench_alloc(bench *b, const options *o)
{
    memset(b, 0, sizeof *b);
    b->options = o;
    b->random_state = o->seed;
    b->ring = calloc(RING_COMMANDS, sizeof *b->ring);
    b->ring_owner = calloc(RING_COMMANDS, sizeof *b->ring_owner);
    b->client_ids = calloc(o->clients, sizeof *b->client_ids);
    b->client_seq = calloc(o->clients, sizeof *b->client_seq);
    b->setup_commands = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof *b->setup_commands);
    b->outcomes = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof *b->outcomes);
    b->outcomes_next = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof *b->outcomes_next);
    b->latency_ns = calloc(CALLS_MAX, sizeof *b->latency_ns);
    if (b->ring == NULL || b->ring_owner == NULL || b->client_ids == NULL ||
        b->client_seq == NULL || b->setup_commands == NULL || b->outcomes == NULL ||
        b->outcomes_next == NULL || b->latency_ns == NULL)
        fail("allocation", ARB_ENOMEM);
    for (uint64_t c = 0; c < o->clients; c++) {
        int n = snprintf(b->client_ids[c], sizeof b->client_ids[c], "bench-client-%" PRIu64, c);
        ARB_ASSERT(n > 0 && (size_t)n < sizeof b->client_ids[c]);
    }
}

static void bench_free(bench *b)
{
    for (size_t k = 0; k < RING_COMMANDS; k++)
        arb_command_clear(&b->ring[k]);
    free(b->ring);
    free(b->ring_owner);
    free(b->client_ids);
    free(b->client_seq);
    free(b->setup_commands);
    free(b->outcomes);
    free(b->outcomes_next);
    free(b->latency_ns);
}

int main(int argc, char **argv)
{
    options o;
    parse_options(argc, argv, &o);
    arb_log_set_level(ARB_LOG_WARN);
    make_directories(o.data_parent);
    bench b;
    bench_alloc(&b, &o);
    build_ring(&b);
    size_result *results = calloc(o.repeat * o.batch_size_count, sizeof *results);
    double fsync[REPEAT_MAX], fsync_cpu[REPEAT_MAX];
    ARB_ASSERT(results != NULL);
    bool ok = true;
    double load[2] = {load_average(), 0};
    for (unsigned run = 1; run <= o.repeat; run++) {
        double probe[2];
        ok = run_once(&b, run, &results[(run - 1) * o.batch_size_count], probe) && ok;
        fsync[run - 1] = probe[0];
        fsync_cpu[run - 1] = probe[1];
    }
    load[1] = load_average();
    double fsync_median = median(fsync, (size_t)o.repeat);
    double fsync_probe[2] = {fsync_median, median(fsync_cpu, (size_t)o.repeat)};
    print_preamble(&b, fsync_probe, load, argc, argv);
    print_table(&b, results, fsync_median);
    printf("\ncorrectness: %s (sum of balances = deposits, arb_verify of every run)\n",
           ok ? "ok" : "FAILED");
    free(results);
    bench_free(&b);
    return ok ? 0 : 1;
}
