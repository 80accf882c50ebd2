/*
 * poker.h - the No-Limit Hold'em table rule module (stream kind "table").
 *
 * One stream is one table: seats, buy-ins, blinds and antes, betting
 * rounds, side pots and showdown, with a deck the server shuffles from a
 * committed seed it reveals after each hand. docs/poker.md is the contract:
 * every action, event, result and rejection code, and what each viewer
 * sees.
 */
#ifndef ARB_RULES_POKER_H
#define ARB_RULES_POKER_H

#include "arbiter/rules.h"

/* The module's table; static storage, read-only, safe from every thread. */
extern const arb_rules arb_rules_poker;

#endif
