// Pure generation of the shadow table's DDL: partition bounds from the data's
// key range, CREATE TABLE ... PARTITION BY RANGE, partitions, and the primary
// key and indexes built after the snapshot copy. No I/O, so every rule is
// unit-tested (tests/unit/test_shadow_ddl.cpp).
//
// Why the primary key changes: PostgreSQL requires every unique constraint of
// a partitioned table to include all partition key columns (docs "Table
// Partitioning", 5.11.2.3 Limitations), so PRIMARY KEY (id) becomes
// PRIMARY KEY (id, created_at) and the plan says so.
//
// Bounds are computed in UTC: minute, hour and day steps are aligned on the
// Unix epoch, weeks on Mondays, months and years on the calendar. Names are
// <table>_pYYYY, _pYYYY_MM, _pYYYY_MM_DD, _pYYYY_MM_DD_HH, _pYYYY_MM_DD_HHMM
// for time keys and <table>_p<lower bound> for integer keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "inspector.h"
#include "job_names.h"

namespace pgshift {

inline constexpr size_t kMaxPartitions = 5000;

struct PartitionBound {
    std::string name;
    std::string from;  ///< SQL literal text of the lower bound (inclusive), unquoted
    std::string to;    ///< upper bound (exclusive), unquoted
    bool is_default = false;
    /// LIST / HASH: the text after FOR VALUES ("IN ('a')", "WITH (MODULUS 4,
    /// REMAINDER 1)"); empty for RANGE, which uses from/to.
    std::string bound_sql = {};
    /// Two levels: this partition is itself partitioned into these.
    std::vector<PartitionBound> subpartitions = {};
};

/// Two levels: gives every partition of `parents` the bounds of `layout`,
/// computed with an empty table name so that its names are bare suffixes
/// ("_h3", "_p2025_01", "_default"). Each sub-partition is named
/// <parent name><suffix>, shortened like any name (suffixed_name):
/// events_p2025_01_h3 (RANGE -> HASH), events_l_eu_p2025_01 (LIST -> RANGE).
/// Throws std::runtime_error when the leaves would exceed kMaxPartitions.
std::vector<PartitionBound> with_subpartitions(std::vector<PartitionBound> parents,
                                               const std::vector<PartitionBound>& layout);

/// Every partition of both levels, parents before their sub-partitions.
std::vector<const PartitionBound*> all_partitions(const std::vector<PartitionBound>& partitions);

/// The partitions that hold rows (no sub-partitions of their own).
std::vector<const PartitionBound*> leaf_partitions(const std::vector<PartitionBound>& partitions);

/// "HASH ("tenant")" / "RANGE ("day")" of the second level; empty for one level.
std::string subpartition_method(const JobConfig& cfg);

/// CREATE TABLE ... PARTITION OF `parent` for `p`, then (two levels) for each
/// of its sub-partitions, with `sub_method` (subpartition_method) on `p`.
/// `reloptions` go to leaves only: a partitioned table holds no storage
/// parameters. Also what `maintain` needs to add a partition to a two-level table.
std::vector<std::string> partition_create_sql(const PartitionBound& p, const QualifiedName& parent,
                                              const std::string& sub_method,
                                              const std::vector<std::string>& reloptions);

/// HASH: partitions <table>_h0 .. <table>_h<modulus-1>.
std::vector<PartitionBound> compute_hash_partitions(const std::string& table_name, int modulus);

/// LIST: one partition per value, named <table>_l_<slug> (slug: lower-case
/// letters and digits of the value, other runs as "_", "null" for NULL,
/// "empty" for '', a numeric suffix when two slugs collide), plus
/// <table>_default. nullopt in `values` stands for NULL. Throws
/// std::runtime_error past kMaxPartitions.
std::vector<PartitionBound> compute_list_partitions(
    const std::string& table_name, const std::vector<std::optional<std::string>>& values);

/// The slug of a LIST value used in partition names.
std::string list_value_slug(const std::optional<std::string>& value);

enum class KeyType { Integer, Date, Timestamp, TimestampTz };

/// Key type of a partition column from its type oid; throws std::invalid_argument otherwise.
KeyType key_type_of(uint32_t type_oid);

/// Partitions covering [range.min, max(range.max, now)] plus `premake` more,
/// plus a DEFAULT partition when asked. range is seconds since the Unix epoch
/// for time keys, the value itself for integer keys; nullopt (empty table)
/// starts at `now` (time) or 0 (integer). Throws std::runtime_error when more
/// than kMaxPartitions would be needed.
std::vector<PartitionBound> compute_partitions(const std::string& table_name, KeyType key,
                                               const PartitionInterval& interval,
                                               std::optional<KeyRange> range, int64_t now_epoch,
                                               int premake, bool with_default);

struct IndexRename {
    std::string shadow_name;    ///< index name on the shadow while the job runs
    std::string original_name;  ///< the source index name it takes at cutover
    bool operator==(const IndexRename&) const = default;
};

struct ShadowPlan {
    std::vector<PartitionBound> partitions;
    std::vector<std::string> create_sql;  ///< table and partitions, before the copy
    std::vector<std::string> index_sql;   ///< primary key and indexes, after the copy
    std::vector<IndexRename> index_renames;
    std::vector<std::string> notes;         ///< changes the user must know about
    std::vector<std::string> copy_columns;  ///< non-generated columns in attnum order
    std::vector<std::string> key_columns;   ///< primary key of the shadow (widened)
    /// GENERATED ALWAYS identity columns, created BY DEFAULT on the shadow and
    /// switched back to ALWAYS in the cutover transaction.
    std::vector<std::string> identity_always_columns;
    /// Run in the cutover transaction after the renames, where the source's
    /// name already means the new table: triggers switched on, FORCE RLS,
    /// owner, foreign keys (NOT VALID), dependent views, publications,
    /// extended statistics renamed; and the old table, which becomes the
    /// reverse stream's target, loses what would act on it from outside:
    /// its triggers are disabled, FORCE RLS is lifted, its outgoing foreign
    /// keys are dropped. Runs again at every later cutover (after a rollback).
    std::vector<std::string> swap_sql;
    /// Run after the cutover transaction commits: VALIDATE CONSTRAINT of the
    /// re-added foreign keys, then attaching the per-partition ones to the root.
    std::vector<std::string> after_commit_sql;
    /// The exact inverse of swap_sql, run in a rollback transaction after the
    /// names are swapped back (the source's name means the old table again,
    /// the shadow's name the partitioned one).
    std::vector<std::string> rollback_sql;
    /// Run after a rollback commits: VALIDATE CONSTRAINT of what rollback_sql
    /// added NOT VALID.
    std::vector<std::string> rollback_after_commit_sql;
};

/// Whether a foreign key referencing `ref_columns` of the source can reference
/// the partitioned table: some unique key of the source, widened with the
/// partition columns (JobConfig::partition_columns), has exactly those columns.
bool referenceable_after_widening(const TableInfo& source,
                                  const std::vector<std::string>& partition_columns,
                                  const std::vector<std::string>& ref_columns);

/// Builds the plan. Identifiers are quoted with pg::quote_ident_offline,
/// which produces the same text as libpq's PQescapeIdentifier.
ShadowPlan plan_shadow(const TableInfo& source, const JobConfig& cfg, const JobNames& names,
                       const std::vector<PartitionBound>& partitions);

}  // namespace pgshift
