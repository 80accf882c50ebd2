/*
 * cli_test.c - the arbiter CLI as a user runs it: exec, state, log, streams,
 * verify, exit codes, malformed input, idempotent re-execution, and verify
 * naming the seq of an event edited on disk; and the remote commands
 * (propose, state, tail) against the real arbiterd, tail across a restart.
 */
#include "server.h"
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = test_mkdtemp("cli");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_rmdir(dir);
    dir = NULL;
    return 0;
}

/* Run `arbiter ARGS...` with --data dir appended; returns the exit status and
 * the parsed stdout (NULL when it is not JSON). */
static int arbiter(json_t **out, const char *a1, const char *a2, const char *a3, const char *a4,
                   const char *a5, const char *a6)
{
    const char *argv[12] = {"arbiter"};
    size_t n = 1;
    const char *given[] = {a1, a2, a3, a4, a5, a6};
    for (size_t i = 0; i < 6 && given[i] != NULL; i++)
        argv[n++] = given[i];
    argv[n++] = "--data";
    argv[n++] = dir;
    argv[n] = NULL;
    char *text = NULL;
    int status = test_run_tool(&text, argv);
    if (out != NULL) {
        json_error_t error;
        *out = json_loads(text, 0, &error);
    }
    free(text);
    return status;
}

static void test_exec_state_log(void **state)
{
    (void)state;
    json_t *out = NULL;
    assert_int_equal(arbiter(&out, "exec", "ledger:main", "open_account",
                             "{\"account\":\"a\",\"owner\":\"alice\",\"currency\":\"EUR\"}", NULL,
                             NULL),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "status")), "committed");
    assert_int_equal(json_integer_value(json_object_get(out, "seq_first")), 1);
    json_decref(out);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "open_account",
                             "{\"account\":\"b\",\"owner\":\"bob\",\"currency\":\"EUR\"}", NULL,
                             NULL),
                     0);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "deposit",
                             "{\"account\":\"a\",\"amount\":100}", NULL, NULL),
                     0);
    /* A rule rejection exits 1 and prints the code. */
    assert_int_equal(arbiter(&out, "exec", "ledger:main", "transfer",
                             "{\"from\":\"a\",\"to\":\"b\",\"amount\":101}", NULL, NULL),
                     1);
    assert_string_equal(json_string_value(json_object_get(out, "code")), "INSUFFICIENT_FUNDS");
    json_decref(out);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "transfer",
                             "{\"from\":\"a\",\"to\":\"b\",\"amount\":40}", NULL, NULL),
                     0);
    assert_int_equal(arbiter(&out, "state", "ledger:main", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 4);
    json_t *accounts = json_object_get(json_object_get(out, "state"), "accounts");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(accounts, "b"), "balance")),
                     40);
    json_decref(out);
    assert_int_equal(arbiter(&out, "log", "ledger:main", "--since", "2", NULL, NULL), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 1), "type")),
                        "transferred");
    json_decref(out);
    assert_int_equal(arbiter(&out, "streams", NULL, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(json_string_value(json_array_get(out, 0)), "ledger:main");
    json_decref(out);
    assert_int_equal(arbiter(&out, "verify", NULL, NULL, NULL, NULL, NULL), 0);
    assert_true(json_is_true(json_object_get(out, "ok")));
    assert_int_equal(json_integer_value(json_object_get(out, "events")), 4);
    json_decref(out);
}

static void test_idempotent_exec(void **state)
{
    (void)state;
    json_t *out = NULL;
    const char *open = "{\"account\":\"a\",\"owner\":\"alice\",\"currency\":\"EUR\"}";
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "open_account", open, "--seq", "10"), 0);
    assert_int_equal(arbiter(&out, "exec", "ledger:main", "open_account", open, "--seq", "10"), 0);
    assert_true(json_is_true(json_object_get(out, "replay")));
    json_decref(out);
    assert_int_equal(arbiter(&out, "exec", "ledger:main", "open_account",
                             "{\"account\":\"z\",\"owner\":\"z\",\"currency\":\"EUR\"}", "--seq",
                             "10"),
                     1);
    assert_string_equal(json_string_value(json_object_get(out, "code")), "IDEMPOTENCY_KEY_REUSED");
    json_decref(out);
    assert_int_equal(arbiter(&out, "state", "ledger:main", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 1);
    json_decref(out);
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "deposit", "{not json", NULL, NULL), 2);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "deposit", "[1,2]", NULL, NULL), 2);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", NULL, NULL, NULL, NULL), 2);
    assert_int_equal(arbiter(NULL, "frobnicate", NULL, NULL, NULL, NULL, NULL), 2);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "deposit", "{}", "--seq", "x"), 2);
    /* Reading a stream that does not exist is an error, not a crash. */
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "open_account",
                             "{\"account\":\"a\",\"owner\":\"a\",\"currency\":\"EUR\"}", NULL,
                             NULL),
                     0);
    assert_int_equal(arbiter(NULL, "state", "ledger:nope", NULL, NULL, NULL, NULL), 4);
}

static void test_verify_names_edited_seq(void **state)
{
    (void)state;
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "open_account",
                             "{\"account\":\"a\",\"owner\":\"alice\",\"currency\":\"EUR\"}", NULL,
                             NULL),
                     0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(arbiter(NULL, "exec", "ledger:main", "deposit",
                                 "{\"account\":\"a\",\"amount\":7}", NULL, NULL),
                         0);
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiter.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE events SET data = replace(data, ':7', ':700') "
                                  "WHERE seq = 4",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    json_t *out = NULL;
    assert_int_equal(arbiter(&out, "verify", NULL, NULL, NULL, NULL, NULL), 3);
    assert_false(json_is_true(json_object_get(out, "ok")));
    assert_string_equal(json_string_value(json_object_get(out, "stream")), "ledger:main");
    assert_int_equal(json_integer_value(json_object_get(out, "seq")), 4);
    json_decref(out);
    /* The engine refuses to open it too: nothing is served from a bad log. */
    assert_int_equal(arbiter(NULL, "state", "ledger:main", NULL, NULL, NULL, NULL), 4);
}

/* The real daemon fires a hold's expiry on time, then stops cleanly on
 * SIGTERM; the expiry is in the log for everyone to see. */
static void test_arbiterd_expires_holds_and_stops_on_sigterm(void **state)
{
    (void)state;
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "open_account",
                             "{\"account\":\"a\",\"owner\":\"alice\",\"currency\":\"EUR\"}", NULL,
                             NULL),
                     0);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "open_account",
                             "{\"account\":\"b\",\"owner\":\"bob\",\"currency\":\"EUR\"}", NULL,
                             NULL),
                     0);
    assert_int_equal(arbiter(NULL, "exec", "ledger:main", "deposit",
                             "{\"account\":\"a\",\"amount\":100}", NULL, NULL),
                     0);
    json_t *out = NULL;
    assert_int_equal(arbiter(&out, "exec", "ledger:main", "hold",
                             "{\"from\":\"a\",\"to\":\"b\",\"amount\":60,\"timeout_s\":1}", NULL,
                             NULL),
                     0);
    char pending[32];
    snprintf(pending, sizeof pending, "%s",
             json_string_value(json_object_get(json_object_get(out, "result"), "pending")));
    json_decref(out);
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiterd", bin_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(path, "arbiterd", "--data", dir, "--listen", "127.0.0.1:0", "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
    /* Poll the log (read-only, beside the running daemon) for the expiry;
     * bounded: 20 s at most. */
    bool expired = false;
    for (int i = 0; i < 200 && !expired; i++) {
        struct timespec nap = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        nanosleep(&nap, NULL);
        if (arbiter(&out, "log", "ledger:main", "--since", "4", NULL, NULL) == 0) {
            json_t *event = json_array_get(out, 0);
            expired = event != NULL &&
                      strcmp(json_string_value(json_object_get(event, "type")), "expired") == 0;
        }
        json_decref(out);
    }
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(expired);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(arbiter(&out, "state", "ledger:main", NULL, NULL, NULL, NULL), 0);
    json_t *hold =
        json_object_get(json_object_get(json_object_get(out, "state"), "pending"), pending);
    assert_string_equal(json_string_value(json_object_get(hold, "status")), "expired");
    json_decref(out);
    assert_int_equal(arbiter(NULL, "verify", NULL, NULL, NULL, NULL, NULL), 0);
}

/* Run `arbiter ARGS...` (NULL-terminated, no --data); returns the exit
 * status and the parsed stdout (NULL when it is not JSON). */
static int arbiter_remote(json_t **out, const char *const args[])
{
    const char *argv[16] = {"arbiter"};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *text = NULL;
    int status = test_run_tool(&text, argv);
    if (out != NULL) {
        json_error_t error;
        *out = json_loads(text, 0, &error);
    }
    free(text);
    return status;
}

static void remote_deposit(const test_server *server, const char *amount_json)
{
    const char *args[] = {"propose",   server->http_url, "ledger:main", "deposit",
                          amount_json, "--client-id",    "admin",       NULL};
    assert_int_equal(arbiter_remote(NULL, args), 0);
}

/* The lines tail wrote to path so far, parsed; the last seq they reach. */
static json_t *tail_lines(const char *path, uint64_t *last_seq_out)
{
    json_t *lines = json_array();
    *last_seq_out = 0;
    FILE *file = fopen(path, "r");
    char line[65536];
    while (file != NULL && fgets(line, sizeof line, file) != NULL) {
        json_error_t error;
        json_t *message = json_loads(line, 0, &error);
        if (message == NULL)
            break; /* a line still being written */
        *last_seq_out = (uint64_t)json_integer_value(json_object_get(message, "seq"));
        json_array_append_new(lines, message);
    }
    if (file != NULL)
        fclose(file);
    return lines;
}

/* Poll tail's output (bounded: 10 s) until it reaches seq. */
static void tail_wait(const char *path, uint64_t seq)
{
    uint64_t last = 0;
    for (int i = 0; i < 500 && last < seq; i++) {
        json_decref(tail_lines(path, &last));
        if (last < seq) {
            struct timespec nap = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    assert_true(last >= seq);
}

/* propose, state and tail over the wire: propose's outcome and exit codes,
 * an idempotent retry with --client-seq, state as GET /v1/streams has it,
 * and tail printing a snapshot then every event once, across a restart of
 * the server. */
static void test_remote_propose_state_tail(void **state)
{
    (void)state;
    test_server server;
    test_server_start(&server, dir, NULL);
    const char *url = server.http_url;
    json_t *out = NULL;
    const char *open_a[] = {"propose",
                            url,
                            "ledger:main",
                            "open_account",
                            "{\"account\":\"a\",\"owner\":\"alice\",\"currency\":\"EUR\"}",
                            "--client-id",
                            "admin",
                            NULL};
    assert_int_equal(arbiter_remote(&out, open_a), 0);
    assert_string_equal(json_string_value(json_object_get(out, "type")), "committed");
    assert_int_equal(json_integer_value(json_object_get(out, "seq")), 1);
    assert_int_equal(json_integer_value(json_object_get(out, "seq_last")), 1);
    assert_true(json_is_false(json_object_get(out, "replay")));
    json_decref(out);
    /* A fixed --client-seq: the second run is the stored outcome. */
    const char *open_b[] = {"propose",
                            url,
                            "ledger:main",
                            "open_account",
                            "{\"account\":\"b\",\"owner\":\"bob\",\"currency\":\"EUR\"}",
                            "--client-id",
                            "admin",
                            "--client-seq",
                            "7",
                            NULL};
    assert_int_equal(arbiter_remote(NULL, open_b), 0);
    assert_int_equal(arbiter_remote(&out, open_b), 0);
    assert_true(json_is_true(json_object_get(out, "replay")));
    assert_int_equal(json_integer_value(json_object_get(out, "client_seq")), 7);
    json_decref(out);
    remote_deposit(&server, "{\"account\":\"a\",\"amount\":100}");
    /* A rule rejection exits 1 and prints the code. */
    const char *overdraw[] = {"propose",
                              url,
                              "ledger:main",
                              "transfer",
                              "{\"from\":\"a\",\"to\":\"b\",\"amount\":101}",
                              "--client-id",
                              "alice",
                              NULL};
    assert_int_equal(arbiter_remote(&out, overdraw), 1);
    assert_string_equal(json_string_value(json_object_get(out, "type")), "rejected");
    assert_string_equal(json_string_value(json_object_get(out, "code")), "INSUFFICIENT_FUNDS");
    json_decref(out);
    const char *read[] = {"state", url, "ledger:main", NULL};
    assert_int_equal(arbiter_remote(&out, read), 0);
    assert_string_equal(json_string_value(json_object_get(out, "stream")), "ledger:main");
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 3);
    json_t *accounts = json_object_get(json_object_get(out, "state"), "accounts");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(accounts, "a"), "balance")),
                     100);
    json_decref(out);
    const char *missing[] = {"state", url, "ledger:nope", NULL};
    assert_int_equal(arbiter_remote(NULL, missing), 4);

    /* tail, in the background, into a file. */
    char path[4096];
    snprintf(path, sizeof path, "%s/tail.out", dir);
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    char tool[4096];
    snprintf(tool, sizeof tool, "%s/arbiter", bin_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
            _exit(127);
        execl(tool, "arbiter", "tail", url, "ledger:main", (char *)NULL);
        _exit(127);
    }
    tail_wait(path, 3);
    remote_deposit(&server, "{\"account\":\"a\",\"amount\":1}");
    tail_wait(path, 4);
    assert_int_equal(test_server_stop(&server, SIGTERM), 0);
    test_server_restart(&server);
    remote_deposit(&server, "{\"account\":\"a\",\"amount\":2}");
    remote_deposit(&server, "{\"account\":\"a\",\"amount\":3}");
    tail_wait(path, 6);
    assert_int_equal(kill(pid, SIGINT), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* A snapshot at 3, then seqs 4, 5, 6, each once, in order. */
    uint64_t last = 0;
    json_t *lines = tail_lines(path, &last);
    assert_int_equal(last, 6);
    json_t *first = json_array_get(lines, 0);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "snapshot");
    assert_int_equal(json_integer_value(json_object_get(first, "seq")), 3);
    uint64_t seq = 3;
    for (size_t i = 1; i < json_array_size(lines); i++) {
        json_t *line = json_array_get(lines, i);
        assert_string_equal(json_string_value(json_object_get(line, "type")), "patch");
        size_t j;
        json_t *event;
        json_array_foreach (json_object_get(line, "events"), j, event) {
            assert_int_equal(json_integer_value(json_object_get(event, "seq")), seq + 1);
            assert_string_equal(json_string_value(json_object_get(event, "type")), "deposited");
            seq++;
        }
    }
    assert_int_equal(seq, 6);
    json_decref(lines);
    assert_int_equal(test_server_stop(&server, SIGTERM), 0);
    char port_file[4200];
    snprintf(port_file, sizeof port_file, "%s.port", dir);
    unlink(port_file);
}

/* arbiter poker eval: a JSON line per hand, in the input's order; a line
 * that is not a hand gets an error line and the exit status 4. */
static void test_poker_eval(void **state)
{
    (void)state;
    char *tmp = test_mkdtemp("poker");
    char input[1100], command[4200];
    snprintf(input, sizeof input, "%s/hands", tmp);
    FILE *file = fopen(input, "w");
    assert_non_null(file);
    fputs("As Kd Qh Jc Ts 2d 3c\n5s 4h 3c 2d As\n\nKs Kh Kd 9d 9c 2s\nAs Ks\nAx Kd Qh Jc Ts\n"
          "2c 2d 2h 2s 3c 3d 3h\n",
          file);
    fclose(file);
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    snprintf(command, sizeof command, "%s/arbiter poker eval < %s", bin_dir, input);
    FILE *out = popen(command, "r");
    assert_non_null(out);
    static const char *const expected[] = {
        "{\"category\":\"straight\",\"rank\":5863,\"best\":[\"As\",\"Kd\",\"Qh\",\"Jc\",\"Ts\"]}",
        "{\"category\":\"straight\",\"rank\":5854,\"best\":[\"5s\",\"4h\",\"3c\",\"2d\",\"As\"]}",
        "{\"category\":\"full_house\",\"rank\":7280,\"best\":[\"Ks\",\"Kh\",\"Kd\",\"9d\",\"9c\"]}",
        "{\"error\":\"INVALID_ARGUMENT\",\"message\":\"a hand is 5 to 7 different cards\"}",
        "{\"error\":\"MALFORMED\",",
        "{\"category\":\"four_of_a_kind\",",
    };
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, out) != NULL) {
        assert_true(n < sizeof expected / sizeof expected[0]);
        assert_memory_equal(line, expected[n], strlen(expected[n]));
        n++;
    }
    assert_int_equal(n, sizeof expected / sizeof expected[0]);
    int status = pclose(out);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 4);
    test_rmdir(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exec_state_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_edited_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arbiterd_expires_holds_and_stops_on_sigterm, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_propose_state_tail, setup, teardown),
        cmocka_unit_test(test_poker_eval),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
