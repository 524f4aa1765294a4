#include "rollback.h"

#include "pg/connection.h"

namespace pgshift {

using pg::quote_ident_offline;
using pg::quote_literal_offline;

namespace {

std::string set_identity(const QualifiedName& table, const std::string& column, const char* kind) {
    return "ALTER TABLE " + table.quoted() + " ALTER COLUMN " + quote_ident_offline(column) +
           " SET GENERATED " + kind;
}

}  // namespace

std::vector<std::string> rollback_statements(const SwapPlan& plan) {
    const auto& n = plan.names;
    std::vector<std::string> sql;
    sql.push_back("ALTER TABLE " + n.source.quoted() + " RENAME TO " +
                  quote_ident_offline(n.shadow.name));
    sql.push_back("ALTER TABLE " + n.old.quoted() + " RENAME TO " +
                  quote_ident_offline(n.source.name));
    for (const auto& r : plan.index_renames) {
        sql.push_back("ALTER INDEX " + QualifiedName{n.source.schema, r.original_name}.quoted() +
                      " RENAME TO " + quote_ident_offline(r.shadow_name));
        sql.push_back(
            "ALTER INDEX " +
            QualifiedName{n.source.schema, suffixed_name(r.original_name, "__pgshift_old")}
                .quoted() +
            " RENAME TO " + quote_ident_offline(r.original_name));
    }
    for (const auto& s : plan.sequences) {
        if (s.identity) {
            // The partitioned table's identity sequence ran ahead while it was
            // live; the old table's continues from it.
            sql.push_back("SELECT setval(" + quote_literal_offline(s.sequence) +
                          "::regclass, v) FROM (SELECT pg_sequence_last_value(" +
                          "pg_get_serial_sequence(" + quote_literal_offline(n.shadow.quoted()) +
                          ", " + quote_literal_offline(s.column) + ")::regclass) AS v) last" +
                          " WHERE v IS NOT NULL");
        } else {
            sql.push_back("ALTER SEQUENCE " + s.sequence + " OWNED BY " + n.source.quoted() + "." +
                          quote_ident_offline(s.column));
        }
    }
    for (const auto& col : plan.identity_always_columns) {
        sql.push_back(set_identity(n.source, col, "ALWAYS"));
        sql.push_back(set_identity(n.shadow, col, "BY DEFAULT"));
    }
    sql.insert(sql.end(), plan.object_sql.begin(), plan.object_sql.end());
    sql.push_back(plan.done_sql);
    return sql;
}

std::vector<std::string> reverse_target_statements(const SwapPlan& plan) {
    std::vector<std::string> sql;
    for (const auto& col : plan.identity_always_columns) {
        sql.push_back(set_identity(plan.names.old, col, "BY DEFAULT"));
    }
    return sql;
}

}  // namespace pgshift
