/* Definitions behind util.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

int grow_array(void **array, size_t *cap, size_t need, size_t sz)
{
        size_t n = *cap ? *cap : 8;
        void *p;

        if (need <= *cap)
                return 0;
        while (n < need) {
                if (n > SIZE_MAX / 2 / sz)
                        return -ENOMEM;
                /* 1.5x keeps the slack of big arrays (the dispatch heap
                 * with a million entries) at a third, not a half. */
                n += n / 2 + 1;
        }
        p = realloc(*array, n * sz);
        if (!p)
                return -ENOMEM;
        *array = p;
        *cap = n;
        return 0;
}

int set_error(char **ret_err, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret_err, fmt, ap) < 0)
                *ret_err = NULL;
        va_end(ap);
        return r;
}
