#include "phase_controller.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "applier/applier_thread.h"
#include "change_queue.h"
#include "cutover/cutover_controller.h"
#include "decoder/decoder_thread.h"
#include "decoder/replication_stream.h"
#include "errors.h"
#include "job_cleanup.h"
#include "snapshot_copy.h"

namespace pgshift {

std::atomic<bool> g_stop_signal{false};

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string job_application_name(const JobConfig& cfg) {
    return "pgshift/" + cfg.job_name;
}

void print_checks(const std::vector<Check>& checks) {
    for (const auto& c : checks) {
        std::printf("  %-4s  %-28s %s\n", to_string(c.status), c.name.c_str(), c.detail.c_str());
        if (c.status != Check::Status::Pass && !c.fix.empty()) {
            std::printf("        fix: %s\n", c.fix.c_str());
        }
    }
    std::fflush(stdout);
}

PhaseController::PhaseController(JobConfig cfg)
    : cfg_(std::move(cfg)),
      app_name_(job_application_name(cfg_)),
      progress_(std::make_unique<Progress>()) {}

PhaseController::~PhaseController() = default;

void PhaseController::check_interrupts() {
    if (g_stop_signal.load())
        progress_->stop_requested.store(true);
    if (auto err = progress_->error()) {
        if (progress_->connection_lost())
            throw StreamInterrupted(*err);
        throw std::runtime_error(*err);
    }
    if (progress_->stopping())
        throw JobStopped("stopped by signal");
    if (Clock::now() < next_tick_)
        return;
    auto job = state_->load();
    if (job && job->phase == Phase::Aborting) {
        throw std::runtime_error("`pgshift abort` was requested for job " + cfg_.job_name);
    }
    cutover_requested_ = job && job->cutover_requested;
    rollback_requested_ = job && job->rollback_requested;
    finalize_requested_ = job && job->finalize_requested;
    drop_old_ = job && job->drop_old;
    swaps_ = job ? job->swaps : 0;
    if (cfg_.cutover_mode == CutoverMode::Window && cfg_.cutover_window) {
        auto r = conn_.exec_params(
            "SELECT extract(hour FROM now() AT TIME ZONE $1)::int * 60 +"
            "       extract(minute FROM now() AT TIME ZONE $1)::int",
            {cfg_.time_zone});
        int now = static_cast<int>(r.i64(0, 0));
        const auto& w = *cfg_.cutover_window;
        in_window_ = w.start_minute < w.end_minute ? now >= w.start_minute && now < w.end_minute
                                                   : now >= w.start_minute || now < w.end_minute;
    }
}

int PhaseController::run() {
    pg::ConnectOptions co;
    co.application_name = app_name_;
    conn_ = pg::Connection::open(cfg_.dsn, co);
    names_ = JobNames::from(cfg_, conn_.database());
    spdlog::info("job {}: connected to {}", cfg_.job_name, conn_.describe());
    state_ = std::make_unique<JobState>(conn_, cfg_.job_name);
    // A time zone the server does not know would otherwise surface only at
    // the first window check, after the copy, and fail the job.
    if (cfg_.cutover_mode == CutoverMode::Window) {
        try {
            conn_.exec_params("SELECT now() AT TIME ZONE $1", {cfg_.time_zone});
        } catch (const pg::PgError& e) {
            throw ConfigError("cutover.time_zone: the server does not know '" + cfg_.time_zone +
                              "' (" + e.what() + "); use a name from pg_timezone_names");
        }
    }
    auto job = state_->load();
    if (job)
        finish_after_swap(conn_, *state_, *job);
    if (job && job->phase == Phase::Done) {
        drop_job_objects(conn_, names_, false);
        std::printf("job %s is already done: %s is partitioned\n", cfg_.job_name.c_str(),
                    names_.source.display().c_str());
        return kExitOk;
    }
    if (job && job->phase == Phase::Aborting) {
        throw std::runtime_error("job " + cfg_.job_name +
                                 " is being aborted; wait for "
                                 "`pgshift abort` to finish");
    }
    try {
        if (job && (job->phase == Phase::Sync || job->phase == Phase::Reverse)) {
            bool reverse = job->phase == Phase::Reverse;
            spdlog::info("job {}: resuming the {} change stream", cfg_.job_name,
                         reverse ? "reverse (new -> old)" : "forward");
            spec_ = SwapSpec::from_json(job->swap_spec);
            stream_loop(reverse ? Direction::Reverse : Direction::Forward);
        } else if (job && job->phase == Phase::Copy && copy_resumable()) {
            spdlog::warn(
                "job {} was interrupted during the copy; it keeps the chunks already "
                "committed and copies the rest under a new snapshot",
                cfg_.job_name);
            resume_copy(*job);
            stream_loop(Direction::Forward);
        } else if (job && job->phase == Phase::Index) {
            spdlog::warn(
                "job {} was interrupted while building indexes; the copy is complete "
                "and its slot kept its position, so the index build continues",
                cfg_.job_name);
            resume_index(*job);
            stream_loop(Direction::Forward);
        } else {
            if (job && (job->phase == Phase::Prepare || job->phase == Phase::Copy)) {
                spdlog::warn(
                    "job {} was interrupted during {} before any chunk it can keep was "
                    "committed, so it starts again from the beginning",
                    cfg_.job_name, to_string(job->phase));
                drop_job_objects(conn_, names_, true);
            }
            start_fresh();
        }
        log_peak_memory();
    } catch (const JobStopped& e) {
        spdlog::warn(
            "job {} stopped ({}); run it again to resume, or `pgshift abort -c {}` to "
            "remove it. Its replication slot {} retains WAL until then",
            cfg_.job_name, e.what(), cfg_.path, names_.slot);
        return kExitRuntime;
    } catch (const PrerequisiteError&) {
        throw;
    } catch (const std::exception& e) {
        fail_and_clean(e.what());
        throw;
    }
    return kExitOk;
}

void PhaseController::log_peak_memory() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    spdlog::info("job {}: peak memory (RSS) {} MB", cfg_.job_name, usage.ru_maxrss / 1024);
}

void PhaseController::start_fresh() {
    auto pf = run_preflight(conn_, cfg_, false);
    print_checks(pf.checks);
    if (pf.failed()) {
        throw PrerequisiteError("prerequisite checks failed for " + names_.source.display() +
                                "; nothing was created. Apply the fixes above and run again");
    }
    rows_estimated_ = pf.table->estimated_rows;
    plan_ = make_shadow_plan(conn_, cfg_, *pf.table);
    for (const auto& note : plan_->notes)
        spdlog::warn("plan: {}", note);
    state_->ensure_schema();
    state_->create(names_.source.display(), names_.shadow.display(), names_.slot, rows_estimated_);
    spec_ = SwapSpec::from(*pf.table, *plan_);
    state_->set_swap_spec(spec_.to_json());
    prepare(*pf.table);
    stream_loop(Direction::Forward);
}

void PhaseController::prepare(const TableInfo& table) {
    spdlog::info("prepare: creating {} with {} partitions", names_.shadow.display(),
                 plan_->partitions.size());
    conn_.exec("BEGIN");
    for (const auto& sql : plan_->create_sql)
        conn_.exec(sql);
    conn_.exec("COMMIT");
    plan_copy(table);
    create_publication();
    conn_.exec_params("SELECT pg_replication_origin_create($1)", {names_.origin});
    conn_.exec_params("SELECT pg_replication_origin_create($1)", {names_.reverse_origin});
    copy_and_index();
}

void PhaseController::fail_and_clean(const std::string& error) {
    spdlog::error("job {} failed: {}", cfg_.job_name, error);
    if (!conn_ || !state_)
        return;
    try {
        conn_.rollback_quietly();
        auto job = state_->load();
        // After a cutover the partitioned table is live: a failing reverse
        // stream keeps its objects so that `run` can resume it.
        if (job && (job->phase == Phase::Done || job->phase == Phase::Reverse)) {
            if (job->phase == Phase::Reverse)
                state_->set_error(error);
            return;
        }
        drop_job_objects(conn_, names_, true);
        if (job) {
            state_->set_error(error);
            state_->set_phase(Phase::Failed);
        }
        spdlog::info("job {}: removed the shadow, slot, publication and origin; {} is as it was",
                     cfg_.job_name, names_.source.display());
    } catch (const std::exception& e) {
        spdlog::error("cleanup after failure was incomplete: {}; run `pgshift abort -c {}`",
                      e.what(), cfg_.path);
    }
}

}  // namespace pgshift
