// Throughput of the decoder -> applier hand-off between two threads.
//
// One iteration moves kItems preallocated TxnBatch pointers from a producer
// thread (started per iteration, as the decoder thread) to the benchmark
// thread (the consumer, as the applier thread); the time is wall-clock time
// from the start of the producer until the consumer has popped the last item.
// A side that finds the queue full (producer) or empty (consumer) spins
// briefly and then yields before it retries (Backoff).
// The batches are allocated once before timing and recycled (never freed by
// the consumer), so only the queue itself is measured.
//
//   queue/change_queue  pgshift::ChangeQueue as the decoder and applier use
//                       it: try_push_deferred (write-behind, flushed when
//                       a push finds the queue full and at the end) / try_pop,
//                       with its item and byte accounting.
//   queue/change_queue_immediate  the same with try_push (every batch goes
//                       into the ring at once).
//   queue/spsc_raw      the bare boost::lockfree::spsc_queue<TxnBatch*> with
//                       the same capacity, for reference.
//   queue_one_thread/*  the same two queues driven by one thread (bursts of
//                       1024 pushes, then 1024 pops): the per-item cost
//                       without cross-core cache traffic.
#include <benchmark/benchmark.h>

#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "change.h"
#include "change_queue.h"

namespace {

using pgshift::ChangeQueue;
using pgshift::TxnBatch;

constexpr size_t kItems = 1 << 20;  // per iteration
// More batches than the queue can hold, so a batch is popped before the
// producer hands it out again.
constexpr size_t kPool = 4 * ChangeQueue::kCapacity;
static_assert((kPool & (kPool - 1)) == 0);

std::vector<TxnBatch>& pool() {
    static std::vector<TxnBatch> batches = [] {
        std::vector<TxnBatch> v(kPool);
        for (size_t i = 0; i < v.size(); ++i) {
            v[i].xid = static_cast<uint32_t>(i + 1);
            v[i].bytes = 512;  // a small transaction
        }
        return v;
    }();
    return batches;
}

/// Back-off of a side that found the queue full or empty: spin briefly, then
/// yield, so that on a machine with fewer free cores than threads the waiting
/// side does not burn the time slice the other side needs.
class Backoff {
  public:
    void wait() {
        if (++spins_ < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            spins_ = 0;
            std::this_thread::yield();
        }
    }
    void reset() {
        spins_ = 0;
    }

  private:
    unsigned spins_ = 0;
};

template <bool Deferred>
void bm_change_queue(benchmark::State& state) {
    std::vector<TxnBatch>& batches = pool();
    auto queue = std::make_unique<ChangeQueue>();
    uint64_t checksum = 0;
    for (auto _ : state) {
        std::thread producer([&] {
            for (size_t i = 0; i < kItems; ++i) {
                std::unique_ptr<TxnBatch> b(&batches[i & (kPool - 1)]);
                Backoff backoff;
                while (!(Deferred ? queue->try_push_deferred(b) : queue->try_push(b))) {
                    queue->flush();
                    backoff.wait();
                }
                // On success the push released b, so nothing is freed here.
            }
            while (!queue->flush())
                std::this_thread::yield();
        });
        Backoff backoff;
        for (size_t i = 0; i < kItems;) {
            std::unique_ptr<TxnBatch> b = queue->try_pop();
            if (!b) {
                backoff.wait();
                continue;
            }
            backoff.reset();
            checksum += b->xid;
            (void)b.release();  // owned by the pool
            ++i;
        }
        producer.join();
    }
    benchmark::DoNotOptimize(checksum);
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kItems));
}

void bm_spsc_raw(benchmark::State& state) {
    std::vector<TxnBatch>& batches = pool();
    using Raw =
        boost::lockfree::spsc_queue<TxnBatch*, boost::lockfree::capacity<ChangeQueue::kCapacity>>;
    auto queue = std::make_unique<Raw>();
    uint64_t checksum = 0;
    for (auto _ : state) {
        std::thread producer([&] {
            for (size_t i = 0; i < kItems; ++i) {
                TxnBatch* b = &batches[i & (kPool - 1)];
                Backoff backoff;
                while (!queue->push(b))
                    backoff.wait();
            }
        });
        Backoff backoff;
        for (size_t i = 0; i < kItems;) {
            TxnBatch* b = nullptr;
            if (!queue->pop(b)) {
                backoff.wait();
                continue;
            }
            backoff.reset();
            checksum += b->xid;
            ++i;
        }
        producer.join();
    }
    benchmark::DoNotOptimize(checksum);
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kItems));
}

/// Reference without a second thread: bursts of kBurst pushes then kBurst pops
/// on one thread, so no cache line moves between cores. The difference from
/// the two-thread figure is the cost of the cross-core traffic.
constexpr size_t kBurst = 1024;

void bm_change_queue_one_thread(benchmark::State& state) {
    std::vector<TxnBatch>& batches = pool();
    auto queue = std::make_unique<ChangeQueue>();
    uint64_t checksum = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < kBurst; ++i) {
            std::unique_ptr<TxnBatch> b(&batches[i]);
            if (!queue->try_push(b))
                std::abort();
        }
        for (size_t i = 0; i < kBurst; ++i) {
            std::unique_ptr<TxnBatch> b = queue->try_pop();
            checksum += b->xid;
            (void)b.release();
        }
    }
    benchmark::DoNotOptimize(checksum);
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBurst));
}

void bm_spsc_raw_one_thread(benchmark::State& state) {
    std::vector<TxnBatch>& batches = pool();
    using Raw =
        boost::lockfree::spsc_queue<TxnBatch*, boost::lockfree::capacity<ChangeQueue::kCapacity>>;
    auto queue = std::make_unique<Raw>();
    uint64_t checksum = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < kBurst; ++i) {
            if (!queue->push(&batches[i]))
                std::abort();
        }
        for (size_t i = 0; i < kBurst; ++i) {
            TxnBatch* b = nullptr;
            if (!queue->pop(b))
                std::abort();
            checksum += b->xid;
        }
    }
    benchmark::DoNotOptimize(checksum);
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBurst));
}

BENCHMARK(bm_change_queue<true>)
    ->Name("queue/change_queue")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_change_queue<false>)
    ->Name("queue/change_queue_immediate")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_spsc_raw)->Name("queue/spsc_raw")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_change_queue_one_thread)->Name("queue_one_thread/change_queue");
BENCHMARK(bm_spsc_raw_one_thread)->Name("queue_one_thread/spsc_raw");

}  // namespace

BENCHMARK_MAIN();
