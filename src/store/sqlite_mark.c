/*
 * sqlite_mark.c - the high-water mark: how far the log is known to have
 * been committed, kept outside SQLite.
 *
 * SQLite cannot tell a WAL cut short, or an emptied database file, from a
 * crash before the last commits: it opens what is left, and commits that
 * were synced and acknowledged would be gone without a word. So after every
 * commit the writer records the rowid of its last outcome row in DIR/MARK
 * (one 64-byte pwrite, not synced: the mark only ever lags the log, never
 * leads it, because it is written after the commit is durable; after a power
 * loss it may be older, which only weakens the check). At open, and in
 * arbiter verify, the log must reach the mark: an outcomes table whose
 * highest rowid is below it has lost acknowledged outcomes, and the store
 * refuses to open (ARB_ECORRUPT) naming both numbers.
 *
 * The mark is read before SQLite is opened, so a reader beside a running
 * writer compares an older mark with a newer log, never the reverse. A
 * missing mark (a new directory, or a log from before the mark) or one that
 * does not parse is not checked (logged). Restoring an older copy of a data
 * directory on purpose means deleting its MARK, as the message says.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arbiter/error.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

#define MARK_BYTES 64
#define MARK_FORMAT "arbiter mark v1 outcome_rowid %" PRId64 "\n"

int arb__mark_open(arb__sqlite_store *store, const char *dir)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/MARK", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return ARB_EUSAGE;
    store->mark_rowid = -1;
    bool writer = store->mode == ARB_STORE_READ_WRITE;
    int fd = open(path, (writer ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == ENOENT && !writer)
            return 0;
        arb_log(ARB_LOG_ERROR, "cannot open the mark", "path=\"%s\" errno=\"%s\"", path,
                strerror(errno));
        return ARB_EIO;
    }
    char text[MARK_BYTES + 1] = "";
    ssize_t got = pread(fd, text, MARK_BYTES, 0);
    int64_t rowid = -1;
    if (got > 0) {
        text[got] = '\0';
        char tail = '\0';
        if (sscanf(text, "arbiter mark v1 outcome_rowid %" SCNd64 "%c", &rowid, &tail) != 2 ||
            tail != '\n' || rowid < 0) {
            arb_log(ARB_LOG_WARN, "the mark does not parse; not checked", "path=\"%s\"", path);
            rowid = -1;
        }
    }
    store->mark_rowid = rowid;
    if (writer)
        store->mark_fd = fd;
    else
        close(fd);
    return 0;
}

void arb__mark_close(arb__sqlite_store *store)
{
    if (store->mark_fd >= 0)
        close(store->mark_fd);
    store->mark_fd = -1;
}

void arb__mark_write(arb__sqlite_store *store, int64_t outcome_rowid)
{
    if (store->mark_fd < 0 || outcome_rowid <= store->mark_rowid)
        return;
    char text[MARK_BYTES];
    memset(text, ' ', sizeof text);
    int n = snprintf(text, sizeof text, MARK_FORMAT, outcome_rowid);
    if (n < 0 || n >= MARK_BYTES)
        return;
    text[n] = ' '; /* padded with blanks after the newline, to a fixed size */
    text[MARK_BYTES - 1] = '\n';
    if (pwrite(store->mark_fd, text, sizeof text, 0) != (ssize_t)sizeof text) {
        arb_log(ARB_LOG_WARN, "cannot write the mark", "path=\"%s\" errno=\"%s\"", store->db_path,
                strerror(errno));
        return;
    }
    store->mark_rowid = outcome_rowid;
}

int arb__mark_check(arb__sqlite_store *store, char *why, size_t why_size)
{
    if (store->mark_rowid < 0)
        return 0;
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(store->db, "SELECT COALESCE(MAX(rowid), 0) FROM outcomes", -1,
                                &statement, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(statement);
    int64_t highest = rc == SQLITE_ROW ? sqlite3_column_int64(statement, 0) : 0;
    sqlite3_finalize(statement);
    if (rc != SQLITE_ROW) {
        int result = arb__sqlite_fail(store->db, rc, "read the highest outcome", store->db_path);
        snprintf(why, why_size, "cannot read the log's last outcome: %s", arb_err_message(result));
        return result;
    }
    if (highest >= store->mark_rowid)
        return 0;
    snprintf(why, why_size,
             "the log ends at outcome %" PRId64 " but outcomes up to %" PRId64
             " were committed (MARK): acknowledged commits are missing (a damaged or cut-short "
             "database or WAL). To open an older copy on purpose, delete its MARK file",
             highest, store->mark_rowid);
    arb_log(ARB_LOG_ERROR, "the log is behind its mark",
            "path=\"%s\" highest=%" PRId64 " mark=%" PRId64, store->db_path, highest,
            store->mark_rowid);
    return ARB_ECORRUPT;
}
