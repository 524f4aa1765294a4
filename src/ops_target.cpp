#include "ops_target.h"

#include <algorithm>
#include <chrono>

#include "errors.h"
#include "phase_controller.h"

namespace pgshift {

namespace {

/// Reads "(value)" at s[pos]: a single-quoted literal ('' is one quote) or a
/// bare token up to ')'. Advances pos past the ')'.
std::optional<std::string> read_paren_value(std::string_view s, size_t& pos) {
    if (pos >= s.size() || s[pos] != '(')
        return std::nullopt;
    ++pos;
    std::string out;
    if (pos < s.size() && s[pos] == '\'') {
        ++pos;
        while (true) {
            if (pos >= s.size())
                return std::nullopt;
            char c = s[pos++];
            if (c == '\'') {
                if (pos < s.size() && s[pos] == '\'') {
                    out += '\'';
                    ++pos;
                    continue;
                }
                break;
            }
            out += c;
        }
    } else {
        while (pos < s.size() && s[pos] != ')' && s[pos] != ',')
            out += s[pos++];
        if (out.empty())
            return std::nullopt;
    }
    if (pos >= s.size() || s[pos] != ')')
        return std::nullopt;  // multi-column bound or trailing cast
    ++pos;
    return out;
}

bool eat(std::string_view s, size_t& pos, std::string_view word) {
    if (s.substr(pos, word.size()) != word)
        return false;
    pos += word.size();
    return true;
}

}  // namespace

std::optional<ParsedBound> parse_range_bound(std::string_view expr) {
    if (expr == "DEFAULT")
        return ParsedBound{true, "", ""};
    size_t pos = 0;
    if (!eat(expr, pos, "FOR VALUES FROM "))
        return std::nullopt;
    auto from = read_paren_value(expr, pos);
    if (!from || !eat(expr, pos, " TO "))
        return std::nullopt;
    auto to = read_paren_value(expr, pos);
    if (!to || pos != expr.size())
        return std::nullopt;
    return ParsedBound{false, *from, *to};
}

int64_t epoch_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

pg::Connection open_ops_connection(const JobConfig& cfg, const std::string& what) {
    pg::ConnectOptions co;
    co.application_name = job_application_name(cfg) + "/" + what;
    co.options += " -c TimeZone=UTC";
    return pg::Connection::open(cfg.dsn, co);
}

OpsTarget resolve_target(pg::Connection& conn, const JobConfig& cfg) {
    JobNames names = JobNames::from(cfg, conn.database());
    auto job = JobState(conn, cfg.job_name).load();
    auto relkind = [&](const QualifiedName& n) -> std::optional<char> {
        auto r = conn.exec_params(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2",
            {n.schema, n.name});
        if (r.rows() == 0)
            return std::nullopt;
        return r.view(0, 0)[0];
    };
    OpsTarget t;
    if (job)
        t.phase = job->phase;
    if (job && (job->phase == Phase::Done || job->phase == Phase::Reverse)) {
        t.after_cutover = true;
        t.streaming = job->phase == Phase::Reverse;
        t.partitioned = names.source;
        if (relkind(names.old))
            t.unpartitioned = names.old;
    } else if (job &&
               (job->phase == Phase::Copy || job->phase == Phase::Index ||
                job->phase == Phase::Sync) &&
               relkind(names.shadow) == 'p') {
        t.partitioned = names.shadow;
        t.unpartitioned = names.source;
        t.streaming = job->phase == Phase::Sync;
    } else if (relkind(names.source) == 'p') {
        t.after_cutover = true;
        t.partitioned = names.source;
        if (relkind(names.old))
            t.unpartitioned = names.old;
    } else {
        throw PrerequisiteError(
            "job " + cfg.job_name + ": there is no partitioned table yet (" +
            (job ? std::string("phase ") + to_string(job->phase) : std::string("not started")) +
            " and " + names.source.display() +
            " is not partitioned); start the conversion with `pgshift run -c " + cfg.path + "`");
    }
    if (relkind(t.partitioned) != 'p') {
        throw PrerequisiteError(t.partitioned.display() + " is not a partitioned table");
    }
    auto r = conn.exec_params(
        "SELECT a.atttypid::int, format_type(a.atttypid, NULL) FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
        {t.partitioned.quoted(), cfg.column});
    if (r.rows() == 0) {
        throw PrerequisiteError(t.partitioned.display() + " has no column " +
                                quote_identifier_if_needed(cfg.column) +
                                " ([partitioning] column)");
    }
    t.key_column = cfg.column;
    t.key_type = r.str(0, 1);
    try {
        t.key_kind = key_type_of(static_cast<uint32_t>(r.i64(0, 0)));
    } catch (const std::invalid_argument&) {
        throw PrerequisiteError("partition key " + quote_identifier_if_needed(cfg.column) +
                                " has type " + t.key_type +
                                "; only integer, date and timestamp keys are supported");
    }
    return t;
}

std::string key_units_expr(const pg::Connection& conn, const OpsTarget& target,
                           const std::string& alias) {
    std::string col =
        alias.empty() ? conn.ident(target.key_column) : alias + "." + conn.ident(target.key_column);
    if (target.key_kind == KeyType::Integer)
        return col + "::bigint";
    // extract(epoch) of a timestamp without time zone counts it as UTC; of a
    // date, midnight UTC; the session TimeZone is UTC for timestamptz.
    return "floor(extract(epoch from " + col + "))::bigint";
}

std::vector<int64_t> to_key_units(pg::Connection& conn, const OpsTarget& target,
                                  const std::vector<std::string>& literals) {
    std::vector<int64_t> out;
    if (literals.empty())
        return out;
    std::string arr = "{";
    for (size_t i = 0; i < literals.size(); ++i) {
        if (i)
            arr += ',';
        arr += '"';
        for (char c : literals[i]) {
            if (c == '"' || c == '\\')
                arr += '\\';
            arr += c;
        }
        arr += '"';
    }
    arr += '}';
    std::string expr = target.key_kind == KeyType::Integer
                           ? "x::bigint"
                           : "floor(extract(epoch from x::" + target.key_type + "))::bigint";
    auto r = conn.exec_params("SELECT " + expr +
                                  " FROM unnest($1::text[]) WITH ORDINALITY u(x, i)"
                                  " ORDER BY i",
                              {arr});
    for (int i = 0; i < r.rows(); ++i)
        out.push_back(r.i64(i, 0));
    return out;
}

std::vector<PartitionInfo> list_partitions(pg::Connection& conn, const OpsTarget& target) {
    auto r = conn.exec_params(
        "SELECT c.relname, n.nspname, pg_get_expr(c.relpartbound, c.oid),"
        "       greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid), i.inhdetachpending"
        "  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE i.inhparent = to_regclass($1)"
        " ORDER BY c.relname",
        {target.partitioned.quoted()});
    std::vector<PartitionInfo> parts;
    std::vector<std::string> literals;
    std::vector<std::pair<size_t, bool>> slots;  // (partition index, is `to`)
    for (int i = 0; i < r.rows(); ++i) {
        PartitionInfo p;
        p.name = r.str(i, 0);
        p.schema = r.str(i, 1);
        p.bound_expr = r.str(i, 2);
        p.est_rows = r.i64(i, 3);
        p.bytes = r.i64(i, 4);
        p.detach_pending = r.boolean(i, 5);
        p.bound = parse_range_bound(p.bound_expr);
        if (p.bound && !p.bound->is_default) {
            for (bool is_to : {false, true}) {
                const std::string& v = is_to ? p.bound->to : p.bound->from;
                if (v != "MINVALUE" && v != "MAXVALUE") {
                    literals.push_back(v);
                    slots.emplace_back(parts.size(), is_to);
                }
            }
        }
        parts.push_back(std::move(p));
    }
    auto units = to_key_units(conn, target, literals);
    for (size_t k = 0; k < slots.size(); ++k) {
        auto& p = parts[slots[k].first];
        (slots[k].second ? p.to_units : p.from_units) = units[k];
    }
    std::stable_sort(parts.begin(), parts.end(),
                     [](const PartitionInfo& a, const PartitionInfo& b) {
                         auto rank = [](const PartitionInfo& p) {
                             if (p.is_default())
                                 return 2;
                             return p.from_units ? 1 : 0;  // MINVALUE / unparsed first
                         };
                         if (rank(a) != rank(b))
                             return rank(a) < rank(b);
                         return a.from_units.value_or(0) < b.from_units.value_or(0);
                     });
    return parts;
}

}  // namespace pgshift
