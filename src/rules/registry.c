/*
 * registry.c - the built-in rule modules, by stream KIND.
 *
 * A new domain adds one line here. The table is static and read-only, so it
 * is safe from every thread.
 */
#include <string.h>

#include "arbiter/rules.h"
#include "rules/inventory/inventory.h"
#include "rules/ledger/ledger.h"
#include "rules/poker/poker.h"

static const arb_rules *const builtin_rules[] = {
    &arb_rules_ledger,
    &arb_rules_inventory,
    &arb_rules_poker,
};

const arb_rules *arb_rules_find(const char *kind)
{
    for (size_t i = 0; i < sizeof builtin_rules / sizeof builtin_rules[0]; i++)
        if (strcmp(builtin_rules[i]->kind, kind) == 0)
            return builtin_rules[i];
    return NULL;
}
