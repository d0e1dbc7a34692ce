/* gloo_shim.cc: the extern "C" shim over Gloo (see gloo_shim.h).
 *
 * Every entry point runs its body under SHIM_TRY, which turns any C++
 * exception into a dt_gloo_err plus a thread-local message. Groups of size
 * 1 never reach Gloo (its ring algorithms need a peer); zero-byte
 * collectives return at once (every rank sees the same sizes). Only the
 * newer options-based API is used; reduce-scatter is our own ring over
 * unbound buffers.
 */
#include "gloo_shim.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <gloo/allgather.h>
#include <gloo/allgatherv.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/gather.h>
#include <gloo/reduce.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/scatter.h>
#include <gloo/transport/tcp/attr.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

namespace {

using ms = std::chrono::milliseconds;
using Buf = std::unique_ptr<gloo::transport::UnboundBuffer>;

/* Slot prefixes above Gloo's own (0x01..0x08): our reduce-scatter ring
 * and point-to-point messages. A slot is prefix << 56 | tag << 24. */
constexpr uint64_t kReduceScatterPrefix = 0x10;
constexpr uint64_t kSendRecvPrefix = 0x11;

thread_local char last_error[1024];

uint64_t
make_slot(uint64_t prefix, uint32_t tag)
{
    return (prefix << 56) | (static_cast<uint64_t>(tag) << 24);
}

/* A failure of our store callbacks inside connectFullMesh. */
struct StoreError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

dt_gloo_err
record(dt_gloo_err kind, const char *what)
{
    /* Gloo prefixes "[/path/file.cc:123] "; the location helps nobody. */
    if (what[0] == '[') {
        const char *end = std::strstr(what, "] ");
        if (end) {
            what = end + 2;
        }
    }
    std::snprintf(last_error, sizeof last_error, "%s", what);
    return kind;
}

/* Classifies the exception being handled (called inside a catch). */
dt_gloo_err
fail_current()
{
    try {
        throw;
    } catch (const gloo::IoException &e) {
        bool timeout = std::strstr(e.what(), "Timed out") != nullptr;
        return record(timeout ? DT_GLOO_ERR_TIMEOUT : DT_GLOO_ERR_IO,
                      e.what());
    } catch (const StoreError &e) {
        bool timeout = std::strstr(e.what(), "timeout") != nullptr ||
                       std::strstr(e.what(), "timed out") != nullptr;
        return record(timeout ? DT_GLOO_ERR_TIMEOUT : DT_GLOO_ERR_IO,
                      e.what());
    } catch (const std::bad_alloc &) {
        return record(DT_GLOO_ERR_NOMEM, "out of memory");
    } catch (const std::exception &e) {
        return record(DT_GLOO_ERR_OTHER, e.what());
    } catch (...) {
        return record(DT_GLOO_ERR_OTHER, "unknown C++ exception");
    }
}

#define SHIM_TRY(...)                                                     \
    try {                                                                 \
        __VA_ARGS__;                                                      \
        return DT_GLOO_OK;                                                \
    } catch (...) {                                                       \
        return fail_current();                                            \
    }

/* Runs f(T{}) with T the unsigned type of elsize bytes: Gloo's options
 * are templates on the element type but only use its size. */
template <typename F>
void
by_elsize(size_t elsize, F f)
{
    switch (elsize) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: throw std::invalid_argument("unsupported element size");
    }
}

/* Forwards Gloo's store calls to our C callbacks. */
class CStore : public gloo::rendezvous::Store {
  public:
    CStore(const dt_gloo_store *s, int64_t timeout_ms)
        : s_(*s), timeout_ms_(timeout_ms)
    {
    }

    void
    set(const std::string &key, const std::vector<char> &data) override
    {
        const char *why = "store set failed";
        if (s_.set(s_.self, key.c_str(), data.data(), data.size(), &why)) {
            throw StoreError(why);
        }
    }

    std::vector<char>
    get(const std::string &key) override
    {
        void *value = nullptr;
        size_t len = 0;
        const char *why = "store get failed";
        if (s_.get(s_.self, key.c_str(), &value, &len, timeout_ms_, &why)) {
            throw StoreError(why);
        }
        const char *p = static_cast<const char *>(value);
        std::vector<char> out(p, p + len);
        std::free(value);
        return out;
    }

    void
    wait(const std::vector<std::string> &keys) override
    {
        wait(keys, ms(timeout_ms_));
    }

    void
    wait(const std::vector<std::string> &keys, const ms &timeout) override
    {
        std::vector<const char *> k;
        for (const auto &key : keys) {
            k.push_back(key.c_str());
        }
        const char *why = "store wait failed";
        if (s_.wait(s_.self, k.data(), k.size(), timeout.count(), &why)) {
            throw StoreError(why);
        }
    }

  private:
    dt_gloo_store s_;
    int64_t timeout_ms_;
};

} // namespace

struct dt_gloo_ctx {
    std::shared_ptr<gloo::rendezvous::Context> ctx;
    int rank;
    int size;
};

struct dt_gloo_p2p {
    Buf buf;
    bool send;
    int64_t timeout_ms;
};

extern "C" {

const char *
dt_gloo_last_error(void)
{
    return last_error[0] ? last_error : "unknown Gloo error";
}

dt_gloo_err
dt_gloo_connect(dt_gloo_ctx **out, int rank, int size, const char *prefix,
                const dt_gloo_store *store, const char *hostname,
                const char *iface, int64_t timeout_ms)
{
    *out = nullptr;
    SHIM_TRY({
        auto c = std::make_unique<dt_gloo_ctx>();
        c->rank = rank;
        c->size = size;
        c->ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
        c->ctx->setTimeout(ms(timeout_ms));
        gloo::transport::tcp::attr attr;
        if (iface && iface[0]) {
            attr.iface = iface;
        } else {
            attr.hostname = hostname;
        }
        attr.ai_family = AF_INET;   /* "localhost" may resolve to ::1 */
        auto dev = gloo::transport::tcp::CreateDevice(attr);
        CStore cstore(store, timeout_ms);
        gloo::rendezvous::PrefixStore ps(prefix, cstore);
        c->ctx->connectFullMesh(ps, dev);
        *out = c.release();
    })
}

void
dt_gloo_close(dt_gloo_ctx *c)
{
    try {
        c->ctx->closeConnections();   /* hard close (RST): peers fail now */
    } catch (...) {
        /* closing is best effort */
    }
}

void
dt_gloo_free(dt_gloo_ctx *c)
{
    try {
        delete c;
    } catch (...) {
        /* a destructor that throws: nothing left to do */
    }
}


/* ---------------------------------------------------------------------- */
/* collectives                                                             */

dt_gloo_err
dt_gloo_allreduce(dt_gloo_ctx *c, void *buf, size_t count, size_t elsize,
                  dt_gloo_reduce_fn fn, dt_gloo_algo algo,
                  size_t max_segment_bytes, uint32_t tag, int64_t timeout_ms)
{
    if (c->size == 1 || count == 0) {
        return DT_GLOO_OK;
    }
    SHIM_TRY(by_elsize(elsize, [&](auto t) {
        using T = decltype(t);
        gloo::AllreduceOptions opts(c->ctx);
        opts.setOutput(static_cast<T *>(buf), count);   /* in place */
        opts.setReduceFunction(fn);
        opts.setAlgorithm(algo == DT_GLOO_ALGO_BCUBE
                              ? gloo::AllreduceOptions::Algorithm::BCUBE
                              : gloo::AllreduceOptions::Algorithm::RING);
        if (max_segment_bytes) {
            opts.setMaxSegmentSize(max_segment_bytes);
        }
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::allreduce(opts);
    }))
}

dt_gloo_err
dt_gloo_broadcast(dt_gloo_ctx *c, void *buf, size_t nbytes, int root,
                  uint32_t tag, int64_t timeout_ms)
{
    if (c->size == 1 || nbytes == 0) {
        return DT_GLOO_OK;
    }
    SHIM_TRY({
        gloo::BroadcastOptions opts(c->ctx);
        opts.setOutput(static_cast<uint8_t *>(buf), nbytes);
        opts.setRoot(root);
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::broadcast(opts);
    })
}

dt_gloo_err
dt_gloo_reduce(dt_gloo_ctx *c, void *buf, size_t count, size_t elsize,
               dt_gloo_reduce_fn fn, int root, uint32_t tag,
               int64_t timeout_ms)
{
    if (c->size == 1 || count == 0) {
        return DT_GLOO_OK;
    }
    SHIM_TRY(by_elsize(elsize, [&](auto t) {
        using T = decltype(t);
        gloo::ReduceOptions opts(c->ctx);
        opts.setOutput(static_cast<T *>(buf), count);
        opts.setReduceFunction(fn);
        opts.setRoot(root);
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::reduce(opts);
    }))
}

dt_gloo_err
dt_gloo_allgather(dt_gloo_ctx *c, void *out, const void *in, size_t nbytes,
                  uint32_t tag, int64_t timeout_ms)
{
    uint8_t *o = static_cast<uint8_t *>(out);
    if (nbytes && in != o + c->rank * nbytes) {
        std::memcpy(o + c->rank * nbytes, in, nbytes);
    }
    if (c->size == 1 || nbytes == 0) {
        return DT_GLOO_OK;
    }
    SHIM_TRY({
        gloo::AllgatherOptions opts(c->ctx);
        opts.setOutput(o, nbytes * c->size);     /* in place: no input */
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::allgather(opts);
    })
}

dt_gloo_err
dt_gloo_allgatherv(dt_gloo_ctx *c, void *out, const void *in,
                   const size_t *counts, size_t elsize, uint32_t tag,
                   int64_t timeout_ms)
{
    size_t total = 0, offset = 0;
    for (int i = 0; i < c->size; i++) {
        offset += i < c->rank ? counts[i] : 0;
        total += counts[i];
    }
    uint8_t *o = static_cast<uint8_t *>(out);
    size_t mine = counts[c->rank] * elsize;
    if (mine && in != o + offset * elsize) {
        std::memcpy(o + offset * elsize, in, mine);
    }
    if (c->size == 1 || total == 0) {
        return DT_GLOO_OK;
    }
    SHIM_TRY(by_elsize(elsize, [&](auto t) {
        using T = decltype(t);
        gloo::AllgathervOptions opts(c->ctx);
        opts.setOutput(reinterpret_cast<T *>(o),
                       std::vector<size_t>(counts, counts + c->size));
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::allgatherv(opts);
    }))
}

dt_gloo_err
dt_gloo_gather(dt_gloo_ctx *c, void *out, const void *in, size_t nbytes,
               int root, uint32_t tag, int64_t timeout_ms)
{
    if (c->size == 1 || nbytes == 0) {
        if (nbytes && out != in) {
            std::memcpy(out, in, nbytes);
        }
        return DT_GLOO_OK;
    }
    SHIM_TRY({
        gloo::GatherOptions opts(c->ctx);
        opts.setInput(static_cast<uint8_t *>(const_cast<void *>(in)),
                      nbytes);
        if (c->rank == root) {
            opts.setOutput(static_cast<uint8_t *>(out), nbytes * c->size);
        }
        opts.setRoot(root);
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::gather(opts);
    })
}

dt_gloo_err
dt_gloo_scatter(dt_gloo_ctx *c, void *out, const void *in, size_t nbytes,
                int root, uint32_t tag, int64_t timeout_ms)
{
    if (c->size == 1 || nbytes == 0) {
        if (nbytes && out != in) {
            std::memcpy(out, in, nbytes);
        }
        return DT_GLOO_OK;
    }
    SHIM_TRY({
        gloo::ScatterOptions opts(c->ctx);
        if (c->rank == root) {
            std::vector<uint8_t *> chunks;
            uint8_t *p = static_cast<uint8_t *>(const_cast<void *>(in));
            for (int i = 0; i < c->size; i++) {
                chunks.push_back(p + i * nbytes);
            }
            opts.setInputs(chunks, nbytes);
        }
        opts.setOutput(static_cast<uint8_t *>(out), nbytes);
        opts.setRoot(root);
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::scatter(opts);
    })
}

dt_gloo_err
dt_gloo_alltoall(dt_gloo_ctx *c, void *out, const void *in, size_t nbytes,
                 uint32_t tag, int64_t timeout_ms)
{
    if (c->size == 1 || nbytes == 0) {
        if (nbytes && out != in) {
            std::memcpy(out, in, nbytes);
        }
        return DT_GLOO_OK;
    }
    SHIM_TRY({
        gloo::AlltoallOptions opts(c->ctx);
        opts.setInput(static_cast<uint8_t *>(const_cast<void *>(in)),
                      nbytes * c->size);
        opts.setOutput(static_cast<uint8_t *>(out), nbytes * c->size);
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::alltoall(opts);
    })
}

dt_gloo_err
dt_gloo_alltoallv(dt_gloo_ctx *c, void *out, const size_t *out_counts,
                  const void *in, const size_t *in_counts, size_t elsize,
                  uint32_t tag, int64_t timeout_ms)
{
    if (c->size == 1) {
        if (in_counts[0] && out != in) {
            std::memcpy(out, in, in_counts[0] * elsize);
        }
        return DT_GLOO_OK;
    }
    SHIM_TRY(by_elsize(elsize, [&](auto t) {
        using T = decltype(t);
        gloo::AlltoallvOptions opts(c->ctx);
        opts.setInput(static_cast<T *>(const_cast<void *>(in)),
                      std::vector<int64_t>(in_counts, in_counts + c->size));
        opts.setOutput(static_cast<T *>(out),
                       std::vector<int64_t>(out_counts,
                                            out_counts + c->size));
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::alltoallv(opts);
    }))
}

dt_gloo_err
dt_gloo_barrier(dt_gloo_ctx *c, uint32_t tag, int64_t timeout_ms)
{
    if (c->size == 1) {
        return DT_GLOO_OK;
    }
    SHIM_TRY({
        gloo::BarrierOptions opts(c->ctx);
        opts.setTag(tag);
        opts.setTimeout(ms(timeout_ms));
        gloo::barrier(opts);
    })
}

/* ---------------------------------------------------------------------- */
/* reduce-scatter: a ring over unbound buffers                             */

/* Rank r sends its chunk r-1 to r+1. At step s (1..n-1) it receives the
 * partial sum of chunk r-1-s from r-1 into a scratch half, adds its own
 * chunk r-1-s, and passes it on; after n-1 steps the chunk is r and
 * complete, and it is reduced straight into `out`. Two scratch halves
 * alternate so a send can drain while the next receive lands. */
dt_gloo_err
dt_gloo_reduce_scatter(dt_gloo_ctx *c, void *out, const void *in,
                       size_t count, size_t elsize, dt_gloo_reduce_fn fn,
                       uint32_t tag, int64_t timeout_ms)
{
    const int n = c->size, r = c->rank;
    const size_t cb = count * elsize;
    const uint8_t *src = static_cast<const uint8_t *>(in);
    if (count == 0) {
        return DT_GLOO_OK;
    }
    if (n == 1) {
        if (out != in) {
            std::memcpy(out, in, cb);
        }
        return DT_GLOO_OK;
    }
    SHIM_TRY({
        const uint64_t slot = make_slot(kReduceScatterPrefix, tag);
        const int next = (r + 1) % n, prev = (r + n - 1) % n;
        const ms timeout(timeout_ms);
        std::unique_ptr<uint8_t[]> scratch(new uint8_t[2 * cb]);
        Buf ub = c->ctx->createUnboundBuffer(scratch.get(), 2 * cb);
        Buf uin = c->ctx->createUnboundBuffer(const_cast<uint8_t *>(src),
                                              n * cb);
        uin->send(next, slot, ((r + n - 1) % n) * cb, cb);
        int pending_sends = 0;
        for (int s = 1; s < n; s++) {
            const size_t half = (s & 1) * cb;
            if (pending_sends == 2) {      /* this half is still sending */
                ub->waitSend(timeout);
                pending_sends--;
            }
            ub->recv(prev, slot, half, cb);
            ub->waitRecv(timeout);
            const size_t chunk = ((r - 1 - s) % n + n) % n;
            if (s == n - 1) {
                fn(out, scratch.get() + half, src + chunk * cb, count);
            } else {
                fn(scratch.get() + half, scratch.get() + half,
                   src + chunk * cb, count);
                ub->send(next, slot, half, cb);
                pending_sends++;
            }
        }
        uin->waitSend(timeout);
        while (pending_sends-- > 0) {
            ub->waitSend(timeout);
        }
    })
}

/* ---------------------------------------------------------------------- */
/* point to point                                                          */

dt_gloo_err
dt_gloo_send_post(dt_gloo_p2p **out, dt_gloo_ctx *c, const void *buf,
                  size_t nbytes, int dst, uint32_t tag)
{
    *out = nullptr;
    SHIM_TRY({
        auto p = std::make_unique<dt_gloo_p2p>();
        p->buf = c->ctx->createUnboundBuffer(const_cast<void *>(buf),
                                             nbytes);
        p->send = true;
        p->buf->send(dst, make_slot(kSendRecvPrefix, tag));
        *out = p.release();
    })
}

dt_gloo_err
dt_gloo_recv_post(dt_gloo_p2p **out, dt_gloo_ctx *c, void *buf,
                  size_t nbytes, int src, uint32_t tag)
{
    *out = nullptr;
    SHIM_TRY({
        auto p = std::make_unique<dt_gloo_p2p>();
        p->buf = c->ctx->createUnboundBuffer(buf, nbytes);
        p->send = false;
        const uint64_t slot = make_slot(kSendRecvPrefix, tag);
        if (src >= 0) {
            p->buf->recv(src, slot);
        } else {
            std::vector<int> ranks;
            for (int i = 0; i < c->size; i++) {
                if (i != c->rank) {
                    ranks.push_back(i);
                }
            }
            p->buf->recv(ranks, slot);
        }
        *out = p.release();
    })
}

dt_gloo_err
dt_gloo_p2p_wait(dt_gloo_p2p *p, int *peer, int64_t timeout_ms)
{
    SHIM_TRY({
        int rank = -1;
        bool done = p->send ? p->buf->waitSend(&rank, ms(timeout_ms))
                            : p->buf->waitRecv(&rank, ms(timeout_ms));
        if (!done) {
            return record(DT_GLOO_ERR_ABORTED, "aborted");
        }
        if (peer) {
            *peer = rank;
        }
    })
}

void
dt_gloo_p2p_abort(dt_gloo_p2p *p)
{
    try {
        if (p->send) {
            p->buf->abortWaitSend();
        } else {
            p->buf->abortWaitRecv();
        }
    } catch (...) {
        /* best effort */
    }
}

void
dt_gloo_p2p_free(dt_gloo_p2p *p)
{
    try {
        delete p;
    } catch (...) {
        /* nothing left to do */
    }
}

} // extern "C"
