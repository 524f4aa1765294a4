// The bounded queue between the decoder thread (single producer) and the
// applier thread (single consumer): a wait-free boost::lockfree::spsc_queue of
// owning TxnBatch pointers, bounded both by item count (compile-time capacity)
// and by bytes (a budget), so one burst of large transactions cannot exhaust
// memory. When it is full the decoder stops reading the socket, which
// back-pressures the walsender over TCP, but keeps answering keepalives.
//
// Why the accounting looks like this: a shared counter updated with atomic
// read-modify-writes by both threads moves its cache line between the cores
// on every item, which capped the hand-off at a few million items/s. Instead
// each side owns monotonic totals (items and bytes pushed; items and bytes
// popped) on its own cache line and publishes them with plain release stores;
// what is in flight is pushed minus popped. The producer re-reads the
// consumer's totals only when its cached copy says the byte budget is spent.
// The consumer reads ahead: it takes up to kReadAhead pointers from the
// spsc_queue at once into a stash of its own and hands them out one by one,
// so it reads the producer's index once per read-ahead instead of once per
// batch. Stashed batches still count as in flight until handed out, so the
// byte budget is exact; the item bound may be exceeded by kReadAhead.
#pragma once

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstddef>
#include <memory>

#include "change.h"

namespace pgshift {

class ChangeQueue {
  public:
    static constexpr size_t kCapacity = 8192;

    /// 64 MiB by default: with the decoder's pending chunk and the chunk being
    /// applied (8 MiB each by default) and the approximation slack of
    /// TxnBatch::bytes, the pipeline stays well under 200 MB of RSS however
    /// large a source transaction is.
    explicit ChangeQueue(size_t max_bytes = size_t{64} << 20) : max_bytes_(max_bytes) {}
    ChangeQueue(const ChangeQueue&) = delete;
    ChangeQueue& operator=(const ChangeQueue&) = delete;
    ~ChangeQueue() {
        while (stash_head_ < stash_len_)
            delete stash_[stash_head_++];
        TxnBatch* b = nullptr;
        while (queue_.pop(b))
            delete b;
    }

    /// Producer side. Takes ownership on success; on false (full by count or
    /// bytes) the caller keeps the batch and retries later. A batch larger
    /// than the whole budget is accepted when the queue is empty, so a single
    /// huge transaction cannot wedge the pipeline.
    bool try_push(std::unique_ptr<TxnBatch>& batch) {
        size_t size = batch->bytes;
        if (!budget_allows(size))
            return false;
        if (!queue_.push(batch.get()))
            return false;
        batch.release();
        // Published after the item: a reader may briefly see the batch popped
        // before it is counted as pushed, so bytes() and size() clamp at zero.
        pushed_.bytes.store(pushed_.bytes.load(std::memory_order_relaxed) + size,
                            std::memory_order_release);
        pushed_.items.store(pushed_.items.load(std::memory_order_relaxed) + 1,
                            std::memory_order_release);
        return true;
    }

    /// Consumer side; nullptr when empty. The caller owns the result.
    std::unique_ptr<TxnBatch> try_pop() {
        if (stash_head_ == stash_len_) {
            stash_len_ = queue_.pop(stash_, kReadAhead);
            stash_head_ = 0;
            if (stash_len_ == 0)
                return nullptr;
        }
        TxnBatch* b = stash_[stash_head_++];
        count_popped(1, b->bytes);
        return std::unique_ptr<TxnBatch>(b);
    }

    /// Safe from either thread; a snapshot that may be stale by the time it
    /// returns.
    bool empty() const { return size() == 0; }
    size_t size() const { return in_flight(pushed_.items, popped_.items); }
    size_t bytes() const { return in_flight(pushed_.bytes, popped_.bytes); }

  private:
    /// Monotonic totals written by one side only.
    struct alignas(64) Totals {
        std::atomic<size_t> items{0};
        std::atomic<size_t> bytes{0};
    };

    /// Producer only. Re-reads the consumer's popped bytes when the cached
    /// value says the budget would be exceeded.
    bool budget_allows(size_t size) {
        size_t pushed = pushed_.bytes.load(std::memory_order_relaxed);
        if (pushed - popped_bytes_seen_ + size <= max_bytes_)
            return true;
        popped_bytes_seen_ = popped_.bytes.load(std::memory_order_acquire);
        size_t in_flight = pushed - popped_bytes_seen_;
        return in_flight == 0 || in_flight + size <= max_bytes_;
    }

    void count_popped(size_t items, size_t bytes) {
        popped_.bytes.store(popped_.bytes.load(std::memory_order_relaxed) + bytes,
                            std::memory_order_release);
        popped_.items.store(popped_.items.load(std::memory_order_relaxed) + items,
                            std::memory_order_release);
    }

    static size_t in_flight(const std::atomic<size_t>& pushed, const std::atomic<size_t>& popped) {
        // Popped first: both are monotonic, so pushed read afterwards is at
        // least as new, except for the publication order noted in try_push.
        size_t out = popped.load(std::memory_order_acquire);
        size_t in = pushed.load(std::memory_order_acquire);
        return in > out ? in - out : 0;
    }

    static constexpr size_t kReadAhead = 64;

    boost::lockfree::spsc_queue<TxnBatch*, boost::lockfree::capacity<kCapacity>> queue_;
    alignas(64) TxnBatch* stash_[kReadAhead]{};  ///< consumer only: read-ahead batches
    size_t stash_head_ = 0;                      ///< next to hand out
    size_t stash_len_ = 0;
    Totals pushed_;
    Totals popped_;
    alignas(64) size_t popped_bytes_seen_ = 0;  ///< producer's cached copy of popped_.bytes
    size_t max_bytes_;
};

}  // namespace pgshift
