/*
 * canon.h - canonical JSON bytes and the event hash chain.
 *
 * Canonical JSON is the one byte form of a value: what is hashed, what is
 * stored, and (later) what is signed. The rules, which another language can
 * implement from docs/protocol.md:
 *   - no whitespace; object keys sorted by their UTF-8 bytes; no duplicate keys
 *   - integers in decimal, in [-(2^53-1), 2^53-1]; no fractions, no exponents
 *     (a real number is ARB_EINVALID_ARGUMENT)
 *   - strings: '"' and '\' escaped as \" and \\; \b \f \n \r \t; other bytes
 *     below 0x20 as \u00XX (lower-case hex); everything else as raw UTF-8
 *   - true, false, null
 *   - nesting at most ARB_JSON_DEPTH_MAX
 *
 * An event's canonical bytes are the canonical JSON of the object
 *   {"applied_at","client_id","client_seq","data","seq","stream","type"}
 * and its hash is BLAKE2b-256(previous event's hash || those bytes), with 32
 * zero bytes before the first event of a stream.
 */
#ifndef ARB_CANON_H
#define ARB_CANON_H

#include <jansson.h>
#include <stdint.h>

#include "arbiter/types.h"
#include "core/buf.h"

/* Append the canonical JSON of value to buf. ARB_EINVALID_ARGUMENT for a real
 * or out-of-range integer or too deep nesting, ARB_ETOO_LARGE past buf's max. */
int arb_canon_json(arb_buf *buf, const json_t *value);

/* Append an event's canonical bytes, with its data given as canonical text
 * (from arb_canon_json). */
int arb_canon_event(arb_buf *buf, const arb_event *event, const char *data_canon,
                    size_t data_canon_len);

/* hash_out = BLAKE2b-256(prev || bytes). */
void arb_hash_chain(const uint8_t prev[ARB_HASH_BYTES], const void *bytes, size_t len,
                    uint8_t hash_out[ARB_HASH_BYTES]);

/* hash_out = BLAKE2b-256(bytes). */
void arb_hash(const void *bytes, size_t len, uint8_t hash_out[ARB_HASH_BYTES]);

/* Lower-case hex of a hash into out (65 bytes with the NUL). */
void arb_hash_hex(const uint8_t hash[ARB_HASH_BYTES], char out[2 * ARB_HASH_BYTES + 1]);

/* Parse JSON text strictly (bounded by max_bytes and ARB_JSON_DEPTH_MAX;
 * rejects NUL bytes inside strings and duplicate keys). On failure returns
 * ARB_EMALFORMED or ARB_ETOO_LARGE and writes a sentence with the position
 * into why. *value_out is a new reference. */
int arb_json_parse(const char *text, size_t len, size_t max_bytes, json_t **value_out, char *why,
                   size_t why_size);

#endif
