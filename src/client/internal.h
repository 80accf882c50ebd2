/*
 * internal.h - the client SDK's structures, shared by its files:
 *
 *   client.c   the public API, the lock, the service loop and the connection
 *   receive.c  the server's messages: snapshots, patches, verdicts
 *   draft.c    per stream: confirmed state, and the draft replayed on it
 *   outbox.c   the SQLite file (outbox.h)
 *
 * Ownership: the arb_client owns its streams, its pending list (each entry
 * owns its command's args), the outbox and the connection. Module states
 * (confirmed, draft) are owned by their stream and freed with rules->state_free.
 * Every function here runs with the client's lock held.
 */
#ifndef ARB_CLIENT_INTERNAL_H
#define ARB_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arbiter/client.h"
#include "arbiter/rules.h"
#include "client/outbox.h"
#include "core/buf.h"
#include "net/client.h"

/* The latest server_time a welcome may carry: past it the clock is not
 * believed (the rules' deadlines are computed from now + a duration, kept
 * below 2^53 with room). */
#define ARB__CLIENT_SERVER_TIME_MAX (ARB_JSON_INT_MAX / 4)

/* A proposal in the outbox, in the order it was made. */
typedef struct arb__pending {
    struct arb__pending *prev;
    struct arb__pending *next;
    arb_command command; /* principal: the client; args owned */
    arb_policy policy;
    bool sent;          /* on the current connection, verdict awaited */
    bool applied;       /* in its stream's draft */
    bool folded;        /* its own events are already in confirmed (patch before verdict) */
    int predicted_code; /* the prediction's rejection, or 0 */
} arb__pending;

/* A followed stream. */
typedef struct arb__follow {
    bool used;
    char name[ARB_STREAM_NAME_BYTES_MAX + 1];
    const arb_rules *rules; /* its KIND's module (subscribe refuses unknown kinds) */
    void *confirmed;        /* the server's state as this client sees it; NULL: none yet */
    uint64_t version;       /* confirmed's seq */
    void *draft;            /* confirmed + applied proposals; NULL: the view is confirmed */
    bool draft_dirty;       /* confirmed or pending changed since the draft was built */
    bool subscribed;        /* subscribe sent on the current connection */
    int64_t retry_at_ms;    /* the server did not know the stream: subscribe again then */
    bool save_due;          /* confirmed changed since it was saved to the outbox */
} arb__follow;

struct arb_client {
    pthread_mutex_t lock; /* recursive: callbacks may call the API */
    char url[ARB_URL_BYTES_MAX + 1];
    bool has_url;
    arb_principal me;
    arb_client_config config; /* the caller's, with defaults filled; strings point into us */
    arb__outbox *outbox;
    arb__follow streams[ARB_WIRE_SUBSCRIPTIONS_MAX];

    arb__pending *head, *tail;
    size_t pending_count;
    size_t inflight; /* sent on this connection, verdict awaited */

    /* The connection. */
    arb_ws_client *ws; /* NULL when offline */
    arb_client_state state;
    bool want_online;
    bool hello_sent;
    unsigned attempts;       /* failed connections in a row */
    int64_t next_attempt_ms; /* offline: connect again at */
    int64_t connect_deadline_ms;
    int64_t last_heard_ms;
    int64_t last_ping_ms;
    int64_t resend_at_ms;    /* a transient rejection: resend then */
    int64_t clock_offset_ms; /* server_time - local clock, from the welcome */
    int64_t next_save_ms;
    arb_buf frame;     /* the frame being sent */
    unsigned happened; /* callbacks run: a negative service timeout waits for one */

    /* arb_client_start. */
    pthread_t thread;
    bool thread_running;
    atomic_bool stop;
};

/* client.c */
int64_t arb__client_now_ms(void);
/* Send the frame in client->frame; a failure drops the connection. */
int arb__client_send_frame(arb_client *client);
/* Tell the server to stop sending stream (nothing when offline). */
void arb__client_send_unsubscribe(arb_client *client, const char *stream);
/* Lose the connection (code: why), schedule the next attempt. */
void arb__client_drop(arb_client *client, int code);
arb__pending *arb__client_find_pending(arb_client *client, uint64_t client_seq);
/* Remove a decided proposal from the list and the outbox; frees it. */
void arb__client_forget_pending(arb_client *client, arb__pending *pending);
/* Whether code is a transient rejection (not a verdict: send again). */
bool arb__client_transient(int code);

/* receive.c: handle one message from the server (text[0..len)). */
void arb__client_receive(arb_client *client, const char *text, size_t len);

/* draft.c */
arb__follow *arb__draft_find(arb_client *client, const char *name);
/* Replace confirmed with a state loaded from view at seq. 0 or an error
 * (the stream keeps what it had). */
int arb__draft_load(arb_client *client, arb__follow *stream, const json_t *view, uint64_t seq);
/* Fold the server's events into confirmed. 0, or ARB_ECORRUPT when one does
 * not evolve (confirmed is then dropped: the caller resubscribes). */
int arb__draft_fold(arb_client *client, arb__follow *stream, const arb_event *events, size_t count,
                    uint64_t seq);
void arb__draft_clear(arb__follow *stream);
/* Mark the stream's draft out of date and tell the application. */
void arb__draft_changed(arb_client *client, arb__follow *stream);
/* Rebuild the draft when out of date. 0 or ARB_ENOMEM. */
int arb__draft_refresh(arb_client *client, arb__follow *stream);
/* The view of the draft (draft true) or of confirmed: new reference or NULL. */
json_t *arb__draft_view(arb_client *client, arb__follow *stream, bool draft);

/* Tell the application something happened. */
#define ARB__CLIENT_CALL(client, name, ...)                                                        \
    do {                                                                                           \
        (client)->happened++;                                                                      \
        if ((client)->config.callbacks.name != NULL)                                               \
            (client)->config.callbacks.name((client)->config.callbacks.user, __VA_ARGS__);         \
    } while (0)

#endif
