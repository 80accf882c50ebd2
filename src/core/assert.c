/*
 * assert.c - the failure path of ARB_ASSERT: print where, then abort so that
 * a core dump (or the sanitizer) shows the stack.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/assert.h"

void arb__assert_fail(const char *expression, const char *file, int line)
{
    fprintf(stderr, "arbiter: assertion failed: %s (%s:%d)\n", expression, file, line);
    fflush(stderr);
    abort();
}
