/*
 * limits.h - every bound arbiter enforces, in one place, each with its reason.
 *
 * Nothing in arbiter grows without a bound. A value that comes from outside
 * (a name, an argument, a batch) is checked against one of these before it is
 * used, and fixed-size buffers are sized from them. Related bounds are tied
 * together with _Static_assert so that changing one cannot silently break
 * another.
 */
#ifndef ARBITER_LIMITS_H
#define ARBITER_LIMITS_H

/* Names. Fixed-size buffers hold them, so they are short on purpose. */

/* client_id: an opaque identity; 64 is room for a hex ed25519 key. */
#define ARB_CLIENT_ID_BYTES_MAX 64
/* Stream names are KIND:NAME; long enough for a UUID-based name and a kind. */
#define ARB_STREAM_NAME_BYTES_MAX 128
/* The KIND part of a stream name selects a rule module. */
#define ARB_KIND_BYTES_MAX 32
/* Action names and event type names (transfer, hold_expired...). */
#define ARB_ACTION_BYTES_MAX 32
#define ARB_EVENT_TYPE_BYTES_MAX 32
/* Human-readable rejection messages (the code is the stable part). */
#define ARB_MESSAGE_BYTES_MAX 256

/* Proposals. */

/* The canonical JSON of one command's args. Bounds memory per proposal and the
 * size of every event derived from it. */
#define ARB_ARGS_BYTES_MAX (64 * 1024)
/* JSON nesting depth accepted anywhere (jansson recurses on parse). */
#define ARB_JSON_DEPTH_MAX 32
/* Events one decision may produce; a ledger batch produces one per item. */
#define ARB_DECISION_EVENTS_MAX 128
/* The canonical bytes of one event: stream, ids, type and data with room. */
#define ARB_EVENT_BYTES_MAX (ARB_ARGS_BYTES_MAX + 4096)
/* Every integer that enters through JSON must fit a double exactly (2^53-1),
 * so that JavaScript clients read the same number. */
#define ARB_JSON_INT_MAX 9007199254740991LL

/* Engine. */

/* Proposals decided and committed in one store transaction (group commit).
 * Bigger batches amortise fsync further but delay every outcome in them. */
#define ARB_BATCH_PROPOSALS_MAX 1024
/* Events one batch may produce: every proposal deciding its most. The batch
 * scratch starts small and grows towards this only if decisions are large. */
#define ARB_BATCH_EVENTS_MAX (ARB_BATCH_PROPOSALS_MAX * ARB_DECISION_EVENTS_MAX)
/* Streams one engine holds in memory. */
#define ARB_STREAMS_MAX 65536
/* Distinct clients whose highest client_seq the engine keeps in memory. */
#define ARB_CLIENTS_MAX (1 << 20)
/* Pending timers across all streams (hold expiry, turn clocks). Past this the
 * engine stops with a clear error rather than drop a deadline. */
#define ARB_TIMERS_MAX (1 << 22)
/* Timers fired in one tick; the rest wait for the next tick. */
#define ARB_TIMERS_PER_TICK_MAX ARB_BATCH_PROPOSALS_MAX
/* Default events between two snapshots of a stream. Recovery replays at most
 * this many events per stream after the newest snapshot (or more for a large
 * state: see ARB_SNAPSHOT_BYTES_PER_EVENT). */
#define ARB_SNAPSHOT_EVERY_DEFAULT 10000
/* A stream whose last snapshot took B bytes is snapshotted again only after
 * B / this many more events (when that is more than snapshot_every). A
 * snapshot serializes the whole state with the pipeline drained, so its cost
 * grows with the state; this keeps it at most this many bytes per event
 * appended, whatever the state's size (a shop with 200k open reservations, a
 * ledger with a million accounts), and recovery's replay proportional to it. */
#define ARB_SNAPSHOT_BYTES_PER_EVENT 64
/* Snapshots kept per stream (older ones are deleted). */
#define ARB_SNAPSHOTS_KEPT 2
/* A snapshot's JSON text. */
#define ARB_SNAPSHOT_BYTES_MAX (256 * 1024 * 1024)

/* Store. */

/* Idempotency keys the SQLite store keeps in memory (its key tail), in two
 * generations of half this each: the filling one (outcomes committed since
 * the last seal) and the sealed one (sorted, being written into the
 * outcome_keys index a slice per commit). A generation is sealed at the
 * latest when one more batch would not fit in it; a power of two (each
 * generation has a hash table of as many slots). About 110 bytes a key. */
#define ARB_STORE_KEY_TAIL_MAX 65536
/* Keys of the sealed generation one commit writes into outcome_keys: at
 * about 1 us a key, some 2 ms added to a commit. More than a batch brings,
 * so the sealed generation is written out before the filling one is due;
 * should it not be (a short flush interval), the commit that seals the
 * next generation writes the whole rest first (at most half the tail). */
#define ARB_STORE_KEY_SLICE_MAX (2 * ARB_BATCH_PROPOSALS_MAX)

/* Wire (WebSocket messages, docs/protocol.md). */

/* One WebSocket frame, i.e. one message. A propose with the largest args
 * fits with room for whitespace and escapes; a sync batch of big proposals
 * does not, and the client splits it. Bounds the memory of one parse. */
#define ARB_WIRE_FRAME_BYTES_MAX (1024 * 1024)
/* Proposals in one sync message. One sync is decided as one engine batch
 * (so that atomic: true can be all-or-nothing). */
#define ARB_WIRE_SYNC_PROPOSALS_MAX 256
/* Streams one connection may subscribe to at once; each costs a fan-out
 * entry per commit on that stream. */
#define ARB_WIRE_SUBSCRIPTIONS_MAX 64
/* Proposals a connection may have sent and not yet had answered (pipelining
 * depth); past it the server stops reading that connection. */
#define ARB_WIRE_PENDING_PROPOSALS_MAX 1024
/* A ping's nonce, echoed in the pong: room for a UUID or a timestamp. */
#define ARB_WIRE_NONCE_BYTES_MAX 64
/* The field path named by an error reply ("proposals[255].client_seq"); a
 * longer unknown key is cut to this many bytes. */
#define ARB_WIRE_FIELD_BYTES_MAX 64

/* Client SDK (src/client, include/arbiter/client.h). */

/* Proposals one client's outbox holds undecided; past it propose says
 * ARB_ELIMIT. An offline client queues this many. */
#define ARB_CLIENT_OUTBOX_MAX 65536
/* Proposals a client has sent on one connection and not yet had answered:
 * half the server's pipelining depth, so the server never stops reading it. */
#define ARB_CLIENT_INFLIGHT_MAX (ARB_WIRE_PENDING_PROPOSALS_MAX / 2)

/* Network front end (src/net). */

/* Connections (WebSocket and HTTP) served at once; past it new ones are
 * refused at accept. */
#define ARB_NET_CONNECTIONS_MAX 4096
/* Bytes queued for one connection and not yet written. A reader that falls
 * this far behind is closed with a reason (it resumes with subscribe since);
 * the engine never waits for it. */
#define ARB_NET_OUTBOUND_BYTES_MAX (16 * 1024 * 1024)
/* Proposals queued from the network to the engine thread, all connections
 * together; past it proposals get OVERLOADED (HTTP 503). */
#define ARB_NET_QUEUE_PROPOSALS_MAX (64 * 1024)
/* A subscribe with since at most this many events behind gets the missing
 * events as patches; further behind, a snapshot. */
#define ARB_NET_CATCHUP_EVENTS_MAX 1000
/* Seconds without a frame before a WebSocket is closed (a ping counts). */
#define ARB_NET_IDLE_TIMEOUT_S_DEFAULT 60
/* An HTTP request body (a command, a sync). */
#define ARB_HTTP_BODY_BYTES_MAX ARB_WIRE_FRAME_BYTES_MAX
/* Events one GET .../events answers with at most. */
#define ARB_HTTP_EVENTS_LIMIT_MAX 1000
/* Longest long-poll (wait=S) of GET .../events, seconds. */
#define ARB_HTTP_WAIT_S_MAX 60

/* Ledger domain. */

/* Accounts in one ledger stream. */
#define ARB_LEDGER_ACCOUNTS_MAX (1 << 20)
/* Open holds in one ledger stream. */
#define ARB_LEDGER_PENDING_MAX (1 << 20)
/* Captured, voided and expired holds remembered (newest first), so that a
 * late capture gets PENDING_CLOSED or PENDING_EXPIRED rather than
 * PENDING_NOT_FOUND. Older ones are forgotten: memory stays bounded. */
#define ARB_LEDGER_CLOSED_HOLDS_KEPT ARB_LEDGER_PENDING_MAX
/* Items in one linked ledger batch (all-or-nothing). */
#define ARB_LEDGER_BATCH_ITEMS_MAX 64
/* Default maximum of one transfer, in minor units. */
#define ARB_LEDGER_TRANSFER_MAX_DEFAULT 1000000
/* Longest hold, in seconds (30 days). */
#define ARB_LEDGER_HOLD_TIMEOUT_S_MAX (30 * 24 * 3600)
/* Currency codes (ISO 4217 is 3; room for tokens like "POINTS"). */
#define ARB_CURRENCY_BYTES_MAX 16
/* Account ids and owners. */
#define ARB_ACCOUNT_ID_BYTES_MAX 64
/* Transfer memos. */
#define ARB_MEMO_BYTES_MAX 256

/* Inventory domain (shop streams, docs/inventory.md). */

/* Items (skus) in one shop stream. Items are never removed, so this bounds
 * the catalogue's memory (about 400 bytes an item). */
#define ARB_INVENTORY_ITEMS_MAX (1 << 16)
/* Open reservations in one shop stream: checkouts in progress. Each holds
 * its lines inline (16 bytes a line), so the worst case stays a few hundred
 * megabytes. */
#define ARB_INVENTORY_RESERVATIONS_MAX (1 << 18)
/* Confirmed, released and expired reservations remembered (the most
 * recently closed), so that a late confirm answers RESERVATION_EXPIRED or
 * RESERVATION_CLOSED rather than RESERVATION_NOT_FOUND. Older ones are
 * forgotten: memory stays bounded. */
#define ARB_INVENTORY_CLOSED_RESERVATIONS_KEPT ARB_INVENTORY_RESERVATIONS_MAX
/* Lines (distinct skus) of one reserve_cart; one reservation covers them. */
#define ARB_INVENTORY_CART_ITEMS_MAX 32
/* Units of one sku in one reservation line. A reservation is a shopper's
 * checkout, not a warehouse transfer; with the price bound it keeps the
 * total of a full cart an exact JSON integer. */
#define ARB_INVENTORY_RESERVE_QUANTITY_MAX 100000
/* Longest reservation, in seconds (one day). A reservation keeps its units
 * from everyone else, and a checkout takes minutes. */
#define ARB_INVENTORY_TTL_S_MAX (24 * 3600)
/* Largest unit price, in minor units (10,000,000.00 in a currency of cents). */
#define ARB_INVENTORY_PRICE_MAX 1000000000LL
/* SKUs: a product code or a UUID. */
#define ARB_INVENTORY_SKU_BYTES_MAX 64
/* Item display names. */
#define ARB_INVENTORY_NAME_BYTES_MAX 256

/* Streams told of one client's coming or going at a time
 * (arb_engine_presence): a player at more tables than this is not held at
 * the rest (their turn clock still plays for them). */
#define ARB_PRESENCE_STREAMS_MAX 64

/* Poker domain (table streams, docs/poker.md). */

/* Seats at one table: heads-up to a full ring game. The state is a fixed
 * array of this many seats. */
#define ARB_POKER_SEATS_MIN 2
#define ARB_POKER_SEATS_MAX 10
/* Largest blind, ante or buy-in, in chips. Chips on a table never exceed
 * the chips ever bought in, which is kept at most ARB_JSON_INT_MAX
 * (OVERFLOW otherwise). */
#define ARB_POKER_CHIPS_MAX 1000000000000LL
/* Longest turn clock and disconnect grace, seconds. */
#define ARB_POKER_TURN_S_MAX 3600
#define ARB_POKER_GRACE_S_MAX 3600
#define ARB_POKER_GRACE_S_DEFAULT 90
/* Turns in a row the clock plays for a seat (it checks, else folds) before
 * the seat is sat out. */
#define ARB_POKER_TIMEOUTS_SIT_OUT 2
/* How long a server-side bot (docs/poker.md, "Bots") waits before its move,
 * from the start of its turn, ms: quick, but a human can follow it. */
#define ARB_POKER_BOT_DELAY_MS 500
/* The table's name (echoed from create_table). */
#define ARB_POKER_TABLE_NAME_BYTES_MAX 64
/* Events of one hand a hand history reads (hand_started to hand_ended,
 * seating events in between included). A hand of ten seats with blinds,
 * antes, showdown and side pots has some 60; the rest is room for long
 * raising wars. A longer hand is refused (TOO_LARGE), not cut short. */
#define ARB_POKER_HAND_EVENTS_MAX 4096
/* The text of one hand history: a line per event (under 240 bytes: a
 * player's name and a few numbers at most), the seats and the summary. */
#define ARB_POKER_HISTORY_BYTES_MAX (1024 * 1024)
/* Events read at a time while a hand history walks back to its hand. */
#define ARB_POKER_HISTORY_PAGE_EVENTS 256
/* Events the server walks back, newest first, to find a hand (on its
 * engine thread, so bounded: a hand further back is TOO_LARGE over HTTP;
 * `arbiter poker history --data` reads it locally). */
#define ARB_POKER_HISTORY_WALK_EVENTS_MAX 100000
/* The server seed of one hand (the deck is derived from it). */
#define ARB_POKER_SEED_BYTES 32

_Static_assert(ARB_KIND_BYTES_MAX < ARB_STREAM_NAME_BYTES_MAX, "a stream name holds its kind");
_Static_assert(ARB_LEDGER_BATCH_ITEMS_MAX <= ARB_DECISION_EVENTS_MAX,
               "a ledger batch emits one event per item");
_Static_assert(ARB_TIMERS_PER_TICK_MAX <= ARB_BATCH_PROPOSALS_MAX,
               "one tick's timers are one batch");
_Static_assert(ARB_BATCH_EVENTS_MAX >= 2 * ARB_DECISION_EVENTS_MAX,
               "a batch holds at least two full decisions");
_Static_assert((ARB_STORE_KEY_TAIL_MAX & (ARB_STORE_KEY_TAIL_MAX - 1)) == 0,
               "the key tail's hash table has a power-of-two size");
_Static_assert(2 * ARB_BATCH_PROPOSALS_MAX <= ARB_STORE_KEY_TAIL_MAX / 2,
               "a key generation is sealed with room left for a batch's keys");
_Static_assert(ARB_STORE_KEY_SLICE_MAX > ARB_BATCH_PROPOSALS_MAX &&
                   ARB_STORE_KEY_SLICE_MAX <= ARB_STORE_KEY_TAIL_MAX / 2,
               "a slice outpaces a batch and is at most one key generation");
_Static_assert(ARB_ARGS_BYTES_MAX < ARB_EVENT_BYTES_MAX, "an event holds its command's args");
_Static_assert(ARB_WIRE_FRAME_BYTES_MAX >= 2 * ARB_ARGS_BYTES_MAX,
               "a frame holds a propose with the largest args and room for escapes");
_Static_assert(ARB_WIRE_SYNC_PROPOSALS_MAX <= ARB_BATCH_PROPOSALS_MAX,
               "one sync message is decided as one engine batch");
_Static_assert(ARB_WIRE_PENDING_PROPOSALS_MAX <= ARB_BATCH_PROPOSALS_MAX,
               "one connection's pipelined proposals fit in one batch");
_Static_assert(
    ARB_INVENTORY_CART_ITEMS_MAX *ARB_INVENTORY_RESERVE_QUANTITY_MAX *ARB_INVENTORY_PRICE_MAX <=
        ARB_JSON_INT_MAX,
    "the total price of a full cart is an exact JSON integer");
_Static_assert(ARB_INVENTORY_TTL_S_MAX * 1000LL <= ARB_JSON_INT_MAX / 2,
               "an expiry (now + ttl) stays a JSON integer while the clock is below 2^52");
_Static_assert(ARB_INVENTORY_CART_ITEMS_MAX *(6 * ARB_INVENTORY_SKU_BYTES_MAX + 64) +
                       6 * ARB_CLIENT_ID_BYTES_MAX + 256 <=
                   ARB_ARGS_BYTES_MAX,
               "a reserved event of a full cart (every byte escaped as \\u00XX) fits an event");
_Static_assert(6 * (ARB_INVENTORY_SKU_BYTES_MAX + ARB_INVENTORY_NAME_BYTES_MAX) + 256 <=
                   ARB_ARGS_BYTES_MAX,
               "an item_added event (every byte escaped) fits an event");
_Static_assert(2 * ARB_POKER_SEATS_MAX + 8 <= 52,
               "the hole cards, three burns and a board of five come from one deck");
_Static_assert(ARB_POKER_SEATS_MAX *ARB_POKER_CHIPS_MAX <= ARB_JSON_INT_MAX,
               "a full table of the largest buy-ins is an exact JSON integer");
_Static_assert((ARB_POKER_HAND_EVENTS_MAX + 4 * ARB_POKER_SEATS_MAX + 16) * 240 <=
                   ARB_POKER_HISTORY_BYTES_MAX,
               "the history of a hand within the event bound (lines under 240 bytes) fits");
_Static_assert(ARB_POKER_HISTORY_BYTES_MAX <= ARB_WIRE_FRAME_BYTES_MAX,
               "a hand history fits one HTTP answer");

#endif
