#include "inspector.h"

#include <algorithm>

#include "job_names.h"
#include "shadow_ddl.h"

namespace pgshift {

const ColumnInfo* TableInfo::column(const std::string& n) const {
    for (const auto& c : columns) {
        if (c.name == n)
            return &c;
    }
    return nullptr;
}

const IndexInfo* TableInfo::primary_key() const {
    for (const auto& i : indexes) {
        if (i.primary)
            return &i;
    }
    return nullptr;
}

const IndexInfo* TableInfo::identity_index() const {
    if (replident == 'd')
        return primary_key();
    if (replident == 'i') {
        for (const auto& i : indexes) {
            if (i.replica_identity)
                return &i;
        }
    }
    return nullptr;
}

namespace {

constexpr const char* kTableSql = R"SQL(
SELECT c.oid, c.relkind, c.relreplident, c.relfilenode,
       GREATEST(c.reltuples, 0)::bigint, pg_relation_size(c.oid), pg_total_relation_size(c.oid),
       c.relpages, quote_ident(pg_get_userbyid(c.relowner)),
       pg_has_role(current_user, c.relowner, 'USAGE'), obj_description(c.oid, 'pg_class'),
       array_to_string(c.reloptions, E'\x1f'), c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2
)SQL";

constexpr const char* kColumnsSql = R"SQL(
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.attnotnull,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       a.attidentity, a.attgenerated,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
       CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END,
       a.attcompression::text, COALESCE(a.attstattarget::int, -1),
       col_description(a.attrelid, a.attnum),
       (SELECT string_agg(x.privilege_type || E'\x1e' ||
                          CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                               ELSE quote_ident(pg_get_userbyid(x.grantee)) END ||
                          E'\x1e' || x.is_grantable::text, E'\x1f')
          FROM aclexplode(a.attacl) x)
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
  LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
)SQL";

// The text after "ON <schema>.<table> USING " in pg_get_indexdef() is the
// access method, keys, INCLUDE, WITH and WHERE clauses: exactly what a clone
// on another table needs. The prefix is rebuilt with quote_ident, the same
// quoting pg_get_indexdef uses, so the split is exact for any table name.
constexpr const char* kIndexesSql = R"SQL(
SELECT i.indexrelid, ic.relname, i.indisprimary, i.indisunique, i.indisreplident,
       substr(pg_get_indexdef(i.indexrelid),
              strpos(pg_get_indexdef(i.indexrelid),
                     ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' USING ')
              + length(' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' USING ')),
       i.indexprs IS NOT NULL, i.indpred IS NOT NULL,
       (SELECT string_agg(a.attname, E'\x1f' ORDER BY k.ord)
          FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum),
       con.conname, pg_get_constraintdef(con.oid), i.indisexclusion,
       obj_description(i.indexrelid, 'pg_class'), obj_description(con.oid, 'pg_constraint')
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
       AND con.contype IN ('p', 'u')
 WHERE i.indrelid = $1
 ORDER BY i.indisprimary DESC, ic.relname
)SQL";

// Referencing columns (conkey) and referenced columns (confkey) by name,
// unit-separated; the actions are rebuilt so the FOREIGN KEY text can name
// its referenced table explicitly.
constexpr const char* kConstraintSelect = R"SQL(
SELECT con.conname, con.contype, pg_get_constraintdef(con.oid), con.convalidated,
       con.connoinherit, obj_description(con.oid, 'pg_constraint'), tn.nspname, tc.relname,
       tc.relkind = 'p',
       (SELECT string_agg(a.attname, E'\x1f' ORDER BY k.ord)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum),
       (SELECT string_agg(a.attname, E'\x1f' ORDER BY k.ord)
          FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum),
       CASE con.confmatchtype WHEN 'f' THEN ' MATCH FULL' ELSE '' END
       || ' ON UPDATE ' || CASE con.confupdtype WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
                          WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END
       || ' ON DELETE ' || CASE con.confdeltype WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
                          WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END
       || CASE WHEN con.condeferrable THEN ' DEFERRABLE' ELSE '' END
       || CASE WHEN con.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END
  FROM pg_constraint con
)SQL";

// Outgoing: the other table is the referenced one.
constexpr const char* kOutgoingFrom = R"SQL(
  LEFT JOIN pg_class tc ON tc.oid = con.confrelid
  LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
 WHERE con.conrelid = $1 AND con.contype IN ('c', 'f', 'x')
 ORDER BY con.conname
)SQL";

// Incoming: the other table is the referencing one (self-references are outgoing).
constexpr const char* kIncomingFrom = R"SQL(
  JOIN pg_class tc ON tc.oid = con.conrelid
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
 WHERE con.confrelid = $1 AND con.conrelid <> $1 AND con.contype = 'f' AND con.conparentid = 0
 ORDER BY tn.nspname, tc.relname, con.conname
)SQL";

constexpr const char* kTriggersSql = R"SQL(
SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled, obj_description(t.oid, 'pg_trigger')
  FROM pg_trigger t WHERE t.tgrelid = $1 AND NOT t.tgisinternal ORDER BY t.tgname
)SQL";

constexpr const char* kPoliciesSql = R"SQL(
SELECT p.polname, p.polpermissive,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
       (SELECT string_agg(CASE WHEN u.r = 0 THEN 'PUBLIC'
                               ELSE quote_ident(pg_get_userbyid(u.r)) END, ', ' ORDER BY u.ord)
          FROM unnest(p.polroles) WITH ORDINALITY AS u(r, ord)),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
  FROM pg_policy p WHERE p.polrelid = $1 ORDER BY p.polname
)SQL";

// The owner's own privileges come with ownership; only other grantees are listed.
constexpr const char* kGrantsSql = R"SQL(
SELECT x.privilege_type,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
       x.is_grantable
  FROM pg_class c, aclexplode(c.relacl) x
 WHERE c.oid = $1 AND x.grantee <> c.relowner
 ORDER BY 2, 1
)SQL";

constexpr const char* kViewsSql = R"SQL(
SELECT DISTINCT v.oid, vn.nspname, v.relname, v.relkind, pg_get_viewdef(v.oid),
       array_to_string(v.reloptions, E'\x1f')
  FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid
  JOIN pg_class v ON v.oid = r.ev_class
  JOIN pg_namespace vn ON vn.oid = v.relnamespace
 WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
   AND d.refobjid = $1 AND v.oid <> $1
 ORDER BY v.oid
)SQL";

// prqual / prattrs exist from PostgreSQL 15 on; to_jsonb reads them when present.
constexpr const char* kPublicationsSql = R"SQL(
SELECT p.pubname, (to_jsonb(pr) ->> 'prqual') IS NOT NULL OR (to_jsonb(pr) ->> 'prattrs') IS NOT NULL
  FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
 WHERE pr.prrelid = $1 AND p.pubname <> $2
 ORDER BY p.pubname
)SQL";

// stxkind 'e' (expressions) is implied by the column list, never written.
constexpr const char* kStatisticsSql = R"SQL(
SELECT n.nspname, s.stxname,
       array_to_string(ARRAY(SELECT CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies'
                                           WHEN 'm' THEN 'mcv' END
                               FROM unnest(s.stxkind) WITH ORDINALITY AS u(k, ord)
                              WHERE k <> 'e' ORDER BY ord), ', '),
       pg_get_statisticsobjdef_columns(s.oid), COALESCE(s.stxstattarget::int, -1),
       obj_description(s.oid, 'pg_statistic_ext')
  FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
 WHERE s.stxrelid = $1
 ORDER BY 1, 2
)SQL";

constexpr const char* kMiscSql = R"SQL(
SELECT 'r', quote_ident(rulename) FROM pg_rewrite WHERE ev_class = $1 AND rulename <> '_RETURN'
UNION ALL
SELECT 'i', inhparent::regclass::text FROM pg_inherits WHERE inhrelid = $1
UNION ALL
SELECT 'i', inhrelid::regclass::text FROM pg_inherits WHERE inhparent = $1
)SQL";

constexpr const char* kSequencesSql = R"SQL(
SELECT a.attname, pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                                          a.attname),
       a.attidentity <> ''
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
   AND pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                              a.attname) IS NOT NULL
 ORDER BY a.attnum
)SQL";

std::vector<std::string> split_unit_separated(std::string_view s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t end = s.find('\x1f', start);
        if (end == std::string_view::npos)
            end = s.size();
        out.emplace_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

void load_columns(pg::Connection& conn, TableInfo& t) {
    auto r = conn.exec_params(kColumnsSql, {std::to_string(t.oid)});
    for (int i = 0; i < r.rows(); ++i) {
        ColumnInfo c;
        c.attnum = static_cast<int>(r.i64(i, 0));
        c.name = r.str(i, 1);
        c.type = r.str(i, 2);
        c.type_oid = static_cast<uint32_t>(r.i64(i, 3));
        c.not_null = r.boolean(i, 4);
        c.default_expr = r.opt(i, 5);
        auto ident = r.view(i, 6);
        c.identity = ident.empty() ? 0 : ident[0];
        auto gen = r.view(i, 7);
        c.generated = gen.empty() ? 0 : gen[0];
        c.generation_expr = r.opt(i, 8);
        c.collation = r.opt(i, 9);
        if (!r.is_null(i, 10))
            c.storage = r.view(i, 10)[0];
        auto comp = r.view(i, 11);
        c.compression = comp.empty() ? 0 : comp[0];
        c.stattarget = static_cast<int>(r.i64(i, 12));
        c.comment = r.opt(i, 13);
        if (!r.is_null(i, 14)) {
            for (const auto& g : split_unit_separated(r.view(i, 14))) {
                auto a = g.find('\x1e');
                auto b = g.rfind('\x1e');
                c.grants.push_back(
                    {g.substr(0, a), g.substr(a + 1, b - a - 1), g.substr(b + 1) == "true"});
            }
        }
        t.columns.push_back(std::move(c));
    }
}

void load_indexes(pg::Connection& conn, TableInfo& t) {
    auto r = conn.exec_params(kIndexesSql, {std::to_string(t.oid)});
    for (int i = 0; i < r.rows(); ++i) {
        IndexInfo x;
        x.oid = static_cast<uint32_t>(r.i64(i, 0));
        x.name = r.str(i, 1);
        x.primary = r.boolean(i, 2);
        x.unique = r.boolean(i, 3);
        x.replica_identity = r.boolean(i, 4);
        x.using_clause = r.str(i, 5);
        x.has_expressions = r.boolean(i, 6);
        x.partial = r.boolean(i, 7);
        if (!x.has_expressions && !r.is_null(i, 8)) {
            x.key_columns = split_unit_separated(r.view(i, 8));
        }
        x.constraint_name = r.opt(i, 9);
        x.constraint_def = r.opt(i, 10);
        x.exclusion = r.boolean(i, 11);
        x.comment = r.opt(i, 12);
        x.constraint_comment = r.opt(i, 13);
        t.indexes.push_back(std::move(x));
    }
}

void load_sequences(pg::Connection& conn, TableInfo& t) {
    auto r = conn.exec_params(kSequencesSql, {std::to_string(t.oid)});
    for (int i = 0; i < r.rows(); ++i) {
        t.sequences.push_back({r.str(i, 0), r.str(i, 1), r.boolean(i, 2)});
    }
}

std::vector<ConstraintInfo> load_constraints(pg::Connection& conn, const char* from,
                                             const TableInfo& t) {
    std::vector<ConstraintInfo> out;
    auto r = conn.exec_params(std::string(kConstraintSelect) + from, {std::to_string(t.oid)});
    for (int i = 0; i < r.rows(); ++i) {
        ConstraintInfo c;
        c.name = r.str(i, 0);
        c.type = r.view(i, 1)[0];
        c.definition = r.str(i, 2);
        c.validated = r.boolean(i, 3);
        c.no_inherit = r.boolean(i, 4);
        c.comment = r.opt(i, 5);
        if (c.type == 'f') {
            c.table = {r.str(i, 6), r.str(i, 7)};
            c.table_partitioned = r.boolean(i, 8);
            c.columns = split_unit_separated(r.view(i, 9));
            c.ref_columns = split_unit_separated(r.view(i, 10));
            c.actions = r.str(i, 11);
        }
        out.push_back(std::move(c));
    }
    return out;
}

void load_objects(pg::Connection& conn, TableInfo& t, const std::string& job_publication) {
    std::string oid = std::to_string(t.oid);
    t.constraints = load_constraints(conn, kOutgoingFrom, t);
    t.incoming_fks = load_constraints(conn, kIncomingFrom, t);
    auto r = conn.exec_params(kTriggersSql, {oid});
    for (int i = 0; i < r.rows(); ++i)
        t.triggers.push_back({r.str(i, 0), r.str(i, 1), r.view(i, 2)[0], r.opt(i, 3)});
    r = conn.exec_params(kPoliciesSql, {oid});
    for (int i = 0; i < r.rows(); ++i) {
        t.policies.push_back({r.str(i, 0), r.boolean(i, 1), r.str(i, 2),
                              r.is_null(i, 3) ? "PUBLIC" : r.str(i, 3), r.opt(i, 4), r.opt(i, 5)});
    }
    r = conn.exec_params(kGrantsSql, {oid});
    for (int i = 0; i < r.rows(); ++i)
        t.grants.push_back({r.str(i, 0), r.str(i, 1), r.boolean(i, 2)});
    r = conn.exec_params(kViewsSql, {oid});
    for (int i = 0; i < r.rows(); ++i) {
        DependentView v{{r.str(i, 1), r.str(i, 2)}, r.view(i, 3)[0], r.str(i, 4), {}};
        if (!r.is_null(i, 5))
            v.options = split_unit_separated(r.view(i, 5));
        t.views.push_back(std::move(v));
    }
    r = conn.exec_params(kPublicationsSql, {oid, job_publication});
    for (int i = 0; i < r.rows(); ++i)
        t.publications.push_back({r.str(i, 0), r.boolean(i, 1)});
    r = conn.exec_params(kStatisticsSql, {oid});
    for (int i = 0; i < r.rows(); ++i) {
        t.statistics.push_back({{r.str(i, 0), r.str(i, 1)},
                                r.str(i, 2),
                                r.str(i, 3),
                                static_cast<int>(r.i64(i, 4)),
                                r.opt(i, 5)});
    }
    r = conn.exec_params(kMiscSql, {oid});
    for (int i = 0; i < r.rows(); ++i)
        (r.view(i, 0)[0] == 'r' ? t.rules : t.inheritance).push_back(r.str(i, 1));
}

}  // namespace

std::optional<TableInfo> inspect_table(pg::Connection& conn, const QualifiedName& table,
                                       const std::string& job_publication) {
    auto r = conn.exec_params(kTableSql, {table.schema, table.name});
    if (r.rows() == 0)
        return std::nullopt;
    TableInfo t;
    t.name = table;
    t.oid = static_cast<uint32_t>(r.i64(0, 0));
    t.relkind = r.view(0, 1)[0];
    t.replident = r.view(0, 2)[0];
    t.relfilenode = static_cast<uint32_t>(r.i64(0, 3));
    t.estimated_rows = r.i64(0, 4);
    t.heap_bytes = r.i64(0, 5);
    t.total_bytes = r.i64(0, 6);
    t.heap_pages = r.i64(0, 7);
    t.owner = r.str(0, 8);
    t.owner_assumable = r.boolean(0, 9);
    t.comment = r.opt(0, 10);
    if (!r.is_null(0, 11))
        t.reloptions = split_unit_separated(r.view(0, 11));
    t.rls_enabled = r.boolean(0, 12);
    t.rls_forced = r.boolean(0, 13);
    load_columns(conn, t);
    load_indexes(conn, t);
    load_sequences(conn, t);
    load_objects(conn, t, job_publication);
    return t;
}

bool relation_exists(pg::Connection& conn, const QualifiedName& name) {
    auto r = conn.exec_params(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2",
        {name.schema, name.name});
    return r.rows() > 0;
}

std::optional<KeyRange> partition_key_range(pg::Connection& conn, const TableInfo& table,
                                            const ColumnInfo& column) {
    std::string col = conn.ident(column.name);
    std::string as_number = column.type_oid == 1082 /* date */
                                ? "extract(epoch from %s::timestamp AT TIME ZONE 'UTC')::bigint"
                                : column.type_oid == 1114 /* timestamp */
                                      ? "floor(extract(epoch from %s AT TIME ZONE 'UTC'))::bigint"
                                      : column.type_oid == 1184 /* timestamptz */
                                            ? "floor(extract(epoch from %s))::bigint"
                                            : "%s::bigint";
    auto expr = [&](const std::string& agg) {
        std::string e = as_number;
        e.replace(e.find("%s"), 2, agg + "(" + col + ")");
        return e;
    };
    auto r = conn.exec("SELECT " + expr("min") + ", " + expr("max") + " FROM " +
                       conn.qualified(table.name.schema, table.name.name));
    if (r.is_null(0, 0))
        return std::nullopt;
    return KeyRange{r.i64(0, 0), r.i64(0, 1)};
}

bool Preflight::failed() const {
    for (const auto& c : checks) {
        if (c.status == Check::Status::Fail)
            return true;
    }
    return false;
}

const char* to_string(Check::Status s) {
    switch (s) {
        case Check::Status::Pass:
            return "PASS";
        case Check::Status::Warn:
            return "WARN";
        case Check::Status::Fail:
            return "FAIL";
    }
    return "?";
}

namespace {

using Status = Check::Status;

Check pass(std::string name, std::string detail) {
    return {std::move(name), Status::Pass, std::move(detail), ""};
}
Check fail(std::string name, std::string detail, std::string fix) {
    return {std::move(name), Status::Fail, std::move(detail), std::move(fix)};
}
Check warn(std::string name, std::string detail, std::string fix) {
    return {std::move(name), Status::Warn, std::move(detail), std::move(fix)};
}

void check_server(pg::Connection& conn, Preflight& p) {
    int v = conn.server_version();
    if (v < kMinServerVersion) {
        p.checks.push_back(fail("server version", "server is " + std::to_string(v),
                                "upgrade to PostgreSQL 14 or newer"));
        return;
    }
    p.features = ServerFeatures::for_version(v);
    p.checks.push_back(pass("server version", "PostgreSQL " + std::to_string(v / 10000) + "." +
                                                  std::to_string(v % 10000) + ", pgoutput v" +
                                                  std::to_string(p.features.proto_version)));
    auto r = conn.exec(R"SQL(
SELECT current_setting('wal_level'),
       current_setting('max_replication_slots')::int,
       (SELECT count(*) FROM pg_replication_slots),
       current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_stat_replication),
       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
       current_user)SQL");
    std::string wal_level = r.str(0, 0);
    if (wal_level == "logical") {
        p.checks.push_back(pass("wal_level", "logical"));
    } else {
        p.checks.push_back(fail("wal_level", "wal_level is " + wal_level,
                                "ALTER SYSTEM SET wal_level = logical; then restart the server"));
    }
    int64_t free_slots = r.i64(0, 1) - r.i64(0, 2);
    if (free_slots >= 1) {
        p.checks.push_back(pass("replication slots", std::to_string(free_slots) + " free"));
    } else {
        p.checks.push_back(fail("replication slots",
                                "all " + r.str(0, 1) + " max_replication_slots are in use",
                                "raise max_replication_slots (restart) or drop an unused slot"));
    }
    int64_t free_senders = r.i64(0, 3) - r.i64(0, 4);
    if (free_senders >= 1) {
        p.checks.push_back(pass("WAL senders", std::to_string(free_senders) + " free"));
    } else {
        p.checks.push_back(fail("WAL senders", "all " + r.str(0, 3) + " max_wal_senders are busy",
                                "raise max_wal_senders (restart)"));
    }
    std::string user = r.str(0, 7);
    if (r.boolean(0, 5)) {
        p.checks.push_back(pass("REPLICATION privilege", "role " + user));
    } else {
        p.checks.push_back(fail("REPLICATION privilege",
                                "role " + user + " has neither REPLICATION nor SUPERUSER",
                                "ALTER ROLE " + conn.ident(user) + " REPLICATION;"));
    }
    if (!r.boolean(0, 6)) {
        p.checks.push_back(warn("replication origin functions",
                                "role " + user + " is not a superuser",
                                "GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text), "
                                "pg_replication_origin_session_setup(text), "
                                "pg_replication_origin_xact_setup(pg_lsn, timestamptz), "
                                "pg_replication_origin_drop(text) TO " +
                                    conn.ident(user) + ";"));
    }
}

void check_replica_identity(pg::Connection& conn, const TableInfo& t, Preflight& p) {
    std::string tbl = conn.qualified(t.name.schema, t.name.name);
    const std::string name = "replica identity";
    switch (t.replident) {
        case 'f':
            p.checks.push_back(warn(name,
                                    "REPLICA IDENTITY FULL: every UPDATE/DELETE logs the "
                                    "whole old row (more WAL)",
                                    ""));
            return;
        case 'i':
            p.checks.push_back(
                pass(name, "USING INDEX " +
                               (t.identity_index() ? t.identity_index()->name : std::string("?"))));
            return;
        case 'n':
            p.checks.push_back(fail(name,
                                    tbl + " has REPLICA IDENTITY NOTHING: its UPDATEs and "
                                          "DELETEs cannot be replicated",
                                    "ALTER TABLE " + tbl + " REPLICA IDENTITY FULL;"));
            return;
        default:
            break;
    }
    if (t.primary_key()) {
        p.checks.push_back(pass(name, "DEFAULT (primary key " + t.primary_key()->name + ")"));
        return;
    }
    p.checks.push_back(fail(name,
                            tbl + " has no primary key, so its replica identity is empty; "
                                  "a publication would make the application's UPDATE and "
                                  "DELETE on it fail",
                            "ALTER TABLE " + tbl +
                                " REPLICA IDENTITY FULL;  (or add a primary key, or "
                                "REPLICA IDENTITY USING INDEX on a unique NOT NULL index)"));
}

bool is_integer_type(uint32_t oid) {
    return oid == 20 || oid == 21 || oid == 23;
}
bool is_time_type(uint32_t oid) {
    return oid == 1082 || oid == 1114 || oid == 1184;
}

/// One level of the partitioning: what check_partition_column looks at.
struct KeyLevel {
    std::string check;  ///< check name: "partition key" / "sub-partition key"
    std::string section;
    std::string strategy;
    std::string column;
    PartitionInterval interval;
    int modulus = 0;
};

std::vector<KeyLevel> key_levels(const JobConfig& cfg) {
    std::vector<KeyLevel> out{
        {"partition key", "partitioning", cfg.strategy, cfg.column, cfg.interval, cfg.modulus}};
    if (!cfg.sub_strategy.empty()) {
        out.push_back({"sub-partition key", "subpartitioning", cfg.sub_strategy, cfg.sub_column,
                       cfg.sub_interval, cfg.sub_modulus});
    }
    return out;
}

/// Why `interval` does not fit column `c`, or "" when it does.
std::string interval_mismatch(const ColumnInfo& c, const KeyLevel& k) {
    if (k.interval.is_integer && !is_integer_type(c.type_oid))
        return "column \"" + c.name + "\" is " + c.type + " but the interval is an integer step";
    if (!k.interval.is_integer && !is_time_type(c.type_oid))
        return "column \"" + c.name + "\" is " + c.type + " but the interval \"" +
               k.interval.pg_interval() + "\" needs a date, timestamp or timestamptz column";
    if (c.type_oid == 1082 &&
        (k.interval.unit == TimeUnit::Minute || k.interval.unit == TimeUnit::Hour))
        return "column \"" + c.name + "\" is a date; use an interval of at least 1 day";
    return "";
}

/// How the bounds of a RANGE level are found: min() and max() are answered
/// by an index whose first key column is the partition column (the
/// planner's min/max optimisation), otherwise by a scan of the table.
std::string bounds_source(const TableInfo& t, const std::string& column) {
    for (const auto& i : t.indexes) {
        if (!i.partial && !i.key_columns.empty() && i.key_columns[0] == column)
            return "; bounds from min/max through index " + i.name;
    }
    return "; no index starts with it, so min/max read the whole table (" +
           std::to_string(t.total_bytes >> 20) + " MB)";
}

std::string level_summary(const TableInfo& t, const ColumnInfo& c, const KeyLevel& k) {
    std::string how = k.strategy == "hash" ? "HASH, modulus " + std::to_string(k.modulus)
                      : k.strategy == "list"
                          ? "LIST, one partition per value and a DEFAULT "
                            "partition"
                          : "RANGE by " + k.interval.pg_interval() + bounds_source(t, c.name);
    return "\"" + c.name + "\" " + c.type + ", " + how;
}

void check_key_level(pg::Connection& conn, const JobConfig& cfg, const TableInfo& t,
                     const KeyLevel& k, Preflight& p) {
    const ColumnInfo* c = t.column(k.column);
    std::string tbl = conn.qualified(t.name.schema, t.name.name);
    if (!c) {
        p.checks.push_back(fail(k.check, "column \"" + k.column + "\" does not exist in " + tbl,
                                "set [" + k.section + "] column to one of the table's columns"));
        return;
    }
    if (c->generated) {
        p.checks.push_back(fail(k.check, "column \"" + c->name + "\" is a generated column",
                                "partition by a stored, non-generated column"));
        return;
    }
    if (k.strategy == "range") {
        if (auto why = interval_mismatch(*c, k); !why.empty()) {
            p.checks.push_back(fail(k.check, why,
                                    "use a time column with an interval like \"1 month\", or an "
                                    "integer column with an integer step ([" +
                                        k.section + "] interval)"));
            return;
        }
    }
    if (c->not_null) {
        p.checks.push_back(pass(k.check, level_summary(t, *c, k)));
        return;
    }
    // A NULL key fits only a DEFAULT (RANGE) or NULL-accepting (LIST, HASH)
    // partition, and never a widened primary key or identity index.
    bool widened = t.primary_key() || t.identity_index();
    bool range_needs_default = k.strategy == "range" && !cfg.default_partition;
    if (widened || range_needs_default) {
        auto r = conn.exec("SELECT EXISTS (SELECT 1 FROM " + tbl + " WHERE " + conn.ident(c->name) +
                           " IS NULL)");
        if (r.boolean(0, 0)) {
            p.checks.push_back(fail(k.check,
                                    "column \"" + c->name + "\" has NULL values" +
                                        (widened ? " but becomes part of the widened primary key"
                                                 : " and no partition takes them"),
                                    "set them, then ALTER TABLE " + tbl + " ALTER COLUMN " +
                                        conn.ident(c->name) + " SET NOT NULL;"));
            return;
        }
    }
    p.checks.push_back(
        warn(k.check,
             level_summary(t, *c, k) + "; the column is nullable" +
                 (widened ? " and becomes NOT NULL in the shadow's primary key" : ""),
             "ALTER TABLE " + tbl + " ALTER COLUMN " + conn.ident(c->name) + " SET NOT NULL;"));
}

void check_partition_column(pg::Connection& conn, const JobConfig& cfg, const TableInfo& t,
                            Preflight& p) {
    for (const auto& level : key_levels(cfg))
        check_key_level(conn, cfg, t, level, p);
}

void check_job_objects(pg::Connection& conn, const JobConfig& cfg, Preflight& p) {
    JobNames names = JobNames::from(cfg, conn.database());
    if (relation_exists(conn, names.shadow)) {
        p.checks.push_back(fail("shadow table", names.shadow.display() + " already exists",
                                "drop it, set [source] shadow to another name, or run "
                                "`pgshift abort` if it is left from an earlier job"));
    } else {
        p.checks.push_back(pass("shadow table", names.shadow.display() + " is free"));
    }
    if (relation_exists(conn, names.old)) {
        p.checks.push_back(fail("old table name",
                                names.old.display() + " already exists (left from an earlier "
                                                      "conversion?)",
                                "rename or drop it"));
    }
    auto r = conn.exec_params(
        "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1),"
        "       (SELECT count(*) FROM pg_publication WHERE pubname = $2),"
        "       (SELECT count(*) FROM pg_replication_origin WHERE roname = $3)",
        {names.slot, names.publication, names.origin});
    if (r.i64(0, 0) + r.i64(0, 1) + r.i64(0, 2) > 0) {
        p.checks.push_back(
            fail("job objects", "slot, publication or origin \"" + names.slot + "\" already exists",
                 "run `pgshift abort -c " + cfg.path + "` to remove a failed job's leftovers"));
    }
}

void check_wal_headroom(pg::Connection& conn, const JobConfig& cfg, Preflight& p) {
    auto r = conn.exec(
        "SELECT pg_size_bytes(current_setting('max_slot_wal_keep_size') || "
        "CASE WHEN current_setting('max_slot_wal_keep_size') ~ '^-?[0-9]+$' "
        "THEN 'MB' ELSE '' END)");
    int64_t keep = r.i64(0, 0);
    if (keep >= 0 && keep < cfg.max_retained_wal) {
        p.checks.push_back(warn("retained WAL limit",
                                "max_slot_wal_keep_size (" + std::to_string(keep >> 20) +
                                    " MB) is below [safety] max_retained_wal; the server may "
                                    "invalidate the slot first",
                                "lower [safety] max_retained_wal below max_slot_wal_keep_size"));
    } else {
        p.checks.push_back(
            pass("retained WAL limit", "job stops the stream at " +
                                           std::to_string(cfg.max_retained_wal >> 20) +
                                           " MB of retained WAL"));
    }
}

bool has_column(const std::vector<std::string>& v, const std::string& c) {
    return std::find(v.begin(), v.end(), c) != v.end();
}

std::string join_names(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v)
        out += (out.empty() ? "" : ", ") + x;
    return out;
}

/// Objects of the table that the shadow must carry, or cannot.
void check_objects(pg::Connection& conn, const JobConfig& cfg, const TableInfo& t, Preflight& p) {
    std::string tbl = conn.qualified(t.name.schema, t.name.name);
    const auto key_columns = cfg.partition_columns();
    std::string key;
    for (const auto& c : key_columns)
        key += (key.empty() ? "" : ", ") + conn.ident(c);
    auto referenceable = [&](const std::vector<std::string>& ref) {
        return referenceable_after_widening(t, key_columns, ref);
    };
    // Unique keys that lack a partition column.
    std::vector<std::string> narrow;
    for (const auto& i : t.indexes) {
        bool lacks = std::any_of(key_columns.begin(), key_columns.end(), [&](const std::string& c) {
            return !has_column(i.key_columns, c);
        });
        if (i.unique && lacks)
            narrow.push_back(i.name);
    }
    if (!narrow.empty() && !cfg.widen_unique) {
        p.checks.push_back(
            fail("unique keys",
                 "primary key / unique index(es) " + join_names(narrow) +
                     " lack the partition column " + key +
                     "; a partitioned table cannot enforce them, and [partitioning] "
                     "widen_unique = false forbids widening them",
                 "set [partitioning] widen_unique = true to accept (..., " + key +
                     ") keys (uniqueness per partition key value), or partition by a column those "
                     "keys contain"));
    } else if (!narrow.empty()) {
        p.checks.push_back(warn("unique keys",
                                join_names(narrow) + " widened with " + key +
                                    ": uniqueness now holds per partition key value (see Notes)",
                                "set [partitioning] widen_unique = false to refuse instead"));
    } else {
        p.checks.push_back(pass("unique keys", "every unique key contains " + key));
    }
    // Foreign keys that would reference the widened keys.
    auto fk_refusal = [&](const ConstraintInfo& fk, const std::string& child) {
        p.checks.push_back(
            fail("foreign key " + fk.name,
                 child + " references (" + join_names(fk.ref_columns) + ") of " + tbl +
                     "; on the partitioned table every unique key contains " + key +
                     ", and a foreign key must reference a whole unique key",
                 "add " + key + " to " + child + " (same type, filled from " + tbl +
                     ") and make the foreign key reference (" + join_names(fk.ref_columns) + ", " +
                     key + ") through a UNIQUE (" + join_names(fk.ref_columns) + ", " + key +
                     ") on " + tbl + "; or drop it before the conversion: ALTER TABLE " + child +
                     " DROP CONSTRAINT " + conn.ident(fk.name) + ";"));
    };
    for (const auto& fk : t.incoming_fks) {
        std::string child = conn.qualified(fk.table.schema, fk.table.name);
        if (!referenceable(fk.ref_columns)) {
            fk_refusal(fk, child);
        } else if (fk.table_partitioned) {
            p.checks.push_back(warn("foreign key " + fk.name,
                                    child +
                                        " is partitioned, so the foreign key is re-added "
                                        "VALID in the cutover transaction, which checks "
                                        "every row of " +
                                        child + " under the lock",
                                    "drop it before the conversion and add it afterwards"));
        } else {
            p.checks.push_back(pass("foreign key " + fk.name,
                                    child + " -> re-pointed at the new table at cutover"));
        }
    }
    for (const auto& c : t.constraints) {
        if (c.type == 'f' && c.table == t.name && !referenceable(c.ref_columns)) {
            fk_refusal(c, tbl);
        } else if (c.type == 'f' && !c.validated) {
            p.checks.push_back(warn("foreign key " + c.name,
                                    "NOT VALID on the source: added NOT VALID to each partition "
                                    "at cutover, not on the partitioned table itself",
                                    "ALTER TABLE " + tbl + " VALIDATE CONSTRAINT " +
                                        conn.ident(c.name) + "; before the conversion"));
        } else if (c.type == 'c' && c.no_inherit) {
            p.checks.push_back(warn("check " + c.name,
                                    "NO INHERIT constraints cannot exist on a partitioned table; "
                                    "it is not carried",
                                    "drop NO INHERIT, or add it to the partitions by hand"));
        } else if (c.type == 'x') {
            p.checks.push_back(warn("exclusion " + c.name,
                                    "exclusion constraints are not supported on partitioned "
                                    "tables; only its index is carried, as a plain index",
                                    "enforce it per partition: ALTER TABLE <partition> ADD "
                                    "CONSTRAINT ... " +
                                        c.definition));
        }
    }
    if (t.replident == 'i' && t.identity_index() && t.identity_index()->partial) {
        p.checks.push_back(fail("replica identity index", "the identity index is partial",
                                "use REPLICA IDENTITY FULL"));
    }
    // A materialized view is not re-created in the cutover transaction: that
    // would run its query under the lock. REFRESH keeps reading the old table.
    for (const auto& v : t.views) {
        std::string view = conn.qualified(v.name.schema, v.name.name);
        if (v.relkind == 'm') {
            p.checks.push_back(warn(
                "materialized view " + v.name.display(),
                "it reads the table by OID, so after the cutover REFRESH keeps reading the old "
                "table (and DROP of the old table is refused while it exists); pgshift does not "
                "re-create it because that would run its query under the cutover lock",
                "after the cutover, re-create it (with its indexes and grants): "
                "CREATE MATERIALIZED VIEW " +
                    conn.qualified(v.name.schema, v.name.name + "_new") + " AS" + v.definition +
                    " then swap the names with ALTER MATERIALIZED VIEW ... RENAME"));
        } else {
            p.checks.push_back(pass("view " + v.name.display(),
                                    "re-created in the cutover transaction to read the new "
                                    "table (and again by a rollback to read the old one)"));
        }
    }
    for (const auto& pub : t.publications) {
        if (pub.filtered) {
            p.checks.push_back(warn("publication " + pub.name,
                                    "it publishes the table with a row filter or column list, "
                                    "which pgshift does not carry",
                                    "after the cutover: ALTER PUBLICATION " + conn.ident(pub.name) +
                                        " ADD TABLE " + tbl + " WHERE (...) / (columns)"));
        }
    }
    for (const auto& s : t.statistics) {
        p.checks.push_back(pass("statistics " + s.name.display(),
                                "cloned onto the shadow; names swapped at cutover"));
    }
    // Rules are refused rather than cloned: a DO INSTEAD rule on the shadow
    // would rewrite the applier's own statements, and dropping one silently
    // changes what the application's statements do.
    if (!t.rules.empty()) {
        p.checks.push_back(
            fail("rules",
                 "rewrite rule(s) " + join_names(t.rules) + " on " + tbl +
                     " change what statements on the table do; pgshift cannot carry them",
                 "save them (SELECT pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class = " +
                     conn.literal(tbl) + "::regclass), DROP RULE each ON " + tbl +
                     ", convert, then CREATE them again on the new table"));
    }
    if (!t.inheritance.empty()) {
        p.checks.push_back(
            fail("inheritance",
                 tbl + " takes part in table inheritance with " + join_names(t.inheritance),
                 "a partitioned table cannot inherit or be inherited; remove the "
                 "inheritance (ALTER TABLE ... NO INHERIT) first"));
    }
    if (!t.owner_assumable) {
        p.checks.push_back(warn("owner", "the job's role cannot give the new table to " + t.owner,
                                "after the cutover, as " + t.owner +
                                    " or a superuser: ALTER "
                                    "TABLE " +
                                    tbl + " OWNER TO " + t.owner + "; (and each partition)"));
    }
}

}  // namespace

Preflight run_preflight(pg::Connection& conn, const JobConfig& cfg, bool resuming) {
    Preflight p;
    check_server(conn, p);
    if (p.failed())
        return p;
    p.table = inspect_table(conn, cfg.table, JobNames::from(cfg, conn.database()).publication);
    if (!p.table) {
        p.checks.push_back(fail("source table", cfg.table.display() + " does not exist",
                                "check [source] table (schema.name; quote mixed-case names)"));
        return p;
    }
    if (p.table->relkind != 'r') {
        p.checks.push_back(fail("source table",
                                cfg.table.display() + " is not a plain table (relkind '" +
                                    std::string(1, p.table->relkind) + "')",
                                "pgshift converts ordinary tables; it is already partitioned or "
                                "not a table"));
        return p;
    }
    p.checks.push_back(
        pass("source table", cfg.table.display() + ", ~" + std::to_string(p.table->estimated_rows) +
                                 " rows, " + std::to_string(p.table->total_bytes >> 20) + " MB"));
    check_replica_identity(conn, *p.table, p);
    check_partition_column(conn, cfg, *p.table, p);
    if (p.table->column(cfg.column))
        check_objects(conn, cfg, *p.table, p);
    if (!resuming)
        check_job_objects(conn, cfg, p);
    check_wal_headroom(conn, cfg, p);
    return p;
}

}  // namespace pgshift
