/* A hash map from job id (> 0) to a pointer, open addressing with linear
 * probing. Used for the few per-job facts the loop must find by id:
 * waiters on a job, and queued jobs canceled before they were popped. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
        int64_t key;    /* 0: empty, -1: deleted */
        void *value;
};

struct idmap {
        struct idmap_slot *slots;
        size_t cap, n, used; /* used counts deleted slots too */
};

void *idmap_get(const struct idmap *m, int64_t id);
/* Insert or replace. Returns 0 or -ENOMEM. */
int idmap_put(struct idmap *m, int64_t id, void *value);
/* Remove and return the value (NULL if absent). */
void *idmap_remove(struct idmap *m, int64_t id);
void idmap_done(struct idmap *m);
