// Statement builder: exact SQL and parameter mapping for INSERT, UPDATE,
// DELETE and TRUNCATE, and the value binding rules.
#include "applier/statement_builder.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgshift {
namespace {

using pgoutput::ColumnKind;
using pgoutput::ColumnValue;
using pgoutput::DeleteMsg;
using pgoutput::OldTupleKind;
using pgoutput::RelationColumn;
using pgoutput::RelationMsg;
using pgoutput::TupleData;
using pgoutput::UpdateMsg;

ColumnValue t(std::string v) {
    return {ColumnKind::Text, std::move(v)};
}
ColumnValue null() {
    return {ColumnKind::Null, ""};
}
ColumnValue unchanged() {
    return {ColumnKind::Unchanged, ""};
}
ColumnValue binary(std::string v) {
    return {ColumnKind::Binary, std::move(v)};
}

using Params = std::vector<std::pair<bool, int>>;  // (from_old, column)

Params refs(const ApplyStatement& s) {
    Params out;
    for (const auto& p : s.params)
        out.emplace_back(p.from_old, p.column);
    return out;
}
constexpr bool kNew = false;
constexpr bool kOld = true;

// Source relation, Relation column order:
//   0 id (replica identity key), 1 created_at, 2 name, 3 total_x2, 4 payload
RelationMsg events_rel() {
    RelationMsg r;
    r.relid = 16400;
    r.nspname = "public";
    r.relname = "events";
    r.columns = {
        RelationColumn{1, "id", 20, -1},       RelationColumn{0, "created_at", 1184, -1},
        RelationColumn{0, "name", 25, -1},     RelationColumn{0, "total_x2", 1700, -1},
        RelationColumn{0, "payload", 114, -1},
    };
    return r;
}

// The shadow: identity ALWAYS id, stored generated total_x2, json payload
// (no "=" operator), partitioned by created_at.
TargetTable events_target() {
    TargetTable tt;
    tt.qualified = R"("public"."events__pgshift")";
    tt.columns = {
        {"id", "bigint", false, true, true},
        {"created_at", "timestamp with time zone", false, false, true},
        {"name", "text", false, false, true},
        {"total_x2", "numeric", true, false, true},
        {"payload", "json", false, false, false},
    };
    tt.unique_key = {"id"};
    tt.partition_column = "created_at";
    return tt;
}

TupleData full_row() {
    return {t("7"), t("2025-01-15 10:37:12+00"), t("alice"), t("4.00"), t(R"({"a":1})")};
}

// ---------------------------------------------------------------- INSERT

TEST(BuildInsert, SkipsGeneratedAndOverridesIdentityAlways) {
    ApplyStatement s = build_insert(events_rel(), events_target(), full_row());
    EXPECT_EQ(s.sql,
              R"(INSERT INTO "public"."events__pgshift" ("id", "created_at", "name", "payload"))"
              R"( OVERRIDING SYSTEM VALUE VALUES ($1::bigint, $2::timestamp with time zone,)"
              R"( $3::text, $4::json))");
    EXPECT_EQ(refs(s), (Params{{kNew, 0}, {kNew, 1}, {kNew, 2}, {kNew, 4}}));
    EXPECT_FALSE(s.expect_one_row);
    EXPECT_FALSE(s.empty());
}

TEST(BuildInsert, NoOverridingWithoutIdentityAlways) {
    TargetTable tt = events_target();
    tt.columns[0].identity_always = false;  // BY DEFAULT or plain
    ApplyStatement s = build_insert(events_rel(), tt, full_row());
    EXPECT_EQ(s.sql.find("OVERRIDING"), std::string::npos) << s.sql;
    EXPECT_EQ(s.sql.rfind(R"(INSERT INTO "public"."events__pgshift" ("id", )", 0), 0u) << s.sql;
}

TEST(BuildInsert, BindsNullsAndText) {
    TupleData row = full_row();
    row[2] = null();
    ApplyStatement s = build_insert(events_rel(), events_target(), row);
    auto v = bind_params(s, nullptr, row);
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(v[0], std::optional<std::string>("7"));
    EXPECT_EQ(v[1], std::optional<std::string>("2025-01-15 10:37:12+00"));
    EXPECT_EQ(v[2], std::nullopt);
    EXPECT_EQ(v[3], std::optional<std::string>(R"({"a":1})"));
}

TEST(BuildInsert, HostileIdentifiersAreQuoted) {
    RelationMsg rel;
    rel.nspname = "My Schema";
    rel.relname = "user";
    rel.columns = {RelationColumn{1, "user", 25, -1}, RelationColumn{0, "a \"b\"", 23, -1},
                   RelationColumn{0, "timestamp", 1114, -1}};
    TargetTable tt;
    tt.qualified = R"("My Schema"."user__pgshift")";
    tt.columns = {
        {"user", "text"}, {"a \"b\"", "integer"}, {"timestamp", "timestamp without time zone"}};
    tt.partition_column = "timestamp";
    ApplyStatement s = build_insert(rel, tt, {t("u"), t("1"), t("2025-01-01 00:00:00")});
    EXPECT_EQ(s.sql, R"(INSERT INTO "My Schema"."user__pgshift" ("user", "a ""b""", "timestamp"))"
                     R"( VALUES ($1::text, $2::integer, $3::timestamp without time zone))");
}

TEST(BuildInsert, UnknownColumnAndWidthMismatchAreApplyErrors) {
    RelationMsg rel = events_rel();
    rel.columns.push_back(RelationColumn{0, "added_later", 25, -1});
    TupleData row = full_row();
    row.push_back(t("x"));
    try {
        build_insert(rel, events_target(), row);
        ADD_FAILURE() << "unknown column accepted";
    } catch (const ApplyError& e) {
        EXPECT_NE(std::string(e.what()).find("\"added_later\""), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(R"("public"."events__pgshift")"), std::string::npos);
    }
    TupleData short_row = full_row();
    short_row.pop_back();
    try {
        build_insert(events_rel(), events_target(), short_row);
        ADD_FAILURE() << "short tuple accepted";
    } catch (const ApplyError& e) {
        EXPECT_NE(std::string(e.what()).find("has 4 columns but its Relation message has 5"),
                  std::string::npos)
            << e.what();
    }
}

// ---------------------------------------------------------------- UPDATE

TEST(BuildUpdate, NoOldTupleUsesNewKeyAndSkipsToastGeneratedIdentity) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::None;
    m.new_tuple = full_row();
    m.new_tuple[4] = unchanged();  // TOASTed payload not sent
    ApplyStatement s = build_update(events_rel(), events_target(), m);
    EXPECT_EQ(
        s.sql,
        R"(UPDATE "public"."events__pgshift" SET "created_at" = $1::timestamp with time zone,)"
        R"( "name" = $2::text WHERE "id" = $3::bigint)");
    // No partition column in the WHERE: the new tuple's may have moved.
    EXPECT_EQ(refs(s), (Params{{kNew, 1}, {kNew, 2}, {kNew, 0}}));
    EXPECT_EQ(s.key_params_from, 2u);
    EXPECT_TRUE(s.expect_one_row);
    auto v = bind_params(s, nullptr, m.new_tuple);
    EXPECT_EQ(v, (std::vector<std::optional<std::string>>{"2025-01-15 10:37:12+00", "alice", "7"}));
    EXPECT_EQ(describe_key(events_rel(), s, nullptr, m.new_tuple), "id=7");
}

TEST(BuildUpdate, NoOldTupleLeavesTheUnchangedIdentityOutOfSet) {
    RelationMsg rel = events_rel();
    rel.columns[1].flags = 1;  // replica identity (id, created_at)
    UpdateMsg m;
    m.old_kind = OldTupleKind::None;
    m.new_tuple = full_row();
    ApplyStatement s = build_update(rel, events_target(), m);
    EXPECT_EQ(s.sql,
              R"(UPDATE "public"."events__pgshift" SET "name" = $1::text, "payload" = $2::json)"
              R"( WHERE "id" = $3::bigint AND "created_at" = $4::timestamp with time zone)");
    EXPECT_EQ(refs(s), (Params{{kNew, 2}, {kNew, 4}, {kNew, 0}, {kNew, 1}}));
    EXPECT_EQ(s.key_params_from, 2u);
}

TEST(BuildUpdate, OldKeyTupleGivesWhereFromOld) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::Key;
    m.old_tuple = {t("6"), null(), null(), null(), null()};
    m.new_tuple = full_row();
    ApplyStatement s = build_update(events_rel(), events_target(), m);
    EXPECT_EQ(
        s.sql,
        R"(UPDATE "public"."events__pgshift" SET "created_at" = $1::timestamp with time zone,)"
        R"( "name" = $2::text, "payload" = $3::json WHERE "id" = $4::bigint)");
    EXPECT_EQ(refs(s), (Params{{kNew, 1}, {kNew, 2}, {kNew, 4}, {kOld, 0}}));
    EXPECT_EQ(s.key_params_from, 3u);
    auto v = bind_params(s, &m.old_tuple, m.new_tuple);
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(v[3], std::optional<std::string>("6"));
    EXPECT_EQ(describe_key(events_rel(), s, &m.old_tuple, m.new_tuple), "id=6");
}

TEST(BuildUpdate, OldKeyIncludingPartitionColumnIsNotDuplicated) {
    RelationMsg rel = events_rel();
    rel.columns[1].flags = 1;  // source PK (id, created_at)
    UpdateMsg m;
    m.old_kind = OldTupleKind::Key;
    m.old_tuple = {t("6"), t("2025-01-01 00:00:00+00"), null(), null(), null()};
    m.new_tuple = full_row();
    ApplyStatement s = build_update(rel, events_target(), m);
    EXPECT_NE(
        s.sql.find(R"( WHERE "id" = $4::bigint AND "created_at" = $5::timestamp with time zone)"),
        std::string::npos)
        << s.sql;
    EXPECT_EQ(s.sql.find("$6"), std::string::npos) << s.sql;
    EXPECT_EQ(s.params.size(), 5u);
    EXPECT_EQ(refs(s)[4], (std::pair<bool, int>{kOld, 1}));
}

TEST(BuildUpdate, FullOldRowWithUniqueKeyUsesKeyPlusPartitionColumn) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    m.old_tuple[1] = t("2024-12-31 23:59:59+00");
    m.new_tuple = full_row();
    ApplyStatement s = build_update(events_rel(), events_target(), m);
    EXPECT_EQ(
        s.sql,
        R"(UPDATE "public"."events__pgshift" SET "created_at" = $1::timestamp with time zone,)"
        R"( "name" = $2::text, "payload" = $3::json)"
        R"( WHERE "id" = $4::bigint AND "created_at" = $5::timestamp with time zone)");
    EXPECT_EQ(refs(s), (Params{{kNew, 1}, {kNew, 2}, {kNew, 4}, {kOld, 0}, {kOld, 1}}));
    auto v = bind_params(s, &m.old_tuple, m.new_tuple);
    EXPECT_EQ(v[0], std::optional<std::string>("2025-01-15 10:37:12+00"));
    EXPECT_EQ(v[4], std::optional<std::string>("2024-12-31 23:59:59+00"));
    EXPECT_EQ(describe_key(events_rel(), s, &m.old_tuple, m.new_tuple),
              "id=7, created_at=2024-12-31 23:59:59+00");
}

TEST(BuildUpdate, FullOldRowWithNullPartitionKeyDoesNotCompareIt) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    m.old_tuple[1] = null();  // row lives in the DEFAULT partition
    m.new_tuple = full_row();
    ApplyStatement s = build_update(events_rel(), events_target(), m);
    EXPECT_TRUE(s.sql.ends_with(R"( WHERE "id" = $4::bigint)")) << s.sql;
}

TEST(BuildUpdate, FullOldRowWithoutUniqueKeyUsesNullSafeCtidForm) {
    TargetTable tt = events_target();
    tt.unique_key.clear();
    UpdateMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    m.old_tuple[2] = null();
    m.new_tuple = full_row();
    ApplyStatement s = build_update(events_rel(), tt, m);
    EXPECT_EQ(
        s.sql,
        R"(UPDATE "public"."events__pgshift" SET "created_at" = $1::timestamp with time zone,)"
        R"( "name" = $2::text, "payload" = $3::json WHERE (tableoid, ctid) = (SELECT tableoid, ctid)"
        R"( FROM "public"."events__pgshift" WHERE "id" IS NOT DISTINCT FROM $4::bigint)"
        R"( AND "created_at" IS NOT DISTINCT FROM $5::timestamp with time zone)"
        R"( AND "name" IS NOT DISTINCT FROM $6::text)"
        R"( AND "payload"::text IS NOT DISTINCT FROM $7::text LIMIT 1))");
    EXPECT_EQ(
        refs(s),
        (Params{{kNew, 1}, {kNew, 2}, {kNew, 4}, {kOld, 0}, {kOld, 1}, {kOld, 2}, {kOld, 4}}));
    EXPECT_EQ(s.key_params_from, 3u);
    auto v = bind_params(s, &m.old_tuple, m.new_tuple);
    ASSERT_EQ(v.size(), 7u);
    EXPECT_EQ(v[5], std::nullopt);
    EXPECT_EQ(v[6], std::optional<std::string>(R"({"a":1})"));
    EXPECT_EQ(describe_key(events_rel(), s, &m.old_tuple, m.new_tuple),
              R"(id=7, created_at=2025-01-15 10:37:12+00, name=NULL, payload={"a":1})");
}

TEST(BuildUpdate, FullOldRowWithNullUniqueKeyFallsBackToCtidForm) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    m.old_tuple[0] = null();
    m.old_tuple[4] = unchanged();  // skipped in the comparison
    m.new_tuple = full_row();
    ApplyStatement s = build_update(events_rel(), events_target(), m);
    EXPECT_NE(
        s.sql.find(
            R"(WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM "public"."events__pgshift" WHERE "id" IS NOT DISTINCT FROM $4::bigint)"),
        std::string::npos)
        << s.sql;
    EXPECT_EQ(s.sql.find("\"payload\"::text"), std::string::npos) << s.sql;
    EXPECT_TRUE(s.sql.ends_with(R"("name" IS NOT DISTINCT FROM $6::text LIMIT 1))")) << s.sql;
    // The key part of the statement does not mention the partition column twice.
    EXPECT_EQ(s.params.size(), 6u);
}

TEST(BuildUpdate, UniqueKeyMissingFromRelationFallsBackToCtidForm) {
    TargetTable tt = events_target();
    tt.unique_key = {"no_such_column"};
    UpdateMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    m.new_tuple = full_row();
    ApplyStatement s = build_update(events_rel(), tt, m);
    EXPECT_NE(s.sql.find("(tableoid, ctid) = (SELECT tableoid, ctid FROM"), std::string::npos)
        << s.sql;
}

TEST(BuildUpdate, NothingToSetGivesEmptyStatement) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::None;
    m.new_tuple = {t("7"), unchanged(), unchanged(), t("4.00"), unchanged()};
    ApplyStatement s = build_update(events_rel(), events_target(), m);
    EXPECT_TRUE(s.empty());
    EXPECT_TRUE(s.params.empty());
    EXPECT_FALSE(s.expect_one_row);
}

TEST(BuildUpdate, NoReplicaIdentityColumnsIsApplyError) {
    RelationMsg rel = events_rel();
    rel.columns[0].flags = 0;
    UpdateMsg m;
    m.new_tuple = full_row();
    EXPECT_THROW(build_update(rel, events_target(), m), ApplyError);
}

TEST(BuildUpdate, OldTupleWidthMismatchIsApplyError) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::Key;
    m.old_tuple = {t("7")};
    m.new_tuple = full_row();
    EXPECT_THROW(build_update(events_rel(), events_target(), m), ApplyError);
    m.old_kind = OldTupleKind::None;
    m.new_tuple.pop_back();
    EXPECT_THROW(build_update(events_rel(), events_target(), m), ApplyError);
}

// ---------------------------------------------------------------- DELETE

TEST(BuildDelete, OldKey) {
    DeleteMsg m;
    m.old_kind = OldTupleKind::Key;
    m.old_tuple = {t("9"), null(), null(), null(), null()};
    ApplyStatement s = build_delete(events_rel(), events_target(), m);
    EXPECT_EQ(s.sql, R"(DELETE FROM "public"."events__pgshift" WHERE "id" = $1::bigint)");
    EXPECT_EQ(refs(s), (Params{{kOld, 0}}));
    EXPECT_EQ(s.key_params_from, 0u);
    EXPECT_TRUE(s.expect_one_row);
    EXPECT_EQ(bind_params(s, &m.old_tuple, m.old_tuple),
              (std::vector<std::optional<std::string>>{"9"}));
    EXPECT_EQ(describe_key(events_rel(), s, &m.old_tuple, m.old_tuple), "id=9");
}

TEST(BuildDelete, FullOldRowWithUniqueKey) {
    DeleteMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    ApplyStatement s = build_delete(events_rel(), events_target(), m);
    EXPECT_EQ(s.sql, R"(DELETE FROM "public"."events__pgshift" WHERE "id" = $1::bigint)"
                     R"( AND "created_at" = $2::timestamp with time zone)");
    EXPECT_EQ(refs(s), (Params{{kOld, 0}, {kOld, 1}}));
}

TEST(BuildDelete, FullOldRowWithoutUniqueKey) {
    TargetTable tt = events_target();
    tt.unique_key.clear();
    DeleteMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    ApplyStatement s = build_delete(events_rel(), tt, m);
    EXPECT_EQ(s.sql, R"(DELETE FROM "public"."events__pgshift" WHERE (tableoid, ctid) =)"
                     R"( (SELECT tableoid, ctid FROM "public"."events__pgshift")"
                     R"( WHERE "id" IS NOT DISTINCT FROM $1::bigint)"
                     R"( AND "created_at" IS NOT DISTINCT FROM $2::timestamp with time zone)"
                     R"( AND "name" IS NOT DISTINCT FROM $3::text)"
                     R"( AND "payload"::text IS NOT DISTINCT FROM $4::text LIMIT 1))");
    EXPECT_EQ(refs(s), (Params{{kOld, 0}, {kOld, 1}, {kOld, 2}, {kOld, 4}}));
    EXPECT_TRUE(s.expect_one_row);
}

TEST(BuildDelete, UnknownKeyColumnIsApplyError) {
    RelationMsg rel = events_rel();
    rel.columns[0].name = "ident";
    DeleteMsg m;
    m.old_tuple = {t("9"), null(), null(), null(), null()};
    EXPECT_THROW(build_delete(rel, events_target(), m), ApplyError);
    m.old_tuple.pop_back();
    EXPECT_THROW(build_delete(events_rel(), events_target(), m), ApplyError);
}

// ---------------------------------------------------------------- set-based forms

TEST(BuildBatch, UpdateJoinsUnnestOfTextArraysWithSameParams) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::Key;
    m.old_tuple = {t("6"), null(), null(), null(), null()};
    m.new_tuple = full_row();
    m.new_tuple[4] = unchanged();
    ApplyStatement row = build_update(events_rel(), events_target(), m);
    ApplyStatement s = build_update(events_rel(), events_target(), m, true);
    EXPECT_TRUE(s.batch);
    EXPECT_EQ(s.sql,
              R"(UPDATE "public"."events__pgshift" AS t SET "created_at" = u.p1::timestamp with)"
              R"( time zone, "name" = u.p2::text FROM unnest($1::text[], $2::text[], $3::text[]))"
              R"( AS u(p1, p2, p3) WHERE t."id" = u.p3::bigint)");
    // Same values in the same order as the single-row statement.
    EXPECT_EQ(refs(s), refs(row));
    EXPECT_EQ(s.key_params_from, row.key_params_from);
}

TEST(BuildBatch, DeleteWithOldPartitionKeyPrunes) {
    DeleteMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    ApplyStatement s = build_delete(events_rel(), events_target(), m, true);
    EXPECT_EQ(s.sql, R"(DELETE FROM "public"."events__pgshift" AS t USING unnest($1::text[],)"
                     R"( $2::text[]) AS u(p1, p2) WHERE t."id" = u.p1::bigint AND t."created_at" =)"
                     R"( u.p2::timestamp with time zone)");
    EXPECT_EQ(refs(s), (Params{{kOld, 0}, {kOld, 1}}));
    EXPECT_EQ(s.key_params_from, 0u);
}

TEST(BuildBatch, WholeRowComparisonHasNoSetBasedForm) {
    TargetTable tt = events_target();
    tt.unique_key.clear();
    UpdateMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = full_row();
    m.new_tuple = full_row();
    EXPECT_FALSE(build_update(events_rel(), tt, m).empty());
    EXPECT_TRUE(build_update(events_rel(), tt, m, true).empty());
    DeleteMsg d;
    d.old_kind = OldTupleKind::Full;
    d.old_tuple = full_row();
    EXPECT_TRUE(build_delete(events_rel(), tt, d, true).empty());
}

// ---------------------------------------------------------------- TRUNCATE

TEST(BuildTruncate, ListsTargetsAndRestartsIdentity) {
    TargetTable a = events_target();
    TargetTable b;
    b.qualified = R"("My Schema"."user")";
    EXPECT_EQ(build_truncate({&a}, 0), R"(TRUNCATE "public"."events__pgshift")");
    EXPECT_EQ(build_truncate({&a, &b}, pgoutput::TruncateMsg::kRestartIdentity),
              R"(TRUNCATE "public"."events__pgshift", "My Schema"."user" RESTART IDENTITY)");
    // CASCADE is never forwarded: the shadow has no referencing tables.
    EXPECT_EQ(build_truncate(
                  {&a}, pgoutput::TruncateMsg::kCascade | pgoutput::TruncateMsg::kRestartIdentity),
              R"(TRUNCATE "public"."events__pgshift" RESTART IDENTITY)");
}

// ---------------------------------------------------------------- binding

TEST(BindParams, UnchangedToastAndBinaryAreApplyErrors) {
    ApplyStatement s;
    s.params = {{kNew, 0}};
    EXPECT_THROW(bind_params(s, nullptr, {unchanged()}), ApplyError);
    EXPECT_THROW(bind_params(s, nullptr, {binary("\x01\x02")}), ApplyError);
    try {
        bind_params(s, nullptr, {unchanged()});
    } catch (const ApplyError& e) {
        EXPECT_NE(std::string(e.what()).find("'u'"), std::string::npos) << e.what();
    }
    EXPECT_EQ(bind_params(s, nullptr, {null()}),
              (std::vector<std::optional<std::string>>{std::nullopt}));
    EXPECT_EQ(bind_params(s, nullptr, {t("")}), (std::vector<std::optional<std::string>>{""}))
        << "empty text is not NULL";
}

TEST(BindParams, KeyValueFromOldUnchangedToastIsApplyError) {
    UpdateMsg m;
    m.old_kind = OldTupleKind::Key;
    m.old_tuple = {t("7"), null(), null(), null(), null()};
    m.new_tuple = full_row();
    ApplyStatement s = build_update(events_rel(), events_target(), m);
    m.new_tuple[2] = binary("x");
    EXPECT_THROW(bind_params(s, &m.old_tuple, m.new_tuple), ApplyError);
}

TEST(DescribeKey, TruncatesLongValuesAndListsAtMostEight) {
    RelationMsg rel;
    rel.nspname = "public";
    rel.relname = "wide";
    TargetTable tt;
    tt.qualified = R"("public"."wide")";
    TupleData row;
    for (int i = 0; i < 10; ++i) {
        rel.columns.push_back(RelationColumn{0, "c" + std::to_string(i), 25, -1});
        tt.columns.push_back({"c" + std::to_string(i), "text"});
        row.push_back(t(i == 0 ? std::string(100, 'x') : std::to_string(i)));
    }
    DeleteMsg m;
    m.old_kind = OldTupleKind::Full;
    m.old_tuple = row;
    ApplyStatement s = build_delete(rel, tt, m);
    ASSERT_EQ(s.params.size(), 10u);
    EXPECT_EQ(describe_key(rel, s, &m.old_tuple, m.old_tuple),
              "c0=" + std::string(64, 'x') + ", c1=1, c2=2, c3=3, c4=4, c5=5, c6=6, c7=7");
}

}  // namespace
}  // namespace pgshift
