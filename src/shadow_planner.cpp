// make_shadow_plan (declared in phase_controller.h): the catalog and data
// reads the pure generator in shadow_ddl.cpp needs - the key range of RANGE
// levels, the distinct values of a LIST level - then plan_shadow. Used by
// `plan` (inside a READ ONLY transaction) and by `run`.
#include <chrono>

#include "phase_controller.h"

namespace pgshift {

namespace {

int64_t epoch_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// LIST values from the config, or the data's distinct values.
std::vector<std::optional<std::string>> list_values(pg::Connection& conn, const JobConfig& cfg,
                                                    const TableInfo& table) {
    std::vector<std::optional<std::string>> values(cfg.list_values.begin(), cfg.list_values.end());
    if (!values.empty())
        return values;
    auto r = conn.exec("SELECT DISTINCT " + conn.ident(cfg.column) + "::text FROM " +
                       conn.qualified(table.name.schema, table.name.name) +
                       " ORDER BY 1 NULLS LAST LIMIT " + std::to_string(kMaxPartitions + 1));
    for (int i = 0; i < r.rows(); ++i)
        values.push_back(r.opt(i, 0));
    return values;
}

/// RANGE partitions of `column` over the data's min/max (an index on the
/// column answers both without a scan), named after `table_name`.
std::vector<PartitionBound> range_partitions(pg::Connection& conn, const TableInfo& table,
                                             const std::string& table_name,
                                             const std::string& column,
                                             const PartitionInterval& interval, int premake,
                                             bool with_default) {
    const ColumnInfo* key = table.column(column);
    auto range = partition_key_range(conn, table, *key);
    return compute_partitions(table_name, key_type_of(key->type_oid), interval, range, epoch_now(),
                              premake, with_default);
}

}  // namespace

ShadowPlan make_shadow_plan(pg::Connection& conn, const JobConfig& cfg, const TableInfo& table) {
    JobNames names = JobNames::from(cfg, conn.database());
    const std::string& base = table.name.name;
    std::vector<PartitionBound> partitions;
    if (cfg.strategy == "hash") {
        partitions = compute_hash_partitions(base, cfg.modulus);
    } else if (cfg.strategy == "list") {
        partitions = compute_list_partitions(base, list_values(conn, cfg, table));
    } else {
        partitions = range_partitions(conn, table, base, cfg.column, cfg.interval, cfg.premake,
                                      cfg.default_partition);
    }
    // Second level: the same layout under every partition, computed with an
    // empty base name so that its names are suffixes of the parent's.
    if (cfg.sub_strategy == "hash") {
        partitions = with_subpartitions(partitions, compute_hash_partitions("", cfg.sub_modulus));
    } else if (cfg.sub_strategy == "range") {
        partitions = with_subpartitions(
            partitions, range_partitions(conn, table, "", cfg.sub_column, cfg.sub_interval,
                                         cfg.premake, cfg.default_partition));
    }
    return plan_shadow(table, cfg, names, partitions);
}

}  // namespace pgshift
