/*
 * support.h - helpers shared by the test programs: temporary directories, a
 * controllable clock, command building, running the CLI, and a seeded RNG.
 *
 * Everything a helper returns is owned by the caller and documented per
 * function. Tests include this after <cmocka.h>'s prerequisites.
 */
#ifndef ARB_TEST_SUPPORT_H
#define ARB_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "arbiter/engine.h"

/* A fresh empty directory under $ARB_TEST_TMP (or /tmp). Returns a malloc'ed
 * path; test_rmdir removes the tree and frees the path. */
char *test_mkdtemp(const char *prefix);
void test_rmdir(char *path);

/* A manual clock for engine configs: clock_ms = test_clock_ms, clock_user =
 * &a test_clock. */
typedef struct test_clock {
    int64_t now_ms;
} test_clock;
int64_t test_clock_ms(void *user);

/* Build a command; args from a json_pack format. Asserts on failure. The
 * caller clears it with arb_command_clear. */
void test_command(arb_command *command, const char *client_id, arb_role role, uint64_t seq,
                  const char *stream, const char *action, const char *args_format, ...);

/* Execute one command; fills *outcome (caller clears). */
void test_exec(arb_engine *engine, const arb_command *command, arb_outcome *outcome);

/* Build, execute, clear the command; return the outcome's code (0 committed).
 * Fills *outcome when not NULL (caller clears), else clears it. */
int test_propose(arb_engine *engine, arb_outcome *outcome, const char *client_id, arb_role role,
                 uint64_t seq, const char *stream, const char *action, const char *args_format,
                 ...);
/* test_propose with the args already started (the caller ends ap). */
int test_vpropose(arb_engine *engine, arb_outcome *outcome, const char *client_id, arb_role role,
                  uint64_t seq, const char *stream, const char *action, const char *args_format,
                  va_list ap);

/* The seed for randomized tests: $ARB_SEED, else time-based; printed so a
 * failure can be replayed. */
uint64_t test_seed(const char *test_name);
/* xorshift64*: deterministic from the seed. */
uint64_t test_random(uint64_t *state);
uint64_t test_random_below(uint64_t *state, uint64_t bound);

/* Run argv (argv[0] a program under $ARB_BIN_DIR), capture stdout into a
 * malloc'ed string (*out, caller frees; may be NULL). Returns the exit
 * status, or -1 if it did not exit normally. */
int test_run_tool(char **out, const char *const argv[]);

/* A JSON view of a stream's state via the engine (new reference). */
json_t *test_state(arb_engine *engine, const char *stream, uint64_t *version_out);

#endif
