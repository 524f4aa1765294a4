// Job state kept in the source database (schema "pgshift"), so that `status`
// works from any process and `run` resumes after a crash. The cutover writes
// phase 'done' inside the swap transaction itself, so the recorded phase and
// the catalog can never disagree about which table is live.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lsn.h"
#include "pg/connection.h"

namespace pgshift {

/// Sync: streaming source -> shadow (before cutover, or again after a
/// rollback). Reverse: cut over; streaming new -> old so that a rollback loses
/// nothing. Done: finished (finalized, or cut over without a reverse stream).
enum class Phase { Prepare, Copy, Index, Sync, Done, Failed, Aborting, Aborted, Reverse };

const char* to_string(Phase p);
std::optional<Phase> phase_from_string(const std::string& s);

struct JobRecord {
    std::string job_name;
    Phase phase = Phase::Prepare;
    std::string source_table;  ///< display form
    std::string shadow_table;
    std::string slot_name;
    Lsn consistent_point;
    int64_t rows_copied = 0;
    int64_t rows_estimated = 0;
    int64_t changes_applied = 0;
    Lsn applied_lsn;
    int64_t lag_bytes = 0;
    double lag_seconds = 0;
    int64_t peak_lag_bytes = 0;
    std::optional<double> last_lock_ms;
    int lock_attempts = 0;
    std::string last_error;
    bool cutover_requested = false;
    bool rollback_requested = false;
    bool finalize_requested = false;
    bool drop_old = false;
    int swaps = 0;          ///< completed cutovers plus rollbacks
    std::string swap_spec;  ///< SwapSpec JSON, set before the shadow is created
    /// Snapshot copy figures as JSON (docs/status.md, "copy"); empty before the copy.
    std::string copy_progress;
    /// "cutover" or "rollback" while that swap has committed but its
    /// after-commit statements (SwapSpec::after_commit_sql or
    /// rollback_after_commit_sql) have not all run; empty otherwise.
    std::string after_swap_pending;
    std::string started_at;
    std::string updated_at;
};

/// Live counters written while the job runs (about once a second).
struct JobCounters {
    int64_t rows_copied = 0;
    int64_t changes_applied = 0;
    Lsn applied_lsn;
    int64_t lag_bytes = 0;
    double lag_seconds = 0;
};

class JobState {
  public:
    JobState(pg::Connection& conn, std::string job_name) : conn_(conn), job_(std::move(job_name)) {}

    /// Creates schema pgshift and its jobs table if missing.
    void ensure_schema();
    /// nullopt when the schema or the job does not exist. Never writes.
    std::optional<JobRecord> load();
    /// Inserts (or replaces a finished job's) row in phase Prepare.
    void create(const std::string& source, const std::string& shadow, const std::string& slot,
                int64_t rows_estimated);
    void set_phase(Phase p);
    void set_consistent_point(Lsn lsn);
    void set_swap_spec(const std::string& json);
    /// Writes the progress counters, committed asynchronously (they are
    /// rewritten every second): call it outside any transaction block.
    void update_counters(const JobCounters& c);
    void set_copy_progress(const std::string& json);
    void set_error(const std::string& message);
    void record_cutover(double lock_ms, int attempts);
    /// A cutover or rollback gave up (source unchanged): records why as
    /// last_error and clears the requests, so `pgshift cutover`/`rollback`
    /// see that it ended and a new request starts a new try.
    void swap_abandoned(const std::string& why);
    void request_cutover();
    void request_rollback();
    void request_finalize(bool drop_old);
    /// SQL (no trailing semicolon) that moves the job to `phase`, counts the
    /// swap, clears the requests and last_error and sets after_swap_pending
    /// ("cutover", "rollback" or ""); run inside the swap transaction, so a
    /// crash before the after-commit statements ran is seen on restart.
    std::string swap_sql(Phase phase, std::string_view after_swap_pending) const;
    /// The after-commit statements of the last swap have run.
    void clear_after_swap_pending();

  private:
    pg::Connection& conn_;
    std::string job_;
};

}  // namespace pgshift
