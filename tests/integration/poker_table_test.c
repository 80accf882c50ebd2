/*
 * poker_table_test.c - the poker table (docs/poker.md) over real WebSocket
 * against the real arbiterd.
 *
 * Six players: each plays on one connection and watches the table on
 * another (subscribed). The first hand starts when two have sat; it is
 * folded away, and the second deals all six in. Every watcher must receive
 * that hand_started with its own two hole cards and nobody else's; a player
 * who acts out of turn is rejected ILLEGAL_TURN, and the rejection carries
 * the table as that player may see it (its state is replaced by the
 * server's). Then the turn clock: at a table with a one-second clock one
 * player disconnects; the two others keep playing (each acts whenever the
 * state says it is its turn); the clock must play for the one who left -
 * a check, else a fold, recorded as timed_out in the log - and sit it out
 * after two turns in a row. And a table played alone: one human and two
 * of the server's bots, whose moves come from their timers; then the human
 * gives entropy to every next hand and checks every hand of that session
 * as docs/poker.md tells a player to: each hand keeps the commitment
 * published when the hand before it started and mixes exactly the entropy
 * given since, its commitment is its revealed seed's, and every card it
 * was shown is where that seed's (mixed) deck puts it (an implementation
 * of the documented algorithm written here, from the documentation). `arbiter verify`
 * re-reads the whole log after each.
 *
 * Nothing asserts on time: deadlines only stop a hang (the clock's own
 * turns are one second; the players poll the state every 20 ms and answer
 * at once).
 */
#include "server.h"
#include "support.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/error.h"

#define SIX "table:six"
#define CLOCK "table:clock"
#define PLAYERS 6
#define ANSWER_TIMEOUT_MS 30000
/* How long the clock and bot stories may take before the test gives up: a
 * bound against a hang (sanitizer builds are several times slower), not a
 * measurement. */
#define CLOCK_WAIT_MS 180000

typedef struct fixture {
    char *dir;
    char data[1100];
    test_server server;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_mkdtemp("poker");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    test_server_start(&f->server, f->data, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->server.pid > 0)
        assert_int_equal(test_server_stop(&f->server, SIGTERM), 0);
    const char *const verify[] = {"arbiter", "verify", "--data", f->data, NULL};
    char *out = NULL;
    int rc = test_run_tool(&out, verify);
    if (rc != 0)
        fail_msg("arbiter verify exited %d: %s", rc, out != NULL ? out : "");
    free(out);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static uint64_t next_seq(void)
{
    static uint64_t seq;
    if (seq == 0)
        seq = (uint64_t)time(NULL) * 1000;
    return ++seq;
}

static const char *type_of(const json_t *message)
{
    const char *type = json_string_value(json_object_get(message, "type"));
    assert_non_null(type);
    return type;
}

/* Propose and return the answer's type ("committed" or "rejected"); the
 * answer itself goes to *answer_out when that is not NULL. */
static const char *propose(arb_ws_client *client, const char *stream, const char *action,
                           json_t *args, json_t **answer_out)
{
    json_t *answer = test_ws_propose(client, next_seq(), stream, action, args);
    const char *type = strcmp(type_of(answer), "committed") == 0 ? "committed" : "rejected";
    if (answer_out != NULL)
        *answer_out = answer;
    else
        json_decref(answer);
    return type;
}

static void expect_committed(arb_ws_client *client, const char *stream, const char *action,
                             json_t *args)
{
    json_t *answer = NULL;
    if (strcmp(propose(client, stream, action, args, &answer), "committed") != 0) {
        char *text = json_dumps(answer, JSON_COMPACT);
        fail_msg("%s rejected: %s", action, text);
    }
    json_decref(answer);
}

static void create_table(const test_server *server, const char *stream, int seats, int turn_s)
{
    arb_ws_client *admin = test_ws_open(server, "admin");
    expect_committed(admin, stream, "create_table",
                     json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "table",
                               strchr(stream, ':') + 1, "seats", seats, "small_blind", 5,
                               "big_blind", 10, "buy_in_min", 100, "buy_in_max", 1000, "turn_s",
                               turn_s));
    arb_ws_close(admin);
}

/* The table's state as viewer sees it (HTTP). */
static json_t *table_state(const test_server *server, const char *stream, const char *viewer)
{
    char path[128], headers[128];
    snprintf(path, sizeof path, "/v1/streams/%s", stream);
    snprintf(headers, sizeof headers, "X-Client-Id: %s\r\n", viewer);
    json_t *body = NULL;
    assert_int_equal(test_http(server, "GET", path, headers, NULL, &body), 200);
    json_t *state = json_incref(json_object_get(body, "state"));
    json_decref(body);
    assert_non_null(state);
    return state;
}

static json_int_t int_of(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    assert_true(json_is_integer(value));
    return json_integer_value(value);
}

/* Read the watcher's messages until a patch brings hand_started of hand;
 * returns a copy of its data. */
static json_t *await_hand_started(arb_ws_client *watcher, json_int_t hand)
{
    for (;;) {
        json_t *message = test_ws_recv(watcher, ANSWER_TIMEOUT_MS);
        json_t *found = NULL;
        if (strcmp(type_of(message), "patch") == 0) {
            size_t i;
            json_t *event;
            json_array_foreach (json_object_get(message, "events"), i, event) {
                const json_t *data = json_object_get(event, "data");
                if (strcmp(json_string_value(json_object_get(event, "type")), "hand_started") ==
                        0 &&
                    int_of(data, "hand") == hand)
                    found = json_deep_copy(data);
            }
        }
        json_decref(message);
        if (found != NULL)
            return found;
    }
}

/* Whoever is to act in hand 1 folds until it ends. */
static void fold_hand_away(const test_server *server, arb_ws_client *const players[])
{
    for (int guard = 0; guard < PLAYERS; guard++) {
        json_t *state = table_state(server, SIX, "admin");
        json_int_t hands = int_of(state, "hands");
        json_int_t to_act = int_of(state, "to_act");
        json_decref(state);
        if (hands > 1)
            return;
        assert_true(to_act >= 0 && to_act < PLAYERS);
        expect_committed(players[to_act], SIX, "fold", json_object());
    }
    fail_msg("hand 1 did not end");
}

static void test_six_players_see_their_own_cards(void **state)
{
    fixture *f = *state;
    create_table(&f->server, SIX, PLAYERS, 600);
    arb_ws_client *players[PLAYERS], *watchers[PLAYERS];
    for (int i = 0; i < PLAYERS; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%d", i);
        players[i] = test_ws_open(&f->server, id);
        watchers[i] = test_ws_open(&f->server, id);
        test_ws_send(watchers[i], "{s:s, s:s}", "type", "subscribe", "stream", SIX);
        json_decref(test_ws_expect(watchers[i], "snapshot", ANSWER_TIMEOUT_MS));
    }
    for (int i = 0; i < PLAYERS; i++)
        expect_committed(players[i], SIX, "sit", json_pack("{s:i, s:i}", "seat", i, "buy_in", 500));
    fold_hand_away(&f->server, players);
    /* Hand 2 dealt all six in; each watcher sees its own cards only. */
    for (int i = 0; i < PLAYERS; i++) {
        json_t *started = await_hand_started(watchers[i], 2);
        const json_t *dealt = json_object_get(started, "dealt");
        assert_int_equal(json_array_size(dealt), PLAYERS);
        assert_null(json_object_get(started, "seed"));
        assert_null(json_object_get(started, "deck"));
        size_t k;
        json_t *entry;
        int own = 0;
        json_array_foreach (dealt, k, entry) {
            const json_t *cards = json_object_get(entry, "cards");
            if (int_of(entry, "seat") == i) {
                assert_int_equal(json_array_size(cards), 2);
                own++;
            } else {
                assert_true(json_is_null(cards));
            }
        }
        assert_int_equal(own, 1);
        json_decref(started);
    }
    /* Out of turn: rejected, with the table as that player sees it. */
    json_t *table = table_state(&f->server, SIX, "admin");
    json_int_t to_act = int_of(table, "to_act");
    json_decref(table);
    int other = (int)(to_act + 1) % PLAYERS;
    json_t *answer = NULL;
    assert_string_equal(propose(players[other], SIX, "check", json_object(), &answer), "rejected");
    assert_string_equal(json_string_value(json_object_get(answer, "code")), "ILLEGAL_TURN");
    json_t *snapshot = json_object_get(answer, "snapshot");
    assert_non_null(snapshot);
    const json_t *seats = json_object_get(json_object_get(snapshot, "state"), "seats");
    if (seats == NULL)
        seats = json_object_get(snapshot, "seats");
    assert_int_equal(json_array_size(seats), PLAYERS);
    for (int i = 0; i < PLAYERS; i++) {
        const json_t *cards = json_object_get(json_array_get(seats, (size_t)i), "cards");
        if (i == other)
            assert_int_equal(json_array_size(cards), 2);
        else
            assert_true(json_is_null(cards));
    }
    json_decref(answer);
    for (int i = 0; i < PLAYERS; i++) {
        arb_ws_close(players[i]);
        arb_ws_close(watchers[i]);
    }
}

/* The timed_out events of seat in the log (as the admin reads it). */
static int timed_out_count(const test_server *server, json_int_t seat)
{
    json_t *body = NULL;
    assert_int_equal(test_http(server, "GET", "/v1/streams/" CLOCK "/events?since=0&limit=1000",
                               "X-Client-Id: admin\r\n", NULL, &body),
                     200);
    int count = 0;
    size_t i;
    json_t *event;
    json_array_foreach (json_object_get(body, "events"), i, event) {
        if (strcmp(json_string_value(json_object_get(event, "type")), "timed_out") == 0 &&
            int_of(json_object_get(event, "data"), "seat") == seat)
            count++;
    }
    json_decref(body);
    return count;
}

static void test_clock_plays_for_a_player_who_left(void **state)
{
    fixture *f = *state;
    create_table(&f->server, CLOCK, 3, 1);
    arb_ws_client *players[3];
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        players[i] = test_ws_open(&f->server, id);
        expect_committed(players[i], CLOCK, "sit",
                         json_pack("{s:i, s:i}", "seat", i, "buy_in", 1000));
    }
    /* c0 is gone; c1 and c2 answer every turn of theirs at once. */
    arb_ws_close(players[0]);
    players[0] = NULL;
    bool sat_out = false;
    int waited_ms = 0;
    for (; !sat_out && waited_ms < CLOCK_WAIT_MS; waited_ms += 20) {
        json_t *table = table_state(&f->server, CLOCK, "admin");
        const json_t *seats = json_object_get(table, "seats");
        sat_out = json_is_true(json_object_get(json_array_get(seats, 0), "sitting_out"));
        json_int_t to_act = int_of(table, "to_act");
        if (!sat_out && json_is_true(json_object_get(table, "hand_active")) && to_act > 0) {
            const json_t *seat = json_array_get(seats, (size_t)to_act);
            bool may_check = int_of(seat, "bet") == int_of(table, "current_bet");
            /* The turn may have moved on meanwhile: a rejection is fine. */
            propose(players[to_act], CLOCK, may_check ? "check" : "call", json_object(), NULL);
        } else {
            usleep(20 * 1000);
        }
        json_decref(table);
    }
    printf("the clock sat c0 out after about %d ms\n", waited_ms);
    assert_true(sat_out);
    assert_true(timed_out_count(&f->server, 0) >= 2);
    arb_ws_close(players[1]);
    arb_ws_close(players[2]);
}

/* ---- A player's own fairness check (docs/poker.md, "Provable
 * fairness"), written from the documentation alone: nothing of
 * src/rules/poker is used, so a mistake there cannot hide here. ---- */

static void put_be64(uint8_t out[8], uint64_t value)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(value >> (56 - 8 * i));
}

static void commitment_of(const char *stream, uint64_t hand, const uint8_t seed[32],
                          uint8_t out[32])
{
    static const char label[] = "arbiter/poker/commit/v1";
    uint8_t number[8];
    put_be64(number, hand);
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, 32);
    crypto_generichash_update(&state, (const uint8_t *)label, sizeof label); /* with its 0 */
    crypto_generichash_update(&state, (const uint8_t *)stream, strlen(stream) + 1);
    crypto_generichash_update(&state, number, sizeof number);
    crypto_generichash_update(&state, seed, 32);
    crypto_generichash_final(&state, out, 32);
}

typedef struct deck_stream {
    const uint8_t *seed;
    uint64_t block;
    uint8_t bytes[64];
    size_t used;
} deck_stream;

static uint32_t next_u32(deck_stream *d)
{
    static const char label[] = "arbiter/poker/deck/v1";
    if (d->used == 0 || d->used == sizeof d->bytes) {
        uint8_t message[sizeof label + 8];
        memcpy(message, label, sizeof label);
        put_be64(message + sizeof label, d->block++);
        crypto_generichash(d->bytes, sizeof d->bytes, message, sizeof message, d->seed, 32);
        d->used = 0;
    }
    uint32_t value = (uint32_t)d->bytes[d->used] << 24 | (uint32_t)d->bytes[d->used + 1] << 16 |
                     (uint32_t)d->bytes[d->used + 2] << 8 | d->bytes[d->used + 3];
    d->used += 4;
    return value;
}

static void deck_of(const uint8_t seed[32], char deck[52][3])
{
    static const char ranks[] = "23456789TJQKA", suits[] = "cdhs";
    int cards[52];
    for (int k = 0; k < 52; k++)
        cards[k] = k;
    deck_stream d = {.seed = seed};
    for (int i = 51; i >= 1; i--) {
        uint64_t n = (uint64_t)i + 1, limit = (UINT64_C(1) << 32) - ((UINT64_C(1) << 32) % n);
        uint32_t u;
        do
            u = next_u32(&d);
        while (u >= limit);
        int j = (int)(u % n), swap = cards[i];
        cards[i] = cards[j];
        cards[j] = swap;
    }
    for (int k = 0; k < 52; k++) {
        deck[k][0] = ranks[cards[k] / 4];
        deck[k][1] = suits[cards[k] % 4];
        deck[k][2] = '\0';
    }
}

/* BLAKE2b-256 of a label (with its 0x00) and two 32-byte values. */
static void hash_labelled(const char *label, const uint8_t a[32], const uint8_t b[32],
                          uint8_t out[32])
{
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, 32);
    crypto_generichash_update(&state, (const uint8_t *)label, strlen(label) + 1);
    crypto_generichash_update(&state, a, 32);
    crypto_generichash_update(&state, b, 32);
    crypto_generichash_final(&state, out, 32);
}

static void unhex32(const json_t *text, uint8_t out[32])
{
    assert_true(json_is_string(text));
    assert_int_equal(sodium_hex2bin(out, 32, json_string_value(text), 64, NULL, NULL, NULL), 0);
}

static void assert_card(const json_t *card, const char *expected)
{
    assert_true(json_is_string(card));
    assert_string_equal(json_string_value(card), expected);
}

/* Check every hand of stream that the viewer saw end: it keeps the
 * commitment published when the hand before it started, mixes exactly the
 * entropy given since, its commitment is the revealed seed's, and every
 * card the viewer was shown (its own, the board, the hands shown) is where
 * the mixed seed's deck puts it. Returns the hands checked; *mixed_out
 * counts those whose deck had players' entropy. */
static int check_fairness(const test_server *server, const char *stream, const char *viewer,
                          int *mixed_out)
{
    *mixed_out = 0;
    char path[160], headers[96];
    snprintf(path, sizeof path, "/v1/streams/%s/events?since=0&limit=1000", stream);
    snprintf(headers, sizeof headers, "X-Client-Id: %s\r\n", viewer);
    json_t *body = NULL;
    assert_int_equal(test_http(server, "GET", path, headers, NULL, &body), 200);
    const json_t *events = json_object_get(body, "events");
    assert_true(json_array_size(events) < 1000); /* the whole session in one page */
    const json_t *started = NULL;
    json_t *seen = json_array(); /* [{type, data}] of the running hand */
    int checked = 0;
    /* The next hand's commitment, published when this one started, and the
     * players' entropy given since (mixed as docs/poker.md says). */
    uint8_t promised[32], mix[32] = {0};
    bool promise = false;
    int contributions = 0;
    size_t i;
    json_t *event;
    json_array_foreach (events, i, event) {
        const char *type = json_string_value(json_object_get(event, "type"));
        const json_t *data = json_object_get(event, "data");
        if (strcmp(type, "entropy_added") == 0) {
            uint8_t value[32], before[32];
            unhex32(json_object_get(data, "value"), value);
            memcpy(before, mix, sizeof before);
            hash_labelled("arbiter/poker/entropy/v1", before, value, mix);
            contributions++;
            continue;
        }
        if (strcmp(type, "hand_started") == 0) {
            /* The server kept its promise, and mixed exactly what was given. */
            uint8_t commitment[32], entropy[32];
            unhex32(json_object_get(data, "commitment"), commitment);
            if (promise)
                assert_memory_equal(commitment, promised, 32);
            if (contributions == 0) {
                assert_true(json_is_null(json_object_get(data, "entropy")));
            } else {
                unhex32(json_object_get(data, "entropy"), entropy);
                assert_memory_equal(entropy, mix, 32);
                (*mixed_out)++;
            }
            unhex32(json_object_get(data, "next_commitment"), promised);
            promise = true;
            memset(mix, 0, sizeof mix);
            contributions = 0;
            started = data;
            json_array_clear(seen);
            continue;
        }
        if (started == NULL)
            continue;
        json_array_append(seen, event);
        if (strcmp(type, "hand_ended") != 0)
            continue;
        uint8_t seed[32], commitment[32], published[32];
        assert_int_equal(sodium_hex2bin(seed, sizeof seed,
                                        json_string_value(json_object_get(data, "seed")), 64, NULL,
                                        NULL, NULL),
                         0);
        assert_int_equal(sodium_hex2bin(published, sizeof published,
                                        json_string_value(json_object_get(started, "commitment")),
                                        64, NULL, NULL, NULL),
                         0);
        commitment_of(stream, (uint64_t)int_of(started, "hand"), seed, commitment);
        assert_memory_equal(commitment, published, 32);
        /* The deck derives from the seed mixed with the hand's entropy. */
        uint8_t deck_seed[32];
        const json_t *hand_entropy = json_object_get(started, "entropy");
        if (json_is_null(hand_entropy)) {
            memcpy(deck_seed, seed, sizeof deck_seed);
        } else {
            uint8_t entropy[32];
            unhex32(hand_entropy, entropy);
            hash_labelled("arbiter/poker/mix/v1", seed, entropy, deck_seed);
        }
        char deck[52][3];
        deck_of(deck_seed, deck);
        const json_t *dealt = json_object_get(started, "dealt");
        size_t n = json_array_size(dealt), k;
        json_t *entry;
        json_array_foreach (dealt, k, entry) {
            const json_t *cards = json_object_get(entry, "cards");
            if (json_is_array(cards)) {
                assert_card(json_array_get(cards, 0), deck[k]);
                assert_card(json_array_get(cards, 1), deck[k + n]);
            }
        }
        size_t board = 0, j;
        json_t *later;
        json_array_foreach (seen, j, later) {
            const char *kind = json_string_value(json_object_get(later, "type"));
            const json_t *what = json_object_get(later, "data");
            if (strcmp(kind, "street_dealt") == 0) {
                size_t c;
                json_t *card;
                json_array_foreach (json_object_get(what, "cards"), c, card) {
                    /* burns before the flop, the turn and the river */
                    size_t burns = board < 3 ? 1 : board < 4 ? 2 : 3;
                    assert_card(card, deck[2 * n + burns + board]);
                    board++;
                }
            } else if (strcmp(kind, "cards_shown") == 0) {
                json_int_t seat = int_of(what, "seat");
                size_t order = 0;
                json_array_foreach (dealt, k, entry)
                    if (int_of(entry, "seat") == seat)
                        order = k;
                assert_card(json_array_get(json_object_get(what, "cards"), 0), deck[order]);
                assert_card(json_array_get(json_object_get(what, "cards"), 1), deck[order + n]);
            }
        }
        checked++;
        started = NULL;
    }
    json_decref(seen);
    json_decref(body);
    return checked;
}

/* A table played alone: a human and two bots. The human checks or calls
 * whenever it is to act; the bots' moves come from their timers through
 * the real server, until two hands have been played. */
static void test_a_human_and_two_bots(void **state)
{
    fixture *f = *state;
    const char *stream = "table:bots";
    create_table(&f->server, stream, 3, 600);
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    for (int seat = 1; seat <= 2; seat++)
        expect_committed(admin, stream, "add_bot",
                         json_pack("{s:i, s:i}", "seat", seat, "buy_in", 1000));
    arb_ws_close(admin);
    arb_ws_client *human = test_ws_open(&f->server, "human");
    expect_committed(human, stream, "sit", json_pack("{s:i, s:i}", "seat", 0, "buy_in", 1000));
    json_int_t hands = 0, contributed_for = 0;
    int waited_ms = 0;
    for (; hands < 3 && waited_ms < CLOCK_WAIT_MS; waited_ms += 20) {
        json_t *table = table_state(&f->server, stream, "human");
        hands = int_of(table, "hands");
        const json_t *seats = json_object_get(table, "seats");
        assert_string_equal(json_string_value(json_object_get(json_array_get(seats, 1), "player")),
                            "bot.1");
        /* The bots' cards stay hidden from the human. */
        for (size_t i = 1; i <= 2; i++) {
            const json_t *seat = json_array_get(seats, i);
            if (!json_is_true(json_object_get(seat, "shown")))
                assert_true(json_is_null(json_object_get(seat, "cards")));
        }
        /* Once a hand, the human gives entropy to the next one. */
        if (hands > contributed_for) {
            char value[65];
            uint8_t bytes[32];
            randombytes_buf(bytes, sizeof bytes);
            sodium_bin2hex(value, sizeof value, bytes, sizeof bytes);
            propose(human, stream, "contribute", json_pack("{s:s}", "value", value), NULL);
            contributed_for = hands;
        }
        bool mine =
            json_is_true(json_object_get(table, "hand_active")) && int_of(table, "to_act") == 0;
        if (mine) {
            const json_t *seat = json_array_get(seats, 0);
            bool may_check = int_of(seat, "bet") == int_of(table, "current_bet");
            propose(human, stream, may_check ? "check" : "call", json_object(), NULL);
        } else {
            usleep(20 * 1000);
        }
        json_decref(table);
    }
    printf("two hands with the bots took about %d ms\n", waited_ms);
    assert_true(hands >= 3); /* two hands played to the end */
    /* The human checks the session's fairness from what it was shown. */
    int mixed = 0;
    int checked = check_fairness(&f->server, stream, "human", &mixed);
    printf("fairness: %d hands recomputed from their revealed seeds, %d started with the "
           "players' entropy\n",
           checked, mixed);
    assert_true(checked >= 2);
    assert_true(mixed >= 1);
    arb_ws_close(human);
}

/* Away and back: when a seated player's last session ends the server
 * holds the seat for grace_s, then sits the player out; a player whose
 * session begins again within the grace keeps playing. */
static void test_grace_for_a_player_who_left(void **state)
{
    fixture *f = *state;
    const char *stream = "table:grace";
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    expect_committed(admin, stream, "create_table",
                     json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "table", "grace",
                               "seats", 4, "small_blind", 5, "big_blind", 10, "buy_in_min", 100,
                               "buy_in_max", 1000, "turn_s", 600, "grace_s", 1));
    arb_ws_close(admin);
    arb_ws_client *gone = test_ws_open(&f->server, "gone");
    arb_ws_client *back = test_ws_open(&f->server, "back");
    expect_committed(gone, stream, "sit", json_pack("{s:i, s:i}", "seat", 0, "buy_in", 500));
    expect_committed(back, stream, "sit", json_pack("{s:i, s:i}", "seat", 1, "buy_in", 500));
    /* "back" keeps a second session open while the first one closes: it
     * is still here. "gone" closes its only one. */
    arb_ws_client *second = test_ws_open(&f->server, "back");
    arb_ws_close(back);
    arb_ws_close(gone);
    bool gone_out = false, back_away = false;
    for (int waited_ms = 0; !gone_out && waited_ms < CLOCK_WAIT_MS; waited_ms += 20) {
        json_t *table = table_state(&f->server, stream, "admin");
        const json_t *seats = json_object_get(table, "seats");
        gone_out = json_is_true(json_object_get(json_array_get(seats, 0), "sitting_out"));
        back_away = back_away || int_of(json_array_get(seats, 1), "away_since") != 0;
        json_decref(table);
        usleep(20 * 1000);
    }
    assert_true(gone_out);
    assert_false(back_away);
    json_t *table = table_state(&f->server, stream, "admin");
    assert_false(json_is_true(
        json_object_get(json_array_get(json_object_get(table, "seats"), 1), "sitting_out")));
    assert_true(int_of(json_array_get(json_object_get(table, "seats"), 0), "away_since") > 0);
    json_decref(table);
    /* "gone" comes back: its seat is no longer away (it sits in itself). */
    gone = test_ws_open(&f->server, "gone");
    json_int_t away = 1;
    for (int waited_ms = 0; away != 0 && waited_ms < CLOCK_WAIT_MS; waited_ms += 20) {
        table = table_state(&f->server, stream, "admin");
        away = int_of(json_array_get(json_object_get(table, "seats"), 0), "away_since");
        json_decref(table);
        usleep(20 * 1000);
    }
    assert_int_equal(away, 0);
    expect_committed(gone, stream, "sit_in", json_object());
    arb_ws_close(gone);
    arb_ws_close(second);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_six_players_see_their_own_cards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_plays_for_a_player_who_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_human_and_two_bots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_for_a_player_who_left, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
