// suffixed_name (63-byte limit, hash for distinctness, UTF-8 safe cut) and
// JobNames::from.
#include "job_names.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>

namespace pgshift {
namespace {

/// True when `s` is well-formed UTF-8 (no sequence cut in half).
bool valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xE  ? 3
                     : (c >> 3) == 0x1E ? 4
                                        : 0;
        if (len == 0 || i + len > s.size())
            return false;
        for (size_t k = 1; k < len; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
                return false;
        }
        i += len;
    }
    return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The 9 bytes before the suffix are "_" + 8 lower-case hex digits.
bool has_hash_before(const std::string& s, size_t suffix_len) {
    if (s.size() < suffix_len + 9)
        return false;
    std::string h = s.substr(s.size() - suffix_len - 9, 9);
    if (h[0] != '_')
        return false;
    for (size_t i = 1; i < 9; ++i) {
        if (!std::isxdigit(static_cast<unsigned char>(h[i])) ||
            std::isupper(static_cast<unsigned char>(h[i])))
            return false;
    }
    return true;
}

TEST(SuffixedName, ShortNameIsPlainConcatenation) {
    EXPECT_EQ(suffixed_name("events", "__pgshift"), "events__pgshift");
    EXPECT_EQ(suffixed_name("events", "_p2025_01"), "events_p2025_01");
    EXPECT_EQ(suffixed_name("", "_default"), "_default");
}

TEST(SuffixedName, ExactlySixtyThreeBytesIsKept) {
    std::string base(54, 'a');
    std::string out = suffixed_name(base, "__pgshift");
    EXPECT_EQ(out.size(), 63u);
    EXPECT_EQ(out, base + "__pgshift");
}

TEST(SuffixedName, SixtyFourBytesIsShortenedWithHash) {
    std::string base(55, 'a');
    std::string out = suffixed_name(base, "__pgshift");
    EXPECT_EQ(out.size(), 63u);
    EXPECT_TRUE(ends_with(out, "__pgshift")) << out;
    EXPECT_TRUE(has_hash_before(out, 9)) << out;
    // 63 - 9 (suffix) - 9 (hash) bytes of the base are kept.
    EXPECT_EQ(out.substr(0, 45), std::string(45, 'a'));
}

TEST(SuffixedName, LongAsciiNameFitsAndIsDeterministic) {
    std::string base =
        "a_very_long_table_name_that_is_already_at_the_identifier_limit";  // 62 bytes
    ASSERT_EQ(base.size(), 62u);
    std::string out = suffixed_name(base, "__pgshift_old");
    EXPECT_LE(out.size(), kMaxIdentifierBytes);
    EXPECT_EQ(out.size(), 63u);
    EXPECT_TRUE(ends_with(out, "__pgshift_old")) << out;
    EXPECT_TRUE(has_hash_before(out, 13)) << out;
    EXPECT_EQ(out.substr(0, 41), base.substr(0, 41));
    EXPECT_EQ(out, suffixed_name(base, "__pgshift_old"));
}

TEST(SuffixedName, TwoByteUtf8IsNotSplit) {
    std::string base;
    for (int i = 0; i < 40; ++i)
        base += "\xC3\xA9";  // é, 80 bytes
    std::string out = suffixed_name(base, "__pgshift");
    EXPECT_LE(out.size(), kMaxIdentifierBytes);
    EXPECT_TRUE(valid_utf8(out)) << out;
    EXPECT_TRUE(ends_with(out, "__pgshift"));
    EXPECT_TRUE(has_hash_before(out, 9));
    // 45 bytes would cut an é in half, so 44 bytes (22 characters) are kept.
    std::string kept;
    for (int i = 0; i < 22; ++i)
        kept += "\xC3\xA9";
    EXPECT_EQ(out.substr(0, 44), kept);
    EXPECT_EQ(out.size(), 62u);
}

TEST(SuffixedName, ThreeAndFourByteUtf8AreNotSplit) {
    for (const std::string ch : {"\xE6\x97\xA5", "\xF0\x9F\x98\x80"}) {  // 日, 😀
        for (size_t lead = 0; lead < 4; ++lead) {
            std::string base(lead, 'x');
            while (base.size() < 90)
                base += ch;
            std::string out = suffixed_name(base, "_p2025_01_15_1030");
            EXPECT_LE(out.size(), kMaxIdentifierBytes) << lead;
            EXPECT_TRUE(valid_utf8(out)) << "lead " << lead << " char bytes " << ch.size();
            EXPECT_TRUE(ends_with(out, "_p2025_01_15_1030"));
            EXPECT_TRUE(has_hash_before(out, 17));
            // The cut loses less than one character.
            EXPECT_GT(out.size() + ch.size(), 63u);
        }
    }
}

TEST(SuffixedName, DistinctLongNamesStayDistinct) {
    std::string prefix(70, 'z');
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        std::string out = suffixed_name(prefix + std::to_string(i), "__pgshift");
        EXPECT_LE(out.size(), kMaxIdentifierBytes);
        seen.insert(out);
    }
    EXPECT_EQ(seen.size(), 200u);
    // Same long base, different suffixes: different names, same hash part.
    std::string a = suffixed_name(prefix, "_p2025_01");
    std::string b = suffixed_name(prefix, "_p2025_02");
    EXPECT_NE(a, b);
    EXPECT_EQ(a.substr(0, a.size() - 9), b.substr(0, b.size() - 9));
}

TEST(JobNames, FromDefaults) {
    JobConfig cfg;
    cfg.table = {"public", "events"};
    cfg.job_name = "events";
    JobNames n = JobNames::from(cfg, "appdb");
    EXPECT_EQ(n.source, (QualifiedName{"public", "events"}));
    EXPECT_EQ(n.shadow, (QualifiedName{"public", "events__pgshift"}));
    EXPECT_EQ(n.old, (QualifiedName{"public", "events__pgshift_old"}));
    // Slot and origin are cluster-wide: they carry a hash of the database.
    EXPECT_EQ(n.slot.rfind("pgshift_events_", 0), 0u) << n.slot;
    EXPECT_EQ(n.slot.size(), std::string("pgshift_events").size() + 9);
    EXPECT_TRUE(has_hash_before(n.slot, 0)) << n.slot;
    EXPECT_EQ(n.origin, n.slot);
    EXPECT_EQ(n.publication, "pgshift_events");
    EXPECT_EQ(JobNames::from(cfg, "appdb").slot, n.slot) << "deterministic";
}

TEST(JobNames, SameJobInAnotherDatabaseGetsAnotherSlotAndOrigin) {
    JobConfig cfg;
    cfg.table = {"public", "events"};
    cfg.job_name = "events";
    JobNames a = JobNames::from(cfg, "appdb");
    JobNames b = JobNames::from(cfg, "appdb2");
    EXPECT_NE(a.slot, b.slot);
    EXPECT_NE(a.origin, b.origin);
    EXPECT_EQ(a.publication, b.publication) << "publications are per database";
    EXPECT_EQ(a.shadow, b.shadow);
}

TEST(JobNames, FromWithShadowOverrideAndHostileSchema) {
    JobConfig cfg;
    cfg.table = {"My Schema", "User"};
    cfg.job_name = "user_job";
    cfg.shadow_name = "User_new";
    JobNames n = JobNames::from(cfg, "appdb");
    EXPECT_EQ(n.shadow, (QualifiedName{"My Schema", "User_new"}));
    EXPECT_EQ(n.old, (QualifiedName{"My Schema", "User__pgshift_old"}));
    EXPECT_EQ(n.slot.rfind("pgshift_user_job_", 0), 0u) << n.slot;
    EXPECT_EQ(n.publication, "pgshift_user_job");
}

TEST(JobNames, LongTableNameGivesShortDistinctNames) {
    JobConfig cfg;
    cfg.table = {"public", std::string(63, 't')};
    cfg.job_name = std::string(40, 'j');
    JobNames n = JobNames::from(cfg, "appdb");
    EXPECT_LE(n.shadow.name.size(), kMaxIdentifierBytes);
    EXPECT_LE(n.old.name.size(), kMaxIdentifierBytes);
    EXPECT_NE(n.shadow.name, n.old.name);
    EXPECT_NE(n.shadow.name, n.source.name);
    EXPECT_LE(n.slot.size(), kMaxIdentifierBytes);
    EXPECT_LE(n.origin.size(), kMaxIdentifierBytes);
    EXPECT_EQ(n.publication, "pgshift_" + cfg.job_name);
}

}  // namespace
}  // namespace pgshift
