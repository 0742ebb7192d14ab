/* UTF-8 as ringqd and its tools take it, in one place: no overlong
 * forms, no surrogates, nothing above U+10FFFF. JSON strings must be
 * valid UTF-8 (the daemon's replies, the CLI's requests), and the log
 * quotes everything else as bytes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence that starts at s (1..4), or 0 if none
 * does: a stray or missing continuation byte (a NUL included), an
 * overlong form, a surrogate, a code point above U+10FFFF. s[0] may be
 * the terminating NUL only if the caller wants 1 for it. */
static inline size_t ringq_utf8_len(const unsigned char *s)
{
        unsigned c = s[0];
        size_t n;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c < 0xc2 || c > 0xf4)
                return 0;
        n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        cp = c & (0x7f >> n);
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return n;
}

/* Is the NUL-terminated s valid UTF-8 throughout? */
static inline bool ringq_utf8_valid(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                size_t n = ringq_utf8_len(p);
                if (!n)
                        return false;
                p += n;
        }
        return true;
}
