// What the operating commands (verify, maintain, partitions) work on, and
// the catalog facts they share.
//
// The partitioned table is the shadow (<table>__pgshift) while the job is
// copying or streaming and the user's table itself after cutover; its
// unpartitioned counterpart is the source during sync and
// <table>__pgshift_old after cutover. The phase recorded in pgshift.jobs
// decides which, so the commands never guess from names alone. Without a job
// row (the state was removed, or the table was partitioned some other way)
// a table that is already partitioned is still accepted, so `maintain` keeps
// working from cron long after the conversion.
//
// Partition bounds are read back with pg_get_expr(relpartbound) in a session
// whose TimeZone is UTC, so time bounds come out in the same form
// compute_partitions() writes ("2025-01-01 00:00:00+00"), and are converted
// to int64 "key units" (seconds since the Unix epoch, or the integer itself)
// by the server, so ranges can be compared without reimplementing its date
// parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "job_names.h"
#include "job_state.h"
#include "pg/connection.h"
#include "shadow_ddl.h"

namespace pgshift {

/// Bounds of one partition as written in pg_get_expr(relpartbound):
/// "FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00')",
/// "FOR VALUES FROM (0) TO (100)" or "DEFAULT". `from`/`to` are the literal
/// texts without quotes; MINVALUE / MAXVALUE are kept as words.
struct ParsedBound {
    bool is_default = false;
    std::string from;
    std::string to;
};

/// Parses a single-column RANGE bound expression; nullopt for anything else
/// (LIST / HASH bounds, multi-column ranges).
std::optional<ParsedBound> parse_range_bound(std::string_view expr);

struct PartitionInfo {
    std::string name;  ///< relname (same schema as the parent)
    std::string schema;
    std::string bound_expr;  ///< pg_get_expr(relpartbound), verbatim
    std::optional<ParsedBound> bound;
    /// Key units of from/to when both are plain values (not MINVALUE/MAXVALUE).
    std::optional<int64_t> from_units;
    std::optional<int64_t> to_units;
    int64_t est_rows = 0;  ///< reltuples, 0 when never analyzed (-1 on PG14+)
    int64_t bytes = 0;     ///< pg_total_relation_size
    bool detach_pending = false;
    bool is_default() const { return bound && bound->is_default; }
};

struct OpsTarget {
    std::optional<Phase> phase;  ///< nullopt without a row in pgshift.jobs
    bool after_cutover = false;
    /// A stream still writes the unpartitioned side's counterpart (sync:
    /// source -> shadow; reverse: new -> old), so differences may be lag.
    bool streaming = false;
    QualifiedName partitioned;                   ///< the partitioned table
    std::optional<QualifiedName> unpartitioned;  ///< source (sync) or old (after cutover)
    std::string key_column;
    std::string key_type;  ///< format_type of the key column, for casts
    KeyType key_kind = KeyType::Integer;
};

/// Opens a connection for an operating command with TimeZone = UTC.
pg::Connection open_ops_connection(const JobConfig& cfg, const std::string& what);

/// Decides which tables the command works on; PrerequisiteError (exit 3)
/// when there is no partitioned table yet (job not started or still in
/// prepare) or the key column is missing or of an unsupported type.
OpsTarget resolve_target(pg::Connection& conn, const JobConfig& cfg);

/// Every direct partition of `parent`, ordered by lower bound (DEFAULT last).
std::vector<PartitionInfo> list_partitions(pg::Connection& conn, const OpsTarget& target);

/// Key-unit values (epoch seconds or integers) of literal texts of the key's
/// type, converted by the server in one round trip.
std::vector<int64_t> to_key_units(pg::Connection& conn, const OpsTarget& target,
                                  const std::vector<std::string>& literals);

/// SQL expression turning the key column into key units (for min/max).
std::string key_units_expr(const pg::Connection& conn, const OpsTarget& target,
                           const std::string& alias);

/// Wall-clock now in seconds since the Unix epoch.
int64_t epoch_now();

}  // namespace pgshift
