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
 * Remote mode talks to a running arbiterd at URL (http://HOST:PORT, with an
 * optional base path; the WebSocket is the same URL with ws://), through the
 * client SDK (include/arbiter/client.h):
 *   arbiter propose URL STREAM ACTION JSON [--client-id ID] [--client-seq N]
 *                  [--expect V]              hello, propose; prints the
 *                                            committed or rejected message
 *   arbiter state  URL STREAM                subscribe; prints the first
 *                                            confirmed state as GET
 *                                            URL/v1/streams/STREAM has it
 *   arbiter tail   URL STREAM [--since N]    subscribe; one JSON line per
 *                                            snapshot or patch, until SIGINT;
 *                                            reconnects when the connection
 *                                            drops (a server restart) and
 *                                            goes on after the last seq
 * (--timeout-ms N bounds each wait, 10000 by default: the first connection,
 * then propose's outcome or state's state.) A first connection that fails
 * ends the command; after that the SDK reconnects by itself, and propose
 * sends its proposal again (same key: it is decided once).
 *
 * What the SDK cannot do stays on the plain WebSocket client (net/client.h):
 * propose with --client-seq or --expect (the SDK numbers its proposals
 * itself and takes no expected version), and tail --since N (the SDK
 * subscribes from the state it holds); these neither reconnect nor resend,
 * and tail --since ends when the server closes. Through the SDK, propose's
 * committed message has no `events`, its rejected message no `version` and
 * `snapshot`, and tail's events have no `hash` (the SDK hands none of them
 * out).
 *
 * Idempotency in remote mode: (client_id, client_seq) is the proposal's key.
 * The client id defaults to "cli-<pid>" and, without --client-seq, client_seq
 * is the current time in microseconds (where the SDK starts a new outbox),
 * so a new run never reuses the key of an earlier run with the same client
 * id (short of two runs in one microsecond). To retry one proposal safely,
 * give both --client-id and --client-seq: a repeated run gets the stored
 * outcome ("replay": true) and has no second effect. A transient rejection
 * (OVERLOADED, SHUTTING_DOWN) is not an outcome: propose sends again until
 * the verdict or --timeout-ms, and on a timeout names the client_seq to
 * retry with.
 *
 * Output is one JSON document on stdout (tail: one per line); errors are a
 * sentence on stderr. Exit status: 0 done, 1 the proposal was rejected (exec
 * and propose), 2 usage, 3 the data failed verification, 4 any other error
 * (a server's error reply, a refused connection, a timeout, tail --since cut
 * short).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/client.h"
#include "arbiter/engine.h"
#include "arbiter/wire.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"
#include "core/log.h"
#include "net/client.h"
#include "rules/poker/eval.h"
#include "rules/poker/poker_history.h"

enum { EXIT_REJECTED = 1, EXIT_USAGE = 2, EXIT_CORRUPT = 3, EXIT_ERROR = 4 };

/* How long a remote command waits for each step (connect, an answer). */
#define REMOTE_TIMEOUT_MS_DEFAULT 10000
/* How often tail looks at its SIGINT flag while it waits for messages. */
#define TAIL_POLL_MS 200

typedef struct options {
    const char *data_dir;
    const char *client_id; /* NULL: "cli" locally, "cli-<pid>" remotely */
    const char *as;        /* poker history: the player whose view; NULL: everything */
    const char *role;
    uint64_t client_seq; /* 0: the next one locally, the time in ms remotely */
    bool has_since;
    uint64_t since;
    uint64_t timeout_ms;
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
          "       arbiter verify  --data DIR [--check-every N]\n"
          "       arbiter poker eval   (lines of 5-7 cards on stdin, e.g. As Kd Qh Jc Ts 2d 3c)\n"
          "       arbiter poker history --data DIR TABLE_STREAM HAND [--as PLAYER]\n"
          "remote: URL is http://HOST:PORT of a running arbiterd\n"
          "       arbiter propose URL STREAM ACTION JSON [--client-id ID] [--client-seq N]\n"
          "                       [--expect VERSION] [--timeout-ms N]\n"
          "       arbiter state   URL STREAM [--timeout-ms N]\n"
          "       arbiter tail    URL STREAM [--since N] [--timeout-ms N]\n"
          "       arbiter poker history URL TABLE_STREAM HAND [--as PLAYER] [--timeout-ms N]\n"
          "without --client-seq, propose uses the time in us (a new key every run);\n"
          "repeat --client-id and --client-seq to retry one proposal idempotently;\n"
          "propose (without --client-seq/--expect) and tail (without --since) reconnect\n"
          "when the connection drops: tail goes on after the last seq it printed\n",
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
    opt->role = "admin";
    opt->timeout_ms = REMOTE_TIMEOUT_MS_DEFAULT;
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
        else if (strcmp(arg, "--client") == 0 || strcmp(arg, "--client-id") == 0)
            opt->client_id = value;
        else if (strcmp(arg, "--role") == 0)
            opt->role = value;
        else if (strcmp(arg, "--as") == 0)
            opt->as = value;
        else if (strcmp(arg, "--seq") == 0 || strcmp(arg, "--client-seq") == 0)
            rc = parse_u64(value, &opt->client_seq) != 0 || opt->client_seq == 0 ? -1 : 0;
        else if (strcmp(arg, "--since") == 0) {
            rc = parse_u64(value, &opt->since);
            opt->has_since = true;
        } else if (strcmp(arg, "--limit") == 0)
            rc = parse_u64(value, &opt->limit);
        else if (strcmp(arg, "--check-every") == 0)
            rc = parse_u64(value, &opt->check_every);
        else if (strcmp(arg, "--timeout-ms") == 0)
            rc = parse_u64(value, &opt->timeout_ms) != 0 || opt->timeout_ms == 0 ||
                         opt->timeout_ms > 24 * 3600 * 1000
                     ? -1
                     : 0;
        else if (strcmp(arg, "--expect") == 0) {
            rc = parse_u64(value, &opt->expect);
            opt->has_expect = true;
        } else
            return -1;
        if (rc != 0)
            return -1;
    }
    return 0;
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
    const char *client_id = opt->client_id != NULL ? opt->client_id : "cli";
    uint64_t seq = opt->client_seq;
    if (seq == 0)
        seq = arb_engine_client_seq_max(engine, client_id) + 1;
    arb_command_init(command);
    rc = arb_command_set(command, client_id, role, seq, opt->positional[0], opt->positional[1],
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
    if (opt->data_dir == NULL || opt->positional_count != 3 ||
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
    if (opt->data_dir == NULL || opt->positional_count != (is_streams ? 0 : 1))
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
    if (opt->data_dir == NULL || opt->positional_count != 0)
        return EXIT_USAGE;
    arb_verify_report report;
    int rc = arb_verify(opt->data_dir, opt->check_every, &report);
    json_t *out =
        json_pack("{s:b, s:I, s:I, s:I, s:I}", "ok", rc == 0, "streams", (json_int_t)report.streams,
                  "events", (json_int_t)report.events, "snapshots_compared",
                  (json_int_t)report.snapshots_compared, "outcomes", (json_int_t)report.outcomes);
    for (size_t i = 0; i < sizeof report.proofs / sizeof report.proofs[0]; i++)
        if (report.proofs[i].name != NULL)
            json_object_set_new(out, report.proofs[i].name,
                                json_integer((json_int_t)report.proofs[i].count));
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

/* Remote mode. */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signal_number)
{
    (void)signal_number;
    interrupted = 1;
}

/* SIGINT and SIGTERM end a wait at once (no SA_RESTART) and set
 * `interrupted`: tail stops cleanly at the next look. */
static void catch_interrupts(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Where a remote command goes: the WebSocket URL, from the http:// URL the
 * user gave. */
typedef struct remote {
    char http_base[ARB_URL_BYTES_MAX + 1]; /* http://HOST:PORT[/BASE], no trailing '/' */
    char ws_url[ARB_URL_BYTES_MAX + 1];    /* ws://HOST:PORT[/BASE]/ */
} remote;

static int remote_parse(const char *text, remote *out)
{
    arb_url url;
    if (arb_url_parse(text, &url) != 0 || strcmp(url.scheme, "http") != 0 ||
        strchr(url.target, '?') != NULL) {
        fprintf(stderr, "arbiter: %s: expected http://HOST:PORT of an arbiterd\n", text);
        return EXIT_USAGE;
    }
    size_t base_len = strlen(url.target);
    while (base_len > 0 && url.target[base_len - 1] == '/')
        base_len--;
    bool ipv6 = strchr(url.host, ':') != NULL;
    int n = snprintf(out->http_base, sizeof out->http_base, "http://%s%s%s:%d%.*s", ipv6 ? "[" : "",
                     url.host, ipv6 ? "]" : "", url.port, (int)base_len, url.target);
    int m = snprintf(out->ws_url, sizeof out->ws_url, "ws://%s%s%s:%d%.*s/", ipv6 ? "[" : "",
                     url.host, ipv6 ? "]" : "", url.port, (int)base_len, url.target);
    if (n < 0 || m < 0 || (size_t)n >= sizeof out->http_base || (size_t)m >= sizeof out->ws_url) {
        fprintf(stderr, "arbiter: %s: URL too long\n", text);
        return EXIT_USAGE;
    }
    return 0;
}

static int remote_error(const char *what, int code)
{
    fprintf(stderr, "arbiter: %s: %s (%s)\n", what, arb_err_message(code), arb_err_name(code));
    return EXIT_ERROR;
}

static bool valid_client_id(const char *id)
{
    size_t len = strnlen(id, ARB_CLIENT_ID_BYTES_MAX + 1);
    if (len == 0 || len > ARB_CLIENT_ID_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || strchr("_.:@-", id[i]) != NULL))
            return false;
    return true;
}

/* The JSON args of a proposal, from the command line: a new reference. */
static int parse_args(const char *text, json_t **args_out)
{
    char why[200];
    int rc = arb_json_parse(text, strlen(text), ARB_ARGS_BYTES_MAX, args_out, why, sizeof why);
    if (rc != 0 || !json_is_object(*args_out)) {
        fprintf(stderr, "arbiter: JSON args: %s\n", rc != 0 ? why : "must be an object");
        json_decref(*args_out);
        *args_out = NULL;
        return EXIT_USAGE;
    }
    return 0;
}

/*
 * Through the client SDK (include/arbiter/client.h): propose (unless the
 * user fixes --client-seq or --expect, which the SDK does not take), state,
 * and tail (unless --since, which the SDK does not take). One client per
 * run, its outbox in memory, serviced on this thread in short slices so that
 * a deadline or SIGINT is seen soon. The SDK reconnects by itself; the CLI
 * gives up only when the very first connection fails (a wrong URL or a
 * server that is not running should not hang) or a deadline passes.
 */

/* How long one arb_client_service call runs (it runs the whole slice): how
 * late the loop sees a verdict, a deadline or SIGINT. */
#define SDK_SLICE_MS 20
/* The SDK's cap on the delay before a reconnection: one CLI client cannot
 * stampede a restarted server, so it may come back quickly. */
#define SDK_BACKOFF_MAX_MS 2000

/* One remote command's run, written by the SDK's callbacks. */
typedef struct session {
    const char *what;   /* "propose", "state", "tail": the prefix of messages */
    const char *ws_url; /* for messages */
    const char *stream;
    arb_client *client;
    int status;          /* -1 while running; then the exit status a callback decided */
    bool was_online;     /* welcomed at least once */
    bool online;         /* welcomed on the current connection */
    uint64_t client_seq; /* propose: the proposal whose verdict ends the run (0: none yet) */
    /* tail: view_changed said confirmed moved, and no events callback has
     * accounted for it yet (a snapshot, then); shown: the state it left was
     * printed already. printed_seq: the last seq on stdout. */
    bool unexplained;
    bool shown;
    bool printed_any;
    uint64_t printed_seq;
} session;

static void on_connection(void *user, arb_client_state state, int code)
{
    session *s = user;
    if (s->status >= 0)
        return;
    bool lost = state == ARB_CLIENT_OFFLINE && s->online;
    s->online = state == ARB_CLIENT_ONLINE;
    if (state == ARB_CLIENT_ONLINE) {
        if (s->was_online)
            fprintf(stderr, "arbiter: %s: connected again\n", s->what);
        s->was_online = true;
    } else if (state == ARB_CLIENT_OFFLINE && !s->was_online) {
        fprintf(stderr, "arbiter: cannot connect to %s: %s (%s)\n", s->ws_url,
                arb_err_message(code), arb_err_name(code));
        s->status = EXIT_ERROR;
    } else if (lost) { /* once per loss, not per failed attempt */
        fprintf(stderr, "arbiter: %s: connection lost: %s (%s); reconnecting\n", s->what,
                arb_err_message(code), arb_err_name(code));
    }
}

/* An `error` from the server (or a state the SDK could not load): fatal, as
 * it was before the SDK, but for the transient codes the SDK rides out by
 * reconnecting. */
static void on_error(void *user, int code, const char *message)
{
    session *s = user;
    if (s->status >= 0 || code == ARB_EOVERLOADED || code == ARB_ESHUTTING_DOWN)
        return;
    fprintf(stderr, "arbiter: %s: %s (%s)\n", s->what,
            message != NULL && message[0] != '\0' ? message : "no message", arb_err_name(code));
    s->status = EXIT_ERROR;
}

/* The verdict as the committed or rejected message it came in, less what
 * the SDK's outcome does not carry: a committed's `events`, a rejected's
 * `version` and `snapshot`. */
static json_t *outcome_message(const arb_client_outcome *outcome)
{
    if (outcome->committed)
        return json_pack("{s:s, s:I, s:s, s:I, s:I, s:O, s:b}", "type", "committed", "client_seq",
                         (json_int_t)outcome->client_seq, "stream", outcome->stream, "seq",
                         (json_int_t)outcome->seq_first, "seq_last", (json_int_t)outcome->seq_last,
                         "result",
                         outcome->result != NULL ? (json_t *)outcome->result : json_null(),
                         "replay", outcome->replay);
    return json_pack("{s:s, s:I, s:s, s:s, s:s, s:O, s:b}", "type", "rejected", "client_seq",
                     (json_int_t)outcome->client_seq, "stream", outcome->stream, "code",
                     arb_err_name(outcome->code), "message", outcome->message, "details",
                     outcome->details != NULL ? (json_t *)outcome->details : json_null(), "replay",
                     outcome->replay);
}

static void on_outcome(void *user, const arb_client_outcome *outcome)
{
    session *s = user;
    ARB_ASSERT(outcome != NULL && outcome->client_seq != 0);
    ARB_ASSERT(s->client_seq != 0); /* propose is the only command that proposes */
    if (s->status >= 0 || outcome->client_seq != s->client_seq)
        return;
    json_t *message = outcome_message(outcome);
    if (message == NULL) {
        s->status = remote_error("propose", ARB_ENOMEM);
        return;
    }
    print_json(message);
    json_decref(message);
    s->status = outcome->committed ? 0 : EXIT_REJECTED;
}

/* One snapshot or patch message, as one compact JSON line. */
static void print_line(json_t *message)
{
    char *text = json_dumps(message, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL) {
        puts(text);
        fflush(stdout);
    }
    free(text);
}

/* tail: the confirmed state now, as a snapshot line (unless it is the
 * version the last line ended at). */
static void tail_snapshot(session *s)
{
    uint64_t version = 0;
    ARB_ASSERT(s->client != NULL && s->stream != NULL);
    json_t *state = arb_client_confirmed(s->client, s->stream, &version);
    s->shown = true;
    if (state == NULL || (s->printed_any && version == s->printed_seq)) {
        json_decref(state);
        return;
    }
    json_t *line = json_pack("{s:s, s:s, s:I, s:O}", "type", "snapshot", "stream", s->stream, "seq",
                             (json_int_t)version, "state", state);
    json_decref(state);
    if (line != NULL)
        print_line(line);
    json_decref(line);
    s->printed_any = true;
    s->printed_seq = version;
}

/*
 * tail sees the SDK's confirmed state move two ways: a patch calls
 * view_changed and then events (in one call into the SDK), a snapshot calls
 * view_changed alone. So a view_changed that no events call follows was a
 * snapshot: it is printed when the service call returns, or, when another
 * change comes first, at that change (the state then already holds it, and
 * the events it brought are not printed twice).
 */
static void on_view_changed(void *user, const char *stream)
{
    session *s = user;
    (void)stream;
    if (s->unexplained && !s->shown)
        tail_snapshot(s);
    else
        s->shown = false;
    s->unexplained = true;
}

/* tail: the events not yet printed, as a patch line (without `hash`: the
 * SDK does not keep it). */
static void on_events(void *user, const char *stream, const arb_event *events, size_t count)
{
    session *s = user;
    ARB_ASSERT(count > 0 && strcmp(stream, s->stream) == 0);
    s->unexplained = false;
    s->shown = false;
    json_t *array = json_array();
    uint64_t last = 0;
    for (size_t i = 0; array != NULL && i < count; i++) {
        ARB_ASSERT(i == 0 || events[i].seq > events[i - 1].seq);
        if (s->printed_any && events[i].seq <= s->printed_seq)
            continue;
        json_t *event = arb_event_to_json(&events[i]);
        if (event != NULL)
            json_object_del(event, "hash");
        if (event == NULL || json_array_append_new(array, event) != 0)
            break;
        last = events[i].seq;
    }
    if (json_array_size(array) > 0) {
        json_t *line = json_pack("{s:s, s:s, s:I, s:O}", "type", "patch", "stream", stream, "seq",
                                 (json_int_t)last, "events", array);
        if (line != NULL)
            print_line(line);
        json_decref(line);
        s->printed_any = true;
        s->printed_seq = last;
    }
    json_decref(array);
}

/* Open the session's client for client_id (in-memory outbox). */
static int session_open(session *s, const char *what, const remote *where, const char *client_id,
                        const char *stream, const options *opt)
{
    memset(s, 0, sizeof *s);
    s->what = what;
    s->ws_url = where->ws_url;
    s->stream = stream;
    s->status = -1;
    /* The SDK's own warnings would repeat what the callbacks print. */
    arb_log_set_level(ARB_LOG_ERROR);
    bool tail = strcmp(what, "tail") == 0;
    arb_client_config config = {
        .url = where->ws_url,
        .client_id = client_id,
        .role = ARB_ROLE_USER,
        .outbox_path = NULL,
        .backoff_max_ms = SDK_BACKOFF_MAX_MS,
        .connect_timeout_ms = (int)opt->timeout_ms,
        .callbacks =
            {
                .outcome = on_outcome,
                .connection = on_connection,
                .error = on_error,
                .view_changed = tail ? on_view_changed : NULL,
                .events = tail ? on_events : NULL,
                .user = s,
            },
    };
    int rc = arb_client_open(&config, &s->client);
    return rc == 0 ? 0 : remote_error(what, rc);
}

/* No welcome within the bound (the SDK would go on trying). */
static int connect_timed_out(const session *s)
{
    fprintf(stderr, "arbiter: cannot connect to %s: %s (%s)\n", s->ws_url,
            arb_err_message(ARB_ETIMEOUT), arb_err_name(ARB_ETIMEOUT));
    return EXIT_ERROR;
}

/* Service until a callback decides, or timeout_ms from now (from the first
 * welcome, when that comes later: each wait has its own bound). Returns the
 * status, or -1 at the deadline. */
static int session_wait(session *s, uint64_t timeout_ms, bool (*done)(session *s))
{
    ARB_ASSERT(s->client != NULL && timeout_ms > 0);
    int64_t deadline = monotonic_ms() + (int64_t)timeout_ms;
    bool online_seen = false;
    while (s->status < 0 && (done == NULL || !done(s))) {
        if (!online_seen && s->was_online) {
            online_seen = true;
            deadline = monotonic_ms() + (int64_t)timeout_ms;
        }
        if (monotonic_ms() >= deadline) {
            if (!s->was_online)
                s->status = connect_timed_out(s);
            return s->status;
        }
        int rc = arb_client_service(s->client, SDK_SLICE_MS);
        if (rc != 0)
            return remote_error(s->what, rc);
    }
    return s->status;
}

/* propose through the SDK: PESSIMISTIC (nothing to predict for), resent
 * after a reconnection or a transient rejection until the verdict comes. */
static int propose_sdk(const remote *where, const options *opt, const char *client_id)
{
    json_t *args = NULL;
    int status = parse_args(opt->positional[3], &args);
    if (status != 0)
        return status;
    session s;
    status = session_open(&s, "propose", where, client_id, opt->positional[1], opt);
    if (status == 0) {
        char kind[ARB_KIND_BYTES_MAX + 1];
        int rc = arb_stream_name_valid(opt->positional[1], kind);
        if (rc == 0)
            rc = arb_client_propose(s.client, opt->positional[1], opt->positional[2], args,
                                    ARB_POLICY_PESSIMISTIC, &s.client_seq);
        status = rc == 0 ? session_wait(&s, opt->timeout_ms, NULL) : remote_error("propose", rc);
    }
    if (status < 0) {
        remote_error("waiting for the outcome", ARB_ETIMEOUT);
        fprintf(stderr,
                "arbiter: it may still be decided; to retry it safely: --client-id %s "
                "--client-seq %llu\n",
                client_id, (unsigned long long)s.client_seq);
        status = EXIT_ERROR;
    }
    arb_client_destroy(s.client);
    json_decref(args);
    return status;
}

/* propose with a fixed --client-seq or --expect: the SDK numbers its own
 * proposals and takes no `expect`, so these go over the WebSocket client
 * directly, as the CLI always did. */

/* The next message as JSON: *message_out a new reference, *type_out its
 * "type" ("" when it has none). */
static int recv_message(arb_ws_client *client, int timeout_ms, json_t **message_out,
                        const char **type_out)
{
    char *text = NULL;
    size_t len = 0;
    int rc = arb_ws_recv(client, timeout_ms, &text, &len);
    if (rc != 0)
        return rc;
    char why[200];
    rc = arb_json_parse(text, len, ARB_WIRE_FRAME_BYTES_MAX, message_out, why, sizeof why);
    free(text);
    if (rc != 0 || !json_is_object(*message_out)) {
        json_decref(*message_out);
        *message_out = NULL;
        fprintf(stderr, "arbiter: the server sent a message that is not a JSON object\n");
        return ARB_EMALFORMED;
    }
    const char *type = json_string_value(json_object_get(*message_out, "type"));
    *type_out = type != NULL ? type : "";
    return 0;
}

/* An `error` message from the server: its code and sentence on stderr. */
static int server_error(const char *what, json_t *message)
{
    const char *code = json_string_value(json_object_get(message, "code"));
    const char *text = json_string_value(json_object_get(message, "message"));
    const char *field = json_string_value(json_object_get(message, "field"));
    fprintf(stderr, "arbiter: %s: the server refused it: %s%s%s (%s)\n", what,
            text != NULL ? text : "no message", field != NULL ? ", field " : "",
            field != NULL ? field : "", code != NULL ? code : "no code");
    return EXIT_ERROR;
}

static int send_buf(arb_ws_client *client, const char *what, arb_buf *buf)
{
    int rc = arb_ws_send(client, buf->data, buf->len);
    arb_buf_reset(buf);
    return rc == 0 ? 0 : remote_error(what, rc);
}

/* Connect, say hello as client_id and wait for the welcome. */
static int remote_open(const remote *where, const options *opt, const char *client_id,
                       arb_ws_client **client_out)
{
    int timeout_ms = (int)opt->timeout_ms;
    int rc = arb_ws_connect(where->ws_url, timeout_ms, client_out);
    if (rc != 0) {
        fprintf(stderr, "arbiter: cannot connect to %s: %s (%s)\n", where->ws_url,
                arb_err_message(rc), arb_err_name(rc));
        return EXIT_ERROR;
    }
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    rc = arb_wire_encode_hello(&buf, client_id, 0);
    int status = rc == 0 ? send_buf(*client_out, "hello", &buf) : EXIT_USAGE;
    arb_buf_free(&buf);
    json_t *message = NULL;
    const char *type = "";
    for (int skipped = 0; status == 0 && skipped < 16; skipped++) {
        rc = recv_message(*client_out, timeout_ms, &message, &type);
        if (rc != 0)
            status = remote_error("waiting for the welcome", rc);
        else if (strcmp(type, "error") == 0)
            status = server_error("hello", message);
        else if (strcmp(type, "welcome") == 0)
            break;
        json_decref(message);
        message = NULL;
    }
    json_decref(message);
    if (status != 0) {
        arb_ws_close(*client_out);
        *client_out = NULL;
    }
    return status;
}

/* The proposal from the command line; client_seq defaults to the wall clock
 * in microseconds, as the SDK's does (see the header comment: a new key
 * every run). */
static int build_remote_command(const options *opt, const char *client_id, arb_command *command)
{
    json_t *args = NULL;
    int status = parse_args(opt->positional[3], &args);
    if (status != 0)
        return status;
    uint64_t seq = opt->client_seq;
    if (seq == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        seq = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
    }
    arb_command_init(command);
    int rc = arb_command_set(command, client_id, ARB_ROLE_USER, seq, opt->positional[1],
                             opt->positional[2], args);
    json_decref(args);
    command->has_expect = opt->has_expect;
    command->expect = opt->expect;
    if (rc != 0) {
        fprintf(stderr, "arbiter: %s\n", arb_err_message(rc));
        arb_command_clear(command);
        return EXIT_USAGE;
    }
    return 0;
}

/* Wait for the outcome of client_seq: print it, 0 committed, 1 rejected. */
static int await_outcome(arb_ws_client *client, const options *opt, uint64_t client_seq)
{
    for (int other = 0; other < 1000; other++) {
        json_t *message = NULL;
        const char *type = "";
        int rc = recv_message(client, (int)opt->timeout_ms, &message, &type);
        if (rc != 0)
            return remote_error("waiting for the outcome", rc);
        json_t *seq = json_object_get(message, "client_seq");
        bool ours = json_is_integer(seq) && (uint64_t)json_integer_value(seq) == client_seq;
        int status = -1;
        if (strcmp(type, "error") == 0) {
            status = server_error("propose", message);
        } else if (ours && (strcmp(type, "committed") == 0 || strcmp(type, "rejected") == 0)) {
            print_json(message);
            status = strcmp(type, "committed") == 0 ? 0 : EXIT_REJECTED;
        }
        json_decref(message);
        if (status >= 0)
            return status;
    }
    fprintf(stderr, "arbiter: propose: no outcome among the server's messages\n");
    return EXIT_ERROR;
}

static int propose_direct(const remote *where, const options *opt, const char *client_id)
{
    arb_command command;
    int status = build_remote_command(opt, client_id, &command);
    if (status != 0)
        return status;
    arb_ws_client *client = NULL;
    status = remote_open(where, opt, client_id, &client);
    if (status == 0) {
        arb_buf buf;
        arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
        int rc = arb_wire_encode_propose(&buf, &command);
        status = rc == 0 ? send_buf(client, "propose", &buf) : remote_error("propose", rc);
        arb_buf_free(&buf);
    }
    if (status == 0)
        status = await_outcome(client, opt, command.client_seq);
    arb_ws_close(client);
    arb_command_clear(&command);
    return status;
}

static int cmd_propose(const options *opt)
{
    if (opt->data_dir != NULL || opt->positional_count != 4)
        return EXIT_USAGE;
    char default_id[32];
    snprintf(default_id, sizeof default_id, "cli-%ld", (long)getpid());
    const char *client_id = opt->client_id != NULL ? opt->client_id : default_id;
    if (!valid_client_id(client_id)) {
        fprintf(stderr, "arbiter: --client-id: 1-64 bytes of A-Z a-z 0-9 _ . : @ -\n");
        return EXIT_USAGE;
    }
    remote where;
    int status = remote_parse(opt->positional[0], &where);
    if (status != 0)
        return status;
    if (opt->client_seq != 0 || opt->has_expect)
        return propose_direct(&where, opt, client_id);
    return propose_sdk(&where, opt, client_id);
}

/* One path segment, percent-encoded where it must be. */
static int append_segment(arb_buf *url, const char *segment)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)segment; rc == 0 && *p != '\0'; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~:@", *p) != NULL;
        char escaped[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        rc = plain ? arb_buf_append_char(url, (char)*p) : arb_buf_append(url, escaped, 3);
    }
    return rc;
}

/* state: GET /v1/streams/STREAM, printed as it comes (the durable state as
 * this client may see it). A plain read needs no draft, so it does not go
 * through the SDK. */
static int cmd_state_remote(const options *opt)
{
    remote where;
    int status = remote_parse(opt->positional[0], &where);
    if (status != 0)
        return status;
    arb_buf url;
    arb_buf_init(&url, ARB_URL_BYTES_MAX);
    int rc = arb_buf_append_str(&url, where.http_base);
    if (rc == 0)
        rc = arb_buf_append_str(&url, "/v1/streams/");
    if (rc == 0)
        rc = append_segment(&url, opt->positional[1]);
    arb_http_response response;
    memset(&response, 0, sizeof response);
    if (rc == 0)
        rc = arb_http_request(url.data, "GET", "Accept: application/json\r\n", NULL, 0,
                              (int)opt->timeout_ms, &response);
    if (rc != 0)
        fprintf(stderr, "arbiter: state: GET %s: %s (%s)\n", url.data != NULL ? url.data : "",
                arb_err_message(rc), arb_err_name(rc));
    arb_buf_free(&url);
    if (rc != 0)
        return rc == ARB_EINVALID_ARGUMENT ? EXIT_USAGE : EXIT_ERROR;
    char why[200];
    json_t *body = NULL;
    rc = arb_json_parse(response.body, response.body_len, ARB_HTTP_CLIENT_BODY_BYTES_MAX, &body,
                        why, sizeof why);
    if (response.status == 200 && rc == 0) {
        print_json(body);
        status = 0;
    } else if (rc == 0 && json_is_string(json_object_get(body, "code"))) {
        const char *message = json_string_value(json_object_get(body, "message"));
        fprintf(stderr, "arbiter: state: %s (%s)\n", message != NULL ? message : "",
                json_string_value(json_object_get(body, "code")));
        status = EXIT_ERROR;
    } else {
        fprintf(stderr, "arbiter: state: HTTP %d from the server%s%s\n", response.status,
                rc != 0 ? "; body not JSON: " : "", rc != 0 ? why : "");
        status = EXIT_ERROR;
    }
    json_decref(body);
    arb_http_response_clear(&response);
    return status;
}

/* tail --since N: the SDK subscribes from the state it holds, not from a
 * seq the user names, so this stays on the WebSocket client: one
 * connection, printing the server's messages as they come, until SIGINT or
 * the server closes (0 for a normal close, 4 otherwise). */
static int tail_loop(arb_ws_client *client)
{
    for (;;) {
        if (interrupted)
            return 0;
        json_t *message = NULL;
        const char *type = "";
        int rc = recv_message(client, TAIL_POLL_MS, &message, &type);
        if (rc == ARB_ETIMEOUT)
            continue;
        if (rc == ARB_ECLOSED) {
            char reason[128];
            int code = arb_ws_close_status(client, reason, sizeof reason);
            fprintf(stderr, "arbiter: tail: the server closed the connection (%d%s%s)\n", code,
                    reason[0] != '\0' ? " " : "", reason);
            return code == 1000 || code == 1001 ? 0 : EXIT_ERROR;
        }
        if (rc != 0)
            return remote_error("tail", rc);
        int status = -1;
        if (strcmp(type, "snapshot") == 0 || strcmp(type, "patch") == 0)
            print_line(message);
        else if (strcmp(type, "error") == 0)
            status = server_error("subscribe", message);
        json_decref(message);
        if (status >= 0)
            return status;
    }
}

static int tail_since(const remote *where, const options *opt, const char *client_id)
{
    arb_ws_client *client = NULL;
    int status = remote_open(where, opt, client_id, &client);
    if (status != 0)
        return status;
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    int rc = arb_wire_encode_subscribe(&buf, opt->positional[1], true, opt->since);
    status = rc == 0 ? send_buf(client, "subscribe", &buf) : EXIT_USAGE;
    arb_buf_free(&buf);
    if (status == 0)
        status = tail_loop(client);
    arb_ws_close(client);
    return status;
}

/* tail through the SDK: a snapshot line, then a patch line per batch of
 * confirmed events, across reconnections (the SDK resubscribes from the
 * last seq it holds, so nothing is missed or repeated), until SIGINT. */
static int tail_sdk(const remote *where, const options *opt, const char *client_id)
{
    session s;
    int status = session_open(&s, "tail", where, client_id, opt->positional[1], opt);
    if (status != 0)
        return status;
    int rc = arb_client_subscribe(s.client, s.stream);
    if (rc == ARB_EINVALID_ARGUMENT)
        rc = ARB_EINVALID_STREAM;
    if (rc != 0)
        status = remote_error("tail", rc);
    int64_t connect_deadline = monotonic_ms() + (int64_t)opt->timeout_ms;
    while (rc == 0 && s.status < 0 && !interrupted) {
        if (!s.was_online && monotonic_ms() >= connect_deadline) {
            s.status = connect_timed_out(&s);
            break;
        }
        rc = arb_client_service(s.client, TAIL_POLL_MS);
        if (rc != 0)
            s.status = remote_error("tail", rc);
        if (s.unexplained && !s.shown)
            tail_snapshot(&s);
        s.unexplained = false;
        s.shown = false;
    }
    if (status == 0)
        status = s.status >= 0 ? s.status : 0;
    arb_client_destroy(s.client);
    return status;
}

static int cmd_tail(const options *opt)
{
    if (opt->data_dir != NULL || opt->positional_count != 2)
        return EXIT_USAGE;
    remote where;
    int status = remote_parse(opt->positional[0], &where);
    if (status != 0)
        return status;
    char client_id[32];
    snprintf(client_id, sizeof client_id, "cli-tail-%ld", (long)getpid());
    catch_interrupts();
    return opt->has_since ? tail_since(&where, opt, client_id) : tail_sdk(&where, opt, client_id);
}

/* Poker. */

/* One compact JSON line, keys in the order they were set. */
/* A text answer (a hand history) on stdout when 200, else the server's JSON
 * error as a sentence on stderr: 0 or EXIT_ERROR. */
static int remote_body(const arb_http_response *response, const char *what)
{
    if (response->status == 200) {
        fwrite(response->body, 1, response->body_len, stdout);
        return 0;
    }
    char why[200];
    json_t *body = NULL;
    int rc = arb_json_parse(response->body, response->body_len, ARB_HTTP_CLIENT_BODY_BYTES_MAX,
                            &body, why, sizeof why);
    const char *code = rc == 0 ? json_string_value(json_object_get(body, "code")) : NULL;
    const char *message = rc == 0 ? json_string_value(json_object_get(body, "message")) : NULL;
    if (code != NULL)
        fprintf(stderr, "arbiter: %s: %s (%s)\n", what, message != NULL ? message : "", code);
    else
        fprintf(stderr, "arbiter: %s: HTTP %d from the server\n", what, response->status);
    json_decref(body);
    return EXIT_ERROR;
}

static void print_json_line(const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL)
        puts(text);
    free(text);
}

/* The longest line poker eval reads: seven cards and generous blanks. */
#define POKER_LINE_BYTES_MAX 256

/* One line of `arbiter poker eval`: the hand's JSON, or an error line. */
static json_t *poker_eval_line(const char *line)
{
    uint8_t cards[ARB_POKER_HAND_CARDS_MAX];
    size_t count = 0;
    int rc = arb_poker_cards_parse(line, cards, ARB_POKER_HAND_CARDS_MAX, &count);
    if (rc == 0 && count < ARB_POKER_HAND_CARDS_MIN)
        rc = ARB_EINVALID_ARGUMENT;
    if (rc != 0)
        return json_pack("{s:s, s:s}", "error", arb_err_name(rc), "message",
                         rc == ARB_EMALFORMED ? "a word is not a card (As, Td, 2c: rank "
                                                "23456789TJQKA, suit cdhs)"
                                              : "a hand is 5 to 7 different cards");
    uint8_t best[ARB_POKER_BEST_CARDS];
    uint32_t rank = arb_poker_best_five(cards, count, best);
    json_t *five = json_array();
    for (size_t i = 0; i < ARB_POKER_BEST_CARDS && five != NULL; i++) {
        char text[ARB_POKER_CARD_TEXT_SIZE];
        arb_poker_card_format(best[i], text);
        json_array_append_new(five, json_string(text));
    }
    return json_pack("{s:s, s:I, s:o}", "category",
                     arb_poker_category_name(arb_poker_category_of(rank)), "rank", (json_int_t)rank,
                     "best", five);
}

/* A hand history's reads, through a read-only engine (see answer_hand in
 * src/net/bridge.c for the server's). */
typedef struct history_reader {
    arb_engine *engine;
    const char *stream;
    const arb_principal *viewer; /* NULL: everything */
} history_reader;

static int history_view(void *user, json_t **view_out, uint64_t *version_out)
{
    history_reader *reader = user;
    return arb_engine_state(reader->engine, reader->stream, reader->viewer, view_out, version_out);
}

static int history_events(void *user, uint64_t since_seq, uint64_t limit, json_t **events_out)
{
    history_reader *reader = user;
    return arb_engine_events_as(reader->engine, reader->stream, since_seq, limit, reader->viewer,
                                events_out);
}

/* The hand number of the command line: 1 .. 2^53-1. */
static int history_hand(const char *text, uint64_t *hand_out)
{
    if (parse_u64(text, hand_out) != 0 || *hand_out == 0 || *hand_out > ARB_JSON_INT_MAX) {
        fprintf(stderr, "arbiter: poker history: HAND is an integer from 1 to 2^53-1\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* arbiter poker history --data DIR STREAM HAND [--as PLAYER]: the text on
 * stdout; as PLAYER it holds what that player saw, else every card. */
static int poker_history_local(const options *opt)
{
    uint64_t hand = 0;
    if (opt->positional_count != 2 || history_hand(opt->positional[1], &hand) != 0)
        return EXIT_USAGE;
    arb_engine *engine = NULL;
    if (open_engine(opt, true, &engine) != 0)
        return EXIT_ERROR;
    arb_principal player = {.role = ARB_ROLE_USER};
    if (opt->as != NULL)
        snprintf(player.id, sizeof player.id, "%s", opt->as);
    history_reader reader = {engine, opt->positional[0], opt->as != NULL ? &player : NULL};
    arb_poker_history_source source = {history_view, history_events, &reader, 0};
    arb_buf text;
    arb_buf_init(&text, ARB_POKER_HISTORY_BYTES_MAX);
    char why[ARB_MESSAGE_BYTES_MAX + 1] = "";
    int rc = strncmp(opt->positional[0], "table:", 6) == 0
                 ? arb_poker_history_read(&source, hand, &text, why, sizeof why)
                 : ARB_ENOTFOUND;
    if (rc == 0)
        fwrite(text.data, 1, text.len, stdout);
    else
        fprintf(stderr, "arbiter: poker history: %s (%s)\n",
                why[0] != '\0' ? why : "the stream is not a poker table (table:NAME)",
                arb_err_name(rc));
    arb_buf_free(&text);
    arb_engine_close(engine);
    return rc == 0 ? 0 : EXIT_ERROR;
}

/* arbiter poker history URL STREAM HAND [--as PLAYER]: GET
 * /v1/streams/STREAM/hands/HAND, as X-Client-Id PLAYER when given. */
static int poker_history_remote(const options *opt)
{
    remote where;
    uint64_t hand = 0;
    int status = opt->positional_count == 3 ? history_hand(opt->positional[2], &hand) : EXIT_USAGE;
    if (status == 0)
        status = remote_parse(opt->positional[0], &where);
    const char *viewer = opt->as != NULL ? opt->as : opt->client_id;
    if (status == 0 && viewer != NULL && !valid_client_id(viewer))
        status = EXIT_USAGE;
    if (status != 0)
        return status;
    arb_buf url, headers;
    arb_buf_init(&url, ARB_URL_BYTES_MAX);
    arb_buf_init(&headers, 256);
    int rc = arb_buf_append_str(&url, where.http_base);
    if (rc == 0)
        rc = arb_buf_append_str(&url, "/v1/streams/");
    if (rc == 0)
        rc = append_segment(&url, opt->positional[1]);
    if (rc == 0)
        rc = arb_buf_append_str(&url, "/hands/");
    if (rc == 0)
        rc = arb_buf_append_u64(&url, hand);
    if (rc == 0 && viewer != NULL)
        rc = arb_buf_append_str(&headers, "X-Client-Id: ");
    if (rc == 0 && viewer != NULL)
        rc = arb_buf_append_str(&headers, viewer);
    if (rc == 0 && viewer != NULL)
        rc = arb_buf_append_str(&headers, "\r\n");
    arb_http_response response;
    memset(&response, 0, sizeof response);
    if (rc == 0)
        rc = arb_http_request(url.data, "GET", headers.len > 0 ? headers.data : NULL, NULL, 0,
                              (int)opt->timeout_ms, &response);
    if (rc != 0)
        fprintf(stderr, "arbiter: poker history: GET %s: %s (%s)\n",
                url.data != NULL ? url.data : "", arb_err_message(rc), arb_err_name(rc));
    arb_buf_free(&url);
    arb_buf_free(&headers);
    if (rc != 0)
        return rc == ARB_EINVALID_ARGUMENT ? EXIT_USAGE : EXIT_ERROR;
    status = remote_body(&response, "poker history");
    arb_http_response_clear(&response);
    return status;
}

/* arbiter poker eval: a JSON line per line of stdin (blank lines skipped);
 * a line that is not a hand gets {"error","message"} and the exit status 4. */
static int cmd_poker(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[2], "history") == 0) {
        options opt;
        if (parse_options(argc - 1, argv + 1, &opt) != 0)
            return EXIT_USAGE;
        return opt.data_dir != NULL ? poker_history_local(&opt) : poker_history_remote(&opt);
    }
    if (argc != 3 || strcmp(argv[2], "eval") != 0)
        return EXIT_USAGE;
    int status = 0;
    char line[POKER_LINE_BYTES_MAX + 2];
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        bool whole = len > 0 && line[len - 1] == '\n';
        if (!whole && !feof(stdin)) { /* too long: refuse it and skip its rest */
            int c;
            while ((c = getchar()) != EOF && c != '\n') {
            }
            json_t *error = json_pack("{s:s, s:s}", "error", "TOO_LARGE", "message",
                                      "a line holds at most 256 bytes");
            print_json_line(error);
            json_decref(error);
            status = EXIT_ERROR;
            continue;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t") == len)
            continue;
        json_t *out = poker_eval_line(line);
        if (out == NULL)
            return EXIT_ERROR;
        if (json_object_get(out, "error") != NULL)
            status = EXIT_ERROR;
        print_json_line(out);
        json_decref(out);
    }
    return status;
}

int main(int argc, char **argv)
{
    arb_log_set_level(ARB_LOG_WARN);
    if (argc >= 2 && strcmp(argv[1], "poker") == 0) {
        int status = cmd_poker(argc, argv);
        if (status == EXIT_USAGE)
            usage();
        return status;
    }
    options opt;
    if (argc < 2 || parse_options(argc, argv, &opt) != 0) {
        usage();
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    int status = EXIT_USAGE;
    if (strcmp(command, "exec") == 0)
        status = cmd_exec(&opt);
    else if (strcmp(command, "propose") == 0)
        status = cmd_propose(&opt);
    else if (strcmp(command, "tail") == 0)
        status = cmd_tail(&opt);
    else if (strcmp(command, "state") == 0 && opt.data_dir == NULL)
        status = opt.positional_count == 2 ? cmd_state_remote(&opt) : EXIT_USAGE;
    else if (strcmp(command, "state") == 0 || strcmp(command, "log") == 0 ||
             strcmp(command, "streams") == 0)
        status = cmd_read(&opt, command);
    else if (strcmp(command, "verify") == 0)
        status = cmd_verify(&opt);
    if (status == EXIT_USAGE)
        usage();
    return status;
}
