/*
 * loadgen.c - the over-the-wire load generator: many WebSocket connections
 * (subprotocol arbiter.v1) on one libwebsockets context and one thread, each
 * keeping up to --pipeline proposals unanswered, for --warmup + --duration
 * seconds, closed loop (as fast as the server answers) or open loop (--rate:
 * a fixed total rate, whatever the server does). It reports committed/s, the
 * latency of each proposal from its send to its outcome (p50/p99/p999), and
 * the server's CPU per committed command, read from /proc/PID/stat before
 * and after the measured window (--server-pid).
 *
 *   connect all (hello -> welcome) -> [setup: open + fund accounts as admin]
 *   -> warmup (nothing counted) -> measure (counted) -> drain (no new sends,
 *   wait for the outstanding outcomes, bounded) -> one human line, one JSON
 *   line on stdout.
 *
 * Sending: each WRITEABLE callback writes up to WRITES_PER_CALLBACK_MAX
 * proposals. By default they are framed here (masked text frames, RFC 6455
 * 5.2) and handed to lws in one write, one send(2) for all of them, as a
 * pipelining client does; --no-coalesce makes one lws_write per frame. On
 * this machine a system call is the dearest thing the generator does, and
 * every microsecond it spends is taken from the server on the other core.
 *
 * --echo runs the same frames against bench/echo_server, which sends each
 * text frame back as it is: the round trip of a bare libwebsockets server,
 * the baseline for the server's CPU per command.
 *
 * Accounts are "a0" ... "a<N-1>", account k owned by client "lg<k % owners>".
 * Load connection i is client "lg<i>" (role user) and proposes only from the
 * accounts it owns, so the ledger's ownership check runs as in production.
 *
 * Shop mode (--mix reserve=100, docs/inventory.md): the stream is a shop
 * (default shop:bench), the setup adds items "s0" ... "s<N-1>" (--skus) with
 * a stock no run can exhaust, and every load proposal is reserve {sku: a
 * random one, quantity: 1, ttl_s: 3600} by the user "lg<i>". reserve does not
 * mix with the ledger's actions (they are another stream kind).
 * client_seq starts, for every client of one run, at the wall clock in
 * microseconds: larger than any client_seq an earlier run against the same
 * server used (no client sends a proposal per microsecond), so each run's
 * proposals are new and none is an idempotent replay.
 *
 * Ownership and bounds: main owns the context and the connections (freed at
 * exit). Every proposal in flight has a slot indexed by its client_seq
 * modulo SLOTS; a connection never sends while the next slot is taken, so
 * at most SLOTS (= the server's pipelining bound) are unanswered. One
 * message is at most ARB_WIRE_FRAME_BYTES_MAX; every loop is bounded by a
 * count or by the run's deadline.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "arbiter/limits.h"
#include "core/assert.h"

#define PROTOCOL_NAME "arbiter.v1"
#define CONNECTIONS_MAX 1024
#define SLOTS ARB_WIRE_PENDING_PROPOSALS_MAX
#define ACCOUNTS_MAX 100000
#define SETUP_PIPELINE 512
/* Every account is funded with this; 10^5 accounts still sum below 2^53. */
#define DEPOSIT_AMOUNT 1000000000LL
#define AMOUNT_MAX 100
#define HOLD_TIMEOUT_S 600
/* Shop mode: items and their stock, far beyond what any run reserves. */
#define SKUS_MAX 65536
#define SKU_STOCK 1000000000000000LL
#define RESERVE_TTL_S 3600
/* Hold ids a connection keeps for its captures and voids. */
#define HOLDS_KEPT 64
#define HOLD_ID_BYTES 24
#define TX_FRAME_BYTES 512
#define RX_CHUNK_BYTES 65536
/* Frames one WRITEABLE callback may write before it yields to the others. */
#define WRITES_PER_CALLBACK_MAX 64
/* A masked client frame: 2 header bytes, 2 of extended length, 4 of mask. */
#define FRAME_HEADER_BYTES_MAX 8
#define BATCH_BYTES (WRITES_PER_CALLBACK_MAX * (FRAME_HEADER_BYTES_MAX + TX_FRAME_BYTES))
#define CONNECT_TIMEOUT_S 10.0
#define SETUP_TIMEOUT_S 120.0
#define DRAIN_TIMEOUT_S 5.0
#define DURATION_MAX_S 3600.0
#define REJECTION_CODES_MAX 8
#define CODE_BYTES_MAX 40
#define ERRORS_PRINTED_MAX 5

_Static_assert((SLOTS & (SLOTS - 1)) == 0, "slots are indexed by client_seq modulo a power of two");
_Static_assert(SETUP_PIPELINE <= SLOTS, "the setup pipeline fits the slots");

/* Latency histogram: exact below 128 ns, then 64 buckets per power of two
 * (every value within 1/64 of its bucket's bound), up to 2^64 ns. */
#define HIST_LINEAR 128
#define HIST_SUB 64
#define HIST_BUCKETS (HIST_LINEAR + 57 * HIST_SUB)

typedef struct histogram {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max_ns;
    double sum_ns;
} histogram;

typedef enum kind {
    KIND_TRANSFER,
    KIND_HOLD,
    KIND_CAPTURE,
    KIND_VOID,
    KIND_RESERVE,
    KIND_SETUP,
    KIND_COUNT
} kind;
static const char *const kind_names[KIND_COUNT] = {"transfer", "hold",    "capture",
                                                   "void",     "reserve", "setup"};

typedef enum phase {
    PHASE_CONNECT,
    PHASE_SETUP_OPEN,
    PHASE_SETUP_DEPOSIT,
    PHASE_WARMUP,
    PHASE_MEASURE,
    PHASE_DRAIN,
    PHASE_DONE
} phase;

typedef enum conn_state {
    CONN_CONNECTING,
    CONN_OPEN,
    CONN_HELLO_SENT,
    CONN_READY,
    CONN_CLOSED
} conn_state;

typedef struct options {
    char host[256];
    int port;
    char path[256];
    unsigned connections;
    unsigned pipeline;
    double duration_s;
    double warmup_s;
    double rate; /* proposals per second, all connections; 0: closed loop */
    unsigned mix[KIND_SETUP];
    unsigned mix_total;
    long server_pid;
    bool setup;
    bool echo;
    bool no_coalesce;
    unsigned accounts;
    unsigned owners;
    unsigned skus;
    bool shop; /* the mix is reserve only: a shop stream */
    const char *stream;
    const char *admin_id;
    const char *label;
    uint64_t seed;
} options;

typedef struct slot {
    uint64_t sent_ns;
    uint8_t kind;
    bool in_use;
} slot;

struct loadgen;

typedef struct connection {
    struct loadgen *lg;
    struct lws *wsi;
    unsigned index;
    bool admin;
    conn_state state;
    char client_id[ARB_CLIENT_ID_BYTES_MAX + 1];
    uint64_t seq_next; /* the client_seq of the next proposal */
    unsigned outstanding;
    uint64_t sent; /* load proposals sent since the load started (open loop) */
    uint64_t random_state;
    unsigned setup_next; /* admin: the next account to open or fund */
    unsigned owned;      /* accounts this client owns */
    char holds[HOLDS_KEPT][HOLD_ID_BYTES];
    unsigned hold_count;
    unsigned char *rx; /* ARB_WIRE_FRAME_BYTES_MAX: the message being reassembled */
    size_t rx_len;
    bool rx_overflow;
    slot slots[SLOTS];
    unsigned char tx[LWS_PRE + TX_FRAME_BYTES];
    unsigned char *batch; /* LWS_PRE + BATCH_BYTES: frames coalesced into one write */
    size_t batch_len;
} connection;

typedef struct rejection_code {
    char code[CODE_BYTES_MAX];
    uint64_t count;
} rejection_code;

typedef struct measure {
    uint64_t committed[KIND_COUNT];
    uint64_t rejected[KIND_COUNT];
    uint64_t errors;
    rejection_code codes[REJECTION_CODES_MAX];
    histogram latency;
    histogram send_lag;
} measure;

typedef struct loadgen {
    options opt;
    struct lws_context *context;
    connection *conns; /* opt.connections load connections, then the admin's */
    unsigned conn_count;
    phase phase;
    uint64_t phase_start_ns;
    uint64_t load_start_ns;
    uint64_t measure_start_ns, measure_end_ns;
    double server_cpu_start_s, server_cpu_end_s;
    double self_cpu_start_s, self_cpu_end_s;
    uint64_t setup_answered, setup_failed;
    uint64_t unknown_outcomes;
    unsigned errors_printed;
    unsigned closed_during_load;
    bool failed;
    lws_sorted_usec_list_t tick;
    uint64_t tick_us;
    measure m;
} loadgen;

/* The one instance; libwebsockets' callbacks reach it through the
 * connections' user pointers, the tick through this. */
static loadgen *the_loadgen;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double self_cpu_s(void)
{
    struct rusage usage;
    ARB_ASSERT(getrusage(RUSAGE_SELF, &usage) == 0);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process (all its threads), in seconds, from
 * /proc/PID/stat; -1 when it cannot be read. */
static double process_cpu_s(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    char text[1024];
    size_t len = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[len] = '\0';
    /* The command name may hold spaces and parentheses: fields are counted
     * from the last ')'. utime and stime are fields 14 and 15; the state
     * (field 3) follows ") ". */
    const char *p = strrchr(text, ')');
    if (p == NULL)
        return -1;
    unsigned long long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    long ticks = sysconf(_SC_CLK_TCK);
    ARB_ASSERT(ticks > 0);
    return (double)(utime + stime) / (double)ticks;
}

/* splitmix64, one state per connection. */
static uint64_t random_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Histogram. */

static size_t histogram_index(uint64_t value_ns)
{
    if (value_ns < HIST_LINEAR)
        return (size_t)value_ns;
    unsigned exponent = 63u - (unsigned)__builtin_clzll(value_ns); /* >= 7 */
    size_t index = HIST_LINEAR + (size_t)(exponent - 7) * HIST_SUB +
                   (size_t)((value_ns >> (exponent - 6)) - HIST_SUB);
    ARB_ASSERT(index < HIST_BUCKETS);
    return index;
}

/* The largest value that falls in bucket index. */
static uint64_t histogram_bound(size_t index)
{
    ARB_ASSERT(index < HIST_BUCKETS);
    if (index < HIST_LINEAR)
        return index;
    size_t offset = index - HIST_LINEAR;
    unsigned exponent = (unsigned)(offset / HIST_SUB) + 7;
    uint64_t mantissa = offset % HIST_SUB + HIST_SUB;
    return ((mantissa + 1) << (exponent - 6)) - 1;
}

static void histogram_add(histogram *h, uint64_t value_ns)
{
    h->counts[histogram_index(value_ns)]++;
    h->total++;
    h->sum_ns += (double)value_ns;
    if (value_ns > h->max_ns)
        h->max_ns = value_ns;
}

/* The value at quantile q (0 < q <= 1), in µs: the bound of the bucket that
 * holds the ceil(q * total)-th smallest sample, within 1/64 above it. */
static double histogram_quantile_us(const histogram *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->total);
    rank = rank == 0 ? 1 : rank;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t bound = histogram_bound(i);
            return (double)(bound < h->max_ns ? bound : h->max_ns) / 1e3;
        }
    }
    return (double)h->max_ns / 1e3;
}

/* Options. */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen --url ws://HOST:PORT[/PATH] [options]\n"
            "  --connections N   WebSocket connections (default 32, at most --owners)\n"
            "  --pipeline D      unanswered proposals per connection, 1..%d (default 16)\n"
            "  --duration S      measured seconds (default 10; 0 with --setup: setup only)\n"
            "  --warmup S        seconds of load before measuring (default 2)\n"
            "  --rate R          open loop: R proposals/s in all (default 0: closed loop)\n"
            "  --mix LIST        transfer=90,hold=5,capture=3,void=2 (default transfer=100);\n"
            "                    reserve=100: shop mode, reserve on a shop stream\n"
            "  --server-pid PID  read the server's CPU from /proc/PID/stat\n"
            "  --setup           open and fund the accounts (shop mode: add the items)\n"
            "                    as admin first\n"
            "  --admin-id ID     the admin client of --setup (default bench-admin)\n"
            "  --accounts N      accounts a0..a<N-1> (default 1000)\n"
            "  --owners N        account k is owned by client lg<k %% N> (default 256)\n"
            "  --skus N          shop mode: items s0..s<N-1> (default 1000)\n"
            "  --stream NAME     ledger:bench, or shop:bench in shop mode (the default)\n"
            "  --echo            against bench/echo_server: every echoed frame is an outcome\n"
            "  --no-coalesce     one lws_write (one send) per frame; by default the frames\n"
            "                    of one writable callback go out masked in one write\n"
            "  --label TEXT      names the run in the output (default: transfer or echo)\n"
            "  --seed N          random pattern (default 1)\n",
            SLOTS);
}

static bool parse_unsigned(const char *text, unsigned long long min, unsigned long long max,
                           unsigned long long *value_out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *value_out = value;
    return true;
}

static bool parse_seconds(const char *text, double max, double *value_out)
{
    if (text == NULL)
        return false;
    errno = 0;
    char *end = NULL;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value >= 0) || value > max)
        return false;
    *value_out = value;
    return true;
}

/* ws://HOST:PORT[/PATH] */
static bool parse_url(const char *text, options *o)
{
    static const char prefix[] = "ws://";
    if (text == NULL || strncmp(text, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *host = text + sizeof prefix - 1;
    const char *colon = strchr(host, ':');
    if (colon == NULL || colon == host || (size_t)(colon - host) >= sizeof o->host)
        return false;
    memcpy(o->host, host, (size_t)(colon - host));
    o->host[colon - host] = '\0';
    const char *slash = strchr(colon, '/');
    char port[16];
    size_t port_len = slash != NULL ? (size_t)(slash - colon - 1) : strlen(colon + 1);
    if (port_len == 0 || port_len >= sizeof port)
        return false;
    memcpy(port, colon + 1, port_len);
    port[port_len] = '\0';
    unsigned long long value = 0;
    if (!parse_unsigned(port, 1, 65535, &value))
        return false;
    o->port = (int)value;
    snprintf(o->path, sizeof o->path, "%s", slash != NULL ? slash : "/");
    return true;
}

/* transfer=90,hold=5,capture=3,void=2 */
static bool parse_mix(const char *text, options *o)
{
    memset(o->mix, 0, sizeof o->mix);
    o->mix_total = 0;
    const char *p = text;
    for (int item = 0; p != NULL && *p != '\0' && item < KIND_SETUP; item++) {
        const char *equals = strchr(p, '=');
        if (equals == NULL)
            return false;
        int which = -1;
        for (int k = 0; k < KIND_SETUP; k++)
            if (strlen(kind_names[k]) == (size_t)(equals - p) &&
                strncmp(p, kind_names[k], (size_t)(equals - p)) == 0)
                which = k;
        char *end = NULL;
        errno = 0;
        unsigned long weight = strtoul(equals + 1, &end, 10);
        if (which < 0 || errno != 0 || end == equals + 1 || weight > 1000 ||
            (*end != ',' && *end != '\0'))
            return false;
        o->mix[which] = (unsigned)weight;
        o->mix_total += (unsigned)weight;
        p = *end == ',' ? end + 1 : end;
    }
    return (p == NULL || *p == '\0') && o->mix_total > 0;
}

static bool parse_option(options *o, const char *name, const char *value)
{
    unsigned long long n = 0;
    if (strcmp(name, "--url") == 0)
        return parse_url(value, o);
    if (strcmp(name, "--connections") == 0 && parse_unsigned(value, 1, CONNECTIONS_MAX, &n))
        o->connections = (unsigned)n;
    else if (strcmp(name, "--pipeline") == 0 && parse_unsigned(value, 1, SLOTS, &n))
        o->pipeline = (unsigned)n;
    else if (strcmp(name, "--duration") == 0)
        return parse_seconds(value, DURATION_MAX_S, &o->duration_s);
    else if (strcmp(name, "--warmup") == 0)
        return parse_seconds(value, DURATION_MAX_S, &o->warmup_s);
    else if (strcmp(name, "--rate") == 0)
        return parse_seconds(value, 1e8, &o->rate);
    else if (strcmp(name, "--mix") == 0)
        return value != NULL && parse_mix(value, o);
    else if (strcmp(name, "--server-pid") == 0 && parse_unsigned(value, 1, 1u << 30, &n))
        o->server_pid = (long)n;
    else if (strcmp(name, "--accounts") == 0 && parse_unsigned(value, 2, ACCOUNTS_MAX, &n))
        o->accounts = (unsigned)n;
    else if (strcmp(name, "--owners") == 0 && parse_unsigned(value, 1, CONNECTIONS_MAX, &n))
        o->owners = (unsigned)n;
    else if (strcmp(name, "--skus") == 0 && parse_unsigned(value, 1, SKUS_MAX, &n))
        o->skus = (unsigned)n;
    else if (strcmp(name, "--seed") == 0 && parse_unsigned(value, 0, UINT64_MAX, &n))
        o->seed = n;
    else if (strcmp(name, "--stream") == 0 && value != NULL && value[0] != '\0')
        o->stream = value;
    else if (strcmp(name, "--admin-id") == 0 && value != NULL && value[0] != '\0')
        o->admin_id = value;
    else if (strcmp(name, "--label") == 0 && value != NULL && value[0] != '\0')
        o->label = value;
    else
        return false;
    return true;
}

static void parse_options(int argc, char **argv, options *o)
{
    *o = (options){.connections = 32,
                   .pipeline = 16,
                   .duration_s = 10,
                   .warmup_s = 2,
                   .accounts = 1000,
                   .owners = 256,
                   .skus = 1000,
                   .stream = NULL,
                   .admin_id = "bench-admin",
                   .seed = 1};
    o->mix[KIND_TRANSFER] = 100;
    o->mix_total = 100;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        bool *flag = strcmp(argv[i], "--setup") == 0         ? &o->setup
                     : strcmp(argv[i], "--echo") == 0        ? &o->echo
                     : strcmp(argv[i], "--no-coalesce") == 0 ? &o->no_coalesce
                                                             : NULL;
        if (flag != NULL) {
            *flag = true;
            continue;
        }
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!parse_option(o, argv[i], value)) {
            fprintf(stderr, "loadgen: bad option or value: %s %s\n", argv[i],
                    value != NULL ? value : "");
            usage(stderr);
            exit(2);
        }
        i++;
    }
    o->shop = o->mix[KIND_RESERVE] > 0;
    if (o->stream == NULL)
        o->stream = o->shop ? "shop:bench" : "ledger:bench";
    const char *problem = NULL;
    if (o->port == 0)
        problem = "--url ws://HOST:PORT is required";
    else if (o->connections > o->owners)
        problem = "--connections must not exceed --owners (each client owns accounts)";
    else if (o->owners > o->accounts)
        problem = "--owners must not exceed --accounts";
    else if (o->echo && o->setup)
        problem = "--echo and --setup exclude each other";
    else if (o->duration_s == 0 && !o->setup)
        problem = "--duration 0 only makes sense with --setup";
    else if (o->shop && o->mix[KIND_RESERVE] != o->mix_total)
        problem = "reserve does not mix with the ledger's actions (another stream kind)";
    if (problem != NULL) {
        fprintf(stderr, "loadgen: %s\n", problem);
        exit(2);
    }
    if (o->label == NULL)
        o->label = o->echo ? "echo" : o->shop ? "shop" : "ledger";
}

/* Frames. */

static uint64_t random_below(connection *c, uint64_t bound)
{
    ARB_ASSERT(bound > 0);
    return random_next(&c->random_state) % bound;
}

/* Account ids: this connection's own ones for from, any other for to. */
static void pick_accounts(connection *c, unsigned *from_out, unsigned *to_out)
{
    const options *o = &c->lg->opt;
    ARB_ASSERT(c->owned > 0);
    unsigned from = c->index + o->owners * (unsigned)random_below(c, c->owned);
    unsigned to = (unsigned)random_below(c, o->accounts - 1);
    to += to >= from ? 1 : 0;
    ARB_ASSERT(from < o->accounts && to < o->accounts && from != to);
    *from_out = from;
    *to_out = to;
}

static kind pick_kind(connection *c)
{
    const options *o = &c->lg->opt;
    unsigned roll = (unsigned)random_below(c, o->mix_total);
    kind which = KIND_TRANSFER;
    for (int k = 0; k < KIND_SETUP; k++) {
        if (roll < o->mix[k]) {
            which = (kind)k;
            break;
        }
        roll -= o->mix[k];
    }
    /* A capture or void needs a hold of ours; without one, transfer. */
    if ((which == KIND_CAPTURE || which == KIND_VOID) && c->hold_count == 0)
        which = KIND_TRANSFER;
    return which;
}

/* The args of a load proposal of kind *which (which may become transfer). */
static int load_args(connection *c, kind which, char *out, size_t size)
{
    if (which == KIND_RESERVE)
        return snprintf(out, size,
                        "\"action\":\"reserve\",\"args\":{\"sku\":\"s%u\",\"quantity\":1,"
                        "\"ttl_s\":%d}",
                        (unsigned)random_below(c, c->lg->opt.skus), RESERVE_TTL_S);
    unsigned from = 0, to = 0;
    unsigned amount = 1 + (unsigned)random_below(c, AMOUNT_MAX);
    if (which == KIND_CAPTURE || which == KIND_VOID) {
        ARB_ASSERT(c->hold_count > 0);
        const char *hold = c->holds[--c->hold_count];
        return snprintf(out, size, "\"action\":\"%s\",\"args\":{\"pending\":\"%s\"}",
                        kind_names[which], hold);
    }
    pick_accounts(c, &from, &to);
    if (which == KIND_HOLD)
        return snprintf(out, size,
                        "\"action\":\"hold\",\"args\":{\"from\":\"a%u\",\"to\":\"a%u\","
                        "\"amount\":%u,\"timeout_s\":%d}",
                        from, to, amount, HOLD_TIMEOUT_S);
    return snprintf(out, size,
                    "\"action\":\"transfer\",\"args\":{\"from\":\"a%u\",\"to\":\"a%u\","
                    "\"amount\":%u}",
                    from, to, amount);
}

/* What the setup creates: items in shop mode, accounts otherwise. */
static unsigned setup_count(const options *o)
{
    return o->shop ? o->skus : o->accounts;
}

/* The admin's next setup proposal: open every account, then fund it; in
 * shop mode, add every item. */
static int setup_args(connection *c, char *out, size_t size)
{
    const options *o = &c->lg->opt;
    unsigned k = c->setup_next++;
    ARB_ASSERT(k < setup_count(o));
    if (o->shop)
        return snprintf(out, size,
                        "\"action\":\"add_item\",\"args\":{\"sku\":\"s%u\",\"stock\":%lld}", k,
                        SKU_STOCK);
    if (c->lg->phase == PHASE_SETUP_OPEN)
        return snprintf(out, size,
                        "\"action\":\"open_account\",\"args\":{\"account\":\"a%u\","
                        "\"owner\":\"lg%u\",\"currency\":\"EUR\"}",
                        k, k % o->owners);
    return snprintf(out, size,
                    "\"action\":\"deposit\",\"args\":{\"account\":\"a%u\",\"amount\":%lld}", k,
                    DEPOSIT_AMOUNT);
}

/* Build the next proposal into c->tx + LWS_PRE; its length. */
static size_t build_proposal(connection *c, uint64_t client_seq, kind *kind_out)
{
    char action[TX_FRAME_BYTES];
    kind which = KIND_SETUP;
    int action_len = 0;
    if (c->admin) {
        action_len = setup_args(c, action, sizeof action);
    } else {
        which = pick_kind(c);
        action_len = load_args(c, which, action, sizeof action);
    }
    ARB_ASSERT(action_len > 0 && (size_t)action_len < sizeof action);
    char *frame = (char *)c->tx + LWS_PRE;
    int len = snprintf(frame, TX_FRAME_BYTES,
                       "{\"type\":\"propose\",\"client_seq\":%" PRIu64 ",\"stream\":\"%s\",%s}",
                       client_seq, c->lg->opt.stream, action);
    ARB_ASSERT(len > 0 && len < TX_FRAME_BYTES);
    *kind_out = which;
    return (size_t)len;
}

/* Sending. */

static bool load_phase(const loadgen *lg)
{
    return lg->phase == PHASE_WARMUP || lg->phase == PHASE_MEASURE;
}

/* Open loop: the proposals this connection should have sent by now. */
static uint64_t open_loop_due(const connection *c, uint64_t now)
{
    const loadgen *lg = c->lg;
    double per_connection = lg->opt.rate / (double)lg->opt.connections;
    double elapsed_s = (double)(now - lg->load_start_ns) / 1e9;
    return (uint64_t)(elapsed_s * per_connection) + 1;
}

static bool may_send(const connection *c, uint64_t now)
{
    const loadgen *lg = c->lg;
    if (c->state != CONN_READY)
        return false;
    uint64_t next = c->seq_next;
    if (c->slots[next & (SLOTS - 1)].in_use)
        return false;
    if (c->admin) {
        bool setup = lg->phase == PHASE_SETUP_OPEN || lg->phase == PHASE_SETUP_DEPOSIT;
        return setup && c->setup_next < setup_count(&lg->opt) && c->outstanding < SETUP_PIPELINE;
    }
    if (!load_phase(lg) || c->outstanding >= lg->opt.pipeline)
        return false;
    return lg->opt.rate == 0 || c->sent < open_loop_due(c, now);
}

static int send_hello(connection *c)
{
    const char *id = c->client_id;
    char *frame = (char *)c->tx + LWS_PRE;
    int len = snprintf(frame, TX_FRAME_BYTES,
                       "{\"type\":\"hello\",\"proto\":1,\"client_id\":\"%s\"}", id);
    ARB_ASSERT(len > 0 && len < TX_FRAME_BYTES);
    if (lws_write(c->wsi, c->tx + LWS_PRE, (size_t)len, LWS_WRITE_TEXT) < len)
        return -1;
    c->state = CONN_HELLO_SENT;
    return 0;
}

/* Append the message in c->tx to c->batch as one masked text frame
 * (RFC 6455 5.2: FIN, opcode 1, a fresh random mask per frame). */
static void batch_append(connection *c, size_t len)
{
    ARB_ASSERT(len < 65536 && c->batch_len + FRAME_HEADER_BYTES_MAX + len <= BATCH_BYTES);
    unsigned char *out = c->batch + LWS_PRE + c->batch_len;
    size_t at = 0;
    out[at++] = 0x81;
    if (len < 126) {
        out[at++] = (unsigned char)(0x80 | len);
    } else {
        out[at++] = 0x80 | 126;
        out[at++] = (unsigned char)(len >> 8);
        out[at++] = (unsigned char)len;
    }
    uint64_t random = random_next(&c->random_state);
    unsigned char mask[4] = {(unsigned char)random, (unsigned char)(random >> 8),
                             (unsigned char)(random >> 16), (unsigned char)(random >> 24)};
    memcpy(out + at, mask, sizeof mask);
    at += sizeof mask;
    const unsigned char *payload = c->tx + LWS_PRE;
    for (size_t i = 0; i < len; i++)
        out[at + i] = payload[i] ^ mask[i & 3];
    c->batch_len += at + len;
}

/* Write the coalesced frames in one lws_write. LWS_WRITE_HTTP sends bytes
 * as they are (lws frames nothing), through the same path as framed writes:
 * what the socket does not take is buffered and goes out first. */
static int batch_flush(connection *c)
{
    if (c->batch_len == 0)
        return 0;
    int len = (int)c->batch_len;
    c->batch_len = 0;
    return lws_write(c->wsi, c->batch + LWS_PRE, (size_t)len, LWS_WRITE_HTTP) < len ? -1 : 0;
}

/* One proposal, now (or, coalescing, into the batch); records its slot. */
static int send_proposal(connection *c, uint64_t now)
{
    loadgen *lg = c->lg;
    uint64_t client_seq = c->seq_next;
    slot *s = &c->slots[client_seq & (SLOTS - 1)];
    ARB_ASSERT(!s->in_use);
    kind which = KIND_TRANSFER;
    size_t len = build_proposal(c, client_seq, &which);
    if (lg->opt.no_coalesce) {
        if (lws_write(c->wsi, c->tx + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len)
            return -1;
    } else {
        batch_append(c, len);
    }
    *s = (slot){.sent_ns = now, .kind = (uint8_t)which, .in_use = true};
    c->seq_next++;
    c->outstanding++;
    if (!c->admin) {
        if (lg->opt.rate > 0 && lg->phase == PHASE_MEASURE) {
            double per_connection = lg->opt.rate / (double)lg->opt.connections;
            uint64_t intended =
                lg->load_start_ns + (uint64_t)((double)c->sent / per_connection * 1e9);
            histogram_add(&lg->m.send_lag, now > intended ? now - intended : 0);
        }
        c->sent++;
    }
    return 0;
}

static int on_writeable(connection *c)
{
    if (c->state == CONN_OPEN)
        return send_hello(c);
    uint64_t now = now_ns();
    for (int n = 0; n < WRITES_PER_CALLBACK_MAX && may_send(c, now); n++) {
        /* A write the socket could not take whole is buffered by lws;
         * write no more until it has gone out. */
        if (n > 0 && c->lg->opt.no_coalesce && lws_partial_buffered(c->wsi))
            break;
        if (send_proposal(c, now) != 0)
            return -1;
        if (c->lg->opt.no_coalesce)
            now = now_ns();
    }
    if (batch_flush(c) != 0)
        return -1;
    if (may_send(c, now))
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* Receiving. */

/* The unsigned integer after key (e.g. "\"client_seq\":") in msg; false if
 * absent. */
static bool find_u64(const char *msg, size_t len, const char *key, uint64_t *value_out)
{
    size_t key_len = strlen(key);
    const char *at = memmem(msg, len, key, key_len);
    if (at == NULL)
        return false;
    const char *p = at + key_len;
    const char *end = msg + len;
    uint64_t value = 0;
    int digits = 0;
    for (; p < end && *p >= '0' && *p <= '9' && digits < 19; p++, digits++)
        value = value * 10 + (uint64_t)(*p - '0');
    *value_out = value;
    return digits > 0;
}

/* The string after key (e.g. "\"code\":\"") in msg, into out; false if
 * absent or longer than out. */
static bool find_string(const char *msg, size_t len, const char *from, const char *key, char *out,
                        size_t size)
{
    size_t key_len = strlen(key);
    const char *start = from != NULL ? from : msg;
    const char *at = memmem(start, len - (size_t)(start - msg), key, key_len);
    if (at == NULL)
        return false;
    const char *p = at + key_len;
    const char *quote = memchr(p, '"', len - (size_t)(p - msg));
    if (quote == NULL || (size_t)(quote - p) >= size)
        return false;
    memcpy(out, p, (size_t)(quote - p));
    out[quote - p] = '\0';
    return true;
}

static void count_rejection(measure *m, const char *code)
{
    for (int i = 0; i < REJECTION_CODES_MAX; i++) {
        if (m->codes[i].count == 0)
            snprintf(m->codes[i].code, sizeof m->codes[i].code, "%s", code);
        if (strcmp(m->codes[i].code, code) == 0) {
            m->codes[i].count++;
            return;
        }
    }
}

static void keep_hold(connection *c, const char *msg, size_t len)
{
    const char *result = memmem(msg, len, "\"result\":{", 10);
    char id[HOLD_ID_BYTES];
    if (result != NULL && c->hold_count < HOLDS_KEPT &&
        find_string(msg, len, result, "\"pending\":\"", id, sizeof id))
        memcpy(c->holds[c->hold_count++], id, sizeof id);
}

/* A committed or rejected outcome (or, with --echo, an echoed propose). */
static void on_outcome(connection *c, const char *msg, size_t len, bool committed)
{
    loadgen *lg = c->lg;
    uint64_t client_seq = 0;
    slot *s = NULL;
    if (find_u64(msg, len, "\"client_seq\":", &client_seq))
        s = &c->slots[client_seq & (SLOTS - 1)];
    if (s == NULL || !s->in_use || client_seq >= c->seq_next) {
        lg->unknown_outcomes++;
        return;
    }
    uint64_t now = now_ns();
    kind which = (kind)s->kind;
    s->in_use = false;
    ARB_ASSERT(c->outstanding > 0);
    c->outstanding--;
    char code[CODE_BYTES_MAX] = "?";
    if (!committed)
        find_string(msg, len, NULL, "\"code\":\"", code, sizeof code);
    if (which == KIND_SETUP) {
        lg->setup_answered++;
        /* A re-run's setup finds its accounts (or items) there already. */
        if (!committed && strcmp(code, "ACCOUNT_EXISTS") != 0 && strcmp(code, "ITEM_EXISTS") != 0) {
            if (lg->setup_failed++ < ERRORS_PRINTED_MAX)
                fprintf(stderr, "loadgen: setup rejected: %.*s\n", (int)len, msg);
        }
        return;
    }
    if (committed && which == KIND_HOLD && !lg->opt.echo)
        keep_hold(c, msg, len);
    if (lg->phase != PHASE_MEASURE)
        return;
    histogram_add(&lg->m.latency, now - s->sent_ns);
    if (committed) {
        lg->m.committed[which]++;
    } else {
        lg->m.rejected[which]++;
        count_rejection(&lg->m, code);
    }
}

static void on_message(connection *c, const char *msg, size_t len)
{
    loadgen *lg = c->lg;
    char type[32] = "";
    if (!find_string(msg, len, NULL, "\"type\":\"", type, sizeof type))
        type[0] = '\0';
    if (c->state == CONN_HELLO_SENT) {
        if (lg->opt.echo || strcmp(type, "welcome") == 0) {
            c->state = CONN_READY;
            lws_callback_on_writable(c->wsi);
            return;
        }
        fprintf(stderr, "loadgen: %s: hello answered by %.*s\n", c->client_id, (int)len, msg);
        lg->failed = true;
        return;
    }
    if (strcmp(type, "committed") == 0 || (lg->opt.echo && strcmp(type, "propose") == 0))
        on_outcome(c, msg, len, true);
    else if (strcmp(type, "rejected") == 0)
        on_outcome(c, msg, len, false);
    else if (strcmp(type, "error") == 0) {
        lg->m.errors++;
        if (lg->errors_printed++ < ERRORS_PRINTED_MAX)
            fprintf(stderr, "loadgen: %s: %.*s\n", c->client_id, (int)len, msg);
    }
    /* patch, snapshot, pong: not asked for; ignored. */
    if (may_send(c, now_ns()))
        lws_callback_on_writable(c->wsi);
}

/* Reassemble a message from its chunks (one frame may arrive in several). */
static void on_receive(connection *c, const unsigned char *data, size_t len)
{
    if (c->rx_len + len > ARB_WIRE_FRAME_BYTES_MAX) {
        c->rx_overflow = true;
        c->rx_len = 0;
    } else {
        memcpy(c->rx + c->rx_len, data, len);
        c->rx_len += len;
    }
    if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi) > 0)
        return;
    if (c->rx_overflow) {
        fprintf(stderr, "loadgen: %s: a message over %d bytes\n", c->client_id,
                ARB_WIRE_FRAME_BYTES_MAX);
        c->lg->failed = true;
    } else {
        on_message(c, (const char *)c->rx, c->rx_len);
    }
    c->rx_len = 0;
    c->rx_overflow = false;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    connection *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->state = CONN_OPEN;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(c);
    case LWS_CALLBACK_CLIENT_RECEIVE:
        on_receive(c, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fprintf(stderr, "loadgen: %s: connection error: %s\n", c != NULL ? c->client_id : "?",
                in != NULL ? (const char *)in : "(no reason)");
        if (c != NULL) {
            c->state = CONN_CLOSED;
            c->wsi = NULL;
        }
        the_loadgen->failed = true;
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c != NULL) {
            if (the_loadgen->phase < PHASE_DRAIN) {
                fprintf(stderr, "loadgen: %s: closed by the server\n", c->client_id);
                the_loadgen->closed_during_load++;
                the_loadgen->failed = true;
            }
            c->state = CONN_CLOSED;
            c->wsi = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL_NAME, callback, 0, RX_CHUNK_BYTES, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* the end of the list */
};

/* Phases. */

static void connect_one(loadgen *lg, connection *c)
{
    struct lws_client_connect_info info;
    memset(&info, 0, sizeof info);
    info.context = lg->context;
    info.address = lg->opt.host;
    info.port = lg->opt.port;
    info.path = lg->opt.path;
    info.host = lg->opt.host;
    info.origin = lg->opt.host;
    info.protocol = PROTOCOL_NAME;
    info.local_protocol_name = PROTOCOL_NAME;
    info.userdata = c;
    info.pwsi = &c->wsi;
    c->state = CONN_CONNECTING;
    if (lws_client_connect_via_info(&info) == NULL) {
        fprintf(stderr, "loadgen: %s: cannot start connecting to %s:%d\n", c->client_id,
                lg->opt.host, lg->opt.port);
        lg->failed = true;
    }
}

static bool all_ready(const loadgen *lg)
{
    for (unsigned i = 0; i < lg->conn_count; i++)
        if (lg->conns[i].state != CONN_READY)
            return false;
    return true;
}

static unsigned outstanding_total(const loadgen *lg)
{
    unsigned total = 0;
    for (unsigned i = 0; i < lg->conn_count; i++)
        total += lg->conns[i].outstanding;
    return total;
}

static void wake_all(loadgen *lg, uint64_t now)
{
    for (unsigned i = 0; i < lg->conn_count; i++)
        if (lg->conns[i].wsi != NULL && may_send(&lg->conns[i], now))
            lws_callback_on_writable(lg->conns[i].wsi);
}

static void enter(loadgen *lg, phase next, uint64_t now)
{
    lg->phase = next;
    lg->phase_start_ns = now;
    if (next == PHASE_SETUP_DEPOSIT)
        lg->conns[lg->conn_count - 1].setup_next = 0;
    if (next == PHASE_WARMUP)
        lg->load_start_ns = now;
    if (next == PHASE_MEASURE) {
        memset(&lg->m, 0, sizeof lg->m);
        lg->server_cpu_start_s = process_cpu_s(lg->opt.server_pid);
        lg->self_cpu_start_s = self_cpu_s();
        lg->measure_start_ns = now;
    }
    if (next == PHASE_DRAIN) {
        lg->measure_end_ns = now;
        lg->server_cpu_end_s = process_cpu_s(lg->opt.server_pid);
        lg->self_cpu_end_s = self_cpu_s();
    }
    wake_all(lg, now);
}

static bool setup_step_done(const loadgen *lg)
{
    const connection *admin = &lg->conns[lg->conn_count - 1];
    return admin->setup_next == setup_count(&lg->opt) && admin->outstanding == 0;
}

/* The phase after connect and setup. */
static phase after_setup(const loadgen *lg)
{
    return lg->opt.duration_s > 0 ? PHASE_WARMUP : PHASE_DONE;
}

static void advance(loadgen *lg, uint64_t now)
{
    double in_phase_s = (double)(now - lg->phase_start_ns) / 1e9;
    switch (lg->phase) {
    case PHASE_CONNECT:
        if (all_ready(lg))
            enter(lg, lg->opt.setup ? PHASE_SETUP_OPEN : after_setup(lg), now);
        else if (in_phase_s > CONNECT_TIMEOUT_S) {
            fprintf(stderr, "loadgen: not all connections were ready after %.0f s\n",
                    CONNECT_TIMEOUT_S);
            lg->failed = true;
        }
        break;
    case PHASE_SETUP_OPEN:
    case PHASE_SETUP_DEPOSIT:
        if (setup_step_done(lg))
            enter(lg,
                  lg->phase == PHASE_SETUP_OPEN && !lg->opt.shop ? PHASE_SETUP_DEPOSIT
                                                                 : after_setup(lg),
                  now);
        else if (in_phase_s > SETUP_TIMEOUT_S) {
            fprintf(stderr, "loadgen: setup not answered after %.0f s\n", SETUP_TIMEOUT_S);
            lg->failed = true;
        }
        break;
    case PHASE_WARMUP:
        if (in_phase_s >= lg->opt.warmup_s)
            enter(lg, PHASE_MEASURE, now);
        break;
    case PHASE_MEASURE:
        if (in_phase_s >= lg->opt.duration_s)
            enter(lg, PHASE_DRAIN, now);
        break;
    case PHASE_DRAIN:
        if (outstanding_total(lg) == 0 || in_phase_s > DRAIN_TIMEOUT_S)
            enter(lg, PHASE_DONE, now);
        break;
    case PHASE_DONE:
        break;
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    loadgen *lg = the_loadgen;
    ARB_ASSERT(sul == &lg->tick);
    uint64_t now = now_ns();
    advance(lg, now);
    /* Open loop: wake the connections whose next send is due. */
    if (lg->opt.rate > 0 && load_phase(lg))
        wake_all(lg, now);
    if (lg->phase != PHASE_DONE && !lg->failed)
        lws_sul_schedule(lg->context, 0, &lg->tick, on_tick, (lws_usec_t)lg->tick_us);
    else
        lws_cancel_service(lg->context); /* else lws_service sleeps up to 30 s with nothing due */
}

/* Report. */

static uint64_t sum_kinds(const uint64_t counts[KIND_COUNT])
{
    uint64_t total = 0;
    for (int k = 0; k < KIND_SETUP; k++)
        total += counts[k];
    return total;
}

static void report(const loadgen *lg)
{
    const options *o = &lg->opt;
    const measure *m = &lg->m;
    double window_s = (double)(lg->measure_end_ns - lg->measure_start_ns) / 1e9;
    uint64_t committed = sum_kinds(m->committed), rejected = sum_kinds(m->rejected);
    uint64_t outcomes = committed + rejected;
    double server_cpu_s = lg->server_cpu_start_s >= 0 && lg->server_cpu_end_s >= 0
                              ? lg->server_cpu_end_s - lg->server_cpu_start_s
                              : -1;
    double server_us =
        server_cpu_s >= 0 && committed > 0 ? server_cpu_s * 1e6 / (double)committed : -1;
    double self_us =
        outcomes > 0 ? (lg->self_cpu_end_s - lg->self_cpu_start_s) * 1e6 / (double)outcomes : -1;
    double p50 = histogram_quantile_us(&m->latency, 0.50),
           p99 = histogram_quantile_us(&m->latency, 0.99);
    double p999 = histogram_quantile_us(&m->latency, 0.999);
    double lag99 = histogram_quantile_us(&m->send_lag, 0.99);
    printf("loadgen %s: %.0f committed/s (%.0f rejected/s, %" PRIu64 " errors) over %.1f s, "
           "%u conns x pipeline %u, %s; latency p50 %.0f us p99 %.0f us p999 %.0f us max %.0f us; "
           "server CPU %.2f us/committed (%.2f cores); loadgen CPU %.2f us/outcome\n",
           o->label, (double)committed / window_s, (double)rejected / window_s, m->errors, window_s,
           o->connections, o->pipeline, o->rate > 0 ? "open loop" : "closed loop", p50, p99, p999,
           (double)m->latency.max_ns / 1e3, server_us, server_cpu_s / window_s, self_us);
    for (int i = 0; i < REJECTION_CODES_MAX && m->codes[i].count > 0; i++)
        printf("loadgen %s:   rejected %s: %" PRIu64 "\n", o->label, m->codes[i].code,
               m->codes[i].count);
    printf(
        "{\"label\":\"%s\",\"mode\":\"%s\",\"connections\":%u,\"pipeline\":%u,\"rate_target\":%.0f,"
        "\"window_s\":%.3f,\"committed\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"errors\":%" PRIu64
        ",\"committed_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%."
        "1f,"
        "\"mean_us\":%.1f,\"server_cpu_s\":%.3f,\"server_cpu_us_per_committed\":%.3f,"
        "\"loadgen_cpu_us_per_outcome\":%.3f,\"send_lag_p99_us\":%.1f",
        o->label, o->echo ? "echo" : "arbiter", o->connections, o->pipeline, o->rate, window_s,
        committed, rejected, m->errors, (double)committed / window_s, p50, p99, p999,
        (double)m->latency.max_ns / 1e3,
        m->latency.total > 0 ? m->latency.sum_ns / (double)m->latency.total / 1e3 : 0.0,
        server_cpu_s, server_us, self_us, lag99);
    for (int k = 0; k < KIND_SETUP; k++)
        if (o->mix[k] > 0)
            printf(",\"%s_committed\":%" PRIu64 ",\"%s_rejected\":%" PRIu64, kind_names[k],
                   m->committed[k], kind_names[k], m->rejected[k]);
    printf("}\n");
    fflush(stdout);
}

/* Set-up and main. */

static void init_connections(loadgen *lg, uint64_t seq_base)
{
    const options *o = &lg->opt;
    lg->conn_count = o->connections + (o->setup ? 1 : 0);
    lg->conns = calloc(lg->conn_count, sizeof *lg->conns);
    ARB_ASSERT(lg->conns != NULL);
    for (unsigned i = 0; i < lg->conn_count; i++) {
        connection *c = &lg->conns[i];
        c->lg = lg;
        c->index = i;
        c->admin = i == o->connections;
        if (c->admin)
            snprintf(c->client_id, sizeof c->client_id, "%s", o->admin_id);
        else
            snprintf(c->client_id, sizeof c->client_id, "lg%u", i);
        c->seq_next = seq_base + 1;
        c->random_state = o->seed * 0x100000001b3u + i;
        c->owned = c->admin ? 0 : (o->accounts - i + o->owners - 1) / o->owners;
        c->rx = malloc(ARB_WIRE_FRAME_BYTES_MAX);
        c->batch = malloc(LWS_PRE + BATCH_BYTES);
        ARB_ASSERT(c->rx != NULL && c->batch != NULL);
    }
}

static struct lws_context *create_context(void)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.fd_limit_per_thread = 1 + CONNECTIONS_MAX + 16;
    return lws_create_context(&info);
}

int main(int argc, char **argv)
{
    static loadgen lg;
    parse_options(argc, argv, &lg.opt);
    the_loadgen = &lg;
    lws_set_log_level(LLL_ERR, NULL);
    lg.context = create_context();
    if (lg.context == NULL) {
        fprintf(stderr, "loadgen: lws_create_context failed\n");
        return 1;
    }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t seq_base = (uint64_t)wall.tv_sec * 1000000u + (uint64_t)wall.tv_nsec / 1000u;
    init_connections(&lg, seq_base);
    lg.tick_us = lg.opt.rate > 0 ? 1000 : 10000;
    enter(&lg, PHASE_CONNECT, now_ns());
    for (unsigned i = 0; i < lg.conn_count && !lg.failed; i++)
        connect_one(&lg, &lg.conns[i]);
    lws_sul_schedule(lg.context, 0, &lg.tick, on_tick, (lws_usec_t)lg.tick_us);
    /* Bounded by the phases' deadlines: the tick ends every phase. */
    while (lg.phase != PHASE_DONE && !lg.failed)
        if (lws_service(lg.context, 0) < 0)
            break;
    if (lg.opt.setup)
        fprintf(stderr, "loadgen: setup: %u %s, %" PRIu64 " answers, %" PRIu64 " failed\n",
                setup_count(&lg.opt), lg.opt.shop ? "items" : "accounts", lg.setup_answered,
                lg.setup_failed);
    if (lg.unknown_outcomes > 0)
        fprintf(stderr, "loadgen: %" PRIu64 " outcomes matched no proposal in flight\n",
                lg.unknown_outcomes);
    bool measured = lg.opt.duration_s > 0 && lg.measure_end_ns > lg.measure_start_ns;
    if (measured && !lg.failed)
        report(&lg);
    lws_context_destroy(lg.context);
    for (unsigned i = 0; i < lg.conn_count; i++) {
        free(lg.conns[i].rx);
        free(lg.conns[i].batch);
    }
    free(lg.conns);
    bool ok = !lg.failed && lg.setup_failed == 0 && lg.unknown_outcomes == 0;
    return ok ? 0 : 1;
}
