// The cutover controller: swaps the shadow in for the source inside one short
// transaction, after proving that every write made to the source is applied.
//
// Protocol (protocol.md A7; gh-ost's sentinel with a nonce):
//   1. BEGIN; SET LOCAL lock_timeout; LOCK source IN ACCESS EXCLUSIVE MODE.
//      On lock timeout: ROLLBACK, back off (exponential, with jitter), retry,
//      up to max_attempts. The application waits at most lock_timeout per try.
//   2. From a second connection, commit a transactional
//      pg_logical_emit_message(true, 'pgshift', '<job>:<nonce>'). It commits
//      after every transaction that wrote the source before the lock, so it
//      reaches the decoder after all of them (pgoutput sends in commit order).
//   3. Wait until the applier has committed the transaction carrying that
//      nonce (a fresh nonce per attempt: a stale barrier never counts), at
//      most barrier_timeout_ms; past it the attempt rolls back, gives the lock
//      back and counts as a failed attempt, so a slow applier never keeps the
//      application waiting longer than that.
//   4. In the lock transaction: rename source -> <table>__pgshift_old and
//      shadow -> <table>, give the shadow's indexes the original names, move
//      sequence ownership, continue identity sequences, mark the job done.
//      COMMIT. Sessions queued on the lock then resolve the name again and
//      reach the new partitioned table. The cloned objects that must move at
//      cutover (triggers' firing mode, RLS flags, owner, foreign keys NOT
//      VALID, dependent views, publications) are set in the same transaction;
//      VALIDATE CONSTRAINT runs after the commit.
// Any failure rolls back: the source is exactly as it was.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "inspector.h"
#include "job_names.h"
#include "pg/connection.h"
#include "progress.h"
#include "shadow_ddl.h"

namespace pgshift {

struct CutoverOptions {
    std::string conninfo;
    std::string application_name = "pgshift";
    std::string job_name;
    int lock_timeout_ms = 500;
    int max_attempts = 30;
    int barrier_timeout_ms = 150;  ///< per attempt, while holding the lock
    int long_transaction_s = 5;    ///< report lock holders older than this before locking
    bool cancel_blockers = false;  ///< and cancel them (never by default)
};

/// A session other than pgshift's own that holds or waits for a lock on the
/// table being swapped (pg_locks joined with pg_stat_activity).
struct LockBlocker {
    std::string pid;
    std::string user;
    std::string state;   ///< pg_stat_activity.state, e.g. "idle in transaction"
    int xact_age_s = 0;  ///< seconds since its transaction started
    std::string query;   ///< its current or last statement, whitespace folded, 100 characters
    std::string describe() const;
};

/// Sessions holding or waiting for locks on `table` whose transaction is
/// older than min_age_s, oldest first; pgshift's own sessions
/// (application_name "pgshift/...") are left out.
std::vector<LockBlocker> find_lock_blockers(pg::Connection& conn, const QualifiedName& table,
                                            int min_age_s);

struct SwapPlan {
    JobNames names;
    std::vector<IndexRename> index_renames;
    std::vector<SequenceLink> sequences;
    std::vector<std::string> identity_always_columns;
    std::string done_sql;  ///< marks the job done in the same transaction
    /// ShadowPlan::swap_sql: run after the renames, before done_sql.
    std::vector<std::string> object_sql = {};
    /// ShadowPlan::after_commit_sql: run once the swap has committed; a
    /// failure is logged with the statement and does not undo the cutover.
    std::vector<std::string> after_commit_sql = {};
};

struct CutoverResult {
    double lock_ms = 0;           ///< lock wait + hold of the successful attempt, milliseconds
    double longest_block_ms = 0;  ///< the longest single attempt (failed ones too), milliseconds
    int attempts = 0;
};

/// Cutover did not happen; the source is unchanged.
class CutoverFailed : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Every attempt timed out (lock or barrier); the source is unchanged and the
/// stream is healthy, so the job can keep streaming and try again later.
class CutoverGaveUp : public CutoverFailed {
  public:
    using CutoverFailed::CutoverFailed;
};

/// The statements run under the lock after the barrier, in order.
std::vector<std::string> swap_statements(const SwapPlan& plan);

/// Runs plan.after_commit_sql on `conn`, each on its own; returns the
/// statements that failed, with the server's message. Safe to run again after
/// a crash part-way: VALIDATE CONSTRAINT of a valid constraint is a no-op and
/// an ADD CONSTRAINT that already ran (SQLSTATE 42710) counts as done.
std::vector<std::string> run_after_commit(pg::Connection& conn, const SwapPlan& plan);

class CutoverController {
  public:
    /// lock_table is the live table (the source for a cutover, the new table
    /// for a rollback); swap_in_table takes its name (the shadow, or the old
    /// table) and is locked after the barrier; statements run under both
    /// locks. progress belongs to the stream that feeds swap_in_table.
    CutoverController(CutoverOptions opts, QualifiedName lock_table, QualifiedName swap_in_table,
                      std::vector<std::string> statements, Progress& progress)
        : opts_(std::move(opts)),
          lock_table_(std::move(lock_table)),
          swap_in_table_(std::move(swap_in_table)),
          statements_(std::move(statements)),
          progress_(progress) {}

    /// Runs the lock loop; throws CutoverGaveUp after max_attempts (naming the
    /// sessions that still hold locks on the table), CutoverFailed when the
    /// stream fails, JobStopped when asked to stop.
    CutoverResult run();

  private:
    enum class Outcome { Done, LockTimeout, BarrierTimeout };
    /// One attempt; block_ms gets the time from LOCK to COMMIT or ROLLBACK.
    Outcome attempt(double& block_ms);
    /// From a catch handler of attempt(): rolls back, sets block_ms, and
    /// returns LockTimeout when `e` was a bounded lock wait; else rethrows.
    Outcome end_failed_attempt(pg::Connection& lock_conn, std::chrono::steady_clock::time_point t0,
                               double& block_ms, const pg::PgError& e);
    /// LOCK TABLE ... IN ACCESS EXCLUSIVE MODE (with its partitions), the
    /// whole statement bounded by lock_timeout_ms.
    void lock_bounded(pg::Connection& conn, const QualifiedName& table);
    /// Runs one swap statement; warns when it is slow or hits lock_timeout.
    void run_swap_statement(pg::Connection& conn, const std::string& sql);
    void report_blockers(pg::Connection& conn);
    /// Cancels autovacuum workers (not anti-wraparound ones) on either table
    /// or their partitions.
    void cancel_autovacuum(pg::Connection& conn);
    void catch_up_before_lock(pg::Connection& conn);
    [[noreturn]] void give_up(pg::Connection& conn, int lock_timeouts, int barrier_timeouts);

    CutoverOptions opts_;
    QualifiedName lock_table_;
    QualifiedName swap_in_table_;
    std::vector<std::string> statements_;
    Progress& progress_;
    /// Where the last attempt's time went, milliseconds (logged on success).
    struct Timing {
        double lock_wait_ms, barrier_ms, swap_in_lock_ms, swap_ms, commit_ms;
    } timing_{};
};

}  // namespace pgshift
