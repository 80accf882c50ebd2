/*
 * net/internal.h - what the files of src/net share.
 *
 * Two threads meet here:
 *
 *   network thread (lws service loop)          engine thread (bridge.c)
 *   ws.c, http.c, fanout.c, server.c           the only user of the engine
 *        |  arb__request  --(bridge queue)-->  decide, commit (pipelined)
 *        |  <--(release list)--  arb__release  outcomes, snapshots, events
 *
 * A request carries everything the engine needs (copied out of the frame);
 * a release carries everything the network thread sends (text already
 * encoded, or deep copies of committed events for the fan-out). Ownership
 * moves with the pointer: whoever holds a request or a release frees it. No
 * json_t is shared between the threads.
 *
 * Releases leave the engine thread only once the batch that decided them is
 * durable, and in the order they were decided; the network thread applies
 * them in that order, so per connection outcomes leave in decision order, and
 * per stream patches leave in seq order.
 */
#ifndef ARB_NET_INTERNAL_H
#define ARB_NET_INTERNAL_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arbiter/engine.h"
#include "arbiter/wire.h"
#include "core/buf.h"
#include "core/map.h"
#include "net/server.h"

/* ---- Outbound messages (network thread only) ---- */

/* One encoded message, shared by every connection it is queued on (a patch
 * to many subscribers). bytes holds LWS_PRE bytes of headroom, then the text. */
typedef struct arb__msg {
    size_t refs;
    size_t len;
    unsigned char bytes[];
} arb__msg;

#define ARB__MSG_TEXT(msg) ((char *)(msg)->bytes + LWS_PRE)

/* A copy of text[0..len) with one reference; NULL on ENOMEM. */
arb__msg *arb__msg_new(const char *text, size_t len);
/* The buffer's contents as a message; the buffer is reset. */
arb__msg *arb__msg_from_buf(arb_buf *buf);
void arb__msg_unref(arb__msg *msg);

/* ---- Metrics (atomics: written by both threads, read by /metrics) ---- */

#define ARB__LATENCY_BUCKETS 14
#define ARB__BATCH_BUCKETS 12

typedef struct arb__metrics {
    atomic_uint_fast64_t committed;
    atomic_uint_fast64_t rejected;
    atomic_uint_fast64_t replayed;
    atomic_uint_fast64_t rejected_by_code[128]; /* index: -code, codes are > -128 */
    atomic_uint_fast64_t batches;
    atomic_uint_fast64_t batch_size[ARB__BATCH_BUCKETS];       /* <= 1, 2, 4 ... 1024, +Inf */
    atomic_uint_fast64_t batch_proposals;                      /* sum */
    atomic_uint_fast64_t commit_latency[ARB__LATENCY_BUCKETS]; /* cumulative, see metrics.c */
    atomic_uint_fast64_t commit_latency_us;                    /* sum */
    atomic_uint_fast64_t commit_count;
    atomic_uint_fast64_t connections_ws;
    atomic_uint_fast64_t connections_http;
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t subscriptions;
    atomic_uint_fast64_t queue_proposals; /* network -> engine, now */
    atomic_uint_fast64_t frames_refused;
    atomic_uint_fast64_t slow_readers_closed;
    atomic_uint_fast64_t overloaded;
    atomic_uint_fast64_t events_fanned_out;
} arb__metrics;

void arb__metrics_outcome(arb__metrics *metrics, const arb_outcome *outcome);
void arb__metrics_batch(arb__metrics *metrics, size_t proposals, uint64_t commit_us);
/* The Prometheus text exposition into buf. */
int arb__metrics_render(const arb__metrics *metrics, arb_buf *buf);

/* ---- Network -> engine ---- */

typedef enum arb__request_kind {
    ARB__REQUEST_PROPOSE = 1, /* commands[0] */
    ARB__REQUEST_SYNC,        /* commands[0..count), atomic */
    ARB__REQUEST_SUBSCRIBE,   /* stream, since */
    ARB__REQUEST_STATE,       /* stream (HTTP GET) */
    ARB__REQUEST_EVENTS,      /* stream, since, limit (HTTP GET) */
    ARB__REQUEST_STREAMS,     /* the list of streams (HTTP GET) */
    ARB__REQUEST_HAND,        /* stream, hand: a hand history (HTTP GET) */
    ARB__REQUEST_PRESENCE,    /* principal came online / went offline (online) */
} arb__request_kind;

typedef struct arb__request {
    struct arb__request *next;
    arb__request_kind kind;
    uint64_t conn;           /* the asking connection */
    bool http;               /* answer as an HTTP response */
    arb_principal principal; /* the asker: proposer, viewer of reads */
    arb_command *commands;   /* owned, each with its args */
    size_t count;
    bool atomic;
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    bool has_since;
    uint64_t since;
    uint64_t limit;
    bool has_etag; /* STATE: If-None-Match held this version */
    uint64_t etag;
    uint64_t hand; /* HAND: its number, 1 .. 2^53-1 */
    bool online;   /* PRESENCE: its first session began (else its last ended) */
    size_t first;  /* engine thread: index of commands[0] in its batch */
} arb__request;

/* A zeroed request (NULL on ENOMEM); free with arb__request_free. */
arb__request *arb__request_new(arb__request_kind kind, uint64_t conn);
void arb__request_free(arb__request *request);

/* The HTTP status of an outcome or error code (200 for 0). */
int arb__http_status(int code);

/* ---- Engine -> network ---- */

typedef enum arb__release_kind {
    ARB__RELEASE_REPLY = 1,  /* msg to conn (an outcome, a sync result, a read) */
    ARB__RELEASE_SUBSCRIBED, /* msg to conn; the subscription starts after seq */
    ARB__RELEASE_EVENTS,     /* committed events, for subscribers and long polls */
    ARB__RELEASE_GARBAGE,    /* answered requests, freed by the thread that made them */
} arb__release_kind;

typedef struct arb__release {
    struct arb__release *next;
    arb__release_kind kind;
    uint64_t conn;
    uint32_t answered; /* proposals this answers (the connection's pending count) */
    int status;        /* HTTP status of a reply to an HTTP request */
    bool empty;        /* an events reply with no events (a long poll may wait) */
    arb__msg *msg;     /* REPLY, SUBSCRIBED: the text to send (one reference, owned) */
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    uint64_t seq;
    arb_event *events; /* EVENTS: deep copies, owned */
    size_t event_count;
    arb__request *garbage; /* GARBAGE: a list of requests, owned */
} arb__release;

void arb__release_free(arb__release *release);

/* ---- The bridge: the engine thread and the two queues (bridge.c) ---- */

typedef struct arb__bridge arb__bridge;

/* Start the engine thread; it wakes the network thread through
 * lws_cancel_service(context) whenever it has released something. */
int arb__bridge_start(arb_engine *engine, struct lws_context *context, arb__metrics *metrics,
                      arb__bridge **bridge_out);
/* Queue a request (ownership moves on success). ARB_EOVERLOADED when the
 * queue holds ARB_NET_QUEUE_PROPOSALS_MAX proposals, ARB_ESHUTTING_DOWN after
 * stop: the request stays the caller's. */
int arb__bridge_push(arb__bridge *bridge, arb__request *request);
/* Everything released so far, oldest first (the caller frees each). */
arb__release *arb__bridge_take(arb__bridge *bridge);
/* Events of committed batches are copied for the fan-out only while
 * watchers > 0 (subscriptions + waiting long polls). */
void arb__bridge_watch(arb__bridge *bridge, int delta);
/* Ask the engine thread to decide what is queued, commit, release it all,
 * and exit. Then arb__bridge_done turns true. */
void arb__bridge_stop(arb__bridge *bridge);
bool arb__bridge_done(arb__bridge *bridge);
/* Stop and join the engine thread: after it, nothing calls into lws from
 * there (the context may be destroyed). */
void arb__bridge_join(arb__bridge *bridge);
/* Join (if not yet) and free the bridge. */
void arb__bridge_free(arb__bridge *bridge);

/* ---- Connections (network thread) ---- */

typedef struct arb__subscription {
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    bool active;  /* its snapshot or catch-up left: patches follow */
    uint64_t seq; /* the last seq this connection was sent */
} arb__subscription;

typedef enum arb__http_phase {
    ARB__HTTP_READING = 0, /* headers or body still arriving */
    ARB__HTTP_WAITING,     /* asked the engine, or a long poll */
    ARB__HTTP_HEADERS,     /* response ready: headers to write */
    ARB__HTTP_BODY,        /* headers written: body to write */
    ARB__HTTP_FILE,        /* a static file (lws serves it) */
} arb__http_phase;

typedef struct arb__http {
    arb__http_phase phase;
    int route;
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    uint64_t client_seq; /* Idempotency-Key */
    uint64_t hand;       /* GET .../hands/{n} */
    arb_buf body;        /* the request body */
    bool body_too_large;
    int status; /* the response */
    const char *content_type;
    char etag[24];
    char retry_after[8];
    arb__msg *response;
    /* long poll */
    uint64_t since;
    uint64_t limit;
    int wait_s;
    bool waiting;
    arb__msg *empty_response; /* sent when the wait runs out */
    lws_sorted_usec_list_t wait_timer;
} arb__http;

typedef struct arb__server arb__server;

typedef struct arb__conn {
    uint64_t id;
    struct lws *wsi;
    arb__server *server;
    bool is_ws;
    bool hello_done;
    arb_principal principal;
    uint32_t pending; /* proposals with the engine, not yet answered */
    bool rx_paused;
    arb__msg **out;   /* ring of queued messages (one reference each) */
    size_t out_cap;   /* 0 or a power of two */
    size_t out_first; /* index of the oldest */
    size_t out_count;
    size_t out_bytes;
    arb_buf rx;     /* a message being assembled from fragments */
    bool rx_active; /* between the first and the last fragment of a message */
    bool rx_binary;
    bool rx_too_large;
    arb__subscription *subs; /* ARB_WIRE_SUBSCRIPTIONS_MAX, allocated on first subscribe */
    size_t sub_count;
    int close_status; /* non-zero: close after the queue is written */
    char close_reason[120];
    arb__http http;
} arb__conn;

/* The network thread's world (server.c). */
struct arb__server {
    const arb_server_config *config;
    struct lws_context *context;
    arb__bridge *bridge;
    arb__metrics metrics;
    arb__conn **conns; /* ARB_NET_CONNECTIONS_MAX slots */
    uint32_t generation;
    size_t conn_count;
    arb_map topics; /* stream -> arb__topic: who subscribed or waits */
    bool shutting_down;
    int idle_timeout_s;
    size_t outbound_bytes_max;
    lws_sorted_usec_list_t stop_timer; /* wakes the loop to look at *config->stop */
};

/* Register a connection; 0 or ARB_ELIMIT when full. */
int arb__conn_attach(arb__server *server, arb__conn *conn, struct lws *wsi, bool is_ws);
void arb__conn_detach(arb__server *server, arb__conn *conn);
arb__conn *arb__conn_find(arb__server *server, uint64_t id);
/* The role a claimed client_id gets. */
arb_role arb__server_role(const arb__server *server, const char *client_id);
arb__server *arb__server_of(struct lws *wsi);
/* LWS_CALLBACK_EVENT_WAIT_CANCELLED: deliver what the engine released. */
int arb__server_wake(struct lws *wsi);

/* The oldest queued message (NULL when none), and its removal. */
arb__msg *arb__conn_peek(const arb__conn *conn);
void arb__conn_pop(arb__conn *conn);
/* Queue a message on a connection (takes a new reference) and ask for a
 * writeable callback. A connection over ARB_NET_OUTBOUND_BYTES_MAX is
 * closed as a slow reader instead. */
void arb__conn_send(arb__conn *conn, arb__msg *msg);
/* Encode an `error` and send it. */
void arb__conn_send_error(arb__conn *conn, int code, const char *field, const char *message);
/* Close once the queue is written, with a WebSocket status and reason. */
void arb__conn_close(arb__conn *conn, int status, const char *reason);
/* A WebSocket session of conn's client began (online, after its hello) or
 * ends: when it is the client's first or last, tell the engine, which
 * tells the streams where that matters (arb_engine_presence). No answer. */
void arb__conn_presence(arb__conn *conn, bool online);
/* Hand a request to the engine; on refusal answer it at once (OVERLOADED,
 * SHUTTING_DOWN) and free it. */
void arb__conn_request(arb__conn *conn, arb__request *request);

/* ws.c */
int arb__ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
void arb__ws_release(arb__conn *conn, arb__release *release);

/* http.c */
int arb__http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len);
void arb__http_release(arb__conn *conn, arb__release *release);
/* Shutdown: answer a waiting long poll now (no events), close an idle
 * keep-alive connection; a response being written finishes first. */
void arb__http_shut_down(arb__conn *conn);
/* A fan-out of events reached a long poll waiting on this connection. */
void arb__http_wake(arb__conn *conn, uint64_t last_seq);

/* fanout.c: subscriptions and long polls per stream. */
int arb__topic_add(arb__server *server, const char *stream, uint64_t conn);
void arb__topic_remove(arb__server *server, const char *stream, uint64_t conn);
void arb__topics_free(arb__server *server);
void arb__fanout(arb__server *server, arb__release *release);
void arb__subscribed(arb__conn *conn, arb__release *release);
int arb__subscribe(arb__conn *conn, const arb_wire_subscribe *subscribe);
int arb__unsubscribe(arb__conn *conn, const char *stream);
void arb__unsubscribe_all(arb__conn *conn);

#endif
