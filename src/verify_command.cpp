// `pgshift verify`: data comparison of the partitioned table with its
// unpartitioned counterpart, and the partition-pruning check of the user's
// hot queries. See verify.h for the method and docs/runbook.md for use.
//
// While a stream runs (sync: source -> shadow; reverse: new -> old after
// cutover) the target trails by the replication lag, so chunks that differ
// are re-checked ([verify] rechecks times, recheck_wait_ms apart) before
// their rows are listed. After a cutover without a reverse stream the old
// table no longer receives writes: rows written since then show as
// differences, so verify right after the swap (or in a quiet window).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "commands.h"
#include "errors.h"
#include "ops_target.h"
#include "verify.h"

namespace pgshift {

namespace {

constexpr size_t kMaxListedRows = 1000;

struct Side {
    QualifiedName table;
    std::string sql_name;  ///< quoted
};

struct ChunkGrid {
    std::vector<std::string> bounds;  ///< sorted literals; bucket b covers [b-1, b)
};

/// The job's partition grid over [min, max]; coarsened tenfold until it
/// stays within kMaxPartitions chunks.
ChunkGrid make_grid(const OpsTarget& t, const PartitionInterval& interval, int64_t min,
                    int64_t max) {
    PartitionInterval iv = interval;
    while (true) {
        try {
            auto parts =
                compute_partitions("chunk", t.key_kind, iv, KeyRange{min, max}, min, 0, false);
            ChunkGrid g;
            for (const auto& p : parts)
                g.bounds.push_back(p.from);
            g.bounds.push_back(parts.back().to);
            return g;
        } catch (const std::runtime_error&) {
            if (iv.count > (int64_t{1} << 40))
                throw;
            iv.count *= 10;
        }
    }
}

std::string pg_text_array(const std::vector<std::string>& items) {
    std::string arr = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i)
            arr += ',';
        arr += '"';
        for (char c : items[i]) {
            if (c == '"' || c == '\\')
                arr += '\\';
            arr += c;
        }
        arr += '"';
    }
    return arr + "}";
}

/// Keys of one chunk found only on the left (old/source) or right side.
struct Pending {
    std::optional<int64_t> bucket;
    std::vector<std::string> only_left, only_right;
};

class DataCheck {
  public:
    DataCheck(pg::Connection& conn, const JobConfig& cfg, const OpsTarget& t)
        : conn_(conn), cfg_(cfg), t_(t) {}

    nlohmann::json run() {
        left_ = {*t_.unpartitioned, t_.unpartitioned->quoted()};
        right_ = {t_.partitioned, t_.partitioned.quoted()};
        read_columns();
        key_ = conn_.ident(t_.key_column);
        auto range =
            conn_.exec("SELECT min(m), max(n) FROM (SELECT min(" + key_units_expr(conn_, t_, "") +
                       ") m, max(" + key_units_expr(conn_, t_, "") + ") n FROM " + left_.sql_name +
                       " UNION ALL SELECT min(" + key_units_expr(conn_, t_, "") + "), max(" +
                       key_units_expr(conn_, t_, "") + ") FROM " + right_.sql_name + ") x");
        int64_t lo = range.is_null(0, 0) ? 0 : range.i64(0, 0);
        int64_t hi = range.is_null(0, 1) ? 0 : range.i64(0, 1);
        grid_ = make_grid(t_, cfg_.interval, lo, hi);
        array_ = pg_text_array(grid_.bounds);

        ChunkMap l = sums(left_), r = sums(right_);
        auto diff = differing_chunks(l, r);
        int rechecks = 0;
        int allowed = t_.streaming ? cfg_.verify_rechecks : 0;
        while (!diff.empty() && rechecks < allowed) {
            ++rechecks;
            spdlog::info("verify: {} chunk(s) differ; re-checking in {} ms ({} of {})", diff.size(),
                         cfg_.verify_recheck_wait_ms, rechecks, allowed);
            std::this_thread::sleep_for(std::chrono::milliseconds(cfg_.verify_recheck_wait_ms));
            std::vector<std::optional<int64_t>> still;
            for (const auto& b : diff) {
                // The totals reported below use the latest look at each chunk.
                l[b] = chunk_sum(left_, b);
                r[b] = chunk_sum(right_, b);
                if (!(l[b] == r[b]))
                    still.push_back(b);
            }
            diff = std::move(still);
        }
        int64_t rows_left = 0, rows_right = 0;
        for (const auto& [k, v] : l)
            rows_left += v.rows;
        for (const auto& [k, v] : r)
            rows_right += v.rows;
        // Rows of the chunks that still differ, by key. Under a steady write
        // load a busy chunk never matches as a whole (each side is read at a
        // different moment), so while a stream runs the differing keys are
        // looked at again (relook): keys that converged were changes in
        // flight; only keys that still differ are reported.
        std::vector<Pending> pending;
        size_t listed_keys = 0;
        int64_t chunks_in_flight = 0;
        for (const auto& b : diff) {
            Pending p{b, {}, {}};
            if (listed_keys < kMaxListedRows) {
                keys_only_in(left_, right_, b, p.only_left);
                keys_only_in(right_, left_, b, p.only_right);
                listed_keys += p.only_left.size() + p.only_right.size();
                // Each EXCEPT ALL reads both tables in one statement: no row
                // differs, so the chunk's sums differed only between reads.
                if (p.only_left.empty() && p.only_right.empty()) {
                    ++chunks_in_flight;
                    continue;
                }
            }
            pending.push_back(std::move(p));
        }
        int64_t in_flight = 0;
        if (t_.streaming && listed_keys > 0)
            in_flight = relook(pending, listed_keys);
        nlohmann::json chunks = nlohmann::json::array();
        std::vector<std::string> only_left, only_right;
        diff.clear();
        for (const auto& p : pending) {
            diff.push_back(p.bucket);
            chunks.push_back({{"range", describe(p.bucket)},
                              {"rows_old", l[p.bucket].rows},
                              {"rows_new", r[p.bucket].rows}});
            only_left.insert(only_left.end(), p.only_left.begin(), p.only_left.end());
            only_right.insert(only_right.end(), p.only_right.begin(), p.only_right.end());
        }
        auto rows = classify_rows(only_left, only_right);
        bool truncated = rows.size() > kMaxListedRows;
        if (truncated)
            rows.resize(kMaxListedRows);
        nlohmann::json listed = nlohmann::json::array();
        for (const auto& [k, p] : rows)
            listed.push_back({{"key", k}, {"problem", to_string(p)}});
        return {{"ok", diff.empty()},
                {"old", left_.table.display()},
                {"new", right_.table.display()},
                {"key", key_desc_},
                {"chunks", grid_.bounds.size() - 1},
                {"rows_old", rows_left},
                {"rows_new", rows_right},
                {"rechecks", rechecks},
                {"rows_in_flight", in_flight},
                {"chunks_in_flight", chunks_in_flight},
                {"differing_chunks", chunks},
                {"rows", listed},
                {"rows_truncated", truncated}};
    }

  private:
    void read_columns() {
        auto r = conn_.exec_params(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum",
            {left_.table.quoted()});
        for (int i = 0; i < r.rows(); ++i) {
            if (i)
                row_expr_ += ", ";
            row_expr_ += "t." + conn_.ident(r.view(i, 0));
        }
        row_expr_ = "ROW(" + row_expr_ + ")::text";
        // Rows are listed by the old table's primary key, else its replica
        // identity index, else (REPLICA IDENTITY FULL, no key) by the whole row.
        auto k = conn_.exec_params(
            "SELECT a.attname FROM pg_index i"
            "  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY u(attnum, pos)"
            "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum"
            " WHERE i.indrelid = to_regclass($1) AND (i.indisprimary OR i.indisreplident)"
            "   AND u.pos <= i.indnkeyatts"
            " ORDER BY i.indisprimary DESC, i.indexrelid, u.pos",
            {left_.table.quoted()});
        std::vector<std::string> cols;
        for (int i = 0; i < k.rows(); ++i) {
            std::string c = k.str(i, 0);
            if (std::find(cols.begin(), cols.end(), c) == cols.end())
                cols.push_back(c);
        }
        if (cols.empty()) {
            key_expr_ = row_expr_;
            key_desc_ = "(whole row)";
            return;
        }
        std::string e;
        for (const auto& c : cols) {
            e += (e.empty() ? "" : ", ") + std::string("t.") + conn_.ident(c);
            key_desc_ += (key_desc_.empty() ? "" : ", ") + quote_identifier_if_needed(c);
        }
        key_expr_ = "ROW(" + e + ")::text";
        key_desc_ = "(" + key_desc_ + ")";
    }

    /// WHERE condition of bucket b, with $1 the bounds array.
    std::string condition(const std::optional<int64_t>& b) const {
        std::string col = "t." + key_;
        std::string arr = "($1::text[]::" + t_.key_type + "[])";
        int64_t n = static_cast<int64_t>(grid_.bounds.size());
        if (!b)
            return col + " IS NULL";
        if (*b <= 0)
            return col + " < " + arr + "[1]";
        if (*b >= n)
            return col + " >= " + arr + "[" + std::to_string(n) + "]";
        return col + " >= " + arr + "[" + std::to_string(*b) + "] AND " + col + " < " + arr + "[" +
               std::to_string(*b + 1) + "]";
    }

    std::string describe(const std::optional<int64_t>& b) const {
        int64_t n = static_cast<int64_t>(grid_.bounds.size());
        if (!b)
            return t_.key_column + " IS NULL";
        if (*b <= 0)
            return t_.key_column + " < " + grid_.bounds.front();
        if (*b >= n)
            return t_.key_column + " >= " + grid_.bounds.back();
        return "[" + grid_.bounds[*b - 1] + ", " + grid_.bounds[*b] + ")";
    }

    std::string agg() const {
        return "count(*), coalesce(sum(hashtext(" + row_expr_ + ")::bigint), 0)::text";
    }

    ChunkMap sums(const Side& s) {
        auto r =
            conn_.exec_params("SELECT width_bucket(t." + key_ + ", $1::text[]::" + t_.key_type +
                                  "[]), " + agg() + " FROM " + s.sql_name + " t GROUP BY 1",
                              {array_});
        ChunkMap m;
        for (int i = 0; i < r.rows(); ++i) {
            std::optional<int64_t> b;
            if (!r.is_null(i, 0))
                b = r.i64(i, 0);
            m[b] = ChunkSum{r.i64(i, 1), r.str(i, 2)};
        }
        return m;
    }

    ChunkSum chunk_sum(const Side& s, const std::optional<int64_t>& b) {
        auto r = conn_.exec_params(
            "SELECT " + agg() + " FROM " + s.sql_name + " t WHERE " + condition(b), {array_});
        return ChunkSum{r.i64(0, 0), r.str(0, 1)};
    }

    /// Row hashes per key (a key may have several rows without a unique key).
    /// Looks at the differing keys again, up to [verify] rechecks times
    /// (at least once): each time the side the application writes is read
    /// first and the side the stream writes recheck_wait_ms later, so the
    /// stream has applied what was read unless the row changed again in
    /// between; such a row is looked at once more. Keys that match are
    /// dropped from `pending`; returns how many (changes in flight).
    int64_t relook(std::vector<Pending>& pending, size_t listed_keys) {
        // sync: the source (left) is written, the shadow (right) trails;
        // reverse stream: the new table (right) is written, the old trails.
        bool left_trails = t_.after_cutover;
        int64_t in_flight = 0;
        int looks = std::max(1, cfg_.verify_rechecks);
        for (int look = 1; look <= looks && listed_keys > 0; ++look) {
            spdlog::info("verify: {} row(s) differ; looking at them again ({} of {})", listed_keys,
                         look, looks);
            std::vector<Pending> still;
            listed_keys = 0;
            for (auto& p : pending) {
                if (p.only_left.empty() && p.only_right.empty()) {
                    still.push_back(std::move(p));  // listing limit reached: keep as is
                    continue;
                }
                std::vector<std::string> keys = p.only_left;
                keys.insert(keys.end(), p.only_right.begin(), p.only_right.end());
                const Side& first = left_trails ? right_ : left_;
                const Side& second = left_trails ? left_ : right_;
                auto x = row_hashes(first, p.bucket, keys);
                std::this_thread::sleep_for(std::chrono::milliseconds(cfg_.verify_recheck_wait_ms));
                auto y = row_hashes(second, p.bucket, keys);
                auto& a = left_trails ? y : x;
                auto& c = left_trails ? x : y;
                Pending q{p.bucket, {}, {}};
                std::set<std::string> seen;
                for (const auto& k : keys) {
                    if (!seen.insert(k).second)
                        continue;
                    if (a[k] == c[k]) {
                        ++in_flight;
                        continue;
                    }
                    if (!a[k].empty())
                        q.only_left.push_back(k);
                    if (!c[k].empty())
                        q.only_right.push_back(k);
                }
                listed_keys += q.only_left.size() + q.only_right.size();
                if (!q.only_left.empty() || !q.only_right.empty())
                    still.push_back(std::move(q));
            }
            pending = std::move(still);
        }
        return in_flight;
    }

    std::map<std::string, std::vector<std::string>> row_hashes(
        const Side& s, const std::optional<int64_t>& bucket, const std::vector<std::string>& keys) {
        auto r =
            conn_.exec_params("SELECT k, h::text FROM (SELECT " + key_expr_ + " AS k, hashtext(" +
                                  row_expr_ + ") AS h FROM " + s.sql_name + " t WHERE " +
                                  condition(bucket) + ") x WHERE k = ANY($2::text[]) ORDER BY k, h",
                              {array_, pg_text_array(keys)});
        std::map<std::string, std::vector<std::string>> out;
        for (int i = 0; i < r.rows(); ++i)
            out[r.str(i, 0)].push_back(r.str(i, 1));
        return out;
    }

    void keys_only_in(const Side& a, const Side& b, const std::optional<int64_t>& bucket,
                      std::vector<std::string>& out) {
        std::string sel = "SELECT " + key_expr_ + " AS k, hashtext(" + row_expr_ + ") AS h FROM ";
        auto r = conn_.exec_params("SELECT k FROM (" + sel + a.sql_name + " t WHERE " +
                                       condition(bucket) + " EXCEPT ALL " + sel + b.sql_name +
                                       " t WHERE " + condition(bucket) + ") x ORDER BY k LIMIT " +
                                       std::to_string(kMaxListedRows),
                                   {array_});
        for (int i = 0; i < r.rows(); ++i)
            out.push_back(r.str(i, 0));
    }

    pg::Connection& conn_;
    const JobConfig& cfg_;
    const OpsTarget& t_;
    Side left_, right_;
    std::string key_, row_expr_, key_expr_, key_desc_, array_;
    ChunkGrid grid_;
};

bool names_table(const std::string& query, const std::string& name) {
    auto lower = [](std::string s) {
        for (char& c : s)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    return lower(query).find(lower(name)) != std::string::npos;
}

nlohmann::json check_pruning(pg::Connection& conn, const JobConfig& cfg, const OpsTarget& t) {
    auto parts = list_partitions(conn, t);
    std::set<std::string> names;
    for (const auto& p : parts)
        names.insert(p.name);
    nlohmann::json queries = nlohmann::json::array();
    bool ok = true;
    for (const auto& q : cfg.verify_queries) {
        nlohmann::json j{{"query", q}, {"partitions_total", parts.size()}};
        if (!t.after_cutover && !names_table(q, t.partitioned.name)) {
            j["status"] = "skipped";
            j["detail"] = "pruning is checked after cutover (the query does not name the shadow " +
                          t.partitioned.display() + ")";
            queries.push_back(j);
            continue;
        }
        try {
            conn.exec("BEGIN TRANSACTION READ ONLY");
            conn.exec("SET LOCAL statement_timeout = '5min'");
            auto r = conn.exec(std::string(cfg.verify_analyze ? "EXPLAIN (ANALYZE, FORMAT JSON) "
                                                              : "EXPLAIN (FORMAT JSON) ") +
                               q);
            conn.exec("ROLLBACK");
            auto scan = analyze_plan(nlohmann::json::parse(r.str(0, 0)), names);
            bool pass = scan.scanned.size() < parts.size();
            ok = ok && pass;
            j["status"] = pass ? "pass" : "fail";
            j["partitions_scanned"] = scan.scanned;
            j["subplans_removed"] = scan.subplans_removed;
            j["never_executed"] = scan.never_executed;
            j["detail"] = "scans " + std::to_string(scan.scanned.size()) + " of " +
                          std::to_string(parts.size()) + " partitions" +
                          (pass ? "" : " (no pruning: add a condition on the partition key)");
        } catch (const pg::PgError& e) {
            conn.rollback_quietly();
            ok = false;
            j["status"] = "error";
            j["detail"] = e.what();
        }
        queries.push_back(j);
    }
    return {{"ok", ok}, {"analyze", cfg.verify_analyze}, {"queries", queries}};
}

}  // namespace

int verify_command(const JobConfig& cfg, bool json) {
    auto conn = open_ops_connection(cfg, "verify");
    OpsTarget t = resolve_target(conn, cfg);
    nlohmann::json data;
    if (t.unpartitioned) {
        data = DataCheck(conn, cfg, t).run();
    } else {
        data = {{"ok", true},
                {"skipped", true},
                {"detail", "no unpartitioned table to compare with (the old table was removed)"}};
    }
    nlohmann::json pruning = check_pruning(conn, cfg, t);
    bool ok = data["ok"].get<bool>() && pruning["ok"].get<bool>();
    nlohmann::json out{{"job", cfg.job_name},
                       {"phase", t.phase ? nlohmann::json(to_string(*t.phase)) : nlohmann::json()},
                       {"partitioned_table", t.partitioned.display()},
                       {"data", data},
                       {"pruning", pruning},
                       {"ok", ok}};
    if (json) {
        std::printf("%s\n", out.dump(2).c_str());
        return ok ? kExitOk : kExitRuntime;
    }
    std::printf("job %s (%s): %s\n", cfg.job_name.c_str(),
                t.after_cutover ? "after cutover" : "during sync", t.partitioned.display().c_str());
    if (data.contains("skipped")) {
        std::printf("data     SKIP  %s\n", data["detail"].get<std::string>().c_str());
    } else {
        std::printf("data     %s  %s (%lld rows) vs %s (%lld rows), %zu chunks by %s",
                    data["ok"].get<bool>() ? "PASS" : "FAIL",
                    data["old"].get<std::string>().c_str(),
                    static_cast<long long>(data["rows_old"].get<int64_t>()),
                    data["new"].get<std::string>().c_str(),
                    static_cast<long long>(data["rows_new"].get<int64_t>()),
                    data["chunks"].get<size_t>(), cfg.column.c_str());
        std::printf(", %d re-check(s)", data["rechecks"].get<int>());
        if (data["chunks_in_flight"].get<int64_t>() > 0) {
            std::printf(", %lld chunk(s) matched row by row (totals read at different moments)",
                        static_cast<long long>(data["chunks_in_flight"].get<int64_t>()));
        }
        if (data["rows_in_flight"].get<int64_t>() > 0) {
            std::printf(", %lld row(s) were changes in flight",
                        static_cast<long long>(data["rows_in_flight"].get<int64_t>()));
        }
        std::printf("\n");
        for (const auto& c : data["differing_chunks"]) {
            std::printf("         chunk %s differs: %lld rows old, %lld rows new\n",
                        c["range"].get<std::string>().c_str(),
                        static_cast<long long>(c["rows_old"].get<int64_t>()),
                        static_cast<long long>(c["rows_new"].get<int64_t>()));
        }
        for (const auto& r : data["rows"]) {
            std::printf("         key %s %s: %s\n", data["key"].get<std::string>().c_str(),
                        r["key"].get<std::string>().c_str(),
                        r["problem"].get<std::string>().c_str());
        }
        if (data["rows_truncated"].get<bool>())
            std::printf("         (only the first %zu rows are listed)\n", kMaxListedRows);
    }
    if (cfg.verify_queries.empty()) {
        std::printf("pruning  SKIP  no [verify] query lines in %s\n", cfg.path.c_str());
    }
    for (const auto& q : pruning["queries"]) {
        std::string st = q["status"].get<std::string>();
        const char* tag = st == "pass" ? "PASS" : st == "skipped" ? "SKIP" : "FAIL";
        std::printf("pruning  %s  %s\n", tag, q["query"].get<std::string>().c_str());
        std::string detail = q["detail"].get<std::string>();
        if (q.contains("partitions_scanned") && !q["partitions_scanned"].empty() &&
            q["partitions_scanned"].size() <= 20) {
            detail += ":";
            for (const auto& p : q["partitions_scanned"])
                detail += " " + p.get<std::string>();
        }
        std::printf("         %s\n", detail.c_str());
    }
    std::printf("result   %s\n", ok ? "PASS" : "FAIL");
    return ok ? kExitOk : kExitRuntime;
}

}  // namespace pgshift
