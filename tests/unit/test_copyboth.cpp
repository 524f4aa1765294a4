// CopyBoth framing: 'w' XLogData, 'k' keepalive, 'r' standby status update.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "decoder/copyboth.h"

using namespace pgshift;
using namespace pgshift::copyboth;

namespace {

std::string unhex(std::string_view hex) {
    std::string out;
    int hi = -1;
    for (char c : hex) {
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else {
            continue;
        }
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<char>(hi * 16 + v));
            hi = -1;
        }
    }
    return out;
}

}  // namespace

TEST(CopyBothTest, ParsesKeepaliveVectorFromProtocolDoc) {
    // protocol.md A3: Keepalive (walEnd=0/16B3748, reply requested)
    std::string frame = unhex("6b 00000000016b3748 0000000000000064 01");
    ASSERT_EQ(frame.size(), kKeepaliveSize);
    ServerFrame f = parse_server_frame(frame);
    ASSERT_TRUE(std::holds_alternative<Keepalive>(f));
    const auto& k = std::get<Keepalive>(f);
    EXPECT_EQ(k.wal_end, *Lsn::parse("0/16B3748"));
    EXPECT_EQ(k.send_time, 100);
    EXPECT_TRUE(k.reply_requested);
}

TEST(CopyBothTest, ParsesXLogData) {
    std::string frame = unhex(
        "77 0000001600000010 0000001600000020 fffffffffffffffe"
        "45");  // payload: Stream Stop 'E'
    ServerFrame f = parse_server_frame(frame);
    ASSERT_TRUE(std::holds_alternative<XLogData>(f));
    const auto& x = std::get<XLogData>(f);
    EXPECT_EQ(x.data_start, Lsn(0x1600000010ull));
    EXPECT_EQ(x.wal_end, Lsn(0x1600000020ull));
    EXPECT_EQ(x.send_time, -2);
    EXPECT_EQ(x.payload, "E");
    // The payload is a view into the frame, not a copy.
    EXPECT_EQ(x.payload.data(), frame.data() + kXLogDataHeaderSize);
}

TEST(CopyBothTest, XLogDataWithEmptyPayloadIsAFrame) {
    std::string frame = encode_xlogdata(Lsn(1), Lsn(2), 3, "");
    ASSERT_EQ(frame.size(), kXLogDataHeaderSize);
    auto x = std::get<XLogData>(parse_server_frame(frame));
    EXPECT_TRUE(x.payload.empty());
}

TEST(CopyBothTest, EncodersRoundTrip) {
    std::string payload("B\0\1\2", 4);
    std::string w = encode_xlogdata(Lsn(0xAABBCCDDEEFF0011ull), Lsn(42), 1234567, payload);
    EXPECT_EQ(w.size(), kXLogDataHeaderSize + payload.size());
    auto x = std::get<XLogData>(parse_server_frame(w));
    EXPECT_EQ(x.data_start, Lsn(0xAABBCCDDEEFF0011ull));
    EXPECT_EQ(x.wal_end, Lsn(42));
    EXPECT_EQ(x.send_time, 1234567);
    EXPECT_EQ(x.payload, payload);

    for (bool reply : {false, true}) {
        std::string k = encode_keepalive(Lsn(7), -9, reply);
        EXPECT_EQ(k.size(), kKeepaliveSize);
        auto ka = std::get<Keepalive>(parse_server_frame(k));
        EXPECT_EQ(ka, (Keepalive{Lsn(7), -9, reply}));
    }
}

TEST(CopyBothTest, StandbyStatusIsExactly34Bytes) {
    std::string r = build_standby_status(Lsn(0x0102030405060708ull), Lsn(0x16B374D848ull),
                                         Lsn(0x10ull), 0x1122334455667788ll, true);
    ASSERT_EQ(r.size(), kStandbyStatusSize);
    EXPECT_EQ(r, unhex("72 0102030405060708 00000016B374D848 0000000000000010"
                       "1122334455667788 01"));
    std::string r0 = build_standby_status(Lsn(), Lsn(), Lsn(), 0, false);
    EXPECT_EQ(r0, unhex("72" + std::string(64, '0') + "00"));
}

TEST(CopyBothTest, TruncatedFramesThrowAtEveryLength) {
    std::string w = encode_xlogdata(Lsn(1), Lsn(2), 3, "payload");
    for (size_t len = 0; len < kXLogDataHeaderSize; ++len) {
        try {
            parse_server_frame(std::string_view(w.data(), len));
            FAIL() << "len " << len;
        } catch (const ProtocolError& e) {
            EXPECT_LE(e.offset(), len);
            // The failing field starts at a multiple of 8 after the type byte.
            EXPECT_EQ(e.offset(), len == 0 ? 0 : 1 + (len - 1) / 8 * 8) << e.what();
        }
    }
    std::string k = encode_keepalive(Lsn(1), 2, false);
    for (size_t len = 0; len < kKeepaliveSize; ++len) {
        EXPECT_THROW(parse_server_frame(std::string_view(k.data(), len)), ProtocolError) << len;
    }
}

TEST(CopyBothTest, KeepaliveWithTrailingBytesThrows) {
    std::string k = encode_keepalive(Lsn(1), 2, false) + "x";
    try {
        parse_server_frame(k);
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.offset(), kKeepaliveSize);
        EXPECT_NE(std::string(e.what()).find("Keepalive"), std::string::npos) << e.what();
    }
}

TEST(CopyBothTest, KeepaliveReplyByteMustBeBoolean) {
    std::string k = encode_keepalive(Lsn(1), 2, false);
    k.back() = 2;
    try {
        parse_server_frame(k);
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.offset(), 17u);
        EXPECT_NE(std::string(e.what()).find("replyRequested"), std::string::npos) << e.what();
    }
}

TEST(CopyBothTest, UnknownFrameTypeThrows) {
    for (int t = 0; t < 256; ++t) {
        if (t == 'w' || t == 'k')
            continue;
        std::string f(kXLogDataHeaderSize, '\0');
        f[0] = static_cast<char>(t);
        try {
            parse_server_frame(f);
            FAIL() << t;
        } catch (const ProtocolError& e) {
            EXPECT_EQ(e.offset(), 0u);
            EXPECT_NE(std::string(e.what()).find("unknown server frame type"), std::string::npos);
        }
    }
    // Client-side 'r' is not a server frame.
    EXPECT_THROW(parse_server_frame(build_standby_status(Lsn(), Lsn(), Lsn(), 0, false)),
                 ProtocolError);
}

TEST(CopyBothTest, EmptyFrameThrows) {
    EXPECT_THROW(parse_server_frame(""), ProtocolError);
}
