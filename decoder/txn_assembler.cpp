#include "decoder/txn_assembler.h"

#include <type_traits>

#include "decoder/byte_reader.h"

namespace pgshift {

namespace {

using namespace pgoutput;

[[noreturn]] void violation(const std::string& what) {
    throw ProtocolError(what, 0);
}

std::string xid_str(uint32_t xid) {
    return std::to_string(xid);
}

size_t tuple_bytes(const TupleData& t) {
    size_t n = t.capacity() * sizeof(ColumnValue);
    for (const ColumnValue& v : t) {
        n += v.data.capacity() > 15 ? v.data.capacity() : 0;  // beyond SSO
    }
    return n;
}

size_t string_bytes(const std::string& s) {
    return s.capacity() > 15 ? s.capacity() : 0;
}

/// Name of a change message for error texts.
const char* change_name(const Message& m) {
    return std::visit(
        [](const auto& v) -> const char* {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, RelationMsg>) {
                return "RELATION";
            } else if constexpr (std::is_same_v<T, TypeMsg>) {
                return "TYPE";
            } else if constexpr (std::is_same_v<T, InsertMsg>) {
                return "INSERT";
            } else if constexpr (std::is_same_v<T, UpdateMsg>) {
                return "UPDATE";
            } else if constexpr (std::is_same_v<T, DeleteMsg>) {
                return "DELETE";
            } else if constexpr (std::is_same_v<T, TruncateMsg>) {
                return "TRUNCATE";
            } else if constexpr (std::is_same_v<T, LogicalMsg>) {
                return "MESSAGE";
            } else {
                return "message";
            }
        },
        m);
}

bool is_schema(const Message& m) {
    return std::holds_alternative<RelationMsg>(m) || std::holds_alternative<TypeMsg>(m);
}

}  // namespace

size_t approx_message_bytes(const Message& msg) {
    size_t n = sizeof(Message);
    std::visit(
        [&n](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, InsertMsg>) {
                n += tuple_bytes(v.new_tuple);
            } else if constexpr (std::is_same_v<T, UpdateMsg>) {
                n += tuple_bytes(v.old_tuple) + tuple_bytes(v.new_tuple);
            } else if constexpr (std::is_same_v<T, DeleteMsg>) {
                n += tuple_bytes(v.old_tuple);
            } else if constexpr (std::is_same_v<T, RelationMsg>) {
                n += string_bytes(v.nspname) + string_bytes(v.relname) +
                     v.columns.capacity() * sizeof(RelationColumn);
                for (const RelationColumn& c : v.columns) {
                    n += string_bytes(c.name);
                }
            } else if constexpr (std::is_same_v<T, TypeMsg>) {
                n += string_bytes(v.nspname) + string_bytes(v.typname);
            } else if constexpr (std::is_same_v<T, TruncateMsg>) {
                n += v.relids.capacity() * sizeof(uint32_t);
            } else if constexpr (std::is_same_v<T, LogicalMsg>) {
                n += string_bytes(v.prefix) + string_bytes(v.content);
            }
        },
        msg);
    return n;
}

// ---------------------------------------------------------------------------
// StreamSpool

namespace detail {

void StreamSpool::append(Message change, uint32_t change_xid) {
    if (change_xid != xid_) {
        // Search from the end: the current subxact is almost always the last.
        bool known = false;
        for (auto it = subxacts_.rbegin(); it != subxacts_.rend(); ++it) {
            if (it->first == change_xid) {
                known = true;
                break;
            }
        }
        if (!known) {
            subxacts_.emplace_back(change_xid, changes_.size());
        }
    }
    bytes_ += approx_message_bytes(change);
    changes_.push_back(std::move(change));
}

bool StreamSpool::abort_subxact(uint32_t subxid) {
    size_t idx = subxacts_.size();
    for (size_t i = subxacts_.size(); i > 0; --i) {
        if (subxacts_[i - 1].first == subxid) {
            idx = i - 1;
            break;
        }
    }
    if (idx == subxacts_.size()) {
        return false;
    }
    const size_t cut = subxacts_[idx].second;
    // Forget this subxact and every subxact that started after it.
    subxacts_.resize(idx);

    // Truncate at `cut`, keeping schema messages (see txn_assembler.h).
    size_t out = cut;
    for (size_t i = cut; i < changes_.size(); ++i) {
        if (is_schema(changes_[i])) {
            if (out != i) {
                changes_[out] = std::move(changes_[i]);
            }
            ++out;
        }
    }
    changes_.resize(out);
    bytes_ = 0;
    for (const Message& m : changes_) {
        bytes_ += approx_message_bytes(m);
    }
    return true;
}

void StreamSpool::drain_into(TxnBatch& batch, const std::string& barrier_prefix) {
    batch.changes.reserve(batch.changes.size() + changes_.size());
    for (Message& m : changes_) {
        if (auto* lm = std::get_if<LogicalMsg>(&m)) {
            if (lm->prefix == barrier_prefix) {
                batch.barrier_nonce = std::move(lm->content);
            }
            continue;
        }
        batch.changes.push_back(std::move(m));
    }
    batch.bytes += bytes_;
    if (origin_) {
        batch.origin = std::move(origin_);
    }
    changes_.clear();
    subxacts_.clear();
    origin_.reset();
    bytes_ = 0;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// TxnAssembler

struct TxnAssembler::OpenTxn {
    bool prepare = false;  ///< b..P rather than B..C
    Lsn expected_lsn;      ///< Begin.final_lsn or Begin Prepare.prepare_lsn
    Lsn prepare_end_lsn;   ///< Begin Prepare.end_lsn
    std::string gid;
    bool has_data_change = false;  ///< an I/U/D/T was seen (Origin must precede them)
    std::unique_ptr<TxnBatch> batch = std::make_unique<TxnBatch>();
};

TxnAssembler::TxnAssembler() : TxnAssembler(Options{}) {}
TxnAssembler::TxnAssembler(Options opts) : opts_(std::move(opts)) {}
TxnAssembler::~TxnAssembler() = default;

bool TxnAssembler::in_transaction() const {
    return open_ != nullptr || stream_xid_.has_value() || !streams_.empty() || !prepared_.empty();
}

size_t TxnAssembler::buffered_bytes() const {
    size_t n = open_ ? open_->batch->bytes : 0;
    for (const auto& [xid, spool] : streams_) {
        n += spool.bytes();
    }
    for (const auto& [gid, p] : prepared_) {
        n += p.batch->bytes;
    }
    return n;
}

std::unique_ptr<TxnBatch> TxnAssembler::feed(Message msg) {
    return std::visit(
        [this](auto&& m) -> std::unique_ptr<TxnBatch> {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, RelationMsg> || std::is_same_v<T, TypeMsg> ||
                          std::is_same_v<T, InsertMsg> || std::is_same_v<T, UpdateMsg> ||
                          std::is_same_v<T, DeleteMsg> || std::is_same_v<T, TruncateMsg>) {
                std::optional<uint32_t> xid = m.xid;
                Message change(std::move(m));
                const char* what = change_name(change);
                add_change(std::move(change), xid, what);
                return nullptr;
            } else {
                return on(std::move(m));
            }
        },
        std::move(msg));
}

void TxnAssembler::require_idle(const char* what) const {
    if (stream_xid_) {
        violation(std::string(what) + " message inside the stream block of transaction " +
                  xid_str(*stream_xid_) + " (missing STREAM STOP)");
    }
    if (open_) {
        violation(std::string(what) + " message while transaction " + xid_str(open_->batch->xid) +
                  " is still open (missing " + (open_->prepare ? "PREPARE" : "COMMIT") + ")");
    }
}

detail::StreamSpool& TxnAssembler::spool_of(uint32_t xid, const char* what) {
    auto it = streams_.find(xid);
    if (it == streams_.end()) {
        violation(std::string(what) + " for transaction " + xid_str(xid) +
                  " that was never streamed (no STREAM START)");
    }
    return it->second;
}

void TxnAssembler::add_change(Message&& change, std::optional<uint32_t> change_xid,
                              const char* what) {
    if (stream_xid_) {
        if (!change_xid) {
            violation(std::string(what) + " message without xid inside the stream block of " +
                      "transaction " + xid_str(*stream_xid_));
        }
        const bool data_change = !is_schema(change);
        spool_of(*stream_xid_, what).append(std::move(change), *change_xid);
        stream_block_has_changes_ = stream_block_has_changes_ || data_change;
        return;
    }
    if (!open_) {
        violation(std::string(what) + " message outside a transaction (no BEGIN)");
    }
    if (change_xid) {
        violation(std::string(what) + " message carries a streaming xid (" + xid_str(*change_xid) +
                  ") outside a stream block");
    }
    if (!is_schema(change) && !std::holds_alternative<LogicalMsg>(change)) {
        open_->has_data_change = true;
    }
    if (auto* lm = std::get_if<LogicalMsg>(&change)) {
        open_->batch->barrier_nonce = std::move(lm->content);
        return;
    }
    open_->batch->bytes += approx_message_bytes(change);
    open_->batch->changes.push_back(std::move(change));
}

// --- B / C -------------------------------------------------------------------

std::unique_ptr<TxnBatch> TxnAssembler::on(BeginMsg&& m) {
    require_idle("BEGIN");
    open_ = std::make_unique<OpenTxn>();
    open_->expected_lsn = m.final_lsn;
    open_->batch->xid = m.xid;
    open_->batch->commit_lsn = m.final_lsn;
    open_->batch->commit_time = m.commit_time;
    return nullptr;
}

std::unique_ptr<TxnBatch> TxnAssembler::on(CommitMsg&& m) {
    if (stream_xid_) {
        violation("COMMIT message inside the stream block of transaction " + xid_str(*stream_xid_));
    }
    if (!open_) {
        violation("COMMIT without BEGIN");
    }
    if (open_->prepare) {
        violation("COMMIT message inside prepared transaction \"" + open_->gid +
                  "\" (expected PREPARE)");
    }
    if (m.flags != 0) {
        violation("unrecognized flags " + std::to_string(m.flags) + " in commit message");
    }
    if (m.commit_lsn != open_->expected_lsn) {
        violation("incorrect commit LSN " + m.commit_lsn.str() + " in commit message (BEGIN said " +
                  open_->expected_lsn.str() + ")");
    }
    std::unique_ptr<TxnBatch> batch = std::move(open_->batch);
    open_.reset();
    batch->commit_lsn = m.commit_lsn;
    batch->end_lsn = m.end_lsn;
    batch->commit_time = m.commit_time;
    return batch;
}

// --- O -------------------------------------------------------------------------

std::unique_ptr<TxnBatch> TxnAssembler::on(OriginMsg&& m) {
    // worker.c: only inside a streamed transaction, or inside a remote
    // transaction before any actual write. pgoutput sends it right after
    // BEGIN / BEGIN PREPARE or the first STREAM START.
    if (stream_xid_ && !stream_block_has_changes_) {
        spool_of(*stream_xid_, "ORIGIN").set_origin(std::move(m.name));
        return nullptr;
    }
    if (!stream_xid_ && open_ && !open_->has_data_change) {
        open_->batch->origin = std::move(m.name);
        return nullptr;
    }
    violation("ORIGIN message sent out of order");
}

// --- M -------------------------------------------------------------------------

std::unique_ptr<TxnBatch> TxnAssembler::on(LogicalMsg&& m) {
    if (!m.transactional()) {
        // Decoded at its own WAL position, never inside B..C or S..E.
        if (open_ || stream_xid_) {
            violation("non-transactional MESSAGE (prefix \"" + m.prefix +
                      "\") inside a transaction");
        }
        if (m.xid) {
            violation("non-transactional MESSAGE carries a streaming xid");
        }
        return nullptr;
    }
    if (!open_ && !stream_xid_) {
        violation("transactional MESSAGE (prefix \"" + m.prefix + "\") outside a transaction");
    }
    if (m.prefix != opts_.barrier_prefix) {
        // Not ours: validate framing, then drop (worker.c ignores messages).
        if (stream_xid_ && !m.xid) {
            violation("MESSAGE without xid inside the stream block of transaction " +
                      xid_str(*stream_xid_));
        }
        if (!stream_xid_ && m.xid) {
            violation("MESSAGE carries a streaming xid (" + xid_str(*m.xid) +
                      ") outside a stream block");
        }
        return nullptr;
    }
    std::optional<uint32_t> xid = m.xid;
    add_change(Message(std::move(m)), xid, "MESSAGE");
    return nullptr;
}

// --- S / E / c / A -------------------------------------------------------------

std::unique_ptr<TxnBatch> TxnAssembler::on(StreamStartMsg&& m) {
    if (stream_xid_) {
        violation("duplicate STREAM START message (stream block of transaction " +
                  xid_str(*stream_xid_) + " is still open)");
    }
    if (open_) {
        violation("STREAM START message inside transaction " + xid_str(open_->batch->xid));
    }
    auto it = streams_.find(m.xid);
    if (m.first_segment != 0) {
        if (it != streams_.end()) {
            violation("STREAM START with first_segment for transaction " + xid_str(m.xid) +
                      " that is already being streamed");
        }
        streams_.emplace(m.xid, detail::StreamSpool(m.xid));
    } else if (it == streams_.end()) {
        violation("STREAM START for transaction " + xid_str(m.xid) + " without its first segment");
    }
    stream_xid_ = m.xid;
    stream_block_has_changes_ = false;
    return nullptr;
}

std::unique_ptr<TxnBatch> TxnAssembler::on(StreamStopMsg&&) {
    if (!stream_xid_) {
        violation("STREAM STOP message without STREAM START");
    }
    stream_xid_.reset();
    stream_block_has_changes_ = false;
    return nullptr;
}

std::unique_ptr<TxnBatch> TxnAssembler::on(StreamCommitMsg&& m) {
    if (stream_xid_) {
        violation("STREAM COMMIT message without STREAM STOP");
    }
    if (open_) {
        violation("STREAM COMMIT message inside transaction " + xid_str(open_->batch->xid));
    }
    if (m.flags != 0) {
        violation("unrecognized flags " + std::to_string(m.flags) + " in stream commit message");
    }
    detail::StreamSpool& spool = spool_of(m.xid, "STREAM COMMIT");
    auto batch = std::make_unique<TxnBatch>();
    batch->xid = m.xid;
    batch->commit_lsn = m.commit_lsn;
    batch->end_lsn = m.end_lsn;
    batch->commit_time = m.commit_time;
    spool.drain_into(*batch, opts_.barrier_prefix);
    streams_.erase(m.xid);
    return batch;
}

std::unique_ptr<TxnBatch> TxnAssembler::on(StreamAbortMsg&& m) {
    if (stream_xid_) {
        violation("STREAM ABORT message without STREAM STOP");
    }
    if (open_) {
        violation("STREAM ABORT message inside transaction " + xid_str(open_->batch->xid));
    }
    detail::StreamSpool& spool = spool_of(m.xid, "STREAM ABORT");
    if (m.subxid == m.xid) {
        streams_.erase(m.xid);
    } else {
        spool.abort_subxact(m.subxid);  // unknown subxid: made no change, no-op
    }
    return nullptr;
}

// --- b / P / p / K / r ---------------------------------------------------------

std::unique_ptr<TxnBatch> TxnAssembler::on(BeginPrepareMsg&& m) {
    require_idle("BEGIN PREPARE");
    if (prepared_.count(m.gid) != 0) {
        violation("BEGIN PREPARE for transaction \"" + m.gid + "\" which is already prepared");
    }
    open_ = std::make_unique<OpenTxn>();
    open_->prepare = true;
    open_->expected_lsn = m.prepare_lsn;
    open_->prepare_end_lsn = m.end_lsn;
    open_->gid = std::move(m.gid);
    open_->batch->xid = m.xid;
    open_->batch->commit_time = m.prepare_time;
    return nullptr;
}

void TxnAssembler::hold_prepared(std::unique_ptr<TxnBatch> batch, std::string gid,
                                 Lsn prepare_end_lsn, const char* what) {
    if (prepared_.count(gid) != 0) {
        violation(std::string(what) + " for transaction \"" + gid + "\" which is already prepared");
    }
    Prepared p{gid, prepare_end_lsn, std::move(batch)};
    prepared_.emplace(std::move(gid), std::move(p));
}

std::unique_ptr<TxnBatch> TxnAssembler::on(PrepareMsg&& m) {
    if (stream_xid_) {
        violation("PREPARE message inside the stream block of transaction " +
                  xid_str(*stream_xid_));
    }
    if (!open_ || !open_->prepare) {
        violation("PREPARE without BEGIN PREPARE");
    }
    if (m.prepare_lsn != open_->expected_lsn) {
        violation("incorrect prepare LSN " + m.prepare_lsn.str() +
                  " in prepare message (BEGIN PREPARE said " + open_->expected_lsn.str() + ")");
    }
    if (m.xid != open_->batch->xid || m.gid != open_->gid) {
        violation("PREPARE for transaction " + xid_str(m.xid) + " \"" + m.gid +
                  "\" inside BEGIN PREPARE of " + xid_str(open_->batch->xid) + " \"" + open_->gid +
                  "\"");
    }
    std::unique_ptr<OpenTxn> txn = std::move(open_);
    hold_prepared(std::move(txn->batch), std::move(m.gid), m.end_lsn, "PREPARE");
    return nullptr;
}

std::unique_ptr<TxnBatch> TxnAssembler::on(StreamPrepareMsg&& m) {
    if (stream_xid_) {
        violation("STREAM PREPARE message without STREAM STOP");
    }
    if (open_) {
        violation("STREAM PREPARE message inside transaction " + xid_str(open_->batch->xid));
    }
    detail::StreamSpool& spool = spool_of(m.xid, "STREAM PREPARE");
    auto batch = std::make_unique<TxnBatch>();
    batch->xid = m.xid;
    batch->commit_time = m.prepare_time;
    spool.drain_into(*batch, opts_.barrier_prefix);
    streams_.erase(m.xid);
    hold_prepared(std::move(batch), std::move(m.gid), m.end_lsn, "STREAM PREPARE");
    return nullptr;
}

std::unique_ptr<TxnBatch> TxnAssembler::on(CommitPreparedMsg&& m) {
    require_idle("COMMIT PREPARED");
    auto it = prepared_.find(m.gid);
    if (it == prepared_.end()) {
        violation("COMMIT PREPARED for transaction \"" + m.gid +
                  "\" whose PREPARE was not received in this session");
    }
    if (it->second.batch->xid != m.xid) {
        violation("COMMIT PREPARED for transaction \"" + m.gid + "\" names xid " + xid_str(m.xid) +
                  " but it was prepared by xid " + xid_str(it->second.batch->xid));
    }
    std::unique_ptr<TxnBatch> batch = std::move(it->second.batch);
    prepared_.erase(it);
    batch->commit_lsn = m.commit_lsn;
    batch->end_lsn = m.end_lsn;
    batch->commit_time = m.commit_time;
    return batch;
}

std::unique_ptr<TxnBatch> TxnAssembler::on(RollbackPreparedMsg&& m) {
    require_idle("ROLLBACK PREPARED");
    // Unknown gid: nothing of it is held (e.g. prepared before two-phase
    // decoding was enabled), so there is nothing to drop.
    prepared_.erase(m.gid);
    return nullptr;
}

}  // namespace pgshift
