/*
 * committer.c - the thread that makes batches durable.
 *
 * Group commit in a pipeline: while the committer writes and fsyncs batch N,
 * the engine thread decides batch N+1. At most one batch is in flight; the
 * engine waits for it before posting the next, so batches reach the store in
 * order, and nothing of a batch is acknowledged before its commit returned.
 *
 *     idle --post--> busy --commit returns--> idle (result kept for wait)
 *
 * Ownership: the posted arb_store_batch and everything it points to belong
 * to the engine and must stay untouched until arb__committer_wait returns.
 * Only this thread calls the store while a batch is in flight.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/assert.h"
#include "core/log.h"
#include "engine/internal.h"

static void *committer_main(void *arg)
{
    arb__committer *committer = arg;
    pthread_mutex_lock(&committer->mutex);
    for (;;) {
        while (!committer->stop && committer->batch == NULL)
            pthread_cond_wait(&committer->cond, &committer->mutex);
        if (committer->batch == NULL)
            break; /* stop requested and nothing left to write */
        const arb_store_batch *batch = committer->batch;
        pthread_mutex_unlock(&committer->mutex);
        int rc = committer->store->ops->commit(committer->store, batch);
        pthread_mutex_lock(&committer->mutex);
        committer->result = rc;
        committer->batch = NULL;
        committer->busy = false;
        pthread_cond_broadcast(&committer->cond);
        void (*on_written)(void *user) = committer->on_written;
        void *user = committer->on_written_user;
        if (on_written != NULL) {
            committer->calling = true;
            pthread_mutex_unlock(&committer->mutex);
            on_written(user);
            pthread_mutex_lock(&committer->mutex);
            committer->calling = false;
            pthread_cond_broadcast(&committer->cond);
        }
    }
    pthread_mutex_unlock(&committer->mutex);
    return NULL;
}

int arb__committer_start(arb__committer *committer, arb_store *store)
{
    committer->store = store;
    committer->batch = NULL;
    committer->busy = false;
    committer->calling = false;
    committer->stop = false;
    committer->result = 0;
    if (pthread_mutex_init(&committer->mutex, NULL) != 0)
        return ARB_ENOMEM;
    if (pthread_cond_init(&committer->cond, NULL) != 0) {
        pthread_mutex_destroy(&committer->mutex);
        return ARB_ENOMEM;
    }
    if (pthread_create(&committer->thread, NULL, committer_main, committer) != 0) {
        pthread_cond_destroy(&committer->cond);
        pthread_mutex_destroy(&committer->mutex);
        return ARB_ENOMEM;
    }
    committer->started = true;
    return 0;
}

void arb__committer_post(arb__committer *committer, const arb_store_batch *batch)
{
    pthread_mutex_lock(&committer->mutex);
    ARB_ASSERT(!committer->busy && committer->batch == NULL);
    committer->batch = batch;
    committer->busy = true;
    committer->result = 0;
    pthread_cond_broadcast(&committer->cond);
    pthread_mutex_unlock(&committer->mutex);
}

int arb__committer_wait(arb__committer *committer)
{
    pthread_mutex_lock(&committer->mutex);
    while (committer->busy)
        pthread_cond_wait(&committer->cond, &committer->mutex);
    int rc = committer->result;
    committer->result = 0;
    pthread_mutex_unlock(&committer->mutex);
    return rc;
}

bool arb__committer_busy(arb__committer *committer)
{
    pthread_mutex_lock(&committer->mutex);
    bool busy = committer->busy;
    pthread_mutex_unlock(&committer->mutex);
    return busy;
}

void arb__committer_stop(arb__committer *committer)
{
    if (!committer->started)
        return;
    pthread_mutex_lock(&committer->mutex);
    committer->stop = true;
    pthread_cond_broadcast(&committer->cond);
    pthread_mutex_unlock(&committer->mutex);
    pthread_join(committer->thread, NULL);
    pthread_cond_destroy(&committer->cond);
    pthread_mutex_destroy(&committer->mutex);
    committer->started = false;
}
