#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "commands.h"
#include "errors.h"
#include "job_cleanup.h"
#include "job_names.h"
#include "job_state.h"
#include "phase_controller.h"
#include "snapshot_copy.h"

namespace pgshift {

namespace {

int64_t running_sessions(pg::Connection& conn, const std::string& app) {
    return conn
        .exec_params(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = $1 AND pid <> pg_backend_pid()",
            {app})
        .i64(0, 0);
}

/// A connection named "<job application name>/<command>", so that
/// running_sessions() and terminate_job_sessions() can tell a command's own
/// session from the sessions of `pgshift run`.
pg::Connection open_job_connection(const JobConfig& cfg, const std::string& command) {
    pg::ConnectOptions co;
    co.application_name = job_application_name(cfg) + "/" + command;
    return pg::Connection::open(cfg.dsn, co);
}

}  // namespace

int abort_command(const JobConfig& cfg) {
    std::string app = job_application_name(cfg);
    auto conn = open_job_connection(cfg, "abort");
    JobState state(conn, cfg.job_name);
    auto job = state.load();
    JobNames names = JobNames::from(cfg, conn.database());
    if (job && (job->phase == Phase::Done || job->phase == Phase::Reverse)) {
        std::fprintf(stderr,
                     "job %s has already cut over: %s is the partitioned table and the old one "
                     "is %s. abort only undoes a job before cutover; use `pgshift rollback` or "
                     "`pgshift finalize`\n",
                     cfg.job_name.c_str(), names.source.display().c_str(),
                     names.old.display().c_str());
        return kExitRuntime;
    }
    if (job) {
        state.set_phase(Phase::Aborting);
        // A running `pgshift run` sees 'aborting' within a second, stops its
        // threads and cleans up itself; give it a moment, then end its sessions.
        for (int i = 0; i < 100 && running_sessions(conn, app) > 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        terminate_job_sessions(conn, app);
    }
    drop_job_objects(conn, names, true);
    drop_chunk_plan(conn, cfg.job_name);
    if (job)
        state.set_phase(Phase::Aborted);
    std::printf("job %s aborted: shadow, slot, publication and origin removed; %s is unchanged\n",
                cfg.job_name.c_str(), names.source.display().c_str());
    return kExitOk;
}

int cutover_command(const JobConfig& cfg) {
    auto conn = open_job_connection(cfg, "cutover");
    JobState state(conn, cfg.job_name);
    auto job = state.load();
    if (!job || job->phase != Phase::Sync) {
        std::fprintf(stderr,
                     "job %s is not syncing (phase %s); cutover can only be requested "
                     "while `pgshift run` streams changes\n",
                     cfg.job_name.c_str(), job ? to_string(job->phase) : "none");
        return kExitRuntime;
    }
    state.request_cutover();
    std::printf("cutover requested for job %s; the running job cuts over once lag <= %lld bytes\n",
                cfg.job_name.c_str(), static_cast<long long>(cfg.max_lag_bytes));
    return kExitOk;
}

namespace {

/// Polls the job until `done(phase)` or the timeout; returns the last record.
/// Also returns when the job dropped every request without reaching the
/// phase: a swap that gave up (its last_error says why).
std::optional<JobRecord> wait_for_phase(JobState& state, bool (*done)(Phase), int seconds) {
    std::optional<JobRecord> job;
    for (int i = 0; i < seconds * 10; ++i) {
        job = state.load();
        if (!job || done(job->phase) || job->phase == Phase::Failed ||
            (!job->rollback_requested && !job->finalize_requested))
            return job;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return job;
}

}  // namespace

int rollback_command(const JobConfig& cfg) {
    std::string app = job_application_name(cfg);
    auto conn = open_job_connection(cfg, "rollback");
    JobState state(conn, cfg.job_name);
    auto job = state.load();
    if (!job || job->phase != Phase::Reverse) {
        std::fprintf(stderr,
                     "job %s has not cut over with a reverse stream (phase %s); rollback swaps "
                     "back only after a cutover with [cutover] reverse = true\n",
                     cfg.job_name.c_str(), job ? to_string(job->phase) : "none");
        return kExitRuntime;
    }
    if (running_sessions(conn, app) == 0) {
        std::fprintf(stderr,
                     "no `pgshift run` process is streaming job %s: start `pgshift run -c %s` "
                     "(it resumes the reverse stream), then run rollback again\n",
                     cfg.job_name.c_str(), cfg.path.c_str());
        return kExitRuntime;
    }
    state.request_rollback();
    std::printf("rollback requested for job %s; waiting for the swap\n", cfg.job_name.c_str());
    std::fflush(stdout);
    int wait_s = cfg.max_attempts * (cfg.lock_timeout_ms / 1000 + 6) + 60;
    job = wait_for_phase(
        state, [](Phase p) { return p == Phase::Sync; }, wait_s);
    if (job && job->phase == Phase::Sync) {
        std::printf(
            "rolled back: %s is the original table again; the forward stream runs, and "
            "`pgshift cutover` cuts over again\n",
            JobNames::from(cfg, conn.database()).source.display().c_str());
        return kExitOk;
    }
    std::fprintf(stderr, "rollback did not complete (phase %s%s%s)\n",
                 job ? to_string(job->phase) : "none", job && !job->last_error.empty() ? ": " : "",
                 job ? job->last_error.c_str() : "");
    return kExitRuntime;
}

int finalize_command(const JobConfig& cfg, bool drop_old) {
    std::string app = job_application_name(cfg);
    auto conn = open_job_connection(cfg, "finalize");
    JobState state(conn, cfg.job_name);
    auto job = state.load();
    JobNames names = JobNames::from(cfg, conn.database());
    if (!job || (job->phase != Phase::Reverse && job->phase != Phase::Done)) {
        std::fprintf(stderr,
                     "job %s has not cut over (phase %s); finalize ends a job after cutover. "
                     "Before cutover use `pgshift abort`\n",
                     cfg.job_name.c_str(), job ? to_string(job->phase) : "none");
        return kExitRuntime;
    }
    if (job->phase == Phase::Reverse && running_sessions(conn, app) > 0) {
        state.request_finalize(drop_old);
        job = wait_for_phase(
            state, [](Phase p) { return p == Phase::Done; }, 120);
        if (!job || job->phase != Phase::Done) {
            std::fprintf(stderr, "finalize did not complete; see the `pgshift run` output\n");
            return kExitRuntime;
        }
    } else {
        finish_after_swap(conn, state, *job);
        finalize_job(conn, names, state, drop_old, cfg.lock_timeout_ms);
    }
    std::printf(
        "finalized job %s: %s stays partitioned; slots, publications and origins "
        "removed; old table %s %s\n",
        cfg.job_name.c_str(), names.source.display().c_str(), names.old.display().c_str(),
        drop_old ? "dropped" : "kept");
    return kExitOk;
}

}  // namespace pgshift
