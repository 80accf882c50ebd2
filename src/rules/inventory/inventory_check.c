/*
 * inventory_check.c - check: the inventory's invariants, verified from
 * scratch.
 *
 *   - every item: available, reserved, sold >= 0, available + reserved +
 *     sold == stock <= 2^53-1, price in 0..ARB_INVENTORY_PRICE_MAX, and
 *     reserved == the sum of its lines over the open reservations;
 *   - every reservation: an id "r<seq>" with seq its version when open and
 *     below its version when closed, an owner, 1..ARB_INVENTORY_CART_ITEMS_MAX
 *     lines on distinct items of this state, quantities in range;
 *   - the counts of items, open and closed reservations, and the closed
 *     FIFO (in closing order, at most closed_kept_max long), match.
 *
 * On a partial state (view_load, inventory_internal.h) it checks the
 * partial form: an item's reserved_unseen is in 0..reserved and reserved -
 * reserved_unseen is the sum over the open reservations the state holds,
 * and a reservation's owner may be unknown (""). On a full state
 * reserved_unseen must be 0 and every owner known, so nothing changes.
 *
 * Returns 0, ARB_ECORRUPT with the first broken invariant in why, or
 * ARB_ENOMEM.
 *
 * It is the engine's and arbiter verify's guard, not a hot path: it builds
 * one temporary map and array (freed before it returns).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/inventory/inventory_internal.h"

typedef struct check_item {
    const arb__inventory_item *item;
    int64_t reserved_sum; /* of its lines over the open reservations */
} check_item;

typedef struct check_ctx {
    const arb__inventory_state *state;
    arb_map items; /* sku -> check_item* */
    check_item *entries;
    size_t item_count;
    size_t open;
    size_t closed;
    char *why;
    size_t why_size;
} check_ctx;

/* Why the check failed, into the caller's why (rules/common.h). */
#define fail(ctx, ...) arb__rules_corrupt((ctx)->why, (ctx)->why_size, __VA_ARGS__)
#define out_of_memory(ctx) arb__rules_check_out_of_memory((ctx)->why, (ctx)->why_size)

static int check_item_counts(void *user, const char *key, void *value)
{
    check_ctx *ctx = user;
    const arb__inventory_item *item = value;
    if (strcmp(key, item->sku) != 0)
        return fail(ctx, "item %s is filed under %s", item->sku, key);
    if (item->available < 0 || item->available > ARB_JSON_INT_MAX || item->reserved < 0 ||
        item->reserved > ARB_JSON_INT_MAX || item->sold < 0 || item->sold > ARB_JSON_INT_MAX ||
        item->stock < 0 || item->stock > ARB_JSON_INT_MAX)
        return fail(ctx, "item %s has a count out of 0..2^53-1", key);
    if (item->reserved_unseen < 0 || item->reserved_unseen > item->reserved ||
        (!ctx->state->partial && item->reserved_unseen != 0))
        return fail(ctx, "item %s has %" PRId64 " reserved units of unseen reservations", key,
                    item->reserved_unseen);
    /* Each term is at most 2^53-1 by now, so the sum cannot overflow. */
    if (item->available + item->reserved + item->sold != item->stock)
        return fail(ctx,
                    "item %s: available %" PRId64 " + reserved %" PRId64 " + sold %" PRId64
                    " != stock %" PRId64,
                    key, item->available, item->reserved, item->sold, item->stock);
    if (item->price < 0 || item->price > ARB_INVENTORY_PRICE_MAX || item->version == 0 ||
        strlen(item->name) > ARB_INVENTORY_NAME_BYTES_MAX)
        return fail(ctx, "item %s has a price, name or version out of range", key);
    check_item *entry = &ctx->entries[ctx->item_count++];
    entry->item = item;
    entry->reserved_sum = 0;
    return arb_map_put(&ctx->items, key, entry) == 0 ? 0 : out_of_memory(ctx);
}

static int check_lines(check_ctx *ctx, const arb__inventory_reservation *reservation)
{
    bool open = reservation->status == ARB__INVENTORY_RESERVED;
    for (size_t i = 0; i < reservation->line_count; i++) {
        const arb__inventory_line *line = &reservation->lines[i];
        check_item *entry = line->item != NULL ? arb_map_get(&ctx->items, line->item->sku) : NULL;
        if (entry == NULL || entry->item != line->item)
            return fail(ctx, "reservation %s has a line on an item not in the shop",
                        reservation->id);
        if (line->quantity < 1 || line->quantity > ARB_INVENTORY_RESERVE_QUANTITY_MAX)
            return fail(ctx, "reservation %s reserves %" PRId64 " of %s, out of range",
                        reservation->id, line->quantity, line->item->sku);
        for (size_t j = 0; j < i; j++)
            if (reservation->lines[j].item == line->item)
                return fail(ctx, "reservation %s has two lines of %s", reservation->id,
                            line->item->sku);
        if (!open)
            continue;
        if (line->quantity > ARB_JSON_INT_MAX - entry->reserved_sum)
            return fail(ctx, "the reservations of %s exceed 2^53-1", line->item->sku);
        entry->reserved_sum += line->quantity;
    }
    return 0;
}

static int check_reservation(void *user, const char *key, void *value)
{
    check_ctx *ctx = user;
    const arb__inventory_reservation *reservation = value;
    uint64_t made_seq;
    if (strcmp(key, reservation->id) != 0 ||
        !arb__inventory_id_seq(reservation->id, reservation->version, &made_seq))
        return fail(ctx, "reservation %s has an id that its version %" PRIu64 " does not allow",
                    key, reservation->version);
    bool open = reservation->status == ARB__INVENTORY_RESERVED;
    if (open ? made_seq != reservation->version : made_seq >= reservation->version)
        return fail(ctx, "reservation %s is %s at version %" PRIu64, key,
                    arb__inventory_status_name(reservation->status), reservation->version);
    bool owner_known = reservation->owner[0] != '\0';
    if ((!owner_known && !ctx->state->partial) || reservation->line_count == 0 ||
        reservation->line_count > ARB_INVENTORY_CART_ITEMS_MAX || reservation->expires_at_ms < 0 ||
        reservation->expires_at_ms > ARB_JSON_INT_MAX)
        return fail(ctx, "reservation %s has no owner, no lines or an expiry out of range", key);
    if (open)
        ctx->open++;
    else
        ctx->closed++;
    return check_lines(ctx, reservation);
}

/* reserved is what the open reservations hold; in a partial state, less
 * reserved_unseen (0 in a full one), what those it does not hold hold. */
static int check_sums(check_ctx *ctx)
{
    for (size_t i = 0; i < ctx->item_count; i++) {
        const check_item *entry = &ctx->entries[i];
        int64_t held = entry->item->reserved - entry->item->reserved_unseen;
        if (entry->reserved_sum != held)
            return fail(ctx,
                        "item %s has reserved %" PRId64 " but its open reservations hold %" PRId64,
                        entry->item->sku, held, entry->reserved_sum);
    }
    return 0;
}

static int check_counts(check_ctx *ctx)
{
    const arb__inventory_state *state = ctx->state;
    if (state->items.count > ARB_INVENTORY_ITEMS_MAX)
        return fail(ctx, "%zu items exceed the maximum", state->items.count);
    if (ctx->open != state->reservations_open || ctx->closed != state->reservations_closed ||
        ctx->open > ARB_INVENTORY_RESERVATIONS_MAX)
        return fail(ctx, "%zu open and %zu closed reservations are counted as %zu and %zu",
                    ctx->open, ctx->closed, state->reservations_open, state->reservations_closed);
    size_t linked = 0;
    uint64_t version = 0;
    for (const arb__inventory_reservation *reservation = state->closed_head; reservation != NULL;
         reservation = reservation->next_closed) {
        if (reservation->status == ARB__INVENTORY_RESERVED || reservation->version < version ||
            ++linked > state->reservations_closed)
            return fail(ctx, "the list of closed reservations is broken at %s", reservation->id);
        version = reservation->version;
    }
    if (linked != state->reservations_closed || state->reservations_closed > state->closed_kept_max)
        return fail(ctx, "%zu closed reservations are listed, %zu counted", linked,
                    state->reservations_closed);
    return 0;
}

static int check_all(check_ctx *ctx)
{
    const arb__inventory_state *state = ctx->state;
    int rc = arb_map_foreach(&state->items, check_item_counts, ctx);
    if (rc == 0)
        rc = arb_map_foreach(&state->reservations, check_reservation, ctx);
    if (rc == 0)
        rc = check_sums(ctx);
    if (rc == 0)
        rc = check_counts(ctx);
    return rc;
}

int arb__inventory_check(const void *state, char *why, size_t why_size)
{
    ARB_ASSERT(state != NULL && (why != NULL || why_size == 0));
    check_ctx ctx = {.state = state, .why = why, .why_size = why_size};
    size_t items = ctx.state->items.count;
    arb_map_init(&ctx.items, items + 1);
    ctx.entries = calloc(items + 1, sizeof *ctx.entries);
    int rc = ctx.entries != NULL ? check_all(&ctx) : out_of_memory(&ctx);
    ARB_ASSERT(ctx.item_count <= items);
    arb_map_free(&ctx.items);
    free(ctx.entries);
    if (rc == 0 && why_size > 0)
        why[0] = '\0';
    return rc;
}
