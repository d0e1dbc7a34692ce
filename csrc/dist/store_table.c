/* store_table.c: the server's key table (see store_table.h). */
#include <stdlib.h>
#include <string.h>

#include "store_table.h"

/* FNV-1a: keys come from clients, but a collision flood only slows the
 * table down (chains), it cannot break it. */
static uint64_t
hash_key(const uint8_t *key, uint32_t klen)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < klen; i++) {
        h = (h ^ key[i]) * 1099511628211ull;
    }
    return h;
}

dt_store_entry *
dt_store_table_find(dt_store_table *t, const uint8_t *key, uint32_t klen)
{
    if (t->nbuckets == 0) {
        return NULL;
    }
    uint64_t h = hash_key(key, klen);
    for (dt_store_entry *e = t->buckets[h & (t->nbuckets - 1)]; e;
         e = e->next) {
        if (e->hash == h && e->klen == klen &&
            (klen == 0 || memcmp(e->key, key, klen) == 0)) {
            return e;
        }
    }
    return NULL;
}

static bool
grow(dt_store_table *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
    dt_store_entry **b = calloc(n, sizeof *b);
    if (!b) {
        return false;
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
        dt_store_entry *e = t->buckets[i];
        while (e) {
            dt_store_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
    return true;
}

dt_store_entry *
dt_store_table_intern(dt_store_table *t, const uint8_t *key, uint32_t klen)
{
    dt_store_entry *e = dt_store_table_find(t, key, klen);
    if (e) {
        return e;
    }
    if (t->nentries >= t->nbuckets && !grow(t)) {
        return NULL;
    }
    e = calloc(1, sizeof *e);
    if (!e || !(e->key = malloc(klen ? klen : 1))) {
        free(e);
        return NULL;
    }
    if (klen) {
        memcpy(e->key, key, klen);
    }
    e->klen = klen;
    e->hash = hash_key(key, klen);
    e->next = t->buckets[e->hash & (t->nbuckets - 1)];
    t->buckets[e->hash & (t->nbuckets - 1)] = e;
    t->nentries++;
    return e;
}

dt_store_value *
dt_store_value_new(const uint8_t *p, size_t len)
{
    dt_store_value *v = malloc(sizeof *v + len);
    if (v) {
        v->refs = 1;
        v->len = len;
        if (len) {
            memcpy(v->data, p, len);
        }
    }
    return v;
}

void
dt_store_value_release(dt_store_value *v)
{
    if (v && --v->refs == 0) {
        free(v);
    }
}

static void
entry_free(dt_store_entry *e)
{
    free(e->key);
    dt_store_value_release(e->val);
    free(e->waiters);
    free(e);
}

void
dt_store_table_release(dt_store_table *t, dt_store_entry *e)
{
    if (e->present || e->nwaiters > 0 || e->pins > 0) {
        return;
    }
    dt_store_entry **link = &t->buckets[e->hash & (t->nbuckets - 1)];
    while (*link != e) {
        link = &(*link)->next;
    }
    *link = e->next;
    t->nentries--;
    entry_free(e);
}

void
dt_store_table_free(dt_store_table *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        dt_store_entry *e = t->buckets[i];
        while (e) {
            dt_store_entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(t->buckets);
    *t = (dt_store_table){0};
}

void
dt_store_entry_put(dt_store_table *t, dt_store_entry *e,
                   dt_store_value *val)
{
    dt_store_value_release(e->val);
    e->val = val;
    if (!e->present) {
        e->present = true;
        t->npresent++;
    }
}

void
dt_store_entry_clear(dt_store_table *t, dt_store_entry *e)
{
    if (e->present) {
        dt_store_value_release(e->val);
        e->val = NULL;
        e->present = false;
        t->npresent--;
    }
}

bool
dt_store_entry_add_waiter(dt_store_entry *e, dt_store_waiter *w)
{
    if (e->nwaiters == e->capwaiters) {
        uint32_t cap = e->capwaiters ? e->capwaiters * 2 : 4;
        dt_store_waiter **p = realloc(e->waiters, cap * sizeof *p);
        if (!p) {
            return false;
        }
        e->waiters = p;
        e->capwaiters = cap;
    }
    e->waiters[e->nwaiters++] = w;
    return true;
}

void
dt_store_entry_remove_waiter(dt_store_entry *e, dt_store_waiter *w)
{
    for (uint32_t i = 0; i < e->nwaiters; i++) {
        if (e->waiters[i] == w) {
            /* order does not matter: every waiter gets woken together */
            e->waiters[i] = e->waiters[--e->nwaiters];
            return;
        }
    }
}
