/*
 * crash.c - the crash harness (issue 8; docs/reliability.md): arbiterd is
 * killed with SIGKILL at random moments under load, restarted on the same
 * data directory, and checked after every cycle against everything it
 * acknowledged before it died.
 *
 *   setup:  start arbiterd; as "admin", open two funded accounts per user
 *           on ledger:crash-1 and add the items of shop:crash-1
 *   cycle:  drive for a random 50..500 ms (every client pipelining up to
 *           PIPELINE_MAX proposals, each answer recorded with the
 *           proposal's exact bytes; halfway, `arbiter verify` beside the
 *           running server must pass) -> SIGKILL -> `arbiter verify` on the
 *           directory as the crash left it -> restart -> check; the next
 *           cycle drives the restarted server. Every GENERATION_CYCLES
 *           cycles the load moves to a new pair of streams (see there).
 *   check:  resend every proposal of the cycle, acknowledged or not, and a
 *           sample of older acknowledged ones, with the same key and the
 *           same bytes: an acknowledged one must come back as a replay with
 *           the same outcome (seq range or code); one that was in flight
 *           gets a replay (it was decided before the kill, only its answer
 *           was lost) or its first decision. A key sent again with other
 *           content must be refused (IDEMPOTENCY_KEY_REUSED). Then the log
 *           (HTTP, as admin): the last event checked before the kill is
 *           still there with the same hash, seqs are contiguous, every
 *           event group belongs to exactly one proposal of this cycle, which
 *           was committed with exactly that seq range and those events
 *           (count, types, arguments), and every committed proposal has its
 *           group. Then the state: the ledger's money and the shop's units
 *           add up, and match every committed deposit, withdrawal and
 *           restock. The server's log must hold no sanitizer report.
 *   end:    resend every kept old proposal, check again, stop the server
 *           with SIGTERM (it must exit 0) and verify once more.
 *
 * Clients: "u0".."u7" (users, each owning accounts u<i>a0 and u<i>a1) and
 * "admin" (deposits, withdrawals, restocks, transfers between anyone). The
 * mix includes proposals the rules reject (over the limit, someone else's
 * account, closed holds, stale versions, an existing item), holds and
 * reservations short enough to expire across restarts, and linked batches
 * that must apply whole or not at all.
 *
 * Counting: "lost" is an acknowledged proposal whose outcome is missing or
 * different after a restart (or a committed proposal whose events are not in
 * the log as acknowledged); "duplicated" is a proposal decided a second time
 * or whose key appears in more than one event group. Both must be 0. Any
 * violation ends the run with exit 1 and keeps the work directory (data,
 * server log) for inspection; the seed repeats the run's random choices
 * (not its timing).
 *
 * Threads: one per client while driving and while checking, each owning
 * its client (its WebSocket, its proposals, its counters) while it runs;
 * main joins them before it reads any of it, and forks only when it is the
 * one thread. Bounds: PROPOSALS_PER_CYCLE_MAX per client per cycle,
 * RESERVOIR_MAX old proposals per client, STREAMS_MAX streams, and every
 * wait has a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "net/client.h"

#define USERS 8
#define CLIENTS (USERS + 1) /* the users, then the admin */
#define ADMIN_INDEX USERS
#define ACCOUNTS_PER_USER 2
#define ACCOUNTS (USERS * ACCOUNTS_PER_USER)
#define SKUS 8
/* GENERATION_CYCLES: every GENERATION_CYCLES_DEFAULT cycles (or
 * --generation-cycles N) the load moves to a new pair of streams
 * (ledger:crash-N, shop:crash-N). A rejection carries the proposer's view of
 * the whole stream, which keeps every closed hold and reservation, so on one
 * pair of streams every rejection grows with the run (about 130 KB after 12
 * cycles here) and a long run would slow down without bound. The old
 * streams stay in the log: verify covers them after every kill, the check
 * reads the last two generations' logs, and the end reads them all. */
#define GENERATION_CYCLES_DEFAULT 5
#define STREAMS_MAX 4096
#define STREAM_NAME_BYTES 48
/* Unanswered proposals per connection: enough to keep the engine's batches
 * full, far below the server's window (ARB_WIRE_PENDING_PROPOSALS_MAX). */
#define PIPELINE_MAX 64
/* A client's proposals in one cycle: a 500 ms drive sends far fewer. */
#define PROPOSALS_PER_CYCLE_MAX 200000
/* Open holds or reservations a client remembers for its captures, voids,
 * confirms and releases; the oldest is forgotten past this. */
#define IDS_KEPT 128
#define ID_BYTES 32
/* Old acknowledged proposals a client keeps (a uniform sample of all of
 * them, reservoir sampling), and how many of them it resends per cycle. */
#define RESERVOIR_MAX 512
#define OLD_RESENDS_PER_CYCLE 16
/* Acknowledged transfers a user resends with other content per cycle. */
#define TAMPERS_PER_CYCLE 2
/* Holds and reservations last 1 .. LIFETIME_S_MAX seconds: many expire
 * while the server is down or restarting, and their timers must fire after
 * the restart. */
#define LIFETIME_S_MAX 10
#define DRIVE_MS_MIN 50
#define DRIVE_MS_MAX 500
#define INITIAL_DEPOSIT 1000000
#define INITIAL_STOCK 2000
#define AMOUNT_MAX 5000
#define OVER_LIMIT_AMOUNT 2000000 /* above the ledger's default max_transfer */
#define CODE_BYTES 48
#define CYCLES_MAX 1000000
#define START_WAIT_MS 30000
#define CONNECT_WAIT_MS 10000
#define ANSWER_WAIT_MS 30000
#define DRAIN_WAIT_MS 2000
#define HTTP_WAIT_MS 60000
#define EVENTS_PAGE 1000
#define EVENT_PAGES_MAX 1000000
#define TRANSIENT_RETRIES_MAX 200
#define TRANSIENT_WAIT_MS 50
#define VIOLATIONS_KEPT 16
#define MESSAGE_BYTES 512

typedef enum verdict_kind {
    VERDICT_NONE = 0, /* no answer (in flight at the kill), or a transient one */
    VERDICT_COMMITTED,
    VERDICT_REJECTED,
} verdict_kind;

typedef struct verdict {
    verdict_kind kind;
    uint64_t seq_first, seq_last; /* committed */
    char code[CODE_BYTES];        /* rejected */
} verdict;

/* One proposal of the current cycle. */
typedef struct proposal {
    uint64_t client_seq;
    size_t stream;   /* in run->streams */
    json_t *message; /* the propose message (owned) */
    char *text;      /* its exact bytes, as sent and resent (owned) */
    size_t text_len;
    verdict first; /* the answer before the kill */
    verdict final; /* the answer to the resend after the restart */
    bool matched;  /* an event group of the log was found for it */
} proposal;

/* An old acknowledged proposal kept for later resends. */
typedef struct kept_proposal {
    uint64_t client_seq;
    char *text; /* owned */
    size_t text_len;
    verdict outcome;
} kept_proposal;

/* One proposal to (re)send and what came back. */
typedef struct exchange_item {
    const char *text;
    size_t text_len;
    uint64_t client_seq;
    verdict got;
    bool replay;
    unsigned transient_count;
} exchange_item;

typedef struct counters {
    uint64_t sent, acknowledged, committed, rejected, in_flight, transient;
    uint64_t in_flight_replayed, in_flight_fresh, resends, resends_replayed;
    uint64_t old_checked, reused_keys_checked, lost, duplicated, events_checked;
} counters;

typedef struct run run;

/* One stream of the run, and how far its log has been checked. */
typedef struct stream_log {
    char name[STREAM_NAME_BYTES];
    uint64_t version; /* the log checked so far ends here */
    char hash[80];    /* the hash of that last event */
} stream_log;

typedef struct client {
    run *run;
    int index;
    char id[16];
    uint64_t rng;
    arb_ws_client *ws;
    uint64_t next_client_seq;
    uint64_t cycle_first_seq;
    proposal *proposals; /* this cycle's, client_seq = cycle_first_seq + index */
    size_t proposal_count, proposal_cap;
    char holds[IDS_KEPT][ID_BYTES];
    size_t hold_count;
    char reservations[IDS_KEPT][ID_BYTES];
    size_t reservation_count;
    uint64_t ledger_version_seen; /* the highest ledger seq in an answer */
    kept_proposal reservoir[RESERVOIR_MAX];
    size_t reservoir_count;
    uint64_t reservoir_seen;
    counters count;
    double drive_start_ms, first_answer_ms; /* first_answer_ms: after the start; 0 none */
    char violations[VIOLATIONS_KEPT][MESSAGE_BYTES];
    size_t violation_count;
} client;

struct run {
    uint64_t seed;
    long cycles;
    char bin_dir[1024];
    char work_dir[1024];
    char data_dir[1100];
    char log_path[1100];
    char port_file[1100];
    unsigned snapshot_every;
    unsigned check_every;
    bool keep;
    long log_scanned; /* bytes of the log already looked through */
    pid_t server_pid;
    int port;
    char ws_url[64];
    char http_url[64];
    atomic_bool stop;
    bool final_pass; /* the check threads resend every kept proposal */
    uint64_t rng;
    client clients[CLIENTS];
    unsigned generation_cycles;
    long generation;
    stream_log streams[STREAMS_MAX]; /* every stream the run made, oldest first */
    size_t stream_count;
    size_t ledger_stream, shop_stream; /* the current generation's */
    long long deposited, withdrawn;    /* what its committed proposals add up to */
    long long stock[SKUS];
    counters total;
    uint64_t system_events;
    double verify_ms_max, restart_ms_max;
    char violations[VIOLATIONS_KEPT][MESSAGE_BYTES];
    size_t violation_count;
};

/* -- small helpers ------------------------------------------------------ */

static uint64_t random_next(uint64_t *state)
{
    /* splitmix64: every seed, 0 included, gives a full-period sequence. */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A number in min .. max, both included. */
static long random_between(uint64_t *state, long min, long max)
{
    ARB_ASSERT(min <= max);
    return min + (long)(random_next(state) % (uint64_t)(max - min + 1));
}

static double now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6;
}

static void nap_ms(long ms)
{
    struct timespec nap = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
        ;
}

static void add_violation(char (*list)[MESSAGE_BYTES], size_t *count, const char *format,
                          va_list args)
{
    if (*count < VIOLATIONS_KEPT)
        vsnprintf(list[*count], MESSAGE_BYTES, format, args);
    (*count)++;
}

/* A broken promise seen by main. */
__attribute__((format(printf, 2, 3))) static void run_violation(run *r, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    add_violation(r->violations, &r->violation_count, format, args);
    va_end(args);
}

/* A broken promise seen by a client's thread (its own list: no lock). */
__attribute__((format(printf, 2, 3))) static void client_violation(client *c, const char *format,
                                                                   ...)
{
    va_list args;
    va_start(args, format);
    add_violation(c->violations, &c->violation_count, format, args);
    va_end(args);
}

static void verdict_describe(const verdict *v, char *out, size_t size)
{
    if (v->kind == VERDICT_COMMITTED)
        snprintf(out, size, "committed %" PRIu64 "..%" PRIu64, v->seq_first, v->seq_last);
    else if (v->kind == VERDICT_REJECTED)
        snprintf(out, size, "rejected %s", v->code);
    else
        snprintf(out, size, "no outcome");
}

static bool verdict_equal(const verdict *a, const verdict *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == VERDICT_COMMITTED)
        return a->seq_first == b->seq_first && a->seq_last == b->seq_last;
    return a->kind != VERDICT_REJECTED || strcmp(a->code, b->code) == 0;
}

static void counters_add(counters *to, const counters *from)
{
    to->sent += from->sent;
    to->acknowledged += from->acknowledged;
    to->committed += from->committed;
    to->rejected += from->rejected;
    to->in_flight += from->in_flight;
    to->transient += from->transient;
    to->in_flight_replayed += from->in_flight_replayed;
    to->in_flight_fresh += from->in_flight_fresh;
    to->resends += from->resends;
    to->resends_replayed += from->resends_replayed;
    to->old_checked += from->old_checked;
    to->reused_keys_checked += from->reused_keys_checked;
    to->lost += from->lost;
    to->duplicated += from->duplicated;
    to->events_checked += from->events_checked;
}

/* -- the server --------------------------------------------------------- */

/* Start path with argv, its output appended to the run's log; its pid, or
 * -1. Called only while main is the one thread running. */
static pid_t spawn(run *r, const char *path, const char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int log = open(r->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        execv(path, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Start arbiterd on the data directory, on a free port (read back from
 * --port-file); its output is appended to the run's log. 0, or -1 when it
 * exits or does not listen within START_WAIT_MS. */
static int server_start(run *r)
{
    ARB_ASSERT(r->server_pid == 0);
    unlink(r->port_file);
    char path[1100], snapshot_every[32];
    snprintf(path, sizeof path, "%s/arbiterd", r->bin_dir);
    snprintf(snapshot_every, sizeof snapshot_every, "%u", r->snapshot_every);
    const char *argv[] = {"arbiterd",     "--data",      r->data_dir,  "--listen",
                          "127.0.0.1:0",  "--port-file", r->port_file, "--admin",
                          "admin",        "--log-level", "warn",       "--snapshot-every",
                          snapshot_every, NULL};
    pid_t pid = spawn(r, path, argv);
    if (pid < 0)
        return -1;
    r->server_pid = pid;
    r->port = 0;
    for (int waited_ms = 0; waited_ms < START_WAIT_MS; waited_ms += 10) {
        FILE *file = fopen(r->port_file, "r");
        if (file != NULL) {
            int ok = fscanf(file, "%d", &r->port);
            fclose(file);
            if (ok == 1 && r->port > 0)
                break;
        }
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            r->server_pid = 0;
            return -1;
        }
        nap_ms(10);
    }
    if (r->port <= 0)
        return -1;
    snprintf(r->ws_url, sizeof r->ws_url, "ws://127.0.0.1:%d/", r->port);
    snprintf(r->http_url, sizeof r->http_url, "http://127.0.0.1:%d", r->port);
    return 0;
}

/* Send sig and reap; the exit code, or 128 + the signal. */
static int server_stop(run *r, int sig)
{
    ARB_ASSERT(r->server_pid > 0);
    kill(r->server_pid, sig);
    int status = 0;
    pid_t pid;
    do {
        pid = waitpid(r->server_pid, &status, 0);
    } while (pid < 0 && errno == EINTR);
    ARB_ASSERT(pid == r->server_pid);
    r->server_pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* GET path as admin; the parsed body of a 200, else NULL (with a violation). */
static json_t *http_get(run *r, const char *path)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", r->http_url, path);
    arb_http_response response;
    int rc =
        arb_http_request(url, "GET", "X-Client-Id: admin\r\n", NULL, 0, HTTP_WAIT_MS, &response);
    if (rc != 0) {
        run_violation(r, "GET %s: %s", path, arb_err_name(rc));
        return NULL;
    }
    json_t *body = NULL;
    if (response.status == 200)
        body = json_loadb(response.body, response.body_len, 0, NULL);
    if (body == NULL)
        run_violation(r, "GET %s: status %d, body %.200s", path, response.status, response.body);
    arb_http_response_clear(&response);
    return body;
}

/* Run `arbiter verify --data DIR --check-every N`; its exit code. */
static int verify_data(run *r)
{
    char path[1100], check_every[32];
    snprintf(path, sizeof path, "%s/arbiter", r->bin_dir);
    snprintf(check_every, sizeof check_every, "%u", r->check_every);
    const char *argv[] = {"arbiter",       "verify",    "--data", r->data_dir,
                          "--check-every", check_every, NULL};
    pid_t pid = spawn(r, path, argv);
    if (pid < 0)
        return -1;
    int status = 0;
    pid_t got;
    do {
        got = waitpid(pid, &status, 0);
    } while (got < 0 && errno == EINTR);
    return got == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Look through what the server and verify wrote since the last look for
 * a sanitizer's report: ThreadSanitizer and UBSan (when recoverable) go on
 * after one, and a killed server never exits with their status. */
static void log_scan(run *r)
{
    FILE *file = fopen(r->log_path, "r");
    if (file == NULL)
        return;
    if (fseek(file, r->log_scanned, SEEK_SET) == 0) {
        char line[1024];
        while (fgets(line, sizeof line, file) != NULL) {
            if (strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error:") != NULL)
                run_violation(r, "%s: %.300s", r->log_path, line);
        }
        long offset = ftell(file);
        if (offset > 0)
            r->log_scanned = offset;
    }
    fclose(file);
}

/* -- talking to the server ---------------------------------------------- */

static int client_connect(client *c)
{
    ARB_ASSERT(c->ws == NULL);
    int rc = arb_ws_connect(c->run->ws_url, CONNECT_WAIT_MS, &c->ws);
    if (rc != 0)
        return rc;
    char hello[128];
    int len = snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"proto\":1,\"client_id\":\"%s\"}",
                       c->id);
    rc = arb_ws_send(c->ws, hello, (size_t)len);
    char *text = NULL;
    size_t text_len = 0;
    if (rc == 0)
        rc = arb_ws_recv(c->ws, CONNECT_WAIT_MS, &text, &text_len);
    if (rc == 0 && strstr(text, "\"welcome\"") == NULL)
        rc = ARB_EIO;
    free(text);
    return rc;
}

static void client_disconnect(client *c)
{
    if (c->ws != NULL)
        arb_ws_close(c->ws);
    c->ws = NULL;
}

/* What one answer says. */
typedef struct answer {
    uint64_t client_seq;
    verdict verdict; /* kind NONE: transient (not decided, send again) */
    bool replay;
    const char *stream; /* borrowed from message */
    json_t *result;     /* borrowed from message */
} answer;

/* 1: an answer to a proposal; 0: a message to skip; -1: not expected. */
static int answer_parse(json_t *message, answer *out)
{
    memset(out, 0, sizeof *out);
    const char *type = json_string_value(json_object_get(message, "type"));
    if (type == NULL)
        return -1;
    bool committed = strcmp(type, "committed") == 0;
    if (!committed && strcmp(type, "rejected") != 0)
        return strcmp(type, "patch") == 0 || strcmp(type, "snapshot") == 0 ? 0 : -1;
    json_t *client_seq = json_object_get(message, "client_seq");
    out->stream = json_string_value(json_object_get(message, "stream"));
    out->replay = json_is_true(json_object_get(message, "replay"));
    if (!json_is_integer(client_seq) || out->stream == NULL)
        return -1;
    out->client_seq = (uint64_t)json_integer_value(client_seq);
    if (committed) {
        out->verdict.kind = VERDICT_COMMITTED;
        out->verdict.seq_first = (uint64_t)json_integer_value(json_object_get(message, "seq"));
        out->verdict.seq_last = (uint64_t)json_integer_value(json_object_get(message, "seq_last"));
        out->result = json_object_get(message, "result");
        return out->verdict.seq_first >= 1 && out->verdict.seq_last >= out->verdict.seq_first ? 1
                                                                                              : -1;
    }
    const char *code = json_string_value(json_object_get(message, "code"));
    if (code == NULL)
        return -1;
    if (strcmp(code, "OVERLOADED") != 0 && strcmp(code, "SHUTTING_DOWN") != 0) {
        out->verdict.kind = VERDICT_REJECTED;
        snprintf(out->verdict.code, sizeof out->verdict.code, "%s", code);
    }
    return 1;
}

/* Send items[0..count) with at most PIPELINE_MAX unanswered, and fill in
 * each one's answer; transient rejections are sent again. 0, or the error
 * that ended the exchange (the connection closed, no answer in time, an
 * answer that matches nothing: a violation is recorded for those). */
static int exchange(client *c, exchange_item *items, size_t count)
{
    size_t *waiting = calloc(PIPELINE_MAX, sizeof *waiting);
    size_t *retry = calloc(count + 1, sizeof *retry);
    ARB_ASSERT(waiting != NULL && retry != NULL);
    size_t waiting_count = 0, retry_head = 0, retry_tail = 0, next = 0, done = 0;
    int rc = 0;
    while (rc == 0 && done < count) {
        while (waiting_count < PIPELINE_MAX && (next < count || retry_head < retry_tail)) {
            size_t index = retry_head < retry_tail ? retry[retry_head++ % (count + 1)] : next++;
            rc = arb_ws_send(c->ws, items[index].text, items[index].text_len);
            if (rc != 0)
                break;
            waiting[waiting_count++] = index;
        }
        char *text = NULL;
        size_t len = 0;
        if (rc == 0)
            rc = arb_ws_recv(c->ws, ANSWER_WAIT_MS, &text, &len);
        if (rc != 0)
            break;
        json_t *message = json_loadb(text, len, 0, NULL);
        answer a;
        int kind = message != NULL ? answer_parse(message, &a) : -1;
        size_t slot = 0;
        while (kind == 1 && slot < waiting_count && items[waiting[slot]].client_seq != a.client_seq)
            slot++;
        if (kind < 0 || (kind == 1 && slot == waiting_count)) {
            client_violation(c, "%s: an answer that matches no proposal sent: %.300s", c->id, text);
            rc = ARB_EMALFORMED;
        } else if (kind == 1) {
            exchange_item *item = &items[waiting[slot]];
            waiting[slot] = waiting[--waiting_count];
            item->got = a.verdict;
            item->replay = a.replay;
            if (a.verdict.kind != VERDICT_NONE)
                done++;
            else if (++item->transient_count > TRANSIENT_RETRIES_MAX)
                rc = ARB_ETIMEOUT;
            else {
                /* Not decided (OVERLOADED, SHUTTING_DOWN): again, a little later. */
                retry[retry_tail++ % (count + 1)] = (size_t)(item - items);
                nap_ms(TRANSIENT_WAIT_MS);
            }
        }
        json_decref(message);
        free(text);
    }
    free(waiting);
    free(retry);
    return rc;
}

/* -- the load ----------------------------------------------------------- */

/* What one proposal will be, before it gets its key. */
typedef struct plan {
    const char *action;
    bool shop;    /* else the ledger */
    json_t *args; /* owned until the proposal takes it */
    bool has_expect;
    uint64_t expect;
} plan;

static void account_name(int user, int which, char out[16])
{
    snprintf(out, 16, "u%da%d", user, which);
}

static void random_account(uint64_t *rng, char out[16])
{
    account_name((int)random_between(rng, 0, USERS - 1),
                 (int)random_between(rng, 0, ACCOUNTS_PER_USER - 1), out);
}

static void random_sku(uint64_t *rng, char out[16])
{
    snprintf(out, 16, "s%ld", random_between(rng, 0, SKUS - 1));
}

/* Remember an open hold's or reservation's id; past IDS_KEPT the oldest
 * is forgotten. */
static void remember_id(char (*ids)[ID_BYTES], size_t *count, const char *id)
{
    if (id == NULL || strlen(id) >= ID_BYTES)
        return;
    if (*count == IDS_KEPT) {
        memmove(ids[0], ids[1], (IDS_KEPT - 1) * ID_BYTES);
        (*count)--;
    }
    snprintf(ids[(*count)++], ID_BYTES, "%s", id);
}

/* Take a remembered id (false when none is): usually forgotten as it is
 * taken, so that a capture and a void rarely race for one hold; one in
 * eight stays, and its next use is rejected as closed. */
static bool take_id(uint64_t *rng, char (*ids)[ID_BYTES], size_t *count, char out[ID_BYTES])
{
    if (*count == 0)
        return false;
    size_t index = (size_t)random_between(rng, 0, (long)*count - 1);
    snprintf(out, ID_BYTES, "%s", ids[index]);
    if (random_between(rng, 0, 7) != 0) {
        memmove(ids[index], ids[index + 1], (*count - index - 1) * ID_BYTES);
        (*count)--;
    }
    return true;
}

/* One transfer in fifty is over the limit. */
static json_t *transfer_args(uint64_t *rng, const char *from, const char *to)
{
    long amount =
        random_between(rng, 0, 49) == 0 ? OVER_LIMIT_AMOUNT : random_between(rng, 1, AMOUNT_MAX);
    return json_pack("{s:s, s:s, s:i}", "from", from, "to", to, "amount", (int)amount);
}

static json_t *hold_args(uint64_t *rng, const char *from, const char *to)
{
    return json_pack("{s:s, s:s, s:i, s:i}", "from", from, "to", to, "amount",
                     (int)random_between(rng, 1, AMOUNT_MAX), "timeout_s",
                     (int)random_between(rng, 1, LIFETIME_S_MAX));
}

/* transfer + (hold, or a transfer over the limit one time in four: then
 * nothing of the batch may be applied). */
static json_t *batch_args(uint64_t *rng, const char *from, const char *to)
{
    bool over = random_between(rng, 0, 3) == 0;
    json_t *second =
        over ? json_pack("{s:s, s:s, s:i}", "from", from, "to", to, "amount", OVER_LIMIT_AMOUNT)
             : hold_args(rng, from, to);
    return json_pack("{s:[{s:s, s:o}, {s:s, s:o}]}", "items", "action", "transfer", "args",
                     json_pack("{s:s, s:s, s:i}", "from", from, "to", to, "amount",
                               (int)random_between(rng, 1, AMOUNT_MAX)),
                     "action", over ? "transfer" : "hold", "args", second);
}

/* A user's ledger proposal (roll 0 .. 57): transfers, holds, captures,
 * voids, linked batches; and, rarely, a transfer from another user's
 * account or one that expects a version the stream has left. Every
 * rejection answers with the proposer's whole view of the stream, which
 * costs the server far more than a commit, so they are kept to about one
 * proposal in ten. */
static void plan_user_ledger(client *c, long roll, plan *p)
{
    uint64_t *rng = &c->rng;
    char from[16], to[16], other[16], id[ID_BYTES];
    account_name(c->index, (int)random_between(rng, 0, ACCOUNTS_PER_USER - 1), from);
    do
        random_account(rng, to);
    while (strcmp(to, from) == 0);
    account_name((c->index + 1) % USERS, 0, other);
    p->shop = false;
    if (roll >= 41 && roll < 52 && take_id(rng, c->holds, &c->hold_count, id)) {
        bool capture = roll < 47;
        bool partial = capture && random_between(rng, 0, 1) == 0;
        p->action = capture ? "capture" : "void";
        p->args = partial ? json_pack("{s:s, s:i}", "pending", id, "amount",
                                      (int)random_between(rng, 1, 50))
                          : json_pack("{s:s}", "pending", id);
    } else if (roll >= 31 && roll < 52) {
        p->action = "hold", p->args = hold_args(rng, from, to);
    } else if (roll >= 52 && roll < 57) {
        p->action = "batch", p->args = batch_args(rng, from, to);
    } else if (roll == 30) {
        p->action = "transfer", p->args = transfer_args(rng, other, from);
    } else {
        p->action = "transfer", p->args = transfer_args(rng, from, to);
        p->has_expect = roll == 57;
        p->expect = c->ledger_version_seen;
    }
}

/* A user's shop proposal (roll 58 .. 99): reservations (short enough to
 * expire across restarts), carts, confirms, releases; and, rarely, a
 * confirm of an id it does not own or that names nothing. */
static void plan_user_shop(client *c, long roll, plan *p)
{
    uint64_t *rng = &c->rng;
    char sku[16], sku2[16], id[ID_BYTES];
    random_sku(rng, sku);
    do
        random_sku(rng, sku2);
    while (strcmp(sku2, sku) == 0);
    p->shop = true;
    if (roll >= 80 && roll < 96 && take_id(rng, c->reservations, &c->reservation_count, id)) {
        p->action = roll < 90 ? "confirm" : "release";
        p->args = json_pack("{s:s}", "reservation", id);
    } else if (roll == 99) {
        snprintf(id, sizeof id, "r%ld", random_between(rng, 1, 5000));
        p->action = "confirm", p->args = json_pack("{s:s}", "reservation", id);
    } else if (roll >= 96) {
        p->action = "reserve_cart";
        p->args = json_pack("{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items", "sku", sku, "quantity",
                            (int)random_between(rng, 1, 2), "sku", sku2, "quantity",
                            (int)random_between(rng, 1, 2), "ttl_s",
                            (int)random_between(rng, 1, LIFETIME_S_MAX));
    } else {
        p->action = "reserve";
        p->args =
            json_pack("{s:s, s:i, s:i}", "sku", sku, "quantity", (int)random_between(rng, 1, 3),
                      "ttl_s", (int)random_between(rng, 1, LIFETIME_S_MAX));
    }
}

/* The admin's proposals: money in and out, restocks, transfers between
 * anyone, and (rarely) an item that exists. */
static void plan_admin(client *c, plan *p)
{
    uint64_t *rng = &c->rng;
    char account[16], to[16], sku[16];
    random_account(rng, account);
    random_sku(rng, sku);
    long roll = random_between(rng, 0, 99);
    p->shop = false;
    if (roll < 30) {
        p->action = "deposit";
        p->args = json_pack("{s:s, s:i}", "account", account, "amount",
                            (int)random_between(rng, 1, AMOUNT_MAX));
    } else if (roll < 45) {
        p->action = "withdraw";
        p->args = json_pack("{s:s, s:i}", "account", account, "amount",
                            (int)random_between(rng, 1, 2 * AMOUNT_MAX));
    } else if (roll < 65) {
        p->shop = true, p->action = "restock";
        p->args = json_pack("{s:s, s:i}", "sku", sku, "quantity", (int)random_between(rng, 1, 50));
    } else if (roll < 67) {
        p->shop = true, p->action = "add_item";
        p->args = json_pack("{s:s, s:i}", "sku", sku, "stock", 1);
    } else {
        do
            random_account(rng, to);
        while (strcmp(to, account) == 0);
        p->action = "transfer", p->args = transfer_args(rng, account, to);
    }
}

/* A new proposal of this cycle, with the client's next key. */
static proposal *proposal_new(client *c)
{
    plan p = {0};
    if (c->index == ADMIN_INDEX) {
        plan_admin(c, &p);
    } else {
        long roll = random_between(&c->rng, 0, 99);
        if (roll < 58)
            plan_user_ledger(c, roll, &p);
        else
            plan_user_shop(c, roll, &p);
    }
    ARB_ASSERT(p.args != NULL && p.action != NULL);
    ARB_ASSERT(c->proposal_count < PROPOSALS_PER_CYCLE_MAX);
    if (c->proposal_count == c->proposal_cap) {
        c->proposal_cap = c->proposal_cap == 0 ? 1024 : c->proposal_cap * 2;
        c->proposals = realloc(c->proposals, c->proposal_cap * sizeof *c->proposals);
        ARB_ASSERT(c->proposals != NULL);
    }
    proposal *prop = &c->proposals[c->proposal_count++];
    memset(prop, 0, sizeof *prop);
    prop->client_seq = c->next_client_seq++;
    ARB_ASSERT(prop->client_seq == c->cycle_first_seq + c->proposal_count - 1);
    prop->stream = p.shop ? c->run->shop_stream : c->run->ledger_stream;
    prop->message = json_pack(
        "{s:s, s:I, s:s, s:s, s:o}", "type", "propose", "client_seq", (json_int_t)prop->client_seq,
        "stream", c->run->streams[prop->stream].name, "action", p.action, "args", p.args);
    ARB_ASSERT(prop->message != NULL);
    if (p.has_expect)
        json_object_set_new(prop->message, "expect", json_integer((json_int_t)p.expect));
    prop->text = json_dumps(prop->message, JSON_COMPACT);
    ARB_ASSERT(prop->text != NULL);
    prop->text_len = strlen(prop->text);
    return prop;
}

static const char *proposal_action(const proposal *p)
{
    return json_string_value(json_object_get(p->message, "action"));
}

/* Keep the ids of the holds and reservations a committed proposal opened. */
static void learn_ids(client *c, const proposal *p, json_t *result)
{
    const char *action = proposal_action(p);
    if (strcmp(action, "hold") == 0) {
        remember_id(c->holds, &c->hold_count,
                    json_string_value(json_object_get(result, "pending")));
    } else if (strcmp(action, "batch") == 0) {
        size_t index;
        json_t *item;
        json_array_foreach (json_object_get(result, "items"), index, item)
            remember_id(c->holds, &c->hold_count,
                        json_string_value(json_object_get(item, "pending")));
    } else if (strncmp(action, "reserve", 7) == 0) {
        remember_id(c->reservations, &c->reservation_count,
                    json_string_value(json_object_get(result, "reservation")));
    }
}

/* One message received while driving. */
static void drive_answer(client *c, const char *text, size_t len, size_t *in_flight)
{
    json_t *message = json_loadb(text, len, 0, NULL);
    answer a;
    int kind = message != NULL ? answer_parse(message, &a) : -1;
    proposal *p = NULL;
    if (kind == 1 && a.client_seq >= c->cycle_first_seq && a.client_seq < c->next_client_seq)
        p = &c->proposals[a.client_seq - c->cycle_first_seq];
    if (kind != 0 && (p == NULL || p->first.kind != VERDICT_NONE ||
                      strcmp(a.stream, c->run->streams[p->stream].name) != 0 || a.replay)) {
        client_violation(c, "%s: an answer that is no first answer to a proposal sent: %.300s",
                         c->id, text);
    } else if (kind == 1) {
        ARB_ASSERT(*in_flight > 0);
        (*in_flight)--;
        p->first = a.verdict;
        if (a.verdict.kind == VERDICT_NONE)
            c->count.transient++;
        if (a.verdict.kind == VERDICT_COMMITTED) {
            learn_ids(c, p, a.result);
            if (p->stream == c->run->ledger_stream && a.verdict.seq_last > c->ledger_version_seen)
                c->ledger_version_seen = a.verdict.seq_last;
        }
    }
    json_decref(message);
}

/* A client's thread while the server runs: keep PIPELINE_MAX proposals in
 * flight until the run says stop (after the kill), then take what was
 * received until the connection reports closed. */
static void *drive_thread(void *arg)
{
    client *c = arg;
    size_t in_flight = 0;
    bool can_send = true;
    c->drive_start_ms = now_ms();
    c->first_answer_ms = 0;
    for (;;) {
        if (atomic_load(&c->run->stop))
            can_send = false;
        while (can_send && in_flight < PIPELINE_MAX &&
               c->proposal_count < PROPOSALS_PER_CYCLE_MAX) {
            proposal *p = proposal_new(c);
            c->count.sent++;
            if (arb_ws_send(c->ws, p->text, p->text_len) != 0)
                can_send = false;
            else
                in_flight++;
        }
        char *text = NULL;
        size_t len = 0;
        int rc = arb_ws_recv(c->ws, can_send ? 20 : DRAIN_WAIT_MS, &text, &len);
        if (rc == ARB_ETIMEOUT && can_send)
            continue;
        if (rc != 0)
            break;
        if (c->first_answer_ms == 0)
            c->first_answer_ms = now_ms() - c->drive_start_ms;
        drive_answer(c, text, len, &in_flight);
        free(text);
    }
    return NULL;
}

/* -- after the restart: resend everything ------------------------------- */

/* An acknowledged proposal, sent again: the same outcome, as a replay. */
static void judge_acknowledged(client *c, uint64_t client_seq, const verdict *was,
                               const exchange_item *item)
{
    char before[96], after[96];
    verdict_describe(was, before, sizeof before);
    verdict_describe(&item->got, after, sizeof after);
    if (!item->replay) {
        c->count.duplicated++;
        client_violation(c, "%s #%" PRIu64 ": acknowledged (%s), then decided again (%s)", c->id,
                         client_seq, before, after);
    } else if (!verdict_equal(was, &item->got)) {
        c->count.lost++;
        client_violation(c, "%s #%" PRIu64 ": acknowledged (%s), replayed as %s", c->id, client_seq,
                         before, after);
    }
}

static void judge_cycle(client *c, proposal *p, const exchange_item *item)
{
    c->count.resends++;
    c->count.resends_replayed += item->replay;
    if (p->first.kind != VERDICT_NONE)
        judge_acknowledged(c, p->client_seq, &p->first, item);
    else if (item->replay)
        c->count.in_flight_replayed++; /* decided before the kill; its answer was lost */
    else
        c->count.in_flight_fresh++;
    p->final = item->got;
}

/* Acknowledged transfers of this cycle sent again with other content (a
 * memo): the key is taken, so IDEMPOTENCY_KEY_REUSED, and nothing applied
 * (the log check would find a second event group). */
static int tamper_check(client *c)
{
    size_t done = 0;
    size_t start = c->proposal_count == 0 ? 0 : (size_t)random_next(&c->rng) % c->proposal_count;
    for (size_t k = 0; k < c->proposal_count && done < TAMPERS_PER_CYCLE; k++) {
        proposal *p = &c->proposals[(start + k) % c->proposal_count];
        if (p->first.kind == VERDICT_NONE || strcmp(proposal_action(p), "transfer") != 0)
            continue;
        json_t *copy = json_deep_copy(p->message);
        json_object_set_new(json_object_get(copy, "args"), "memo", json_string("tampered"));
        char *text = json_dumps(copy, JSON_COMPACT);
        json_decref(copy);
        ARB_ASSERT(text != NULL);
        exchange_item item = {.text = text, .text_len = strlen(text), .client_seq = p->client_seq};
        int rc = exchange(c, &item, 1);
        free(text);
        if (rc != 0)
            return rc;
        if (item.got.kind != VERDICT_REJECTED ||
            strcmp(item.got.code, "IDEMPOTENCY_KEY_REUSED") != 0) {
            char got[96];
            verdict_describe(&item.got, got, sizeof got);
            c->count.duplicated += item.got.kind == VERDICT_COMMITTED;
            client_violation(c, "%s #%" PRIu64 ": its key with other content got %s", c->id,
                             p->client_seq, got);
        }
        c->count.reused_keys_checked++;
        done++;
    }
    return 0;
}

/* A client's thread after a restart: connect, resend every proposal of the
 * cycle and a few old ones (all old ones on the final pass), judge each
 * answer. The connection stays open for the next cycle's drive. */
static void *check_thread(void *arg)
{
    client *c = arg;
    bool final_pass = c->run->final_pass;
    int rc = c->ws == NULL ? client_connect(c) : 0;
    if (rc != 0) {
        client_violation(c, "%s: cannot connect after the restart: %s", c->id, arb_err_name(rc));
        return NULL;
    }
    size_t old_count = final_pass                                   ? c->reservoir_count
                       : c->reservoir_count < OLD_RESENDS_PER_CYCLE ? c->reservoir_count
                                                                    : OLD_RESENDS_PER_CYCLE;
    size_t count = c->proposal_count + old_count;
    exchange_item *items = calloc(count + 1, sizeof *items);
    ARB_ASSERT(items != NULL);
    for (size_t i = 0; i < c->proposal_count; i++)
        items[i] = (exchange_item){.text = c->proposals[i].text,
                                   .text_len = c->proposals[i].text_len,
                                   .client_seq = c->proposals[i].client_seq};
    size_t start = c->reservoir_count == 0 ? 0 : (size_t)random_next(&c->rng) % c->reservoir_count;
    for (size_t k = 0; k < old_count; k++) {
        const kept_proposal *kept = &c->reservoir[(start + k) % c->reservoir_count];
        items[c->proposal_count + k] = (exchange_item){
            .text = kept->text, .text_len = kept->text_len, .client_seq = kept->client_seq};
    }
    rc = exchange(c, items, count);
    if (rc == 0) {
        for (size_t i = 0; i < c->proposal_count; i++)
            judge_cycle(c, &c->proposals[i], &items[i]);
        for (size_t k = 0; k < old_count; k++) {
            const kept_proposal *kept = &c->reservoir[(start + k) % c->reservoir_count];
            judge_acknowledged(c, kept->client_seq, &kept->outcome, &items[c->proposal_count + k]);
            c->count.old_checked++;
        }
        if (c->index != ADMIN_INDEX && !final_pass)
            rc = tamper_check(c);
    }
    if (rc != 0)
        client_violation(c, "%s: resending after the restart failed: %s", c->id, arb_err_name(rc));
    free(items);
    return NULL;
}

/* Run fn on every client, one thread each, and wait for all. */
static void run_clients(run *r, void *(*fn)(void *))
{
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        ARB_ASSERT(pthread_create(&threads[i], NULL, fn, &r->clients[i]) == 0);
    for (int i = 0; i < CLIENTS; i++)
        ARB_ASSERT(pthread_join(threads[i], NULL) == 0);
}

/* -- the log ------------------------------------------------------------ */

/* One run of consecutive events with the same key. */
typedef struct group {
    char client_id[80];
    uint64_t client_seq;
    uint64_t seq_first, seq_last;
    json_t *events; /* owned */
} group;

static const char *event_type_of(const char *action)
{
    static const char *const map[][2] = {
        {"transfer", "transferred"},  {"hold", "held"},           {"capture", "captured"},
        {"void", "voided"},           {"deposit", "deposited"},   {"withdraw", "withdrawn"},
        {"restock", "restocked"},     {"add_item", "item_added"}, {"reserve", "reserved"},
        {"reserve_cart", "reserved"}, {"confirm", "confirmed"},   {"release", "released"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], action) == 0)
            return map[i][1];
    return "?";
}

/* Does one event say what this action with these args asked for? */
static bool event_matches(const char *action, json_t *args, json_t *event, const char *client_id)
{
    const char *type = json_string_value(json_object_get(event, "type"));
    json_t *data = json_object_get(event, "data");
    if (type == NULL || strcmp(type, event_type_of(action)) != 0 || !json_is_object(data))
        return false;
    const char *key;
    json_t *value;
    json_object_foreach (args, key, value) {
        json_t *written = json_object_get(data, key);
        if (written != NULL && !json_equal(written, value))
            return false;
    }
    if (strcmp(action, "reserve") == 0) {
        json_t *line = json_array_get(json_object_get(data, "items"), 0);
        const char *owner = json_string_value(json_object_get(data, "owner"));
        return json_equal(json_object_get(line, "sku"), json_object_get(args, "sku")) &&
               json_equal(json_object_get(line, "quantity"), json_object_get(args, "quantity")) &&
               owner != NULL && strcmp(owner, client_id) == 0;
    }
    if (strcmp(action, "reserve_cart") == 0)
        return json_equal(json_object_get(data, "items"), json_object_get(args, "items"));
    return true;
}

/* Are these the events of this proposal: one per item, in order? */
static bool events_match(const proposal *p, json_t *events, const char *client_id)
{
    const char *action = proposal_action(p);
    json_t *args = json_object_get(p->message, "args");
    if (strcmp(action, "batch") != 0)
        return json_array_size(events) == 1 &&
               event_matches(action, args, json_array_get(events, 0), client_id);
    json_t *items = json_object_get(args, "items");
    if (json_array_size(items) != json_array_size(events))
        return false;
    size_t index;
    json_t *item;
    json_array_foreach (items, index, item) {
        const char *item_action = json_string_value(json_object_get(item, "action"));
        if (!event_matches(item_action, json_object_get(item, "args"),
                           json_array_get(events, index), client_id))
            return false;
    }
    return true;
}

static client *client_by_id(run *r, const char *id)
{
    for (int i = 0; i < CLIENTS; i++)
        if (strcmp(r->clients[i].id, id) == 0)
            return &r->clients[i];
    return NULL;
}

/* One event group: it must be the whole of one committed proposal of this
 * cycle, seen once. */
static void group_check(run *r, size_t stream, const group *g)
{
    if (g->events == NULL)
        return;
    if (strcmp(g->client_id, "$system") == 0) {
        r->system_events += json_array_size(g->events);
        return;
    }
    client *c = client_by_id(r, g->client_id);
    const char *where = r->streams[stream].name;
    if (c == NULL || g->client_seq >= c->next_client_seq) {
        run_violation(r, "%s %" PRIu64 "..%" PRIu64 ": events of %s #%" PRIu64 ", never proposed",
                      where, g->seq_first, g->seq_last, g->client_id, g->client_seq);
        return;
    }
    if (g->client_seq < c->cycle_first_seq) {
        c->count.duplicated++;
        run_violation(
            r, "%s %" PRIu64 "..%" PRIu64 ": %s #%" PRIu64 " of an earlier cycle applied again",
            where, g->seq_first, g->seq_last, g->client_id, g->client_seq);
        return;
    }
    proposal *p = &c->proposals[g->client_seq - c->cycle_first_seq];
    verdict in_log = {
        .kind = VERDICT_COMMITTED, .seq_first = g->seq_first, .seq_last = g->seq_last};
    char outcome[96];
    verdict_describe(&p->final, outcome, sizeof outcome);
    if (p->matched) {
        c->count.duplicated++;
        run_violation(r, "%s %" PRIu64 "..%" PRIu64 ": %s #%" PRIu64 " has a second event group",
                      where, g->seq_first, g->seq_last, g->client_id, g->client_seq);
    } else if (p->stream != stream || !verdict_equal(&p->final, &in_log)) {
        c->count.lost++;
        run_violation(r,
                      "%s %" PRIu64 "..%" PRIu64 ": events of %s #%" PRIu64 ", whose outcome is %s",
                      where, g->seq_first, g->seq_last, g->client_id, g->client_seq, outcome);
    } else if (!events_match(p, g->events, g->client_id)) {
        char *events = json_dumps(g->events, JSON_COMPACT);
        run_violation(r,
                      "%s %" PRIu64 ": the events of %s #%" PRIu64
                      " are not what it proposed (%s): %.300s",
                      where, g->seq_first, g->client_id, g->client_seq, p->text, events);
        free(events);
    }
    p->matched = true;
}

/* The newest event of a stream: its seq and hash (0 when it has none). */
static int stream_tip(run *r, size_t stream, uint64_t at, uint64_t *seq_out, char *hash,
                      size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/streams/%s/events?since=%" PRIu64 "&limit=1",
             r->streams[stream].name, at > 0 ? at - 1 : 0);
    json_t *body = http_get(r, path);
    if (body == NULL)
        return -1;
    json_t *event = json_array_get(json_object_get(body, "events"), 0);
    *seq_out = (uint64_t)json_integer_value(json_object_get(event, "seq"));
    snprintf(hash, size, "%s",
             event != NULL ? json_string_value(json_object_get(event, "hash")) : "");
    json_decref(body);
    return 0;
}

/* Add one event to the group being read, or close that group and start a
 * new one. */
static void group_add(run *r, size_t stream, group *g, json_t *event)
{
    const char *client_id = json_string_value(json_object_get(event, "client_id"));
    uint64_t client_seq = (uint64_t)json_integer_value(json_object_get(event, "client_seq"));
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(event, "seq"));
    if (client_id == NULL)
        client_id = "?";
    if (g->events == NULL || strcmp(g->client_id, client_id) != 0 || g->client_seq != client_seq) {
        group_check(r, stream, g);
        json_decref(g->events);
        snprintf(g->client_id, sizeof g->client_id, "%s", client_id);
        g->client_seq = client_seq;
        g->seq_first = seq;
        g->events = json_array();
    }
    g->seq_last = seq;
    json_array_append(g->events, event);
}

/* Read the stream's log from where the last check ended: that end is
 * unchanged, the seqs after it contiguous, every group accounted for. */
static void log_check(run *r, size_t stream)
{
    stream_log *log = &r->streams[stream];
    const char *name = log->name;
    uint64_t cursor = log->version, tip = 0;
    char hash[80];
    if (stream_tip(r, stream, cursor, &tip, hash, sizeof hash) != 0)
        return;
    if (tip != cursor || strcmp(hash, log->hash) != 0) {
        run_violation(r,
                      "%s: event %" PRIu64 " changed across the restart (now seq %" PRIu64
                      ", hash %s; was %s)",
                      name, cursor, tip, hash, log->hash);
        return;
    }
    group g = {0};
    for (long page = 0; page < EVENT_PAGES_MAX; page++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/streams/%s/events?since=%" PRIu64 "&limit=%d", name,
                 cursor, EVENTS_PAGE);
        json_t *body = http_get(r, path);
        json_t *events = json_object_get(body, "events");
        size_t index;
        json_t *event;
        json_array_foreach (events, index, event) {
            uint64_t seq = (uint64_t)json_integer_value(json_object_get(event, "seq"));
            if (seq != cursor + 1) {
                run_violation(r, "%s: seq %" PRIu64 " follows %" PRIu64, name, seq, cursor);
                break;
            }
            cursor = seq;
            snprintf(log->hash, sizeof log->hash, "%s",
                     json_string_value(json_object_get(event, "hash")));
            group_add(r, stream, &g, event);
            r->total.events_checked++;
        }
        bool more = json_array_size(events) > 0 && r->violation_count == 0;
        json_decref(body);
        if (!more)
            break;
    }
    group_check(r, stream, &g);
    json_decref(g.events);
    log->version = cursor;
}

/* Every committed proposal of the cycle must have had its event group. */
static void unmatched_check(run *r)
{
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &r->clients[i];
        for (size_t k = 0; k < c->proposal_count; k++) {
            proposal *p = &c->proposals[k];
            if (p->final.kind != VERDICT_COMMITTED || p->matched)
                continue;
            c->count.lost++;
            run_violation(r, "%s #%" PRIu64 ": committed %" PRIu64 "..%" PRIu64 ", not in the log",
                          c->id, p->client_seq, p->final.seq_first, p->final.seq_last);
        }
    }
}

/* -- the state ---------------------------------------------------------- */

static long long integer_of(json_t *object, const char *key)
{
    return (long long)json_integer_value(json_object_get(object, key));
}

/* "s3" -> 3; -1 for anything else. */
static int sku_index(const char *sku)
{
    if (sku == NULL || sku[0] != 's')
        return -1;
    char *end = NULL;
    long index = strtol(sku + 1, &end, 10);
    return end != sku + 1 && *end == '\0' && index >= 0 && index < SKUS ? (int)index : -1;
}

/* "u3a1" -> 7; -1 for anything else. */
static int account_index(const char *account)
{
    if (account == NULL || account[0] != 'u')
        return -1;
    char *end = NULL;
    long user = strtol(account + 1, &end, 10);
    if (end == account + 1 || *end != 'a' || user < 0 || user >= USERS)
        return -1;
    const char *rest = end + 1;
    long which = strtol(rest, &end, 10);
    if (end == rest || *end != '\0' || which < 0 || which >= ACCOUNTS_PER_USER)
        return -1;
    return (int)(user * ACCOUNTS_PER_USER + which);
}

/* Add what this cycle's committed admin proposals did to the totals the
 * state must show. */
static void expected_totals_update(run *r)
{
    client *admin = &r->clients[ADMIN_INDEX];
    for (size_t k = 0; k < admin->proposal_count; k++) {
        const proposal *p = &admin->proposals[k];
        if (p->final.kind != VERDICT_COMMITTED)
            continue;
        const char *action = proposal_action(p);
        json_t *args = json_object_get(p->message, "args");
        if (strcmp(action, "deposit") == 0)
            r->deposited += integer_of(args, "amount");
        else if (strcmp(action, "withdraw") == 0)
            r->withdrawn += integer_of(args, "amount");
        else if (strcmp(action, "restock") == 0)
            r->stock[sku_index(json_string_value(json_object_get(args, "sku")))] +=
                integer_of(args, "quantity");
    }
}

/* The ledger: every account known and solvent, its held money that of its
 * pending holds, and the money of all accounts what was deposited minus
 * what was withdrawn, both equal to the committed proposals' sums. */
static void ledger_check(run *r)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/streams/%s", r->streams[r->ledger_stream].name);
    json_t *body = http_get(r, path);
    json_t *state = json_object_get(body, "state");
    if (state == NULL)
        goto done;
    long long held_by_holds[ACCOUNTS] = {0};
    const char *id;
    json_t *value;
    json_object_foreach (json_object_get(state, "pending"), id, value) {
        int from = account_index(json_string_value(json_object_get(value, "from")));
        const char *status = json_string_value(json_object_get(value, "status"));
        if (from < 0 || status == NULL)
            run_violation(r, "ledger: hold %s is malformed", id);
        else if (strcmp(status, "pending") == 0)
            held_by_holds[from] += integer_of(value, "amount");
    }
    long long sum = 0;
    size_t accounts = 0;
    json_object_foreach (json_object_get(state, "accounts"), id, value) {
        int index = account_index(id);
        long long balance = integer_of(value, "balance"), held = integer_of(value, "held");
        if (index < 0 || balance < 0 || held < 0 || held != held_by_holds[index])
            run_violation(r, "ledger: account %s: balance %lld, held %lld, its pending holds %lld",
                          id, balance, held, index < 0 ? -1 : held_by_holds[index]);
        sum += balance + held;
        accounts++;
    }
    json_t *totals = json_object_get(json_object_get(state, "totals"), "EUR");
    long long deposited = integer_of(totals, "deposited"),
              withdrawn = integer_of(totals, "withdrawn");
    if (accounts != ACCOUNTS || sum != deposited - withdrawn || deposited != r->deposited ||
        withdrawn != r->withdrawn)
        run_violation(r,
                      "ledger: %zu accounts hold %lld; deposited %lld, withdrawn %lld; the "
                      "committed proposals deposited %lld and withdrew %lld",
                      accounts, sum, deposited, withdrawn, r->deposited, r->withdrawn);
done:
    json_decref(body);
}

/* The shop: every unit of every item is available, reserved or sold, none
 * negative, the stock what was added and restocked, the reserved units
 * those of the open reservations. */
static void shop_check(run *r)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/streams/%s", r->streams[r->shop_stream].name);
    json_t *body = http_get(r, path);
    json_t *state = json_object_get(body, "state");
    if (state == NULL)
        goto done;
    long long reserved_by_reservations[SKUS] = {0};
    const char *id;
    json_t *value;
    json_object_foreach (json_object_get(state, "reservations"), id, value) {
        const char *status = json_string_value(json_object_get(value, "status"));
        if (status == NULL || strcmp(status, "reserved") != 0)
            continue;
        size_t index;
        json_t *line;
        json_array_foreach (json_object_get(value, "items"), index, line) {
            int sku = sku_index(json_string_value(json_object_get(line, "sku")));
            if (sku < 0)
                run_violation(r, "shop: reservation %s names no item of ours", id);
            else
                reserved_by_reservations[sku] += integer_of(line, "quantity");
        }
    }
    size_t items = 0;
    json_object_foreach (json_object_get(state, "items"), id, value) {
        int sku = sku_index(id);
        long long stock = integer_of(value, "stock"), available = integer_of(value, "available"),
                  reserved = integer_of(value, "reserved"), sold = integer_of(value, "sold");
        if (sku < 0 || available < 0 || reserved < 0 || sold < 0 ||
            available + reserved + sold != stock || stock != r->stock[sku] ||
            reserved != reserved_by_reservations[sku])
            run_violation(r,
                          "shop: item %s: stock %lld (expected %lld), available %lld, reserved "
                          "%lld (open reservations: %lld), sold %lld",
                          id, stock, sku < 0 ? -1 : r->stock[sku], available, reserved,
                          sku < 0 ? -1 : reserved_by_reservations[sku], sold);
        items++;
    }
    if (items != SKUS)
        run_violation(r, "shop: %zu items, expected %d", items, SKUS);
done:
    json_decref(body);
}

/* -- cycles ------------------------------------------------------------- */

/* Keep a uniform sample of the cycle's proposals (now all decided) for
 * later resends, and free the rest. */
static void cycle_end(client *c)
{
    for (size_t k = 0; k < c->proposal_count; k++) {
        proposal *p = &c->proposals[k];
        ARB_ASSERT(p->final.kind != VERDICT_NONE || c->run->violation_count > 0);
        c->reservoir_seen++;
        size_t slot = c->reservoir_count;
        if (c->reservoir_count == RESERVOIR_MAX) {
            slot = (size_t)(random_next(&c->rng) % c->reservoir_seen);
        }
        if (slot < RESERVOIR_MAX && p->final.kind != VERDICT_NONE) {
            kept_proposal *kept = &c->reservoir[slot];
            if (slot == c->reservoir_count)
                c->reservoir_count++;
            else
                free(kept->text);
            *kept = (kept_proposal){.client_seq = p->client_seq,
                                    .text = p->text,
                                    .text_len = p->text_len,
                                    .outcome = p->final};
            p->text = NULL;
        }
        free(p->text);
        json_decref(p->message);
    }
    c->proposal_count = 0;
    c->cycle_first_seq = c->next_client_seq;
}

/* Tally the answers received before the kill. */
static void tally_first_answers(client *c)
{
    for (size_t k = 0; k < c->proposal_count; k++) {
        const verdict *first = &c->proposals[k].first;
        c->count.acknowledged += first->kind != VERDICT_NONE;
        c->count.committed += first->kind == VERDICT_COMMITTED;
        c->count.rejected += first->kind == VERDICT_REJECTED;
        c->count.in_flight += first->kind == VERDICT_NONE;
    }
}

/* Gather the clients' violations into the run's, and their counters. */
static void gather(run *r, counters *cycle)
{
    memset(cycle, 0, sizeof *cycle);
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &r->clients[i];
        for (size_t k = 0; k < c->violation_count && k < VIOLATIONS_KEPT; k++)
            run_violation(r, "%s", c->violations[k]);
        if (c->violation_count > VIOLATIONS_KEPT)
            run_violation(r, "%s: %zu more", c->id, c->violation_count - VIOLATIONS_KEPT);
        c->violation_count = 0;
        counters_add(cycle, &c->count);
        memset(&c->count, 0, sizeof c->count);
    }
}

/* After a restart (or at the end): resend, read the log, check the state. */
static void check_all(run *r, counters *cycle)
{
    run_clients(r, check_thread);
    /* The current and the previous generation's streams are read (the
     * previous ones still get their expiries); older ones only at the end.
     * Verify covers them all after every kill. */
    size_t first = r->final_pass || r->stream_count < 4 ? 0 : r->stream_count - 4;
    for (size_t s = first; s < r->stream_count && r->violation_count == 0; s++)
        log_check(r, s);
    unmatched_check(r);
    expected_totals_update(r);
    ledger_check(r);
    shop_check(r);
    gather(r, cycle);
}

/* `arbiter verify` on the directory: while no server runs, right after a
 * kill (what the crash left on disk) and at the end (what a clean stop
 * left); and once a cycle beside the running server under load, which it
 * reads as of one moment (a pinned read snapshot), however the server goes
 * on committing meanwhile. */
static double verify_check(run *r, const char *when)
{
    double start = now_ms();
    int rc = verify_data(r);
    double took_ms = now_ms() - start;
    if (rc != 0)
        run_violation(r, "arbiter verify --data %s %s exited %d (its report is in %s)", r->data_dir,
                      when, rc, r->log_path);
    if (took_ms > r->verify_ms_max)
        r->verify_ms_max = took_ms;
    return took_ms;
}

static int generation_start(run *r);

static int run_cycle(run *r, long cycle_number)
{
    if (cycle_number > 1 && (cycle_number - 1) % r->generation_cycles == 0 &&
        generation_start(r) != 0)
        return -1;
    long drive_ms = random_between(&r->rng, DRIVE_MS_MIN, DRIVE_MS_MAX);
    double cycle_start = now_ms();
    atomic_store(&r->stop, false);
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        ARB_ASSERT(pthread_create(&threads[i], NULL, drive_thread, &r->clients[i]) == 0);
    nap_ms(drive_ms / 2);
    verify_check(r, "beside the running server");
    nap_ms(drive_ms - drive_ms / 2);
    int killed = server_stop(r, SIGKILL);
    atomic_store(&r->stop, true);
    double first_answer_ms = 0;
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &r->clients[i];
        ARB_ASSERT(pthread_join(threads[i], NULL) == 0);
        client_disconnect(c);
        tally_first_answers(c);
        if (c->first_answer_ms > 0 &&
            (first_answer_ms == 0 || c->first_answer_ms < first_answer_ms))
            first_answer_ms = c->first_answer_ms;
    }
    double disconnected_ms = now_ms() - cycle_start;
    if (killed != 128 + SIGKILL)
        run_violation(r, "arbiterd ended by itself before the kill (status %d; see %s)", killed,
                      r->log_path);
    ARB_ASSERT(r->server_pid == 0);
    double verify_ms = verify_check(r, "after the kill");
    double start = now_ms();
    if (server_start(r) != 0) {
        run_violation(r, "arbiterd does not start again on %s (see %s)", r->data_dir, r->log_path);
        return -1;
    }
    double restart_ms = now_ms() - start;
    counters cycle;
    double check_start = now_ms();
    check_all(r, &cycle);
    log_scan(r);
    double check_ms = now_ms() - check_start;
    for (int i = 0; i < CLIENTS; i++)
        cycle_end(&r->clients[i]);
    counters_add(&r->total, &cycle);
    if (restart_ms > r->restart_ms_max)
        r->restart_ms_max = restart_ms;
    printf("cycle %ld/%ld: killed after %ld ms (first answer after %.0f ms), sent %" PRIu64
           ", acknowledged %" PRIu64 ", in flight %" PRIu64 " (%" PRIu64
           " decided before the kill); down after %.0f ms, verify %.0f ms, restart %.0f ms, check "
           "%.0f ms; log at %" PRIu64 "/%" PRIu64 "%s\n",
           cycle_number, r->cycles, drive_ms, first_answer_ms, cycle.sent, cycle.acknowledged,
           cycle.in_flight, cycle.in_flight_replayed, disconnected_ms, verify_ms, restart_ms,
           check_ms, r->streams[r->ledger_stream].version, r->streams[r->shop_stream].version,
           r->violation_count > 0 ? " -- VIOLATIONS" : "");
    fflush(stdout);
    return r->violation_count == 0 ? 0 : -1;
}

/* -- setup, the end, main ----------------------------------------------- */

/* One setup proposal of the admin's. */
static void setup_item(client *admin, exchange_item *item, const char *stream, const char *action,
                       json_t *args)
{
    json_t *message = json_pack("{s:s, s:I, s:s, s:s, s:o}", "type", "propose", "client_seq",
                                (json_int_t)admin->next_client_seq, "stream", stream, "action",
                                action, "args", args);
    ARB_ASSERT(message != NULL);
    char *text = json_dumps(message, JSON_COMPACT);
    ARB_ASSERT(text != NULL);
    json_decref(message);
    *item = (exchange_item){
        .text = text, .text_len = strlen(text), .client_seq = admin->next_client_seq++};
}

/* A new pair of streams: the admin opens and funds the accounts and adds
 * the items; the clients forget the old streams' holds and reservations;
 * the log's end is the first checked prefix. Between cycles, with every
 * client connected. */
static int generation_start(run *r)
{
    ARB_ASSERT(r->stream_count + 2 <= STREAMS_MAX);
    r->generation++;
    r->ledger_stream = r->stream_count++;
    r->shop_stream = r->stream_count++;
    stream_log *ledger = &r->streams[r->ledger_stream], *shop = &r->streams[r->shop_stream];
    snprintf(ledger->name, sizeof ledger->name, "ledger:crash-%ld", r->generation);
    snprintf(shop->name, sizeof shop->name, "shop:crash-%ld", r->generation);
    client *admin = &r->clients[ADMIN_INDEX];
    exchange_item items[2 * ACCOUNTS + SKUS];
    size_t count = 0;
    for (int a = 0; a < ACCOUNTS; a++) {
        char account[16], owner[16];
        account_name(a / ACCOUNTS_PER_USER, a % ACCOUNTS_PER_USER, account);
        snprintf(owner, sizeof owner, "u%d", a / ACCOUNTS_PER_USER);
        setup_item(
            admin, &items[count++], ledger->name, "open_account",
            json_pack("{s:s, s:s, s:s}", "account", account, "owner", owner, "currency", "EUR"));
        setup_item(admin, &items[count++], ledger->name, "deposit",
                   json_pack("{s:s, s:i}", "account", account, "amount", INITIAL_DEPOSIT));
    }
    for (int k = 0; k < SKUS; k++) {
        char sku[16];
        snprintf(sku, sizeof sku, "s%d", k);
        setup_item(admin, &items[count++], shop->name, "add_item",
                   json_pack("{s:s, s:i, s:s, s:i}", "sku", sku, "stock", INITIAL_STOCK, "name",
                             sku, "price", 100 + k));
        r->stock[k] = INITIAL_STOCK;
    }
    r->deposited = (long long)ACCOUNTS * INITIAL_DEPOSIT;
    r->withdrawn = 0;
    int rc = exchange(admin, items, count);
    for (size_t k = 0; k < count; k++) {
        if (rc == 0 && items[k].got.kind != VERDICT_COMMITTED) {
            run_violation(r, "setup proposal not committed (%s): %s", items[k].got.code,
                          items[k].text);
            rc = -1;
        }
        free((char *)items[k].text);
    }
    admin->cycle_first_seq = admin->next_client_seq;
    for (int i = 0; i < CLIENTS; i++) {
        r->clients[i].hold_count = 0;
        r->clients[i].reservation_count = 0;
        r->clients[i].ledger_version_seen = 0;
    }
    for (size_t s = r->ledger_stream; s <= r->shop_stream && rc == 0; s++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/streams/%s", r->streams[s].name);
        json_t *body = http_get(r, path);
        uint64_t version = (uint64_t)integer_of(body, "version");
        json_decref(body);
        rc = stream_tip(r, s, version, &r->streams[s].version, r->streams[s].hash,
                        sizeof r->streams[s].hash);
    }
    return rc == 0 && r->violation_count == 0 ? 0 : -1;
}

/* Start the server, connect everyone, make the first streams. */
static int setup(run *r)
{
    if (server_start(r) != 0) {
        run_violation(r, "arbiterd does not start (see %s)", r->log_path);
        return -1;
    }
    for (int i = 0; i < CLIENTS; i++) {
        int rc = client_connect(&r->clients[i]);
        if (rc != 0) {
            run_violation(r, "%s cannot connect: %s", r->clients[i].id, arb_err_name(rc));
            return -1;
        }
    }
    return generation_start(r);
}

/* After the last cycle: resend every kept old proposal, check the log and
 * the state once more, stop the server cleanly and verify the directory
 * at rest. */
static void final_check(run *r)
{
    counters last;
    r->final_pass = true;
    check_all(r, &last);
    counters_add(&r->total, &last);
    for (int i = 0; i < CLIENTS; i++)
        client_disconnect(&r->clients[i]);
    int status = server_stop(r, SIGTERM);
    if (status != 0)
        run_violation(r, "arbiterd exited %d on SIGTERM (see %s)", status, r->log_path);
    verify_check(r, "after the last stop");
    log_scan(r);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: crash [--cycles N] [--seed S] [--bin DIR] [--keep]\n"
            "             [--generation-cycles N] [--snapshot-every N] [--check-every N]\n");
}

static int parse_number(const char *text, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text != NULL ? text : "", &end, 10);
    if (text == NULL || errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

static int parse_args(run *r, int argc, char **argv)
{
    const char *bin = getenv("ARB_BIN_DIR");
    snprintf(r->bin_dir, sizeof r->bin_dir, "%s", bin != NULL ? bin : "build/bin");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    r->seed = ((uint64_t)now.tv_sec * 1000000007ULL) ^ (uint64_t)now.tv_nsec ^ (uint64_t)getpid();
    r->seed %= 1000000000000ULL; /* short enough to type back */
    r->cycles = 20;
    r->snapshot_every = 1000;
    r->check_every = 100;
    r->generation_cycles = GENERATION_CYCLES_DEFAULT;
    for (int i = 1; i < argc; i++) {
        long long value = 0;
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--keep") == 0)
            r->keep = true;
        else if (strcmp(argv[i], "--bin") == 0 && next != NULL)
            snprintf(r->bin_dir, sizeof r->bin_dir, "%s", argv[++i]);
        else if (strcmp(argv[i], "--cycles") == 0 && parse_number(next, 1, CYCLES_MAX, &value) == 0)
            r->cycles = (long)value, i++;
        else if (strcmp(argv[i], "--seed") == 0 && parse_number(next, 0, INT64_MAX, &value) == 0)
            r->seed = (uint64_t)value, i++;
        else if (strcmp(argv[i], "--snapshot-every") == 0 &&
                 parse_number(next, 1, UINT32_MAX, &value) == 0)
            r->snapshot_every = (unsigned)value, i++;
        else if (strcmp(argv[i], "--generation-cycles") == 0 &&
                 parse_number(next, 1, CYCLES_MAX, &value) == 0)
            r->generation_cycles = (unsigned)value, i++;
        else if (strcmp(argv[i], "--check-every") == 0 &&
                 parse_number(next, 1, UINT32_MAX, &value) == 0)
            r->check_every = (unsigned)value, i++;
        else
            return usage(), -1;
    }
    if (r->cycles / r->generation_cycles + 1 > STREAMS_MAX / 2) {
        fprintf(stderr, "crash: --cycles / --generation-cycles makes more than %d streams\n",
                STREAMS_MAX);
        return -1;
    }
    return 0;
}

/* The work directory (data, server log, port file), under ARB_TEST_TMP or
 * TMPDIR or /tmp. */
static int make_work_dir(run *r)
{
    const char *base = getenv("ARB_TEST_TMP");
    if (base == NULL)
        base = getenv("TMPDIR");
    snprintf(r->work_dir, sizeof r->work_dir, "%s/arbiter-crash.XXXXXX",
             base != NULL ? base : "/tmp");
    if (mkdtemp(r->work_dir) == NULL)
        return -1;
    snprintf(r->data_dir, sizeof r->data_dir, "%s/data", r->work_dir);
    snprintf(r->log_path, sizeof r->log_path, "%s/arbiterd.log", r->work_dir);
    snprintf(r->port_file, sizeof r->port_file, "%s/port", r->work_dir);
    return 0;
}

static void run_init(run *r)
{
    r->rng = r->seed;
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &r->clients[i];
        c->run = r;
        c->index = i;
        if (i == ADMIN_INDEX)
            snprintf(c->id, sizeof c->id, "admin");
        else
            snprintf(c->id, sizeof c->id, "u%d", i);
        c->rng = r->seed ^ (0x51ed270b27c5a3d1ULL * (uint64_t)(i + 1));
        c->next_client_seq = 1;
        c->cycle_first_seq = 1;
    }
}

static void run_free(run *r)
{
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &r->clients[i];
        client_disconnect(c);
        for (size_t k = 0; k < c->proposal_count; k++) {
            free(c->proposals[k].text);
            json_decref(c->proposals[k].message);
        }
        free(c->proposals);
        for (size_t k = 0; k < c->reservoir_count; k++)
            free(c->reservoir[k].text);
    }
}

static void report(const run *r, bool passed, long cycles_done, double seconds)
{
    const counters *t = &r->total;
    printf("crash: %s seed=%" PRIu64 " cycles=%ld sent=%" PRIu64 " acknowledged=%" PRIu64
           " (committed=%" PRIu64 " rejected=%" PRIu64 ") in_flight=%" PRIu64
           " (decided_before_kill=%" PRIu64 " decided_on_resend=%" PRIu64 ") transient=%" PRIu64
           " resends=%" PRIu64 " replayed=%" PRIu64 " old_resent=%" PRIu64 " reused_keys=%" PRIu64
           " events=%" PRIu64 " system_events=%" PRIu64 " lost=%" PRIu64 " duplicated=%" PRIu64
           " restart_ms_max=%.0f verify_ms_max=%.0f seconds=%.1f\n",
           passed ? "PASS" : "FAIL", r->seed, cycles_done, t->sent, t->acknowledged, t->committed,
           t->rejected, t->in_flight, t->in_flight_replayed, t->in_flight_fresh, t->transient,
           t->resends, t->resends_replayed, t->old_checked, t->reused_keys_checked,
           t->events_checked, r->system_events, t->lost, t->duplicated, r->restart_ms_max,
           r->verify_ms_max, seconds);
}

int main(int argc, char **argv)
{
    static run r;
    if (parse_args(&r, argc, argv) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    arb_ws_client_init();
    if (make_work_dir(&r) != 0) {
        fprintf(stderr, "crash: cannot make a work directory: %s\n", strerror(errno));
        return 1;
    }
    printf("crash: seed %" PRIu64 ", %ld cycles, data %s, arbiterd from %s\n", r.seed, r.cycles,
           r.data_dir, r.bin_dir);
    fflush(stdout);
    run_init(&r);
    double start = now_ms();
    long cycle = 0;
    int rc = setup(&r);
    while (rc == 0 && cycle < r.cycles)
        rc = run_cycle(&r, ++cycle);
    if (rc == 0)
        final_check(&r);
    if (r.server_pid > 0)
        server_stop(&r, SIGKILL); /* leave the directory as the failure found it */
    for (size_t k = 0; k < r.violation_count && k < VIOLATIONS_KEPT; k++)
        fprintf(stderr, "crash: VIOLATION: %s\n", r.violations[k]);
    if (r.violation_count > VIOLATIONS_KEPT)
        fprintf(stderr, "crash: ... %zu violations in all\n", r.violation_count);
    bool passed = rc == 0 && r.violation_count == 0;
    report(&r, passed, cycle, (now_ms() - start) / 1000.0);
    run_free(&r);
    if (!passed || r.keep) {
        fprintf(stderr, "crash: data kept in %s (seed %" PRIu64 ")\n", r.work_dir, r.seed);
    } else {
        nftw(r.work_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return passed ? 0 : 1;
}
