#include "change_queue.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace pgshift {

namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the futex word must be a plain 32-bit integer");

uint32_t* futex_word(std::atomic<uint32_t>& a) {
    return reinterpret_cast<uint32_t*>(&a);
}

}  // namespace

void ChangeQueue::wait_for_push(std::chrono::microseconds timeout) {
    uint32_t seen = wake_seq_.load(std::memory_order_relaxed);
    consumer_waiting_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (stash_head_ == stash_len_ && queue_.read_available() == 0) {
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
        timespec ts{
            static_cast<time_t>(secs.count()),
            static_cast<long>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(timeout - secs).count())};
        // EAGAIN (a wake-up came first), EINTR and ETIMEDOUT all mean: look again.
        syscall(SYS_futex, futex_word(wake_seq_), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
    }
    consumer_waiting_.store(false, std::memory_order_relaxed);
}

void ChangeQueue::wake_waiting_consumer() {
    wake_seq_.fetch_add(1, std::memory_order_relaxed);
    syscall(SYS_futex, futex_word(wake_seq_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace pgshift
