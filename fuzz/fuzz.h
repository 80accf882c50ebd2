/*
 * fuzz.h - the fuzz targets' entry points and the byte reader they share.
 *
 * Every parser of outside input has a target here (DESIGN.md §3). Each target
 * is one file, fuzz/<name>_fuzz.c, defining arb_fuzz_<name>(): it takes any
 * bytes, must never crash, leak or hit undefined behaviour, and checks the
 * properties of the code it attacks with ARB_ASSERT (which aborts, so both
 * libFuzzer and the replay test see a failure). The same functions serve two
 * drivers:
 *   - libFuzzer: fuzz/run compiles each file with -DARB_LIBFUZZER, which adds
 *     LLVMFuzzerTestOneInput at its bottom;
 *   - the regression test tests/unit/fuzz/corpus_test.c, which #includes all
 *     the target files into one translation unit and replays every file of
 *     fuzz/corpus/<name>/ through them. So the files define no main, and
 *     their static names carry a per-file prefix so that they do not clash.
 *
 * A target's return value is always 0 (libFuzzer reserves other values).
 */
#ifndef ARB_FUZZ_H
#define ARB_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int arb_fuzz_json(const uint8_t *data, size_t size);
int arb_fuzz_ledger_decide(const uint8_t *data, size_t size);
int arb_fuzz_snapshot(const uint8_t *data, size_t size);
int arb_fuzz_event_canon(const uint8_t *data, size_t size);
int arb_fuzz_wire(const uint8_t *data, size_t size);
int arb_fuzz_http(const uint8_t *data, size_t size);
int arb_fuzz_inventory_decide(const uint8_t *data, size_t size);
int arb_fuzz_inventory_snapshot(const uint8_t *data, size_t size);
int arb_fuzz_client(const uint8_t *data, size_t size);
int arb_fuzz_poker_decide(const uint8_t *data, size_t size);
int arb_fuzz_poker_snapshot(const uint8_t *data, size_t size);
int arb_fuzz_poker_cards(const uint8_t *data, size_t size);

#ifdef ARB_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif

/* Input bytes read front to back. Past the end every read gives zeros, so a
 * target never has to check for the end in the middle of a decision. */
typedef struct arb_fuzz_reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
} arb_fuzz_reader;

static inline void arb_fuzz_reader_init(arb_fuzz_reader *reader, const uint8_t *data, size_t size)
{
    reader->data = data;
    reader->size = size;
    reader->pos = 0;
}

static inline bool arb_fuzz_reader_done(const arb_fuzz_reader *reader)
{
    return reader->pos >= reader->size;
}

static inline size_t arb_fuzz_reader_left(const arb_fuzz_reader *reader)
{
    return reader->pos >= reader->size ? 0 : reader->size - reader->pos;
}

static inline uint8_t arb_fuzz_u8(arb_fuzz_reader *reader)
{
    return reader->pos < reader->size ? reader->data[reader->pos++] : 0;
}

/* Little-endian, so that short inputs give small numbers. */
static inline uint64_t arb_fuzz_u64(arb_fuzz_reader *reader)
{
    uint64_t value = 0;
    for (unsigned i = 0; i < 8; i++)
        value |= (uint64_t)arb_fuzz_u8(reader) << (8 * i);
    return value;
}

/* Up to len bytes (fewer at the end of the input); returns how many. */
static inline size_t arb_fuzz_bytes(arb_fuzz_reader *reader, uint8_t *out, size_t len)
{
    size_t left = arb_fuzz_reader_left(reader);
    size_t n = len < left ? len : left;
    for (size_t i = 0; i < n; i++)
        out[i] = reader->data[reader->pos + i];
    reader->pos += n;
    return n;
}

#endif
