#include "shadow_ddl.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "pg/connection.h"

namespace pgshift {

using pg::quote_ident_offline;
using pg::quote_literal_offline;

KeyType key_type_of(uint32_t oid) {
    switch (oid) {
        case 20:
        case 21:
        case 23:
            return KeyType::Integer;
        case 1082:
            return KeyType::Date;
        case 1114:
            return KeyType::Timestamp;
        case 1184:
            return KeyType::TimestampTz;
        default:
            throw std::invalid_argument("unsupported partition key type oid " +
                                        std::to_string(oid));
    }
}

namespace {

using namespace std::chrono;

int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

struct Civil {
    int year;
    unsigned month, day, hour, minute, second;
};

Civil civil_from_epoch(int64_t secs) {
    sys_seconds tp{seconds{secs}};
    auto day_point = floor<days>(tp);
    year_month_day ymd{day_point};
    hh_mm_ss hms{tp - day_point};
    return {static_cast<int>(ymd.year()),
            static_cast<unsigned>(ymd.month()),
            static_cast<unsigned>(ymd.day()),
            static_cast<unsigned>(hms.hours().count()),
            static_cast<unsigned>(hms.minutes().count()),
            static_cast<unsigned>(hms.seconds().count())};
}

int64_t epoch_from_months(int64_t months_since_year0) {
    int64_t y = floor_div(months_since_year0, 12);
    unsigned m = static_cast<unsigned>(months_since_year0 - y * 12) + 1;
    sys_days d{year{static_cast<int>(y)} / month{m} / day{1}};
    return d.time_since_epoch().count() * 86400;
}

int64_t unit_seconds(TimeUnit u) {
    switch (u) {
        case TimeUnit::Minute:
            return 60;
        case TimeUnit::Hour:
            return 3600;
        case TimeUnit::Day:
            return 86400;
        case TimeUnit::Week:
            return 7 * 86400;
        default:
            return 0;
    }
}

/// Bound generator over "slot numbers": bound(k) is the epoch of slot k.
struct TimeGrid {
    PartitionInterval interval;

    bool calendar() const {
        return interval.unit == TimeUnit::Month || interval.unit == TimeUnit::Year;
    }
    int64_t step_months() const {
        return interval.count * (interval.unit == TimeUnit::Year ? 12 : 1);
    }
    // Weeks start on Monday; 1970-01-05 was a Monday.
    int64_t origin() const { return interval.unit == TimeUnit::Week ? 4 * 86400 : 0; }

    int64_t slot_of(int64_t epoch) const {
        if (calendar()) {
            Civil c = civil_from_epoch(epoch);
            int64_t months = int64_t{c.year} * 12 + (c.month - 1);
            return floor_div(months, step_months());
        }
        return floor_div(epoch - origin(), interval.count * unit_seconds(interval.unit));
    }
    int64_t bound(int64_t slot) const {
        if (calendar())
            return epoch_from_months(slot * step_months());
        return slot * interval.count * unit_seconds(interval.unit) + origin();
    }
};

std::string format_time(int64_t epoch, KeyType key) {
    Civil c = civil_from_epoch(epoch);
    char buf[64];
    if (key == KeyType::Date) {
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", c.year, c.month, c.day);
    } else {
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02u:%02u:%02u%s", c.year, c.month, c.day,
                      c.hour, c.minute, c.second, key == KeyType::TimestampTz ? "+00" : "");
    }
    return buf;
}

std::string time_suffix(int64_t epoch, TimeUnit unit) {
    Civil c = civil_from_epoch(epoch);
    char buf[64];
    switch (unit) {
        case TimeUnit::Year:
            std::snprintf(buf, sizeof buf, "_p%04d", c.year);
            break;
        case TimeUnit::Month:
            std::snprintf(buf, sizeof buf, "_p%04d_%02u", c.year, c.month);
            break;
        case TimeUnit::Week:
        case TimeUnit::Day:
            std::snprintf(buf, sizeof buf, "_p%04d_%02u_%02u", c.year, c.month, c.day);
            break;
        case TimeUnit::Hour:
            std::snprintf(buf, sizeof buf, "_p%04d_%02u_%02u_%02u", c.year, c.month, c.day, c.hour);
            break;
        case TimeUnit::Minute:
            std::snprintf(buf, sizeof buf, "_p%04d_%02u_%02u_%02u%02u", c.year, c.month, c.day,
                          c.hour, c.minute);
            break;
    }
    return buf;
}

std::string integer_suffix(int64_t lower) {
    return lower < 0 ? "_pm" + std::to_string(-lower) : "_p" + std::to_string(lower);
}

void check_count(int64_t first, int64_t last) {
    if (last - first + 1 > static_cast<int64_t>(kMaxPartitions)) {
        throw std::runtime_error("the data's key range needs " + std::to_string(last - first + 1) +
                                 " partitions, more than the limit of " +
                                 std::to_string(kMaxPartitions) +
                                 "; choose a larger [partitioning] interval");
    }
}

}  // namespace

std::vector<PartitionBound> compute_partitions(const std::string& table_name, KeyType key,
                                               const PartitionInterval& interval,
                                               std::optional<KeyRange> range, int64_t now_epoch,
                                               int premake, bool with_default) {
    std::vector<PartitionBound> out;
    if (key == KeyType::Integer) {
        int64_t step = interval.count;
        int64_t lo = range ? range->min : 0;
        int64_t hi = range ? range->max : 0;
        int64_t first = floor_div(lo, step);
        int64_t last = floor_div(hi, step) + premake;
        check_count(first, last);
        for (int64_t s = first; s <= last; ++s) {
            out.push_back({suffixed_name(table_name, integer_suffix(s * step)),
                           std::to_string(s * step), std::to_string((s + 1) * step), false});
        }
    } else {
        TimeGrid grid{interval};
        int64_t lo = range ? range->min : now_epoch;
        int64_t hi = std::max(range ? range->max : now_epoch, now_epoch);
        int64_t first = grid.slot_of(lo);
        int64_t last = grid.slot_of(hi) + premake;
        check_count(first, last);
        for (int64_t s = first; s <= last; ++s) {
            int64_t from = grid.bound(s);
            out.push_back({suffixed_name(table_name, time_suffix(from, interval.unit)),
                           format_time(from, key), format_time(grid.bound(s + 1), key), false});
        }
    }
    if (with_default)
        out.push_back({suffixed_name(table_name, "_default"), "", "", true});
    return out;
}

std::vector<PartitionBound> compute_hash_partitions(const std::string& table_name, int modulus) {
    std::vector<PartitionBound> out;
    for (int r = 0; r < modulus; ++r) {
        PartitionBound b;
        b.name = suffixed_name(table_name, "_h" + std::to_string(r));
        b.bound_sql =
            "WITH (MODULUS " + std::to_string(modulus) + ", REMAINDER " + std::to_string(r) + ")";
        out.push_back(std::move(b));
    }
    return out;
}

std::string list_value_slug(const std::optional<std::string>& value) {
    if (!value)
        return "null";
    std::string slug;
    for (unsigned char ch : *value) {
        if (std::isalnum(ch) && ch < 0x80) {
            slug += static_cast<char>(std::tolower(ch));
        } else if (!slug.empty() && slug.back() != '_') {
            slug += '_';
        }
    }
    while (!slug.empty() && slug.back() == '_')
        slug.pop_back();
    if (slug.empty())
        return value->empty() ? "empty" : "x";
    return slug.substr(0, 40);
}

std::vector<PartitionBound> compute_list_partitions(
    const std::string& table_name, const std::vector<std::optional<std::string>>& values) {
    if (values.size() + 1 > kMaxPartitions) {
        throw std::runtime_error("the partition column has " + std::to_string(values.size()) +
                                 " distinct values, more than the limit of " +
                                 std::to_string(kMaxPartitions) +
                                 " partitions; list the values to keep in [partitioning] "
                                 "values (the rest go to the DEFAULT partition)");
    }
    std::vector<PartitionBound> out;
    std::vector<std::string> used;
    for (const auto& v : values) {
        std::string base = list_value_slug(v);
        std::string slug = base;
        for (int n = 2; std::find(used.begin(), used.end(), slug) != used.end(); ++n)
            slug = base + "_" + std::to_string(n);
        used.push_back(slug);
        PartitionBound b;
        b.name = suffixed_name(table_name, "_l_" + slug);
        b.bound_sql = "IN (" + (v ? pg::quote_literal_offline(*v) : std::string("NULL")) + ")";
        out.push_back(std::move(b));
    }
    out.push_back({suffixed_name(table_name, "_default"), "", "", true});
    return out;
}

std::vector<PartitionBound> with_subpartitions(std::vector<PartitionBound> parents,
                                               const std::vector<PartitionBound>& layout) {
    if (parents.size() * layout.size() > kMaxPartitions) {
        throw std::runtime_error(
            std::to_string(parents.size()) + " partitions of " + std::to_string(layout.size()) +
            " sub-partitions each make " + std::to_string(parents.size() * layout.size()) +
            " tables, more than the limit of " + std::to_string(kMaxPartitions) +
            "; use larger intervals or a smaller [subpartitioning] modulus");
    }
    for (auto& p : parents) {
        p.subpartitions = layout;
        for (auto& sub : p.subpartitions)
            sub.name = suffixed_name(p.name, sub.name);
    }
    return parents;
}

std::vector<const PartitionBound*> all_partitions(const std::vector<PartitionBound>& partitions) {
    std::vector<const PartitionBound*> out;
    for (const auto& p : partitions) {
        out.push_back(&p);
        for (const auto& sub : p.subpartitions)
            out.push_back(&sub);
    }
    return out;
}

std::vector<const PartitionBound*> leaf_partitions(const std::vector<PartitionBound>& partitions) {
    std::vector<const PartitionBound*> out;
    for (const auto* p : all_partitions(partitions)) {
        if (p->subpartitions.empty())
            out.push_back(p);
    }
    return out;
}

std::string subpartition_method(const JobConfig& cfg) {
    if (cfg.sub_strategy.empty())
        return "";
    return std::string(cfg.sub_strategy == "hash" ? "HASH" : "RANGE") + " (" +
           quote_ident_offline(cfg.sub_column) + ")";
}

namespace {

std::string qualified(const QualifiedName& n) {
    return quote_ident_offline(n.schema) + "." + quote_ident_offline(n.name);
}

std::string column_definition(const ColumnInfo& c, bool force_not_null) {
    std::string def = quote_ident_offline(c.name) + " " + c.type;
    if (c.collation)
        def += " COLLATE " + *c.collation;
    if (c.generated == 's' && c.generation_expr) {
        def += " GENERATED ALWAYS AS (" + *c.generation_expr + ") STORED";
    } else if (c.identity == 'a' || c.identity == 'd') {
        // ALWAYS becomes BY DEFAULT while the job copies and applies rows
        // (UPDATE cannot set an ALWAYS column); the cutover restores ALWAYS.
        def += " GENERATED BY DEFAULT AS IDENTITY";
    } else if (c.default_expr) {
        def += " DEFAULT " + *c.default_expr;
    }
    if (c.not_null || force_not_null)
        def += " NOT NULL";
    return def;
}

std::string partition_sql(const PartitionBound& p, const QualifiedName& parent,
                          const std::string& sub_method,
                          const std::vector<std::string>& reloptions) {
    std::string sql = "CREATE TABLE " + quote_ident_offline(parent.schema) + "." +
                      quote_ident_offline(p.name) + " PARTITION OF " + qualified(parent);
    if (p.is_default) {
        sql += " DEFAULT";
    } else if (!p.bound_sql.empty()) {
        sql += " FOR VALUES " + p.bound_sql;
    } else {
        sql += " FOR VALUES FROM (" + quote_literal_offline(p.from) + ") TO (" +
               quote_literal_offline(p.to) + ")";
    }
    if (!p.subpartitions.empty()) {
        sql += " PARTITION BY " + sub_method;
    } else if (!reloptions.empty()) {
        sql += " WITH (";
        for (size_t i = 0; i < reloptions.size(); ++i)
            sql += (i ? ", " : "") + reloptions[i];
        sql += ")";
    }
    return sql;
}

std::string join_idents(const std::vector<std::string>& cols) {
    std::string out;
    for (const auto& c : cols) {
        if (!out.empty())
            out += ", ";
        out += quote_ident_offline(c);
    }
    return out;
}

/// Appends partition columns to the key list of a unique index's USING
/// clause ("btree (a) INCLUDE (b)" -> "btree (a, \"k\") INCLUDE (b)").
std::string widen_using_clause(const std::string& using_clause,
                               const std::vector<std::string>& columns) {
    size_t open = using_clause.find('(');
    int depth = 0;
    bool in_quote = false;
    for (size_t i = open; i < using_clause.size(); ++i) {
        char ch = using_clause[i];
        if (ch == '"')
            in_quote = !in_quote;
        if (in_quote)
            continue;
        if (ch == '(')
            ++depth;
        if (ch == ')' && --depth == 0) {
            return using_clause.substr(0, i) + ", " + join_idents(columns) + using_clause.substr(i);
        }
    }
    throw std::runtime_error("cannot parse index definition: " + using_clause);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

/// The partition columns (every level) a unique key lacks and must be widened with.
std::vector<std::string> missing_partition_columns(const std::vector<std::string>& key_columns,
                                                   const JobConfig& cfg) {
    std::vector<std::string> out;
    for (const auto& c : cfg.partition_columns()) {
        if (!contains(key_columns, c))
            out.push_back(c);
    }
    return out;
}

void plan_primary_key(const TableInfo& src, const JobConfig& cfg, const JobNames& names,
                      ShadowPlan& plan) {
    const IndexInfo* pk = src.primary_key();
    if (!pk)
        return;
    plan.key_columns = pk->key_columns;
    auto missing = missing_partition_columns(pk->key_columns, cfg);
    if (!missing.empty()) {
        plan.key_columns.insert(plan.key_columns.end(), missing.begin(), missing.end());
        plan.notes.push_back("primary key " + pk->name + " (" + join_idents(pk->key_columns) +
                             ") is widened to (" + join_idents(plan.key_columns) +
                             "): uniqueness now holds per partition key value");
    }
    std::string shadow_name = suffixed_name(pk->name, "__pgshift");
    plan.index_sql.push_back("ALTER TABLE " + qualified(names.shadow) + " ADD CONSTRAINT " +
                             quote_ident_offline(shadow_name) + " PRIMARY KEY (" +
                             join_idents(plan.key_columns) + ")");
    plan.index_renames.push_back({shadow_name, pk->name});
}

void plan_secondary_index(const IndexInfo& idx, const JobConfig& cfg, const JobNames& names,
                          ShadowPlan& plan) {
    std::string shadow_name = suffixed_name(idx.name, "__pgshift");
    auto missing = missing_partition_columns(idx.key_columns, cfg);
    bool widen = idx.unique && !missing.empty();
    if (idx.constraint_name && idx.constraint_def && !idx.exclusion) {
        // A UNIQUE constraint stays a constraint (ADD CONSTRAINT ... USING
        // INDEX is not supported on partitioned tables): the index renames at
        // cutover rename the constraint with its index.
        std::string def = *idx.constraint_def;
        if (widen) {
            def = widen_using_clause(def, missing);
            plan.notes.push_back("unique constraint " + idx.name + " is widened with " +
                                 join_idents(missing) +
                                 ": uniqueness now holds per partition key value");
        }
        plan.index_sql.push_back("ALTER TABLE " + qualified(names.shadow) + " ADD CONSTRAINT " +
                                 quote_ident_offline(shadow_name) + " " + def);
    } else {
        std::string using_clause = idx.using_clause;
        if (widen) {
            // Expression and partial unique indexes take the plain partition
            // column as one more key column like any other.
            using_clause = widen_using_clause(using_clause, missing);
            plan.notes.push_back(
                std::string(idx.has_expressions ? "unique expression index " : "unique index ") +
                idx.name + " is widened with " + join_idents(missing) +
                ": uniqueness now holds per partition key value");
        }
        if (idx.exclusion) {
            plan.notes.push_back("exclusion constraint " + idx.name +
                                 " cannot exist on a partitioned table; its index is created "
                                 "as a plain index and the constraint is not enforced");
        }
        plan.index_sql.push_back(std::string("CREATE ") + (idx.unique ? "UNIQUE " : "") + "INDEX " +
                                 quote_ident_offline(shadow_name) + " ON " +
                                 qualified(names.shadow) + " USING " + using_clause);
    }
    plan.index_renames.push_back({shadow_name, idx.name});
}

std::string comment_sql(const std::string& object, const std::optional<std::string>& text) {
    return "COMMENT ON " + object + " IS " + quote_literal_offline(*text);
}

std::string fk_sql(const ConstraintInfo& fk, const std::string& referenced) {
    return "FOREIGN KEY (" + join_idents(fk.columns) + ") REFERENCES " + referenced + " (" +
           join_idents(fk.ref_columns) + ")" + fk.actions;
}

std::string join_list(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v)
        out += (out.empty() ? "" : ", ") + x;
    return out;
}

/// Replaces " ON <source> " in a pg_get_triggerdef text by the shadow.
std::string retarget_trigger(const std::string& def, const QualifiedName& from,
                             const QualifiedName& to) {
    std::string needle = " ON " + qualified(from) + " ";
    std::string plain =
        " ON " + quote_ident_offline(from.schema) + "." + pg::quote_ident_offline(from.name) + " ";
    size_t at = def.find(needle);
    if (at == std::string::npos)
        throw std::runtime_error("cannot parse trigger definition: " + def);
    return def.substr(0, at) + " ON " + qualified(to) + " " + def.substr(at + needle.size());
}

std::string unquoted_qualified_display(const QualifiedName& n) {
    return n.schema + "." + n.name;
}

void plan_columns_storage(const TableInfo& src, const JobNames& names, ShadowPlan& plan) {
    for (const auto& c : src.columns) {
        std::string alter = "ALTER TABLE " + qualified(names.shadow) + " ALTER COLUMN " +
                            quote_ident_offline(c.name);
        if (c.storage) {
            const char* kind = c.storage == 'p'   ? "PLAIN"
                               : c.storage == 'e' ? "EXTERNAL"
                               : c.storage == 'm' ? "MAIN"
                                                  : "EXTENDED";
            plan.create_sql.push_back(alter + " SET STORAGE " + kind);
        }
        if (c.compression == 'p' || c.compression == 'l')
            plan.create_sql.push_back(alter + " SET COMPRESSION " +
                                      (c.compression == 'p' ? "pglz" : "lz4"));
        if (c.stattarget >= 0)
            plan.create_sql.push_back(alter + " SET STATISTICS " + std::to_string(c.stattarget));
    }
}

/// CHECK constraints, comments of the table, its columns, indexes and
/// constraints, and the replica identity index.
void plan_constraints_and_comments(const TableInfo& src, const JobNames& names, ShadowPlan& plan) {
    const std::string shadow = qualified(names.shadow);
    // CHECK constraints: validated ones before the copy (the source's rows
    // satisfy them), NOT VALID ones after it, still NOT VALID. Constraint
    // names are per table, so the shadow's equal the source's.
    for (const auto& c : src.constraints) {
        if (c.type != 'c' || c.no_inherit)
            continue;
        std::string sql = "ALTER TABLE " + shadow + " ADD CONSTRAINT " +
                          quote_ident_offline(c.name) + " " + c.definition;
        (c.validated ? plan.create_sql : plan.index_sql).push_back(sql);
        if (c.comment)
            plan.index_sql.push_back(comment_sql(
                "CONSTRAINT " + quote_ident_offline(c.name) + " ON " + shadow, c.comment));
    }
    // Comments.
    if (src.comment)
        plan.index_sql.push_back(comment_sql("TABLE " + shadow, src.comment));
    for (const auto& c : src.columns) {
        if (c.comment)
            plan.index_sql.push_back(
                comment_sql("COLUMN " + shadow + "." + quote_ident_offline(c.name), c.comment));
    }
    for (const auto& i : src.indexes) {
        std::string shadow_index =
            qualified({names.shadow.schema, suffixed_name(i.name, "__pgshift")});
        if (i.comment)
            plan.index_sql.push_back(comment_sql("INDEX " + shadow_index, i.comment));
        if (i.constraint_name && i.constraint_comment)
            plan.index_sql.push_back(comment_sql(
                "CONSTRAINT " + quote_ident_offline(suffixed_name(i.name, "__pgshift")) + " ON " +
                    shadow,
                i.constraint_comment));
    }
}

/// The names a cloned object is addressed by in each state: during the sync
/// (shadow), after a cutover (the source's name is the partitioned table,
/// old_name the plain one) and after a rollback (the source's name is the
/// plain table again, the shadow's name the partitioned one).
struct Names {
    std::string shadow;  ///< partitioned table before cutover and after rollback
    std::string live;    ///< the source's name: new table after cutover, old after rollback
    std::string old;     ///< plain table after cutover
    std::string schema;  ///< of the partitions
};

void plan_replica_identity_index(const TableInfo& src, const JobNames& names, ShadowPlan& plan) {
    // Replica identity USING INDEX: the root and every partition of every
    // level (it never recurses), each on its own part of the cloned index.
    const IndexInfo* ri = src.replident == 'i' ? src.identity_index() : nullptr;
    if (!ri)
        return;
    std::string idx_name = suffixed_name(ri->name, "__pgshift");
    plan.index_sql.push_back("ALTER TABLE " + qualified(names.shadow) +
                             " REPLICA IDENTITY USING INDEX " + quote_ident_offline(idx_name));
    plan.index_sql.push_back(
        "DO $pgshift$ DECLARE r record; BEGIN FOR r IN SELECT x.indrelid::regclass AS tbl, "
        "c.relname AS idx FROM pg_partition_tree(" +
        quote_literal_offline(qualified({names.shadow.schema, idx_name})) +
        "::regclass) t JOIN pg_index x ON x.indexrelid = t.relid "
        "JOIN pg_class c ON c.oid = t.relid WHERE t.level > 0 "
        "LOOP EXECUTE format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', "
        "r.tbl, r.idx); END LOOP; END $pgshift$");
}

std::string trigger_mode(char enabled) {
    return enabled == 'A'   ? " ENABLE ALWAYS TRIGGER "
           : enabled == 'R' ? " ENABLE REPLICA TRIGGER "
                            : " ENABLE TRIGGER ";
}

/// Triggers are created disabled, so nothing fires while rows are copied and
/// applied (whatever session_replication_role the applier runs with). Each
/// swap gives the live table's triggers their firing mode and disables those
/// of the table the reverse or forward stream writes next.
void plan_triggers(const TableInfo& src, const JobNames& names, const Names& n, ShadowPlan& plan) {
    for (const auto& t : src.triggers) {
        plan.index_sql.push_back(retarget_trigger(t.definition, names.source, names.shadow));
        plan.index_sql.push_back("ALTER TABLE " + n.shadow + " DISABLE TRIGGER " +
                                 quote_ident_offline(t.name));
        if (t.comment)
            plan.index_sql.push_back(comment_sql(
                "TRIGGER " + quote_ident_offline(t.name) + " ON " + n.shadow, t.comment));
        if (t.enabled == 'D')
            continue;
        std::string name = quote_ident_offline(t.name);
        plan.swap_sql.push_back("ALTER TABLE " + n.live + trigger_mode(t.enabled) + name);
        plan.swap_sql.push_back("ALTER TABLE " + n.old + " DISABLE TRIGGER " + name);
        plan.rollback_sql.push_back("ALTER TABLE " + n.shadow + " DISABLE TRIGGER " + name);
        plan.rollback_sql.push_back("ALTER TABLE " + n.live + trigger_mode(t.enabled) + name);
    }
    if (!src.triggers.empty())
        plan.notes.push_back(std::to_string(src.triggers.size()) +
                             " trigger(s) are created disabled on the shadow and switched to "
                             "their original firing mode in the cutover transaction; the old "
                             "table's are disabled then (a rollback swaps that back)");
}

/// Row level security: ENABLE and the policies from the start (the job's
/// role owns the shadow, so only FORCE would filter the copy and the
/// applier, and grantees never see unfiltered rows); FORCE moves with each swap.
void plan_rls(const TableInfo& src, const Names& n, ShadowPlan& plan) {
    for (const auto& p : src.policies) {
        std::string sql = "CREATE POLICY " + quote_ident_offline(p.name) + " ON " + n.shadow +
                          (p.permissive ? " AS PERMISSIVE" : " AS RESTRICTIVE") + " FOR " +
                          p.command + " TO " + p.roles;
        if (p.using_expr)
            sql += " USING (" + *p.using_expr + ")";
        if (p.check_expr)
            sql += " WITH CHECK (" + *p.check_expr + ")";
        plan.index_sql.push_back(sql);
    }
    if (src.rls_enabled)
        plan.create_sql.push_back("ALTER TABLE " + n.shadow + " ENABLE ROW LEVEL SECURITY");
    if (src.rls_forced) {
        plan.swap_sql.push_back("ALTER TABLE " + n.live + " FORCE ROW LEVEL SECURITY");
        plan.swap_sql.push_back("ALTER TABLE " + n.old + " NO FORCE ROW LEVEL SECURITY");
        plan.rollback_sql.push_back("ALTER TABLE " + n.shadow + " NO FORCE ROW LEVEL SECURITY");
        plan.rollback_sql.push_back("ALTER TABLE " + n.live + " FORCE ROW LEVEL SECURITY");
    }
}

void plan_grants_and_owner(const TableInfo& src, const Names& n, ShadowPlan& plan) {
    // Privileges (the owner's own come with ownership).
    for (const auto& g : src.grants) {
        plan.index_sql.push_back("GRANT " + g.privilege + " ON TABLE " + n.shadow + " TO " +
                                 g.grantee + (g.grantable ? " WITH GRANT OPTION" : ""));
    }
    for (const auto& c : src.columns) {
        for (const auto& g : c.grants) {
            plan.index_sql.push_back("GRANT " + g.privilege + " (" + quote_ident_offline(c.name) +
                                     ") ON TABLE " + n.shadow + " TO " + g.grantee +
                                     (g.grantable ? " WITH GRANT OPTION" : ""));
        }
    }
    // Owner: at cutover (the job's role keeps writing the shadow until then);
    // ALTER TABLE ... OWNER TO does not recurse to partitions. A rollback
    // leaves it: the owner's role can still be assumed by the job.
    if (src.owner_assumable && !src.owner.empty()) {
        plan.swap_sql.push_back("ALTER TABLE " + n.live + " OWNER TO " + src.owner);
        for (const auto* p : all_partitions(plan.partitions)) {
            plan.swap_sql.push_back("ALTER TABLE " + qualified({n.schema, p->name}) + " OWNER TO " +
                                    src.owner);
        }
    }
}

/// Outgoing foreign keys exist only on the live table. On the table a
/// stream writes, their actions and checks would fire from the
/// application's writes on the referenced table before the stream catches
/// up (a cascaded delete, then the streamed delete finds no row; a parent
/// row that cannot be deleted because the lagging copy still references
/// it). PostgreSQL cannot add a NOT VALID foreign key to a partitioned
/// table, so the cutover adds it NOT VALID to each leaf partition; after
/// the commit each one is validated and the root's constraint is added,
/// which attaches them without a scan. The old table's are dropped at
/// cutover and added back (NOT VALID, validated after the commit) by a rollback.
void plan_outgoing_fks(const TableInfo& src, const JobNames& names, const Names& n,
                       ShadowPlan& plan) {
    bool any_fk = false;
    for (const auto& c : src.constraints) {
        if (c.type != 'f')
            continue;
        any_fk = true;
        std::string name = quote_ident_offline(c.name);
        bool self = c.table == names.source;  // self-references follow the table
        std::string fwd_ref = self ? n.live : qualified(c.table);
        for (const auto* p : leaf_partitions(plan.partitions)) {
            std::string part = qualified({n.schema, p->name});
            plan.swap_sql.push_back("ALTER TABLE " + part + " ADD CONSTRAINT " + name + " " +
                                    fk_sql(c, fwd_ref) + " NOT VALID");
            if (c.validated)
                plan.after_commit_sql.push_back("ALTER TABLE " + part + " VALIDATE CONSTRAINT " +
                                                name);
        }
        if (c.validated) {
            plan.after_commit_sql.push_back("ALTER TABLE " + n.live + " ADD CONSTRAINT " + name +
                                            " " + fk_sql(c, fwd_ref));
            if (c.comment)
                plan.after_commit_sql.push_back(
                    comment_sql("CONSTRAINT " + name + " ON " + n.live, c.comment));
        }
        plan.swap_sql.push_back("ALTER TABLE " + n.old + " DROP CONSTRAINT " + name);
        // Rollback: the root's constraint (if the after-commit step added
        // it) takes its partitions' along; unattached ones go one by one.
        plan.rollback_sql.push_back("ALTER TABLE " + n.shadow + " DROP CONSTRAINT IF EXISTS " +
                                    name);
        for (const auto* p : leaf_partitions(plan.partitions)) {
            plan.rollback_sql.push_back("ALTER TABLE " + qualified({n.schema, p->name}) +
                                        " DROP CONSTRAINT IF EXISTS " + name);
        }
        plan.rollback_sql.push_back("ALTER TABLE " + n.live + " ADD CONSTRAINT " + name + " " +
                                    fk_sql(c, fwd_ref) + " NOT VALID");
        if (c.comment)
            plan.rollback_sql.push_back(
                comment_sql("CONSTRAINT " + name + " ON " + n.live, c.comment));
        if (c.validated)
            plan.rollback_after_commit_sql.push_back("ALTER TABLE " + n.live +
                                                     " VALIDATE CONSTRAINT " + name);
    }
    if (any_fk)
        plan.notes.push_back(
            "foreign keys of the table are added NOT VALID to each partition in the cutover "
            "transaction, validated after it commits (no write lock), then added to the "
            "partitioned table, which attaches the validated ones; the old table's are dropped "
            "at cutover so that they cannot block or cascade into it (a rollback adds them back)");
}

/// Incoming foreign keys point at the live table: re-created in each swap
/// transaction (NOT VALID unless the referencing table is partitioned, which
/// cannot take NOT VALID), validated after the commit.
void plan_incoming_fks(const TableInfo& src, const JobConfig& cfg, const Names& n,
                       ShadowPlan& plan) {
    for (const auto& fk : src.incoming_fks) {
        if (!referenceable_after_widening(src, cfg.partition_columns(), fk.ref_columns))
            continue;  // refused by the preflight check
        std::string child = qualified(fk.table);
        std::string name = quote_ident_offline(fk.name);
        bool not_valid = !fk.table_partitioned;
        auto repoint = [&](std::vector<std::string>& in_tx, std::vector<std::string>& after) {
            in_tx.push_back("ALTER TABLE " + child + " DROP CONSTRAINT " + name);
            in_tx.push_back("ALTER TABLE " + child + " ADD CONSTRAINT " + name + " " +
                            fk_sql(fk, n.live) + (not_valid ? " NOT VALID" : ""));
            if (fk.comment)
                in_tx.push_back(comment_sql("CONSTRAINT " + name + " ON " + child, fk.comment));
            if (not_valid && fk.validated)
                after.push_back("ALTER TABLE " + child + " VALIDATE CONSTRAINT " + name);
        };
        repoint(plan.swap_sql, plan.after_commit_sql);
        repoint(plan.rollback_sql, plan.rollback_after_commit_sql);
        plan.notes.push_back("foreign key " + fk.name + " of " +
                             unquoted_qualified_display(fk.table) +
                             " is re-created against the new table in the cutover transaction" +
                             (not_valid ? " and validated after it commits" : ""));
    }
}

/// Views read the table by OID: re-created (same OID, grants and
/// dependants) from their definition text, which names the table again and
/// so resolves to whichever table has the name in that transaction.
void plan_views(const TableInfo& src, ShadowPlan& plan) {
    for (const auto& v : src.views) {
        if (v.relkind != 'v')
            continue;  // materialized views: see the preflight check
        std::string def = v.definition;
        while (!def.empty() && (def.back() == ';' || def.back() == ' ' || def.back() == '\n'))
            def.pop_back();
        std::string sql = "CREATE OR REPLACE VIEW " + qualified(v.name) +
                          (v.options.empty() ? "" : " WITH (" + join_list(v.options) + ")") +
                          " AS" + def;
        plan.swap_sql.push_back(sql);
        plan.rollback_sql.push_back(sql);
        plan.notes.push_back("view " + unquoted_qualified_display(v.name) +
                             " is re-created in the cutover transaction to read the new table");
    }
}

void plan_publications(const TableInfo& src, const Names& n, ShadowPlan& plan) {
    for (const auto& pub : src.publications) {
        if (pub.filtered)
            continue;  // warned by the preflight
        std::string alter = "ALTER PUBLICATION " + quote_ident_offline(pub.name);
        plan.swap_sql.push_back(alter + " ADD TABLE " + n.live);
        plan.swap_sql.push_back(alter + " DROP TABLE " + n.old);
        plan.rollback_sql.push_back(alter + " DROP TABLE " + n.shadow);
        plan.rollback_sql.push_back(alter + " ADD TABLE " + n.live);
        plan.notes.push_back("publication " + pub.name +
                             " publishes the new table instead of the old one from the cutover "
                             "on; without publish_via_partition_root its changes are published "
                             "under the partitions' names");
    }
}

/// Extended statistics: cloned under a temporary name (statistics names are
/// per schema) and swapped like index names. On a partitioned table ANALYZE
/// builds them over all partitions (CREATE STATISTICS, "Notes").
void plan_statistics(const TableInfo& src, const Names& n, ShadowPlan& plan) {
    for (const auto& s : src.statistics) {
        QualifiedName tmp{s.name.schema, suffixed_name(s.name.name, "__pgshift")};
        QualifiedName old{s.name.schema, suffixed_name(s.name.name, "__pgshift_old")};
        plan.index_sql.push_back("CREATE STATISTICS " + qualified(tmp) +
                                 (s.kinds.empty() ? "" : " (" + s.kinds + ")") + " ON " +
                                 s.columns + " FROM " + n.shadow);
        if (s.stattarget >= 0)
            plan.index_sql.push_back("ALTER STATISTICS " + qualified(tmp) + " SET STATISTICS " +
                                     std::to_string(s.stattarget));
        if (s.comment)
            plan.index_sql.push_back(comment_sql("STATISTICS " + qualified(tmp), s.comment));
        auto rename = [](const QualifiedName& from, const std::string& to) {
            return "ALTER STATISTICS " + qualified(from) + " RENAME TO " + quote_ident_offline(to);
        };
        plan.swap_sql.push_back(rename(s.name, old.name));
        plan.swap_sql.push_back(rename(tmp, s.name.name));
        plan.rollback_sql.push_back(rename(s.name, tmp.name));
        plan.rollback_sql.push_back(rename(old, s.name.name));
    }
}

void plan_objects(const TableInfo& src, const JobConfig& cfg, const JobNames& names,
                  ShadowPlan& plan) {
    plan_constraints_and_comments(src, names, plan);
    Names n{qualified(names.shadow), qualified(names.source), qualified(names.old),
            names.shadow.schema};
    plan_replica_identity_index(src, names, plan);
    plan_triggers(src, names, n, plan);
    plan_rls(src, n, plan);
    plan_grants_and_owner(src, n, plan);
    plan_statistics(src, n, plan);
    plan_outgoing_fks(src, names, n, plan);
    plan_incoming_fks(src, cfg, n, plan);
    plan_views(src, plan);
    plan_publications(src, n, plan);
    if (!src.reloptions.empty())
        plan.notes.push_back("storage parameters (" + join_list(src.reloptions) +
                             ") are set on every partition: a partitioned table holds none");
}
}  // namespace

std::vector<std::string> partition_create_sql(const PartitionBound& p, const QualifiedName& parent,
                                              const std::string& sub_method,
                                              const std::vector<std::string>& reloptions) {
    std::vector<std::string> sql{partition_sql(p, parent, sub_method, reloptions)};
    for (const auto& sub : p.subpartitions)
        sql.push_back(partition_sql(sub, {parent.schema, p.name}, "", reloptions));
    return sql;
}

bool referenceable_after_widening(const TableInfo& source,
                                  const std::vector<std::string>& partition_columns,
                                  const std::vector<std::string>& ref_columns) {
    std::vector<std::string> want = ref_columns;
    std::sort(want.begin(), want.end());
    for (const auto& i : source.indexes) {
        if (!i.unique || i.partial || i.has_expressions || i.exclusion || i.key_columns.empty())
            continue;
        std::vector<std::string> cols = i.key_columns;
        for (const auto& k : partition_columns) {
            if (!contains(cols, k))
                cols.push_back(k);
        }
        std::sort(cols.begin(), cols.end());
        if (cols == want)
            return true;
    }
    return false;
}

ShadowPlan plan_shadow(const TableInfo& src, const JobConfig& cfg, const JobNames& names,
                       const std::vector<PartitionBound>& partitions) {
    ShadowPlan plan;
    plan.partitions = partitions;
    // The partition columns are part of the widened primary key and of a
    // widened replica identity index, both of which need NOT NULL columns.
    bool key_in_pk = src.primary_key() != nullptr || src.identity_index() != nullptr;
    const auto key_columns = cfg.partition_columns();
    std::string table = "CREATE TABLE " + qualified(names.shadow) + " (\n";
    for (size_t i = 0; i < src.columns.size(); ++i) {
        const auto& c = src.columns[i];
        bool force_not_null = key_in_pk && contains(key_columns, c.name);
        table += "    " + column_definition(c, force_not_null) +
                 (i + 1 < src.columns.size() ? ",\n" : "\n");
        if (!c.generated)
            plan.copy_columns.push_back(c.name);
        if (c.identity == 'a')
            plan.identity_always_columns.push_back(c.name);
    }
    const char* method = cfg.strategy == "list"   ? "LIST"
                         : cfg.strategy == "hash" ? "HASH"
                                                  : "RANGE";
    table += ") PARTITION BY " + std::string(method) + " (" + quote_ident_offline(cfg.column) + ")";
    plan.create_sql.push_back(table);
    plan_columns_storage(src, names, plan);
    for (const auto& p : partitions) {
        auto sql = partition_create_sql(p, names.shadow, subpartition_method(cfg), src.reloptions);
        plan.create_sql.insert(plan.create_sql.end(), sql.begin(), sql.end());
    }
    plan_primary_key(src, cfg, names, plan);
    for (const auto& idx : src.indexes) {
        if (!idx.primary)
            plan_secondary_index(idx, cfg, names, plan);
    }
    plan_objects(src, cfg, names, plan);
    if (cfg.sub_strategy == "range" && cfg.strategy != "range") {
        plan.notes.push_back(
            "`pgshift maintain` premakes time ranges of a RANGE first level only: the "
            "sub-partition ranges end [partitioning] premake intervals after the data (or now); "
            "add later ones under each " +
            std::string(cfg.strategy == "list" ? "LIST" : "HASH") +
            " partition with CREATE TABLE ... PARTITION OF <partition> FOR VALUES FROM (...) TO "
            "(...), or set default_partition = true so that rows beyond them still have a place");
    }
    if (src.replident == 'f') {
        // REPLICA IDENTITY never recurses to partitions, and each partition
        // logs its own old tuples, so every partition needs it too.
        plan.index_sql.push_back("ALTER TABLE " + qualified(names.shadow) +
                                 " REPLICA IDENTITY FULL");
        for (const auto* p : all_partitions(partitions)) {
            plan.index_sql.push_back("ALTER TABLE " + qualified({names.shadow.schema, p->name}) +
                                     " REPLICA IDENTITY FULL");
        }
    }
    return plan;
}

}  // namespace pgshift
