// Pure helpers of verify / maintain / partitions: bound parsing, EXPLAIN plan
// analysis, chunk comparison, retention decisions.
#include <gtest/gtest.h>

#include "maintain.h"
#include "ops_target.h"
#include "verify.h"

namespace pgshift {
namespace {

TEST(ParseRangeBound, TimeIntegerNegativeDefaultAndOthers) {
    auto b = parse_range_bound(
        "FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00')");
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->is_default);
    EXPECT_EQ(b->from, "2025-01-01 00:00:00+00");
    EXPECT_EQ(b->to, "2025-02-01 00:00:00+00");
    b = parse_range_bound("FOR VALUES FROM ('-100') TO (0)");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->from, "-100");
    EXPECT_EQ(b->to, "0");
    b = parse_range_bound("FOR VALUES FROM (MINVALUE) TO ('it''s')");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->from, "MINVALUE");
    EXPECT_EQ(b->to, "it's");
    b = parse_range_bound("DEFAULT");
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->is_default);
    EXPECT_FALSE(parse_range_bound("FOR VALUES IN (1, 2)"));
    EXPECT_FALSE(parse_range_bound("FOR VALUES FROM (1, 2) TO (3, 4)"));
    EXPECT_FALSE(parse_range_bound("FOR VALUES WITH (modulus 4, remainder 0)"));
    EXPECT_FALSE(parse_range_bound("FOR VALUES FROM ('x) TO ('y')x"));
}

TEST(AnalyzePlan, PlanTimePruningAndSubplansRemoved) {
    auto plan = nlohmann::json::parse(R"([{"Plan": {"Node Type": "Append", "Subplans Removed": 3,
        "Plans": [{"Node Type": "Seq Scan", "Relation Name": "events_p2025_01"},
                  {"Node Type": "Index Scan", "Relation Name": "events_p2025_02"},
                  {"Node Type": "Index Scan", "Relation Name": "events_p2025_02"},
                  {"Node Type": "Seq Scan", "Relation Name": "other"}]}}])");
    auto s = analyze_plan(plan, {"events_p2025_01", "events_p2025_02", "events_p2025_03"});
    EXPECT_EQ(s.scanned, (std::vector<std::string>{"events_p2025_01", "events_p2025_02"}));
    EXPECT_EQ(s.subplans_removed, 3);
    EXPECT_TRUE(s.never_executed.empty());
}

TEST(AnalyzePlan, AnalyzeNeverExecutedIsNotScanned) {
    auto plan = nlohmann::json::parse(R"([{"Plan": {"Node Type": "Nested Loop", "Plans": [
        {"Node Type": "Append", "Plans": [
          {"Relation Name": "p1", "Actual Loops": 0},
          {"Relation Name": "p2", "Actual Loops": 1}]},
        {"Node Type": "Append", "Plans": [{"Relation Name": "p1", "Actual Loops": 2}]},
        {"Relation Name": "p3", "Actual Loops": 0}]}}])");
    auto s = analyze_plan(plan, {"p1", "p2", "p3"});
    EXPECT_EQ(s.scanned, (std::vector<std::string>{"p2", "p1"}));
    EXPECT_EQ(s.never_executed, (std::vector<std::string>{"p3"}));
    EXPECT_TRUE(analyze_plan(nlohmann::json::array(), {"p1"}).scanned.empty());
}

TEST(DifferingChunks, MissingEmptyAndChanged) {
    ChunkMap l{{1, {2, "10"}}, {2, {1, "5"}}, {std::nullopt, {1, "7"}}, {4, {0, "0"}}};
    ChunkMap r{{1, {2, "10"}}, {2, {1, "6"}}, {3, {1, "1"}}};
    auto d = differing_chunks(l, r);
    std::vector<std::optional<int64_t>> want{std::nullopt, 2, 3};
    EXPECT_EQ(d, want);
    EXPECT_TRUE(differing_chunks(l, l).empty());
}

TEST(ClassifyRows, BothSidesMeansDiffers) {
    auto rows = classify_rows({"(1)", "(2)"}, {"(2)", "(3)"});
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0], std::make_pair(std::string("(1)"), RowProblem::MissingInNew));
    EXPECT_EQ(rows[1], std::make_pair(std::string("(2)"), RowProblem::Differs));
    EXPECT_EQ(rows[2], std::make_pair(std::string("(3)"), RowProblem::ExtraInNew));
    EXPECT_STREQ(to_string(RowProblem::Differs), "differs");
}

PartitionInfo part(const std::string& name, std::optional<int64_t> from, std::optional<int64_t> to,
                   const std::string& from_text = "x", const std::string& to_text = "y") {
    PartitionInfo p;
    p.name = name;
    p.bound = ParsedBound{false, from_text, to_text};
    p.from_units = from;
    p.to_units = to;
    return p;
}

TEST(MaintainDecisions, OverlapsAndUnitRanges) {
    PartitionInfo def;
    def.name = "d";
    def.bound = ParsedBound{true, "", ""};
    std::vector<PartitionInfo> parts{part("a", 0, 100), part("b", 100, 200), def,
                                     part("m", std::nullopt, -50, "MINVALUE")};
    EXPECT_TRUE(overlaps_any(50, 60, parts));
    EXPECT_TRUE(overlaps_any(199, 300, parts));
    EXPECT_FALSE(overlaps_any(200, 300, parts));
    EXPECT_TRUE(overlaps_any(-1000, -900, parts));  // MINVALUE
    EXPECT_FALSE(overlaps_any(-50, 0, parts));
    EXPECT_FALSE(unit_range(def));
}

TEST(MaintainDecisions, RetentionCutoffAndExpired) {
    std::vector<PartitionBound> slots;
    for (int i = 0; i < 6; ++i)
        slots.push_back(
            {"p" + std::to_string(i), std::to_string(i * 10), std::to_string(i * 10 + 10)});
    EXPECT_FALSE(retention_cutoff(slots, 0));
    EXPECT_FALSE(retention_cutoff(slots, 6));
    EXPECT_EQ(retention_cutoff(slots, 2), "30");  // keep p3 (ends after now - 2), p4, p5
    EXPECT_EQ(retention_cutoff(slots, 5), "0");

    std::vector<PartitionInfo> parts{part("p2", 20, 30), part("p0", 0, 10), part("p3", 30, 40),
                                     part("p1", 10, 20)};
    auto exp = expired_partitions(parts, 30);
    ASSERT_EQ(exp.size(), 3u);
    EXPECT_EQ(exp[0]->name, "p0");
    EXPECT_EQ(exp[2]->name, "p2");
    EXPECT_TRUE(expired_partitions(parts, 5).empty());
}

TEST(MaintainDecisions, BackoffIsCapped) {
    EXPECT_EQ(backoff_ms(0), 100);
    EXPECT_EQ(backoff_ms(1), 200);
    EXPECT_EQ(backoff_ms(3), 800);
    EXPECT_EQ(backoff_ms(50), 5000);
}

PartitionInterval every(int64_t n, TimeUnit u) {
    return PartitionInterval{false, n, u};
}

// Expected strings follow create_parent() in pg_partman--4.7.2.sql.
TEST(PartmanHandoff, DatetimeStringFollowsCreateParent) {
    EXPECT_EQ(partman_datetime_string(every(1, TimeUnit::Year)), "YYYY");
    EXPECT_EQ(partman_datetime_string(every(12, TimeUnit::Month)), "YYYY");
    EXPECT_EQ(partman_datetime_string(every(1, TimeUnit::Month)), "YYYY_MM");
    EXPECT_EQ(partman_datetime_string(every(5, TimeUnit::Week)), "YYYY_MM");  // 35 days
    EXPECT_EQ(partman_datetime_string(every(1, TimeUnit::Week)), "YYYY_MM_DD");
    EXPECT_EQ(partman_datetime_string(every(1, TimeUnit::Day)), "YYYY_MM_DD");
    EXPECT_EQ(partman_datetime_string(every(1, TimeUnit::Hour)), "YYYY_MM_DD_HH24MI");
    EXPECT_EQ(partman_datetime_string(every(15, TimeUnit::Minute)), "YYYY_MM_DD_HH24MI");
    EXPECT_EQ(partman_datetime_string(every(1440, TimeUnit::Minute)), "YYYY_MM_DD");
}

TEST(PartmanHandoff, QuarterlyIntervalsAreRefused) {
    EXPECT_TRUE(partman_interval_problem(every(3, TimeUnit::Month)));
    EXPECT_TRUE(partman_interval_problem(every(90, TimeUnit::Day)));
    EXPECT_FALSE(partman_interval_problem(every(1, TimeUnit::Month)));
    EXPECT_FALSE(partman_interval_problem(every(13, TimeUnit::Week)));
    EXPECT_FALSE(partman_interval_problem(PartitionInterval{true, 90, TimeUnit::Day}));
}

TEST(PartmanHandoff, RetentionIsIntervalsTimesN) {
    EXPECT_FALSE(partman_retention(every(1, TimeUnit::Month), 0));
    EXPECT_EQ(partman_retention(every(1, TimeUnit::Month), 12), "12 months");
    EXPECT_EQ(partman_retention(every(15, TimeUnit::Minute), 4), "60 minutes");
    EXPECT_EQ(partman_retention(PartitionInterval{true, 1000, TimeUnit::Day}, 3), "3000");
}

TEST(MaintainConfig, FileRetentionNeedsArchiveDir) {
    const std::string base =
        "[source]\ndsn = host=x\ntable = t\n[partitioning]\ncolumn = c\ninterval = 1 "
        "month\n[maintain]\nretention = 3\nretention_action = file\n";
    EXPECT_THROW(parse_config_string(base), ConfigError);
    auto cfg = parse_config_string(base + "archive_dir = /srv/archive\n");
    EXPECT_EQ(cfg.retention_action, RetentionAction::File);
    EXPECT_EQ(cfg.archive_dir, "/srv/archive");
}

TEST(StatusCutoverWindow, SecondsUntilOpenAndClose) {
    CutoverWindow day{9 * 60, 17 * 60};
    EXPECT_EQ(seconds_until_window(day, 8 * 3600), 3600);
    EXPECT_EQ(seconds_until_window(day, 10 * 3600), 0);
    EXPECT_EQ(seconds_until_window_closes(day, 10 * 3600), 7 * 3600);
    EXPECT_EQ(seconds_until_window(day, 17 * 3600), 16 * 3600);  // end is exclusive
    EXPECT_EQ(seconds_until_window_closes(day, 17 * 3600), 0);
    CutoverWindow night{22 * 60, 2 * 60};  // spans midnight
    EXPECT_EQ(seconds_until_window(night, 23 * 3600), 0);
    EXPECT_EQ(seconds_until_window_closes(night, 23 * 3600), 3 * 3600);
    EXPECT_EQ(seconds_until_window_closes(night, 3600), 3600);
    EXPECT_EQ(seconds_until_window(night, 2 * 3600), 20 * 3600);
    EXPECT_EQ(seconds_until_window(night, 21 * 3600 + 59 * 60 + 30), 30);
}

}  // namespace
}  // namespace pgshift
