/*
 * poker_history.h - a finished hand of a table as text, in the format the
 * online rooms use for their hand histories (header, seats, posts, streets,
 * showdown, summary), followed by the hand's commitment and revealed seed.
 * docs/poker.md, "Hand history", shows an example.
 *
 * Two parts:
 *
 *   arb_poker_history_format  pure: the events of one hand (hand_started to
 *                             hand_ended, as one viewer sees them), the
 *                             table's settings and every seat's chips at the
 *                             start -> text. Deterministic, no I/O.
 *   arb_poker_history_read    finds hand n of a table through two callbacks
 *                             (the table's current view, and pages of its
 *                             events) and formats it. The callbacks do the
 *                             I/O, so this file stays free of the engine and
 *                             the store; the server and the CLI pass small
 *                             adapters over arb_engine_state and
 *                             arb_engine_events_as.
 *
 * What the text shows is what the events show: the caller passes the events
 * already redacted for the viewer (a player's own hole cards, the hands shown
 * at showdown, the seed revealed by hand_ended). The formatter never derives
 * a card it was not given, so a player's history holds no other player's
 * unshown cards; "Dealt to" lines are written for every dealt entry whose
 * cards are present (the viewer's own, or every seat for an unredacted read).
 *
 * Finding a hand. The events carry no stacks, so the chips each seat had when
 * hand n began are worked out backwards: from the stacks of the current view,
 * every event from the newest back to hand n's hand_started is undone (sat,
 * topped_up, left, posted, acted, bet_returned, pot_awarded move chips
 * behind). The cost is the events since hand n began, read in pages of
 * ARB_POKER_HISTORY_PAGE_EVENTS; the hand itself is held in memory, at most
 * ARB_POKER_HAND_EVENTS_MAX events, and its text is at most
 * ARB_POKER_HISTORY_BYTES_MAX bytes (ARB_ETOO_LARGE beyond either).
 *
 * Seats are written from 1 (seat 0 of the events is "Seat 1"), as in the
 * rooms' histories and the tools that read them.
 *
 * Ownership: every input is borrowed for the call; the text is appended to
 * the caller's buffer, whose maximum the caller sets (the functions also stop
 * at ARB_POKER_HISTORY_BYTES_MAX of their own).
 */
#ifndef ARB_RULES_POKER_HISTORY_H
#define ARB_RULES_POKER_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "arbiter/limits.h"
#include "core/buf.h"

/* The table's settings the text names (from the view's "table" object). */
typedef struct arb_poker_history_table {
    char name[ARB_POKER_TABLE_NAME_BYTES_MAX + 1];
    int seat_count;
    int64_t small_blind, big_blind, ante;
} arb_poker_history_table;

/* A seat when the hand began: its player ("" when free) and chips behind. */
typedef struct arb_poker_history_seat {
    char player[ARB_CLIENT_ID_BYTES_MAX + 1];
    int64_t stack;
} arb_poker_history_seat;

/* Write the history of one finished hand to out. events is a JSON array of
 * event objects ({seq, type, data, applied_at, ...} as arb_event_to_json
 * writes them), from the hand's hand_started to its hand_ended inclusive, in
 * seq order; seats[0..table->seat_count) are the seats as the hand began.
 * Returns 0; ARB_ECORRUPT when the events are not one whole hand of this
 * table (out holds a partial text then); ARB_ETOO_LARGE when the text would
 * pass ARB_POKER_HISTORY_BYTES_MAX or out's own maximum. */
int arb_poker_history_format(const arb_poker_history_table *table,
                             const arb_poker_history_seat *seats, const json_t *events,
                             arb_buf *out);

/* Where arb_poker_history_read gets a table's data. Each callback returns 0
 * or a negative code, which read returns as it is. */
typedef struct arb_poker_history_source {
    /* The table's current view (as docs/poker.md, "State and view") and
     * its version: a new reference. */
    int (*view)(void *user, json_t **view_out, uint64_t *version_out);
    /* The events with seq in (since_seq, since_seq + limit], as the viewer
     * may see them: a JSON array (new reference) in seq order. */
    int (*events)(void *user, uint64_t since_seq, uint64_t limit, json_t **events_out);
    void *user;
    /* At most this many events are walked back from the newest to the
     * hand (0: no bound). The server bounds it (the walk runs on its engine
     * thread); a hand further back is ARB_ETOO_LARGE there, and the local
     * CLI reads it. */
    uint64_t walk_max;
} arb_poker_history_source;

/* Hand number hand (1, 2, ...) of the table, formatted into out. Returns 0;
 * ARB_ETABLE_NOT_CREATED when the view holds no table; ARB_ENOTFOUND when
 * the table has not dealt that hand;
 * ARB_EHAND_IN_PROGRESS when the hand has not ended; ARB_ETOO_LARGE; the
 * callbacks' codes; ARB_ECORRUPT when the log does not add up. why (may be
 * NULL) receives a sentence for the user on failure. */
int arb_poker_history_read(const arb_poker_history_source *source, uint64_t hand, arb_buf *out,
                           char *why, size_t why_size);

#endif
