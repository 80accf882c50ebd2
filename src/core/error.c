/*
 * error.c - names and messages of the error table (include/arbiter/error.h).
 *
 * Generated from the one X-macro table, so a code, its name and its message
 * can never drift apart.
 */
#include <string.h>

#include "arbiter/error.h"

const char *arb_err_name(int code)
{
    switch (code) {
    case ARB_OK:
        return "OK";
#define ARB__ERROR_NAME(name, number, wire, message)                                               \
    case name:                                                                                     \
        return wire;
        ARB_ERROR_TABLE(ARB__ERROR_NAME)
#undef ARB__ERROR_NAME
    default:
        return "UNKNOWN_ERROR";
    }
}

const char *arb_err_message(int code)
{
    switch (code) {
    case ARB_OK:
        return "success";
#define ARB__ERROR_MESSAGE(name, number, wire, message)                                            \
    case name:                                                                                     \
        return message;
        ARB_ERROR_TABLE(ARB__ERROR_MESSAGE)
#undef ARB__ERROR_MESSAGE
    default:
        return "unknown error";
    }
}

int arb_err_from_name(const char *name)
{
#define ARB__ERROR_LOOKUP(name_, number, wire, message)                                            \
    if (strcmp(name, wire) == 0)                                                                   \
        return name_;
    ARB_ERROR_TABLE(ARB__ERROR_LOOKUP)
#undef ARB__ERROR_LOOKUP
    return 0;
}
