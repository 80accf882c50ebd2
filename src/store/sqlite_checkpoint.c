/*
 * sqlite_checkpoint.c - copies the WAL into the database, off the commit path.
 *
 * Automatic checkpoints are off on the writer's connection, so a commit only
 * appends to the WAL and fsyncs it. This thread, with its own connection,
 * runs a PASSIVE checkpoint every CHECKPOINT_INTERVAL_MS when commits have
 * appended since the last pass, and at once when a commit finds that the WAL
 * has grown by PROMPT_FRAMES since then. A PASSIVE pass never waits for the
 * writer, and the writer does not wait for it.
 *
 * Copying is not enough to keep the WAL short: SQLite starts the WAL over
 * from its beginning only when a write transaction begins while every frame
 * is already in the database. Under a steady load the writer commits while
 * each pass runs, so that moment may never come, and the WAL (and its index,
 * which every page lookup searches) would only grow. So when a pass leaves
 * CATCH_UP_FRAMES or more in the WAL, the thread takes writer_mutex - the
 * writer holds it for each transaction - and runs one more PASSIVE pass: it
 * copies only what was committed during the first, and the next commit
 * restarts the WAL. That is the one place where a commit can wait for the
 * checkpointer, for a few milliseconds, about once a second at full load.
 *
 * Threads and data: the WAL hook runs on the committing thread and touches
 * only the atomics and (for a prompt) the mutex-guarded flags; the thread
 * alone uses the checkpointer's connection between start and stop.
 *
 * States: stopped -> (start) running -> (stop: stopping, wake, join) stopped.
 */
#include <errno.h>
#include <time.h>

#include "arbiter/error.h"
#include "core/assert.h"
#include "core/log.h"
#include "store/sqlite_internal.h"

/* A pass every 200 ms bounds what the WAL holds beyond the database. */
#define CHECKPOINT_INTERVAL_MS 200
/* Past this WAL growth since the last pass, do not wait for the interval. */
#define PROMPT_BYTES (16 * 1024 * 1024)
/* Past this (journal_size_limit), make the WAL restart (the catch-up pass). */
#define CATCH_UP_BYTES (64 * 1024 * 1024)
/* PASSIVE checkpoints never wait; this bounds waits while opening. */
#define OPEN_BUSY_TIMEOUT_MS 100

/* Called by SQLite on the committing thread after every commit to the WAL. */
static int wal_hook(void *user, sqlite3 *db, const char *database, int frames)
{
    (void)db;
    (void)database;
    arb__sqlite_checkpointer *checkpointer = user;
    atomic_fetch_add(&checkpointer->commits, 1);
    if (frames - atomic_load(&checkpointer->checkpointed_frames) >= checkpointer->prompt_frames) {
        pthread_mutex_lock(&checkpointer->mutex);
        checkpointer->requested = true;
        pthread_cond_signal(&checkpointer->wake);
        pthread_mutex_unlock(&checkpointer->mutex);
    }
    return SQLITE_OK;
}

static void deadline_after(struct timespec *deadline, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, deadline);
    deadline->tv_sec += ms / 1000;
    deadline->tv_nsec += (ms % 1000) * 1000000L;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec += 1;
        deadline->tv_nsec -= 1000000000L;
    }
}

/* One PASSIVE checkpoint; true when frames are left to copy (a reader still
 * needs them, or the call failed). */
static bool checkpoint_pass(arb__sqlite_store *store, int *log_frames_out)
{
    arb__sqlite_checkpointer *checkpointer = &store->checkpointer;
    int log_frames = 0;
    int copied_frames = 0;
    int rc = sqlite3_wal_checkpoint_v2(checkpointer->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log_frames, &copied_frames);
    atomic_fetch_add(&checkpointer->passes, 1);
    *log_frames_out = log_frames;
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) != SQLITE_BUSY)
            arb_log(ARB_LOG_WARN, "background checkpoint failed", "path=\"%s\" rc=%d sqlite=\"%s\"",
                    store->db_path, rc, sqlite3_errmsg(checkpointer->db));
        return true;
    }
    atomic_store(&checkpointer->checkpointed_frames, log_frames);
    return copied_frames < log_frames;
}

/* A pass, and when the WAL is long, a catch-up pass with the writer held
 * back so that its next commit restarts the WAL. */
static bool checkpoint_round(arb__sqlite_store *store)
{
    arb__sqlite_checkpointer *checkpointer = &store->checkpointer;
    int log_frames = 0;
    bool behind = checkpoint_pass(store, &log_frames);
    if (behind || log_frames < checkpointer->catch_up_frames)
        return behind;
    pthread_mutex_lock(&checkpointer->writer_mutex);
    behind = checkpoint_pass(store, &log_frames);
    pthread_mutex_unlock(&checkpointer->writer_mutex);
    atomic_fetch_add(&checkpointer->catch_ups, 1);
    return behind;
}

static void *checkpointer_main(void *user)
{
    arb__sqlite_store *store = user;
    arb__sqlite_checkpointer *checkpointer = &store->checkpointer;
    uint_least64_t seen_commits = 0;
    bool behind = false;
    pthread_mutex_lock(&checkpointer->mutex);
    while (!checkpointer->stopping) {
        if (!checkpointer->requested) {
            struct timespec deadline;
            deadline_after(&deadline, CHECKPOINT_INTERVAL_MS);
            int rc = pthread_cond_timedwait(&checkpointer->wake, &checkpointer->mutex, &deadline);
            ARB_ASSERT(rc == 0 || rc == ETIMEDOUT);
        }
        if (checkpointer->stopping)
            break;
        checkpointer->requested = false;
        pthread_mutex_unlock(&checkpointer->mutex);
        uint_least64_t commits = atomic_load(&checkpointer->commits);
        if (commits != seen_commits || behind) {
            seen_commits = commits;
            behind = checkpoint_round(store);
        }
        pthread_mutex_lock(&checkpointer->mutex);
    }
    pthread_mutex_unlock(&checkpointer->mutex);
    return NULL;
}

static int open_connection(arb__sqlite_store *store)
{
    arb__sqlite_checkpointer *checkpointer = &store->checkpointer;
    int rc = sqlite3_open_v2(store->db_path, &checkpointer->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(checkpointer->db, OPEN_BUSY_TIMEOUT_MS);
    /* The checkpoint syncs the WAL before copying and the database after. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(checkpointer->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return arb__sqlite_fail(checkpointer->db, rc, "open checkpointer", store->db_path);
    return 0;
}

static int init_sync(arb__sqlite_checkpointer *checkpointer)
{
    pthread_condattr_t attributes;
    if (pthread_condattr_init(&attributes) != 0)
        return ARB_ENOMEM;
    int rc = pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&checkpointer->wake, &attributes);
    pthread_condattr_destroy(&attributes);
    if (rc != 0)
        return ARB_ENOMEM;
    if (pthread_mutex_init(&checkpointer->mutex, NULL) != 0) {
        pthread_cond_destroy(&checkpointer->wake);
        return ARB_ENOMEM;
    }
    if (pthread_mutex_init(&checkpointer->writer_mutex, NULL) != 0) {
        pthread_mutex_destroy(&checkpointer->mutex);
        pthread_cond_destroy(&checkpointer->wake);
        return ARB_ENOMEM;
    }
    checkpointer->initialized = true;
    return 0;
}

int arb__sqlite_checkpointer_start(arb__sqlite_store *store)
{
    arb__sqlite_checkpointer *checkpointer = &store->checkpointer;
    ARB_ASSERT(store->db != NULL);
    ARB_ASSERT(!checkpointer->started && checkpointer->db == NULL);
    int rc = open_connection(store);
    if (rc == 0)
        rc = init_sync(checkpointer);
    if (rc != 0)
        return rc;
    ARB_ASSERT(store->page_size_bytes >= 512 && store->page_size_bytes <= 65536);
    /* A WAL frame is a page (plus a 24-byte header). */
    checkpointer->prompt_frames = PROMPT_BYTES / store->page_size_bytes;
    checkpointer->catch_up_frames = CATCH_UP_BYTES / store->page_size_bytes;
    atomic_init(&checkpointer->commits, 0);
    atomic_init(&checkpointer->checkpointed_frames, 0);
    atomic_init(&checkpointer->passes, 0);
    atomic_init(&checkpointer->catch_ups, 0);
    /* After PRAGMA wal_autocheckpoint, which would replace this hook. */
    sqlite3_wal_hook(store->db, wal_hook, checkpointer);
    rc = pthread_create(&checkpointer->thread, NULL, checkpointer_main, store);
    if (rc != 0) {
        sqlite3_wal_hook(store->db, NULL, NULL);
        arb_log(ARB_LOG_ERROR, "cannot start checkpointer thread", "path=\"%s\" errno=%d",
                store->db_path, rc);
        return ARB_EIO;
    }
    checkpointer->started = true;
    return 0;
}

void arb__sqlite_checkpointer_stop(arb__sqlite_store *store)
{
    arb__sqlite_checkpointer *checkpointer = &store->checkpointer;
    if (checkpointer->started) {
        pthread_mutex_lock(&checkpointer->mutex);
        checkpointer->stopping = true;
        pthread_cond_signal(&checkpointer->wake);
        pthread_mutex_unlock(&checkpointer->mutex);
        int rc = pthread_join(checkpointer->thread, NULL);
        ARB_ASSERT(rc == 0);
        checkpointer->started = false;
        sqlite3_wal_hook(store->db, NULL, NULL);
        arb_log(ARB_LOG_DEBUG, "checkpointer stopped", "path=\"%s\" passes=%llu catch_ups=%llu",
                store->db_path, (unsigned long long)atomic_load(&checkpointer->passes),
                (unsigned long long)atomic_load(&checkpointer->catch_ups));
    }
    if (checkpointer->initialized) {
        pthread_cond_destroy(&checkpointer->wake);
        pthread_mutex_destroy(&checkpointer->writer_mutex);
        pthread_mutex_destroy(&checkpointer->mutex);
        checkpointer->initialized = false;
    }
    if (checkpointer->db != NULL) {
        sqlite3_close(checkpointer->db);
        checkpointer->db = NULL;
    }
}
