#include "job_state.h"

#include <array>

namespace pgshift {

namespace {

constexpr std::array<const char*, 9> kPhaseNames{"prepare", "copy",     "index",   "sync",   "done",
                                                 "failed",  "aborting", "aborted", "reverse"};

constexpr const char* kSchemaSql = R"SQL(
CREATE SCHEMA IF NOT EXISTS pgshift;
CREATE TABLE IF NOT EXISTS pgshift.jobs (
    job_name          text PRIMARY KEY,
    phase             text NOT NULL,
    source_table      text NOT NULL,
    shadow_table      text NOT NULL,
    slot_name         text NOT NULL,
    consistent_point  pg_lsn,
    rows_copied       bigint NOT NULL DEFAULT 0,
    rows_estimated    bigint NOT NULL DEFAULT 0,
    changes_applied   bigint NOT NULL DEFAULT 0,
    applied_lsn       pg_lsn,
    lag_bytes         bigint NOT NULL DEFAULT 0,
    lag_seconds       double precision NOT NULL DEFAULT 0,
    peak_lag_bytes    bigint NOT NULL DEFAULT 0,
    last_lock_ms      double precision,
    lock_attempts     int NOT NULL DEFAULT 0,
    last_error        text NOT NULL DEFAULT '',
    cutover_requested boolean NOT NULL DEFAULT false,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE pgshift.jobs ADD COLUMN IF NOT EXISTS rollback_requested boolean NOT NULL DEFAULT false;
ALTER TABLE pgshift.jobs ADD COLUMN IF NOT EXISTS finalize_requested boolean NOT NULL DEFAULT false;
ALTER TABLE pgshift.jobs ADD COLUMN IF NOT EXISTS drop_old boolean NOT NULL DEFAULT false;
ALTER TABLE pgshift.jobs ADD COLUMN IF NOT EXISTS swaps int NOT NULL DEFAULT 0;
ALTER TABLE pgshift.jobs ADD COLUMN IF NOT EXISTS swap_spec text NOT NULL DEFAULT '';
ALTER TABLE pgshift.jobs ADD COLUMN IF NOT EXISTS copy_progress text NOT NULL DEFAULT '';
ALTER TABLE pgshift.jobs ADD COLUMN IF NOT EXISTS after_swap_pending text NOT NULL DEFAULT '';
COMMENT ON TABLE pgshift.jobs IS 'pgshift job state: one row per conversion job';
)SQL";

}  // namespace

const char* to_string(Phase p) {
    return kPhaseNames[static_cast<size_t>(p)];
}

std::optional<Phase> phase_from_string(const std::string& s) {
    for (size_t i = 0; i < kPhaseNames.size(); ++i) {
        if (s == kPhaseNames[i])
            return static_cast<Phase>(i);
    }
    return std::nullopt;
}

void JobState::ensure_schema() {
    conn_.exec(kSchemaSql);
}

std::optional<JobRecord> JobState::load() {
    auto exists = conn_.exec("SELECT to_regclass('pgshift.jobs') IS NOT NULL");
    if (!exists.boolean(0, 0))
        return std::nullopt;
    auto r = conn_.exec_params(
        "SELECT phase, source_table, shadow_table, slot_name, coalesce(consistent_point, '0/0'),"
        "       rows_copied, rows_estimated, changes_applied, coalesce(applied_lsn, '0/0'),"
        "       lag_bytes, lag_seconds, peak_lag_bytes, last_lock_ms, lock_attempts, last_error,"
        "       cutover_requested, started_at, updated_at, rollback_requested,"
        "       finalize_requested, drop_old, swaps, swap_spec, copy_progress,"
        "       after_swap_pending"
        "  FROM pgshift.jobs WHERE job_name = $1",
        {job_});
    if (r.rows() == 0)
        return std::nullopt;
    JobRecord j;
    j.job_name = job_;
    j.phase = phase_from_string(r.str(0, 0)).value_or(Phase::Failed);
    j.source_table = r.str(0, 1);
    j.shadow_table = r.str(0, 2);
    j.slot_name = r.str(0, 3);
    j.consistent_point = Lsn::parse(r.view(0, 4)).value_or(Lsn());
    j.rows_copied = r.i64(0, 5);
    j.rows_estimated = r.i64(0, 6);
    j.changes_applied = r.i64(0, 7);
    j.applied_lsn = Lsn::parse(r.view(0, 8)).value_or(Lsn());
    j.lag_bytes = r.i64(0, 9);
    j.lag_seconds = std::stod(r.str(0, 10));
    j.peak_lag_bytes = r.i64(0, 11);
    if (!r.is_null(0, 12))
        j.last_lock_ms = std::stod(r.str(0, 12));
    j.lock_attempts = static_cast<int>(r.i64(0, 13));
    j.last_error = r.str(0, 14);
    j.cutover_requested = r.boolean(0, 15);
    j.started_at = r.str(0, 16);
    j.updated_at = r.str(0, 17);
    j.rollback_requested = r.boolean(0, 18);
    j.finalize_requested = r.boolean(0, 19);
    j.drop_old = r.boolean(0, 20);
    j.swaps = static_cast<int>(r.i64(0, 21));
    j.swap_spec = r.str(0, 22);
    j.copy_progress = r.str(0, 23);
    j.after_swap_pending = r.str(0, 24);
    return j;
}

void JobState::create(const std::string& source, const std::string& shadow, const std::string& slot,
                      int64_t rows_estimated) {
    conn_.exec_params(
        "INSERT INTO pgshift.jobs (job_name, phase, source_table, shadow_table, slot_name,"
        "                          rows_estimated)"
        " VALUES ($1, 'prepare', $2, $3, $4, $5)"
        " ON CONFLICT (job_name) DO UPDATE SET phase = 'prepare', source_table = $2,"
        "   shadow_table = $3, slot_name = $4, rows_estimated = $5, consistent_point = NULL,"
        "   rows_copied = 0, changes_applied = 0, applied_lsn = NULL, lag_bytes = 0,"
        "   lag_seconds = 0, peak_lag_bytes = 0, last_lock_ms = NULL, lock_attempts = 0,"
        "   last_error = '', cutover_requested = false, rollback_requested = false,"
        "   finalize_requested = false, drop_old = false, swaps = 0, copy_progress = '',"
        "   after_swap_pending = '', started_at = now(),"
        "   updated_at = now()",
        {job_, source, shadow, slot, std::to_string(rows_estimated)});
}

void JobState::set_phase(Phase p) {
    conn_.exec_params("UPDATE pgshift.jobs SET phase = $2, updated_at = now() WHERE job_name = $1",
                      {job_, to_string(p)});
}

void JobState::set_consistent_point(Lsn lsn) {
    conn_.exec_params("UPDATE pgshift.jobs SET consistent_point = $2 WHERE job_name = $1",
                      {job_, lsn.str()});
}

void JobState::set_swap_spec(const std::string& json) {
    conn_.exec_params("UPDATE pgshift.jobs SET swap_spec = $2 WHERE job_name = $1", {job_, json});
}

void JobState::update_counters(const JobCounters& c) {
    // Committed asynchronously (set_config local to this statement's
    // transaction): counters lost in a crash are rewritten a second later,
    // and a synchronous commit would flush the source's WAL every second.
    conn_.exec_params(
        "WITH async AS (SELECT set_config('synchronous_commit', 'off', true))"
        " UPDATE pgshift.jobs SET rows_copied = $2, changes_applied = $3,"
        "   applied_lsn = NULLIF($4, '0/0')::pg_lsn, lag_bytes = $5, lag_seconds = $6,"
        "   peak_lag_bytes = greatest(peak_lag_bytes, $5), updated_at = now()"
        "  FROM async WHERE job_name = $1",
        {job_, std::to_string(c.rows_copied), std::to_string(c.changes_applied),
         c.applied_lsn.str(), std::to_string(c.lag_bytes), std::to_string(c.lag_seconds)});
}

void JobState::set_copy_progress(const std::string& json) {
    conn_.exec_params("UPDATE pgshift.jobs SET copy_progress = $2 WHERE job_name = $1",
                      {job_, json});
}

void JobState::set_error(const std::string& message) {
    conn_.exec_params(
        "UPDATE pgshift.jobs SET last_error = $2, updated_at = now() WHERE job_name = $1",
        {job_, message});
}

void JobState::record_cutover(double lock_ms, int attempts) {
    conn_.exec_params(
        "UPDATE pgshift.jobs SET last_lock_ms = $2, lock_attempts = $3, updated_at = now()"
        " WHERE job_name = $1",
        {job_, std::to_string(lock_ms), std::to_string(attempts)});
}

void JobState::swap_abandoned(const std::string& why) {
    conn_.exec_params(
        "UPDATE pgshift.jobs SET last_error = $2, cutover_requested = false,"
        " rollback_requested = false, updated_at = now() WHERE job_name = $1",
        {job_, why});
}

void JobState::request_cutover() {
    conn_.exec_params("UPDATE pgshift.jobs SET cutover_requested = true WHERE job_name = $1",
                      {job_});
}

void JobState::request_rollback() {
    conn_.exec_params("UPDATE pgshift.jobs SET rollback_requested = true WHERE job_name = $1",
                      {job_});
}

void JobState::request_finalize(bool drop_old) {
    conn_.exec_params(
        "UPDATE pgshift.jobs SET finalize_requested = true, drop_old = $2 WHERE job_name = $1",
        {job_, drop_old ? "true" : "false"});
}

std::string JobState::swap_sql(Phase phase, std::string_view after_swap_pending) const {
    return std::string("UPDATE pgshift.jobs SET phase = '") + to_string(phase) +
           "', swaps = swaps + 1, cutover_requested = false, rollback_requested = false,"
           " last_error = '', after_swap_pending = " +
           conn_.literal(after_swap_pending) +
           ", updated_at = now() WHERE job_name = " + conn_.literal(job_);
}

void JobState::clear_after_swap_pending() {
    conn_.exec_params(
        "UPDATE pgshift.jobs SET after_swap_pending = '', updated_at = now() WHERE job_name = $1",
        {job_});
}

}  // namespace pgshift
