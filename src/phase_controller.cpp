#include "phase_controller.h"

#include <spdlog/spdlog.h>

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

ShadowPlan make_shadow_plan(pg::Connection& conn, const JobConfig& cfg, const TableInfo& table) {
    const ColumnInfo* key = table.column(cfg.column);
    auto range = partition_key_range(conn, table, *key);
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto partitions = compute_partitions(table.name.name, key_type_of(key->type_oid), cfg.interval,
                                         range, now, cfg.premake, cfg.default_partition);
    return plan_shadow(table, cfg, JobNames::from(cfg, conn.database()), partitions);
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
    : cfg_(std::move(cfg)), app_name_(job_application_name(cfg_)) {}

PhaseController::~PhaseController() = default;

void PhaseController::check_interrupts() {
    if (g_stop_signal.load())
        progress_.stop_requested.store(true);
    if (auto err = progress_.error())
        throw std::runtime_error(*err);
    if (progress_.stopping())
        throw JobStopped("stopped by signal");
    if (Clock::now() < next_tick_)
        return;
    auto job = state_->load();
    if (job && job->phase == Phase::Aborting) {
        throw std::runtime_error("`pgshift abort` was requested for job " + cfg_.job_name);
    }
    cutover_requested_ = job && job->cutover_requested;
}

int PhaseController::run() {
    pg::ConnectOptions co;
    co.application_name = app_name_;
    conn_ = pg::Connection::open(cfg_.dsn, co);
    names_ = JobNames::from(cfg_, conn_.database());
    spdlog::info("job {}: connected to {}", cfg_.job_name, conn_.describe());
    state_ = std::make_unique<JobState>(conn_, cfg_.job_name);
    auto job = state_->load();
    if (job && job->phase == Phase::Done) {
        finish_after_cutover();
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
        if (job && job->phase == Phase::Sync) {
            spdlog::info("job {}: resuming the change stream", cfg_.job_name);
            auto table = inspect_table(conn_, names_.source);
            if (!table)
                throw std::runtime_error(names_.source.display() + " no longer exists");
            consistent_point_ = job->consistent_point;
            plan_ = plan_shadow(*table, cfg_, names_, {});
            sync_and_cutover(*table);
        } else {
            if (job && (job->phase == Phase::Prepare || job->phase == Phase::Copy ||
                        job->phase == Phase::Index)) {
                spdlog::warn(
                    "job {} was interrupted during {}; its exported snapshot is gone, "
                    "so it starts again from the beginning",
                    cfg_.job_name, to_string(job->phase));
                drop_job_objects(conn_, names_, true);
            }
            start_fresh();
        }
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
    prepare(*pf.table);
    sync_and_cutover(*pf.table);
}

void PhaseController::prepare(const TableInfo& table) {
    spdlog::info("prepare: creating {} with {} partitions", names_.shadow.display(),
                 plan_->partitions.size());
    conn_.exec("BEGIN");
    for (const auto& sql : plan_->create_sql)
        conn_.exec(sql);
    conn_.exec("COMMIT");
    // CREATE PUBLICATION takes a lock on the source: bounded by lock_timeout,
    // retried like the cutover lock.
    std::string pub_sql = "CREATE PUBLICATION " + conn_.ident(names_.publication) + " FOR TABLE " +
                          conn_.qualified(names_.source.schema, names_.source.name);
    conn_.exec("SET lock_timeout = " + std::to_string(cfg_.lock_timeout_ms));
    for (int attempt = 1;; ++attempt) {
        try {
            conn_.exec(pub_sql);
            break;
        } catch (const pg::PgError& e) {
            if (!e.is_lock_timeout() || attempt >= cfg_.max_attempts)
                throw;
            spdlog::warn("prepare: lock_timeout creating the publication (attempt {}), retrying",
                         attempt);
            std::this_thread::sleep_for(milliseconds(200 * attempt));
        }
    }
    conn_.exec("RESET lock_timeout");
    conn_.exec_params("SELECT pg_replication_origin_create($1)", {names_.origin});
    spdlog::info("prepare: creating slot {} (waits for transactions running now to end)",
                 names_.slot);
    auto exporter = std::make_unique<ReplicationStream>(cfg_.dsn, app_name_);
    auto slot = exporter->create_slot(names_.slot);
    consistent_point_ = slot.consistent_point;
    state_->set_consistent_point(slot.consistent_point);
    spdlog::info("prepare: slot {} consistent at {}, snapshot {}", slot.name,
                 slot.consistent_point.str(), slot.snapshot_name);
    check_interrupts();
    state_->set_phase(Phase::Copy);
    snapshot_copy(table, slot.snapshot_name, exporter);
    check_interrupts();
    state_->set_phase(Phase::Index);
    build_indexes();
    state_->set_phase(Phase::Sync);
}

void PhaseController::snapshot_copy(const TableInfo& table, const std::string& snapshot,
                                    std::unique_ptr<ReplicationStream>& exporter) {
    CopyTask task{cfg_.dsn,      app_name_,           snapshot,         names_.source,
                  names_.shadow, plan_->copy_columns, table.heap_pages, cfg_.copy_workers};
    SnapshotCopier copier(task, progress_);
    std::exception_ptr failure;
    std::atomic<bool> finished{false};
    auto started = Clock::now();
    std::thread copy_thread([&] {
        try {
            copier.run([&] { exporter.reset(); });
        } catch (...) {
            failure = std::current_exception();
        }
        finished = true;
    });
    while (!finished) {
        std::this_thread::sleep_for(milliseconds(100));
        if (g_stop_signal.load())
            progress_.stop_requested.store(true);
        try {
            tick("copy");
        } catch (...) {
            progress_.fail("copy interrupted");
            copy_thread.join();
            throw;
        }
    }
    copy_thread.join();
    if (failure)
        std::rethrow_exception(failure);
    double secs = std::chrono::duration<double>(Clock::now() - started).count();
    spdlog::info("copy: {} rows in {:.1f} s", progress_.rows_copied.load(), secs);
}

void PhaseController::build_indexes() {
    auto started = Clock::now();
    for (const auto& sql : plan_->index_sql) {
        spdlog::info("index: {}", sql);
        conn_.exec(sql);
    }
    spdlog::info("index: built {} in {:.1f} s", plan_->index_sql.size(),
                 std::chrono::duration<double>(Clock::now() - started).count());
}

void PhaseController::watch_retained_wal() {
    auto r = conn_.exec_params(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, wal_status"
        "  FROM pg_replication_slots WHERE slot_name = $1",
        {names_.slot});
    if (r.rows() == 0)
        return;
    int64_t retained = r.is_null(0, 0) ? 0 : r.i64(0, 0);
    std::string status = r.str(0, 1);
    if (status == "lost" || retained > cfg_.max_retained_wal) {
        throw std::runtime_error(
            "replication slot " + names_.slot + " retains " + std::to_string(retained >> 20) +
            " MB of WAL (wal_status " + status +
            "), above [safety] max_retained_wal = " + std::to_string(cfg_.max_retained_wal >> 20) +
            " MB; the job stopped and dropped its slot so it cannot fill the disk. Raise "
            "max_retained_wal, or run when the source writes less");
    }
}

void PhaseController::tick(const char* phase) {
    auto now = Clock::now();
    if (now < next_tick_)
        return;
    check_interrupts();
    next_tick_ = now + milliseconds(1000);
    watch_retained_wal();
    auto r = conn_.exec("SELECT pg_current_wal_lsn()");
    Lsn current = Lsn::parse(r.view(0, 0)).value_or(Lsn());
    Lsn applied(std::max(progress_.applied_end.load(), progress_.confirmed_flush.load()));
    counters_.rows_copied = progress_.rows_copied.load();
    counters_.changes_applied = progress_.changes_applied.load();
    counters_.applied_lsn = applied;
    bool syncing = std::string(phase) == "sync";
    counters_.lag_bytes =
        syncing && current > applied ? static_cast<int64_t>(current.value() - applied.value()) : 0;
    int64_t commit_time = progress_.applied_commit_time.load();
    counters_.lag_seconds =
        syncing && commit_time > 0 && counters_.lag_bytes > 0
            ? (to_pg_timestamp(std::chrono::system_clock::now()) - commit_time) / 1e6
            : 0;
    state_->update_counters(counters_);
    if (now >= next_report_) {
        next_report_ = now + milliseconds(5000);
        if (syncing) {
            spdlog::info("sync: {} changes applied, lag {} kB ({:.1f} s), applied LSN {}",
                         counters_.changes_applied, counters_.lag_bytes / 1024,
                         counters_.lag_seconds, applied.str());
        } else {
            spdlog::info("copy: {} of ~{} rows", counters_.rows_copied, rows_estimated_);
        }
    }
}

void PhaseController::sync_and_cutover(const TableInfo& table) {
    auto features = ServerFeatures::for_version(conn_.server_version());
    Lsn resume = origin_progress(conn_, names_.origin);
    Lsn start = resume.valid() ? resume : consistent_point_;
    progress_.applied_end.store(start.value());
    progress_.received_end.store(start.value());

    ChangeQueue queue;
    ApplierOptions ao;
    ao.conninfo = cfg_.dsn;
    ao.application_name = app_name_;
    ao.origin = names_.origin;
    auto source_key = std::make_pair(names_.source.schema, names_.source.name);
    ao.targets[source_key] = names_.shadow;
    if (const auto* pk = table.primary_key())
        ao.unique_keys[source_key] = pk->key_columns;
    ao.partition_column = cfg_.column;
    ApplierThread applier(ao, queue, progress_);

    DecoderOptions dopts;
    dopts.conninfo = cfg_.dsn;
    dopts.application_name = app_name_;
    dopts.slot = names_.slot;
    dopts.publication = names_.publication;
    dopts.start = start;
    dopts.features = features;
    DecoderThread decoder(dopts, queue, progress_);

    auto stop_threads = [&] {
        progress_.stop_requested.store(true);
        decoder.join();
        applier.join();
    };
    std::optional<CutoverResult> result;
    try {
        applier.start();
        decoder.start();
        spdlog::info("sync: applying changes from {} into {}", start.str(),
                     names_.shadow.display());
        while (!result) {
            std::this_thread::sleep_for(milliseconds(100));
            tick("sync");
            bool requested = cfg_.cutover_mode == CutoverMode::Auto || cutover_requested_;
            if (!requested || counters_.lag_bytes > cfg_.max_lag_bytes)
                continue;
            spdlog::info("cutover: lag {} kB is within max_lag_bytes; locking {}",
                         counters_.lag_bytes / 1024, names_.source.display());
            CutoverOptions co{cfg_.dsn,          app_name_,
                              cfg_.job_name,     cfg_.lock_timeout_ms,
                              cfg_.max_attempts, cfg_.barrier_timeout_ms};
            SwapPlan swap{names_, plan_->index_renames, table.sequences,
                          plan_->identity_always_columns, state_->done_sql()};
            result = CutoverController(co, swap, progress_).run();
        }
    } catch (...) {
        stop_threads();
        throw;
    }
    stop_threads();
    counters_.rows_copied = progress_.rows_copied.load();
    counters_.changes_applied = progress_.changes_applied.load();
    counters_.lag_bytes = 0;
    counters_.lag_seconds = 0;
    state_->update_counters(counters_);
    state_->record_cutover(result->lock_ms, result->attempts);
    finish_after_cutover();
    std::printf(
        "done: %s is now partitioned (%zu partitions); rows copied %lld, changes applied %lld, "
        "peak lag %lld kB, source locked %.1f ms at cutover; the old table is %s\n",
        names_.source.display().c_str(), plan_->partitions.size(),
        static_cast<long long>(progress_.rows_copied.load()),
        static_cast<long long>(progress_.changes_applied.load()),
        static_cast<long long>(state_->load().value_or(JobRecord{}).peak_lag_bytes / 1024),
        result->lock_ms, names_.old.display().c_str());
}

void PhaseController::finish_after_cutover() {
    drop_job_objects(conn_, names_, false);
}

void PhaseController::fail_and_clean(const std::string& error) {
    spdlog::error("job {} failed: {}", cfg_.job_name, error);
    if (!conn_ || !state_)
        return;
    try {
        conn_.rollback_quietly();
        auto job = state_->load();
        if (job && job->phase == Phase::Done)
            return;
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
