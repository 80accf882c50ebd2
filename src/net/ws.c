/*
 * ws.c - the WebSocket side of a connection (subprotocol arbiter.v1).
 *
 * A connection's life:
 *
 *   ESTABLISHED --hello--> session --...--> CLOSED
 *        |                    | propose, sync  -> engine (pending += n)
 *        |                    | subscribe      -> engine (snapshot/catch-up)
 *        | ping, hello only   | unsubscribe, ping: answered here
 *
 * Frames are assembled from lws's fragments into one message (at most
 * ARB_WIRE_FRAME_BYTES_MAX; the rest of a bigger one is skipped, then
 * refused with TOO_LARGE), decoded strictly by arb_wire_decode, and answered
 * with an `error` when refused; the connection stays usable except after an
 * UNSUPPORTED_VERSION hello. Reading pauses while ARB_WIRE_PENDING_PROPOSALS_MAX
 * proposals wait for answers (back-pressure on a pipelining client) and
 * resumes when half have been answered.
 *
 * Idle timeout: each frame re-arms a timer of idle_timeout_s; a silent
 * client is closed (lws closes the socket; a ping keeps a session alive).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/log.h"
#include "net/internal.h"

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void send_buf(arb__conn *conn, arb_buf *buf)
{
    arb__msg *msg = arb__msg_from_buf(buf);
    arb__conn_send(conn, msg);
    arb__msg_unref(msg);
}

static void on_hello(arb__conn *conn, const arb_wire_hello *hello)
{
    if (conn->hello_done) {
        arb__conn_send_error(conn, ARB_EINVALID_ARGUMENT, "type",
                             "hello was already accepted on this connection");
        return;
    }
    memcpy(conn->principal.id, hello->client_id, sizeof conn->principal.id);
    conn->principal.role = arb__server_role(conn->server, hello->client_id);
    conn->hello_done = true;
    arb__conn_presence(conn, true);
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    if (arb_wire_encode_welcome(&buf, now_ms()) == 0)
        send_buf(conn, &buf);
    arb_buf_free(&buf);
    arb_log(ARB_LOG_DEBUG, "hello", "conn=%llu client=%s role=%s", (unsigned long long)conn->id,
            conn->principal.id, conn->principal.role == ARB_ROLE_ADMIN ? "admin" : "user");
}

/* Propose and sync: move the commands into a request for the engine. */
static void on_proposals(arb__conn *conn, arb_wire_message *message)
{
    size_t count = message->type == ARB_WIRE_PROPOSE ? 1 : message->as.sync.count;
    arb__request *request = arb__request_new(
        message->type == ARB_WIRE_PROPOSE ? ARB__REQUEST_PROPOSE : ARB__REQUEST_SYNC, conn->id);
    if (request == NULL) {
        arb__conn_send_error(conn, ARB_ENOMEM, "", NULL);
        return;
    }
    request->principal = conn->principal;
    if (message->type == ARB_WIRE_PROPOSE) {
        request->commands = malloc(sizeof *request->commands);
        if (request->commands == NULL) {
            arb__request_free(request);
            arb__conn_send_error(conn, ARB_ENOMEM, "", NULL);
            return;
        }
        request->commands[0] = message->as.propose;
        arb_command_init(&message->as.propose); /* moved */
    } else {
        request->commands = message->as.sync.proposals;
        request->atomic = message->as.sync.atomic;
        message->as.sync.proposals = NULL; /* moved */
        message->as.sync.count = 0;
    }
    request->count = count;
    if (conn->pending + count > ARB_WIRE_PENDING_PROPOSALS_MAX) {
        /* Only a client that ignores the pause gets here (a sync larger
         * than what is left of its window). */
        atomic_fetch_add(&conn->server->metrics.overloaded, count);
        arb__conn_send_error(conn, ARB_EOVERLOADED,
                             message->type == ARB_WIRE_SYNC ? "proposals" : "",
                             "too many unanswered proposals on this connection");
        arb__request_free(request);
        return;
    }
    arb__conn_request(conn, request);
    if (conn->pending >= ARB_WIRE_PENDING_PROPOSALS_MAX && !conn->rx_paused) {
        conn->rx_paused = true;
        lws_rx_flow_control(conn->wsi, 0);
    }
}

static void on_ping(arb__conn *conn, const arb_wire_ping *ping)
{
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    if (arb_wire_encode_pong(&buf, ping->has_nonce ? ping->nonce : NULL) == 0)
        send_buf(conn, &buf);
    arb_buf_free(&buf);
}

static void on_message(arb__conn *conn)
{
    if (conn->rx_binary) {
        arb__conn_send_error(conn, ARB_EMALFORMED, "",
                             "binary frames are not accepted: send JSON text frames");
        return;
    }
    if (conn->rx_too_large) {
        arb__conn_send_error(conn, ARB_ETOO_LARGE, "", "a message is at most 1048576 bytes");
        return;
    }
    arb_wire_message message;
    arb_wire_error error;
    int rc = arb_wire_decode(conn->rx.data, conn->rx.len,
                             conn->hello_done ? &conn->principal : NULL, &message, &error);
    if (rc != 0) {
        arb__conn_send_error(conn, error.code, error.field, error.message);
        if (rc == ARB_EUNSUPPORTED_VERSION)
            arb__conn_close(conn, LWS_CLOSE_STATUS_PROTOCOL_ERR, "unsupported protocol version");
        return;
    }
    switch (message.type) {
    case ARB_WIRE_HELLO:
        on_hello(conn, &message.as.hello);
        break;
    case ARB_WIRE_PROPOSE:
    case ARB_WIRE_SYNC:
        on_proposals(conn, &message);
        break;
    case ARB_WIRE_SUBSCRIBE:
        rc = arb__subscribe(conn, &message.as.subscribe);
        break;
    case ARB_WIRE_UNSUBSCRIBE:
        rc = arb__unsubscribe(conn, message.as.subscribe.stream);
        if (rc != 0)
            arb__conn_send_error(conn, ARB_EINVALID_ARGUMENT, "stream",
                                 "not subscribed to this stream");
        break;
    case ARB_WIRE_PING:
        on_ping(conn, &message.as.ping);
        break;
    default:
        ARB_ASSERT(false);
    }
    arb_wire_message_clear(&message);
}

static int on_receive(arb__conn *conn, struct lws *wsi, const void *in, size_t len)
{
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, conn->server->idle_timeout_s);
    if (!conn->rx_active) {
        conn->rx_active = true;
        conn->rx_binary = lws_frame_is_binary(wsi) != 0;
        conn->rx_too_large = false;
        arb_buf_reset(&conn->rx);
    }
    if (!conn->rx_too_large && !conn->rx_binary && arb_buf_append(&conn->rx, in, len) != 0) {
        conn->rx_too_large = true;
        arb_buf_reset(&conn->rx);
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    conn->rx_active = false;
    if (conn->server->shutting_down) {
        arb__conn_send_error(conn, ARB_ESHUTTING_DOWN, "", NULL);
        return 0;
    }
    on_message(conn);
    arb_buf_reset(&conn->rx);
    return 0;
}

/* Server frames are unmasked: FIN + text, then the length in 1, 3 or 9
 * bytes (RFC 6455 5.2). Returns the header's length. */
static size_t frame_header(unsigned char *out, size_t len)
{
    out[0] = 0x81;
    if (len < 126) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* The queued messages that fit, framed back to back in one buffer and sent
 * in one write (one syscall for a whole pipeline of outcomes rather than one
 * each). LWS_WRITE_HTTP sends bytes as they are, through lws's buffering of
 * what the socket does not take. Network thread only: one buffer. */
#define COALESCE_BYTES (64 * 1024)
static unsigned char coalesced[LWS_PRE + COALESCE_BYTES];

static int write_coalesced(arb__conn *conn, struct lws *wsi)
{
    size_t used = 0;
    unsigned char *out = coalesced + LWS_PRE;
    for (arb__msg *msg; (msg = arb__conn_peek(conn)) != NULL;) {
        if (used + 10 + msg->len > COALESCE_BYTES)
            break;
        used += frame_header(out + used, msg->len);
        memcpy(out + used, msg->bytes + LWS_PRE, msg->len);
        used += msg->len;
        arb__conn_pop(conn);
    }
    ARB_ASSERT(used > 0);
    return lws_write(wsi, out, used, LWS_WRITE_HTTP) < (int)used ? -1 : 0;
}

static int on_writeable(arb__conn *conn, struct lws *wsi)
{
    for (arb__msg *msg; (msg = arb__conn_peek(conn)) != NULL && !lws_send_pipe_choked(wsi);) {
        if (msg->len + 10 > COALESCE_BYTES) { /* a big one alone, framed by lws */
            if (lws_write(wsi, msg->bytes + LWS_PRE, msg->len, LWS_WRITE_TEXT) < 0)
                return -1;
            arb__conn_pop(conn);
        } else if (write_coalesced(conn, wsi) != 0) {
            return -1;
        }
    }
    if (conn->out_count > 0) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (conn->close_status != 0) {
        lws_close_reason(wsi, (enum lws_close_status)conn->close_status,
                         (unsigned char *)conn->close_reason, strlen(conn->close_reason));
        return -1;
    }
    return 0;
}

void arb__ws_release(arb__conn *conn, arb__release *release)
{
    arb__conn_send(conn, release->msg);
    if (conn->rx_paused && conn->pending <= ARB_WIRE_PENDING_PROPOSALS_MAX / 2) {
        conn->rx_paused = false;
        lws_rx_flow_control(conn->wsi, 1);
    }
}

int arb__ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    arb__conn *conn = user;
    arb__server *server = arb__server_of(wsi);
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        if (arb__conn_attach(server, conn, wsi, true) != 0) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY,
                             (unsigned char *)"server full or shutting down", 28);
            return -1;
        }
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, server->idle_timeout_s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return conn->server != NULL ? on_receive(conn, wsi, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return conn->server != NULL ? on_writeable(conn, wsi) : -1;
    case LWS_CALLBACK_CLOSED:
        arb__conn_detach(server, conn);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0; /* the http protocol's callback delivers releases */
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
