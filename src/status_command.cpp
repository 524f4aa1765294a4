#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "commands.h"
#include "copy_chunks.h"
#include "errors.h"
#include "job_names.h"
#include "job_state.h"
#include "phase_controller.h"

namespace pgshift {

namespace {

struct SlotView {
    bool exists = false;
    bool active = false;
    int64_t retained_bytes = 0;
    std::string wal_status;
};

SlotView read_slot(pg::Connection& conn, const std::string& slot) {
    auto r = conn.exec_params(
        "SELECT active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,"
        "       coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1",
        {slot});
    if (r.rows() == 0)
        return {};
    return {true, r.boolean(0, 0), r.i64(0, 1), r.str(0, 2)};
}

/// The job writes its counters about once a second. The change rate is the
/// difference of two samples of (changes_applied, updated_at) taken a little
/// over two seconds apart, divided by the time between the job's own writes:
/// a rate over the job's clock, unaffected by when status happened to look.
/// nullopt when the row did not move (the job is not running).
std::optional<double> change_rate(pg::Connection& conn, const std::string& job) {
    auto sample = [&] {
        return conn.exec_params(
            "SELECT changes_applied, extract(epoch from updated_at)::float8 FROM pgshift.jobs"
            " WHERE job_name = $1",
            {job});
    };
    auto a = sample();
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));
    auto b = sample();
    if (a.rows() == 0 || b.rows() == 0)
        return std::nullopt;
    double dt = std::stod(b.str(0, 1)) - std::stod(a.str(0, 1));
    if (dt <= 0)
        return std::nullopt;
    return static_cast<double>(b.i64(0, 0) - a.i64(0, 0)) / dt;
}

/// When the job may cut over: [cutover] mode, and for mode window where the
/// window stands now in [cutover] time_zone (read from the server's clock,
/// the one the running job uses).
struct CutoverTiming {
    std::string mode;
    std::string window;  ///< "HH:MM-HH:MM", empty unless mode window
    int opens_in_s = 0;
    int closes_in_s = 0;
};

std::string hhmm(int minute) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02d:%02d", minute / 60, minute % 60);
    return buf;
}

std::string duration_text(int s) {
    if (s >= 3600)
        return std::to_string(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
    if (s >= 60)
        return std::to_string(s / 60) + " min";
    return std::to_string(s) + " s";
}

CutoverTiming cutover_timing(pg::Connection& conn, const JobConfig& cfg) {
    CutoverTiming t;
    t.mode = cfg.cutover_mode == CutoverMode::Auto     ? "auto"
             : cfg.cutover_mode == CutoverMode::Manual ? "manual"
                                                       : "window";
    if (cfg.cutover_mode != CutoverMode::Window || !cfg.cutover_window)
        return t;
    const auto& w = *cfg.cutover_window;
    t.window = hhmm(w.start_minute) + "-" + hhmm(w.end_minute);
    auto r = conn.exec_params(
        "SELECT floor(extract(epoch FROM (now() AT TIME ZONE $1)::time))::int", {cfg.time_zone});
    int now_s = static_cast<int>(r.i64(0, 0));
    t.opens_in_s = seconds_until_window(w, now_s);
    t.closes_in_s = seconds_until_window_closes(w, now_s);
    return t;
}

}  // namespace

int status_command(const JobConfig& cfg, bool json) {
    pg::ConnectOptions co;
    co.application_name = job_application_name(cfg) + "/status";
    auto conn = pg::Connection::open(cfg.dsn, co);
    auto job = JobState(conn, cfg.job_name).load();
    if (!job) {
        if (json) {
            std::printf("%s\n",
                        nlohmann::json{{"job", cfg.job_name}, {"phase", nullptr}}.dump(2).c_str());
        } else {
            std::printf("job %s: not started (no row in pgshift.jobs)\n", cfg.job_name.c_str());
        }
        return kExitOk;
    }
    // After cutover the reverse stream's slot is the one holding WAL back.
    JobNames names = JobNames::from(cfg, conn.database());
    std::string slot_name = job->phase == Phase::Reverse ? names.reverse_slot : names.slot;
    auto slot = read_slot(conn, slot_name);
    auto timing = cutover_timing(conn, cfg);
    bool before_cutover = job->phase == Phase::Prepare || job->phase == Phase::Copy ||
                          job->phase == Phase::Index || job->phase == Phase::Sync;
    std::optional<double> rate;
    if (job->phase == Phase::Sync || job->phase == Phase::Reverse)
        rate = change_rate(conn, cfg.job_name);
    if (json) {
        nlohmann::json j{
            {"job", job->job_name},
            {"phase", to_string(job->phase)},
            {"source", job->source_table},
            {"shadow", job->shadow_table},
            {"rows_copied", job->rows_copied},
            {"rows_estimated", job->rows_estimated},
            {"changes_applied", job->changes_applied},
            {"changes_per_second", rate ? nlohmann::json(*rate) : nlohmann::json(nullptr)},
            {"applied_lsn", job->applied_lsn.str()},
            {"lag_bytes", job->lag_bytes},
            {"lag_seconds", job->lag_seconds},
            {"peak_lag_bytes", job->peak_lag_bytes},
            {"last_cutover_lock_ms",
             job->last_lock_ms ? nlohmann::json(*job->last_lock_ms) : nlohmann::json(nullptr)},
            {"cutover_attempts", job->lock_attempts},
            {"slot", slot.exists ? nlohmann::json{{"name", slot_name},
                                                  {"active", slot.active},
                                                  {"retained_wal_bytes", slot.retained_bytes},
                                                  {"wal_status", slot.wal_status}}
                                 : nlohmann::json(nullptr)},
            {"last_error",
             job->last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(job->last_error)},
            {"copy", job->copy_progress.empty() ? nlohmann::json(nullptr)
                                                : nlohmann::json::parse(job->copy_progress)},
            {"cutover_mode", timing.mode},
            {"cutover_window", timing.window.empty()
                                   ? nlohmann::json(nullptr)
                                   : nlohmann::json{{"window", timing.window},
                                                    {"time_zone", cfg.time_zone},
                                                    {"open", timing.closes_in_s > 0},
                                                    {"opens_in_seconds", timing.opens_in_s},
                                                    {"closes_in_seconds", timing.closes_in_s}}},
            {"started_at", job->started_at},
            {"updated_at", job->updated_at},
        };
        std::printf("%s\n", j.dump(2).c_str());
        return kExitOk;
    }
    std::printf("job:              %s\n", job->job_name.c_str());
    std::printf("phase:            %s\n", to_string(job->phase));
    std::printf("source -> shadow: %s -> %s\n", job->source_table.c_str(),
                job->shadow_table.c_str());
    std::printf("rows copied:      %lld of ~%lld\n", static_cast<long long>(job->rows_copied),
                static_cast<long long>(job->rows_estimated));
    if (!job->copy_progress.empty() && (job->phase == Phase::Copy || job->phase == Phase::Index)) {
        std::printf("copy:             %s\n",
                    progress_line(copy_stats_from_json(job->copy_progress)).c_str());
    }
    std::printf("changes applied:  %lld (applied LSN %s)\n",
                static_cast<long long>(job->changes_applied), job->applied_lsn.str().c_str());
    if (rate)
        std::printf("change rate:      %.1f changes/s\n", *rate);
    std::printf("lag:              %lld bytes, %.1f s (peak %lld bytes)\n",
                static_cast<long long>(job->lag_bytes), job->lag_seconds,
                static_cast<long long>(job->peak_lag_bytes));
    if (slot.exists) {
        std::printf("slot:             %s, %s, retains %lld MB of WAL (%s)\n", slot_name.c_str(),
                    slot.active ? "active" : "inactive",
                    static_cast<long long>(slot.retained_bytes >> 20), slot.wal_status.c_str());
    }
    if (job->last_lock_ms) {
        std::printf("last cutover:     source locked %.1f ms (%d attempt(s))\n", *job->last_lock_ms,
                    job->lock_attempts);
    }
    if (before_cutover) {
        std::string when = timing.mode == "auto"
                               ? "auto, once lag <= " + std::to_string(cfg.max_lag_bytes) + " bytes"
                           : timing.mode == "manual" ? "manual, on `pgshift cutover`"
                           : timing.closes_in_s > 0
                               ? "window " + timing.window + " " + cfg.time_zone +
                                     ", open now (closes in " + duration_text(timing.closes_in_s) +
                                     ")"
                               : "window " + timing.window + " " + cfg.time_zone + ", opens in " +
                                     duration_text(timing.opens_in_s);
        std::printf("cutover:          %s\n", when.c_str());
    }
    if (!job->last_error.empty())
        std::printf("last error:       %s\n", job->last_error.c_str());
    std::printf("updated:          %s\n", job->updated_at.c_str());
    return kExitOk;
}

}  // namespace pgshift
