// Read-only inspection of the server and the source table: catalog facts the
// planner, copier, applier and cutover need, and the prerequisite checks that
// `plan` prints and `run` enforces (exit 3) before anything is created.
//
// Catalog sources: pg_class, pg_attribute, pg_attrdef, pg_index,
// pg_get_indexdef(), pg_get_serial_sequence(), pg_settings, pg_roles,
// pg_replication_slots, pg_stat_replication; for the objects cloned onto the
// shadow: pg_constraint, pg_trigger, pg_policy, aclexplode(relacl/attacl),
// pg_description, pg_rewrite/pg_depend (views), pg_publication_rel,
// pg_statistic_ext, pg_inherits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "pg/connection.h"
#include "server_features.h"

namespace pgshift {

struct GrantInfo {
    std::string privilege;  ///< SELECT, INSERT, ...
    std::string grantee;    ///< quoted role name or PUBLIC
    bool grantable = false;
};

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
    char storage = 0;      ///< attstorage when it differs from the type's default, else 0
    char compression = 0;  ///< attcompression ('p' pglz, 'l' lz4), 0 for the default
    int stattarget = -1;   ///< attstattarget, -1 for the default
    std::optional<std::string> comment;
    std::vector<GrantInfo> grants;  ///< column privileges
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
    /// pg_get_constraintdef of that constraint: "UNIQUE (a) INCLUDE (b)"
    std::optional<std::string> constraint_def;
    bool exclusion = false;  ///< backs an EXCLUDE constraint
    std::optional<std::string> comment;
    std::optional<std::string> constraint_comment;
};

/// CHECK constraints and foreign keys (outgoing and incoming).
struct ConstraintInfo {
    std::string name;
    char type = 'c';         ///< 'c' CHECK, 'f' FOREIGN KEY, 'x' EXCLUDE
    std::string definition;  ///< pg_get_constraintdef (CHECK) or the rebuilt FOREIGN KEY text
    bool validated = true;
    bool no_inherit = false;
    std::optional<std::string> comment;
    // Foreign keys only.
    QualifiedName table;  ///< the referencing table (incoming) / referenced table (outgoing)
    bool table_partitioned = false;
    std::vector<std::string> columns;      ///< referencing columns
    std::vector<std::string> ref_columns;  ///< referenced columns
    std::string actions;                   ///< " MATCH FULL ON UPDATE ... ON DELETE ... DEFERRABLE"
};

struct TriggerInfo {
    std::string name;
    std::string definition;  ///< pg_get_triggerdef, table name schema-qualified
    char enabled = 'O';      ///< 'O' origin, 'D' disabled, 'R' replica, 'A' always
    std::optional<std::string> comment;
};

struct PolicyInfo {
    std::string name;
    bool permissive = true;
    std::string command;  ///< ALL, SELECT, INSERT, UPDATE, DELETE
    std::string roles;    ///< "PUBLIC" or quoted role names, comma separated
    std::optional<std::string> using_expr;
    std::optional<std::string> check_expr;
};

struct DependentView {
    QualifiedName name;
    char relkind = 'v';  ///< 'v' view, 'm' materialized view
    std::string definition;
    std::vector<std::string> options;  ///< reloptions (security_barrier=true, check_option=local)
};

/// An extended statistics object (CREATE STATISTICS) on the table.
struct StatisticsInfo {
    QualifiedName name;  ///< its own schema may differ from the table's
    std::string kinds;   ///< explicit kinds, "ndistinct, dependencies, mcv"; empty: expression only
    std::string columns;  ///< pg_get_statisticsobjdef_columns: "a, b" or "(a + b), c"
    int stattarget = -1;  ///< stxstattarget, -1 for the default
    std::optional<std::string> comment;
};

struct PublicationInfo {
    std::string name;
    bool filtered = false;  ///< has a row filter or a column list
};

struct SequenceLink {
    std::string column;
    std::string sequence;  ///< quoted, schema-qualified (pg_get_serial_sequence)
    bool identity = false;
    bool operator==(const SequenceLink&) const = default;
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
    std::string owner;            ///< quoted role name
    bool owner_assumable = true;  ///< current user may ALTER ... OWNER TO owner
    std::optional<std::string> comment;
    std::vector<std::string> reloptions;  ///< "fillfactor=70", "autovacuum_enabled=false"
    bool rls_enabled = false;
    bool rls_forced = false;
    std::vector<ConstraintInfo> constraints;   ///< CHECK, EXCLUDE and outgoing FOREIGN KEY
    std::vector<ConstraintInfo> incoming_fks;  ///< foreign keys of other tables referencing it
    std::vector<TriggerInfo> triggers;         ///< user triggers (not internal ones)
    std::vector<PolicyInfo> policies;
    std::vector<GrantInfo> grants;
    std::vector<DependentView> views;           ///< views and matviews reading the table
    std::vector<PublicationInfo> publications;  ///< explicit publication memberships
    std::vector<StatisticsInfo> statistics;     ///< extended statistics objects
    std::vector<std::string> rules;        ///< rewrite rules on the table itself (quoted names)
    std::vector<std::string> inheritance;  ///< inheritance parents/children (qualified)

    const ColumnInfo* column(const std::string& name) const;
    const IndexInfo* primary_key() const;
    /// The index the replica identity uses (PK for DEFAULT, the chosen index for
    /// USING INDEX), nullptr for FULL / NOTHING / DEFAULT without a PK.
    const IndexInfo* identity_index() const;
};

/// Reads the table's catalog entries; nullopt if it does not exist.
/// `job_publication` is left out of TableInfo::publications.
std::optional<TableInfo> inspect_table(pg::Connection& conn, const QualifiedName& table,
                                       const std::string& job_publication = "");

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
