/*
 * http.c - the HTTP API (docs/protocol.md, "HTTP API") and the probes.
 *
 * One transaction at a time per connection (HTTP/1.1 keep-alive):
 *
 *   READING --(GET / POST body complete)--> WAITING --(engine answers)--> HEADERS
 *      |                                       | long poll: no events yet:   |
 *      +--(probe, or a refusal)--> HEADERS     | park until a commit on the  v
 *                                              | stream or the wait runs out BODY --> done
 *
 * The engine's answers arrive as releases (server.c) already encoded; this
 * file only maps them onto status, headers and body. Identity: the
 * X-Client-Id header names the principal (claimed, as with hello, until
 * authentication lands); reads without one are made as "anonymous".
 * Idempotency-Key is the proposal's client_seq (a decimal integer, unique per
 * client id and increasing, like the WebSocket's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/log.h"
#include "net/internal.h"
#include "net/route.h"

#define HEADER_BYTES_MAX 256

static void respond(arb__conn *conn, int status, const char *content_type, arb__msg *msg)
{
    arb__http *http = &conn->http;
    ARB_ASSERT(http->response == NULL);
    http->status = status;
    http->content_type = content_type;
    http->response = msg; /* takes the reference */
    http->phase = ARB__HTTP_HEADERS;
    lws_callback_on_writable(conn->wsi);
}

static void respond_error(arb__conn *conn, int code, const char *field, const char *message)
{
    arb_wire_error error;
    arb_wire_error_set(&error, code, field, message);
    arb_buf buf;
    arb_buf_init(&buf, ARB_WIRE_FRAME_BYTES_MAX);
    int rc = arb_wire_encode_error(&buf, &error);
    ARB_ASSERT(rc == 0);
    respond(conn, arb__http_status(code), "application/json", arb__msg_from_buf(&buf));
    arb_buf_free(&buf);
    atomic_fetch_add(&conn->server->metrics.frames_refused, 1);
}

static void respond_text(arb__conn *conn, int status, const char *content_type, arb_buf *buf)
{
    respond(conn, status, content_type, arb__msg_from_buf(buf));
}

/* A custom header's value into buf; 0, ARB_ENOTFOUND, ARB_ETOO_LARGE. */
static int header(struct lws *wsi, const char *name, char *buf, size_t size)
{
    int nlen = (int)strlen(name);
    int len = lws_hdr_custom_length(wsi, name, nlen);
    if (len < 0)
        return ARB_ENOTFOUND;
    if ((size_t)len >= size)
        return ARB_ETOO_LARGE;
    return lws_hdr_custom_copy(wsi, buf, (int)size, name, nlen) >= 0 ? 0 : ARB_ETOO_LARGE;
}

/* The principal: X-Client-Id, or "anonymous" when reads are made without. */
static int principal(arb__conn *conn, bool required)
{
    char id[ARB_CLIENT_ID_BYTES_MAX + 1];
    int rc = header(conn->wsi, "x-client-id:", id, sizeof id);
    if (rc == ARB_ENOTFOUND && !required)
        snprintf(id, sizeof id, "anonymous");
    else if (rc != 0 || id[0] == '\0')
        return rc == ARB_ETOO_LARGE ? ARB_ETOO_LARGE : ARB_EINVALID_ARGUMENT;
    memcpy(conn->principal.id, id, sizeof conn->principal.id);
    conn->principal.role = arb__server_role(conn->server, id);
    return 0;
}

/* A query argument as an integer; absent: *value_out = fallback. */
static int query_u64(struct lws *wsi, const char *name_eq, uint64_t max, uint64_t fallback,
                     uint64_t *value_out)
{
    char buf[64];
    const char *value = lws_get_urlarg_by_name(wsi, name_eq, buf, (int)sizeof buf);
    if (value == NULL) {
        *value_out = fallback;
        return 0;
    }
    return arb_route_decimal(value, 0, max, value_out);
}

static void ask(arb__conn *conn, arb__request_kind kind)
{
    arb__request *request = arb__request_new(kind, conn->id);
    if (request == NULL) {
        respond_error(conn, ARB_ENOMEM, NULL, NULL);
        return;
    }
    request->http = true;
    request->principal = conn->principal;
    memcpy(request->stream, conn->http.stream, sizeof request->stream);
    request->has_since = true;
    request->since = conn->http.since;
    request->limit = conn->http.limit;
    request->hand = conn->http.hand;
    conn->http.phase = ARB__HTTP_WAITING;
    if (kind == ARB__REQUEST_STATE) {
        char etag[32];
        if (lws_hdr_copy(conn->wsi, etag, sizeof etag, WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
            arb_route_etag(etag, &request->etag) == 0)
            request->has_etag = true;
    }
    arb__conn_request(conn, request);
}

static void get_events(arb__conn *conn)
{
    uint64_t wait_s = 0;
    int rc = query_u64(conn->wsi, "since=", (uint64_t)ARB_JSON_INT_MAX, 0, &conn->http.since);
    if (rc == 0)
        rc = query_u64(conn->wsi, "limit=", ARB_HTTP_EVENTS_LIMIT_MAX, ARB_HTTP_EVENTS_LIMIT_MAX,
                       &conn->http.limit);
    if (rc == 0)
        rc = query_u64(conn->wsi, "wait=", ARB_HTTP_WAIT_S_MAX, 0, &wait_s);
    if (rc != 0 || conn->http.limit == 0) {
        respond_error(conn, ARB_EINVALID_ARGUMENT, "query",
                      "since (0..2^53-1), limit (1..1000) and wait (0..60 s) are integers");
        return;
    }
    conn->http.wait_s = (int)wait_s;
    ask(conn, ARB__REQUEST_EVENTS);
}

static void get_probe(arb__conn *conn, arb_route route)
{
    arb_buf buf;
    arb_buf_init(&buf, 1024 * 1024);
    if (route == ARB_ROUTE_HEALTHZ) {
        arb_buf_append_str(&buf, conn->server->shutting_down ? "{\"status\":\"shutting_down\"}"
                                                             : "{\"status\":\"ok\"}");
        respond_text(conn, conn->server->shutting_down ? 503 : 200, "application/json", &buf);
    } else {
        arb__metrics_render(&conn->server->metrics, &buf);
        respond_text(conn, 200, "text/plain; version=0.0.4", &buf);
    }
    arb_buf_free(&buf);
}

/* A POST body is complete: decode it into proposals for the engine. */
static void post(arb__conn *conn)
{
    arb__http *http = &conn->http;
    if (http->body_too_large) {
        respond_error(conn, ARB_ETOO_LARGE, "", "a request body is at most 1048576 bytes");
        return;
    }
    arb_wire_message message;
    arb_wire_error error;
    bool command = http->route == ARB_ROUTE_COMMANDS;
    int rc =
        arb_wire_decode_http(http->body.data, http->body.len, &conn->principal,
                             command ? http->stream : NULL, http->client_seq, &message, &error);
    if (rc != 0) {
        respond_error(conn, error.code, error.field, error.message);
        return;
    }
    arb__request *request =
        arb__request_new(command ? ARB__REQUEST_PROPOSE : ARB__REQUEST_SYNC, conn->id);
    if (request == NULL || (command && (request->commands = malloc(sizeof(arb_command))) == NULL)) {
        arb__request_free(request);
        arb_wire_message_clear(&message);
        respond_error(conn, ARB_ENOMEM, NULL, NULL);
        return;
    }
    request->http = true;
    request->principal = conn->principal;
    if (command) {
        request->commands[0] = message.as.propose;
        request->count = 1;
    } else {
        request->commands = message.as.sync.proposals;
        request->count = message.as.sync.count;
        request->atomic = message.as.sync.atomic;
    }
    arb_wire_message_init(&message); /* moved into the request */
    http->phase = ARB__HTTP_WAITING;
    arb__conn_request(conn, request);
}

/* What libwebsockets lets through but HTTP/1.1 does not: a request line
 * whose version is not HTTP/1.0 or HTTP/1.1 (lws answers even a missing one
 * as 1.0), and a Content-Length that is not a decimal number (lws reads "-5"
 * as an endless body to wait for and "ten" as 0, leaving the rest of the
 * bytes to be taken for the next request). Returns 0, ARB_EMALFORMED (refuse
 * with 400) or ARB_EIO (the framing cannot be trusted: close at once). */
static int check_framing(struct lws *wsi)
{
    char text[32];
    int len = lws_hdr_copy(wsi, text, sizeof text, WSI_TOKEN_HTTP);
    if (len <= 0 || (strcmp(text, "HTTP/1.1") != 0 && strcmp(text, "HTTP/1.0") != 0))
        return ARB_EMALFORMED;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return 0;
    uint64_t body_len = 0;
    len = lws_hdr_copy(wsi, text, sizeof text, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (len <= 0 || arb_route_decimal(text, 0, UINT64_MAX, &body_len) != 0)
        return ARB_EIO;
    return 0;
}

/* Headers are in: route the request. */
static int on_request(arb__conn *conn, struct lws *wsi)
{
    arb__http *http = &conn->http;
    int rc = check_framing(wsi);
    if (rc == ARB_EIO) {
        atomic_fetch_add(&conn->server->metrics.frames_refused, 1);
        return -1; /* lws closes the connection */
    }
    if (rc != 0) {
        respond_error(conn, rc, "version", "the request line ends in HTTP/1.0 or HTTP/1.1");
        return 0;
    }
    arb_method method = ARB_METHOD_OTHER;
    char path[512];
    int path_len = -1;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0) {
        method = ARB_METHOD_GET;
        path_len = lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI);
    } else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) {
        method = ARB_METHOD_POST;
        path_len = lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_POST_URI);
    }
    if (method == ARB_METHOD_OTHER) {
        respond_error(conn, ARB_EUSAGE, "method", "only GET and POST are served");
        return 0;
    }
    if (path_len < 0) {
        respond_error(conn, ARB_ETOO_LARGE, "path", "the path is too long");
        return 0;
    }
    arb_route route = ARB_ROUTE_NONE;
    rc = arb_route_parse(method, path, &route, http->stream, sizeof http->stream);
    if (rc != 0) {
        respond_error(conn, rc, rc == ARB_ENOTFOUND || rc == ARB_EUSAGE ? "path" : "stream", NULL);
        return 0;
    }
    http->route = (int)route;
    if (route == ARB_ROUTE_HEALTHZ || route == ARB_ROUTE_METRICS) {
        get_probe(conn, route);
        return 0;
    }
    rc = principal(conn, method == ARB_METHOD_POST);
    if (rc != 0) {
        respond_error(conn, rc, "X-Client-Id", "X-Client-Id names the client (1-64 bytes)");
        return 0;
    }
    if (route == ARB_ROUTE_COMMANDS) {
        char key[32];
        if (header(wsi, "idempotency-key:", key, sizeof key) != 0 ||
            arb_route_decimal(key, 1, (uint64_t)ARB_JSON_INT_MAX, &http->client_seq) != 0) {
            respond_error(conn, ARB_EINVALID_ARGUMENT, "Idempotency-Key",
                          "Idempotency-Key is the client_seq: an integer from 1 to 2^53-1");
            return 0;
        }
    }
    switch (route) {
    case ARB_ROUTE_STREAMS:
        ask(conn, ARB__REQUEST_STREAMS);
        break;
    case ARB_ROUTE_STATE:
        ask(conn, ARB__REQUEST_STATE);
        break;
    case ARB_ROUTE_EVENTS:
        get_events(conn);
        break;
    case ARB_ROUTE_HAND:
        if (arb_route_hand(path, &http->hand) != 0) {
            respond_error(conn, ARB_EINVALID_ARGUMENT, "hand",
                          "a hand is numbered by an integer from 1 to 2^53-1");
            return 0;
        }
        ask(conn, ARB__REQUEST_HAND);
        break;
    default:
        /* POST: the body follows (LWS_CALLBACK_HTTP_BODY...). */
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
            respond_error(conn, ARB_EMALFORMED, "body", "a POST needs a JSON body");
        }
        break;
    }
    return 0;
}

/* ---- Long polls ---- */

static void unpark(arb__conn *conn)
{
    if (!conn->http.waiting)
        return;
    conn->http.waiting = false;
    lws_sul_cancel(&conn->http.wait_timer);
    arb__topic_remove(conn->server, conn->http.stream, conn->id);
}

static void wait_expired(lws_sorted_usec_list_t *sul)
{
    arb__conn *conn = lws_container_of(sul, arb__conn, http.wait_timer);
    if (!conn->http.waiting)
        return;
    unpark(conn);
    arb__msg *msg = conn->http.empty_response;
    conn->http.empty_response = NULL;
    respond(conn, 200, "application/json", msg);
}

void arb__http_shut_down(arb__conn *conn)
{
    if (conn->http.waiting)
        wait_expired(&conn->http.wait_timer);
    else if (conn->http.phase == ARB__HTTP_READING)
        lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void arb__http_wake(arb__conn *conn, uint64_t last_seq)
{
    if (!conn->http.waiting || last_seq <= conn->http.since)
        return;
    unpark(conn);
    arb__msg_unref(conn->http.empty_response);
    conn->http.empty_response = NULL;
    conn->http.wait_s = 0;
    ask(conn, ARB__REQUEST_EVENTS);
}

static void park(arb__conn *conn, arb__release *release)
{
    arb__http *http = &conn->http;
    http->empty_response = release->msg;
    http->empty_response->refs++;
    if (arb__topic_add(conn->server, http->stream, conn->id) != 0) {
        respond(conn, 200, "application/json", http->empty_response);
        http->empty_response = NULL;
        return;
    }
    http->waiting = true;
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_HTTP_CONTENT, http->wait_s + 10);
    lws_sul_schedule(lws_get_context(conn->wsi), 0, &http->wait_timer, wait_expired,
                     (lws_usec_t)http->wait_s * LWS_US_PER_SEC);
}

void arb__http_release(arb__conn *conn, arb__release *release)
{
    arb__http *http = &conn->http;
    if (http->phase != ARB__HTTP_WAITING)
        return; /* the transaction ended (a refusal already answered) */
    if (http->route == ARB_ROUTE_EVENTS && release->empty && release->status == 200 &&
        http->wait_s > 0 && !conn->server->shutting_down) {
        park(conn, release);
        return;
    }
    if (http->route == ARB_ROUTE_STATE && (release->status == 200 || release->status == 304))
        snprintf(http->etag, sizeof http->etag, "\"%llu\"", (unsigned long long)release->seq);
    if (release->status == 503)
        snprintf(http->retry_after, sizeof http->retry_after, "1");
    release->msg->refs++;
    /* A hand history is text; its refusals are JSON errors like any other. */
    bool text = http->route == ARB_ROUTE_HAND && release->status == 200;
    respond(conn, release->status, text ? "text/plain; charset=utf-8" : "application/json",
            release->msg);
}

/* ---- Writing the response ---- */

static int write_headers(arb__conn *conn, struct lws *wsi)
{
    arb__http *http = &conn->http;
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    size_t body_len = http->status == 304 || http->response == NULL ? 0 : http->response->len;
    if (lws_add_http_common_headers(wsi, (unsigned int)http->status, http->content_type, body_len,
                                    &p, end) != 0)
        return -1;
    if (http->etag[0] != '\0' && lws_add_http_header_by_name(wsi, (const unsigned char *)"etag:",
                                                             (const unsigned char *)http->etag,
                                                             (int)strlen(http->etag), &p, end) != 0)
        return -1;
    if (http->retry_after[0] != '\0' &&
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"retry-after:", (const unsigned char *)http->retry_after,
            (int)strlen(http->retry_after), &p, end) != 0)
        return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) != 0)
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end) != 0)
        return -1;
    http->phase = ARB__HTTP_BODY;
    if (body_len > 0) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return 1; /* nothing more to write */
}

/* The transaction is over: reset for the next one on this connection. */
static int finish(arb__conn *conn, struct lws *wsi)
{
    arb__http *http = &conn->http;
    arb__msg_unref(http->response);
    http->response = NULL;
    http->phase = ARB__HTTP_READING;
    http->etag[0] = http->retry_after[0] = '\0';
    http->body_too_large = false;
    arb_buf_reset(&http->body);
    return lws_http_transaction_completed(wsi) != 0 ? -1 : 0;
}

static int on_writeable(arb__conn *conn, struct lws *wsi)
{
    arb__http *http = &conn->http;
    if (http->phase == ARB__HTTP_HEADERS) {
        int rc = write_headers(conn, wsi);
        if (rc <= 0)
            return rc;
        return finish(conn, wsi);
    }
    if (http->phase != ARB__HTTP_BODY)
        return 0;
    if (lws_write(wsi, http->response->bytes + LWS_PRE, http->response->len, LWS_WRITE_HTTP_FINAL) <
        0)
        return -1;
    return finish(conn, wsi);
}

static int on_http(arb__conn *conn, struct lws *wsi)
{
    arb__server *server = arb__server_of(wsi);
    if (conn->server == NULL && arb__conn_attach(server, conn, wsi, false) != 0)
        return -1; /* full, or shutting down */
    arb__msg_unref(conn->http.response);
    arb_buf_reset(&conn->http.body);
    arb__http keep = conn->http;
    memset(&conn->http, 0, sizeof conn->http);
    conn->http.body = keep.body;
    return on_request(conn, wsi);
}

int arb__http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    arb__conn *conn = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(conn, wsi);
    case LWS_CALLBACK_HTTP_BODY:
        if (conn->server != NULL && !conn->http.body_too_large &&
            arb_buf_append(&conn->http.body, in, len) != 0) {
            conn->http.body_too_large = true;
            arb_buf_reset(&conn->http.body);
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (conn->server != NULL && conn->http.phase == ARB__HTTP_READING)
            post(conn);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return conn->server != NULL ? on_writeable(conn, wsi) : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (conn != NULL && conn->server != NULL && !conn->is_ws)
            arb__conn_detach(conn->server, conn);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return arb__server_wake(wsi);
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
        /* A WebSocket that named no subprotocol: speak arbiter.v1 anyway. */
        return arb__ws_callback(wsi, reason, user, in, len);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
