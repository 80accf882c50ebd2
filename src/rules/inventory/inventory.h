/*
 * inventory.h - the inventory rule module (stream kind "shop").
 *
 * Items with stock, and reservations that hold units for a while and are
 * then confirmed (sold), released, or expired by a timer, so that a shop
 * can never oversell. docs/inventory.md is the contract: every action,
 * event, result and rejection code.
 */
#ifndef ARB_RULES_INVENTORY_H
#define ARB_RULES_INVENTORY_H

#include "arbiter/rules.h"

/* The module's table; static storage, read-only, safe from every thread. */
extern const arb_rules arb_rules_inventory;

#endif
