/*
 * server.c - the network thread: the libwebsockets context, the connection
 * table, the outbound queues, the release loop and the shutdown.
 *
 * Connections are named by a 64-bit id (generation << 12 | slot) so that an
 * answer the engine releases for a connection that has closed meanwhile is
 * recognised and dropped, never delivered to a newer connection in the slot.
 *
 * Outbound: each connection has a queue of shared messages, bounded by
 * ARB_NET_OUTBOUND_BYTES_MAX. Past the bound the connection is closed as a
 * slow reader (4001) and its queue freed: the engine and the other
 * connections never wait for one reader. A client resumes with subscribe
 * since and resends its unanswered proposals (idempotent).
 *
 * Shutdown (*config->stop set): new connections are refused and new
 * proposals get SHUTTING_DOWN; the engine thread decides and commits what
 * was queued and releases it; queues are written out; every WebSocket is
 * closed with 1001; then the context is destroyed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/log.h"
#include "net/internal.h"

#define CONN_SLOT_BITS 12
_Static_assert((1u << CONN_SLOT_BITS) >= ARB_NET_CONNECTIONS_MAX, "a slot index fits its bits");

/* Shutdown: how long queued answers may take to leave. */
#define SHUTDOWN_GRACE_MS 3000
/* The network thread looks at the stop flag at least this often. */
#define STOP_POLL_US (100 * 1000)

arb__msg *arb__msg_new(const char *text, size_t len)
{
    arb__msg *msg = malloc(sizeof *msg + LWS_PRE + len + 1);
    if (msg == NULL)
        return NULL;
    msg->refs = 1;
    msg->len = len;
    if (len > 0)
        memcpy(msg->bytes + LWS_PRE, text, len);
    msg->bytes[LWS_PRE + len] = '\0';
    return msg;
}

arb__msg *arb__msg_from_buf(arb_buf *buf)
{
    arb__msg *msg = arb__msg_new(buf->data != NULL ? buf->data : "", buf->len);
    arb_buf_reset(buf);
    return msg;
}

void arb__msg_unref(arb__msg *msg)
{
    if (msg == NULL)
        return;
    ARB_ASSERT(msg->refs > 0);
    if (--msg->refs == 0)
        free(msg);
}

arb__server *arb__server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

arb_role arb__server_role(const arb__server *server, const char *client_id)
{
    for (size_t i = 0; i < server->config->admin_count; i++)
        if (strcmp(server->config->admins[i], client_id) == 0)
            return ARB_ROLE_ADMIN;
    return ARB_ROLE_USER;
}

/* ---- The connection table ---- */

int arb__conn_attach(arb__server *server, arb__conn *conn, struct lws *wsi, bool is_ws)
{
    if (server->conn_count >= ARB_NET_CONNECTIONS_MAX || server->shutting_down)
        return ARB_ELIMIT;
    size_t slot = 0;
    while (server->conns[slot] != NULL)
        slot++;
    ARB_ASSERT(slot < ARB_NET_CONNECTIONS_MAX);
    memset(conn, 0, sizeof *conn);
    conn->id = ((uint64_t)++server->generation << CONN_SLOT_BITS) | slot;
    conn->wsi = wsi;
    conn->server = server;
    conn->is_ws = is_ws;
    arb_buf_init(&conn->rx, ARB_WIRE_FRAME_BYTES_MAX);
    arb_buf_init(&conn->http.body, ARB_HTTP_BODY_BYTES_MAX);
    server->conns[slot] = conn;
    server->conn_count++;
    atomic_fetch_add(is_ws ? &server->metrics.connections_ws : &server->metrics.connections_http,
                     1);
    atomic_fetch_add(&server->metrics.connections_total, 1);
    return 0;
}

arb__conn *arb__conn_find(arb__server *server, uint64_t id)
{
    size_t slot = (size_t)(id & ((1u << CONN_SLOT_BITS) - 1));
    if (slot >= ARB_NET_CONNECTIONS_MAX)
        return NULL;
    arb__conn *conn = server->conns[slot];
    return conn != NULL && conn->id == id ? conn : NULL;
}

arb__msg *arb__conn_peek(const arb__conn *conn)
{
    return conn->out_count > 0 ? conn->out[conn->out_first] : NULL;
}

void arb__conn_pop(arb__conn *conn)
{
    ARB_ASSERT(conn->out_count > 0);
    arb__msg *msg = conn->out[conn->out_first];
    ARB_ASSERT(conn->out_bytes >= msg->len);
    conn->out_bytes -= msg->len;
    conn->out_first = (conn->out_first + 1) & (conn->out_cap - 1);
    conn->out_count--;
    arb__msg_unref(msg);
}

static void conn_drop_queue(arb__conn *conn)
{
    while (conn->out_count > 0)
        arb__conn_pop(conn);
    ARB_ASSERT(conn->out_bytes == 0);
}

/* Room for one more in the ring (doubling, keeping the order). */
static int conn_out_reserve(arb__conn *conn)
{
    if (conn->out_count < conn->out_cap)
        return 0;
    size_t cap = conn->out_cap == 0 ? 16 : conn->out_cap * 2;
    arb__msg **ring = malloc(cap * sizeof *ring);
    if (ring == NULL)
        return ARB_ENOMEM;
    for (size_t i = 0; i < conn->out_count; i++)
        ring[i] = conn->out[(conn->out_first + i) & (conn->out_cap - 1)];
    free(conn->out);
    conn->out = ring;
    conn->out_cap = cap;
    conn->out_first = 0;
    return 0;
}

/* Whether another WebSocket session than conn speaks for client_id. */
static bool other_session(const arb__server *server, const arb__conn *conn)
{
    for (size_t slot = 0; slot < ARB_NET_CONNECTIONS_MAX; slot++) {
        const arb__conn *other = server->conns[slot];
        if (other != NULL && other != conn && other->is_ws && other->hello_done &&
            strcmp(other->principal.id, conn->principal.id) == 0)
            return true;
    }
    return false;
}

void arb__conn_presence(arb__conn *conn, bool online)
{
    arb__server *server = conn->server;
    if (server == NULL || server->shutting_down || !conn->is_ws || !conn->hello_done ||
        other_session(server, conn))
        return;
    arb__request *request = arb__request_new(ARB__REQUEST_PRESENCE, conn->id);
    if (request == NULL)
        return;
    request->principal = conn->principal;
    request->online = online;
    if (arb__bridge_push(server->bridge, request) != 0) {
        /* Only the hold of a seat is lost: the turn clock still plays. */
        arb_log(ARB_LOG_WARN, "presence not told", "client=%s online=%d", conn->principal.id,
                online);
        arb__request_free(request);
    }
}

void arb__conn_detach(arb__server *server, arb__conn *conn)
{
    if (conn->server == NULL)
        return; /* never attached */
    arb__conn_presence(conn, false);
    size_t slot = (size_t)(conn->id & ((1u << CONN_SLOT_BITS) - 1));
    ARB_ASSERT(server->conns[slot] == conn);
    arb__unsubscribe_all(conn);
    conn_drop_queue(conn);
    free(conn->out);
    conn->out = NULL;
    conn->out_cap = 0;
    arb_buf_free(&conn->rx);
    arb_buf_free(&conn->http.body);
    arb__msg_unref(conn->http.response);
    arb__msg_unref(conn->http.empty_response);
    if (conn->http.waiting) {
        lws_sul_cancel(&conn->http.wait_timer);
        arb__topic_remove(server, conn->http.stream, conn->id);
    }
    free(conn->subs);
    server->conns[slot] = NULL;
    server->conn_count--;
    atomic_fetch_sub(
        conn->is_ws ? &server->metrics.connections_ws : &server->metrics.connections_http, 1);
    conn->server = NULL;
}

void arb__conn_close(arb__conn *conn, int status, const char *reason)
{
    if (conn->close_status != 0)
        return;
    conn->close_status = status;
    snprintf(conn->close_reason, sizeof conn->close_reason, "%s", reason);
    lws_callback_on_writable(conn->wsi);
}

void arb__conn_send(arb__conn *conn, arb__msg *msg)
{
    if (conn->close_status != 0 || msg == NULL)
        return;
    /* One message bigger than the bound (a large snapshot) may still go to a
     * reader that keeps up: the bound applies to what piles up behind it. */
    if (conn->out_count > 0 && conn->out_bytes + msg->len > conn->server->outbound_bytes_max) {
        atomic_fetch_add(&conn->server->metrics.slow_readers_closed, 1);
        arb_log(ARB_LOG_WARN, "slow reader closed", "conn=%llu client=%s queued_bytes=%zu",
                (unsigned long long)conn->id, conn->principal.id, conn->out_bytes);
        conn_drop_queue(conn);
        arb__conn_close(conn, 4001, "too slow: outbound queue full; resubscribe with since");
        return;
    }
    if (conn_out_reserve(conn) != 0) {
        arb__conn_close(conn, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    msg->refs++;
    conn->out[(conn->out_first + conn->out_count) & (conn->out_cap - 1)] = msg;
    conn->out_count++;
    conn->out_bytes += msg->len;
    if (conn->out_count == 1)
        lws_callback_on_writable(conn->wsi);
}

void arb__conn_send_error(arb__conn *conn, int code, const char *field, const char *message)
{
    arb_wire_error error;
    arb_wire_error_set(&error, code, field, message);
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    if (arb_wire_encode_error(&buf, &error) == 0) {
        arb__msg *msg = arb__msg_from_buf(&buf);
        arb__conn_send(conn, msg);
        arb__msg_unref(msg);
    }
    arb_buf_free(&buf);
    atomic_fetch_add(&conn->server->metrics.frames_refused, 1);
}

/* A proposal the engine never saw: a transient rejection (not recorded; the
 * same client_seq may be sent again later). */
static void refuse_proposals(arb__conn *conn, const arb__request *request, int code)
{
    arb_outcome *outcomes = calloc(request->count, sizeof *outcomes);
    arb_buf buf;
    arb_buf_init(&buf, SIZE_MAX / 2);
    int rc = outcomes != NULL ? 0 : ARB_ENOMEM;
    for (size_t i = 0; i < request->count && rc == 0; i++) {
        arb_outcome *outcome = &outcomes[i];
        outcome->kind = ARB_OUTCOME_REJECTED;
        outcome->code = code;
        outcome->client_seq = request->commands[i].client_seq;
        memcpy(outcome->client_id, request->commands[i].principal.id, sizeof outcome->client_id);
        memcpy(outcome->stream, request->commands[i].stream, sizeof outcome->stream);
        snprintf(outcome->message, sizeof outcome->message, "%s", arb_err_message(code));
    }
    if (rc == 0)
        rc = request->kind == ARB__REQUEST_PROPOSE
                 ? arb_wire_encode_rejected(&buf, &outcomes[0], NULL)
                 : arb_wire_encode_sync_result(&buf, outcomes, request->count);
    free(outcomes);
    arb__release release = {.kind = ARB__RELEASE_REPLY,
                            .conn = conn->id,
                            .status = arb__http_status(code),
                            .msg = rc == 0 ? arb__msg_from_buf(&buf) : NULL};
    if (release.msg != NULL && conn->is_ws)
        arb__ws_release(conn, &release);
    else if (release.msg != NULL)
        arb__http_release(conn, &release);
    arb__msg_unref(release.msg);
    arb_buf_free(&buf);
}

void arb__conn_request(arb__conn *conn, arb__request *request)
{
    arb__server *server = conn->server;
    /* Once pushed, the request is the engine thread's: read it before. */
    uint32_t count = (uint32_t)request->count;
    int rc = server->shutting_down ? ARB_ESHUTTING_DOWN : arb__bridge_push(server->bridge, request);
    if (rc == 0) {
        conn->pending += count;
        return;
    }
    if (rc == ARB_EOVERLOADED)
        atomic_fetch_add(&server->metrics.overloaded, request->count);
    if (request->count > 0) {
        refuse_proposals(conn, request, rc);
    } else if (conn->is_ws) {
        arb__conn_send_error(conn, rc, "", NULL);
    } else {
        arb__release release = {
            .kind = ARB__RELEASE_REPLY, .conn = conn->id, .status = arb__http_status(rc)};
        arb_wire_error error;
        arb_wire_error_set(&error, rc, NULL, NULL);
        arb_buf buf;
        arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
        if (arb_wire_encode_error(&buf, &error) == 0 &&
            (release.msg = arb__msg_from_buf(&buf)) != NULL) {
            arb__http_release(conn, &release);
            arb__msg_unref(release.msg);
        }
        arb_buf_free(&buf);
    }
    if (request->kind == ARB__REQUEST_SUBSCRIBE)
        arb__unsubscribe(conn, request->stream);
    arb__request_free(request);
}

/* ---- Releases ---- */

static void deliver(arb__server *server, arb__release *release)
{
    if (release->kind == ARB__RELEASE_GARBAGE)
        return; /* freed with the release */
    if (release->kind == ARB__RELEASE_EVENTS) {
        arb__fanout(server, release);
        return;
    }
    arb__conn *conn = arb__conn_find(server, release->conn);
    if (conn == NULL)
        return; /* it closed meanwhile: the answer stays in the log */
    ARB_ASSERT(conn->pending >= release->answered);
    conn->pending -= release->answered;
    if (release->kind == ARB__RELEASE_SUBSCRIBED)
        arb__subscribed(conn, release);
    else if (conn->is_ws)
        arb__ws_release(conn, release);
    else
        arb__http_release(conn, release);
}

static void drain_releases(arb__server *server)
{
    arb__release *list = arb__bridge_take(server->bridge);
    while (list != NULL) {
        arb__release *next = list->next;
        deliver(server, list);
        arb__release_free(list);
        list = next;
    }
}

/* Shared by both protocols: the wake-up from the engine thread. */
int arb__server_wake(struct lws *wsi)
{
    arb__server *server = arb__server_of(wsi);
    if (server != NULL && server->bridge != NULL)
        drain_releases(server);
    return 0;
}

/* ---- The context ---- */

static const struct lws_protocols protocols[] = {
    {"http", arb__http_callback, sizeof(arb__conn), 0, 0, NULL, 0},
    {ARB_WIRE_SUBPROTOCOL, arb__ws_callback, sizeof(arb__conn), 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Wakes the loop every STOP_POLL_US so that it reads the stop flag (a
 * signal may land on another thread); re-arms itself. */
static void stop_poll(lws_sorted_usec_list_t *sul)
{
    arb__server *server = lws_container_of(sul, arb__server, stop_timer);
    lws_sul_schedule(server->context, 0, sul, stop_poll, STOP_POLL_US);
}

int arb_server_parse_listen(const char *text, char *host, size_t host_size, int *port_out)
{
    const char *colon = text != NULL ? strrchr(text, ':') : NULL;
    if (colon == NULL || colon == text || (size_t)(colon - text) >= host_size)
        return ARB_EINVALID_ARGUMENT;
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return ARB_EINVALID_ARGUMENT;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    *port_out = (int)port;
    return 0;
}

static int write_port_file(struct lws_context *context, const char *path)
{
    struct lws_vhost *vhost = lws_get_vhost_by_name(context, "default");
    int port = vhost != NULL ? lws_get_vhost_listen_port(vhost) : -1;
    if (port <= 0)
        return ARB_EIO;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen(tmp, "w");
    if (file == NULL)
        return ARB_EIO;
    fprintf(file, "%d\n", port);
    if (fclose(file) != 0 || rename(tmp, path) != 0)
        return ARB_EIO;
    return 0;
}

static struct lws_context *create_context(arb__server *server, struct lws_http_mount *mounts)
{
    const arb_server_config *config = server->config;
    /* Mounts: the API and the probes are ours; "/" serves web/. */
    static const char *const callback_points[] = {"/v1", "/healthz", "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        mounts[i].mount_next = &mounts[i + 1];
        mounts[i].mountpoint = callback_points[i];
        mounts[i].mountpoint_len = (unsigned char)strlen(callback_points[i]);
        mounts[i].origin_protocol = LWSMPRO_CALLBACK;
        mounts[i].protocol = "http";
    }
    mounts[2].mount_next = NULL;
    if (config->web_root != NULL) {
        mounts[2].mount_next = &mounts[3];
        mounts[3].mountpoint = "/";
        mounts[3].mountpoint_len = 1;
        mounts[3].origin = config->web_root;
        mounts[3].def = "index.html";
        mounts[3].origin_protocol = LWSMPRO_FILE;
    }
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = config->port; /* 0: the kernel chooses (see port_file) */
    info.iface = config->host;
    info.protocols = protocols;
    info.mounts = mounts;
    info.user = server;
    info.vhost_name = "default";
    info.keepalive_timeout = ARB_HTTP_WAIT_S_MAX + 5;
    info.timeout_secs = 10;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.count_threads = 1;
    return lws_create_context(&info);
}

static void lws_logger(int level, const char *line)
{
    arb_log(level == LLL_ERR ? ARB_LOG_ERROR : ARB_LOG_WARN, "libwebsockets", "line=\"%.*s\"",
            (int)strcspn(line, "\n"), line);
}

/* Run the loop until cond(server) or the deadline (0: none). */
static void service_until(arb__server *server, bool (*cond)(arb__server *), int64_t deadline_ms)
{
    while (!cond(server)) {
        if (deadline_ms != 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 > deadline_ms)
                return;
        }
        if (lws_service(server->context, 0) < 0)
            return;
        drain_releases(server);
    }
}

static bool stop_asked(arb__server *server)
{
    return *server->config->stop != 0;
}

static bool engine_done(arb__server *server)
{
    return arb__bridge_done(server->bridge);
}

static bool queues_empty(arb__server *server)
{
    for (size_t i = 0; i < ARB_NET_CONNECTIONS_MAX; i++) {
        const arb__conn *conn = server->conns[i];
        if (conn != NULL && conn->out_count > 0 && conn->close_status == 0)
            return false;
    }
    return true;
}

static bool all_closed(arb__server *server)
{
    return server->conn_count == 0;
}

static int64_t grace_deadline_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + SHUTDOWN_GRACE_MS;
}

static void shut_down(arb__server *server)
{
    server->shutting_down = true;
    arb__bridge_stop(server->bridge);
    service_until(server, engine_done, 0);
    drain_releases(server);
    service_until(server, queues_empty, grace_deadline_ms());
    for (size_t i = 0; i < ARB_NET_CONNECTIONS_MAX; i++) {
        arb__conn *conn = server->conns[i];
        if (conn != NULL && conn->is_ws)
            arb__conn_close(conn, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
        else if (conn != NULL)
            arb__http_shut_down(conn);
    }
    service_until(server, all_closed, grace_deadline_ms());
}

int arb_server_run(arb_engine *engine, const arb_server_config *config)
{
    arb__server *server = calloc(1, sizeof *server);
    struct lws_http_mount *mounts = calloc(4, sizeof *mounts);
    if (server == NULL || mounts == NULL) {
        free(server);
        free(mounts);
        return ARB_ENOMEM;
    }
    server->config = config;
    server->idle_timeout_s =
        config->idle_timeout_s > 0 ? config->idle_timeout_s : ARB_NET_IDLE_TIMEOUT_S_DEFAULT;
    server->outbound_bytes_max =
        config->outbound_bytes_max > 0 && config->outbound_bytes_max < ARB_NET_OUTBOUND_BYTES_MAX
            ? config->outbound_bytes_max
            : ARB_NET_OUTBOUND_BYTES_MAX;
    server->conns = calloc(ARB_NET_CONNECTIONS_MAX, sizeof *server->conns);
    arb_map_init(&server->topics, ARB_NET_CONNECTIONS_MAX * ARB_WIRE_SUBSCRIPTIONS_MAX);
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_logger);
    int rc = server->conns != NULL ? 0 : ARB_ENOMEM;
    if (rc == 0) {
        server->context = create_context(server, mounts);
        rc = server->context != NULL ? 0 : ARB_EIO;
    }
    if (rc == 0)
        rc = arb__bridge_start(engine, server->context, &server->metrics, &server->bridge);
    if (rc == 0 && config->port_file != NULL)
        rc = write_port_file(server->context, config->port_file);
    if (rc == 0) {
        arb_log(ARB_LOG_INFO, "listening", "host=%s port=%d web=%s", config->host,
                lws_get_vhost_listen_port(lws_get_vhost_by_name(server->context, "default")),
                config->web_root != NULL ? config->web_root : "-");
        lws_sul_schedule(server->context, 0, &server->stop_timer, stop_poll, STOP_POLL_US);
        service_until(server, stop_asked, 0);
        shut_down(server);
    }
    arb__bridge_join(server->bridge); /* before the context it wakes goes */
    if (server->context != NULL) {
        lws_sul_cancel(&server->stop_timer);
        lws_context_destroy(server->context);
    }
    if (server->bridge != NULL)
        arb__bridge_free(server->bridge);
    arb__topics_free(server);
    arb_map_free(&server->topics);
    free(server->conns);
    free(server);
    free(mounts);
    return rc;
}
