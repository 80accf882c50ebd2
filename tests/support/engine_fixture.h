/*
 * engine_fixture.h - an engine on a fresh data directory with a manual clock,
 * for the tests that drive the engine through its public API: open, reopen
 * (a restart), verify the directory, and the usual start of a ledger test
 * (two accounts, alice's transfers from a to b).
 *
 * The fixture owns its directory (removed by engine_fixture_destroy) and its
 * engine (NULL while closed). Every helper asserts (cmocka) on failure.
 */
#ifndef ARB_TEST_ENGINE_FIXTURE_H
#define ARB_TEST_ENGINE_FIXTURE_H

#include "support.h"

/* The ledger the two-account helpers work on. */
#define ENGINE_FIXTURE_LEDGER "ledger:main"
/* Where the manual clock starts (Unix ms, November 2023). */
#define ENGINE_FIXTURE_CLOCK_START_MS 1700000000000

typedef struct engine_fixture {
    char *dir; /* test_mkdtemp'd */
    test_clock clock;
    /* Events between snapshots, read at each (re)open; 0: the engine's
     * default, UINT32_MAX: recovery replays the whole log. */
    uint32_t snapshot_every;
    arb_engine *engine; /* NULL while closed */
    uint64_t admin_seq; /* the admin's last client_seq */
} engine_fixture;

/* Make a fresh directory named after prefix, start the clock and open. */
void engine_fixture_init(engine_fixture *f, const char *prefix, uint32_t snapshot_every);
/* Close (when open) and remove the directory. */
void engine_fixture_destroy(engine_fixture *f);

/* cmocka setup and teardown: *state is a malloc'ed engine_fixture, opened
 * with the default snapshot interval. */
int engine_fixture_setup(void **state);
int engine_fixture_teardown(void **state);
#define ENGINE_FIXTURE_TEST(test)                                                                  \
    cmocka_unit_test_setup_teardown(test, engine_fixture_setup, engine_fixture_teardown)

/* Open the engine on f->dir with f's clock and snapshot interval (f->engine
 * must be NULL). */
void engine_fixture_open(engine_fixture *f);
/* Close and open again: a restart. */
void engine_fixture_reopen(engine_fixture *f);
/* Close, then arb_verify the directory checking after every event; a
 * failure fails the test with the report's stream, seq and reason. The
 * engine stays closed. *report_out (may be NULL) gets the report. */
void engine_fixture_verify(engine_fixture *f, arb_verify_report *report_out);

/* Propose as the admin with its next client_seq; returns the outcome's code
 * (0 committed). args_format and the rest as for test_command. */
int engine_fixture_admin_propose(engine_fixture *f, const char *stream, const char *action,
                                 const char *args_format, ...);
/* On ENGINE_FIXTURE_LEDGER: a (alice's, funded with amount) and b (bob's,
 * empty), both in EUR, as the admin: seqs 1..3 (1..2 when amount is 0). */
void engine_fixture_two_accounts(engine_fixture *f, long amount);
/* alice's transfer of amount from a to b as client_seq seq on
 * ENGINE_FIXTURE_LEDGER: built only (the caller clears it), or proposed
 * (the outcome's code, 0 committed; *outcome filled when not NULL, the
 * caller clears it). */
void engine_fixture_transfer_command(arb_command *command, uint64_t seq, long amount);
int engine_fixture_transfer(engine_fixture *f, arb_outcome *outcome, uint64_t seq, long amount);

/* An account's free balance in stream (the account must exist). */
json_int_t engine_fixture_balance(engine_fixture *f, const char *stream, const char *account);
/* A stream's version (the seq of its last event). */
uint64_t engine_fixture_version(engine_fixture *f, const char *stream);

#endif
