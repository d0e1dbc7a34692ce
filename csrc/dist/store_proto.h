/* store_proto.h: the store's wire format, shared by client and server.
 *
 * docs/store_protocol.md is the prose version. In short, all integers are
 * little-endian:
 *   handshake  client: u32 magic, u32 version
 *              server: u32 magic, u32 version, u8 verdict (DT_STORE_HELLO_*)
 *   request    u8 op, then the op's fields
 *   key        u32 length (<= DT_STORE_MAX_KEY), bytes
 *   value      u64 length (<= DT_STORE_MAX_VALUE), bytes
 *   key list   u32 count (<= DT_STORE_MAX_KEYS), keys
 *   reply      u8 status (DT_STORE_REPLY_*), then the op's result when OK,
 *              or a u32-length message when ERROR
 */
#ifndef DT_STORE_PROTO_H
#define DT_STORE_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

#define DT_STORE_MAGIC 0x54537464u      /* "dtST" read as LE bytes */
#define DT_STORE_VERSION 1u
#define DT_STORE_HELLO_LEN 8            /* client's handshake */
#define DT_STORE_HELLO_REPLY_LEN 9      /* server's answer */

/* The largest request a server will buffer: compare_set with two maximal
 * values. */
#define DT_STORE_MAX_REQUEST                                              \
    ((uint64_t)2 * DT_STORE_MAX_VALUE + DT_STORE_MAX_KEY + 64)
/* Longest error message a server sends. */
#define DT_STORE_MAX_MESSAGE 4096u

typedef enum dt_store_hello {
    DT_STORE_HELLO_OK = 0,
    DT_STORE_HELLO_BAD_MAGIC = 1,
    DT_STORE_HELLO_BAD_VERSION = 2,
} dt_store_hello;

/* Request ops. The values are the wire bytes: never renumber. */
typedef enum dt_store_op {
    DT_STORE_OP_SET = 1,          /* key, value             -> -      */
    DT_STORE_OP_GET = 2,          /* key, u64 timeout_ms    -> value  */
    DT_STORE_OP_ADD = 3,          /* key, i64 delta         -> i64    */
    DT_STORE_OP_COMPARE_SET = 4,  /* key, value, value      -> value  */
    DT_STORE_OP_WAIT = 5,         /* key list, u64 timeout  -> -      */
    DT_STORE_OP_CHECK = 6,        /* key list               -> u8     */
    DT_STORE_OP_DELETE_KEY = 7,   /* key                    -> u8     */
    DT_STORE_OP_NUM_KEYS = 8,     /* -                      -> i64    */
} dt_store_op;

typedef enum dt_store_reply {
    DT_STORE_REPLY_OK = 0,
    DT_STORE_REPLY_TIMEOUT = 1,   /* get/wait: the keys did not appear */
    DT_STORE_REPLY_ERROR = 2,     /* followed by u32 length, message */
} dt_store_reply;

/* ---------------------------------------------------------------------- */
/* little-endian fields                                                    */

static inline void
dt_store_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void
dt_store_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint32_t
dt_store_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t
dt_store_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* ---------------------------------------------------------------------- */
/* growable byte buffer                                                    */

/* Bytes [off, len) are live; consuming from the front just moves off. */
typedef struct dt_store_buf {
    uint8_t *data;
    size_t off, len, cap;
} dt_store_buf;

/* Makes room for `extra` more bytes after len; false when out of memory. */
bool dt_store_buf_reserve(dt_store_buf *b, size_t extra);
bool dt_store_buf_append(dt_store_buf *b, const void *p, size_t n);
bool dt_store_buf_u8(dt_store_buf *b, uint8_t v);
bool dt_store_buf_u32(dt_store_buf *b, uint32_t v);
bool dt_store_buf_u64(dt_store_buf *b, uint64_t v);
bool dt_store_buf_key(dt_store_buf *b, const void *key, size_t klen);
bool dt_store_buf_value(dt_store_buf *b, const void *v, size_t vlen);
void dt_store_buf_consume(dt_store_buf *b, size_t n);
/* Frees an empty buffer's memory if it grew past `keep` bytes (one large
 * value must not pin its buffer for the life of a connection). */
void dt_store_buf_trim(dt_store_buf *b, size_t keep);
void dt_store_buf_free(dt_store_buf *b);

static inline size_t
dt_store_buf_size(const dt_store_buf *b)
{
    return b->len - b->off;
}

/* ---------------------------------------------------------------------- */
/* request parsing (server side)                                           */

/* A parsed request; the pointers point into the caller's buffer. */
typedef struct dt_store_req {
    uint8_t op;
    const uint8_t *key;           /* SET GET ADD COMPARE_SET DELETE_KEY */
    uint32_t klen;
    const uint8_t *val;           /* SET value, COMPARE_SET expected */
    uint64_t vlen;
    const uint8_t *val2;          /* COMPARE_SET desired */
    uint64_t vlen2;
    int64_t delta;                /* ADD */
    uint64_t timeout_ms;          /* GET WAIT; 0 = none */
    uint32_t nkeys;               /* WAIT CHECK */
    const uint8_t *keys;          /* the encoded key list */
} dt_store_req;

typedef enum dt_store_parse {
    DT_STORE_PARSE_MORE = 0,      /* incomplete: *need = bytes required */
    DT_STORE_PARSE_DONE = 1,      /* *used = bytes the request took */
    DT_STORE_PARSE_BAD = -1,      /* garbage: *why says what */
} dt_store_parse;

dt_store_parse dt_store_req_parse(dt_store_req *r, size_t *used,
                                  size_t *need, const char **why,
                                  const uint8_t *p, size_t n);

/* Walks an encoded key list that dt_store_req_parse accepted. */
static inline const uint8_t *
dt_store_keys_next(const uint8_t *p, const uint8_t **key, uint32_t *klen)
{
    *klen = dt_store_get_u32(p);
    *key = p + 4;
    return p + 4 + *klen;
}

/* Records a store failure of the given kind; returns DT_ERR_RUNTIME (or
 * DT_ERR_VALUE for DT_STORE_ERR_ARGUMENT). */
dt_status dt_store_fail(dt_store_error kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* DT_STORE_PROTO_H */
