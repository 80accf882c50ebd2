/*
 * wire_test.c - the WebSocket message codec: a table of valid client
 * messages (decoded field by field), a table of malformed frames (each with
 * its exact code and field), and every encoder against its exact text.
 */
#include "support.h"

#include <string.h>

#include "arbiter/wire.h"
#include "core/buf.h"
#include "core/canon.h"

static const arb_principal alice = {.id = "alice", .role = ARB_ROLE_USER};

static int decode(const char *text, arb_wire_message *message, arb_wire_error *error)
{
    return arb_wire_decode(text, strlen(text), &alice, message, error);
}

static void test_decode_hello(void **state)
{
    (void)state;
    arb_wire_message m;
    arb_wire_error e;
    assert_int_equal(
        decode("{\"type\":\"hello\",\"proto\":1,\"client_id\":\"bob@x.y:1-2_3\",\"resume\":9}", &m,
               &e),
        0);
    assert_int_equal(m.type, ARB_WIRE_HELLO);
    assert_int_equal(m.as.hello.proto, 1);
    assert_string_equal(m.as.hello.client_id, "bob@x.y:1-2_3");
    assert_true(m.as.hello.has_resume);
    assert_int_equal(m.as.hello.resume, 9);
    arb_wire_message_clear(&m);
    /* Before a hello (no principal), hello and ping decode. */
    const char *hello = "{\"client_id\":\"a\",\"proto\":1,\"type\":\"hello\"}";
    assert_int_equal(arb_wire_decode(hello, strlen(hello), NULL, &m, &e), 0);
    assert_false(m.as.hello.has_resume);
    arb_wire_message_clear(&m);
    assert_int_equal(arb_wire_decode("{\"type\":\"ping\"}", 15, NULL, &m, &e), 0);
    assert_int_equal(m.type, ARB_WIRE_PING);
    assert_false(m.as.ping.has_nonce);
    arb_wire_message_clear(&m);
}

static void test_decode_propose(void **state)
{
    (void)state;
    arb_wire_message m;
    arb_wire_error e;
    const char *text = " { \"type\" : \"propose\", \"client_seq\": 9007199254740991, "
                       "\"stream\": \"ledger:main\", \"action\": \"transfer\", "
                       "\"args\": {\"to\": \"b\", \"from\": \"a\", \"amount\": 250}, "
                       "\"expect\": 0 }";
    assert_int_equal(decode(text, &m, &e), 0);
    assert_int_equal(m.type, ARB_WIRE_PROPOSE);
    const arb_command *c = &m.as.propose;
    assert_string_equal(c->principal.id, "alice");
    assert_int_equal(c->principal.role, ARB_ROLE_USER);
    assert_int_equal(c->client_seq, 9007199254740991ULL);
    assert_string_equal(c->stream, "ledger:main");
    assert_string_equal(c->action, "transfer");
    assert_true(c->has_expect);
    assert_int_equal(c->expect, 0);
    assert_int_equal(json_integer_value(json_object_get(c->args, "amount")), 250);
    /* Encoding gives the documented order and canonical args. */
    arb_buf buf;
    arb_buf_init(&buf, 4096);
    assert_int_equal(arb_wire_encode_propose(&buf, c), 0);
    assert_string_equal(buf.data,
                        "{\"type\":\"propose\",\"client_seq\":9007199254740991,\"stream\":"
                        "\"ledger:main\",\"action\":\"transfer\",\"args\":{\"amount\":250,"
                        "\"from\":\"a\",\"to\":\"b\"},\"expect\":0}");
    /* And decodes back to the same command. */
    arb_wire_message back;
    assert_int_equal(arb_wire_decode(buf.data, buf.len, &alice, &back, &e), 0);
    assert_int_equal(back.as.propose.client_seq, c->client_seq);
    assert_true(json_equal(back.as.propose.args, c->args));
    arb_wire_message_clear(&back);
    arb_buf_free(&buf);
    arb_wire_message_clear(&m);
    assert_int_equal(m.type, ARB_WIRE_NONE);
}

static void test_decode_others(void **state)
{
    (void)state;
    arb_wire_message m;
    arb_wire_error e;
    assert_int_equal(decode("{\"type\":\"subscribe\",\"stream\":\"ledger:x\",\"since\":0}", &m, &e),
                     0);
    assert_int_equal(m.type, ARB_WIRE_SUBSCRIBE);
    assert_string_equal(m.as.subscribe.stream, "ledger:x");
    assert_true(m.as.subscribe.has_since);
    assert_int_equal(m.as.subscribe.since, 0);
    arb_wire_message_clear(&m);
    assert_int_equal(decode("{\"type\":\"unsubscribe\",\"stream\":\"ledger:x\"}", &m, &e), 0);
    assert_int_equal(m.type, ARB_WIRE_UNSUBSCRIBE);
    assert_false(m.as.subscribe.has_since);
    arb_wire_message_clear(&m);
    assert_int_equal(decode("{\"type\":\"ping\",\"nonce\":\"n-1\"}", &m, &e), 0);
    assert_true(m.as.ping.has_nonce);
    assert_string_equal(m.as.ping.nonce, "n-1");
    arb_wire_message_clear(&m);
    assert_int_equal(decode("{\"type\":\"sync\",\"atomic\":true,\"proposals\":["
                            "{\"client_seq\":1,\"stream\":\"ledger:a\",\"action\":\"x\","
                            "\"args\":{}},"
                            "{\"client_seq\":2,\"stream\":\"ledger:b\",\"action\":\"y\","
                            "\"args\":{\"k\":[1,\"s\",null]},\"expect\":7}]}",
                            &m, &e),
                     0);
    assert_int_equal(m.type, ARB_WIRE_SYNC);
    assert_true(m.as.sync.atomic);
    assert_int_equal(m.as.sync.count, 2);
    assert_string_equal(m.as.sync.proposals[0].principal.id, "alice");
    assert_string_equal(m.as.sync.proposals[1].stream, "ledger:b");
    assert_true(m.as.sync.proposals[1].has_expect);
    assert_int_equal(m.as.sync.proposals[1].expect, 7);
    assert_false(m.as.sync.proposals[0].has_expect);
    arb_wire_message_clear(&m);
}

typedef struct bad_case {
    const char *text;
    int code;
    const char *field;
} bad_case;

#define PROP(rest) "{\"type\":\"propose\",\"stream\":\"ledger:a\",\"action\":\"t\"," rest "}"
#define PROP_ARGS(rest) PROP("\"args\":{}," rest)
#define ITEM "{\"client_seq\":1,\"stream\":\"ledger:a\",\"action\":\"t\",\"args\":{}}"

/* 33 bytes, one over the action bound; 129 bytes, one over the stream's. */
#define A33 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define S129                                                                                       \
    "ledger:"                                                                                      \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"       \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID65 "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"

static const bad_case bad_cases[] = {
    /* Not JSON, not an object. */
    {"", ARB_EMALFORMED, ""},
    {"{", ARB_EMALFORMED, ""},
    {"{\"type\":\"ping\"", ARB_EMALFORMED, ""},
    {"{\"type\":\"ping\"}}", ARB_EMALFORMED, ""},
    {"\xff\xfe\x00garbage", ARB_EMALFORMED, ""},
    {"{\"type\":\"ping\",\"nonce\":\"\xc3\x28\"}", ARB_EMALFORMED, ""},
    {"{\"type\":\"ping\",\"nonce\":\"a\\u0000b\"}", ARB_EMALFORMED, ""},
    {"{\"type\":\"ping\",\"type\":\"ping\"}", ARB_EMALFORMED, ""},
    /* The parser's sentence quotes these bytes; the reply stays UTF-8. */
    {"{\"type\":\"ping\",\"nonce\":\"\\\xe8\x87\xa3\xdd\"}", ARB_EMALFORMED, ""},
    {"[]", ARB_EMALFORMED, ""},
    {"\"hello\"", ARB_EMALFORMED, ""},
    {"42", ARB_EMALFORMED, ""},
    {"null", ARB_EMALFORMED, ""},
    /* type. */
    {"{}", ARB_EMALFORMED, "type"},
    {"{\"type\":1}", ARB_EMALFORMED, "type"},
    {"{\"type\":null}", ARB_EMALFORMED, "type"},
    {"{\"type\":\"\"}", ARB_EUNKNOWN_MESSAGE, "type"},
    {"{\"type\":\"Ping\"}", ARB_EUNKNOWN_MESSAGE, "type"},
    {"{\"type\":\"welcome\"}", ARB_EUNKNOWN_MESSAGE, "type"},
    /* Strict keys. */
    {"{\"type\":\"ping\",\"extra\":1}", ARB_EINVALID_ARGUMENT, "extra"},
    {PROP_ARGS("\"client_seq\":1,\"client_id\":\"mallory\""), ARB_EINVALID_ARGUMENT, "client_id"},
    {"{\"type\":\"unsubscribe\",\"stream\":\"ledger:a\",\"since\":1}", ARB_EINVALID_ARGUMENT,
     "since"},
    /* client_seq. */
    {PROP_ARGS("\"x\":0"), ARB_EINVALID_ARGUMENT, "x"},
    {PROP("\"args\":{}"), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":0"), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":-1"), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":9007199254740992"), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":1.0"), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":1e3"), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":\"1\""), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":true"), ARB_EINVALID_ARGUMENT, "client_seq"},
    {PROP_ARGS("\"client_seq\":99999999999999999999999"), ARB_EMALFORMED, ""},
    /* stream, action. */
    {"{\"type\":\"propose\",\"client_seq\":1,\"action\":\"t\",\"args\":{}}", ARB_EINVALID_ARGUMENT,
     "stream"},
    {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"\",\"action\":\"t\",\"args\":{}}",
     ARB_EINVALID_ARGUMENT, "stream"},
    {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":7,\"action\":\"t\",\"args\":{}}",
     ARB_EINVALID_ARGUMENT, "stream"},
    {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"" S129 "\",\"action\":\"t\",\"args\":{}}",
     ARB_ETOO_LARGE, "stream"},
    {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"ledger:a\",\"args\":{}}",
     ARB_EINVALID_ARGUMENT, "action"},
    {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"ledger:a\",\"action\":\"" A33
     "\",\"args\":{}}",
     ARB_ETOO_LARGE, "action"},
    {"{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"ledger:a\",\"action\":[],\"args\":{}}",
     ARB_EINVALID_ARGUMENT, "action"},
    /* args, expect. */
    {PROP("\"client_seq\":1"), ARB_EINVALID_ARGUMENT, "args"},
    {PROP("\"client_seq\":1,\"args\":[]"), ARB_EINVALID_ARGUMENT, "args"},
    {PROP("\"client_seq\":1,\"args\":null"), ARB_EINVALID_ARGUMENT, "args"},
    {PROP("\"client_seq\":1,\"args\":{\"amount\":1.5}"), ARB_EINVALID_ARGUMENT, "args"},
    {PROP("\"client_seq\":1,\"args\":{\"a\":[9007199254740992]}"), ARB_EINVALID_ARGUMENT, "args"},
    {PROP_ARGS("\"client_seq\":1,\"expect\":-1"), ARB_EINVALID_ARGUMENT, "expect"},
    {PROP_ARGS("\"client_seq\":1,\"expect\":null"), ARB_EINVALID_ARGUMENT, "expect"},
    {PROP("\"client_seq\":1,\"args\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]"
          "]]]]]]]]]]]}"),
     ARB_EMALFORMED, ""},
    /* hello. */
    {"{\"type\":\"hello\",\"proto\":2,\"client_id\":\"a\"}", ARB_EUNSUPPORTED_VERSION, "proto"},
    {"{\"type\":\"hello\",\"proto\":0,\"client_id\":\"a\"}", ARB_EINVALID_ARGUMENT, "proto"},
    {"{\"type\":\"hello\",\"proto\":\"1\",\"client_id\":\"a\"}", ARB_EINVALID_ARGUMENT, "proto"},
    {"{\"type\":\"hello\",\"client_id\":\"a\"}", ARB_EINVALID_ARGUMENT, "proto"},
    {"{\"type\":\"hello\",\"proto\":1}", ARB_EINVALID_ARGUMENT, "client_id"},
    {"{\"type\":\"hello\",\"proto\":1,\"client_id\":\"$system\"}", ARB_EINVALID_ARGUMENT,
     "client_id"},
    {"{\"type\":\"hello\",\"proto\":1,\"client_id\":\"a b\"}", ARB_EINVALID_ARGUMENT, "client_id"},
    {"{\"type\":\"hello\",\"proto\":1,\"client_id\":\"" ID65 "\"}", ARB_ETOO_LARGE, "client_id"},
    {"{\"type\":\"hello\",\"proto\":1,\"client_id\":\"a\",\"resume\":-5}", ARB_EINVALID_ARGUMENT,
     "resume"},
    {"{\"type\":\"hello\",\"proto\":1,\"client_id\":\"a\",\"auth\":{}}", ARB_EINVALID_ARGUMENT,
     "auth"},
    /* subscribe, ping. */
    {"{\"type\":\"subscribe\"}", ARB_EINVALID_ARGUMENT, "stream"},
    {"{\"type\":\"subscribe\",\"stream\":\"ledger:a\",\"since\":-1}", ARB_EINVALID_ARGUMENT,
     "since"},
    {"{\"type\":\"subscribe\",\"stream\":\"ledger:a\",\"since\":9007199254740992}",
     ARB_EINVALID_ARGUMENT, "since"},
    {"{\"type\":\"ping\",\"nonce\":5}", ARB_EINVALID_ARGUMENT, "nonce"},
    {"{\"type\":\"ping\",\"nonce\":\"" ID65 "\"}", ARB_ETOO_LARGE, "nonce"},
    /* sync. */
    {"{\"type\":\"sync\"}", ARB_EINVALID_ARGUMENT, "proposals"},
    {"{\"type\":\"sync\",\"proposals\":[]}", ARB_EINVALID_ARGUMENT, "proposals"},
    {"{\"type\":\"sync\",\"proposals\":{}}", ARB_EINVALID_ARGUMENT, "proposals"},
    {"{\"type\":\"sync\",\"proposals\":[" ITEM "],\"atomic\":1}", ARB_EINVALID_ARGUMENT, "atomic"},
    {"{\"type\":\"sync\",\"proposals\":[" ITEM ",5]}", ARB_EINVALID_ARGUMENT, "proposals[1]"},
    {"{\"type\":\"sync\",\"proposals\":[" ITEM ",{\"type\":\"propose\"}]}", ARB_EINVALID_ARGUMENT,
     "proposals[1].type"},
    {"{\"type\":\"sync\",\"proposals\":[" ITEM "," ITEM
     ",{\"client_seq\":0,\"stream\":\"s:a\",\"action\":\"t\",\"args\":{}}]}",
     ARB_EINVALID_ARGUMENT, "proposals[2].client_seq"},
    {"{\"type\":\"sync\",\"proposals\":[{\"client_seq\":1,\"stream\":\"s:a\",\"action\":\"t\","
     "\"args\":{\"r\":0.5}}]}",
     ARB_EINVALID_ARGUMENT, "proposals[0].args"},
};

static void expect_bad(const char *text, size_t len, const arb_principal *principal, int code,
                       const char *field)
{
    arb_wire_message m;
    arb_wire_error e;
    int rc = arb_wire_decode(text, len, principal, &m, &e);
    if (rc != code || strcmp(e.field, field) != 0)
        fail_msg("%.200s: got %s field \"%s\" (%s), expected %s field \"%s\"", text,
                 arb_err_name(rc), e.field, e.message, arb_err_name(code), field);
    assert_int_equal(e.code, code);
    assert_true(strlen(e.message) > 0);
    assert_int_equal(m.type, ARB_WIRE_NONE);
    assert_null(m.as.sync.proposals);
    /* The error reply encodes and is itself valid JSON. */
    arb_buf buf;
    arb_buf_init(&buf, 4096);
    assert_int_equal(arb_wire_encode_error(&buf, &e), 0);
    json_t *reply = NULL;
    char why[128];
    assert_int_equal(arb_json_parse(buf.data, buf.len, 4096, &reply, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(reply, "code")), arb_err_name(code));
    json_decref(reply);
    arb_buf_free(&buf);
}

static void test_decode_bad(void **state)
{
    (void)state;
    size_t count = sizeof bad_cases / sizeof bad_cases[0];
    assert_true(count >= 40);
    for (size_t i = 0; i < count; i++) {
        const char *text = bad_cases[i].text;
        /* The binary case carries a NUL: its length is its literal's. */
        size_t len = strncmp(text, "\xff\xfe", 2) == 0 ? 10 : strlen(text);
        expect_bad(text, len, &alice, bad_cases[i].code, bad_cases[i].field);
    }
    print_message("%zu malformed frames refused\n", count);
}

static void test_decode_limits(void **state)
{
    (void)state;
    /* Before hello, only hello and ping. */
    const char *sub = "{\"type\":\"subscribe\",\"stream\":\"ledger:a\"}";
    expect_bad(sub, strlen(sub), NULL, ARB_ENOT_AUTHENTICATED, "type");
    const char *prop = PROP_ARGS("\"client_seq\":1");
    expect_bad(prop, strlen(prop), NULL, ARB_ENOT_AUTHENTICATED, "type");
    /* An oversize frame, refused before it is parsed. */
    size_t big = ARB_WIRE_FRAME_BYTES_MAX + 1;
    char *frame = malloc(big);
    assert_non_null(frame);
    memset(frame, ' ', big);
    memcpy(frame, "{\"type\":\"ping\"}", 15);
    expect_bad(frame, big, &alice, ARB_ETOO_LARGE, "");
    /* Args over 64 KiB canonical, inside a frame that fits. */
    size_t pad = ARB_ARGS_BYTES_MAX;
    int n = snprintf(frame, big, PROP("\"client_seq\":1,\"args\":{\"s\":\"%0*d\"}"), (int)pad, 0);
    assert_true(n > 0 && (size_t)n < big);
    expect_bad(frame, (size_t)n, &alice, ARB_ETOO_LARGE, "args");
    /* A sync of one too many proposals; the bound itself passes. */
    for (size_t count = ARB_WIRE_SYNC_PROPOSALS_MAX; count <= ARB_WIRE_SYNC_PROPOSALS_MAX + 1;
         count++) {
        arb_buf buf;
        arb_buf_init(&buf, big);
        assert_int_equal(arb_buf_append_str(&buf, "{\"type\":\"sync\",\"proposals\":["), 0);
        for (size_t i = 0; i < count; i++)
            assert_int_equal(arb_buf_append_str(&buf, i > 0 ? "," ITEM : ITEM), 0);
        assert_int_equal(arb_buf_append_str(&buf, "]}"), 0);
        if (count > ARB_WIRE_SYNC_PROPOSALS_MAX) {
            expect_bad(buf.data, buf.len, &alice, ARB_ETOO_LARGE, "proposals");
        } else {
            arb_wire_message m;
            arb_wire_error e;
            assert_int_equal(arb_wire_decode(buf.data, buf.len, &alice, &m, &e), 0);
            assert_int_equal(m.as.sync.count, count);
            assert_false(m.as.sync.atomic);
            arb_wire_message_clear(&m);
        }
        arb_buf_free(&buf);
    }
    free(frame);
    /* An unknown key longer than the field bound is cut, not overflowed. */
    char key[300];
    n = snprintf(key, sizeof key, "{\"type\":\"ping\",\"%0200d\":1}", 0);
    arb_wire_message m;
    arb_wire_error e;
    assert_int_equal(arb_wire_decode(key, (size_t)n, &alice, &m, &e), ARB_EINVALID_ARGUMENT);
    assert_int_equal(strlen(e.field), ARB_WIRE_FIELD_BYTES_MAX);
}

static void expect_text(arb_buf *buf, int rc, const char *expected)
{
    assert_int_equal(rc, 0);
    assert_string_equal(buf->data, expected);
    arb_buf_reset(buf);
}

static void make_event(arb_event *event, uint64_t seq)
{
    memset(event, 0, sizeof *event);
    assert_int_equal(arb_copy_name(event->stream, sizeof event->stream, "ledger:main"), 0);
    assert_int_equal(arb_copy_name(event->type, sizeof event->type, "transferred"), 0);
    assert_int_equal(arb_copy_name(event->client_id, sizeof event->client_id, "alice"), 0);
    event->seq = seq;
    event->client_seq = 3;
    event->applied_at_ms = 1700000000000;
    event->data = json_pack("{s:s, s:s, s:i}", "to", "b", "from", "a", "amount", 5);
    memset(event->hash, 0xab, sizeof event->hash);
}

#define HASH_AB "abababababababababababababababababababababababababababababababab"
#define EVENT(seq)                                                                                 \
    "{\"stream\":\"ledger:main\",\"seq\":" seq ",\"type\":\"transferred\",\"data\":{\"amount\":5," \
    "\"from\":\"a\",\"to\":\"b\"},\"client_id\":\"alice\",\"client_seq\":3,\"applied_at\":"        \
    "1700000000000,\"hash\":\"" HASH_AB "\"}"

static void test_encode_outcomes(void **state)
{
    (void)state;
    arb_buf buf;
    arb_buf_init(&buf, 1 << 16);
    arb_event events[2];
    make_event(&events[0], 7);
    make_event(&events[1], 8);
    arb_outcome o;
    arb_outcome_init(&o);
    o.kind = ARB_OUTCOME_COMMITTED;
    o.client_seq = 3;
    assert_int_equal(arb_copy_name(o.stream, sizeof o.stream, "ledger:main"), 0);
    o.seq_first = 7;
    o.seq_last = 8;
    o.events = events;
    o.event_count = 2;
    expect_text(&buf, arb_wire_encode_outcome(&buf, &o),
                "{\"type\":\"committed\",\"client_seq\":3,\"stream\":\"ledger:main\",\"seq\":7,"
                "\"seq_last\":8,\"events\":[" EVENT("7") "," EVENT("8") "],\"result\":null,"
                                                                        "\"replay\":false}");
    /* The events are arb_event_to_json()'s, key for key. */
    assert_int_equal(arb_wire_encode_patch(&buf, "ledger:main", events, 1), 0);
    assert_string_equal(buf.data, "{\"type\":\"patch\",\"stream\":\"ledger:main\",\"seq\":7,"
                                  "\"events\":[" EVENT("7") "]}");
    json_t *parsed = json_loads(buf.data, 0, NULL);
    json_t *expected = arb_event_to_json(&events[0]);
    assert_true(json_equal(json_array_get(json_object_get(parsed, "events"), 0), expected));
    json_decref(parsed);
    json_decref(expected);
    arb_buf_reset(&buf);

    arb_outcome r;
    arb_outcome_init(&r);
    r.kind = ARB_OUTCOME_REJECTED;
    r.client_seq = 4;
    r.replay = true;
    assert_int_equal(arb_copy_name(r.stream, sizeof r.stream, "ledger:main"), 0);
    r.code = ARB_EINSUFFICIENT_FUNDS;
    assert_int_equal(arb_copy_name(r.message, sizeof r.message, "no \"funds\"\n"), 0);
    r.details = json_pack("{s:i}", "available", 2);
    r.version = 8;
    json_t *snap = json_pack("{s:{s:i}}", "accounts", "a", 2);
    expect_text(&buf, arb_wire_encode_rejected(&buf, &r, snap),
                "{\"type\":\"rejected\",\"client_seq\":4,\"stream\":\"ledger:main\","
                "\"code\":\"INSUFFICIENT_FUNDS\",\"message\":\"no \\\"funds\\\"\\n\","
                "\"details\":{\"available\":2},\"version\":8,\"replay\":true,"
                "\"snapshot\":{\"accounts\":{\"a\":2}}}");
    arb_outcome both[2] = {o, r};
    expect_text(&buf, arb_wire_encode_sync_result(&buf, both, 2),
                "{\"type\":\"sync_result\",\"results\":[{\"client_seq\":3,\"status\":"
                "\"committed\",\"seq\":7,\"seq_last\":8,\"result\":null},{\"client_seq\":4,"
                "\"status\":\"rejected\",\"code\":\"INSUFFICIENT_FUNDS\",\"message\":"
                "\"no \\\"funds\\\"\\n\",\"details\":{\"available\":2}}]}");
    expect_text(&buf, arb_wire_encode_snapshot(&buf, "ledger:main", 8, snap),
                "{\"type\":\"snapshot\",\"stream\":\"ledger:main\",\"seq\":8,"
                "\"state\":{\"accounts\":{\"a\":2}}}");
    json_decref(snap);
    arb_outcome_clear(&r);
    arb_event_clear(&events[0]);
    arb_event_clear(&events[1]);
    arb_buf_free(&buf);
}

static void test_encode_small(void **state)
{
    (void)state;
    arb_buf buf;
    arb_buf_init(&buf, 4096);
    expect_text(&buf, arb_wire_encode_welcome(&buf, 1700000000000),
                "{\"type\":\"welcome\",\"proto\":1,\"server_time\":1700000000000,\"limits\":{"
                "\"frame_bytes\":1048576,\"args_bytes\":65536,\"sync_proposals\":256,"
                "\"subscriptions\":64,\"pending_proposals\":1024}}");
    expect_text(&buf, arb_wire_encode_pong(&buf, "n\x01"),
                "{\"type\":\"pong\",\"nonce\":\"n\\u0001\"}");
    expect_text(&buf, arb_wire_encode_pong(&buf, NULL), "{\"type\":\"pong\"}");
    arb_wire_error e;
    arb_wire_error_set(&e, ARB_EUNSUPPORTED_VERSION, "proto", NULL);
    expect_text(&buf, arb_wire_encode_error(&buf, &e),
                "{\"type\":\"error\",\"code\":\"UNSUPPORTED_VERSION\",\"field\":\"proto\","
                "\"message\":\"the server does not speak this protocol version\","
                "\"versions\":[1]}");
    arb_wire_error_set(&e, ARB_EMALFORMED, NULL, "binary frames are not accepted");
    expect_text(&buf, arb_wire_encode_error(&buf, &e),
                "{\"type\":\"error\",\"code\":\"MALFORMED\",\"message\":\"binary frames are not "
                "accepted\"}");
    expect_text(&buf, arb_wire_encode_hello(&buf, "alice", 12),
                "{\"type\":\"hello\",\"proto\":1,\"client_id\":\"alice\",\"resume\":12}");
    expect_text(&buf, arb_wire_encode_subscribe(&buf, "ledger:main", true, 0),
                "{\"type\":\"subscribe\",\"stream\":\"ledger:main\",\"since\":0}");
    expect_text(&buf, arb_wire_encode_unsubscribe(&buf, "ledger:main"),
                "{\"type\":\"unsubscribe\",\"stream\":\"ledger:main\"}");
    expect_text(&buf, arb_wire_encode_ping(&buf), "{\"type\":\"ping\"}");
    arb_buf_free(&buf);
}

/* A sync encodes what the strict decoder takes back: the same proposals, in
 * order, with expect where it was given; a frame too small for the batch is
 * ARB_ETOO_LARGE with the buffer as before. */
static void test_encode_sync(void **state)
{
    (void)state;
    arb_command commands[3];
    for (size_t i = 0; i < 3; i++) {
        arb_command_init(&commands[i]);
        json_t *args = json_pack("{s:s, s:i}", "to", "bob", "amount", (int)(i + 1));
        assert_int_equal(arb_command_set(&commands[i], "alice", ARB_ROLE_USER, 10 + i,
                                         "ledger:main", "transfer", args),
                         0);
        json_decref(args);
    }
    commands[1].has_expect = true;
    commands[1].expect = 7;
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    assert_int_equal(arb_wire_encode_sync(&buf, commands, 3, true), 0);
    arb_wire_message message;
    arb_wire_error error;
    assert_int_equal(arb_wire_decode(buf.data, buf.len, &alice, &message, &error), 0);
    assert_int_equal(message.type, ARB_WIRE_SYNC);
    assert_true(message.as.sync.atomic);
    assert_int_equal(message.as.sync.count, 3);
    for (size_t i = 0; i < 3; i++) {
        const arb_command *got = &message.as.sync.proposals[i];
        assert_int_equal(got->client_seq, 10 + i);
        assert_string_equal(got->action, "transfer");
        assert_true(json_equal(got->args, commands[i].args));
        assert_int_equal(got->has_expect, i == 1);
    }
    assert_int_equal(message.as.sync.proposals[1].expect, 7);
    arb_wire_message_clear(&message);
    arb_buf_free(&buf);

    arb_buf_init(&buf, 64);
    assert_int_equal(arb_buf_append_str(&buf, "kept"), 0);
    assert_int_equal(arb_wire_encode_sync(&buf, commands, 3, false), ARB_ETOO_LARGE);
    assert_string_equal(buf.data, "kept");
    arb_buf_free(&buf);
    for (size_t i = 0; i < 3; i++)
        arb_command_clear(&commands[i]);
}

/* A full buffer leaves what it held before the call, to the byte. */
static void test_encode_full(void **state)
{
    (void)state;
    arb_buf buf;
    arb_buf_init(&buf, 40);
    assert_int_equal(arb_buf_append_str(&buf, "kept"), 0);
    assert_int_equal(arb_wire_encode_welcome(&buf, 1), ARB_ETOO_LARGE);
    assert_string_equal(buf.data, "kept");
    assert_int_equal(buf.len, 4);
    json_t *real = json_pack("{s:f}", "x", 1.5);
    arb_buf_free(&buf);
    arb_buf_init(&buf, 4096);
    assert_int_equal(arb_wire_encode_snapshot(&buf, "s:a", 1, real), ARB_EINVALID_ARGUMENT);
    assert_int_equal(buf.len, 0);
    json_decref(real);
    arb_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_hello),  cmocka_unit_test(test_decode_propose),
        cmocka_unit_test(test_decode_others), cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_decode_limits), cmocka_unit_test(test_encode_outcomes),
        cmocka_unit_test(test_encode_small),  cmocka_unit_test(test_encode_full),
        cmocka_unit_test(test_encode_sync),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
