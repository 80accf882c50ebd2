/*
 * rules.h - the rule-module ABI: the pure, deterministic logic of one domain.
 *
 * A rule module is a table of functions for one stream KIND (ledger, shop,
 * table...). The engine runs it to decide; the client SDK runs the same code
 * to predict its optimistic draft. So a rule module:
 *
 *   - never performs I/O and never reads a clock or a random source of its
 *     own: time and randomness come only through arb_ctx;
 *   - decides without mutating state (decide takes it const), and evolves
 *     deterministically: the same state and event always give the same next
 *     state, so the log alone replays to the same state;
 *   - validates everything in a command: the engine has already checked the
 *     names and the idempotency key, nothing else.
 *
 * Life of a proposal through a module:
 *
 *     decide(state, cmd, ctx) --> decision: events + result   (accepted)
 *                             \-> decision: code + message      (rejected)
 *     for each event: evolve(state, event, timers)
 *
 * Timers: when an event (or a loaded snapshot) implies a deadline, the module
 * reports it to the timer sink; at that time the engine proposes
 * `action(args)` as the system principal through the ordinary path. A timer
 * may be stale by then (the hold was captured): decide then rejects it and the
 * engine drops the rejection silently.
 */
#ifndef ARBITER_RULES_H
#define ARBITER_RULES_H

#include <stdarg.h>

#include "arbiter/error.h"
#include "arbiter/types.h"

/* What decide may know besides the state and the command. Borrowed for the
 * duration of one decide call. */
typedef struct arb_ctx {
    int64_t now_ms;    /* the server's clock, Unix ms */
    uint64_t next_seq; /* the seq the decision's first event will get */
    uint64_t version;  /* the stream's current version (next_seq - 1) */
    /* Fill buf with len bytes from the server's CSPRNG. NULL in a client's
     * prediction: a module that needs randomness then rejects or defers. */
    void (*random_bytes)(void *user, void *buf, size_t len);
    void *random_user;
} arb_ctx;

/* Where a module reports deadlines. The sink copies what it needs: action is
 * borrowed for the call, args gets a new reference if kept. */
typedef struct arb_timer_sink {
    void (*add)(void *user, int64_t at_ms, const char *action, json_t *args);
    void *user;
} arb_timer_sink;

/* The decision buffer: decide fills it, the engine owns it and clears it. */
typedef struct arb_decision_event {
    char type[ARB_EVENT_TYPE_BYTES_MAX + 1];
    json_t *data; /* owned */
} arb_decision_event;

typedef struct arb_decision {
    int code; /* 0 accepted, else a rejection code */
    char message[ARB_MESSAGE_BYTES_MAX + 1];
    json_t *details; /* owned; rejected only; may be NULL */
    json_t *result;  /* owned; accepted only; may be NULL */
    size_t event_count;
    arb_decision_event events[ARB_DECISION_EVENTS_MAX];
} arb_decision;

void arb_decision_init(arb_decision *decision);
void arb_decision_clear(arb_decision *decision);

/* Append an event; steals the reference to data (an object). Returns
 * ARB_ELIMIT past ARB_DECISION_EVENTS_MAX (data is then released). */
int arb_decision_emit(arb_decision *decision, const char *type, json_t *data);

/* Reject with code. Steals details (may be NULL). The message is printf-
 * formatted; NULL uses arb_err_message(code). Drops any events emitted so
 * far and the result. Returns code, so `return arb_decision_reject(...)` reads. */
int arb_decision_reject(arb_decision *decision, int code, json_t *details, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Set the result (steals the reference). */
void arb_decision_set_result(arb_decision *decision, json_t *result);

typedef struct arb_rules {
    const char *kind; /* the KIND of streams it rules: "ledger" */

    /* A fresh, empty state. 0 or ARB_ENOMEM. */
    int (*state_new)(void **state_out);
    void (*state_free)(void *state);

    /* Decide a command against state. Fills decision (events + result, or a
     * rejection). Must not mutate state. */
    void (*decide)(const void *state, const arb_command *command, const arb_ctx *ctx,
                   arb_decision *decision);

    /* Apply one committed event. Returns 0, or ARB_ECORRUPT if the event does
     * not fit the state (a log that was not produced by decide). */
    int (*evolve)(void *state, const arb_event *event, const arb_timer_sink *timers);

    /* The state as the viewer may see it. New reference; NULL on ENOMEM. */
    json_t *(*view)(const void *state, const arb_principal *viewer);

    /* An event's data as the viewer may see it: a new reference, or NULL when
     * the viewer may not see the event at all. */
    json_t *(*redact)(const arb_event *event, const arb_principal *viewer);

    /* The whole state as JSON, and back. seq is the stream's version when the
     * snapshot was taken: a snapshot that mentions anything later (an entity
     * version, an id derived from a seq) is corrupt, and so is one that fails
     * the invariants or has unknown fields. load reports the state's deadlines
     * to timers (which may be NULL). save returns 0/ARB_ENOMEM; load
     * 0/ARB_ECORRUPT/ARB_ENOMEM. */
    int (*snapshot_save)(const void *state, json_t **snapshot_out);
    int (*snapshot_load)(const json_t *snapshot, uint64_t seq, void **state_out,
                         const arb_timer_sink *timers);

    /* Optional (NULL: clients cannot predict this KIND). A state built from
     * what viewer sees: view(state, viewer) taken at seq. The client SDK keeps
     * its confirmed state this way and predicts its draft on it, so the
     * result must evolve every event as redact(event, viewer) shows it to
     * this viewer, and decide the viewer's own commands as the server would
     * wherever the view holds what they need. It reports no timers (the
     * client runs none) and need not pass check(). 0/ARB_ECORRUPT/ARB_ENOMEM. */
    int (*view_load)(const json_t *view, uint64_t seq, const arb_principal *viewer,
                     void **state_out);

    /* Optional: a deep copy of state (a full or a view_load'ed one), for the
     * client SDK's draft, which copies its confirmed state at every rebase.
     * NULL: the client copies through view and view_load. 0/ARB_ENOMEM. */
    int (*state_clone)(const void *state, void **state_out);

    /* The domain's invariants. 0 when they hold; ARB_ECORRUPT with a
     * sentence in why when they do not; ARB_ENOMEM if it could not check. */
    int (*check)(const void *state, char *why, size_t why_size);

    /* Optional (NULL: every timer is proposed): whether a timer the module
     * reported (action, args) still has work to do in state when it falls
     * due. false: the engine drops it without a proposal, so a deadline
     * overtaken by events (a turn played in time) leaves nothing in the
     * log. A timer kept is decided as usual, so true is always safe. */
    bool (*timer_due)(const void *state, const char *action, const json_t *args);

    /* Optional (NULL: presence means nothing here): whether client_id's
     * coming online (online) or going offline matters to this stream now
     * (the poker table: a seated player's seat is held, or given back,
     * while they are away). When it does, the server proposes, as the
     * system, the action "presence" {player, online} on the stream. */
    bool (*presence)(const void *state, const char *client_id, bool online);

    /* Optional (NULL: none): an event type whose evolve on a full state
     * re-proves a promise of the domain beyond its invariants (the poker
     * table's "hand_started": the deck is the committed seed's and every
     * card dealt is the deck's), and the name arbiter verify counts those
     * replays under in its report ("fair_hands"). */
    const char *proof_event;
    const char *proof_name;
} arb_rules;

/* The built-in rule modules, found by KIND. NULL when none. */
const arb_rules *arb_rules_find(const char *kind);

/* Helpers every module uses to read args. Each returns 0, or
 * ARB_EINVALID_ARGUMENT (missing/wrong type) with the decision rejected and
 * the offending field named in details. */
int arb_args_string(const json_t *args, const char *key, size_t size_max, bool required,
                    const char **value_out, arb_decision *decision);
/* Integers in [min, max]; out-of-range or non-integer gives out_of_range_code. */
int arb_args_int(const json_t *args, const char *key, int64_t min, int64_t max, bool required,
                 int out_of_range_code, int64_t *value_out, arb_decision *decision);

#endif
