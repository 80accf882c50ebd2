/*
 * echo_server.c - a bare libwebsockets WebSocket server that sends every text
 * message back as it came: the baseline of the wire benchmark. Its CPU per
 * round trip, measured by bench/loadgen --echo with the same frames, is what
 * one message costs the network stack alone (poll, read, unmask, frame,
 * write), without parsing, deciding or storing anything; arbiterd's CPU per
 * committed transfer is read against it.
 *
 *   echo_server --listen 127.0.0.1:PORT [--port-file FILE]
 *
 * It speaks the subprotocol "arbiter.v1" (the one loadgen asks for), runs one
 * service thread (as arbiterd's network thread), and answers messages in
 * order. It stops on SIGTERM or SIGINT.
 *
 * Per connection it owns one output buffer of OUT_BYTES: each received
 * message is assembled there behind LWS_PRE bytes of headroom, queued as a
 * record, and written when the socket is writable, as many as the socket
 * takes without lws buffering a partial write. When the buffer or the record
 * ring is nearly full the connection stops reading (lws_rx_flow_control)
 * until it has drained: memory per connection is fixed, and a client that
 * does not read slows down only itself.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "core/assert.h"

#define PROTOCOL_NAME "arbiter.v1"
/* The largest message echoed; a bigger one closes the connection. */
#define MESSAGE_BYTES_MAX 65536
#define RX_CHUNK_BYTES MESSAGE_BYTES_MAX
/* Room for many pipelined messages and their headroom. */
#define OUT_BYTES (1024 * 1024)
#define RECORDS_MAX 4096
#define WRITES_PER_CALLBACK_MAX 256

_Static_assert(OUT_BYTES >= 4 * (MESSAGE_BYTES_MAX + LWS_PRE), "the buffer holds several messages");
_Static_assert((RECORDS_MAX & (RECORDS_MAX - 1)) == 0, "the record ring is a power of two");

typedef struct record {
    size_t offset; /* of the payload; LWS_PRE free bytes precede it */
    size_t len;
} record;

typedef struct session {
    unsigned char *out;   /* OUT_BYTES */
    size_t used;          /* bytes of out in use: records, then the message being assembled */
    size_t message_start; /* payload offset of the message being assembled */
    bool assembling;
    bool rx_paused;
    record records[RECORDS_MAX];
    size_t head, tail; /* records[head..tail) wait to be written */
} session;

static volatile sig_atomic_t stop_requested;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static bool has_room(const session *s)
{
    return OUT_BYTES - s->used >= MESSAGE_BYTES_MAX + LWS_PRE &&
           s->tail - s->head < RECORDS_MAX - 1;
}

/* When every record is out, move the message being assembled (if any) to
 * the front, so that the buffer does not creep to its end. */
static void compact(session *s)
{
    if (s->head != s->tail)
        return;
    if (!s->assembling) {
        s->used = 0;
        return;
    }
    size_t start = s->message_start - LWS_PRE;
    size_t len = s->used - start;
    memmove(s->out, s->out + start, len);
    s->message_start = LWS_PRE;
    s->used = len;
}

static int on_receive(struct lws *wsi, session *s, const void *in, size_t len)
{
    if (!s->assembling) {
        s->assembling = true;
        s->used += LWS_PRE;
        s->message_start = s->used;
    }
    if (s->used - s->message_start + len > MESSAGE_BYTES_MAX) {
        fprintf(stderr, "echo_server: a message over %d bytes; closing\n", MESSAGE_BYTES_MAX);
        return -1;
    }
    ARB_ASSERT(s->used + len <= OUT_BYTES);
    memcpy(s->out + s->used, in, len);
    s->used += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    s->records[s->tail % RECORDS_MAX] =
        (record){.offset = s->message_start, .len = s->used - s->message_start};
    s->tail++;
    s->assembling = false;
    if (!has_room(s) && !s->rx_paused) {
        s->rx_paused = true;
        lws_rx_flow_control(wsi, 0);
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_writeable(struct lws *wsi, session *s)
{
    for (int n = 0; n < WRITES_PER_CALLBACK_MAX && s->head != s->tail; n++) {
        if (n > 0 && lws_partial_buffered(wsi))
            break;
        const record *r = &s->records[s->head % RECORDS_MAX];
        ARB_ASSERT(r->offset >= LWS_PRE && r->offset + r->len <= s->used);
        if (lws_write(wsi, s->out + r->offset, r->len, LWS_WRITE_TEXT) < (int)r->len)
            return -1;
        s->head++;
    }
    compact(s);
    if (s->head != s->tail)
        lws_callback_on_writable(wsi);
    if (s->rx_paused && has_room(s)) {
        s->rx_paused = false;
        lws_rx_flow_control(wsi, 1);
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    session *s = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        s->out = malloc(OUT_BYTES);
        return s->out != NULL ? 0 : -1;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, s, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, s);
    case LWS_CALLBACK_CLOSED:
        free(s->out);
        s->out = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL_NAME, callback, sizeof(session), RX_CHUNK_BYTES, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* the end of the list */
};

static int parse_listen(const char *text, char *host, size_t host_size, int *port_out)
{
    const char *colon = text != NULL ? strrchr(text, ':') : NULL;
    if (colon == NULL || colon == text || (size_t)(colon - text) >= host_size)
        return -1;
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port < 0 || port > 65535 || end == colon + 1)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    *port_out = (int)port;
    return 0;
}

int main(int argc, char **argv)
{
    char host[256] = "";
    int port = -1;
    const char *port_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0 &&
            parse_listen(argv[i + 1], host, sizeof host, &port) == 0)
            continue;
        if (strcmp(argv[i], "--port-file") == 0) {
            port_file = argv[i + 1];
            continue;
        }
        port = -1;
        break;
    }
    if (port < 0 || (argc - 1) % 2 != 0) {
        fprintf(stderr, "usage: echo_server --listen HOST:PORT [--port-file FILE]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    struct lws_context *context = lws_create_context(&info);
    if (context == NULL) {
        fprintf(stderr, "echo_server: cannot listen on %s:%d\n", host, port);
        return 1;
    }
    if (port_file != NULL) {
        FILE *file = fopen(port_file, "w");
        ARB_ASSERT(file != NULL);
        fprintf(file, "%d\n", lws_get_vhost_listen_port(lws_get_vhost_by_name(context, "default")));
        fclose(file);
    }
    fprintf(stderr, "echo_server: listening on %s:%d\n", host, port);
    /* Ends on a signal: the handler sets the flag and the next poll returns. */
    while (!stop_requested)
        if (lws_service(context, 0) < 0)
            break;
    lws_context_destroy(context);
    return 0;
}
