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
// byte budget is exact. The producer can write behind in the same way
// (try_push_deferred): batches wait in a buffer of its own and go into the
// ring kWriteBehind at a time, or at flush(), which the decoder calls before
// it waits for the socket; so it writes the ring's write index once per
// hand-off rather than once per batch. The item bound may be exceeded by
// kReadAhead + kWriteBehind.
//
// An idle consumer sleeps in wait_for_push() on a futex rather than polling:
// a job in sync on a quiet table otherwise wakes thousands of times a second
// (measured: a tenth of a core doing nothing). The producer pays one fence
// and one load per hand-off, and a wake-up syscall only while the consumer
// sleeps; a Dekker-style pair of fences makes sure one of the two sides sees
// the other, so no hand-off is slept through.
#pragma once

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
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
        while (behind_head_ < behind_len_)
            delete behind_[behind_head_++];
        TxnBatch* b = nullptr;
        while (queue_.pop(b))
            delete b;
    }

    /// Producer side. Takes ownership on success; on false (full by count or
    /// bytes) the caller keeps the batch and retries later. A batch larger
    /// than the whole budget is accepted when the queue is empty, so a single
    /// huge transaction cannot wedge the pipeline.
    /// Batches written behind by try_push_deferred go first, so order holds.
    bool try_push(std::unique_ptr<TxnBatch>& batch) {
        size_t size = batch->bytes;
        if (!budget_allows(size) || !flush())
            return false;
        if (!queue_.push(batch.get()))
            return false;
        batch.release();
        // Counted after the item: a reader may briefly see the batch popped
        // before it is counted as pushed, so bytes() and size() clamp at zero.
        count_pushed(size);
        wake_consumer();
        return true;
    }

    /// Producer side, write-behind: as try_push, but the batch may wait in
    /// the producer's buffer (up to kWriteBehind batches, counted as in
    /// flight) until the buffer is full or flush() is called. The producer
    /// must flush() before it waits for anything, or the consumer may not see
    /// a batch it has already accepted.
    bool try_push_deferred(std::unique_ptr<TxnBatch>& batch) {
        size_t size = batch->bytes;
        if (!budget_allows(size))
            return false;
        if (behind_len_ == kWriteBehind && !flush())
            return false;
        behind_[behind_len_++] = batch.release();
        count_pushed(size);
        if (behind_len_ == kWriteBehind)
            flush();
        return true;
    }

    /// Producer side: moves the written-behind batches into the ring in one
    /// operation. Returns false when the ring is full and some are still
    /// behind (retry later).
    bool flush() {
        if (behind_head_ == behind_len_)
            return true;
        size_t moved = queue_.push(behind_ + behind_head_, behind_len_ - behind_head_);
        behind_head_ += moved;
        if (moved > 0)
            wake_consumer();
        if (behind_head_ < behind_len_)
            return false;
        behind_head_ = behind_len_ = 0;
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

    /// Consumer side: sleeps until the producer hands over a batch or
    /// `timeout` passes (also returns at once when one is already in the
    /// ring, and possibly early). Linux futex (futex(2)); throws nothing.
    void wait_for_push(std::chrono::microseconds timeout);

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

    void count_pushed(size_t bytes) {
        pushed_.bytes.store(pushed_.bytes.load(std::memory_order_relaxed) + bytes,
                            std::memory_order_release);
        pushed_.items.store(pushed_.items.load(std::memory_order_relaxed) + 1,
                            std::memory_order_release);
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

    /// Producer side, after batches entered the ring.
    void wake_consumer() {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (consumer_waiting_.load(std::memory_order_relaxed))
            wake_waiting_consumer();
    }
    void wake_waiting_consumer();

    static constexpr size_t kReadAhead = 64;
    static constexpr size_t kWriteBehind = 64;

    boost::lockfree::spsc_queue<TxnBatch*, boost::lockfree::capacity<kCapacity>> queue_;
    alignas(64) TxnBatch* stash_[kReadAhead]{};  ///< consumer only: read-ahead batches
    size_t stash_head_ = 0;                      ///< next to hand out
    size_t stash_len_ = 0;
    Totals pushed_;
    Totals popped_;
    alignas(64) size_t popped_bytes_seen_ = 0;  ///< producer's cached copy of popped_.bytes
    TxnBatch* behind_[kWriteBehind]{};          ///< producer only: written-behind batches
    size_t behind_head_ = 0;                    ///< next to move into the ring
    size_t behind_len_ = 0;
    size_t max_bytes_;
    /// The consumer's futex word (bumped by each wake-up) and whether it is
    /// about to sleep on it; a cache line of their own.
    alignas(64) std::atomic<uint32_t> wake_seq_{0};
    std::atomic<bool> consumer_waiting_{false};
};

}  // namespace pgshift
