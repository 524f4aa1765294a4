#include "statement_builder.h"

#include <algorithm>

#include "pg/connection.h"

namespace pgshift {

using pg::quote_ident_offline;
using pgoutput::ColumnKind;

const TargetColumn* TargetTable::find(const std::string& name) const {
    for (const auto& c : columns) {
        if (c.name == name)
            return &c;
    }
    return nullptr;
}

bool TargetTable::has_identity_always() const {
    return std::any_of(columns.begin(), columns.end(),
                       [](const TargetColumn& c) { return c.identity_always; });
}

namespace {

const TargetColumn& target_column(const pgoutput::RelationMsg& rel, const TargetTable& target,
                                  int i) {
    const auto& name = rel.columns[static_cast<size_t>(i)].name;
    const TargetColumn* col = target.find(name);
    if (!col) {
        throw ApplyError("source column \"" + name + "\" of \"" + rel.nspname + "\".\"" +
                         rel.relname + "\" does not exist in " + target.qualified);
    }
    return *col;
}

void check_width(const pgoutput::RelationMsg& rel, const pgoutput::TupleData& tuple) {
    if (tuple.size() != rel.columns.size()) {
        throw ApplyError("tuple of \"" + rel.relname + "\" has " + std::to_string(tuple.size()) +
                         " columns but its Relation message has " +
                         std::to_string(rel.columns.size()));
    }
}

/// The value of the next parameter, cast to the column's type: "$n::type",
/// or in the set-based form the n-th column of the unnest, "u.pn::type".
std::string param(ApplyStatement& stmt, ParamRef ref, const TargetColumn& col) {
    stmt.params.push_back(ref);
    std::string n = std::to_string(stmt.params.size());
    return (stmt.batch ? "u.p" + n : "$" + n) + "::" + col.type;
}

/// A target column in a predicate; qualified in the set-based form, where
/// the unnest's columns are in scope too.
std::string column_ref(const ApplyStatement& stmt, const TargetColumn& col) {
    return (stmt.batch ? "t." : "") + quote_ident_offline(col.name);
}

/// "unnest($1::text[], ...) AS u(p1, ...)": one text[] per parameter.
std::string unnest_rows(const ApplyStatement& stmt) {
    std::string args, names;
    for (size_t n = 1; n <= stmt.params.size(); ++n) {
        args += (n > 1 ? ", $" : "$") + std::to_string(n) + "::text[]";
        names += (n > 1 ? ", p" : "p") + std::to_string(n);
    }
    return "unnest(" + args + ") AS u(" + names + ")";
}

int column_index(const pgoutput::RelationMsg& rel, const std::string& name) {
    for (size_t i = 0; i < rel.columns.size(); ++i) {
        if (rel.columns[i].name == name)
            return static_cast<int>(i);
    }
    return -1;
}

bool has_value(const pgoutput::TupleData& t, int i) {
    return i >= 0 && t[static_cast<size_t>(i)].kind == ColumnKind::Text;
}

/// Equality on the given columns: the target's unique key (plus the partition
/// key for pruning) or the replica identity key columns.
std::string key_predicate(ApplyStatement& stmt, const pgoutput::RelationMsg& rel,
                          const TargetTable& target, const std::vector<int>& cols, bool from_old) {
    std::string where;
    for (int i : cols) {
        const TargetColumn& col = target_column(rel, target, i);
        if (!where.empty())
            where += " AND ";
        where += column_ref(stmt, col) + " = " + param(stmt, {from_old, i}, col);
    }
    return where;
}

/// NULL-safe comparison of every column of a full old row; used under
/// REPLICA IDENTITY FULL when no unique key is available.
std::string full_row_predicate(ApplyStatement& stmt, const pgoutput::RelationMsg& rel,
                               const TargetTable& target, const pgoutput::TupleData& key) {
    std::string where;
    for (int i = 0; i < static_cast<int>(rel.columns.size()); ++i) {
        const TargetColumn& col = target_column(rel, target, i);
        if (col.generated || key[static_cast<size_t>(i)].kind == ColumnKind::Unchanged)
            continue;
        if (!where.empty())
            where += " AND ";
        std::string lhs = quote_ident_offline(col.name);
        if (col.has_equality) {
            where += lhs + " IS NOT DISTINCT FROM " + param(stmt, {true, i}, col);
        } else {
            stmt.params.push_back({true, i});
            where += lhs + "::text IS NOT DISTINCT FROM $" + std::to_string(stmt.params.size()) +
                     "::text";
        }
    }
    return where;
}

/// Chooses how to find the row and returns the WHERE clause; nullopt in the
/// set-based form when only a comparison of the whole row could find it.
std::optional<std::string> row_predicate(ApplyStatement& stmt, const pgoutput::RelationMsg& rel,
                                         const TargetTable& target, pgoutput::OldTupleKind old_kind,
                                         const pgoutput::TupleData* old_tuple,
                                         const pgoutput::TupleData& new_tuple) {
    bool from_old = old_kind != pgoutput::OldTupleKind::None;
    const pgoutput::TupleData& key = from_old ? *old_tuple : new_tuple;
    std::vector<int> cols;
    if (old_kind == pgoutput::OldTupleKind::Full) {
        for (const auto& name : target.unique_key) {
            int i = column_index(rel, name);
            if (!has_value(key, i)) {
                cols.clear();
                break;
            }
            cols.push_back(i);
        }
        if (cols.empty()) {
            if (stmt.batch)
                return std::nullopt;
            std::string inner = full_row_predicate(stmt, rel, target, key);
            return "(tableoid, ctid) = (SELECT tableoid, ctid FROM " + target.qualified +
                   " WHERE " + inner + " LIMIT 1)";
        }
    } else {
        for (int i = 0; i < static_cast<int>(rel.columns.size()); ++i) {
            if (rel.columns[static_cast<size_t>(i)].is_key())
                cols.push_back(i);
        }
        if (cols.empty()) {
            throw ApplyError("\"" + rel.nspname + "\".\"" + rel.relname +
                             "\" sent an UPDATE/DELETE without replica identity columns");
        }
    }
    int part = column_index(rel, target.partition_column);
    bool part_in_cols = std::find(cols.begin(), cols.end(), part) != cols.end();
    // The old row's partition key lets the target prune to one partition; a
    // new tuple's may have changed, so only an old tuple's is used.
    if (from_old && !part_in_cols && has_value(key, part))
        cols.push_back(part);
    return key_predicate(stmt, rel, target, cols, from_old);
}

}  // namespace

ApplyStatement build_insert(const pgoutput::RelationMsg& rel, const TargetTable& target,
                            const pgoutput::TupleData& tuple) {
    check_width(rel, tuple);
    ApplyStatement stmt;
    std::string cols, vals;
    for (int i = 0; i < static_cast<int>(rel.columns.size()); ++i) {
        const TargetColumn& col = target_column(rel, target, i);
        if (col.generated || tuple[static_cast<size_t>(i)].kind == ColumnKind::Unchanged)
            continue;
        if (!cols.empty()) {
            cols += ", ";
            vals += ", ";
        }
        cols += quote_ident_offline(col.name);
        vals += param(stmt, {false, i}, col);
    }
    stmt.sql = "INSERT INTO " + target.qualified + " (" + cols + ")" +
               (target.has_identity_always() ? " OVERRIDING SYSTEM VALUE" : "") + " VALUES (" +
               vals + ")";
    return stmt;
}

ApplyStatement build_update(const pgoutput::RelationMsg& rel, const TargetTable& target,
                            const pgoutput::UpdateMsg& msg, bool batch) {
    check_width(rel, msg.new_tuple);
    const pgoutput::TupleData* old_tuple =
        msg.old_kind == pgoutput::OldTupleKind::None ? nullptr : &msg.old_tuple;
    if (old_tuple)
        check_width(rel, *old_tuple);
    ApplyStatement stmt;
    stmt.batch = batch;
    std::string set;
    for (int i = 0; i < static_cast<int>(rel.columns.size()); ++i) {
        const TargetColumn& col = target_column(rel, target, i);
        // Without an old key the replica identity did not change (proto.c
        // logicalrep_write_update sends one only then): its columns keep
        // their values, and leaving them out spares their input functions.
        bool unchanged_key = msg.old_kind == pgoutput::OldTupleKind::None &&
                             rel.columns[static_cast<size_t>(i)].is_key();
        if (col.generated || col.identity_always || unchanged_key ||
            msg.new_tuple[static_cast<size_t>(i)].kind == ColumnKind::Unchanged) {
            continue;
        }
        if (!set.empty())
            set += ", ";
        set += quote_ident_offline(col.name) + " = " + param(stmt, {false, i}, col);
    }
    if (set.empty())
        return {};
    stmt.key_params_from = stmt.params.size();
    auto where = row_predicate(stmt, rel, target, msg.old_kind, old_tuple, msg.new_tuple);
    if (!where)
        return {};
    stmt.sql = batch ? "UPDATE " + target.qualified + " AS t SET " + set + " FROM " +
                           unnest_rows(stmt) + " WHERE " + *where
                     : "UPDATE " + target.qualified + " SET " + set + " WHERE " + *where;
    stmt.expect_one_row = true;
    return stmt;
}

ApplyStatement build_delete(const pgoutput::RelationMsg& rel, const TargetTable& target,
                            const pgoutput::DeleteMsg& msg, bool batch) {
    check_width(rel, msg.old_tuple);
    ApplyStatement stmt;
    stmt.batch = batch;
    auto where = row_predicate(stmt, rel, target, msg.old_kind, &msg.old_tuple, msg.old_tuple);
    if (!where)
        return {};
    stmt.sql = batch ? "DELETE FROM " + target.qualified + " AS t USING " + unnest_rows(stmt) +
                           " WHERE " + *where
                     : "DELETE FROM " + target.qualified + " WHERE " + *where;
    stmt.expect_one_row = true;
    return stmt;
}

std::string build_truncate(const std::vector<const TargetTable*>& targets, uint8_t flags) {
    std::string sql = "TRUNCATE ";
    for (size_t i = 0; i < targets.size(); ++i)
        sql += (i ? ", " : "") + targets[i]->qualified;
    if (flags & pgoutput::TruncateMsg::kRestartIdentity)
        sql += " RESTART IDENTITY";
    return sql;
}

std::string build_copy_in(const pgoutput::RelationMsg& rel, const TargetTable& target) {
    std::string cols;
    for (int i = 0; i < static_cast<int>(rel.columns.size()); ++i) {
        const TargetColumn& col = target_column(rel, target, i);
        if (col.generated)
            continue;
        if (!cols.empty())
            cols += ", ";
        cols += quote_ident_offline(col.name);
    }
    return "COPY " + target.qualified + " (" + cols + ") FROM STDIN";
}

void append_copy_row(std::string& out, const pgoutput::RelationMsg& rel, const TargetTable& target,
                     const pgoutput::TupleData& tuple) {
    check_width(rel, tuple);
    bool first = true;
    for (int i = 0; i < static_cast<int>(rel.columns.size()); ++i) {
        if (target_column(rel, target, i).generated)
            continue;
        if (!first)
            out += '\t';
        first = false;
        const auto& v = tuple[static_cast<size_t>(i)];
        if (v.kind == ColumnKind::Null) {
            out += "\\N";
            continue;
        }
        if (v.kind != ColumnKind::Text) {
            throw ApplyError("column \"" + rel.columns[static_cast<size_t>(i)].name +
                             "\" of an INSERT has a value kind that cannot be applied ('" +
                             std::string(1, static_cast<char>(v.kind)) + "')");
        }
        // Copy the stretches between special characters in one go.
        const char* from = v.data.data();
        const char* end = from + v.data.size();
        for (const char* p = from; p < end; ++p) {
            char c = *p;
            if (c != '\\' && c != '\n' && c != '\r' && c != '\t')
                continue;
            out.append(from, static_cast<size_t>(p - from));
            out += '\\';
            out += c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            from = p + 1;
        }
        out.append(from, static_cast<size_t>(end - from));
    }
    out += '\n';
}

std::vector<std::optional<std::string>> bind_params(const ApplyStatement& stmt,
                                                    const pgoutput::TupleData* old_tuple,
                                                    const pgoutput::TupleData& new_tuple) {
    std::vector<std::optional<std::string>> values;
    values.reserve(stmt.params.size());
    for (const auto& p : stmt.params) {
        const auto& v = (p.from_old ? *old_tuple : new_tuple)[static_cast<size_t>(p.column)];
        switch (v.kind) {
            case ColumnKind::Null:
                values.emplace_back(std::nullopt);
                break;
            case ColumnKind::Text:
                values.emplace_back(v.data);
                break;
            default:
                throw ApplyError("column " + std::to_string(p.column) +
                                 " has a value kind that cannot be applied ('" +
                                 std::string(1, static_cast<char>(v.kind)) + "')");
        }
    }
    return values;
}

std::string describe_key(const pgoutput::RelationMsg& rel, const ApplyStatement& stmt,
                         const pgoutput::TupleData* old_tuple,
                         const pgoutput::TupleData& new_tuple) {
    std::string out;
    for (size_t n = stmt.key_params_from; n < stmt.params.size() && n < stmt.key_params_from + 8;
         ++n) {
        const auto& p = stmt.params[n];
        const auto& v = (p.from_old ? *old_tuple : new_tuple)[static_cast<size_t>(p.column)];
        if (!out.empty())
            out += ", ";
        out += rel.columns[static_cast<size_t>(p.column)].name + "=" +
               (v.kind == ColumnKind::Text ? v.data.substr(0, 64) : std::string("NULL"));
    }
    return out;
}

}  // namespace pgshift
