#include "decoder_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "decoder/byte_reader.h"
#include "decoder/copyboth.h"
#include "decoder/pgoutput_codec.h"
#include "decoder/replication_stream.h"

namespace pgshift {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

DecoderThread::DecoderThread(DecoderOptions opts, ChangeQueue& queue, Progress& progress)
    : opts_(std::move(opts)),
      queue_(queue),
      progress_(progress),
      assembler_(assembler_options(opts_)) {}

TxnAssembler::Options DecoderThread::assembler_options(const DecoderOptions& opts) {
    TxnAssembler::Options ao;
    ao.max_batch_bytes = opts.max_batch_bytes;
    ao.spool_dir = opts.spool_dir;
    ao.proto_version = opts.features.proto_version;
    return ao;
}

DecoderThread::~DecoderThread() {
    if (thread_.joinable())
        thread_.join();
}

void DecoderThread::start() {
    stream_ = std::make_unique<ReplicationStream>(opts_.conninfo, opts_.application_name);
    std::string pubs =
        stream_->connection().literal(stream_->connection().ident(opts_.publication));
    auto options =
        opts_.features.start_options(pubs, opts_.skip_origin.has_value(), opts_.streaming);
    pg::retry_while_in_use([&] { stream_->start(opts_.slot, opts_.start, options); });
    last_received_ = opts_.start;
    pacer_ = ReadPacer(stream_->link());
    spdlog::info("decoder: streaming slot {} from {} (pgoutput v{}, streaming {}, spool {})",
                 opts_.slot, opts_.start.str(), opts_.features.proto_version,
                 opts_.streaming ? "on" : "off", opts_.spool_dir.string());
    thread_ = std::thread([this] { run(); });
}

void DecoderThread::join() {
    if (thread_.joinable())
        thread_.join();
}

void DecoderThread::run() {
    try {
        loop();
    } catch (const pg::PgError& e) {
        progress_.fail(std::string("decoder: ") + e.what(), e.is_connection_lost());
    } catch (const std::exception& e) {
        progress_.fail(std::string("decoder: ") + e.what());
    }
    stream_.reset();
}

void DecoderThread::loop() {
    bool streaming_busy = false;
    while (!progress_.stopping()) {
        if (pending_) {
            if (!queue_.try_push_deferred(pending_)) {
                queue_.flush();
                std::this_thread::sleep_for(milliseconds(1));
            }
        } else if (auto batch = assembler_.next_batch()) {
            // Drained before the next frame: TxnAssembler::feed() requires it.
            offer(std::move(batch));
        } else if (auto frame = receive_frame(streaming_busy)) {
            handle_frame(*frame);
            streaming_busy = true;
        } else {
            streaming_busy = false;
        }
        if (status_due())
            send_status(false);
    }
    // What the applier drains before it stops includes what was written
    // behind (best effort: a full ring keeps the rest, which is streamed again).
    queue_.flush();
    if (!progress_.error())
        send_status(false);
}

std::optional<std::string_view> DecoderThread::receive_frame(bool streaming_busy) {
    if (auto frame = stream_->buffered_frame())
        return frame;
    // About to nap or wait on the socket: hand the written-behind batches to
    // the applier first. A full ring keeps some back; wait briefly then.
    milliseconds timeout = queue_.flush() ? read_timeout() : milliseconds(1);
    if (streaming_busy) {
        microseconds nap = pacer_.nap();
        SocketFill fill = stream_->nap(nap);
        pacer_.after_nap(nap, fill.queued, fill.buffer);
        progress_.read_nap_us.store(nap.count(), std::memory_order_relaxed);
        progress_.socket_buffer.store(static_cast<int64_t>(fill.buffer), std::memory_order_relaxed);
        if (auto frame = stream_->buffered_frame())
            return frame;
    }
    return stream_->wait_frame(timeout);
}

void DecoderThread::handle_frame(std::string_view frame) {
    auto parsed = copyboth::parse_server_frame(frame);
    if (auto* ka = std::get_if<copyboth::Keepalive>(&parsed)) {
        progress_.keepalive_wal_end.store(ka->wal_end.value(), std::memory_order_release);
        // An idle walsender pings while the reported positions trail its
        // sent position, and pings again only after a reply; answering a
        // walEnd that moves the flush position at once (as worker.c does for
        // each keepalive) lets an idle slot's confirmed_flush_lsn catch up
        // in one round trip rather than one status_interval per ping.
        if (ka->reply_requested || flush_position() > last_flush_sent_)
            send_status(false);
        return;
    }
    const auto& data = std::get<copyboth::XLogData>(parsed);
    last_received_ = std::max(last_received_, data.wal_end);
    last_send_time_ = data.send_time;
    handle_message(data.payload);
}

void DecoderThread::handle_message(std::string_view payload) {
    pgoutput::CodecContext ctx;
    ctx.proto_version = opts_.features.proto_version;
    ctx.in_stream_block = assembler_.in_stream_block();
    pgoutput::Message msg = pgoutput::decode(payload, ctx);
    if (auto* rel = std::get_if<pgoutput::RelationMsg>(&msg)) {
        auto diff = relations_.update(*rel);
        if (diff.kind == SchemaChange::Incompatible) {
            throw std::runtime_error(
                "the source table changed shape while the job ran: " + diff.description +
                "; nothing after this change was applied. Abort the job "
                "(pgshift abort) and start again");
        }
        if (diff.kind == SchemaChange::Compatible) {
            spdlog::warn("decoder: source relation changed compatibly: {}", diff.description);
        }
    }
    assembler_.feed(std::move(msg));
}

void DecoderThread::offer(std::unique_ptr<TxnBatch> batch) {
    if (opts_.skip_origin && batch->origin == opts_.skip_origin) {
        // Drop the other applier's writes, but keep Relation and Type
        // messages: pgoutput sends each only once per session, so a later
        // change of ours may depend on one that arrived in a skipped transaction.
        std::erase_if(batch->changes, [](const pgoutput::Message& m) {
            return !std::holds_alternative<pgoutput::RelationMsg>(m) &&
                   !std::holds_alternative<pgoutput::TypeMsg>(m);
        });
        batch->bytes = 0;
    }
    // Earlier chunks have no end LSN; the transaction is received with its last.
    if (batch->last_chunk) {
        progress_.received_end.store(batch->end_lsn.value(), std::memory_order_release);
        pacer_.on_transaction(batch->commit_time, last_send_time_);
    }
    if (!queue_.try_push_deferred(batch))
        pending_ = std::move(batch);
}

Lsn DecoderThread::flush_position() const {
    Lsn durable(progress_.durable_end.load(std::memory_order_acquire));
    Lsn received(progress_.received_end.load(std::memory_order_acquire));
    bool idle = !pending_ && queue_.empty() && !assembler_.in_transaction() && durable >= received;
    if (!idle)
        return durable;
    return std::max(durable, Lsn(progress_.keepalive_wal_end.load(std::memory_order_acquire)));
}

milliseconds DecoderThread::read_timeout() const {
    // While a commit of the applier is still to be reported, wake up soon
    // enough to report it promptly even when no more data arrives.
    Lsn durable(progress_.durable_end.load(std::memory_order_acquire));
    Lsn received(progress_.received_end.load(std::memory_order_acquire));
    return durable > last_flush_sent_ || received > durable ? kPromptStatusInterval
                                                            : milliseconds(100);
}

bool DecoderThread::status_due() const {
    auto now = steady_clock::now();
    if (now >= next_status_)
        return true;
    // The walsender derives flush_lag/replay_lag in pg_stat_replication from
    // these updates, and confirmed_flush_lsn moves only with them: report a
    // commit of the applier within kPromptStatusInterval, as the apply worker
    // reports after each receive (worker.c send_feedback).
    Lsn durable(progress_.durable_end.load(std::memory_order_acquire));
    return durable > last_flush_sent_ && now >= last_status_ + kPromptStatusInterval;
}

void DecoderThread::send_status(bool reply_requested) {
    Lsn flush = std::max(flush_position(), last_flush_sent_);
    // Applied but not yet flushed on the target: the apply position, as in
    // worker.c send_feedback (it drives replay_lag in pg_stat_replication).
    Lsn applied = std::max(flush, Lsn(progress_.applied_end.load(std::memory_order_acquire)));
    stream_->send_status(std::max(last_received_, flush), flush, applied, reply_requested);
    last_flush_sent_ = flush;
    progress_.confirmed_flush.store(flush.value(), std::memory_order_release);
    last_status_ = steady_clock::now();
    next_status_ = last_status_ + opts_.status_interval;
}

}  // namespace pgshift
