// TxnAssembler: the pgoutput protocol state machine between the codec and
// the decoder -> applier queue (the role of the apply_handle_* functions of
// PostgreSQL's src/backend/replication/logical/worker.c).
//
// Why it exists
// -------------
// * Commit order is the unit of correctness. pgoutput emits whole
//   transactions in commit order (B ... C), so the applier can replay them
//   one by one and the target goes through the same sequence of committed
//   states as the source. The assembler hands out source transactions in
//   commit order, each as one or more TxnBatch chunks (see "Bounded memory"),
//   and the applier commits only after a chunk with last_chunk = true.
// * Commit end_lsn is the only resume unit. The XLogData header LSN is neither
//   unique nor monotonic (protocol.md A2), so progress is recorded per
//   transaction as Commit.end_lsn (or Stream Commit / Commit Prepared end_lsn),
//   carried only by the last chunk. That is why *empty* transactions (PG14
//   sends B/C for every transaction in the database) are still returned, with
//   no changes: the caller must account their end_lsn, or the slot would never
//   advance past them.
// * Strict order checks. Every message is validated against the grammar of
//   protocol.md A3 the way worker.c does ("ORIGIN message sent out of order",
//   "duplicate STREAM START message", "incorrect commit LSN ..."), and any
//   violation raises pgshift::ProtocolError. A misframed stream (for example
//   a wrong in_stream_block given to the codec) must stop the migration, not
//   apply garbage. ProtocolError's offset is always 0 here: the problem is the
//   message sequence, not a byte of the message.
// * Bounded memory. A single source transaction can be far larger than RAM
//   (millions of rows), so no transaction is ever held whole in memory:
//   - An ordinary B..C transaction is handed out in chunks of at most
//     Options::max_batch_bytes as soon as its buffer fills (only after its
//     first data change, since Origin may still arrive before that); its
//     Commit yields the last chunk. This is safe because the applier applies
//     all chunks inside one target transaction, so nothing becomes visible on
//     the target before the source commit has been seen.
//   - Streaming (proto v2+, protocol.md A5.4). A large in-progress transaction
//     arrives as S ... E blocks per top-level xid, interleaved with other
//     xids' blocks and with ordinary B ... C transactions, and ends with c
//     (commit), A (abort) or p (stream prepare). Like worker.c
//     (stream_open_file / stream_write_change / apply_spooled_messages) its
//     changes are written to one spool file per top-level xid, the file is
//     open only during its stream blocks, and at Stream Commit it is replayed
//     lazily, one chunk per next_batch() call, in that commit's position in
//     the stream. Memory stays bounded by one chunk however large the
//     transaction and however many are streamed at once.
//   The consumer therefore pulls: after every feed(), call next_batch() until
//   it returns nullptr (one message can yield many chunks).
// * Subtransaction truncation. Inside S ... E every change carries the xid of
//   the (sub)transaction that made it. A Stream Abort for a subxid means
//   ROLLBACK TO SAVEPOINT of that subxact. Subxacts are nested, so every
//   change made after the subxact's *first* change belongs to it or to a
//   later (inner, or subsequent and already aborted-with-it) subxact: like
//   apply_handle_stream_abort, the spool file is truncated at the offset of
//   that first change and all subxacts that started later are forgotten. An
//   unknown subxid (a subxact that made no change) is a no-op. One deliberate
//   difference from worker.c: Relation and Type messages after the cut are
//   *kept* (re-appended after the truncation, in order). pgoutput remembers
//   per top-level xid that it already sent a relation's schema
//   (set_schema_sent_in_streamed_txn) and does not forget it when a subxact
//   aborts, so dropping a Relation first sent inside an aborted subxact would
//   leave later changes of the same transaction without their schema.
//   Keeping an extra Relation is harmless: it only refreshes the relation
//   cache. A Stream Abort of the top-level xid deletes the file.
// * Two-phase (proto v3). b ... P (or a streamed transaction ended by p)
//   prepares a transaction; it is held by gid until K (Commit Prepared), which
//   returns it with the commit's LSNs, or r (Rollback Prepared), which drops
//   it. two_phase is not enabled by pgshift, so a held prepared transaction
//   simply lives in memory, whole (a streamed one is read back from its spool
//   file at p). If the connection is restarted from a position past its
//   PREPARE, the server sends only K and the assembler raises ProtocolError
//   (the changes are gone). Do not confirm a flush position past a held
//   PREPARE; in_transaction() reports it.
// * Origins and the cutover barrier. The Origin message's name is copied to
//   TxnBatch::origin of every chunk (loop prevention on PG14/15). A
//   transactional logical message whose prefix is the barrier prefix sets
//   TxnBatch::barrier_nonce of the *last* chunk (protocol.md A7: the barrier
//   counts as applied only once the whole transaction is committed) and is
//   not a change; other logical messages are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "change.h"
#include "decoder/pgoutput_messages.h"

namespace pgshift {

namespace detail {

/// An owned POSIX file descriptor (closed on destruction).
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset();

  private:
    int fd_ = -1;
};

/// Sequential reader of spool records in [from, to) of a spool file. Record
/// format (host byte order: the file never leaves this process):
/// [u32 len][u32 subxid][len bytes of pgoutput::encode(msg, {proto, false})].
class SpoolReader {
  public:
    SpoolReader(const std::filesystem::path& path, uint64_t from, uint64_t to, size_t buffer_bytes);

    /// Reads the next record; false at the end of the range. Throws
    /// std::runtime_error on a truncated or malformed file.
    bool next(uint32_t& subxid, std::string& bytes);
    /// File offset of the next record.
    uint64_t offset() const { return pos_ - (buf_.size() - buf_pos_); }
    size_t buffer_bytes() const { return buf_.capacity(); }

  private:
    void read_exact(char* dst, size_t n);

    std::filesystem::path path_;
    Fd fd_;
    uint64_t pos_;  ///< file offset of the next pread
    uint64_t end_;
    size_t chunk_;
    std::string buf_;
    size_t buf_pos_ = 0;
};

/// Spool file of one streamed (top-level) transaction between its first
/// Stream Start and its Stream Commit / Abort / Prepare (worker.c: one BufFile
/// per xid plus the subxact offsets kept in memory, subxact_data). The file is
/// created on the first block, open only between open_block() and
/// close_block() (so many concurrently streamed xids do not hold descriptors
/// or buffers), and removed by the destructor.
class StreamSpool {
  public:
    /// `buffer_bytes` bounds the write buffer; proto_version is only the codec
    /// context (outside a stream block R/Y/I/U/D/T/M have the same layout in
    /// every version).
    StreamSpool(uint32_t xid, std::filesystem::path path, size_t buffer_bytes, int proto_version);
    ~StreamSpool();
    StreamSpool(const StreamSpool&) = delete;
    StreamSpool& operator=(const StreamSpool&) = delete;

    uint32_t xid() const { return xid_; }
    const std::filesystem::path& path() const { return path_; }

    /// Stream Start: opens (creating it the first time) the file for appending.
    void open_block();
    /// Stream Stop: writes the buffer out, releases it and closes the file.
    void close_block();

    /// Appends a change made by (sub)transaction `change_xid`. The first change
    /// of each subxact records its offset for abort_subxact().
    void append(pgoutput::Message change, uint32_t change_xid);

    /// ROLLBACK TO SAVEPOINT of `subxid`: truncates the file at its first
    /// change, re-appending the Relation/Type records that were after the cut
    /// (see txn_assembler.h), and forgets the subxacts that started later.
    /// Returns false (and changes nothing) when subxid made no change.
    bool abort_subxact(uint32_t subxid);

    void set_origin(std::string name) { origin_ = std::move(name); }
    std::optional<std::string>& origin() { return origin_; }

    /// Records in the spool (changes, schema and barrier messages).
    size_t size() const { return records_; }
    /// Logical length of the spool (on disk + buffered).
    uint64_t file_bytes() const { return end_; }
    /// Memory held (the write buffer; zero between blocks).
    size_t buffered_bytes() const { return buf_.capacity(); }
    size_t subxact_count() const { return subxacts_.size(); }

    /// Writes the buffer out and returns a reader over every record. Call
    /// between blocks only; the spool must not be appended to while the
    /// reader is used.
    SpoolReader reader();

    /// Decodes a record read back from the spool; the change's xid is the
    /// (sub)xid it was streamed with, as it was before spooling.
    pgoutput::Message decode_record(uint32_t subxid, const std::string& bytes) const;

  private:
    void flush();
    void write_at(uint64_t offset, const char* data, size_t n);
    int fd_for_write();

    uint32_t xid_;
    std::filesystem::path path_;
    size_t buffer_limit_;
    int proto_version_;
    Fd fd_;
    std::vector<char> buf_;  ///< records not yet written, starting at flushed_
    uint64_t flushed_ = 0;   ///< bytes on disk
    uint64_t end_ = 0;       ///< flushed_ + buf_.size()
    size_t records_ = 0;
    bool created_ = false;
    /// (subxid, offset of its first change), in order of first change, so
    /// offsets are non-decreasing (worker.c: subxact_data.subxacts), and an
    /// index into it (worker.c keeps a one-entry cache instead; a savepoint
    /// per row makes the linear search quadratic).
    std::vector<std::pair<uint32_t, uint64_t>> subxacts_;
    std::unordered_map<uint32_t, size_t> subxact_index_;
    std::optional<std::string> origin_;
};

}  // namespace detail

/// Approximate heap + inline memory held by one decoded change.
size_t approx_message_bytes(const pgoutput::Message& msg);

/// `temp_directory_path() / "pgshift-spool-<pid>"`: private to this process,
/// so two jobs on one host never share spool files.
std::filesystem::path default_spool_dir();
/// Same, for destructors: an empty path (and ec set) instead of throwing.
std::filesystem::path default_spool_dir(std::error_code& ec) noexcept;

class TxnAssembler {
  public:
    struct Options {
        /// Prefix of the transactional logical message that marks the cutover
        /// barrier (pg_logical_emit_message(true, prefix, nonce)).
        std::string barrier_prefix = "pgshift";
        /// Upper bound of TxnBatch::bytes of one chunk (a single change larger
        /// than this travels alone in its chunk).
        size_t max_batch_bytes = size_t{8} << 20;
        /// Where streamed transactions are spooled; created on demand (mode
        /// 0700), removed by the destructor once empty if this assembler
        /// created it or it is the default one. Several assemblers may share
        /// it: file names are unique per process and assembler.
        std::filesystem::path spool_dir = default_spool_dir();
        /// Negotiated pgoutput protocol version (codec context of the spool).
        int proto_version = 4;
    };

    /// Same as TxnAssembler(Options{}). (Two constructors rather than a
    /// defaulted argument: GCC cannot use a nested struct's default member
    /// initializers in a default argument of the enclosing class.)
    TxnAssembler();
    explicit TxnAssembler(Options opts);
    /// Removes every spool file of this assembler (and the spool directory,
    /// see Options::spool_dir).
    ~TxnAssembler();
    TxnAssembler(const TxnAssembler&) = delete;
    TxnAssembler& operator=(const TxnAssembler&) = delete;

    /// Feeds one decoded message. Throws ProtocolError on any order violation;
    /// the assembler must not be used after a throw (reconnect and start over
    /// with a new one). I/O errors of the spool throw std::system_error.
    /// Throws std::logic_error if next_batch() has not yet returned nullptr
    /// since the previous feed().
    void feed(pgoutput::Message msg);

    /// The next ready chunk, or nullptr. After each feed(), call until it
    /// returns nullptr. Chunks come in commit order; all chunks of a source
    /// transaction are consecutive, the last has last_chunk = true, end_lsn
    /// and barrier_nonce; the others have an invalid end_lsn. Empty
    /// transactions are returned as one empty batch (for their end_lsn). A
    /// Stream Commit is replayed from its spool file here, one chunk per call.
    std::unique_ptr<TxnBatch> next_batch();

    /// True inside B..C or b..P (including a chunked transaction whose last
    /// chunk is not out yet), inside a stream block, while any streamed
    /// transaction is pending (between its blocks or being replayed), while a
    /// chunk is waiting for next_batch(), or while any prepared transaction is
    /// held. When false, nothing received is waiting for a commit, so a
    /// keepalive's walEnd may be confirmed once everything returned is applied.
    bool in_transaction() const;

    /// True between Stream Start and Stream Stop: the codec must then read the
    /// xid prefix of R/Y/I/U/D/T/M (CodecContext::in_stream_block).
    bool in_stream_block() const { return stream_xid_.has_value(); }

    /// Number of streamed top-level transactions currently spooled (a Stream
    /// Commit being replayed is no longer pending).
    size_t pending_streams() const { return streams_.size(); }
    /// Number of prepared transactions held until Commit/Rollback Prepared.
    size_t pending_prepared() const { return prepared_.size(); }
    /// Approximate memory held: the open transaction's current chunk, a chunk
    /// waiting for next_batch(), spool I/O buffers, and held prepared
    /// transactions. Spooled changes on disk are not counted.
    size_t buffered_bytes() const;
    /// The spool directory (tests and diagnostics).
    const std::filesystem::path& spool_dir() const { return opts_.spool_dir; }

  private:
    struct OpenTxn;
    struct Replay;
    struct Prepared {
        std::string gid;
        Lsn prepare_end_lsn;
        std::unique_ptr<TxnBatch> batch;
    };

    void on(pgoutput::BeginMsg&& m);
    void on(pgoutput::CommitMsg&& m);
    void on(pgoutput::OriginMsg&& m);
    void on(pgoutput::LogicalMsg&& m);
    void on(pgoutput::StreamStartMsg&& m);
    void on(pgoutput::StreamStopMsg&& m);
    void on(pgoutput::StreamCommitMsg&& m);
    void on(pgoutput::StreamAbortMsg&& m);
    void on(pgoutput::BeginPrepareMsg&& m);
    void on(pgoutput::PrepareMsg&& m);
    void on(pgoutput::CommitPreparedMsg&& m);
    void on(pgoutput::RollbackPreparedMsg&& m);
    void on(pgoutput::StreamPrepareMsg&& m);

    /// Relation, Type, Insert, Update, Delete, Truncate (and barrier messages).
    void add_change(pgoutput::Message&& change, std::optional<uint32_t> change_xid,
                    const char* what);
    void require_idle(const char* what) const;
    detail::StreamSpool& spool_of(uint32_t xid, const char* what);
    std::unique_ptr<detail::StreamSpool> new_spool(uint32_t xid);
    void hold_prepared(std::unique_ptr<TxnBatch> batch, std::string gid, Lsn prepare_end_lsn,
                       const char* what);
    std::unique_ptr<TxnBatch> next_replay_chunk();
    size_t io_buffer_bytes() const;

    Options opts_;
    uint64_t instance_;                      ///< process-unique, names this assembler's spool files
    bool created_dir_ = false;               ///< this assembler created opts_.spool_dir
    std::unique_ptr<OpenTxn> open_;          ///< B..C or b..P in progress
    std::optional<uint32_t> stream_xid_;     ///< top-level xid of the open S..E block
    bool stream_block_has_changes_ = false;  ///< for Origin placement in S..E
    std::map<uint32_t, std::unique_ptr<detail::StreamSpool>> streams_;  ///< awaiting c/A/p
    std::map<std::string, Prepared> prepared_;                          ///< by gid, awaiting K/r
    std::unique_ptr<TxnBatch> ready_;  ///< waiting for next_batch()
    std::unique_ptr<Replay> replay_;   ///< Stream Commit being handed out
};

}  // namespace pgshift
