/*
 * storage_fault_test.c - the real arbiterd against a damaged disk (issue 8,
 * "Storage faults"): torn and corrupt tails of its files, and writes or
 * syncs that fail.
 *
 * Corrupt tails. One history is built through the real server: a ledger
 * stream set up by an admin, then TRANSFERS transfers by CLIENTS users, one
 * at a time, with the state read back (GET) after every acknowledged
 * outcome, so the test holds the acknowledged state at every version. Three
 * copies of the data directory are kept:
 *
 *   wal           the server killed (SIGKILL) while a reader beside it (this
 *                 test, as `arbiter verify` would) held a snapshot from
 *                 before the transfers: the checkpointer could not copy them,
 *                 so every transfer lives in the WAL only;
 *   checkpointed  that directory opened and stopped with SIGTERM: everything
 *                 in the database file, no WAL;
 *   backfilled    that directory checkpointed (PASSIVE, as the server's
 *                 checkpointer does) without the WAL starting over: every
 *                 transfer in both files, as on an idle server (SQLite
 *                 restarts the WAL only at the next write).
 *
 * For many offsets of each file - the start of its first pages or frames,
 * SPREAD_OFFSETS spread over it with a seeded jitter, its last bytes, and in
 * the checkpointed database the bytes of stored rows (the data and hash of
 * events, the fingerprint of outcomes) - on a fresh copy each time: truncate
 * the file there, or flip one bit. Then `arbiter verify`, then arbiterd. The
 * server must either refuse to start (non-zero exit, and "cannot start" with
 * the error's name on stderr) or serve exactly the acknowledged state at the
 * version it serves (version 0, no stream, is the empty prefix), answer
 * every earlier acknowledged proposal with its stored outcome, and not claim
 * an outcome whose events it lost. When the copy's events table (read with
 * SQLite) is not a prefix of the original, committed events were changed:
 * verify must fail and the server refuse.
 *
 * Write failures. The shim tests/faults/faultfs.c (LD_PRELOAD) fails the Nth
 * write (or fsync) under the data directory, and every later one, with
 * ENOSPC or EIO, for every N in a range. Users propose transfers, a few in
 * flight at a time, until the server stops answering. Any proposal sent
 * after the shim reported its first failure must not be acknowledged: its
 * commit had to write and sync, and could not. The server is then restarted
 * without the shim: it must start, every acknowledged outcome must be in the
 * log and replay the same, no event may come from a proposal never sent,
 * the ledger's money must add up, and verify must pass. Under ASan the shim is
 * preloaded ahead of ASan's runtime (ASAN_OPTIONS=verify_asan_link_order=0);
 * the TSan build skips this part. The corrupt tails run in every build.
 *
 * Every violation is collected with what reproduces it (the seed, the copy,
 * the file, the offset, the fault) and the test fails at the end with the
 * list; the figures (outcomes per kind) are printed either way. With
 * ARB_KEEP_FAILED=1 the damaged copies that failed are kept for a look.
 */
#include "server.h"
#include "support.h"

#include "../faults/faultfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Which sanitizer this (and so arbiterd, built alike) runs under. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADDRESS_SANITIZED 1
#endif
#if __has_feature(thread_sanitizer)
#define THREAD_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(ADDRESS_SANITIZED)
#define ADDRESS_SANITIZED 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(THREAD_SANITIZED)
#define THREAD_SANITIZED 1
#endif
#ifndef ADDRESS_SANITIZED
#define ADDRESS_SANITIZED 0
#endif
#ifndef THREAD_SANITIZED
#define THREAD_SANITIZED 0
#endif

#define STREAM "ledger:main"
#define ACCOUNTS 8
#define CLIENTS 4
#define BALANCE_START 100000
/* Transfers of the corrupt-tail history. */
#define TRANSFERS 300
/* Every tenth transfer asks for more than any balance: a rejection, which is
 * recorded and must replay too. */
#define OVERDRAW_EVERY 10
#define OVERDRAW_AMOUNT 900000
/* Versions of the history: the setup (open + deposit per account) and the
 * transfers, with room to spare. */
#define VERSIONS_MAX (2 * ACCOUNTS + TRANSFERS + 8)
/* Offsets spread over a file, per copy and kind of damage. */
#define SPREAD_OFFSETS 16
/* Stored events whose data and hash are damaged in the database file, and
 * outcome rows whose fingerprint is. */
#define TARGETED_EVENTS 12
#define TARGETED_OUTCOMES 6
/* Flips in the cells of the idempotency index (outcome_keys leaf pages,
 * whose cells of ~12 bytes fill them from the end), and the bytes between
 * two of them. */
#define TARGETED_KEYS 6
#define TARGETED_KEYS_STRIDE 401
/* The write-fault runs: N = 1 .. WRITE_AT_MAX writes, 1 .. FSYNC_AT_MAX
 * syncs. */
#define WRITE_AT_MAX 40
#define FSYNC_AT_MAX 20
/* Proposals in flight at once in a write-fault run (one per user). */
#define WINDOW CLIENTS
/* Rounds of WINDOW proposals before a run gives up waiting for its fault. */
#define ROUNDS_MAX 60
#define PROPOSALS_MAX (WINDOW * ROUNDS_MAX)
/* Deadlines that only stop a hang. */
#define ANSWER_WAIT_MS 10000
#define START_WAIT_MS 10000
#define EXIT_WAIT_MS 10000
#define VIOLATIONS_MAX 64
/* The exit status of a child that could not exec arbiterd (as the shell's). */
#define EXEC_FAILED_STATUS 127
/* A directory, and a file in one. */
#define DIR_BYTES 1024
#define PATH_BYTES (DIR_BYTES + 64)

/* ---- Violations and figures ---- */

static char *violations[VIOLATIONS_MAX];
static size_t violation_count;

static void violation(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *format, ...)
{
    char text[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    printf("VIOLATION: %s\n", text);
    if (violation_count < VIOLATIONS_MAX)
        violations[violation_count] = strdup(text);
    violation_count++;
}

/* Fail the test when anything was collected; frees the list. */
static void assert_no_violations(void)
{
    size_t count = violation_count;
    for (size_t i = 0; i < count && i < VIOLATIONS_MAX; i++) {
        free(violations[i]);
        violations[i] = NULL;
    }
    violation_count = 0;
    if (count > 0)
        fail_msg("%zu violation(s); see the VIOLATION lines above", count);
}

/* ---- Files ---- */

static char *read_text(const char *path, size_t *len_out)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, file)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
    }
    fclose(file);
    text[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return text;
}

static long long file_size(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 ? (long long)info.st_size : -1;
}

static long long data_file_size(const char *dir, const char *name)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return file_size(path);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(out >= 0);
    static char buffer[1 << 16];
    ssize_t n;
    while ((n = read(in, buffer, sizeof buffer)) > 0)
        assert_int_equal(write(out, buffer, (size_t)n), n);
    assert_int_equal(n, 0);
    close(in);
    assert_int_equal(close(out), 0);
}

/* A data directory as the disk holds it: the database, its WAL and the
 * high-water MARK (the -shm index is rebuilt by whoever opens it first;
 * LOCK is only a lock). */
static void copy_data(const char *from_dir, const char *to_dir)
{
    assert_true(mkdir(to_dir, 0700) == 0 || errno == EEXIST);
    static const char *const names[] = {"arbiter.db", "arbiter.db-wal", "MARK"};
    for (size_t i = 0; i < 3; i++) {
        char from[PATH_BYTES], to[PATH_BYTES];
        snprintf(from, sizeof from, "%s/%s", from_dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", to_dir, names[i]);
        unlink(to);
        if (file_size(from) >= 0)
            copy_file(from, to);
    }
    char shm[PATH_BYTES];
    snprintf(shm, sizeof shm, "%s/arbiter.db-shm", to_dir);
    unlink(shm);
}

static void remove_data(const char *dir)
{
    static const char *const names[] = {"arbiter.db", "arbiter.db-wal", "arbiter.db-shm", "LOCK",
                                        "MARK"};
    for (size_t i = 0; i < 5; i++) {
        char path[PATH_BYTES];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Flip one bit of the byte at offset (which bit depends on the offset, so
 * a run flips all eight). */
static void flip_bit(const char *path, long long offset)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    unsigned char byte = 0;
    assert_int_equal(pread(fd, &byte, 1, (off_t)offset), 1);
    byte ^= (unsigned char)(1u << (offset % 8));
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)offset), 1);
    close(fd);
}

/* ---- arbiterd as a child process ---- */

/* Start arbiterd on data_dir with env ("NAME=VALUE", NULL-terminated, may be
 * NULL) added, stdout and stderr to stderr_path. Returns true once it
 * listens (server filled, as test_server_start does); false when it exited
 * first, with its status (exit code, or 128 + signal) in *status_out. */
static bool daemon_start(test_server *server, const char *data_dir, const char *const env[],
                         const char *stderr_path, int *status_out)
{
    memset(server, 0, sizeof *server);
    snprintf(server->data_dir, sizeof server->data_dir, "%s", data_dir);
    char port_file[PATH_BYTES];
    snprintf(port_file, sizeof port_file, "%s.port", data_dir);
    unlink(port_file);
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiterd", bin_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A deliberate abort must not spend seconds writing a core. */
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)env[i]);
        execl(path, "arbiterd", "--data", data_dir, "--listen", "127.0.0.1:0", "--port-file",
              port_file, "--admin", "admin", "--log-level", "warn", (char *)NULL);
        _exit(EXEC_FAILED_STATUS);
    }
    server->pid = pid;
    for (int waited_ms = 0; waited_ms < START_WAIT_MS; waited_ms += 5) {
        FILE *file = fopen(port_file, "r");
        if (file != NULL) {
            int ok = fscanf(file, "%d", &server->port);
            fclose(file);
            if (ok == 1 && server->port > 0)
                break;
            server->port = 0;
        }
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            server->pid = 0;
            *status_out = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (*status_out == EXEC_FAILED_STATUS)
                fail_msg("cannot run %s", path);
            return false;
        }
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (server->port <= 0)
        fail_msg("arbiterd on %s neither listened nor exited within %d ms", data_dir,
                 START_WAIT_MS);
    snprintf(server->ws_url, sizeof server->ws_url, "ws://127.0.0.1:%d/", server->port);
    snprintf(server->http_url, sizeof server->http_url, "http://127.0.0.1:%d", server->port);
    return true;
}

/* Wait (at most EXIT_WAIT_MS) for a server that is expected to exit by
 * itself; kill it when it does not. Returns its status, -1 when it had to
 * be killed. */
static int daemon_wait_exit(test_server *server)
{
    for (int waited_ms = 0; waited_ms < EXIT_WAIT_MS; waited_ms += 5) {
        int status = 0;
        if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
            server->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    test_server_stop(server, SIGKILL);
    return -1;
}

/* The first line of the file that contains needle (copied into line), or
 * false. */
static bool find_line(const char *text, const char *needle, char *line, size_t size)
{
    const char *hit = text != NULL ? strstr(text, needle) : NULL;
    if (hit == NULL)
        return false;
    const char *start = hit;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strchr(hit, '\n');
    size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
    snprintf(line, size, "%.*s", (int)len, start);
    return true;
}

/* A refusal to start must say so and name the error: the "cannot start"
 * line with error=NAME. Copies the error name into name. */
static bool refusal_is_clear(const char *stderr_path, char *name, size_t size)
{
    char *text = read_text(stderr_path, NULL);
    char line[2048];
    bool clear = find_line(text, "msg=\"cannot start\"", line, sizeof line);
    const char *error = clear ? strstr(line, " error=") : NULL;
    clear = error != NULL && error[7] != ' ' && error[7] != '\0';
    if (clear)
        snprintf(name, size, "%.*s", (int)strcspn(error + 7, " "), error + 7);
    free(text);
    return clear;
}

/* Add token to the list "a; b; " unless it is there (or does not fit). */
static void note_token(char *list, size_t size, const char *token)
{
    char padded[192];
    int n = snprintf(padded, sizeof padded, "%s; ", token);
    size_t used = strlen(list);
    if (n < 0 || (size_t)n >= sizeof padded || strstr(list, padded) != NULL ||
        used + (size_t)n >= size)
        return;
    memcpy(list + used, padded, (size_t)n + 1);
}

/* The msg of the first error line on stderr, or "-". */
static void first_error(const char *stderr_path, char *message, size_t size)
{
    char *text = read_text(stderr_path, NULL);
    char line[2048];
    snprintf(message, size, "-");
    if (find_line(text, "level=error", line, sizeof line)) {
        const char *msg = strstr(line, "msg=\"");
        if (msg != NULL)
            snprintf(message, size, "%.*s", (int)strcspn(msg + 5, "\""), msg + 5);
    }
    free(text);
}

/* ---- HTTP and WebSocket without asserting (the server may be gone) ---- */

static int http_json(const test_server *server, const char *path, json_t **body_out)
{
    char url[PATH_BYTES];
    snprintf(url, sizeof url, "%s%s", server->http_url, path);
    arb_http_response response;
    *body_out = NULL;
    int rc = arb_http_request(url, "GET", NULL, NULL, 0, ANSWER_WAIT_MS, &response);
    if (rc != 0)
        return rc;
    int status = response.status;
    json_error_t error;
    if (response.body_len > 0)
        *body_out = json_loadb(response.body, response.body_len, 0, &error);
    arb_http_response_clear(&response);
    return status;
}

/* GET the stream: its version and state (a new reference), or false. A
 * stream that does not exist is version 0 with a NULL state: the log before
 * its first commit. */
static bool read_state(const test_server *server, uint64_t *version_out, json_t **state_out)
{
    json_t *body = NULL;
    int status = http_json(server, "/v1/streams/" STREAM, &body);
    json_t *version = json_object_get(body, "version");
    json_t *state = json_object_get(body, "state");
    const char *code = json_string_value(json_object_get(body, "code"));
    bool ok = status == 200 && json_is_integer(version) && state != NULL;
    bool missing = status == 404 && code != NULL && strcmp(code, "STREAM_NOT_FOUND") == 0;
    if (ok) {
        *version_out = (uint64_t)json_integer_value(version);
        *state_out = json_incref(state);
    } else if (missing) {
        *version_out = 0;
        *state_out = NULL;
    }
    json_decref(body);
    return ok || missing;
}

static arb_ws_client *ws_open(const test_server *server, const char *client_id)
{
    arb_ws_client *client = NULL;
    if (arb_ws_connect(server->ws_url, 5000, &client) != 0)
        return NULL;
    char hello[128];
    int n = snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"proto\":1,\"client_id\":\"%s\"}",
                     client_id);
    char *text = NULL;
    size_t len = 0;
    bool ok = arb_ws_send(client, hello, (size_t)n) == 0 &&
              arb_ws_recv(client, ANSWER_WAIT_MS, &text, &len) == 0 &&
              strstr(text, "\"welcome\"") != NULL;
    free(text);
    if (!ok) {
        arb_ws_close(client);
        return NULL;
    }
    return client;
}

/* The next committed or rejected answer, or NULL when the connection ended
 * or nothing came in time (*rc_out says which). */
static json_t *ws_answer(arb_ws_client *client, int *rc_out)
{
    for (;;) {
        char *text = NULL;
        size_t len = 0;
        int rc = arb_ws_recv(client, ANSWER_WAIT_MS, &text, &len);
        *rc_out = rc;
        if (rc != 0)
            return NULL;
        json_error_t error;
        json_t *message = json_loadb(text, len, 0, &error);
        free(text);
        const char *type = json_string_value(json_object_get(message, "type"));
        if (type != NULL && (strcmp(type, "committed") == 0 || strcmp(type, "rejected") == 0))
            return message;
        json_decref(message);
    }
}

/* ---- The proposals ---- */

typedef enum answer { ANSWER_NONE = 0, ANSWER_COMMITTED, ANSWER_REJECTED } answer;

typedef struct proposal {
    int client; /* 0 .. CLIENTS-1: user "u<client>" */
    uint64_t client_seq;
    int from, to; /* account indexes */
    long long amount;
    bool sent_after_fault; /* the shim had failed a call before it was sent */
    answer answer;
    uint64_t seq;      /* committed: its event */
    uint64_t version;  /* rejected: the version it was decided at */
    char outcome[512]; /* the acknowledged answer (outcome_text) */
} proposal;

static void account_name(int index, char *name, size_t size)
{
    snprintf(name, size, "a%d", index);
}

/* Account i belongs to user u<i % CLIENTS>; a user moves money from one of
 * its own accounts to any other. */
static void next_proposal(proposal *p, int client, uint64_t client_seq, uint64_t *random_state,
                          size_t index)
{
    memset(p, 0, sizeof *p);
    p->client = client;
    p->client_seq = client_seq;
    p->from = client + CLIENTS * (int)test_random_below(random_state, ACCOUNTS / CLIENTS);
    p->to = (p->from + 1 + (int)test_random_below(random_state, ACCOUNTS - 1)) % ACCOUNTS;
    p->amount = index % OVERDRAW_EVERY == OVERDRAW_EVERY - 1
                    ? OVERDRAW_AMOUNT
                    : 1 + (long long)test_random_below(random_state, 2000);
}

static int send_proposal(arb_ws_client *client, const proposal *p)
{
    char from[16], to[16], text[256];
    account_name(p->from, from, sizeof from);
    account_name(p->to, to, sizeof to);
    int n = snprintf(text, sizeof text,
                     "{\"type\":\"propose\",\"client_seq\":%llu,\"stream\":\"" STREAM
                     "\",\"action\":\"transfer\",\"args\":{\"from\":\"%s\",\"to\":\"%s\","
                     "\"amount\":%lld}}",
                     (unsigned long long)p->client_seq, from, to, p->amount);
    return arb_ws_send(client, text, (size_t)n);
}

/* What an answer says, without what may differ in its replay ("replay",
 * the events, and a rejection's snapshot with its version, which are the
 * state at the time of the answer, docs/protocol.md): the fields a replay
 * repeats. */
static void outcome_text(const json_t *message, char *text, size_t size)
{
    static const char *const committed[] = {"type",     "client_seq", "stream", "seq",
                                            "seq_last", "result",     NULL};
    static const char *const rejected[] = {"type",    "client_seq", "stream", "code",
                                           "message", "details",    NULL};
    const char *type = json_string_value(json_object_get(message, "type"));
    const char *const *keys = type != NULL && strcmp(type, "committed") == 0 ? committed : rejected;
    json_t *kept = json_object();
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_t *value = json_object_get(message, keys[i]);
        json_object_set(kept, keys[i], value != NULL ? value : json_null());
    }
    char *dumped = json_dumps(kept, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(text, size, "%s", dumped != NULL ? dumped : "?");
    free(dumped);
    json_decref(kept);
}

/* Fill p's answer from a committed or rejected message. */
static void record_answer(proposal *p, const json_t *message)
{
    const char *type = json_string_value(json_object_get(message, "type"));
    if (strcmp(type, "committed") == 0) {
        p->answer = ANSWER_COMMITTED;
        p->seq = (uint64_t)json_integer_value(json_object_get(message, "seq"));
    } else {
        p->answer = ANSWER_REJECTED;
        p->version = (uint64_t)json_integer_value(json_object_get(message, "version"));
    }
    outcome_text(message, p->outcome, sizeof p->outcome);
}

/* Does a resent proposal's answer replay p's acknowledged outcome? */
static bool same_outcome(const proposal *p, const json_t *message, char *why, size_t size)
{
    char text[sizeof p->outcome];
    outcome_text(message, text, sizeof text);
    bool replay = json_is_true(json_object_get(message, "replay"));
    if (replay && strcmp(text, p->outcome) == 0)
        return true;
    const char *type = json_string_value(json_object_get(message, "type"));
    bool again =
        !replay && p->answer == ANSWER_COMMITTED && type != NULL && strcmp(type, "committed") == 0;
    snprintf(why, size, "acknowledged %s; resent, answered %s%s", p->outcome, text,
             again    ? " (EXECUTED AGAIN: a second commit of one proposal)"
             : replay ? ""
                      : " (not a replay)");
    return false;
}

/* ---- Setting a ledger up through the server ---- */

/* Open and fund ACCOUNTS accounts as admin; with states, record the state
 * after each commit at its version. */
static void setup_ledger(const test_server *server, json_t **states)
{
    arb_ws_client *admin = test_ws_open(server, "admin");
    uint64_t seq = 0;
    for (int i = 0; i < ACCOUNTS; i++) {
        char account[16], owner[16];
        account_name(i, account, sizeof account);
        snprintf(owner, sizeof owner, "u%d", i % CLIENTS);
        for (int step = 0; step < 2; step++) {
            json_t *args =
                step == 0 ? json_pack("{s:s, s:s, s:s}", "account", account, "owner", owner,
                                      "currency", "EUR")
                          : json_pack("{s:s, s:i}", "account", account, "amount", BALANCE_START);
            json_t *outcome =
                test_ws_propose(admin, ++seq, STREAM, step == 0 ? "open_account" : "deposit", args);
            assert_string_equal(json_string_value(json_object_get(outcome, "type")), "committed");
            json_decref(outcome);
            uint64_t version = 0;
            json_t *state = NULL;
            assert_true(read_state(server, &version, &state));
            assert_true(version < VERSIONS_MAX && state != NULL);
            if (states != NULL && states[version] == NULL)
                states[version] = json_incref(state);
            json_decref(state);
        }
    }
    arb_ws_close(admin);
}

/* ---- The corrupt-tail history ---- */

typedef struct history {
    char *root;          /* the test's temporary directory */
    char wal[DIR_BYTES]; /* the three copies (see the header) */
    char checkpointed[DIR_BYTES];
    char backfilled[DIR_BYTES];
    json_t *states[VERSIONS_MAX]; /* the acknowledged state at each version */
    uint64_t version_max;
    proposal proposals[TRANSFERS];
    char **events; /* the events table, one text per row, in (stream, seq) order */
    size_t event_count;
    uint64_t seed;
} history;

static bool schema_is_empty(sqlite3 *db)
{
    sqlite3_stmt *statement = NULL;
    bool empty = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &statement,
                                    NULL) == SQLITE_OK &&
                 sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_int(statement, 0) == 0;
    sqlite3_finalize(statement);
    return empty;
}

/* Every row of the events table of dir's database as text, or -1 when
 * SQLite cannot read it; read in one of two ways: through the (stream, seq)
 * index, as the server reads the log (the key columns from the index, the
 * rest from the row), or from the table alone in rowid (commit) order.
 * Read-only: the files are not changed. */
static long read_events(const char *dir, bool via_index, char ***rows_out)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    *rows_out = NULL;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_stmt *statement = NULL;
#define EVENT_ROW_TEXT                                                                             \
    "SELECT stream || '|' || seq || '|' || type || '|' || data || '|' || client_id || '|' ||"      \
    " client_seq || '|' || applied_at || '|' || hex(hash) FROM events"
    int rc = sqlite3_prepare_v2(db,
                                via_index ? EVENT_ROW_TEXT
                                    " INDEXED BY sqlite_autoindex_events_1 WHERE stream >= ''"
                                    " ORDER BY stream, seq"
                                          : EVENT_ROW_TEXT " NOT INDEXED ORDER BY rowid",
                                -1, &statement, NULL);
#undef EVENT_ROW_TEXT
    long count = 0;
    size_t cap = 0;
    char **rows = NULL;
    while (rc == SQLITE_OK && (rc = sqlite3_step(statement)) == SQLITE_ROW) {
        if ((size_t)count == cap) {
            cap = cap == 0 ? 512 : cap * 2;
            rows = realloc(rows, cap * sizeof *rows);
            assert_non_null(rows);
        }
        const unsigned char *text = sqlite3_column_text(statement, 0);
        rows[count++] = strdup(text != NULL ? (const char *)text : "NULL");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(statement);
    /* A database without any table (an emptied file) holds no events: the
     * empty prefix of the log. */
    if (count == 0 && rc != SQLITE_DONE &&
        sqlite3_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 0", NULL, NULL, NULL) == SQLITE_OK &&
        schema_is_empty(db))
        rc = SQLITE_DONE;
    sqlite3_close(db);
    *rows_out = rows;
    if (rc != SQLITE_DONE) {
        for (long i = 0; i < count; i++)
            free(rows[i]);
        free(rows);
        *rows_out = NULL;
        return -1;
    }
    return count;
}

static void free_rows(char **rows, long count)
{
    for (long i = 0; i < count; i++)
        free(rows[i]);
    free(rows);
}

/* Hold a read transaction on dir's database, as a reader beside the server
 * would: the checkpointer cannot copy past it, nor the WAL restart. */
static sqlite3 *pin_reader(const char *dir)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    assert_int_equal(sqlite3_exec(db, "BEGIN; SELECT count(*) FROM events;", NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

/* Copy dir's WAL into its database (PASSIVE: the WAL stays as it is) and
 * close without the checkpoint that would remove the WAL. */
static void backfill(const char *dir)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    /* A first read opens the WAL (a fresh connection has not looked yet). */
    assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM events", NULL, NULL, NULL), SQLITE_OK);
    int log_frames = -1, copied_frames = -2;
    assert_int_equal(
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied_frames),
        SQLITE_OK);
    assert_int_equal(log_frames, copied_frames);
    assert_true(log_frames > 0);
    sqlite3_close(db);
}

/* TRANSFERS transfers, one at a time, each answer and the state after it
 * recorded. */
static void run_transfers(history *h, const test_server *server)
{
    arb_ws_client *clients[CLIENTS];
    for (int c = 0; c < CLIENTS; c++) {
        char id[16];
        snprintf(id, sizeof id, "u%d", c);
        clients[c] = test_ws_open(server, id);
    }
    uint64_t random_state = h->seed;
    for (size_t i = 0; i < TRANSFERS; i++) {
        proposal *p = &h->proposals[i];
        int client = (int)(i % CLIENTS);
        next_proposal(p, client, 1 + i / CLIENTS, &random_state, i);
        assert_int_equal(send_proposal(clients[client], p), 0);
        int rc = 0;
        json_t *message = ws_answer(clients[client], &rc);
        if (message == NULL)
            fail_msg("transfer %zu: no answer (%s)", i, arb_err_name(rc));
        record_answer(p, message);
        json_decref(message);
        uint64_t version = 0;
        json_t *state = NULL;
        assert_true(read_state(server, &version, &state));
        assert_true(version < VERSIONS_MAX && state != NULL);
        if (h->states[version] == NULL)
            h->states[version] = json_incref(state);
        else
            assert_true(json_equal(h->states[version], state));
        assert_true(p->answer != ANSWER_COMMITTED || p->seq == version);
        h->version_max = version;
        json_decref(state);
    }
    for (int c = 0; c < CLIENTS; c++)
        arb_ws_close(clients[c]);
}

static void build_history(history *h)
{
    h->seed = test_seed("storage_fault_test corrupt tails");
    h->root = test_mkdtemp("storage_fault");
    char live[DIR_BYTES], log_path[PATH_BYTES];
    snprintf(live, sizeof live, "%s/live", h->root);
    snprintf(log_path, sizeof log_path, "%s/live.stderr", h->root);
    snprintf(h->wal, sizeof h->wal, "%s/wal", h->root);
    snprintf(h->checkpointed, sizeof h->checkpointed, "%s/checkpointed", h->root);
    snprintf(h->backfilled, sizeof h->backfilled, "%s/backfilled", h->root);
    test_server server;
    int status = 0;
    assert_true(daemon_start(&server, live, NULL, log_path, &status));
    setup_ledger(&server, h->states);
    sqlite3 *reader = pin_reader(live);
    run_transfers(h, &server);
    assert_int_equal(test_server_stop(&server, SIGKILL), 128 + SIGKILL);
    copy_data(live, h->wal);
    sqlite3_close(reader);
    /* The same log, checkpointed by a clean stop. */
    copy_data(h->wal, live);
    assert_true(daemon_start(&server, live, NULL, log_path, &status));
    assert_int_equal(test_server_stop(&server, SIGTERM), 0);
    copy_data(live, h->checkpointed);
    /* The same log, copied into the database by a checkpoint (as the
     * server's checkpointer does) but still in the WAL: it is started over
     * only by the next write. */
    copy_data(h->wal, live);
    backfill(live);
    copy_data(live, h->backfilled);
    remove_data(live);
    long count = read_events(h->wal, true, &h->events);
    assert_true(count > 0);
    h->event_count = (size_t)count;
    assert_int_equal(h->event_count, h->version_max);
}

static void free_history(history *h)
{
    for (size_t i = 0; i < VERSIONS_MAX; i++)
        json_decref(h->states[i]);
    free_rows(h->events, (long)h->event_count);
    const char *keep = getenv("ARB_KEEP_FAILED");
    if (violation_count > 0 && keep != NULL && strcmp(keep, "1") == 0) {
        printf("kept: %s\n", h->root);
        free(h->root);
    } else {
        test_rmdir(h->root);
    }
}

/* ---- One damaged copy ---- */

typedef enum damage { DAMAGE_TRUNCATE, DAMAGE_FLIP } damage;

typedef struct damage_tally {
    int trials;
    int refused;        /* arbiterd would not start */
    int served_whole;   /* served the last acknowledged version */
    int served_prefix;  /* served an earlier acknowledged version */
    int stopped;        /* started, then stopped by itself while checked */
    int events_changed; /* the copy's events were not a prefix of the log */
    int verify_failed;
    int verify_failed_served; /* verify failed, the server served correctly */
    int lost_commits;         /* acknowledged commits lost over all prefixes */
    bool any_served;
    uint64_t lowest_version;  /* the lowest version served */
    char refusal_errors[256]; /* the distinct error names of refusals */
} damage_tally;

typedef struct trial {
    const char *copy;   /* "wal", "checkpointed", "backfilled" */
    const char *source; /* its directory */
    const char *file;   /* "arbiter.db" or "arbiter.db-wal" */
    damage damage;
    long long offset;
} trial;

static void describe(const history *h, const trial *t, char *text, size_t size)
{
    snprintf(text, size, "ARB_SEED=%llu copy=%s file=%s %s at offset %lld",
             (unsigned long long)h->seed, t->copy, t->file,
             t->damage == DAMAGE_TRUNCATE ? "truncated" : "bit flipped", t->offset);
}

/* Is the damaged copy's events table, read one way, the original or a
 * prefix of it? */
static bool events_intact_read(const history *h, const char *dir, bool via_index)
{
    char **rows = NULL;
    long count = read_events(dir, via_index, &rows);
    bool intact = count >= 0 && (size_t)count <= h->event_count;
    for (long i = 0; intact && i < count; i++)
        intact = strcmp(rows[i], h->events[i]) == 0;
    free_rows(rows, count);
    return intact;
}

/* Committed events changed: neither through the index (as the server reads
 * the log) nor from the table alone does the copy read as the original (or
 * a prefix). Damage that only one way sees - an index entry whose seek
 * skips whole rows, or a row's stream column that every read takes from
 * the index instead - leaves the log as the server reads it; what the
 * server then serves is checked like everything it serves. */
static bool events_intact(const history *h, const char *dir)
{
    return events_intact_read(h, dir, true) || events_intact_read(h, dir, false);
}

/* Resend every acknowledged proposal whose outcome the served version
 * covers (committed at or before it; rejected before it: a rejection
 * decided at the version itself may or may not have reached the disk);
 * each must replay its outcome. Returns false when the connection ended. */
static bool check_replays(const proposal *proposals, size_t count, const test_server *server,
                          uint64_t version, const char *what)
{
    _Static_assert(PROPOSALS_MAX <= TRANSFERS, "expected[] holds every proposal of a run");
    assert_true(count <= TRANSFERS);
    for (int c = 0; c < CLIENTS; c++) {
        char id[16];
        snprintf(id, sizeof id, "u%d", c);
        arb_ws_client *client = ws_open(server, id);
        if (client == NULL)
            return false;
        size_t sent = 0;
        const proposal *expected[TRANSFERS];
        for (size_t i = 0; i < count; i++) {
            const proposal *p = &proposals[i];
            bool covered = (p->answer == ANSWER_COMMITTED && p->seq <= version) ||
                           (p->answer == ANSWER_REJECTED && p->version < version);
            if (p->client != c || !covered)
                continue;
            if (send_proposal(client, p) != 0)
                break;
            expected[sent++] = p;
        }
        for (size_t i = 0; i < sent; i++) {
            int rc = 0;
            json_t *message = ws_answer(client, &rc);
            if (message == NULL) {
                arb_ws_close(client);
                return false;
            }
            uint64_t client_seq =
                (uint64_t)json_integer_value(json_object_get(message, "client_seq"));
            const proposal *p = NULL;
            for (size_t j = 0; j < sent && p == NULL; j++)
                p = expected[j]->client_seq == client_seq ? expected[j] : NULL;
            char why[1200] = "an answer to a proposal not sent";
            if (p == NULL || !same_outcome(p, message, why, sizeof why))
                violation("%s: u%d client_seq %llu: %s", what, c, (unsigned long long)client_seq,
                          why);
            json_decref(message);
        }
        arb_ws_close(client);
    }
    return true;
}

/* The first acknowledged commit beyond the served version, resent: its
 * outcome went with its event, so it must be decided afresh at the next
 * seq, never replayed. */
static void check_lost_commit(const history *h, const test_server *server, uint64_t version,
                              const char *what)
{
    const proposal *lost = NULL;
    for (size_t i = 0; i < TRANSFERS && lost == NULL; i++)
        if (h->proposals[i].answer == ANSWER_COMMITTED && h->proposals[i].seq > version)
            lost = &h->proposals[i];
    if (lost == NULL)
        return;
    char id[16];
    snprintf(id, sizeof id, "u%d", lost->client);
    arb_ws_client *client = ws_open(server, id);
    if (client == NULL || send_proposal(client, lost) != 0) {
        arb_ws_close(client);
        return;
    }
    int rc = 0;
    json_t *message = ws_answer(client, &rc);
    if (message != NULL && json_is_true(json_object_get(message, "replay")))
        violation("%s: serves version %llu but replays u%d client_seq %llu as committed at "
                  "seq %lld (an outcome without its event)",
                  what, (unsigned long long)version, lost->client,
                  (unsigned long long)lost->client_seq,
                  (long long)json_integer_value(json_object_get(message, "seq")));
    json_decref(message);
    arb_ws_close(client);
}

/* The server started on a damaged copy: what it serves must be an
 * acknowledged state. Returns false when it stopped on its own meanwhile. */
static bool check_served(const history *h, test_server *server, damage_tally *tally,
                         const char *what, uint64_t *version_out)
{
    uint64_t version = 0;
    json_t *state = NULL;
    if (!read_state(server, &version, &state))
        return false;
    *version_out = version;
    bool acknowledged = version == 0 ? state == NULL
                                     : version < VERSIONS_MAX && h->states[version] != NULL &&
                                           state != NULL && json_equal(h->states[version], state);
    if (!acknowledged) {
        char *text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
        violation("%s: serves version %llu with a state that was never acknowledged at it: %.300s",
                  what, (unsigned long long)version, text);
        free(text);
    }
    json_decref(state);
    if (!check_replays(h->proposals, TRANSFERS, server, version, what))
        return false;
    check_lost_commit(h, server, version, what);
    if (!tally->any_served || version < tally->lowest_version)
        tally->lowest_version = version;
    tally->any_served = true;
    if (version == h->version_max) {
        tally->served_whole++;
    } else {
        tally->served_prefix++;
        for (size_t i = 0; i < TRANSFERS; i++)
            if (h->proposals[i].answer == ANSWER_COMMITTED && h->proposals[i].seq > version)
                tally->lost_commits++;
    }
    return true;
}

/* With ARB_KEEP_FAILED=1, a damaged copy that showed a violation is kept
 * (as failed-N beside the three undamaged copies, which are then kept too)
 * for a look with the sqlite3 shell; otherwise it is removed. */
static void keep_or_remove(const char *root, const char *dir, bool failed)
{
    static int kept;
    const char *keep = getenv("ARB_KEEP_FAILED");
    if (!failed || keep == NULL || strcmp(keep, "1") != 0) {
        remove_data(dir);
        return;
    }
    char to[PATH_BYTES];
    snprintf(to, sizeof to, "%s/failed-%d", root, ++kept);
    assert_int_equal(rename(dir, to), 0);
    printf("kept: %s\n", to);
}

/* arbiter verify's exit status: 0 when the log checks out. */
static int run_verify(const char *dir)
{
    const char *argv[] = {"arbiter", "verify", "--data", dir, NULL};
    int status = test_run_tool(NULL, argv);
    if (status == EXEC_FAILED_STATUS)
        fail_msg("cannot run arbiter");
    return status;
}

static void run_trial(const history *h, const trial *t, damage_tally *tally)
{
    char what[PATH_BYTES], dir[DIR_BYTES], path[PATH_BYTES], log_path[PATH_BYTES];
    describe(h, t, what, sizeof what);
    snprintf(dir, sizeof dir, "%s/trial", h->root);
    snprintf(log_path, sizeof log_path, "%s/trial.stderr", h->root);
    copy_data(t->source, dir);
    snprintf(path, sizeof path, "%s/%s", dir, t->file);
    if (t->damage == DAMAGE_TRUNCATE)
        assert_int_equal(truncate(path, (off_t)t->offset), 0);
    else
        flip_bit(path, t->offset);
    tally->trials++;
    size_t violations_before = violation_count;
    bool intact = events_intact(h, dir);
    int verify_rc = run_verify(dir);
    tally->events_changed += !intact;
    tally->verify_failed += verify_rc != 0;
    if (!intact && verify_rc == 0)
        violation("%s: committed events changed, and arbiter verify passes", what);
    test_server server;
    int status = 0;
    if (!daemon_start(&server, dir, NULL, log_path, &status)) {
        char name[64] = "";
        tally->refused++;
        if (status == 0 || !refusal_is_clear(log_path, name, sizeof name))
            violation("%s: arbiterd exited %d without a clear \"cannot start\" error", what,
                      status);
        else
            note_token(tally->refusal_errors, sizeof tally->refusal_errors, name);
        keep_or_remove(h->root, dir, violation_count > violations_before);
        return;
    }
    if (!intact)
        violation("%s: committed events changed, and arbiterd started on them", what);
    uint64_t version = 0;
    if (check_served(h, &server, tally, what, &version)) {
        tally->verify_failed_served += verify_rc != 0;
        if (verify_rc != 0)
            printf("%s: arbiter verify failed (%d); arbiterd served version %llu correctly\n", what,
                   verify_rc, (unsigned long long)version);
        /* Killed: a clean stop would first copy the whole WAL back. */
        test_server_stop(&server, SIGKILL);
    } else {
        tally->stopped++;
        int exited = daemon_wait_exit(&server);
        if (exited < 0)
            violation("%s: arbiterd stopped answering but did not exit", what);
        char message[256];
        first_error(log_path, message, sizeof message);
        printf("%s: arbiterd stopped by itself while checked (status %d: %s)\n", what, exited,
               message);
    }
    keep_or_remove(h->root, dir, violation_count > violations_before);
}

/* The database's page size, from its header (bytes 16-17, big-endian; 1
 * means 65536). */
static long long page_size_of(const char *dir)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    unsigned char bytes[2];
    assert_int_equal(pread(fd, bytes, 2, 16), 2);
    close(fd);
    long long size = (long long)bytes[0] << 8 | bytes[1];
    return size == 1 ? 65536 : size;
}

/* Where to damage a file of size bytes: the start of its first units (for
 * the database: its header and first pages; for the WAL: its header and
 * first frames, the oldest commits), SPREAD_OFFSETS offsets over the file,
 * one per equal slice at a seeded place inside it, and its last bytes. */
static size_t pick_offsets(long long size, long long header_bytes, long long unit_bytes,
                           uint64_t *random_state, long long *offsets)
{
    size_t n = 0;
    if (size <= 0)
        return 0;
    const long long head[] = {0, header_bytes, header_bytes + unit_bytes,
                              header_bytes + 8 * unit_bytes};
    for (size_t i = 0; i < 4; i++)
        if (head[i] < size)
            offsets[n++] = head[i];
    long long slice = size / SPREAD_OFFSETS > 0 ? size / SPREAD_OFFSETS : 1;
    for (long long start = 0; start < size && n < 4 + SPREAD_OFFSETS; start += slice)
        offsets[n++] = start + (long long)test_random_below(random_state, (uint64_t)slice);
    static const long long from_end[] = {1, 2, 16, 100};
    for (size_t i = 0; i < 4; i++)
        if (size - from_end[i] >= 0)
            offsets[n++] = size - from_end[i];
    return n;
}

static void damage_file(const history *h, const char *copy, const char *source, const char *file,
                        uint64_t *random_state, damage_tally *tally)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%s", source, file);
    long long size = file_size(path);
    long long page_bytes = page_size_of(source);
    bool wal = strcmp(file, "arbiter.db-wal") == 0;
    /* A WAL: a 32-byte header, then frames of a 24-byte header and a page.
     * A database: a 100-byte header inside its first page. */
    long long offsets[4 + SPREAD_OFFSETS + 4];
    size_t count = pick_offsets(size, wal ? 32 : 100, wal ? 24 + page_bytes : page_bytes,
                                random_state, offsets);
    for (size_t i = 0; i < count; i++) {
        trial t = {copy, source, file, DAMAGE_TRUNCATE, offsets[i]};
        run_trial(h, &t, tally);
        t.damage = DAMAGE_FLIP;
        run_trial(h, &t, tally);
    }
}

/* hex (64 digits) into 32 bytes. */
static void unhex(const char *hex, unsigned char bytes[32])
{
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &bytes[i]), 1);
}

/* Flip a bit of the first copy of needle in the file (read into bytes),
 * at needle_offset inside it; nothing when it is not found. */
static void flip_in(const history *h, const trial *t, const char *bytes, size_t size,
                    const void *needle, size_t needle_len, size_t needle_offset,
                    damage_tally *tally)
{
    const char *at = memmem(bytes, size, needle, needle_len);
    if (at == NULL)
        return;
    trial flip = *t;
    flip.offset = (long long)(at - bytes) + (long long)needle_offset;
    run_trial(h, &flip, tally);
}

/* The fingerprints of TARGETED_OUTCOMES outcome rows spread over the
 * table, as hex. */
static size_t outcome_fingerprints(const char *dir, char hex[][65])
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_stmt *statement = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT hex(fingerprint) FROM outcomes WHERE rowid % ?1 = 7"
                                        " ORDER BY rowid LIMIT ?2",
                                        -1, &statement, NULL),
                     SQLITE_OK);
    sqlite3_bind_int(statement, 1, TRANSFERS / TARGETED_OUTCOMES);
    sqlite3_bind_int(statement, 2, TARGETED_OUTCOMES);
    size_t n = 0;
    while (sqlite3_step(statement) == SQLITE_ROW && n < TARGETED_OUTCOMES)
        snprintf(hex[n++], 65, "%s", (const char *)sqlite3_column_text(statement, 0));
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return n;
}

/* Bit flips in the idempotency index: TARGETED_KEYS places in the cell
 * area (the end) of outcome_keys' leaf pages, found with the dbstat table. */
static void damage_keys(const history *h, const char *copy, const char *source, damage_tally *tally)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiter.db", source);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_stmt *statement = NULL;
    long long offsets[TARGETED_KEYS];
    size_t n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT pgoffset + pgsize FROM dbstat WHERE name = 'outcome_keys'"
                           " AND pagetype = 'leaf' ORDER BY pageno",
                           -1, &statement, NULL) != SQLITE_OK) {
        printf("no dbstat table in this SQLite: the outcome_keys flips are skipped\n");
    } else {
        while (sqlite3_step(statement) == SQLITE_ROW && n < TARGETED_KEYS) {
            long long page_end = sqlite3_column_int64(statement, 0);
            for (size_t k = 0; n < TARGETED_KEYS; k++)
                offsets[n++] = page_end - 1 - (long long)(k + 1) * TARGETED_KEYS_STRIDE;
        }
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    for (size_t i = 0; i < n; i++) {
        trial t = {copy, source, "arbiter.db", DAMAGE_FLIP, offsets[i]};
        run_trial(h, &t, tally);
    }
}

/* Bit flips inside stored rows of the database file: the data and the hash
 * of TARGETED_EVENTS events spread over the log (committed events changed:
 * verify must fail, the server refuse), and the fingerprint of
 * TARGETED_OUTCOMES outcomes (what a retry is matched against). */
static void damage_rows(const history *h, const char *copy, const char *source, damage_tally *tally)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/arbiter.db", source);
    size_t size = 0;
    char *bytes = read_text(path, &size);
    assert_non_null(bytes);
    trial t = {copy, source, "arbiter.db", DAMAGE_FLIP, 0};
    for (size_t k = 0; k < TARGETED_EVENTS; k++) {
        const char *row = h->events[(k * 2 + 1) * h->event_count / (2 * TARGETED_EVENTS)];
        /* stream|seq|type|data|client_id|client_seq|applied_at|HASH */
        const char *data = row;
        for (int bar = 0; bar < 3; bar++)
            data = strchr(data, '|') + 1;
        size_t data_len = (size_t)(strchr(data, '|') - data);
        flip_in(h, &t, bytes, size, data, data_len, data_len / 2, tally);
        unsigned char hash[32];
        unhex(strrchr(row, '|') + 1, hash);
        flip_in(h, &t, bytes, size, hash, sizeof hash, k % sizeof hash, tally);
    }
    char fingerprints[TARGETED_OUTCOMES][65];
    size_t count = outcome_fingerprints(source, fingerprints);
    for (size_t k = 0; k < count; k++) {
        unsigned char fingerprint[32];
        unhex(fingerprints[k], fingerprint);
        flip_in(h, &t, bytes, size, fingerprint, sizeof fingerprint, 5 + k, tally);
    }
    free(bytes);
    damage_keys(h, copy, source, tally);
}

static void print_tally(const char *copy, const damage_tally *t)
{
    char lowest[32] = "-";
    if (t->any_served)
        snprintf(lowest, sizeof lowest, "%llu", (unsigned long long)t->lowest_version);
    printf("corrupt tails, %s: %d trials: %d refused (%s), %d served the whole log, %d served an "
           "acknowledged prefix (down to version %s; %d acknowledged transfers lost over all), "
           "%d stopped while checked; events changed in %d, verify failed on %d (%d of them "
           "served correctly)\n",
           copy, t->trials, t->refused, t->refusal_errors[0] != '\0' ? t->refusal_errors : "-",
           t->served_whole, t->served_prefix, lowest, t->lost_commits, t->stopped,
           t->events_changed, t->verify_failed, t->verify_failed_served);
}

static void test_corrupt_tails(void **state)
{
    (void)state;
    static history h;
    memset(&h, 0, sizeof h);
    build_history(&h);
    uint64_t random_state = h.seed;
    printf("history: %llu versions, %d transfers; bytes of db and WAL: wal copy %lld + %lld, "
           "checkpointed copy %lld + %lld, backfilled copy %lld + %lld\n",
           (unsigned long long)h.version_max, TRANSFERS, data_file_size(h.wal, "arbiter.db"),
           data_file_size(h.wal, "arbiter.db-wal"), data_file_size(h.checkpointed, "arbiter.db"),
           data_file_size(h.checkpointed, "arbiter.db-wal"),
           data_file_size(h.backfilled, "arbiter.db"),
           data_file_size(h.backfilled, "arbiter.db-wal"));
    damage_tally wal = {0}, checkpointed = {0}, backfilled = {0};
    damage_file(&h, "wal", h.wal, "arbiter.db-wal", &random_state, &wal);
    damage_file(&h, "wal", h.wal, "arbiter.db", &random_state, &wal);
    print_tally("wal", &wal);
    damage_file(&h, "checkpointed", h.checkpointed, "arbiter.db", &random_state, &checkpointed);
    damage_rows(&h, "checkpointed", h.checkpointed, &checkpointed);
    print_tally("checkpointed", &checkpointed);
    damage_file(&h, "backfilled", h.backfilled, "arbiter.db-wal", &random_state, &backfilled);
    damage_file(&h, "backfilled", h.backfilled, "arbiter.db", &random_state, &backfilled);
    print_tally("backfilled", &backfilled);
    free_history(&h);
    assert_no_violations();
}

/* ---- Write failures ---- */

typedef struct fault_fixture {
    char *root;
    char base[DIR_BYTES]; /* the ledger set up, stopped cleanly */
    char shim[PATH_MAX];  /* faultfs.so, absolute */
    char state_path[PATH_BYTES];
    faultfs_state *state; /* the shim's counters, mapped here too */
    uint64_t seed;
} fault_fixture;

typedef struct fault_tally {
    int runs;
    int refused_at_start;
    int stopped;           /* exited by itself at the fault */
    int not_reached;       /* every proposal answered, no call failed */
    int acknowledged;      /* proposals acknowledged before the fault */
    int in_flight;         /* sent, unanswered when the server stopped */
    int in_flight_durable; /* of which in the log after the restart */
    int calls_max;         /* the most matching calls a run made */
    char exits[128];       /* the distinct exit statuses */
    char messages[512];    /* the distinct error messages (msg="...") */
} fault_tally;

static void fault_setup(fault_fixture *f)
{
    memset(f, 0, sizeof *f);
    f->root = test_mkdtemp("storage_write_fault");
    snprintf(f->base, sizeof f->base, "%s/base", f->root);
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    char shim[PATH_BYTES];
    snprintf(shim, sizeof shim, "%s/../lib/faultfs.so", bin_dir);
    if (realpath(shim, f->shim) == NULL)
        fail_msg("%s not found: make build-tests builds it", shim);
    snprintf(f->state_path, sizeof f->state_path, "%s/faultfs.state", f->root);
    int fd = open(f->state_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, sizeof(faultfs_state)), 0);
    void *map = mmap(NULL, sizeof(faultfs_state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    close(fd);
    f->state = map;
    char log_path[PATH_BYTES];
    snprintf(log_path, sizeof log_path, "%s/base.stderr", f->root);
    test_server server;
    int status = 0;
    assert_true(daemon_start(&server, f->base, NULL, log_path, &status));
    setup_ledger(&server, NULL);
    assert_int_equal(test_server_stop(&server, SIGTERM), 0);
}

static void fault_teardown(fault_fixture *f)
{
    munmap(f->state, sizeof(faultfs_state));
    const char *keep = getenv("ARB_KEEP_FAILED");
    if (violation_count > 0 && keep != NULL && strcmp(keep, "1") == 0) {
        printf("kept: %s\n", f->root);
        free(f->root);
    } else {
        test_rmdir(f->root);
    }
}

/* Propose transfers, WINDOW in flight (one per user), until the server
 * stops answering or rounds_max rounds are answered. Every proposal sent
 * after the shim reported a failed call must go unanswered. Returns the
 * number of proposals sent; *stopped_out tells whether the server stopped
 * answering. */
static size_t drive(const fault_fixture *f, const test_server *server, proposal *proposals,
                    int rounds_max, uint64_t *random_state, bool *stopped_out, const char *what)
{
    arb_ws_client *clients[CLIENTS] = {0};
    size_t sent = 0;
    bool stopped = false;
    for (int c = 0; c < CLIENTS && !stopped; c++) {
        char id[16];
        snprintf(id, sizeof id, "u%d", c);
        clients[c] = ws_open(server, id);
        stopped = clients[c] == NULL;
    }
    for (int round = 0; round < rounds_max && !stopped; round++) {
        size_t first = sent;
        for (int c = 0; c < CLIENTS && !stopped; c++) {
            proposal *p = &proposals[sent];
            next_proposal(p, c, 1 + (uint64_t)round, random_state, sent);
            p->sent_after_fault = atomic_load(&f->state->faults) > 0;
            sent++;
            stopped = send_proposal(clients[c], p) != 0;
        }
        for (size_t i = first; i < sent && !stopped; i++) {
            proposal *p = &proposals[i];
            int rc = 0;
            json_t *message = ws_answer(clients[p->client], &rc);
            if (message == NULL) {
                stopped = true;
                break;
            }
            record_answer(p, message);
            json_decref(message);
            if (p->sent_after_fault)
                violation("%s: u%d client_seq %llu was sent after the fault and acknowledged: %s",
                          what, p->client, (unsigned long long)p->client_seq, p->outcome);
        }
    }
    for (int c = 0; c < CLIENTS; c++)
        arb_ws_close(clients[c]);
    *stopped_out = stopped;
    return sent;
}

/* After the restart: the log holds every acknowledged commit at its seq,
 * and nothing but proposals that were sent. Counts the unanswered ones
 * that made it to the disk. */
static void check_log(const test_server *server, const proposal *proposals, size_t count,
                      fault_tally *tally, const char *what)
{
    json_t *body = NULL;
    assert_int_equal(http_json(server, "/v1/streams/" STREAM "/events?since=0&limit=1000", &body),
                     200);
    bool found[PROPOSALS_MAX] = {false};
    json_t *event;
    size_t index;
    json_array_foreach (json_object_get(body, "events"), index, event) {
        const char *client_id = json_string_value(json_object_get(event, "client_id"));
        uint64_t client_seq = (uint64_t)json_integer_value(json_object_get(event, "client_seq"));
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(event, "seq"));
        if (client_id == NULL || client_id[0] != 'u')
            continue;
        size_t i = 0;
        int client = (int)strtol(client_id + 1, NULL, 10);
        while (i < count &&
               !(proposals[i].client == client && proposals[i].client_seq == client_seq))
            i++;
        if (i == count) {
            violation("%s: event %llu comes from %s client_seq %llu, never sent", what,
                      (unsigned long long)seq, client_id, (unsigned long long)client_seq);
            continue;
        }
        found[i] = true;
        if (proposals[i].answer == ANSWER_COMMITTED && proposals[i].seq != seq)
            violation("%s: %s client_seq %llu acknowledged at seq %llu, in the log at %llu", what,
                      client_id, (unsigned long long)client_seq,
                      (unsigned long long)proposals[i].seq, (unsigned long long)seq);
        tally->in_flight_durable += proposals[i].answer == ANSWER_NONE;
    }
    for (size_t i = 0; i < count; i++)
        if (proposals[i].answer == ANSWER_COMMITTED && !found[i])
            violation("%s: u%d client_seq %llu acknowledged at seq %llu, missing from the log",
                      what, proposals[i].client, (unsigned long long)proposals[i].client_seq,
                      (unsigned long long)proposals[i].seq);
    json_decref(body);
}

/* The ledger's money adds up: every balance and hold together is what was
 * deposited. */
static void check_money(const test_server *server, const char *what)
{
    uint64_t version = 0;
    json_t *state = NULL;
    assert_true(read_state(server, &version, &state));
    assert_non_null(state);
    long long total = 0;
    const char *name;
    json_t *account;
    json_object_foreach (json_object_get(state, "accounts"), name, account)
        total += json_integer_value(json_object_get(account, "balance")) +
                 json_integer_value(json_object_get(account, "held"));
    if (total != (long long)ACCOUNTS * BALANCE_START)
        violation("%s: the accounts hold %lld, %lld were deposited", what, total,
                  (long long)ACCOUNTS * BALANCE_START);
    json_decref(state);
}

/* Restart without the shim and check the state it recovered. */
static void check_recovery(const char *dir, const char *log_path, const proposal *proposals,
                           size_t count, fault_tally *tally, const char *what)
{
    test_server server;
    int status = 0;
    if (!daemon_start(&server, dir, NULL, log_path, &status)) {
        char message[256];
        first_error(log_path, message, sizeof message);
        violation("%s: arbiterd does not restart after the fault was cleared (exit %d: %s)", what,
                  status, message);
        return;
    }
    check_log(&server, proposals, count, tally, what);
    if (!check_replays(proposals, count, &server, UINT64_MAX, what))
        violation("%s: the restarted server stopped while answering resent proposals", what);
    check_money(&server, what);
    assert_int_equal(test_server_stop(&server, SIGTERM), 0);
    if (run_verify(dir) != 0)
        violation("%s: arbiter verify fails after the restart", what);
}

/* The environment of arbiterd under the shim: env holds the strings, envp
 * (NULL-terminated) points at them. */
static void fault_environment(const fault_fixture *f, const char *op, int at, const char *error,
                              const char *real_dir, char env[7][PATH_MAX + 32], const char *envp[8])
{
    snprintf(env[0], PATH_MAX + 32, "LD_PRELOAD=%s", f->shim);
    snprintf(env[1], PATH_MAX + 32, "FAULTFS_PATH=%s/", real_dir);
    snprintf(env[2], PATH_MAX + 32, "FAULTFS_OP=%s", op);
    snprintf(env[3], PATH_MAX + 32, "FAULTFS_AT=%d", at);
    snprintf(env[4], PATH_MAX + 32, "FAULTFS_ERRNO=%s", error);
    snprintf(env[5], PATH_MAX + 32, "FAULTFS_STATE=%s", f->state_path);
    /* ASan wants its runtime first in the library list; the shim before it
     * is harmless (its calls go on to ASan's interceptors), so the check is
     * turned off. */
    const char *asan_options = getenv("ASAN_OPTIONS");
    snprintf(env[6], PATH_MAX + 32, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             asan_options != NULL ? asan_options : "",
             asan_options != NULL && asan_options[0] != '\0' ? ":" : "");
    for (size_t i = 0; i < 6; i++)
        envp[i] = env[i];
    envp[6] = ADDRESS_SANITIZED ? env[6] : NULL;
    envp[7] = NULL;
}

/* arbiterd under the shim, driven until it stops answering (or every
 * round is answered). Returns the number of proposals sent. */
static size_t run_under_fault(fault_fixture *f, const char *dir, const char *const envp[],
                              const char *log_path, int at, proposal *proposals, fault_tally *tally,
                              const char *what)
{
    test_server server;
    int status = 0;
    char token[160];
    if (!daemon_start(&server, dir, envp, log_path, &status)) {
        tally->refused_at_start++;
        char name[64] = "";
        if (status == 0 || !refusal_is_clear(log_path, name, sizeof name))
            violation("%s: arbiterd exited %d at start without a clear \"cannot start\" error",
                      what, status);
        if (atomic_load(&f->state->faults) == 0)
            violation("%s: arbiterd refused to start before any call failed", what);
        snprintf(token, sizeof token, "refused to start: %s", name);
        note_token(tally->messages, sizeof tally->messages, token);
        return 0;
    }
    uint64_t random_state = f->seed + (uint64_t)at;
    bool stopped = false;
    size_t count = drive(f, &server, proposals, ROUNDS_MAX, &random_state, &stopped, what);
    for (size_t i = 0; i < count; i++) {
        tally->acknowledged += proposals[i].answer != ANSWER_NONE;
        tally->in_flight += proposals[i].answer == ANSWER_NONE;
    }
    if (!stopped) {
        tally->not_reached += atomic_load(&f->state->faults) == 0;
        assert_int_equal(test_server_stop(&server, SIGTERM), 0);
        return count;
    }
    int exit_status = daemon_wait_exit(&server);
    if (exit_status < 0)
        violation("%s: arbiterd stopped answering but did not exit", what);
    tally->stopped++;
    snprintf(token, sizeof token, "%d", exit_status);
    note_token(tally->exits, sizeof tally->exits, token);
    first_error(log_path, token, sizeof token);
    note_token(tally->messages, sizeof tally->messages, token);
    return count;
}

/* One run: a fresh copy of the base, the Nth op failing from then on (ENOSPC
 * for odd N, EIO for even), then the restart without the shim. */
static void fault_run(fault_fixture *f, const char *op, int at, fault_tally *tally)
{
    const char *error = at % 2 == 1 ? "ENOSPC" : "EIO";
    char what[256], dir[DIR_BYTES], real_dir[PATH_MAX], log_path[PATH_BYTES];
    snprintf(what, sizeof what, "FAULTFS_OP=%s FAULTFS_AT=%d FAULTFS_ERRNO=%s", op, at, error);
    snprintf(dir, sizeof dir, "%s/run", f->root);
    snprintf(log_path, sizeof log_path, "%s/run.stderr", f->root);
    copy_data(f->base, dir);
    assert_non_null(realpath(dir, real_dir));
    atomic_store(&f->state->calls, 0);
    atomic_store(&f->state->faults, 0);
    atomic_store(&f->state->first_fault_call, 0);
    static char env[7][PATH_MAX + 32];
    const char *envp[8];
    fault_environment(f, op, at, error, real_dir, env, envp);
    tally->runs++;
    size_t violations_before = violation_count;
    static proposal proposals[PROPOSALS_MAX];
    size_t count = run_under_fault(f, dir, envp, log_path, at, proposals, tally, what);
    if ((int)atomic_load(&f->state->calls) > tally->calls_max)
        tally->calls_max = (int)atomic_load(&f->state->calls);
    check_recovery(dir, log_path, proposals, count, tally, what);
    keep_or_remove(f->root, dir, violation_count > violations_before);
}

static void print_fault_tally(const char *op, int at_max, const fault_tally *t)
{
    printf("write faults, %s N=1..%d (ENOSPC odd N, EIO even N): %d runs: %d refused to start, "
           "%d stopped at the fault (exit %s), %d never reached the fault; %d proposals "
           "acknowledged before the fault, %d in flight at it (%d of them durable after all); "
           "at most %d %s calls in a run; errors logged: %s\n",
           op, at_max, t->runs, t->refused_at_start, t->stopped, t->exits[0] ? t->exits : "-",
           t->not_reached, t->acknowledged, t->in_flight, t->in_flight_durable, t->calls_max, op,
           t->messages[0] ? t->messages : "-");
}

static void test_write_faults(void **state)
{
    (void)state;
    if (THREAD_SANITIZED)
        skip();
    static fault_fixture f;
    fault_setup(&f);
    f.seed = test_seed("storage_fault_test write faults");
    fault_tally writes = {0}, syncs = {0};
    for (int at = 1; at <= WRITE_AT_MAX; at++)
        fault_run(&f, "write", at, &writes);
    print_fault_tally("write", WRITE_AT_MAX, &writes);
    for (int at = 1; at <= FSYNC_AT_MAX; at++)
        fault_run(&f, "fsync", at, &syncs);
    print_fault_tally("fsync", FSYNC_AT_MAX, &syncs);
    fault_teardown(&f);
    assert_no_violations();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_tails),
        cmocka_unit_test(test_write_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
