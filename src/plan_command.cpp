#include <nlohmann/json.hpp>

#include <cstdio>

#include "commands.h"
#include "cutover/cutover_controller.h"
#include "errors.h"
#include "job_names.h"
#include "phase_controller.h"

namespace pgshift {

namespace {

struct Estimates {
    int64_t rows = 0;
    int64_t table_bytes = 0;
    int64_t extra_disk_bytes = 0;
    int64_t copy_wal_bytes = 0;
    double copy_seconds = 0;
};

// Rough figures until a measured sample replaces them: the copy rewrites the
// heap and builds the indexes again (extra disk ~ total size), WAL-logs about
// the same, and moves ~100 MB/s per worker on commodity disks.
Estimates estimate(const TableInfo& t, const JobConfig& cfg) {
    Estimates e;
    e.rows = t.estimated_rows;
    e.table_bytes = t.total_bytes;
    e.extra_disk_bytes = t.total_bytes;
    e.copy_wal_bytes = t.total_bytes;
    e.copy_seconds = static_cast<double>(t.heap_bytes) / (100.0 * (1 << 20) * cfg.copy_workers);
    return e;
}

std::string method(const JobConfig& cfg) {
    return cfg.strategy == "list" ? "LIST" : cfg.strategy == "hash" ? "HASH" : "RANGE";
}

std::vector<std::string> steps(const JobConfig& cfg, const JobNames& n, const ShadowPlan& p) {
    return {
        "create " + n.shadow.display() + " PARTITION BY " + method(cfg) + " (" + cfg.column +
            ") with " + std::to_string(p.partitions.size()) + " partitions",
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
        "drop the slot, publication and origin; keep the old table as " + n.old.display(),
    };
}

void print_text(const JobConfig& cfg, const JobNames& n, const Preflight& pf,
                const ShadowPlan* plan, const SwapPlan* swap) {
    std::string how = cfg.strategy == "range"  ? "interval " + cfg.interval.pg_interval()
                      : cfg.strategy == "hash" ? "modulus " + std::to_string(cfg.modulus)
                                               : std::string("one partition per value");
    std::printf("pgshift plan: %s -> partitioned by %s (%s), %s (job %s)\n\n",
                n.source.display().c_str(), method(cfg).c_str(), cfg.column.c_str(), how.c_str(),
                cfg.job_name.c_str());
    std::printf("Checks:\n");
    print_checks(pf.checks);
    if (!plan)
        return;
    std::printf("\nSteps:\n");
    int i = 0;
    for (const auto& s : steps(cfg, n, *plan))
        std::printf("  %d. %s\n", ++i, s.c_str());
    auto e = estimate(*pf.table, cfg);
    std::printf(
        "\nEstimates (rough):\n  rows ~%lld, table %lld MB, partitions %zu\n"
        "  extra disk ~%lld MB, WAL from the copy ~%lld MB, copy time ~%.0f s\n",
        static_cast<long long>(e.rows), static_cast<long long>(e.table_bytes >> 20),
        plan->partitions.size(), static_cast<long long>(e.extra_disk_bytes >> 20),
        static_cast<long long>(e.copy_wal_bytes >> 20), e.copy_seconds);
    if (!plan->notes.empty()) {
        std::printf("\nNotes:\n");
        for (const auto& note : plan->notes)
            std::printf("  - %s\n", note.c_str());
    }
    std::printf("\nDDL before the copy:\n");
    for (const auto& sql : plan->create_sql)
        std::printf("%s;\n", sql.c_str());
    std::printf("\nDDL after the copy:\n");
    for (const auto& sql : plan->index_sql)
        std::printf("%s;\n", sql.c_str());
    std::printf("\nCutover transaction (after LOCK and barrier):\n");
    for (const auto& sql : swap_statements(*swap))
        std::printf("%s;\n", sql.c_str());
    if (!swap->after_commit_sql.empty()) {
        std::printf("\nAfter the cutover commits:\n");
        for (const auto& sql : swap->after_commit_sql)
            std::printf("%s;\n", sql.c_str());
    }
}

void print_json(const JobConfig& cfg, const JobNames& n, const Preflight& pf,
                const ShadowPlan* plan, const SwapPlan* swap) {
    nlohmann::json j;
    j["job"] = cfg.job_name;
    j["source"] = n.source.display();
    j["shadow"] = n.shadow.display();
    j["ok"] = !pf.failed();
    for (const auto& c : pf.checks) {
        j["checks"].push_back({{"name", c.name},
                               {"status", to_string(c.status)},
                               {"detail", c.detail},
                               {"fix", c.fix}});
    }
    if (plan) {
        auto e = estimate(*pf.table, cfg);
        j["steps"] = steps(cfg, n, *plan);
        j["notes"] = plan->notes;
        j["ddl"]["before_copy"] = plan->create_sql;
        j["ddl"]["after_copy"] = plan->index_sql;
        j["ddl"]["cutover"] = swap_statements(*swap);
        j["ddl"]["after_cutover"] = nlohmann::json::array();
        for (const auto& sql : swap->after_commit_sql)
            j["ddl"]["after_cutover"].push_back(sql);
        for (const auto& p : plan->partitions) {
            j["partitions"].push_back({{"name", p.name},
                                       {"from", p.from},
                                       {"to", p.to},
                                       {"values", p.bound_sql},
                                       {"default", p.is_default}});
        }
        j["estimates"] = {{"rows", e.rows},
                          {"table_bytes", e.table_bytes},
                          {"extra_disk_bytes", e.extra_disk_bytes},
                          {"copy_wal_bytes", e.copy_wal_bytes},
                          {"copy_seconds", e.copy_seconds}};
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
    std::optional<SwapPlan> swap;
    if (pf.table && !pf.failed()) {
        plan = make_shadow_plan(conn, cfg, *pf.table);
        swap = SwapPlan{
            names,
            plan->index_renames,
            pf.table->sequences,
            plan->identity_always_columns,
            "UPDATE pgshift.jobs SET phase = 'done' WHERE job_name = " + conn.literal(cfg.job_name),
            plan->swap_sql,
            plan->after_commit_sql};
    }
    conn.exec("ROLLBACK");
    if (format == PlanFormat::Json) {
        print_json(cfg, names, pf, plan ? &*plan : nullptr, swap ? &*swap : nullptr);
    } else if (format == PlanFormat::Sql && plan) {
        for (const auto& sql : plan->create_sql)
            std::printf("%s;\n", sql.c_str());
        for (const auto& sql : plan->index_sql)
            std::printf("%s;\n", sql.c_str());
    } else {
        print_text(cfg, names, pf, plan ? &*plan : nullptr, swap ? &*swap : nullptr);
    }
    return pf.failed() ? kExitPrerequisite : kExitOk;
}

}  // namespace pgshift
