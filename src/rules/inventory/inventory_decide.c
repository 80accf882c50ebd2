/*
 * inventory_decide.c - decide: the inventory's actions, their arguments and
 * their checks.
 *
 * Every action emits exactly one event, so decide works on the state as it
 * is (read only) and needs no overlay: it checks, in the order
 * docs/inventory.md documents, the same preconditions evolve re-checks
 * (inventory_internal.h), then emits the event. The seq the event will get
 * is ctx->next_seq, from which a reservation's id "r<seq>" is derived, so
 * ids are deterministic and never reused.
 *
 * A declarative action table (name, handler, roles, accepted arguments)
 * feeds one dispatcher that checks everything common before a handler
 * runs: the action exists, the role may use it, and no argument is unknown.
 *
 * The same code predicts a client's own commands on a partial state (one
 * loaded from a user's view, inventory_internal.h): everything a user's
 * reserve, reserve_cart, confirm or release reads is there (the items' full
 * counts, the user's own reservations), and a reservation of unknown owner
 * is nobody's. What a partial state cannot know is listed in
 * docs/inventory.md, "Visibility".
 *
 * Ownership: results and details built here go into the decision (which
 * steals them); nothing else outlives a call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rules/inventory/inventory_internal.h"

typedef struct inventory_call {
    const arb__inventory_state *state;
    const arb_principal *principal;
    const arb_ctx *ctx;
    arb_decision *decision;
} inventory_call;

/* One line of a reservation being decided. */
typedef struct cart_line {
    const char *sku;
    const arb__inventory_item *item; /* NULL until looked up */
    int64_t quantity;
} cart_line;

/* Emit the decision's one event (steals data); a failure rejects. */
static int emit(inventory_call *call, const char *type, json_t *data)
{
    int rc = arb_decision_emit(call->decision, type, data);
    if (rc != 0)
        return arb_decision_reject(call->decision, rc, NULL, NULL);
    return 0;
}

static int set_result(inventory_call *call, json_t *result, json_t **result_out)
{
    if (result == NULL)
        return arb_decision_reject(call->decision, ARB_ENOMEM, NULL, NULL);
    *result_out = result;
    return 0;
}

/* Arguments. Each reader rejects the decision itself and returns the code. */

static int reject_field(inventory_call *call, const char *key, const char *why)
{
    return arb_decision_reject(call->decision, ARB_EINVALID_ARGUMENT,
                               json_pack("{s:s}", "field", key), "%s: %s", key, why);
}

static int arg_sku(inventory_call *call, const json_t *args, const char **sku_out)
{
    return arb_args_string(args, "sku", ARB_INVENTORY_SKU_BYTES_MAX, true, sku_out, call->decision);
}

static int arg_reservation(inventory_call *call, const json_t *args, const char **id_out)
{
    return arb_args_string(args, "reservation", ARB__INVENTORY_RESERVATION_ID_BYTES_MAX, true,
                           id_out, call->decision);
}

/* A quantity: missing is INVALID_ARGUMENT, anything but an integer in
 * min..max is INVALID_QUANTITY. */
static int arg_quantity(inventory_call *call, const json_t *args, const char *key, int64_t min,
                        int64_t max, int64_t *quantity_out)
{
    return arb_args_int(args, key, min, max, true, ARB_EINVALID_QUANTITY, quantity_out,
                        call->decision);
}

static int arg_ttl(inventory_call *call, const json_t *args, int64_t *ttl_s_out)
{
    return arb_args_int(args, "ttl_s", 1, ARB_INVENTORY_TTL_S_MAX, true, ARB_EINVALID_ARGUMENT,
                        ttl_s_out, call->decision);
}

/* An optional name of 0..ARB_INVENTORY_NAME_BYTES_MAX bytes; "" if absent. */
static int arg_name(inventory_call *call, const json_t *args, const char **name_out)
{
    const json_t *value = json_object_get(args, "name");
    *name_out = "";
    if (value == NULL)
        return 0;
    if (!json_is_string(value) || json_string_length(value) > ARB_INVENTORY_NAME_BYTES_MAX ||
        strlen(json_string_value(value)) != json_string_length(value))
        return arb_decision_reject(
            call->decision, ARB_EINVALID_ARGUMENT, json_pack("{s:s}", "field", "name"),
            "name: must be a string of at most %d bytes", ARB_INVENTORY_NAME_BYTES_MAX);
    *name_out = json_string_value(value);
    return 0;
}

/* Add details[key] = value to the rejection in the decision. */
static int annotate(inventory_call *call, int code, const char *key, json_t *value)
{
    arb_decision *decision = call->decision;
    if (decision->details == NULL)
        decision->details = json_object();
    if (decision->details != NULL && value != NULL)
        json_object_set(decision->details, key, value);
    json_decref(value);
    return code;
}

/* Checks shared by the actions. */

static const arb__inventory_item *find_item(inventory_call *call, const char *sku)
{
    const arb__inventory_item *item = arb_map_get(&call->state->items, sku);
    if (item == NULL)
        arb_decision_reject(call->decision, ARB_EITEM_NOT_FOUND, json_pack("{s:s}", "sku", sku),
                            "no item %s", sku);
    return item;
}

static int reject_limit(inventory_call *call, const char *limit, size_t max)
{
    return arb_decision_reject(call->decision, ARB_ELIMIT,
                               json_pack("{s:s, s:I}", "limit", limit, "max", (json_int_t)max),
                               "the shop holds the most %s it may (%zu)", limit, max);
}

/* add_item and restock (admin). */

static int decide_add_item(inventory_call *call, const json_t *args, json_t **result_out)
{
    const char *sku, *name;
    int64_t stock, price = 0;
    int rc = arg_sku(call, args, &sku);
    if (rc == 0)
        rc = arg_quantity(call, args, "stock", 0, ARB_JSON_INT_MAX, &stock);
    if (rc == 0)
        rc = arg_name(call, args, &name);
    if (rc == 0)
        rc = arb_args_int(args, "price", 0, ARB_INVENTORY_PRICE_MAX, false, ARB_EINVALID_ARGUMENT,
                          &price, call->decision);
    if (rc != 0)
        return rc;
    if (arb_map_get(&call->state->items, sku) != NULL)
        return arb_decision_reject(call->decision, ARB_EITEM_EXISTS, json_pack("{s:s}", "sku", sku),
                                   "item %s already exists", sku);
    if (call->state->items.count >= ARB_INVENTORY_ITEMS_MAX)
        return reject_limit(call, "items", ARB_INVENTORY_ITEMS_MAX);
    *result_out = NULL;
    return emit(call, "item_added",
                json_pack("{s:s, s:I, s:s, s:I}", "sku", sku, "stock", (json_int_t)stock, "name",
                          name, "price", (json_int_t)price));
}

static int decide_restock(inventory_call *call, const json_t *args, json_t **result_out)
{
    const char *sku;
    int64_t quantity;
    int rc = arg_sku(call, args, &sku);
    if (rc == 0)
        rc = arg_quantity(call, args, "quantity", 1, ARB_JSON_INT_MAX, &quantity);
    if (rc != 0)
        return rc;
    const arb__inventory_item *item = find_item(call, sku);
    if (item == NULL)
        return call->decision->code;
    if (!arb__inventory_can_restock(item, quantity))
        return arb_decision_reject(
            call->decision, ARB_EOVERFLOW,
            json_pack("{s:s, s:I}", "sku", sku, "stock", (json_int_t)item->stock),
            "the stock of %s would exceed 2^53-1", sku);
    *result_out = NULL;
    return emit(call, "restocked",
                json_pack("{s:s, s:I}", "sku", sku, "quantity", (json_int_t)quantity));
}

/* reserve and reserve_cart: one reservation of 1..ARB_INVENTORY_CART_ITEMS_MAX
 * lines, all or nothing. */

/* Each line: its item exists, then has the units. index < 0: a single
 * reserve, whose rejections name no item index. */
static int check_line(inventory_call *call, cart_line *line, int index)
{
    line->item = find_item(call, line->sku);
    int code = line->item == NULL ? call->decision->code : 0;
    if (code == 0 && !arb__inventory_can_reserve(line->item, line->quantity))
        code = arb_decision_reject(call->decision, ARB_ESOLD_OUT,
                                   json_pack("{s:s, s:I}", "sku", line->sku, "available",
                                             (json_int_t)line->item->available),
                                   "only %" PRId64 " of %s available", line->item->available,
                                   line->sku);
    if (code != 0 && index >= 0)
        return annotate(call, code, "item", json_integer(index));
    return code;
}

/* The reserved event and the result for lines[0..count). */
static int reserve_lines(inventory_call *call, cart_line *lines, size_t count, int64_t ttl_s,
                         bool cart, json_t **result_out)
{
    ARB_ASSERT(count > 0 && count <= ARB_INVENTORY_CART_ITEMS_MAX);
    for (size_t i = 0; i < count; i++) {
        int rc = check_line(call, &lines[i], cart ? (int)i : -1);
        if (rc != 0)
            return rc;
    }
    if (call->state->reservations_open >= ARB_INVENTORY_RESERVATIONS_MAX)
        return reject_limit(call, "reservations", ARB_INVENTORY_RESERVATIONS_MAX);
    ARB_ASSERT(call->ctx->now_ms >= 0 && call->ctx->now_ms <= ARB_JSON_INT_MAX / 2);
    char id[ARB__INVENTORY_RESERVATION_ID_BYTES_MAX + 1];
    snprintf(id, sizeof id, "r%" PRIu64, call->ctx->next_seq);
    int64_t expires_at_ms = call->ctx->now_ms + ttl_s * 1000;
    json_t *entries = json_array();
    for (size_t i = 0; entries != NULL && i < count; i++) {
        json_t *entry =
            json_pack("{s:s, s:I}", "sku", lines[i].sku, "quantity", (json_int_t)lines[i].quantity);
        if (json_array_append_new(entries, entry) != 0) {
            json_decref(entries);
            entries = NULL;
        }
    }
    if (entries == NULL)
        return arb_decision_reject(call->decision, ARB_ENOMEM, NULL, NULL);
    /* "o" steals entries even when json_pack fails. */
    int rc = emit(call, "reserved",
                  json_pack("{s:s, s:s, s:o, s:I}", "reservation", id, "owner", call->principal->id,
                            "items", entries, "expires_at", (json_int_t)expires_at_ms));
    if (rc != 0)
        return rc;
    return set_result(
        call, json_pack("{s:s, s:I}", "reservation", id, "expires_at", (json_int_t)expires_at_ms),
        result_out);
}

static int decide_reserve(inventory_call *call, const json_t *args, json_t **result_out)
{
    cart_line line = {.item = NULL};
    int64_t ttl_s;
    int rc = arg_sku(call, args, &line.sku);
    if (rc == 0)
        rc = arg_quantity(call, args, "quantity", 1, ARB_INVENTORY_RESERVE_QUANTITY_MAX,
                          &line.quantity);
    if (rc == 0)
        rc = arg_ttl(call, args, &ttl_s);
    if (rc != 0)
        return rc;
    return reserve_lines(call, &line, 1, ttl_s, false, result_out);
}

/* items[index]: exactly {sku, quantity}, a sku not on an earlier line. */
static int parse_cart_line(inventory_call *call, const json_t *entry, cart_line *lines,
                           size_t index)
{
    cart_line *line = &lines[index];
    line->item = NULL;
    if (!json_is_object(entry) || json_object_size(entry) != 2 ||
        json_object_get(entry, "sku") == NULL || json_object_get(entry, "quantity") == NULL)
        return annotate(call, reject_field(call, "items", "each item is {\"sku\", \"quantity\"}"),
                        "item", json_integer((json_int_t)index));
    int rc = arg_sku(call, entry, &line->sku);
    if (rc == 0)
        rc = arg_quantity(call, entry, "quantity", 1, ARB_INVENTORY_RESERVE_QUANTITY_MAX,
                          &line->quantity);
    for (size_t i = 0; rc == 0 && i < index; i++)
        if (strcmp(lines[i].sku, line->sku) == 0)
            rc = reject_field(call, "sku", "appears on two lines of the cart");
    if (rc != 0)
        return annotate(call, rc, "item", json_integer((json_int_t)index));
    return 0;
}

static int decide_reserve_cart(inventory_call *call, const json_t *args, json_t **result_out)
{
    const json_t *entries = json_object_get(args, "items");
    size_t count = json_array_size(entries);
    if (!json_is_array(entries) || count == 0 || count > ARB_INVENTORY_CART_ITEMS_MAX)
        return arb_decision_reject(
            call->decision, ARB_EINVALID_ARGUMENT, json_pack("{s:s}", "field", "items"),
            "items: must be an array of 1 to %d items", ARB_INVENTORY_CART_ITEMS_MAX);
    cart_line lines[ARB_INVENTORY_CART_ITEMS_MAX];
    for (size_t i = 0; i < count; i++) {
        int rc = parse_cart_line(call, json_array_get(entries, i), lines, i);
        if (rc != 0)
            return rc;
    }
    int64_t ttl_s;
    int rc = arg_ttl(call, args, &ttl_s);
    if (rc != 0)
        return rc;
    return reserve_lines(call, lines, count, ttl_s, true, result_out);
}

/* confirm, release (the owner) and expire (the system's timer). */

static const arb__inventory_reservation *find_reservation(inventory_call *call, const char *id)
{
    const arb__inventory_reservation *reservation = arb_map_get(&call->state->reservations, id);
    if (reservation == NULL)
        arb_decision_reject(call->decision, ARB_ERESERVATION_NOT_FOUND,
                            json_pack("{s:s}", "reservation", id), "no reservation %s", id);
    return reservation;
}

static int reject_closed(inventory_call *call, const arb__inventory_reservation *reservation)
{
    const char *status = arb__inventory_status_name(reservation->status);
    return arb_decision_reject(
        call->decision, ARB_ERESERVATION_CLOSED,
        json_pack("{s:s, s:s}", "reservation", reservation->id, "status", status),
        "reservation %s is already %s", reservation->id, status);
}

/* The reservation named by args["reservation"]: the proposer's own, and
 * still open at ctx->now_ms. */
static int find_own_open(inventory_call *call, const json_t *args,
                         const arb__inventory_reservation **reservation_out)
{
    const char *id;
    int rc = arg_reservation(call, args, &id);
    if (rc != 0)
        return rc;
    const arb__inventory_reservation *reservation = find_reservation(call, id);
    if (reservation == NULL)
        return call->decision->code;
    if (!arb__inventory_owned_by(reservation, call->principal->id))
        return arb_decision_reject(call->decision, ARB_ENOT_RESERVATION_OWNER,
                                   json_pack("{s:s}", "reservation", id),
                                   "reservation %s belongs to another principal", id);
    bool expired = reservation->status == ARB__INVENTORY_EXPIRED ||
                   (reservation->status == ARB__INVENTORY_RESERVED &&
                    call->ctx->now_ms >= reservation->expires_at_ms);
    if (expired)
        return arb_decision_reject(call->decision, ARB_ERESERVATION_EXPIRED,
                                   json_pack("{s:s, s:I}", "reservation", id, "expires_at",
                                             (json_int_t)reservation->expires_at_ms),
                                   "reservation %s expired", id);
    if (reservation->status != ARB__INVENTORY_RESERVED)
        return reject_closed(call, reservation);
    *reservation_out = reservation;
    return 0;
}

/* The closing event of reservation: {reservation, items}. */
static json_t *close_data(const arb__inventory_reservation *reservation)
{
    json_t *lines = arb__inventory_lines_json(reservation);
    if (lines == NULL)
        return NULL;
    return json_pack("{s:s, s:o}", "reservation", reservation->id, "items", lines);
}

static int decide_confirm(inventory_call *call, const json_t *args, json_t **result_out)
{
    const arb__inventory_reservation *reservation;
    int rc = find_own_open(call, args, &reservation);
    if (rc == 0)
        rc = emit(call, "confirmed", close_data(reservation));
    if (rc != 0)
        return rc;
    return set_result(call, close_data(reservation), result_out);
}

static int decide_release(inventory_call *call, const json_t *args, json_t **result_out)
{
    const arb__inventory_reservation *reservation;
    int rc = find_own_open(call, args, &reservation);
    if (rc != 0)
        return rc;
    *result_out = NULL;
    return emit(call, "released", close_data(reservation));
}

/* The timer's proposal. Rejected (and dropped by the engine) when stale. */
static int decide_expire(inventory_call *call, const json_t *args, json_t **result_out)
{
    const char *id;
    int rc = arg_reservation(call, args, &id);
    if (rc != 0)
        return rc;
    const arb__inventory_reservation *reservation = find_reservation(call, id);
    if (reservation == NULL)
        return call->decision->code;
    if (reservation->status != ARB__INVENTORY_RESERVED)
        return reject_closed(call, reservation);
    if (call->ctx->now_ms < reservation->expires_at_ms)
        return arb_decision_reject(call->decision, ARB_EINVALID_ARGUMENT,
                                   json_pack("{s:s, s:I}", "reservation", id, "expires_at",
                                             (json_int_t)reservation->expires_at_ms),
                                   "reservation %s is not yet due", id);
    *result_out = NULL;
    return emit(call, "expired", close_data(reservation));
}

/* The action table: what the dispatcher checks before a handler runs. */

enum {
    ACTION_ADMIN = 1u << 0,  /* admin (or system) only */
    ACTION_SYSTEM = 1u << 1, /* system only */
};

typedef struct action_entry {
    const char *name;
    int (*decide)(inventory_call *call, const json_t *args, json_t **result_out);
    unsigned flags;
    const char *keys[5]; /* the arguments it accepts, NULL-terminated */
} action_entry;

/* The hot actions first: the lookup is a linear scan. */
static const action_entry action_table[] = {
    {"reserve", decide_reserve, 0, {"sku", "quantity", "ttl_s", NULL}},
    {"confirm", decide_confirm, 0, {"reservation", NULL}},
    {"release", decide_release, 0, {"reservation", NULL}},
    {"expire", decide_expire, ACTION_SYSTEM, {"reservation", NULL}},
    {"reserve_cart", decide_reserve_cart, 0, {"items", "ttl_s", NULL}},
    {"restock", decide_restock, ACTION_ADMIN, {"sku", "quantity", NULL}},
    {"add_item", decide_add_item, ACTION_ADMIN, {"sku", "stock", "name", "price", NULL}},
};

static const action_entry *find_action(const char *name)
{
    for (size_t i = 0; i < sizeof action_table / sizeof action_table[0]; i++)
        if (strcmp(action_table[i].name, name) == 0)
            return &action_table[i];
    return NULL;
}

static int check_keys(inventory_call *call, const json_t *args, const action_entry *action)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *)args, key, value) {
        bool known = false;
        for (size_t i = 0; action->keys[i] != NULL && !known; i++)
            known = strcmp(action->keys[i], key) == 0;
        if (!known)
            return reject_field(call, key, "unknown argument");
    }
    return 0;
}

static int check_role(inventory_call *call, const action_entry *action)
{
    arb_role role = call->principal->role;
    if ((action->flags & ACTION_SYSTEM) != 0 && role != ARB_ROLE_SYSTEM)
        return arb_decision_reject(call->decision, ARB_EFORBIDDEN, NULL,
                                   "%s is proposed by the server only", action->name);
    if ((action->flags & ACTION_ADMIN) != 0 && role != ARB_ROLE_ADMIN && role != ARB_ROLE_SYSTEM)
        return arb_decision_reject(call->decision, ARB_EFORBIDDEN, NULL, "%s is for admins only",
                                   action->name);
    return 0;
}

/* The dispatcher: everything common to the actions, then the handler. */
static int decide_action(inventory_call *call, const char *name, const json_t *args,
                         json_t **result_out)
{
    *result_out = NULL;
    const action_entry *action = find_action(name);
    if (action == NULL)
        return arb_decision_reject(call->decision, ARB_EUNKNOWN_ACTION,
                                   json_pack("{s:s}", "action", name), "no shop action %s", name);
    int rc = check_role(call, action);
    if (rc != 0)
        return rc;
    if (!json_is_object(args))
        return reject_field(call, "args", "must be an object");
    rc = check_keys(call, args, action);
    if (rc != 0)
        return rc;
    rc = action->decide(call, args, result_out);
    ARB_ASSERT(rc != 0 || call->decision->event_count == 1);
    ARB_ASSERT(rc == 0 || (*result_out == NULL && call->decision->event_count == 0));
    return rc;
}

void arb__inventory_decide(const void *state, const arb_command *command, const arb_ctx *ctx,
                           arb_decision *decision)
{
    ARB_ASSERT(state != NULL && command != NULL && ctx != NULL && decision != NULL);
    ARB_ASSERT(decision->code == 0 && decision->event_count == 0);
    inventory_call call = {
        .state = state, .principal = &command->principal, .ctx = ctx, .decision = decision};
    json_t *result = NULL;
    if (decide_action(&call, command->action, command->args, &result) == 0)
        arb_decision_set_result(decision, result);
}
