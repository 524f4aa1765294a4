#include "config.h"

#include <ini.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <span>
#include <type_traits>
#include <vector>

namespace pgshift {

namespace {

constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1
constexpr size_t kMaxJobNameChars = 40;
constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = kKiB * 1024;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), to_lower);
    return out;
}

/// Shows a user value inside a message: "value", or 'value' when the value
/// itself contains a double quote (identifiers).
std::string show(std::string_view v) {
    char q = v.find('"') == std::string_view::npos ? '"' : '\'';
    std::string out;
    out.reserve(v.size() + 2);
    out += q;
    out += v;
    out += q;
    return out;
}

/// Largest exact unit: 16777216 -> "16MB", 1000 -> "1000B".
std::string format_size(int64_t bytes) {
    static constexpr std::pair<const char*, int64_t> kUnits[] = {
        {"TB", kMiB * kMiB}, {"GB", kMiB * kKiB}, {"MB", kMiB}, {"kB", kKiB}};
    for (const auto& [name, mult] : kUnits) {
        if (bytes != 0 && bytes % mult == 0)
            return std::to_string(bytes / mult) + name;
    }
    return std::to_string(bytes) + "B";
}

// --- identifiers -------------------------------------------------------------

bool is_ident_start(char c) {
    return is_alpha(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) {
    return is_ident_start(c) || is_digit(c) || c == '$';
}

[[noreturn]] void bad_name(std::string_view text, const std::string& reason) {
    throw ConfigError(show(text) + " is not a valid name: " + reason);
}

/// Parses one identifier at s[pos] (no leading whitespace), advancing pos past it.
std::string parse_ident_at(std::string_view whole, std::string_view s, size_t& pos) {
    std::string out;
    if (pos < s.size() && s[pos] == '"') {
        ++pos;
        bool closed = false;
        while (pos < s.size()) {
            char c = s[pos++];
            if (c == '"') {
                if (pos < s.size() && s[pos] == '"') {
                    out += '"';
                    ++pos;
                } else {
                    closed = true;
                    break;
                }
            } else {
                out += c;
            }
        }
        if (!closed)
            bad_name(whole, "unterminated double quote");
        if (out.empty())
            bad_name(whole, "a quoted name must not be empty (\"\")");
    } else {
        if (pos >= s.size() || s[pos] == '.')
            bad_name(whole, "empty name part");
        if (!is_ident_start(s[pos])) {
            bad_name(whole, std::string("an unquoted name cannot start with '") + s[pos] +
                                "'; put the name in double quotes");
        }
        while (pos < s.size() && is_ident_char(s[pos]))
            out += to_lower(s[pos++]);
    }
    if (out.size() > kMaxIdentifierBytes) {
        bad_name(whole, "a name part is longer than 63 bytes (PostgreSQL's limit)");
    }
    return out;
}

void skip_space(std::string_view s, size_t& pos) {
    while (pos < s.size() && is_space(s[pos]))
        ++pos;
}

[[noreturn]] void bad_trailing(std::string_view whole, char c) {
    if (c == '"')
        bad_name(whole, "unexpected double quote inside a name; quote the whole part");
    bad_name(whole, std::string("unexpected '") + c +
                        "'; names with spaces, capitals to keep or other characters need "
                        "double quotes, e.g. \"My Table\"");
}

// --- values --------------------------------------------------------------------

/// A strict decimal integer: optional '-', digits, nothing else.
std::optional<int64_t> to_int64(std::string_view s, bool* overflow = nullptr) {
    if (overflow)
        *overflow = false;
    if (s.empty())
        return std::nullopt;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range && p == s.data() + s.size()) {
        if (overflow)
            *overflow = true;
        return std::nullopt;
    }
    if (ec != std::errc() || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

int64_t parse_int_in(std::string_view value, int64_t lo, int64_t hi) {
    std::string range = "use an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    bool overflow = false;
    auto v = to_int64(value, &overflow);
    if (!v && !overflow)
        throw ConfigError(show(value) + " is not an integer; " + range);
    if (overflow || *v < lo || *v > hi)
        throw ConfigError(show(value) + " is out of range; " + range);
    return *v;
}

bool parse_bool(std::string_view value) {
    static constexpr std::pair<std::string_view, bool> kWords[] = {
        {"true", true},   {"yes", true}, {"on", true},   {"1", true},
        {"false", false}, {"no", false}, {"off", false}, {"0", false}};
    std::string v = lower(value);
    for (const auto& [word, b] : kWords) {
        if (v == word)
            return b;
    }
    throw ConfigError(show(value) + " is not a boolean; use true|false|yes|no|on|off|1|0");
}

std::string parse_job_name(std::string_view value) {
    bool ok = !value.empty() && value.size() <= kMaxJobNameChars &&
              std::all_of(value.begin(), value.end(),
                          [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_'; });
    if (!ok) {
        throw ConfigError(show(value) +
                          " is not a job name; use 1 to 40 characters from a-z, 0-9 and _");
    }
    return std::string(value);
}

/// libpq's parse errors quote pieces of the connection string (a token, the
/// whole URI), which may hold a password. Keep the message's skeleton and the
/// quoted one-character literals libpq itself writes ("=", "]", ":", "/"),
/// keep the option keyword of "invalid connection option" / "invalid URI query
/// parameter", and replace everything from the first other double quote to
/// the last one with "...". Safety net for translated messages (other quote
/// marks): fall back to a generic text if what is left has non-ASCII bytes or,
/// when it had no double quote at all, shares 8 or more consecutive bytes
/// with the DSN.
std::string redact_libpq_message(std::string_view msg, std::string_view dsn) {
    static constexpr std::string_view kGeneric = "is not a valid libpq connection string or URI";
    msg = trim(msg);
    for (std::string_view prefix :
         {"invalid connection option \"", "invalid URI query parameter: \""}) {
        if (!msg.starts_with(prefix) || !msg.ends_with('"'))
            continue;
        std::string_view kw = msg.substr(prefix.size(), msg.size() - prefix.size() - 1);
        if (!kw.empty() && kw.size() <= 64 && std::all_of(kw.begin(), kw.end(), [](char c) {
                return is_alpha(c) || is_digit(c) || c == '_';
            })) {
            return std::string(msg);
        }
    }
    auto safe_literal_at = [&](size_t i) {
        if (i + 2 >= msg.size() || msg[i + 2] != '"')
            return false;
        if (std::string_view("=]:/").find(msg[i + 1]) == std::string_view::npos)
            return false;
        return i + 3 == msg.size() ||
               std::string_view(" ),").find(msg[i + 3]) != std::string_view::npos;
    };
    std::string out;
    size_t last = msg.rfind('"');
    for (size_t i = 0; i < msg.size();) {
        if (msg[i] != '"') {
            out += msg[i++];
        } else if (safe_literal_at(i)) {
            out.append(msg.substr(i, 3));
            i += 3;
        } else {
            out += "\"...\"";
            i = last + 1;
        }
    }
    if (std::any_of(out.begin(), out.end(),
                    [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
        return std::string(kGeneric);
    }
    if (last != std::string_view::npos)
        return out;  // quoted pieces were redacted above
    if (out == "unterminated quoted string in connection info string")
        return out;
    size_t longest = 0;
    std::vector<size_t> prev(dsn.size() + 1, 0), cur(dsn.size() + 1, 0);
    for (size_t a = 1; a <= out.size(); ++a) {
        for (size_t b = 1; b <= dsn.size(); ++b) {
            cur[b] = out[a - 1] == dsn[b - 1] ? prev[b - 1] + 1 : 0;
            longest = std::max(longest, cur[b]);
        }
        std::swap(prev, cur);
    }
    return longest >= 8 ? std::string(kGeneric) : out;
}

std::string parse_dsn(const std::string& value) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(value.c_str(), &err);
    if (opts == nullptr) {
        std::string msg = err ? redact_libpq_message(err, value) : "out of memory while parsing";
        if (err)
            PQfreemem(err);
        throw ConfigError(msg);
    }
    bool has_password = false;
    for (const PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
        if (std::strcmp(o->keyword, "password") == 0 && o->val != nullptr)
            has_password = true;
    }
    PQconninfoFree(opts);
    if (has_password) {
        throw ConfigError(
            "must not contain a password; remove it and supply the password through the "
            "PGPASSWORD environment variable, ~/.pgpass (or PGPASSFILE) or a connection service "
            "file (service=...)");
    }
    return value;
}

std::string parse_strategy(std::string_view value) {
    std::string v = lower(value);
    if (v == "range" || v == "list" || v == "hash")
        return v;
    throw ConfigError(show(value) + " is not a partitioning strategy; use range, list or hash");
}

std::vector<std::string> parse_list_values(std::string_view value) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= value.size()) {
        size_t end = value.find(',', start);
        if (end == std::string_view::npos)
            end = value.size();
        std::string_view item = value.substr(start, end - start);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (item.empty())
            throw ConfigError(show(value) + " has an empty value; use a, b, c");
        if (std::find(out.begin(), out.end(), item) != out.end())
            throw ConfigError(show(item) + " is listed twice");
        out.emplace_back(item);
        start = end + 1;
    }
    return out;
}

CutoverMode parse_cutover_mode(std::string_view value) {
    std::string v = lower(value);
    if (v == "auto")
        return CutoverMode::Auto;
    if (v == "manual")
        return CutoverMode::Manual;
    if (v == "window")
        return CutoverMode::Window;
    throw ConfigError(show(value) + " is not a cutover mode; use auto, manual or window");
}

}  // namespace

CutoverWindow parse_cutover_window(std::string_view text) {
    auto minute_of = [&](std::string_view hhmm) {
        if (hhmm.size() != 5 || hhmm[2] != ':' || !isdigit(static_cast<unsigned char>(hhmm[0])) ||
            !isdigit(static_cast<unsigned char>(hhmm[1])) ||
            !isdigit(static_cast<unsigned char>(hhmm[3])) ||
            !isdigit(static_cast<unsigned char>(hhmm[4]))) {
            throw ConfigError(show(text) + " is not a window; use HH:MM-HH:MM, e.g. 22:00-23:30");
        }
        int h = (hhmm[0] - '0') * 10 + (hhmm[1] - '0');
        int m = (hhmm[3] - '0') * 10 + (hhmm[4] - '0');
        if (h > 23 || m > 59)
            throw ConfigError(show(text) + " has a time outside 00:00-23:59");
        return h * 60 + m;
    };
    size_t dash = text.find('-');
    if (dash == std::string_view::npos) {
        throw ConfigError(show(text) + " is not a window; use HH:MM-HH:MM, e.g. 22:00-23:30");
    }
    CutoverWindow w{minute_of(trim(text.substr(0, dash))), minute_of(trim(text.substr(dash + 1)))};
    if (w.start_minute == w.end_minute)
        throw ConfigError(show(text) + " is an empty window");
    return w;
}

int seconds_until_window(const CutoverWindow& w, int now_s) {
    if (seconds_until_window_closes(w, now_s) > 0)
        return 0;
    constexpr int kDay = 86400;
    return ((w.start_minute * 60 - now_s) % kDay + kDay) % kDay;
}

int seconds_until_window_closes(const CutoverWindow& w, int now_s) {
    constexpr int kDay = 86400;
    int start = w.start_minute * 60, end = w.end_minute * 60;
    // Seconds since the window opened, counted around midnight.
    int since_start = ((now_s - start) % kDay + kDay) % kDay;
    int length = ((end - start) % kDay + kDay) % kDay;
    return since_start < length ? length - since_start : 0;
}

namespace {

// --- the key tables ----------------------------------------------------------

using ApplyFn = void (*)(JobConfig&, const std::string& value);

struct KeySpec {
    std::string_view name;
    ApplyFn apply;
    bool required = false;
    /// May appear several times; apply() is called once per line, in order
    /// (e.g. a future [verify] "query = ..." list).
    bool repeatable = false;
    /// Value is an SQL identifier, so surrounding double quotes are meaningful.
    bool identifier = false;
};

struct SectionSpec {
    std::string_view name;
    std::span<const KeySpec> keys;
};

template <auto Member, int64_t Lo, int64_t Hi>
void set_int(JobConfig& c, const std::string& v) {
    using T = std::remove_reference_t<decltype(c.*Member)>;
    c.*Member = static_cast<T>(parse_int_in(v, Lo, Hi));
}

template <auto Member, int64_t Lo>
void set_size(JobConfig& c, const std::string& v) {
    int64_t bytes = parse_size(v);
    if (bytes < Lo)
        throw ConfigError(show(v) + " is too small; use at least " + format_size(Lo));
    c.*Member = bytes;
}

const KeySpec kJobKeys[] = {
    {.name = "name",
     .apply = [](JobConfig& c, const std::string& v) { c.job_name = parse_job_name(v); }},
};

const KeySpec kSourceKeys[] = {
    {.name = "dsn",
     .apply = [](JobConfig& c, const std::string& v) { c.dsn = parse_dsn(v); },
     .required = true},
    {.name = "table",
     .apply = [](JobConfig& c, const std::string& v) { c.table = parse_qualified_name(v); },
     .required = true,
     .identifier = true},
    {.name = "shadow",
     .apply = [](JobConfig& c, const std::string& v) { c.shadow_name = parse_identifier(v); },
     .identifier = true},
};

const KeySpec kPartitioningKeys[] = {
    {.name = "strategy",
     .apply = [](JobConfig& c, const std::string& v) { c.strategy = parse_strategy(v); }},
    {.name = "column",
     .apply = [](JobConfig& c, const std::string& v) { c.column = parse_identifier(v); },
     .required = true,
     .identifier = true},
    // Required for strategy = range (checked after all keys are read).
    {.name = "interval",
     .apply = [](JobConfig& c, const std::string& v) { c.interval = parse_interval(v); }},
    {.name = "premake", .apply = set_int<&JobConfig::premake, 0, 1000>},
    {.name = "default_partition",
     .apply = [](JobConfig& c, const std::string& v) { c.default_partition = parse_bool(v); }},
    {.name = "widen_unique",
     .apply = [](JobConfig& c, const std::string& v) { c.widen_unique = parse_bool(v); }},
    {.name = "modulus", .apply = set_int<&JobConfig::modulus, 2, 1024>},
    {.name = "values",
     .apply = [](JobConfig& c, const std::string& v) { c.list_values = parse_list_values(v); }},
};

std::string parse_sub_strategy(std::string_view value) {
    std::string v = lower(value);
    if (v == "range" || v == "hash")
        return v;
    throw ConfigError(show(value) + " is not a sub-partitioning strategy; use hash or range");
}

const KeySpec kSubpartitioningKeys[] = {
    {.name = "strategy",
     .apply = [](JobConfig& c, const std::string& v) { c.sub_strategy = parse_sub_strategy(v); }},
    {.name = "column",
     .apply = [](JobConfig& c, const std::string& v) { c.sub_column = parse_identifier(v); },
     .identifier = true},
    {.name = "interval",
     .apply = [](JobConfig& c, const std::string& v) { c.sub_interval = parse_interval(v); }},
    {.name = "modulus", .apply = set_int<&JobConfig::sub_modulus, 2, 1024>},
};

const KeySpec kCopyKeys[] = {
    {.name = "workers", .apply = set_int<&JobConfig::copy_workers, 1, 64>},
    {.name = "chunk_rows", .apply = set_int<&JobConfig::copy_chunk_rows, 1000, 1000000000>},
    {.name = "maintenance_work_mem",
     .apply = set_size<&JobConfig::copy_maintenance_work_mem, kMiB>},
    {.name = "pause_retained_wal", .apply = set_size<&JobConfig::copy_pause_retained_wal, 0>},
    {.name = "pause_replay_lag", .apply = set_size<&JobConfig::copy_pause_replay_lag, 0>},
};

const KeySpec kCutoverKeys[] = {
    {.name = "mode",
     .apply = [](JobConfig& c, const std::string& v) { c.cutover_mode = parse_cutover_mode(v); }},
    {.name = "lock_timeout_ms", .apply = set_int<&JobConfig::lock_timeout_ms, 1, 60000>},
    {.name = "max_lag_bytes", .apply = set_size<&JobConfig::max_lag_bytes, 0>},
    {.name = "max_attempts", .apply = set_int<&JobConfig::max_attempts, 1, 1000>},
    {.name = "barrier_timeout_ms", .apply = set_int<&JobConfig::barrier_timeout_ms, 100, 600000>},
    {.name = "window",
     .apply = [](JobConfig& c,
                 const std::string& v) { c.cutover_window = parse_cutover_window(v); }},
    {.name = "time_zone", .apply = [](JobConfig& c, const std::string& v) { c.time_zone = v; }},
    {.name = "postpone_file",
     .apply = [](JobConfig& c, const std::string& v) { c.postpone_file = v; }},
    {.name = "reverse",
     .apply = [](JobConfig& c, const std::string& v) { c.reverse = parse_bool(v); }},
    {.name = "long_transaction_s", .apply = set_int<&JobConfig::long_transaction_s, 1, 86400>},
    {.name = "cancel_blockers",
     .apply = [](JobConfig& c, const std::string& v) { c.cancel_blockers = parse_bool(v); }},
};

const KeySpec kSafetyKeys[] = {
    {.name = "max_retained_wal", .apply = set_size<&JobConfig::max_retained_wal, 16 * kMiB>},
    {.name = "reconnect_timeout_s", .apply = set_int<&JobConfig::reconnect_timeout_s, 0, 86400>},
};

RetentionAction parse_retention_action(std::string_view value) {
    std::string v = lower(value);
    if (v == "detach")
        return RetentionAction::Detach;
    if (v == "archive")
        return RetentionAction::Archive;
    if (v == "file")
        return RetentionAction::File;
    if (v == "drop")
        return RetentionAction::Drop;
    throw ConfigError(show(value) +
                      " is not a retention action; use detach, archive, file or drop");
}

const KeySpec kVerifyKeys[] = {
    {.name = "query",
     .apply = [](JobConfig& c, const std::string& v) { c.verify_queries.push_back(v); },
     .repeatable = true},
    {.name = "analyze",
     .apply = [](JobConfig& c, const std::string& v) { c.verify_analyze = parse_bool(v); }},
    {.name = "rechecks", .apply = set_int<&JobConfig::verify_rechecks, 0, 100>},
    {.name = "recheck_wait_ms", .apply = set_int<&JobConfig::verify_recheck_wait_ms, 0, 600000>},
};

const KeySpec kMaintainKeys[] = {
    {.name = "retention", .apply = set_int<&JobConfig::retention, 0, 100000>},
    {.name = "retention_action",
     .apply = [](JobConfig& c,
                 const std::string& v) { c.retention_action = parse_retention_action(v); }},
    {.name = "archive_schema",
     .apply = [](JobConfig& c, const std::string& v) { c.archive_schema = parse_identifier(v); },
     .identifier = true},
    {.name = "archive_dir", .apply = [](JobConfig& c, const std::string& v) { c.archive_dir = v; }},
};

const SectionSpec kSections[] = {
    {"job", kJobKeys},
    {"source", kSourceKeys},
    {"partitioning", kPartitioningKeys},
    {"subpartitioning", kSubpartitioningKeys},
    {"copy", kCopyKeys},
    {"cutover", kCutoverKeys},
    {"safety", kSafetyKeys},
    {"verify", kVerifyKeys},
    {"maintain", kMaintainKeys},
};

const SectionSpec* find_section(std::string_view name) {
    for (const auto& s : kSections) {
        if (s.name == name)
            return &s;
    }
    return nullptr;
}

const KeySpec* find_key(const SectionSpec& section, std::string_view name) {
    for (const auto& k : section.keys) {
        if (k.name == name)
            return &k;
    }
    return nullptr;
}

std::string known_sections() {
    std::string out;
    for (const auto& s : kSections) {
        if (!out.empty())
            out += ", ";
        out += "[" + std::string(s.name) + "]";
    }
    return out;
}

std::string known_keys(const SectionSpec& section) {
    std::string out;
    for (const auto& k : section.keys) {
        if (!out.empty())
            out += ", ";
        out += k.name;
    }
    return out;
}

// --- reading the file with inih ---------------------------------------------------

struct Entry {
    const SectionSpec* section;
    const KeySpec* key;
    std::string value;
    int line;
};

struct ParseState {
    std::string_view text;
    std::string origin;
    size_t pos = 0;
    int line = 0;  // line most recently handed to inih (1-based)
    std::vector<Entry> entries;
    std::map<std::string, int> first_line;             // "section.key" -> line first seen
    std::optional<std::pair<int, std::string>> error;  // first own error: line, full message

    void fail(int at, const std::string& msg) {
        if (!error)
            error.emplace(at, origin + ":" + std::to_string(at) + ": " + msg);
    }
};

/// Section name of a "[name]" line (already left-trimmed), nullopt if the
/// line is not a complete header (inih reports that as a syntax error).
std::optional<std::string> header_name(std::string_view line) {
    if (line.empty() || line.front() != '[')
        return std::nullopt;
    size_t close = line.find(']');
    if (close == std::string_view::npos)
        return std::nullopt;
    return lower(trim(line.substr(1, close - 1)));
}

/// fgets-style reader feeding inih one line per call, so ParseState::line is
/// the line inih is working on. Leading whitespace is removed, which turns
/// off inih's indented-continuation lines: an indented "key = value" is an
/// ordinary key, never part of the previous value.
char* read_line(char* buf, int num, void* stream) {
    auto* st = static_cast<ParseState*>(stream);
    if (st->error || st->pos >= st->text.size())
        return nullptr;
    size_t nl = st->text.find('\n', st->pos);
    size_t next = nl == std::string_view::npos ? st->text.size() : nl + 1;
    std::string_view raw = st->text.substr(st->pos, next - st->pos);
    st->pos = next;
    ++st->line;
    if (!raw.empty() && raw.back() == '\n')
        raw.remove_suffix(1);
    while (!raw.empty() && (raw.front() == ' ' || raw.front() == '\t'))
        raw.remove_prefix(1);
    if (raw.find('\0') != std::string_view::npos) {
        st->fail(st->line, "line contains a NUL byte");
        return nullptr;
    }
    // Room for the text, '\n' and the terminating NUL.
    if (num < 3 || raw.size() > static_cast<size_t>(num) - 2) {
        st->fail(st->line, "line is longer than " + std::to_string(num - 2) +
                               " characters; for a long source.dsn use a connection service "
                               "file (service=...)");
        return nullptr;
    }
    if (auto name = header_name(raw); name && !find_section(*name)) {
        st->fail(st->line, "unknown section [" + *name + "]; known sections: " + known_sections());
        return nullptr;
    }
    std::memcpy(buf, raw.data(), raw.size());
    buf[raw.size()] = '\n';
    buf[raw.size() + 1] = '\0';
    return buf;
}

int on_key(void* user, const char* section, const char* name, const char* value) {
    auto* st = static_cast<ParseState*>(user);
    if (st->error)
        return 0;
    int line = st->line;
    std::string sec = lower(trim(section ? section : ""));
    std::string key = lower(trim(name ? name : ""));
    if (key.empty()) {
        st->fail(line, "missing key name before \"=\"");
        return 0;
    }
    if (sec.empty()) {
        st->fail(line,
                 key + ": key is outside any section; put it under one of " + known_sections());
        return 0;
    }
    const SectionSpec* s = find_section(sec);
    if (s == nullptr) {  // the reader already rejects unknown headers
        st->fail(line, "unknown section [" + sec + "]; known sections: " + known_sections());
        return 0;
    }
    const KeySpec* k = find_key(*s, key);
    std::string qualified = sec + "." + key;
    if (k == nullptr) {
        st->fail(line, qualified + ": unknown key; keys in [" + sec + "]: " + known_keys(*s));
        return 0;
    }
    auto [it, inserted] = st->first_line.emplace(qualified, line);
    if (!inserted && !k->repeatable) {
        st->fail(line, qualified + ": set twice (first on line " + std::to_string(it->second) +
                           "); keep only one");
        return 0;
    }
    st->entries.push_back(Entry{s, k, std::string(trim(value ? value : "")), line});
    return 1;
}

/// Text of a syntax error inih found on `line` (1-based), without echoing the
/// line, which may hold the DSN.
std::string describe_syntax_error(std::string_view text, int line) {
    size_t pos = 0;
    for (int i = 1; i < line && pos != std::string_view::npos; ++i) {
        pos = text.find('\n', pos);
        if (pos != std::string_view::npos)
            ++pos;
    }
    std::string_view raw;
    if (pos != std::string_view::npos && pos <= text.size()) {
        raw = text.substr(pos);
        raw = trim(raw.substr(0, raw.find('\n')));
    }
    if (!raw.empty() && raw.front() == '[') {
        return "syntax error: section header is missing the closing \"]\"";
    }
    return "syntax error: expected \"key = value\", \"[section]\" or a comment starting with \";\" "
           "or \"#\"";
}

bool wrapped_in_quotes(std::string_view v) {
    return v.size() >= 2 &&
           ((v.front() == '"' && v.back() == '"') || (v.front() == '\'' && v.back() == '\''));
}

}  // namespace

// --- public ------------------------------------------------------------------------

std::string quote_identifier(std::string_view ident) {
    std::string out = "\"";
    for (char c : ident) {
        if (c == '"')
            out += '"';
        out += c;
    }
    out += '"';
    return out;
}

std::string quote_identifier_if_needed(std::string_view ident) {
    bool simple = !ident.empty() && ((ident[0] >= 'a' && ident[0] <= 'z') || ident[0] == '_') &&
                  std::all_of(ident.begin(), ident.end(), [](char c) {
                      return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '$';
                  });
    return simple ? std::string(ident) : quote_identifier(ident);
}

std::string QualifiedName::display() const {
    return quote_identifier_if_needed(schema) + "." + quote_identifier_if_needed(name);
}

std::string QualifiedName::quoted() const {
    return quote_identifier(schema) + "." + quote_identifier(name);
}

std::string parse_identifier(std::string_view text) {
    std::string_view s = trim(text);
    if (s.empty())
        bad_name(text, "it is empty");
    size_t pos = 0;
    std::string ident = parse_ident_at(text, s, pos);
    skip_space(s, pos);
    if (pos < s.size()) {
        if (s[pos] == '.')
            bad_name(text, "a schema-qualified name is not allowed here");
        bad_trailing(text, s[pos]);
    }
    return ident;
}

QualifiedName parse_qualified_name(std::string_view text) {
    std::string_view s = trim(text);
    if (s.empty())
        bad_name(text, "it is empty");
    std::vector<std::string> parts;
    size_t pos = 0;
    while (true) {
        skip_space(s, pos);
        parts.push_back(parse_ident_at(text, s, pos));
        skip_space(s, pos);
        if (pos == s.size())
            break;
        if (s[pos] != '.')
            bad_trailing(text, s[pos]);
        ++pos;
        skip_space(s, pos);
        if (pos == s.size())
            bad_name(text, "empty name after \".\"");
        if (parts.size() == 2) {
            bad_name(text,
                     "more than one \".\"; use schema.table (a database name is not allowed)");
        }
    }
    if (parts.size() == 1)
        return QualifiedName{"public", std::move(parts[0])};
    return QualifiedName{std::move(parts[0]), std::move(parts[1])};
}

std::string PartitionInterval::pg_interval() const {
    if (is_integer)
        return std::to_string(count);
    static constexpr const char* kPlural[] = {"minutes", "hours",  "days",
                                              "weeks",   "months", "years"};
    return std::to_string(count) + " " + kPlural[static_cast<int>(unit)];
}

PartitionInterval parse_interval(std::string_view text) {
    static constexpr std::string_view kUse =
        "; use \"N minute|hour|day|week|month|year\" or a positive integer";
    static constexpr std::pair<std::string_view, TimeUnit> kUnits[] = {
        {"minute", TimeUnit::Minute}, {"minutes", TimeUnit::Minute}, {"hour", TimeUnit::Hour},
        {"hours", TimeUnit::Hour},    {"day", TimeUnit::Day},        {"days", TimeUnit::Day},
        {"week", TimeUnit::Week},     {"weeks", TimeUnit::Week},     {"month", TimeUnit::Month},
        {"months", TimeUnit::Month},  {"year", TimeUnit::Year},      {"years", TimeUnit::Year}};
    std::string_view s = trim(text);
    std::string shown = show(text);
    if (!s.empty() && s.front() == '-')
        throw ConfigError(shown + " must be positive" + std::string(kUse));
    size_t pos = 0;
    while (pos < s.size() && is_digit(s[pos]))
        ++pos;
    std::string_view digits = s.substr(0, pos);
    if (!digits.empty() && pos + 1 < s.size() && (s[pos] == '.' || s[pos] == ',') &&
        is_digit(s[pos + 1])) {
        throw ConfigError(
            shown + " has a fraction; use a whole count in a smaller unit, e.g. \"90 minutes\"");
    }
    skip_space(s, pos);
    std::string unit = lower(s.substr(pos));
    bool unit_ok = std::all_of(unit.begin(), unit.end(), is_alpha);
    if ((digits.empty() && unit.empty()) || !unit_ok) {
        throw ConfigError(shown + " is not an interval" + std::string(kUse));
    }
    int64_t count = 1;
    if (!digits.empty()) {
        bool overflow = false;
        auto v = to_int64(digits, &overflow);
        if (!v)
            throw ConfigError(shown + " is too large" + std::string(kUse));
        count = *v;
        if (count == 0)
            throw ConfigError(shown + " must be positive" + std::string(kUse));
    }
    PartitionInterval out;
    out.count = count;
    if (unit.empty()) {
        out.is_integer = true;
        return out;
    }
    for (const auto& [name, u] : kUnits) {
        if (unit == name) {
            if (count > std::numeric_limits<int32_t>::max()) {
                throw ConfigError(shown + " is too large; use at most 2147483647 " +
                                  std::string(name));
            }
            out.unit = u;
            return out;
        }
    }
    throw ConfigError(shown + " is not an interval" + std::string(kUse));
}

int64_t parse_size(std::string_view text) {
    static constexpr std::string_view kUse =
        "; use a whole number of bytes with an optional unit B, kB, MB, GB or TB, e.g. \"64MB\"";
    static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
        {"", 1}, {"b", 1}, {"kb", kKiB}, {"mb", kMiB}, {"gb", kMiB * kKiB}, {"tb", kMiB * kMiB}};
    std::string_view s = trim(text);
    std::string shown = show(text);
    if (!s.empty() && s.front() == '-')
        throw ConfigError(shown + " must not be negative" + std::string(kUse));
    size_t pos = 0;
    while (pos < s.size() && is_digit(s[pos]))
        ++pos;
    std::string_view digits = s.substr(0, pos);
    if (digits.empty())
        throw ConfigError(shown + " is not a size" + std::string(kUse));
    if (pos + 1 < s.size() && (s[pos] == '.' || s[pos] == ',') && is_digit(s[pos + 1])) {
        throw ConfigError(shown +
                          " has a fraction; use a whole number in a smaller unit, e.g. \"1536MB\"");
    }
    skip_space(s, pos);
    std::string unit = lower(s.substr(pos));
    for (const auto& [name, mult] : kUnits) {
        if (unit != name)
            continue;
        auto v = to_int64(digits);
        if (!v || *v > std::numeric_limits<int64_t>::max() / mult) {
            throw ConfigError(shown + " is too large" + std::string(kUse));
        }
        return *v * mult;
    }
    throw ConfigError(shown + " is not a size" + std::string(kUse));
}

std::string derive_job_name(const QualifiedName& table) {
    std::string out;
    for (char c : table.name) {
        if (out.size() == kMaxJobNameChars)
            break;
        char l = to_lower(c);
        out += ((l >= 'a' && l <= 'z') || is_digit(l) || l == '_') ? l : '_';
    }
    return out;
}

std::vector<std::string> JobConfig::partition_columns() const {
    std::vector<std::string> cols{column};
    if (!sub_strategy.empty() && sub_column != column)
        cols.push_back(sub_column);
    return cols;
}

namespace {

/// [subpartitioning]: all or nothing, and only the keys its strategy uses.
/// `line_of(key)` gives the "file:line: " prefix of a key.
void check_subpartitioning(const JobConfig& cfg, const std::map<std::string, int>& seen,
                           const auto& line_of) {
    bool any = false;
    for (const auto& k : kSubpartitioningKeys)
        any = any || seen.contains("subpartitioning." + std::string(k.name));
    if (!any)
        return;
    for (const char* key : {"strategy", "column"}) {
        std::string q = std::string("subpartitioning.") + key;
        if (!seen.contains(q)) {
            throw ConfigError(line_of(q) + q + ": required when [subpartitioning] is used; add \"" +
                              key + " = ...\" under [subpartitioning]");
        }
    }
    if (cfg.strategy == "hash") {
        throw ConfigError(line_of("subpartitioning.strategy") +
                          "subpartitioning.strategy: HASH partitions cannot be sub-partitioned "
                          "by pgshift; use [partitioning] strategy = range or list");
    }
    const bool hash = cfg.sub_strategy == "hash";
    if (hash && !seen.contains("subpartitioning.modulus")) {
        throw ConfigError(line_of("subpartitioning.strategy") +
                          "subpartitioning.modulus: required when strategy = hash (2 to 1024)");
    }
    if (!hash && !seen.contains("subpartitioning.interval")) {
        throw ConfigError(line_of("subpartitioning.strategy") +
                          "subpartitioning.interval: required when strategy = range");
    }
    const char* unused = hash ? "subpartitioning.interval" : "subpartitioning.modulus";
    if (seen.contains(unused)) {
        throw ConfigError(line_of(unused) + unused +
                          ": not used with [subpartitioning] strategy = " + cfg.sub_strategy);
    }
    if (!hash && cfg.strategy == "range" && cfg.sub_column == cfg.column) {
        throw ConfigError(line_of("subpartitioning.column") +
                          "subpartitioning.column: RANGE inside RANGE on the same column is "
                          "one level with a smaller interval; use a different column");
    }
}

}  // namespace

JobConfig parse_config_string(std::string_view text, const std::string& origin) {
    ParseState st;
    st.text = text;
    st.origin = origin;
    int rc = ini_parse_stream(read_line, &st, on_key, &st);
    if (rc == -2)
        throw ConfigError(origin + ": out of memory while reading the file");
    if (rc > 0 && (!st.error || rc < st.error->first)) {
        throw ConfigError(origin + ":" + std::to_string(rc) + ": " +
                          describe_syntax_error(text, rc));
    }
    if (st.error)
        throw ConfigError(st.error->second);

    JobConfig cfg;
    cfg.path = origin;
    for (const Entry& e : st.entries) {
        std::string where = origin + ":" + std::to_string(e.line) + ": " +
                            std::string(e.section->name) + "." + std::string(e.key->name) + ": ";
        if (e.value.empty()) {
            throw ConfigError(where + (e.key->required
                                           ? "a value is required"
                                           : "empty value; remove the line to use the default"));
        }
        if (!e.key->identifier && wrapped_in_quotes(e.value)) {
            throw ConfigError(where +
                              "remove the quotes around the value; values are written unquoted");
        }
        try {
            e.key->apply(cfg, e.value);
        } catch (const ConfigError& err) {
            throw ConfigError(where + err.what());
        }
    }

    for (const auto& s : kSections) {
        for (const auto& k : s.keys) {
            std::string qualified = std::string(s.name) + "." + std::string(k.name);
            if (k.required && !st.first_line.contains(qualified)) {
                throw ConfigError(origin + ": " + qualified + ": required key is missing; add \"" +
                                  std::string(k.name) + " = ...\" under [" + std::string(s.name) +
                                  "]");
            }
        }
    }

    auto line_of = [&](const std::string& qualified) {
        auto it = st.first_line.find(qualified);
        return it == st.first_line.end() ? origin + ": "
                                         : origin + ":" + std::to_string(it->second) + ": ";
    };
    if (cfg.strategy == "range" && !st.first_line.contains("partitioning.interval")) {
        throw ConfigError(origin +
                          ": partitioning.interval: required key is missing; add \"interval = "
                          "...\" under [partitioning]");
    }
    if (cfg.strategy == "hash" && cfg.modulus == 0) {
        throw ConfigError(line_of("partitioning.strategy") +
                          "partitioning.modulus: required when strategy = hash (2 to 1024)");
    }
    for (const char* key : {"interval", "modulus", "values"}) {
        std::string q = std::string("partitioning.") + key;
        bool belongs = (cfg.strategy == "range" && q == "partitioning.interval") ||
                       (cfg.strategy == "hash" && q == "partitioning.modulus") ||
                       (cfg.strategy == "list" && q == "partitioning.values");
        if (st.first_line.contains(q) && !belongs) {
            throw ConfigError(line_of(q) + q + ": not used with strategy = " + cfg.strategy);
        }
    }
    check_subpartitioning(cfg, st.first_line, line_of);
    if (cfg.max_lag_bytes >= cfg.max_retained_wal) {
        std::string key = st.first_line.contains("cutover.max_lag_bytes")
                              ? "cutover.max_lag_bytes"
                              : "safety.max_retained_wal";
        throw ConfigError(line_of(key) + key + ": cutover.max_lag_bytes (" +
                          format_size(cfg.max_lag_bytes) +
                          ") must be smaller than safety.max_retained_wal (" +
                          format_size(cfg.max_retained_wal) + ")");
    }
    if (cfg.cutover_mode == CutoverMode::Window && !cfg.cutover_window) {
        throw ConfigError(line_of("cutover.mode") +
                          "cutover.window: required when cutover.mode = window (HH:MM-HH:MM)");
    }
    if (cfg.retention_action == RetentionAction::File && cfg.archive_dir.empty()) {
        throw ConfigError(line_of("maintain.retention_action") +
                          "maintain.archive_dir: required when maintain.retention_action = file");
    }
    if (cfg.shadow_name && *cfg.shadow_name == cfg.table.name) {
        throw ConfigError(line_of("source.shadow") +
                          "source.shadow: must differ from the source table's name");
    }
    if (cfg.job_name.empty())
        cfg.job_name = derive_job_name(cfg.table);
    return cfg;
}

JobConfig load_config(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        throw ConfigError("cannot read config file " + path + ": " + std::strerror(errno));
    }
    std::string text;
    char buf[8192];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        text.append(buf, n);
    int read_errno = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (read_errno != 0) {
        throw ConfigError("cannot read config file " + path + ": " + std::strerror(read_errno));
    }
    return parse_config_string(text, path);
}

}  // namespace pgshift
