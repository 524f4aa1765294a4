// Pure helpers of `pgshift verify`, kept apart from the SQL so they are
// unit-tested (tests/unit/test_ops.cpp).
//
// Data check: both tables are cut into the same chunks of the partition key
// (the job's partition grid, coarsened when it would be too fine) and each
// side computes, per chunk and on the server, count(*) and
// sum(hashtext(ROW(columns)::text)). A sum is order-independent, so the two
// scans need no ORDER BY and no client-side row traffic; one GROUP BY
// width_bucket(key, bounds) scan per table covers every chunk.
//
// Pruning check: EXPLAIN (FORMAT JSON) of each [verify] query. A partition
// is "scanned" when a plan node reads it; partitions removed at plan time
// are absent from the plan, and those removed at executor start-up are
// counted in "Subplans Removed". With EXPLAIN ANALYZE, a node that was never
// executed ("Actual Loops": 0) was pruned at run time and does not count.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pgshift {

struct PlanScan {
    std::vector<std::string> scanned;         ///< partitions read, in plan order, distinct
    int64_t subplans_removed = 0;             ///< sum over Append / MergeAppend nodes
    std::vector<std::string> never_executed;  ///< ANALYZE: present but Actual Loops = 0
};

/// Walks the output of EXPLAIN (FORMAT JSON) (the array with one object
/// holding "Plan") and reports which of `partitions` (relation names) the plan reads.
PlanScan analyze_plan(const nlohmann::json& explain, const std::set<std::string>& partitions);

/// count and hash sum of one chunk on one side.
struct ChunkSum {
    int64_t rows = 0;
    std::string hash_sum = "0";  ///< numeric text: sum of bigint hashes
    bool operator==(const ChunkSum&) const = default;
};

/// Chunks keyed by width_bucket number; nullopt is the chunk of NULL keys.
using ChunkMap = std::map<std::optional<int64_t>, ChunkSum>;

/// Bucket numbers whose count or hash differ (a bucket present on one side
/// only counts as differing unless it is empty there).
std::vector<std::optional<int64_t>> differing_chunks(const ChunkMap& left, const ChunkMap& right);

/// How one key differs after the re-checks.
enum class RowProblem { MissingInNew, ExtraInNew, Differs };
const char* to_string(RowProblem p);

/// Folds the two EXCEPT ALL sides (keys of rows only in the old/source
/// table, keys of rows only in the new table) into one problem per key:
/// a key on both sides has different contents.
std::vector<std::pair<std::string, RowProblem>> classify_rows(
    const std::vector<std::string>& only_left, const std::vector<std::string>& only_right);

}  // namespace pgshift
