/*
 * sqlite.c - the embedded SQLite store: open, schema, close.
 *
 * A data directory DIR holds DIR/arbiter.db (WAL mode, synchronous=FULL) and
 * DIR/LOCK. A READ_WRITE store takes an exclusive flock on DIR/LOCK for its
 * whole life, so two servers can never write the same log; a READ_ONLY store
 * (verify, state, tail beside a running server) takes no lock and only reads.
 *
 * The schema's version is PRAGMA user_version. Opening read-write runs the
 * migrations from the stored version up to SCHEMA_VERSION in one transaction;
 * a database newer than this code is refused with ARB_ESCHEMA, never touched.
 *
 * Lifecycle of a store (each step undone in reverse by store_destroy):
 *
 *   lock (RW) -> connection -> pragmas -> migrate/check -> prepare
 *             -> key tail (RW) -> checkpointer (RW) -> ready ... close
 *
 * Automatic checkpoints are off (wal_autocheckpoint=0) so that no commit ever
 * pays for one: the checkpointer thread (sqlite_checkpoint.c) copies the WAL
 * into the database in the background, and close runs a final TRUNCATE
 * checkpoint so a closed store leaves an empty WAL behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

/* How long a connection waits for a lock held by another connection (a
 * reader's snapshot, the checkpointer) before the call fails. */
#define BUSY_TIMEOUT_MS 5000
/* At close, the final checkpoint waits this long for readers at most: a
 * READ_ONLY store beside us must not make close hang. */
#define CLOSE_CHECKPOINT_BUSY_TIMEOUT_MS 100
/* A WAL larger than this is truncated back to it when it restarts, so one
 * burst does not leave a huge file behind. */
#define JOURNAL_SIZE_LIMIT_BYTES (64 * 1024 * 1024)
/* Page cache of the writer (negative: KiB). The hot pages are the b-tree
 * tails of events and outcomes, and the client pages of outcome_keys. */
#define CACHE_SIZE_KIB 32768
/* The page size of a new database (an existing one keeps its own). Commits
 * mostly append rows, and SQLite writes the WAL one frame (one page) per
 * write call: larger pages mean fewer, larger writes per commit, at the cost
 * of rewriting more of each table's partly filled last page at every
 * commit. Measured with ledger_bench, batches of 256: with 64 clients, 4 KiB
 * pages made 87 writes a commit and 870 bytes a transfer, 16 KiB 39 writes
 * and 1490 bytes, for about the same CPU a transfer; with 1000 clients (more
 * index pages per flush of the key tail) 106 and 41 writes, and 14.4 and
 * 9.6 us of CPU a transfer. */
#define PAGE_SIZE_BYTES 16384

/* The columns of an outcome row, in the order sqlite_read.c reads them. */
#define OUTCOME_COLUMNS                                                                            \
    "o.client_id, o.client_seq, o.fingerprint, o.stream, o.status, o.seq_first, o.seq_last,"       \
    " o.code, o.message, o.payload, o.version, o.decided_at, o.checksum"
/* The outcome of key (?1, ?2) through outcome_keys; CROSS JOIN keeps the
 * key lookup the outer loop. */
#define OUTCOME_BY_KEY                                                                             \
    "SELECT " OUTCOME_COLUMNS " FROM outcome_keys AS k CROSS JOIN outcomes AS o"                   \
    " ON o.rowid = k.outcome_rowid WHERE k.client_id = ?1 AND k.client_seq = ?2"
/* Outcome rows whose keys are not yet in outcome_keys. */
#define AFTER_KEYS_THROUGH "rowid > (SELECT value FROM meta WHERE key = 'keys_through_rowid')"

static const char *const statement_sql[ARB__SQL_COUNT] = {
    [ARB__SQL_BEGIN] = "BEGIN IMMEDIATE",
    [ARB__SQL_COMMIT] = "COMMIT",
    [ARB__SQL_ROLLBACK] = "ROLLBACK",
    [ARB__SQL_INSERT_STREAM] = "INSERT INTO streams(name, kind) VALUES(?1, ?2)",
    [ARB__SQL_INSERT_EVENT] = "INSERT INTO events(stream, seq, type, data, client_id, client_seq,"
                              " applied_at, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ARB__SQL_INSERT_OUTCOME] =
        "INSERT INTO outcomes(client_id, client_seq, fingerprint, stream, status, seq_first,"
        " seq_last, code, code_name, message, payload, version, decided_at, checksum)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ARB__SQL_SELECT_KEY] = "SELECT 1 FROM outcome_keys WHERE client_id = ?1 AND client_seq = ?2",
    [ARB__SQL_INSERT_KEY] =
        "INSERT INTO outcome_keys(client_id, client_seq, outcome_rowid) VALUES(?1, ?2, ?3)",
    /* The key tail's three meta values (sqlite_keys.c), written together by
     * every commit that writes keys; the last two rows exist from the first
     * such commit on (missing, they read as "no sealed generation"). */
    [ARB__SQL_UPDATE_KEY_CURSOR] =
        "INSERT OR REPLACE INTO meta(key, value) VALUES('keys_through_rowid', ?1),"
        " ('keys_sealed_through_rowid', ?2), ('keys_slice_cursor', ?3)",
    [ARB__SQL_SELECT_STREAMS] =
        "SELECT name, kind, COALESCE((SELECT MAX(seq) FROM events WHERE events.stream ="
        " streams.name), 0) FROM streams ORDER BY name",
    [ARB__SQL_SELECT_EVENTS] = "SELECT seq, type, data, client_id, client_seq, applied_at, hash"
                               " FROM events WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    /* The writer: a key found in the key tail, then through outcome_keys. */
    [ARB__SQL_SELECT_OUTCOME_BY_ROWID] =
        "SELECT " OUTCOME_COLUMNS " FROM outcomes AS o WHERE o.rowid = ?1",
    [ARB__SQL_SELECT_OUTCOME_BY_KEY] = OUTCOME_BY_KEY,
    /* A reader has no key tail: it also scans the rows after
     * keys_through_rowid (fewer than ARB_STORE_KEY_TAIL_MAX of them: the
     * writer's two key generations),
     * in the same statement, so it sees one consistent state. */
    [ARB__SQL_SELECT_OUTCOME_ANYWHERE] = OUTCOME_BY_KEY
    " UNION ALL SELECT " OUTCOME_COLUMNS " FROM outcomes AS o"
    " WHERE o." AFTER_KEYS_THROUGH " AND o.client_id = ?1 AND o.client_seq = ?2 LIMIT 1",
    /* The highest client_seq of each client over outcome_keys and the rows
     * after keys_through_rowid. On outcome_keys, a loose index scan: two
     * index searches per client instead of a scan of every key ever stored,
     * so that start-up does not grow with the age of the log. The rows after
     * keys_through_rowid are the ones the writer holds in its key tail; both
     * modes read them from the table, so a reader needs no tail. */
    [ARB__SQL_SELECT_OUTCOMES_ALL] =
        "SELECT " OUTCOME_COLUMNS " FROM outcomes AS o ORDER BY o.rowid",
    [ARB__SQL_SELECT_CLIENTS] =
        "WITH RECURSIVE client(id) AS (SELECT MIN(client_id) FROM outcome_keys UNION ALL"
        " SELECT (SELECT MIN(client_id) FROM outcome_keys WHERE client_id > client.id)"
        " FROM client WHERE client.id IS NOT NULL),"
        " maxima(id, client_seq_max) AS ("
        " SELECT id, (SELECT MAX(client_seq) FROM outcome_keys WHERE client_id = client.id)"
        " FROM client WHERE id IS NOT NULL UNION ALL"
        " SELECT client_id, MAX(client_seq) FROM outcomes WHERE " AFTER_KEYS_THROUGH
        " GROUP BY client_id)"
        " SELECT id, MAX(client_seq_max) FROM maxima GROUP BY id ORDER BY id",
    /* The state at a seq is fixed by the log, so writing the same (stream,
     * seq) again stores the same state: replacing it is harmless. */
    [ARB__SQL_INSERT_SNAPSHOT] =
        "INSERT OR REPLACE INTO snapshots(stream, seq, state) VALUES(?1, ?2, ?3)",
    [ARB__SQL_PRUNE_SNAPSHOTS] =
        "DELETE FROM snapshots WHERE stream = ?1 AND seq < (SELECT seq FROM snapshots"
        " WHERE stream = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2 - 1)",
    [ARB__SQL_SELECT_SNAPSHOT] =
        "SELECT seq, state FROM snapshots WHERE stream = ?1 ORDER BY seq DESC LIMIT 1",
};

/* Schema migrations: migrations[n] takes a database from version n to n + 1.
 * Each runs inside the migration transaction. Append only.
 *
 * events and outcomes are rowid tables on purpose: their rows go to the end
 * of the table in commit order, and only the small (stream, seq) and
 * (client_id, client_seq) keys go into the primary-key indexes. As WITHOUT
 * ROWID tables, every client and stream in a batch dirtied a page of whole
 * rows (interior pages hold whole rows there too): measured at batches of
 * 256 with 16 streams and 64 clients, 30 % fewer rows per second, and with
 * 64 streams 2.5 times the WAL frames per commit for the events alone. */
static int migrate_0_to_1(sqlite3 *db)
{
    return sqlite3_exec(db, ARB__SQLITE_SCHEMA_V1, NULL, NULL, NULL);
}

/* Version 2: the (client_id, client_seq) index moves out of outcomes into
 * outcome_keys, which is written in bulk and sorted (sqlite_keys.c): every
 * client in a batch dirtied a leaf page of the old primary-key index, at
 * every commit. outcomes keeps its rows and their rowids (the append order);
 * meta.keys_through_rowid says which rows have their key in outcome_keys -
 * after this migration, all of them. */
static int migrate_1_to_2(sqlite3 *db)
{
    static const char sql[] =
        "CREATE TABLE outcomes_v2(client_id TEXT NOT NULL, client_seq INTEGER NOT NULL,"
        " fingerprint BLOB NOT NULL, stream TEXT NOT NULL, status INTEGER NOT NULL,"
        " seq_first INTEGER, seq_last INTEGER, code INTEGER, code_name TEXT, message TEXT,"
        " payload TEXT, version INTEGER NOT NULL, decided_at INTEGER NOT NULL);"
        "INSERT INTO outcomes_v2(rowid, client_id, client_seq, fingerprint, stream, status,"
        " seq_first, seq_last, code, code_name, message, payload, version, decided_at)"
        " SELECT rowid, client_id, client_seq, fingerprint, stream, status, seq_first, seq_last,"
        " code, code_name, message, payload, version, decided_at FROM outcomes ORDER BY rowid;"
        "DROP TABLE outcomes;"
        "ALTER TABLE outcomes_v2 RENAME TO outcomes;"
        "CREATE TABLE outcome_keys(client_id TEXT NOT NULL, client_seq INTEGER NOT NULL,"
        " outcome_rowid INTEGER NOT NULL, PRIMARY KEY(client_id, client_seq)) WITHOUT ROWID;"
        "INSERT INTO outcome_keys(client_id, client_seq, outcome_rowid)"
        " SELECT client_id, client_seq, rowid FROM outcomes ORDER BY client_id, client_seq;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT INTO meta(key, value)"
        " VALUES('keys_through_rowid', COALESCE((SELECT MAX(rowid) FROM outcomes), 0));";
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Version 3: every outcome row gets its checksum (sqlite_check.c), computed
 * for the rows already there from what they hold; rows that were already
 * damaged fail their checks on read, as before. */
static int migrate_2_to_3(sqlite3 *db)
{
    int rc = sqlite3_exec(db, "ALTER TABLE outcomes ADD COLUMN checksum BLOB", NULL, NULL, NULL);
    return rc == SQLITE_OK ? arb__sqlite_fill_checksums(db) : rc;
}

static int (*const migrations[])(sqlite3 *db) = {
    migrate_0_to_1,
    migrate_1_to_2,
    migrate_2_to_3,
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static void sqlite_close(arb_store *store);

static const arb_store_ops sqlite_ops = {
    .close = sqlite_close,
    .commit = arb__sqlite_commit,
    .streams = arb__sqlite_streams,
    .events = arb__sqlite_events,
    .outcome = arb__sqlite_outcome,
    .clients = arb__sqlite_clients,
    .outcomes = arb__sqlite_outcomes,
    .check = arb__sqlite_check,
    .pin = arb__sqlite_pin,
    .snapshot_put = arb__sqlite_snapshot_put,
    .snapshot_get = arb__sqlite_snapshot_get,
};

arb__sqlite_store *arb__sqlite_from(arb_store *store)
{
    ARB_ASSERT(store != NULL);
    ARB_ASSERT(store->ops == &sqlite_ops);
    return (arb__sqlite_store *)store;
}

int arb__sqlite_fail(sqlite3 *db, int rc, const char *what, const char *path)
{
    ARB_ASSERT(rc != SQLITE_OK);
    const char *message = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    arb_log(ARB_LOG_ERROR, "sqlite store call failed",
            "what=\"%s\" rc=%d sqlite=\"%s\" path=\"%s\"", what, rc, message,
            path != NULL ? path : "");
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ARB_ECORRUPT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ARB_EBUSY;
    default:
        return ARB_EIO;
    }
}

/* out = dir + "/" + name, or ARB_EUSAGE when it does not fit PATH_MAX. */
static int join_path(char out[PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        arb_log(ARB_LOG_ERROR, "sqlite store path too long", "dir=\"%s\"", dir);
        return ARB_EUSAGE;
    }
    return 0;
}

/* mkdir -p dir, mode 0700 for what it creates: the log is private data. */
static int make_directories(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return ARB_EUSAGE;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            arb_log(ARB_LOG_ERROR, "cannot create data directory", "path=\"%s\" errno=\"%s\"", path,
                    strerror(errno));
            return ARB_EIO;
        }
        path[i] = saved;
    }
    struct stat info;
    if (stat(dir, &info) != 0 || !S_ISDIR(info.st_mode)) {
        arb_log(ARB_LOG_ERROR, "data directory is not a directory", "path=\"%s\"", dir);
        return ARB_EIO;
    }
    return 0;
}

/* Take DIR/LOCK exclusively; ARB_EBUSY when another open file description
 * (another process, or another open in this one) holds it. */
static int lock_directory(arb__sqlite_store *store, const char *dir)
{
    char path[PATH_MAX];
    int rc = join_path(path, dir, "LOCK");
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        arb_log(ARB_LOG_ERROR, "cannot open lock file", "path=\"%s\" errno=\"%s\"", path,
                strerror(errno));
        return ARB_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int error = errno;
        close(fd);
        arb_log(ARB_LOG_ERROR, "data directory is locked", "path=\"%s\" errno=\"%s\"", path,
                strerror(error));
        return error == EWOULDBLOCK ? ARB_EBUSY : ARB_EIO;
    }
    store->lock_fd = fd;
    return 0;
}

/* fsync the directory, so the entries of a newly created database survive a
 * power loss (SQLite syncs the directory for its journals only). */
static int sync_directory(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        arb_log(ARB_LOG_ERROR, "cannot sync data directory", "path=\"%s\" errno=\"%s\"", dir,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return ARB_EIO;
    }
    close(fd);
    return 0;
}

/* Run one statement that returns at most one row; its first column's text
 * (or "") goes to value_out when that is not NULL. */
static int exec_one(sqlite3 *db, const char *sql, char *value_out, size_t value_size,
                    const char *path)
{
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &statement, NULL);
    if (rc != SQLITE_OK)
        return arb__sqlite_fail(db, rc, sql, path);
    rc = sqlite3_step(statement);
    if (rc == SQLITE_ROW && value_out != NULL) {
        const unsigned char *text = sqlite3_column_text(statement, 0);
        snprintf(value_out, value_size, "%s", text != NULL ? (const char *)text : "");
    }
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        rc = SQLITE_OK;
    int result = rc == SQLITE_OK ? 0 : arb__sqlite_fail(db, rc, sql, path);
    sqlite3_finalize(statement);
    return result;
}

static int apply_pragmas(arb__sqlite_store *store)
{
    static const char *const write_pragmas[] = {
        "PRAGMA synchronous = FULL",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA wal_autocheckpoint = 0",
    };
    char value[32];
    char sql[96];
    sqlite3_extended_result_codes(store->db, 1);
    sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
    if (store->mode == ARB_STORE_READ_ONLY)
        return 0;
    /* First: it only takes effect before the database's first page exists. */
    snprintf(sql, sizeof sql, "PRAGMA page_size = %d", PAGE_SIZE_BYTES);
    int rc = exec_one(store->db, sql, NULL, 0, store->db_path);
    if (rc != 0)
        return rc;
    rc = exec_one(store->db, "PRAGMA journal_mode = WAL", value, sizeof value, store->db_path);
    if (rc != 0)
        return rc;
    if (strcmp(value, "wal") != 0) {
        arb_log(ARB_LOG_ERROR, "sqlite store cannot use WAL", "journal_mode=\"%s\" path=\"%s\"",
                value, store->db_path);
        return ARB_EIO;
    }
    for (size_t i = 0; i < sizeof write_pragmas / sizeof write_pragmas[0]; i++) {
        rc = exec_one(store->db, write_pragmas[i], NULL, 0, store->db_path);
        if (rc != 0)
            return rc;
    }
    snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %d", JOURNAL_SIZE_LIMIT_BYTES);
    rc = exec_one(store->db, sql, NULL, 0, store->db_path);
    if (rc != 0)
        return rc;
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", CACHE_SIZE_KIB);
    return exec_one(store->db, sql, NULL, 0, store->db_path);
}

/* A PRAGMA whose value is a non-negative int. */
static int read_pragma_int(arb__sqlite_store *store, const char *sql, int *value_out)
{
    char value[32];
    int rc = exec_one(store->db, sql, value, sizeof value, store->db_path);
    if (rc != 0)
        return rc;
    char *end = NULL;
    long number = strtol(value, &end, 10);
    if (end == value || *end != '\0' || number < 0 || number > INT_MAX)
        return ARB_ECORRUPT;
    *value_out = (int)number;
    return 0;
}

static int read_version(arb__sqlite_store *store, int *version_out)
{
    return read_pragma_int(store, "PRAGMA user_version", version_out);
}

static int refuse_version(const arb__sqlite_store *store, int version)
{
    arb_log(ARB_LOG_ERROR, "unsupported schema version",
            "path=\"%s\" version=%d supported=%d mode=%s", store->db_path, version, SCHEMA_VERSION,
            store->mode == ARB_STORE_READ_ONLY ? "read_only" : "read_write");
    return ARB_ESCHEMA;
}

/* Bring the schema to SCHEMA_VERSION in one transaction: a crash midway
 * leaves the old version whole. */
static int migrate(arb__sqlite_store *store)
{
    int rc = exec_one(store->db, "BEGIN IMMEDIATE", NULL, 0, store->db_path);
    if (rc != 0)
        return rc;
    int version = 0;
    rc = read_version(store, &version);
    if (rc == 0 && version > SCHEMA_VERSION)
        rc = refuse_version(store, version);
    for (int from = version; rc == 0 && from < SCHEMA_VERSION; from++) {
        int sqlite_rc = migrations[from](store->db);
        if (sqlite_rc != SQLITE_OK)
            rc = arb__sqlite_fail(store->db, sqlite_rc, "schema migration", store->db_path);
    }
    if (rc == 0 && version != SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = exec_one(store->db, sql, NULL, 0, store->db_path);
    }
    if (rc == 0)
        rc = exec_one(store->db, "COMMIT", NULL, 0, store->db_path);
    if (rc != 0 && !sqlite3_get_autocommit(store->db))
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == 0 && version != SCHEMA_VERSION)
        arb_log(ARB_LOG_INFO, "schema migrated", "path=\"%s\" from=%d to=%d", store->db_path,
                version, SCHEMA_VERSION);
    return rc;
}

/* A reader cannot migrate: anything but the current version is refused. */
static int check_version(arb__sqlite_store *store)
{
    int version = 0;
    int rc = read_version(store, &version);
    if (rc != 0)
        return rc;
    return version == SCHEMA_VERSION ? 0 : refuse_version(store, version);
}

static int prepare_statements(arb__sqlite_store *store)
{
    for (int i = 0; i < ARB__SQL_COUNT; i++) {
        ARB_ASSERT(statement_sql[i] != NULL);
        int rc = sqlite3_prepare_v3(store->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &store->statements[i], NULL);
        if (rc != SQLITE_OK)
            return arb__sqlite_fail(store->db, rc, statement_sql[i], store->db_path);
    }
    return 0;
}

/* The last step of close: a TRUNCATE checkpoint leaves an empty WAL. A
 * reader beside us may prevent it; that only leaves the WAL for later. */
static void final_checkpoint(arb__sqlite_store *store)
{
    int log_frames = 0;
    int checkpointed_frames = 0;
    sqlite3_busy_timeout(store->db, CLOSE_CHECKPOINT_BUSY_TIMEOUT_MS);
    int rc = sqlite3_wal_checkpoint_v2(store->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                       &checkpointed_frames);
    if (rc != SQLITE_OK)
        arb_log(ARB_LOG_WARN, "final checkpoint incomplete", "path=\"%s\" rc=%d sqlite=\"%s\"",
                store->db_path, rc, sqlite3_errmsg(store->db));
}

/* Undo whatever open did, in reverse; safe on a partly opened store. */
static void store_destroy(arb__sqlite_store *store, bool opened)
{
    arb__sqlite_checkpointer_stop(store);
    arb__key_tail_free(&store->tail);
    for (int i = 0; i < ARB__SQL_COUNT; i++)
        sqlite3_finalize(store->statements[i]);
    if (store->db != NULL) {
        if (opened && store->mode == ARB_STORE_READ_WRITE)
            final_checkpoint(store);
        int rc = sqlite3_close(store->db);
        if (rc != SQLITE_OK)
            arb_log(ARB_LOG_ERROR, "sqlite close failed", "path=\"%s\" rc=%d", store->db_path, rc);
    }
    arb__mark_close(store);
    if (store->lock_fd >= 0)
        close(store->lock_fd);
    free(store);
}

static void sqlite_close(arb_store *base)
{
    if (base == NULL)
        return;
    store_destroy(arb__sqlite_from(base), true);
}

static int open_connection(arb__sqlite_store *store, const char *dir)
{
    int flags = SQLITE_OPEN_NOMUTEX;
    if (store->mode == ARB_STORE_READ_ONLY) {
        struct stat info;
        if (stat(store->db_path, &info) != 0)
            return ARB_ENOTFOUND;
        int rc = arb__mark_open(store, dir); /* before the log: never newer than it */
        if (rc != 0)
            return rc;
        flags |= SQLITE_OPEN_READONLY;
    } else {
        int rc = make_directories(dir);
        if (rc == 0)
            rc = lock_directory(store, dir);
        char why[256];
        if (rc == 0)
            rc = arb__sqlite_wal_check(store->db_path, why, sizeof why);
        if (rc == 0)
            rc = arb__mark_open(store, dir);
        if (rc != 0)
            return rc;
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    }
    int rc = sqlite3_open_v2(store->db_path, &store->db, flags, NULL);
    if (rc != SQLITE_OK)
        return arb__sqlite_fail(store->db, rc, "open", store->db_path);
    return 0;
}

/* Everything after allocation; on error the caller destroys the store. */
static int store_open(arb__sqlite_store *store, const char *dir)
{
    int rc = join_path(store->db_path, dir, "arbiter.db");
    if (rc == 0)
        rc = open_connection(store, dir);
    if (rc == 0)
        rc = apply_pragmas(store);
    if (rc != 0)
        return rc;
    if (store->mode == ARB_STORE_READ_ONLY) {
        rc = check_version(store);
        return rc == 0 ? prepare_statements(store) : rc;
    }
    rc = migrate(store);
    if (rc == 0)
        rc = sync_directory(dir);
    if (rc == 0)
        rc = read_pragma_int(store, "PRAGMA page_size", &store->page_size_bytes);
    if (rc == 0)
        rc = prepare_statements(store);
    if (rc == 0)
        rc = arb__key_tail_init(&store->tail);
    if (rc == 0)
        rc = arb__key_tail_load(store);
    if (rc == 0)
        rc = arb__sqlite_checkpointer_start(store);
    return rc;
}

int arb_store_sqlite_open(const char *dir, arb_store_mode mode, arb_store **store_out)
{
    ARB_ASSERT(dir != NULL);
    ARB_ASSERT(store_out != NULL);
    ARB_ASSERT(mode == ARB_STORE_READ_WRITE || mode == ARB_STORE_READ_ONLY);
    *store_out = NULL;
    if (!sqlite3_threadsafe()) {
        arb_log(ARB_LOG_ERROR, "sqlite library is built without threads", "dir=\"%s\"", dir);
        return ARB_EIO;
    }
    arb__sqlite_store *store = calloc(1, sizeof *store);
    if (store == NULL)
        return ARB_ENOMEM;
    store->base.ops = &sqlite_ops;
    store->mode = mode;
    store->lock_fd = -1;
    store->mark_fd = -1;
    store->mark_rowid = -1;
    store->fail_after = -1;
    int rc = store_open(store, dir);
    if (rc != 0) {
        store_destroy(store, false);
        return rc;
    }
    *store_out = &store->base;
    return 0;
}
