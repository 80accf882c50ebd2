/*
 * inventory_internal.h - the inventory's state and the effects of its
 * events, shared by the files of src/rules/inventory/ (and read by its unit
 * test and fuzz targets).
 *
 * The module is split by role:
 *   inventory.c           the rules table, state life cycle, evolve, redact
 *   inventory_decide.c    decide: actions, arguments, checks
 *   inventory_snapshot.c  view, snapshot save/load, view_load
 *   inventory_check.c     check (the invariants, from scratch)
 *
 * There is no batch action, so a decision emits exactly one event and
 * decide needs no overlay: it checks the preconditions below against the
 * state (const) and emits the event; evolve checks the same preconditions
 * again (a log that decide did not write is refused with ARB_ECORRUPT) and
 * applies the effects below, the single definition of what an event does.
 *
 * Invariants of every item (check() verifies them, the effects assert
 * them):
 *   - available, reserved, sold >= 0 and available + reserved + sold ==
 *     stock <= 2^53-1 (units are neither created nor lost: only add_item and
 *     restock bring units in, and nothing takes them out);
 *   - reserved == the sum of its lines' quantities over the open
 *     reservations.
 * So a reservation can never oversell: it takes units out of available,
 * which never goes below zero.
 *
 * A reservation's life (its status):
 *
 *     reserve / reserve_cart --> reserved --confirm------> confirmed (sold)
 *                                    |-----release------> released
 *                                    `-----expire-------> expired
 *                                          (system timer at expires_at)
 *
 * The three closed states are final. Closed reservations are kept so that a
 * late confirm answers RESERVATION_EXPIRED or RESERVATION_CLOSED rather
 * than RESERVATION_NOT_FOUND; they form a FIFO in closing order, and past
 * closed_kept_max the oldest is forgotten, so the state stays bounded.
 *
 * Partial states. view_load builds a client's state from what a user sees:
 * every item with its full counts, but only the user's own reservations.
 * Such a state is marked partial, and differs from a full one in three
 * ways only:
 *   - an item's reserved units include reserved_unseen, those held by
 *     reservations the state does not hold (made by others at or before
 *     view_seq); so the second invariant above reads reserved -
 *     reserved_unseen == the sum over the open reservations it holds;
 *   - a reserved event without "owner" (redact hides someone else's) makes
 *     a reservation of unknown owner "", which matches no client id;
 *   - a closing event of a reservation it does not hold (someone else's,
 *     made at or before view_seq) takes the event's lines out of
 *     reserved_unseen, and keeps the reservation as a closed one of
 *     unknown owner.
 * So the items of a partial state follow the server's exactly, and decide
 * answers the viewer's own commands as the server does (docs/inventory.md,
 * "Visibility"). The server never holds a partial state: for a full one
 * reserved_unseen is 0, no owner is "", and nothing above applies.
 *
 * Ownership: the state owns every item and reservation (one malloc each).
 * A reservation's lines point at the state's items, which are never removed
 * while the state lives, so the pointers stay valid.
 */
#ifndef ARB_RULES_INVENTORY_INTERNAL_H
#define ARB_RULES_INVENTORY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "arbiter/limits.h"
#include "arbiter/rules.h"
#include "core/assert.h"
#include "core/map.h"
#include "rules/common.h"

/* "r" and the decimal seq of the reserved event: at most 20 digits. */
#define ARB__INVENTORY_RESERVATION_ID_BYTES_MAX 24
/* The snapshot format written by this code. */
#define ARB__INVENTORY_SNAPSHOT_FORMAT 1

typedef struct arb__inventory_item {
    char sku[ARB_INVENTORY_SKU_BYTES_MAX + 1];
    char name[ARB_INVENTORY_NAME_BYTES_MAX + 1]; /* "" when none was given */
    int64_t price;     /* minor units, 0..ARB_INVENTORY_PRICE_MAX; 0 when none */
    int64_t stock;     /* units ever stocked: add_item's stock plus restocks */
    int64_t available; /* units free to reserve */
    int64_t reserved;  /* units held by open reservations */
    int64_t sold;      /* units taken by confirmed reservations */
    /* Of reserved, the units held by reservations a partial state does not
     * hold (0..reserved); always 0 in a full state. */
    int64_t reserved_unseen;
    uint64_t version; /* seq of the last event that changed it */
} arb__inventory_item;

typedef enum arb__inventory_status {
    ARB__INVENTORY_RESERVED = 0,
    ARB__INVENTORY_CONFIRMED = 1,
    ARB__INVENTORY_RELEASED = 2,
    ARB__INVENTORY_EXPIRED = 3,
} arb__inventory_status;

typedef struct arb__inventory_line {
    arb__inventory_item *item; /* borrowed from the state */
    int64_t quantity;          /* 1..ARB_INVENTORY_RESERVE_QUANTITY_MAX */
} arb__inventory_line;

typedef struct arb__inventory_reservation {
    char id[ARB__INVENTORY_RESERVATION_ID_BYTES_MAX + 1];
    /* The principal that made it; "" (unknown) in a partial state only. */
    char owner[ARB_CLIENT_ID_BYTES_MAX + 1];
    int64_t expires_at_ms;
    uint64_t version; /* seq of the last event that changed it */
    arb__inventory_status status;
    struct arb__inventory_reservation *next_closed; /* FIFO of closed ones */
    size_t line_count;                              /* 1..ARB_INVENTORY_CART_ITEMS_MAX */
    arb__inventory_line lines[];                    /* distinct items */
} arb__inventory_reservation;

typedef struct arb__inventory_state {
    arb_map items;        /* sku -> arb__inventory_item*, owned */
    arb_map reservations; /* id -> arb__inventory_reservation*, owned */
    size_t reservations_open;
    size_t reservations_closed;
    size_t closed_kept_max;
    arb__inventory_reservation *closed_head; /* oldest closed reservation */
    arb__inventory_reservation *closed_tail;
    /* Loaded by view_load from a user's view (see "Partial states" above);
     * view_seq is the seq the view was taken at. false and 0 otherwise. */
    bool partial;
    uint64_t view_seq;
} arb__inventory_state;

/* inventory.c */
int arb__inventory_state_new(arb__inventory_state **state_out);
void arb__inventory_state_free(arb__inventory_state *state);
/* A reservation with room for line_count lines, zeroed; NULL on ENOMEM. */
arb__inventory_reservation *arb__inventory_reservation_new(size_t line_count);
/* Insert a new item / reservation the state takes ownership of (it frees
 * the object itself on failure). 0, ARB_ECORRUPT (duplicate), ARB_ELIMIT or
 * ARB_ENOMEM. */
int arb__inventory_add_item(arb__inventory_state *state, arb__inventory_item *item);
int arb__inventory_add_reservation(arb__inventory_state *state,
                                   arb__inventory_reservation *reservation);
/* Append a reservation that has just closed to the FIFO, forgetting the
 * oldest closed ones past closed_kept_max. */
void arb__inventory_reservation_closed(arb__inventory_state *state,
                                       arb__inventory_reservation *reservation);
/* Tests only: remember at most kept closed reservations (forgets extras now). */
void arb__inventory_set_closed_kept(void *state, size_t kept);
/* Whether id is "r" and a seq (no leading zero) that is at most version;
 * *seq_out gets the seq. Ids are made by decide from the reserved event's
 * seq, so anything else was not written by decide. */
bool arb__inventory_id_seq(const char *id, uint64_t version, uint64_t *seq_out);
/* entries as the lines of a reservation: an array of 1..
 * ARB_INVENTORY_CART_ITEMS_MAX objects of exactly {sku, quantity} naming
 * distinct existing items, quantities in 1..ARB_INVENTORY_RESERVE_QUANTITY_MAX.
 * lines has room for the cart maximum. false when entries do not fit. */
bool arb__inventory_json_lines(arb__inventory_state *state, const json_t *entries,
                               arb__inventory_line *lines, size_t *count_out);
/* The lines as JSON, [{"sku", "quantity"}...]; NULL on ENOMEM. */
json_t *arb__inventory_lines_json(const arb__inventory_reservation *reservation);
/* Whether client_id made reservation: never for an unknown owner (""). */
bool arb__inventory_owned_by(const arb__inventory_reservation *reservation, const char *client_id);
/* Whether viewer sees the whole state and every event as they are (admins,
 * the system; NULL: the engine itself), rather than as a user does. */
bool arb__inventory_sees_everything(const arb_principal *viewer);
/* The report of one open reservation's deadline to a timer sink (NULL-safe). */
void arb__inventory_report_timer(const arb_timer_sink *timers,
                                 const arb__inventory_reservation *reservation);

/* inventory_decide.c */
void arb__inventory_decide(const void *state, const arb_command *command, const arb_ctx *ctx,
                           arb_decision *decision);

/* inventory_snapshot.c */
json_t *arb__inventory_view(const void *state, const arb_principal *viewer);
int arb__inventory_snapshot_save(const void *state, json_t **snapshot_out);
int arb__inventory_snapshot_load(const json_t *snapshot, uint64_t seq, void **state_out,
                                 const arb_timer_sink *timers);
int arb__inventory_view_load(const json_t *view, uint64_t seq, const arb_principal *viewer,
                             void **state_out);
const char *arb__inventory_status_name(arb__inventory_status status);

/* inventory_check.c: on a partial state, the partial form of the
 * invariants (see "Partial states" above). */
int arb__inventory_check(const void *state, char *why, size_t why_size);

/* The preconditions that keep the item invariants, shared by decide and
 * evolve. */

/* Whether quantity more units can be stocked (stock stays a JSON integer). */
static inline bool arb__inventory_can_restock(const arb__inventory_item *item, int64_t quantity)
{
    return quantity > 0 && quantity <= ARB_JSON_INT_MAX - item->stock;
}

/* Whether one line of quantity units can be reserved now. */
static inline bool arb__inventory_can_reserve(const arb__inventory_item *item, int64_t quantity)
{
    return quantity > 0 && quantity <= ARB_INVENTORY_RESERVE_QUANTITY_MAX &&
           quantity <= item->available;
}

static inline void arb__inventory_assert_item(const arb__inventory_item *item)
{
    ARB_ASSERT(item->available >= 0 && item->reserved >= 0 && item->sold >= 0);
    ARB_ASSERT(item->stock >= 0 && item->stock <= ARB_JSON_INT_MAX);
    ARB_ASSERT(item->available + item->reserved + item->sold == item->stock);
    ARB_ASSERT(item->reserved_unseen >= 0 && item->reserved_unseen <= item->reserved);
}

/* The effects. Callers have checked the preconditions (the can_* above);
 * the assertions catch a caller that did not. */

static inline void arb__inventory_apply_restock(arb__inventory_item *item, int64_t quantity,
                                                uint64_t seq)
{
    ARB_ASSERT(arb__inventory_can_restock(item, quantity));
    item->stock += quantity;
    item->available += quantity;
    item->version = seq;
    arb__inventory_assert_item(item);
}

/* Takes every line's units out of available into reserved; the reservation
 * (id, owner, lines, expiry filled by the caller) becomes open. */
static inline void arb__inventory_apply_reserve(arb__inventory_reservation *reservation,
                                                uint64_t seq)
{
    ARB_ASSERT(reservation->line_count > 0 &&
               reservation->line_count <= ARB_INVENTORY_CART_ITEMS_MAX);
    for (size_t i = 0; i < reservation->line_count; i++) {
        arb__inventory_line *line = &reservation->lines[i];
        ARB_ASSERT(arb__inventory_can_reserve(line->item, line->quantity));
        line->item->available -= line->quantity;
        line->item->reserved += line->quantity;
        line->item->version = seq;
        arb__inventory_assert_item(line->item);
    }
    reservation->status = ARB__INVENTORY_RESERVED;
    reservation->version = seq;
    reservation->next_closed = NULL;
}

/* One line's units leave reserved: sold on a confirm, available again on
 * a release or expiry. Never fails: the units move within one item. */
static inline void arb__inventory_apply_unreserve(arb__inventory_item *item, int64_t quantity,
                                                  arb__inventory_status status, uint64_t seq)
{
    ARB_ASSERT(status != ARB__INVENTORY_RESERVED);
    ARB_ASSERT(quantity > 0 && item->reserved >= quantity);
    item->reserved -= quantity;
    if (status == ARB__INVENTORY_CONFIRMED)
        item->sold += quantity;
    else
        item->available += quantity;
    item->version = seq;
    arb__inventory_assert_item(item);
}

/* Confirm, release or expiry of an open reservation the state holds. */
static inline void arb__inventory_apply_close(arb__inventory_reservation *reservation,
                                              arb__inventory_status status, uint64_t seq)
{
    ARB_ASSERT(reservation->status == ARB__INVENTORY_RESERVED);
    ARB_ASSERT(status != ARB__INVENTORY_RESERVED);
    for (size_t i = 0; i < reservation->line_count; i++) {
        arb__inventory_line *line = &reservation->lines[i];
        /* Its units are among those the state's reservations hold. */
        ARB_ASSERT(line->item->reserved - line->item->reserved_unseen >= line->quantity);
        arb__inventory_apply_unreserve(line->item, line->quantity, status, seq);
    }
    reservation->status = status;
    reservation->version = seq;
}

/* Partial states only: the close of a reservation the state did not hold
 * (reservation has just been made from the closing event, with its lines),
 * whose units were counted in reserved_unseen. */
static inline void arb__inventory_apply_close_unseen(arb__inventory_reservation *reservation,
                                                     arb__inventory_status status, uint64_t seq)
{
    ARB_ASSERT(reservation->owner[0] == '\0' && reservation->next_closed == NULL);
    for (size_t i = 0; i < reservation->line_count; i++) {
        arb__inventory_line *line = &reservation->lines[i];
        ARB_ASSERT(line->item->reserved_unseen >= line->quantity);
        line->item->reserved_unseen -= line->quantity;
        arb__inventory_apply_unreserve(line->item, line->quantity, status, seq);
    }
    reservation->status = status;
    reservation->version = seq;
}

#endif
