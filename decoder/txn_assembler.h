// TxnAssembler: the pgoutput protocol state machine between the codec and
// the decoder -> applier queue (the role of the apply_handle_* functions of
// PostgreSQL's src/backend/replication/logical/worker.c).
//
// Why it exists
// -------------
// * Commit order is the unit of correctness. pgoutput emits whole
//   transactions in commit order (B ... C), so the applier can replay them
//   one by one and the target goes through the same sequence of committed
//   states as the source. The assembler therefore hands out *only committed*
//   transactions, each as one TxnBatch, and never a partial one.
// * Commit end_lsn is the only resume unit. The XLogData header LSN is neither
//   unique nor monotonic (protocol.md A2), so progress is recorded per
//   transaction as Commit.end_lsn (or Stream Commit / Commit Prepared end_lsn).
//   That is why *empty* transactions (PG14 sends B/C for every transaction in
//   the database) are still returned, with no changes: the caller must account
//   their end_lsn, or the slot would never advance past them.
// * Strict order checks. Every message is validated against the grammar of
//   protocol.md A3 the way worker.c does ("ORIGIN message sent out of order",
//   "duplicate STREAM START message", "incorrect commit LSN ..."), and any
//   violation raises pgshift::ProtocolError. A misframed stream (for example
//   a wrong in_stream_block given to the codec) must stop the migration, not
//   apply garbage. ProtocolError's offset is always 0 here: the problem is the
//   message sequence, not a byte of the message.
// * Streaming (proto v2+). A large in-progress transaction arrives as
//   S ... E blocks per top-level xid, interleaved with other xids' blocks and
//   with ordinary B ... C transactions, and ends with c (commit), A (abort) or
//   p (stream prepare). Its changes are buffered per xid in a StreamSpool and
//   handed out only at Stream Commit, in that commit's position in the stream.
// * Subtransaction truncation. Inside S ... E every change carries the xid of
//   the (sub)transaction that made it. A Stream Abort for a subxid means
//   ROLLBACK TO SAVEPOINT of that subxact. Subxacts are nested, so every
//   change made after the subxact's *first* change belongs to it or to a
//   later (inner, or subsequent and already aborted-with-it) subxact: like
//   apply_handle_stream_abort, the spool is truncated at the offset of that
//   first change and all subxacts that started later are forgotten. An
//   unknown subxid (a subxact that made no change) is a no-op. One deliberate
//   difference from worker.c: Relation and Type messages after the cut are
//   *kept*. pgoutput remembers per top-level xid that it already sent a
//   relation's schema (set_schema_sent_in_streamed_txn) and does not forget
//   it when a subxact aborts, so dropping a Relation first sent inside an
//   aborted subxact would leave later changes of the same transaction
//   without their schema. Keeping an extra Relation is harmless: it only
//   refreshes the relation cache.
// * Two-phase (proto v3). b ... P (or a streamed transaction ended by p)
//   prepares a transaction; it is held by gid until K (Commit Prepared), which
//   returns it with the commit's LSNs, or r (Rollback Prepared), which drops
//   it. A held prepared transaction lives only in memory: if the connection
//   is restarted from a position past its PREPARE, the server sends only K and
//   the assembler raises ProtocolError (the changes are gone). Do not confirm
//   a flush position past a held PREPARE; in_transaction() reports it.
// * Origins and the cutover barrier. The Origin message's name is copied to
//   TxnBatch::origin (loop prevention on PG14/15). A transactional logical
//   message whose prefix is the barrier prefix sets TxnBatch::barrier_nonce
//   (protocol.md A7) and is not a change; other logical messages are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "change.h"
#include "decoder/pgoutput_messages.h"

namespace pgshift {

namespace detail {

/// Buffer of one streamed (top-level) transaction between its first Stream
/// Start and its Stream Commit / Abort / Prepare. In memory for now; the
/// interface is append / truncate-at-subxact / take-all so it can move to a
/// spool file (worker.c: BufFile per xid plus a subxact offsets file).
class StreamSpool {
  public:
    explicit StreamSpool(uint32_t xid) : xid_(xid) {}

    uint32_t xid() const { return xid_; }

    /// Appends a change made by (sub)transaction `change_xid`. The first change
    /// of each subxact records its offset for abort_subxact().
    void append(pgoutput::Message change, uint32_t change_xid);

    /// ROLLBACK TO SAVEPOINT of `subxid`: drops its changes and every change
    /// appended after its first one (except Relation/Type, see txn_assembler.h),
    /// and forgets the subxacts that started later. Returns false (and changes
    /// nothing) when subxid made no change.
    bool abort_subxact(uint32_t subxid);

    void set_origin(std::string name) { origin_ = std::move(name); }

    size_t size() const { return changes_.size(); }
    size_t bytes() const { return bytes_; }
    size_t subxact_count() const { return subxacts_.size(); }

    /// Moves the buffered changes and origin into `batch` (barrier messages
    /// become batch.barrier_nonce). The spool is empty afterwards.
    void drain_into(TxnBatch& batch, const std::string& barrier_prefix);

  private:
    uint32_t xid_;
    std::vector<pgoutput::Message> changes_;
    /// (subxid, offset of its first change), in order of first change, so
    /// offsets are non-decreasing (worker.c: subxact_data.subxacts).
    std::vector<std::pair<uint32_t, size_t>> subxacts_;
    std::optional<std::string> origin_;
    size_t bytes_ = 0;
};

}  // namespace detail

/// Approximate heap + inline memory held by one decoded change.
size_t approx_message_bytes(const pgoutput::Message& msg);

class TxnAssembler {
  public:
    struct Options {
        /// Prefix of the transactional logical message that marks the cutover
        /// barrier (pg_logical_emit_message(true, prefix, nonce)).
        std::string barrier_prefix = "pgshift";
    };

    /// Same as TxnAssembler(Options{}). (Two constructors rather than a
    /// defaulted argument: GCC cannot use a nested struct's default member
    /// initializers in a default argument of the enclosing class.)
    TxnAssembler();
    explicit TxnAssembler(Options opts);
    ~TxnAssembler();
    TxnAssembler(const TxnAssembler&) = delete;
    TxnAssembler& operator=(const TxnAssembler&) = delete;

    /// Feeds one decoded message. Returns a completed transaction when this
    /// message completes one (Commit, Stream Commit, Commit Prepared), else
    /// nullptr. Empty transactions ARE returned (changes empty) so the caller
    /// can account their end_lsn. Throws ProtocolError on any order violation;
    /// the assembler must not be used after a throw (reconnect and start over
    /// with a new one).
    std::unique_ptr<TxnBatch> feed(pgoutput::Message msg);

    /// True inside B..C or b..P, inside a stream block, while any streamed
    /// transaction is pending (between its blocks) or any prepared transaction
    /// is held. When false, nothing received is waiting for a commit, so a
    /// keepalive's walEnd may be confirmed once everything returned is applied.
    bool in_transaction() const;

    /// True between Stream Start and Stream Stop: the codec must then read the
    /// xid prefix of R/Y/I/U/D/T/M (CodecContext::in_stream_block).
    bool in_stream_block() const { return stream_xid_.has_value(); }

    /// Number of streamed top-level transactions currently buffered.
    size_t pending_streams() const { return streams_.size(); }
    /// Number of prepared transactions held until Commit/Rollback Prepared.
    size_t pending_prepared() const { return prepared_.size(); }
    /// Approximate memory held by open, streamed and prepared transactions.
    size_t buffered_bytes() const;

  private:
    struct OpenTxn;
    struct Prepared {
        std::string gid;
        Lsn prepare_end_lsn;
        std::unique_ptr<TxnBatch> batch;
    };

    std::unique_ptr<TxnBatch> on(pgoutput::BeginMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::CommitMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::OriginMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::LogicalMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::StreamStartMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::StreamStopMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::StreamCommitMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::StreamAbortMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::BeginPrepareMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::PrepareMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::CommitPreparedMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::RollbackPreparedMsg&& m);
    std::unique_ptr<TxnBatch> on(pgoutput::StreamPrepareMsg&& m);

    /// Relation, Type, Insert, Update, Delete, Truncate (and barrier messages).
    void add_change(pgoutput::Message&& change, std::optional<uint32_t> change_xid,
                    const char* what);
    void require_idle(const char* what) const;
    detail::StreamSpool& spool_of(uint32_t xid, const char* what);
    void hold_prepared(std::unique_ptr<TxnBatch> batch, std::string gid, Lsn prepare_end_lsn,
                       const char* what);

    Options opts_;
    std::unique_ptr<OpenTxn> open_;                    ///< B..C or b..P in progress
    std::optional<uint32_t> stream_xid_;               ///< top-level xid of the open S..E block
    bool stream_block_has_changes_ = false;            ///< for Origin placement in S..E
    std::map<uint32_t, detail::StreamSpool> streams_;  ///< streamed xids awaiting c/A/p
    std::map<std::string, Prepared> prepared_;         ///< by gid, awaiting K/r
};

}  // namespace pgshift
