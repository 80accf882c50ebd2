/*
 * wire_test.c - the WebSocket protocol against the real arbiterd.
 *
 * Each test starts arbiterd on a free loopback port with a fresh data
 * directory, speaks real WebSocket to it (src/net/client.h) and stops it
 * with SIGTERM, which must exit 0. What is checked is docs/protocol.md,
 * "WebSocket messages": sessions and refusals, outcomes and replays,
 * pipelining order, subscriptions without gap or duplicate across a
 * concurrent writer, a race for the same funds, sync batches, the idle
 * timeout, and a shutdown with proposals in flight that loses nothing it
 * acknowledged.
 */
#include "server.h"
#include "support.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arbiter/limits.h"

typedef struct fixture {
    char *dir;
    char data[1100];
    test_server server;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_mkdtemp("wire");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->server.pid > 0)
        test_server_stop(&f->server, SIGKILL);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static void start(fixture *f, const char *const extra[])
{
    test_server_start(&f->server, f->data, extra);
}

static void stop(fixture *f)
{
    assert_int_equal(test_server_stop(&f->server, SIGTERM), 0);
}

static const char *type_of(const json_t *message)
{
    const char *type = json_string_value(json_object_get(message, "type"));
    assert_non_null(type);
    return type;
}

static json_int_t int_of(const json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    if (!json_is_integer(value))
        fail_msg("%s is not an integer", key);
    return json_integer_value(value);
}

static json_t *transfer_args(const char *from, const char *to, long long amount)
{
    return json_pack("{s:s, s:s, s:I}", "from", from, "to", to, "amount", (json_int_t)amount);
}

static void send_transfer(arb_ws_client *client, uint64_t client_seq, const char *stream,
                          const char *from, const char *to, long long amount)
{
    test_ws_send(client, "{s:s, s:I, s:s, s:s, s:o}", "type", "propose", "client_seq",
                 (json_int_t)client_seq, "stream", stream, "action", "transfer", "args",
                 transfer_args(from, to, amount));
}

/* The balance of an account through GET /v1/streams/{stream}. */
static long long balance(const test_server *server, const char *stream, const char *account,
                         uint64_t *version_out)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/streams/%s", stream);
    json_t *body = NULL;
    assert_int_equal(test_http(server, "GET", path, NULL, NULL, &body), 200);
    json_t *accounts = json_object_get(json_object_get(body, "state"), "accounts");
    long long value = int_of(json_object_get(accounts, account), "balance");
    if (version_out != NULL)
        *version_out = (uint64_t)int_of(body, "version");
    json_decref(body);
    return value;
}

/* Refused frames get an `error` with the code, and the session goes on. */
static void test_session_and_refusals(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    arb_ws_client *client = NULL;
    assert_int_equal(arb_ws_connect(f->server.ws_url, 5000, &client), 0);
    test_ws_send(client, "{s:s, s:s}", "type", "ping", "nonce", "n1");
    json_t *pong = test_ws_expect(client, "pong", 5000);
    assert_string_equal(json_string_value(json_object_get(pong, "nonce")), "n1");
    json_decref(pong);
    send_transfer(client, 1, "ledger:x", "a", "b", 1);
    json_t *error = test_ws_expect(client, "error", 5000);
    assert_string_equal(json_string_value(json_object_get(error, "code")), "NOT_AUTHENTICATED");
    json_decref(error);
    test_ws_send(client, "{s:s, s:i, s:s}", "type", "hello", "proto", 1, "client_id", "alice");
    json_t *welcome = test_ws_expect(client, "welcome", 5000);
    assert_int_equal(int_of(welcome, "proto"), 1);
    assert_true(int_of(welcome, "server_time") > 1600000000000LL);
    assert_int_equal(int_of(json_object_get(welcome, "limits"), "frame_bytes"),
                     ARB_WIRE_FRAME_BYTES_MAX);
    json_decref(welcome);

    static const struct {
        const char *frame;
        const char *code;
        const char *field; /* NULL: not checked */
    } refused[] = {
        {"{bad json", "MALFORMED", NULL},
        {"[1,2,3]", "MALFORMED", NULL},
        {"{\"no_type\":1}", "MALFORMED", "type"},
        {"{\"type\":7}", "MALFORMED", "type"},
        {"{\"type\":\"launch\"}", "UNKNOWN_MESSAGE", "type"},
        {"{\"type\":\"propose\",\"client_seq\":0,\"stream\":\"ledger:x\",\"action\":\"a\","
         "\"args\":{}}",
         "INVALID_ARGUMENT", "client_seq"},
        {"{\"type\":\"propose\",\"client_seq\":\"1\",\"stream\":\"ledger:x\",\"action\":\"a\","
         "\"args\":{}}",
         "INVALID_ARGUMENT", "client_seq"},
        {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"ledger:x\",\"action\":\"a\","
         "\"args\":{\"x\":1.5}}",
         "INVALID_ARGUMENT", "args"},
        {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"ledger:x\",\"action\":\"a\","
         "\"args\":{},\"client_id\":\"mallory\"}",
         "INVALID_ARGUMENT", "client_id"},
        {"{\"type\":\"subscribe\"}", "INVALID_ARGUMENT", "stream"},
        {"{\"type\":\"sync\",\"proposals\":[]}", "INVALID_ARGUMENT", "proposals"},
        {"{\"type\":\"sync\",\"proposals\":[{\"client_seq\":1}]}", "INVALID_ARGUMENT", NULL},
        {"{\"type\":\"hello\",\"proto\":1,\"client_id\":\"alice\"}", "INVALID_ARGUMENT", "type"},
        {"{\"type\":\"unsubscribe\",\"stream\":\"ledger:none\"}", "INVALID_ARGUMENT", "stream"},
        {"{\"type\":\"ping\",\"nonce\":\"\"}", "INVALID_ARGUMENT", "nonce"},
        {"\"just a string\"", "MALFORMED", NULL},
        {"{\"type\":\"ping\"}{\"type\":\"ping\"}", "MALFORMED", NULL},
        {"{\"type\":\"ping\",\"type\":\"ping\"}", "MALFORMED", NULL},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(arb_ws_send(client, refused[i].frame, strlen(refused[i].frame)), 0);
        error = test_ws_expect(client, "error", 5000);
        const char *code = json_string_value(json_object_get(error, "code"));
        if (code == NULL || strcmp(code, refused[i].code) != 0)
            fail_msg("frame %zu %s: expected %s, got %s", i, refused[i].frame, refused[i].code,
                     code);
        if (refused[i].field != NULL)
            assert_string_equal(json_string_value(json_object_get(error, "field")),
                                refused[i].field);
        assert_true(strlen(json_string_value(json_object_get(error, "message"))) > 0);
        json_decref(error);
        test_ws_send(client, "{s:s}", "type", "ping");
        json_decref(test_ws_expect(client, "pong", 5000)); /* still usable */
    }
    /* A binary frame, and one frame over the bound. */
    assert_int_equal(arb_ws_send_binary(client, "\x01\x02", 2), 0);
    error = test_ws_expect(client, "error", 5000);
    assert_string_equal(json_string_value(json_object_get(error, "code")), "MALFORMED");
    json_decref(error);
    size_t big_len = ARB_WIRE_FRAME_BYTES_MAX + 10;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    assert_int_equal(arb_ws_send(client, big, big_len), 0);
    free(big);
    error = test_ws_expect(client, "error", 10000);
    assert_string_equal(json_string_value(json_object_get(error, "code")), "TOO_LARGE");
    json_decref(error);
    test_ws_send(client, "{s:s}", "type", "ping");
    json_decref(test_ws_expect(client, "pong", 5000));
    arb_ws_close(client);

    /* An unsupported version: the error with the versions, then a close. */
    assert_int_equal(arb_ws_connect(f->server.ws_url, 5000, &client), 0);
    test_ws_send(client, "{s:s, s:i, s:s}", "type", "hello", "proto", 2, "client_id", "bob");
    error = test_ws_expect(client, "error", 5000);
    assert_string_equal(json_string_value(json_object_get(error, "code")), "UNSUPPORTED_VERSION");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(error, "versions"), 0)), 1);
    json_decref(error);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(arb_ws_recv(client, 5000, &text, &len), ARB_ECLOSED);
    char reason[128];
    assert_int_equal(arb_ws_close_status(client, reason, sizeof reason), 1002);
    arb_ws_close(client);
    stop(f);
}

/* committed, rejected with the proposer's snapshot, and the same outcomes
 * again after a reconnect, marked replay. */
static void test_outcomes_and_replay(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, "ledger:main", owners, 2, 100);
    arb_ws_client *alice = test_ws_open(&f->server, "alice");
    json_t *committed =
        test_ws_propose(alice, 1, "ledger:main", "transfer", transfer_args("alice", "bob", 30));
    assert_string_equal(type_of(committed), "committed");
    json_int_t seq = int_of(committed, "seq");
    assert_int_equal(int_of(committed, "seq_last"), seq);
    json_t *event = json_array_get(json_object_get(committed, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(event, "type")), "transferred");
    assert_int_equal(int_of(event, "seq"), seq);
    assert_string_equal(json_string_value(json_object_get(event, "client_id")), "alice");
    assert_false(json_is_true(json_object_get(committed, "replay")));

    json_t *rejected =
        test_ws_propose(alice, 2, "ledger:main", "transfer", transfer_args("alice", "bob", 71));
    assert_string_equal(type_of(rejected), "rejected");
    assert_string_equal(json_string_value(json_object_get(rejected, "code")), "INSUFFICIENT_FUNDS");
    json_t *snapshot = json_object_get(rejected, "snapshot");
    assert_int_equal(
        int_of(json_object_get(json_object_get(snapshot, "accounts"), "alice"), "balance"), 70);
    assert_int_equal(int_of(rejected, "version"), seq);
    /* Not the owner: the server decides who may spend. */
    json_t *forbidden =
        test_ws_propose(alice, 3, "ledger:main", "transfer", transfer_args("bob", "alice", 1));
    assert_string_equal(type_of(forbidden), "rejected");
    assert_string_equal(json_string_value(json_object_get(forbidden, "code")), "FORBIDDEN");
    json_decref(forbidden);
    arb_ws_close(alice);

    alice = test_ws_open(&f->server, "alice");
    json_t *again =
        test_ws_propose(alice, 1, "ledger:main", "transfer", transfer_args("alice", "bob", 30));
    assert_string_equal(type_of(again), "committed");
    assert_true(json_is_true(json_object_get(again, "replay")));
    assert_int_equal(int_of(again, "seq"), seq);
    json_decref(again);
    again = test_ws_propose(alice, 2, "ledger:main", "transfer", transfer_args("alice", "bob", 71));
    assert_string_equal(json_string_value(json_object_get(again, "code")), "INSUFFICIENT_FUNDS");
    assert_true(json_is_true(json_object_get(again, "replay")));
    json_decref(again);
    /* The same key with other content. */
    again = test_ws_propose(alice, 1, "ledger:main", "transfer", transfer_args("alice", "bob", 31));
    assert_string_equal(json_string_value(json_object_get(again, "code")),
                        "IDEMPOTENCY_KEY_REUSED");
    json_decref(again);
    assert_int_equal(balance(&f->server, "ledger:main", "alice", NULL), 70);
    json_decref(committed);
    json_decref(rejected);
    arb_ws_close(alice);
    stop(f);
}

/* Many proposals in flight on one connection: answered in order, the
 * committed ones with contiguous seqs. */
static void test_pipelining_keeps_order(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, "ledger:main", owners, 2, 1000000);
    uint64_t version = 0;
    balance(&f->server, "ledger:main", "alice", &version);
    arb_ws_client *alice = test_ws_open(&f->server, "alice");
    enum { COUNT = 1500 }; /* more than the 1024 window: reading pauses, then resumes */
    for (uint64_t i = 1; i <= COUNT; i++)
        send_transfer(alice, i, "ledger:main", "alice", "bob", i % 7 == 0 ? 2000000 : 1);
    uint64_t expected_seq = version + 1;
    long long moved = 0;
    for (uint64_t i = 1; i <= COUNT; i++) {
        json_t *answer = test_ws_recv(alice, 20000);
        assert_int_equal(int_of(answer, "client_seq"), i);
        if (i % 7 == 0) {
            assert_string_equal(type_of(answer), "rejected");
        } else {
            assert_string_equal(type_of(answer), "committed");
            assert_int_equal(int_of(answer, "seq"), expected_seq++);
            moved++;
        }
        json_decref(answer);
    }
    assert_int_equal(balance(&f->server, "ledger:main", "bob", NULL), 1000000 + moved);
    arb_ws_close(alice);
    stop(f);
}

typedef struct writer {
    const test_server *server;
    int count;
} writer;

static void *write_transfers(void *user)
{
    writer *w = user;
    arb_ws_client *client = test_ws_open(w->server, "alice");
    for (int i = 1; i <= w->count; i++)
        send_transfer(client, (uint64_t)i, "ledger:main", "alice", "bob", 1);
    for (int i = 1; i <= w->count; i++)
        json_decref(test_ws_recv(client, 20000));
    arb_ws_close(client);
    return NULL;
}

/* Read a subscription until seq reaches last; check every seq after from
 * arrives once, in order. Returns the number of events seen. */
static uint64_t follow(arb_ws_client *client, uint64_t from, uint64_t last)
{
    uint64_t at = from;
    while (at < last) {
        json_t *patch = test_ws_expect(client, "patch", 20000);
        json_t *events = json_object_get(patch, "events");
        size_t i;
        json_t *event;
        json_array_foreach (events, i, event) {
            if ((uint64_t)int_of(event, "seq") != at + 1)
                fail_msg("gap or duplicate: after %llu came %lld", (unsigned long long)at,
                         (long long)int_of(event, "seq"));
            at++;
        }
        assert_int_equal(int_of(patch, "seq"), at);
        json_decref(patch);
    }
    return at - from;
}

/* Subscribers joining while another client writes see every event after
 * their snapshot or their `since` exactly once, in order. */
static void test_subscribe_catch_up_without_gap(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, "ledger:main", owners, 2, 1000000);
    uint64_t start_version = 0;
    balance(&f->server, "ledger:main", "alice", &start_version);
    writer w = {.server = &f->server, .count = 3000};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, write_transfers, &w), 0);

    arb_ws_client *fresh = test_ws_open(&f->server, "carol");
    arb_ws_client *behind = test_ws_open(&f->server, "dave");
    arb_ws_client *current = test_ws_open(&f->server, "erin");
    test_ws_send(fresh, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:main");
    test_ws_send(behind, "{s:s, s:s, s:I}", "type", "subscribe", "stream", "ledger:main", "since",
                 (json_int_t)start_version);
    json_t *snapshot = test_ws_expect(fresh, "snapshot", 10000);
    uint64_t snapshot_seq = (uint64_t)int_of(snapshot, "seq");
    assert_true(snapshot_seq >= start_version);
    json_decref(snapshot);
    /* Catch-up: a patch from since (maybe empty), or a snapshot when far. */
    json_t *first = test_ws_recv(behind, 10000);
    uint64_t behind_at = start_version;
    if (strcmp(type_of(first), "snapshot") == 0) {
        behind_at = (uint64_t)int_of(first, "seq");
    } else {
        assert_string_equal(type_of(first), "patch");
        size_t i;
        json_t *event;
        json_array_foreach (json_object_get(first, "events"), i, event) {
            assert_int_equal(int_of(event, "seq"), behind_at + 1);
            behind_at++;
        }
        assert_int_equal(int_of(first, "seq"), behind_at);
    }
    json_decref(first);
    assert_int_equal(pthread_join(thread, NULL), 0);
    uint64_t last = 0;
    balance(&f->server, "ledger:main", "alice", &last);
    assert_int_equal(last, start_version + 3000);
    /* Up to date: an empty patch at the version. */
    test_ws_send(current, "{s:s, s:s, s:I}", "type", "subscribe", "stream", "ledger:main", "since",
                 (json_int_t)last);
    json_t *empty = test_ws_expect(current, "patch", 10000);
    assert_int_equal(json_array_size(json_object_get(empty, "events")), 0);
    assert_int_equal(int_of(empty, "seq"), last);
    json_decref(empty);
    follow(fresh, snapshot_seq, last);
    follow(behind, behind_at, last);
    /* One more commit reaches all three, once. */
    arb_ws_client *alice = test_ws_open(&f->server, "alice");
    json_decref(
        test_ws_propose(alice, 5001, "ledger:main", "transfer", transfer_args("alice", "bob", 1)));
    assert_int_equal(follow(fresh, last, last + 1), 1);
    assert_int_equal(follow(behind, last, last + 1), 1);
    assert_int_equal(follow(current, last, last + 1), 1);
    /* Unsubscribed: no more patches; a ping is answered next. */
    test_ws_send(fresh, "{s:s, s:s}", "type", "unsubscribe", "stream", "ledger:main");
    json_decref(
        test_ws_propose(alice, 5002, "ledger:main", "transfer", transfer_args("alice", "bob", 1)));
    test_ws_send(fresh, "{s:s}", "type", "ping");
    json_decref(test_ws_expect(fresh, "pong", 5000));
    arb_ws_close(alice);
    arb_ws_close(fresh);
    arb_ws_close(behind);
    arb_ws_close(current);
    stop(f);
}

/* Two connections spend the same funds at once: one wins, the other is
 * rejected with the state that beat it, and both then see the same state. */
static void test_race_for_the_same_funds(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice", "bob", "carol"};
    test_ledger_setup(&f->server, "ledger:main", owners, 3, 100);
    arb_ws_client *phone = test_ws_open(&f->server, "alice");
    arb_ws_client *laptop = test_ws_open(&f->server, "alice");
    send_transfer(phone, 1, "ledger:main", "alice", "bob", 100);
    send_transfer(laptop, 2, "ledger:main", "alice", "carol", 100);
    json_t *a = test_ws_recv(phone, 10000);
    json_t *b = test_ws_recv(laptop, 10000);
    bool a_won = strcmp(type_of(a), "committed") == 0;
    bool b_won = strcmp(type_of(b), "committed") == 0;
    assert_true(a_won != b_won);
    json_t *loser = a_won ? b : a;
    assert_string_equal(json_string_value(json_object_get(loser, "code")), "INSUFFICIENT_FUNDS");
    json_t *seen = json_object_get(json_object_get(loser, "snapshot"), "accounts");
    assert_int_equal(int_of(json_object_get(seen, "alice"), "balance"), 0);
    test_ws_send(phone, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:main");
    test_ws_send(laptop, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:main");
    json_t *s1 = test_ws_expect(phone, "snapshot", 5000);
    json_t *s2 = test_ws_expect(laptop, "snapshot", 5000);
    assert_true(json_equal(s1, s2));
    assert_true(json_equal(json_object_get(json_object_get(s1, "state"), "accounts"), seen));
    long long total = balance(&f->server, "ledger:main", "alice", NULL) +
                      balance(&f->server, "ledger:main", "bob", NULL) +
                      balance(&f->server, "ledger:main", "carol", NULL);
    assert_int_equal(total, 300);
    json_decref(a);
    json_decref(b);
    json_decref(s1);
    json_decref(s2);
    arb_ws_close(phone);
    arb_ws_close(laptop);
    stop(f);
}

static json_t *sync_item(uint64_t client_seq, const char *from, const char *to, long long amount)
{
    return json_pack("{s:I, s:s, s:s, s:o}", "client_seq", (json_int_t)client_seq, "stream",
                     "ledger:main", "action", "transfer", "args", transfer_args(from, to, amount));
}

static const char *result_code(const json_t *sync_result, size_t index)
{
    json_t *result = json_array_get(json_object_get(sync_result, "results"), index);
    if (strcmp(json_string_value(json_object_get(result, "status")), "committed") == 0)
        return "committed";
    return json_string_value(json_object_get(result, "code"));
}

/* An offline batch: in order, each on its own; or all-or-nothing. */
static void test_sync_batches(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, "ledger:main", owners, 2, 100);
    arb_ws_client *alice = test_ws_open(&f->server, "alice");
    test_ws_send(alice, "{s:s, s:[o,o,o]}", "type", "sync", "proposals",
                 sync_item(1, "alice", "bob", 60), sync_item(2, "alice", "bob", 60),
                 sync_item(3, "alice", "bob", 40));
    json_t *result = test_ws_expect(alice, "sync_result", 10000);
    assert_string_equal(result_code(result, 0), "committed");
    assert_string_equal(result_code(result, 1), "INSUFFICIENT_FUNDS");
    assert_string_equal(result_code(result, 2), "committed");
    json_decref(result);
    uint64_t version = 0;
    assert_int_equal(balance(&f->server, "ledger:main", "alice", &version), 0);

    /* Atomic: the second fails, so the first (which would pass) is not applied. */
    arb_ws_client *bob = test_ws_open(&f->server, "bob");
    for (int round = 0; round < 2; round++) { /* the second round is a resend */
        test_ws_send(bob, "{s:s, s:b, s:[o,o]}", "type", "sync", "atomic", 1, "proposals",
                     sync_item(1, "bob", "alice", 50), sync_item(2, "bob", "alice", 500));
        result = test_ws_expect(bob, "sync_result", 10000);
        assert_int_equal(json_array_size(json_object_get(result, "results")), 2);
        assert_string_equal(result_code(result, 0), "ABORTED");
        assert_string_equal(result_code(result, 1), "INSUFFICIENT_FUNDS");
        json_decref(result);
        uint64_t after = 0;
        assert_int_equal(balance(&f->server, "ledger:main", "bob", &after), 200);
        assert_int_equal(after, version);
    }
    /* Atomic and valid: all committed, contiguous. */
    test_ws_send(bob, "{s:s, s:b, s:[o,o,o]}", "type", "sync", "atomic", 1, "proposals",
                 sync_item(3, "bob", "alice", 50), sync_item(4, "bob", "alice", 50),
                 sync_item(5, "bob", "alice", 100));
    result = test_ws_expect(bob, "sync_result", 10000);
    for (size_t i = 0; i < 3; i++) {
        json_t *item = json_array_get(json_object_get(result, "results"), i);
        assert_string_equal(json_string_value(json_object_get(item, "status")), "committed");
        assert_int_equal(int_of(item, "seq"), (json_int_t)(version + 1 + i));
    }
    json_decref(result);
    assert_int_equal(balance(&f->server, "ledger:main", "alice", NULL), 200);
    arb_ws_close(alice);
    arb_ws_close(bob);
    stop(f);
}

/* One batch touching two streams: each subscriber of a stream gets that
 * stream's events, in seq order, and none of the other's. */
static void test_patches_split_by_stream(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice"};
    test_ledger_setup(&f->server, "ledger:one", owners, 1, 0);
    test_ledger_setup(&f->server, "ledger:two", owners, 1, 0);
    uint64_t one = 0, two = 0;
    balance(&f->server, "ledger:one", "alice", &one);
    balance(&f->server, "ledger:two", "alice", &two);
    arb_ws_client *both = test_ws_open(&f->server, "both");
    arb_ws_client *only_two = test_ws_open(&f->server, "only-two");
    test_ws_send(both, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:one");
    json_decref(test_ws_expect(both, "snapshot", 5000));
    test_ws_send(both, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:two");
    json_decref(test_ws_expect(both, "snapshot", 5000));
    test_ws_send(only_two, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:two");
    json_decref(test_ws_expect(only_two, "snapshot", 5000));
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    json_t *proposals = json_array();
    for (int i = 1; i <= 40; i++)
        json_array_append_new(proposals,
                              json_pack("{s:i, s:s, s:s, s:{s:s, s:i}}", "client_seq", i, "stream",
                                        i % 3 == 0 ? "ledger:one" : "ledger:two", "action",
                                        "deposit", "args", "account", "alice", "amount", i));
    test_ws_send(admin, "{s:s, s:o}", "type", "sync", "proposals", proposals);
    json_decref(test_ws_expect(admin, "sync_result", 10000));
    uint64_t seen_one = one, seen_two = two;
    while (seen_one < one + 13 || seen_two < two + 27) {
        json_t *patch = test_ws_expect(both, "patch", 10000);
        const char *stream = json_string_value(json_object_get(patch, "stream"));
        uint64_t *at = strcmp(stream, "ledger:one") == 0 ? &seen_one : &seen_two;
        size_t i;
        json_t *event;
        json_array_foreach (json_object_get(patch, "events"), i, event) {
            assert_string_equal(json_string_value(json_object_get(event, "stream")), stream);
            assert_int_equal(int_of(event, "seq"), *at + 1);
            (*at)++;
        }
        json_decref(patch);
    }
    assert_int_equal(follow(only_two, two, two + 27), 27);
    test_ws_send(only_two, "{s:s}", "type", "ping");
    json_decref(test_ws_expect(only_two, "pong", 5000)); /* nothing of ledger:one came */
    arb_ws_close(admin);
    arb_ws_close(both);
    arb_ws_close(only_two);
    stop(f);
}

/* A rejection whose snapshot would make the message larger than a frame
 * comes without it, and the session goes on. */
static void test_rejection_without_an_oversized_snapshot(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice"};
    test_ledger_setup(&f->server, "ledger:big", owners, 1, 10);
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    /* 40 x 256 accounts of about 110 bytes each: a view over 1 MiB. */
    for (int round = 0; round < 40; round++) {
        json_t *proposals = json_array();
        for (int i = 0; i < 256; i++) {
            char account[32];
            snprintf(account, sizeof account, "acct-%05d", round * 256 + i);
            json_array_append_new(proposals,
                                  json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s}}", "client_seq",
                                            round * 256 + i + 1, "stream", "ledger:big", "action",
                                            "open_account", "args", "account", account, "owner",
                                            "alice", "currency", "EUR"));
        }
        test_ws_send(admin, "{s:s, s:o}", "type", "sync", "proposals", proposals);
        json_decref(test_ws_expect(admin, "sync_result", 20000));
    }
    arb_ws_close(admin);
    arb_ws_client *alice = test_ws_open(&f->server, "alice");
    json_t *rejected = test_ws_propose(alice, 1, "ledger:big", "transfer",
                                       transfer_args("alice", "acct-00001", 11));
    assert_string_equal(type_of(rejected), "rejected");
    assert_string_equal(json_string_value(json_object_get(rejected, "code")), "INSUFFICIENT_FUNDS");
    assert_null(json_object_get(rejected, "snapshot"));
    json_decref(rejected);
    json_t *committed = test_ws_propose(alice, 2, "ledger:big", "transfer",
                                        transfer_args("alice", "acct-00001", 10));
    assert_string_equal(type_of(committed), "committed");
    json_decref(committed);
    arb_ws_close(alice);
    stop(f);
}

/* Subscriptions are bounded and must name a stream that exists. */
static void test_subscription_bounds(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice"};
    test_ledger_setup(&f->server, "ledger:main", owners, 1, 0);
    arb_ws_client *client = test_ws_open(&f->server, "watcher");
    test_ws_send(client, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:missing");
    json_t *error = test_ws_expect(client, "error", 5000);
    assert_string_equal(json_string_value(json_object_get(error, "code")), "STREAM_NOT_FOUND");
    json_decref(error);
    test_ws_send(client, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:main");
    json_decref(test_ws_expect(client, "snapshot", 5000));
    test_ws_send(client, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:main");
    error = test_ws_expect(client, "error", 5000);
    assert_string_equal(json_string_value(json_object_get(error, "code")), "INVALID_ARGUMENT");
    json_decref(error);
    /* 63 more streams fill the connection's 64; the 65th is refused. */
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    json_t *proposals = json_array();
    for (int i = 1; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++) {
        char stream[32];
        snprintf(stream, sizeof stream, "ledger:s%d", i);
        json_array_append_new(proposals,
                              json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s}}", "client_seq", i,
                                        "stream", stream, "action", "open_account", "args",
                                        "account", "a", "owner", "a", "currency", "EUR"));
    }
    test_ws_send(admin, "{s:s, s:o}", "type", "sync", "proposals", proposals);
    json_decref(test_ws_expect(admin, "sync_result", 10000));
    arb_ws_close(admin);
    for (int i = 1; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++) {
        char stream[32];
        snprintf(stream, sizeof stream, "ledger:s%d", i);
        test_ws_send(client, "{s:s, s:s}", "type", "subscribe", "stream", stream);
        json_decref(test_ws_expect(client, "snapshot", 5000));
    }
    test_ws_send(client, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:one-too-many");
    error = test_ws_expect(client, "error", 5000);
    bool limit_seen =
        strcmp(json_string_value(json_object_get(error, "code")), "LIMIT_EXCEEDED") == 0;
    json_decref(error);
    assert_true(limit_seen);
    arb_ws_close(client);
    stop(f);
}

/* The counter's value in GET /metrics (0 when absent). */
static long long metric(const test_server *server, const char *name)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", server->http_url);
    arb_http_response response;
    assert_int_equal(arb_http_request(url, "GET", NULL, NULL, 0, 5000, &response), 0);
    long long value = 0;
    const char *at = strstr(response.body, name);
    while (at != NULL && at > response.body && at[-1] != '\n')
        at = strstr(at + 1, name);
    if (at != NULL)
        value = strtoll(at + strlen(name), NULL, 10);
    arb_http_response_clear(&response);
    return value;
}

/* A subscriber that stops reading is closed with 4001 once its queue passes
 * the bound; the writer never waits for it. */
static void test_slow_reader_is_closed(void **state)
{
    fixture *f = *state;
    static const char *const extra[] = {"--outbound-max", "65536", NULL};
    start(f, extra);
    static const char *const owners[] = {"alice"};
    test_ledger_setup(&f->server, "ledger:main", owners, 1, 0);
    arb_ws_client *slow = test_ws_open(&f->server, "slow");
    test_ws_send(slow, "{s:s, s:s}", "type", "subscribe", "stream", "ledger:main");
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    uint64_t client_seq = 0;
    int rounds = 0;
    /* Socket buffers absorb some megabytes first; bounded at 400 rounds of
     * 256 deposits (about 25 MB of patches). */
    for (; rounds < 400 && metric(&f->server, "arbiter_slow_readers_closed_total ") == 0;
         rounds++) {
        json_t *proposals = json_array();
        for (int i = 0; i < 256; i++)
            json_array_append_new(proposals, json_pack("{s:I, s:s, s:s, s:{s:s, s:i}}",
                                                       "client_seq", (json_int_t)++client_seq,
                                                       "stream", "ledger:main", "action", "deposit",
                                                       "args", "account", "alice", "amount", 1));
        test_ws_send(admin, "{s:s, s:o}", "type", "sync", "proposals", proposals);
        json_t *result = test_ws_expect(admin, "sync_result", 20000);
        assert_string_equal(result_code(result, 255), "committed");
        json_decref(result);
    }
    print_message("slow reader closed after %d rounds\n", rounds);
    assert_int_equal(metric(&f->server, "arbiter_slow_readers_closed_total "), 1);
    /* What was already sent can still be read; then the close with its code. */
    for (;;) {
        char *text = NULL;
        size_t len = 0;
        int rc = arb_ws_recv(slow, 20000, &text, &len);
        free(text);
        if (rc == ARB_ECLOSED)
            break;
        assert_int_equal(rc, 0);
    }
    char reason[128];
    assert_int_equal(arb_ws_close_status(slow, reason, sizeof reason), 4001);
    arb_ws_close(slow);
    assert_int_equal(balance(&f->server, "ledger:main", "alice", NULL), (long long)client_seq);
    arb_ws_close(admin);
    stop(f);
}

/* A silent connection is closed after the idle timeout. */
static void test_idle_timeout(void **state)
{
    fixture *f = *state;
    static const char *const extra[] = {"--idle-timeout", "1", NULL};
    start(f, extra);
    arb_ws_client *client = test_ws_open(&f->server, "sleepy");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(arb_ws_recv(client, 10000, &text, &len), ARB_ECLOSED);
    arb_ws_close(client);
    stop(f);
}

/* SIGTERM with proposals in flight: every proposal the client saw
 * acknowledged is in the log after a restart, exactly once, and the client
 * gets a 1001 close after its last answer. */
static void test_shutdown_loses_nothing_acknowledged(void **state)
{
    fixture *f = *state;
    start(f, NULL);
    static const char *const owners[] = {"alice"};
    test_ledger_setup(&f->server, "ledger:main", owners, 1, 0);
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    enum { COUNT = 4000 };
    for (uint64_t i = 1; i <= COUNT; i++)
        test_ws_send(admin, "{s:s, s:I, s:s, s:s, s:{s:s, s:i}}", "type", "propose", "client_seq",
                     (json_int_t)i, "stream", "ledger:main", "action", "deposit", "args", "account",
                     "alice", "amount", 1);
    int64_t *acked_seq = calloc(COUNT + 1, sizeof *acked_seq);
    assert_non_null(acked_seq);
    size_t acked = 0, transient = 0;
    for (;;) {
        char *text = NULL;
        size_t len = 0;
        int rc = arb_ws_recv(admin, 20000, &text, &len);
        if (rc == ARB_ECLOSED)
            break;
        assert_int_equal(rc, 0);
        json_error_t error;
        json_t *answer = json_loadb(text, len, 0, &error);
        free(text);
        assert_non_null(answer);
        if (strcmp(type_of(answer), "committed") == 0) {
            json_int_t client_seq = int_of(answer, "client_seq");
            assert_true(client_seq >= 1 && client_seq <= COUNT);
            assert_int_equal(acked_seq[client_seq], 0);
            acked_seq[client_seq] = int_of(answer, "seq");
            acked++;
        } else if (strcmp(type_of(answer), "rejected") == 0) {
            assert_string_equal(json_string_value(json_object_get(answer, "code")),
                                "SHUTTING_DOWN");
            transient++;
        } else {
            assert_string_equal(type_of(answer), "error"); /* frames after the stop */
            assert_string_equal(json_string_value(json_object_get(answer, "code")),
                                "SHUTTING_DOWN");
        }
        json_decref(answer);
        if (acked == 50 && f->server.pid > 0)
            assert_int_equal(kill(f->server.pid, SIGTERM), 0);
    }
    char reason[128];
    assert_int_equal(arb_ws_close_status(admin, reason, sizeof reason), 1001);
    arb_ws_close(admin);
    assert_int_equal(test_server_stop(&f->server, 0), 0); /* signal 0: just wait */
    print_message("acknowledged %zu of %d, %zu refused as SHUTTING_DOWN\n", acked, COUNT,
                  transient);
    assert_true(acked >= 50);

    start(f, NULL);
    uint64_t version = 0;
    long long deposited = balance(&f->server, "ledger:main", "alice", &version);
    assert_true(deposited >= (long long)acked); /* nothing acknowledged is lost */
    /* Each acknowledged proposal's event is in the log, with its seq. */
    size_t found = 0;
    for (uint64_t since = 0; since < version;) {
        char path[128];
        snprintf(path, sizeof path, "/v1/streams/ledger:main/events?since=%llu",
                 (unsigned long long)since);
        json_t *body = NULL;
        assert_int_equal(test_http(&f->server, "GET", path, NULL, NULL, &body), 200);
        size_t i;
        json_t *event;
        json_array_foreach (json_object_get(body, "events"), i, event) {
            since = (uint64_t)int_of(event, "seq");
            const char *client = json_string_value(json_object_get(event, "client_id"));
            json_int_t client_seq = int_of(event, "client_seq");
            if (strcmp(client, "admin") == 0 && client_seq <= COUNT && acked_seq[client_seq] != 0) {
                assert_int_equal(acked_seq[client_seq], (json_int_t)since);
                found++;
            }
        }
        json_decref(body);
    }
    assert_int_equal(found, acked);
    free(acked_seq);
    stop(f);
    char *out = NULL;
    const char *const verify[] = {"arbiter", "verify", "--data", f->data, NULL};
    assert_int_equal(test_run_tool(&out, verify), 0);
    free(out);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcomes_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_catch_up_without_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race_for_the_same_funds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patches_split_by_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejection_without_an_oversized_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_subscription_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_loses_nothing_acknowledged, setup, teardown),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
