/* What a job's process is given (jobargs.h). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "jobargs.h"
#include "users.h"
#include "util.h"

void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

char **jobargs_argv(const char *text)
{
        json_t *a = json_loads(text, 0, NULL), *v;
        char **argv = NULL;
        size_t i;

        if (!json_is_array(a) || json_array_size(a) == 0)
                goto out;
        argv = calloc(json_array_size(a) + 1, sizeof(char *));
        if (!argv)
                goto out;
        json_array_foreach(a, i, v) {
                argv[i] = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
                if (!argv[i]) {
                        strv_free(argv);
                        argv = NULL;
                        goto out;
                }
        }
out:
        json_decref(a);
        return argv;
}

static int strv_push(char ***v, size_t *n, size_t *cap, char *str)
{
        if (!str)
                return -ENOMEM;
        if (grow_array((void **)v, cap, *n + 2, sizeof(char *)) < 0) {
                free(str);
                return -ENOMEM;
        }
        (*v)[(*n)++] = str;
        (*v)[*n] = NULL;
        return 0;
}

/* Not asprintf: its format machinery cost more than the copies, once
 * for each of a job's variables. */
static char *kv(const char *k, const char *v)
{
        size_t nk = strlen(k), nv = strlen(v);
        char *s = malloc(nk + nv + 2);

        if (s) {
                memcpy(s, k, nk);
                s[nk] = '=';
                memcpy(s + nk + 1, v, nv + 1);
        }
        return s;
}

static bool ringq_var(const char *k)
{
        return strcmp(k, "RINGQ_JOB_ID") == 0 || strcmp(k, "RINGQ_ATTEMPT") == 0 ||
               strcmp(k, "RINGQ_INTERRUPTIONS") == 0;
}

char **jobargs_env(const struct job_rec *j, const json_t *env_obj, const struct user_info *u, int attempt,
                   char **ret_path)
{
        char **env = NULL, buf[32];
        size_t n = 0, cap = 0;
        const char *path = JOBARGS_DEFAULT_PATH;
        json_t *o = NULL, *v;
        const json_t *e;
        const char *k;
        int r;

        /* First, so recovery finds the id at the start of
         * /proc/<pid>/environ however large the rest is. */
        snprintf(buf, sizeof(buf), "%" PRId64, j->id);
        r = strv_push(&env, &n, &cap, kv("RINGQ_JOB_ID", buf));
        snprintf(buf, sizeof(buf), "%d", attempt);
        if (r == 0)
                r = strv_push(&env, &n, &cap, kv("RINGQ_ATTEMPT", buf));
        /* Only once a run of the job was cut short by ringqd stopping or
         * crashing: a run with the same RINGQ_ATTEMPT may have left its
         * work half done. */
        if (r == 0 && j->interruptions > 0) {
                snprintf(buf, sizeof(buf), "%d", j->interruptions);
                r = strv_push(&env, &n, &cap, kv("RINGQ_INTERRUPTIONS", buf));
        }
        if (r < 0)
                goto fail;
        if (j->env) {
                e = env_obj ? env_obj : (o = json_loads(j->env, 0, NULL));
                if (!json_is_object(e))
                        goto fail;
                json_object_foreach((json_t *)e, k, v) {
                        if (!json_is_string(v) || ringq_var(k))
                                continue;
                        if (strcmp(k, "PATH") == 0)
                                path = json_string_value(v);
                        r = strv_push(&env, &n, &cap, kv(k, json_string_value(v)));
                        if (r < 0)
                                goto fail;
                }
        } else {
                r = strv_push(&env, &n, &cap, kv("PATH", JOBARGS_DEFAULT_PATH));
                if (r == 0)
                        r = strv_push(&env, &n, &cap, kv("HOME", u->home));
                if (r == 0)
                        r = strv_push(&env, &n, &cap, kv("USER", u->name));
                if (r == 0)
                        r = strv_push(&env, &n, &cap, kv("LOGNAME", u->name));
                if (r == 0)
                        r = strv_push(&env, &n, &cap, kv("SHELL", u->shell));
                if (r < 0)
                        goto fail;
        }
        *ret_path = strdup(path);
        if (!*ret_path)
                goto fail;
        json_decref(o);
        return env;
fail:
        json_decref(o);
        strv_free(env);
        return NULL;
}

char **jobargs_paths(const char *argv0, const char *path)
{
        char **v = NULL;
        size_t n = 0, cap = 0;

        if (strchr(argv0, '/')) {
                if (strv_push(&v, &n, &cap, strdup(argv0)) < 0)
                        return NULL;
                return v;
        }
        for (const char *p = path;; ) {
                size_t len = strcspn(p, ":");
                char *cand;
                if (asprintf(&cand, "%.*s%s%s", (int)len, p, len ? "/" : "", argv0) < 0)
                        cand = NULL;
                if (strv_push(&v, &n, &cap, cand) < 0) {
                        strv_free(v);
                        return NULL;
                }
                if (!p[len])
                        break;
                p += len + 1;
        }
        return v;
}

int jobargs_groups(const char *text, gid_t **ret, size_t *ret_n)
{
        json_t *a = json_loads(text, 0, NULL), *v;
        gid_t *g = NULL;
        size_t i, n;

        if (!json_is_array(a) || json_array_size(a) > JOBARGS_GROUPS_MAX) {
                json_decref(a);
                return -EBADMSG;
        }
        n = json_array_size(a);
        g = malloc(MAX(n, 1) * sizeof(*g));
        if (!g) {
                json_decref(a);
                return -ENOMEM;
        }
        json_array_foreach(a, i, v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX - 1) {
                        free(g);
                        json_decref(a);
                        return -EBADMSG;
                }
                g[i] = (gid_t)json_integer_value(v);
        }
        json_decref(a);
        *ret = g;
        *ret_n = n;
        return 0;
}
