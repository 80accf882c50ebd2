/*
 * buf.c - bounded growable buffer (see buf.h).
 *
 * Invariants: len < cap whenever data != NULL (room for the NUL), data[len]
 * == '\0', len <= max.
 */
#include <stdlib.h>
#include <string.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/buf.h"

void arb_buf_init(arb_buf *buf, size_t max)
{
    ARB_ASSERT(max > 0);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->max = max;
}

void arb_buf_free(arb_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void arb_buf_reset(arb_buf *buf)
{
    buf->len = 0;
    if (buf->data != NULL)
        buf->data[0] = '\0';
}

static int buf_reserve(arb_buf *buf, size_t extra)
{
    if (extra > buf->max - buf->len)
        return ARB_ETOO_LARGE;
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return 0;
    size_t cap = buf->cap == 0 ? 256 : buf->cap;
    while (cap < need)
        cap *= 2;
    if (cap > buf->max + 1)
        cap = buf->max + 1;
    char *data = realloc(buf->data, cap);
    if (data == NULL)
        return ARB_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int arb_buf_append(arb_buf *buf, const void *bytes, size_t len)
{
    int rc = buf_reserve(buf, len);
    if (rc != 0)
        return rc;
    if (len > 0)
        memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    ARB_ASSERT(buf->len < buf->cap);
    return 0;
}

int arb_buf_append_str(arb_buf *buf, const char *text)
{
    return arb_buf_append(buf, text, strlen(text));
}

int arb_buf_append_char(arb_buf *buf, char c)
{
    return arb_buf_append(buf, &c, 1);
}

/* Decimal digits without snprintf: this runs several times per event. */
int arb_buf_append_u64(arb_buf *buf, unsigned long long value)
{
    char digits[20];
    size_t n = sizeof digits;
    do {
        ARB_ASSERT(n > 0);
        digits[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    return arb_buf_append(buf, digits + n, sizeof digits - n);
}

int arb_buf_append_i64(arb_buf *buf, long long value)
{
    if (value >= 0)
        return arb_buf_append_u64(buf, (unsigned long long)value);
    size_t len_before = buf->len;
    int rc = arb_buf_append_char(buf, '-');
    /* Negate in unsigned arithmetic: -LLONG_MIN does not fit a long long. */
    if (rc == 0)
        rc = arb_buf_append_u64(buf, 0ULL - (unsigned long long)value);
    if (rc != 0) {
        buf->len = len_before;
        if (buf->data != NULL)
            buf->data[len_before] = '\0';
    }
    return rc;
}
