/*
 * poker_internal.h - the No-Limit Hold'em table's state and the rules of
 * play shared by the files of src/rules/poker/ (and read by its unit test).
 *
 * The module is split by role:
 *   poker.c           the rules table, evolve (one function per event), redact, clone
 *   poker_play.c      the rules of play: turns, legal moves, rounds, pots, the deck
 *   poker_decide.c    decide: actions, arguments, and the automatic dealer
 *   poker_snapshot.c  view, snapshot save/load, view_load
 *   poker_check.c     check (the chip invariant and the shape of a hand)
 *   poker_bot.c       the server's own players: who they are, how they play
 *
 * The state is one fixed-size struct (no allocation beyond it), so a copy is
 * a memcpy. decide works on such a copy: every event it emits is applied to
 * the copy at once by the same evolve the engine runs, and the dealer reads
 * the copy to choose the next event (blinds, streets, showdown, awards, the
 * next hand). So what decide emits always evolves, and the rules of play
 * live in one place (poker_play.c) that both read.
 *
 * A hand's life:
 *
 *   no hand --hand_started--> posting --posted(big)--> betting round
 *   betting round --acted...--> round complete --bet_returned?-->
 *       street_dealt (flop, turn, river) --> next betting round
 *       or, after the river or with one live player: cards_shown / mucked,
 *       pot_awarded (one per pot) --> hand_ended --> no hand
 *
 * Chips (check() verifies; the effects keep it): the chips on the table,
 * every seat's stack and bet plus the pot, equal chips_in - chips_out (what
 * players bought in with, less what they left with). During a hand every
 * dealt seat's committed (chips it put in this hand) sums to pot + bets +
 * awarded (what pot_awarded events have paid out so far).
 *
 * Partial states. view_load builds a player's state from their view: the
 * deck, the seed and the other players' hole cards are unknown
 * (deck_known, seed_known, a seat's cards_known false). Evolve then takes
 * cards from the events as redact shows them (a shown hand, a street),
 * and decide rejects with UNPREDICTABLE whatever needs what it lacks.
 */
#ifndef ARB_RULES_POKER_INTERNAL_H
#define ARB_RULES_POKER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "arbiter/limits.h"
#include "arbiter/rules.h"
#include "core/assert.h"
#include "rules/common.h"
#include "rules/poker/eval.h"

/* The snapshot format written by this code. */
#define ARB__POKER_SNAPSHOT_FORMAT 3
#define ARB__POKER_BOARD_CARDS 5
#define ARB__POKER_HOLE_CARDS 2
/* BLAKE2b-256 of the seed and the hand's identity. */
#define ARB__POKER_COMMITMENT_BYTES 32
/* Hex of a seed or commitment with its NUL. */
#define ARB__POKER_HEX_SIZE (2 * 32 + 1)

typedef enum arb__poker_street {
    ARB__POKER_PREFLOP = 0,
    ARB__POKER_FLOP = 1,
    ARB__POKER_TURN = 2,
    ARB__POKER_RIVER = 3,
} arb__poker_street;

/* The player actions of a betting round, in the order of docs/poker.md. */
typedef enum arb__poker_action {
    ARB__POKER_FOLD = 0,
    ARB__POKER_CHECK = 1,
    ARB__POKER_CALL = 2,
    ARB__POKER_BET = 3,
    ARB__POKER_RAISE = 4,
    ARB__POKER_ALL_IN = 5,
    ARB__POKER_ACTION_COUNT = 6,
} arb__poker_action;

typedef struct arb__poker_seat {
    /* Who sits here: player is "" when the seat is free. */
    bool occupied;
    char player[ARB_CLIENT_ID_BYTES_MAX + 1];
    int64_t stack;    /* chips behind, not in play */
    bool sitting_out; /* dealt out of the next hands until sit_in */
    uint64_t version; /* seq of the last event that changed the seat */
    /* The current (or last) hand. A seat whose player left after folding
     * keeps these until the hand ends, so no one may sit there before. */
    bool in_hand;   /* dealt into the hand */
    bool folded;    /* folded (or left) */
    bool all_in;    /* stack 0 while in the hand */
    bool acted;     /* acted since the last full bet or raise of the round */
    bool may_raise; /* the betting is open to it (false after a short all-in) */
    bool shown;     /* its cards are public */
    bool mucked;    /* at showdown, did not show */
    bool cards_known;
    uint8_t cards[ARB__POKER_HOLE_CARDS];
    int64_t bet;        /* chips in front of it this round */
    int64_t committed;  /* chips it put in this hand (antes, blinds, bets) */
    int timeouts;       /* turns in a row the clock played for it (timed_out) */
    bool contributed;   /* gave entropy to the next hand (entropy_added) */
    int64_t away_since; /* ms the player went offline (went_away); 0: present */
} arb__poker_seat;

typedef struct arb__poker_config {
    char table[ARB_POKER_TABLE_NAME_BYTES_MAX + 1];
    int seat_count;
    int64_t small_blind, big_blind, ante;
    int64_t buy_in_min, buy_in_max;
    int64_t turn_s, grace_s;
} arb__poker_config;

typedef struct arb__poker_state {
    bool created;
    arb__poker_config config;
    int64_t chips_in;  /* bought in, ever (sat and topped_up) */
    int64_t chips_out; /* taken away, ever (left) */
    uint64_t hands;    /* hands started; the current or last one's number */
    int button;        /* -1 before the first hand */
    /* The hand. */
    bool hand_active;
    int posted;       /* 0 none, 1 small blind posted, 2 big blind posted */
    int antes_posted; /* antes posted so far (they come before the blinds) */
    int small_seat, big_seat;
    int dealt_count; /* players dealt in */
    arb__poker_street street;
    int to_act; /* the seat to act, -1 when nobody is */
    /* The turn clock: the seq of the event that gave to_act its turn, and
     * when the turn runs out (that event's applied_at + turn_s); both 0
     * when nobody is to act. clock_seat is the seat a timed_out event is
     * playing for until its acted event, else -1. */
    uint64_t turn_seq;
    int64_t turn_deadline_ms;
    int clock_seat;
    int last_aggressor;  /* the last full or short bet or raise of this round, -1 */
    int64_t pot;         /* chips collected from finished rounds and antes */
    int64_t awarded;     /* paid out of this hand's pots so far */
    int64_t current_bet; /* the bet to call this round */
    int64_t min_raise;   /* the largest full bet or raise this round (>= big blind) */
    int board_count;
    uint8_t board[ARB__POKER_BOARD_CARDS];
    uint8_t commitment[ARB__POKER_COMMITMENT_BYTES];
    bool deck_known;
    uint8_t deck[ARB_POKER_DECK_CARDS];
    bool seed_known;    /* the server holds it, or hand_ended revealed it */
    bool seed_revealed; /* hand_ended published it */
    uint8_t seed[ARB_POKER_SEED_BYTES];
    /* Player entropy (docs/poker.md, "Provable fairness"): the next hand's
     * seed is committed when this hand starts (next_committed), so players
     * contribute after the server chose it; the server's state holds that
     * seed (next_seed_known). entropy mixes the contributions so far
     * (entropy_count of them); hand_entropy is what this hand's deck was
     * mixed with (hand_entropy_used false: nothing). */
    bool next_committed, next_seed_known;
    uint8_t next_commitment[ARB__POKER_COMMITMENT_BYTES];
    uint8_t next_seed[ARB_POKER_SEED_BYTES];
    int entropy_count;
    uint8_t entropy[ARB_POKER_SEED_BYTES];
    bool hand_entropy_used;
    uint8_t hand_entropy[ARB_POKER_SEED_BYTES];
    /* view_load: a player's state (see "Partial states"); viewer is "" for a
     * spectator's. */
    bool partial;
    char viewer[ARB_CLIENT_ID_BYTES_MAX + 1];
    arb__poker_seat seats[ARB_POKER_SEATS_MAX];
} arb__poker_state;

/* poker_bot.c. A bot's player name is "bot.<seat>" (the size with its NUL
 * below); no client may sit under such a name. choose: the move of the bot
 * at seat, which is to act on a full state (amount set for a bet or a
 * raise); always legal. */
#define ARB__POKER_BOT_NAME_SIZE 16
bool arb__poker_is_bot(const char *player);
void arb__poker_bot_name(int seat, char out[ARB__POKER_BOT_NAME_SIZE]);
arb__poker_action arb__poker_bot_choose(const arb__poker_state *state, int seat,
                                        int64_t *amount_out);

/* poker.c */
int arb__poker_evolve(arb__poker_state *state, const arb_event *event);
/* Report the end of an away seat's grace ("grace_over {seat, player,
 * since}" at since + grace_s) to timers (may be NULL). */
void arb__poker_report_grace(const arb__poker_state *state, int seat, const arb_timer_sink *timers);
/* Report the running turn's deadline ("timeout {hand, seat, turn}") to
 * timers (may be NULL), and for a bot its move ("bot_move", the same
 * arguments, ARB_POKER_BOT_DELAY_MS after the turn began); nothing when
 * nobody is to act. */
void arb__poker_report_turn(const arb__poker_state *state, const arb_timer_sink *timers);
/* Whether viewer sees every card (NULL: the engine itself, or the system). */
bool arb__poker_sees_everything(const arb_principal *viewer);

/* poker_play.c: the rules of play. Pure functions of the state. */
const char *arb__poker_action_name(arb__poker_action action);
bool arb__poker_action_from_name(const char *name, arb__poker_action *action_out);
const char *arb__poker_street_name(arb__poker_street street);
/* The first seat after from (clockwise, from excluded, wrapping; from may be
 * -1) for which want holds, or -1. */
int arb__poker_next_seat(const arb__poker_state *state, int from,
                         bool (*want)(const arb__poker_seat *seat));
bool arb__poker_is_active(const arb__poker_seat *seat); /* may be dealt in */
bool arb__poker_is_dealt(const arb__poker_seat *seat);  /* in the hand */
bool arb__poker_is_live(const arb__poker_seat *seat);   /* in the hand, not folded */
bool arb__poker_is_open(const arb__poker_seat *seat);   /* live and not all in */
int arb__poker_count(const arb__poker_state *state, bool (*want)(const arb__poker_seat *seat));
/* The seat of player, or -1. */
int arb__poker_seat_of(const arb__poker_state *state, const char *player);
/* Whether the betting round is over (nobody is left to act). */
bool arb__poker_round_complete(const arb__poker_state *state);
/* Recompute to_act after seat from acted (or the round began after from). */
void arb__poker_update_turn(arb__poker_state *state, int from);

/* A move resolved against the state: the chips it adds and the seat's bet
 * after it. */
typedef struct arb__poker_move {
    int64_t chips;
    int64_t to;
} arb__poker_move;
/* Whether seat (the one to act) may make action with amount (the bet's
 * amount or the raise's to; 0 for the others): 0 with the move, or
 * ARB_EILLEGAL_ACTION, ARB_EINSUFFICIENT_STACK, ARB_EBELOW_MIN_RAISE. */
int arb__poker_move_resolve(const arb__poker_state *state, int seat, arb__poker_action action,
                            int64_t amount, arb__poker_move *move_out);
/* Apply a resolved move of the seat to act. */
void arb__poker_move_apply(arb__poker_state *state, int seat, arb__poker_action action,
                           const arb__poker_move *move);
/* The uncalled part of the highest bet, and whose it is: 0 when none. */
int64_t arb__poker_uncalled(const arb__poker_state *state, int *seat_out);
/* Move every bet into the pot and open a new round (street already set). */
void arb__poker_collect_bets(arb__poker_state *state);
/* The deck's index of board card i (0..4), with n players dealt: the hole
 * cards come first (2n), then a burn before the flop, the turn and the river. */
int arb__poker_board_index(int dealt_count, int board_card);
/* The dealing order: seats from the one after the button, dealt ones only.
 * Returns their number. */
int arb__poker_deal_order(const arb__poker_state *state, int order_out[ARB_POKER_SEATS_MAX]);
/* The deck derived from a seed (docs/poker.md, "Provable fairness"). */
void arb__poker_deck_from_seed(const uint8_t seed[ARB_POKER_SEED_BYTES],
                               uint8_t deck_out[ARB_POKER_DECK_CARDS]);
/* The seed a hand's deck derives from: the server's seed itself, or with
 * players' entropy (NULL: none) BLAKE2b-256("arbiter/poker/mix/v1" 0x00 ||
 * seed || entropy). */
void arb__poker_deck_seed(const uint8_t seed[ARB_POKER_SEED_BYTES], const uint8_t *entropy,
                          uint8_t out[ARB_POKER_SEED_BYTES]);
/* Mix one contribution in: entropy = BLAKE2b-256("arbiter/poker/entropy/v1"
 * 0x00 || entropy || value). */
void arb__poker_entropy_mix(uint8_t entropy[ARB_POKER_SEED_BYTES],
                            const uint8_t value[ARB_POKER_SEED_BYTES]);
/* BLAKE2b-256 commitment of the seed to (stream, hand). */
void arb__poker_commitment(const char *stream, uint64_t hand,
                           const uint8_t seed[ARB_POKER_SEED_BYTES],
                           uint8_t commitment_out[ARB__POKER_COMMITMENT_BYTES]);
void arb__poker_hex(const uint8_t *bytes, size_t len, char *out);
bool arb__poker_unhex(const char *text, uint8_t *bytes, size_t len);
/* A JSON array of exactly count distinct card strings into cards. */
bool arb__poker_json_cards(const json_t *array, size_t count, uint8_t *cards);
json_t *arb__poker_cards_json(const uint8_t *cards, size_t count);

/* poker_decide.c */
void arb__poker_decide(const void *state, const arb_command *command, const arb_ctx *ctx,
                       arb_decision *decision);

/* poker_snapshot.c */
json_t *arb__poker_view(const void *state, const arb_principal *viewer);
int arb__poker_snapshot_save(const void *state, json_t **snapshot_out);
int arb__poker_snapshot_load(const json_t *snapshot, uint64_t seq, void **state_out,
                             const arb_timer_sink *timers);
int arb__poker_view_load(const json_t *view, uint64_t seq, const arb_principal *viewer,
                         void **state_out);

/* poker_check.c */
int arb__poker_check(const void *state, char *why, size_t why_size);

#endif
