/*
 * inventory_snapshot_fuzz.c - fuzz target for the inventory's snapshot_load,
 * the parser of a stored (possibly tampered or torn) shop state.
 *
 * Input: JSON text. When it parses to an object it goes to
 * arb_rules_inventory.snapshot_load with a recording timer sink. Properties:
 *   - a refused snapshot gives ARB_ECORRUPT, no state, no timer reported and
 *     nothing leaked;
 *   - an accepted one gives a state on which check() holds (load runs check
 *     itself, so anything else is a bug), view (as an admin and as a user)
 *     and snapshot_save work and are canonical JSON; load reported exactly
 *     one timer per open reservation, at its expires_at;
 *   - load is faithful: the saved snapshot equals the input (load refuses
 *     unknown fields, so nothing may be dropped or changed);
 *   - save -> load (with no timer sink) -> save is a fixed point;
 *   - the loaded state is usable: a fixed round of commands derived from its
 *     items and reservations (restock, reserve and a cart of what is
 *     available, one unit too many, confirm, release and a late expire of
 *     its reservations as their owners and the system, a new item) is
 *     decided; every acceptance evolves without ARB_ECORRUPT and check()
 *     holds after it, every rejection carries a known code.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "arbiter/rules.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"
#include "fuzz.h"
#include "rules/inventory/inventory.h"

/* How many items and reservations of a snapshot the round of commands uses. */
#define INVENTORY_SNAPSHOT_FUZZ_ITEMS_USED 3
#define INVENTORY_SNAPSHOT_FUZZ_RESERVATIONS_USED 6
#define INVENTORY_SNAPSHOT_FUZZ_LATE_MS (ARB_JSON_INT_MAX / 2)

typedef struct inventory_snapshot_fuzz_timers {
    size_t reported;
    const json_t *reservations; /* the saved snapshot's, to check each timer */
} inventory_snapshot_fuzz_timers;

typedef struct inventory_snapshot_fuzz {
    const arb_rules *rules;
    void *state;
    uint64_t next_seq;
    uint64_t client_seq;
    int64_t now_ms;
    inventory_snapshot_fuzz_timers timers;
    arb_timer_sink sink;
    arb_buf canon;
} inventory_snapshot_fuzz;

static void inventory_snapshot_fuzz_timer_add(void *user, int64_t at_ms, const char *action,
                                              json_t *args)
{
    inventory_snapshot_fuzz_timers *timers = user;
    ARB_ASSERT(strcmp(action, "expire") == 0 && json_is_object(args));
    const char *id = json_string_value(json_object_get(args, "reservation"));
    ARB_ASSERT(id != NULL && json_object_size(args) == 1);
    ARB_ASSERT(at_ms >= 0 && at_ms <= ARB_JSON_INT_MAX);
    timers->reported++;
    if (timers->reservations == NULL)
        return;
    const json_t *reservation = json_object_get(timers->reservations, id);
    ARB_ASSERT(reservation != NULL);
    ARB_ASSERT(strcmp(json_string_value(json_object_get(reservation, "status")), "reserved") == 0);
    ARB_ASSERT(json_integer_value(json_object_get(reservation, "expires_at")) == at_ms);
}

static void inventory_snapshot_fuzz_assert_canonical(inventory_snapshot_fuzz *fuzz,
                                                     const json_t *value)
{
    arb_buf_reset(&fuzz->canon);
    ARB_ASSERT(arb_canon_json(&fuzz->canon, value) == 0);
}

static json_t *inventory_snapshot_fuzz_save(const inventory_snapshot_fuzz *fuzz, const void *state)
{
    json_t *saved = NULL;
    ARB_ASSERT(fuzz->rules->snapshot_save(state, &saved) == 0 && json_is_object(saved));
    return saved;
}

static void inventory_snapshot_fuzz_check(const inventory_snapshot_fuzz *fuzz, const void *state)
{
    char why[256];
    int rc = fuzz->rules->check(state, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "inventory_snapshot_fuzz: check failed: %s\n", why);
    ARB_ASSERT(rc == 0);
}

/* The first seq after everything the snapshot mentions: above every version
 * and every reservation id "rN", so a new reservation's id cannot collide.
 * 0 when that is out of range. */
static uint64_t inventory_snapshot_fuzz_next_seq(const json_t *saved)
{
    uint64_t highest = 0;
    static const char *const sections[] = {"items", "reservations"};
    for (size_t s = 0; s < 2; s++) {
        const char *id;
        json_t *entry;
        json_object_foreach (json_object_get(saved, sections[s]), id, entry) {
            json_int_t version = json_integer_value(json_object_get(entry, "version"));
            if (version > 0 && (uint64_t)version > highest)
                highest = (uint64_t)version;
        }
    }
    if (highest >= (uint64_t)ARB_JSON_INT_MAX - 64)
        return 0;
    return highest + 1;
}

/* Decide one command; commit what is accepted as the engine would. */
static void inventory_snapshot_fuzz_propose(inventory_snapshot_fuzz *fuzz, const char *client_id,
                                            arb_role role, const char *action, json_t *args)
{
    ARB_ASSERT(args != NULL);
    arb_command command;
    arb_command_init(&command);
    ARB_ASSERT(arb_command_set(&command, client_id, role, ++fuzz->client_seq, "shop:fuzz", action,
                               args) == 0);
    json_decref(args);
    arb_ctx ctx = {
        .now_ms = fuzz->now_ms, .next_seq = fuzz->next_seq, .version = fuzz->next_seq - 1};
    arb_decision decision;
    arb_decision_init(&decision);
    fuzz->rules->decide(fuzz->state, &command, &ctx, &decision);
    if (decision.code != 0) {
        ARB_ASSERT(decision.code < 0 && decision.event_count == 0);
        ARB_ASSERT(strcmp(arb_err_name(decision.code), "UNKNOWN_ERROR") != 0);
    } else {
        ARB_ASSERT(decision.event_count == 1);
        inventory_snapshot_fuzz_assert_canonical(fuzz, decision.events[0].data);
        arb_event event;
        memset(&event, 0, sizeof event);
        ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, command.stream) == 0);
        ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, decision.events[0].type) == 0);
        ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, client_id) == 0);
        event.seq = fuzz->next_seq++;
        event.client_seq = command.client_seq;
        event.applied_at_ms = fuzz->now_ms;
        event.data = decision.events[0].data; /* borrowed */
        int rc = fuzz->rules->evolve(fuzz->state, &event, &fuzz->sink);
        if (rc != 0)
            fprintf(stderr, "inventory_snapshot_fuzz: evolve refused its own %s event\n",
                    event.type);
        ARB_ASSERT(rc == 0);
        inventory_snapshot_fuzz_check(fuzz, fuzz->state);
    }
    arb_decision_clear(&decision);
    arb_command_clear(&command);
}

static json_int_t inventory_snapshot_fuzz_available(const inventory_snapshot_fuzz *fuzz,
                                                    const char *sku)
{
    json_t *now = inventory_snapshot_fuzz_save(fuzz, fuzz->state);
    json_int_t available = json_integer_value(
        json_object_get(json_object_get(json_object_get(now, "items"), sku), "available"));
    json_decref(now);
    return available;
}

static void inventory_snapshot_fuzz_item_round(inventory_snapshot_fuzz *fuzz,
                                               const char *const *skus, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        inventory_snapshot_fuzz_propose(fuzz, "admin", ARB_ROLE_ADMIN, "restock",
                                        json_pack("{s:s, s:i}", "sku", skus[i], "quantity", 1));
        json_int_t available = inventory_snapshot_fuzz_available(fuzz, skus[i]);
        if (available > ARB_INVENTORY_RESERVE_QUANTITY_MAX)
            available = ARB_INVENTORY_RESERVE_QUANTITY_MAX;
        /* One unit too many is SOLD_OUT (when the cap is not what binds). */
        inventory_snapshot_fuzz_propose(
            fuzz, "u0", ARB_ROLE_USER, "reserve",
            json_pack("{s:s, s:I, s:i}", "sku", skus[i], "quantity", available + 1, "ttl_s", 60));
        if (available > 0)
            inventory_snapshot_fuzz_propose(
                fuzz, "u0", ARB_ROLE_USER, "reserve",
                json_pack("{s:s, s:I, s:i}", "sku", skus[i], "quantity", available, "ttl_s", 60));
        inventory_snapshot_fuzz_propose(fuzz, "admin", ARB_ROLE_ADMIN, "restock",
                                        json_pack("{s:s, s:i}", "sku", skus[i], "quantity", 2));
    }
    if (count == 0)
        return;
    json_t *lines = json_array();
    ARB_ASSERT(lines != NULL);
    for (size_t i = 0; i < count; i++)
        ARB_ASSERT(json_array_append_new(
                       lines, json_pack("{s:s, s:i}", "sku", skus[i], "quantity", 1)) == 0);
    inventory_snapshot_fuzz_propose(fuzz, "u1", ARB_ROLE_USER, "reserve_cart",
                                    json_pack("{s:o, s:i}", "items", lines, "ttl_s", 60));
}

static void inventory_snapshot_fuzz_reservation_round(inventory_snapshot_fuzz *fuzz,
                                                      const json_t *saved, const char *const *ids,
                                                      size_t count)
{
    const json_t *reservations = json_object_get(saved, "reservations");
    for (size_t i = 0; i < count; i++) {
        const char *owner =
            json_string_value(json_object_get(json_object_get(reservations, ids[i]), "owner"));
        char who[ARB_CLIENT_ID_BYTES_MAX + 1];
        /* The owner, when the engine would accept it as a client id. */
        snprintf(who, sizeof who, "%s", owner != NULL && owner[0] != '$' ? owner : "u0");
        json_t *args = json_pack("{s:s}", "reservation", ids[i]);
        if (i % 3 == 0) {
            inventory_snapshot_fuzz_propose(fuzz, who, ARB_ROLE_USER, "confirm", args);
        } else if (i % 3 == 1) {
            inventory_snapshot_fuzz_propose(fuzz, who, ARB_ROLE_USER, "release", args);
        } else {
            int64_t now_ms = fuzz->now_ms;
            fuzz->now_ms = INVENTORY_SNAPSHOT_FUZZ_LATE_MS;
            inventory_snapshot_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "expire", args);
            fuzz->now_ms = now_ms;
        }
    }
}

/* The fixed round of commands on a loaded state. ids point into saved. */
static void inventory_snapshot_fuzz_use(inventory_snapshot_fuzz *fuzz, const json_t *saved)
{
    fuzz->next_seq = inventory_snapshot_fuzz_next_seq(saved);
    if (fuzz->next_seq == 0)
        return;
    fuzz->now_ms = 0;
    fuzz->timers.reservations = NULL; /* new reservations are not in saved */
    const char *skus[INVENTORY_SNAPSHOT_FUZZ_ITEMS_USED];
    const char *ids[INVENTORY_SNAPSHOT_FUZZ_RESERVATIONS_USED];
    size_t sku_count = 0, id_count = 0;
    const char *id;
    json_t *entry;
    json_object_foreach (json_object_get(saved, "items"), id, entry) {
        if (sku_count < INVENTORY_SNAPSHOT_FUZZ_ITEMS_USED)
            skus[sku_count++] = id;
    }
    json_object_foreach (json_object_get(saved, "reservations"), id, entry) {
        if (id_count < INVENTORY_SNAPSHOT_FUZZ_RESERVATIONS_USED)
            ids[id_count++] = id;
    }
    inventory_snapshot_fuzz_reservation_round(fuzz, saved, ids, id_count);
    inventory_snapshot_fuzz_item_round(fuzz, skus, sku_count);
    inventory_snapshot_fuzz_propose(fuzz, "admin", ARB_ROLE_ADMIN, "add_item",
                                    json_pack("{s:s, s:i, s:s, s:i}", "sku", "fuzz-new", "stock", 3,
                                              "name", "new", "price", 1));
}

static void inventory_snapshot_fuzz_loaded(inventory_snapshot_fuzz *fuzz, const json_t *input)
{
    inventory_snapshot_fuzz_check(fuzz, fuzz->state);
    arb_principal user = {.id = "u0", .role = ARB_ROLE_USER};
    json_t *view = fuzz->rules->view(fuzz->state, &user);
    ARB_ASSERT(view != NULL);
    inventory_snapshot_fuzz_assert_canonical(fuzz, view);
    json_decref(view);
    arb_principal admin = {.id = "admin", .role = ARB_ROLE_ADMIN};
    view = fuzz->rules->view(fuzz->state, &admin);
    ARB_ASSERT(view != NULL);
    inventory_snapshot_fuzz_assert_canonical(fuzz, view);
    json_decref(view);

    json_t *saved = inventory_snapshot_fuzz_save(fuzz, fuzz->state);
    inventory_snapshot_fuzz_assert_canonical(fuzz, saved);
    ARB_ASSERT(json_equal(input, saved)); /* faithful: nothing dropped, nothing changed */
    size_t open = 0;
    const char *id;
    json_t *reservation;
    json_object_foreach (json_object_get(saved, "reservations"), id, reservation) {
        open += strcmp(json_string_value(json_object_get(reservation, "status")), "reserved") == 0;
    }
    ARB_ASSERT(fuzz->timers.reported == open);

    void *again = NULL;
    ARB_ASSERT(fuzz->rules->snapshot_load(saved, ARB_JSON_INT_MAX, &again, NULL) == 0 &&
               again != NULL);
    json_t *saved_again = inventory_snapshot_fuzz_save(fuzz, again);
    ARB_ASSERT(json_equal(saved, saved_again));
    json_decref(saved_again);
    fuzz->rules->state_free(again);

    inventory_snapshot_fuzz_use(fuzz, saved);
    json_decref(saved);
}

int arb_fuzz_inventory_snapshot(const uint8_t *data, size_t size)
{
    json_t *input = NULL;
    char why[256];
    if (arb_json_parse((const char *)data, size, ARB_SNAPSHOT_BYTES_MAX, &input, why, sizeof why) !=
        0)
        return 0;
    if (!json_is_object(input)) {
        json_decref(input);
        return 0;
    }
    inventory_snapshot_fuzz fuzz;
    memset(&fuzz, 0, sizeof fuzz);
    fuzz.rules = &arb_rules_inventory;
    fuzz.sink.add = inventory_snapshot_fuzz_timer_add;
    fuzz.sink.user = &fuzz.timers;
    arb_buf_init(&fuzz.canon, ARB_SNAPSHOT_BYTES_MAX);
    fuzz.timers.reservations = json_object_get(input, "reservations");
    int rc = fuzz.rules->snapshot_load(input, ARB_JSON_INT_MAX, &fuzz.state, &fuzz.sink);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_ECORRUPT);
        ARB_ASSERT(fuzz.state == NULL && fuzz.timers.reported == 0);
    } else {
        ARB_ASSERT(fuzz.state != NULL);
        inventory_snapshot_fuzz_loaded(&fuzz, input);
        fuzz.rules->state_free(fuzz.state);
    }
    arb_buf_free(&fuzz.canon);
    json_decref(input);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_inventory_snapshot(data, size);
}
#endif
