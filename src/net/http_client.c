/*
 * http_client.c - the blocking HTTP/1.1 client (see client.h), over plain
 * POSIX sockets so that tests can also send bytes no real client would.
 *
 * One exchange: resolve, connect (non-blocking, polled), write the request,
 * read until the response is complete by its own framing, close. One deadline
 * covers all of it; every poll() waits at most until that deadline.
 *
 * The reader accumulates bytes in `raw` and re-examines it after each read:
 *
 *   HEAD --blank line--> (1xx: drop it, HEAD again)
 *        --no body (HEAD request, 204, 304)--> DONE
 *        --Content-Length N--> N bytes --> DONE
 *        --chunked--> chunk by chunk into `body` --> last chunk, trailers --> DONE
 *        --neither--> until the server closes --> DONE
 *
 * Invariants: raw holds only bytes not yet consumed (the head is removed once
 * parsed, chunks once decoded); raw and body are bounded by their arb_buf
 * maxima, so a server cannot make the client hold more than
 * ARB_HTTP_CLIENT_HEAD_BYTES_MAX + ARB_HTTP_CLIENT_BODY_BYTES_MAX and a chunk
 * line.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/client.h"

/* A chunk-size line ("1a2b;ext=1"): longer ones are refused as malformed. */
#define CHUNK_LINE_BYTES_MAX 1024
/* Bytes read from the socket at once. */
#define READ_BYTES 16384
/* An HTTP method. */
#define METHOD_BYTES_MAX 16

typedef enum body_framing {
    FRAMING_NONE,
    FRAMING_LENGTH,
    FRAMING_CHUNKED,
    FRAMING_UNTIL_CLOSE,
} body_framing;

typedef struct reader {
    arb_buf raw;  /* received, not yet consumed */
    arb_buf body; /* the decoded body (chunked) */
    bool head_done;
    bool done;
    bool head_request; /* the request was HEAD: the response has no body */
    body_framing framing;
    size_t content_length;
    int status;
    char *headers; /* owned until handed to the response */
} reader;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int poll_until(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n == 0)
            return ARB_ETIMEOUT;
        if (errno != EINTR)
            return ARB_EIO;
    }
}

/* Connect to one address before the deadline; *fd_out is the socket. */
static int connect_address(const struct addrinfo *ai, int64_t deadline_ms, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return ARB_EIO;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        rc = errno == EINPROGRESS ? poll_until(fd, POLLOUT, deadline_ms) : ARB_EIO;
        int error = 0;
        socklen_t len = sizeof error;
        if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0))
            rc = ARB_EIO;
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

static int connect_host(const char *host, int port, int64_t deadline_ms, int *fd_out)
{
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, port_text, &hints, &list);
    if (gai != 0) {
        arb_log(ARB_LOG_DEBUG, "http resolve failed", "host=\"%s\" why=\"%s\"", host,
                gai_strerror(gai));
        return ARB_EIO;
    }
    int rc = ARB_EIO;
    for (const struct addrinfo *ai = list; ai != NULL && rc != 0 && rc != ARB_ETIMEOUT;
         ai = ai->ai_next)
        rc = connect_address(ai, deadline_ms, fd_out);
    freeaddrinfo(list);
    return rc;
}

/* Write all of bytes. A peer that stops reading and closes (it may have
 * answered already, a 413 say) ends the writing without an error: the
 * response, if any, is what counts. */
static int send_all(int fd, const char *bytes, size_t len, int64_t deadline_ms)
{
    size_t sent = 0;
    while (sent < len) {
        int rc = poll_until(fd, POLLOUT, deadline_ms);
        if (rc != 0)
            return rc;
        ssize_t n = send(fd, bytes + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            return 0;
        } else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            return ARB_EIO;
        }
    }
    return 0;
}

static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *find_crlf(const char *text, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (text[i] == '\r' && text[i + 1] == '\n')
            return text + i;
    return NULL;
}

/* "HTTP/1.x SSS[ reason]" */
static int parse_status_line(const char *line, size_t len, int *status_out)
{
    if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' ||
        line[8] != ' ')
        return ARB_EMALFORMED;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return ARB_EMALFORMED;
        status = status * 10 + (line[i] - '0');
    }
    if (status < 100 || status > 599 || (len > 12 && line[12] != ' '))
        return ARB_EMALFORMED;
    *status_out = status;
    return 0;
}

static bool value_has_token(const char *value, size_t len, const char *token)
{
    size_t n = strlen(token);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(value + i, token, n) == 0 &&
            (i == 0 || value[i - 1] == ',' || value[i - 1] == ' ') &&
            (i + n == len || value[i + n] == ',' || value[i + n] == ' ' || value[i + n] == ';'))
            return true;
    return false;
}

/* One "Name: value" line: note the framing headers. */
static int parse_header_line(reader *r, const char *line, size_t len, bool *chunked,
                             bool *has_length)
{
    size_t name_len = 0;
    while (name_len < len && is_token_char(line[name_len]))
        name_len++;
    if (name_len == 0 || name_len == len || line[name_len] != ':')
        return ARB_EMALFORMED; /* also an obsolete folded line, which starts with a space */
    const char *value = line + name_len + 1;
    size_t value_len = len - name_len - 1;
    while (value_len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        value_len--;
    }
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
        *chunked = *chunked || value_has_token(value, value_len, "chunked");
    } else if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
        size_t length = 0;
        if (value_len == 0 || value_len > 20)
            return ARB_EMALFORMED;
        for (size_t i = 0; i < value_len; i++) {
            if (value[i] < '0' || value[i] > '9')
                return ARB_EMALFORMED;
            if (length > ARB_HTTP_CLIENT_BODY_BYTES_MAX)
                return ARB_ETOO_LARGE;
            length = length * 10 + (size_t)(value[i] - '0');
        }
        if (length > ARB_HTTP_CLIENT_BODY_BYTES_MAX)
            return ARB_ETOO_LARGE;
        if (*has_length && length != r->content_length)
            return ARB_EMALFORMED; /* two different lengths: which one is the truth? */
        *has_length = true;
        r->content_length = length;
    }
    return 0;
}

/* The head raw[0..head_len) (through the CRLF of its last line): the status,
 * the framing, and a copy for the response. */
static int parse_head(reader *r, size_t head_len)
{
    const char *text = r->raw.data;
    const char *eol = find_crlf(text, head_len);
    ARB_ASSERT(eol != NULL);
    int rc = parse_status_line(text, (size_t)(eol - text), &r->status);
    bool chunked = false, has_length = false;
    for (const char *line = eol + 2; rc == 0 && line < text + head_len; line = eol + 2) {
        eol = find_crlf(line, (size_t)(text + head_len - line));
        ARB_ASSERT(eol != NULL);
        rc = parse_header_line(r, line, (size_t)(eol - line), &chunked, &has_length);
    }
    if (rc != 0)
        return rc;
    if (r->head_request || r->status < 200 || r->status == 204 || r->status == 304)
        r->framing = FRAMING_NONE;
    else if (chunked)
        r->framing = FRAMING_CHUNKED; /* it wins over a Content-Length (RFC 9112 6.3) */
    else if (has_length)
        r->framing = FRAMING_LENGTH;
    else
        r->framing = FRAMING_UNTIL_CLOSE;
    free(r->headers);
    r->headers = malloc(head_len + 1);
    if (r->headers == NULL)
        return ARB_ENOMEM;
    memcpy(r->headers, text, head_len);
    r->headers[head_len] = '\0';
    return 0;
}

static void raw_consume(reader *r, size_t n)
{
    ARB_ASSERT(n <= r->raw.len);
    memmove(r->raw.data, r->raw.data + n, r->raw.len - n);
    r->raw.len -= n;
    r->raw.data[r->raw.len] = '\0';
}

/* Look for the end of the head; parse it when it is there. Interim 1xx
 * responses (not 101) are dropped and the search starts again. */
static int read_head(reader *r)
{
    for (int interim = 0; interim < 16 && !r->head_done; interim++) {
        const char *text = r->raw.data;
        const char *end = text != NULL ? memmem(text, r->raw.len, "\r\n\r\n", 4) : NULL;
        if (end == NULL)
            return r->raw.len > ARB_HTTP_CLIENT_HEAD_BYTES_MAX ? ARB_ETOO_LARGE : 0;
        size_t head_len = (size_t)(end - text) + 2;
        if (head_len > ARB_HTTP_CLIENT_HEAD_BYTES_MAX)
            return ARB_ETOO_LARGE;
        if (memchr(text, '\0', head_len) != NULL)
            return ARB_EMALFORMED;
        int rc = parse_head(r, head_len);
        if (rc != 0)
            return rc;
        raw_consume(r, head_len + 2);
        if (r->status >= 100 && r->status < 200 && r->status != 101)
            continue;
        r->head_done = true;
    }
    /* Sixteen interim responses in a row: not a server to wait for. */
    return r->head_done ? 0 : ARB_EMALFORMED;
}

/* The hex size at the start of a chunk line (extensions after ';' ignored). */
static int parse_chunk_size(const char *line, size_t len, size_t *size_out)
{
    size_t size = 0, i = 0;
    for (; i < len; i++) {
        char c = line[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0)
            break;
        size = size * 16 + (size_t)digit;
        if (size > ARB_HTTP_CLIENT_BODY_BYTES_MAX)
            return ARB_ETOO_LARGE;
    }
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == 0 || (i < len && line[i] != ';'))
        return ARB_EMALFORMED;
    *size_out = size;
    return 0;
}

/* Decode every whole chunk in raw into body. */
static int read_chunks(reader *r)
{
    for (;;) {
        const char *text = r->raw.data;
        const char *eol = text != NULL ? find_crlf(text, r->raw.len) : NULL;
        if (eol == NULL)
            return r->raw.len > CHUNK_LINE_BYTES_MAX ? ARB_EMALFORMED : 0;
        size_t line_len = (size_t)(eol - text), size = 0;
        int rc = line_len > CHUNK_LINE_BYTES_MAX ? ARB_EMALFORMED
                                                 : parse_chunk_size(text, line_len, &size);
        if (rc != 0)
            return rc;
        size_t data_at = line_len + 2;
        if (size == 0) { /* the last chunk, then trailer lines up to an empty one */
            const char *end = r->raw.len >= data_at + 2 && memcmp(text + data_at, "\r\n", 2) == 0
                                  ? text + data_at
                                  : memmem(text + line_len, r->raw.len - line_len, "\r\n\r\n", 4);
            r->done = end != NULL;
            return end == NULL && r->raw.len > ARB_HTTP_CLIENT_HEAD_BYTES_MAX ? ARB_ETOO_LARGE : 0;
        }
        if (r->raw.len - data_at < size + 2)
            return 0; /* wait for the rest of this chunk */
        if (text[data_at + size] != '\r' || text[data_at + size + 1] != '\n')
            return ARB_EMALFORMED;
        rc = arb_buf_append(&r->body, text + data_at, size);
        if (rc != 0)
            return rc;
        raw_consume(r, data_at + size + 2);
    }
}

/* Examine what has arrived; sets r->done when the response is complete. */
static int reader_step(reader *r, bool eof)
{
    int rc = r->head_done ? 0 : read_head(r);
    if (rc != 0 || !r->head_done) {
        if (rc == 0 && eof)
            rc = ARB_ECLOSED; /* nothing, or part of a head */
        return rc;
    }
    switch (r->framing) {
    case FRAMING_NONE:
        r->done = true;
        break;
    case FRAMING_LENGTH:
        r->done = r->raw.len >= r->content_length;
        break;
    case FRAMING_CHUNKED:
        rc = read_chunks(r);
        break;
    case FRAMING_UNTIL_CLOSE:
        r->done = eof;
        if (r->raw.len > ARB_HTTP_CLIENT_BODY_BYTES_MAX)
            rc = ARB_ETOO_LARGE;
        break;
    }
    if (rc == 0 && eof && !r->done)
        rc = ARB_ECLOSED;
    return rc;
}

static int receive_response(reader *r, int fd, int64_t deadline_ms)
{
    char chunk[READ_BYTES];
    for (;;) {
        int rc = poll_until(fd, POLLIN, deadline_ms);
        if (rc != 0)
            return rc;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0 && errno != ECONNRESET)
            return ARB_EIO;
        bool eof = n <= 0;
        if (n > 0) {
            rc = arb_buf_append(&r->raw, chunk, (size_t)n);
            if (rc != 0)
                return rc;
        }
        rc = reader_step(r, eof);
        if (rc != 0 || r->done)
            return rc;
    }
}

/* Move the finished response into *out. */
static int reader_finish(reader *r, arb_http_response *out)
{
    const char *bytes = r->raw.data != NULL ? r->raw.data : "";
    size_t len = r->framing == FRAMING_LENGTH ? r->content_length : r->raw.len;
    if (r->framing == FRAMING_NONE)
        len = 0;
    if (r->framing == FRAMING_CHUNKED) {
        bytes = r->body.data != NULL ? r->body.data : "";
        len = r->body.len;
    }
    out->body = malloc(len + 1);
    if (out->body == NULL)
        return ARB_ENOMEM;
    memcpy(out->body, bytes, len);
    out->body[len] = '\0';
    out->body_len = len;
    out->status = r->status;
    out->headers = r->headers;
    r->headers = NULL;
    return 0;
}

static int exchange(const char *host, int port, const char *request, size_t len, bool head_request,
                    int timeout_ms, arb_http_response *out)
{
    ARB_ASSERT(timeout_ms > 0);
    int64_t deadline_ms = now_ms() + timeout_ms;
    int fd = -1;
    int rc = connect_host(host, port, deadline_ms, &fd);
    if (rc != 0)
        return rc;
    reader r = {.head_request = head_request};
    arb_buf_init(&r.raw, ARB_HTTP_CLIENT_HEAD_BYTES_MAX + ARB_HTTP_CLIENT_BODY_BYTES_MAX +
                             CHUNK_LINE_BYTES_MAX);
    arb_buf_init(&r.body, ARB_HTTP_CLIENT_BODY_BYTES_MAX);
    rc = send_all(fd, request, len, deadline_ms);
    if (rc == 0)
        rc = receive_response(&r, fd, deadline_ms);
    if (rc == 0)
        rc = reader_finish(&r, out);
    close(fd);
    free(r.headers);
    arb_buf_free(&r.raw);
    arb_buf_free(&r.body);
    return rc;
}

static bool valid_method(const char *method)
{
    size_t len = strnlen(method, METHOD_BYTES_MAX + 1);
    if (len == 0 || len > METHOD_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (method[i] < 'A' || method[i] > 'Z')
            return false;
    return true;
}

/* "Name: value\r\n" lines, each with a token name, no bare CR or LF, no
 * empty line (which would end the head early). */
static bool valid_extra_headers(const char *text)
{
    size_t len = strnlen(text, ARB_HTTP_CLIENT_HEAD_BYTES_MAX + 1);
    if (len > ARB_HTTP_CLIENT_HEAD_BYTES_MAX)
        return false;
    for (size_t at = 0; at < len;) {
        const char *line = text + at;
        const char *eol = find_crlf(line, len - at);
        if (eol == NULL)
            return false;
        size_t line_len = (size_t)(eol - line), name_len = 0;
        while (name_len < line_len && is_token_char(line[name_len]))
            name_len++;
        if (name_len == 0 || name_len == line_len || line[name_len] != ':')
            return false;
        for (size_t i = name_len; i < line_len; i++)
            if (line[i] == '\r' || line[i] == '\n')
                return false;
        at += line_len + 2;
    }
    return true;
}

static int build_request(arb_buf *request, const arb_url *url, const char *method,
                         const char *extra_headers, const char *body, size_t body_len)
{
    bool ipv6 = strchr(url->host, ':') != NULL;
    char host[ARB_URL_HOST_BYTES_MAX + 16];
    if (url->port == 80)
        snprintf(host, sizeof host, "%s%s%s", ipv6 ? "[" : "", url->host, ipv6 ? "]" : "");
    else
        snprintf(host, sizeof host, "%s%s%s:%d", ipv6 ? "[" : "", url->host, ipv6 ? "]" : "",
                 url->port);
    const char *parts[] = {
        method, " ", url->target, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof parts / sizeof parts[0]; i++)
        rc = arb_buf_append_str(request, parts[i]);
    if (rc == 0 && body != NULL) {
        rc = arb_buf_append_str(request, "Content-Length: ");
        if (rc == 0)
            rc = arb_buf_append_u64(request, body_len);
        if (rc == 0)
            rc = arb_buf_append_str(request, "\r\n");
    }
    if (rc == 0 && extra_headers != NULL)
        rc = arb_buf_append_str(request, extra_headers);
    if (rc == 0)
        rc = arb_buf_append_str(request, "\r\n");
    if (rc == 0 && body != NULL)
        rc = arb_buf_append(request, body, body_len);
    return rc;
}

int arb_http_request(const char *url, const char *method, const char *extra_headers,
                     const char *body, size_t body_len, int timeout_ms, arb_http_response *out)
{
    ARB_ASSERT(out != NULL && method != NULL);
    memset(out, 0, sizeof *out);
    ARB_ASSERT(body != NULL || body_len == 0);
    arb_url parsed;
    int rc = arb_url_parse(url, &parsed);
    if (rc != 0 || strcmp(parsed.scheme, "http") != 0 || !valid_method(method) || timeout_ms <= 0 ||
        (extra_headers != NULL && !valid_extra_headers(extra_headers)))
        return ARB_EINVALID_ARGUMENT;
    if (body_len > ARB_HTTP_CLIENT_BODY_BYTES_MAX)
        return ARB_ETOO_LARGE;
    arb_buf request;
    arb_buf_init(&request, ARB_URL_BYTES_MAX + 2 * ARB_HTTP_CLIENT_HEAD_BYTES_MAX + body_len);
    rc = build_request(&request, &parsed, method, extra_headers, body, body_len);
    if (rc == 0)
        rc = exchange(parsed.host, parsed.port, request.data, request.len,
                      strcmp(method, "HEAD") == 0, timeout_ms, out);
    arb_buf_free(&request);
    if (rc != 0)
        arb_log(ARB_LOG_DEBUG, "http request failed", "method=%s url=\"%s\" code=%s", method, url,
                arb_err_name(rc));
    return rc;
}

int arb_http_raw(const char *host, int port, const void *request_bytes, size_t len, int timeout_ms,
                 arb_http_response *out)
{
    ARB_ASSERT(out != NULL && (request_bytes != NULL || len == 0));
    memset(out, 0, sizeof *out);
    if (host == NULL || host[0] == '\0' ||
        strnlen(host, ARB_URL_HOST_BYTES_MAX + 1) > ARB_URL_HOST_BYTES_MAX || port < 1 ||
        port > 65535 || timeout_ms <= 0)
        return ARB_EINVALID_ARGUMENT;
    return exchange(host, port, request_bytes, len, false, timeout_ms, out);
}

const char *arb_http_header(const arb_http_response *r, const char *name, char *buf, size_t size)
{
    ARB_ASSERT(r != NULL && name != NULL && buf != NULL);
    if (r->headers == NULL || size == 0)
        return NULL;
    size_t name_len = strlen(name);
    const char *line = strstr(r->headers, "\r\n"); /* skip the status line */
    while (line != NULL && line[2] != '\0') {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        ARB_ASSERT(eol != NULL); /* every stored line ends in CRLF */
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *value = line + name_len + 1;
            while (value < eol && (*value == ' ' || *value == '\t'))
                value++;
            const char *end = eol;
            while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            size_t len = (size_t)(end - value);
            if (len + 1 > size)
                return NULL;
            memcpy(buf, value, len);
            buf[len] = '\0';
            return buf;
        }
        line = eol;
    }
    return NULL;
}

void arb_http_response_clear(arb_http_response *r)
{
    if (r == NULL)
        return;
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}
