/*
 * faultfs.h - the counters the faultfs shim (faultfs.c) shares with a test
 * through FAULTFS_STATE: a file of sizeof(faultfs_state) bytes that the test
 * creates and maps, and the shim maps too, inside the process under test.
 *
 * Only the shim writes them (atomically); the test reads them at any time.
 */
#ifndef ARB_TEST_FAULTFS_H
#define ARB_TEST_FAULTFS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct faultfs_state {
    _Atomic uint64_t calls;            /* matching calls so far (op and path) */
    _Atomic uint64_t faults;           /* of which failed */
    _Atomic uint64_t first_fault_call; /* index of the first failed call; 0 none */
} faultfs_state;

#endif
