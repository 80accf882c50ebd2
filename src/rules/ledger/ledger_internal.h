/*
 * ledger_internal.h - the ledger's state and the effects of its events,
 * shared by the files of src/rules/ledger/ (and read by its unit test).
 *
 * The module is split by role:
 *   ledger.c           the rules table, state life cycle, evolve, redact
 *   ledger_decide.c    decide: actions, arguments, the transaction overlay
 *   ledger_snapshot.c  view, snapshot save/load
 *   ledger_check.c     check (the invariants, from scratch)
 *
 * The effects below (arb__ledger_apply_*) are the single definition of what
 * an event does to accounts and holds. decide applies them to its overlay
 * copies, evolve to the state itself, so the two can never drift apart.
 *
 * Invariants of every account (check() verifies them, the effects assert
 * them):
 *   - held >= 0, and held == the sum of the amounts of its pending holds;
 *   - balance >= -overdraft_limit;
 *   - balance + held <= ARB_JSON_INT_MAX (its total funds fit a JSON
 *     integer, so releasing a hold can never overflow);
 * and of every currency: the sum over its accounts of balance + held equals
 * deposited - withdrawn, each of which stays in 0..ARB_JSON_INT_MAX.
 *
 * Holds are kept after they close (captured, voided, expired) so that a late
 * capture answers PENDING_CLOSED rather than PENDING_NOT_FOUND. The closed
 * ones form a FIFO in closing order; past closed_kept_max the oldest is
 * forgotten, so the state stays bounded.
 */
#ifndef ARB_RULES_LEDGER_INTERNAL_H
#define ARB_RULES_LEDGER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "arbiter/limits.h"
#include "arbiter/rules.h"
#include "core/assert.h"
#include "core/map.h"
#include "rules/common.h"

/* "p" and the decimal seq of the held event: at most 20 digits. */
#define ARB__LEDGER_PENDING_ID_BYTES_MAX 24
/* The snapshot format written by this code. */
#define ARB__LEDGER_SNAPSHOT_FORMAT 1

typedef struct arb__ledger_account {
    char id[ARB_ACCOUNT_ID_BYTES_MAX + 1];
    char owner[ARB_ACCOUNT_ID_BYTES_MAX + 1];
    char currency[ARB_CURRENCY_BYTES_MAX + 1];
    int64_t balance; /* free funds; may go down to -overdraft_limit */
    int64_t held;    /* funds reserved by pending holds from this account */
    int64_t overdraft_limit;
    uint64_t version; /* seq of the last event that changed it */
} arb__ledger_account;

typedef enum arb__ledger_hold_status {
    ARB__LEDGER_HOLD_PENDING = 0,
    ARB__LEDGER_HOLD_CAPTURED = 1,
    ARB__LEDGER_HOLD_VOIDED = 2,
    ARB__LEDGER_HOLD_EXPIRED = 3,
} arb__ledger_hold_status;

typedef struct arb__ledger_hold {
    char id[ARB__LEDGER_PENDING_ID_BYTES_MAX + 1];
    char from[ARB_ACCOUNT_ID_BYTES_MAX + 1];
    char to[ARB_ACCOUNT_ID_BYTES_MAX + 1];
    int64_t amount;   /* reserved from `from` while pending */
    int64_t captured; /* paid to `to` on capture; 0 otherwise */
    int64_t expires_at_ms;
    uint64_t version; /* seq of the last event that changed it */
    arb__ledger_hold_status status;
    struct arb__ledger_hold *next_closed; /* FIFO of closed holds */
} arb__ledger_hold;

typedef struct arb__ledger_total {
    char currency[ARB_CURRENCY_BYTES_MAX + 1];
    int64_t deposited; /* money that ever entered, 0..ARB_JSON_INT_MAX */
    int64_t withdrawn; /* money that ever left, 0..ARB_JSON_INT_MAX */
} arb__ledger_total;

typedef struct arb__ledger_state {
    int64_t transfer_max;
    arb_map accounts; /* id -> arb__ledger_account*, owned */
    arb_map holds;    /* id -> arb__ledger_hold*, owned */
    arb_map totals;   /* currency -> arb__ledger_total*, owned */
    size_t holds_open;
    size_t holds_closed;
    size_t closed_kept_max;
    arb__ledger_hold *closed_head; /* oldest closed hold */
    arb__ledger_hold *closed_tail;
} arb__ledger_state;

/* ledger.c */
int arb__ledger_state_new(arb__ledger_state **state_out);
void arb__ledger_state_free(arb__ledger_state *state);
/* Insert a new account / total / hold the state takes ownership of (it frees
 * the object itself on failure). 0, ARB_ECORRUPT (duplicate), ARB_ELIMIT or
 * ARB_ENOMEM. */
int arb__ledger_add_account(arb__ledger_state *state, arb__ledger_account *account);
int arb__ledger_add_total(arb__ledger_state *state, arb__ledger_total *total);
int arb__ledger_add_hold(arb__ledger_state *state, arb__ledger_hold *hold);
/* Append a hold that has just closed to the FIFO, forgetting the oldest
 * closed holds past closed_kept_max. */
void arb__ledger_hold_closed(arb__ledger_state *state, arb__ledger_hold *hold);
/* Tests only: remember at most kept closed holds (forgets extras now). */
void arb__ledger_set_closed_kept(void *state, size_t kept);
/* The report of one open hold's deadline to a timer sink (NULL-safe). */
void arb__ledger_report_timer(const arb_timer_sink *timers, const arb__ledger_hold *hold);

/* ledger_decide.c */
void arb__ledger_decide(const void *state, const arb_command *command, const arb_ctx *ctx,
                        arb_decision *decision);

/* ledger_snapshot.c */
json_t *arb__ledger_view(const void *state, const arb_principal *viewer);
int arb__ledger_snapshot_save(const void *state, json_t **snapshot_out);
int arb__ledger_snapshot_load(const json_t *snapshot, uint64_t seq, void **state_out,
                              const arb_timer_sink *timers);
const char *arb__ledger_status_name(arb__ledger_hold_status status);

/* ledger_check.c */
int arb__ledger_check(const void *state, char *why, size_t why_size);

/* The checks that keep the account invariants, shared by decide and evolve. */

/* Whether the account's total funds can grow by amount. */
static inline bool arb__ledger_can_credit(const arb__ledger_account *account, int64_t amount)
{
    return amount >= 0 && amount <= ARB_JSON_INT_MAX - account->balance - account->held;
}

/* Whether the account's free funds (with its overdraft) cover amount. */
static inline bool arb__ledger_can_debit(const arb__ledger_account *account, int64_t amount)
{
    return amount >= 0 && amount <= account->balance + account->overdraft_limit;
}

/* Whether the account can reserve amount more (held stays a JSON integer). */
static inline bool arb__ledger_can_hold(const arb__ledger_account *account, int64_t amount)
{
    return arb__ledger_can_debit(account, amount) && amount <= ARB_JSON_INT_MAX - account->held;
}

static inline void arb__ledger_assert_account(const arb__ledger_account *account)
{
    ARB_ASSERT(account->held >= 0 && account->held <= ARB_JSON_INT_MAX);
    ARB_ASSERT(account->balance >= -account->overdraft_limit);
    ARB_ASSERT(account->balance + account->held <= ARB_JSON_INT_MAX);
}

/* The effects. Callers have checked the preconditions (the can_* above);
 * the assertions catch a caller that did not. */

static inline void arb__ledger_apply_deposit(arb__ledger_account *account, arb__ledger_total *total,
                                             int64_t amount, uint64_t seq)
{
    ARB_ASSERT(amount > 0 && arb__ledger_can_credit(account, amount));
    ARB_ASSERT(amount <= ARB_JSON_INT_MAX - total->deposited);
    account->balance += amount;
    account->version = seq;
    total->deposited += amount;
    arb__ledger_assert_account(account);
}

static inline void arb__ledger_apply_withdraw(arb__ledger_account *account,
                                              arb__ledger_total *total, int64_t amount,
                                              uint64_t seq)
{
    ARB_ASSERT(amount > 0 && arb__ledger_can_debit(account, amount));
    ARB_ASSERT(amount <= ARB_JSON_INT_MAX - total->withdrawn);
    account->balance -= amount;
    account->version = seq;
    total->withdrawn += amount;
    arb__ledger_assert_account(account);
}

static inline void arb__ledger_apply_transfer(arb__ledger_account *from, arb__ledger_account *to,
                                              int64_t amount, uint64_t seq)
{
    ARB_ASSERT(from != to && amount > 0);
    ARB_ASSERT(arb__ledger_can_debit(from, amount) && arb__ledger_can_credit(to, amount));
    from->balance -= amount;
    from->version = seq;
    to->balance += amount;
    to->version = seq;
    arb__ledger_assert_account(from);
    arb__ledger_assert_account(to);
}

/* Fills hold (id, to and expiry are the caller's) and reserves its amount. */
static inline void arb__ledger_apply_hold(arb__ledger_hold *hold, arb__ledger_account *from,
                                          int64_t amount, uint64_t seq)
{
    ARB_ASSERT(amount > 0 && arb__ledger_can_hold(from, amount));
    from->balance -= amount;
    from->held += amount;
    from->version = seq;
    hold->amount = amount;
    hold->captured = 0;
    hold->status = ARB__LEDGER_HOLD_PENDING;
    hold->version = seq;
    hold->next_closed = NULL;
    arb__ledger_assert_account(from);
}

/* Pays amount (1..hold->amount) to `to`; the rest returns to `from`. */
static inline void arb__ledger_apply_capture(arb__ledger_hold *hold, arb__ledger_account *from,
                                             arb__ledger_account *to, int64_t amount, uint64_t seq)
{
    ARB_ASSERT(hold->status == ARB__LEDGER_HOLD_PENDING && from != to);
    ARB_ASSERT(amount > 0 && amount <= hold->amount && from->held >= hold->amount);
    ARB_ASSERT(arb__ledger_can_credit(to, amount));
    from->held -= hold->amount;
    from->balance += hold->amount - amount;
    from->version = seq;
    to->balance += amount;
    to->version = seq;
    hold->captured = amount;
    hold->status = ARB__LEDGER_HOLD_CAPTURED;
    hold->version = seq;
    arb__ledger_assert_account(from);
    arb__ledger_assert_account(to);
}

/* Void or expiry: the whole amount returns to `from`. Never overflows,
 * because balance + held stays the same. */
static inline void arb__ledger_apply_release(arb__ledger_hold *hold, arb__ledger_account *from,
                                             arb__ledger_hold_status status, uint64_t seq)
{
    ARB_ASSERT(hold->status == ARB__LEDGER_HOLD_PENDING);
    ARB_ASSERT(status == ARB__LEDGER_HOLD_VOIDED || status == ARB__LEDGER_HOLD_EXPIRED);
    ARB_ASSERT(from->held >= hold->amount);
    from->held -= hold->amount;
    from->balance += hold->amount;
    from->version = seq;
    hold->status = status;
    hold->version = seq;
    arb__ledger_assert_account(from);
}

#endif
