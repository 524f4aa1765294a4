// The phase controller: the job's linear script, gh-ost Migrate() style.
//
//   preflight -> prepare (shadow, publication, origin, slot + exported snapshot)
//   -> snapshot copy -> indexes -> sync (decoder + applier threads, source -> shadow)
//   -> cutover -> reverse (new -> old, until finalize or rollback)
//
// Cutover and rollback are the same move in opposite directions: while one
// stream runs, the other direction's publication, slot and origin are created
// (slots cannot be created under the lock), the live table is locked, a
// barrier proves the running stream has applied everything, the names are
// swapped, and the old direction's stream and objects are removed. Each
// applier tags its writes with its origin and each decoder drops the other
// direction's transactions, so nothing loops.
//
// Between phases it checks for a stop signal, an abort request and a failed
// thread. Each phase is recorded in pgshift.jobs before it starts, so `run`
// resumes: a job interrupted during sync continues streaming from its
// origin's progress; one interrupted before its copy finished cannot reuse
// the exported snapshot, so its leftovers are removed and it starts again.
// A failure removes everything the job created and leaves the source as it
// was; a stop by signal keeps the job resumable. A stream that loses its
// connection to the server (restart, failover, network) is not a failure:
// the controller reconnects for up to [safety] reconnect_timeout_s and
// resumes it, or stops resumable.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include "config.h"
#include "copy_chunks.h"
#include "inspector.h"
#include "job_names.h"
#include "job_state.h"
#include "pg/connection.h"
#include "progress.h"
#include "shadow_ddl.h"
#include "swap_spec.h"

namespace pgshift {

/// Set by the SIGINT/SIGTERM handler in main().
extern std::atomic<bool> g_stop_signal;

/// Application name of every session of a job ("pgshift/<job>").
std::string job_application_name(const JobConfig& cfg);

/// Builds the shadow plan from a fresh catalog read (used by plan and run).
ShadowPlan make_shadow_plan(pg::Connection& conn, const JobConfig& cfg, const TableInfo& table);

/// Prints checks as "PASS  name  detail" lines with the fix under each
/// WARN/FAIL.
void print_checks(const std::vector<Check>& checks);

class PhaseController {
  public:
    explicit PhaseController(JobConfig cfg);
    ~PhaseController();

    /// `pgshift run`: runs or resumes the job. Returns an exit code; throws
    /// PrerequisiteError (exit 3) before creating anything if a check fails.
    int run();

  private:
    void start_fresh();
    void prepare(const TableInfo& table);
    // Copy and index phases (copy_phase.cpp).
    /// Cuts the source into chunks and records them in pgshift.copy_chunks.
    void plan_copy(const TableInfo& table);
    /// Whether an interrupted copy can keep its committed chunks: key chunks,
    /// at least one committed, the shadow still there.
    bool copy_resumable();
    void create_publication();
    /// Slot with exported snapshot, copy, indexes; ends in phase sync.
    void copy_and_index();
    void resume_copy(const JobRecord& job);
    void resume_index(const JobRecord& job);
    void snapshot_copy(const std::string& snapshot,
                       std::unique_ptr<class ReplicationStream>& exporter);
    CopyStats copy_stats();
    /// Why chunks must wait ([copy] pause_* limits passed), or "".
    std::string copy_pause_reason();
    void copy_tick();
    /// Each partition's indexes in parallel sessions, then the statements on
    /// the partitioned table (which attach them) and phase sync in one
    /// transaction.
    void build_indexes();
    enum class Direction { Forward, Reverse };
    /// Streams in `dir`, swapping direction on cutover/rollback, until the job
    /// is finished (finalized, or cut over without a reverse stream).
    void stream_loop(Direction dir);
    /// After a stream lost its connection (`why`): reconnects with backoff
    /// for up to reconnect_timeout_s, then returns the direction to resume
    /// from pgshift.jobs, or nullopt when the job turned out to be done.
    /// Throws JobStopped when the server stays unreachable or on a signal.
    std::optional<Direction> reconnect(const std::string& why);
    /// Opens conn_ again, waiting 0.5 s, 1 s, 2 s ... 30 s between attempts
    /// until reconnect_timeout_s has passed; then throws JobStopped.
    void connect_again(const std::string& why);
    /// The direction pgshift.jobs says is live (nullopt: the job is done).
    std::optional<Direction> resumed_direction();
    /// Sleeps `length`; throws JobStopped on a stop signal.
    void sleep_unless_stopped(std::chrono::milliseconds length);
    /// One stream's life: start it, watch it, swap when due. Returns true when
    /// the job is finished, false after a swap to the other direction.
    bool run_stream(Direction dir);
    bool swap_due(Direction dir);
    /// Throws PrerequisiteError (nothing touched) when the catalog does not
    /// show the live side that phase `dir` implies.
    void check_live_side(Direction dir);
    /// After CutoverGaveUp: drops the prepared stream, records `why` as the
    /// job's last error, clears the request; the stream in `dir` goes on.
    void abandon_swap(Direction dir, const std::string& why);
    void create_stream_objects(Direction dir);
    void drop_stream(Direction dir);
    void finalize();
    void print_swap_summary(Direction dir, double lock_ms, int attempts);
    void fail_and_clean(const std::string& error);
    void log_peak_memory();
    void check_interrupts();
    void tick(Direction dir);
    void watch_retained_wal(const std::string& slot);

    JobConfig cfg_;
    JobNames names_;
    std::string app_name_;
    pg::Connection conn_;
    std::unique_ptr<JobState> state_;
    std::unique_ptr<Progress> progress_;  ///< of the running stream (or the copy)
    std::optional<ShadowPlan> plan_;
    SwapSpec spec_;
    int64_t rows_estimated_ = 0;
    std::chrono::steady_clock::time_point next_report_{};
    std::chrono::steady_clock::time_point next_tick_{};
    JobCounters counters_;
    bool cutover_requested_ = false;   ///< `pgshift cutover` asked for it (manual mode)
    bool rollback_requested_ = false;  ///< `pgshift rollback`
    bool finalize_requested_ = false;  ///< `pgshift finalize`
    bool drop_old_ = false;            ///< `pgshift finalize --drop-old`
    bool in_window_ = false;           ///< now is inside [cutover] window
    int swaps_ = 0;                    ///< cutovers plus rollbacks so far
    std::chrono::steady_clock::time_point copy_started_{};
    /// Lost stream connections, each within a minute of the one before.
    int quick_interruptions_ = 0;
    std::chrono::steady_clock::time_point last_interruption_{};
    static constexpr int kMaxQuickInterruptions = 5;
    int copy_chunks_total_ = 0;
    /// (time, rows copied) over the last few seconds, for the copy rate.
    std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> rate_samples_;
    bool tty_ = false;           ///< stderr is a terminal: progress bar instead of log lines
    bool swap_gave_up_ = false;  ///< a cutover gave up: wait for `pgshift cutover`
};

}  // namespace pgshift
