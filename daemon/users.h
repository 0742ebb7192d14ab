/* Who a job runs as: a job owner's name, home, shell and groups, cached
 * for a minute so dispatch does not hit the user database on every
 * start. Lookups go through NSS; with local files they take
 * microseconds, and the cache bounds how often a slow source is asked. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct user_info {
        uid_t uid;
        gid_t gid;
        char *name, *home, *shell;   /* never NULL once looked up */
        gid_t *groups;               /* supplementary groups, incl. gid */
        int ngroups;
        int64_t fetched_ms;          /* monotonic */
};

/* The cached entry for uid (looked up if missing or stale). A uid with
 * no passwd entry still gets an entry: its name is the number, home "/"
 * and its only group the gid it submitted with. The pointer is valid
 * until the next call. */
const struct user_info *users_lookup(uid_t uid, gid_t fallback_gid);
void users_flush(void);
