/*
 * http_test.c - the HTTP API (docs/protocol.md, "HTTP API") against the real
 * arbiterd: commands and every status they can get, idempotent replays,
 * ETags, event pages and long polls, syncs, the probes, a corpus of
 * malformed requests on the raw socket, and concurrent random transfers whose
 * money, seqs and log are checked at the end (and by `arbiter verify`).
 *
 * Each test starts its own server in a fresh directory (setup) and stops it
 * with SIGTERM, which must exit 0, as its last step; teardown only kills a
 * server that a failed assertion left running. Helper threads never call
 * cmocka: they record what they saw and the main thread asserts on it.
 * Nothing here asserts on time: a deadline only stops a hang.
 */
#include "server.h"
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/error.h"
#include "core/assert.h"

#define STREAM "ledger:demo"
/* Requests that must be answered at once get this long before a test fails. */
#define REQUEST_TIMEOUT_MS 5000
/* A malformed request must be answered or dropped within this. */
#define RAW_TIMEOUT_MS 3000
/* libwebsockets' own timeout for a request it holds (timeout_secs in
 * src/net/server.c), with room: the bound for the cases it keeps waiting. */
#define RAW_HELD_TIMEOUT_MS 15000
/* test_ledger_setup: two accounts of 1000 each are events 1 to 4. */
#define SETUP_VERSION 4
#define SETUP_BALANCE 1000

static test_server server;
static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = test_mkdtemp("http");
    test_server_start(&server, dir, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (server.pid > 0)
        test_server_stop(&server, SIGKILL);
    char port_file[1100];
    snprintf(port_file, sizeof port_file, "%s.port", dir);
    unlink(port_file);
    test_rmdir(dir);
    dir = NULL;
    return 0;
}

/* The last step of every test: SIGTERM, and the server exits 0. */
static void stop_server(void)
{
    assert_int_equal(test_server_stop(&server, SIGTERM), 0);
}

static void setup_alice_and_bob(void)
{
    const char *const owners[] = {"alice", "bob"};
    test_ledger_setup(&server, STREAM, owners, 2, SETUP_BALANCE);
}

/* ---- JSON helpers ---- */

static const char *text_of(const json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    if (value == NULL) {
        char *dump = json_dumps(object, JSON_COMPACT);
        fail_msg("no string \"%s\" in %s", key, dump != NULL ? dump : "(null)");
    }
    return value;
}

static long long int_of(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    if (!json_is_integer(value)) {
        char *dump = json_dumps(object, JSON_COMPACT);
        fail_msg("no integer \"%s\" in %s", key, dump != NULL ? dump : "(null)");
    }
    return (long long)json_integer_value(value);
}

/* An error or rejection body: its type and code. */
static void assert_refusal(const json_t *body, const char *type, const char *code)
{
    assert_non_null(body);
    assert_string_equal(text_of(body, "type"), type);
    assert_string_equal(text_of(body, "code"), code);
    assert_true(strlen(text_of(body, "message")) > 0);
}

/* ---- Requests ---- */

/* POST a command as client_id with Idempotency-Key key (0: no key header)
 * to /v1/streams/PATH_STREAM/commands. */
static int command(const char *client_id, uint64_t key, const char *path_stream, const char *body,
                   json_t **out)
{
    char headers[256] = "";
    size_t used = 0;
    if (client_id != NULL)
        used += (size_t)snprintf(headers, sizeof headers, "X-Client-Id: %s\r\n", client_id);
    if (key != 0)
        snprintf(headers + used, sizeof headers - used, "Idempotency-Key: %llu\r\n",
                 (unsigned long long)key);
    char path[512];
    snprintf(path, sizeof path, "/v1/streams/%s/commands", path_stream);
    return test_http(&server, "POST", path, headers, body, out);
}

static int transfer(const char *client_id, uint64_t key, const char *from, const char *to,
                    long long amount, json_t **out)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"action\":\"transfer\",\"args\":{\"from\":\"%s\",\"to\":\"%s\",\"amount\":%lld}}",
             from, to, amount);
    return command(client_id, key, STREAM, body, out);
}

/* Any request, keeping the headers (the caller clears the response). */
static void request(const char *method, const char *path, const char *headers,
                    arb_http_response *response)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", server.http_url, path);
    int rc = arb_http_request(url, method, headers, NULL, 0, REQUEST_TIMEOUT_MS, response);
    if (rc != 0)
        fail_msg("%s %s: %s", method, path, arb_err_name(rc));
}

/* GET /v1/streams/STREAM: the state (new reference) and its version. */
static json_t *state_of(const char *stream, long long *version_out)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/streams/%s", stream);
    json_t *body = NULL;
    assert_int_equal(test_http(&server, "GET", path, NULL, NULL, &body), 200);
    assert_string_equal(text_of(body, "stream"), stream);
    if (version_out != NULL)
        *version_out = int_of(body, "version");
    json_t *state = json_incref(json_object_get(body, "state"));
    assert_non_null(state);
    json_decref(body);
    return state;
}

static long long balance_of(const char *account)
{
    json_t *state = state_of(STREAM, NULL);
    json_t *entry = json_object_get(json_object_get(state, "accounts"), account);
    long long balance = int_of(entry, "balance");
    json_decref(state);
    return balance;
}

static long long version_of(void)
{
    long long version = 0;
    json_decref(state_of(STREAM, &version));
    return version;
}

/* ---- Commands ---- */

static void test_command_committed_then_replayed(void **state)
{
    (void)state;
    setup_alice_and_bob();
    json_t *body = NULL;
    assert_int_equal(transfer("alice", 1, "alice", "bob", 250, &body), 200);
    assert_string_equal(text_of(body, "type"), "committed");
    assert_string_equal(text_of(body, "stream"), STREAM);
    assert_int_equal(int_of(body, "client_seq"), 1);
    assert_int_equal(int_of(body, "seq"), SETUP_VERSION + 1);
    assert_int_equal(int_of(body, "seq_last"), SETUP_VERSION + 1);
    assert_true(json_is_false(json_object_get(body, "replay")));
    assert_true(json_is_null(json_object_get(body, "result")));
    json_t *events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 1);
    json_t *event = json_array_get(events, 0);
    assert_int_equal(int_of(event, "seq"), SETUP_VERSION + 1);
    assert_string_equal(text_of(event, "type"), "transferred");
    assert_string_equal(text_of(event, "stream"), STREAM);
    assert_string_equal(text_of(event, "client_id"), "alice");
    assert_int_equal(int_of(event, "client_seq"), 1);
    assert_int_equal(strlen(text_of(event, "hash")), 64);
    json_t *data = json_object_get(event, "data");
    assert_int_equal(int_of(data, "amount"), 250);
    assert_string_equal(text_of(data, "from"), "alice");
    assert_string_equal(text_of(data, "to"), "bob");
    json_decref(body);

    /* The same key and body: the stored outcome, no second effect. */
    assert_int_equal(transfer("alice", 1, "alice", "bob", 250, &body), 200);
    assert_string_equal(text_of(body, "type"), "committed");
    assert_true(json_is_true(json_object_get(body, "replay")));
    assert_int_equal(int_of(body, "seq"), SETUP_VERSION + 1);
    assert_int_equal(json_array_size(json_object_get(body, "events")), 0);
    json_decref(body);
    /* The same content written differently is the same proposal. */
    assert_int_equal(command("alice", 1, STREAM,
                             "{ \"args\" : {\"to\":\"bob\", \"amount\":250, \"from\":\"alice\"},"
                             " \"action\" : \"transfer\" }",
                             &body),
                     200);
    assert_true(json_is_true(json_object_get(body, "replay")));
    assert_int_equal(int_of(body, "seq"), SETUP_VERSION + 1);
    json_decref(body);
    assert_int_equal(balance_of("alice"), SETUP_BALANCE - 250);
    assert_int_equal(balance_of("bob"), SETUP_BALANCE + 250);
    assert_int_equal(version_of(), SETUP_VERSION + 1);

    /* The same key with another body: refused, nothing recorded or moved. */
    assert_int_equal(transfer("alice", 1, "alice", "bob", 251, &body), 422);
    assert_refusal(body, "rejected", "IDEMPOTENCY_KEY_REUSED");
    assert_int_equal(int_of(body, "client_seq"), 1);
    json_decref(body);
    assert_int_equal(balance_of("alice"), SETUP_BALANCE - 250);
    assert_int_equal(version_of(), SETUP_VERSION + 1);
    /* ...and the key still answers with its first outcome. */
    assert_int_equal(transfer("alice", 1, "alice", "bob", 250, &body), 200);
    assert_true(json_is_true(json_object_get(body, "replay")));
    json_decref(body);
    /* A key belongs to its client id: bob's 1 is a new proposal. */
    assert_int_equal(transfer("bob", 1, "bob", "alice", 5, &body), 200);
    assert_true(json_is_false(json_object_get(body, "replay")));
    assert_int_equal(int_of(body, "seq"), SETUP_VERSION + 2);
    json_decref(body);
    stop_server();
}

static void test_command_rejections(void **state)
{
    (void)state;
    setup_alice_and_bob();
    json_t *body = NULL;
    /* A stale expect: 409 with the current state as the snapshot. */
    assert_int_equal(command("alice", 1, STREAM,
                             "{\"action\":\"transfer\",\"args\":{\"from\":\"alice\",\"to\":\"bob\","
                             "\"amount\":1},\"expect\":4}",
                             &body),
                     200);
    json_decref(body);
    long long version = 0;
    json_t *current = state_of(STREAM, &version);
    assert_int_equal(version, SETUP_VERSION + 1);
    assert_int_equal(command("alice", 2, STREAM,
                             "{\"action\":\"transfer\",\"args\":{\"from\":\"alice\",\"to\":\"bob\","
                             "\"amount\":1},\"expect\":4}",
                             &body),
                     409);
    assert_refusal(body, "rejected", "VERSION_CONFLICT");
    assert_int_equal(int_of(json_object_get(body, "details"), "version"), version);
    assert_int_equal(int_of(body, "version"), version);
    assert_true(json_equal(json_object_get(body, "snapshot"), current));
    json_decref(body);
    json_decref(current);

    /* More than the balance. */
    assert_int_equal(transfer("alice", 3, "alice", "bob", 5000, &body), 422);
    assert_refusal(body, "rejected", "INSUFFICIENT_FUNDS");
    assert_true(json_is_false(json_object_get(body, "replay")));
    json_decref(body);
    /* A rejection is an outcome: the retry gets it again, marked a replay. */
    assert_int_equal(transfer("alice", 3, "alice", "bob", 5000, &body), 422);
    assert_refusal(body, "rejected", "INSUFFICIENT_FUNDS");
    assert_true(json_is_true(json_object_get(body, "replay")));
    json_decref(body);

    /* A user spending an account it does not own: FORBIDDEN (ledger.md,
     * transfer check 4), and a user may not deposit at all. */
    assert_int_equal(transfer("alice", 4, "bob", "alice", 10, &body), 403);
    assert_refusal(body, "rejected", "FORBIDDEN");
    json_decref(body);
    assert_int_equal(
        command("alice", 5, STREAM,
                "{\"action\":\"deposit\",\"args\":{\"account\":\"alice\",\"amount\":1}}", &body),
        403);
    assert_refusal(body, "rejected", "FORBIDDEN");
    json_decref(body);

    /* Other rule rejections are 422. */
    assert_int_equal(transfer("alice", 6, "alice", "nobody", 1, &body), 422);
    assert_refusal(body, "rejected", "ACCOUNT_NOT_FOUND");
    assert_string_equal(text_of(json_object_get(body, "details"), "account"), "nobody");
    json_decref(body);
    assert_int_equal(command("alice", 7, STREAM, "{\"action\":\"frobnicate\",\"args\":{}}", &body),
                     422);
    assert_refusal(body, "rejected", "UNKNOWN_ACTION");
    json_decref(body);

    /* A user proposing to a stream nobody created. */
    assert_int_equal(
        command("alice", 8, "ledger:missing",
                "{\"action\":\"transfer\",\"args\":{\"from\":\"a\",\"to\":\"b\",\"amount\":1}}",
                &body),
        404);
    assert_refusal(body, "rejected", "STREAM_NOT_FOUND");
    assert_string_equal(text_of(body, "stream"), "ledger:missing");
    json_decref(body);
    assert_int_equal(test_http(&server, "GET", "/v1/streams/ledger:missing", NULL, NULL, &body),
                     404);
    assert_refusal(body, "error", "STREAM_NOT_FOUND");
    json_decref(body);
    /* An unknown kind is the client's mistake: 400. */
    assert_int_equal(command("admin", 9, "casino:main", "{\"action\":\"spin\",\"args\":{}}", &body),
                     400);
    assert_refusal(body, "rejected", "UNKNOWN_KIND");
    json_decref(body);

    assert_int_equal(balance_of("alice"), SETUP_BALANCE - 1);
    assert_int_equal(balance_of("bob"), SETUP_BALANCE + 1);
    assert_int_equal(version_of(), SETUP_VERSION + 1);
    stop_server();
}

/* A POST of body to path with headers: the status and the error's code and
 * field (NULL: no field expected). */
static void assert_bad(const char *method, const char *path, const char *headers, const char *body,
                       int status, const char *code, const char *field)
{
    json_t *answer = NULL;
    int got = test_http(&server, method, path, headers, body, &answer);
    if (got != status)
        fail_msg("%s %s: status %d, expected %d", method, path, got, status);
    assert_refusal(answer, "error", code);
    if (field != NULL)
        assert_string_equal(text_of(answer, "field"), field);
    json_decref(answer);
}

static void test_command_bad_requests(void **state)
{
    (void)state;
    setup_alice_and_bob();
    const char *path = "/v1/streams/" STREAM "/commands";
    const char *alice = "X-Client-Id: alice\r\nIdempotency-Key: 1\r\n";
    const char *good = "{\"action\":\"transfer\",\"args\":{\"from\":\"alice\",\"to\":\"bob\","
                       "\"amount\":7}}";
    /* The body. */
    assert_bad("POST", path, alice, "{\"action\":", 400, "MALFORMED", NULL);
    assert_bad("POST", path, alice, "[1,2]", 400, "MALFORMED", NULL);
    assert_bad("POST", path, alice, "", 400, "MALFORMED", NULL);
    assert_bad("POST", path, alice,
               "{\"action\":\"transfer\",\"args\":{\"from\":\"alice\",\"to\":\"bob\","
               "\"amount\":7},\"extra\":1}",
               400, "INVALID_ARGUMENT", "extra");
    assert_bad("POST", path, alice,
               "{\"action\":\"transfer\",\"client_id\":\"bob\",\"args\":{\"from\":\"alice\","
               "\"to\":\"bob\",\"amount\":7}}",
               400, "INVALID_ARGUMENT", "client_id");
    assert_bad("POST", path, alice, "{\"args\":{}}", 400, "INVALID_ARGUMENT", "action");
    assert_bad("POST", path, alice,
               "{\"action\":\"transfer\",\"args\":{\"from\":\"alice\",\"to\":\"bob\","
               "\"amount\":7.5}}",
               400, "INVALID_ARGUMENT", NULL);
    assert_bad("POST", path, alice, "{\"action\":\"transfer\",\"args\":{},\"expect\":-1}", 400,
               "INVALID_ARGUMENT", "expect");
    /* The headers. */
    assert_bad("POST", path, "Idempotency-Key: 1\r\n", good, 400, "INVALID_ARGUMENT",
               "X-Client-Id");
    assert_bad("POST", path, "X-Client-Id: alice\r\n", good, 400, "INVALID_ARGUMENT",
               "Idempotency-Key");
    const char *const bad_keys[] = {
        "0", "abc", "-1", "01", "1.5", "1e3", " ", "9007199254740992", "18446744073709551616"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        char headers[128];
        snprintf(headers, sizeof headers, "X-Client-Id: alice\r\nIdempotency-Key: %s\r\n",
                 bad_keys[i]);
        assert_bad("POST", path, headers, good, 400, "INVALID_ARGUMENT", "Idempotency-Key");
    }
    /* A body over 1 MiB. */
    size_t big_len = ARB_HTTP_BODY_BYTES_MAX + 1;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'x', big_len);
    const char *head = "{\"action\":\"transfer\",\"args\":{\"memo\":\"";
    memcpy(big, head, strlen(head));
    memcpy(big + big_len - 3, "\"}}", 3);
    big[big_len] = '\0';
    assert_bad("POST", path, alice, big, 413, "TOO_LARGE", NULL);
    free(big);
    /* Methods a path does not serve, and paths that do not exist. */
    assert_bad("GET", path, alice, NULL, 405, "USAGE", NULL);
    assert_bad("POST", "/v1/streams/" STREAM, alice, good, 405, "USAGE", NULL);
    assert_bad("GET", "/v1/sync", NULL, NULL, 405, "USAGE", NULL);
    assert_bad("POST", "/healthz", alice, "{}", 405, "USAGE", NULL);
    const char *const anywhere[] = {
        path,       "/v1/streams", "/v1/streams/" STREAM,          "/v1/sync",
        "/healthz", "/metrics",    "/v1/streams/" STREAM "/events"};
    for (size_t i = 0; i < sizeof anywhere / sizeof anywhere[0]; i++) {
        assert_bad("DELETE", anywhere[i], alice, NULL, 405, "USAGE", NULL);
        assert_bad("PUT", anywhere[i], alice, good, 405, "USAGE", NULL);
    }
    assert_bad("GET", "/v1/nope", NULL, NULL, 404, "NOT_FOUND", "path");
    assert_bad("GET", "/v1/streams/" STREAM "/nope", NULL, NULL, 404, "NOT_FOUND", "path");
    assert_bad("POST", "/v1/streams/" STREAM "/commands/x", alice, good, 404, "NOT_FOUND", "path");
    assert_int_equal(test_http(&server, "GET", "/nope/nowhere.txt", NULL, NULL, NULL), 404);
    assert_bad("GET", "/v1/streams/nocolon", NULL, NULL, 400, "INVALID_STREAM", NULL);
    assert_bad("POST", "/v1/streams/:x/commands", alice, good, 400, "INVALID_STREAM", NULL);
    /* None of it moved anything. */
    assert_int_equal(version_of(), SETUP_VERSION);

    /* The stream name percent-encoded is the same stream. */
    json_t *body = NULL;
    assert_int_equal(command("alice", 1, "ledger%3Ademo", good, &body), 200);
    assert_string_equal(text_of(body, "type"), "committed");
    assert_string_equal(text_of(body, "stream"), STREAM);
    assert_int_equal(int_of(body, "seq"), SETUP_VERSION + 1);
    json_decref(body);
    assert_int_equal(command("alice", 1, STREAM, good, &body), 200);
    assert_true(json_is_true(json_object_get(body, "replay")));
    json_decref(body);
    assert_int_equal(test_http(&server, "GET", "/v1/streams/ledger%3Ademo", NULL, NULL, &body),
                     200);
    assert_string_equal(text_of(body, "stream"), STREAM);
    assert_int_equal(int_of(body, "version"), SETUP_VERSION + 1);
    json_decref(body);
    assert_int_equal(
        test_http(&server, "GET", "/v1/streams/ledger%3Ademo/events?since=4", NULL, NULL, &body),
        200);
    assert_int_equal(json_array_size(json_object_get(body, "events")), 1);
    json_decref(body);
    assert_int_equal(balance_of("bob"), SETUP_BALANCE + 7);
    stop_server();
}

/* ---- State and ETags ---- */

/* GET the state with If-None-Match: value (NULL: none); the status, and
 * the ETag into etag. */
static int get_state_if(const char *if_none_match, char *etag, size_t etag_size, json_t **body_out)
{
    char headers[128] = "";
    if (if_none_match != NULL)
        snprintf(headers, sizeof headers, "If-None-Match: %s\r\n", if_none_match);
    arb_http_response response;
    request("GET", "/v1/streams/" STREAM, headers, &response);
    char value[64];
    assert_non_null(arb_http_header(&response, "Cache-Control", value, sizeof value));
    assert_string_equal(value, "no-store");
    if (arb_http_header(&response, "ETag", etag, etag_size) == NULL)
        etag[0] = '\0';
    int status = response.status;
    if (status == 304)
        assert_int_equal(response.body_len, 0);
    if (body_out != NULL) {
        json_error_t error;
        *body_out = json_loadb(response.body, response.body_len, 0, &error);
    }
    arb_http_response_clear(&response);
    return status;
}

static void test_state_etag(void **state)
{
    (void)state;
    setup_alice_and_bob();
    char etag[64];
    json_t *body = NULL;
    assert_int_equal(get_state_if(NULL, etag, sizeof etag, &body), 200);
    assert_string_equal(etag, "\"4\"");
    assert_int_equal(int_of(body, "version"), SETUP_VERSION);
    assert_string_equal(text_of(body, "stream"), STREAM);
    assert_int_equal(
        int_of(
            json_object_get(json_object_get(json_object_get(body, "state"), "accounts"), "alice"),
            "balance"),
        SETUP_BALANCE);
    json_decref(body);
    /* Unchanged: 304 and no body, in each accepted form of the tag. */
    const char *const same[] = {"\"4\"", "4", "W/\"4\""};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        assert_int_equal(get_state_if(same[i], etag, sizeof etag, &body), 304);
        assert_null(body);
        assert_string_equal(etag, "\"4\"");
    }
    /* Another version, or something that is no version: the state. */
    const char *const other[] = {"\"3\"", "\"5\"", "*", "\"x\"", "W/"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        assert_int_equal(get_state_if(other[i], etag, sizeof etag, &body), 200);
        assert_int_equal(int_of(body, "version"), SETUP_VERSION);
        json_decref(body);
    }
    /* After a commit the old tag no longer matches. */
    assert_int_equal(transfer("alice", 1, "alice", "bob", 10, NULL), 200);
    assert_int_equal(get_state_if("\"4\"", etag, sizeof etag, &body), 200);
    assert_string_equal(etag, "\"5\"");
    assert_int_equal(int_of(body, "version"), SETUP_VERSION + 1);
    json_decref(body);
    assert_int_equal(get_state_if("W/\"5\"", etag, sizeof etag, &body), 304);
    assert_null(body);
    assert_string_equal(etag, "\"5\"");
    stop_server();
}

static bool list_has(const json_t *array, const char *name)
{
    for (size_t i = 0; i < json_array_size(array); i++)
        if (strcmp(json_string_value(json_array_get(array, i)), name) == 0)
            return true;
    return false;
}

static void test_streams_list(void **state)
{
    (void)state;
    json_t *body = NULL;
    assert_int_equal(test_http(&server, "GET", "/v1/streams", NULL, NULL, &body), 200);
    assert_true(json_is_array(json_object_get(body, "streams")));
    assert_int_equal(json_array_size(json_object_get(body, "streams")), 0);
    json_decref(body);
    setup_alice_and_bob();
    assert_int_equal(command("admin", 1, "ledger:other",
                             "{\"action\":\"open_account\",\"args\":{\"account\":\"z\","
                             "\"owner\":\"zed\",\"currency\":\"EUR\"}}",
                             NULL),
                     200);
    assert_int_equal(test_http(&server, "GET", "/v1/streams", NULL, NULL, &body), 200);
    json_t *streams = json_object_get(body, "streams");
    assert_int_equal(json_array_size(streams), 2);
    assert_true(list_has(streams, STREAM));
    assert_true(list_has(streams, "ledger:other"));
    json_decref(body);
    assert_int_equal(test_http(&server, "GET", "/v1/streams/", NULL, NULL, &body), 200);
    assert_int_equal(json_array_size(json_object_get(body, "streams")), 2);
    json_decref(body);
    stop_server();
}

/* ---- Events ---- */

/* GET events with query; asserts 200 and the envelope; the events array is
 * a new reference. */
static json_t *events_of(const char *query, long long *version_out)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/streams/" STREAM "/events%s", query);
    json_t *body = NULL;
    assert_int_equal(test_http(&server, "GET", path, NULL, NULL, &body), 200);
    assert_string_equal(text_of(body, "stream"), STREAM);
    if (version_out != NULL)
        *version_out = int_of(body, "version");
    json_t *events = json_incref(json_object_get(body, "events"));
    assert_true(json_is_array(events));
    json_decref(body);
    return events;
}

/* events holds exactly the seqs first .. first + count - 1, in order. */
static void assert_seqs(const json_t *events, long long first, size_t count)
{
    assert_int_equal(json_array_size(events), count);
    for (size_t i = 0; i < count; i++) {
        const json_t *event = json_array_get(events, i);
        assert_int_equal(int_of(event, "seq"), first + (long long)i);
        assert_string_equal(text_of(event, "stream"), STREAM);
    }
}

static void test_events_since_and_limit(void **state)
{
    (void)state;
    setup_alice_and_bob();
    for (uint64_t key = 1; key <= 3; key++)
        assert_int_equal(transfer("alice", key, "alice", "bob", (long long)key, NULL), 200);
    long long version = 0;
    json_t *events = events_of("", &version);
    assert_int_equal(version, SETUP_VERSION + 3);
    assert_seqs(events, 1, SETUP_VERSION + 3);
    assert_string_equal(text_of(json_array_get(events, 0), "type"), "account_opened");
    json_decref(events);
    events = events_of("?since=4", &version);
    assert_seqs(events, 5, 3);
    for (size_t i = 0; i < 3; i++) {
        const json_t *event = json_array_get(events, i);
        assert_string_equal(text_of(event, "type"), "transferred");
        assert_string_equal(text_of(event, "client_id"), "alice");
        assert_int_equal(int_of(event, "client_seq"), (long long)i + 1);
        assert_int_equal(int_of(json_object_get(event, "data"), "amount"), (long long)i + 1);
    }
    json_decref(events);
    events = events_of("?since=4&limit=2", &version);
    assert_int_equal(version, SETUP_VERSION + 3);
    assert_seqs(events, 5, 2);
    json_decref(events);
    events = events_of("?limit=1&since=6", NULL);
    assert_seqs(events, 7, 1);
    json_decref(events);
    events = events_of("?since=7&wait=0", &version);
    assert_int_equal(version, 7);
    assert_seqs(events, 8, 0);
    json_decref(events);

    const char *const bad[] = {"since=-1", "since=abc",  "since=01", "since=9007199254740992",
                               "since=",   "since=1.0",  "limit=0",  "limit=1001",
                               "limit=x",  "limit=-5",   "wait=61",  "wait=-1",
                               "wait=1.5", "wait=99999", "wait=1s",  "since=18446744073709551617"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/streams/" STREAM "/events?%s", bad[i]);
        assert_bad("GET", path, NULL, NULL, 400, "INVALID_ARGUMENT", "query");
    }
    json_t *body = NULL;
    assert_int_equal(
        test_http(&server, "GET", "/v1/streams/ledger:missing/events", NULL, NULL, &body), 404);
    assert_refusal(body, "error", "STREAM_NOT_FOUND");
    json_decref(body);
    stop_server();
}

/* A long poll on its own thread: the answer is kept for the main thread. */
typedef struct long_poll {
    char url[512];
    int rc;
    int status;
    json_t *body;
} long_poll;

static void *long_poll_main(void *user)
{
    long_poll *poll_state = user;
    arb_http_response response;
    poll_state->rc = arb_http_request(poll_state->url, "GET", NULL, NULL, 0, 30000, &response);
    if (poll_state->rc == 0) {
        poll_state->status = response.status;
        json_error_t error;
        poll_state->body = json_loadb(response.body, response.body_len, 0, &error);
        arb_http_response_clear(&response);
    }
    return NULL;
}

static void nap_ms(long ms)
{
    struct timespec nap = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
        continue;
}

static void test_events_long_poll(void **state)
{
    (void)state;
    setup_alice_and_bob();
    long_poll poll_state = {.rc = -1};
    snprintf(poll_state.url, sizeof poll_state.url,
             "%s/v1/streams/" STREAM "/events?since=%d&wait=10", server.http_url, SETUP_VERSION);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, long_poll_main, &poll_state), 0);
    nap_ms(300);
    json_t *body = NULL;
    assert_int_equal(transfer("alice", 1, "alice", "bob", 42, &body), 200);
    assert_int_equal(int_of(body, "seq"), SETUP_VERSION + 1);
    json_decref(body);
    assert_int_equal(pthread_join(thread, NULL), 0);
    /* Whether the poll was parked before the commit or arrived after it, it
     * answers with exactly the new event. */
    assert_int_equal(poll_state.rc, 0);
    assert_int_equal(poll_state.status, 200);
    assert_int_equal(int_of(poll_state.body, "version"), SETUP_VERSION + 1);
    json_t *events = json_object_get(poll_state.body, "events");
    assert_seqs(events, SETUP_VERSION + 1, 1);
    assert_int_equal(int_of(json_object_get(json_array_get(events, 0), "data"), "amount"), 42);
    json_decref(poll_state.body);

    /* Nothing new within the wait: an empty page at the same version. */
    long long version = 0;
    events = events_of("?since=5&wait=1", &version);
    assert_int_equal(version, SETUP_VERSION + 1);
    assert_int_equal(json_array_size(events), 0);
    json_decref(events);
    /* The connection that waited still serves; so does the server. */
    assert_int_equal(transfer("alice", 2, "alice", "bob", 1, NULL), 200);
    events = events_of("?since=5&wait=5", &version);
    assert_seqs(events, SETUP_VERSION + 2, 1);
    json_decref(events);
    stop_server();
}

/* ---- Sync ---- */

static int sync_post(const char *client_id, const char *body, json_t **out)
{
    char headers[128] = "";
    if (client_id != NULL)
        snprintf(headers, sizeof headers, "X-Client-Id: %s\r\n", client_id);
    return test_http(&server, "POST", "/v1/sync", headers, body, out);
}

static const json_t *result_at(const json_t *body, size_t index)
{
    assert_string_equal(text_of(body, "type"), "sync_result");
    const json_t *result = json_array_get(json_object_get(body, "results"), index);
    assert_non_null(result);
    assert_int_equal(int_of(result, "client_seq") > 0, 1);
    return result;
}

static void test_sync(void **state)
{
    (void)state;
    setup_alice_and_bob();
    json_t *body = NULL;
    /* Not atomic: each on its own, in order. */
    const char *mixed =
        "{\"proposals\":["
        "{\"client_seq\":1,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"alice\",\"to\":\"bob\",\"amount\":100}},"
        "{\"client_seq\":2,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"alice\",\"to\":\"bob\",\"amount\":5000}},"
        "{\"client_seq\":3,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"alice\",\"to\":\"bob\",\"amount\":50}}]}";
    assert_int_equal(sync_post("alice", mixed, &body), 200);
    assert_int_equal(json_array_size(json_object_get(body, "results")), 3);
    assert_string_equal(text_of(result_at(body, 0), "status"), "committed");
    assert_int_equal(int_of(result_at(body, 0), "seq"), SETUP_VERSION + 1);
    assert_string_equal(text_of(result_at(body, 1), "status"), "rejected");
    assert_string_equal(text_of(result_at(body, 1), "code"), "INSUFFICIENT_FUNDS");
    assert_string_equal(text_of(result_at(body, 2), "status"), "committed");
    assert_int_equal(int_of(result_at(body, 2), "seq"), SETUP_VERSION + 2);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(int_of(result_at(body, i), "client_seq"), (long long)i + 1);
    json_decref(body);
    assert_int_equal(balance_of("alice"), SETUP_BALANCE - 150);
    assert_int_equal(balance_of("bob"), SETUP_BALANCE + 150);

    /* Atomic: one rejection rejects all; the others are ABORTED. */
    long long version = 0;
    json_t *before = state_of(STREAM, &version);
    const char *atomic =
        "{\"atomic\":true,\"proposals\":["
        "{\"client_seq\":4,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"alice\",\"to\":\"bob\",\"amount\":10}},"
        "{\"client_seq\":5,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"alice\",\"to\":\"bob\",\"amount\":9999}},"
        "{\"client_seq\":6,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"bob\",\"to\":\"alice\",\"amount\":20}}]}";
    for (int round = 0; round < 2; round++) { /* a resend is answered alike */
        assert_int_equal(sync_post("alice", atomic, &body), 200);
        assert_int_equal(json_array_size(json_object_get(body, "results")), 3);
        assert_string_equal(text_of(result_at(body, 0), "code"), "ABORTED");
        assert_string_equal(text_of(result_at(body, 1), "code"), "INSUFFICIENT_FUNDS");
        assert_string_equal(text_of(result_at(body, 2), "code"), "ABORTED");
        for (size_t i = 0; i < 3; i++)
            assert_string_equal(text_of(result_at(body, i), "status"), "rejected");
        json_decref(body);
    }
    long long after_version = 0;
    json_t *after = state_of(STREAM, &after_version);
    assert_int_equal(after_version, version);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);

    /* An atomic sync that holds: all committed, consecutive seqs. */
    const char *atomic_ok =
        "{\"atomic\":true,\"proposals\":["
        "{\"client_seq\":7,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"alice\",\"to\":\"bob\",\"amount\":1}},"
        "{\"client_seq\":8,\"stream\":\"" STREAM "\",\"action\":\"transfer\",\"args\":"
        "{\"from\":\"alice\",\"to\":\"bob\",\"amount\":2}}]}";
    assert_int_equal(sync_post("alice", atomic_ok, &body), 200);
    assert_string_equal(text_of(result_at(body, 0), "status"), "committed");
    assert_string_equal(text_of(result_at(body, 1), "status"), "committed");
    assert_int_equal(int_of(result_at(body, 0), "seq"), version + 1);
    assert_int_equal(int_of(result_at(body, 1), "seq"), version + 2);
    json_decref(body);
    assert_int_equal(balance_of("alice"), SETUP_BALANCE - 153);

    /* Refusals of the request itself. */
    assert_bad("POST", "/v1/sync", NULL, mixed, 400, "INVALID_ARGUMENT", "X-Client-Id");
    assert_bad("POST", "/v1/sync", "X-Client-Id: alice\r\n", "{\"proposals\":[]}", 400,
               "INVALID_ARGUMENT", NULL);
    assert_bad("POST", "/v1/sync", "X-Client-Id: alice\r\n", "{\"proposals\":[", 400, "MALFORMED",
               NULL);
    assert_bad("POST", "/v1/sync", "X-Client-Id: alice\r\n",
               "{\"type\":\"sync\",\"proposals\":[{\"client_seq\":9,\"stream\":\"" STREAM
               "\",\"action\":\"transfer\",\"args\":{}}]}",
               400, "INVALID_ARGUMENT", "type");
    assert_bad("POST", "/v1/sync", "X-Client-Id: alice\r\n",
               "{\"proposals\":[{\"client_seq\":9,\"stream\":\"" STREAM
               "\",\"action\":\"transfer\",\"args\":{},\"client_id\":\"bob\"}]}",
               400, "INVALID_ARGUMENT", "proposals[0].client_id");
    assert_int_equal(version_of(), version + 2);
    stop_server();
}

/* ---- Probes ---- */

/* The value of the series (name with its labels) in Prometheus text; -1
 * when it is absent. */
static long long metric(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, series, len) == 0 && line[len] == ' ') {
            char *end = NULL;
            long long value = strtoll(line + len + 1, &end, 10);
            assert_true(end != line + len + 1 && (*end == '\n' || *end == '\0'));
            return value;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return -1;
}

/* GET /metrics: the text (malloc'ed). */
static char *metrics_text(void)
{
    arb_http_response response;
    request("GET", "/metrics", NULL, &response);
    assert_int_equal(response.status, 200);
    char type[128];
    assert_non_null(arb_http_header(&response, "Content-Type", type, sizeof type));
    assert_non_null(strstr(type, "text/plain"));
    char *text = strdup(response.body);
    assert_non_null(text);
    arb_http_response_clear(&response);
    return text;
}

static void test_healthz_and_metrics(void **state)
{
    (void)state;
    json_t *body = NULL;
    assert_int_equal(test_http(&server, "GET", "/healthz", NULL, NULL, &body), 200);
    assert_int_equal(json_object_size(body), 1);
    assert_string_equal(text_of(body, "status"), "ok");
    json_decref(body);
    char *text = metrics_text();
    assert_int_equal(metric(text, "arbiter_proposals_total{outcome=\"committed\"}"), 0);
    assert_int_equal(metric(text, "arbiter_proposals_total{outcome=\"rejected\"}"), 0);
    free(text);

    setup_alice_and_bob(); /* 4 commits over the WebSocket */
    long long commits = SETUP_VERSION;
    for (uint64_t key = 1; key <= 3; key++, commits++)
        assert_int_equal(transfer("alice", key, "alice", "bob", 10, NULL), 200);
    assert_int_equal(transfer("alice", 4, "alice", "bob", 99999, NULL), 422);
    assert_int_equal(transfer("alice", 5, "bob", "alice", 1, NULL), 403);
    assert_int_equal(transfer("bob", 1, "bob", "alice", 99999, NULL), 422);
    /* Refused before the engine: not proposals. */
    assert_int_equal(transfer("alice", 0, "alice", "bob", 10, NULL), 400);
    assert_int_equal(command("alice", 6, STREAM, "{", NULL), 400);

    text = metrics_text();
    assert_int_equal(metric(text, "arbiter_proposals_total{outcome=\"committed\"}"), commits);
    assert_int_equal(metric(text, "arbiter_proposals_total{outcome=\"rejected\"}"), 3);
    assert_int_equal(metric(text, "arbiter_rejections_total{code=\"INSUFFICIENT_FUNDS\"}"), 2);
    assert_int_equal(metric(text, "arbiter_rejections_total{code=\"FORBIDDEN\"}"), 1);
    assert_int_equal(metric(text, "arbiter_rejections_total{code=\"VERSION_CONFLICT\"}"), -1);
    assert_int_equal(metric(text, "arbiter_replays_total"), 0);
    assert_int_equal(metric(text, "arbiter_batch_proposals_sum"), commits + 3);
    assert_true(metric(text, "arbiter_connections_total") >= 9);
    assert_true(metric(text, "arbiter_frames_refused_total") >= 2);
    assert_true(metric(text, "arbiter_commit_seconds_count") >= 1);
    assert_int_equal(metric(text, "arbiter_overloaded_total"), 0);
    free(text);

    /* A replay is counted as a replay, and as the outcome it answers with. */
    assert_int_equal(transfer("alice", 1, "alice", "bob", 10, NULL), 200);
    text = metrics_text();
    assert_int_equal(metric(text, "arbiter_replays_total"), 1);
    assert_int_equal(metric(text, "arbiter_proposals_total{outcome=\"committed\"}"), commits + 1);
    free(text);
    assert_int_equal(version_of(), commits);
    stop_server();
}

/* ---- Malformed requests on the raw socket ---- */

/* How long a raw exchange may take: RAW_TIMEOUT_MS, or RAW_HELD_TIMEOUT_MS
 * for the requests libwebsockets holds until its own timeout. */
static int raw_timeout_ms = RAW_TIMEOUT_MS;

typedef struct raw_case {
    const char *name;
    const char *bytes; /* NULL: the 64 KiB header built by the test */
    size_t len;        /* 0: strlen(bytes) */
    bool half_close;   /* shut our side after sending (a client that gives up) */
} raw_case;

/* Send bytes on a fresh connection, shut the writing side, read to the end
 * (bounded). Returns the status of an answer, 0 when the server closed
 * without one, -1 when it neither answered nor closed in time. */
static int raw_half_close(const void *bytes, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server.port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&address, sizeof address), 0);
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, (const char *)bytes + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server gave up first: fine */
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char answer[512];
    size_t got = 0;
    int result = -1;
    for (int waited_ms = 0; waited_ms < raw_timeout_ms;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 100);
        waited_ms += 100;
        if (ready <= 0)
            continue;
        ssize_t n = recv(fd, answer + got, sizeof answer - 1 - got, 0);
        if (n > 0)
            got += (size_t)n;
        if (n > 0 && got < sizeof answer - 1)
            continue; /* read on to the close; the status line is at the start */
        answer[got] = '\0';
        int status = 0;
        result = sscanf(answer, "HTTP/1.%*d %d", &status) == 1 ? status : 0;
        break;
    }
    close(fd);
    return result;
}

/* One malformed request: the status of the answer, 0 when the connection
 * was closed without one, -1 when nothing happened within RAW_TIMEOUT_MS. */
static int raw_exchange(const void *bytes, size_t len, bool half_close)
{
    if (half_close)
        return raw_half_close(bytes, len);
    arb_http_response response;
    int rc = arb_http_raw("127.0.0.1", server.port, bytes, len, raw_timeout_ms, &response);
    if (rc == ARB_ETIMEOUT)
        return -1;
    if (rc != 0) {
        assert_true(rc == ARB_ECLOSED || rc == ARB_EMALFORMED || rc == ARB_EIO);
        return 0;
    }
    int status = response.status;
    arb_http_response_clear(&response);
    return status;
}

/* After each malformed request the server still serves. */
static void assert_still_serving(uint64_t key)
{
    json_t *body = NULL;
    assert_int_equal(test_http(&server, "GET", "/healthz", NULL, NULL, &body), 200);
    assert_string_equal(text_of(body, "status"), "ok");
    json_decref(body);
    assert_int_equal(transfer("alice", key, "alice", "bob", 1, &body), 200);
    assert_string_equal(text_of(body, "type"), "committed");
    json_decref(body);
}

/* Send each case on its own connection; after each, the server must still
 * serve (asserted at once). Returns the cases that were neither refused with
 * a 4xx nor closed within RAW_TIMEOUT_MS, one per line ("" when none), in
 * failures[0..size). *key_inout: alice's next Idempotency-Key. */
static void run_raw_cases(const raw_case *cases, size_t count, uint64_t *key_inout, char *failures,
                          size_t size)
{
    size_t huge_len = 64 * 1024;
    char *huge = malloc(huge_len + 128);
    assert_non_null(huge);
    int head = snprintf(huge, 128, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ");
    memset(huge + head, 'h', huge_len);
    memcpy(huge + head + huge_len, "\r\n\r\n", 5);
    size_t used = 0;
    failures[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        const raw_case *c = &cases[i];
        const char *bytes = c->bytes != NULL ? c->bytes : huge;
        size_t len = c->len != 0 ? c->len : strlen(bytes);
        int status = raw_exchange(bytes, len, c->half_close);
        /* 0: the server closed the connection, which is an answer too. */
        if (status < 0)
            used += (size_t)snprintf(failures + used, size - used,
                                     "\n  %s: neither answered nor closed within %d ms", c->name,
                                     raw_timeout_ms);
        else if (status != 0 && (status < 400 || status > 499))
            used += (size_t)snprintf(failures + used, size - used, "\n  %s: answered %d", c->name,
                                     status);
        ARB_ASSERT(used < size);
        assert_still_serving((*key_inout)++);
    }
    free(huge);
}

#define POST_HEAD                                                                                  \
    "POST /v1/streams/" STREAM "/commands HTTP/1.1\r\nHost: x\r\nX-Client-Id: alice\r\n"           \
    "Idempotency-Key: 999\r\n"

static void test_malformed_raw_requests(void **state)
{
    (void)state;
    setup_alice_and_bob();
    static const char nul_in_path[] = "GET /heal\0thz HTTP/1.1\r\nHost: x\r\n\r\n";
    const raw_case cases[] = {
        {"garbage", "\x16\x03\x01\x02\x00\x01\xff\xfe garbage \x7f\r\n\r\n", 0, false},
        {"request line without version", "GET /healthz\r\n\r\n", 0, false},
        {"request line without version, API", "GET /v1/streams\r\nHost: x\r\n\r\n", 0, false},
        {"unknown version", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 0, false},
        {"junk after the version", "GET /healthz HTTP/1.1 junk\r\nHost: x\r\n\r\n", 0, false},
        {"enormous header (64 KiB)", NULL, 0, false},
        {"body shorter than Content-Length, then close",
         POST_HEAD "Content-Length: 100\r\n\r\n{\"action\":", 0, true},
        {"negative Content-Length", POST_HEAD "Content-Length: -5\r\n\r\n{\"action\":1}", 0, false},
        {"non-numeric Content-Length", POST_HEAD "Content-Length: ten\r\n\r\n{\"action\":1}", 0,
         false},
        {"Content-Length with a suffix", POST_HEAD "Content-Length: 12x\r\n\r\n{\"action\":1}", 0,
         false},
        {"two Content-Lengths",
         POST_HEAD "Content-Length: 2\r\nContent-Length: 12\r\n\r\n{\"action\":1}", 0, false},
        {"Content-Length beyond 2^64", POST_HEAD "Content-Length: 99999999999999999999999\r\n\r\n",
         0, false},
        {"chunked body", POST_HEAD "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"act\r\n0\r\n\r\n", 0,
         false},
        {"unknown method", "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, false},
        {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, false},
        {"NUL in the path", nul_in_path, sizeof nul_in_path - 1, false},
        {"path of 8 KiB", NULL, 0, false},
        {"header without colon, then close",
         "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 0, true},
    };
    raw_case all[sizeof cases / sizeof cases[0]];
    memcpy(all, cases, sizeof cases);
    /* The long path replaces the second NULL. */
    char *long_path = malloc(8192 + 64);
    assert_non_null(long_path);
    memcpy(long_path, "GET /v1/streams/ledger:", 23);
    memset(long_path + 23, 'a', 8192);
    memcpy(long_path + 23 + 8192, " HTTP/1.1\r\nHost: x\r\n\r\n", 23);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i].name, "path of 8 KiB") == 0)
            all[i].bytes = long_path;
    uint64_t key = 1;
    char failures[4096];
    run_raw_cases(all, sizeof all / sizeof all[0], &key, failures, sizeof failures);
    free(long_path);
    if (failures[0] != '\0')
        fail_msg("malformed requests neither refused with a 4xx nor closed:%s", failures);
    assert_int_equal(balance_of("bob"), SETUP_BALANCE + (long long)key - 1);
    stop_server();
}

/* Requests that libwebsockets holds on to without a word: no callback
 * reaches src/net/http.c, the connection gets no answer and stays open until
 * lws's timeout (timeout_secs, 10 s, src/net/server.c) closes it. That bound
 * is what is checked here (a hang would fail), and that the server goes on
 * serving everyone else meanwhile. Each case says what lws does with it. */
static void test_malformed_raw_requests_held_by_lws(void **state)
{
    (void)state;
    setup_alice_and_bob();
    static const char nul_in_header[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    const raw_case cases[] = {
        /* lws takes the line for the start of a header name and waits for
         * its colon. */
        {"header line without colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 0,
         false},
        /* lws neither refuses nor dispatches it: it waits for more. */
        {"NUL in a header value", nul_in_header, sizeof nul_in_header - 1, false},
        /* An empty POST (answered 400 when alone) with a pipelined request
         * behind it: lws's explicit-zero Content-Length path leaves the
         * parser "complete", so the bytes behind it make lws dispatch the
         * same POST again (rebinding the protocol, which drops the first
         * answer), and nothing is ever answered. */
        {"empty POST, then a pipelined GET",
         POST_HEAD "Content-Length: 0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, false},
    };
    uint64_t key = 1;
    char failures[2048];
    raw_timeout_ms = RAW_HELD_TIMEOUT_MS;
    run_raw_cases(cases, sizeof cases / sizeof cases[0], &key, failures, sizeof failures);
    raw_timeout_ms = RAW_TIMEOUT_MS;
    if (failures[0] != '\0')
        fail_msg("held open by libwebsockets beyond its timeout:%s", failures);
    stop_server();
}

/* ---- Randomized concurrent transfers ---- */

#define RANDOM_ACCOUNTS 4
#define RANDOM_THREADS 2
#define RANDOM_TRANSFERS_PER_THREAD 100
#define RANDOM_BALANCE 1000

static const char *const random_owners[RANDOM_ACCOUNTS] = {"u0", "u1", "u2", "u3"};

typedef struct transfer_thread {
    int index;
    uint64_t rng;
    char base_url[64];
    /* What the thread saw. */
    long long seqs[RANDOM_TRANSFERS_PER_THREAD]; /* of its committed transfers */
    size_t committed;
    size_t insufficient;
    size_t replays;
    size_t unexpected;
    char first_unexpected[512];
} transfer_thread;

static void note_unexpected(transfer_thread *thread, const char *what, const char *detail)
{
    if (thread->unexpected++ == 0)
        snprintf(thread->first_unexpected, sizeof thread->first_unexpected, "%s: %.400s", what,
                 detail != NULL ? detail : "");
}

/* One POST; the parsed answer (NULL on a transport failure, noted). */
static json_t *post_transfer(transfer_thread *thread, const char *client_id, uint64_t key,
                             const char *body, int *status_out)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/streams/" STREAM "/commands", thread->base_url);
    char headers[128];
    snprintf(headers, sizeof headers, "X-Client-Id: %s\r\nIdempotency-Key: %llu\r\n", client_id,
             (unsigned long long)key);
    arb_http_response response;
    int rc = arb_http_request(url, "POST", headers, body, strlen(body), 10000, &response);
    if (rc != 0) {
        note_unexpected(thread, "request failed", arb_err_name(rc));
        return NULL;
    }
    *status_out = response.status;
    json_error_t error;
    json_t *answer = json_loadb(response.body, response.body_len, 0, &error);
    if (answer == NULL)
        note_unexpected(thread, "not JSON", response.body);
    arb_http_response_clear(&response);
    return answer;
}

static void *transfer_thread_main(void *user)
{
    transfer_thread *thread = user;
    uint64_t keys[2] = {0, 0}; /* per owned account: its owner's last key */
    for (int i = 0; i < RANDOM_TRANSFERS_PER_THREAD; i++) {
        /* Each thread spends from its own two accounts (their owners
         * propose), into any other account. */
        int mine = (int)test_random_below(&thread->rng, 2);
        int from = thread->index * 2 + mine;
        int to = (from + 1 + (int)test_random_below(&thread->rng, RANDOM_ACCOUNTS - 1)) %
                 RANDOM_ACCOUNTS;
        long long amount = 1 + (long long)test_random_below(&thread->rng, RANDOM_BALANCE * 3 / 2);
        char body[256];
        snprintf(body, sizeof body,
                 "{\"action\":\"transfer\",\"args\":{\"from\":\"%s\",\"to\":\"%s\","
                 "\"amount\":%lld}}",
                 random_owners[from], random_owners[to], amount);
        uint64_t key = ++keys[mine];
        bool resend = test_random_below(&thread->rng, 8) == 0;
        long long first_seq = -1;
        char first_code[64] = "";
        for (int attempt = 0; attempt < (resend ? 2 : 1); attempt++) {
            int status = 0;
            json_t *answer = post_transfer(thread, random_owners[from], key, body, &status);
            if (answer == NULL)
                continue;
            const char *type = json_string_value(json_object_get(answer, "type"));
            bool replay = json_is_true(json_object_get(answer, "replay"));
            if (replay != (attempt == 1)) {
                note_unexpected(thread, "replay flag wrong", body);
            } else if (status == 200 && type != NULL && strcmp(type, "committed") == 0) {
                long long seq = (long long)json_integer_value(json_object_get(answer, "seq"));
                if (attempt == 0)
                    thread->seqs[thread->committed++] = first_seq = seq;
                else if (seq != first_seq)
                    note_unexpected(thread, "replay with another seq", body);
                else
                    thread->replays++;
            } else if (status == 422 && type != NULL && strcmp(type, "rejected") == 0 &&
                       strcmp(json_string_value(json_object_get(answer, "code")),
                              "INSUFFICIENT_FUNDS") == 0) {
                if (attempt == 0) {
                    thread->insufficient++;
                    snprintf(first_code, sizeof first_code, "INSUFFICIENT_FUNDS");
                } else if (first_code[0] == '\0') {
                    note_unexpected(thread, "replay changed the outcome", body);
                } else {
                    thread->replays++;
                }
            } else {
                char *dump = json_dumps(answer, JSON_COMPACT);
                note_unexpected(thread, "unexpected answer", dump);
                free(dump);
            }
            json_decref(answer);
        }
    }
    return NULL;
}

static int compare_seq(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* Every event of the stream, read in pages of page_limit. */
static json_t *all_events(long long version, int page_limit)
{
    json_t *all = json_array();
    long long since = 0;
    for (int page = 0; page <= version / page_limit + 1; page++) {
        char query[64];
        snprintf(query, sizeof query, "?since=%lld&limit=%d", since, page_limit);
        long long page_version = 0;
        json_t *events = events_of(query, &page_version);
        assert_int_equal(page_version, version);
        size_t count = json_array_size(events);
        assert_true(count <= (size_t)page_limit);
        assert_seqs(events, since + 1, count);
        json_array_extend(all, events);
        json_decref(events);
        if (count == 0)
            break;
        since += (long long)count;
    }
    assert_int_equal(json_array_size(all), version);
    return all;
}

static void test_random_transfers(void **state)
{
    (void)state;
    uint64_t seed = test_seed("http random transfers");
    test_ledger_setup(&server, STREAM, random_owners, RANDOM_ACCOUNTS, RANDOM_BALANCE);
    long long setup_version = RANDOM_ACCOUNTS * 2;
    assert_int_equal(version_of(), setup_version);

    static transfer_thread threads[RANDOM_THREADS];
    pthread_t ids[RANDOM_THREADS];
    for (int t = 0; t < RANDOM_THREADS; t++) {
        memset(&threads[t], 0, sizeof threads[t]);
        threads[t].index = t;
        threads[t].rng = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)t + 1;
        snprintf(threads[t].base_url, sizeof threads[t].base_url, "%s", server.http_url);
        assert_int_equal(pthread_create(&ids[t], NULL, transfer_thread_main, &threads[t]), 0);
    }
    long long seqs[RANDOM_THREADS * RANDOM_TRANSFERS_PER_THREAD];
    size_t committed = 0;
    for (int t = 0; t < RANDOM_THREADS; t++) {
        assert_int_equal(pthread_join(ids[t], NULL), 0);
        if (threads[t].unexpected > 0)
            fail_msg("thread %d: %zu unexpected answers; first: %s", t, threads[t].unexpected,
                     threads[t].first_unexpected);
        assert_int_equal(threads[t].committed + threads[t].insufficient,
                         RANDOM_TRANSFERS_PER_THREAD);
        memcpy(seqs + committed, threads[t].seqs, threads[t].committed * sizeof seqs[0]);
        committed += threads[t].committed;
    }
    printf("http random transfers: %zu committed, %zu refused\n", committed,
           (size_t)(RANDOM_THREADS * RANDOM_TRANSFERS_PER_THREAD) - committed);
    /* Every committed answer has its own seq. */
    qsort(seqs, committed, sizeof seqs[0], compare_seq);
    for (size_t i = 1; i < committed; i++)
        assert_true(seqs[i - 1] < seqs[i]);

    /* Money is conserved, and the state is the log replayed. */
    long long version = 0;
    json_t *final = state_of(STREAM, &version);
    assert_int_equal(version, setup_version + (long long)committed);
    json_t *events = all_events(version, 1000);
    json_t *paged = all_events(version, 37);
    assert_true(json_equal(events, paged));
    json_decref(paged);
    long long balances[RANDOM_ACCOUNTS];
    for (int a = 0; a < RANDOM_ACCOUNTS; a++)
        balances[a] = RANDOM_BALANCE;
    long long transferred_seqs[RANDOM_THREADS * RANDOM_TRANSFERS_PER_THREAD];
    size_t transferred = 0;
    for (size_t i = (size_t)setup_version; i < json_array_size(events); i++) {
        const json_t *event = json_array_get(events, i);
        assert_string_equal(text_of(event, "type"), "transferred");
        assert_true(transferred < committed);
        transferred_seqs[transferred++] = int_of(event, "seq");
        const json_t *data = json_object_get(event, "data");
        for (int a = 0; a < RANDOM_ACCOUNTS; a++) {
            if (strcmp(text_of(data, "from"), random_owners[a]) == 0)
                balances[a] -= int_of(data, "amount");
            if (strcmp(text_of(data, "to"), random_owners[a]) == 0)
                balances[a] += int_of(data, "amount");
        }
        assert_string_equal(text_of(event, "client_id"), text_of(data, "from"));
    }
    assert_int_equal(transferred, committed);
    for (size_t i = 0; i < committed; i++)
        assert_int_equal(transferred_seqs[i], seqs[i]);
    long long sum = 0;
    json_t *accounts = json_object_get(final, "accounts");
    for (int a = 0; a < RANDOM_ACCOUNTS; a++) {
        json_t *account = json_object_get(accounts, random_owners[a]);
        assert_int_equal(int_of(account, "balance"), balances[a]);
        assert_true(int_of(account, "balance") >= 0);
        assert_int_equal(int_of(account, "held"), 0);
        sum += int_of(account, "balance");
    }
    assert_int_equal(sum, RANDOM_ACCOUNTS * RANDOM_BALANCE);
    json_decref(events);
    json_decref(final);

    stop_server();
    const char *const argv[] = {"arbiter", "verify", "--data", dir, NULL};
    char *out = NULL;
    assert_int_equal(test_run_tool(&out, argv), 0);
    json_error_t error;
    json_t *report = json_loads(out, 0, &error);
    free(out);
    assert_true(json_is_true(json_object_get(report, "ok")));
    assert_int_equal(int_of(report, "events"), version);
    json_decref(report);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_command_committed_then_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_etag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_since_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_long_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_and_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_raw_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_raw_requests_held_by_lws, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_transfers, setup, teardown),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
