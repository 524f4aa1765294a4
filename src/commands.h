// The CLI commands other than `run` (which is PhaseController::run). Each
// returns the process exit code and throws ConfigError / PrerequisiteError /
// pg::PgError for main() to map.
#pragma once

#include <string>

#include "config.h"

namespace pgshift {

enum class PlanFormat { Text, Sql, Json };

/// `pgshift plan`: checks, DDL, steps and estimates. Runs in a READ ONLY
/// transaction that is rolled back, so it cannot write.
int plan_command(const JobConfig& cfg, PlanFormat format);

/// `pgshift status [--json]`: phase, counters, lag and the slot's retained WAL.
int status_command(const JobConfig& cfg, bool json);

/// `pgshift abort`: before cutover, stops a running job and drops its shadow,
/// slot, publication and origin. The source is left exactly as it was.
int abort_command(const JobConfig& cfg);

/// `pgshift cutover`: asks a running job (mode manual) to cut over now.
int cutover_command(const JobConfig& cfg);

}  // namespace pgshift
