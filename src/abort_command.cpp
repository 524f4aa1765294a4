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

}  // namespace

int abort_command(const JobConfig& cfg) {
    pg::ConnectOptions co;
    std::string app = job_application_name(cfg);
    co.application_name = app + "/abort";
    auto conn = pg::Connection::open(cfg.dsn, co);
    JobState state(conn, cfg.job_name);
    auto job = state.load();
    JobNames names = JobNames::from(cfg, conn.database());
    if (job && job->phase == Phase::Done) {
        std::fprintf(stderr,
                     "job %s has already cut over: %s is the partitioned table and the old one "
                     "is %s. abort only undoes a job before cutover\n",
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
    if (job)
        state.set_phase(Phase::Aborted);
    std::printf("job %s aborted: shadow, slot, publication and origin removed; %s is unchanged\n",
                cfg.job_name.c_str(), names.source.display().c_str());
    return kExitOk;
}

int cutover_command(const JobConfig& cfg) {
    pg::ConnectOptions co;
    co.application_name = job_application_name(cfg) + "/cutover";
    auto conn = pg::Connection::open(cfg.dsn, co);
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

}  // namespace pgshift
