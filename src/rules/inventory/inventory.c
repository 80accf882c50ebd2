/*
 * inventory.c - the inventory rule module: its table, the state's life
 * cycle, evolve (applying one committed event) and redact.
 *
 * Ownership: the state owns every item and reservation it maps to (one
 * malloc each) and frees them in arb__inventory_state_free. evolve validates
 * an event completely (its exact fields, and every precondition decide
 * checked) before it changes anything, so an event that does not fit
 * (ARB_ECORRUPT) leaves the state and the timers as they were. The effects
 * themselves are the arb__inventory_apply_* functions of
 * inventory_internal.h.
 *
 * Timers: evolving a reserved event reports the reservation's deadline, so
 * a replay of the log (recovery, arbiter verify) rebuilds every timer; the
 * ones whose reservation closed later in the log fire, are rejected as
 * stale and dropped by the engine.
 *
 * A partial state (view_load from a user's view, inventory_internal.h)
 * evolves the events as redact shows them to that user: a reserved event
 * without its owner, and the close of a reservation it never held, are
 * accepted there and only there. A full state refuses both, as before.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/inventory/inventory.h"
#include "rules/inventory/inventory_internal.h"

/* State life cycle. */

int arb__inventory_state_new(arb__inventory_state **state_out)
{
    arb__inventory_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return ARB_ENOMEM;
    state->closed_kept_max = ARB_INVENTORY_CLOSED_RESERVATIONS_KEPT;
    arb_map_init(&state->items, ARB_INVENTORY_ITEMS_MAX);
    arb_map_init(&state->reservations,
                 ARB_INVENTORY_RESERVATIONS_MAX + ARB_INVENTORY_CLOSED_RESERVATIONS_KEPT + 1);
    *state_out = state;
    return 0;
}

static int free_value(void *user, const char *key, void *value)
{
    (void)user;
    (void)key;
    free(value);
    return 0;
}

void arb__inventory_state_free(arb__inventory_state *state)
{
    if (state == NULL)
        return;
    arb_map_foreach(&state->reservations, free_value, NULL);
    arb_map_foreach(&state->items, free_value, NULL);
    arb_map_free(&state->reservations);
    arb_map_free(&state->items);
    free(state);
}

arb__inventory_reservation *arb__inventory_reservation_new(size_t line_count)
{
    ARB_ASSERT(line_count > 0 && line_count <= ARB_INVENTORY_CART_ITEMS_MAX);
    arb__inventory_reservation *reservation =
        calloc(1, sizeof *reservation + line_count * sizeof reservation->lines[0]);
    if (reservation != NULL)
        reservation->line_count = line_count;
    return reservation;
}

int arb__inventory_add_item(arb__inventory_state *state, arb__inventory_item *item)
{
    return arb__rules_map_add(&state->items, item->sku, item);
}

int arb__inventory_add_reservation(arb__inventory_state *state,
                                   arb__inventory_reservation *reservation)
{
    return arb__rules_map_add(&state->reservations, reservation->id, reservation);
}

static void forget_oldest_closed(arb__inventory_state *state)
{
    while (state->reservations_closed > state->closed_kept_max) {
        arb__inventory_reservation *oldest = state->closed_head;
        ARB_ASSERT(oldest != NULL && oldest->status != ARB__INVENTORY_RESERVED);
        state->closed_head = oldest->next_closed;
        if (state->closed_head == NULL)
            state->closed_tail = NULL;
        void *removed = arb_map_remove(&state->reservations, oldest->id);
        ARB_ASSERT(removed == oldest);
        free(oldest);
        state->reservations_closed--;
    }
}

void arb__inventory_reservation_closed(arb__inventory_state *state,
                                       arb__inventory_reservation *reservation)
{
    ARB_ASSERT(reservation->status != ARB__INVENTORY_RESERVED);
    ARB_ASSERT(reservation->next_closed == NULL && reservation != state->closed_tail);
    if (state->closed_tail != NULL)
        state->closed_tail->next_closed = reservation;
    else
        state->closed_head = reservation;
    state->closed_tail = reservation;
    state->reservations_closed++;
    forget_oldest_closed(state);
}

void arb__inventory_set_closed_kept(void *state, size_t kept)
{
    arb__inventory_state *inventory = state;
    inventory->closed_kept_max = kept;
    forget_oldest_closed(inventory);
}

/* Reading JSON data. */

bool arb__inventory_id_seq(const char *id, uint64_t version, uint64_t *seq_out)
{
    if (id[0] != 'r' || id[1] < '1' || id[1] > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long seq = strtoull(id + 1, &end, 10);
    if (errno != 0 || *end != '\0' || seq > version)
        return false;
    *seq_out = seq;
    return true;
}

bool arb__inventory_owned_by(const arb__inventory_reservation *reservation, const char *client_id)
{
    return reservation->owner[0] != '\0' && strcmp(reservation->owner, client_id) == 0;
}

bool arb__inventory_sees_everything(const arb_principal *viewer)
{
    return viewer == NULL || viewer->role != ARB_ROLE_USER;
}

json_t *arb__inventory_lines_json(const arb__inventory_reservation *reservation)
{
    json_t *lines = json_array();
    for (size_t i = 0; lines != NULL && i < reservation->line_count; i++) {
        const arb__inventory_line *line = &reservation->lines[i];
        json_t *entry =
            json_pack("{s:s, s:I}", "sku", line->item->sku, "quantity", (json_int_t)line->quantity);
        if (json_array_append_new(lines, entry) != 0) {
            json_decref(lines);
            lines = NULL;
        }
    }
    return lines;
}

void arb__inventory_report_timer(const arb_timer_sink *timers,
                                 const arb__inventory_reservation *reservation)
{
    ARB_ASSERT(reservation->status == ARB__INVENTORY_RESERVED);
    if (timers == NULL || timers->add == NULL)
        return;
    json_t *args = json_pack("{s:s}", "reservation", reservation->id);
    /* Out of memory here would lose a deadline; stopping is the honest answer. */
    ARB_ASSERT(args != NULL);
    timers->add(timers->user, reservation->expires_at_ms, "expire", args);
    json_decref(args);
}

bool arb__inventory_json_lines(arb__inventory_state *state, const json_t *entries,
                               arb__inventory_line *lines, size_t *count_out)
{
    size_t count = json_array_size(entries);
    if (!json_is_array(entries) || count == 0 || count > ARB_INVENTORY_CART_ITEMS_MAX)
        return false;
    for (size_t i = 0; i < count; i++) {
        const json_t *entry = json_array_get(entries, i);
        const char *sku;
        int64_t quantity;
        if (!json_is_object(entry) || json_object_size(entry) != 2 ||
            !arb__rules_data_string(entry, "sku", 1, ARB_INVENTORY_SKU_BYTES_MAX, &sku) ||
            !arb__rules_data_int(entry, "quantity", 1, ARB_INVENTORY_RESERVE_QUANTITY_MAX,
                                 &quantity))
            return false;
        arb__inventory_item *item = arb_map_get(&state->items, sku);
        if (item == NULL)
            return false;
        for (size_t j = 0; j < i; j++)
            if (lines[j].item == item)
                return false;
        lines[i].item = item;
        lines[i].quantity = quantity;
    }
    *count_out = count;
    return true;
}

/* A closing event's data: exactly {reservation, items}, the lines on
 * existing items. lines has room for the cart maximum. */
static bool data_close(arb__inventory_state *state, const json_t *data, const char **id_out,
                       arb__inventory_line *lines, size_t *count_out)
{
    return json_object_size(data) == 2 &&
           arb__rules_data_string(data, "reservation", 1, ARB__INVENTORY_RESERVATION_ID_BYTES_MAX,
                                  id_out) &&
           arb__inventory_json_lines(state, json_object_get(data, "items"), lines, count_out);
}

/* The open reservation a closing event names, with its exact lines. */
static arb__inventory_reservation *data_open_reservation(arb__inventory_state *state,
                                                         const json_t *data)
{
    const char *id;
    arb__inventory_line lines[ARB_INVENTORY_CART_ITEMS_MAX];
    size_t count;
    if (!data_close(state, data, &id, lines, &count))
        return NULL;
    arb__inventory_reservation *reservation = arb_map_get(&state->reservations, id);
    if (reservation == NULL || reservation->status != ARB__INVENTORY_RESERVED ||
        reservation->line_count != count)
        return NULL;
    for (size_t i = 0; i < count; i++)
        if (reservation->lines[i].item != lines[i].item ||
            reservation->lines[i].quantity != lines[i].quantity)
            return NULL;
    return reservation;
}

/* Evolve, one function per event type. */

static int evolve_item_added(arb__inventory_state *state, const arb_event *event,
                             const arb_timer_sink *timers)
{
    (void)timers;
    const json_t *data = event->data;
    const char *sku, *name;
    int64_t stock, price;
    if (json_object_size(data) != 4 ||
        !arb__rules_data_string(data, "sku", 1, ARB_INVENTORY_SKU_BYTES_MAX, &sku) ||
        !arb__rules_data_string(data, "name", 0, ARB_INVENTORY_NAME_BYTES_MAX, &name) ||
        !arb__rules_data_int(data, "stock", 0, ARB_JSON_INT_MAX, &stock) ||
        !arb__rules_data_int(data, "price", 0, ARB_INVENTORY_PRICE_MAX, &price))
        return ARB_ECORRUPT;
    if (arb_map_get(&state->items, sku) != NULL || state->items.count >= ARB_INVENTORY_ITEMS_MAX)
        return ARB_ECORRUPT;
    arb__inventory_item *item = calloc(1, sizeof *item);
    if (item == NULL)
        return ARB_ENOMEM;
    /* The lengths were checked above, so the copies fit. */
    memcpy(item->sku, sku, strlen(sku) + 1);
    memcpy(item->name, name, strlen(name) + 1);
    item->price = price;
    item->stock = stock;
    item->available = stock;
    item->version = event->seq;
    arb__inventory_assert_item(item);
    return arb__inventory_add_item(state, item);
}

static int evolve_restocked(arb__inventory_state *state, const arb_event *event,
                            const arb_timer_sink *timers)
{
    (void)timers;
    const char *sku;
    int64_t quantity;
    if (json_object_size(event->data) != 2 ||
        !arb__rules_data_string(event->data, "sku", 1, ARB_INVENTORY_SKU_BYTES_MAX, &sku) ||
        !arb__rules_data_int(event->data, "quantity", 1, ARB_JSON_INT_MAX, &quantity))
        return ARB_ECORRUPT;
    arb__inventory_item *item = arb_map_get(&state->items, sku);
    if (item == NULL || !arb__inventory_can_restock(item, quantity))
        return ARB_ECORRUPT;
    arb__inventory_apply_restock(item, quantity, event->seq);
    return 0;
}

/* A reserved event's owner: its "owner"; or, in a partial state only, no
 * owner at all (redact hid someone else's), kept as "" (unknown). false
 * when the data has neither, or other fields than the four of the event. */
static bool data_owner(const arb__inventory_state *state, const json_t *data,
                       const char **owner_out)
{
    if (json_object_size(data) == 4)
        return arb__rules_data_string(data, "owner", 1, ARB_CLIENT_ID_BYTES_MAX, owner_out);
    *owner_out = "";
    return state->partial && json_object_size(data) == 3 && json_object_get(data, "owner") == NULL;
}

static int evolve_reserved(arb__inventory_state *state, const arb_event *event,
                           const arb_timer_sink *timers)
{
    const json_t *data = event->data;
    const char *id, *owner;
    char expected_id[ARB__INVENTORY_RESERVATION_ID_BYTES_MAX + 1];
    int64_t expires_at_ms;
    arb__inventory_line lines[ARB_INVENTORY_CART_ITEMS_MAX];
    size_t count;
    snprintf(expected_id, sizeof expected_id, "r%" PRIu64, event->seq);
    if (!data_owner(state, data, &owner) ||
        !arb__rules_data_string(data, "reservation", 1, ARB__INVENTORY_RESERVATION_ID_BYTES_MAX,
                                &id) ||
        strcmp(id, expected_id) != 0 ||
        !arb__rules_data_int(data, "expires_at", 0, ARB_JSON_INT_MAX, &expires_at_ms) ||
        !arb__inventory_json_lines(state, json_object_get(data, "items"), lines, &count))
        return ARB_ECORRUPT;
    for (size_t i = 0; i < count; i++)
        if (!arb__inventory_can_reserve(lines[i].item, lines[i].quantity))
            return ARB_ECORRUPT;
    if (state->reservations_open >= ARB_INVENTORY_RESERVATIONS_MAX ||
        arb_map_get(&state->reservations, id) != NULL)
        return ARB_ECORRUPT;
    arb__inventory_reservation *reservation = arb__inventory_reservation_new(count);
    if (reservation == NULL)
        return ARB_ENOMEM;
    memcpy(reservation->id, id, strlen(id) + 1);
    memcpy(reservation->owner, owner, strlen(owner) + 1);
    reservation->expires_at_ms = expires_at_ms;
    memcpy(reservation->lines, lines, count * sizeof lines[0]);
    int rc = arb__inventory_add_reservation(state, reservation);
    if (rc != 0)
        return rc;
    arb__inventory_apply_reserve(reservation, event->seq);
    state->reservations_open++;
    arb__inventory_report_timer(timers, reservation);
    return 0;
}

/* A partial state's close of a reservation it does not hold: someone
 * else's, made at or before the view was taken (every later one was seen
 * and is held). Its units leave reserved_unseen as the event's lines say;
 * it is kept as a closed reservation of unknown owner, so that a confirm of
 * it answers NOT_RESERVATION_OWNER as the server does. */
static int evolve_close_unseen(arb__inventory_state *state, const arb_event *event,
                               arb__inventory_status status)
{
    const char *id;
    uint64_t made_seq;
    arb__inventory_line lines[ARB_INVENTORY_CART_ITEMS_MAX];
    size_t count;
    if (!state->partial || !data_close(state, event->data, &id, lines, &count) ||
        arb_map_get(&state->reservations, id) != NULL ||
        !arb__inventory_id_seq(id, state->view_seq, &made_seq) || made_seq >= event->seq)
        return ARB_ECORRUPT;
    for (size_t i = 0; i < count; i++)
        if (lines[i].quantity > lines[i].item->reserved_unseen)
            return ARB_ECORRUPT;
    arb__inventory_reservation *reservation = arb__inventory_reservation_new(count);
    if (reservation == NULL)
        return ARB_ENOMEM;
    /* The owner stays "" and the deadline 0: neither is known. */
    memcpy(reservation->id, id, strlen(id) + 1);
    memcpy(reservation->lines, lines, count * sizeof lines[0]);
    int rc = arb__inventory_add_reservation(state, reservation);
    if (rc != 0)
        return rc;
    arb__inventory_apply_close_unseen(reservation, status, event->seq);
    arb__inventory_reservation_closed(state, reservation);
    return 0;
}

/* confirmed, released and expired share their shape and differ in effect. */
static int evolve_close(arb__inventory_state *state, const arb_event *event,
                        arb__inventory_status status)
{
    arb__inventory_reservation *reservation = data_open_reservation(state, event->data);
    if (reservation == NULL)
        return evolve_close_unseen(state, event, status);
    arb__inventory_apply_close(reservation, status, event->seq);
    ARB_ASSERT(state->reservations_open > 0);
    state->reservations_open--;
    arb__inventory_reservation_closed(state, reservation);
    return 0;
}

static int evolve_confirmed(arb__inventory_state *state, const arb_event *event,
                            const arb_timer_sink *timers)
{
    (void)timers;
    return evolve_close(state, event, ARB__INVENTORY_CONFIRMED);
}

static int evolve_released(arb__inventory_state *state, const arb_event *event,
                           const arb_timer_sink *timers)
{
    (void)timers;
    return evolve_close(state, event, ARB__INVENTORY_RELEASED);
}

static int evolve_expired(arb__inventory_state *state, const arb_event *event,
                          const arb_timer_sink *timers)
{
    (void)timers;
    return evolve_close(state, event, ARB__INVENTORY_EXPIRED);
}

typedef struct evolve_entry {
    const char *type;
    int (*evolve)(arb__inventory_state *state, const arb_event *event,
                  const arb_timer_sink *timers);
} evolve_entry;

/* The hot event types first: the dispatch is a linear scan. */
static const evolve_entry evolve_table[] = {
    {"reserved", evolve_reserved},   {"confirmed", evolve_confirmed},
    {"released", evolve_released},   {"expired", evolve_expired},
    {"restocked", evolve_restocked}, {"item_added", evolve_item_added},
};

static int inventory_evolve(void *state, const arb_event *event, const arb_timer_sink *timers)
{
    ARB_ASSERT(state != NULL && event != NULL);
    if (!json_is_object(event->data) || event->seq == 0 || event->seq > (uint64_t)ARB_JSON_INT_MAX)
        return ARB_ECORRUPT;
    for (size_t i = 0; i < sizeof evolve_table / sizeof evolve_table[0]; i++) {
        if (strcmp(evolve_table[i].type, event->type) == 0)
            return evolve_table[i].evolve(state, event, timers);
    }
    return ARB_ECORRUPT;
}

/* The rest of the table. */

static int inventory_state_new(void **state_out)
{
    arb__inventory_state *state;
    int rc = arb__inventory_state_new(&state);
    if (rc == 0)
        *state_out = state;
    return rc;
}

static void inventory_state_free(void *state)
{
    arb__inventory_state_free(state);
}

/* docs/inventory.md, "Visibility": a user sees a reserved event of someone
 * else's reservation without its owner; every quantity stays, so that the
 * user's idea of what is available stays right. The other events name no
 * one. When the copy cannot be made (out of memory) the event is withheld
 * from this viewer rather than shown whole. */
static json_t *inventory_redact(const arb_event *event, const arb_principal *viewer)
{
    ARB_ASSERT(event->data != NULL);
    if (arb__inventory_sees_everything(viewer) || strcmp(event->type, "reserved") != 0)
        return json_incref(event->data);
    const char *owner = json_string_value(json_object_get(event->data, "owner"));
    if (owner != NULL && strcmp(owner, viewer->id) == 0)
        return json_incref(event->data);
    json_t *redacted = json_copy(event->data);
    if (redacted != NULL)
        json_object_del(redacted, "owner");
    return redacted;
}

/* state_clone: items are fixed-size blocks; a reservation's lines point at
 * the state's items, so each copy's lines are pointed at the copied items;
 * the closed reservations' FIFO is linked again in the same order. */
static void *copy_item(void *user, const void *value)
{
    (void)user;
    arb__inventory_item *copy = malloc(sizeof *copy);
    return copy != NULL ? memcpy(copy, value, sizeof *copy) : NULL;
}

static void *copy_reservation(void *items, const void *value)
{
    const arb__inventory_reservation *from = value;
    size_t size = sizeof *from + from->line_count * sizeof from->lines[0];
    arb__inventory_reservation *copy = malloc(size);
    if (copy == NULL)
        return NULL;
    memcpy(copy, from, size);
    copy->next_closed = NULL;
    for (size_t i = 0; i < copy->line_count; i++) {
        copy->lines[i].item = arb_map_get(items, from->lines[i].item->sku);
        ARB_ASSERT(copy->lines[i].item != NULL);
    }
    return copy;
}

static int inventory_state_clone(const void *state, void **state_out)
{
    const arb__inventory_state *src = state;
    arb__inventory_state *dst;
    *state_out = NULL;
    if (arb__inventory_state_new(&dst) != 0)
        return ARB_ENOMEM;
    if (arb_map_clone(&src->items, &dst->items, copy_item, NULL) != 0 ||
        arb_map_clone(&src->reservations, &dst->reservations, copy_reservation, &dst->items) != 0) {
        arb__inventory_state_free(dst);
        return ARB_ENOMEM;
    }
    dst->reservations_open = src->reservations_open;
    dst->reservations_closed = src->reservations_closed;
    dst->closed_kept_max = src->closed_kept_max;
    dst->partial = src->partial;
    dst->view_seq = src->view_seq;
    for (const arb__inventory_reservation *r = src->closed_head; r != NULL; r = r->next_closed) {
        arb__inventory_reservation *copy = arb_map_get(&dst->reservations, r->id);
        ARB_ASSERT(copy != NULL);
        if (dst->closed_tail != NULL)
            dst->closed_tail->next_closed = copy;
        else
            dst->closed_head = copy;
        dst->closed_tail = copy;
    }
    *state_out = dst;
    return 0;
}

/* An expiry has work only while its reservation is held. */
static bool inventory_timer_due(const void *state, const char *action, const json_t *args)
{
    const char *id = json_string_value(json_object_get(args, "reservation"));
    if (strcmp(action, "expire") != 0 || id == NULL)
        return true; /* not ours to judge: decide answers it */
    const arb__inventory_reservation *reservation =
        arb_map_get(&((const arb__inventory_state *)state)->reservations, id);
    return reservation != NULL && reservation->status == ARB__INVENTORY_RESERVED;
}

const arb_rules arb_rules_inventory = {
    .kind = "shop",
    .state_new = inventory_state_new,
    .state_free = inventory_state_free,
    .decide = arb__inventory_decide,
    .evolve = inventory_evolve,
    .view = arb__inventory_view,
    .redact = inventory_redact,
    .snapshot_save = arb__inventory_snapshot_save,
    .snapshot_load = arb__inventory_snapshot_load,
    .view_load = arb__inventory_view_load,
    .state_clone = inventory_state_clone,
    .check = arb__inventory_check,
    .timer_due = inventory_timer_due,
};
