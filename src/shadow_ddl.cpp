#include "shadow_ddl.h"

#include <algorithm>
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

std::string partition_sql(const PartitionBound& p, const QualifiedName& parent) {
    std::string sql = "CREATE TABLE " + quote_ident_offline(parent.schema) + "." +
                      quote_ident_offline(p.name) + " PARTITION OF " + qualified(parent);
    if (p.is_default)
        return sql + " DEFAULT";
    return sql + " FOR VALUES FROM (" + quote_literal_offline(p.from) + ") TO (" +
           quote_literal_offline(p.to) + ")";
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

/// Appends the partition column to the key list of a unique index's USING
/// clause ("btree (a) INCLUDE (b)" -> "btree (a, \"k\") INCLUDE (b)").
std::string widen_using_clause(const std::string& using_clause, const std::string& column) {
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
            return using_clause.substr(0, i) + ", " + quote_ident_offline(column) +
                   using_clause.substr(i);
        }
    }
    throw std::runtime_error("cannot parse index definition: " + using_clause);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

void plan_primary_key(const TableInfo& src, const JobConfig& cfg, const JobNames& names,
                      ShadowPlan& plan) {
    const IndexInfo* pk = src.primary_key();
    if (!pk)
        return;
    plan.key_columns = pk->key_columns;
    if (!contains(plan.key_columns, cfg.column)) {
        plan.key_columns.push_back(cfg.column);
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
    std::string using_clause = idx.using_clause;
    if (idx.unique && !contains(idx.key_columns, cfg.column)) {
        if (idx.has_expressions) {
            plan.notes.push_back("unique expression index " + idx.name +
                                 " cannot include the partition key; it is created as a "
                                 "non-unique index");
        } else {
            using_clause = widen_using_clause(using_clause, cfg.column);
            plan.notes.push_back("unique index " + idx.name + " is widened with \"" + cfg.column +
                                 "\": uniqueness now holds per partition key value");
        }
    }
    bool unique = idx.unique && !idx.has_expressions;
    std::string shadow_name = suffixed_name(idx.name, "__pgshift");
    plan.index_sql.push_back(std::string("CREATE ") + (unique ? "UNIQUE " : "") + "INDEX " +
                             quote_ident_offline(shadow_name) + " ON " + qualified(names.shadow) +
                             " USING " + using_clause);
    plan.index_renames.push_back({shadow_name, idx.name});
}

}  // namespace

ShadowPlan plan_shadow(const TableInfo& src, const JobConfig& cfg, const JobNames& names,
                       const std::vector<PartitionBound>& partitions) {
    ShadowPlan plan;
    plan.partitions = partitions;
    bool key_in_pk = src.primary_key() != nullptr;
    std::string table = "CREATE TABLE " + qualified(names.shadow) + " (\n";
    for (size_t i = 0; i < src.columns.size(); ++i) {
        const auto& c = src.columns[i];
        bool force_not_null = key_in_pk && c.name == cfg.column;
        table += "    " + column_definition(c, force_not_null) +
                 (i + 1 < src.columns.size() ? ",\n" : "\n");
        if (!c.generated)
            plan.copy_columns.push_back(c.name);
        if (c.identity == 'a')
            plan.identity_always_columns.push_back(c.name);
    }
    table += ") PARTITION BY RANGE (" + quote_ident_offline(cfg.column) + ")";
    plan.create_sql.push_back(table);
    for (const auto& p : partitions)
        plan.create_sql.push_back(partition_sql(p, names.shadow));
    plan_primary_key(src, cfg, names, plan);
    for (const auto& idx : src.indexes) {
        if (!idx.primary)
            plan_secondary_index(idx, cfg, names, plan);
    }
    if (src.replident == 'f') {
        // REPLICA IDENTITY never recurses to partitions, and each partition
        // logs its own old tuples, so every partition needs it too.
        plan.index_sql.push_back("ALTER TABLE " + qualified(names.shadow) +
                                 " REPLICA IDENTITY FULL");
        for (const auto& p : partitions) {
            plan.index_sql.push_back("ALTER TABLE " + qualified({names.shadow.schema, p.name}) +
                                     " REPLICA IDENTITY FULL");
        }
    }
    return plan;
}

}  // namespace pgshift
