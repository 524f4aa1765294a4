// pgshift::Lsn parsing and formatting ("%X/%X", xlogdefs.h LSN_FORMAT_ARGS)
// and the PostgreSQL-epoch timestamp helpers.
#include <gtest/gtest.h>

#include <chrono>

#include "lsn.h"

using pgshift::Lsn;

TEST(LsnTest, FormatsAsTwoHexHalves) {
    EXPECT_EQ(Lsn().str(), "0/0");
    EXPECT_EQ(Lsn(0x16B374D848ull).str(), "16/B374D848");
    EXPECT_EQ(Lsn(0x16B3748ull).str(), "0/16B3748");
    EXPECT_EQ(Lsn(0x100000000ull).str(), "1/0");
    EXPECT_EQ(Lsn(~0ull).str(), "FFFFFFFF/FFFFFFFF");
}

TEST(LsnTest, ParsesValidText) {
    EXPECT_EQ(Lsn::parse("0/0"), Lsn(0));
    EXPECT_EQ(Lsn::parse("16/B374D848"), Lsn(0x16B374D848ull));
    EXPECT_EQ(Lsn::parse("16/b374d848"), Lsn(0x16B374D848ull));
    EXPECT_EQ(Lsn::parse("0/16B3748"), Lsn(0x16B3748ull));
    EXPECT_EQ(Lsn::parse("FFFFFFFF/FFFFFFFF"), Lsn(~0ull));
    EXPECT_EQ(Lsn::parse("00000001/00000002"), Lsn(0x100000002ull));
}

TEST(LsnTest, RejectsMalformedText) {
    for (const char* bad : {"", "1/", "/1", "/", "G/1", "1/G", "123456789/1", "1/123456789", "1",
                            "1//1", "1/1/1", " 1/1", "1/1 ", "-1/1", "+1/1", "0x1/1", "1:1"}) {
        EXPECT_FALSE(Lsn::parse(bad).has_value()) << '"' << bad << '"';
    }
}

TEST(LsnTest, FormatParseRoundTrip) {
    for (uint64_t v : {0ull, 1ull, 0xffffffffull, 0x100000000ull, 0x16B374D848ull,
                       0x8000000000000000ull, ~0ull}) {
        auto parsed = Lsn::parse(Lsn(v).str());
        ASSERT_TRUE(parsed.has_value()) << v;
        EXPECT_EQ(parsed->value(), v);
    }
}

TEST(LsnTest, ValidityAndOrdering) {
    EXPECT_FALSE(Lsn().valid());
    EXPECT_TRUE(Lsn(1).valid());
    EXPECT_LT(Lsn(0xffffffffull), Lsn(0x100000000ull));
    EXPECT_EQ(Lsn(5), Lsn(5));
}

TEST(LsnTest, PgEpochTimestamps) {
    using namespace std::chrono;
    system_clock::time_point pg_epoch{seconds(946'684'800)};
    EXPECT_EQ(pgshift::to_pg_timestamp(pg_epoch), 0);
    EXPECT_EQ(pgshift::to_pg_timestamp(pg_epoch + microseconds(1'500'000)), 1'500'000);
    EXPECT_EQ(pgshift::from_pg_timestamp(0), pg_epoch);
    EXPECT_EQ(pgshift::to_pg_timestamp(pgshift::from_pg_timestamp(-123456789)), -123456789);
}
