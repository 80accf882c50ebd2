/*
 * client_test.c - the blocking clients of src/net/client.h, and the CLI's
 * remote mode, against servers started in this process on free loopback
 * ports:
 *
 *   - an lws WebSocket server (a thread running lws_service) that echoes
 *     every message, obeys a few text commands ("close CODE REASON", "frag",
 *     "big N", "burst N SIZE", "drop"), answers a binary frame with its
 *     length, and plays a small arbiterd for JSON messages (hello, propose,
 *     subscribe) so that `arbiter propose` and `arbiter tail` can be run;
 *   - a raw-socket HTTP responder that takes one connection, records the
 *     request bytes, and answers with canned bytes (in small pieces, or not
 *     at all) - for the HTTP client and `arbiter state`.
 *
 * Plus URL parsing: a table of good URLs, field by field, and bad ones.
 */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/client.h"

#define IO_TIMEOUT_MS 5000
#define SERVER_MESSAGE_BYTES_MAX (8 * 1024 * 1024)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * The WebSocket server.
 */

typedef struct out_frame {
    struct out_frame *next;
    int flags;      /* lws_write_protocol */
    int close_code; /* nonzero: close with this code, bytes the reason */
    size_t len;
    unsigned char bytes[];
} out_frame;

typedef struct session {
    out_frame *head;
    out_frame *tail;
    unsigned char *partial;
    size_t partial_len;
} session;

/* What the arbiterd stand-in last received (guarded by lock). */
typedef struct recorded {
    pthread_mutex_t lock;
    char hello[512];
    char propose[4096];
    char subscribe[512];
} recorded;

static struct {
    struct lws_context *context;
    int port;
    pthread_t thread;
    atomic_bool stop;
    recorded seen;
} server = {.seen = {.lock = PTHREAD_MUTEX_INITIALIZER}};

static void record(char *slot, size_t size, const void *text, size_t len)
{
    pthread_mutex_lock(&server.seen.lock);
    snprintf(slot, size, "%.*s", (int)len, (const char *)text);
    pthread_mutex_unlock(&server.seen.lock);
}

static void read_record(const char *slot, char *out, size_t size)
{
    pthread_mutex_lock(&server.seen.lock);
    snprintf(out, size, "%s", slot);
    pthread_mutex_unlock(&server.seen.lock);
}

static void push(session *s, struct lws *wsi, int flags, const void *bytes, size_t len)
{
    out_frame *f = malloc(sizeof *f + LWS_PRE + len);
    if (f == NULL)
        abort();
    f->next = NULL;
    f->flags = flags;
    f->close_code = 0;
    f->len = len;
    if (len > 0)
        memcpy(f->bytes + LWS_PRE, bytes, len);
    if (s->tail != NULL)
        s->tail->next = f;
    else
        s->head = f;
    s->tail = f;
    lws_callback_on_writable(wsi);
}

static void push_text(session *s, struct lws *wsi, const char *text)
{
    push(s, wsi, LWS_WRITE_TEXT, text, strlen(text));
}

static void push_close(session *s, struct lws *wsi, int code, const char *reason)
{
    push(s, wsi, 0, reason, strlen(reason));
    s->tail->close_code = code;
}

/* The arbiterd stand-in: hello, propose (action "fail": rejected, "refuse":
 * an error, else committed, each after an unrelated pong), subscribe (a
 * snapshot and a patch, then a close with 1001 unless the stream is
 * "keep:open"). */
static void serve_json(session *s, struct lws *wsi, const char *text, size_t len)
{
    json_t *m = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *stream = json_string_value(json_object_get(m, "stream"));
    char reply[1024];
    if (type != NULL && strcmp(type, "hello") == 0) {
        record(server.seen.hello, sizeof server.seen.hello, text, len);
        push_text(s, wsi, "{\"type\":\"welcome\",\"proto\":1,\"server_time\":1,\"limits\":{}}");
    } else if (type != NULL && strcmp(type, "propose") == 0) {
        record(server.seen.propose, sizeof server.seen.propose, text, len);
        long long seq = json_integer_value(json_object_get(m, "client_seq"));
        const char *action = json_string_value(json_object_get(m, "action"));
        push_text(s, wsi, "{\"type\":\"pong\"}");
        if (strcmp(action, "refuse") == 0)
            snprintf(reply, sizeof reply,
                     "{\"type\":\"error\",\"code\":\"INVALID_ARGUMENT\",\"field\":\"args\","
                     "\"message\":\"no\"}");
        else if (strcmp(action, "fail") == 0)
            snprintf(reply, sizeof reply,
                     "{\"type\":\"rejected\",\"client_seq\":%lld,\"stream\":\"%s\",\"code\":"
                     "\"INSUFFICIENT_FUNDS\",\"message\":\"short\",\"details\":null,"
                     "\"version\":3,\"replay\":false}",
                     seq, stream);
        else
            snprintf(reply, sizeof reply,
                     "{\"type\":\"committed\",\"client_seq\":%lld,\"stream\":\"%s\",\"seq\":4,"
                     "\"seq_last\":4,\"events\":[],\"result\":null,\"replay\":false}",
                     seq, stream);
        push_text(s, wsi, reply);
    } else if (type != NULL && strcmp(type, "subscribe") == 0) {
        record(server.seen.subscribe, sizeof server.seen.subscribe, text, len);
        snprintf(reply, sizeof reply,
                 "{\"type\":\"snapshot\",\"stream\":\"%s\",\"seq\":1,\"state\":{\"n\":1}}", stream);
        push_text(s, wsi, reply);
        push_text(s, wsi, "{\"type\":\"pong\"}");
        snprintf(reply, sizeof reply,
                 "{\"type\":\"patch\",\"stream\":\"%s\",\"seq\":2,\"events\":[]}", stream);
        push_text(s, wsi, reply);
        if (strcmp(stream, "keep:open") != 0)
            push_close(s, wsi, 1001, "bye");
    }
    json_decref(m);
}

/* One whole message from a client. Returns -1 to drop the connection. */
static int serve_message(session *s, struct lws *wsi, bool binary)
{
    char *text = (char *)s->partial;
    size_t len = s->partial_len;
    int a = 0, b = 0;
    char reason[128];
    if (binary) {
        char reply[64];
        snprintf(reply, sizeof reply, "binary %zu", len);
        push_text(s, wsi, reply);
    } else if (len > 0 && text[0] == '{') {
        serve_json(s, wsi, text, len);
    } else if (sscanf(text, "close %d %127[^\n]", &a, reason) == 2) {
        push_close(s, wsi, a, reason);
    } else if (strcmp(text, "frag") == 0) {
        push(s, wsi, lws_write_ws_flags(LWS_WRITE_TEXT, 1, 0), "A", 1);
        push(s, wsi, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 0), "BB", 2);
        push(s, wsi, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 1), "CCC", 3);
    } else if (sscanf(text, "big %d", &a) == 1) {
        char *big = malloc((size_t)a);
        if (big == NULL)
            abort();
        memset(big, 'x', (size_t)a);
        push(s, wsi, LWS_WRITE_TEXT, big, (size_t)a);
        free(big);
    } else if (sscanf(text, "burst %d %d", &a, &b) == 2) {
        char *m = malloc((size_t)b + 16);
        if (m == NULL)
            abort();
        for (int i = 0; i < a; i++) {
            memset(m, 'y', (size_t)b);
            char index[16];
            snprintf(index, sizeof index, "%08d", i % 100000000);
            memcpy(m, index, 8);
            push(s, wsi, LWS_WRITE_TEXT, m, (size_t)b);
        }
        free(m);
    } else if (strcmp(text, "drop") == 0) {
        return -1;
    } else {
        push(s, wsi, LWS_WRITE_TEXT, text, len);
    }
    return 0;
}

static int server_receive(session *s, struct lws *wsi, const void *in, size_t len)
{
    if (s->partial_len + len > SERVER_MESSAGE_BYTES_MAX)
        return -1;
    unsigned char *grown = realloc(s->partial, s->partial_len + len + 1);
    if (grown == NULL)
        return -1;
    s->partial = grown;
    memcpy(s->partial + s->partial_len, in, len);
    s->partial_len += len;
    s->partial[s->partial_len] = '\0';
    if (!lws_is_final_fragment(wsi))
        return 0;
    int rc = serve_message(s, wsi, lws_frame_is_binary(wsi) != 0);
    s->partial_len = 0;
    return rc;
}

static int server_writeable(session *s, struct lws *wsi)
{
    out_frame *f = s->head;
    if (f == NULL)
        return 0;
    s->head = f->next;
    if (s->head == NULL)
        s->tail = NULL;
    if (f->close_code != 0) {
        lws_close_reason(wsi, (enum lws_close_status)f->close_code, f->bytes + LWS_PRE, f->len);
        free(f);
        return -1;
    }
    int n = lws_write(wsi, f->bytes + LWS_PRE, f->len, (enum lws_write_protocol)f->flags);
    free(f);
    if (n < 0)
        return -1;
    if (s->head != NULL)
        lws_callback_on_writable(wsi);
    return 0;
}

static void session_free(session *s)
{
    while (s->head != NULL) {
        out_frame *f = s->head;
        s->head = f->next;
        free(f);
    }
    s->tail = NULL;
    free(s->partial);
    s->partial = NULL;
}

static int server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    session *s = user;
    switch (reason) {
    case LWS_CALLBACK_RECEIVE:
        return server_receive(s, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return server_writeable(s, wsi);
    case LWS_CALLBACK_CLOSED:
        session_free(s);
        return 0;
    default:
        return 0;
    }
}

/* protocols[0] gets connections that ask for no subprotocol: refuse them,
 * so that a client that does not ask for arbiter.v1 fails its tests. */
static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return 1;
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols server_protocols[] = {
    {.name = "http", .callback = http_callback},
    {.name = "arbiter.v1",
     .callback = server_callback,
     .per_session_data_size = sizeof(session),
     .rx_buffer_size = 64 * 1024},
    {0},
};

static void *server_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&server.stop))
        lws_service(server.context, 0);
    return NULL;
}

static int start_server(void **state)
{
    (void)state;
    arb_ws_client_init(); /* lws's log level, before any lws thread runs */
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = server_protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.fd_limit_per_thread = 256;
    server.context = lws_create_context(&info);
    if (server.context == NULL)
        return -1;
    server.port = lws_get_vhost_listen_port(lws_get_vhost_by_name(server.context, "default"));
    atomic_store(&server.stop, false);
    return pthread_create(&server.thread, NULL, server_main, NULL) == 0 && server.port > 0 ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    atomic_store(&server.stop, true);
    lws_cancel_service(server.context);
    pthread_join(server.thread, NULL);
    lws_context_destroy(server.context);
    server.context = NULL;
    return 0;
}

static char ws_url[64];

static arb_ws_client *connect_client(void)
{
    snprintf(ws_url, sizeof ws_url, "ws://127.0.0.1:%d/any/path", server.port);
    arb_ws_client *c = NULL;
    assert_int_equal(arb_ws_connect(ws_url, IO_TIMEOUT_MS, &c), 0);
    assert_non_null(c);
    return c;
}

static void send_text(arb_ws_client *c, const char *text)
{
    assert_int_equal(arb_ws_send(c, text, strlen(text)), 0);
}

/* Receive one message and compare it with expected. */
static void expect_message(arb_ws_client *c, const char *expected)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), 0);
    assert_int_equal(len, strlen(expected));
    assert_string_equal(text, expected);
    free(text);
}

/* ------------------------------------------------------------------------
 * WebSocket client tests.
 */

static void test_ws_echo(void **state)
{
    (void)state;
    arb_ws_client *c = connect_client();
    char reason[8] = "x";
    assert_int_equal(arb_ws_close_status(c, reason, sizeof reason), 0);
    send_text(c, "hello");
    expect_message(c, "hello");
    /* Pipelined: both go out before either answer is read. */
    send_text(c, "one");
    send_text(c, "two");
    expect_message(c, "one");
    expect_message(c, "two");
    /* The largest message the client accepts, both ways. */
    size_t big_len = ARB_WIRE_FRAME_BYTES_MAX;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    big[big_len] = '\0';
    assert_int_equal(arb_ws_send(c, big, big_len), 0);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), 0);
    assert_int_equal(len, big_len);
    assert_memory_equal(text, big, big_len);
    assert_int_equal(text[len], '\0');
    free(text);
    free(big);
    assert_int_equal(arb_ws_send(c, "x", ARB_WS_CLIENT_SEND_BYTES_MAX + 1), ARB_ETOO_LARGE);
    arb_ws_close(c);
    arb_ws_close(NULL);
}

/* A message in three fragments is one message; messages over the frame
 * bound are refused after the ones before them are delivered. */
static void test_ws_fragments_and_bounds(void **state)
{
    (void)state;
    arb_ws_client *c = connect_client();
    send_text(c, "frag");
    expect_message(c, "ABBCCC");
    char command[64];
    snprintf(command, sizeof command, "big %d", ARB_WIRE_FRAME_BYTES_MAX);
    send_text(c, command);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), 0);
    assert_int_equal(len, ARB_WIRE_FRAME_BYTES_MAX);
    assert_int_equal(text[0], 'x');
    assert_int_equal(text[len - 1], 'x');
    free(text);
    send_text(c, "before");
    snprintf(command, sizeof command, "big %d", ARB_WIRE_FRAME_BYTES_MAX + 1);
    send_text(c, command);
    expect_message(c, "before");
    assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), ARB_ETOO_LARGE);
    assert_null(text);
    assert_int_equal(arb_ws_recv(c, 0, &text, &len), ARB_ETOO_LARGE); /* sticky */
    assert_int_equal(arb_ws_send(c, "x", 1), ARB_ECLOSED);
    arb_ws_close(c);
}

static void test_ws_timeout(void **state)
{
    (void)state;
    arb_ws_client *c = connect_client();
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(arb_ws_recv(c, 0, &text, &len), ARB_ETIMEOUT);
    int64_t start = mono_ms();
    assert_int_equal(arb_ws_recv(c, 100, &text, &len), ARB_ETIMEOUT);
    assert_true(mono_ms() - start >= 99); /* it waited, not returned at once */
    assert_null(text);
    /* Still usable after a timeout. */
    send_text(c, "after");
    expect_message(c, "after");
    arb_ws_close(c);
}

/* The peer's close: queued messages first, then ARB_ECLOSED with its code. */
static void test_ws_peer_close(void **state)
{
    (void)state;
    arb_ws_client *c = connect_client();
    send_text(c, "last words");
    send_text(c, "close 1001 going away");
    expect_message(c, "last words");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), ARB_ECLOSED);
    char reason[64];
    assert_int_equal(arb_ws_close_status(c, reason, sizeof reason), 1001);
    assert_string_equal(reason, "going away");
    char small[4];
    assert_int_equal(arb_ws_close_status(c, small, sizeof small), 1001);
    assert_string_equal(small, "goi");
    assert_int_equal(arb_ws_close_status(c, NULL, 0), 1001);
    assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), ARB_ECLOSED);
    assert_int_equal(arb_ws_send(c, "x", 1), ARB_ECLOSED);
    arb_ws_close(c);

    /* A server that hangs up without a close frame. */
    c = connect_client();
    send_text(c, "drop");
    assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), ARB_ECLOSED);
    assert_int_equal(arb_ws_close_status(c, reason, sizeof reason), 1006); /* no close frame came */
    assert_string_equal(reason, "");
    arb_ws_close(c);
}

static void test_ws_binary(void **state)
{
    (void)state;
    arb_ws_client *c = connect_client();
    const unsigned char bytes[] = {0, 1, 2, 0xff};
    assert_int_equal(arb_ws_send_binary(c, bytes, sizeof bytes), 0);
    expect_message(c, "binary 4");
    assert_int_equal(arb_ws_send(c, "", 0), 0); /* an empty text message */
    expect_message(c, "");
    arb_ws_close(c);
}

/* Many messages in one burst arrive whole and in order. */
static void test_ws_burst(void **state)
{
    (void)state;
    arb_ws_client *c = connect_client();
    const int counts[][2] = {{2000, 10}, {40, 300 * 1024}};
    for (size_t k = 0; k < 2; k++) {
        char command[64];
        snprintf(command, sizeof command, "burst %d %d", counts[k][0], counts[k][1]);
        send_text(c, command);
        for (int i = 0; i < counts[k][0]; i++) {
            char *text = NULL;
            size_t len = 0;
            assert_int_equal(arb_ws_recv(c, IO_TIMEOUT_MS, &text, &len), 0);
            assert_int_equal(len, (size_t)counts[k][1]);
            char index[16];
            snprintf(index, sizeof index, "%08d", i % 100000000);
            assert_memory_equal(text, index, 8);
            assert_int_equal(text[len - 1], 'y');
            free(text);
        }
    }
    arb_ws_close(c);
}

/* Several clients used alternately from one thread. */
static void test_ws_alternate(void **state)
{
    (void)state;
    arb_ws_client *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_client();
    for (int round = 0; round < 20; round++) {
        char text[32];
        for (int i = 0; i < 3; i++) {
            snprintf(text, sizeof text, "c%d r%d", i, round);
            send_text(c[i], text);
        }
        for (int i = 2; i >= 0; i--) {
            snprintf(text, sizeof text, "c%d r%d", i, round);
            expect_message(c[i], text);
        }
    }
    arb_ws_close(c[1]);
    send_text(c[0], "still here");
    expect_message(c[0], "still here");
    arb_ws_close(c[0]);
    arb_ws_close(c[2]);
}

typedef struct worker {
    pthread_t thread;
    int index;
    int failures; /* cmocka's asserts belong to the main thread */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", server.port);
    arb_ws_client *c = NULL;
    if (arb_ws_connect(url, IO_TIMEOUT_MS, &c) != 0) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < 100; i++) {
        char text[32];
        snprintf(text, sizeof text, "w%d m%d", w->index, i);
        char *echo = NULL;
        size_t len = 0;
        if (arb_ws_send(c, text, strlen(text)) != 0 ||
            arb_ws_recv(c, IO_TIMEOUT_MS, &echo, &len) != 0 || strcmp(echo, text) != 0)
            w->failures++;
        free(echo);
    }
    arb_ws_close(c);
    return NULL;
}

/* One client per thread, four threads at once. */
static void test_ws_threads(void **state)
{
    (void)state;
    worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker){.index = i};
        assert_int_equal(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(workers[i].thread, NULL);
        assert_int_equal(workers[i].failures, 0);
    }
}

/* ------------------------------------------------------------------------
 * The HTTP responder: one connection, canned answer.
 */

typedef enum responder_mode {
    ANSWER_AND_CLOSE,  /* write the answer, close */
    ANSWER_AND_LINGER, /* write the answer, wait for the client to close */
    HANG,              /* read, never answer, wait for the client to close */
} responder_mode;

typedef struct responder {
    int listen_fd;
    int port;
    pthread_t thread;
    responder_mode mode;
    const char *answer;
    size_t answer_len;
    size_t piece; /* write the answer this many bytes at a time; 0: at once */
    char request[65536];
    size_t request_len;
} responder;

static bool request_complete(const responder *r)
{
    const char *end = memmem(r->request, r->request_len, "\r\n\r\n", 4);
    if (end == NULL)
        return false;
    size_t head_len = (size_t)(end - r->request) + 4;
    const char *cl = strcasestr(r->request, "\r\nContent-Length:");
    size_t body_len = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    return r->request_len >= head_len + body_len;
}

static void wait_for_close(int fd)
{
    char sink[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 10000) > 0 && read(fd, sink, sizeof sink) > 0) {
    }
}

static void *responder_main(void *arg)
{
    responder *r = arg;
    int fd = accept(r->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* Read the request: up to a complete head and body, or a pause of
     * 200 ms (a malformed request may have neither). */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (!request_complete(r) && r->request_len < sizeof r->request - 1 && poll(&p, 1, 200) > 0) {
        ssize_t n = read(fd, r->request + r->request_len, sizeof r->request - 1 - r->request_len);
        if (n <= 0)
            break;
        r->request_len += (size_t)n;
    }
    r->request[r->request_len] = '\0';
    if (r->mode != HANG) {
        size_t piece = r->piece != 0 ? r->piece : r->answer_len;
        for (size_t at = 0; at < r->answer_len; at += piece) {
            size_t n = r->answer_len - at < piece ? r->answer_len - at : piece;
            if (send(fd, r->answer + at, n, MSG_NOSIGNAL) < 0)
                break;
            if (r->piece != 0)
                usleep(1000);
        }
    }
    if (r->mode != ANSWER_AND_CLOSE)
        wait_for_close(fd);
    close(fd);
    return NULL;
}

static int listen_loopback(int *port_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port_out = ntohs(a.sin_port);
    return fd;
}

/* A port nobody listens on (bound, then closed). */
static int closed_port(void)
{
    int port = 0;
    close(listen_loopback(&port));
    return port;
}

static responder *responder_start(responder_mode mode, const char *answer, size_t piece)
{
    responder *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->mode = mode;
    r->answer = answer;
    r->answer_len = answer != NULL ? strlen(answer) : 0;
    r->piece = piece;
    r->listen_fd = listen_loopback(&r->port);
    assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r), 0);
    return r;
}

/* Wait for the responder to finish; the caller frees it. */
static void responder_join(responder *r)
{
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
}

static char http_url[256];

static const char *url_of(const responder *r, const char *target)
{
    snprintf(http_url, sizeof http_url, "http://127.0.0.1:%d%s", r->port, target);
    return http_url;
}

/* One GET against a fresh responder with answer; returns the client's code. */
static int get_answer(const char *answer, responder_mode mode, int timeout_ms,
                      arb_http_response *out)
{
    responder *r = responder_start(mode, answer, 0);
    int rc = arb_http_request(url_of(r, "/"), "GET", NULL, NULL, 0, timeout_ms, out);
    responder_join(r);
    free(r);
    return rc;
}

/* ------------------------------------------------------------------------
 * HTTP client tests.
 */

static void test_http_content_length(void **state)
{
    (void)state;
    const char *answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "ETag:  \"7\" \r\nContent-Length: 11\r\n\r\n{\"a\":12345}";
    responder *r = responder_start(ANSWER_AND_LINGER, answer, 5);
    arb_http_response res;
    assert_int_equal(arb_http_request(url_of(r, "/v1/streams/ledger:main?x=1"), "GET",
                                      "X-Test: 1\r\nAccept: application/json\r\n", NULL, 0,
                                      IO_TIMEOUT_MS, &res),
                     0);
    responder_join(r);
    char expected[256];
    snprintf(expected, sizeof expected,
             "GET /v1/streams/ledger:main?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Connection: close\r\nX-Test: 1\r\nAccept: application/json\r\n\r\n",
             r->port);
    assert_string_equal(r->request, expected);
    free(r);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 11);
    assert_string_equal(res.body, "{\"a\":12345}");
    assert_int_equal(strncmp(res.headers, "HTTP/1.1 200 OK\r\n", 17), 0);
    char buf[64];
    assert_string_equal(arb_http_header(&res, "etag", buf, sizeof buf), "\"7\"");
    assert_string_equal(arb_http_header(&res, "CONTENT-TYPE", buf, sizeof buf), "application/json");
    assert_null(arb_http_header(&res, "Content", buf, sizeof buf)); /* a prefix is not a name */
    assert_null(arb_http_header(&res, "X-Missing", buf, sizeof buf));
    assert_null(arb_http_header(&res, "Content-Type", buf, 5)); /* does not fit */
    arb_http_response_clear(&res);
    assert_null(res.body);
    assert_int_equal(res.status, 0);
}

static void test_http_post_until_close(void **state)
{
    (void)state;
    const char *answer = "HTTP/1.0 201 Created\r\nServer: t\r\n\r\nthe rest\r\nuntil close";
    responder *r = responder_start(ANSWER_AND_CLOSE, answer, 7);
    arb_http_response res;
    assert_int_equal(
        arb_http_request(url_of(r, "/v1/sync"), "POST", NULL, "{\"x\":1}", 7, IO_TIMEOUT_MS, &res),
        0);
    responder_join(r);
    assert_non_null(strstr(r->request, "POST /v1/sync HTTP/1.1\r\n"));
    assert_non_null(strstr(r->request, "\r\nContent-Length: 7\r\n"));
    assert_string_equal(r->request + r->request_len - 9, "\r\n{\"x\":1}");
    free(r);
    assert_int_equal(res.status, 201);
    assert_string_equal(res.body, "the rest\r\nuntil close");
    arb_http_response_clear(&res);
    /* An empty body still sends Content-Length: 0. */
    r = responder_start(ANSWER_AND_CLOSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    assert_int_equal(arb_http_request(url_of(r, "/"), "PUT", NULL, "", 0, IO_TIMEOUT_MS, &res), 0);
    responder_join(r);
    assert_non_null(strstr(r->request, "\r\nContent-Length: 0\r\n\r\n"));
    free(r);
    assert_int_equal(res.body_len, 0);
    assert_string_equal(res.body, "");
    arb_http_response_clear(&res);
}

static void test_http_chunked(void **state)
{
    (void)state;
    const char *answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n"
                         "Content-Length: 3\r\n\r\n"
                         "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                         "1a \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: y\r\n\r\n";
    responder *r = responder_start(ANSWER_AND_LINGER, answer, 3);
    arb_http_response res;
    assert_int_equal(arb_http_request(url_of(r, "/"), "GET", NULL, NULL, 0, IO_TIMEOUT_MS, &res),
                     0);
    responder_join(r);
    free(r);
    assert_string_equal(res.body, "Wikipedia in\r\n\r\nchunks.abcdefghijklmnopqrstuvwxyz");
    assert_int_equal(res.body_len, 49);
    arb_http_response_clear(&res);
    /* No trailers, all at once. */
    assert_int_equal(get_answer("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                "3\r\nabc\r\n0\r\n\r\n",
                                ANSWER_AND_LINGER, IO_TIMEOUT_MS, &res),
                     0);
    assert_string_equal(res.body, "abc");
    arb_http_response_clear(&res);
}

/* Interim responses are skipped; HEAD, 204 and 304 have no body. */
static void test_http_no_body(void **state)
{
    (void)state;
    arb_http_response res;
    assert_int_equal(get_answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
                                ANSWER_AND_LINGER, IO_TIMEOUT_MS, &res),
                     0);
    assert_int_equal(res.status, 204);
    assert_int_equal(res.body_len, 0);
    assert_string_equal(res.headers, "HTTP/1.1 204 No Content\r\n");
    arb_http_response_clear(&res);
    assert_int_equal(get_answer("HTTP/1.1 304 Not Modified\r\nETag: \"3\"\r\n\r\n",
                                ANSWER_AND_LINGER, IO_TIMEOUT_MS, &res),
                     0);
    assert_int_equal(res.status, 304);
    arb_http_response_clear(&res);
    responder *r =
        responder_start(ANSWER_AND_LINGER, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 0);
    assert_int_equal(arb_http_request(url_of(r, "/"), "HEAD", NULL, NULL, 0, IO_TIMEOUT_MS, &res),
                     0);
    responder_join(r);
    free(r);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 0);
    arb_http_response_clear(&res);
}

static void test_http_malformed(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "FOO\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nab\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        arb_http_response res;
        int rc = get_answer(answers[i], ANSWER_AND_LINGER, IO_TIMEOUT_MS, &res);
        if (rc != ARB_EMALFORMED)
            fail_msg("answer %zu: %s: got %s", i, answers[i], arb_err_name(rc));
        assert_null(res.body);
        assert_null(res.headers);
    }
}

static void test_http_closed_and_timeout(void **state)
{
    (void)state;
    arb_http_response res;
    /* Closed before any byte, within the head, within the body. */
    assert_int_equal(get_answer(NULL, ANSWER_AND_CLOSE, IO_TIMEOUT_MS, &res), ARB_ECLOSED);
    assert_int_equal(
        get_answer("HTTP/1.1 200 OK\r\nContent-", ANSWER_AND_CLOSE, IO_TIMEOUT_MS, &res),
        ARB_ECLOSED);
    assert_int_equal(get_answer("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", ANSWER_AND_CLOSE,
                                IO_TIMEOUT_MS, &res),
                     ARB_ECLOSED);
    assert_int_equal(get_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                                ANSWER_AND_CLOSE, IO_TIMEOUT_MS, &res),
                     ARB_ECLOSED);
    /* No answer at all; a body that never completes. */
    int64_t start = mono_ms();
    assert_int_equal(get_answer(NULL, HANG, 150, &res), ARB_ETIMEOUT);
    assert_true(mono_ms() - start >= 149);
    assert_int_equal(
        get_answer("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", ANSWER_AND_LINGER, 150, &res),
        ARB_ETIMEOUT);
    assert_null(res.body);
}

static void test_http_bounds(void **state)
{
    (void)state;
    arb_http_response res;
    size_t long_len = ARB_HTTP_CLIENT_HEAD_BYTES_MAX + 100;
    char *head = malloc(long_len + 64);
    assert_non_null(head);
    strcpy(head, "HTTP/1.1 200 OK\r\nX-Long: ");
    size_t at = strlen(head);
    memset(head + at, 'a', long_len);
    strcpy(head + at + long_len, "\r\n\r\n");
    assert_int_equal(get_answer(head, ANSWER_AND_LINGER, IO_TIMEOUT_MS, &res), ARB_ETOO_LARGE);
    free(head);
    assert_int_equal(get_answer("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n",
                                ANSWER_AND_LINGER, IO_TIMEOUT_MS, &res),
                     ARB_ETOO_LARGE);
    assert_int_equal(get_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "ffffffffffffffffff\r\n",
                                ANSWER_AND_LINGER, IO_TIMEOUT_MS, &res),
                     ARB_ETOO_LARGE);
}

static void test_http_arguments(void **state)
{
    (void)state;
    arb_http_response res;
    const char *url = "http://127.0.0.1:1/";
    assert_int_equal(arb_http_request(url, "get", NULL, NULL, 0, 100, &res), ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_request(url, "", NULL, NULL, 0, 100, &res), ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_request(url, "GET /x", NULL, NULL, 0, 100, &res),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_request(url, "GETGETGETGETGETGE", NULL, NULL, 0, 100, &res),
                     ARB_EINVALID_ARGUMENT);
    static const char *const bad_headers[] = {
        "X: 1", "X: 1\r\n\r\n", ": v\r\n", "X\r\n", "X: a\nY: b\r\n", "X Y: 1\r\n", "X: a\rb\r\n",
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++)
        assert_int_equal(arb_http_request(url, "GET", bad_headers[i], NULL, 0, 100, &res),
                         ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_request("ws://127.0.0.1:1/", "GET", NULL, NULL, 0, 100, &res),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_request("http://127.0.0.1:0/", "GET", NULL, NULL, 0, 100, &res),
                     ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_request(url, "GET", NULL, NULL, 0, 0, &res), ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_raw("", 80, "x", 1, 100, &res), ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_raw("127.0.0.1", 0, "x", 1, 100, &res), ARB_EINVALID_ARGUMENT);
    assert_int_equal(arb_http_raw("127.0.0.1", 65536, "x", 1, 100, &res), ARB_EINVALID_ARGUMENT);
    /* Nobody listening. */
    char refused[64];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/", closed_port());
    assert_int_equal(arb_http_request(refused, "GET", NULL, NULL, 0, IO_TIMEOUT_MS, &res), ARB_EIO);
    assert_null(res.body);
}

/* Raw bytes go out exactly as given. */
static void test_http_raw(void **state)
{
    (void)state;
    static const char request[] = "GARBAGE \x01\x02 / HTTP/9.9\r\nNo-Colon\r\n\r\n";
    responder *r = responder_start(ANSWER_AND_CLOSE,
                                   "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad", 0);
    arb_http_response res;
    assert_int_equal(
        arb_http_raw("127.0.0.1", r->port, request, sizeof request - 1, IO_TIMEOUT_MS, &res), 0);
    responder_join(r);
    assert_int_equal(r->request_len, sizeof request - 1);
    assert_memory_equal(r->request, request, sizeof request - 1);
    free(r);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.body, "bad");
    arb_http_response_clear(&res);
}

/* The WebSocket client's connection failures. */
static void test_ws_connect_errors(void **state)
{
    (void)state;
    arb_ws_client *c = NULL;
    static const char *const bad[] = {"http://127.0.0.1:1/", "wss://127.0.0.1:1/", "ws:/x",
                                      "127.0.0.1:80", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(arb_ws_connect(bad[i], 100, &c), ARB_EINVALID_ARGUMENT);
        assert_null(c);
    }
    assert_int_equal(arb_ws_connect(NULL, 100, &c), ARB_EINVALID_ARGUMENT);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", closed_port());
    assert_int_equal(arb_ws_connect(url, IO_TIMEOUT_MS, &c), ARB_EIO);
    assert_null(c);
    /* An HTTP server that does not upgrade; one that never answers. */
    responder *r =
        responder_start(ANSWER_AND_CLOSE, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", r->port);
    assert_int_equal(arb_ws_connect(url, IO_TIMEOUT_MS, &c), ARB_EIO);
    responder_join(r);
    free(r);
    r = responder_start(HANG, NULL, 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", r->port);
    assert_int_equal(arb_ws_connect(url, 150, &c), ARB_ETIMEOUT);
    assert_null(c);
    responder_join(r);
    free(r);
}

/* ------------------------------------------------------------------------
 * URLs.
 */

static void test_url_parse(void **state)
{
    (void)state;
    static const struct {
        const char *url, *scheme, *host;
        int port;
        const char *target;
    } good[] = {
        {"http://127.0.0.1:8080/v1/streams/ledger:main?x=1", "http", "127.0.0.1", 8080,
         "/v1/streams/ledger:main?x=1"},
        {"ws://localhost", "ws", "localhost", 80, "/"},
        {"HTTP://Example.COM:1/", "http", "Example.COM", 1, "/"},
        {"Ws://[::1]:9000/p%20q", "ws", "::1", 9000, "/p%20q"},
        {"http://[2001:db8::1]", "http", "2001:db8::1", 80, "/"},
        {"http://h?q=1", "http", "h", 80, "/?q=1"},
        {"ws://a-b.c_d:65535/x/", "ws", "a-b.c_d", 65535, "/x/"},
        {"http://h:00080/", "http", "h", 80, "/"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        arb_url u;
        assert_int_equal(arb_url_parse(good[i].url, &u), 0);
        assert_string_equal(u.scheme, good[i].scheme);
        assert_string_equal(u.host, good[i].host);
        assert_int_equal(u.port, good[i].port);
        assert_string_equal(u.target, good[i].target);
    }
    static const char *const bad[] = {
        "",
        "http://",
        "http:///x",
        "http://:80/",
        "ftp://h/",
        "https://h/",
        "wss://h/",
        "http:/h",
        "http//h",
        "h:80",
        "http://h:0",
        "http://h:65536",
        "http://h:123456",
        "http://h:",
        "http://h:8a",
        "http://h:-1",
        "http://u@h/",
        "http://u:p@h/",
        "http://h/#frag",
        "http://h/a b",
        "http://h/\x01",
        "http://h/\x7f",
        "http://h/\xc3\xa9",
        "http://[::1/",
        "http://[zz]/",
        "http://[]/",
        "http://[::1]x/",
        "http://h\\x/",
        "http://h h/",
        "http://h%41/",
        " http://h/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        arb_url u;
        memset(&u, 'z', sizeof u);
        if (arb_url_parse(bad[i], &u) != ARB_EINVALID_ARGUMENT)
            fail_msg("accepted bad URL %zu: %s", i, bad[i]);
        assert_int_equal(u.port, 0);
        assert_string_equal(u.host, "");
    }
    arb_url u;
    assert_int_equal(arb_url_parse(NULL, &u), ARB_EINVALID_ARGUMENT);
    /* Bounds: a host of 253 bytes and a URL of ARB_URL_BYTES_MAX pass, one
     * more byte of either does not. */
    char url[ARB_URL_BYTES_MAX + 2];
    strcpy(url, "http://");
    memset(url + 7, 'h', 253);
    strcpy(url + 7 + 253, "/");
    assert_int_equal(arb_url_parse(url, &u), 0);
    assert_int_equal(strlen(u.host), 253);
    memset(url + 7, 'h', 254);
    strcpy(url + 7 + 254, "/");
    assert_int_equal(arb_url_parse(url, &u), ARB_EINVALID_ARGUMENT);
    strcpy(url, "http://h/");
    memset(url + 9, 'p', ARB_URL_BYTES_MAX - 9);
    url[ARB_URL_BYTES_MAX] = '\0';
    assert_int_equal(arb_url_parse(url, &u), 0);
    assert_int_equal(strlen(u.target), ARB_URL_BYTES_MAX - 8);
    url[ARB_URL_BYTES_MAX] = 'p';
    url[ARB_URL_BYTES_MAX + 1] = '\0';
    assert_int_equal(arb_url_parse(url, &u), ARB_EINVALID_ARGUMENT);
}

/* ------------------------------------------------------------------------
 * The CLI's remote mode against the stand-ins.
 */

static char base_url[64];

static const char *server_base(void)
{
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", server.port);
    return base_url;
}

static int run_cli(json_t **out, const char *const argv[])
{
    char *text = NULL;
    int status = test_run_tool(&text, argv);
    if (out != NULL)
        *out = text != NULL ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return status;
}

static void test_cli_propose(void **state)
{
    (void)state;
    json_t *out = NULL;
    const char *argv1[] = {"arbiter",     "propose",  server_base(),
                           "ledger:main", "transfer", "{\"amount\":5,\"from\":\"a\",\"to\":\"b\"}",
                           "--client-id", "alice",    "--client-seq",
                           "42",          "--expect", "3",
                           NULL};
    assert_int_equal(run_cli(&out, argv1), 0);
    assert_string_equal(json_string_value(json_object_get(out, "type")), "committed");
    assert_int_equal(json_integer_value(json_object_get(out, "client_seq")), 42);
    json_decref(out);
    char seen[4096];
    read_record(server.seen.hello, seen, sizeof seen);
    assert_string_equal(seen, "{\"type\":\"hello\",\"proto\":1,\"client_id\":\"alice\"}");
    read_record(server.seen.propose, seen, sizeof seen);
    assert_string_equal(seen, "{\"type\":\"propose\",\"client_seq\":42,\"stream\":\"ledger:main\","
                              "\"action\":\"transfer\",\"args\":{\"amount\":5,\"from\":\"a\","
                              "\"to\":\"b\"},\"expect\":3}");

    /* Rejected: exit 1 with the message; refused: exit 4. */
    const char *argv2[] = {"arbiter", "propose", server_base(), "ledger:main", "fail", "{}", NULL};
    int64_t before_ms = wall_ms();
    assert_int_equal(run_cli(&out, argv2), 1);
    int64_t after_ms = wall_ms();
    assert_string_equal(json_string_value(json_object_get(out, "code")), "INSUFFICIENT_FUNDS");
    json_decref(out);
    /* The defaults: client id cli-<pid>, client_seq the time in microseconds
     * (where the SDK's new outbox starts its count). */
    read_record(server.seen.hello, seen, sizeof seen);
    assert_non_null(strstr(seen, "\"client_id\":\"cli-"));
    read_record(server.seen.propose, seen, sizeof seen);
    json_t *propose = json_loads(seen, 0, NULL);
    json_int_t seq = json_integer_value(json_object_get(propose, "client_seq"));
    assert_true(seq >= before_ms * 1000 && seq <= after_ms * 1000 + 1000);
    assert_null(json_object_get(propose, "expect"));
    json_decref(propose);
    const char *argv3[] = {"arbiter", "propose", server_base(), "ledger:main",
                           "refuse",  "{}",      NULL};
    assert_int_equal(run_cli(&out, argv3), 4);
    assert_null(out);
}

static void test_cli_usage(void **state)
{
    (void)state;
    char refused[64];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d", closed_port());
    const char *base = server_base();
    const char *cases[][9] = {
        {"arbiter", "propose", "ws://127.0.0.1:1", "s:a", "x", "{}"},
        {"arbiter", "propose", "http://127.0.0.1:1/?q", "s:a", "x", "{}"},
        {"arbiter", "propose", base, "s:a", "x", "[1]"},
        {"arbiter", "propose", base, "s:a", "x", "{\"a\":1.5"},
        {"arbiter", "propose", base, "s:a", "x"},
        {"arbiter", "propose", base, "s:a", "x", "{}", "--client-seq", "0"},
        {"arbiter", "propose", base, "s:a", "x", "{}", "--client-id", "a b"},
        {"arbiter", "propose", base, "s:a", "x", "{}", "--timeout-ms", "0"},
        {"arbiter", "propose", base, "s:a", "x", "{}", "--data", "/tmp"},
        {"arbiter", "state", base},
        {"arbiter", "tail", base},
        {"arbiter", "tail", "nonsense", "s:a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (run_cli(NULL, cases[i]) != 2)
            fail_msg("case %zu was not a usage error", i);
    const char *unreachable[] = {"arbiter", "propose", refused, "s:a", "x", "{}", NULL};
    assert_int_equal(run_cli(NULL, unreachable), 4);
    const char *state_unreachable[] = {"arbiter", "state", refused, "s:a", NULL};
    assert_int_equal(run_cli(NULL, state_unreachable), 4);
}

static void test_cli_state(void **state)
{
    (void)state;
    const char *answer = "HTTP/1.1 200 OK\r\nETag: \"3\"\r\nContent-Length: 56\r\n\r\n"
                         "{\"stream\":\"ledger:main\",\"version\":3,\"state\":{\"a\":[1,2]}}";
    responder *r = responder_start(ANSWER_AND_CLOSE, answer, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/base/", r->port);
    json_t *out = NULL;
    const char *argv[] = {"arbiter", "state", url, "ledger:main", NULL};
    assert_int_equal(run_cli(&out, argv), 0);
    responder_join(r);
    assert_non_null(strstr(r->request, "GET /base/v1/streams/ledger:main HTTP/1.1\r\n"));
    free(r);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 3);
    assert_int_equal(json_array_size(json_object_get(json_object_get(out, "state"), "a")), 2);
    json_decref(out);

    /* Odd bytes in the name are percent-encoded; a 404 is exit 4. */
    r = responder_start(ANSWER_AND_CLOSE,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 56\r\n\r\n"
                        "{\"code\":\"STREAM_NOT_FOUND\",\"message\":\"no such stream!!\"}",
                        0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", r->port);
    const char *argv2[] = {"arbiter", "state", url, "a b/c:d%", NULL};
    assert_int_equal(run_cli(&out, argv2), 4);
    assert_null(out);
    responder_join(r);
    assert_non_null(strstr(r->request, "GET /v1/streams/a%20b%2Fc:d%25 HTTP/1.1\r\n"));
    free(r);
}

static void test_cli_tail(void **state)
{
    (void)state;
    char *text = NULL;
    const char *argv[] = {"arbiter", "tail", server_base(), "ledger:main", "--since", "5", NULL};
    assert_int_equal(test_run_tool(&text, argv), 0);
    assert_string_equal(text, "{\"type\":\"snapshot\",\"stream\":\"ledger:main\",\"seq\":1,"
                              "\"state\":{\"n\":1}}\n"
                              "{\"type\":\"patch\",\"stream\":\"ledger:main\",\"seq\":2,"
                              "\"events\":[]}\n");
    free(text);
    char seen[512];
    read_record(server.seen.subscribe, seen, sizeof seen);
    assert_string_equal(seen, "{\"type\":\"subscribe\",\"stream\":\"ledger:main\",\"since\":5}");
}

/* tail runs until SIGINT, then closes and exits 0 (--since: the plain
 * WebSocket path, which prints the server's messages as they come; the
 * SDK's path is tested against the real server in tests/integration). */
static void test_cli_tail_interrupt(void **state)
{
    (void)state;
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiter", bin_dir);
    const char *base = server_base();
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(path, "arbiter", "tail", base, "keep:open", "--since", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char out[4096];
    size_t len = 0;
    /* Wait for both lines (the subscription is live), then interrupt. */
    while (len < sizeof out - 1) {
        ssize_t n = read(fds[0], out + len, sizeof out - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
        if (strstr(out, "\"patch\"") != NULL && out[len - 1] == '\n')
            break;
    }
    out[len] = '\0';
    assert_non_null(strstr(out, "\"snapshot\""));
    kill(pid, SIGINT);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(fds[0]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest ws_tests[] = {
        cmocka_unit_test(test_ws_echo),           cmocka_unit_test(test_ws_fragments_and_bounds),
        cmocka_unit_test(test_ws_timeout),        cmocka_unit_test(test_ws_peer_close),
        cmocka_unit_test(test_ws_binary),         cmocka_unit_test(test_ws_burst),
        cmocka_unit_test(test_ws_alternate),      cmocka_unit_test(test_ws_threads),
        cmocka_unit_test(test_ws_connect_errors),
    };
    const struct CMUnitTest http_tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_http_content_length),
        cmocka_unit_test(test_http_post_until_close),
        cmocka_unit_test(test_http_chunked),
        cmocka_unit_test(test_http_no_body),
        cmocka_unit_test(test_http_malformed),
        cmocka_unit_test(test_http_closed_and_timeout),
        cmocka_unit_test(test_http_bounds),
        cmocka_unit_test(test_http_arguments),
        cmocka_unit_test(test_http_raw),
    };
    const struct CMUnitTest cli_tests[] = {
        cmocka_unit_test(test_cli_propose),        cmocka_unit_test(test_cli_usage),
        cmocka_unit_test(test_cli_state),          cmocka_unit_test(test_cli_tail),
        cmocka_unit_test(test_cli_tail_interrupt),
    };
    signal(SIGPIPE, SIG_IGN);
    int failed = cmocka_run_group_tests_name("net_client_ws", ws_tests, start_server, stop_server);
    failed += cmocka_run_group_tests_name("net_client_http", http_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("net_client_cli", cli_tests, start_server, stop_server);
    return failed;
}
