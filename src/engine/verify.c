/*
 * verify.c - arbiter verify: prove a data directory is what the engine wrote.
 *
 * Reads the log read-only (safe beside a running server) and, for every
 * stream, from its first event: seq contiguity, every hash of the chain,
 * every event through its rules, the invariants after every check_every
 * events and at the end, and the newest snapshot against the state replayed
 * to the same seq. Stops at the first problem and names it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/canon.h"
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
    arb_buf_init(&v.scratch, 2 * ARB_EVENT_BYTES_MAX);
    rc = v.store->ops->streams(v.store, verify_stream, &v);
    arb_buf_free(&v.scratch);
    free(v.snapshot_text);
    v.store->ops->close(v.store);
    return rc;
}
