// ChangeQueue: count and byte bounds, ownership, and a two-thread run.
#include "change_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

namespace pgshift {
namespace {

std::unique_ptr<TxnBatch> batch(uint32_t xid, size_t bytes) {
    auto b = std::make_unique<TxnBatch>();
    b->xid = xid;
    b->commit_lsn = Lsn(uint64_t{xid} * 16);
    b->bytes = bytes;
    return b;
}

/// A 100-byte batch owning heap memory (a 200-byte logical message), so
/// LeakSanitizer sees it if the queue does not free it.
std::unique_ptr<TxnBatch> batch_with_message(uint32_t xid) {
    auto b = batch(xid, 100);
    b->changes.emplace_back(
        pgoutput::LogicalMsg{std::nullopt, 1, Lsn(xid), "pgshift", std::string(200, 'x')});
    return b;
}

TEST(ChangeQueue, EmptyQueue) {
    ChangeQueue q(1000);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.bytes(), 0u);
    EXPECT_EQ(q.try_pop(), nullptr);
}

TEST(ChangeQueue, FifoWithCountAndByteAccounting) {
    ChangeQueue q(1000);
    for (uint32_t x = 1; x <= 3; ++x) {
        auto b = batch(x, 10 * x);
        b->barrier_nonce = "n" + std::to_string(x);
        ASSERT_TRUE(q.try_push(b));
        EXPECT_EQ(b, nullptr) << "ownership moves into the queue";
    }
    EXPECT_EQ(q.size(), 3u);
    EXPECT_EQ(q.bytes(), 60u);
    EXPECT_FALSE(q.empty());
    for (uint32_t x = 1; x <= 3; ++x) {
        auto b = q.try_pop();
        ASSERT_NE(b, nullptr);
        EXPECT_EQ(b->xid, x);
        EXPECT_EQ(b->barrier_nonce, "n" + std::to_string(x));
        EXPECT_EQ(b->commit_lsn, Lsn(uint64_t{x} * 16));
    }
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.bytes(), 0u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.try_pop(), nullptr);
}

TEST(ChangeQueue, ByteBoundRejectsAndCallerKeepsBatch) {
    ChangeQueue q(100);
    auto a = batch(1, 60);
    ASSERT_TRUE(q.try_push(a));
    auto b = batch(2, 50);
    TxnBatch* raw = b.get();
    EXPECT_FALSE(q.try_push(b));  // 60 + 50 > 100
    EXPECT_EQ(b.get(), raw) << "rejected batch stays with the caller";
    EXPECT_EQ(b->xid, 2u);
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.bytes(), 60u);

    auto c = batch(3, 40);
    EXPECT_TRUE(q.try_push(c));  // exactly at the budget
    EXPECT_EQ(q.bytes(), 100u);
    auto d = batch(4, 1);
    EXPECT_FALSE(q.try_push(d));

    EXPECT_EQ(q.try_pop()->xid, 1u);
    EXPECT_EQ(q.bytes(), 40u);
    EXPECT_TRUE(q.try_push(b));  // retry now fits: 40 + 50
    EXPECT_EQ(b, nullptr);
    EXPECT_EQ(q.try_pop()->xid, 3u);
    EXPECT_EQ(q.try_pop()->xid, 2u);
    EXPECT_TRUE(q.empty());
}

TEST(ChangeQueue, OversizeBatchAcceptedOnlyWhenEmpty) {
    ChangeQueue q(100);
    auto small = batch(1, 10);
    ASSERT_TRUE(q.try_push(small));
    auto huge = batch(2, 1000);
    EXPECT_FALSE(q.try_push(huge)) << "queue not empty";
    ASSERT_NE(huge, nullptr);
    EXPECT_EQ(q.try_pop()->xid, 1u);

    EXPECT_TRUE(q.try_push(huge)) << "a huge transaction must not wedge the pipeline";
    EXPECT_EQ(q.bytes(), 1000u);
    auto next = batch(3, 1);
    EXPECT_FALSE(q.try_push(next)) << "nothing more until the huge batch is consumed";
    auto got = q.try_pop();
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->xid, 2u);
    EXPECT_EQ(got->bytes, 1000u);
    EXPECT_TRUE(q.try_push(next));
    EXPECT_EQ(q.bytes(), 1u);
}

TEST(ChangeQueue, CountBound) {
    ChangeQueue q(size_t{1} << 40);
    for (size_t i = 0; i < ChangeQueue::kCapacity; ++i) {
        auto b = batch(static_cast<uint32_t>(i), 1);
        ASSERT_TRUE(q.try_push(b)) << i;
    }
    EXPECT_EQ(q.size(), ChangeQueue::kCapacity);
    auto extra = batch(999999, 1);
    EXPECT_FALSE(q.try_push(extra));
    ASSERT_NE(extra, nullptr);
    EXPECT_EQ(q.size(), ChangeQueue::kCapacity);
    EXPECT_EQ(q.bytes(), ChangeQueue::kCapacity)
        << "a rejected push leaves the accounting as it was";
    EXPECT_EQ(q.try_pop()->xid, 0u);
    EXPECT_TRUE(q.try_push(extra));
    EXPECT_EQ(q.size(), ChangeQueue::kCapacity);
    // Drain in order; the extra batch comes last.
    for (size_t i = 1; i < ChangeQueue::kCapacity; ++i)
        ASSERT_EQ(q.try_pop()->xid, i);
    EXPECT_EQ(q.try_pop()->xid, 999999u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.bytes(), 0u);
}

TEST(ChangeQueue, ReadAheadBatchesStayInFlightUntilHandedOut) {
    // try_pop takes several batches from the ring at once; those not yet
    // handed out must still count against the byte budget and the size.
    ChangeQueue q(100);
    for (uint32_t x = 1; x <= 3; ++x) {
        auto b = batch(x, 30);
        ASSERT_TRUE(q.try_push(b));
    }
    EXPECT_EQ(q.try_pop()->xid, 1u);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.bytes(), 60u);
    auto big = batch(4, 50);
    EXPECT_FALSE(q.try_push(big)) << "60 in flight + 50 > 100";
    auto small = batch(5, 40);
    EXPECT_TRUE(q.try_push(small));
    EXPECT_EQ(q.try_pop()->xid, 2u);
    EXPECT_EQ(q.try_pop()->xid, 3u);
    EXPECT_EQ(q.try_pop()->xid, 5u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.bytes(), 0u);
}

TEST(ChangeQueue, DestructorFreesQueuedBatches) {
    // LeakSanitizer (PGSHIFT_SANITIZE) reports a leak if the destructor does
    // not delete what is still queued.
    auto q = std::make_unique<ChangeQueue>(1 << 20);
    for (uint32_t x = 0; x < 100; ++x) {
        auto b = batch_with_message(x);
        ASSERT_TRUE(q->try_push(b));
    }
    EXPECT_EQ(q->size(), 100u);
    auto first = q->try_pop();
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first->changes.size(), 1u);
    q.reset();
    EXPECT_EQ(first->xid, 0u) << "a popped batch outlives the queue";
}

TEST(ChangeQueue, WriteBehindIsHandedOverAtFlushInOrder) {
    ChangeQueue q(1000);
    for (uint32_t x = 1; x <= 3; ++x) {
        auto b = batch(x, 10);
        ASSERT_TRUE(q.try_push_deferred(b));
        EXPECT_EQ(b, nullptr);
    }
    EXPECT_EQ(q.size(), 3u) << "written-behind batches count as in flight";
    EXPECT_EQ(q.bytes(), 30u);
    EXPECT_EQ(q.try_pop(), nullptr) << "not in the ring before flush()";
    auto now = batch(4, 10);
    ASSERT_TRUE(q.try_push(now)) << "try_push flushes first";
    for (uint32_t x = 1; x <= 4; ++x)
        EXPECT_EQ(q.try_pop()->xid, x);
    auto later = batch(5, 10);
    ASSERT_TRUE(q.try_push_deferred(later));
    EXPECT_TRUE(q.flush());
    EXPECT_EQ(q.try_pop()->xid, 5u);
    EXPECT_TRUE(q.empty());
}

TEST(ChangeQueue, WriteBehindRespectsTheByteBudget) {
    ChangeQueue q(100);
    auto a = batch(1, 60);
    ASSERT_TRUE(q.try_push_deferred(a));
    auto b = batch(2, 50);
    EXPECT_FALSE(q.try_push_deferred(b)) << "60 behind + 50 > 100";
    EXPECT_NE(b, nullptr);
    EXPECT_TRUE(q.flush());
    EXPECT_EQ(q.try_pop()->xid, 1u);
    EXPECT_TRUE(q.try_push_deferred(b));
}

TEST(ChangeQueue, WriteBehindFullRingKeepsBatchesBehind) {
    ChangeQueue q(size_t{1} << 40);
    uint32_t x = 0;
    for (; x < ChangeQueue::kCapacity; ++x) {
        auto b = batch(x, 1);
        ASSERT_TRUE(q.try_push(b)) << x;
    }
    auto extra = batch(x, 1);
    ASSERT_TRUE(q.try_push_deferred(extra)) << "room behind while the ring is full";
    EXPECT_FALSE(q.flush()) << "ring full: the batch stays behind";
    for (uint32_t y = 0; y < ChangeQueue::kCapacity; ++y)
        ASSERT_EQ(q.try_pop()->xid, y);
    EXPECT_EQ(q.try_pop(), nullptr);
    EXPECT_TRUE(q.flush());
    EXPECT_EQ(q.try_pop()->xid, x);
}

TEST(ChangeQueue, DestructorFreesWrittenBehindBatches) {
    auto q = std::make_unique<ChangeQueue>(1 << 20);
    for (uint32_t x = 0; x < 10; ++x) {
        auto b = batch_with_message(x);
        ASSERT_TRUE(q->try_push_deferred(b));
    }
    q.reset();  // LeakSanitizer reports it if these ten are not freed
}

class ChangeQueueTwoThreads : public ::testing::TestWithParam<bool> {};

TEST_P(ChangeQueueTwoThreads, MillionBatchesInOrder) {
    const bool deferred = GetParam();
    constexpr uint32_t kBatches = 1'000'000;
    constexpr size_t kBudget = 64 * 1024;
    constexpr size_t kMaxBatch = 1000;
    ChangeQueue q(kBudget);
    std::atomic<bool> producer_done{false};

    std::thread producer([&] {
        for (uint32_t x = 0; x < kBatches; ++x) {
            auto b = batch(x, 1 + x % kMaxBatch);
            while (!(deferred ? q.try_push_deferred(b) : q.try_push(b))) {
                q.flush();
                std::this_thread::yield();
            }
        }
        while (!q.flush())
            std::this_thread::yield();
        producer_done.store(true);
    });

    uint32_t expected = 0;
    size_t max_seen_size = 0, max_seen_bytes = 0;
    uint64_t bytes_sum = 0;
    while (expected < kBatches) {
        auto b = q.try_pop();
        // The counters are read from the consumer side while the producer
        // runs; they must never exceed the bounds (or wrap below zero).
        max_seen_size = std::max(max_seen_size, q.size());
        max_seen_bytes = std::max(max_seen_bytes, q.bytes());
        if (!b) {
            std::this_thread::yield();
            continue;
        }
        ASSERT_EQ(b->xid, expected) << "lost, duplicated or reordered batch";
        ASSERT_EQ(b->bytes, 1 + expected % kMaxBatch);
        bytes_sum += b->bytes;
        ++expected;
    }
    producer.join();
    EXPECT_TRUE(producer_done.load());
    EXPECT_EQ(q.try_pop(), nullptr) << "nothing extra after the last batch";
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.bytes(), 0u);
    uint64_t want_sum = 0;
    for (uint32_t x = 0; x < kBatches; ++x)
        want_sum += 1 + x % kMaxBatch;
    EXPECT_EQ(bytes_sum, want_sum);
    EXPECT_LE(max_seen_size, ChangeQueue::kCapacity + 128);  // + read-ahead and write-behind
    EXPECT_LE(max_seen_bytes, kBudget + kMaxBatch);
}

/// The consumer sleeps in wait_for_push() whenever the queue is empty and
/// the producer hands batches over one at a time, as the decoder does on a
/// quiet stream: a hand-off slept through would show as a wait that lasts
/// the whole (long) timeout.
TEST(ChangeQueue, WaitForPushSleepsThroughNoHandOff) {
    using std::chrono::steady_clock;
    constexpr uint32_t kBatches = 20'000;
    constexpr auto kTimeout = std::chrono::seconds(5);
    ChangeQueue q;
    std::thread producer([&] {
        for (uint32_t x = 0; x < kBatches; ++x) {
            auto b = batch(x, 10);
            while (!q.try_push_deferred(b))
                std::this_thread::yield();
            while (!q.flush())
                std::this_thread::yield();
            if (x % 64 == 0)
                std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    });
    uint32_t expected = 0;
    auto longest = steady_clock::duration::zero();
    while (expected < kBatches) {
        if (auto b = q.try_pop()) {
            ASSERT_EQ(b->xid, expected++);
            continue;
        }
        auto t0 = steady_clock::now();
        q.wait_for_push(kTimeout);
        longest = std::max(longest, steady_clock::now() - t0);
    }
    producer.join();
    EXPECT_LT(longest, std::chrono::seconds(1)) << "a hand-off was slept through";
}

TEST(ChangeQueue, WaitForPushReturnsAfterTheTimeoutWhenNothingComes) {
    ChangeQueue q;
    auto t0 = std::chrono::steady_clock::now();
    q.wait_for_push(std::chrono::milliseconds(20));
    auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, std::chrono::milliseconds(15));
    EXPECT_LT(waited, std::chrono::seconds(2));
}

TEST(ChangeQueue, WaitForPushReturnsAtOnceWhenABatchIsWaiting) {
    ChangeQueue q;
    auto b = batch(1, 10);
    ASSERT_TRUE(q.try_push(b));
    auto t0 = std::chrono::steady_clock::now();
    q.wait_for_push(std::chrono::seconds(5));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
    EXPECT_NE(q.try_pop(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(PushKinds, ChangeQueueTwoThreads, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Deferred" : "Immediate"; });

}  // namespace
}  // namespace pgshift
