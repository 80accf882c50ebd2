/*
 * client.c - the client SDK's public API (include/arbiter/client.h): the
 * lock, the service loop, the connection and what is sent on it.
 *
 * The connection's life:
 *
 *   OFFLINE --due, want_online--> CONNECTING --open: hello; welcome--> ONLINE
 *      ^                              |                                  |
 *      +------ drop (closed, error, timeout, silence): backoff ----------+
 *
 * Each connection starts clean: every stream is subscribed again from its
 * confirmed version, and every proposal of the outbox is unsent. A flush
 * (after the welcome, and at every service pass while online) sends what is
 * due: subscribes, then the unsent proposals, oldest first, at most
 * ARB_CLIENT_INFLIGHT_MAX awaiting a verdict, one `propose` when one is
 * unsent and `sync` batches when more are.
 *
 * Backoff: after n failures in a row the next attempt is a uniformly random
 * delay in [0, min(backoff_max, backoff_initial * 2^n)) away ("full
 * jitter"), so that clients a server restart disconnected together do not
 * come back together.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/error.h"
#include "arbiter/wire.h"
#include "client/internal.h"
#include "core/assert.h"
#include "core/log.h"

#define BACKOFF_INITIAL_MS_DEFAULT 200
#define BACKOFF_MAX_MS_DEFAULT 10000
#define CONNECT_TIMEOUT_MS_DEFAULT 5000
#define PING_INTERVAL_MS_DEFAULT 15000
/* How often a changed confirmed state is written to the outbox file. */
#define SAVE_INTERVAL_MS 1000
/* The longest one wait inside service: what another thread may wait for the
 * lock while the client's own thread services. */
#define SERVICE_SLICE_MS 10

int64_t arb__client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool arb__client_transient(int code)
{
    return code == ARB_EOVERLOADED || code == ARB_ESHUTTING_DOWN;
}

/* The pending list. */

arb__pending *arb__client_find_pending(arb_client *client, uint64_t client_seq)
{
    for (arb__pending *p = client->head; p != NULL; p = p->next)
        if (p->command.client_seq == client_seq)
            return p;
    return NULL;
}

static void pending_free(arb__pending *pending)
{
    arb_command_clear(&pending->command);
    free(pending);
}

static void pending_append(arb_client *client, arb__pending *pending)
{
    pending->prev = client->tail;
    pending->next = NULL;
    if (client->tail != NULL)
        client->tail->next = pending;
    else
        client->head = pending;
    client->tail = pending;
    client->pending_count++;
}

void arb__client_forget_pending(arb_client *client, arb__pending *pending)
{
    if (arb__outbox_remove(client->outbox, pending->command.client_seq) != 0)
        arb_log(ARB_LOG_WARN, "client",
                "client_seq %llu stays in the outbox file; a restart resends it",
                (unsigned long long)pending->command.client_seq);
    if (pending->prev != NULL)
        pending->prev->next = pending->next;
    else
        client->head = pending->next;
    if (pending->next != NULL)
        pending->next->prev = pending->prev;
    else
        client->tail = pending->prev;
    client->pending_count--;
    pending_free(pending);
}

/* The connection. */

static int64_t backoff_ms(const arb_client *client)
{
    int64_t bound = client->config.backoff_initial_ms;
    for (unsigned i = 0; i < client->attempts && bound < client->config.backoff_max_ms; i++)
        bound *= 2;
    if (bound > client->config.backoff_max_ms)
        bound = client->config.backoff_max_ms;
    return bound > 0 ? (int64_t)randombytes_uniform((uint32_t)bound) : 0;
}

static void set_state(arb_client *client, arb_client_state state, int code)
{
    if (client->state == state)
        return;
    client->state = state;
    ARB__CLIENT_CALL(client, connection, state, code);
}

void arb__client_drop(arb_client *client, int code)
{
    if (client->ws == NULL)
        return;
    arb_ws_close(client->ws);
    client->ws = NULL;
    client->hello_sent = false;
    client->inflight = 0;
    for (arb__pending *p = client->head; p != NULL; p = p->next)
        p->sent = false;
    for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++)
        client->streams[i].subscribed = false;
    client->attempts++;
    client->next_attempt_ms = arb__client_now_ms() + backoff_ms(client);
    arb_log(ARB_LOG_DEBUG, "client", "offline (%s); next attempt in %lld ms", arb_err_name(code),
            (long long)(client->next_attempt_ms - arb__client_now_ms()));
    set_state(client, ARB_CLIENT_OFFLINE, code);
}

int arb__client_send_frame(arb_client *client)
{
    if (client->ws == NULL)
        return ARB_ECLOSED;
    int rc = arb_ws_send(client->ws, client->frame.data, client->frame.len);
    arb_buf_reset(&client->frame);
    if (rc == ARB_ETIMEOUT)
        rc = 0; /* queued: it goes out during later service */
    if (rc != 0)
        arb__client_drop(client, rc);
    return rc;
}

void arb__client_send_unsubscribe(arb_client *client, const char *stream)
{
    if (client->ws != NULL && arb_wire_encode_unsubscribe(&client->frame, stream) == 0)
        arb__client_send_frame(client);
}

static void connect_if_due(arb_client *client, int64_t now)
{
    if (client->ws != NULL || !client->want_online || !client->has_url ||
        now < client->next_attempt_ms)
        return;
    int rc = arb_ws_connect_start(client->url, client->config.connect_timeout_ms, &client->ws);
    if (rc != 0) {
        client->attempts++;
        client->next_attempt_ms = now + backoff_ms(client);
        return;
    }
    client->connect_deadline_ms = now + client->config.connect_timeout_ms;
    client->last_heard_ms = now;
    client->last_ping_ms = now;
    set_state(client, ARB_CLIENT_CONNECTING, 0);
}

/* Connecting: say hello once open; give up at the deadline. */
static void advance_connect(arb_client *client, int64_t now)
{
    if (client->ws == NULL || client->state != ARB_CLIENT_CONNECTING)
        return;
    if (!client->hello_sent && arb_ws_status_of(client->ws) == ARB_WS_OPEN) {
        client->hello_sent = true;
        if (arb_wire_encode_hello(&client->frame, client->me.id, 0) == 0)
            arb__client_send_frame(client);
    }
    if (client->ws != NULL && client->state == ARB_CLIENT_CONNECTING &&
        now >= client->connect_deadline_ms)
        arb__client_drop(client, ARB_ETIMEOUT);
}

/* Take every message that has arrived. */
static void receive_all(arb_client *client)
{
    while (client->ws != NULL) {
        char *text;
        size_t len;
        int rc = arb_ws_recv(client->ws, 0, &text, &len);
        if (rc == ARB_ETIMEOUT)
            break;
        if (rc != 0) {
            arb__client_drop(client, rc);
            break;
        }
        client->last_heard_ms = arb__client_now_ms();
        arb__client_receive(client, text, len);
        free(text);
    }
    if (client->ws != NULL && arb_ws_status_of(client->ws) == ARB_WS_ENDED)
        arb__client_drop(client, ARB_ECLOSED);
}

static void send_subscribes(arb_client *client, int64_t now)
{
    for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX && client->ws != NULL; i++) {
        arb__follow *stream = &client->streams[i];
        if (!stream->used || stream->subscribed || now < stream->retry_at_ms)
            continue;
        stream->subscribed = true;
        bool since = stream->confirmed != NULL;
        if (arb_wire_encode_subscribe(&client->frame, stream->name, since, stream->version) == 0)
            arb__client_send_frame(client);
    }
}

/* Up to max unsent proposals, oldest first, into out[]: their count. */
static size_t collect_unsent(arb_client *client, arb__pending **out, size_t max)
{
    size_t count = 0;
    for (arb__pending *p = client->head; p != NULL && count < max; p = p->next)
        if (!p->sent)
            out[count++] = p;
    return count;
}

/* One batch of unsent proposals: a propose, or a sync that fits a frame.
 * Returns how many went (0: none waits, or the connection dropped). */
static size_t send_batch(arb_client *client)
{
    size_t room = ARB_CLIENT_INFLIGHT_MAX - client->inflight;
    if (room > ARB_WIRE_SYNC_PROPOSALS_MAX)
        room = ARB_WIRE_SYNC_PROPOSALS_MAX;
    arb__pending *batch[ARB_WIRE_SYNC_PROPOSALS_MAX];
    size_t count = collect_unsent(client, batch, room);
    if (count == 0)
        return 0;
    int rc = ARB_ETOO_LARGE;
    if (count == 1) {
        rc = arb_wire_encode_propose(&client->frame, &batch[0]->command);
    } else {
        arb_command commands[ARB_WIRE_SYNC_PROPOSALS_MAX];
        for (size_t i = 0; i < count; i++)
            commands[i] = batch[i]->command; /* shallow: args stay the pending's */
        /* Halve until the batch fits one frame (a single proposal always
         * does: propose checked it). */
        while (count > 1 && (rc = arb_wire_encode_sync(&client->frame, commands, count, false)) ==
                                ARB_ETOO_LARGE)
            count /= 2;
        if (count == 1)
            rc = arb_wire_encode_propose(&client->frame, &batch[0]->command);
    }
    if (rc != 0) {
        arb_log(ARB_LOG_WARN, "client", "cannot encode a proposal: %s", arb_err_name(rc));
        return 0;
    }
    if (arb__client_send_frame(client) != 0)
        return 0;
    for (size_t i = 0; i < count; i++)
        batch[i]->sent = true;
    client->inflight += count;
    return count;
}

static void keep_alive(arb_client *client, int64_t now)
{
    int64_t interval = client->config.ping_interval_ms;
    if (now - client->last_heard_ms >= 3 * interval) {
        arb__client_drop(client, ARB_ETIMEOUT);
        return;
    }
    if (now - client->last_heard_ms >= interval && now - client->last_ping_ms >= interval) {
        client->last_ping_ms = now;
        if (arb_wire_encode_ping(&client->frame) == 0)
            arb__client_send_frame(client);
    }
}

static void flush(arb_client *client, int64_t now)
{
    if (client->ws == NULL || client->state != ARB_CLIENT_ONLINE)
        return;
    send_subscribes(client, now);
    if (now >= client->resend_at_ms)
        while (client->ws != NULL && send_batch(client) > 0) {
        }
    if (client->ws != NULL)
        keep_alive(client, now);
}

/* Write changed confirmed states to the outbox file, at most once a
 * SAVE_INTERVAL_MS (force: now, as at destroy). */
static void save_views(arb_client *client, int64_t now, bool force)
{
    if (!force && now < client->next_save_ms)
        return;
    client->next_save_ms = now + SAVE_INTERVAL_MS;
    for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++) {
        arb__follow *stream = &client->streams[i];
        if (!stream->used || !stream->save_due || stream->confirmed == NULL)
            continue;
        json_t *view = stream->rules->view(stream->confirmed, &client->me);
        if (view != NULL &&
            arb__outbox_save_view(client->outbox, stream->name, stream->version, view) == 0)
            stream->save_due = false;
        json_decref(view);
    }
}

/* When the loop must look again at the latest (a retry, a deadline). */
static int64_t next_due_ms(const arb_client *client, int64_t now)
{
    int64_t due = now + SERVICE_SLICE_MS * 100;
    if (client->ws == NULL && client->want_online && client->has_url)
        due = client->next_attempt_ms < due ? client->next_attempt_ms : due;
    if (client->ws != NULL && client->state == ARB_CLIENT_CONNECTING &&
        client->connect_deadline_ms < due)
        due = client->connect_deadline_ms;
    if (client->resend_at_ms > now && client->resend_at_ms < due)
        due = client->resend_at_ms;
    return due;
}

/* One pass, then a wait of at most wait_ms for something to happen. */
static void service_pass(arb_client *client, int64_t wait_ms)
{
    int64_t now = arb__client_now_ms();
    connect_if_due(client, now);
    advance_connect(client, now);
    receive_all(client);
    now = arb__client_now_ms();
    flush(client, now);
    save_views(client, now, false);
    if (wait_ms <= 0)
        return;
    int64_t due = next_due_ms(client, now) - now;
    if (due < wait_ms)
        wait_ms = due < 0 ? 0 : due;
    if (client->ws != NULL)
        arb_ws_service(client->ws, (int)wait_ms);
    else if (wait_ms > 0)
        usleep((useconds_t)wait_ms * 1000);
}

static int service_locked(arb_client *client, int timeout_ms)
{
    int64_t start = arb__client_now_ms();
    unsigned happened = client->happened;
    for (;;) {
        int64_t left =
            timeout_ms < 0 ? SERVICE_SLICE_MS * 100 : start + timeout_ms - arb__client_now_ms();
        service_pass(client, left > 0 ? left : 0);
        if (client->happened != happened || timeout_ms == 0 ||
            (timeout_ms > 0 && arb__client_now_ms() >= start + timeout_ms))
            break;
    }
    /* What arrived during the last wait. */
    receive_all(client);
    flush(client, arb__client_now_ms());
    return 0;
}

int arb_client_service(arb_client *client, int timeout_ms)
{
    pthread_mutex_lock(&client->lock);
    int rc = service_locked(client, timeout_ms);
    pthread_mutex_unlock(&client->lock);
    return rc;
}

static void *service_thread(void *arg)
{
    arb_client *client = arg;
    while (!atomic_load(&client->stop)) {
        pthread_mutex_lock(&client->lock);
        service_locked(client, SERVICE_SLICE_MS);
        pthread_mutex_unlock(&client->lock);
        /* Let a caller waiting for the lock take it. */
        sched_yield();
    }
    return NULL;
}

int arb_client_start(arb_client *client)
{
    pthread_mutex_lock(&client->lock);
    int rc = 0;
    if (client->thread_running) {
        rc = ARB_EINVALID_ARGUMENT;
    } else {
        atomic_store(&client->stop, false);
        rc = pthread_create(&client->thread, NULL, service_thread, client) == 0 ? 0 : ARB_ENOMEM;
        client->thread_running = rc == 0;
    }
    pthread_mutex_unlock(&client->lock);
    return rc;
}

void arb_client_stop(arb_client *client)
{
    pthread_mutex_lock(&client->lock);
    bool running = client->thread_running;
    client->thread_running = false;
    atomic_store(&client->stop, true);
    pthread_mutex_unlock(&client->lock);
    if (running)
        pthread_join(client->thread, NULL);
}

/* Opening and closing. */

static int load_pending(void *user, arb_command *command, arb_policy policy);

static int fill_config(arb_client *client, const arb_client_config *config)
{
    client->config = *config;
    arb_client_config *c = &client->config;
    if (c->backoff_initial_ms <= 0)
        c->backoff_initial_ms = BACKOFF_INITIAL_MS_DEFAULT;
    if (c->backoff_max_ms <= 0)
        c->backoff_max_ms = BACKOFF_MAX_MS_DEFAULT;
    if (c->backoff_max_ms < c->backoff_initial_ms)
        c->backoff_max_ms = c->backoff_initial_ms;
    if (c->connect_timeout_ms <= 0)
        c->connect_timeout_ms = CONNECT_TIMEOUT_MS_DEFAULT;
    if (c->ping_interval_ms <= 0)
        c->ping_interval_ms = PING_INTERVAL_MS_DEFAULT;
    /* The client_id must pass the server's hello check. */
    arb_buf hello;
    arb_buf_init(&hello, ARB_WIRE_FRAME_BYTES_MAX);
    arb_wire_message message;
    arb_wire_error error;
    int rc = config->client_id != NULL &&
                     arb_copy_name(client->me.id, sizeof client->me.id, config->client_id) == 0 &&
                     arb_wire_encode_hello(&hello, config->client_id, 0) == 0
                 ? arb_wire_decode(hello.data, hello.len, NULL, &message, &error)
                 : ARB_EINVALID_ARGUMENT;
    if (rc == 0)
        arb_wire_message_clear(&message);
    arb_buf_free(&hello);
    if (rc != 0)
        return ARB_EINVALID_ARGUMENT;
    client->me.role = config->role;
    c->client_id = client->me.id;
    if (config->url != NULL) {
        arb_url url;
        if (arb_url_parse(config->url, &url) != 0 || strcmp(url.scheme, "ws") != 0 ||
            arb_copy_name(client->url, sizeof client->url, config->url) != 0)
            return ARB_EINVALID_ARGUMENT;
        client->has_url = true;
        c->url = client->url;
    }
    c->outbox_path = NULL; /* used at open only */
    return 0;
}

int arb_client_open(const arb_client_config *config, arb_client **out)
{
    ARB_ASSERT(config != NULL && out != NULL);
    *out = NULL;
    if (sodium_init() < 0)
        return ARB_ENOMEM;
    arb_client *client = calloc(1, sizeof *client);
    if (client == NULL)
        return ARB_ENOMEM;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&client->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    arb_buf_init(&client->frame, ARB_WIRE_FRAME_BYTES_MAX);
    client->want_online = true;
    int rc = fill_config(client, config);
    if (rc == 0)
        rc = arb__outbox_open(config->outbox_path, client->me.id, &client->outbox);
    if (rc == 0)
        rc = arb__outbox_each_proposal(client->outbox, load_pending, client);
    if (rc != 0) {
        arb_client_destroy(client);
        return rc;
    }
    *out = client;
    return 0;
}

void arb_client_destroy(arb_client *client)
{
    if (client == NULL)
        return;
    arb_client_stop(client);
    if (client->outbox != NULL)
        save_views(client, arb__client_now_ms(), true);
    if (client->ws != NULL)
        arb_ws_close(client->ws);
    while (client->head != NULL) {
        arb__pending *next = client->head->next;
        pending_free(client->head);
        client->head = next;
    }
    for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++)
        arb__draft_clear(&client->streams[i]);
    arb__outbox_close(client->outbox);
    arb_buf_free(&client->frame);
    pthread_mutex_destroy(&client->lock);
    free(client);
}

/* Proposals. */

/* Whether the server would decode command's frame: the same encoder and
 * the same strict decoder, so a proposal the server would refuse outright
 * never enters the outbox. */
static int check_command(const arb_command *command)
{
    char kind[ARB_KIND_BYTES_MAX + 1];
    int rc = arb_stream_name_valid(command->stream, kind);
    if (rc != 0)
        return ARB_EINVALID_ARGUMENT;
    arb_buf frame;
    arb_buf_init(&frame, ARB_WIRE_FRAME_BYTES_MAX);
    rc = arb_wire_encode_propose(&frame, command);
    if (rc == 0) {
        arb_wire_message message;
        arb_wire_error error;
        rc = arb_wire_decode(frame.data, frame.len, &command->principal, &message, &error);
        if (rc == 0)
            arb_wire_message_clear(&message);
    }
    arb_buf_free(&frame);
    return rc == ARB_ETOO_LARGE || rc == ARB_ENOMEM ? rc : rc != 0 ? ARB_EINVALID_ARGUMENT : 0;
}

static int add_pending(arb_client *client, arb_command *command, arb_policy policy)
{
    arb__pending *pending = calloc(1, sizeof *pending);
    if (pending == NULL)
        return ARB_ENOMEM;
    pending->command = *command; /* takes the args reference */
    pending->command.principal = client->me;
    pending->policy = policy;
    arb_command_init(command);
    pending_append(client, pending);
    arb__follow *stream = arb__draft_find(client, pending->command.stream);
    if (stream != NULL)
        arb__draft_changed(client, stream);
    return 0;
}

static int load_pending(void *user, arb_command *command, arb_policy policy)
{
    arb_client *client = user;
    command->principal = client->me;
    if (check_command(command) != 0 || client->pending_count >= ARB_CLIENT_OUTBOX_MAX)
        return ARB_ECORRUPT;
    return add_pending(client, command, policy);
}

int arb_client_propose(arb_client *client, const char *stream, const char *action,
                       const json_t *args, arb_policy policy, uint64_t *client_seq_out)
{
    if (!json_is_object(args) || policy < ARB_POLICY_OPTIMISTIC || policy > ARB_POLICY_PESSIMISTIC)
        return ARB_EINVALID_ARGUMENT;
    pthread_mutex_lock(&client->lock);
    arb_command command;
    arb_command_init(&command);
    int rc = client->pending_count >= ARB_CLIENT_OUTBOX_MAX ? ARB_ELIMIT : 0;
    /* A copy: the caller's args may be shared with its other threads, and
     * jansson's reference counts are not ours to touch from the service thread. */
    json_t *copy = rc == 0 ? json_deep_copy(args) : NULL;
    if (rc == 0 && copy == NULL)
        rc = ARB_ENOMEM;
    if (rc == 0)
        rc = arb_command_set(&command, client->me.id, client->me.role, 1, stream, action, copy);
    json_decref(copy);
    if (rc == ARB_ETOO_LARGE || rc == ARB_EINVALID_ARGUMENT)
        rc = ARB_EINVALID_ARGUMENT;
    if (rc == 0)
        rc = check_command(&command);
    if (rc == 0)
        rc = arb__outbox_add(client->outbox, &command, policy);
    uint64_t seq = command.client_seq;
    if (rc == 0)
        rc = add_pending(client, &command, policy);
    arb_command_clear(&command);
    if (rc == 0) {
        if (client_seq_out != NULL)
            *client_seq_out = seq;
        flush(client, arb__client_now_ms());
    }
    pthread_mutex_unlock(&client->lock);
    return rc;
}

/* Streams. */

int arb_client_subscribe(arb_client *client, const char *name)
{
    char kind[ARB_KIND_BYTES_MAX + 1];
    if (name == NULL || arb_stream_name_valid(name, kind) != 0)
        return ARB_EINVALID_ARGUMENT;
    const arb_rules *rules = arb_rules_find(kind);
    if (rules == NULL || rules->view_load == NULL)
        return ARB_EUNKNOWN_KIND;
    pthread_mutex_lock(&client->lock);
    int rc = 0;
    if (arb__draft_find(client, name) == NULL) {
        arb__follow *stream = NULL;
        for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX && stream == NULL; i++)
            if (!client->streams[i].used)
                stream = &client->streams[i];
        rc = stream != NULL ? 0 : ARB_ELIMIT;
        if (rc == 0) {
            stream->used = true;
            stream->rules = rules;
            memcpy(stream->name, name, strlen(name) + 1);
            json_t *view;
            uint64_t seq;
            if (arb__outbox_load_view(client->outbox, name, &seq, &view) == 0) {
                if (arb__draft_load(client, stream, view, seq) == 0)
                    stream->save_due = false;
                json_decref(view);
            }
            arb__draft_changed(client, stream);
            flush(client, arb__client_now_ms());
        }
    }
    pthread_mutex_unlock(&client->lock);
    return rc;
}

int arb_client_unsubscribe(arb_client *client, const char *name)
{
    pthread_mutex_lock(&client->lock);
    arb__follow *stream = name != NULL ? arb__draft_find(client, name) : NULL;
    int rc = stream != NULL ? 0 : ARB_ENOTFOUND;
    if (stream != NULL) {
        if (stream->subscribed)
            arb__client_send_unsubscribe(client, name);
        arb__outbox_forget_view(client->outbox, name);
        arb__draft_clear(stream);
    }
    pthread_mutex_unlock(&client->lock);
    return rc;
}

/* Reading the model. */

static json_t *view_of(arb_client *client, const char *name, uint64_t *version_out, bool draft)
{
    pthread_mutex_lock(&client->lock);
    arb__follow *stream = name != NULL ? arb__draft_find(client, name) : NULL;
    json_t *view = stream != NULL ? arb__draft_view(client, stream, draft) : NULL;
    if (version_out != NULL)
        *version_out = stream != NULL ? stream->version : 0;
    pthread_mutex_unlock(&client->lock);
    return view;
}

json_t *arb_client_view(arb_client *client, const char *stream, uint64_t *version_out)
{
    return view_of(client, stream, version_out, true);
}

json_t *arb_client_confirmed(arb_client *client, const char *stream, uint64_t *version_out)
{
    return view_of(client, stream, version_out, false);
}

size_t arb_client_pending_count(arb_client *client)
{
    pthread_mutex_lock(&client->lock);
    size_t count = client->pending_count;
    pthread_mutex_unlock(&client->lock);
    return count;
}

int arb_client_pending_at(arb_client *client, size_t index, arb_client_pending *out)
{
    pthread_mutex_lock(&client->lock);
    for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++)
        if (client->streams[i].used)
            arb__draft_refresh(client, &client->streams[i]);
    arb__pending *p = client->head;
    for (size_t i = 0; i < index && p != NULL; i++)
        p = p->next;
    int rc = p != NULL ? 0 : ARB_ENOTFOUND;
    if (p != NULL)
        *out = (arb_client_pending){
            .client_seq = p->command.client_seq,
            .stream = p->command.stream,
            .action = p->command.action,
            .args = p->command.args,
            .policy = p->policy,
            .sent = p->sent,
            .applied = p->applied,
            .predicted_code = p->policy == ARB_POLICY_OPTIMISTIC ? p->predicted_code : 0,
        };
    pthread_mutex_unlock(&client->lock);
    return rc;
}

void arb_client_set_online(arb_client *client, bool online)
{
    pthread_mutex_lock(&client->lock);
    client->want_online = online;
    if (!online) {
        arb__client_drop(client, 0); /* code 0: asked for */
        client->attempts = 0;
    } else {
        client->next_attempt_ms = 0;
    }
    pthread_mutex_unlock(&client->lock);
}

arb_client_state arb_client_connection(const arb_client *client)
{
    pthread_mutex_lock((pthread_mutex_t *)&client->lock);
    arb_client_state state = client->state;
    pthread_mutex_unlock((pthread_mutex_t *)&client->lock);
    return state;
}

const char *arb_client_id(const arb_client *client)
{
    return client->me.id;
}
