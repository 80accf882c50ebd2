/*
 * engine_fixture.c - an engine on a fresh data directory for the engine tests
 * (see engine_fixture.h).
 */
#include "engine_fixture.h"

#include <stdlib.h>

void engine_fixture_init(engine_fixture *f, const char *prefix, uint32_t snapshot_every)
{
    f->dir = test_mkdtemp(prefix);
    f->clock.now_ms = ENGINE_FIXTURE_CLOCK_START_MS;
    f->snapshot_every = snapshot_every;
    f->engine = NULL;
    f->admin_seq = 0;
    engine_fixture_open(f);
}

void engine_fixture_destroy(engine_fixture *f)
{
    arb_engine_close(f->engine);
    f->engine = NULL;
    test_rmdir(f->dir);
    f->dir = NULL;
}

int engine_fixture_setup(void **state)
{
    engine_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    engine_fixture_init(f, "engine", 0);
    *state = f;
    return 0;
}

int engine_fixture_teardown(void **state)
{
    engine_fixture *f = *state;
    engine_fixture_destroy(f);
    free(f);
    return 0;
}

void engine_fixture_open(engine_fixture *f)
{
    assert_null(f->engine);
    arb_engine_config config = {.data_dir = f->dir,
                                .clock_ms = test_clock_ms,
                                .clock_user = &f->clock,
                                .snapshot_every = f->snapshot_every};
    assert_int_equal(arb_engine_open(&config, &f->engine), 0);
    assert_non_null(f->engine);
}

void engine_fixture_reopen(engine_fixture *f)
{
    arb_engine_close(f->engine);
    f->engine = NULL;
    engine_fixture_open(f);
}

void engine_fixture_verify(engine_fixture *f, arb_verify_report *report_out)
{
    arb_engine_close(f->engine);
    f->engine = NULL;
    arb_verify_report report;
    int rc = arb_verify(f->dir, 1, &report);
    if (rc != 0)
        fail_msg("verify: %s seq %llu: %s", report.stream, (unsigned long long)report.seq,
                 report.why);
    if (report_out != NULL)
        *report_out = report;
}

int engine_fixture_admin_propose(engine_fixture *f, const char *stream, const char *action,
                                 const char *args_format, ...)
{
    va_list ap;
    va_start(ap, args_format);
    int code = test_vpropose(f->engine, NULL, "admin", ARB_ROLE_ADMIN, ++f->admin_seq, stream,
                             action, args_format, ap);
    va_end(ap);
    return code;
}

void engine_fixture_two_accounts(engine_fixture *f, long amount)
{
    const char *owners[2] = {"alice", "bob"};
    const char *accounts[2] = {"a", "b"};
    for (int i = 0; i < 2; i++)
        assert_int_equal(engine_fixture_admin_propose(f, ENGINE_FIXTURE_LEDGER, "open_account",
                                                      "{s:s,s:s,s:s}", "account", accounts[i],
                                                      "owner", owners[i], "currency", "EUR"),
                         0);
    if (amount > 0)
        assert_int_equal(engine_fixture_admin_propose(f, ENGINE_FIXTURE_LEDGER, "deposit",
                                                      "{s:s,s:I}", "account", "a", "amount",
                                                      (json_int_t)amount),
                         0);
}

void engine_fixture_transfer_command(arb_command *command, uint64_t seq, long amount)
{
    test_command(command, "alice", ARB_ROLE_USER, seq, ENGINE_FIXTURE_LEDGER, "transfer",
                 "{s:s,s:s,s:I}", "from", "a", "to", "b", "amount", (json_int_t)amount);
}

int engine_fixture_transfer(engine_fixture *f, arb_outcome *outcome, uint64_t seq, long amount)
{
    return test_propose(f->engine, outcome, "alice", ARB_ROLE_USER, seq, ENGINE_FIXTURE_LEDGER,
                        "transfer", "{s:s,s:s,s:I}", "from", "a", "to", "b", "amount",
                        (json_int_t)amount);
}

json_int_t engine_fixture_balance(engine_fixture *f, const char *stream, const char *account)
{
    json_t *state = test_state(f->engine, stream, NULL);
    json_t *acct = json_object_get(json_object_get(state, "accounts"), account);
    assert_non_null(acct);
    json_int_t value = json_integer_value(json_object_get(acct, "balance"));
    json_decref(state);
    return value;
}

uint64_t engine_fixture_version(engine_fixture *f, const char *stream)
{
    uint64_t version = 0;
    json_decref(test_state(f->engine, stream, &version));
    return version;
}
