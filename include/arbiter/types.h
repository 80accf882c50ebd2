/*
 * types.h - the nouns of arbiter: principal, command, event, outcome.
 *
 * A client proposes a command; the engine decides it into events (committed)
 * or a rejection; either way the proposer gets exactly one outcome. These
 * structs cross every module boundary, so their ownership rules are stated
 * here once:
 *
 *   - Names are fixed-size arrays inside the struct (bounded by limits.h), so
 *     a struct can be copied and needs no allocation for them.
 *   - A json_t pointer in these structs holds one reference, owned by the
 *     struct; arb_command_clear(), arb_event_clear() and arb_outcome_clear()
 *     drop it. Borrowed pointers are marked "borrowed" with their lifetime.
 */
#ifndef ARBITER_TYPES_H
#define ARBITER_TYPES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/limits.h"

#define ARB_HASH_BYTES 32

/* Who proposes. The role decides what the rules allow. */
typedef enum arb_role {
    ARB_ROLE_USER = 0,   /* an ordinary authenticated client */
    ARB_ROLE_ADMIN = 1,  /* an operator: opens accounts, creates streams */
    ARB_ROLE_SYSTEM = 2, /* the server itself: timers */
} arb_role;

typedef struct arb_principal {
    char id[ARB_CLIENT_ID_BYTES_MAX + 1]; /* the client_id */
    arb_role role;
} arb_principal;

/* A proposal. Never trusted: the engine validates every field. */
typedef struct arb_command {
    arb_principal principal;                    /* who proposes */
    uint64_t client_seq;                        /* with principal.id: the idempotency key */
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1]; /* KIND:NAME */
    char action[ARB_ACTION_BYTES_MAX + 1];      /* the rule module's action name */
    json_t *args;                               /* owned; a JSON object (never NULL once set) */
    bool has_expect;                            /* optimistic concurrency requested */
    uint64_t expect;                            /* the stream version the client saw */
} arb_command;

/* What the server decided happened. Immutable once committed. */
typedef struct arb_event {
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    uint64_t seq; /* 1, 2, 3... per stream, no gaps */
    char type[ARB_EVENT_TYPE_BYTES_MAX + 1];
    json_t *data;                                /* owned; a JSON object */
    char client_id[ARB_CLIENT_ID_BYTES_MAX + 1]; /* the proposer */
    uint64_t client_seq;
    int64_t applied_at_ms;        /* the server's clock, Unix ms */
    uint8_t hash[ARB_HASH_BYTES]; /* BLAKE2b(prev hash || canonical bytes) */
} arb_event;

typedef enum arb_outcome_kind {
    ARB_OUTCOME_COMMITTED = 1,
    ARB_OUTCOME_REJECTED = 2,
} arb_outcome_kind;

/* The one answer every proposal gets. */
typedef struct arb_outcome {
    arb_outcome_kind kind;
    bool replay; /* this is the stored outcome of an earlier send */
    char client_id[ARB_CLIENT_ID_BYTES_MAX + 1];
    uint64_t client_seq;
    char stream[ARB_STREAM_NAME_BYTES_MAX + 1];
    /* committed: the seq range of the events it produced. */
    uint64_t seq_first;
    uint64_t seq_last;
    json_t *result; /* owned; may be NULL */
    /* committed: the events themselves. Borrowed from the engine; valid until
     * the next call into the same engine. NULL with event_count 0 for a replay
     * (read the log for them). */
    const arb_event *events;
    size_t event_count;
    /* rejected: a code from error.h, a message, and details. */
    int code;
    char message[ARB_MESSAGE_BYTES_MAX + 1];
    json_t *details; /* owned; may be NULL */
    /* The stream's version when this outcome was decided. */
    uint64_t version;
} arb_outcome;

/* Set *command to an empty command; args = NULL. */
void arb_command_init(arb_command *command);
/* Drop the args reference; the struct can be reused after arb_command_init. */
void arb_command_clear(arb_command *command);
/* Fill a command from strings; copies the names (returns ARB_ETOO_LARGE or
 * ARB_EINVALID_ARGUMENT when one does not fit) and takes a new reference to
 * args (which must be an object). */
int arb_command_set(arb_command *command, const char *client_id, arb_role role, uint64_t client_seq,
                    const char *stream, const char *action, json_t *args);

void arb_event_clear(arb_event *event);
void arb_outcome_init(arb_outcome *outcome);
void arb_outcome_clear(arb_outcome *outcome);

/* The outcome as JSON, as the CLI prints it and the wire sends it:
 * {"status":"committed","stream","seq_first","seq_last","result",
 *  "events":[...],"replay"} or {"status":"rejected","code","message",
 * "details","version","replay"}. Returns a new reference or NULL on ENOMEM. */
json_t *arb_outcome_to_json(const arb_outcome *outcome);

/* An event as JSON: {"stream","seq","type","data","client_id","client_seq",
 * "applied_at","hash"}. New reference or NULL on ENOMEM. */
json_t *arb_event_to_json(const arb_event *event);

/* Whether name is a stream name, KIND:NAME: KIND is [a-z][a-z0-9_]* of at
 * most ARB_KIND_BYTES_MAX bytes, NAME is [A-Za-z0-9_.-]+, the whole at most
 * ARB_STREAM_NAME_BYTES_MAX. Returns 0 with the KIND copied to kind_out, or
 * ARB_EINVALID_STREAM. */
int arb_stream_name_valid(const char *name, char kind_out[ARB_KIND_BYTES_MAX + 1]);

/* Copy names bounded; returns ARB_ETOO_LARGE when src does not fit. */
int arb_copy_name(char *dst, size_t dst_size, const char *src);

#endif
