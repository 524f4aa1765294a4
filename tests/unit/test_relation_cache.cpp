// RelationCache: diffs of re-sent Relation messages by column name and type.
#include "decoder/relation_cache.h"

#include <gtest/gtest.h>

namespace pgshift {
namespace {

using pgoutput::RelationColumn;
using pgoutput::RelationMsg;

constexpr uint32_t kInt8 = 20;
constexpr uint32_t kText = 25;
constexpr uint32_t kJsonb = 3802;
constexpr uint32_t kVarchar = 1043;

RelationMsg events() {
    RelationMsg r;
    r.relid = 16384;
    r.nspname = "public";
    r.relname = "events";
    r.replident = 'd';
    r.columns = {
        RelationColumn{1, "id", kInt8, -1},
        RelationColumn{0, "kind", kText, -1},
        RelationColumn{0, "payload", kJsonb, -1},
    };
    return r;
}

TEST(RelationCache, FirstDefinitionIsStoredAndReportsNone) {
    RelationCache cache;
    EXPECT_EQ(cache.find(16384), nullptr);
    RelationDiff d = cache.update(events());
    EXPECT_EQ(d.kind, SchemaChange::None);
    EXPECT_TRUE(d.description.empty());
    ASSERT_NE(cache.find(16384), nullptr);
    EXPECT_EQ(*cache.find(16384), events());
    EXPECT_EQ(cache.find(1), nullptr);
    EXPECT_EQ(cache.size(), 1u);
}

TEST(RelationCache, IdenticalResendIsNoneEvenWithStreamingXid) {
    RelationCache cache;
    cache.update(events());
    RelationMsg again = events();
    again.xid = 750;  // re-sent inside a stream block
    RelationDiff d = cache.update(again);
    EXPECT_EQ(d.kind, SchemaChange::None);
    EXPECT_EQ(d.description, "");
    EXPECT_EQ(cache.find(16384)->xid, std::optional<uint32_t>(750));
}

TEST(RelationCache, ChangedTypeIsIncompatibleWithExactDescription) {
    RelationCache cache;
    cache.update(events());
    RelationMsg changed = events();
    changed.columns[2].type_oid = kText;
    RelationDiff d = cache.update(changed);
    EXPECT_EQ(d.kind, SchemaChange::Incompatible);
    EXPECT_EQ(d.description,
              R"(column "payload" of "public"."events" changed type from 3802 to 25)");
    // The cache keeps the newest definition whatever the verdict.
    EXPECT_EQ(cache.find(16384)->columns[2].type_oid, kText);
}

TEST(RelationCache, ChangedTypmodIsIncompatible) {
    RelationMsg a = events();
    a.columns[1] = RelationColumn{0, "kind", kVarchar, 24};
    RelationMsg b = a;
    b.columns[1].type_mod = 104;
    RelationDiff d = RelationCache::diff(a, b);
    EXPECT_EQ(d.kind, SchemaChange::Incompatible);
    EXPECT_EQ(d.description,
              R"(column "kind" of "public"."events" changed type modifier from 24 to 104)");
}

TEST(RelationCache, DroppedColumnIsIncompatible) {
    RelationMsg b = events();
    b.columns.erase(b.columns.begin() + 1);
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Incompatible);
    EXPECT_EQ(d.description, R"(column "kind" of "public"."events" was dropped)");
}

TEST(RelationCache, RenamedColumnIsIncompatible) {
    RelationMsg b = events();
    b.columns[1].name = "category";
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Incompatible);
    EXPECT_EQ(d.description, R"(column "kind" of "public"."events" was renamed to "category")");
}

TEST(RelationCache, VanishedColumnReplacedByOtherTypeIsDropPlusAdd) {
    RelationMsg b = events();
    b.columns[1] = RelationColumn{0, "category", kInt8, -1};
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Incompatible);
    EXPECT_EQ(d.description, R"(column "kind" of "public"."events" was dropped; )"
                             R"(column "category" of "public"."events" was added (type 20))");
}

TEST(RelationCache, AddedColumnIsCompatible) {
    RelationMsg b = events();
    b.columns.push_back(RelationColumn{0, "note", kText, -1});
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Compatible);
    EXPECT_EQ(d.description, R"(column "note" of "public"."events" was added (type 25))");
}

TEST(RelationCache, KeyFlagsAndReplicaIdentityAreCompatible) {
    RelationMsg b = events();
    b.replident = 'f';
    b.columns[1].flags = 1;
    b.columns[0].flags = 0;
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Compatible);
    EXPECT_EQ(d.description,
              R"(replica identity of "public"."events" changed from 'd' to 'f'; )"
              R"(column "id" of "public"."events" is no longer part of the replica identity key; )"
              R"(column "kind" of "public"."events" is now part of the replica identity key)");
}

TEST(RelationCache, DropAndReAddOfSameNameIsIncompatible) {
    // ALTER TABLE events DROP COLUMN kind, ADD COLUMN kind text: same name and
    // type, but it moved to the end and lost its data.
    RelationMsg b = events();
    std::swap(b.columns[1], b.columns[2]);
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Incompatible);
    EXPECT_NE(
        d.description.find(R"(column "kind" of "public"."events" moved from position 2 to 3)"),
        std::string::npos)
        << d.description;
}

TEST(RelationCache, MostSevereKindWinsAndAllChangesAreDescribed) {
    RelationMsg b = events();
    b.columns.push_back(RelationColumn{0, "note", kText, -1});
    b.columns[2].type_oid = kText;
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Incompatible);
    EXPECT_EQ(d.description,
              R"(column "payload" of "public"."events" changed type from 3802 to 25; )"
              R"(column "note" of "public"."events" was added (type 25))");
}

TEST(RelationCache, RenamedTableIsCompatible) {
    RelationMsg b = events();
    b.nspname = "archive";
    b.relname = "events_old";
    RelationDiff d = RelationCache::diff(events(), b);
    EXPECT_EQ(d.kind, SchemaChange::Compatible);
    EXPECT_EQ(d.description,
              R"(relation "public"."events" (relid 16384) is now named "archive"."events_old")");
}

TEST(RelationCache, EmptyNamespaceIsPgCatalogAndQuotesAreDoubled) {
    RelationMsg a;
    a.relid = 1;
    a.relname = R"(we"ird)";
    a.columns = {RelationColumn{0, R"(c"1)", kText, -1}};
    EXPECT_EQ(qualified_relation_name(a), R"("pg_catalog"."we""ird")");
    RelationMsg b = a;
    b.columns.clear();
    EXPECT_EQ(RelationCache::diff(a, b).description,
              R"(column "c""1" of "pg_catalog"."we""ird" was dropped)");
}

TEST(RelationCache, EntriesAreIndependentPerRelid) {
    RelationCache cache;
    RelationMsg other = events();
    other.relid = 20000;
    other.relname = "other";
    cache.update(events());
    cache.update(other);
    RelationMsg changed = events();
    changed.columns.pop_back();
    EXPECT_EQ(cache.update(changed).kind, SchemaChange::Incompatible);
    EXPECT_EQ(cache.update(other).kind, SchemaChange::None);
    EXPECT_EQ(cache.find(16384)->columns.size(), 2u);
    EXPECT_EQ(cache.find(20000)->columns.size(), 3u);
    cache.clear();
    EXPECT_EQ(cache.find(16384), nullptr);
    EXPECT_EQ(cache.update(changed).kind, SchemaChange::None);
}

}  // namespace
}  // namespace pgshift
