/*
 * sqlite_wal.c - damage in the WAL that SQLite would pass over in silence.
 *
 * SQLite's recovery keeps the WAL up to the last commit before the first
 * frame that fails its checksum, and drops the rest without a word. After a
 * crash that is right: the frames of a commit being written when the power
 * went are torn, and that commit was never acknowledged (every commit is
 * synced before the next begins, synchronous=FULL). But a bad frame with
 * whole, synced commits after it is damage, and dropping those commits
 * would lose acknowledged proposals. So before SQLite opens a database
 * read-write, this scan reads DIR/arbiter.db-wal itself (format:
 * https://www.sqlite.org/fileformat2.html#the_write_ahead_log):
 *
 *   header (32 bytes): magic, version, page size, checkpoint seq, two salts,
 *   and a checksum of the first 24 bytes; then frames, each a 24-byte header
 *   (page number, database size after a commit or 0, the salts, a checksum)
 *   and a page. A frame's checksum covers its first 8 header bytes and its
 *   page, seeded with the previous frame's checksum (the header's for the
 *   first): since every frame stores its checksum, each frame can be checked
 *   on its own, also after a bad one.
 *
 * Frames whose salts are not the header's belong to an older generation of
 * the file (past the end of this one) or are damaged: both count as bad. If
 * a frame is bad and two or more valid commit frames follow it,
 * at least one whole commit - synced, perhaps acknowledged - lies beyond the
 * damage: ARB_ECORRUPT, with where and how much, and the server does not
 * start. One valid commit after the damage can be the torn last commit
 * whose frames reached the disk out of order: that is only logged.
 *
 * Not caught: a WAL cut short (indistinguishable from a torn tail), and a
 * damaged WAL header (SQLite then ignores the whole file). The scan reads
 * the file once, page by page, before the first commit of a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbiter/error.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

#define WAL_HEADER_BYTES 32
#define FRAME_HEADER_BYTES 24
#define WAL_MAGIC_LE 0x377f0682u
#define WAL_MAGIC_BE 0x377f0683u
#define PAGE_BYTES_MAX 65536

typedef struct wal_checksum {
    uint32_t s0, s1;
} wal_checksum;

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* SQLite's WAL checksum over len bytes (a multiple of 8), words read in
 * the byte order the magic names. */
static wal_checksum checksum(wal_checksum sum, const uint8_t *data, size_t len, bool big_endian)
{
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint32_t x0 = big_endian ? get_be32(data + i) : get_le32(data + i);
        uint32_t x1 = big_endian ? get_be32(data + i + 4) : get_le32(data + i + 4);
        sum.s0 += x0 + sum.s1;
        sum.s1 += x1 + sum.s0;
    }
    return sum;
}

static bool read_exactly(int fd, uint8_t *buf, size_t len, off_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, offset + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* What the scan found. */
typedef struct wal_scan {
    long frames;        /* frames read */
    long first_bad;     /* index of the first bad frame, or -1 */
    long valid_commits; /* valid commit frames before the first bad one */
    long commits_after; /* valid commit frames after it */
    uint32_t bad_page;  /* the page the first bad frame names */
} wal_scan;

static void scan_frames(int fd, off_t size, const uint8_t header[WAL_HEADER_BYTES],
                        uint32_t page_bytes, uint8_t *frame, wal_scan *scan)
{
    bool big_endian = get_be32(header) == WAL_MAGIC_BE;
    wal_checksum seed = {get_be32(header + 24), get_be32(header + 28)};
    size_t frame_bytes = FRAME_HEADER_BYTES + (size_t)page_bytes;
    for (off_t at = WAL_HEADER_BYTES; at + (off_t)frame_bytes <= size; at += (off_t)frame_bytes) {
        if (!read_exactly(fd, frame, frame_bytes, at))
            break;
        /* A frame with other salts is bad like one with a bad checksum:
         * it may be damage, or an older generation's frame past the end, in
         * which case no valid frame of this generation follows it. */
        wal_checksum sum = checksum(seed, frame, 8, big_endian);
        sum = checksum(sum, frame + FRAME_HEADER_BYTES, page_bytes, big_endian);
        bool valid = memcmp(frame + 8, header + 16, 8) == 0 && sum.s0 == get_be32(frame + 16) &&
                     sum.s1 == get_be32(frame + 20);
        bool commit = get_be32(frame + 4) != 0;
        if (!valid && scan->first_bad < 0) {
            scan->first_bad = scan->frames;
            scan->bad_page = get_be32(frame);
        } else if (valid && commit) {
            if (scan->first_bad < 0)
                scan->valid_commits++;
            else
                scan->commits_after++;
        }
        scan->frames++;
        /* The next frame is seeded with this one's stored checksum. */
        seed.s0 = get_be32(frame + 16);
        seed.s1 = get_be32(frame + 20);
    }
}

int arb__sqlite_wal_check(const char *db_path, char *why, size_t why_size)
{
    char wal_path[PATH_MAX];
    int n = snprintf(wal_path, sizeof wal_path, "%s-wal", db_path);
    if (n < 0 || (size_t)n >= sizeof wal_path)
        return ARB_EUSAGE;
    int fd = open(wal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : ARB_EIO;
    struct stat info;
    uint8_t header[WAL_HEADER_BYTES];
    int result = 0;
    if (fstat(fd, &info) != 0 || info.st_size < WAL_HEADER_BYTES ||
        !read_exactly(fd, header, sizeof header, 0)) {
        close(fd);
        return 0; /* empty or shorter than a header: SQLite ignores it too */
    }
    uint32_t magic = get_be32(header);
    uint32_t page_bytes = get_be32(header + 8);
    wal_checksum sum = checksum((wal_checksum){0, 0}, header, 24, magic == WAL_MAGIC_BE);
    bool header_valid = (magic == WAL_MAGIC_LE || magic == WAL_MAGIC_BE) && page_bytes >= 512 &&
                        page_bytes <= PAGE_BYTES_MAX && (page_bytes & (page_bytes - 1)) == 0 &&
                        sum.s0 == get_be32(header + 24) && sum.s1 == get_be32(header + 28);
    if (!header_valid) {
        close(fd);
        return 0; /* SQLite ignores such a file; see the header comment */
    }
    uint8_t *frame = malloc(FRAME_HEADER_BYTES + (size_t)page_bytes);
    if (frame == NULL) {
        close(fd);
        return ARB_ENOMEM;
    }
    wal_scan scan = {.first_bad = -1};
    scan_frames(fd, info.st_size, header, page_bytes, frame, &scan);
    free(frame);
    close(fd);
    if (scan.first_bad >= 0 && scan.commits_after >= 2) {
        snprintf(why, why_size,
                 "the WAL is damaged at frame %ld (page %u) of %ld, and %ld whole commits after "
                 "it would be dropped by SQLite's recovery",
                 scan.first_bad + 1, scan.bad_page, scan.frames, scan.commits_after);
        arb_log(ARB_LOG_ERROR, "WAL damaged before committed frames; refusing to open",
                "path=\"%s\" bad_frame=%ld page=%u frames=%ld commits_after=%ld", wal_path,
                scan.first_bad + 1, scan.bad_page, scan.frames, scan.commits_after);
        result = ARB_ECORRUPT;
    } else if (scan.first_bad >= 0) {
        arb_log(ARB_LOG_WARN, "WAL ends in a torn commit; SQLite drops it",
                "path=\"%s\" bad_frame=%ld frames=%ld commits_after=%ld", wal_path,
                scan.first_bad + 1, scan.frames, scan.commits_after);
    }
    return result;
}
