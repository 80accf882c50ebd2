/*
 * client_test.c - the C client SDK (include/arbiter/client.h) against the
 * real arbiterd on a loopback port: the optimistic draft, rollback, rebase,
 * the persisted outbox across a crash of the application, a server killed
 * and restarted under the client, an offline queue drained by one sync, and
 * a randomized convergence run with disconnects.
 *
 * The invariants checked, wherever they apply:
 *   - a client's view is its confirmed state with its applied pending
 *     transfers replayed (balances moved by exactly their amounts);
 *   - confirmed moves only by the server's events, and the events a client
 *     is given are contiguous from its first snapshot;
 *   - at quiescence every view equals the server's state (HTTP GET, as that
 *     client), money is conserved, and the server's log holds each of the
 *     client's proposals exactly once.
 *
 * Every wait has a deadline that only stops a hang; nothing asserts on time.
 */
#include "server.h"
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/client.h"
#include "arbiter/error.h"

#define LEDGER "ledger:sdk"
#define SHOP "shop:sdk"
#define WAIT_MS 30000
#define MAX_CLIENTS 6

typedef struct fixture {
    char *dir;
    char data[1100];
    test_server server;
    const char *stream; /* the stream the helpers look at: LEDGER unless a test says */
} fixture;

/* What one client's callbacks saw. */
typedef struct probe {
    size_t committed;
    size_t rejected;
    int last_code;
    uint64_t next_event_seq; /* the seq the next event must have; 0: not known yet */
    bool gap;                /* an event arrived out of that order */
    size_t view_changes;
    arb_client_state state;
    arb_client *client; /* for the view check inside callbacks */
    bool check_views;   /* check the draft invariant at every view change */
    size_t view_checks;
    /* the shop test: each view change seen with the stream at or past this
     * version and a proposal still pending checks its prediction */
    uint64_t predict_from;
    int predicted;      /* the prediction expected */
    size_t predictions; /* how many were checked */
} probe;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_mkdtemp("client");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    test_server_start(&f->server, f->data, NULL);
    f->stream = LEDGER;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->server.pid > 0)
        assert_int_equal(test_server_stop(&f->server, SIGTERM), 0);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static json_int_t balance_in(const json_t *view, const char *account)
{
    json_t *acc = json_object_get(json_object_get(view, "accounts"), account);
    assert_non_null(acc);
    return json_integer_value(json_object_get(acc, "balance"));
}

/* The draft invariant: view = confirmed with the applied pending transfers
 * moved. Pending proposals here are all transfers of this client. */
static void check_draft(arb_client *client)
{
    uint64_t version;
    json_t *confirmed = arb_client_confirmed(client, LEDGER, &version);
    json_t *view = arb_client_view(client, LEDGER, NULL);
    if (confirmed == NULL) {
        assert_null(view);
        return;
    }
    assert_non_null(view);
    json_t *expected = json_deep_copy(confirmed);
    arb_client_pending p;
    for (size_t i = 0; arb_client_pending_at(client, i, &p) == 0; i++) {
        if (!p.applied)
            continue;
        assert_string_equal(p.action, "transfer");
        json_int_t amount = json_integer_value(json_object_get(p.args, "amount"));
        const char *from = json_string_value(json_object_get(p.args, "from"));
        const char *to = json_string_value(json_object_get(p.args, "to"));
        json_t *accounts = json_object_get(expected, "accounts");
        json_t *a = json_object_get(accounts, from), *b = json_object_get(accounts, to);
        json_object_set_new(
            a, "balance", json_integer(json_integer_value(json_object_get(a, "balance")) - amount));
        json_object_set_new(
            b, "balance", json_integer(json_integer_value(json_object_get(b, "balance")) + amount));
    }
    /* Versions inside the accounts move too; compare balances only. */
    const char *id;
    json_t *acc;
    json_object_foreach (json_object_get(expected, "accounts"), id, acc)
        assert_int_equal(json_integer_value(json_object_get(acc, "balance")), balance_in(view, id));
    json_decref(expected);
    json_decref(view);
    json_decref(confirmed);
}

static void on_view(void *user, const char *stream)
{
    probe *p = user;
    p->view_changes++;
    if (p->check_views && p->client != NULL) {
        check_draft(p->client);
        p->view_checks++;
    }
    arb_client_pending pending;
    uint64_t version = 0;
    if (p->predict_from > 0 && p->client != NULL) {
        json_decref(arb_client_confirmed(p->client, stream, &version));
        if (version >= p->predict_from && arb_client_pending_at(p->client, 0, &pending) == 0) {
            assert_int_equal(pending.predicted_code, p->predicted);
            assert_false(pending.applied);
            p->predictions++;
        }
    }
}

static void on_outcome(void *user, const arb_client_outcome *outcome)
{
    probe *p = user;
    if (outcome->committed)
        p->committed++;
    else
        p->rejected++;
    p->last_code = outcome->code;
}

static void on_connection(void *user, arb_client_state state, int code)
{
    (void)code;
    ((probe *)user)->state = state;
}

static void on_events(void *user, const char *stream, const arb_event *events, size_t count)
{
    probe *p = user;
    (void)stream;
    for (size_t i = 0; i < count; i++) {
        if (p->next_event_seq != 0 && events[i].seq != p->next_event_seq)
            p->gap = true;
        p->next_event_seq = events[i].seq + 1;
    }
}

static arb_client *open_client(const fixture *f, const char *id, const char *outbox, probe *p)
{
    char path[1200];
    if (outbox != NULL)
        snprintf(path, sizeof path, "%s/%s", f->dir, outbox);
    arb_client_config config = {
        .url = f->server.ws_url,
        .client_id = id,
        .role = strcmp(id, "admin") == 0 ? ARB_ROLE_ADMIN : ARB_ROLE_USER,
        .outbox_path = outbox != NULL ? path : NULL,
        .backoff_initial_ms = 20,
        .backoff_max_ms = 300,
        .callbacks = {.view_changed = on_view,
                      .outcome = on_outcome,
                      .connection = on_connection,
                      .events = on_events,
                      .user = p},
    };
    arb_client *client = NULL;
    assert_int_equal(arb_client_open(&config, &client), 0);
    p->client = client;
    return client;
}

static uint64_t transfer(arb_client *client, const char *from, const char *to, long long amount,
                         arb_policy policy)
{
    json_t *args =
        json_pack("{s:s, s:s, s:I}", "from", from, "to", to, "amount", (json_int_t)amount);
    uint64_t seq = 0;
    assert_int_equal(arb_client_propose(client, LEDGER, "transfer", args, policy, &seq), 0);
    json_decref(args);
    return seq;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef bool (*done_fn)(arb_client *const clients[], size_t count, void *user);

/* Service every client until done; fails after WAIT_MS. */
static void run_until(arb_client *const clients[], size_t count, done_fn done, void *user)
{
    int64_t deadline = wall_ms() + WAIT_MS;
    while (!done(clients, count, user)) {
        if (wall_ms() > deadline)
            fail_msg("the clients did not settle within %d ms", WAIT_MS);
        for (size_t i = 0; i < count; i++)
            arb_client_service(clients[i], count == 1 ? 20 : 2);
    }
}

/* The server's state of f->stream as client_id sees it, and its version. */
static json_t *server_state(const fixture *f, const char *client_id, uint64_t *version)
{
    char headers[128], path[256];
    snprintf(headers, sizeof headers, "X-Client-Id: %s\r\n", client_id);
    snprintf(path, sizeof path, "/v1/streams/%s", f->stream);
    json_t *body = NULL;
    assert_int_equal(test_http(&f->server, "GET", path, headers, NULL, &body), 200);
    *version = (uint64_t)json_integer_value(json_object_get(body, "version"));
    json_t *state = json_incref(json_object_get(body, "state"));
    json_decref(body);
    assert_non_null(state);
    return state;
}

/* Settled: no proposal waits, and every client is at the server's version. */
static bool settled(arb_client *const clients[], size_t count, void *user)
{
    const fixture *f = user;
    for (size_t i = 0; i < count; i++)
        if (arb_client_pending_count(clients[i]) != 0)
            return false;
    uint64_t version;
    json_decref(server_state(f, "admin", &version));
    for (size_t i = 0; i < count; i++) {
        uint64_t mine = 0;
        json_t *view = arb_client_confirmed(clients[i], f->stream, &mine);
        json_decref(view);
        if (view == NULL || mine != version)
            return false;
    }
    return true;
}

/* Every view equals the server's state as that client sees it. */
static void assert_converged(const fixture *f, arb_client *const clients[], size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t version, mine;
        json_t *expected = server_state(f, arb_client_id(clients[i]), &version);
        json_t *view = arb_client_view(clients[i], f->stream, &mine);
        json_t *confirmed = arb_client_confirmed(clients[i], f->stream, NULL);
        assert_int_equal(mine, version);
        assert_true(json_equal(view, expected));
        assert_true(json_equal(confirmed, expected));
        json_decref(expected);
        json_decref(view);
        json_decref(confirmed);
    }
}

static bool has_state(arb_client *const clients[], size_t count, void *user)
{
    const fixture *f = user;
    for (size_t i = 0; i < count; i++) {
        json_t *view = arb_client_confirmed(clients[i], f->stream, NULL);
        json_decref(view);
        if (view == NULL)
            return false;
    }
    return true;
}

static bool outbox_empty(arb_client *const clients[], size_t count, void *user)
{
    (void)user;
    for (size_t i = 0; i < count; i++)
        if (arb_client_pending_count(clients[i]) != 0)
            return false;
    return true;
}

static void subscribe_all(const fixture *f, arb_client *const clients[], size_t count)
{
    for (size_t i = 0; i < count; i++)
        assert_int_equal(arb_client_subscribe(clients[i], f->stream), 0);
    run_until(clients, count, has_state, (void *)f);
}

/* An optimistic transfer shows in the view at once, and the confirmed state
 * does not move until the server's events arrive. */
static void test_optimistic_then_confirmed(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, LEDGER, owners, 2, 100);
    probe p = {.check_views = true};
    arb_client *alice = open_client(f, "alice", "alice.outbox", &p);
    subscribe_all(f, &alice, 1);

    transfer(alice, "alice", "bob", 30, ARB_POLICY_OPTIMISTIC);
    json_t *view = arb_client_view(alice, LEDGER, NULL);
    json_t *confirmed = arb_client_confirmed(alice, LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 70);
    assert_int_equal(balance_in(view, "bob"), 130);
    assert_int_equal(balance_in(confirmed, "alice"), 100);
    json_decref(view);
    json_decref(confirmed);
    assert_int_equal(arb_client_pending_count(alice), 1);
    arb_client_pending pending;
    assert_int_equal(arb_client_pending_at(alice, 0, &pending), 0);
    assert_true(pending.applied);
    assert_int_equal(pending.predicted_code, 0);

    /* PENDING shows in the list but not in the view; PESSIMISTIC neither. */
    transfer(alice, "alice", "bob", 5, ARB_POLICY_PENDING);
    transfer(alice, "alice", "bob", 7, ARB_POLICY_PESSIMISTIC);
    view = arb_client_view(alice, LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 70);
    json_decref(view);

    run_until(&alice, 1, settled, f);
    assert_int_equal(p.committed, 3);
    assert_false(p.gap);
    assert_true(p.view_checks > 0);
    assert_converged(f, &alice, 1);
    view = arb_client_view(alice, LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 58);
    json_decref(view);
    arb_client_destroy(alice);
}

/* Funds spent by another client while this one was offline: the draft
 * predicts the rejection on the rebased state, the server rejects, the view
 * rolls back, and both clients converge to the server's state. */
static void test_rejection_rolls_back(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob", "carol"};
    test_ledger_setup(&f->server, LEDGER, owners, 3, 100);
    probe pa = {.check_views = true}, pb = {0};
    arb_client *clients[2] = {open_client(f, "alice", "alice.outbox", &pa),
                              open_client(f, "admin", NULL, &pb)};
    subscribe_all(f, clients, 2);

    arb_client_set_online(clients[0], false);
    arb_client_service(clients[0], 0);
    transfer(clients[0], "alice", "bob", 80, ARB_POLICY_OPTIMISTIC);
    json_t *view = arb_client_view(clients[0], LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 20);
    json_decref(view);

    /* The admin spends from alice's account meanwhile. */
    transfer(clients[1], "alice", "carol", 50, ARB_POLICY_PESSIMISTIC);
    run_until(&clients[1], 1, outbox_empty, NULL);
    assert_int_equal(pb.committed, 1);

    arb_client_set_online(clients[0], true);
    run_until(clients, 2, settled, f);
    assert_int_equal(pa.rejected, 1);
    assert_int_equal(pa.last_code, ARB_EINSUFFICIENT_FUNDS);
    assert_false(pa.gap);
    assert_converged(f, clients, 2);
    view = arb_client_view(clients[0], LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 50);
    assert_int_equal(balance_in(view, "bob"), 100);
    json_decref(view);
    arb_client_destroy(clients[0]);
    arb_client_destroy(clients[1]);
}

/* Another client's commit arrives while two proposals are pending: the view
 * is the new confirmed state with both replayed, at every step. */
static void test_rebase(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob", "carol"};
    test_ledger_setup(&f->server, LEDGER, owners, 3, 100);
    probe pa = {.check_views = true}, pb = {0};
    arb_client *clients[2] = {open_client(f, "alice", "alice.outbox", &pa),
                              open_client(f, "bob", NULL, &pb)};
    subscribe_all(f, clients, 2);

    arb_client_set_online(clients[0], false);
    arb_client_service(clients[0], 0);
    transfer(clients[0], "alice", "carol", 10, ARB_POLICY_OPTIMISTIC);
    transfer(clients[0], "alice", "bob", 20, ARB_POLICY_OPTIMISTIC);
    transfer(clients[1], "bob", "alice", 40, ARB_POLICY_OPTIMISTIC);
    run_until(&clients[1], 1, outbox_empty, NULL);

    size_t checks = pa.view_checks;
    arb_client_set_online(clients[0], true);
    run_until(clients, 2, settled, f);
    assert_true(pa.view_checks > checks); /* the rebase and each verdict were checked */
    assert_int_equal(pa.committed, 2);
    assert_false(pa.gap || pb.gap);
    assert_converged(f, clients, 2);
    json_t *view = arb_client_view(clients[0], LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 110);
    json_decref(view);
    arb_client_destroy(clients[0]);
    arb_client_destroy(clients[1]);
}

/* How many events of LEDGER client_id proposed, per client_seq: each must
 * be there exactly once. Returns the number of distinct client_seqs. */
static size_t count_logged(const fixture *f, const char *client_id, uint64_t first, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/streams/" LEDGER "/events?since=0&limit=1000");
    json_t *body = NULL;
    assert_int_equal(test_http(&f->server, "GET", path, "X-Client-Id: admin\r\n", NULL, &body),
                     200);
    unsigned *seen = calloc(n, sizeof *seen);
    size_t i, distinct = 0;
    json_t *event;
    json_array_foreach (json_object_get(body, "events"), i, event) {
        if (strcmp(json_string_value(json_object_get(event, "client_id")), client_id) != 0)
            continue;
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(event, "client_seq"));
        assert_true(seq >= first && seq < first + n);
        assert_int_equal(seen[seq - first]++, 0); /* never twice */
        distinct++;
    }
    free(seen);
    json_decref(body);
    return distinct;
}

/* The application crashes (SIGKILL) with 100 proposals in its outbox, some
 * sent and some not; restarted, it resends them with their client_seqs and
 * the server applies each exactly once. */
static void test_crash_with_outbox(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, LEDGER, owners, 2, 1000);
    uint64_t first = 0;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        probe p = {0};
        arb_client *alice = open_client(f, "alice", "crash.outbox", &p);
        uint64_t seq = 0;
        for (int i = 0; i < 100; i++) {
            seq = transfer(alice, "alice", "bob", 1, ARB_POLICY_OPTIMISTIC);
            if (i == 0 && write(fds[1], &seq, sizeof seq) != sizeof seq)
                _exit(2);
            if (i == 40) /* online for a moment: some are sent, some answered */
                arb_client_service(alice, 30);
            if (i == 41)
                arb_client_set_online(alice, false);
        }
        raise(SIGKILL);
        _exit(3);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &first, sizeof first), (ssize_t)sizeof first);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    probe p = {0};
    arb_client *alice = open_client(f, "alice", "crash.outbox", &p);
    size_t queued = arb_client_pending_count(alice);
    assert_true(queued > 0 && queued <= 100);
    assert_int_equal(arb_client_subscribe(alice, LEDGER), 0);
    run_until(&alice, 1, settled, f);
    assert_int_equal(count_logged(f, "alice", first, 100), 100);
    assert_int_equal(p.committed, queued);
    assert_converged(f, &alice, 1);
    json_t *view = arb_client_view(alice, LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 900);
    json_decref(view);
    /* New proposals continue above the old ones. */
    assert_true(transfer(alice, "alice", "bob", 1, ARB_POLICY_OPTIMISTIC) >= first + 100);
    run_until(&alice, 1, settled, f);
    arb_client_destroy(alice);
}

/* The server is killed mid-stream and started again: the client reconnects,
 * resumes its subscription without a gap, and its outbox drains. */
static void test_server_killed(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, LEDGER, owners, 2, 1000);
    probe pa = {0}, pb = {0};
    arb_client *clients[2] = {open_client(f, "alice", "alice.outbox", &pa),
                              open_client(f, "bob", "bob.outbox", &pb)};
    subscribe_all(f, clients, 2);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 30; i++) {
            transfer(clients[0], "alice", "bob", 1, ARB_POLICY_OPTIMISTIC);
            transfer(clients[1], "bob", "alice", 2, ARB_POLICY_OPTIMISTIC);
            arb_client_service(clients[0], 0);
            arb_client_service(clients[1], 0);
        }
        assert_int_equal(test_server_stop(&f->server, SIGKILL), 128 + SIGKILL);
        for (int i = 0; i < 10; i++) { /* proposals made while the server is down */
            transfer(clients[0], "alice", "bob", 1, ARB_POLICY_OPTIMISTIC);
            arb_client_service(clients[0], 5);
            arb_client_service(clients[1], 5);
        }
        test_server_restart(&f->server);
        run_until(clients, 2, settled, f);
    }
    assert_false(pa.gap || pb.gap);
    assert_int_equal(pa.committed, 120);
    assert_int_equal(pb.committed, 90);
    assert_converged(f, clients, 2);
    json_t *view = arb_client_view(clients[0], LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice") + balance_in(view, "bob"), 2000);
    assert_int_equal(balance_in(view, "alice"), 1000 - 120 + 180);
    json_decref(view);
    arb_client_destroy(clients[0]);
    arb_client_destroy(clients[1]);
}

/* 200 proposals queued while the server is down, then one sync: each gets
 * its verdict (the funds cover 150), and the view ends at the server's state.
 * The draft predicted exactly which ones would fail. */
static void test_offline_queue(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, LEDGER, owners, 2, 150);
    probe p = {.check_views = true};
    arb_client *alice = open_client(f, "alice", "alice.outbox", &p);
    subscribe_all(f, &alice, 1);
    assert_int_equal(test_server_stop(&f->server, SIGTERM), 0);
    run_until(&alice, 1, has_state, f);
    for (int i = 0; i < 200; i++)
        transfer(alice, "alice", "bob", 1, ARB_POLICY_OPTIMISTIC);
    arb_client_service(alice, 50);
    assert_int_equal(arb_client_pending_count(alice), 200);
    json_t *view = arb_client_view(alice, LEDGER, NULL);
    assert_int_equal(balance_in(view, "alice"), 0);
    json_decref(view);
    arb_client_pending pending;
    assert_int_equal(arb_client_pending_at(alice, 150, &pending), 0);
    assert_false(pending.applied);
    assert_int_equal(pending.predicted_code, ARB_EINSUFFICIENT_FUNDS);

    test_server_restart(&f->server);
    run_until(&alice, 1, settled, f);
    assert_int_equal(p.committed, 150);
    assert_int_equal(p.rejected, 50);
    assert_int_equal(p.last_code, ARB_EINSUFFICIENT_FUNDS);
    assert_converged(f, &alice, 1);
    arb_client_destroy(alice);
}

/* Several clients, random transfers (some overdrawing), random disconnects:
 * at quiescence every view equals the server's state and money is kept. */
static void test_random_convergence(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob", "carol", "dave"};
    enum { N = 4 };
    test_ledger_setup(&f->server, LEDGER, owners, N, 500);
    uint64_t rng = test_seed("client_random_convergence");
    probe probes[N] = {{0}};
    arb_client *clients[N];
    for (size_t i = 0; i < N; i++) {
        char outbox[64];
        snprintf(outbox, sizeof outbox, "%s.outbox", owners[i]);
        probes[i].check_views = true;
        clients[i] = open_client(f, owners[i], outbox, &probes[i]);
    }
    subscribe_all(f, clients, N);
    for (int step = 0; step < 600; step++) {
        size_t who = (size_t)test_random_below(&rng, N);
        uint64_t roll = test_random_below(&rng, 100);
        if (roll < 70) {
            size_t to = (who + 1 + (size_t)test_random_below(&rng, N - 1)) % N;
            transfer(clients[who], owners[who], owners[to],
                     1 + (long long)test_random_below(&rng, 120),
                     (arb_policy)test_random_below(&rng, 3));
        } else if (roll < 80) {
            arb_client_set_online(clients[who], false);
        } else if (roll < 90) {
            arb_client_set_online(clients[who], true);
        }
        for (size_t i = 0; i < N; i++)
            arb_client_service(clients[i], 0);
    }
    for (size_t i = 0; i < N; i++)
        arb_client_set_online(clients[i], true);
    run_until(clients, N, settled, f);
    assert_converged(f, clients, N);
    json_t *view = arb_client_view(clients[0], LEDGER, NULL);
    json_int_t sum = 0;
    for (size_t i = 0; i < N; i++)
        sum += balance_in(view, owners[i]);
    assert_int_equal(sum, 500 * N);
    json_decref(view);
    for (size_t i = 0; i < N; i++) {
        assert_false(probes[i].gap);
        arb_client_destroy(clients[i]);
    }
}

/* The shop through the SDK: a user's view is partial (other users'
 * reservations are hidden), and the draft still predicts the user's own
 * reservations on it, including a SOLD_OUT after a rebase onto another
 * user's reservation whose owner it cannot see. */
static void test_shop_draft(void **state)
{
    fixture *f = *state;
    f->stream = SHOP;
    probe pa = {0}, pb = {0}, pc = {0};
    arb_client *admin = open_client(f, "admin", NULL, &pc);
    json_t *args = json_pack("{s:s, s:i, s:s}", "sku", "lamp", "stock", 3, "name", "Lamp");
    assert_int_equal(
        arb_client_propose(admin, SHOP, "add_item", args, ARB_POLICY_PESSIMISTIC, NULL), 0);
    json_decref(args);
    run_until(&admin, 1, outbox_empty, NULL);
    assert_int_equal(pc.committed, 1);

    arb_client *clients[2] = {open_client(f, "alice", "alice.outbox", &pa),
                              open_client(f, "bob", "bob.outbox", &pb)};
    subscribe_all(f, clients, 2);
    arb_client_set_online(clients[0], false);
    arb_client_service(clients[0], 0);
    args = json_pack("{s:s, s:i, s:i}", "sku", "lamp", "quantity", 2, "ttl_s", 600);
    assert_int_equal(
        arb_client_propose(clients[0], SHOP, "reserve", args, ARB_POLICY_OPTIMISTIC, NULL), 0);
    json_t *view = arb_client_view(clients[0], SHOP, NULL);
    json_t *lamp = json_object_get(json_object_get(view, "items"), "lamp");
    assert_int_equal(json_integer_value(json_object_get(lamp, "available")), 1);
    assert_int_equal(json_object_size(json_object_get(view, "reservations")), 1);
    json_decref(view);

    /* bob takes two of the three meanwhile. */
    assert_int_equal(
        arb_client_propose(clients[1], SHOP, "reserve", args, ARB_POLICY_PESSIMISTIC, NULL), 0);
    json_decref(args);
    run_until(&clients[1], 1, outbox_empty, NULL);
    assert_int_equal(pb.committed, 1);

    /* alice's draft, rebased on bob's reservation (seq 2, after add_item's
     * seq 1), predicts SOLD_OUT before the server says it. */
    pa.predict_from = 2;
    pa.predicted = ARB_ESOLD_OUT;
    arb_client_set_online(clients[0], true);
    run_until(clients, 2, settled, f);
    assert_int_equal(pa.rejected, 1);
    assert_int_equal(pa.last_code, ARB_ESOLD_OUT);
    assert_true(pa.predictions > 0);
    assert_converged(f, clients, 2);
    view = arb_client_view(clients[0], SHOP, NULL);
    assert_int_equal(json_object_size(json_object_get(view, "reservations")), 0);
    json_decref(view);
    arb_client_destroy(clients[0]);
    arb_client_destroy(clients[1]);
    arb_client_destroy(admin);
}

/* The client's own thread: proposals from the application's thread while
 * the SDK's thread services and runs the callbacks (TSan watches the lock). */
static void test_own_thread(void **state)
{
    fixture *f = *state;
    const char *owners[] = {"alice", "bob"};
    test_ledger_setup(&f->server, LEDGER, owners, 2, 1000);
    probe p = {.check_views = true};
    arb_client *alice = open_client(f, "alice", "alice.outbox", &p);
    assert_int_equal(arb_client_subscribe(alice, LEDGER), 0);
    assert_int_equal(arb_client_start(alice), 0);
    assert_int_equal(arb_client_start(alice), ARB_EINVALID_ARGUMENT);
    for (int i = 0; i < 100; i++) {
        transfer(alice, "alice", "bob", 3, ARB_POLICY_OPTIMISTIC);
        json_decref(arb_client_view(alice, LEDGER, NULL));
    }
    int64_t deadline = wall_ms() + WAIT_MS;
    while (arb_client_pending_count(alice) > 0 && wall_ms() < deadline) {
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    arb_client_stop(alice); /* joins: the probe is ours to read after it */
    assert_int_equal(arb_client_pending_count(alice), 0);
    assert_int_equal(p.committed, 100);
    run_until(&alice, 1, settled, f);
    assert_converged(f, &alice, 1);
    arb_client_destroy(alice);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_optimistic_then_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejection_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_with_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_convergence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shop_draft, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
