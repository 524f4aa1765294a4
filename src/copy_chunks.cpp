#include "copy_chunks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace pgshift {

int chunk_count(int64_t rows, int64_t chunk_rows, int workers) {
    if (rows <= 0)
        return 1;
    int64_t n = (rows + chunk_rows - 1) / std::max<int64_t>(1, chunk_rows);
    n = std::max<int64_t>(n, int64_t{2} * workers);
    return static_cast<int>(std::min<int64_t>(n, 10000));
}

std::vector<CopyChunk> key_chunks(const std::vector<std::vector<std::string>>& boundaries) {
    std::vector<CopyChunk> chunks;
    std::optional<std::vector<std::string>> lower;
    for (const auto& b : boundaries) {
        chunks.push_back({static_cast<int>(chunks.size()), lower, b});
        lower = b;
    }
    chunks.push_back({static_cast<int>(chunks.size()), lower, std::nullopt});
    return chunks;
}

std::vector<CopyChunk> merge_committed(const std::vector<CopyChunk>& chunks,
                                       const std::vector<int>& committed, int max_per_range) {
    std::vector<int> numbers = committed;
    std::sort(numbers.begin(), numbers.end());
    std::vector<CopyChunk> out;
    int run = 0;  // chunks in out.back()
    int last = -2;
    for (int n : numbers) {
        auto it = std::find_if(chunks.begin(), chunks.end(),
                               [n](const CopyChunk& c) { return c.number == n; });
        if (it == chunks.end())
            continue;
        if (n == last + 1 && run < max_per_range && !out.empty()) {
            out.back().upper = it->upper;
            ++run;
        } else {
            out.push_back(*it);
            run = 1;
        }
        last = n;
    }
    return out;
}

std::vector<CopyChunk> ctid_chunks(int64_t heap_pages, int64_t pages_per_chunk) {
    pages_per_chunk = std::max<int64_t>(1, pages_per_chunk);
    std::vector<CopyChunk> chunks;
    for (int64_t first = 0; first < heap_pages; first += pages_per_chunk) {
        chunks.push_back({static_cast<int>(chunks.size()),
                          std::vector<std::string>{std::to_string(first)},
                          std::vector<std::string>{std::to_string(first + pages_per_chunk)}});
    }
    if (chunks.empty())
        chunks.push_back({0, std::vector<std::string>{"0"}, std::nullopt});
    chunks.back().upper.reset();
    return chunks;
}

namespace {

std::string row_of(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items)
        out += (out.empty() ? "" : ", ") + i;
    return items.size() == 1 ? out : "(" + out + ")";
}

std::string key_bound(const std::vector<std::string>& cols, const std::vector<std::string>& values,
                      const char* op,
                      const std::function<std::string(std::string_view)>& quote_literal) {
    std::vector<std::string> lits;
    for (const auto& v : values)
        lits.push_back(quote_literal(v));
    return row_of(cols) + " " + op + " " + row_of(lits);
}

}  // namespace

std::string chunk_predicate(ChunkKind kind, const std::vector<std::string>& quoted_columns,
                            const CopyChunk& chunk,
                            const std::function<std::string(std::string_view)>& quote_literal) {
    std::vector<std::string> parts;
    if (kind == ChunkKind::Ctid) {
        // Block numbers are our own integers: no quoting needed beyond the tid literal.
        if (chunk.lower)
            parts.push_back("ctid >= '(" + chunk.lower->at(0) + ",0)'::tid");
        if (chunk.upper)
            parts.push_back("ctid < '(" + chunk.upper->at(0) + ",0)'::tid");
    } else {
        if (chunk.lower)
            parts.push_back(key_bound(quoted_columns, *chunk.lower, ">=", quote_literal));
        if (chunk.upper)
            parts.push_back(key_bound(quoted_columns, *chunk.upper, "<", quote_literal));
    }
    if (parts.empty())
        return "true";
    std::string out = parts[0];
    for (size_t i = 1; i < parts.size(); ++i)
        out += " AND " + parts[i];
    return out;
}

namespace {

/// Length of the double-quoted identifier at the start of `s` ("" escapes a
/// quote), 0 when `s` does not start with one.
size_t quoted_ident_length(std::string_view s) {
    if (s.empty() || s[0] != '"')
        return 0;
    for (size_t i = 1; i < s.size(); ++i) {
        if (s[i] != '"')
            continue;
        if (i + 1 < s.size() && s[i + 1] == '"') {
            ++i;
            continue;
        }
        return i + 1;
    }
    return 0;
}

std::string quote(const std::string& name) {
    std::string out = "\"";
    for (char c : name)
        out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string leaf_index_name(const std::string& leaf, const std::string& suffix) {
    size_t keep = std::min(leaf.size(), 63 - suffix.size() - 1);
    while (keep > 0 && keep < leaf.size() &&
           (static_cast<unsigned char>(leaf[keep]) & 0xC0) == 0x80)
        --keep;
    return leaf.substr(0, keep) + "_" + suffix;
}

std::optional<LeafIndexBuild> leaf_index_build(const std::string& statement,
                                               const std::string& shadow_quoted,
                                               const std::string& leaf_schema,
                                               const std::string& leaf, size_t ordinal) {
    std::string_view s = statement;
    std::string leaf_quoted = quote(leaf_schema) + "." + quote(leaf);
    for (const char* create : {"CREATE INDEX ", "CREATE UNIQUE INDEX "}) {
        if (!starts_with(s, create))
            continue;
        std::string_view rest = s.substr(std::string_view(create).size());
        size_t name_len = quoted_ident_length(rest);
        std::string on = " ON " + shadow_quoted + " USING ";
        if (name_len == 0 || !starts_with(rest.substr(name_len), on))
            return std::nullopt;
        std::string name = leaf_index_name(leaf, "idx" + std::to_string(ordinal));
        std::string_view using_clause = rest.substr(name_len + on.size());
        return LeafIndexBuild{std::string(create) + "IF NOT EXISTS " + quote(name) + " ON " +
                                  leaf_quoted + " USING " + std::string(using_clause),
                              name, false};
    }
    std::string alter = "ALTER TABLE " + shadow_quoted + " ADD CONSTRAINT ";
    if (!starts_with(s, alter))
        return std::nullopt;
    std::string_view rest = s.substr(alter.size());
    size_t name_len = quoted_ident_length(rest);
    if (name_len == 0)
        return std::nullopt;
    std::string_view def = rest.substr(name_len);
    bool primary = starts_with(def, " PRIMARY KEY ");
    if (!primary && !starts_with(def, " UNIQUE "))
        return std::nullopt;
    std::string name = leaf_index_name(leaf, primary ? "pkey" : "key" + std::to_string(ordinal));
    return LeafIndexBuild{
        "ALTER TABLE " + leaf_quoted + " ADD CONSTRAINT " + quote(name) + std::string(def), name,
        true};
}

std::string copy_stats_json(const CopyStats& s) {
    auto eta = eta_seconds(s);
    nlohmann::json j{
        {"rows", s.rows},
        {"rows_estimated", s.rows_estimated},
        {"bytes", s.bytes},
        {"elapsed_seconds", s.elapsed_s},
        {"rows_per_second", s.rows_per_s},
        {"eta_seconds", eta ? nlohmann::json(*eta) : nlohmann::json(nullptr)},
        {"chunks_done", s.chunks_done},
        {"chunks_total", s.chunks_total},
        {"snapshot_age_seconds", s.snapshot_age_s},
        {"xmin_age", s.xmin_age},
        {"paused", s.paused.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.paused)}};
    return j.dump();
}

CopyStats copy_stats_from_json(const std::string& json) {
    auto j = nlohmann::json::parse(json);
    CopyStats s;
    s.rows = j.value("rows", int64_t{0});
    s.rows_estimated = j.value("rows_estimated", int64_t{0});
    s.bytes = j.value("bytes", int64_t{0});
    s.elapsed_s = j.value("elapsed_seconds", 0.0);
    s.rows_per_s = j.value("rows_per_second", 0.0);
    s.chunks_done = j.value("chunks_done", 0);
    s.chunks_total = j.value("chunks_total", 0);
    s.snapshot_age_s = j.value("snapshot_age_seconds", 0.0);
    s.xmin_age = j.value("xmin_age", int64_t{0});
    if (j.contains("paused") && j["paused"].is_string())
        s.paused = j["paused"].get<std::string>();
    return s;
}

std::optional<double> eta_seconds(const CopyStats& s) {
    if (s.rows_per_s <= 0 || s.rows_estimated <= 0)
        return std::nullopt;
    return std::max<double>(0, static_cast<double>(s.rows_estimated - s.rows) / s.rows_per_s);
}

std::string short_count(int64_t n) {
    char buf[32];
    if (n >= 1'000'000'000)
        std::snprintf(buf, sizeof buf, "%.1fG", n / 1e9);
    else if (n >= 1'000'000)
        std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
    else if (n >= 10'000)
        std::snprintf(buf, sizeof buf, "%.0fk", n / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
    return buf;
}

std::string short_duration(double seconds) {
    auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                      static_cast<long long>(s / 60 % 60));
    else if (s >= 60)
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                      static_cast<long long>(s % 60));
    else
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
    return buf;
}

std::string progress_line(const CopyStats& s) {
    std::string out = "copy ";
    if (s.rows_estimated > 0) {
        double pct = std::min(
            100.0, 100.0 * static_cast<double>(s.rows) / static_cast<double>(s.rows_estimated));
        char buf[16];
        std::snprintf(buf, sizeof buf, "%.0f%% ", pct);
        out += buf;
    }
    out += short_count(s.rows) + "/~" + short_count(s.rows_estimated) + " rows, " +
           std::to_string(s.bytes >> 20) + " MB, " + short_count(std::llround(s.rows_per_s)) +
           " rows/s";
    auto eta = eta_seconds(s);
    out += ", ETA " + (eta && s.paused.empty() ? short_duration(*eta) : std::string("?"));
    out += ", chunks " + std::to_string(s.chunks_done) + "/" + std::to_string(s.chunks_total);
    out += ", snapshot " + short_duration(s.snapshot_age_s) + " old, xmin age " +
           std::to_string(s.xmin_age);
    if (!s.paused.empty())
        out += ", PAUSED: " + s.paused;
    return out;
}

std::string progress_bar(double fraction, int width) {
    fraction = std::clamp(fraction, 0.0, 1.0);
    int filled = static_cast<int>(std::lround(fraction * width));
    return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

}  // namespace pgshift
