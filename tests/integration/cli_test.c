/*
 * cli_test.c - the arbiter CLI as a user runs it: exec, state, log, streams,
 * verify, exit codes, malformed input, idempotent re-execution, and verify
 * naming the seq of an event edited on disk.
 */
#include "support.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exec_state_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_edited_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arbiterd_expires_holds_and_stops_on_sigterm, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
