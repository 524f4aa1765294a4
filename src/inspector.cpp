#include "inspector.h"

#include "job_names.h"

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
       c.relpages
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2
)SQL";

constexpr const char* kColumnsSql = R"SQL(
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.attnotnull,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       a.attidentity, a.attgenerated,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
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
       con.conname
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
       AND con.contype IN ('p', 'u')
 WHERE i.indrelid = $1
 ORDER BY i.indisprimary DESC, ic.relname
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
        t.indexes.push_back(std::move(x));
    }
}

void load_sequences(pg::Connection& conn, TableInfo& t) {
    auto r = conn.exec_params(kSequencesSql, {std::to_string(t.oid)});
    for (int i = 0; i < r.rows(); ++i) {
        t.sequences.push_back({r.str(i, 0), r.str(i, 1), r.boolean(i, 2)});
    }
}

}  // namespace

std::optional<TableInfo> inspect_table(pg::Connection& conn, const QualifiedName& table) {
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
    load_columns(conn, t);
    load_indexes(conn, t);
    load_sequences(conn, t);
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

void check_partition_column(pg::Connection& conn, const JobConfig& cfg, const TableInfo& t,
                            Preflight& p) {
    const std::string name = "partition key";
    const ColumnInfo* c = t.column(cfg.column);
    std::string tbl = conn.qualified(t.name.schema, t.name.name);
    if (!c) {
        p.checks.push_back(fail(name, "column \"" + cfg.column + "\" does not exist in " + tbl,
                                "set [partitioning] column to one of the table's columns"));
        return;
    }
    if (cfg.interval.is_integer && !is_integer_type(c->type_oid)) {
        p.checks.push_back(fail(
            name,
            "column \"" + c->name + "\" is " + c->type + " but the interval is an integer step",
            "use an integer column, or an interval like \"1 month\""));
        return;
    }
    if (!cfg.interval.is_integer && !is_time_type(c->type_oid)) {
        p.checks.push_back(fail(name,
                                "column \"" + c->name + "\" is " + c->type +
                                    " but the interval \"" + cfg.interval.pg_interval() +
                                    "\" needs a date, timestamp or timestamptz column",
                                "use a time column, or an integer step for integer columns"));
        return;
    }
    if (c->type_oid == 1082 &&
        (cfg.interval.unit == TimeUnit::Minute || cfg.interval.unit == TimeUnit::Hour)) {
        p.checks.push_back(fail(name, "column \"" + c->name + "\" is a date",
                                "use an interval of at least 1 day for date columns"));
        return;
    }
    if (c->generated) {
        p.checks.push_back(fail(name, "column \"" + c->name + "\" is a generated column",
                                "partition by a stored, non-generated column"));
        return;
    }
    if (!c->not_null) {
        auto r = conn.exec("SELECT EXISTS (SELECT 1 FROM " + tbl + " WHERE " + conn.ident(c->name) +
                           " IS NULL)");
        if (r.boolean(0, 0) && (t.primary_key() || !cfg.default_partition)) {
            p.checks.push_back(fail(name, "column \"" + c->name + "\" has NULL values",
                                    "set them, then ALTER TABLE " + tbl + " ALTER COLUMN " +
                                        conn.ident(c->name) + " SET NOT NULL;"));
            return;
        }
        p.checks.push_back(
            warn(name,
                 "column \"" + c->name + "\" (" + c->type + ") is nullable" +
                     (t.primary_key() ? "; it becomes NOT NULL in the shadow's "
                                        "primary key"
                                      : ""),
                 "ALTER TABLE " + tbl + " ALTER COLUMN " + conn.ident(c->name) + " SET NOT NULL;"));
        return;
    }
    p.checks.push_back(
        pass(name, "\"" + c->name + "\" " + c->type + ", RANGE by " + cfg.interval.pg_interval()));
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

}  // namespace

Preflight run_preflight(pg::Connection& conn, const JobConfig& cfg, bool resuming) {
    Preflight p;
    check_server(conn, p);
    if (p.failed())
        return p;
    p.table = inspect_table(conn, cfg.table);
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
    if (!resuming)
        check_job_objects(conn, cfg, p);
    check_wal_headroom(conn, cfg, p);
    return p;
}

}  // namespace pgshift
