/*
 * client.h - small BLOCKING clients of an arbiter server: a WebSocket client
 * (over libwebsockets) and an HTTP/1.1 client (over plain POSIX sockets),
 * for the CLI's remote mode, tests and benchmarks. Not for the server's hot
 * path: every call waits for its answer or its deadline.
 *
 * URLs. ws://HOST[:PORT][/PATH][?QUERY] and http://HOST[:PORT][/PATH][?QUERY];
 * HOST a DNS name, an IPv4 address or a bracketed IPv6 address. No TLS
 * (wss, https), no user info (user@), no fragment (#): each is refused with
 * ARB_EINVALID_ARGUMENT, as is any byte outside printable ASCII and a URL
 * longer than ARB_URL_BYTES_MAX. The target (path and query) is sent as
 * given; percent-encoding is the caller's.
 *
 * WebSocket. arb_ws_connect opens a connection with the subprotocol
 * "arbiter.v1". Whole messages are received into a queue inside the client
 * (each at most ARB_WIRE_FRAME_BYTES_MAX; past ARB_WS_CLIENT_QUEUE_BYTES_MAX
 * queued the client stops reading the socket until the caller takes some),
 * and arb_ws_recv hands them out one by one. Network I/O happens only inside
 * these calls, on the caller's thread: a client that is not called does not
 * read (the peer's data waits in the kernel).
 *
 * Threads: a client is used by one thread at a time. Each client owns its own
 * libwebsockets context, so different clients are independent: one thread
 * may use several alternately, and several threads may each use their own.
 *
 * Ownership: the caller owns the arb_ws_client from arb_ws_connect until
 * arb_ws_close, and every message arb_ws_recv returns (free() it). An
 * arb_http_response's buffers are owned by the response until
 * arb_http_response_clear. Input pointers are borrowed for the call only.
 */
#ifndef ARB_NET_CLIENT_H
#define ARB_NET_CLIENT_H

#include <stddef.h>

#include "arbiter/limits.h"

/* A whole URL, scheme to query. Far more than arbiter's paths need. */
#define ARB_URL_BYTES_MAX 2048
/* A host name (DNS allows 253) or an IPv6 literal without its brackets. */
#define ARB_URL_HOST_BYTES_MAX 253
/* Received messages a WebSocket client holds before it stops reading: the
 * server's per-connection outbound bound, so a caller that falls behind
 * holds no more than the server would have queued for it. */
#define ARB_WS_CLIENT_QUEUE_BYTES_MAX ARB_NET_OUTBOUND_BYTES_MAX
/* One message a client may send: more than the server accepts, so that
 * tests can send an oversize frame and watch it be refused. */
#define ARB_WS_CLIENT_SEND_BYTES_MAX (4 * ARB_WIRE_FRAME_BYTES_MAX)
/* How long arb_ws_close waits for the peer to answer the close handshake. */
#define ARB_WS_CLIENT_CLOSE_WAIT_MS 1000
/* An HTTP response's status line and headers. */
#define ARB_HTTP_CLIENT_HEAD_BYTES_MAX (64 * 1024)
/* An HTTP response body: a stream's whole state (GET /v1/streams/S) with
 * room for the envelope around it. */
#define ARB_HTTP_CLIENT_BODY_BYTES_MAX (ARB_SNAPSHOT_BYTES_MAX + 64 * 1024)

_Static_assert(ARB_WS_CLIENT_QUEUE_BYTES_MAX >= 2 * ARB_WIRE_FRAME_BYTES_MAX,
               "the receive queue holds at least two of the largest messages");
_Static_assert(ARB_HTTP_CLIENT_BODY_BYTES_MAX > ARB_HTTP_BODY_BYTES_MAX,
               "a response holds at least what a request may carry");

/* A parsed URL. */
typedef struct arb_url {
    char scheme[8];                        /* "ws" or "http", lower case */
    char host[ARB_URL_HOST_BYTES_MAX + 1]; /* without the brackets of an IPv6 literal */
    int port;                              /* 1 .. 65535; 80 when the URL has none */
    char target[ARB_URL_BYTES_MAX + 1];    /* path and query; "/" when the URL has none */
} arb_url;

/* Parse url (ws:// or http://, see above) into *out. Returns 0, or
 * ARB_EINVALID_ARGUMENT with *out zeroed. */
int arb_url_parse(const char *url, arb_url *out);

/* WebSocket client. */

typedef struct arb_ws_client arb_ws_client;

/* Set libwebsockets' process-wide log level, once: silent unless
 * ARB_LOG_LEVEL=debug. arb_ws_connect calls it; a program that runs its own
 * libwebsockets threads calls it before starting them, because lws reads the
 * level unguarded from every thread. */
void arb_ws_client_init(void);

/* Connect to url (ws://...) and complete the WebSocket handshake within
 * timeout_ms. Returns 0 with *out set, or ARB_EINVALID_ARGUMENT (bad URL),
 * ARB_ETIMEOUT, ARB_EIO (refused, reset, not a WebSocket server, subprotocol
 * not accepted), ARB_ENOMEM; *out is NULL then. timeout_ms is also how long
 * each later arb_ws_send waits for its frame to be written. */
int arb_ws_connect(const char *url, int timeout_ms, arb_ws_client **out);

/* The same without waiting: start connecting and return at once with *out
 * set, the handshake under way; arb_ws_service (or any other call) advances
 * it, and arb_ws_status_of tells how it went. Errors as arb_ws_connect for
 * what is known at once (a bad URL, ENOMEM); a refused or failed connection
 * shows later as ARB_WS_ENDED. send_wait_ms bounds each arb_ws_send. */
int arb_ws_connect_start(const char *url, int send_wait_ms, arb_ws_client **out);

typedef enum arb_ws_status {
    ARB_WS_CONNECTING = 0, /* handshake under way */
    ARB_WS_OPEN = 1,       /* open: send and receive */
    ARB_WS_ENDED = 2,      /* failed to connect, or closed (messages may still be queued) */
} arb_ws_status;

arb_ws_status arb_ws_status_of(const arb_ws_client *c);

/* Run the connection for up to timeout_ms (0: what is ready now; negative:
 * no limit): returns when a message is queued, the status changes, or time
 * is up. Received messages are then taken with arb_ws_recv(c, 0, ...). */
void arb_ws_service(arb_ws_client *c, int timeout_ms);

/* Send text[0..len) as one text frame and wait until it is written (handed
 * to the kernel). Returns 0, ARB_ETOO_LARGE (len over
 * ARB_WS_CLIENT_SEND_BYTES_MAX), ARB_ECLOSED, ARB_ENOMEM or ARB_ETIMEOUT;
 * after ARB_ETIMEOUT the frame stays queued and goes out during later calls. */
int arb_ws_send(arb_ws_client *c, const char *text, size_t len);

/* The same as one binary frame (the protocol refuses those: for tests). */
int arb_ws_send_binary(arb_ws_client *c, const void *bytes, size_t len);

/* Take the oldest received message, waiting up to timeout_ms for one
 * (0: only what has arrived; negative: no limit). Returns 0 with *text_out a
 * malloc'd NUL-terminated copy of the whole message (the caller frees it)
 * and *len_out its length without the NUL; or ARB_ETIMEOUT; or, once every
 * queued message is taken, ARB_ECLOSED (the connection is closed; see
 * arb_ws_close_status), ARB_ETOO_LARGE (the peer sent a message over
 * ARB_WIRE_FRAME_BYTES_MAX; the client closed with 1009) or ARB_ENOMEM.
 * Binary messages are returned the same way. */
int arb_ws_recv(arb_ws_client *c, int timeout_ms, char **text_out, size_t *len_out);

/* The close code the peer sent (1000, 1001, ...), 1005 when its close frame
 * had no code, 1006 when the connection ended without a close frame, or 0
 * while the connection is open. Copies the peer's reason (UTF-8, at most 123
 * bytes; "" when none) into reason[0..reason_size) when reason is not NULL. */
int arb_ws_close_status(const arb_ws_client *c, char *reason, size_t reason_size);

/* Close cleanly (write what is queued, send a close frame with 1000, wait up
 * to ARB_WS_CLIENT_CLOSE_WAIT_MS for the peer's) and free everything. Messages
 * not taken are dropped. NULL is a no-op. */
void arb_ws_close(arb_ws_client *c);

/* HTTP/1.1 client. One request per connection (Connection: close). */

typedef struct arb_http_response {
    int status;      /* 100 .. 599 */
    char *headers;   /* the status line and header lines as received, each ending in
                        CRLF, without the empty line; NUL-terminated */
    char *body;      /* the decoded body (chunks joined); NUL-terminated, never NULL */
    size_t body_len; /* without the NUL */
} arb_http_response;

/* Send METHOD url with Host, Connection: close, Content-Length (when body is
 * not NULL), then extra_headers ("Name: value\r\n" lines, or NULL) and body,
 * and read the whole response within timeout_ms (> 0: connect, send and
 * receive together; name resolution is not bounded by it). method is 1..16 upper-case letters.
 * Interim 1xx responses are skipped. Returns 0 with *out filled (any status: a 404 is an answer;
 * the caller clears it), or with *out empty: ARB_EINVALID_ARGUMENT  bad URL (not http://), method,
 * extra_headers or timeout ARB_EIO                cannot resolve or connect, or a socket error
 *   ARB_ETIMEOUT           no complete response within timeout_ms
 *   ARB_ECLOSED            the server closed before the response was complete
 *   ARB_EMALFORMED         not an HTTP/1.x response, or bad framing
 *   ARB_ETOO_LARGE         headers or body over their bounds (see above)
 *   ARB_ENOMEM             out of memory */
int arb_http_request(const char *url, const char *method, const char *extra_headers,
                     const char *body, size_t body_len, int timeout_ms, arb_http_response *out);

/* Send request_bytes[0..len) to host:port exactly as they are (tests of
 * malformed requests) and read the response as arb_http_request does
 * (framed as the answer to a request that is not HEAD). Same returns; an
 * empty host or a port outside 1..65535 is ARB_EINVALID_ARGUMENT. */
int arb_http_raw(const char *host, int port, const void *request_bytes, size_t len, int timeout_ms,
                 arb_http_response *out);

/* The value of the first header called name (case-insensitive), without
 * surrounding spaces, copied into buf[0..size) and returned; NULL when there
 * is no such header or its value does not fit. */
const char *arb_http_header(const arb_http_response *r, const char *name, char *buf, size_t size);

/* Free the response's buffers; it is empty (status 0) after. */
void arb_http_response_clear(arb_http_response *r);

#endif
