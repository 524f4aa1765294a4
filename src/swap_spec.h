// What every swap of a job (cutover, rollback, cutover again) needs to know
// about the original table, captured once before the shadow is created and
// kept in pgshift.jobs.swap_spec (JSON): after the first cutover the source's
// catalog no longer shows it (index names are moved, the live table is the
// partitioned one), and a resumed job must still be able to swap either way.
#pragma once

#include <string>
#include <vector>

#include "inspector.h"
#include "shadow_ddl.h"

namespace pgshift {

struct SwapSpec {
    std::vector<IndexRename> index_renames;
    std::vector<SequenceLink> sequences;
    std::vector<std::string> identity_always_columns;
    std::vector<std::string> forward_key;       ///< the source's primary key columns (row lookup)
    std::vector<std::string> reverse_key;       ///< the shadow's primary key (widened)
    std::vector<std::string> object_sql;        ///< ShadowPlan::swap_sql (every cutover)
    std::vector<std::string> after_commit_sql;  ///< ShadowPlan::after_commit_sql
    std::vector<std::string> rollback_object_sql;        ///< ShadowPlan::rollback_sql
    std::vector<std::string> rollback_after_commit_sql;  ///< ShadowPlan::rollback_after_commit_sql

    static SwapSpec from(const TableInfo& source, const ShadowPlan& plan);
    std::string to_json() const;
    /// Throws std::runtime_error on malformed input.
    static SwapSpec from_json(const std::string& json);
    bool operator==(const SwapSpec&) const = default;
};

}  // namespace pgshift
