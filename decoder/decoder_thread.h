// The decoder actor: sole owner of the replication connection. Reads
// pgoutput over CopyBoth, decodes each message, assembles committed
// transactions and pushes them to the ChangeQueue in commit order.
//
// Bounded memory: one loop step does exactly one of (1) retry the pending
// chunk, (2) take the next ready chunk from the assembler, (3) read one frame.
// A frame is read only when the assembler has nothing ready, so a huge
// transaction (a chunked B..C, or a Stream Commit replayed from its spool
// file) is held as at most one chunk here plus what the byte-bounded queue
// holds; while the queue is full nothing more is read or replayed.
//
// Feedback rule (docs "Streaming Replication Protocol"; worker.c
// send_feedback): the flush LSN reported is the end LSN of the last
// transaction the applier committed whose commit is also flushed to the
// target's WAL (progress.durable_end; the applier commits asynchronously,
// see LsnMapping), the apply LSN that of the last one committed; only when
// nothing is in flight (no open transaction, queue drained, everything
// received durable) is the last keepalive walEnd reported, so an idle table
// never pins WAL. Status updates go out at least every status_interval,
// within kPromptStatusInterval of an applier commit, and at once when the
// server asks or a keepalive's walEnd moves the flush position (idle), even
// while the queue is full: then the decoder stops reading (TCP
// back-pressure) but keeps talking, so wal_sender_timeout never fires. Only
// a last chunk advances progress.received_end (earlier chunks carry no end
// LSN), and the assembler reports in_transaction() while a chunked or
// streamed transaction is open, so a keepalive walEnd is never confirmed in
// the middle of one.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "change_queue.h"
#include "decoder/read_pacer.h"
#include "decoder/relation_cache.h"
#include "decoder/txn_assembler.h"
#include "progress.h"
#include "server_features.h"

namespace pgshift {

class ReplicationStream;

struct DecoderOptions {
    std::string conninfo;
    std::string application_name = "pgshift";
    std::string slot;
    std::string publication;
    Lsn start;  ///< where to resume: origin progress, or the slot's consistent point
    ServerFeatures features;
    /// Transactions whose Origin message names this origin are dropped (loop
    /// prevention on 14/15; 16+ also gets origin 'none' on the server side).
    std::optional<std::string> skip_origin;
    std::chrono::milliseconds status_interval{1000};
    /// Ask for streaming 'on' (protocol.md A5.4): large in-progress
    /// transactions arrive early and are spooled under spool_dir.
    bool streaming = true;
    /// Where streamed transactions are spooled (see TxnAssembler::Options).
    std::filesystem::path spool_dir = default_spool_dir();
    /// Largest chunk handed to the applier (TxnAssembler::Options).
    size_t max_batch_bytes = size_t{8} << 20;
};

class DecoderThread {
  public:
    DecoderThread(DecoderOptions opts, ChangeQueue& queue, Progress& progress);
    ~DecoderThread();
    DecoderThread(const DecoderThread&) = delete;
    DecoderThread& operator=(const DecoderThread&) = delete;

    /// Connects and issues START_REPLICATION on the calling thread (so that
    /// connection errors surface to the caller), then starts the thread.
    void start();
    /// Waits for the thread; it ends when progress.stopping() or on error
    /// (recorded with progress.fail()).
    void join();

  private:
    void run();
    void loop();
    /// A frame that needs no waiting, else (after ChangeQueue::flush()) one
    /// received within read_timeout(); nullopt when none came.
    std::optional<std::string_view> receive_frame(bool streaming_busy);
    void handle_frame(std::string_view frame);
    void handle_message(std::string_view payload);
    void offer(std::unique_ptr<TxnBatch> batch);
    static TxnAssembler::Options assembler_options(const DecoderOptions& opts);
    void send_status(bool reply_requested);
    Lsn flush_position() const;
    std::chrono::milliseconds read_timeout() const;
    bool status_due() const;

    /// An applied commit is reported to the server at most this much later.
    static constexpr std::chrono::milliseconds kPromptStatusInterval{10};

    DecoderOptions opts_;
    ChangeQueue& queue_;
    Progress& progress_;
    std::unique_ptr<ReplicationStream> stream_;
    TxnAssembler assembler_;
    RelationCache relations_;
    std::unique_ptr<TxnBatch> pending_;  ///< waiting for queue space
    Lsn last_received_;
    int64_t last_send_time_ = 0;  ///< of the last XLogData frame, us since 2000-01-01
    ReadPacer pacer_{ReadPacer::Link::Tcp};
    Lsn last_flush_sent_;
    std::chrono::steady_clock::time_point next_status_{};
    std::chrono::steady_clock::time_point last_status_{};
    std::thread thread_;
};

}  // namespace pgshift
