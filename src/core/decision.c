/*
 * decision.c - the decision buffer that rule modules fill, and the argument
 * readers they share (see include/arbiter/rules.h).
 *
 * The readers reject on the decision directly, naming the field, so every
 * domain reports a missing or mistyped argument the same way.
 */
#include <stdio.h>
#include <string.h>

#include "arbiter/rules.h"
#include "core/assert.h"

void arb_decision_init(arb_decision *decision)
{
    decision->code = 0;
    decision->message[0] = '\0';
    decision->details = NULL;
    decision->result = NULL;
    decision->event_count = 0;
}

void arb_decision_clear(arb_decision *decision)
{
    for (size_t i = 0; i < decision->event_count; i++)
        json_decref(decision->events[i].data);
    json_decref(decision->details);
    json_decref(decision->result);
    arb_decision_init(decision);
}

int arb_decision_emit(arb_decision *decision, const char *type, json_t *data)
{
    ARB_ASSERT(decision->code == 0);
    if (data == NULL)
        return ARB_ENOMEM;
    if (decision->event_count >= ARB_DECISION_EVENTS_MAX) {
        json_decref(data);
        return ARB_ELIMIT;
    }
    arb_decision_event *event = &decision->events[decision->event_count];
    if (arb_copy_name(event->type, sizeof event->type, type) != 0) {
        json_decref(data);
        return ARB_ETOO_LARGE;
    }
    event->data = data;
    decision->event_count++;
    return 0;
}

int arb_decision_reject(arb_decision *decision, int code, json_t *details, const char *format, ...)
{
    ARB_ASSERT(code < 0);
    for (size_t i = 0; i < decision->event_count; i++)
        json_decref(decision->events[i].data);
    decision->event_count = 0;
    json_decref(decision->result);
    decision->result = NULL;
    json_decref(decision->details);
    decision->details = details;
    decision->code = code;
    if (format == NULL) {
        snprintf(decision->message, sizeof decision->message, "%s", arb_err_message(code));
    } else {
        va_list args;
        va_start(args, format);
        vsnprintf(decision->message, sizeof decision->message, format, args);
        va_end(args);
    }
    return code;
}

void arb_decision_set_result(arb_decision *decision, json_t *result)
{
    json_decref(decision->result);
    decision->result = result;
}

static int reject_field(arb_decision *decision, int code, const char *key, const char *why)
{
    return arb_decision_reject(decision, code, json_pack("{s:s}", "field", key), "%s: %s", key,
                               why);
}

int arb_args_string(const json_t *args, const char *key, size_t size_max, bool required,
                    const char **value_out, arb_decision *decision)
{
    json_t *value = json_object_get(args, key);
    *value_out = NULL;
    if (value == NULL) {
        if (!required)
            return 0;
        return reject_field(decision, ARB_EINVALID_ARGUMENT, key, "required");
    }
    if (!json_is_string(value))
        return reject_field(decision, ARB_EINVALID_ARGUMENT, key, "must be a string");
    size_t len = json_string_length(value);
    if (len == 0 || len > size_max || strlen(json_string_value(value)) != len)
        return reject_field(decision, ARB_EINVALID_ARGUMENT, key, "empty or too long");
    *value_out = json_string_value(value);
    return 0;
}

int arb_args_int(const json_t *args, const char *key, int64_t min, int64_t max, bool required,
                 int out_of_range_code, int64_t *value_out, arb_decision *decision)
{
    ARB_ASSERT(min <= max);
    json_t *value = json_object_get(args, key);
    if (value == NULL) {
        if (!required)
            return 0;
        return reject_field(decision, ARB_EINVALID_ARGUMENT, key, "required");
    }
    if (!json_is_integer(value))
        return reject_field(decision, out_of_range_code, key, "must be an integer");
    json_int_t number = json_integer_value(value);
    if (number < min || number > max) {
        return arb_decision_reject(decision, out_of_range_code,
                                   json_pack("{s:s, s:I, s:I}", "field", key, "min",
                                             (json_int_t)min, "max", (json_int_t)max),
                                   "%s: must be between %lld and %lld", key, (long long)min,
                                   (long long)max);
    }
    *value_out = number;
    return 0;
}
