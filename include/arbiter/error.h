/*
 * error.h - the one table of arbiter's error codes.
 *
 * Every failure in arbiter is a negative int from this table. The same table
 * serves two audiences: functions return these codes to their callers, and
 * rejected proposals carry them over the wire by NAME (the upper-case string).
 *
 * Invariants, kept forever:
 *   - A code's number and name never change once released; new codes are only
 *     appended at the end of the table. Clients switch on names.
 *   - Codes are strictly negative; 0 is success (ARB_OK).
 *
 * Columns: enum name, number, wire name, default message.
 */
#ifndef ARBITER_ERROR_H
#define ARBITER_ERROR_H

#define ARB_ERROR_TABLE(X)                                                                         \
    /* Operating errors of the process itself. */                                                  \
    X(ARB_ENOMEM, -1, "OUT_OF_MEMORY", "out of memory")                                            \
    X(ARB_EIO, -2, "IO_ERROR", "input/output error")                                               \
    X(ARB_ECORRUPT, -3, "CORRUPT", "stored data failed an integrity check")                        \
    X(ARB_EBUSY, -4, "BUSY", "the data directory is in use by another process")                    \
    X(ARB_ELIMIT, -5, "LIMIT_EXCEEDED", "a configured bound was exceeded")                         \
    X(ARB_ENOTFOUND, -6, "NOT_FOUND", "not found")                                                 \
    X(ARB_ESCHEMA, -7, "SCHEMA_VERSION", "the data directory has an unsupported schema version")   \
    X(ARB_EUSAGE, -8, "USAGE", "invalid usage")                                                    \
    /* Malformed proposals: the input itself is wrong. */                                          \
    X(ARB_EMALFORMED, -20, "MALFORMED", "the message is not well-formed")                          \
    X(ARB_EINVALID_ARGUMENT, -21, "INVALID_ARGUMENT",                                              \
      "an argument is missing or has a wrong type")                                                \
    X(ARB_EINVALID_STREAM, -22, "INVALID_STREAM", "stream names are KIND:NAME")                    \
    X(ARB_EUNKNOWN_KIND, -23, "UNKNOWN_KIND", "no rule module handles this stream kind")           \
    X(ARB_ESTREAM_NOT_FOUND, -24, "STREAM_NOT_FOUND", "the stream does not exist")                 \
    X(ARB_EUNKNOWN_ACTION, -25, "UNKNOWN_ACTION", "the stream's rules have no such action")        \
    X(ARB_ETOO_LARGE, -26, "TOO_LARGE", "the message exceeds a size limit")                        \
    /* Engine-level rejections. */                                                                 \
    X(ARB_EVERSION_CONFLICT, -40, "VERSION_CONFLICT",                                              \
      "the stream changed since the expected version")                                             \
    X(ARB_EIDEMPOTENCY_KEY_REUSED, -41, "IDEMPOTENCY_KEY_REUSED",                                  \
      "this client_seq was already used for a different proposal")                                 \
    X(ARB_EFORBIDDEN, -42, "FORBIDDEN", "the principal may not do this")                           \
    X(ARB_EOVERLOADED, -43, "OVERLOADED", "the server is overloaded; retry later")                 \
    /* Ledger rules. */                                                                            \
    X(ARB_EINVALID_AMOUNT, -60, "INVALID_AMOUNT",                                                  \
      "amounts are positive integers in minor units, at most 2^53-1")                              \
    X(ARB_EACCOUNT_NOT_FOUND, -61, "ACCOUNT_NOT_FOUND", "no such account")                         \
    X(ARB_ESELF_TRANSFER, -62, "SELF_TRANSFER", "source and destination are the same account")     \
    X(ARB_ECURRENCY_MISMATCH, -63, "CURRENCY_MISMATCH", "the accounts hold different currencies")  \
    X(ARB_EINSUFFICIENT_FUNDS, -64, "INSUFFICIENT_FUNDS",                                          \
      "the account's available funds do not cover the amount")                                     \
    X(ARB_EEXCEEDS_LIMIT, -65, "EXCEEDS_LIMIT",                                                    \
      "the amount exceeds the ledger's per-transfer maximum")                                      \
    X(ARB_EOVERFLOW, -66, "OVERFLOW", "a balance would exceed 2^53-1")                             \
    X(ARB_EACCOUNT_EXISTS, -67, "ACCOUNT_EXISTS", "an account with this id already exists")        \
    X(ARB_EPENDING_NOT_FOUND, -68, "PENDING_NOT_FOUND", "no such pending hold")                    \
    X(ARB_EPENDING_EXPIRED, -69, "PENDING_EXPIRED", "the hold expired and was voided")             \
    X(ARB_EPENDING_CLOSED, -70, "PENDING_CLOSED", "the hold was already captured or voided")       \
    X(ARB_ETOO_MANY_PENDING, -71, "TOO_MANY_PENDING", "the ledger holds too many pending holds")   \
    X(ARB_ETOO_MANY_ACCOUNTS, -72, "TOO_MANY_ACCOUNTS", "the ledger holds too many accounts")      \
    /* The wire (docs/protocol.md, "WebSocket messages"). */                                       \
    X(ARB_EUNSUPPORTED_VERSION, -27, "UNSUPPORTED_VERSION",                                        \
      "the server does not speak this protocol version")                                           \
    X(ARB_EUNKNOWN_MESSAGE, -28, "UNKNOWN_MESSAGE", "no such message type")                        \
    X(ARB_ENOT_AUTHENTICATED, -29, "NOT_AUTHENTICATED", "send hello before any other message")     \
    X(ARB_EABORTED, -30, "ABORTED",                                                                \
      "not applied: another proposal of the atomic batch was rejected")                            \
    X(ARB_ESHUTTING_DOWN, -31, "SHUTTING_DOWN", "the server is shutting down; retry elsewhere")    \
    X(ARB_ETIMEOUT, -9, "TIMEOUT", "the operation timed out")                                      \
    X(ARB_ECLOSED, -10, "CLOSED", "the connection is closed")                                      \
    /* Inventory rules (docs/inventory.md). */                                                     \
    X(ARB_EITEM_NOT_FOUND, -80, "ITEM_NOT_FOUND", "no such item")                                  \
    X(ARB_EINVALID_QUANTITY, -81, "INVALID_QUANTITY",                                              \
      "quantities are integers within the documented bounds")                                      \
    X(ARB_ESOLD_OUT, -82, "SOLD_OUT", "not enough units of the item are available")                \
    X(ARB_ERESERVATION_NOT_FOUND, -83, "RESERVATION_NOT_FOUND", "no such reservation")             \
    X(ARB_ERESERVATION_EXPIRED, -84, "RESERVATION_EXPIRED",                                        \
      "the reservation expired and its units were released")                                       \
    X(ARB_ENOT_RESERVATION_OWNER, -85, "NOT_RESERVATION_OWNER",                                    \
      "only the principal that made the reservation may do this")                                  \
    X(ARB_EITEM_EXISTS, -86, "ITEM_EXISTS", "an item with this sku already exists")                \
    X(ARB_ERESERVATION_CLOSED, -87, "RESERVATION_CLOSED",                                          \
      "the reservation was already confirmed or released")                                         \
    /* Poker table rules (docs/poker.md). */                                                       \
    X(ARB_EILLEGAL_TURN, -88, "ILLEGAL_TURN", "it is not this seat's turn to act")                 \
    X(ARB_EILLEGAL_ACTION, -89, "ILLEGAL_ACTION", "the action is not legal at this point")         \
    X(ARB_EINSUFFICIENT_STACK, -90, "INSUFFICIENT_STACK", "the stack does not cover the amount")   \
    X(ARB_EBELOW_MIN_RAISE, -91, "BELOW_MIN_RAISE",                                                \
      "a bet or raise must be at least the minimum raise")                                         \
    X(ARB_ENOT_SEATED, -92, "NOT_SEATED", "the principal has no seat at this table")               \
    X(ARB_ESEAT_TAKEN, -93, "SEAT_TAKEN", "the seat is occupied")                                  \
    X(ARB_ETABLE_FULL, -94, "TABLE_FULL", "every seat is occupied")                                \
    X(ARB_EBUY_IN_OUT_OF_RANGE, -95, "BUY_IN_OUT_OF_RANGE",                                        \
      "the buy-in is outside the table's range")                                                   \
    X(ARB_EHAND_IN_PROGRESS, -96, "HAND_IN_PROGRESS", "not while the seat is in a hand")           \
    X(ARB_EUNPREDICTABLE, -97, "UNPREDICTABLE",                                                    \
      "the outcome needs the server's cards or randomness")                                        \
    X(ARB_ETABLE_NOT_CREATED, -98, "TABLE_NOT_CREATED", "the table has not been created")          \
    X(ARB_ETABLE_EXISTS, -99, "TABLE_EXISTS", "the table was already created")                     \
    X(ARB_EALREADY_SEATED, -100, "ALREADY_SEATED", "the principal already has a seat here")

enum arb_error {
    ARB_OK = 0,
#define ARB__ERROR_ENUM(name, number, wire, message) name = (number),
    ARB_ERROR_TABLE(ARB__ERROR_ENUM)
#undef ARB__ERROR_ENUM
};

/* The stable wire name of a code ("INSUFFICIENT_FUNDS"); "OK" for 0 and
 * "UNKNOWN_ERROR" for a number not in the table. Static storage. */
const char *arb_err_name(int code);

/* The default human message of a code. Static storage. */
const char *arb_err_message(int code);

/* The code with the given wire name, or 0 if there is none. */
int arb_err_from_name(const char *name);

#endif
