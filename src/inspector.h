// Read-only inspection of the server and the source table: catalog facts the
// planner, copier, applier and cutover need, and the prerequisite checks that
// `plan` prints and `run` enforces (exit 3) before anything is created.
//
// Catalog sources: pg_class, pg_attribute, pg_attrdef, pg_index,
// pg_get_indexdef(), pg_get_serial_sequence(), pg_settings, pg_roles,
// pg_replication_slots, pg_stat_replication.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "pg/connection.h"
#include "server_features.h"

namespace pgshift {

struct ColumnInfo {
    int attnum = 0;
    std::string name;
    std::string type;  ///< format_type(atttypid, atttypmod), e.g. "numeric(10,2)"
    uint32_t type_oid = 0;
    bool not_null = false;
    std::optional<std::string> default_expr;  ///< pg_get_expr of the default (not for generated)
    char identity = 0;                        ///< 'a' ALWAYS, 'd' BY DEFAULT, 0 none
    char generated = 0;                       ///< 's' stored generated column, 0 none
    std::optional<std::string> generation_expr;
    std::optional<std::string> collation;  ///< quoted "schema"."name" when not the type's default
};

struct IndexInfo {
    uint32_t oid = 0;
    std::string name;
    bool primary = false;
    bool unique = false;
    bool replica_identity = false;
    /// pg_get_indexdef() text after "ON <table> USING ": "btree (a, b) INCLUDE (c) WHERE ..."
    std::string using_clause;
    std::vector<std::string> key_columns;  ///< plain key columns; empty if any key is an expression
    bool has_expressions = false;
    bool partial = false;
    std::optional<std::string> constraint_name;  ///< set when it backs a PK/UNIQUE constraint
};

struct SequenceLink {
    std::string column;
    std::string sequence;  ///< quoted, schema-qualified (pg_get_serial_sequence)
    bool identity = false;
};

struct TableInfo {
    uint32_t oid = 0;
    QualifiedName name;
    char relkind = 'r';
    char replident = 'd';
    uint32_t relfilenode = 0;
    int64_t estimated_rows = 0;
    int64_t heap_bytes = 0;
    int64_t total_bytes = 0;
    int64_t heap_pages = 0;
    std::vector<ColumnInfo> columns;  ///< attnum order, dropped columns excluded
    std::vector<IndexInfo> indexes;
    std::vector<SequenceLink> sequences;

    const ColumnInfo* column(const std::string& name) const;
    const IndexInfo* primary_key() const;
    /// The index the replica identity uses (PK for DEFAULT, the chosen index for
    /// USING INDEX), nullptr for FULL / NOTHING / DEFAULT without a PK.
    const IndexInfo* identity_index() const;
};

/// Reads the table's catalog entries; nullopt if it does not exist.
std::optional<TableInfo> inspect_table(pg::Connection& conn, const QualifiedName& table);

/// Whether a relation (table, index, sequence, view) of that name exists.
bool relation_exists(pg::Connection& conn, const QualifiedName& name);

/// min/max of the partition column as seconds since the Unix epoch (time
/// types, UTC) or as the integer itself. Uses the planner's min/max index
/// optimisation when the column is indexed. nullopt for an empty table.
struct KeyRange {
    int64_t min = 0;
    int64_t max = 0;
};
std::optional<KeyRange> partition_key_range(pg::Connection& conn, const TableInfo& table,
                                            const ColumnInfo& column);

struct Check {
    enum class Status { Pass, Warn, Fail };
    std::string name;
    Status status = Status::Pass;
    std::string detail;  ///< what was found
    std::string fix;     ///< what to do (exact SQL or setting) when not Pass
};

struct Preflight {
    ServerFeatures features;
    std::optional<TableInfo> table;
    std::vector<Check> checks;
    bool failed() const;
};

/// Runs every prerequisite check. Never writes. `resuming` skips the checks
/// that the job's own objects would fail (shadow, slot and publication exist).
Preflight run_preflight(pg::Connection& conn, const JobConfig& cfg, bool resuming);

const char* to_string(Check::Status s);

}  // namespace pgshift
