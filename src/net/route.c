/*
 * route.c - the HTTP API's routes and the numbers in its requests; see
 * route.h. Pure and bounded: every loop walks its input once.
 */
#include "net/route.h"

#include <string.h>

#include "arbiter/error.h"
#include "arbiter/limits.h"
#include "core/assert.h"

int arb_route_decimal(const char *text, uint64_t min, uint64_t max, uint64_t *value_out)
{
    ARB_ASSERT(text != NULL && min <= max);
    size_t len = strlen(text);
    if (len == 0 || len > 20 || (len > 1 && text[0] == '0'))
        return ARB_EINVALID_ARGUMENT;
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return ARB_EINVALID_ARGUMENT;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return ARB_EINVALID_ARGUMENT;
        value = value * 10 + digit;
    }
    if (value < min || value > max)
        return ARB_EINVALID_ARGUMENT;
    *value_out = value;
    return 0;
}

int arb_route_etag(const char *text, uint64_t *version_out)
{
    ARB_ASSERT(text != NULL);
    char digits[24];
    if (strncmp(text, "W/", 2) == 0)
        text += 2;
    size_t len = strlen(text);
    if (len >= 2 && text[0] == '"' && text[len - 1] == '"') {
        text++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof digits)
        return ARB_EINVALID_ARGUMENT;
    memcpy(digits, text, len);
    digits[len] = '\0';
    return arb_route_decimal(digits, 0, (uint64_t)ARB_JSON_INT_MAX, version_out);
}

/* A stream name: KIND:NAME, both non-empty, within the bounds. */
static int copy_stream(const char *name, size_t len, char *stream, size_t stream_size)
{
    if (len > ARB_STREAM_NAME_BYTES_MAX || len >= stream_size)
        return ARB_ETOO_LARGE;
    const char *colon = memchr(name, ':', len);
    if (len == 0 || colon == NULL || colon == name || colon == name + len - 1 ||
        (size_t)(colon - name) > ARB_KIND_BYTES_MAX)
        return ARB_EINVALID_STREAM;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return ARB_EINVALID_STREAM;
    memcpy(stream, name, len);
    stream[len] = '\0';
    return 0;
}

static const char hands_segment[] = "/hands/";

static int want(arb_method method, arb_method wanted, arb_route route, arb_route *route_out)
{
    if (method != wanted)
        return ARB_EUSAGE;
    *route_out = route;
    return 0;
}

int arb_route_parse(arb_method method, const char *path, arb_route *route_out, char *stream,
                    size_t stream_size)
{
    ARB_ASSERT(path != NULL && stream != NULL && stream_size > 0);
    *route_out = ARB_ROUTE_NONE;
    stream[0] = '\0';
    if (strcmp(path, "/healthz") == 0)
        return want(method, ARB_METHOD_GET, ARB_ROUTE_HEALTHZ, route_out);
    if (strcmp(path, "/metrics") == 0)
        return want(method, ARB_METHOD_GET, ARB_ROUTE_METRICS, route_out);
    if (strcmp(path, "/v1/sync") == 0)
        return want(method, ARB_METHOD_POST, ARB_ROUTE_SYNC, route_out);
    if (strcmp(path, "/v1/streams") == 0 || strcmp(path, "/v1/streams/") == 0)
        return want(method, ARB_METHOD_GET, ARB_ROUTE_STREAMS, route_out);
    static const char prefix[] = "/v1/streams/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return ARB_ENOTFOUND;
    const char *name = path + sizeof prefix - 1;
    const char *slash = strchr(name, '/');
    size_t name_len = slash != NULL ? (size_t)(slash - name) : strlen(name);
    int rc = copy_stream(name, name_len, stream, stream_size);
    if (rc != 0)
        return rc;
    if (slash == NULL)
        return want(method, ARB_METHOD_GET, ARB_ROUTE_STATE, route_out);
    if (strcmp(slash, "/events") == 0)
        return want(method, ARB_METHOD_GET, ARB_ROUTE_EVENTS, route_out);
    if (strcmp(slash, "/commands") == 0)
        return want(method, ARB_METHOD_POST, ARB_ROUTE_COMMANDS, route_out);
    /* The number is read by arb_route_hand: a bad one is a 400, not a 404. */
    if (strncmp(slash, hands_segment, sizeof hands_segment - 1) == 0)
        return want(method, ARB_METHOD_GET, ARB_ROUTE_HAND, route_out);
    return ARB_ENOTFOUND;
}

int arb_route_hand(const char *path, uint64_t *hand_out)
{
    ARB_ASSERT(path != NULL);
    static const char prefix[] = "/v1/streams/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return ARB_EINVALID_ARGUMENT;
    const char *slash = strchr(path + sizeof prefix - 1, '/');
    if (slash == NULL || strncmp(slash, hands_segment, sizeof hands_segment - 1) != 0)
        return ARB_EINVALID_ARGUMENT;
    return arb_route_decimal(slash + sizeof hands_segment - 1, 1, (uint64_t)ARB_JSON_INT_MAX,
                             hand_out);
}
