/*
 * client.c - URL parsing and the blocking WebSocket client (see client.h).
 *
 * Each client owns one libwebsockets context with one connection in it. The
 * blocking calls drive that context themselves: they run lws_service() in a
 * loop until what they wait for has happened or their deadline passes. lws
 * sleeps in poll() until a socket event or its next scheduled timer, so every
 * wait schedules a timer (the client's `wake`) at its deadline; nothing else
 * would bound the sleep.
 *
 * The connection's life:
 *
 *   CONNECTING --ESTABLISHED--> OPEN --peer close, error, reset--> CLOSED
 *       |                        |
 *       +--CONNECTION_ERROR--> FAILED   (arb_ws_connect returns the error)
 *                                +--arb_ws_close--> CLOSING --CLIENT_CLOSED--> CLOSED
 *
 * The receive queue is bounded twice. By construction: a wait services the
 * context only until one message is whole, and one service pass reads at
 * most pt_serv_buf_size bytes, so the queue holds about one message more
 * than the caller has taken. And as a safety net: past
 * ARB_WS_CLIENT_QUEUE_BYTES_MAX queued, reading pauses (lws_rx_flow_control)
 * until the caller has taken half of it.
 *
 * Invariants: wsi is NULL exactly when the state is FAILED or CLOSED (lws
 * tells us through CLIENT_CONNECTION_ERROR, CLIENT_CLOSED or WSI_DESTROY,
 * after which the pointer is dangling); in_bytes is the sum of the queued
 * messages' lengths; reading is paused only while in_bytes is at least
 * ARB_WS_CLIENT_QUEUE_BYTES_MAX; a message in `partial` is at most
 * ARB_WIRE_FRAME_BYTES_MAX (the arb_buf's max enforces it).
 */
#include <libwebsockets.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arbiter/error.h"
#include "arbiter/wire.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/client.h"

/* URLs. */

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool is_ipv6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

/* The scheme before "://", lower-cased into out->scheme; returns the length
 * consumed (scheme and "://") or 0. */
static size_t parse_scheme(const char *url, arb_url *out)
{
    static const char *const schemes[] = {"ws", "http"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncasecmp(url, schemes[i], n) == 0 && strncmp(url + n, "://", 3) == 0) {
            memcpy(out->scheme, schemes[i], n + 1);
            return n + 3;
        }
    }
    return 0;
}

/* The authority text[0..len): HOST, [IPV6] and an optional :PORT. */
static int parse_authority(const char *text, size_t len, arb_url *out)
{
    size_t host_start = 0, host_end = 0, i = 0;
    if (len > 0 && text[0] == '[') {
        while (i + 1 < len && text[i + 1] != ']')
            if (!is_ipv6_char(text[++i]))
                return ARB_EINVALID_ARGUMENT;
        if (i + 1 >= len)
            return ARB_EINVALID_ARGUMENT; /* no closing bracket */
        host_start = 1;
        host_end = i + 1;
        i += 2;
    } else {
        while (i < len && text[i] != ':')
            if (!is_host_char(text[i++]))
                return ARB_EINVALID_ARGUMENT;
        host_end = i;
    }
    size_t host_len = host_end - host_start;
    if (host_len == 0 || host_len > ARB_URL_HOST_BYTES_MAX)
        return ARB_EINVALID_ARGUMENT;
    memcpy(out->host, text + host_start, host_len);
    out->host[host_len] = '\0';
    out->port = 80;
    if (i == len)
        return 0;
    if (text[i] != ':' || i + 1 == len || len - (i + 1) > 5)
        return ARB_EINVALID_ARGUMENT;
    int port = 0;
    for (i++; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return ARB_EINVALID_ARGUMENT;
        port = port * 10 + (text[i] - '0');
    }
    if (port < 1 || port > 65535)
        return ARB_EINVALID_ARGUMENT;
    out->port = port;
    return 0;
}

int arb_url_parse(const char *url, arb_url *out)
{
    ARB_ASSERT(out != NULL);
    memset(out, 0, sizeof *out);
    if (url == NULL)
        return ARB_EINVALID_ARGUMENT;
    size_t len = strnlen(url, ARB_URL_BYTES_MAX + 1);
    if (len > ARB_URL_BYTES_MAX)
        return ARB_EINVALID_ARGUMENT;
    for (size_t i = 0; i < len; i++) { /* printable ASCII; a fragment is never sent */
        unsigned char c = (unsigned char)url[i];
        if (c <= ' ' || c >= 0x7f || c == '#')
            return ARB_EINVALID_ARGUMENT;
    }
    size_t at = parse_scheme(url, out);
    int rc = at == 0 ? ARB_EINVALID_ARGUMENT : 0;
    size_t authority_len = 0;
    if (rc == 0) {
        authority_len = strcspn(url + at, "/?");
        if (memchr(url + at, '@', authority_len) != NULL)
            rc = ARB_EINVALID_ARGUMENT;
    }
    if (rc == 0)
        rc = parse_authority(url + at, authority_len, out);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    const char *target = url + at + authority_len;
    size_t target_len = len - at - authority_len;
    /* "http://h?q" has an empty path: the request target is "/?q". */
    size_t prefix = target[0] == '/' ? 0 : 1;
    ARB_ASSERT(prefix + target_len <= ARB_URL_BYTES_MAX);
    out->target[0] = '/';
    memcpy(out->target + prefix, target, target_len);
    out->target[prefix + target_len] = '\0';
    ARB_ASSERT(out->port >= 1 && out->port <= 65535);
    return 0;
}

/* The WebSocket client. */

typedef enum ws_state {
    WS_CONNECTING,
    WS_OPEN,
    WS_CLOSING,
    WS_CLOSED,
    WS_FAILED,
} ws_state;

/* A received message (text owned, NUL-terminated) or a frame to send
 * (bytes[LWS_PRE .. LWS_PRE + len), lws writes its header before them). */
typedef struct ws_item {
    struct ws_item *next;
    char *text;
    size_t len;
    bool binary;
    unsigned char bytes[];
} ws_item;

typedef struct ws_queue {
    ws_item *head;
    ws_item *tail;
    size_t count;
} ws_queue;

struct arb_ws_client {
    struct lws_context *context;
    struct lws *wsi;
    lws_sorted_usec_list_t wake; /* a timer at the current wait's deadline */
    ws_state state;
    ws_state wait_state; /* arb_ws_service: the state when its wait began */
    int error;           /* sticky: why reading stopped (ARB_ETOO_LARGE, ARB_ENOMEM) */
    int send_wait_ms;    /* how long arb_ws_send waits: the connect timeout */
    bool close_requested;
    bool rx_paused;
    arb_buf partial; /* the message being reassembled from its fragments */
    ws_queue in;
    size_t in_bytes;
    ws_queue out;
    int close_code;
    char close_reason[124];
    char connect_error[128];
    arb_url url;
    char host_header[ARB_URL_HOST_BYTES_MAX + 16];
};

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void set_log_level(void)
{
    const char *level = getenv("ARB_LOG_LEVEL");
    bool debug = level != NULL && strcmp(level, "debug") == 0;
    lws_set_log_level(debug ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO : 0, NULL);
}

void arb_ws_client_init(void)
{
    ARB_ASSERT(pthread_once(&log_once, set_log_level) == 0);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void queue_push(ws_queue *q, ws_item *item)
{
    item->next = NULL;
    if (q->tail != NULL)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    q->count++;
}

static ws_item *queue_pop(ws_queue *q)
{
    ws_item *item = q->head;
    if (item == NULL)
        return NULL;
    q->head = item->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->count--;
    ARB_ASSERT((q->count == 0) == (q->head == NULL));
    return item;
}

static void queue_free(ws_queue *q)
{
    ws_item *item;
    while ((item = queue_pop(q)) != NULL) {
        free(item->text);
        free(item);
    }
}

/* The peer's close frame: a 2-byte code in network order, then a reason. */
static void on_peer_close(arb_ws_client *c, const unsigned char *in, size_t len)
{
    if (len < 2) {
        c->close_code = LWS_CLOSE_STATUS_NO_STATUS;
        return;
    }
    c->close_code = (in[0] << 8) | in[1];
    size_t n = len - 2;
    if (n > sizeof c->close_reason - 1)
        n = sizeof c->close_reason - 1;
    memcpy(c->close_reason, in + 2, n);
    c->close_reason[n] = '\0';
}

/* Stop reading: the reason is sticky, and lws closes after we return -1. */
static int stop_reading(arb_ws_client *c, struct lws *wsi, int error)
{
    c->error = error;
    enum lws_close_status status = error == ARB_ETOO_LARGE ? LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE
                                                           : LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
    lws_close_reason(wsi, status, NULL, 0);
    return -1;
}

/* A piece of a message arrived; queue the message once it is whole. */
static int on_receive(arb_ws_client *c, struct lws *wsi, const void *in, size_t len)
{
    int rc = arb_buf_append(&c->partial, in, len);
    if (rc != 0)
        return stop_reading(c, wsi, rc);
    if (!lws_is_final_fragment(wsi))
        return 0;
    ws_item *item = malloc(sizeof *item);
    if (item == NULL)
        return stop_reading(c, wsi, ARB_ENOMEM);
    item->len = c->partial.len;
    item->binary = lws_frame_is_binary(wsi) != 0;
    if (c->partial.data == NULL) { /* an empty message: the buffer never grew */
        item->text = calloc(1, 1);
        if (item->text == NULL) {
            free(item);
            return stop_reading(c, wsi, ARB_ENOMEM);
        }
    } else { /* take the buffer itself: no copy of a large message */
        item->text = c->partial.data;
        c->partial.data = NULL;
        c->partial.cap = 0;
    }
    arb_buf_reset(&c->partial);
    ARB_ASSERT(item->text[item->len] == '\0');
    queue_push(&c->in, item);
    c->in_bytes += item->len;
    if (c->in_bytes >= ARB_WS_CLIENT_QUEUE_BYTES_MAX && !c->rx_paused) {
        c->rx_paused = true;
        lws_rx_flow_control(wsi, 0);
    }
    return 0;
}

/* The socket can take a frame: write one queued frame, or the close. */
static int on_writeable(arb_ws_client *c, struct lws *wsi)
{
    ws_item *item = queue_pop(&c->out);
    if (item == NULL) {
        if (c->close_requested) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        return 0;
    }
    enum lws_write_protocol kind = item->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
    int written = lws_write(wsi, item->bytes + LWS_PRE, item->len, kind);
    free(item);
    if (written < 0)
        return -1;
    if (c->out.count > 0 || c->close_requested)
        lws_callback_on_writable(wsi);
    return 0;
}

static void on_gone(arb_ws_client *c)
{
    c->wsi = NULL;
    if (c->state == WS_CONNECTING) {
        c->state = WS_FAILED;
        return;
    }
    if (c->close_code == 0)
        c->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
    c->state = WS_CLOSED;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    arb_ws_client *c = lws_context_user(lws_get_context(wsi));
    if (c == NULL)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ARB_ASSERT(c->state == WS_CONNECTING);
        c->state = WS_OPEN;
        c->wsi = wsi;
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(c->connect_error, sizeof c->connect_error, "%.*s", in != NULL ? (int)len : 0,
                 in != NULL ? (const char *)in : "");
        on_gone(c);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(c, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        on_peer_close(c, in, len);
        return 0; /* lws echoes the close, then closes */
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c->wsi == wsi || c->state == WS_CONNECTING)
            on_gone(c);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {.name = ARB_WIRE_SUBPROTOCOL, .callback = callback, .rx_buffer_size = 64 * 1024},
    {0},
};

/* The deadline timer. lws runs a timer that is due when it looks, before it
 * polls, and then bounds the poll only by the timers still pending: with none,
 * poll() would sleep until some internal timer of lws, seconds away. So the
 * timer re-arms itself a millisecond ahead each time it runs, and stays
 * pending until service_until cancels it. */
static void on_wake(lws_sorted_usec_list_t *sul)
{
    arb_ws_client *c = (arb_ws_client *)((char *)sul - offsetof(arb_ws_client, wake));
    ARB_ASSERT(&c->wake == sul);
    lws_sul_schedule(c->context, 0, &c->wake, on_wake, LWS_US_PER_MS);
}

typedef bool (*ws_done_fn)(const arb_ws_client *c);

/* Run the context until done(c) or until deadline_ms (monotonic; negative:
 * never). Returns 0 when done, else ARB_ETIMEOUT. Services at least once, so
 * a zero timeout still picks up what has arrived. */
static int service_until(arb_ws_client *c, ws_done_fn done, int64_t deadline_ms)
{
    int rc = ARB_ETIMEOUT;
    for (bool first = true;; first = false) {
        if (done(c)) {
            rc = 0;
            break;
        }
        int64_t left_ms = deadline_ms < 0 ? 1000 : deadline_ms - now_ms();
        if (left_ms < 0 && !first)
            break;
        if (left_ms < 0)
            left_ms = 0;
        lws_sul_schedule(c->context, 0, &c->wake, on_wake, (lws_usec_t)left_ms * 1000);
        if (lws_service(c->context, 0) < 0) {
            /* The context is unusable: treat the connection as gone. lws frees
             * the wsi when the context is destroyed. */
            c->wsi = NULL;
            c->state = c->state == WS_CONNECTING ? WS_FAILED : WS_CLOSED;
            if (c->close_code == 0)
                c->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
            rc = done(c) ? 0 : ARB_ECLOSED;
            break;
        }
    }
    lws_sul_cancel(&c->wake);
    return rc;
}

static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static void client_free(arb_ws_client *c)
{
    if (c == NULL)
        return;
    if (c->context != NULL)
        lws_context_destroy(c->context); /* may call back into c: before the frees */
    queue_free(&c->in);
    queue_free(&c->out);
    arb_buf_free(&c->partial);
    free(c);
}

static int create_context(arb_ws_client *c)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = c;
    info.fd_limit_per_thread = 8;      /* one socket and lws's own pipe: keep the tables tiny */
    info.pt_serv_buf_size = 64 * 1024; /* one read of the socket: a large message in fewer passes */
    info.options = LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    c->context = lws_create_context(&info);
    return c->context != NULL ? 0 : ARB_ENOMEM;
}

static bool connect_done(const arb_ws_client *c)
{
    return c->state != WS_CONNECTING;
}

static int start_connect(arb_ws_client *c)
{
    bool ipv6 = strchr(c->url.host, ':') != NULL;
    snprintf(c->host_header, sizeof c->host_header, "%s%s%s:%d", ipv6 ? "[" : "", c->url.host,
             ipv6 ? "]" : "", c->url.port);
    struct lws_client_connect_info info;
    memset(&info, 0, sizeof info);
    info.context = c->context;
    info.address = c->url.host;
    info.port = c->url.port;
    info.path = c->url.target;
    info.host = c->host_header;
    info.protocol = ARB_WIRE_SUBPROTOCOL;
    info.pwsi = &c->wsi;
    if (lws_client_connect_via_info(&info) == NULL && c->state == WS_CONNECTING)
        c->state = WS_FAILED;
    return c->state == WS_FAILED ? ARB_EIO : 0;
}

/* A client in CONNECTING with its handshake under way, or an error. */
static int connect_begin(const char *url, int send_wait_ms, arb_ws_client **out)
{
    ARB_ASSERT(out != NULL);
    *out = NULL;
    arb_ws_client_init();
    arb_ws_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ARB_ENOMEM;
    arb_buf_init(&c->partial, ARB_WIRE_FRAME_BYTES_MAX);
    c->state = WS_CONNECTING;
    c->send_wait_ms = send_wait_ms;
    int rc = arb_url_parse(url, &c->url);
    if (rc == 0 && strcmp(c->url.scheme, "ws") != 0)
        rc = ARB_EINVALID_ARGUMENT;
    if (rc == 0)
        rc = create_context(c);
    if (rc == 0)
        rc = start_connect(c);
    if (rc != 0) {
        arb_log(ARB_LOG_DEBUG, "websocket connect failed", "url=\"%s\" code=%s why=\"%s\"",
                url != NULL ? url : "", arb_err_name(rc), c->connect_error);
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int arb_ws_connect(const char *url, int timeout_ms, arb_ws_client **out)
{
    int64_t deadline = deadline_after(timeout_ms);
    arb_ws_client *c;
    int rc = connect_begin(url, timeout_ms, &c);
    if (rc != 0)
        return rc;
    rc = service_until(c, connect_done, deadline);
    if (rc == 0 && c->state != WS_OPEN)
        rc = ARB_EIO;
    if (rc != 0) {
        arb_log(ARB_LOG_DEBUG, "websocket connect failed", "url=\"%s\" code=%s why=\"%s\"", url,
                arb_err_name(rc), c->connect_error);
        client_free(c);
        return rc;
    }
    ARB_ASSERT(c->wsi != NULL);
    *out = c;
    return 0;
}

int arb_ws_connect_start(const char *url, int send_wait_ms, arb_ws_client **out)
{
    return connect_begin(url, send_wait_ms, out);
}

arb_ws_status arb_ws_status_of(const arb_ws_client *c)
{
    ARB_ASSERT(c != NULL);
    switch (c->state) {
    case WS_CONNECTING:
        return ARB_WS_CONNECTING;
    case WS_OPEN:
        return ARB_WS_OPEN;
    default:
        return ARB_WS_ENDED;
    }
}

/* service_until's condition for arb_ws_service: the state moved off the one
 * it had when the wait began, or a message waits. */
static bool changed_or_received(const arb_ws_client *c)
{
    return c->in.count > 0 || c->state != c->wait_state;
}

void arb_ws_service(arb_ws_client *c, int timeout_ms)
{
    ARB_ASSERT(c != NULL);
    if (c->wsi == NULL && c->state != WS_CONNECTING)
        return;
    c->wait_state = c->state;
    (void)service_until(c, changed_or_received, deadline_after(timeout_ms));
}

static bool send_done(const arb_ws_client *c)
{
    return c->out.count == 0 || c->wsi == NULL;
}

static int send_frame(arb_ws_client *c, const void *bytes, size_t len, bool binary)
{
    ARB_ASSERT(c != NULL && (bytes != NULL || len == 0));
    if (len > ARB_WS_CLIENT_SEND_BYTES_MAX)
        return ARB_ETOO_LARGE;
    if (c->state != WS_OPEN || c->wsi == NULL)
        return ARB_ECLOSED;
    ws_item *item = malloc(sizeof *item + LWS_PRE + len);
    if (item == NULL)
        return ARB_ENOMEM;
    item->text = NULL;
    item->len = len;
    item->binary = binary;
    if (len > 0)
        memcpy(item->bytes + LWS_PRE, bytes, len);
    queue_push(&c->out, item);
    lws_callback_on_writable(c->wsi);
    int rc = service_until(c, send_done, deadline_after(c->send_wait_ms));
    if (rc == 0 && c->out.count > 0)
        rc = ARB_ECLOSED; /* the connection ended with the frame unwritten */
    return rc;
}

int arb_ws_send(arb_ws_client *c, const char *text, size_t len)
{
    return send_frame(c, text, len, false);
}

int arb_ws_send_binary(arb_ws_client *c, const void *bytes, size_t len)
{
    return send_frame(c, bytes, len, true);
}

static bool recv_done(const arb_ws_client *c)
{
    return c->in.count > 0 || c->wsi == NULL;
}

int arb_ws_recv(arb_ws_client *c, int timeout_ms, char **text_out, size_t *len_out)
{
    ARB_ASSERT(c != NULL && text_out != NULL && len_out != NULL);
    *text_out = NULL;
    *len_out = 0;
    if (c->in.count == 0 && c->wsi != NULL) {
        int rc = service_until(c, recv_done, deadline_after(timeout_ms));
        if (rc == ARB_ETIMEOUT)
            return rc;
    }
    ws_item *item = queue_pop(&c->in);
    if (item == NULL) {
        ARB_ASSERT(c->wsi == NULL);
        return c->error != 0 ? c->error : ARB_ECLOSED;
    }
    ARB_ASSERT(c->in_bytes >= item->len);
    c->in_bytes -= item->len;
    *text_out = item->text;
    *len_out = item->len;
    free(item);
    if (c->rx_paused && c->in_bytes < ARB_WS_CLIENT_QUEUE_BYTES_MAX / 2 && c->wsi != NULL) {
        c->rx_paused = false;
        lws_rx_flow_control(c->wsi, 1);
    }
    return 0;
}

int arb_ws_close_status(const arb_ws_client *c, char *reason, size_t reason_size)
{
    ARB_ASSERT(c != NULL);
    if (reason != NULL && reason_size > 0)
        snprintf(reason, reason_size, "%s", c->close_reason);
    return c->wsi == NULL ? c->close_code : 0;
}

static bool close_done(const arb_ws_client *c)
{
    return c->wsi == NULL;
}

void arb_ws_close(arb_ws_client *c)
{
    if (c == NULL)
        return;
    if (c->wsi != NULL && c->state == WS_OPEN) {
        c->state = WS_CLOSING;
        c->close_requested = true;
        lws_callback_on_writable(c->wsi);
        (void)service_until(c, close_done, deadline_after(ARB_WS_CLIENT_CLOSE_WAIT_MS));
    }
    client_free(c);
}
