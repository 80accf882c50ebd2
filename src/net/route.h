/*
 * route.h - the pure parsing behind the HTTP API: which route a method and
 * path name, and the numbers of query arguments and headers. No lws, no
 * I/O: the fuzz target fuzz/http_route_fuzz.c drives these directly.
 *
 * Every function reads NUL-terminated input of any length and content,
 * writes only through its *_out parameters (within the sizes given), and
 * either succeeds or returns a negative code with the outputs unspecified.
 */
#ifndef ARB_NET_ROUTE_H
#define ARB_NET_ROUTE_H

#include <stddef.h>
#include <stdint.h>

typedef enum arb_route {
    ARB_ROUTE_NONE = 0,
    ARB_ROUTE_HEALTHZ,  /* GET /healthz */
    ARB_ROUTE_METRICS,  /* GET /metrics */
    ARB_ROUTE_STREAMS,  /* GET /v1/streams */
    ARB_ROUTE_STATE,    /* GET /v1/streams/{stream} */
    ARB_ROUTE_EVENTS,   /* GET /v1/streams/{stream}/events */
    ARB_ROUTE_COMMANDS, /* POST /v1/streams/{stream}/commands */
    ARB_ROUTE_SYNC,     /* POST /v1/sync */
    ARB_ROUTE_HAND,     /* GET /v1/streams/{stream}/hands/{n} */
} arb_route;

typedef enum arb_method {
    ARB_METHOD_OTHER = 0,
    ARB_METHOD_GET,
    ARB_METHOD_POST,
} arb_method;

/* The route of method + path (already percent-decoded), and its stream
 * (copied into stream[0..stream_size), "" when none). Returns 0,
 * ARB_ENOTFOUND (no such route: 404), ARB_EUSAGE (the path exists, the
 * method does not: 405), ARB_ETOO_LARGE (stream name over its bound: 414)
 * or ARB_EINVALID_STREAM (not KIND:NAME: 400). */
int arb_route_parse(arb_method method, const char *path, arb_route *route_out, char *stream,
                    size_t stream_size);

/* The hand number n of a path that arb_route_parse found to be
 * ARB_ROUTE_HAND: a decimal integer from 1 to 2^53-1, as arb_route_decimal
 * reads it. 0 or ARB_EINVALID_ARGUMENT (empty, "0", "-1", "01", too large,
 * anything but digits, a further segment). */
int arb_route_hand(const char *path, uint64_t *hand_out);

/* A decimal integer in [min, max] with nothing around it (no sign, no
 * space, no leading zero but "0" itself). 0 or ARB_EINVALID_ARGUMENT. */
int arb_route_decimal(const char *text, uint64_t min, uint64_t max, uint64_t *value_out);

/* An If-None-Match value naming a version: "42", "\"42\"" or W/"42".
 * 0 or ARB_EINVALID_ARGUMENT (anything else, "*" included). */
int arb_route_etag(const char *text, uint64_t *version_out);

#endif
