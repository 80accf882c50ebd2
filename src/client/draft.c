/*
 * draft.c - per followed stream: the confirmed state, and the draft built on
 * it by replaying the client's pending proposals with the stream's rule
 * module (the same decide and evolve the server runs).
 *
 *   confirmed  loaded from the server's view (rules->view_load) and moved
 *              only by the server's events (arb__draft_fold);
 *   draft      rebuilt lazily when confirmed or pending changed: a copy of
 *              confirmed (the module's state_clone, or else view then
 *              view_load) with every OPTIMISTIC pending
 *              proposal of the stream decided and evolved in order. A
 *              proposal whose prediction is a rejection is not applied and
 *              keeps its place: the server decides. NULL when no proposal
 *              applies, and the view is then confirmed's.
 *
 * The prediction's context is the client's: the server's clock estimated
 * from the welcome's server_time, no randomness (a module that needs it
 * rejects, and the proposal shows as pending), and seqs counted on from the
 * confirmed version.
 */
#include <string.h>

#include "arbiter/error.h"
#include "client/internal.h"
#include "core/assert.h"
#include "core/log.h"

static void timer_ignore(void *user, int64_t at_ms, const char *action, json_t *args)
{
    (void)user, (void)at_ms, (void)action, (void)args;
}

/* The client runs no timers: the server's arrive as events. */
static const arb_timer_sink no_timers = {.add = timer_ignore, .user = NULL};

arb__follow *arb__draft_find(arb_client *client, const char *name)
{
    for (size_t i = 0; i < ARB_WIRE_SUBSCRIPTIONS_MAX; i++) {
        arb__follow *stream = &client->streams[i];
        if (stream->used && strcmp(stream->name, name) == 0)
            return stream;
    }
    return NULL;
}

static void free_state(const arb_rules *rules, void **state)
{
    if (*state != NULL)
        rules->state_free(*state);
    *state = NULL;
}

void arb__draft_clear(arb__follow *stream)
{
    if (stream->rules != NULL) {
        free_state(stream->rules, &stream->draft);
        free_state(stream->rules, &stream->confirmed);
    }
    memset(stream, 0, sizeof *stream);
}

void arb__draft_changed(arb_client *client, arb__follow *stream)
{
    stream->draft_dirty = true;
    ARB__CLIENT_CALL(client, view_changed, stream->name);
}

int arb__draft_load(arb_client *client, arb__follow *stream, const json_t *view, uint64_t seq)
{
    void *state;
    int rc = stream->rules->view_load(view, seq, &client->me, &state);
    if (rc != 0)
        return rc;
    free_state(stream->rules, &stream->confirmed);
    stream->confirmed = state;
    stream->version = seq;
    stream->save_due = true;
    arb__draft_changed(client, stream);
    return 0;
}

int arb__draft_fold(arb_client *client, arb__follow *stream, const arb_event *events, size_t count,
                    uint64_t seq)
{
    if (stream->confirmed == NULL)
        return 0;
    size_t folded = 0;
    for (size_t i = 0; i < count; i++) {
        if (events[i].seq <= stream->version)
            continue; /* already in confirmed (a snapshot or a patch brought it) */
        if (stream->rules->evolve(stream->confirmed, &events[i], &no_timers) != 0) {
            arb_log(ARB_LOG_WARN, "client",
                    "stream %s: event %llu does not fit the confirmed state", stream->name,
                    (unsigned long long)events[i].seq);
            free_state(stream->rules, &stream->confirmed);
            free_state(stream->rules, &stream->draft);
            stream->version = 0;
            arb__draft_changed(client, stream);
            return ARB_ECORRUPT;
        }
        stream->version = events[i].seq;
        folded++;
        /* This client's own proposal, in confirmed before its verdict came:
         * the replay must not apply it a second time. */
        if (strcmp(events[i].client_id, client->me.id) == 0) {
            arb__pending *own = arb__client_find_pending(client, events[i].client_seq);
            if (own != NULL && strcmp(own->command.stream, stream->name) == 0)
                own->folded = true;
        }
    }
    /* Events this viewer may not see leave gaps: the patch's seq is the
     * stream's version all the same. */
    if (seq > stream->version) {
        stream->version = seq;
        folded++;
    }
    if (folded > 0) {
        stream->save_due = true;
        arb__draft_changed(client, stream);
    }
    return 0;
}

/* A copy of confirmed: the module's own copy, or through the viewer's view. */
static int clone_confirmed(arb_client *client, arb__follow *stream, void **state_out)
{
    if (stream->rules->state_clone != NULL)
        return stream->rules->state_clone(stream->confirmed, state_out);
    json_t *view = stream->rules->view(stream->confirmed, &client->me);
    if (view == NULL)
        return ARB_ENOMEM;
    int rc = stream->rules->view_load(view, stream->version, &client->me, state_out);
    json_decref(view);
    return rc;
}

/* Decide pending against draft and evolve draft with the events: 0 when
 * applied, the prediction's code when it rejects, ARB_ECORRUPT when an event
 * does not evolve (draft is then unusable). */
static int predict(arb_client *client, arb__follow *stream, void *draft, uint64_t *version,
                   arb__pending *pending)
{
    /* The server's clock as the client estimates it, kept in the range the
     * rules accept whatever the offset the welcome gave. */
    int64_t now = arb__client_now_ms();
    int64_t offset = client->clock_offset_ms;
    int64_t estimate =
        offset > ARB__CLIENT_SERVER_TIME_MAX - now ? ARB__CLIENT_SERVER_TIME_MAX : now + offset;
    arb_ctx ctx = {
        .now_ms = estimate < 0 ? 0 : estimate,
        .next_seq = *version + 1,
        .version = *version,
    };
    arb_decision decision;
    arb_decision_init(&decision);
    stream->rules->decide(draft, &pending->command, &ctx, &decision);
    int rc = decision.code;
    for (size_t i = 0; i < decision.event_count && rc == 0; i++) {
        arb_event event;
        memset(&event, 0, sizeof event);
        memcpy(event.stream, stream->name, sizeof event.stream);
        event.seq = *version + 1;
        memcpy(event.type, decision.events[i].type, sizeof event.type);
        event.data = decision.events[i].data;
        memcpy(event.client_id, client->me.id, sizeof event.client_id);
        event.client_seq = pending->command.client_seq;
        event.applied_at_ms = ctx.now_ms;
        if (stream->rules->evolve(draft, &event, &no_timers) != 0)
            rc = ARB_ECORRUPT;
        else
            *version = event.seq;
    }
    arb_decision_clear(&decision);
    return rc;
}

/* Replay the stream's OPTIMISTIC proposals onto a fresh copy of confirmed.
 * A proposal that breaks the copy (an event that does not evolve: a module
 * bug) is marked and the replay starts over without it. */
static int rebuild(arb_client *client, arb__follow *stream)
{
    for (;;) {
        void *draft = NULL;
        uint64_t version = stream->version;
        bool broken = false;
        for (arb__pending *p = client->head; p != NULL && !broken; p = p->next) {
            if (strcmp(p->command.stream, stream->name) != 0 || p->policy != ARB_POLICY_OPTIMISTIC)
                continue;
            p->applied = false;
            if (p->predicted_code == ARB_ECORRUPT || p->folded)
                continue;
            if (draft == NULL) {
                int rc = clone_confirmed(client, stream, &draft);
                if (rc != 0)
                    return rc;
            }
            int code = predict(client, stream, draft, &version, p);
            p->predicted_code = code;
            p->applied = code == 0;
            broken = code == ARB_ECORRUPT;
        }
        if (broken) {
            stream->rules->state_free(draft);
            continue;
        }
        stream->draft = draft;
        return 0;
    }
}

int arb__draft_refresh(arb_client *client, arb__follow *stream)
{
    if (!stream->draft_dirty)
        return 0;
    free_state(stream->rules, &stream->draft);
    int rc = 0;
    if (stream->confirmed != NULL)
        rc = rebuild(client, stream);
    else
        for (arb__pending *p = client->head; p != NULL; p = p->next) {
            if (strcmp(p->command.stream, stream->name) == 0) {
                p->applied = false;
                p->predicted_code = 0;
            }
        }
    if (rc == 0)
        stream->draft_dirty = false;
    return rc;
}

json_t *arb__draft_view(arb_client *client, arb__follow *stream, bool draft)
{
    if (draft && arb__draft_refresh(client, stream) != 0)
        return NULL;
    const void *state = draft && stream->draft != NULL ? stream->draft : stream->confirmed;
    return state != NULL ? stream->rules->view(state, &client->me) : NULL;
}
