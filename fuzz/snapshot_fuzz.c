/*
 * snapshot_fuzz.c - fuzz target for the ledger's snapshot_load, the parser
 * of a stored (possibly tampered or torn) state.
 *
 * Input: JSON text. When it parses to an object it goes to
 * arb_rules_ledger.snapshot_load with a recording timer sink. Properties:
 *   - a refused snapshot gives ARB_ECORRUPT, no state, no timer reported and
 *     nothing leaked;
 *   - an accepted one gives a state on which check() holds (load runs check
 *     itself, so anything else is a bug), view and snapshot_save work and
 *     are canonical JSON; load reported exactly one timer per open hold, at
 *     its expires_at;
 *   - load is faithful: every entry of the input appears in the saved
 *     snapshot and every field saved equals the input's (load may ignore
 *     unknown fields, but never changes a known one);
 *   - save -> load (with no timer sink) -> save is a fixed point;
 *   - the loaded state is usable: a fixed round of commands (deposit,
 *     withdraw all, deposit to the 2^53-1 brim, transfer, hold, capture,
 *     void, expire, open_account) derived from its accounts and holds is
 *     decided; every acceptance evolves without ARB_ECORRUPT and check()
 *     holds after it, every rejection carries a known code.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "arbiter/rules.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/canon.h"
#include "fuzz.h"
#include "rules/ledger/ledger.h"

/* How many accounts and holds of a snapshot the round of commands uses. */
#define SNAPSHOT_FUZZ_ACCOUNTS_USED 3
#define SNAPSHOT_FUZZ_HOLDS_USED 6
#define SNAPSHOT_FUZZ_LATE_MS (ARB_JSON_INT_MAX / 2)

typedef struct snapshot_fuzz_timers {
    size_t reported;
    const json_t *pending; /* the saved snapshot's holds, to check each timer */
} snapshot_fuzz_timers;

typedef struct snapshot_fuzz {
    const arb_rules *rules;
    void *state;
    uint64_t next_seq;
    uint64_t client_seq;
    int64_t now_ms;
    snapshot_fuzz_timers timers;
    arb_timer_sink sink;
    arb_buf canon;
} snapshot_fuzz;

static void snapshot_fuzz_timer_add(void *user, int64_t at_ms, const char *action, json_t *args)
{
    snapshot_fuzz_timers *timers = user;
    ARB_ASSERT(strcmp(action, "expire") == 0 && json_is_object(args));
    const char *pending = json_string_value(json_object_get(args, "pending"));
    ARB_ASSERT(pending != NULL && json_object_size(args) == 1);
    ARB_ASSERT(at_ms >= 0 && at_ms <= ARB_JSON_INT_MAX);
    timers->reported++;
    if (timers->pending == NULL)
        return;
    const json_t *hold = json_object_get(timers->pending, pending);
    ARB_ASSERT(hold != NULL);
    ARB_ASSERT(strcmp(json_string_value(json_object_get(hold, "status")), "pending") == 0);
    ARB_ASSERT(json_integer_value(json_object_get(hold, "expires_at")) == at_ms);
}

static void snapshot_fuzz_assert_canonical(snapshot_fuzz *fuzz, const json_t *value)
{
    arb_buf_reset(&fuzz->canon);
    ARB_ASSERT(arb_canon_json(&fuzz->canon, value) == 0);
}

static json_t *snapshot_fuzz_save(const snapshot_fuzz *fuzz, const void *state)
{
    json_t *saved = NULL;
    ARB_ASSERT(fuzz->rules->snapshot_save(state, &saved) == 0 && json_is_object(saved));
    return saved;
}

static void snapshot_fuzz_check(const snapshot_fuzz *fuzz, const void *state)
{
    char why[256];
    int rc = fuzz->rules->check(state, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "snapshot_fuzz: check failed: %s\n", why);
    ARB_ASSERT(rc == 0);
}

/* Every entry of input[section] is in saved[section] with equal fields. */
static void snapshot_fuzz_check_faithful(const json_t *input, const json_t *saved,
                                         const char *section)
{
    const json_t *in = json_object_get(input, section);
    const json_t *out = json_object_get(saved, section);
    ARB_ASSERT(json_is_object(in) && json_is_object(out));
    ARB_ASSERT(json_object_size(in) == json_object_size(out));
    const char *id;
    json_t *entry;
    json_object_foreach ((json_t *)out, id, entry) {
        const json_t *source = json_object_get(in, id);
        ARB_ASSERT(json_is_object(source));
        const char *field;
        json_t *value;
        json_object_foreach (entry, field, value) {
            ARB_ASSERT(json_equal(value, json_object_get(source, field)));
        }
    }
}

static void snapshot_fuzz_check_saved(const json_t *input, const json_t *saved)
{
    ARB_ASSERT(
        json_equal(json_object_get(input, "max_transfer"), json_object_get(saved, "max_transfer")));
    ARB_ASSERT(json_equal(json_object_get(input, "format"), json_object_get(saved, "format")));
    snapshot_fuzz_check_faithful(input, saved, "accounts");
    snapshot_fuzz_check_faithful(input, saved, "pending");
    snapshot_fuzz_check_faithful(input, saved, "totals");
}

/* The first seq after everything the snapshot mentions: above every version
 * and every numeric hold id "pN", so a new hold's id cannot collide. 0 when
 * that is out of range. */
static uint64_t snapshot_fuzz_next_seq(const json_t *saved)
{
    uint64_t highest = 0;
    static const char *const sections[] = {"accounts", "pending"};
    for (size_t s = 0; s < 2; s++) {
        const char *id;
        json_t *entry;
        json_object_foreach (json_object_get(saved, sections[s]), id, entry) {
            json_int_t version = json_integer_value(json_object_get(entry, "version"));
            if (version > 0 && (uint64_t)version > highest)
                highest = (uint64_t)version;
            if (s == 1 && id[0] == 'p' && id[1] != '\0') {
                char *end = NULL;
                unsigned long long number = strtoull(id + 1, &end, 10);
                if (*end == '\0' && number > highest)
                    highest = number;
            }
        }
    }
    if (highest >= (uint64_t)ARB_JSON_INT_MAX - 2 * ARB_DECISION_EVENTS_MAX)
        return 0;
    return highest + 1;
}

/* Decide one command; commit what is accepted as the engine would. */
static void snapshot_fuzz_propose(snapshot_fuzz *fuzz, arb_role role, const char *action,
                                  json_t *args)
{
    ARB_ASSERT(args != NULL);
    arb_command command;
    arb_command_init(&command);
    const char *client_id = role == ARB_ROLE_SYSTEM ? "system" : "admin";
    ARB_ASSERT(arb_command_set(&command, client_id, role, ++fuzz->client_seq, "ledger:fuzz", action,
                               args) == 0);
    json_decref(args);
    arb_ctx ctx = {
        .now_ms = fuzz->now_ms, .next_seq = fuzz->next_seq, .version = fuzz->next_seq - 1};
    arb_decision decision;
    arb_decision_init(&decision);
    fuzz->rules->decide(fuzz->state, &command, &ctx, &decision);
    if (decision.code != 0) {
        ARB_ASSERT(decision.code < 0 && decision.event_count == 0);
        ARB_ASSERT(strcmp(arb_err_name(decision.code), "UNKNOWN_ERROR") != 0);
    } else {
        ARB_ASSERT(decision.event_count == 1);
        for (size_t i = 0; i < decision.event_count; i++) {
            snapshot_fuzz_assert_canonical(fuzz, decision.events[i].data);
            arb_event event;
            memset(&event, 0, sizeof event);
            ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, command.stream) == 0);
            ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, decision.events[i].type) == 0);
            ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, client_id) == 0);
            event.seq = fuzz->next_seq++;
            event.client_seq = command.client_seq;
            event.applied_at_ms = fuzz->now_ms;
            event.data = decision.events[i].data; /* borrowed */
            int rc = fuzz->rules->evolve(fuzz->state, &event, &fuzz->sink);
            if (rc != 0)
                fprintf(stderr, "snapshot_fuzz: evolve refused its own %s event\n", event.type);
            ARB_ASSERT(rc == 0);
        }
        snapshot_fuzz_check(fuzz, fuzz->state);
    }
    arb_decision_clear(&decision);
    arb_command_clear(&command);
}

static int64_t snapshot_fuzz_field(const json_t *saved, const char *section, const char *id,
                                   const char *field)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(saved, section), id), field));
}

static void snapshot_fuzz_account_round(snapshot_fuzz *fuzz, const char *const *ids, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *a = ids[i];
        const char *b = ids[(i + 1) % count];
        snapshot_fuzz_propose(fuzz, ARB_ROLE_ADMIN, "deposit",
                              json_pack("{s:s, s:i}", "account", a, "amount", 1));
        json_t *now = snapshot_fuzz_save(fuzz, fuzz->state);
        int64_t balance = snapshot_fuzz_field(now, "accounts", a, "balance");
        int64_t held = snapshot_fuzz_field(now, "accounts", a, "held");
        int64_t overdraft = snapshot_fuzz_field(now, "accounts", a, "overdraft_limit");
        json_decref(now);
        /* Withdraw everything the account may, then fill it to 2^53-1. */
        if (balance + overdraft > 0)
            snapshot_fuzz_propose(
                fuzz, ARB_ROLE_ADMIN, "withdraw",
                json_pack("{s:s, s:I}", "account", a, "amount", (json_int_t)(balance + overdraft)));
        snapshot_fuzz_propose(
            fuzz, ARB_ROLE_ADMIN, "deposit",
            json_pack("{s:s, s:I}", "account", a, "amount", (json_int_t)(ARB_JSON_INT_MAX - held)));
        snapshot_fuzz_propose(fuzz, ARB_ROLE_ADMIN, "transfer",
                              json_pack("{s:s, s:s, s:i}", "from", a, "to", b, "amount", 1));
        snapshot_fuzz_propose(
            fuzz, ARB_ROLE_ADMIN, "hold",
            json_pack("{s:s, s:s, s:i, s:i}", "from", a, "to", b, "amount", 1, "timeout_s", 60));
    }
}

static void snapshot_fuzz_hold_round(snapshot_fuzz *fuzz, const char *const *ids, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        json_t *args = json_pack("{s:s}", "pending", ids[i]);
        if (i % 3 == 0) {
            snapshot_fuzz_propose(fuzz, ARB_ROLE_ADMIN, "capture", args);
        } else if (i % 3 == 1) {
            snapshot_fuzz_propose(fuzz, ARB_ROLE_ADMIN, "void", args);
        } else {
            int64_t now_ms = fuzz->now_ms;
            fuzz->now_ms = SNAPSHOT_FUZZ_LATE_MS;
            snapshot_fuzz_propose(fuzz, ARB_ROLE_SYSTEM, "expire", args);
            fuzz->now_ms = now_ms;
        }
    }
}

/* The fixed round of commands on a loaded state. ids point into saved. */
static void snapshot_fuzz_use(snapshot_fuzz *fuzz, const json_t *saved)
{
    fuzz->next_seq = snapshot_fuzz_next_seq(saved);
    if (fuzz->next_seq == 0)
        return;
    fuzz->now_ms = 0;
    fuzz->timers.pending = NULL; /* new holds are not in saved */
    const char *accounts[SNAPSHOT_FUZZ_ACCOUNTS_USED];
    const char *holds[SNAPSHOT_FUZZ_HOLDS_USED];
    size_t account_count = 0, hold_count = 0;
    const char *id;
    json_t *entry;
    json_object_foreach (json_object_get(saved, "accounts"), id, entry) {
        if (account_count < SNAPSHOT_FUZZ_ACCOUNTS_USED)
            accounts[account_count++] = id;
    }
    json_object_foreach (json_object_get(saved, "pending"), id, entry) {
        if (hold_count < SNAPSHOT_FUZZ_HOLDS_USED)
            holds[hold_count++] = id;
    }
    snapshot_fuzz_hold_round(fuzz, holds, hold_count);
    snapshot_fuzz_account_round(fuzz, accounts, account_count);
    const char *currency = "EUR";
    json_object_foreach (json_object_get(saved, "totals"), id, entry) {
        currency = id;
        break;
    }
    snapshot_fuzz_propose(
        fuzz, ARB_ROLE_ADMIN, "open_account",
        json_pack("{s:s, s:s, s:s}", "account", "fuzz-new", "owner", "o", "currency", currency));
    snapshot_fuzz_propose(fuzz, ARB_ROLE_ADMIN, "configure",
                          json_pack("{s:I}", "max_transfer", (json_int_t)ARB_JSON_INT_MAX));
}

static void snapshot_fuzz_loaded(snapshot_fuzz *fuzz, const json_t *input)
{
    snapshot_fuzz_check(fuzz, fuzz->state);
    arb_principal viewer = {.id = "u0", .role = ARB_ROLE_USER};
    json_t *view = fuzz->rules->view(fuzz->state, &viewer);
    ARB_ASSERT(view != NULL);
    snapshot_fuzz_assert_canonical(fuzz, view);
    json_decref(view);

    json_t *saved = snapshot_fuzz_save(fuzz, fuzz->state);
    snapshot_fuzz_assert_canonical(fuzz, saved);
    snapshot_fuzz_check_saved(input, saved);
    size_t open = 0;
    const char *id;
    json_t *hold;
    json_object_foreach (json_object_get(saved, "pending"), id, hold) {
        open += strcmp(json_string_value(json_object_get(hold, "status")), "pending") == 0;
    }
    ARB_ASSERT(fuzz->timers.reported == open);

    void *again = NULL;
    ARB_ASSERT(fuzz->rules->snapshot_load(saved, ARB_JSON_INT_MAX, &again, NULL) == 0 &&
               again != NULL);
    json_t *saved_again = snapshot_fuzz_save(fuzz, again);
    ARB_ASSERT(json_equal(saved, saved_again));
    json_decref(saved_again);
    fuzz->rules->state_free(again);

    snapshot_fuzz_use(fuzz, saved);
    json_decref(saved);
}

int arb_fuzz_snapshot(const uint8_t *data, size_t size)
{
    json_t *input = NULL;
    char why[256];
    if (arb_json_parse((const char *)data, size, ARB_SNAPSHOT_BYTES_MAX, &input, why, sizeof why) !=
        0)
        return 0;
    if (!json_is_object(input)) {
        json_decref(input);
        return 0;
    }
    snapshot_fuzz fuzz;
    memset(&fuzz, 0, sizeof fuzz);
    fuzz.rules = &arb_rules_ledger;
    fuzz.sink.add = snapshot_fuzz_timer_add;
    fuzz.sink.user = &fuzz.timers;
    arb_buf_init(&fuzz.canon, ARB_SNAPSHOT_BYTES_MAX);
    fuzz.timers.pending = json_object_get(input, "pending");
    int rc = fuzz.rules->snapshot_load(input, ARB_JSON_INT_MAX, &fuzz.state, &fuzz.sink);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_ECORRUPT);
        ARB_ASSERT(fuzz.state == NULL && fuzz.timers.reported == 0);
    } else {
        ARB_ASSERT(fuzz.state != NULL);
        snapshot_fuzz_loaded(&fuzz, input);
        fuzz.rules->state_free(fuzz.state);
    }
    arb_buf_free(&fuzz.canon);
    json_decref(input);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_snapshot(data, size);
}
#endif
