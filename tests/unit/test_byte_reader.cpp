// ByteReader / ByteWriter: big-endian integers, strings, bounds checks.
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "decoder/byte_reader.h"

using pgshift::ByteReader;
using pgshift::ByteWriter;
using pgshift::ProtocolError;

namespace {

std::string bytes(std::initializer_list<int> v) {
    std::string s;
    for (int b : v)
        s.push_back(static_cast<char>(b));
    return s;
}

}  // namespace

TEST(ByteReaderTest, ReadsBigEndianIntegers) {
    std::string d = bytes({0x7f, 0x01, 0x02, 0xff, 0xfe, 0x12, 0x34, 0x56, 0x78, 0xff,
                           0xff, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                           0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd});
    ByteReader r(d);
    EXPECT_EQ(r.u8(), 0x7f);
    EXPECT_EQ(r.u16(), 0x0102);
    EXPECT_EQ(r.i16(), -2);
    EXPECT_EQ(r.u32(), 0x12345678u);
    EXPECT_EQ(r.i32(), -2);
    EXPECT_EQ(r.u64(), 0x0102030405060708ull);
    EXPECT_EQ(r.offset(), 21u);
    EXPECT_EQ(r.i64(), -3);
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_NO_THROW(r.expect_end());
}

TEST(ByteReaderTest, UnsignedViewsOfNegativeValues) {
    std::string d = bytes({0xff, 0xff, 0x80, 0x00, 0x00, 0x00});
    ByteReader r(d);
    EXPECT_EQ(r.u16(), 0xffff);
    EXPECT_EQ(r.i32(), std::numeric_limits<int32_t>::min());
}

TEST(ByteReaderTest, CStringAndBytes) {
    std::string d = std::string("abc") + '\0' + '\0' + "xyz";
    ByteReader r(d);
    EXPECT_EQ(r.cstring(), "abc");
    EXPECT_EQ(r.offset(), 4u);
    EXPECT_EQ(r.cstring(), "");
    EXPECT_EQ(r.bytes(0), "");
    EXPECT_EQ(r.bytes(3), "xyz");
    r.expect_end();
}

TEST(ByteReaderTest, CStringWithoutNulThrows) {
    std::string d = "ab";
    ByteReader r(d, "ctx");
    r.u8();
    try {
        r.cstring("name");
        FAIL() << "expected ProtocolError";
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.offset(), 1u);
        std::string what = e.what();
        EXPECT_NE(what.find("ctx"), std::string::npos) << what;
        EXPECT_NE(what.find("name"), std::string::npos) << what;
        EXPECT_NE(what.find("offset 1"), std::string::npos) << what;
    }
    // Position unchanged after the failure.
    EXPECT_EQ(r.offset(), 1u);
}

TEST(ByteReaderTest, CStringOnEmptyInputThrows) {
    ByteReader r{std::string_view()};
    EXPECT_THROW(r.cstring(), ProtocolError);
}

TEST(ByteReaderTest, EveryReadIsBoundsChecked) {
    std::string d = bytes({1, 2, 3, 4, 5, 6, 7});
    for (size_t len = 0; len <= d.size(); ++len) {
        std::string_view v(d.data(), len);
        auto check = [&](auto read, size_t width) {
            ByteReader r(v);
            if (len >= width) {
                EXPECT_NO_THROW(read(r));
                EXPECT_EQ(r.offset(), width);
            } else {
                try {
                    read(r);
                    FAIL() << "width " << width << " len " << len;
                } catch (const ProtocolError& e) {
                    EXPECT_EQ(e.offset(), 0u);
                    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
                }
            }
        };
        check([](ByteReader& r) { r.u8(); }, 1);
        check([](ByteReader& r) { r.u16(); }, 2);
        check([](ByteReader& r) { r.i16(); }, 2);
        check([](ByteReader& r) { r.u32(); }, 4);
        check([](ByteReader& r) { r.i32(); }, 4);
        check([](ByteReader& r) { r.u64(); }, 8);
        check([](ByteReader& r) { r.i64(); }, 8);
        check([](ByteReader& r) { r.bytes(5); }, 5);
    }
}

TEST(ByteReaderTest, BytesWithHugeLengthThrows) {
    std::string d = "abc";
    ByteReader r(d);
    EXPECT_THROW(r.bytes(std::numeric_limits<size_t>::max()), ProtocolError);
    EXPECT_THROW(r.bytes(4), ProtocolError);
    EXPECT_EQ(r.bytes(3), "abc");
}

TEST(ByteReaderTest, ExpectEndReportsTrailingBytes) {
    std::string d = bytes({1, 2, 3});
    ByteReader r(d, "Thing");
    r.u8();
    try {
        r.expect_end();
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.offset(), 1u);
        std::string what = e.what();
        EXPECT_NE(what.find("2 trailing bytes"), std::string::npos) << what;
        EXPECT_NE(what.find("Thing"), std::string::npos) << what;
    }
}

TEST(ByteReaderTest, FailAtCarriesOffsetAndContext) {
    ByteReader r("xyz", "Ctx");
    try {
        r.fail_at("bad thing", 2);
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.offset(), 2u);
        EXPECT_STREQ(e.what(), "Ctx: bad thing (at byte offset 2)");
    }
}

TEST(ByteReaderTest, WriterWritesBigEndianAndRoundTrips) {
    ByteWriter w;
    w.put_u8(0xab);
    w.put_i16(-2);
    w.put_u16(0x0102);
    w.put_i32(-3);
    w.put_u32(0xdeadbeef);
    w.put_i64(std::numeric_limits<int64_t>::min());
    w.put_u64(0x0102030405060708ull);
    w.put_cstring("hello");
    w.put_bytes(std::string_view("\0\1", 2));
    EXPECT_EQ(w.size(), 1u + 2 + 2 + 4 + 4 + 8 + 8 + 6 + 2);
    std::string s = w.take();
    EXPECT_EQ(s.substr(0, 5), bytes({0xab, 0xff, 0xfe, 0x01, 0x02}));

    ByteReader r(s);
    EXPECT_EQ(r.u8(), 0xab);
    EXPECT_EQ(r.i16(), -2);
    EXPECT_EQ(r.u16(), 0x0102);
    EXPECT_EQ(r.i32(), -3);
    EXPECT_EQ(r.u32(), 0xdeadbeefu);
    EXPECT_EQ(r.i64(), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(r.u64(), 0x0102030405060708ull);
    EXPECT_EQ(r.cstring(), "hello");
    EXPECT_EQ(r.bytes(2), std::string_view("\0\1", 2));
    r.expect_end();
}

TEST(ByteReaderTest, WriterRejectsCStringWithEmbeddedNul) {
    ByteWriter w;
    EXPECT_THROW(w.put_cstring(std::string_view("a\0b", 3)), std::invalid_argument);
    EXPECT_EQ(w.size(), 0u);
}
