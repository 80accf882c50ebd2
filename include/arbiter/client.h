/*
 * client.h - the C client SDK: an optimistic draft of server state, kept in
 * step with an arbiter server (docs/client.md is the guide).
 *
 * The server is canonical; the client is a draft. Per subscribed stream the
 * client keeps
 *
 *   confirmed  the last state the server sent (snapshot + patches) and its
 *              version; only the server's events ever change it;
 *   pending    this client's proposals the server has not decided yet, in
 *              the order they were made (the outbox);
 *   view       confirmed with every OPTIMISTIC pending proposal applied by
 *              the same rule module the server runs (decide + evolve).
 *
 * When the server commits a proposal, the proposal leaves pending and the
 * server's events (never the client's prediction) fold into confirmed; the
 * rest of pending is replayed on top. A rejection drops the proposal, puts the
 * server's snapshot in confirmed when one came, and replays the rest. Another
 * client's commit moves confirmed and the pending proposals are replayed on
 * it (a rebase). A pending proposal that no longer decides cleanly on the
 * new state stays pending, unapplied, until the server answers: the server
 * decides, not the client. A proposal the client cannot decide (its KIND has
 * no rule module here, or it needs the server's randomness or hidden state)
 * is shown as pending, not guessed.
 *
 * The outbox is a SQLite file (config.outbox_path): a proposal is on disk
 * before arb_client_propose returns, and leaves it only when the server's
 * verdict arrives, so proposals survive a crash or restart of the
 * application and are sent again with their original client_seq (the server
 * applies each exactly once). client_seq is strictly increasing and
 * persisted; a new outbox starts from the clock in microseconds, above any
 * client_seq an earlier outbox of the same client_id can have used. The last
 * confirmed state of each stream is kept there too, so that a restarted
 * application shows its draft at once, even offline.
 *
 * Connection. The client connects by itself and reconnects after a loss with
 * exponential backoff and full jitter. On each connection it says hello,
 * resubscribes every stream from its confirmed version (the server answers
 * with the missing events, or a snapshot), and resends the outbox: one
 * `propose` when one proposal waits, `sync` batches when more do. Offline,
 * proposals queue and the view keeps moving; everything reconciles on the
 * next connection. Transient rejections (OVERLOADED, SHUTTING_DOWN) are not
 * verdicts: the proposal stays in the outbox and goes again.
 *
 * Threads. Nothing is global. An arb_client is driven by arb_client_service,
 * which does all network and disk I/O and runs every callback, on the
 * caller's thread. Either the application calls every function from one
 * thread (a game loop calling arb_client_service(c, 0) each frame, or a
 * terminal program that waits in it), or it calls arb_client_start, after
 * which a thread of the client's own services it, callbacks run on that
 * thread, and the other functions may be called from any thread (they take
 * the client's lock; callbacks must not call arb_client_stop or
 * arb_client_destroy).
 *
 * Ownership. The application owns the arb_client from arb_client_open to
 * arb_client_destroy, which frees everything the client allocated. Strings
 * and JSON passed in are borrowed for the call (the client copies what it
 * keeps). JSON returned by arb_client_view/arb_client_confirmed is a new
 * reference the caller drops. Pointers inside the structs given to callbacks
 * or filled by arb_client_pending are borrowed: valid until the callback
 * returns, or until the next call into the client.
 */
#ifndef ARBITER_CLIENT_H
#define ARBITER_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/types.h"

typedef struct arb_client arb_client;

/* How a proposal shows in the view before the server answers. */
typedef enum arb_policy {
    ARB_POLICY_OPTIMISTIC = 0,  /* applied to the view at once (predicted) */
    ARB_POLICY_PENDING = 1,     /* listed as pending; the view does not change */
    ARB_POLICY_PESSIMISTIC = 2, /* nothing shows until the server answers */
} arb_policy;

typedef enum arb_client_state {
    ARB_CLIENT_OFFLINE = 0,    /* no connection (waiting to retry, or set offline) */
    ARB_CLIENT_CONNECTING = 1, /* connecting, or waiting for the welcome */
    ARB_CLIENT_ONLINE = 2,     /* welcomed: proposals go out as they are made */
} arb_client_state;

/* The server's verdict on one of this client's proposals. */
typedef struct arb_client_outcome {
    uint64_t client_seq;
    const char *stream;
    const char *action;
    bool committed;
    bool replay;           /* the stored verdict of an earlier send */
    uint64_t seq_first;    /* committed: the seq range of its events */
    uint64_t seq_last;     /* (0 when it produced none) */
    const json_t *result;  /* committed: the action's result, or NULL */
    int code;              /* rejected: a code from error.h (arb_err_name) */
    const char *message;   /* rejected: a sentence; "" when committed */
    const json_t *details; /* rejected: details, or NULL */
} arb_client_outcome;

typedef struct arb_client_callbacks {
    /* The view of stream changed (confirmed moved, or pending changed). */
    void (*view_changed)(void *user, const char *stream);
    /* A proposal was decided; it has left the outbox. */
    void (*outcome)(void *user, const arb_client_outcome *outcome);
    /* The connection state changed. code says why it went offline (an
     * arbiter error code such as ARB_ECLOSED or ARB_ETIMEOUT; 0 when
     * arb_client_set_online asked for it, and for the other states). */
    void (*connection)(void *user, arb_client_state state, int code);
    /* Confirmed events of stream, as this client may see them, in seq order,
     * as they fold into confirmed (not the events a snapshot stands for). */
    void (*events)(void *user, const char *stream, const arb_event *events, size_t count);
    /* The server refused a message outright (an `error` frame), or a state it
     * sent could not be loaded: code and a sentence, for logs. */
    void (*error)(void *user, int code, const char *message);
    void *user;
} arb_client_callbacks;

typedef struct arb_client_config {
    const char *url;         /* ws://HOST:PORT/ of arbiterd; NULL: never connects */
    const char *client_id;   /* who this client is ([A-Za-z0-9_.:@-]+) */
    arb_role role;           /* the role the server gives client_id: for prediction only */
    const char *outbox_path; /* SQLite file, created if missing; NULL: kept in memory */
    int backoff_initial_ms;  /* first retry delay bound; 0: 200 */
    int backoff_max_ms;      /* delay bound cap; 0: 10000 */
    int connect_timeout_ms;  /* connect + hello; 0: 5000 */
    int ping_interval_ms;    /* ping when the server has been silent this long; 0: 15000.
                                Silent for three intervals: the connection is dropped */
    arb_client_callbacks callbacks;
} arb_client_config;

/* Open a client: the outbox file is created or reopened (its proposals will
 * be resent), and the client starts connecting at the first service call.
 * Returns 0 with *out set, or ARB_EINVALID_ARGUMENT (client_id, url),
 * ARB_EIO (the outbox cannot be opened: not a database, not writable),
 * ARB_ECORRUPT (the outbox belongs to another client_id), ARB_ENOMEM. */
int arb_client_open(const arb_client_config *config, arb_client **out);

/* Stop the thread if started, close the connection and the outbox, and free
 * everything. Proposals not yet decided stay in the outbox file. NULL: no-op. */
void arb_client_destroy(arb_client *client);

/* Run the client until a callback has run or timeout_ms has passed (0:
 * only what is ready now; negative: no limit): connect or reconnect when
 * due, send, receive and reconcile, and run callbacks. Returns 0 or ARB_ENOMEM / ARB_EIO (the
 * outbox could not be written; the client stays usable and retries). Not
 * with arb_client_start. */
int arb_client_service(arb_client *client, int timeout_ms);

/* Service on a thread of the client's own until arb_client_stop or
 * arb_client_destroy. 0, ARB_EINVALID_ARGUMENT (already started) or ARB_ENOMEM. */
int arb_client_start(arb_client *client);
void arb_client_stop(arb_client *client);

/* Follow stream: its confirmed state arrives as a snapshot, then patches.
 * Streams whose last confirmed state is in the outbox file are followed
 * from it. 0, ARB_EINVALID_ARGUMENT (not KIND:NAME), ARB_ELIMIT (more than
 * ARB_WIRE_SUBSCRIPTIONS_MAX), ARB_ENOMEM. */
int arb_client_subscribe(arb_client *client, const char *stream);
/* Stop following stream; its confirmed state is forgotten. 0 or ARB_ENOTFOUND. */
int arb_client_unsubscribe(arb_client *client, const char *stream);

/* Propose action(args) on stream. args (an object) is borrowed. The proposal
 * is checked as the server will check its frame (names, bounds, args
 * integer-only JSON), written to the outbox, shown in the view by policy,
 * and sent when online. Returns 0 with *client_seq_out (may be NULL) set, or
 * ARB_EINVALID_ARGUMENT / ARB_ETOO_LARGE (the server would refuse the frame),
 * ARB_ELIMIT (ARB_CLIENT_OUTBOX_MAX proposals wait), ARB_EIO (the outbox
 * write failed: nothing was queued), ARB_ENOMEM. */
int arb_client_propose(arb_client *client, const char *stream, const char *action,
                       const json_t *args, arb_policy policy, uint64_t *client_seq_out);

/* Go offline (close the connection, stop retrying) or back online (connect
 * at the next service call). The outbox and views are kept. */
void arb_client_set_online(arb_client *client, bool online);
arb_client_state arb_client_connection(const arb_client *client);

/* The view (confirmed + optimistic pending) and the confirmed state of
 * stream, as this client may see it: new references, NULL when no state of
 * the stream has arrived yet (or out of memory). *version_out (may be
 * NULL) is the confirmed version. */
json_t *arb_client_view(arb_client *client, const char *stream, uint64_t *version_out);
json_t *arb_client_confirmed(arb_client *client, const char *stream, uint64_t *version_out);

/* One proposal in the outbox. */
typedef struct arb_client_pending {
    uint64_t client_seq;
    const char *stream;
    const char *action;
    const json_t *args;
    arb_policy policy;
    bool sent;          /* sent on the current connection, no verdict yet */
    bool applied;       /* OPTIMISTIC and decided cleanly on the view: it shows */
    int predicted_code; /* OPTIMISTIC: the code the prediction rejected it with
                           (then not applied), 0 otherwise */
} arb_client_pending;

/* The number of proposals in the outbox, and the index-th oldest (0-based).
 * arb_client_pending_at returns 0, or ARB_ENOTFOUND past the end. */
size_t arb_client_pending_count(arb_client *client);
int arb_client_pending_at(arb_client *client, size_t index, arb_client_pending *out);

/* The client_id, as configured (borrowed for the client's life). */
const char *arb_client_id(const arb_client *client);

#endif
