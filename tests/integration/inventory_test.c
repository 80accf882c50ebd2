/*
 * inventory_test.c - the shop (docs/inventory.md) over real WebSocket
 * against the real arbiterd.
 *
 * Two stories. A flash sale: 200 clients, each on its own connection and
 * opened beforehand, race for the 100 units of one item, released together
 * by a barrier from several threads; exactly 100 win and 100 are told
 * SOLD_OUT with nothing left, and the counts always add up to the stock. Half
 * of the winners then buy, the other half walk away, and the server's
 * timers give their units back; a confirm after that is RESERVATION_EXPIRED.
 * And a reservation whose deadline passes while the server is down expires
 * when it starts again, from the log alone. `arbiter verify` re-reads the
 * whole log after each.
 *
 * Each test starts its own server in a fresh directory and stops it with
 * SIGTERM, which must exit 0. Helper threads never call cmocka: they record
 * what they saw and the main thread asserts on it. Nothing here asserts on
 * time: deadlines only stop a hang. The one thing that needs the clock is
 * that a reservation made with a ttl of TTL_S seconds is confirmed before it
 * expires; the confirms leave right after the race, far within that.
 */
#include "server.h"
#include "support.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/error.h"

#define SHOP "shop:sale"
#define SKU "lamp"
/* The race: this many clients for this many units, so that exactly half win. */
#define STOCK 100
#define CLIENTS 200
/* Threads sending the race's proposals, each owning CLIENTS / THREADS
 * connections: enough that the proposals arrive interleaved. */
#define THREADS 8
/* How many of the winners confirm; the others let their reservation expire. */
#define CONFIRMERS (STOCK / 2)
/* The ttl of the race's reservations: short, so that the expiry comes soon,
 * and long enough that the confirms, sent right after the race, are in time. */
#define TTL_S 3
/* How long, past the last deadline, the expiry may take before the test
 * gives up: a bound against a hang, not a measurement. */
#define EXPIRY_WAIT_MS 20000
#define ANSWER_TIMEOUT_MS 30000

_Static_assert(CLIENTS % THREADS == 0, "the threads share the clients evenly");
_Static_assert(CLIENTS == 2 * STOCK && CONFIRMERS < STOCK, "half win; some winners confirm");

typedef struct fixture {
    char *dir;
    char data[1100];
    test_server server;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_mkdtemp("inventory");
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

static void stop_and_verify(fixture *f)
{
    assert_int_equal(test_server_stop(&f->server, SIGTERM), 0);
    char *out = NULL;
    const char *const verify[] = {"arbiter", "verify", "--data", f->data, NULL};
    assert_int_equal(test_run_tool(&out, verify), 0);
    free(out);
}

static void nap_ms(long ms)
{
    struct timespec nap = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&nap, NULL);
}

/* The wall clock in Unix ms, the clock expires_at is on (same machine). */
static int64_t wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
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

static const char *string_of(const json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    if (value == NULL)
        fail_msg("%s is not a string", key);
    return value;
}

/* A rejection's code; fails on a commit. */
static const char *code_of(const json_t *outcome)
{
    if (strcmp(type_of(outcome), "rejected") != 0) {
        char *text = json_dumps(outcome, JSON_COMPACT);
        fail_msg("expected a rejection, got %s", text);
    }
    return string_of(outcome, "code");
}

static void expect_committed(const json_t *outcome)
{
    if (strcmp(type_of(outcome), "committed") != 0) {
        char *text = json_dumps(outcome, JSON_COMPACT);
        fail_msg("expected committed, got %s", text);
    }
}

/* The admin's view of the shop through GET /v1/streams/{stream} (a new
 * reference); *version_out gets its version when not NULL. */
static json_t *shop_state(const test_server *server, uint64_t *version_out)
{
    json_t *body = NULL;
    assert_int_equal(
        test_http(server, "GET", "/v1/streams/" SHOP, "X-Client-Id: admin\r\n", NULL, &body), 200);
    if (version_out != NULL)
        *version_out = (uint64_t)int_of(body, "version");
    json_t *state = json_incref(json_object_get(body, "state"));
    assert_non_null(state);
    json_decref(body);
    return state;
}

typedef struct counts {
    json_int_t stock, available, reserved, sold;
} counts;

/* An item's counts, with the invariant checked: available + reserved +
 * sold = stock, none negative. */
static counts item_counts(const json_t *state, const char *sku)
{
    const json_t *item = json_object_get(json_object_get(state, "items"), sku);
    assert_non_null(item);
    counts c = {int_of(item, "stock"), int_of(item, "available"), int_of(item, "reserved"),
                int_of(item, "sold")};
    assert_true(c.available >= 0 && c.reserved >= 0 && c.sold >= 0);
    if (c.available + c.reserved + c.sold != c.stock)
        fail_msg("%s: available %lld + reserved %lld + sold %lld != stock %lld", sku,
                 (long long)c.available, (long long)c.reserved, (long long)c.sold,
                 (long long)c.stock);
    return c;
}

/* A reservation's status in the admin's view. */
static const char *reservation_status(const json_t *state, const char *id)
{
    const json_t *reservation = json_object_get(json_object_get(state, "reservations"), id);
    if (reservation == NULL)
        fail_msg("no reservation %s in the state", id);
    return string_of(reservation, "status");
}

/* Poll the admin's view until no unit of sku is reserved, at most until
 * deadline_ms (wall clock). Returns the state (a new reference). */
static json_t *wait_until_nothing_reserved(const test_server *server, const char *sku,
                                           int64_t deadline_ms)
{
    for (;;) {
        json_t *state = shop_state(server, NULL);
        if (item_counts(state, sku).reserved == 0)
            return state;
        json_decref(state);
        if (wall_ms() > deadline_ms)
            fail_msg("reservations of %s still open %d ms after their deadline", sku,
                     EXPIRY_WAIT_MS);
        nap_ms(50);
    }
}

/* Poll the admin's view until reservation id has status, at most until
 * deadline_ms (wall clock). Returns the state (a new reference). */
static json_t *wait_for_status(const test_server *server, const char *id, const char *status,
                               int64_t deadline_ms)
{
    for (;;) {
        json_t *state = shop_state(server, NULL);
        if (strcmp(reservation_status(state, id), status) == 0)
            return state;
        json_decref(state);
        if (wall_ms() > deadline_ms)
            fail_msg("reservation %s not %s by the deadline", id, status);
        nap_ms(50);
    }
}

/* Every event of the shop (a new reference: an array), through the events
 * endpoint, page by page. */
static json_t *shop_events(const test_server *server)
{
    json_t *all = json_array();
    for (uint64_t since = 0;;) {
        char path[128];
        snprintf(path, sizeof path, "/v1/streams/%s/events?since=%llu", SHOP,
                 (unsigned long long)since);
        json_t *body = NULL;
        assert_int_equal(test_http(server, "GET", path, "X-Client-Id: admin\r\n", NULL, &body),
                         200);
        json_t *events = json_object_get(body, "events");
        size_t count = json_array_size(events);
        if (count > 0)
            since = (uint64_t)int_of(json_array_get(events, count - 1), "seq");
        json_array_extend(all, events);
        bool done = since >= (uint64_t)int_of(body, "version") || count == 0;
        json_decref(body);
        if (done)
            return all;
    }
}

static void add_item(arb_ws_client *admin, uint64_t client_seq, const char *sku, long long stock)
{
    json_t *outcome =
        test_ws_propose(admin, client_seq, SHOP, "add_item",
                        json_pack("{s:s, s:I, s:s, s:i}", "sku", sku, "stock", (json_int_t)stock,
                                  "name", "Desk lamp", "price", 2500));
    expect_committed(outcome);
    json_decref(outcome);
}

static json_t *reserve_args(const char *sku, int quantity, int ttl_s)
{
    return json_pack("{s:s, s:i, s:i}", "sku", sku, "quantity", quantity, "ttl_s", ttl_s);
}

static json_t *confirm(arb_ws_client *client, uint64_t client_seq, const char *reservation)
{
    return test_ws_propose(client, client_seq, SHOP, "confirm",
                           json_pack("{s:s}", "reservation", reservation));
}

/* The race. */

typedef struct race_client {
    arb_ws_client *client;
    char client_id[32];
    int send_rc;   /* of the reserve frame */
    int recv_rc;   /* of its answer */
    json_t *reply; /* the answer: committed or rejected (or anything else, to report) */
} race_client;

typedef struct race {
    race_client shoppers[CLIENTS];
    pthread_barrier_t barrier;
} race;

typedef struct race_thread {
    race *race;
    size_t first;
} race_thread;

static char reserve_frame[256];

/* One thread's share: wait at the barrier with the others, send every
 * reserve, then read every answer. Records, never asserts. */
static void *race_main(void *user)
{
    race_thread *thread = user;
    race_client *shoppers = &thread->race->shoppers[thread->first];
    size_t len = strlen(reserve_frame);
    pthread_barrier_wait(&thread->race->barrier);
    /* Yielding after each send lets the other threads' sends in between, so
     * that the proposals reach the server interleaved, not thread by thread. */
    for (size_t i = 0; i < CLIENTS / THREADS; i++) {
        shoppers[i].send_rc = arb_ws_send(shoppers[i].client, reserve_frame, len);
        sched_yield();
    }
    for (size_t i = 0; i < CLIENTS / THREADS; i++) {
        if (shoppers[i].send_rc != 0)
            continue;
        char *text = NULL;
        size_t text_len = 0;
        shoppers[i].recv_rc = arb_ws_recv(shoppers[i].client, ANSWER_TIMEOUT_MS, &text, &text_len);
        if (shoppers[i].recv_rc == 0) {
            json_error_t error;
            shoppers[i].reply = json_loadb(text, text_len, 0, &error);
            free(text);
        }
    }
    return NULL;
}

/* Open every shopper's connection, then release them all at once. */
static void run_race(const test_server *server, race *r)
{
    int len = snprintf(reserve_frame, sizeof reserve_frame,
                       "{\"type\":\"propose\",\"client_seq\":1,\"stream\":\"%s\","
                       "\"action\":\"reserve\",\"args\":{\"sku\":\"%s\",\"quantity\":1,"
                       "\"ttl_s\":%d}}",
                       SHOP, SKU, TTL_S);
    assert_true(len > 0 && (size_t)len < sizeof reserve_frame);
    for (size_t i = 0; i < CLIENTS; i++) {
        snprintf(r->shoppers[i].client_id, sizeof r->shoppers[i].client_id, "shopper-%03zu", i);
        r->shoppers[i].client = test_ws_open(server, r->shoppers[i].client_id);
    }
    assert_int_equal(pthread_barrier_init(&r->barrier, NULL, THREADS), 0);
    pthread_t threads[THREADS];
    race_thread shares[THREADS];
    for (size_t t = 0; t < THREADS; t++) {
        shares[t] = (race_thread){.race = r, .first = t * (CLIENTS / THREADS)};
        assert_int_equal(pthread_create(&threads[t], NULL, race_main, &shares[t]), 0);
    }
    for (size_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    pthread_barrier_destroy(&r->barrier);
    for (size_t i = 0; i < CLIENTS; i++) {
        const race_client *shopper = &r->shoppers[i];
        if (shopper->send_rc != 0 || shopper->recv_rc != 0 || shopper->reply == NULL)
            fail_msg("%s: send %s, answer %s", shopper->client_id, arb_err_name(shopper->send_rc),
                     arb_err_name(shopper->recv_rc));
        assert_int_equal(int_of(shopper->reply, "client_seq"), 1);
    }
}

/* A winner's reply: its reserved event names it and the reservation. */
static void check_win(const race_client *shopper, json_int_t *expires_at_out)
{
    const json_t *result = json_object_get(shopper->reply, "result");
    const char *id = string_of(result, "reservation");
    *expires_at_out = int_of(result, "expires_at");
    const json_t *event = json_array_get(json_object_get(shopper->reply, "events"), 0);
    assert_string_equal(string_of(event, "type"), "reserved");
    const json_t *data = json_object_get(event, "data");
    assert_string_equal(string_of(data, "reservation"), id);
    assert_string_equal(string_of(data, "owner"), shopper->client_id);
    assert_int_equal(int_of(data, "expires_at"), *expires_at_out);
    /* The server's clock decides the deadline: the ttl after the commit. */
    assert_int_equal(*expires_at_out, int_of(event, "applied_at") + TTL_S * 1000);
}

/* A loser's reply: SOLD_OUT, nothing left, and its snapshot agrees. */
static void check_loss(const race_client *shopper)
{
    assert_string_equal(code_of(shopper->reply), "SOLD_OUT");
    const json_t *details = json_object_get(shopper->reply, "details");
    assert_string_equal(string_of(details, "sku"), SKU);
    assert_int_equal(int_of(details, "available"), 0);
    const json_t *snapshot = json_object_get(shopper->reply, "snapshot");
    assert_int_equal(item_counts(snapshot, SKU).available, 0);
}

/* How the wins fell across the threads: a real race spreads them. */
static void print_spread(const size_t winners[STOCK])
{
    char spread[THREADS * 8] = "";
    for (size_t t = 0, at = 0; t < THREADS; t++) {
        size_t count = 0;
        for (size_t w = 0; w < STOCK; w++)
            count += winners[w] / (CLIENTS / THREADS) == t ? 1 : 0;
        at += (size_t)snprintf(spread + at, sizeof spread - at, " %zu", count);
    }
    print_message("winners per thread:%s\n", spread);
}

/* The first CONFIRMERS winners confirm, all at once (pipelined, each on its
 * own connection), right after the race: well within the ttl. */
static void confirm_all(const race *r, const size_t winners[STOCK], const char *const ids[STOCK])
{
    for (size_t w = 0; w < CONFIRMERS; w++)
        test_ws_send(r->shoppers[winners[w]].client, "{s:s, s:i, s:s, s:s, s:{s:s}}", "type",
                     "propose", "client_seq", 2, "stream", SHOP, "action", "confirm", "args",
                     "reservation", ids[w]);
    for (size_t w = 0; w < CONFIRMERS; w++) {
        json_t *outcome = test_ws_recv(r->shoppers[winners[w]].client, ANSWER_TIMEOUT_MS);
        if (strcmp(type_of(outcome), "committed") != 0)
            fail_msg("confirm of %s: %s (the machine took more than the %d s ttl?)", ids[w],
                     json_dumps(outcome, JSON_COMPACT), TTL_S);
        const json_t *line =
            json_array_get(json_object_get(json_object_get(outcome, "result"), "items"), 0);
        assert_string_equal(string_of(line, "sku"), SKU);
        assert_int_equal(int_of(line, "quantity"), 1);
        json_decref(outcome);
    }
}

/* The shop's `expired` events; each must be the system's. */
static size_t count_expired_events(const test_server *server)
{
    json_t *events = shop_events(server);
    size_t expired = 0, index;
    json_t *event;
    json_array_foreach (events, index, event) {
        if (strcmp(string_of(event, "type"), "expired") == 0) {
            assert_string_equal(string_of(event, "client_id"), "$system");
            expired++;
        }
    }
    json_decref(events);
    return expired;
}

/* 200 clients race for 100 units: exactly 100 win, 100 are told SOLD_OUT,
 * nothing is oversold. Half of the winners confirm; the other half's
 * reservations expire and their units come back; a late confirm is
 * RESERVATION_EXPIRED. */
static void test_flash_sale(void **state)
{
    fixture *f = *state;
    test_server_start(&f->server, f->data, NULL);
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    add_item(admin, 1, SKU, STOCK);

    race *r = calloc(1, sizeof *r);
    assert_non_null(r);
    run_race(&f->server, r);
    size_t winners[STOCK], won = 0, lost = 0;
    json_int_t last_deadline_ms = 0;
    for (size_t i = 0; i < CLIENTS; i++) {
        const race_client *shopper = &r->shoppers[i];
        if (strcmp(type_of(shopper->reply), "committed") == 0) {
            assert_true(won < STOCK); /* never oversold */
            winners[won++] = i;
            json_int_t expires_at = 0;
            check_win(shopper, &expires_at);
            last_deadline_ms = expires_at > last_deadline_ms ? expires_at : last_deadline_ms;
        } else {
            check_loss(shopper);
            lost++;
        }
    }
    assert_int_equal(won, STOCK);
    assert_int_equal(lost, CLIENTS - STOCK);
    print_spread(winners);
    json_t *shop = shop_state(&f->server, NULL);
    counts c = item_counts(shop, SKU);
    assert_int_equal(c.stock, STOCK);
    assert_int_equal(c.available, 0);
    assert_int_equal(c.sold, 0);
    json_decref(shop);

    /* The first CONFIRMERS winners buy; the others walk away. */
    const char *ids[STOCK];
    for (size_t w = 0; w < STOCK; w++)
        ids[w] = string_of(json_object_get(r->shoppers[winners[w]].reply, "result"), "reservation");
    confirm_all(r, winners, ids);
    shop = shop_state(&f->server, NULL);
    c = item_counts(shop, SKU);
    assert_int_equal(c.sold, CONFIRMERS);
    json_decref(shop);

    /* The timers give the other half back. */
    shop = wait_until_nothing_reserved(&f->server, SKU, last_deadline_ms + EXPIRY_WAIT_MS);
    c = item_counts(shop, SKU);
    assert_int_equal(c.stock, STOCK);
    assert_int_equal(c.available, STOCK - CONFIRMERS);
    assert_int_equal(c.reserved, 0);
    assert_int_equal(c.sold, CONFIRMERS);
    for (size_t w = 0; w < STOCK; w++)
        assert_string_equal(reservation_status(shop, ids[w]),
                            w < CONFIRMERS ? "confirmed" : "expired");
    json_decref(shop);
    /* Each expiry is an event of the system's, one per reservation left. */
    assert_int_equal(count_expired_events(&f->server), STOCK - CONFIRMERS);

    /* Too late: the units were never sold. A confirmed one stays closed;
     * another's reservation is not anyone else's to buy. */
    json_t *late = confirm(r->shoppers[winners[STOCK - 1]].client, 3, ids[STOCK - 1]);
    assert_string_equal(code_of(late), "RESERVATION_EXPIRED");
    const json_t *details = json_object_get(late, "details");
    assert_string_equal(string_of(details, "reservation"), ids[STOCK - 1]);
    assert_true(int_of(details, "expires_at") <= last_deadline_ms);
    json_decref(late);
    json_t *again = confirm(r->shoppers[winners[0]].client, 3, ids[0]);
    assert_string_equal(code_of(again), "RESERVATION_CLOSED");
    json_decref(again);
    size_t loser = 0;
    while (strcmp(type_of(r->shoppers[loser].reply), "rejected") != 0)
        loser++;
    json_t *theft = confirm(r->shoppers[loser].client, 2, ids[CONFIRMERS]);
    assert_string_equal(code_of(theft), "NOT_RESERVATION_OWNER");
    json_decref(theft);
    shop = shop_state(&f->server, NULL);
    c = item_counts(shop, SKU);
    assert_int_equal(c.available, STOCK - CONFIRMERS);
    assert_int_equal(c.sold, CONFIRMERS);
    json_decref(shop);

    for (size_t i = 0; i < CLIENTS; i++) {
        arb_ws_close(r->shoppers[i].client);
        json_decref(r->shoppers[i].reply);
    }
    free(r);
    arb_ws_close(admin);
    stop_and_verify(f);
}

/* A reservation whose deadline passes while the server is down expires when
 * it starts again; one with a long ttl stays open and can still be bought. */
static void test_expiry_across_restart(void **state)
{
    fixture *f = *state;
    test_server_start(&f->server, f->data, NULL);
    arb_ws_client *admin = test_ws_open(&f->server, "admin");
    add_item(admin, 1, "mug", 5);
    arb_ws_close(admin);
    arb_ws_client *alice = test_ws_open(&f->server, "alice");
    json_t *short_one = test_ws_propose(alice, 1, SHOP, "reserve", reserve_args("mug", 2, TTL_S));
    expect_committed(short_one);
    const json_t *result = json_object_get(short_one, "result");
    const char *soon = string_of(result, "reservation");
    json_int_t soon_deadline_ms = int_of(result, "expires_at");
    arb_ws_client *bob = test_ws_open(&f->server, "bob");
    json_t *long_one = test_ws_propose(bob, 1, SHOP, "reserve", reserve_args("mug", 1, 3600));
    expect_committed(long_one);
    const char *later = string_of(json_object_get(long_one, "result"), "reservation");
    arb_ws_close(alice);
    arb_ws_close(bob);
    assert_int_equal(test_server_stop(&f->server, SIGTERM), 0);

    /* Down until past the deadline, then up on the same data. */
    while (wall_ms() <= soon_deadline_ms)
        nap_ms(50);
    int64_t restarted_ms = wall_ms();
    test_server_start(&f->server, f->data, NULL);
    json_t *shop = wait_for_status(&f->server, soon, "expired", restarted_ms + EXPIRY_WAIT_MS);
    counts c = item_counts(shop, "mug");
    assert_int_equal(c.stock, 5);
    assert_int_equal(c.available, 4);
    assert_int_equal(c.reserved, 1);
    assert_int_equal(c.sold, 0);
    assert_string_equal(reservation_status(shop, later), "reserved");
    json_decref(shop);
    /* The expiry is the restarted server's doing, by its timer, logged. */
    json_t *events = shop_events(&f->server);
    json_t *last = json_array_get(events, json_array_size(events) - 1);
    assert_string_equal(string_of(last, "type"), "expired");
    assert_string_equal(string_of(last, "client_id"), "$system");
    assert_string_equal(string_of(json_object_get(last, "data"), "reservation"), soon);
    assert_true(int_of(last, "applied_at") >= restarted_ms);
    json_decref(events);

    alice = test_ws_open(&f->server, "alice");
    json_t *late = confirm(alice, 2, soon);
    assert_string_equal(code_of(late), "RESERVATION_EXPIRED");
    json_decref(late);
    bob = test_ws_open(&f->server, "bob");
    json_t *bought = confirm(bob, 2, later);
    expect_committed(bought);
    json_decref(bought);
    shop = shop_state(&f->server, NULL);
    c = item_counts(shop, "mug");
    assert_int_equal(c.available, 4);
    assert_int_equal(c.reserved, 0);
    assert_int_equal(c.sold, 1);
    json_decref(shop);
    arb_ws_close(alice);
    arb_ws_close(bob);
    json_decref(short_one);
    json_decref(long_one);
    stop_and_verify(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flash_sale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_across_restart, setup, teardown),
    };
    return cmocka_run_group_tests_name("inventory", tests, NULL, NULL);
}
