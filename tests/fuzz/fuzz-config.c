/* fuzz-config: bytes as a config file -> config_init,
 * config_parse_buffer, config_finalize, config_done.
 *
 * Besides the sanitizers it checks what an operator relies on: a bad
 * file is an error that names the line ("<name>:<line>: ..."), and a
 * file that is accepted leaves a configuration within the documented
 * bounds (absolute paths, low_water below high_water, counts in range).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "fuzz-config: check failed at %s:%d: %s\n", __FILE__, \
                                __LINE__, #x);                                               \
                        abort();                                                             \
                }                                                                            \
        } while (0)

#define NAME "fuzz.conf"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        /* config_init reads these; keep the defaults the same every run. */
        unsetenv("STATE_DIRECTORY");
        unsetenv("RUNTIME_DIRECTORY");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct config c;
        char *err = (char *)1;
        int r;

        config_init(&c);
        r = config_parse_buffer(&c, (const char *)data, size, NAME, &err);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -ENOMEM);
                if (r == -EINVAL) {
                        unsigned line = 0;
                        /* Every parse error names the file and the line. */
                        CHECK(err);
                        CHECK(strncmp(err, NAME ":", strlen(NAME ":")) == 0);
                        CHECK(sscanf(err + strlen(NAME ":"), "%u:", &line) == 1 && line >= 1);
                }
                free(err);
                config_done(&c);
                return 0;
        }
        CHECK(err == NULL);
        r = config_finalize(&c, &err);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -ENOMEM);
                CHECK(r == -ENOMEM || (err && err[0]));
                free(err);
                config_done(&c);
                return 0;
        }
        CHECK(err == NULL);
        CHECK(c.state_dir && c.state_dir[0] == '/');
        CHECK(c.socket && c.socket[0] == '/');
        CHECK(c.workers >= 1 && c.workers <= 1024);
        CHECK(c.high_water >= 1);
        CHECK(c.low_water < c.high_water);
        CHECK(c.max_clients >= 1);
        CHECK(c.max_request_bytes >= 256);
        CHECK(c.default_timeout_ms >= 1);
        CHECK(c.kill_grace_ms >= 0);
        CHECK(c.retention_ms >= 0);
        CHECK(c.durability >= 0 && c.durability < _DURABILITY_MAX);
        CHECK(c.shutdown_grace_ms >= 0);
        CHECK(c.idle_timeout_ms >= 100);
        CHECK(c.max_pipeline >= 1);
        CHECK(c.max_reply_bytes >= 4096);
        CHECK(c.busy_timeout_ms >= 0);
        CHECK(c.max_batch >= 1);
        config_done(&c);
        return 0;
}
