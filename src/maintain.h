// Pure decisions of `pgshift maintain` (unit-tested in tests/unit/test_ops.cpp);
// the SQL that carries them out is in maintain_command.cpp.
//
// Partition ranges are compared in "key units" (seconds since the Unix epoch
// for time keys, the value for integer keys); MINVALUE / MAXVALUE bounds are
// the int64 extremes. A wanted partition is skipped when any existing
// partition overlaps its range, whatever that partition is called, so
// partitions made by hand are respected and a second run does nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "ops_target.h"
#include "pg/connection.h"
#include "shadow_ddl.h"

namespace pgshift {

/// [from, to) of a partition in key units; nullopt for DEFAULT or bounds
/// that could not be read.
std::optional<std::pair<int64_t, int64_t>> unit_range(const PartitionInfo& p);

/// Whether [from, to) overlaps any non-default partition.
bool overlaps_any(int64_t from, int64_t to, const std::vector<PartitionInfo>& parts);

/// `slots` are consecutive grid partitions from the oldest existing one up to
/// the one holding "now" (last). Keeping `retention` intervals means keeping
/// every partition that ends after now - retention intervals, i.e. the
/// current slot's start minus `retention` slots. Returns the lower bound
/// (literal) of the oldest slot kept, or nullopt when nothing is old enough
/// (or retention is 0).
std::optional<std::string> retention_cutoff(const std::vector<PartitionBound>& slots,
                                            int retention);

/// Non-default partitions whose whole range lies below `cutoff_units`, oldest first.
std::vector<const PartitionInfo*> expired_partitions(const std::vector<PartitionInfo>& parts,
                                                     int64_t cutoff_units);

/// Exponential backoff with a cap, for lock-timeout retries: 100 ms, 200 ms,
/// ... up to 5 s.
int backoff_ms(int attempt);

/// Runs fn in a transaction under SET LOCAL lock_timeout = [cutover]
/// lock_timeout_ms; a lock timeout (SQLSTATE 55P03) rolls back and retries
/// after backoff_ms(), up to [cutover] max_attempts, then rethrows. Any other
/// error rolls back and rethrows. `what` names the step in the retry warning.
void in_locked_transaction(pg::Connection& conn, const JobConfig& cfg, const std::string& what,
                           const std::function<void()>& fn);

// --- hand-off to pg_partman 4.x (pg_partman--4.7.2.sql, Debian
// postgresql-15-partman). PostgreSQL compares intervals with a month of 30
// days and a year of 12 months (src/backend/utils/adt/timestamp.c,
// interval_cmp_value), and so do these helpers.

/// Why the interval cannot be handed to pg_partman 4.x, or nullopt. A set
/// whose interval equals 3 months (also "90 days") is ordered by
/// show_partitions() as quarterly ("<table>_pYYYYqQ"), which pgshift's
/// names are not.
std::optional<std::string> partman_interval_problem(const PartitionInterval& iv);

/// The datetime_string create_parent() stores for a native time set made
/// with this interval (given as an interval, never as 'weekly' or
/// 'quarterly'): "YYYY", then "_MM" below a year, "_DD" below a month,
/// "_HH24MI" below a day. Partition names are
/// check_name_length(<parent>, to_char(<lower bound>, datetime_string), true).
std::string partman_datetime_string(const PartitionInterval& iv);

/// part_config.retention for [maintain] retention = N: N intervals as an
/// interval text ("12 months") or, for integer keys, N * step ("30000");
/// nullopt when N is 0 (keep everything). pg_partman drops a time partition
/// once its upper bound is older than now - retention and an integer
/// partition once its upper bound is <= max(key) - retention, which keeps
/// the same partitions as pgshift's "N intervals before the current one".
std::optional<std::string> partman_retention(const PartitionInterval& iv, int retention);

}  // namespace pgshift
