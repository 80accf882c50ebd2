/*
 * ledger.c - the ledger rule module: its table, the state's life cycle, and
 * evolve (applying one committed event).
 *
 * Ownership: the state owns every account, hold and total it maps to (one
 * malloc each) and frees them in arb__ledger_state_free. evolve validates an
 * event completely before it changes anything, so an event that does not fit
 * (ARB_ECORRUPT) leaves the state as it was. The effects themselves are the
 * arb__ledger_apply_* functions of ledger_internal.h, the same ones decide
 * applies to its overlay.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/ledger/ledger.h"
#include "rules/ledger/ledger_internal.h"

/* State life cycle. */

int arb__ledger_state_new(arb__ledger_state **state_out)
{
    arb__ledger_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return ARB_ENOMEM;
    state->transfer_max = ARB_LEDGER_TRANSFER_MAX_DEFAULT;
    state->closed_kept_max = ARB_LEDGER_CLOSED_HOLDS_KEPT;
    arb_map_init(&state->accounts, ARB_LEDGER_ACCOUNTS_MAX);
    arb_map_init(&state->holds, ARB_LEDGER_PENDING_MAX + ARB_LEDGER_CLOSED_HOLDS_KEPT + 1);
    /* Every currency has at least one account, so this bound is never hit. */
    arb_map_init(&state->totals, ARB_LEDGER_ACCOUNTS_MAX);
    *state_out = state;
    return 0;
}

static int free_value(void *user, const char *key, void *value)
{
    (void)user;
    (void)key;
    free(value);
    return 0;
}

void arb__ledger_state_free(arb__ledger_state *state)
{
    if (state == NULL)
        return;
    arb_map_foreach(&state->accounts, free_value, NULL);
    arb_map_foreach(&state->holds, free_value, NULL);
    arb_map_foreach(&state->totals, free_value, NULL);
    arb_map_free(&state->accounts);
    arb_map_free(&state->holds);
    arb_map_free(&state->totals);
    free(state);
}

int arb__ledger_add_account(arb__ledger_state *state, arb__ledger_account *account)
{
    return arb__rules_map_add(&state->accounts, account->id, account);
}

int arb__ledger_add_total(arb__ledger_state *state, arb__ledger_total *total)
{
    return arb__rules_map_add(&state->totals, total->currency, total);
}

int arb__ledger_add_hold(arb__ledger_state *state, arb__ledger_hold *hold)
{
    return arb__rules_map_add(&state->holds, hold->id, hold);
}

static void forget_oldest_closed(arb__ledger_state *state)
{
    while (state->holds_closed > state->closed_kept_max) {
        arb__ledger_hold *oldest = state->closed_head;
        ARB_ASSERT(oldest != NULL && oldest->status != ARB__LEDGER_HOLD_PENDING);
        state->closed_head = oldest->next_closed;
        if (state->closed_head == NULL)
            state->closed_tail = NULL;
        void *removed = arb_map_remove(&state->holds, oldest->id);
        ARB_ASSERT(removed == oldest);
        free(oldest);
        state->holds_closed--;
    }
}

void arb__ledger_hold_closed(arb__ledger_state *state, arb__ledger_hold *hold)
{
    ARB_ASSERT(hold->status != ARB__LEDGER_HOLD_PENDING && hold->next_closed == NULL);
    hold->next_closed = NULL;
    if (state->closed_tail != NULL)
        state->closed_tail->next_closed = hold;
    else
        state->closed_head = hold;
    state->closed_tail = hold;
    state->holds_closed++;
    forget_oldest_closed(state);
}

void arb__ledger_set_closed_kept(void *state, size_t kept)
{
    arb__ledger_state *ledger = state;
    ledger->closed_kept_max = kept;
    forget_oldest_closed(ledger);
}

void arb__ledger_report_timer(const arb_timer_sink *timers, const arb__ledger_hold *hold)
{
    ARB_ASSERT(hold->status == ARB__LEDGER_HOLD_PENDING);
    if (timers == NULL || timers->add == NULL)
        return;
    json_t *args = json_pack("{s:s}", "pending", hold->id);
    /* Out of memory here would lose a deadline; stopping is the honest answer. */
    ARB_ASSERT(args != NULL);
    timers->add(timers->user, hold->expires_at_ms, "expire", args);
    json_decref(args);
}

/* Reading event data. */

static bool data_memo_ok(const json_t *data)
{
    const char *memo;
    return json_object_get(data, "memo") == NULL ||
           arb__rules_data_string(data, "memo", 0, ARB_MEMO_BYTES_MAX, &memo);
}

static arb__ledger_account *data_account(arb__ledger_state *state, const json_t *data,
                                         const char *key)
{
    const char *id;
    if (!arb__rules_data_string(data, key, 1, ARB_ACCOUNT_ID_BYTES_MAX, &id))
        return NULL;
    return arb_map_get(&state->accounts, id);
}

static arb__ledger_hold *data_pending_hold(arb__ledger_state *state, const json_t *data)
{
    const char *id;
    if (!arb__rules_data_string(data, "pending", 1, ARB__LEDGER_PENDING_ID_BYTES_MAX, &id))
        return NULL;
    arb__ledger_hold *hold = arb_map_get(&state->holds, id);
    return hold != NULL && hold->status == ARB__LEDGER_HOLD_PENDING ? hold : NULL;
}

/* Evolve, one function per event type. */

static int evolve_configured(arb__ledger_state *state, const arb_event *event,
                             const arb_timer_sink *timers)
{
    (void)timers;
    int64_t max_transfer;
    if (!arb__rules_data_int(event->data, "max_transfer", 1, ARB_JSON_INT_MAX, &max_transfer))
        return ARB_ECORRUPT;
    state->transfer_max = max_transfer;
    return 0;
}

static int ensure_total(arb__ledger_state *state, const char *currency)
{
    if (arb_map_get(&state->totals, currency) != NULL)
        return 0;
    arb__ledger_total *total = calloc(1, sizeof *total);
    if (total == NULL)
        return ARB_ENOMEM;
    if (arb_copy_name(total->currency, sizeof total->currency, currency) != 0) {
        free(total);
        return ARB_ECORRUPT;
    }
    return arb__ledger_add_total(state, total);
}

static int evolve_account_opened(arb__ledger_state *state, const arb_event *event,
                                 const arb_timer_sink *timers)
{
    (void)timers;
    const json_t *data = event->data;
    const char *id, *owner, *currency;
    int64_t overdraft_limit;
    if (!arb__rules_data_string(data, "account", 1, ARB_ACCOUNT_ID_BYTES_MAX, &id) ||
        !arb__rules_data_string(data, "owner", 1, ARB_ACCOUNT_ID_BYTES_MAX, &owner) ||
        !arb__rules_data_string(data, "currency", 1, ARB_CURRENCY_BYTES_MAX, &currency) ||
        !arb__rules_data_int(data, "overdraft_limit", 0, ARB_JSON_INT_MAX, &overdraft_limit))
        return ARB_ECORRUPT;
    if (arb_map_get(&state->accounts, id) != NULL ||
        state->accounts.count >= ARB_LEDGER_ACCOUNTS_MAX)
        return ARB_ECORRUPT;
    int rc = ensure_total(state, currency);
    if (rc != 0)
        return rc;
    arb__ledger_account *account = calloc(1, sizeof *account);
    if (account == NULL)
        return ARB_ENOMEM;
    /* The lengths were checked above, so the copies fit. */
    memcpy(account->id, id, strlen(id) + 1);
    memcpy(account->owner, owner, strlen(owner) + 1);
    memcpy(account->currency, currency, strlen(currency) + 1);
    account->overdraft_limit = overdraft_limit;
    account->version = event->seq;
    return arb__ledger_add_account(state, account);
}

/* deposited and withdrawn share their shape. */
static int evolve_cash(arb__ledger_state *state, const arb_event *event, bool deposit)
{
    int64_t amount;
    arb__ledger_account *account = data_account(state, event->data, "account");
    if (account == NULL ||
        !arb__rules_data_int(event->data, "amount", 1, ARB_JSON_INT_MAX, &amount) ||
        !data_memo_ok(event->data))
        return ARB_ECORRUPT;
    arb__ledger_total *total = arb_map_get(&state->totals, account->currency);
    if (total == NULL)
        return ARB_ECORRUPT;
    if (deposit) {
        if (!arb__ledger_can_credit(account, amount) ||
            amount > ARB_JSON_INT_MAX - total->deposited)
            return ARB_ECORRUPT;
        arb__ledger_apply_deposit(account, total, amount, event->seq);
    } else {
        if (!arb__ledger_can_debit(account, amount) || amount > ARB_JSON_INT_MAX - total->withdrawn)
            return ARB_ECORRUPT;
        arb__ledger_apply_withdraw(account, total, amount, event->seq);
    }
    return 0;
}

static int evolve_deposited(arb__ledger_state *state, const arb_event *event,
                            const arb_timer_sink *timers)
{
    (void)timers;
    return evolve_cash(state, event, true);
}

static int evolve_withdrawn(arb__ledger_state *state, const arb_event *event,
                            const arb_timer_sink *timers)
{
    (void)timers;
    return evolve_cash(state, event, false);
}

static int evolve_transferred(arb__ledger_state *state, const arb_event *event,
                              const arb_timer_sink *timers)
{
    (void)timers;
    int64_t amount;
    arb__ledger_account *from = data_account(state, event->data, "from");
    arb__ledger_account *to = data_account(state, event->data, "to");
    if (from == NULL || to == NULL || from == to ||
        !arb__rules_data_int(event->data, "amount", 1, ARB_JSON_INT_MAX, &amount) ||
        !data_memo_ok(event->data) || strcmp(from->currency, to->currency) != 0)
        return ARB_ECORRUPT;
    if (!arb__ledger_can_debit(from, amount) || !arb__ledger_can_credit(to, amount))
        return ARB_ECORRUPT;
    arb__ledger_apply_transfer(from, to, amount, event->seq);
    return 0;
}

static int evolve_held(arb__ledger_state *state, const arb_event *event,
                       const arb_timer_sink *timers)
{
    const json_t *data = event->data;
    const char *id;
    char expected_id[ARB__LEDGER_PENDING_ID_BYTES_MAX + 1];
    int64_t amount, expires_at_ms;
    snprintf(expected_id, sizeof expected_id, "p%" PRIu64, event->seq);
    arb__ledger_account *from = data_account(state, data, "from");
    arb__ledger_account *to = data_account(state, data, "to");
    if (!arb__rules_data_string(data, "pending", 1, ARB__LEDGER_PENDING_ID_BYTES_MAX, &id) ||
        strcmp(id, expected_id) != 0 || from == NULL || to == NULL || from == to ||
        strcmp(from->currency, to->currency) != 0 ||
        !arb__rules_data_int(data, "amount", 1, ARB_JSON_INT_MAX, &amount) ||
        !arb__rules_data_int(data, "expires_at", 0, ARB_JSON_INT_MAX, &expires_at_ms) ||
        !data_memo_ok(data) || !arb__ledger_can_hold(from, amount) ||
        state->holds_open >= ARB_LEDGER_PENDING_MAX || arb_map_get(&state->holds, id) != NULL)
        return ARB_ECORRUPT;
    arb__ledger_hold *hold = calloc(1, sizeof *hold);
    if (hold == NULL)
        return ARB_ENOMEM;
    memcpy(hold->id, id, strlen(id) + 1);
    memcpy(hold->to, to->id, sizeof hold->to);
    memcpy(hold->from, from->id, sizeof hold->from);
    hold->expires_at_ms = expires_at_ms;
    hold->status = ARB__LEDGER_HOLD_PENDING;
    int rc = arb__ledger_add_hold(state, hold);
    if (rc != 0)
        return rc;
    arb__ledger_apply_hold(hold, from, amount, event->seq);
    state->holds_open++;
    arb__ledger_report_timer(timers, hold);
    return 0;
}

static int evolve_captured(arb__ledger_state *state, const arb_event *event,
                           const arb_timer_sink *timers)
{
    (void)timers;
    int64_t amount;
    arb__ledger_hold *hold = data_pending_hold(state, event->data);
    if (hold == NULL || !arb__rules_data_int(event->data, "amount", 1, hold->amount, &amount))
        return ARB_ECORRUPT;
    arb__ledger_account *from = arb_map_get(&state->accounts, hold->from);
    arb__ledger_account *to = arb_map_get(&state->accounts, hold->to);
    if (from == NULL || to == NULL || from == to || from->held < hold->amount ||
        !arb__ledger_can_credit(to, amount))
        return ARB_ECORRUPT;
    arb__ledger_apply_capture(hold, from, to, amount, event->seq);
    ARB_ASSERT(state->holds_open > 0);
    state->holds_open--;
    arb__ledger_hold_closed(state, hold);
    return 0;
}

/* voided and expired share their shape and their effect. */
static int evolve_release(arb__ledger_state *state, const arb_event *event,
                          arb__ledger_hold_status status)
{
    arb__ledger_hold *hold = data_pending_hold(state, event->data);
    if (hold == NULL)
        return ARB_ECORRUPT;
    arb__ledger_account *from = arb_map_get(&state->accounts, hold->from);
    if (from == NULL || from->held < hold->amount)
        return ARB_ECORRUPT;
    arb__ledger_apply_release(hold, from, status, event->seq);
    ARB_ASSERT(state->holds_open > 0);
    state->holds_open--;
    arb__ledger_hold_closed(state, hold);
    return 0;
}

static int evolve_voided(arb__ledger_state *state, const arb_event *event,
                         const arb_timer_sink *timers)
{
    (void)timers;
    return evolve_release(state, event, ARB__LEDGER_HOLD_VOIDED);
}

static int evolve_expired(arb__ledger_state *state, const arb_event *event,
                          const arb_timer_sink *timers)
{
    (void)timers;
    return evolve_release(state, event, ARB__LEDGER_HOLD_EXPIRED);
}

typedef struct evolve_entry {
    const char *type;
    int (*evolve)(arb__ledger_state *state, const arb_event *event, const arb_timer_sink *timers);
} evolve_entry;

/* The hot event types first: the dispatch is a linear scan. */
static const evolve_entry evolve_table[] = {
    {"transferred", evolve_transferred}, {"held", evolve_held},
    {"captured", evolve_captured},       {"voided", evolve_voided},
    {"expired", evolve_expired},         {"deposited", evolve_deposited},
    {"withdrawn", evolve_withdrawn},     {"account_opened", evolve_account_opened},
    {"configured", evolve_configured},
};

static int ledger_evolve(void *state, const arb_event *event, const arb_timer_sink *timers)
{
    ARB_ASSERT(state != NULL && event != NULL);
    if (!json_is_object(event->data) || event->seq == 0 || event->seq > (uint64_t)ARB_JSON_INT_MAX)
        return ARB_ECORRUPT;
    for (size_t i = 0; i < sizeof evolve_table / sizeof evolve_table[0]; i++) {
        if (strcmp(evolve_table[i].type, event->type) == 0)
            return evolve_table[i].evolve(state, event, timers);
    }
    return ARB_ECORRUPT;
}

/* The rest of the table. */

static int ledger_state_new(void **state_out)
{
    arb__ledger_state *state;
    int rc = arb__ledger_state_new(&state);
    if (rc == 0)
        *state_out = state;
    return rc;
}

static void ledger_state_free(void *state)
{
    arb__ledger_state_free(state);
}

/* Every viewer sees every event for now (docs/ledger.md, "Visibility"). */
static json_t *ledger_redact(const arb_event *event, const arb_principal *viewer)
{
    (void)viewer;
    ARB_ASSERT(event->data != NULL);
    return json_incref(event->data);
}

/* A user sees the whole ledger (docs/ledger.md, "Visibility"): the view is
 * the snapshot without its format, so the client's state is the server's. */
static int ledger_view_load(const json_t *view, uint64_t seq, const arb_principal *viewer,
                            void **state_out)
{
    (void)viewer;
    *state_out = NULL;
    if (!json_is_object(view) || json_object_get(view, "format") != NULL)
        return ARB_ECORRUPT;
    json_t *snapshot = json_copy((json_t *)view);
    if (snapshot == NULL ||
        json_object_set_new(snapshot, "format", json_integer(ARB__LEDGER_SNAPSHOT_FORMAT)) != 0) {
        json_decref(snapshot);
        return ARB_ENOMEM;
    }
    int rc = arb__ledger_snapshot_load(snapshot, seq, state_out, NULL);
    json_decref(snapshot);
    return rc;
}

/* state_clone: every entry is a fixed-size block; the closed holds' FIFO is
 * linked again through the copies, in the same order. */
static void *copy_block(void *size, const void *value)
{
    void *copy = malloc(*(const size_t *)size);
    return copy != NULL ? memcpy(copy, value, *(const size_t *)size) : NULL;
}

static int ledger_state_clone(const void *state, void **state_out)
{
    const arb__ledger_state *src = state;
    arb__ledger_state *dst;
    *state_out = NULL;
    if (arb__ledger_state_new(&dst) != 0)
        return ARB_ENOMEM;
    size_t account = sizeof(arb__ledger_account), hold = sizeof(arb__ledger_hold),
           total = sizeof(arb__ledger_total);
    if (arb_map_clone(&src->accounts, &dst->accounts, copy_block, &account) != 0 ||
        arb_map_clone(&src->holds, &dst->holds, copy_block, &hold) != 0 ||
        arb_map_clone(&src->totals, &dst->totals, copy_block, &total) != 0) {
        arb__ledger_state_free(dst);
        return ARB_ENOMEM;
    }
    dst->transfer_max = src->transfer_max;
    dst->holds_open = src->holds_open;
    dst->holds_closed = src->holds_closed;
    dst->closed_kept_max = src->closed_kept_max;
    for (const arb__ledger_hold *h = src->closed_head; h != NULL; h = h->next_closed) {
        arb__ledger_hold *copy = arb_map_get(&dst->holds, h->id);
        ARB_ASSERT(copy != NULL);
        copy->next_closed = NULL;
        if (dst->closed_tail != NULL)
            dst->closed_tail->next_closed = copy;
        else
            dst->closed_head = copy;
        dst->closed_tail = copy;
    }
    *state_out = dst;
    return 0;
}

/* An expiry has work only while its hold is pending. */
static bool ledger_timer_due(const void *state, const char *action, const json_t *args)
{
    const char *id = json_string_value(json_object_get(args, "pending"));
    if (strcmp(action, "expire") != 0 || id == NULL)
        return true; /* not ours to judge: decide answers it */
    const arb__ledger_hold *hold = arb_map_get(&((const arb__ledger_state *)state)->holds, id);
    return hold != NULL && hold->status == ARB__LEDGER_HOLD_PENDING;
}

const arb_rules arb_rules_ledger = {
    .kind = "ledger",
    .state_new = ledger_state_new,
    .state_free = ledger_state_free,
    .decide = arb__ledger_decide,
    .evolve = ledger_evolve,
    .view = arb__ledger_view,
    .redact = ledger_redact,
    .snapshot_save = arb__ledger_snapshot_save,
    .snapshot_load = arb__ledger_snapshot_load,
    .view_load = ledger_view_load,
    .state_clone = ledger_state_clone,
    .check = arb__ledger_check,
    .timer_due = ledger_timer_due,
};
