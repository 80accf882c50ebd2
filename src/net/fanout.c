/*
 * fanout.c - subscriptions, and committed events to the subscribers of
 * their stream.
 *
 * A topic is the set of connections watching one stream: WebSocket
 * subscribers and HTTP long polls. A subscription's life:
 *
 *   subscribe --> pending --(engine: snapshot or catch-up at seq V)--> active
 *                    |                                                 |
 *                    +----------------- unsubscribe / close -----------+
 *
 * While pending, committed events are not sent: they are <= V (the engine
 * drained before it read V, and releases arrive in order). Once active, each
 * release of events sends a patch of the events after the subscription's
 * seq; the first must be seq + 1. A gap would be a bug: the connection is
 * then closed (4002) rather than sent a wrong state, and the client resyncs.
 *
 * Per-viewer redaction: each event's data passes through the stream's rule
 * module's redact for the subscriber's principal. Rule modules are pure, so
 * this runs on the network thread while the engine decides. When redact
 * hands back the event's own data for every event (the ledger), the patch
 * text is encoded once and shared by all such subscribers.
 */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/log.h"
#include "net/internal.h"

typedef struct arb__topic {
    size_t count;
    size_t cap;
    uint64_t *conns;
} arb__topic;

int arb__topic_add(arb__server *server, const char *stream, uint64_t conn)
{
    arb__topic *topic = arb_map_get(&server->topics, stream);
    if (topic == NULL) {
        topic = calloc(1, sizeof *topic);
        if (topic == NULL)
            return ARB_ENOMEM;
        int rc = arb_map_put(&server->topics, stream, topic);
        if (rc != 0) {
            free(topic);
            return rc;
        }
    }
    if (topic->count == topic->cap) {
        size_t cap = topic->cap == 0 ? 4 : topic->cap * 2;
        uint64_t *conns = realloc(topic->conns, cap * sizeof *conns);
        if (conns == NULL)
            return ARB_ENOMEM;
        topic->conns = conns;
        topic->cap = cap;
    }
    topic->conns[topic->count++] = conn;
    arb__bridge_watch(server->bridge, 1);
    return 0;
}

void arb__topic_remove(arb__server *server, const char *stream, uint64_t conn)
{
    arb__topic *topic = arb_map_get(&server->topics, stream);
    if (topic == NULL)
        return;
    for (size_t i = 0; i < topic->count; i++) {
        if (topic->conns[i] != conn)
            continue;
        topic->conns[i] = topic->conns[--topic->count];
        arb__bridge_watch(server->bridge, -1);
        break;
    }
    if (topic->count == 0) {
        arb_map_remove(&server->topics, stream);
        free(topic->conns);
        free(topic);
    }
}

static int free_topic(void *user, const char *key, void *value)
{
    (void)user;
    (void)key;
    arb__topic *topic = value;
    free(topic->conns);
    free(topic);
    return 0;
}

void arb__topics_free(arb__server *server)
{
    arb_map_foreach(&server->topics, free_topic, NULL);
}

static arb__subscription *find_subscription(arb__conn *conn, const char *stream)
{
    for (size_t i = 0; i < conn->sub_count; i++)
        if (strcmp(conn->subs[i].stream, stream) == 0)
            return &conn->subs[i];
    return NULL;
}

int arb__subscribe(arb__conn *conn, const arb_wire_subscribe *subscribe)
{
    if (find_subscription(conn, subscribe->stream) != NULL) {
        arb__conn_send_error(conn, ARB_EINVALID_ARGUMENT, "stream",
                             "already subscribed to this stream (unsubscribe first)");
        return ARB_EINVALID_ARGUMENT;
    }
    if (conn->sub_count >= ARB_WIRE_SUBSCRIPTIONS_MAX) {
        arb__conn_send_error(conn, ARB_ELIMIT, "stream", "at most 64 subscriptions per connection");
        return ARB_ELIMIT;
    }
    if (conn->subs == NULL)
        conn->subs = calloc(ARB_WIRE_SUBSCRIPTIONS_MAX, sizeof *conn->subs);
    arb__request *request = arb__request_new(ARB__REQUEST_SUBSCRIBE, conn->id);
    if (conn->subs == NULL || request == NULL ||
        arb__topic_add(conn->server, subscribe->stream, conn->id) != 0) {
        arb__request_free(request);
        arb__conn_send_error(conn, ARB_ENOMEM, "", NULL);
        return ARB_ENOMEM;
    }
    arb__subscription *sub = &conn->subs[conn->sub_count++];
    memset(sub, 0, sizeof *sub);
    memcpy(sub->stream, subscribe->stream, sizeof sub->stream);
    atomic_fetch_add(&conn->server->metrics.subscriptions, 1);
    request->principal = conn->principal;
    memcpy(request->stream, subscribe->stream, sizeof request->stream);
    request->has_since = subscribe->has_since;
    request->since = subscribe->since;
    arb__conn_request(conn, request); /* on refusal it unsubscribes */
    return 0;
}

int arb__unsubscribe(arb__conn *conn, const char *stream)
{
    arb__subscription *sub = find_subscription(conn, stream);
    if (sub == NULL)
        return ARB_ENOTFOUND;
    arb__topic_remove(conn->server, stream, conn->id);
    *sub = conn->subs[--conn->sub_count];
    atomic_fetch_sub(&conn->server->metrics.subscriptions, 1);
    return 0;
}

void arb__unsubscribe_all(arb__conn *conn)
{
    while (conn->sub_count > 0)
        arb__unsubscribe(conn, conn->subs[conn->sub_count - 1].stream);
}

void arb__subscribed(arb__conn *conn, arb__release *release)
{
    arb__subscription *sub = find_subscription(conn, release->stream);
    if (sub == NULL || sub->active)
        return; /* unsubscribed meanwhile */
    arb__conn_send(conn, release->msg);
    if (release->status != 0) {
        atomic_fetch_add(&conn->server->metrics.frames_refused, 1);
        arb__unsubscribe(conn, release->stream);
        return;
    }
    sub->active = true;
    sub->seq = release->seq;
}

/* The patch of events[0..count) (one stream, seq order) as conn may see it. */
static arb__msg *patch_for(arb__conn *conn, const arb_rules *rules, const arb_event *events,
                           size_t count, arb__msg **shared)
{
    arb_event *seen = calloc(count, sizeof *seen);
    if (seen == NULL)
        return NULL;
    size_t kept = 0;
    bool unchanged = true;
    for (size_t i = 0; i < count; i++) {
        json_t *data = rules != NULL ? rules->redact(&events[i], &conn->principal)
                                     : json_incref(events[i].data);
        unchanged = unchanged && data == events[i].data;
        if (data == NULL)
            continue;
        seen[kept] = events[i];
        seen[kept++].data = data;
    }
    arb__msg *msg = NULL;
    if (unchanged && *shared != NULL) {
        msg = *shared;
        msg->refs++;
    } else if (kept > 0) {
        arb_buf buf;
        arb_buf_init(&buf, SIZE_MAX / 2);
        if (arb_wire_encode_patch(&buf, events[0].stream, seen, kept) == 0)
            msg = arb__msg_from_buf(&buf);
        arb_buf_free(&buf);
        if (unchanged && msg != NULL) {
            *shared = msg;
            msg->refs++;
        }
    }
    for (size_t i = 0; i < kept; i++)
        json_decref(seen[i].data);
    free(seen);
    return msg;
}

static void send_patch(arb__conn *conn, const arb_rules *rules, const arb_event *events,
                       size_t count, arb__msg **shared)
{
    arb__subscription *sub = find_subscription(conn, events[0].stream);
    if (sub == NULL || !sub->active)
        return;
    size_t skip = 0;
    while (skip < count && events[skip].seq <= sub->seq)
        skip++;
    if (skip == count)
        return;
    if (events[skip].seq != sub->seq + 1) {
        arb_log(ARB_LOG_ERROR, "patch gap; closing the subscriber",
                "conn=%llu stream=%s have=%llu next=%llu", (unsigned long long)conn->id,
                sub->stream, (unsigned long long)sub->seq, (unsigned long long)events[skip].seq);
        arb__conn_close(conn, 4002, "gap in the event stream; resubscribe");
        return;
    }
    arb__msg *msg = patch_for(conn, rules, events + skip, count - skip, shared);
    sub->seq = events[count - 1].seq;
    if (msg != NULL) {
        arb__conn_send(conn, msg);
        arb__msg_unref(msg);
    }
}

/* Deliver one stream's events[0..count) to its topic. */
static void fanout_stream(arb__server *server, const arb_event *events, size_t count)
{
    arb__topic *topic = arb_map_get(&server->topics, events[0].stream);
    if (topic == NULL || topic->count == 0)
        return;
    char kind[ARB_KIND_BYTES_MAX + 1];
    size_t kind_len = strcspn(events[0].stream, ":");
    snprintf(kind, sizeof kind, "%.*s", (int)kind_len, events[0].stream);
    const arb_rules *rules = arb_rules_find(kind);
    /* Waking a long poll may change the topic: walk a copy. */
    size_t n = topic->count;
    uint64_t *conns = malloc(n * sizeof *conns);
    if (conns == NULL)
        return;
    memcpy(conns, topic->conns, n * sizeof *conns);
    arb__msg *shared = NULL;
    for (size_t i = 0; i < n; i++) {
        arb__conn *conn = arb__conn_find(server, conns[i]);
        if (conn == NULL)
            continue;
        if (conn->is_ws)
            send_patch(conn, rules, events, count, &shared);
        else
            arb__http_wake(conn, events[count - 1].seq);
    }
    arb__msg_unref(shared);
    free(conns);
}

/* Order events by stream, then by position in the commit (stable). */
static int compare_by_stream(const void *a, const void *b)
{
    const arb_event *const *x = a;
    const arb_event *const *y = b;
    int order = strcmp((*x)->stream, (*y)->stream);
    return order != 0 ? order : (*x < *y ? -1 : *x > *y);
}

void arb__fanout(arb__server *server, arb__release *release)
{
    /* Events come in commit order, streams interleaved: group each stream's
     * events (in commit order, which is seq order within a stream). */
    size_t total = release->event_count;
    const arb_event **order = malloc(total * sizeof *order);
    arb_event *run = malloc(total * sizeof *run);
    if (order == NULL || run == NULL) {
        free(order);
        free(run);
        return;
    }
    for (size_t i = 0; i < total; i++)
        order[i] = &release->events[i];
    qsort(order, total, sizeof *order, compare_by_stream);
    for (size_t i = 0; i < total;) {
        size_t count = 0;
        do {
            run[count++] = *order[i++];
        } while (i < total && strcmp(order[i]->stream, run[0].stream) == 0);
        ARB_ASSERT(count == 1 || run[count - 1].seq > run[count - 2].seq);
        fanout_stream(server, run, count);
    }
    free(order);
    free(run);
}
