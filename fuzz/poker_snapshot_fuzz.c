/*
 * poker_snapshot_fuzz.c - fuzz target for the table's snapshot_load and
 * view_load, the parsers of a stored (possibly tampered or torn) table and
 * of a view a client received.
 *
 * Input: one byte that picks the seq the JSON is loaded at, then JSON text.
 * The byte modulo 4: 0 the largest seq (2^53-1), 1 the highest seat version
 * in the JSON, 2 one less, 3 the byte divided by 4. So a seed that starts
 * with ' ' loads at 2^53-1 and one that starts with '!' at its own
 * versions. When the text parses to an object it goes to
 * arb_rules_poker.snapshot_load, and to view_load as a user (the first
 * seated player, else "p0") and as an admin. Properties:
 *   - a refused load gives ARB_ECORRUPT and no state, and leaks nothing;
 *   - an accepted snapshot gives a state on which check() holds, whose
 *     views (system, admin, every seated player, a spectator) and snapshot
 *     are canonical JSON; save -> load -> save is a fixed point; every
 *     seated player's view loads back with view_load into a partial state
 *     whose view is that view; a fixed round of commands (the player to
 *     act folds, checks, calls, bets, raises, goes all in; a player sits,
 *     tops up, sits out and in, leaves) decides with randomness, and every
 *     acceptance evolves with check() holding after each event (unless the
 *     seq is within 256 of 2^53-1, where no stream can go on);
 *   - an accepted view gives a partial state that is usable: its view works
 *     and is canonical, view -> view_load -> view is a fixed point, and the
 *     same round of commands from the viewer (no randomness) decides
 *     without crashing, an acceptance evolving into the partial state.
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
#include "rules/poker/poker.h"
#include "rules/poker/poker_internal.h"

#define POKER_SNAPSHOT_FUZZ_STREAM "table:fuzz"
/* The round of commands needs seqs after the loaded one, and no stream
 * goes past 2^53-1 (the module asserts its events' seqs stay below): a
 * state loaded at a later seq is only checked, not used. */
#define POKER_SNAPSHOT_FUZZ_SEQ_USABLE ((uint64_t)ARB_JSON_INT_MAX - 256)

typedef struct poker_snapshot_fuzz {
    const arb_rules *rules;
    uint64_t seq; /* the loaded state's version; events follow it */
    uint64_t client_seq;
    uint64_t rng;
    arb_buf canon;
} poker_snapshot_fuzz;

static void poker_snapshot_fuzz_random_bytes(void *user, void *buf, size_t len)
{
    uint64_t *s = user;
    for (size_t i = 0; i < len; i++) {
        *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        ((uint8_t *)buf)[i] = (uint8_t)(*s >> 56);
    }
}

static void poker_snapshot_fuzz_assert_canonical(poker_snapshot_fuzz *fuzz, const json_t *value)
{
    ARB_ASSERT(value != NULL);
    arb_buf_reset(&fuzz->canon);
    ARB_ASSERT(arb_canon_json(&fuzz->canon, value) == 0);
}

static json_t *poker_snapshot_fuzz_save(const poker_snapshot_fuzz *fuzz, const void *state)
{
    json_t *saved = NULL;
    ARB_ASSERT(fuzz->rules->snapshot_save(state, &saved) == 0 && json_is_object(saved));
    return saved;
}

static void poker_snapshot_fuzz_check(const poker_snapshot_fuzz *fuzz, const void *state)
{
    char why[256];
    int rc = fuzz->rules->check(state, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "poker_snapshot_fuzz: check failed: %s\n", why);
    ARB_ASSERT(rc == 0);
}

/* The highest seat version the JSON mentions. */
static uint64_t poker_snapshot_fuzz_versions(const json_t *json)
{
    uint64_t highest = 0;
    size_t i;
    json_t *seat;
    json_array_foreach (json_object_get(json, "seats"), i, seat) {
        json_int_t version = json_integer_value(json_object_get(seat, "version"));
        if (version > 0 && (uint64_t)version > highest)
            highest = (uint64_t)version;
    }
    return highest;
}

/* Decide one command on state (full with randomness, or partial without);
 * commit what is accepted as the engine would. */
static void poker_snapshot_fuzz_propose(poker_snapshot_fuzz *fuzz, void *state, bool full,
                                        const char *who, const char *action, json_t *args)
{
    ARB_ASSERT(args != NULL);
    arb_command command;
    arb_command_init(&command);
    ARB_ASSERT(arb_command_set(&command, who, ARB_ROLE_USER, ++fuzz->client_seq,
                               POKER_SNAPSHOT_FUZZ_STREAM, action, args) == 0);
    json_decref(args);
    arb_ctx ctx = {.now_ms = 1000,
                   .next_seq = fuzz->seq + 1,
                   .version = fuzz->seq,
                   .random_bytes = full ? poker_snapshot_fuzz_random_bytes : NULL,
                   .random_user = &fuzz->rng};
    arb_decision decision;
    arb_decision_init(&decision);
    fuzz->rules->decide(state, &command, &ctx, &decision);
    if (decision.code != 0) {
        ARB_ASSERT(decision.code < 0 && decision.event_count == 0);
        ARB_ASSERT(strcmp(arb_err_name(decision.code), "UNKNOWN_ERROR") != 0);
        ARB_ASSERT(full ? decision.code != ARB_EUNPREDICTABLE : true);
    }
    for (size_t i = 0; decision.code == 0 && i < decision.event_count; i++) {
        poker_snapshot_fuzz_assert_canonical(fuzz, decision.events[i].data);
        arb_event event;
        memset(&event, 0, sizeof event);
        ARB_ASSERT(arb_copy_name(event.stream, sizeof event.stream, command.stream) == 0);
        ARB_ASSERT(arb_copy_name(event.type, sizeof event.type, decision.events[i].type) == 0);
        ARB_ASSERT(arb_copy_name(event.client_id, sizeof event.client_id, who) == 0);
        event.seq = ++fuzz->seq;
        event.client_seq = command.client_seq;
        event.data = decision.events[i].data; /* borrowed */
        int rc = fuzz->rules->evolve(state, &event, NULL);
        if (rc != 0)
            fprintf(stderr, "poker_snapshot_fuzz: evolve refused its own %s event\n", event.type);
        ARB_ASSERT(rc == 0);
        if (full)
            poker_snapshot_fuzz_check(fuzz, state);
    }
    arb_decision_clear(&decision);
    arb_command_clear(&command);
}

/* The fixed round of commands. On a full state they come from the player
 * to act (betting) and from "p9" (seating); on a partial one from who. */
static void poker_snapshot_fuzz_use(poker_snapshot_fuzz *fuzz, void *state, bool full,
                                    const char *who)
{
    static const char *const moves[] = {"check", "call", "fold", "all_in"};
    const arb__poker_state *s = state;
    int64_t raise_to = s->current_bet + s->min_raise;
    int64_t big_blind = s->config.big_blind, buy_in = s->config.buy_in_min;
    for (size_t i = 0; i < 4; i++) {
        char actor[ARB_CLIENT_ID_BYTES_MAX + 1];
        snprintf(actor, sizeof actor, "%s",
                 full && s->hand_active && s->to_act >= 0 ? s->seats[s->to_act].player : who);
        if (actor[0] == '\0' || actor[0] == '$')
            snprintf(actor, sizeof actor, "p0");
        if (i == 1) {
            poker_snapshot_fuzz_propose(fuzz, state, full, actor, "raise",
                                        json_pack("{s:I}", "to", (json_int_t)raise_to));
            poker_snapshot_fuzz_propose(fuzz, state, full, actor, "bet",
                                        json_pack("{s:I}", "amount", (json_int_t)big_blind));
        }
        poker_snapshot_fuzz_propose(fuzz, state, full, actor, moves[i], json_object());
    }
    const char *sitter = full ? "p9" : who;
    poker_snapshot_fuzz_propose(fuzz, state, full, sitter, "sit",
                                json_pack("{s:i, s:I}", "seat", 0, "buy_in", (json_int_t)buy_in));
    poker_snapshot_fuzz_propose(fuzz, state, full, sitter, "top_up",
                                json_pack("{s:i}", "amount", 1));
    poker_snapshot_fuzz_propose(fuzz, state, full, sitter, "sit_out", json_object());
    poker_snapshot_fuzz_propose(fuzz, state, full, sitter, "sit_in", json_object());
    poker_snapshot_fuzz_propose(fuzz, state, full, sitter, "leave", json_object());
}

/* A seated player's view of a full state loads into a partial state that
 * shows the same view. */
static void poker_snapshot_fuzz_player_views(poker_snapshot_fuzz *fuzz, const void *state)
{
    const arb__poker_state *s = state;
    for (int i = 0; i <= s->config.seat_count && i <= ARB_POKER_SEATS_MAX; i++) {
        arb_principal viewer = {.role = ARB_ROLE_USER};
        if (i < s->config.seat_count && i < ARB_POKER_SEATS_MAX && !s->seats[i].occupied)
            continue;
        const char *id =
            i < s->config.seat_count && i < ARB_POKER_SEATS_MAX ? s->seats[i].player : "spectator";
        if (arb_copy_name(viewer.id, sizeof viewer.id, id) != 0)
            continue;
        json_t *view = fuzz->rules->view(state, &viewer);
        poker_snapshot_fuzz_assert_canonical(fuzz, view);
        void *partial = NULL;
        int rc = fuzz->rules->view_load(view, fuzz->seq, &viewer, &partial);
        if (rc != 0) {
            char *text = json_dumps(view, JSON_COMPACT);
            fprintf(stderr, "poker_snapshot_fuzz: %s's view does not load: %s\n", viewer.id,
                    text != NULL ? text : "?");
            free(text);
        }
        ARB_ASSERT(rc == 0 && partial != NULL);
        json_t *again = fuzz->rules->view(partial, &viewer);
        ARB_ASSERT(json_equal(view, again));
        json_decref(again);
        json_decref(view);
        fuzz->rules->state_free(partial);
    }
}

static void poker_snapshot_fuzz_loaded(poker_snapshot_fuzz *fuzz, void *state)
{
    poker_snapshot_fuzz_check(fuzz, state);
    arb_principal system = {.id = "$system", .role = ARB_ROLE_SYSTEM};
    arb_principal admin = {.id = "admin", .role = ARB_ROLE_ADMIN};
    json_t *view = fuzz->rules->view(state, &system);
    poker_snapshot_fuzz_assert_canonical(fuzz, view);
    json_decref(view);
    view = fuzz->rules->view(state, &admin);
    poker_snapshot_fuzz_assert_canonical(fuzz, view);
    json_decref(view);

    json_t *saved = poker_snapshot_fuzz_save(fuzz, state);
    poker_snapshot_fuzz_assert_canonical(fuzz, saved);
    void *again = NULL;
    ARB_ASSERT(fuzz->rules->snapshot_load(saved, fuzz->seq, &again, NULL) == 0 && again != NULL);
    json_t *saved_again = poker_snapshot_fuzz_save(fuzz, again);
    ARB_ASSERT(json_equal(saved, saved_again));
    json_decref(saved_again);
    json_decref(saved);
    fuzz->rules->state_free(again);

    poker_snapshot_fuzz_player_views(fuzz, state);
    if (fuzz->seq <= POKER_SNAPSHOT_FUZZ_SEQ_USABLE)
        poker_snapshot_fuzz_use(fuzz, state, true, "p0");
}

static void poker_snapshot_fuzz_view_loaded(poker_snapshot_fuzz *fuzz, void *state,
                                            const arb_principal *viewer)
{
    json_t *view = fuzz->rules->view(state, viewer);
    poker_snapshot_fuzz_assert_canonical(fuzz, view);
    void *again = NULL;
    ARB_ASSERT(fuzz->rules->view_load(view, fuzz->seq, viewer, &again) == 0 && again != NULL);
    json_t *view_again = fuzz->rules->view(again, viewer);
    ARB_ASSERT(json_equal(view, view_again));
    json_decref(view_again);
    json_decref(view);
    fuzz->rules->state_free(again);
    void *copy = NULL;
    ARB_ASSERT(fuzz->rules->state_clone(state, &copy) == 0);
    if (fuzz->seq <= POKER_SNAPSHOT_FUZZ_SEQ_USABLE)
        poker_snapshot_fuzz_use(fuzz, copy, false, viewer->id);
    fuzz->rules->state_free(copy);
}

/* view_load as viewer; must refuse cleanly or give a usable state. */
static void poker_snapshot_fuzz_view(poker_snapshot_fuzz *fuzz, const json_t *input, uint64_t seq,
                                     const arb_principal *viewer)
{
    void *state = NULL;
    fuzz->seq = seq;
    int rc = fuzz->rules->view_load(input, seq, viewer, &state);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_ECORRUPT && state == NULL);
        return;
    }
    ARB_ASSERT(state != NULL);
    poker_snapshot_fuzz_view_loaded(fuzz, state, viewer);
    fuzz->rules->state_free(state);
}

static uint64_t poker_snapshot_fuzz_seq(uint8_t pick, const json_t *input)
{
    uint64_t versions = poker_snapshot_fuzz_versions(input);
    switch (pick % 4) {
    case 0:
        return (uint64_t)ARB_JSON_INT_MAX;
    case 1:
        return versions;
    case 2:
        return versions > 0 ? versions - 1 : 0;
    default:
        return pick / 4;
    }
}

int arb_fuzz_poker_snapshot(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    json_t *input = NULL;
    char why[256];
    if (arb_json_parse((const char *)data + 1, size - 1, ARB_SNAPSHOT_BYTES_MAX, &input, why,
                       sizeof why) != 0)
        return 0;
    if (!json_is_object(input)) {
        json_decref(input);
        return 0;
    }
    uint64_t seq = poker_snapshot_fuzz_seq(data[0], input);
    poker_snapshot_fuzz fuzz;
    memset(&fuzz, 0, sizeof fuzz);
    fuzz.rules = &arb_rules_poker;
    fuzz.rng = seq | 1;
    fuzz.seq = seq;
    arb_buf_init(&fuzz.canon, ARB_SNAPSHOT_BYTES_MAX);

    void *state = NULL;
    int rc = fuzz.rules->snapshot_load(input, seq, &state, NULL);
    if (rc != 0) {
        ARB_ASSERT(rc == ARB_ECORRUPT && state == NULL);
    } else {
        ARB_ASSERT(state != NULL);
        poker_snapshot_fuzz_loaded(&fuzz, state);
        fuzz.rules->state_free(state);
    }

    /* A user: the first seated player, else "p0". */
    arb_principal user = {.id = "p0", .role = ARB_ROLE_USER};
    size_t i;
    json_t *seat;
    json_array_foreach (json_object_get(input, "seats"), i, seat) {
        const char *player = json_string_value(json_object_get(seat, "player"));
        if (player != NULL && player[0] != '\0' && player[0] != '$' &&
            arb_copy_name(user.id, sizeof user.id, player) == 0)
            break;
    }
    poker_snapshot_fuzz_view(&fuzz, input, seq, &user);
    arb_principal admin = {.id = "admin", .role = ARB_ROLE_ADMIN};
    poker_snapshot_fuzz_view(&fuzz, input, seq, &admin);

    arb_buf_free(&fuzz.canon);
    json_decref(input);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_poker_snapshot(data, size);
}
#endif
