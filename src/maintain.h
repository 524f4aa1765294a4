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
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ops_target.h"
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

}  // namespace pgshift
