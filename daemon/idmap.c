#include <errno.h>
#include <stdlib.h>

#include "idmap.h"

static size_t hash(int64_t id, size_t cap)
{
        uint64_t x = (uint64_t)id * UINT64_C(0x9E3779B97F4A7C15);
        return (size_t)(x >> 17) & (cap - 1);
}

static struct idmap_slot *find(const struct idmap *m, int64_t id)
{
        if (!m->cap)
                return NULL;
        for (size_t i = hash(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
                struct idmap_slot *s = &m->slots[i];
                if (s->key == id)
                        return s;
                if (s->key == 0)
                        return NULL;
        }
}

void *idmap_get(const struct idmap *m, int64_t id)
{
        struct idmap_slot *s = find(m, id);
        return s ? s->value : NULL;
}

static int rehash(struct idmap *m, size_t cap)
{
        struct idmap_slot *old = m->slots, *slots;
        size_t oldcap = m->cap;

        slots = calloc(cap, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        m->slots = slots;
        m->cap = cap;
        m->used = m->n;
        for (size_t i = 0; i < oldcap; i++) {
                if (old[i].key <= 0)
                        continue;
                size_t j = hash(old[i].key, cap);
                while (slots[j].key)
                        j = (j + 1) & (cap - 1);
                slots[j] = old[i];
        }
        free(old);
        return 0;
}

int idmap_put(struct idmap *m, int64_t id, void *value)
{
        struct idmap_slot *s = find(m, id);
        size_t i;

        if (s) {
                s->value = value;
                return 0;
        }
        if ((m->used + 1) * 10 > m->cap * 7) {
                size_t cap = m->cap ? m->cap : 16;
                while ((m->n + 1) * 10 > cap * 5)
                        cap *= 2;
                if (rehash(m, cap) < 0)
                        return -ENOMEM;
        }
        for (i = hash(id, m->cap); m->slots[i].key > 0; i = (i + 1) & (m->cap - 1))
                ;
        if (m->slots[i].key == 0)
                m->used++;
        m->slots[i] = (struct idmap_slot){ id, value };
        m->n++;
        return 0;
}

void *idmap_remove(struct idmap *m, int64_t id)
{
        struct idmap_slot *s = find(m, id);
        void *v;

        if (!s)
                return NULL;
        v = s->value;
        s->key = -1;
        s->value = NULL;
        m->n--;
        /* Shrink back once a burst is over, so memory follows the load. */
        if (m->n == 0 && m->cap > 1024) {
                free(m->slots);
                *m = (struct idmap){ 0 };
        }
        return v;
}

void idmap_done(struct idmap *m)
{
        free(m->slots);
        *m = (struct idmap){ 0 };
}
