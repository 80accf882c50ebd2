/*
 * inventory_decide_fuzz.c - fuzz target: programs of shop commands run
 * against arb_rules_inventory directly, the way the engine runs them.
 *
 * Input: a program. Each step is one opcode byte followed by the bytes its
 * operation reads (see inventory_fuzz_step); the program ends with the
 * input or after INVENTORY_FUZZ_STEPS_MAX steps. Operations:
 *   - propose an action (add_item, restock, reserve, reserve_cart, confirm,
 *     release, expire, or an unknown one) as an admin, a user or the system,
 *     with arguments from a small sku space, quantities that include 0,
 *     negatives, the reservation maximum and one past it, 2^53-1, 2^53 and
 *     INT64 extremes, and sometimes wrong JSON types, missing or unknown
 *     keys, malformed or duplicate cart lines, too many lines;
 *   - advance the clock; fire the due `expire` timers as the system;
 *   - round-trip the state through snapshot_save / snapshot_load (the
 *     recovery path) and go on with the loaded state;
 *   - evolve a hand-made event that decide did not produce (a tampered log);
 *   - lower the number of closed reservations the state remembers (through
 *     the tests-only arb__inventory_set_closed_kept), so that the forgetting
 *     of the oldest ones runs too;
 *   - look at the shop as one user: view and redact.
 *
 * Properties checked (ARB_ASSERT):
 *   - decide never changes the state (checked on every 8th proposal);
 *   - a rejection has a negative code known to arb_err_name, a message, no
 *     events and no result, and details that are an object of canonical
 *     JSON; SOLD_OUT's details.available is what the item has;
 *   - an acceptance has exactly one event and canonical data and result;
 *     add_item and restock came from an admin or the system, expire from the
 *     system, confirm and release from the reservation's owner; a reserved
 *     event is "r<seq>" owned by the proposer; evolve accepts every event
 *     and check() holds after (so available never goes below zero and the
 *     counts always add up: nothing is oversold);
 *   - every timer the module reports is a well-formed `expire`;
 *   - save -> load -> save gives an equal snapshot that is canonical JSON,
 *     and load reports one timer per open reservation;
 *   - a hand-made event either fits (check() holds after) or is refused
 *     with ARB_ECORRUPT leaving the state and the timers untouched;
 *   - a user's view holds every item and exactly that user's reservations;
 *     redact hides the owner of other users' reserved events only, and
 *     changes nothing else;
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
#include "rules/inventory/inventory.h"
#include "rules/inventory/inventory_internal.h"

#define INVENTORY_FUZZ_STREAM "shop:fuzz"
/* Bounds that keep one input fast: steps, timers remembered, events logged
 * for the final replay, and reservation ids remembered for confirm etc. */
#define INVENTORY_FUZZ_STEPS_MAX 256
#define INVENTORY_FUZZ_TIMERS_MAX 64
#define INVENTORY_FUZZ_LOG_MAX 4096
#define INVENTORY_FUZZ_IDS_KEPT 8
/* Changes of the closed-reservation bound one program may make. */
#define INVENTORY_FUZZ_FORGETS_MAX 32
/* One proposal in this many is checked for leaving the state unchanged. */
#define INVENTORY_FUZZ_UNCHANGED_EVERY 8
/* Logged events the visibility step redacts (the most recent). */
#define INVENTORY_FUZZ_REDACT_RECENT 16
/* The clock starts at a realistic time and stays within what the module
 * asserts of ctx->now_ms (0..2^52). */
#define INVENTORY_FUZZ_NOW_START_MS 1700000000000LL
#define INVENTORY_FUZZ_NOW_MAX_MS (ARB_JSON_INT_MAX / 2)
/* Room for the longest string argument made here (a name one byte too long). */
#define INVENTORY_FUZZ_TEXT_MAX (ARB_INVENTORY_NAME_BYTES_MAX + 2)

typedef enum inventory_fuzz_action {
    INVENTORY_FUZZ_ADD_ITEM,
    INVENTORY_FUZZ_RESTOCK,
    INVENTORY_FUZZ_RESERVE,
    INVENTORY_FUZZ_RESERVE_CART,
    INVENTORY_FUZZ_CONFIRM,
    INVENTORY_FUZZ_RELEASE,
    INVENTORY_FUZZ_EXPIRE,
    INVENTORY_FUZZ_UNKNOWN,
    INVENTORY_FUZZ_ACTION_COUNT
} inventory_fuzz_action;

static const char *const inventory_fuzz_action_names[INVENTORY_FUZZ_ACTION_COUNT] = {
    "add_item", "restock", "reserve", "reserve_cart", "confirm", "release", "expire", "nonsense",
};

static const char *const inventory_fuzz_skus[] = {"s0", "s1", "s2", "s3"};
static const char *const inventory_fuzz_users[] = {"u0", "u1", "u2", "u3"};

#define INVENTORY_FUZZ_COUNT(array) (sizeof(array) / sizeof((array)[0]))

typedef struct inventory_fuzz_timer {
    int64_t at_ms;
    char reservation[ARB__INVENTORY_RESERVATION_ID_BYTES_MAX + 1];
} inventory_fuzz_timer;

typedef struct inventory_fuzz_timers {
    size_t count;
    size_t reported;
    inventory_fuzz_timer items[INVENTORY_FUZZ_TIMERS_MAX];
} inventory_fuzz_timers;

/* A change of the closed-reservation bound, made after log_index events. */
typedef struct inventory_fuzz_forget_mark {
    size_t log_index;
    size_t kept;
} inventory_fuzz_forget_mark;

typedef struct inventory_fuzz {
    arb_fuzz_reader in;
    const arb_rules *rules;
    void *state;
    int64_t now_ms;
    uint64_t next_seq;
    uint64_t client_seq;
    inventory_fuzz_timers timers;
    arb_timer_sink sink;
    arb_event *log; /* every event evolved, in order; each owns its data */
    size_t log_count;
    size_t log_cap;
    bool log_full; /* past INVENTORY_FUZZ_LOG_MAX: no final replay */
    char ids[INVENTORY_FUZZ_IDS_KEPT][ARB__INVENTORY_RESERVATION_ID_BYTES_MAX + 1];
    size_t id_count;
    size_t id_next;
    arb_buf canon; /* scratch for the canonical-JSON checks */
    bool trace;    /* $ARB_FUZZ_TRACE set: print each step to stderr */
    bool closed_kept_set;
    size_t closed_kept; /* when set: closed reservations remembered */
    inventory_fuzz_forget_mark forgets[INVENTORY_FUZZ_FORGETS_MAX]; /* for the replay */
    size_t forget_count;
} inventory_fuzz;

/* Small helpers. */

static void inventory_fuzz_set(json_t *object, const char *key, json_t *value)
{
    ARB_ASSERT(value != NULL);
    ARB_ASSERT(json_object_set_new(object, key, value) == 0);
}

static void inventory_fuzz_append(json_t *array, json_t *value)
{
    ARB_ASSERT(value != NULL);
    ARB_ASSERT(json_array_append_new(array, value) == 0);
}

/* value must be canonical JSON (what the engine stores and sends). */
static void inventory_fuzz_assert_canonical(inventory_fuzz *fuzz, const json_t *value)
{
    arb_buf_reset(&fuzz->canon);
    ARB_ASSERT(arb_canon_json(&fuzz->canon, value) == 0);
}

static json_t *inventory_fuzz_save(const inventory_fuzz *fuzz, const void *state)
{
    json_t *snapshot = NULL;
    int rc = fuzz->rules->snapshot_save(state, &snapshot);
    ARB_ASSERT(rc == 0 && json_is_object(snapshot));
    return snapshot;
}

static void inventory_fuzz_check_state(const inventory_fuzz *fuzz, const void *state)
{
    char why[256];
    int rc = fuzz->rules->check(state, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "inventory_decide_fuzz: check failed: %s\n", why);
    ARB_ASSERT(rc == 0);
}

static void inventory_fuzz_timer_add(void *user, int64_t at_ms, const char *action, json_t *args)
{
    inventory_fuzz_timers *timers = user;
    const char *id = json_string_value(json_object_get(args, "reservation"));
    ARB_ASSERT(strcmp(action, "expire") == 0);
    ARB_ASSERT(json_is_object(args) && json_object_size(args) == 1 && id != NULL);
    ARB_ASSERT(at_ms >= 0 && at_ms <= ARB_JSON_INT_MAX);
    timers->reported++;
    if (timers->count == INVENTORY_FUZZ_TIMERS_MAX)
        return; /* not fired, but counted */
    inventory_fuzz_timer *timer = &timers->items[timers->count++];
    timer->at_ms = at_ms;
    ARB_ASSERT(arb_copy_name(timer->reservation, sizeof timer->reservation, id) == 0);
}

static void inventory_fuzz_remember_id(inventory_fuzz *fuzz, const arb_event *event)
{
    const char *id = json_string_value(json_object_get(event->data, "reservation"));
    ARB_ASSERT(id != NULL);
    char *slot = fuzz->ids[fuzz->id_next];
    ARB_ASSERT(arb_copy_name(slot, sizeof fuzz->ids[0], id) == 0);
    fuzz->id_next = (fuzz->id_next + 1) % INVENTORY_FUZZ_IDS_KEPT;
    if (fuzz->id_count < INVENTORY_FUZZ_IDS_KEPT)
        fuzz->id_count++;
}

/* Keep an evolved event for the final replay; takes event->data. */
static void inventory_fuzz_log(inventory_fuzz *fuzz, arb_event *event)
{
    if (fuzz->log_count == INVENTORY_FUZZ_LOG_MAX) {
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

/* Something that is not an integer. */
static json_t *inventory_fuzz_garbage(uint8_t pick)
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

/* A name: mostly one of names[], sometimes an edge case (empty, longest,
 * one too long, an embedded NUL, non-ASCII, or not a string at all). */
static json_t *inventory_fuzz_text(inventory_fuzz *fuzz, const char *const *names, size_t count,
                                   size_t size_max)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 224)
        return json_string(names[pick % count]);
    char text[INVENTORY_FUZZ_TEXT_MAX];
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
        return json_stringn("s0\0x", 4);
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

static json_t *inventory_fuzz_sku(inventory_fuzz *fuzz)
{
    return inventory_fuzz_text(fuzz, inventory_fuzz_skus, INVENTORY_FUZZ_COUNT(inventory_fuzz_skus),
                               ARB_INVENTORY_SKU_BYTES_MAX);
}

static json_t *inventory_fuzz_item_name(inventory_fuzz *fuzz)
{
    static const char *const names[] = {"Mug", "", "Blue pen"};
    return inventory_fuzz_text(fuzz, names, INVENTORY_FUZZ_COUNT(names),
                               ARB_INVENTORY_NAME_BYTES_MAX);
}

static const int64_t inventory_fuzz_edges[] = {
    0,
    -1,
    ARB_INVENTORY_RESERVE_QUANTITY_MAX,
    ARB_INVENTORY_RESERVE_QUANTITY_MAX + 1,
    ARB_INVENTORY_PRICE_MAX,
    ARB_INVENTORY_PRICE_MAX + 1,
    ARB_JSON_INT_MAX,
    ARB_JSON_INT_MAX - 1,
    ARB_JSON_INT_MAX + 1,
    -ARB_JSON_INT_MAX,
    INT64_MAX,
    INT64_MIN,
    ARB_INVENTORY_TTL_S_MAX,
    ARB_INVENTORY_TTL_S_MAX + 1,
};

/* A quantity-like integer: mostly small and valid, else an edge or garbage. */
static json_t *inventory_fuzz_int(inventory_fuzz *fuzz)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 176)
        return json_integer(pick % 8 + 1 + (pick >= 160 ? 20 : 0));
    if (pick < 224)
        return json_integer(
            inventory_fuzz_edges[pick % INVENTORY_FUZZ_COUNT(inventory_fuzz_edges)]);
    if (pick < 232)
        return json_integer((json_int_t)arb_fuzz_u64(&fuzz->in));
    return inventory_fuzz_garbage(pick);
}

static json_t *inventory_fuzz_ttl(inventory_fuzz *fuzz)
{
    static const int64_t seconds[] = {1, 2, 5, 60, 3600, ARB_INVENTORY_TTL_S_MAX};
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 200)
        return json_integer(seconds[pick % INVENTORY_FUZZ_COUNT(seconds)]);
    return inventory_fuzz_int(fuzz);
}

/* A reservation id: mostly one that was really made, else an edge case. */
static json_t *inventory_fuzz_reservation(inventory_fuzz *fuzz)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    if (pick < 192 && fuzz->id_count > 0)
        return json_string(fuzz->ids[pick % fuzz->id_count]);
    char text[32];
    switch (pick % 8) {
    case 0:
        return json_string("r0");
    case 1:
        snprintf(text, sizeof text, "r%" PRIu64, fuzz->next_seq);
        return json_string(text);
    case 2:
        snprintf(text, sizeof text, "r%" PRIu64, fuzz->next_seq - 1);
        return json_string(text);
    case 3:
        return json_string("");
    case 4:
        memset(text, 'r', 25);
        return json_stringn(text, 25);
    case 5:
        return json_integer(1);
    default:
        return json_string("r1");
    }
}

/* One cart line: {sku, quantity}, sometimes malformed. */
static json_t *inventory_fuzz_line(inventory_fuzz *fuzz)
{
    uint8_t pick = arb_fuzz_u8(&fuzz->in);
    json_t *line = json_object();
    ARB_ASSERT(line != NULL);
    inventory_fuzz_set(line, "sku", inventory_fuzz_sku(fuzz));
    inventory_fuzz_set(line, "quantity", inventory_fuzz_int(fuzz));
    if (pick < 240)
        return line;
    switch (pick % 4) {
    case 0:
        ARB_ASSERT(json_object_del(line, "quantity") == 0);
        break;
    case 1:
        inventory_fuzz_set(line, "gift", json_true());
        break;
    case 2:
        json_decref(line);
        line = json_string("s0");
        break;
    default:
        ARB_ASSERT(json_object_del(line, "sku") == 0);
        break;
    }
    return line;
}

static json_t *inventory_fuzz_lines(inventory_fuzz *fuzz)
{
    uint8_t shape = arb_fuzz_u8(&fuzz->in);
    size_t count = 1 + shape % 4;
    if (shape >= 240) {
        static const size_t edges[] = {0, ARB_INVENTORY_CART_ITEMS_MAX,
                                       ARB_INVENTORY_CART_ITEMS_MAX + 1, 2};
        count = edges[shape % INVENTORY_FUZZ_COUNT(edges)];
        if (shape % INVENTORY_FUZZ_COUNT(edges) == 3)
            return json_string("not an array");
    }
    json_t *lines = json_array();
    ARB_ASSERT(lines != NULL);
    for (size_t i = 0; i < count; i++) {
        if (count > 4) { /* the long edge carts: distinct skus, one unit each */
            char sku[24];
            snprintf(sku, sizeof sku, "s%zu", i);
            inventory_fuzz_append(lines, json_pack("{s:s, s:i}", "sku", sku, "quantity", 1));
        } else {
            inventory_fuzz_append(lines, inventory_fuzz_line(fuzz));
        }
    }
    return lines;
}

/* Drop one key of args, chosen by the input. */
static void inventory_fuzz_drop_key(inventory_fuzz *fuzz, json_t *args)
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

/* The args of one action. flags: bit 0 name, bit 1 price, bit 2 an
 * unknown key, bit 3 drop a key. */
static json_t *inventory_fuzz_args(inventory_fuzz *fuzz, inventory_fuzz_action action)
{
    uint8_t flags = arb_fuzz_u8(&fuzz->in);
    json_t *args = json_object();
    ARB_ASSERT(args != NULL);
    switch (action) {
    case INVENTORY_FUZZ_ADD_ITEM:
        inventory_fuzz_set(args, "sku", inventory_fuzz_sku(fuzz));
        inventory_fuzz_set(args, "stock", inventory_fuzz_int(fuzz));
        if (flags & 1u)
            inventory_fuzz_set(args, "name", inventory_fuzz_item_name(fuzz));
        if (flags & 2u)
            inventory_fuzz_set(args, "price", inventory_fuzz_int(fuzz));
        break;
    case INVENTORY_FUZZ_RESTOCK:
        inventory_fuzz_set(args, "sku", inventory_fuzz_sku(fuzz));
        inventory_fuzz_set(args, "quantity", inventory_fuzz_int(fuzz));
        break;
    case INVENTORY_FUZZ_RESERVE:
        inventory_fuzz_set(args, "sku", inventory_fuzz_sku(fuzz));
        inventory_fuzz_set(args, "quantity", inventory_fuzz_int(fuzz));
        inventory_fuzz_set(args, "ttl_s", inventory_fuzz_ttl(fuzz));
        break;
    case INVENTORY_FUZZ_RESERVE_CART:
        inventory_fuzz_set(args, "items", inventory_fuzz_lines(fuzz));
        inventory_fuzz_set(args, "ttl_s", inventory_fuzz_ttl(fuzz));
        break;
    case INVENTORY_FUZZ_CONFIRM:
    case INVENTORY_FUZZ_RELEASE:
    case INVENTORY_FUZZ_EXPIRE:
        inventory_fuzz_set(args, "reservation", inventory_fuzz_reservation(fuzz));
        break;
    case INVENTORY_FUZZ_UNKNOWN:
    case INVENTORY_FUZZ_ACTION_COUNT:
        inventory_fuzz_set(args, "sku", inventory_fuzz_sku(fuzz));
        break;
    }
    if (flags & 4u)
        inventory_fuzz_set(args, (flags & 128u) ? "" : "bogus", inventory_fuzz_int(fuzz));
    if (flags & 8u)
        inventory_fuzz_drop_key(fuzz, args);
    return args;
}

/* Reading the state through its snapshot (the module's own JSON). */

static json_int_t inventory_fuzz_item_field(const inventory_fuzz *fuzz, const char *sku,
                                            const char *field)
{
    json_t *saved = inventory_fuzz_save(fuzz, fuzz->state);
    json_t *item = json_object_get(json_object_get(saved, "items"), sku);
    ARB_ASSERT(item != NULL);
    json_int_t value = json_integer_value(json_object_get(item, field));
    json_decref(saved);
    return value;
}

/* The owner of a reservation the state remembers, copied into owner ("" when
 * it is not there). */
static void inventory_fuzz_owner(const inventory_fuzz *fuzz, const char *id, char *owner,
                                 size_t size)
{
    json_t *saved = inventory_fuzz_save(fuzz, fuzz->state);
    json_t *reservation = json_object_get(json_object_get(saved, "reservations"), id);
    const char *text = json_string_value(json_object_get(reservation, "owner"));
    snprintf(owner, size, "%s", text != NULL ? text : "");
    json_decref(saved);
}

/* Deciding and committing. */

static void inventory_fuzz_check_rejection(inventory_fuzz *fuzz, const arb_decision *decision)
{
    ARB_ASSERT(decision->code < 0);
    ARB_ASSERT(strcmp(arb_err_name(decision->code), "UNKNOWN_ERROR") != 0);
    ARB_ASSERT(decision->event_count == 0 && decision->result == NULL);
    ARB_ASSERT(decision->message[0] != '\0');
    ARB_ASSERT(memchr(decision->message, '\0', sizeof decision->message) != NULL);
    if (decision->details != NULL) {
        ARB_ASSERT(json_is_object(decision->details));
        inventory_fuzz_assert_canonical(fuzz, decision->details);
    }
    if (decision->code == ARB_ESOLD_OUT) {
        const char *sku = json_string_value(json_object_get(decision->details, "sku"));
        json_t *left = json_object_get(decision->details, "available");
        ARB_ASSERT(sku != NULL && json_is_integer(left));
        ARB_ASSERT(json_integer_value(left) == inventory_fuzz_item_field(fuzz, sku, "available"));
    }
}

/* Evolve one event (data borrowed from the decision) at the next seq. */
static void inventory_fuzz_evolve(inventory_fuzz *fuzz, const arb_command *command,
                                  const char *type, json_t *data)
{
    arb_event event;
    memset(&event, 0, sizeof event);
    ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, INVENTORY_FUZZ_STREAM) == 0);
    ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, type) == 0);
    ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, command->principal.id) == 0);
    event.seq = fuzz->next_seq++;
    event.client_seq = command->client_seq;
    event.applied_at_ms = fuzz->now_ms;
    event.data = json_incref(data);
    int rc = fuzz->rules->evolve(fuzz->state, &event, &fuzz->sink);
    if (rc != 0)
        fprintf(stderr, "inventory_decide_fuzz: evolve refused its own %s event: %d\n", type, rc);
    ARB_ASSERT(rc == 0);
    if (strcmp(type, "reserved") == 0)
        inventory_fuzz_remember_id(fuzz, &event);
    inventory_fuzz_log(fuzz, &event);
}

/* What an acceptance must look like for its action and proposer. */
static void inventory_fuzz_check_acceptance(inventory_fuzz *fuzz, const arb_command *command,
                                            const arb_decision *decision)
{
    const char *action = command->action;
    arb_role role = command->principal.role;
    const arb_decision_event *event = &decision->events[0];
    ARB_ASSERT(decision->event_count == 1 && decision->details == NULL);
    ARB_ASSERT(json_is_object(event->data));
    inventory_fuzz_assert_canonical(fuzz, event->data);
    ARB_ASSERT(fuzz->canon.len <= ARB_ARGS_BYTES_MAX);
    if (decision->result != NULL)
        inventory_fuzz_assert_canonical(fuzz, decision->result);
    if (strcmp(action, "add_item") == 0 || strcmp(action, "restock") == 0)
        ARB_ASSERT(role != ARB_ROLE_USER);
    if (strcmp(action, "expire") == 0)
        ARB_ASSERT(role == ARB_ROLE_SYSTEM);
    if (strcmp(event->type, "reserved") == 0) {
        char id[32];
        snprintf(id, sizeof id, "r%" PRIu64, fuzz->next_seq);
        ARB_ASSERT(strcmp(json_string_value(json_object_get(event->data, "reservation")), id) == 0);
        ARB_ASSERT(strcmp(json_string_value(json_object_get(event->data, "owner")),
                          command->principal.id) == 0);
        ARB_ASSERT(json_equal(json_object_get(decision->result, "reservation"),
                              json_object_get(event->data, "reservation")));
    }
    if (strcmp(action, "confirm") == 0 || strcmp(action, "release") == 0) {
        char owner[ARB_CLIENT_ID_BYTES_MAX + 1];
        const char *id = json_string_value(json_object_get(event->data, "reservation"));
        ARB_ASSERT(id != NULL);
        inventory_fuzz_owner(fuzz, id, owner, sizeof owner);
        ARB_ASSERT(strcmp(owner, command->principal.id) == 0);
    }
}

static void inventory_fuzz_trace(const arb_command *command, const arb_decision *decision)
{
    char *args = json_dumps(command->args, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf(stderr, "%s(%d) %s %s -> %s", command->principal.id, (int)command->principal.role,
            command->action, args != NULL ? args : "?", arb_err_name(decision->code));
    for (size_t i = 0; i < decision->event_count; i++)
        fprintf(stderr, " %s", decision->events[i].type);
    fprintf(stderr, decision->code != 0 ? " (%s)\n" : "\n", decision->message);
    free(args);
}

/* Propose action(args) as client_id/role; steals args. */
static void inventory_fuzz_propose(inventory_fuzz *fuzz, const char *client_id, arb_role role,
                                   const char *action, json_t *args)
{
    arb_command command;
    arb_command_init(&command);
    int rc = arb_command_set(&command, client_id, role, ++fuzz->client_seq, INVENTORY_FUZZ_STREAM,
                             action, args);
    ARB_ASSERT(rc == 0);
    json_decref(args);
    arb_ctx ctx = {.now_ms = fuzz->now_ms,
                   .next_seq = fuzz->next_seq,
                   .version = fuzz->next_seq - 1,
                   .random_bytes = NULL,
                   .random_user = NULL};
    bool compare = fuzz->client_seq % INVENTORY_FUZZ_UNCHANGED_EVERY == 0;
    json_t *before = compare ? inventory_fuzz_save(fuzz, fuzz->state) : NULL;
    arb_decision decision;
    arb_decision_init(&decision);
    fuzz->rules->decide(fuzz->state, &command, &ctx, &decision);
    if (compare) {
        json_t *after = inventory_fuzz_save(fuzz, fuzz->state);
        ARB_ASSERT(json_equal(before, after)); /* decide must not change the state */
        json_decref(before);
        json_decref(after);
    }
    if (fuzz->trace)
        inventory_fuzz_trace(&command, &decision);
    if (decision.code != 0) {
        inventory_fuzz_check_rejection(fuzz, &decision);
    } else {
        inventory_fuzz_check_acceptance(fuzz, &command, &decision);
        inventory_fuzz_evolve(fuzz, &command, decision.events[0].type, decision.events[0].data);
        inventory_fuzz_check_state(fuzz, fuzz->state);
    }
    arb_decision_clear(&decision);
    arb_command_clear(&command);
}

/* An action proposed by a principal the input chooses. */
static void inventory_fuzz_action_step(inventory_fuzz *fuzz, inventory_fuzz_action action)
{
    ARB_ASSERT((size_t)action < INVENTORY_FUZZ_COUNT(inventory_fuzz_action_names));
    uint8_t who = arb_fuzz_u8(&fuzz->in);
    arb_role role = ARB_ROLE_USER;
    const char *client_id =
        inventory_fuzz_users[(who >> 2) % INVENTORY_FUZZ_COUNT(inventory_fuzz_users)];
    if (who % 4 == 0) {
        role = ARB_ROLE_ADMIN;
        client_id = "admin";
    } else if (who % 4 == 2) {
        role = ARB_ROLE_SYSTEM;
        client_id = "$system";
    }
    json_t *args = inventory_fuzz_args(fuzz, action);
    const char *name = inventory_fuzz_action_names[action];
    if (action == INVENTORY_FUZZ_UNKNOWN) {
        static const char *const unknown[] = {"nonsense", "", "RESERVE", "reserve ", "confirmx"};
        name = unknown[who % INVENTORY_FUZZ_COUNT(unknown)];
    }
    inventory_fuzz_propose(fuzz, client_id, role, name, args);
}

/* Clock and timers. */

static void inventory_fuzz_advance(inventory_fuzz *fuzz)
{
    static const int64_t deltas_ms[] = {
        0, 1, 999, 1000, 1001, 59999, 60000, 3600 * 1000LL, ARB_INVENTORY_TTL_S_MAX * 1000LL,
    };
    int64_t delta = deltas_ms[arb_fuzz_u8(&fuzz->in) % INVENTORY_FUZZ_COUNT(deltas_ms)];
    fuzz->now_ms = delta > INVENTORY_FUZZ_NOW_MAX_MS - fuzz->now_ms ? INVENTORY_FUZZ_NOW_MAX_MS
                                                                    : fuzz->now_ms + delta;
}

/* Propose every due timer as the system, as the engine's tick does; a stale
 * one is rejected and dropped. */
static void inventory_fuzz_fire(inventory_fuzz *fuzz)
{
    inventory_fuzz_timer due[INVENTORY_FUZZ_TIMERS_MAX];
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
        json_t *args = json_pack("{s:s}", "reservation", due[i].reservation);
        ARB_ASSERT(args != NULL);
        inventory_fuzz_propose(fuzz, "$system", ARB_ROLE_SYSTEM, "expire", args);
    }
}

/* Snapshots: save -> load (the recovery path) -> save, then go on with the
 * loaded state and the timers it reported. */

static size_t inventory_fuzz_open_count(const json_t *snapshot)
{
    size_t open = 0;
    const char *id;
    json_t *reservation;
    json_object_foreach (json_object_get(snapshot, "reservations"), id, reservation) {
        const char *status = json_string_value(json_object_get(reservation, "status"));
        open += status != NULL && strcmp(status, "reserved") == 0;
    }
    return open;
}

static void inventory_fuzz_round_trip(inventory_fuzz *fuzz)
{
    json_t *saved = inventory_fuzz_save(fuzz, fuzz->state);
    inventory_fuzz_assert_canonical(fuzz, saved);
    memset(&fuzz->timers, 0, sizeof fuzz->timers);
    void *loaded = NULL;
    int rc = fuzz->rules->snapshot_load(saved, fuzz->next_seq - 1, &loaded, &fuzz->sink);
    ARB_ASSERT(rc == 0 && loaded != NULL);
    ARB_ASSERT(fuzz->timers.reported == inventory_fuzz_open_count(saved));
    if (fuzz->closed_kept_set)
        arb__inventory_set_closed_kept(loaded, fuzz->closed_kept);
    inventory_fuzz_check_state(fuzz, loaded);
    json_t *again = inventory_fuzz_save(fuzz, loaded);
    ARB_ASSERT(json_equal(saved, again));
    json_decref(again);
    json_decref(saved);
    fuzz->rules->state_free(fuzz->state);
    fuzz->state = loaded;
}

/* Hand-made events: what evolve does with an event decide did not make. */

static json_t *inventory_fuzz_event_data(inventory_fuzz *fuzz, size_t type)
{
    json_t *data = json_object();
    ARB_ASSERT(data != NULL);
    char id[32];
    switch (type) {
    case 0: /* item_added */
        inventory_fuzz_set(data, "sku", inventory_fuzz_sku(fuzz));
        inventory_fuzz_set(data, "stock", inventory_fuzz_int(fuzz));
        inventory_fuzz_set(data, "name", inventory_fuzz_item_name(fuzz));
        inventory_fuzz_set(data, "price", inventory_fuzz_int(fuzz));
        break;
    case 1: /* restocked */
        inventory_fuzz_set(data, "sku", inventory_fuzz_sku(fuzz));
        inventory_fuzz_set(data, "quantity", inventory_fuzz_int(fuzz));
        break;
    case 2: /* reserved */
        snprintf(id, sizeof id, "r%" PRIu64, fuzz->next_seq);
        inventory_fuzz_set(data, "reservation",
                           arb_fuzz_u8(&fuzz->in) < 200 ? json_string(id)
                                                        : inventory_fuzz_reservation(fuzz));
        inventory_fuzz_set(data, "owner",
                           inventory_fuzz_text(fuzz, inventory_fuzz_users,
                                               INVENTORY_FUZZ_COUNT(inventory_fuzz_users),
                                               ARB_CLIENT_ID_BYTES_MAX));
        inventory_fuzz_set(data, "items", inventory_fuzz_lines(fuzz));
        inventory_fuzz_set(data, "expires_at", inventory_fuzz_int(fuzz));
        break;
    case 3: /* confirmed */
    case 4: /* released */
    case 5: /* expired */
        inventory_fuzz_set(data, "reservation", inventory_fuzz_reservation(fuzz));
        inventory_fuzz_set(data, "items", inventory_fuzz_lines(fuzz));
        break;
    default:
        break;
    }
    uint8_t flags = arb_fuzz_u8(&fuzz->in);
    if (flags & 2u)
        inventory_fuzz_drop_key(fuzz, data);
    if (flags & 4u)
        inventory_fuzz_set(data, "extra", json_integer(1));
    if ((flags & 24u) == 24u) {
        json_decref(data);
        data = json_pack("[s]", "not an object");
        ARB_ASSERT(data != NULL);
    }
    return data;
}

static void inventory_fuzz_forged_event(inventory_fuzz *fuzz)
{
    static const char *const types[] = {
        "item_added", "restocked", "reserved", "confirmed", "released", "expired", "bogus", "",
    };
    size_t type = arb_fuzz_u8(&fuzz->in) % INVENTORY_FUZZ_COUNT(types);
    arb_event event;
    memset(&event, 0, sizeof event);
    ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, INVENTORY_FUZZ_STREAM) == 0);
    ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, types[type]) == 0);
    ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, "admin") == 0);
    event.seq = fuzz->next_seq;
    event.client_seq = ++fuzz->client_seq;
    event.applied_at_ms = fuzz->now_ms;
    event.data = inventory_fuzz_event_data(fuzz, type);
    json_t *before = inventory_fuzz_save(fuzz, fuzz->state);
    size_t timers_before = fuzz->timers.reported;
    int rc = fuzz->rules->evolve(fuzz->state, &event, &fuzz->sink);
    if (fuzz->trace)
        fprintf(stderr, "forged %s event -> %s\n", types[type], arb_err_name(rc));
    if (rc == 0) {
        inventory_fuzz_check_state(fuzz, fuzz->state);
        fuzz->next_seq++;
        if (type == 2)
            inventory_fuzz_remember_id(fuzz, &event);
        inventory_fuzz_log(fuzz, &event);
    } else {
        /* Refused: nothing changed, no deadline reported. */
        ARB_ASSERT(rc == ARB_ECORRUPT);
        json_t *after = inventory_fuzz_save(fuzz, fuzz->state);
        ARB_ASSERT(json_equal(before, after));
        ARB_ASSERT(fuzz->timers.reported == timers_before);
        json_decref(after);
        arb_event_clear(&event);
    }
    json_decref(before);
}

/* Remember at most 0..3 closed reservations from now on. Every state loaded
 * from now on gets the same bound, and the final replay makes the same
 * change at the same point of the log. */
static void inventory_fuzz_forget(inventory_fuzz *fuzz)
{
    size_t kept = arb_fuzz_u8(&fuzz->in) % 4;
    if (fuzz->forget_count == INVENTORY_FUZZ_FORGETS_MAX)
        return;
    fuzz->forgets[fuzz->forget_count].log_index = fuzz->log_count;
    fuzz->forgets[fuzz->forget_count].kept = kept;
    fuzz->forget_count++;
    fuzz->closed_kept_set = true;
    fuzz->closed_kept = kept;
    if (fuzz->trace)
        fprintf(stderr, "remember %zu closed reservations\n", kept);
    arb__inventory_set_closed_kept(fuzz->state, kept);
    inventory_fuzz_check_state(fuzz, fuzz->state);
}

/* What one user sees: every item, only their reservations; other users'
 * reserved events without the owner, nothing else changed. */
static void inventory_fuzz_visibility(inventory_fuzz *fuzz)
{
    arb_principal viewer = {.role = ARB_ROLE_USER};
    const char *id = inventory_fuzz_users[arb_fuzz_u8(&fuzz->in) % 4];
    ARB_ASSERT(arb_copy_name(viewer.id, sizeof viewer.id, id) == 0);
    json_t *view = fuzz->rules->view(fuzz->state, &viewer);
    json_t *all = fuzz->rules->view(fuzz->state, NULL);
    ARB_ASSERT(view != NULL && all != NULL);
    inventory_fuzz_assert_canonical(fuzz, view);
    ARB_ASSERT(json_equal(json_object_get(view, "items"), json_object_get(all, "items")));
    size_t own = 0;
    const char *key;
    json_t *reservation;
    json_object_foreach (json_object_get(all, "reservations"), key, reservation) {
        bool mine = strcmp(json_string_value(json_object_get(reservation, "owner")), id) == 0;
        json_t *seen = json_object_get(json_object_get(view, "reservations"), key);
        ARB_ASSERT(mine ? json_equal(seen, reservation) : seen == NULL);
        own += mine;
    }
    ARB_ASSERT(json_object_size(json_object_get(view, "reservations")) == own);
    json_decref(view);
    json_decref(all);
    size_t first = fuzz->log_count > INVENTORY_FUZZ_REDACT_RECENT
                       ? fuzz->log_count - INVENTORY_FUZZ_REDACT_RECENT
                       : 0;
    for (size_t i = first; i < fuzz->log_count; i++) {
        const arb_event *event = &fuzz->log[i];
        json_t *seen = fuzz->rules->redact(event, &viewer);
        ARB_ASSERT(seen != NULL);
        const char *owner = json_string_value(json_object_get(event->data, "owner"));
        if (strcmp(event->type, "reserved") == 0 && owner != NULL && strcmp(owner, id) != 0) {
            ARB_ASSERT(json_object_get(seen, "owner") == NULL);
            ARB_ASSERT(json_object_size(seen) + 1 == json_object_size(event->data));
            json_t *copy = json_copy(event->data);
            ARB_ASSERT(copy != NULL && json_object_del(copy, "owner") == 0);
            ARB_ASSERT(json_equal(copy, seen));
            json_decref(copy);
        } else {
            ARB_ASSERT(json_equal(seen, event->data));
        }
        json_decref(seen);
    }
}

/* The program. */

static void inventory_fuzz_step(inventory_fuzz *fuzz)
{
    uint8_t op = arb_fuzz_u8(&fuzz->in) % 16;
    if (op < INVENTORY_FUZZ_ACTION_COUNT) {
        inventory_fuzz_action_step(fuzz, (inventory_fuzz_action)op);
        return;
    }
    switch (op) {
    case 8:
        inventory_fuzz_advance(fuzz);
        if (fuzz->trace)
            fprintf(stderr, "clock -> %" PRId64 "\n", fuzz->now_ms);
        break;
    case 9:
        if (fuzz->trace)
            fprintf(stderr, "fire due timers (%zu pending)\n", fuzz->timers.count);
        inventory_fuzz_fire(fuzz);
        break;
    case 10:
        if (fuzz->trace)
            fprintf(stderr, "snapshot round trip\n");
        inventory_fuzz_round_trip(fuzz);
        break;
    case 11:
        inventory_fuzz_forged_event(fuzz);
        break;
    case 12:
        inventory_fuzz_forget(fuzz);
        break;
    case 13:
        inventory_fuzz_visibility(fuzz);
        break;
    case 14: /* the hot actions once more, so that programs reach them often */
        inventory_fuzz_action_step(fuzz, INVENTORY_FUZZ_RESERVE);
        break;
    default:
        inventory_fuzz_action_step(fuzz, INVENTORY_FUZZ_RESERVE_CART);
        break;
    }
}

/* The log alone must replay to the same state. */
static void inventory_fuzz_replay(inventory_fuzz *fuzz)
{
    void *fresh = NULL;
    ARB_ASSERT(fuzz->rules->state_new(&fresh) == 0);
    size_t mark = 0;
    for (size_t i = 0; i <= fuzz->log_count; i++) {
        for (; mark < fuzz->forget_count && fuzz->forgets[mark].log_index == i; mark++)
            arb__inventory_set_closed_kept(fresh, fuzz->forgets[mark].kept);
        if (i < fuzz->log_count)
            ARB_ASSERT(fuzz->rules->evolve(fresh, &fuzz->log[i], NULL) == 0);
    }
    ARB_ASSERT(mark == fuzz->forget_count);
    inventory_fuzz_check_state(fuzz, fresh);
    json_t *replayed = inventory_fuzz_save(fuzz, fresh);
    json_t *live = inventory_fuzz_save(fuzz, fuzz->state);
    ARB_ASSERT(json_equal(replayed, live));
    json_decref(replayed);
    json_decref(live);
    fuzz->rules->state_free(fresh);
}

int arb_fuzz_inventory_decide(const uint8_t *data, size_t size)
{
    inventory_fuzz *fuzz = calloc(1, sizeof *fuzz);
    ARB_ASSERT(fuzz != NULL);
    arb_fuzz_reader_init(&fuzz->in, data, size);
    fuzz->rules = &arb_rules_inventory;
    ARB_ASSERT(fuzz->rules->state_new(&fuzz->state) == 0);
    fuzz->now_ms = INVENTORY_FUZZ_NOW_START_MS;
    fuzz->next_seq = 1;
    fuzz->sink.add = inventory_fuzz_timer_add;
    fuzz->sink.user = &fuzz->timers;
    arb_buf_init(&fuzz->canon, ARB_SNAPSHOT_BYTES_MAX);
    fuzz->trace = getenv("ARB_FUZZ_TRACE") != NULL;

    for (size_t step = 0; step < INVENTORY_FUZZ_STEPS_MAX && !arb_fuzz_reader_done(&fuzz->in);
         step++)
        inventory_fuzz_step(fuzz);
    if (!fuzz->log_full)
        inventory_fuzz_replay(fuzz);

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
    return arb_fuzz_inventory_decide(data, size);
}
#endif
