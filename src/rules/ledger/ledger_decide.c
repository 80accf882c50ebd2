/*
 * ledger_decide.c - decide: the ledger's actions, their arguments and their
 * checks, decided through a transaction overlay.
 *
 * decide must not change the state, yet the items of a batch must see the
 * effects of the items before them. So every decision runs in a transaction
 * (ledger_tx): the first time an item touches an account, a hold or a
 * currency's totals, it copies it into the transaction and works on the copy
 * from then on, through the same arb__ledger_apply_* effects that evolve
 * uses. A single command is a batch of one. The transaction lives on the
 * stack and allocates nothing; its arrays are bounded by the batch limit
 * (one item touches at most two accounts, one hold and one currency).
 *
 * Each action emits its event into the decision as soon as it is decided,
 * so the seq an event will get is ctx->next_seq + the events emitted so far
 * (hold ids and versions use it). A rejection anywhere drops them all.
 *
 * Ownership: results and details built here go into the decision (which
 * steals them); nothing else outlives a call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rules/ledger/ledger_internal.h"

#define TX_ACCOUNTS_MAX (2 * ARB_LEDGER_BATCH_ITEMS_MAX)
#define TX_HOLDS_MAX ARB_LEDGER_BATCH_ITEMS_MAX
#define TX_TOTALS_MAX ARB_LEDGER_BATCH_ITEMS_MAX

typedef struct ledger_tx {
    const arb__ledger_state *state;
    const arb_principal *principal;
    const arb_ctx *ctx;
    arb_decision *decision;
    int64_t transfer_max;
    size_t accounts_opened; /* accounts created by this transaction */
    size_t holds_opened;    /* holds created by this transaction */
    size_t holds_closed;    /* holds closed by this transaction */
    size_t account_count;
    size_t hold_count;
    size_t total_count;
    arb__ledger_account accounts[TX_ACCOUNTS_MAX];
    arb__ledger_hold holds[TX_HOLDS_MAX];
    arb__ledger_total totals[TX_TOTALS_MAX];
} ledger_tx;

/* The overlay. */

/* The seq the next emitted event will get. */
static uint64_t tx_seq(const ledger_tx *tx)
{
    return tx->ctx->next_seq + tx->decision->event_count;
}

/* An account as the transaction sees it, without copying (read only). */
static const arb__ledger_account *tx_account_peek(const ledger_tx *tx, const char *id)
{
    for (size_t i = 0; i < tx->account_count; i++)
        if (strcmp(tx->accounts[i].id, id) == 0)
            return &tx->accounts[i];
    return arb_map_get(&tx->state->accounts, id);
}

/* An account to work on: the transaction's copy (made on first access), or
 * NULL when it does not exist. */
static arb__ledger_account *tx_account(ledger_tx *tx, const char *id)
{
    for (size_t i = 0; i < tx->account_count; i++)
        if (strcmp(tx->accounts[i].id, id) == 0)
            return &tx->accounts[i];
    const arb__ledger_account *account = arb_map_get(&tx->state->accounts, id);
    if (account == NULL)
        return NULL;
    ARB_ASSERT(tx->account_count < TX_ACCOUNTS_MAX);
    tx->accounts[tx->account_count] = *account;
    return &tx->accounts[tx->account_count++];
}

static arb__ledger_hold *tx_hold(ledger_tx *tx, const char *id)
{
    for (size_t i = 0; i < tx->hold_count; i++)
        if (strcmp(tx->holds[i].id, id) == 0)
            return &tx->holds[i];
    const arb__ledger_hold *hold = arb_map_get(&tx->state->holds, id);
    if (hold == NULL)
        return NULL;
    ARB_ASSERT(tx->hold_count < TX_HOLDS_MAX);
    tx->holds[tx->hold_count] = *hold;
    tx->holds[tx->hold_count].next_closed = NULL;
    return &tx->holds[tx->hold_count++];
}

/* A currency's totals; zero for a currency that has none yet. */
static arb__ledger_total *tx_total(ledger_tx *tx, const char *currency)
{
    for (size_t i = 0; i < tx->total_count; i++)
        if (strcmp(tx->totals[i].currency, currency) == 0)
            return &tx->totals[i];
    ARB_ASSERT(tx->total_count < TX_TOTALS_MAX);
    arb__ledger_total *total = &tx->totals[tx->total_count++];
    const arb__ledger_total *stored = arb_map_get(&tx->state->totals, currency);
    if (stored != NULL) {
        *total = *stored;
    } else {
        memset(total, 0, sizeof *total);
        ARB_ASSERT(arb_copy_name(total->currency, sizeof total->currency, currency) == 0);
    }
    return total;
}

static size_t tx_holds_open(const ledger_tx *tx)
{
    ARB_ASSERT(tx->state->holds_open + tx->holds_opened >= tx->holds_closed);
    return tx->state->holds_open + tx->holds_opened - tx->holds_closed;
}

/* Emit an event (steals data); a failure rejects the decision. */
static int tx_emit(ledger_tx *tx, const char *type, json_t *data)
{
    int rc = arb_decision_emit(tx->decision, type, data);
    if (rc != 0)
        return arb_decision_reject(tx->decision, rc, NULL, NULL);
    return 0;
}

/* Arguments. Each reader rejects the decision itself and returns the code. */

static int arg_name(ledger_tx *tx, json_t *args, const char *key, size_t size_max,
                    const char **value_out)
{
    return arb_args_string(args, key, size_max, true, value_out, tx->decision);
}

static int arg_amount(ledger_tx *tx, json_t *args, bool required, int64_t *amount_out)
{
    return arb_args_int(args, "amount", 1, ARB_JSON_INT_MAX, required, ARB_EINVALID_AMOUNT,
                        amount_out, tx->decision);
}

static int reject_field(ledger_tx *tx, const char *key, const char *why)
{
    return arb_decision_reject(tx->decision, ARB_EINVALID_ARGUMENT,
                               json_pack("{s:s}", "field", key), "%s: %s", key, why);
}

/* An optional memo of 0..ARB_MEMO_BYTES_MAX bytes. */
static int arg_memo(ledger_tx *tx, json_t *args, const char **memo_out)
{
    const json_t *value = json_object_get(args, "memo");
    *memo_out = NULL;
    if (value == NULL)
        return 0;
    if (!json_is_string(value) || json_string_length(value) > ARB_MEMO_BYTES_MAX ||
        strlen(json_string_value(value)) != json_string_length(value))
        return reject_field(tx, "memo", "must be a string of at most 256 bytes");
    *memo_out = json_string_value(value);
    return 0;
}

/* An optional object {account_id: version} (versions are integers >= 0). */
static int arg_expect_versions(ledger_tx *tx, json_t *args, json_t **expect_out)
{
    json_t *expect = json_object_get(args, "expect_versions");
    *expect_out = NULL;
    if (expect == NULL)
        return 0;
    if (!json_is_object(expect))
        return reject_field(tx, "expect_versions", "must be an object");
    const char *id;
    json_t *version;
    json_object_foreach (expect, id, version) {
        size_t len = strlen(id);
        if (len == 0 || len > ARB_ACCOUNT_ID_BYTES_MAX || !json_is_integer(version) ||
            json_integer_value(version) < 0)
            return reject_field(tx, "expect_versions",
                                "must map account ids to versions (integers >= 0)");
    }
    *expect_out = expect;
    return 0;
}

/* Checks shared by the actions. */

/* A rejection about one account: "account ID: why". */
static int reject_account(ledger_tx *tx, int code, const char *id, const char *why)
{
    return arb_decision_reject(tx->decision, code, json_pack("{s:s}", "account", id),
                               "account %s: %s", id, why);
}

static int check_owner(ledger_tx *tx, const arb__ledger_account *account)
{
    if (tx->principal->role != ARB_ROLE_USER || strcmp(account->owner, tx->principal->id) == 0)
        return 0;
    return reject_account(tx, ARB_EFORBIDDEN, account->id, "belongs to another owner");
}

static int check_versions(ledger_tx *tx, json_t *expect)
{
    if (expect == NULL)
        return 0;
    const char *id;
    json_t *version;
    json_object_foreach (expect, id, version) {
        const arb__ledger_account *account = tx_account_peek(tx, id);
        if (account == NULL)
            return reject_account(tx, ARB_EACCOUNT_NOT_FOUND, id, "not found");
        if ((uint64_t)json_integer_value(version) != account->version) {
            return arb_decision_reject(
                tx->decision, ARB_EVERSION_CONFLICT,
                json_pack("{s:s, s:I}", "account", id, "version", (json_int_t)account->version),
                "account %s is at version %" PRIu64, id, account->version);
        }
    }
    return 0;
}

/* transfer and hold: arguments and checks. */

typedef struct move_args {
    const char *from;
    const char *to;
    const char *memo;
    int64_t amount;
    int64_t timeout_s;
    json_t *expect_versions;
} move_args;

static int parse_move(ledger_tx *tx, json_t *args, bool hold, move_args *move)
{
    int rc = arg_amount(tx, args, true, &move->amount);
    if (rc == 0)
        rc = arg_name(tx, args, "from", ARB_ACCOUNT_ID_BYTES_MAX, &move->from);
    if (rc == 0)
        rc = arg_name(tx, args, "to", ARB_ACCOUNT_ID_BYTES_MAX, &move->to);
    if (rc == 0)
        rc = arg_memo(tx, args, &move->memo);
    if (rc == 0 && hold)
        rc = arb_args_int(args, "timeout_s", 1, ARB_LEDGER_HOLD_TIMEOUT_S_MAX, true,
                          ARB_EINVALID_ARGUMENT, &move->timeout_s, tx->decision);
    if (rc == 0)
        rc = arg_expect_versions(tx, args, &move->expect_versions);
    return rc;
}

/* Every check of a transfer or a hold, in the documented order. */
static int check_move(ledger_tx *tx, const move_args *move, bool hold,
                      arb__ledger_account **from_out, arb__ledger_account **to_out)
{
    arb__ledger_account *from = tx_account(tx, move->from);
    if (from == NULL)
        return reject_account(tx, ARB_EACCOUNT_NOT_FOUND, move->from, "not found");
    arb__ledger_account *to = tx_account(tx, move->to);
    if (to == NULL)
        return reject_account(tx, ARB_EACCOUNT_NOT_FOUND, move->to, "not found");
    if (from == to)
        return reject_account(tx, ARB_ESELF_TRANSFER, from->id, "is both source and target");
    int rc = check_owner(tx, from);
    if (rc == 0)
        rc = check_versions(tx, move->expect_versions);
    if (rc != 0)
        return rc;
    if (strcmp(from->currency, to->currency) != 0)
        return arb_decision_reject(
            tx->decision, ARB_ECURRENCY_MISMATCH,
            json_pack("{s:s, s:s}", "from", from->currency, "to", to->currency),
            "%s holds %s, %s holds %s", from->id, from->currency, to->id, to->currency);
    if (move->amount > tx->transfer_max)
        return arb_decision_reject(tx->decision, ARB_EEXCEEDS_LIMIT,
                                   json_pack("{s:I}", "max_transfer", (json_int_t)tx->transfer_max),
                                   "the amount exceeds the maximum of %" PRId64, tx->transfer_max);
    if (!arb__ledger_can_debit(from, move->amount))
        return reject_account(tx, ARB_EINSUFFICIENT_FUNDS, from->id, "does not have the funds");
    if (hold ? move->amount > ARB_JSON_INT_MAX - from->held
             : !arb__ledger_can_credit(to, move->amount))
        return reject_account(tx, ARB_EOVERFLOW, hold ? from->id : to->id,
                              "its funds would exceed 2^53-1");
    *from_out = from;
    *to_out = to;
    return 0;
}

/* The actions. Each returns 0 (with its event emitted and *result_out set,
 * possibly to NULL) or the rejection code. */

static int decide_transfer(ledger_tx *tx, json_t *args, json_t **result_out)
{
    move_args move;
    arb__ledger_account *from, *to;
    int rc = parse_move(tx, args, false, &move);
    if (rc == 0)
        rc = check_move(tx, &move, false, &from, &to);
    if (rc != 0)
        return rc;
    arb__ledger_apply_transfer(from, to, move.amount, tx_seq(tx));
    *result_out = NULL;
    return tx_emit(tx, "transferred",
                   json_pack("{s:s, s:s, s:I, s:s*}", "from", move.from, "to", move.to, "amount",
                             (json_int_t)move.amount, "memo", move.memo));
}

static int decide_hold(ledger_tx *tx, json_t *args, json_t **result_out)
{
    move_args move;
    arb__ledger_account *from, *to;
    int rc = parse_move(tx, args, true, &move);
    if (rc == 0)
        rc = check_move(tx, &move, true, &from, &to);
    if (rc != 0)
        return rc;
    if (tx_holds_open(tx) >= ARB_LEDGER_PENDING_MAX)
        return arb_decision_reject(tx->decision, ARB_ETOO_MANY_PENDING, NULL, NULL);
    ARB_ASSERT(tx->hold_count < TX_HOLDS_MAX);
    ARB_ASSERT(tx->ctx->now_ms >= 0 && tx->ctx->now_ms <= ARB_JSON_INT_MAX / 2);
    uint64_t seq = tx_seq(tx);
    arb__ledger_hold *hold = &tx->holds[tx->hold_count++];
    snprintf(hold->id, sizeof hold->id, "p%" PRIu64, seq);
    memcpy(hold->from, from->id, sizeof hold->from);
    memcpy(hold->to, to->id, sizeof hold->to);
    hold->expires_at_ms = tx->ctx->now_ms + move.timeout_s * 1000;
    arb__ledger_apply_hold(hold, from, move.amount, seq);
    tx->holds_opened++;
    rc = tx_emit(tx, "held",
                 json_pack("{s:s, s:s, s:s, s:I, s:I, s:s*}", "pending", hold->id, "from",
                           move.from, "to", move.to, "amount", (json_int_t)move.amount,
                           "expires_at", (json_int_t)hold->expires_at_ms, "memo", move.memo));
    if (rc != 0)
        return rc;
    *result_out =
        json_pack("{s:s, s:I}", "pending", hold->id, "expires_at", (json_int_t)hold->expires_at_ms);
    if (*result_out == NULL)
        return arb_decision_reject(tx->decision, ARB_ENOMEM, NULL, NULL);
    return 0;
}

/* The hold named by args["pending"], still open at ctx->now_ms. */
static int find_open_hold(ledger_tx *tx, json_t *args, arb__ledger_hold **hold_out)
{
    const char *id;
    int rc = arg_name(tx, args, "pending", ARB__LEDGER_PENDING_ID_BYTES_MAX, &id);
    if (rc != 0)
        return rc;
    arb__ledger_hold *hold = tx_hold(tx, id);
    if (hold == NULL)
        return arb_decision_reject(tx->decision, ARB_EPENDING_NOT_FOUND,
                                   json_pack("{s:s}", "pending", id), "no pending hold %s", id);
    bool expired =
        hold->status == ARB__LEDGER_HOLD_EXPIRED ||
        (hold->status == ARB__LEDGER_HOLD_PENDING && tx->ctx->now_ms >= hold->expires_at_ms);
    if (expired || hold->status != ARB__LEDGER_HOLD_PENDING) {
        const char *status = expired ? "expired" : arb__ledger_status_name(hold->status);
        return arb_decision_reject(
            tx->decision, expired ? ARB_EPENDING_EXPIRED : ARB_EPENDING_CLOSED,
            json_pack("{s:s, s:s}", "pending", id, "status", status), "hold %s is %s", id, status);
    }
    *hold_out = hold;
    return 0;
}

static int decide_capture(ledger_tx *tx, json_t *args, json_t **result_out)
{
    arb__ledger_hold *hold;
    int64_t amount = 0;
    int rc = arg_amount(tx, args, false, &amount);
    if (rc == 0)
        rc = find_open_hold(tx, args, &hold);
    if (rc != 0)
        return rc;
    arb__ledger_account *from = tx_account(tx, hold->from);
    arb__ledger_account *to = tx_account(tx, hold->to);
    ARB_ASSERT(from != NULL && to != NULL && from != to);
    rc = check_owner(tx, from);
    if (rc != 0)
        return rc;
    if (amount == 0)
        amount = hold->amount;
    if (amount > hold->amount)
        return arb_decision_reject(
            tx->decision, ARB_EINVALID_AMOUNT,
            json_pack("{s:s, s:I}", "field", "amount", "max", (json_int_t)hold->amount),
            "amount: at most the held %" PRId64, hold->amount);
    if (!arb__ledger_can_credit(to, amount))
        return reject_account(tx, ARB_EOVERFLOW, to->id, "its funds would exceed 2^53-1");
    arb__ledger_apply_capture(hold, from, to, amount, tx_seq(tx));
    tx->holds_closed++;
    rc = tx_emit(tx, "captured",
                 json_pack("{s:s, s:I}", "pending", hold->id, "amount", (json_int_t)amount));
    if (rc != 0)
        return rc;
    *result_out = json_pack("{s:s, s:I}", "pending", hold->id, "amount", (json_int_t)amount);
    if (*result_out == NULL)
        return arb_decision_reject(tx->decision, ARB_ENOMEM, NULL, NULL);
    return 0;
}

static int decide_void(ledger_tx *tx, json_t *args, json_t **result_out)
{
    arb__ledger_hold *hold;
    int rc = find_open_hold(tx, args, &hold);
    if (rc != 0)
        return rc;
    arb__ledger_account *from = tx_account(tx, hold->from);
    ARB_ASSERT(from != NULL);
    rc = check_owner(tx, from);
    if (rc != 0)
        return rc;
    arb__ledger_apply_release(hold, from, ARB__LEDGER_HOLD_VOIDED, tx_seq(tx));
    tx->holds_closed++;
    *result_out = NULL;
    return tx_emit(tx, "voided", json_pack("{s:s}", "pending", hold->id));
}

/* The timer's proposal. Rejected (and dropped by the engine) when stale. */
static int decide_expire(ledger_tx *tx, json_t *args, json_t **result_out)
{
    const char *id;
    int rc = arg_name(tx, args, "pending", ARB__LEDGER_PENDING_ID_BYTES_MAX, &id);
    if (rc != 0)
        return rc;
    arb__ledger_hold *hold = tx_hold(tx, id);
    if (hold == NULL)
        return arb_decision_reject(tx->decision, ARB_EPENDING_NOT_FOUND,
                                   json_pack("{s:s}", "pending", id), "no pending hold %s", id);
    if (hold->status != ARB__LEDGER_HOLD_PENDING)
        return arb_decision_reject(tx->decision, ARB_EPENDING_CLOSED,
                                   json_pack("{s:s}", "pending", id), "hold %s is already %s", id,
                                   arb__ledger_status_name(hold->status));
    if (tx->ctx->now_ms < hold->expires_at_ms)
        return arb_decision_reject(
            tx->decision, ARB_EINVALID_ARGUMENT,
            json_pack("{s:s, s:I}", "pending", id, "expires_at", (json_int_t)hold->expires_at_ms),
            "hold %s is not yet due", id);
    arb__ledger_account *from = tx_account(tx, hold->from);
    ARB_ASSERT(from != NULL);
    arb__ledger_apply_release(hold, from, ARB__LEDGER_HOLD_EXPIRED, tx_seq(tx));
    tx->holds_closed++;
    *result_out = NULL;
    return tx_emit(tx, "expired", json_pack("{s:s}", "pending", hold->id));
}

/* deposit and withdraw (admin): money entering or leaving the ledger. */
static int decide_cash(ledger_tx *tx, json_t *args, bool deposit, json_t **result_out)
{
    const char *id, *memo;
    int64_t amount;
    int rc = arg_amount(tx, args, true, &amount);
    if (rc == 0)
        rc = arg_name(tx, args, "account", ARB_ACCOUNT_ID_BYTES_MAX, &id);
    if (rc == 0)
        rc = arg_memo(tx, args, &memo);
    if (rc != 0)
        return rc;
    arb__ledger_account *account = tx_account(tx, id);
    if (account == NULL)
        return reject_account(tx, ARB_EACCOUNT_NOT_FOUND, id, "not found");
    arb__ledger_total *total = tx_total(tx, account->currency);
    if (!deposit && !arb__ledger_can_debit(account, amount))
        return reject_account(tx, ARB_EINSUFFICIENT_FUNDS, id, "does not have the funds");
    if (deposit ? !arb__ledger_can_credit(account, amount) ||
                      amount > ARB_JSON_INT_MAX - total->deposited
                : amount > ARB_JSON_INT_MAX - total->withdrawn)
        return reject_account(tx, ARB_EOVERFLOW, id,
                              "its funds or its currency's totals would exceed 2^53-1");
    if (deposit)
        arb__ledger_apply_deposit(account, total, amount, tx_seq(tx));
    else
        arb__ledger_apply_withdraw(account, total, amount, tx_seq(tx));
    *result_out = NULL;
    return tx_emit(
        tx, deposit ? "deposited" : "withdrawn",
        json_pack("{s:s, s:I, s:s*}", "account", id, "amount", (json_int_t)amount, "memo", memo));
}

static int decide_deposit(ledger_tx *tx, json_t *args, json_t **result_out)
{
    return decide_cash(tx, args, true, result_out);
}

static int decide_withdraw(ledger_tx *tx, json_t *args, json_t **result_out)
{
    return decide_cash(tx, args, false, result_out);
}

static int decide_open_account(ledger_tx *tx, json_t *args, json_t **result_out)
{
    const char *id, *owner, *currency;
    int64_t overdraft_limit = 0;
    int rc = arg_name(tx, args, "account", ARB_ACCOUNT_ID_BYTES_MAX, &id);
    if (rc == 0)
        rc = arg_name(tx, args, "owner", ARB_ACCOUNT_ID_BYTES_MAX, &owner);
    if (rc == 0)
        rc = arg_name(tx, args, "currency", ARB_CURRENCY_BYTES_MAX, &currency);
    if (rc == 0)
        rc = arb_args_int(args, "overdraft_limit", 0, ARB_JSON_INT_MAX, false, ARB_EINVALID_AMOUNT,
                          &overdraft_limit, tx->decision);
    if (rc != 0)
        return rc;
    if (tx_account_peek(tx, id) != NULL)
        return reject_account(tx, ARB_EACCOUNT_EXISTS, id, "already exists");
    if (tx->state->accounts.count + tx->accounts_opened >= ARB_LEDGER_ACCOUNTS_MAX)
        return arb_decision_reject(tx->decision, ARB_ETOO_MANY_ACCOUNTS, NULL, NULL);
    ARB_ASSERT(tx->account_count < TX_ACCOUNTS_MAX);
    arb__ledger_account *account = &tx->accounts[tx->account_count++];
    memset(account, 0, sizeof *account);
    ARB_ASSERT(arb_copy_name(account->id, sizeof account->id, id) == 0);
    ARB_ASSERT(arb_copy_name(account->owner, sizeof account->owner, owner) == 0);
    ARB_ASSERT(arb_copy_name(account->currency, sizeof account->currency, currency) == 0);
    account->overdraft_limit = overdraft_limit;
    account->version = tx_seq(tx);
    tx->accounts_opened++;
    *result_out = NULL;
    return tx_emit(tx, "account_opened",
                   json_pack("{s:s, s:s, s:s, s:I}", "account", id, "owner", owner, "currency",
                             currency, "overdraft_limit", (json_int_t)overdraft_limit));
}

static int decide_configure(ledger_tx *tx, json_t *args, json_t **result_out)
{
    int64_t max_transfer;
    int rc = arb_args_int(args, "max_transfer", 1, ARB_JSON_INT_MAX, true, ARB_EINVALID_AMOUNT,
                          &max_transfer, tx->decision);
    if (rc != 0)
        return rc;
    tx->transfer_max = max_transfer;
    *result_out = NULL;
    return tx_emit(tx, "configured", json_pack("{s:I}", "max_transfer", (json_int_t)max_transfer));
}

static int decide_batch(ledger_tx *tx, json_t *args, json_t **result_out);

/* The action table: what the dispatcher checks before a handler runs. */

enum {
    ACTION_ADMIN = 1u << 0,    /* admin (or system) only */
    ACTION_SYSTEM = 1u << 1,   /* system only */
    ACTION_IN_BATCH = 1u << 2, /* allowed as a batch item */
};

typedef struct action_entry {
    const char *name;
    int (*decide)(ledger_tx *tx, json_t *args, json_t **result_out);
    unsigned flags;
    const char *keys[7]; /* the arguments it accepts, NULL-terminated */
} action_entry;

/* The hot actions first: the lookup is a linear scan. */
static const action_entry action_table[] = {
    {"transfer",
     decide_transfer,
     ACTION_IN_BATCH,
     {"from", "to", "amount", "memo", "expect_versions", NULL}},
    {"hold",
     decide_hold,
     ACTION_IN_BATCH,
     {"from", "to", "amount", "timeout_s", "memo", "expect_versions", NULL}},
    {"capture", decide_capture, ACTION_IN_BATCH, {"pending", "amount", NULL}},
    {"void", decide_void, ACTION_IN_BATCH, {"pending", NULL}},
    {"expire", decide_expire, ACTION_SYSTEM, {"pending", NULL}},
    {"batch", decide_batch, 0, {"items", NULL}},
    {"deposit",
     decide_deposit,
     ACTION_ADMIN | ACTION_IN_BATCH,
     {"account", "amount", "memo", NULL}},
    {"withdraw",
     decide_withdraw,
     ACTION_ADMIN | ACTION_IN_BATCH,
     {"account", "amount", "memo", NULL}},
    {"open_account",
     decide_open_account,
     ACTION_ADMIN | ACTION_IN_BATCH,
     {"account", "owner", "currency", "overdraft_limit", NULL}},
    {"configure", decide_configure, ACTION_ADMIN, {"max_transfer", NULL}},
};

static const action_entry *find_action(const char *name)
{
    for (size_t i = 0; i < sizeof action_table / sizeof action_table[0]; i++)
        if (strcmp(action_table[i].name, name) == 0)
            return &action_table[i];
    return NULL;
}

static int check_keys(ledger_tx *tx, json_t *args, const action_entry *action)
{
    const char *key;
    json_t *value;
    json_object_foreach (args, key, value) {
        bool known = false;
        for (size_t i = 0; action->keys[i] != NULL && !known; i++)
            known = strcmp(action->keys[i], key) == 0;
        if (!known)
            return reject_field(tx, key, "unknown argument");
    }
    return 0;
}

static int check_role(ledger_tx *tx, const action_entry *action)
{
    arb_role role = tx->principal->role;
    if ((action->flags & ACTION_SYSTEM) != 0 && role != ARB_ROLE_SYSTEM)
        return arb_decision_reject(tx->decision, ARB_EFORBIDDEN, NULL,
                                   "%s is proposed by the server only", action->name);
    if ((action->flags & ACTION_ADMIN) != 0 && role != ARB_ROLE_ADMIN && role != ARB_ROLE_SYSTEM)
        return arb_decision_reject(tx->decision, ARB_EFORBIDDEN, NULL, "%s is for admins only",
                                   action->name);
    return 0;
}

/* The dispatcher: everything common to the actions, then the handler. */
static int decide_action(ledger_tx *tx, const char *name, json_t *args, bool in_batch,
                         json_t **result_out)
{
    *result_out = NULL;
    const action_entry *action = find_action(name);
    if (action == NULL)
        return arb_decision_reject(tx->decision, ARB_EUNKNOWN_ACTION,
                                   json_pack("{s:s}", "action", name), "no ledger action %s", name);
    if (in_batch && (action->flags & ACTION_IN_BATCH) == 0)
        return arb_decision_reject(tx->decision, ARB_EINVALID_ARGUMENT,
                                   json_pack("{s:s}", "field", "action"),
                                   "%s is not allowed in a batch", name);
    int rc = check_role(tx, action);
    if (rc != 0)
        return rc;
    if (!json_is_object(args))
        return reject_field(tx, "args", "must be an object");
    rc = check_keys(tx, args, action);
    if (rc != 0)
        return rc;
    size_t events_before = tx->decision->event_count;
    rc = action->decide(tx, args, result_out);
    ARB_ASSERT(rc != 0 || tx->decision->event_count > events_before);
    ARB_ASSERT(rc == 0 || *result_out == NULL);
    return rc;
}

/* Batch. */

/* Re-reject an item's rejection as the batch's: same code and message,
 * details {"item", "action", ...the item's details}. */
static int reject_item(ledger_tx *tx, int code, size_t index, const char *action)
{
    arb_decision *decision = tx->decision;
    char message[ARB_MESSAGE_BYTES_MAX + 1];
    memcpy(message, decision->message, sizeof message);
    json_t *item_details = decision->details;
    decision->details = NULL;
    json_t *details = json_pack("{s:I, s:s?}", "item", (json_int_t)index, "action", action);
    if (details != NULL && json_is_object(item_details))
        json_object_update_missing(details, item_details);
    json_decref(item_details);
    return arb_decision_reject(decision, code, details, "%s", message);
}

static int decide_item(ledger_tx *tx, json_t *item, size_t index, json_t **result_out)
{
    const char *action = json_string_value(json_object_get(item, "action"));
    json_t *args = json_object_get(item, "args");
    int rc;
    *result_out = NULL;
    if (!json_is_object(item) || json_object_size(item) != 2 || action == NULL || args == NULL)
        rc = reject_field(tx, "items", "each item is {\"action\": string, \"args\": object}");
    else
        rc = decide_action(tx, action, args, true, result_out);
    if (rc != 0)
        return reject_item(tx, rc, index, action);
    return 0;
}

static int decide_batch(ledger_tx *tx, json_t *args, json_t **result_out)
{
    json_t *items = json_object_get(args, "items");
    size_t count = json_array_size(items);
    if (!json_is_array(items) || count == 0 || count > ARB_LEDGER_BATCH_ITEMS_MAX)
        return reject_field(tx, "items", "must be an array of 1 to 64 items");
    json_t *results = json_array();
    if (results == NULL)
        return arb_decision_reject(tx->decision, ARB_ENOMEM, NULL, NULL);
    for (size_t i = 0; i < count; i++) {
        json_t *result;
        int rc = decide_item(tx, json_array_get(items, i), i, &result);
        if (rc != 0) {
            json_decref(results);
            return rc;
        }
        if (json_array_append_new(results, result != NULL ? result : json_null()) != 0) {
            json_decref(results);
            return arb_decision_reject(tx->decision, ARB_ENOMEM, NULL, NULL);
        }
    }
    *result_out = json_pack("{s:o}", "items", results);
    if (*result_out == NULL)
        return arb_decision_reject(tx->decision, ARB_ENOMEM, NULL, NULL);
    return 0;
}

void arb__ledger_decide(const void *state, const arb_command *command, const arb_ctx *ctx,
                        arb_decision *decision)
{
    ARB_ASSERT(state != NULL && command != NULL && ctx != NULL && decision != NULL);
    ARB_ASSERT(decision->code == 0 && decision->event_count == 0);
    /* Only the counters are initialised: the arrays are filled as used. */
    ledger_tx tx;
    tx.state = state;
    tx.principal = &command->principal;
    tx.ctx = ctx;
    tx.decision = decision;
    tx.transfer_max = tx.state->transfer_max;
    tx.accounts_opened = 0;
    tx.holds_opened = 0;
    tx.holds_closed = 0;
    tx.account_count = 0;
    tx.hold_count = 0;
    tx.total_count = 0;
    json_t *result = NULL;
    if (decide_action(&tx, command->action, command->args, false, &result) == 0)
        arb_decision_set_result(decision, result);
}
