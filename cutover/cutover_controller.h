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
//      nonce (a fresh nonce per attempt: a stale barrier never counts).
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
    int barrier_timeout_ms = 10000;
    int long_transaction_s = 5;    ///< report lock holders older than this before locking
    bool cancel_blockers = false;  ///< and cancel them (never by default)
};

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
    double lock_ms = 0;  ///< lock wait + hold of the successful attempt, milliseconds
    int attempts = 0;
};

/// Cutover did not happen; the source is unchanged.
class CutoverFailed : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// The statements run under the lock after the barrier, in order.
std::vector<std::string> swap_statements(const SwapPlan& plan);

/// Runs plan.after_commit_sql on `conn`, each on its own; returns the
/// statements that failed, with the server's message.
std::vector<std::string> run_after_commit(pg::Connection& conn, const SwapPlan& plan);

class CutoverController {
  public:
    /// lock_table is the live table (the source for a cutover, the new table
    /// for a rollback); statements run under its lock after the barrier.
    /// progress belongs to the stream that feeds the table being swapped in.
    CutoverController(CutoverOptions opts, QualifiedName lock_table,
                      std::vector<std::string> statements, Progress& progress)
        : opts_(std::move(opts)),
          lock_table_(std::move(lock_table)),
          statements_(std::move(statements)),
          progress_(progress) {}

    /// Runs the lock loop; throws CutoverFailed after max_attempts or when the
    /// stream fails, JobStopped when asked to stop.
    CutoverResult run();

  private:
    enum class Outcome { Done, LockTimeout, BarrierTimeout };
    Outcome attempt(double& lock_ms);
    void report_blockers();
    void catch_up_before_lock(pg::Connection& conn);

    CutoverOptions opts_;
    QualifiedName lock_table_;
    std::vector<std::string> statements_;
    Progress& progress_;
};

}  // namespace pgshift
