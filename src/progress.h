// State shared between the decoder thread, the applier thread and the phase
// controller. Feedback flows back only through these atomics: the applier
// stores with release after COMMIT (and once the commit's WAL is flushed),
// the decoder loads with acquire before it reports a flush LSN. There is no
// second queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "lsn.h"

namespace pgshift {

class Progress {
  public:
    /// End LSN of the last transaction the decoder pushed to the queue.
    std::atomic<uint64_t> received_end{0};
    /// End LSN of the last transaction committed on the target (or skipped
    /// as empty after everything before it was committed): visible there,
    /// what the cutover barrier and the lag are measured by.
    std::atomic<uint64_t> applied_end{0};
    /// End LSN of the last applied transaction whose target commit is also
    /// flushed to the target's WAL (LsnMapping): what the slot is told.
    std::atomic<uint64_t> durable_end{0};
    /// Commit time (µs since 2000-01-01) of the last applied source transaction.
    std::atomic<int64_t> applied_commit_time{0};
    /// Flush LSN last sent to the server in a standby status update.
    std::atomic<uint64_t> confirmed_flush{0};
    /// walEnd of the last keepalive.
    std::atomic<uint64_t> keepalive_wal_end{0};
    /// The decoder's last nap between reads of a busy socket (microseconds)
    /// and the socket's receive buffer then (bytes, SO_RCVBUF): see ReadPacer.
    std::atomic<int64_t> read_nap_us{0};
    std::atomic<int64_t> socket_buffer{0};
    std::atomic<int64_t> changes_applied{0};
    std::atomic<int64_t> txns_applied{0};
    /// Snapshot copy: rows, binary COPY bytes and chunks committed so far.
    std::atomic<int64_t> rows_copied{0};
    std::atomic<int64_t> bytes_copied{0};
    std::atomic<int> chunks_copied{0};
    std::atomic<bool> stop_requested{false};

    /// Records the first error and asks every thread to stop. connection_lost:
    /// the error was the loss of a session (pg::PgError::is_connection_lost),
    /// after which the stream can resume on new connections.
    void fail(const std::string& message, bool connection_lost = false) {
        std::lock_guard lock(mu_);
        if (!error_) {
            error_ = message;
            connection_lost_ = connection_lost;
        }
        stop_requested.store(true, std::memory_order_release);
    }
    std::optional<std::string> error() const {
        std::lock_guard lock(mu_);
        return error_;
    }
    bool connection_lost() const {
        std::lock_guard lock(mu_);
        return connection_lost_;
    }
    /// Called by the applier after the transaction carrying the cutover
    /// barrier with this nonce has committed.
    void publish_barrier(const std::string& nonce) {
        std::lock_guard lock(mu_);
        barrier_applied_ = nonce;
    }
    bool barrier_applied(const std::string& nonce) const {
        std::lock_guard lock(mu_);
        return barrier_applied_ == nonce;
    }
    bool stopping() const { return stop_requested.load(std::memory_order_acquire); }
    /// Why copy chunks wait (a safety limit passed); empty to let them run.
    /// Set by the phase controller's tick, read by the copy workers.
    void set_paused(std::string reason) {
        std::lock_guard lock(mu_);
        paused_ = std::move(reason);
    }
    std::string paused() const {
        std::lock_guard lock(mu_);
        return paused_;
    }

  private:
    mutable std::mutex mu_;
    std::optional<std::string> error_;
    bool connection_lost_ = false;
    std::string barrier_applied_;
    std::string paused_;
};

}  // namespace pgshift
