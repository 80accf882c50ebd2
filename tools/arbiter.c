/*
 * arbiter - the command-line tool.
 *
 * Local mode works on a data directory through the real engine and store:
 *   arbiter exec   --data DIR [--client ID] [--seq N] [--role R] [--expect V]
 *                  STREAM ACTION JSON       propose; prints the outcome
 *   arbiter state  --data DIR STREAM        the stream's state and version
 *   arbiter log    --data DIR STREAM [--since N] [--limit N]
 *   arbiter verify --data DIR [--check-every N]
 *   arbiter streams --data DIR
 *
 * Output is one JSON document on stdout; errors are a sentence on stderr.
 * Exit status: 0 done (a rejected proposal included: it was decided), 1 the
 * proposal was rejected (exec only), 2 usage, 3 the data failed verification,
 * 4 any other error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/engine.h"
#include "core/canon.h"
#include "core/log.h"

enum { EXIT_REJECTED = 1, EXIT_USAGE = 2, EXIT_CORRUPT = 3, EXIT_ERROR = 4 };

typedef struct options {
    const char *data_dir;
    const char *client_id;
    const char *role;
    uint64_t client_seq;
    uint64_t since;
    uint64_t limit;
    uint64_t check_every;
    bool has_expect;
    uint64_t expect;
    const char *positional[4];
    int positional_count;
} options;

static void usage(void)
{
    fputs("usage: arbiter exec    --data DIR [--client ID] [--seq N] [--role admin|user]\n"
          "                       [--expect VERSION] STREAM ACTION JSON\n"
          "       arbiter state   --data DIR STREAM\n"
          "       arbiter log     --data DIR STREAM [--since N] [--limit N]\n"
          "       arbiter streams --data DIR\n"
          "       arbiter verify  --data DIR [--check-every N]\n",
          stderr);
}

static int parse_u64(const char *text, uint64_t *value_out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -1;
    *value_out = value;
    return 0;
}

static int parse_options(int argc, char **argv, options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->client_id = "cli";
    opt->role = "admin";
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strncmp(arg, "--", 2) != 0) {
            if (opt->positional_count == 4)
                return -1;
            opt->positional[opt->positional_count++] = arg;
            continue;
        }
        if (value == NULL)
            return -1;
        i++;
        if (strcmp(arg, "--data") == 0)
            opt->data_dir = value;
        else if (strcmp(arg, "--client") == 0)
            opt->client_id = value;
        else if (strcmp(arg, "--role") == 0)
            opt->role = value;
        else if (strcmp(arg, "--seq") == 0)
            rc = parse_u64(value, &opt->client_seq);
        else if (strcmp(arg, "--since") == 0)
            rc = parse_u64(value, &opt->since);
        else if (strcmp(arg, "--limit") == 0)
            rc = parse_u64(value, &opt->limit);
        else if (strcmp(arg, "--check-every") == 0)
            rc = parse_u64(value, &opt->check_every);
        else if (strcmp(arg, "--expect") == 0) {
            rc = parse_u64(value, &opt->expect);
            opt->has_expect = true;
        } else
            return -1;
        if (rc != 0)
            return -1;
    }
    return opt->data_dir != NULL ? 0 : -1;
}

static void print_json(json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text != NULL)
        puts(text);
    free(text);
}

static int open_engine(const options *opt, bool read_only, arb_engine **engine_out)
{
    arb_engine_config config = {.data_dir = opt->data_dir, .read_only = read_only};
    int rc = arb_engine_open(&config, engine_out);
    if (rc != 0)
        fprintf(stderr, "arbiter: cannot open %s: %s (%s)\n", opt->data_dir, arb_err_message(rc),
                arb_err_name(rc));
    return rc;
}

static int build_command(const options *opt, arb_engine *engine, arb_command *command)
{
    char why[200];
    json_t *args = NULL;
    const char *text = opt->positional[2];
    int rc = arb_json_parse(text, strlen(text), ARB_ARGS_BYTES_MAX, &args, why, sizeof why);
    if (rc != 0 || !json_is_object(args)) {
        fprintf(stderr, "arbiter: JSON args: %s\n", rc != 0 ? why : "must be an object");
        json_decref(args);
        return ARB_EUSAGE;
    }
    arb_role role = strcmp(opt->role, "user") == 0 ? ARB_ROLE_USER : ARB_ROLE_ADMIN;
    uint64_t seq = opt->client_seq;
    if (seq == 0)
        seq = arb_engine_client_seq_max(engine, opt->client_id) + 1;
    arb_command_init(command);
    rc = arb_command_set(command, opt->client_id, role, seq, opt->positional[0], opt->positional[1],
                         args);
    json_decref(args);
    command->has_expect = opt->has_expect;
    command->expect = opt->expect;
    if (rc != 0)
        fprintf(stderr, "arbiter: %s\n", arb_err_message(rc));
    return rc;
}

static int cmd_exec(const options *opt)
{
    if (opt->positional_count != 3 ||
        (strcmp(opt->role, "admin") != 0 && strcmp(opt->role, "user") != 0))
        return EXIT_USAGE;
    arb_engine *engine = NULL;
    if (open_engine(opt, false, &engine) != 0)
        return EXIT_ERROR;
    size_t fired = 0;
    int rc = arb_engine_tick(engine, &fired); /* expiries due while nobody ran */
    arb_command command;
    if (rc == 0)
        rc = build_command(opt, engine, &command);
    int status = EXIT_ERROR;
    if (rc == 0) {
        arb_outcome outcome;
        rc = arb_engine_execute(engine, &command, 1, &outcome);
        if (rc == 0) {
            json_t *json = arb_outcome_to_json(&outcome);
            print_json(json);
            json_decref(json);
            status = outcome.kind == ARB_OUTCOME_COMMITTED ? 0 : EXIT_REJECTED;
            arb_outcome_clear(&outcome);
        }
        arb_command_clear(&command);
    } else if (rc == ARB_EUSAGE) {
        status = EXIT_USAGE;
    }
    arb_engine_close(engine);
    return status;
}

static int cmd_read(const options *opt, const char *what)
{
    bool is_streams = strcmp(what, "streams") == 0;
    if (opt->positional_count != (is_streams ? 0 : 1))
        return EXIT_USAGE;
    arb_engine *engine = NULL;
    if (open_engine(opt, true, &engine) != 0)
        return EXIT_ERROR;
    json_t *out = NULL;
    int rc;
    if (is_streams) {
        rc = arb_engine_streams(engine, &out);
    } else if (strcmp(what, "state") == 0) {
        arb_principal admin = {.id = "cli", .role = ARB_ROLE_ADMIN};
        json_t *state = NULL;
        uint64_t version = 0;
        rc = arb_engine_state(engine, opt->positional[0], &admin, &state, &version);
        if (rc == 0)
            out = json_pack("{s:s, s:I, s:o}", "stream", opt->positional[0], "version",
                            (json_int_t)version, "state", state);
    } else {
        rc = arb_engine_events(engine, opt->positional[0], opt->since, opt->limit, &out);
    }
    if (rc == 0)
        print_json(out);
    else
        fprintf(stderr, "arbiter: %s: %s (%s)\n", what, arb_err_message(rc), arb_err_name(rc));
    json_decref(out);
    arb_engine_close(engine);
    return rc == 0 ? 0 : EXIT_ERROR;
}

static int cmd_verify(const options *opt)
{
    if (opt->positional_count != 0)
        return EXIT_USAGE;
    arb_verify_report report;
    int rc = arb_verify(opt->data_dir, opt->check_every, &report);
    json_t *out =
        json_pack("{s:b, s:I, s:I, s:I, s:I}", "ok", rc == 0, "streams", (json_int_t)report.streams,
                  "events", (json_int_t)report.events, "snapshots_compared",
                  (json_int_t)report.snapshots_compared, "outcomes", (json_int_t)report.outcomes);
    if (rc != 0) {
        json_object_set_new(out, "stream", json_string(report.stream));
        json_object_set_new(out, "seq", json_integer((json_int_t)report.seq));
        json_object_set_new(out, "why", json_string(report.why));
        fprintf(stderr, "arbiter: verify failed: stream %s seq %llu: %s\n", report.stream,
                (unsigned long long)report.seq, report.why);
    }
    print_json(out);
    json_decref(out);
    if (rc == 0)
        return 0;
    return rc == ARB_ECORRUPT ? EXIT_CORRUPT : EXIT_ERROR;
}

int main(int argc, char **argv)
{
    arb_log_set_level(ARB_LOG_WARN);
    options opt;
    if (argc < 2 || parse_options(argc, argv, &opt) != 0) {
        usage();
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    int status = EXIT_USAGE;
    if (strcmp(command, "exec") == 0)
        status = cmd_exec(&opt);
    else if (strcmp(command, "state") == 0 || strcmp(command, "log") == 0 ||
             strcmp(command, "streams") == 0)
        status = cmd_read(&opt, command);
    else if (strcmp(command, "verify") == 0)
        status = cmd_verify(&opt);
    if (status == EXIT_USAGE)
        usage();
    return status;
}
