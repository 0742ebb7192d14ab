/* Definitions behind util.h. */
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
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

int mkdir_p(const char *path, mode_t mode)
{
        char buf[4096];
        size_t len = strlen(path);

        if (len >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;
                *p = '\0';
                if (mkdir(buf, mode) == 0)
                        (void)chmod(buf, mode);
                else if (errno != EEXIST)
                        return -errno;
                *p = c;
                if (!c)
                        return 0;
        }
}

ssize_t read_small_at(int dirfd, const char *name, char *buf, size_t size)
{
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        n = n < 0 ? -errno : n;
        close(fd);
        if (n >= 0)
                buf[n] = '\0';
        return n;
}
