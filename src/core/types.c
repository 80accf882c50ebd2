/*
 * types.c - life cycle and JSON form of commands, events and outcomes.
 */
#include <string.h>

#include "arbiter/error.h"
#include "arbiter/types.h"
#include "core/assert.h"
#include "core/canon.h"

int arb_copy_name(char *dst, size_t dst_size, const char *src)
{
    ARB_ASSERT(dst_size > 0);
    size_t len = strlen(src);
    if (len >= dst_size) {
        dst[0] = '\0';
        return ARB_ETOO_LARGE;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

void arb_command_init(arb_command *command)
{
    memset(command, 0, sizeof *command);
}

void arb_command_clear(arb_command *command)
{
    json_decref(command->args);
    command->args = NULL;
}

int arb_command_set(arb_command *command, const char *client_id, arb_role role, uint64_t client_seq,
                    const char *stream, const char *action, json_t *args)
{
    if (!json_is_object(args))
        return ARB_EINVALID_ARGUMENT;
    if (arb_copy_name(command->principal.id, sizeof command->principal.id, client_id) != 0 ||
        arb_copy_name(command->stream, sizeof command->stream, stream) != 0 ||
        arb_copy_name(command->action, sizeof command->action, action) != 0)
        return ARB_ETOO_LARGE;
    command->principal.role = role;
    command->client_seq = client_seq;
    json_decref(command->args);
    command->args = json_incref(args);
    return 0;
}

void arb_event_clear(arb_event *event)
{
    json_decref(event->data);
    event->data = NULL;
}

void arb_outcome_init(arb_outcome *outcome)
{
    memset(outcome, 0, sizeof *outcome);
}

void arb_outcome_clear(arb_outcome *outcome)
{
    json_decref(outcome->result);
    json_decref(outcome->details);
    arb_outcome_init(outcome);
}

json_t *arb_event_to_json(const arb_event *event)
{
    char hex[2 * ARB_HASH_BYTES + 1];
    arb_hash_hex(event->hash, hex);
    return json_pack("{s:s, s:I, s:s, s:O, s:s, s:I, s:I, s:s}", "stream", event->stream, "seq",
                     (json_int_t)event->seq, "type", event->type, "data",
                     event->data != NULL ? event->data : json_null(), "client_id", event->client_id,
                     "client_seq", (json_int_t)event->client_seq, "applied_at",
                     (json_int_t)event->applied_at_ms, "hash", hex);
}

static json_t *outcome_events_json(const arb_outcome *outcome)
{
    json_t *events = json_array();
    for (size_t i = 0; events != NULL && i < outcome->event_count; i++) {
        if (json_array_append_new(events, arb_event_to_json(&outcome->events[i])) != 0) {
            json_decref(events);
            return NULL;
        }
    }
    return events;
}

json_t *arb_outcome_to_json(const arb_outcome *outcome)
{
    if (outcome->kind == ARB_OUTCOME_COMMITTED) {
        json_t *events = outcome_events_json(outcome);
        if (events == NULL)
            return NULL;
        return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:O, s:o, s:b}", "status", "committed",
                         "client_id", outcome->client_id, "client_seq",
                         (json_int_t)outcome->client_seq, "stream", outcome->stream, "seq_first",
                         (json_int_t)outcome->seq_first, "seq_last", (json_int_t)outcome->seq_last,
                         "result", outcome->result != NULL ? outcome->result : json_null(),
                         "events", events, "replay", outcome->replay);
    }
    ARB_ASSERT(outcome->kind == ARB_OUTCOME_REJECTED);
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:O, s:I, s:b}", "status", "rejected",
                     "client_id", outcome->client_id, "client_seq", (json_int_t)outcome->client_seq,
                     "stream", outcome->stream, "code", arb_err_name(outcome->code), "message",
                     outcome->message, "details",
                     outcome->details != NULL ? outcome->details : json_null(), "version",
                     (json_int_t)outcome->version, "replay", outcome->replay);
}

/* Stream names: KIND:NAME (types.h). */

static bool kind_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

int arb_stream_name_valid(const char *name, char kind_out[ARB_KIND_BYTES_MAX + 1])
{
    const char *colon = strchr(name, ':');
    if (colon == NULL || colon == name || (size_t)(colon - name) > ARB_KIND_BYTES_MAX)
        return ARB_EINVALID_STREAM;
    if (!(name[0] >= 'a' && name[0] <= 'z'))
        return ARB_EINVALID_STREAM;
    for (const char *p = name; p < colon; p++)
        if (!kind_char(*p))
            return ARB_EINVALID_STREAM;
    size_t rest = strlen(colon + 1);
    if (rest == 0 || (size_t)(colon - name) + 1 + rest > ARB_STREAM_NAME_BYTES_MAX)
        return ARB_EINVALID_STREAM;
    for (const char *p = colon + 1; *p != '\0'; p++)
        if (!name_char(*p))
            return ARB_EINVALID_STREAM;
    memcpy(kind_out, name, (size_t)(colon - name));
    kind_out[colon - name] = '\0';
    return 0;
}
