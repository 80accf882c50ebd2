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
#include <stddef.h>
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

/* One cumulative histogram: buckets[0..count), the last one +Inf; le_of
 * writes bucket i's upper bound. */
static int histogram(arb_buf *buf, const char *name, const char *help,
                     const atomic_uint_fast64_t *buckets, size_t count,
                     void (*le_of)(size_t i, char *le, size_t size), const char *sum,
                     unsigned long long samples)
{
    int rc = line(buf, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cumulative = 0;
    for (size_t i = 0; i < count; i++) {
        cumulative += atomic_load_explicit(&buckets[i], memory_order_relaxed);
        char le[32] = "+Inf";
        if (i + 1 < count)
            le_of(i, le, sizeof le);
        rc |= line(buf, "%s_bucket{le=\"%s\"} %llu\n", name, le, cumulative);
    }
    rc |= line(buf, "%s_sum %s\n%s_count %llu\n", name, sum, name, samples);
    return rc;
}

static void batch_le(size_t i, char *le, size_t size)
{
    snprintf(le, size, "%zu", (size_t)1 << i);
}

static void latency_le(size_t i, char *le, size_t size)
{
    snprintf(le, size, "%.6f", (double)latency_bounds_us[i] / 1e6);
}

static int render_histograms(const arb__metrics *metrics, arb_buf *buf)
{
    char sum[32];
    snprintf(sum, sizeof sum, "%llu", LOAD(batch_proposals));
    int rc = histogram(buf, "arbiter_batch_proposals", "Proposals per committed batch.",
                       metrics->batch_size, ARB__BATCH_BUCKETS, batch_le, sum, LOAD(batches));
    snprintf(sum, sizeof sum, "%.6f", (double)LOAD(commit_latency_us) / 1e6);
    rc |= histogram(buf, "arbiter_commit_seconds", "From submit to durable, per batch.",
                    metrics->commit_latency, ARB__LATENCY_BUCKETS, latency_le, sum,
                    LOAD(commit_count));
    return rc;
}

/* The single-valued series: name, type, help, and where the value is. */
static const struct series {
    const char *name;
    const char *type;
    const char *help;
    size_t offset;
} single_series[] = {
    {"arbiter_replays_total", "counter", "Proposals answered with a stored outcome.",
     offsetof(arb__metrics, replayed)},
    {"arbiter_connections_total", "counter", "Connections accepted.",
     offsetof(arb__metrics, connections_total)},
    {"arbiter_subscriptions", "gauge", "Active stream subscriptions.",
     offsetof(arb__metrics, subscriptions)},
    {"arbiter_queue_proposals", "gauge", "Proposals queued for the engine thread.",
     offsetof(arb__metrics, queue_proposals)},
    {"arbiter_frames_refused_total", "counter", "Frames and requests answered with an error.",
     offsetof(arb__metrics, frames_refused)},
    {"arbiter_slow_readers_closed_total", "counter", "Connections closed as too slow.",
     offsetof(arb__metrics, slow_readers_closed)},
    {"arbiter_overloaded_total", "counter", "Proposals refused as OVERLOADED.",
     offsetof(arb__metrics, overloaded)},
    {"arbiter_events_fanned_out_total", "counter", "Committed events copied for subscribers.",
     offsetof(arb__metrics, events_fanned_out)},
};

static int render_gauges(const arb__metrics *metrics, arb_buf *buf)
{
    int rc = line(buf,
                  "# HELP arbiter_connections Open connections, by protocol.\n"
                  "# TYPE arbiter_connections gauge\n"
                  "arbiter_connections{protocol=\"websocket\"} %llu\n"
                  "arbiter_connections{protocol=\"http\"} %llu\n",
                  LOAD(connections_ws), LOAD(connections_http));
    for (size_t i = 0; i < sizeof single_series / sizeof single_series[0]; i++) {
        const struct series *series = &single_series[i];
        const atomic_uint_fast64_t *value =
            (const atomic_uint_fast64_t *)((const char *)metrics + series->offset);
        rc |= line(buf, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", series->name, series->help,
                   series->name, series->type, series->name,
                   (unsigned long long)atomic_load_explicit(value, memory_order_relaxed));
    }
    return rc;
}

int arb__metrics_render(const arb__metrics *metrics, arb_buf *buf)
{
    int rc = render_counters(metrics, buf);
    rc |= render_histograms(metrics, buf);
    rc |= render_gauges(metrics, buf);
    return rc == 0 ? 0 : ARB_ETOO_LARGE;
}
