#include "decoder/txn_assembler.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include "decoder/byte_reader.h"
#include "decoder/pgoutput_codec.h"

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

/// Sets (or clears) the stream-block xid of R/Y/I/U/D/T/M; other messages
/// have none.
void set_stream_xid(Message& m, std::optional<uint32_t> xid) {
    std::visit(
        [xid](auto& v) {
            if constexpr (requires { v.xid; }) {
                if constexpr (std::is_same_v<decltype(v.xid), std::optional<uint32_t>>) {
                    v.xid = xid;
                }
            }
        },
        m);
}

[[noreturn]] void io_failure(const std::filesystem::path& path, const char* what) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(),
                            "spool file " + path.string() + ": " + what);
}

[[noreturn]] void corrupt(const std::filesystem::path& path, uint64_t offset) {
    throw std::runtime_error("spool file " + path.string() + " is truncated or corrupt at byte " +
                             std::to_string(offset));
}

void put_header(std::string& out, size_t len, uint32_t subxid) {
    if (len > UINT32_MAX) {
        throw std::length_error("a single change of " + std::to_string(len) +
                                " bytes does not fit a spool record");
    }
    const uint32_t hdr[2] = {static_cast<uint32_t>(len), subxid};
    out.append(reinterpret_cast<const char*>(hdr), sizeof hdr);
}

std::atomic<uint64_t> next_instance{1};

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

std::filesystem::path default_spool_dir() {
    return std::filesystem::temp_directory_path() /
           ("pgshift-spool-" + std::to_string(static_cast<long long>(::getpid())));
}

std::filesystem::path default_spool_dir(std::error_code& ec) noexcept {
    std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
    if (ec) {
        return {};
    }
    return tmp / ("pgshift-spool-" + std::to_string(static_cast<long long>(::getpid())));
}

// ---------------------------------------------------------------------------
// Spool files

namespace detail {

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

void Fd::reset() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

SpoolReader::SpoolReader(const std::filesystem::path& path, uint64_t from, uint64_t to,
                         size_t buffer_bytes)
    : path_(path), pos_(from), end_(to), chunk_(std::max<size_t>(buffer_bytes, 1)) {
    fd_ = Fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) {
        io_failure(path_, "open for reading");
    }
    buf_.reserve(chunk_);
}

void SpoolReader::read_exact(char* dst, size_t n) {
    while (n > 0) {
        if (buf_pos_ == buf_.size()) {
            if (pos_ >= end_) {
                corrupt(path_, offset());
            }
            // Large payloads bypass the buffer; small reads refill it.
            const bool direct = n >= chunk_;
            const size_t want =
                static_cast<size_t>(std::min<uint64_t>(direct ? n : chunk_, end_ - pos_));
            char* target = dst;
            if (!direct) {
                buf_.resize(want);
                target = buf_.data();
            }
            size_t got = 0;
            while (got < want) {
                ssize_t r =
                    ::pread(fd_.get(), target + got, want - got, static_cast<off_t>(pos_ + got));
                if (r < 0 && errno == EINTR) {
                    continue;
                }
                if (r < 0) {
                    io_failure(path_, "read");
                }
                if (r == 0) {
                    corrupt(path_, pos_ + got);
                }
                got += static_cast<size_t>(r);
            }
            pos_ += want;
            if (direct) {
                buf_.clear();
                buf_pos_ = 0;
                dst += want;
                n -= want;
                continue;
            }
            buf_pos_ = 0;
        }
        const size_t take = std::min(n, buf_.size() - buf_pos_);
        std::memcpy(dst, buf_.data() + buf_pos_, take);
        buf_pos_ += take;
        dst += take;
        n -= take;
    }
}

bool SpoolReader::next(uint32_t& subxid, std::string& bytes) {
    const uint64_t at = offset();
    if (at >= end_) {
        return false;
    }
    uint32_t hdr[2];
    read_exact(reinterpret_cast<char*>(hdr), sizeof hdr);
    if (hdr[0] == 0 || hdr[0] > end_ - offset()) {
        corrupt(path_, at);
    }
    subxid = hdr[1];
    bytes.resize(hdr[0]);
    read_exact(bytes.data(), bytes.size());
    return true;
}

StreamSpool::StreamSpool(uint32_t xid, std::filesystem::path path, size_t buffer_bytes,
                         int proto_version)
    : xid_(xid),
      path_(std::move(path)),
      buffer_limit_(std::max<size_t>(buffer_bytes, 1)),
      proto_version_(proto_version) {}

StreamSpool::~StreamSpool() {
    fd_.reset();
    if (created_) {
        std::error_code ec;
        std::filesystem::remove(path_, ec);  // best effort: a destructor must not throw
    }
}

int StreamSpool::fd_for_write() {
    if (!fd_) {
        // The first open truncates: a file left by a crashed process that had
        // the same pid must not leak into this transaction.
        const int flags = O_RDWR | O_CLOEXEC | (created_ ? 0 : O_CREAT | O_TRUNC);
        fd_ = Fd(::open(path_.c_str(), flags, 0600));
        if (!fd_) {
            io_failure(path_, created_ ? "open" : "create");
        }
        created_ = true;
    }
    return fd_.get();
}

void StreamSpool::open_block() {
    fd_for_write();
}

void StreamSpool::close_block() {
    flush();
    fd_.reset();
    std::vector<char>().swap(buf_);  // idle spools hold no memory
}

void StreamSpool::write_at(uint64_t offset, const char* data, size_t n) {
    const int fd = fd_for_write();
    while (n > 0) {
        ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            io_failure(path_, "write");
        }
        data += w;
        n -= static_cast<size_t>(w);
        offset += static_cast<uint64_t>(w);
    }
}

void StreamSpool::flush() {
    if (buf_.empty()) {
        return;
    }
    write_at(flushed_, buf_.data(), buf_.size());
    flushed_ += buf_.size();
    buf_.clear();
}

void StreamSpool::append(Message change, uint32_t change_xid) {
    if (change_xid != xid_ && subxact_index_.find(change_xid) == subxact_index_.end()) {
        subxact_index_.emplace(change_xid, subxacts_.size());
        subxacts_.emplace_back(change_xid, end_);
    }
    // The xid travels in the record header, so the message is encoded in its
    // outside-a-stream-block form.
    set_stream_xid(change, std::nullopt);
    const std::string bytes = encode(change, CodecContext{proto_version_, false, false});
    std::string hdr;
    put_header(hdr, bytes.size(), change_xid);
    const size_t record = hdr.size() + bytes.size();
    if (buf_.size() + record > buffer_limit_) {
        flush();
    }
    if (record >= buffer_limit_) {
        write_at(flushed_, hdr.data(), hdr.size());
        write_at(flushed_ + hdr.size(), bytes.data(), bytes.size());
        flushed_ += record;
    } else {
        if (buf_.capacity() < buffer_limit_) {
            buf_.reserve(buffer_limit_);
        }
        buf_.insert(buf_.end(), hdr.begin(), hdr.end());
        buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    }
    end_ += record;
    ++records_;
}

bool StreamSpool::abort_subxact(uint32_t subxid) {
    auto it = subxact_index_.find(subxid);
    if (it == subxact_index_.end()) {
        return false;
    }
    const size_t idx = it->second;
    const uint64_t cut = subxacts_[idx].second;
    // Forget this subxact and every subxact that started after it.
    for (size_t i = idx; i < subxacts_.size(); ++i) {
        subxact_index_.erase(subxacts_[i].first);
    }
    subxacts_.resize(idx);

    // Collect the Relation/Type records after the cut (see txn_assembler.h),
    // truncate, and put them back in order. Only schema records are held in
    // memory, however large the aborted subxact was.
    flush();
    std::string kept;
    size_t kept_records = 0;
    size_t tail_records = 0;
    {
        SpoolReader reader(path_, cut, end_, buffer_limit_);
        uint32_t sx = 0;
        std::string bytes;
        while (reader.next(sx, bytes)) {
            ++tail_records;
            if (bytes[0] == 'R' || bytes[0] == 'Y') {
                put_header(kept, bytes.size(), sx);
                kept += bytes;
                ++kept_records;
            }
        }
    }
    const bool was_open = static_cast<bool>(fd_);
    const int fd = fd_for_write();
    if (::ftruncate(fd, static_cast<off_t>(cut)) != 0) {
        io_failure(path_, "truncate");
    }
    flushed_ = cut;
    end_ = cut;
    if (!kept.empty()) {
        write_at(cut, kept.data(), kept.size());
        flushed_ += kept.size();
        end_ += kept.size();
    }
    records_ -= tail_records - kept_records;
    if (!was_open) {
        fd_.reset();
    }
    return true;
}

SpoolReader StreamSpool::reader() {
    flush();
    fd_for_write();  // creates the file if no block ever opened it
    return SpoolReader(path_, 0, end_, buffer_limit_);
}

Message StreamSpool::decode_record(uint32_t subxid, const std::string& bytes) const {
    Message m = decode(bytes, CodecContext{proto_version_, false, false});
    set_stream_xid(m, subxid);
    return m;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// TxnAssembler

struct TxnAssembler::OpenTxn {
    bool prepare = false;  ///< b..P rather than B..C
    Lsn expected_lsn;      ///< Begin.final_lsn or Begin Prepare.prepare_lsn
    Lsn prepare_end_lsn;   ///< Begin Prepare.end_lsn
    std::string gid;
    bool has_data_change = false;        ///< an I/U/D/T was seen (Origin must precede them)
    std::optional<std::string> barrier;  ///< goes on the last chunk
    std::unique_ptr<TxnBatch> batch = std::make_unique<TxnBatch>();  ///< current chunk
};

/// A Stream Commit being handed out chunk by chunk from its spool file.
struct TxnAssembler::Replay {
    std::unique_ptr<detail::StreamSpool> spool;  ///< removes the file when done
    detail::SpoolReader reader;
    TxnBatch header;                   ///< xid, LSNs, commit_time, origin
    std::optional<Message> lookahead;  ///< read but did not fit the previous chunk
    size_t lookahead_bytes = 0;
    std::optional<std::string> barrier;
};

TxnAssembler::TxnAssembler() : TxnAssembler(Options{}) {}
TxnAssembler::TxnAssembler(Options opts) : opts_(std::move(opts)), instance_(next_instance++) {
    if (opts_.max_batch_bytes == 0) {
        opts_.max_batch_bytes = 1;
    }
}

TxnAssembler::~TxnAssembler() {
    replay_.reset();
    streams_.clear();  // each spool removes its file
    // The default directory is private to this process by name, so whichever
    // of several assemblers sharing it goes last removes it; a directory the
    // caller chose is removed only if this assembler made it. remove() fails
    // (and leaves it) while another assembler still has files there.
    std::error_code ec;
    if (created_dir_ || opts_.spool_dir == default_spool_dir(ec)) {
        std::filesystem::remove(opts_.spool_dir, ec);
    }
}

size_t TxnAssembler::io_buffer_bytes() const {
    return std::clamp<size_t>(opts_.max_batch_bytes / 4, 4096, 256 << 10);
}

bool TxnAssembler::in_transaction() const {
    return open_ != nullptr || stream_xid_.has_value() || !streams_.empty() || !prepared_.empty() ||
           ready_ != nullptr || replay_ != nullptr;
}

size_t TxnAssembler::buffered_bytes() const {
    size_t n = open_ ? open_->batch->bytes : 0;
    n += ready_ ? ready_->bytes : 0;
    if (replay_) {
        n += replay_->reader.buffer_bytes() + replay_->lookahead_bytes;
    }
    for (const auto& [xid, spool] : streams_) {
        n += spool->buffered_bytes();
    }
    for (const auto& [gid, p] : prepared_) {
        n += p.batch->bytes;
    }
    return n;
}

void TxnAssembler::feed(Message msg) {
    if (ready_ || replay_) {
        throw std::logic_error("TxnAssembler::feed() called before next_batch() returned nullptr");
    }
    std::visit(
        [this](auto&& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, RelationMsg> || std::is_same_v<T, TypeMsg> ||
                          std::is_same_v<T, InsertMsg> || std::is_same_v<T, UpdateMsg> ||
                          std::is_same_v<T, DeleteMsg> || std::is_same_v<T, TruncateMsg>) {
                std::optional<uint32_t> xid = m.xid;
                Message change(std::move(m));
                const char* what = change_name(change);
                add_change(std::move(change), xid, what);
            } else {
                on(std::move(m));
            }
        },
        std::move(msg));
}

std::unique_ptr<TxnBatch> TxnAssembler::next_batch() {
    if (ready_) {
        return std::move(ready_);
    }
    if (replay_) {
        return next_replay_chunk();
    }
    return nullptr;
}

std::unique_ptr<TxnBatch> TxnAssembler::next_replay_chunk() {
    Replay& r = *replay_;
    auto batch = std::make_unique<TxnBatch>();
    batch->xid = r.header.xid;
    batch->commit_lsn = r.header.commit_lsn;
    batch->commit_time = r.header.commit_time;
    batch->origin = r.header.origin;
    uint32_t subxid = 0;
    std::string bytes;
    for (;;) {
        if (!r.lookahead) {
            if (!r.reader.next(subxid, bytes)) {
                break;
            }
            Message m = r.spool->decode_record(subxid, bytes);
            if (auto* lm = std::get_if<LogicalMsg>(&m)) {
                r.barrier = std::move(lm->content);  // only barrier messages are spooled
                continue;
            }
            r.lookahead_bytes = approx_message_bytes(m);
            r.lookahead = std::move(m);
        }
        if (!batch->changes.empty() && batch->bytes + r.lookahead_bytes > opts_.max_batch_bytes) {
            batch->last_chunk = false;  // the lookahead starts the next chunk
            return batch;
        }
        batch->bytes += r.lookahead_bytes;
        batch->changes.push_back(std::move(*r.lookahead));
        r.lookahead.reset();
        r.lookahead_bytes = 0;
    }
    batch->end_lsn = r.header.end_lsn;
    batch->barrier_nonce = std::move(r.barrier);
    batch->last_chunk = true;
    replay_.reset();  // removes the spool file
    return batch;
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
    return *it->second;
}

std::unique_ptr<detail::StreamSpool> TxnAssembler::new_spool(uint32_t xid) {
    // Created on demand (and again if another assembler sharing it removed
    // it meanwhile); private, since it holds table data.
    if (std::filesystem::create_directories(opts_.spool_dir)) {
        std::filesystem::permissions(opts_.spool_dir, std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::replace);
        created_dir_ = true;
    }
    const std::string name = std::to_string(static_cast<long long>(::getpid())) + "-" +
                             std::to_string(instance_) + "-" + xid_str(xid) + ".spool";
    return std::make_unique<detail::StreamSpool>(xid, opts_.spool_dir / name, io_buffer_bytes(),
                                                 opts_.proto_version);
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
    if (auto* lm = std::get_if<LogicalMsg>(&change)) {
        open_->barrier = std::move(lm->content);
        return;
    }
    if (!is_schema(change)) {
        open_->has_data_change = true;
    }
    const size_t n = approx_message_bytes(change);
    TxnBatch& cur = *open_->batch;
    // Hand out the full chunk early (B..C only: a prepared transaction waits
    // for K/r whole). Not before the first data change, because an Origin
    // message may still come and every chunk must carry it.
    if (!open_->prepare && open_->has_data_change && !cur.changes.empty() &&
        cur.bytes + n > opts_.max_batch_bytes) {
        auto next = std::make_unique<TxnBatch>();
        next->xid = cur.xid;
        next->commit_lsn = cur.commit_lsn;
        next->commit_time = cur.commit_time;
        next->origin = cur.origin;
        ready_ = std::move(open_->batch);
        ready_->last_chunk = false;
        open_->batch = std::move(next);
    }
    open_->batch->bytes += n;
    open_->batch->changes.push_back(std::move(change));
}

// --- B / C -------------------------------------------------------------------

void TxnAssembler::on(BeginMsg&& m) {
    require_idle("BEGIN");
    open_ = std::make_unique<OpenTxn>();
    open_->expected_lsn = m.final_lsn;
    open_->batch->xid = m.xid;
    open_->batch->commit_lsn = m.final_lsn;
    open_->batch->commit_time = m.commit_time;
}

void TxnAssembler::on(CommitMsg&& m) {
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
    std::unique_ptr<OpenTxn> txn = std::move(open_);
    std::unique_ptr<TxnBatch> batch = std::move(txn->batch);
    batch->commit_lsn = m.commit_lsn;
    batch->end_lsn = m.end_lsn;
    batch->commit_time = m.commit_time;
    batch->barrier_nonce = std::move(txn->barrier);
    batch->last_chunk = true;
    ready_ = std::move(batch);
}

// --- O -------------------------------------------------------------------------

void TxnAssembler::on(OriginMsg&& m) {
    // worker.c: only inside a streamed transaction, or inside a remote
    // transaction before any actual write. pgoutput sends it right after
    // BEGIN / BEGIN PREPARE or the first STREAM START.
    if (stream_xid_ && !stream_block_has_changes_) {
        spool_of(*stream_xid_, "ORIGIN").set_origin(std::move(m.name));
        return;
    }
    if (!stream_xid_ && open_ && !open_->has_data_change) {
        open_->batch->origin = std::move(m.name);
        return;
    }
    violation("ORIGIN message sent out of order");
}

// --- M -------------------------------------------------------------------------

void TxnAssembler::on(LogicalMsg&& m) {
    if (!m.transactional()) {
        // Decoded at its own WAL position, never inside B..C or S..E.
        if (open_ || stream_xid_) {
            violation("non-transactional MESSAGE (prefix \"" + m.prefix +
                      "\") inside a transaction");
        }
        if (m.xid) {
            violation("non-transactional MESSAGE carries a streaming xid");
        }
        return;
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
        return;
    }
    // A streamed barrier is spooled like a change, so that a subxact abort
    // truncates it away with the subxact.
    std::optional<uint32_t> xid = m.xid;
    add_change(Message(std::move(m)), xid, "MESSAGE");
}

// --- S / E / c / A -------------------------------------------------------------

void TxnAssembler::on(StreamStartMsg&& m) {
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
        it = streams_.emplace(m.xid, new_spool(m.xid)).first;
    } else if (it == streams_.end()) {
        violation("STREAM START for transaction " + xid_str(m.xid) + " without its first segment");
    }
    it->second->open_block();
    stream_xid_ = m.xid;
    stream_block_has_changes_ = false;
}

void TxnAssembler::on(StreamStopMsg&&) {
    if (!stream_xid_) {
        violation("STREAM STOP message without STREAM START");
    }
    spool_of(*stream_xid_, "STREAM STOP").close_block();
    stream_xid_.reset();
    stream_block_has_changes_ = false;
}

void TxnAssembler::on(StreamCommitMsg&& m) {
    if (stream_xid_) {
        violation("STREAM COMMIT message without STREAM STOP");
    }
    if (open_) {
        violation("STREAM COMMIT message inside transaction " + xid_str(open_->batch->xid));
    }
    if (m.flags != 0) {
        violation("unrecognized flags " + std::to_string(m.flags) + " in stream commit message");
    }
    spool_of(m.xid, "STREAM COMMIT");
    auto node = streams_.extract(m.xid);
    std::unique_ptr<detail::StreamSpool> spool = std::move(node.mapped());
    detail::SpoolReader reader = spool->reader();
    replay_ = std::make_unique<Replay>(
        Replay{std::move(spool), std::move(reader), TxnBatch{}, std::nullopt, 0, std::nullopt});
    replay_->header.xid = m.xid;
    replay_->header.commit_lsn = m.commit_lsn;
    replay_->header.end_lsn = m.end_lsn;
    replay_->header.commit_time = m.commit_time;
    replay_->header.origin = std::move(replay_->spool->origin());
}

void TxnAssembler::on(StreamAbortMsg&& m) {
    if (stream_xid_) {
        violation("STREAM ABORT message without STREAM STOP");
    }
    if (open_) {
        violation("STREAM ABORT message inside transaction " + xid_str(open_->batch->xid));
    }
    detail::StreamSpool& spool = spool_of(m.xid, "STREAM ABORT");
    if (m.subxid == m.xid) {
        streams_.erase(m.xid);  // deletes the file
    } else {
        spool.abort_subxact(m.subxid);  // unknown subxid: made no change, no-op
    }
}

// --- b / P / p / K / r ---------------------------------------------------------

void TxnAssembler::on(BeginPrepareMsg&& m) {
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
}

void TxnAssembler::hold_prepared(std::unique_ptr<TxnBatch> batch, std::string gid,
                                 Lsn prepare_end_lsn, const char* what) {
    if (prepared_.count(gid) != 0) {
        violation(std::string(what) + " for transaction \"" + gid + "\" which is already prepared");
    }
    Prepared p{gid, prepare_end_lsn, std::move(batch)};
    prepared_.emplace(std::move(gid), std::move(p));
}

void TxnAssembler::on(PrepareMsg&& m) {
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
    txn->batch->barrier_nonce = std::move(txn->barrier);
    hold_prepared(std::move(txn->batch), std::move(m.gid), m.end_lsn, "PREPARE");
}

void TxnAssembler::on(StreamPrepareMsg&& m) {
    if (stream_xid_) {
        violation("STREAM PREPARE message without STREAM STOP");
    }
    if (open_) {
        violation("STREAM PREPARE message inside transaction " + xid_str(open_->batch->xid));
    }
    if (prepared_.count(m.gid) != 0) {
        violation("STREAM PREPARE for transaction \"" + m.gid + "\" which is already prepared");
    }
    detail::StreamSpool& spool = spool_of(m.xid, "STREAM PREPARE");
    // Held whole in memory until K/r (two_phase is not enabled; see above).
    auto batch = std::make_unique<TxnBatch>();
    batch->xid = m.xid;
    batch->commit_time = m.prepare_time;
    batch->origin = std::move(spool.origin());
    batch->changes.reserve(spool.size());
    {
        detail::SpoolReader reader = spool.reader();
        uint32_t subxid = 0;
        std::string bytes;
        while (reader.next(subxid, bytes)) {
            Message change = spool.decode_record(subxid, bytes);
            if (auto* lm = std::get_if<LogicalMsg>(&change)) {
                batch->barrier_nonce = std::move(lm->content);
                continue;
            }
            batch->bytes += approx_message_bytes(change);
            batch->changes.push_back(std::move(change));
        }
    }
    streams_.erase(m.xid);
    hold_prepared(std::move(batch), std::move(m.gid), m.end_lsn, "STREAM PREPARE");
}

void TxnAssembler::on(CommitPreparedMsg&& m) {
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
    batch->last_chunk = true;
    ready_ = std::move(batch);
}

void TxnAssembler::on(RollbackPreparedMsg&& m) {
    require_idle("ROLLBACK PREPARED");
    // Unknown gid: nothing of it is held (e.g. prepared before two-phase
    // decoding was enabled), so there is nothing to drop.
    prepared_.erase(m.gid);
}

}  // namespace pgshift
