/*
 * poker_history.c - a finished hand as text (see poker_history.h for the
 * contract, docs/poker.md "Hand history" for an example).
 *
 * The formatter walks the hand's events once, in order, keeping what the
 * text needs and the events do not say: every seat's chips behind and bet
 * of the round (for "raises 20 to 40" and "and is all-in"), the street a
 * seat folded on, what it won, the cards shown. It writes each line as its
 * event comes, except two sections that the rooms write at a fixed place:
 * "*** HOLE CARDS ***" (after the posts, before the first other event) and
 * "*** SHOW DOWN ***" (before the first pot of a hand that was shown down,
 * with every shown hand named by the evaluator's category).
 *
 * The reader walks the log backwards from the current view to hand n (the
 * events carry no stacks, see the header), undoing every chip movement.
 * Invariants it checks, as the log's own consistency: no stack goes below
 * zero, a seat is taken back by exactly the buy-in it was taken with, and
 * the hand it finds starts with hand_started n and ends with hand_ended n.
 * The formatter checks that the pots paid out equal the chips put in.
 */
#include "rules/poker/poker_history.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "rules/common.h"
#include "rules/poker/eval.h"

/* One line of text, at most: a name, a few numbers and two hands of cards,
 * or the summary's pots (up to one per seat, 30 bytes each). */
#define LINE_BYTES_MAX 512
#define HOLE_CARDS 2
#define BOARD_CARDS 5
#define STREETS 4

static const char *const street_names[STREETS] = {"preflop", "flop", "turn", "river"};
/* The summary's words for where a seat folded. */
static const char *const fold_words[STREETS] = {"before Flop", "on the Flop", "on the Turn",
                                                "on the River"};

/* The evaluator's categories as the rooms write them after a shown hand. */
static const char *const category_words[ARB_POKER_CATEGORY_COUNT] = {
    "high card", "a pair",       "two pair",       "three of a kind",  "a straight",
    "a flush",   "a full house", "four of a kind", "a straight flush",
};

typedef struct history_seat {
    const char *player; /* borrowed from the caller's seats */
    bool dealt, folded, shown, announced, mucked, cards_known;
    uint8_t cards[HOLE_CARDS];
    int fold_street;
    int64_t stack, bet, committed, won;
} history_seat;

typedef struct history {
    const arb_poker_history_table *table;
    arb_buf *out;
    size_t out_start; /* out->len when the hand began: the text's bound counts from here */
    int rc;           /* the first error; nothing more is written after one */
    uint64_t hand;
    int button, small_seat, big_seat;
    int street;
    int64_t current_bet;
    uint8_t board[BOARD_CARDS];
    int board_count;
    bool hole_written, showdown_written, ended;
    int pot_count, pots_paid;
    int64_t pots[ARB_POKER_SEATS_MAX];
    int shown_order[ARB_POKER_SEATS_MAX];
    int shown_count;
    const char *commitment, *seed;
    const char *entropy; /* the players' entropy mixed into the deck; NULL: none */
    history_seat seats[ARB_POKER_SEATS_MAX];
} history;

/* ---- Writing ---- */

static void put(history *h, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void put(history *h, const char *format, ...)
{
    if (h->rc != 0)
        return;
    char line[LINE_BYTES_MAX + 2];
    va_list args;
    va_start(args, format);
    int len = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    ARB_ASSERT(len >= 0 && len <= LINE_BYTES_MAX);
    line[len] = '\n';
    if (h->out->len - h->out_start + (size_t)len + 1 > ARB_POKER_HISTORY_BYTES_MAX)
        h->rc = ARB_ETOO_LARGE;
    else
        h->rc = arb_buf_append(h->out, line, (size_t)len + 1);
}

static void corrupt(history *h)
{
    if (h->rc == 0)
        h->rc = ARB_ECORRUPT;
}

/* Cards as "Ah Kd Qs" (no brackets) into text. */
static void cards_text(const uint8_t *cards, int count, char *text, size_t size)
{
    ARB_ASSERT(size >= (size_t)count * 3 + 1);
    text[0] = '\0';
    for (int i = 0; i < count; i++) {
        char card[ARB_POKER_CARD_TEXT_SIZE];
        arb_poker_card_format(cards[i], card);
        size_t len = strlen(text);
        snprintf(text + len, size - len, "%s%s", i > 0 ? " " : "", card);
    }
}

static const char *name(const history *h, int seat)
{
    return h->seats[seat].player;
}

/* ---- Reading event data ---- */

static bool data_seat(const history *h, const json_t *data, int *seat_out)
{
    int64_t seat;
    if (!arb__rules_data_int(data, "seat", 0, h->table->seat_count - 1, &seat))
        return false;
    *seat_out = (int)seat;
    return true;
}

static bool data_chips(const json_t *data, const char *key, int64_t *value_out)
{
    return arb__rules_data_int(data, key, 0, ARB_JSON_INT_MAX, value_out);
}

/* An array of exactly count card strings. */
static bool data_cards(const json_t *array, int count, uint8_t *cards)
{
    if (!json_is_array(array) || json_array_size(array) != (size_t)count)
        return false;
    for (int i = 0; i < count; i++) {
        const char *text = json_string_value(json_array_get(array, (size_t)i));
        if (text == NULL || arb_poker_card_parse(text, &cards[i]) != 0)
            return false;
    }
    return true;
}

/* ---- Sections ---- */

static void write_hole_cards(history *h)
{
    if (h->hole_written)
        return;
    h->hole_written = true;
    put(h, "*** HOLE CARDS ***");
    for (int i = 0; i < h->table->seat_count; i++) {
        const history_seat *s = &h->seats[i];
        if (!s->dealt || !s->cards_known)
            continue;
        char text[16];
        cards_text(s->cards, HOLE_CARDS, text, sizeof text);
        put(h, "Dealt to %s [%s]", s->player, text);
    }
}

/* The category of a shown hand with the board, or NULL when the board is
 * too short to make five cards. */
static const char *category(const history *h, const history_seat *s)
{
    if (HOLE_CARDS + h->board_count < ARB_POKER_HAND_CARDS_MIN)
        return NULL;
    uint8_t cards[ARB_POKER_HAND_CARDS_MAX];
    memcpy(cards, s->cards, HOLE_CARDS);
    memcpy(cards + HOLE_CARDS, h->board, (size_t)h->board_count);
    uint32_t rank = arb_poker_eval(cards, (size_t)(HOLE_CARDS + h->board_count));
    return category_words[arb_poker_category_of(rank)];
}

static void announce(history *h, int seat)
{
    history_seat *s = &h->seats[seat];
    char text[16];
    cards_text(s->cards, HOLE_CARDS, text, sizeof text);
    const char *what = category(h, s);
    if (what != NULL)
        put(h, "%s: shows [%s] (%s)", s->player, text, what);
    else
        put(h, "%s: shows [%s]", s->player, text);
    s->announced = true;
}

/* "*** SHOW DOWN ***" once, then every hand shown before it (an all-in's
 * hands are turned up before the board is out) named with its category. */
static void write_showdown(history *h)
{
    if (h->showdown_written)
        return;
    h->showdown_written = true;
    put(h, "*** SHOW DOWN ***");
    for (int k = 0; k < h->shown_count; k++)
        if (!h->seats[h->shown_order[k]].announced)
            announce(h, h->shown_order[k]);
}

/* ---- Events ---- */

static void on_hand_started(history *h, const json_t *data, int64_t applied_at_ms,
                            const arb_poker_history_seat *seats)
{
    int64_t hand, button;
    const json_t *dealt = json_object_get(data, "dealt");
    if (!arb__rules_data_int(data, "hand", 1, ARB_JSON_INT_MAX, &hand) ||
        !arb__rules_data_int(data, "button", 0, h->table->seat_count - 1, &button) ||
        !arb__rules_data_string(data, "commitment", 64, 64, &h->commitment) ||
        (json_is_string(json_object_get(data, "entropy")) &&
         !arb__rules_data_string(data, "entropy", 64, 64, &h->entropy)) ||
        !json_is_array(dealt) || json_array_size(dealt) < 2 ||
        json_array_size(dealt) > (size_t)h->table->seat_count) {
        corrupt(h);
        return;
    }
    h->hand = (uint64_t)hand;
    h->button = (int)button;
    for (size_t i = 0; i < json_array_size(dealt); i++) {
        const json_t *entry = json_array_get(dealt, i);
        const char *player;
        int seat;
        if (!data_seat(h, entry, &seat) ||
            !arb__rules_data_string(entry, "player", 1, ARB_CLIENT_ID_BYTES_MAX, &player) ||
            strcmp(player, seats[seat].player) != 0 || h->seats[seat].dealt) {
            corrupt(h);
            return;
        }
        history_seat *s = &h->seats[seat];
        s->dealt = true;
        const json_t *cards = json_object_get(entry, "cards");
        if (!json_is_null(cards) && cards != NULL) {
            if (!data_cards(cards, HOLE_CARDS, s->cards))
                corrupt(h);
            s->cards_known = true;
        }
    }
    time_t seconds = (time_t)(applied_at_ms / 1000);
    struct tm utc;
    char when[32] = "unknown time";
    if (applied_at_ms >= 0 && gmtime_r(&seconds, &utc) != NULL)
        strftime(when, sizeof when, "%Y/%m/%d %H:%M:%S UTC", &utc);
    put(h, "Arbiter Hand #%llu: Hold'em No Limit (%lld/%lld) - %s", (unsigned long long)h->hand,
        (long long)h->table->small_blind, (long long)h->table->big_blind, when);
    put(h, "Table '%s' %d-max Seat #%d is the button", h->table->name, h->table->seat_count,
        h->button + 1);
    for (int i = 0; i < h->table->seat_count; i++)
        if (h->seats[i].player[0] != '\0')
            put(h, "Seat %d: %s (%lld in chips)%s", i + 1, name(h, i), (long long)h->seats[i].stack,
                h->seats[i].dealt ? "" : " is sitting out");
}

/* Chips leave the seat's stack for its bet (or, an ante, for the pot). */
static bool pay(history *h, int seat, int64_t amount, bool to_bet)
{
    history_seat *s = &h->seats[seat];
    if (!s->dealt || amount > s->stack)
        return false;
    s->stack -= amount;
    s->committed += amount;
    if (to_bet)
        s->bet += amount;
    return true;
}

static void on_posted(history *h, const json_t *data)
{
    int seat;
    const char *blind;
    int64_t amount;
    if (!data_seat(h, data, &seat) || !arb__rules_data_string(data, "blind", 1, 5, &blind) ||
        !data_chips(data, "amount", &amount)) {
        corrupt(h);
        return;
    }
    bool ante = strcmp(blind, "ante") == 0, big = strcmp(blind, "big") == 0;
    if ((!ante && !big && strcmp(blind, "small") != 0) || !pay(h, seat, amount, !ante)) {
        corrupt(h);
        return;
    }
    const char *all_in = h->seats[seat].stack == 0 ? " and is all-in" : "";
    if (ante) {
        put(h, "%s: posts the ante %lld%s", name(h, seat), (long long)amount, all_in);
        return;
    }
    if (big) {
        h->big_seat = seat;
        h->current_bet = h->table->big_blind; /* even when the big blind is short */
    } else {
        h->small_seat = seat;
        h->current_bet = amount;
    }
    put(h, "%s: posts %s blind %lld%s", name(h, seat), big ? "big" : "small", (long long)amount,
        all_in);
}

static void on_acted(history *h, const json_t *data)
{
    int seat;
    const char *action;
    int64_t amount, to;
    if (!data_seat(h, data, &seat) ||
        !arb__rules_data_string(data, "action", 1, ARB_ACTION_BYTES_MAX, &action) ||
        !data_chips(data, "amount", &amount) || !data_chips(data, "to", &to) ||
        !h->seats[seat].dealt || h->seats[seat].folded || !pay(h, seat, amount, true) ||
        h->seats[seat].bet != to) {
        corrupt(h);
        return;
    }
    history_seat *s = &h->seats[seat];
    const char *all_in = s->stack == 0 && amount > 0 ? " and is all-in" : "";
    int64_t facing = h->current_bet;
    if (to > h->current_bet)
        h->current_bet = to;
    if (strcmp(action, "fold") == 0) {
        s->folded = true;
        s->fold_street = h->street;
        put(h, "%s: folds", s->player);
    } else if (strcmp(action, "check") == 0) {
        put(h, "%s: checks", s->player);
    } else if (to <= facing) { /* call, or an all-in for a call or less */
        put(h, "%s: calls %lld%s", s->player, (long long)amount, all_in);
    } else if (facing == 0) { /* bet, or an all-in that opens the round */
        put(h, "%s: bets %lld%s", s->player, (long long)amount, all_in);
    } else { /* raise, or an all-in above the bet */
        put(h, "%s: raises %lld to %lld%s", s->player, (long long)(to - facing), (long long)to,
            all_in);
    }
}

static void on_bet_returned(history *h, const json_t *data)
{
    int seat;
    int64_t amount;
    if (!data_seat(h, data, &seat) || !data_chips(data, "amount", &amount) ||
        amount > h->seats[seat].bet) {
        corrupt(h);
        return;
    }
    history_seat *s = &h->seats[seat];
    s->bet -= amount;
    s->committed -= amount;
    s->stack += amount;
    put(h, "Uncalled bet (%lld) returned to %s", (long long)amount, s->player);
}

static void on_street_dealt(history *h, const json_t *data)
{
    const char *street;
    int count = h->street == 0 ? 3 : 1;
    if (h->street >= STREETS - 1 || !arb__rules_data_string(data, "street", 1, 8, &street) ||
        strcmp(street, street_names[h->street + 1]) != 0 ||
        !data_cards(json_object_get(data, "cards"), count, h->board + h->board_count)) {
        corrupt(h);
        return;
    }
    char before[16], dealt[16];
    cards_text(h->board, h->board_count, before, sizeof before);
    cards_text(h->board + h->board_count, count, dealt, sizeof dealt);
    h->board_count += count;
    h->street++;
    h->current_bet = 0;
    for (int i = 0; i < h->table->seat_count; i++)
        h->seats[i].bet = 0;
    if (h->street == 1)
        put(h, "*** FLOP *** [%s]", dealt);
    else
        put(h, "*** %s *** [%s] [%s]", h->street == 2 ? "TURN" : "RIVER", before, dealt);
}

static void on_cards_shown(history *h, const json_t *data)
{
    int seat;
    uint8_t cards[HOLE_CARDS];
    if (!data_seat(h, data, &seat) || !data_cards(json_object_get(data, "cards"), 2, cards) ||
        !h->seats[seat].dealt || h->seats[seat].shown || h->shown_count >= ARB_POKER_SEATS_MAX) {
        corrupt(h);
        return;
    }
    history_seat *s = &h->seats[seat];
    memcpy(s->cards, cards, sizeof cards);
    s->cards_known = s->shown = true;
    h->shown_order[h->shown_count++] = seat;
    if (h->board_count == BOARD_CARDS) {
        write_showdown(h); /* which announces the hands shown so far, this one too */
        if (!s->announced)
            announce(h, seat);
    } else {
        char text[16];
        cards_text(cards, HOLE_CARDS, text, sizeof text);
        put(h, "%s: shows [%s]", s->player, text);
    }
}

static void on_mucked(history *h, const json_t *data)
{
    int seat;
    if (!data_seat(h, data, &seat) || !h->seats[seat].dealt) {
        corrupt(h);
        return;
    }
    h->seats[seat].mucked = true;
    write_showdown(h);
    put(h, "%s: mucks hand", name(h, seat));
}

static const char *pot_name(const history *h, int64_t index, char *text, size_t size)
{
    if (h->pot_count <= 1)
        return "pot";
    if (index == 0)
        return "main pot";
    snprintf(text, size, "side pot-%lld", (long long)index);
    return text;
}

static void on_pot_awarded(history *h, const json_t *data)
{
    int64_t index, amount, total = 0;
    const json_t *winners = json_object_get(data, "winners");
    if (!arb__rules_data_int(data, "pot", 0, ARB_POKER_SEATS_MAX - 1, &index) ||
        index != h->pots_paid || index >= h->pot_count ||
        !arb__rules_data_int(data, "amount", 1, ARB_JSON_INT_MAX, &amount) ||
        !json_is_array(winners) || json_array_size(winners) == 0) {
        corrupt(h);
        return;
    }
    if (h->shown_count > 0)
        write_showdown(h);
    h->pots[h->pots_paid++] = amount;
    char text[32];
    const char *pot = pot_name(h, index, text, sizeof text);
    for (size_t i = 0; i < json_array_size(winners); i++) {
        const json_t *winner = json_array_get(winners, i);
        int seat;
        int64_t share;
        if (!data_seat(h, winner, &seat) ||
            !arb__rules_data_int(winner, "amount", 1, amount, &share) || !h->seats[seat].dealt) {
            corrupt(h);
            return;
        }
        h->seats[seat].won += share;
        h->seats[seat].stack += share;
        total += share;
        put(h, "%s collected %lld from %s", name(h, seat), (long long)share, pot);
    }
    if (total != amount)
        corrupt(h);
}

/* A seat's line of the summary. */
static void summary_seat(history *h, int seat)
{
    const history_seat *s = &h->seats[seat];
    char role[40], cards[16] = "", outcome[96];
    snprintf(role, sizeof role, "%s%s", seat == h->button ? " (button)" : "",
             seat == h->small_seat ? " (small blind)"
             : seat == h->big_seat ? " (big blind)"
                                   : "");
    if (s->cards_known)
        cards_text(s->cards, HOLE_CARDS, cards, sizeof cards);
    const char *what = s->shown ? category(h, s) : NULL;
    if (s->folded)
        snprintf(outcome, sizeof outcome, "folded %s%s", fold_words[s->fold_street],
                 s->committed == 0 ? " (didn't bet)" : "");
    else if (s->shown && s->won > 0)
        snprintf(outcome, sizeof outcome, "showed [%s] and won (%lld)%s%s", cards,
                 (long long)s->won, what != NULL ? " with " : "", what != NULL ? what : "");
    else if (s->shown)
        snprintf(outcome, sizeof outcome, "showed [%s] and lost%s%s", cards,
                 what != NULL ? " with " : "", what != NULL ? what : "");
    else if (s->mucked)
        snprintf(outcome, sizeof outcome, "mucked%s%s%s", s->cards_known ? " [" : "", cards,
                 s->cards_known ? "]" : "");
    else if (s->won > 0)
        snprintf(outcome, sizeof outcome, "collected (%lld)", (long long)s->won);
    else
        snprintf(outcome, sizeof outcome, "lost");
    put(h, "Seat %d: %s%s %s", seat + 1, s->player, role, outcome);
}

static void write_summary(history *h)
{
    int64_t total = 0, committed = 0;
    for (int p = 0; p < h->pots_paid; p++)
        total += h->pots[p];
    for (int i = 0; i < h->table->seat_count; i++)
        committed += h->seats[i].committed;
    if (total != committed || h->pots_paid != h->pot_count) {
        corrupt(h); /* every chip put in is paid out, and every pot */
        return;
    }
    put(h, "*** SUMMARY ***");
    if (h->pots_paid == 1) {
        put(h, "Total pot %lld | Rake 0", (long long)total);
    } else {
        char pots[ARB_POKER_SEATS_MAX * 32] = "";
        for (int p = 0; p < h->pots_paid; p++) {
            size_t len = strlen(pots);
            if (p == 0)
                snprintf(pots + len, sizeof pots - len, " Main pot %lld.", (long long)h->pots[p]);
            else
                snprintf(pots + len, sizeof pots - len, " Side pot-%d %lld.", p,
                         (long long)h->pots[p]);
        }
        put(h, "Total pot %lld%s | Rake 0", (long long)total, pots);
    }
    if (h->board_count > 0) {
        char board[16];
        cards_text(h->board, h->board_count, board, sizeof board);
        put(h, "Board [%s]", board);
    }
    for (int i = 0; i < h->table->seat_count; i++)
        if (h->seats[i].dealt)
            summary_seat(h, i);
}

static void on_hand_ended(history *h, const json_t *data)
{
    int64_t hand;
    if (!arb__rules_data_int(data, "hand", 1, ARB_JSON_INT_MAX, &hand) ||
        (uint64_t)hand != h->hand || !arb__rules_data_string(data, "seed", 64, 64, &h->seed)) {
        corrupt(h);
        return;
    }
    h->ended = true;
    write_summary(h);
    put(h, "*** FAIRNESS ***");
    put(h, "Commitment %s", h->commitment);
    put(h, "Seed %s", h->seed);
    if (h->entropy != NULL)
        put(h, "Players' entropy %s", h->entropy);
}

/* The turn clock plays for the seat: its acted follows. */
static void on_timed_out(history *h, const json_t *data)
{
    int seat;
    if (!data_seat(h, data, &seat) || !h->seats[seat].dealt) {
        corrupt(h);
        return;
    }
    put(h, "%s has timed out", name(h, seat));
}

static bool is_seating(const char *type)
{
    static const char *const types[] = {"sat", "left", "topped_up", "sat_out", "sat_in"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(type, types[i]) == 0)
            return true;
    return false;
}

/* Seating changes during the hand (a folded player leaving, someone sitting
 * at a free seat): said as the rooms say them. */
static void on_seating(history *h, const char *type, const json_t *data)
{
    int seat;
    const char *player;
    int64_t amount = 0;
    if (!data_seat(h, data, &seat) ||
        !arb__rules_data_string(data, "player", 1, ARB_CLIENT_ID_BYTES_MAX, &player)) {
        corrupt(h);
        return;
    }
    if (strcmp(type, "sat") == 0 && data_chips(data, "buy_in", &amount))
        put(h, "%s joins the table at seat #%d with %lld chips", player, seat + 1,
            (long long)amount);
    else if (strcmp(type, "left") == 0)
        put(h, "%s leaves the table", player);
    else if (strcmp(type, "topped_up") == 0 && data_chips(data, "amount", &amount))
        put(h, "%s adds %lld chips", player, (long long)amount);
    else if (strcmp(type, "sat_out") == 0)
        put(h, "%s sits out", player);
    else if (strcmp(type, "sat_in") == 0)
        put(h, "%s is back", player);
}

static void on_event(history *h, const char *type, const json_t *data)
{
    if (strcmp(type, "posted") == 0) {
        on_posted(h, data);
        return;
    }
    write_hole_cards(h);
    if (strcmp(type, "acted") == 0)
        on_acted(h, data);
    else if (strcmp(type, "bet_returned") == 0)
        on_bet_returned(h, data);
    else if (strcmp(type, "street_dealt") == 0)
        on_street_dealt(h, data);
    else if (strcmp(type, "cards_shown") == 0)
        on_cards_shown(h, data);
    else if (strcmp(type, "mucked") == 0)
        on_mucked(h, data);
    else if (strcmp(type, "pot_awarded") == 0)
        on_pot_awarded(h, data);
    else if (strcmp(type, "hand_ended") == 0)
        on_hand_ended(h, data);
    else if (strcmp(type, "timed_out") == 0)
        on_timed_out(h, data);
    else if (strcmp(type, "hand_started") == 0 || strcmp(type, "table_created") == 0)
        corrupt(h); /* one hand only */
    else if (is_seating(type))
        on_seating(h, type, data);
    /* Any other type (of a later version) moves no chips: left unsaid. */
}

int arb_poker_history_format(const arb_poker_history_table *table,
                             const arb_poker_history_seat *seats, const json_t *events,
                             arb_buf *out)
{
    ARB_ASSERT(table != NULL && seats != NULL && out != NULL);
    ARB_ASSERT(table->seat_count >= ARB_POKER_SEATS_MIN &&
               table->seat_count <= ARB_POKER_SEATS_MAX);
    history h = {.table = table, .out = out, .out_start = out->len, .button = -1};
    h.small_seat = h.big_seat = -1;
    size_t count = json_array_size(events);
    if (count < 2 || count > ARB_POKER_HAND_EVENTS_MAX)
        return count < 2 ? ARB_ECORRUPT : ARB_ETOO_LARGE;
    for (int i = 0; i < table->seat_count; i++) {
        h.seats[i].player = seats[i].player;
        h.seats[i].stack = seats[i].stack;
        if (seats[i].stack < 0)
            return ARB_ECORRUPT;
    }
    for (size_t i = 0; i < count; i++) {
        const char *type = json_string_value(json_object_get(json_array_get(events, i), "type"));
        h.pot_count += type != NULL && strcmp(type, "pot_awarded") == 0;
    }
    for (size_t i = 0; i < count && h.rc == 0; i++) {
        const json_t *event = json_array_get(events, i);
        const char *type = json_string_value(json_object_get(event, "type"));
        const json_t *data = json_object_get(event, "data");
        if (type == NULL || !json_is_object(data) ||
            (i == 0) != (strcmp(type, "hand_started") == 0))
            return ARB_ECORRUPT;
        if (i == 0)
            on_hand_started(&h, data, json_integer_value(json_object_get(event, "applied_at")),
                            seats);
        else
            on_event(&h, type, data);
        if (h.ended && i + 1 != count)
            corrupt(&h);
    }
    if (h.rc == 0 && !h.ended)
        return ARB_ECORRUPT;
    return h.rc;
}

/* ---- Finding a hand ---- */

static int fail(char *why, size_t why_size, int code, const char *sentence)
{
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "%s", sentence);
    return code;
}

/* The table's settings and the seats as they are now, from the view. */
static int read_view(const json_t *view, arb_poker_history_table *table,
                     arb_poker_history_seat seats[ARB_POKER_SEATS_MAX], uint64_t *hands_out,
                     bool *active_out)
{
    const json_t *config = json_object_get(view, "table");
    const char *name;
    int64_t seat_count, hands;
    if (!json_is_object(config))
        return ARB_ENOTFOUND;
    const json_t *list = json_object_get(view, "seats");
    if (!arb__rules_data_string(config, "table", 1, ARB_POKER_TABLE_NAME_BYTES_MAX, &name) ||
        !arb__rules_data_int(config, "seats", ARB_POKER_SEATS_MIN, ARB_POKER_SEATS_MAX,
                             &seat_count) ||
        !arb__rules_data_int(config, "small_blind", 1, ARB_POKER_CHIPS_MAX, &table->small_blind) ||
        !arb__rules_data_int(config, "big_blind", 1, ARB_POKER_CHIPS_MAX, &table->big_blind) ||
        !arb__rules_data_int(config, "ante", 0, ARB_POKER_CHIPS_MAX, &table->ante) ||
        !arb__rules_data_int(view, "hands", 0, ARB_JSON_INT_MAX, &hands) ||
        !json_is_boolean(json_object_get(view, "hand_active")) || !json_is_array(list) ||
        json_array_size(list) != (size_t)seat_count)
        return ARB_ECORRUPT;
    snprintf(table->name, sizeof table->name, "%s", name);
    table->seat_count = (int)seat_count;
    for (int i = 0; i < table->seat_count; i++) {
        const json_t *seat = json_array_get(list, (size_t)i);
        const json_t *player = json_object_get(seat, "player");
        if (!arb__rules_data_int(seat, "stack", 0, ARB_JSON_INT_MAX, &seats[i].stack) ||
            !(json_is_null(player) ||
              (json_is_string(player) && json_string_length(player) <= ARB_CLIENT_ID_BYTES_MAX)))
            return ARB_ECORRUPT;
        snprintf(seats[i].player, sizeof seats[i].player, "%s",
                 json_is_string(player) ? json_string_value(player) : "");
    }
    *hands_out = (uint64_t)hands;
    *active_out = json_is_true(json_object_get(view, "hand_active"));
    return 0;
}

/* Take back the chips and seats one event moved: the seats before it. */
static int rewind_event(const arb_poker_history_table *table,
                        arb_poker_history_seat seats[ARB_POKER_SEATS_MAX], const char *type,
                        const json_t *data)
{
    int64_t seat, amount = 0;
    if (strcmp(type, "pot_awarded") == 0) {
        size_t i;
        const json_t *winner;
        json_array_foreach (json_object_get(data, "winners"), i, winner) {
            if (!arb__rules_data_int(winner, "seat", 0, table->seat_count - 1, &seat) ||
                !arb__rules_data_int(winner, "amount", 0, seats[seat].stack, &amount))
                return ARB_ECORRUPT;
            seats[seat].stack -= amount;
        }
        return 0;
    }
    bool gives = strcmp(type, "posted") == 0 || strcmp(type, "acted") == 0;
    bool takes = strcmp(type, "bet_returned") == 0 || strcmp(type, "topped_up") == 0;
    bool sat = strcmp(type, "sat") == 0, left = strcmp(type, "left") == 0;
    if (!gives && !takes && !sat && !left)
        return 0;
    const char *key = sat ? "buy_in" : left ? "chips" : "amount";
    if (!arb__rules_data_int(data, "seat", 0, table->seat_count - 1, &seat) ||
        !arb__rules_data_int(data, key, 0, ARB_JSON_INT_MAX, &amount))
        return ARB_ECORRUPT;
    arb_poker_history_seat *s = &seats[seat];
    const char *player = json_string_value(json_object_get(data, "player"));
    if (gives && amount <= ARB_JSON_INT_MAX - s->stack) {
        s->stack += amount;
    } else if (takes && amount <= s->stack) {
        s->stack -= amount;
    } else if (sat && player != NULL && strcmp(s->player, player) == 0 && s->stack == amount) {
        s->player[0] = '\0';
        s->stack = 0;
    } else if (left && player != NULL && s->player[0] == '\0' &&
               strlen(player) <= ARB_CLIENT_ID_BYTES_MAX) {
        snprintf(s->player, sizeof s->player, "%s", player);
        s->stack = amount;
    } else {
        return ARB_ECORRUPT;
    }
    return 0;
}

/* The hand a hand_started or hand_ended names, or 0 for other events. */
static uint64_t event_hand(const char *type, const json_t *data, bool *started_out)
{
    int64_t hand;
    *started_out = strcmp(type, "hand_started") == 0;
    if ((!*started_out && strcmp(type, "hand_ended") != 0) ||
        !arb__rules_data_int(data, "hand", 1, ARB_JSON_INT_MAX, &hand))
        return 0;
    return (uint64_t)hand;
}

typedef struct walk {
    const arb_poker_history_table *table;
    arb_poker_history_seat *seats;
    uint64_t hand;
    json_t *backwards; /* the hand's events, newest first */
    bool inside, found;
} walk;

/* One page of the walk back, newest event first. */
static int walk_page(walk *w, const json_t *page)
{
    for (size_t i = json_array_size(page); i-- > 0 && !w->found;) {
        const json_t *event = json_array_get(page, i);
        const char *type = json_string_value(json_object_get(event, "type"));
        const json_t *data = json_object_get(event, "data");
        if (type == NULL || !json_is_object(data))
            return ARB_ECORRUPT;
        bool started;
        uint64_t hand = event_hand(type, data, &started);
        if (hand == w->hand && !started)
            w->inside = true;
        if (hand != 0 && hand < w->hand && !w->inside)
            return ARB_ECORRUPT; /* walked past the hand without its end */
        if (w->inside) {
            if (json_array_size(w->backwards) >= ARB_POKER_HAND_EVENTS_MAX)
                return ARB_ETOO_LARGE;
            if (json_array_append(w->backwards, (json_t *)event) != 0)
                return ARB_ENOMEM;
        }
        int rc = rewind_event(w->table, w->seats, type, data);
        if (rc != 0)
            return rc;
        w->found = started && hand == w->hand;
    }
    return 0;
}

/* Walk back from the newest event to hand_started of w->hand. */
static int walk_back(const arb_poker_history_source *source, walk *w, uint64_t version)
{
    for (uint64_t high = version; high > 0 && !w->found;) {
        if (source->walk_max > 0 && version - high >= source->walk_max)
            return ARB_ETOO_LARGE;
        uint64_t low =
            high > ARB_POKER_HISTORY_PAGE_EVENTS ? high - ARB_POKER_HISTORY_PAGE_EVENTS : 0;
        json_t *page = NULL;
        int rc = source->events(source->user, low, high - low, &page);
        if (rc == 0)
            rc = json_is_array(page) ? walk_page(w, page) : ARB_ECORRUPT;
        json_decref(page);
        if (rc != 0)
            return rc;
        high = low;
    }
    return w->found && w->inside ? 0 : ARB_ECORRUPT;
}

int arb_poker_history_read(const arb_poker_history_source *source, uint64_t hand, arb_buf *out,
                           char *why, size_t why_size)
{
    ARB_ASSERT(source != NULL && source->view != NULL && source->events != NULL && out != NULL);
    if (hand == 0 || hand > (uint64_t)ARB_JSON_INT_MAX)
        return fail(why, why_size, ARB_EINVALID_ARGUMENT, "a hand is numbered from 1");
    json_t *view = NULL;
    uint64_t version = 0, hands = 0;
    bool active = false;
    arb_poker_history_table table = {0};
    arb_poker_history_seat seats[ARB_POKER_SEATS_MAX] = {0};
    int rc = source->view(source->user, &view, &version);
    if (rc != 0)
        return fail(why, why_size, rc, arb_err_message(rc));
    rc = read_view(view, &table, seats, &hands, &active);
    json_decref(view);
    if (rc == ARB_ENOTFOUND)
        return fail(why, why_size, ARB_ETABLE_NOT_CREATED, "the stream holds no poker table");
    if (rc == 0 && hand > hands)
        return fail(why, why_size, ARB_ENOTFOUND, "no such hand: the table has not dealt it");
    if (rc == 0 && hand == hands && active)
        return fail(why, why_size, ARB_EHAND_IN_PROGRESS, "the hand has not ended yet");
    walk w = {.table = &table, .seats = seats, .hand = hand, .backwards = json_array()};
    if (rc == 0)
        rc = w.backwards != NULL ? walk_back(source, &w, version) : ARB_ENOMEM;
    if (rc == ARB_ETOO_LARGE && !w.inside) {
        json_decref(w.backwards);
        return fail(why, why_size, rc,
                    "the hand is too far back in the log to rebuild here; "
                    "`arbiter poker history --data DIR` reads it");
    }
    json_t *events = json_array();
    for (size_t i = json_array_size(w.backwards); rc == 0 && i-- > 0;)
        rc = json_array_append(events, json_array_get(w.backwards, i)) == 0 ? 0 : ARB_ENOMEM;
    json_decref(w.backwards);
    if (rc == 0)
        rc = events != NULL ? arb_poker_history_format(&table, seats, events, out) : ARB_ENOMEM;
    json_decref(events);
    if (rc == ARB_ETOO_LARGE)
        return fail(why, why_size, rc, "the hand is too long to write out");
    if (rc != 0)
        return fail(why, why_size, rc,
                    rc == ARB_ECORRUPT ? "the table's log does not add up to this hand"
                                       : arb_err_message(rc));
    return 0;
}
