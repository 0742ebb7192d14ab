/* ringq top: what one frame shows, shared by the refresh loop (top.c) and
 * the layout (top_view.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "screen.h"

/* Rows above the running jobs; the list request asks for the rest. */
#define TOP_HEAD_ROWS 12

enum { TOP_ACCEPTED, TOP_REJECTED, TOP_FINISHED, _TOP_RATE_MAX };

struct top_view {
        const json_t *stats;         /* a stats reply */
        const json_t *jobs;          /* a list reply of running jobs, or NULL */
        double rate[_TOP_RATE_MAX];  /* per second, when have_rate */
        bool have_rate;
        int64_t interval_ms;
        int64_t stale_ms;            /* > 0: the next refresh has had no
                                        reply for this long */
};

/* An integer field of a reply; 0 when it is missing. */
static inline int64_t jint(const json_t *o, const char *key)
{
        return json_integer_value(json_object_get(o, key));
}

/* Draw one frame; 0 or -ENOMEM. */
int top_render(struct frame *fr, const struct top_view *v);
