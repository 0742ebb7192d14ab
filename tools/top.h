/* ringq top: what one frame shows, shared by the refresh loop (top.c) and
 * the layout (top_view.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "screen.h"

/* Rows above the running jobs, without the queues panel; the list request
 * asks for what the panel leaves of the rest. */
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

/* Rows the queues panel takes for this stats reply on a term of cols x
 * rows (rows 0: no limit): 0 if the reply has no queues or the screen no
 * room for them. A refresh sizes its list request with the last reply's;
 * should the panel grow meanwhile, the jobs that no longer fit are left
 * out of that frame. */
unsigned top_queue_rows(const json_t *stats, unsigned cols, unsigned rows);

/* Draw one frame; 0 or -ENOMEM. */
int top_render(struct frame *fr, const struct top_view *v);
