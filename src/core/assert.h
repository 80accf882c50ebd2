/*
 * assert.h - ARB_ASSERT: an always-on assertion for programmer errors.
 *
 * Unlike assert(3) it is never compiled out: a broken invariant in a system
 * that acknowledges money movements must stop the process, with file and
 * line, rather than go on and write wrong data. Operating errors (bad input,
 * full disk) are never asserted; they are returned as error codes.
 */
#ifndef ARB_ASSERT_H
#define ARB_ASSERT_H

_Noreturn void arb__assert_fail(const char *expression, const char *file, int line);

#define ARB_ASSERT(expression)                                                                     \
    ((expression) ? (void)0 : arb__assert_fail(#expression, __FILE__, __LINE__))

#endif
