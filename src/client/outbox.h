/*
 * outbox.h - the client SDK's persisted outbox: a small SQLite file (WAL,
 * synchronous=FULL) holding the client's undecided proposals, its client_seq
 * counter, and the last confirmed state of each stream it follows.
 *
 * A proposal is on disk, with the counter that numbered it, when
 * arb__outbox_add returns; it leaves only through arb__outbox_remove, when
 * the server's verdict arrived. So a crash of the application loses no
 * proposal and never reuses a client_seq. A new file starts its counter at
 * the clock in microseconds: above anything an earlier file of the same
 * client_id can have issued (it would have had to propose a million times a
 * second since it began).
 *
 * The file is the client's outside input on restart: every row is checked
 * (types, names, args as integer-only JSON objects, the owner client_id)
 * and a file that fails is ARB_ECORRUPT, never half loaded.
 *
 * Ownership: the arb__outbox is the SDK's; rows handed to the load callbacks
 * are borrowed for the call (args: the callback takes its own reference).
 */
#ifndef ARB_CLIENT_OUTBOX_H
#define ARB_CLIENT_OUTBOX_H

#include <stdint.h>

#include "arbiter/client.h"
#include "arbiter/types.h"

typedef struct arb__outbox arb__outbox;

/* Open or create path (NULL: in memory) for client_id. 0, ARB_EIO (cannot
 * open or write), ARB_ECORRUPT (not an outbox, or another client's),
 * ARB_ENOMEM. */
int arb__outbox_open(const char *path, const char *client_id, arb__outbox **out);
void arb__outbox_close(arb__outbox *outbox);

/* Take the next client_seq and store command (its client_seq is set) with
 * policy, in one transaction. 0 or ARB_EIO (nothing stored, no seq taken). */
int arb__outbox_add(arb__outbox *outbox, arb_command *command, arb_policy policy);
/* Forget a decided proposal. 0 or ARB_EIO. */
int arb__outbox_remove(arb__outbox *outbox, uint64_t client_seq);

/* Every stored proposal, oldest first: each (with its own args reference)
 * goes to each(user, command, policy), which returns 0 or an error that
 * stops the walk and is returned. ARB_ECORRUPT for a malformed row. */
int arb__outbox_each_proposal(arb__outbox *outbox,
                              int (*each)(void *user, arb_command *command, arb_policy policy),
                              void *user);

/* The confirmed state of stream at seq (view is this client's view JSON),
 * kept so that a restart shows it at once. save replaces any earlier one;
 * forget drops it. 0 or ARB_EIO / ARB_ENOMEM. */
int arb__outbox_save_view(arb__outbox *outbox, const char *stream, uint64_t seq,
                          const json_t *view);
int arb__outbox_forget_view(arb__outbox *outbox, const char *stream);
/* The saved view of stream: 0 with *view_out (new reference) and *seq_out,
 * ARB_ENOTFOUND, ARB_ECORRUPT or ARB_ENOMEM. */
int arb__outbox_load_view(arb__outbox *outbox, const char *stream, uint64_t *seq_out,
                          json_t **view_out);

#endif
