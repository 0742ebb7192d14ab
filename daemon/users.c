#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "util.h"

#define CACHE_SIZE 32
#define TTL_MS 60000
#define GROUPS_MAX 1024

static struct user_info cache[CACHE_SIZE];
static unsigned ncache;

static void info_done(struct user_info *u)
{
        free(u->name);
        free(u->home);
        free(u->shell);
        free(u->groups);
        *u = (struct user_info){ 0 };
}

static int fill(struct user_info *u, uid_t uid, gid_t fallback_gid)
{
        struct passwd pw, *res = NULL;
        char buf[4096];
        gid_t groups[GROUPS_MAX];
        int n = GROUPS_MAX;

        *u = (struct user_info){ .uid = uid, .gid = fallback_gid, .fetched_ms = now_mono_ms() };
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res) {
                u->gid = pw.pw_gid;
                u->name = strdup(pw.pw_name);
                u->home = strdup(pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/");
                u->shell = strdup(pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh");
                if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
                        n = 0; /* more than GROUPS_MAX: keep the primary only */
        } else {
                if (asprintf(&u->name, "%u", (unsigned)uid) < 0)
                        u->name = NULL;
                u->home = strdup("/");
                u->shell = strdup("/bin/sh");
                n = 0;
        }
        if (n == 0) {
                groups[0] = u->gid;
                n = 1;
        }
        u->groups = malloc((size_t)n * sizeof(gid_t));
        if (!u->name || !u->home || !u->shell || !u->groups) {
                info_done(u);
                return -ENOMEM;
        }
        memcpy(u->groups, groups, (size_t)n * sizeof(gid_t));
        u->ngroups = n;
        return 0;
}

const struct user_info *users_lookup(uid_t uid, gid_t fallback_gid)
{
        int64_t now = now_mono_ms();
        unsigned i, oldest = 0;

        for (i = 0; i < ncache; i++) {
                if (cache[i].uid != uid)
                        continue;
                if (now - cache[i].fetched_ms < TTL_MS)
                        return &cache[i];
                info_done(&cache[i]);
                return fill(&cache[i], uid, fallback_gid) < 0 ? NULL : &cache[i];
        }
        if (ncache < CACHE_SIZE)
                i = ncache++;
        else {
                for (i = 1; i < CACHE_SIZE; i++)
                        if (cache[i].fetched_ms < cache[oldest].fetched_ms)
                                oldest = i;
                i = oldest;
                info_done(&cache[i]);
        }
        if (fill(&cache[i], uid, fallback_gid) < 0) {
                /* Keep the table dense: move the last entry here. */
                cache[i] = cache[--ncache];
                cache[ncache] = (struct user_info){ 0 };
                return NULL;
        }
        return &cache[i];
}

void users_flush(void)
{
        for (unsigned i = 0; i < ncache; i++)
                info_done(&cache[i]);
        ncache = 0;
}
