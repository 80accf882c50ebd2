/*
 * timers.c - the deadline queue: a binary min-heap of (at_ms, stream, action,
 * args).
 *
 * Rule modules report deadlines through a sink while they evolve (or load a
 * snapshot); arb_engine_tick pops the due ones and proposes them as the
 * system principal through the ordinary path, so an expiry is an event in
 * the log like any other. A deadline is never dropped: past ARB_TIMERS_MAX
 * the process stops (a silently lost expiry would leave money held forever).
 * Entries may be stale (the hold was captured meanwhile): a module with
 * timer_due tells the tick to drop those without a proposal (the poker
 * table's turns played in time); otherwise the rules reject them when they
 * fire.
 *
 * Invariant: items[parent(i)].at_ms <= items[i].at_ms for every i > 0.
 */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/log.h"
#include "engine/internal.h"

void arb__timers_init(arb__timer_heap *heap)
{
    heap->items = NULL;
    heap->count = 0;
    heap->cap = 0;
}

void arb__timers_free(arb__timer_heap *heap)
{
    for (size_t i = 0; i < heap->count; i++)
        json_decref(heap->items[i].args);
    free(heap->items);
    arb__timers_init(heap);
}

static void heap_swap(arb__timer *a, arb__timer *b)
{
    arb__timer t = *a;
    *a = *b;
    *b = t;
}

static void heap_push(arb__timer_heap *heap, const arb__timer *timer)
{
    if (heap->count == heap->cap) {
        if (heap->cap >= ARB_TIMERS_MAX) {
            arb_log(ARB_LOG_ERROR, "timer queue full; stopping rather than drop a deadline",
                    "timers_max=%d", ARB_TIMERS_MAX);
            abort();
        }
        size_t cap = heap->cap == 0 ? 64 : heap->cap * 2;
        arb__timer *items = realloc(heap->items, cap * sizeof *items);
        ARB_ASSERT(items != NULL);
        heap->items = items;
        heap->cap = cap;
    }
    size_t i = heap->count++;
    heap->items[i] = *timer;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap->items[parent].at_ms <= heap->items[i].at_ms)
            break;
        heap_swap(&heap->items[parent], &heap->items[i]);
        i = parent;
    }
}

const arb__timer *arb__timers_peek(const arb__timer_heap *heap)
{
    return heap->count > 0 ? &heap->items[0] : NULL;
}

void arb__timers_pop(arb__timer_heap *heap, arb__timer *timer_out)
{
    ARB_ASSERT(heap->count > 0);
    *timer_out = heap->items[0];
    heap->items[0] = heap->items[--heap->count];
    size_t i = 0;
    for (;;) {
        size_t left = 2 * i + 1;
        size_t right = left + 1;
        size_t smallest = i;
        if (left < heap->count && heap->items[left].at_ms < heap->items[smallest].at_ms)
            smallest = left;
        if (right < heap->count && heap->items[right].at_ms < heap->items[smallest].at_ms)
            smallest = right;
        if (smallest == i)
            break;
        heap_swap(&heap->items[i], &heap->items[smallest]);
        i = smallest;
    }
}

void arb__timers_move(arb__timer_heap *to, arb__timer_heap *from)
{
    ARB_ASSERT(to != from);
    size_t moved = 0;
    size_t count = from->count;
    while (from->count > 0) {
        arb__timer timer;
        arb__timers_pop(from, &timer);
        heap_push(to, &timer); /* the args reference moves with it */
        moved++;
    }
    ARB_ASSERT(moved == count);
}

static void sink_add(void *user, int64_t at_ms, const char *action, json_t *args)
{
    arb__timer_target *target = user;
    arb__timer timer;
    timer.at_ms = at_ms;
    timer.stream = target->stream;
    if (arb_copy_name(timer.action, sizeof timer.action, action) != 0) {
        arb_log(ARB_LOG_ERROR, "timer action name too long; rule module bug", "stream=%s",
                target->stream->name);
        abort();
    }
    timer.args = json_is_object(args) ? json_incref(args) : json_object();
    ARB_ASSERT(timer.args != NULL);
    heap_push(target->heap, &timer);
}

arb_timer_sink arb__timer_sink(arb__timer_target *target)
{
    arb_timer_sink sink = {.add = sink_add, .user = target};
    return sink;
}

int64_t arb_engine_next_deadline(const arb_engine *engine)
{
    const arb__timer *first = arb__timers_peek(&engine->timers);
    return first != NULL ? first->at_ms : INT64_MAX;
}
