/*
 * poker_history_test.c - hand histories through the real arbiterd: a table
 * created and a hand played over POST /v1/streams/{s}/commands, then
 * GET /v1/streams/{s}/hands/{n} as each player, as an admin and as a
 * spectator; the refusals (a hand still running, one not dealt, a stream
 * that is not a table, malformed numbers); and the CLI, remote (the same
 * GET) and local (a read-only engine beside the running server).
 */
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define STREAM "table:t1"
#define REQUEST_TIMEOUT_MS 5000

static test_server server;
static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = test_mkdtemp("poker_history");
    test_server_start(&server, dir, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (server.pid > 0)
        test_server_stop(&server, SIGTERM);
    test_rmdir(dir);
    return 0;
}

/* POST a command as client_id; asserts it is committed. */
static void play(const char *client_id, uint64_t key, const char *body)
{
    char headers[256];
    snprintf(headers, sizeof headers, "X-Client-Id: %s\r\nIdempotency-Key: %llu\r\n", client_id,
             (unsigned long long)key);
    json_t *answer = NULL;
    int status =
        test_http(&server, "POST", "/v1/streams/" STREAM "/commands", headers, body, &answer);
    if (status != 200) {
        char *text = json_dumps(answer, JSON_COMPACT);
        fprintf(stderr, "%s %s -> %d %s\n", client_id, body, status, text);
        free(text);
    }
    assert_int_equal(status, 200);
    json_decref(answer);
}

/* GET path as client_id (NULL: no X-Client-Id); the response is the
 * caller's to clear. */
static int get(const char *path, const char *client_id, arb_http_response *response)
{
    char url[512], headers[128] = "";
    snprintf(url, sizeof url, "%s%s", server.http_url, path);
    if (client_id != NULL)
        snprintf(headers, sizeof headers, "X-Client-Id: %s\r\n", client_id);
    memset(response, 0, sizeof *response);
    assert_int_equal(arb_http_request(url, "GET", headers, NULL, 0, REQUEST_TIMEOUT_MS, response),
                     0);
    return response->status;
}

/* The hand history as client_id: asserts 200 text/plain; caller frees. */
static char *history(const char *client_id, int hand)
{
    char path[128], type[64];
    snprintf(path, sizeof path, "/v1/streams/" STREAM "/hands/%d", hand);
    arb_http_response response;
    assert_int_equal(get(path, client_id, &response), 200);
    assert_non_null(arb_http_header(&response, "content-type", type, sizeof type));
    assert_non_null(strstr(type, "text/plain"));
    char *text = strdup(response.body);
    arb_http_response_clear(&response);
    return text;
}

/* A refusal: status and the JSON error's code. */
static void assert_refused(const char *path, int status, const char *code)
{
    arb_http_response response;
    assert_int_equal(get(path, "alice", &response), status);
    json_t *body = json_loads(response.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "code")), code);
    json_decref(body);
    arb_http_response_clear(&response);
}

/* The two hole cards after "Dealt to PLAYER [" in text, as "Xx" strings. */
static void dealt_cards(const char *text, const char *player, char first[3], char second[3])
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "Dealt to %s [", player);
    const char *at = strstr(text, prefix);
    assert_non_null(at);
    at += strlen(prefix);
    snprintf(first, 3, "%.2s", at);
    snprintf(second, 3, "%.2s", at + 3);
}

/* Hand 1: alice (button, small blind) raises to 30, bob folds. Hand 2 then
 * starts by itself and is left running. */
static void play_hand(void)
{
    play("admin", 1,
         "{\"action\":\"create_table\",\"args\":{\"table\":\"t1\",\"seats\":2,\"small_blind\":5,"
         "\"big_blind\":10,\"buy_in_min\":100,\"buy_in_max\":1000,\"turn_s\":600}}");
    play("alice", 1, "{\"action\":\"sit\",\"args\":{\"seat\":0,\"buy_in\":500}}");
    play("bob", 1, "{\"action\":\"sit\",\"args\":{\"seat\":1,\"buy_in\":400}}");
    play("alice", 2, "{\"action\":\"raise\",\"args\":{\"to\":30}}");
    play("bob", 2, "{\"action\":\"fold\",\"args\":{}}");
}

static void test_history_over_http(void **state)
{
    (void)state;
    play_hand();
    char *admin = history("admin", 1);
    char *alice = history("alice", 1);
    char *bob = history("bob", 1);
    char *anonymous = history(NULL, 1);

    static const char body[] = "Table 't1' 2-max Seat #1 is the button\n"
                               "Seat 1: alice (500 in chips)\n"
                               "Seat 2: bob (400 in chips)\n"
                               "alice: posts small blind 5\n"
                               "bob: posts big blind 10\n"
                               "*** HOLE CARDS ***\n";
    static const char actions[] = "alice: raises 20 to 30\n"
                                  "bob: folds\n"
                                  "Uncalled bet (20) returned to alice\n"
                                  "alice collected 20 from pot\n"
                                  "*** SUMMARY ***\n"
                                  "Total pot 20 | Rake 0\n"
                                  "Seat 1: alice (button) (small blind) collected (20)\n"
                                  "Seat 2: bob (big blind) folded before Flop\n"
                                  "*** FAIRNESS ***\n"
                                  "Commitment ";
    const char *const texts[] = {admin, alice, bob, anonymous};
    for (size_t i = 0; i < 4; i++) {
        assert_true(strncmp(texts[i], "Arbiter Hand #1: Hold'em No Limit (5/10) - ", 43) == 0);
        assert_non_null(strstr(texts[i], body));
        assert_non_null(strstr(texts[i], actions));
        assert_non_null(strstr(texts[i], "\nSeed "));
    }

    /* The admin sees both hands; each player only their own. The hex of the
     * commitment and seed may spell a card ("2c"): look above them. */
    for (size_t i = 0; i < 4; i++)
        *strstr(texts[i], "*** FAIRNESS ***") = '\0';
    char a1[3], a2[3], b1[3], b2[3];
    dealt_cards(admin, "alice", a1, a2);
    dealt_cards(admin, "bob", b1, b2);
    assert_non_null(strstr(alice, "Dealt to alice ["));
    assert_null(strstr(alice, "Dealt to bob"));
    assert_null(strstr(alice, b1));
    assert_null(strstr(alice, b2));
    assert_non_null(strstr(bob, "Dealt to bob ["));
    assert_null(strstr(bob, "Dealt to alice"));
    assert_null(strstr(bob, a1));
    assert_null(strstr(bob, a2));
    assert_null(strstr(anonymous, "Dealt to"));
    free(admin);
    free(alice);
    free(bob);
    free(anonymous);

    assert_refused("/v1/streams/" STREAM "/hands/2", 404, "HAND_IN_PROGRESS");
    assert_refused("/v1/streams/" STREAM "/hands/3", 404, "NOT_FOUND");
    assert_refused("/v1/streams/table:nope/hands/1", 404, "STREAM_NOT_FOUND");
    assert_refused("/v1/streams/ledger:demo/hands/1", 404, "NOT_FOUND");
    static const char *const bad[] = {
        "0", "-1", "9007199254740992", "99999999999999999999999", "abc", "1x", "01", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/streams/" STREAM "/hands/%s", bad[i]);
        assert_refused(path, 400, "INVALID_ARGUMENT");
    }
}

static void test_history_cli(void **state)
{
    (void)state;
    play_hand();
    char *out = NULL;
    const char *const remote[] = {"arbiter", "poker", "history", server.http_url, STREAM, "1",
                                  "--as",    "bob",   NULL};
    assert_int_equal(test_run_tool(&out, remote), 0);
    assert_true(strncmp(out, "Arbiter Hand #1: ", 17) == 0);
    assert_non_null(strstr(out, "Dealt to bob ["));
    assert_null(strstr(out, "Dealt to alice"));
    free(out);

    const char *const running[] = {"arbiter", "poker", "history", server.http_url,
                                   STREAM,    "2",     NULL};
    assert_int_equal(test_run_tool(&out, running), 4);
    free(out);

    /* Local: a read-only engine on the data directory, beside the server. */
    const char *const local[] = {"arbiter", "poker", "history", "--data", server.data_dir,
                                 STREAM,    "1",     "--as",    "alice",  NULL};
    assert_int_equal(test_run_tool(&out, local), 0);
    assert_non_null(strstr(out, "Dealt to alice ["));
    assert_null(strstr(out, "Dealt to bob"));
    assert_non_null(strstr(out, "Seat 2: bob (big blind) folded before Flop\n"));
    free(out);
    const char *const everything[] = {"arbiter",       "poker", "history", "--data",
                                      server.data_dir, STREAM,  "1",       NULL};
    assert_int_equal(test_run_tool(&out, everything), 0);
    assert_non_null(strstr(out, "Dealt to alice ["));
    assert_non_null(strstr(out, "Dealt to bob ["));
    free(out);
    const char *const zero[] = {"arbiter",       "poker", "history", "--data",
                                server.data_dir, STREAM,  "0",       NULL};
    assert_int_equal(test_run_tool(&out, zero), 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_history_over_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_cli, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
