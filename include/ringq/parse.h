/* Parsing of the values a user types: durations and sizes.
 *
 * Shared by ringqd's config and the CLI's flags so that "30s" means the
 * same thing everywhere. Pure functions, no allocation.
 */
#pragma once

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ringq/protocol.h"

/* Parse a non-negative decimal integer prefix; *end is set past it.
 * Returns 0, -EINVAL (no digits) or -ERANGE. */
static inline int ringq_parse_u64(const char *s, uint64_t *ret, const char **end)
{
        uint64_t v = 0;
        const char *p = s;

        if (!isdigit((unsigned char)*p))
                return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        *end = p;
        return 0;
}

/* "250ms", "30s", "5m", "2h", "7d"; a bare number is seconds. The result
 * is in milliseconds, at most RINGQ_DURATION_MAX_MS. */
static inline int ringq_parse_duration_ms(const char *s, int64_t *ret_ms)
{
        static const struct { const char *suffix; uint64_t ms; } units[] = {
                { "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
                { "h", 3600000 }, { "d", 86400000 },
        };
        uint64_t v;
        const char *end;
        int r;

        if (!s)
                return -EINVAL;
        r = ringq_parse_u64(s, &v, &end);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(end, units[i].suffix) != 0)
                        continue;
                if (v > (uint64_t)RINGQ_DURATION_MAX_MS / units[i].ms)
                        return -ERANGE;
                *ret_ms = (int64_t)(v * units[i].ms);
                return 0;
        }
        return -EINVAL;
}

/* "65536", "64K", "16M", "1G" (binary units, with or without "iB"/"B"). */
static inline int ringq_parse_size(const char *s, uint64_t *ret)
{
        static const struct { const char *suffix; unsigned shift; } units[] = {
                { "", 0 }, { "B", 0 },
                { "K", 10 }, { "KB", 10 }, { "KiB", 10 }, { "k", 10 },
                { "M", 20 }, { "MB", 20 }, { "MiB", 20 },
                { "G", 30 }, { "GB", 30 }, { "GiB", 30 },
        };
        uint64_t v;
        const char *end;
        int r;

        if (!s)
                return -EINVAL;
        r = ringq_parse_u64(s, &v, &end);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(end, units[i].suffix) != 0)
                        continue;
                if (v > (UINT64_MAX >> units[i].shift))
                        return -ERANGE;
                *ret = v << units[i].shift;
                return 0;
        }
        return -EINVAL;
}
