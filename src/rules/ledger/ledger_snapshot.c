/*
 * ledger_snapshot.c - the ledger's state as JSON (view and snapshot), the
 * way back (snapshot load), and check (the invariants).
 *
 * Shape (docs/ledger.md, "State"):
 *   {"max_transfer": n,
 *    "accounts": {id: {owner, currency, balance, held, overdraft_limit, version}},
 *    "pending":  {id: {from, to, amount, expires_at, status, version, captured?}},
 *    "totals":   {currency: {deposited, withdrawn}}}
 * A snapshot adds "format": 1. Objects are keyed by id, so the JSON does not
 * depend on the order of the hash maps; the engine's canonical form sorts
 * the keys. Nothing is left out, so save(load(save(s))) == save(s): the
 * closed holds' FIFO order is rebuilt from their versions (the seq that
 * closed each, unique because one event closes at most one hold).
 *
 * load trusts nothing: every field is checked, then check() runs on the
 * whole state before any timer is reported.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/ledger/ledger_internal.h"

static const char *const status_names[] = {
    [ARB__LEDGER_HOLD_PENDING] = "pending",
    [ARB__LEDGER_HOLD_CAPTURED] = "captured",
    [ARB__LEDGER_HOLD_VOIDED] = "voided",
    [ARB__LEDGER_HOLD_EXPIRED] = "expired",
};

const char *arb__ledger_status_name(arb__ledger_hold_status status)
{
    ARB_ASSERT((size_t)status < sizeof status_names / sizeof status_names[0]);
    return status_names[status];
}

static bool status_from_name(const char *name, arb__ledger_hold_status *status_out)
{
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++) {
        if (strcmp(status_names[i], name) == 0) {
            *status_out = (arb__ledger_hold_status)i;
            return true;
        }
    }
    return false;
}

/* State to JSON. */

static int put_account(void *user, const char *key, void *value)
{
    const arb__ledger_account *account = value;
    json_t *json =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "owner", account->owner, "currency",
                  account->currency, "balance", (json_int_t)account->balance, "held",
                  (json_int_t)account->held, "overdraft_limit",
                  (json_int_t)account->overdraft_limit, "version", (json_int_t)account->version);
    return json_object_set_new(user, key, json) == 0 ? 0 : ARB_ENOMEM;
}

static int put_hold(void *user, const char *key, void *value)
{
    const arb__ledger_hold *hold = value;
    json_t *json =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "from", hold->from, "to", hold->to, "amount",
                  (json_int_t)hold->amount, "expires_at", (json_int_t)hold->expires_at_ms, "status",
                  arb__ledger_status_name(hold->status), "version", (json_int_t)hold->version);
    if (json != NULL && hold->status == ARB__LEDGER_HOLD_CAPTURED &&
        json_object_set_new(json, "captured", json_integer(hold->captured)) != 0) {
        json_decref(json);
        json = NULL;
    }
    return json_object_set_new(user, key, json) == 0 ? 0 : ARB_ENOMEM;
}

static int put_total(void *user, const char *key, void *value)
{
    const arb__ledger_total *total = value;
    json_t *json = json_pack("{s:I, s:I}", "deposited", (json_int_t)total->deposited, "withdrawn",
                             (json_int_t)total->withdrawn);
    return json_object_set_new(user, key, json) == 0 ? 0 : ARB_ENOMEM;
}

static json_t *map_json(const arb_map *map, int (*put)(void *user, const char *key, void *value))
{
    json_t *object = json_object();
    if (object != NULL && arb_map_foreach(map, put, object) != 0) {
        json_decref(object);
        object = NULL;
    }
    return object;
}

static json_t *state_json(const arb__ledger_state *state)
{
    json_t *accounts = map_json(&state->accounts, put_account);
    json_t *holds = map_json(&state->holds, put_hold);
    json_t *totals = map_json(&state->totals, put_total);
    if (accounts == NULL || holds == NULL || totals == NULL) {
        json_decref(accounts);
        json_decref(holds);
        json_decref(totals);
        return NULL;
    }
    /* "o" steals the three references, even when json_pack fails. */
    return json_pack("{s:I, s:o, s:o, s:o}", "max_transfer", (json_int_t)state->transfer_max,
                     "accounts", accounts, "pending", holds, "totals", totals);
}

/* Every viewer sees the whole ledger for now (docs/ledger.md, "Visibility"). */
json_t *arb__ledger_view(const void *state, const arb_principal *viewer)
{
    (void)viewer;
    ARB_ASSERT(state != NULL);
    return state_json(state);
}

int arb__ledger_snapshot_save(const void *state, json_t **snapshot_out)
{
    ARB_ASSERT(state != NULL && snapshot_out != NULL);
    json_t *snapshot = state_json(state);
    if (snapshot == NULL ||
        json_object_set_new(snapshot, "format", json_integer(ARB__LEDGER_SNAPSHOT_FORMAT)) != 0) {
        json_decref(snapshot);
        return ARB_ENOMEM;
    }
    *snapshot_out = snapshot;
    return 0;
}

/* JSON to state. Each loader returns 0, ARB_ECORRUPT or ARB_ENOMEM. */

static int load_totals(arb__ledger_state *state, const json_t *totals)
{
    const char *currency;
    const json_t *value;
    if (!json_is_object(totals))
        return ARB_ECORRUPT;
    json_object_foreach ((json_t *)totals, currency, value) {
        arb__ledger_total *total = calloc(1, sizeof *total);
        if (total == NULL)
            return ARB_ENOMEM;
        size_t len = strlen(currency);
        if (len == 0 || len > ARB_CURRENCY_BYTES_MAX || !json_is_object(value) ||
            json_object_size(value) != 2 ||
            !arb__rules_data_int(value, "deposited", 0, ARB_JSON_INT_MAX, &total->deposited) ||
            !arb__rules_data_int(value, "withdrawn", 0, ARB_JSON_INT_MAX, &total->withdrawn)) {
            free(total);
            return ARB_ECORRUPT;
        }
        memcpy(total->currency, currency, len + 1);
        int rc = arb__ledger_add_total(state, total);
        if (rc != 0)
            return rc == ARB_ENOMEM ? rc : ARB_ECORRUPT;
    }
    return 0;
}

static bool load_account_fields(arb__ledger_account *account, const json_t *value, uint64_t seq)
{
    const char *owner, *currency;
    if (!json_is_object(value) || json_object_size(value) != 6 ||
        !arb__rules_data_string(value, "owner", 1, ARB_ACCOUNT_ID_BYTES_MAX, &owner) ||
        !arb__rules_data_string(value, "currency", 1, ARB_CURRENCY_BYTES_MAX, &currency) ||
        !arb__rules_data_int(value, "balance", -ARB_JSON_INT_MAX, ARB_JSON_INT_MAX,
                             &account->balance) ||
        !arb__rules_data_int(value, "held", 0, ARB_JSON_INT_MAX, &account->held) ||
        !arb__rules_data_int(value, "overdraft_limit", 0, ARB_JSON_INT_MAX,
                             &account->overdraft_limit))
        return false;
    int64_t version;
    if (!arb__rules_data_int(value, "version", 1, (int64_t)seq, &version))
        return false;
    account->version = (uint64_t)version;
    memcpy(account->owner, owner, strlen(owner) + 1);
    memcpy(account->currency, currency, strlen(currency) + 1);
    return true;
}

static int load_accounts(arb__ledger_state *state, const json_t *accounts, uint64_t seq)
{
    const char *id;
    const json_t *value;
    if (!json_is_object(accounts) || json_object_size(accounts) > ARB_LEDGER_ACCOUNTS_MAX)
        return ARB_ECORRUPT;
    json_object_foreach ((json_t *)accounts, id, value) {
        arb__ledger_account *account = calloc(1, sizeof *account);
        if (account == NULL)
            return ARB_ENOMEM;
        size_t len = strlen(id);
        if (len == 0 || len > ARB_ACCOUNT_ID_BYTES_MAX ||
            !load_account_fields(account, value, seq) ||
            arb_map_get(&state->totals, account->currency) == NULL) {
            free(account);
            return ARB_ECORRUPT;
        }
        memcpy(account->id, id, len + 1);
        int rc = arb__ledger_add_account(state, account);
        if (rc != 0)
            return rc == ARB_ENOMEM ? rc : ARB_ECORRUPT;
    }
    return 0;
}

/* A hold's id is "p" and the seq of its held event, which is at most the
 * hold's version: anything else was not written by decide. */
static bool hold_id_valid(const char *id, uint64_t version)
{
    if (id[0] != 'p' || id[1] < '1' || id[1] > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long held_seq = strtoull(id + 1, &end, 10);
    return errno == 0 && *end == '\0' && held_seq <= version;
}

static bool load_hold_fields(const arb__ledger_state *state, arb__ledger_hold *hold,
                             const json_t *value, uint64_t seq)
{
    const char *from, *to, *status;
    int64_t version;
    if (!json_is_object(value) ||
        !arb__rules_data_string(value, "from", 1, ARB_ACCOUNT_ID_BYTES_MAX, &from) ||
        !arb__rules_data_string(value, "to", 1, ARB_ACCOUNT_ID_BYTES_MAX, &to) ||
        !arb__rules_data_int(value, "amount", 1, ARB_JSON_INT_MAX, &hold->amount) ||
        !arb__rules_data_int(value, "expires_at", 0, ARB_JSON_INT_MAX, &hold->expires_at_ms) ||
        !arb__rules_data_int(value, "version", 1, (int64_t)seq, &version) ||
        !arb__rules_data_string(value, "status", 1, 16, &status) ||
        !status_from_name(status, &hold->status))
        return false;
    bool captured = hold->status == ARB__LEDGER_HOLD_CAPTURED;
    if (captured != (json_object_get(value, "captured") != NULL) ||
        json_object_size(value) != (captured ? 7u : 6u))
        return false;
    if (captured && !arb__rules_data_int(value, "captured", 1, hold->amount, &hold->captured))
        return false;
    if (arb_map_get(&state->accounts, from) == NULL || arb_map_get(&state->accounts, to) == NULL)
        return false;
    hold->version = (uint64_t)version;
    memcpy(hold->from, from, strlen(from) + 1);
    memcpy(hold->to, to, strlen(to) + 1);
    return true;
}

/* Closed holds in closing order: by version, then (never needed for a
 * state decide produced) by id, so that the order is total. */
static int compare_closed(const void *a, const void *b)
{
    const arb__ledger_hold *left = *(const arb__ledger_hold *const *)a;
    const arb__ledger_hold *right = *(const arb__ledger_hold *const *)b;
    if (left->version != right->version)
        return left->version < right->version ? -1 : 1;
    return strcmp(left->id, right->id);
}

static int collect_closed(void *user, const char *key, void *value)
{
    (void)key;
    arb__ledger_hold ***cursor = user;
    arb__ledger_hold *hold = value;
    if (hold->status != ARB__LEDGER_HOLD_PENDING)
        *(*cursor)++ = hold;
    return 0;
}

static int link_closed(arb__ledger_state *state)
{
    size_t count = state->holds_closed;
    state->holds_closed = 0;
    if (count == 0)
        return 0;
    arb__ledger_hold **closed = malloc(count * sizeof *closed);
    if (closed == NULL)
        return ARB_ENOMEM;
    arb__ledger_hold **cursor = closed;
    arb_map_foreach(&state->holds, collect_closed, &cursor);
    ARB_ASSERT((size_t)(cursor - closed) == count);
    qsort(closed, count, sizeof *closed, compare_closed);
    for (size_t i = 0; i < count; i++)
        arb__ledger_hold_closed(state, closed[i]);
    free(closed);
    return 0;
}

static int load_holds(arb__ledger_state *state, const json_t *holds, uint64_t seq)
{
    const char *id;
    const json_t *value;
    if (!json_is_object(holds))
        return ARB_ECORRUPT;
    json_object_foreach ((json_t *)holds, id, value) {
        arb__ledger_hold *hold = calloc(1, sizeof *hold);
        if (hold == NULL)
            return ARB_ENOMEM;
        size_t len = strlen(id);
        if (len == 0 || len > ARB__LEDGER_PENDING_ID_BYTES_MAX ||
            !load_hold_fields(state, hold, value, seq) || !hold_id_valid(id, hold->version)) {
            free(hold);
            return ARB_ECORRUPT;
        }
        memcpy(hold->id, id, len + 1);
        bool open = hold->status == ARB__LEDGER_HOLD_PENDING;
        int rc = arb__ledger_add_hold(state, hold);
        if (rc != 0)
            return rc == ARB_ENOMEM ? rc : ARB_ECORRUPT;
        if (open)
            state->holds_open++;
        else
            state->holds_closed++;
    }
    if (state->holds_open > ARB_LEDGER_PENDING_MAX)
        return ARB_ECORRUPT;
    return link_closed(state);
}

static int report_open(void *user, const char *key, void *value)
{
    (void)key;
    const arb__ledger_hold *hold = value;
    if (hold->status == ARB__LEDGER_HOLD_PENDING)
        arb__ledger_report_timer(user, hold);
    return 0;
}

static int load_state(arb__ledger_state *state, const json_t *snapshot, uint64_t seq)
{
    int64_t format;
    if (!json_is_object(snapshot) ||
        !arb__rules_data_int(snapshot, "format", ARB__LEDGER_SNAPSHOT_FORMAT,
                             ARB__LEDGER_SNAPSHOT_FORMAT, &format) ||
        !arb__rules_data_int(snapshot, "max_transfer", 1, ARB_JSON_INT_MAX, &state->transfer_max) ||
        json_object_size(snapshot) != 5)
        return ARB_ECORRUPT;
    int rc = load_totals(state, json_object_get(snapshot, "totals"));
    if (rc == 0)
        rc = load_accounts(state, json_object_get(snapshot, "accounts"), seq);
    if (rc == 0)
        rc = load_holds(state, json_object_get(snapshot, "pending"), seq);
    char why[256];
    if (rc == 0 && arb__ledger_check(state, why, sizeof why) != 0)
        rc = ARB_ECORRUPT;
    return rc;
}

int arb__ledger_snapshot_load(const json_t *snapshot, uint64_t seq, void **state_out,
                              const arb_timer_sink *timers)
{
    ARB_ASSERT(state_out != NULL);
    arb__ledger_state *state;
    int rc = arb__ledger_state_new(&state);
    if (rc != 0)
        return rc;
    rc = load_state(state, snapshot, seq);
    if (rc != 0) {
        arb__ledger_state_free(state);
        return rc;
    }
    arb_map_foreach(&state->holds, report_open, (void *)timers);
    *state_out = state;
    return 0;
}
