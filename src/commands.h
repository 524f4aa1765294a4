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

/// `pgshift rollback`: asks the running job (phase reverse) to swap back; the
/// old table becomes live again with every write made since the cutover, and
/// the forward stream resumes. Waits until it is done.
int rollback_command(const JobConfig& cfg);

/// `pgshift finalize [--drop-old]`: after cutover, ends the job: drops slots,
/// publications and origins, and the old table only when asked.
int finalize_command(const JobConfig& cfg, bool drop_old);

/// `pgshift verify [--json]`: chunked count/hash comparison of the old and
/// new tables and the partition-pruning check of [verify] query lines.
/// 0 when both pass, 1 on a difference or a query without pruning.
int verify_command(const JobConfig& cfg, bool json);

/// `pgshift maintain [--dry-run] [--handoff partman]`: premake partitions,
/// move rows out of the DEFAULT partition, apply [maintain] retention; with
/// handoff_partman, register the table with pg_partman 4.x instead of
/// premaking (maintain_partman.h). One run per job at a time.
int maintain_command(const JobConfig& cfg, bool dry_run, bool handoff_partman);

/// `pgshift partitions [--json]`: partitions with bounds, row estimates, sizes.
int partitions_command(const JobConfig& cfg, bool json);

}  // namespace pgshift
