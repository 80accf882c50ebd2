/*
 * inventory_snapshot.c - the inventory's state as JSON (view and snapshot)
 * and the way back (snapshot load, and view load for a client).
 *
 * Shape (docs/inventory.md, "State"):
 *   {"items":        {sku: {name, price, stock, available, reserved, sold, version}},
 *    "reservations": {id: {owner, items: [{sku, quantity}], expires_at, status, version}}}
 * A snapshot adds "format": 1. Objects are keyed by id, so the JSON does not
 * depend on the order of the hash maps; the engine's canonical form sorts
 * the keys. Nothing is left out, so save(load(save(s))) == save(s): the
 * closed reservations' FIFO order is rebuilt from their versions (the seq
 * that closed each, unique because one event closes one reservation).
 *
 * A viewer who is a user sees every item and only their own reservations;
 * admins and the system see everything.
 *
 * load trusts nothing: every field is checked (unknown ones included), no
 * version or id may be later than the snapshot's seq, then check() runs on
 * the whole state before any timer is reported.
 *
 * view_load is the client's load, of a view taken at seq. An admin's view
 * is the snapshot without "format", and loads as one (no timers). A user's
 * view holds only the user's reservations, so it makes a partial state
 * (inventory_internal.h): every reservation in it must be the user's, and
 * each item's reserved units that they do not hold become reserved_unseen.
 * It is checked like a snapshot, check() included (which verifies the
 * partial form of the invariants on a partial state).
 */
#include <stdlib.h>
#include <string.h>

#include "rules/inventory/inventory_internal.h"

static const char *const status_names[] = {
    [ARB__INVENTORY_RESERVED] = "reserved",
    [ARB__INVENTORY_CONFIRMED] = "confirmed",
    [ARB__INVENTORY_RELEASED] = "released",
    [ARB__INVENTORY_EXPIRED] = "expired",
};

const char *arb__inventory_status_name(arb__inventory_status status)
{
    ARB_ASSERT((size_t)status < sizeof status_names / sizeof status_names[0]);
    return status_names[status];
}

static bool status_from_name(const char *name, arb__inventory_status *status_out)
{
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++) {
        if (strcmp(status_names[i], name) == 0) {
            *status_out = (arb__inventory_status)i;
            return true;
        }
    }
    return false;
}

/* State to JSON. */

static int put_item(void *user, const char *key, void *value)
{
    const arb__inventory_item *item = value;
    json_t *json = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name", item->name, "price",
                             (json_int_t)item->price, "stock", (json_int_t)item->stock, "available",
                             (json_int_t)item->available, "reserved", (json_int_t)item->reserved,
                             "sold", (json_int_t)item->sold, "version", (json_int_t)item->version);
    return json_object_set_new(user, key, json) == 0 ? 0 : ARB_ENOMEM;
}

typedef struct reservations_json {
    json_t *object;
    const arb_principal *viewer; /* NULL: every reservation */
} reservations_json;

static int put_reservation(void *user, const char *key, void *value)
{
    reservations_json *out = user;
    const arb__inventory_reservation *reservation = value;
    if (out->viewer != NULL && !arb__inventory_owned_by(reservation, out->viewer->id))
        return 0;
    json_t *lines = arb__inventory_lines_json(reservation);
    if (lines == NULL)
        return ARB_ENOMEM;
    /* "o" steals lines even when json_pack fails. */
    json_t *json = json_pack("{s:s, s:o, s:I, s:s, s:I}", "owner", reservation->owner, "items",
                             lines, "expires_at", (json_int_t)reservation->expires_at_ms, "status",
                             arb__inventory_status_name(reservation->status), "version",
                             (json_int_t)reservation->version);
    return json_object_set_new(out->object, key, json) == 0 ? 0 : ARB_ENOMEM;
}

/* The state as viewer sees it; viewer NULL: everything. */
static json_t *state_json(const arb__inventory_state *state, const arb_principal *viewer)
{
    json_t *items = json_object();
    reservations_json reservations = {.object = json_object(), .viewer = viewer};
    if (items != NULL && arb_map_foreach(&state->items, put_item, items) != 0) {
        json_decref(items);
        items = NULL;
    }
    if (reservations.object != NULL &&
        arb_map_foreach(&state->reservations, put_reservation, &reservations) != 0) {
        json_decref(reservations.object);
        reservations.object = NULL;
    }
    if (items == NULL || reservations.object == NULL) {
        json_decref(items);
        json_decref(reservations.object);
        return NULL;
    }
    /* "o" steals both references, even when json_pack fails. */
    return json_pack("{s:o, s:o}", "items", items, "reservations", reservations.object);
}

/* docs/inventory.md, "Visibility". */
json_t *arb__inventory_view(const void *state, const arb_principal *viewer)
{
    ARB_ASSERT(state != NULL);
    return state_json(state, arb__inventory_sees_everything(viewer) ? NULL : viewer);
}

int arb__inventory_snapshot_save(const void *state, json_t **snapshot_out)
{
    ARB_ASSERT(state != NULL && snapshot_out != NULL);
    json_t *snapshot = state_json(state, NULL);
    if (snapshot == NULL ||
        json_object_set_new(snapshot, "format", json_integer(ARB__INVENTORY_SNAPSHOT_FORMAT)) !=
            0) {
        json_decref(snapshot);
        return ARB_ENOMEM;
    }
    *snapshot_out = snapshot;
    return 0;
}

/* JSON to state. Each loader returns 0, ARB_ECORRUPT or ARB_ENOMEM. */

static bool load_item_fields(arb__inventory_item *item, const json_t *value, uint64_t seq)
{
    const char *name;
    int64_t version;
    if (!json_is_object(value) || json_object_size(value) != 7 ||
        !arb__rules_data_string(value, "name", 0, ARB_INVENTORY_NAME_BYTES_MAX, &name) ||
        !arb__rules_data_int(value, "price", 0, ARB_INVENTORY_PRICE_MAX, &item->price) ||
        !arb__rules_data_int(value, "stock", 0, ARB_JSON_INT_MAX, &item->stock) ||
        !arb__rules_data_int(value, "available", 0, ARB_JSON_INT_MAX, &item->available) ||
        !arb__rules_data_int(value, "reserved", 0, ARB_JSON_INT_MAX, &item->reserved) ||
        !arb__rules_data_int(value, "sold", 0, ARB_JSON_INT_MAX, &item->sold) ||
        !arb__rules_data_int(value, "version", 1, (int64_t)seq, &version))
        return false;
    item->version = (uint64_t)version;
    memcpy(item->name, name, strlen(name) + 1);
    return true;
}

static int load_items(arb__inventory_state *state, const json_t *items, uint64_t seq)
{
    const char *sku;
    const json_t *value;
    if (!json_is_object(items) || json_object_size(items) > ARB_INVENTORY_ITEMS_MAX)
        return ARB_ECORRUPT;
    json_object_foreach ((json_t *)items, sku, value) {
        arb__inventory_item *item = calloc(1, sizeof *item);
        if (item == NULL)
            return ARB_ENOMEM;
        size_t len = strlen(sku);
        if (len == 0 || len > ARB_INVENTORY_SKU_BYTES_MAX || !load_item_fields(item, value, seq)) {
            free(item);
            return ARB_ECORRUPT;
        }
        memcpy(item->sku, sku, len + 1);
        int rc = arb__inventory_add_item(state, item);
        if (rc != 0)
            return rc == ARB_ENOMEM ? rc : ARB_ECORRUPT;
    }
    return 0;
}

/* A reservation's fields, lines excepted (they size the allocation). */
typedef struct loaded_fields {
    const char *owner;
    int64_t expires_at_ms;
    int64_t version;
    arb__inventory_status status;
    size_t line_count;
    arb__inventory_line lines[ARB_INVENTORY_CART_ITEMS_MAX];
} loaded_fields;

/* An open reservation was last changed when it was made (its version is
 * its id's seq); a closed one later. */
static bool load_reservation_fields(arb__inventory_state *state, const char *id,
                                    const json_t *value, uint64_t seq, loaded_fields *fields)
{
    const char *status;
    uint64_t made_seq;
    if (!json_is_object(value) || json_object_size(value) != 5 ||
        !arb__rules_data_string(value, "owner", 1, ARB_CLIENT_ID_BYTES_MAX, &fields->owner) ||
        !arb__rules_data_int(value, "expires_at", 0, ARB_JSON_INT_MAX, &fields->expires_at_ms) ||
        !arb__rules_data_int(value, "version", 1, (int64_t)seq, &fields->version) ||
        !arb__rules_data_string(value, "status", 1, 16, &status) ||
        !status_from_name(status, &fields->status) ||
        !arb__inventory_json_lines(state, json_object_get(value, "items"), fields->lines,
                                   &fields->line_count))
        return false;
    size_t len = strlen(id);
    if (len == 0 || len > ARB__INVENTORY_RESERVATION_ID_BYTES_MAX ||
        !arb__inventory_id_seq(id, (uint64_t)fields->version, &made_seq))
        return false;
    bool open = fields->status == ARB__INVENTORY_RESERVED;
    return open ? made_seq == (uint64_t)fields->version : made_seq < (uint64_t)fields->version;
}

/* Closed reservations in closing order: by version, then (never needed for
 * a state decide produced) by id, so that the order is total. */
static int compare_closed(const void *a, const void *b)
{
    const arb__inventory_reservation *left = *(const arb__inventory_reservation *const *)a;
    const arb__inventory_reservation *right = *(const arb__inventory_reservation *const *)b;
    if (left->version != right->version)
        return left->version < right->version ? -1 : 1;
    return strcmp(left->id, right->id);
}

static int collect_closed(void *user, const char *key, void *value)
{
    (void)key;
    arb__inventory_reservation ***cursor = user;
    arb__inventory_reservation *reservation = value;
    if (reservation->status != ARB__INVENTORY_RESERVED)
        *(*cursor)++ = reservation;
    return 0;
}

static int link_closed(arb__inventory_state *state)
{
    size_t count = state->reservations_closed;
    state->reservations_closed = 0;
    if (count == 0)
        return 0;
    arb__inventory_reservation **closed = malloc(count * sizeof *closed);
    if (closed == NULL)
        return ARB_ENOMEM;
    arb__inventory_reservation **cursor = closed;
    arb_map_foreach(&state->reservations, collect_closed, &cursor);
    ARB_ASSERT((size_t)(cursor - closed) == count);
    qsort(closed, count, sizeof *closed, compare_closed);
    for (size_t i = 0; i < count; i++)
        arb__inventory_reservation_closed(state, closed[i]);
    free(closed);
    return 0;
}

/* owner: the one every reservation must have (a user's view), or NULL. */
static int load_reservation(arb__inventory_state *state, const char *id, const json_t *value,
                            uint64_t seq, const char *owner)
{
    loaded_fields fields;
    if (!load_reservation_fields(state, id, value, seq, &fields) ||
        (owner != NULL && strcmp(fields.owner, owner) != 0))
        return ARB_ECORRUPT;
    arb__inventory_reservation *reservation = arb__inventory_reservation_new(fields.line_count);
    if (reservation == NULL)
        return ARB_ENOMEM;
    memcpy(reservation->id, id, strlen(id) + 1);
    memcpy(reservation->owner, fields.owner, strlen(fields.owner) + 1);
    reservation->expires_at_ms = fields.expires_at_ms;
    reservation->version = (uint64_t)fields.version;
    reservation->status = fields.status;
    memcpy(reservation->lines, fields.lines, fields.line_count * sizeof fields.lines[0]);
    int rc = arb__inventory_add_reservation(state, reservation);
    if (rc != 0)
        return rc == ARB_ENOMEM ? rc : ARB_ECORRUPT;
    if (fields.status == ARB__INVENTORY_RESERVED)
        state->reservations_open++;
    else
        state->reservations_closed++;
    return 0;
}

static int load_reservations(arb__inventory_state *state, const json_t *reservations, uint64_t seq,
                             const char *owner)
{
    const char *id;
    const json_t *value;
    if (!json_is_object(reservations) ||
        json_object_size(reservations) >
            ARB_INVENTORY_RESERVATIONS_MAX + ARB_INVENTORY_CLOSED_RESERVATIONS_KEPT)
        return ARB_ECORRUPT;
    json_object_foreach ((json_t *)reservations, id, value) {
        int rc = load_reservation(state, id, value, seq, owner);
        if (rc != 0)
            return rc;
    }
    if (state->reservations_open > ARB_INVENTORY_RESERVATIONS_MAX ||
        state->reservations_closed > state->closed_kept_max)
        return ARB_ECORRUPT;
    return link_closed(state);
}

static int report_open(void *user, const char *key, void *value)
{
    (void)key;
    const arb__inventory_reservation *reservation = value;
    if (reservation->status == ARB__INVENTORY_RESERVED)
        arb__inventory_report_timer(user, reservation);
    return 0;
}

static int load_state(arb__inventory_state *state, const json_t *snapshot, uint64_t seq)
{
    int64_t format;
    if (!json_is_object(snapshot) || json_object_size(snapshot) != 3 ||
        !arb__rules_data_int(snapshot, "format", ARB__INVENTORY_SNAPSHOT_FORMAT,
                             ARB__INVENTORY_SNAPSHOT_FORMAT, &format))
        return ARB_ECORRUPT;
    int rc = load_items(state, json_object_get(snapshot, "items"), seq);
    if (rc == 0)
        rc = load_reservations(state, json_object_get(snapshot, "reservations"), seq, NULL);
    char why[256];
    if (rc == 0)
        rc = arb__inventory_check(state, why, sizeof why);
    return rc;
}

int arb__inventory_snapshot_load(const json_t *snapshot, uint64_t seq, void **state_out,
                                 const arb_timer_sink *timers)
{
    ARB_ASSERT(state_out != NULL);
    *state_out = NULL;
    arb__inventory_state *state;
    int rc = arb__inventory_state_new(&state);
    if (rc != 0)
        return rc;
    rc = load_state(state, snapshot, seq);
    if (rc != 0) {
        arb__inventory_state_free(state);
        return rc;
    }
    arb_map_foreach(&state->reservations, report_open, (void *)timers);
    *state_out = state;
    return 0;
}

/* view_load: a client's state from the view it was sent. */

/* An admin's (or the system's) view is the whole state: the snapshot
 * without its format. The state is a full one. */
static int load_full_view(const json_t *view, uint64_t seq, void **state_out)
{
    if (!json_is_object(view) || json_object_get(view, "format") != NULL)
        return ARB_ECORRUPT;
    json_t *snapshot = json_copy((json_t *)view);
    if (snapshot == NULL ||
        json_object_set_new(snapshot, "format", json_integer(ARB__INVENTORY_SNAPSHOT_FORMAT)) !=
            0) {
        json_decref(snapshot);
        return ARB_ENOMEM;
    }
    int rc = arb__inventory_snapshot_load(snapshot, seq, state_out, NULL);
    json_decref(snapshot);
    return rc;
}

static int unseen_from_reserved(void *user, const char *key, void *value)
{
    (void)user;
    (void)key;
    arb__inventory_item *item = value;
    item->reserved_unseen = item->reserved;
    return 0;
}

static int unseen_less_held(void *user, const char *key, void *value)
{
    (void)user;
    (void)key;
    const arb__inventory_reservation *reservation = value;
    if (reservation->status != ARB__INVENTORY_RESERVED)
        return 0;
    /* At most 2^18 reservations of 32 lines of 10^5 units: no overflow. */
    for (size_t i = 0; i < reservation->line_count; i++)
        reservation->lines[i].item->reserved_unseen -= reservation->lines[i].quantity;
    return 0;
}

/* A user's view: every item, only the viewer's reservations. Of each
 * item's reserved units, those the viewer's open reservations do not hold
 * are someone else's (reserved_unseen); a view whose reservations hold more
 * than that makes it negative, and check() refuses it. */
static int load_partial_view(arb__inventory_state *state, const json_t *view, uint64_t seq,
                             const char *viewer_id)
{
    state->partial = true;
    state->view_seq = seq;
    if (!json_is_object(view) || json_object_size(view) != 2)
        return ARB_ECORRUPT;
    int rc = load_items(state, json_object_get(view, "items"), seq);
    if (rc == 0)
        rc = load_reservations(state, json_object_get(view, "reservations"), seq, viewer_id);
    if (rc != 0)
        return rc;
    arb_map_foreach(&state->items, unseen_from_reserved, NULL);
    arb_map_foreach(&state->reservations, unseen_less_held, NULL);
    char why[256];
    return arb__inventory_check(state, why, sizeof why);
}

int arb__inventory_view_load(const json_t *view, uint64_t seq, const arb_principal *viewer,
                             void **state_out)
{
    ARB_ASSERT(state_out != NULL);
    *state_out = NULL;
    if (arb__inventory_sees_everything(viewer))
        return load_full_view(view, seq, state_out);
    arb__inventory_state *state;
    int rc = arb__inventory_state_new(&state);
    if (rc != 0)
        return rc;
    rc = load_partial_view(state, view, seq, viewer->id);
    if (rc != 0) {
        arb__inventory_state_free(state);
        return rc;
    }
    ARB_ASSERT(state->partial);
    *state_out = state;
    return 0;
}
