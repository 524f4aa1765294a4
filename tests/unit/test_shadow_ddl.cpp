// Shadow DDL: partition bounds and names from the key range, and the
// CREATE / index / rename plan for the shadow table.
#include "shadow_ddl.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgshift {
namespace {

int64_t epoch(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
    using namespace std::chrono;
    sys_days day{year{y} / month{m} / std::chrono::day{d}};
    return duration_cast<seconds>(day.time_since_epoch()).count() + hh * 3600 + mm * 60 + ss;
}

PartitionInterval every(int64_t n, TimeUnit unit) {
    return {false, n, unit};
}
PartitionInterval step(int64_t n) {
    return {true, n, TimeUnit::Day};
}
KeyRange range(int64_t lo, int64_t hi) {
    return {lo, hi};
}

struct Expected {
    std::string name, from, to;
};

void expect_partitions(const std::vector<PartitionBound>& got, const std::vector<Expected>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(got[i].name, want[i].name);
        EXPECT_EQ(got[i].from, want[i].from);
        EXPECT_EQ(got[i].to, want[i].to);
        EXPECT_FALSE(got[i].is_default);
    }
}

// ------------------------------------------------------------ key types

TEST(KeyTypeOf, SupportedAndUnsupportedOids) {
    EXPECT_EQ(key_type_of(20), KeyType::Integer);
    EXPECT_EQ(key_type_of(21), KeyType::Integer);
    EXPECT_EQ(key_type_of(23), KeyType::Integer);
    EXPECT_EQ(key_type_of(1082), KeyType::Date);
    EXPECT_EQ(key_type_of(1114), KeyType::Timestamp);
    EXPECT_EQ(key_type_of(1184), KeyType::TimestampTz);
    EXPECT_THROW(key_type_of(25), std::invalid_argument);
    EXPECT_THROW(key_type_of(1700), std::invalid_argument);
}

// ------------------------------------------------------------ integer keys

TEST(ComputePartitions, IntegerStepsWithPremake) {
    auto p =
        compute_partitions("events", KeyType::Integer, step(100000), range(1, 250000), 0, 2, false);
    expect_partitions(p, {{"events_p0", "0", "100000"},
                          {"events_p100000", "100000", "200000"},
                          {"events_p200000", "200000", "300000"},
                          {"events_p300000", "300000", "400000"},
                          {"events_p400000", "400000", "500000"}});
}

TEST(ComputePartitions, IntegerNegativeKeysAlignDown) {
    auto p = compute_partitions("t", KeyType::Integer, step(100), range(-150, 100), 0, 0, false);
    expect_partitions(p, {{"t_pm200", "-200", "-100"},
                          {"t_pm100", "-100", "0"},
                          {"t_p0", "0", "100"},
                          {"t_p100", "100", "200"}});
    // An exact multiple is the lower bound of its own partition.
    auto q = compute_partitions("t", KeyType::Integer, step(100), range(-100, -1), 0, 0, false);
    expect_partitions(q, {{"t_pm100", "-100", "0"}});
}

TEST(ComputePartitions, IntegerIgnoresNow) {
    auto p = compute_partitions("t", KeyType::Integer, step(10), range(5, 5), epoch(2025, 1, 1), 0,
                                false);
    expect_partitions(p, {{"t_p0", "0", "10"}});
}

TEST(ComputePartitions, IntegerEmptyTableStartsAtZero) {
    auto p = compute_partitions("t", KeyType::Integer, step(1000), std::nullopt, epoch(2025, 1, 1),
                                2, true);
    ASSERT_EQ(p.size(), 4u);
    expect_partitions(
        {p.begin(), p.begin() + 3},
        {{"t_p0", "0", "1000"}, {"t_p1000", "1000", "2000"}, {"t_p2000", "2000", "3000"}});
    EXPECT_TRUE(p[3].is_default);
    EXPECT_EQ(p[3].name, "t_default");
}

TEST(ComputePartitions, IntegerLimit) {
    auto ok = compute_partitions("t", KeyType::Integer, step(1), range(0, 4999), 0, 0, true);
    EXPECT_EQ(ok.size(), kMaxPartitions + 1);  // the DEFAULT partition is extra
    EXPECT_THROW(compute_partitions("t", KeyType::Integer, step(1), range(0, 5000), 0, 0, false),
                 std::runtime_error);
    EXPECT_THROW(compute_partitions("t", KeyType::Integer, step(1), range(0, 4999), 0, 1, false),
                 std::runtime_error)
        << "premake counts toward the limit";
}

// ------------------------------------------------------------ time keys

TEST(ComputePartitions, MonthTimestampTzWithPremakeAndDefault) {
    auto p = compute_partitions("events", KeyType::TimestampTz, every(1, TimeUnit::Month),
                                range(epoch(2025, 1, 15, 10, 37, 12), epoch(2025, 3, 1)),
                                epoch(2025, 3, 3, 12), 2, true);
    ASSERT_EQ(p.size(), 6u);
    expect_partitions({p.begin(), p.begin() + 5},
                      {{"events_p2025_01", "2025-01-01 00:00:00+00", "2025-02-01 00:00:00+00"},
                       {"events_p2025_02", "2025-02-01 00:00:00+00", "2025-03-01 00:00:00+00"},
                       {"events_p2025_03", "2025-03-01 00:00:00+00", "2025-04-01 00:00:00+00"},
                       {"events_p2025_04", "2025-04-01 00:00:00+00", "2025-05-01 00:00:00+00"},
                       {"events_p2025_05", "2025-05-01 00:00:00+00", "2025-06-01 00:00:00+00"}});
    EXPECT_TRUE(p[5].is_default);
    EXPECT_EQ(p[5].name, "events_default");
    EXPECT_EQ(p[5].from, "");
    EXPECT_EQ(p[5].to, "");
}

TEST(ComputePartitions, LiteralFormatsPerKeyType) {
    KeyRange r = range(epoch(2024, 2, 10), epoch(2024, 2, 10));
    int64_t now = epoch(2024, 2, 10);
    auto d = compute_partitions("t", KeyType::Date, every(1, TimeUnit::Month), r, now, 0, false);
    expect_partitions(d, {{"t_p2024_02", "2024-02-01", "2024-03-01"}});
    auto ts =
        compute_partitions("t", KeyType::Timestamp, every(1, TimeUnit::Month), r, now, 0, false);
    expect_partitions(ts, {{"t_p2024_02", "2024-02-01 00:00:00", "2024-03-01 00:00:00"}});
    auto tz =
        compute_partitions("t", KeyType::TimestampTz, every(1, TimeUnit::Month), r, now, 0, false);
    expect_partitions(tz, {{"t_p2024_02", "2024-02-01 00:00:00+00", "2024-03-01 00:00:00+00"}});
}

TEST(ComputePartitions, FifteenMinutes) {
    auto p = compute_partitions("events", KeyType::TimestampTz, every(15, TimeUnit::Minute),
                                range(epoch(2025, 1, 15, 10, 37, 12), epoch(2025, 1, 15, 10, 50)),
                                epoch(2025, 1, 15, 11, 5), 1, false);
    expect_partitions(
        p, {{"events_p2025_01_15_1030", "2025-01-15 10:30:00+00", "2025-01-15 10:45:00+00"},
            {"events_p2025_01_15_1045", "2025-01-15 10:45:00+00", "2025-01-15 11:00:00+00"},
            {"events_p2025_01_15_1100", "2025-01-15 11:00:00+00", "2025-01-15 11:15:00+00"},
            {"events_p2025_01_15_1115", "2025-01-15 11:15:00+00", "2025-01-15 11:30:00+00"}});
}

TEST(ComputePartitions, MinuteAcrossMidnight) {
    auto p = compute_partitions("t", KeyType::Timestamp, every(1, TimeUnit::Minute),
                                range(epoch(2024, 12, 31, 23, 59, 30), epoch(2025, 1, 1, 0, 0, 5)),
                                epoch(2025, 1, 1), 0, false);
    expect_partitions(p, {{"t_p2024_12_31_2359", "2024-12-31 23:59:00", "2025-01-01 00:00:00"},
                          {"t_p2025_01_01_0000", "2025-01-01 00:00:00", "2025-01-01 00:01:00"}});
}

TEST(ComputePartitions, Hour) {
    auto p = compute_partitions("t", KeyType::TimestampTz, every(1, TimeUnit::Hour),
                                range(epoch(2025, 1, 15, 22, 10), epoch(2025, 1, 15, 23, 59, 59)),
                                epoch(2025, 1, 15, 23), 1, false);
    expect_partitions(p,
                      {{"t_p2025_01_15_22", "2025-01-15 22:00:00+00", "2025-01-15 23:00:00+00"},
                       {"t_p2025_01_15_23", "2025-01-15 23:00:00+00", "2025-01-16 00:00:00+00"},
                       {"t_p2025_01_16_00", "2025-01-16 00:00:00+00", "2025-01-16 01:00:00+00"}});
}

TEST(ComputePartitions, DayDateKey) {
    auto p = compute_partitions("t", KeyType::Date, every(1, TimeUnit::Day),
                                range(epoch(2024, 2, 28), epoch(2024, 3, 1)), epoch(2024, 2, 29), 0,
                                false);
    expect_partitions(p, {{"t_p2024_02_28", "2024-02-28", "2024-02-29"},
                          {"t_p2024_02_29", "2024-02-29", "2024-03-01"},
                          {"t_p2024_03_01", "2024-03-01", "2024-03-02"}});
}

TEST(ComputePartitions, WeeksStartOnMonday) {
    // 2025-01-15 is a Wednesday; its week starts on Monday 2025-01-13.
    auto p = compute_partitions("t", KeyType::Date, every(1, TimeUnit::Week),
                                range(epoch(2025, 1, 15), epoch(2025, 1, 20)), epoch(2025, 1, 19),
                                0, false);
    expect_partitions(p, {{"t_p2025_01_13", "2025-01-13", "2025-01-20"},
                          {"t_p2025_01_20", "2025-01-20", "2025-01-27"}});
    for (const auto& b : p) {
        std::chrono::sys_days d{
            std::chrono::year{2025} / std::chrono::January /
            std::chrono::day{static_cast<unsigned>(std::stoi(b.from.substr(8)))}};
        EXPECT_EQ(std::chrono::weekday{d}, std::chrono::Monday) << b.from;
    }
    // Sunday belongs to the week that started six days earlier.
    auto s = compute_partitions("t", KeyType::TimestampTz, every(1, TimeUnit::Week),
                                range(epoch(2025, 1, 19, 23, 59), epoch(2025, 1, 19, 23, 59)),
                                epoch(2025, 1, 19), 0, false);
    expect_partitions(s, {{"t_p2025_01_13", "2025-01-13 00:00:00+00", "2025-01-20 00:00:00+00"}});
}

TEST(ComputePartitions, WeekBeforeTheEpochStartsOnMonday) {
    // 1970-01-01 was a Thursday; its week started on Monday 1969-12-29.
    auto p = compute_partitions("t", KeyType::Date, every(1, TimeUnit::Week),
                                range(epoch(1970, 1, 1), epoch(1970, 1, 1)), epoch(1970, 1, 1), 0,
                                false);
    expect_partitions(p, {{"t_p1969_12_29", "1969-12-29", "1970-01-05"}});
}

TEST(ComputePartitions, DayBeforeTheEpoch) {
    auto p = compute_partitions("t", KeyType::Timestamp, every(1, TimeUnit::Day),
                                range(epoch(1969, 12, 31, 12), epoch(1969, 12, 31, 12)),
                                epoch(1969, 12, 31, 13), 0, false);
    expect_partitions(p, {{"t_p1969_12_31", "1969-12-31 00:00:00", "1970-01-01 00:00:00"}});
}

TEST(ComputePartitions, QuartersAlignOnJanAprJulOct) {
    auto p = compute_partitions("t", KeyType::Date, every(3, TimeUnit::Month),
                                range(epoch(2024, 11, 20), epoch(2025, 2, 10)), epoch(2025, 2, 10),
                                1, false);
    expect_partitions(p, {{"t_p2024_10", "2024-10-01", "2025-01-01"},
                          {"t_p2025_01", "2025-01-01", "2025-04-01"},
                          {"t_p2025_04", "2025-04-01", "2025-07-01"}});
}

TEST(ComputePartitions, Year) {
    auto p = compute_partitions("t", KeyType::TimestampTz, every(1, TimeUnit::Year),
                                range(epoch(2023, 6, 1), epoch(2024, 12, 31, 23, 59, 59)),
                                epoch(2024, 7, 1), 1, false);
    expect_partitions(p, {{"t_p2023", "2023-01-01 00:00:00+00", "2024-01-01 00:00:00+00"},
                          {"t_p2024", "2024-01-01 00:00:00+00", "2025-01-01 00:00:00+00"},
                          {"t_p2025", "2025-01-01 00:00:00+00", "2026-01-01 00:00:00+00"}});
}

TEST(ComputePartitions, RangeEndingBeforeNowIsExtendedToNow) {
    auto p = compute_partitions("t", KeyType::Date, every(1, TimeUnit::Month),
                                range(epoch(2024, 1, 5), epoch(2024, 2, 5)), epoch(2025, 1, 10), 0,
                                false);
    ASSERT_EQ(p.size(), 13u);
    EXPECT_EQ(p.front().name, "t_p2024_01");
    EXPECT_EQ(p.back().name, "t_p2025_01");
    // Contiguous: each upper bound is the next lower bound.
    for (size_t i = 1; i < p.size(); ++i)
        EXPECT_EQ(p[i - 1].to, p[i].from);
}

TEST(ComputePartitions, RangeBeyondNowKeepsItsMax) {
    auto p = compute_partitions("t", KeyType::Date, every(1, TimeUnit::Month),
                                range(epoch(2025, 1, 5), epoch(2025, 4, 5)), epoch(2025, 1, 10), 0,
                                false);
    ASSERT_EQ(p.size(), 4u);
    EXPECT_EQ(p.back().name, "t_p2025_04");
}

TEST(ComputePartitions, EmptyTimeTableStartsAtNow) {
    auto p = compute_partitions("t", KeyType::TimestampTz, every(1, TimeUnit::Day), std::nullopt,
                                epoch(2025, 3, 10, 15, 30), 2, false);
    expect_partitions(p, {{"t_p2025_03_10", "2025-03-10 00:00:00+00", "2025-03-11 00:00:00+00"},
                          {"t_p2025_03_11", "2025-03-11 00:00:00+00", "2025-03-12 00:00:00+00"},
                          {"t_p2025_03_12", "2025-03-12 00:00:00+00", "2025-03-13 00:00:00+00"}});
}

TEST(ComputePartitions, TimeLimit) {
    // Daily partitions from 1970 to 2025: about 20,000.
    try {
        compute_partitions("t", KeyType::Date, every(1, TimeUnit::Day), range(0, epoch(2025, 1, 1)),
                           epoch(2025, 1, 1), 4, false);
        ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("limit of 5000"), std::string::npos) << msg;
        EXPECT_NE(msg.find("[partitioning] interval"), std::string::npos) << msg;
    }
    // Exactly 5000 daily partitions are allowed.
    int64_t lo = epoch(2000, 1, 1);
    auto p = compute_partitions("t", KeyType::Date, every(1, TimeUnit::Day),
                                range(lo, lo + 4999 * 86400LL), lo, 0, false);
    EXPECT_EQ(p.size(), kMaxPartitions);
    EXPECT_THROW(compute_partitions("t", KeyType::Date, every(1, TimeUnit::Day),
                                    range(lo, lo + 5000 * 86400LL), lo, 0, false),
                 std::runtime_error);
}

TEST(ComputePartitions, LongTableNamesAreShortenedAndStayDistinct) {
    std::string table(60, 'e');
    auto p = compute_partitions(table, KeyType::TimestampTz, every(15, TimeUnit::Minute),
                                range(epoch(2025, 1, 15, 10), epoch(2025, 1, 15, 11)),
                                epoch(2025, 1, 15, 11), 4, true);
    ASSERT_EQ(p.size(), 10u);
    std::set<std::string> names;
    for (const auto& b : p) {
        EXPECT_LE(b.name.size(), kMaxIdentifierBytes) << b.name;
        EXPECT_EQ(b.name.substr(0, 20), std::string(20, 'e'));
        names.insert(b.name);
    }
    EXPECT_EQ(names.size(), p.size());
    EXPECT_TRUE(p[0].name.ends_with("_p2025_01_15_1000")) << p[0].name;
    EXPECT_TRUE(p.back().name.ends_with("_default")) << p.back().name;
}

// ------------------------------------------------------------ plan_shadow

ColumnInfo col(int attnum, std::string name, std::string type, uint32_t oid,
               bool not_null = false) {
    ColumnInfo c;
    c.attnum = attnum;
    c.name = std::move(name);
    c.type = std::move(type);
    c.type_oid = oid;
    c.not_null = not_null;
    return c;
}

IndexInfo idx(std::string name, std::string using_clause, std::vector<std::string> keys,
              bool unique, bool primary = false) {
    IndexInfo i;
    i.name = std::move(name);
    i.using_clause = std::move(using_clause);
    i.key_columns = std::move(keys);
    i.unique = unique;
    i.primary = primary;
    i.has_expressions = i.key_columns.empty();
    return i;
}

TableInfo events_table() {
    TableInfo t;
    t.name = {"public", "events"};
    auto id = col(1, "id", "bigint", 20, true);
    id.identity = 'a';
    auto created = col(2, "created_at", "timestamp with time zone", 1184);
    created.default_expr = "now()";
    auto name = col(3, "name", "text", 25, true);
    name.collation = R"("pg_catalog"."C")";
    auto total = col(4, "total", "numeric(10,2)", 1700);
    total.default_expr = "0";
    auto x2 = col(5, "total_x2", "numeric", 1700);
    x2.generated = 's';
    x2.generation_expr = "(total * (2)::numeric)";
    auto ref = col(6, "ref", "integer", 23, true);
    ref.identity = 'd';
    t.columns = {id, created, name, total, x2, ref};
    t.indexes = {
        idx("events_pkey", "btree (id)", {"id"}, true, true),
        idx("events_name_key", "btree (name) INCLUDE (total) WHERE (total > (0)::numeric)",
            {"name"}, true),
        idx("events_lower_name_idx", "btree (lower(name))", {}, true),
        idx("events_created_at_idx", "btree (created_at DESC)", {"created_at"}, false),
        idx("events_id_created_key", "btree (id, created_at)", {"id", "created_at"}, true),
    };
    return t;
}

JobConfig events_config() {
    JobConfig cfg;
    cfg.table = {"public", "events"};
    cfg.job_name = "events";
    cfg.column = "created_at";
    cfg.interval = every(1, TimeUnit::Month);
    return cfg;
}

std::vector<PartitionBound> two_months() {
    return compute_partitions("events", KeyType::TimestampTz, every(1, TimeUnit::Month),
                              range(epoch(2025, 1, 2), epoch(2025, 2, 2)), epoch(2025, 2, 2), 0,
                              true);
}

TEST(PlanShadow, CreateTableColumnsAndPartitions) {
    JobConfig cfg = events_config();
    ShadowPlan plan = plan_shadow(events_table(), cfg, JobNames::from(cfg, "appdb"), two_months());
    ASSERT_EQ(plan.create_sql.size(), 4u);
    EXPECT_EQ(plan.create_sql[0],
              "CREATE TABLE \"public\".\"events__pgshift\" (\n"
              "    \"id\" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,\n"
              "    \"created_at\" timestamp with time zone DEFAULT now() NOT NULL,\n"
              "    \"name\" text COLLATE \"pg_catalog\".\"C\" NOT NULL,\n"
              "    \"total\" numeric(10,2) DEFAULT 0,\n"
              "    \"total_x2\" numeric GENERATED ALWAYS AS ((total * (2)::numeric)) STORED,\n"
              "    \"ref\" integer GENERATED BY DEFAULT AS IDENTITY NOT NULL\n"
              ") PARTITION BY RANGE (\"created_at\")");
    EXPECT_EQ(plan.create_sql[1],
              R"(CREATE TABLE "public"."events_p2025_01" PARTITION OF "public"."events__pgshift")"
              R"( FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00'))");
    EXPECT_EQ(plan.create_sql[2],
              R"(CREATE TABLE "public"."events_p2025_02" PARTITION OF "public"."events__pgshift")"
              R"( FOR VALUES FROM ('2025-02-01 00:00:00+00') TO ('2025-03-01 00:00:00+00'))");
    EXPECT_EQ(
        plan.create_sql[3],
        R"(CREATE TABLE "public"."events_default" PARTITION OF "public"."events__pgshift" DEFAULT)");
    EXPECT_EQ(plan.partitions.size(), 3u);
    EXPECT_EQ(plan.copy_columns,
              (std::vector<std::string>{"id", "created_at", "name", "total", "ref"}));
    // ALWAYS is BY DEFAULT on the shadow until the cutover restores it.
    EXPECT_EQ(plan.identity_always_columns, (std::vector<std::string>{"id"}));
}

TEST(PlanShadow, PrimaryKeyAndIndexes) {
    JobConfig cfg = events_config();
    ShadowPlan plan = plan_shadow(events_table(), cfg, JobNames::from(cfg, "appdb"), two_months());
    EXPECT_EQ(plan.key_columns, (std::vector<std::string>{"id", "created_at"}));
    EXPECT_EQ(
        plan.index_sql,
        (std::vector<std::string>{
            R"(ALTER TABLE "public"."events__pgshift" ADD CONSTRAINT "events_pkey__pgshift" PRIMARY KEY ("id", "created_at"))",
            R"(CREATE UNIQUE INDEX "events_name_key__pgshift" ON "public"."events__pgshift" USING btree (name, "created_at") INCLUDE (total) WHERE (total > (0)::numeric))",
            R"(CREATE UNIQUE INDEX "events_lower_name_idx__pgshift" ON "public"."events__pgshift" USING btree (lower(name), "created_at"))",
            R"(CREATE INDEX "events_created_at_idx__pgshift" ON "public"."events__pgshift" USING btree (created_at DESC))",
            R"(CREATE UNIQUE INDEX "events_id_created_key__pgshift" ON "public"."events__pgshift" USING btree (id, created_at))",
        }));
    ASSERT_EQ(plan.index_renames.size(), 5u);
    std::vector<std::string> originals, shadows;
    for (const auto& r : plan.index_renames) {
        originals.push_back(r.original_name);
        shadows.push_back(r.shadow_name);
    }
    EXPECT_EQ(originals,
              (std::vector<std::string>{"events_pkey", "events_name_key", "events_lower_name_idx",
                                        "events_created_at_idx", "events_id_created_key"}));
    EXPECT_EQ(shadows[0], "events_pkey__pgshift");
    EXPECT_EQ(shadows[4], "events_id_created_key__pgshift");
}

TEST(PlanShadow, NotesForWidenedUniqueness) {
    JobConfig cfg = events_config();
    ShadowPlan plan = plan_shadow(events_table(), cfg, JobNames::from(cfg, "appdb"), two_months());
    ASSERT_EQ(plan.notes.size(), 3u);
    EXPECT_EQ(
        plan.notes[0],
        R"(primary key events_pkey ("id") is widened to ("id", "created_at"): uniqueness now holds per partition key value)");
    EXPECT_EQ(
        plan.notes[1],
        R"(unique index events_name_key is widened with "created_at": uniqueness now holds per partition key value)");
    // PostgreSQL accepts an expression key beside the plain partition column.
    EXPECT_EQ(
        plan.notes[2],
        R"(unique expression index events_lower_name_idx is widened with "created_at": uniqueness now holds per partition key value)");
}

TEST(PlanShadow, PrimaryKeyAlreadyContainingPartitionColumn) {
    TableInfo t = events_table();
    t.indexes = {idx("events_pkey", "btree (created_at, id)", {"created_at", "id"}, true, true)};
    JobConfig cfg = events_config();
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), two_months());
    EXPECT_EQ(plan.key_columns, (std::vector<std::string>{"created_at", "id"}));
    EXPECT_TRUE(plan.notes.empty());
    ASSERT_EQ(plan.index_sql.size(), 1u);
    EXPECT_EQ(
        plan.index_sql[0],
        R"(ALTER TABLE "public"."events__pgshift" ADD CONSTRAINT "events_pkey__pgshift" PRIMARY KEY ("created_at", "id"))");
}

TEST(PlanShadow, WithoutPrimaryKeyPartitionColumnKeepsNullability) {
    TableInfo t = events_table();
    t.indexes = {idx("events_created_at_idx", "btree (created_at)", {"created_at"}, false)};
    JobConfig cfg = events_config();
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), two_months());
    EXPECT_NE(
        plan.create_sql[0].find("    \"created_at\" timestamp with time zone DEFAULT now(),\n"),
        std::string::npos)
        << plan.create_sql[0];
    EXPECT_TRUE(plan.key_columns.empty());
    EXPECT_TRUE(plan.notes.empty());
    ASSERT_EQ(plan.index_sql.size(), 1u);
    EXPECT_EQ(plan.index_sql[0].rfind("CREATE INDEX", 0), 0u);
}

TEST(PlanShadow, ReplicaIdentityFullIsCarriedToParentAndPartitions) {
    TableInfo t = events_table();
    t.replident = 'f';
    JobConfig cfg = events_config();
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), two_months());
    // REPLICA IDENTITY never recurses to partitions, and WAL is logged per
    // partition, so each one needs it.
    std::vector<std::string> tail(plan.index_sql.end() - 4, plan.index_sql.end());
    EXPECT_EQ(tail, (std::vector<std::string>{
                        R"(ALTER TABLE "public"."events__pgshift" REPLICA IDENTITY FULL)",
                        R"(ALTER TABLE "public"."events_p2025_01" REPLICA IDENTITY FULL)",
                        R"(ALTER TABLE "public"."events_p2025_02" REPLICA IDENTITY FULL)",
                        R"(ALTER TABLE "public"."events_default" REPLICA IDENTITY FULL)",
                    }));

    t.replident = 'd';
    ShadowPlan plain = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), two_months());
    for (const auto& sql : plain.index_sql)
        EXPECT_EQ(sql.find("REPLICA IDENTITY"), std::string::npos) << sql;
}

TEST(PlanShadow, HostileIdentifiers) {
    TableInfo t;
    t.name = {"My Schema", "user"};
    auto user = col(1, "user", "text", 25, true);
    auto ts = col(2, "timestamp", "timestamp without time zone", 1114);
    auto weird = col(3, "Weird \"Col\"", "integer", 23);
    auto spaced = col(4, "a)b c", "\"My Schema\".\"Mood\"", 70000);
    spaced.default_expr = "'ok'::\"My Schema\".\"Mood\"";
    t.columns = {user, ts, weird, spaced};
    t.indexes = {
        idx("user_pkey", "btree (\"user\")", {"user"}, true, true),
        idx("Weird Idx", "btree (\"Weird \"\"Col\"\"\")", {"Weird \"Col\""}, true),
        idx("paren_idx", "btree (\"a)b c\") WHERE (\"Weird \"\"Col\"\"\" > 0)", {"a)b c"}, true),
    };
    JobConfig cfg;
    cfg.table = t.name;
    cfg.job_name = "user";
    cfg.column = "timestamp";
    cfg.interval = every(1, TimeUnit::Year);
    auto parts = compute_partitions("user", KeyType::Timestamp, cfg.interval,
                                    range(epoch(2025, 5, 1), epoch(2025, 5, 1)), epoch(2025, 5, 1),
                                    0, false);
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), parts);
    EXPECT_EQ(plan.create_sql[0],
              "CREATE TABLE \"My Schema\".\"user__pgshift\" (\n"
              "    \"user\" text NOT NULL,\n"
              "    \"timestamp\" timestamp without time zone NOT NULL,\n"
              "    \"Weird \"\"Col\"\"\" integer,\n"
              "    \"a)b c\" \"My Schema\".\"Mood\" DEFAULT 'ok'::\"My Schema\".\"Mood\"\n"
              ") PARTITION BY RANGE (\"timestamp\")");
    ASSERT_EQ(plan.create_sql.size(), 2u);
    EXPECT_EQ(plan.create_sql[1],
              R"(CREATE TABLE "My Schema"."user_p2025" PARTITION OF "My Schema"."user__pgshift")"
              R"( FOR VALUES FROM ('2025-01-01 00:00:00') TO ('2026-01-01 00:00:00'))");
    EXPECT_EQ(
        plan.index_sql,
        (std::vector<std::string>{
            R"(ALTER TABLE "My Schema"."user__pgshift" ADD CONSTRAINT "user_pkey__pgshift" PRIMARY KEY ("user", "timestamp"))",
            R"(CREATE UNIQUE INDEX "Weird Idx__pgshift" ON "My Schema"."user__pgshift" USING btree ("Weird ""Col""", "timestamp"))",
            R"(CREATE UNIQUE INDEX "paren_idx__pgshift" ON "My Schema"."user__pgshift" USING btree ("a)b c", "timestamp") WHERE ("Weird ""Col""" > 0))",
        }));
    EXPECT_EQ(plan.copy_columns,
              (std::vector<std::string>{"user", "timestamp", "Weird \"Col\"", "a)b c"}));
    EXPECT_EQ(plan.key_columns, (std::vector<std::string>{"user", "timestamp"}));
}

TEST(PlanShadow, PartitionColumnWithQuoteIsQuotedInWidenedIndex) {
    TableInfo t;
    t.name = {"public", "t"};
    t.columns = {col(1, "id", "integer", 23, true), col(2, "K\"ey", "integer", 23, true)};
    t.indexes = {idx("t_id_key", "btree (id)", {"id"}, true)};
    JobConfig cfg;
    cfg.table = t.name;
    cfg.job_name = "t";
    cfg.column = "K\"ey";
    cfg.interval = step(10);
    auto parts = compute_partitions("t", KeyType::Integer, cfg.interval, range(0, 5), 0, 0, false);
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), parts);
    EXPECT_TRUE(plan.create_sql[0].ends_with(R"() PARTITION BY RANGE ("K""ey"))"));
    EXPECT_EQ(
        plan.create_sql[1],
        R"(CREATE TABLE "public"."t_p0" PARTITION OF "public"."t__pgshift" FOR VALUES FROM ('0') TO ('10'))");
    ASSERT_EQ(plan.index_sql.size(), 1u);
    EXPECT_EQ(
        plan.index_sql[0],
        R"(CREATE UNIQUE INDEX "t_id_key__pgshift" ON "public"."t__pgshift" USING btree (id, "K""ey"))");
}

TEST(PlanShadow, LongIndexNamesAreShortened) {
    TableInfo t = events_table();
    std::string long_name(63, 'x');
    t.indexes = {idx(long_name, "btree (created_at)", {"created_at"}, false)};
    JobConfig cfg = events_config();
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), two_months());
    ASSERT_EQ(plan.index_renames.size(), 1u);
    EXPECT_LE(plan.index_renames[0].shadow_name.size(), kMaxIdentifierBytes);
    EXPECT_NE(plan.index_renames[0].shadow_name, long_name);
    EXPECT_EQ(plan.index_renames[0].original_name, long_name);
    EXPECT_NE(plan.index_sql[0].find("\"" + plan.index_renames[0].shadow_name + "\""),
              std::string::npos);
}

TEST(PlanShadow, UnparsableUniqueIndexDefinitionThrows) {
    TableInfo t = events_table();
    t.indexes = {idx("bad", "btree name", {"name"}, true)};
    JobConfig cfg = events_config();
    EXPECT_THROW(plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), two_months()),
                 std::runtime_error);
}

}  // namespace
}  // namespace pgshift

namespace pgshift {
namespace {

// ------------------------------------------------------------ two levels

JobConfig two_level_config(const std::string& sub_strategy, const std::string& sub_column) {
    JobConfig cfg = events_config();
    cfg.sub_strategy = sub_strategy;
    cfg.sub_column = sub_column;
    cfg.sub_modulus = 3;
    cfg.sub_interval = every(1, TimeUnit::Month);
    return cfg;
}

TEST(TwoLevels, RangeThenHashNamesAndDdl) {
    auto months = compute_partitions("events", KeyType::TimestampTz, every(1, TimeUnit::Month),
                                     range(epoch(2025, 1, 2), epoch(2025, 1, 3)), epoch(2025, 1, 3),
                                     0, false);
    auto parts = with_subpartitions(months, compute_hash_partitions("", 3));
    ASSERT_EQ(parts.size(), 1u);
    ASSERT_EQ(parts[0].subpartitions.size(), 3u);
    EXPECT_EQ(parts[0].name, "events_p2025_01");
    EXPECT_EQ(parts[0].subpartitions[2].name, "events_p2025_01_h2");
    EXPECT_EQ(all_partitions(parts).size(), 4u);
    EXPECT_EQ(leaf_partitions(parts).size(), 3u);

    JobConfig cfg = two_level_config("hash", "ref");
    TableInfo t = events_table();
    t.reloptions = {"fillfactor=80"};
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), parts);
    // The parent partition is partitioned and holds no storage parameters.
    EXPECT_EQ(plan.create_sql[1],
              R"(CREATE TABLE "public"."events_p2025_01" PARTITION OF "public"."events__pgshift")"
              R"( FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00'))"
              R"( PARTITION BY HASH ("ref"))");
    EXPECT_EQ(
        plan.create_sql[2],
        R"(CREATE TABLE "public"."events_p2025_01_h0" PARTITION OF "public"."events_p2025_01")"
        R"( FOR VALUES WITH (MODULUS 3, REMAINDER 0) WITH (fillfactor=80))");
    // Every unique key takes both partition columns.
    EXPECT_EQ(plan.key_columns, (std::vector<std::string>{"id", "created_at", "ref"}));
    EXPECT_NE(
        std::find(
            plan.index_sql.begin(), plan.index_sql.end(),
            R"(CREATE UNIQUE INDEX "events_name_key__pgshift" ON "public"."events__pgshift")"
            R"( USING btree (name, "created_at", "ref") INCLUDE (total) WHERE (total > (0)::numeric))"),
        plan.index_sql.end());
    EXPECT_NE(
        std::find(
            plan.notes.begin(), plan.notes.end(),
            R"(unique index events_id_created_key is widened with "ref": uniqueness now holds per partition key value)"),
        plan.notes.end());
}

TEST(TwoLevels, ListThenRangeNamesDefaultsAndNotNull) {
    auto lists = compute_list_partitions("events", {std::string("EU"), std::string("US")});
    auto days =
        compute_partitions("", KeyType::TimestampTz, every(1, TimeUnit::Month),
                           range(epoch(2025, 1, 2), epoch(2025, 2, 2)), epoch(2025, 2, 2), 0, true);
    auto parts = with_subpartitions(lists, days);
    ASSERT_EQ(parts.size(), 3u);
    std::vector<std::string> names;
    for (const auto* p : leaf_partitions(parts))
        names.push_back(p->name);
    EXPECT_EQ(names,
              (std::vector<std::string>{
                  "events_l_eu_p2025_01", "events_l_eu_p2025_02", "events_l_eu_default",
                  "events_l_us_p2025_01", "events_l_us_p2025_02", "events_l_us_default",
                  "events_default_p2025_01", "events_default_p2025_02", "events_default_default"}));

    JobConfig cfg = two_level_config("range", "created_at");
    cfg.strategy = "list";
    cfg.column = "name";
    ShadowPlan plan = plan_shadow(events_table(), cfg, JobNames::from(cfg, "appdb"), parts);
    EXPECT_NE(
        plan.create_sql[0].find(R"("created_at" timestamp with time zone DEFAULT now() NOT NULL)"),
        std::string::npos);
    EXPECT_NE(plan.create_sql[0].find(R"() PARTITION BY LIST ("name"))"), std::string::npos);
    EXPECT_NE(
        std::find(
            plan.create_sql.begin(), plan.create_sql.end(),
            R"(CREATE TABLE "public"."events_default" PARTITION OF "public"."events__pgshift")"
            R"( DEFAULT PARTITION BY RANGE ("created_at"))"),
        plan.create_sql.end());
    EXPECT_NE(
        std::find(
            plan.create_sql.begin(), plan.create_sql.end(),
            R"(CREATE TABLE "public"."events_l_us_default" PARTITION OF "public"."events_l_us" DEFAULT)"),
        plan.create_sql.end());
}

TEST(TwoLevels, ForeignKeysOnLeavesOwnerAndIdentityOnEveryLevel) {
    auto parts =
        with_subpartitions(compute_hash_partitions("events", 2), compute_hash_partitions("", 2));
    JobConfig cfg = two_level_config("hash", "ref");
    cfg.strategy = "hash";
    TableInfo t = events_table();
    t.owner = "app";
    t.replident = 'f';
    ConstraintInfo fk{"events_ref_fk",
                      'f',
                      "",
                      true,
                      false,
                      std::nullopt,
                      {"public", "refs"},
                      false,
                      {"ref"},
                      {"id"},
                      " ON UPDATE NO ACTION ON DELETE NO ACTION"};
    t.constraints = {fk};
    ShadowPlan plan = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), parts);
    auto count = [](const std::vector<std::string>& v, const std::string& needle) {
        return std::count_if(v.begin(), v.end(), [&](const std::string& s) {
            return s.find(needle) != std::string::npos;
        });
    };
    // NOT VALID foreign keys only on the four leaves (a partitioned table refuses them).
    EXPECT_EQ(count(plan.swap_sql, "ADD CONSTRAINT \"events_ref_fk\""), 4);
    EXPECT_EQ(count(plan.swap_sql, "\"events_h0\" ADD CONSTRAINT"), 0);
    EXPECT_EQ(count(plan.swap_sql, "\"events_h0_h1\" ADD CONSTRAINT"), 1);
    // Owner and REPLICA IDENTITY FULL on the root and all six partitions.
    EXPECT_EQ(count(plan.swap_sql, " OWNER TO app"), 7);
    EXPECT_EQ(count(plan.index_sql, " REPLICA IDENTITY FULL"), 7);
}

TEST(TwoLevels, TooManyLeavesIsRefused) {
    auto parents = compute_hash_partitions("t", 100);
    EXPECT_THROW(with_subpartitions(parents, compute_hash_partitions("", 51)), std::runtime_error);
    EXPECT_NO_THROW(with_subpartitions(parents, compute_hash_partitions("", 50)));
}

TEST(TwoLevels, PartitionCreateSqlForMaintain) {
    PartitionBound p{"events_p2025_03", "2025-03-01 00:00:00+00", "2025-04-01 00:00:00+00", false};
    p = with_subpartitions({p}, compute_hash_partitions("", 2))[0];
    auto sql = partition_create_sql(p, {"app", "events"}, R"(HASH ("ref"))", {"fillfactor=70"});
    ASSERT_EQ(sql.size(), 3u);
    EXPECT_EQ(
        sql[0],
        R"(CREATE TABLE "app"."events_p2025_03" PARTITION OF "app"."events" FOR VALUES FROM ('2025-03-01 00:00:00+00') TO ('2025-04-01 00:00:00+00') PARTITION BY HASH ("ref"))");
    EXPECT_EQ(
        sql[2],
        R"(CREATE TABLE "app"."events_p2025_03_h1" PARTITION OF "app"."events_p2025_03" FOR VALUES WITH (MODULUS 2, REMAINDER 1) WITH (fillfactor=70))");
}

}  // namespace
}  // namespace pgshift
