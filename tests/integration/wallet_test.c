/*
 * wallet_test.c - examples/wallet (the terminal wallet on the client SDK)
 * run as a child process against the real arbiterd: commands written to its
 * stdin, its greppable output lines read from its stdout.
 *
 * The stories: an optimistic transfer shows at once and is then confirmed;
 * a transfer made offline is overtaken by the admin spending the same money,
 * and on reconnection the wallet prints the rejection and ends on the
 * server's balance; end of input makes it drain and exit 0; a bad command
 * line exits 2.
 *
 * Every wait has a deadline that only stops a hang; nothing asserts on time.
 * The whole transcript is printed when a wait fails.
 */
#include "server.h"
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LEDGER "ledger:demo"
#define WAIT_MS 20000
/* The most of a wallet's output a test keeps. */
#define TRANSCRIPT_BYTES_MAX (1024 * 1024)

typedef struct fixture {
    char *dir;
    char data[1100];
    test_server server;
} fixture;

/* A running wallet and everything it printed so far. */
typedef struct wallet_proc {
    pid_t pid;
    int in_fd;  /* its stdin (write end); -1 once closed */
    int out_fd; /* its stdout (read end) */
    char *transcript;
    size_t len;     /* bytes in transcript */
    size_t scanned; /* bytes of transcript already returned as lines */
    bool eof;
} wallet_proc;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_mkdtemp("wallet");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    test_server_start(&f->server, f->data, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->server.pid > 0)
        assert_int_equal(test_server_stop(&f->server, SIGTERM), 0);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wallet_path(char *path, size_t size)
{
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    snprintf(path, size, "%s/examples/wallet", bin_dir);
}

static void wallet_start(wallet_proc *w, const char *const argv[])
{
    memset(w, 0, sizeof *w);
    char path[4096];
    wallet_path(path, sizeof path);
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    w->pid = fork();
    assert_true(w->pid >= 0);
    if (w->pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    w->in_fd = in[1];
    w->out_fd = out[0];
    w->transcript = malloc(TRANSCRIPT_BYTES_MAX + 1);
    assert_non_null(w->transcript);
    w->transcript[0] = '\0';
}

static void wallet_write(wallet_proc *w, const char *text)
{
    assert_true(w->in_fd >= 0);
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(w->in_fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail_msg("the wallet's stdin is closed; it printed:\n%s", w->transcript);
        done += (size_t)n;
    }
}

static void wallet_close_input(wallet_proc *w)
{
    assert_true(w->in_fd >= 0);
    close(w->in_fd);
    w->in_fd = -1;
}

/* Read what the wallet printed, waiting until deadline_ms for some. */
static void wallet_read(wallet_proc *w, int64_t deadline_ms)
{
    int64_t left = deadline_ms - now_ms();
    if (left <= 0)
        fail_msg("the wallet did not print what was expected within %d ms; it printed:\n%s",
                 WAIT_MS, w->transcript);
    struct pollfd pfd = {.fd = w->out_fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)left) <= 0)
        return;
    assert_true(w->len < TRANSCRIPT_BYTES_MAX);
    ssize_t n = read(w->out_fd, w->transcript + w->len, TRANSCRIPT_BYTES_MAX - w->len);
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) {
        w->eof = true;
        return;
    }
    w->len += (size_t)n;
    w->transcript[w->len] = '\0';
}

/* The offset of the next whole line starting with prefix, after every line
 * returned before; fails at the deadline or when the wallet ends first. */
static size_t wallet_expect(wallet_proc *w, const char *prefix)
{
    int64_t deadline_ms = now_ms() + WAIT_MS;
    size_t prefix_len = strlen(prefix);
    for (;;) {
        char *newline;
        while ((newline = memchr(w->transcript + w->scanned, '\n', w->len - w->scanned)) != NULL) {
            size_t start = w->scanned;
            w->scanned = (size_t)(newline - w->transcript) + 1;
            if (strncmp(w->transcript + start, prefix, prefix_len) == 0)
                return start;
        }
        if (w->eof)
            fail_msg("the wallet ended before a line \"%s\"; it printed:\n%s", prefix,
                     w->transcript);
        wallet_read(w, deadline_ms);
    }
}

/* Whether a whole line equal to line is in the transcript in [from, to). */
static bool has_line(const wallet_proc *w, size_t from, size_t to, const char *line)
{
    size_t len = strlen(line);
    for (size_t at = from; at + len < to; at++) {
        bool starts = at == 0 || w->transcript[at - 1] == '\n';
        if (starts && strncmp(w->transcript + at, line, len) == 0 &&
            w->transcript[at + len] == '\n')
            return true;
    }
    return false;
}

/* The last line starting with prefix (copied, without its newline). */
static void last_line(const wallet_proc *w, const char *prefix, char *out, size_t size)
{
    out[0] = '\0';
    size_t len = strlen(prefix);
    for (size_t at = 0; at < w->len; at++) {
        if ((at == 0 || w->transcript[at - 1] == '\n') &&
            strncmp(w->transcript + at, prefix, len) == 0) {
            size_t end = at;
            while (end < w->len && w->transcript[end] != '\n')
                end++;
            snprintf(out, size, "%.*s", (int)(end - at), w->transcript + at);
        }
    }
}

/* Close its stdin, read to its end, and return its exit status. */
static int wallet_finish(wallet_proc *w)
{
    if (w->in_fd >= 0)
        wallet_close_input(w);
    int64_t deadline_ms = now_ms() + WAIT_MS;
    while (!w->eof)
        wallet_read(w, deadline_ms);
    close(w->out_fd);
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status))
        fail_msg("the wallet died (status %d); it printed:\n%s", status, w->transcript);
    return WEXITSTATUS(status);
}

static unsigned long long seq_of(const wallet_proc *w, size_t line_at, const char *prefix)
{
    return strtoull(w->transcript + line_at + strlen(prefix), NULL, 10);
}

static json_int_t server_balance(const fixture *f, const char *account)
{
    json_t *body = NULL;
    assert_int_equal(
        test_http(&f->server, "GET", "/v1/streams/" LEDGER, "X-Client-Id: admin\r\n", NULL, &body),
        200);
    json_t *accounts = json_object_get(json_object_get(body, "state"), "accounts");
    json_int_t balance =
        json_integer_value(json_object_get(json_object_get(accounts, account), "balance"));
    json_decref(body);
    return balance;
}

/* An optimistic transfer, confirmed; then one made offline while the admin
 * spends the money, rejected on reconnection and rolled back. */
static void test_commit_then_rejection(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, LEDGER, owners, 2, 100);
    char outbox[1200], line[256], prefix[128];
    snprintf(outbox, sizeof outbox, "%s/alice.outbox", f->dir);
    const char *argv[] = {"wallet",    "--url", f->server.ws_url, "--id", "alice",
                          "--account", "alice", "--outbox",       outbox, NULL};
    wallet_proc w;
    wallet_start(&w, argv);
    wallet_expect(&w, "confirmed alice 100 @v");

    /* Optimistic: the balance moves at once, then the server confirms it. */
    wallet_write(&w, "send bob 30 lunch\n");
    size_t proposed = wallet_expect(&w, "proposed #");
    unsigned long long first = seq_of(&w, proposed, "proposed #");
    snprintf(prefix, sizeof prefix, "outcome #%llu committed", first);
    size_t committed = wallet_expect(&w, prefix);
    assert_true(has_line(&w, proposed, committed, "optimistic alice 70"));
    wallet_expect(&w, "confirmed alice 70 @v");

    /* Offline: the transfer shows in the draft; the admin spends meanwhile. */
    wallet_write(&w, "offline\n");
    wallet_expect(&w, "state offline");
    wallet_write(&w, "send bob 60\n");
    proposed = wallet_expect(&w, "proposed #");
    unsigned long long second = seq_of(&w, proposed, "proposed #");
    assert_true(second > first);
    snprintf(prefix, sizeof prefix, "pending #%llu -> bob 60 applied", second);
    wallet_expect(&w, prefix);
    wallet_expect(&w, "optimistic alice 10");

    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    json_t *outcome =
        test_ws_propose(admin, (uint64_t)time(NULL) * 1000 + 777, LEDGER, "transfer",
                        json_pack("{s:s, s:s, s:i}", "from", "alice", "to", "bob", "amount", 50));
    assert_string_equal(json_string_value(json_object_get(outcome, "type")), "committed");
    json_decref(outcome);
    arb_ws_close(admin);

    /* Online: the server rejects the transfer, and the wallet says so. */
    wallet_write(&w, "online\n");
    snprintf(prefix, sizeof prefix, "outcome #%llu rejected INSUFFICIENT_FUNDS", second);
    wallet_expect(&w, prefix);

    assert_int_equal(wallet_finish(&w), 0);
    assert_true(has_line(&w, proposed, w.len, "state online"));
    last_line(&w, "confirmed alice ", line, sizeof line);
    assert_true(strncmp(line, "confirmed alice 20 @v", 21) == 0);
    last_line(&w, "optimistic alice ", line, sizeof line);
    assert_string_equal(line, "optimistic alice 20");
    last_line(&w, "exit, pending ", line, sizeof line);
    assert_string_equal(line, "exit, pending 0");
    assert_int_equal(server_balance(f, "alice"), 20);
    assert_int_equal(server_balance(f, "bob"), 180);
    free(w.transcript);
}

/* A script piped in whole: at end of input the wallet waits for its
 * verdicts before it exits, and the outbox file is left empty. */
static void test_piped_script_drains(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, LEDGER, owners, 2, 100);
    char outbox[1200];
    snprintf(outbox, sizeof outbox, "%s/alice.outbox", f->dir);
    const char *argv[] = {"wallet", "--url",    f->server.ws_url, "--id",
                          "alice",  "--outbox", outbox,           NULL};
    wallet_proc w;
    wallet_start(&w, argv);
    wallet_write(&w, "send bob 10\nsend! bob 20\nsend bob 500\nbogus\nshow\n");
    assert_int_equal(wallet_finish(&w), 0);
    assert_true(has_line(&w, 0, w.len, "exit, pending 0"));
    assert_non_null(strstr(w.transcript, "rejected INSUFFICIENT_FUNDS"));
    assert_non_null(strstr(w.transcript, "\nerror unknown command bogus"));
    assert_int_equal(server_balance(f, "alice"), 70);
    free(w.transcript);
}

/* A bad command line prints usage and exits 2. */
static void test_bad_command_line(void **state)
{
    (void)state;
    char *dir = test_mkdtemp("wallet-usage");
    char outbox[1200];
    snprintf(outbox, sizeof outbox, "%s/x.outbox", dir);
    const char *const cases[][12] = {
        {"examples/wallet", NULL},
        {"examples/wallet", "--id", "alice", NULL},
        {"examples/wallet", "--url", "ws://127.0.0.1:1/", NULL},
        {"examples/wallet", "--url", "ws://127.0.0.1:1/", "--id", "alice", "--bogus", "x", NULL},
        {"examples/wallet", "--url", "ws://127.0.0.1:1/", "--id", "alice", "--outbox", NULL},
        {"examples/wallet", "--url", "ws://127.0.0.1:1/", "--id", "alice", "extra", NULL},
        {"examples/wallet", "--url", "http://127.0.0.1:1/", "--id", "alice", "--outbox", outbox,
         NULL},
        {"examples/wallet", "--url", "ws://127.0.0.1:1/", "--id", "al ice", "--outbox", outbox,
         NULL},
        {"examples/wallet", "--url", "ws://127.0.0.1:1/", "--id", "alice", "--stream", "nocolon",
         "--outbox", outbox, NULL},
        {"examples/wallet", "--url", "ws://127.0.0.1:1/", "--id", "alice", "--stream",
         "inventory:x", "--outbox", outbox, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        int status = test_run_tool(&out, cases[i]);
        if (status != 2)
            fail_msg("case %zu: exit %d, not 2", i, status);
        free(out);
    }
    /* A good command line, but an outbox that cannot be opened: 1. */
    char *out = NULL;
    const char *unusable[] = {
        "examples/wallet", "--url", "ws://127.0.0.1:1/", "--id", "alice", "--outbox", dir, NULL};
    assert_int_equal(test_run_tool(&out, unusable), 1);
    free(out);
    const char *help[] = {"examples/wallet", "--help", NULL};
    assert_int_equal(test_run_tool(&out, help), 0);
    assert_non_null(strstr(out, "usage: wallet"));
    free(out);
    test_rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_then_rejection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_piped_script_drains, setup, teardown),
        cmocka_unit_test(test_bad_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
