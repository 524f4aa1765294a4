// `pgshift partitions [--json]`: every partition of the partitioned table
// (the shadow during sync, the table itself after cutover) with its bound as
// PostgreSQL prints it, the planner's row estimate (reltuples; 0 until the
// partition was first vacuumed or analyzed) and its total size on disk.
// Estimates keep the command instant on large tables; `verify` counts exactly.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "commands.h"
#include "errors.h"
#include "ops_target.h"

namespace pgshift {

namespace {

std::string human_size(int64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
    return buf;
}

}  // namespace

int partitions_command(const JobConfig& cfg, bool json) {
    auto conn = open_ops_connection(cfg, "partitions");
    OpsTarget t = resolve_target(conn, cfg);
    auto parts = list_partitions(conn, t);
    int64_t rows = 0, bytes = 0;
    for (const auto& p : parts) {
        rows += p.est_rows;
        bytes += p.bytes;
    }
    if (json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& p : parts) {
            list.push_back({{"name", p.name},
                            {"schema", p.schema},
                            {"bound", p.bound_expr},
                            {"default", p.is_default()},
                            {"rows_estimate", p.est_rows},
                            {"bytes", p.bytes},
                            {"detach_pending", p.detach_pending}});
        }
        nlohmann::json out{{"job", cfg.job_name},
                           {"table", t.partitioned.display()},
                           {"after_cutover", t.after_cutover},
                           {"partition_key", t.key_column},
                           {"partitions", list},
                           {"total_rows_estimate", rows},
                           {"total_bytes", bytes}};
        std::printf("%s\n", out.dump(2).c_str());
        return kExitOk;
    }
    std::printf("%s (%s), partitioned by RANGE (%s): %zu partitions\n",
                t.partitioned.display().c_str(), t.after_cutover ? "after cutover" : "shadow",
                quote_identifier_if_needed(t.key_column).c_str(), parts.size());
    size_t w = 9;
    for (const auto& p : parts)
        w = std::max(w, p.name.size());
    std::printf("%-*s  %-64s %12s %10s\n", static_cast<int>(w), "partition", "bound", "rows (est)",
                "size");
    for (const auto& p : parts) {
        std::printf("%-*s  %-64s %12lld %10s%s\n", static_cast<int>(w), p.name.c_str(),
                    p.bound_expr.c_str(), static_cast<long long>(p.est_rows),
                    human_size(p.bytes).c_str(), p.detach_pending ? "  (detach pending)" : "");
    }
    std::printf("%-*s  %-64s %12lld %10s\n", static_cast<int>(w), "total", "",
                static_cast<long long>(rows), human_size(bytes).c_str());
    return kExitOk;
}

}  // namespace pgshift
