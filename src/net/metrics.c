/*
 * metrics.c - the server's counters and their Prometheus text exposition
 * (GET /metrics).
 *
 * Every counter is an atomic written by the thread that sees the event (the
 * engine thread for outcomes and batches, the network thread for
 * connections) and read at render time, so /metrics costs the hot path one
 * relaxed add per counter. Histograms are cumulative bucket counts as
 * Prometheus wants them, with a sum and a count.
 */
#include <stdio.h>

#include "core/assert.h"
#include "net/internal.h"

/* Commit latency buckets, microseconds (the last is +Inf). */
static const uint64_t latency_bounds_us[ARB__LATENCY_BUCKETS - 1] = {
    250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000, 1024000};

void arb__metrics_outcome(arb__metrics *metrics, const arb_outcome *outcome)
{
    if (outcome->replay)
        atomic_fetch_add_explicit(&metrics->replayed, 1, memory_order_relaxed);
    if (outcome->kind == ARB_OUTCOME_COMMITTED) {
        atomic_fetch_add_explicit(&metrics->committed, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&metrics->rejected, 1, memory_order_relaxed);
    int index = -outcome->code;
    if (index > 0 && index < 128)
        atomic_fetch_add_explicit(&metrics->rejected_by_code[index], 1, memory_order_relaxed);
}

void arb__metrics_batch(arb__metrics *metrics, size_t proposals, uint64_t commit_us)
{
    ARB_ASSERT(proposals <= ARB_BATCH_PROPOSALS_MAX);
    atomic_fetch_add_explicit(&metrics->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics->batch_proposals, proposals, memory_order_relaxed);
    size_t bucket = 0;
    while (bucket + 1 < ARB__BATCH_BUCKETS && proposals > ((size_t)1 << bucket))
        bucket++;
    atomic_fetch_add_explicit(&metrics->batch_size[bucket], 1, memory_order_relaxed);
    size_t slot = 0;
    while (slot + 1 < ARB__LATENCY_BUCKETS && commit_us > latency_bounds_us[slot])
        slot++;
    atomic_fetch_add_explicit(&metrics->commit_latency[slot], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics->commit_latency_us, commit_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics->commit_count, 1, memory_order_relaxed);
}

static int line(arb_buf *buf, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int line(arb_buf *buf, const char *format, ...)
{
    char text[256];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text, sizeof text, format, args);
    va_end(args);
    ARB_ASSERT(n > 0 && (size_t)n < sizeof text);
    return arb_buf_append(buf, text, (size_t)n);
}

#define LOAD(field)                                                                                \
    ((unsigned long long)atomic_load_explicit(&metrics->field, memory_order_relaxed))

static int render_counters(const arb__metrics *metrics, arb_buf *buf)
{
    int rc = 0;
    rc |= line(buf, "# HELP arbiter_proposals_total Proposals answered, by outcome.\n"
                    "# TYPE arbiter_proposals_total counter\n");
    rc |= line(buf, "arbiter_proposals_total{outcome=\"committed\"} %llu\n", LOAD(committed));
    rc |= line(buf, "arbiter_proposals_total{outcome=\"rejected\"} %llu\n", LOAD(rejected));
    rc |= line(buf,
               "# HELP arbiter_replays_total Proposals answered with a stored outcome.\n"
               "# TYPE arbiter_replays_total counter\narbiter_replays_total %llu\n",
               LOAD(replayed));
    rc |= line(buf, "# HELP arbiter_rejections_total Rejected proposals, by code.\n"
                    "# TYPE arbiter_rejections_total counter\n");
    for (int index = 1; index < 128; index++) {
        unsigned long long count =
            atomic_load_explicit(&metrics->rejected_by_code[index], memory_order_relaxed);
        if (count > 0)
            rc |= line(buf, "arbiter_rejections_total{code=\"%s\"} %llu\n", arb_err_name(-index),
                       count);
    }
    return rc;
}

static int render_histograms(const arb__metrics *metrics, arb_buf *buf)
{
    int rc = line(buf, "# HELP arbiter_batch_proposals Proposals per committed batch.\n"
                       "# TYPE arbiter_batch_proposals histogram\n");
    unsigned long long cumulative = 0;
    for (size_t i = 0; i < ARB__BATCH_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&metrics->batch_size[i], memory_order_relaxed);
        if (i + 1 < ARB__BATCH_BUCKETS)
            rc |= line(buf, "arbiter_batch_proposals_bucket{le=\"%zu\"} %llu\n", (size_t)1 << i,
                       cumulative);
        else
            rc |= line(buf, "arbiter_batch_proposals_bucket{le=\"+Inf\"} %llu\n", cumulative);
    }
    rc |= line(buf, "arbiter_batch_proposals_sum %llu\narbiter_batch_proposals_count %llu\n",
               LOAD(batch_proposals), LOAD(batches));
    rc |= line(buf, "# HELP arbiter_commit_seconds From submit to durable, per batch.\n"
                    "# TYPE arbiter_commit_seconds histogram\n");
    cumulative = 0;
    for (size_t i = 0; i < ARB__LATENCY_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&metrics->commit_latency[i], memory_order_relaxed);
        if (i + 1 < ARB__LATENCY_BUCKETS)
            rc |= line(buf, "arbiter_commit_seconds_bucket{le=\"%.6f\"} %llu\n",
                       (double)latency_bounds_us[i] / 1e6, cumulative);
        else
            rc |= line(buf, "arbiter_commit_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
    }
    rc |= line(buf, "arbiter_commit_seconds_sum %.6f\narbiter_commit_seconds_count %llu\n",
               (double)LOAD(commit_latency_us) / 1e6, LOAD(commit_count));
    return rc;
}

static int render_gauges(const arb__metrics *metrics, arb_buf *buf)
{
    int rc = 0;
    rc |= line(buf,
               "# HELP arbiter_connections Open connections, by protocol.\n"
               "# TYPE arbiter_connections gauge\n"
               "arbiter_connections{protocol=\"websocket\"} %llu\n"
               "arbiter_connections{protocol=\"http\"} %llu\n",
               LOAD(connections_ws), LOAD(connections_http));
    rc |= line(buf,
               "# HELP arbiter_connections_total Connections accepted.\n"
               "# TYPE arbiter_connections_total counter\narbiter_connections_total %llu\n",
               LOAD(connections_total));
    rc |= line(buf,
               "# HELP arbiter_subscriptions Active stream subscriptions.\n"
               "# TYPE arbiter_subscriptions gauge\narbiter_subscriptions %llu\n",
               LOAD(subscriptions));
    rc |= line(buf,
               "# HELP arbiter_queue_proposals Proposals queued for the engine thread.\n"
               "# TYPE arbiter_queue_proposals gauge\narbiter_queue_proposals %llu\n",
               LOAD(queue_proposals));
    rc |= line(buf,
               "# HELP arbiter_frames_refused_total Frames answered with an error.\n"
               "# TYPE arbiter_frames_refused_total counter\n"
               "arbiter_frames_refused_total %llu\n",
               LOAD(frames_refused));
    rc |= line(buf,
               "# HELP arbiter_slow_readers_closed_total Connections closed as too slow.\n"
               "# TYPE arbiter_slow_readers_closed_total counter\n"
               "arbiter_slow_readers_closed_total %llu\n",
               LOAD(slow_readers_closed));
    rc |= line(buf,
               "# HELP arbiter_overloaded_total Proposals refused as OVERLOADED.\n"
               "# TYPE arbiter_overloaded_total counter\narbiter_overloaded_total %llu\n",
               LOAD(overloaded));
    rc |= line(buf,
               "# HELP arbiter_events_fanned_out_total Committed events copied for "
               "subscribers.\n# TYPE arbiter_events_fanned_out_total counter\n"
               "arbiter_events_fanned_out_total %llu\n",
               LOAD(events_fanned_out));
    return rc;
}

int arb__metrics_render(const arb__metrics *metrics, arb_buf *buf)
{
    int rc = render_counters(metrics, buf);
    rc |= render_histograms(metrics, buf);
    rc |= render_gauges(metrics, buf);
    return rc == 0 ? 0 : ARB_ETOO_LARGE;
}
