// swap_statements: the exact statements run under the cutover lock, in order.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cutover/cutover_controller.h"

namespace pgshift {
namespace {

SwapPlan plan_for(const std::string& schema, const std::string& table) {
    JobConfig cfg;
    cfg.table = {schema, table};
    cfg.job_name = "job";
    SwapPlan p;
    p.names = JobNames::from(cfg, "appdb");
    p.done_sql = "UPDATE \"pgshift\".\"jobs\" SET phase = 'done' WHERE name = 'job'";
    return p;
}

TEST(SwapStatements, IdentityAlwaysRestoredBeforeDone) {
    SwapPlan p = plan_for("public", "events");
    p.identity_always_columns = {"id"};
    std::vector<std::string> sql = swap_statements(p);
    ASSERT_GE(sql.size(), 2u);
    EXPECT_EQ(sql[sql.size() - 2],
              R"(ALTER TABLE "public"."events" ALTER COLUMN "id" SET GENERATED ALWAYS)");
    EXPECT_EQ(sql.back(), p.done_sql);
}

TEST(SwapStatements, TablesOnlyRenameSourceFirstThenShadowThenDone) {
    SwapPlan p = plan_for("public", "events");
    EXPECT_EQ(swap_statements(p),
              (std::vector<std::string>{
                  R"(ALTER TABLE "public"."events" RENAME TO "events__pgshift_old")",
                  R"(ALTER TABLE "public"."events__pgshift" RENAME TO "events")",
                  p.done_sql,
              }));
}

TEST(SwapStatements, FullPlanInOrder) {
    SwapPlan p = plan_for("public", "events");
    p.index_renames = {{"events_pkey__pgshift", "events_pkey"},
                       {"events_name_key__pgshift", "events_name_key"}};
    p.sequences = {{"id", R"("public"."events_id_seq")", true},
                   {"ref", R"("public"."events_ref_seq")", false}};
    std::vector<std::string> sql = swap_statements(p);
    EXPECT_EQ(
        sql,
        (std::vector<std::string>{
            R"(ALTER TABLE "public"."events" RENAME TO "events__pgshift_old")",
            R"(ALTER TABLE "public"."events__pgshift" RENAME TO "events")",
            // The old index gives up the name before the shadow's takes it.
            R"(ALTER INDEX "public"."events_pkey" RENAME TO "events_pkey__pgshift_old")",
            R"(ALTER INDEX "public"."events_pkey__pgshift" RENAME TO "events_pkey")",
            R"(ALTER INDEX "public"."events_name_key" RENAME TO "events_name_key__pgshift_old")",
            R"(ALTER INDEX "public"."events_name_key__pgshift" RENAME TO "events_name_key")",
            // Identity: the new table's own sequence continues from the source's.
            R"(SELECT setval(pg_get_serial_sequence('"public"."events"', 'id'), s.last_value, s.is_called) FROM "public"."events_id_seq" s)",
            // Serial: the shared sequence moves to the new table.
            R"(ALTER SEQUENCE "public"."events_ref_seq" OWNED BY "public"."events"."ref")",
            p.done_sql,
        }));
    EXPECT_EQ(sql.back(), p.done_sql);
}

TEST(SwapStatements, HostileIdentifiersAreQuoted) {
    SwapPlan p = plan_for("My Schema", "o'Brien \"user\"");
    p.index_renames = {{"Idx \"x\"__pgshift", "Idx \"x\""}};
    p.sequences = {{"Id", R"("My Schema"."seq")", true}, {"user", R"("My Schema"."s2")", false}};
    std::vector<std::string> sql = swap_statements(p);
    ASSERT_EQ(sql.size(), 7u);
    EXPECT_EQ(
        sql[0],
        R"(ALTER TABLE "My Schema"."o'Brien ""user""" RENAME TO "o'Brien ""user""__pgshift_old")");
    EXPECT_EQ(
        sql[1],
        R"(ALTER TABLE "My Schema"."o'Brien ""user""__pgshift" RENAME TO "o'Brien ""user""")");
    EXPECT_EQ(sql[2], R"(ALTER INDEX "My Schema"."Idx ""x""" RENAME TO "Idx ""x""__pgshift_old")");
    EXPECT_EQ(sql[3], R"(ALTER INDEX "My Schema"."Idx ""x""__pgshift" RENAME TO "Idx ""x""")");
    // pg_get_serial_sequence parses its first argument as a (quoted) name and
    // takes the second literally: the single quote is doubled, case is kept.
    EXPECT_EQ(
        sql[4],
        R"(SELECT setval(pg_get_serial_sequence('"My Schema"."o''Brien ""user"""', 'Id'), s.last_value, s.is_called) FROM "My Schema"."seq" s)");
    EXPECT_EQ(sql[5],
              R"(ALTER SEQUENCE "My Schema"."s2" OWNED BY "My Schema"."o'Brien ""user"""."user")");
    EXPECT_EQ(sql[6], p.done_sql);
}

TEST(SwapStatements, LongIndexNamesStayWithinIdentifierLimit) {
    SwapPlan p = plan_for("public", "events");
    std::string original(63, 'i');
    p.index_renames = {{suffixed_name(original, "__pgshift"), original}};
    std::vector<std::string> sql = swap_statements(p);
    ASSERT_EQ(sql.size(), 5u);
    std::string old_name = suffixed_name(original, "__pgshift_old");
    EXPECT_LE(old_name.size(), kMaxIdentifierBytes);
    EXPECT_EQ(sql[2], "ALTER INDEX \"public\".\"" + original + "\" RENAME TO \"" + old_name + "\"");
    EXPECT_EQ(sql[3], "ALTER INDEX \"public\".\"" + p.index_renames[0].shadow_name +
                          "\" RENAME TO \"" + original + "\"");
}

}  // namespace
}  // namespace pgshift
