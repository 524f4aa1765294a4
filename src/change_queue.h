// The bounded queue between the decoder thread (single producer) and the
// applier thread (single consumer): a wait-free boost::lockfree::spsc_queue of
// owning TxnBatch pointers, bounded both by item count (compile-time capacity)
// and by bytes (an atomic budget), so one burst of large transactions cannot
// exhaust memory. When it is full the decoder stops reading the socket, which
// back-pressures the walsender over TCP, but keeps answering keepalives.
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
        TxnBatch* b = nullptr;
        while (queue_.pop(b))
            delete b;
    }

    /// Producer side. Takes ownership on success; on false (full by count or
    /// bytes) the caller keeps the batch and retries later. A batch larger
    /// than the whole budget is accepted when the queue is empty, so a single
    /// huge transaction cannot wedge the pipeline.
    bool try_push(std::unique_ptr<TxnBatch>& batch) {
        size_t in_flight = bytes_.load(std::memory_order_acquire);
        if (in_flight > 0 && in_flight + batch->bytes > max_bytes_)
            return false;
        if (queue_.write_available() == 0)
            return false;
        size_t size = batch->bytes;
        // Count before publishing: once pushed, the consumer may pop and
        // subtract at once, and the unsigned counters must never wrap. Space
        // checked above cannot shrink (only this thread pushes).
        bytes_.fetch_add(size, std::memory_order_acq_rel);
        items_.fetch_add(1, std::memory_order_acq_rel);
        if (!queue_.push(batch.get())) {
            bytes_.fetch_sub(size, std::memory_order_acq_rel);
            items_.fetch_sub(1, std::memory_order_acq_rel);
            return false;
        }
        batch.release();
        return true;
    }

    /// Consumer side; nullptr when empty. The caller owns the result.
    std::unique_ptr<TxnBatch> try_pop() {
        TxnBatch* b = nullptr;
        if (!queue_.pop(b))
            return nullptr;
        bytes_.fetch_sub(b->bytes, std::memory_order_acq_rel);
        items_.fetch_sub(1, std::memory_order_acq_rel);
        return std::unique_ptr<TxnBatch>(b);
    }

    /// Safe from either thread (spsc_queue's own counters are per side).
    bool empty() const { return size() == 0; }
    size_t size() const { return items_.load(std::memory_order_acquire); }
    size_t bytes() const { return bytes_.load(std::memory_order_acquire); }

  private:
    boost::lockfree::spsc_queue<TxnBatch*, boost::lockfree::capacity<kCapacity>> queue_;
    std::atomic<size_t> bytes_{0};
    std::atomic<size_t> items_{0};
    size_t max_bytes_;
};

}  // namespace pgshift
