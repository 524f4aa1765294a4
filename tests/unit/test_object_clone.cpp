// plan_shadow's cloning of the source's other objects: CHECK constraints,
// UNIQUE constraints, triggers, RLS, grants, owner, comments, storage,
// foreign keys both ways, dependent views and publications.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cutover/cutover_controller.h"
#include "cutover/rollback.h"
#include "shadow_ddl.h"
#include "swap_spec.h"

namespace pgshift {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

size_t index_of(const std::vector<std::string>& v, const std::string& s) {
    return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

// Hostile names: schema with a space, table with a quote and capitals, a
// column called "user".
TableInfo hostile_table() {
    TableInfo t;
    t.name = {"app data", "Chat \"Msgs\""};
    ColumnInfo id;
    id.attnum = 1;
    id.name = "id";
    id.type = "bigint";
    id.type_oid = 20;
    id.not_null = true;
    id.comment = "the id";
    ColumnInfo at;
    at.attnum = 2;
    at.name = "timestamp";
    at.type = "timestamp with time zone";
    at.type_oid = 1184;
    at.not_null = true;
    ColumnInfo user;
    user.attnum = 3;
    user.name = "user";
    user.type = "text";
    user.type_oid = 25;
    user.storage = 'e';
    user.compression = 'p';
    user.stattarget = 500;
    user.grants = {{"SELECT", "\"Reader\"", false}};
    t.columns = {id, at, user};
    IndexInfo pk;
    pk.name = "Chat_pkey";
    pk.primary = true;
    pk.unique = true;
    pk.using_clause = "btree (id)";
    pk.key_columns = {"id"};
    pk.constraint_name = "Chat_pkey";
    pk.constraint_def = "PRIMARY KEY (id)";
    IndexInfo uq;
    uq.name = "chat_user_key";
    uq.unique = true;
    uq.using_clause = "btree (\"user\")";
    uq.key_columns = {"user"};
    uq.constraint_name = "chat_user_key";
    uq.constraint_def = "UNIQUE (\"user\") INCLUDE (id)";
    uq.constraint_comment = "one per user";
    IndexInfo part;
    part.name = "chat_recent";
    part.using_clause = "gin (to_tsvector('simple'::regconfig, \"user\")) WHERE (id > 10)";
    part.has_expressions = true;
    part.partial = true;
    part.comment = "search";
    t.indexes = {pk, uq, part};
    t.owner = "\"App Owner\"";
    t.comment = "chat's messages";
    t.reloptions = {"fillfactor=70", "autovacuum_enabled=false"};
    t.rls_enabled = true;
    t.rls_forced = true;
    ConstraintInfo chk{
        "positive id", 'c', "CHECK ((id > 0))", true, false, "ids", {}, false, {}, {}, ""};
    ConstraintInfo nv{"user_len", 'c',   "CHECK ((length(\"user\") < 10)) NOT VALID",
                      false,      false, std::nullopt,
                      {},         false, {},
                      {},         ""};
    ConstraintInfo fk{"chat_room_fk",
                      'f',
                      "",
                      true,
                      false,
                      std::nullopt,
                      {"public", "rooms"},
                      false,
                      {"id"},
                      {"room_id"},
                      " ON UPDATE NO ACTION ON DELETE CASCADE"};
    t.constraints = {chk, fk, nv};
    ConstraintInfo in_ok{"reads_msg_fk",
                         'f',
                         "",
                         true,
                         false,
                         std::nullopt,
                         {"public", "reads"},
                         false,
                         {"msg_id", "msg_at"},
                         {"id", "timestamp"},
                         " ON UPDATE NO ACTION ON DELETE NO ACTION"};
    t.incoming_fks = {in_ok};
    t.triggers = {{"Touch",
                   "CREATE TRIGGER \"Touch\" BEFORE UPDATE ON \"app data\".\"Chat \"\"Msgs\"\"\" "
                   "FOR EACH ROW EXECUTE FUNCTION touch()",
                   'O', std::nullopt},
                  {"audit",
                   "CREATE TRIGGER audit AFTER INSERT ON \"app data\".\"Chat \"\"Msgs\"\"\" "
                   "FOR EACH ROW EXECUTE FUNCTION audit()",
                   'A', "audits"},
                  {"off",
                   "CREATE TRIGGER off AFTER INSERT ON \"app data\".\"Chat \"\"Msgs\"\"\" "
                   "FOR EACH ROW EXECUTE FUNCTION audit()",
                   'D', std::nullopt}};
    t.policies = {
        {"own rows", true, "ALL", "\"Reader\", PUBLIC", "(\"user\" = CURRENT_USER)", std::nullopt},
        {"no_old", false, "UPDATE", "PUBLIC", std::nullopt, "(id > 5)"}};
    t.grants = {{"SELECT", "\"Reader\"", false}, {"INSERT", "PUBLIC", true}};
    t.views = {{{"app data", "Recent"},
                'v',
                " SELECT id\n   FROM \"app data\".\"Chat \"\"Msgs\"\"\";",
                {"security_barrier=true"}},
               {{"public", "mv"}, 'm', " SELECT 1;", {}}};
    t.publications = {{"Analytics", false}, {"filtered", true}};
    return t;
}

JobConfig hostile_config() {
    JobConfig cfg;
    cfg.table = {"app data", "Chat \"Msgs\""};
    cfg.job_name = "chat";
    cfg.column = "timestamp";
    cfg.interval.count = 1;
    cfg.interval.unit = TimeUnit::Month;
    return cfg;
}

ShadowPlan hostile_plan() {
    JobConfig cfg = hostile_config();
    std::vector<PartitionBound> parts = {
        {"Chat \"Msgs\"_p2025_01", "2025-01-01 00:00:00+00", "2025-02-01 00:00:00+00", false}};
    return plan_shadow(hostile_table(), cfg, JobNames::from(cfg, "appdb"), parts);
}

const std::string kShadow = R"("app data"."Chat ""Msgs""__pgshift")";
const std::string kTarget = R"("app data"."Chat ""Msgs""")";
const std::string kPart = R"("app data"."Chat ""Msgs""_p2025_01")";
const std::string kOld = R"("app data"."Chat ""Msgs""__pgshift_old")";

TEST(ObjectClone, StorageOnColumnsAndReloptionsOnPartitions) {
    ShadowPlan p = hostile_plan();
    EXPECT_TRUE(has(p.create_sql,
                    "ALTER TABLE " + kShadow + R"( ALTER COLUMN "user" SET STORAGE EXTERNAL)"));
    EXPECT_TRUE(has(p.create_sql,
                    "ALTER TABLE " + kShadow + R"( ALTER COLUMN "user" SET COMPRESSION pglz)"));
    EXPECT_TRUE(
        has(p.create_sql, "ALTER TABLE " + kShadow + R"( ALTER COLUMN "user" SET STATISTICS 500)"));
    EXPECT_TRUE(has(p.create_sql,
                    "CREATE TABLE " + kPart + " PARTITION OF " + kShadow +
                        " FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00')"
                        " WITH (fillfactor=70, autovacuum_enabled=false)"));
}

TEST(ObjectClone, CheckConstraintsValidBeforeCopyNotValidAfter) {
    ShadowPlan p = hostile_plan();
    EXPECT_TRUE(has(p.create_sql, "ALTER TABLE " + kShadow +
                                      R"( ADD CONSTRAINT "positive id" CHECK ((id > 0)))"));
    EXPECT_TRUE(has(p.index_sql,
                    "ALTER TABLE " + kShadow +
                        R"( ADD CONSTRAINT "user_len" CHECK ((length("user") < 10)) NOT VALID)"));
    EXPECT_TRUE(
        has(p.index_sql, R"(COMMENT ON CONSTRAINT "positive id" ON )" + kShadow + " IS 'ids'"));
}

TEST(ObjectClone, UniqueConstraintStaysAConstraintWidened) {
    ShadowPlan p = hostile_plan();
    EXPECT_TRUE(has(
        p.index_sql,
        "ALTER TABLE " + kShadow +
            R"( ADD CONSTRAINT "chat_user_key__pgshift" UNIQUE ("user", "timestamp") INCLUDE (id))"));
    EXPECT_TRUE(has(p.index_sql, R"(COMMENT ON CONSTRAINT "chat_user_key__pgshift" ON )" + kShadow +
                                     " IS 'one per user'"));
    EXPECT_TRUE(
        has(p.index_sql,
            R"(CREATE INDEX "chat_recent__pgshift" ON )" + kShadow +
                R"( USING gin (to_tsvector('simple'::regconfig, "user")) WHERE (id > 10))"));
    EXPECT_TRUE(
        has(p.index_sql, R"(COMMENT ON INDEX "app data"."chat_recent__pgshift" IS 'search')"));
}

TEST(ObjectClone, TriggersCreatedDisabledAndEnabledAtCutover) {
    ShadowPlan p = hostile_plan();
    std::string create = "CREATE TRIGGER \"Touch\" BEFORE UPDATE ON " + kShadow +
                         " FOR EACH ROW EXECUTE FUNCTION touch()";
    ASSERT_TRUE(has(p.index_sql, create));
    EXPECT_EQ(p.index_sql[index_of(p.index_sql, create) + 1],
              "ALTER TABLE " + kShadow + R"( DISABLE TRIGGER "Touch")");
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kTarget + R"( ENABLE TRIGGER "Touch")"));
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kTarget + R"( ENABLE ALWAYS TRIGGER "audit")"));
    EXPECT_TRUE(has(p.index_sql, R"(COMMENT ON TRIGGER "audit" ON )" + kShadow + " IS 'audits'"));
    for (const auto& s : p.swap_sql)
        EXPECT_EQ(s.find("\"off\""), std::string::npos) << s;
}

TEST(ObjectClone, PoliciesAndEnableNowForceAtCutover) {
    ShadowPlan p = hostile_plan();
    EXPECT_TRUE(
        has(p.index_sql,
            R"(CREATE POLICY "own rows" ON )" + kShadow +
                R"( AS PERMISSIVE FOR ALL TO "Reader", PUBLIC USING (("user" = CURRENT_USER)))"));
    EXPECT_TRUE(has(p.index_sql, R"(CREATE POLICY "no_old" ON )" + kShadow +
                                     " AS RESTRICTIVE FOR UPDATE TO PUBLIC WITH CHECK ((id > 5))"));
    // ENABLE from the start (grantees never see unfiltered rows of the
    // shadow); FORCE, which would filter the job's own role, at cutover.
    EXPECT_TRUE(has(p.create_sql, "ALTER TABLE " + kShadow + " ENABLE ROW LEVEL SECURITY"));
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kTarget + " FORCE ROW LEVEL SECURITY"));
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kOld + " NO FORCE ROW LEVEL SECURITY"));
    for (const auto& s : p.index_sql)
        EXPECT_EQ(s.find("ROW LEVEL SECURITY"), std::string::npos) << s;
}

TEST(ObjectClone, GrantsOwnerComments) {
    ShadowPlan p = hostile_plan();
    EXPECT_TRUE(has(p.index_sql, "GRANT SELECT ON TABLE " + kShadow + R"( TO "Reader")"));
    EXPECT_TRUE(
        has(p.index_sql, "GRANT INSERT ON TABLE " + kShadow + " TO PUBLIC WITH GRANT OPTION"));
    EXPECT_TRUE(
        has(p.index_sql, R"(GRANT SELECT ("user") ON TABLE )" + kShadow + R"( TO "Reader")"));
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kTarget + R"( OWNER TO "App Owner")"));
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kPart + R"( OWNER TO "App Owner")"));
    EXPECT_TRUE(has(p.index_sql, "COMMENT ON TABLE " + kShadow + " IS 'chat''s messages'"));
    EXPECT_TRUE(has(p.index_sql, "COMMENT ON COLUMN " + kShadow + R"(."id" IS 'the id')"));
}

TEST(ObjectClone, OutgoingForeignKeyPerPartitionThenAttached) {
    ShadowPlan p = hostile_plan();
    std::string fk =
        R"(FOREIGN KEY ("id") REFERENCES "public"."rooms" ("room_id") ON UPDATE NO ACTION ON DELETE CASCADE)";
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kPart + R"( ADD CONSTRAINT "chat_room_fk" )" + fk +
                                    " NOT VALID"));
    ASSERT_EQ(p.after_commit_sql.size(), 3u);
    EXPECT_EQ(p.after_commit_sql[0],
              "ALTER TABLE " + kPart + R"( VALIDATE CONSTRAINT "chat_room_fk")");
    EXPECT_EQ(p.after_commit_sql[1],
              "ALTER TABLE " + kTarget + R"( ADD CONSTRAINT "chat_room_fk" )" + fk);
    for (const auto& s : p.index_sql)
        EXPECT_EQ(s.find("FOREIGN KEY"), std::string::npos) << s;
    // The old table, the reverse stream's target, keeps none.
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kOld + R"( DROP CONSTRAINT "chat_room_fk")"));
}

TEST(ObjectClone, IncomingForeignKeyRepointedNotValidThenValidated) {
    ShadowPlan p = hostile_plan();
    EXPECT_TRUE(has(p.swap_sql, R"(ALTER TABLE "public"."reads" DROP CONSTRAINT "reads_msg_fk")"));
    EXPECT_TRUE(has(
        p.swap_sql,
        R"(ALTER TABLE "public"."reads" ADD CONSTRAINT "reads_msg_fk" FOREIGN KEY ("msg_id", "msg_at") REFERENCES )" +
            kTarget + R"( ("id", "timestamp") ON UPDATE NO ACTION ON DELETE NO ACTION NOT VALID)"));
    EXPECT_EQ(p.after_commit_sql[2],
              R"(ALTER TABLE "public"."reads" VALIDATE CONSTRAINT "reads_msg_fk")");
}

TEST(ObjectClone, IncomingForeignKeyOnNarrowKeyIsNotReferenceable) {
    TableInfo t = hostile_table();
    EXPECT_TRUE(referenceable_after_widening(t, {"timestamp"}, {"timestamp", "id"}));
    EXPECT_FALSE(referenceable_after_widening(t, {"timestamp"}, {"id"}));
    // Two levels: the key must contain both partition columns.
    EXPECT_FALSE(referenceable_after_widening(t, {"timestamp", "user"}, {"timestamp", "id"}));
    EXPECT_TRUE(
        referenceable_after_widening(t, {"timestamp", "user"}, {"user", "timestamp", "id"}));
    t.incoming_fks[0].ref_columns = {"id"};
    JobConfig cfg = hostile_config();
    ShadowPlan p = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), {});
    for (const auto& s : p.swap_sql)
        EXPECT_EQ(s.find("reads_msg_fk"), std::string::npos) << s;
}

TEST(ObjectClone, ViewsRecreatedPublicationsMoved) {
    ShadowPlan p = hostile_plan();
    EXPECT_TRUE(
        has(p.swap_sql,
            R"(CREATE OR REPLACE VIEW "app data"."Recent" WITH (security_barrier=true) AS SELECT id
   FROM "app data"."Chat ""Msgs""")"));
    EXPECT_TRUE(has(p.swap_sql, R"(ALTER PUBLICATION "Analytics" ADD TABLE )" + kTarget));
    EXPECT_TRUE(
        has(p.swap_sql,
            R"(ALTER PUBLICATION "Analytics" DROP TABLE "app data"."Chat ""Msgs""__pgshift_old")"));
    for (const auto& s : p.swap_sql) {
        EXPECT_EQ(s.find("\"mv\""), std::string::npos) << s;
        EXPECT_EQ(s.find("\"filtered\""), std::string::npos) << s;
    }
}

TEST(ObjectClone, SwapStatementsRunObjectsAfterRenamesBeforeDone) {
    ShadowPlan p = hostile_plan();
    JobConfig cfg = hostile_config();
    SwapPlan s{JobNames::from(cfg, "appdb"),
               p.index_renames,
               {},
               {},
               "DONE",
               p.swap_sql,
               p.after_commit_sql};
    auto sql = swap_statements(s);
    ASSERT_EQ(sql.back(), "DONE");
    size_t rename = index_of(sql, "ALTER TABLE " + kShadow + " RENAME TO " + R"("Chat ""Msgs""")");
    size_t rls = index_of(sql, "ALTER TABLE " + kTarget + " FORCE ROW LEVEL SECURITY");
    EXPECT_LT(rename, rls);
    EXPECT_LT(rls, sql.size() - 1);
}

// ------------------------------------------------ rollback: the inverse

TEST(ObjectClone, RollbackPointsEverythingBackAtTheOldTable) {
    ShadowPlan p = hostile_plan();
    const auto& r = p.rollback_sql;
    // Triggers: off on the partitioned table, original modes on the old one.
    EXPECT_TRUE(has(r, "ALTER TABLE " + kShadow + R"( DISABLE TRIGGER "Touch")"));
    EXPECT_TRUE(has(r, "ALTER TABLE " + kTarget + R"( ENABLE ALWAYS TRIGGER "audit")"));
    EXPECT_TRUE(has(p.swap_sql, "ALTER TABLE " + kOld + R"( DISABLE TRIGGER "audit")"));
    // FORCE RLS moves back.
    EXPECT_TRUE(has(r, "ALTER TABLE " + kShadow + " NO FORCE ROW LEVEL SECURITY"));
    EXPECT_TRUE(has(r, "ALTER TABLE " + kTarget + " FORCE ROW LEVEL SECURITY"));
    // Outgoing foreign keys: off the partitioned table (root, then any
    // partition the after-commit step had not attached yet), back on the old
    // table NOT VALID, validated after the commit.
    std::string fk =
        R"(FOREIGN KEY ("id") REFERENCES "public"."rooms" ("room_id") ON UPDATE NO ACTION ON DELETE CASCADE)";
    size_t root =
        index_of(r, "ALTER TABLE " + kShadow + R"( DROP CONSTRAINT IF EXISTS "chat_room_fk")");
    size_t part =
        index_of(r, "ALTER TABLE " + kPart + R"( DROP CONSTRAINT IF EXISTS "chat_room_fk")");
    size_t back = index_of(
        r, "ALTER TABLE " + kTarget + R"( ADD CONSTRAINT "chat_room_fk" )" + fk + " NOT VALID");
    ASSERT_LT(back, r.size());
    EXPECT_LT(root, part);
    EXPECT_LT(part, back);
    EXPECT_TRUE(has(p.rollback_after_commit_sql,
                    "ALTER TABLE " + kTarget + R"( VALIDATE CONSTRAINT "chat_room_fk")"));
    // Incoming foreign keys re-pointed at the old table (the source's name again).
    EXPECT_TRUE(has(r, R"(ALTER TABLE "public"."reads" DROP CONSTRAINT "reads_msg_fk")"));
    EXPECT_TRUE(has(
        r,
        R"(ALTER TABLE "public"."reads" ADD CONSTRAINT "reads_msg_fk" FOREIGN KEY ("msg_id", "msg_at") REFERENCES )" +
            kTarget + R"( ("id", "timestamp") ON UPDATE NO ACTION ON DELETE NO ACTION NOT VALID)"));
    EXPECT_TRUE(has(p.rollback_after_commit_sql,
                    R"(ALTER TABLE "public"."reads" VALIDATE CONSTRAINT "reads_msg_fk")"));
    // Views resolve the name again; publications swap back.
    EXPECT_TRUE(has(
        r, R"(CREATE OR REPLACE VIEW "app data"."Recent" WITH (security_barrier=true) AS SELECT id
   FROM "app data"."Chat ""Msgs""")"));
    EXPECT_TRUE(has(r, R"(ALTER PUBLICATION "Analytics" DROP TABLE )" + kShadow));
    EXPECT_TRUE(has(r, R"(ALTER PUBLICATION "Analytics" ADD TABLE )" + kTarget));
}

TEST(ObjectClone, RollbackStatementsRunObjectsAfterRenamesBack) {
    ShadowPlan p = hostile_plan();
    JobConfig cfg = hostile_config();
    SwapPlan s{JobNames::from(cfg, "appdb"), p.index_renames, {}, {}, "SYNC", p.rollback_sql, {}};
    auto sql = rollback_statements(s);
    ASSERT_EQ(sql.back(), "SYNC");
    size_t rename = index_of(sql, "ALTER TABLE " + kOld + " RENAME TO " + R"("Chat ""Msgs""")");
    size_t force = index_of(sql, "ALTER TABLE " + kTarget + " FORCE ROW LEVEL SECURITY");
    EXPECT_LT(rename, force);
    EXPECT_LT(force, sql.size() - 1);
}

TEST(ObjectClone, SwapSpecKeepsBothDirectionsObjectSql) {
    ShadowPlan p = hostile_plan();
    SwapSpec spec = SwapSpec::from(hostile_table(), p);
    EXPECT_EQ(spec.object_sql, p.swap_sql);
    EXPECT_EQ(spec.rollback_object_sql, p.rollback_sql);
    EXPECT_EQ(spec.rollback_after_commit_sql, p.rollback_after_commit_sql);
    EXPECT_EQ(SwapSpec::from_json(spec.to_json()), spec);
    // A spec stored before rollbacks moved objects has no rollback keys.
    SwapSpec old = SwapSpec::from_json(
        R"({"index_renames": [], "sequences": [], "identity_always_columns": [],)"
        R"( "forward_key": ["id"], "reverse_key": ["id", "at"], "object_sql": ["X"]})");
    EXPECT_EQ(old.object_sql, std::vector<std::string>{"X"});
    EXPECT_TRUE(old.rollback_object_sql.empty());
    EXPECT_THROW(SwapSpec::from_json("{}"), std::runtime_error);
}

TEST(ObjectClone, ExtendedStatisticsClonedAndSwappedByName) {
    TableInfo t = hostile_table();
    t.statistics = {{{"stats", "Chat Deps"}, "ndistinct, dependencies", "id, \"user\"", 250, "why"},
                    {{"app data", "expr_stat"}, "", "(lower(\"user\"))", -1, std::nullopt}};
    JobConfig cfg = hostile_config();
    ShadowPlan p = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), {});
    EXPECT_TRUE(has(
        p.index_sql,
        R"(CREATE STATISTICS "stats"."Chat Deps__pgshift" (ndistinct, dependencies) ON id, "user" FROM )" +
            kShadow));
    EXPECT_TRUE(
        has(p.index_sql, R"(ALTER STATISTICS "stats"."Chat Deps__pgshift" SET STATISTICS 250)"));
    EXPECT_TRUE(has(p.index_sql, R"(COMMENT ON STATISTICS "stats"."Chat Deps__pgshift" IS 'why')"));
    EXPECT_TRUE(has(
        p.index_sql,
        R"(CREATE STATISTICS "app data"."expr_stat__pgshift" ON (lower("user")) FROM )" + kShadow));
    size_t away = index_of(
        p.swap_sql, R"(ALTER STATISTICS "stats"."Chat Deps" RENAME TO "Chat Deps__pgshift_old")");
    size_t in = index_of(p.swap_sql,
                         R"(ALTER STATISTICS "stats"."Chat Deps__pgshift" RENAME TO "Chat Deps")");
    ASSERT_LT(in, p.swap_sql.size());
    EXPECT_LT(away, in);
    size_t r_away = index_of(
        p.rollback_sql, R"(ALTER STATISTICS "stats"."Chat Deps" RENAME TO "Chat Deps__pgshift")");
    size_t r_in =
        index_of(p.rollback_sql,
                 R"(ALTER STATISTICS "stats"."Chat Deps__pgshift_old" RENAME TO "Chat Deps")");
    ASSERT_LT(r_in, p.rollback_sql.size());
    EXPECT_LT(r_away, r_in);
}

}  // namespace
}  // namespace pgshift

namespace pgshift {
namespace {

TEST(Strategies, HashPartitions) {
    auto parts = compute_hash_partitions("events", 3);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[0].name, "events_h0");
    EXPECT_EQ(parts[2].name, "events_h2");
    EXPECT_EQ(parts[1].bound_sql, "WITH (MODULUS 3, REMAINDER 1)");
    JobConfig cfg = hostile_config();
    cfg.strategy = "hash";
    cfg.table = {"public", "events"};
    TableInfo t = hostile_table();
    t.name = cfg.table;
    t.triggers.clear();
    ShadowPlan p = plan_shadow(t, cfg, JobNames::from(cfg, "appdb"), parts);
    EXPECT_NE(p.create_sql[0].find(R"() PARTITION BY HASH ("timestamp"))"), std::string::npos);
    EXPECT_TRUE(has(
        p.create_sql,
        R"(CREATE TABLE "public"."events_h1" PARTITION OF "public"."events__pgshift" FOR VALUES WITH (MODULUS 3, REMAINDER 1) WITH (fillfactor=70, autovacuum_enabled=false))"));
}

TEST(Strategies, ListPartitionsNamesAndBounds) {
    EXPECT_EQ(list_value_slug(std::string("Paris, France")), "paris_france");
    EXPECT_EQ(list_value_slug(std::string("")), "empty");
    EXPECT_EQ(list_value_slug(std::nullopt), "null");
    EXPECT_EQ(list_value_slug(std::string("élan")), "lan");
    EXPECT_EQ(list_value_slug(std::string("--")), "x");
    auto parts = compute_list_partitions(
        "events", {std::string("EU"), std::string("eu"), std::string("it's"), std::nullopt});
    ASSERT_EQ(parts.size(), 5u);
    EXPECT_EQ(parts[0].name, "events_l_eu");
    EXPECT_EQ(parts[0].bound_sql, "IN ('EU')");
    EXPECT_EQ(parts[1].name, "events_l_eu_2");
    EXPECT_EQ(parts[2].name, "events_l_it_s");
    EXPECT_EQ(parts[2].bound_sql, "IN ('it''s')");
    EXPECT_EQ(parts[3].name, "events_l_null");
    EXPECT_EQ(parts[3].bound_sql, "IN (NULL)");
    EXPECT_TRUE(parts[4].is_default);
    EXPECT_EQ(parts[4].name, "events_default");
}

}  // namespace
}  // namespace pgshift
