/*
 * arbiterd - the server.
 *
 * Thin by design: parse flags, open the engine (which recovers the data
 * directory), then hand it to the network front end (src/net/server.h),
 * which runs the engine thread (proposals, timers) and serves WebSocket and
 * HTTP until a signal.
 *
 *   arbiterd [--config FILE] [--listen HOST:PORT] [--data DIR] [--web DIR]
 *            [--admin ID[,ID...]] [--idle-timeout S] [--outbound-max BYTES]
 *            [--port-file FILE] [--snapshot-every N]
 *            [--log-level debug|info|warn|error] [--demo]
 *
 * --listen defaults to 127.0.0.1:8080 (port 0: any free port, written to
 * --port-file). --web serves a directory at "/" (default ./web when it
 * exists). --admin lists the client ids that get the admin role.
 * --outbound-max bounds what may wait for one slow reader (default and
 * maximum ARB_NET_OUTBOUND_BYTES_MAX). --config reads the same settings from
 * a JSON object named like the flags; flags after it override it.
 * --demo creates ledger:demo with a few funded accounts if it does not exist.
 * SIGTERM/SIGINT: stop accepting, commit and answer what is in flight, close
 * every connection (1001), close the store, exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "arbiter/engine.h"
#include "core/log.h"
#include "net/server.h"

#define ADMINS_MAX 32

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
    char host[256];
    int port;
    const char *web_root;
    const char *port_file;
    int idle_timeout_s;
    char admin_list[1024];
    const char *admins[ADMINS_MAX];
    size_t admin_count;
    size_t outbound_bytes_max;
    json_t *config; /* the --config document (its strings are borrowed) */
} options;

/* Split "a,b,c" (copied into opt->admin_list) into opt->admins. */
static int parse_admins(options *opt, const char *value)
{
    if (strlen(value) >= sizeof opt->admin_list)
        return -1;
    memcpy(opt->admin_list, value, strlen(value) + 1);
    char *cursor = opt->admin_list;
    while (*cursor != '\0') {
        if (opt->admin_count == ADMINS_MAX)
            return -1;
        opt->admins[opt->admin_count++] = cursor;
        char *comma = strchr(cursor, ',');
        if (comma == NULL)
            break;
        *comma = '\0';
        cursor = comma + 1;
    }
    return 0;
}

static int parse_count(const char *value, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

/* One setting, by its flag name without "--" (the config file's key too).
 * value is NULL for the switch "demo". Strings are borrowed: they live in
 * argv or in the loaded config document. */
static int apply(options *opt, const char *name, const char *value)
{
    long n = 0;
    if (strcmp(name, "demo") == 0)
        return value == NULL || strcmp(value, "true") == 0 ? (opt->demo = true, 0)
               : strcmp(value, "false") == 0               ? (opt->demo = false, 0)
                                                           : -1;
    if (value == NULL)
        return -1;
    if (strcmp(name, "listen") == 0)
        return arb_server_parse_listen(value, opt->host, sizeof opt->host, &opt->port) == 0 ? 0
                                                                                            : -1;
    if (strcmp(name, "web") == 0)
        return opt->web_root = value, 0;
    if (strcmp(name, "port-file") == 0)
        return opt->port_file = value, 0;
    if (strcmp(name, "data") == 0)
        return opt->data_dir = value, 0;
    if (strcmp(name, "admin") == 0)
        return parse_admins(opt, value);
    if (strcmp(name, "idle-timeout") == 0 && parse_count(value, 1, 86400, &n) == 0)
        return opt->idle_timeout_s = (int)n, 0;
    if (strcmp(name, "outbound-max") == 0 &&
        parse_count(value, 4096, ARB_NET_OUTBOUND_BYTES_MAX, &n) == 0)
        return opt->outbound_bytes_max = (size_t)n, 0;
    if (strcmp(name, "snapshot-every") == 0 && parse_count(value, 1, UINT32_MAX, &n) == 0)
        return opt->snapshot_every = (uint32_t)n, 0;
    if (strcmp(name, "log-level") == 0) {
        arb_log_level level;
        if (arb_log_parse_level(value, &level) != 0)
            return -1;
        arb_log_set_level(level);
        return 0;
    }
    return -1;
}

/* The config file: one JSON object of settings named like the flags
 * ({"listen": "0.0.0.0:8080", "admin": "ops", "demo": true}). Flags given
 * after --config override it. */
static int load_config(options *opt, const char *path)
{
    json_error_t error;
    opt->config = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (opt->config == NULL || !json_is_object(opt->config)) {
        fprintf(stderr, "arbiterd: %s: %s (line %d)\n", path,
                opt->config == NULL ? error.text : "not a JSON object", error.line);
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach (opt->config, key, value) {
        char number[32];
        const char *text = json_string_value(value);
        if (json_is_integer(value)) {
            snprintf(number, sizeof number, "%lld", (long long)json_integer_value(value));
            text = number;
        } else if (json_is_boolean(value)) {
            text = json_is_true(value) ? "true" : "false";
        }
        if (strcmp(key, "config") == 0 || text == NULL || apply(opt, key, text) != 0) {
            fprintf(stderr, "arbiterd: %s: bad setting \"%s\"\n", path, key);
            return -1;
        }
    }
    return 0;
}

static int parse_options(int argc, char **argv, options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->data_dir = "./data";
    snprintf(opt->host, sizeof opt->host, "127.0.0.1");
    opt->port = 8080;
    struct stat st;
    if (stat("web/index.html", &st) == 0)
        opt->web_root = "web";
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            return -1;
        const char *name = argv[i] + 2;
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(name, "config") == 0)
            rc = opt->config == NULL && value != NULL ? load_config(opt, value) : -1;
        else
            rc = apply(opt, name, strcmp(name, "demo") == 0 ? NULL : value);
        if (rc != 0)
            return -1;
        if (strcmp(name, "demo") != 0)
            i++;
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

int main(int argc, char **argv)
{
    options opt;
    if (parse_options(argc, argv, &opt) != 0) {
        fputs("usage: arbiterd [--config FILE] [--listen HOST:PORT] [--data DIR] [--web DIR]\n"
              "                [--admin ID[,ID...]] [--idle-timeout S] [--outbound-max BYTES]\n"
              "                [--port-file FILE] [--snapshot-every N]\n"
              "                [--log-level debug|info|warn|error] [--demo]\n",
              stderr);
        json_decref(opt.config);
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
        json_decref(opt.config);
        return 1;
    }
    if (opt.demo && seed_demo(engine) != 0) {
        arb_engine_close(engine);
        json_decref(opt.config);
        return 1;
    }
    arb_log(ARB_LOG_INFO, "arbiterd running", "data=%s pid=%ld", opt.data_dir, (long)getpid());
    if (opt.demo)
        arb_log(ARB_LOG_INFO, "open",
                "page=http://%s:%d/ state=http://%s:%d/v1/streams/ledger:demo "
                "websocket=ws://%s:%d/",
                opt.host, opt.port, opt.host, opt.port, opt.host, opt.port);
    arb_server_config server = {.host = opt.host,
                                .port = opt.port,
                                .web_root = opt.web_root,
                                .idle_timeout_s = opt.idle_timeout_s,
                                .outbound_bytes_max = opt.outbound_bytes_max,
                                .admins = opt.admins,
                                .admin_count = opt.admin_count,
                                .port_file = opt.port_file,
                                .stop = &stop_requested};
    rc = arb_server_run(engine, &server);
    if (rc != 0)
        arb_log(ARB_LOG_ERROR, "cannot serve", "listen=%s:%d error=%s", opt.host, opt.port,
                arb_err_name(rc));
    arb_engine_close(engine);
    json_decref(opt.config);
    arb_log(ARB_LOG_INFO, "arbiterd stopped", "reason=%s", rc == 0 ? "signal" : arb_err_name(rc));
    return rc == 0 ? 0 : 1;
}
