/*
 * ledger_decide_fuzz.c - fuzz target: programs of ledger commands run
 * against arb_rules_ledger directly, the way the engine runs them.
 *
 * Input: a program. Each step is one opcode byte followed by the bytes its
 * operation reads (see decide_fuzz_step); the program ends with the input or
 * after DECIDE_FUZZ_STEPS_MAX steps. Operations:
 *   - propose an action (open_account, deposit, withdraw, transfer, hold,
 *     capture, void, expire, batch, configure, or an unknown one) as an
 *     admin, a user or the system, with arguments chosen from a small id
 *     space, amounts that include 0, negatives, 2^53-1, 2^53, INT64 extremes,
 *     and sometimes wrong JSON types, missing or unknown keys;
 *   - advance the clock; fire the due `expire` timers as the system;
 *   - round-trip the state through snapshot_save / snapshot_load (the
 *     recovery path) and go on with the loaded state;
 *   - evolve a hand-made event that decide did not produce (a tampered log);
 *   - lower the number of closed holds the state remembers (normally 2^20,
 *     through the tests-only arb__ledger_set_closed_kept), so that the
 *     forgetting of the oldest ones runs too.
 *
 * Properties checked (ARB_ASSERT):
 *   - decide never changes the state (the snapshot before equals the one
 *     after; checked on every 8th proposal, as saving is what costs most);
 *   - a rejection has a negative code known to arb_err_name, a message, no
 *     events and no result, and details that are an object of canonical JSON;
 *   - an acceptance has 1 event (batch: one per item), each event's data and
 *     the result are canonical JSON (the engine would refuse them otherwise),
 *     admin-only and system-only actions were proposed by such a principal,
 *     evolve accepts every event, and check() holds after;
 *   - every timer the module reports is a well-formed `expire`;
 *   - save -> load -> save gives an equal snapshot that is canonical JSON,
 *     and load reports one timer per open hold;
 *   - a hand-made event either fits (check() holds after) or is refused with
 *     ARB_ECORRUPT leaving the state and the timers untouched;
 *   - at the end, replaying the whole log into a fresh state gives the same
 *     snapshot (the log alone replays to the same state).
 * Everything allocated is freed; LeakSanitizer checks. With ARB_FUZZ_TRACE
 * set in the environment every proposal and its outcome is printed to
 * stderr, which is how to read a crashing input.
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
#include "rules/ledger/ledger_internal.h"

#define DECIDE_FUZZ_STREAM "ledger:fuzz"
/* Bounds that keep one input fast: steps, timers remembered, events logged
 * for the final replay, and hold ids remembered for capture/void/expire. */
#define DECIDE_FUZZ_STEPS_MAX 256
#define DECIDE_FUZZ_TIMERS_MAX 64
#define DECIDE_FUZZ_LOG_MAX 8192
#define DECIDE_FUZZ_HELD_KEPT 8
/* Changes of the closed-hold bound one program may make. */
#define DECIDE_FUZZ_FORGETS_MAX 32
/* One proposal in this many is checked for leaving the state unchanged. */
#define DECIDE_FUZZ_UNCHANGED_EVERY 8
/* The clock starts at a realistic time and stays within what the ledger
 * asserts of ctx->now_ms (0..2^52). */
#define DECIDE_FUZZ_NOW_START_MS 1700000000000LL
#define DECIDE_FUZZ_NOW_MAX_MS (ARB_JSON_INT_MAX / 2)
/* Room for the longest string argument made here (a memo one byte too long). */
#define DECIDE_FUZZ_TEXT_MAX (ARB_MEMO_BYTES_MAX + 2)

typedef enum decide_fuzz_action {
    DECIDE_FUZZ_OPEN_ACCOUNT,
    DECIDE_FUZZ_DEPOSIT,
    DECIDE_FUZZ_WITHDRAW,
    DECIDE_FUZZ_TRANSFER,
    DECIDE_FUZZ_HOLD,
    DECIDE_FUZZ_CAPTURE,
    DECIDE_FUZZ_VOID,
    DECIDE_FUZZ_EXPIRE,
    DECIDE_FUZZ_BATCH,
    DECIDE_FUZZ_CONFIGURE,
    DECIDE_FUZZ_UNKNOWN,
    DECIDE_FUZZ_ACTION_COUNT
} decide_fuzz_action;

static const char *const decide_fuzz_action_names[DECIDE_FUZZ_ACTION_COUNT] = {
    "open_account", "deposit", "withdraw", "transfer",  "hold",     "capture",
    "void",         "expire",  "batch",    "configure", "nonsense",
};

static const char *const decide_fuzz_accounts[] = {"acct0", "acct1", "acct2", "acct3"};
static const char *const decide_fuzz_owners[] = {"u0", "u1", "u2", "u3"};
static const char *const decide_fuzz_currencies[] = {"EUR", "USD"};

#define DECIDE_FUZZ_COUNT(array) (sizeof(array) / sizeof((array)[0]))

typedef struct decide_fuzz_timer {
    int64_t at_ms;
    char pending[ARB_ACCOUNT_ID_BYTES_MAX + 1];
} decide_fuzz_timer;

typedef struct decide_fuzz_timers {
    size_t count;
    size_t dropped; /* reported while full: not fired, but counted */
    size_t reported;
    decide_fuzz_timer items[DECIDE_FUZZ_TIMERS_MAX];
} decide_fuzz_timers;

/* A change of the closed-hold bound, made after log_index logged events. */
typedef struct decide_fuzz_forget_mark {
    size_t log_index;
    size_t kept;
} decide_fuzz_forget_mark;

typedef struct decide_fuzz {
    arb_fuzz_reader in;
    const arb_rules *rules;
    void *state;
    int64_t now_ms;
    uint64_t next_seq;
    uint64_t client_seq;
    decide_fuzz_timers timers;
    arb_timer_sink sink;
    arb_event *log; /* every event evolved, in order; each owns its data */
    size_t log_count;
    size_t log_cap;
    bool log_full; /* past DECIDE_FUZZ_LOG_MAX: no final replay */
    char held[DECIDE_FUZZ_HELD_KEPT][ARB_ACCOUNT_ID_BYTES_MAX + 1];
    size_t held_count;
    size_t held_next;
    arb_buf canon; /* scratch for the canonical-JSON checks */
    bool trace;    /* $ARB_FUZZ_TRACE set: print each step to stderr */
    bool closed_kept_set;
    size_t closed_kept; /* when set: closed holds remembered, for every state */
    decide_fuzz_forget_mark forgets[DECIDE_FUZZ_FORGETS_MAX]; /* for the replay */
    size_t forget_count;
} decide_fuzz;

/* Small helpers. */

static void decide_fuzz_set(json_t *object, const char *key, json_t *value)
{
    ARB_ASSERT(value != NULL);
    ARB_ASSERT(json_object_set_new(object, key, value) == 0);
}

/* value must be canonical JSON (what the engine stores and sends). */
static void decide_fuzz_assert_canonical(decide_fuzz *fuzz, const json_t *value)
{
    arb_buf_reset(&fuzz->canon);
    int rc = arb_canon_json(&fuzz->canon, value);
    ARB_ASSERT(rc == 0);
}

static json_t *decide_fuzz_save(const decide_fuzz *fuzz, const void *state)
{
    json_t *snapshot = NULL;
    int rc = fuzz->rules->snapshot_save(state, &snapshot);
    ARB_ASSERT(rc == 0 && json_is_object(snapshot));
    return snapshot;
}

static void decide_fuzz_check_state(const decide_fuzz *fuzz, const void *state)
{
    char why[256];
    int rc = fuzz->rules->check(state, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "ledger_decide_fuzz: check failed: %s\n", why);
    ARB_ASSERT(rc == 0);
}

static void decide_fuzz_timer_add(void *user, int64_t at_ms, const char *action, json_t *args)
{
    decide_fuzz_timers *timers = user;
    const char *pending = json_string_value(json_object_get(args, "pending"));
    ARB_ASSERT(strcmp(action, "expire") == 0);
    ARB_ASSERT(json_is_object(args) && json_object_size(args) == 1 && pending != NULL);
    ARB_ASSERT(at_ms >= 0 && at_ms <= ARB_JSON_INT_MAX);
    timers->reported++;
    if (timers->count == DECIDE_FUZZ_TIMERS_MAX) {
        timers->dropped++;
        return;
    }
    decide_fuzz_timer *timer = &timers->items[timers->count++];
    timer->at_ms = at_ms;
    ARB_ASSERT(arb_copy_name(timer->pending, sizeof timer->pending, pending) == 0);
}

static void decide_fuzz_remember_hold(decide_fuzz *fuzz, const arb_event *event)
{
    const char *pending = json_string_value(json_object_get(event->data, "pending"));
    ARB_ASSERT(pending != NULL);
    char *slot = fuzz->held[fuzz->held_next];
    ARB_ASSERT(arb_copy_name(slot, sizeof fuzz->held[0], pending) == 0);
    fuzz->held_next = (fuzz->held_next + 1) % DECIDE_FUZZ_HELD_KEPT;
    if (fuzz->held_count < DECIDE_FUZZ_HELD_KEPT)
        fuzz->held_count++;
}

/* Keep an evolved event for the final replay; takes event->data. */
static void decide_fuzz_log(decide_fuzz *fuzz, arb_event *event)
{
    if (fuzz->log_count == DECIDE_FUZZ_LOG_MAX) {
        fuzz->log_full = true;
        arb_event_clear(event);
        return;
    }
    if (fuzz->log_count == fuzz->log_cap) {
        size_t cap = fuzz->log_cap == 0 ? 64 : 2 * fuzz->log_cap;
        arb_event *log = realloc(fuzz->log, cap * sizeof *log);
        ARB_ASSERT(log != NULL);
        fuzz->log = log;
        fuzz->log_cap = cap;
    }
    fuzz->log[fuzz->log_count++] = *event;
    event->data = NULL;
}

/* Argument generators. Each reads its bytes and returns a new reference. */

/* A name: mostly one of names[], sometimes an edge case (empty, longest,
 * one too long, an embedded NUL, non-ASCII, or not a string at all). */
static json_t *decide_fuzz_name(decide_fuzz *fuzz, const char *const *names, size_t count,
                                size_t size_max)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 224)
        return json_string(names[pick % count]);
    char text[DECIDE_FUZZ_TEXT_MAX];
    ARB_ASSERT(size_max + 1 < sizeof text);
    switch (pick % 8) {
    case 0:
        return json_string("");
    case 1:
        memset(text, 'n', size_max);
        return json_stringn(text, size_max);
    case 2:
        memset(text, 'n', size_max + 1);
        return json_stringn(text, size_max + 1);
    case 3:
        return json_stringn("acct0\0x", 7);
    case 4:
        return json_string("\xc3\xa9t\xc3\xa9 \"q\" \\ \t");
    case 5:
        return json_integer(pick);
    case 6:
        return json_null();
    default:
        return json_pack("[s]", names[0]);
    }
}

static json_t *decide_fuzz_account(decide_fuzz *fuzz)
{
    return decide_fuzz_name(fuzz, decide_fuzz_accounts, DECIDE_FUZZ_COUNT(decide_fuzz_accounts),
                            ARB_ACCOUNT_ID_BYTES_MAX);
}

static const int64_t decide_fuzz_edges[] = {
    0,
    -1,
    -1000000,
    ARB_LEDGER_TRANSFER_MAX_DEFAULT,
    ARB_LEDGER_TRANSFER_MAX_DEFAULT + 1,
    ARB_JSON_INT_MAX,
    ARB_JSON_INT_MAX - 1,
    ARB_JSON_INT_MAX + 1,
    ARB_JSON_INT_MAX / 2 + 1,
    -ARB_JSON_INT_MAX,
    -ARB_JSON_INT_MAX - 1,
    INT64_MAX,
    INT64_MIN,
    (int64_t)1 << 52,
    ARB_LEDGER_HOLD_TIMEOUT_S_MAX,
    ARB_LEDGER_HOLD_TIMEOUT_S_MAX + 1,
};

/* Something that is not an integer. */
static json_t *decide_fuzz_garbage(uint8_t pick)
{
    switch (pick % 6) {
    case 0:
        return json_string("5");
    case 1:
        return json_real(1.5);
    case 2:
        return json_null();
    case 3:
        return json_true();
    case 4:
        return json_array();
    default:
        return json_object();
    }
}

/* An amount-like integer: mostly small and valid, else an edge or garbage. */
static json_t *decide_fuzz_int(decide_fuzz *fuzz)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 160) {
        static const int64_t scale[] = {1, 10, 100, 1000};
        return json_integer((pick % 40 + 1) * scale[pick / 40]);
    }
    if (pick < 224)
        return json_integer(decide_fuzz_edges[pick % DECIDE_FUZZ_COUNT(decide_fuzz_edges)]);
    if (pick < 232)
        return json_integer((json_int_t)arb_fuzz_u64(&fuzz->in));
    return decide_fuzz_garbage(pick);
}

static json_t *decide_fuzz_timeout(decide_fuzz *fuzz)
{
    static const int64_t seconds[] = {1, 2, 5, 60, 3600, 86400};
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 200)
        return json_integer(seconds[pick % DECIDE_FUZZ_COUNT(seconds)]);
    return decide_fuzz_int(fuzz);
}

static json_t *decide_fuzz_memo(decide_fuzz *fuzz)
{
    char text[DECIDE_FUZZ_TEXT_MAX];
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    switch (pick % 6) {
    case 0:
        return json_string("rent");
    case 1:
        return json_string("");
    case 2:
        memset(text, 'm', ARB_MEMO_BYTES_MAX);
        return json_stringn(text, ARB_MEMO_BYTES_MAX);
    case 3:
        memset(text, 'm', ARB_MEMO_BYTES_MAX + 1);
        return json_stringn(text, ARB_MEMO_BYTES_MAX + 1);
    case 4:
        return json_stringn("a\0b", 3);
    default:
        return decide_fuzz_garbage(pick);
    }
}

/* A hold id: mostly one that was really held, else an edge case. */
static json_t *decide_fuzz_pending(decide_fuzz *fuzz)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 192 && fuzz->held_count > 0)
        return json_string(fuzz->held[pick % fuzz->held_count]);
    char text[32];
    switch (pick % 8) {
    case 0:
        return json_string("p0");
    case 1: /* a hold an earlier item of the same batch may create */
        snprintf(text, sizeof text, "p%" PRIu64, fuzz->next_seq + (pick >> 3) % 4);
        return json_string(text);
    case 2:
        snprintf(text, sizeof text, "p%" PRIu64, fuzz->next_seq - 1);
        return json_string(text);
    case 3:
        return json_string("");
    case 4:
        memset(text, 'p', 25);
        return json_stringn(text, 25);
    case 5:
        return json_integer(1);
    default:
        return json_string("p1");
    }
}

/* The version the state holds for an account (0 when none). */
static int64_t decide_fuzz_version(decide_fuzz *fuzz, const char *account)
{
    arb_principal viewer = {.id = "admin", .role = ARB_ROLE_ADMIN};
    json_t *view = fuzz->rules->view(fuzz->state, &viewer);
    ARB_ASSERT(view != NULL);
    json_t *entry = json_object_get(json_object_get(view, "accounts"), account);
    int64_t version = json_integer_value(json_object_get(entry, "version"));
    json_decref(view);
    return version;
}

/* {account: version}: mostly the true versions, else stale or malformed. */
static json_t *decide_fuzz_expect_versions(decide_fuzz *fuzz)
{
    uint8_t shape = arb_fuzz_u8(&fuzz->in);
    if (shape >= 248)
        return decide_fuzz_garbage(shape);
    json_t *expect = json_object();
    ARB_ASSERT(expect != NULL);
    size_t count = 1 + shape % 2;
    for (size_t i = 0; i < count; i++) {
        json_t *name = decide_fuzz_account(fuzz);
        const char *account = json_is_string(name) ? json_string_value(name) : "acct0";
        uint8_t pick = arb_fuzz_u8(&fuzz->in);
        json_t *version;
        if (pick < 160)
            version = json_integer(decide_fuzz_version(fuzz, account));
        else if (pick < 240)
            version = json_integer(pick % 8 - 1);
        else
            version = decide_fuzz_garbage(pick);
        decide_fuzz_set(expect, account, version);
        json_decref(name);
    }
    return expect;
}

static json_t *decide_fuzz_args(decide_fuzz *fuzz, decide_fuzz_action action, unsigned depth);

/* One batch item: {action, args}, sometimes malformed. */
static json_t *decide_fuzz_item(decide_fuzz *fuzz, unsigned depth)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    decide_fuzz_action action = (decide_fuzz_action)(pick % DECIDE_FUZZ_ACTION_COUNT);
    json_t *args = decide_fuzz_args(fuzz, action, depth + 1);
    json_t *item =
        json_pack("{s:s, s:o}", "action", decide_fuzz_action_names[action], "args", args);
    ARB_ASSERT(item != NULL);
    if (pick < 240)
        return item;
    switch (pick % 5) {
    case 0:
        ARB_ASSERT(json_object_del(item, "args") == 0);
        break;
    case 1:
        decide_fuzz_set(item, "args", json_integer(1));
        break;
    case 2:
        decide_fuzz_set(item, "action", json_integer(1));
        break;
    case 3:
        decide_fuzz_set(item, "extra", json_true());
        break;
    default:
        json_decref(item);
        item = json_string("transfer");
        break;
    }
    return item;
}

static json_t *decide_fuzz_items(decide_fuzz *fuzz, unsigned depth)
{
    uint8_t shape = arb_fuzz_u8(&fuzz->in);
    if (depth > 0) /* a batch inside a batch: rejected, so keep it small */
        return json_array();
    size_t count = 1 + shape % 6;
    if (shape >= 240) {
        static const size_t edges[] = {0, ARB_LEDGER_BATCH_ITEMS_MAX,
                                       ARB_LEDGER_BATCH_ITEMS_MAX + 1, 2};
        count = edges[shape % DECIDE_FUZZ_COUNT(edges)];
        if (shape % DECIDE_FUZZ_COUNT(edges) == 3)
            return json_string("not an array");
    }
    json_t *items = json_array();
    ARB_ASSERT(items != NULL);
    for (size_t i = 0; i < count; i++)
        ARB_ASSERT(json_array_append_new(items, decide_fuzz_item(fuzz, depth)) == 0);
    return items;
}

/* Drop one key of args, chosen by the input. */
static void decide_fuzz_drop_key(decide_fuzz *fuzz, json_t *args)
{
    size_t size = json_object_size(args);
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (size == 0)
        return;
    size_t index = pick % size;
    char key[64] = "";
    const char *name;
    json_t *value;
    json_object_foreach (args, name, value) {
        if (index-- == 0) {
            snprintf(key, sizeof key, "%s", name);
            break;
        }
    }
    json_object_del(args, key);
}

static void decide_fuzz_move_args(decide_fuzz *fuzz, json_t *args, bool hold, uint8_t flags)
{
    decide_fuzz_set(args, "from", decide_fuzz_account(fuzz));
    decide_fuzz_set(args, "to", decide_fuzz_account(fuzz));
    decide_fuzz_set(args, "amount", decide_fuzz_int(fuzz));
    if (hold)
        decide_fuzz_set(args, "timeout_s", decide_fuzz_timeout(fuzz));
    if (flags & 1u)
        decide_fuzz_set(args, "memo", decide_fuzz_memo(fuzz));
    if (flags & 2u)
        decide_fuzz_set(args, "expect_versions", decide_fuzz_expect_versions(fuzz));
}

/* The args of one action. flags: bit 0 memo, bit 1 expect_versions, bit 2
 * an unknown key, bit 3 drop a key, bit 4 the optional amount/overdraft. */
static json_t *decide_fuzz_args(decide_fuzz *fuzz, decide_fuzz_action action, unsigned depth)
{
    uint8_t flags = arb_fuzz_u8(&fuzz->in);
    json_t *args = json_object();
    ARB_ASSERT(args != NULL);
    switch (action) {
    case DECIDE_FUZZ_OPEN_ACCOUNT:
        decide_fuzz_set(args, "account", decide_fuzz_account(fuzz));
        decide_fuzz_set(args, "owner",
                        decide_fuzz_name(fuzz, decide_fuzz_owners,
                                         DECIDE_FUZZ_COUNT(decide_fuzz_owners),
                                         ARB_ACCOUNT_ID_BYTES_MAX));
        decide_fuzz_set(args, "currency",
                        decide_fuzz_name(fuzz, decide_fuzz_currencies,
                                         DECIDE_FUZZ_COUNT(decide_fuzz_currencies),
                                         ARB_CURRENCY_BYTES_MAX));
        if (flags & 16u)
            decide_fuzz_set(args, "overdraft_limit", decide_fuzz_int(fuzz));
        break;
    case DECIDE_FUZZ_DEPOSIT:
    case DECIDE_FUZZ_WITHDRAW:
        decide_fuzz_set(args, "account", decide_fuzz_account(fuzz));
        decide_fuzz_set(args, "amount", decide_fuzz_int(fuzz));
        if (flags & 1u)
            decide_fuzz_set(args, "memo", decide_fuzz_memo(fuzz));
        break;
    case DECIDE_FUZZ_TRANSFER:
    case DECIDE_FUZZ_HOLD:
        decide_fuzz_move_args(fuzz, args, action == DECIDE_FUZZ_HOLD, flags);
        break;
    case DECIDE_FUZZ_CAPTURE:
        decide_fuzz_set(args, "pending", decide_fuzz_pending(fuzz));
        if (flags & 16u)
            decide_fuzz_set(args, "amount", decide_fuzz_int(fuzz));
        break;
    case DECIDE_FUZZ_VOID:
    case DECIDE_FUZZ_EXPIRE:
        decide_fuzz_set(args, "pending", decide_fuzz_pending(fuzz));
        break;
    case DECIDE_FUZZ_BATCH:
        decide_fuzz_set(args, "items", decide_fuzz_items(fuzz, depth));
        break;
    case DECIDE_FUZZ_CONFIGURE:
        decide_fuzz_set(args, "max_transfer", decide_fuzz_int(fuzz));
        break;
    case DECIDE_FUZZ_UNKNOWN:
    case DECIDE_FUZZ_ACTION_COUNT:
        decide_fuzz_set(args, "account", decide_fuzz_account(fuzz));
        break;
    }
    if (flags & 4u)
        decide_fuzz_set(args, (flags & 128u) ? "" : "bogus", decide_fuzz_int(fuzz));
    if (flags & 8u)
        decide_fuzz_drop_key(fuzz, args);
    return args;
}

/* Deciding and committing. */

static void decide_fuzz_check_rejection(decide_fuzz *fuzz, const arb_decision *decision)
{
    ARB_ASSERT(decision->code < 0);
    ARB_ASSERT(strcmp(arb_err_name(decision->code), "UNKNOWN_ERROR") != 0);
    ARB_ASSERT(decision->event_count == 0 && decision->result == NULL);
    ARB_ASSERT(decision->message[0] != '\0');
    ARB_ASSERT(memchr(decision->message, '\0', sizeof decision->message) != NULL);
    if (decision->details != NULL) {
        ARB_ASSERT(json_is_object(decision->details));
        decide_fuzz_assert_canonical(fuzz, decision->details);
    }
}

/* Evolve one event (data borrowed from the decision) at the next seq. */
static void decide_fuzz_evolve(decide_fuzz *fuzz, const arb_command *command, const char *type,
                               json_t *data)
{
    arb_event event;
    memset(&event, 0, sizeof event);
    ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, DECIDE_FUZZ_STREAM) == 0);
    ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, type) == 0);
    ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, command->principal.id) == 0);
    event.seq = fuzz->next_seq++;
    event.client_seq = command->client_seq;
    event.applied_at_ms = fuzz->now_ms;
    event.data = json_incref(data);
    int rc = fuzz->rules->evolve(fuzz->state, &event, &fuzz->sink);
    if (rc != 0)
        fprintf(stderr, "ledger_decide_fuzz: evolve refused its own %s event: %d\n", type, rc);
    ARB_ASSERT(rc == 0);
    if (strcmp(type, "held") == 0)
        decide_fuzz_remember_hold(fuzz, &event);
    decide_fuzz_log(fuzz, &event);
}

static void decide_fuzz_commit(decide_fuzz *fuzz, const arb_command *command,
                               const arb_decision *decision, int events_expected)
{
    ARB_ASSERT(decision->code == 0);
    ARB_ASSERT(decision->event_count >= 1 && decision->event_count <= ARB_DECISION_EVENTS_MAX);
    ARB_ASSERT(events_expected < 0 || decision->event_count == (size_t)events_expected);
    ARB_ASSERT(decision->details == NULL);
    if (decision->result != NULL)
        decide_fuzz_assert_canonical(fuzz, decision->result);
    for (size_t i = 0; i < decision->event_count; i++) {
        const arb_decision_event *event = &decision->events[i];
        size_t type_len = strlen(event->type);
        ARB_ASSERT(type_len > 0 && type_len <= ARB_EVENT_TYPE_BYTES_MAX);
        ARB_ASSERT(json_is_object(event->data));
        decide_fuzz_assert_canonical(fuzz, event->data);
        ARB_ASSERT(fuzz->canon.len <= ARB_ARGS_BYTES_MAX);
    }
    for (size_t i = 0; i < decision->event_count; i++)
        decide_fuzz_evolve(fuzz, command, decision->events[i].type, decision->events[i].data);
    decide_fuzz_check_state(fuzz, fuzz->state);
}

static void decide_fuzz_trace(const arb_command *command, const arb_decision *decision)
{
    char *args = json_dumps(command->args, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf(stderr, "%s(%d) %s %s -> %s", command->principal.id, (int)command->principal.role,
            command->action, args != NULL ? args : "?", arb_err_name(decision->code));
    for (size_t i = 0; i < decision->event_count; i++)
        fprintf(stderr, " %s", decision->events[i].type);
    fprintf(stderr, decision->code != 0 ? " (%s)\n" : "\n", decision->message);
    free(args);
}

/* Propose action(args) as client_id/role; steals args. events_expected is
 * the number of events an acceptance must carry, or -1 when unknown. */
static void decide_fuzz_propose(decide_fuzz *fuzz, const char *client_id, arb_role role,
                                const char *action, json_t *args, int events_expected)
{
    arb_command command;
    arb_command_init(&command);
    int rc = arb_command_set(&command, client_id, role, ++fuzz->client_seq, DECIDE_FUZZ_STREAM,
                             action, args);
    ARB_ASSERT(rc == 0);
    json_decref(args);
    arb_ctx ctx = {.now_ms = fuzz->now_ms,
                   .next_seq = fuzz->next_seq,
                   .version = fuzz->next_seq - 1,
                   .random_bytes = NULL,
                   .random_user = NULL};
    /* Saving the state twice per proposal would dominate the run time, so
     * every DECIDE_FUZZ_UNCHANGED_EVERY-th proposal is checked. */
    bool compare = fuzz->client_seq % DECIDE_FUZZ_UNCHANGED_EVERY == 0;
    json_t *before = compare ? decide_fuzz_save(fuzz, fuzz->state) : NULL;
    arb_decision decision;
    arb_decision_init(&decision);
    fuzz->rules->decide(fuzz->state, &command, &ctx, &decision);
    if (compare) {
        json_t *after = decide_fuzz_save(fuzz, fuzz->state);
        ARB_ASSERT(json_equal(before, after)); /* decide must not change the state */
        json_decref(before);
        json_decref(after);
    }
    if (fuzz->trace)
        decide_fuzz_trace(&command, &decision);
    if (decision.code != 0) {
        decide_fuzz_check_rejection(fuzz, &decision);
    } else {
        bool admin_only = strcmp(action, "deposit") == 0 || strcmp(action, "withdraw") == 0 ||
                          strcmp(action, "open_account") == 0 || strcmp(action, "configure") == 0;
        ARB_ASSERT(!admin_only || role != ARB_ROLE_USER);
        ARB_ASSERT(strcmp(action, "expire") != 0 || role == ARB_ROLE_SYSTEM);
        decide_fuzz_commit(fuzz, &command, &decision, events_expected);
    }
    arb_decision_clear(&decision);
    arb_command_clear(&command);
}

/* An action proposed by a principal the input chooses. */
static void decide_fuzz_action_step(decide_fuzz *fuzz, decide_fuzz_action action)
{
    uint8_t who = arb_fuzz_u8(&fuzz->in);
    arb_role role = ARB_ROLE_USER;
    const char *client_id = decide_fuzz_owners[(who >> 2) % DECIDE_FUZZ_COUNT(decide_fuzz_owners)];
    if (who % 4 == 0) {
        role = ARB_ROLE_ADMIN;
        client_id = "admin";
    } else if (who % 4 == 2) {
        role = ARB_ROLE_SYSTEM;
        client_id = "system";
    }
    json_t *args = decide_fuzz_args(fuzz, action, 0);
    int events_expected = 1;
    if (action == DECIDE_FUZZ_BATCH)
        events_expected = (int)json_array_size(json_object_get(args, "items"));
    const char *name = decide_fuzz_action_names[action];
    if (action == DECIDE_FUZZ_UNKNOWN) {
        static const char *const unknown[] = {"nonsense", "", "TRANSFER", "transfer ",
                                              "open_accountx"};
        name = unknown[who % DECIDE_FUZZ_COUNT(unknown)];
    }
    decide_fuzz_propose(fuzz, client_id, role, name, args, events_expected);
}

/* Clock and timers. */

static void decide_fuzz_advance(decide_fuzz *fuzz)
{
    static const int64_t deltas_ms[] = {
        0,
        1,
        999,
        1000,
        1001,
        59999,
        60000,
        3600 * 1000LL,
        86400000LL,
        ARB_LEDGER_HOLD_TIMEOUT_S_MAX * 1000LL,
        ARB_LEDGER_HOLD_TIMEOUT_S_MAX * 1000LL + 1,
    };
    int64_t delta = deltas_ms[arb_fuzz_u8(&fuzz->in) % DECIDE_FUZZ_COUNT(deltas_ms)];
    fuzz->now_ms = delta > DECIDE_FUZZ_NOW_MAX_MS - fuzz->now_ms ? DECIDE_FUZZ_NOW_MAX_MS
                                                                 : fuzz->now_ms + delta;
}

/* Propose every due timer as the system, as the engine's tick does; a stale
 * one is rejected and dropped. */
static void decide_fuzz_fire(decide_fuzz *fuzz)
{
    decide_fuzz_timer due[DECIDE_FUZZ_TIMERS_MAX];
    size_t due_count = 0;
    for (size_t i = 0; i < fuzz->timers.count;) {
        if (fuzz->timers.items[i].at_ms <= fuzz->now_ms) {
            due[due_count++] = fuzz->timers.items[i];
            fuzz->timers.items[i] = fuzz->timers.items[--fuzz->timers.count];
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < due_count; i++) {
        json_t *args = json_pack("{s:s}", "pending", due[i].pending);
        ARB_ASSERT(args != NULL);
        decide_fuzz_propose(fuzz, "system", ARB_ROLE_SYSTEM, "expire", args, 1);
    }
}

/* Snapshots: save -> load (the recovery path) -> save, then go on with the
 * loaded state and the timers it reported. */

static size_t decide_fuzz_open_holds(const json_t *snapshot)
{
    size_t open = 0;
    const char *id;
    json_t *hold;
    json_object_foreach (json_object_get(snapshot, "pending"), id, hold) {
        const char *status = json_string_value(json_object_get(hold, "status"));
        open += status != NULL && strcmp(status, "pending") == 0;
    }
    return open;
}

static void decide_fuzz_round_trip(decide_fuzz *fuzz)
{
    json_t *saved = decide_fuzz_save(fuzz, fuzz->state);
    decide_fuzz_assert_canonical(fuzz, saved);
    memset(&fuzz->timers, 0, sizeof fuzz->timers);
    void *loaded = NULL;
    int rc = fuzz->rules->snapshot_load(saved, fuzz->next_seq - 1, &loaded, &fuzz->sink);
    ARB_ASSERT(rc == 0 && loaded != NULL);
    ARB_ASSERT(fuzz->timers.reported == decide_fuzz_open_holds(saved));
    if (fuzz->closed_kept_set)
        arb__ledger_set_closed_kept(loaded, fuzz->closed_kept);
    decide_fuzz_check_state(fuzz, loaded);
    json_t *again = decide_fuzz_save(fuzz, loaded);
    ARB_ASSERT(json_equal(saved, again));
    json_decref(again);
    json_decref(saved);
    fuzz->rules->state_free(fuzz->state);
    fuzz->state = loaded;
}

/* Hand-made events: what evolve does with an event decide did not make. */

static json_t *decide_fuzz_event_data(decide_fuzz *fuzz, size_t type)
{
    json_t *data = json_object();
    ARB_ASSERT(data != NULL);
    char pending[32];
    switch (type) {
    case 0: /* account_opened */
        decide_fuzz_set(data, "account", decide_fuzz_account(fuzz));
        decide_fuzz_set(data, "owner", decide_fuzz_account(fuzz));
        decide_fuzz_set(data, "currency",
                        decide_fuzz_name(fuzz, decide_fuzz_currencies,
                                         DECIDE_FUZZ_COUNT(decide_fuzz_currencies),
                                         ARB_CURRENCY_BYTES_MAX));
        decide_fuzz_set(data, "overdraft_limit", decide_fuzz_int(fuzz));
        break;
    case 1: /* deposited */
    case 2: /* withdrawn */
        decide_fuzz_set(data, "account", decide_fuzz_account(fuzz));
        decide_fuzz_set(data, "amount", decide_fuzz_int(fuzz));
        break;
    case 3: /* transferred */
        decide_fuzz_set(data, "from", decide_fuzz_account(fuzz));
        decide_fuzz_set(data, "to", decide_fuzz_account(fuzz));
        decide_fuzz_set(data, "amount", decide_fuzz_int(fuzz));
        break;
    case 4: /* held */
        snprintf(pending, sizeof pending, "p%" PRIu64, fuzz->next_seq);
        decide_fuzz_set(data, "pending",
                        arb_fuzz_u8(&fuzz->in) < 200 ? json_string(pending)
                                                     : decide_fuzz_pending(fuzz));
        decide_fuzz_set(data, "from", decide_fuzz_account(fuzz));
        decide_fuzz_set(data, "to", decide_fuzz_account(fuzz));
        decide_fuzz_set(data, "amount", decide_fuzz_int(fuzz));
        decide_fuzz_set(data, "expires_at", decide_fuzz_int(fuzz));
        break;
    case 5: /* captured */
        decide_fuzz_set(data, "pending", decide_fuzz_pending(fuzz));
        decide_fuzz_set(data, "amount", decide_fuzz_int(fuzz));
        break;
    case 6: /* voided */
    case 7: /* expired */
        decide_fuzz_set(data, "pending", decide_fuzz_pending(fuzz));
        break;
    case 8: /* configured */
        decide_fuzz_set(data, "max_transfer", decide_fuzz_int(fuzz));
        break;
    default:
        break;
    }
    uint8_t flags = arb_fuzz_u8(&fuzz->in);
    if (flags & 1u)
        decide_fuzz_set(data, "memo", decide_fuzz_memo(fuzz));
    if (flags & 2u)
        decide_fuzz_drop_key(fuzz, data);
    if (flags & 4u)
        decide_fuzz_set(data, "extra", json_integer(1));
    if ((flags & 24u) == 24u) {
        json_decref(data);
        data = json_pack("[s]", "not an object");
        ARB_ASSERT(data != NULL);
    }
    return data;
}

static void decide_fuzz_forged_event(decide_fuzz *fuzz)
{
    static const char *const types[] = {
        "account_opened", "deposited", "withdrawn",  "transferred", "held", "captured",
        "voided",         "expired",   "configured", "bogus",       "",
    };
    size_t type = arb_fuzz_u8(&fuzz->in) % DECIDE_FUZZ_COUNT(types);
    arb_event event;
    memset(&event, 0, sizeof event);
    ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, DECIDE_FUZZ_STREAM) == 0);
    ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, types[type]) == 0);
    ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, "admin") == 0);
    event.seq = fuzz->next_seq;
    event.client_seq = ++fuzz->client_seq;
    event.applied_at_ms = fuzz->now_ms;
    event.data = decide_fuzz_event_data(fuzz, type);
    json_t *before = decide_fuzz_save(fuzz, fuzz->state);
    size_t timers_before = fuzz->timers.reported;
    int rc = fuzz->rules->evolve(fuzz->state, &event, &fuzz->sink);
    if (fuzz->trace)
        fprintf(stderr, "forged %s event -> %s\n", types[type], arb_err_name(rc));
    if (rc == 0) {
        decide_fuzz_check_state(fuzz, fuzz->state);
        fuzz->next_seq++;
        if (type == 4)
            decide_fuzz_remember_hold(fuzz, &event);
        decide_fuzz_log(fuzz, &event);
    } else {
        /* Refused: nothing changed, no deadline reported. */
        ARB_ASSERT(rc == ARB_ECORRUPT);
        json_t *after = decide_fuzz_save(fuzz, fuzz->state);
        ARB_ASSERT(json_equal(before, after));
        ARB_ASSERT(fuzz->timers.reported == timers_before);
        json_decref(after);
        arb_event_clear(&event);
    }
    json_decref(before);
}

/* Remember at most 0..3 closed holds from now on (the oldest are forgotten
 * at once). Every state loaded from now on gets the same bound, and the final
 * replay makes the same change at the same point of the log, since a hold
 * once forgotten stays forgotten when the bound is raised again. */
static void decide_fuzz_forget(decide_fuzz *fuzz)
{
    size_t kept = arb_fuzz_u8(&fuzz->in) % 4;
    if (fuzz->forget_count == DECIDE_FUZZ_FORGETS_MAX)
        return;
    fuzz->forgets[fuzz->forget_count].log_index = fuzz->log_count;
    fuzz->forgets[fuzz->forget_count].kept = kept;
    fuzz->forget_count++;
    fuzz->closed_kept_set = true;
    fuzz->closed_kept = kept;
    if (fuzz->trace)
        fprintf(stderr, "remember %zu closed holds\n", fuzz->closed_kept);
    arb__ledger_set_closed_kept(fuzz->state, fuzz->closed_kept);
    decide_fuzz_check_state(fuzz, fuzz->state);
}

/* The program. */

static void decide_fuzz_step(decide_fuzz *fuzz)
{
    uint8_t op = arb_fuzz_u8(&fuzz->in) % 16;
    if (op < DECIDE_FUZZ_ACTION_COUNT) {
        decide_fuzz_action_step(fuzz, (decide_fuzz_action)op);
        return;
    }
    switch (op) {
    case 11:
        decide_fuzz_advance(fuzz);
        if (fuzz->trace)
            fprintf(stderr, "clock -> %" PRId64 "\n", fuzz->now_ms);
        break;
    case 12:
        if (fuzz->trace)
            fprintf(stderr, "fire due timers (%zu pending)\n", fuzz->timers.count);
        decide_fuzz_fire(fuzz);
        break;
    case 13:
        if (fuzz->trace)
            fprintf(stderr, "snapshot round trip\n");
        decide_fuzz_round_trip(fuzz);
        break;
    case 14:
        decide_fuzz_forged_event(fuzz);
        break;
    default:
        decide_fuzz_forget(fuzz);
        break;
    }
}

/* The log alone must replay to the same state. */
static void decide_fuzz_replay(decide_fuzz *fuzz)
{
    void *fresh = NULL;
    ARB_ASSERT(fuzz->rules->state_new(&fresh) == 0);
    size_t mark = 0;
    for (size_t i = 0; i <= fuzz->log_count; i++) {
        for (; mark < fuzz->forget_count && fuzz->forgets[mark].log_index == i; mark++)
            arb__ledger_set_closed_kept(fresh, fuzz->forgets[mark].kept);
        if (i < fuzz->log_count)
            ARB_ASSERT(fuzz->rules->evolve(fresh, &fuzz->log[i], NULL) == 0);
    }
    ARB_ASSERT(mark == fuzz->forget_count);
    decide_fuzz_check_state(fuzz, fresh);
    json_t *replayed = decide_fuzz_save(fuzz, fresh);
    json_t *live = decide_fuzz_save(fuzz, fuzz->state);
    ARB_ASSERT(json_equal(replayed, live));
    json_decref(replayed);
    json_decref(live);
    fuzz->rules->state_free(fresh);
}

int arb_fuzz_ledger_decide(const uint8_t *data, size_t size)
{
    decide_fuzz *fuzz = calloc(1, sizeof *fuzz);
    ARB_ASSERT(fuzz != NULL);
    arb_fuzz_reader_init(&fuzz->in, data, size);
    fuzz->rules = &arb_rules_ledger;
    ARB_ASSERT(fuzz->rules->state_new(&fuzz->state) == 0);
    fuzz->now_ms = DECIDE_FUZZ_NOW_START_MS;
    fuzz->next_seq = 1;
    fuzz->sink.add = decide_fuzz_timer_add;
    fuzz->sink.user = &fuzz->timers;
    arb_buf_init(&fuzz->canon, ARB_SNAPSHOT_BYTES_MAX);
    fuzz->trace = getenv("ARB_FUZZ_TRACE") != NULL;

    for (size_t step = 0; step < DECIDE_FUZZ_STEPS_MAX && !arb_fuzz_reader_done(&fuzz->in); step++)
        decide_fuzz_step(fuzz);
    if (!fuzz->log_full)
        decide_fuzz_replay(fuzz);

    arb_principal viewer = {.id = "u0", .role = ARB_ROLE_USER};
    json_t *view = fuzz->rules->view(fuzz->state, &viewer);
    ARB_ASSERT(view != NULL);
    decide_fuzz_assert_canonical(fuzz, view);
    json_decref(view);

    for (size_t i = 0; i < fuzz->log_count; i++)
        arb_event_clear(&fuzz->log[i]);
    free(fuzz->log);
    fuzz->rules->state_free(fuzz->state);
    arb_buf_free(&fuzz->canon);
    free(fuzz);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_ledger_decide(data, size);
}
#endif
