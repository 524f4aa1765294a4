// The job configuration file (JOB.ini).
//
// Read with inih's C API so every (section, key, value, line) is seen and
// unknown sections, unknown keys and duplicates can be rejected. The accepted
// keys live in one table per section in config.cpp (name, required,
// repeatable, parse function); docs/config.md is the user-facing reference.
//
// Every problem is reported as a ConfigError (exit code 2) whose message
// names the file, the line when known and the key as "section.key", e.g.
//   job.ini:7: partitioning.interval: "3 fortnights" is not an interval; use
//   "N minute|hour|day|week|month|year" or a positive integer
// The source DSN is never echoed in any message.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift {

/// A configuration problem; main() maps it to exit code 2.
class ConfigError : public std::runtime_error {
  public:
    using runtime_error::runtime_error;
};

/// A schema-qualified relation name, parts already unquoted/case-folded the
/// way PostgreSQL does it ("Events" -> events, "\"Events\"" -> Events).
struct QualifiedName {
    std::string schema;
    std::string name;

    /// For humans (logs, messages): "schema.name", each part double-quoted
    /// only when it does not match [a-z_][a-z0-9_$]*. Reserved words are NOT
    /// quoted (public.user), so this is not for building SQL; use quoted().
    std::string display() const;
    /// For SQL: both parts always double-quoted, embedded quotes doubled.
    std::string quoted() const;

    bool operator==(const QualifiedName&) const = default;
};

/// Parses one SQL identifier: unquoted (folded to lower case; letters, digits,
/// '_' and '$', not starting with a digit or '$') or double-quoted (case kept,
/// "" is a literal quote). Surrounding whitespace is ignored. Throws
/// ConfigError on empty input, unbalanced quotes, characters that need
/// quoting, or more than 63 bytes.
std::string parse_identifier(std::string_view text);

/// "events" -> public.events; "app.events"; "\"My Schema\".\"user\"".
/// Each part follows parse_identifier's rules; whitespace around the dot is
/// allowed. Throws ConfigError on empty parts, unbalanced quotes, > 63 bytes
/// per part, or more than one dot.
QualifiedName parse_qualified_name(std::string_view text);

/// "Identifier quoting only when needed": text as-is when it matches
/// [a-z_][a-z0-9_$]*, otherwise double-quoted with embedded quotes doubled.
std::string quote_identifier_if_needed(std::string_view ident);
/// Always double-quoted with embedded quotes doubled.
std::string quote_identifier(std::string_view ident);

enum class TimeUnit { Minute, Hour, Day, Week, Month, Year };

/// A partition width: a time interval ("1 month", "15 minutes") for
/// date/timestamp keys, or a positive integer step ("100000") for integer keys.
struct PartitionInterval {
    bool is_integer = false;
    int64_t count = 0;              ///< N of "N unit", or the integer step
    TimeUnit unit = TimeUnit::Day;  ///< meaningful when !is_integer

    /// PostgreSQL interval literal text with a plural unit ("15 minutes",
    /// "1 months"); for integer intervals the step as decimal text.
    std::string pg_interval() const;

    bool operator==(const PartitionInterval&) const = default;
};

/// Accepts "N unit" with unit minute|hour|day|week|month|year (singular or
/// plural, any case), a bare unit ("month" == "1 month"), or a positive integer
/// ("100000", integer step). Time counts are limited to 1..2147483647.
/// Throws ConfigError on 0, negatives, fractions, unknown units.
PartitionInterval parse_interval(std::string_view text);

/// Bytes from a PostgreSQL-style size: "1024" (bytes), "64kB", "512MB", "2GB",
/// "1TB" (units B|kB|MB|GB|TB, any case, multiples of 1024, optional space
/// before the unit). Zero is allowed; throws ConfigError on negatives,
/// fractions, unknown units and values above INT64_MAX.
int64_t parse_size(std::string_view text);

enum class CutoverMode { Auto, Manual, Window };

/// What `maintain` does with partitions older than [maintain] retention.
enum class RetentionAction { Detach, Archive, File, Drop };

/// A daily cutover window in the configured time zone, minutes after midnight;
/// end < start means the window spans midnight ("22:00-02:00").
struct CutoverWindow {
    int start_minute = 0;
    int end_minute = 0;
    bool operator==(const CutoverWindow&) const = default;
};

/// Parses "HH:MM-HH:MM"; throws ConfigError.
CutoverWindow parse_cutover_window(std::string_view text);

/// Seconds from `now_s` (seconds after midnight in [cutover] time_zone,
/// 0..86399) until the window opens; 0 while it is open.
int seconds_until_window(const CutoverWindow& w, int now_s);

/// Seconds until an open window closes; 0 while it is closed.
int seconds_until_window_closes(const CutoverWindow& w, int now_s);

/// The default job name for a table: its (unqualified) name lower-cased, each
/// byte outside [a-z0-9_] replaced by '_', cut to 40 characters.
std::string derive_job_name(const QualifiedName& table);

struct JobConfig {
    std::string path;  ///< file it was read from (origin for strings)
    // [job]
    std::string job_name;  ///< key "name"; [a-z0-9_]{1,40}; default derive_job_name(table)
    // [source]
    std::string dsn;      ///< required; libpq conninfo or URI, never with a password
    QualifiedName table;  ///< required, key "table"
    std::optional<std::string> shadow_name;  ///< key "shadow"; default <table>__pgshift (caller)
    // [partitioning]
    std::string strategy = "range";  ///< "range", "list" or "hash"
    std::string column;              ///< required; partition key column, as parse_identifier
    PartitionInterval interval;      ///< required
    int premake = 4;                 ///< 0..1000
    bool default_partition = false;
    /// Widen PRIMARY KEY / UNIQUE with the partition key (true), or refuse (exit 3).
    bool widen_unique = true;
    int modulus = 0;                       ///< strategy = hash: number of partitions, 2..1024
    std::vector<std::string> list_values;  ///< strategy = list: "values"; empty = from the data
    // [subpartitioning]: a second level under every partition (range -> hash,
    // list -> range, ...); empty sub_strategy means one level.
    std::string sub_strategy;        ///< key "strategy": "", "hash" or "range"
    std::string sub_column;          ///< key "column", as parse_identifier
    PartitionInterval sub_interval;  ///< key "interval", sub_strategy = range
    int sub_modulus = 0;             ///< key "modulus", sub_strategy = hash, 2..1024

    /// Partition key columns of every level, outermost first: {column} or
    /// {column, sub_column} (sub_column once when both are the same).
    std::vector<std::string> partition_columns() const;
    // [copy]
    int copy_workers = 2;              ///< key "workers", 1..64; also the parallel index builds
    int64_t copy_chunk_rows = 250000;  ///< key "chunk_rows", 1000..1e9: rows per copy chunk
    /// key "maintenance_work_mem": per index-building session, 1MB..64GB
    int64_t copy_maintenance_work_mem = 256LL << 20;
    /// key "pause_retained_wal": chunks wait while the slot retains more; 0 = off
    int64_t copy_pause_retained_wal = 0;
    /// key "pause_replay_lag": chunks wait while a standby replays further behind; 0 = off
    int64_t copy_pause_replay_lag = 1LL << 30;
    // [cutover]
    CutoverMode cutover_mode = CutoverMode::Auto;  ///< key "mode": auto|manual|window
    std::optional<CutoverWindow> cutover_window;   ///< key "window", required for mode window
    std::string time_zone = "UTC";                 ///< key "time_zone", for the window
    std::string postpone_file;        ///< key "postpone_file": cutover waits while it exists
    bool reverse = true;              ///< key "reverse": stream new -> old after cutover (rollback)
    int long_transaction_s = 5;       ///< key "long_transaction_s": report older lock holders
    bool cancel_blockers = false;     ///< key "cancel_blockers": cancel those (never by default)
    int lock_timeout_ms = 500;        ///< 1..60000
    int64_t max_lag_bytes = 1 << 20;  ///< size, 0..(max_retained_wal - 1)
    int max_attempts = 30;            ///< 1..1000
    int barrier_timeout_ms = 150;     ///< 100..600000, per attempt, under the lock
    // [safety]
    int64_t max_retained_wal = 2LL << 30;  ///< size, >= 16MB
    int reconnect_timeout_s = 300;         ///< 0..86400: reconnecting after a lost stream
    // [verify]
    std::vector<std::string> verify_queries;  ///< key "query", repeatable; hot queries to EXPLAIN
    bool verify_analyze = false;              ///< key "analyze": EXPLAIN ANALYZE (rolled back)
    int verify_rechecks = 3;                  ///< key "rechecks", 0..100
    int verify_recheck_wait_ms = 2000;        ///< key "recheck_wait_ms", 0..600000
    // [maintain]
    int retention = 0;  ///< intervals of data to keep; 0 keeps everything
    RetentionAction retention_action = RetentionAction::Detach;
    std::string archive_schema = "pgshift_archive";  ///< as parse_identifier
    std::string archive_dir;  ///< retention_action = file: directory for the CSV files
};

/// Parses JOB.ini text; `origin` names it in error messages and becomes
/// JobConfig::path.
JobConfig parse_config_string(std::string_view text, const std::string& origin = "<string>");

/// Reads and parses a file; ConfigError "cannot read config file X: reason"
/// if it cannot be read.
JobConfig load_config(const std::string& path);

}  // namespace pgshift
