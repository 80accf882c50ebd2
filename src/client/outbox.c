/*
 * outbox.c - the client SDK's SQLite outbox (see outbox.h).
 *
 * Schema (user_version 1):
 *   meta(key, value)                 "client_id", "last_client_seq"
 *   outbox(client_seq PK, stream, action, args, expect, policy)
 *   views(stream PK, seq, view)      the last confirmed view per stream
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "arbiter/error.h"
#include "client/outbox.h"
#include "core/assert.h"
#include "core/log.h"

#define OUTBOX_FORMAT 1
/* How long a statement waits for another connection to the same file (a
 * second process opening it by mistake) before it fails. */
#define OUTBOX_BUSY_TIMEOUT_MS 2000

struct arb__outbox {
    sqlite3 *db;
    uint64_t last_client_seq;
    sqlite3_stmt *add;
    sqlite3_stmt *remove;
    sqlite3_stmt *bump;
};

/* Created with the owner and the counter in one transaction, so that a
 * database is either empty or a whole outbox. */
static const char schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;"
    " CREATE TABLE outbox(client_seq INTEGER PRIMARY KEY, stream TEXT NOT NULL,"
    " action TEXT NOT NULL, args TEXT NOT NULL, expect INTEGER, policy INTEGER NOT NULL);"
    " CREATE TABLE views(stream TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
    " view TEXT NOT NULL) WITHOUT ROWID;";

static int fail(arb__outbox *outbox, const char *what)
{
    arb_log(ARB_LOG_WARN, "client outbox", "%s: %s", what, sqlite3_errmsg(outbox->db));
    return ARB_EIO;
}

static int exec(arb__outbox *outbox, const char *sql)
{
    return sqlite3_exec(outbox->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(outbox, sql);
}

static uint64_t clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A meta value as text (NULL when absent) or integer. */
static int meta_get(arb__outbox *outbox, const char *key, char *text, size_t size, int64_t *number)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(outbox->db, "SELECT value FROM meta WHERE key = ?", -1, &stmt, NULL) !=
        SQLITE_OK)
        return fail(outbox, "read meta");
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int result = ARB_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        result = 0;
        if (text != NULL) {
            const unsigned char *value = sqlite3_column_text(stmt, 0);
            if (sqlite3_column_type(stmt, 0) != SQLITE_TEXT || value == NULL ||
                strlen((const char *)value) >= size)
                result = ARB_ECORRUPT;
            else
                memcpy(text, value, strlen((const char *)value) + 1);
        }
        if (number != NULL) {
            if (sqlite3_column_type(stmt, 0) != SQLITE_INTEGER)
                result = ARB_ECORRUPT;
            *number = sqlite3_column_int64(stmt, 0);
        }
    } else if (rc != SQLITE_DONE) {
        result = fail(outbox, "read meta");
    }
    sqlite3_finalize(stmt);
    return result;
}

/* PRAGMA user_version: 0 for a database no one has written, else its
 * schema's version; -1 when it cannot be read. */
static int user_version(arb__outbox *outbox)
{
    sqlite3_stmt *stmt;
    int version = -1;
    if (sqlite3_prepare_v2(outbox->db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return version;
}

/* Whether the database holds any table at all. */
static int has_tables(arb__outbox *outbox, bool *any)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(outbox->db, "SELECT count(*) FROM sqlite_master", -1, &stmt, NULL) !=
        SQLITE_OK)
        return sqlite3_errcode(outbox->db) == SQLITE_NOTADB ? ARB_ECORRUPT : fail(outbox, "read");
    int rc = sqlite3_step(stmt);
    *any = rc == SQLITE_ROW && sqlite3_column_int(stmt, 0) > 0;
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return 0;
    return sqlite3_errcode(outbox->db) == SQLITE_NOTADB ? ARB_ECORRUPT : fail(outbox, "read");
}

/* An outbox (user_version OUTBOX_FORMAT), or an empty database to make one
 * of (*fresh); anything else (another application's database) is not ours
 * to write. */
static int check_schema(arb__outbox *outbox, bool *fresh)
{
    bool any;
    int rc = has_tables(outbox, &any);
    if (rc != 0)
        return rc;
    int version = user_version(outbox);
    *fresh = version == 0 && !any;
    if (version == OUTBOX_FORMAT || *fresh)
        return 0;
    arb_log(ARB_LOG_WARN, "client outbox", "not an outbox (user_version %d%s)", version,
            any ? ", other tables" : "");
    return ARB_ECORRUPT;
}

/* A file shorter than SQLite's 100-byte header is a truncated database, not
 * a new one (a new outbox is created by SQLite at its full first page). */
static int check_file(const char *path)
{
    struct stat st;
    if (path == NULL || stat(path, &st) != 0)
        return 0; /* in memory, or not there yet: created */
    return st.st_size == 0 || st.st_size >= 100 ? 0 : ARB_ECORRUPT;
}

/* First open: record the owner and seed the counter, in one transaction. */
static int create(arb__outbox *outbox, const char *client_id)
{
    char sql[1024];
    uint64_t seed = clock_us();
    if (seed > (uint64_t)ARB_JSON_INT_MAX / 2)
        seed = 0; /* a clock this far off: start low rather than near the top */
    char *quoted = sqlite3_mprintf("%Q", client_id);
    if (quoted == NULL)
        return ARB_ENOMEM;
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE; %s PRAGMA user_version = %d;"
             " INSERT INTO meta VALUES('client_id', %s);"
             " INSERT INTO meta VALUES('last_client_seq', %llu);"
             " INSERT INTO meta VALUES('format', %d); COMMIT",
             schema, OUTBOX_FORMAT, quoted, (unsigned long long)seed, OUTBOX_FORMAT);
    sqlite3_free(quoted);
    int rc = exec(outbox, sql);
    if (rc != 0)
        exec(outbox, "ROLLBACK");
    return rc;
}

static int check_owner(arb__outbox *outbox, const char *client_id)
{
    char owner[ARB_CLIENT_ID_BYTES_MAX + 1];
    int64_t format, last;
    int rc = meta_get(outbox, "client_id", owner, sizeof owner, NULL);
    if (rc == 0)
        rc = meta_get(outbox, "format", NULL, 0, &format);
    if (rc == 0)
        rc = meta_get(outbox, "last_client_seq", NULL, 0, &last);
    if (rc == ARB_ENOTFOUND)
        rc = ARB_ECORRUPT;
    if (rc == 0 && (format != OUTBOX_FORMAT || last < 0 || last >= ARB_JSON_INT_MAX))
        rc = ARB_ECORRUPT;
    if (rc == 0 && strcmp(owner, client_id) != 0) {
        arb_log(ARB_LOG_WARN, "client outbox", "the outbox belongs to client %s, not %s", owner,
                client_id);
        rc = ARB_ECORRUPT;
    }
    if (rc == 0)
        outbox->last_client_seq = (uint64_t)last;
    return rc;
}

static int prepare(arb__outbox *outbox)
{
    static const char add[] = "INSERT INTO outbox VALUES(?, ?, ?, ?, ?, ?)";
    static const char remove[] = "DELETE FROM outbox WHERE client_seq = ?";
    static const char bump[] = "UPDATE meta SET value = ? WHERE key = 'last_client_seq'";
    if (sqlite3_prepare_v2(outbox->db, add, -1, &outbox->add, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(outbox->db, remove, -1, &outbox->remove, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(outbox->db, bump, -1, &outbox->bump, NULL) != SQLITE_OK)
        return fail(outbox, "prepare");
    return 0;
}

int arb__outbox_open(const char *path, const char *client_id, arb__outbox **out)
{
    ARB_ASSERT(client_id != NULL && out != NULL);
    *out = NULL;
    arb__outbox *outbox = calloc(1, sizeof *outbox);
    if (outbox == NULL)
        return ARB_ENOMEM;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = check_file(path);
    if (rc == 0 &&
        sqlite3_open_v2(path != NULL ? path : ":memory:", &outbox->db, flags, NULL) != SQLITE_OK)
        rc = outbox->db != NULL ? fail(outbox, "open") : ARB_ENOMEM;
    if (rc == 0) {
        sqlite3_busy_timeout(outbox->db, OUTBOX_BUSY_TIMEOUT_MS);
        rc = exec(outbox, "PRAGMA journal_mode = WAL");
    }
    if (rc == 0)
        rc = exec(outbox, "PRAGMA synchronous = FULL");
    if (rc == ARB_EIO && sqlite3_errcode(outbox->db) == SQLITE_NOTADB)
        rc = ARB_ECORRUPT;
    bool fresh = false;
    if (rc == 0)
        rc = check_schema(outbox, &fresh);
    if (rc == 0 && fresh)
        rc = create(outbox, client_id);
    if (rc == 0)
        rc = check_owner(outbox, client_id);
    if (rc == 0)
        rc = prepare(outbox);
    if (rc != 0) {
        arb__outbox_close(outbox);
        return rc;
    }
    *out = outbox;
    return 0;
}

void arb__outbox_close(arb__outbox *outbox)
{
    if (outbox == NULL)
        return;
    sqlite3_finalize(outbox->add);
    sqlite3_finalize(outbox->remove);
    sqlite3_finalize(outbox->bump);
    sqlite3_close(outbox->db);
    free(outbox);
}

/* Run a prepared statement to its end and reset it. */
static int step(arb__outbox *outbox, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : fail(outbox, what);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc;
}

int arb__outbox_add(arb__outbox *outbox, arb_command *command, arb_policy policy)
{
    char *args = json_dumps(command->args, JSON_COMPACT | JSON_SORT_KEYS);
    if (args == NULL)
        return ARB_ENOMEM;
    uint64_t seq = outbox->last_client_seq + 1;
    int rc = exec(outbox, "BEGIN IMMEDIATE");
    if (rc == 0) {
        sqlite3_bind_int64(outbox->bump, 1, (sqlite3_int64)seq);
        rc = step(outbox, outbox->bump, "count");
    }
    if (rc == 0) {
        sqlite3_bind_int64(outbox->add, 1, (sqlite3_int64)seq);
        sqlite3_bind_text(outbox->add, 2, command->stream, -1, SQLITE_STATIC);
        sqlite3_bind_text(outbox->add, 3, command->action, -1, SQLITE_STATIC);
        sqlite3_bind_text(outbox->add, 4, args, -1, SQLITE_STATIC);
        if (command->has_expect)
            sqlite3_bind_int64(outbox->add, 5, (sqlite3_int64)command->expect);
        sqlite3_bind_int(outbox->add, 6, (int)policy);
        rc = step(outbox, outbox->add, "add");
    }
    if (rc == 0)
        rc = exec(outbox, "COMMIT");
    if (rc != 0)
        sqlite3_exec(outbox->db, "ROLLBACK", NULL, NULL, NULL);
    free(args);
    if (rc == 0) {
        outbox->last_client_seq = seq;
        command->client_seq = seq;
    }
    return rc;
}

int arb__outbox_remove(arb__outbox *outbox, uint64_t client_seq)
{
    sqlite3_bind_int64(outbox->remove, 1, (sqlite3_int64)client_seq);
    return step(outbox, outbox->remove, "remove");
}

/* One outbox row to a command; ARB_ECORRUPT when it does not fit. */
static int row_command(sqlite3_stmt *stmt, const char *client_id, arb_command *command,
                       arb_policy *policy)
{
    static const int types[] = {SQLITE_INTEGER, SQLITE_TEXT, SQLITE_TEXT,
                                SQLITE_TEXT,    -1,          SQLITE_INTEGER};
    for (int i = 0; i < 6; i++)
        if (types[i] != -1 && sqlite3_column_type(stmt, i) != types[i])
            return ARB_ECORRUPT;
    int expect_type = sqlite3_column_type(stmt, 4);
    if (expect_type != SQLITE_NULL && expect_type != SQLITE_INTEGER)
        return ARB_ECORRUPT;
    const char *stream = (const char *)sqlite3_column_text(stmt, 1);
    const char *action = (const char *)sqlite3_column_text(stmt, 2);
    const char *args_text = (const char *)sqlite3_column_text(stmt, 3);
    int64_t seq = sqlite3_column_int64(stmt, 0);
    int64_t policy_value = sqlite3_column_int64(stmt, 5);
    if (stream == NULL || action == NULL || args_text == NULL || seq <= 0 ||
        seq > ARB_JSON_INT_MAX || policy_value < ARB_POLICY_OPTIMISTIC ||
        policy_value > ARB_POLICY_PESSIMISTIC)
        return ARB_ECORRUPT;
    json_t *args = json_loads(args_text, JSON_REJECT_DUPLICATES, NULL);
    int rc = json_is_object(args) ? arb_command_set(command, client_id, ARB_ROLE_USER,
                                                    (uint64_t)seq, stream, action, args)
                                  : ARB_ECORRUPT;
    json_decref(args);
    if (rc == 0 && sqlite3_column_type(stmt, 4) == SQLITE_INTEGER) {
        int64_t expect = sqlite3_column_int64(stmt, 4);
        command->has_expect = true;
        command->expect = (uint64_t)expect;
        if (expect < 0 || expect > ARB_JSON_INT_MAX)
            rc = ARB_ECORRUPT;
    }
    *policy = (arb_policy)policy_value;
    return rc == ARB_ENOMEM ? rc : rc != 0 ? ARB_ECORRUPT : 0;
}

int arb__outbox_each_proposal(arb__outbox *outbox,
                              int (*each)(void *user, arb_command *command, arb_policy policy),
                              void *user)
{
    char client_id[ARB_CLIENT_ID_BYTES_MAX + 1];
    int rc = meta_get(outbox, "client_id", client_id, sizeof client_id, NULL);
    if (rc != 0)
        return rc;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(outbox->db, "SELECT * FROM outbox ORDER BY client_seq", -1, &stmt,
                           NULL) != SQLITE_OK)
        return fail(outbox, "read outbox");
    int step_rc;
    while (rc == 0 && (step_rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        arb_command command;
        arb_policy policy;
        arb_command_init(&command);
        rc = row_command(stmt, client_id, &command, &policy);
        if (rc == 0 && command.client_seq > outbox->last_client_seq)
            rc = ARB_ECORRUPT; /* numbered past the counter: the counter cannot be trusted */
        if (rc == 0)
            rc = each(user, &command, policy);
        arb_command_clear(&command);
    }
    if (rc == 0 && step_rc != SQLITE_DONE)
        rc = fail(outbox, "read outbox");
    sqlite3_finalize(stmt);
    return rc;
}

int arb__outbox_save_view(arb__outbox *outbox, const char *stream, uint64_t seq, const json_t *view)
{
    char *text = json_dumps(view, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return ARB_ENOMEM;
    sqlite3_stmt *stmt;
    int rc = 0;
    if (sqlite3_prepare_v2(outbox->db, "INSERT OR REPLACE INTO views VALUES(?, ?, ?)", -1, &stmt,
                           NULL) != SQLITE_OK) {
        rc = fail(outbox, "save view");
    } else {
        sqlite3_bind_text(stmt, 1, stream, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, (sqlite3_int64)seq);
        sqlite3_bind_text(stmt, 3, text, -1, SQLITE_STATIC);
        rc = step(outbox, stmt, "save view");
        sqlite3_finalize(stmt);
    }
    free(text);
    return rc;
}

int arb__outbox_forget_view(arb__outbox *outbox, const char *stream)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(outbox->db, "DELETE FROM views WHERE stream = ?", -1, &stmt, NULL) !=
        SQLITE_OK)
        return fail(outbox, "forget view");
    sqlite3_bind_text(stmt, 1, stream, -1, SQLITE_STATIC);
    int rc = step(outbox, stmt, "forget view");
    sqlite3_finalize(stmt);
    return rc;
}

int arb__outbox_load_view(arb__outbox *outbox, const char *stream, uint64_t *seq_out,
                          json_t **view_out)
{
    *view_out = NULL;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(outbox->db, "SELECT seq, view FROM views WHERE stream = ?", -1, &stmt,
                           NULL) != SQLITE_OK)
        return fail(outbox, "load view");
    sqlite3_bind_text(stmt, 1, stream, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int result = ARB_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(stmt, 0);
        const char *text = (const char *)sqlite3_column_text(stmt, 1);
        json_t *view = text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (!json_is_object(view) || seq <= 0 || seq > ARB_JSON_INT_MAX) {
            json_decref(view);
            result = ARB_ECORRUPT;
        } else {
            *seq_out = (uint64_t)seq;
            *view_out = view;
            result = 0;
        }
    } else if (rc != SQLITE_DONE) {
        result = fail(outbox, "load view");
    }
    sqlite3_finalize(stmt);
    return result;
}
