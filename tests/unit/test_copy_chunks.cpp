#include "copy_chunks.h"

#include <gtest/gtest.h>

#include "config.h"
#include "job_names.h"
#include "shadow_ddl.h"

namespace pgshift {
namespace {

std::string lit(std::string_view v) {
    return "'" + std::string(v) + "'";
}

using Key = std::vector<std::string>;

// ------------------------------------------------------------ chunk plans

TEST(ChunkCount, RowsPerChunkWithAFloorPerWorkerAndACap) {
    EXPECT_EQ(chunk_count(0, 250000, 4), 1);
    EXPECT_EQ(chunk_count(-1, 250000, 4), 1);  // reltuples -1: never analyzed
    EXPECT_EQ(chunk_count(5'000'000, 250'000, 2), 20);
    EXPECT_EQ(chunk_count(5'000'001, 250'000, 2), 21);
    EXPECT_EQ(chunk_count(1000, 250'000, 4), 8);  // small table: still two per worker
    EXPECT_EQ(chunk_count(int64_t{1} << 40, 1000, 2), 10000);
}

TEST(KeyChunks, OpenEndsCoverEveryKey) {
    auto chunks = key_chunks({{"100"}, {"200"}});
    ASSERT_EQ(chunks.size(), 3u);
    EXPECT_EQ(chunks[0], (CopyChunk{0, std::nullopt, Key{"100"}}));
    EXPECT_EQ(chunks[1], (CopyChunk{1, Key{"100"}, Key{"200"}}));
    EXPECT_EQ(chunks[2], (CopyChunk{2, Key{"200"}, std::nullopt}));
}

TEST(KeyChunks, NoBoundariesIsOneUnboundedChunk) {
    auto chunks = key_chunks({});
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_FALSE(chunks[0].lower);
    EXPECT_FALSE(chunks[0].upper);
    EXPECT_EQ(chunk_predicate(ChunkKind::Key, {"\"id\""}, chunks[0], lit), "true");
}

TEST(MergeCommitted, RunsOfConsecutiveChunksBecomeOneRange) {
    auto chunks = key_chunks({{"10"}, {"20"}, {"30"}, {"40"}, {"50"}});  // 6 chunks
    auto merged = merge_committed(chunks, {4, 0, 1, 2, 5}, 100);
    ASSERT_EQ(merged.size(), 2u);
    EXPECT_EQ(merged[0], (CopyChunk{0, std::nullopt, Key{"30"}}));
    EXPECT_EQ(merged[1], (CopyChunk{4, Key{"40"}, std::nullopt}));
    auto capped = merge_committed(chunks, {0, 1, 2, 3, 4, 5}, 4);
    ASSERT_EQ(capped.size(), 2u);
    EXPECT_EQ(capped[0], (CopyChunk{0, std::nullopt, Key{"40"}}));
    EXPECT_EQ(capped[1], (CopyChunk{4, Key{"40"}, std::nullopt}));
    EXPECT_TRUE(merge_committed(chunks, {}, 4).empty());
}

TEST(CtidChunks, BlockRangesWithAnOpenLastChunk) {
    auto chunks = ctid_chunks(250, 100);
    ASSERT_EQ(chunks.size(), 3u);
    EXPECT_EQ(chunks[0], (CopyChunk{0, Key{"0"}, Key{"100"}}));
    EXPECT_EQ(chunks[1], (CopyChunk{1, Key{"100"}, Key{"200"}}));
    EXPECT_EQ(chunks[2], (CopyChunk{2, Key{"200"}, std::nullopt}));
    EXPECT_EQ(chunk_predicate(ChunkKind::Ctid, {}, chunks[1], lit),
              "ctid >= '(100,0)'::tid AND ctid < '(200,0)'::tid");
    EXPECT_EQ(chunk_predicate(ChunkKind::Ctid, {}, chunks[2], lit), "ctid >= '(200,0)'::tid");
}

TEST(CtidChunks, EmptyHeapIsOneOpenChunk) {
    auto chunks = ctid_chunks(0, 100);
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunk_predicate(ChunkKind::Ctid, {}, chunks[0], lit), "ctid >= '(0,0)'::tid");
}

TEST(ChunkPredicate, SingleAndCompositeKeys) {
    CopyChunk c{1, Key{"10"}, Key{"20"}};
    EXPECT_EQ(chunk_predicate(ChunkKind::Key, {"\"id\""}, c, lit),
              "\"id\" >= '10' AND \"id\" < '20'");
    CopyChunk composite{2, Key{"a", "1"}, std::nullopt};
    EXPECT_EQ(chunk_predicate(ChunkKind::Key, {"t.\"k\"", "t.\"n\""}, composite, lit),
              "(t.\"k\", t.\"n\") >= ('a', '1')");
    CopyChunk first{0, std::nullopt, Key{"b", "2"}};
    EXPECT_EQ(chunk_predicate(ChunkKind::Key, {"\"k\"", "\"n\""}, first, lit),
              "(\"k\", \"n\") < ('b', '2')");
}

TEST(ChunkPredicate, ValuesGoThroughTheQuoter) {
    CopyChunk c{0, Key{"O'Brien"}, std::nullopt};
    auto quote = [](std::string_view v) {
        std::string out = "'";
        for (char ch : v)
            out += ch == '\'' ? std::string("''") : std::string(1, ch);
        return out + "'";
    };
    EXPECT_EQ(chunk_predicate(ChunkKind::Key, {"\"name\""}, c, quote), "\"name\" >= 'O''Brien'");
}

// ------------------------------------------------------------ per-partition index builds

TEST(LeafIndexBuild, PrimaryKeyUniqueConstraintAndIndexes) {
    const std::string shadow = R"("public"."events__pgshift")";
    auto pk = leaf_index_build(
        R"(ALTER TABLE "public"."events__pgshift" ADD CONSTRAINT "events_pkey__pgshift" PRIMARY KEY ("id", "created_at"))",
        shadow, "public", "events_p2025_01", 0);
    ASSERT_TRUE(pk);
    EXPECT_TRUE(pk->constraint);
    EXPECT_EQ(pk->leaf_index_name, "events_p2025_01_pkey");
    EXPECT_EQ(
        pk->parallel_sql,
        R"(ALTER TABLE "public"."events_p2025_01" ADD CONSTRAINT "events_p2025_01_pkey" PRIMARY KEY ("id", "created_at"))");

    auto uq = leaf_index_build(
        R"(ALTER TABLE "public"."events__pgshift" ADD CONSTRAINT "a""b" UNIQUE (name, created_at) INCLUDE (total))",
        shadow, "public", "events_p2025_01", 3);
    ASSERT_TRUE(uq);
    EXPECT_EQ(
        uq->parallel_sql,
        R"(ALTER TABLE "public"."events_p2025_01" ADD CONSTRAINT "events_p2025_01_key3" UNIQUE (name, created_at) INCLUDE (total))");

    auto ix = leaf_index_build(
        R"(CREATE UNIQUE INDEX "events_lower_name_idx__pgshift" ON "public"."events__pgshift" USING btree (lower(name), created_at) WHERE (total > (0)::numeric))",
        shadow, "app", "ev\"x", 2);
    ASSERT_TRUE(ix);
    EXPECT_FALSE(ix->constraint);
    EXPECT_EQ(
        ix->parallel_sql,
        R"(CREATE UNIQUE INDEX IF NOT EXISTS "ev""x_idx2" ON "app"."ev""x" USING btree (lower(name), created_at) WHERE (total > (0)::numeric))");
}

TEST(LeafIndexBuild, OtherStatementsStayOnThePartitionedTable) {
    const std::string shadow = R"("public"."events__pgshift")";
    for (
        const char* sql : {
            R"(ALTER TABLE "public"."events__pgshift" REPLICA IDENTITY FULL)",
            R"(ALTER TABLE "public"."events__pgshift" ADD CONSTRAINT "c" CHECK ((total > 0)) NOT VALID)",
            R"(COMMENT ON INDEX "public"."x" IS 'y')",
            R"(CREATE INDEX "x" ON "public"."other" USING btree (a))",
        }) {
        EXPECT_FALSE(leaf_index_build(sql, shadow, "public", "events_p2025_01", 1)) << sql;
    }
}

TEST(LeafIndexBuild, NamesFitIn63BytesAtACharacterBoundary) {
    std::string leaf(60, 'a');
    EXPECT_EQ(leaf_index_name(leaf, "pkey"), std::string(58, 'a') + "_pkey");
    std::string utf8 = std::string(57, 'a') + "\xc3\xa9" + "bb";  // é at bytes 57-58
    EXPECT_EQ(leaf_index_name(utf8, "pkey"), std::string(57, 'a') + "_pkey");
}

ColumnInfo column(int attnum, const std::string& name, const std::string& type, uint32_t oid) {
    ColumnInfo c;
    c.attnum = attnum;
    c.name = name;
    c.type = type;
    c.type_oid = oid;
    c.not_null = true;
    return c;
}

TEST(LeafIndexBuild, RecognisesEveryIndexOfARealShadowPlan) {
    TableInfo t;
    t.name = {"public", "events"};
    t.columns = {column(1, "id", "bigint", 20), column(2, "created_at", "timestamptz", 1184),
                 column(3, "tenant_id", "integer", 23)};
    IndexInfo pk;
    pk.name = "events_pkey";
    pk.primary = pk.unique = true;
    pk.using_clause = "btree (id)";
    pk.key_columns = {"id"};
    pk.constraint_name = "events_pkey";
    pk.constraint_def = "PRIMARY KEY (id)";
    IndexInfo tenant;
    tenant.name = "events_tenant_id_created_at_idx";
    tenant.using_clause = "btree (tenant_id, created_at)";
    tenant.key_columns = {"tenant_id", "created_at"};
    t.indexes = {pk, tenant};
    JobConfig cfg;
    cfg.table = t.name;
    cfg.job_name = "events";
    cfg.column = "created_at";
    auto names = JobNames::from(cfg, "db");
    PartitionBound p{"events_p2025_01", "2025-01-01", "2025-02-01"};
    ShadowPlan plan = plan_shadow(t, cfg, names, {p});
    int builds = 0;
    for (size_t i = 0; i < plan.index_sql.size(); ++i)
        builds +=
            leaf_index_build(plan.index_sql[i], names.shadow.quoted(), "public", p.name, i) ? 1 : 0;
    EXPECT_EQ(builds, 2);
}

// ------------------------------------------------------------ progress

TEST(Progress, ShortCountsAndDurations) {
    EXPECT_EQ(short_count(999), "999");
    EXPECT_EQ(short_count(9999), "9999");
    EXPECT_EQ(short_count(350'000), "350k");
    EXPECT_EQ(short_count(2'345'678), "2.3M");
    EXPECT_EQ(short_count(5'000'000'000), "5.0G");
    EXPECT_EQ(short_duration(0.4), "0s");
    EXPECT_EQ(short_duration(12), "12s");
    EXPECT_EQ(short_duration(185), "3m05s");
    EXPECT_EQ(short_duration(3720), "1h02m");
}

TEST(Progress, LineWithRateEtaSnapshotAndPause) {
    CopyStats s;
    s.rows = 2'300'000;
    s.rows_estimated = 5'000'000;
    s.bytes = 612LL << 20;
    s.rows_per_s = 410'000;
    s.chunks_done = 9;
    s.chunks_total = 20;
    s.snapshot_age_s = 12;
    s.xmin_age = 35;
    EXPECT_EQ(progress_line(s),
              "copy 46% 2.3M/~5.0M rows, 612 MB, 410k rows/s, ETA 7s, chunks 9/20, snapshot 12s "
              "old, xmin age 35");
    s.paused = "slot x retains 900 MB of WAL, above copy.pause_retained_wal = 512 MB";
    EXPECT_EQ(progress_line(s),
              "copy 46% 2.3M/~5.0M rows, 612 MB, 410k rows/s, ETA ?, chunks 9/20, snapshot 12s "
              "old, xmin age 35, PAUSED: slot x retains 900 MB of WAL, above "
              "copy.pause_retained_wal = 512 MB");
}

TEST(Progress, EtaUnknownWithoutRateOrEstimate) {
    CopyStats s;
    s.rows = 10;
    EXPECT_FALSE(eta_seconds(s));
    s.rows_per_s = 5;
    EXPECT_FALSE(eta_seconds(s));
    s.rows_estimated = 8;  // more rows than estimated: nothing left
    EXPECT_EQ(*eta_seconds(s), 0);
}

TEST(Progress, Bar) {
    EXPECT_EQ(progress_bar(0, 10), "[..........]");
    EXPECT_EQ(progress_bar(0.46, 10), "[#####.....]");
    EXPECT_EQ(progress_bar(1.7, 4), "[####]");
}

TEST(Progress, JsonRoundTrip) {
    CopyStats s;
    s.rows = 7;
    s.rows_estimated = 9;
    s.bytes = 1024;
    s.elapsed_s = 1.5;
    s.rows_per_s = 4.5;
    s.chunks_done = 1;
    s.chunks_total = 3;
    s.snapshot_age_s = 2;
    s.xmin_age = 11;
    s.paused = "why";
    CopyStats back = copy_stats_from_json(copy_stats_json(s));
    EXPECT_EQ(progress_line(back), progress_line(s));
    EXPECT_EQ(back.elapsed_s, 1.5);
}

}  // namespace
}  // namespace pgshift

// ------------------------------------------------------------ [copy] keys

namespace pgshift {
namespace {

const char* kBase =
    "[source]\ndsn = host=db dbname=app\ntable = events\n"
    "[partitioning]\ncolumn = created_at\ninterval = 1 month\n";

TEST(CopyConfig, DefaultsAndValues) {
    auto d = parse_config_string(kBase);
    EXPECT_EQ(d.copy_chunk_rows, 250000);
    EXPECT_EQ(d.copy_maintenance_work_mem, 256LL << 20);
    EXPECT_EQ(d.copy_pause_retained_wal, 0);
    EXPECT_EQ(d.copy_pause_replay_lag, 1LL << 30);
    auto c = parse_config_string(std::string(kBase) +
                                 "[copy]\nchunk_rows = 1000000\nmaintenance_work_mem = 1GB\n"
                                 "pause_retained_wal = 50GB\npause_replay_lag = 0\n");
    EXPECT_EQ(c.copy_chunk_rows, 1000000);
    EXPECT_EQ(c.copy_maintenance_work_mem, 1LL << 30);
    EXPECT_EQ(c.copy_pause_retained_wal, 50LL << 30);
    EXPECT_EQ(c.copy_pause_replay_lag, 0);
}

TEST(CopyConfig, BadValuesNameTheKey) {
    for (const char* bad : {"chunk_rows = 999", "maintenance_work_mem = 512kB",
                            "pause_retained_wal = -1", "pause_replay_lag = lots"}) {
        try {
            parse_config_string(std::string(kBase) + "[copy]\n" + bad + "\n");
            ADD_FAILURE() << bad;
        } catch (const ConfigError& e) {
            std::string key =
                std::string("copy.") + std::string(bad).substr(0, std::string(bad).find(' '));
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace pgshift
