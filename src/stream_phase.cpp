// The streaming half of the phase controller: one direction's decoder and
// applier pair, the monitoring tick, and the swaps between directions
// (cutover, rollback) and finalize. See phase_controller.h.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "applier/applier_thread.h"
#include "change_queue.h"
#include "cutover/cutover_controller.h"
#include "cutover/rollback.h"
#include "decoder/decoder_thread.h"
#include "decoder/replication_stream.h"
#include "errors.h"
#include "job_cleanup.h"
#include "phase_controller.h"
#include "test_hook.h"

namespace pgshift {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

/// What one direction reads and writes. Forward: the source (by its name) into
/// the shadow. Reverse, after cutover: the partitioned table (which now has
/// the source's name) into the old table.
struct StreamEnds {
    QualifiedName source;
    QualifiedName target;
    std::string slot;
    std::string publication;
    std::string origin;
    /// The opposite applier's origin: its writes are skipped. Both origins
    /// live as long as the job: pgoutput sends no Origin message for a
    /// dropped origin (pgoutput.c send_repl_origin), so dropping one would
    /// let its writes, still being decoded, loop back.
    std::string other_origin;
};

StreamEnds ends_of(const JobNames& n, bool reverse) {
    if (reverse) {
        return {n.source, n.old, n.reverse_slot, n.reverse_publication, n.reverse_origin, n.origin};
    }
    return {n.source, n.shadow, n.slot, n.publication, n.origin, n.reverse_origin};
}

}  // namespace

void PhaseController::watch_retained_wal(const std::string& slot) {
    auto r = conn_.exec_params(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, wal_status"
        "  FROM pg_replication_slots WHERE slot_name = $1",
        {slot});
    if (r.rows() == 0)
        return;
    int64_t retained = r.is_null(0, 0) ? 0 : r.i64(0, 0);
    std::string status = r.str(0, 1);
    if (status == "lost" || retained > cfg_.max_retained_wal) {
        throw std::runtime_error(
            "replication slot " + slot + " retains " + std::to_string(retained >> 20) +
            " MB of WAL (wal_status " + status +
            "), above [safety] max_retained_wal = " + std::to_string(cfg_.max_retained_wal >> 20) +
            " MB; the job stopped so that the slot cannot fill the disk. Raise "
            "max_retained_wal, or run when the source writes less");
    }
}

void PhaseController::tick(Direction dir) {
    auto now = Clock::now();
    if (now < next_tick_)
        return;
    check_interrupts();
    next_tick_ = now + milliseconds(1000);
    watch_retained_wal(ends_of(names_, dir == Direction::Reverse).slot);
    auto r = conn_.exec("SELECT pg_current_wal_lsn()");
    Lsn current = Lsn::parse(r.view(0, 0)).value_or(Lsn());
    Lsn applied(std::max(progress_->applied_end.load(), progress_->confirmed_flush.load()));
    counters_.changes_applied = progress_->changes_applied.load();
    counters_.applied_lsn = applied;
    counters_.lag_bytes =
        current > applied ? static_cast<int64_t>(current.value() - applied.value()) : 0;
    int64_t commit_time = progress_->applied_commit_time.load();
    counters_.lag_seconds =
        commit_time > 0 && counters_.lag_bytes > 0
            ? (to_pg_timestamp(std::chrono::system_clock::now()) - commit_time) / 1e6
            : 0;
    state_->update_counters(counters_);
    if (now >= next_report_) {
        next_report_ = now + milliseconds(5000);
        spdlog::info(
            "{}: {} changes applied, lag {} kB ({:.1f} s), applied LSN {}; read nap {:.1f} ms, "
            "socket buffer {} kB",
            dir == Direction::Forward ? "sync" : "reverse", counters_.changes_applied,
            counters_.lag_bytes / 1024, counters_.lag_seconds, applied.str(),
            static_cast<double>(progress_->read_nap_us.load()) / 1000.0,
            progress_->socket_buffer.load() / 1024);
    }
}

void PhaseController::check_live_side(Direction dir) {
    // pgshift.jobs.phase is written inside the swap transaction, so it names
    // the live side exactly when the catalog does; a disagreement means the
    // tables were renamed by hand, and streaming either way could lose writes.
    auto r = conn_.exec_params(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2",
        {names_.source.schema, names_.source.name});
    std::string kind = r.rows() > 0 ? r.str(0, 0) : "";
    bool partitioned_live = dir == Direction::Reverse;
    if (kind == (partitioned_live ? "p" : "r"))
        return;
    throw PrerequisiteError(
        "job " + cfg_.job_name + " is in phase " + (partitioned_live ? "reverse" : "sync") +
        ", so " + names_.source.display() + " should be the " +
        (partitioned_live ? "partitioned" : "original plain") + " table, but it is " +
        (kind.empty() ? std::string("missing") : "of relkind '" + kind + "'") +
        "; pgshift.jobs and the catalog disagree (tables renamed by hand?). Nothing was "
        "changed: put the names back (" +
        names_.source.display() + ", " + names_.shadow.display() + ", " + names_.old.display() +
        ") and run again");
}

void PhaseController::stream_loop(Direction dir) {
    check_live_side(dir);
    while (true) {
        std::string lost;
        try {
            if (run_stream(dir))
                return;
            dir = dir == Direction::Forward ? Direction::Reverse : Direction::Forward;
            continue;
        } catch (const StreamInterrupted& e) {
            lost = e.what();
        } catch (const pg::PgError& e) {
            if (!e.is_connection_lost())
                throw;
            lost = e.what();
        }
        auto resumed = reconnect(lost);
        if (!resumed)
            return;
        dir = *resumed;
    }
}

void PhaseController::sleep_unless_stopped(std::chrono::milliseconds length) {
    auto until = Clock::now() + length;
    while (Clock::now() < until) {
        if (g_stop_signal.load())
            throw JobStopped("stopped by signal");
        std::this_thread::sleep_for(std::min(length, milliseconds(100)));
    }
}

std::optional<PhaseController::Direction> PhaseController::reconnect(const std::string& why) {
    // A stream that keeps losing its connection soon after each reconnect
    // is not going to recover by itself (or the server keeps dropping it).
    auto now = Clock::now();
    quick_interruptions_ =
        now < last_interruption_ + std::chrono::minutes(1) ? quick_interruptions_ + 1 : 1;
    last_interruption_ = now;
    if (quick_interruptions_ > kMaxQuickInterruptions) {
        throw JobStopped("the stream lost its connection " +
                         std::to_string(kMaxQuickInterruptions + 1) +
                         " times, each within a minute of the last: " + why);
    }
    spdlog::warn(
        "{}; the stream stopped. Reconnecting for up to {} s ([safety] reconnect_timeout_s); it "
        "resumes from its origin's progress, so nothing is applied twice or lost",
        why, cfg_.reconnect_timeout_s);
    connect_again(why);
    return resumed_direction();
}

void PhaseController::connect_again(const std::string& why) {
    auto deadline = Clock::now() + std::chrono::seconds(cfg_.reconnect_timeout_s);
    milliseconds wait(500);
    while (Clock::now() + wait <= deadline) {
        sleep_unless_stopped(wait);
        try {
            pg::ConnectOptions co;
            co.application_name = app_name_;
            conn_ = pg::Connection::open(cfg_.dsn, co);
            spdlog::info("reconnect: connected to {}", conn_.describe());
            return;
        } catch (const pg::PgError& e) {
            spdlog::warn("reconnect: {}", e.what());
            wait = std::min(wait * 2, milliseconds(30000));
        }
    }
    throw JobStopped("lost the connection to the server (" + why +
                     ") and could not reconnect within reconnect_timeout_s = " +
                     std::to_string(cfg_.reconnect_timeout_s) + " s");
}

std::optional<PhaseController::Direction> PhaseController::resumed_direction() {
    // A swap commits its phase change with the rename, so the phase names the
    // live side even when the connection was lost around a swap.
    auto job = state_->load();
    if (!job)
        throw std::runtime_error("job " + cfg_.job_name + " is no longer in pgshift.jobs");
    finish_after_swap(conn_, *state_, *job);
    if (job->phase == Phase::Done) {
        drop_job_objects(conn_, names_, false);
        return std::nullopt;
    }
    if (job->phase != Phase::Sync && job->phase != Phase::Reverse) {
        throw std::runtime_error("after reconnecting, job " + cfg_.job_name + " is in phase " +
                                 std::string(to_string(job->phase)) + ", not streaming");
    }
    Direction dir = job->phase == Phase::Reverse ? Direction::Reverse : Direction::Forward;
    check_live_side(dir);
    return dir;
}

bool PhaseController::swap_due(Direction dir) {
    if (dir == Direction::Reverse)
        return rollback_requested_;
    if (!cfg_.postpone_file.empty() && std::filesystem::exists(cfg_.postpone_file))
        return false;
    // After a rollback, or a cutover that gave up, the forward stream goes on,
    // but only an explicit `pgshift cutover` tries to move the table again.
    if (swaps_ > 0 || swap_gave_up_)
        return cutover_requested_;
    switch (cfg_.cutover_mode) {
        case CutoverMode::Auto:
            return true;
        case CutoverMode::Manual:
            return cutover_requested_;
        case CutoverMode::Window:
            return in_window_ || cutover_requested_;
    }
    return false;
}

void PhaseController::create_stream_objects(Direction dir) {
    bool reverse = dir == Direction::Reverse;
    auto ends = ends_of(names_, reverse);
    drop_stream_objects(conn_, ends.slot, ends.publication);
    // Before the swap the table that will be read by this stream still has
    // its pre-swap name: the shadow (reverse) or the old table (forward).
    const QualifiedName& table = reverse ? names_.shadow : names_.old;
    std::string sql = "CREATE PUBLICATION " + conn_.ident(ends.publication) + " FOR TABLE " +
                      conn_.qualified(table.schema, table.name) +
                      (reverse ? " WITH (publish_via_partition_root = true)" : "");
    conn_.exec("SET lock_timeout = " + std::to_string(cfg_.lock_timeout_ms));
    pg::retry_on_lock_timeout([&] { return conn_.exec(sql); }, cfg_.max_attempts);
    conn_.exec("RESET lock_timeout");
    ReplicationStream(cfg_.dsn, app_name_).create_slot(ends.slot);
    spdlog::info("{}: prepared {} stream (publication, slot {}, origin)",
                 reverse ? "cutover" : "rollback", reverse ? "reverse" : "forward", ends.slot);
}

void PhaseController::drop_stream(Direction dir) {
    auto ends = ends_of(names_, dir == Direction::Reverse);
    drop_stream_objects(conn_, ends.slot, ends.publication);
}

void PhaseController::abandon_swap(Direction dir, const std::string& why) {
    bool reverse = dir == Direction::Reverse;
    drop_stream(reverse ? Direction::Forward : Direction::Reverse);
    state_->swap_abandoned(why);
    cutover_requested_ = false;
    rollback_requested_ = false;
    swap_gave_up_ = !reverse;
    spdlog::error("{}: {}. The job keeps streaming {}; run `pgshift {} -c {}` to try again",
                  reverse ? "rollback" : "cutover", why, reverse ? "new -> old" : "into the shadow",
                  reverse ? "rollback" : "cutover", cfg_.path);
}

void PhaseController::finalize() {
    finalize_job(conn_, names_, *state_, drop_old_, cfg_.lock_timeout_ms);
    std::printf("finalized: %s stays partitioned; slots, publications and origins removed; %s\n",
                names_.source.display().c_str(),
                drop_old_ ? ("dropped " + names_.old.display()).c_str()
                          : ("kept " + names_.old.display()).c_str());
}

void PhaseController::print_swap_summary(Direction dir, double lock_ms, int attempts) {
    if (dir == Direction::Reverse) {
        std::printf(
            "rolled back: %s is the original table again (source locked %.1f ms, %d "
            "attempt(s)); the forward stream resumes, `pgshift cutover` moves it again\n",
            names_.source.display().c_str(), lock_ms, attempts);
        return;
    }
    std::printf(
        "done: %s is now partitioned; rows copied %lld, changes applied %lld, peak lag %lld kB, "
        "source locked %.1f ms at cutover; the old table is %s%s\n",
        names_.source.display().c_str(), static_cast<long long>(counters_.rows_copied),
        static_cast<long long>(counters_.changes_applied),
        static_cast<long long>(state_->load().value_or(JobRecord{}).peak_lag_bytes / 1024), lock_ms,
        names_.old.display().c_str(),
        cfg_.reverse ? " (kept current by the reverse stream until `pgshift finalize`)" : "");
    std::fflush(stdout);
}

bool PhaseController::run_stream(Direction dir) {
    bool reverse = dir == Direction::Reverse;
    auto ends = ends_of(names_, reverse);
    Direction next = reverse ? Direction::Forward : Direction::Reverse;
    // The other direction's slot and publication exist here only if a run
    // was killed around a swap: prepared before a swap that never committed,
    // or not yet removed after one that did. Either way they are stale, and a
    // slot would pin WAL.
    drop_stream(next);
    progress_ = std::make_unique<Progress>();
    Lsn start = origin_progress(conn_, ends.origin);  // 0/0: the slot's confirmed position
    progress_->applied_end.store(start.value());
    progress_->durable_end.store(start.value());
    progress_->received_end.store(start.value());

    ChangeQueue queue;
    ApplierOptions ao;
    ao.conninfo = cfg_.dsn;
    ao.application_name = app_name_;
    ao.origin = ends.origin;
    auto oid = conn_.exec_params(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2",
        {ends.source.schema, ends.source.name});
    if (oid.rows() == 0)
        throw std::runtime_error(ends.source.display() + " does not exist");
    auto source_oid = static_cast<uint32_t>(oid.i64(0, 0));
    ao.targets[source_oid] = ends.target;
    ao.unique_keys[source_oid] = reverse ? spec_.reverse_key : spec_.forward_key;
    ao.partition_column = cfg_.column;
    ApplierThread applier(ao, queue, *progress_);

    DecoderOptions dopts;
    dopts.conninfo = cfg_.dsn;
    dopts.application_name = app_name_;
    dopts.slot = ends.slot;
    dopts.publication = ends.publication;
    dopts.start = start;
    dopts.features = ServerFeatures::for_version(conn_.server_version());
    dopts.skip_origin = ends.other_origin;
    DecoderThread decoder(dopts, queue, *progress_);

    bool threads_stopped = false;
    auto stop_threads = [&] {
        if (threads_stopped)
            return;
        threads_stopped = true;
        progress_->stop_requested.store(true);
        decoder.join();
        applier.join();
    };
    bool prepared_next = false;
    bool keep_reverse = reverse || cfg_.reverse;
    try {
        applier.start();
        decoder.start();
        spdlog::info("{}: applying changes from {} into {}", reverse ? "reverse" : "sync",
                     start.valid() ? start.str() : "the slot's position", ends.target.display());
        next_tick_ = {};
        while (true) {
            std::this_thread::sleep_for(milliseconds(100));
            tick(dir);
            if (reverse && finalize_requested_) {
                stop_threads();
                finalize();
                return true;
            }
            if (!swap_due(dir) || counters_.lag_bytes > cfg_.max_lag_bytes)
                continue;
            spdlog::info("{}: lag {} kB is within max_lag_bytes; locking {}",
                         reverse ? "rollback" : "cutover", counters_.lag_bytes / 1024,
                         names_.source.display());
            if (keep_reverse) {
                create_stream_objects(next);
                prepared_next = true;
            }
            SwapPlan swap;
            swap.names = names_;
            swap.index_renames = spec_.index_renames;
            swap.sequences = spec_.sequences;
            swap.identity_always_columns = spec_.identity_always_columns;
            // Dependent objects (views, foreign keys, triggers, publications)
            // move with every swap: a cutover points them at the partitioned
            // table, a rollback back at the old one (SwapSpec).
            swap.object_sql = reverse ? spec_.rollback_object_sql : spec_.object_sql;
            swap.after_commit_sql =
                reverse ? spec_.rollback_after_commit_sql : spec_.after_commit_sql;
            std::vector<std::string> statements;
            std::string_view pending;
            if (!swap.after_commit_sql.empty())
                pending = reverse ? "rollback" : "cutover";
            if (reverse) {
                swap.done_sql = state_->swap_sql(Phase::Sync, pending);
                statements = rollback_statements(swap);
            } else {
                swap.done_sql =
                    state_->swap_sql(keep_reverse ? Phase::Reverse : Phase::Done, pending);
                statements = swap_statements(swap);
                if (keep_reverse) {
                    auto extra = reverse_target_statements(swap);
                    statements.insert(statements.end() - 1, extra.begin(), extra.end());
                }
            }
            CutoverOptions co{cfg_.dsn,
                              app_name_,
                              cfg_.job_name,
                              cfg_.lock_timeout_ms,
                              cfg_.max_attempts,
                              cfg_.barrier_timeout_ms,
                              cfg_.long_transaction_s,
                              cfg_.cancel_blockers};
            CutoverResult result;
            try {
                result = CutoverController(co, names_.source, reverse ? names_.old : names_.shadow,
                                           statements, *progress_)
                             .run();
            } catch (const CutoverGaveUp& e) {
                abandon_swap(dir, e.what());
                prepared_next = false;
                continue;
            }
            prepared_next = false;  // it is the live stream's now
            test_pause_at("after_swap");
            stop_threads();
            run_after_commit(conn_, swap);
            if (!pending.empty())
                state_->clear_after_swap_pending();
            drop_stream(dir);
            counters_.changes_applied = progress_->changes_applied.load();
            counters_.lag_bytes = 0;
            counters_.lag_seconds = 0;
            state_->update_counters(counters_);
            state_->record_cutover(result.lock_ms, result.attempts);
            print_swap_summary(dir, result.lock_ms, result.attempts);
            if (!keep_reverse)
                drop_job_objects(conn_, names_, false);  // the job ends here: origins too
            return !keep_reverse;
        }
    } catch (...) {
        stop_threads();
        if (prepared_next) {
            try {
                drop_stream(next);
            } catch (const std::exception& e) {
                spdlog::error("could not remove the prepared {} stream: {}",
                              reverse ? "forward" : "reverse", e.what());
            }
        }
        throw;
    }
}

}  // namespace pgshift
