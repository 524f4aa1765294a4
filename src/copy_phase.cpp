// The copy and index half of the phase controller: the chunked snapshot copy
// (fresh or resumed after a crash), its progress and safety pauses, and the
// parallel index build. See phase_controller.h and snapshot_copy.h.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "decoder/replication_stream.h"
#include "errors.h"
#include "job_cleanup.h"
#include "phase_controller.h"
#include "snapshot_copy.h"

namespace pgshift {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

struct LeafTask {
    std::string sql;
    std::string leaf_schema;
    std::string leaf_name;
    std::string index_name;
    bool constraint = false;
};

bool constraint_exists(pg::Connection& c, const LeafTask& t) {
    return c.exec_params(
                "SELECT 1 FROM pg_constraint WHERE conname = $1 AND"
                " conrelid = to_regclass($2)",
                {t.index_name, QualifiedName{t.leaf_schema, t.leaf_name}.quoted()})
               .rows() > 0;
}

/// Runs the partitions' index builds on up to `sessions` connections and
/// returns when all are done; the first error stops the others (between
/// builds) and is thrown. A SIGINT/SIGTERM stops them the same way.
void run_leaf_builds(const JobConfig& cfg, const std::string& app_name,
                     const std::vector<LeafTask>& tasks, Progress& progress) {
    std::atomic<size_t> next{0};
    std::atomic<int> running{0};
    int sessions = std::max(1, std::min<int>(cfg.copy_workers, static_cast<int>(tasks.size())));
    std::vector<std::thread> threads;
    for (int w = 0; w < sessions && !tasks.empty(); ++w) {
        ++running;
        threads.emplace_back([&] {
            try {
                pg::ConnectOptions co;
                co.application_name = app_name;
                auto c = pg::Connection::open(cfg.dsn, co);
                // One index at a time per session: the partitions are the
                // parallelism, so no parallel workers inside a build.
                c.exec("SET maintenance_work_mem = '" +
                       std::to_string(cfg.copy_maintenance_work_mem >> 10) + "kB'");
                c.exec("SET max_parallel_maintenance_workers = 0");
                for (size_t i; !progress.stopping() && (i = next++) < tasks.size();) {
                    const auto& t = tasks[i];
                    if (t.constraint && constraint_exists(c, t))
                        continue;  // built by a run that was killed afterwards
                    c.exec(t.sql);
                }
            } catch (const std::exception& e) {
                progress.fail(std::string("index build: ") + e.what());
            }
            --running;
        });
    }
    while (running > 0) {
        std::this_thread::sleep_for(milliseconds(100));
        if (g_stop_signal.load())
            progress.stop_requested.store(true);
    }
    for (auto& t : threads)
        t.join();
    if (auto err = progress.error())
        throw std::runtime_error(*err);
    if (progress.stopping())
        throw JobStopped("the index build was interrupted");
}

std::vector<QualifiedName> shadow_leaves(pg::Connection& conn, const QualifiedName& shadow) {
    // Largest first, so that parallel index builds finish together.
    auto r = conn.exec_params(
        "SELECT n.nspname, c.relname FROM pg_partition_tree(to_regclass($1)) t"
        "  JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE t.isleaf ORDER BY pg_relation_size(c.oid) DESC, c.relname",
        {shadow.quoted()});
    std::vector<QualifiedName> out;
    for (int i = 0; i < r.rows(); ++i)
        out.push_back({r.str(i, 0), r.str(i, 1)});
    return out;
}

/// Whether the source sets autovacuum_enabled itself (then its partitions
/// copy that setting and pgshift leaves it alone).
bool source_sets_autovacuum(pg::Connection& conn, const QualifiedName& source) {
    return conn
        .exec_params(
            "SELECT EXISTS (SELECT FROM pg_class c, unnest(c.reloptions) o"
            " WHERE c.oid = to_regclass($1) AND o LIKE 'autovacuum_enabled=%')",
            {source.quoted()})
        .boolean(0, 0);
}

/// Switches autovacuum off (`on` false) on the shadow's partitions while the
/// copy and the index build run, or back to the default. Each committed chunk
/// would otherwise start an insert-triggered VACUUM and ANALYZE that competes
/// with the copy, and whose locks the index statements on the partitioned
/// table would wait for (up to deadlock_timeout per partition) to cancel.
void set_shadow_autovacuum(pg::Connection& conn, const QualifiedName& source,
                           const QualifiedName& shadow, bool on) {
    if (source_sets_autovacuum(conn, source))
        return;
    for (const auto& leaf : shadow_leaves(conn, shadow)) {
        conn.exec("ALTER TABLE " + leaf.quoted() +
                  (on ? " RESET (autovacuum_enabled)" : " SET (autovacuum_enabled = off)"));
    }
}

}  // namespace

void PhaseController::plan_copy(const TableInfo& table) {
    set_shadow_autovacuum(conn_, names_.source, names_.shadow, false);
    const IndexInfo* pk = table.primary_key();
    int n = chunk_count(table.estimated_rows, cfg_.copy_chunk_rows, cfg_.copy_workers);
    std::vector<CopyChunk> chunks;
    ChunkKind kind = ChunkKind::Ctid;
    if (pk && !pk->key_columns.empty()) {
        kind = ChunkKind::Key;
        chunks = key_chunks(
            sample_key_boundaries(conn_, names_.source, pk->key_columns, table.estimated_rows, n));
    } else {
        int64_t pages = std::max<int64_t>(1, table.heap_pages);
        chunks = ctid_chunks(pages, (pages + n - 1) / n);
    }
    save_chunk_plan(conn_, cfg_.job_name, kind, chunks);
    spdlog::info("copy: {} chunks by {}", chunks.size(),
                 kind == ChunkKind::Key ? "primary key range" : "ctid range (no primary key)");
}

bool PhaseController::copy_resumable() {
    auto ledger = load_chunk_plan(conn_, cfg_.job_name);
    return ledger.kind == ChunkKind::Key && !ledger.committed.empty() &&
           relation_exists(conn_, names_.shadow);
}

void PhaseController::create_publication() {
    // CREATE PUBLICATION takes a lock on the source: bounded by lock_timeout,
    // retried like the cutover lock.
    std::string pub_sql = "CREATE PUBLICATION " + conn_.ident(names_.publication) + " FOR TABLE " +
                          conn_.qualified(names_.source.schema, names_.source.name);
    conn_.exec("SET lock_timeout = " + std::to_string(cfg_.lock_timeout_ms));
    pg::retry_on_lock_timeout([&] { return conn_.exec(pub_sql); }, cfg_.max_attempts);
    conn_.exec("RESET lock_timeout");
}

void PhaseController::copy_and_index() {
    spdlog::info("prepare: creating slot {} (waits for transactions running now to end)",
                 names_.slot);
    auto exporter = std::make_unique<ReplicationStream>(cfg_.dsn, app_name_);
    auto slot = exporter->create_slot(names_.slot);
    state_->set_consistent_point(slot.consistent_point);
    spdlog::info("prepare: slot {} consistent at {}, snapshot {}", slot.name,
                 slot.consistent_point.str(), slot.snapshot_name);
    check_interrupts();
    state_->set_phase(Phase::Copy);
    snapshot_copy(slot.snapshot_name, exporter);
    check_interrupts();
    state_->set_phase(Phase::Index);
    build_indexes();
}

void PhaseController::resume_copy(const JobRecord& job) {
    spec_ = SwapSpec::from_json(job.swap_spec);
    rows_estimated_ = job.rows_estimated;
    auto table = inspect_table(conn_, names_.source, names_.publication);
    if (!table)
        throw std::runtime_error(names_.source.display() + " no longer exists");
    plan_ = make_shadow_plan(conn_, cfg_, *table);
    // The killed run's sessions may still hold the slot or a chunk's
    // transaction; the slot's snapshot died with them, so a new slot (with a
    // new snapshot and consistent point) replaces it.
    terminate_job_sessions(conn_, app_name_);
    drop_stream_objects(conn_, names_.slot, names_.publication);
    create_publication();
    copy_and_index();
}

void PhaseController::resume_index(const JobRecord& job) {
    spec_ = SwapSpec::from_json(job.swap_spec);
    rows_estimated_ = job.rows_estimated;
    counters_.rows_copied = job.rows_copied;
    auto table = inspect_table(conn_, names_.source, names_.publication);
    if (!table)
        throw std::runtime_error(names_.source.display() + " no longer exists");
    plan_ = make_shadow_plan(conn_, cfg_, *table);
    terminate_job_sessions(conn_, app_name_);
    build_indexes();
}

void PhaseController::snapshot_copy(const std::string& snapshot,
                                    std::unique_ptr<ReplicationStream>& exporter) {
    auto ledger = load_chunk_plan(conn_, cfg_.job_name);
    CopyTask task;
    task.conninfo = cfg_.dsn;
    task.application_name = app_name_;
    task.job_name = cfg_.job_name;
    task.snapshot_name = snapshot;
    task.source = names_.source;
    task.target = names_.shadow;
    task.columns = plan_->copy_columns;
    task.kind = ledger.kind;
    if (ledger.kind == ChunkKind::Key) {
        auto table = inspect_table(conn_, names_.source, names_.publication);
        if (table && table->primary_key())
            task.key_columns = table->primary_key()->key_columns;
    }
    task.chunks = ledger.chunks;
    task.committed = ledger.committed;
    task.workers = cfg_.copy_workers;
    if (!ledger.committed.empty()) {
        spdlog::info(
            "copy: resuming; {} of {} chunks ({} rows) were committed before the "
            "restart and are reconciled with the new snapshot",
            ledger.committed.size(), ledger.chunks.size(), ledger.rows_committed);
    }
    progress_->rows_copied.store(ledger.rows_committed);
    progress_->bytes_copied.store(ledger.bytes_committed);
    progress_->chunks_copied.store(static_cast<int>(ledger.committed.size()));
    copy_chunks_total_ = static_cast<int>(ledger.chunks.size());
    copy_started_ = Clock::now();
    rate_samples_.clear();
    tty_ = isatty(STDERR_FILENO) != 0;

    SnapshotCopier copier(task, *progress_);
    std::exception_ptr failure;
    std::atomic<bool> finished{false};
    std::thread copy_thread([&] {
        try {
            copier.run([&] { exporter.reset(); });
        } catch (...) {
            failure = std::current_exception();
        }
        finished = true;
    });
    next_tick_ = {};
    while (!finished) {
        std::this_thread::sleep_for(milliseconds(100));
        if (g_stop_signal.load())
            progress_->stop_requested.store(true);
        try {
            copy_tick();
        } catch (...) {
            progress_->fail("copy interrupted");
            copy_thread.join();
            throw;
        }
    }
    copy_thread.join();
    if (!failure) {
        next_tick_ = {};
        copy_tick();
    }
    // The bar is redrawn in place; end its line before anything else is logged.
    if (tty_)
        std::fputc('\n', stderr);
    if (failure)
        std::rethrow_exception(failure);
    double secs = std::chrono::duration<double>(Clock::now() - copy_started_).count();
    spdlog::info("copy: {} rows, {} MB in {:.1f} s", counters_.rows_copied,
                 progress_->bytes_copied.load() >> 20, secs);
}

CopyStats PhaseController::copy_stats() {
    auto now = Clock::now();
    CopyStats s;
    s.rows = progress_->rows_copied.load();
    s.rows_estimated = std::max(rows_estimated_, s.rows);
    s.bytes = progress_->bytes_copied.load();
    s.elapsed_s = std::chrono::duration<double>(now - copy_started_).count();
    s.chunks_done = progress_->chunks_copied.load();
    s.chunks_total = copy_chunks_total_;
    // Rate over the last ~5 s, so a pause or a slow chunk shows at once.
    rate_samples_.emplace_back(now, s.rows);
    while (rate_samples_.size() > 2 && now - rate_samples_.front().first > std::chrono::seconds(5))
        rate_samples_.pop_front();
    double dt = std::chrono::duration<double>(now - rate_samples_.front().first).count();
    if (dt > 0.5)
        s.rows_per_s = static_cast<double>(s.rows - rate_samples_.front().second) / dt;
    // The copy sessions' snapshot: how long it has been held and how many
    // transactions old its xmin is (VACUUM cannot remove rows newer than it).
    auto r = conn_.exec_params(
        "SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8,"
        "       coalesce(max(age(backend_xmin)), 0)::bigint"
        "  FROM pg_stat_activity"
        " WHERE application_name = $1 AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL",
        {app_name_});
    s.snapshot_age_s = std::stod(r.str(0, 0));
    s.xmin_age = r.i64(0, 1);
    s.paused = copy_pause_reason();
    return s;
}

std::string PhaseController::copy_pause_reason() {
    if (cfg_.copy_pause_retained_wal > 0) {
        auto r = conn_.exec_params(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            "  FROM pg_replication_slots WHERE slot_name = $1 AND restart_lsn IS NOT NULL",
            {names_.slot});
        if (r.rows() > 0 && r.i64(0, 0) > cfg_.copy_pause_retained_wal) {
            return "slot " + names_.slot + " retains " + std::to_string(r.i64(0, 0) >> 20) +
                   " MB of WAL, above copy.pause_retained_wal = " +
                   std::to_string(cfg_.copy_pause_retained_wal >> 20) + " MB";
        }
    }
    if (cfg_.copy_pause_replay_lag > 0) {
        // Physical standbys only: their walsenders are not attached to a database.
        auto r = conn_.exec(
            "SELECT r.application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint"
            "  FROM pg_stat_replication r JOIN pg_stat_activity a USING (pid)"
            " WHERE a.datname IS NULL AND r.replay_lsn IS NOT NULL ORDER BY 2 DESC LIMIT 1");
        if (r.rows() > 0 && r.i64(0, 1) > cfg_.copy_pause_replay_lag) {
            return "standby " + r.str(0, 0) + " replays " + std::to_string(r.i64(0, 1) >> 20) +
                   " MB behind, above copy.pause_replay_lag = " +
                   std::to_string(cfg_.copy_pause_replay_lag >> 20) + " MB";
        }
    }
    return "";
}

void PhaseController::copy_tick() {
    auto now = Clock::now();
    if (now < next_tick_)
        return;
    check_interrupts();
    next_tick_ = now + milliseconds(1000);
    watch_retained_wal(names_.slot);
    CopyStats s = copy_stats();
    bool was_paused = !progress_->paused().empty();
    progress_->set_paused(s.paused);
    if (!s.paused.empty() && !was_paused)
        spdlog::warn("copy: pausing chunks: {}", s.paused);
    if (s.paused.empty() && was_paused)
        spdlog::info("copy: resuming chunks");
    counters_.rows_copied = s.rows;
    state_->update_counters(counters_);
    state_->set_copy_progress(copy_stats_json(s));
    if (tty_) {
        double fraction = s.rows_estimated > 0
                              ? static_cast<double>(s.rows) / static_cast<double>(s.rows_estimated)
                              : 0;
        std::fprintf(stderr, "\r%s %s\033[K", progress_bar(fraction, 20).c_str(),
                     progress_line(s).c_str());
        std::fflush(stderr);
    } else if (now >= next_report_) {
        next_report_ = now + milliseconds(5000);
        spdlog::info("{}", progress_line(s));
    }
}

void PhaseController::build_indexes() {
    auto started = Clock::now();
    auto leaves = shadow_leaves(conn_, names_.shadow);
    std::vector<LeafTask> tasks;
    for (const auto& leaf : leaves) {
        for (size_t i = 0; i < plan_->index_sql.size(); ++i) {
            auto build = leaf_index_build(plan_->index_sql[i], names_.shadow.quoted(), leaf.schema,
                                          leaf.name, i);
            if (build)
                tasks.push_back({build->parallel_sql, leaf.schema, leaf.name,
                                 build->leaf_index_name, build->constraint});
        }
    }
    run_leaf_builds(cfg_, app_name_, tasks, *progress_);
    auto leaf_secs = std::chrono::duration<double>(Clock::now() - started).count();
    // On the partitioned table every index statement finds its partitions'
    // indexes and attaches them. One transaction with the phase change, so a
    // run killed here repeats all of it or none.
    conn_.exec("BEGIN");
    for (const auto& sql : plan_->index_sql)
        conn_.exec(sql);
    set_shadow_autovacuum(conn_, names_.source, names_.shadow, true);
    drop_chunk_plan(conn_, cfg_.job_name);
    state_->set_phase(Phase::Sync);
    conn_.exec("COMMIT");
    spdlog::info(
        "index: {} builds on {} partitions in {:.1f} s with {} sessions, then {} "
        "statements on the partitioned table in {:.1f} s",
        tasks.size(), leaves.size(), leaf_secs, cfg_.copy_workers, plan_->index_sql.size(),
        std::chrono::duration<double>(Clock::now() - started).count() - leaf_secs);
}

}  // namespace pgshift
