/*
 * buf.h - a growable byte buffer with a maximum size fixed at creation.
 *
 * Appends past the maximum fail with ARB_ETOO_LARGE and leave the buffer as
 * it was before the append. The contents are always NUL-terminated (the NUL
 * is not counted in len), so text can be handed to C string functions.
 * Ownership: the buffer owns data; arb_buf_free releases it. arb_buf_reset
 * keeps the allocation, so a hot path reuses one buffer without allocating.
 */
#ifndef ARB_BUF_H
#define ARB_BUF_H

#include <stddef.h>

typedef struct arb_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} arb_buf;

void arb_buf_init(arb_buf *buf, size_t max);
void arb_buf_free(arb_buf *buf);
void arb_buf_reset(arb_buf *buf);
int arb_buf_append(arb_buf *buf, const void *bytes, size_t len);
int arb_buf_append_str(arb_buf *buf, const char *text);
int arb_buf_append_char(arb_buf *buf, char c);
int arb_buf_append_u64(arb_buf *buf, unsigned long long value);
int arb_buf_append_i64(arb_buf *buf, long long value);

#endif
