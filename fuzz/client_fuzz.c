/*
 * client_fuzz.c - fuzz target for the client SDK's receive path: the
 * server's messages as a client takes them (src/client/receive.c), folded
 * into its confirmed state and draft (src/client/draft.c), and the draft
 * replayed through the rule modules' view_load, decide and evolve.
 *
 * Each input gets a fresh offline client ("alice", a user, url NULL, the
 * outbox in memory) that follows ledger:f and shop:f and has made six
 * proposals, CS1 … CS6 (the table below), as if they had been sent on a
 * connection that is waiting for its welcome. The input is then a sequence
 * of server messages, one per line ('\n'); in each, the tokens CS1 … CS6
 * are replaced by the decimal client_seq of that proposal (client_seqs
 * start from the clock, so the seeds cannot spell them). A line that is
 * exactly "#resend" stands for a new connection: every undecided proposal
 * counts as sent again and the client waits for a welcome. There is no
 * socket: the harness sets those fields of client/internal.h itself, and
 * calls arb__client_receive under the client's lock as the service loop does.
 *
 * After every message, properties checked:
 *   - view and confirmed of each stream agree on the version and on being
 *     there at all; no state means version 0; a state is a JSON object;
 *   - with no proposal of the stream applied, the view equals confirmed
 *     (the draft is a view -> view_load copy of confirmed, a fixed point);
 *   - the outbox lists exactly arb_client_pending_count proposals, in the
 *     order they were made, each one of ours with its own stream, action and
 *     policy; only an OPTIMISTIC one is applied or has a predicted code, and
 *     an applied one has no code and a confirmed state under it;
 *   - every proposal gets at most one verdict, reported through the outcome
 *     callback with its own stream and action, a committed one with code 0,
 *     a rejected one with a known code that is not transient and a message;
 *     decided plus undecided is always six;
 *   - the events callback gets events of the stream it names, seqs
 *     increasing, above the confirmed version before the message, and only
 *     while there is a confirmed state for them to fold into (client.h:
 *     "as they fold into confirmed").
 * Destroying the client saves the confirmed views to the outbox. With
 * ARB_FUZZ_TRACE set, every line, verdict, event batch, refusal and the
 * views after it are printed to stderr.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter/client.h"
#include "arbiter/error.h"
#include "client/internal.h"
#include "core/assert.h"
#include "core/log.h"
#include "fuzz.h"

/* A line longer than this is cut (libFuzzer's inputs are far smaller; the
 * corpus test can replay anything). */
#define CLIENT_FUZZ_LINE_BYTES_MAX (1024 * 1024)
/* The longest decimal client_seq: ARB_JSON_INT_MAX has 16 digits. */
#define CLIENT_FUZZ_SEQ_DIGITS_MAX 20

typedef struct client_fuzz_proposal {
    const char *stream;
    const char *action;
    const char *args; /* JSON */
    arb_policy policy;
} client_fuzz_proposal;

/* The accounts, holds, skus and reservations of the seeds. */
static const client_fuzz_proposal client_fuzz_proposals[] = {
    {"ledger:f", "transfer", "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":100}",
     ARB_POLICY_OPTIMISTIC},
    {"ledger:f", "hold", "{\"from\":\"a1\",\"to\":\"b1\",\"amount\":50,\"timeout_s\":60}",
     ARB_POLICY_OPTIMISTIC},
    {"ledger:f", "transfer", "{\"from\":\"a2\",\"to\":\"b1\",\"amount\":30}", ARB_POLICY_PENDING},
    {"shop:f", "reserve", "{\"sku\":\"mug\",\"quantity\":2,\"ttl_s\":600}", ARB_POLICY_OPTIMISTIC},
    {"shop:f", "confirm", "{\"reservation\":\"r3\"}", ARB_POLICY_PENDING},
    {"ledger:f", "capture", "{\"pending\":\"p9\",\"amount\":20}", ARB_POLICY_PESSIMISTIC},
};
#define CLIENT_FUZZ_PROPOSALS (sizeof client_fuzz_proposals / sizeof client_fuzz_proposals[0])

static const char *const client_fuzz_streams[] = {"ledger:f", "shop:f"};
#define CLIENT_FUZZ_STREAMS (sizeof client_fuzz_streams / sizeof client_fuzz_streams[0])

/* What one input's client did, as its callbacks saw it. */
typedef struct client_fuzz_run {
    arb_client *client;
    uint64_t seqs[CLIENT_FUZZ_PROPOSALS]; /* each proposal's client_seq */
    bool decided[CLIENT_FUZZ_PROPOSALS];
    size_t decided_count;
    uint64_t versions[CLIENT_FUZZ_STREAMS]; /* confirmed versions before the message */
    bool trace;                             /* ARB_FUZZ_TRACE: say what happens on stderr */
} client_fuzz_run;

static size_t client_fuzz_index_of_seq(const client_fuzz_run *run, uint64_t client_seq)
{
    for (size_t i = 0; i < CLIENT_FUZZ_PROPOSALS; i++)
        if (run->seqs[i] == client_seq)
            return i;
    return CLIENT_FUZZ_PROPOSALS;
}

static size_t client_fuzz_index_of_stream(const char *stream)
{
    for (size_t i = 0; i < CLIENT_FUZZ_STREAMS; i++)
        if (strcmp(client_fuzz_streams[i], stream) == 0)
            return i;
    return CLIENT_FUZZ_STREAMS;
}

static void client_fuzz_on_outcome(void *user, const arb_client_outcome *outcome)
{
    client_fuzz_run *run = user;
    size_t i = client_fuzz_index_of_seq(run, outcome->client_seq);
    ARB_ASSERT(i < CLIENT_FUZZ_PROPOSALS && !run->decided[i]);
    ARB_ASSERT(strcmp(outcome->stream, client_fuzz_proposals[i].stream) == 0);
    ARB_ASSERT(strcmp(outcome->action, client_fuzz_proposals[i].action) == 0);
    ARB_ASSERT(outcome->message != NULL);
    if (outcome->committed) {
        ARB_ASSERT(outcome->code == 0 && outcome->details == NULL);
    } else {
        ARB_ASSERT(outcome->code < 0 && strcmp(arb_err_name(outcome->code), "UNKNOWN_ERROR") != 0);
        ARB_ASSERT(outcome->code != ARB_EOVERLOADED && outcome->code != ARB_ESHUTTING_DOWN);
        ARB_ASSERT(outcome->result == NULL);
    }
    run->decided[i] = true;
    run->decided_count++;
    if (run->trace)
        fprintf(stderr, "  outcome CS%zu: %s%s\n", i + 1,
                outcome->committed ? "committed" : arb_err_name(outcome->code),
                outcome->replay ? " (replay)" : "");
}

static void client_fuzz_on_events(void *user, const char *stream, const arb_event *events,
                                  size_t count)
{
    client_fuzz_run *run = user;
    size_t s = client_fuzz_index_of_stream(stream);
    ARB_ASSERT(s < CLIENT_FUZZ_STREAMS && count >= 1);
    /* Events fold into confirmed: there must be one. */
    json_t *confirmed = arb_client_confirmed(run->client, stream, NULL);
    ARB_ASSERT(confirmed != NULL);
    json_decref(confirmed);
    for (size_t i = 0; i < count; i++) {
        ARB_ASSERT(strcmp(events[i].stream, stream) == 0);
        ARB_ASSERT(json_is_object(events[i].data));
        ARB_ASSERT(i == 0 || events[i].seq > events[i - 1].seq);
    }
    ARB_ASSERT(events[0].seq > run->versions[s]);
    if (run->trace)
        fprintf(stderr, "  events %s: %zu, seq %llu to %llu\n", stream, count,
                (unsigned long long)events[0].seq, (unsigned long long)events[count - 1].seq);
}

static void client_fuzz_on_view_changed(void *user, const char *stream)
{
    (void)user;
    ARB_ASSERT(client_fuzz_index_of_stream(stream) < CLIENT_FUZZ_STREAMS);
}

static void client_fuzz_on_error(void *user, int code, const char *message)
{
    const client_fuzz_run *run = user;
    ARB_ASSERT(code < 0 && message != NULL);
    if (run->trace)
        fprintf(stderr, "  error %s: %s\n", arb_err_name(code), message);
}

/* Open the client, follow both streams, make the proposals, and count them
 * as sent on a connection waiting for its welcome. */
static void client_fuzz_open(client_fuzz_run *run)
{
    arb_client_config config = {
        .url = NULL,
        .client_id = "alice",
        .role = ARB_ROLE_USER,
        .outbox_path = NULL,
        .callbacks =
            {
                .view_changed = client_fuzz_on_view_changed,
                .outcome = client_fuzz_on_outcome,
                .events = client_fuzz_on_events,
                .error = client_fuzz_on_error,
                .user = run,
            },
    };
    ARB_ASSERT(arb_client_open(&config, &run->client) == 0);
    for (size_t s = 0; s < CLIENT_FUZZ_STREAMS; s++)
        ARB_ASSERT(arb_client_subscribe(run->client, client_fuzz_streams[s]) == 0);
    for (size_t i = 0; i < CLIENT_FUZZ_PROPOSALS; i++) {
        const client_fuzz_proposal *p = &client_fuzz_proposals[i];
        json_t *args = json_loads(p->args, 0, NULL);
        ARB_ASSERT(args != NULL);
        ARB_ASSERT(arb_client_propose(run->client, p->stream, p->action, args, p->policy,
                                      &run->seqs[i]) == 0);
        ARB_ASSERT(i == 0 || run->seqs[i] > run->seqs[i - 1]);
        json_decref(args);
    }
}

/* A new connection: every undecided proposal is sent on it, no verdict yet. */
static void client_fuzz_resend(arb_client *client)
{
    client->state = ARB_CLIENT_CONNECTING;
    for (arb__pending *p = client->head; p != NULL; p = p->next) {
        if (!p->sent) {
            p->sent = true;
            client->inflight++;
        }
    }
    ARB_ASSERT(client->inflight <= client->pending_count);
}

/* line with CS1 … CS6 replaced by the seqs, into out (room for it all). */
static size_t client_fuzz_substitute(const client_fuzz_run *run, const char *line, size_t len,
                                     char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && line[i] == 'C' && line[i + 1] == 'S' && line[i + 2] >= '1' &&
            line[i + 2] < (char)('1' + CLIENT_FUZZ_PROPOSALS)) {
            n += (size_t)snprintf(out + n, CLIENT_FUZZ_SEQ_DIGITS_MAX + 1, "%llu",
                                  (unsigned long long)run->seqs[line[i + 2] - '1']);
            i += 2;
        } else {
            out[n++] = line[i];
        }
    }
    out[n] = '\0';
    return n;
}

/* The outbox after a message: ours, in order, with coherent flags. */
static void client_fuzz_check_pending(client_fuzz_run *run, bool applied[CLIENT_FUZZ_STREAMS])
{
    size_t count = arb_client_pending_count(run->client);
    ARB_ASSERT(count + run->decided_count == CLIENT_FUZZ_PROPOSALS);
    ARB_ASSERT(run->client->inflight <= count);
    size_t next = 0; /* the proposals are a subsequence of ours */
    for (size_t i = 0; i < count; i++) {
        arb_client_pending pending;
        ARB_ASSERT(arb_client_pending_at(run->client, i, &pending) == 0);
        while (next < CLIENT_FUZZ_PROPOSALS && run->seqs[next] != pending.client_seq)
            next++;
        ARB_ASSERT(next < CLIENT_FUZZ_PROPOSALS && !run->decided[next]);
        const client_fuzz_proposal *p = &client_fuzz_proposals[next];
        ARB_ASSERT(strcmp(pending.stream, p->stream) == 0);
        ARB_ASSERT(strcmp(pending.action, p->action) == 0);
        ARB_ASSERT(pending.policy == p->policy && json_is_object(pending.args));
        ARB_ASSERT(pending.policy == ARB_POLICY_OPTIMISTIC ||
                   (!pending.applied && pending.predicted_code == 0));
        ARB_ASSERT(!pending.applied || pending.predicted_code == 0);
        size_t s = client_fuzz_index_of_stream(pending.stream);
        ARB_ASSERT(s < CLIENT_FUZZ_STREAMS);
        applied[s] = applied[s] || pending.applied;
        next++;
    }
    arb_client_pending beyond;
    ARB_ASSERT(arb_client_pending_at(run->client, count, &beyond) == ARB_ENOTFOUND);
}

static void client_fuzz_check_views(client_fuzz_run *run)
{
    bool applied[CLIENT_FUZZ_STREAMS] = {false};
    client_fuzz_check_pending(run, applied);
    for (size_t s = 0; s < CLIENT_FUZZ_STREAMS; s++) {
        uint64_t view_version = 1, confirmed_version = 1;
        json_t *view = arb_client_view(run->client, client_fuzz_streams[s], &view_version);
        json_t *confirmed =
            arb_client_confirmed(run->client, client_fuzz_streams[s], &confirmed_version);
        ARB_ASSERT(view_version == confirmed_version);
        ARB_ASSERT((view == NULL) == (confirmed == NULL));
        ARB_ASSERT(confirmed != NULL || confirmed_version == 0);
        ARB_ASSERT(!applied[s] || confirmed != NULL);
        if (confirmed != NULL) {
            ARB_ASSERT(json_is_object(view) && json_is_object(confirmed));
            ARB_ASSERT(applied[s] || json_equal(view, confirmed));
        }
        run->versions[s] = confirmed_version;
        if (run->trace) {
            char *text = view != NULL ? json_dumps(view, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            fprintf(stderr, "  %s at %llu%s: %.200s\n", client_fuzz_streams[s],
                    (unsigned long long)confirmed_version, applied[s] ? " (draft)" : "",
                    text != NULL ? text : "no state");
            free(text);
        }
        json_decref(view);
        json_decref(confirmed);
    }
}

int arb_fuzz_client(const uint8_t *data, size_t size)
{
    /* The client reports every refused message as a warning: too many for
     * a fuzzer's output. */
    arb_log_set_level(ARB_LOG_ERROR);
    client_fuzz_run run;
    memset(&run, 0, sizeof run);
    run.trace = getenv("ARB_FUZZ_TRACE") != NULL;
    client_fuzz_open(&run);
    client_fuzz_resend(run.client);
    client_fuzz_check_views(&run);

    const char *text = (const char *)data;
    size_t longest = size < CLIENT_FUZZ_LINE_BYTES_MAX ? size : CLIENT_FUZZ_LINE_BYTES_MAX;
    /* Each 3-byte token grows to at most CLIENT_FUZZ_SEQ_DIGITS_MAX bytes. */
    char *message = malloc(longest / 3 * CLIENT_FUZZ_SEQ_DIGITS_MAX + longest % 3 + 1);
    ARB_ASSERT(message != NULL);
    size_t start = 0;
    while (start < size) {
        const char *end = memchr(text + start, '\n', size - start);
        size_t len = end != NULL ? (size_t)(end - (text + start)) : size - start;
        size_t used = len < CLIENT_FUZZ_LINE_BYTES_MAX ? len : CLIENT_FUZZ_LINE_BYTES_MAX;
        if (run.trace)
            fprintf(stderr, "line: %.*s\n", (int)(used < 120 ? used : 120), text + start);
        if (used == 7 && memcmp(text + start, "#resend", 7) == 0) {
            client_fuzz_resend(run.client);
        } else {
            size_t message_len = client_fuzz_substitute(&run, text + start, used, message);
            pthread_mutex_lock(&run.client->lock);
            arb__client_receive(run.client, message, message_len);
            pthread_mutex_unlock(&run.client->lock);
        }
        client_fuzz_check_views(&run);
        start += len + 1;
    }
    free(message);
    arb_client_destroy(run.client);
    return 0;
}

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return arb_fuzz_client(data, size);
}
#endif
