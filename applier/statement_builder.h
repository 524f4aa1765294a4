// Pure SQL generation for applying decoded changes to a target table.
//
// Rules (protocol.md A5; PostgreSQL worker.c apply_handle_*):
// - 'u' (unchanged TOAST) columns are never written: an UPDATE sets only the
//   columns the source sent, so the target keeps its stored value.
// - Generated columns are never written; the target computes them.
// - Rows are found by the replica identity: the old-tuple key ('K'), the whole
//   old row ('O', REPLICA IDENTITY FULL) or, when no old tuple is sent (the key
//   did not change), the key columns of the new tuple. Under FULL, a unique key
//   of the target is used when the old row carries it, otherwise every column
//   is compared NULL-safely and exactly one matching row is changed.
// - Values travel as text parameters cast to the target column's type, so the
//   target's input functions parse them as the source's output functions wrote them.
// - UPDATE and DELETE must touch exactly one row; zero means the shadow and
//   the source disagree, and the job stops rather than silently skipping.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "decoder/pgoutput_messages.h"

namespace pgshift {

/// A change that cannot be applied (missing column, no usable identity).
class ApplyError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// A statement covering several changes (a set-based UPDATE/DELETE, a COPY)
/// failed; which change caused it is found by applying them one by one.
class BatchApplyError : public ApplyError {
  public:
    using ApplyError::ApplyError;
};

struct TargetColumn {
    std::string name;
    std::string type;  ///< format_type() text used in parameter casts
    bool generated = false;
    bool identity_always = false;
    bool has_equality = true;  ///< the type has an "=" operator
};

struct TargetTable {
    std::string qualified;  ///< quoted "schema"."table"
    std::vector<TargetColumn> columns;
    std::vector<std::string> unique_key;  ///< columns identifying a row on the source (its PK)
    std::string partition_column;

    const TargetColumn* find(const std::string& name) const;
    bool has_identity_always() const;
};

/// Where the value of parameter $n comes from.
struct ParamRef {
    bool from_old = false;  ///< old tuple ('K'/'O') rather than the new tuple
    int column = 0;         ///< index into the Relation's column list / TupleData
};

struct ApplyStatement {
    std::string sql;
    std::vector<ParamRef> params;
    bool expect_one_row = false;
    size_t key_params_from = 0;  ///< params before this index are SET values
    /// Set-based form: parameter $n is a text[] holding the n-th value of
    /// every row of a run (see build_update).
    bool batch = false;
    bool empty() const { return sql.empty(); }
};

ApplyStatement build_insert(const pgoutput::RelationMsg& rel, const TargetTable& target,
                            const pgoutput::TupleData& tuple);
/// Returns an empty statement when the source sent nothing to set. Without
/// an old key (the replica identity is unchanged) the identity's columns are
/// left out of SET.
///
/// With batch = true, the set-based form of the same statement for a run of
/// changes with this shape (same relation, same columns sent, same kinds of
/// old values): `UPDATE t AS t SET c = u.p1::type, ... FROM unnest($1::text[],
/// ...) AS u(p1, ...) WHERE t.key = u.pk::type ...`, one text[] per ParamRef,
/// values in the same text form as single-row parameters (so the same input
/// functions parse them, arrays and domains included). The executor joins
/// the unnest to the partitioned target with a nested loop whose inner
/// Append prunes per row (executor/execPartition.c, run-time pruning), so
/// each row costs one index probe; the affected row count must equal the
/// run's length. The caller must not put two changes of one row in a run.
/// Empty when the row can only be found by comparing the whole old row
/// (REPLICA IDENTITY FULL without a usable key): such changes go one by one.
ApplyStatement build_update(const pgoutput::RelationMsg& rel, const TargetTable& target,
                            const pgoutput::UpdateMsg& msg, bool batch = false);
/// As build_update; the set-based form is `DELETE FROM t AS t USING
/// unnest(...) AS u(...) WHERE ...`.
ApplyStatement build_delete(const pgoutput::RelationMsg& rel, const TargetTable& target,
                            const pgoutput::DeleteMsg& msg, bool batch = false);
std::string build_truncate(const std::vector<const TargetTable*>& targets, uint8_t flags);

/// "COPY <target> (<columns>) FROM STDIN" for a run of inserts: every
/// Relation column that is not generated on the target, in Relation order.
std::string build_copy_in(const pgoutput::RelationMsg& rel, const TargetTable& target);
/// Appends one row in COPY text format (docs "COPY", File Formats > Text
/// Format): values escaped (backslash, newline, carriage return, tab), NULL as
/// \N, tab-separated, newline-terminated; the column set of build_copy_in.
/// Throws ApplyError for 'u' or 'b' values.
void append_copy_row(std::string& out, const pgoutput::RelationMsg& rel, const TargetTable& target,
                     const pgoutput::TupleData& tuple);

/// Text values for the statement's parameters; nullopt is SQL NULL. Throws
/// ApplyError for binary or unchanged-TOAST values (never valid parameters).
std::vector<std::optional<std::string>> bind_params(const ApplyStatement& stmt,
                                                    const pgoutput::TupleData* old_tuple,
                                                    const pgoutput::TupleData& new_tuple);

/// "col=value, ..." of the columns that identify the row, for error messages.
std::string describe_key(const pgoutput::RelationMsg& rel, const ApplyStatement& stmt,
                         const pgoutput::TupleData* old_tuple,
                         const pgoutput::TupleData& new_tuple);

}  // namespace pgshift
