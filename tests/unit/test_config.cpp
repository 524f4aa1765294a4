#include "config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace pgshift {
namespace {

// A minimal valid job: the four required keys.
const std::string kMinimal =
    "[source]\n"                                    // 1
    "dsn = host=localhost dbname=app user=shift\n"  // 2
    "table = app.events\n"                          // 3
    "[partitioning]\n"                              // 4
    "column = created_at\n"                         // 5
    "interval = 1 month\n";                         // 6

std::string error_of(const std::string& text, const std::string& origin = "job.ini") {
    try {
        parse_config_string(text, origin);
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a ConfigError for:\n" << text;
    return {};
}

// kMinimal plus one extra line under [section] (appended as line 7 + 1).
std::string with_key(const std::string& section, const std::string& key, const std::string& value) {
    return kMinimal + "[" + section + "]\n" + key + " = " + value + "\n";
}

// kMinimal with the line starting "key =" replaced by "key = value".
std::string replacing(const std::string& key, const std::string& value) {
    std::string text = kMinimal;
    size_t pos = text.find("\n" + key + " =") + 1;
    size_t end = text.find('\n', pos);
    return text.substr(0, pos) + key + " = " + value + text.substr(end);
}

// ---------------------------------------------------------------- QualifiedName

TEST(QualifiedNameTest, UnqualifiedDefaultsToPublic) {
    EXPECT_EQ(parse_qualified_name("events"), (QualifiedName{"public", "events"}));
}

TEST(QualifiedNameTest, SchemaQualifiedAndCaseFolding) {
    EXPECT_EQ(parse_qualified_name("app.events"), (QualifiedName{"app", "events"}));
    EXPECT_EQ(parse_qualified_name("App.EVENTS"), (QualifiedName{"app", "events"}));
    EXPECT_EQ(parse_qualified_name("  app . events  "), (QualifiedName{"app", "events"}));
    EXPECT_EQ(parse_qualified_name("_x$1.t_2$"), (QualifiedName{"_x$1", "t_2$"}));
}

TEST(QualifiedNameTest, QuotedPartsKeepCaseSpacesAndQuotes) {
    auto q = parse_qualified_name("\"My Schema\".\"user\"");
    EXPECT_EQ(q, (QualifiedName{"My Schema", "user"}));
    EXPECT_EQ(q.display(), "\"My Schema\".user");
    EXPECT_EQ(q.quoted(), "\"My Schema\".\"user\"");

    auto e = parse_qualified_name("\"Events\"");
    EXPECT_EQ(e, (QualifiedName{"public", "Events"}));
    EXPECT_EQ(e.display(), "public.\"Events\"");

    auto quote = parse_qualified_name("\"a\"\"b\".\"x.y\"");
    EXPECT_EQ(quote, (QualifiedName{"a\"b", "x.y"}));
    EXPECT_EQ(quote.display(), "\"a\"\"b\".\"x.y\"");
    EXPECT_EQ(quote.quoted(), "\"a\"\"b\".\"x.y\"");
}

TEST(QualifiedNameTest, ReservedWordsParseAndDisplayUnquoted) {
    EXPECT_EQ(parse_qualified_name("\"timestamp\""), (QualifiedName{"public", "timestamp"}));
    EXPECT_EQ(parse_qualified_name("timestamp"), (QualifiedName{"public", "timestamp"}));
    EXPECT_EQ(parse_qualified_name("\"user\"").display(), "public.user");
    EXPECT_EQ(parse_qualified_name("\"user\"").quoted(), "\"public\".\"user\"");
}

TEST(QualifiedNameTest, DisplayQuotesOnlyWhenNeeded) {
    EXPECT_EQ((QualifiedName{"public", "events"}).display(), "public.events");
    EXPECT_EQ((QualifiedName{"public", "1abc"}).display(), "public.\"1abc\"");
    EXPECT_EQ((QualifiedName{"public", "a b"}).display(), "public.\"a b\"");
    EXPECT_EQ((QualifiedName{"public", "$a"}).display(), "public.\"$a\"");
    EXPECT_EQ(quote_identifier_if_needed("ab$9_"), "ab$9_");
    EXPECT_EQ(quote_identifier("x\"y"), "\"x\"\"y\"");
}

TEST(QualifiedNameTest, NonAsciiUnquotedIsKept) {
    EXPECT_EQ(parse_qualified_name("café").name, "café");
}

TEST(QualifiedNameTest, LengthLimitIs63Bytes) {
    std::string n63(63, 'a');
    EXPECT_EQ(parse_qualified_name(n63).name, n63);
    EXPECT_EQ(parse_qualified_name("\"" + std::string(63, 'A') + "\"").name, std::string(63, 'A'));
    EXPECT_THROW(parse_qualified_name(std::string(64, 'a')), ConfigError);
    EXPECT_THROW(parse_qualified_name("\"" + std::string(64, 'A') + "\""), ConfigError);
    EXPECT_THROW(parse_qualified_name(std::string(64, 's') + ".t"), ConfigError);
}

TEST(QualifiedNameTest, RejectsHostileOrMalformedNames) {
    for (const char* bad : {"", "   ", ".events", "app.", "app. ", "a.b.c", "\"abc", "abc\"",
                            "\"\"", "\"a\"\"", "my table", "a\"b\"", "\"x\"y", "1abc", "$abc",
                            "app..events", "a;drop table x", "a-b", "app.\"\""}) {
        EXPECT_THROW(parse_qualified_name(bad), ConfigError) << bad;
    }
}

TEST(QualifiedNameTest, ErrorsExplainTheProblem) {
    auto msg = [](std::string_view t) {
        try {
            parse_qualified_name(t);
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(msg("a.b.c").find("more than one \".\""), std::string::npos);
    EXPECT_NE(msg("\"abc").find("unterminated"), std::string::npos);
    EXPECT_NE(msg("my table").find("double quotes"), std::string::npos);
    EXPECT_NE(msg(std::string(64, 'a')).find("63 bytes"), std::string::npos);
    EXPECT_NE(msg(".x").find("empty"), std::string::npos);
}

TEST(QualifiedNameTest, ParseIdentifier) {
    EXPECT_EQ(parse_identifier("Created_At"), "created_at");
    EXPECT_EQ(parse_identifier(" \"CreatedAt\" "), "CreatedAt");
    EXPECT_EQ(parse_identifier("\"timestamp\""), "timestamp");
    EXPECT_THROW(parse_identifier("a.b"), ConfigError);
    EXPECT_THROW(parse_identifier(""), ConfigError);
    EXPECT_THROW(parse_identifier("a b"), ConfigError);
}

// ---------------------------------------------------------------- Interval

TEST(IntervalTest, TimeUnits) {
    struct Case {
        const char* text;
        int64_t count;
        TimeUnit unit;
        const char* pg;
    };
    for (const Case& c :
         {Case{"1 month", 1, TimeUnit::Month, "1 months"},
          Case{"15 minutes", 15, TimeUnit::Minute, "15 minutes"},
          Case{"2 hours", 2, TimeUnit::Hour, "2 hours"}, Case{"1 day", 1, TimeUnit::Day, "1 days"},
          Case{"1 week", 1, TimeUnit::Week, "1 weeks"},
          Case{"1 year", 1, TimeUnit::Year, "1 years"},
          Case{"3 MONTHS", 3, TimeUnit::Month, "3 months"},
          Case{"  7   Days ", 7, TimeUnit::Day, "7 days"},
          Case{"1 Minute", 1, TimeUnit::Minute, "1 minutes"},
          Case{"month", 1, TimeUnit::Month, "1 months"}, Case{"Week", 1, TimeUnit::Week, "1 weeks"},
          Case{"6hours", 6, TimeUnit::Hour, "6 hours"}}) {
        SCOPED_TRACE(c.text);
        PartitionInterval iv = parse_interval(c.text);
        EXPECT_FALSE(iv.is_integer);
        EXPECT_EQ(iv.count, c.count);
        EXPECT_EQ(iv.unit, c.unit);
        EXPECT_EQ(iv.pg_interval(), c.pg);
    }
}

TEST(IntervalTest, IntegerStep) {
    PartitionInterval iv = parse_interval("100000");
    EXPECT_TRUE(iv.is_integer);
    EXPECT_EQ(iv.count, 100000);
    EXPECT_EQ(iv.pg_interval(), "100000");
    EXPECT_EQ(parse_interval("9223372036854775807").count, INT64_MAX);
}

TEST(IntervalTest, Rejects) {
    for (const char* bad : {"", "  ", "0", "0 days", "-1 day", "-5", "1.5 hours", "0.5", "2,5 days",
                            "3 fortnights", "1 month ago", "abc1", "1 mon", "+1 day", "1 d",
                            "99999999999 days", "99999999999999999999", "1 day 2 hours"}) {
        EXPECT_THROW(parse_interval(bad), ConfigError) << bad;
    }
}

TEST(IntervalTest, MessagesSayWhatIsAllowed) {
    try {
        parse_interval("3 fortnights");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(),
                     "\"3 fortnights\" is not an interval; use \"N "
                     "minute|hour|day|week|month|year\" or a positive integer");
    }
    try {
        parse_interval("0 days");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("positive"), std::string::npos);
    }
    try {
        parse_interval("1.5 hours");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("fraction"), std::string::npos);
    }
}

// ---------------------------------------------------------------- Size

TEST(SizeTest, Units) {
    EXPECT_EQ(parse_size("1024"), 1024);
    EXPECT_EQ(parse_size("0"), 0);
    EXPECT_EQ(parse_size("10B"), 10);
    EXPECT_EQ(parse_size("64kB"), 64 * 1024);
    EXPECT_EQ(parse_size("64KB"), 64 * 1024);
    EXPECT_EQ(parse_size("512MB"), 512LL << 20);
    EXPECT_EQ(parse_size("1 mb"), 1LL << 20);
    EXPECT_EQ(parse_size("2GB"), 2LL << 30);
    EXPECT_EQ(parse_size(" 2 gb "), 2LL << 30);
    EXPECT_EQ(parse_size("1TB"), 1LL << 40);
    EXPECT_EQ(parse_size("8388607TB"), 8388607LL << 40);
}

TEST(SizeTest, Rejects) {
    for (const char* bad : {"", "-1", "-1MB", "1.5GB", "10 parsecs", "GB", "MB10", "1 G", "1PB",
                            "8388608TB", "99999999999999999999", "1e3", "0x10", "1 2 MB"}) {
        EXPECT_THROW(parse_size(bad), ConfigError) << bad;
    }
    try {
        parse_size("10 parsecs");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("kB, MB, GB or TB"), std::string::npos);
    }
}

// ---------------------------------------------------------------- JobConfig

TEST(ConfigTest, MinimalUsesDefaults) {
    JobConfig c = parse_config_string(kMinimal, "job.ini");
    EXPECT_EQ(c.path, "job.ini");
    EXPECT_EQ(c.job_name, "events");
    EXPECT_EQ(c.dsn, "host=localhost dbname=app user=shift");
    EXPECT_EQ(c.table, (QualifiedName{"app", "events"}));
    EXPECT_FALSE(c.shadow_name.has_value());
    EXPECT_EQ(c.strategy, "range");
    EXPECT_EQ(c.column, "created_at");
    EXPECT_EQ(c.interval, (PartitionInterval{false, 1, TimeUnit::Month}));
    EXPECT_EQ(c.premake, 4);
    EXPECT_FALSE(c.default_partition);
    EXPECT_TRUE(c.widen_unique);
    EXPECT_EQ(c.copy_workers, 2);
    EXPECT_EQ(c.cutover_mode, CutoverMode::Auto);
    EXPECT_EQ(c.lock_timeout_ms, 500);
    EXPECT_EQ(c.max_lag_bytes, 1 << 20);
    EXPECT_EQ(c.max_attempts, 30);
    EXPECT_EQ(c.barrier_timeout_ms, 150);
    EXPECT_EQ(c.max_retained_wal, 2LL << 30);
    EXPECT_EQ(c.reconnect_timeout_s, 300);
    EXPECT_EQ(parse_config_string(kMinimal).path, "<string>");
}

TEST(ConfigTest, EveryKeySet) {
    const std::string text =
        "; full job\n"
        "# hash comments too\n"
        "[job]\n"
        "name = events_2024\n"
        "[source]\n"
        "dsn = postgresql://shift@db.internal:5433/app?sslmode=require\n"
        "table = \"Billing\".\"Order Items\"\n"
        "shadow = \"Order Items New\"\n"
        "[partitioning]\n"
        "strategy = RANGE\n"
        "column = \"CreatedAt\"\n"
        "interval = 100000\n"
        "premake = 0\n"
        "default_partition = yes\n"
        "[copy]\n"
        "workers = 64\n"
        "[cutover]\n"
        "mode = manual\n"
        "lock_timeout_ms = 60000\n"
        "max_lag_bytes = 64kB   ; inline comment\n"
        "max_attempts = 1000\n"
        "barrier_timeout_ms = 100\n"
        "[safety]\n"
        "max_retained_wal = 16MB\n";
    JobConfig c = parse_config_string(text, "full.ini");
    EXPECT_EQ(c.job_name, "events_2024");
    EXPECT_EQ(c.dsn, "postgresql://shift@db.internal:5433/app?sslmode=require");
    EXPECT_EQ(c.table, (QualifiedName{"Billing", "Order Items"}));
    EXPECT_EQ(c.shadow_name, "Order Items New");
    EXPECT_EQ(c.strategy, "range");
    EXPECT_EQ(c.column, "CreatedAt");
    EXPECT_TRUE(c.interval.is_integer);
    EXPECT_EQ(c.interval.count, 100000);
    EXPECT_EQ(c.premake, 0);
    EXPECT_TRUE(c.default_partition);
    EXPECT_EQ(c.copy_workers, 64);
    EXPECT_EQ(c.cutover_mode, CutoverMode::Manual);
    EXPECT_EQ(c.lock_timeout_ms, 60000);
    EXPECT_EQ(c.max_lag_bytes, 64 * 1024);
    EXPECT_EQ(c.max_attempts, 1000);
    EXPECT_EQ(c.barrier_timeout_ms, 100);
    EXPECT_EQ(c.max_retained_wal, 16LL << 20);
}

struct KeyCase {
    const char* section;
    const char* key;
    const char* value;
};

TEST(ConfigTest, ValidValuesPerKey) {
    for (const KeyCase& k : std::vector<KeyCase>{
             {"job", "name", "a"},
             {"job", "name", "0123456789012345678901234567890123456789"},
             {"source", "shadow", "events_new"},
             {"partitioning", "strategy", "range"},
             {"partitioning", "premake", "1000"},
             {"partitioning", "default_partition", "true"},
             {"partitioning", "default_partition", "FALSE"},
             {"partitioning", "default_partition", "on"},
             {"partitioning", "default_partition", "off"},
             {"partitioning", "default_partition", "1"},
             {"partitioning", "default_partition", "0"},
             {"partitioning", "default_partition", "No"},
             {"partitioning", "widen_unique", "false"},
             {"partitioning", "widen_unique", "yes"},
             {"copy", "workers", "1"},
             {"cutover", "mode", "AUTO"},
             {"cutover", "lock_timeout_ms", "1"},
             {"cutover", "max_lag_bytes", "0"},
             {"cutover", "max_lag_bytes", "1048576"},
             {"cutover", "max_attempts", "1"},
             {"cutover", "barrier_timeout_ms", "600000"},
             {"safety", "max_retained_wal", "1TB"},
             {"safety", "reconnect_timeout_s", "0"},
             {"safety", "reconnect_timeout_s", "86400"},
         }) {
        SCOPED_TRACE(std::string(k.section) + "." + k.key + " = " + k.value);
        EXPECT_NO_THROW(parse_config_string(with_key(k.section, k.key, k.value)));
    }
    EXPECT_TRUE(
        parse_config_string(with_key("partitioning", "default_partition", "on")).default_partition);
    EXPECT_EQ(parse_config_string(with_key("cutover", "max_lag_bytes", "2MB")).max_lag_bytes,
              2 << 20);
}

// Every invalid value names the file, its line (8: the appended key) and
// "section.key", and says what is allowed.
TEST(ConfigTest, InvalidValuesPerKeyNameTheKey) {
    struct Bad {
        const char* section;
        const char* key;
        const char* value;
        const char* expect;
    };
    for (const Bad& b : std::vector<Bad>{
             {"job", "name", "My-Job", "use 1 to 40 characters from a-z, 0-9 and _"},
             {"job", "name", "abcdefghijabcdefghijabcdefghijabcdefghijk", "1 to 40"},
             {"job", "name", "Events", "a-z"},
             {"source", "shadow", "app.events_new", "schema-qualified"},
             {"source", "shadow", "bad name", "double quotes"},
             {"partitioning", "strategy", "interval", "use range, list or hash"},
             {"partitioning", "modulus", "1", "from 2 to 1024"},
             {"partitioning", "values", "a,,b", "empty value"},
             {"partitioning", "values", "a, b, a", "listed twice"},
             {"partitioning", "premake", "1001", "from 0 to 1000"},
             {"partitioning", "premake", "-1", "from 0 to 1000"},
             {"partitioning", "premake", "four", "not an integer"},
             {"partitioning", "premake", "4.0", "not an integer"},
             {"partitioning", "premake", "99999999999999999999", "out of range"},
             {"partitioning", "default_partition", "maybe", "true|false|yes|no|on|off|1|0"},
             {"partitioning", "default_partition", "2", "not a boolean"},
             {"partitioning", "widen_unique", "sometimes", "true|false|yes|no|on|off|1|0"},
             {"copy", "workers", "0", "from 1 to 64"},
             {"copy", "workers", "65", "from 1 to 64"},
             {"copy", "workers", "+2", "not an integer"},
             {"cutover", "mode", "automatic", "use auto, manual or window"},
             {"cutover", "lock_timeout_ms", "0", "from 1 to 60000"},
             {"cutover", "lock_timeout_ms", "60001", "from 1 to 60000"},
             {"cutover", "lock_timeout_ms", "500ms", "not an integer"},
             {"cutover", "max_lag_bytes", "1.5MB", "fraction"},
             {"cutover", "max_lag_bytes", "-1", "negative"},
             {"cutover", "max_lag_bytes", "lots", "not a size"},
             {"cutover", "max_attempts", "0", "from 1 to 1000"},
             {"cutover", "max_attempts", "1001", "from 1 to 1000"},
             {"cutover", "barrier_timeout_ms", "99", "from 100 to 600000"},
             {"cutover", "barrier_timeout_ms", "600001", "from 100 to 600000"},
             {"safety", "max_retained_wal", "1MB", "at least 16MB"},
             {"safety", "max_retained_wal", "2 GiB", "not a size"},
             {"safety", "reconnect_timeout_s", "86401", "from 0 to 86400"},
         }) {
        std::string where = std::string("job.ini:8: ") + b.section + "." + b.key + ": ";
        SCOPED_TRACE(where + b.value);
        std::string err = error_of(with_key(b.section, b.key, b.value));
        EXPECT_EQ(err.rfind(where, 0), 0u) << err;
        EXPECT_NE(err.find(b.expect), std::string::npos) << err;
    }
}

TEST(ConfigTest, InvalidRequiredValuesNameTheKey) {
    struct Bad {
        const char* key;
        const char* value;
        const char* where;
        const char* expect;
    };
    for (const Bad& b : std::vector<Bad>{
             {"table", "a.b.c", "job.ini:3: source.table: ", "more than one"},
             {"table", "\"Unbalanced", "job.ini:3: source.table: ", "unterminated"},
             {"table", "my table", "job.ini:3: source.table: ", "double quotes"},
             {"column", "a.b", "job.ini:5: partitioning.column: ", "schema-qualified"},
             {"column", "\"\"", "job.ini:5: partitioning.column: ", "must not be empty"},
             {"interval", "3 fortnights",
              "job.ini:6: partitioning.interval: \"3 fortnights\" is not an interval; use \"N "
              "minute|hour|day|week|month|year\" or a positive integer",
              ""},
             {"interval", "0", "job.ini:6: partitioning.interval: ", "positive"},
             {"dsn", "not a conninfo", "job.ini:2: source.dsn: ", "missing \"=\""},
         }) {
        SCOPED_TRACE(std::string(b.key) + " = " + b.value);
        std::string err = error_of(replacing(b.key, b.value));
        EXPECT_EQ(err.rfind(b.where, 0), 0u) << err;
        EXPECT_NE(err.find(b.expect), std::string::npos) << err;
    }
}

TEST(ConfigTest, UnknownSectionListsKnownOnes) {
    std::string err = error_of(kMinimal + "[cutvoer]\nmode = auto\n");
    EXPECT_EQ(err,
              "job.ini:7: unknown section [cutvoer]; known sections: [job], [source], "
              "[partitioning], [subpartitioning], [copy], [cutover], [safety], [verify], "
              "[maintain]");
    // Even with no keys under it.
    EXPECT_NE(error_of(kMinimal + "[verfy]\n").find("job.ini:7: unknown section [verfy]"),
              std::string::npos);
}

TEST(ConfigTest, UnknownKeyListsSectionKeys) {
    std::string err = error_of(with_key("cutover", "lock_timout_ms", "5"));
    EXPECT_EQ(err,
              "job.ini:8: cutover.lock_timout_ms: unknown key; keys in [cutover]: mode, "
              "lock_timeout_ms, max_lag_bytes, max_attempts, barrier_timeout_ms, window, "
              "time_zone, postpone_file, reverse, long_transaction_s, cancel_blockers");
    EXPECT_NE(error_of(kMinimal + "[source]\npassword = x\n")
                  .find("source.password: unknown key; keys in [source]: dsn, table, shadow"),
              std::string::npos);
}

TEST(ConfigTest, KeyOutsideAnySection) {
    std::string err = error_of("name = x\n" + kMinimal);
    EXPECT_NE(err.find("job.ini:1: name: key is outside any section"), std::string::npos) << err;
}

TEST(ConfigTest, DuplicateKeys) {
    std::string err = error_of(kMinimal + "interval = 1 day\n");
    EXPECT_EQ(err, "job.ini:7: partitioning.interval: set twice (first on line 6); keep only one");
    // Also across a repeated section header.
    err = error_of(kMinimal + "[source]\ntable = other\n");
    EXPECT_NE(err.find("job.ini:8: source.table: set twice (first on line 3)"), std::string::npos)
        << err;
}

TEST(ConfigTest, MissingRequiredKeys) {
    struct Missing {
        const char* line_start;
        const char* message;
    };
    for (const Missing& m : std::vector<Missing>{
             {"dsn =",
              "job.ini: source.dsn: required key is missing; add \"dsn = ...\" under [source]"},
             {"table =", "job.ini: source.table: required key is missing"},
             {"column =", "job.ini: partitioning.column: required key is missing"},
             {"interval =", "job.ini: partitioning.interval: required key is missing"},
         }) {
        std::string text = kMinimal;
        size_t pos = text.find(std::string("\n") + m.line_start) + 1;
        text.erase(pos, text.find('\n', pos) - pos + 1);
        std::string err = error_of(text);
        EXPECT_EQ(err.rfind(m.message, 0), 0u) << err;
    }
    EXPECT_NE(error_of("").find("source.dsn: required key is missing"), std::string::npos);
}

TEST(ConfigTest, EmptyValues) {
    EXPECT_EQ(error_of(replacing("table", "")), "job.ini:3: source.table: a value is required");
    EXPECT_EQ(error_of(replacing("dsn", "  ")), "job.ini:2: source.dsn: a value is required");
    EXPECT_EQ(error_of(with_key("copy", "workers", "")),
              "job.ini:8: copy.workers: empty value; remove the line to use the default");
}

TEST(ConfigTest, QuotedValuesOnlyForIdentifiers) {
    EXPECT_NE(error_of(replacing("interval", "\"1 month\"")).find("remove the quotes"),
              std::string::npos);
    EXPECT_NE(error_of(replacing("dsn", "'host=x'")).find("source.dsn: remove the quotes"),
              std::string::npos);
    EXPECT_EQ(parse_config_string(replacing("table", "\"Events\"")).table.name, "Events");
}

TEST(ConfigTest, SyntaxErrorsCarryTheLine) {
    std::string err = error_of(kMinimal + "this line has no equals sign\n");
    EXPECT_EQ(err.rfind("job.ini:7: syntax error: expected \"key = value\"", 0), 0u) << err;
    err = error_of("[source\n" + kMinimal);
    EXPECT_EQ(err, "job.ini:1: syntax error: section header is missing the closing \"]\"");
    // The offending line is never echoed (it may be a DSN).
    err = error_of(kMinimal + "host=x password hunter2\n");
    EXPECT_EQ(err.find("hunter2"), std::string::npos) << err;
}

TEST(ConfigTest, EmptyKeyName) {
    EXPECT_NE(error_of(kMinimal + "= value\n").find("job.ini:7: missing key name"),
              std::string::npos);
}

TEST(ConfigTest, IndentedKeysAreNotContinuationLines) {
    std::string text =
        "[source]\n"
        "    dsn = host=x\n"
        "    table = events\n"
        "[partitioning]\n"
        "\tcolumn = ts\n"
        "\t  interval = 1 week\n";
    JobConfig c = parse_config_string(text);
    EXPECT_EQ(c.dsn, "host=x");
    EXPECT_EQ(c.table.name, "events");
    EXPECT_EQ(c.column, "ts");
    EXPECT_EQ(c.interval.unit, TimeUnit::Week);
}

TEST(ConfigTest, CrlfCaseAndWhitespaceTolerance) {
    std::string text =
        "[Source]\r\n"
        "DSN=host=x\r\n"
        "Table :   app.events   \r\n"
        "[ partitioning ]\r\n"
        "column=ts\r\n"
        "interval= 1 day";  // no trailing newline
    JobConfig c = parse_config_string(text);
    EXPECT_EQ(c.dsn, "host=x");
    EXPECT_EQ(c.table, (QualifiedName{"app", "events"}));
    EXPECT_EQ(c.interval.pg_interval(), "1 days");
}

TEST(ConfigTest, OverlongLineAndNulByte) {
    std::string long_dsn = "host=x application_name=" + std::string(300, 'a');
    std::string err = error_of(replacing("dsn", long_dsn));
    EXPECT_EQ(err.rfind("job.ini:2: line is longer than", 0), 0u) << err;
    EXPECT_EQ(err.find("aaaa"), std::string::npos);
    std::string nul = kMinimal;
    nul += std::string("[copy]\nworkers = 2\0junk\n", 22);
    EXPECT_EQ(error_of(nul), "job.ini:8: line contains a NUL byte");
}

// ---------------------------------------------------------------- DSN and passwords

TEST(ConfigTest, PasswordInDsnIsRejectedWithoutEchoingIt) {
    for (const char* dsn :
         {"host=db user=u password=S3cretPw dbname=app", "host=db password='S3cretPw with space'",
          "postgresql://u:S3cretPw@db/app", "postgres://u:S3cretPw@db:5432/app?sslmode=require",
          "postgresql://u@db/app?password=S3cretPw", "host=db password=''"}) {
        SCOPED_TRACE(dsn);
        std::string err = error_of(replacing("dsn", dsn));
        EXPECT_EQ(err.rfind("job.ini:2: source.dsn: must not contain a password", 0), 0u) << err;
        EXPECT_NE(err.find("PGPASSWORD"), std::string::npos);
        EXPECT_NE(err.find("~/.pgpass"), std::string::npos);
        EXPECT_NE(err.find("service"), std::string::npos);
        EXPECT_EQ(err.find("S3cretPw"), std::string::npos) << err;
        EXPECT_EQ(err.find(dsn), std::string::npos) << err;
    }
}

TEST(ConfigTest, MalformedDsnErrorsDoNotLeakIt) {
    for (const char* dsn :
         {"host=db S3cretPw", "host=db password S3cretPw", "postgresql://u:S3cret%zzPw@db/app",
          "postgresql://u:S3cretPw@[::1/app", "postgresql://u@db/app?S3cretPw",
          "postgresql://u@db/app?a=b=S3cretPw", "host='db password=S3cretPw",
          "postgresql://u:S3cret%00Pw@db/app", "postgresql://u:S3cretPw@[]/app"}) {
        SCOPED_TRACE(dsn);
        std::string err = error_of(replacing("dsn", dsn));
        EXPECT_EQ(err.rfind("job.ini:2: source.dsn: ", 0), 0u) << err;
        EXPECT_EQ(err.find("S3cret"), std::string::npos) << err;
        EXPECT_EQ(err.find("zzPw"), std::string::npos) << err;
    }
}

TEST(ConfigTest, MalformedDsnKeepsUsefulLibpqDetail) {
    EXPECT_EQ(error_of(replacing("dsn", "host=db colour=blue")),
              "job.ini:2: source.dsn: invalid connection option \"colour\"");
    EXPECT_EQ(error_of(replacing("dsn", "host=db tokenwithoutequals")),
              "job.ini:2: source.dsn: missing \"=\" after \"...\" in connection info string");
}

TEST(ConfigTest, ValidDsnForms) {
    for (const char* dsn : {"host=db port=5432 dbname=app user=shift sslmode=verify-full",
                            "service=pgshift", "postgresql:///app", "postgresql://u@db:5432/app",
                            "dbname='my app' passfile=/etc/pgshift/pgpass"}) {
        EXPECT_EQ(parse_config_string(replacing("dsn", dsn)).dsn, dsn);
    }
}

// ---------------------------------------------------------------- cross-key rules

TEST(ConfigTest, LagMustBeBelowRetainedWal) {
    std::string err = error_of(kMinimal +
                               "[cutover]\nmax_lag_bytes = 32MB\n[safety]\n"
                               "max_retained_wal = 16MB\n");
    EXPECT_EQ(err,
              "job.ini:8: cutover.max_lag_bytes: cutover.max_lag_bytes (32MB) must be smaller "
              "than safety.max_retained_wal (16MB)");
    err =
        error_of(kMinimal + "[cutover]\nmax_lag_bytes = 16MB\n[safety]\nmax_retained_wal = 16MB\n");
    EXPECT_NE(err.find("must be smaller"), std::string::npos);
}

TEST(ConfigTest, ShadowMustDifferFromTable) {
    std::string err = error_of(with_key("source", "shadow", "EVENTS"));
    EXPECT_EQ(err, "job.ini:8: source.shadow: must differ from the source table's name");
    EXPECT_EQ(parse_config_string(with_key("source", "shadow", "\"Events\"")).shadow_name,
              "Events");
}

// ---------------------------------------------------------------- job name derivation

TEST(ConfigTest, JobNameDerivation) {
    EXPECT_EQ(derive_job_name({"public", "events"}), "events");
    EXPECT_EQ(derive_job_name({"Billing", "Order Items"}), "order_items");
    EXPECT_EQ(derive_job_name({"public", "user"}), "user");
    EXPECT_EQ(derive_job_name({"public", "a\"b.c$d"}), "a_b_c_d");
    EXPECT_EQ(derive_job_name({"public", "café"}), "caf__");  // two UTF-8 bytes
    EXPECT_EQ(derive_job_name({"public", std::string(63, 'X')}), std::string(40, 'x'));
    EXPECT_EQ(parse_config_string(replacing("table", "\"Sales\".\"Order-Items 2024\"")).job_name,
              "order_items_2024");
    EXPECT_EQ(parse_config_string(kMinimal + "[job]\nname = custom\n").job_name, "custom");
}

// ---------------------------------------------------------------- files

class ConfigFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("pgshift_config_test_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(ConfigFileTest, LoadsAFileAndRecordsThePath) {
    std::string path = (dir_ / "job.ini").string();
    std::ofstream(path) << kMinimal;
    JobConfig c = load_config(path);
    EXPECT_EQ(c.path, path);
    EXPECT_EQ(c.table.name, "events");
}

TEST_F(ConfigFileTest, ErrorsNameThePath) {
    std::string path = (dir_ / "bad.ini").string();
    std::ofstream(path) << kMinimal << "[copy]\nworkers = 0\n";
    try {
        load_config(path);
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(path + ":8: copy.workers: ", 0), 0u) << e.what();
    }
}

TEST_F(ConfigFileTest, UnreadableFile) {
    std::string missing = (dir_ / "nope.ini").string();
    try {
        load_config(missing);
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "cannot read config file " + missing + ": No such file or directory");
    }
    try {
        load_config(dir_.string());
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("cannot read config file " + dir_.string() + ": ", 0),
                  0u)
            << e.what();
    }
}

TEST(ConfigExampleTest, ShippedExampleParses) {
    std::string path = std::string(PGSHIFT_FIXTURES_DIR) + "/../../examples/job.ini";
    JobConfig c = load_config(path);
    EXPECT_EQ(c.table, (QualifiedName{"app", "events"}));
    EXPECT_EQ(c.interval.pg_interval(), "1 months");
    EXPECT_FALSE(c.dsn.empty());
}

}  // namespace
}  // namespace pgshift

namespace pgshift {
namespace {

const char* kMinimalCutover =
    "[source]\ndsn = host=h dbname=d\ntable = events\n[partitioning]\ncolumn = at\n"
    "interval = 1 day\n[cutover]\n";

TEST(ConfigCutoverTest, WindowModeNeedsAWindow) {
    std::string text = std::string(kMinimalCutover) + "mode = window\n";
    try {
        parse_config_string(text, "job.ini");
        FAIL() << "expected ConfigError";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("cutover.window"), std::string::npos) << e.what();
    }
    auto cfg = parse_config_string(
        std::string(kMinimalCutover) +
        "mode = window\nwindow = 22:00-01:30\ntime_zone = Europe/Berlin\nreverse = off\n");
    EXPECT_EQ(cfg.cutover_mode, CutoverMode::Window);
    ASSERT_TRUE(cfg.cutover_window);
    EXPECT_EQ(cfg.cutover_window->start_minute, 22 * 60);
    EXPECT_EQ(cfg.cutover_window->end_minute, 90);
    EXPECT_EQ(cfg.time_zone, "Europe/Berlin");
    EXPECT_FALSE(cfg.reverse);
}

TEST(ConfigCutoverTest, BadWindowsAreRejected) {
    for (const char* bad : {"22-23", "25:00-26:00", "10:00-10:00", "10:00", "ab:cd-10:00"}) {
        EXPECT_THROW(parse_cutover_window(bad), ConfigError) << bad;
    }
    EXPECT_EQ(parse_cutover_window(" 08:05 - 09:00 ").start_minute, 8 * 60 + 5);
}

TEST(ConfigCutoverTest, DefaultsAreSafe) {
    auto cfg = parse_config_string(kMinimalCutover);
    EXPECT_TRUE(cfg.reverse);
    EXPECT_FALSE(cfg.cancel_blockers);
    EXPECT_EQ(cfg.long_transaction_s, 5);
    EXPECT_TRUE(cfg.postpone_file.empty());
}

}  // namespace
}  // namespace pgshift

namespace pgshift {
namespace {

const char* kMinimalOps =
    "[source]\ndsn = host=h dbname=d\ntable = events\n[partitioning]\ncolumn = at\n"
    "interval = 1 day\n";

TEST(ConfigOpsTest, VerifyQueriesRepeatInOrder) {
    auto cfg = parse_config_string(std::string(kMinimalOps) +
                                   "[verify]\nquery = SELECT * FROM events WHERE at > now() - "
                                   "interval '1 day'\nanalyze = yes\nquery = SELECT count(*) FROM "
                                   "events\nrechecks = 5\nrecheck_wait_ms = 100\n");
    ASSERT_EQ(cfg.verify_queries.size(), 2u);
    EXPECT_EQ(cfg.verify_queries[0], "SELECT * FROM events WHERE at > now() - interval '1 day'");
    EXPECT_EQ(cfg.verify_queries[1], "SELECT count(*) FROM events");
    EXPECT_TRUE(cfg.verify_analyze);
    EXPECT_EQ(cfg.verify_rechecks, 5);
    EXPECT_EQ(cfg.verify_recheck_wait_ms, 100);
}

TEST(ConfigOpsTest, MaintainKeysAndDefaults) {
    auto cfg = parse_config_string(kMinimalOps);
    EXPECT_TRUE(cfg.verify_queries.empty());
    EXPECT_FALSE(cfg.verify_analyze);
    EXPECT_EQ(cfg.retention, 0);
    EXPECT_EQ(cfg.retention_action, RetentionAction::Detach);
    EXPECT_EQ(cfg.archive_schema, "pgshift_archive");
    cfg = parse_config_string(std::string(kMinimalOps) +
                              "[maintain]\nretention = 12\nretention_action = ARCHIVE\n"
                              "archive_schema = \"Old Data\"\n");
    EXPECT_EQ(cfg.retention, 12);
    EXPECT_EQ(cfg.retention_action, RetentionAction::Archive);
    EXPECT_EQ(cfg.archive_schema, "Old Data");
    for (const char* bad : {"retention = -1", "retention_action = delete", "archive_schema = a.b",
                            "retention = 1\nretention = 2"}) {
        EXPECT_THROW(parse_config_string(std::string(kMinimalOps) + "[maintain]\n" + bad + "\n"),
                     ConfigError)
            << bad;
    }
    try {
        parse_config_string(std::string(kMinimalOps) + "[verify]\nanalyze = maybe\n", "job.ini");
        FAIL() << "expected ConfigError";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("verify.analyze"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace pgshift

namespace pgshift {
namespace {

const std::string kBase =
    "[source]\n"
    "dsn = host=localhost dbname=app user=shift\n"
    "table = app.events\n"
    "[partitioning]\n"
    "column = kind\n";

TEST(ConfigStrategies, HashNeedsModulusNotInterval) {
    JobConfig c = parse_config_string(kBase + "strategy = hash\nmodulus = 8\n");
    EXPECT_EQ(c.strategy, "hash");
    EXPECT_EQ(c.modulus, 8);
    EXPECT_NE(error_of(kBase + "strategy = hash\n")
                  .find("partitioning.modulus: required when "
                        "strategy = hash"),
              std::string::npos);
    EXPECT_NE(error_of(kBase + "strategy = hash\nmodulus = 4\ninterval = 1 day\n")
                  .find("job.ini:8: partitioning.interval: not used with strategy = hash"),
              std::string::npos);
}

TEST(ConfigStrategies, ListValuesOptional) {
    JobConfig c = parse_config_string(kBase + "strategy = LIST\nvalues = a, b c ,  d\n");
    EXPECT_EQ(c.strategy, "list");
    EXPECT_EQ(c.list_values, (std::vector<std::string>{"a", "b c", "d"}));
    EXPECT_TRUE(parse_config_string(kBase + "strategy = list\n").list_values.empty());
    EXPECT_NE(
        error_of(kBase + "strategy = list\nmodulus = 4\n").find("not used with strategy = list"),
        std::string::npos);
}

TEST(ConfigSubpartitioning, RangeThenHash) {
    JobConfig c = parse_config_string(kBase +
                                      "interval = 1 month\n[subpartitioning]\nstrategy = HASH\n"
                                      "column = \"Tenant\"\nmodulus = 4\n");
    EXPECT_EQ(c.sub_strategy, "hash");
    EXPECT_EQ(c.sub_column, "Tenant");
    EXPECT_EQ(c.sub_modulus, 4);
    EXPECT_EQ(c.partition_columns(), (std::vector<std::string>{"kind", "Tenant"}));
    EXPECT_EQ(parse_config_string(kBase + "interval = 1 day\n").partition_columns(),
              (std::vector<std::string>{"kind"}));
}

TEST(ConfigSubpartitioning, ListThenRange) {
    JobConfig c = parse_config_string(kBase +
                                      "strategy = list\n[subpartitioning]\nstrategy = range\n"
                                      "column = created_at\ninterval = 1 week\n");
    EXPECT_EQ(c.sub_strategy, "range");
    EXPECT_EQ(c.sub_interval, (PartitionInterval{false, 1, TimeUnit::Week}));
}

TEST(ConfigSubpartitioning, Errors) {
    const std::string range = kBase + "interval = 1 day\n[subpartitioning]\n";
    EXPECT_NE(error_of(range + "column = t\n").find("subpartitioning.strategy: required"),
              std::string::npos);
    EXPECT_NE(error_of(range + "strategy = hash\n").find("subpartitioning.column: required"),
              std::string::npos);
    EXPECT_NE(error_of(range + "strategy = hash\ncolumn = t\n")
                  .find("subpartitioning.modulus: required when strategy = hash"),
              std::string::npos);
    EXPECT_NE(error_of(range + "strategy = range\ncolumn = t\n")
                  .find("subpartitioning.interval: required when strategy = range"),
              std::string::npos);
    EXPECT_NE(error_of(range + "strategy = hash\ncolumn = t\nmodulus = 2\ninterval = 1 day\n")
                  .find("job.ini:11: subpartitioning.interval: not used"),
              std::string::npos);
    EXPECT_NE(error_of(range + "strategy = list\n").find("use hash or range"), std::string::npos);
    EXPECT_NE(error_of(range + "strategy = range\ncolumn = kind\ninterval = 1 hour\n")
                  .find("RANGE inside RANGE on the same column"),
              std::string::npos);
    EXPECT_NE(error_of(kBase + "strategy = hash\nmodulus = 2\n[subpartitioning]\nstrategy = "
                               "range\ncolumn = t\ninterval = 1 day\n")
                  .find("HASH partitions cannot be sub-partitioned"),
              std::string::npos);
}

TEST(ConfigStrategies, RangeStillNeedsInterval) {
    EXPECT_NE(error_of(kBase).find("partitioning.interval: required key is missing"),
              std::string::npos);
    EXPECT_NE(
        error_of(kBase + "interval = 1 day\nvalues = a\n").find("partitioning.values: not used"),
        std::string::npos);
}

}  // namespace
}  // namespace pgshift
