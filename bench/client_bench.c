/*
 * client_bench.c - what the client SDK costs its application's thread
 * (docs/client.md, "Costs"; not a test).
 *
 *   propose   arb_client_propose into a file outbox (one fsync each) and into
 *             an in-memory one, offline: proposals/s and the median call
 *   rebase    a ledger of N accounts, P optimistic transfers pending: one
 *             patch from someone else, then the draft rebuilt (state_clone
 *             of confirmed, replay of the pending), then arb_client_view
 *             (the draft's view as JSON): median ms of each
 *
 * The states and patches are fed through the SDK's receive path, as the
 * server's messages would be.
 *
 *   build/bench/client_bench [DIR]     (DIR for the outbox file; default /tmp)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/client.h"
#include "client/internal.h"

#define PROPOSALS 400
#define REBASES 20

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, size_t count)
{
    qsort(values, count, sizeof *values, compare);
    return values[count / 2];
}

static arb_client *open_offline(const char *path)
{
    arb_client_config config = {.client_id = "alice", .outbox_path = path};
    arb_client *client = NULL;
    if (arb_client_open(&config, &client) != 0) {
        fprintf(stderr, "cannot open a client on %s\n", path != NULL ? path : ":memory:");
        exit(1);
    }
    return client;
}

static void bench_propose(const char *path, const char *label)
{
    arb_client *client = open_offline(path);
    json_t *args = json_pack("{s:s, s:s, s:i}", "from", "alice", "to", "bob", "amount", 1);
    static double took[PROPOSALS];
    double start = now_s();
    for (size_t i = 0; i < PROPOSALS; i++) {
        double t = now_s();
        if (arb_client_propose(client, "ledger:bench", "transfer", args, ARB_POLICY_OPTIMISTIC,
                               NULL) != 0) {
            fprintf(stderr, "propose failed\n");
            exit(1);
        }
        took[i] = now_s() - t;
    }
    double total = now_s() - start;
    printf("propose %-8s %8.0f proposals/s   median %.3f ms\n", label, PROPOSALS / total,
           median(took, PROPOSALS) * 1e3);
    json_decref(args);
    arb_client_destroy(client);
}

/* A ledger view with accounts a0..a{n-1} (a0 owned by alice), 1000 each. */
static char *ledger_snapshot(size_t accounts)
{
    json_t *map = json_object();
    for (size_t i = 0; i < accounts; i++) {
        char id[32];
        snprintf(id, sizeof id, "a%zu", i);
        json_object_set_new(map, id,
                            json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "owner",
                                      i == 0 ? "alice" : "someone", "currency", "EUR", "balance",
                                      1000, "held", 0, "overdraft_limit", 0, "version", 1));
    }
    json_t *state = json_pack("{s:i, s:o, s:{}, s:{s:{s:I, s:i}}}", "max_transfer", 1000000,
                              "accounts", map, "pending", "totals", "EUR", "deposited",
                              (json_int_t)(1000 * accounts), "withdrawn", 0);
    json_t *message = json_pack("{s:s, s:s, s:i, s:o}", "type", "snapshot", "stream",
                                "ledger:bench", "seq", 1, "state", state);
    char *text = json_dumps(message, JSON_COMPACT);
    json_decref(message);
    return text;
}

static void bench_rebase(size_t accounts, size_t pending)
{
    arb_client *client = open_offline(NULL);
    arb_client_subscribe(client, "ledger:bench");
    char *snapshot = ledger_snapshot(accounts);
    arb__client_receive(client, snapshot, strlen(snapshot));
    free(snapshot);
    json_t *args = json_pack("{s:s, s:s, s:i}", "from", "a0", "to", "a1", "amount", 1);
    for (size_t i = 0; i < pending; i++)
        arb_client_propose(client, "ledger:bench", "transfer", args, ARB_POLICY_OPTIMISTIC, NULL);
    json_decref(args);
    double took[REBASES], rebased[REBASES];
    for (size_t r = 0; r < REBASES; r++) {
        char patch[512];
        snprintf(patch, sizeof patch,
                 "{\"type\":\"patch\",\"stream\":\"ledger:bench\",\"seq\":%zu,\"events\":["
                 "{\"stream\":\"ledger:bench\",\"seq\":%zu,\"type\":\"transferred\",\"data\":"
                 "{\"from\":\"a2\",\"to\":\"a3\",\"amount\":1},"
                 "\"client_id\":\"someone\",\"client_seq\":%zu,"
                 "\"applied_at\":1,\"hash\":\"00\"}]}",
                 r + 2, r + 2, r + 1);
        arb__client_receive(client, patch, strlen(patch));
        double t = now_s();
        arb_client_pending first;
        arb_client_pending_at(client, 0, &first); /* the rebase alone */
        rebased[r] = now_s() - t;
        json_t *view = arb_client_view(client, "ledger:bench", NULL);
        took[r] = now_s() - t;
        if (view == NULL) {
            fprintf(stderr, "no view after patch %zu (does the event match the ledger's?)\n", r);
            exit(1);
        }
        json_decref(view);
    }
    printf("rebase   %6zu accounts %4zu pending   median %.3f ms, with the view's JSON %.3f ms\n",
           accounts, pending, median(rebased, REBASES) * 1e3, median(took, REBASES) * 1e3);
    arb_client_destroy(client);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[1024];
    snprintf(path, sizeof path, "%s/client_bench.%d.outbox", dir, (int)getpid());
    bench_propose(path, "file");
    bench_propose(NULL, "memory");
    unlink(path);
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    bench_rebase(100, 10);
    bench_rebase(10000, 10);
    bench_rebase(10000, 100);
    return 0;
}
