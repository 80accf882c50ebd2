/*
 * ledger.h - the ledger rule module (stream kind "ledger").
 *
 * Accounts in minor units, transfers, two-phase holds with expiry, and
 * linked all-or-nothing batches. docs/ledger.md is the contract: every
 * action, event, result and rejection code.
 */
#ifndef ARB_RULES_LEDGER_H
#define ARB_RULES_LEDGER_H

#include "arbiter/rules.h"

/* The module's table; static storage, read-only, safe from every thread. */
extern const arb_rules arb_rules_ledger;

#endif
