/*
 * verify.c - arbiter verify: prove a data directory is what the engine wrote.
 *
 * Reads the log read-only, as of one moment (a pinned read snapshot: safe
 * and consistent beside a running server), and, for every stream, from its
 * first event: seq contiguity, every hash of the chain,
 * every event through its rules, the invariants after every check_every
 * events and at the end, and the newest snapshot against the state replayed
 * to the same seq. Then the outcomes: every committed outcome's seq range
 * must hold exactly that proposal's events, and together the ranges must
 * cover every event once; and the idempotency keys must find every outcome
 * (the store's check). The domains' proof events replayed are counted by
 * name (the poker table's fair_hands: hands whose deck and cards were
 * re-derived from the committed seed). Stops at the first problem and
 * names it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/canon.h"
#include "core/map.h"
#include "engine/internal.h"

typedef struct verifier {
    arb_store *store;
    uint64_t check_every;
    arb_verify_report *report;
    arb__stream *stream;
    arb_timer_sink sink;
    arb_buf scratch;
    uint64_t snapshot_seq;
    char *snapshot_text;
    size_t snapshot_len;
    arb_map heads;                    /* stream name -> head seq (in the pointer) */
    uint64_t events_claimed;          /* events covered by committed outcomes */
    const arb_store_outcome *outcome; /* the outcome whose events are read */
    uint64_t outcome_events;
} verifier;

static void ignore_timer(void *user, int64_t at_ms, const char *action, json_t *args)
{
    (void)user;
    (void)at_ms;
    (void)action;
    (void)args;
}

static int fail(verifier *v, uint64_t seq, const char *why)
{
    arb_verify_report *report = v->report;
    snprintf(report->stream, sizeof report->stream, "%s", v->stream->name);
    report->seq = seq;
    snprintf(report->why, sizeof report->why, "%s", why);
    return ARB_ECORRUPT;
}

static int compare_snapshot(verifier *v)
{
    json_t *state = NULL;
    arb_buf text;
    arb_buf_init(&text, ARB_SNAPSHOT_BYTES_MAX);
    int rc = v->stream->rules->snapshot_save(v->stream->state, &state);
    if (rc == 0)
        rc = arb_canon_json(&text, state);
    bool same = rc == 0 && text.len == v->snapshot_len &&
                memcmp(text.data, v->snapshot_text, text.len) == 0;
    json_decref(state);
    arb_buf_free(&text);
    if (!same)
        return fail(v, v->snapshot_seq, "the stored snapshot differs from the replayed state");
    v->report->snapshots_compared++;
    return 0;
}

/* One more replay of a domain's proof event under name. */
static void count_proof(arb_verify_report *report, const char *name)
{
    size_t slots = sizeof report->proofs / sizeof report->proofs[0];
    for (size_t i = 0; i < slots; i++) {
        if (report->proofs[i].name == NULL)
            report->proofs[i].name = name;
        if (strcmp(report->proofs[i].name, name) == 0) {
            report->proofs[i].count++;
            return;
        }
    }
}

static int verify_event(void *user, const arb_event *event, const char *data_json, size_t len)
{
    verifier *v = user;
    char why[256];
    uint64_t expected = v->stream->seq + 1;
    int rc =
        arb__replay_event(v->stream, event, data_json, len, &v->sink, &v->scratch, why, sizeof why);
    if (rc != 0) /* a gap is named by the missing seq */
        return fail(v, event->seq > expected ? expected : event->seq, why);
    v->report->events++;
    const arb_rules *rules = v->stream->rules;
    if (rules->proof_event != NULL && strcmp(event->type, rules->proof_event) == 0)
        count_proof(v->report, rules->proof_name);
    if (event->seq % v->check_every == 0 &&
        v->stream->rules->check(v->stream->state, why, sizeof why) != 0)
        return fail(v, event->seq, why);
    if (event->seq == v->snapshot_seq)
        return compare_snapshot(v);
    return 0;
}

static int verify_stream(void *user, const char *name, const char *kind, uint64_t head_seq)
{
    verifier *v = user;
    arb__stream *stream = NULL;
    int rc = arb__stream_new(name, &stream);
    if (rc != 0 || strcmp(stream->kind, kind) != 0) {
        arb__stream_free(stream);
        snprintf(v->report->stream, sizeof v->report->stream, "%s", name);
        snprintf(v->report->why, sizeof v->report->why, "stream of unknown kind %s", kind);
        return ARB_ECORRUPT;
    }
    v->stream = stream;
    v->report->streams++;
    if (arb_map_put(&v->heads, name, (void *)(uintptr_t)head_seq) != 0) {
        arb__stream_free(stream);
        return ARB_ENOMEM;
    }
    v->snapshot_seq = 0;
    free(v->snapshot_text);
    v->snapshot_text = NULL;
    if (v->store->ops->snapshot_get(v->store, name, &v->snapshot_seq, &v->snapshot_text,
                                    &v->snapshot_len) != 0)
        v->snapshot_seq = 0;
    rc = v->store->ops->events(v->store, name, 0, 0, verify_event, v);
    char why[256];
    if (rc == 0 && stream->seq != head_seq)
        rc = fail(v, stream->seq + 1, "the log ends before the stream's last seq");
    if (rc == 0 && stream->rules->check(stream->state, why, sizeof why) != 0)
        rc = fail(v, stream->seq, why);
    if (rc == 0 && v->snapshot_seq > stream->seq)
        rc = fail(v, v->snapshot_seq, "a snapshot is newer than the log");
    if (rc != 0 && v->report->why[0] == '\0')
        rc = fail(v, stream->seq + 1, arb_err_message(rc));
    arb__stream_free(stream);
    v->stream = NULL;
    return rc;
}

static int fail_outcome(verifier *v, const arb_store_outcome *row, const char *why)
{
    arb_verify_report *report = v->report;
    snprintf(report->stream, sizeof report->stream, "%s", row->stream);
    report->seq = row->seq_first;
    snprintf(report->why, sizeof report->why, "outcome of %s/%llu: %s", row->client_id,
             (unsigned long long)row->client_seq, why);
    return ARB_ECORRUPT;
}

static int outcome_event(void *user, const arb_event *event, const char *data_json, size_t len)
{
    (void)data_json;
    (void)len;
    verifier *v = user;
    const arb_store_outcome *row = v->outcome;
    if (event->client_seq != row->client_seq || strcmp(event->client_id, row->client_id) != 0)
        return fail_outcome(v, row, "an event of its range was proposed by someone else");
    v->outcome_events++;
    return 0;
}

static int verify_outcome(void *user, const arb_store_outcome *row)
{
    verifier *v = user;
    v->report->outcomes++;
    if (row->kind != ARB_OUTCOME_COMMITTED)
        return 0;
    uint64_t head = (uint64_t)(uintptr_t)arb_map_get(&v->heads, row->stream);
    if (row->seq_first == 0 || row->seq_last < row->seq_first || row->seq_last > head)
        return fail_outcome(v, row, "acknowledged events that are not in the log");
    v->outcome = row;
    v->outcome_events = 0;
    uint64_t count = row->seq_last - row->seq_first + 1;
    int rc =
        v->store->ops->events(v->store, row->stream, row->seq_first - 1, count, outcome_event, v);
    if (rc != 0)
        return rc;
    if (v->outcome_events != count)
        return fail_outcome(v, row, "acknowledged events are missing from the log");
    v->events_claimed += count;
    return 0;
}

static int verify_outcomes(verifier *v)
{
    int rc = v->store->ops->outcomes(v->store, verify_outcome, v);
    if (rc != 0 && v->report->why[0] == '\0')
        snprintf(v->report->why, sizeof v->report->why,
                 "an outcome row cannot be read: %s (its checksum or a field failed a check)",
                 arb_err_message(rc));
    if (rc == 0 && v->events_claimed != v->report->events) {
        snprintf(v->report->why, sizeof v->report->why,
                 "committed outcomes cover %llu events but the log holds %llu",
                 (unsigned long long)v->events_claimed, (unsigned long long)v->report->events);
        rc = ARB_ECORRUPT;
    }
    return rc;
}

int arb_verify(const char *data_dir, uint64_t check_every, arb_verify_report *report)
{
    memset(report, 0, sizeof *report);
    verifier v = {.check_every = check_every > 0 ? check_every : 1, .report = report};
    v.sink.add = ignore_timer;
    int rc = arb_store_sqlite_open(data_dir, ARB_STORE_READ_ONLY, &v.store);
    if (rc != 0) {
        snprintf(report->why, sizeof report->why, "cannot open %s: %s", data_dir,
                 arb_err_message(rc));
        return rc;
    }
    /* One snapshot for the whole run: beside a running server, streams,
     * events and outcomes are then all read as of this moment. */
    rc = v.store->ops->pin(v.store);
    if (rc != 0) {
        snprintf(report->why, sizeof report->why, "cannot read %s as of one moment: %s", data_dir,
                 arb_err_message(rc));
        v.store->ops->close(v.store);
        return rc;
    }
    arb_buf_init(&v.scratch, 2 * ARB_EVENT_BYTES_MAX);
    arb_map_init(&v.heads, ARB_STREAMS_MAX);
    rc = v.store->ops->streams(v.store, verify_stream, &v);
    if (rc == 0)
        rc = verify_outcomes(&v);
    if (rc == 0)
        rc = v.store->ops->check(v.store, report->why, sizeof report->why);
    arb_map_free(&v.heads);
    arb_buf_free(&v.scratch);
    free(v.snapshot_text);
    v.store->ops->close(v.store);
    return rc;
}
