/* What a job's process is given, built from its record: argv, the
 * environment, the paths execvp would try, the supplementary groups.
 * Pure (no I/O), so it is unit-tested apart from the spawning. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

struct job_rec;
struct user_info;

/* The PATH of a job submitted without an environment. */
#define JOBARGS_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
/* The most supplementary groups a job may have (NGROUPS_MAX of Linux). */
#define JOBARGS_GROUPS_MAX 65536

/* A NULL-terminated vector; NULL frees nothing. */
void strv_free(char **v);
/* argv from its JSON text (a non-empty array of strings): NULL when it is
 * not one, or out of memory. */
char **jobargs_argv(const char *argv_json);
/* The environment: what the client sent (env), or the minimal one (PATH,
 * and the owner's HOME, USER, LOGNAME, SHELL), always with RINGQ_JOB_ID
 * first and RINGQ_ATTEMPT second (which a request cannot set). *ret_path
 * is the job's PATH (malloc'd). NULL on a bad env text or out of memory.
 * env_obj, when not NULL, is j->env already parsed (the request's own
 * object, for a job started from its submit): a second parse of the
 * client's environment was a third of what ringqd executed for such a
 * job. */
char **jobargs_env(const struct job_rec *j, const json_t *env_obj, const struct user_info *u, int attempt,
                   char **ret_path);
/* execvp's candidates: argv0 itself if it has a '/', else each entry of
 * path joined with it (an empty entry is the working directory). */
char **jobargs_paths(const char *argv0, const char *path);
/* The groups recorded with a job (a JSON array of gids): 0, -EBADMSG or
 * -ENOMEM; *ret is malloc'd. */
int jobargs_groups(const char *groups_json, gid_t **ret, size_t *ret_n);
