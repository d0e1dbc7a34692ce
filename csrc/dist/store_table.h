/* store_table.h: the server's key table: a chained hash map from key bytes
 * to an entry that holds the value (when present) and the parked requests
 * waiting for the key to appear. Only the server thread touches it. */
#ifndef DT_STORE_TABLE_H
#define DT_STORE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dt_store_waiter dt_store_waiter;    /* store_server.c */

/* A stored value. Refcounted so a reply can be sent straight from it
 * while a later set replaces it in the table. */
typedef struct dt_store_value {
    uint32_t refs;
    size_t len;
    uint8_t data[];
} dt_store_value;

/* A new value holding a copy of p[0:len] (refs 1); NULL without memory. */
dt_store_value *dt_store_value_new(const uint8_t *p, size_t len);
void dt_store_value_release(dt_store_value *v);     /* NULL is fine */

/* An entry lives while it holds a value, has waiters, or is pinned by a
 * waiter that registered on it (so a waiter's list of entries never
 * dangles, even if the key is deleted in between). */
typedef struct dt_store_entry {
    struct dt_store_entry *next;     /* hash chain */
    uint64_t hash;
    uint8_t *key;                    /* klen bytes, owned */
    uint32_t klen;
    dt_store_value *val;             /* one reference; NULL if absent */
    bool present;
    dt_store_waiter **waiters;       /* waiting for this key to appear */
    uint32_t nwaiters, capwaiters;
    uint32_t pins;
} dt_store_entry;

typedef struct dt_store_table {
    dt_store_entry **buckets;
    size_t nbuckets;
    size_t nentries;                 /* live entries, present or not */
    int64_t npresent;                /* keys that hold a value */
} dt_store_table;

dt_store_entry *dt_store_table_find(dt_store_table *t, const uint8_t *key,
                                    uint32_t klen);
/* Finds or creates (absent) the entry; NULL when out of memory. */
dt_store_entry *dt_store_table_intern(dt_store_table *t, const uint8_t *key,
                                      uint32_t klen);
/* Frees e if nothing keeps it alive any more. */
void dt_store_table_release(dt_store_table *t, dt_store_entry *e);
void dt_store_table_free(dt_store_table *t);

/* Stores a value, taking over the caller's reference. */
void dt_store_entry_put(dt_store_table *t, dt_store_entry *e,
                        dt_store_value *val);
/* Drops the value; the caller releases e afterwards. */
void dt_store_entry_clear(dt_store_table *t, dt_store_entry *e);
bool dt_store_entry_add_waiter(dt_store_entry *e, dt_store_waiter *w);
void dt_store_entry_remove_waiter(dt_store_entry *e, dt_store_waiter *w);

#endif /* DT_STORE_TABLE_H */
