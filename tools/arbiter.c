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
 * optional base path; the WebSocket is the same URL with ws://):
 *   arbiter propose URL STREAM ACTION JSON [--client-id ID] [--client-seq N]
 *                  [--expect V]              hello, propose; prints the
 *                                            committed or rejected message
 *   arbiter state  URL STREAM                GET URL/v1/streams/STREAM
 *   arbiter tail   URL STREAM [--since N]    subscribe; one JSON line per
 *                                            snapshot or patch, until SIGINT
 *                                            or the server closes
 * (--timeout-ms N bounds each wait, 10000 by default.)
 *
 * Idempotency in remote mode: (client_id, client_seq) is the proposal's key.
 * The client id defaults to "cli-<pid>" and, without --client-seq, client_seq
 * is the current time in ms, so a new run never reuses the key of an earlier
 * run with the same client id (short of two runs in one millisecond). To
 * retry one proposal safely, give both --client-id and --client-seq: a
 * repeated run gets the stored outcome ("replay": true) and has no second
 * effect.
 *
 * Output is one JSON document on stdout (tail: one per line); errors are a
 * sentence on stderr. Exit status: 0 done, 1 the proposal was rejected (exec
 * and propose), 2 usage, 3 the data failed verification, 4 any other error
 * (a server's error reply, a refused connection, a tail cut short).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/engine.h"
#include "arbiter/wire.h"
#include "core/buf.h"
#include "core/canon.h"
#include "core/log.h"
#include "net/client.h"

enum { EXIT_REJECTED = 1, EXIT_USAGE = 2, EXIT_CORRUPT = 3, EXIT_ERROR = 4 };

/* How long a remote command waits for each step (connect, an answer). */
#define REMOTE_TIMEOUT_MS_DEFAULT 10000
/* How often tail looks at its SIGINT flag while it waits for messages. */
#define TAIL_POLL_MS 200

typedef struct options {
    const char *data_dir;
    const char *client_id; /* NULL: "cli" locally, "cli-<pid>" remotely */
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
          "remote: URL is http://HOST:PORT of a running arbiterd\n"
          "       arbiter propose URL STREAM ACTION JSON [--client-id ID] [--client-seq N]\n"
          "                       [--expect VERSION] [--timeout-ms N]\n"
          "       arbiter state   URL STREAM [--timeout-ms N]\n"
          "       arbiter tail    URL STREAM [--since N] [--timeout-ms N]\n"
          "without --client-seq, propose uses the time in ms (a new key every run);\n"
          "repeat --client-id and --client-seq to retry one proposal idempotently\n",
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

/* Where a remote command goes: the HTTP base and the WebSocket URL, both
 * from the one URL the user gave. */
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

/* The proposal from the command line; client_seq defaults to the wall clock
 * in ms (see the header comment: a new key every run). */
static int build_remote_command(const options *opt, const char *client_id, arb_command *command)
{
    char why[200];
    json_t *args = NULL;
    const char *text = opt->positional[3];
    int rc = arb_json_parse(text, strlen(text), ARB_ARGS_BYTES_MAX, &args, why, sizeof why);
    if (rc != 0 || !json_is_object(args)) {
        fprintf(stderr, "arbiter: JSON args: %s\n", rc != 0 ? why : "must be an object");
        json_decref(args);
        return EXIT_USAGE;
    }
    uint64_t seq = opt->client_seq;
    if (seq == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        seq = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    }
    arb_command_init(command);
    rc = arb_command_set(command, client_id, ARB_ROLE_USER, seq, opt->positional[1],
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
    arb_command command;
    int status = remote_parse(opt->positional[0], &where);
    if (status == 0)
        status = build_remote_command(opt, client_id, &command);
    if (status != 0)
        return status;
    arb_ws_client *client = NULL;
    status = remote_open(&where, opt, client_id, &client);
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

/* The stream name as one path segment: unreserved bytes and ':' and '@' as
 * they are, everything else %XX. */
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

/* Print messages until SIGINT (0), a normal close by the server (0), or an
 * error (4). */
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
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt; /* no SA_RESTART: a wait ends at once */
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    arb_ws_client *client = NULL;
    status = remote_open(&where, opt, client_id, &client);
    if (status != 0)
        return status;
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    int rc = arb_wire_encode_subscribe(&buf, opt->positional[1], opt->has_since, opt->since);
    status = rc == 0 ? send_buf(client, "subscribe", &buf) : EXIT_USAGE;
    arb_buf_free(&buf);
    if (status == 0)
        status = tail_loop(client);
    arb_ws_close(client);
    return status;
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
