// The applier actor: sole owner of the target connection. Pops committed
// source transactions from the ChangeQueue and applies them to the target
// (the shadow before cutover) exactly once.
//
// Exactly once (docs "Replication Progress Tracking"; worker.c): the session
// is bound to the job's replication origin, and every target transaction
// calls pg_replication_origin_xact_setup(end_lsn, commit_time) before COMMIT,
// so the origin's progress moves atomically with the applied rows. After a
// crash the stream restarts from that progress and transactions whose end
// LSN is at or below it are skipped. Commits are asynchronous
// (synchronous_commit = off): a crash of the target server may lose the last
// ones, but the origin's progress is lost with them, and the slot is told
// only of commits whose WAL is flushed (LsnMapping), so the source still
// holds them and they are streamed again.
//
// Grouping: consecutive small source transactions are applied in one target
// transaction (the origin records the group's last end LSN); a group is
// committed when the queue has stayed dry until the group is kGroupLinger
// old, at max_group transactions, or after a cutover barrier, whose nonce is
// published only once it is committed. A
// source transaction that arrives in chunks is never split across commits.
//
// Runs of INSERTs into one table (also across grouped transactions) are sent
// as one COPY ... FROM STDIN: one round trip instead of one per row. The COPY
// starts once a run has kCopyChunkBytes of rows and takes further rows in
// chunks of that size, so the target backend parses them while this thread
// works on the next ones. The run is ended before any other statement, so
// order holds.
//
// Runs of UPDATEs (or DELETEs) of one shape (relation, columns sent, kinds of
// old values) are sent as one set-based statement (build_update with batch:
// the rows as text[] parameters joined through unnest), which costs the
// target backend about a third of executing one statement per row. A run is
// split before a change whose row key (old or new) the run already touches,
// so no row is changed twice by one statement and unique keys are never
// transiently swapped. A set-based statement or COPY that fails (or changes
// the wrong number of rows) does not say which change was at fault, so the
// group is rolled back and applied again one statement per change: either
// that names the failing change (key and source LSN) and stops the job, or,
// when the failure came only from the set-based order, it commits. For that
// the group's source transactions are kept until its commit; every
// kMaxRetainedBytes of them a savepoint is set (after checking everything
// sent), and only the batches since it are kept.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "applier/lsn_mapping.h"
#include "applier/statement_builder.h"
#include "applier/statement_pipeline.h"
#include "change_queue.h"
#include "config.h"
#include "pg/connection.h"
#include "progress.h"

namespace pgshift {

struct ApplierOptions {
    std::string conninfo;
    std::string application_name = "pgshift";
    std::string origin;  ///< replication origin of this stream
    /// Source relation OID (the Relation message's relid) -> target table.
    /// Keyed by OID, not name: after a rename pgoutput may keep sending
    /// changes under a Relation it described with the old name (with
    /// publish_via_partition_root, renaming the root does not invalidate the
    /// leaves' cached schema in the walsender).
    std::map<uint32_t, QualifiedName> targets;
    /// Columns that identify a row of each source relation (its PK), for
    /// lookups under REPLICA IDENTITY FULL.
    std::map<uint32_t, std::vector<std::string>> unique_keys;
    std::string partition_column;
    int max_group = 1000;
};

/// Reads a target table's columns from its catalog and probes which column
/// types have an equality operator. Throws pg::PgError.
TargetTable load_target_table(pg::Connection& conn, const QualifiedName& table,
                              std::vector<std::string> unique_key, std::string partition_column);

/// The origin's durable progress (pg_replication_origin_progress(name, true)),
/// 0/0 if the origin has not recorded any.
Lsn origin_progress(pg::Connection& conn, const std::string& origin);

class ApplierThread {
  public:
    ApplierThread(ApplierOptions opts, ChangeQueue& queue, Progress& progress);
    ~ApplierThread();
    ApplierThread(const ApplierThread&) = delete;
    ApplierThread& operator=(const ApplierThread&) = delete;

    /// Connects, binds the session to the origin and loads target tables on
    /// the calling thread, then starts applying. skip_through is the origin's
    /// progress: transactions ending at or before it are already applied.
    void start();
    /// Drains what is queued, commits, and returns once progress.stopping().
    void join();

  private:
    /// The single-row and set-based statements for one shape of change.
    struct Statements {
        ApplyStatement row;
        ApplyStatement batch;  ///< empty: this shape goes row by row
    };

    void run();
    void loop();
    /// Runs `step`; if a set-based statement or COPY fails, re-applies the
    /// group row by row (replay_group) and returns normally if that succeeds.
    template <typename Step>
    void guarded(Step&& step);
    /// Keeps the batch for a possible replay (not while replaying) and
    /// returns it.
    const TxnBatch& retain(std::unique_ptr<TxnBatch>& batch);
    void replay_group(const BatchApplyError& failure);
    void apply_batch(const TxnBatch& batch);
    void apply_change(const pgoutput::Message& msg, const TxnBatch& batch);
    const Statements& statements_for(uint32_t relid, const pgoutput::RelationMsg& rel,
                                     const pgoutput::UpdateMsg* upd,
                                     const pgoutput::DeleteMsg* del);
    void apply_row_change(const Statements& stmts, const pgoutput::RelationMsg& rel,
                          const pgoutput::TupleData* old_tuple,
                          const pgoutput::TupleData& new_tuple, const TxnBatch& batch);
    void add_to_run(const Statements& stmts, const pgoutput::TupleData* old_tuple,
                    const pgoutput::TupleData& new_tuple, const TxnBatch& batch,
                    const std::string& relname);
    void flush_run();
    /// After kMaxRetainedBytes of one group: checks everything sent so far
    /// and sets a savepoint, so that the retained batches can start over.
    void mark_group();
    void execute(const ApplyStatement& stmt, const pgoutput::RelationMsg& rel,
                 const pgoutput::TupleData* old_tuple, const pgoutput::TupleData& new_tuple,
                 const TxnBatch& batch);
    void commit_group();
    /// With the queue dry and a group open for less than kGroupLinger (and
    /// no cutover barrier in it): waits for the next hand-off, at most until
    /// then, and returns true; false when the group is to commit now.
    bool linger();
    /// Feeds a kWalPositionsQuery result (target insert and flush LSN) to
    /// the LsnMapping and publishes progress.durable_end.
    void note_wal_positions(const pg::Result& r);
    /// Runs kWalPositionsQuery on its own (idle, with commits not yet
    /// known flushed).
    void read_wal_positions();
    void buffer_insert(const pgoutput::RelationMsg& rel, uint32_t relid,
                       const pgoutput::TupleData& tuple, const TxnBatch& batch);
    /// Sends the COPY rows buffered so far, starting the COPY if needed, so
    /// that the target parses them while this thread decodes the next ones.
    void send_copy_chunk(const pgoutput::RelationMsg& rel, const TargetTable& target);
    /// Runs `step`, turning a failed COPY into a BatchApplyError for the run.
    template <typename Step>
    void guard_copy(const TargetTable& target, Step&& step);
    void flush_inserts();
    const TargetTable& target_for(uint32_t relid);

    ApplierOptions opts_;
    ChangeQueue& queue_;
    Progress& progress_;
    pg::Connection conn_;
    Lsn skip_through_;
    std::unordered_map<uint32_t, pgoutput::RelationMsg> relations_;
    std::unordered_map<uint32_t, TargetTable> targets_;
    std::unique_ptr<StatementPipeline> pipeline_;
    bool in_group_ = false;
    int group_size_ = 0;
    int64_t group_changes_ = 0;
    Lsn group_end_;
    int64_t group_commit_time_ = 0;
    std::optional<std::string> group_barrier_;
    bool mid_transaction_ = false;  ///< chunks of a source transaction still to come

    /// The pending run of INSERTs into one target table.
    struct InsertRun {
        uint32_t relid = 0;
        int64_t rows = 0;
        pgoutput::TupleData first;  ///< a run of one row is sent as a plain INSERT
        std::string copy_data;      ///< COPY text rows not yet sent (from the second row on)
        bool copying = false;       ///< COPY ... FROM STDIN started on the connection
        Lsn source_lsn;             ///< commit LSN of the last row's transaction, for errors
    };
    InsertRun run_;

    /// Changes applied as one set-based statement (see build_update).
    struct BatchRun {
        const Statements* stmts = nullptr;
        int64_t rows = 0;
        std::vector<std::string> arrays;  ///< one binary text[] per parameter
        std::vector<char> has_null;       ///< per parameter
        /// Keys (old and new) of the rows the run changes.
        std::unordered_set<std::string> keys;
        size_t bytes = 0;
        Lsn first_lsn, last_lsn;  ///< commit LSNs of the first and last change's transaction
        std::string relname;
    };
    static constexpr int64_t kMaxRunRows = 5000;
    static constexpr size_t kMaxRunBytes = 4u << 20;
    /// COPY rows are sent in chunks of about this size while the run grows.
    static constexpr size_t kCopyChunkBytes = 64u << 10;
    /// 16 MiB: with the 64 MiB queue and the two 8 MiB chunks in flight, the
    /// process stays under 200 MB of RSS (t_large_txn).
    static constexpr size_t kMaxRetainedBytes = 16u << 20;
    /// Longest idle sleep in the queue before stopping() is looked at again.
    static constexpr std::chrono::milliseconds kIdleWait{10};
    using Clock = std::chrono::steady_clock;
    /// The target's WAL positions are read at most this often: with a
    /// commit while busy, on their own while idle with commits not yet
    /// known flushed (the WAL writer flushes those within 3 x
    /// wal_writer_delay).
    static constexpr std::chrono::milliseconds kWalReadInterval{10};
    /// A group is kept open this long for more source transactions when the
    /// queue runs dry: in steady state each target commit then carries
    /// several small source transactions (and their UPDATEs go as one
    /// set-based statement). Under pgbench at scale 50 that cut the target
    /// backend's CPU by about a quarter (docs/benchmarks.md, "Applier"),
    /// for 2 ms more lag.
    static constexpr std::chrono::milliseconds kGroupLinger{2};
    LsnMapping mapping_;
    Clock::time_point last_wal_read_{};
    Clock::time_point group_started_{};
    BatchRun batch_run_;
    /// Statements by shape: relation id, kind, and the kinds of the values
    /// sent (statement_signature); cleared when a Relation message arrives.
    std::unordered_map<std::string, Statements> statements_;
    /// The group is being applied again one statement per change (no COPY,
    /// no set-based statements, nothing retained) until it commits.
    bool replaying_ = false;
    /// The group's source transactions since its start or its savepoint.
    std::vector<std::unique_ptr<TxnBatch>> group_batches_;
    size_t group_batch_bytes_ = 0;
    /// The group's state at SAVEPOINT pgshift_group (mark_group), if set.
    struct GroupMark {
        int group_size = 0;
        int64_t group_changes = 0;
        Lsn group_end;
        int64_t group_commit_time = 0;
        std::optional<std::string> group_barrier;
        bool mid_transaction = false;
    };
    std::optional<GroupMark> savepoint_;
    /// Definitions that Relation messages replaced since the group's start
    /// (or savepoint), restored before a replay.
    std::unordered_map<uint32_t, pgoutput::RelationMsg> relations_before_group_;
    std::thread thread_;
};

}  // namespace pgshift
