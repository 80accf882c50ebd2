/*
 * arbiterd - the server.
 *
 * Thin by design: parse flags, open the engine (which recovers the data
 * directory), then run the engine loop. Today the loop fires timers (hold
 * expiry) at their deadlines and waits for a signal; the network front end
 * (src/net) plugs into the same loop.
 *
 *   arbiterd [--data DIR] [--log-level debug|info|warn|error]
 *            [--snapshot-every N] [--demo]
 *
 * --demo creates ledger:demo with a few funded accounts if it does not exist.
 * SIGTERM/SIGINT: finish the batch in flight, close the store, exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/engine.h"
#include "core/log.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

typedef struct options {
    const char *data_dir;
    uint32_t snapshot_every;
    bool demo;
} options;

static int parse_options(int argc, char **argv, options *opt)
{
    opt->data_dir = "./data";
    opt->snapshot_every = 0;
    opt->demo = false;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--demo") == 0) {
            opt->demo = true;
        } else if (strcmp(argv[i], "--data") == 0 && value != NULL) {
            opt->data_dir = value;
            i++;
        } else if (strcmp(argv[i], "--log-level") == 0 && value != NULL) {
            arb_log_level level;
            if (arb_log_parse_level(value, &level) != 0)
                return -1;
            arb_log_set_level(level);
            i++;
        } else if (strcmp(argv[i], "--snapshot-every") == 0 && value != NULL) {
            char *end = NULL;
            errno = 0;
            unsigned long n = strtoul(value, &end, 10);
            if (errno != 0 || *end != '\0' || n == 0 || n > UINT32_MAX)
                return -1;
            opt->snapshot_every = (uint32_t)n;
            i++;
        } else {
            return -1;
        }
    }
    return 0;
}

/* The demo ledger: three funded accounts, created once. */
static int seed_demo(arb_engine *engine)
{
    json_t *state = NULL;
    uint64_t version = 0;
    arb_principal admin = {.id = "arbiterd", .role = ARB_ROLE_ADMIN};
    if (arb_engine_state(engine, "ledger:demo", &admin, &state, &version) == 0) {
        json_decref(state);
        return 0;
    }
    static const char *const owners[] = {"alice", "bob", "carol"};
    arb_command commands[6];
    arb_outcome outcomes[6];
    size_t n = 0;
    uint64_t seq = arb_engine_client_seq_max(engine, "arbiterd");
    for (size_t i = 0; i < 3; i++) {
        json_t *open = json_pack("{s:s, s:s, s:s}", "account", owners[i], "owner", owners[i],
                                 "currency", "EUR");
        json_t *deposit = json_pack("{s:s, s:i}", "account", owners[i], "amount", 100000);
        arb_command_init(&commands[n]);
        arb_command_set(&commands[n++], "arbiterd", ARB_ROLE_ADMIN, ++seq, "ledger:demo",
                        "open_account", open);
        arb_command_init(&commands[n]);
        arb_command_set(&commands[n++], "arbiterd", ARB_ROLE_ADMIN, ++seq, "ledger:demo", "deposit",
                        deposit);
        json_decref(open);
        json_decref(deposit);
    }
    int rc = arb_engine_execute(engine, commands, n, outcomes);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && outcomes[i].kind != ARB_OUTCOME_COMMITTED)
            rc = outcomes[i].code;
        if (rc == 0 || outcomes[i].kind != 0)
            arb_outcome_clear(&outcomes[i]);
        arb_command_clear(&commands[i]);
    }
    arb_log(rc == 0 ? ARB_LOG_INFO : ARB_LOG_ERROR, "demo ledger", "stream=ledger:demo result=%s",
            arb_err_name(rc));
    return rc;
}

/* Sleep until the next deadline, a signal, or at most a second. */
static void wait_for_work(arb_engine *engine)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t wait_ms = arb_engine_next_deadline(engine) - now_ms;
    if (wait_ms > 1000)
        wait_ms = 1000;
    if (wait_ms <= 0)
        return;
    struct timespec nap = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000};
    nanosleep(&nap, NULL);
}

int main(int argc, char **argv)
{
    options opt;
    if (parse_options(argc, argv, &opt) != 0) {
        fputs("usage: arbiterd [--data DIR] [--log-level debug|info|warn|error]\n"
              "                [--snapshot-every N] [--demo]\n",
              stderr);
        return 2;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    arb_engine_config config = {.data_dir = opt.data_dir, .snapshot_every = opt.snapshot_every};
    arb_engine *engine = NULL;
    int rc = arb_engine_open(&config, &engine);
    if (rc != 0) {
        arb_log(ARB_LOG_ERROR, "cannot start", "data=%s error=%s reason=\"%s\"", opt.data_dir,
                arb_err_name(rc), arb_err_message(rc));
        return 1;
    }
    if (opt.demo && seed_demo(engine) != 0) {
        arb_engine_close(engine);
        return 1;
    }
    arb_log(ARB_LOG_INFO, "arbiterd running", "data=%s pid=%ld", opt.data_dir, (long)getpid());
    while (!stop_requested) {
        size_t fired = 0;
        rc = arb_engine_tick(engine, &fired);
        if (rc != 0)
            break;
        if (fired > 0)
            arb_log(ARB_LOG_DEBUG, "timers fired", "count=%zu", fired);
        wait_for_work(engine);
    }
    arb_engine_close(engine);
    arb_log(ARB_LOG_INFO, "arbiterd stopped", "reason=%s", rc == 0 ? "signal" : arb_err_name(rc));
    return rc == 0 ? 0 : 1;
}
