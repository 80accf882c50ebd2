/*
 * ledger_check.c - check: the ledger's invariants, verified from scratch.
 *
 *   - every account: 0 <= held, balance >= -overdraft_limit,
 *     balance + held <= 2^53-1, and held == the sum of its pending holds;
 *   - every hold: its accounts exist, differ and share a currency; captured
 *     is set exactly when it was captured, at most its amount;
 *   - every currency: the sum of balance + held over its accounts equals
 *     deposited - withdrawn;
 *   - the counts of open and closed holds, and the closed FIFO, match.
 *
 * Returns 0, ARB_ECORRUPT with the first broken invariant in why, or
 * ARB_ENOMEM.
 *
 * It is the engine's and arbiter verify's guard, not a hot path: it builds
 * two temporary maps (freed before it returns). The per-currency sums are
 * kept in 96 bits (wide_sum) because a million accounts of 2^53 each do not
 * fit in 64.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/ledger/ledger_internal.h"

#define WIDE_BASE 4294967296LL /* 2^32 */

/* value = high * 2^32 + low, with 0 <= low < 2^32. */
typedef struct wide_sum {
    int64_t high;
    int64_t low;
} wide_sum;

static void wide_add(wide_sum *sum, int64_t value)
{
    int64_t high = value / WIDE_BASE;
    int64_t low = value % WIDE_BASE;
    if (low < 0) {
        low += WIDE_BASE;
        high -= 1;
    }
    sum->low += low;
    sum->high += high + sum->low / WIDE_BASE;
    sum->low %= WIDE_BASE;
}

static bool wide_equals(const wide_sum *sum, int64_t value)
{
    wide_sum expected = {0, 0};
    wide_add(&expected, value);
    return sum->high == expected.high && sum->low == expected.low;
}

typedef struct check_account {
    const arb__ledger_account *account;
    int64_t held_sum; /* of its pending holds */
} check_account;

typedef struct check_currency {
    const arb__ledger_total *total;
    wide_sum funds; /* of balance + held over its accounts */
} check_currency;

typedef struct check_ctx {
    const arb__ledger_state *state;
    arb_map accounts;   /* id -> check_account* */
    arb_map currencies; /* currency -> check_currency* */
    check_account *account_entries;
    check_currency *currency_entries;
    size_t account_count;
    size_t currency_count;
    size_t open;
    size_t closed;
    char *why;
    size_t why_size;
} check_ctx;

/* Why the check failed, into the caller's why (rules/common.h). */
#define fail(ctx, ...) arb__rules_corrupt((ctx)->why, (ctx)->why_size, __VA_ARGS__)
#define out_of_memory(ctx) arb__rules_check_out_of_memory((ctx)->why, (ctx)->why_size)

static int check_total(void *user, const char *key, void *value)
{
    check_ctx *ctx = user;
    const arb__ledger_total *total = value;
    if (strcmp(key, total->currency) != 0 || total->deposited < 0 ||
        total->deposited > ARB_JSON_INT_MAX || total->withdrawn < 0 ||
        total->withdrawn > ARB_JSON_INT_MAX)
        return fail(ctx, "the totals of %s are out of range", key);
    check_currency *entry = &ctx->currency_entries[ctx->currency_count++];
    entry->total = total;
    entry->funds = (wide_sum){0, 0};
    return arb_map_put(&ctx->currencies, key, entry) == 0 ? 0 : out_of_memory(ctx);
}

static int check_account_bounds(void *user, const char *key, void *value)
{
    check_ctx *ctx = user;
    const arb__ledger_account *account = value;
    if (strcmp(key, account->id) != 0)
        return fail(ctx, "account %s is filed under %s", account->id, key);
    if (account->held < 0 || account->held > ARB_JSON_INT_MAX)
        return fail(ctx, "account %s holds %" PRId64 ", out of range", key, account->held);
    if (account->overdraft_limit < 0 || account->overdraft_limit > ARB_JSON_INT_MAX ||
        account->balance < -account->overdraft_limit)
        return fail(ctx, "account %s has balance %" PRId64 " below its overdraft limit %" PRId64,
                    key, account->balance, account->overdraft_limit);
    if (account->balance + account->held > ARB_JSON_INT_MAX)
        return fail(ctx, "account %s has funds above 2^53-1", key);
    check_currency *currency = arb_map_get(&ctx->currencies, account->currency);
    if (currency == NULL)
        return fail(ctx, "account %s is in %s, which has no totals", key, account->currency);
    wide_add(&currency->funds, account->balance);
    wide_add(&currency->funds, account->held);
    check_account *entry = &ctx->account_entries[ctx->account_count++];
    entry->account = account;
    entry->held_sum = 0;
    return arb_map_put(&ctx->accounts, key, entry) == 0 ? 0 : out_of_memory(ctx);
}

static int check_hold(void *user, const char *key, void *value)
{
    check_ctx *ctx = user;
    const arb__ledger_hold *hold = value;
    check_account *from = arb_map_get(&ctx->accounts, hold->from);
    const check_account *to = arb_map_get(&ctx->accounts, hold->to);
    if (strcmp(key, hold->id) != 0 || from == NULL || to == NULL || from == to ||
        strcmp(from->account->currency, to->account->currency) != 0)
        return fail(ctx, "hold %s does not join two accounts of one currency", key);
    if (hold->amount <= 0 || hold->amount > ARB_JSON_INT_MAX)
        return fail(ctx, "hold %s has amount %" PRId64 ", out of range", key, hold->amount);
    bool captured = hold->status == ARB__LEDGER_HOLD_CAPTURED;
    if (captured ? hold->captured <= 0 || hold->captured > hold->amount : hold->captured != 0)
        return fail(ctx, "hold %s has captured %" PRId64 " while %s", key, hold->captured,
                    arb__ledger_status_name(hold->status));
    if (hold->status != ARB__LEDGER_HOLD_PENDING) {
        ctx->closed++;
        return 0;
    }
    ctx->open++;
    if (hold->amount > ARB_JSON_INT_MAX - from->held_sum)
        return fail(ctx, "the holds of account %s exceed 2^53-1", hold->from);
    from->held_sum += hold->amount;
    return 0;
}

static int check_sums(check_ctx *ctx)
{
    for (size_t i = 0; i < ctx->account_count; i++) {
        const check_account *entry = &ctx->account_entries[i];
        if (entry->held_sum != entry->account->held)
            return fail(ctx, "account %s holds %" PRId64 " but its pending holds sum to %" PRId64,
                        entry->account->id, entry->account->held, entry->held_sum);
    }
    for (size_t i = 0; i < ctx->currency_count; i++) {
        const check_currency *entry = &ctx->currency_entries[i];
        int64_t net = entry->total->deposited - entry->total->withdrawn;
        if (!wide_equals(&entry->funds, net))
            return fail(ctx, "the accounts in %s do not sum to deposited - withdrawn (%" PRId64 ")",
                        entry->total->currency, net);
    }
    return 0;
}

static int check_counts(check_ctx *ctx)
{
    const arb__ledger_state *state = ctx->state;
    if (ctx->open != state->holds_open || ctx->closed != state->holds_closed)
        return fail(ctx, "%zu open and %zu closed holds are counted as %zu and %zu", ctx->open,
                    ctx->closed, state->holds_open, state->holds_closed);
    size_t linked = 0;
    uint64_t version = 0;
    for (const arb__ledger_hold *hold = state->closed_head; hold != NULL;
         hold = hold->next_closed) {
        if (hold->status == ARB__LEDGER_HOLD_PENDING || hold->version < version ||
            ++linked > state->holds_closed)
            return fail(ctx, "the list of closed holds is broken at %s", hold->id);
        version = hold->version;
    }
    if (linked != state->holds_closed || state->holds_closed > state->closed_kept_max)
        return fail(ctx, "%zu closed holds are listed, %zu counted", linked, state->holds_closed);
    if (state->transfer_max < 1 || state->transfer_max > ARB_JSON_INT_MAX)
        return fail(ctx, "max_transfer %" PRId64 " is out of range", state->transfer_max);
    return 0;
}

static int check_all(check_ctx *ctx)
{
    const arb__ledger_state *state = ctx->state;
    int rc = arb_map_foreach(&state->totals, check_total, ctx);
    if (rc == 0)
        rc = arb_map_foreach(&state->accounts, check_account_bounds, ctx);
    if (rc == 0)
        rc = arb_map_foreach(&state->holds, check_hold, ctx);
    if (rc == 0)
        rc = check_sums(ctx);
    if (rc == 0)
        rc = check_counts(ctx);
    return rc;
}

int arb__ledger_check(const void *state, char *why, size_t why_size)
{
    ARB_ASSERT(state != NULL && (why != NULL || why_size == 0));
    check_ctx ctx = {.state = state, .why = why, .why_size = why_size};
    size_t accounts = ctx.state->accounts.count;
    size_t currencies = ctx.state->totals.count;
    arb_map_init(&ctx.accounts, accounts + 1);
    arb_map_init(&ctx.currencies, currencies + 1);
    ctx.account_entries = calloc(accounts + 1, sizeof *ctx.account_entries);
    ctx.currency_entries = calloc(currencies + 1, sizeof *ctx.currency_entries);
    int rc = ctx.account_entries != NULL && ctx.currency_entries != NULL ? check_all(&ctx)
                                                                         : out_of_memory(&ctx);
    ARB_ASSERT(ctx.account_count <= accounts && ctx.currency_count <= currencies);
    arb_map_free(&ctx.accounts);
    arb_map_free(&ctx.currencies);
    free(ctx.account_entries);
    free(ctx.currency_entries);
    if (rc == 0 && why_size > 0)
        why[0] = '\0';
    return rc;
}
