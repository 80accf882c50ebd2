/*
 * inventory_test.c - the inventory rule module (stream kind "shop").
 *
 * Most tests drive the real engine (engine_fixture: a data directory, a
 * manual clock, restarts): every action and rejection code of
 * docs/inventory.md, expiry by the timer and across a restart, carts that
 * are all or nothing, owner checks, admin-only actions, and what each
 * viewer sees. After every proposal the shop's invariants are checked on
 * the engine's state twice over: recomputed here from the admin view, and
 * by the module's own check() (the view is loaded as a snapshot, which runs
 * it). Tests that need the module's insides (corrupt snapshots and events,
 * check(), the closed-reservation bound, the reservation limit) drive the
 * module directly.
 *
 * A randomized test (seed from ARB_SEED, else the time; printed) runs add,
 * restock, reserve, reserve_cart, confirm, release, clock advances with
 * timers, and restarts through the engine against a small independent model,
 * and ends with arb_verify checking every event of the log.
 *
 * view_load (a client's state from its viewer's view) is tested directly:
 * the admin's view round-trips, a user's makes a partial state whose bounds
 * are pinned, malformed views are CORRUPT, and a randomized test with fixed
 * seeds has clients follow the server's events as redact shows them and
 * predict their viewer's commands exactly as the server decides them.
 */
#include "engine_fixture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/inventory/inventory.h"
#include "rules/inventory/inventory_internal.h"

#define SHOP "shop:main"
#define T0_MS ENGINE_FIXTURE_CLOCK_START_MS
#define MAX ARB_JSON_INT_MAX

/* The last outcome, kept until the next proposal so tests can read it. */
static arb_outcome g_out;
static bool g_out_set;
/* One counter for every client's client_seq: increasing for each of them. */
static uint64_t g_client_seq;

static void out_clear(void)
{
    if (g_out_set)
        arb_outcome_clear(&g_out);
    g_out_set = false;
}

static json_t *detail(const char *key)
{
    return json_object_get(g_out.details, key);
}

static json_t *result(const char *key)
{
    return json_object_get(g_out.result, key);
}

/* The admin view of the shop (new reference), NULL when it does not exist. */
static json_t *shop_view(engine_fixture *f, uint64_t *version_out)
{
    arb_principal admin = {.id = "test", .role = ARB_ROLE_ADMIN};
    json_t *view = NULL;
    uint64_t version = 0;
    int rc = arb_engine_state(f->engine, SHOP, &admin, &view, &version);
    if (rc == ARB_ESTREAM_NOT_FOUND)
        return NULL;
    assert_int_equal(rc, 0);
    if (version_out != NULL)
        *version_out = version;
    return view;
}

/* The invariants of docs/inventory.md, recomputed from a view: for every
 * item available + reserved + sold = stock, all >= 0, and reserved = the
 * sum of the open reservations' lines of it. */
static void check_view(const json_t *view)
{
    json_t *sums = json_object();
    const char *id, *sku;
    json_t *reservation, *item;
    json_object_foreach (json_object_get(view, "reservations"), id, reservation) {
        const char *status = json_string_value(json_object_get(reservation, "status"));
        assert_non_null(status);
        if (strcmp(status, "reserved") != 0)
            continue;
        size_t i;
        json_t *line;
        json_array_foreach (json_object_get(reservation, "items"), i, line) {
            const char *line_sku = json_string_value(json_object_get(line, "sku"));
            json_int_t sum = json_integer_value(json_object_get(sums, line_sku));
            sum += json_integer_value(json_object_get(line, "quantity"));
            json_object_set_new(sums, line_sku, json_integer(sum));
        }
    }
    json_object_foreach (json_object_get(view, "items"), sku, item) {
        json_int_t available = json_integer_value(json_object_get(item, "available"));
        json_int_t reserved = json_integer_value(json_object_get(item, "reserved"));
        json_int_t sold = json_integer_value(json_object_get(item, "sold"));
        json_int_t stock = json_integer_value(json_object_get(item, "stock"));
        if (available < 0 || reserved < 0 || sold < 0 || available + reserved + sold != stock)
            fail_msg("item %s: available %lld + reserved %lld + sold %lld != stock %lld", sku,
                     (long long)available, (long long)reserved, (long long)sold, (long long)stock);
        if (reserved != json_integer_value(json_object_get(sums, sku)))
            fail_msg("item %s: reserved %lld, but its open reservations hold %lld", sku,
                     (long long)reserved,
                     (long long)json_integer_value(json_object_get(sums, sku)));
    }
    json_decref(sums);
}

/* Both checks of the shop's invariants on the engine's state. */
static void check_shop(engine_fixture *f)
{
    uint64_t version = 0;
    json_t *view = shop_view(f, &version);
    if (view == NULL)
        return;
    check_view(view);
    /* The admin view is the snapshot without its format: loading it runs
     * the module's check() on exactly the engine's state. */
    json_object_set_new(view, "format", json_integer(ARB__INVENTORY_SNAPSHOT_FORMAT));
    void *state = NULL;
    int rc = arb_rules_inventory.snapshot_load(view, version, &state, NULL);
    if (rc != 0)
        fail_msg("the engine's shop state does not load back: %s", arb_err_name(rc));
    arb_rules_inventory.state_free(state);
    json_decref(view);
}

/* Propose on SHOP; the outcome stays in g_out. Returns its code (0 committed). */
static int vact(engine_fixture *f, const char *who, arb_role role, const char *action,
                const char *format, va_list ap)
{
    out_clear();
    uint64_t seq = role == ARB_ROLE_SYSTEM ? arb_engine_client_seq_max(f->engine, "$system") + 1
                                           : ++g_client_seq;
    int code = test_vpropose(f->engine, &g_out, who, role, seq, SHOP, action, format, ap);
    g_out_set = true;
    check_shop(f);
    return code;
}

static int admin(engine_fixture *f, const char *action, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int code = vact(f, "admin", ARB_ROLE_ADMIN, action, format, ap);
    va_end(ap);
    return code;
}

static int user(engine_fixture *f, const char *who, const char *action, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int code = vact(f, who, ARB_ROLE_USER, action, format, ap);
    va_end(ap);
    return code;
}

static int sys(engine_fixture *f, const char *action, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int code = vact(f, "$system", ARB_ROLE_SYSTEM, action, format, ap);
    va_end(ap);
    return code;
}

static void add_item(engine_fixture *f, const char *sku, json_int_t stock)
{
    assert_int_equal(admin(f, "add_item", "{s:s, s:I}", "sku", sku, "stock", stock), 0);
}

/* An item's field in the admin view. */
static json_int_t item_field(engine_fixture *f, const char *sku, const char *field)
{
    json_t *view = shop_view(f, NULL);
    json_t *item = json_object_get(json_object_get(view, "items"), sku);
    if (item == NULL)
        fail_msg("no item %s", sku);
    json_int_t value = json_integer_value(json_object_get(item, field));
    json_decref(view);
    return value;
}

static json_int_t available(engine_fixture *f, const char *sku)
{
    return item_field(f, sku, "available");
}

/* A reservation's status in the admin view ("" when it is not there). */
static void status_of(engine_fixture *f, const char *id, char *status, size_t size)
{
    json_t *view = shop_view(f, NULL);
    json_t *reservation = json_object_get(json_object_get(view, "reservations"), id);
    const char *text = json_string_value(json_object_get(reservation, "status"));
    snprintf(status, size, "%s", text != NULL ? text : "");
    json_decref(view);
}

static void assert_status(engine_fixture *f, const char *id, const char *expected)
{
    char status[32];
    status_of(f, id, status, sizeof status);
    assert_string_equal(status, expected);
}

/* who reserves quantity of sku for ttl_s; checks the result; id gets the
 * reservation's id. */
static void reserve_ok(engine_fixture *f, const char *who, const char *sku, int quantity, int ttl_s,
                       char *id, size_t size)
{
    uint64_t seq = engine_fixture_version(f, SHOP) + 1;
    assert_int_equal(user(f, who, "reserve", "{s:s, s:i, s:i}", "sku", sku, "quantity", quantity,
                          "ttl_s", ttl_s),
                     0);
    snprintf(id, size, "r%" PRIu64, seq);
    assert_string_equal(json_string_value(result("reservation")), id);
    assert_int_equal(json_integer_value(result("expires_at")), f->clock.now_ms + ttl_s * 1000LL);
    assert_int_equal(g_out.seq_first, seq);
}

static int on_reservation(engine_fixture *f, const char *who, arb_role role, const char *action,
                          const char *id)
{
    if (role == ARB_ROLE_SYSTEM)
        return sys(f, action, "{s:s}", "reservation", id);
    if (role == ARB_ROLE_ADMIN)
        return admin(f, action, "{s:s}", "reservation", id);
    return user(f, who, action, "{s:s}", "reservation", id);
}

static size_t tick(engine_fixture *f)
{
    size_t fired = 0;
    assert_int_equal(arb_engine_tick(f->engine, &fired), 0);
    check_shop(f);
    return fired;
}

static int teardown(void **state)
{
    out_clear();
    return engine_fixture_teardown(state);
}

#define SHOP_TEST(test) cmocka_unit_test_setup_teardown(test, engine_fixture_setup, teardown)

/* Items: add_item and restock (admin). */

static void test_add_item_and_view(void **state)
{
    engine_fixture *f = *state;
    assert_int_equal(admin(f, "add_item", "{s:s, s:i, s:s, s:i}", "sku", "mug", "stock", 5, "name",
                           "Blue mug", "price", 1250),
                     0);
    assert_null(g_out.result);
    assert_int_equal(g_out.event_count, 1);
    assert_string_equal(g_out.events[0].type, "item_added");
    json_t *expected = json_pack("{s:s, s:i, s:s, s:i}", "sku", "mug", "stock", 5, "name",
                                 "Blue mug", "price", 1250);
    assert_true(json_equal(g_out.events[0].data, expected));
    json_decref(expected);
    /* name and price are optional: "" and 0. */
    add_item(f, "pen", 0);
    json_t *view = shop_view(f, NULL);
    expected =
        json_pack("{s:{s:{s:s, s:i, s:i, s:i, s:i, s:i, s:i}, s:{s:s, s:i, s:i, s:i, s:i, "
                  "s:i, s:i}}, s:{}}",
                  "items", "mug", "name", "Blue mug", "price", 1250, "stock", 5, "available", 5,
                  "reserved", 0, "sold", 0, "version", 1, "pen", "name", "", "price", 0, "stock", 0,
                  "available", 0, "reserved", 0, "sold", 0, "version", 2, "reservations");
    assert_true(json_equal(view, expected));
    json_decref(view);
    json_decref(expected);
    /* The largest stock a JSON integer holds is allowed. */
    assert_int_equal(admin(f, "add_item", "{s:s, s:I}", "sku", "bulk", "stock", (json_int_t)MAX),
                     0);
    engine_fixture_verify(f, NULL);
}

static void test_item_exists(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    assert_int_equal(admin(f, "add_item", "{s:s, s:i}", "sku", "mug", "stock", 9),
                     ARB_EITEM_EXISTS);
    assert_string_equal(json_string_value(detail("sku")), "mug");
    assert_int_equal(item_field(f, "mug", "stock"), 5);
    assert_int_equal(g_out.version, 1);
}

static void test_admin_only_actions(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    /* The role is checked before the arguments: a malformed add_item from a
     * user is FORBIDDEN too. */
    assert_int_equal(user(f, "alice", "add_item", "{s:s, s:i}", "sku", "pen", "stock", 1),
                     ARB_EFORBIDDEN);
    assert_int_equal(user(f, "alice", "add_item", "{}"), ARB_EFORBIDDEN);
    assert_int_equal(user(f, "alice", "restock", "{s:s, s:i}", "sku", "mug", "quantity", 1),
                     ARB_EFORBIDDEN);
    assert_int_equal(user(f, "alice", "expire", "{s:s}", "reservation", "r1"), ARB_EFORBIDDEN);
    assert_int_equal(admin(f, "expire", "{s:s}", "reservation", "r1"), ARB_EFORBIDDEN);
    assert_int_equal(item_field(f, "mug", "stock"), 5);
    /* The system may do what an admin may (it never does). */
    assert_int_equal(sys(f, "restock", "{s:s, s:i}", "sku", "mug", "quantity", 1), 0);
    assert_int_equal(item_field(f, "mug", "stock"), 6);
}

static void test_restock(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    char id[32];
    reserve_ok(f, "alice", "mug", 2, 60, id, sizeof id);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "mug", "quantity", 10), 0);
    assert_string_equal(g_out.events[0].type, "restocked");
    assert_int_equal(item_field(f, "mug", "stock"), 15);
    assert_int_equal(available(f, "mug"), 13);
    assert_int_equal(item_field(f, "mug", "reserved"), 2);
    assert_int_equal(item_field(f, "mug", "version"), 3);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "cup", "quantity", 1),
                     ARB_EITEM_NOT_FOUND);
    assert_string_equal(json_string_value(detail("sku")), "cup");
    /* stock stays a JSON integer. */
    assert_int_equal(
        admin(f, "add_item", "{s:s, s:I}", "sku", "bulk", "stock", (json_int_t)MAX - 1), 0);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "bulk", "quantity", 2),
                     ARB_EOVERFLOW);
    assert_int_equal(json_integer_value(detail("stock")), MAX - 1);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "bulk", "quantity", 1), 0);
    assert_int_equal(item_field(f, "bulk", "stock"), MAX);
    engine_fixture_verify(f, NULL);
}

static void test_invalid_quantity(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    /* Not integers in range: INVALID_QUANTITY, naming the field. */
    const char *reserve = "{s:s, s:i, s:i}";
    assert_int_equal(user(f, "alice", "reserve", reserve, "sku", "mug", "quantity", 0, "ttl_s", 9),
                     ARB_EINVALID_QUANTITY);
    assert_string_equal(json_string_value(detail("field")), "quantity");
    assert_int_equal(user(f, "alice", "reserve", reserve, "sku", "mug", "quantity", -1, "ttl_s", 9),
                     ARB_EINVALID_QUANTITY);
    assert_int_equal(
        user(f, "alice", "reserve", "{s:s, s:s, s:i}", "sku", "mug", "quantity", "2", "ttl_s", 9),
        ARB_EINVALID_QUANTITY);
    assert_int_equal(user(f, "alice", "reserve", reserve, "sku", "mug", "quantity",
                          ARB_INVENTORY_RESERVE_QUANTITY_MAX + 1, "ttl_s", 9),
                     ARB_EINVALID_QUANTITY);
    assert_int_equal(json_integer_value(detail("max")), ARB_INVENTORY_RESERVE_QUANTITY_MAX);
    assert_int_equal(admin(f, "add_item", "{s:s, s:i}", "sku", "pen", "stock", -1),
                     ARB_EINVALID_QUANTITY);
    /* Integers past 2^53-1 never reach the rules: the engine refuses args
     * that are not exact JSON integers (INVALID_ARGUMENT, field args). */
    assert_int_equal(admin(f, "add_item", "{s:s, s:I}", "sku", "pen", "stock", (json_int_t)MAX + 1),
                     ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "args");
    assert_int_equal(admin(f, "add_item", "{s:s, s:b}", "sku", "pen", "stock", 1),
                     ARB_EINVALID_QUANTITY);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "mug", "quantity", 0),
                     ARB_EINVALID_QUANTITY);
    assert_int_equal(
        admin(f, "restock", "{s:s, s:I}", "sku", "mug", "quantity", (json_int_t)MAX + 1),
        ARB_EINVALID_ARGUMENT);
    assert_int_equal(available(f, "mug"), 5);
    assert_int_equal(engine_fixture_version(f, SHOP), 1);
}

static void test_invalid_argument(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    char long_text[ARB_INVENTORY_NAME_BYTES_MAX + 2];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    char long_sku[ARB_INVENTORY_SKU_BYTES_MAX + 2];
    memset(long_sku, 's', sizeof long_sku - 1);
    long_sku[sizeof long_sku - 1] = '\0';
    /* Missing, wrongly typed, too long, out of range, unknown. */
    assert_int_equal(admin(f, "add_item", "{s:i}", "stock", 1), ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "sku");
    assert_int_equal(admin(f, "add_item", "{s:s}", "sku", "pen"), ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "stock");
    assert_int_equal(admin(f, "add_item", "{s:s, s:i}", "sku", "", "stock", 1),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(f, "add_item", "{s:s, s:i}", "sku", long_sku, "stock", 1),
                     ARB_EINVALID_ARGUMENT);
    long_sku[ARB_INVENTORY_SKU_BYTES_MAX] = '\0'; /* the longest sku is fine */
    assert_int_equal(admin(f, "add_item", "{s:s, s:i}", "sku", long_sku, "stock", 1), 0);
    assert_int_equal(
        admin(f, "add_item", "{s:s, s:i, s:s}", "sku", "pen", "stock", 1, "name", long_text),
        ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "name");
    assert_int_equal(admin(f, "add_item", "{s:s, s:i, s:i}", "sku", "pen", "stock", 1, "name", 7),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(admin(f, "add_item", "{s:s, s:i, s:I}", "sku", "pen", "stock", 1, "price",
                           (json_int_t)ARB_INVENTORY_PRICE_MAX + 1),
                     ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "price");
    assert_int_equal(admin(f, "add_item", "{s:s, s:i, s:i}", "sku", "pen", "stock", 1, "price", -1),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(
        admin(f, "add_item", "{s:s, s:i, s:s}", "sku", "pen", "stock", 1, "colour", "red"),
        ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "colour");
    assert_int_equal(user(f, "alice", "reserve", "{s:s, s:i}", "sku", "mug", "quantity", 1),
                     ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "ttl_s");
    assert_int_equal(user(f, "alice", "reserve", "{s:s, s:i}", "sku", "mug", "ttl_s", 5),
                     ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "quantity");
    assert_int_equal(
        user(f, "alice", "reserve", "{s:s, s:i, s:i}", "sku", "mug", "quantity", 1, "ttl_s", 0),
        ARB_EINVALID_ARGUMENT);
    assert_int_equal(user(f, "alice", "reserve", "{s:s, s:i, s:i}", "sku", "mug", "quantity", 1,
                          "ttl_s", ARB_INVENTORY_TTL_S_MAX + 1),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(user(f, "alice", "reserve", "{s:s, s:i, s:i, s:b}", "sku", "mug", "quantity",
                          1, "ttl_s", 5, "hurry", 1),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(user(f, "alice", "confirm", "{}"), ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "reservation");
    assert_int_equal(user(f, "alice", "release", "{s:i}", "reservation", 4), ARB_EINVALID_ARGUMENT);
    assert_int_equal(user(f, "alice", "steal", "{}"), ARB_EUNKNOWN_ACTION);
    assert_string_equal(json_string_value(detail("action")), "steal");
    /* The longest ttl is allowed. */
    assert_int_equal(user(f, "alice", "reserve", "{s:s, s:i, s:i}", "sku", "mug", "quantity", 1,
                          "ttl_s", ARB_INVENTORY_TTL_S_MAX),
                     0);
    assert_int_equal(available(f, "mug"), 4);
}

/* Reservations. */

static void test_reserve_and_confirm(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    char id[32];
    reserve_ok(f, "alice", "mug", 2, 60, id, sizeof id);
    assert_string_equal(id, "r2");
    assert_string_equal(g_out.events[0].type, "reserved");
    json_t *expected =
        json_pack("{s:s, s:s, s:[{s:s, s:i}], s:I}", "reservation", "r2", "owner", "alice", "items",
                  "sku", "mug", "quantity", 2, "expires_at", (json_int_t)(T0_MS + 60000));
    assert_true(json_equal(g_out.events[0].data, expected));
    json_decref(expected);
    assert_int_equal(available(f, "mug"), 3);
    assert_int_equal(item_field(f, "mug", "reserved"), 2);
    assert_int_equal(arb_engine_next_deadline(f->engine), T0_MS + 60000);
    f->clock.now_ms += 59999;
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", id), 0);
    assert_string_equal(g_out.events[0].type, "confirmed");
    expected = json_pack("{s:s, s:[{s:s, s:i}]}", "reservation", "r2", "items", "sku", "mug",
                         "quantity", 2);
    assert_true(json_equal(g_out.events[0].data, expected));
    assert_true(json_equal(g_out.result, expected));
    json_decref(expected);
    assert_int_equal(available(f, "mug"), 3);
    assert_int_equal(item_field(f, "mug", "reserved"), 0);
    assert_int_equal(item_field(f, "mug", "sold"), 2);
    assert_int_equal(item_field(f, "mug", "stock"), 5);
    assert_status(f, id, "confirmed");
    /* Late calls get a clear code. */
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", id),
                     ARB_ERESERVATION_CLOSED);
    assert_string_equal(json_string_value(detail("status")), "confirmed");
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "release", id),
                     ARB_ERESERVATION_CLOSED);
    /* The timer falls due, is stale, and is dropped without a proposal
     * (timer_due): nothing changes, nothing is logged. */
    uint64_t version = engine_fixture_version(f, SHOP);
    f->clock.now_ms += 1;
    assert_int_equal(tick(f), 0);
    assert_int_equal(engine_fixture_version(f, SHOP), version);
    assert_int_equal(item_field(f, "mug", "sold"), 2);
    assert_int_equal(arb_engine_next_deadline(f->engine), INT64_MAX);
    /* After its deadline a confirmed reservation is still closed, not expired. */
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", id),
                     ARB_ERESERVATION_CLOSED);
    engine_fixture_verify(f, NULL);
}

static void test_release(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    char id[32];
    reserve_ok(f, "alice", "mug", 4, 60, id, sizeof id);
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "release", id), 0);
    assert_null(g_out.result);
    assert_string_equal(g_out.events[0].type, "released");
    assert_int_equal(available(f, "mug"), 5);
    assert_int_equal(item_field(f, "mug", "reserved"), 0);
    assert_int_equal(item_field(f, "mug", "sold"), 0);
    assert_status(f, id, "released");
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "release", id),
                     ARB_ERESERVATION_CLOSED);
    assert_string_equal(json_string_value(detail("status")), "released");
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", id),
                     ARB_ERESERVATION_CLOSED);
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", "r999"),
                     ARB_ERESERVATION_NOT_FOUND);
    assert_string_equal(json_string_value(detail("reservation")), "r999");
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "release", "nope"),
                     ARB_ERESERVATION_NOT_FOUND);
}

static void test_sold_out_never_oversells(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    char a[32], b[32];
    reserve_ok(f, "alice", "mug", 3, 60, a, sizeof a);
    assert_int_equal(
        user(f, "bob", "reserve", "{s:s, s:i, s:i}", "sku", "mug", "quantity", 3, "ttl_s", 60),
        ARB_ESOLD_OUT);
    assert_int_equal(json_integer_value(detail("available")), 2);
    assert_string_equal(json_string_value(detail("sku")), "mug");
    reserve_ok(f, "bob", "mug", 2, 60, b, sizeof b);
    assert_int_equal(
        user(f, "carol", "reserve", "{s:s, s:i, s:i}", "sku", "mug", "quantity", 1, "ttl_s", 60),
        ARB_ESOLD_OUT);
    assert_int_equal(json_integer_value(detail("available")), 0);
    /* Sold units stay sold; released ones come back. */
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", a), 0);
    assert_int_equal(on_reservation(f, "bob", ARB_ROLE_USER, "release", b), 0);
    assert_int_equal(available(f, "mug"), 2);
    assert_int_equal(
        user(f, "carol", "reserve", "{s:s, s:i, s:i}", "sku", "mug", "quantity", 3, "ttl_s", 60),
        ARB_ESOLD_OUT);
    assert_int_equal(json_integer_value(detail("available")), 2);
    assert_int_equal(
        user(f, "carol", "reserve", "{s:s, s:i, s:i}", "sku", "cup", "quantity", 1, "ttl_s", 60),
        ARB_EITEM_NOT_FOUND);
    assert_string_equal(json_string_value(detail("sku")), "cup");
    /* An item added with no stock is sold out until restocked. */
    add_item(f, "pen", 0);
    assert_int_equal(
        user(f, "carol", "reserve", "{s:s, s:i, s:i}", "sku", "pen", "quantity", 1, "ttl_s", 60),
        ARB_ESOLD_OUT);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "pen", "quantity", 1), 0);
    assert_int_equal(
        user(f, "carol", "reserve", "{s:s, s:i, s:i}", "sku", "pen", "quantity", 1, "ttl_s", 60),
        0);
}

static void test_owner_checks(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 5);
    char id[32];
    reserve_ok(f, "alice", "mug", 2, 60, id, sizeof id);
    assert_int_equal(on_reservation(f, "bob", ARB_ROLE_USER, "confirm", id),
                     ARB_ENOT_RESERVATION_OWNER);
    assert_string_equal(json_string_value(detail("reservation")), id);
    assert_int_equal(on_reservation(f, "bob", ARB_ROLE_USER, "release", id),
                     ARB_ENOT_RESERVATION_OWNER);
    /* Not even an admin may confirm or release someone else's reservation. */
    assert_int_equal(on_reservation(f, NULL, ARB_ROLE_ADMIN, "confirm", id),
                     ARB_ENOT_RESERVATION_OWNER);
    assert_int_equal(on_reservation(f, NULL, ARB_ROLE_ADMIN, "release", id),
                     ARB_ENOT_RESERVATION_OWNER);
    assert_int_equal(item_field(f, "mug", "reserved"), 2);
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "release", id), 0);
    /* The owner check comes before the status: bob learns nothing more
     * about alice's reservation once it is closed or expired. */
    assert_int_equal(on_reservation(f, "bob", ARB_ROLE_USER, "release", id),
                     ARB_ENOT_RESERVATION_OWNER);
    /* An admin's own reservation is the admin's to confirm. */
    assert_int_equal(
        admin(f, "reserve", "{s:s, s:i, s:i}", "sku", "mug", "quantity", 1, "ttl_s", 60), 0);
    char mine[32];
    snprintf(mine, sizeof mine, "%s", json_string_value(result("reservation")));
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", mine),
                     ARB_ENOT_RESERVATION_OWNER);
    assert_int_equal(on_reservation(f, NULL, ARB_ROLE_ADMIN, "confirm", mine), 0);
    reserve_ok(f, "alice", "mug", 1, 60, id, sizeof id);
    f->clock.now_ms += 60000;
    assert_int_equal(on_reservation(f, "bob", ARB_ROLE_USER, "confirm", id),
                     ARB_ENOT_RESERVATION_OWNER);
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", id),
                     ARB_ERESERVATION_EXPIRED);
}

/* Expiry. */

static void test_expiry_by_timer(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "mug", 10);
    char early[32], late[32];
    reserve_ok(f, "alice", "mug", 3, 10, early, sizeof early);
    reserve_ok(f, "alice", "mug", 4, 20, late, sizeof late);
    assert_int_equal(arb_engine_next_deadline(f->engine), T0_MS + 10000);
    f->clock.now_ms += 9999;
    assert_int_equal(tick(f), 0);
    /* Not yet due: the system's expire is refused (and would be dropped). */
    assert_int_equal(sys(f, "expire", "{s:s}", "reservation", early), ARB_EINVALID_ARGUMENT);
    assert_int_equal(json_integer_value(detail("expires_at")), T0_MS + 10000);
    /* At expires_at the reservation is expired, even before its timer fires. */
    f->clock.now_ms += 1;
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", early),
                     ARB_ERESERVATION_EXPIRED);
    assert_int_equal(json_integer_value(detail("expires_at")), T0_MS + 10000);
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "release", early),
                     ARB_ERESERVATION_EXPIRED);
    assert_int_equal(item_field(f, "mug", "reserved"), 7);
    assert_int_equal(tick(f), 1);
    assert_status(f, early, "expired");
    assert_int_equal(available(f, "mug"), 6);
    assert_int_equal(item_field(f, "mug", "reserved"), 4);
    json_t *events = NULL;
    assert_int_equal(
        arb_engine_events(f->engine, SHOP, engine_fixture_version(f, SHOP) - 1, 0, &events), 0);
    json_t *event = json_array_get(events, 0);
    assert_string_equal(json_string_value(json_object_get(event, "type")), "expired");
    assert_string_equal(json_string_value(json_object_get(event, "client_id")), "$system");
    json_t *expected = json_pack("{s:s, s:[{s:s, s:i}]}", "reservation", early, "items", "sku",
                                 "mug", "quantity", 3);
    assert_true(json_equal(json_object_get(event, "data"), expected));
    json_decref(expected);
    json_decref(events);
    /* Late calls: RESERVATION_EXPIRED, not RESERVATION_NOT_FOUND. */
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", early),
                     ARB_ERESERVATION_EXPIRED);
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "release", early),
                     ARB_ERESERVATION_EXPIRED);
    /* A second expire (a stale timer) is refused. */
    assert_int_equal(sys(f, "expire", "{s:s}", "reservation", early), ARB_ERESERVATION_CLOSED);
    assert_int_equal(sys(f, "expire", "{s:s}", "reservation", "r77"), ARB_ERESERVATION_NOT_FOUND);
    /* The other one is still good until its own deadline. */
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", late), 0);
    f->clock.now_ms += 60000;
    assert_int_equal(tick(f), 0); /* stale: dropped without a proposal */
    assert_int_equal(item_field(f, "mug", "sold"), 4);
    assert_int_equal(available(f, "mug"), 6);
    engine_fixture_verify(f, NULL);
}

/* Reserve, stop the server, let the deadline pass while it is down, start
 * it again: the first tick expires the reservation and the units return. */
static void expire_across_restart(engine_fixture *f)
{
    add_item(f, "mug", 5);
    char id[32], kept[32];
    reserve_ok(f, "alice", "mug", 3, 30, id, sizeof id);
    reserve_ok(f, "bob", "mug", 1, 600, kept, sizeof kept);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "mug", "quantity", 1), 0);
    arb_engine_close(f->engine);
    f->engine = NULL;
    f->clock.now_ms += 60000;
    engine_fixture_open(f);
    assert_int_equal(arb_engine_next_deadline(f->engine), T0_MS + 30000);
    assert_int_equal(item_field(f, "mug", "reserved"), 4);
    /* Before the tick the deadline has passed all the same. */
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", id),
                     ARB_ERESERVATION_EXPIRED);
    assert_int_equal(tick(f), 1);
    assert_status(f, id, "expired");
    assert_status(f, kept, "reserved");
    assert_int_equal(available(f, "mug"), 5);
    assert_int_equal(item_field(f, "mug", "reserved"), 1);
    assert_int_equal(arb_engine_next_deadline(f->engine), T0_MS + 600000);
    /* Once more: a replay of the log reports the expired reservation's
     * deadline again; it fires, is stale, and changes nothing. */
    uint64_t version = engine_fixture_version(f, SHOP);
    engine_fixture_reopen(f);
    tick(f);
    assert_int_equal(engine_fixture_version(f, SHOP), version);
    assert_int_equal(arb_engine_next_deadline(f->engine), T0_MS + 600000);
    assert_int_equal(on_reservation(f, "bob", ARB_ROLE_USER, "confirm", kept), 0);
    engine_fixture_verify(f, NULL);
}

static void test_expiry_across_restart_from_the_log(void **state)
{
    engine_fixture *f = *state;
    f->snapshot_every = UINT32_MAX; /* recovery replays every event */
    engine_fixture_reopen(f);
    expire_across_restart(f);
}

static void test_expiry_across_restart_from_a_snapshot(void **state)
{
    engine_fixture *f = *state;
    f->snapshot_every = 1; /* recovery loads the snapshot at the last seq */
    engine_fixture_reopen(f);
    expire_across_restart(f);
}

/* Carts. */

static void test_reserve_cart_all_or_nothing(void **state)
{
    engine_fixture *f = *state;
    add_item(f, "a", 5);
    add_item(f, "b", 2);
    add_item(f, "c", 10);
    uint64_t version = engine_fixture_version(f, SHOP);
    json_t *before = shop_view(f, NULL);
    /* The second line cannot be had: nothing is reserved. */
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items",
                          "sku", "a", "quantity", 2, "sku", "b", "quantity", 3, "ttl_s", 60),
                     ARB_ESOLD_OUT);
    assert_int_equal(json_integer_value(detail("item")), 1);
    assert_string_equal(json_string_value(detail("sku")), "b");
    assert_int_equal(json_integer_value(detail("available")), 2);
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items",
                          "sku", "a", "quantity", 2, "sku", "zz", "quantity", 1, "ttl_s", 60),
                     ARB_EITEM_NOT_FOUND);
    assert_int_equal(json_integer_value(detail("item")), 1);
    assert_string_equal(json_string_value(detail("sku")), "zz");
    /* Malformed carts, each naming the line. */
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items",
                          "sku", "a", "quantity", 1, "sku", "a", "quantity", 1, "ttl_s", 60),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(json_integer_value(detail("item")), 1);
    assert_string_equal(json_string_value(detail("field")), "sku");
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items",
                          "sku", "a", "quantity", 1, "sku", "b", "quantity", 0, "ttl_s", 60),
                     ARB_EINVALID_QUANTITY);
    assert_int_equal(json_integer_value(detail("item")), 1);
    assert_string_equal(json_string_value(detail("field")), "quantity");
    assert_int_equal(
        user(f, "alice", "reserve_cart", "{s:[{s:s}], s:i}", "items", "sku", "a", "ttl_s", 60),
        ARB_EINVALID_ARGUMENT);
    assert_int_equal(json_integer_value(detail("item")), 0);
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[{s:s, s:i, s:i}], s:i}", "items", "sku",
                          "a", "quantity", 1, "gift", 1, "ttl_s", 60),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[s], s:i}", "items", "a", "ttl_s", 60),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[], s:i}", "items", "ttl_s", 60),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:{}, s:i}", "items", "ttl_s", 60),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(
        user(f, "alice", "reserve_cart", "{s:[{s:s, s:i}]}", "items", "sku", "a", "quantity", 1),
        ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "ttl_s");
    json_t *after = shop_view(f, NULL);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    assert_int_equal(engine_fixture_version(f, SHOP), version);
    assert_int_equal(arb_engine_next_deadline(f->engine), INT64_MAX);
    /* A cart that fits is one reservation, one event, one deadline. */
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items",
                          "sku", "a", "quantity", 2, "sku", "b", "quantity", 2, "ttl_s", 60),
                     0);
    assert_int_equal(g_out.event_count, 1);
    assert_string_equal(json_string_value(result("reservation")), "r4");
    assert_int_equal(json_integer_value(result("expires_at")), T0_MS + 60000);
    json_t *expected = json_pack("{s:s, s:s, s:[{s:s, s:i}, {s:s, s:i}], s:I}", "reservation", "r4",
                                 "owner", "alice", "items", "sku", "a", "quantity", 2, "sku", "b",
                                 "quantity", 2, "expires_at", (json_int_t)(T0_MS + 60000));
    assert_true(json_equal(g_out.events[0].data, expected));
    json_decref(expected);
    assert_int_equal(available(f, "a"), 3);
    assert_int_equal(available(f, "b"), 0);
    /* Confirmed as a whole, released as a whole, expired as a whole. */
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", "r4"), 0);
    assert_int_equal(item_field(f, "a", "sold"), 2);
    assert_int_equal(item_field(f, "b", "sold"), 2);
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "b", "quantity", 4), 0);
    assert_int_equal(user(f, "bob", "reserve_cart", "{s:[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}], s:i}",
                          "items", "sku", "c", "quantity", 10, "sku", "b", "quantity", 4, "sku",
                          "a", "quantity", 3, "ttl_s", 5),
                     0);
    assert_int_equal(available(f, "a") + available(f, "b") + available(f, "c"), 0);
    f->clock.now_ms += 5000;
    assert_int_equal(tick(f), 1);
    assert_int_equal(available(f, "a"), 3);
    assert_int_equal(available(f, "b"), 4);
    assert_int_equal(available(f, "c"), 10);
    engine_fixture_verify(f, NULL);
}

static void test_reserve_cart_limits(void **state)
{
    engine_fixture *f = *state;
    json_t *items = json_array();
    for (int i = 0; i <= ARB_INVENTORY_CART_ITEMS_MAX; i++) {
        char sku[16];
        snprintf(sku, sizeof sku, "s%d", i);
        add_item(f, sku, 1);
        json_array_append_new(items, json_pack("{s:s, s:i}", "sku", sku, "quantity", 1));
    }
    /* 33 lines are too many; 32 are fine. */
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:O, s:i}", "items", items, "ttl_s", 60),
                     ARB_EINVALID_ARGUMENT);
    assert_string_equal(json_string_value(detail("field")), "items");
    json_array_remove(items, 0);
    assert_int_equal(user(f, "alice", "reserve_cart", "{s:O, s:i}", "items", items, "ttl_s", 60),
                     0);
    json_decref(items);
    assert_int_equal(available(f, "s0"), 1);
    assert_int_equal(available(f, "s32"), 0);
    engine_fixture_verify(f, NULL);
}

/* Limits: items per shop (through the engine, in full batches). */

static void test_items_limit(void **state)
{
    engine_fixture *f = *state;
    f->snapshot_every = UINT32_MAX;
    engine_fixture_reopen(f);
    arb_command *commands = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof *commands);
    arb_outcome *outcomes = calloc(ARB_BATCH_PROPOSALS_MAX, sizeof *outcomes);
    assert_true(commands != NULL && outcomes != NULL);
    for (size_t done = 0; done < ARB_INVENTORY_ITEMS_MAX; done += ARB_BATCH_PROPOSALS_MAX) {
        for (size_t i = 0; i < ARB_BATCH_PROPOSALS_MAX; i++) {
            char sku[16];
            snprintf(sku, sizeof sku, "i%zu", done + i);
            test_command(&commands[i], "admin", ARB_ROLE_ADMIN, ++g_client_seq, SHOP, "add_item",
                         "{s:s, s:i}", "sku", sku, "stock", 1);
        }
        assert_int_equal(arb_engine_execute(f->engine, commands, ARB_BATCH_PROPOSALS_MAX, outcomes),
                         0);
        for (size_t i = 0; i < ARB_BATCH_PROPOSALS_MAX; i++) {
            assert_int_equal(outcomes[i].kind, ARB_OUTCOME_COMMITTED);
            arb_outcome_clear(&outcomes[i]);
            arb_command_clear(&commands[i]);
        }
    }
    free(commands);
    free(outcomes);
    assert_int_equal(admin(f, "add_item", "{s:s, s:i}", "sku", "one-more", "stock", 1), ARB_ELIMIT);
    assert_string_equal(json_string_value(detail("limit")), "items");
    assert_int_equal(json_integer_value(detail("max")), ARB_INVENTORY_ITEMS_MAX);
    /* Existing items still work. */
    assert_int_equal(admin(f, "restock", "{s:s, s:i}", "sku", "i65535", "quantity", 1), 0);
    assert_int_equal(engine_fixture_version(f, SHOP), ARB_INVENTORY_ITEMS_MAX + 1);
}

/* Visibility. */

static json_t *events_as(engine_fixture *f, const char *who, arb_role role)
{
    arb_principal viewer = {.role = role};
    snprintf(viewer.id, sizeof viewer.id, "%s", who);
    json_t *events = NULL;
    assert_int_equal(arb_engine_events_as(f->engine, SHOP, 0, 0, &viewer, &events), 0);
    return events;
}

static void test_view_and_redaction(void **state)
{
    engine_fixture *f = *state;
    assert_int_equal(admin(f, "add_item", "{s:s, s:i, s:s, s:i}", "sku", "mug", "stock", 5, "name",
                           "Mug", "price", 900),
                     0);
    char a[32], b[32];
    reserve_ok(f, "alice", "mug", 2, 60, a, sizeof a);
    reserve_ok(f, "bob", "mug", 1, 60, b, sizeof b);
    assert_int_equal(on_reservation(f, "alice", ARB_ROLE_USER, "confirm", a), 0);
    /* bob sees every item with its counts, and only his own reservation. */
    arb_principal bob = {.id = "bob", .role = ARB_ROLE_USER};
    json_t *view = NULL;
    uint64_t version = 0;
    assert_int_equal(arb_engine_state(f->engine, SHOP, &bob, &view, &version), 0);
    json_t *expected = json_pack(
        "{s:{s:{s:s, s:i, s:i, s:i, s:i, s:i, s:i}}, s:{s:{s:s, s:[{s:s, s:i}], s:I, s:s, s:i}}}",
        "items", "mug", "name", "Mug", "price", 900, "stock", 5, "available", 2, "reserved", 1,
        "sold", 2, "version", 4, "reservations", b, "owner", "bob", "items", "sku", "mug",
        "quantity", 1, "expires_at", (json_int_t)(T0_MS + 60000), "status", "reserved", "version",
        3);
    assert_true(json_equal(view, expected));
    json_decref(expected);
    json_decref(view);
    /* An admin sees every reservation. */
    view = shop_view(f, NULL);
    assert_int_equal(json_object_size(json_object_get(view, "reservations")), 2);
    json_decref(view);
    /* bob's events: alice's reservation without her name, quantities kept;
     * his own whole. */
    json_t *events = events_as(f, "bob", ARB_ROLE_USER);
    assert_int_equal(json_array_size(events), 4);
    json_t *alices = json_object_get(json_array_get(events, 1), "data");
    expected = json_pack("{s:s, s:[{s:s, s:i}], s:I}", "reservation", a, "items", "sku", "mug",
                         "quantity", 2, "expires_at", (json_int_t)(T0_MS + 60000));
    assert_true(json_equal(alices, expected));
    json_decref(expected);
    json_t *bobs = json_object_get(json_array_get(events, 2), "data");
    assert_string_equal(json_string_value(json_object_get(bobs, "owner")), "bob");
    json_t *confirmed = json_object_get(json_array_get(events, 3), "data");
    assert_null(json_object_get(confirmed, "owner"));
    assert_int_equal(json_array_size(json_object_get(confirmed, "items")), 1);
    json_decref(events);
    /* alice and the admin see the owner. */
    events = events_as(f, "alice", ARB_ROLE_USER);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(events, 1), "data"), "owner")),
                        "alice");
    assert_null(json_object_get(json_object_get(json_array_get(events, 2), "data"), "owner"));
    json_decref(events);
    events = events_as(f, "root", ARB_ROLE_ADMIN);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(events, 2), "data"), "owner")),
                        "bob");
    json_decref(events);
    /* A user with no reservation sees the catalogue and nothing else. */
    arb_principal eve = {.id = "eve", .role = ARB_ROLE_USER};
    assert_int_equal(arb_engine_state(f->engine, SHOP, &eve, &view, &version), 0);
    assert_int_equal(json_object_size(json_object_get(view, "reservations")), 0);
    assert_int_equal(json_object_size(json_object_get(view, "items")), 1);
    json_decref(view);
    assert_ptr_equal(arb_rules_find("shop"), &arb_rules_inventory);
    assert_string_equal(arb_rules_inventory.kind, "shop");
}

/* The module driven directly: snapshots, check, evolve, limits. */

typedef struct direct {
    void *state;
    int64_t now_ms;
    uint64_t next_seq;
    uint64_t client_seq;
    size_t timers_reported;
    int64_t last_timer_ms;
    char last_timer_id[32];
    arb_decision decision;
} direct;

static void direct_timer(void *user_data, int64_t at_ms, const char *action, json_t *args)
{
    direct *d = user_data;
    assert_string_equal(action, "expire");
    assert_int_equal(json_object_size(args), 1);
    const char *id = json_string_value(json_object_get(args, "reservation"));
    assert_non_null(id);
    d->timers_reported++;
    d->last_timer_ms = at_ms;
    snprintf(d->last_timer_id, sizeof d->last_timer_id, "%s", id);
}

static direct *d_new(void)
{
    direct *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_int_equal(arb_rules_inventory.state_new(&d->state), 0);
    d->now_ms = T0_MS;
    d->next_seq = 1;
    arb_decision_init(&d->decision);
    return d;
}

static void d_free(direct *d)
{
    arb_decision_clear(&d->decision);
    arb_rules_inventory.state_free(d->state);
    free(d);
}

static void d_check(direct *d)
{
    char why[256];
    if (arb_rules_inventory.check(d->state, why, sizeof why) != 0)
        fail_msg("check: %s", why);
}

/* Evolve one event (data borrowed) at the next seq. */
static int d_evolve(direct *d, const char *type, json_t *data, bool with_timers)
{
    arb_event event;
    memset(&event, 0, sizeof event);
    snprintf(event.stream, sizeof event.stream, "%s", SHOP);
    snprintf(event.type, sizeof event.type, "%s", type);
    event.seq = d->next_seq;
    event.data = data;
    event.applied_at_ms = d->now_ms;
    arb_timer_sink sink = {.add = direct_timer, .user = d};
    int rc = arb_rules_inventory.evolve(d->state, &event, with_timers ? &sink : NULL);
    if (rc == 0)
        d->next_seq++;
    return rc;
}

/* Decide (steals args), evolve what it emits, check. Returns the code. */
static int d_run(direct *d, arb_role role, const char *who, const char *action, json_t *args)
{
    assert_non_null(args);
    arb_decision_clear(&d->decision);
    arb_command command;
    arb_command_init(&command);
    assert_int_equal(arb_command_set(&command, who, role, ++d->client_seq, SHOP, action, args), 0);
    json_decref(args);
    arb_ctx ctx = {.now_ms = d->now_ms, .next_seq = d->next_seq, .version = d->next_seq - 1};
    arb_rules_inventory.decide(d->state, &command, &ctx, &d->decision);
    arb_command_clear(&command);
    if (d->decision.code == 0) {
        assert_int_equal(d->decision.event_count, 1);
        assert_int_equal(d_evolve(d, d->decision.events[0].type, d->decision.events[0].data, true),
                         0);
    } else {
        assert_int_equal(d->decision.event_count, 0);
        assert_null(d->decision.result);
    }
    d_check(d);
    return d->decision.code;
}

static json_t *d_save(direct *d)
{
    json_t *snapshot = NULL;
    assert_int_equal(arb_rules_inventory.snapshot_save(d->state, &snapshot), 0);
    return snapshot;
}

/* Items mug (10) and pen (3); alice's reservations of every status:
 * r3 expired, r4 confirmed, r5 released, r6 open (a cart of both). */
static direct *d_fixture(void)
{
    direct *d = d_new();
    assert_int_equal(d_run(d, ARB_ROLE_ADMIN, "admin", "add_item",
                           json_pack("{s:s, s:i, s:s, s:i}", "sku", "mug", "stock", 10, "name",
                                     "Mug", "price", 5)),
                     0);
    assert_int_equal(d_run(d, ARB_ROLE_ADMIN, "admin", "add_item",
                           json_pack("{s:s, s:i}", "sku", "pen", "stock", 3)),
                     0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(d_run(d, ARB_ROLE_USER, "alice", "reserve",
                               json_pack("{s:s, s:i, s:i}", "sku", "mug", "quantity", 1 + i,
                                         "ttl_s", i == 0 ? 5 : 60)),
                         0);
    assert_int_equal(d_run(d, ARB_ROLE_USER, "alice", "reserve_cart",
                           json_pack("{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items", "sku", "mug",
                                     "quantity", 1, "sku", "pen", "quantity", 2, "ttl_s", 60)),
                     0);
    d->now_ms += 5000;
    assert_int_equal(
        d_run(d, ARB_ROLE_SYSTEM, "$system", "expire", json_pack("{s:s}", "reservation", "r3")), 0);
    assert_int_equal(
        d_run(d, ARB_ROLE_USER, "alice", "confirm", json_pack("{s:s}", "reservation", "r4")), 0);
    assert_int_equal(
        d_run(d, ARB_ROLE_USER, "alice", "release", json_pack("{s:s}", "reservation", "r5")), 0);
    return d;
}

static direct *d_loaded(direct *d, const json_t *snapshot)
{
    direct *loaded = d_new();
    arb_rules_inventory.state_free(loaded->state);
    loaded->state = NULL;
    arb_timer_sink sink = {.add = direct_timer, .user = loaded};
    assert_int_equal(
        arb_rules_inventory.snapshot_load(snapshot, d->next_seq - 1, &loaded->state, &sink), 0);
    loaded->now_ms = d->now_ms;
    loaded->next_seq = d->next_seq;
    d_check(loaded);
    return loaded;
}

static void test_snapshot_round_trip(void **unused)
{
    (void)unused;
    direct *d = d_fixture();
    json_t *saved = d_save(d);
    assert_int_equal(json_integer_value(json_object_get(saved, "format")), 1);
    assert_int_equal(json_object_size(json_object_get(saved, "reservations")), 4);
    direct *loaded = d_loaded(d, saved);
    json_t *again = d_save(loaded);
    assert_true(json_equal(saved, again));
    /* Only the open reservation's deadline is reported. */
    assert_int_equal(loaded->timers_reported, 1);
    assert_string_equal(loaded->last_timer_id, "r6");
    assert_int_equal(loaded->last_timer_ms, T0_MS + 60000);
    /* The loaded state decides exactly as the original. */
    const char *actions[] = {"confirm", "release", "confirm"};
    const char *ids[] = {"r3", "r4", "r6"};
    for (size_t i = 0; i < 3; i++) {
        int code =
            d_run(d, ARB_ROLE_USER, "alice", actions[i], json_pack("{s:s}", "reservation", ids[i]));
        int loaded_code = d_run(loaded, ARB_ROLE_USER, "alice", actions[i],
                                json_pack("{s:s}", "reservation", ids[i]));
        assert_int_equal(code, loaded_code);
        json_t *left = d_save(d), *right = d_save(loaded);
        assert_true(json_equal(left, right));
        json_decref(left);
        json_decref(right);
    }
    json_decref(saved);
    json_decref(again);
    d_free(loaded);
    d_free(d);
}

/* A copy of base with one change at path (keys separated by '/', array
 * indexes as numbers; value, stolen, NULL deletes). */
static json_t *json_changed(const json_t *base, const char *path, json_t *value)
{
    json_t *copy = json_deep_copy(base);
    json_t *parent = copy;
    char keys[128];
    snprintf(keys, sizeof keys, "%s", path);
    char *key = keys, *slash;
    while ((slash = strchr(key, '/')) != NULL) {
        *slash = '\0';
        parent = json_is_array(parent) ? json_array_get(parent, (size_t)atoi(key))
                                       : json_object_get(parent, key);
        assert_non_null(parent);
        key = slash + 1;
    }
    if (value != NULL)
        json_object_set_new(parent, key, value);
    else
        json_object_del(parent, key);
    return copy;
}

/* Load a copy of snapshot, taken at seq, with one change at path (as for
 * json_changed); expect ARB_ECORRUPT. */
static void expect_corrupt(const json_t *snapshot, uint64_t seq, const char *path, json_t *value)
{
    json_t *copy = json_changed(snapshot, path, value);
    void *state = NULL;
    int rc = arb_rules_inventory.snapshot_load(copy, seq, &state, NULL);
    if (rc != ARB_ECORRUPT)
        fail_msg("loading with %s changed gave %s", path, arb_err_name(rc));
    assert_null(state);
    json_decref(copy);
}

static void test_snapshot_load_rejects_corrupt(void **unused)
{
    (void)unused;
    direct *d = d_fixture();
    json_t *snapshot = d_save(d);
    uint64_t seq = d->next_seq - 1;
    assert_int_equal(seq, 9);
    /* Nothing may be newer than the snapshot's seq. */
    void *state = NULL;
    assert_int_equal(arb_rules_inventory.snapshot_load(snapshot, seq - 1, &state, NULL),
                     ARB_ECORRUPT);
    assert_null(state);
    expect_corrupt(snapshot, seq, "items/mug/version", json_integer((json_int_t)seq + 1));
    json_t *future = json_deep_copy(snapshot);
    json_t *reservations = json_object_get(future, "reservations");
    json_t *moved = json_deep_copy(json_object_get(reservations, "r6"));
    json_object_del(reservations, "r6");
    expect_corrupt(future, seq, "reservations/r10", moved);
    json_decref(future);
    /* Unknown fields, missing fields, wrong types. */
    expect_corrupt(snapshot, seq, "extra", json_true());
    expect_corrupt(snapshot, seq, "format", json_integer(2));
    expect_corrupt(snapshot, seq, "format", NULL);
    expect_corrupt(snapshot, seq, "items", json_array());
    expect_corrupt(snapshot, seq, "items/mug/colour", json_string("blue"));
    expect_corrupt(snapshot, seq, "items/mug/name", NULL);
    expect_corrupt(snapshot, seq, "items/mug/stock", json_real(10.0));
    expect_corrupt(snapshot, seq, "items/mug/price", json_integer(ARB_INVENTORY_PRICE_MAX + 1));
    expect_corrupt(snapshot, seq, "reservations/r6/note", json_string("x"));
    expect_corrupt(snapshot, seq, "reservations/r6/owner", json_string(""));
    expect_corrupt(snapshot, seq, "reservations/r6/status", json_string("pending"));
    expect_corrupt(snapshot, seq, "reservations/r6/items/1/sku", json_string("mug"));
    expect_corrupt(snapshot, seq, "reservations/r6/items/1/sku", json_string("cup"));
    expect_corrupt(snapshot, seq, "reservations/r6/items/1/quantity", json_integer(0));
    expect_corrupt(snapshot, seq, "reservations/r6/items/1/gift", json_true());
    expect_corrupt(snapshot, seq, "reservations/r6/items", json_array());
    /* Broken invariants. */
    expect_corrupt(snapshot, seq, "items/mug/available", json_integer(4));
    expect_corrupt(snapshot, seq, "items/mug/stock", json_integer(11));
    expect_corrupt(snapshot, seq, "items/pen/reserved", json_integer(1));
    expect_corrupt(snapshot, seq, "reservations/r6/items/1/quantity", json_integer(1));
    expect_corrupt(snapshot, seq, "reservations/r6/status", json_string("released"));
    expect_corrupt(snapshot, seq, "reservations/r4/status", json_string("reserved"));
    /* An open reservation is at the version that made it, a closed one later. */
    expect_corrupt(snapshot, seq, "reservations/r6/version", json_integer(7));
    expect_corrupt(snapshot, seq, "reservations/r4/version", json_integer(4));
    json_decref(snapshot);
    d_free(d);
}

static void test_check_detects_corruption(void **unused)
{
    (void)unused;
    direct *d = d_fixture();
    arb__inventory_state *shop = d->state;
    arb__inventory_item *mug = arb_map_get(&shop->items, "mug");
    char why[256];
    mug->available += 1; /* a unit from nowhere */
    assert_int_equal(arb_rules_inventory.check(d->state, why, sizeof why), ARB_ECORRUPT);
    assert_non_null(strstr(why, "mug"));
    mug->available -= 1;
    mug->available -= 1;
    mug->reserved += 1; /* the sum holds, the reservations do not */
    assert_int_equal(arb_rules_inventory.check(d->state, why, sizeof why), ARB_ECORRUPT);
    assert_non_null(strstr(why, "open reservations"));
    mug->available += 1;
    mug->reserved -= 1;
    shop->reservations_open += 1;
    assert_int_equal(arb_rules_inventory.check(d->state, why, sizeof why), ARB_ECORRUPT);
    shop->reservations_open -= 1;
    assert_int_equal(arb_rules_inventory.check(d->state, why, sizeof why), 0);
    assert_string_equal(why, "");
    d_free(d);
}

static void test_evolve_rejects_corrupt_events(void **unused)
{
    (void)unused;
    direct *d = d_fixture();
    json_t *before = d_save(d);
    size_t timers_before = d->timers_reported;
    const char *events[][2] = {
        {"item_added", "{\"sku\":\"mug\",\"stock\":1,\"name\":\"\",\"price\":0}"},
        {"item_added", "{\"sku\":\"cup\",\"stock\":1,\"name\":\"\"}"},
        {"item_added", "{\"sku\":\"cup\",\"stock\":-1,\"name\":\"\",\"price\":0}"},
        {"item_added", "{\"sku\":\"cup\",\"stock\":1,\"name\":\"\",\"price\":0,\"x\":1}"},
        {"restocked", "{\"sku\":\"cup\",\"quantity\":1}"},
        {"restocked", "{\"sku\":\"mug\",\"quantity\":0}"},
        {"restocked", "{\"sku\":\"mug\",\"quantity\":9007199254740991}"},
        {"reserved", "{\"reservation\":\"r9\",\"owner\":\"bob\",\"items\":[{\"sku\":\"mug\","
                     "\"quantity\":1}],\"expires_at\":1}"},
        {"reserved", "{\"reservation\":\"r10\",\"owner\":\"bob\",\"items\":[{\"sku\":\"mug\","
                     "\"quantity\":99}],\"expires_at\":1}"},
        {"reserved", "{\"reservation\":\"r10\",\"owner\":\"bob\",\"items\":[{\"sku\":\"mug\","
                     "\"quantity\":1},{\"sku\":\"mug\",\"quantity\":1}],\"expires_at\":1}"},
        {"reserved", "{\"reservation\":\"r10\",\"owner\":\"\",\"items\":[{\"sku\":\"mug\","
                     "\"quantity\":1}],\"expires_at\":1}"},
        {"reserved", "{\"reservation\":\"r10\",\"owner\":\"bob\",\"items\":[],\"expires_at\":1}"},
        {"confirmed", "{\"reservation\":\"r4\",\"items\":[{\"sku\":\"mug\",\"quantity\":2}]}"},
        {"confirmed", "{\"reservation\":\"r6\",\"items\":[{\"sku\":\"mug\",\"quantity\":1}]}"},
        {"released", "{\"reservation\":\"r6\",\"items\":[{\"sku\":\"pen\",\"quantity\":2},"
                     "{\"sku\":\"mug\",\"quantity\":1}]}"},
        {"expired", "{\"reservation\":\"r99\",\"items\":[{\"sku\":\"mug\",\"quantity\":1}]}"},
        {"stolen", "{}"},
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        json_error_t error;
        json_t *data = json_loads(events[i][1], 0, &error);
        if (data == NULL)
            fail_msg("bad test JSON %s: %s", events[i][1], error.text);
        int rc = d_evolve(d, events[i][0], data, true);
        json_decref(data);
        if (rc != ARB_ECORRUPT)
            fail_msg("evolve accepted %s %s", events[i][0], events[i][1]);
        json_t *after = d_save(d);
        assert_true(json_equal(before, after));
        json_decref(after);
    }
    assert_int_equal(d->timers_reported, timers_before);
    /* The well-formed ones are accepted. */
    json_t *data = json_pack("{s:s, s:s, s:[{s:s, s:i}], s:i}", "reservation", "r10", "owner",
                             "bob", "items", "sku", "mug", "quantity", 1, "expires_at", 1);
    assert_int_equal(d_evolve(d, "reserved", data, true), 0);
    json_decref(data);
    assert_int_equal(d->timers_reported, timers_before + 1);
    data = json_pack("{s:s, s:[{s:s, s:i}, {s:s, s:i}]}", "reservation", "r6", "items", "sku",
                     "mug", "quantity", 1, "sku", "pen", "quantity", 2);
    assert_int_equal(d_evolve(d, "released", data, true), 0);
    json_decref(data);
    d_check(d);
    json_decref(before);
    d_free(d);
}

static void test_closed_reservations_forgotten_oldest_first(void **unused)
{
    (void)unused;
    direct *d = d_fixture(); /* closed in this order: r3, r4, r5; r6 open */
    arb__inventory_set_closed_kept(d->state, 2);
    d_check(d);
    assert_int_equal(
        d_run(d, ARB_ROLE_USER, "alice", "confirm", json_pack("{s:s}", "reservation", "r3")),
        ARB_ERESERVATION_NOT_FOUND);
    assert_int_equal(
        d_run(d, ARB_ROLE_USER, "alice", "confirm", json_pack("{s:s}", "reservation", "r4")),
        ARB_ERESERVATION_CLOSED);
    json_t *saved = d_save(d);
    assert_int_equal(json_object_size(json_object_get(saved, "reservations")), 3);
    direct *loaded = d_loaded(d, saved);
    json_t *again = d_save(loaded);
    assert_true(json_equal(saved, again));
    /* The closing order survives the snapshot: r4 goes first. */
    arb__inventory_set_closed_kept(loaded->state, 1);
    assert_int_equal(
        d_run(loaded, ARB_ROLE_USER, "alice", "release", json_pack("{s:s}", "reservation", "r4")),
        ARB_ERESERVATION_NOT_FOUND);
    assert_int_equal(
        d_run(loaded, ARB_ROLE_USER, "alice", "release", json_pack("{s:s}", "reservation", "r5")),
        ARB_ERESERVATION_CLOSED);
    assert_int_equal(
        d_run(loaded, ARB_ROLE_USER, "alice", "release", json_pack("{s:s}", "reservation", "r6")),
        0);
    assert_int_equal(
        d_run(loaded, ARB_ROLE_USER, "alice", "release", json_pack("{s:s}", "reservation", "r5")),
        ARB_ERESERVATION_NOT_FOUND);
    json_decref(saved);
    json_decref(again);
    d_free(loaded);
    d_free(d);
}

/* Open reservations per shop: filled through evolve (the engine's path for
 * a replay), then one more is refused by decide. */
static void test_reservations_limit(void **unused)
{
    (void)unused;
    direct *d = d_new();
    assert_int_equal(d_run(d, ARB_ROLE_ADMIN, "admin", "add_item",
                           json_pack("{s:s, s:I}", "sku", "mug", "stock",
                                     (json_int_t)ARB_INVENTORY_RESERVATIONS_MAX + 1)),
                     0);
    for (size_t i = 0; i < ARB_INVENTORY_RESERVATIONS_MAX; i++) {
        char id[32];
        snprintf(id, sizeof id, "r%" PRIu64, d->next_seq);
        json_t *data =
            json_pack("{s:s, s:s, s:[{s:s, s:i}], s:I}", "reservation", id, "owner", "alice",
                      "items", "sku", "mug", "quantity", 1, "expires_at", (json_int_t)T0_MS);
        assert_int_equal(d_evolve(d, "reserved", data, false), 0);
        json_decref(data);
    }
    assert_int_equal(d_run(d, ARB_ROLE_USER, "bob", "reserve",
                           json_pack("{s:s, s:i, s:i}", "sku", "mug", "quantity", 1, "ttl_s", 5)),
                     ARB_ELIMIT);
    assert_string_equal(json_string_value(json_object_get(d->decision.details, "limit")),
                        "reservations");
    assert_int_equal(
        d_run(d, ARB_ROLE_USER, "bob", "reserve_cart",
              json_pack("{s:[{s:s, s:i}], s:i}", "items", "sku", "mug", "quantity", 1, "ttl_s", 5)),
        ARB_ELIMIT);
    /* Closing one makes room again. */
    d->now_ms += 1;
    assert_int_equal(
        d_run(d, ARB_ROLE_SYSTEM, "$system", "expire", json_pack("{s:s}", "reservation", "r2")), 0);
    assert_int_equal(d_run(d, ARB_ROLE_USER, "bob", "reserve",
                           json_pack("{s:s, s:i, s:i}", "sku", "mug", "quantity", 2, "ttl_s", 5)),
                     0);
    d_free(d);
}

/* view_load: a client's state from what its viewer sees. */

static json_t *d_view(direct *d, const arb_principal *viewer)
{
    json_t *view = arb_rules_inventory.view(d->state, viewer);
    assert_non_null(view);
    return view;
}

/* A client's state, loaded from viewer's view of d now. */
static void *c_load(direct *d, const arb_principal *viewer)
{
    json_t *view = d_view(d, viewer);
    void *state = NULL;
    int rc = arb_rules_inventory.view_load(view, d->next_seq - 1, viewer, &state);
    if (rc != 0)
        fail_msg("view_load: %s", arb_err_name(rc));
    json_decref(view);
    return state;
}

static void c_no_timer(void *user, int64_t at_ms, const char *action, json_t *args)
{
    (void)user;
    (void)at_ms;
    (void)action;
    (void)args;
}

/* Evolve on a client's state the event d committed last, as redact shows
 * it to viewer; the client runs no timers. */
static int c_follow(void *state, const arb_principal *viewer, direct *d)
{
    assert_int_equal(d->decision.code, 0);
    assert_int_equal(d->decision.event_count, 1);
    arb_event event;
    memset(&event, 0, sizeof event);
    snprintf(event.stream, sizeof event.stream, "%s", SHOP);
    snprintf(event.type, sizeof event.type, "%s", d->decision.events[0].type);
    event.seq = d->next_seq - 1;
    event.data = d->decision.events[0].data;
    event.applied_at_ms = d->now_ms;
    json_t *data = arb_rules_inventory.redact(&event, viewer);
    assert_non_null(data);
    event.data = data;
    arb_timer_sink sink = {.add = c_no_timer, .user = NULL};
    int rc = arb_rules_inventory.evolve(state, &event, &sink);
    json_decref(data);
    return rc;
}

/* Whether viewer sees the same on the client's state as on d's, and the
 * client's state passes check() (in its partial form for a user). */
static bool c_same_view(void *state, const arb_principal *viewer, direct *d)
{
    char why[256];
    if (arb_rules_inventory.check(state, why, sizeof why) != 0)
        fail_msg("check on the client's state: %s", why);
    json_t *expected = d_view(d, viewer);
    json_t *view = arb_rules_inventory.view(state, viewer);
    assert_non_null(view);
    bool same = json_equal(expected, view);
    if (!same) {
        char *left = json_dumps(expected, JSON_COMPACT | JSON_SORT_KEYS);
        char *right = json_dumps(view, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("server's view: %s\nclient's view: %s\n", left, right);
        free(left);
        free(right);
    }
    json_decref(expected);
    json_decref(view);
    return same;
}

static bool same_json(const json_t *left, const json_t *right)
{
    return (left == NULL && right == NULL) ||
           (left != NULL && right != NULL && json_equal(left, right));
}

/* Whether two decisions are the same: code, message, details, events (type
 * and data) and result. */
static bool same_decision(const arb_decision *left, const arb_decision *right)
{
    if (left->code != right->code || strcmp(left->message, right->message) != 0 ||
        !same_json(left->details, right->details) || !same_json(left->result, right->result) ||
        left->event_count != right->event_count)
        return false;
    for (size_t i = 0; i < left->event_count; i++)
        if (strcmp(left->events[i].type, right->events[i].type) != 0 ||
            !json_equal(left->events[i].data, right->events[i].data))
            return false;
    return true;
}

/* The one answer a partial state cannot know: another's reservation made
 * before the view and not closed since, which the server has and the
 * client does not (NOT_RESERVATION_OWNER there, RESERVATION_NOT_FOUND
 * here). */
static bool unknowable(const arb_decision *server, const arb_decision *client,
                       const void *client_state, const json_t *args)
{
    const arb__inventory_state *state = client_state;
    const char *id = json_string_value(json_object_get(args, "reservation"));
    uint64_t made_seq;
    return server->code == ARB_ENOT_RESERVATION_OWNER &&
           client->code == ARB_ERESERVATION_NOT_FOUND && state->partial && id != NULL &&
           arb_map_get(&state->reservations, id) == NULL &&
           arb__inventory_id_seq(id, state->view_seq, &made_seq);
}

/* Decide one command of viewer (args stolen) on d's state and on the
 * client's, with the same ctx (as a client predicts: no randomness).
 * Fails unless both decide the same, or the answer is unknowable (then
 * *unknowable_out). Returns the server's code. */
static int c_decide_both(direct *d, void *client_state, const arb_principal *viewer,
                         const char *action, json_t *args, bool *unknowable_out)
{
    arb_command command;
    arb_command_init(&command);
    assert_int_equal(
        arb_command_set(&command, viewer->id, viewer->role, ++d->client_seq, SHOP, action, args),
        0);
    arb_ctx ctx = {.now_ms = d->now_ms,
                   .next_seq = d->next_seq,
                   .version = d->next_seq - 1,
                   .random_bytes = NULL};
    arb_decision server, client;
    arb_decision_init(&server);
    arb_decision_init(&client);
    arb_rules_inventory.decide(d->state, &command, &ctx, &server);
    arb_rules_inventory.decide(client_state, &command, &ctx, &client);
    bool unknown = unknowable(&server, &client, client_state, args);
    if (!unknown && !same_decision(&server, &client)) {
        char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s %s by %s: the server decides %s (%s), the client %s (%s)", action, text,
                 viewer->id, arb_err_name(server.code), server.message, arb_err_name(client.code),
                 client.message);
    }
    if (unknowable_out != NULL)
        *unknowable_out = unknown;
    int code = server.code;
    arb_decision_clear(&server);
    arb_decision_clear(&client);
    arb_command_clear(&command);
    json_decref(args);
    return code;
}

static const arb_principal g_alice = {.id = "alice", .role = ARB_ROLE_USER};
static const arb_principal g_bob = {.id = "bob", .role = ARB_ROLE_USER};
static const arb_principal g_root = {.id = "root", .role = ARB_ROLE_ADMIN};

/* d_fixture, then bob's r10 (2 mugs) and his cart r11 (1 mug, 1 pen): pen
 * is then sold out. */
static direct *d_fixture_with_bob(void)
{
    direct *d = d_fixture();
    assert_int_equal(d_run(d, ARB_ROLE_USER, "bob", "reserve",
                           json_pack("{s:s, s:i, s:i}", "sku", "mug", "quantity", 2, "ttl_s", 60)),
                     0);
    assert_int_equal(d_run(d, ARB_ROLE_USER, "bob", "reserve_cart",
                           json_pack("{s:[{s:s, s:i}, {s:s, s:i}], s:i}", "items", "sku", "mug",
                                     "quantity", 1, "sku", "pen", "quantity", 1, "ttl_s", 60)),
                     0);
    assert_int_equal(d->next_seq, 12);
    return d;
}

/* An admin's (and the system's) view is the whole state: it loads as the
 * snapshot does, into a full state that saves to the same snapshot. */
static void test_view_load_admin_round_trip(void **unused)
{
    (void)unused;
    direct *d = d_fixture_with_bob();
    json_t *saved = d_save(d);
    const arb_principal system = {.id = "$system", .role = ARB_ROLE_SYSTEM};
    const arb_principal *viewers[] = {&g_root, &system, NULL};
    for (size_t i = 0; i < sizeof viewers / sizeof viewers[0]; i++) {
        void *client = c_load(d, viewers[i]);
        assert_false(((arb__inventory_state *)client)->partial);
        json_t *again = NULL;
        assert_int_equal(arb_rules_inventory.snapshot_save(client, &again), 0);
        assert_true(json_equal(saved, again));
        json_decref(again);
        assert_true(c_same_view(client, viewers[i], d));
        arb_rules_inventory.state_free(client);
    }
    /* It follows every event and decides every command as the server. */
    void *client = c_load(d, &g_root);
    assert_int_equal(
        d_run(d, ARB_ROLE_USER, "bob", "confirm", json_pack("{s:s}", "reservation", "r10")), 0);
    assert_int_equal(c_follow(client, &g_root, d), 0);
    assert_true(c_same_view(client, &g_root, d));
    assert_int_equal(c_decide_both(d, client, &g_root, "restock",
                                   json_pack("{s:s, s:i}", "sku", "pen", "quantity", 4), NULL),
                     0);
    assert_int_equal(c_decide_both(d, client, &g_root, "confirm",
                                   json_pack("{s:s}", "reservation", "r11"), NULL),
                     ARB_ENOT_RESERVATION_OWNER);
    arb_rules_inventory.state_free(client);
    json_decref(saved);
    d_free(d);
}

/* A user's view makes a partial state that follows the server's items and
 * decides the user's own commands as the server does. */
static void test_view_load_user_partial(void **unused)
{
    (void)unused;
    direct *d = d_fixture_with_bob();
    void *client = c_load(d, &g_alice);
    const arb__inventory_state *partial = client;
    assert_true(partial->partial);
    assert_int_equal(partial->view_seq, 11);
    assert_true(c_same_view(client, &g_alice, d));
    /* Of mug's 4 reserved units alice's r6 holds 1; of pen's 3, 2. */
    const arb__inventory_item *mug = arb_map_get(&partial->items, "mug");
    const arb__inventory_item *pen = arb_map_get(&partial->items, "pen");
    assert_int_equal(mug->reserved_unseen, 3);
    assert_int_equal(pen->reserved_unseen, 1);
    /* Her own commands decide the same; bob's pen is sold out for her. */
    assert_int_equal(
        c_decide_both(d, client, &g_alice, "reserve",
                      json_pack("{s:s, s:i, s:i}", "sku", "pen", "quantity", 1, "ttl_s", 30), NULL),
        ARB_ESOLD_OUT);
    assert_int_equal(c_decide_both(d, client, &g_alice, "confirm",
                                   json_pack("{s:s}", "reservation", "r6"), NULL),
                     0);
    assert_int_equal(c_decide_both(d, client, &g_alice, "release",
                                   json_pack("{s:s}", "reservation", "r4"), NULL),
                     ARB_ERESERVATION_CLOSED);
    /* bob's r11 predates the view: the client cannot know it is his. */
    bool unknown = false;
    assert_int_equal(c_decide_both(d, client, &g_alice, "confirm",
                                   json_pack("{s:s}", "reservation", "r11"), &unknown),
                     ARB_ENOT_RESERVATION_OWNER);
    assert_true(unknown);
    /* Once bob releases r10, the client knows it as a closed reservation of
     * unknown owner: alice's confirm of it is NOT_RESERVATION_OWNER. */
    assert_int_equal(
        d_run(d, ARB_ROLE_USER, "bob", "release", json_pack("{s:s}", "reservation", "r10")), 0);
    assert_int_equal(c_follow(client, &g_alice, d), 0);
    assert_true(c_same_view(client, &g_alice, d));
    assert_int_equal(mug->reserved_unseen, 1);
    assert_int_equal(c_decide_both(d, client, &g_alice, "confirm",
                                   json_pack("{s:s}", "reservation", "r10"), &unknown),
                     ARB_ENOT_RESERVATION_OWNER);
    assert_false(unknown);
    /* bob's new reservation comes without its owner, and stays his. */
    assert_int_equal(d_run(d, ARB_ROLE_USER, "bob", "reserve",
                           json_pack("{s:s, s:i, s:i}", "sku", "mug", "quantity", 3, "ttl_s", 60)),
                     0);
    assert_int_equal(c_follow(client, &g_alice, d), 0);
    assert_true(c_same_view(client, &g_alice, d));
    const arb__inventory_reservation *r13 = arb_map_get(&partial->reservations, "r13");
    assert_non_null(r13);
    assert_string_equal(r13->owner, "");
    assert_int_equal(c_decide_both(d, client, &g_alice, "release",
                                   json_pack("{s:s}", "reservation", "r13"), NULL),
                     ARB_ENOT_RESERVATION_OWNER);
    d->now_ms += 60000;
    assert_int_equal(
        d_run(d, ARB_ROLE_SYSTEM, "$system", "expire", json_pack("{s:s}", "reservation", "r13")),
        0);
    assert_int_equal(c_follow(client, &g_alice, d), 0);
    assert_true(c_same_view(client, &g_alice, d));
    /* A user whose reservations are none sees, and predicts, the same. */
    void *eve = c_load(d, &(arb_principal){.id = "eve", .role = ARB_ROLE_USER});
    assert_true(c_same_view(eve, &(arb_principal){.id = "eve", .role = ARB_ROLE_USER}, d));
    arb_rules_inventory.state_free(eve);
    arb_rules_inventory.state_free(client);
    d_free(d);
}

/* The events only a partial state takes, and only when they fit it. */
static void test_view_load_partial_evolve_bounds(void **unused)
{
    (void)unused;
    direct *d = d_fixture_with_bob();
    void *client = c_load(d, &g_alice);
    json_t *before = arb_rules_inventory.view(client, &g_root);
    direct shadow = {.state = client, .now_ms = d->now_ms, .next_seq = d->next_seq};
    const char *events[][2] = {
        /* Closes of unseen reservations: more than the others hold, an id
         * made after the view, alice's own with the wrong lines. */
        {"released", "{\"reservation\":\"r11\",\"items\":[{\"sku\":\"mug\",\"quantity\":1},"
                     "{\"sku\":\"pen\",\"quantity\":2}]}"},
        {"released", "{\"reservation\":\"r10\",\"items\":[{\"sku\":\"mug\",\"quantity\":4}]}"},
        {"confirmed", "{\"reservation\":\"r12\",\"items\":[{\"sku\":\"mug\",\"quantity\":1}]}"},
        {"confirmed", "{\"reservation\":\"r6\",\"items\":[{\"sku\":\"mug\",\"quantity\":1}]}"},
        {"expired", "{\"reservation\":\"r4\",\"items\":[{\"sku\":\"mug\",\"quantity\":2}]}"},
        {"expired", "{\"reservation\":\"x1\",\"items\":[{\"sku\":\"mug\",\"quantity\":1}]}"},
        {"expired", "{\"reservation\":\"r10\",\"items\":[{\"sku\":\"cup\",\"quantity\":1}]}"},
        /* A reserved event with neither an owner nor its other fields. */
        {"reserved", "{\"reservation\":\"r12\",\"items\":[{\"sku\":\"mug\",\"quantity\":1}],"
                     "\"note\":1}"},
        {"reserved", "{\"reservation\":\"r12\",\"items\":[{\"sku\":\"mug\",\"quantity\":9}],"
                     "\"expires_at\":1}"},
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        json_t *data = json_loads(events[i][1], 0, NULL);
        assert_non_null(data);
        if (d_evolve(&shadow, events[i][0], data, false) != ARB_ECORRUPT)
            fail_msg("the partial state accepted %s %s", events[i][0], events[i][1]);
        json_decref(data);
        json_t *after = arb_rules_inventory.view(client, &g_root);
        assert_true(json_equal(before, after));
        json_decref(after);
    }
    /* A full state takes neither an ownerless reserved event nor the close
     * of a reservation it does not hold. */
    json_t *ownerless = json_loads("{\"reservation\":\"r12\",\"items\":[{\"sku\":\"mug\","
                                   "\"quantity\":1}],\"expires_at\":1}",
                                   0, NULL);
    assert_int_equal(d_evolve(d, "reserved", ownerless, false), ARB_ECORRUPT);
    assert_int_equal(d_evolve(&shadow, "reserved", ownerless, false), 0);
    json_decref(ownerless);
    json_t *unseen = json_loads(
        "{\"reservation\":\"r2\",\"items\":[{\"sku\":\"mug\",\"quantity\":1}]}", 0, NULL);
    d->next_seq = shadow.next_seq;
    assert_int_equal(d_evolve(d, "released", unseen, false), ARB_ECORRUPT);
    assert_int_equal(d_evolve(&shadow, "released", unseen, false), 0);
    json_decref(unseen);
    json_decref(before);
    arb_rules_inventory.state_free(client);
    d_free(d);
}

/* Load a copy of view (viewer's, at seq) with one change at path (as for
 * json_changed); expect ARB_ECORRUPT. */
static void expect_view_corrupt(const json_t *view, uint64_t seq, const arb_principal *viewer,
                                const char *path, json_t *value)
{
    json_t *copy = json_changed(view, path, value);
    void *state = NULL;
    int rc = arb_rules_inventory.view_load(copy, seq, viewer, &state);
    if (rc != ARB_ECORRUPT)
        fail_msg("loading %s's view with %s changed gave %s", viewer->id, path, arb_err_name(rc));
    assert_null(state);
    json_decref(copy);
}

static void test_view_load_rejects_corrupt(void **unused)
{
    (void)unused;
    direct *d = d_fixture_with_bob();
    uint64_t seq = d->next_seq - 1;
    json_t *view = d_view(d, &g_alice);
    void *state = NULL;
    /* The view as sent loads; not at an earlier seq, not as bob's. */
    assert_int_equal(arb_rules_inventory.view_load(view, seq, &g_alice, &state), 0);
    arb_rules_inventory.state_free(state);
    state = NULL;
    assert_int_equal(arb_rules_inventory.view_load(view, seq - 1, &g_alice, &state), ARB_ECORRUPT);
    assert_int_equal(arb_rules_inventory.view_load(view, seq, &g_bob, &state), ARB_ECORRUPT);
    json_t *not_object = json_array();
    assert_int_equal(arb_rules_inventory.view_load(not_object, seq, &g_alice, &state),
                     ARB_ECORRUPT);
    assert_int_equal(arb_rules_inventory.view_load(not_object, seq, &g_root, &state), ARB_ECORRUPT);
    json_decref(not_object);
    assert_null(state);
    /* Unknown, missing and wrongly typed fields. */
    expect_view_corrupt(view, seq, &g_alice, "format", json_integer(1));
    expect_view_corrupt(view, seq, &g_alice, "extra", json_true());
    expect_view_corrupt(view, seq, &g_alice, "items", NULL);
    expect_view_corrupt(view, seq, &g_alice, "reservations", json_array());
    expect_view_corrupt(view, seq, &g_alice, "items/mug/colour", json_string("blue"));
    expect_view_corrupt(view, seq, &g_alice, "items/mug/sold", NULL);
    expect_view_corrupt(view, seq, &g_alice, "items/mug/available", json_string("4"));
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/items/0/gift", json_true());
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/items/1/sku", json_string("cup"));
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/status", json_string("pending"));
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/expires_at", json_integer(-1));
    /* Someone else's reservation, or one of unknown owner, in a user's view. */
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/owner", json_string("bob"));
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/owner", json_string(""));
    /* Versions and ids later than the view's seq. */
    expect_view_corrupt(view, seq, &g_alice, "items/pen/version",
                        json_integer((json_int_t)seq + 1));
    expect_view_corrupt(view, seq, &g_alice, "reservations/r4/version",
                        json_integer((json_int_t)seq + 1));
    json_t *future = json_deep_copy(view);
    json_t *reservations = json_object_get(future, "reservations");
    json_object_set(reservations, "r12", json_object_get(reservations, "r5"));
    json_object_del(reservations, "r5");
    expect_view_corrupt(future, seq, &g_alice, "reservations/r12/version", json_integer(12));
    json_decref(future);
    /* Counts: negative, inconsistent, or fewer reserved than she holds. */
    expect_view_corrupt(view, seq, &g_alice, "items/mug/sold", json_integer(-2));
    expect_view_corrupt(view, seq, &g_alice, "items/mug/available", json_integer(5));
    expect_view_corrupt(view, seq, &g_alice, "items/mug/stock", json_integer(11));
    json_t *short_pen = json_changed(view, "items/pen/reserved", json_integer(1));
    expect_view_corrupt(short_pen, seq, &g_alice, "items/pen/available", json_integer(2));
    json_decref(short_pen);
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/items/1/quantity", json_integer(4));
    expect_view_corrupt(view, seq, &g_alice, "reservations/r6/version", json_integer(7));
    /* An admin's view is loaded as a snapshot, and checked as one. */
    json_t *whole = d_view(d, &g_root);
    expect_view_corrupt(whole, seq, &g_root, "format", json_integer(1));
    expect_view_corrupt(whole, seq, &g_root, "items/mug/reserved", json_integer(3));
    expect_view_corrupt(whole, seq, &g_root, "reservations/r10/owner", json_string(""));
    expect_view_corrupt(whole, seq, &g_root, "reservations/r11/version",
                        json_integer((json_int_t)seq + 1));
    json_decref(whole);
    json_decref(view);
    d_free(d);
}

/* The randomized test: the engine against a small model.
 *
 * Skus "s0".."s4" (index M_SKUS names "zz", which is never added), users
 * "u0".."u2" and "admin". Commands are generated as model-side descriptions,
 * turned into JSON for the engine, and interpreted independently by the
 * model, which follows docs/inventory.md's check order. Timers are the
 * engine's own: the clock moves, arb_engine_tick fires what is due, and the
 * model takes the expiries from the log (the engine orders due timers by
 * deadline; the model checks that exactly the due reservations expired). */

#define M_SKUS 5
#define M_USERS 3
#define M_RESERVATIONS_MAX 8192
#define M_LINES_MAX 4
#define M_STEPS_DEFAULT 1500
#define M_SNAPSHOT_EVERY 23

typedef struct m_item {
    bool exists;
    int64_t stock, available, reserved, sold;
    uint64_t version;
} m_item;

typedef struct m_line {
    int sku;
    int64_t quantity;
} m_line;

typedef struct m_reservation {
    uint64_t seq; /* its id is "r<seq>" */
    int owner;    /* a user index */
    int line_count;
    m_line lines[M_LINES_MAX];
    int64_t expires_at_ms;
    arb__inventory_status status;
    uint64_t version;
} m_reservation;

typedef struct model {
    uint64_t next_seq;
    m_item items[M_SKUS];
    size_t reservation_count;
    m_reservation *reservations; /* M_RESERVATIONS_MAX, in seq order */
} model;

enum { G_ADD, G_RESTOCK, G_RESERVE, G_CART, G_CONFIRM, G_RELEASE, G_EXPIRE_BY_USER, G_COUNT };
static const char *const g_action_names[G_COUNT] = {
    "add_item", "restock", "reserve", "reserve_cart", "confirm", "release", "expire"};

enum { Q_INT, Q_STRING, Q_MISSING };

typedef struct gen_cmd {
    int action;
    int who; /* a user index, or M_USERS for the admin */
    int sku;
    int quantity_kind;
    int64_t quantity;
    int64_t ttl_s;
    int line_count;
    m_line lines[M_LINES_MAX];
    uint64_t reservation_seq; /* confirm, release, expire */
    bool unknown_field;
} gen_cmd;

typedef struct world {
    engine_fixture f;
    uint64_t rng;
    uint64_t seed;
    int step;
    model m;
    int codes[128]; /* how often each outcome came up: index -code */
    size_t expired_by_timer;
    size_t restarts;
} world;

#define W_CHECK(w, cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("ARB_SEED=%llu step %d: %s (line %d)", (unsigned long long)(w)->seed,         \
                     (w)->step, #cond, __LINE__);                                                  \
    } while (0)

static int64_t w_pick(world *w, int64_t n)
{
    return (int64_t)test_random_below(&w->rng, (uint64_t)n);
}

static bool w_chance(world *w, int percent)
{
    return w_pick(w, 100) < percent;
}

static const char *w_who(int who)
{
    static const char *const names[M_USERS + 1] = {"u0", "u1", "u2", "admin"};
    return names[who];
}

static void sku_name(int sku, char *name, size_t size)
{
    if (sku == M_SKUS)
        snprintf(name, size, "zz");
    else
        snprintf(name, size, "s%d", sku);
}

static m_reservation *m_find(model *m, uint64_t seq)
{
    size_t low = 0, high = m->reservation_count;
    while (low < high) {
        size_t mid = (low + high) / 2;
        if (m->reservations[mid].seq == seq)
            return &m->reservations[mid];
        if (m->reservations[mid].seq < seq)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

/* The model. Each m_* returns 0 (and changes m) or the expected code. */

static int m_quantity_code(const gen_cmd *cmd, int64_t min, int64_t max)
{
    if (cmd->quantity_kind == Q_MISSING)
        return ARB_EINVALID_ARGUMENT;
    if (cmd->quantity_kind == Q_STRING || cmd->quantity < min || cmd->quantity > max)
        return ARB_EINVALID_QUANTITY;
    return 0;
}

static int m_reserve_lines(model *m, const gen_cmd *cmd, const m_line *lines, int count,
                           int64_t now_ms)
{
    if (cmd->ttl_s < 1 || cmd->ttl_s > ARB_INVENTORY_TTL_S_MAX)
        return ARB_EINVALID_ARGUMENT;
    for (int i = 0; i < count; i++) {
        if (lines[i].sku == M_SKUS || !m->items[lines[i].sku].exists)
            return ARB_EITEM_NOT_FOUND;
        if (lines[i].quantity > m->items[lines[i].sku].available)
            return ARB_ESOLD_OUT;
    }
    uint64_t seq = m->next_seq++;
    if (m->reservation_count >= M_RESERVATIONS_MAX)
        fail_msg("the model holds too many reservations");
    m_reservation *reservation = &m->reservations[m->reservation_count++];
    memset(reservation, 0, sizeof *reservation);
    reservation->seq = seq;
    reservation->owner = cmd->who;
    reservation->line_count = count;
    reservation->expires_at_ms = now_ms + cmd->ttl_s * 1000;
    reservation->status = ARB__INVENTORY_RESERVED;
    reservation->version = seq;
    for (int i = 0; i < count; i++) {
        m_item *item = &m->items[lines[i].sku];
        item->available -= lines[i].quantity;
        item->reserved += lines[i].quantity;
        item->version = seq;
        reservation->lines[i] = lines[i];
    }
    return 0;
}

static void m_close(model *m, m_reservation *reservation, arb__inventory_status status,
                    uint64_t seq)
{
    for (int i = 0; i < reservation->line_count; i++) {
        m_item *item = &m->items[reservation->lines[i].sku];
        item->reserved -= reservation->lines[i].quantity;
        if (status == ARB__INVENTORY_CONFIRMED)
            item->sold += reservation->lines[i].quantity;
        else
            item->available += reservation->lines[i].quantity;
        item->version = seq;
    }
    reservation->status = status;
    reservation->version = seq;
}

static int m_close_by_owner(model *m, const gen_cmd *cmd, arb__inventory_status status,
                            int64_t now_ms)
{
    m_reservation *reservation = m_find(m, cmd->reservation_seq);
    if (reservation == NULL)
        return ARB_ERESERVATION_NOT_FOUND;
    if (reservation->owner != cmd->who)
        return ARB_ENOT_RESERVATION_OWNER;
    if (reservation->status == ARB__INVENTORY_EXPIRED ||
        (reservation->status == ARB__INVENTORY_RESERVED && now_ms >= reservation->expires_at_ms))
        return ARB_ERESERVATION_EXPIRED;
    if (reservation->status != ARB__INVENTORY_RESERVED)
        return ARB_ERESERVATION_CLOSED;
    m_close(m, reservation, status, m->next_seq++);
    return 0;
}

static int m_command(model *m, const gen_cmd *cmd, int64_t now_ms)
{
    bool admin_only = cmd->action == G_ADD || cmd->action == G_RESTOCK;
    if ((admin_only && cmd->who != M_USERS) || cmd->action == G_EXPIRE_BY_USER)
        return ARB_EFORBIDDEN;
    if (cmd->unknown_field)
        return ARB_EINVALID_ARGUMENT;
    int rc;
    switch (cmd->action) {
    case G_ADD:
        rc = m_quantity_code(cmd, 0, MAX);
        if (rc == 0 && m->items[cmd->sku].exists)
            rc = ARB_EITEM_EXISTS;
        if (rc == 0) {
            m->items[cmd->sku] = (m_item){.exists = true,
                                          .stock = cmd->quantity,
                                          .available = cmd->quantity,
                                          .version = m->next_seq++};
        }
        return rc;
    case G_RESTOCK:
        rc = m_quantity_code(cmd, 1, MAX);
        if (rc == 0 && (cmd->sku == M_SKUS || !m->items[cmd->sku].exists))
            rc = ARB_EITEM_NOT_FOUND;
        if (rc == 0) {
            m_item *item = &m->items[cmd->sku];
            item->stock += cmd->quantity;
            item->available += cmd->quantity;
            item->version = m->next_seq++;
        }
        return rc;
    case G_RESERVE: {
        rc = m_quantity_code(cmd, 1, ARB_INVENTORY_RESERVE_QUANTITY_MAX);
        if (rc != 0)
            return rc;
        m_line line = {.sku = cmd->sku, .quantity = cmd->quantity};
        return m_reserve_lines(m, cmd, &line, 1, now_ms);
    }
    case G_CART:
        if (cmd->line_count == 0)
            return ARB_EINVALID_ARGUMENT;
        for (int i = 0; i < cmd->line_count; i++) {
            if (cmd->lines[i].quantity < 1 ||
                cmd->lines[i].quantity > ARB_INVENTORY_RESERVE_QUANTITY_MAX)
                return ARB_EINVALID_QUANTITY;
            for (int j = 0; j < i; j++)
                if (cmd->lines[j].sku == cmd->lines[i].sku)
                    return ARB_EINVALID_ARGUMENT;
        }
        return m_reserve_lines(m, cmd, cmd->lines, cmd->line_count, now_ms);
    case G_CONFIRM:
        return m_close_by_owner(m, cmd, ARB__INVENTORY_CONFIRMED, now_ms);
    default:
        return m_close_by_owner(m, cmd, ARB__INVENTORY_RELEASED, now_ms);
    }
}

/* The generator: mostly valid commands, with every kind of mistake mixed in. */

static void gen_quantity(world *w, gen_cmd *cmd, int64_t max_valid)
{
    int64_t r = w_pick(w, 100);
    cmd->quantity_kind = Q_INT;
    if (r < 2) {
        cmd->quantity_kind = Q_STRING;
    } else if (r < 4) {
        cmd->quantity_kind = Q_MISSING;
    } else if (r < 7) {
        cmd->quantity = -w_pick(w, 2); /* 0 or -1 */
    } else if (r < 8 && max_valid < MAX) {
        cmd->quantity = max_valid + 1; /* past 2^53-1 the engine itself refuses */
    } else {
        cmd->quantity = 1 + w_pick(w, 6);
    }
}

static uint64_t gen_reservation(world *w)
{
    const model *m = &w->m;
    if (m->reservation_count == 0 || w_chance(w, 5))
        return w_chance(w, 50) ? 999999 : 1 + (uint64_t)w_pick(w, (int64_t)m->next_seq);
    size_t recent = m->reservation_count < 24 ? m->reservation_count : 24;
    for (int tries = 0; tries < 6; tries++) {
        const m_reservation *reservation =
            &m->reservations[m->reservation_count - 1 - (size_t)w_pick(w, (int64_t)recent)];
        if (reservation->status == ARB__INVENTORY_RESERVED || tries == 5 || w_chance(w, 20))
            return reservation->seq;
    }
    return m->reservations[(size_t)w_pick(w, (int64_t)m->reservation_count)].seq;
}

static void gen_command(world *w, gen_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    int64_t r = w_pick(w, 100);
    cmd->action = r < 6    ? G_ADD
                  : r < 14 ? G_RESTOCK
                  : r < 44 ? G_RESERVE
                  : r < 59 ? G_CART
                  : r < 77 ? G_CONFIRM
                  : r < 99 ? G_RELEASE
                           : G_EXPIRE_BY_USER;
    cmd->who = (int)w_pick(w, M_USERS);
    cmd->unknown_field = w_chance(w, 2);
    cmd->sku = (int)w_pick(w, M_SKUS + (w_chance(w, 10) ? 1 : 0));
    cmd->ttl_s = w_chance(w, 96) ? 1 + w_pick(w, 40) : (w_chance(w, 50) ? 0 : 86401);
    switch (cmd->action) {
    case G_ADD:
    case G_RESTOCK:
        if (w_chance(w, 85))
            cmd->who = M_USERS;
        if (cmd->action == G_ADD && cmd->sku == M_SKUS)
            cmd->sku = 0;
        gen_quantity(w, cmd, MAX);
        if (cmd->quantity_kind == Q_INT && cmd->quantity > 0 && cmd->quantity < 10)
            cmd->quantity *= 1 + w_pick(w, 4);
        break;
    case G_RESERVE:
        gen_quantity(w, cmd, ARB_INVENTORY_RESERVE_QUANTITY_MAX);
        break;
    case G_CART:
        cmd->line_count = (int)w_pick(w, M_LINES_MAX + 1);
        if (cmd->line_count == 0 && w_chance(w, 70))
            cmd->line_count = 2;
        for (int i = 0; i < cmd->line_count; i++) {
            cmd->lines[i].sku = (int)w_pick(w, M_SKUS + (w_chance(w, 5) ? 1 : 0));
            cmd->lines[i].quantity = w_chance(w, 97) ? 1 + w_pick(w, 3) : 0;
        }
        break;
    case G_CONFIRM:
    case G_RELEASE: {
        cmd->reservation_seq = gen_reservation(w);
        const m_reservation *reservation = m_find(&w->m, cmd->reservation_seq);
        if (reservation != NULL && w_chance(w, 80))
            cmd->who = reservation->owner;
        else if (w_chance(w, 10))
            cmd->who = M_USERS;
        break;
    }
    default:
        cmd->reservation_seq = gen_reservation(w);
        break;
    }
}

static json_t *command_args(const gen_cmd *cmd)
{
    json_t *args = json_object();
    char sku[16], id[32];
    sku_name(cmd->sku, sku, sizeof sku);
    snprintf(id, sizeof id, "r%" PRIu64, cmd->reservation_seq);
    json_t *quantity = cmd->quantity_kind == Q_MISSING  ? NULL
                       : cmd->quantity_kind == Q_STRING ? json_string("3")
                                                        : json_integer(cmd->quantity);
    switch (cmd->action) {
    case G_ADD:
    case G_RESTOCK:
        json_object_set_new(args, "sku", json_string(sku));
        if (quantity != NULL)
            json_object_set_new(args, cmd->action == G_ADD ? "stock" : "quantity", quantity);
        if (cmd->action == G_ADD)
            json_object_set_new(args, "price", json_integer(100 + cmd->sku));
        break;
    case G_RESERVE:
        json_object_set_new(args, "sku", json_string(sku));
        if (quantity != NULL)
            json_object_set_new(args, "quantity", quantity);
        json_object_set_new(args, "ttl_s", json_integer(cmd->ttl_s));
        break;
    case G_CART: {
        json_decref(quantity);
        json_t *lines = json_array();
        for (int i = 0; i < cmd->line_count; i++) {
            sku_name(cmd->lines[i].sku, sku, sizeof sku);
            json_array_append_new(lines, json_pack("{s:s, s:I}", "sku", sku, "quantity",
                                                   (json_int_t)cmd->lines[i].quantity));
        }
        json_object_set_new(args, "items", lines);
        json_object_set_new(args, "ttl_s", json_integer(cmd->ttl_s));
        break;
    }
    default:
        json_decref(quantity);
        json_object_set_new(args, "reservation", json_string(id));
        break;
    }
    if (cmd->unknown_field)
        json_object_set_new(args, "bogus", json_true());
    return args;
}

static void run_command(world *w, const gen_cmd *cmd)
{
    int64_t now_ms = w->f.clock.now_ms;
    int expected = m_command(&w->m, cmd, now_ms);
    json_t *args = command_args(cmd);
    const char *action = g_action_names[cmd->action];
    arb_role role = cmd->who == M_USERS ? ARB_ROLE_ADMIN : ARB_ROLE_USER;
    arb_command command;
    arb_command_init(&command);
    assert_int_equal(
        arb_command_set(&command, w_who(cmd->who), role, ++g_client_seq, SHOP, action, args), 0);
    out_clear();
    test_exec(w->f.engine, &command, &g_out);
    g_out_set = true;
    arb_command_clear(&command);
    int code = g_out.kind == ARB_OUTCOME_COMMITTED ? 0 : g_out.code;
    if (-code >= 0 && -code < 128)
        w->codes[-code]++;
    if (code != expected) {
        char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("ARB_SEED=%llu step %d: %s %s by %s gave %s (%s), the model says %s",
                 (unsigned long long)w->seed, w->step, action, text, w_who(cmd->who),
                 arb_err_name(code), g_out.message, arb_err_name(expected));
    }
    json_decref(args);
    if (code == 0)
        W_CHECK(w, g_out.seq_first == w->m.next_seq - 1 && g_out.seq_last == g_out.seq_first);
}

/* Fire what is due; the model takes the expiries from the log. */
static void w_tick(world *w)
{
    uint64_t version = engine_fixture_version(&w->f, SHOP);
    size_t fired;
    do {
        fired = 0;
        assert_int_equal(arb_engine_tick(w->f.engine, &fired), 0);
    } while (fired > 0);
    json_t *events = NULL;
    assert_int_equal(arb_engine_events(w->f.engine, SHOP, version, 0, &events), 0);
    size_t i;
    json_t *event;
    json_array_foreach (events, i, event) {
        W_CHECK(w, strcmp(json_string_value(json_object_get(event, "type")), "expired") == 0);
        const char *id =
            json_string_value(json_object_get(json_object_get(event, "data"), "reservation"));
        m_reservation *reservation = m_find(&w->m, strtoull(id + 1, NULL, 10));
        W_CHECK(w, reservation != NULL && reservation->status == ARB__INVENTORY_RESERVED);
        W_CHECK(w, reservation->expires_at_ms <= w->f.clock.now_ms);
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(event, "seq"));
        W_CHECK(w, seq == w->m.next_seq);
        m_close(&w->m, reservation, ARB__INVENTORY_EXPIRED, w->m.next_seq++);
        w->expired_by_timer++;
    }
    json_decref(events);
    for (size_t r = 0; r < w->m.reservation_count; r++) {
        const m_reservation *reservation = &w->m.reservations[r];
        W_CHECK(w, reservation->status != ARB__INVENTORY_RESERVED ||
                       reservation->expires_at_ms > w->f.clock.now_ms);
    }
}

/* Every item against the model, through a viewer with no reservations
 * (cheap: the catalogue only), and the invariant on the engine's counts. */
static void w_compare_items(world *w)
{
    arb_principal nobody = {.id = "nobody", .role = ARB_ROLE_USER};
    json_t *view = NULL;
    uint64_t version = 0;
    assert_int_equal(arb_engine_state(w->f.engine, SHOP, &nobody, &view, &version), 0);
    W_CHECK(w, version == w->m.next_seq - 1);
    W_CHECK(w, json_object_size(json_object_get(view, "reservations")) == 0);
    size_t exists = 0;
    for (int s = 0; s < M_SKUS; s++) {
        const m_item *expected = &w->m.items[s];
        char sku[16];
        sku_name(s, sku, sizeof sku);
        json_t *item = json_object_get(json_object_get(view, "items"), sku);
        W_CHECK(w, (item != NULL) == expected->exists);
        if (item == NULL)
            continue;
        exists++;
        W_CHECK(w, json_integer_value(json_object_get(item, "stock")) == expected->stock);
        W_CHECK(w, json_integer_value(json_object_get(item, "available")) == expected->available);
        W_CHECK(w, json_integer_value(json_object_get(item, "reserved")) == expected->reserved);
        W_CHECK(w, json_integer_value(json_object_get(item, "sold")) == expected->sold);
        W_CHECK(w, (uint64_t)json_integer_value(json_object_get(item, "version")) ==
                       expected->version);
    }
    W_CHECK(w, json_object_size(json_object_get(view, "items")) == exists);
    json_decref(view);
    /* The model's own bookkeeping: reserved is what its open lines hold. */
    int64_t open_sums[M_SKUS] = {0};
    for (size_t r = 0; r < w->m.reservation_count; r++) {
        const m_reservation *reservation = &w->m.reservations[r];
        for (int i = 0;
             reservation->status == ARB__INVENTORY_RESERVED && i < reservation->line_count; i++)
            open_sums[reservation->lines[i].sku] += reservation->lines[i].quantity;
    }
    for (int s = 0; s < M_SKUS; s++) {
        const m_item *item = &w->m.items[s];
        W_CHECK(w, open_sums[s] == item->reserved && item->available >= 0);
        W_CHECK(w, item->available + item->reserved + item->sold == item->stock);
    }
}

/* Every reservation against the model, and check() on the engine's state. */
static void w_compare_all(world *w)
{
    check_shop(&w->f);
    json_t *view = shop_view(&w->f, NULL);
    json_t *reservations = json_object_get(view, "reservations");
    W_CHECK(w, json_object_size(reservations) == w->m.reservation_count);
    for (size_t r = 0; r < w->m.reservation_count; r++) {
        const m_reservation *expected = &w->m.reservations[r];
        char id[32];
        snprintf(id, sizeof id, "r%" PRIu64, expected->seq);
        json_t *reservation = json_object_get(reservations, id);
        W_CHECK(w, reservation != NULL);
        W_CHECK(w, strcmp(json_string_value(json_object_get(reservation, "status")),
                          arb__inventory_status_name(expected->status)) == 0);
        W_CHECK(w, strcmp(json_string_value(json_object_get(reservation, "owner")),
                          w_who(expected->owner)) == 0);
        W_CHECK(w, json_integer_value(json_object_get(reservation, "expires_at")) ==
                       expected->expires_at_ms);
        W_CHECK(w, (uint64_t)json_integer_value(json_object_get(reservation, "version")) ==
                       expected->version);
        json_t *lines = json_object_get(reservation, "items");
        W_CHECK(w, json_array_size(lines) == (size_t)expected->line_count);
        for (int i = 0; i < expected->line_count; i++) {
            char sku[16];
            sku_name(expected->lines[i].sku, sku, sizeof sku);
            json_t *line = json_array_get(lines, (size_t)i);
            W_CHECK(w, strcmp(json_string_value(json_object_get(line, "sku")), sku) == 0);
            W_CHECK(w, json_integer_value(json_object_get(line, "quantity")) ==
                           expected->lines[i].quantity);
        }
    }
    json_decref(view);
}

/* A restart, sometimes with time passing while the server is down. */
static void w_restart(world *w)
{
    json_t *before = shop_view(&w->f, NULL);
    arb_engine_close(w->f.engine);
    w->f.engine = NULL;
    if (w_chance(w, 50))
        w->f.clock.now_ms += w_pick(w, 60000);
    engine_fixture_open(&w->f);
    json_t *after = shop_view(&w->f, NULL);
    W_CHECK(w, json_equal(before, after));
    json_decref(before);
    json_decref(after);
    w->restarts++;
}

static void test_random_against_model(void **unused)
{
    (void)unused;
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->seed = test_seed("inventory random");
    w->rng = w->seed;
    const char *steps_text = getenv("ARB_INVENTORY_STEPS");
    int steps = steps_text != NULL && *steps_text != '\0' ? atoi(steps_text) : M_STEPS_DEFAULT;
    engine_fixture_init(&w->f, "inventory", M_SNAPSHOT_EVERY);
    w->m.next_seq = 1;
    w->m.reservations = calloc(M_RESERVATIONS_MAX, sizeof *w->m.reservations);
    assert_non_null(w->m.reservations);
    /* The shop exists from the first step on: users cannot create streams. */
    gen_cmd first = {.action = G_ADD, .who = M_USERS, .sku = 0, .quantity = 8};
    run_command(w, &first);
    int accepted = 0;
    for (w->step = 0; w->step < steps; w->step++) {
        int64_t r = w_pick(w, 100);
        if (r < 12) {
            w->f.clock.now_ms += w_pick(w, 15000);
            w_tick(w);
        } else if (r < 13) {
            w_restart(w);
            w_tick(w);
        } else {
            gen_cmd cmd;
            gen_command(w, &cmd);
            run_command(w, &cmd);
            accepted += g_out.kind == ARB_OUTCOME_COMMITTED;
        }
        w_compare_items(w);
        if (w->step % 40 == 39)
            w_compare_all(w);
    }
    w_compare_all(w);
    out_clear();
    print_message("inventory random test: %d of %d steps committed, %zu reservations, %zu "
                  "expired by timer, %zu restarts; outcomes:",
                  accepted, steps, w->m.reservation_count, w->expired_by_timer, w->restarts);
    for (int code = 0; code < 128; code++)
        if (w->codes[code] > 0)
            print_message(" %s %d", arb_err_name(-code), w->codes[code]);
    print_message("\n");
    /* Both outcomes must be common, or the test proves little. */
    W_CHECK(w, accepted > steps / 5 && accepted < steps * 4 / 5);
    W_CHECK(w, w->expired_by_timer > 0 || steps < 200);
    arb_verify_report report;
    engine_fixture_verify(&w->f, &report);
    W_CHECK(w, report.events == w->m.next_seq - 1);
    engine_fixture_destroy(&w->f);
    free(w->m.reservations);
    free(w);
}

/* The clients' randomized test: the server's state driven directly (decide
 * and evolve, as d_run does) by the generator above and checked against
 * the model, and one client for each user and one for the admin. A client
 * loads its viewer's view at random moments (view_load), then follows every
 * event as redact shows it to its viewer: after each event its view must be
 * the server's, and after each step random commands of its viewer (reserve,
 * carts, confirm and release of its own reservations, of others' and of
 * ids that name none, bogus skus) must decide the same on both states,
 * except for the one answer a user's view cannot tell (see unknowable). The
 * seeds are fixed, so that a failure replays exactly. */

#define C_STEPS 2000
#define C_CLIENTS (M_USERS + 1)

typedef struct c_client {
    arb_principal principal;
    void *state; /* NULL until first loaded */
} c_client;

typedef struct c_world {
    world *w;  /* the generator's randomness and the model (w->f is unused) */
    direct *d; /* the server */
    c_client clients[C_CLIENTS];
    size_t loads, decided, accepted, unknowable, unseen_closes;
} c_world;

/* The event the server committed last, to every client that has loaded.
 * A user's view is compared after every event; the admin's (the whole
 * state, the costly one) after every 16th. */
static void c_broadcast(c_world *t)
{
    const arb_decision_event *event = &t->d->decision.events[0];
    const char *id = json_string_value(json_object_get(event->data, "reservation"));
    for (int i = 0; i < C_CLIENTS; i++) {
        c_client *client = &t->clients[i];
        if (client->state == NULL)
            continue;
        const arb__inventory_state *state = client->state;
        if (strcmp(event->type, "reserved") != 0 && id != NULL &&
            arb_map_get(&state->reservations, id) == NULL)
            t->unseen_closes++;
        W_CHECK(t->w, c_follow(client->state, &client->principal, t->d) == 0);
        if (client->principal.role == ARB_ROLE_USER || t->d->next_seq % 16 == 0)
            W_CHECK(t->w, c_same_view(client->state, &client->principal, t->d));
    }
}

/* cmd on the server; the model must agree on the outcome. */
static void c_server_run(c_world *t, const gen_cmd *cmd)
{
    int expected = m_command(&t->w->m, cmd, t->d->now_ms);
    arb_role role = cmd->who == M_USERS ? ARB_ROLE_ADMIN : ARB_ROLE_USER;
    int code = d_run(t->d, role, w_who(cmd->who), g_action_names[cmd->action], command_args(cmd));
    W_CHECK(t->w, code == expected);
    if (code == 0)
        c_broadcast(t);
}

/* Time passes, and the system expires what is due, unless its timers lag
 * (then confirm and release see reservations past their deadline open). */
static void c_server_tick(c_world *t)
{
    world *w = t->w;
    t->d->now_ms += w_pick(w, 15000);
    if (w_chance(w, 30))
        return;
    for (size_t r = 0; r < w->m.reservation_count; r++) {
        m_reservation *reservation = &w->m.reservations[r];
        if (reservation->status != ARB__INVENTORY_RESERVED ||
            reservation->expires_at_ms > t->d->now_ms)
            continue;
        char id[32];
        snprintf(id, sizeof id, "r%" PRIu64, reservation->seq);
        W_CHECK(w, d_run(t->d, ARB_ROLE_SYSTEM, "$system", "expire",
                         json_pack("{s:s}", "reservation", id)) == 0);
        m_close(&w->m, reservation, ARB__INVENTORY_EXPIRED, w->m.next_seq++);
        c_broadcast(t);
    }
}

/* (Re)load clients from their viewer's view now: each soon after the
 * start, then now and then, so that views are taken at many moments. */
static void c_maybe_load(c_world *t)
{
    for (int i = 0; i < C_CLIENTS; i++) {
        c_client *client = &t->clients[i];
        if (!w_chance(t->w, client->state == NULL ? 4 : 1))
            continue;
        arb_rules_inventory.state_free(client->state);
        client->state = c_load(t->d, &client->principal);
        W_CHECK(t->w, c_same_view(client->state, &client->principal, t->d));
        t->loads++;
    }
}

/* A command of user who (or the admin): a generated one, half of its
 * confirms and releases aimed at one of who's own reservations. */
static void c_gen_command(c_world *t, int who, gen_cmd *cmd)
{
    world *w = t->w;
    gen_command(w, cmd);
    cmd->who = who;
    if ((cmd->action != G_CONFIRM && cmd->action != G_RELEASE) || !w_chance(w, 50))
        return;
    for (int tries = 0; tries < 8 && w->m.reservation_count > 0; tries++) {
        const m_reservation *reservation =
            &w->m.reservations[w_pick(w, (int64_t)w->m.reservation_count)];
        if (reservation->owner == who) {
            cmd->reservation_seq = reservation->seq;
            return;
        }
    }
}

/* Every loaded client predicts a command or two of its viewer. */
static void c_predict(c_world *t)
{
    for (int i = 0; i < C_CLIENTS; i++) {
        c_client *client = &t->clients[i];
        for (int n = (int)w_pick(t->w, 3); client->state != NULL && n > 0; n--) {
            gen_cmd cmd;
            c_gen_command(t, i, &cmd);
            bool unknown = false;
            int code = c_decide_both(t->d, client->state, &client->principal,
                                     g_action_names[cmd.action], command_args(&cmd), &unknown);
            t->decided++;
            t->accepted += code == 0;
            t->unknowable += unknown;
        }
    }
}

/* Replace *state with its state_clone and free the original: everything the
 * run checks afterwards checks the copy, and ASan that it shares nothing. */
static void c_swap_clone(void **state)
{
    void *copy = NULL;
    assert_int_equal(arb_rules_inventory.state_clone(*state, &copy), 0);
    const arb__inventory_state *a = *state, *b = copy;
    assert_true(a->reservations_open == b->reservations_open &&
                a->reservations_closed == b->reservations_closed &&
                a->closed_kept_max == b->closed_kept_max && a->partial == b->partial &&
                a->view_seq == b->view_seq);
    const arb__inventory_reservation *x = a->closed_head, *y = b->closed_head;
    for (; x != NULL && y != NULL; x = x->next_closed, y = y->next_closed)
        assert_true(x != y && strcmp(x->id, y->id) == 0);
    assert_true(x == NULL && y == NULL && (a->closed_tail == NULL) == (b->closed_tail == NULL));
    arb_rules_inventory.state_free(*state);
    *state = copy;
}

static void c_run_seed(uint64_t seed, int steps)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->seed = seed;
    w->rng = seed;
    w->m.next_seq = 1;
    w->m.reservations = calloc(M_RESERVATIONS_MAX, sizeof *w->m.reservations);
    assert_non_null(w->m.reservations);
    c_world t = {.w = w, .d = d_new()};
    for (int i = 0; i < C_CLIENTS; i++) {
        snprintf(t.clients[i].principal.id, sizeof t.clients[i].principal.id, "%s", w_who(i));
        t.clients[i].principal.role = i == M_USERS ? ARB_ROLE_ADMIN : ARB_ROLE_USER;
    }
    gen_cmd first = {.action = G_ADD, .who = M_USERS, .sku = 0, .quantity = 8};
    c_server_run(&t, &first);
    for (w->step = 0; w->step < steps; w->step++) {
        if (w_chance(w, 12)) {
            c_server_tick(&t);
        } else {
            gen_cmd cmd;
            gen_command(w, &cmd);
            c_server_run(&t, &cmd);
        }
        c_maybe_load(&t);
        for (int i = 0; i < C_CLIENTS; i++)
            if (t.clients[i].state != NULL && w_chance(w, 10))
                c_swap_clone(&t.clients[i].state);
        if (w_chance(w, 5))
            c_swap_clone(&t.d->state);
        c_predict(&t);
    }
    print_message("inventory clients (seed %llu): %zu events, %zu loads, %zu unseen closes, %zu "
                  "predictions (%zu accepted, %zu unknowable)\n",
                  (unsigned long long)seed, (size_t)(t.d->next_seq - 1), t.loads, t.unseen_closes,
                  t.decided, t.accepted, t.unknowable);
    /* Every path must be taken, or the test proves little. */
    W_CHECK(w, t.loads > C_CLIENTS && t.unseen_closes > 0 && t.unknowable > 0);
    W_CHECK(w, t.accepted > t.decided / 10 && t.accepted < t.decided * 9 / 10);
    for (int i = 0; i < C_CLIENTS; i++)
        arb_rules_inventory.state_free(t.clients[i].state);
    d_free(t.d);
    free(w->m.reservations);
    free(w);
}

static void test_clients_follow_and_predict(void **unused)
{
    (void)unused;
    static const uint64_t seeds[] = {1, 7919, 20250101};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        c_run_seed(seeds[i], C_STEPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        SHOP_TEST(test_add_item_and_view),
        SHOP_TEST(test_item_exists),
        SHOP_TEST(test_admin_only_actions),
        SHOP_TEST(test_restock),
        SHOP_TEST(test_invalid_quantity),
        SHOP_TEST(test_invalid_argument),
        SHOP_TEST(test_reserve_and_confirm),
        SHOP_TEST(test_release),
        SHOP_TEST(test_sold_out_never_oversells),
        SHOP_TEST(test_owner_checks),
        SHOP_TEST(test_expiry_by_timer),
        SHOP_TEST(test_expiry_across_restart_from_the_log),
        SHOP_TEST(test_expiry_across_restart_from_a_snapshot),
        SHOP_TEST(test_reserve_cart_all_or_nothing),
        SHOP_TEST(test_reserve_cart_limits),
        SHOP_TEST(test_items_limit),
        SHOP_TEST(test_view_and_redaction),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_load_rejects_corrupt),
        cmocka_unit_test(test_check_detects_corruption),
        cmocka_unit_test(test_evolve_rejects_corrupt_events),
        cmocka_unit_test(test_closed_reservations_forgotten_oldest_first),
        cmocka_unit_test(test_reservations_limit),
        cmocka_unit_test(test_view_load_admin_round_trip),
        cmocka_unit_test(test_view_load_user_partial),
        cmocka_unit_test(test_view_load_partial_evolve_bounds),
        cmocka_unit_test(test_view_load_rejects_corrupt),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_clients_follow_and_predict),
    };
    return cmocka_run_group_tests_name("inventory", tests, NULL, NULL);
}
