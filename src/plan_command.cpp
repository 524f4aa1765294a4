// `pgshift plan`: the dry run. Every check, the DDL exactly as `run` executes
// it (before the copy, after the copy, in the cutover transaction, after it,
// and the same for a rollback), the steps, and estimates from a measured
// sample. It writes nothing: the catalog is read in a READ ONLY transaction,
// and the sample is copied into a temporary table in a second transaction
// that is rolled back (temporary tables are not WAL-logged and vanish with
// the rollback; the source is only read).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "cutover/cutover_controller.h"
#include "cutover/rollback.h"
#include "errors.h"
#include "job_names.h"
#include "phase_controller.h"

namespace pgshift {

namespace {

/// Heap bytes sampled for the copy measurement: enough for a stable rate,
/// small enough to take well under a second.
constexpr int64_t kSampleTargetBytes = 8 << 20;

struct Estimates {
    int64_t rows = 0;
    int64_t source_bytes = 0;         ///< pg_total_relation_size of the source
    size_t partitions = 0;            ///< tables created: partitions of every level
    size_t leaf_partitions = 0;       ///< of which hold rows
    int64_t new_table_bytes = 0;      ///< heap + TOAST of the new table, from the sample
    int64_t index_bytes = 0;          ///< the source's indexes (rebuilt on the new table)
    int64_t copy_wal_bytes = 0;       ///< WAL written by the copy and the index builds
    int64_t extra_disk_bytes = 0;     ///< peak: new table + indexes + the copy's WAL
    double copy_seconds = 0;          ///< one copy stream, as measured
    double copy_seconds_workers = 0;  ///< lower bound with the configured workers
    // The measurement.
    bool measured = false;
    std::string method;  ///< how the figures were obtained, for the reader
    double sample_percent = 0;
    int64_t sample_rows = 0;
    int64_t sample_bytes = 0;  ///< pg_table_size of the sample in the temporary table
    double sample_seconds = 0;
};

struct Sample {
    int64_t rows = 0;
    int64_t table_bytes = 0;
    double seconds = 0;
};

/// Copies TABLESAMPLE SYSTEM (percent) of the source's copy columns through a
/// binary COPY pipe, as the copy workers do, into a temporary table in a
/// transaction of `writer` that is rolled back; `reader` is the plan's READ
/// ONLY transaction.
Sample copy_sample(pg::Connection& reader, pg::Connection& writer, const TableInfo& t,
                   const std::vector<std::string>& columns, double percent) {
    std::string cols;
    for (const auto& c : columns)
        cols += (cols.empty() ? "" : ", ") + reader.ident(c);
    const std::string temp = "pg_temp.pgshift_plan_sample";
    writer.exec("BEGIN");
    try {
        writer.exec("CREATE TEMPORARY TABLE pgshift_plan_sample (LIKE " +
                    writer.qualified(t.name.schema, t.name.name) + ")");
        char pct[32];
        std::snprintf(pct, sizeof pct, "%.6f", percent);
        auto t0 = std::chrono::steady_clock::now();
        reader.start_copy(
            "COPY (SELECT " + cols + " FROM " + reader.qualified(t.name.schema, t.name.name) +
                " TABLESAMPLE SYSTEM (" + pct + ") REPEATABLE (0)) TO STDOUT " + "(FORMAT binary)",
            PGRES_COPY_OUT);
        writer.start_copy("COPY " + temp + " (" + cols + ") FROM STDIN (FORMAT binary)",
                          PGRES_COPY_IN);
        while (true) {
            char* buf = nullptr;
            int n = PQgetCopyData(reader.raw(), &buf, 0);
            if (n == -2)
                reader.throw_error("COPY of the sample failed");
            if (n < 0)
                break;
            std::unique_ptr<char, void (*)(void*)> owned(buf, &PQfreemem);
            writer.put_copy_data({buf, static_cast<size_t>(n)});
        }
        reader.finish_copy_out();
        Sample s;
        s.rows = writer.end_copy_in().affected();
        s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        s.table_bytes = writer.exec("SELECT pg_table_size('" + temp + "')").i64(0, 0);
        writer.exec("ROLLBACK");
        return s;
    } catch (...) {
        writer.rollback_quietly();
        throw;
    }
}

/// Estimates from the source's sizes and a measured sample. Without a
/// sample (empty table, or the temporary table could not be made) the new
/// table is assumed to be as large as the source's heap and the copy time is
/// left at 0, and `method` says why.
Estimates estimate(pg::Connection& conn, const JobConfig& cfg, const TableInfo& t,
                   const ShadowPlan& plan) {
    Estimates e;
    e.rows = t.estimated_rows;
    e.source_bytes = t.total_bytes;
    e.partitions = all_partitions(plan.partitions).size();
    e.leaf_partitions = leaf_partitions(plan.partitions).size();
    auto sizes = conn.exec("SELECT pg_table_size(" + std::to_string(t.oid) + "), pg_indexes_size(" +
                           std::to_string(t.oid) + ")");
    int64_t source_table = sizes.i64(0, 0);
    e.index_bytes = sizes.i64(0, 1);
    e.new_table_bytes = source_table;
    if (t.heap_bytes == 0) {
        e.method = "the table is empty: nothing to copy";
    } else {
        e.sample_percent = std::min(100.0, 100.0 * static_cast<double>(kSampleTargetBytes) /
                                               static_cast<double>(t.heap_bytes));
        try {
            pg::ConnectOptions co;
            co.application_name = job_application_name(cfg) + "/plan-sample";
            auto writer = pg::Connection::open(cfg.dsn, co);
            Sample s = copy_sample(conn, writer, t, plan.copy_columns, e.sample_percent);
            e.measured = s.rows > 0;
            e.sample_rows = s.rows;
            e.sample_bytes = s.table_bytes;
            e.sample_seconds = s.seconds;
            if (e.measured) {
                // Per-row figures from the sample; the row count from the
                // statistics when the table has been analyzed (exact after
                // VACUUM), else extrapolated from the sample.
                if (e.rows <= 0)
                    e.rows = static_cast<int64_t>(static_cast<double>(s.rows) * 100.0 /
                                                  e.sample_percent);
                double per_row = static_cast<double>(e.rows) / static_cast<double>(s.rows);
                e.new_table_bytes =
                    static_cast<int64_t>(static_cast<double>(s.table_bytes) * per_row);
                // The sample is one stream into an unlogged table: a lower
                // bound per stream; workers divide it at best.
                e.copy_seconds = s.seconds * per_row;
                e.copy_seconds_workers = e.copy_seconds / cfg.copy_workers;
                e.method =
                    "measured: binary COPY of a TABLESAMPLE SYSTEM sample into a "
                    "temporary table, rolled back";
            } else {
                e.method = "the sample was empty (table too small or too sparse for " +
                           std::to_string(e.sample_percent) + "% of its pages)";
            }
        } catch (const pg::PgError& err) {
            e.method = std::string("not measured, the sample copy failed: ") + err.what();
        }
    }
    // The copy WAL-logs every row (a multi-insert record per page, ~10%
    // more than the heap) and CREATE INDEX logs every index page. The slot
    // retains all of it until the sync phase decodes past it.
    e.copy_wal_bytes = e.new_table_bytes + e.new_table_bytes / 10 + e.index_bytes;
    e.extra_disk_bytes = e.new_table_bytes + e.index_bytes + e.copy_wal_bytes;
    return e;
}

std::string method(const std::string& strategy) {
    return strategy == "list" ? "LIST" : strategy == "hash" ? "HASH" : "RANGE";
}

std::string layout(const JobConfig& cfg) {
    std::string s = method(cfg.strategy) + " (" + cfg.column + ")";
    if (!cfg.sub_strategy.empty())
        s += ", each partition by " + method(cfg.sub_strategy) + " (" + cfg.sub_column + ")";
    return s;
}

std::vector<std::string> steps(const JobConfig& cfg, const JobNames& n, const ShadowPlan& p) {
    return {
        "create " + n.shadow.display() + " PARTITION BY " + layout(cfg) + " with " +
            std::to_string(all_partitions(p.partitions).size()) + " partitions (" +
            std::to_string(leaf_partitions(p.partitions).size()) + " holding rows)",
        "CREATE PUBLICATION " + n.publication + " FOR TABLE " + n.source.display() +
            " (lock_timeout " + std::to_string(cfg.lock_timeout_ms) + " ms, retried)",
        "create replication origin " + n.origin,
        "CREATE_REPLICATION_SLOT " + n.slot + " LOGICAL pgoutput with an exported snapshot",
        "binary COPY of every row under that snapshot with " + std::to_string(cfg.copy_workers) +
            " workers",
        "build the primary key and " + std::to_string(p.index_renames.size()) +
            " index(es) on the shadow",
        "stream changes from the slot's consistent point into the shadow (exactly once via the "
        "origin)",
        std::string("cutover ") +
            (cfg.cutover_mode == CutoverMode::Auto ? "automatically" : "on `pgshift cutover`") +
            " once lag <= " + std::to_string(cfg.max_lag_bytes) +
            " bytes: LOCK ACCESS EXCLUSIVE (lock_timeout " + std::to_string(cfg.lock_timeout_ms) +
            " ms, up to " + std::to_string(cfg.max_attempts) +
            " attempts), barrier, rename swap, COMMIT",
        cfg.reverse
            ? "stream the new table's changes back into " + n.old.display() +
                  " until `pgshift finalize` (or `pgshift rollback` swaps back)"
            : "drop the slot, publication and origin; keep the old table as " + n.old.display(),
    };
}

struct PlanOutput {
    const ShadowPlan* plan = nullptr;
    std::vector<std::string> cutover_sql;
    std::vector<std::string> rollback_sql;
    Estimates estimates;
};

void print_list(const char* title, const std::vector<std::string>& sql) {
    if (sql.empty())
        return;
    std::printf("\n%s\n", title);
    for (const auto& s : sql)
        std::printf("%s;\n", s.c_str());
}

double mb(int64_t bytes) {
    return static_cast<double>(bytes) / (1 << 20);
}

void print_estimates(const Estimates& e, const JobConfig& cfg) {
    std::printf("\nEstimates:\n");
    std::printf("  rows ~%lld, source %.1f MB, %zu partitions (%zu holding rows)\n",
                static_cast<long long>(e.rows), mb(e.source_bytes), e.partitions,
                e.leaf_partitions);
    std::printf("  new table ~%.1f MB + indexes ~%.1f MB; WAL from the copy ~%.1f MB\n",
                mb(e.new_table_bytes), mb(e.index_bytes), mb(e.copy_wal_bytes));
    std::printf(
        "  extra disk at peak ~%.1f MB (new table, indexes, and the copy's WAL kept by "
        "the slot until the sync decodes past it)\n",
        mb(e.extra_disk_bytes));
    if (e.measured) {
        std::printf(
            "  copy time at least ~%.1f s in one stream (measured into an unlogged table; "
            "the real copy also writes WAL), ~%.1f s with %d workers at best; the index "
            "build comes on top\n",
            e.copy_seconds, e.copy_seconds_workers, cfg.copy_workers);
        std::printf("  sample: %.3f%% of the pages, %lld rows, %.2f MB in %.3f s\n",
                    e.sample_percent, static_cast<long long>(e.sample_rows), mb(e.sample_bytes),
                    e.sample_seconds);
    }
    std::printf("  method: %s\n", e.method.c_str());
}

void print_text(const JobConfig& cfg, const JobNames& n, const Preflight& pf,
                const PlanOutput* out) {
    std::string how = cfg.strategy == "range"  ? "interval " + cfg.interval.pg_interval()
                      : cfg.strategy == "hash" ? "modulus " + std::to_string(cfg.modulus)
                                               : std::string("one partition per value");
    std::printf("pgshift plan: %s -> partitioned by %s, %s (job %s)\n\n",
                n.source.display().c_str(), layout(cfg).c_str(), how.c_str(), cfg.job_name.c_str());
    std::printf("Checks:\n");
    print_checks(pf.checks);
    if (!out)
        return;
    const ShadowPlan& plan = *out->plan;
    std::printf("\nSteps:\n");
    int i = 0;
    for (const auto& s : steps(cfg, n, plan))
        std::printf("  %d. %s\n", ++i, s.c_str());
    print_estimates(out->estimates, cfg);
    if (!plan.notes.empty()) {
        std::printf("\nNotes:\n");
        for (const auto& note : plan.notes)
            std::printf("  - %s\n", note.c_str());
    }
    print_list("DDL before the copy:", plan.create_sql);
    print_list("DDL after the copy:", plan.index_sql);
    print_list("Cutover transaction (after LOCK and barrier):", out->cutover_sql);
    print_list("After the cutover commits:", plan.after_commit_sql);
    print_list("Rollback transaction (`pgshift rollback`, after LOCK and barrier):",
               out->rollback_sql);
    print_list("After a rollback commits:", plan.rollback_after_commit_sql);
}

nlohmann::json partition_json(const PartitionBound& p) {
    nlohmann::json j = {{"name", p.name},
                        {"from", p.from},
                        {"to", p.to},
                        {"values", p.bound_sql},
                        {"default", p.is_default}};
    for (const auto& sub : p.subpartitions)
        j["subpartitions"].push_back(partition_json(sub));
    return j;
}

void print_json(const JobConfig& cfg, const JobNames& n, const Preflight& pf,
                const PlanOutput* out) {
    nlohmann::json j;
    j["job"] = cfg.job_name;
    j["source"] = n.source.display();
    j["shadow"] = n.shadow.display();
    j["layout"] = layout(cfg);
    j["ok"] = !pf.failed();
    for (const auto& c : pf.checks) {
        j["checks"].push_back({{"name", c.name},
                               {"status", to_string(c.status)},
                               {"detail", c.detail},
                               {"fix", c.fix}});
    }
    if (out) {
        const ShadowPlan& plan = *out->plan;
        const Estimates& e = out->estimates;
        j["steps"] = steps(cfg, n, plan);
        j["notes"] = plan.notes;
        j["ddl"]["before_copy"] = plan.create_sql;
        j["ddl"]["after_copy"] = plan.index_sql;
        j["ddl"]["cutover"] = out->cutover_sql;
        j["ddl"]["after_cutover"] = plan.after_commit_sql;
        j["ddl"]["rollback"] = out->rollback_sql;
        j["ddl"]["after_rollback"] = plan.rollback_after_commit_sql;
        for (const auto& p : plan.partitions)
            j["partitions"].push_back(partition_json(p));
        j["estimates"] = {{"rows", e.rows},
                          {"source_bytes", e.source_bytes},
                          {"partitions", e.partitions},
                          {"leaf_partitions", e.leaf_partitions},
                          {"new_table_bytes", e.new_table_bytes},
                          {"index_bytes", e.index_bytes},
                          {"copy_wal_bytes", e.copy_wal_bytes},
                          {"extra_disk_bytes", e.extra_disk_bytes},
                          {"copy_seconds", e.copy_seconds},
                          {"copy_seconds_workers", e.copy_seconds_workers},
                          {"measured", e.measured},
                          {"method", e.method},
                          {"sample_percent", e.sample_percent},
                          {"sample_rows", e.sample_rows},
                          {"sample_bytes", e.sample_bytes},
                          {"sample_seconds", e.sample_seconds}};
    }
    std::printf("%s\n", j.dump(2).c_str());
}

}  // namespace

int plan_command(const JobConfig& cfg, PlanFormat format) {
    pg::ConnectOptions co;
    co.application_name = job_application_name(cfg) + "/plan";
    auto conn = pg::Connection::open(cfg.dsn, co);
    conn.exec("BEGIN READ ONLY");
    auto pf = run_preflight(conn, cfg, false);
    JobNames names = JobNames::from(cfg, conn.database());
    std::optional<ShadowPlan> plan;
    PlanOutput out;
    if (pf.table && !pf.failed()) {
        plan = make_shadow_plan(conn, cfg, *pf.table);
        out.plan = &*plan;
        SwapPlan swap{
            names,
            plan->index_renames,
            pf.table->sequences,
            plan->identity_always_columns,
            "UPDATE pgshift.jobs SET phase = 'done' WHERE job_name = " + conn.literal(cfg.job_name),
            plan->swap_sql,
            plan->after_commit_sql};
        out.cutover_sql = swap_statements(swap);
        swap.object_sql = plan->rollback_sql;
        swap.done_sql =
            "UPDATE pgshift.jobs SET phase = 'sync' WHERE job_name = " + conn.literal(cfg.job_name);
        out.rollback_sql = rollback_statements(swap);
        if (format != PlanFormat::Sql)
            out.estimates = estimate(conn, cfg, *pf.table, *plan);
    }
    conn.exec("ROLLBACK");
    const PlanOutput* shown = plan ? &out : nullptr;
    if (format == PlanFormat::Json) {
        print_json(cfg, names, pf, shown);
    } else if (format == PlanFormat::Sql && plan) {
        for (const auto& sql : plan->create_sql)
            std::printf("%s;\n", sql.c_str());
        for (const auto& sql : plan->index_sql)
            std::printf("%s;\n", sql.c_str());
    } else {
        print_text(cfg, names, pf, shown);
    }
    return pf.failed() ? kExitPrerequisite : kExitOk;
}

}  // namespace pgshift
