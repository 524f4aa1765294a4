// `pgshift maintain --handoff partman`: registers a converted table with
// pg_partman 4.x so that its run_maintenance() premakes partitions and
// applies retention from then on (pg_partman.md: create_parent(),
// part_config; SQL in /usr/share/postgresql/15/extension/pg_partman--4.7.2.sql,
// Debian package postgresql-15-partman).
//
// pg_partman finds partitions by name, not by bound: a partition of a time
// set is <parent>_p || to_char(lower bound, part_config.datetime_string), of
// an integer set <parent>_p || lower bound (check_name_length() shortens the
// parent's part to fit 63 bytes). The hand-off therefore refuses, before it
// changes anything, any table whose partitions are not named and sized that
// way, and lists the renames that would fix it. create_parent() always
// creates its own DEFAULT partition, so an existing one (emptied first by
// maintain's DEFAULT step) is dropped in the same transaction, under
// lock_timeout, in which create_parent() runs.
#pragma once

#include <optional>
#include <string>

#include "config.h"
#include "ops_target.h"
#include "pg/connection.h"

namespace pgshift {

/// The schema pg_partman is installed in when it manages `t.partitioned`
/// (a row in part_config); nullopt when the extension is absent or the
/// table is not registered.
std::optional<std::string> partman_manager(pg::Connection& conn, const OpsTarget& t);

class PartmanHandoff {
  public:
    PartmanHandoff(pg::Connection& conn, const JobConfig& cfg, const OpsTarget& t, bool dry_run)
        : conn_(conn), cfg_(cfg), t_(t), dry_(dry_run) {}

    /// Every prerequisite, read-only: the extension (4.x) is installed, the
    /// job has cut over and was finalized, the table is RANGE-partitioned
    /// on one column with plain partitions, the interval, premake and
    /// retention action map onto part_config, timestamptz bounds are in UTC
    /// for new sessions, and the partition names are pg_partman's.
    /// PrerequisiteError (exit 3) naming the object and the fix otherwise.
    void check();

    /// Registers the table (or brings an existing registration's premake
    /// and retention in line with the job file) and prints each step; with
    /// dry_run only prints. Call after check() and after the DEFAULT
    /// partition was emptied. Returns the exit code.
    int apply();

  private:
    void say(const char* action, const std::string& what, const std::string& detail) const;
    std::string fn(const std::string& name) const;
    std::string parent_text() const;
    void check_installed();
    void check_converted() const;
    void check_strategy();
    void check_config() const;
    void check_time_zone() const;
    void check_names();
    std::string create_parent_sql();
    std::string config_update_sql(bool only_changes);
    void register_table(const std::string& create_sql, const std::string& update_sql);

    pg::Connection& conn_;
    const JobConfig& cfg_;
    const OpsTarget& t_;
    bool dry_;
    std::string schema_;   ///< pg_partman's schema
    std::string version_;  ///< extversion
};

}  // namespace pgshift
